//! Users, roles and authentication of the HTTP API (SPEC.md, "HTTP API";
//! README, "Users and authentication").
//!
//! Users live in the index (`store::db::users`) with an Argon2id hash of
//! their password (`password`). A browser logs in once (`POST /api/login`)
//! and then carries a session cookie (`sessions`); scripts send HTTP Basic
//! credentials with each request. Failed passwords are rate-limited per
//! client address (`limit`). [`Auth`] knows nothing of HTTP: the HTTP
//! server's gate identifies requests with it (`serve::router::identify`),
//! and the user management behind `/api/users` (`serve::api::users`)
//! calls it.
//!
//! Checking a password costs about a second of CPU and 16 MiB on the
//! target, so a script polling with Basic credentials would be expensive:
//! a successful Basic check is remembered for [`BASIC_CACHE_TTL`] as a
//! keyed BLAKE2b hash of (user, password) under a key made at start, tied
//! to the stored hash it was checked against (a password change ends it).
//! The key never leaves memory, so the cache is of no use on disk.

pub mod limit;
pub mod password;
pub mod prompt;
pub mod sessions;

use crate::store::db::users::{UserError, UserRow};
use crate::store::db::{Db, DbError};
use blake2::{Blake2b256, Digest};
use std::io::Read as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a successful Basic check is remembered.
pub const BASIC_CACHE_TTL: Duration = Duration::from_secs(10 * 60);
/// Remembered Basic checks at most.
const BASIC_CACHE_ENTRIES: usize = 32;
/// Longest `Authorization` header looked at.
const MAX_AUTHORIZATION: usize = 1024;
/// The challenge sent with a 401 to clients that may answer it.
pub const CHALLENGE: &str = "Basic realm=\"vigil\", charset=\"UTF-8\"";

/// Longest user name.
pub const MAX_NAME: usize = 32;

/// Checks a user name: 1 to 32 of `a-z 0-9 . _ -`, starting with a letter
/// or digit. A little looser than camera names (the dot, for `jane.doe`);
/// no capitals, so that `Admin` and `admin` cannot be two users; and no
/// `:` (it ends the name in HTTP Basic credentials). Every such name is
/// safe in a URL path as it is.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok_char = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit() || b"._-".contains(&c);
    match name.as_bytes().first() {
        None => Err("must not be empty".to_owned()),
        _ if name.len() > MAX_NAME => Err(format!("at most {MAX_NAME} characters")),
        Some(c) if !c.is_ascii_lowercase() && !c.is_ascii_digit() => {
            Err("must start with a lowercase letter or a digit".to_owned())
        }
        _ if !name.bytes().all(ok_char) => {
            Err("only lowercase letters, digits, '.', '_' and '-' are allowed".to_owned())
        }
        _ => Ok(()),
    }
}

/// What a user may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Everything.
    Admin,
    /// Read only: watch, list, download.
    Viewer,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Viewer => "viewer",
        }
    }
}

/// A role by its name.
pub fn parse_role(s: &str) -> Option<Role> {
    match s {
        "admin" => Some(Role::Admin),
        "viewer" => Some(Role::Viewer),
        _ => None,
    }
}

/// Seconds since the Unix epoch.
pub fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Why a password was not accepted.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// Unknown user or wrong password (the two are not told apart).
    Wrong,
    /// Too many failures from this address: wait this long.
    Locked(Duration),
    /// Too many password checks at once.
    Busy,
    /// The user database could not be read.
    Unavailable(String),
}

/// A remembered successful Basic check.
struct Cached {
    digest: [u8; 32],
    /// The stored hash it was checked against.
    phc: String,
    at: Instant,
}

/// Users, sessions and the failure counts, for one database.
pub struct Auth {
    db_path: PathBuf,
    /// One read-write connection, opened on first use and after an error;
    /// held only for single queries, never while hashing.
    db: Mutex<Option<Db>>,
    limiter: limit::Limiter,
    session_ttl: Duration,
    basic_key: [u8; 32],
    basic: Mutex<Vec<Cached>>,
}

impl Auth {
    pub fn new(db_path: PathBuf) -> Auth {
        let mut basic_key = [0u8; 32];
        if let Err(e) =
            std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut basic_key))
        {
            // Without a secret key the cache would be a plain fast hash of
            // passwords: do without it.
            log::warn!("auth: /dev/urandom: {e}; HTTP Basic checks are not cached");
        }
        Auth {
            db_path,
            db: Mutex::new(None),
            limiter: limit::Limiter::default(),
            session_ttl: sessions::SESSION_TTL,
            basic_key,
            basic: Mutex::new(Vec::new()),
        }
    }

    /// [`Auth::change`] for queries whose only errors are the database's.
    fn with_db<T>(&self, f: impl FnOnce(&mut Db) -> Result<T, DbError>) -> Result<T, String> {
        self.change(|db| f(db).map_err(UserError::Db))
            .map_err(|e| e.to_string())
    }

    /// Runs `f` on the database connection, (re)opening it as needed; a
    /// database error closes it, as the connection may be what broke.
    fn change<T>(&self, f: impl FnOnce(&mut Db) -> Result<T, UserError>) -> Result<T, UserError> {
        let mut g = self.db.lock().unwrap_or_else(|e| e.into_inner());
        let mut db = match g.take() {
            Some(db) => db,
            None => Db::open(&self.db_path)?,
        };
        let r = f(&mut db);
        if !matches!(r, Err(UserError::Db(_))) {
            *g = Some(db);
        }
        r
    }

    /// How many users, and how many admins.
    pub fn counts(&self) -> Result<(u64, u64), String> {
        self.with_db(|db| Ok((db.count_users(None)?, db.count_users(Some("admin"))?)))
    }

    /// Checks a password for `user` from `peer`, under the rate limit.
    pub fn check_password(
        &self,
        peer: Option<IpAddr>,
        user: &str,
        password: &str,
    ) -> Result<Role, Refused> {
        let ip = peer.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        self.limiter
            .check(ip, Instant::now())
            .map_err(Refused::Locked)?;
        let row = if check_name(user).is_ok() {
            self.with_db(|db| db.user(user))
                .map_err(Refused::Unavailable)?
        } else {
            None
        };
        let verdict = match &row {
            Some(row) => password::verify(password, &row.password).or_else(|e| match e {
                password::Error::BadHash(why) => {
                    log::error!("auth: user {:?}: {why}; set a new password", row.name);
                    Ok(false)
                }
                e => Err(e),
            }),
            None => password::verify_nobody(password).map(|()| false),
        };
        let ok = match verdict {
            Ok(ok) => ok,
            Err(password::Error::Busy) => return Err(Refused::Busy),
            Err(e) => return Err(Refused::Unavailable(e.to_string())),
        };
        match row {
            Some(row) if ok => parse_role(&row.role).ok_or_else(|| {
                Refused::Unavailable(format!("user {:?} has an unknown role", row.name))
            }),
            row => {
                let wait = self.limiter.fail(ip, Instant::now());
                // The name only when it is a user's: a password typed
                // into the name field must not reach the log.
                match row {
                    Some(r) => log::warn!("auth: wrong password for user {:?} from {ip}", r.name),
                    None => log::warn!("auth: failed login for an unknown user from {ip}"),
                }
                if let Some(w) = wait {
                    log::warn!(
                        "auth: {ip} has failed too often; refusing its passwords for {} s",
                        w.as_secs()
                    );
                }
                Err(Refused::Wrong)
            }
        }
    }

    /// Logs `user` in: checks the password and starts a session. Returns
    /// the role and the `Set-Cookie` value.
    pub fn login(
        &self,
        peer: Option<IpAddr>,
        user: &str,
        password: &str,
    ) -> Result<(Role, String), Refused> {
        let role = self.check_password(peer, user, password)?;
        let token = sessions::new_token()
            .map_err(|e| Refused::Unavailable(format!("/dev/urandom: {e}")))?;
        let now = now_s();
        let ttl = i64::try_from(self.session_ttl.as_secs()).unwrap_or(i64::MAX);
        let hash = sessions::token_hash(&token);
        match self.change(|db| {
            db.add_session(
                &hash,
                user,
                now,
                now.saturating_add(ttl),
                sessions::MAX_SESSIONS_PER_USER,
            )
        }) {
            Ok(()) => {}
            Err(UserError::NotFound(_)) => return Err(Refused::Wrong),
            Err(e) => return Err(Refused::Unavailable(e.to_string())),
        }
        log::info!(
            "auth: {user} logged in from {}",
            peer.map_or_else(|| "?".to_owned(), |p| p.to_string())
        );
        Ok((role, sessions::set_cookie(&token, self.session_ttl)))
    }

    /// Ends the session of `token`, if it is one.
    pub fn logout(&self, token: &str) -> Result<bool, String> {
        let hash = sessions::token_hash(token);
        self.with_db(|db| db.delete_session(&hash))
    }

    /// The user of a live session.
    pub fn session(&self, token: &str) -> Result<Option<(String, Role)>, String> {
        let hash = sessions::token_hash(token);
        let found = self.with_db(|db| db.session_user(&hash, now_s()))?;
        Ok(found.and_then(|(name, role)| parse_role(&role).map(|r| (name, r))))
    }

    fn basic_digest(&self, user: &str, password: &str) -> [u8; 32] {
        let mut h = Blake2b256::new();
        h.update(self.basic_key);
        h.update(user.as_bytes());
        h.update([0u8]);
        h.update(password.as_bytes());
        h.finalize().into()
    }

    /// HTTP Basic credentials: from the cache when they were checked
    /// lately against the same stored hash, else by a full check.
    pub fn basic(&self, peer: Option<IpAddr>, user: &str, password: &str) -> Result<Role, Refused> {
        let ip = peer.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        // A locked-out address is refused even with a remembered password.
        self.limiter
            .check(ip, Instant::now())
            .map_err(Refused::Locked)?;
        let caching = self.basic_key != [0u8; 32] && check_name(user).is_ok();
        if caching {
            let row = self
                .with_db(|db| db.user(user))
                .map_err(Refused::Unavailable)?;
            if let Some(row) = row {
                let d = self.basic_digest(user, password);
                let hit = {
                    let c = self.basic.lock().unwrap_or_else(|e| e.into_inner());
                    c.iter().any(|e| {
                        e.digest == d && e.phc == row.password && e.at.elapsed() < BASIC_CACHE_TTL
                    })
                };
                if hit {
                    return parse_role(&row.role)
                        .ok_or_else(|| Refused::Unavailable("unknown role".to_owned()));
                }
            }
        }
        let role = self.check_password(peer, user, password)?;
        if caching {
            if let Ok(Some(row)) = self.with_db(|db| db.user(user)) {
                let mut c = self.basic.lock().unwrap_or_else(|e| e.into_inner());
                c.retain(|e| e.at.elapsed() < BASIC_CACHE_TTL);
                if c.len() >= BASIC_CACHE_ENTRIES {
                    c.remove(0);
                }
                c.push(Cached {
                    digest: self.basic_digest(user, password),
                    phc: row.password,
                    at: Instant::now(),
                });
            }
        }
        Ok(role)
    }

    /// Every user, by name.
    pub fn users(&self) -> Result<Vec<UserRow>, String> {
        self.with_db(|db| db.users())
    }

    /// One user.
    pub fn user(&self, name: &str) -> Result<Option<UserRow>, String> {
        self.with_db(|db| db.user(name))
    }

    /// Adds a user (name and password already checked).
    pub fn add_user(&self, name: &str, role: Role, password: &str) -> Result<(), AddError> {
        let phc = password::hash(password).map_err(AddError::Hash)?;
        self.change(|db| db.add_user(name, role.name(), &phc, now_s()))
            .map_err(AddError::User)
    }

    /// Changes a user's password (ending their other sessions than
    /// `keep_session`) and/or role.
    pub fn update_user(
        &self,
        name: &str,
        password: Option<&str>,
        role: Option<Role>,
        keep_session: Option<&str>,
    ) -> Result<(), AddError> {
        // Hash first: a refusal (busy) must leave nothing half changed.
        let phc = password
            .map(password::hash)
            .transpose()
            .map_err(AddError::Hash)?;
        // The role next: refusing to demote the last admin must leave the
        // password unchanged.
        if let Some(role) = role {
            self.change(|db| db.set_user_role(name, role.name(), now_s()))
                .map_err(AddError::User)?;
        }
        match phc {
            Some(phc) => {
                let keep = keep_session.map(sessions::token_hash);
                self.change(|db| db.set_user_password(name, &phc, now_s(), keep.as_ref()))
                    .map_err(AddError::User)
            }
            None if role.is_none() => self
                .change(|db| match db.user(name)? {
                    Some(_) => Ok(()),
                    None => Err(UserError::NotFound(name.to_owned())),
                })
                .map_err(AddError::User),
            None => Ok(()),
        }
    }

    /// Deletes a user and their sessions.
    pub fn delete_user(&self, name: &str) -> Result<(), UserError> {
        self.change(|db| db.delete_user(name))
    }
}

/// Why adding or changing a user failed.
#[derive(Debug)]
pub enum AddError {
    Hash(password::Error),
    User(UserError),
}

impl std::fmt::Display for AddError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AddError::Hash(e) => write!(f, "{e}"),
            AddError::User(e) => write!(f, "{e}"),
        }
    }
}

/// `user:password` from an `Authorization: Basic` value.
pub fn parse_basic(value: &str) -> Option<(String, String)> {
    use base64::Engine as _;
    if value.len() > MAX_AUTHORIZATION {
        return None;
    }
    let (scheme, rest) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names() {
        for ok in [
            "admin",
            "a",
            "jane.doe",
            "cam_viewer-2",
            "0day",
            &"a".repeat(32),
        ] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Admin",
            "-x",
            ".x",
            "a b",
            "a:b",
            "a/b",
            "é",
            &"a".repeat(33),
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn basic_credentials() {
        // "alice:pa:ss" with a colon in the password.
        assert_eq!(
            parse_basic("Basic YWxpY2U6cGE6c3M="),
            Some(("alice".into(), "pa:ss".into()))
        );
        assert_eq!(
            parse_basic("basic  YWxpY2U6cGE6c3M= "),
            Some(("alice".into(), "pa:ss".into()))
        );
        assert_eq!(parse_basic("Bearer abc"), None);
        assert_eq!(parse_basic("Basic !!!"), None);
        // No colon.
        assert_eq!(parse_basic("Basic YWxpY2U="), None);
        assert_eq!(parse_basic("Basic"), None);
        assert_eq!(parse_basic(&format!("Basic {}", "A".repeat(2000))), None);
    }
}
