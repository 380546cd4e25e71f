//! The tables (docs/storage.md lists them) and the migrations that make
//! them, one per schema version.

use rusqlite::{Connection, Transaction, TransactionBehavior};
use std::path::Path;

use super::connect::check_header;
use super::DbError;

/// `PRAGMA application_id` of a Vigil index ("VGLX"), so that another
/// program's SQLite file is told apart from ours.
pub(super) const APPLICATION_ID: i32 = 0x5647_4c58;

/// A migration takes the schema from version `i` to `i + 1` (its index in
/// the list), inside the transaction that then sets `user_version`.
pub(super) type Migration = fn(&Transaction<'_>) -> Result<(), DbError>;

/// Every migration in order; `MIGRATIONS.len()` is `SCHEMA_VERSION`.
pub(super) const MIGRATIONS: &[Migration] = &[migrate_0_to_1, migrate_1_to_2];

/// Schema version 1, as docs/storage.md lists it.
pub(super) fn migrate_0_to_1(tx: &Transaction<'_>) -> Result<(), DbError> {
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
pub(super) fn migrate_1_to_2(tx: &Transaction<'_>) -> Result<(), DbError> {
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

/// Runs the migrations from the database's version to the last, in one
/// transaction with the version update: a crash leaves either the old
/// schema or the new one.
pub(super) fn migrate(
    conn: &mut Connection,
    path: &Path,
    migrations: &[Migration],
) -> Result<(), DbError> {
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
