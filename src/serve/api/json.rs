//! Request bodies in JSON, with errors that name the field at fault, as
//! SPEC.md wants for every malformed request.

use crate::serve::http::Reply;
use crate::serve::router::Req;
use serde_json::{Map, Value};

/// A request body that is a JSON object.
pub struct Fields {
    map: Map<String, Value>,
}

/// The body as a JSON object, or a 400 saying what is wrong with it.
pub fn object(req: &Req<'_>) -> Result<Fields, Reply> {
    if req.body.is_empty() {
        return Err(Reply::error(
            400,
            "body: expected a JSON object, got nothing",
        ));
    }
    match serde_json::from_slice::<Value>(&req.body) {
        Ok(Value::Object(map)) => Ok(Fields { map }),
        Ok(_) => Err(Reply::error(400, "body: expected a JSON object")),
        Err(e) => Err(Reply::error(400, &format!("body: not valid JSON: {e}"))),
    }
}

fn bad(name: &str, what: &str) -> Reply {
    Reply::error(400, &format!("{name}: {what}"))
}

impl Fields {
    /// Refuses fields not in `allowed`, naming the first such field.
    pub fn only(&self, allowed: &[&str]) -> Result<(), Reply> {
        match self.map.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(k) => Err(bad(k, "unknown field")),
            None => Ok(()),
        }
    }

    pub fn has(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }

    /// A string field, if present.
    pub fn str(&self, name: &str) -> Result<Option<&str>, Reply> {
        match self.map.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(bad(name, "must be a string")),
        }
    }

    /// A string field that must be there.
    pub fn required_str(&self, name: &str) -> Result<&str, Reply> {
        self.str(name)?.ok_or_else(|| bad(name, "missing"))
    }

    /// An integer field within `min..=max`, if present.
    pub fn int(&self, name: &str, min: i64, max: i64) -> Result<Option<i64>, Reply> {
        match self.map.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => match n.as_i64() {
                Some(v) if (min..=max).contains(&v) => Ok(Some(v)),
                _ => Err(bad(
                    name,
                    &format!("must be an integer between {min} and {max}"),
                )),
            },
            Some(_) => Err(bad(name, "must be an integer")),
        }
    }

    /// A boolean field, if present.
    pub fn bool(&self, name: &str) -> Result<Option<bool>, Reply> {
        match self.map.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(bad(name, "must be true or false")),
        }
    }

    /// All the fields, for what the helpers above do not cover.
    pub fn map(&self) -> &Map<String, Value> {
        &self.map
    }
}
