//! A request as the routes see it ([`Req`]): its method, its path cut into
//! percent-decoded segments, its decoded query, and who sent it.

use super::gate::Identity;
use crate::serve::http::{Permit, Permits, Reply};
use std::net::SocketAddr;

/// Longest request target accepted (path and query): anything longer is
/// not one of ours.
const MAX_URL: usize = 2048;
/// At most this many query parameters are looked at.
const MAX_PARAMS: usize = 16;

/// The request methods Vigil answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Delete,
}

impl Method {
    /// `None` for a method no route takes.
    pub fn parse(name: &str) -> Option<Method> {
        Some(match name {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }

    /// GET and HEAD only read.
    pub fn changes_state(self) -> bool {
        !matches!(self, Method::Get | Method::Head)
    }
}

/// Decoded query parameters, in order.
pub type Query = Vec<(String, String)>;

/// A request, as the routes see it.
pub struct Req<'a> {
    /// Percent-decoded path segments after the leading `/`.
    pub segments: Vec<String>,
    /// Percent-decoded query parameters, in order.
    pub query: Vec<(String, String)>,
    pub method: Method,
    /// `method == Head`: answer with the headers of a GET, and no body.
    pub head: bool,
    /// The request body, at most [`crate::serve::http::MAX_BODY`] bytes.
    pub body: Vec<u8>,
    /// The client's address (for rate limits and logs).
    pub peer: Option<SocketAddr>,
    /// Who sent it, when `http.auth` is on and it carried credentials.
    pub identity: Option<Identity>,
    /// The long-answer permit this route was given, if it needs one.
    pub permit: Option<Permit>,
    pub permits: &'a Permits,
    /// The request's header fields.
    headers: &'a [(String, String)],
}

impl<'a> Req<'a> {
    /// A request not yet through the gate, without a permit.
    pub fn new(
        segments: Vec<String>,
        query: Vec<(String, String)>,
        method: Method,
        body: Vec<u8>,
        peer: Option<SocketAddr>,
        permits: &'a Permits,
        headers: &'a [(String, String)],
    ) -> Req<'a> {
        Req {
            segments,
            query,
            method,
            head: method == Method::Head,
            body,
            peer,
            identity: None,
            permit: None,
            permits,
            headers,
        }
    }

    /// The first query parameter named `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A request header's value (first of that name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A request target cut into decoded path segments and query pairs; `Err`
/// is the answer to a target that cannot be one of ours.
pub fn split_target(url: &str) -> Result<(Vec<String>, Query), Reply> {
    if url.len() > MAX_URL {
        return Err(Reply::error(414, "request target too long"));
    }
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let Some(path) = path.strip_prefix('/') else {
        return Err(Reply::error(400, "request target must be a path"));
    };
    let segments = path
        .split('/')
        .map(|s| percent_decode(s, false))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Reply::error(400, &format!("path: {e}")))?;
    let query = parse_query(query).map_err(|e| Reply::error(400, &e))?;
    Ok((segments, query))
}

/// Decodes `%XX` escapes (and `+` as a space in query strings).
fn percent_decode(s: &str, plus_is_space: bool) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match c {
            b'%' => {
                let hex = |j: usize| b.get(j).and_then(|&h| (h as char).to_digit(16));
                let (Some(hi), Some(lo)) = (hex(i + 1), hex(i + 2)) else {
                    return Err(format!("bad percent-encoding in {s:?}"));
                };
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| format!("{s:?} is not UTF-8 once decoded"))
}

/// `a=1&b=2` into decoded pairs, at most [`MAX_PARAMS`] of them.
fn parse_query(q: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for part in q.split('&').filter(|p| !p.is_empty()) {
        if out.len() >= MAX_PARAMS {
            return Err(format!("too many query parameters (at most {MAX_PARAMS})"));
        }
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        let k = percent_decode(k, true)?;
        let v = percent_decode(v, true).map_err(|e| format!("{k}: {e}"))?;
        out.push((k, v));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b+c", true).unwrap(), "a b c");
        assert_eq!(percent_decode("a+b", false).unwrap(), "a+b");
        assert_eq!(
            percent_decode("2026-11-21T10%3A00%3A00%2B01%3A00", true).unwrap(),
            "2026-11-21T10:00:00+01:00"
        );
        assert!(percent_decode("%", true).is_err());
        assert!(percent_decode("%4", true).is_err());
        assert!(percent_decode("%zz", true).is_err());
        assert!(percent_decode("%ff", true).is_err());
        // A multi-byte character split by the escape must still decode.
        assert_eq!(percent_decode("%C3%A9", true).unwrap(), "é");
    }

    #[test]
    fn query_parsing_is_bounded() {
        let q = parse_query("stream=sub&start=1&&end").unwrap();
        assert_eq!(
            q,
            vec![
                ("stream".into(), "sub".into()),
                ("start".into(), "1".into()),
                ("end".into(), "".into())
            ]
        );
        let many = vec!["a=1"; MAX_PARAMS + 1].join("&");
        assert!(parse_query(&many).is_err());
        assert!(parse_query("start=%x1").unwrap_err().contains("start"));
    }
}
