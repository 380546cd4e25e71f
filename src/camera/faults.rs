//! Faults the built-in camera can be told to cause while it serves, so
//! that tests can prove what the recorder does under them:
//! - a pause: no frames, the camera's clock running on, as a real
//!   camera's does when its encoder stalls;
//! - a freeze: nothing at all, on any connection (no frames, no RTCP, no
//!   answer to requests; new connections are accepted by the kernel and
//!   then ignored), as a hung camera or a network cut looks from the
//!   recorder;
//! - a kick: every connection and session closed at once;
//! - an end of stream: an RTCP BYE on every session, which then sends
//!   nothing more (GStreamer at EOS);
//! - a jump of the RTP clock forward or back (a camera setting its clock,
//!   VLC looping a file: repeated jumps back are its wrap);
//! - random payloads: well-formed RTP whose payload bytes are random.

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
    frozen_until: Option<Instant>,
    /// Counts kicks and ends of stream: a connection or session compares
    /// the count with the one it started with.
    kicks: u32,
    ends: u32,
    random_payloads: bool,
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

    /// When the camera sent its first frame after the last pause or freeze
    /// (it resumes at a key frame, so up to a GOP after the fault ended).
    pub fn resumed_at(&self) -> Option<SystemTime> {
        self.state().resumed_at
    }

    /// Sends nothing and answers nothing for `d` from now, on every
    /// connection, old and new; frames due meanwhile are skipped.
    pub fn freeze(&self, d: Duration) {
        self.state().frozen_until = Some(Instant::now() + d);
    }

    /// Closes every connection and session now.
    pub fn kick(&self) {
        let mut s = self.state();
        s.kicks = s.kicks.wrapping_add(1);
    }

    /// Sends an RTCP BYE on every playing session, which then sends
    /// nothing more (the connection stays open, new sessions play).
    pub fn end_stream(&self) {
        let mut s = self.state();
        s.ends = s.ends.wrapping_add(1);
    }

    /// Replaces the payload of every RTP packet with random bytes (the
    /// RTP header stays valid) while `on`.
    pub fn random_payloads(&self, on: bool) {
        self.state().random_payloads = on;
    }

    pub(crate) fn paused(&self, now: Instant) -> bool {
        let s = self.state();
        s.paused_until.is_some_and(|t| now < t) || s.frozen_until.is_some_and(|t| now < t)
    }

    /// Until when everything is frozen, if it is at `now`.
    pub(crate) fn frozen(&self, now: Instant) -> Option<Instant> {
        self.state().frozen_until.filter(|&t| now < t)
    }

    pub(crate) fn kicks(&self) -> u32 {
        self.state().kicks
    }

    pub(crate) fn ends(&self) -> u32 {
        self.state().ends
    }

    pub(crate) fn sending_random_payloads(&self) -> bool {
        self.state().random_payloads
    }

    /// A frame is sent at `now`: the first after a pause notes the time.
    pub(crate) fn sending(&self, now: Instant) {
        let mut s = self.state();
        let over = |t: &mut Option<Instant>| t.take_if(|t| now >= *t).is_some();
        let paused = over(&mut s.paused_until);
        if over(&mut s.frozen_until) || paused {
            s.resumed_at = Some(SystemTime::now());
        }
    }

    pub(crate) fn clock_offset(&self) -> u32 {
        self.state().clock_offset_90k as u32
    }
}
