//! The config file: parsing, validation and the effective values.
//!
//! The file is TOML and is the source of truth (SPEC.md, "Config file").
//! It is read with `toml_edit` so that every error can name the line and
//! the key; unknown keys are errors, not silently ignored, because a typo
//! in a hand-edited file must never quietly turn recording off.
//! Relative paths are resolved against the directory of the config file.

#[cfg(test)]
mod boards_test;
mod parse;
pub mod write;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub use parse::parse_str;

/// The keys of a `[[camera]]`, in the order they are written back; the
/// one list the parser, the writer's order and the cameras API share.
pub const CAMERA_KEYS: [&str; 10] = [
    "name",
    "url",
    "sub_url",
    "username",
    "password",
    "transport",
    "record",
    "priority",
    "segment_seconds",
    "enabled",
];

/// The whole configuration with defaults filled in.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub storage: Storage,
    pub memory: Memory,
    pub http: Http,
    pub system: System,
    pub cameras: Vec<Camera>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Storage {
    /// Directory of the pool files and the `meta` file.
    pub path: PathBuf,
    /// The SQLite database; defaults to `<path>/vigil.db`.
    pub db: PathBuf,
    pub pool_size_mb: u32,
    pub pools: u32,
    pub sync_interval_ms: u32,
    /// Neither `pool_size_mb` nor `pools` is in the file: the ring is sized
    /// from the free space when it is created (`store::open::size_ring`).
    pub sized_by_default: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Memory {
    pub arena_mb: u32,
    /// Optional swap file Vigil creates and enables; empty for none.
    pub swap_file: Option<PathBuf>,
    pub swap_mb: u32,
    /// Largest access unit accepted from a camera; larger ones are dropped
    /// and counted. An extension to SPEC.md's table (default 2048 KiB).
    pub max_frame_kb: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Http {
    pub listen: SocketAddr,
    pub auth: bool,
    pub max_clients: u32,
    /// Most JPEG pictures per second per stream that `mjpeg` sends and
    /// that are decoded for it (an extension to SPEC.md's table, default 2):
    /// decoding H.264 costs a small board's CPU.
    pub mjpeg_fps: u32,
}

/// Process-wide settings; an extension to SPEC.md's table.
#[derive(Clone, Debug, PartialEq)]
pub struct System {
    /// Streams connect one after another, this far apart, so that start-up
    /// never spikes memory or CPU.
    pub stream_start_spacing_ms: u32,
    /// Software watchdog: a stream that is streaming but delivers no frame
    /// for this long has its session restarted (reconnect), logged and
    /// counted. Longer than the RTSP client's own 10 s "no packet" timeout
    /// by default, so that this catches what that cannot: packets that
    /// make no frames, and a session stuck elsewhere.
    pub stream_timeout_s: u32,
    /// Hardware watchdog device (`/dev/watchdog`), petted while the writer
    /// and the streams are healthy; `None`: off.
    pub hw_watchdog: Option<PathBuf>,
    /// How long the writer may go without answering, or a stream stay
    /// stuck, before the hardware watchdog is no longer petted.
    pub hw_watchdog_stall_s: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// RTP interleaved on the RTSP TCP connection (RFC 2326 §10.12).
    Tcp,
    /// RTP and RTCP on a UDP port pair.
    Udp,
}

impl Transport {
    pub fn name(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        }
    }
}

/// Which of a camera's streams are recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Record {
    Main,
    Sub,
    Both,
    None,
}

impl Record {
    pub fn name(self) -> &'static str {
        match self {
            Record::Main => "main",
            Record::Sub => "sub",
            Record::Both => "both",
            Record::None => "none",
        }
    }
}

#[derive(Clone, PartialEq)]
pub struct Camera {
    pub name: String,
    pub url: String,
    pub sub_url: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub transport: Transport,
    pub record: Record,
    pub priority: u8,
    pub segment_seconds: u32,
    pub enabled: bool,
}

// Written by hand so that a password never reaches a log through `{:?}`.
impl fmt::Debug for Camera {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Camera")
            .field("name", &self.name)
            .field("url", &redact_url(&self.url))
            .field("sub_url", &self.sub_url.as_deref().map(redact_url))
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("transport", &self.transport)
            .field("record", &self.record)
            .field("priority", &self.priority)
            .field("segment_seconds", &self.segment_seconds)
            .field("enabled", &self.enabled)
            .finish()
    }
}

/// Which of a camera's two URLs a stream reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StreamKind {
    Main,
    Sub,
}

impl StreamKind {
    pub fn name(self) -> &'static str {
        match self {
            StreamKind::Main => "main",
            StreamKind::Sub => "sub",
        }
    }
}

impl Camera {
    /// The streams Vigil opens for this camera: every recorded one, and the
    /// sub stream whenever there is one (live grid), unless disabled.
    pub fn streams(&self) -> Vec<(StreamKind, &str)> {
        let mut out = vec![(StreamKind::Main, self.url.as_str())];
        if let Some(sub) = &self.sub_url {
            out.push((StreamKind::Sub, sub.as_str()));
        }
        out
    }
}

/// A config error, with the place it was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The file, when the config came from one.
    pub file: Option<PathBuf>,
    /// 1-based line, when known.
    pub line: Option<u32>,
    /// Dotted key, e.g. `camera[2].transport`; empty for syntax errors.
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{}", file.display())?;
            if let Some(line) = self.line {
                write!(f, ":{line}")?;
            }
            f.write_str(": ")?;
        } else if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Reads and validates a config file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: Some(path.to_owned()),
        line: None,
        key: String::new(),
        message: if e.kind() == std::io::ErrorKind::NotFound {
            format!(
                "cannot read the config file: {e} (`vigil config init` writes a starter one; \
                 `vigil demo` runs without one)"
            )
        } else {
            format!("cannot read the config file: {e}")
        },
    })?;
    let base = path.parent().unwrap_or_else(|| Path::new("."));
    parse_str(&text, base).map_err(|mut e| {
        e.file = Some(path.to_owned());
        e
    })
}

/// The config path from `-c`, else `VIGIL_CONFIG`, else `./vigil.toml`.
pub fn default_path(cli: Option<&Path>) -> PathBuf {
    if let Some(p) = cli {
        return p.to_owned();
    }
    match std::env::var_os("VIGIL_CONFIG") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from("vigil.toml"),
    }
}

/// Replaces the password in an `rtsp://user:pass@host/` URL with `***`.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(_) => url.to_owned(),
        // Unparseable: still hide anything between "://" and the last "@"
        // of the authority, so an error message never carries a password.
        Err(_) => match (url.find("://"), url.rfind('@')) {
            (Some(s), Some(at)) if at > s + 3 => format!("{}***@{}", &url[..s + 3], &url[at + 1..]),
            _ => url.to_owned(),
        },
    }
}

impl Config {
    /// The effective configuration as TOML, passwords shown as `***`
    /// (what `vigil config check` prints).
    pub fn to_effective_toml(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let q = |v: &str| toml_edit::Value::from(v).to_string();
        let p = |v: &Path| toml_edit::Value::from(v.to_string_lossy().as_ref()).to_string();
        let _ = writeln!(s, "[storage]");
        let _ = writeln!(s, "path = {}", p(&self.storage.path));
        let _ = writeln!(s, "db = {}", p(&self.storage.db));
        let _ = writeln!(s, "pool_size_mb = {}", self.storage.pool_size_mb);
        let _ = writeln!(s, "pools = {}", self.storage.pools);
        let _ = writeln!(s, "sync_interval_ms = {}", self.storage.sync_interval_ms);
        let _ = writeln!(s, "\n[memory]");
        let _ = writeln!(s, "arena_mb = {}", self.memory.arena_mb);
        let swap = self
            .memory
            .swap_file
            .as_deref()
            .map(p)
            .unwrap_or_else(|| q(""));
        let _ = writeln!(s, "swap_file = {swap}");
        let _ = writeln!(s, "swap_mb = {}", self.memory.swap_mb);
        let _ = writeln!(s, "max_frame_kb = {}", self.memory.max_frame_kb);
        let _ = writeln!(s, "\n[http]");
        let _ = writeln!(s, "listen = {}", q(&self.http.listen.to_string()));
        let _ = writeln!(s, "auth = {}", self.http.auth);
        let _ = writeln!(s, "max_clients = {}", self.http.max_clients);
        let _ = writeln!(s, "mjpeg_fps = {}", self.http.mjpeg_fps);
        let _ = writeln!(s, "\n[system]");
        let _ = writeln!(
            s,
            "stream_start_spacing_ms = {}",
            self.system.stream_start_spacing_ms
        );
        let _ = writeln!(s, "stream_timeout_s = {}", self.system.stream_timeout_s);
        let hw = self
            .system
            .hw_watchdog
            .as_deref()
            .map(p)
            .unwrap_or_else(|| q(""));
        let _ = writeln!(s, "hw_watchdog = {hw}");
        let _ = writeln!(
            s,
            "hw_watchdog_stall_s = {}",
            self.system.hw_watchdog_stall_s
        );
        for c in &self.cameras {
            let _ = writeln!(s, "\n[[camera]]");
            let _ = writeln!(s, "name = {}", q(&c.name));
            let _ = writeln!(s, "url = {}", q(&redact_url(&c.url)));
            if let Some(sub) = &c.sub_url {
                let _ = writeln!(s, "sub_url = {}", q(&redact_url(sub)));
            }
            if let Some(u) = &c.username {
                let _ = writeln!(s, "username = {}", q(u));
            }
            if c.password.is_some() {
                let _ = writeln!(s, "password = {}", q("***"));
            }
            let _ = writeln!(s, "transport = {}", q(c.transport.name()));
            let _ = writeln!(s, "record = {}", q(c.record.name()));
            let _ = writeln!(s, "priority = {}", c.priority);
            let _ = writeln!(s, "segment_seconds = {}", c.segment_seconds);
            let _ = writeln!(s, "enabled = {}", c.enabled);
        }
        s
    }
}
