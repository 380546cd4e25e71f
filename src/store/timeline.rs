//! Where each frame goes on the index's wall-clock timeline: the rules
//! that keep the index the truth under camera faults (docs/storage.md,
//! "The timeline"). Pure functions of the frames' camera (media) times
//! and arrival (wall) times, so every rule is tested without a clock.
//!
//! Two clocks describe a frame: the camera's 90 kHz media time, smooth
//! but free to jump, stall or drift, and the NVR's wall clock at arrival,
//! true but late by the camera's latency plus jitter (the ingest thread
//! hands frames over in 100 ms bursts). The media clock spaces frames; the
//! wall clock bounds them: a frame cannot have been captured after it
//! arrived, nor after a later frame arrived less the media time between
//! them. That latest possible capture time is the frame's *bound*.

pub use crate::time::TICKS;
/// A media interval beyond this is not a frame interval: the camera's
/// clock jumped (or the camera stalled for longer); the wall clock places
/// the frame instead.
pub const MAX_FRAME_DURATION: i64 = 10 * TICKS;
/// How far the media clock may put a frame after its bound before the
/// frame is re-anchored on the bound: the index never runs ahead of the
/// wall clock by more than this.
pub const AHEAD_TOLERANCE: i64 = TICKS * 15 / 100;
/// How far the media clock may put a frame before its bound (a camera
/// whose clock stopped while it stalled, or a slow one beyond what drift
/// correction caught) before the frame is re-anchored on its bound.
pub const BEHIND_TOLERANCE: i64 = TICKS * 4 / 10;
/// An interval this many times the stream's usual one (and at least
/// [`MIN_GAP`]) is a stall: frames are missing there.
pub const GAP_FACTOR: i64 = 4;
pub const MIN_GAP: i64 = TICKS / 4;
/// A stall at least this long ends the recording: the hole shows between
/// recordings. A shorter one stays inside it, as one long frame, and the
/// recording is marked as having frames missing.
pub const SPLIT_GAP: i64 = TICKS;

/// One frame, as the timeline sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    /// Camera time, 90 kHz (unwrapped within a session).
    pub media_90k: i64,
    /// Arrival, 90 kHz since the Unix epoch.
    pub wall_90k: i64,
    /// The first frame of a new session (or after a timestamp jump): its
    /// media time says nothing about the previous frame's.
    pub discontinuity: bool,
}

/// Whether `next`'s media time continues `prev`'s (a plausible interval).
pub fn continues(prev: &Sample, next: &Sample) -> bool {
    let d = next.media_90k - prev.media_90k;
    !next.discontinuity && d > 0 && d <= MAX_FRAME_DURATION
}

/// How much longer a media interval may be than the arrivals' interval for
/// the later arrival to still bound the earlier frame: more, and the
/// camera's clock jumped forward rather than frames coming in a burst.
pub const BURST: i64 = TICKS / 2;

/// The bound of each frame of `frames` (in order), into `out`: its
/// arrival, lowered by every later arrival of the same continuous run
/// less the media time between them. Lookahead removes the jitter a single
/// arrival carries: a frame delayed on the network and the burst behind
/// it get the bound of the frames that came on time. A media interval far
/// longer than the arrivals' (a clock jump forward) ends the run.
pub fn bounds(frames: impl DoubleEndedIterator<Item = Sample>, out: &mut Vec<i64>) {
    out.clear();
    let mut later: Option<(Sample, i64)> = None;
    for f in frames.rev() {
        let b = match later {
            Some((n, nb))
                if continues(&f, &n)
                    && n.wall_90k - f.wall_90k >= n.media_90k - f.media_90k - BURST =>
            {
                f.wall_90k.min(nb - (n.media_90k - f.media_90k))
            }
            _ => f.wall_90k,
        };
        out.push(b);
        later = Some((f, b));
    }
    out.reverse();
}

/// Where the next frame goes, seen from the frame before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    /// The earlier frame's duration.
    pub duration: i64,
    /// The next frame's index time, `at + duration` unless `split`.
    pub next_at: i64,
    /// Frames are missing between the two (a stall).
    pub gap: bool,
    /// The stall is long: the recording ends after the earlier frame,
    /// whose duration is then the usual interval, and the next recording
    /// starts at `next_at`.
    pub split: bool,
    /// The media clock was overruled by the wall clock.
    pub reanchored: bool,
}

/// Places `next` after `prev`, which is at index time `at`. `next_bound`
/// is `next`'s bound, `usual` the stream's usual frame interval, and
/// `drift` the drift correction to add to the media interval.
pub fn place(
    prev: &Sample,
    at: i64,
    next: &Sample,
    next_bound: i64,
    usual: i64,
    drift: impl FnOnce(i64) -> i64,
) -> Placement {
    let usual = usual.max(1);
    let candidate = if continues(prev, next) {
        let d = next.media_90k - prev.media_90k;
        at + d + drift(d)
    } else {
        at + usual
    };
    let (next_at, reanchored) = if candidate > next_bound + AHEAD_TOLERANCE {
        (next_bound.max(at + 1), true)
    } else if candidate < next_bound - BEHIND_TOLERANCE {
        (next_bound, true)
    } else {
        (candidate.max(at + 1), false)
    };
    let interval = next_at - at;
    let gap = interval >= (GAP_FACTOR * usual).max(MIN_GAP);
    let split = gap && interval >= SPLIT_GAP;
    Placement {
        duration: if split { usual } else { interval },
        next_at,
        gap,
        split,
        reanchored,
    }
}

/// Drift correction: at most 0.2 % faster or slower, enough for a camera
/// clock 0.1 % off, slow enough that playback speed never visibly changes.
pub const MAX_CORRECTION_PPM: i64 = 2_000;
/// An error within this is arrival jitter, not drift, and is left alone:
/// frames reach the ring in bursts (the ingest thread drains each camera
/// every 100 ms) and late by whatever the network adds. Correcting it
/// stretched recordings by up to 0.2 % for nothing: a frame's worth of
/// timeline a minute that no frame fills. An index ahead of the frames'
/// bounds is no jitter (a frame cannot be captured after it arrived), so
/// that side is corrected from `DRIFT_DEADBAND_AHEAD`.
pub const DRIFT_DEADBAND: i64 = TICKS / 5;
pub const DRIFT_DEADBAND_AHEAD: i64 = TICKS / 50;

/// The drift correction (ppm) of a recording that continues the previous
/// one, from `error`: its first frame's bound less the previous end.
/// Positive: the camera's clock is slow against ours, so its durations
/// are short; the recording is stretched over `segment_90k`.
pub fn drift_ppm(error: i64, segment_90k: i64) -> i64 {
    if (-DRIFT_DEADBAND_AHEAD..=DRIFT_DEADBAND).contains(&error) {
        return 0;
    }
    (error * 1_000_000 / segment_90k.max(TICKS)).clamp(-MAX_CORRECTION_PPM, MAX_CORRECTION_PPM)
}

/// Where a recording starts whose first frame has bound `bound`, after a
/// recording that ended at `prev_end` (if any). A frame that continues the
/// previous recording (`continuing`) starts at its end when the bound
/// agrees, within the tolerances; otherwise the bound decides, and never
/// before the previous end (recordings never overlap).
pub fn start(bound: i64, prev_end: Option<i64>, continuing: bool) -> i64 {
    match prev_end {
        Some(end)
            if continuing && end <= bound + AHEAD_TOLERANCE && end >= bound - BEHIND_TOLERANCE =>
        {
            end
        }
        Some(end) => bound.max(end),
        None => bound,
    }
}

/// The duration of a stream's newest frame, at `at` in the index, when it
/// is written with no successor at wall-clock time `now` (shutdown, a
/// camera removed): its predecessor's interval `usual`, cut at `now`, so
/// the index never runs ahead of the wall clock. At least one tick.
pub fn last_duration(at: i64, usual: i64, now: i64) -> i64 {
    usual.min(now - at).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: i64 = TICKS / 25;
    const T0: i64 = 1_700_000_000 * TICKS;

    fn s(media: i64, wall: i64) -> Sample {
        Sample {
            media_90k: media,
            wall_90k: wall,
            discontinuity: false,
        }
    }

    /// Places every frame of `frames` from the first's bound; the index
    /// times, the durations and the placements.
    fn run(frames: &[Sample]) -> (Vec<i64>, Vec<Placement>) {
        let mut b = Vec::new();
        bounds(frames.iter().copied(), &mut b);
        let mut at = b[0];
        let mut times = vec![at];
        let mut places = Vec::new();
        for k in 1..frames.len() {
            let p = place(&frames[k - 1], at, &frames[k], b[k], FRAME, |_| 0);
            at = p.next_at;
            times.push(at);
            places.push(p);
        }
        (times, places)
    }

    /// 25 fps arriving in 100 ms bursts, `latency` late.
    fn steady(n: i64, media0: i64, wall0: i64) -> Vec<Sample> {
        (0..n)
            .map(|k| {
                let capture = wall0 + k * FRAME;
                let burst = (capture / (TICKS / 10) + 1) * (TICKS / 10);
                s(media0 + k * FRAME, burst)
            })
            .collect()
    }

    #[test]
    fn bursts_follow_the_media_clock_and_stay_behind_arrival() {
        let f = steady(250, 5_000, T0);
        let (times, places) = run(&f);
        for (k, t) in times.iter().enumerate() {
            assert!(*t <= f[k].wall_90k, "frame {k} ahead of its arrival");
            assert!(
                f[k].wall_90k - t <= TICKS / 10 + FRAME,
                "frame {k} far behind"
            );
        }
        assert!(places
            .iter()
            .all(|p| p.duration == FRAME && !p.gap && !p.reanchored));
    }

    #[test]
    fn a_stall_with_the_camera_clock_running_is_a_gap_where_it_happened() {
        // 2 s of frames, a 5.5 s pause (media and wall both move on), more.
        let mut f = steady(50, 0, T0);
        f.extend(steady(
            50,
            50 * FRAME + 5 * TICKS + TICKS / 2,
            T0 + 50 * FRAME + 5 * TICKS + TICKS / 2,
        ));
        let (times, places) = run(&f);
        let p = places[49];
        assert!(p.gap && p.split, "{p:?}");
        assert_eq!(p.duration, FRAME);
        // The frame after the pause is stamped when it came, not early.
        assert!((f[50].wall_90k - times[50]).abs() <= TICKS / 10);
    }

    #[test]
    fn a_stall_with_the_camera_clock_stopped_is_found_by_arrival() {
        let mut f = steady(50, 0, T0);
        f.extend(steady(50, 50 * FRAME, T0 + 50 * FRAME + 3 * TICKS));
        let (times, places) = run(&f);
        assert!(places[49].split && places[49].reanchored);
        assert!((f[50].wall_90k - times[50]).abs() <= TICKS / 10);
        // And then the media clock again.
        assert!(places[50..].iter().all(|p| p.duration == FRAME));
    }

    #[test]
    fn a_short_stall_stays_inside_the_recording_marked() {
        let mut f = steady(50, 0, T0);
        f.extend(steady(
            50,
            50 * FRAME + TICKS / 2,
            T0 + 50 * FRAME + TICKS / 2,
        ));
        let (_, places) = run(&f);
        let p = places[49];
        assert!(p.gap && !p.split);
        assert_eq!(p.duration, FRAME + TICKS / 2);
    }

    #[test]
    fn a_camera_clock_jumping_back_does_not_push_the_index_ahead() {
        // Like VLC looping a file: media jumps 1.1 s back at each wrap.
        let mut f = Vec::new();
        for wrap in 0..7 {
            f.extend(steady(100, 0, T0 + wrap * 100 * FRAME));
        }
        let (times, places) = run(&f);
        for (k, t) in times.iter().enumerate() {
            assert!(*t <= f[k].wall_90k + AHEAD_TOLERANCE, "frame {k} ahead");
            assert!(f[k].wall_90k - t <= TICKS / 2, "frame {k} behind");
        }
        assert!(places.iter().all(|p| !p.gap));
    }

    #[test]
    fn a_camera_clock_jumping_forward_is_overruled() {
        let mut f = steady(50, 0, T0);
        f.extend(steady(50, 50 * FRAME + 8 * TICKS, T0 + 50 * FRAME));
        let (times, places) = run(&f);
        assert!(places[49].reanchored && !places[49].gap);
        for (k, t) in times.iter().enumerate() {
            assert!(*t <= f[k].wall_90k + AHEAD_TOLERANCE, "frame {k} ahead");
        }
    }

    #[test]
    fn a_network_delay_with_a_catch_up_burst_is_no_gap() {
        // Frame 50 and the 15 after it arrive together, 600 ms late.
        let mut f = steady(100, 0, T0);
        let late = f[65].wall_90k;
        for x in &mut f[50..66] {
            x.wall_90k = late;
        }
        let (_, places) = run(&f);
        assert!(places.iter().all(|p| !p.gap && !p.reanchored), "{places:?}");
    }

    #[test]
    fn drift_is_corrected_beyond_jitter_and_at_a_limited_rate() {
        let minute = 60 * TICKS;
        assert_eq!(drift_ppm(DRIFT_DEADBAND, minute), 0);
        assert_eq!(drift_ppm(-DRIFT_DEADBAND_AHEAD, minute), 0);
        // 30 ms ahead is corrected (500 ppm over a minute), 30 ms behind not.
        assert_eq!(drift_ppm(-TICKS * 3 / 100, minute), -500);
        assert_eq!(drift_ppm(TICKS * 3 / 100, minute), 0);
        assert_eq!(drift_ppm(10 * TICKS, minute), MAX_CORRECTION_PPM);
        assert_eq!(drift_ppm(-10 * TICKS, minute), -MAX_CORRECTION_PPM);
    }

    #[test]
    fn a_recording_continues_only_where_the_wall_clock_agrees() {
        let end = T0;
        assert_eq!(start(end + TICKS / 10, Some(end), true), end);
        // A 5 s hole is never closed up.
        assert_eq!(start(end + 5 * TICKS, Some(end), true), end + 5 * TICKS);
        // A new session starts at its bound, never before the previous end.
        assert_eq!(start(end + TICKS / 10, Some(end), false), end + TICKS / 10);
        assert_eq!(start(end - TICKS, Some(end), false), end);
        assert_eq!(start(end, None, true), end);
    }

    #[test]
    fn the_newest_frame_never_ends_after_the_wall_clock() {
        assert_eq!(last_duration(T0, FRAME, T0 + TICKS), FRAME);
        assert_eq!(last_duration(T0, FRAME, T0 + FRAME / 2), FRAME / 2);
        // Placed ahead of the clock (within the tolerance): one tick.
        assert_eq!(last_duration(T0, FRAME, T0 - TICKS / 10), 1);
    }
}
