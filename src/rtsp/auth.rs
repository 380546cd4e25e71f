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
mod tests {
    use super::*;

    fn creds(u: &str, p: &str) -> Option<Credentials> {
        Some(Credentials {
            username: u.into(),
            password: p.into(),
        })
    }

    /// Extracts `name=value` / `name="value"` from our own header.
    fn field(header: &str, name: &str) -> Option<String> {
        let c = parse_challenges(&[header]);
        c.first()?.param(name).map(str::to_string)
    }

    const RFC2617: &str = r#"Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41""#;

    #[test]
    fn rfc2617_example() {
        let mut a = Authenticator::new(creds("Mufasa", "Circle Of Life"));
        a.set_cnonce("0a4f113b");
        a.on_unauthorized(&[RFC2617]).unwrap();
        let h = a.authorization("GET", "/dir/index.html").unwrap();
        assert!(h.starts_with("Digest "), "{h}");
        assert_eq!(
            field(&h, "response").as_deref(),
            Some("6629fae49393a05397450978507c4ef1")
        );
        assert_eq!(field(&h, "nc").as_deref(), Some("00000001"));
        assert_eq!(field(&h, "qop").as_deref(), Some("auth"));
        assert_eq!(field(&h, "cnonce").as_deref(), Some("0a4f113b"));
        assert_eq!(field(&h, "uri").as_deref(), Some("/dir/index.html"));
        assert_eq!(field(&h, "username").as_deref(), Some("Mufasa"));
        assert_eq!(
            field(&h, "opaque").as_deref(),
            Some("5ccc069c403ebaf9f0171e9517f40e41")
        );
        // The next request counts up.
        let h2 = a.authorization("GET", "/dir/index.html").unwrap();
        assert_eq!(field(&h2, "nc").as_deref(), Some("00000002"));
        assert_ne!(field(&h2, "response"), field(&h, "response"));
    }

    #[test]
    fn rfc2069_without_qop() {
        let mut a = Authenticator::new(creds("Mufasa", "Circle Of Life"));
        a.on_unauthorized(&[
            r#"Digest realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093""#,
        ])
        .unwrap();
        let h = a.authorization("GET", "/dir/index.html").unwrap();
        // MD5(MD5(A1):nonce:MD5(A2)), computed independently (Python hashlib).
        assert_eq!(
            field(&h, "response").as_deref(),
            Some("670fd8c2df070c60b045671b8b24ff02")
        );
        assert_eq!(field(&h, "qop"), None);
        assert_eq!(field(&h, "nc"), None);
        assert_eq!(field(&h, "cnonce"), None);
    }

    #[test]
    fn md5_sess() {
        let mut a = Authenticator::new(creds("Mufasa", "Circle Of Life"));
        a.set_cnonce("0a4f113b");
        a.on_unauthorized(&[r#"Digest realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", qop=auth, algorithm=MD5-sess"#])
            .unwrap();
        let h = a.authorization("GET", "/dir/index.html").unwrap();
        assert_eq!(
            field(&h, "response").as_deref(),
            Some("8e3825c57e897f5a0dec6c2d4e5059d0")
        );
        assert_eq!(field(&h, "algorithm").as_deref(), Some("MD5-sess"));
    }

    #[test]
    fn auth_int_only() {
        let mut a = Authenticator::new(creds("Mufasa", "Circle Of Life"));
        a.set_cnonce("0a4f113b");
        a.on_unauthorized(&[r#"Digest realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", qop="auth-int""#])
            .unwrap();
        let h = a.authorization("GET", "/dir/index.html").unwrap();
        assert_eq!(field(&h, "qop").as_deref(), Some("auth-int"));
        assert_eq!(
            field(&h, "response").as_deref(),
            Some("5e6610ecf9ba3017a4870ad48e3ad30b")
        );
    }

    #[test]
    fn basic() {
        let mut a = Authenticator::new(creds("Aladdin", "open sesame"));
        assert_eq!(a.authorization("DESCRIBE", "rtsp://h/"), None);
        a.on_unauthorized(&[r#"Basic realm="WallyWorld""#]).unwrap();
        assert_eq!(
            a.authorization("DESCRIBE", "rtsp://h/").as_deref(),
            Some("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==")
        );
        assert_eq!(a.scheme_name(), Some("basic"));
        // Challenged again after answering: wrong password.
        assert_eq!(
            a.on_unauthorized(&[r#"Basic realm="WallyWorld""#]),
            Err(AuthError::Rejected)
        );
    }

    #[test]
    fn prefers_digest_over_basic() {
        for challenges in [
            &[r#"Basic realm="x""#, r#"Digest realm="x", nonce="n1""#][..],
            &[r#"Basic realm="x", Digest realm="x", nonce="n1""#][..],
            &[r#"Digest realm="x", nonce="n1", Basic realm="x""#][..],
        ] {
            let mut a = Authenticator::new(creds("u", "p"));
            a.on_unauthorized(challenges).unwrap();
            let h = a.authorization("OPTIONS", "rtsp://h/").unwrap();
            assert!(h.starts_with("Digest "), "{challenges:?}: {h}");
            assert_eq!(field(&h, "nonce").as_deref(), Some("n1"));
        }
    }

    #[test]
    fn sloppy_challenges() {
        let reference = {
            let mut a = Authenticator::new(creds("admin", "12345"));
            a.set_cnonce("c");
            a.on_unauthorized(&[r#"Digest realm="IP Camera", nonce="abc", qop="auth""#])
                .unwrap();
            a.authorization("DESCRIBE", "rtsp://h/").unwrap()
        };
        for ch in [
            // Unquoted values, other order, odd case and spacing.
            r#"DIGEST   Nonce = abc ,QOP=auth,  REALM="IP Camera""#,
            // Unquoted list for qop.
            r#"digest realm="IP Camera", nonce="abc", qop=auth,auth-int"#,
            // Missing commas between quoted values.
            r#"Digest realm="IP Camera" nonce="abc" qop="auth""#,
            // Unquoted value with a space.
            r#"Digest realm=IP Camera, nonce=abc, qop=auth"#,
            // Escaped characters and trailing junk.
            r#"Digest realm="IP \Camera", nonce="abc", qop="auth", ,, "#,
        ] {
            let mut a = Authenticator::new(creds("admin", "12345"));
            a.set_cnonce("c");
            a.on_unauthorized(&[ch]).unwrap();
            let h = a.authorization("DESCRIBE", "rtsp://h/").unwrap();
            assert_eq!(field(&h, "response"), field(&reference, "response"), "{ch}");
        }
    }

    #[test]
    fn challenges_split_across_values() {
        // The same challenge, whether it comes in one header field or split
        // at every comma by the caller: read as one list.
        let whole =
            r#"Digest realm="r", qop=auth,auth-int, nonce="n", algorithm=MD5, Basic realm="r""#;
        let split = [
            r#"Digest realm="r""#,
            "qop=auth",
            "auth-int",
            r#"nonce="n""#,
            "algorithm=MD5",
            r#"Basic realm="r""#,
        ];
        for values in [&[whole][..], &split[..]] {
            let c = parse_challenges(values);
            assert_eq!(c.len(), 2, "{values:?}");
            assert_eq!(c[0].scheme, "digest");
            assert_eq!(c[0].param("qop"), Some("auth,auth-int"));
            assert_eq!(c[0].param("nonce"), Some("n"));
            assert_eq!(c[0].param("algorithm"), Some("MD5"));
            assert_eq!(c[1].scheme, "basic");
        }
        // An unknown scheme after an unquoted parameter still starts a
        // challenge.
        let c = parse_challenges(&[r#"Digest nonce="n", algorithm=MD5"#, "Negotiate"]);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].param("algorithm"), Some("MD5"));
    }

    #[test]
    fn no_credentials() {
        let mut a = Authenticator::new(None);
        assert_eq!(
            a.on_unauthorized(&[r#"Digest realm="x", nonce="y""#]),
            Err(AuthError::NoCredentials)
        );
        assert_eq!(a.authorization("DESCRIBE", "rtsp://h/"), None);
    }

    #[test]
    fn unsupported() {
        let mut a = Authenticator::new(creds("u", "p"));
        let e = a
            .on_unauthorized(&[r#"Digest realm="x", nonce="y", algorithm=SHA-256"#])
            .unwrap_err();
        assert!(
            matches!(&e, AuthError::Unsupported(s) if s.contains("SHA-256")),
            "{e:?}"
        );
        // SHA-256 offered first, MD5 second: MD5 is used.
        a.on_unauthorized(&[
            r#"Digest realm="x", nonce="y", algorithm=SHA-256"#,
            r#"Digest realm="x", nonce="y", algorithm=MD5"#,
        ])
        .unwrap();
        let mut b = Authenticator::new(creds("u", "p"));
        assert!(matches!(
            b.on_unauthorized(&["Negotiate abc=="]),
            Err(AuthError::Unsupported(s)) if s == "negotiate"
        ));
        assert!(matches!(
            b.on_unauthorized(&[]),
            Err(AuthError::Unsupported(_))
        ));
        // Digest without a nonce cannot be answered.
        assert!(b.on_unauthorized(&[r#"Digest realm="x""#]).is_err());
    }

    #[test]
    fn rejected_on_same_nonce_after_answer() {
        let ch = r#"Digest realm="x", nonce="n1""#;
        let mut a = Authenticator::new(creds("u", "wrong"));
        a.on_unauthorized(&[ch]).unwrap();
        // Challenged again before we answered: fine.
        a.on_unauthorized(&[ch]).unwrap();
        a.authorization("DESCRIBE", "rtsp://h/").unwrap();
        assert_eq!(a.on_unauthorized(&[ch]), Err(AuthError::Rejected));
    }

    #[test]
    fn stale_or_new_nonce_retries() {
        let mut a = Authenticator::new(creds("u", "p"));
        a.on_unauthorized(&[r#"Digest realm="x", nonce="n1", qop="auth""#])
            .unwrap();
        a.authorization("DESCRIBE", "rtsp://h/").unwrap();
        let h = a.authorization("SETUP", "rtsp://h/t1").unwrap();
        assert_eq!(field(&h, "nc").as_deref(), Some("00000002"));
        // Stale nonce: same nonce value even, but stale=true.
        a.on_unauthorized(&[r#"Digest realm="x", nonce="n1", qop="auth", stale=TRUE"#])
            .unwrap();
        let h = a.authorization("SETUP", "rtsp://h/t1").unwrap();
        assert_eq!(field(&h, "nc").as_deref(), Some("00000001"));
        // New nonce.
        a.on_unauthorized(&[r#"Digest realm="x", nonce="n2", qop="auth""#])
            .unwrap();
        let h = a.authorization("PLAY", "rtsp://h/").unwrap();
        assert_eq!(field(&h, "nonce").as_deref(), Some("n2"));
        assert_eq!(field(&h, "nc").as_deref(), Some("00000001"));
    }

    #[test]
    fn random_cnonces_differ() {
        assert_ne!(new_cnonce(), new_cnonce());
        assert_eq!(new_cnonce().len(), 16);
    }

    #[test]
    fn header_values_are_escaped() {
        let mut a = Authenticator::new(creds("us\"er", "p"));
        a.on_unauthorized(&["Digest realm=\"a\\\"b\", nonce=\"x\r\nInjected: 1\""])
            .unwrap();
        let h = a.authorization("OPTIONS", "rtsp://h/").unwrap();
        assert!(!h.contains('\r') && !h.contains('\n'), "{h}");
        assert_eq!(field(&h, "username").as_deref(), Some("us\"er"));
        assert_eq!(field(&h, "realm").as_deref(), Some("a\"b"));
    }

    #[test]
    fn password_never_shown() {
        let mut a = Authenticator::new(creds("admin", "hunter2-secret"));
        a.on_unauthorized(&[r#"Digest realm="x", nonce="y""#])
            .unwrap();
        a.authorization("DESCRIBE", "rtsp://h/").unwrap();
        let debug = format!("{a:?}");
        assert!(
            debug.contains("admin") && !debug.contains("hunter2"),
            "{debug}"
        );
        let errors = [
            a.on_unauthorized(&[r#"Digest realm="x", nonce="y""#])
                .unwrap_err(),
            AuthError::NoCredentials,
            AuthError::Unsupported("x".into()),
        ];
        for e in errors {
            assert!(!format!("{e} {e:?}").contains("hunter2"));
        }
    }
}
