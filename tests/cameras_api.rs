//! `/api/cameras` end to end, in one process: the built-in camera, a
//! recorder whose config is a file on disk, and the HTTP server on
//! loopback. Cameras are added, changed and removed while the others keep
//! recording; the file keeps its comments.

mod common;

use common::http::{self, get, Resp};
use common::{temp_dir, wait_for};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use vigil::camera::{CameraServer, ServerOptions};
use vigil::config::{self, StreamKind};
use vigil::daemon::recorder::Recorder;
use vigil::serve::HttpServer;
use vigil::store;

/// `method target`, with `body` as JSON when given.
fn request(addr: SocketAddr, method: &str, target: &str, body: Option<&str>) -> Resp {
    match body {
        Some(b) => http::send(
            addr,
            method,
            target,
            "Content-Type: application/json\r\n",
            b,
        ),
        None => http::request(addr, method, target),
    }
}

/// (frames, reconnects, state) of a camera's stream in `/api/status`.
fn stream_status(addr: SocketAddr, camera: &str, stream: &str) -> Option<(u64, u64, String)> {
    let v = get(addr, "/api/status").json();
    let cam = v["cameras"]
        .as_array()?
        .iter()
        .find(|c| c["name"] == camera)?
        .clone();
    let s = cam["streams"]
        .as_array()?
        .iter()
        .find(|s| s["stream"] == stream)?
        .clone();
    Some((
        s["frames"].as_u64()?,
        s["reconnects"].as_u64()?,
        s["state"].as_str()?.to_owned(),
    ))
}

fn streaming(addr: SocketAddr, camera: &str, stream: &str) -> bool {
    stream_status(addr, camera, stream).is_some_and(|(f, _, s)| s == "streaming" && f > 0)
}

fn file_text(camera: &CameraServer) -> String {
    format!(
        r#"# Test NVR: keep this comment
[storage]
path = "data"        # next to this file
pool_size_mb = 4
pools = 4
sync_interval_ms = 300

[memory]
arena_mb = 4

[system]
stream_start_spacing_ms = 0

[http]
listen = "127.0.0.1:0"
auth = false

# The first camera, with a password that must never be shown.
[[camera]]
name = "a"
url = "{a}"
username = "admin"
password = "hunter2"   # the camera ignores it
segment_seconds = 5

[[camera]]
name = "b"
url = "{b}"
sub_url = "{bs}"
record = "both"
segment_seconds = 5
# trailing comment
"#,
        a = camera.url("h264/a"),
        b = camera.url("h265/b"),
        bs = camera.url("mjpeg/b"),
    )
}

#[test]
fn cameras_added_changed_and_removed_while_recording() {
    let dir = temp_dir("cameras-api");
    let cam = CameraServer::start(ServerOptions {
        listen: ([127, 0, 0, 1], 0).into(),
        auth: None,
        bitrate_kbps: Some(300),
    })
    .unwrap();
    let path = dir.join("vigil.toml");
    let original = file_text(&cam);
    std::fs::write(&path, &original).unwrap();
    let cfg = config::load(&path).unwrap();
    let storage = store::open::open_for_writing(&cfg.storage).unwrap();
    let rec = Recorder::start(&cfg, storage).unwrap();
    let control = rec.control();
    control.set_config_file(Some(path.clone()));
    let ctx = Arc::new(vigil::serve::context(&cfg, &rec));
    let http = HttpServer::start(cfg.http.listen, ctx, 16).unwrap();
    let addr = http.local_addr();
    let t = Duration::from_secs(30);
    wait_for(t, "a and b streaming", || {
        (streaming(addr, "a", "main")
            && streaming(addr, "b", "main")
            && streaming(addr, "b", "sub"))
        .then_some(())
    });

    // GET: the configured cameras, passwords never shown.
    let r = get(addr, "/api/cameras");
    assert_eq!(r.status, 200);
    let text = String::from_utf8_lossy(&r.body).into_owned();
    assert!(!text.contains("hunter2"), "{text}");
    let list = r.json();
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(list[0]["name"], "a");
    assert_eq!(list[0]["password_set"], true);
    assert_eq!(list[0]["username"], "admin");
    assert_eq!(list[1]["password_set"], false);
    assert_eq!(list[1]["record"], "both");
    assert_eq!(list[1]["sub_url"], cam.url("mjpeg/b"));
    let one = get(addr, "/api/cameras/b").json();
    assert_eq!(one, list[1]);
    assert_eq!(get(addr, "/api/cameras/nope").status, 404);

    // Errors: nothing changes, the file stays byte for byte.
    let bad = |method: &str, target: &str, body: &str, status: u16, field: Option<&str>| {
        let r = request(addr, method, target, Some(body));
        assert_eq!(
            r.status,
            status,
            "{method} {target} {body}: {}",
            String::from_utf8_lossy(&r.body)
        );
        let v = r.json();
        assert!(v["error"].is_string(), "{v}");
        if let Some(f) = field {
            assert_eq!(v["field"], f, "{v}");
            assert!(v["error"].as_str().unwrap().starts_with(f), "{v}");
        }
    };
    let c_url = cam.url("h264/c");
    bad(
        "POST",
        "/api/cameras",
        &json!({"name": "a", "url": c_url}).to_string(),
        409,
        None,
    );
    bad(
        "POST",
        "/api/cameras",
        &json!({"name": "c", "url": "http://x/"}).to_string(),
        400,
        Some("url"),
    );
    bad(
        "POST",
        "/api/cameras",
        &json!({"name": "Bad Name", "url": c_url}).to_string(),
        400,
        Some("name"),
    );
    bad(
        "POST",
        "/api/cameras",
        &json!({"url": c_url}).to_string(),
        400,
        Some("name"),
    );
    bad(
        "POST",
        "/api/cameras",
        &json!({"name": "c"}).to_string(),
        400,
        Some("url"),
    );
    bad(
        "POST",
        "/api/cameras",
        &json!({"name": "c", "url": c_url, "colour": "red"}).to_string(),
        400,
        Some("colour"),
    );
    bad(
        "POST",
        "/api/cameras",
        &json!({"name": "c", "url": c_url, "priority": "high"}).to_string(),
        400,
        Some("priority"),
    );
    bad(
        "POST",
        "/api/cameras",
        &json!({"name": "c", "url": c_url, "segment_seconds": 1.5}).to_string(),
        400,
        Some("segment_seconds"),
    );
    bad(
        "POST",
        "/api/cameras",
        &json!({"name": "c", "url": c_url, "record": "sub"}).to_string(),
        400,
        Some("record"),
    );
    bad(
        "POST",
        "/api/cameras",
        &json!({"name": "c", "url": [1]}).to_string(),
        400,
        None,
    );
    bad("POST", "/api/cameras", "{nope", 400, None);
    bad(
        "PUT",
        "/api/cameras/a",
        &json!({"priority": 500}).to_string(),
        400,
        Some("priority"),
    );
    bad(
        "PUT",
        "/api/cameras/a",
        &json!({"name": "z"}).to_string(),
        400,
        Some("name"),
    );
    bad(
        "PUT",
        "/api/cameras/a",
        &json!({"url": null}).to_string(),
        400,
        Some("url"),
    );
    bad(
        "PUT",
        "/api/cameras/zz",
        &json!({"priority": 2}).to_string(),
        404,
        None,
    );
    assert_eq!(request(addr, "DELETE", "/api/cameras/zz", None).status, 404);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), original);

    // POST: camera c starts recording without a restart.
    let before_a = stream_status(addr, "a", "main").unwrap();
    let before_b = stream_status(addr, "b", "sub").unwrap();
    let r = request(
        addr,
        "POST",
        "/api/cameras",
        Some(
            &json!({"name": "c", "url": c_url, "segment_seconds": 5, "password_set": false})
                .to_string(),
        ),
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["name"], "c");
    assert_eq!(r.json()["segment_seconds"], 5);
    wait_for(t, "c streaming", || {
        streaming(addr, "c", "main").then_some(())
    });
    let recs = wait_for(t, "a recording of c", || {
        let v = get(addr, "/api/cameras/c/recordings").json();
        let a = v.as_array()?;
        (a.iter().any(|r| r["frames"].as_u64() > Some(0))).then(|| a.clone())
    });
    assert_eq!(recs[0]["codec"], "h264");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.starts_with("# Test NVR: keep this comment\n"),
        "{text}"
    );
    assert!(
        text.contains("password = \"hunter2\"   # the camera ignores it"),
        "{text}"
    );
    assert!(text.contains("# The first camera, with a password that must never be shown."));
    assert!(
        text.contains(&format!(
            "[[camera]]\nname = \"c\"\nurl = \"{c_url}\"\nsegment_seconds = 5\n"
        )),
        "{text}"
    );
    assert_eq!(config::load(&path).unwrap().cameras.len(), 3);
    // The others went on: their counters grew, nobody reconnected.
    let after_a = stream_status(addr, "a", "main").unwrap();
    let after_b = stream_status(addr, "b", "sub").unwrap();
    assert!(
        after_a.0 > before_a.0 && after_a.1 == before_a.1,
        "{before_a:?} {after_a:?}"
    );
    assert!(
        after_b.0 > before_b.0 && after_b.1 == before_b.1,
        "{before_b:?} {after_b:?}"
    );
    assert_eq!(after_a.2, "streaming");

    // PUT: c changes (restarts), a and b do not.
    let before_a = stream_status(addr, "a", "main").unwrap();
    let before_b = stream_status(addr, "b", "main").unwrap();
    let before_c = stream_status(addr, "c", "main").unwrap();
    let ring_c = rec.running.live("c", StreamKind::Main).unwrap().tap;
    let r = request(
        addr,
        "PUT",
        "/api/cameras/c",
        Some(&json!({"segment_seconds": 10, "priority": 3}).to_string()),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["segment_seconds"], 10);
    assert_eq!(r.json()["priority"], 3);
    // c's stream started again: a new status, counting from zero.
    let restarted = stream_status(addr, "c", "main").unwrap();
    assert!(restarted.0 < before_c.0, "{before_c:?} {restarted:?}");
    // ... on the ring it had.
    let now_c = rec.running.live("c", StreamKind::Main).unwrap().tap;
    assert!(now_c.same_ring(&ring_c));
    drop((now_c, ring_c));
    wait_for(t, "c streaming again", || {
        streaming(addr, "c", "main").then_some(())
    });
    let after_a = stream_status(addr, "a", "main").unwrap();
    let after_b = stream_status(addr, "b", "main").unwrap();
    assert!(
        after_a.0 > before_a.0 && after_a.1 == before_a.1,
        "{before_a:?} {after_a:?}"
    );
    assert!(
        after_b.0 > before_b.0 && after_b.1 == before_b.1,
        "{before_b:?} {after_b:?}"
    );
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains("segment_seconds = 10\npriority = 3\n"),
        "{text}"
    );
    // A PUT that changes nothing restarts nothing.
    let before_c = stream_status(addr, "c", "main").unwrap();
    let r = request(
        addr,
        "PUT",
        "/api/cameras/c",
        Some(&json!({"priority": 3}).to_string()),
    );
    assert_eq!(r.status, 200);
    let after_c = stream_status(addr, "c", "main").unwrap();
    assert!(after_c.0 >= before_c.0, "{before_c:?} {after_c:?}");
    // What GET shows can be sent back: the password stays.
    let shown = get(addr, "/api/cameras/a").json();
    let r = request(addr, "PUT", "/api/cameras/a", Some(&shown.to_string()));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["password_set"], true);
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        text,
        "an unchanged camera is not rewritten"
    );
    // Removing a key with null.
    let r = request(
        addr,
        "PUT",
        "/api/cameras/a",
        Some(&json!({"password": null, "username": null}).to_string()),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["password_set"], false);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        !text.contains("hunter2") && !text.contains("username"),
        "{text}"
    );
    wait_for(t, "a streaming again", || {
        streaming(addr, "a", "main").then_some(())
    });

    // DELETE: c stops and leaves the file; its recordings stay, closed.
    let r = request(addr, "DELETE", "/api/cameras/c", None);
    assert_eq!(r.status, 204);
    assert!(r.body.is_empty());
    assert_eq!(get(addr, "/api/cameras/c").status, 404);
    assert!(stream_status(addr, "c", "main").is_none());
    let names: Vec<String> = get(addr, "/api/cameras")
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["a", "b"]);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains("name = \"c\""), "{text}");
    assert!(text.contains("# Test NVR: keep this comment") && text.contains("# trailing comment"));
    let recs = wait_for(t, "c's recordings closed", || {
        let r = get(addr, "/api/cameras/c/recordings");
        (r.status == 200).then_some(())?;
        let v = r.json();
        let a = v.as_array()?.clone();
        (!a.is_empty() && a.iter().all(|r| r["open"] == false)).then_some(a)
    });
    assert!(recs.iter().all(|r| r["frames"].as_u64() > Some(0)));
    assert_eq!(request(addr, "DELETE", "/api/cameras/c", None).status, 404);

    // Deleting b frees its arena rings (nobody watches them); a camera
    // added then records through that room.
    assert_eq!(control.arena_free_bytes(), 0);
    // A snapshot of b leaves a picture cache (and its producer) behind.
    assert_eq!(get(addr, "/api/cameras/b/snapshot.jpg").status, 200);
    assert_eq!(request(addr, "DELETE", "/api/cameras/b", None).status, 204);
    assert_eq!(get(addr, "/api/cameras/b/snapshot.jpg").status, 404);
    // The next picture request closes b's cache, which let its ring go.
    let r = get(addr, "/api/cameras/a/snapshot.jpg");
    assert!(r.status == 200 || r.status == 415, "{}", r.status);
    // (Well before the producer's own idle end, 15 s.)
    let freed = wait_for(
        Duration::from_secs(5),
        "b's rings back in the arena",
        || {
            let f = control.arena_free_bytes();
            (f > 0).then_some(f)
        },
    );
    let d_url = cam.url("h264/d");
    let r = request(
        addr,
        "POST",
        "/api/cameras",
        Some(&json!({"name": "d", "url": d_url}).to_string()),
    );
    assert_eq!(r.status, 201);
    assert!(control.arena_free_bytes() < freed);
    wait_for(t, "d streaming", || {
        streaming(addr, "d", "main").then_some(())
    });
    let cfg_now = config::load(&path).unwrap();
    let names: Vec<&str> = cfg_now.cameras.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["a", "d"]);

    http.stop();
    let stats = rec.shutdown(Duration::from_secs(10)).unwrap();
    assert_eq!(stats.last_error, None);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Without a config file (`vigil demo`), changes apply and last until the
/// process ends, with the same validation.
#[test]
fn without_a_file_changes_stay_in_memory() {
    let dir = temp_dir("cameras-api-mem");
    let cam = CameraServer::start(ServerOptions {
        listen: ([127, 0, 0, 1], 0).into(),
        auth: None,
        bitrate_kbps: Some(300),
    })
    .unwrap();
    let text = file_text(&cam);
    let cfg = config::parse_str(&text, &dir).unwrap();
    let storage = store::open::open_for_writing(&cfg.storage).unwrap();
    let rec = Recorder::start(&cfg, storage).unwrap();
    let control = rec.control();
    let fields = |n: &str, u: &str| {
        vec![
            ("name".to_owned(), toml_edit::Value::from(n)),
            ("url".to_owned(), toml_edit::Value::from(u)),
        ]
    };
    let c = control
        .add_camera(&fields("c", &cam.url("h264/c")))
        .unwrap();
    assert_eq!(c.name, "c");
    assert!(control
        .add_camera(&fields("c", &cam.url("h264/c")))
        .is_err());
    let e = control.add_camera(&fields("x", "http://h/")).unwrap_err();
    assert!(e.to_string().starts_with("url:"), "{e}");
    control.remove_camera("a").unwrap();
    let names: Vec<String> = rec
        .running
        .cameras()
        .iter()
        .map(|c| c.name.clone())
        .collect();
    assert_eq!(names, ["b", "c"]);
    let statuses: Vec<String> = rec.running.statuses().iter().map(|s| s.label()).collect();
    assert_eq!(statuses, ["b/main", "b/sub", "c/main"]);
    assert!(control.reload().is_err(), "no file to reload");
    rec.shutdown(Duration::from_secs(10)).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
