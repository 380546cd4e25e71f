//! The simulated camera's side of RTSP authentication: Basic (RFC 7617)
//! or Digest with MD5 and `qop=auth` (RFC 7616), whichever `vigil camera
//! --auth` chose. It exists so the client's 401 handling has something
//! real to talk to; it is loopback-only and not meant as a security
//! boundary (one nonce per server, no nonce-count tracking).

use base64::Engine;
use md5::{Digest, Md5};

const REALM: &str = "Vigil camera";

/// Which check the camera asks of its clients, and the one account it
/// accepts (`vigil camera --auth basic|digest --user U --password P`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CameraAuth {
    /// Digest rather than Basic.
    pub digest: bool,
    pub user: String,
    pub password: String,
}

pub(crate) struct CredentialCheck {
    auth: CameraAuth,
    nonce: String,
}

impl CredentialCheck {
    pub(crate) fn new(auth: CameraAuth, nonce: String) -> Self {
        CredentialCheck { auth, nonce }
    }

    /// The `WWW-Authenticate` value of a 401.
    pub(crate) fn challenge(&self) -> String {
        if self.auth.digest {
            format!(
                "Digest realm=\"{REALM}\", nonce=\"{}\", algorithm=MD5, qop=\"auth\"",
                self.nonce
            )
        } else {
            format!("Basic realm=\"{REALM}\"")
        }
    }

    /// Whether an `Authorization` header value grants `method`.
    pub(crate) fn check(&self, method: &str, authorization: Option<&str>) -> bool {
        let Some(value) = authorization else {
            return false;
        };
        let value = value.trim();
        let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
        if self.auth.digest {
            scheme.eq_ignore_ascii_case("digest") && self.check_digest(method, rest)
        } else {
            scheme.eq_ignore_ascii_case("basic") && self.check_basic(rest.trim())
        }
    }

    fn check_basic(&self, token: &str) -> bool {
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(token) else {
            return false;
        };
        let expected = format!("{}:{}", self.auth.user, self.auth.password);
        decoded == expected.as_bytes()
    }

    fn check_digest(&self, method: &str, params: &str) -> bool {
        let mut username = None;
        let mut realm = None;
        let mut nonce = None;
        let mut uri = None;
        let mut response = None;
        let mut qop = None;
        let mut nc = None;
        let mut cnonce = None;
        for (k, v) in DigestParams(params) {
            let slot = match k.to_ascii_lowercase().as_str() {
                "username" => &mut username,
                "realm" => &mut realm,
                "nonce" => &mut nonce,
                "uri" => &mut uri,
                "response" => &mut response,
                "qop" => &mut qop,
                "nc" => &mut nc,
                "cnonce" => &mut cnonce,
                _ => continue,
            };
            *slot = Some(v);
        }
        let (Some(username), Some(realm), Some(nonce), Some(uri), Some(response)) =
            (username, realm, nonce, uri, response)
        else {
            return false;
        };
        if username != self.auth.user || realm != REALM || nonce != self.nonce {
            return false;
        }
        let ha1 = md5_hex(&[&self.auth.user, REALM, &self.auth.password]);
        let ha2 = md5_hex(&[method, &uri]);
        let expected = match qop.as_deref() {
            Some(q) if q.eq_ignore_ascii_case("auth") => {
                let (Some(nc), Some(cnonce)) = (nc, cnonce) else {
                    return false;
                };
                md5_hex(&[&ha1, &nonce, &nc, &cnonce, "auth", &ha2])
            }
            // RFC 2069 style, without qop: older clients still send it.
            None => md5_hex(&[&ha1, &nonce, &ha2]),
            Some(_) => return false,
        };
        expected.eq_ignore_ascii_case(&response)
    }
}

/// Lowercase hex MD5 of the parts joined with ':'.
pub(crate) fn md5_hex(parts: &[&str]) -> String {
    let mut h = Md5::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h.update(b":");
        }
        h.update(p.as_bytes());
    }
    let digest = h.finalize();
    let mut s = String::with_capacity(32);
    for b in digest.iter() {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    s
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Iterates `key=value` / `key="quoted value"` pairs of a Digest header,
/// separated by commas. Malformed input just ends the iteration.
struct DigestParams<'a>(&'a str);

impl Iterator for DigestParams<'_> {
    type Item = (String, String);

    fn next(&mut self) -> Option<(String, String)> {
        let s = self
            .0
            .trim_start_matches(|c: char| c == ',' || c.is_ascii_whitespace());
        let eq = s.find('=')?;
        let key = s[..eq].trim().to_owned();
        let rest = s[eq + 1..].trim_start();
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, e)) = chars.next() {
                            value.push(e);
                        }
                    }
                    '"' => {
                        self.0 = &quoted[i + 1..];
                        return Some((key, value));
                    }
                    _ => value.push(c),
                }
            }
            self.0 = "";
            None
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            self.0 = &rest[end..];
            Some((key, rest[..end].trim().to_owned()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(digest: bool) -> CredentialCheck {
        CredentialCheck::new(
            CameraAuth {
                digest,
                user: "admin".into(),
                password: "s3cret".into(),
            },
            "abc123".into(),
        )
    }

    #[test]
    fn basic() {
        let a = auth(false);
        assert_eq!(a.challenge(), "Basic realm=\"Vigil camera\"");
        // base64("admin:s3cret")
        assert!(a.check("DESCRIBE", Some("Basic YWRtaW46czNjcmV0")));
        assert!(!a.check("DESCRIBE", Some("Basic YWRtaW46d3Jvbmc=")));
        assert!(!a.check("DESCRIBE", Some("Basic !!!")));
        assert!(!a.check("DESCRIBE", None));
        assert!(!a.check("DESCRIBE", Some("")));
        // Digest credentials are not accepted when Basic is configured.
        assert!(!a.check("DESCRIBE", Some("Digest username=\"admin\"")));
    }

    #[test]
    fn digest_with_qop() {
        let a = auth(true);
        assert!(a
            .challenge()
            .starts_with("Digest realm=\"Vigil camera\", nonce=\"abc123\""));
        let uri = "rtsp://127.0.0.1:8554/h264";
        let ha1 = md5_hex(&["admin", REALM, "s3cret"]);
        let ha2 = md5_hex(&["DESCRIBE", uri]);
        let resp = md5_hex(&[&ha1, "abc123", "00000001", "xyz", "auth", &ha2]);
        let header = format!(
            "Digest username=\"admin\", realm=\"Vigil camera\", nonce=\"abc123\", uri=\"{uri}\", \
             response=\"{resp}\", qop=auth, nc=00000001, cnonce=\"xyz\", algorithm=MD5"
        );
        assert!(a.check("DESCRIBE", Some(&header)));
        // The response covers the method.
        assert!(!a.check("SETUP", Some(&header)));
        // A stale nonce fails.
        assert!(!a.check("DESCRIBE", Some(&header.replace("abc123", "abc124"))));
        // Without qop (RFC 2069).
        let resp = md5_hex(&[&ha1, "abc123", &ha2]);
        let header = format!(
            "Digest username=\"admin\", realm=\"Vigil camera\", nonce=\"abc123\", uri=\"{uri}\", response=\"{resp}\""
        );
        assert!(a.check("DESCRIBE", Some(&header)));
        assert!(!a.check("DESCRIBE", Some("Basic YWRtaW46czNjcmV0")));
    }

    #[test]
    fn md5_known_answer() {
        // RFC 1321 test suite.
        assert_eq!(md5_hex(&["abc"]), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(md5_hex(&["a", "b"]), md5_hex(&["a:b"]));
    }

    #[test]
    fn digest_params_tolerate_garbage() {
        let v: Vec<_> = DigestParams(r#"a="x\"y", b=2 ,c="unterminated"#).collect();
        assert_eq!(
            v,
            vec![("a".into(), "x\"y".into()), ("b".into(), "2".into())]
        );
        assert_eq!(DigestParams("noequals").count(), 0);
        assert_eq!(DigestParams("").count(), 0);
        assert_eq!(DigestParams("=,=,=").count(), 3);
    }
}
