//! Serving recorded and live video over HTTP.
//!
//! `conn` is HTTP/1.1 itself (connections, parsing, timeouts); `http` is
//! the server's routes and the JSON API; every video route is a hook of
//! its own module: `view` (.mp4 of a range), `ts` (MPEG-TS), `hls`
//! (playlists and fMP4 segments), `live` (live fMP4), `mjpeg` (MJPEG and
//! snapshots); `api_cameras` changes the cameras; `web` serves the page.
//! `route` holds what they share. `api_users` is login, logout and user
//! management.

pub mod api_cameras;
pub mod api_users;
pub mod conn;
pub mod export;
pub mod fmp4;
pub mod hls;
pub mod http;
pub mod json;
pub mod live;
pub mod metrics;
pub mod mjpeg;
pub mod mp4;
pub mod route;
pub mod ts;
pub mod view;
pub mod web;

use crate::config::Config;
use crate::daemon::recorder::Recorder;
use http::{Authenticator, RouteHook, ServeContext};
use std::sync::Arc;

/// Every route of `serve` beyond `http`'s own, in the order they are tried.
pub fn hooks(cfg: &Config, rec: &Recorder) -> Vec<RouteHook> {
    let db = cfg.storage.db.clone();
    let pools = rec.pool_reader.clone();
    let running = rec.running.clone();
    vec![
        api_cameras::hook(rec.control()),
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
    let mut route_hooks = vec![api_users::hook(users.clone(), cfg.http.auth)];
    route_hooks.extend(hooks(cfg, rec));
    let auth: Option<Arc<dyn Authenticator>> = if cfg.http.auth { Some(users) } else { None };
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
