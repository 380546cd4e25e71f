//! Storage: pool files written as a ring, records that describe
//! themselves, and the SQLite index of recordings.
// STUB: filled by the storage briefs.

pub mod db;
pub mod format;
pub mod pool;
