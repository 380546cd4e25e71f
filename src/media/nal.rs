//! What the H.264 (RFC 6184) and H.265 (RFC 7798) depacketizers share:
//! gathering NAL units from single, aggregation and fragmentation packets
//! into one access unit, finding where access units end, and handling
//! loss, oversized frames and the camera quirks common to both.
//!
//! The codec-specific parts (payload header layout, NAL unit types,
//! parameter sets and the decoder configuration record) sit behind
//! [`NalCodec`].
//!
//! The access unit is built in place in one buffer owned by the
//! depacketizer, as 4-byte length-prefixed NAL units; the buffer is reused
//! for every frame and never grows past `max_frame_bytes`.

use super::{DepacketizeError, Frame, VideoParams};
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;

/// Bytes of the length prefix before every NAL unit in a sample.
const LENGTH_PREFIX: usize = 4;

/// The largest parameter set accepted. Real SPS/PPS/VPS are well under a
/// kilobyte even with scaling lists; the limit bounds what a hostile camera
/// can make us keep.
pub(crate) const MAX_PARAM_SET_BYTES: usize = 8192;

/// What a NAL unit is, as far as assembling access units goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NalClass {
    /// A coded slice of a picture; `key` for IDR / IRAP pictures.
    Slice { key: bool },
    /// SPS, PPS or VPS: kept out of the sample, in the decoder config.
    ParamSet,
    /// Access unit delimiter: dropped, the sample format does not need it.
    Aud,
    /// Anything else (SEI, end of sequence, ...): kept in the sample.
    Other,
}

/// An RTP payload, split by its payload header.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Payload<'a> {
    /// One NAL unit (which may turn out to hold several, Annex B style).
    Single(&'a [u8]),
    /// STAP-A / AP: `body` is the part after the payload header;
    /// `first_don`/`next_don` are the bytes of decoding order number
    /// fields before the first / each later NAL size (H.265 with
    /// `sprop-max-don-diff` > 0 only).
    Aggregate {
        body: &'a [u8],
        first_don: usize,
        next_don: usize,
    },
    /// FU-A / FU: `header` is the reconstructed NAL header (only the first
    /// `HEADER_LEN` bytes are meaningful), `data` the fragment's bytes.
    Fragment {
        start: bool,
        end: bool,
        header: [u8; 2],
        nal_type: u8,
        data: &'a [u8],
    },
}

/// The codec-specific half of a NAL-based depacketizer.
pub(crate) trait NalCodec {
    /// Bytes of the NAL unit header (1 for H.264, 2 for H.265).
    const HEADER_LEN: usize;

    /// The NAL unit type, or `None` if `nal` is shorter than its header.
    fn nal_type(nal: &[u8]) -> Option<u8>;

    fn classify(nal_type: u8) -> NalClass;

    /// Splits an RTP payload by its payload header.
    fn parse_payload<'a>(&self, payload: &'a [u8]) -> Result<Payload<'a>, DepacketizeError>;

    /// Takes a parameter set NAL unit (from the SDP or in-band). A set
    /// equal to the current one must cost nothing (no allocation).
    fn param_set(&mut self, nal: &[u8]) -> Result<(), DepacketizeError>;

    /// The parameters for the frame about to be emitted, and whether they
    /// are new since the last emitted frame (which clears that flag).
    fn ready_params(&mut self) -> Result<(&VideoParams, bool), DepacketizeError>;

    fn params(&self) -> Option<&VideoParams>;

    /// Checks what a slice's header says against what an encoder can
    /// write and the stream's parameters: random bytes in a well-formed
    /// RTP stream must not be taken for video. `starts_picture`: the
    /// slice is the first of an intact access unit, so it must begin the
    /// picture. `thorough`: parse the whole slice header against the
    /// parameter sets (for the key frame ending a resynchronisation, where
    /// a random unit passing the quick checks would cost the most).
    fn check_slice(
        &self,
        nal: &[u8],
        starts_picture: bool,
        thorough: bool,
    ) -> Result<(), &'static str>;
}

/// A NAL unit being reassembled from fragmentation units.
#[derive(Clone, Copy, Debug)]
struct Fragment {
    /// Index in the buffer of its length prefix.
    start: usize,
    nal_type: u8,
}

/// The shared depacketizer; `H264Depacketizer` and `H265Depacketizer`
/// wrap one of these.
pub(crate) struct NalDepacketizer<C> {
    pub(crate) codec: C,
    /// The access unit in progress, as length-prefixed NAL units.
    buf: Vec<u8>,
    max: usize,
    max_u32: u32,
    /// Timestamp of the access unit in progress; `None` between units.
    au_ts: Option<i64>,
    /// The unit in progress holds at least one picture slice.
    has_slice: bool,
    key: bool,
    /// Packets were lost inside or just before the unit in progress.
    damaged: bool,
    /// The unit in progress outgrew `max`: ignore it until it ends.
    oversize: bool,
    frag: Option<Fragment>,
    /// A packet was lost (or a frame dropped) since the last intact key
    /// frame, so frames until the next one are flagged `after_loss`.
    since_loss: bool,
    /// A unit's slices failed [`NalCodec::check_slice`]: units are
    /// dropped until a key frame passes (nothing before it can decode).
    resync: bool,
    /// The unit in `buf` is complete but could not be emitted yet because
    /// this push already emitted one; it goes out first on the next push.
    ready: bool,
}

impl<C: NalCodec> NalDepacketizer<C> {
    pub(crate) fn new(codec: C, max_frame_bytes: u32) -> Self {
        NalDepacketizer {
            codec,
            buf: Vec::new(),
            max: usize::try_from(max_frame_bytes).unwrap_or(usize::MAX),
            max_u32: max_frame_bytes,
            au_ts: None,
            has_slice: false,
            key: false,
            damaged: false,
            oversize: false,
            frag: None,
            since_loss: false,
            resync: false,
            ready: false,
        }
    }

    pub(crate) fn params(&self) -> Option<&VideoParams> {
        self.codec.params()
    }

    pub(crate) fn push(
        &mut self,
        marker: bool,
        payload: &[u8],
        ts: i64,
        loss_before: bool,
        emit: &mut dyn FnMut(Frame<'_>),
    ) -> Result<(), DepacketizeError> {
        let mut result = Ok(());
        let mut emitted = false;
        if self.ready {
            keep_first(&mut result, self.emit_au(emit));
            emitted = true;
        }

        if loss_before {
            // Lost packets: a half-built NAL unit can never be completed.
            self.drop_fragment();
            if self.au_ts.is_some() {
                self.damaged = true;
            }
        }

        if let Some(au_ts) = self.au_ts {
            if au_ts != ts {
                // Quirk: cameras that never set the marker bit (or whose
                // marker packet was lost). A new timestamp means the unit
                // in progress is over: emit it before touching the packet.
                if self.frag.is_some() {
                    // The fragmented NAL unit's end never came.
                    self.drop_fragment();
                    self.damaged = true;
                }
                if self.oversize {
                    self.reset_au();
                } else if self.has_slice {
                    keep_first(&mut result, self.emit_au(emit));
                    emitted = true;
                } else {
                    // Only SEI / parameter sets so far (sent with a
                    // timestamp of their own by some cameras): they belong
                    // to the picture that follows, so carry them over.
                    self.au_ts = Some(ts);
                }
            }
        }
        if self.au_ts.is_none() {
            self.au_ts = Some(ts);
            self.has_slice = false;
            self.key = false;
            self.damaged = loss_before;
            self.oversize = false;
        }

        keep_first(&mut result, self.add_payload(payload));

        if marker {
            if self.frag.is_some() {
                // The marker bit says the unit ends here, yet a fragmented
                // NAL unit is still open: it will never be completed.
                self.drop_fragment();
                self.damaged = true;
                keep_first(
                    &mut result,
                    Err(DepacketizeError::Malformed(
                        "marker bit inside a fragmented NAL unit",
                    )),
                );
            }
            if self.oversize {
                // Resynchronise: the next packet starts a fresh unit.
                self.reset_au();
            } else if self.has_slice {
                if emitted {
                    // At most one emit per push: this unit goes out first
                    // thing on the next push.
                    self.ready = true;
                } else {
                    keep_first(&mut result, self.emit_au(emit));
                }
            }
            // Quirk: a marker bit on a packet holding only SEI or
            // parameter sets (no picture yet). Emitting would produce a
            // frame without a picture, so keep gathering until a slice
            // arrives with a marker or the timestamp changes.
        }
        result
    }

    fn add_payload(&mut self, payload: &[u8]) -> Result<(), DepacketizeError> {
        if self.oversize {
            return Ok(());
        }
        if payload.is_empty() {
            // Some cameras send an empty packet just to carry the marker.
            return Ok(());
        }
        let parsed = match self.codec.parse_payload(payload) {
            Ok(p) => p,
            Err(e) => {
                if self.frag.is_some() {
                    self.drop_fragment();
                    self.damaged = true;
                }
                return Err(e);
            }
        };
        if !matches!(parsed, Payload::Fragment { .. }) && self.frag.is_some() {
            // The last fragment of the open NAL unit was lost (without
            // the sequence gap saying so, e.g. a camera bug).
            self.drop_fragment();
            self.damaged = true;
        }
        match parsed {
            Payload::Single(data) => {
                let mut result = Ok(());
                // Quirk: Annex B start codes inside an RTP payload (some
                // cameras put a whole byte-stream access unit in one
                // "single NAL unit" packet). Legitimate NAL units can never
                // contain a start code (emulation prevention), so splitting
                // there is safe.
                for nal in AnnexB::new(data) {
                    keep_first(&mut result, self.add_nal(nal));
                }
                result
            }
            Payload::Aggregate {
                body,
                first_don,
                next_don,
            } => self.add_aggregate(body, first_don, next_don),
            Payload::Fragment {
                start,
                end,
                header,
                nal_type,
                data,
            } => self.add_fragment(start, end, &header, nal_type, data),
        }
    }

    fn add_aggregate(
        &mut self,
        body: &[u8],
        first_don: usize,
        next_don: usize,
    ) -> Result<(), DepacketizeError> {
        let mut result = Ok(());
        let mut rest = body;
        let mut don = first_don;
        while !rest.is_empty() {
            let Some((size, after)) = rest.get(don..).and_then(split_u16) else {
                // Quirk: trailing zero padding after the last unit.
                if rest.iter().all(|&b| b == 0) {
                    break;
                }
                keep_first(
                    &mut result,
                    Err(DepacketizeError::Malformed("truncated aggregation packet")),
                );
                break;
            };
            let size = usize::from(size);
            let Some(nal) = after.get(..size) else {
                keep_first(
                    &mut result,
                    Err(DepacketizeError::Malformed(
                        "aggregated NAL unit runs past the packet",
                    )),
                );
                break;
            };
            if size == 0 {
                if after.iter().all(|&b| b == 0) {
                    break;
                }
                keep_first(
                    &mut result,
                    Err(DepacketizeError::Malformed("empty aggregated NAL unit")),
                );
            } else {
                keep_first(&mut result, self.add_nal(nal));
            }
            rest = after.get(size..).unwrap_or(&[]);
            don = next_don;
        }
        result
    }

    fn add_fragment(
        &mut self,
        start: bool,
        end: bool,
        header: &[u8; 2],
        nal_type: u8,
        data: &[u8],
    ) -> Result<(), DepacketizeError> {
        if start {
            if self.frag.is_some() {
                // A new start before the previous NAL unit's end: its end
                // was lost.
                self.drop_fragment();
                self.damaged = true;
            }
            let header = header.get(..C::HEADER_LEN).unwrap_or(&header[..]);
            let len = LENGTH_PREFIX + header.len() + data.len();
            if !self.reserve(len) {
                return self.too_large();
            }
            self.frag = Some(Fragment {
                start: self.buf.len(),
                nal_type,
            });
            self.buf.extend_from_slice(&[0; LENGTH_PREFIX]);
            self.buf.extend_from_slice(header);
            self.buf.extend_from_slice(data);
        } else {
            let Some(frag) = self.frag else {
                // A continuation whose start was lost (or never sent).
                self.damaged = true;
                return Err(DepacketizeError::Malformed(
                    "fragment continuation without a start",
                ));
            };
            if frag.nal_type != nal_type {
                // Quirk: a camera changing the NAL unit type between the
                // fragments of one NAL unit. The unit is corrupt: drop it.
                self.drop_fragment();
                self.damaged = true;
                return Err(DepacketizeError::Malformed(
                    "NAL unit type changed between fragments",
                ));
            }
            // Quirk: fragments with no payload bytes at all are legal
            // enough to tolerate; appending nothing is fine.
            if !self.reserve(data.len()) {
                return self.too_large();
            }
            self.buf.extend_from_slice(data);
        }
        if end {
            return self.finish_fragment();
        }
        Ok(())
    }

    fn finish_fragment(&mut self) -> Result<(), DepacketizeError> {
        let Some(frag) = self.frag.take() else {
            return Ok(());
        };
        let nal_start = frag.start + LENGTH_PREFIX;
        match C::classify(frag.nal_type) {
            NalClass::ParamSet => {
                let r = match self.buf.get(nal_start..) {
                    Some(nal) => self.codec.param_set(nal),
                    None => Ok(()),
                };
                self.buf.truncate(frag.start);
                r
            }
            NalClass::Aud => {
                self.buf.truncate(frag.start);
                Ok(())
            }
            class => {
                let len = self.buf.len().saturating_sub(nal_start);
                let Ok(len) = u32::try_from(len) else {
                    return self.too_large();
                };
                if let Some(prefix) = self.buf.get_mut(frag.start..nal_start) {
                    prefix.copy_from_slice(&len.to_be_bytes());
                }
                self.note_class(class);
                Ok(())
            }
        }
    }

    /// Adds one complete NAL unit.
    fn add_nal(&mut self, nal: &[u8]) -> Result<(), DepacketizeError> {
        let Some(nal_type) = C::nal_type(nal) else {
            return Err(DepacketizeError::Malformed(
                "NAL unit shorter than its header",
            ));
        };
        match C::classify(nal_type) {
            NalClass::ParamSet => self.codec.param_set(nal),
            NalClass::Aud => Ok(()),
            class => {
                if self.oversize {
                    return Ok(());
                }
                let Ok(len) = u32::try_from(nal.len()) else {
                    return self.too_large();
                };
                if !self.reserve(LENGTH_PREFIX + nal.len()) {
                    return self.too_large();
                }
                self.buf.extend_from_slice(&len.to_be_bytes());
                self.buf.extend_from_slice(nal);
                self.note_class(class);
                Ok(())
            }
        }
    }

    fn note_class(&mut self, class: NalClass) {
        if let NalClass::Slice { key } = class {
            self.has_slice = true;
            self.key |= key;
        }
    }

    /// Makes room for `extra` more bytes without passing `max`; false if
    /// the unit would be too large.
    fn reserve(&mut self, extra: usize) -> bool {
        super::reserve_bounded(&mut self.buf, extra, self.max)
    }

    /// Drops the whole unit in progress for being too large; the rest of
    /// its packets are ignored until it ends.
    fn too_large(&mut self) -> Result<(), DepacketizeError> {
        self.buf.clear();
        self.frag = None;
        self.oversize = true;
        self.has_slice = false;
        self.key = false;
        // The frames after it refer to a frame that is gone.
        self.since_loss = true;
        Err(DepacketizeError::FrameTooLarge {
            limit: self.max_u32,
        })
    }

    fn drop_fragment(&mut self) {
        if let Some(frag) = self.frag.take() {
            self.buf.truncate(frag.start);
        }
    }

    fn reset_au(&mut self) {
        self.buf.clear();
        self.frag = None;
        self.au_ts = None;
        self.has_slice = false;
        self.key = false;
        self.damaged = false;
        self.oversize = false;
        self.ready = false;
    }

    /// Hands the unit in progress to `emit` (or drops it when there are no
    /// usable parameters yet) and starts afresh.
    fn emit_au(&mut self, emit: &mut dyn FnMut(Frame<'_>)) -> Result<(), DepacketizeError> {
        let Some(ts) = self.au_ts else {
            self.reset_au();
            return Ok(());
        };
        if let Err(why) = self.check_slices() {
            self.resync = true;
            self.since_loss = true;
            self.reset_au();
            return Err(DepacketizeError::BadSlice(why));
        }
        if self.resync {
            if !self.key {
                self.reset_au();
                return Err(DepacketizeError::BadSlice(
                    "waiting for a key frame after a bad slice",
                ));
            }
            self.resync = false;
        }
        let result = match self.codec.ready_params() {
            Ok((params, params_changed)) => {
                let after_loss = self.damaged || (self.since_loss && !self.key);
                emit(Frame {
                    timestamp_90k: ts,
                    key: self.key,
                    data: &self.buf,
                    params,
                    params_changed,
                    after_loss,
                });
                self.since_loss = if self.key {
                    self.damaged
                } else {
                    self.since_loss || self.damaged
                };
                Ok(())
            }
            Err(e) => {
                // Quirk: parameter sets missing or unusable in the SDP.
                // Frames wait (dropped) until in-band ones arrive; the
                // frames after a dropped one are damaged until a key frame.
                self.since_loss = true;
                Err(e)
            }
        };
        self.reset_au();
        result
    }

    /// Checks every slice of the unit in progress.
    fn check_slices(&self) -> Result<(), &'static str> {
        let mut starts_picture = !self.damaged;
        let mut rest = self.buf.as_slice();
        while let Some((len, tail)) = rest.split_first_chunk::<LENGTH_PREFIX>() {
            let len = u32::from_be_bytes(*len) as usize;
            let (nal, tail) = tail.split_at_checked(len).ok_or("truncated NAL unit")?;
            rest = tail;
            let Some(nal_type) = C::nal_type(nal) else {
                continue;
            };
            if let NalClass::Slice { .. } = C::classify(nal_type) {
                self.codec.check_slice(nal, starts_picture, self.resync)?;
                starts_picture = false;
            }
        }
        Ok(())
    }
}

/// `time_scale / ticks` frames per second in thousandths, when plausible.
pub(crate) fn fps_milli(time_scale: u32, ticks: u64) -> Option<u32> {
    if ticks == 0 {
        return None;
    }
    let v = u64::from(time_scale) * 1000 / ticks;
    // Timing info claiming over 1000 fps (or 0) is a placeholder, not a rate.
    if v == 0 || v > 1_000_000 {
        return None;
    }
    u32::try_from(v).ok()
}

/// Keeps the first error of several.
fn keep_first(acc: &mut Result<(), DepacketizeError>, r: Result<(), DepacketizeError>) {
    if acc.is_ok() {
        *acc = r;
    }
}

fn split_u16(b: &[u8]) -> Option<(u16, &[u8])> {
    match b {
        [hi, lo, rest @ ..] => Some((u16::from_be_bytes([*hi, *lo]), rest)),
        _ => None,
    }
}

/// Splits bytes at Annex B start codes (`00 00 01`, `00 00 00 01`),
/// yielding the non-empty NAL units between them with trailing zero bytes
/// removed. Bytes without any start code come out as one unit.
pub(crate) struct AnnexB<'a> {
    rest: &'a [u8],
}

impl<'a> AnnexB<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        AnnexB { rest: data }
    }
}

/// Index of the first `00 00 01` in `data`.
fn find_start_code(data: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(w) = data.get(i..i + 3) {
        if w[2] > 1 {
            // That byte is neither 0 nor 1, so no start code can begin at
            // i, i + 1 or i + 2.
            i += 3;
        } else if w == [0, 0, 1] {
            return Some(i);
        } else {
            i += 1;
        }
    }
    None
}

impl<'a> Iterator for AnnexB<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        loop {
            if self.rest.is_empty() {
                return None;
            }
            let (unit, rest) = match find_start_code(self.rest) {
                Some(i) => (
                    self.rest.get(..i).unwrap_or(&[]),
                    self.rest.get(i + 3..).unwrap_or(&[]),
                ),
                None => (self.rest, &[][..]),
            };
            self.rest = rest;
            let unit = trim_trailing_zeros(unit);
            if !unit.is_empty() {
                return Some(unit);
            }
        }
    }
}

/// Removes trailing zero bytes: a NAL unit never ends with one, so they are
/// padding (or the first byte of a 4-byte start code).
pub(crate) fn trim_trailing_zeros(mut b: &[u8]) -> &[u8] {
    while let [rest @ .., 0] = b {
        b = rest;
    }
    b
}

/// The value of `key` in an SDP `a=fmtp` parameter list, if present.
pub(crate) fn fmtp_param<'a>(fmtp: &'a str, key: &str) -> Option<&'a str> {
    // Quirk: tolerate the payload type number left in front ("96 a=b;...").
    let fmtp = fmtp.trim_start();
    let fmtp = match fmtp.split_once(char::is_whitespace) {
        Some((pt, rest)) if !pt.is_empty() && pt.bytes().all(|b| b.is_ascii_digit()) => rest,
        _ => fmtp,
    };
    fmtp.split(';').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        k.trim().eq_ignore_ascii_case(key).then(|| v.trim())
    })
}

/// Base64 as cameras write it in the SDP: padding optional.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Decodes a comma-separated list of base64 parameter sets (the SDP
/// `sprop-*` syntax) and hands each NAL unit to `f`. Undecodable entries
/// are skipped and counted in the return value.
pub(crate) fn for_each_sprop(value: &str, mut f: impl FnMut(&[u8])) -> usize {
    let mut bad = 0;
    for item in value.split(',') {
        let item = item.trim();
        if item.is_empty() || item.len() > MAX_PARAM_SET_BYTES * 2 {
            bad += usize::from(!item.is_empty());
            continue;
        }
        match LENIENT_BASE64.decode(item) {
            // Quirk: some cameras put Annex B start codes (and several
            // parameter sets) inside one base64 entry.
            Ok(bytes) => AnnexB::new(&bytes).for_each(&mut f),
            Err(_) => bad += 1,
        }
    }
    bad
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annexb_split() {
        let v: Vec<&[u8]> =
            AnnexB::new(&[0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0]).collect();
        assert_eq!(v, vec![&[0x67, 1, 2][..], &[0x68, 3][..]]);
        let v: Vec<&[u8]> = AnnexB::new(&[0x65, 1, 2, 3]).collect();
        assert_eq!(v, vec![&[0x65, 1, 2, 3][..]]);
        let v: Vec<&[u8]> = AnnexB::new(&[0x41, 9, 0, 0, 0, 1, 0x41, 8]).collect();
        assert_eq!(v, vec![&[0x41, 9][..], &[0x41, 8][..]]);
        assert_eq!(AnnexB::new(&[0, 0, 1]).count(), 0);
        assert_eq!(AnnexB::new(&[]).count(), 0);
        // 00 00 03 01 is escaped data, not a start code.
        assert_eq!(AnnexB::new(&[0x41, 0, 0, 3, 1]).count(), 1);
    }

    #[test]
    fn start_code_search_does_not_skip_codes() {
        for pos in 0..8 {
            let mut v = vec![0x55u8; 12];
            v[pos] = 0;
            v[pos + 1] = 0;
            v[pos + 2] = 1;
            assert_eq!(find_start_code(&v), Some(pos), "at {pos}");
        }
        assert_eq!(find_start_code(&[0, 0, 0, 0, 1]), Some(2));
        assert_eq!(find_start_code(&[0, 0]), None);
    }

    #[test]
    fn fmtp_lookup() {
        let f = "packetization-mode=1; Sprop-Parameter-Sets=Z2Q,aOk;profile-level-id=640028";
        assert_eq!(fmtp_param(f, "sprop-parameter-sets"), Some("Z2Q,aOk"));
        assert_eq!(fmtp_param(f, "profile-level-id"), Some("640028"));
        assert_eq!(fmtp_param(f, "nope"), None);
        assert_eq!(fmtp_param("96 a=b", "a"), Some("b"));
    }

    #[test]
    fn sprop_decoding() {
        let mut got = Vec::new();
        // "AAAAAWdkAB4=" is 00 00 00 01 67 64 00 1e; second has no padding.
        let bad = for_each_sprop("AAAAAWdkAB4=,aOvjyyLA,!!", |n| got.push(n.to_vec()));
        assert_eq!(bad, 1);
        assert_eq!(
            got,
            vec![
                vec![0x67, 0x64, 0x00, 0x1e],
                vec![0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0]
            ]
        );
    }
}
