//! `SIGHUP` with the real binary: `vigil run` as a child process, its
//! config file edited the way a user would over SSH, then `kill -HUP`. A
//! valid edit is applied (only the cameras it touches restart); an invalid
//! one is logged with its line and ignored.

mod common;

use common::http::{free_port, get_json};
use common::{temp_dir, wait_for};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use vigil::camera::{CameraServer, ServerOptions};

const T: Duration = Duration::from_secs(30);

/// `vigil run`, its stderr collected line by line; killed on drop.
struct Vigil {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Vigil {
    fn start(config: &Path) -> Vigil {
        let mut child = Command::new(env!("CARGO_BIN_EXE_vigil"))
            .arg("-c")
            .arg(config)
            .arg("run")
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

    fn hup(&self) {
        // SAFETY: signalling our own child, which has not been reaped.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGHUP) };
        assert_eq!(rc, 0);
    }

    /// Waits for a log line containing every one of `needles` after line
    /// `from`; returns it and where the next search starts.
    fn wait_log(&self, from: usize, needles: &[&str]) -> (String, usize) {
        wait_for(T, &format!("a log line with {needles:?}"), || {
            let log = self.log.lock().unwrap();
            log.iter()
                .enumerate()
                .skip(from)
                .find(|(_, l)| needles.iter().all(|n| l.contains(n)))
                .map(|(i, l)| (l.clone(), i + 1))
        })
    }

    fn log_len(&self) -> usize {
        self.log.lock().unwrap().len()
    }

    fn dump(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

impl Drop for Vigil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Per camera name, its main stream's (state, frames, reconnects).
fn statuses(addr: SocketAddr) -> Option<Vec<(String, String, u64, u64)>> {
    let v = get_json(addr, "/api/status")?;
    v["cameras"]
        .as_array()?
        .iter()
        .map(|c| {
            let s = &c["streams"][0];
            Some((
                c["name"].as_str()?.to_owned(),
                s["state"].as_str()?.to_owned(),
                s["frames"].as_u64()?,
                s["reconnects"].as_u64()?,
            ))
        })
        .collect()
}

fn all_streaming(addr: SocketAddr, names: &[&str]) -> Option<Vec<(String, String, u64, u64)>> {
    let s = statuses(addr)?;
    let got: Vec<&str> = s.iter().map(|c| c.0.as_str()).collect();
    (got == names && s.iter().all(|c| c.1 == "streaming" && c.2 > 0)).then_some(s)
}

fn camera_table(name: &str, url: &str) -> String {
    format!("\n[[camera]]\nname = \"{name}\"\nurl = \"{url}\"\nsegment_seconds = 5\n")
}

#[test]
fn sighup_applies_valid_edits_and_ignores_invalid_ones() {
    let dir = temp_dir("reload");
    let cam = CameraServer::start(ServerOptions {
        listen: ([127, 0, 0, 1], 0).into(),
        auth: None,
        bitrate_kbps: Some(300),
    })
    .unwrap();
    let port = free_port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let head = format!(
        "# edited over SSH\n[storage]\npath = \"data\"\npool_size_mb = 4\npools = 4\n\
         sync_interval_ms = 300\n\n[memory]\narena_mb = 4\n\n[system]\nstream_start_spacing_ms = 0\n\n\
         [http]\nlisten = \"127.0.0.1:{port}\"\nauth = false\n"
    );
    let path = dir.join("vigil.toml");
    let a = camera_table("a", &cam.url("h264/a"));
    std::fs::write(&path, format!("{head}{a}")).unwrap();
    let vigil = Vigil::start(&path);
    let before = wait_for(T, "a streaming", || all_streaming(addr, &["a"]));

    // A camera added by hand.
    let b = camera_table("b", &cam.url("h264/b"));
    std::fs::write(&path, format!("{head}{a}{b}")).unwrap();
    let from = vigil.log_len();
    vigil.hup();
    let (line, _) = vigil.wait_log(from, &["reload of", "added [\"b\"]"]);
    assert!(line.contains("removed []"), "{line}");
    let after = wait_for(T, "a and b streaming", || all_streaming(addr, &["a", "b"]));
    // a went on untouched.
    assert!(
        after[0].2 > before[0].2 && after[0].3 == before[0].3,
        "{before:?} {after:?}"
    );

    // An invalid edit: logged with file and line, nothing changes.
    let broken = format!("{head}{a}{b}").replace("pools = 4", "pools = 1");
    std::fs::write(&path, &broken).unwrap();
    let from = vigil.log_len();
    vigil.hup();
    let (line, _) = vigil.wait_log(
        from,
        &["reload:", "storage.pools", "keeping the running config"],
    );
    assert!(line.contains(&format!("{}:5:", path.display())), "{line}");
    let syntax =
        format!("{head}{a}{b}").replace("segment_seconds = 5\n", "segment_seconds = = 5\n");
    std::fs::write(&path, &syntax).unwrap();
    let from = vigil.log_len();
    vigil.hup();
    vigil.wait_log(
        from,
        &["reload:", "invalid TOML", "keeping the running config"],
    );
    let still = wait_for(T, "a and b still streaming", || {
        all_streaming(addr, &["a", "b"])
    });
    assert!(
        still[0].3 == before[0].3 && still[1].3 == after[1].3,
        "{still:?}"
    );

    // b changed, a removed, [http] changed (needs a restart).
    let b2 = camera_table("b", &cam.url("h265/b"));
    let head2 = head.replace("auth = false", "auth = false\nmax_clients = 8");
    std::fs::write(&path, format!("{head2}{b2}")).unwrap();
    let from = vigil.log_len();
    vigil.hup();
    let (line, from) = vigil.wait_log(from, &["reload of", "changed [\"b\"]"]);
    assert!(line.contains("removed [\"a\"]"), "{line}");
    vigil.wait_log(from, &["[http] changed", "next restart"]);
    wait_for(T, "b streaming H.265", || {
        let v = get_json(addr, "/api/status")?;
        let cams = v["cameras"].as_array()?;
        (cams.len() == 1 && cams[0]["name"] == "b" && cams[0]["streams"][0]["codec"] == "h265")
            .then_some(())
    });
    let list = get_json(addr, "/api/cameras").unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert!(list[0]["url"].as_str().unwrap().ends_with("/h265/b"));

    // SIGTERM: an orderly end.
    let mut vigil = vigil;
    // SAFETY: signalling our own child.
    unsafe { libc::kill(vigil.child.id() as libc::pid_t, libc::SIGTERM) };
    let status = wait_for(T, "vigil to exit", || vigil.child.try_wait().ok().flatten());
    assert!(status.success(), "{status:?}\n{}", vigil.dump());
    let _ = std::fs::remove_dir_all(&dir);
}
