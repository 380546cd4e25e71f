//! `/api/cameras/{name}/recordings`: the recordings of one stream over a
//! time range, read from the index a window at a time (SPEC.md, "HTTP
//! API").

use crate::config::StreamKind;
use crate::serve::http::Reply;
use crate::serve::router::params::stream_param;
use crate::serve::router::{Index, Req, ServeContext};
use crate::store::db::{self, Db, SampleEntry};
use crate::time::{format_90k, parse_90k};
use serde_json::{json, Value};
use std::collections::HashMap;

/// The recordings of `camera` (known to exist) asked for by `req`.
pub fn recordings(ctx: &ServeContext, index: &mut Index, camera: &str, req: &Req<'_>) -> Reply {
    let kind = match stream_param(req) {
        Ok(k) => k,
        Err(r) => return r,
    };
    // Unlike a video range, both ends are optional here.
    let time = |name: &str, default: i64| match req.param(name) {
        None => Ok(default),
        Some(v) => parse_90k(v).map_err(|e| Reply::error(400, &format!("{name}: {e}"))),
    };
    let (start, end) = match (time("start", i64::MIN / 2), time("end", i64::MAX / 2)) {
        (Ok(s), Ok(e)) => (s, e),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    if end <= start {
        return Reply::error(400, "end: must be after start");
    }
    let db = match index.get(&ctx.db_path) {
        Ok(d) => d,
        Err(e) => return index.error(e),
    };
    match list_recordings(db, camera, kind, start, end) {
        Ok((items, truncated)) => {
            let mut r = Reply::json(200, &Value::Array(items));
            if truncated {
                r.headers.push(("X-Vigil-Truncated", MAX_ROWS.to_string()));
            }
            r
        }
        Err(e) => index.error(e),
    }
}

/// At most this many recordings per answer (about 3 MB of JSON); a longer
/// list is cut, and says so in an `X-Vigil-Truncated` header.
const MAX_ROWS: usize = 5000;
/// The index is read this much time at a time, so that a request for
/// months never holds months of rows (and their sample indexes) at once.
const WINDOW_90K: i64 = 3600 * crate::time::TICKS;

fn list_recordings(
    db: &Db,
    camera: &str,
    kind: StreamKind,
    start: i64,
    end: i64,
) -> Result<(Vec<Value>, bool), db::DbError> {
    let streams = db.streams()?;
    let Some(stream) = streams
        .iter()
        .find(|s| s.camera == camera && s.kind == kind.name())
    else {
        return Ok((Vec::new(), false));
    };
    let sum = db.stream_summary(stream.id)?;
    let (Some(oldest), Some(newest)) = (sum.oldest_start_90k, sum.newest_end_90k) else {
        return Ok((Vec::new(), false));
    };
    // Nothing lies outside [oldest, newest]: walk only that part.
    let mut t = start.max(oldest);
    let end = end.min(newest.saturating_add(1));
    let mut entries: HashMap<i64, Option<SampleEntry>> = HashMap::new();
    let mut out = Vec::new();
    let mut last_id = None;
    // The first window also finds a recording that began before `start`.
    let mut first = true;
    while t < end || first {
        let w_start = if first { start } else { t };
        let w_end = t.saturating_add(WINDOW_90K).min(end);
        first = false;
        if w_end <= w_start {
            break;
        }
        for r in db.recordings(stream.id, w_start, w_end)? {
            if out.len() >= MAX_ROWS {
                break;
            }
            // A recording crossing a window edge is listed by both windows.
            if last_id == Some(r.id) {
                continue;
            }
            last_id = Some(r.id);
            let e = match entries.get(&r.sample_entry_id) {
                Some(e) => e.clone(),
                None => {
                    let e = db.sample_entry(r.sample_entry_id).ok();
                    entries.insert(r.sample_entry_id, e.clone());
                    e
                }
            };
            let r_end = r.start_90k.saturating_add(r.duration_90k);
            out.push(json!({
                "id": r.id,
                "stream": kind.name(),
                "start": format_90k(r.start_90k),
                "end": format_90k(r_end),
                "start_90k": r.start_90k,
                "end_90k": r_end,
                "duration_ms": r.duration_90k / 90,
                "bytes": r.bytes,
                "codec": e.as_ref().map(|e| e.codec.clone()),
                "width": e.as_ref().map(|e| e.width),
                "height": e.as_ref().map(|e| e.height),
                "frames": r.frames,
                "gaps": u32::from(r.flags & db::RECORDING_GAP != 0),
                "open": r.flags & db::RECORDING_OPEN != 0,
            }));
        }
        if out.len() >= MAX_ROWS {
            return Ok((out, true));
        }
        t = w_end;
    }
    Ok((out, false))
}
