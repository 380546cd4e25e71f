//! `GET /metrics`: Prometheus text format (version 0.0.4). Per stream:
//! frames, bytes, drops, losses, reconnects, state and bitrate; storage
//! use; memory and arena; HTTP answers by status. Rendered from snapshots
//! the caller gathers, so this module only formats.

use crate::store::db::Summary;
use crate::stream::status::StreamSnapshot;
use std::fmt::Write;

/// One stream's labels and counters.
pub struct StreamMetrics<'a> {
    pub camera: &'a str,
    pub stream: &'a str,
    pub snapshot: StreamSnapshot,
}

/// Everything `/metrics` shows.
pub struct Metrics<'a> {
    pub uptime_s: u64,
    pub streams: Vec<StreamMetrics<'a>>,
    /// `None` when the index could not be read.
    pub storage: Option<Summary>,
    pub storage_capacity_bytes: u64,
    pub rss_bytes: Option<u64>,
    pub arena_bytes: u64,
    pub http_by_status: Vec<(u16, u64)>,
    pub http_abandoned: u32,
}

/// A label value as the text format wants it.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The page of metrics.
pub fn render(m: &Metrics<'_>) -> String {
    let mut out = String::with_capacity(2048 + 1024 * m.streams.len());
    family(
        &mut out,
        "vigil_uptime_seconds",
        "gauge",
        "Seconds since Vigil started.",
    );
    let _ = writeln!(out, "vigil_uptime_seconds {}", m.uptime_s);

    type Field = fn(&StreamSnapshot) -> u64;
    let per_stream: [(&str, &str, &str, Field); 10] = [
        (
            "vigil_stream_up",
            "gauge",
            "1 while the stream is streaming.",
            |s| u64::from(s.state.name() == "streaming"),
        ),
        (
            "vigil_stream_frames_total",
            "counter",
            "Frames received.",
            |s| s.frames,
        ),
        (
            "vigil_stream_bytes_total",
            "counter",
            "Bytes of video received.",
            |s| s.bytes,
        ),
        (
            "vigil_stream_frames_dropped_total",
            "counter",
            "Frames dropped (malformed, too large, or no room in the arena).",
            |s| s.frames_dropped,
        ),
        (
            "vigil_stream_packets_lost_total",
            "counter",
            "RTP packets lost on the way.",
            |s| s.packets_lost,
        ),
        (
            "vigil_stream_reconnects_total",
            "counter",
            "Reconnections to the camera.",
            |s| u64::from(s.reconnects),
        ),
        (
            "vigil_stream_watchdog_restarts_total",
            "counter",
            "Sessions restarted by the watchdog (streaming, but no frame).",
            |s| u64::from(s.watchdog_restarts),
        ),
        (
            "vigil_stream_bitrate_bits_per_second",
            "gauge",
            "Bitrate over the last 10 s window.",
            |s| u64::from(s.bitrate_bps),
        ),
        (
            "vigil_stream_discontinuities_total",
            "counter",
            "Timestamp jumps that split a recording.",
            |s| s.discontinuities,
        ),
        (
            "vigil_stream_storage_error",
            "gauge",
            "1 while writing this stream's video fails.",
            |s| u64::from(s.storage_error.is_some()),
        ),
    ];
    for (name, kind, help, get) in per_stream {
        family(&mut out, name, kind, help);
        for s in &m.streams {
            let _ = writeln!(
                out,
                "{name}{{camera=\"{}\",stream=\"{}\"}} {}",
                escape(s.camera),
                escape(s.stream),
                get(&s.snapshot)
            );
        }
    }

    family(
        &mut out,
        "vigil_storage_capacity_bytes",
        "gauge",
        "Pool files' total size (pool_size_mb * pools).",
    );
    let _ = writeln!(
        out,
        "vigil_storage_capacity_bytes {}",
        m.storage_capacity_bytes
    );
    if let Some(st) = &m.storage {
        family(
            &mut out,
            "vigil_storage_used_bytes",
            "gauge",
            "Bytes of recorded video indexed.",
        );
        let _ = writeln!(out, "vigil_storage_used_bytes {}", st.bytes);
        family(
            &mut out,
            "vigil_storage_recordings",
            "gauge",
            "Recordings in the index.",
        );
        let _ = writeln!(out, "vigil_storage_recordings {}", st.recordings);
        if let (Some(oldest), Some(newest)) = (st.oldest_start_90k, st.newest_end_90k) {
            family(
                &mut out,
                "vigil_storage_retention_seconds",
                "gauge",
                "Span from the oldest recording's start to the newest's end.",
            );
            let _ = writeln!(
                out,
                "vigil_storage_retention_seconds {}",
                (newest - oldest).max(0) / 90_000
            );
        }
    }
    if let Some(rss) = m.rss_bytes {
        family(
            &mut out,
            "vigil_memory_rss_bytes",
            "gauge",
            "Resident memory of the process.",
        );
        let _ = writeln!(out, "vigil_memory_rss_bytes {rss}");
    }
    family(
        &mut out,
        "vigil_arena_bytes",
        "gauge",
        "Size of the frame arena (memory.arena_mb).",
    );
    let _ = writeln!(out, "vigil_arena_bytes {}", m.arena_bytes);

    family(
        &mut out,
        "vigil_http_requests_total",
        "counter",
        "HTTP answers by status.",
    );
    for (status, n) in &m.http_by_status {
        let _ = writeln!(out, "vigil_http_requests_total{{status=\"{status}\"}} {n}");
    }
    family(
        &mut out,
        "vigil_http_connections_abandoned_total",
        "counter",
        "Connections given up after refusing an absurdly large request body.",
    );
    let _ = writeln!(
        out,
        "vigil_http_connections_abandoned_total {}",
        m.http_abandoned
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every line is a comment or `name{labels} value` with a number.
    fn well_formed(text: &str) -> bool {
        text.lines().all(|l| {
            if l.starts_with("# HELP ") || l.starts_with("# TYPE ") {
                return true;
            }
            let Some((series, value)) = l.rsplit_once(' ') else {
                return false;
            };
            let name = series.split('{').next().unwrap_or("");
            value.parse::<f64>().is_ok()
                && !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && (!series.contains('{') || series.ends_with('}'))
        })
    }

    #[test]
    fn renders_streams_storage_and_http() {
        let snap = StreamSnapshot {
            frames: 42,
            bytes: 4200,
            reconnects: 3,
            ..StreamSnapshot::default()
        };
        let m = Metrics {
            uptime_s: 7,
            streams: vec![StreamMetrics {
                camera: "front\"door",
                stream: "main",
                snapshot: snap,
            }],
            storage: Some(Summary {
                recordings: 2,
                bytes: 1000,
                oldest_start_90k: Some(0),
                newest_end_90k: Some(90_000 * 60),
            }),
            storage_capacity_bytes: 1 << 30,
            rss_bytes: Some(5 << 20),
            arena_bytes: 8 << 20,
            http_by_status: vec![(200, 5), (404, 1)],
            http_abandoned: 0,
        };
        let text = render(&m);
        assert!(well_formed(&text), "{text}");
        for line in [
            "vigil_stream_frames_total{camera=\"front\\\"door\",stream=\"main\"} 42",
            "vigil_stream_reconnects_total{camera=\"front\\\"door\",stream=\"main\"} 3",
            "vigil_storage_retention_seconds 60",
            "vigil_http_requests_total{status=\"404\"} 1",
            "vigil_arena_bytes 8388608",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }
}
