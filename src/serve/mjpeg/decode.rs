//! JPEG pictures from H.264 key frames: Cisco's OpenH264 decodes the key
//! frame to YUV 4:2:0, `jpeg-encoder` writes that as a baseline JPEG row
//! by row (no whole-frame RGB or interleaved copy). Both come with the
//! cargo feature `h264-snapshots` (default); without it [`H264Decoder::new`]
//! says so and the routes answer 415.
//!
//! Only key frames are decoded, each on its own: the decoder never needs a
//! reference picture, so a viewer gets a picture per key frame whatever
//! the camera's GOP structure, and a lost P-frame never smears one.
//!
//! Memory (measured on x86_64 with the clips and with 1080p test streams):
//! a decoder takes 4 MB, and allocates its picture buffers on the first
//! key frame: about 3 MB more for 640x360 and 24 MB for 1920x1080. The
//! SPS handed to it asks for one reference frame whatever the camera's
//! says (see [`sps`]; a 1080p stream signalling 16 took 94 MB in all
//! without that). Hence [`MAX_PIXELS`], and the producer dropping an idle
//! decoder.

// Without the decoder, the bitstream helpers (and their tests) go unused.
#![cfg_attr(not(feature = "h264-snapshots"), allow(dead_code))]

/// Largest picture decoded, in pixels: 1920x1088 (1080p in whole
/// macroblocks). A larger main stream costs a small board too much memory
/// (see the module doc); its sub stream is the one to show.
pub const MAX_PIXELS: u32 = 1920 * 1088;

/// Quality of the JPEGs made from H.264 (libjpeg's 1..=100 scale): small
/// enough for a board's uplink, clean enough for a preview.
pub const QUALITY: u8 = 80;

/// Whether this build can decode H.264.
pub const AVAILABLE: bool = cfg!(feature = "h264-snapshots");

/// Why a key frame gave no picture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The build has no decoder (feature `h264-snapshots` off).
    NotBuilt,
    /// The avcC record or the frame is not what the media layer promises.
    Malformed(&'static str),
    /// The decoder refused the bitstream or made no picture of it.
    Decoder(String),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::NotBuilt => f.write_str(
                "this build has no H.264 decoder (it was built without the cargo feature h264-snapshots)",
            ),
            DecodeError::Malformed(why) => write!(f, "malformed H.264 frame: {why}"),
            DecodeError::Decoder(why) => write!(f, "H.264 decoder: {why}"),
        }
    }
}

/// Appends the SPS and PPS NAL units of an AVCDecoderConfigurationRecord
/// (ISO/IEC 14496-15 5.3.3.1) to `out` in Annex B form, each after a
/// 4-byte start code; with `one_ref`, each SPS asks for one reference
/// frame (see [`sps`]), when it can be rewritten.
pub fn annexb_from_avcc(avcc: &[u8], one_ref: bool, out: &mut Vec<u8>) -> Result<(), DecodeError> {
    let bad = DecodeError::Malformed;
    // version, profile, compatibility, level, length size; then the SPS count.
    let sps_count = avcc.get(5).ok_or(bad("avcC too short"))? & 0x1f;
    if avcc.first() != Some(&1) {
        return Err(bad("avcC version is not 1"));
    }
    let mut at = 6;
    let sets =
        |count: u8, at: &mut usize, out: &mut Vec<u8>, rewrite: bool| -> Result<(), DecodeError> {
            for _ in 0..count {
                let len = avcc
                    .get(*at..*at + 2)
                    .ok_or(bad("avcC parameter set length cut short"))?;
                let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
                let nal = avcc
                    .get(*at + 2..*at + 2 + len)
                    .ok_or(bad("avcC parameter set cut short"))?;
                out.extend_from_slice(&[0, 0, 0, 1]);
                if !rewrite || sps::with_one_reference(nal, out).is_none() {
                    out.extend_from_slice(nal);
                }
                *at += 2 + len;
            }
            Ok(())
        };
    sets(sps_count, &mut at, out, one_ref)?;
    let pps_count = *avcc.get(at).ok_or(bad("avcC has no PPS count"))?;
    at += 1;
    sets(pps_count, &mut at, out, false)?;
    if sps_count == 0 || pps_count == 0 {
        return Err(bad("avcC lacks an SPS or a PPS"));
    }
    Ok(())
}

/// Appends a frame's NAL units, each prefixed by its 4-byte big-endian
/// length (the sample format of `crate::media`), to `out` in Annex B form.
/// Same size: each length becomes a 4-byte start code.
pub fn annexb_from_frame(frame: &[u8], out: &mut Vec<u8>) -> Result<(), DecodeError> {
    let mut rest = frame;
    while !rest.is_empty() {
        let (len, tail) = rest
            .split_first_chunk::<4>()
            .ok_or(DecodeError::Malformed("NAL length cut short"))?;
        let len = usize::try_from(u32::from_be_bytes(*len)).unwrap_or(usize::MAX);
        let nal = tail
            .get(..len)
            .ok_or(DecodeError::Malformed("NAL unit longer than the frame"))?;
        if nal.is_empty() {
            return Err(DecodeError::Malformed("empty NAL unit"));
        }
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(nal);
        rest = &tail[len..];
    }
    Ok(())
}

#[cfg(feature = "h264-snapshots")]
pub use with_decoder::H264Decoder;

#[cfg(feature = "h264-snapshots")]
mod with_decoder {
    use super::{annexb_from_avcc, annexb_from_frame, DecodeError};
    use jpeg_encoder::{Encoder, ImageBuffer, JpegColorType, SamplingFactor};
    use openh264::decoder::Decoder;
    use openh264::formats::YUVSource;

    /// One OpenH264 decoder and the buffer it is fed from. Its picture
    /// buffers are allocated on the first frame and freed with it.
    pub struct H264Decoder {
        decoder: Decoder,
        annexb: Vec<u8>,
        /// Limited-range ("TV", 16..=235) to JFIF's full range.
        expand: Levels,
        /// Full range already: passed through.
        same: Levels,
    }

    /// A sample mapping per plane kind.
    pub(super) struct Levels {
        pub(super) luma: [u8; 256],
        pub(super) chroma: [u8; 256],
    }

    impl Levels {
        fn identity() -> Levels {
            let t = std::array::from_fn(|i| i as u8);
            Levels { luma: t, chroma: t }
        }

        /// BT.601/709 limited range (Y 16..=235, C 16..=240) to full range.
        pub(super) fn expand() -> Levels {
            let map = |v: usize, lo: i32, span: i32, mid: i32| {
                let x = ((v as i32 - lo) * 255 + span / 2).div_euclid(span) + mid;
                x.clamp(0, 255) as u8
            };
            Levels {
                luma: std::array::from_fn(|v| map(v, 16, 219, 0)),
                chroma: std::array::from_fn(|v| map(v, 128, 224, 128)),
            }
        }
    }

    /// Whether the stream's SPS says its samples use the full 0..=255
    /// range (many IP cameras do); otherwise (and when the SPS cannot be
    /// read here) the H.264 default, limited range.
    pub(super) fn full_range(avcc: &[u8]) -> bool {
        use h264_reader::nal::sps::SeqParameterSet;
        use h264_reader::rbsp::{BitReader, ByteReader};
        let mut annexb = Vec::new();
        if annexb_from_avcc(avcc, false, &mut annexb).is_err() {
            return false;
        }
        // The first SPS: after the first start code, up to the next.
        let Some(first) = annexb.get(4..) else {
            return false;
        };
        let end = first
            .windows(4)
            .position(|w| w == [0, 0, 0, 1])
            .unwrap_or(first.len());
        let sps = &first[..end];
        SeqParameterSet::from_bits(BitReader::new(ByteReader::skipping_h264_header(sps)))
            .ok()
            .and_then(|s| s.vui_parameters)
            .and_then(|v| v.video_signal_type)
            .is_some_and(|t| t.video_full_range_flag)
    }

    impl H264Decoder {
        pub fn new() -> Result<H264Decoder, DecodeError> {
            let decoder = Decoder::new().map_err(|e| DecodeError::Decoder(e.to_string()))?;
            Ok(H264Decoder {
                decoder,
                annexb: Vec::new(),
                expand: Levels::expand(),
                same: Levels::identity(),
            })
        }

        /// Decodes the key frame `frame` (length-prefixed NAL units) with
        /// the parameter sets of `avcc`, and writes the picture as a JPEG
        /// into `out` (cleared first). Returns its width and height.
        pub fn key_frame_to_jpeg(
            &mut self,
            avcc: &[u8],
            frame: &[u8],
            quality: u8,
            out: &mut Vec<u8>,
        ) -> Result<(u16, u16), DecodeError> {
            out.clear();
            self.annexb.clear();
            // The parameter sets go in front of every key frame, as cameras
            // send them: the decoder needs nothing from an earlier frame,
            // and an unchanged SPS keeps its buffers.
            annexb_from_avcc(avcc, true, &mut self.annexb)?;
            annexb_from_frame(frame, &mut self.annexb)?;
            let yuv = match self.decoder.decode(&self.annexb) {
                Ok(Some(yuv)) => yuv,
                Ok(None) => return Err(DecodeError::Decoder("no picture in the frame".into())),
                Err(e) => return Err(DecodeError::Decoder(e.to_string())),
            };
            let (w, h) = yuv.dimensions();
            let (y_stride, c_stride, _) = yuv.strides();
            let (Ok(width), Ok(height)) = (u16::try_from(w), u16::try_from(h)) else {
                return Err(DecodeError::Decoder(format!("picture too large: {w}x{h}")));
            };
            if width == 0 || height == 0 {
                return Err(DecodeError::Decoder("empty picture".into()));
            }
            let levels = if full_range(avcc) {
                &self.same
            } else {
                &self.expand
            };
            let planes = Planes {
                levels,
                y: yuv.y(),
                u: yuv.u(),
                v: yuv.v(),
                width,
                height,
                y_stride,
                c_stride,
            };
            let mut enc = Encoder::new(&mut *out, quality);
            // The decoder's own chroma resolution: nothing is lost or made up.
            enc.set_sampling_factor(SamplingFactor::F_2_2);
            enc.encode_image(planes)
                .map_err(|e| DecodeError::Decoder(format!("JPEG encoding: {e}")))?;
            Ok((width, height))
        }
    }

    /// A decoded picture's planes, as the JPEG encoder reads them: row by
    /// row, chroma repeated to full width (the encoder averages it back
    /// down to 4:2:0).
    struct Planes<'a> {
        levels: &'a Levels,
        y: &'a [u8],
        u: &'a [u8],
        v: &'a [u8],
        width: u16,
        height: u16,
        y_stride: usize,
        c_stride: usize,
    }

    /// Row `r` of a plane, `len` bytes, or as much of it as the plane has.
    fn row(plane: &[u8], stride: usize, r: usize, len: usize) -> &[u8] {
        let start = r.saturating_mul(stride).min(plane.len());
        let end = start.saturating_add(len).min(plane.len());
        &plane[start..end]
    }

    impl ImageBuffer for Planes<'_> {
        fn get_jpeg_color_type(&self) -> JpegColorType {
            JpegColorType::Ycbcr
        }

        fn width(&self) -> u16 {
            self.width
        }

        fn height(&self) -> u16 {
            self.height
        }

        fn fill_buffers(&self, y: u16, buffers: &mut [Vec<u8>; 4]) {
            let w = usize::from(self.width);
            let r = usize::from(y);
            let luma = row(self.y, self.y_stride, r, w);
            let cw = w.div_ceil(2);
            let cb = row(self.u, self.c_stride, r / 2, cw);
            let cr = row(self.v, self.c_stride, r / 2, cw);
            let [yb, cbb, crb, _] = buffers;
            let Levels {
                luma: ly,
                chroma: lc,
            } = self.levels;
            yb.extend(luma.iter().map(|&v| ly[usize::from(v)]));
            // The decoder's planes always hold whole rows; should one ever
            // be short (an odd last chroma row), mid-grey fills the gap
            // rather than a panic or a skewed picture.
            yb.resize(yb.len() + (w - luma.len()), 128);
            for (plane, out) in [(cb, cbb), (cr, crb)] {
                for x in 0..w {
                    out.push(plane.get(x / 2).map_or(128, |&v| lc[usize::from(v)]));
                }
            }
        }
    }
}

/// Stands in for the decoder in a build without it.
#[cfg(not(feature = "h264-snapshots"))]
pub struct H264Decoder;

#[cfg(not(feature = "h264-snapshots"))]
impl H264Decoder {
    pub fn new() -> Result<H264Decoder, DecodeError> {
        Err(DecodeError::NotBuilt)
    }

    pub fn key_frame_to_jpeg(
        &mut self,
        _avcc: &[u8],
        _frame: &[u8],
        _quality: u8,
        _out: &mut Vec<u8>,
    ) -> Result<(u16, u16), DecodeError> {
        Err(DecodeError::NotBuilt)
    }
}

mod sps;
#[cfg(test)]
mod tests;
