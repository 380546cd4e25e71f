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
//!
//! Layout: this file holds the writer's state; `commands` adds and retires
//! streams at run time, `run` is the thread's loop, `recording` opens,
//! rotates and closes recordings, `plan` decides which frames go into the
//! next record and when (the timeline rules), `write` writes records into
//! the pools, moves to the next pool and makes it all durable.

mod commands;
mod plan;
mod recording;
mod run;
mod write;

use super::db::{Db, RecordRow, RecordingRow, WriterPosition};
use super::format::FrameEntry;
use super::pool::Pools;
use super::video_index::VideoIndexEncoder;
use crate::arena::RingReader;
use crate::stream::StreamStatus;
use plan::MAX_FRAMES_PER_RECORD;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

pub use super::timeline::TICKS;

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

/// What the writer keeps about one stream it drains.
struct WriterStreamState {
    stream: WriterStream,
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

impl WriterStreamState {
    fn new(stream: WriterStream) -> WriterStreamState {
        WriterStreamState {
            stream,
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
    streams: Vec<WriterStreamState>,
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
        let mut streams: Vec<WriterStreamState> =
            streams.into_iter().map(WriterStreamState::new).collect();
        // Higher priority first: when the disk is the bottleneck, their
        // rings drain first.
        streams.sort_by_key(|st| std::cmp::Reverse(st.stream.priority));
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
}
