//! `POST /api/login`, `POST /api/logout` and `/api/users[/{name}]`
//! (SPEC.md, "HTTP API"; README, "Users and authentication").
//!
//! The gate (`router::gate`) has already decided who is asking (`req.identity`)
//! and kept viewers from changing anything; here the user list and other
//! users' entries are for admins only, and a viewer may read their own.
//! With `http.auth` off nobody is identified and everyone may do
//! everything, as on every other path; logging in then answers 400.
//!
//! No answer or error carries a password or a password hash.

use super::json;
use crate::auth::{self, password, sessions, AddError, Auth, Role};
use crate::serve::http::{Body, Reply};
use crate::serve::router::{refused_reply, Method, Req, RouteHook};
use crate::store::db::users::{UserError, UserRow};
use serde_json::{json, Value};
use std::sync::Arc;

/// The hook. `enabled`: `http.auth` is on (login and logout work).
pub fn hook(auth: Arc<Auth>, enabled: bool) -> RouteHook {
    Arc::new(move |req| {
        let seg: Vec<&str> = req.segments.iter().map(String::as_str).collect();
        match seg.as_slice() {
            ["api", "login"] => Some(login(&auth, enabled, req)),
            ["api", "logout"] => Some(logout(&auth, req)),
            ["api", "users"] => Some(match req.method {
                Method::Post => add(&auth, req),
                _ => list(&auth, req),
            }),
            ["api", "users", name] => {
                let name = (*name).to_owned();
                Some(match req.method {
                    Method::Put => update(&auth, req, &name),
                    Method::Delete => delete(&auth, req, &name),
                    _ => show(&auth, req, &name),
                })
            }
            _ => None,
        }
    })
}

fn user_json(u: &UserRow) -> Value {
    json!({ "name": u.name, "role": u.role })
}

/// Admins, or anyone when authentication is off.
fn admin_only(req: &Req<'_>) -> Result<(), Reply> {
    match &req.identity {
        Some(id) if id.role != Role::Admin => {
            Err(Reply::error(403, "forbidden: only admins may manage users"))
        }
        _ => Ok(()),
    }
}

/// A login is only taken from a script (no `Origin`) or from our own page:
/// another site must not log a visitor's browser into an account of its
/// choosing.
fn same_origin_or_none(req: &Req<'_>) -> bool {
    let Some(origin) = req.header("Origin") else {
        return true;
    };
    let Some(host) = req.header("Host") else {
        return false;
    };
    let origin = origin.trim();
    origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(|h| h.eq_ignore_ascii_case(host.trim()))
}

fn login(auth: &Auth, enabled: bool, req: &Req<'_>) -> Reply {
    if !enabled {
        return Reply::error(
            400,
            "authentication is off ([http] auth = false): there is nothing to log in to",
        );
    }
    if !same_origin_or_none(req) {
        return Reply::error(
            403,
            "forbidden: a login must come from this server's page (Origin)",
        );
    }
    let f = match json::object(req) {
        Ok(f) => f,
        Err(r) => return r,
    };
    if let Err(r) = f.only(&["username", "password"]) {
        return r;
    }
    let (user, pw) = match (f.required_str("username"), f.required_str("password")) {
        (Ok(u), Ok(p)) => (u, p),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    match auth.login(req.peer.map(|p| p.ip()), user, pw) {
        Ok((role, cookie)) => {
            let mut r = Reply::json(200, &json!({ "user": user, "role": role.name() }));
            r.headers.push(("Set-Cookie", cookie));
            r.headers.push(("Cache-Control", "no-store".to_owned()));
            r
        }
        // A form, not a Basic client: no challenge.
        Err(refused) => refused_reply(&refused, false),
    }
}

fn logout(auth: &Auth, req: &Req<'_>) -> Reply {
    if let Some(token) = req.header("Cookie").and_then(sessions::from_cookie_header) {
        if let Err(e) = auth.logout(token) {
            return Reply::error(503, &format!("the user database is unavailable: {e}"));
        }
    }
    let mut r = Reply::json(200, &json!({ "user": Value::Null }));
    r.headers.push(("Set-Cookie", sessions::clear_cookie()));
    r
}

fn db_error(e: impl std::fmt::Display) -> Reply {
    log::warn!("http: users: {e}");
    Reply::error(503, &format!("the user database is unavailable: {e}"))
}

fn user_error(e: UserError) -> Reply {
    match e {
        UserError::NotFound(_) => Reply::error(404, &e.to_string()),
        UserError::Exists(_) | UserError::LastAdmin(_) => Reply::error(409, &e.to_string()),
        UserError::TooMany => Reply::error(409, &e.to_string()),
        UserError::Db(e) => db_error(e),
    }
}

fn add_error(e: AddError) -> Reply {
    match e {
        AddError::Hash(password::Error::Busy) => {
            let mut r = Reply::error(503, &password::Error::Busy.to_string());
            r.headers.push(("Retry-After", "1".to_owned()));
            r
        }
        AddError::Hash(e) => Reply::error(500, &e.to_string()),
        AddError::User(e) => user_error(e),
    }
}

fn list(auth: &Auth, req: &Req<'_>) -> Reply {
    if let Err(r) = admin_only(req) {
        return r;
    }
    match auth.users() {
        Ok(users) => Reply::json(200, &Value::Array(users.iter().map(user_json).collect())),
        Err(e) => db_error(e),
    }
}

fn show(auth: &Auth, req: &Req<'_>, name: &str) -> Reply {
    let own = req.identity.as_ref().is_some_and(|id| id.user == name);
    if !own {
        if let Err(r) = admin_only(req) {
            return r;
        }
    }
    match auth.user(name) {
        Ok(Some(u)) => Reply::json(200, &user_json(&u)),
        Ok(None) => user_error(UserError::NotFound(name.to_owned())),
        Err(e) => db_error(e),
    }
}

/// The `role` field, if given.
fn role_field(f: &json::Fields) -> Result<Option<Role>, Reply> {
    match f.str("role")? {
        None => Ok(None),
        Some(r) => auth::parse_role(r)
            .map(Some)
            .ok_or_else(|| Reply::error(400, "role: must be admin or viewer")),
    }
}

/// The `password` field, if given, checked against the rules.
fn password_field(f: &json::Fields) -> Result<Option<&str>, Reply> {
    match f.str("password")? {
        None => Ok(None),
        Some(p) => match password::check_new(p) {
            Ok(()) => Ok(Some(p)),
            Err(why) => Err(Reply::error(400, &format!("password: {why}"))),
        },
    }
}

fn add(auth: &Auth, req: &Req<'_>) -> Reply {
    if let Err(r) = admin_only(req) {
        return r;
    }
    let parsed = json::object(req).and_then(|f| {
        f.only(&["name", "password", "role"])?;
        let name = f.required_str("name")?.to_owned();
        auth::check_name(&name).map_err(|why| Reply::error(400, &format!("name: {why}")))?;
        let role = role_field(&f)?.ok_or_else(|| Reply::error(400, "role: missing"))?;
        let pw = password_field(&f)?
            .ok_or_else(|| Reply::error(400, "password: missing"))?
            .to_owned();
        Ok((name, role, pw))
    });
    let (name, role, pw) = match parsed {
        Ok(v) => v,
        Err(r) => return r,
    };
    match auth.add_user(&name, role, &pw) {
        Ok(()) => {
            log::info!("users: added {name} ({}) through the API", role.name());
            let mut r = Reply::json(201, &json!({ "name": name, "role": role.name() }));
            r.headers.push(("Location", format!("/api/users/{name}")));
            r
        }
        Err(e) => add_error(e),
    }
}

fn update(auth: &Auth, req: &Req<'_>, name: &str) -> Reply {
    if let Err(r) = admin_only(req) {
        return r;
    }
    let parsed = json::object(req).and_then(|f| {
        f.only(&["password", "role"])?;
        let role = role_field(&f)?;
        let pw = password_field(&f)?.map(str::to_owned);
        if role.is_none() && pw.is_none() {
            return Err(Reply::error(400, "body: give password, role or both"));
        }
        Ok((pw, role))
    });
    let (pw, role) = match parsed {
        Ok(v) => v,
        Err(r) => return r,
    };
    // Changing one's own password keeps the session it is done from.
    let keep = req
        .identity
        .as_ref()
        .filter(|id| id.user == name && id.by_cookie)
        .and_then(|_| req.header("Cookie"))
        .and_then(sessions::from_cookie_header);
    match auth.update_user(name, pw.as_deref(), role, keep) {
        Ok(()) => match auth.user(name) {
            Ok(Some(u)) => {
                log::info!(
                    "users: changed {name}{}{} through the API",
                    if pw.is_some() { " (password)" } else { "" },
                    role.map(|r| format!(" (role {})", r.name()))
                        .unwrap_or_default()
                );
                Reply::json(200, &user_json(&u))
            }
            Ok(None) => user_error(UserError::NotFound(name.to_owned())),
            Err(e) => db_error(e),
        },
        Err(e) => add_error(e),
    }
}

fn delete(auth: &Auth, req: &Req<'_>, name: &str) -> Reply {
    if let Err(r) = admin_only(req) {
        return r;
    }
    match auth.delete_user(name) {
        Ok(()) => {
            log::info!("users: deleted {name} through the API");
            Reply {
                status: 204,
                content_type: "application/json",
                headers: Vec::new(),
                body: Body::Bytes(Vec::new()),
            }
        }
        Err(e) => user_error(e),
    }
}
