//! The writer thread: the only code that writes pool files and the index.
//!
//! It takes frames from the streams' arena rings (higher priority first),
//! groups each stream's frames into recordings (rotating at the first key
//! frame after `segment_seconds`, staggered across streams) and records
//! (what one sync interval brings), writes records strictly sequentially
//! into the current pool, and every `sync_interval_ms` makes them durable:
//! fdatasync the pool, then commit the index rows that describe them
//! (docs/storage.md, invariants 1 and 2). Before it enters a pool it
//! reclaims it (invariant 4).
//!
//! Frame durations come from the camera's 90 kHz clock: a frame's duration
//! is the time to the next frame, so the newest frame of a stream waits in
//! its ring until its successor arrives (or the recording closes).
//! Recording start times come from the NVR's clock, with a limited-rate
//! correction so recordings track wall-clock time even when the camera's
//! clock runs fast or slow.

use super::db::{CommitBatch, Db, RecordRow, RecordingRow, SampleEntry, WriterPosition};
use super::db::{RECORDING_DISCONTINUITY, RECORDING_GAP, RECORDING_OPEN};
use super::format::{self, FrameEntry, RecordHeader, FLAG_FIRST, FLAG_GAP, POOL_HEADER_BYTES};
use super::pool::Pools;
use super::timeline::{self, Sample};
use super::video_index::VideoIndexEncoder;
use crate::arena::RingReader;
use crate::stream::{StopToken, StreamStatus};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// How often the writer looks at its commands, the rings' fill and the
/// sync clock. Rings hold seconds of video (`docs/storage.md`), so a
/// tenth of a second costs no headroom; polling faster only costs
/// wake-ups (it was 20 ms: 50 a second for nothing).
const WRITER_POLL: Duration = Duration::from_millis(100);

pub use super::timeline::TICKS;
/// Frames in one record at most (one `pwritev` of header + frames).
const MAX_FRAMES_PER_RECORD: usize = 512;
/// When a ring is this full, the writer writes out early rather than
/// waiting for the sync interval.
const EARLY_WRITE_PERCENT: u32 = 50;

/// One stream, as the writer sees it.
pub struct WriterStream {
    pub stream_id: u32,
    pub camera: String,
    /// `main` or `sub`.
    pub kind: &'static str,
    pub label: String,
    pub priority: u8,
    pub segment_90k: i64,
    /// Shortens the first recording by this much, so that the streams'
    /// rotations (and their index commits) do not all fall together.
    pub stagger_90k: i64,
    pub ring: RingReader,
    pub status: Arc<StreamStatus>,
}

/// What the daemon asks of the running writer (cameras added, changed or
/// removed while recording). Checked every turn of the writer's loop.
pub enum WriterCommand {
    /// Start draining a new stream. Its `stream_id` is looked up (or made)
    /// in the index from its camera and kind; the reply says whether that
    /// worked.
    Add(WriterStream, mpsc::Sender<Result<(), String>>),
    /// Stop draining a stream whose producer has stopped: write out every
    /// frame its ring still holds, close its recording (the final row goes
    /// out with the next commit), and hand its ring end back (`None`: no
    /// such stream).
    Retire {
        camera: String,
        kind: &'static str,
        reply: mpsc::Sender<Option<RingReader>>,
    },
}

/// The writer's counters, for status and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriterStats {
    pub records: u64,
    /// Bytes written to pool files (record headers and frames).
    pub bytes_written: u64,
    /// Of those, the frames' own bytes: the video.
    pub video_bytes: u64,
    pub commits: u64,
    pub reclaimed_recordings: u64,
    pub frames_too_large: u64,
    pub errors: u64,
    pub last_error: Option<String>,
}

struct OpenRecording {
    row: RecordingRow,
    index: VideoIndexEncoder,
    next_sequence: u32,
    /// The stream's identity and serialized parameters, for the
    /// recording's first record (`format::encode_first_params`).
    params: Vec<u8>,
    /// Drift correction for this recording, and its rounding carry.
    correction_ppm: i64,
    carry: i64,
    /// The next record starts after dropped frames.
    gap_pending: bool,
}

/// The bounds (`timeline::bounds`) of every frame waiting in `ring`.
fn ring_bounds(ring: &RingReader, out: &mut Vec<i64>) {
    timeline::bounds(
        (0..ring.len())
            .filter_map(|k| ring.peek(k))
            .map(|f| sample(&f)),
        out,
    );
}

/// A ring frame as the timeline sees it.
fn sample(f: &crate::arena::FrameView<'_>) -> Sample {
    Sample {
        media_90k: f.meta.timestamp_90k,
        wall_90k: f.meta.wall_90k,
        discontinuity: f.meta.discontinuity,
    }
}

struct StreamState {
    s: WriterStream,
    rec: Option<OpenRecording>,
    /// Where the last recording of this stream ended (wall clock, 90 kHz).
    prev_end_90k: Option<i64>,
    /// The serialized parameters in force (from the latest frame with any).
    params: Vec<u8>,
    sample_entry_id: Option<i64>,
    /// Interval of the last frame written, for frames whose successor is
    /// not a continuation.
    last_duration: i64,
    first_recording: bool,
    /// Where the next recording starts: set when a long stall ended the
    /// previous one (`timeline::Placement::split`).
    next_start: Option<i64>,
}

impl StreamState {
    fn new(s: WriterStream) -> StreamState {
        StreamState {
            s,
            rec: None,
            prev_end_90k: None,
            params: Vec::new(),
            sample_entry_id: None,
            last_duration: TICKS / 25,
            first_recording: true,
            next_start: None,
        }
    }
}

/// The next record as planned: its frame table, and the stream state the
/// planning advanced, which is committed only once the record is written
/// (a record planned again after a pool change must not apply it twice).
struct PendingRecord {
    entries: Vec<FrameEntry>,
    carry: i64,
    last_duration: i64,
    /// Frames are missing inside the record (a short stall).
    gap: bool,
    /// A long stall follows the record: the recording ends with it and
    /// the next one starts here.
    split: Option<i64>,
}

pub struct Writer {
    pools: Pools,
    db: Db,
    open_id: i64,
    pos: WriterPosition,
    streams: Vec<StreamState>,
    next_recording_id: i64,
    sync_interval: Duration,
    last_sync: Instant,
    /// The wall clock (90 kHz) when the writer began writing out a
    /// stream's last frames (shutdown, a stream retired); `None` otherwise.
    closing_at: Option<i64>,
    /// Pools written to since the last sync.
    unsynced: Vec<u32>,
    /// Record rows written since the last commit.
    pending_records: Vec<RecordRow>,
    /// Recordings closed since the last commit (final rows).
    closed: Vec<RecordingRow>,
    header_buf: Vec<u8>,
    pending: PendingRecord,
    /// The ring frames' bounds (`timeline::bounds`), reused.
    bounds: Vec<i64>,
    /// Where [`WriterCommand`]s arrive, once [`Writer::commands`] made it.
    commands: Option<mpsc::Receiver<WriterCommand>>,
    pub stats: WriterStats,
}

/// Why the writer stopped working.
#[derive(Debug)]
pub struct WriterError(pub String);

impl std::fmt::Display for WriterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WriterError {}

fn err<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> WriterError + '_ {
    move |e| WriterError(format!("{what}: {e}"))
}

/// Wall clock now, in 90 kHz units since the Unix epoch.
pub fn wall_90k_now() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX / TICKS) * TICKS
        + i64::from(d.subsec_nanos()) * 9 / 100_000
}

impl Writer {
    /// Takes over the storage: the position comes from the index (after
    /// recovery, see `super::recover`); `streams` in any order.
    pub fn new(
        pools: Pools,
        db: Db,
        open_id: i64,
        pos: WriterPosition,
        streams: Vec<WriterStream>,
        sync_interval: Duration,
    ) -> Result<Writer, WriterError> {
        let next_recording_id = db.next_recording_id().map_err(err("index"))?;
        let mut streams: Vec<StreamState> = streams.into_iter().map(StreamState::new).collect();
        // Higher priority first: when the disk is the bottleneck, their
        // rings drain first.
        streams.sort_by_key(|st| std::cmp::Reverse(st.s.priority));
        Ok(Writer {
            pools,
            db,
            open_id,
            pos,
            streams,
            next_recording_id,
            sync_interval,
            last_sync: Instant::now(),
            closing_at: None,
            unsynced: Vec::new(),
            pending_records: Vec::new(),
            closed: Vec::new(),
            header_buf: Vec::with_capacity(4096),
            pending: PendingRecord {
                entries: Vec::with_capacity(MAX_FRAMES_PER_RECORD),
                carry: 0,
                last_duration: 0,
                gap: false,
                split: None,
            },
            bounds: Vec::new(),
            commands: None,
            stats: WriterStats::default(),
        })
    }

    /// A sender of commands to this writer (streams added and retired
    /// while it runs). Call before [`Writer::run`]; a second call replaces
    /// the first channel.
    pub fn commands(&mut self) -> mpsc::Sender<WriterCommand> {
        let (tx, rx) = mpsc::channel();
        self.commands = Some(rx);
        tx
    }

    /// Carries out the commands that arrived.
    fn take_commands(&mut self) {
        loop {
            let Some(cmd) = self.commands.as_ref().and_then(|rx| rx.try_recv().ok()) else {
                return;
            };
            match cmd {
                WriterCommand::Add(s, reply) => {
                    let r = self.add_stream(s).map_err(|e| e.0);
                    let _ = reply.send(r);
                }
                WriterCommand::Retire {
                    camera,
                    kind,
                    reply,
                } => {
                    let ring = self.retire_stream(&camera, kind);
                    let _ = reply.send(ring);
                }
            }
        }
    }

    /// Starts draining `s`, in its place by priority.
    pub fn add_stream(&mut self, mut s: WriterStream) -> Result<(), WriterError> {
        s.stream_id = self.db.stream_id(&s.camera, s.kind).map_err(err("index"))?;
        log::info!("writer: {} added", s.label);
        // After the streams of the same priority: the order of `new`.
        let at = self
            .streams
            .iter()
            .position(|st| st.s.priority < s.priority)
            .unwrap_or(self.streams.len());
        self.streams.insert(at, StreamState::new(s));
        Ok(())
    }

    /// Writes out and closes stream (`camera`, `kind`) and gives its ring
    /// end back. Its producer must have stopped: what it still pushed
    /// afterwards would be left in the ring, unwritten.
    pub fn retire_stream(&mut self, camera: &str, kind: &str) -> Option<RingReader> {
        let i = self
            .streams
            .iter()
            .position(|st| st.s.camera == camera && st.s.kind == kind)?;
        self.closing_at = Some(wall_90k_now());
        let written = self.write_stream(i, true);
        self.closing_at = None;
        if let Err(e) = written {
            // The disk fails: the frames still in the ring are lost, as
            // they would be at shutdown; the recording closes where the
            // last record ended.
            self.fail(e);
        }
        self.close_recording(i, false);
        let st = self.streams.remove(i);
        log::info!("writer: {} retired", st.s.label);
        Some(st.s.ring)
    }

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
                let r = st.s.ring.stats();
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
        self.closing_at = Some(wall_90k_now());
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

    fn fail(&mut self, e: WriterError) {
        self.stats.errors += 1;
        // Each stream shows the storage error: recording is what it is for.
        if self.stats.last_error.as_deref() != Some(e.0.as_str()) {
            log::error!("writer: {e}");
            for st in &self.streams {
                st.s.status.set_storage_error(Some(e.0.clone()));
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
                st.s.status.set_storage_error(None);
            }
        }
        Ok(())
    }

    /// Writes the frames of stream `i` that can be written, as records.
    fn write_stream(&mut self, i: usize, closing: bool) -> Result<(), WriterError> {
        loop {
            let st = &mut self.streams[i];
            let available = st.s.ring.len();
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
            let first = match st.s.ring.peek(0) {
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
            let first = match st.s.ring.peek(0) {
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
                    st.s.ring.release(1);
                    st.s.status.count_dropped();
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

    fn should_rotate(&self, i: usize) -> bool {
        let st = &self.streams[i];
        let (Some(rec), Some(f)) = (&st.rec, st.s.ring.peek(0)) else {
            return false;
        };
        f.meta.key && rec.row.frames > 0 && rec.row.duration_90k >= rotate_after(st)
    }

    /// How many of the first `writable` ring frames go into the next
    /// record: they stop at a recording boundary and at the record limits.
    /// Fills `self.pending`; changes nothing else.
    fn plan_record(&mut self, i: usize, writable: usize) -> usize {
        let st = &self.streams[i];
        let Some(rec) = st.rec.as_ref() else { return 0 };
        let limit = rotate_after(st);
        let pool_room = self.pools.size().saturating_sub(POOL_HEADER_BYTES);
        let params_len = if rec.next_sequence == 0 {
            rec.params.len() as u64
        } else {
            0
        };
        let ring = &st.s.ring;
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
                        log::debug!("{}: frame re-anchored on the wall clock", st.s.label);
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

    fn open_recording(&mut self, i: usize) -> Result<(), WriterError> {
        let st = &mut self.streams[i];
        if st.s.ring.is_empty() {
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
        let Some(first) = st.s.ring.peek(0) else {
            return Ok(());
        };
        let ring = &st.s.ring;
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
                timeline::drift_ppm(bound - end, st.s.segment_90k)
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
                stream_id: st.s.stream_id,
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
                format::encode_first_params(&st.s.camera, st.s.kind, &st.params, &mut p);
                p
            },
            correction_ppm,
            carry: 0,
            gap_pending: first.gap_before,
        });
        log::debug!("{}: recording {id} starts", st.s.label);
        Ok(())
    }

    /// Ends the open recording of stream `i` (its final row goes out with
    /// the next commit).
    fn close_recording(&mut self, i: usize, discontinuity: bool) {
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
            st.s.label,
            rec.row.id,
            rec.row.frames,
            rec.row.duration_90k as f64 / TICKS as f64
        );
        self.closed.push(rec.row);
    }

    /// Writes the first `n` ring frames of stream `i` as the record
    /// `self.pending` describes.
    fn write_record(&mut self, i: usize, n: usize) -> Result<(), WriterError> {
        let payload_len: u64 = self.pending.entries.iter().map(|e| u64::from(e.size)).sum();
        let st = &mut self.streams[i];
        let (Some(rec), Some(first)) = (st.rec.as_mut(), st.s.ring.peek(0)) else {
            return Ok(());
        };
        let is_first = rec.next_sequence == 0;
        let header = RecordHeader {
            flags: if is_first { FLAG_FIRST } else { 0 }
                | if rec.gap_pending { FLAG_GAP } else { 0 },
            generation: self.pos.generation,
            stream_id: st.s.stream_id,
            recording_id: u64::try_from(rec.row.id).unwrap_or(0),
            sequence: rec.next_sequence,
            media_start_90k: first.meta.timestamp_90k,
            start_wall_90k: rec.row.start_90k,
            // Lent to the header and handed back below: no copy per record.
            frames: std::mem::take(&mut self.pending.entries),
            params: is_first.then(|| rec.params.clone()),
            payload_len: u32::try_from(payload_len).unwrap_or(u32::MAX),
        };
        let mut iov: Vec<&[u8]> = Vec::with_capacity(n + 1);
        iov.push(&[]);
        iov.extend((0..n).filter_map(|k| st.s.ring.peek(k)).map(|f| f.data));
        header.encode(&iov[1..], &mut self.header_buf);
        self.pending.entries = header.frames;
        iov[0] = &self.header_buf;
        let header_len = self.header_buf.len() as u64;
        let total = header_len + payload_len;
        if total > self.pools.size() - POOL_HEADER_BYTES {
            // Cannot fit even an empty pool: drop the frames, count them.
            drop(iov);
            let st = &mut self.streams[i];
            st.s.ring.release(n);
            self.stats.frames_too_large += n as u64;
            for _ in 0..n {
                st.s.status.count_dropped();
            }
            return Ok(());
        }
        if self.pos.offset + total > self.pools.size() {
            // The record goes into the next pool; the caller plans it again
            // (its header carries the new pool's generation).
            drop(iov);
            return self.advance_pool();
        }
        self.pools
            .write_at(self.pos.pool, self.pos.offset, &iov)
            .map_err(err("writing a pool file"))?;
        drop(iov);
        let st = &mut self.streams[i];
        let Some(rec) = st.rec.as_mut() else {
            return Ok(());
        };
        self.pending_records.push(RecordRow {
            recording_id: rec.row.id,
            sequence: rec.next_sequence,
            pool: self.pos.pool,
            offset: self.pos.offset,
            header_len: u32::try_from(header_len).unwrap_or(u32::MAX),
            payload_len: u32::try_from(payload_len).unwrap_or(u32::MAX),
            frames: n as u32,
            generation: self.pos.generation,
        });
        rec.next_sequence += 1;
        rec.gap_pending = false;
        rec.carry = self.pending.carry;
        if self.pending.gap {
            rec.row.flags |= RECORDING_GAP;
        }
        st.last_duration = self.pending.last_duration;
        for e in &self.pending.entries {
            rec.index.push(e.duration_90k as i32, e.size as i32, e.key);
            rec.row.duration_90k += i64::from(e.duration_90k);
            rec.row.frames += 1;
            rec.row.key_frames += u32::from(e.key);
            rec.row.bytes += u64::from(e.size);
        }
        st.s.ring.release(n);
        if !self.unsynced.contains(&self.pos.pool) {
            self.unsynced.push(self.pos.pool);
        }
        self.pos.offset += total;
        self.stats.records += 1;
        self.stats.bytes_written += total;
        self.stats.video_bytes += payload_len;
        if let Some(at) = self.pending.split.take() {
            // A long stall: the hole shows between this recording and the next.
            self.close_recording(i, false);
            self.streams[i].next_start = Some(at);
        }
        Ok(())
    }

    /// Moves to the next pool of the ring: make what is written durable
    /// and committed, reclaim the next pool, enter it, commit the position.
    fn advance_pool(&mut self) -> Result<(), WriterError> {
        self.sync_and_commit()?;
        let next = (self.pos.pool + 1) % self.pools.count();
        let generation = self.pos.generation + 1;
        let reclaimed = self
            .db
            .reclaim_pool(next, generation)
            .map_err(err("reclaiming a pool"))?;
        self.stats.reclaimed_recordings += reclaimed.recordings;
        if reclaimed.recordings > 0 {
            log::info!(
                "writer: reclaimed pool {next}: {} recordings, {} bytes",
                reclaimed.recordings,
                reclaimed.bytes
            );
        }
        self.pools
            .enter(next, generation)
            .map_err(err("entering a pool"))?;
        self.pos = WriterPosition {
            pool: next,
            offset: POOL_HEADER_BYTES,
            generation,
        };
        // Committed before any record goes there, so recovery always
        // scans the pool that holds the newest records.
        self.commit()
    }

    /// fdatasync every pool written since the last sync, then commit.
    pub fn sync_and_commit(&mut self) -> Result<(), WriterError> {
        for p in std::mem::take(&mut self.unsynced) {
            self.pools.sync(p).map_err(err("syncing a pool file"))?;
        }
        self.last_sync = Instant::now();
        self.commit()
    }

    fn commit(&mut self) -> Result<(), WriterError> {
        let mut recordings = std::mem::take(&mut self.closed);
        for st in &self.streams {
            if let Some(rec) = &st.rec {
                if rec.row.frames > 0 {
                    let mut row = rec.row.clone();
                    row.video_index = rec.index.as_bytes().to_vec();
                    recordings.push(row);
                }
            }
        }
        let batch = CommitBatch {
            recordings,
            records: std::mem::take(&mut self.pending_records),
            writer: self.pos,
        };
        if let Err(e) = self.db.commit(&batch) {
            // Keep what was not committed for the next attempt.
            self.pending_records = batch.records;
            self.closed = batch
                .recordings
                .into_iter()
                .filter(|r| r.flags & RECORDING_OPEN == 0)
                .collect();
            return Err(WriterError(format!("committing the index: {e}")));
        }
        self.stats.commits += 1;
        Ok(())
    }
}

/// How far into a recording (media time) the first key frame rotates it:
/// `segment_seconds`, less the stagger for a stream's first recording.
fn rotate_after(st: &StreamState) -> i64 {
    if st.first_recording {
        (st.s.segment_90k - st.s.stagger_90k).max(TICKS)
    } else {
        st.s.segment_90k
    }
}

/// `wchar` and `write_bytes` of /proc/self/io (Linux), if readable.
fn process_io() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/self/io").ok()?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    Some((field("wchar:")?, field("write_bytes:")?))
}
