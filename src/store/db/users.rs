//! Users of the HTTP API and their login sessions, in the index (schema
//! version 2). `vigil user` and the HTTP server both change these rows,
//! the server while the writer thread commits recordings, so every change
//! is one short `IMMEDIATE` transaction (the busy timeout covers a writer
//! commit in progress), and the rules that span rows (never lose the last
//! admin) are checked inside it.
//!
//! Passwords are stored as the PHC strings `auth::password` makes; this
//! module never sees a password itself. Sessions are stored by the hash of
//! their token, never the token.

use super::{Db, DbError};
use rusqlite::{params, OptionalExtension, TransactionBehavior};
use std::fmt;

/// At most this many users: the list answers stay small, and nothing
/// grows the table without bound.
pub const MAX_USERS: u64 = 1000;

/// One user, as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct UserRow {
    pub name: String,
    /// `admin` or `viewer` (the schema allows nothing else).
    pub role: String,
    /// The password's PHC string.
    pub password: String,
}

/// Leaves the password hash out, so that a `{:?}` in a log cannot carry it.
impl fmt::Debug for UserRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserRow")
            .field("name", &self.name)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// Why a change to the users was refused.
#[derive(Debug)]
pub enum UserError {
    NotFound(String),
    Exists(String),
    /// The change would leave no admin.
    LastAdmin(String),
    /// [`MAX_USERS`] already.
    TooMany,
    Db(DbError),
}

impl fmt::Display for UserError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UserError::NotFound(n) => write!(f, "no user named {n:?}"),
            UserError::Exists(n) => write!(f, "a user named {n:?} already exists"),
            UserError::LastAdmin(n) => write!(
                f,
                "{n:?} is the last admin: add another admin first, or nobody could manage users"
            ),
            UserError::TooMany => write!(f, "too many users (at most {MAX_USERS})"),
            UserError::Db(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for UserError {}

impl From<DbError> for UserError {
    fn from(e: DbError) -> Self {
        UserError::Db(e)
    }
}

impl From<rusqlite::Error> for UserError {
    fn from(e: rusqlite::Error) -> Self {
        UserError::Db(DbError::from(e))
    }
}

const ADMIN: &str = "admin";

impl Db {
    /// Every user, by name.
    pub fn users(&self) -> Result<Vec<UserRow>, DbError> {
        let mut stmt = self
            .conn
            .prepare("select name, role, password from users order by name limit ?1")?;
        let mut rows = stmt.query([MAX_USERS as i64])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(UserRow {
                name: r.get(0)?,
                role: r.get(1)?,
                password: r.get(2)?,
            });
        }
        Ok(out)
    }

    /// One user.
    pub fn user(&self, name: &str) -> Result<Option<UserRow>, DbError> {
        Ok(self
            .conn
            .query_row(
                "select name, role, password from users where name = ?1",
                [name],
                |r| {
                    Ok(UserRow {
                        name: r.get(0)?,
                        role: r.get(1)?,
                        password: r.get(2)?,
                    })
                },
            )
            .optional()?)
    }

    /// How many users there are with role `role`.
    pub fn count_users(&self, role: Option<&str>) -> Result<u64, DbError> {
        let n: i64 = match role {
            Some(role) => {
                self.conn
                    .query_row("select count(*) from users where role = ?1", [role], |r| {
                        r.get(0)
                    })?
            }
            None => self
                .conn
                .query_row("select count(*) from users", [], |r| r.get(0))?,
        };
        u64::try_from(n).map_err(|_| DbError::Corrupt(format!("count of users = {n}")))
    }

    /// Adds a user. `password` is the PHC string.
    pub fn add_user(
        &mut self,
        name: &str,
        role: &str,
        password: &str,
        now_s: i64,
    ) -> Result<(), UserError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let exists: Option<i64> = tx
            .query_row("select 1 from users where name = ?1", [name], |r| r.get(0))
            .optional()?;
        if exists.is_some() {
            return Err(UserError::Exists(name.to_owned()));
        }
        let n: i64 = tx.query_row("select count(*) from users", [], |r| r.get(0))?;
        if n >= MAX_USERS as i64 {
            return Err(UserError::TooMany);
        }
        tx.execute(
            "insert into users (name, role, password, created_s, changed_s) \
             values (?1, ?2, ?3, ?4, ?4)",
            params![name, role, password, now_s],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Sets a user's password (a PHC string) and ends their sessions,
    /// except `keep` (the session of a user changing their own password
    /// from the page).
    pub fn set_user_password(
        &mut self,
        name: &str,
        password: &str,
        now_s: i64,
        keep: Option<&[u8; 32]>,
    ) -> Result<(), UserError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "update users set password = ?2, changed_s = ?3 where name = ?1",
            params![name, password, now_s],
        )?;
        if n == 0 {
            return Err(UserError::NotFound(name.to_owned()));
        }
        tx.execute(
            "delete from sessions where user = ?1 and token_hash is not ?2",
            params![name, keep.map(|k| &k[..])],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Sets a user's role; refuses to demote the last admin.
    pub fn set_user_role(&mut self, name: &str, role: &str, now_s: i64) -> Result<(), UserError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let old: Option<String> = tx
            .query_row("select role from users where name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()?;
        let Some(old) = old else {
            return Err(UserError::NotFound(name.to_owned()));
        };
        if old == role {
            return Ok(());
        }
        if old == ADMIN && other_admins(&tx, name)? == 0 {
            return Err(UserError::LastAdmin(name.to_owned()));
        }
        tx.execute(
            "update users set role = ?2, changed_s = ?3 where name = ?1",
            params![name, role, now_s],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Deletes a user and their sessions; refuses the last admin.
    pub fn delete_user(&mut self, name: &str) -> Result<(), UserError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let role: Option<String> = tx
            .query_row("select role from users where name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()?;
        let Some(role) = role else {
            return Err(UserError::NotFound(name.to_owned()));
        };
        if role == ADMIN && other_admins(&tx, name)? == 0 {
            return Err(UserError::LastAdmin(name.to_owned()));
        }
        // Sessions go by `on delete cascade`.
        tx.execute("delete from users where name = ?1", [name])?;
        tx.commit()?;
        Ok(())
    }

    /// Stores a new session of `user` until `expires_s`. Expired sessions
    /// go first, and the user's oldest beyond `max_per_user`, so scripts
    /// that log in without logging out cannot grow the table.
    pub fn add_session(
        &mut self,
        token_hash: &[u8; 32],
        user: &str,
        now_s: i64,
        expires_s: i64,
        max_per_user: u32,
    ) -> Result<(), UserError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute("delete from sessions where expires_s <= ?1", [now_s])?;
        tx.execute(
            "delete from sessions where user = ?1 and token_hash in \
             (select token_hash from sessions where user = ?1 \
              order by created_s desc limit -1 offset ?2)",
            params![user, i64::from(max_per_user.saturating_sub(1))],
        )?;
        let n = tx.execute(
            "insert into sessions (token_hash, user, created_s, expires_s) \
             select ?1, name, ?3, ?4 from users where name = ?2",
            params![&token_hash[..], user, now_s, expires_s],
        )?;
        if n == 0 {
            // Deleted between the password check and now.
            return Err(UserError::NotFound(user.to_owned()));
        }
        tx.commit()?;
        Ok(())
    }

    /// The user (name, role) of a live session.
    pub fn session_user(
        &self,
        token_hash: &[u8; 32],
        now_s: i64,
    ) -> Result<Option<(String, String)>, DbError> {
        Ok(self
            .conn
            .query_row(
                "select u.name, u.role from sessions s join users u on u.name = s.user \
                 where s.token_hash = ?1 and s.expires_s > ?2",
                params![&token_hash[..], now_s],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    /// Ends a session; whether it existed.
    pub fn delete_session(&mut self, token_hash: &[u8; 32]) -> Result<bool, DbError> {
        let n = self.conn.execute(
            "delete from sessions where token_hash = ?1",
            [&token_hash[..]],
        )?;
        Ok(n > 0)
    }

    /// How many sessions `user` has (live or not yet purged).
    pub fn count_sessions(&self, user: &str) -> Result<u64, DbError> {
        let n: i64 = self.conn.query_row(
            "select count(*) from sessions where user = ?1",
            [user],
            |r| r.get(0),
        )?;
        u64::try_from(n).map_err(|_| DbError::Corrupt(format!("count of sessions = {n}")))
    }
}

fn other_admins(tx: &rusqlite::Transaction<'_>, name: &str) -> Result<i64, rusqlite::Error> {
    tx.query_row(
        "select count(*) from users where role = ?1 and name != ?2",
        params![ADMIN, name],
        |r| r.get(0),
    )
}
