//! From a request to its answer, above the HTTP/1.1 layer (`serve::http`):
//! the request as routes see it (`request`), every path the server
//! answers (`paths`), the auth gate (`gate`), what the video routes share
//! (`params`), and what every route may use ([`ServeContext`], [`Index`]).
//! The dispatcher itself is `serve::server`.

mod gate;
mod identify;
pub mod params;
mod paths;
mod request;

pub use gate::{gate, Identify, Identity};
pub use identify::{from_page, refused_reply};
pub use paths::{CameraFile, Route};
pub use request::{split_target, Method, Req};

use crate::config::Storage;
use crate::daemon::Running;
use crate::serve::http::Reply;
use crate::store::db::Db;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Answers the routes the dispatcher does not answer itself (the API's
/// and the video routes, each a module of `serve` given from above):
/// `None` passes the request on to the next hook (in the end, 404). A long
/// answer moves `req.permit` (taken before the hooks run, see
/// [`Route::is_long`]) into its [`Body::Stream`](crate::serve::http::Body).
pub type RouteHook = Arc<dyn Fn(&mut Req<'_>) -> Option<Reply> + Send + Sync>;

/// What the handlers need from the rest of the process.
pub struct ServeContext {
    /// The cameras and streams running now (they change while serving).
    pub running: Running,
    pub db_path: PathBuf,
    pub storage: Storage,
    pub started: Instant,
    /// `memory.arena_mb` in bytes, reported by `/api/status`.
    pub arena_bytes: u64,
    /// Tried in order for every path the dispatcher does not answer itself.
    pub route_hooks: Vec<RouteHook>,
    /// Who is asking, when `http.auth` is on; `None`: every request may do
    /// everything (a trusted network).
    pub auth: Option<Arc<dyn Identify>>,
    /// Requests answered, by status, for `/metrics`.
    pub counters: Arc<HttpCounters>,
}

/// Requests answered, by status.
#[derive(Default)]
pub struct HttpCounters {
    /// (status, count), in order of first use: a handful of entries.
    by_status: Mutex<Vec<(u16, u64)>>,
}

impl HttpCounters {
    /// Connections given up with their thread. That was tiny_http's way
    /// with absurd declared bodies; our own connection layer never does
    /// it, so this is always 0 (kept for the metric's users).
    pub fn abandoned(&self) -> u32 {
        0
    }

    pub fn count(&self, status: u16) {
        let mut v = self.by_status.lock().unwrap_or_else(|e| e.into_inner());
        match v.iter_mut().find(|(s, _)| *s == status) {
            Some((_, n)) => *n += 1,
            None => v.push((status, 1)),
        }
    }

    /// (status, count) pairs, by status.
    pub fn snapshot(&self) -> Vec<(u16, u64)> {
        let mut v = self
            .by_status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        v.sort_unstable();
        v
    }
}

/// A read-only connection to the index for one request: opened on first
/// use, and dropped after an error (WAL readers run alongside the writer).
#[derive(Default)]
pub struct Index {
    db: Option<Db>,
}

impl Index {
    /// Starts with `db`, a connection kept from an earlier request.
    pub fn new(db: Option<Db>) -> Index {
        Index { db }
    }

    /// The index, opened on first use and after any error.
    pub fn get(&mut self, path: &Path) -> Result<&Db, String> {
        if self.db.is_none() {
            let d = Db::open_read_only(path).map_err(|e| e.to_string())?;
            self.db = Some(d);
        }
        self.db
            .as_ref()
            .ok_or_else(|| "index unavailable".to_owned())
    }

    /// Drops the connection after an error: the next use opens another.
    pub fn forget(&mut self) {
        self.db = None;
    }

    /// The answer to an index error (the connection is dropped).
    pub fn error(&mut self, e: impl std::fmt::Display) -> Reply {
        self.db = None;
        log::warn!("http: index: {e}");
        Reply::error(500, &format!("index: {e}"))
    }

    /// The connection, to keep for the next request.
    pub fn into_inner(self) -> Option<Db> {
        self.db
    }
}
