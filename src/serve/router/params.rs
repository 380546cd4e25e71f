//! What the video routes share: picking apart `/api/cameras/{name}/{file}`
//! and its `stream`, `start` and `end` parameters, and finding the stream
//! in the index. Each helper answers bad input with the reply to send.

use super::paths::{CameraFile, Route};
use super::request::Req;
use crate::config::StreamKind;
use crate::serve::http::Reply;
use crate::store::db::Db;
use std::path::Path;

/// `Some(camera)` when the request is `/api/cameras/{camera}/{file}`.
pub fn camera_route<'r>(req: &'r Req<'_>, file: CameraFile<'_>) -> Option<&'r str> {
    match Route::of(&req.segments) {
        Route::CameraFile { camera, file: f } if f == file => Some(camera),
        _ => None,
    }
}

/// The answer for a camera neither running nor recorded.
pub fn unknown_camera(name: &str) -> Reply {
    Reply::error(404, &format!("no camera named {name:?}"))
}

/// The `stream` parameter: `main` when absent.
pub fn stream_param(req: &Req<'_>) -> Result<StreamKind, Reply> {
    match req.param("stream") {
        None | Some("main") => Ok(StreamKind::Main),
        Some("sub") => Ok(StreamKind::Sub),
        Some(other) => Err(Reply::error(
            400,
            &format!("stream: {other:?} is not a stream: use main or sub"),
        )),
    }
}

/// The `start` and `end` parameters (SPEC.md time formats), end after start.
pub fn time_range(req: &Req<'_>) -> Result<(i64, i64), Reply> {
    let time = |name: &str| -> Result<i64, Reply> {
        let v = req
            .param(name)
            .ok_or_else(|| Reply::error(400, &format!("{name}: missing")))?;
        crate::time::parse_90k(v).map_err(|e| Reply::error(400, &format!("{name}: {e}")))
    };
    match (time("start")?, time("end")?) {
        (s, e) if e > s => Ok((s, e)),
        _ => Err(Reply::error(400, "end: must be after start")),
    }
}

/// Opens the index read-only and finds the recorded stream's id.
pub fn recorded_stream(db_path: &Path, camera: &str, kind: StreamKind) -> Result<(Db, u32), Reply> {
    let db = Db::open_read_only(db_path).map_err(|e| Reply::error(503, &format!("index: {e}")))?;
    let id = db
        .streams()
        .map_err(|e| Reply::error(500, &format!("index: {e}")))?
        .into_iter()
        .find(|s| s.camera == camera && s.kind == kind.name())
        .map(|s| s.id);
    match id {
        Some(id) => Ok((db, id)),
        None => Err(Reply::error(
            404,
            &format!("no recordings of {camera}/{}", kind.name()),
        )),
    }
}
