//! Opening the index: creating it, opening it for writing (with
//! migrations) or reading, the per-connection pragmas (WAL, sync level,
//! busy timeout) and the checks that the file is a Vigil index of a known
//! version.

use std::path::Path;
use std::time::Duration;

use rusqlite::{params, Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior};

use super::error::at_open;
use super::schema::{migrate, Migration, APPLICATION_ID, MIGRATIONS};
use super::{Db, DbError, SCHEMA_VERSION};
use crate::time::now_90k;

/// How long a statement waits for another connection's lock. Only
/// checkpoints and a second writer (refused by the `meta` flock) take one.
pub(super) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The WAL is truncated to this after a checkpoint, so the database's disk
/// use stays bounded (invariant 7) even after a burst.
pub(super) const JOURNAL_SIZE_LIMIT: i64 = 8 << 20;

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

    pub(super) fn open_with(path: &Path, migrations: &[Migration]) -> Result<Db, DbError> {
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

    /// Records that a process opened the index for writing; recordings it
    /// makes name the returned id.
    pub fn begin_open(&mut self, vigil_version: &str, now_90k: i64) -> Result<i64, DbError> {
        self.conn.execute(
            "insert into open (started_90k, vigil_version) values (?1, ?2)",
            params![now_90k, vigil_version],
        )?;
        Ok(self.conn.last_insert_rowid())
    }
}

/// Per-connection settings. Reading the header here is also the first
/// access to the file, where a foreign file shows itself.
pub(super) fn configure(conn: &Connection) -> Result<(), rusqlite::Error> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "foreign_keys", true)?;
    header(conn)?;
    Ok(())
}

/// (`user_version`, `application_id`).
pub(super) fn header(conn: &Connection) -> Result<(i64, i64), rusqlite::Error> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let app: i64 = conn.pragma_query_value(None, "application_id", |r| r.get(0))?;
    Ok((version, app))
}

/// Checks that `conn` holds a Vigil index no newer than `known` versions;
/// returns its version.
pub(super) fn check_header(conn: &Connection, path: &Path, known: usize) -> Result<i64, DbError> {
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
pub(super) fn set_wal(conn: &Connection) -> Result<(), DbError> {
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

pub(super) fn read_uuid(conn: &Connection, path: &Path) -> Result<[u8; 16], DbError> {
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
