//! Changes to the config file's `[[camera]]` tables, made in place so that
//! the user's comments and layout survive (SPEC.md, "Config file"), and the
//! atomic write that puts the result on disk.
//!
//! Every edit works on the text as it is on disk now (an SSH edit not yet
//! reloaded is kept, not overwritten), and returns the new text only once
//! it parses and validates with the same rules as a hand-written file
//! ([`parse_str`]): a file Vigil would refuse at start is never written.
//! A value that changes keeps the comment after it; a table that goes
//! takes the comment lines just above its header with it (toml_edit holds
//! them as that header's decoration).
//!
//! Passwords are written as given (it is the user's file) and never appear
//! in an error: validation errors name the key, and `ConfigError` messages
//! about URLs are already redacted.

use super::{parse_str, Camera, Config, ConfigError};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use toml_edit::{ArrayOfTables, DocumentMut, Item, Table, Value};

/// Why an edit was refused. Nothing was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EditError {
    /// The file as it is does not parse or validate (an edit made by hand
    /// and not fixed yet), so no edit can be checked against it.
    File(ConfigError),
    /// The edited camera would be invalid: `field` names the key at fault.
    Field { field: String, message: String },
    /// No `[[camera]]` has this name.
    NotFound(String),
    /// A `[[camera]]` of this name exists already.
    Exists(String),
}

impl std::fmt::Display for EditError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EditError::File(e) => write!(f, "the config file is not valid as it is: {e}"),
            EditError::Field { field, message } => write!(f, "{field}: {message}"),
            EditError::NotFound(n) => write!(f, "no camera named {n:?}"),
            EditError::Exists(n) => write!(f, "a camera named {n:?} exists already"),
        }
    }
}

impl std::error::Error for EditError {}

/// The result of an edit: the new text, and the config it describes.
#[derive(Debug)]
pub struct Edited {
    pub text: String,
    pub config: Config,
}

/// Parses `text` for editing; it must be a valid config already.
fn open(text: &str, base: &Path) -> Result<(DocumentMut, Config), EditError> {
    let config = parse_str(text, base).map_err(EditError::File)?;
    let doc = text.parse::<DocumentMut>().map_err(|e| {
        EditError::File(ConfigError {
            file: None,
            line: None,
            key: String::new(),
            message: format!("invalid TOML: {}", e.message().trim()),
        })
    })?;
    Ok((doc, config))
}

/// The `[[camera]]` array, if the file has one.
fn cameras_mut(doc: &mut DocumentMut) -> Option<&mut ArrayOfTables> {
    doc.as_table_mut()
        .get_mut("camera")
        .and_then(Item::as_array_of_tables_mut)
}

fn name_of(t: &Table) -> Option<&str> {
    t.get("name").and_then(Item::as_str)
}

fn index_of(doc: &mut DocumentMut, name: &str) -> Option<usize> {
    cameras_mut(doc)?
        .iter()
        .position(|t| name_of(t) == Some(name))
}

/// The new text, checked: an error about camera number `index` (0-based)
/// is the edit's fault and names the field; any other, the file's.
fn finish(
    doc: &DocumentMut,
    original: &str,
    base: &Path,
    index: Option<usize>,
) -> Result<Edited, EditError> {
    let mut text = doc.to_string();
    // toml_edit writes "\n" for what it adds; a file written with "\r\n"
    // (edited on Windows) stays that way throughout.
    if original.contains("\r\n") {
        text = text.replace("\r\n", "\n").replace('\n', "\r\n");
    }
    match parse_str(&text, base) {
        Ok(config) => Ok(Edited { text, config }),
        Err(e) => {
            let prefix = index.map(|i| format!("camera[{}].", i + 1));
            match prefix.as_deref().and_then(|p| e.key.strip_prefix(p)) {
                Some(field) => Err(EditError::Field {
                    field: field.to_owned(),
                    message: e.message,
                }),
                None => Err(EditError::File(e)),
            }
        }
    }
}

/// Appends a `[[camera]]` with `fields` (in that order) after the last
/// camera of the file.
pub fn add_camera(
    text: &str,
    base: &Path,
    fields: &[(String, Value)],
) -> Result<Edited, EditError> {
    let (mut doc, _) = open(text, base)?;
    let name = fields
        .iter()
        .find(|(k, _)| k == "name")
        .and_then(|(_, v)| v.as_str())
        .ok_or_else(|| EditError::Field {
            field: "name".into(),
            message: "missing: every camera needs a name".into(),
        })?
        .to_owned();
    if index_of(&mut doc, &name).is_some() {
        return Err(EditError::Exists(name));
    }
    let mut table = Table::new();
    // A blank line before the header, as a person would write it.
    table.decor_mut().set_prefix("\n");
    for (k, v) in fields {
        table.insert(k, Item::Value(v.clone()));
    }
    let root = doc.as_table_mut();
    // `open` checked that `camera`, if present, is an array of tables.
    let index = match root
        .get_mut("camera")
        .and_then(Item::as_array_of_tables_mut)
    {
        Some(a) => {
            // A position-less table is placed right after the table before
            // it in the array: the new camera follows the last one, even
            // when other sections come after it in the file.
            a.push(table);
            a.len() - 1
        }
        None => {
            let mut a = ArrayOfTables::new();
            a.push(table);
            root.insert("camera", Item::ArrayOfTables(a));
            0
        }
    };
    finish(&doc, text, base, Some(index))
}

/// Sets (`Some`) or removes (`None`) keys of the camera named `name`. A
/// value that changes keeps its place and the comment after it; keys not
/// named are left exactly as they are. `name` itself cannot change (its
/// recordings and URLs are filed under it).
pub fn change_camera(
    text: &str,
    base: &Path,
    name: &str,
    patch: &[(String, Option<Value>)],
) -> Result<Edited, EditError> {
    let (mut doc, config) = open(text, base)?;
    let index = index_of(&mut doc, name).ok_or_else(|| EditError::NotFound(name.to_owned()))?;
    // The values in force, defaults included: setting a key that is not
    // written to the value it has anyway changes nothing, so writes
    // nothing (what `GET` shows can be sent back without filling the
    // file with defaults).
    let effective = config
        .cameras
        .iter()
        .find(|c| c.name == name)
        .map(camera_fields)
        .unwrap_or_default();
    let Some(table) = cameras_mut(&mut doc).and_then(|a| a.get_mut(index)) else {
        return Err(EditError::NotFound(name.to_owned()));
    };
    for (k, v) in patch {
        if k == "name" && v.as_ref().and_then(Value::as_str) != Some(name) {
            return Err(EditError::Field {
                field: "name".into(),
                message: format!(
                    "a camera cannot be renamed (its recordings are filed under {name:?}); delete it and add a new one"
                ),
            });
        }
        match v {
            None => {
                table.remove(k);
            }
            Some(new) => {
                let in_force = effective.iter().find(|(e, _)| e == k).map(|(_, v)| v);
                if !table.contains_key(k) && in_force.is_some_and(|v| same_value(v, new)) {
                    continue;
                }
                set_keeping_decor(table, k, new.clone());
            }
        }
    }
    finish(&doc, text, base, Some(index))
}

/// `table[key] = value`, keeping the old value's surrounding whitespace
/// and trailing comment; unchanged values are not touched at all.
fn set_keeping_decor(table: &mut Table, key: &str, mut value: Value) {
    match table.get_mut(key).and_then(Item::as_value_mut) {
        Some(old) if same_value(old, &value) => {}
        Some(old) => {
            *value.decor_mut() = old.decor().clone();
            *old = value;
        }
        None => {
            table.insert(key, Item::Value(value));
        }
    }
}

fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) => x.value() == y.value(),
        (Value::Integer(x), Value::Integer(y)) => x.value() == y.value(),
        (Value::Boolean(x), Value::Boolean(y)) => x.value() == y.value(),
        _ => false,
    }
}

/// Removes the camera named `name`.
pub fn remove_camera(text: &str, base: &Path, name: &str) -> Result<Edited, EditError> {
    let (mut doc, _) = open(text, base)?;
    let index = index_of(&mut doc, name).ok_or_else(|| EditError::NotFound(name.to_owned()))?;
    let Some(arr) = cameras_mut(&mut doc) else {
        return Err(EditError::NotFound(name.to_owned()));
    };
    let removed = arr.remove(index);
    keep_detached_comments(&mut doc, &removed);
    let Some(arr) = cameras_mut(&mut doc) else {
        return Err(EditError::NotFound(name.to_owned()));
    };
    if arr.is_empty() {
        // An empty array of tables would vanish from the text anyway.
        doc.as_table_mut().remove("camera");
    }
    finish(&doc, text, base, None)
}

/// The lines above a removed table's header down to the last blank line
/// are not about that table (e.g. `# --- cameras ---` before the first
/// camera): they move to whatever comes next in the file; the comment
/// right above the header goes with the table.
fn keep_detached_comments(doc: &mut DocumentMut, removed: &Table) {
    let prefix = removed
        .decor()
        .prefix()
        .and_then(|p| p.as_str())
        .unwrap_or("");
    let mut cut = 0;
    let mut at = 0;
    for line in prefix.split_inclusive('\n') {
        at += line.len();
        if line.trim().is_empty() {
            cut = at;
        }
    }
    let detached = &prefix[..cut];
    if !detached.contains('#') {
        return;
    }
    let Some(pos) = removed.position() else {
        return;
    };
    // The table shown right after the removed one: the smallest position
    // after it.
    let mut next: Option<&mut Table> = None;
    for (_, item) in doc.as_table_mut().iter_mut() {
        let tables: Vec<&mut Table> = match item {
            Item::Table(t) => vec![t],
            Item::ArrayOfTables(a) => a.iter_mut().collect(),
            _ => Vec::new(),
        };
        for t in tables {
            let p = t.position().unwrap_or(isize::MAX);
            if p > pos
                && next
                    .as_ref()
                    .is_none_or(|n| p < n.position().unwrap_or(isize::MAX))
            {
                next = Some(t);
            }
        }
    }
    match next {
        Some(t) => {
            let old = t.decor().prefix().and_then(|p| p.as_str()).unwrap_or("\n");
            let merged = format!("{detached}{}", old.trim_start_matches(['\r', '\n']));
            t.decor_mut().set_prefix(merged);
        }
        None => {
            let trailing = doc.trailing().as_str().unwrap_or("").to_owned();
            doc.set_trailing(format!("{detached}{trailing}"));
        }
    }
}

/// Every key of a camera as the config file writes it, in the documented
/// order; optional keys only when set.
pub fn camera_fields(cam: &Camera) -> Vec<(String, Value)> {
    let mut out = vec![
        ("name".to_owned(), Value::from(cam.name.as_str())),
        ("url".to_owned(), Value::from(cam.url.as_str())),
    ];
    let optional = [
        ("sub_url", &cam.sub_url),
        ("username", &cam.username),
        ("password", &cam.password),
    ];
    for (k, v) in optional {
        if let Some(v) = v {
            out.push((k.to_owned(), Value::from(v.as_str())));
        }
    }
    out.extend([
        ("transport".to_owned(), Value::from(cam.transport.name())),
        ("record".to_owned(), Value::from(cam.record.name())),
        ("priority".to_owned(), Value::from(i64::from(cam.priority))),
        (
            "segment_seconds".to_owned(),
            Value::from(i64::from(cam.segment_seconds)),
        ),
        ("enabled".to_owned(), Value::from(cam.enabled)),
    ]);
    out
}

/// `cameras` as `[[camera]]` tables, nothing else: the text edited in
/// memory when there is no config file (`vigil demo`).
pub fn cameras_text(cameras: &[Camera]) -> String {
    let mut doc = DocumentMut::new();
    let mut arr = ArrayOfTables::new();
    for cam in cameras {
        let mut t = Table::new();
        for (k, v) in camera_fields(cam) {
            t.insert(&k, Item::Value(v));
        }
        arr.push(t);
    }
    if !arr.is_empty() {
        doc.as_table_mut()
            .insert("camera", Item::ArrayOfTables(arr));
    }
    doc.to_string()
}

/// The temporary file next to `target` that [`write_atomic`] renames over
/// it. One fixed name: a write cut short by a crash leaves at most this
/// one file, which the next write truncates and reuses.
pub fn temp_path(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "vigil.toml".into());
    target.with_file_name(format!(".{name}.vigil-tmp"))
}

/// Replaces the file at `path` with `text` so that a crash at any moment
/// leaves either the old file or the new one, never a mix: write a
/// temporary file in the same directory, fsync it, rename it over the old
/// one (atomic within a file system), fsync the directory (so the rename
/// itself survives a power cut). A symbolic link is followed: the file it
/// points to is replaced, the link stays. The new file keeps the old one's
/// permissions (it holds camera passwords).
pub fn write_atomic(path: &Path, text: &str) -> io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let target = match fs::canonicalize(path) {
        Ok(p) => p,
        Err(e) if e.kind() == io::ErrorKind::NotFound => path.to_owned(),
        Err(e) => return Err(e),
    };
    let old_mode = fs::metadata(&target)
        .ok()
        .map(|m| m.permissions().mode() & 0o7777);
    let tmp = temp_path(&target);
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        if let Some(mode) = old_mode {
            f.set_permissions(fs::Permissions::from_mode(mode))?;
        }
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, &target)?;
        let dir = match target.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests;
