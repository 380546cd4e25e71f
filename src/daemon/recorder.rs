//! Recording: the arena carved into one ring per recorded stream, each
//! stream's frames pushed into its ring by a [`RingSink`], and the writer
//! thread persisting them. Shutdown order: streams stop, then the writer
//! writes out what the rings hold, closes recordings and commits.

use super::{DiscardSink, FrameSink, StopSource, StreamSpec, StreamStatus, Streams};
use crate::arena::{self, FrameMeta, LiveTap, Push, RingWriter};
use crate::config::{Camera, Config, Record, StreamKind};
use crate::media::Frame;
use crate::store::format;
use crate::store::open::Storage;
use crate::store::pool::PoolReader;
use crate::store::writer::{wall_90k_now, Writer, WriterStats, WriterStream, TICKS};
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
            wall_90k: wall_90k_now(),
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
fn recorded(record: Record, kind: StreamKind) -> bool {
    matches!(
        (record, kind),
        (Record::Both, _) | (Record::Main, StreamKind::Main) | (Record::Sub, StreamKind::Sub)
    )
}

/// Everything recording: the streams and the writer thread.
pub struct Recorder {
    pub streams: Streams,
    /// Every stream with a ring, for live viewers.
    pub live: Vec<LiveSource>,
    /// Reads pool files from other threads, detecting overwrites.
    pub pool_reader: PoolReader,
    writer: Option<std::thread::JoinHandle<WriterStats>>,
    writer_stop: StopSource,
    /// The storage directory's lock, released when recording has ended.
    _lock: std::fs::File,
}

impl Recorder {
    /// Starts recording every stream of `config` into `storage`.
    pub fn start(config: &Config, storage: Storage) -> Result<Recorder, String> {
        let Storage {
            pools,
            mut db,
            open_id,
            position,
            lock,
            ..
        } = storage;
        let specs: Vec<StreamSpec> = super::stream_specs(config);
        // For each stream, the camera it is recorded for (None: not recorded).
        let recorded_for: Vec<Option<&Camera>> = specs
            .iter()
            .map(|spec| {
                config
                    .cameras
                    .iter()
                    .find(|c| c.name == spec.camera)
                    .filter(|c| c.enabled && recorded(c.record, spec.kind))
            })
            .collect();
        // Every stream of an enabled camera gets a ring, for live viewers;
        // recorded ones are also drained by the writer. Ring room follows
        // the expected bitrate (a main stream is several times a sub
        // stream) and the priority; a ring only viewers read needs less.
        let has_ring: Vec<bool> = specs
            .iter()
            .map(|spec| {
                config
                    .cameras
                    .iter()
                    .any(|c| c.name == spec.camera && c.enabled)
            })
            .collect();
        let weights: Vec<u32> = specs
            .iter()
            .zip(&recorded_for)
            .zip(&has_ring)
            .filter(|(_, &ring)| ring)
            .map(|((spec, cam), _)| {
                let base = if spec.kind == StreamKind::Main { 4 } else { 1 };
                let priority = config
                    .cameras
                    .iter()
                    .find(|c| c.name == spec.camera)
                    .map_or(0, |c| u32::from(c.priority));
                let share = base * (10 + priority);
                if cam.is_some() {
                    share * 2
                } else {
                    share
                }
            })
            .collect();
        let arena_bytes =
            usize::try_from(u64::from(config.memory.arena_mb) * 1024 * 1024).unwrap_or(usize::MAX);
        let mut rings = if weights.is_empty() {
            Vec::new()
        } else {
            arena::carve(arena_bytes, &weights)
                .map_err(|e| format!("[memory] arena_mb = {}: {e}", config.memory.arena_mb))?
        }
        .into_iter();
        let mut sinks: Vec<(StreamSpec, Arc<StreamStatus>, Box<dyn FrameSink>)> = Vec::new();
        let mut writer_streams = Vec::new();
        let mut live = Vec::new();
        let n = recorded_for.iter().filter(|c| c.is_some()).count() as i64;
        for ((spec, cam), ring) in specs.into_iter().zip(recorded_for).zip(has_ring) {
            let status = Arc::new(StreamStatus::new(&spec.camera, spec.kind));
            let rings_for_stream = if ring { rings.next() } else { None };
            if ring && rings_for_stream.is_none() {
                return Err("arena has fewer rings than streams".into());
            }
            let sink: Box<dyn FrameSink> = match (rings_for_stream, cam) {
                (Some((w, r)), Some(cam)) => {
                    let (segment, priority) = (cam.segment_seconds, cam.priority);
                    let stream_id = db
                        .stream_id(&spec.camera, spec.kind.name())
                        .map_err(|e| format!("index: {e}"))?;
                    let k = writer_streams.len() as i64;
                    writer_streams.push(WriterStream {
                        stream_id,
                        camera: spec.camera.clone(),
                        kind: spec.kind.name(),
                        label: format!("{}/{}", spec.camera, spec.kind.name()),
                        priority,
                        segment_90k: i64::from(segment) * TICKS,
                        // Stream k of n rotates k/n of a segment early the
                        // first time, then every segment: rotations are
                        // spread out.
                        stagger_90k: i64::from(segment) * TICKS * k / n.max(1),
                        ring: r,
                        status: status.clone(),
                    });
                    live.push(LiveSource {
                        camera: spec.camera.clone(),
                        kind: spec.kind,
                        tap: w.tap(),
                        status: status.clone(),
                    });
                    Box::new(RingSink::new(w, status.clone()))
                }
                (Some((w, r)), None) => {
                    live.push(LiveSource {
                        camera: spec.camera.clone(),
                        kind: spec.kind,
                        tap: w.tap(),
                        status: status.clone(),
                    });
                    let mut sink = RingSink::new(w, status.clone());
                    sink.live_only = Some(r);
                    Box::new(sink)
                }
                _ => Box::new(DiscardSink),
            };
            sinks.push((spec, status, sink));
        }
        let sync = Duration::from_millis(config.storage.sync_interval_ms.into());
        let pool_reader = pools.reader();
        let writer = Writer::new(pools, db, open_id, position, writer_streams, sync)
            .map_err(|e| e.to_string())?;
        let writer_stop = StopSource::new();
        let token = writer_stop.token();
        let writer = std::thread::Builder::new()
            .name("writer".into())
            .spawn(move || writer.run(token))
            .map_err(|e| format!("cannot start the writer thread: {e}"))?;
        let spacing = Duration::from_millis(config.system.stream_start_spacing_ms.into());
        let streams = Streams::start(sinks, spacing);
        Ok(Recorder {
            streams,
            live,
            pool_reader,
            writer: Some(writer),
            writer_stop,
            _lock: lock,
        })
    }

    /// Ordered shutdown: streams first, then the writer finalises.
    pub fn shutdown(mut self, timeout: Duration) -> Option<WriterStats> {
        self.streams.shutdown(timeout);
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
