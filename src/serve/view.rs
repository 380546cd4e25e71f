//! `view.mp4`: a time range of one stream, planned from the index into the
//! input of the .mp4 builder, with frame bytes read from the pool files.
//! The planning, and the preamble of a range route ([`recorded_range`]),
//! serve `export.ts`, HLS and `vigil export` too.
//!
//! The range starts exactly at `start`: the file begins at the key frame
//! at or before it, and the edit list skips the difference. Consecutive
//! recordings are spliced into one track (a change of parameters adds a
//! sample entry). A gap between recordings inside the range is collapsed:
//! playback goes straight from the last frame before the gap to the first
//! after it, so the file's duration is the video that exists, not the
//! wall-clock span.

use super::http::{Body, Reply};
use super::mp4::{
    self, Mp4Error, Mp4File, Mp4Frame, Mp4SampleEntry, Mp4Segment, SampleLoc, SampleSource,
};
use super::router::params::{camera_route, recorded_stream, stream_param, time_range};
use super::router::{CameraFile, Req, RouteHook};
use crate::config::StreamKind;
use crate::store::db::Db;
use crate::store::pool::{PoolReader, ReadError};
use crate::store::video_index;
use crate::stream::Codec;
use std::io::{self, Read};
use std::path::Path;

/// Why a range cannot be served.
#[derive(Debug)]
pub enum ViewError {
    /// Nothing recorded in the range.
    Empty,
    Index(String),
    Mp4(Mp4Error),
}

impl std::fmt::Display for ViewError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ViewError::Empty => f.write_str("no video recorded in that range"),
            ViewError::Index(e) => write!(f, "index: {e}"),
            ViewError::Mp4(e) => write!(f, "{e}"),
        }
    }
}

fn codec_of(name: &str) -> Option<Codec> {
    match name {
        "h264" => Some(Codec::H264),
        "h265" => Some(Codec::H265),
        "jpeg" => Some(Codec::Jpeg),
        _ => None,
    }
}

/// A range of one stream as frames with their places in the pools: what
/// every recorded-video format (.mp4, MPEG-TS, HLS segments) is made from.
#[derive(Debug)]
pub struct Plan {
    /// The sample entries the segments refer to, by index.
    pub entries: Vec<Mp4SampleEntry>,
    /// Consecutive runs of frames (one per recording), each starting with a
    /// key frame; gaps between them are collapsed.
    pub segments: Vec<Mp4Segment>,
    /// Media to skip at the start: the first segment starts at the key frame
    /// at or before the requested start.
    pub skip_90k: u32,
    /// Media to play after the skip (at most the requested span).
    pub duration_90k: u64,
    /// Wall-clock start of the first frame, 90 kHz units since the epoch.
    pub first_start_90k: i64,
}

impl Plan {
    /// Frames in the plan.
    pub fn frames(&self) -> usize {
        self.segments.iter().map(|s| s.frames.len()).sum()
    }

    /// The .mp4 of the plan.
    pub fn into_mp4(self) -> Result<Mp4File, ViewError> {
        let created = u64::try_from(self.first_start_90k.max(0) / 90_000).unwrap_or(0);
        mp4::build(
            self.entries,
            self.segments,
            self.skip_90k,
            self.duration_90k,
            created,
        )
        .map_err(ViewError::Mp4)
    }
}

/// Plans the .mp4 of `stream_id` over `[start_90k, end_90k)`.
pub fn plan(db: &Db, stream_id: u32, start_90k: i64, end_90k: i64) -> Result<Mp4File, ViewError> {
    plan_frames(db, stream_id, start_90k, end_90k)?.into_mp4()
}

/// The frames of `stream_id` over `[start_90k, end_90k)`, from the index.
pub fn plan_frames(
    db: &Db,
    stream_id: u32,
    start_90k: i64,
    end_90k: i64,
) -> Result<Plan, ViewError> {
    let idx = |e: crate::store::db::DbError| ViewError::Index(e.to_string());
    let recordings = db.recordings(stream_id, start_90k, end_90k).map_err(idx)?;
    let mut entries: Vec<(i64, Mp4SampleEntry)> = Vec::new();
    let mut segments = Vec::new();
    let mut skip_90k: u32 = 0;
    let mut total_90k: u64 = 0;
    let mut first_start: Option<i64> = None;
    for rec in &recordings {
        let entry_index = match entries
            .iter()
            .position(|(id, _)| *id == rec.sample_entry_id)
        {
            Some(i) => i,
            None => {
                let e = db.sample_entry(rec.sample_entry_id).map_err(idx)?;
                let codec = codec_of(&e.codec)
                    .ok_or_else(|| ViewError::Index(format!("unknown codec {:?}", e.codec)))?;
                entries.push((
                    rec.sample_entry_id,
                    Mp4SampleEntry {
                        codec,
                        width: e.width,
                        height: e.height,
                        decoder_config: e.decoder_config,
                    },
                ));
                entries.len() - 1
            }
        };
        // Every frame of the recording with its place in the pools.
        let records = db.records(rec.id).map_err(idx)?;
        let mut locs = Vec::with_capacity(rec.frames as usize);
        let mut frames = video_index::decode(&rec.video_index);
        for r in &records {
            let mut at = r.offset + u64::from(r.header_len);
            for _ in 0..r.frames {
                let f = match frames.next() {
                    Some(Ok(f)) => f,
                    Some(Err(e)) => {
                        return Err(ViewError::Index(format!("recording {}: {e}", rec.id)))
                    }
                    None => {
                        return Err(ViewError::Index(format!(
                            "recording {}: index shorter than its records",
                            rec.id
                        )))
                    }
                };
                let size = u32::try_from(f.bytes).unwrap_or(0);
                locs.push((
                    f,
                    SampleLoc {
                        pool: r.pool,
                        offset: at,
                        generation: r.generation,
                    },
                ));
                at += u64::from(size);
            }
        }
        // The frames that start before `end`, with their start times.
        let mut t = rec.start_90k;
        let mut timed: Vec<(i64, Mp4Frame)> = Vec::with_capacity(locs.len());
        for (f, loc) in locs {
            if t >= end_90k {
                break;
            }
            let frame = Mp4Frame {
                duration_90k: u32::try_from(f.duration_90k).unwrap_or(0),
                size: u32::try_from(f.bytes).unwrap_or(0),
                key: f.key,
                loc,
            };
            t += i64::from(frame.duration_90k);
            timed.push((t - i64::from(frame.duration_90k), frame));
        }
        if t <= start_90k || timed.is_empty() {
            continue;
        }
        // From the last key frame at or before `start` (a recording starts
        // with a key frame, so there is one when it starts before `start`).
        let first = timed
            .iter()
            .rposition(|(ft, f)| f.key && *ft <= start_90k)
            .unwrap_or(0);
        if first_start.is_none() {
            let from = timed[first].0;
            skip_90k = u32::try_from((start_90k - from).max(0)).unwrap_or(0);
            first_start = Some(from);
        }
        let chosen: Vec<Mp4Frame> = timed.drain(first..).map(|(_, f)| f).collect();
        total_90k += chosen
            .iter()
            .map(|f| u64::from(f.duration_90k))
            .sum::<u64>();
        segments.push(Mp4Segment {
            sample_entry: entry_index,
            frames: chosen,
        });
    }
    if segments.is_empty() {
        return Err(ViewError::Empty);
    }
    let duration = total_90k.saturating_sub(u64::from(skip_90k));
    let duration = duration.min(u64::try_from(end_90k - start_90k).unwrap_or(u64::MAX));
    Ok(Plan {
        entries: entries.into_iter().map(|(_, e)| e).collect(),
        segments,
        skip_90k,
        duration_90k: duration,
        first_start_90k: first_start.unwrap_or(0),
    })
}

/// Frame bytes from the pool files; an overwritten pool is an error, so a
/// response ends rather than carry bytes the index did not describe.
pub struct PoolSource(pub PoolReader);

impl SampleSource for PoolSource {
    fn read(&self, loc: &SampleLoc, offset_in_frame: u32, buf: &mut [u8]) -> Result<(), Mp4Error> {
        match self.0.read_checked(
            loc.pool,
            loc.offset + u64::from(offset_in_frame),
            buf,
            loc.generation,
        ) {
            Ok(()) => Ok(()),
            Err(ReadError::Overwritten) => Err(Mp4Error::Overwritten),
            Err(ReadError::Io(e)) => Err(Mp4Error::Source(e.to_string())),
        }
    }
}

/// A byte range of an .mp4 as `Read`, for an HTTP body.
pub struct Mp4Reader<S: SampleSource> {
    pub file: std::sync::Arc<Mp4File>,
    pub source: S,
    pub pos: u64,
    pub end: u64,
}

impl<S: SampleSource> Read for Mp4Reader<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.end {
            return Ok(0);
        }
        let want =
            usize::try_from((self.end - self.pos).min(buf.len() as u64)).unwrap_or(buf.len());
        let n = self
            .file
            .read_at(self.pos, &mut buf[..want], &self.source)
            .map_err(|e| io::Error::other(e.to_string()))?;
        if n == 0 {
            return Ok(0);
        }
        self.pos += n as u64;
        Ok(n)
    }
}

/// A byte range that lies outside the body (HTTP 416).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unsatisfiable;

/// A `Range: bytes=...` header against a body of `len` bytes: `Ok(None)`
/// for the whole body (no header, or several ranges, which we answer in
/// full), `Ok(Some((first, end_exclusive)))`, or `Unsatisfiable` (416).
pub fn parse_range(header: Option<&str>, len: u64) -> Result<Option<(u64, u64)>, Unsatisfiable> {
    let Some(h) = header else { return Ok(None) };
    let Some(spec) = h.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let (a, b) = spec.split_once('-').ok_or(Unsatisfiable)?;
    let (a, b) = (a.trim(), b.trim());
    let range = if a.is_empty() {
        // The last `b` bytes.
        let n: u64 = b.parse().map_err(|_| Unsatisfiable)?;
        if n == 0 {
            return Err(Unsatisfiable);
        }
        (len.saturating_sub(n), len)
    } else {
        let first: u64 = a.parse().map_err(|_| Unsatisfiable)?;
        let last = if b.is_empty() {
            len.saturating_sub(1)
        } else {
            b.parse::<u64>()
                .map_err(|_| Unsatisfiable)?
                .min(len.saturating_sub(1))
        };
        if first > last || first >= len {
            return Err(Unsatisfiable);
        }
        (first, last + 1)
    };
    Ok(Some(range))
}

/// A recorded range asked for by `?stream=&start=&end=`.
pub struct RecordedRange {
    pub camera: String,
    pub kind: StreamKind,
    /// Its frames, planned from the index.
    pub plan: Plan,
}

/// The preamble of a route serving a recorded range as one file
/// (`view.mp4`, `export.ts`): `None` when the request is not for `file`;
/// `Some(Err)` is the answer to bad parameters, an unknown stream or an
/// empty range.
pub fn recorded_range(
    req: &Req<'_>,
    file: CameraFile<'_>,
    db_path: &Path,
) -> Option<Result<RecordedRange, Reply>> {
    let camera = camera_route(req, file)?.to_owned();
    Some((|| {
        let (kind, (start, end)) = (stream_param(req)?, time_range(req)?);
        let (db, id) = recorded_stream(db_path, &camera, kind)?;
        let plan = plan_frames(&db, id, start, end).map_err(plan_error)?;
        Ok(RecordedRange { camera, kind, plan })
    })())
}

/// Why a range could not be made into a file, as a route answers it.
pub fn plan_error(e: ViewError) -> Reply {
    match e {
        ViewError::Empty => Reply::error(404, "no video recorded in that range"),
        e => Reply::error(500, &e.to_string()),
    }
}

/// The `view.mp4` route: `GET|HEAD /api/cameras/{name}/view.mp4?stream=&start=&end=`.
pub fn hook(db_path: std::path::PathBuf, pools: PoolReader) -> RouteHook {
    std::sync::Arc::new(move |req| {
        let range = match recorded_range(req, CameraFile::ViewMp4, &db_path)? {
            Ok(r) => r,
            Err(r) => return Some(r),
        };
        let file = match range.plan.into_mp4() {
            Ok(f) => std::sync::Arc::new(f),
            Err(e) => return Some(plan_error(e)),
        };
        let len = file.len();
        let etag = file.etag();
        if req
            .header("If-None-Match")
            .is_some_and(|v| v.split(',').any(|t| t.trim() == etag))
        {
            let mut r = Reply::error(304, "not modified");
            r.headers.push(("ETag", etag));
            r.body = Body::Bytes(Vec::new());
            return Some(r);
        }
        let (status, range) = match parse_range(req.header("Range"), len) {
            Ok(None) => (200, (0, len)),
            Ok(Some(r)) => (206, r),
            Err(Unsatisfiable) => {
                let mut r = Reply::error(416, "range not satisfiable");
                r.headers.push(("Content-Range", format!("bytes */{len}")));
                return Some(r);
            }
        };
        let permit = req.permit.take()?;
        let mut headers = vec![("Accept-Ranges", "bytes".to_owned()), ("ETag", etag)];
        if status == 206 {
            headers.push((
                "Content-Range",
                format!("bytes {}-{}/{len}", range.0, range.1 - 1),
            ));
        }
        // HEAD: the same headers and length, no bytes read.
        let end_at = if req.head { range.0 } else { range.1 };
        let reader = Mp4Reader {
            file,
            source: PoolSource(pools.clone()),
            pos: range.0,
            end: end_at,
        };
        Some(Reply {
            status,
            content_type: "video/mp4",
            headers,
            body: Body::Stream {
                reader: Box::new(reader),
                len: Some(range.1 - range.0),
                permit,
            },
        })
    })
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 100), Ok(None));
        assert_eq!(parse_range(Some("bytes=0-9"), 100), Ok(Some((0, 10))));
        assert_eq!(parse_range(Some("bytes=90-"), 100), Ok(Some((90, 100))));
        assert_eq!(parse_range(Some("bytes=-10"), 100), Ok(Some((90, 100))));
        assert_eq!(parse_range(Some("bytes=50-500"), 100), Ok(Some((50, 100))));
        assert_eq!(parse_range(Some("bytes=0-1,5-6"), 100), Ok(None));
        assert_eq!(
            parse_range(Some("bytes=100-"), 100),
            Err(super::Unsatisfiable)
        );
        assert_eq!(
            parse_range(Some("bytes=9-3"), 100),
            Err(super::Unsatisfiable)
        );
        assert_eq!(
            parse_range(Some("bytes=-0"), 100),
            Err(super::Unsatisfiable)
        );
        assert_eq!(
            parse_range(Some("bytes=x-"), 100),
            Err(super::Unsatisfiable)
        );
        assert_eq!(parse_range(Some("items=0-1"), 100), Ok(None));
    }
}
