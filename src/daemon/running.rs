//! What is running now, for everyone who only looks: the cameras as they
//! are configured in the running daemon, and each stream's status and
//! live source. The HTTP side reads it on every request; the daemon
//! changes it when a camera is added, changed or removed (API or SIGHUP).
//!
//! A stream's entry is replaced when the stream restarts: a new status
//! (counters from zero) and maybe a new ring. Holders of an old entry
//! (a live viewer) keep a working but silent stream; [`Running::is_current`]
//! tells them it is gone.

use super::recorder::LiveSource;
use crate::config::{Camera, StreamKind};
use crate::stream::StreamStatus;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// One running stream.
#[derive(Clone)]
pub struct RunningStream {
    pub camera: String,
    pub kind: StreamKind,
    pub status: Arc<StreamStatus>,
    /// `None`: no ring (a disabled camera's stream).
    pub live: Option<LiveSource>,
}

#[derive(Default)]
struct State {
    /// In the config file's order.
    cameras: Vec<Camera>,
    /// Grouped by camera, in the cameras' order.
    streams: Vec<RunningStream>,
}

/// The registry; cheap to clone (all clones see the same).
#[derive(Clone, Default)]
pub struct Running {
    inner: Arc<RwLock<State>>,
}

impl Running {
    /// A registry of fixed streams and no configured cameras: for tests
    /// and tools that serve a few statuses.
    pub fn from_statuses(statuses: Vec<Arc<StreamStatus>>) -> Running {
        let r = Running::default();
        r.write().streams = statuses
            .into_iter()
            .map(|status| RunningStream {
                camera: status.camera.clone(),
                kind: status.kind,
                status,
                live: None,
            })
            .collect();
        r
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        // Every change below leaves the state whole; a panic elsewhere while
        // holding the lock cannot have broken it.
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Every stream's status, grouped by camera.
    pub fn statuses(&self) -> Vec<Arc<StreamStatus>> {
        self.read()
            .streams
            .iter()
            .map(|s| s.status.clone())
            .collect()
    }

    pub fn streams(&self) -> Vec<RunningStream> {
        self.read().streams.clone()
    }

    /// Every stream with a ring.
    pub fn live_sources(&self) -> Vec<LiveSource> {
        self.read()
            .streams
            .iter()
            .filter_map(|s| s.live.clone())
            .collect()
    }

    /// The live source of one stream, if it runs with a ring.
    pub fn live(&self, camera: &str, kind: StreamKind) -> Option<LiveSource> {
        self.read()
            .streams
            .iter()
            .find(|s| s.camera == camera && s.kind == kind)
            .and_then(|s| s.live.clone())
    }

    /// Whether `src` is still the running source of its stream (not
    /// replaced by a restart, not removed).
    pub fn is_current(&self, src: &LiveSource) -> bool {
        self.read().streams.iter().any(|s| {
            s.live
                .as_ref()
                .is_some_and(|l| Arc::ptr_eq(&l.status, &src.status))
        })
    }

    /// The cameras as running (passwords included: never send them out).
    pub fn cameras(&self) -> Vec<Camera> {
        self.read().cameras.clone()
    }

    pub fn camera(&self, name: &str) -> Option<Camera> {
        self.read().cameras.iter().find(|c| c.name == name).cloned()
    }

    /// Whether a camera of this name runs (or has a stream here).
    pub fn has_camera(&self, name: &str) -> bool {
        let st = self.read();
        st.cameras.iter().any(|c| c.name == name) || st.streams.iter().any(|s| s.camera == name)
    }

    /// Sets a camera and its streams: in its place when it was there,
    /// else at the end.
    pub fn set_camera(&self, camera: Camera, streams: Vec<RunningStream>) {
        let mut st = self.write();
        let name = camera.name.clone();
        match st.cameras.iter().position(|c| c.name == name) {
            Some(i) => st.cameras[i] = camera,
            None => st.cameras.push(camera),
        }
        match st.streams.iter().position(|s| s.camera == name) {
            Some(at) => {
                st.streams.retain(|s| s.camera != name);
                let at = at.min(st.streams.len());
                st.streams.splice(at..at, streams);
            }
            None => st.streams.extend(streams),
        }
    }

    /// Removes a camera and its streams.
    pub fn remove_camera(&self, name: &str) {
        let mut st = self.write();
        st.cameras.retain(|c| c.name != name);
        st.streams.retain(|s| s.camera != name);
    }

    /// Puts cameras (and their streams) in the order of `names`; others
    /// keep their order after those.
    pub fn reorder(&self, names: &[String]) {
        let mut st = self.write();
        let rank = |n: &str| names.iter().position(|x| x == n).unwrap_or(usize::MAX);
        st.cameras.sort_by_key(|c| rank(&c.name));
        st.streams.sort_by_key(|s| rank(&s.camera));
    }
}
