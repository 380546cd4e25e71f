//! Recordings: where they begin and end (new parameters, discontinuities,
//! rotation), opening one at its place on the timeline and closing it.

use super::plan::ring_bounds;
use super::{err, OpenRecording, Writer, WriterError, WriterStreamState, TICKS};
use crate::store::db::{RecordingRow, SampleEntry};
use crate::store::db::{RECORDING_DISCONTINUITY, RECORDING_GAP, RECORDING_OPEN};
use crate::store::format;
use crate::store::timeline;
use crate::store::video_index::VideoIndexEncoder;

impl Writer {
    /// Writes the frames of stream `i` that can be written, as records.
    pub(super) fn write_stream(&mut self, i: usize, closing: bool) -> Result<(), WriterError> {
        loop {
            let st = &mut self.streams[i];
            let available = st.stream.ring.len();
            // The newest frame waits for its successor (its duration).
            let writable = if closing {
                available
            } else {
                available.saturating_sub(1)
            };
            if writable == 0 {
                return Ok(());
            }
            // Decide where the recording boundaries fall and what the
            // first frame does.
            let first = match st.stream.ring.peek(0) {
                Some(f) => f,
                None => return Ok(()),
            };
            if !first.extra.is_empty() && first.extra != st.params.as_slice() {
                // New parameters: a new recording with a new sample entry.
                let params = first.extra.to_vec();
                let changed = !st.params.is_empty();
                st.params = params;
                st.sample_entry_id = None;
                if changed {
                    self.close_recording(i, false);
                }
            }
            let st = &mut self.streams[i];
            let first = match st.stream.ring.peek(0) {
                Some(f) => f,
                None => return Ok(()),
            };
            if first.meta.discontinuity && st.rec.is_some() {
                self.close_recording(i, true);
                continue;
            }
            if st.rec.is_none() {
                if !first.meta.key || st.params.is_empty() {
                    // A recording starts with a key frame and known
                    // parameters; anything before is of no use to a player.
                    st.stream.ring.release(1);
                    st.stream.status.count_dropped();
                    continue;
                }
                self.open_recording(i)?;
            } else if self.should_rotate(i) {
                self.close_recording(i, false);
                continue;
            }
            let n = self.plan_record(i, writable);
            if n == 0 {
                // The first frame itself ends the recording (rotation or
                // discontinuity on the next round).
                continue;
            }
            self.write_record(i, n)?;
        }
    }

    pub(super) fn should_rotate(&self, i: usize) -> bool {
        let st = &self.streams[i];
        let (Some(rec), Some(f)) = (&st.rec, st.stream.ring.peek(0)) else {
            return false;
        };
        f.meta.key && rec.row.frames > 0 && rec.row.duration_90k >= rotate_after(st)
    }

    pub(super) fn open_recording(&mut self, i: usize) -> Result<(), WriterError> {
        let st = &mut self.streams[i];
        if st.stream.ring.is_empty() {
            return Ok(());
        }
        let sample_entry_id = match st.sample_entry_id {
            Some(id) => id,
            None => {
                let p = format::decode_params(&st.params).map_err(err("stored parameters"))?;
                let id = self
                    .db
                    .sample_entry_id(&SampleEntry {
                        codec: p.codec.name().to_owned(),
                        width: p.width,
                        height: p.height,
                        rfc6381: p.rfc6381_codec.clone(),
                        decoder_config: p.decoder_config.clone(),
                    })
                    .map_err(err("index"))?;
                let st = &mut self.streams[i];
                st.sample_entry_id = Some(id);
                id
            }
        };
        let st = &mut self.streams[i];
        let Some(first) = st.stream.ring.peek(0) else {
            return Ok(());
        };
        let ring = &st.stream.ring;
        ring_bounds(ring, &mut self.bounds);
        let bound = self.bounds.first().copied().unwrap_or(first.meta.wall_90k);
        // Start: the previous end when this continues it and the wall
        // clock agrees (no overlap, no gap); else the first frame's bound,
        // never before the previous end (docs/storage.md, "The timeline").
        let continuing = !first.meta.discontinuity && !first.gap_before;
        let start = match st.next_start.take() {
            Some(at) => at.max(st.prev_end_90k.unwrap_or(at)),
            None => timeline::start(bound, st.prev_end_90k, continuing),
        };
        let correction_ppm = match st.prev_end_90k {
            Some(end) if start == end && continuing => {
                timeline::drift_ppm(bound - end, st.stream.segment_90k)
            }
            _ => 0,
        };
        let mut flags = RECORDING_OPEN;
        if first.gap_before {
            flags |= RECORDING_GAP;
        }
        let id = self.next_recording_id;
        self.next_recording_id += 1;
        st.rec = Some(OpenRecording {
            row: RecordingRow {
                id,
                stream_id: st.stream.stream_id,
                open_id: self.open_id,
                start_90k: start,
                duration_90k: 0,
                media_start_90k: first.meta.timestamp_90k,
                frames: 0,
                key_frames: 0,
                bytes: 0,
                sample_entry_id,
                video_index: Vec::new(),
                flags,
            },
            index: VideoIndexEncoder::new(),
            next_sequence: 0,
            params: {
                let mut p = Vec::with_capacity(st.params.len() + 16);
                format::encode_first_params(&st.stream.camera, st.stream.kind, &st.params, &mut p);
                p
            },
            correction_ppm,
            carry: 0,
            gap_pending: first.gap_before,
        });
        log::debug!("{}: recording {id} starts", st.stream.label);
        Ok(())
    }

    /// Ends the open recording of stream `i` (its final row goes out with
    /// the next commit).
    pub(super) fn close_recording(&mut self, i: usize, discontinuity: bool) {
        let st = &mut self.streams[i];
        let Some(mut rec) = st.rec.take() else { return };
        if rec.row.frames == 0 {
            // Nothing written: it never existed.
            return;
        }
        rec.row.flags &= !RECORDING_OPEN;
        if discontinuity {
            rec.row.flags |= RECORDING_DISCONTINUITY;
        }
        rec.row.video_index = rec.index.as_bytes().to_vec();
        st.prev_end_90k = Some(rec.row.start_90k + rec.row.duration_90k);
        st.first_recording = false;
        log::debug!(
            "{}: recording {} closed: {} frames, {:.1} s",
            st.stream.label,
            rec.row.id,
            rec.row.frames,
            rec.row.duration_90k as f64 / TICKS as f64
        );
        self.closed.push(rec.row);
    }
}

/// How far into a recording (media time) the first key frame rotates it:
/// `segment_seconds`, less the stagger for a stream's first recording.
pub(super) fn rotate_after(st: &WriterStreamState) -> i64 {
    if st.first_recording {
        (st.stream.segment_90k - st.stream.stagger_90k).max(TICKS)
    } else {
        st.stream.segment_90k
    }
}
