//! Running as a daemon (`vigil run --daemon --pidfile P [--log FILE]`):
//! detaching from the terminal, the pid file, and telling the starting
//! shell whether start-up worked.
//!
//! Detaching is the classic double fork: the first child calls `setsid`
//! (no controlling terminal), and forks the daemon, which is not a session
//! leader and so can never acquire a terminal again. The daemon works in
//! `/`, with umask 027 (recordings are nobody else's business), stdin and
//! stdout on `/dev/null` and stderr (the log) on `--log FILE` or
//! `/dev/null`. The process that ran the command waits on a pipe until
//! the daemon says it records and serves (exit 0) or why it could not
//! (its message on stderr, exit 1 or 2), so an init script learns of a
//! bad config or a busy port at once rather than from a silent daemon.
//!
//! Forking is only sound while the process has one thread: [`detach`]
//! runs before any thread starts (the config is read and checked first,
//! on one thread, so its errors still reach the terminal directly).

use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// The write end of the start-up pipe, in the daemon until it reported.
static READY_FD: AtomicI32 = AtomicI32::new(-1);
/// The log file stderr goes to, reopened on `SIGHUP` (log rotation).
static LOG_FILE: Mutex<Option<PathBuf>> = Mutex::new(None);

/// How long the starting process waits for the daemon's word. Creating
/// large pool files on a first start can take longer: then it says so
/// and leaves the daemon to it.
const READY_WAIT: Duration = Duration::from_secs(60);

fn errno() -> std::io::Error {
    std::io::Error::last_os_error()
}

/// Detaches into a daemon. Returns in the daemon only; the process that
/// called it exits with the daemon's start-up verdict (see the module
/// comment). `log`: where stderr goes (appended), else `/dev/null`.
pub fn detach(log: Option<&Path>) -> Result<(), String> {
    // Opened before forking, so that an unwritable log is the caller's
    // error, on its terminal.
    let log_file = match log {
        Some(p) => Some(open_log(p).map_err(|e| format!("--log {}: {e}", p.display()))?),
        None => None,
    };
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(format!("cannot make a pipe: {}", errno()));
    }
    let [read_end, write_end] = fds;
    // SAFETY: the process has a single thread here (see the module
    // comment), so the child's copy of memory is consistent.
    match unsafe { libc::fork() } {
        -1 => Err(format!("cannot fork: {}", errno())),
        0 => {
            // SAFETY: closing our copy of the read end, which we own.
            unsafe { libc::close(read_end) };
            // SAFETY: plain system calls on the child's own process.
            if unsafe { libc::setsid() } == -1 {
                // SAFETY: leaving the child without running destructors
                // that belong to the parent's copy of the state.
                unsafe { libc::_exit(1) };
            }
            // SAFETY: still one thread; see above.
            match unsafe { libc::fork() } {
                -1 => unsafe { libc::_exit(1) },
                0 => {}
                // The session leader's work is done; the daemon is its child.
                // SAFETY: as above.
                _ => unsafe { libc::_exit(0) },
            }
            in_daemon(write_end, log_file, log)
        }
        child => {
            // SAFETY: closing our copy of the write end, which we own.
            unsafe { libc::close(write_end) };
            let mut status = 0;
            // SAFETY: reaping our own child (the session leader).
            unsafe { libc::waitpid(child, &mut status, 0) };
            let code = wait_for_word(read_end);
            std::process::exit(code);
        }
    }
}

/// The daemon's side: working directory, umask, standard descriptors.
fn in_daemon(
    write_end: libc::c_int,
    log_file: Option<std::fs::File>,
    log: Option<&Path>,
) -> Result<(), String> {
    READY_FD.store(write_end, Ordering::SeqCst);
    // SAFETY: plain system calls on our own process.
    unsafe {
        libc::umask(0o027);
    }
    std::env::set_current_dir("/").map_err(|e| format!("cannot change to /: {e}"))?;
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| format!("cannot open /dev/null: {e}"))?;
    use std::os::unix::io::AsRawFd;
    let err_fd = log_file
        .as_ref()
        .map_or(null.as_raw_fd(), |f| f.as_raw_fd());
    // SAFETY: duplicating descriptors we hold onto the standard ones.
    unsafe {
        libc::dup2(null.as_raw_fd(), 0);
        libc::dup2(null.as_raw_fd(), 1);
        libc::dup2(err_fd, 2);
    }
    if let Some(p) = log {
        *LOG_FILE.lock().unwrap_or_else(|e| e.into_inner()) = Some(p.to_owned());
    }
    Ok(())
}

fn open_log(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)
}

/// Reopens the `--log` file (after a `SIGHUP`), so that a rotated log is
/// left alone and a new one started. Nothing without `--log`.
pub fn reopen_log() {
    let path = LOG_FILE.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let Some(path) = path else { return };
    match open_log(&path) {
        Ok(f) => {
            use std::os::unix::io::AsRawFd;
            // SAFETY: duplicating a descriptor we hold onto stderr.
            unsafe { libc::dup2(f.as_raw_fd(), 2) };
        }
        Err(e) => log::error!("cannot reopen the log {}: {e}", path.display()),
    }
}

/// The starting process: waits for the daemon's word on `fd` and turns
/// it into an exit status, printing the daemon's error when it failed.
fn wait_for_word(fd: libc::c_int) -> i32 {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = libc::c_int::try_from(READY_WAIT.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: one valid pollfd.
    let n = unsafe { libc::poll(&mut pfd, 1, ms) };
    if n == 0 {
        eprintln!(
            "vigil: the daemon is still starting after {} s; see its log",
            READY_WAIT.as_secs()
        );
        return 0;
    }
    // SAFETY: we own `fd`; the File closes it.
    let mut f = unsafe { <std::fs::File as std::os::unix::io::FromRawFd>::from_raw_fd(fd) };
    let mut word = Vec::new();
    // Bounded: the daemon writes one short message.
    let _ = (&mut f).take(4096).read_to_end(&mut word);
    match word.split_first() {
        Some((b'0', _)) => 0,
        Some((&code, msg)) => {
            eprintln!("vigil: {}", String::from_utf8_lossy(msg));
            if code == b'2' {
                2
            } else {
                1
            }
        }
        None => {
            eprintln!("vigil: the daemon ended during start-up; see its log");
            1
        }
    }
}

fn send_word(word: &[u8]) {
    let fd = READY_FD.swap(-1, Ordering::SeqCst);
    if fd < 0 {
        return;
    }
    // SAFETY: we own `fd` (taken out of READY_FD); the File closes it.
    let mut f = unsafe { <std::fs::File as std::os::unix::io::FromRawFd>::from_raw_fd(fd) };
    let _ = f.write_all(word);
}

/// Start-up worked: the starting process exits 0. Nothing when not a
/// daemon, or said already.
pub fn notify_ready() {
    send_word(b"0");
}

/// Start-up failed with exit status `code` because of `msg`: the starting
/// process prints it and exits with `code`. Nothing when not a daemon, or
/// said already.
pub fn notify_failed(code: u8, msg: &str) {
    let mut word = vec![if code == 2 { b'2' } else { b'1' }];
    word.extend_from_slice(msg.as_bytes());
    send_word(&word);
}

/// The pid file of a running Vigil: written atomically (a temporary file
/// renamed over it) with our pid, removed when dropped if it still names
/// us.
pub struct PidFile {
    path: PathBuf,
    pid: u32,
}

/// Who a pid file names.
#[derive(Debug, PartialEq, Eq)]
pub enum Holder {
    /// No pid file.
    Nobody,
    /// A pid file naming no live Vigil: the reason, for the log.
    Stale(String),
    /// A live Vigil has this pid.
    Live(u32),
}

/// Reads the pid file at `path` and tells whether it names a live Vigil
/// process (other than this one).
pub fn holder(path: &Path) -> Holder {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Holder::Nobody,
        Err(e) => return Holder::Stale(format!("unreadable ({e})")),
    };
    let text = String::from_utf8_lossy(&text[..text.len().min(64)]).into_owned();
    let Some(pid) = text.trim().parse::<u32>().ok().filter(|&p| p > 0) else {
        return Holder::Stale(format!("holds no pid ({:?})", text.trim()));
    };
    if pid == std::process::id() {
        // After a reboot (or in a container) our own pid may be the one a
        // dead predecessor left.
        return Holder::Stale(format!("names pid {pid}, which is this process"));
    }
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    let Ok(stat) = std::fs::read_to_string(proc_dir.join("stat")) else {
        return Holder::Stale(format!("names pid {pid}, which is not running"));
    };
    // The state follows the command name in parentheses (which may hold
    // anything, so the last ')').
    let state = stat
        .rfind(')')
        .and_then(|i| stat.get(i + 1..))
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or("");
    if state == "Z" || state == "X" {
        return Holder::Stale(format!("names pid {pid}, which has exited"));
    }
    if !is_vigil(&proc_dir) {
        return Holder::Stale(format!(
            "names pid {pid}, which is another program, not vigil"
        ));
    }
    Holder::Live(pid)
}

/// Whether the process at `/proc/<pid>` runs a Vigil binary: its name or
/// its program's file name starts with `vigil` (a renamed binary such as
/// `vigil-mipsel` still counts).
fn is_vigil(proc_dir: &Path) -> bool {
    let comm = std::fs::read(proc_dir.join("comm")).unwrap_or_default();
    if comm.starts_with(b"vigil") {
        return true;
    }
    let cmdline = std::fs::read(proc_dir.join("cmdline")).unwrap_or_default();
    let argv0 = cmdline.split(|&b| b == 0).next().unwrap_or(&[]);
    let name = Path::new(std::ffi::OsStr::from_bytes(argv0))
        .file_name()
        .map(|n| n.as_bytes().to_vec())
        .unwrap_or_default();
    name.starts_with(b"vigil")
}

impl PidFile {
    /// Claims `path` for this process: an error naming the pid when a live
    /// Vigil holds it; a stale file (its process gone, or not Vigil) is
    /// replaced, with a log line.
    pub fn claim(path: &Path) -> Result<PidFile, String> {
        match holder(path) {
            Holder::Live(pid) => {
                return Err(format!(
                    "{}: vigil is already running as pid {pid} (stop it first, or use another --pidfile)",
                    path.display()
                ))
            }
            Holder::Stale(why) => log::warn!(
                "{}: stale pid file ({why}); replacing it",
                path.display()
            ),
            Holder::Nobody => {}
        }
        let pid = std::process::id();
        write_atomic(path, pid)
            .map_err(|e| format!("cannot write the pid file {}: {e}", path.display()))?;
        Ok(PidFile {
            path: path.to_owned(),
            pid,
        })
    }
}

/// Writes `pid` to `path` through a temporary file in the same directory
/// and a rename, so a reader never sees a half-written file.
fn write_atomic(path: &Path, pid: u32) -> std::io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("the pid file path has no file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp{pid}"));
    let tmp = path.with_file_name(tmp_name);
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(&tmp)?;
        f.write_all(format!("{pid}\n").as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

impl Drop for PidFile {
    fn drop(&mut self) {
        // Only our own: a successor may have replaced it.
        let ours = std::fs::read_to_string(&self.path)
            .ok()
            .and_then(|t| t.trim().parse::<u32>().ok())
            == Some(self.pid);
        if ours {
            if let Err(e) = std::fs::remove_file(&self.path) {
                log::warn!("cannot remove the pid file {}: {e}", self.path.display());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("vigil-detach-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn stale_pid_files_are_told_apart() {
        let d = temp("stale");
        let p = d.join("vigil.pid");
        assert_eq!(holder(&p), Holder::Nobody);
        std::fs::write(&p, "garbage\n").unwrap();
        assert!(matches!(holder(&p), Holder::Stale(w) if w.contains("no pid")));
        // Our own pid: a predecessor's leftover.
        std::fs::write(&p, format!("{}\n", std::process::id())).unwrap();
        assert!(matches!(holder(&p), Holder::Stale(w) if w.contains("this process")));
        // A live process that is not vigil (the test runner's parent may be
        // anything; pid 1 is never vigil here unless a board runs it so).
        let mut sleep = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        std::fs::write(&p, format!("{}\n", sleep.id())).unwrap();
        assert!(matches!(holder(&p), Holder::Stale(w) if w.contains("not vigil")));
        sleep.kill().unwrap();
        sleep.wait().unwrap();
        assert!(matches!(holder(&p), Holder::Stale(w) if w.contains("not running")));
        // Claimed: replaced with our pid, and removed when dropped.
        let f = PidFile::claim(&p).unwrap();
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            format!("{}\n", std::process::id())
        );
        drop(f);
        assert!(!p.exists());
        // No temporary file left behind.
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 0);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_replaced_pid_file_is_not_removed() {
        let d = temp("replaced");
        let p = d.join("vigil.pid");
        let f = PidFile::claim(&p).unwrap();
        std::fs::write(&p, "999999\n").unwrap();
        drop(f);
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "999999\n");
        let _ = std::fs::remove_dir_all(&d);
    }
}
