//! Storage: pool files written as a ring, records that describe
//! themselves, and the SQLite index of recordings. The design and its
//! invariants are in `docs/storage.md`.
//!
//! - `format`: bytes on disk (pool headers, records, parameters, `meta`);
//! - `pool`: the pool files (pre-allocation, positioned I/O, scanning);
//! - `db` and `video_index`: the SQLite index;
//! - `writer`: the writer thread; `recover`: start-up recovery;
//! - `open`: creating, locking and opening an install; `check`: fsck.

pub mod check;
pub mod db;
pub mod format;
pub mod open;
pub mod pool;
pub mod recover;
pub mod timeline;
pub mod video_index;
pub mod writer;
