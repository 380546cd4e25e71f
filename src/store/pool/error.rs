//! Why the pool files cannot be opened, and why a checked read failed.

use crate::store::format::FormatError;
use std::fmt;
use std::io;
use std::path::PathBuf;

/// Why the pool files cannot be opened.
#[derive(Debug)]
pub enum PoolError {
    /// The configuration asks for something impossible.
    Config(String),
    Missing {
        path: PathBuf,
    },
    Io {
        path: PathBuf,
        err: io::Error,
    },
    /// The header is not a valid pool header.
    Header {
        path: PathBuf,
        err: FormatError,
    },
    /// The pool belongs to another install.
    OtherInstall {
        path: PathBuf,
        found: [u8; 16],
        expected: [u8; 16],
    },
    WrongIndex {
        path: PathBuf,
        found: u32,
        expected: u32,
    },
    WrongSize {
        path: PathBuf,
        found: u64,
        expected: u64,
    },
}

impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use crate::store::format::uuid_hex;
        match self {
            PoolError::Config(why) => f.write_str(why),
            PoolError::Missing { path } => write!(
                f,
                "{}: pool file missing (was `pools` raised without running `vigil init`, \
                 or the file deleted?)",
                path.display()
            ),
            PoolError::Io { path, err } => write!(f, "{}: {err}", path.display()),
            PoolError::Header { path, err } => {
                write!(f, "{}: not a usable pool file: {err}", path.display())
            }
            PoolError::OtherInstall {
                path,
                found,
                expected,
            } => write!(
                f,
                "{}: belongs to another Vigil install (uuid {}, this storage's meta says {}); \
                 it was copied or restored from elsewhere",
                path.display(),
                uuid_hex(found),
                uuid_hex(expected)
            ),
            PoolError::WrongIndex {
                path,
                found,
                expected,
            } => write!(
                f,
                "{}: header says it is pool {found}, but its name says pool {expected}; \
                 pool files were renamed",
                path.display()
            ),
            PoolError::WrongSize {
                path,
                found,
                expected,
            } => write!(
                f,
                "{}: is {found} bytes but the configuration asks for {expected} \
                 (pool_size_mb); pool files cannot be resized in place",
                path.display()
            ),
        }
    }
}

impl std::error::Error for PoolError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PoolError::Io { err, .. } => Some(err),
            PoolError::Header { err, .. } => Some(err),
            _ => None,
        }
    }
}

impl From<PoolError> for io::Error {
    fn from(e: PoolError) -> io::Error {
        let kind = match &e {
            PoolError::Io { err, .. } => err.kind(),
            PoolError::Missing { .. } => io::ErrorKind::NotFound,
            PoolError::Config(_) => io::ErrorKind::InvalidInput,
            _ => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, e.to_string())
    }
}

/// Why a checked read failed.
#[derive(Debug)]
pub enum ReadError {
    /// The writer entered the pool again (new generation) before or during
    /// the read: the bytes are no longer the ones the index described.
    Overwritten,
    Io(io::Error),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Overwritten => f.write_str("the recording was overwritten (disk reclaimed)"),
            ReadError::Io(e) => write!(f, "pool read failed: {e}"),
        }
    }
}

impl std::error::Error for ReadError {}
