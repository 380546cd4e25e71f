//! The HTTP server: the JSON API and the web page (SPEC.md, "HTTP API").
//!
//! Connections, request heads and timeouts are `conn.rs`'s business: it
//! gives this module each whole request, on the connection's own thread,
//! and writes the [`Reply`] it gets back. Short answers (JSON, the page)
//! are over at once. Long answers (recorded and live video) each hold a
//! [`Permit`], at most `max_clients` at once, taken before any work, and
//! are written on the connection's thread for as long as the client reads.

use super::conn;
use crate::config::{Storage, StreamKind};
use crate::daemon::Running;
use crate::store::db::{self, Db, SampleEntry};
use crate::time::{format_90k, parse_90k};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Connection threads beyond `max_clients` (which long answers may all
/// take): room for short answers and keep-alive connections meanwhile.
const SPARE_THREADS: usize = 8;
/// Read-only connections to the index kept open between requests (each
/// may cache up to 2 MB of pages); more are opened when more requests
/// run at once, and closed after.
const DB_CACHE: usize = 4;
/// Longest request target accepted (path and query): anything longer is
/// not one of ours.
const MAX_URL: usize = 2048;
/// At most this many query parameters are looked at.
const MAX_PARAMS: usize = 16;

/// Answers routes this module does not know (the video routes): `None`
/// passes the request on to the next hook (in the end, 404). A long answer
/// moves `req.permit` (taken before the hooks run, see [`is_long_route`])
/// into its [`Body::Stream`].
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
    /// Tried in order for every path this module does not answer itself.
    pub route_hooks: Vec<RouteHook>,
    /// Who is asking, when `http.auth` is on; `None`: every request may do
    /// everything (a trusted network).
    pub auth: Option<Arc<dyn Authenticator>>,
    /// Requests answered, by status, for `/metrics`.
    pub counters: Arc<HttpCounters>,
}

/// What a user may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Everything.
    Admin,
    /// Read only: watch, list, download.
    Viewer,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Viewer => "viewer",
        }
    }
}

/// Who sent a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    pub role: Role,
    /// Authenticated by a session cookie (which a browser sends by itself,
    /// so a state-changing request must also pass the Origin check), not
    /// by credentials sent with the request.
    pub by_cookie: bool,
}

/// Tells who sent a request, when `http.auth` is on.
pub trait Authenticator: Send + Sync {
    /// The sender, from a session cookie or HTTP Basic credentials:
    /// `Ok(None)` when the request carries neither. `Err` is the answer to
    /// give instead (wrong credentials: 401; too many failures from this
    /// address: 429).
    fn identify(&self, req: &Req<'_>) -> Result<Option<Identity>, Reply>;

    /// The answer to a request that needs credentials and has none.
    fn unauthorized(&self, req: &Req<'_>) -> Reply;
}

/// Paths anyone may request, logged in or not: the page and its assets,
/// and logging in.
pub fn is_public(segments: &[String], method: Method) -> bool {
    match segments {
        [p] => p.is_empty() || (matches!(method, Method::Get | Method::Head) && is_page_asset(p)),
        [a, l] => a == "api" && (l == "login" || l == "logout"),
        _ => false,
    }
}

/// A static file of the page (`/app.js`, `/app.css`, `/favicon.svg`...):
/// one path segment with a known extension.
fn is_page_asset(name: &str) -> bool {
    [".js", ".css", ".svg", ".ico", ".png", ".webmanifest"]
        .iter()
        .any(|ext| name.ends_with(ext))
}

/// The methods a path accepts; anything else is 405 with `Allow`.
pub fn allowed_methods(segments: &[String]) -> &'static [Method] {
    use Method::*;
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    match s.as_slice() {
        ["api", "login"] | ["api", "logout"] => &[Post],
        ["api", "cameras"] | ["api", "users"] => &[Get, Head, Post],
        ["api", "cameras", _] => &[Get, Head, Put, Delete],
        ["api", "users", _] => &[Get, Head, Put, Delete],
        _ => &[Get, Head],
    }
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

/// The request methods Vigil answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Delete,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }

    /// GET and HEAD only read.
    pub fn changes_state(self) -> bool {
        !matches!(self, Method::Get | Method::Head)
    }
}

/// Whether `/api/cameras/{name}/{what}` is a long answer (video bytes for
/// as long as the client reads): those hold a [`Permit`] of
/// `http.max_clients`, taken before any work so that a refused client
/// costs nothing. Playlists and snapshots are short answers.
pub fn is_long_route(what: &str) -> bool {
    what == "mjpeg"
        || [".mp4", ".ts", ".m4s"]
            .iter()
            .any(|ext| what.ends_with(ext))
}

/// Counts long answers against `max_clients`.
pub struct Permits {
    max: u32,
    active: Arc<AtomicU32>,
}

/// One long answer in progress; released when dropped.
pub struct Permit {
    active: Arc<AtomicU32>,
}

impl Permits {
    pub fn new(max: u32) -> Permits {
        Permits {
            max,
            active: Arc::new(AtomicU32::new(0)),
        }
    }

    /// A permit, or `None` when `max_clients` long answers are running.
    pub fn try_acquire(&self) -> Option<Permit> {
        self.active
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()
            .map(|_| Permit {
                active: self.active.clone(),
            })
    }

    pub fn active(&self) -> u32 {
        self.active.load(Ordering::Acquire)
    }

    /// The answer when no permit is left.
    pub fn busy(&self) -> Reply {
        Reply::error(
            503,
            &format!(
                "too many clients: {} video streams are already being served (http.max_clients)",
                self.max
            ),
        )
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.active.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A request, as the routes see it.
pub struct Req<'a> {
    /// Percent-decoded path segments after the leading `/`.
    pub segments: Vec<String>,
    /// Percent-decoded query parameters, in order.
    pub query: Vec<(String, String)>,
    pub method: Method,
    /// `method == Head`: answer with the headers of a GET, and no body.
    pub head: bool,
    /// The request body, at most [`conn::MAX_BODY`] bytes.
    pub body: Vec<u8>,
    /// The client's address (for rate limits and logs).
    pub peer: Option<SocketAddr>,
    /// Who sent it, when `http.auth` is on and it carried credentials.
    pub identity: Option<Identity>,
    /// The long-answer permit this route was given, if it needs one.
    pub permit: Option<Permit>,
    pub permits: &'a Permits,
    /// The request's header fields.
    headers: &'a [(String, String)],
}

impl Req<'_> {
    /// The first query parameter named `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A request header's value (first of that name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The body of an answer.
pub enum Body {
    Bytes(Vec<u8>),
    /// A long answer, written on the connection's thread while `permit` is
    /// held. `len` known gives `Content-Length`; unknown (live video), the
    /// body ends when the connection closes (RFC 9112, 6.3), each piece
    /// read sent at once.
    Stream {
        reader: Box<dyn Read + Send>,
        len: Option<u64>,
        permit: Permit,
    },
}

/// An answer.
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Body,
}

impl Reply {
    pub fn json(status: u16, v: &Value) -> Reply {
        Reply {
            status,
            content_type: "application/json",
            headers: Vec::new(),
            body: Body::Bytes(v.to_string().into_bytes()),
        }
    }

    pub fn error(status: u16, msg: &str) -> Reply {
        Reply::json(status, &json!({ "error": msg }))
    }
}

/// The running server.
pub struct HttpServer {
    server: conn::Server,
}

impl HttpServer {
    /// Binds `listen` and starts accepting: at most `max_clients` long
    /// answers, and `max_clients` plus a few connection threads.
    pub fn start(
        listen: SocketAddr,
        ctx: Arc<ServeContext>,
        max_clients: u32,
    ) -> io::Result<HttpServer> {
        let listener = std::net::TcpListener::bind(listen)?;
        let stop = Arc::new(AtomicBool::new(false));
        let service = Arc::new(Service {
            ctx,
            permits: Arc::new(Permits::new(max_clients)),
            dbs: Mutex::new(Vec::new()),
        });
        let threads = usize::try_from(max_clients)
            .unwrap_or(usize::MAX)
            .saturating_add(SPARE_THREADS);
        let server = conn::Server::start(listener, service, threads, stop)?;
        Ok(HttpServer { server })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// Connection threads alive.
    pub fn threads(&self) -> usize {
        self.server.threads()
    }

    /// Stops accepting and closes every connection; a request being
    /// answered finishes, long answers end at their next read. Bounded.
    pub fn stop(mut self) {
        self.server.stop();
    }
}

/// The routes, as the connection layer sees them.
struct Service {
    ctx: Arc<ServeContext>,
    permits: Arc<Permits>,
    /// Read-only connections to the index between requests.
    dbs: Mutex<Vec<Db>>,
}

impl conn::Handler for Service {
    fn handle(&self, rq: &conn::Request, body: Vec<u8>, peer: SocketAddr) -> Reply {
        let db = self.dbs.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut w = Worker {
            ctx: self.ctx.clone(),
            permits: self.permits.clone(),
            db,
        };
        let reply =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| w.route(rq, body, peer)))
                .unwrap_or_else(|_| {
                    w.db = None;
                    Reply::error(500, "internal error")
                });
        if let Some(db) = w.db.take() {
            let mut dbs = self.dbs.lock().unwrap_or_else(|e| e.into_inner());
            if dbs.len() < DB_CACHE {
                dbs.push(db);
            }
        }
        reply
    }

    fn count(&self, status: u16) {
        self.ctx.counters.count(status);
    }

    fn quiet(&self) {
        self.dbs.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

/// Answers one request.
struct Worker {
    ctx: Arc<ServeContext>,
    permits: Arc<Permits>,
    /// A read-only connection to the index, opened on first use and
    /// dropped after an error (WAL readers run alongside the writer).
    db: Option<Db>,
}

/// With `http.auth` on: who sent the request, and may they do this? Sets
/// `req.identity`; `Err` is the answer instead. Public paths pass without
/// credentials (but carry an identity when they have one). A viewer may
/// only read; a state-changing request authenticated by a cookie must come
/// from our own page (its `Origin` names the host it was sent to), which
/// stops other sites from making a logged-in browser act for them.
fn gate(auth: &dyn Authenticator, req: &mut Req<'_>) -> Result<(), Reply> {
    let identity = auth.identify(req)?;
    let public = is_public(&req.segments, req.method);
    let Some(id) = identity else {
        return if public {
            Ok(())
        } else {
            Err(auth.unauthorized(req))
        };
    };
    if req.method.changes_state() {
        let logging_in_or_out = req.segments.len() == 2 && public;
        if id.role == Role::Viewer && !logging_in_or_out {
            return Err(Reply::error(
                403,
                "forbidden: viewers may not change anything",
            ));
        }
        if id.by_cookie && !same_origin(req) {
            return Err(Reply::error(
                403,
                "forbidden: a change made with a session cookie must come from this server's page (Origin)",
            ));
        }
    }
    req.identity = Some(id);
    Ok(())
}

/// The request's `Origin` is the host it was sent to (`Host`), over http
/// or https.
fn same_origin(req: &Req<'_>) -> bool {
    let (Some(origin), Some(host)) = (req.header("Origin"), req.header("Host")) else {
        return false;
    };
    let origin = origin.trim();
    let rest = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    rest.is_some_and(|h| h.eq_ignore_ascii_case(host.trim()))
}

impl Worker {
    fn route(&mut self, rq: &conn::Request, body: Vec<u8>, peer: SocketAddr) -> Reply {
        let method = match rq.method.as_str() {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            _ => {
                let mut r = Reply::error(405, "method not allowed");
                r.headers
                    .push(("Allow", "GET, HEAD, POST, PUT, DELETE".into()));
                return r;
            }
        };
        let head = method == Method::Head;
        let url = rq.target.as_str();
        if url.len() > MAX_URL {
            return Reply::error(414, "request target too long");
        }
        let (path, query) = url.split_once('?').unwrap_or((url, ""));
        let Some(path) = path.strip_prefix('/') else {
            return Reply::error(400, "request target must be a path");
        };
        let segments = match path
            .split('/')
            .map(|s| percent_decode(s, false))
            .collect::<Result<Vec<_>, _>>()
        {
            Ok(s) => s,
            Err(e) => return Reply::error(400, &format!("path: {e}")),
        };
        let query = match parse_query(query) {
            Ok(q) => q,
            Err(e) => return Reply::error(400, &e),
        };
        let allowed = allowed_methods(&segments);
        if !allowed.contains(&method) {
            let mut r = Reply::error(
                405,
                &format!("method not allowed: {} is not served here", method.name()),
            );
            let names: Vec<&str> = allowed.iter().map(|m| m.name()).collect();
            r.headers.push(("Allow", names.join(", ")));
            return r;
        }
        let permits = self.permits.clone();
        let mut req = Req {
            segments,
            query,
            method,
            head,
            body,
            peer: Some(peer),
            identity: None,
            permit: None,
            permits: &permits,
            headers: &rq.headers,
        };
        if let Some(auth) = &self.ctx.auth {
            if let Err(r) = gate(auth.as_ref(), &mut req) {
                return r;
            }
        }
        // The page and its files (web.rs).
        if let Some(r) = super::web::answer(&req) {
            return r;
        }
        let segments = req.segments.clone();
        let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
        match seg.as_slice() {
            ["api", "status"] => self.status(req.identity.as_ref()),
            ["metrics"] => self.metrics(),
            ["api", "cameras", name, "recordings"] => self.recordings(name, &req),
            ["api", "cameras", name, what] if is_long_route(what) => {
                if !self.known_camera(name) {
                    return unknown_camera(name);
                }
                let Some(permit) = self.permits.try_acquire() else {
                    return self.permits.busy();
                };
                req.permit = Some(permit);
                self.hooks(&mut req)
            }
            _ => self.hooks(&mut req),
        }
    }

    fn hooks(&self, req: &mut Req<'_>) -> Reply {
        self.ctx
            .route_hooks
            .iter()
            .find_map(|hook| hook(req))
            .unwrap_or_else(|| Reply::error(404, "not found"))
    }

    /// The index, opened on first use and after any error.
    fn db(&mut self) -> Result<&Db, String> {
        if self.db.is_none() {
            let d = Db::open_read_only(&self.ctx.db_path).map_err(|e| e.to_string())?;
            self.db = Some(d);
        }
        self.db
            .as_ref()
            .ok_or_else(|| "index unavailable".to_owned())
    }

    fn db_error(&mut self, e: impl std::fmt::Display) -> Reply {
        self.db = None;
        log::warn!("http: index: {e}");
        Reply::error(500, &format!("index: {e}"))
    }

    fn known_camera(&mut self, name: &str) -> bool {
        if self.ctx.running.has_camera(name) {
            return true;
        }
        // A camera removed from the config keeps its recordings until the
        // ring reclaims them.
        self.db()
            .and_then(|d| d.streams().map_err(|e| e.to_string()))
            .is_ok_and(|s| s.iter().any(|s| s.camera == name))
    }

    /// `user`: who asked (`"user"` in the answer, for the page after a
    /// reload), with `"auth"` saying whether anyone has to log in.
    fn status(&mut self, user: Option<&Identity>) -> Reply {
        let st = &self.ctx.storage;
        let total = u64::from(st.pool_size_mb) * u64::from(st.pools) * 1024 * 1024;
        let mut storage = json!({
            "path": st.path.to_string_lossy(),
            "bytes_total": total,
            "bytes_used": Value::Null,
            "recordings": Value::Null,
            "oldest": Value::Null,
            "newest": Value::Null,
        });
        match self
            .db()
            .and_then(|d| d.summary().map_err(|e| e.to_string()))
        {
            Ok(sum) => {
                storage["bytes_used"] = json!(sum.bytes);
                storage["recordings"] = json!(sum.recordings);
                storage["oldest"] = time_json(sum.oldest_start_90k);
                storage["newest"] = time_json(sum.newest_end_90k);
            }
            Err(e) => {
                self.db = None;
                storage["error"] = json!(format!("index: {e}"));
            }
        }
        let mut cameras: Vec<(String, Vec<Value>)> = Vec::new();
        for s in &self.ctx.running.statuses() {
            let n = s.snapshot();
            let v = json!({
                "stream": s.kind.name(),
                "state": n.state.name(),
                "codec": n.codec.map(|c| c.name()),
                "width": n.width,
                "height": n.height,
                "fps": n.fps_milli.map(|f| f64::from(f) / 1000.0),
                "bitrate_bps": n.bitrate_bps,
                "frames": n.frames,
                "frames_dropped": n.frames_dropped,
                "packets_lost": n.packets_lost,
                "reconnects": n.reconnects,
                "watchdog_restarts": n.watchdog_restarts,
                "last_error": n.last_error,
                "previous_error": n.previous_error,
                "storage_error": n.storage_error,
            });
            match cameras.iter_mut().find(|(c, _)| *c == s.camera) {
                Some((_, streams)) => streams.push(v),
                None => cameras.push((s.camera.clone(), vec![v])),
            }
        }
        let cameras: Vec<Value> = cameras
            .into_iter()
            .map(|(name, streams)| json!({ "name": name, "streams": streams }))
            .collect();
        // Bytes the rings hold now (frames not yet written out), summed
        // as u64: a ring's figure is u32.
        let arena_used: u64 = self
            .ctx
            .running
            .live_sources()
            .iter()
            .map(|s| u64::from(s.tap.stats().used))
            .sum();
        Reply::json(
            200,
            &json!({
                "version": env!("CARGO_PKG_VERSION"),
                "uptime_s": self.ctx.started.elapsed().as_secs(),
                "storage": storage,
                "memory": {
                    "rss_bytes": rss_bytes(),
                    "arena_bytes": self.ctx.arena_bytes,
                    "arena_used_bytes": arena_used,
                },
                "cameras": cameras,
                "auth": self.ctx.auth.is_some(),
                "user": user.map(|u| json!({ "name": u.user, "role": u.role.name() })),
            }),
        )
    }

    fn metrics(&mut self) -> Reply {
        let storage = match self
            .db()
            .and_then(|d| d.summary().map_err(|e| e.to_string()))
        {
            Ok(s) => Some(s),
            Err(e) => {
                self.db = None;
                log::warn!("metrics: index: {e}");
                None
            }
        };
        let statuses = self.ctx.running.statuses();
        let streams = statuses
            .iter()
            .map(|s| super::metrics::StreamMetrics {
                camera: &s.camera,
                stream: s.kind.name(),
                snapshot: s.snapshot(),
            })
            .collect();
        let st = &self.ctx.storage;
        let text = super::metrics::render(&super::metrics::Metrics {
            uptime_s: self.ctx.started.elapsed().as_secs(),
            streams,
            storage,
            storage_capacity_bytes: u64::from(st.pool_size_mb) * u64::from(st.pools) * 1024 * 1024,
            rss_bytes: rss_bytes(),
            arena_bytes: self.ctx.arena_bytes,
            http_by_status: self.ctx.counters.snapshot(),
            http_abandoned: self.ctx.counters.abandoned(),
        });
        Reply {
            status: 200,
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            headers: Vec::new(),
            body: Body::Bytes(text.into_bytes()),
        }
    }

    fn recordings(&mut self, camera: &str, req: &Req<'_>) -> Reply {
        if !self.known_camera(camera) {
            return unknown_camera(camera);
        }
        let kind = match req.param("stream") {
            None | Some("main") => StreamKind::Main,
            Some("sub") => StreamKind::Sub,
            Some(other) => {
                return Reply::error(
                    400,
                    &format!("stream: {other:?} is not a stream: use main or sub"),
                )
            }
        };
        let time = |name: &str, default: i64| match req.param(name) {
            None => Ok(default),
            Some(v) => parse_90k(v).map_err(|e| Reply::error(400, &format!("{name}: {e}"))),
        };
        let (start, end) = match (time("start", i64::MIN / 2), time("end", i64::MAX / 2)) {
            (Ok(s), Ok(e)) => (s, e),
            (Err(r), _) | (_, Err(r)) => return r,
        };
        if end <= start {
            return Reply::error(400, "end: must be after start");
        }
        let db = match self.db() {
            Ok(d) => d,
            Err(e) => return self.db_error(e),
        };
        match list_recordings(db, camera, kind, start, end) {
            Ok((items, truncated)) => {
                let mut r = Reply::json(200, &Value::Array(items));
                if truncated {
                    r.headers.push(("X-Vigil-Truncated", MAX_ROWS.to_string()));
                }
                r
            }
            Err(e) => self.db_error(e),
        }
    }
}

/// At most this many recordings per answer (about 3 MB of JSON); a longer
/// list is cut, and says so in an `X-Vigil-Truncated` header.
const MAX_ROWS: usize = 5000;
/// The index is read this much time at a time, so that a request for
/// months never holds months of rows (and their sample indexes) at once.
const WINDOW_90K: i64 = 3600 * crate::time::TICKS;

fn list_recordings(
    db: &Db,
    camera: &str,
    kind: StreamKind,
    start: i64,
    end: i64,
) -> Result<(Vec<Value>, bool), db::DbError> {
    let streams = db.streams()?;
    let Some(stream) = streams
        .iter()
        .find(|s| s.camera == camera && s.kind == kind.name())
    else {
        return Ok((Vec::new(), false));
    };
    let sum = db.stream_summary(stream.id)?;
    let (Some(oldest), Some(newest)) = (sum.oldest_start_90k, sum.newest_end_90k) else {
        return Ok((Vec::new(), false));
    };
    // Nothing lies outside [oldest, newest]: walk only that part.
    let mut t = start.max(oldest);
    let end = end.min(newest.saturating_add(1));
    let mut entries: HashMap<i64, Option<SampleEntry>> = HashMap::new();
    let mut out = Vec::new();
    let mut last_id = None;
    // The first window also finds a recording that began before `start`.
    let mut first = true;
    while t < end || first {
        let w_start = if first { start } else { t };
        let w_end = t.saturating_add(WINDOW_90K).min(end);
        first = false;
        if w_end <= w_start {
            break;
        }
        for r in db.recordings(stream.id, w_start, w_end)? {
            if out.len() >= MAX_ROWS {
                break;
            }
            // A recording crossing a window edge is listed by both windows.
            if last_id == Some(r.id) {
                continue;
            }
            last_id = Some(r.id);
            let e = match entries.get(&r.sample_entry_id) {
                Some(e) => e.clone(),
                None => {
                    let e = db.sample_entry(r.sample_entry_id).ok();
                    entries.insert(r.sample_entry_id, e.clone());
                    e
                }
            };
            let r_end = r.start_90k.saturating_add(r.duration_90k);
            out.push(json!({
                "id": r.id,
                "stream": kind.name(),
                "start": format_90k(r.start_90k),
                "end": format_90k(r_end),
                "start_90k": r.start_90k,
                "end_90k": r_end,
                "duration_ms": r.duration_90k / 90,
                "bytes": r.bytes,
                "codec": e.as_ref().map(|e| e.codec.clone()),
                "width": e.as_ref().map(|e| e.width),
                "height": e.as_ref().map(|e| e.height),
                "frames": r.frames,
                "gaps": u32::from(r.flags & db::RECORDING_GAP != 0),
                "open": r.flags & db::RECORDING_OPEN != 0,
            }));
        }
        if out.len() >= MAX_ROWS {
            return Ok((out, true));
        }
        t = w_end;
    }
    Ok((out, false))
}

fn unknown_camera(name: &str) -> Reply {
    Reply::error(404, &format!("no camera named {name:?}"))
}

fn time_json(t: Option<i64>) -> Value {
    t.map_or(Value::Null, |t| Value::String(format_90k(t)))
}

/// Resident set size, from `/proc/self/statm` (Linux); `None` elsewhere.
fn rss_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = text.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages.saturating_mul(u64::try_from(page).ok()?))
}

/// Decodes `%XX` escapes (and `+` as a space in query strings).
fn percent_decode(s: &str, plus_is_space: bool) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match c {
            b'%' => {
                let hex = |j: usize| b.get(j).and_then(|&h| (h as char).to_digit(16));
                let (Some(hi), Some(lo)) = (hex(i + 1), hex(i + 2)) else {
                    return Err(format!("bad percent-encoding in {s:?}"));
                };
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| format!("{s:?} is not UTF-8 once decoded"))
}

/// `a=1&b=2` into decoded pairs, at most [`MAX_PARAMS`] of them.
fn parse_query(q: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for part in q.split('&').filter(|p| !p.is_empty()) {
        if out.len() >= MAX_PARAMS {
            return Err(format!("too many query parameters (at most {MAX_PARAMS})"));
        }
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        let k = percent_decode(k, true)?;
        let v = percent_decode(v, true).map_err(|e| format!("{k}: {e}"))?;
        out.push((k, v));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b+c", true).unwrap(), "a b c");
        assert_eq!(percent_decode("a+b", false).unwrap(), "a+b");
        assert_eq!(
            percent_decode("2026-11-21T10%3A00%3A00%2B01%3A00", true).unwrap(),
            "2026-11-21T10:00:00+01:00"
        );
        assert!(percent_decode("%", true).is_err());
        assert!(percent_decode("%4", true).is_err());
        assert!(percent_decode("%zz", true).is_err());
        assert!(percent_decode("%ff", true).is_err());
        // A multi-byte character split by the escape must still decode.
        assert_eq!(percent_decode("%C3%A9", true).unwrap(), "é");
    }

    #[test]
    fn query_parsing_is_bounded() {
        let q = parse_query("stream=sub&start=1&&end").unwrap();
        assert_eq!(
            q,
            vec![
                ("stream".into(), "sub".into()),
                ("start".into(), "1".into()),
                ("end".into(), "".into())
            ]
        );
        let many = vec!["a=1"; MAX_PARAMS + 1].join("&");
        assert!(parse_query(&many).is_err());
        assert!(parse_query("start=%x1").unwrap_err().contains("start"));
    }

    #[test]
    fn permits_count_to_max_and_release_on_drop() {
        let p = Permits::new(2);
        let a = p.try_acquire().unwrap();
        let b = p.try_acquire().unwrap();
        assert!(p.try_acquire().is_none());
        assert_eq!(p.active(), 2);
        drop(a);
        let c = p.try_acquire().unwrap();
        assert!(p.try_acquire().is_none());
        drop((b, c));
        assert_eq!(p.active(), 0);
        assert!(Permits::new(0).try_acquire().is_none());
        assert_eq!(p.busy().status, 503);
    }
}
