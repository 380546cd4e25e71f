//! Recording: the arena carved into one ring per stream of an enabled
//! camera, each stream's frames pushed into its ring by a [`RingSink`],
//! and the writer thread persisting the recorded ones. Shutdown order:
//! streams stop, then the writer writes out what the rings hold, closes
//! recordings and commits. Cameras added, changed or removed while
//! recording go through [`super::Control`].

use super::control::Control;
use super::shutdown::{Shutdown, STREAMS_TIMEOUT, WRITER_TIMEOUT};
use super::{Running, RunningStream, StreamSpec};
use crate::arena::{self, FrameMeta, LiveTap, Push, RingReader, RingWriter};
use crate::config::{Camera, Config, Record, StreamKind};
use crate::store::format;
use crate::store::open::OpenedStorage;
use crate::store::pool::PoolReader;
use crate::store::writer::{Writer, WriterCommand, WriterStats, WriterStream};
use crate::stream::Frame;
use crate::stream::{DiscardSink, FrameSink, StopSource, StreamStatus};
use crate::time::{now_90k, TICKS};
use std::sync::Arc;
use std::time::Duration;

/// A stream's frames into its arena ring. Never blocks: a full ring drops
/// (whole GOPs), and the stream status counts it.
pub struct RingSink {
    ring: RingWriter,
    /// A stream that is not recorded has a ring for its live viewers only:
    /// the sink releases each frame itself as soon as it is stored (viewers
    /// read released frames until they are overwritten).
    live_only: Option<arena::RingReader>,
    status: Arc<StreamStatus>,
    params: Vec<u8>,
    /// The parameters changed and have not reached the ring yet (the frame
    /// that carried them may have been dropped).
    params_unsent: bool,
    discontinuity: bool,
}

impl RingSink {
    pub fn new(ring: RingWriter, status: Arc<StreamStatus>) -> RingSink {
        RingSink {
            ring,
            live_only: None,
            status,
            params: Vec::with_capacity(256),
            params_unsent: false,
            discontinuity: false,
        }
    }
}

impl FrameSink for RingSink {
    fn frame(&mut self, f: &Frame<'_>) {
        if f.params_changed {
            format::encode_params(f.params, &mut self.params);
            self.params_unsent = true;
        }
        let meta = FrameMeta {
            timestamp_90k: f.timestamp_90k,
            wall_90k: now_90k(),
            key: f.key,
            discontinuity: self.discontinuity,
        };
        let extra: &[u8] = if self.params_unsent {
            &self.params
        } else {
            &[]
        };
        match self.ring.push(&meta, extra, f.data) {
            Push::Stored => {
                self.params_unsent = false;
                self.discontinuity = false;
                if let Some(r) = &mut self.live_only {
                    r.release(r.len());
                }
            }
            Push::Dropped => self.status.count_dropped(),
        }
    }

    fn discontinuity(&mut self) {
        self.discontinuity = true;
    }

    fn into_rings(self: Box<Self>) -> Option<(RingWriter, Option<RingReader>)> {
        Some((self.ring, self.live_only))
    }
}

/// A stream live viewers can watch: its ring, read through a tap.
#[derive(Clone)]
pub struct LiveSource {
    pub camera: String,
    pub kind: StreamKind,
    pub tap: LiveTap,
    pub status: Arc<StreamStatus>,
}

/// Whether a camera's stream of this kind is recorded.
pub(crate) fn recorded(cam: &Camera, kind: StreamKind) -> bool {
    cam.enabled
        && matches!(
            (cam.record, kind),
            (Record::Both, _) | (Record::Main, StreamKind::Main) | (Record::Sub, StreamKind::Sub)
        )
}

/// The weight of a stream's ring in the arena, `None` for a stream
/// without one: every stream of an enabled camera gets a ring, for live
/// viewers; recorded ones are also drained by the writer. Ring room
/// follows the expected bitrate (a main stream is several times a sub
/// stream) and the priority; a ring only viewers read needs less.
pub(crate) fn ring_weight(cam: &Camera, kind: StreamKind) -> Option<u32> {
    if !cam.enabled {
        return None;
    }
    let base = if kind == StreamKind::Main { 4 } else { 1 };
    let share = base * (10 + u32::from(cam.priority));
    Some(if recorded(cam, kind) {
        share * 2
    } else {
        share
    })
}

/// One stream, ready to start: what its thread, the writer and the
/// registry each get.
pub(crate) struct Prepared {
    pub spec: StreamSpec,
    pub status: Arc<StreamStatus>,
    pub sink: Box<dyn FrameSink>,
    pub writer: Option<WriterStream>,
    pub live: Option<LiveSource>,
}

impl Prepared {
    /// Makes the parts of stream `spec` of `cam` around `ring` (required
    /// when [`ring_weight`] is `Some`). `stream_id` is for the writer
    /// (0: the writer looks it up). A ring that served before (a
    /// restarted stream) starts with a discontinuity.
    pub fn new(
        spec: StreamSpec,
        cam: &Camera,
        ring: Option<(RingWriter, RingReader)>,
        stream_id: u32,
        stagger_90k: i64,
        reused: bool,
    ) -> Prepared {
        let status = Arc::new(StreamStatus::new(&spec.camera, spec.kind));
        let Some((w, mut r)) = ring else {
            return Prepared {
                spec,
                status,
                sink: Box::new(DiscardSink),
                writer: None,
                live: None,
            };
        };
        // Frames a failed writer could not take out are the old stream's.
        r.release(r.len());
        let live = Some(LiveSource {
            camera: spec.camera.clone(),
            kind: spec.kind,
            tap: w.tap(),
            status: status.clone(),
        });
        let mut sink = RingSink::new(w, status.clone());
        if reused {
            sink.discontinuity();
        }
        let writer = if recorded(cam, spec.kind) {
            let segment = i64::from(cam.segment_seconds) * TICKS;
            Some(WriterStream {
                stream_id,
                camera: spec.camera.clone(),
                kind: spec.kind.name(),
                label: format!("{}/{}", spec.camera, spec.kind.name()),
                priority: cam.priority,
                segment_90k: segment,
                stagger_90k,
                ring: r,
                status: status.clone(),
            })
        } else {
            sink.live_only = Some(r);
            None
        };
        Prepared {
            spec,
            status,
            sink: Box::new(sink),
            writer,
            live,
        }
    }

    /// The registry's entry for this stream.
    pub fn running(&self) -> RunningStream {
        RunningStream {
            camera: self.spec.camera.clone(),
            kind: self.spec.kind,
            status: self.status.clone(),
            live: self.live.clone(),
        }
    }
}

/// Everything recording: the streams and the writer thread.
pub struct Recorder {
    /// What runs now (cameras, statuses, live sources), for readers.
    pub running: Running,
    /// Reads pool files from other threads, detecting overwrites.
    pub pool_reader: PoolReader,
    /// Adds, changes and removes cameras while recording.
    control: Arc<Control>,
    writer: Option<std::thread::JoinHandle<WriterStats>>,
    writer_stop: StopSource,
    /// Reaches the writer thread (the hardware watchdog's probe).
    writer_commands: std::sync::mpsc::Sender<WriterCommand>,
    /// The storage directory's lock, released when recording has ended.
    _lock: std::fs::File,
}

impl Recorder {
    /// Starts recording every stream of `config` into `storage`.
    pub fn start(config: &Config, storage: OpenedStorage) -> Result<Recorder, String> {
        let OpenedStorage {
            pools,
            mut db,
            open_id,
            position,
            lock,
            ..
        } = storage;
        let mut streams: Vec<(&Camera, StreamSpec)> = Vec::new();
        for cam in &config.cameras {
            for (kind, url) in cam.streams() {
                streams.push((cam, StreamSpec::new(config, cam, kind, url)));
            }
        }
        let weights: Vec<u32> = streams
            .iter()
            .filter_map(|(cam, spec)| ring_weight(cam, spec.kind))
            .collect();
        let arena_bytes = arena_bytes(config);
        let (arena, rings) = if weights.is_empty() {
            (arena::Arena::default(), Vec::new())
        } else {
            arena::carve_arena(arena_bytes, &weights)
                .map_err(|e| format!("[memory] arena_mb = {}: {e}", config.memory.arena_mb))?
        };
        let mut rings = rings.into_iter();
        let n = streams
            .iter()
            .filter(|(cam, spec)| recorded(cam, spec.kind))
            .count() as i64;
        let mut prepared = Vec::new();
        let mut k = 0i64;
        for (cam, spec) in streams {
            let ring = match ring_weight(cam, spec.kind) {
                Some(_) => Some(rings.next().ok_or("arena has fewer rings than streams")?),
                None => None,
            };
            let (stream_id, stagger) = if recorded(cam, spec.kind) {
                let id = db
                    .stream_id(&spec.camera, spec.kind.name())
                    .map_err(|e| format!("index: {e}"))?;
                // Stream k of n rotates k/n of a segment early the first
                // time, then every segment: rotations are spread out.
                let stagger = i64::from(cam.segment_seconds) * TICKS * k / n.max(1);
                k += 1;
                (id, stagger)
            } else {
                (0, 0)
            };
            prepared.push(Prepared::new(spec, cam, ring, stream_id, stagger, false));
        }
        let running = Running::default();
        for cam in &config.cameras {
            let entries = prepared
                .iter()
                .filter(|p| p.spec.camera == cam.name)
                .map(Prepared::running)
                .collect();
            running.set_camera(cam.clone(), entries);
        }
        let mut writer_streams = Vec::new();
        let mut sinks = Vec::new();
        for p in prepared {
            writer_streams.extend(p.writer);
            sinks.push((p.spec, p.status, p.sink));
        }
        let sync = Duration::from_millis(config.storage.sync_interval_ms.into());
        let pool_reader = pools.reader();
        let mut writer = Writer::new(pools, db, open_id, position, writer_streams, sync)
            .map_err(|e| e.to_string())?;
        let commands = writer.commands();
        let writer_stop = StopSource::new();
        let token = writer_stop.token();
        let writer = std::thread::Builder::new()
            .name("writer".into())
            .spawn(move || writer.run(token))
            .map_err(|e| format!("cannot start the writer thread: {e}"))?;
        let spacing = Duration::from_millis(config.system.stream_start_spacing_ms.into());
        let streams = super::Streams::start(sinks, spacing);
        let writer_commands = commands.clone();
        let control = Arc::new(Control::new(
            config.clone(),
            streams,
            commands,
            arena,
            running.clone(),
        ));
        Ok(Recorder {
            running,
            pool_reader,
            control,
            writer: Some(writer),
            writer_stop,
            writer_commands,
            _lock: lock,
        })
    }

    /// The handle that adds, changes and removes cameras while recording.
    pub fn control(&self) -> Arc<Control> {
        self.control.clone()
    }

    /// A sender of commands to the writer thread.
    pub fn writer_commands(&self) -> std::sync::mpsc::Sender<WriterCommand> {
        self.writer_commands.clone()
    }

    /// The recorder's steps of the ordered shutdown (see
    /// [`super::shutdown`]): streams stop, then the writer writes out what
    /// the rings hold, closes and syncs the open recordings, commits and
    /// closes its database connection. Returns the writer's counters (when
    /// it ended in time) and the storage lock, which the caller releases
    /// once nothing else holds the database.
    pub fn shutdown_ordered(
        mut self,
        sd: &mut Shutdown,
    ) -> (Option<WriterStats>, Option<std::fs::File>) {
        let control = self.control.clone();
        let left = sd.step(
            "streams: stopped",
            STREAMS_TIMEOUT + Duration::from_secs(1),
            move || Ok(control.shutdown(STREAMS_TIMEOUT)),
        );
        if left.is_some_and(|n| n > 0) {
            log::error!(
                "shutdown: {} stream threads did not stop",
                left.unwrap_or(0)
            );
            sd.fail("streams");
        }
        self.writer_stop.stop();
        let stats = match self.writer.take() {
            Some(w) => sd
                .step(
                    "writer: finalised and synced the open recordings, committed the index",
                    WRITER_TIMEOUT,
                    move || {
                        w.join()
                            .map_err(|_| "the writer thread panicked".to_owned())
                    },
                )
                .inspect(|stats| {
                    if let Some(e) = &stats.last_error {
                        log::error!("shutdown: the writer ended with an error: {e}");
                        sd.fail("writer");
                    }
                }),
            None => None,
        };
        (stats, Some(self._lock))
    }

    /// Ordered shutdown: streams first, then the writer finalises.
    pub fn shutdown(mut self, timeout: Duration) -> Option<WriterStats> {
        self.control.shutdown(timeout);
        self.writer_stop.stop();
        let w = self.writer.take()?;
        match w.join() {
            Ok(stats) => Some(stats),
            Err(_) => {
                log::error!("the writer thread panicked");
                None
            }
        }
    }
}

/// `memory.arena_mb` in bytes.
pub(crate) fn arena_bytes(config: &Config) -> usize {
    usize::try_from(u64::from(config.memory.arena_mb) * 1024 * 1024).unwrap_or(usize::MAX)
}
