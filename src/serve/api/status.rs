//! `/api/status` and `/metrics`: what the recorder is doing, the storage,
//! the memory, and the requests answered (SPEC.md, "HTTP API").

use super::metrics;
use crate::serve::http::{Body, Reply};
use crate::serve::router::{Identity, Index, ServeContext};
use crate::time::format_90k;
use serde_json::{json, Value};

/// `/api/status`. `user`: who asked (`"user"` in the answer, for the page after a
/// reload), with `"auth"` saying whether anyone has to log in.
pub fn status(ctx: &ServeContext, index: &mut Index, user: Option<&Identity>) -> Reply {
    let st = &ctx.storage;
    let total = u64::from(st.pool_size_mb) * u64::from(st.pools) * 1024 * 1024;
    let mut storage = json!({
        "path": st.path.to_string_lossy(),
        "bytes_total": total,
        "bytes_used": Value::Null,
        "recordings": Value::Null,
        "oldest": Value::Null,
        "newest": Value::Null,
    });
    match index
        .get(&ctx.db_path)
        .and_then(|d| d.summary().map_err(|e| e.to_string()))
    {
        Ok(sum) => {
            storage["bytes_used"] = json!(sum.bytes);
            storage["recordings"] = json!(sum.recordings);
            storage["oldest"] = time_json(sum.oldest_start_90k);
            storage["newest"] = time_json(sum.newest_end_90k);
        }
        Err(e) => {
            index.forget();
            storage["error"] = json!(format!("index: {e}"));
        }
    }
    let mut cameras: Vec<(String, Vec<Value>)> = Vec::new();
    for s in &ctx.running.statuses() {
        let n = s.snapshot();
        let v = json!({
            "stream": s.kind.name(),
            "state": n.state.name(),
            "codec": n.codec.map(|c| c.name()),
            "width": n.width,
            "height": n.height,
            "fps": n.fps_milli.map(|f| f64::from(f) / 1000.0),
            "bitrate_bps": n.bitrate_bps,
            "frames": n.frames,
            "frames_dropped": n.frames_dropped,
            "packets_lost": n.packets_lost,
            "reconnects": n.reconnects,
            "watchdog_restarts": n.watchdog_restarts,
            "last_error": n.last_error,
            "previous_error": n.previous_error,
            "storage_error": n.storage_error,
        });
        match cameras.iter_mut().find(|(c, _)| *c == s.camera) {
            Some((_, streams)) => streams.push(v),
            None => cameras.push((s.camera.clone(), vec![v])),
        }
    }
    let cameras: Vec<Value> = cameras
        .into_iter()
        .map(|(name, streams)| json!({ "name": name, "streams": streams }))
        .collect();
    // Bytes the rings hold now (frames not yet written out), summed
    // as u64: a ring's figure is u32.
    let arena_used: u64 = ctx
        .running
        .live_sources()
        .iter()
        .map(|s| u64::from(s.tap.stats().used))
        .sum();
    Reply::json(
        200,
        &json!({
            "version": env!("CARGO_PKG_VERSION"),
            "uptime_s": ctx.started.elapsed().as_secs(),
            "storage": storage,
            "memory": {
                "rss_bytes": rss_bytes(),
                "arena_bytes": ctx.arena_bytes,
                "arena_used_bytes": arena_used,
            },
            "cameras": cameras,
            "auth": ctx.auth.is_some(),
            "user": user.map(|u| json!({ "name": u.user, "role": u.role.name() })),
        }),
    )
}

/// `/metrics`, in the Prometheus text format.
pub fn metrics(ctx: &ServeContext, index: &mut Index) -> Reply {
    let storage = match index
        .get(&ctx.db_path)
        .and_then(|d| d.summary().map_err(|e| e.to_string()))
    {
        Ok(s) => Some(s),
        Err(e) => {
            index.forget();
            log::warn!("metrics: index: {e}");
            None
        }
    };
    let statuses = ctx.running.statuses();
    let streams = statuses
        .iter()
        .map(|s| metrics::StreamMetrics {
            camera: &s.camera,
            stream: s.kind.name(),
            snapshot: s.snapshot(),
        })
        .collect();
    let st = &ctx.storage;
    let text = metrics::render(&metrics::Metrics {
        uptime_s: ctx.started.elapsed().as_secs(),
        streams,
        storage,
        storage_capacity_bytes: u64::from(st.pool_size_mb) * u64::from(st.pools) * 1024 * 1024,
        rss_bytes: rss_bytes(),
        arena_bytes: ctx.arena_bytes,
        http_by_status: ctx.counters.snapshot(),
        http_abandoned: ctx.counters.abandoned(),
    });
    Reply {
        status: 200,
        content_type: "text/plain; version=0.0.4; charset=utf-8",
        headers: Vec::new(),
        body: Body::Bytes(text.into_bytes()),
    }
}

fn time_json(t: Option<i64>) -> Value {
    t.map_or(Value::Null, |t| Value::String(format_90k(t)))
}

/// Resident set size, from `/proc/self/statm` (Linux); `None` elsewhere.
fn rss_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = text.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages.saturating_mul(u64::try_from(page).ok()?))
}
