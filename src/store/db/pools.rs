//! Pool generations and the writer's committed position (`pool` and
//! `writer` tables), and reclaiming a pool before the writer enters it
//! again (invariant 4).

use rusqlite::{params, TransactionBehavior};

use super::convert::{get_u32, get_u64, store_u64};
use super::error::corrupt;
use super::{Db, DbError, MAX_POOLS};

/// The committed write position: everything before `offset` in `pool`
/// (entered with `generation`) is indexed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriterPosition {
    pub pool: u32,
    pub offset: u64,
    pub generation: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReclaimStats {
    pub recordings: u64,
    pub bytes: u64,
}
impl Db {
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
}
