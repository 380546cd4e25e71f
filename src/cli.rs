//! Command-line parsing (SPEC.md, "Binary and commands").
//!
//! Hand-written: the grammar is small, and every dependency costs flash.
//! Global options (`-c/--config`, `-v`, `-q`) may stand before or after
//! the command.

use std::path::{Path, PathBuf};

// Defined by the layers that use them; named here too because `Command`
// carries them.
pub use crate::camera::CameraAuth;
pub use crate::store::check::CheckLevel;

pub const USAGE: &str = "\
vigil - a lean network video recorder

usage: vigil [-c CONFIG] [-v|-q] <command> [options]

commands:
  demo [--data DIR] [--listen ADDR] [--seconds N]
                                       record the built-in camera and serve the page
  run [--seconds N] [--daemon] [--pidfile P] [--log FILE]
                                       record every configured camera
  init [--data DIR]                    create the storage (pool files, database)
  status [--json]                      storage use, retention, last recording per stream
  list --camera NAME [--stream main|sub] [--start T] [--end T] [--json]
                                       recordings in a time range
  export --camera NAME [--stream main|sub] --start T --end T -o FILE [--format mp4|ts]
                                       write a range as .mp4 or .ts (FILE - is stdout)
  check [--level presence|size|crc] [--repair] [--rebuild-index]
                                       verify the index against the pool files
  config check                         validate the config, print effective values
  config init [--board a1|t31|armv7|x86]
                                       write a commented starter config
  camera [--listen ADDR] [--auth basic|digest --user U --password P]
         [--bitrate-kbps N]            serve the built-in simulated camera over RTSP
  user add|del|passwd|role|list [NAME] [--role admin|viewer]
                                       manage the users of the web page and API
  help [command]                       this text

global options:
  -c, --config PATH   config file (default: $VIGIL_CONFIG or ./vigil.toml)
  -v, --verbose       more log output (-vv for trace); RUST_LOG also works
  -q, --quiet         warnings and errors only
  -V, --version       print the version

Times T: RFC 3339 (2026-11-21T10:00:00Z), local (2026-11-21T10:00:00) or Unix seconds.
";

const DEMO_HELP: &str = "\
usage: vigil demo [--data DIR] [--listen ADDR] [--seconds N]

Starts the built-in simulated camera on loopback and records its H.264,
H.265 and MJPEG streams into DIR (default ./vigil-demo) until
SIGINT/SIGTERM (or for N seconds), and serves the web page and the API
on ADDR (default 127.0.0.1:8080, authentication off), which it prints
as an `open http://...` line.
";

const RUN_HELP: &str = "\
usage: vigil [-c CONFIG] run [--seconds N] [--daemon] [--pidfile P] [--log FILE]

Records every enabled camera of the config file into its storage
(created on first start), until SIGINT/SIGTERM (or for N seconds), then
shuts down in order, each step bounded and logged: HTTP stops accepting,
the streams stop, the writer finalises and syncs the open recordings,
the database closes. SIGHUP reloads the config file (and reopens --log).

  --daemon      detach from the terminal (double fork, setsid, working
                directory /); exits 0 once recording and serving, or 1
                or 2 with the reason when start-up fails
  --pidfile P   write the pid to P (atomically), remove it at exit; a
                stale P (its process gone, or not vigil) is replaced, a
                live one is an error naming its pid. Works without
                --daemon too
  --log FILE    with --daemon: append the log to FILE (else it goes to
                /dev/null; under systemd or procd run in the foreground
                and let them collect stderr)
";

const INIT_HELP: &str = "\
usage: vigil [-c CONFIG] init [--data DIR]

Creates the storage the config describes (or DIR): the meta file, the
pool files (pre-allocated) and the database. Refuses a non-empty
directory that holds no Vigil storage. `vigil run` does this itself.
";

const STATUS_HELP: &str = "\
usage: vigil [-c CONFIG] status [--json]

Storage use, the span of recorded video, and each stream's recordings
and last recording, read from the index (works while `vigil run` runs).
";

const LIST_HELP: &str = "\
usage: vigil [-c CONFIG] list --camera NAME [--stream main|sub] [--start T] [--end T] [--json]

The recordings of one camera stream (default main) overlapping the range
(default: everything).
";

const EXPORT_HELP: &str = "\
usage: vigil [-c CONFIG] export --camera NAME [--stream main|sub] --start T --end T -o FILE [--format mp4|ts]

Writes the recorded range as one file, spliced across recordings (a gap
between recordings is skipped). An .mp4 starts exactly at the start
time (edit list); an MPEG-TS (.ts) starts at the key frame at or before
it, as TS cannot skip into a GOP. The format comes from FILE's
extension, or --format (needed when FILE is -, stdout). Shows progress
on a terminal.
";

const CHECK_HELP: &str = "\
usage: vigil [-c CONFIG] check [--level presence|size|crc] [--repair] [--rebuild-index]

Verifies the index against the pool files: presence (every record lies
in a pool of the right generation), size (record headers agree with the
index), crc (every byte checked). --repair deletes from the index what
cannot be played (never video that can). --rebuild-index rebuilds the
index from the pool files' own record headers. Stop `vigil run` first.
Exit status 0 when clean, 1 when problems remain.
";

const CONFIG_HELP: &str = "\
usage: vigil [-c CONFIG] config check
       vigil [-c CONFIG] config init [--board a1|t31|armv7|x86]

check: validates the config file and prints the effective values,
defaults filled in, passwords shown as ***. Exit status 2 on an error,
which names the file, the line and the key.

init: writes a commented starter config to CONFIG (default ./vigil.toml;
an existing file is never overwritten): one sized for a board (Ingenic A1
or T31, a Raspberry Pi class ARMv7 board, an x86 box), else a small
generic one recording into ./vigil-data. Then add your cameras to it.
";

const CAMERA_HELP: &str = "\
usage: vigil camera [--listen ADDR] [--auth basic|digest --user U --password P]
                    [--bitrate-kbps N]

Serves the built-in simulated camera over RTSP on ADDR (default
127.0.0.1:8554; loopback only; port 0 picks a free one, logged at start).
Paths: /h264, /h265, /mjpeg; anything after the first path segment names
an independent stream, e.g. /h264/cam7. --bitrate-kbps pads the H.264 and
H.265 frames with filler data up to N kbit/s, for load tests; a path
segment kbps=N sets it for one stream (e.g. /h264/cam7/kbps=500; at most
16 different bitrates). Runs until SIGINT/SIGTERM.
";

const USER_HELP: &str = "\
usage: vigil [-c CONFIG] user add NAME [--role admin|viewer]
       vigil [-c CONFIG] user passwd NAME
       vigil [-c CONFIG] user role NAME --role admin|viewer
       vigil [-c CONFIG] user del NAME
       vigil [-c CONFIG] user list

Manages who may use the web page and the HTTP API ([http] auth = true).
Admins may change everything; viewers may only watch and download.
`add` without --role makes an admin when there is none yet, else a
viewer. The password is never taken from the command line: on a terminal
it is asked twice without echo; otherwise the first line of stdin is the
password (at least 8 characters). NAME: 1 to 32 of a-z 0-9 . _ -,
starting with a letter or digit. Works while `vigil run` runs; `passwd`
and `del` end the user's sessions. The last admin cannot be deleted or
made a viewer. Needs the storage database (`vigil init` makes it).
";

/// What `vigil user` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserAction {
    Add,
    Del,
    Passwd,
    Role,
    List,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Help(Option<String>),
    Version,
    Demo {
        data: PathBuf,
        listen: String,
        seconds: Option<u32>,
    },
    Run {
        seconds: Option<u32>,
        /// Detach into the background.
        daemon: bool,
        pidfile: Option<PathBuf>,
        /// With `daemon`: where the log goes.
        log: Option<PathBuf>,
    },
    ConfigCheck,
    /// Writes a starter config (for `board`, else a generic one).
    ConfigInit {
        board: Option<String>,
    },
    Init {
        data: Option<PathBuf>,
    },
    Status {
        json: bool,
    },
    List {
        camera: String,
        stream: String,
        start: Option<String>,
        end: Option<String>,
        json: bool,
    },
    Export {
        camera: String,
        stream: String,
        start: String,
        end: String,
        out: PathBuf,
        format: String,
    },
    Check {
        level: CheckLevel,
        repair: bool,
        rebuild_index: bool,
    },
    Camera {
        listen: String,
        auth: Option<CameraAuth>,
        bitrate_kbps: Option<u32>,
    },
    User {
        action: UserAction,
        /// Empty for `list`.
        name: String,
        /// `admin` or `viewer`, when given.
        role: Option<String>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Args {
    pub config: Option<PathBuf>,
    pub verbosity: i32,
    pub command: Command,
}

/// A usage error: printed with a hint, exit status 2.
#[derive(Debug, PartialEq, Eq)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (see 'vigil --help')", self.0)
    }
}

/// The help text of a command, or the general usage.
pub fn help(command: Option<&str>) -> &'static str {
    match command {
        Some("demo") => DEMO_HELP,
        Some("run") => RUN_HELP,
        Some("config") => CONFIG_HELP,
        Some("camera") => CAMERA_HELP,
        Some("init") => INIT_HELP,
        Some("status") => STATUS_HELP,
        Some("list") => LIST_HELP,
        Some("check") => CHECK_HELP,
        Some("export") => EXPORT_HELP,
        Some("user") => USER_HELP,
        _ => USAGE,
    }
}

pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Args, UsageError> {
    let mut config = None;
    let mut verbosity = 0;
    let mut words: Vec<String> = Vec::new();
    let mut it = args.into_iter();
    let mut want_help = false;
    while let Some(a) = it.next() {
        match a.as_str() {
            "-c" | "--config" => {
                let v = it
                    .next()
                    .ok_or_else(|| UsageError(format!("{a} needs a path")))?;
                config = Some(PathBuf::from(v));
            }
            "-v" | "--verbose" => verbosity += 1,
            "-vv" => verbosity += 2,
            "-q" | "--quiet" => verbosity -= 1,
            "-h" | "--help" => want_help = true,
            "-V" | "--version" => {
                return Ok(Args {
                    config,
                    verbosity,
                    command: Command::Version,
                })
            }
            _ if a.starts_with("--config=") => config = Some(PathBuf::from(&a[9..])),
            _ => words.push(a),
        }
    }
    let command = if want_help {
        Command::Help(words.first().cloned())
    } else {
        command(&words)?
    };
    Ok(Args {
        config,
        verbosity,
        command,
    })
}

/// Options of one command: `--name value` pairs and `--flag`s, no
/// positionals.
struct Options<'a> {
    command: &'a str,
    pairs: Vec<(&'a str, &'a str)>,
    flags: Vec<&'a str>,
}

impl<'a> Options<'a> {
    fn new(command: &'a str, rest: &'a [String], known: &[&str]) -> Result<Self, UsageError> {
        Options::with_flags(command, rest, known, &[])
    }

    fn with_flags(
        command: &'a str,
        rest: &'a [String],
        known: &[&str],
        known_flags: &[&str],
    ) -> Result<Self, UsageError> {
        let mut pairs = Vec::new();
        let mut flags = Vec::new();
        let mut i = 0;
        while i < rest.len() {
            let name = rest[i].as_str();
            if known_flags.contains(&name) {
                flags.push(name);
                i += 1;
                continue;
            }
            if !known.contains(&name) {
                return Err(UsageError(format!(
                    "'vigil {command}' has no option or argument {name:?}"
                )));
            }
            let value = rest
                .get(i + 1)
                .ok_or_else(|| UsageError(format!("{name} needs a value")))?;
            pairs.push((name, value.as_str()));
            i += 2;
        }
        Ok(Options {
            command,
            pairs,
            flags,
        })
    }

    fn flag(&self, name: &str) -> bool {
        self.flags.contains(&name)
    }

    fn get(&self, name: &str) -> Option<&'a str> {
        self.pairs
            .iter()
            .rev()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }

    fn seconds(&self) -> Result<Option<u32>, UsageError> {
        self.get("--seconds")
            .map(|v| {
                v.parse::<u32>().map_err(|_| {
                    UsageError(format!(
                        "'vigil {}': --seconds takes a whole number, got {v:?}",
                        self.command
                    ))
                })
            })
            .transpose()
    }
}

fn command(words: &[String]) -> Result<Command, UsageError> {
    let Some(first) = words.first() else {
        return Ok(Command::Help(None));
    };
    let rest = &words[1..];
    match first.as_str() {
        "help" => Ok(Command::Help(rest.first().cloned())),
        "version" => Ok(Command::Version),
        "demo" => {
            let o = Options::new("demo", rest, &["--data", "--listen", "--seconds"])?;
            Ok(Command::Demo {
                data: PathBuf::from(o.get("--data").unwrap_or("vigil-demo")),
                listen: o.get("--listen").unwrap_or("127.0.0.1:8080").to_owned(),
                seconds: o.seconds()?,
            })
        }
        "run" => {
            let o = Options::with_flags(
                "run",
                rest,
                &["--seconds", "--pidfile", "--log"],
                &["--daemon"],
            )?;
            let daemon = o.flag("--daemon");
            let log = o.get("--log").map(PathBuf::from);
            if log.is_some() && !daemon {
                return Err(UsageError(
                    "--log goes with --daemon (in the foreground the log is stderr)".into(),
                ));
            }
            Ok(Command::Run {
                seconds: o.seconds()?,
                daemon,
                pidfile: o.get("--pidfile").map(PathBuf::from),
                log,
            })
        }
        "init" => {
            let o = Options::new("init", rest, &["--data"])?;
            Ok(Command::Init {
                data: o.get("--data").map(PathBuf::from),
            })
        }
        "status" => {
            let o = Options::with_flags("status", rest, &[], &["--json"])?;
            Ok(Command::Status {
                json: o.flag("--json"),
            })
        }
        "list" => {
            let o = Options::with_flags(
                "list",
                rest,
                &["--camera", "--stream", "--start", "--end"],
                &["--json"],
            )?;
            let stream = o.get("--stream").unwrap_or("main");
            if stream != "main" && stream != "sub" {
                return Err(UsageError(format!(
                    "--stream takes main or sub, got {stream:?}"
                )));
            }
            Ok(Command::List {
                camera: o
                    .get("--camera")
                    .ok_or_else(|| UsageError("'vigil list' needs --camera NAME".into()))?
                    .to_owned(),
                stream: stream.to_owned(),
                start: o.get("--start").map(str::to_owned),
                end: o.get("--end").map(str::to_owned),
                json: o.flag("--json"),
            })
        }
        "export" => {
            let o = Options::new(
                "export",
                rest,
                &[
                    "--camera", "--stream", "--start", "--end", "-o", "--output", "--format",
                ],
            )?;
            let need = |name: &str| {
                o.get(name)
                    .map(str::to_owned)
                    .ok_or_else(|| UsageError(format!("'vigil export' needs {name}")))
            };
            let out = o
                .get("-o")
                .or_else(|| o.get("--output"))
                .ok_or_else(|| UsageError("'vigil export' needs -o FILE".into()))?;
            let stream = o.get("--stream").unwrap_or("main");
            if stream != "main" && stream != "sub" {
                return Err(UsageError(format!(
                    "--stream takes main or sub, got {stream:?}"
                )));
            }
            let format = match (o.get("--format"), out) {
                (Some(f @ ("mp4" | "ts")), _) => f.to_owned(),
                (Some(f), _) => {
                    return Err(UsageError(format!("--format takes mp4 or ts, got {f:?}")))
                }
                (None, "-") => {
                    return Err(UsageError(
                        "export to stdout (-o -) needs --format mp4 or --format ts".into(),
                    ))
                }
                (None, path) => match Path::new(path).extension().and_then(|e| e.to_str()) {
                    Some(ext) if ext.eq_ignore_ascii_case("mp4") => "mp4".into(),
                    Some(ext) if ext.eq_ignore_ascii_case("ts") => "ts".into(),
                    _ => {
                        return Err(UsageError(format!(
                        "cannot tell the format of {path:?}: name it .mp4 or .ts, or give --format"
                    )))
                    }
                },
            };
            Ok(Command::Export {
                camera: need("--camera")?,
                stream: stream.to_owned(),
                start: need("--start")?,
                end: need("--end")?,
                out: PathBuf::from(out),
                format,
            })
        }
        "check" => {
            let o = Options::with_flags(
                "check",
                rest,
                &["--level"],
                &["--repair", "--rebuild-index"],
            )?;
            let level = match o.get("--level").unwrap_or("crc") {
                "presence" => CheckLevel::Presence,
                "size" => CheckLevel::Size,
                "crc" => CheckLevel::Crc,
                other => {
                    return Err(UsageError(format!(
                        "--level takes presence, size or crc, got {other:?}"
                    )))
                }
            };
            Ok(Command::Check {
                level,
                repair: o.flag("--repair"),
                rebuild_index: o.flag("--rebuild-index"),
            })
        }
        "config" => match rest.first().map(String::as_str) {
            Some("check") if rest.len() == 1 => Ok(Command::ConfigCheck),
            Some("init") => {
                let o = Options::new("config init", &rest[1..], &["--board"])?;
                Ok(Command::ConfigInit {
                    board: o.get("--board").map(str::to_owned),
                })
            }
            _ => Err(UsageError(
                "usage: vigil config check | vigil config init [--board a1|t31|armv7|x86]".into(),
            )),
        },
        "camera" => {
            let o = Options::new(
                "camera",
                rest,
                &[
                    "--listen",
                    "--auth",
                    "--user",
                    "--password",
                    "--bitrate-kbps",
                ],
            )?;
            let bitrate_kbps = o
                .get("--bitrate-kbps")
                .map(|v| match v.parse::<u32>() {
                    Ok(k) if (1..=100_000).contains(&k) => Ok(k),
                    _ => Err(UsageError(format!(
                        "--bitrate-kbps takes a whole number from 1 to 100000, got {v:?}"
                    ))),
                })
                .transpose()?;
            let auth = match o.get("--auth") {
                None => None,
                Some(kind @ ("basic" | "digest")) => Some(CameraAuth {
                    digest: kind == "digest",
                    user: o
                        .get("--user")
                        .ok_or_else(|| UsageError("--auth needs --user".into()))?
                        .to_owned(),
                    password: o
                        .get("--password")
                        .ok_or_else(|| UsageError("--auth needs --password".into()))?
                        .to_owned(),
                }),
                Some(other) => {
                    return Err(UsageError(format!(
                        "--auth takes basic or digest, got {other:?}"
                    )))
                }
            };
            Ok(Command::Camera {
                listen: o.get("--listen").unwrap_or("127.0.0.1:8554").to_owned(),
                auth,
                bitrate_kbps,
            })
        }
        "user" => user_command(rest),
        other => Err(UsageError(format!("unknown command {other:?}"))),
    }
}

/// `vigil user ACTION [NAME] [--role R]`.
fn user_command(rest: &[String]) -> Result<Command, UsageError> {
    let usage = || {
        UsageError("usage: vigil user add|del|passwd|role|list [NAME] [--role admin|viewer]".into())
    };
    let action = match rest.first().map(String::as_str) {
        Some("add") => UserAction::Add,
        Some("del" | "delete") => UserAction::Del,
        Some("passwd") => UserAction::Passwd,
        Some("role") => UserAction::Role,
        Some("list") => UserAction::List,
        _ => return Err(usage()),
    };
    let after = rest.get(1..).unwrap_or(&[]);
    let (name, opts) = match (action, after.first()) {
        (UserAction::List, _) => (String::new(), after),
        (_, Some(n)) if !n.starts_with('-') => (n.clone(), after.get(1..).unwrap_or(&[])),
        _ => {
            return Err(UsageError(format!(
                "'vigil user {}' needs a user NAME",
                rest.first().map_or("", String::as_str)
            )))
        }
    };
    let known: &[&str] = match action {
        UserAction::Add | UserAction::Role => &["--role"],
        _ => &[],
    };
    let o = Options::new("user", opts, known)?;
    let role = o.get("--role").map(str::to_owned);
    if let Some(r) = &role {
        if r != "admin" && r != "viewer" {
            return Err(UsageError(format!(
                "--role takes admin or viewer, got {r:?}"
            )));
        }
    }
    if action == UserAction::Role && role.is_none() {
        return Err(UsageError(
            "'vigil user role' needs --role admin|viewer".into(),
        ));
    }
    Ok(Command::User { action, name, role })
}

#[cfg(test)]
mod tests;
