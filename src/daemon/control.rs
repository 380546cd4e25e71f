//! Cameras added, changed and removed while recording: through the HTTP
//! API (which edits the config file first) and on `SIGHUP` (which reads
//! the edited file). Only the affected camera's streams stop and start;
//! every other stream keeps running untouched.
//!
//! A change is a stop and a start of that camera's streams. Rings:
//! - a stream that runs before and after a change keeps its ring (live
//!   viewers stay on the same bytes; the first new frame is marked as a
//!   discontinuity), whatever its new share of the arena would be;
//! - a removed stream's ring goes back to the arena once nothing uses it
//!   (its thread, the writer, and live viewers, which end when it goes
//!   silent), and a stream added later is carved from such free regions;
//! - when no free region fits, the new ring is allocated outside the arena
//!   until the next restart, which carves the arena for all cameras again
//!   (logged: memory then exceeds `memory.arena_mb` by that ring).
//!
//! See docs/storage.md, "Cameras changed while recording".

use super::recorder::{arena_bytes, recorded, ring_weight, Prepared};
use super::{Running, StreamSpec, Streams};
use crate::arena::{self, Arena, RingReader, RingWriter};
use crate::config::write::{self, EditError, Edited};
use crate::config::{self, Camera, Config, StreamKind};
use crate::store::writer::{WriterCommand, WriterStream};
use crate::stream::{FrameSink, StreamStatus};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::time::Duration;
use toml_edit::Value;

/// How long a stopping stream's thread may take.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the writer may take to answer (it may be in an fsync of a
/// slow SD card).
const WRITER_TIMEOUT: Duration = Duration::from_secs(20);

/// Why a camera change did not (fully) happen.
#[derive(Debug)]
pub enum ControlError {
    /// The edit was refused; nothing changed.
    Edit(EditError),
    /// The config file could not be read or written; nothing changed.
    File(String),
    /// The file has the change, but the running daemon could not fully
    /// apply it (what could be done was done).
    Apply(String),
    /// Recording has stopped.
    Stopped,
}

impl std::fmt::Display for ControlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ControlError::Edit(e) => e.fmt(f),
            ControlError::File(m) => f.write_str(m),
            ControlError::Apply(m) => write!(f, "the config file was changed, but {m}"),
            ControlError::Stopped => f.write_str("recording is stopping"),
        }
    }
}

impl std::error::Error for ControlError {}

/// What a reload did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReloadReport {
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
    /// Sections whose change waits for a restart.
    pub restart_needed: Vec<&'static str>,
    /// Changes that could not be fully applied.
    pub errors: Vec<String>,
}

/// Changes the running cameras. Shared by the HTTP API and the main loop;
/// one change at a time.
pub struct Control {
    state: Mutex<State>,
    running: Running,
}

struct State {
    /// The config as running: other sections as at start (a change there
    /// needs a restart), the cameras as they run now.
    config: Config,
    streams: Streams,
    writer: mpsc::Sender<WriterCommand>,
    arena: Arena,
    /// The config file that API changes are written to and `SIGHUP`
    /// reads; `None` for `vigil demo` and tests.
    file: Option<PathBuf>,
    /// Without a file: the cameras as TOML, edited in memory with the
    /// same rules (changes last until the process ends).
    memory_text: Option<String>,
    stopped: bool,
}

impl Control {
    pub(crate) fn new(
        config: Config,
        streams: Streams,
        writer: mpsc::Sender<WriterCommand>,
        arena: Arena,
        running: Running,
    ) -> Control {
        Control {
            state: Mutex::new(State {
                config,
                streams,
                writer,
                arena,
                file: None,
                memory_text: None,
                stopped: false,
            }),
            running,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic during a change leaves at worst a camera half applied,
        // which the next change or reload of it repairs.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What runs now.
    pub fn running(&self) -> &Running {
        &self.running
    }

    /// Bytes of the arena no ring uses now (regions of removed streams
    /// whose viewers have gone), which new streams take first.
    pub fn arena_free_bytes(&self) -> usize {
        self.lock().arena.free_bytes()
    }

    /// Locks the arena in memory (with swap on; see `daemon::swap`).
    pub fn lock_arena(&self) -> std::io::Result<()> {
        self.lock().arena.lock_in_memory()
    }

    /// Sets the config file that API changes go to and `SIGHUP` reads.
    pub fn set_config_file(&self, path: Option<PathBuf>) {
        self.lock().file = path;
    }

    /// Adds a camera with `fields` (the config file's keys): written to
    /// the file, then started.
    pub fn add_camera(&self, fields: &[(String, Value)]) -> Result<Camera, ControlError> {
        let name = fields
            .iter()
            .find(|(k, _)| k == "name")
            .and_then(|(_, v)| v.as_str())
            .unwrap_or("")
            .to_owned();
        if !name.is_empty() && self.running.has_camera(&name) {
            return Err(ControlError::Edit(EditError::Exists(name)));
        }
        let cam = self.edit(&name, "added", |text, base| {
            write::add_camera(text, base, fields)
        })?;
        cam.ok_or_else(|| ControlError::Apply("the new camera is not in it".into()))
    }

    /// Changes the keys of camera `name` that `patch` names (`None`
    /// removes a key): written to the file, then only that camera
    /// restarts (not at all when nothing changed).
    pub fn change_camera(
        &self,
        name: &str,
        patch: &[(String, Option<Value>)],
    ) -> Result<Camera, ControlError> {
        let cam = self.edit(name, "changed", |text, base| {
            write::change_camera(text, base, name, patch)
        })?;
        cam.ok_or_else(|| ControlError::Apply("the camera is not in it".into()))
    }

    /// Removes camera `name` from the file and stops it. Its recordings
    /// stay until the ring reclaims them. A camera that runs but is no
    /// longer in the file (an SSH edit not reloaded yet) is just stopped.
    pub fn remove_camera(&self, name: &str) -> Result<(), ControlError> {
        match self.edit(name, "removed", |text, base| {
            write::remove_camera(text, base, name)
        }) {
            Err(ControlError::Edit(EditError::NotFound(_))) if self.running.has_camera(name) => {
                let mut st = self.lock();
                if st.stopped {
                    return Err(ControlError::Stopped);
                }
                let sinks = self
                    .apply(&mut st, name, None)
                    .map_err(ControlError::Apply)?;
                debug_assert!(sinks.is_empty());
                Ok(())
            }
            Err(e) => Err(e),
            Ok(_) => Ok(()),
        }
    }

    /// Edits the config text with `f`, writes it back, and makes camera
    /// `name` run as the new text says (`what` was done to it: added,
    /// changed, removed, for the log). Returns it as it now is.
    fn edit(
        &self,
        name: &str,
        what: &str,
        f: impl FnOnce(&str, &Path) -> Result<Edited, EditError>,
    ) -> Result<Option<Camera>, ControlError> {
        let mut st = self.lock();
        if st.stopped {
            return Err(ControlError::Stopped);
        }
        let edited = match st.file.clone() {
            Some(path) => {
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    ControlError::File(format!("cannot read {}: {e}", path.display()))
                })?;
                let base = path.parent().unwrap_or_else(|| Path::new("."));
                let edited = f(&text, base).map_err(|e| match e {
                    EditError::File(mut c) => {
                        c.file = Some(path.clone());
                        ControlError::Edit(EditError::File(c))
                    }
                    e => ControlError::Edit(e),
                })?;
                write::write_atomic(&path, &edited.text).map_err(|e| {
                    ControlError::File(format!("cannot write {}: {e}", path.display()))
                })?;
                log::info!("{}: camera {name:?} {what} through the API", path.display());
                edited
            }
            None => {
                let text = match st.memory_text.take() {
                    Some(t) => t,
                    None => write::cameras_text(&st.config.cameras),
                };
                let result = f(&text, Path::new("."));
                // Kept as it was when the edit is refused.
                st.memory_text = Some(match &result {
                    Ok(e) => e.text.clone(),
                    Err(_) => text,
                });
                result.map_err(ControlError::Edit)?
            }
        };
        let cam = edited
            .config
            .cameras
            .iter()
            .find(|c| c.name == name)
            .cloned();
        let result = self.apply(&mut st, name, cam.clone());
        let names: Vec<String> = edited
            .config
            .cameras
            .iter()
            .map(|c| c.name.clone())
            .collect();
        self.reorder(&mut st, &names);
        match result {
            Ok(sinks) => {
                start(&mut st, sinks);
                Ok(cam)
            }
            Err(e) => Err(ControlError::Apply(e)),
        }
    }

    /// `SIGHUP`: reads the config file again. When it does not parse or
    /// validate, logs why and changes nothing; else adds, changes and
    /// removes cameras as the API would, and logs the other sections that
    /// changed (they take effect at the next restart).
    pub fn reload(&self) -> Result<ReloadReport, String> {
        let mut st = self.lock();
        if st.stopped {
            return Err("recording is stopping".into());
        }
        let Some(path) = st.file.clone() else {
            log::warn!("reload: there is no config file to reload (vigil demo)");
            return Err("there is no config file to reload".into());
        };
        let mut new = match config::load(&path) {
            Ok(c) => c,
            Err(e) => {
                log::error!("reload: {e}; keeping the running config");
                return Err(e.to_string());
            }
        };
        if new.storage.sized_by_default {
            // Compared as the running ring was sized, from its pools.
            let _ = crate::store::open::size_ring(&mut new.storage);
        }
        let mut report = ReloadReport::default();
        let old = &st.config;
        for (section, same) in [
            ("storage", new.storage == old.storage),
            ("memory", new.memory == old.memory),
            ("http", new.http == old.http),
            ("system", new.system == old.system),
        ] {
            if !same {
                report.restart_needed.push(section);
            }
        }
        let removed: Vec<String> = old
            .cameras
            .iter()
            .filter(|c| !new.cameras.iter().any(|n| n.name == c.name))
            .map(|c| c.name.clone())
            .collect();
        let mut sinks = Vec::new();
        for name in removed {
            if let Err(e) = self.apply(&mut st, &name, None) {
                report.errors.push(format!("{name}: {e}"));
            }
            report.removed.push(name);
        }
        for cam in &new.cameras {
            let list = match st.config.cameras.iter().find(|c| c.name == cam.name) {
                None => &mut report.added,
                Some(old) if old != cam => &mut report.changed,
                Some(_) => continue,
            };
            list.push(cam.name.clone());
            match self.apply(&mut st, &cam.name, Some(cam.clone())) {
                Ok(s) => sinks.extend(s),
                Err(e) => report.errors.push(format!("{}: {e}", cam.name)),
            }
        }
        let names: Vec<String> = new.cameras.iter().map(|c| c.name.clone()).collect();
        self.reorder(&mut st, &names);
        // All new streams together, staggered among themselves.
        start(&mut st, sinks);
        log::info!(
            "reload of {}: cameras added {:?}, changed {:?}, removed {:?}",
            path.display(),
            report.added,
            report.changed,
            report.removed
        );
        for s in &report.restart_needed {
            log::warn!("reload: [{s}] changed; that takes effect at the next restart");
        }
        for e in &report.errors {
            log::error!("reload: {e}");
        }
        Ok(report)
    }

    /// Stops every stream (shutdown); later changes are refused. Returns
    /// how many stream threads did not end within `timeout`.
    pub(crate) fn shutdown(&self, timeout: Duration) -> usize {
        let mut st = self.lock();
        st.stopped = true;
        std::mem::take(&mut st.streams).shutdown(timeout)
    }

    fn reorder(&self, st: &mut State, names: &[String]) {
        let rank = |n: &str| names.iter().position(|x| x == n).unwrap_or(usize::MAX);
        st.config.cameras.sort_by_key(|c| rank(&c.name));
        self.running.reorder(names);
    }

    /// Makes camera `name` run as `new` says (`None`: not at all): stops
    /// its streams, and prepares the new ones, which the caller starts.
    /// Nothing happens when it runs as `new` already.
    fn apply(&self, st: &mut State, name: &str, new: Option<Camera>) -> Result<Vec<Start>, String> {
        let old = st.config.cameras.iter().find(|c| c.name == name).cloned();
        if old == new {
            return Ok(Vec::new());
        }
        let mut errors = Vec::new();
        // Rings of the old streams, by kind, when both ends came back.
        let mut kept: Vec<(StreamKind, (RingWriter, RingReader))> = Vec::new();
        if let Some(old) = &old {
            log::info!(
                "camera {name}: {}",
                if new.is_some() {
                    "restarting with its new settings"
                } else {
                    "stopping (removed)"
                }
            );
            for (kind, sink) in st.streams.stop_camera(name, STOP_TIMEOUT) {
                let ends = sink.and_then(FrameSink::into_rings);
                // A recorded stream's ring is drained by the writer: it
                // writes out what is left, closes the recording, and hands
                // the ring end back.
                let from_writer = if recorded(old, kind) {
                    retire(st, name, kind)
                } else {
                    None
                };
                match (ends, from_writer) {
                    (Some((w, Some(r))), _) | (Some((w, None)), Some(r)) => {
                        kept.push((kind, (w, r)))
                    }
                    _ => {}
                }
            }
        }
        let Some(cam) = new else {
            self.running.remove_camera(name);
            st.config.cameras.retain(|c| c.name != name);
            log::info!("camera {name}: removed; its recordings stay until the ring reclaims them");
            return Ok(Vec::new());
        };
        let mut prepared = Vec::new();
        for (kind, url) in cam.streams() {
            let spec = StreamSpec::new(&st.config, &cam, kind, url);
            let (ring, reused) = match ring_weight(&cam, kind) {
                None => (None, false),
                Some(_) => match kept.iter().position(|(k, _)| *k == kind) {
                    Some(i) => {
                        log::info!("{}: keeps its ring", spec.session.label);
                        (Some(kept.swap_remove(i).1), true)
                    }
                    None => match new_ring(st, &cam, kind) {
                        Ok(r) => (Some(r), false),
                        Err(e) => {
                            errors.push(e);
                            (None, false)
                        }
                    },
                },
            };
            prepared.push(Prepared::new(spec, &cam, ring, 0, 0, reused));
        }
        // Rings of streams that are gone (a sub stream removed, a camera
        // disabled) are dropped here; their regions come back to the arena
        // once their last viewer leaves.
        drop(kept);
        let mut starts = Vec::new();
        for p in &mut prepared {
            if let Some(ws) = p.writer.take() {
                if let Err(e) = add_to_writer(st, ws) {
                    errors.push(format!("{} is not recorded: {e}", p.spec.session.label));
                }
            }
        }
        self.running.set_camera(
            cam.clone(),
            prepared.iter().map(Prepared::running).collect(),
        );
        for p in prepared {
            starts.push((p.spec, p.status, p.sink));
        }
        match st.config.cameras.iter_mut().find(|c| c.name == cam.name) {
            Some(c) => *c = cam,
            None => st.config.cameras.push(cam),
        }
        if errors.is_empty() {
            Ok(starts)
        } else {
            // Start what could be prepared even so: live video, at least.
            start(st, starts);
            Err(errors.join("; "))
        }
    }
}

type Start = (StreamSpec, Arc<StreamStatus>, Box<dyn FrameSink>);

fn start(st: &mut State, sinks: Vec<Start>) {
    if sinks.is_empty() {
        return;
    }
    let spacing = Duration::from_millis(st.config.system.stream_start_spacing_ms.into());
    st.streams.add(sinks, spacing);
}

/// Takes stream (`camera`, `kind`) from the writer, with its ring end.
fn retire(st: &State, camera: &str, kind: StreamKind) -> Option<RingReader> {
    let (tx, rx) = mpsc::channel();
    let cmd = WriterCommand::Retire {
        camera: camera.to_owned(),
        kind: kind.name(),
        reply: tx,
    };
    st.writer.send(cmd).ok()?;
    match rx.recv_timeout(WRITER_TIMEOUT) {
        Ok(r) => r,
        Err(_) => {
            log::warn!(
                "{camera}/{}: the writer did not answer; its ring is not reused",
                kind.name()
            );
            None
        }
    }
}

fn add_to_writer(st: &State, ws: WriterStream) -> Result<(), String> {
    let (tx, rx) = mpsc::channel();
    st.writer
        .send(WriterCommand::Add(ws, tx))
        .map_err(|_| "the writer has stopped".to_owned())?;
    match rx.recv_timeout(WRITER_TIMEOUT) {
        Ok(r) => r,
        Err(_) => Err("the writer did not answer".into()),
    }
}

/// A ring for a new stream: as large as a restart would make it (its
/// share of the arena among every stream running now), from the arena's
/// free regions if one fits, else allocated on its own until the next
/// restart.
fn new_ring(
    st: &State,
    cam: &Camera,
    kind: StreamKind,
) -> Result<(RingWriter, RingReader), String> {
    let mut weights = Vec::new();
    let mut index = 0;
    for c in st.config.cameras.iter().filter(|c| c.name != cam.name) {
        for (k, _) in c.streams() {
            weights.extend(ring_weight(c, k));
        }
    }
    for (k, _) in cam.streams() {
        if k == kind {
            index = weights.len();
        }
        weights.extend(ring_weight(cam, k));
    }
    let total = arena_bytes(&st.config);
    let want = arena::share(total, &weights, index);
    let label = format!("{}/{}", cam.name, kind.name());
    if let Some(r) = st.arena.ring(want) {
        log::info!(
            "{label}: a ring of {} KiB from the arena's free room",
            r.0.capacity() / 1024
        );
        return Ok(r);
    }
    log::warn!(
        "{label}: the arena has no free room for it; a ring of {} KiB is allocated outside it \
         until the next restart (which carves memory.arena_mb for all cameras again)",
        want / 1024
    );
    arena::carve(want, &[1])
        .map_err(|e| format!("no ring for {label}: {e}"))?
        .pop()
        .ok_or_else(|| format!("no ring for {label}"))
}
