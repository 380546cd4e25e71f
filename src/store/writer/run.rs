//! The writer thread's loop: write when a sync is due or a ring fills up,
//! sync and commit every sync interval (invariant 2), and write out
//! everything at the end.

use super::{Writer, WriterError, WriterStats};
use crate::stream::StopToken;
use crate::time::now_90k;
use std::time::Duration;

/// How often the writer looks at its commands, the rings' fill and the
/// sync clock. Rings hold seconds of video (`docs/storage.md`), so a
/// tenth of a second costs no headroom; polling faster only costs
/// wake-ups (it was 20 ms: 50 a second for nothing).
pub(super) const WRITER_POLL: Duration = Duration::from_millis(100);

/// When a ring is this full, the writer writes out early rather than
/// waiting for the sync interval.
pub(super) const EARLY_WRITE_PERCENT: u32 = 50;

impl Writer {
    /// Runs until `stop`, then writes out everything, closes the open
    /// recordings and commits.
    pub fn run(mut self, stop: StopToken) -> WriterStats {
        log::info!(
            "writer: pool {} offset {} generation {}",
            self.pos.pool,
            self.pos.offset,
            self.pos.generation
        );
        while !stop.is_stopped() {
            self.take_commands();
            let due = self.last_sync.elapsed() >= self.sync_interval;
            let pressed = self.streams.iter().any(|st| {
                let r = st.stream.ring.stats();
                r.capacity > 0 && r.used.saturating_mul(100) / r.capacity >= EARLY_WRITE_PERCENT
            });
            if due || pressed {
                if let Err(e) = self.write_available(false) {
                    self.fail(e);
                }
            }
            if due {
                if let Err(e) = self.sync_and_commit() {
                    self.fail(e);
                }
            }
            // Syncs stay on time (the loss bound is the sync interval);
            // a failing one is retried no faster than every 20 ms.
            let to_sync = self.sync_interval.saturating_sub(self.last_sync.elapsed());
            std::thread::sleep(WRITER_POLL.min(to_sync).max(Duration::from_millis(20)));
        }
        self.closing_at = Some(now_90k());
        if let Err(e) = self
            .write_available(true)
            .and_then(|_| self.sync_and_commit())
        {
            self.fail(e);
        }
        log::info!(
            "writer: stopped after {} records, {} bytes, {} commits",
            self.stats.records,
            self.stats.bytes_written,
            self.stats.commits
        );
        // What recording cost the disk, pools, database and WAL together:
        // the process's own write counters against the video it kept.
        if let Some((wchar, disk)) = process_io() {
            if self.stats.video_bytes > 0 {
                let v = self.stats.video_bytes as f64;
                log::info!(
                    "writer: {} bytes of video; the process wrote {wchar} bytes ({:.4} per byte of video), {disk} to storage ({:.4})",
                    self.stats.video_bytes,
                    wchar as f64 / v,
                    disk as f64 / v
                );
            }
        }
        self.stats
    }

    pub(super) fn fail(&mut self, e: WriterError) {
        self.stats.errors += 1;
        // Each stream shows the storage error: recording is what it is for.
        if self.stats.last_error.as_deref() != Some(e.0.as_str()) {
            log::error!("writer: {e}");
            for st in &self.streams {
                st.stream.status.set_storage_error(Some(e.0.clone()));
            }
        }
        self.stats.last_error = Some(e.0);
        // Back off a little: a full or failing disk must not spin a core.
        std::thread::sleep(Duration::from_millis(500));
    }

    /// Writes every frame whose duration is known; with `closing`, every
    /// frame, and closes the open recordings.
    pub fn write_available(&mut self, closing: bool) -> Result<(), WriterError> {
        for i in 0..self.streams.len() {
            self.write_stream(i, closing)?;
            if closing {
                self.close_recording(i, false);
            }
        }
        if self.stats.last_error.is_some() {
            self.stats.last_error = None;
            for st in &self.streams {
                st.stream.status.set_storage_error(None);
            }
        }
        Ok(())
    }
}

/// `wchar` and `write_bytes` of /proc/self/io (Linux), if readable.
pub(super) fn process_io() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/self/io").ok()?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    Some((field("wchar:")?, field("write_bytes:")?))
}
