//! Fragmented MP4 (ISO/IEC 14496-12 movie fragments): the init segment and
//! `moof`+`mdat` fragments used by `live.mp4` and the HLS segments.
//!
//! An init segment is `ftyp` and a `moov` with one video track (track 1,
//! timescale 90 kHz), no samples, one sample entry (written by the .mp4
//! builder's `stsd`) and `mvex`/`trex`. A fragment is a `moof` (`mfhd`
//! with its sequence number, one `traf`: `tfhd` with default-base-is-moof,
//! `tfdt` with the decode time of its first frame, one `trun` with every
//! frame's duration, size and sync flag and the offset of the first
//! frame's bytes) followed by an `mdat` holding the frames back to back.
//!
//! [`write_fragment_head`] writes everything up to the first frame byte
//! into a reused buffer, for frames handed over one by one (live);
//! [`fragment_file`] wraps it with frames read from the pools on demand,
//! its length known before the first byte (HLS segments).

use super::mp4::boxes::{BoxWriter, Oversize};
use super::mp4::{self, Mp4Error, Mp4File, Mp4Frame, Mp4SampleEntry, MATRIX, TIMESCALE};

/// At most this many frames in one fragment (about 5 hours at 60 fps): the
/// `trun` costs 12 bytes a frame, and a request must not make us allocate
/// without bound.
pub const MAX_FRAGMENT_FRAMES: usize = 1 << 20;

/// `trun` sample flags of a key frame: depends on no other sample.
const SYNC_FLAGS: u32 = 0x0200_0000;
/// Of any other frame: depends on others, not a sync sample.
const NON_SYNC_FLAGS: u32 = 0x0101_0000;

/// What a fragment says about one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FragSample {
    pub duration_90k: u32,
    pub size: u32,
    pub key: bool,
}

impl From<&Mp4Frame> for FragSample {
    fn from(f: &Mp4Frame) -> Self {
        FragSample {
            duration_90k: f.duration_90k,
            size: f.size,
            key: f.key,
        }
    }
}

/// The init segment (`ftyp` + `moov`) for a track described by `entry`.
/// H.264 and H.265 only: the players fragmented MP4 is for (MSE, HLS)
/// cannot play JPEG from it, so it is refused here rather than served.
pub fn init_segment(entry: &Mp4SampleEntry) -> Result<Vec<u8>, Mp4Error> {
    if entry.codec == crate::stream::Codec::Jpeg {
        return Err(Mp4Error::Unsupported(entry.codec));
    }
    if entry.decoder_config.is_empty() || entry.decoder_config.len() > 1 << 16 {
        return Err(Mp4Error::Invalid(format!(
            "decoder configuration of {} bytes",
            entry.decoder_config.len()
        )));
    }
    let mut w = BoxWriter::with_capacity(700 + entry.decoder_config.len());
    let ftyp = w.begin(b"ftyp");
    w.bytes(b"iso5"); // major brand: movie fragments with tfdt
    w.u32(0x200);
    let codec_brand = match entry.codec {
        crate::stream::Codec::H265 => b"hvc1",
        _ => b"avc1",
    };
    for brand in [b"iso5", b"iso6", b"mp41", codec_brand] {
        w.bytes(brand);
    }
    w.end(ftyp)?;

    let moov = w.begin(b"moov");
    let mvhd = w.begin_full(b"mvhd", 0, 0);
    w.u32(0); // creation_time
    w.u32(0); // modification_time
    w.u32(TIMESCALE);
    w.u32(0); // duration: unknown, the fragments carry it
    w.u32(0x0001_0000); // rate 1.0
    w.u16(0x0100); // volume 1.0
    w.zeros(2 + 8);
    for m in MATRIX {
        w.u32(m);
    }
    w.zeros(6 * 4);
    w.u32(2); // next_track_ID
    w.end(mvhd)?;

    let trak = w.begin(b"trak");
    let tkhd = w.begin_full(b"tkhd", 0, 0x3); // enabled, in movie
    w.u32(0);
    w.u32(0);
    w.u32(1); // track_ID
    w.u32(0);
    w.u32(0); // duration
    w.zeros(8);
    w.u16(0); // layer
    w.u16(0); // alternate_group
    w.u16(0); // volume
    w.u16(0);
    for m in MATRIX {
        w.u32(m);
    }
    w.u32(u32::from(entry.width) << 16);
    w.u32(u32::from(entry.height) << 16);
    w.end(tkhd)?;

    let mdia = w.begin(b"mdia");
    let mdhd = w.begin_full(b"mdhd", 0, 0);
    w.u32(0);
    w.u32(0);
    w.u32(TIMESCALE);
    w.u32(0);
    w.u16(0x55c4); // "und"
    w.u16(0);
    w.end(mdhd)?;
    let hdlr = w.begin_full(b"hdlr", 0, 0);
    w.u32(0);
    w.bytes(b"vide");
    w.zeros(12);
    w.bytes(b"VideoHandler\0");
    w.end(hdlr)?;
    let minf = w.begin(b"minf");
    let vmhd = w.begin_full(b"vmhd", 0, 1);
    w.zeros(8);
    w.end(vmhd)?;
    let dinf = w.begin(b"dinf");
    let dref = w.begin_full(b"dref", 0, 0);
    w.u32(1);
    let url = w.begin_full(b"url ", 0, 1);
    w.end(url)?;
    w.end(dref)?;
    w.end(dinf)?;
    let stbl = w.begin(b"stbl");
    mp4::stsd(&mut w, std::slice::from_ref(entry))?;
    // Empty sample tables: every sample is in a fragment.
    for fourcc in [b"stts", b"stsc", b"stco"] {
        let b = w.begin_full(fourcc, 0, 0);
        w.u32(0);
        w.end(b)?;
    }
    let stsz = w.begin_full(b"stsz", 0, 0);
    w.u32(0);
    w.u32(0);
    w.end(stsz)?;
    w.end(stbl)?;
    w.end(minf)?;
    w.end(mdia)?;
    w.end(trak)?;

    let mvex = w.begin(b"mvex");
    let trex = w.begin_full(b"trex", 0, 0);
    w.u32(1); // track_ID
    w.u32(1); // default_sample_description_index
    w.u32(0); // default_sample_duration
    w.u32(0); // default_sample_size
    w.u32(0); // default_sample_flags
    w.end(trex)?;
    w.end(mvex)?;
    w.end(moov)?;
    Ok(w.buf)
}

/// Appends to `out` a fragment's `moof` and `mdat` header for `samples`,
/// whose bytes (in order, back to back) must follow. `sequence` is the
/// `mfhd` sequence number, `decode_90k` the decode time of the first
/// sample. Returns the length of the `mdat` payload (the sum of sizes).
///
/// Writes into `out`'s existing allocation: a caller reusing one buffer
/// allocates nothing once it is large enough.
pub fn write_fragment_head<I>(
    out: &mut Vec<u8>,
    sequence: u32,
    decode_90k: u64,
    samples: I,
) -> Result<u64, Mp4Error>
where
    I: IntoIterator<Item = FragSample>,
    I::IntoIter: ExactSizeIterator + Clone,
{
    let samples = samples.into_iter();
    let n = samples.len();
    if n == 0 || n > MAX_FRAGMENT_FRAMES {
        return Err(Mp4Error::Invalid(format!("a fragment of {n} frames")));
    }
    let payload: u64 = samples.clone().map(|s| u64::from(s.size)).sum();
    let mut w = BoxWriter {
        buf: std::mem::take(out),
    };
    let result = fragment_boxes(&mut w, sequence, decode_90k, samples, n, payload);
    *out = w.buf;
    result.map(|()| payload)
}

fn fragment_boxes(
    w: &mut BoxWriter,
    sequence: u32,
    decode_90k: u64,
    samples: impl Iterator<Item = FragSample>,
    n: usize,
    payload: u64,
) -> Result<(), Mp4Error> {
    let moof_at = w.buf.len();
    let moof = w.begin(b"moof");
    let mfhd = w.begin_full(b"mfhd", 0, 0);
    w.u32(sequence);
    w.end(mfhd)?;
    let traf = w.begin(b"traf");
    let tfhd = w.begin_full(b"tfhd", 0, 0x02_0000); // default-base-is-moof
    w.u32(1); // track_ID
    w.end(tfhd)?;
    let tfdt = w.begin_full(b"tfdt", 1, 0);
    w.u64(decode_90k);
    w.end(tfdt)?;
    // data-offset, sample-duration, sample-size and sample-flags present.
    let trun = w.begin_full(b"trun", 0, 0x0701);
    w.u32(n as u32); // <= MAX_FRAGMENT_FRAMES
    let offset_at = w.buf.len();
    w.u32(0); // data_offset, patched below
    for s in samples {
        w.u32(s.duration_90k);
        w.u32(s.size);
        w.u32(if s.key { SYNC_FLAGS } else { NON_SYNC_FLAGS });
    }
    w.end(trun)?;
    w.end(traf)?;
    w.end(moof)?;
    let moof_len = w.buf.len() - moof_at;
    let large = payload > u64::from(u32::MAX) - 8;
    let mdat_header: usize = if large { 16 } else { 8 };
    if large {
        w.u32(1);
        w.bytes(b"mdat");
        w.u64(payload + 16);
    } else {
        // payload + 8 <= u32::MAX, checked.
        w.u32((payload + 8) as u32);
        w.bytes(b"mdat");
    }
    // The first frame's bytes, relative to the moof's first byte.
    let data_offset = u32::try_from(moof_len + mdat_header).map_err(|_| Oversize)?;
    if let Some(field) = w.buf.get_mut(offset_at..offset_at + 4) {
        field.copy_from_slice(&data_offset.to_be_bytes());
    }
    Ok(())
}

/// A whole fragment of `frames` (read on demand through a `SampleSource`):
/// its length is known before the first byte.
pub fn fragment_file(
    sequence: u32,
    decode_90k: u64,
    frames: &[Mp4Frame],
) -> Result<Mp4File, Mp4Error> {
    let mut head = Vec::with_capacity(128 + 12 * frames.len());
    write_fragment_head(
        &mut head,
        sequence,
        decode_90k,
        frames.iter().map(FragSample::from),
    )?;
    Ok(Mp4File::from_parts(head, frames))
}

#[cfg(test)]
pub(crate) mod tests;
