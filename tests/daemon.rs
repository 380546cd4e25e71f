//! The daemon life cycle with the real binary: `vigil run --daemon
//! --pidfile P --log L` (detached, pid file, readiness), a stale pid file
//! replaced, a live one refused, SIGTERM's ordered shutdown (every step
//! logged with its time, recordings closed, `vigil check` clean), the
//! hardware watchdog petted (a regular file stands in for the device) and
//! disarmed, the software watchdog restarting a camera that stops sending
//! while keeping its connection, and the start-up time to the first frame.

mod common;
mod fakecam;

use common::http::{free_port, get_json};
use common::{temp_dir, wait_for_every};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use vigil::camera::{CameraServer, ServerOptions};

const T: Duration = Duration::from_secs(30);
const BIN: &str = env!("CARGO_BIN_EXE_vigil");

/// [`common::wait_for`] at 20 ms: the start-up time is measured with it.
fn wait_for<V>(limit: Duration, what: &str, f: impl FnMut() -> Option<V>) -> V {
    wait_for_every(limit, Duration::from_millis(20), what, f)
}

/// The first camera's first stream in /api/status.
fn first_stream(addr: SocketAddr) -> Option<Value> {
    let v = get_json(addr, "/api/status")?;
    Some(v["cameras"][0]["streams"][0].clone())
}

fn config(dir: &Path, port: u16, extra_system: &str, cameras: &str) -> PathBuf {
    let text = format!(
        "[storage]\npath = \"data\"\npool_size_mb = 4\npools = 4\nsync_interval_ms = 300\n\n\
         [memory]\narena_mb = 4\n\n[system]\nstream_start_spacing_ms = 0\n{extra_system}\n\n\
         [http]\nlisten = \"127.0.0.1:{port}\"\nauth = false\n{cameras}"
    );
    let path = dir.join("vigil.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn camera(name: &str, url: &str) -> String {
    format!("\n[[camera]]\nname = \"{name}\"\nurl = \"{url}\"\nsegment_seconds = 5\n")
}

/// `vigil` in the foreground, its stderr collected line by line.
struct Vigil {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Vigil {
    fn start(config: &Path, args: &[&str]) -> Vigil {
        let mut child = Command::new(BIN)
            .arg("-c")
            .arg(config)
            .arg("run")
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().unwrap();
        let l = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                l.lock().unwrap().push(line);
            }
        });
        Vigil { child, log }
    }

    fn find(&self, needles: &[&str]) -> Option<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .find(|l| needles.iter().all(|n| l.contains(n)))
            .cloned()
    }

    fn wait_log(&self, needles: &[&str]) -> String {
        wait_for(T, &format!("a log line with {needles:?}"), || {
            self.find(needles)
        })
    }

    fn dump(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    fn signal(&self, sig: libc::c_int) {
        // SAFETY: signalling our own child, which has not been reaped.
        assert_eq!(
            unsafe { libc::kill(self.child.id() as libc::pid_t, sig) },
            0
        );
    }
}

impl Drop for Vigil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn vigil(config: &Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .arg("-c")
        .arg(config)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// `vigil check` is clean and the stream's last recording is closed.
fn assert_storage_clean(config: &Path, camera: &str) {
    let out = vigil(config, &["check"]);
    assert!(
        out.status.success(),
        "vigil check: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let out = vigil(config, &["list", "--camera", camera, "--json"]);
    assert!(out.status.success());
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    let list = list.as_array().unwrap();
    assert!(!list.is_empty(), "no recordings");
    assert!(
        list.iter().all(|r| r["open"] == false),
        "a recording is still open: {list:?}"
    );
}

/// A process's (state, ppid, session) from /proc, `None` once reaped.
fn proc_stat(pid: u32) -> Option<(String, u32, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some((f[0].to_owned(), f[1].parse().ok()?, f[3].parse().ok()?))
}

fn gone(pid: u32) -> bool {
    proc_stat(pid).is_none_or(|(state, _, _)| state == "Z" || state == "X")
}

fn shutdown_steps(log: &str) {
    for step in [
        "shutdown 1: http",
        "shutdown 2: streams",
        "shutdown 3: writer",
        "shutdown 4: database",
        "shutdown: complete in",
    ] {
        assert!(log.contains(step), "no {step:?} in the log:\n{log}");
    }
    // In that order.
    let at = |s: &str| log.find(s).unwrap();
    assert!(at("shutdown 1:") < at("shutdown 2:") && at("shutdown 3:") < at("shutdown 4:"));
}

#[test]
fn daemon_detaches_refuses_a_second_one_and_shuts_down_in_order() {
    let dir = temp_dir("daemon-detach");
    let cam = CameraServer::start(ServerOptions {
        listen: ([127, 0, 0, 1], 0).into(),
        auth: None,
        bitrate_kbps: Some(300),
    })
    .unwrap();
    let port = free_port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    // A regular file stands in for /dev/watchdog.
    let wd = dir.join("watchdog");
    std::fs::write(&wd, b"").unwrap();
    let cfg = config(
        &dir,
        port,
        "hw_watchdog = \"watchdog\"",
        &camera("a", &cam.url("h264/a")),
    );
    let pidfile = dir.join("run/vigil.pid");
    std::fs::create_dir_all(pidfile.parent().unwrap()).unwrap();
    let log = dir.join("vigil.log");
    let p = pidfile.to_str().unwrap();
    let l = log.to_str().unwrap();

    // The starting process returns once the daemon records and serves.
    let t0 = Instant::now();
    let out = vigil(&cfg, &["run", "--daemon", "--pidfile", p, "--log", l]);
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert!(t0.elapsed() < T);
    let pid: u32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let (state, ppid, sid) = proc_stat(pid).expect("the daemon runs");
    assert_ne!(state, "Z");
    // Detached: not our child, in a session of its own (whose leader, the
    // first child, has exited), working in /.
    let me = std::process::id();
    let (_, _, my_sid) = proc_stat(me).unwrap();
    assert_ne!(ppid, me);
    assert_ne!(sid, my_sid);
    assert_ne!(sid, pid, "the daemon must not be a session leader");
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap(),
        Path::new("/")
    );
    wait_for(T, "frames", || {
        first_stream(addr).filter(|s| s["frames"].as_u64() > Some(20))
    });
    // The watchdog device is petted.
    wait_for(T, "pets", || {
        (std::fs::metadata(&wd).ok()?.len() >= 2).then_some(())
    });

    // A second one is refused, naming the pid: as a daemon and in the
    // foreground.
    for args in [
        &["run", "--daemon", "--pidfile", p][..],
        &["run", "--pidfile", p][..],
    ] {
        let out = vigil(&cfg, args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains(&format!("already running as pid {pid}")),
            "{args:?}: {err}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(&pidfile).unwrap().trim(),
        pid.to_string()
    );

    // SIGHUP in daemon mode: the config is reloaded and the log reopened
    // (after a rotation by `mv`).
    std::fs::rename(&log, dir.join("vigil.log.1")).unwrap();
    // SAFETY: signalling the daemon, whose pid file we just read.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, libc::SIGHUP) }, 0);
    wait_for(T, "the reload in a new log", || {
        let text = std::fs::read_to_string(&log).ok()?;
        text.contains("reload of").then_some(())
    });
    let rotated = std::fs::read_to_string(dir.join("vigil.log.1")).unwrap();
    assert!(rotated.contains("running as a daemon"), "{rotated}");

    // SIGTERM: an ordered, bounded shutdown.
    let t0 = Instant::now();
    // SAFETY: signalling the daemon, whose pid file we just read.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) }, 0);
    wait_for(T, "the daemon to exit", || gone(pid).then_some(()));
    let took = t0.elapsed();
    assert!(took < Duration::from_secs(15), "{took:?}");
    assert!(!pidfile.exists(), "the pid file is left");
    let text = std::fs::read_to_string(&log).unwrap();
    shutdown_steps(&text);
    assert!(
        rotated.contains("hw watchdog: ") && text.contains("disarmed"),
        "{text}"
    );
    let pets = std::fs::read(&wd).unwrap();
    assert_eq!(pets.last(), Some(&b'V'), "not disarmed");
    assert_storage_clean(&cfg, "a");

    // A config error reaches the terminal of whoever starts the daemon.
    std::fs::write(&cfg, "[storage]\npools = 1\n").unwrap();
    let out = vigil(&cfg, &["run", "--daemon", "--pidfile", p]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("storage.pools"));
    // A busy port too, reported by the daemon through the starting process.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let cfg = config(
        &dir,
        busy.local_addr().unwrap().port(),
        "",
        &camera("a", &cam.url("h264/a")),
    );
    let out = vigil(&cfg, &["run", "--daemon", "--pidfile", p, "--log", l]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("cannot listen"), "{err}");
    assert!(!pidfile.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn stale_pid_file_replaced_startup_timed_and_sigterm_exits_zero() {
    let dir = temp_dir("daemon-stale");
    let cam = CameraServer::start(ServerOptions {
        listen: ([127, 0, 0, 1], 0).into(),
        auth: None,
        bitrate_kbps: None,
    })
    .unwrap();
    let port = free_port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let cfg = config(&dir, port, "", &camera("a", &cam.url("h264/a")));
    // Storage made beforehand, as an installed box has it.
    let out = vigil(&cfg, &["init"]);
    assert!(out.status.success());
    // A pid file left by a process that is not vigil.
    let mut other = Command::new("sleep").arg("60").spawn().unwrap();
    let pidfile = dir.join("vigil.pid");
    std::fs::write(&pidfile, format!("{}\n", other.id())).unwrap();

    let t0 = Instant::now();
    let v = Vigil::start(&cfg, &["--pidfile", pidfile.to_str().unwrap()]);
    // Start-up to the first frame, as a client sees it.
    let first = wait_for(T, "the first frame", || {
        first_stream(addr).filter(|s| s["frames"].as_u64() > Some(0))
    });
    let startup = t0.elapsed();
    assert_eq!(first["state"], "streaming");
    let line = v.wait_log(&["start-up: first frame of a/main"]);
    eprintln!("start-up: {startup:?} from spawn to the first frame in /api/status; {line}");
    // 2 s on an idle machine; the bound leaves room for a loaded CI.
    assert!(
        startup < Duration::from_secs(6),
        "{startup:?}\n{}",
        v.dump()
    );
    let line = v.wait_log(&["stale pid file"]);
    assert!(line.contains("not vigil"), "{line}");
    assert_eq!(
        std::fs::read_to_string(&pidfile).unwrap().trim(),
        v.child.id().to_string()
    );
    other.kill().unwrap();
    other.wait().unwrap();

    wait_for(T, "some recording", || {
        first_stream(addr).filter(|s| s["frames"].as_u64() > Some(50))
    });
    let mut v = v;
    let t0 = Instant::now();
    v.signal(libc::SIGTERM);
    let status = wait_for(T, "vigil to exit", || v.child.try_wait().ok().flatten());
    let took = t0.elapsed();
    assert!(status.success(), "{status:?}\n{}", v.dump());
    assert!(took < Duration::from_secs(15), "{took:?}");
    let log = v.dump();
    shutdown_steps(&log);
    for l in log.lines().filter(|l| l.contains("shutdown")) {
        eprintln!("{l}");
    }
    assert!(!pidfile.exists());
    assert_storage_clean(&cfg, "a");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn watchdog_restarts_a_camera_that_stops_sending_but_stays_connected() {
    let dir = temp_dir("daemon-watchdog");
    // Sends 30 frames (0.3 s) after each PLAY, then keeps the connection
    // open and silent.
    let cam = fakecam::FakeCamera::start(fakecam::Script {
        frames: 30,
        ..fakecam::Script::default()
    });
    let port = free_port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let cfg = config(
        &dir,
        port,
        "stream_timeout_s = 2",
        &camera("a", &cam.url("stream")),
    );
    let t0 = Instant::now();
    let v = Vigil::start(&cfg, &[]);
    let line = v.wait_log(&["a/main: watchdog: streaming but no frame"]);
    // Well before the RTSP client's own 10 s no-data timeout.
    assert!(
        t0.elapsed() < Duration::from_secs(9),
        "{:?}\n{}",
        t0.elapsed(),
        v.dump()
    );
    eprintln!("{line}");
    v.wait_log(&["a/main: restarted by the watchdog"]);
    let s = wait_for(T, "a restarted session streaming", || {
        first_stream(addr).filter(|s| {
            s["watchdog_restarts"].as_u64() >= Some(1) && s["reconnects"].as_u64() >= Some(1)
        })
    });
    assert!(s["frames"].as_u64() >= Some(30), "{s}");
    // The camera saw a new session: a second PLAY.
    wait_for(T, "a second PLAY", || {
        (cam.methods().iter().filter(|m| *m == "PLAY").count() >= 2).then_some(())
    });
    assert!(v.find(&["no video data"]).is_none(), "{}", v.dump());
    let mut v = v;
    v.signal(libc::SIGINT);
    let status = wait_for(T, "vigil to exit", || v.child.try_wait().ok().flatten());
    assert!(status.success(), "{status:?}\n{}", v.dump());
    let _ = std::fs::remove_dir_all(&dir);
}

/// `vigil list`: an unknown camera is a usage error that names the known
/// ones; a known camera with nothing recorded is an empty list, not an
/// error; the table has a header.
#[test]
fn list_tells_an_unknown_camera_from_an_empty_one() {
    let dir = temp_dir("daemon-list");
    let cfg = config(&dir, 0, "", &camera("a", "rtsp://127.0.0.1:9/x"));
    assert!(vigil(&cfg, &["init"]).status.success());
    let out = vigil(&cfg, &["list", "--camera", "zz"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("no camera zz (cameras: a)"), "{err}");
    let out = vigil(&cfg, &["list", "--camera", "a"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("no recordings of a/main"));
    let out = vigil(&cfg, &["list", "--camera", "a", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
    let _ = std::fs::remove_dir_all(&dir);
}

/// With `listen = "127.0.0.1:0"` the warning that authentication is off
/// names the port actually bound, the one the user can reach.
#[test]
fn auth_off_warning_names_the_bound_address() {
    let dir = temp_dir("daemon-authoff");
    let cfg = config(&dir, 0, "", "");
    let mut v = Vigil::start(&cfg, &[]);
    let listening = v.wait_log(&["http: listening on"]);
    let addr = listening.rsplit(' ').next().unwrap().to_owned();
    assert!(!addr.ends_with(":0"), "{listening}");
    let warning = v.wait_log(&["authentication is off"]);
    assert!(
        warning.contains(&format!("reach {addr} can watch")),
        "{warning}"
    );
    v.signal(libc::SIGINT);
    let status = wait_for(T, "vigil to exit", || v.child.try_wait().ok().flatten());
    assert!(status.success(), "{status:?}\n{}", v.dump());
    let _ = std::fs::remove_dir_all(&dir);
}

/// `vigil demo` says where to look on a line of its own, with the port
/// it actually serves on.
#[test]
fn demo_prints_where_to_open_the_page() {
    let dir = temp_dir("daemon-demo");
    let data = dir.join("demo");
    let out = Command::new(BIN)
        .args([
            "demo",
            "--listen",
            "127.0.0.1:0",
            "--seconds",
            "2",
            "--data",
        ])
        .arg(&data)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("open http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("no open line in {stdout:?}"));
    let port: u16 = line
        .trim_start_matches("open http://127.0.0.1:")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    assert_ne!(port, 0, "{line}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `vigil config init` writes a starter config that `config check`
/// accepts, for a board too, never over an existing file; a missing config
/// file's error points at it.
#[test]
fn config_init_writes_a_starter_config() {
    let dir = temp_dir("daemon-config-init");
    let cfg = dir.join("vigil.toml");
    let out = vigil(&cfg, &["run"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("vigil config init"));
    assert!(vigil(&cfg, &["config", "init"]).status.success());
    let check = vigil(&cfg, &["config", "check"]);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let again = vigil(&cfg, &["config", "init", "--board", "t31"]);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"));
    let t31 = dir.join("t31.toml");
    assert!(vigil(&t31, &["config", "init", "--board", "t31"])
        .status
        .success());
    assert!(std::fs::read_to_string(&t31)
        .unwrap()
        .contains("Ingenic T31"));
    assert!(vigil(&t31, &["config", "check"]).status.success());
    let bad = vigil(&dir.join("x.toml"), &["config", "init", "--board", "zz"]);
    assert_eq!(bad.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `vigil check` while `vigil run` records says which process holds the
/// storage and what to do; `vigil status` works alongside it.
#[test]
fn check_while_running_names_the_process_holding_the_storage() {
    let dir = temp_dir("daemon-check-busy");
    let cfg = config(&dir, 0, "", "");
    let mut v = Vigil::start(&cfg, &[]);
    v.wait_log(&["http: listening on"]);
    let out = vigil(&cfg, &["check"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains(&format!("(pid {})", v.child.id())) && err.contains("stop that process first"),
        "{err}"
    );
    let status = vigil(&cfg, &["status"]);
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    v.signal(libc::SIGINT);
    let exit = wait_for(T, "vigil to exit", || v.child.try_wait().ok().flatten());
    assert!(exit.success(), "{exit:?}\n{}", v.dump());
    let _ = std::fs::remove_dir_all(&dir);
}

/// With no size in the config the ring is sized from the free space (and
/// says so); a size larger than the free space is refused before any pool
/// file is made; `config check` says what the ring will take.
#[test]
fn ring_sized_from_free_space_and_never_past_it() {
    let dir = temp_dir("daemon-ring-size");
    let cfg = dir.join("vigil.toml");
    std::fs::write(&cfg, "[storage]\npath = \"data\"\n").unwrap();
    let out = vigil(&cfg, &["config", "check"]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    let line = err
        .lines()
        .find(|l| l.contains("no pool_size_mb or pools in the config"))
        .unwrap_or_else(|| panic!("{err}"));
    let total_mb: u64 = line
        .split(" = ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    assert!((32..=4096).contains(&total_mb), "{line}");
    let init = vigil(&cfg, &["init"]);
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let pools = std::fs::read_dir(dir.join("data"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("pool-")
        })
        .count();
    assert_eq!(pools, 16);
    let again = vigil(&cfg, &["config", "check"]);
    assert!(String::from_utf8_lossy(&again.stderr).contains("(as created)"));

    let big = dir.join("big.toml");
    std::fs::write(
        &big,
        "[storage]\npath = \"big\"\npool_size_mb = 1048576\npools = 1048576\n",
    )
    .unwrap();
    let out = vigil(&big, &["config", "check"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("MiB are free"));
    let out = vigil(&big, &["init"]);
    assert!(!out.status.success());
    assert!(!dir.join("big").join("pool-000.bin").exists());
    let _ = std::fs::remove_dir_all(&dir);
}
