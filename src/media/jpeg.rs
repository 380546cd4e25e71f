//! JPEG (RFC 2435) depacketizer.
//!
//! RTP/JPEG packets carry only the entropy-coded scan data plus a small
//! header (type, Q, size, optional restart interval and quantisation
//! tables); the receiver rebuilds the JFIF headers. This module gathers the
//! fragments of a frame, checking that their offsets follow on, and emits
//! each frame as one complete JFIF image: SOI, APP0 (JFIF), DQT, SOF, DHT
//! (the standard tables of ITU-T T.81 Annex K), optional DRI, SOS, the scan
//! data and EOI.
//!
//! The generated header is cached for the current (type, Q, size, restart
//! interval, tables), so a steady stream allocates nothing: each frame is
//! built in one buffer reused from frame to frame.

use super::{Depacketize, DepacketizeError};
use crate::stream::rtp::RtpPacket;
use crate::stream::{Codec, Frame, VideoParams};

/// Turns RTP/JPEG packets into JFIF images.
pub struct JpegDepacketizer {
    max: usize,
    max_u32: u32,
    /// The frame in progress: header followed by the scan data so far.
    buf: Vec<u8>,
    state: State,
    /// The key of the header in `header`.
    header_key: Option<HeaderKey>,
    header: Vec<u8>,
    /// In-band tables of Q 128..=254 streams, which senders may stop
    /// repeating once sent (RFC 2435 3.1.8). A handful of Q values at most.
    q_cache: Vec<QTables>,
    params: Option<VideoParams>,
    /// `params` changed since the last emitted frame.
    changed: bool,
}

/// The frame being gathered.
#[derive(Clone, Copy, Debug)]
struct FrameInfo {
    ts: i64,
    /// Packets were lost just before the frame began.
    loss: bool,
    width: u16,
    height: u16,
    /// Scan bytes received so far: the offset the next fragment must have.
    next_offset: u32,
}

#[derive(Clone, Copy, Debug)]
enum State {
    Idle,
    InFrame(FrameInfo),
    /// Complete, but this push already emitted a frame: it goes out first
    /// on the next push.
    Ready(FrameInfo),
    /// The frame with this timestamp is being dropped (gap, too large,
    /// malformed); its remaining packets are ignored.
    Skipping(i64),
}

/// Quantisation tables as sent in-band: up to two tables of 64 bytes
/// (8-bit) or 128 bytes (16-bit precision), in zig-zag order.
#[derive(Clone, PartialEq, Eq)]
struct QTables {
    q: u8,
    /// Bit i set: table i has 16-bit entries.
    precision: u8,
    count: u8,
    len: u16,
    data: [u8; 256],
}

impl QTables {
    const NONE: QTables = QTables {
        q: 0,
        precision: 0,
        count: 0,
        len: 0,
        data: [0; 256],
    };

    /// Table `i` as (16-bit?, bytes).
    fn table(&self, i: u8) -> Option<(bool, &[u8])> {
        if i >= self.count {
            return None;
        }
        let mut off = 0usize;
        for j in 0..i {
            off += table_size(self.precision, j);
        }
        let size = table_size(self.precision, i);
        let bytes = self.data.get(off..off + size)?;
        Some((self.precision >> i & 1 == 1, bytes))
    }
}

fn table_size(precision: u8, i: u8) -> usize {
    if precision >> i & 1 == 1 {
        128
    } else {
        64
    }
}

/// Everything the generated header depends on.
#[derive(Clone, PartialEq, Eq)]
struct HeaderKey {
    /// 0 (4:2:2) or 1 (4:2:0).
    kind: u8,
    q: u8,
    width: u16,
    height: u16,
    restart_interval: u16,
    /// In-band tables (Q >= 128); `NONE` for Q 1..=99 (derived from `q`).
    tables: QTables,
}

/// The parsed RTP/JPEG headers of one packet.
struct Packet<'a> {
    offset: u32,
    kind: u8,
    q: u8,
    width: u16,
    height: u16,
    restart_interval: u16,
    /// Quantisation table data of the first packet of a Q >= 128 frame.
    tables: Option<(u8, &'a [u8])>,
    data: &'a [u8],
}

fn parse_packet(payload: &[u8]) -> Result<Packet<'_>, DepacketizeError> {
    let [_type_specific, o0, o1, o2, kind, q, w, h, rest @ ..] = payload else {
        return Err(DepacketizeError::Malformed(
            "shorter than the RTP/JPEG header",
        ));
    };
    let offset = u32::from_be_bytes([0, *o0, *o1, *o2]);
    let (restart_interval, rest) = match kind {
        0 | 1 => (0, rest),
        64 | 65 => {
            let [r0, r1, _, _, rest @ ..] = rest else {
                return Err(DepacketizeError::Malformed(
                    "truncated restart marker header",
                ));
            };
            (u16::from_be_bytes([*r0, *r1]), rest)
        }
        _ => return Err(DepacketizeError::Malformed("unsupported RTP/JPEG type")),
    };
    let (width, height) = (u16::from(*w) * 8, u16::from(*h) * 8);
    if width == 0 || height == 0 {
        // Sizes over 2040 pixels cannot be expressed in RTP/JPEG.
        return Err(DepacketizeError::Malformed("zero width or height"));
    }
    let q = *q;
    if q == 0 || (100..128).contains(&q) {
        return Err(DepacketizeError::Malformed("reserved Q value"));
    }
    let (tables, data) = if q >= 128 && offset == 0 {
        let [_mbz, precision, l0, l1, rest @ ..] = rest else {
            return Err(DepacketizeError::Malformed(
                "truncated quantization table header",
            ));
        };
        let len = usize::from(u16::from_be_bytes([*l0, *l1]));
        let (Some(tables), Some(data)) = (rest.get(..len), rest.get(len..)) else {
            return Err(DepacketizeError::Malformed(
                "quantization tables run past the packet",
            ));
        };
        (Some((*precision, tables)), data)
    } else {
        (None, rest)
    };
    Ok(Packet {
        offset,
        kind: kind & 1,
        q,
        width,
        height,
        restart_interval,
        tables,
        data,
    })
}

impl JpegDepacketizer {
    pub fn new(max_frame_bytes: u32) -> Self {
        JpegDepacketizer {
            max: usize::try_from(max_frame_bytes).unwrap_or(usize::MAX),
            max_u32: max_frame_bytes,
            buf: Vec::new(),
            state: State::Idle,
            header_key: None,
            header: Vec::new(),
            q_cache: Vec::new(),
            params: None,
            changed: false,
        }
    }

    /// Makes room for `extra` bytes plus the EOI that may be appended,
    /// within the limit.
    fn reserve(&mut self, extra: usize) -> bool {
        extra
            .checked_add(2)
            .is_some_and(|n| super::reserve_bounded(&mut self.buf, n, self.max))
    }

    fn skip(&mut self, ts: i64, err: DepacketizeError) -> Result<(), DepacketizeError> {
        self.buf.clear();
        self.state = State::Skipping(ts);
        Err(err)
    }

    /// The quantisation tables for this frame, from the packet or the cache.
    fn tables_for(&mut self, pkt: &Packet<'_>) -> Result<QTables, DepacketizeError> {
        if pkt.q < 128 {
            return Ok(QTables::NONE);
        }
        match pkt.tables {
            Some((precision, bytes)) if !bytes.is_empty() => {
                let mut t = QTables {
                    q: pkt.q,
                    precision,
                    ..QTables::NONE
                };
                let mut off = 0usize;
                while t.count < 2 {
                    let size = table_size(precision, t.count);
                    let (Some(src), Some(dst)) =
                        (bytes.get(off..off + size), t.data.get_mut(off..off + size))
                    else {
                        break;
                    };
                    dst.copy_from_slice(src);
                    off += size;
                    t.count += 1;
                }
                if t.count == 0 || (t.count < 2 && off != bytes.len()) {
                    return Err(DepacketizeError::Malformed(
                        "quantization table length does not match its precision",
                    ));
                }
                t.len = off as u16;
                if pkt.q < 255 {
                    self.cache_tables(&t);
                }
                Ok(t)
            }
            _ => {
                if pkt.q == 255 {
                    return Err(DepacketizeError::Malformed(
                        "Q 255 frame without quantization tables",
                    ));
                }
                self.q_cache.iter().find(|t| t.q == pkt.q).cloned().ok_or(
                    DepacketizeError::Malformed("no quantization tables received for this Q"),
                )
            }
        }
    }

    fn cache_tables(&mut self, t: &QTables) {
        if let Some(slot) = self.q_cache.iter_mut().find(|c| c.q == t.q) {
            if slot != t {
                *slot = t.clone();
            }
        } else {
            if self.q_cache.len() >= 4 {
                self.q_cache.remove(0);
            }
            self.q_cache.push(t.clone());
        }
    }

    /// Starts a frame with the packet at offset 0.
    fn start_frame(
        &mut self,
        pkt: &Packet<'_>,
        ts: i64,
        loss: bool,
    ) -> Result<(), DepacketizeError> {
        self.buf.clear();
        let tables = match self.tables_for(pkt) {
            Ok(t) => t,
            Err(e) => return self.skip(ts, e),
        };
        let key = HeaderKey {
            kind: pkt.kind,
            q: pkt.q,
            width: pkt.width,
            height: pkt.height,
            restart_interval: pkt.restart_interval,
            tables,
        };
        if self.header_key.as_ref() != Some(&key) {
            self.header.clear();
            write_header(&mut self.header, &key);
            self.header_key = Some(key);
        }
        if !self.reserve(self.header.len()) {
            return self.skip(
                ts,
                DepacketizeError::FrameTooLarge {
                    limit: self.max_u32,
                },
            );
        }
        self.buf.extend_from_slice(&self.header);
        self.state = State::InFrame(FrameInfo {
            ts,
            loss,
            width: pkt.width,
            height: pkt.height,
            next_offset: 0,
        });
        Ok(())
    }

    /// Emits the complete frame in `buf` and goes idle.
    fn emit_frame(&mut self, info: FrameInfo, emit: &mut dyn FnMut(Frame<'_>)) {
        // Senders may or may not include the EOI: add it when missing
        // (room for it was reserved with every append).
        if !self.buf.ends_with(&[0xff, 0xd9]) {
            self.buf.extend_from_slice(&[0xff, 0xd9]);
        }
        let same = self
            .params
            .as_ref()
            .is_some_and(|p| p.width == info.width && p.height == info.height);
        if !same {
            self.params = Some(VideoParams {
                codec: Codec::Jpeg,
                width: info.width,
                height: info.height,
                fps_milli: None,
                rfc6381_codec: "jpeg".to_string(),
                decoder_config: Vec::new(),
            });
            self.changed = true;
        }
        if let Some(params) = &self.params {
            emit(Frame {
                timestamp_90k: info.ts,
                key: true,
                data: &self.buf,
                params,
                params_changed: std::mem::take(&mut self.changed),
                after_loss: info.loss,
            });
        }
        self.buf.clear();
        self.state = State::Idle;
    }
}

impl Depacketize for JpegDepacketizer {
    fn push(
        &mut self,
        pkt: &RtpPacket<'_>,
        ts: i64,
        loss_before: bool,
        emit: &mut dyn FnMut(Frame<'_>),
    ) -> Result<(), DepacketizeError> {
        let mut emitted = false;
        if let State::Ready(info) = self.state {
            self.emit_frame(info, emit);
            emitted = true;
        }
        match self.state {
            State::InFrame(info) if info.ts != ts => {
                if loss_before {
                    // The frame's last packets may be among those lost.
                    self.buf.clear();
                    self.state = State::Idle;
                } else {
                    // Quirk: no marker bit on the last packet of a frame;
                    // the timestamp change says it is over.
                    self.emit_frame(info, emit);
                    emitted = true;
                }
            }
            State::Skipping(skip_ts) if skip_ts != ts => self.state = State::Idle,
            _ => {}
        }

        let parsed = match parse_packet(pkt.payload) {
            Ok(p) => p,
            Err(e) => {
                // A frame with a broken packet in it is broken.
                return match self.state {
                    State::InFrame(_) | State::Skipping(_) | State::Idle => self.skip(ts, e),
                    State::Ready(_) => Err(e),
                };
            }
        };

        if parsed.offset == 0 {
            if let State::Skipping(_) = self.state {
                // A new start for the same timestamp: try again.
                self.state = State::Idle;
            }
            self.start_frame(&parsed, ts, loss_before)?;
        } else {
            match self.state {
                State::InFrame(info) if !loss_before && parsed.offset == info.next_offset => {}
                State::InFrame(_) => {
                    return self.skip(ts, DepacketizeError::Malformed("gap in fragment offsets"))
                }
                State::Skipping(_) => return Ok(()),
                State::Idle | State::Ready(_) => {
                    return self.skip(
                        ts,
                        DepacketizeError::Malformed("fragment without the frame's start"),
                    )
                }
            }
        }

        let State::InFrame(mut info) = self.state else {
            return Ok(());
        };
        if !self.reserve(parsed.data.len()) {
            return self.skip(
                ts,
                DepacketizeError::FrameTooLarge {
                    limit: self.max_u32,
                },
            );
        }
        self.buf.extend_from_slice(parsed.data);
        info.next_offset = info
            .next_offset
            .saturating_add(u32::try_from(parsed.data.len()).unwrap_or(u32::MAX));
        self.state = State::InFrame(info);

        if pkt.marker {
            if emitted {
                self.state = State::Ready(info);
            } else {
                self.emit_frame(info, emit);
            }
        }
        Ok(())
    }

    fn params(&self) -> Option<&VideoParams> {
        self.params.as_ref()
    }
}

/// The zig-zag scan: `ZIGZAG[k]` is the natural (row-major) index of the
/// k-th coefficient in DQT order.
const ZIGZAG: [u8; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20,
    13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
    52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

/// ITU-T T.81 Table K.1, luminance quantisation, natural order.
const LUMA_Q: [u8; 64] = [
    16, 11, 10, 16, 24, 40, 51, 61, //
    12, 12, 14, 19, 26, 58, 60, 55, //
    14, 13, 16, 24, 40, 57, 69, 56, //
    14, 17, 22, 29, 51, 87, 80, 62, //
    18, 22, 37, 56, 68, 109, 103, 77, //
    24, 35, 55, 64, 81, 104, 113, 92, //
    49, 64, 78, 87, 103, 121, 120, 101, //
    72, 92, 95, 98, 112, 100, 103, 99,
];

/// ITU-T T.81 Table K.2, chrominance quantisation, natural order.
const CHROMA_Q: [u8; 64] = [
    17, 18, 24, 47, 99, 99, 99, 99, //
    18, 21, 26, 66, 99, 99, 99, 99, //
    24, 26, 56, 99, 99, 99, 99, 99, //
    47, 66, 99, 99, 99, 99, 99, 99, //
    99, 99, 99, 99, 99, 99, 99, 99, //
    99, 99, 99, 99, 99, 99, 99, 99, //
    99, 99, 99, 99, 99, 99, 99, 99, //
    99, 99, 99, 99, 99, 99, 99, 99,
];

/// The table for Q 1..=99 (RFC 2435 section 4.2 / Appendix A): the
/// standard table scaled like the IJG quality setting, in zig-zag order.
fn scaled_table(base: &[u8; 64], q: u8) -> [u8; 64] {
    let q = u32::from(q.clamp(1, 99));
    let scale = if q < 50 { 5000 / q } else { 200 - 2 * q };
    let mut out = [0u8; 64];
    for (o, &z) in out.iter_mut().zip(ZIGZAG.iter()) {
        let v = (u32::from(base[usize::from(z)]) * scale + 50) / 100;
        *o = v.clamp(1, 255) as u8;
    }
    out
}

/// ITU-T T.81 K.3: the standard Huffman tables, as (class/id, BITS, HUFFVAL).
const DC_LUMA_BITS: [u8; 16] = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0];
const DC_CHROMA_BITS: [u8; 16] = [0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0];
const DC_VALUES: [u8; 12] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
const AC_LUMA_BITS: [u8; 16] = [0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d];
const AC_LUMA_VALUES: [u8; 162] = [
    0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07,
    0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08, 0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52, 0xd1, 0xf0,
    0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x25, 0x26, 0x27, 0x28,
    0x29, 0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49,
    0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69,
    0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
    0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
    0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5,
    0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2,
    0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8,
    0xf9, 0xfa,
];
const AC_CHROMA_BITS: [u8; 16] = [0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77];
const AC_CHROMA_VALUES: [u8; 162] = [
    0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61, 0x71,
    0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xa1, 0xb1, 0xc1, 0x09, 0x23, 0x33, 0x52, 0xf0,
    0x15, 0x62, 0x72, 0xd1, 0x0a, 0x16, 0x24, 0x34, 0xe1, 0x25, 0xf1, 0x17, 0x18, 0x19, 0x1a, 0x26,
    0x27, 0x28, 0x29, 0x2a, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48,
    0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68,
    0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87,
    0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5,
    0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3,
    0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda,
    0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8,
    0xf9, 0xfa,
];

const HUFFMAN_TABLES: [(u8, &[u8; 16], &[u8]); 4] = [
    (0x00, &DC_LUMA_BITS, &DC_VALUES),
    (0x10, &AC_LUMA_BITS, &AC_LUMA_VALUES),
    (0x01, &DC_CHROMA_BITS, &DC_VALUES),
    (0x11, &AC_CHROMA_BITS, &AC_CHROMA_VALUES),
];

fn segment(out: &mut Vec<u8>, marker: u8, body_len: usize) {
    out.extend_from_slice(&[0xff, marker]);
    // Every segment built here is well under 64 KiB.
    out.extend_from_slice(&((body_len + 2) as u16).to_be_bytes());
}

/// Writes SOI through SOS for a frame described by `key`.
fn write_header(out: &mut Vec<u8>, key: &HeaderKey) {
    out.extend_from_slice(&[0xff, 0xd8]); // SOI

    // APP0 "JFIF" 1.01, no density, no thumbnail.
    segment(out, 0xe0, 14);
    out.extend_from_slice(b"JFIF\0");
    out.extend_from_slice(&[1, 1, 0, 0, 1, 0, 1, 0, 0]);

    // DQT: table 0 for luma, table 1 (if there is one) for chroma.
    let mut sixteen_bit = false;
    let chroma_table = if key.q < 128 {
        let luma = scaled_table(&LUMA_Q, key.q);
        let chroma = scaled_table(&CHROMA_Q, key.q);
        segment(out, 0xdb, 2 * 65);
        out.push(0x00);
        out.extend_from_slice(&luma);
        out.push(0x01);
        out.extend_from_slice(&chroma);
        1
    } else {
        let t = &key.tables;
        let tables: Vec<(bool, &[u8])> = (0..t.count).filter_map(|i| t.table(i)).collect();
        let body: usize = tables.iter().map(|(_, b)| 1 + b.len()).sum();
        segment(out, 0xdb, body);
        for (id, (wide, bytes)) in tables.iter().enumerate() {
            out.push(if *wide { 0x10 } else { 0 } | id as u8);
            out.extend_from_slice(bytes);
            sixteen_bit |= *wide;
        }
        // With a single table, chroma shares the luma one.
        u8::from(tables.len() > 1)
    };

    // SOF0 (baseline), or SOF1 (extended sequential) which 16-bit
    // quantisation tables require.
    segment(out, if sixteen_bit { 0xc1 } else { 0xc0 }, 15);
    out.push(8); // sample precision
    out.extend_from_slice(&key.height.to_be_bytes());
    out.extend_from_slice(&key.width.to_be_bytes());
    out.push(3);
    // Y: 2x1 blocks per MCU for 4:2:2 (type 0), 2x2 for 4:2:0 (type 1).
    out.extend_from_slice(&[1, if key.kind == 0 { 0x21 } else { 0x22 }, 0]);
    out.extend_from_slice(&[2, 0x11, chroma_table]);
    out.extend_from_slice(&[3, 0x11, chroma_table]);

    // DHT: the four standard tables in one segment.
    let body: usize = HUFFMAN_TABLES
        .iter()
        .map(|(_, b, v)| 1 + b.len() + v.len())
        .sum();
    segment(out, 0xc4, body);
    for (class_id, bits, values) in HUFFMAN_TABLES {
        out.push(class_id);
        out.extend_from_slice(bits);
        out.extend_from_slice(values);
    }

    if key.restart_interval != 0 {
        segment(out, 0xdd, 2);
        out.extend_from_slice(&key.restart_interval.to_be_bytes());
    }

    // SOS: Y with tables 0/0, Cb and Cr with tables 1/1, full spectrum.
    segment(out, 0xda, 10);
    out.extend_from_slice(&[3, 1, 0x00, 2, 0x11, 3, 0x11, 0, 63, 0]);
}

#[cfg(test)]
mod tests;
