//! Session tokens and the `vigil_session` cookie.
//!
//! A token is 32 random bytes from the kernel (256 bits), sent to the
//! browser as 43 characters of unpadded base64url. The database keeps
//! only its BLAKE2b-256 hash: the token is already uniformly random, so a
//! plain (unsalted, fast) hash is enough to make a stolen database useless
//! for opening sessions, and looking a session up stays one indexed read.
//!
//! Sessions last [`SESSION_TTL`] from login and do not slide: the cookie's
//! `Max-Age` and the row's expiry say the same thing, and no request but
//! login writes to the database.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use blake2::{Blake2b256, Digest};
use std::io::Read as _;
use std::time::Duration;

/// The cookie's name.
pub const COOKIE: &str = "vigil_session";
/// How long a session lasts from login.
pub const SESSION_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// Live sessions a user may hold; logging in again ends the oldest.
pub const MAX_SESSIONS_PER_USER: u32 = 16;
/// Characters in an encoded token.
pub const TOKEN_CHARS: usize = 43;

/// A fresh token, encoded for the cookie.
pub fn new_token() -> std::io::Result<String> {
    let mut raw = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut raw)?;
    Ok(B64URL.encode(raw))
}

/// What the database stores for `token`.
pub fn token_hash(token: &str) -> [u8; 32] {
    let mut h = Blake2b256::new();
    h.update(b"vigil-session\0");
    h.update(token.as_bytes());
    h.finalize().into()
}

/// Whether `s` looks like one of our tokens (before any lookup).
pub fn is_token(s: &str) -> bool {
    s.len() == TOKEN_CHARS
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The `Set-Cookie` value that hands `token` to the browser. No `Secure`
/// attribute: Vigil serves plain HTTP, and a browser would not send a
/// `Secure` cookie back over it.
pub fn set_cookie(token: &str, ttl: Duration) -> String {
    format!(
        "{COOKIE}={token}; Path=/; Max-Age={}; HttpOnly; SameSite=Strict",
        ttl.as_secs()
    )
}

/// The `Set-Cookie` value that makes the browser drop the cookie.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict")
}

/// Our session token from a `Cookie` request header, if it carries one
/// that has the right shape. Other cookies (other applications on the
/// same host) are ignored.
pub fn from_cookie_header(header: &str) -> Option<&str> {
    header
        .split(';')
        .filter_map(|c| c.trim().split_once('='))
        .filter(|(name, _)| *name == COOKIE)
        .map(|(_, v)| v.trim().trim_matches('"'))
        .find(|v| is_token(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_well_formed() {
        let a = new_token().unwrap();
        let b = new_token().unwrap();
        assert_ne!(a, b);
        assert!(is_token(&a), "{a}");
        assert_ne!(token_hash(&a), token_hash(&b));
        assert_eq!(token_hash(&a), token_hash(&a));
        assert!(!is_token("short"));
        assert!(!is_token(&"+".repeat(TOKEN_CHARS)));
    }

    #[test]
    fn cookie_attributes() {
        let c = set_cookie("abc", SESSION_TTL);
        assert!(c.starts_with("vigil_session=abc; "));
        for attr in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=604800"] {
            assert!(c.split("; ").any(|a| a == attr), "{attr} missing in {c}");
        }
        assert!(clear_cookie().contains("Max-Age=0"));
    }

    #[test]
    fn cookie_header_parsing() {
        let t = new_token().unwrap();
        assert_eq!(from_cookie_header(&format!("vigil_session={t}")), Some(&*t));
        assert_eq!(
            from_cookie_header(&format!("a=b; vigil_session={t}; c=d")),
            Some(&*t)
        );
        // A stale or foreign value first, ours second.
        assert_eq!(
            from_cookie_header(&format!("vigil_session=junk;vigil_session={t}")),
            Some(&*t)
        );
        assert_eq!(from_cookie_header("vigil_session="), None);
        assert_eq!(from_cookie_header("other=1"), None);
        assert_eq!(from_cookie_header(""), None);
        assert_eq!(from_cookie_header(";;;=;="), None);
        assert_eq!(
            from_cookie_header(&format!("xvigil_session={t}")),
            None,
            "a cookie merely ending in our name"
        );
    }
}
