//! HLS (RFC 8216): `live.m3u8`, `vod.m3u8` and the fMP4 segments they list.
//!
//! Both playlists are cut from the recording index; the segments are
//! fragmented MP4 (`fmp4`) read from the pool files on each request,
//! exactly like `view.mp4`: nothing is written anywhere or cached.
//!
//! - A segment is one or more whole GOPs of one recording: a recording is
//!   cut at the first key frame once the segment holds at least
//!   [`VOD_MIN_90K`] (live: [`LIVE_MIN_90K`]) of video, so segments last
//!   2–6 s with usual GOPs of 1–3 s (a longer GOP makes a longer segment:
//!   it cannot be split). A recording's last segment may be shorter.
//! - Segments are addressed by the wall-clock times of their first frame
//!   (a key frame) and of the frame after their last, in 90 kHz units:
//!   `segment.m4s?stream=&start_90k=&end_90k=&dts=&seq=`. Planning that
//!   range from the index again (`view::plan_frames`) gives the same
//!   frames, so the same URL is always the same bytes (or a 404 once the
//!   ring has reclaimed the video). `dts` is the `tfdt` of the segment and
//!   `seq` its `mfhd` sequence number, both chosen by the playlist.
//! - The init segment is `init.mp4?stream=&entry=` (a sample entry id of
//!   the index). A change of sample entry (a resolution change) starts a
//!   new recording; the playlist puts `EXT-X-DISCONTINUITY` and a new
//!   `EXT-X-MAP` there.
//!
//! `vod.m3u8?stream=&start=&end=` starts at the key frame at or before
//! `start` (`EXT-X-PROGRAM-DATE-TIME` gives its wall-clock time) and ends
//! with the frame that starts before `end`. As in `view.mp4`, gaps between
//! recordings are collapsed: decode times run on from 0 without a break,
//! and a `PROGRAM-DATE-TIME` after each gap says where the wall clock
//! jumped. At most [`MAX_VOD_SPAN_90K`] (a day) per playlist.
//!
//! `live.m3u8?stream=` is a sliding window, about the last
//! [`LIVE_WINDOW_90K`], over the newest *recordings*, not the ring: it
//! lists only complete segments (ended by the key frame that starts the
//! next one, or by the end of a closed recording), and each recording is
//! cut from its own start, so a segment never changes once listed. Decode
//! times are wall-clock 90 kHz times, continuous across recordings that
//! follow each other without a gap; a gap or a new sample entry gets
//! `EXT-X-DISCONTINUITY`. Media sequence numbers must be consecutive and
//! stable across refreshes, and the index has no such number: the hook
//! remembers, per stream, the first sequence number of the last few
//! recordings it listed and numbers their successors from there (the first
//! number after a start is derived from the recording's start time, in
//! tenths of a second, so it keeps growing across restarts).
//!
//! A stream with no recordings, or none in the last minute (not recorded,
//! or its camera is away), gets a 404/409 naming `live.mp4`, which plays
//! any stream from its ring.
//!
//! Latency of `live.m3u8`: the index is committed every
//! `storage.sync_interval_ms`, and a segment is listed once the key frame
//! after it is committed; a player then starts about three target
//! durations from the end. With 2 s GOPs and the default 2 s sync that is
//! roughly 2 + 2 + 3 × 2 = 10 s behind the camera. `live.mp4` is the
//! low-latency path (well under a second).

use super::fmp4;
use super::http::{Body, Reply};
use super::mp4::{Mp4Error, Mp4SampleEntry};
use super::router::{params as route, CameraFile, Req, RouteHook};
use super::view::{self, Mp4Reader, PoolSource, ViewError};
use crate::config::StreamKind;
use crate::daemon::Running;
use crate::store::db::{Db, RecordingRow, RECORDING_OPEN};
use crate::store::pool::PoolReader;
use crate::store::video_index;
use crate::stream::Codec;
use crate::time::{format_90k, now_90k, TICKS};
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// A recorded segment is cut at the first key frame once it holds this much.
pub const VOD_MIN_90K: i64 = 3 * TICKS;
/// The same for `live.m3u8`: shorter segments, lower latency.
pub const LIVE_MIN_90K: i64 = 3 * TICKS / 2;
/// About how much video `live.m3u8` lists.
pub const LIVE_WINDOW_90K: i64 = 30 * TICKS;
/// `live.m3u8` lists at least this many segments when there are that many.
const LIVE_MIN_SEGMENTS: usize = 3;
/// `live.m3u8` answers 409 when the newest recorded video is older.
const LIVE_STALE_90K: i64 = 60 * TICKS;
/// How far back from the newest video `live.m3u8` looks for recordings.
const LIVE_LOOKBACK_90K: i64 = 120 * TICKS;
/// `EXT-X-TARGETDURATION` of `live.m3u8` (seconds) unless a longer segment
/// needs more: it should not change between refreshes.
const LIVE_TARGET_S: u64 = 6;
/// The longest `vod.m3u8` range.
pub const MAX_VOD_SPAN_90K: i64 = 24 * 3600 * TICKS;
/// The longest segment a request may ask for: several of the longest GOPs
/// cameras use, and a bound on the frame table a request makes us build.
const MAX_SEGMENT_SPAN_90K: i64 = 600 * TICKS;
/// The index is read this much at a time for a long `vod.m3u8`, so that a
/// day's playlist never holds a day of sample indexes at once.
const VOD_WINDOW_90K: i64 = 3600 * TICKS;
/// Recordings remembered per stream for live sequence numbers.
const NUMBERING_MEMORY: usize = 64;

/// One HLS segment: whole GOPs of one recording.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Seg {
    /// Wall-clock time of its first frame (a key frame), 90 kHz.
    start_90k: i64,
    /// Of the frame after its last: its first frame's time plus the sum of
    /// its frames' durations.
    end_90k: i64,
    /// Ended by the key frame that starts the next segment, or by the end
    /// of a closed recording: it can no longer grow.
    complete: bool,
}

impl Seg {
    fn duration(&self) -> i64 {
        self.end_90k.saturating_sub(self.start_90k)
    }
}

/// Cuts the frames of `rec` into segments: from the key frame at or before
/// `from` (the recording's first when it starts later) to the last frame
/// that starts before `to`, at the first key frame once a segment holds
/// `min_90k`. Frame times are computed as `view::plan_frames` computes
/// them, so a segment's times plan back to exactly its frames.
fn cut(
    rec: &RecordingRow,
    from: i64,
    to: i64,
    min_90k: i64,
    out: &mut Vec<Seg>,
) -> Result<(), String> {
    let mut t = rec.start_90k;
    let mut cur: Option<Seg> = None;
    let mut ended_early = false;
    for f in video_index::decode(&rec.video_index) {
        let f = f.map_err(|e| format!("recording {}: {e}", rec.id))?;
        if t >= to {
            ended_early = true;
            break;
        }
        let d = i64::from(f.duration_90k);
        match cur.as_mut() {
            // Before `from`, a key frame restarts the (only) segment.
            Some(s) if f.key && t <= from => {
                *s = Seg {
                    start_90k: t,
                    end_90k: t.saturating_add(d),
                    complete: false,
                };
            }
            Some(s) if f.key && s.duration() >= min_90k => {
                s.complete = true;
                out.push(*s);
                *s = Seg {
                    start_90k: t,
                    end_90k: t.saturating_add(d),
                    complete: false,
                };
            }
            Some(s) => {
                s.end_90k = s.end_90k.saturating_add(d);
            }
            // Frames before the first key frame cannot be decoded.
            None if f.key => {
                cur = Some(Seg {
                    start_90k: t,
                    end_90k: t.saturating_add(d),
                    complete: false,
                });
            }
            None => {}
        }
        t = t.saturating_add(d);
    }
    if let Some(mut s) = cur {
        // Zero-length segments (a lone frame without duration) are not
        // playable and would not plan back.
        if s.end_90k > s.start_90k && s.end_90k > from {
            s.complete = !ended_early && rec.flags & RECORDING_OPEN == 0;
            out.push(s);
        }
    }
    Ok(())
}

/// `d` 90 kHz units as seconds with six decimals (EXTINF).
fn secs(d: i64) -> String {
    let micros = i128::from(d.max(0)) * 1_000_000 / i128::from(TICKS);
    format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000)
}

/// Target duration: every segment's duration rounded to the nearest
/// integer must not exceed it.
fn target_secs(max_90k: i64) -> u64 {
    u64::try_from(max_90k.saturating_add(TICKS / 2) / TICKS)
        .unwrap_or(0)
        .max(1)
}

/// A segment as the playlist lists it.
struct Listed {
    seg: Seg,
    entry_id: i64,
    dts: u64,
    seq: u32,
    /// `EXT-X-DISCONTINUITY` before it.
    discontinuity: bool,
    /// `EXT-X-PROGRAM-DATE-TIME` before it.
    date: bool,
}

/// Writes the segment lines of a playlist (from `EXT-X-MAP` on).
fn write_segments(out: &mut String, stream: StreamKind, listed: &[Listed]) {
    let mut map: Option<i64> = None;
    for (i, l) in listed.iter().enumerate() {
        if l.discontinuity && i > 0 {
            out.push_str("#EXT-X-DISCONTINUITY\n");
        }
        if map != Some(l.entry_id) {
            let _ = writeln!(
                out,
                "#EXT-X-MAP:URI=\"init.mp4?stream={}&entry={}\"",
                stream.name(),
                l.entry_id
            );
            map = Some(l.entry_id);
        }
        if l.date || i == 0 {
            let _ = writeln!(
                out,
                "#EXT-X-PROGRAM-DATE-TIME:{}",
                format_90k(l.seg.start_90k)
            );
        }
        let _ = writeln!(
            out,
            "#EXTINF:{},\nsegment.m4s?stream={}&start_90k={}&end_90k={}&dts={}&seq={}",
            secs(l.seg.duration()),
            stream.name(),
            l.seg.start_90k,
            l.seg.end_90k,
            l.dts,
            l.seq
        );
    }
}

fn playlist_reply(body: String, cache: &str) -> Reply {
    Reply {
        status: 200,
        content_type: "application/vnd.apple.mpegurl",
        headers: vec![("Cache-Control", cache.to_owned())],
        body: Body::Bytes(body.into_bytes()),
    }
}

/// The sample entries already checked for this playlist: `Err` names why
/// one cannot be served as fMP4.
fn check_entry(db: &Db, id: i64, seen: &mut Vec<i64>) -> Result<(), Reply> {
    if seen.contains(&id) {
        return Ok(());
    }
    let e = db
        .sample_entry(id)
        .map_err(|e| Reply::error(500, &format!("index: {e}")))?;
    if e.codec != "h264" && e.codec != "h265" {
        return Err(Reply::error(
            409,
            &format!(
                "{} video cannot be served as HLS (H.264 and H.265 only): use mjpeg",
                e.codec
            ),
        ));
    }
    seen.push(id);
    Ok(())
}

/// `vod.m3u8?stream=&start=&end=`.
fn vod(db_path: &std::path::Path, req: &Req<'_>, camera: &str) -> Reply {
    let (kind, (start, end)) = match (route::stream_param(req), route::time_range(req)) {
        (Ok(k), Ok(r)) => (k, r),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    if end.saturating_sub(start) > MAX_VOD_SPAN_90K {
        return Reply::error(
            400,
            "end: a playlist covers at most 24 hours: ask for several",
        );
    }
    let (db, id) = match route::recorded_stream(db_path, camera, kind) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let mut listed: Vec<Listed> = Vec::new();
    let mut entries_ok: Vec<i64> = Vec::new();
    let mut segs: Vec<Seg> = Vec::new();
    let mut last_id: Option<i64> = None;
    let mut dts: u64 = 0;
    let mut prev: Option<(i64, i64)> = None; // (entry id, end) of the last listed
    let mut t = start;
    while t < end {
        let w_end = t.saturating_add(VOD_WINDOW_90K).min(end);
        let recs = match db.recordings(id, t, w_end) {
            Ok(r) => r,
            Err(e) => return Reply::error(500, &format!("index: {e}")),
        };
        for rec in &recs {
            // A recording crossing a window edge is in both windows.
            if last_id == Some(rec.id) {
                continue;
            }
            last_id = Some(rec.id);
            segs.clear();
            if let Err(e) = cut(rec, start, end, VOD_MIN_90K, &mut segs) {
                return Reply::error(500, &format!("index: {e}"));
            }
            if segs.is_empty() {
                continue;
            }
            if let Err(r) = check_entry(&db, rec.sample_entry_id, &mut entries_ok) {
                return r;
            }
            for (k, s) in segs.iter().enumerate() {
                let new_entry = prev.is_some_and(|(e, _)| e != rec.sample_entry_id);
                let jump = prev.is_some_and(|(_, pe)| pe != s.start_90k);
                listed.push(Listed {
                    seg: *s,
                    entry_id: rec.sample_entry_id,
                    dts,
                    seq: u32::try_from(listed.len() + 1).unwrap_or(u32::MAX),
                    discontinuity: k == 0 && new_entry,
                    date: jump,
                });
                dts += u64::try_from(s.duration()).unwrap_or(0);
                prev = Some((rec.sample_entry_id, s.end_90k));
            }
        }
        t = w_end;
    }
    if listed.is_empty() {
        return Reply::error(404, "no video recorded in that range");
    }
    let max = listed.iter().map(|l| l.seg.duration()).max().unwrap_or(0);
    let mut out = String::with_capacity(256 + 120 * listed.len());
    let _ = write!(
        out,
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:{}\n#EXT-X-MEDIA-SEQUENCE:0\n\
         #EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-INDEPENDENT-SEGMENTS\n",
        target_secs(max)
    );
    write_segments(&mut out, kind, &listed);
    out.push_str("#EXT-X-ENDLIST\n");
    // The same range asked again gives the same playlist while it stays
    // in the ring, but an open recording in it still grows.
    playlist_reply(out, "no-cache")
}

/// Sequence numbers of one recording in `live.m3u8`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct RecNumbers {
    recording_id: i64,
    /// Media sequence number of its first segment.
    msn: u64,
    /// Discontinuity sequence number of its segments.
    disc: u64,
}

/// What the live playlists remember between refreshes: per stream id, the
/// numbers of the last [`NUMBERING_MEMORY`] recordings listed.
#[derive(Default)]
struct Numbering {
    streams: Vec<(u32, VecDeque<RecNumbers>)>,
}

/// A recording in the live window.
struct WindowRec {
    id: i64,
    entry_id: i64,
    start_90k: i64,
    end_90k: i64,
    /// Its complete segments (all of them once it is closed).
    segs: Vec<Seg>,
    /// A gap or a new sample entry before it.
    discontinuity: bool,
}

impl Numbering {
    /// Numbers `recs` (consecutive recordings of `stream`, oldest first;
    /// all but the last closed), consistently with earlier calls.
    fn number(&mut self, stream: u32, recs: &[WindowRec]) -> Vec<RecNumbers> {
        let i = match self.streams.iter().position(|(s, _)| *s == stream) {
            Some(i) => i,
            None => {
                self.streams.push((stream, VecDeque::new()));
                self.streams.len() - 1
            }
        };
        let Some((_, known)) = self.streams.get_mut(i) else {
            return Vec::new();
        };
        let count = |r: &WindowRec| r.segs.len() as u64;
        let mut out: Vec<Option<(u64, u64)>> = recs
            .iter()
            .map(|r| {
                known
                    .iter()
                    .find(|k| k.recording_id == r.id)
                    .map(|k| (k.msn, k.disc))
            })
            .collect();
        let anchor = match out.iter().position(Option::is_some) {
            Some(j) => j,
            None => {
                // Never seen: numbers from the start time, in tenths of a
                // second, which a recording's segments cannot outrun.
                let base = recs.first().map_or(0, |r| {
                    u64::try_from(r.start_90k / (TICKS / 10)).unwrap_or(0)
                });
                if let Some(o) = out.first_mut() {
                    *o = Some((base, base));
                }
                0
            }
        };
        for j in anchor + 1..recs.len() {
            if let (Some(Some((m, d))), Some(prev), Some(r)) =
                (out.get(j - 1).copied(), recs.get(j - 1), recs.get(j))
            {
                let next = (m + count(prev), d + u64::from(r.discontinuity));
                if let Some(o) = out.get_mut(j) {
                    // A recording already numbered keeps its number.
                    o.get_or_insert(next);
                }
            }
        }
        for j in (0..anchor).rev() {
            if let (Some(Some((m, d))), Some(r), Some(next)) =
                (out.get(j + 1).copied(), recs.get(j), recs.get(j + 1))
            {
                let this = (
                    m.saturating_sub(count(r)),
                    d.saturating_sub(u64::from(next.discontinuity)),
                );
                if let Some(o) = out.get_mut(j) {
                    o.get_or_insert(this);
                }
            }
        }
        let numbers: Vec<RecNumbers> = recs
            .iter()
            .zip(out)
            .map(|(r, o)| {
                let (msn, disc) = o.unwrap_or((0, 0));
                RecNumbers {
                    recording_id: r.id,
                    msn,
                    disc,
                }
            })
            .collect();
        for n in &numbers {
            if !known.iter().any(|k| k.recording_id == n.recording_id) {
                known.push_back(*n);
            }
        }
        while known.len() > NUMBERING_MEMORY {
            known.pop_front();
        }
        numbers
    }
}

/// `live.m3u8?stream=`.
fn live(
    db_path: &std::path::Path,
    numbering: &Mutex<Numbering>,
    req: &Req<'_>,
    camera: &str,
) -> Reply {
    let kind = match route::stream_param(req) {
        Ok(k) => k,
        Err(r) => return r,
    };
    let not_recorded = |status: u16, what: &str| {
        Reply::error(
            status,
            &format!(
                "{camera}/{} {what}: live.m3u8 is cut from recorded video; \
                 live.mp4?stream={} shows the camera live",
                kind.name(),
                kind.name()
            ),
        )
    };
    let (db, id) = match route::recorded_stream(db_path, camera, kind) {
        Ok(x) => x,
        Err(r) if r.status == 404 => return not_recorded(404, "is not recorded"),
        Err(r) => return r,
    };
    let newest = match db.stream_summary(id) {
        Ok(s) => s.newest_end_90k,
        Err(e) => return Reply::error(500, &format!("index: {e}")),
    };
    let Some(newest) = newest else {
        return not_recorded(404, "has no recordings yet");
    };
    // A stream no longer recorded (or a camera gone for a while) would
    // give a playlist that never moves on.
    if now_90k().saturating_sub(newest) > LIVE_STALE_90K {
        return not_recorded(
            409,
            &format!("has recorded nothing since {}", format_90k(newest)),
        );
    }
    let rows = match db.recordings(
        id,
        newest.saturating_sub(LIVE_LOOKBACK_90K),
        newest.saturating_add(1),
    ) {
        Ok(r) => r,
        Err(e) => return Reply::error(500, &format!("index: {e}")),
    };
    let mut entries_ok = Vec::new();
    let mut recs: Vec<WindowRec> = Vec::with_capacity(rows.len());
    for row in &rows {
        let mut segs = Vec::new();
        if let Err(e) = cut(row, row.start_90k, i64::MAX, LIVE_MIN_90K, &mut segs) {
            return Reply::error(500, &format!("index: {e}"));
        }
        segs.retain(|s| s.complete);
        if let Err(r) = check_entry(&db, row.sample_entry_id, &mut entries_ok) {
            return r;
        }
        let discontinuity = recs
            .last()
            .is_some_and(|p| p.entry_id != row.sample_entry_id || p.end_90k != row.start_90k);
        recs.push(WindowRec {
            id: row.id,
            entry_id: row.sample_entry_id,
            start_90k: row.start_90k,
            end_90k: row.end_90k(),
            segs,
            discontinuity,
        });
    }
    drop(db);
    let numbers = numbering
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .number(id, &recs);
    // Every complete segment of the window's recordings, numbered.
    let mut all: Vec<(Listed, u64, u64)> = Vec::new(); // (segment, msn, disc)
    for (r, n) in recs.iter().zip(&numbers) {
        for (k, s) in r.segs.iter().enumerate() {
            let msn = n.msn + k as u64;
            all.push((
                Listed {
                    seg: *s,
                    entry_id: r.entry_id,
                    dts: u64::try_from(s.start_90k).unwrap_or(0),
                    seq: (msn as u32).wrapping_add(1),
                    discontinuity: k == 0 && r.discontinuity,
                    date: k == 0,
                },
                msn,
                n.disc,
            ));
        }
    }
    let newest_listed = all.last().map_or(newest, |l| l.0.seg.end_90k);
    let from = all
        .iter()
        .position(|l| l.0.seg.end_90k > newest_listed.saturating_sub(LIVE_WINDOW_90K))
        .unwrap_or(all.len())
        .min(all.len().saturating_sub(LIVE_MIN_SEGMENTS));
    let Some(first) = all.get(from) else {
        return Reply::error(
            404,
            "no complete segment recorded yet: try again in a few seconds",
        );
    };
    let (msn, disc) = (first.1, first.2);
    let listed: Vec<Listed> = all.drain(from..).map(|l| l.0).collect();
    let max = listed.iter().map(|l| l.seg.duration()).max().unwrap_or(0);
    let mut out = String::with_capacity(256 + 160 * listed.len());
    let _ = write!(
        out,
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:{}\n#EXT-X-MEDIA-SEQUENCE:{msn}\n\
         #EXT-X-DISCONTINUITY-SEQUENCE:{disc}\n#EXT-X-INDEPENDENT-SEGMENTS\n",
        target_secs(max).max(LIVE_TARGET_S)
    );
    write_segments(&mut out, kind, &listed);
    playlist_reply(out, "no-cache")
}

/// A query parameter as an integer.
fn int_param<T: std::str::FromStr>(req: &Req<'_>, name: &str) -> Result<T, Reply> {
    req.param(name)
        .ok_or_else(|| Reply::error(400, &format!("{name}: missing")))?
        .parse()
        .map_err(|_| Reply::error(400, &format!("{name}: not an integer in range")))
}

/// `init.mp4?stream=&entry=`: the init segment of a sample entry.
fn init(db_path: &std::path::Path, req: &Req<'_>, camera: &str) -> Reply {
    let kind = match route::stream_param(req) {
        Ok(k) => k,
        Err(r) => return r,
    };
    let entry_id: i64 = match int_param(req, "entry") {
        Ok(v) => v,
        Err(r) => return r,
    };
    let (db, _) = match route::recorded_stream(db_path, camera, kind) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let e = match db.sample_entry(entry_id) {
        Ok(e) => e,
        Err(_) => return Reply::error(404, &format!("no sample entry {entry_id}")),
    };
    let codec = match e.codec.as_str() {
        "h264" => Codec::H264,
        "h265" => Codec::H265,
        other => {
            return Reply::error(
                409,
                &format!("{other} video cannot be served as fragmented MP4"),
            )
        }
    };
    let entry = Mp4SampleEntry {
        codec,
        width: e.width,
        height: e.height,
        decoder_config: e.decoder_config,
    };
    match fmp4::init_segment(&entry) {
        Ok(bytes) => Reply {
            status: 200,
            content_type: "video/mp4",
            headers: vec![("Cache-Control", "max-age=86400".to_owned())],
            body: Body::Bytes(bytes),
        },
        Err(e) => Reply::error(500, &e.to_string()),
    }
}

/// `segment.m4s?stream=&start_90k=&end_90k=&dts=&seq=`.
fn segment(
    db_path: &std::path::Path,
    pools: &PoolReader,
    req: &mut Req<'_>,
    camera: &str,
) -> Option<Reply> {
    let parsed = (|| -> Result<_, Reply> {
        let kind = route::stream_param(req)?;
        let start: i64 = int_param(req, "start_90k")?;
        let end: i64 = int_param(req, "end_90k")?;
        let dts: u64 = int_param(req, "dts")?;
        let seq: u32 = int_param(req, "seq")?;
        if end <= start || end.saturating_sub(start) > MAX_SEGMENT_SPAN_90K {
            return Err(Reply::error(
                400,
                "end_90k: must be after start_90k, by at most 10 minutes",
            ));
        }
        Ok((kind, start, end, dts, seq))
    })();
    let (kind, start, end, dts, seq) = match parsed {
        Ok(p) => p,
        Err(r) => return Some(r),
    };
    let (db, id) = match route::recorded_stream(db_path, camera, kind) {
        Ok(x) => x,
        Err(r) => return Some(r),
    };
    let gone = || {
        Reply::error(
            404,
            "no such segment: not one a playlist lists, or its video was overwritten",
        )
    };
    let plan = match view::plan_frames(&db, id, start, end) {
        Ok(p) => p,
        Err(ViewError::Empty) => return Some(gone()),
        Err(e) => return Some(Reply::error(500, &e.to_string())),
    };
    drop(db);
    // A segment is whole GOPs of one recording, starting exactly at `start`.
    let frames = match plan.segments.as_slice() {
        [s] if plan.first_start_90k == start => &s.frames,
        _ => return Some(gone()),
    };
    let file = match fmp4::fragment_file(seq, dts, frames) {
        Ok(f) => Arc::new(f),
        Err(Mp4Error::Unsupported(_)) => {
            return Some(Reply::error(409, "this video cannot be served as fMP4"))
        }
        Err(e) => return Some(Reply::error(500, &e.to_string())),
    };
    let permit = req.permit.take()?;
    let len = file.len();
    let reader = Mp4Reader {
        file,
        source: PoolSource(pools.clone()),
        pos: 0,
        end: if req.head { 0 } else { len },
    };
    Some(Reply {
        status: 200,
        content_type: "video/mp4",
        headers: Vec::new(),
        body: Body::Stream {
            reader: Box::new(reader),
            len: Some(len),
            permit,
        },
    })
}

/// The HLS routes.
///
/// `_live` is unused: `live.m3u8` is cut from the recordings only (see the
/// module documentation).
pub fn hook(db_path: PathBuf, pools: PoolReader, _live: Running) -> RouteHook {
    let numbering = Arc::new(Mutex::new(Numbering::default()));
    Arc::new(move |req| {
        if let Some(camera) = route::camera_route(req, CameraFile::VodM3u8) {
            let camera = camera.to_owned();
            return Some(vod(&db_path, req, &camera));
        }
        if let Some(camera) = route::camera_route(req, CameraFile::LiveM3u8) {
            let camera = camera.to_owned();
            return Some(live(&db_path, &numbering, req, &camera));
        }
        if let Some(camera) = route::camera_route(req, CameraFile::InitMp4) {
            let camera = camera.to_owned();
            return Some(init(&db_path, req, &camera));
        }
        if let Some(camera) = route::camera_route(req, CameraFile::SegmentM4s) {
            let camera = camera.to_owned();
            return segment(&db_path, &pools, req, &camera);
        }
        None
    })
}

#[cfg(test)]
mod tests;
