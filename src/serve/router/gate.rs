//! Who is asking, and may they? With `http.auth` on, every request passes
//! [`gate`] before any route sees it; the users themselves (passwords,
//! sessions) are `crate::auth`'s, reached through [`Identify`].

use super::paths::Route;
use super::request::Req;
use crate::auth::Role;
use crate::serve::http::Reply;

/// Who sent a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    pub role: Role,
    /// Authenticated by a session cookie (which a browser sends by itself,
    /// so a state-changing request must also pass the Origin check), not
    /// by credentials sent with the request.
    pub by_cookie: bool,
}

/// Tells who sent a request, when `http.auth` is on.
pub trait Identify: Send + Sync {
    /// The sender, from a session cookie or HTTP Basic credentials:
    /// `Ok(None)` when the request carries neither. `Err` is the answer to
    /// give instead (wrong credentials: 401; too many failures from this
    /// address: 429).
    fn identify(&self, req: &Req<'_>) -> Result<Option<Identity>, Reply>;

    /// The answer to a request that needs credentials and has none.
    fn unauthorized(&self, req: &Req<'_>) -> Reply;
}

/// With `http.auth` on: who sent the request, and may they do this? Sets
/// `req.identity`; `Err` is the answer instead. Public paths pass without
/// credentials (but carry an identity when they have one). A viewer may
/// only read; a state-changing request authenticated by a cookie must come
/// from our own page (its `Origin` names the host it was sent to), which
/// stops other sites from making a logged-in browser act for them.
pub fn gate(auth: &dyn Identify, req: &mut Req<'_>) -> Result<(), Reply> {
    let identity = auth.identify(req)?;
    let route = Route::of(&req.segments);
    let public = route.is_public(req.method);
    let Some(id) = identity else {
        return if public {
            Ok(())
        } else {
            Err(auth.unauthorized(req))
        };
    };
    if req.method.changes_state() {
        let logging_in_or_out = matches!(route, Route::Login | Route::Logout);
        if id.role == Role::Viewer && !logging_in_or_out {
            return Err(Reply::error(
                403,
                "forbidden: viewers may not change anything",
            ));
        }
        if id.by_cookie && !same_origin(req) {
            return Err(Reply::error(
                403,
                "forbidden: a change made with a session cookie must come from this server's page (Origin)",
            ));
        }
    }
    req.identity = Some(id);
    Ok(())
}

/// The request's `Origin` is the host it was sent to (`Host`), over http
/// or https.
fn same_origin(req: &Req<'_>) -> bool {
    let (Some(origin), Some(host)) = (req.header("Origin"), req.header("Host")) else {
        return false;
    };
    let origin = origin.trim();
    let rest = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    rest.is_some_and(|h| h.eq_ignore_ascii_case(host.trim()))
}
