//! The index's error type, and how SQLite's errors map onto it.

use std::fmt;
use std::path::{Path, PathBuf};

use rusqlite::ErrorCode;

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
pub(super) fn at_open(path: &Path, e: rusqlite::Error) -> DbError {
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

pub(super) fn corrupt(what: &str, v: impl fmt::Display) -> DbError {
    DbError::Corrupt(format!("{what} = {v} is out of range"))
}
