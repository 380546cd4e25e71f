//! Range-checked conversions between SQLite's signed 64-bit integers and
//! the index's fields: a value out of range read back is corruption, never
//! a panic or a silently wrapped value.

use rusqlite::Row;

use super::error::{corrupt, DbError};

pub(super) fn get_u32(row: &Row<'_>, i: usize, what: &str) -> Result<u32, DbError> {
    let v: i64 = row.get(i)?;
    u32::try_from(v).map_err(|_| corrupt(what, v))
}

pub(super) fn get_u64(row: &Row<'_>, i: usize, what: &str) -> Result<u64, DbError> {
    let v: i64 = row.get(i)?;
    u64::try_from(v).map_err(|_| corrupt(what, v))
}

pub(super) fn get_u16(row: &Row<'_>, i: usize, what: &str) -> Result<u16, DbError> {
    let v: i64 = row.get(i)?;
    u16::try_from(v).map_err(|_| corrupt(what, v))
}

/// A `u64` to store: SQLite integers are signed 64-bit.
pub(super) fn store_u64(v: u64, what: &str) -> Result<i64, DbError> {
    i64::try_from(v).map_err(|_| DbError::Invalid(format!("{what} = {v} exceeds 2^63-1")))
}
