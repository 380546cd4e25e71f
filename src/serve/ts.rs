//! MPEG-TS (ISO/IEC 13818-1): `export.ts` and `vigil export` to `.ts`.
//!
//! [`TsFile::new`] turns a [`Plan`] (the frames of a range, from the index)
//! into a transport stream whose exact length is known before the first
//! byte, so the route sends `Content-Length`; [`TsReader`] then produces
//! its bytes as `Read`, frame by frame, fetching frame bytes from the pools
//! through a [`SampleSource`] in chunks of [`CHUNK`] bytes. Memory per
//! reader is that chunk, one packet and a frame's PES header, whatever the
//! range's length.
//!
//! Layout: one program; PAT on PID 0, PMT on PID 0x1000, the video on
//! PID 0x100 (stream type 0x1B for H.264, 0x24 for H.265), which also
//! carries the PCR. Every frame is one PES packet (stream id 0xE0) with a
//! PTS; the DTS is the same and left out, because recordings keep frames
//! in decoding order with no reordering information (as in `view.mp4`,
//! which has no `ctts`). A PES begins with an access unit delimiter; a key
//! frame's PES also carries the parameter sets of its sample entry (SPS and
//! PPS, or VPS, SPS and PPS, from the decoder configuration record), and
//! a PAT and PMT go before it, so the stream can be cut at any key frame
//! and a change of parameters inside the range (a resolution change: every
//! recording starts with a key frame) reaches the decoder in band. The
//! first packet of a PES has an adaptation field with the PCR (and the
//! random access flag on a key frame); the last one is padded with
//! adaptation-field stuffing.
//!
//! Samples are stored as NAL units with 4-byte big-endian length prefixes;
//! each prefix is overwritten with a 4-byte start code (`00 00 00 01`), so
//! a frame in Annex B is exactly as long as its sample and the file's
//! length follows from the frame sizes alone. A sample whose lengths do
//! not add up is passed on as it is from the first bad length (the bytes
//! were stored that way; the length promised stays right).
//!
//! Time: the first frame has PTS [`FIRST_PTS`] (1 s), each next one the sum
//! of the durations before it (gaps between recordings are collapsed, as
//! in `view.mp4`), modulo 2^33 as the standard counts. The PCR of a frame
//! is its PTS minus [`PCR_DELAY`], so every frame is in the decoder's
//! buffer before it is due. The standard wants a PCR at least every 100 ms:
//! after a frame longer than that (cameras at under 10 fps), packets
//! holding only an adaptation field with a PCR follow it, 100 ms apart.
//!
//! The start: TS has no edit list, so there is no way to make a decoder
//! decode the frames between the key frame and `start` without showing
//! them, short of re-encoding. The stream therefore begins at the key frame
//! at or before `start` (at most one GOP early, never later: no requested
//! video is missing), which [`TsFile::skip_90k`] says; the route names the
//! download after that frame's time. It ends with the last frame that
//! starts before `end`.

mod psi;
#[cfg(test)]
mod tests;

use super::http::{Body, Reply};
use super::mp4::{Mp4Error, Mp4Frame, Mp4Segment, SampleSource};
use super::router::{CameraFile, RouteHook};
use super::view::{recorded_range, Plan, PoolSource, RecordedRange};
use crate::store::pool::PoolReader;
use crate::stream::Codec;
use psi::{pat_section, pcr_field, pmt_section, psi_packet, pts_field};
use std::fmt;
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::Arc;

/// A transport stream packet.
pub const PACKET: usize = 188;
/// Payload bytes of a packet without adaptation field.
const PAYLOAD: usize = PACKET - 4;
/// Payload bytes of a PES's first packet: its adaptation field holds the
/// PCR (length byte, flags byte, 6 bytes of PCR).
const FIRST_PAYLOAD: usize = PAYLOAD - 8;
/// Frame bytes are read from the pools this many at a time.
pub const CHUNK: usize = 32 * 1024;

const PID_PAT: u16 = 0;
const PID_PMT: u16 = 0x1000;
const PID_VIDEO: u16 = 0x100;
const PROGRAM_NUMBER: u16 = 1;
const TRANSPORT_STREAM_ID: u16 = 1;
/// PES stream id: video stream 0.
const STREAM_ID_VIDEO: u8 = 0xE0;

/// The first frame's PTS: 1 s, leaving room for the PCR delay before it.
pub const FIRST_PTS: u64 = 90_000;
/// How far each frame's PCR lies before its PTS (0.5 s).
pub const PCR_DELAY: u64 = 45_000;
/// The longest time between PCRs the standard allows (100 ms).
const PCR_INTERVAL: u32 = 9_000;
/// At most this many PCR-only packets after a frame (10 s of a frame that
/// long): bounds what a corrupt duration can add.
const MAX_PCR_ONLY: u32 = 100;
/// PTS and PCR base count modulo 2^33.
const WRAP: u64 = 1 << 33;

/// The PES header: start code and stream id (4), PES_packet_length (2),
/// flags (2), PES_header_data_length (1), PTS (5).
const PES_HEADER_LEN: usize = 14;

/// A decoder configuration record bigger than this is not a real one.
const MAX_DECODER_CONFIG: usize = 1 << 16;

const START_CODE: [u8; 4] = [0, 0, 0, 1];
/// H.264 access unit delimiter (NAL type 9), primary_pic_type 7 (any).
const AUD_H264: [u8; 6] = [0, 0, 0, 1, 0x09, 0xF0];
/// H.265 access unit delimiter (NAL type 35, TemporalId 0), pic_type 2
/// (any).
const AUD_H265: [u8; 7] = [0, 0, 0, 1, 0x46, 0x01, 0x50];

/// Why a plan cannot become a transport stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TsError {
    /// A codec MPEG-TS export does not carry (JPEG).
    Unsupported(Codec),
    /// The range changes codec (say H.264 to H.265): one program with one
    /// video stream cannot follow that.
    CodecChange { from: Codec, to: Codec },
    /// The description is inconsistent (says what).
    Invalid(String),
}

impl fmt::Display for TsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TsError::Unsupported(c) => write!(
                f,
                "{c} video cannot be put in MPEG-TS (only h264 and h265 can)"
            ),
            TsError::CodecChange { from, to } => write!(
                f,
                "the range changes codec from {from} to {to}; MPEG-TS export needs one codec: \
                 export the two parts separately"
            ),
            TsError::Invalid(e) => write!(f, "invalid MPEG-TS description: {e}"),
        }
    }
}

impl std::error::Error for TsError {}

/// A transport stream described, not yet produced.
#[derive(Debug)]
pub struct TsFile {
    codec: Codec,
    /// Per sample entry: its parameter sets in Annex B.
    params: Vec<Vec<u8>>,
    segments: Vec<Mp4Segment>,
    packets: u64,
    media_90k: u64,
    skip_90k: u32,
    first_start_90k: i64,
    /// The PAT and PMT packets with continuity counter 0.
    pat: [u8; PACKET],
    pmt: [u8; PACKET],
}

impl TsFile {
    /// Checks `plan` and counts the packets it makes.
    pub fn new(plan: Plan) -> Result<TsFile, TsError> {
        let Plan {
            entries,
            segments,
            skip_90k,
            first_start_90k,
            ..
        } = plan;
        let invalid = |s: String| Err(TsError::Invalid(s));
        let mut codec: Option<Codec> = None;
        for (i, s) in segments.iter().enumerate() {
            let Some(e) = entries.get(s.sample_entry) else {
                return invalid(format!(
                    "segment {i} uses sample entry {} of {}",
                    s.sample_entry,
                    entries.len()
                ));
            };
            match codec {
                _ if e.codec == Codec::Jpeg => return Err(TsError::Unsupported(e.codec)),
                Some(c) if c != e.codec => {
                    return Err(TsError::CodecChange {
                        from: c,
                        to: e.codec,
                    })
                }
                _ => codec = Some(e.codec),
            }
            match s.frames.first() {
                None => return invalid(format!("segment {i} has no frames")),
                Some(f) if !f.key => {
                    return invalid(format!("segment {i} does not start with a key frame"))
                }
                Some(_) => {}
            }
        }
        let Some(codec) = codec else {
            return invalid("no segments".into());
        };
        let params = entries
            .iter()
            .map(|e| match e.codec {
                Codec::Jpeg => Ok(Vec::new()),
                c => parameter_sets(c, &e.decoder_config),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let aud = aud(codec).len() as u64;
        let mut packets = 0u64;
        let mut media_90k = 0u64;
        for s in &segments {
            let ps = params.get(s.sample_entry).map_or(0, |p| p.len() as u64);
            for f in &s.frames {
                let mut pes = PES_HEADER_LEN as u64 + aud + u64::from(f.size);
                if f.key {
                    pes += ps;
                    packets += 2; // PAT and PMT
                }
                packets += pes_packets(pes) + u64::from(pcr_only_packets(f.duration_90k));
                media_90k += u64::from(f.duration_90k);
            }
        }
        Ok(TsFile {
            codec,
            params,
            segments,
            packets,
            media_90k,
            skip_90k,
            first_start_90k,
            pat: psi_packet(PID_PAT, &pat_section()),
            pmt: psi_packet(PID_PMT, &pmt_section(codec)),
        })
    }

    /// The stream's length in bytes.
    pub fn len(&self) -> u64 {
        self.packets * PACKET as u64
    }

    /// Never true: a stream has at least one frame.
    pub fn is_empty(&self) -> bool {
        self.packets == 0
    }

    /// How many frames the stream carries.
    pub fn frames(&self) -> usize {
        self.segments.iter().map(|s| s.frames.len()).sum()
    }

    /// The sum of the frames' durations (90 kHz): the stream's duration.
    pub fn duration_90k(&self) -> u64 {
        self.media_90k
    }

    /// How long before the requested start the stream begins (90 kHz): the
    /// first frame is the key frame at or before it.
    pub fn skip_90k(&self) -> u32 {
        self.skip_90k
    }

    /// Wall-clock time of the first frame, 90 kHz units since the epoch.
    pub fn first_start_90k(&self) -> i64 {
        self.first_start_90k
    }

    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// The stream's bytes, reading frames from `source`.
    pub fn reader<S: SampleSource>(self: Arc<Self>, source: S) -> TsReader<S> {
        TsReader {
            file: self,
            source,
            seg: 0,
            idx: 0,
            next_pts: FIRST_PTS,
            psi_sent: 0,
            pcr_only: 0,
            pcr_only_next: 0,
            cur: None,
            cc_pat: 0,
            cc_pmt: 0,
            cc_video: 0,
            pkt: [0; PACKET],
            pkt_pos: PACKET,
            head: Vec::new(),
            head_pos: 0,
            chunk: vec![0; CHUNK],
            chunk_at: 0,
            chunk_len: 0,
            chunk_pos: 0,
            next_prefix: 0,
            packets: 0,
            failed: None,
        }
    }
}

/// Packets of a PES packet of `len` bytes: the first carries the PCR.
fn pes_packets(len: u64) -> u64 {
    let first = FIRST_PAYLOAD as u64;
    if len <= first {
        1
    } else {
        1 + (len - first).div_ceil(PAYLOAD as u64)
    }
}

/// PCR-only packets after a frame of `duration_90k`, so that PCRs are at
/// most [`PCR_INTERVAL`] apart.
fn pcr_only_packets(duration_90k: u32) -> u32 {
    (duration_90k.saturating_sub(1) / PCR_INTERVAL).min(MAX_PCR_ONLY)
}

fn aud(codec: Codec) -> &'static [u8] {
    match codec {
        Codec::H265 => &AUD_H265,
        _ => &AUD_H264,
    }
}

/// The parameter sets of a decoder configuration record (avcC for H.264,
/// hvcC for H.265), each behind a start code, in the record's order (which
/// is decoding order: VPS, SPS, PPS).
fn parameter_sets(codec: Codec, config: &[u8]) -> Result<Vec<u8>, TsError> {
    let bad = |what: &str| TsError::Invalid(format!("{codec} decoder configuration: {what}"));
    if config.len() > MAX_DECODER_CONFIG {
        return Err(bad("too large"));
    }
    let mut r = ByteReader(config);
    let mut out = Vec::with_capacity(config.len() + 16);
    let nal = |r: &mut ByteReader, out: &mut Vec<u8>| -> Result<(), TsError> {
        let len = r.u16().ok_or_else(|| bad("truncated"))?;
        let data = r.take(usize::from(len)).ok_or_else(|| bad("truncated"))?;
        if data.is_empty() {
            return Err(bad("empty parameter set"));
        }
        out.extend_from_slice(&START_CODE);
        out.extend_from_slice(data);
        Ok(())
    };
    match codec {
        Codec::H264 => {
            // ISO/IEC 14496-15 5.3.3.1: version, profile, compatibility,
            // level, length size, then the SPS and PPS arrays.
            let head = r.take(5).ok_or_else(|| bad("truncated"))?;
            if head.first() != Some(&1) {
                return Err(bad("not version 1"));
            }
            for mask in [0x1f, 0xff] {
                let n = r.u8().ok_or_else(|| bad("truncated"))? & mask;
                if n == 0 {
                    return Err(bad("no SPS or no PPS"));
                }
                for _ in 0..n {
                    nal(&mut r, &mut out)?;
                }
            }
        }
        Codec::H265 => {
            // ISO/IEC 14496-15 8.3.3.1: 22 bytes of fields, then arrays of
            // NAL units by type.
            let head = r.take(22).ok_or_else(|| bad("truncated"))?;
            if head.first() != Some(&1) {
                return Err(bad("not version 1"));
            }
            let arrays = r.u8().ok_or_else(|| bad("truncated"))?;
            for _ in 0..arrays {
                r.u8().ok_or_else(|| bad("truncated"))?; // completeness, type
                let n = r.u16().ok_or_else(|| bad("truncated"))?;
                for _ in 0..n {
                    nal(&mut r, &mut out)?;
                }
            }
            if out.is_empty() {
                return Err(bad("no parameter sets"));
            }
        }
        Codec::Jpeg => return Err(TsError::Unsupported(codec)),
    }
    Ok(out)
}

/// Bounds-checked reads from a byte slice.
struct ByteReader<'a>(&'a [u8]);

impl<'a> ByteReader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.0.len() {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).and_then(|b| b.first().copied())
    }

    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
}

/// The PES packet of the frame being sent.
struct Cur {
    frame: Mp4Frame,
    /// Bytes of the PES packet still to send.
    left: u64,
    /// The next packet is its first.
    first: bool,
    pcr: u64,
}

/// The bytes of a [`TsFile`], produced as they are read. A source error
/// (the pool was reclaimed meanwhile, I/O) ends the stream with that error:
/// every byte returned before it is right.
pub struct TsReader<S: SampleSource> {
    file: Arc<TsFile>,
    source: S,
    /// The next frame to begin: segment, and frame in it.
    seg: usize,
    idx: usize,
    /// PTS of the next frame to begin, not yet wrapped.
    next_pts: u64,
    /// PAT (1) and PMT (2) already sent before the next frame, a key frame.
    psi_sent: u8,
    /// PCR-only packets still to send after the current frame, and the
    /// next one's PCR.
    pcr_only: u32,
    pcr_only_next: u64,
    cur: Option<Cur>,
    cc_pat: u8,
    cc_pmt: u8,
    cc_video: u8,
    /// The packet being handed out, from `pkt_pos` on.
    pkt: [u8; PACKET],
    pkt_pos: usize,
    /// The current PES's bytes before the frame's: PES header, access unit
    /// delimiter, parameter sets. Reused for every frame.
    head: Vec<u8>,
    head_pos: usize,
    /// Frame bytes `[chunk_at, chunk_at + chunk_len)`, length prefixes
    /// already turned into start codes; `chunk_pos` is the next to send.
    chunk: Vec<u8>,
    chunk_at: u32,
    chunk_len: usize,
    chunk_pos: usize,
    /// Offset in the frame of its next length prefix.
    next_prefix: u64,
    /// Packets produced.
    packets: u64,
    /// The error that ended the stream, returned by every later read.
    failed: Option<String>,
}

impl<S: SampleSource> TsReader<S> {
    /// Builds the next packet into `pkt`; `false` at the end of the stream.
    fn next_packet(&mut self) -> Result<bool, Mp4Error> {
        loop {
            if self.cur.is_some() {
                self.pes_packet()?;
                self.packets += 1;
                return Ok(true);
            }
            if self.pcr_only > 0 {
                self.pcr_only_packet();
                self.packets += 1;
                return Ok(true);
            }
            let file = self.file.clone();
            let Some((entry, frame)) = self.next_frame(&file) else {
                if self.packets != file.packets {
                    return Err(Mp4Error::Invalid(format!(
                        "{} packets made, {} promised",
                        self.packets, file.packets
                    )));
                }
                return Ok(false);
            };
            if frame.key && self.psi_sent < 2 {
                let (p, cc) = if self.psi_sent == 0 {
                    (&file.pat, &mut self.cc_pat)
                } else {
                    (&file.pmt, &mut self.cc_pmt)
                };
                self.pkt = *p;
                self.pkt[3] = 0x10 | *cc;
                *cc = (*cc + 1) & 0x0F;
                self.psi_sent += 1;
                self.packets += 1;
                return Ok(true);
            }
            self.begin_frame(&file, entry, frame);
        }
    }

    /// The frame at the cursor and its sample entry, moving past empty
    /// segments; the cursor is not advanced past it.
    fn next_frame(&mut self, file: &TsFile) -> Option<(usize, Mp4Frame)> {
        loop {
            let s = file.segments.get(self.seg)?;
            match s.frames.get(self.idx) {
                Some(f) => return Some((s.sample_entry, *f)),
                None => {
                    self.seg += 1;
                    self.idx = 0;
                }
            }
        }
    }

    fn begin_frame(&mut self, file: &TsFile, entry: usize, frame: Mp4Frame) {
        let aud = aud(file.codec);
        let params: &[u8] = if frame.key {
            file.params.get(entry).map_or(&[], Vec::as_slice)
        } else {
            &[]
        };
        // After the length field: flags, header length, PTS.
        let after = 3 + 5 + aud.len() as u64 + params.len() as u64 + u64::from(frame.size);
        // Video PES may leave the length 0 (unbounded) when it does not fit.
        let pes_len = u16::try_from(after).unwrap_or(0);
        let pts = self.next_pts;
        self.head.clear();
        self.head.extend_from_slice(&[0, 0, 1, STREAM_ID_VIDEO]);
        self.head.extend_from_slice(&pes_len.to_be_bytes());
        self.head.push(0x84); // '10', data_alignment_indicator
        self.head.push(0x80); // PTS only
        self.head.push(5); // PES_header_data_length
        self.head.extend_from_slice(&pts_field(pts));
        self.head.extend_from_slice(aud);
        self.head.extend_from_slice(params);
        self.head_pos = 0;
        self.chunk_at = 0;
        self.chunk_len = 0;
        self.chunk_pos = 0;
        self.next_prefix = 0;
        self.cur = Some(Cur {
            frame,
            left: self.head.len() as u64 + u64::from(frame.size),
            first: true,
            pcr: pts - PCR_DELAY,
        });
        self.pcr_only = pcr_only_packets(frame.duration_90k);
        self.pcr_only_next = pts - PCR_DELAY + u64::from(PCR_INTERVAL);
        self.next_pts = pts + u64::from(frame.duration_90k);
        self.idx += 1;
        self.psi_sent = 0;
    }

    /// A packet of only an adaptation field with a PCR, between frames.
    fn pcr_only_packet(&mut self) {
        let p = &mut self.pkt;
        p[0] = 0x47;
        p[1] = (PID_VIDEO >> 8) as u8;
        p[2] = PID_VIDEO as u8;
        // No payload: the continuity counter keeps the last packet's value.
        p[3] = 0x20 | (self.cc_video.wrapping_sub(1) & 0x0F);
        p[4] = 183;
        p[5] = 0x10; // PCR
        p[6..12].copy_from_slice(&pcr_field(self.pcr_only_next));
        p[12..].fill(0xFF);
        self.pcr_only -= 1;
        self.pcr_only_next += u64::from(PCR_INTERVAL);
    }

    /// Builds the current PES's next packet.
    fn pes_packet(&mut self) -> Result<(), Mp4Error> {
        let Some(cur) = self.cur.as_mut() else {
            return Ok(());
        };
        let first = cur.first;
        let room = if first { FIRST_PAYLOAD } else { PAYLOAD };
        let payload = usize::try_from(cur.left).map_or(room, |l| l.min(room));
        let stuffing = room - payload;
        // Where the payload begins: stuffing fills the adaptation field.
        let payload_at = PACKET - payload;
        let p = &mut self.pkt;
        p[0] = 0x47;
        p[1] = (if first { 0x40 } else { 0 }) | (PID_VIDEO >> 8) as u8;
        p[2] = PID_VIDEO as u8;
        if first {
            // Adaptation field: PCR, random access on a key frame, stuffing.
            p[3] = 0x30 | self.cc_video;
            p[4] = (7 + stuffing) as u8; // at most 7 + 176
            p[5] = if cur.frame.key { 0x50 } else { 0x10 };
            p[6..12].copy_from_slice(&pcr_field(cur.pcr));
            p[12..payload_at].fill(0xFF);
        } else if stuffing > 0 {
            p[3] = 0x30 | self.cc_video;
            // A one-byte adaptation field is its length byte alone.
            p[4] = (stuffing - 1) as u8;
            if stuffing > 1 {
                p[5] = 0; // no flags
                p[6..payload_at].fill(0xFF);
            }
        } else {
            p[3] = 0x10 | self.cc_video;
        }
        let mut at = payload_at;
        self.cc_video = (self.cc_video + 1) & 0x0F;
        cur.first = false;
        cur.left -= payload as u64;
        let frame = cur.frame;
        let end = PACKET;
        // The PES header and what goes before the frame's bytes.
        if let Some(h) = self.head.get(self.head_pos..) {
            let n = h.len().min(end - at);
            self.pkt[at..at + n].copy_from_slice(&h[..n]);
            self.head_pos += n;
            at += n;
        }
        while at < end {
            if self.chunk_pos == self.chunk_len {
                self.refill(&frame)?;
            }
            let n = (self.chunk_len - self.chunk_pos).min(end - at);
            self.pkt[at..at + n].copy_from_slice(&self.chunk[self.chunk_pos..self.chunk_pos + n]);
            self.chunk_pos += n;
            at += n;
        }
        if self.cur.as_ref().is_some_and(|c| c.left == 0) {
            self.cur = None;
        }
        Ok(())
    }

    /// Reads the frame's next chunk and turns its length prefixes into
    /// start codes.
    fn refill(&mut self, frame: &Mp4Frame) -> Result<(), Mp4Error> {
        // chunk_at + chunk_len <= size, a u32.
        let at = self.chunk_at + self.chunk_len as u32;
        let left = frame.size - at;
        if left == 0 {
            // The packet counts say more bytes, the frame has none: a bug.
            return Err(Mp4Error::Invalid("read past the frame".into()));
        }
        let n = usize::try_from(left).map_or(CHUNK, |l| l.min(CHUNK));
        self.source.read(&frame.loc, at, &mut self.chunk[..n])?;
        let size = u64::from(frame.size);
        let end = u64::from(at) + n as u64;
        let mut len = n;
        // A prefix needs 4 bytes in the frame; fewer left over are passed
        // on as they are, as is everything after a length that overruns.
        while self.next_prefix < end && self.next_prefix + 4 <= size {
            // next_prefix >= at: everything before was handled.
            let i = (self.next_prefix - u64::from(at)) as usize;
            let Some(field) = self.chunk[..n].get_mut(i..i + 4) else {
                // The prefix straddles the chunk's end: end the chunk before
                // it, to be read again at the start of the next one.
                len = i;
                break;
            };
            let nal_len = u32::from_be_bytes([field[0], field[1], field[2], field[3]]);
            field.copy_from_slice(&START_CODE);
            self.next_prefix += 4 + u64::from(nal_len);
        }
        // `len` is never 0: a chunk starting at a prefix holds it whole,
        // as CHUNK >= 4 and the prefix lies within the frame.
        if len == 0 {
            return Err(Mp4Error::Invalid("empty chunk".into()));
        }
        self.chunk_at = at;
        self.chunk_len = len;
        self.chunk_pos = 0;
        Ok(())
    }
}

impl<S: SampleSource> Read for TsReader<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(e) = &self.failed {
            return Err(io::Error::other(e.clone()));
        }
        let mut n = 0;
        while n < buf.len() {
            if self.pkt_pos == PACKET {
                match self.next_packet() {
                    Ok(true) => self.pkt_pos = 0,
                    Ok(false) => break,
                    Err(e) => {
                        let msg = e.to_string();
                        self.failed = Some(msg.clone());
                        // The bytes already in `buf` are right: hand them
                        // out, and the error with the next read.
                        if n > 0 {
                            return Ok(n);
                        }
                        return Err(io::Error::other(msg));
                    }
                }
            }
            let k = (PACKET - self.pkt_pos).min(buf.len() - n);
            buf[n..n + k].copy_from_slice(&self.pkt[self.pkt_pos..self.pkt_pos + k]);
            self.pkt_pos += k;
            n += k;
        }
        Ok(n)
    }
}

/// The download's name: camera, stream and the first frame's UTC time,
/// with anything but letters, digits, `-` and `_` replaced.
fn file_name(camera: &str, stream: &str, first_90k: i64) -> String {
    let t: String = crate::time::format_90k(first_90k)
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == 'T')
        .take(15)
        .collect();
    let safe = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    format!("{}-{}-{t}Z.ts", safe(camera), safe(stream))
}

/// The `export.ts` route: `GET|HEAD /api/cameras/{name}/export.ts?stream=&start=&end=`.
pub fn hook(db_path: PathBuf, pools: PoolReader) -> RouteHook {
    Arc::new(move |req| {
        let RecordedRange { camera, kind, plan } =
            match recorded_range(req, CameraFile::ExportTs, &db_path)? {
                Ok(r) => r,
                Err(r) => return Some(r),
            };
        let file = match TsFile::new(plan) {
            Ok(f) => Arc::new(f),
            Err(e @ (TsError::Unsupported(_) | TsError::CodecChange { .. })) => {
                return Some(Reply::error(415, &e.to_string()))
            }
            Err(e) => return Some(Reply::error(500, &e.to_string())),
        };
        let permit = req.permit.take()?;
        let len = file.len();
        let name = file_name(&camera, kind.name(), file.first_start_90k());
        let headers = vec![(
            "Content-Disposition",
            format!("attachment; filename=\"{name}\""),
        )];
        // HEAD: the same headers and length, no bytes read.
        let reader: Box<dyn Read + Send> = if req.head {
            Box::new(io::empty())
        } else {
            Box::new(file.reader(PoolSource(pools.clone())))
        };
        Some(Reply {
            status: 200,
            content_type: "video/mp2t",
            headers,
            body: Body::Stream {
                reader,
                len: Some(len),
                permit,
            },
        })
    })
}
