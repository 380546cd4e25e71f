//! Password hashing: Argon2id (RFC 9106) through RustCrypto's `argon2`
//! crate, stored as PHC strings
//! (`$argon2id$v=19$m=16384,t=2,p=1$<salt>$<hash>`, unpadded base64).
//!
//! The parameters suit a 256 MB board: 16 MiB of memory per hash (a few
//! percent of the board, and only while hashing), two passes, one lane
//! (these boards have one core). RFC 9106's second recommended option
//! asks for 64 MiB, too much here; OWASP's guidance for Argon2id lists
//! m = 19 MiB, t = 2 and m = 12 MiB, t = 3 as equivalent floors, and
//! 16 MiB with two passes sits between them. A login costs about a
//! second on the target (README, "Users and authentication").
//!
//! Memory stays bounded however many clients log in at once: every hash
//! in the process goes through one gate, one at a time, and when
//! [`MAX_WAITING`] callers already wait the next is told to come back
//! ([`Busy`]) rather than tying up a server thread.
//!
//! Parameters are read back from each stored string, so they can be
//! raised later without invalidating existing passwords; values read back
//! are bounded ([`MAX_M_KIB`], [`MAX_T`], [`MAX_P`]), so a tampered
//! database cannot make a login allocate without bound.

use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use base64::Engine as _;
use std::fmt;
use std::io::Read as _;
use std::sync::{Condvar, Mutex};

/// Argon2 memory cost in KiB, time cost (passes) and lanes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    pub m_kib: u32,
    pub t: u32,
    pub p: u32,
}

/// What new passwords are hashed with.
pub const DEFAULT: Params = Params {
    m_kib: 16 * 1024,
    t: 2,
    p: 1,
};

/// Largest memory cost accepted from a stored hash: 64 MiB.
pub const MAX_M_KIB: u32 = 64 * 1024;
/// Largest time cost accepted from a stored hash.
pub const MAX_T: u32 = 16;
/// Largest lane count accepted from a stored hash.
pub const MAX_P: u32 = 4;
/// Bytes of salt in new hashes (RFC 9106 recommends 16).
const SALT_LEN: usize = 16;
/// Bytes of hash output.
const OUT_LEN: usize = 32;
/// Bounds on salts and outputs read back.
const SALT_RANGE: std::ops::RangeInclusive<usize> = 8..=64;
const OUT_RANGE: std::ops::RangeInclusive<usize> = 16..=64;
/// A stored hash longer than this is not one of ours.
const MAX_PHC_LEN: usize = 256;

/// Shortest password accepted, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest password accepted, in bytes: plenty for a passphrase, and a
/// bound on what each login hashes.
pub const MAX_PASSWORD_BYTES: usize = 256;

/// Callers allowed to wait for the gate while one hashes; more are
/// refused with [`Busy`].
pub const MAX_WAITING: u32 = 2;

/// Why a hash could not be made or checked. Never carries the password.
#[derive(Debug, PartialEq, Eq)]
pub enum Error {
    /// The stored string is not an Argon2id PHC string we accept.
    BadHash(String),
    /// Too many hashes are already running or waiting.
    Busy,
    /// No random bytes, or the hash itself failed (out of memory).
    Failed(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::BadHash(why) => write!(f, "stored password hash is unusable: {why}"),
            Error::Busy => write!(f, "too many logins at once; try again in a second"),
            Error::Failed(why) => write!(f, "password hashing failed: {why}"),
        }
    }
}

impl std::error::Error for Error {}

/// Marker for [`Error::Busy`] in signatures that only fail that way.
#[derive(Debug)]
pub struct Busy;

/// Checks a new password against the rules: at least
/// [`MIN_PASSWORD_CHARS`] characters, at most [`MAX_PASSWORD_BYTES`]
/// bytes, no control characters (they cannot be typed at a prompt, and a
/// newline could not be read back from stdin). The message never quotes
/// the password.
pub fn check_new(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(format!(
            "too short: at least {MIN_PASSWORD_CHARS} characters"
        ));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(format!("too long: at most {MAX_PASSWORD_BYTES} bytes"));
    }
    if password.chars().any(char::is_control) {
        return Err("must not contain control characters".to_owned());
    }
    Ok(())
}

/// A PHC string for `password` with a fresh random salt and [`DEFAULT`].
pub fn hash(password: &str) -> Result<String, Error> {
    let mut salt = [0u8; SALT_LEN];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut salt))
        .map_err(|e| Error::Failed(format!("/dev/urandom: {e}")))?;
    hash_with(password, &salt, DEFAULT)
}

/// A PHC string for `password` with this salt and these parameters.
pub fn hash_with(password: &str, salt: &[u8], params: Params) -> Result<String, Error> {
    let mut out = [0u8; OUT_LEN];
    raw(password.as_bytes(), salt, params, &mut out)?;
    Ok(format!(
        "$argon2id$v=19$m={},t={},p={}${}${}",
        params.m_kib,
        params.t,
        params.p,
        B64.encode(salt),
        B64.encode(out)
    ))
}

/// Whether `password` matches the PHC string `phc`. `Err` when the stored
/// string is unusable or no hash could be run; never panics on garbage.
pub fn verify(password: &str, phc: &str) -> Result<bool, Error> {
    let parsed = parse(phc)?;
    if password.len() > MAX_PASSWORD_BYTES {
        // Still spend the time, so a long guess tells nothing.
        let mut out = vec![0u8; parsed.hash.len()];
        raw(b"", &parsed.salt, parsed.params, &mut out)?;
        return Ok(false);
    }
    let mut out = vec![0u8; parsed.hash.len()];
    raw(password.as_bytes(), &parsed.salt, parsed.params, &mut out)?;
    Ok(ct_eq(&out, &parsed.hash))
}

/// Spends the time of one verification against nothing: for a user name
/// that does not exist, so that the answer's timing does not tell which
/// names do.
pub fn verify_nobody(password: &str) -> Result<(), Error> {
    let mut out = [0u8; OUT_LEN];
    let pw = if password.len() > MAX_PASSWORD_BYTES {
        b"".as_slice()
    } else {
        password.as_bytes()
    };
    raw(pw, b"vigil-nobody-salt", DEFAULT, &mut out)
}

/// A stored hash taken apart.
#[derive(Debug, PartialEq, Eq)]
pub struct Parsed {
    pub params: Params,
    pub salt: Vec<u8>,
    pub hash: Vec<u8>,
}

/// Parses `$argon2id$v=19$m=M,t=T,p=P$SALT$HASH`, with every number and
/// length bounded.
pub fn parse(phc: &str) -> Result<Parsed, Error> {
    let bad = |why: &str| Error::BadHash(why.to_owned());
    if phc.len() > MAX_PHC_LEN {
        return Err(bad("longer than any we write"));
    }
    let mut parts = phc.split('$');
    let (Some(""), Some(alg), Some(version), Some(list), Some(salt), Some(hash), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(bad(
            "not of the form $argon2id$v=19$m=..,t=..,p=..$salt$hash",
        ));
    };
    if alg != "argon2id" {
        return Err(bad("not argon2id"));
    }
    if version != "v=19" {
        return Err(bad("not Argon2 version 19"));
    }
    let (mut m, mut t, mut p) = (None, None, None);
    for kv in list.split(',') {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| bad("a parameter without '='"))?;
        // Digits only: `parse` would also take a sign.
        if v.is_empty() || v.len() > 10 || !v.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("a parameter is not a number"));
        }
        let n: u32 = v.parse().map_err(|_| bad("a parameter is out of range"))?;
        let slot = match k {
            "m" => &mut m,
            "t" => &mut t,
            "p" => &mut p,
            _ => return Err(bad("an unknown parameter")),
        };
        if slot.replace(n).is_some() {
            return Err(bad("a parameter given twice"));
        }
    }
    let (Some(m_kib), Some(t), Some(p)) = (m, t, p) else {
        return Err(bad("m, t and p are all needed"));
    };
    if !(1..=MAX_P).contains(&p) {
        return Err(bad("p is out of range"));
    }
    if !(1..=MAX_T).contains(&t) {
        return Err(bad("t is out of range"));
    }
    if m_kib < 8 * p || m_kib > MAX_M_KIB {
        return Err(bad("m is out of range"));
    }
    let salt = B64
        .decode(salt)
        .map_err(|_| bad("the salt is not base64"))?;
    let hash = B64
        .decode(hash)
        .map_err(|_| bad("the hash is not base64"))?;
    if !SALT_RANGE.contains(&salt.len()) {
        return Err(bad("the salt's length is out of range"));
    }
    if !OUT_RANGE.contains(&hash.len()) {
        return Err(bad("the hash's length is out of range"));
    }
    Ok(Parsed {
        params: Params { m_kib, t, p },
        salt,
        hash,
    })
}

/// Compares without an early exit, so the time taken does not tell how
/// much of a guess was right.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// One hash at a time (see the module comment).
struct Gate {
    state: Mutex<GateState>,
    freed: Condvar,
}

struct GateState {
    running: bool,
    waiting: u32,
}

/// The gate every hash in the process goes through.
static GATE: Gate = Gate::new();

impl Gate {
    const fn new() -> Gate {
        Gate {
            state: Mutex::new(GateState {
                running: false,
                waiting: 0,
            }),
            freed: Condvar::new(),
        }
    }

    /// Runs `f` once the gate is free, or refuses when [`MAX_WAITING`]
    /// callers are waiting already.
    fn run<T>(&self, f: impl FnOnce() -> T) -> Result<T, Busy> {
        {
            let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if s.running {
                if s.waiting >= MAX_WAITING {
                    return Err(Busy);
                }
                s.waiting += 1;
                while s.running {
                    s = self.freed.wait(s).unwrap_or_else(|e| e.into_inner());
                }
                s.waiting -= 1;
            }
            s.running = true;
        }
        // Frees the gate even if `f` panics.
        struct Release<'g>(&'g Gate);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                self.0
                    .state
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .running = false;
                self.0.freed.notify_one();
            }
        }
        let _release = Release(self);
        Ok(f())
    }
}

fn raw(password: &[u8], salt: &[u8], params: Params, out: &mut [u8]) -> Result<(), Error> {
    let p = argon2::Params::new(params.m_kib, params.t, params.p, Some(out.len()))
        .map_err(|e| Error::BadHash(e.to_string()))?;
    let blocks = p.block_count();
    let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, p);
    GATE.run(|| {
        let memory = Mapped::new(blocks)?;
        a.hash_password_into_with_memory(password, salt, out, memory)
            .map_err(|e| Error::Failed(e.to_string()))
    })
    .map_err(|Busy| Error::Busy)?
}

/// The hash's working memory, mapped from the kernel for each hash and
/// unmapped after it. Through the allocator, glibc would keep the 16 MiB
/// in the heap after the first login (its mmap threshold grows to the
/// largest block freed), so the board would lose it for good.
struct Mapped {
    ptr: std::ptr::NonNull<argon2::Block>,
    len: usize,
}

impl Mapped {
    fn new(blocks: usize) -> Result<Mapped, Error> {
        let bytes = blocks
            .checked_mul(argon2::Block::SIZE)
            .filter(|&b| b > 0)
            .ok_or_else(|| Error::Failed("memory size overflows".to_owned()))?;
        // SAFETY: a fresh private anonymous mapping; no existing memory is
        // touched. The result is checked before use.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(Error::Failed(format!(
                "cannot map {} KiB: {}",
                bytes / 1024,
                std::io::Error::last_os_error()
            )));
        }
        let ptr = std::ptr::NonNull::new(p.cast::<argon2::Block>())
            .ok_or_else(|| Error::Failed("mmap returned null".to_owned()))?;
        Ok(Mapped { ptr, len: blocks })
    }
}

impl AsMut<[argon2::Block]> for Mapped {
    fn as_mut(&mut self) -> &mut [argon2::Block] {
        // SAFETY: the mapping holds `len` blocks, is page-aligned (more
        // than a Block's 64 bytes), zero-filled by the kernel (all zeros
        // is a valid Block: plain integers), and lives as long as `self`,
        // which this borrow cannot outlive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`, once; no
        // borrow of it can outlive `self`.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len * argon2::Block::SIZE);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// Cheap parameters, so the tests do not each spend a second.
    const FAST: Params = Params {
        m_kib: 64,
        t: 1,
        p: 1,
    };

    #[test]
    fn round_trip_and_wrong_password() {
        let phc = hash_with("correct horse", b"saltsaltsalt", FAST).unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{phc}");
        assert!(!phc.contains("correct horse"));
        assert!(verify("correct horse", &phc).unwrap());
        assert!(!verify("correct horsf", &phc).unwrap());
        assert!(!verify("", &phc).unwrap());
        assert!(!verify(&"x".repeat(MAX_PASSWORD_BYTES + 1), &phc).unwrap());
        // Another salt, another string; both verify.
        let other = hash_with("correct horse", b"pepperpepper", FAST).unwrap();
        assert_ne!(phc, other);
        assert!(verify("correct horse", &other).unwrap());
    }

    /// Our PHC string is the reference implementation's, byte for byte.
    #[test]
    fn known_hash_still_verifies() {
        let phc = hash_with("password", b"somesalt", FAST).unwrap();
        let parsed = parse(&phc).unwrap();
        assert_eq!(parsed.params, FAST);
        assert_eq!(parsed.salt, b"somesalt");
        assert_eq!(parsed.hash.len(), OUT_LEN);
        // From the reference implementation (Debian's `argon2` tool):
        // `echo -n password | argon2 somesalt -id -t 1 -k 64 -p 1 -l 32`.
        assert_eq!(
            phc,
            "$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHQ$cpx6VEQbwTVZvcpxNIxOVUWZ5xnAipUmAe1cg2GMG70"
        );
    }

    #[test]
    fn default_hash_uses_random_salt() {
        let a = hash("same password").unwrap();
        let b = hash("same password").unwrap();
        assert_ne!(a, b);
        assert_eq!(parse(&a).unwrap().params, DEFAULT);
        assert_eq!(parse(&a).unwrap().salt.len(), SALT_LEN);
        assert!(verify("same password", &a).unwrap());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let good = hash_with("pw", b"saltsalt", FAST).unwrap();
        let garbage = [
            "",
            "$",
            "plain text",
            "$argon2i$v=19$m=64,t=1,p=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
            "$argon2id$v=16$m=64,t=1,p=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
            "$argon2id$v=19$m=64,t=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
            "$argon2id$v=19$m=64,t=1,p=1,p=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
            "$argon2id$v=19$m=-64,t=1,p=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
            "$argon2id$v=19$m=+64,t=1,p=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
            "$argon2id$v=19$m=4294967295,t=1,p=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
            "$argon2id$v=19$m=99999999999,t=1,p=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
            "$argon2id$v=19$m=64,t=0,p=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
            "$argon2id$v=19$m=64,t=1000000,p=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
            "$argon2id$v=19$m=64,t=1,p=0$c29tZXNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
            "$argon2id$v=19$m=8,t=1,p=4$c29tZXNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
            "$argon2id$v=19$m=64,t=1,p=1$c2FsdA$aGFzaGhhc2hoYXNoaGFzaA",
            "$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHQ$aGFzaA",
            "$argon2id$v=19$m=64,t=1,p=1$!!!$aGFzaGhhc2hoYXNoaGFzaA",
            "$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNoaGFzaA$extra",
            "$argon2id$v=19$m=64,t=1,q=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
            "$argon2id$v=19$m=64,,t=1,p=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
            "$argon2id$v=19$m=é,t=1,p=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
        ];
        for g in garbage {
            assert!(
                matches!(verify("pw", g), Err(Error::BadHash(_))),
                "{g:?} was accepted"
            );
        }
        let long = format!("{good}{}", "A".repeat(MAX_PHC_LEN));
        assert!(matches!(verify("pw", &long), Err(Error::BadHash(_))));
        // Every truncation of a good string fails cleanly too.
        for i in 0..good.len() {
            let _ = verify("pw", &good[..i]);
        }
        assert!(verify("pw", &good).unwrap());
    }

    #[test]
    fn password_rules() {
        assert!(check_new("longenough").is_ok());
        assert!(check_new("ünïcödé!").is_ok());
        assert!(check_new("short").unwrap_err().contains("short"));
        assert!(check_new(&"x".repeat(MAX_PASSWORD_BYTES + 1)).is_err());
        assert!(check_new("has\nnewline").is_err());
        assert!(check_new("has\ttab!!").is_err());
        // The message never quotes the password.
        let e = check_new("secret1").unwrap_err();
        assert!(!e.contains("secret1"));
    }

    /// The gate runs one hash at a time and refuses callers beyond
    /// MAX_WAITING instead of queueing without bound.
    #[test]
    fn gate_bounds_concurrency() {
        use std::sync::atomic::{AtomicU32, Ordering};
        use std::sync::Arc;
        let inside = Arc::new(AtomicU32::new(0));
        let most = Arc::new(AtomicU32::new(0));
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let (entered_tx, entered_rx) = std::sync::mpsc::channel::<()>();
        // A gate of its own: other tests hash through the global one.
        let gate = Arc::new(Gate::new());
        // The first caller holds the gate until told to go.
        let g = gate.clone();
        let holder = std::thread::spawn(move || {
            g.run(|| {
                entered_tx.send(()).unwrap();
                go_rx.recv().unwrap();
            })
            .is_ok()
        });
        entered_rx.recv().unwrap();
        let mut waiters = Vec::new();
        for _ in 0..MAX_WAITING {
            let (inside, most, g) = (inside.clone(), most.clone(), gate.clone());
            waiters.push(std::thread::spawn(move || {
                g.run(|| {
                    let n = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(n, Ordering::SeqCst);
                    std::thread::yield_now();
                    inside.fetch_sub(1, Ordering::SeqCst);
                })
                .is_ok()
            }));
        }
        // Wait (bounded) until both are queued.
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        while gate.state.lock().unwrap().waiting < MAX_WAITING {
            assert!(Instant::now() < deadline, "waiters never queued");
            std::thread::yield_now();
        }
        assert!(
            gate.run(|| ()).is_err(),
            "a caller beyond MAX_WAITING was queued"
        );
        go_tx.send(()).unwrap();
        assert!(holder.join().unwrap());
        for w in waiters {
            assert!(w.join().unwrap());
        }
        assert_eq!(most.load(Ordering::SeqCst), 1);
        assert!(gate.run(|| ()).is_ok());
    }
}
