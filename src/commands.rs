//! What each command does (SPEC.md, "Binary and commands"). `main.rs`
//! parses; these return the process exit status: 0 success, 1 runtime
//! failure, 2 usage or config error.

use crate::camera;
use crate::config::{self, Config};
use crate::daemon::shutdown::{self, Shutdown};
use crate::daemon::watchdog::{self, HwWatchdog, SoftWatchdog};
use crate::daemon::{self, recorder::Recorder};
use crate::detach;
use crate::serve::HttpServer;
use crate::store::check::CheckLevel;
use crate::store::{self, db::Db};
use crate::time::{format_90k, parse_90k, TICKS};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const OK: u8 = 0;
pub const FAILED: u8 = 1;
pub const USAGE: u8 = 2;

fn load(path: &Path) -> Result<Config, u8> {
    config::load(path).map_err(|e| {
        eprintln!("vigil: {e}");
        USAGE
    })
}

fn fail(msg: impl std::fmt::Display) -> u8 {
    let msg = msg.to_string();
    eprintln!("vigil: {msg}");
    // A daemon still starting tells the shell that started it.
    detach::notify_failed(FAILED, &msg);
    FAILED
}

/// `vigil run`'s options beyond the config.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Detach into the background (`--daemon`).
    pub daemon: bool,
    pub pidfile: Option<PathBuf>,
    /// With `daemon`: the log file (`--log`).
    pub log: Option<PathBuf>,
}

/// `path` made absolute against the working directory (a daemon works in
/// `/`, so every path it keeps must be absolute).
fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_owned();
    }
    std::env::current_dir()
        .map(|d| d.join(path))
        .unwrap_or_else(|_| path.to_owned())
}

/// `vigil run`: record every camera until a signal (or `seconds`).
pub fn run(config_path: &Path, seconds: Option<u32>, opts: &RunOptions) -> u8 {
    let started = Instant::now();
    let config_path = if opts.daemon {
        absolute(config_path)
    } else {
        config_path.to_owned()
    };
    let cfg = match load(&config_path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if cfg.cameras.is_empty() {
        log::warn!("{}: no [[camera]] configured", config_path.display());
    }
    let pidfile = opts.pidfile.as_deref().map(absolute);
    if opts.daemon {
        // A running daemon is refused here, on the terminal; the daemon
        // claims the file itself once it has its final pid.
        if let Some(p) = &pidfile {
            if let detach::Holder::Live(pid) = detach::holder(p) {
                return fail(format!(
                    "{}: vigil is already running as pid {pid} (stop it first, or use another --pidfile)",
                    p.display()
                ));
            }
        }
        let log = opts.log.as_deref().map(absolute);
        if let Err(e) = detach::detach(log.as_deref()) {
            return fail(e);
        }
        log::info!(
            "vigil {} running as a daemon, pid {}",
            env!("CARGO_PKG_VERSION"),
            std::process::id()
        );
    }
    // Removed when dropped, at the end of this function.
    let _pidfile = match pidfile.as_deref().map(detach::PidFile::claim) {
        Some(Ok(f)) => Some(f),
        Some(Err(e)) => return fail(e),
        None => None,
    };
    record(&cfg, Some(&config_path), seconds, started)
}

/// Records `cfg` and serves it until a signal (or `seconds`). Camera
/// changes through the API are written to `config_path`, and `SIGHUP`
/// reads it again; without one (`vigil demo`) changes last until exit.
/// `started`: when the command started, for the start-up times logged.
fn record(cfg: &Config, config_path: Option<&Path>, seconds: Option<u32>, started: Instant) -> u8 {
    crate::signals::install();
    let mut sized = cfg.clone();
    match store::open::size_ring(&mut sized.storage) {
        Ok(line) => log::info!("{line}"),
        Err(e) => return fail(e),
    }
    let cfg = &sized;
    let storage = match store::open::open_for_writing(&cfg.storage) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    // After the storage (a first start refuses a storage directory that
    // holds anything else, a swap file too), before the arena.
    let swap_on = match &cfg.memory.swap_file {
        Some(p) => daemon::swap::setup(p, cfg.memory.swap_mb),
        None => false,
    };
    let recorder = match Recorder::start(cfg, storage) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    if swap_on {
        match recorder.control().lock_arena() {
            Ok(()) => log::info!(
                "swap: the arena ({} MiB) is locked in memory: recording never waits on swap",
                cfg.memory.arena_mb
            ),
            Err(e) => log::warn!(
                "swap: cannot lock the arena in memory ({e}); frames being recorded may be paged out"
            ),
        }
    }
    if cfg.http.auth {
        warn_without_admin(cfg);
    }
    let control = recorder.control();
    control.set_config_file(config_path.map(Path::to_owned));
    let ctx = Arc::new(crate::serve::context(cfg, &recorder));
    let http = match HttpServer::start(cfg.http.listen, ctx.clone(), cfg.http.max_clients) {
        Ok(h) => h,
        Err(e) => {
            recorder.shutdown(Duration::from_secs(5));
            return fail(format!("http: cannot listen on {}: {e}", cfg.http.listen));
        }
    };
    log::info!("http: listening on {}", http.local_addr());
    if config_path.is_none() {
        // `vigil demo` (no config file): where to look, on a line of its
        // own on stdout, not lost among the log lines.
        let mut addr = http.local_addr();
        if addr.ip().is_unspecified() {
            addr.set_ip([127, 0, 0, 1].into());
        }
        println!("\nopen http://{addr}/\n");
    }
    if !cfg.http.auth {
        // The address bound, not the configured one (which may say port 0).
        log::warn!(
            "http: authentication is off ([http] auth = false): anyone who can reach {} can watch",
            http.local_addr()
        );
    }
    let stall = Duration::from_secs(cfg.system.hw_watchdog_stall_s.into());
    let mut hw = cfg.system.hw_watchdog.as_deref().and_then(|p| {
        HwWatchdog::open(p, recorder.writer_commands(), stall, watchdog::PET_EVERY)
            .map_err(|e| {
                // Recording matters more than the watchdog: go on without.
                log::error!(
                    "hw watchdog: [system] hw_watchdog = {:?}: cannot open it: {e}; running without it",
                    p.display()
                )
            })
            .ok()
    });
    detach::notify_ready();
    log::info!(
        "start-up: recording and serving {} ms after start",
        started.elapsed().as_millis()
    );
    // The demo's terminal stays readable: a status line a minute there,
    // every 10 s for a recorder whose log goes to a file or journal.
    let summary_every = Duration::from_secs(if config_path.is_none() { 60 } else { 10 });
    let soft = SoftWatchdog::new(Duration::from_secs(cfg.system.stream_timeout_s.into()));
    let mut first_frame = false;
    let mut last_watch = Instant::now();
    let start = Instant::now();
    let mut last_summary = Instant::now();
    let limit = seconds.map(|s| Duration::from_secs(u64::from(s)));
    while !crate::signals::stop_requested() && limit.is_none_or(|l| start.elapsed() < l) {
        if crate::signals::take_reload() {
            detach::reopen_log();
            log::info!("SIGHUP: reloading the config");
            // Logs what it did, or why the file was refused.
            let _ = control.reload();
        }
        let statuses = recorder.running.statuses();
        if !first_frame {
            // The first camera's first stream: the start-up time to video.
            if let Some(s) = statuses.first().filter(|s| s.snapshot().frames > 0) {
                log::info!(
                    "start-up: first frame of {} {} ms after start",
                    s.label(),
                    started.elapsed().as_millis()
                );
                first_frame = true;
            }
        }
        if last_watch.elapsed() >= Duration::from_secs(1) {
            soft.check(&statuses);
            last_watch = Instant::now();
        }
        if let Some(w) = &mut hw {
            w.tick(&statuses);
        }
        if last_summary.elapsed() >= summary_every {
            daemon::log_summary(&statuses);
            last_summary = Instant::now();
        }
        // A finer tick until the first frame, which start-up is timed by
        // (for half a minute at most: a camera may never answer).
        let fine = !first_frame && started.elapsed() < Duration::from_secs(30);
        // Otherwise a quarter second: signals, reloads, the watchdogs (a
        // second apart) and the summaries need no finer clock, and an
        // idle recorder should not wake for nothing.
        let tick = if fine { 10 } else { 250 };
        std::thread::sleep(Duration::from_millis(tick));
    }
    log::info!("stopping");
    daemon::log_summary(&recorder.running.statuses());
    let mut sd = Shutdown::new();
    // Viewers first, so that nothing reads what the writer is finalising.
    sd.step(
        "http: stopped accepting, connections closed",
        shutdown::HTTP_TIMEOUT,
        move || {
            http.stop();
            Ok(())
        },
    );
    let (stats, lock) = recorder.shutdown_ordered(&mut sd);
    // The writer closed its connection; the last ones are the web side's
    // (users and sessions), and the storage lock goes with them.
    sd.step("database: closed", shutdown::DATABASE_TIMEOUT, move || {
        drop(ctx);
        drop(control);
        drop(lock);
        Ok(())
    });
    let clean = sd.finish();
    if let Some(w) = hw {
        if clean {
            w.disarm();
        } else {
            log::error!("hw watchdog: left armed after an incomplete shutdown");
        }
    }
    match stats {
        Some(s) if s.last_error.is_none() && clean => OK,
        _ => FAILED,
    }
}

/// With `http.auth` on and no admin, nobody could use the page or the
/// API: say how to make one (it works while `vigil run` runs).
fn warn_without_admin(cfg: &Config) {
    match crate::auth::Auth::new(cfg.storage.db.clone()).counts() {
        Ok((_, 0)) => log::warn!(
            "http: authentication is on but there is no admin user yet, so nobody can log in \
             to manage anything: create one with `vigil user add NAME --role admin`"
        ),
        Ok(_) => {}
        Err(e) => log::warn!("http: cannot read the users: {e}"),
    }
}

/// `vigil demo`: the built-in camera, recorded into `data`.
pub fn demo(data: &Path, listen: &str, seconds: Option<u32>) -> u8 {
    let listen: SocketAddr = match listen.parse() {
        Ok(a) => a,
        Err(_) => {
            eprintln!("vigil: --listen {listen:?}: not an address (expected e.g. 127.0.0.1:8080)");
            return USAGE;
        }
    };
    let server = match camera::CameraServer::start(camera::ServerOptions {
        listen: ([127, 0, 0, 1], 0).into(),
        auth: None,
        bitrate_kbps: None,
    }) {
        Ok(s) => s,
        Err(e) => return fail(format!("cannot start the built-in camera: {e}")),
    };
    log::info!("built-in camera serving on rtsp://{}/", server.local_addr());
    let mut cfg = match daemon::demo_config(server.local_addr(), data) {
        Ok(c) => c,
        Err(e) => {
            server.stop();
            eprintln!("vigil: --data {}: {e}", data.display());
            return USAGE;
        }
    };
    cfg.http.listen = listen;
    let code = record(&cfg, None, seconds, Instant::now());
    server.stop();
    code
}

/// `vigil init`.
pub fn init(config_path: &Path, data: Option<&Path>) -> u8 {
    let mut cfg = if config_path.exists() || data.is_none() {
        match load(config_path) {
            Ok(c) => c,
            Err(code) => return code,
        }
    } else {
        // `vigil init --data DIR` without a config: the defaults.
        match config::parse_str("", Path::new(".")) {
            Ok(c) => c,
            Err(e) => return fail(e),
        }
    };
    if let Some(d) = data {
        cfg.storage.db = d.join("vigil.db");
        cfg.storage.path = d.to_owned();
    }
    if let Err(e) = store::open::size_ring(&mut cfg.storage) {
        return fail(e);
    }
    match store::open::init(&cfg.storage) {
        Ok(uuid) => {
            println!(
                "storage ready in {}: {} pools of {} MiB, database {}, install {}",
                cfg.storage.path.display(),
                cfg.storage.pools,
                cfg.storage.pool_size_mb,
                cfg.storage.db.display(),
                store::format::uuid_hex(&uuid)
            );
            OK
        }
        Err(e) => fail(e),
    }
}

/// A JSON string literal.
fn js(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn open_index(cfg: &Config) -> Result<Db, u8> {
    store::open::open_read_only(&cfg.storage).map_err(fail)
}

/// `vigil status`.
pub fn status(config_path: &Path, json: bool) -> u8 {
    let cfg = match load(config_path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let db = match open_index(&cfg) {
        Ok(d) => d,
        Err(code) => return code,
    };
    let total = u64::from(cfg.storage.pool_size_mb) * u64::from(cfg.storage.pools) * 1024 * 1024;
    let (summary, streams) = match (db.summary(), db.streams()) {
        (Ok(s), Ok(st)) => (s, st),
        (Err(e), _) | (_, Err(e)) => return fail(e),
    };
    let mut per_stream = Vec::new();
    for s in &streams {
        match db.stream_summary(s.id) {
            Ok(sum) => per_stream.push((s, sum)),
            Err(e) => return fail(e),
        }
    }
    let span = |s: Option<i64>, e: Option<i64>| match (s, e) {
        (Some(s), Some(e)) => Some((e - s) as f64 / TICKS as f64 / 3600.0),
        _ => None,
    };
    if json {
        let mut out = format!(
            "{{\"storage\":{{\"path\":{},\"bytes_total\":{total},\"bytes_used\":{},\"recordings\":{},\"oldest\":{},\"newest\":{}}},\"streams\":[",
            js(&cfg.storage.path.to_string_lossy()),
            summary.bytes,
            summary.recordings,
            summary.oldest_start_90k.map_or("null".into(), |t| js(&format_90k(t))),
            summary.newest_end_90k.map_or("null".into(), |t| js(&format_90k(t))),
        );
        for (i, (s, sum)) in per_stream.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&format!(
                "{{\"camera\":{},\"stream\":{},\"recordings\":{},\"bytes\":{},\"oldest\":{},\"newest\":{}}}",
                js(&s.camera),
                js(&s.kind),
                sum.recordings,
                sum.bytes,
                sum.oldest_start_90k.map_or("null".into(), |t| js(&format_90k(t))),
                sum.newest_end_90k.map_or("null".into(), |t| js(&format_90k(t))),
            ));
        }
        out.push_str("]}");
        println!("{out}");
        return OK;
    }
    println!("storage: {}", cfg.storage.path.display());
    println!(
        "  {:.1} of {:.1} MiB used by {} recordings",
        summary.bytes as f64 / 1048576.0,
        total as f64 / 1048576.0,
        summary.recordings
    );
    if let (Some(o), Some(n)) = (summary.oldest_start_90k, summary.newest_end_90k) {
        println!(
            "  recorded from {} to {} ({:.2} h retained)",
            format_90k(o),
            format_90k(n),
            span(Some(o), Some(n)).unwrap_or(0.0)
        );
    }
    for (s, sum) in per_stream {
        println!(
            "{}/{}: {} recordings, {:.1} MiB, last ends {}",
            s.camera,
            s.kind,
            sum.recordings,
            sum.bytes as f64 / 1048576.0,
            sum.newest_end_90k.map_or("-".into(), format_90k)
        );
    }
    OK
}

/// `vigil list`.
pub fn list(
    config_path: &Path,
    camera: &str,
    stream: &str,
    start: Option<&str>,
    end: Option<&str>,
    json: bool,
) -> u8 {
    let cfg = match load(config_path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let parse = |t: Option<&str>, default: i64| match t {
        None => Ok(default),
        Some(t) => parse_90k(t),
    };
    let (start, end) = match (parse(start, i64::MIN / 2), parse(end, i64::MAX / 2)) {
        (Ok(s), Ok(e)) => (s, e),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("vigil: {e}");
            return USAGE;
        }
    };
    let db = match open_index(&cfg) {
        Ok(d) => d,
        Err(code) => return code,
    };
    let streams = match db.streams() {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    // An unknown camera is a mistake (exit 2); a known one with nothing
    // recorded yet is an empty list.
    let known =
        cfg.cameras.iter().any(|c| c.name == camera) || streams.iter().any(|s| s.camera == camera);
    if !known {
        let names: Vec<&str> = cfg.cameras.iter().map(|c| c.name.as_str()).collect();
        eprintln!(
            "vigil: no camera {camera} (cameras: {})",
            if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            }
        );
        return USAGE;
    }
    let rows = match streams
        .iter()
        .find(|s| s.camera == camera && s.kind == stream)
        .map(|s| db.recordings(s.id, start, end))
    {
        Some(Ok(r)) => r,
        Some(Err(e)) => return fail(e),
        None => Vec::new(),
    };
    if json {
        let items: Vec<String> = rows
            .iter()
            .map(|r| {
                format!(
                    "{{\"id\":{},\"stream\":{},\"start\":{},\"end\":{},\"start_90k\":{},\"end_90k\":{},\"duration_ms\":{},\"bytes\":{},\"frames\":{},\"open\":{},\"gaps\":{}}}",
                    r.id,
                    js(stream),
                    js(&format_90k(r.start_90k)),
                    js(&format_90k(r.start_90k + r.duration_90k)),
                    r.start_90k,
                    r.start_90k + r.duration_90k,
                    r.duration_90k / 90,
                    r.bytes,
                    r.frames,
                    r.flags & store::db::RECORDING_OPEN != 0,
                    u32::from(r.flags & store::db::RECORDING_GAP != 0)
                )
            })
            .collect();
        println!("[{}]", items.join(","));
        return OK;
    }
    if rows.is_empty() {
        println!("no recordings of {camera}/{stream} in that range");
        return OK;
    }
    println!(
        "{:>8}  {:<25}  {:>9}  {:>13}  {:>16}",
        "id", "start", "duration", "frames", "bytes"
    );
    for r in &rows {
        println!(
            "{:>8}  {:<25}  {:>7.2} s  {:>6} frames  {:>10} bytes{}",
            r.id,
            format_90k(r.start_90k),
            r.duration_90k as f64 / TICKS as f64,
            r.frames,
            r.bytes,
            if r.flags & store::db::RECORDING_OPEN != 0 {
                "  (recording)"
            } else {
                ""
            }
        );
    }
    OK
}

/// `vigil export`.
pub fn export(
    config_path: &Path,
    camera: &str,
    stream: &str,
    start: &str,
    end: &str,
    out: &Path,
    format: &str,
) -> u8 {
    let cfg = match load(config_path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let (start, end) = match (parse_90k(start), parse_90k(end)) {
        (Ok(s), Ok(e)) if e > s => (s, e),
        (Ok(_), Ok(_)) => {
            eprintln!("vigil: --end must be after --start");
            return USAGE;
        }
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("vigil: {e}");
            return USAGE;
        }
    };
    match crate::serve::export::export(&cfg, camera, stream, start, end, out, format) {
        Ok(bytes) => {
            if out != Path::new("-") {
                eprintln!("wrote {bytes} bytes to {}", out.display());
            }
            OK
        }
        Err(e) => fail(e),
    }
}

/// `vigil check`.
pub fn check(config_path: &Path, level: CheckLevel, repair: bool, rebuild_index: bool) -> u8 {
    let cfg = match load(config_path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match store::check::run(&cfg.storage, level, repair, rebuild_index) {
        Ok(report) => {
            for line in &report.problems {
                println!("problem: {line}");
            }
            for line in &report.repaired {
                println!("repaired: {line}");
            }
            println!(
                "checked {} recordings, {} records ({}): {} problems{}",
                report.recordings,
                report.records,
                report.level,
                report.problems.len(),
                if report.repaired.is_empty() {
                    String::new()
                } else {
                    format!(", {} repaired", report.repaired.len())
                }
            );
            if report.remaining_problems() == 0 {
                OK
            } else {
                FAILED
            }
        }
        Err(e) => fail(e),
    }
}

/// `vigil user ...`: manages the users in the storage database, directly
/// (no storage lock: it works while `vigil run` runs, whose server reads
/// the same rows).
pub fn user(
    config_path: &Path,
    action: crate::cli::UserAction,
    name: &str,
    role: Option<&str>,
) -> u8 {
    use crate::auth::{self, password, prompt};
    use crate::cli::UserAction;
    use crate::store::db::users::UserError;
    let cfg = match load(config_path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if action != UserAction::List {
        if let Err(why) = auth::check_name(name) {
            eprintln!("vigil: user name {name:?}: {why}");
            return USAGE;
        }
    }
    let db_path = &cfg.storage.db;
    if !db_path.exists() {
        return fail(format!(
            "{} does not exist yet: run `vigil init` (or start `vigil run` once) first",
            db_path.display()
        ));
    }
    let mut db = match Db::open(db_path) {
        Ok(d) => d,
        Err(e) => return fail(format!("{}: {e}", db_path.display())),
    };
    let user_fail = |e: UserError| match e {
        UserError::Db(e) => fail(format!("{}: {e}", db_path.display())),
        e => fail(e),
    };
    let new_password = |name: &str| -> Result<String, u8> {
        let pw = prompt::read_new_password(&format!("New password for {name}")).map_err(fail)?;
        // A password the rules refuse is bad input, like a bad name: 2.
        password::check_new(&pw).map_err(|why| {
            eprintln!("vigil: password: {why}");
            USAGE
        })?;
        password::hash(&pw).map_err(fail)
    };
    let now = auth::now_s();
    match action {
        UserAction::List => match db.users() {
            Ok(users) => {
                for u in users {
                    println!("{}\t{}", u.name, u.role);
                }
                OK
            }
            Err(e) => fail(format!("{}: {e}", db_path.display())),
        },
        UserAction::Add => {
            // Fail early, before asking for a password.
            match db.user(name) {
                Ok(Some(_)) => return user_fail(UserError::Exists(name.to_owned())),
                Ok(None) => {}
                Err(e) => return user_fail(UserError::Db(e)),
            }
            let role = match role {
                Some(r) => r.to_owned(),
                None => match db.count_users(Some("admin")) {
                    Ok(0) => "admin".to_owned(),
                    Ok(_) => "viewer".to_owned(),
                    Err(e) => return user_fail(UserError::Db(e)),
                },
            };
            let phc = match new_password(name) {
                Ok(p) => p,
                Err(code) => return code,
            };
            match db.add_user(name, &role, &phc, now) {
                Ok(()) => {
                    println!("added user {name} ({role})");
                    OK
                }
                Err(e) => user_fail(e),
            }
        }
        UserAction::Passwd => {
            match db.user(name) {
                Ok(Some(_)) => {}
                Ok(None) => return user_fail(UserError::NotFound(name.to_owned())),
                Err(e) => return user_fail(UserError::Db(e)),
            }
            let phc = match new_password(name) {
                Ok(p) => p,
                Err(code) => return code,
            };
            match db.set_user_password(name, &phc, now, None) {
                Ok(()) => {
                    println!("changed the password of {name}; their sessions have ended");
                    OK
                }
                Err(e) => user_fail(e),
            }
        }
        UserAction::Role => {
            let role = role.unwrap_or("viewer");
            match db.set_user_role(name, role, now) {
                Ok(()) => {
                    println!("{name} is now {role}");
                    OK
                }
                Err(e) => user_fail(e),
            }
        }
        UserAction::Del => match db.delete_user(name) {
            Ok(()) => {
                println!("deleted user {name} and their sessions");
                OK
            }
            Err(e) => user_fail(e),
        },
    }
}

/// The starter configs `vigil config init` writes, by `--board` name.
const STARTERS: [(&str, &str); 5] = [
    ("generic", include_str!("../board-configs/starter.toml")),
    ("a1", include_str!("../board-configs/ingenic-a1.toml")),
    ("t31", include_str!("../board-configs/ingenic-t31.toml")),
    ("armv7", include_str!("../board-configs/rpi-armv7.toml")),
    ("x86", include_str!("../board-configs/x86-test.toml")),
];

/// `vigil config init`: a commented starter config at `path`, never over
/// an existing file.
pub fn config_init(path: &Path, board: Option<&str>) -> u8 {
    let name = board.unwrap_or("generic");
    let Some((_, text)) = STARTERS.iter().find(|(n, _)| *n == name) else {
        eprintln!("vigil: --board {name:?}: one of a1, t31, armv7, x86");
        return USAGE;
    };
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path);
    let written = file.and_then(|mut f| {
        use std::io::Write as _;
        f.write_all(text.as_bytes())?;
        f.sync_all()
    });
    match written {
        Ok(()) => {
            println!(
                "wrote {} ({name}): add your cameras ([[camera]] name, url), then `vigil -c {} config check` and `vigil -c {} run`",
                path.display(),
                path.display(),
                path.display()
            );
            OK
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            eprintln!("vigil: {} exists already: not overwritten", path.display());
            USAGE
        }
        Err(e) => fail(format!("{}: {e}", path.display())),
    }
}
