//! Serving recorded and live video over HTTP.
//!
//! Layers, each importing only those below it:
//! - `http`: HTTP/1.1 itself (connections, parsing, timeouts, answers),
//!   knowing nothing of Vigil's paths.
//! - `router`: every path in one table (`router::Route`), the request as
//!   routes see it, the auth gate, and the helpers routes share.
//! - the routes: `web` (the page), `api` (the JSON API: status,
//!   recordings, cameras, users), and one module per video format: `view`
//!   (.mp4 of a range, built by `mp4`), `ts` (MPEG-TS), `hls` (playlists
//!   and fMP4 segments, built by `fmp4`), `live` (live fMP4), `mjpeg`
//!   (MJPEG and snapshots). `export` writes a range to a file for
//!   `vigil export`.
//! - `server`: the dispatcher that ties them together, and [`HttpServer`].
//!
//! This module gives the routes the recorder's parts ([`hooks`],
//! [`context`]).

pub mod api;
pub mod export;
pub mod fmp4;
pub mod hls;
pub mod http;
pub mod live;
pub mod mjpeg;
pub mod mp4;
pub mod router;
pub mod server;
pub mod ts;
pub mod view;
pub mod web;

pub use server::HttpServer;

use crate::config::Config;
use crate::daemon::recorder::Recorder;
use router::{Identify, RouteHook, ServeContext};
use std::sync::Arc;

/// The route hooks of `serve`'s modules, in the order they are tried.
pub fn hooks(cfg: &Config, rec: &Recorder) -> Vec<RouteHook> {
    let db = cfg.storage.db.clone();
    let pools = rec.pool_reader.clone();
    let running = rec.running.clone();
    vec![
        api::cameras::hook(rec.control()),
        view::hook(db.clone(), pools.clone()),
        ts::hook(db.clone(), pools.clone()),
        hls::hook(db, pools, running.clone()),
        live::hook(running.clone()),
        mjpeg::hook(running, cfg),
    ]
}

/// What the HTTP server needs to serve `rec`, recording under `cfg`.
/// The users' routes come first; with `http.auth` on, the same users
/// authenticate every request.
pub fn context(cfg: &Config, rec: &Recorder) -> ServeContext {
    let users = Arc::new(crate::auth::Auth::new(cfg.storage.db.clone()));
    let mut route_hooks = vec![api::users::hook(users.clone(), cfg.http.auth)];
    route_hooks.extend(hooks(cfg, rec));
    let auth: Option<Arc<dyn Identify>> = if cfg.http.auth { Some(users) } else { None };
    ServeContext {
        running: rec.running.clone(),
        db_path: cfg.storage.db.clone(),
        storage: cfg.storage.clone(),
        started: std::time::Instant::now(),
        arena_bytes: u64::from(cfg.memory.arena_mb) * 1024 * 1024,
        route_hooks,
        auth,
        counters: Default::default(),
    }
}
