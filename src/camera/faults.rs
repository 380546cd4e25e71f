//! Faults the built-in camera can be told to cause while it serves, so
//! that tests can prove what the recorder does under them: a pause (no
//! frames, the camera's clock running on, as a real camera's does) and a
//! jump of its RTP clock forward or back (as a camera that sets its clock,
//! or VLC looping a file, does).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

/// A handle on a camera's faults; clones control the same camera.
#[derive(Clone, Default)]
pub struct Faults(Arc<Mutex<State>>);

#[derive(Default)]
struct State {
    paused_until: Option<Instant>,
    /// Added to every RTP timestamp (90 kHz), wrapping.
    clock_offset_90k: i64,
    /// When the first frame after the last pause was sent.
    resumed_at: Option<SystemTime>,
}

impl Faults {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere cannot leave this state inconsistent.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends no frame for `d` from now; frames due meanwhile are skipped
    /// (their timestamps are not reused) and sending resumes at a key frame.
    pub fn pause(&self, d: Duration) {
        self.state().paused_until = Some(Instant::now() + d);
    }

    /// Moves the RTP clock by `by_90k` (negative: back) from the next frame.
    pub fn jump_clock(&self, by_90k: i64) {
        let mut s = self.state();
        s.clock_offset_90k = s.clock_offset_90k.wrapping_add(by_90k);
    }

    /// When the camera sent its first frame after the last pause (it
    /// resumes at a key frame, so up to a GOP after the pause ended).
    pub fn resumed_at(&self) -> Option<SystemTime> {
        self.state().resumed_at
    }

    pub(crate) fn paused(&self, now: Instant) -> bool {
        self.state().paused_until.is_some_and(|t| now < t)
    }

    /// A frame is sent at `now`: the first after a pause notes the time.
    pub(crate) fn sending(&self, now: Instant) {
        let mut s = self.state();
        if s.paused_until.is_some_and(|t| now >= t) {
            s.paused_until = None;
            s.resumed_at = Some(SystemTime::now());
        }
    }

    pub(crate) fn clock_offset(&self) -> u32 {
        self.state().clock_offset_90k as u32
    }
}
