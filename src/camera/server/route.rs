//! What a request URL names: the clip, its bitrate, and the Content-Base
//! to answer with; and the Session header's id.

use super::super::clip::{clips_at_bitrate, Clip, BITRATE_RANGE};
use rtsp_types::{StatusCode, Url};

/// The path of a request URL: the clip its first segment names, at the
/// bitrate a later `kbps=N` segment asks for (else the server's), and the
/// URL to give as Content-Base (credentials, query and the track's
/// `trackID=0` removed, with a trailing slash). The bitrate is a path
/// segment rather than a query because clients build the SETUP and PLAY
/// URLs from the Content-Base, which keeps the path but not the query.
pub(super) fn route(
    clips: &'static [Clip],
    url: Option<&Url>,
) -> Result<(&'static Clip, String), StatusCode> {
    let url = url.ok_or(StatusCode::NotFound)?;
    let mut segments: Vec<&str> = url
        .path_segments()
        .ok_or(StatusCode::NotFound)?
        .filter(|s| !s.is_empty())
        .collect();
    if segments.last() == Some(&"trackID=0") {
        segments.pop();
    }
    let name = *segments.first().ok_or(StatusCode::NotFound)?;
    let mut clip = clips
        .iter()
        .find(|c| c.info.name == name)
        .ok_or(StatusCode::NotFound)?;
    for kbps in segments
        .iter()
        .skip(1)
        .filter_map(|s| s.strip_prefix("kbps="))
    {
        let kbps = kbps
            .parse::<u32>()
            .ok()
            .filter(|k| BITRATE_RANGE.contains(k))
            .ok_or(StatusCode::BadRequest)?;
        let set = clips_at_bitrate(kbps).map_err(|e| {
            log::warn!("camera: {e}");
            StatusCode::NotEnoughBandwidth
        })?;
        clip = set
            .iter()
            .find(|c| c.info.name == name)
            .ok_or(StatusCode::NotFound)?;
    }
    let mut base = url.clone();
    let _ = base.set_username("");
    let _ = base.set_password(None);
    base.set_query(None);
    base.set_fragment(None);
    base.set_path(&format!("/{}/", segments.join("/")));
    Ok((clip, base.to_string()))
}

/// The `Session` header's id (without `;timeout=`).
pub(super) fn session_id(value: &str) -> &str {
    value.split(';').next().unwrap_or("").trim()
}
