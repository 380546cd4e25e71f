//! RTSP messages in the forms cameras send them: the Session and
//! Transport headers, answers to requests a server sends us.

use super::*;

/// An answer to a request the server sent us (some send GET_PARAMETER or
/// OPTIONS as their own keep-alive).
pub(super) fn reply_to_server(req: &Request<Vec<u8>>) -> Vec<u8> {
    let cseq = req
        .header(&headers::CSEQ)
        .map(|v| v.as_str().trim().to_owned())
        .unwrap_or_else(|| "0".into());
    let status = match req.method() {
        Method::Options | Method::GetParameter | Method::SetParameter => StatusCode::Ok,
        _ => StatusCode::NotImplemented,
    };
    let resp = Response::builder(Version::V1_0, status)
        .header(headers::CSEQ, cseq)
        .build(Vec::<u8>::new());
    let mut out = Vec::with_capacity(64);
    // Writing to a Vec cannot fail.
    let _ = resp.write(&mut out);
    out
}

pub(super) fn method_name(m: &Method) -> &'static str {
    match m {
        Method::Options => "OPTIONS",
        Method::Describe => "DESCRIBE",
        Method::Setup => "SETUP",
        Method::Play => "PLAY",
        Method::Teardown => "TEARDOWN",
        Method::GetParameter => "GET_PARAMETER",
        Method::SetParameter => "SET_PARAMETER",
        _ => "request",
    }
}

pub(super) fn header_str<'a>(
    resp: &'a Response<Vec<u8>>,
    name: &headers::HeaderName,
) -> Option<&'a str> {
    resp.header(name).map(|v| v.as_str())
}

/// `Session: <id>[;timeout=<seconds>]`.
/// Quirk: trailing semicolons and whitespace are tolerated.
pub fn parse_session_header(v: &str) -> Option<(String, Option<Duration>)> {
    let mut parts = v.split(';');
    let id = parts.next()?.trim();
    if id.is_empty() {
        return None;
    }
    let mut timeout = None;
    for p in parts {
        if let Some((k, val)) = p.split_once('=') {
            if k.trim().eq_ignore_ascii_case("timeout") {
                timeout = val
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|&s| s > 0)
                    .map(Duration::from_secs);
            }
        }
    }
    Some((id.to_owned(), timeout))
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct TransportReply {
    pub interleaved: Option<(u8, u8)>,
    pub ssrc: Option<u32>,
    pub udp: bool,
}

/// The parts of a SETUP answer's Transport header we use.
pub fn parse_transport(v: &str) -> TransportReply {
    let mut out = TransportReply::default();
    // Several transports may be listed, comma-separated; the first counts.
    let first = v.split(',').next().unwrap_or("");
    for (i, p) in first.split(';').enumerate() {
        let p = p.trim();
        if i == 0 {
            out.udp = p.eq_ignore_ascii_case("RTP/AVP") || p.eq_ignore_ascii_case("RTP/AVP/UDP");
            continue;
        }
        let (k, val) = p.split_once('=').unwrap_or((p, ""));
        match k.trim().to_ascii_lowercase().as_str() {
            "interleaved" => {
                let mut it = val.split('-').map(|x| x.trim().parse::<u8>());
                if let Some(Ok(a)) = it.next() {
                    let b = match it.next() {
                        Some(Ok(b)) => b,
                        _ => a.wrapping_add(1),
                    };
                    out.interleaved = Some((a, b));
                }
            }
            "ssrc" => out.ssrc = u32::from_str_radix(val.trim(), 16).ok(),
            _ => {}
        }
    }
    out
}
