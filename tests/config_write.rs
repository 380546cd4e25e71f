//! The config file written back by the API survives a crash at any
//! moment: a child process writes it in a loop (alternately without and
//! with a camera added by `config::write`) and is killed with SIGKILL at
//! random moments; every time, the file is exactly the old or the new
//! version, never a torn one. A control run with a plain `fs::write`
//! shows that the kills do land in the middle of writes.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use vigil::config::write::{add_camera, temp_path, write_atomic};

const CHILD_ENV: &str = "VIGIL_TEST_WRITE_CHILD";
/// Set in the child for the control run: write without care.
const NAIVE_ENV: &str = "VIGIL_TEST_WRITE_NAIVE";
const TEST_NAME: &str = "a_writer_killed_at_any_moment_leaves_a_whole_file";

/// The two versions: large, so that a write takes a while.
fn versions() -> (String, String) {
    let mut a = String::from("# kept by every edit\n[storage]\npools = 4\n\n");
    for i in 0..20_000 {
        a.push_str(&format!("# padding line {i} so that a write takes time\n"));
    }
    a.push_str("[[camera]]\nname = \"a\"\nurl = \"rtsp://10.0.0.1/a\" # first\n");
    let fields = [
        ("name".to_owned(), toml_edit::Value::from("x")),
        (
            "url".to_owned(),
            toml_edit::Value::from("rtsp://10.0.0.9/x"),
        ),
    ];
    let b = add_camera(&a, Path::new("."), &fields).unwrap().text;
    (a, b)
}

/// Kills a child writing `path` `rounds` times at random moments; counts
/// what the file held after each kill: (old, new, torn).
fn kill_writers(path: &Path, naive: bool, rounds: u32, stop_at_torn: bool) -> (u32, u32, u32) {
    let (a, b) = versions();
    let mut rng = std::process::id() | 1;
    let (mut seen_a, mut seen_b, mut torn) = (0, 0, 0);
    for _ in 0..rounds {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args([TEST_NAME, "--exact", "--test-threads=1", "--quiet"])
            .env(CHILD_ENV, path)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if naive {
            cmd.env(NAIVE_ENV, "1");
        }
        let mut child = cmd.spawn().unwrap();
        rng ^= rng << 13;
        rng ^= rng >> 17;
        rng ^= rng << 5;
        std::thread::sleep(Duration::from_micros(u64::from(20_000 + rng % 60_000)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let now = std::fs::read_to_string(path).unwrap_or_default();
        if now == a {
            seen_a += 1;
        } else if now == b {
            seen_b += 1;
        } else {
            torn += 1;
            if stop_at_torn {
                break;
            }
        }
    }
    (seen_a, seen_b, torn)
}

#[test]
fn a_writer_killed_at_any_moment_leaves_a_whole_file() {
    if let Some(path) = std::env::var_os(CHILD_ENV) {
        // The child: write for ever (until killed; bounded in case not).
        let path = Path::new(&path);
        let naive = std::env::var_os(NAIVE_ENV).is_some();
        let (a, b) = versions();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            for text in [&a, &b] {
                if naive {
                    std::fs::write(path, text).unwrap();
                } else {
                    write_atomic(path, text).unwrap();
                }
            }
        }
        return;
    }
    let dir = std::env::temp_dir().join(format!("vigil-config-write-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("vigil.toml");
    let (a, _) = versions();

    // Control: a plain write does get torn by these kills.
    let naive = dir.join("naive.toml");
    std::fs::write(&naive, &a).unwrap();
    let (_, _, torn) = kill_writers(&naive, true, 40, true);
    assert!(torn > 0, "no kill landed in the middle of a write");
    std::fs::remove_file(&naive).unwrap();

    std::fs::write(&path, &a).unwrap();
    let (seen_a, seen_b, torn) = kill_writers(&path, false, 40, false);
    assert_eq!(torn, 0, "torn files after {} kills", seen_a + seen_b + torn);
    // The child did write (both versions were seen after kills).
    assert!(seen_a > 0 && seen_b > 0, "old {seen_a} new {seen_b}");
    vigil::config::parse_str(&std::fs::read_to_string(&path).unwrap(), &dir).unwrap();
    // At most the one temporary file is left, and the next write takes it.
    let names = || -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    for n in names() {
        assert!(n == "vigil.toml" || n == ".vigil.toml.vigil-tmp", "{n}");
    }
    write_atomic(&path, &a).unwrap();
    assert!(!temp_path(&path).exists());
    assert_eq!(names(), ["vigil.toml"]);
    let _ = std::fs::remove_dir_all(&dir);
}
