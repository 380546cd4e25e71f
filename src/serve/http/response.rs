//! Answers: the [`Reply`] a handler gives back and its [`Body`], and the
//! response head written for it (status line, `Date`, framing).

use super::permit::Permit;
use serde_json::{json, Value};
use std::io::Read;
use std::time::SystemTime;

/// The body of an answer.
pub enum Body {
    Bytes(Vec<u8>),
    /// A long answer, written on the connection's thread while `permit` is
    /// held. `len` known gives `Content-Length`; unknown (live video), the
    /// body ends when the connection closes (RFC 9112, 6.3), each piece
    /// read sent at once.
    Stream {
        reader: Box<dyn Read + Send>,
        len: Option<u64>,
        permit: Permit,
    },
}

/// An answer.
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Body,
}

impl Reply {
    pub fn json(status: u16, v: &Value) -> Reply {
        Reply {
            status,
            content_type: "application/json",
            headers: Vec::new(),
            body: Body::Bytes(v.to_string().into_bytes()),
        }
    }

    pub fn error(status: u16, msg: &str) -> Reply {
        Reply::json(status, &json!({ "error": msg }))
    }
}

/// The standard reason phrase of a status.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

/// `Date` (RFC 9110, 5.6.7: IMF-fixdate) of `t`.
pub(super) fn http_date(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (proleptic Gregorian), by
    // 400-year eras of 146,097 days counted from 0000-03-01.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let weekday = WEEKDAYS
        .get(days.rem_euclid(7) as usize)
        .copied()
        .unwrap_or("Thu");
    let month = MONTHS
        .get(usize::try_from(month - 1).unwrap_or(0))
        .copied()
        .unwrap_or("Jan");
    format!(
        "{weekday}, {day:02} {month} {year} {:02}:{:02}:{:02} GMT",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// How an answer's body is delimited.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Framing {
    /// `Content-Length`.
    Length(u64),
    /// No body may follow (HEAD, 204, 304), no `Content-Length` either.
    None,
    /// Ends when the connection closes (RFC 9112, 6.3): live video.
    Close,
}

/// A response head.
pub(super) fn response_head(
    status: u16,
    content_type: &str,
    headers: &[(&'static str, String)],
    framing: Framing,
    keep_alive: bool,
    minor: u8,
) -> Vec<u8> {
    use std::fmt::Write as _;
    let mut h = String::with_capacity(256);
    let _ = write!(h, "HTTP/1.1 {status} {}\r\n", reason(status));
    let _ = write!(h, "Date: {}\r\n", http_date(SystemTime::now()));
    h.push_str("Server: vigil\r\n");
    let _ = write!(h, "Content-Type: {content_type}\r\n");
    h.push_str("X-Content-Type-Options: nosniff\r\n");
    for (name, value) in headers {
        // A value with a line break would let it write fields of its own.
        if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            log::warn!("http: dropped a {name} header with a line break in it");
            continue;
        }
        let _ = write!(h, "{name}: {value}\r\n");
    }
    if let Framing::Length(n) = framing {
        let _ = write!(h, "Content-Length: {n}\r\n");
    }
    if !keep_alive {
        h.push_str("Connection: close\r\n");
    } else if minor == 0 {
        h.push_str("Connection: keep-alive\r\n");
    }
    h.push_str("\r\n");
    h.into_bytes()
}
