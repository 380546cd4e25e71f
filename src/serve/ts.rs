//! MPEG-TS (ISO/IEC 13818-1): `export.ts` and `vigil export` to `.ts`.
//! (STUB: comes with the playback work.)

use super::http::RouteHook;
use crate::store::pool::PoolReader;
use std::path::PathBuf;

/// The `export.ts` route: `GET|HEAD /api/cameras/{name}/export.ts?stream=&start=&end=`.
pub fn hook(_db_path: PathBuf, _pools: PoolReader) -> RouteHook {
    std::sync::Arc::new(|_req| None)
}
