//! Planning the next record of a stream: which waiting frames go into it
//! (up to a recording boundary or the record limits) and how long each
//! lasts, by the timeline rules (docs/storage.md, "The timeline").

use super::recording::rotate_after;
use super::Writer;
use crate::arena::RingReader;
use crate::store::format::{self, FrameEntry, POOL_HEADER_BYTES};
use crate::store::timeline::{self, Sample};

/// Frames in one record at most (one `pwritev` of header + frames).
pub(super) const MAX_FRAMES_PER_RECORD: usize = 512;

/// The bounds (`timeline::bounds`) of every frame waiting in `ring`.
pub(super) fn ring_bounds(ring: &RingReader, out: &mut Vec<i64>) {
    timeline::bounds(
        (0..ring.len())
            .filter_map(|k| ring.peek(k))
            .map(|f| sample(&f)),
        out,
    );
}

/// A ring frame as the timeline sees it.
pub(super) fn sample(f: &crate::arena::FrameView<'_>) -> Sample {
    Sample {
        media_90k: f.meta.timestamp_90k,
        wall_90k: f.meta.wall_90k,
        discontinuity: f.meta.discontinuity,
    }
}

impl Writer {
    /// How many of the first `writable` ring frames go into the next
    /// record: they stop at a recording boundary and at the record limits.
    /// Fills `self.pending`; changes nothing else.
    pub(super) fn plan_record(&mut self, i: usize, writable: usize) -> usize {
        let st = &self.streams[i];
        let Some(rec) = st.rec.as_ref() else { return 0 };
        let limit = rotate_after(st);
        let pool_room = self.pools.size().saturating_sub(POOL_HEADER_BYTES);
        let params_len = if rec.next_sequence == 0 {
            rec.params.len() as u64
        } else {
            0
        };
        let ring = &st.stream.ring;
        ring_bounds(ring, &mut self.bounds);
        let p = &mut self.pending;
        p.entries.clear();
        p.carry = rec.carry;
        p.last_duration = st.last_duration;
        p.gap = false;
        p.split = None;
        // The index time of the frame being planned.
        let mut at = rec.row.start_90k + rec.row.duration_90k;
        let mut bytes: u64 = 0;
        let mut n = 0;
        while n < writable && n < MAX_FRAMES_PER_RECORD {
            let Some(f) = ring.peek(n) else { break };
            if n > 0 {
                // Boundaries: new parameters, a discontinuity, rotation.
                let new_params = !f.extra.is_empty() && f.extra != st.params.as_slice();
                let rotate = f.meta.key && at - rec.row.start_90k >= limit;
                if new_params || f.meta.discontinuity || rotate || f.gap_before {
                    break;
                }
            }
            let size = f.data.len() as u64;
            let header = u64::from(format::RECORD_FIXED_BYTES) + 8 * (n as u64 + 1) + params_len;
            if n > 0 && header + bytes + size > pool_room {
                break;
            }
            // The duration: to where the next frame goes on the timeline.
            let here = sample(&f);
            let placed = match (ring.peek(n + 1), self.bounds.get(n + 1)) {
                (Some(nf), Some(&bound)) if !nf.meta.discontinuity => {
                    let carry = &mut p.carry;
                    let ppm = rec.correction_ppm;
                    Some(timeline::place(
                        &here,
                        at,
                        &sample(&nf),
                        bound,
                        p.last_duration,
                        |d| {
                            // Drift correction, with the rounding remainder carried.
                            let scaled = d * ppm + *carry;
                            *carry = scaled % 1_000_000;
                            scaled / 1_000_000
                        },
                    ))
                }
                _ => None,
            };
            let duration = match placed {
                Some(pl) => {
                    if pl.reanchored {
                        // Quirk: camera clocks jump, stop and run off; the
                        // wall clock wins (docs/storage.md, "The timeline").
                        log::debug!("{}: frame re-anchored on the wall clock", st.stream.label);
                    }
                    if pl.split {
                        // The hole shows between recordings; nothing is
                        // missing inside this one.
                        p.split = Some(pl.next_at);
                    } else if pl.gap {
                        p.gap = true;
                    } else {
                        p.last_duration = pl.duration;
                    }
                    pl.duration
                }
                // The newest frame, written at shutdown (rule 8).
                None if ring.peek(n + 1).is_none() => match self.closing_at {
                    Some(now) => timeline::last_duration(at, p.last_duration, now),
                    None => p.last_duration,
                },
                None => p.last_duration,
            }
            .max(1);
            p.entries.push(FrameEntry {
                duration_90k: u32::try_from(duration).unwrap_or(u32::MAX),
                size: u32::try_from(size).unwrap_or(u32::MAX),
                key: f.meta.key,
            });
            at += duration;
            bytes += size;
            n += 1;
            if p.split.is_some() {
                break;
            }
        }
        n
    }
}
