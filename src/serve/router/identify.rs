//! How a request is identified with the users of `crate::auth`: HTTP Basic
//! credentials or a session cookie, and the answers (401 with or without
//! a challenge, 429, 503) when it cannot be.

use super::gate::{Identify, Identity};
use super::request::Req;
use crate::auth::{parse_basic, sessions, Auth, Refused, CHALLENGE};
use crate::serve::http::Reply;

/// The answer to a refused login. `challenge`: add `WWW-Authenticate`
/// to a 401.
pub fn refused_reply(refused: &Refused, challenge: bool) -> Reply {
    match refused {
        Refused::Wrong => {
            let mut r = Reply::error(401, "wrong user name or password");
            if challenge {
                r.headers.push(("WWW-Authenticate", CHALLENGE.to_owned()));
            }
            r
        }
        Refused::Locked(wait) => {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let mut r = Reply::error(
                429,
                &format!("too many failed logins from this address: try again in {secs} s"),
            );
            r.headers.push(("Retry-After", secs.to_string()));
            r
        }
        Refused::Busy => {
            let mut r = Reply::error(503, "too many logins at once: try again in a second");
            r.headers.push(("Retry-After", "1".to_owned()));
            r
        }
        Refused::Unavailable(e) => {
            Reply::error(503, &format!("the user database is unavailable: {e}"))
        }
    }
}

/// Whether the request comes from our own page's scripts or media
/// elements (fetch metadata, or the `X-Requested-With` header older
/// browsers' scripts can send): those must not get a Basic challenge,
/// which would make the browser pop up its own login dialog instead of
/// the page showing its form.
pub fn from_page(req: &Req<'_>) -> bool {
    if req.header("X-Requested-With").is_some() {
        return true;
    }
    let site = req.header("Sec-Fetch-Site").map(str::trim);
    let mode = req.header("Sec-Fetch-Mode").map(str::trim);
    site.is_some_and(|s| s.eq_ignore_ascii_case("same-origin"))
        && !mode.is_some_and(|m| m.eq_ignore_ascii_case("navigate"))
}

/// Whether a browser sent the request (it names an origin, or carries
/// fetch metadata): a browser may have remembered Basic credentials and
/// send them with any request to us, even one another site started, so
/// such credentials count as ambient, like a cookie.
fn from_browser(req: &Req<'_>) -> bool {
    req.header("Origin").is_some() || req.header("Sec-Fetch-Site").is_some()
}

impl Identify for Auth {
    fn identify(&self, req: &Req<'_>) -> Result<Option<Identity>, Reply> {
        let peer = req.peer.map(|p| p.ip());
        if let Some(value) = req.header("Authorization") {
            let Some((user, password)) = parse_basic(value) else {
                let mut r = Reply::error(
                    401,
                    "Authorization: only HTTP Basic credentials (user:password in base64) are accepted",
                );
                r.headers.push(("WWW-Authenticate", CHALLENGE.to_owned()));
                return Err(r);
            };
            return match self.basic(peer, &user, &password) {
                Ok(role) => Ok(Some(Identity {
                    user,
                    role,
                    by_cookie: from_browser(req),
                })),
                Err(refused) => Err(refused_reply(&refused, true)),
            };
        }
        let Some(token) = req.header("Cookie").and_then(sessions::from_cookie_header) else {
            return Ok(None);
        };
        match self.session(token) {
            Ok(Some((user, role))) => Ok(Some(Identity {
                user,
                role,
                by_cookie: true,
            })),
            // Expired or ended: as if there were no cookie (the page and
            // the login stay reachable); `unauthorized` says why.
            Ok(None) => Ok(None),
            Err(e) => Err(refused_reply(&Refused::Unavailable(e), false)),
        }
    }

    fn unauthorized(&self, req: &Req<'_>) -> Reply {
        let had_session = req
            .header("Cookie")
            .and_then(sessions::from_cookie_header)
            .is_some();
        let mut r = Reply::error(
            401,
            if had_session {
                "your session has expired or ended: log in again"
            } else {
                "authentication required: log in (POST /api/login) or send HTTP Basic credentials"
            },
        );
        if !from_page(req) {
            r.headers.push(("WWW-Authenticate", CHALLENGE.to_owned()));
        }
        r
    }
}
