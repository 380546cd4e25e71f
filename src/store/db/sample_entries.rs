//! The `sample_entry` table: the decoder parameters recordings share.

use rusqlite::{params, OptionalExtension};

use super::convert::get_u16;
use super::{Db, DbError};

/// A sample entry: what a decoder needs to know before the first frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SampleEntry {
    pub codec: String,
    pub width: u16,
    pub height: u16,
    pub rfc6381: String,
    pub decoder_config: Vec<u8>,
}

impl Db {
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
}
