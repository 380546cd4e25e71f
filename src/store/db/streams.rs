//! The `stream` table: one row per (camera, kind), named by id in
//! recordings and records.

use rusqlite::{params, OptionalExtension};

use super::convert::get_u32;
use super::error::corrupt;
use super::{Db, DbError};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamRow {
    pub id: u32,
    pub camera: String,
    pub kind: String,
}

impl Db {
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
}
