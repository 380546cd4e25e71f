//! RTSP URLs: credentials, the base URL of a presentation, control URLs.
//!
//! Cameras are loose about URLs: Content-Base headers without a scheme,
//! relative track controls against a base without a trailing slash, base
//! URLs with query strings. The rules here follow what deployed clients
//! (ffmpeg, live555) do, since that is what cameras are tested against.

use url::Url;

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes `s`; a `%` not followed by two hex digits stays as is.
/// Invalid UTF-8 after decoding is replaced, never an error.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hi = bytes.get(i + 1).copied().and_then(hex_value);
            let lo = bytes.get(i + 2).copied().and_then(hex_value);
            if let (Some(hi), Some(lo)) = (hi, lo) {
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Removes `user:password@` from a URL (ignoring failures, which only
/// happen for URLs that cannot have credentials anyway).
fn without_userinfo(url: &Url) -> Url {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u
}

/// The URL without `user:password@`, and the (percent-decoded) credentials.
///
/// Credentials are returned when the URL has a username or a password;
/// a missing part is an empty string.
pub fn strip_credentials(url: &Url) -> (Url, Option<(String, String)>) {
    let user = url.username();
    let pass = url.password();
    let creds = if user.is_empty() && pass.is_none() {
        None
    } else {
        Some((percent_decode(user), percent_decode(pass.unwrap_or(""))))
    };
    (without_userinfo(url), creds)
}

fn is_rtsp_scheme(scheme: &str) -> bool {
    ["rtsp", "rtsps", "rtspu"]
        .iter()
        .any(|s| scheme.eq_ignore_ascii_case(s))
}

/// Whether `authority` (the text before the first `/` of a scheme-less
/// header value) names a host rather than a path segment: it has a numeric
/// port, is an IP address, or is the request's own host.
fn looks_like_authority(authority: &str, request: &Url) -> bool {
    if authority.is_empty() {
        return false;
    }
    let host = match authority.rsplit_once(':') {
        Some((h, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            return !h.is_empty();
        }
        _ => authority,
    };
    host.parse::<std::net::IpAddr>().is_ok()
        || request
            .host_str()
            .is_some_and(|h| h.eq_ignore_ascii_case(host))
}

/// Interprets one Content-Base / Content-Location value, `None` if it is
/// unusable.
fn header_url(request: &Url, value: &str) -> Option<Url> {
    // Quirk: trailing (and leading) whitespace in the header value.
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if let Ok(u) = Url::parse(value) {
        if is_rtsp_scheme(u.scheme()) && u.has_host() {
            return Some(without_userinfo(&u));
        }
    }
    // Quirk: a Content-Base without a scheme. `/stream/` is an absolute
    // path on the request's server; `127.0.0.1:554/stream/` is a URL that
    // lost its `rtsp://`; anything else is resolved like a relative URL.
    let resolved = if value.starts_with('/') {
        request.join(value).ok()?
    } else {
        let authority = value.split('/').next().unwrap_or("");
        if looks_like_authority(authority, request) {
            Url::parse(&format!("{}://{}", request.scheme(), value)).ok()?
        } else {
            request.join(value).ok()?
        }
    };
    if !is_rtsp_scheme(resolved.scheme()) || !resolved.has_host() {
        return None;
    }
    Some(without_userinfo(&resolved))
}

/// The base for relative control URLs after DESCRIBE.
///
/// RFC 2326 §C.1.1: Content-Base, else Content-Location, else the request
/// URL. An unusable header falls through to the next. Credentials echoed
/// by a camera in these headers are dropped: they travel in Authorization,
/// never in request URIs.
pub fn base_url(request: &Url, content_base: Option<&str>, content_location: Option<&str>) -> Url {
    content_base
        .and_then(|v| header_url(request, v))
        .or_else(|| content_location.and_then(|v| header_url(request, v)))
        .unwrap_or_else(|| request.clone())
}

/// Resolves an `a=control` value against a base.
///
/// - `None`, empty or `*`: the base itself (aggregate control).
/// - An absolute `rtsp://`, `rtsps://` or `rtspu://` URL: itself (e.g.
///   Hikvision's `rtsp://192.168.1.64:554/Streaming/Channels/101/trackID=1`).
/// - Anything else is relative and is appended to the base *as text*, with
///   exactly one `/` between them, the way ffmpeg (`libavformat/rtsp.c`)
///   and live555 (`RTSPClient::constructSubsessionURL`) build SETUP URLs.
///   This deliberately differs from RFC 3986 resolution in two ways
///   cameras rely on:
///   - a base without a trailing `/` is treated as a directory:
///     `rtsp://h/s` + `trackID=1` → `rtsp://h/s/trackID=1`, not
///     `rtsp://h/trackID=1`;
///   - a base with a query string gets the control after the query:
///     `rtsp://h/live?channel=1` + `trackID=1` →
///     `rtsp://h/live?channel=1/trackID=1`. Dahua-style URLs
///     (`/cam/realmonitor?channel=1&subtype=0`) expect exactly this, and it
///     is what both clients above send.
///
///   A control with a leading `/` is appended the same way (live555).
///
/// If the result is not a valid URL the base is returned.
pub fn resolve_control(base: &Url, control: Option<&str>) -> Url {
    let control = match control.map(str::trim) {
        None | Some("") | Some("*") => return base.clone(),
        Some(c) => c,
    };
    if let Ok(u) = Url::parse(control) {
        if is_rtsp_scheme(u.scheme()) && u.has_host() {
            return u;
        }
    }
    let mut base = base.clone();
    base.set_fragment(None);
    let base_text = base.as_str();
    let joined = match (base_text.ends_with('/'), control.starts_with('/')) {
        (true, true) => format!("{base_text}{}", control.trim_start_matches('/')),
        (false, false) => format!("{base_text}/{control}"),
        _ => format!("{base_text}{control}"),
    };
    Url::parse(&joined).unwrap_or(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn strips_and_decodes_credentials() {
        let (url, creds) = strip_credentials(&u("rtsp://ad%40min:p%3Ass%20w@10.0.0.1:554/live"));
        assert_eq!(url.as_str(), "rtsp://10.0.0.1:554/live");
        assert_eq!(creds, Some(("ad@min".into(), "p:ss w".into())));
        let (url, creds) = strip_credentials(&u("rtsp://user@h/s"));
        assert_eq!(url.as_str(), "rtsp://h/s");
        assert_eq!(creds, Some(("user".into(), String::new())));
        let (url, creds) = strip_credentials(&u("rtsp://h/s?x=1"));
        assert_eq!(url.as_str(), "rtsp://h/s?x=1");
        assert_eq!(creds, None);
    }

    #[test]
    fn percent_decode_is_lenient() {
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%zz%41"), "%zzA");
        assert_eq!(percent_decode("%ff"), "\u{fffd}");
    }

    #[test]
    fn base_prefers_content_base_then_location_then_request() {
        let req = u("rtsp://10.0.0.1/live");
        assert_eq!(
            base_url(
                &req,
                Some("rtsp://10.0.0.1/live/"),
                Some("rtsp://10.0.0.1/other/")
            )
            .as_str(),
            "rtsp://10.0.0.1/live/"
        );
        assert_eq!(
            base_url(&req, None, Some("rtsp://10.0.0.1/other/")).as_str(),
            "rtsp://10.0.0.1/other/"
        );
        assert_eq!(base_url(&req, None, None), req);
    }

    #[test]
    fn base_tolerates_whitespace_and_bad_headers() {
        let req = u("rtsp://10.0.0.1/live");
        // Quirk: trailing whitespace.
        assert_eq!(
            base_url(&req, Some("rtsp://10.0.0.1/live/  \t"), None).as_str(),
            "rtsp://10.0.0.1/live/"
        );
        // Unparseable Content-Base falls back to Content-Location, then
        // to the request.
        assert_eq!(
            base_url(&req, Some("rtsp://[bad"), Some("rtsp://10.0.0.1/loc/")).as_str(),
            "rtsp://10.0.0.1/loc/"
        );
        assert_eq!(base_url(&req, Some("   "), Some("http://x/")), req);
    }

    #[test]
    fn base_without_scheme() {
        let req = u("rtsp://127.0.0.1:554/stream");
        // Quirk: host:port/path without `rtsp://`.
        assert_eq!(
            base_url(&req, Some("127.0.0.1:554/stream/"), None).as_str(),
            "rtsp://127.0.0.1:554/stream/"
        );
        // Quirk: an absolute path.
        assert_eq!(
            base_url(&req, Some("/stream/"), None).as_str(),
            "rtsp://127.0.0.1:554/stream/"
        );
        // The request's own host name without scheme or port.
        let named = u("rtsp://cam.local/s");
        assert_eq!(
            base_url(&named, Some("cam.local/s/"), None).as_str(),
            "rtsp://cam.local/s/"
        );
        // A bare relative path resolves against the request.
        assert_eq!(
            base_url(&named, Some("s2/"), None).as_str(),
            "rtsp://cam.local/s2/"
        );
    }

    #[test]
    fn base_drops_echoed_credentials() {
        let req = u("rtsp://10.0.0.1/live");
        assert_eq!(
            base_url(&req, Some("rtsp://admin:secret@10.0.0.1/live/"), None).as_str(),
            "rtsp://10.0.0.1/live/"
        );
    }

    #[test]
    fn control_aggregate() {
        let base = u("rtsp://h/s/");
        assert_eq!(resolve_control(&base, None), base);
        assert_eq!(resolve_control(&base, Some("*")), base);
        assert_eq!(resolve_control(&base, Some(" ")), base);
    }

    #[test]
    fn control_gstreamer_style() {
        let base = u("rtsp://127.0.0.1:8554/test/");
        assert_eq!(
            resolve_control(&base, Some("stream=0")).as_str(),
            "rtsp://127.0.0.1:8554/test/stream=0"
        );
    }

    #[test]
    fn control_base_without_trailing_slash_is_a_directory() {
        assert_eq!(
            resolve_control(&u("rtsp://h/s"), Some("trackID=1")).as_str(),
            "rtsp://h/s/trackID=1"
        );
        assert_eq!(
            resolve_control(&u("rtsp://h:554"), Some("trackID=1")).as_str(),
            "rtsp://h:554/trackID=1"
        );
        assert_eq!(
            resolve_control(&u("rtsp://h/s"), Some("/trackID=1")).as_str(),
            "rtsp://h/s/trackID=1"
        );
        assert_eq!(
            resolve_control(&u("rtsp://h/s/"), Some("/trackID=1")).as_str(),
            "rtsp://h/s/trackID=1"
        );
    }

    #[test]
    fn control_hikvision_absolute() {
        let base = u("rtsp://192.168.1.64:554/Streaming/Channels/101/");
        let c = "rtsp://192.168.1.64:554/Streaming/Channels/101/trackID=1?transportmode=unicast";
        assert_eq!(resolve_control(&base, Some(c)).as_str(), c);
        assert_eq!(
            resolve_control(&base, Some("RTSP://other:554/x")).as_str(),
            "rtsp://other:554/x"
        );
    }

    #[test]
    fn control_after_query_like_ffmpeg_and_live555() {
        assert_eq!(
            resolve_control(&u("rtsp://h/live?channel=1"), Some("trackID=1")).as_str(),
            "rtsp://h/live?channel=1/trackID=1"
        );
        assert_eq!(
            resolve_control(
                &u("rtsp://h:554/cam/realmonitor?channel=1&subtype=0"),
                Some("trackID=0")
            )
            .as_str(),
            "rtsp://h:554/cam/realmonitor?channel=1&subtype=0/trackID=0"
        );
    }
}
