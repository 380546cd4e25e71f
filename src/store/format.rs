//! On-disk format: the pool header, the self-describing records that follow
//! it, the serialized [`VideoParams`] a recording's first record carries, and
//! the install's `meta` file. The byte layouts are those of docs/storage.md;
//! every integer is little-endian.
//!
//! Decoders take bytes read back from disk, which may be torn, stale or
//! damaged: they check every length before using it, never panic and never
//! allocate more than the bounds below allow.

use crate::stream::{Codec, VideoParams};
use crc::{Crc, Table, CRC_32_ISCSI};
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// CRC-32C (Castagnoli). Slice-by-16: a 16 KiB table buys a several-fold
/// faster checksum, which is what recovery spends its time on.
static CRC32C: Crc<u32, Table<16>> = Crc::<u32, Table<16>>::new(&CRC_32_ISCSI);

// ---------------------------------------------------------------------------
// Errors

/// Why bytes (or the meta file) are not in Vigil's format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FormatError {
    /// The buffer ends before the structure does; `need` is the total number
    /// of bytes (from the start of the buffer) needed to go further.
    Truncated { need: u32 },
    /// The magic number is wrong: not Vigil data, or never written.
    BadMagic { what: &'static str },
    /// Written by a format version this build does not know.
    BadVersion { what: &'static str, version: u32 },
    /// The checksum does not match: damaged or torn data.
    BadCrc { what: &'static str },
    /// A field is out of its bounds or inconsistent with another.
    Invalid {
        what: &'static str,
        why: &'static str,
    },
    /// The `meta` file is missing, unreadable or malformed.
    Meta { path: PathBuf, why: String },
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FormatError::Truncated { need } => {
                write!(f, "data ends early ({need} bytes needed)")
            }
            FormatError::BadMagic { what } => write!(
                f,
                "{what}: bad magic number (not written by Vigil, or not written yet)"
            ),
            FormatError::BadVersion { what, version } => write!(
                f,
                "{what}: format version {version} is not supported by this Vigil \
                 (it reads version {FORMAT_VERSION}); run the Vigil that wrote it, or a newer one"
            ),
            FormatError::BadCrc { what } => {
                write!(f, "{what}: checksum mismatch (damaged or partly written)")
            }
            FormatError::Invalid { what, why } => write!(f, "{what}: {why}"),
            FormatError::Meta { path, why } => write!(f, "{}: {why}", path.display()),
        }
    }
}

impl std::error::Error for FormatError {}

/// The one format version this build reads and writes, for pool headers,
/// records and serialized parameters alike.
pub const FORMAT_VERSION: u32 = 1;

fn invalid(what: &'static str, why: &'static str) -> FormatError {
    FormatError::Invalid { what, why }
}

// Little-endian readers over a slice already checked to be long enough by
// the caller; they return 0 rather than panic if that check was wrong.
fn le_u16(b: &[u8], at: usize) -> u16 {
    b.get(at..at + 2)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u16::from_le_bytes)
}
fn le_u32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u32::from_le_bytes)
}
fn le_u64(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u64::from_le_bytes)
}

// ---------------------------------------------------------------------------
// Pool header

/// Bytes reserved at the start of every pool file for its header; records
/// start at this offset.
pub const POOL_HEADER_BYTES: u64 = 4096;

const POOL_MAGIC: &[u8; 8] = b"VIGILPL1";
/// Bytes 0..40 are covered by the CRC stored at 40..44.
const POOL_CRC_AT: usize = 40;
const POOL_HEADER_USED: usize = 44;

/// The header at offset 0 of a pool file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolHeader {
    pub uuid: [u8; 16],
    pub index: u32,
    /// 0 = never written; else the generation the writer gave the pool when
    /// it last entered it.
    pub generation: u64,
}

impl PoolHeader {
    /// The whole 4096-byte header block, zero-padded.
    pub fn encode(&self) -> Box<[u8]> {
        let mut b = vec![0u8; POOL_HEADER_BYTES as usize].into_boxed_slice();
        b[0..8].copy_from_slice(POOL_MAGIC);
        b[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        b[12..28].copy_from_slice(&self.uuid);
        b[28..32].copy_from_slice(&self.index.to_le_bytes());
        b[32..40].copy_from_slice(&self.generation.to_le_bytes());
        let crc = CRC32C.checksum(&b[..POOL_CRC_AT]);
        b[POOL_CRC_AT..POOL_HEADER_USED].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Parses the header at the start of `buf` (at least 44 bytes; the
    /// padding after them is not checked).
    pub fn decode(buf: &[u8]) -> Result<PoolHeader, FormatError> {
        const WHAT: &str = "pool header";
        let b = buf.get(..POOL_HEADER_USED).ok_or(FormatError::Truncated {
            need: POOL_HEADER_USED as u32,
        })?;
        if &b[0..8] != POOL_MAGIC {
            return Err(FormatError::BadMagic { what: WHAT });
        }
        let version = le_u32(b, 8);
        if version != FORMAT_VERSION {
            return Err(FormatError::BadVersion {
                what: WHAT,
                version,
            });
        }
        if CRC32C.checksum(&b[..POOL_CRC_AT]) != le_u32(b, POOL_CRC_AT) {
            return Err(FormatError::BadCrc { what: WHAT });
        }
        let mut uuid = [0u8; 16];
        uuid.copy_from_slice(&b[12..28]);
        Ok(PoolHeader {
            uuid,
            index: le_u32(b, 28),
            generation: le_u64(b, 32),
        })
    }
}

// ---------------------------------------------------------------------------
// Records

/// Record flag: the first record of its recording; it carries the params.
pub const FLAG_FIRST: u8 = 1;
/// Record flag: frames were dropped just before this record.
pub const FLAG_GAP: u8 = 2;
const KNOWN_FLAGS: u8 = FLAG_FIRST | FLAG_GAP;

const RECORD_MAGIC: &[u8; 4] = b"VGLR";
/// Bytes of the fixed part of a record header, before the frame table.
pub const RECORD_FIXED_BYTES: u32 = 68;
const RECORD_CRC_AT: usize = 64;
/// Bytes per frame-table entry.
const FRAME_ENTRY_BYTES: u32 = 8;
/// Bit 31 of a frame-table size: key frame.
const KEY_BIT: u32 = 1 << 31;

/// Most frames one record may hold.
pub const MAX_FRAMES_PER_RECORD: u32 = 65536;
/// Largest serialized parameters (Q).
pub const MAX_PARAMS_BYTES: u32 = 64 * 1024;
/// Largest record header (H); the frame table and parameters at their
/// bounds fit well within it.
pub const MAX_HEADER_BYTES: u32 = 1024 * 1024;
/// Largest record payload (P). A bigger length read back is damage.
pub const MAX_PAYLOAD_BYTES: u32 = 64 * 1024 * 1024;
/// Largest single frame: the frame table keeps 31 bits of size.
pub const MAX_FRAME_BYTES: u32 = KEY_BIT - 1;

/// One frame of a record's frame table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameEntry {
    pub duration_90k: u32,
    pub size: u32,
    pub key: bool,
}

/// A record's header: everything but the payload (and its CRC, which only
/// exists on disk).
#[derive(Clone, Debug, PartialEq)]
pub struct RecordHeader {
    pub flags: u8,
    pub generation: u64,
    pub stream_id: u32,
    pub recording_id: u64,
    pub sequence: u32,
    pub media_start_90k: i64,
    pub start_wall_90k: i64,
    pub frames: Vec<FrameEntry>,
    /// The serialized parameters ([`encode_params`]); present exactly when
    /// `flags` has [`FLAG_FIRST`].
    pub params: Option<Vec<u8>>,
    pub payload_len: u32,
}

impl RecordHeader {
    /// The header length H this header encodes to.
    pub fn encoded_len(&self) -> u32 {
        let q = self.params.as_ref().map_or(0, |p| p.len() as u32);
        RECORD_FIXED_BYTES + FRAME_ENTRY_BYTES * self.frames.len() as u32 + q
    }

    /// Writes the encoded header (H bytes) into `out`, replacing what it
    /// held. The CRC stored in it covers the header and then `payload`'s
    /// parts in order, which are NOT copied: the caller writes `out`
    /// followed by the parts (e.g. `Pools::write_at(pool, off, &[out, a, b])`).
    /// `out`'s capacity is reused, so steady state allocates nothing.
    pub fn encode(&self, payload: &[&[u8]], out: &mut Vec<u8>) {
        debug_assert_eq!(
            payload.iter().map(|p| p.len() as u64).sum::<u64>(),
            u64::from(self.payload_len)
        );
        debug_assert_eq!(
            self.frames.iter().map(|f| u64::from(f.size)).sum::<u64>(),
            u64::from(self.payload_len)
        );
        debug_assert!(!self.frames.is_empty());
        debug_assert!(self.frames.len() as u32 <= MAX_FRAMES_PER_RECORD);
        debug_assert_eq!(self.params.is_some(), self.flags & FLAG_FIRST != 0);
        let params: &[u8] = self.params.as_deref().unwrap_or(&[]);
        debug_assert!(params.len() as u32 <= MAX_PARAMS_BYTES);

        out.clear();
        out.extend_from_slice(RECORD_MAGIC);
        out.push(FORMAT_VERSION as u8);
        out.push(self.flags);
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&self.encoded_len().to_le_bytes());
        out.extend_from_slice(&self.payload_len.to_le_bytes());
        out.extend_from_slice(&self.generation.to_le_bytes());
        out.extend_from_slice(&self.stream_id.to_le_bytes());
        out.extend_from_slice(&self.recording_id.to_le_bytes());
        out.extend_from_slice(&self.sequence.to_le_bytes());
        out.extend_from_slice(&self.media_start_90k.to_le_bytes());
        out.extend_from_slice(&self.start_wall_90k.to_le_bytes());
        out.extend_from_slice(&(self.frames.len() as u32).to_le_bytes());
        out.extend_from_slice(&(params.len() as u32).to_le_bytes());
        out.extend_from_slice(&[0, 0, 0, 0]); // CRC, filled below
        for f in &self.frames {
            debug_assert!(f.size <= MAX_FRAME_BYTES);
            out.extend_from_slice(&f.duration_90k.to_le_bytes());
            let size = (f.size & !KEY_BIT) | if f.key { KEY_BIT } else { 0 };
            out.extend_from_slice(&size.to_le_bytes());
        }
        out.extend_from_slice(params);
        debug_assert_eq!(out.len() as u32, self.encoded_len());

        let mut digest = CRC32C.digest();
        digest.update(out);
        for p in payload {
            digest.update(p);
        }
        let crc = digest.finalize();
        out[RECORD_CRC_AT..RECORD_CRC_AT + 4].copy_from_slice(&crc.to_le_bytes());
    }

    /// Parses the record header at the start of `buf`, returning it and its
    /// length H. `buf` may hold more (the payload, the next records); if it
    /// holds too little, `Truncated { need }` says how many bytes to read.
    /// Checks magic, version and every bound, not the CRC (see
    /// [`crc_matches`](Self::crc_matches)).
    pub fn decode(buf: &[u8]) -> Result<(RecordHeader, u32), FormatError> {
        const WHAT: &str = "record";
        let fixed = buf
            .get(..RECORD_FIXED_BYTES as usize)
            .ok_or(FormatError::Truncated {
                need: RECORD_FIXED_BYTES,
            })?;
        if &fixed[0..4] != RECORD_MAGIC {
            return Err(FormatError::BadMagic { what: WHAT });
        }
        let version = u32::from(fixed[4]);
        if version != FORMAT_VERSION {
            return Err(FormatError::BadVersion {
                what: WHAT,
                version,
            });
        }
        let flags = fixed[5];
        if flags & !KNOWN_FLAGS != 0 {
            return Err(invalid(WHAT, "unknown flags"));
        }
        if le_u16(fixed, 6) != 0 {
            return Err(invalid(WHAT, "reserved bytes not zero"));
        }
        let h = le_u32(fixed, 8);
        let p = le_u32(fixed, 12);
        let f = le_u32(fixed, 56);
        let q = le_u32(fixed, 60);
        if f == 0 {
            return Err(invalid(WHAT, "no frames"));
        }
        if f > MAX_FRAMES_PER_RECORD {
            return Err(invalid(WHAT, "too many frames"));
        }
        if q > MAX_PARAMS_BYTES {
            return Err(invalid(WHAT, "parameters too long"));
        }
        if (q != 0) != (flags & FLAG_FIRST != 0) {
            return Err(invalid(
                WHAT,
                "parameters present without the first-record flag, or missing with it",
            ));
        }
        if p > MAX_PAYLOAD_BYTES {
            return Err(invalid(WHAT, "payload too long"));
        }
        // Cannot overflow: each term is bounded well below 2^32 / 3.
        let expected_h = RECORD_FIXED_BYTES + FRAME_ENTRY_BYTES * f + q;
        if h != expected_h || h > MAX_HEADER_BYTES {
            return Err(invalid(WHAT, "header length disagrees with its contents"));
        }
        let b = buf
            .get(..h as usize)
            .ok_or(FormatError::Truncated { need: h })?;

        let table_end = (RECORD_FIXED_BYTES + FRAME_ENTRY_BYTES * f) as usize;
        let table = b
            .get(RECORD_FIXED_BYTES as usize..table_end)
            .ok_or(FormatError::Truncated { need: h })?;
        let mut frames = Vec::with_capacity(f as usize);
        let mut total: u64 = 0;
        for e in table.chunks_exact(FRAME_ENTRY_BYTES as usize) {
            let raw = le_u32(e, 4);
            let size = raw & !KEY_BIT;
            total += u64::from(size);
            frames.push(FrameEntry {
                duration_90k: le_u32(e, 0),
                size,
                key: raw & KEY_BIT != 0,
            });
        }
        if total != u64::from(p) {
            return Err(invalid(WHAT, "frame sizes do not add up to the payload"));
        }
        let params = if q == 0 {
            None
        } else {
            Some(
                b.get(table_end..)
                    .ok_or(FormatError::Truncated { need: h })?
                    .to_vec(),
            )
        };
        Ok((
            RecordHeader {
                flags,
                generation: le_u64(b, 16),
                stream_id: le_u32(b, 24),
                recording_id: le_u64(b, 28),
                sequence: le_u32(b, 36),
                media_start_90k: le_u64(b, 40) as i64,
                start_wall_90k: le_u64(b, 48) as i64,
                frames,
                params,
                payload_len: p,
            },
            h,
        ))
    }

    /// True when the CRC stored in `header_bytes` (the whole H-byte header)
    /// matches it and `payload`.
    pub fn crc_matches(header_bytes: &[u8], payload: &[u8]) -> bool {
        let mut c = RecordCrc::new(header_bytes);
        c.update(payload);
        c.matches()
    }
}

/// An incremental record CRC check, for payloads read in pieces.
pub struct RecordCrc {
    digest: crc::Digest<'static, u32, Table<16>>,
    stored: Option<u32>,
}

impl RecordCrc {
    /// Starts a check with the whole H-byte header.
    pub fn new(header_bytes: &[u8]) -> Self {
        let mut digest = CRC32C.digest();
        let stored = match (
            header_bytes.get(..RECORD_CRC_AT),
            header_bytes.get(RECORD_CRC_AT + 4..),
        ) {
            (Some(before), Some(after)) => {
                digest.update(before);
                digest.update(&[0, 0, 0, 0]);
                digest.update(after);
                Some(le_u32(header_bytes, RECORD_CRC_AT))
            }
            _ => None,
        };
        RecordCrc { digest, stored }
    }

    /// Adds the next piece of the payload.
    pub fn update(&mut self, payload_piece: &[u8]) {
        self.digest.update(payload_piece);
    }

    /// Whether the stored CRC matches everything given.
    pub fn matches(self) -> bool {
        self.stored == Some(self.digest.finalize())
    }
}

// ---------------------------------------------------------------------------
// Serialized VideoParams
//
// version u8 (1) | codec u8 (1 h264, 2 h265, 3 jpeg) | width u16 | height u16
// | fps_milli u32 (0 = none) | rfc6381 len u16 + UTF-8 | decoder_config len
// u32 + bytes. Nothing may follow.

const PARAMS_FIXED_BYTES: usize = 1 + 1 + 2 + 2 + 4;
/// Longest RFC 6381 codec string accepted; real ones are under 40 bytes.
pub const MAX_RFC6381_BYTES: usize = 256;

fn codec_byte(c: Codec) -> u8 {
    match c {
        Codec::H264 => 1,
        Codec::H265 => 2,
        Codec::Jpeg => 3,
    }
}

/// Longest camera name or stream kind stored in a first record.
const MAX_NAME_BYTES: usize = 64;

/// The parameters area of a recording's first record: which stream it is
/// (camera name and kind, so that the index can be rebuilt from the pools
/// alone), then the serialized `VideoParams` (`encode_params`).
pub fn encode_first_params(camera: &str, kind: &str, params: &[u8], out: &mut Vec<u8>) {
    out.clear();
    for name in [camera, kind] {
        let b = &name.as_bytes()[..name.len().min(MAX_NAME_BYTES)];
        out.push(b.len() as u8);
        out.extend_from_slice(b);
    }
    out.extend_from_slice(params);
}

/// Splits a first record's parameters area: `(camera, kind, parameters)`.
pub fn decode_first_params(buf: &[u8]) -> Result<(String, String, VideoParams), FormatError> {
    const WHAT: &str = "stream identity";
    let mut rest = buf;
    let mut names = [String::new(), String::new()];
    for name in names.iter_mut() {
        let (&len, tail) = rest
            .split_first()
            .ok_or_else(|| invalid(WHAT, "truncated"))?;
        let len = usize::from(len);
        if len > MAX_NAME_BYTES || tail.len() < len {
            return Err(invalid(WHAT, "bad name length"));
        }
        *name = std::str::from_utf8(&tail[..len])
            .map_err(|_| invalid(WHAT, "name is not UTF-8"))?
            .to_owned();
        rest = &tail[len..];
    }
    let [camera, kind] = names;
    Ok((camera, kind, decode_params(rest)?))
}

/// Whether `p` serializes within the bounds [`decode_params`] accepts (codec
/// string of at most [`MAX_RFC6381_BYTES`], whole at most
/// [`MAX_PARAMS_BYTES`]). The writer must not store parameters that fail
/// this: recovery could not read them back.
pub fn params_encodable(p: &VideoParams) -> bool {
    p.rfc6381_codec.len() <= MAX_RFC6381_BYTES
        && PARAMS_FIXED_BYTES + 2 + p.rfc6381_codec.len() + 4 + p.decoder_config.len()
            <= MAX_PARAMS_BYTES as usize
}

/// Writes `p` serialized into `out` (which is cleared first). Check
/// [`params_encodable`] first: parameters beyond the bounds are written but
/// would not decode.
pub fn encode_params(p: &VideoParams, out: &mut Vec<u8>) {
    out.clear();
    out.push(FORMAT_VERSION as u8);
    out.push(codec_byte(p.codec));
    out.extend_from_slice(&p.width.to_le_bytes());
    out.extend_from_slice(&p.height.to_le_bytes());
    out.extend_from_slice(&p.fps_milli.unwrap_or(0).to_le_bytes());
    let s = p.rfc6381_codec.as_bytes();
    out.extend_from_slice(&(s.len() as u16).to_le_bytes());
    out.extend_from_slice(s);
    out.extend_from_slice(&(p.decoder_config.len() as u32).to_le_bytes());
    out.extend_from_slice(&p.decoder_config);
}

/// Parses what [`encode_params`] wrote; the whole of `buf`.
pub fn decode_params(buf: &[u8]) -> Result<VideoParams, FormatError> {
    const WHAT: &str = "video parameters";
    if buf.len() > MAX_PARAMS_BYTES as usize {
        return Err(invalid(WHAT, "too long"));
    }
    let fixed = buf
        .get(..PARAMS_FIXED_BYTES)
        .ok_or(invalid(WHAT, "truncated"))?;
    if u32::from(fixed[0]) != FORMAT_VERSION {
        return Err(FormatError::BadVersion {
            what: WHAT,
            version: u32::from(fixed[0]),
        });
    }
    let codec = match fixed[1] {
        1 => Codec::H264,
        2 => Codec::H265,
        3 => Codec::Jpeg,
        _ => return Err(invalid(WHAT, "unknown codec")),
    };
    let width = le_u16(fixed, 2);
    let height = le_u16(fixed, 4);
    let fps = le_u32(fixed, 6);
    let rest = &buf[PARAMS_FIXED_BYTES..];
    if rest.len() < 2 {
        return Err(invalid(WHAT, "truncated"));
    }
    let slen = usize::from(le_u16(rest, 0));
    if slen > MAX_RFC6381_BYTES {
        return Err(invalid(WHAT, "codec string too long"));
    }
    let s = rest.get(2..2 + slen).ok_or(invalid(WHAT, "truncated"))?;
    let rfc6381_codec = std::str::from_utf8(s)
        .map_err(|_| invalid(WHAT, "codec string not UTF-8"))?
        .to_owned();
    let rest = &rest[2 + slen..];
    if rest.len() < 4 {
        return Err(invalid(WHAT, "truncated"));
    }
    let clen = le_u32(rest, 0) as usize;
    let config = &rest[4..];
    if config.len() != clen {
        return Err(invalid(
            WHAT,
            "decoder config length disagrees with the data",
        ));
    }
    Ok(VideoParams {
        codec,
        width,
        height,
        fps_milli: if fps == 0 { None } else { Some(fps) },
        rfc6381_codec,
        decoder_config: config.to_vec(),
    })
}

// ---------------------------------------------------------------------------
// The meta file

/// Name of the meta file in the storage directory.
pub const META_FILE: &str = "meta";
const META_FIRST_LINE: &str = "vigil-meta 1";
/// The meta file is a few dozen bytes; anything much bigger is not ours.
const META_MAX_BYTES: u64 = 1024;

/// A new random (RFC 4122 version 4) uuid, from /dev/urandom.
pub fn new_uuid() -> io::Result<[u8; 16]> {
    let mut u = [0u8; 16];
    File::open("/dev/urandom")?.read_exact(&mut u)?;
    u[6] = (u[6] & 0x0f) | 0x40;
    u[8] = (u[8] & 0x3f) | 0x80;
    Ok(u)
}

/// The uuid as 32 lowercase hex digits, as the meta file holds it.
pub fn uuid_hex(u: &[u8; 16]) -> String {
    use fmt::Write as _;
    let mut s = String::with_capacity(32);
    for b in u {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn parse_uuid_hex(s: &str) -> Option<[u8; 16]> {
    let b = s.as_bytes();
    if b.len() != 32 {
        return None;
    }
    let mut u = [0u8; 16];
    for (i, pair) in b.chunks_exact(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        u[i] = (hi * 16 + lo) as u8;
    }
    Some(u)
}

/// Writes `dir/meta` atomically: a temporary file, fsync, rename over the
/// old one, fsync of the directory.
pub fn write_meta(dir: &Path, uuid: &[u8; 16]) -> io::Result<()> {
    let tmp = dir.join("meta.tmp");
    let text = format!("{META_FIRST_LINE}\nuuid {}\n", uuid_hex(uuid));
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, dir.join(META_FILE))?;
    sync_dir(dir)
}

/// Reads the uuid from `dir/meta`.
pub fn read_meta(dir: &Path) -> Result<[u8; 16], FormatError> {
    let path = dir.join(META_FILE);
    let err = |why: String| FormatError::Meta {
        path: path.clone(),
        why,
    };
    let f = File::open(&path).map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            err(
                "missing: this directory holds no Vigil storage (run `vigil init`), \
                 or the file was deleted"
                    .to_owned(),
            )
        } else {
            err(format!("cannot read: {e}"))
        }
    })?;
    let mut text = String::new();
    f.take(META_MAX_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| err(format!("cannot read: {e}")))?;
    if text.len() as u64 > META_MAX_BYTES {
        return Err(err(
            "malformed: far too long for a Vigil meta file".to_owned()
        ));
    }
    let mut lines = text.lines();
    match lines.next() {
        Some(l) if l.trim_end() == META_FIRST_LINE => {}
        Some(l) if l.starts_with("vigil-meta ") => {
            return Err(err(format!(
                "written by another version of Vigil ({:?}); this one reads {META_FIRST_LINE:?}",
                l.trim_end()
            )))
        }
        _ => {
            return Err(err(format!(
                "malformed: does not start with {META_FIRST_LINE:?}"
            )))
        }
    }
    for l in lines {
        if let Some(hex) = l.strip_prefix("uuid ") {
            return parse_uuid_hex(hex.trim()).ok_or_else(|| {
                err("malformed: the uuid line does not hold 32 hex digits".to_owned())
            });
        }
    }
    Err(err("malformed: no uuid line".to_owned()))
}

/// fsyncs a directory, so a rename or a new file in it is durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests;
