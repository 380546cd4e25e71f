//! The SQLite index of recordings (`storage.db`): which streams exist, the
//! recordings of each (time span, sample index, sample entry) and where
//! their records lie in the pool files, each pool's generation, and the
//! writer's committed position. See docs/storage.md for the invariants.
//!
//! Durability. The database runs in WAL mode with `synchronous=NORMAL`:
//! a commit is appended to the WAL without an fsync, so after a power cut
//! the last commits may be lost, but the database is never corrupt and
//! what remains is a prefix of the commits. That is safe here because the
//! writer position is committed in the same transaction as the rows it
//! covers, and the pool bytes were fdatasync'ed before the commit: a lost
//! commit leaves an older writer position, and start-up recovery rescans
//! the pool from there and re-indexes the same, still valid, records.
//! The one exception is reclaiming a pool: once the writer overwrites the
//! pool, a rolled-back reclaim would list bytes that are gone, so
//! `reclaim_pool` commits with `synchronous=FULL` (which also makes every
//! earlier commit durable). Reclaims are rare: one per pool filled.
//!
//! Readers (`open_read_only`: status, list, check while `vigil run`
//! writes) see committed snapshots concurrently with the writer, as WAL
//! allows. Every integer read back is range-checked: a corrupt or foreign
//! file gives `DbError`, never a panic or a silently wrapped value.
//!
//! Layout, one concern a file: `connect` (opening, pragmas, the file's
//! header), `schema` (the tables and their migrations), `streams`,
//! `sample_entries`, `recordings` (rows and queries), `commit` (the
//! writer's periodic transaction), `pools` (pool generations, the writer
//! position, reclaim), `users` (HTTP users and sessions); `error` and
//! `convert` are shared by all of them.

mod commit;
mod connect;
mod convert;
mod error;
mod pools;
mod recordings;
mod sample_entries;
mod schema;
mod streams;
pub mod users;

pub use commit::CommitBatch;
pub use error::DbError;
pub use pools::{ReclaimStats, WriterPosition};
pub use recordings::{RecordRow, RecordingRow, Summary};
pub use sample_entries::SampleEntry;
pub use streams::StreamRow;

use rusqlite::Connection;

/// Recording flag: still growing (its writer has not closed it).
pub const RECORDING_OPEN: u32 = 1;
/// Recording flag: frames were dropped inside it.
pub const RECORDING_GAP: u32 = 2;
/// Recording flag: it ended at a discontinuity (camera reconnect, clock
/// jump, parameter change).
pub const RECORDING_DISCONTINUITY: u32 = 4;

/// The schema version this build writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: u32 = 2;

/// The largest pool count the index accepts (as the config's limit); a
/// larger pool index read back is corruption.
pub const MAX_POOLS: u32 = 1 << 20;

/// The index, through one connection.
pub struct Db {
    conn: Connection,
    uuid: [u8; 16],
}

impl Db {
    /// The install uuid the index was created with.
    pub fn uuid(&self) -> [u8; 16] {
        self.uuid
    }
}

#[cfg(test)]
mod tests;
