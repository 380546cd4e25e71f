//! The SETUP request's Transport header: which of the transports it offers
//! the camera serves.

/// What the client asked for in SETUP's Transport header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Requested {
    /// RTP/AVP/TCP;interleaved=a-b
    Tcp(u8, u8),
    /// RTP/AVP;unicast;client_port=a-b
    Udp(u16, u16),
}

/// Picks the first transport we can serve from a Transport header (which
/// may list several, comma-separated). Multicast is declined.
///
/// Parsed here rather than with rtsp-types' typed header, whose parser
/// panics on some malformed `dest_addr` values.
pub(crate) fn parse_transport(value: &str) -> Option<Requested> {
    fn pair(v: &str) -> Option<(u32, u32)> {
        let (a, b) = match v.split_once('-') {
            Some((a, b)) => (a.trim().parse().ok()?, b.trim().parse().ok()?),
            None => {
                let a: u32 = v.trim().parse().ok()?;
                (a, a + 1)
            }
        };
        Some((a, b))
    }
    for spec in value.split(',') {
        let mut parts = spec.split(';').map(str::trim);
        let tcp = match parts.next().map(str::to_ascii_uppercase).as_deref() {
            Some("RTP/AVP" | "RTP/AVP/UDP") => false,
            Some("RTP/AVP/TCP") => true,
            _ => continue,
        };
        let mut multicast = false;
        let mut interleaved = None;
        let mut client_port = None;
        for p in parts {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            match k.trim().to_ascii_lowercase().as_str() {
                "multicast" => multicast = true,
                "interleaved" => interleaved = Some(pair(v)),
                "client_port" => client_port = Some(pair(v)),
                _ => {}
            }
        }
        if multicast {
            continue;
        }
        if tcp {
            // No interleaved parameter: the server may choose (RFC 2326 12.39).
            let (a, b) = interleaved.unwrap_or(Some((0, 1)))?;
            if let (Ok(a), Ok(b)) = (u8::try_from(a), u8::try_from(b)) {
                return Some(Requested::Tcp(a, b));
            }
        } else if let Some(Some((a, b))) = client_port {
            if let (Ok(a), Ok(b)) = (u16::try_from(a), u16::try_from(b)) {
                if a != 0 && b != 0 {
                    return Some(Requested::Udp(a, b));
                }
            }
        }
    }
    None
}
