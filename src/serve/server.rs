//! The running HTTP server: [`HttpServer`] starts the HTTP/1.1 layer
//! (`serve::http`) with the dispatcher as its handler. The dispatcher reads
//! each request's route from the table (`router::Route`), applies the auth
//! gate, takes a long answer's permit, and hands the request to the module
//! that answers it: the page (`web`), the status and recordings API
//! (`api`), or the route hooks in `ServeContext` (the other API modules and
//! the video formats).
//!
//! Short answers (JSON, the page) are over at once. Long answers (recorded
//! and live video) each hold a `Permit`, at most `max_clients` at once,
//! taken before any work, and are written on the connection's thread for
//! as long as the client reads.

use super::api;
use super::http::{self, Permits, Reply};
use super::router::params::unknown_camera;
use super::router::{gate, split_target, CameraFile, Index, Method, Req, Route, ServeContext};
use super::web;
use crate::store::db::Db;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

/// Connection threads beyond `max_clients` (which long answers may all
/// take): room for short answers and keep-alive connections meanwhile.
const SPARE_THREADS: usize = 8;
/// Read-only connections to the index kept open between requests (each
/// may cache up to 2 MB of pages); more are opened when more requests
/// run at once, and closed after.
const DB_CACHE: usize = 4;

/// The running server.
pub struct HttpServer {
    server: http::Server,
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
        let dispatcher = Arc::new(Dispatcher {
            ctx,
            permits: Arc::new(Permits::new(max_clients)),
            dbs: Mutex::new(Vec::new()),
        });
        let threads = usize::try_from(max_clients)
            .unwrap_or(usize::MAX)
            .saturating_add(SPARE_THREADS);
        let server = http::Server::start(listener, dispatcher, threads, stop)?;
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

/// The routes, as the HTTP/1.1 layer sees them.
struct Dispatcher {
    ctx: Arc<ServeContext>,
    permits: Arc<Permits>,
    /// Read-only connections to the index between requests.
    dbs: Mutex<Vec<Db>>,
}

impl http::Handler for Dispatcher {
    fn handle(&self, rq: &http::Request, body: Vec<u8>, peer: SocketAddr) -> Reply {
        let db = self.dbs.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut w = Worker {
            ctx: self.ctx.clone(),
            permits: self.permits.clone(),
            index: Index::new(db),
        };
        let reply =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| w.route(rq, body, peer)))
                .unwrap_or_else(|_| {
                    w.index.forget();
                    Reply::error(500, "internal error")
                });
        if let Some(db) = std::mem::take(&mut w.index).into_inner() {
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
    index: Index,
}

impl Worker {
    fn route(&mut self, rq: &http::Request, body: Vec<u8>, peer: SocketAddr) -> Reply {
        let Some(method) = Method::parse(&rq.method) else {
            let mut r = Reply::error(405, "method not allowed");
            r.headers
                .push(("Allow", "GET, HEAD, POST, PUT, DELETE".into()));
            return r;
        };
        let (segments, query) = match split_target(&rq.target) {
            Ok(t) => t,
            Err(r) => return r,
        };
        // The request owns its segments; the route borrows these.
        let path = segments.clone();
        let route = Route::of(&path);
        let allowed = route.methods();
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
        let mut req = Req::new(
            segments,
            query,
            method,
            body,
            Some(peer),
            &permits,
            &rq.headers,
        );
        if let Some(auth) = &self.ctx.auth {
            if let Err(r) = gate(auth.as_ref(), &mut req) {
                return r;
            }
        }
        match route {
            Route::Page | Route::PageFile(_) => {
                web::answer(&req).unwrap_or_else(|| self.hooks(&mut req))
            }
            Route::Status => api::status::status(&self.ctx, &mut self.index, req.identity.as_ref()),
            Route::Metrics => api::status::metrics(&self.ctx, &mut self.index),
            Route::CameraFile {
                camera,
                file: CameraFile::Recordings,
            } => {
                if !self.known_camera(camera) {
                    return unknown_camera(camera);
                }
                api::recordings::recordings(&self.ctx, &mut self.index, camera, &req)
            }
            Route::CameraFile { camera, .. } if route.is_long() => {
                if !self.known_camera(camera) {
                    return unknown_camera(camera);
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

    fn known_camera(&mut self, name: &str) -> bool {
        if self.ctx.running.has_camera(name) {
            return true;
        }
        // A camera removed from the config keeps its recordings until the
        // ring reclaims them.
        self.index
            .get(&self.ctx.db_path)
            .and_then(|d| d.streams().map_err(|e| e.to_string()))
            .is_ok_and(|s| s.iter().any(|s| s.camera == name))
    }
}
