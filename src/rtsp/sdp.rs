//! SDP (RFC 8866) as cameras write it: parsed tolerantly, bounded in size.
//!
//! Only what an RTSP client needs is kept: the session and media `control`
//! attributes and, per media, the RTP formats of its `m=` line with their
//! `rtpmap` and `fmtp`. Everything else is ignored, and so is anything we
//! cannot understand, as far as that is safe: a camera's odd SDP should cost
//! at most the media section that is odd, never the whole stream.

use crate::stream::Codec;
use std::fmt;

pub const MAX_SDP_BYTES: usize = 64 * 1024;

/// Media sections kept; later ones are ignored (no camera sends more than
/// a handful: video, audio, metadata, backchannel).
const MAX_MEDIA: usize = 32;
/// Formats kept per media section (and session-level rtpmap/fmtp entries).
const MAX_FORMATS: usize = 32;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sdp {
    /// Session-level `a=control`.
    pub session_control: Option<String>,
    pub media: Vec<MediaDesc>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaDesc {
    /// `video`, `audio`, `application`, ...
    pub kind: String,
    /// Media-level `a=control`.
    pub control: Option<String>,
    pub formats: Vec<RtpFormat>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RtpFormat {
    pub payload_type: u8,
    /// From `a=rtpmap` or the static payload type table; empty if unknown.
    pub encoding_name: String,
    /// From `a=rtpmap` or the static payload type table; 0 if unknown.
    pub clock_rate: u32,
    /// The `a=fmtp:<pt>` value without the payload type.
    pub fmtp: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SdpError(pub String);

impl fmt::Display for SdpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad SDP: {}", self.0)
    }
}

impl std::error::Error for SdpError {}

/// The video track Vigil will record from a description.
#[derive(Clone, Copy, Debug)]
pub struct VideoTrack<'a> {
    pub media: &'a MediaDesc,
    pub format: &'a RtpFormat,
    pub codec: Codec,
}

/// RFC 3551 static payload types (the ones a camera might plausibly use).
fn static_payload_type(pt: u8) -> Option<(&'static str, u32)> {
    Some(match pt {
        0 => ("PCMU", 8000),
        3 => ("GSM", 8000),
        8 => ("PCMA", 8000),
        9 => ("G722", 8000),
        10 | 11 => ("L16", 44100),
        14 => ("MPA", 90000),
        26 => ("JPEG", 90000),
        31 => ("H261", 90000),
        32 => ("MPV", 90000),
        33 => ("MP2T", 90000),
        34 => ("H263", 90000),
        _ => return None,
    })
}

fn parse_payload_type(s: &str) -> Option<u8> {
    s.parse::<u8>().ok().filter(|&pt| pt <= 127)
}

/// An `a=rtpmap` value: `<pt> <name>/<rate>[/<channels>]`.
struct RtpMap {
    pt: u8,
    name: String,
    /// `None` when missing or unparseable.
    rate: Option<u32>,
}

fn parse_rtpmap(value: &str) -> Option<RtpMap> {
    // Quirk: trailing spaces (`a=rtpmap:96 H264/90000 `) and runs of
    // spaces; all whitespace around the fields is ignored.
    let mut fields = value.split_whitespace();
    let pt = parse_payload_type(fields.next()?)?;
    let encoding = fields.next()?;
    let mut parts = encoding.split('/');
    let name = parts.next().unwrap_or("").trim();
    if name.is_empty() {
        return None;
    }
    let rate = parts
        .next()
        .and_then(|r| r.trim().parse::<u32>().ok())
        .filter(|&r| r > 0);
    Some(RtpMap {
        pt,
        name: name.to_string(),
        rate,
    })
}

/// An `a=fmtp` value: `<pt> <params>`. `None` for an empty one.
fn parse_fmtp(value: &str) -> Option<(u8, String)> {
    let value = value.trim();
    let (pt, params) = match value.split_once(|c: char| c.is_ascii_whitespace()) {
        Some((pt, params)) => (pt, params.trim()),
        None => (value, ""),
    };
    let pt = parse_payload_type(pt)?;
    // Quirk: an empty fmtp (`a=fmtp:96` or `a=fmtp:96 `) means no
    // parameters, not an empty parameter string.
    if params.is_empty() {
        return None;
    }
    Some((pt, params.to_string()))
}

/// The payload types of one `m=` line: a fixed capacity, as the line
/// comes from the camera (and held on the stack, as it lives only while
/// the line is read).
type PayloadTypes = heapless::Vec<u8, MAX_FORMATS>;

/// An `m=` line: `<media> <port>[/<count>] <proto> <fmt> ...`. `None` if
/// it is not one we can use.
fn parse_media_line(value: &str) -> Option<(String, PayloadTypes)> {
    let mut fields = value.split_whitespace();
    let kind = fields.next()?;
    let port = fields.next()?;
    let port = port.split('/').next().unwrap_or("");
    port.parse::<u16>().ok()?;
    let _proto = fields.next()?;
    let mut pts = PayloadTypes::new();
    for f in fields {
        let pt = parse_payload_type(f)?;
        if !pts.contains(&pt) {
            // Past MAX_FORMATS the rest are ignored.
            let _ = pts.push(pt);
        }
    }
    if pts.is_empty() {
        return None;
    }
    Some((kind.to_string(), pts))
}

/// Where the attributes being read belong.
enum Section {
    Session,
    /// Index into `Sdp::media`.
    Media(usize),
    /// A media section we could not parse (or one too many): its
    /// attributes are ignored.
    Skipped,
}

fn apply_rtpmap(kind: &str, format: &mut RtpFormat, map: &RtpMap) {
    format.encoding_name.clone_from(&map.name);
    // Quirk: an rtpmap without a (valid) clock rate. Every video payload
    // format we record runs at 90 kHz.
    format.clock_rate = map.rate.unwrap_or(if kind.eq_ignore_ascii_case("video") {
        90_000
    } else {
        0
    });
}

fn non_empty(value: &str) -> Option<String> {
    let v = value.trim();
    (!v.is_empty()).then(|| v.to_string())
}

pub fn parse(text: &[u8]) -> Result<Sdp, SdpError> {
    if text.len() > MAX_SDP_BYTES {
        return Err(SdpError(format!(
            "{} bytes, more than the {MAX_SDP_BYTES}-byte limit",
            text.len()
        )));
    }
    // Quirk: cameras that send Latin-1 in `s=` or `i=`: decoded lossily,
    // since none of the fields we use is affected.
    let text = String::from_utf8_lossy(text);
    let mut sdp = Sdp::default();
    let mut section = Section::Session;
    let mut any_line = false;
    // Quirk: rtpmap/fmtp at session level (before any m= line). Kept as
    // defaults for the media sections that list the payload type.
    let mut session_rtpmaps: Vec<RtpMap> = Vec::new();
    let mut session_fmtps: Vec<(u8, String)> = Vec::new();

    // Lines end in CRLF or in a bare LF; stray whitespace, a NUL terminator
    // (some cameras count it in Content-Length) or a byte order mark around
    // a line are ignored.
    for raw in text.split('\n') {
        let line = raw.trim_matches(|c: char| c.is_whitespace() || c == '\0' || c == '\u{feff}');
        let Some((letter, value)) = line.split_once('=') else {
            continue;
        };
        if letter.len() != 1 || !letter.bytes().all(|b| b.is_ascii_alphabetic()) {
            continue;
        }
        any_line = true;
        // Quirk: no `v=` or `o=` line. Neither carries anything we need, so
        // no line is required: only `m=` and `a=` are read.
        match letter {
            "m" => {
                section = match parse_media_line(value) {
                    // Quirk: a media section we cannot parse (missing port,
                    // non-numeric payload type, ...) is skipped with its
                    // attributes; the others are kept.
                    None => Section::Skipped,
                    Some(_) if sdp.media.len() >= MAX_MEDIA => Section::Skipped,
                    Some((kind, pts)) => {
                        let formats = pts
                            .into_iter()
                            .map(|pt| {
                                let mut f = RtpFormat {
                                    payload_type: pt,
                                    encoding_name: String::new(),
                                    clock_rate: 0,
                                    fmtp: None,
                                };
                                // Static payload types (26 = JPEG/90000)
                                // need no rtpmap.
                                if let Some((name, rate)) = static_payload_type(pt) {
                                    f.encoding_name = name.to_string();
                                    f.clock_rate = rate;
                                }
                                if let Some(m) = session_rtpmaps.iter().find(|m| m.pt == pt) {
                                    apply_rtpmap(&kind, &mut f, m);
                                }
                                if let Some((_, p)) = session_fmtps.iter().find(|(p, _)| *p == pt) {
                                    f.fmtp = Some(p.clone());
                                }
                                f
                            })
                            .collect();
                        sdp.media.push(MediaDesc {
                            kind,
                            control: None,
                            formats,
                        });
                        Section::Media(sdp.media.len() - 1)
                    }
                };
            }
            "a" => {
                let (name, attr_value) = value.split_once(':').unwrap_or((value, ""));
                let name = name.trim();
                let media = match section {
                    Section::Skipped => continue,
                    Section::Session => None,
                    Section::Media(i) => sdp.media.get_mut(i),
                };
                if name.eq_ignore_ascii_case("control") {
                    // Absolute or relative; resolved by `url::resolve_control`.
                    let control = non_empty(attr_value);
                    match media {
                        Some(m) => m.control = control,
                        None => sdp.session_control = control,
                    }
                } else if name.eq_ignore_ascii_case("rtpmap") {
                    let Some(map) = parse_rtpmap(attr_value) else {
                        continue;
                    };
                    match media {
                        Some(m) => {
                            // Only payload types listed on the m= line.
                            if let Some(f) = m.formats.iter_mut().find(|f| f.payload_type == map.pt)
                            {
                                apply_rtpmap(&m.kind, f, &map);
                            }
                        }
                        None => {
                            if session_rtpmaps.len() < MAX_FORMATS {
                                session_rtpmaps.push(map);
                            }
                        }
                    }
                } else if name.eq_ignore_ascii_case("fmtp") {
                    let Some((pt, params)) = parse_fmtp(attr_value) else {
                        continue;
                    };
                    match media {
                        Some(m) => {
                            // Quirk: fmtp lines for payload types the m= line
                            // does not list are dropped.
                            if let Some(f) = m.formats.iter_mut().find(|f| f.payload_type == pt) {
                                f.fmtp = Some(params);
                            }
                        }
                        None => {
                            if session_fmtps.len() < MAX_FORMATS {
                                session_fmtps.push((pt, params));
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    if !any_line {
        return Err(SdpError("no SDP lines".into()));
    }
    Ok(sdp)
}

impl Sdp {
    /// The first video media with a format Vigil can depacketize.
    pub fn first_video(&self) -> Option<VideoTrack<'_>> {
        self.media
            .iter()
            .filter(|m| m.kind.eq_ignore_ascii_case("video"))
            .find_map(|m| {
                m.formats.iter().find_map(|f| {
                    Codec::from_encoding_name(&f.encoding_name).map(|codec| VideoTrack {
                        media: m,
                        format: f,
                        codec,
                    })
                })
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HIKVISION: &str = "v=0\r\n\
o=- 1109162014219182 1109162014219192 IN IP4 x.y.z.w\r\n\
s=Media Presentation\r\n\
e=NONE\r\n\
b=AS:5050\r\n\
t=0 0\r\n\
a=control:rtsp://192.168.1.64:554/Streaming/Channels/101/?transportmode=unicast\r\n\
m=video 0 RTP/AVP 96\r\n\
c=IN IP4 0.0.0.0\r\n\
b=AS:5000\r\n\
a=recvonly\r\n\
a=x-dimensions:1920,1080\r\n\
a=control:rtsp://192.168.1.64:554/Streaming/Channels/101/trackID=1?transportmode=unicast\r\n\
a=rtpmap:96 H264/90000\r\n\
a=fmtp:96 profile-level-id=420029; packetization-mode=1; sprop-parameter-sets=Z01AKI2NQDwBE/LCAAAOEAACvyAI,aO44gA==\r\n\
a=Media_header:MEDIAINFO=494D4B48;\r\n\
a=appversion:1.0\r\n";

    #[test]
    fn hikvision() {
        let sdp = parse(HIKVISION.as_bytes()).unwrap();
        assert_eq!(
            sdp.session_control.as_deref(),
            Some("rtsp://192.168.1.64:554/Streaming/Channels/101/?transportmode=unicast")
        );
        assert_eq!(sdp.media.len(), 1);
        let v = sdp.first_video().unwrap();
        assert_eq!(v.codec, Codec::H264);
        assert_eq!(v.format.payload_type, 96);
        assert_eq!(v.format.clock_rate, 90000);
        assert_eq!(
            v.media.control.as_deref(),
            Some("rtsp://192.168.1.64:554/Streaming/Channels/101/trackID=1?transportmode=unicast")
        );
        assert!(v
            .format
            .fmtp
            .as_deref()
            .unwrap()
            .starts_with("profile-level-id=420029; packetization-mode=1"));
    }

    #[test]
    fn gstreamer_lf_only_h265_with_audio() {
        let text = "v=0\n\
o=- 1188340656180883 1 IN IP4 127.0.0.1\n\
s=Session streamed with GStreamer\n\
t=0 0\n\
a=tool:GStreamer\n\
a=type:broadcast\n\
a=control:*\n\
a=range:npt=now-\n\
m=audio 0 RTP/AVP 97\n\
a=rtpmap:97 MPEG4-GENERIC/48000/2\n\
a=fmtp:97 streamtype=5;profile-level-id=2;mode=AAC-hbr\n\
a=control:stream=0\n\
m=video 0 RTP/AVP 96\n\
a=rtpmap:96 H265/90000\n\
a=fmtp:96 sprop-vps=QAEMAf//;sprop-sps=QgEBAWA=;sprop-pps=RAHA\n\
a=control:stream=1\n";
        let sdp = parse(text.as_bytes()).unwrap();
        assert_eq!(sdp.session_control.as_deref(), Some("*"));
        assert_eq!(sdp.media.len(), 2);
        assert_eq!(sdp.media[0].kind, "audio");
        assert_eq!(sdp.media[0].formats[0].encoding_name, "MPEG4-GENERIC");
        assert_eq!(sdp.media[0].formats[0].clock_rate, 48000);
        let v = sdp.first_video().unwrap();
        assert_eq!(v.codec, Codec::H265);
        assert_eq!(v.media.control.as_deref(), Some("stream=1"));
        assert_eq!(
            v.format.fmtp.as_deref(),
            Some("sprop-vps=QAEMAf//;sprop-sps=QgEBAWA=;sprop-pps=RAHA")
        );
    }

    #[test]
    fn quirk_no_v_or_o_line() {
        let sdp = parse(b"s=cam\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n").unwrap();
        assert_eq!(sdp.first_video().unwrap().codec, Codec::H264);
    }

    #[test]
    fn quirk_rtpmap_trailing_spaces() {
        let sdp = parse(b"v=0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000 \r\n").unwrap();
        let f = &sdp.media[0].formats[0];
        assert_eq!(f.encoding_name, "H264");
        assert_eq!(f.clock_rate, 90000);
        // Spaces inside the attribute too, with LF endings.
        let sdp = parse(b"m=video 0 RTP/AVP 96\na=rtpmap:96   H264/90000   \n").unwrap();
        assert_eq!(sdp.media[0].formats[0].encoding_name, "H264");
    }

    #[test]
    fn quirk_rtpmap_without_rate() {
        let sdp = parse(b"m=video 0 RTP/AVP 96\na=rtpmap:96 H264\n").unwrap();
        assert_eq!(sdp.media[0].formats[0].clock_rate, 90000);
        let sdp = parse(b"m=audio 0 RTP/AVP 97\na=rtpmap:97 opus/x\n").unwrap();
        assert_eq!(sdp.media[0].formats[0].encoding_name, "opus");
        assert_eq!(sdp.media[0].formats[0].clock_rate, 0);
    }

    #[test]
    fn quirk_empty_fmtp() {
        for line in ["a=fmtp:96", "a=fmtp:96 ", "a=fmtp:96\t \t"] {
            let text = format!("m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n{line}\r\n");
            let sdp = parse(text.as_bytes()).unwrap();
            assert_eq!(sdp.media[0].formats[0].fmtp, None, "{line:?}");
        }
        // An empty fmtp does not erase an earlier real one.
        let sdp = parse(b"m=video 0 RTP/AVP 96\na=fmtp:96 a=1\na=fmtp:96 \n").unwrap();
        assert_eq!(sdp.media[0].formats[0].fmtp.as_deref(), Some("a=1"));
    }

    #[test]
    fn quirk_unparseable_media_section_is_skipped() {
        let text = "v=0\r\n\
m=audio RTP/AVP 0\r\n\
a=control:bad1\r\n\
m=application 0 RTP/AVP metadata\r\n\
a=control:bad2\r\n\
m=video\r\n\
a=control:bad3\r\n\
m=video 0 RTP/AVP 300\r\n\
m=video 0 RTP/AVP\r\n\
m=video 0 RTP/AVP 96\r\n\
a=rtpmap:96 H264/90000\r\n\
a=control:trackID=1\r\n";
        let sdp = parse(text.as_bytes()).unwrap();
        assert_eq!(sdp.media.len(), 1);
        let v = sdp.first_video().unwrap();
        assert_eq!(v.media.control.as_deref(), Some("trackID=1"));
        assert_eq!(sdp.session_control, None);
    }

    #[test]
    fn quirk_attributes_before_any_media() {
        let text = "a=control:rtsp://cam/live/\r\n\
a=range:npt=0-\r\n\
a=rtpmap:96 H264/90000\r\n\
a=fmtp:96 packetization-mode=1\r\n\
v=0\r\n\
m=video 0 RTP/AVP 96\r\n\
a=control:trackID=0\r\n";
        let sdp = parse(text.as_bytes()).unwrap();
        assert_eq!(sdp.session_control.as_deref(), Some("rtsp://cam/live/"));
        let v = sdp.first_video().unwrap();
        assert_eq!(v.codec, Codec::H264);
        assert_eq!(v.format.fmtp.as_deref(), Some("packetization-mode=1"));
        assert_eq!(v.media.control.as_deref(), Some("trackID=0"));
    }

    #[test]
    fn control_absolute_and_relative() {
        let text = "m=video 0 RTP/AVP 96\n\
a=control:rtsp://10.0.0.2/ch1/track1\n\
a=rtpmap:96 H264/90000\n\
m=video 0 RTP/AVP 97\n\
a=control: trackID=2 \n";
        let sdp = parse(text.as_bytes()).unwrap();
        assert_eq!(
            sdp.media[0].control.as_deref(),
            Some("rtsp://10.0.0.2/ch1/track1")
        );
        assert_eq!(sdp.media[1].control.as_deref(), Some("trackID=2"));
    }

    #[test]
    fn quirk_fmtp_only_for_listed_payload_types() {
        let text = "m=video 0 RTP/AVP 96\n\
a=rtpmap:96 H264/90000\n\
a=rtpmap:98 H265/90000\n\
a=fmtp:98 sprop-vps=AAAA\n\
a=fmtp:96 packetization-mode=1\n";
        let sdp = parse(text.as_bytes()).unwrap();
        assert_eq!(sdp.media[0].formats.len(), 1);
        assert_eq!(
            sdp.media[0].formats[0].fmtp.as_deref(),
            Some("packetization-mode=1")
        );
        assert_eq!(sdp.first_video().unwrap().codec, Codec::H264);
    }

    #[test]
    fn static_jpeg_without_rtpmap() {
        let sdp = parse(b"v=0\r\nm=video 0 RTP/AVP 26\r\na=control:track1\r\n").unwrap();
        let v = sdp.first_video().unwrap();
        assert_eq!(v.codec, Codec::Jpeg);
        assert_eq!(v.format.encoding_name, "JPEG");
        assert_eq!(v.format.clock_rate, 90000);
    }

    #[test]
    fn first_video_skips_unsupported_formats_and_media() {
        let text = "m=audio 0 RTP/AVP 26\n\
m=video 0 RTP/AVP 97 96\n\
a=rtpmap:97 MP4V-ES/90000\n\
a=rtpmap:96 h264/90000\n";
        let sdp = parse(text.as_bytes()).unwrap();
        let v = sdp.first_video().unwrap();
        assert_eq!(v.format.payload_type, 96);
        assert_eq!(v.codec, Codec::H264);
        let none = parse(b"m=video 0 RTP/AVP 97\na=rtpmap:97 MP4V-ES/90000\n").unwrap();
        assert!(none.first_video().is_none());
        // Dynamic payload type without rtpmap: unknown, not recorded.
        let bare = parse(b"m=video 0 RTP/AVP 96\n").unwrap();
        assert_eq!(bare.media[0].formats[0].encoding_name, "");
        assert!(bare.first_video().is_none());
    }

    #[test]
    fn quirk_lossy_utf8_and_nul_terminator() {
        let mut text =
            b"v=0\r\ns=Cam\xe9ra \xff\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
                .to_vec();
        text.push(0);
        let sdp = parse(&text).unwrap();
        assert_eq!(sdp.first_video().unwrap().codec, Codec::H264);
        // A byte order mark before the first line.
        let bom = parse("\u{feff}v=0\nm=video 0 RTP/AVP 26\n".as_bytes()).unwrap();
        assert!(bom.first_video().is_some());
    }

    #[test]
    fn size_limit_and_garbage() {
        let big = vec![b'a'; MAX_SDP_BYTES + 1];
        assert!(parse(&big).is_err());
        assert!(parse(b"").is_err());
        assert!(parse(b"<html>404 not found</html>").is_err());
        let at_limit = vec![b'\n'; MAX_SDP_BYTES];
        assert!(parse(&at_limit).is_err()); // no lines, but not over the limit
                                            // Only session lines: valid, no media.
        let s = parse(b"v=0\r\ns=x\r\n").unwrap();
        assert!(s.media.is_empty() && s.first_video().is_none());
    }

    #[test]
    fn bounded_media_and_formats() {
        let mut text = String::new();
        for _ in 0..100 {
            text.push_str("m=video 0 RTP/AVP 96 96 97\n");
        }
        text.push_str("m=video 0 RTP/AVP");
        for pt in 0..=127 {
            text.push_str(&format!(" {pt}"));
        }
        let sdp = parse(text.as_bytes()).unwrap();
        assert_eq!(sdp.media.len(), MAX_MEDIA);
        assert_eq!(sdp.media[0].formats.len(), 2); // duplicate 96 merged
        let many = parse(text.lines().last().unwrap().as_bytes()).unwrap();
        assert_eq!(many.media[0].formats.len(), MAX_FORMATS);
    }

    #[test]
    fn port_with_count_and_case_insensitive_attributes() {
        let sdp = parse(b"m=video 5000/2 RTP/AVP 96\nA=x\na=RTPMAP:96 H264/90000\na=Control:t\n")
            .unwrap();
        assert_eq!(sdp.media[0].formats[0].encoding_name, "H264");
        assert_eq!(sdp.media[0].control.as_deref(), Some("t"));
    }
}
