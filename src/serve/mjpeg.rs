//! `mjpeg` (multipart/x-mixed-replace) and `snapshot.jpg` from a stream's
//! ring. (STUB: comes with the playback work.)

use super::http::RouteHook;
use crate::daemon::recorder::LiveSource;
use std::sync::Arc;

/// The `mjpeg` and `snapshot.jpg` routes.
pub fn hook(_live: Arc<Vec<LiveSource>>) -> RouteHook {
    Arc::new(|_req| None)
}
