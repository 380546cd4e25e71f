//! RTSP authentication: Basic and Digest (RFC 2617 / RFC 7616, MD5).
//!
//! The client feeds every 401's `WWW-Authenticate` values to
//! [`Authenticator::on_unauthorized`] and asks [`Authenticator::authorization`]
//! for the header of each request. Challenges come from the camera, so their
//! parsing never panics and tolerates the usual sloppiness (unquoted values,
//! odd spacing and case, missing commas). Passwords never appear in `Debug`
//! output or in errors.

use base64::Engine as _;
use md5::{Digest as _, Md5};
use std::fmt;

#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials({:?}, ***)", self.username)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthError {
    /// The camera asks for credentials and none are configured.
    NoCredentials,
    /// No challenge with a scheme we support.
    Unsupported(String),
    /// The camera refused the credentials we sent.
    Rejected,
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::NoCredentials => {
                f.write_str("authentication required but no username/password configured")
            }
            AuthError::Unsupported(s) => write!(f, "authentication scheme not supported: {s}"),
            AuthError::Rejected => f.write_str("authentication failed: wrong username or password"),
        }
    }
}

impl std::error::Error for AuthError {}

/// Challenges and parameters kept from one 401; the rest is ignored.
const MAX_CHALLENGES: usize = 16;
const MAX_PARAMS: usize = 32;

/// One parsed challenge: lowercase scheme, parameters with lowercase names.
#[derive(Debug, Default)]
struct Challenge {
    scheme: String,
    params: Vec<(String, String)>,
}

impl Challenge {
    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads `WWW-Authenticate` values (RFC 7235 §4.1, loosely): each value
/// may hold several challenges, `scheme param=value, param="value", ...`.
///
/// Several values are read as one comma-separated list (RFC 7230 §3.2.2),
/// so it does not matter whether the caller passes each header field as
/// it came or splits them further at commas.
fn parse_challenges(values: &[&str]) -> Vec<Challenge> {
    let mut out: Vec<Challenge> = Vec::new();
    let mut state = ListState::default();
    for value in values {
        parse_challenge_value(value, &mut out, &mut state);
        state.after_comma = true;
    }
    out
}

/// What the challenge parser remembers between tokens.
#[derive(Default)]
struct ListState {
    /// A comma came since the last token.
    after_comma: bool,
    /// The last token was an unquoted `qop` value.
    qop_unquoted: bool,
}

fn parse_challenge_value(value: &str, out: &mut Vec<Challenge>, st: &mut ListState) {
    let s = value.as_bytes();
    let mut i = 0;
    let is_sep = |b: u8| b.is_ascii_whitespace() || b == b',';
    loop {
        while let Some(&b) = s.get(i) {
            if !is_sep(b) {
                break;
            }
            st.after_comma |= b == b',';
            i += 1;
        }
        if i >= s.len() {
            break;
        }
        let start = i;
        while s
            .get(i)
            .is_some_and(|&b| !is_sep(b) && b != b'=' && b != b'"')
        {
            i += 1;
        }
        let token = value.get(start..i).unwrap_or("");
        if token.is_empty() {
            // A stray `=` or `"`: skip it.
            i += 1;
            st.after_comma = false;
            st.qop_unquoted = false;
            continue;
        }
        let mut j = i;
        while s.get(j).is_some_and(|b| b.is_ascii_whitespace()) {
            j += 1;
        }
        if s.get(j) == Some(&b'=') {
            // Quirk: spaces around `=` (`realm = "x"`).
            i = j + 1;
            while s.get(i).is_some_and(|b| b.is_ascii_whitespace()) {
                i += 1;
            }
            let (val, quoted) = if s.get(i) == Some(&b'"') {
                let (v, next) = read_quoted(value, i + 1);
                i = next;
                (v, true)
            } else {
                // Quirk: unquoted values (`algorithm=MD5`, `stale=TRUE`,
                // even `realm=IP Camera`): up to the next comma.
                let vstart = i;
                while s.get(i).is_some_and(|&b| b != b',') {
                    i += 1;
                }
                (value.get(vstart..i).unwrap_or("").trim().to_string(), false)
            };
            let name = token.to_ascii_lowercase();
            st.qop_unquoted = !quoted && name == "qop";
            // Parameters before any scheme have nothing to belong to.
            if let Some(c) = out.last_mut() {
                if c.params.len() < MAX_PARAMS {
                    c.params.push((name, val));
                }
            }
        } else {
            let lower = token.to_ascii_lowercase();
            let known_scheme = matches!(lower.as_str(), "basic" | "digest");
            // Quirk: an unquoted qop list (`qop=auth,auth-int`) continues
            // the value rather than starting a challenge named `auth-int`.
            if st.after_comma && st.qop_unquoted && !known_scheme {
                if let Some((_, v)) = out.last_mut().and_then(|c| c.params.last_mut()) {
                    v.push(',');
                    v.push_str(token);
                }
            } else if out.len() < MAX_CHALLENGES {
                out.push(Challenge {
                    scheme: lower,
                    params: Vec::new(),
                });
                st.qop_unquoted = false;
            } else {
                return;
            }
        }
        st.after_comma = false;
    }
}

/// Reads a quoted string whose opening quote precedes `from`; returns the
/// unescaped content and the index after the closing quote. An unterminated
/// string runs to the end.
fn read_quoted(value: &str, from: usize) -> (String, usize) {
    let mut out = String::new();
    let mut chars = value.get(from..).unwrap_or("").char_indices();
    while let Some((k, c)) = chars.next() {
        match c {
            '"' => return (out, from + k + 1),
            '\\' => {
                if let Some((_, e)) = chars.next() {
                    out.push(e);
                }
            }
            _ => out.push(c),
        }
    }
    (out, value.len())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Algorithm {
    Md5,
    Md5Sess,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Qop {
    /// RFC 2069 compatibility: no qop offered.
    None,
    Auth,
    /// Only offered `auth-int`: the entity body is hashed too. Vigil's
    /// requests carry no body, so that is the hash of the empty string.
    AuthInt,
}

#[derive(Clone)]
struct DigestState {
    realm: String,
    nonce: String,
    opaque: Option<String>,
    /// The `algorithm` parameter exactly as sent, echoed back if present.
    algorithm_param: Option<String>,
    algorithm: Algorithm,
    qop: Qop,
    nc: u32,
    cnonce: String,
}

#[derive(Clone)]
enum Scheme {
    Basic,
    Digest(DigestState),
}

/// Bounds and cleans a server-provided string for an error message.
fn for_message(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(40)
        .collect()
}

/// A Digest challenge we can answer, or why not.
fn digest_from(c: &Challenge) -> Result<DigestState, String> {
    let nonce = c.param("nonce").ok_or("Digest without nonce")?;
    let algorithm_param = c.param("algorithm").map(str::to_string);
    let algorithm = match algorithm_param.as_deref() {
        None | Some("") => Algorithm::Md5,
        Some(a) if a.eq_ignore_ascii_case("md5") => Algorithm::Md5,
        Some(a) if a.eq_ignore_ascii_case("md5-sess") => Algorithm::Md5Sess,
        Some(a) => return Err(format!("Digest algorithm {}", for_message(a))),
    };
    let mut offered_auth = false;
    let mut offered_int = false;
    for q in c.param("qop").unwrap_or("").split(',') {
        let q = q.trim();
        offered_auth |= q.eq_ignore_ascii_case("auth");
        offered_int |= q.eq_ignore_ascii_case("auth-int");
    }
    let qop = if offered_auth {
        Qop::Auth
    } else if offered_int {
        Qop::AuthInt
    } else {
        Qop::None
    };
    Ok(DigestState {
        realm: c.param("realm").unwrap_or("").to_string(),
        nonce: nonce.to_string(),
        opaque: c.param("opaque").map(str::to_string),
        algorithm_param,
        algorithm,
        qop,
        nc: 0,
        cnonce: String::new(),
    })
}

fn md5_hex(parts: &[&[u8]]) -> String {
    let mut h = Md5::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h.update(b":");
        }
        h.update(p);
    }
    let digest = h.finalize();
    let mut out = String::with_capacity(32);
    for b in digest.iter() {
        out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    out
}

/// A fresh client nonce: 64 bits from std's randomly keyed hasher (no
/// extra dependency; the cnonce needs to be unpredictable, not secret).
fn new_cnonce() -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(COUNTER.fetch_add(1, Ordering::Relaxed));
    if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u64(t.as_secs());
        h.write_u32(t.subsec_nanos());
    }
    format!("{:016x}", h.finish())
}

/// A quoted-string for a header: escapes `"` and `\`, and drops control
/// characters so that no value (from the camera or the config) can break
/// the request's header lines.
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars().filter(|c| !c.is_control()) {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Answers the camera's authentication challenges.
///
/// Retry semantics: after a challenge is answered, a new 401 with the same
/// Digest nonce and no `stale=true` (or any new 401 for Basic) means the
/// credentials are wrong ([`AuthError::Rejected`]). A `stale=true` or a
/// new nonce is accepted and the request should be retried; the client
/// bounds those retries (some cameras hand out a new nonce with every 401).
pub struct Authenticator {
    creds: Option<Credentials>,
    scheme: Option<Scheme>,
    /// An `Authorization` was produced for the current challenge.
    answered: bool,
    fixed_cnonce: Option<String>,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let realm = match &self.scheme {
            Some(Scheme::Digest(d)) => Some(d.realm.as_str()),
            _ => None,
        };
        f.debug_struct("Authenticator")
            .field("creds", &self.creds)
            .field("scheme", &self.scheme_name())
            .field("realm", &realm)
            .field("answered", &self.answered)
            .finish()
    }
}

impl Authenticator {
    pub fn new(creds: Option<Credentials>) -> Self {
        Authenticator {
            creds,
            scheme: None,
            answered: false,
            fixed_cnonce: None,
        }
    }

    /// Uses `cnonce` instead of random client nonces (for tests and
    /// reproducing a camera's behaviour).
    pub fn set_cnonce(&mut self, cnonce: &str) {
        self.fixed_cnonce = Some(cnonce.to_string());
        if let Some(Scheme::Digest(d)) = &mut self.scheme {
            d.cnonce = cnonce.to_string();
        }
    }

    /// `"basic"` or `"digest"` once challenged, for logs.
    pub fn scheme_name(&self) -> Option<&'static str> {
        match self.scheme {
            None => None,
            Some(Scheme::Basic) => Some("basic"),
            Some(Scheme::Digest(_)) => Some("digest"),
        }
    }

    /// Takes the `WWW-Authenticate` values of a 401 response.
    ///
    /// Digest is preferred over Basic; among several Digest challenges the
    /// first one we support (MD5 or MD5-sess) is used.
    pub fn on_unauthorized(&mut self, challenges: &[&str]) -> Result<(), AuthError> {
        if self.creds.is_none() {
            return Err(AuthError::NoCredentials);
        }
        let parsed = parse_challenges(challenges);
        let mut reason: Option<String> = None;
        let mut chosen: Option<Scheme> = None;
        for c in parsed.iter().filter(|c| c.scheme == "digest") {
            match digest_from(c) {
                Ok(d) => {
                    chosen = Some(Scheme::Digest(d));
                    break;
                }
                Err(why) => {
                    reason.get_or_insert(why);
                }
            }
        }
        let stale = parsed.iter().any(|c| {
            c.scheme == "digest"
                && c.param("stale")
                    .is_some_and(|s| s.eq_ignore_ascii_case("true"))
        });
        if chosen.is_none() && parsed.iter().any(|c| c.scheme == "basic") {
            chosen = Some(Scheme::Basic);
        }
        let Some(mut chosen) = chosen else {
            let why = reason.unwrap_or_else(|| {
                let names: Vec<String> = parsed.iter().map(|c| for_message(&c.scheme)).collect();
                if names.is_empty() {
                    "no challenge in the 401 response".to_string()
                } else {
                    names.join(", ")
                }
            });
            return Err(AuthError::Unsupported(why));
        };
        if self.answered {
            let same = match (&self.scheme, &chosen) {
                (Some(Scheme::Basic), Scheme::Basic) => true,
                (Some(Scheme::Digest(old)), Scheme::Digest(new)) => {
                    !stale && old.nonce == new.nonce
                }
                _ => false,
            };
            if same {
                return Err(AuthError::Rejected);
            }
        }
        if let Scheme::Digest(d) = &mut chosen {
            d.cnonce = self.fixed_cnonce.clone().unwrap_or_else(new_cnonce);
        }
        self.scheme = Some(chosen);
        self.answered = false;
        Ok(())
    }

    /// The `Authorization` value for a request, once challenged. `uri` is
    /// the request URI exactly as sent on the request line.
    pub fn authorization(&mut self, method: &str, uri: &str) -> Option<String> {
        let creds = self.creds.as_ref()?;
        let value = match self.scheme.as_mut()? {
            Scheme::Basic => {
                let raw = format!("{}:{}", creds.username, creds.password);
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(raw)
                )
            }
            Scheme::Digest(d) => {
                d.nc = d.nc.wrapping_add(1).max(1);
                digest_header(creds, d, method, uri)
            }
        };
        self.answered = true;
        Some(value)
    }
}

fn digest_header(creds: &Credentials, d: &DigestState, method: &str, uri: &str) -> String {
    let nc = format!("{:08x}", d.nc);
    let mut ha1 = md5_hex(&[
        creds.username.as_bytes(),
        d.realm.as_bytes(),
        creds.password.as_bytes(),
    ]);
    if d.algorithm == Algorithm::Md5Sess {
        ha1 = md5_hex(&[ha1.as_bytes(), d.nonce.as_bytes(), d.cnonce.as_bytes()]);
    }
    let ha2 = match d.qop {
        Qop::AuthInt => md5_hex(&[
            method.as_bytes(),
            uri.as_bytes(),
            md5_hex(&[b""]).as_bytes(),
        ]),
        _ => md5_hex(&[method.as_bytes(), uri.as_bytes()]),
    };
    let qop = match d.qop {
        Qop::None => None,
        Qop::Auth => Some("auth"),
        Qop::AuthInt => Some("auth-int"),
    };
    let response = match qop {
        None => md5_hex(&[ha1.as_bytes(), d.nonce.as_bytes(), ha2.as_bytes()]),
        Some(q) => md5_hex(&[
            ha1.as_bytes(),
            d.nonce.as_bytes(),
            nc.as_bytes(),
            d.cnonce.as_bytes(),
            q.as_bytes(),
            ha2.as_bytes(),
        ]),
    };
    let mut h = format!(
        "Digest username={}, realm={}, nonce={}, uri={}, response=\"{response}\"",
        quoted(&creds.username),
        quoted(&d.realm),
        quoted(&d.nonce),
        quoted(uri),
    );
    if let Some(a) = &d.algorithm_param {
        // Echo the server's spelling; it is a token (MD5 / MD5-sess).
        let a: String = a.chars().filter(|c| c.is_ascii_graphic()).collect();
        h.push_str(", algorithm=");
        h.push_str(&a);
    }
    if let Some(o) = &d.opaque {
        h.push_str(", opaque=");
        h.push_str(&quoted(o));
    }
    if let Some(q) = qop {
        h.push_str(&format!(", qop={q}, nc={nc}, cnonce={}", quoted(&d.cnonce)));
    }
    h
}

#[cfg(test)]
mod tests;
