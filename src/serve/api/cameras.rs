//! `/api/cameras` and `/api/cameras/{name}`: the configured cameras, and
//! adding, changing and removing them while recording (SPEC.md, "HTTP
//! API").
//!
//! A change is written to the config file first, with the file's own
//! validation (so an API change obeys exactly the rules of a hand edit),
//! and then applied to the running daemon: only the affected camera's
//! streams restart. Input fields are the config file's keys; values are
//! JSON strings, integers and booleans. `PUT` changes the fields it names
//! (`null` removes an optional one); a password that is absent stays.
//!
//! Passwords are never sent out: a camera shows `password_set`, and a URL
//! with a password shows it as `***`. A URL sent back with `***` as its
//! password keeps the password it had, so what `GET` gives can be edited
//! and sent back as is (`password_set` is ignored on input).

use super::json;
use crate::config::write::EditError;
use crate::config::{redact_url, Camera, CAMERA_KEYS as KEYS};
use crate::daemon::control::{Control, ControlError};
use crate::serve::http::{Body, Reply};
use crate::serve::router::{Method, Req, RouteHook};
use serde_json::{json, Value as Json};
use std::sync::Arc;
use toml_edit::Value;

/// What `GET` shows and input may carry back: not a key of the file.
const READ_ONLY: &str = "password_set";

/// The route.
pub fn hook(control: Arc<Control>) -> RouteHook {
    Arc::new(move |req| {
        let name = match req.segments.as_slice() {
            [a, c] if a == "api" && c == "cameras" => None,
            [a, c, name] if a == "api" && c == "cameras" => Some(name.clone()),
            _ => return None,
        };
        Some(match (req.method, name) {
            (Method::Get | Method::Head, None) => list(&control),
            (Method::Get | Method::Head, Some(n)) => one(&control, &n),
            (Method::Post, None) => add(&control, req),
            (Method::Put, Some(n)) => change(&control, &n, req),
            (Method::Delete, Some(n)) => remove(&control, &n),
            // `Route::methods` answers the others with 405.
            _ => Reply::error(405, "method not allowed"),
        })
    })
}

/// A camera as the API shows it.
pub fn camera_json(c: &Camera) -> Json {
    json!({
        "name": c.name,
        "url": redact_url(&c.url),
        "sub_url": c.sub_url.as_deref().map(redact_url),
        "username": c.username,
        "password_set": c.password.is_some(),
        "transport": c.transport.name(),
        "record": c.record.name(),
        "priority": c.priority,
        "segment_seconds": c.segment_seconds,
        "enabled": c.enabled,
    })
}

fn list(control: &Control) -> Reply {
    let cams: Vec<Json> = control
        .running()
        .cameras()
        .iter()
        .map(camera_json)
        .collect();
    Reply::json(200, &Json::Array(cams))
}

fn one(control: &Control, name: &str) -> Reply {
    match control.running().camera(name) {
        Some(c) => Reply::json(200, &camera_json(&c)),
        None => not_found(name),
    }
}

fn not_found(name: &str) -> Reply {
    Reply::error(404, &format!("no camera named {name:?}"))
}

fn add(control: &Control, req: &Req<'_>) -> Reply {
    let fields = match json::object(req) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let mut out: Vec<(String, Value)> = Vec::new();
    // The documented order first, then the rest (which the validation
    // refuses, naming it).
    let mut keys: Vec<&String> = fields.map().keys().collect();
    keys.sort_by_key(|k| KEYS.iter().position(|x| x == k).unwrap_or(KEYS.len()));
    for k in keys {
        if k == READ_ONLY {
            continue;
        }
        match fields.map().get(k).map(toml_value) {
            Some(Ok(Some(v))) => out.push((k.clone(), v)),
            Some(Ok(None)) | None => {}
            Some(Err(r)) => return r,
        }
    }
    match control.add_camera(&out) {
        Ok(c) => {
            let mut r = Reply::json(201, &camera_json(&c));
            r.headers
                .push(("Location", format!("/api/cameras/{}", c.name)));
            r
        }
        Err(e) => error_reply(e),
    }
}

fn change(control: &Control, name: &str, req: &Req<'_>) -> Reply {
    let fields = match json::object(req) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let old = control.running().camera(name);
    let mut patch: Vec<(String, Option<Value>)> = Vec::new();
    for (k, v) in fields.map() {
        if k == READ_ONLY {
            continue;
        }
        let v = match toml_value(v) {
            Ok(v) => v,
            Err(r) => return r,
        };
        let v = match (k.as_str(), v, &old) {
            ("url", Some(Value::String(s)), Some(o)) => Some(keep_password(s.value(), &o.url)),
            ("sub_url", Some(Value::String(s)), Some(o)) => Some(match &o.sub_url {
                Some(old) => keep_password(s.value(), old),
                None => Value::from(s.value().as_str()),
            }),
            (_, v, _) => v,
        };
        patch.push((k.clone(), v));
    }
    match control.change_camera(name, &patch) {
        Ok(c) => Reply::json(200, &camera_json(&c)),
        Err(e) => error_reply(e),
    }
}

fn remove(control: &Control, name: &str) -> Reply {
    match control.remove_camera(name) {
        Ok(()) => Reply {
            status: 204,
            content_type: "application/json",
            headers: Vec::new(),
            body: Body::Bytes(Vec::new()),
        },
        Err(e) => error_reply(e),
    }
}

/// A JSON value as a TOML value: `None` for `null` (a key to remove).
fn toml_value(v: &Json) -> Result<Option<Value>, Reply> {
    Ok(Some(match v {
        Json::Null => return Ok(None),
        Json::String(s) => Value::from(s.as_str()),
        Json::Bool(b) => Value::from(*b),
        // A fraction becomes a TOML float, which the validation refuses
        // where a whole number is wanted, naming the key.
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::from(i),
            None => Value::from(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::Array(_) | Json::Object(_) => {
            return Err(Reply::error(
                400,
                "body: every field is a string, a number or true/false",
            ))
        }
    }))
}

/// `new` as given, except that a password shown as `***` (what `GET`
/// sends) is the one `old` has.
fn keep_password(new: &str, old: &str) -> Value {
    let (Ok(mut n), Ok(o)) = (url::Url::parse(new), url::Url::parse(old)) else {
        return Value::from(new);
    };
    match (n.password(), o.password()) {
        (Some("***"), Some(p)) => {
            if n.set_password(Some(p)).is_ok() {
                return Value::from(n.as_str());
            }
            Value::from(new)
        }
        _ => Value::from(new),
    }
}

fn error_reply(e: ControlError) -> Reply {
    match e {
        // `field` besides the message: a form can mark the field at fault.
        ControlError::Edit(EditError::Field { field, message }) => Reply::json(
            400,
            &json!({ "error": format!("{field}: {message}"), "field": field }),
        ),
        ControlError::Edit(EditError::NotFound(n)) => not_found(&n),
        ControlError::Edit(EditError::Exists(n)) => {
            Reply::error(409, &format!("a camera named {n:?} exists already"))
        }
        ControlError::Stopped => Reply::error(503, "recording is stopping"),
        e => {
            log::warn!("api: {e}");
            Reply::error(500, &e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_shown() {
        let c = crate::config::parse_str(
            "[[camera]]\nname = \"a\"\nurl = \"rtsp://u:hunter2@h/\"\npassword = \"s3cret\"\n",
            std::path::Path::new("."),
        )
        .unwrap()
        .cameras
        .remove(0);
        let v = camera_json(&c).to_string();
        assert!(!v.contains("hunter2") && !v.contains("s3cret"), "{v}");
        assert!(v.contains("\"password_set\":true"), "{v}");
        assert!(v.contains("u:***@h"), "{v}");
    }

    #[test]
    fn starred_password_is_kept() {
        let v = keep_password("rtsp://u:***@h2/x", "rtsp://u:hunter2@h/");
        assert_eq!(v.as_str(), Some("rtsp://u:hunter2@h2/x"));
        let v = keep_password("rtsp://u:new@h/", "rtsp://u:hunter2@h/");
        assert_eq!(v.as_str(), Some("rtsp://u:new@h/"));
        let v = keep_password("rtsp://h/", "rtsp://u:hunter2@h/");
        assert_eq!(v.as_str(), Some("rtsp://h/"));
    }

    #[test]
    fn json_to_toml() {
        assert_eq!(
            toml_value(&json!(null))
                .ok()
                .flatten()
                .map(|v| v.to_string()),
            None
        );
        let t = |j: Json| toml_value(&j).ok().flatten().map(|v| v.to_string());
        assert_eq!(t(json!(5)).as_deref(), Some("5"));
        assert_eq!(t(json!(true)).as_deref(), Some("true"));
        assert_eq!(t(json!("a\"b")).as_deref(), Some("'a\"b'"));
        assert!(t(json!(1.5)).is_some());
        assert!(toml_value(&json!([1])).is_err());
    }
}
