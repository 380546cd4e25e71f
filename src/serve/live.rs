//! `live.mp4`: fragmented MP4 from a stream's ring, chunked, for Media
//! Source Extensions. (STUB: comes with the playback work.)

use super::http::RouteHook;
use crate::daemon::recorder::LiveSource;
use std::sync::Arc;

/// The `live.mp4` route.
pub fn hook(_live: Arc<Vec<LiveSource>>) -> RouteHook {
    Arc::new(|_req| None)
}
