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

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{
    params, Connection, ErrorCode, OpenFlags, OptionalExtension, Row, Transaction,
    TransactionBehavior,
};

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

/// `PRAGMA application_id` of a Vigil index ("VGLX"), so that another
/// program's SQLite file is told apart from ours.
const APPLICATION_ID: i32 = 0x5647_4c58;

/// How long a statement waits for another connection's lock. Only
/// checkpoints and a second writer (refused by the `meta` flock) take one.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The WAL is truncated to this after a checkpoint, so the database's disk
/// use stays bounded (invariant 7) even after a burst.
const JOURNAL_SIZE_LIMIT: i64 = 8 << 20;

/// A migration takes the schema from version `i` to `i + 1` (its index in
/// the list), inside the transaction that then sets `user_version`.
type Migration = fn(&Transaction<'_>) -> Result<(), DbError>;

/// Every migration in order; `MIGRATIONS.len()` is `SCHEMA_VERSION`.
const MIGRATIONS: &[Migration] = &[migrate_0_to_1, migrate_1_to_2];

/// Schema version 1, as docs/storage.md lists it.
fn migrate_0_to_1(tx: &Transaction<'_>) -> Result<(), DbError> {
    tx.execute_batch(
        r#"
        create table meta (
          id integer primary key check (id = 1),
          uuid blob not null check (length(uuid) = 16),
          created_90k integer not null
        );
        create table open (
          id integer primary key,
          started_90k integer not null,
          vigil_version text not null
        );
        create table stream (
          id integer primary key,
          camera text not null,
          kind text not null,
          unique (camera, kind)
        );
        create table sample_entry (
          id integer primary key,
          codec text not null,
          width integer not null,
          height integer not null,
          rfc6381 text not null,
          decoder_config blob not null,
          unique (codec, width, height, rfc6381, decoder_config)
        );
        -- autoincrement: an id is never reused, even after the newest
        -- recording is deleted, so a stale record in a pool can never be
        -- mistaken for a later recording's.
        create table recording (
          id integer primary key autoincrement,
          stream_id integer not null references stream (id),
          open_id integer not null references open (id),
          start_90k integer not null,
          duration_90k integer not null,
          media_start_90k integer not null,
          frames integer not null,
          key_frames integer not null,
          bytes integer not null,
          sample_entry_id integer not null references sample_entry (id),
          video_index blob not null,
          flags integer not null
        );
        create index recording_stream_start on recording (stream_id, start_90k);
        create table record (
          recording_id integer not null references recording (id) on delete cascade,
          sequence integer not null,
          pool integer not null,
          "offset" integer not null,
          header_len integer not null,
          payload_len integer not null,
          frames integer not null,
          generation integer not null,
          primary key (recording_id, sequence)
        ) without rowid;
        create index record_pool on record (pool);
        create table pool (
          idx integer primary key,
          generation integer not null
        );
        create table writer (
          id integer primary key check (id = 1),
          pool integer not null,
          "offset" integer not null,
          generation integer not null
        );
        "#,
    )?;
    Ok(())
}

/// Schema version 2: users of the HTTP API and their login sessions
/// (`users` has the queries). A session is stored by the BLAKE2b-256 hash
/// of its token, so a copy of the database opens no live session; it goes
/// with its user (deleted, or password changed).
fn migrate_1_to_2(tx: &Transaction<'_>) -> Result<(), DbError> {
    tx.execute_batch(
        r#"
        create table users (
          name text primary key,
          role text not null check (role in ('admin', 'viewer')),
          password text not null,
          created_s integer not null,
          changed_s integer not null
        );
        create table sessions (
          token_hash blob primary key check (length(token_hash) = 32),
          user text not null references users (name) on delete cascade,
          created_s integer not null,
          expires_s integer not null
        );
        create index sessions_user on sessions (user);
        "#,
    )?;
    Ok(())
}

/// A sample entry: what a decoder needs to know before the first frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SampleEntry {
    pub codec: String,
    pub width: u16,
    pub height: u16,
    pub rfc6381: String,
    pub decoder_config: Vec<u8>,
}

/// The committed write position: everything before `offset` in `pool`
/// (entered with `generation`) is indexed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriterPosition {
    pub pool: u32,
    pub offset: u64,
    pub generation: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RecordingRow {
    pub id: i64,
    pub stream_id: u32,
    pub open_id: i64,
    pub start_90k: i64,
    pub duration_90k: i64,
    pub media_start_90k: i64,
    pub frames: u32,
    pub key_frames: u32,
    pub bytes: u64,
    pub sample_entry_id: i64,
    pub video_index: Vec<u8>,
    pub flags: u32,
}

impl RecordingRow {
    /// The end of the recording, wall clock, 90 kHz (saturating: a value
    /// read back from a corrupt row must not panic).
    pub fn end_90k(&self) -> i64 {
        self.start_90k.saturating_add(self.duration_90k)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordRow {
    pub recording_id: i64,
    pub sequence: u32,
    pub pool: u32,
    pub offset: u64,
    pub header_len: u32,
    pub payload_len: u32,
    pub frames: u32,
    pub generation: u64,
}

/// What the writer commits every sync interval, in one transaction.
#[derive(Clone, Debug, PartialEq)]
pub struct CommitBatch {
    /// The full current state of every recording that changed.
    pub recordings: Vec<RecordingRow>,
    /// Records written since the last commit.
    pub records: Vec<RecordRow>,
    pub writer: WriterPosition,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReclaimStats {
    pub recordings: u64,
    pub bytes: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamRow {
    pub id: u32,
    pub camera: String,
    pub kind: String,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub recordings: u64,
    pub bytes: u64,
    pub oldest_start_90k: Option<i64>,
    pub newest_end_90k: Option<i64>,
}

#[derive(Debug)]
pub enum DbError {
    /// The file could not be opened (missing, permissions, directory).
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    /// The file is not an SQLite database at all.
    NotADatabase {
        path: PathBuf,
    },
    /// An SQLite database, but not a Vigil index.
    NotVigil {
        path: PathBuf,
        why: String,
    },
    /// `create` found a database already there.
    Exists {
        path: PathBuf,
    },
    /// Written by a newer Vigil than this one.
    TooNew {
        path: PathBuf,
        found: i64,
        known: u32,
    },
    /// An older schema, which a read-only open cannot migrate.
    NeedsUpgrade {
        path: PathBuf,
        found: i64,
        known: u32,
    },
    /// A write through a read-only connection.
    ReadOnly,
    /// A value read back is out of range or of the wrong type.
    Corrupt(String),
    /// A value given to store does not fit the schema.
    Invalid(String),
    NotFound(String),
    /// A record row differs from the one already indexed at its place.
    Conflict(String),
    Sqlite(rusqlite::Error),
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbError::Open { path, source } => {
                write!(
                    f,
                    "cannot open the storage database {}: {source}",
                    path.display()
                )
            }
            DbError::NotADatabase { path } => write!(
                f,
                "{} is not an SQLite database (does storage.db name the right file?)",
                path.display()
            ),
            DbError::NotVigil { path, why } => write!(
                f,
                "{} is an SQLite database but not a Vigil storage index: {why}",
                path.display()
            ),
            DbError::Exists { path } => write!(
                f,
                "{} already holds a database; refusing to initialise over it",
                path.display()
            ),
            DbError::TooNew { path, found, known } => write!(
                f,
                "{} has schema version {found}, newer than this Vigil knows ({known}): \
                 run a newer Vigil, or restore the database from before the upgrade",
                path.display()
            ),
            DbError::NeedsUpgrade { path, found, known } => write!(
                f,
                "{} has schema version {found} and this Vigil needs {known}: \
                 start `vigil run` once to upgrade it before opening it read-only",
                path.display()
            ),
            DbError::ReadOnly => write!(f, "the storage database is open read-only"),
            DbError::Corrupt(m) => write!(f, "the storage database is corrupt: {m}"),
            DbError::Invalid(m) => write!(f, "cannot store in the index: {m}"),
            DbError::NotFound(m) => write!(f, "not in the storage database: {m}"),
            DbError::Conflict(m) => write!(f, "storage index conflict: {m}"),
            DbError::Sqlite(e) => write!(f, "storage database error: {e}"),
        }
    }
}

impl std::error::Error for DbError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DbError::Open { source, .. } => Some(source),
            DbError::Sqlite(e) => Some(e),
            _ => None,
        }
    }
}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::Error as E;
        match &e {
            E::FromSqlConversionFailure(..)
            | E::IntegralValueOutOfRange(..)
            | E::InvalidColumnType(..) => DbError::Corrupt(e.to_string()),
            _ => match e.sqlite_error_code() {
                Some(ErrorCode::NotADatabase) | Some(ErrorCode::DatabaseCorrupt) => {
                    DbError::Corrupt(e.to_string())
                }
                Some(ErrorCode::ReadOnly) => DbError::ReadOnly,
                _ => DbError::Sqlite(e),
            },
        }
    }
}

/// Classifies an error met while opening `path`: there a "not a database"
/// answer means the wrong file rather than a damaged one.
fn at_open(path: &Path, e: rusqlite::Error) -> DbError {
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => DbError::NotADatabase {
            path: path.to_owned(),
        },
        Some(ErrorCode::CannotOpen) | Some(ErrorCode::PermissionDenied) => DbError::Open {
            path: path.to_owned(),
            source: e,
        },
        _ => DbError::from(e),
    }
}

fn corrupt(what: &str, v: impl fmt::Display) -> DbError {
    DbError::Corrupt(format!("{what} = {v} is out of range"))
}

fn get_u32(row: &Row<'_>, i: usize, what: &str) -> Result<u32, DbError> {
    let v: i64 = row.get(i)?;
    u32::try_from(v).map_err(|_| corrupt(what, v))
}

fn get_u64(row: &Row<'_>, i: usize, what: &str) -> Result<u64, DbError> {
    let v: i64 = row.get(i)?;
    u64::try_from(v).map_err(|_| corrupt(what, v))
}

fn get_u16(row: &Row<'_>, i: usize, what: &str) -> Result<u16, DbError> {
    let v: i64 = row.get(i)?;
    u16::try_from(v).map_err(|_| corrupt(what, v))
}

/// A `u64` to store: SQLite integers are signed 64-bit.
fn store_u64(v: u64, what: &str) -> Result<i64, DbError> {
    i64::try_from(v).map_err(|_| DbError::Invalid(format!("{what} = {v} exceeds 2^63-1")))
}

fn now_90k() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => {
            let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 90_000);
            secs.saturating_mul(90_000)
                .saturating_add(i64::from(d.subsec_nanos() / 100_000 * 9))
        }
        Err(_) => 0,
    }
}

const RECORDING_COLUMNS: &str = "id, stream_id, open_id, start_90k, duration_90k, \
     media_start_90k, frames, key_frames, bytes, sample_entry_id, video_index, flags";

fn recording_from_row(row: &Row<'_>) -> Result<RecordingRow, DbError> {
    Ok(RecordingRow {
        id: row.get(0)?,
        stream_id: get_u32(row, 1, "recording.stream_id")?,
        open_id: row.get(2)?,
        start_90k: row.get(3)?,
        duration_90k: row.get(4)?,
        media_start_90k: row.get(5)?,
        frames: get_u32(row, 6, "recording.frames")?,
        key_frames: get_u32(row, 7, "recording.key_frames")?,
        bytes: get_u64(row, 8, "recording.bytes")?,
        sample_entry_id: row.get(9)?,
        video_index: row.get(10)?,
        flags: get_u32(row, 11, "recording.flags")?,
    })
}

const RECORD_COLUMNS: &str =
    r#"recording_id, sequence, pool, "offset", header_len, payload_len, frames, generation"#;

fn record_from_row(row: &Row<'_>) -> Result<RecordRow, DbError> {
    let pool = get_u32(row, 2, "record.pool")?;
    if pool >= MAX_POOLS {
        return Err(corrupt("record.pool", pool));
    }
    Ok(RecordRow {
        recording_id: row.get(0)?,
        sequence: get_u32(row, 1, "record.sequence")?,
        pool,
        offset: get_u64(row, 3, "record.offset")?,
        header_len: get_u32(row, 4, "record.header_len")?,
        payload_len: get_u32(row, 5, "record.payload_len")?,
        frames: get_u32(row, 6, "record.frames")?,
        generation: get_u64(row, 7, "record.generation")?,
    })
}

fn summary_from_row(row: &Row<'_>) -> Result<Summary, DbError> {
    Ok(Summary {
        recordings: get_u64(row, 0, "count of recordings")?,
        bytes: get_u64(row, 1, "sum of recording bytes")?,
        oldest_start_90k: row.get(2)?,
        newest_end_90k: row.get(3)?,
    })
}

const UPSERT_RECORDING: &str = "insert into recording (id, stream_id, open_id, start_90k, \
     duration_90k, media_start_90k, frames, key_frames, bytes, sample_entry_id, video_index, \
     flags) values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) \
     on conflict (id) do update set stream_id = excluded.stream_id, \
     open_id = excluded.open_id, start_90k = excluded.start_90k, \
     duration_90k = excluded.duration_90k, media_start_90k = excluded.media_start_90k, \
     frames = excluded.frames, key_frames = excluded.key_frames, bytes = excluded.bytes, \
     sample_entry_id = excluded.sample_entry_id, video_index = excluded.video_index, \
     flags = excluded.flags";

const INSERT_RECORD: &str = r#"insert into record (recording_id, sequence, pool, "offset",
     header_len, payload_len, frames, generation) values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
     on conflict (recording_id, sequence) do nothing"#;

const SET_WRITER: &str = r#"insert into writer (id, pool, "offset", generation)
     values (1, ?1, ?2, ?3) on conflict (id) do update set pool = excluded.pool,
     "offset" = excluded."offset", generation = excluded.generation"#;

/// The index, through one connection.
pub struct Db {
    conn: Connection,
    uuid: [u8; 16],
}

impl Db {
    /// Creates the index at `path` for the install `uuid`. Refuses a file
    /// that already holds a database (tables or a schema version).
    pub fn create(path: &Path, uuid: &[u8; 16]) -> Result<Db, DbError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = Connection::open_with_flags(path, flags).map_err(|e| at_open(path, e))?;
        configure(&conn).map_err(|e| at_open(path, e))?;
        let (version, _) = header(&conn).map_err(|e| at_open(path, e))?;
        let objects: i64 = conn
            .query_row("select count(*) from sqlite_master", [], |r| r.get(0))
            .map_err(|e| at_open(path, e))?;
        if version != 0 || objects != 0 {
            return Err(DbError::Exists {
                path: path.to_owned(),
            });
        }
        // Small pages: each commit changes a few small rows (the writer
        // position, growing recordings, new records), and WAL writes (and
        // checkpoints) whole pages, so the page size sets the database's
        // share of the bytes written. Only settable before the first table.
        conn.pragma_update(None, "page_size", 1024)?;
        set_wal(&conn)?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Exclusive)?;
        for m in MIGRATIONS {
            m(&tx)?;
        }
        tx.execute(
            "insert into meta (id, uuid, created_90k) values (1, ?1, ?2)",
            params![&uuid[..], now_90k()],
        )?;
        tx.pragma_update(None, "application_id", APPLICATION_ID)?;
        tx.pragma_update(None, "user_version", MIGRATIONS.len() as i64)?;
        tx.commit()?;
        Ok(Db { conn, uuid: *uuid })
    }

    /// Opens an existing index for writing, running any migrations.
    pub fn open(path: &Path) -> Result<Db, DbError> {
        Self::open_with(path, MIGRATIONS)
    }

    fn open_with(path: &Path, migrations: &[Migration]) -> Result<Db, DbError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = Connection::open_with_flags(path, flags).map_err(|e| at_open(path, e))?;
        configure(&conn).map_err(|e| at_open(path, e))?;
        check_header(&conn, path, migrations.len())?;
        set_wal(&conn)?;
        migrate(&mut conn, path, migrations)?;
        let uuid = read_uuid(&conn, path)?;
        Ok(Db { conn, uuid })
    }

    /// Opens the index for reading only, alongside a running writer.
    pub fn open_read_only(path: &Path) -> Result<Db, DbError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(|e| at_open(path, e))?;
        configure(&conn).map_err(|e| at_open(path, e))?;
        let version = check_header(&conn, path, MIGRATIONS.len())?;
        if version < i64::from(SCHEMA_VERSION) {
            return Err(DbError::NeedsUpgrade {
                path: path.to_owned(),
                found: version,
                known: SCHEMA_VERSION,
            });
        }
        let uuid = read_uuid(&conn, path)?;
        Ok(Db { conn, uuid })
    }

    /// The install uuid the index was created with.
    pub fn uuid(&self) -> [u8; 16] {
        self.uuid
    }

    /// Records that a process opened the index for writing; recordings it
    /// makes name the returned id.
    pub fn begin_open(&mut self, vigil_version: &str, now_90k: i64) -> Result<i64, DbError> {
        self.conn.execute(
            "insert into open (started_90k, vigil_version) values (?1, ?2)",
            params![now_90k, vigil_version],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// The id of stream (`camera`, `kind`), created if new.
    pub fn stream_id(&mut self, camera: &str, kind: &str) -> Result<u32, DbError> {
        let sel = "select id from stream where camera = ?1 and kind = ?2";
        let id: Option<i64> = self
            .conn
            .query_row(sel, params![camera, kind], |r| r.get(0))
            .optional()?;
        let id = match id {
            Some(id) => id,
            None => {
                self.conn.execute(
                    "insert into stream (camera, kind) values (?1, ?2)",
                    params![camera, kind],
                )?;
                self.conn.last_insert_rowid()
            }
        };
        u32::try_from(id).map_err(|_| corrupt("stream.id", id))
    }

    /// Makes sure stream `id` exists as (camera, kind): for an index being
    /// rebuilt from the pools, whose records name streams by id.
    pub fn ensure_stream(&mut self, id: u32, camera: &str, kind: &str) -> Result<(), DbError> {
        self.conn.execute(
            "insert into stream (id, camera, kind) values (?1, ?2, ?3) on conflict do nothing",
            params![i64::from(id), camera, kind],
        )?;
        let found: Option<i64> = self
            .conn
            .query_row(
                "select id from stream where camera = ?1 and kind = ?2",
                params![camera, kind],
                |r| r.get(0),
            )
            .optional()?;
        if found != Some(i64::from(id)) {
            return Err(DbError::Conflict(format!(
                "stream {camera}/{kind} has id {found:?} in the index but {id} in the pools"
            )));
        }
        Ok(())
    }

    /// The id of a sample entry equal to `e` in every field, created if new.
    pub fn sample_entry_id(&mut self, e: &SampleEntry) -> Result<i64, DbError> {
        let values = params![
            e.codec,
            i64::from(e.width),
            i64::from(e.height),
            e.rfc6381,
            e.decoder_config
        ];
        let id: Option<i64> = self
            .conn
            .query_row(
                "select id from sample_entry where codec = ?1 and width = ?2 and height = ?3 \
                 and rfc6381 = ?4 and decoder_config = ?5",
                values,
                |r| r.get(0),
            )
            .optional()?;
        if let Some(id) = id {
            return Ok(id);
        }
        self.conn.execute(
            "insert into sample_entry (codec, width, height, rfc6381, decoder_config) \
             values (?1, ?2, ?3, ?4, ?5)",
            values,
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    pub fn sample_entry(&self, id: i64) -> Result<SampleEntry, DbError> {
        let mut stmt = self.conn.prepare(
            "select codec, width, height, rfc6381, decoder_config from sample_entry where id = ?1",
        )?;
        let mut rows = stmt.query([id])?;
        let Some(row) = rows.next()? else {
            return Err(DbError::NotFound(format!("sample entry {id}")));
        };
        Ok(SampleEntry {
            codec: row.get(0)?,
            width: get_u16(row, 1, "sample_entry.width")?,
            height: get_u16(row, 2, "sample_entry.height")?,
            rfc6381: row.get(3)?,
            decoder_config: row.get(4)?,
        })
    }

    /// The committed write position; `None` before the first commit.
    pub fn writer_position(&self) -> Result<Option<WriterPosition>, DbError> {
        let mut stmt = self
            .conn
            .prepare(r#"select pool, "offset", generation from writer where id = 1"#)?;
        let mut rows = stmt.query([])?;
        let Some(row) = rows.next()? else {
            return Ok(None);
        };
        let pool = get_u32(row, 0, "writer.pool")?;
        if pool >= MAX_POOLS {
            return Err(corrupt("writer.pool", pool));
        }
        Ok(Some(WriterPosition {
            pool,
            offset: get_u64(row, 1, "writer.offset")?,
            generation: get_u64(row, 2, "writer.generation")?,
        }))
    }

    /// Each pool's generation, indexed by pool; a pool never entered is 0.
    /// The vector is as long as the highest pool listed plus one.
    pub fn pool_generations(&self) -> Result<Vec<u64>, DbError> {
        let mut stmt = self
            .conn
            .prepare("select idx, generation from pool order by idx")?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let idx = get_u32(row, 0, "pool.idx")?;
            if idx >= MAX_POOLS {
                return Err(corrupt("pool.idx", idx));
            }
            let generation = get_u64(row, 1, "pool.generation")?;
            // idx < 2^20, so this is a bounded allocation.
            let i = idx as usize;
            if out.len() <= i {
                out.resize(i + 1, 0);
            }
            out[i] = generation;
        }
        Ok(out)
    }

    /// The id for the next new recording: above every id ever used (the
    /// `autoincrement` sequence remembers deleted ones), at least 1.
    pub fn next_recording_id(&self) -> Result<i64, DbError> {
        let max: Option<i64> = self
            .conn
            .query_row("select max(id) from recording", [], |r| r.get(0))?;
        let seq: Option<i64> = self
            .conn
            .query_row(
                "select seq from sqlite_sequence where name = 'recording'",
                [],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        let top = max.unwrap_or(0).max(seq.unwrap_or(0)).max(0);
        top.checked_add(1)
            .ok_or_else(|| corrupt("highest recording id", top))
    }

    /// Commits what the writer has made durable since its last commit: the
    /// current state of each changed recording, the new records, and the
    /// new writer position, in one transaction. Replaying a batch is
    /// harmless: recordings are overwritten with the same values, and a
    /// record identical to the one indexed at its (recording, sequence) is
    /// skipped; a different one there is a `Conflict`.
    pub fn commit(&mut self, batch: &CommitBatch) -> Result<(), DbError> {
        // Validate everything before touching the database.
        let writer = (
            i64::from(batch.writer.pool),
            store_u64(batch.writer.offset, "writer.offset")?,
            store_u64(batch.writer.generation, "writer.generation")?,
        );
        for r in &batch.recordings {
            check_recording(r)?;
        }
        for r in &batch.records {
            check_record(r)?;
        }
        // Statements are prepared once per transaction and reused for every
        // row (rusqlite's statement cache is not compiled in: it would pull
        // in a hash map crate for four statements every two seconds).
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut up = tx.prepare(UPSERT_RECORDING)?;
            for r in &batch.recordings {
                up.execute(params![
                    r.id,
                    i64::from(r.stream_id),
                    r.open_id,
                    r.start_90k,
                    r.duration_90k,
                    r.media_start_90k,
                    i64::from(r.frames),
                    i64::from(r.key_frames),
                    store_u64(r.bytes, "recording.bytes")?,
                    r.sample_entry_id,
                    r.video_index,
                    i64::from(r.flags),
                ])?;
            }
            if !batch.records.is_empty() {
                let mut ins = tx.prepare(INSERT_RECORD)?;
                for r in &batch.records {
                    let inserted = ins.execute(params![
                        r.recording_id,
                        i64::from(r.sequence),
                        i64::from(r.pool),
                        store_u64(r.offset, "record.offset")?,
                        i64::from(r.header_len),
                        i64::from(r.payload_len),
                        i64::from(r.frames),
                        store_u64(r.generation, "record.generation")?,
                    ])?;
                    if inserted == 0 {
                        let existing = record_at(&tx, r.recording_id, r.sequence)?;
                        if existing.as_ref() != Some(r) {
                            return Err(DbError::Conflict(format!(
                                "record {} of recording {} is already indexed as {:?}, \
                                 not {:?}",
                                r.sequence, r.recording_id, existing, r
                            )));
                        }
                    }
                }
            }
            tx.execute(SET_WRITER, params![writer.0, writer.1, writer.2])?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Before the writer enters `pool` again: deletes every recording with
    /// a record in it (and all of each one's records, wherever they lie)
    /// and sets the pool's generation, in one transaction that is durable
    /// when this returns (see the module comment).
    pub fn reclaim_pool(
        &mut self,
        pool: u32,
        new_generation: u64,
    ) -> Result<ReclaimStats, DbError> {
        if pool >= MAX_POOLS {
            return Err(DbError::Invalid(format!(
                "pool index {pool} >= {MAX_POOLS}"
            )));
        }
        let generation = store_u64(new_generation, "pool generation")?;
        self.conn.pragma_update(None, "synchronous", "FULL")?;
        let r = self.reclaim_tx(pool, generation);
        let restore = self.conn.pragma_update(None, "synchronous", "NORMAL");
        let stats = r?;
        restore?;
        Ok(stats)
    }

    fn reclaim_tx(&mut self, pool: u32, generation: i64) -> Result<ReclaimStats, DbError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let stats = {
            let mut stmt = tx.prepare(
                "select count(*), coalesce(sum(bytes), 0) from recording \
                 where id in (select recording_id from record where pool = ?1)",
            )?;
            let mut rows = stmt.query([i64::from(pool)])?;
            match rows.next()? {
                Some(row) => ReclaimStats {
                    recordings: get_u64(row, 0, "count of recordings")?,
                    bytes: get_u64(row, 1, "sum of recording bytes")?,
                },
                None => ReclaimStats::default(),
            }
        };
        // The records go with their recordings (on delete cascade).
        tx.execute(
            "delete from recording where id in (select recording_id from record where pool = ?1)",
            [i64::from(pool)],
        )?;
        tx.execute(
            "insert into pool (idx, generation) values (?1, ?2) \
             on conflict (idx) do update set generation = excluded.generation",
            params![i64::from(pool), generation],
        )?;
        tx.commit()?;
        Ok(stats)
    }

    /// Records a pool's generation as its header says it (index rebuild:
    /// the pools are the truth there).
    pub fn set_pool_generation(&mut self, pool: u32, generation: u64) -> Result<(), DbError> {
        if pool >= MAX_POOLS {
            return Err(DbError::Invalid(format!(
                "pool index {pool} >= {MAX_POOLS}"
            )));
        }
        let generation = store_u64(generation, "pool generation")?;
        self.conn.execute(
            "insert into pool (idx, generation) values (?1, ?2) \
             on conflict (idx) do update set generation = excluded.generation",
            params![i64::from(pool), generation],
        )?;
        Ok(())
    }

    /// Clears the open flag of every recording (end of recovery or of a
    /// clean shutdown); returns how many were open.
    pub fn close_open_recordings(&mut self) -> Result<usize, DbError> {
        let n = self.conn.execute(
            "update recording set flags = flags & ~?1 where flags & ?1 != 0",
            [i64::from(RECORDING_OPEN)],
        )?;
        Ok(n)
    }

    pub fn streams(&self) -> Result<Vec<StreamRow>, DbError> {
        let mut stmt = self
            .conn
            .prepare("select id, camera, kind from stream order by id")?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(StreamRow {
                id: get_u32(row, 0, "stream.id")?,
                camera: row.get(1)?,
                kind: row.get(2)?,
            });
        }
        Ok(out)
    }

    /// The recordings of `stream_id` overlapping [`start_90k`, `end_90k`),
    /// by start time. A recording of zero duration counts as the instant it
    /// starts. Relies on invariant 6 (a stream's recordings do not overlap):
    /// of those starting at or before `start_90k`, only the latest is looked
    /// at, which keeps the query an index range scan however long the
    /// history.
    pub fn recordings(
        &self,
        stream_id: u32,
        start_90k: i64,
        end_90k: i64,
    ) -> Result<Vec<RecordingRow>, DbError> {
        if end_90k <= start_90k {
            return Ok(Vec::new());
        }
        let sql = format!(
            "select {RECORDING_COLUMNS} from recording \
             where stream_id = ?1 and start_90k < ?3 \
             and start_90k >= (select coalesce(max(start_90k), ?2) from recording \
                               where stream_id = ?1 and start_90k <= ?2) \
             and (start_90k >= ?2 or start_90k + duration_90k > ?2) \
             order by start_90k, id"
        );
        self.query_recordings(&sql, params![i64::from(stream_id), start_90k, end_90k])
    }

    /// One recording by id.
    pub fn recording(&self, id: i64) -> Result<Option<RecordingRow>, DbError> {
        let sql = format!("select {RECORDING_COLUMNS} from recording where id = ?1");
        Ok(self.query_recordings(&sql, [id])?.pop())
    }

    /// Every recording, by stream then start (for `check`).
    pub fn all_recordings(&self) -> Result<Vec<RecordingRow>, DbError> {
        let sql =
            format!("select {RECORDING_COLUMNS} from recording order by stream_id, start_90k, id");
        self.query_recordings(&sql, [])
    }

    fn query_recordings(
        &self,
        sql: &str,
        p: impl rusqlite::Params,
    ) -> Result<Vec<RecordingRow>, DbError> {
        let mut stmt = self.conn.prepare(sql)?;
        let mut rows = stmt.query(p)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(recording_from_row(row)?);
        }
        Ok(out)
    }

    /// The records of a recording, by sequence.
    pub fn records(&self, recording_id: i64) -> Result<Vec<RecordRow>, DbError> {
        let sql = format!(
            "select {RECORD_COLUMNS} from record where recording_id = ?1 order by sequence"
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let mut rows = stmt.query([recording_id])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(record_from_row(row)?);
        }
        Ok(out)
    }

    /// Totals over every recording.
    pub fn summary(&self) -> Result<Summary, DbError> {
        let mut stmt = self.conn.prepare(
            "select count(*), coalesce(sum(bytes), 0), min(start_90k), \
             max(start_90k + duration_90k) from recording",
        )?;
        let mut rows = stmt.query([])?;
        match rows.next()? {
            Some(row) => summary_from_row(row),
            None => Ok(Summary::default()),
        }
    }

    /// Totals over one stream's recordings.
    pub fn stream_summary(&self, stream_id: u32) -> Result<Summary, DbError> {
        let mut stmt = self.conn.prepare(
            "select count(*), coalesce(sum(bytes), 0), min(start_90k), \
             max(start_90k + duration_90k) from recording where stream_id = ?1",
        )?;
        let mut rows = stmt.query([i64::from(stream_id)])?;
        match rows.next()? {
            Some(row) => summary_from_row(row),
            None => Ok(Summary::default()),
        }
    }

    /// Deletes one recording and its records (`check --repair`).
    pub fn delete_recording(&mut self, id: i64) -> Result<(), DbError> {
        let n = self
            .conn
            .execute("delete from recording where id = ?1", [id])?;
        if n == 0 {
            return Err(DbError::NotFound(format!("recording {id}")));
        }
        Ok(())
    }
}

/// Per-connection settings. Reading the header here is also the first
/// access to the file, where a foreign file shows itself.
fn configure(conn: &Connection) -> Result<(), rusqlite::Error> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "foreign_keys", true)?;
    header(conn)?;
    Ok(())
}

/// (`user_version`, `application_id`).
fn header(conn: &Connection) -> Result<(i64, i64), rusqlite::Error> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let app: i64 = conn.pragma_query_value(None, "application_id", |r| r.get(0))?;
    Ok((version, app))
}

/// Checks that `conn` holds a Vigil index no newer than `known` versions;
/// returns its version.
fn check_header(conn: &Connection, path: &Path, known: usize) -> Result<i64, DbError> {
    let (version, app) = header(conn).map_err(|e| at_open(path, e))?;
    let known = u32::try_from(known).unwrap_or(u32::MAX);
    if version == 0 {
        return Err(DbError::NotVigil {
            path: path.to_owned(),
            why: "it has no schema version (empty, or never initialised: run `vigil init`)"
                .to_owned(),
        });
    }
    if app != i64::from(APPLICATION_ID) {
        return Err(DbError::NotVigil {
            path: path.to_owned(),
            why: format!("its application id is {app:#x}"),
        });
    }
    if version > i64::from(known) || version < 0 {
        return Err(DbError::TooNew {
            path: path.to_owned(),
            found: version,
            known,
        });
    }
    Ok(version)
}

/// WAL mode (persistent in the file) and the sync level that goes with it.
fn set_wal(conn: &Connection) -> Result<(), DbError> {
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "wal", |r| r.get(0))?;
    if mode.eq_ignore_ascii_case("wal") {
        conn.pragma_update(None, "synchronous", "NORMAL")?;
    } else {
        // Some filesystems cannot hold WAL's shared memory. In a rollback
        // journal NORMAL can corrupt the database on power loss, so use
        // FULL; readers then wait for the writer instead of running along.
        log::warn!(
            "storage database: WAL unavailable (journal mode {mode}); using synchronous=FULL"
        );
        conn.pragma_update(None, "synchronous", "FULL")?;
    }
    conn.pragma_update(None, "journal_size_limit", JOURNAL_SIZE_LIMIT)?;
    Ok(())
}

/// Runs the migrations from the database's version to the last, in one
/// transaction with the version update: a crash leaves either the old
/// schema or the new one.
fn migrate(conn: &mut Connection, path: &Path, migrations: &[Migration]) -> Result<(), DbError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Exclusive)?;
    // Read again under the lock: another process may have migrated.
    let version = check_header(&tx, path, migrations.len())?;
    let from = usize::try_from(version).unwrap_or(usize::MAX);
    let Some(todo) = migrations.get(from..) else {
        return Ok(());
    };
    if todo.is_empty() {
        return Ok(());
    }
    for (i, m) in todo.iter().enumerate() {
        log::info!(
            "storage database: migrating schema {} -> {}",
            from + i,
            from + i + 1
        );
        m(&tx)?;
    }
    tx.pragma_update(None, "user_version", migrations.len() as i64)?;
    tx.commit()?;
    Ok(())
}

fn read_uuid(conn: &Connection, path: &Path) -> Result<[u8; 16], DbError> {
    let blob: Option<Vec<u8>> = conn
        .query_row("select uuid from meta where id = 1", [], |r| r.get(0))
        .optional()
        .map_err(|e| match e.sqlite_error_code() {
            // "no such table" and the like: some other schema.
            Some(ErrorCode::Unknown) => DbError::NotVigil {
                path: path.to_owned(),
                why: format!("{e}"),
            },
            _ => at_open(path, e),
        })?;
    let Some(blob) = blob else {
        return Err(DbError::Corrupt("the meta row is missing".to_owned()));
    };
    <[u8; 16]>::try_from(blob.as_slice())
        .map_err(|_| DbError::Corrupt(format!("meta.uuid is {} bytes, not 16", blob.len())))
}

fn record_at(
    tx: &Transaction<'_>,
    recording_id: i64,
    sequence: u32,
) -> Result<Option<RecordRow>, DbError> {
    let sql =
        format!("select {RECORD_COLUMNS} from record where recording_id = ?1 and sequence = ?2");
    let mut stmt = tx.prepare(&sql)?;
    let mut rows = stmt.query(params![recording_id, i64::from(sequence)])?;
    match rows.next()? {
        Some(row) => Ok(Some(record_from_row(row)?)),
        None => Ok(None),
    }
}

fn check_recording(r: &RecordingRow) -> Result<(), DbError> {
    store_u64(r.bytes, "recording.bytes")?;
    if r.duration_90k < 0 || r.start_90k.checked_add(r.duration_90k).is_none() {
        return Err(DbError::Invalid(format!(
            "recording {}: start {} and duration {} do not make a time span",
            r.id, r.start_90k, r.duration_90k
        )));
    }
    if r.id <= 0 {
        return Err(DbError::Invalid(format!("recording id {}", r.id)));
    }
    Ok(())
}

fn check_record(r: &RecordRow) -> Result<(), DbError> {
    if r.pool >= MAX_POOLS {
        return Err(DbError::Invalid(format!(
            "record in pool {} >= {MAX_POOLS}",
            r.pool
        )));
    }
    store_u64(r.offset, "record.offset")?;
    store_u64(r.generation, "record.generation")?;
    Ok(())
}

pub mod users;

#[cfg(test)]
mod tests;
