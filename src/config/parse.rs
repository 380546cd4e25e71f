//! Walks a parsed TOML document into [`Config`], with a line number on
//! every error. Each section accepts exactly its documented keys.

use super::*;
use toml_edit::{Document, Item, Table, Value};

/// Parses and validates config text; relative paths resolve against `base`.
pub fn parse_str(text: &str, base: &Path) -> Result<Config, ConfigError> {
    let doc = Document::parse(text).map_err(|e| {
        let line = e.span().map(|s| line_of(text, s.start));
        // toml_edit's message repeats the position and source line; keep its
        // last line, which says what is wrong.
        let msg = e.message().trim().to_owned();
        ConfigError {
            file: None,
            line,
            key: String::new(),
            message: format!("invalid TOML: {msg}"),
        }
    })?;
    let w = Walker { text };
    w.config(doc.as_table(), base)
}

fn line_of(text: &str, offset: usize) -> u32 {
    let end = offset.min(text.len());
    let n = text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count();
    u32::try_from(n + 1).unwrap_or(u32::MAX)
}

struct Walker<'t> {
    text: &'t str,
}

/// One TOML table being read, with the keys it allows.
struct Section<'a, 't> {
    w: &'a Walker<'t>,
    table: &'a Table,
    /// Dotted prefix for error messages, e.g. `storage` or `camera[2]`.
    prefix: String,
}

impl<'t> Walker<'t> {
    fn err(&self, span: Option<std::ops::Range<usize>>, key: &str, msg: String) -> ConfigError {
        ConfigError {
            file: None,
            line: span.map(|s| line_of(self.text, s.start)),
            key: key.to_owned(),
            message: msg,
        }
    }

    fn config(&self, root: &Table, base: &Path) -> Result<Config, ConfigError> {
        for (key, item) in root.iter() {
            let ok = match key {
                "storage" | "memory" | "http" | "system" => item.is_table(),
                "camera" => item.is_array_of_tables(),
                _ => {
                    return Err(self.err(
                        key_span(root, key),
                        key,
                        "unknown section or key (expected [storage], [memory], [http], [system] or [[camera]])".into(),
                    ))
                }
            };
            if !ok {
                let want = if key == "camera" {
                    "an array of tables, written [[camera]]"
                } else {
                    "a table, written [section]"
                };
                return Err(self.err(key_span(root, key), key, format!("must be {want}")));
            }
        }
        let empty = Table::new();
        let section = |name: &str| Section {
            w: self,
            table: root.get(name).and_then(Item::as_table).unwrap_or(&empty),
            prefix: name.to_owned(),
        };

        let s = section("storage");
        s.allow(&["path", "db", "pool_size_mb", "pools", "sync_interval_ms"])?;
        let path = base.join(s.string("path")?.unwrap_or_else(|| "vigil-data".into()));
        let db = match s.string("db")? {
            Some(db) => base.join(db),
            None => path.join("vigil.db"),
        };
        let pool_size_mb = s.int("pool_size_mb", 1, 1 << 20)?;
        let pools = s.int("pools", 2, 1 << 20)?;
        let storage = Storage {
            db,
            sized_by_default: pool_size_mb.is_none() && pools.is_none(),
            pool_size_mb: pool_size_mb.unwrap_or(256),
            pools: pools.unwrap_or(16),
            sync_interval_ms: s.int("sync_interval_ms", 100, 600_000)?.unwrap_or(2000),
            path,
        };

        let m = section("memory");
        m.allow(&["arena_mb", "swap_file", "swap_mb", "max_frame_kb"])?;
        let memory = Memory {
            arena_mb: m.int("arena_mb", 1, 4096)?.unwrap_or(8),
            swap_file: m
                .string("swap_file")?
                .filter(|s| !s.is_empty())
                .map(|f| base.join(f)),
            swap_mb: m.int("swap_mb", 0, 1 << 16)?.unwrap_or(0),
            max_frame_kb: m.int("max_frame_kb", 16, 64 * 1024)?.unwrap_or(2048),
        };
        if memory.swap_file.is_some() && memory.swap_mb == 0 {
            return Err(m.err_at(
                "swap_mb",
                "must be more than 0 when swap_file is set".into(),
            ));
        }

        let h = section("http");
        h.allow(&["listen", "auth", "max_clients", "mjpeg_fps"])?;
        let listen = match h.string("listen")? {
            None => SocketAddr::from(([0, 0, 0, 0], 8080)),
            Some(v) => v.parse().map_err(|_| {
                h.err_at(
                    "listen",
                    format!("expected an address like \"0.0.0.0:8080\", got {v:?}"),
                )
            })?,
        };
        let http = Http {
            listen,
            auth: h.bool("auth")?.unwrap_or(true),
            max_clients: h.int("max_clients", 1, 4096)?.unwrap_or(16),
            mjpeg_fps: h.int("mjpeg_fps", 1, 30)?.unwrap_or(2),
        };

        let y = section("system");
        y.allow(&[
            "stream_start_spacing_ms",
            "stream_timeout_s",
            "hw_watchdog",
            "hw_watchdog_stall_s",
        ])?;
        let system = System {
            stream_start_spacing_ms: y.int("stream_start_spacing_ms", 0, 60_000)?.unwrap_or(500),
            stream_timeout_s: y.int("stream_timeout_s", 2, 3600)?.unwrap_or(20),
            hw_watchdog: y
                .string("hw_watchdog")?
                .filter(|s| !s.is_empty())
                .map(|f| base.join(f)),
            hw_watchdog_stall_s: y.int("hw_watchdog_stall_s", 2, 3600)?.unwrap_or(60),
        };

        let mut cameras: Vec<Camera> = Vec::new();
        if let Some(arr) = root.get("camera").and_then(Item::as_array_of_tables) {
            for (i, table) in arr.iter().enumerate() {
                let c = Section {
                    w: self,
                    table,
                    prefix: format!("camera[{}]", i + 1),
                };
                let cam = c.camera()?;
                if cameras.iter().any(|o| o.name == cam.name) {
                    return Err(c.err_at("name", format!("duplicate camera name {:?}", cam.name)));
                }
                cameras.push(cam);
            }
        }
        Ok(Config {
            storage,
            memory,
            http,
            system,
            cameras,
        })
    }
}

fn key_span(table: &Table, key: &str) -> Option<std::ops::Range<usize>> {
    table
        .get_key_value(key)
        .and_then(|(k, v)| k.span().or_else(|| v.span()))
        .or_else(|| table.span())
}

impl Section<'_, '_> {
    fn full(&self, key: &str) -> String {
        format!("{}.{key}", self.prefix)
    }

    fn err_at(&self, key: &str, msg: String) -> ConfigError {
        let span = self
            .table
            .get_key_value(key)
            .and_then(|(k, v)| v.span().or_else(|| k.span()))
            .or_else(|| self.table.span());
        self.w.err(span, &self.full(key), msg)
    }

    /// Rejects any key not in `allowed`.
    fn allow(&self, allowed: &[&str]) -> Result<(), ConfigError> {
        for (key, _) in self.table.iter() {
            if !allowed.contains(&key) {
                return Err(self.w.err(
                    key_span(self.table, key),
                    &self.full(key),
                    format!("unknown key (allowed here: {})", allowed.join(", ")),
                ));
            }
        }
        Ok(())
    }

    fn value(&self, key: &str) -> Option<&Value> {
        self.table.get(key).and_then(Item::as_value)
    }

    fn present_but_not_value(&self, key: &str) -> bool {
        self.table.get(key).is_some_and(|i| i.as_value().is_none())
    }

    fn string(&self, key: &str) -> Result<Option<String>, ConfigError> {
        if self.present_but_not_value(key) {
            return Err(self.err_at(key, "expected a string".into()));
        }
        match self.value(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.value().clone())),
            Some(v) => Err(self.err_at(key, format!("expected a string, got {}", v.type_name()))),
        }
    }

    fn bool(&self, key: &str) -> Result<Option<bool>, ConfigError> {
        if self.present_but_not_value(key) {
            return Err(self.err_at(key, "expected true or false".into()));
        }
        match self.value(key) {
            None => Ok(None),
            Some(Value::Boolean(b)) => Ok(Some(*b.value())),
            Some(v) => Err(self.err_at(
                key,
                format!("expected true or false, got {}", v.type_name()),
            )),
        }
    }

    fn int(&self, key: &str, min: u32, max: u32) -> Result<Option<u32>, ConfigError> {
        if self.present_but_not_value(key) {
            return Err(self.err_at(key, "expected a whole number".into()));
        }
        match self.value(key) {
            None => Ok(None),
            Some(Value::Integer(i)) => {
                let v = *i.value();
                if v < i64::from(min) || v > i64::from(max) {
                    Err(self.err_at(key, format!("must be between {min} and {max}, got {v}")))
                } else {
                    // In range of u32 by the check above.
                    Ok(Some(v as u32))
                }
            }
            Some(v) => Err(self.err_at(
                key,
                format!("expected a whole number, got {}", v.type_name()),
            )),
        }
    }

    fn one_of<T: Copy>(&self, key: &str, choices: &[(&str, T)]) -> Result<Option<T>, ConfigError> {
        let Some(v) = self.string(key)? else {
            return Ok(None);
        };
        choices
            .iter()
            .find(|(n, _)| *n == v)
            .map(|(_, t)| Some(*t))
            .ok_or_else(|| {
                let names: Vec<String> = choices.iter().map(|(n, _)| format!("{n:?}")).collect();
                self.err_at(
                    key,
                    format!("expected one of {}, got {v:?}", names.join(", ")),
                )
            })
    }

    fn rtsp_url(&self, key: &str) -> Result<Option<String>, ConfigError> {
        let Some(v) = self.string(key)? else {
            return Ok(None);
        };
        let u = url::Url::parse(&v).map_err(|e| {
            self.err_at(key, format!("not a valid URL ({e}): {:?}", redact_url(&v)))
        })?;
        if u.scheme() != "rtsp" {
            return Err(self.err_at(
                key,
                format!("expected an rtsp:// URL, got scheme {:?}", u.scheme()),
            ));
        }
        if u.host_str().is_none_or(str::is_empty) {
            return Err(self.err_at(key, "the URL has no host".into()));
        }
        Ok(Some(v))
    }

    fn camera(&self) -> Result<Camera, ConfigError> {
        self.allow(&super::CAMERA_KEYS)?;
        let name = self
            .string("name")?
            .ok_or_else(|| self.err_at("name", "missing: every camera needs a name".into()))?;
        let valid = (1..=32).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !valid {
            return Err(self.err_at(
                "name",
                format!("{name:?} must be 1 to 32 of a-z, 0-9, _ and - (it is used in URLs)"),
            ));
        }
        let url = self
            .rtsp_url("url")?
            .ok_or_else(|| self.err_at("url", "missing: every camera needs a url".into()))?;
        let sub_url = self.rtsp_url("sub_url")?;
        let record = self
            .one_of(
                "record",
                &[
                    ("main", Record::Main),
                    ("sub", Record::Sub),
                    ("both", Record::Both),
                    ("none", Record::None),
                ],
            )?
            .unwrap_or(Record::Main);
        if matches!(record, Record::Sub | Record::Both) && sub_url.is_none() {
            return Err(self.err_at(
                "record",
                format!("is {:?} but the camera has no sub_url", record.name()),
            ));
        }
        let priority = self.int("priority", 0, 100)?.unwrap_or(1);
        Ok(Camera {
            name,
            url,
            sub_url,
            username: self.string("username")?,
            password: self.string("password")?,
            transport: self
                .one_of(
                    "transport",
                    &[("tcp", Transport::Tcp), ("udp", Transport::Udp)],
                )?
                .unwrap_or(Transport::Tcp),
            record,
            priority: u8::try_from(priority).unwrap_or(u8::MAX),
            segment_seconds: self.int("segment_seconds", 5, 3600)?.unwrap_or(60),
            enabled: self.bool("enabled")?.unwrap_or(true),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(t: &str) -> Result<Config, ConfigError> {
        parse_str(t, Path::new("/etc/vigil"))
    }

    const SPEC_EXAMPLE: &str = r#"
[storage]
path = "/mnt/sd/vigil"        # pool files live here
db = "/mnt/sd/vigil/vigil.db" # optional
pool_size_mb = 256
pools = 16
sync_interval_ms = 2000

[memory]
arena_mb = 8
swap_file = ""
swap_mb = 0

[http]
listen = "0.0.0.0:8080"
auth = true
max_clients = 16

[[camera]]
name = "front"
url = "rtsp://192.168.1.10:554/main"
sub_url = "rtsp://192.168.1.10:554/sub"
username = "admin"
password = "secret"
transport = "tcp"
record = "main"
priority = 1
segment_seconds = 60
enabled = true
"#;

    #[test]
    fn spec_example_parses() {
        let c = parse(SPEC_EXAMPLE).unwrap();
        assert_eq!(c.storage.path, PathBuf::from("/mnt/sd/vigil"));
        assert_eq!(c.storage.pools, 16);
        assert_eq!(c.memory.swap_file, None);
        assert_eq!(c.http.listen.port(), 8080);
        assert_eq!(c.cameras.len(), 1);
        let cam = &c.cameras[0];
        assert_eq!(cam.name, "front");
        assert_eq!(cam.sub_url.as_deref(), Some("rtsp://192.168.1.10:554/sub"));
        assert_eq!(cam.password.as_deref(), Some("secret"));
        assert_eq!(cam.streams().len(), 2);
    }

    #[test]
    fn defaults_fill_in() {
        let c = parse("").unwrap();
        assert_eq!(c.storage.path, PathBuf::from("/etc/vigil/vigil-data"));
        assert_eq!(
            c.storage.db,
            PathBuf::from("/etc/vigil/vigil-data/vigil.db")
        );
        assert_eq!(c.storage.pool_size_mb, 256);
        assert_eq!(c.memory.arena_mb, 8);
        assert_eq!(c.memory.max_frame_kb, 2048);
        assert!(c.http.auth);
        assert_eq!(c.http.mjpeg_fps, 2);
        assert_eq!(c.system.stream_timeout_s, 20);
        assert_eq!(c.system.hw_watchdog, None);
        assert_eq!(c.system.hw_watchdog_stall_s, 60);
        assert!(c.cameras.is_empty());
    }

    #[test]
    fn unknown_key_names_line_and_key() {
        let e = parse("[storage]\npools = 4\npool_size = 3\n").unwrap_err();
        assert_eq!(e.line, Some(3));
        assert_eq!(e.key, "storage.pool_size");
        assert!(e.message.contains("unknown key"), "{e}");
        let e = parse("[[camera]]\nname = \"a\"\nurl = \"rtsp://h/\"\ntransprot = \"tcp\"\n")
            .unwrap_err();
        assert_eq!((e.line, e.key.as_str()), (Some(4), "camera[1].transprot"));
        let e = parse("[stroage]\n").unwrap_err();
        assert_eq!((e.line, e.key.as_str()), (Some(1), "stroage"));
    }

    #[test]
    fn bad_values_are_explained() {
        let cases: &[(&str, &str, u32, &str)] = &[
            ("[storage]\npools = 1\n", "storage.pools", 2, "between 2"),
            ("[storage]\npools = \"4\"\n", "storage.pools", 2, "whole number"),
            ("[http]\nlisten = \"nope\"\n", "http.listen", 2, "address"),
            ("[http]\nauth = 1\n", "http.auth", 2, "true or false"),
            ("[http]\nmjpeg_fps = 0\n", "http.mjpeg_fps", 2, "between 1"),
            ("[http]\nmjpeg_fps = 31\n", "http.mjpeg_fps", 2, "30"),
            (
                "[[camera]]\nname = \"Front Door\"\nurl = \"rtsp://h/\"\n",
                "camera[1].name",
                2,
                "a-z",
            ),
            ("[[camera]]\nname = \"a\"\nurl = \"http://h/\"\n", "camera[1].url", 3, "rtsp://"),
            (
                "[[camera]]\nname = \"a\"\nurl = \"rtsp://h/\"\ntransport = \"tpc\"\n",
                "camera[1].transport",
                4,
                "\"udp\"",
            ),
            (
                "[[camera]]\nname = \"a\"\nurl = \"rtsp://h/\"\nrecord = \"both\"\n",
                "camera[1].record",
                4,
                "no sub_url",
            ),
            (
                "[[camera]]\nname = \"a\"\nurl = \"rtsp://h/\"\n[[camera]]\nname = \"a\"\nurl = \"rtsp://h/\"\n",
                "camera[2].name",
                5,
                "duplicate",
            ),
            ("[[camera]]\nurl = \"rtsp://h/\"\n", "camera[1].name", 1, "missing"),
            ("storage = 3\n", "storage", 1, "a table"),
            ("[system]\nstream_timeout_s = 1\n", "system.stream_timeout_s", 2, "between 2"),
            ("[system]\nhw_watchdog = true\n", "system.hw_watchdog", 2, "a string"),
        ];
        for (text, key, line, needle) in cases {
            let e = parse(text).expect_err(text);
            assert_eq!(e.key, *key, "{text}: {e}");
            assert_eq!(e.line, Some(*line), "{text}: {e}");
            assert!(e.to_string().contains(needle), "{text}: {e}");
        }
    }

    #[test]
    fn syntax_error_has_line() {
        let e = parse("[storage]\npools = = 3\n").unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
        assert!(e.message.starts_with("invalid TOML"), "{e}");
    }

    #[test]
    fn passwords_never_printed() {
        let text = SPEC_EXAMPLE.replace(
            "rtsp://192.168.1.10:554/main",
            "rtsp://admin:hunter2@192.168.1.10:554/main",
        );
        let text = text.replace(
            "[http]",
            "[system]\nhw_watchdog = \"/dev/watchdog\"\nstream_timeout_s = 30\n\n[http]",
        );
        let c = parse(&text).unwrap();
        assert_eq!(
            c.system.hw_watchdog.as_deref(),
            Some(Path::new("/dev/watchdog"))
        );
        let out = c.to_effective_toml();
        assert!(!out.contains("secret") && !out.contains("hunter2"), "{out}");
        assert!(out.contains("password = \"***\""));
        let dbg = format!("{:?}", c);
        assert!(!dbg.contains("secret") && !dbg.contains("hunter2"), "{dbg}");
        // The effective config is itself a valid config.
        assert_eq!(parse(&out).unwrap().system, c.system);
    }

    #[test]
    fn bad_url_error_never_leaks_password() {
        let e = parse("[[camera]]\nname = \"a\"\nurl = \"rtsp://u:hunter2@[::1\"\n").unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }
}
