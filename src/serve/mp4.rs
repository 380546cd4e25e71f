//! On-demand, non-fragmented .mp4 files: the body of `view.mp4`.
//!
//! [`build`] turns an index description (sample entries, and the frames of
//! consecutive recordings with where their bytes lie) into an [`Mp4File`]:
//! the `ftyp`, `moov` and `mdat` header are generated in memory (the `moov`
//! costs about 16 bytes a frame), the `mdat` payload is not. Its length and
//! entity tag are known before the first byte, and [`Mp4File::read_at`]
//! produces any byte range on demand, fetching frame bytes through a
//! [`SampleSource`] straight into the caller's buffer. That is what lets the
//! HTTP layer answer `Range` requests and send `Content-Length` up front
//! without ever writing the file anywhere.
//!
//! Layout: `ftyp`, `moov`, `mdat`; one video track, timescale 90 kHz
//! (movie and media), one chunk per segment (recording), an edit list that
//! skips into the first GOP so playback starts exactly at the requested
//! time. All integers big-endian, as ISO/IEC 14496-12 wants.

pub(crate) mod boxes;
#[cfg(test)]
mod tests;

use crate::stream::Codec;
use boxes::{BoxWriter, Fnv64, Oversize};
use std::fmt;

/// The 90 kHz clock of RTP video, used for both the movie and the media.
pub(crate) const TIMESCALE: u32 = 90_000;

/// At most this many frames in one file (a week at 50 fps): bounds the
/// `moov` (about 16 bytes a frame) well below the 4 GiB a box can hold,
/// and the memory a request can make us allocate.
const MAX_FRAMES: usize = 1 << 25;

/// A decoder configuration record bigger than this is not a real one.
const MAX_DECODER_CONFIG: usize = 1 << 16;

/// More sample entries than this is not a real recording history.
const MAX_ENTRIES: usize = 1 << 16;

/// Seconds from 1904-01-01 (the MP4 epoch) to 1970-01-01.
const MP4_EPOCH_OFFSET: u64 = 2_082_844_800;

/// One sample description: what a decoder needs to start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mp4SampleEntry {
    pub codec: Codec,
    pub width: u16,
    pub height: u16,
    /// The AVCDecoderConfigurationRecord (H.264) or
    /// HEVCDecoderConfigurationRecord (H.265), as the depacketizer made it.
    pub decoder_config: Vec<u8>,
}

/// Where a frame's bytes lie: opaque here, understood by the
/// [`SampleSource`] (for the store: a pool, an offset in it, and the pool's
/// generation when the index was read).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SampleLoc {
    pub pool: u32,
    pub offset: u64,
    pub generation: u64,
}

/// One frame (sample).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mp4Frame {
    pub duration_90k: u32,
    pub size: u32,
    pub key: bool,
    pub loc: SampleLoc,
}

/// The frames of one recording (or a run of one), starting with a key frame,
/// all described by one sample entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mp4Segment {
    /// Index into the entries given to [`build`].
    pub sample_entry: usize,
    pub frames: Vec<Mp4Frame>,
}

/// Reads frame bytes for [`Mp4File::read_at`].
pub trait SampleSource {
    /// Fills `buf` with the frame's bytes from `offset_in_frame` on (the
    /// range always lies within the frame). An overwritten frame must be an
    /// error ([`Mp4Error::Overwritten`]), never other bytes.
    fn read(&self, loc: &SampleLoc, offset_in_frame: u32, buf: &mut [u8]) -> Result<(), Mp4Error>;
}

/// Why a file could not be built or read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mp4Error {
    /// A codec this format cannot carry.
    Unsupported(Codec),
    /// The sample source failed (I/O).
    Source(String),
    /// The frames were overwritten since the index was read.
    Overwritten,
    /// The description is inconsistent (says what).
    Invalid(String),
}

impl fmt::Display for Mp4Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mp4Error::Unsupported(c) => write!(f, "{c} video cannot be put in this format"),
            Mp4Error::Source(e) => write!(f, "reading video: {e}"),
            Mp4Error::Overwritten => {
                write!(f, "the video was overwritten while it was being read")
            }
            Mp4Error::Invalid(e) => write!(f, "invalid .mp4 description: {e}"),
        }
    }
}

impl std::error::Error for Mp4Error {}

impl From<Oversize> for Mp4Error {
    fn from(_: Oversize) -> Self {
        Mp4Error::Invalid("a box would exceed 4 GiB".into())
    }
}

/// What `read_at` needs of each frame. `start` is the frame's offset in
/// the `mdat` payload.
#[derive(Clone, Copy, Debug)]
struct FrameRef {
    loc: SampleLoc,
    start: u64,
    size: u32,
}

/// A virtual .mp4 file: headers in memory, frame bytes read on demand.
/// Also the body of a movie fragment (`fmp4`): `moof` and `mdat` header,
/// then the frames.
#[derive(Debug)]
pub struct Mp4File {
    /// `ftyp`, `moov` and the `mdat` box header: everything before the
    /// first frame's bytes.
    head: Vec<u8>,
    frames: Vec<FrameRef>,
    len: u64,
    etag: u64,
}

impl Mp4File {
    /// The file's length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Never true: a file always has headers.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A file of `head` followed by the bytes of `frames`, in order: for
    /// builders of other layouts (movie fragments) that want the same
    /// on-demand reading.
    pub(crate) fn from_parts(head: Vec<u8>, frames: &[Mp4Frame]) -> Mp4File {
        let mut refs = Vec::with_capacity(frames.len());
        let mut start = 0u64;
        let mut h = Fnv64::new();
        h.write(&head);
        for f in frames {
            refs.push(FrameRef {
                loc: f.loc,
                start,
                size: f.size,
            });
            start += u64::from(f.size);
            h.write(&f.loc.pool.to_be_bytes());
            h.write(&f.loc.offset.to_be_bytes());
            h.write(&f.loc.generation.to_be_bytes());
        }
        Mp4File {
            len: head.len() as u64 + start,
            etag: h.finish(),
            head,
            frames: refs,
        }
    }

    /// The strong entity tag, quoted as the `ETag` header wants it
    /// (`"0123456789abcdef"`). It hashes every header byte (entries, sizes,
    /// durations, key flags, skip, duration, creation time) and every
    /// frame's location, so equal tags mean equal bytes.
    pub fn etag(&self) -> String {
        format!("\"{:016x}\"", self.etag)
    }

    /// Fills `buf` with the file's bytes from `offset`; returns how many
    /// were written: `buf.len()` except at the end of the file (0 at or past
    /// it). A source error is returned as it is: the response must end
    /// there, as the bytes asked for cannot be given.
    pub fn read_at(
        &self,
        offset: u64,
        buf: &mut [u8],
        src: &dyn SampleSource,
    ) -> Result<usize, Mp4Error> {
        if offset >= self.len {
            return Ok(0);
        }
        let want = usize::try_from(self.len - offset).map_or(buf.len(), |left| left.min(buf.len()));
        let mut done = 0usize;
        let mut pos = offset;
        let head_len = self.head.len() as u64;
        if pos < head_len {
            // pos < head.len(), a usize.
            let from = pos as usize;
            let n = (self.head.len() - from).min(want);
            copy(&mut buf[..n], self.head.get(from..from + n))?;
            done = n;
            pos += n as u64;
        }
        if done == want {
            return Ok(done);
        }
        let rel = pos - head_len;
        // The last frame starting at or before `rel` (zero-sized frames
        // sharing its start come before it, so they are skipped).
        let mut i = self
            .frames
            .partition_point(|f| f.start <= rel)
            .checked_sub(1)
            .ok_or_else(|| Mp4Error::Invalid("offset before the first frame".into()))?;
        let mut in_frame = rel - self.frames.get(i).map_or(0, |f| f.start);
        while done < want {
            let f = self
                .frames
                .get(i)
                .ok_or_else(|| Mp4Error::Invalid("read past the last frame".into()))?;
            let avail = u64::from(f.size).saturating_sub(in_frame);
            let n = usize::try_from(avail).map_or(want - done, |a| a.min(want - done));
            if n > 0 {
                // in_frame < size, a u32.
                src.read(&f.loc, in_frame as u32, &mut buf[done..done + n])?;
            }
            done += n;
            i += 1;
            in_frame = 0;
        }
        Ok(done)
    }
}

fn copy(dst: &mut [u8], src: Option<&[u8]>) -> Result<(), Mp4Error> {
    match src {
        Some(s) if s.len() == dst.len() => {
            dst.copy_from_slice(s);
            Ok(())
        }
        _ => Err(Mp4Error::Invalid("header range".into())),
    }
}

/// Builds the file for `segments` (consecutive recordings, in order, each
/// starting with a key frame), described by `entries`.
///
/// `skip_90k` is how much media to skip at the start (the first segment
/// starts at the key frame at or before the requested start), `duration_90k`
/// how much to play from there: both go into the edit list.
/// `creation_time_unix` (seconds) goes in `mvhd`/`tkhd`/`mdhd`.
pub fn build(
    entries: Vec<Mp4SampleEntry>,
    segments: Vec<Mp4Segment>,
    skip_90k: u32,
    duration_90k: u64,
    creation_time_unix: u64,
) -> Result<Mp4File, Mp4Error> {
    let d = Description::check(&entries, &segments, skip_90k, duration_90k)?;
    let creation = creation_time_unix.saturating_add(MP4_EPOCH_OFFSET);
    let ftyp = ftyp()?;

    // The moov's length does not depend on the chunk offsets' values, only
    // on whether they need 64 bits; and whether they do depends on the
    // moov's length. A trial with 32-bit offsets (relative to the mdat
    // payload, so they fit when the payload before the last chunk does)
    // settles it.
    let large_mdat = d.data_len > u64::from(u32::MAX) - 8;
    let mdat_header_len: u64 = if large_mdat { 16 } else { 8 };
    let moov_len_32 = if fits32(d.last_segment_start) {
        Some(moov(&d, &entries, &segments, creation, 0, false)?.len())
    } else {
        None
    };
    let (co64, moov_len) = match moov_len_32 {
        Some(n)
            if fits32(ftyp.len() as u64 + n as u64 + mdat_header_len + d.last_segment_start) =>
        {
            (false, n)
        }
        _ => (
            true,
            moov(&d, &entries, &segments, creation, 0, true)?.len(),
        ),
    };
    let data_start = ftyp.len() as u64 + moov_len as u64 + mdat_header_len;
    let moov = moov(&d, &entries, &segments, creation, data_start, co64)?;
    if moov.len() != moov_len {
        return Err(Mp4Error::Invalid("moov length changed".into()));
    }

    let mut head = BoxWriter::with_capacity(ftyp.len() + moov.len() + 16);
    head.bytes(&ftyp);
    head.bytes(&moov);
    drop(moov);
    if large_mdat {
        head.u32(1); // the size is in the 64-bit field that follows
        head.bytes(b"mdat");
        head.u64(d.data_len + 16);
    } else {
        // data_len + 8 <= u32::MAX, checked above.
        head.u32((d.data_len + 8) as u32);
        head.bytes(b"mdat");
    }
    let head = head.buf;
    if head.len() as u64 != data_start {
        return Err(Mp4Error::Invalid("header length mismatch".into()));
    }

    let mut frames = Vec::with_capacity(d.frames);
    let mut start = 0u64;
    for f in segments.iter().flat_map(|s| &s.frames) {
        frames.push(FrameRef {
            loc: f.loc,
            start,
            size: f.size,
        });
        start += u64::from(f.size);
    }
    let mut h = Fnv64::new();
    h.write(&head);
    for f in &frames {
        h.write(&f.loc.pool.to_be_bytes());
        h.write(&f.loc.offset.to_be_bytes());
        h.write(&f.loc.generation.to_be_bytes());
    }
    Ok(Mp4File {
        len: data_start + d.data_len,
        etag: h.finish(),
        head,
        frames,
    })
}

/// Totals of a checked description.
struct Description {
    frames: usize,
    /// Sum of frame sizes: the mdat payload.
    data_len: u64,
    /// Where the last segment's bytes begin in the mdat payload.
    last_segment_start: u64,
    /// Sum of frame durations.
    media_duration: u64,
    skip: u32,
    duration: u64,
    /// Any non-key frame: otherwise `stss` is left out (all are sync).
    any_non_key: bool,
}

impl Description {
    fn check(
        entries: &[Mp4SampleEntry],
        segments: &[Mp4Segment],
        skip: u32,
        duration: u64,
    ) -> Result<Self, Mp4Error> {
        let invalid = |s: String| Err(Mp4Error::Invalid(s));
        if entries.len() > MAX_ENTRIES {
            return invalid(format!("more than {MAX_ENTRIES} sample entries"));
        }
        for e in entries {
            // JPEG needs no decoder configuration: every frame is whole.
            let needs_config = e.codec != Codec::Jpeg;
            if (needs_config && e.decoder_config.is_empty())
                || e.decoder_config.len() > MAX_DECODER_CONFIG
            {
                return invalid(format!(
                    "decoder configuration of {} bytes",
                    e.decoder_config.len()
                ));
            }
        }
        if segments.is_empty() {
            return invalid("no segments".into());
        }
        let mut d = Description {
            frames: 0,
            data_len: 0,
            last_segment_start: 0,
            media_duration: 0,
            skip,
            duration,
            any_non_key: false,
        };
        for (i, s) in segments.iter().enumerate() {
            if s.sample_entry >= entries.len() {
                return invalid(format!(
                    "segment {i} uses sample entry {} of {}",
                    s.sample_entry,
                    entries.len()
                ));
            }
            match s.frames.first() {
                None => return invalid(format!("segment {i} has no frames")),
                Some(f) if !f.key => {
                    return invalid(format!("segment {i} does not start with a key frame"))
                }
                Some(_) => {}
            }
            d.frames += s.frames.len();
            if d.frames > MAX_FRAMES {
                return invalid(format!("more than {MAX_FRAMES} frames"));
            }
            d.last_segment_start = d.data_len;
            for f in &s.frames {
                d.data_len += u64::from(f.size);
                d.media_duration += u64::from(f.duration_90k);
                d.any_non_key |= !f.key;
            }
        }
        if skip > 0 && u64::from(skip) >= d.media_duration {
            return invalid(format!(
                "skipping {skip} of {} (90 kHz units) leaves nothing",
                d.media_duration
            ));
        }
        Ok(d)
    }
}

fn ftyp() -> Result<Vec<u8>, Mp4Error> {
    let mut w = BoxWriter::with_capacity(28);
    let b = w.begin(b"ftyp");
    w.bytes(b"isom"); // major brand
    w.u32(0x200); // minor version
    for brand in [b"isom", b"mp42", b"avc1"] {
        w.bytes(brand);
    }
    w.end(b)?;
    Ok(w.buf)
}

/// The unity matrix of `mvhd` and `tkhd` (16.16 and 2.30 fixed point).
pub(crate) const MATRIX: [u32; 9] = [0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x4000_0000];

fn fits32(v: u64) -> bool {
    v <= u64::from(u32::MAX)
}

/// Writes a time field pair or duration in the width of the box's version.
fn time(w: &mut BoxWriter, v1: bool, v: u64) {
    if v1 {
        w.u64(v);
    } else {
        // Callers choose version 1 whenever a value does not fit.
        w.u32(v as u32);
    }
}

fn moov(
    d: &Description,
    entries: &[Mp4SampleEntry],
    segments: &[Mp4Segment],
    creation: u64,
    data_start: u64,
    co64: bool,
) -> Result<Vec<u8>, Mp4Error> {
    // stsz 4 + stts up to 8 + stss up to 4 bytes a frame, and some.
    let mut w = BoxWriter::with_capacity(d.frames.saturating_mul(16).saturating_add(1024));
    let moov = w.begin(b"moov");

    let v1 = !fits32(creation) || !fits32(d.duration);
    let mvhd = w.begin_full(b"mvhd", u8::from(v1), 0);
    time(&mut w, v1, creation);
    time(&mut w, v1, creation);
    w.u32(TIMESCALE);
    time(&mut w, v1, d.duration);
    w.u32(0x0001_0000); // rate 1.0
    w.u16(0x0100); // volume 1.0
    w.zeros(2 + 8); // reserved
    for m in MATRIX {
        w.u32(m);
    }
    w.zeros(6 * 4); // pre_defined
    w.u32(2); // next_track_ID
    w.end(mvhd)?;

    let trak = w.begin(b"trak");
    // The track's presentation size: that of the first segment's entry.
    let first = segments
        .first()
        .and_then(|s| entries.get(s.sample_entry))
        .ok_or_else(|| Mp4Error::Invalid("no first entry".into()))?;
    let tkhd = w.begin_full(b"tkhd", u8::from(v1), 0x3); // enabled, in movie
    time(&mut w, v1, creation);
    time(&mut w, v1, creation);
    w.u32(1); // track_ID
    w.u32(0); // reserved
    time(&mut w, v1, d.duration);
    w.zeros(8); // reserved
    w.u16(0); // layer
    w.u16(0); // alternate_group
    w.u16(0); // volume: not audio
    w.u16(0); // reserved
    for m in MATRIX {
        w.u32(m);
    }
    w.u32(u32::from(first.width) << 16);
    w.u32(u32::from(first.height) << 16);
    w.end(tkhd)?;

    // The edit list: play `duration` of media from `skip` on, so a file
    // starting at a key frame before the requested time still shows the
    // requested time first.
    let edts = w.begin(b"edts");
    let elst_v1 = !fits32(d.duration) || d.skip > i32::MAX as u32;
    let elst = w.begin_full(b"elst", u8::from(elst_v1), 0);
    w.u32(1); // entry_count
    time(&mut w, elst_v1, d.duration); // segment_duration (movie timescale)
    time(&mut w, elst_v1, u64::from(d.skip)); // media_time (media timescale)
    w.u16(1); // media_rate_integer
    w.u16(0); // media_rate_fraction
    w.end(elst)?;
    w.end(edts)?;

    let mdia = w.begin(b"mdia");
    let mdhd_v1 = v1 || !fits32(d.media_duration);
    let mdhd = w.begin_full(b"mdhd", u8::from(mdhd_v1), 0);
    time(&mut w, mdhd_v1, creation);
    time(&mut w, mdhd_v1, creation);
    w.u32(TIMESCALE);
    time(&mut w, mdhd_v1, d.media_duration);
    w.u16(0x55c4); // language "und", three 5-bit letters minus 0x60
    w.u16(0); // pre_defined
    w.end(mdhd)?;

    let hdlr = w.begin_full(b"hdlr", 0, 0);
    w.u32(0); // pre_defined
    w.bytes(b"vide");
    w.zeros(12); // reserved
    w.bytes(b"VideoHandler\0");
    w.end(hdlr)?;

    let minf = w.begin(b"minf");
    let vmhd = w.begin_full(b"vmhd", 0, 1); // flags 1, as the spec requires
    w.zeros(2 + 6); // graphicsmode, opcolor
    w.end(vmhd)?;
    let dinf = w.begin(b"dinf");
    let dref = w.begin_full(b"dref", 0, 0);
    w.u32(1); // entry_count
    let url = w.begin_full(b"url ", 0, 1); // flag 1: media in this file
    w.end(url)?;
    w.end(dref)?;
    w.end(dinf)?;

    let stbl = w.begin(b"stbl");
    stsd(&mut w, entries)?;
    stts(&mut w, segments)?;
    if d.any_non_key {
        stss(&mut w, segments)?;
    }
    stsc(&mut w, segments)?;
    stsz(&mut w, segments, d.frames)?;
    chunk_offsets(&mut w, segments, data_start, co64)?;
    w.end(stbl)?;
    w.end(minf)?;
    w.end(mdia)?;
    w.end(trak)?;
    w.end(moov)?;
    Ok(w.buf)
}

/// The sample descriptions: every entry, whether a segment uses it or not,
/// so `sample_description_index` is the entry's index plus one.
pub(crate) fn stsd(w: &mut BoxWriter, entries: &[Mp4SampleEntry]) -> Result<(), Mp4Error> {
    let stsd = w.begin_full(b"stsd", 0, 0);
    w.u32(entries.len() as u32);
    for e in entries {
        let fourcc = match e.codec {
            Codec::H264 => b"avc1",
            Codec::H265 => b"hvc1",
            // MPEG-4 visual sample entry; the `esds` names JPEG.
            Codec::Jpeg => b"mp4v",
        };
        let entry = w.begin(fourcc);
        w.zeros(6); // reserved
        w.u16(1); // data_reference_index
        w.u16(0); // pre_defined
        w.u16(0); // reserved
        w.zeros(12); // pre_defined
        w.u16(e.width);
        w.u16(e.height);
        w.u32(0x0048_0000); // horizresolution 72 dpi
        w.u32(0x0048_0000); // vertresolution 72 dpi
        w.u32(0); // reserved
        w.u16(1); // frame_count
        w.zeros(32); // compressorname (empty Pascal string)
        w.u16(0x0018); // depth: colour, no alpha
        w.u16(0xffff); // pre_defined -1
        match e.codec {
            Codec::H264 | Codec::H265 => {
                let name = if e.codec == Codec::H264 {
                    b"avcC"
                } else {
                    b"hvcC"
                };
                let cfg = w.begin(name);
                w.bytes(&e.decoder_config);
                w.end(cfg)?;
            }
            Codec::Jpeg => jpeg_esds(w)?,
        }
        w.end(entry)?;
    }
    w.end(stsd)?;
    Ok(())
}

/// The elementary stream descriptor (ISO/IEC 14496-1) of a JPEG track:
/// object type 0x6C (ISO/IEC 10918-1), a visual stream, no decoder
/// specific information.
fn jpeg_esds(w: &mut BoxWriter) -> Result<(), Mp4Error> {
    let esds = w.begin_full(b"esds", 0, 0);
    // Descriptor lengths are one byte here: all are under 128.
    w.bytes(&[0x03, 3 + 15 + 3]); // ES_Descriptor
    w.u16(1); // ES_ID
    w.bytes(&[0]); // no stream dependence, URL or OCR stream
    w.bytes(&[0x04, 13]); // DecoderConfigDescriptor
    w.bytes(&[0x6C]); // objectTypeIndication: JPEG
    w.bytes(&[(0x04 << 2) | 1]); // streamType visual, upStream 0, reserved 1
    w.bytes(&[0, 0, 0]); // bufferSizeDB: unknown
    w.u32(0); // maxBitrate: unknown
    w.u32(0); // avgBitrate: unknown
    w.bytes(&[0x06, 1, 0x02]); // SLConfigDescriptor, predefined for MP4
    w.end(esds)?;
    Ok(())
}

/// Decoding times: runs of equal durations.
fn stts(w: &mut BoxWriter, segments: &[Mp4Segment]) -> Result<(), Mp4Error> {
    let b = w.begin_full(b"stts", 0, 0);
    let count_at = w.buf.len();
    w.u32(0);
    let mut runs = 0u32;
    let mut run: Option<(u32, u32)> = None; // (count, duration)
    for f in segments.iter().flat_map(|s| &s.frames) {
        run = match run {
            Some((n, dur)) if dur == f.duration_90k => Some((n + 1, dur)),
            Some((n, dur)) => {
                w.u32(n);
                w.u32(dur);
                runs += 1;
                Some((1, f.duration_90k))
            }
            None => Some((1, f.duration_90k)),
        };
    }
    if let Some((n, dur)) = run {
        w.u32(n);
        w.u32(dur);
        runs += 1;
    }
    patch_u32(w, count_at, runs);
    w.end(b)?;
    Ok(())
}

/// Sync samples: the 1-based numbers of key frames.
fn stss(w: &mut BoxWriter, segments: &[Mp4Segment]) -> Result<(), Mp4Error> {
    let b = w.begin_full(b"stss", 0, 0);
    let count_at = w.buf.len();
    w.u32(0);
    let mut n = 0u32;
    for (i, f) in segments.iter().flat_map(|s| &s.frames).enumerate() {
        if f.key {
            // i < MAX_FRAMES, checked.
            w.u32(i as u32 + 1);
            n += 1;
        }
    }
    patch_u32(w, count_at, n);
    w.end(b)?;
    Ok(())
}

/// Sample-to-chunk: one chunk per segment; an entry wherever the number of
/// samples per chunk or the sample description changes.
fn stsc(w: &mut BoxWriter, segments: &[Mp4Segment]) -> Result<(), Mp4Error> {
    let b = w.begin_full(b"stsc", 0, 0);
    let count_at = w.buf.len();
    w.u32(0);
    let mut n = 0u32;
    let mut prev: Option<(usize, usize)> = None;
    for (i, s) in segments.iter().enumerate() {
        let this = (s.frames.len(), s.sample_entry);
        if prev != Some(this) {
            // Counts are bounded by MAX_FRAMES; entries by the caller's Vec
            // and checked against entries.len() (a u32 in stsd).
            w.u32(i as u32 + 1); // first_chunk
            w.u32(s.frames.len() as u32); // samples_per_chunk
            w.u32(s.sample_entry as u32 + 1); // sample_description_index
            n += 1;
            prev = Some(this);
        }
    }
    patch_u32(w, count_at, n);
    w.end(b)?;
    Ok(())
}

fn stsz(w: &mut BoxWriter, segments: &[Mp4Segment], frames: usize) -> Result<(), Mp4Error> {
    let b = w.begin_full(b"stsz", 0, 0);
    w.u32(0); // sample_size: each given
    w.u32(frames as u32); // <= MAX_FRAMES
    for f in segments.iter().flat_map(|s| &s.frames) {
        w.u32(f.size);
    }
    w.end(b)?;
    Ok(())
}

/// `stco` (or `co64` when an offset passes 4 GiB): where each segment's
/// chunk begins in the file.
fn chunk_offsets(
    w: &mut BoxWriter,
    segments: &[Mp4Segment],
    data_start: u64,
    co64: bool,
) -> Result<(), Mp4Error> {
    let b = w.begin_full(if co64 { b"co64" } else { b"stco" }, 0, 0);
    w.u32(segments.len() as u32);
    let mut at = data_start;
    for s in segments {
        if co64 {
            w.u64(at);
        } else {
            let v = u32::try_from(at)
                .map_err(|_| Mp4Error::Invalid("chunk offset over 32 bits".into()))?;
            w.u32(v);
        }
        at += s.frames.iter().map(|f| u64::from(f.size)).sum::<u64>();
    }
    w.end(b)?;
    Ok(())
}

fn patch_u32(w: &mut BoxWriter, at: usize, v: u32) {
    if let Some(field) = w.buf.get_mut(at..at + 4) {
        field.copy_from_slice(&v.to_be_bytes());
    }
}
