//! HLS (RFC 8216): `live.m3u8`, `vod.m3u8` and the fMP4 segments they list.
//! (STUB: comes with the playback work.)

use super::http::RouteHook;
use crate::daemon::recorder::LiveSource;
use crate::store::pool::PoolReader;
use std::path::PathBuf;
use std::sync::Arc;

/// The HLS routes.
pub fn hook(_db_path: PathBuf, _pools: PoolReader, _live: Arc<Vec<LiveSource>>) -> RouteHook {
    Arc::new(|_req| None)
}
