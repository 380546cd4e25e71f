//! Users and authentication over the real HTTP server (README, "Users and
//! authentication"): login and logout with the session cookie, HTTP Basic,
//! roles, the Origin check with a real session, the per-address rate limit,
//! user management with the last-admin rule, session expiry and
//! invalidation; and `vigil user` through the real binary while `vigil run`
//! serves, with the passwords absent from every output and log.

mod common;

use common::http::{send, Resp};
use common::temp_dir;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use vigil::auth::{password, Auth};
use vigil::config;
use vigil::serve::api::users as api_users;
use vigil::serve::http::Reply;
use vigil::serve::router::{RouteHook, ServeContext};
use vigil::serve::HttpServer;
use vigil::store::db::Db;

const ROOT_PW: &str = "root-Passw0rd";
const BOB_PW: &str = "bob-Passw0rd";

fn basic(user: &str, pw: &str) -> String {
    use base64::Engine as _;
    let b = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"));
    format!("Authorization: Basic {b}\r\n")
}

fn login_body(user: &str, pw: &str) -> String {
    json!({ "username": user, "password": pw }).to_string()
}

/// Our page's own requests carry its origin.
const ORIGIN: &str = "Origin: http://h:1\r\n";

/// A server with the real authenticator over a fresh index holding `root`
/// (admin) and `bob` (viewer), and a hook that answers every other path
/// 200 so that the gate's verdict shows.
struct Setup {
    http: Option<HttpServer>,
    addr: SocketAddr,
    db_path: PathBuf,
    _dir: PathBuf,
}

impl Drop for Setup {
    fn drop(&mut self) {
        if let Some(h) = self.http.take() {
            h.stop();
        }
        let _ = std::fs::remove_dir_all(&self._dir);
    }
}

fn setup(name: &str, auth_on: bool) -> Setup {
    let dir = temp_dir(&format!("auth-{name}"));
    let cfg = config::parse_str("[storage]\npath = \"data\"\n", &dir).unwrap();
    std::fs::create_dir_all(&cfg.storage.path).unwrap();
    let db_path = cfg.storage.db.clone();
    let mut db = Db::create(&db_path, b"0123456789abcdef").unwrap();
    db.add_user("root", "admin", &password::hash(ROOT_PW).unwrap(), 0)
        .unwrap();
    db.add_user("bob", "viewer", &password::hash(BOB_PW).unwrap(), 0)
        .unwrap();
    drop(db);
    let auth = Arc::new(Auth::new(db_path.clone()));
    let echo: RouteHook = Arc::new(|req| {
        Some(Reply::json(
            200,
            &json!({ "method": req.method.name(), "user": req.identity.as_ref().map(|i| i.user.clone()) }),
        ))
    });
    let ctx = Arc::new(ServeContext {
        running: Default::default(),
        db_path: db_path.clone(),
        storage: cfg.storage.clone(),
        started: Instant::now(),
        arena_bytes: 0,
        route_hooks: vec![api_users::hook(auth.clone(), auth_on), echo],
        auth: if auth_on { Some(auth) } else { None },
        counters: Default::default(),
    });
    let http = HttpServer::start(([127, 0, 0, 1], 0).into(), ctx, 4).unwrap();
    Setup {
        addr: http.local_addr(),
        http: Some(http),
        db_path,
        _dir: dir,
    }
}

/// Logs in; the cookie pair to send back.
fn login(addr: SocketAddr, user: &str, pw: &str) -> String {
    let r = send(addr, "POST", "/api/login", "", &login_body(user, pw));
    assert_eq!(r.status, 200, "{}", r.dump());
    r.cookie()
}

fn no_secret(r: &Resp, secrets: &[&str]) {
    let t = r.dump();
    for s in secrets {
        assert!(!t.contains(s), "a password in an answer: {t}");
    }
}

#[test]
fn login_logout_and_cookie_attributes() {
    let s = setup("login", true);
    let a = s.addr;
    // Wrong password or unknown user: 401, nothing set, no Basic dialog.
    for (u, p) in [("root", "wrong-password"), ("nobody", ROOT_PW)] {
        let r = send(a, "POST", "/api/login", "", &login_body(u, p));
        assert_eq!(r.status, 401, "{}", r.dump());
        assert!(r.header("Set-Cookie").is_none());
        assert!(r.header("WWW-Authenticate").is_none());
        assert_eq!(r.json()["error"], "wrong user name or password");
        no_secret(&r, &[p]);
    }
    // Malformed bodies name the field.
    let r = send(a, "POST", "/api/login", "", "{\"username\":\"root\"}");
    assert_eq!(r.status, 400);
    assert!(r.json()["error"].as_str().unwrap().starts_with("password"));
    let r = send(a, "POST", "/api/login", "", "not json");
    assert_eq!(r.status, 400);

    let r = send(a, "POST", "/api/login", "", &login_body("root", ROOT_PW));
    assert_eq!(r.status, 200, "{}", r.dump());
    assert_eq!(r.json(), json!({ "user": "root", "role": "admin" }));
    no_secret(&r, &[ROOT_PW]);
    let set = r.header("Set-Cookie").unwrap();
    let attrs: Vec<&str> = set.split(';').map(str::trim).collect();
    for want in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=604800"] {
        assert!(attrs.contains(&want), "{want} missing: {set}");
    }
    let token = attrs[0].strip_prefix("vigil_session=").unwrap();
    assert!(token.len() >= 22, "a token of at least 128 bits: {token}");
    // The database holds no token, only its hash.
    let raw = std::fs::read(&s.db_path).unwrap();
    let wal = std::fs::read(s.db_path.with_extension("db-wal")).unwrap_or_default();
    for bytes in [&raw, &wal] {
        assert!(!bytes.windows(token.len()).any(|w| w == token.as_bytes()));
    }
    let cookie = format!("Cookie: {}\r\n", r.cookie());

    // The page after a reload: who is logged in.
    let st = send(a, "GET", "/api/status", &cookie, "");
    assert_eq!(st.status, 200, "{}", st.dump());
    assert_eq!(
        st.json()["user"],
        json!({ "name": "root", "role": "admin" })
    );
    assert_eq!(st.json()["auth"], true);

    // Without credentials: 401 in JSON. A script gets the Basic
    // challenge; the page's own fetches do not (no browser dialog).
    let r = send(a, "GET", "/api/status", "", "");
    assert_eq!(r.status, 401);
    assert!(r.json()["error"].as_str().unwrap().contains("log in"));
    assert!(r.header("WWW-Authenticate").unwrap().starts_with("Basic"));
    let page = "Sec-Fetch-Site: same-origin\r\nSec-Fetch-Mode: cors\r\n";
    let r = send(a, "GET", "/api/status", page, "");
    assert_eq!(r.status, 401);
    assert!(r.header("WWW-Authenticate").is_none());
    let r = send(a, "GET", "/api/status", "X-Requested-With: fetch\r\n", "");
    assert!(r.header("WWW-Authenticate").is_none());
    // Typing the URL into the address bar may show the dialog.
    let nav = "Sec-Fetch-Site: none\r\nSec-Fetch-Mode: navigate\r\n";
    let r = send(a, "GET", "/api/status", nav, "");
    assert!(r.header("WWW-Authenticate").is_some());
    // The page itself and login stay public.
    assert_eq!(send(a, "GET", "/", "", "").status, 200);

    // Logging out by cookie must come from our page (Origin).
    assert_eq!(send(a, "POST", "/api/logout", &cookie, "").status, 403);
    let r = send(a, "POST", "/api/logout", &format!("{cookie}{ORIGIN}"), "");
    assert_eq!(r.status, 200, "{}", r.dump());
    let cleared = r.header("Set-Cookie").unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    assert!(cleared.starts_with("vigil_session=;"), "{cleared}");
    // The session is gone server-side, not only in the browser.
    let r = send(a, "GET", "/api/status", &cookie, "");
    assert_eq!(r.status, 401);
    assert!(r.json()["error"]
        .as_str()
        .unwrap()
        .contains("expired or ended"));
    // A garbage cookie is no session either.
    let r = send(
        a,
        "GET",
        "/api/status",
        "Cookie: vigil_session=AAAA\r\n",
        "",
    );
    assert_eq!(r.status, 401);
}

#[test]
fn http_basic_and_roles() {
    let s = setup("basic", true);
    let a = s.addr;
    let root = basic("root", ROOT_PW);
    let bob = basic("bob", BOB_PW);
    let r = send(a, "GET", "/api/status", &root, "");
    assert_eq!(r.status, 200, "{}", r.dump());
    assert_eq!(r.json()["user"]["name"], "root");
    // Remembered checks answer the same (the second goes by the cache).
    for _ in 0..3 {
        assert_eq!(send(a, "GET", "/api/status", &root, "").status, 200);
    }
    // Viewers read; only admins change.
    assert_eq!(send(a, "GET", "/api/cameras", &bob, "").status, 200);
    assert_eq!(send(a, "POST", "/api/cameras", &bob, "{}").status, 403);
    assert_eq!(send(a, "DELETE", "/api/cameras/x", &bob, "").status, 403);
    assert_eq!(send(a, "POST", "/api/cameras", &root, "{}").status, 200);
    // The user list is for admins; a viewer sees only themselves.
    assert_eq!(send(a, "GET", "/api/users", &bob, "").status, 403);
    assert_eq!(send(a, "GET", "/api/users/root", &bob, "").status, 403);
    let r = send(a, "GET", "/api/users/bob", &bob, "");
    assert_eq!(r.json(), json!({ "name": "bob", "role": "viewer" }));
    let body = json!({ "password": "another-pass" }).to_string();
    assert_eq!(send(a, "PUT", "/api/users/bob", &bob, &body).status, 403);
    // Wrong or malformed credentials: 401 with the challenge.
    for h in [
        basic("root", "wrong-password"),
        basic("ghost", "whatever-pw"),
        "Authorization: Basic !!!\r\n".to_owned(),
        "Authorization: Bearer abc\r\n".to_owned(),
    ] {
        let r = send(a, "GET", "/api/status", &h, "");
        assert_eq!(r.status, 401, "{h}");
        assert!(r.header("WWW-Authenticate").is_some(), "{h}");
        no_secret(&r, &["wrong-password", "whatever-pw"]);
    }
    // A browser may send remembered Basic credentials with a request
    // another site started: those changes must pass the Origin check.
    let evil = format!("{root}Origin: http://evil.example\r\n");
    assert_eq!(send(a, "POST", "/api/cameras", &evil, "{}").status, 403);
    let ours = format!("{root}{ORIGIN}");
    assert_eq!(send(a, "POST", "/api/cameras", &ours, "{}").status, 200);
    // A remembered Basic check ends with the password it was made with.
    let body = json!({ "password": "root-pass-new" }).to_string();
    assert_eq!(send(a, "PUT", "/api/users/root", &root, &body).status, 200);
    assert_eq!(send(a, "GET", "/api/status", &root, "").status, 401);
    let new = basic("root", "root-pass-new");
    assert_eq!(send(a, "GET", "/api/status", &new, "").status, 200);
    // And with its user's role: bob made admin may change things at once.
    let body = json!({ "role": "admin" }).to_string();
    assert_eq!(send(a, "PUT", "/api/users/bob", &new, &body).status, 200);
    assert_eq!(send(a, "POST", "/api/cameras", &bob, "{}").status, 200);
}

#[test]
fn origin_check_with_a_real_session() {
    let s = setup("origin", true);
    let a = s.addr;
    let cookie = format!("Cookie: {}\r\n", login(a, "root", ROOT_PW));
    let body = json!({ "name": "carol", "password": "carol-pass-1", "role": "viewer" }).to_string();
    // No Origin, or another site's: refused, and nothing happened.
    let r = send(a, "POST", "/api/users", &cookie, &body);
    assert_eq!(r.status, 403, "{}", r.dump());
    let evil = format!("{cookie}Origin: http://evil.example\r\n");
    assert_eq!(send(a, "POST", "/api/users", &evil, &body).status, 403);
    let wrong_port = format!("{cookie}Origin: http://h:2\r\n");
    assert_eq!(
        send(a, "POST", "/api/users", &wrong_port, &body).status,
        403
    );
    let r = send(a, "GET", "/api/users", &cookie, "");
    assert_eq!(r.json().as_array().unwrap().len(), 2);
    // Our page: done.
    let ours = format!("{cookie}{ORIGIN}");
    let r = send(a, "POST", "/api/users", &ours, &body);
    assert_eq!(r.status, 201, "{}", r.dump());
    // Reading needs no Origin.
    assert_eq!(send(a, "GET", "/api/users/carol", &cookie, "").status, 200);
    // Another site cannot log a browser into an account of its choosing.
    let r = send(
        a,
        "POST",
        "/api/login",
        "Origin: http://evil.example\r\n",
        &login_body("carol", "carol-pass-1"),
    );
    assert_eq!(r.status, 403);
    assert!(r.header("Set-Cookie").is_none());
}

#[test]
fn admins_manage_users_and_the_last_admin_stays() {
    let s = setup("manage", true);
    let a = s.addr;
    let cookie = format!("Cookie: {}\r\n{ORIGIN}", login(a, "root", ROOT_PW));
    let add = |name: &str, pw: &str, role: &str| {
        send(
            a,
            "POST",
            "/api/users",
            &cookie,
            &json!({ "name": name, "password": pw, "role": role }).to_string(),
        )
    };
    let r = add("carol", "carol-pass-1", "viewer");
    assert_eq!(r.status, 201, "{}", r.dump());
    assert_eq!(r.json(), json!({ "name": "carol", "role": "viewer" }));
    assert_eq!(r.header("Location").unwrap(), "/api/users/carol");
    assert_eq!(add("carol", "carol-pass-1", "viewer").status, 409);
    // Validation names the field and never quotes a password.
    for (name, pw, role, field) in [
        ("Carol", "carol-pass-1", "viewer", "name"),
        ("a/b", "carol-pass-1", "viewer", "name"),
        ("dave", "short7!", "viewer", "password"),
        ("dave", "dave-pass-1", "root", "role"),
    ] {
        let r = add(name, pw, role);
        assert_eq!(r.status, 400, "{name} {role}: {}", r.dump());
        let e = r.json()["error"].as_str().unwrap().to_owned();
        assert!(e.starts_with(field), "{e}");
        no_secret(&r, &[pw]);
    }
    let r = send(
        a,
        "POST",
        "/api/users",
        &cookie,
        r#"{"name":"x","password":"12345678","role":"viewer","admin":true}"#,
    );
    assert_eq!(r.status, 400);
    assert!(r.json()["error"].as_str().unwrap().starts_with("admin"));

    // Lists carry names and roles, never hashes.
    let r = send(a, "GET", "/api/users", &cookie, "");
    assert_eq!(
        r.json(),
        json!([
            { "name": "bob", "role": "viewer" },
            { "name": "carol", "role": "viewer" },
            { "name": "root", "role": "admin" }
        ])
    );
    assert!(!r.dump().contains("argon2"));

    // A password change ends the user's sessions; the new one works.
    let carol = format!("Cookie: {}\r\n", login(a, "carol", "carol-pass-1"));
    assert_eq!(send(a, "GET", "/api/status", &carol, "").status, 200);
    let body = json!({ "password": "carol-pass-2" }).to_string();
    let r = send(a, "PUT", "/api/users/carol", &cookie, &body);
    assert_eq!(r.status, 200, "{}", r.dump());
    assert_eq!(r.json(), json!({ "name": "carol", "role": "viewer" }));
    assert_eq!(send(a, "GET", "/api/status", &carol, "").status, 401);
    let r = send(
        a,
        "POST",
        "/api/login",
        "",
        &login_body("carol", "carol-pass-1"),
    );
    assert_eq!(r.status, 401);
    login(a, "carol", "carol-pass-2");
    // A role change applies at once to live sessions.
    let carol = format!("Cookie: {}\r\n{ORIGIN}", login(a, "carol", "carol-pass-2"));
    assert_eq!(send(a, "GET", "/api/users", &carol, "").status, 403);
    let body = json!({ "role": "admin" }).to_string();
    assert_eq!(
        send(a, "PUT", "/api/users/carol", &cookie, &body).status,
        200
    );
    assert_eq!(send(a, "GET", "/api/users", &carol, "").status, 200);
    // Changing one's own password keeps the session it is done from.
    let body = json!({ "password": "root-pass-new" }).to_string();
    assert_eq!(
        send(a, "PUT", "/api/users/root", &cookie, &body).status,
        200
    );
    assert_eq!(send(a, "GET", "/api/status", &cookie, "").status, 200);
    // Bad changes.
    assert_eq!(
        send(a, "PUT", "/api/users/carol", &cookie, "{}").status,
        400
    );
    assert_eq!(
        send(
            a,
            "PUT",
            "/api/users/ghost",
            &cookie,
            r#"{"role":"viewer"}"#
        )
        .status,
        404
    );
    assert_eq!(
        send(a, "DELETE", "/api/users/ghost", &cookie, "").status,
        404
    );

    // The last admin can be neither deleted nor demoted.
    let r = send(a, "DELETE", "/api/users/carol", &cookie, "");
    assert_eq!(r.status, 204, "{}", r.dump());
    let r = send(a, "DELETE", "/api/users/root", &cookie, "");
    assert_eq!(r.status, 409, "{}", r.dump());
    assert!(r.json()["error"].as_str().unwrap().contains("last admin"));
    let r = send(
        a,
        "PUT",
        "/api/users/root",
        &cookie,
        r#"{"role":"viewer","password":"new-pass-x"}"#,
    );
    assert_eq!(r.status, 409);
    // ... and the refused change left the password as it was.
    login(a, "root", "root-pass-new");
    // Deleting a user ends their sessions.
    let bob = format!("Cookie: {}\r\n", login(a, "bob", BOB_PW));
    assert_eq!(send(a, "DELETE", "/api/users/bob", &cookie, "").status, 204);
    assert_eq!(send(a, "GET", "/api/status", &bob, "").status, 401);
}

#[test]
fn failed_logins_are_rate_limited_per_address() {
    let s = setup("limit", true);
    let a = s.addr;
    for i in 0..vigil::auth::limit::FREE_FAILURES {
        let r = send(
            a,
            "POST",
            "/api/login",
            "",
            &login_body("root", "guess-guess"),
        );
        assert_eq!(r.status, 401, "failure {i}: {}", r.dump());
    }
    // Now even the right password is refused, unchecked, with a wait.
    let r = send(a, "POST", "/api/login", "", &login_body("root", ROOT_PW));
    assert_eq!(r.status, 429, "{}", r.dump());
    let wait: u64 = r.header("Retry-After").unwrap().parse().unwrap();
    assert!((1..=2).contains(&wait), "{wait}");
    assert!(r.header("Set-Cookie").is_none());
    // Basic credentials from the same address are refused too.
    let r = send(a, "GET", "/api/status", &basic("root", ROOT_PW), "");
    assert_eq!(r.status, 429);
    // After the wait, the right password works again.
    let deadline = Instant::now() + Duration::from_secs(10);
    let cookie = loop {
        let r = send(a, "POST", "/api/login", "", &login_body("root", ROOT_PW));
        if r.status == 200 {
            break r.cookie();
        }
        assert_eq!(r.status, 429);
        assert!(Instant::now() < deadline, "still locked out");
        std::thread::sleep(Duration::from_millis(100));
    };
    // The next failure doubles the wait.
    let r = send(
        a,
        "POST",
        "/api/login",
        "",
        &login_body("root", "guess-again"),
    );
    assert_eq!(r.status, 401);
    let r = send(a, "POST", "/api/login", "", &login_body("root", ROOT_PW));
    assert_eq!(r.status, 429);
    let wait: u64 = r.header("Retry-After").unwrap().parse().unwrap();
    assert!((2..=3).contains(&wait), "{wait}");
    // A logged-in browser keeps working meanwhile.
    let r = send(
        a,
        "GET",
        "/api/status",
        &format!("Cookie: {cookie}\r\n"),
        "",
    );
    assert_eq!(r.status, 200);
}

#[test]
fn expired_sessions_are_refused() {
    let s = setup("expiry", true);
    let a = s.addr;
    let cookie = format!("Cookie: {}\r\n", login(a, "bob", BOB_PW));
    assert_eq!(send(a, "GET", "/api/status", &cookie, "").status, 200);
    // Age every session past its expiry.
    let conn = rusqlite::Connection::open(&s.db_path).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    let n = conn
        .execute(
            "update sessions set expires_s = strftime('%s', 'now') - 1",
            [],
        )
        .unwrap();
    assert_eq!(n, 1);
    let r = send(a, "GET", "/api/status", &cookie, "");
    assert_eq!(r.status, 401);
    assert!(r.json()["error"].as_str().unwrap().contains("expired"));
}

#[test]
fn concurrent_logins_are_bounded_not_queued_without_end() {
    let s = setup("busy", true);
    let a = s.addr;
    let statuses = Arc::new(Mutex::new(Vec::new()));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let st = statuses.clone();
            std::thread::spawn(move || {
                let r = send(a, "POST", "/api/login", "", &login_body("bob", BOB_PW));
                if r.status == 503 {
                    assert_eq!(r.header("Retry-After").as_deref(), Some("1"));
                }
                st.lock().unwrap().push(r.status);
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let st = statuses.lock().unwrap();
    assert!(st.iter().all(|s| *s == 200 || *s == 503), "{st:?}");
    assert!(st.contains(&200), "{st:?}");
}

#[test]
fn with_auth_off_status_has_no_user_and_login_says_why() {
    let s = setup("off", false);
    let a = s.addr;
    let r = send(a, "GET", "/api/status", "", "");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["auth"], false);
    assert_eq!(r.json()["user"], Value::Null);
    let r = send(a, "POST", "/api/login", "", &login_body("root", ROOT_PW));
    assert_eq!(r.status, 400);
    assert!(r.json()["error"].as_str().unwrap().contains("auth = false"));
}

// ---------------------------------------------------------------------------
// The real binary.

fn vigil(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vigil"));
    c.env_remove("RUST_LOG")
        .env_remove("VIGIL_CONFIG")
        .current_dir(dir)
        .args(["-c", "vigil.toml"]);
    c
}

/// Runs `vigil user ...` with `stdin`; (status, stdout + stderr).
fn user_cmd(dir: &Path, args: &[&str], stdin: &str) -> (i32, String) {
    let mut child = vigil(dir)
        .arg("user")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A command that refuses its arguments exits without reading its
    // input: a broken pipe here is that, not a failure.
    if let Err(e) = child.stdin.take().unwrap().write_all(stdin.as_bytes()) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn vigil_user_while_vigil_run_serves_and_no_password_is_logged() {
    let dir = temp_dir("auth-binary");
    std::fs::write(
        dir.join("vigil.toml"),
        "[storage]\npath = \"data\"\npool_size_mb = 1\npools = 2\n\
         [memory]\narena_mb = 1\n[http]\nlisten = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    let admin_pw = "Adm1n-secret-one";
    let admin_pw2 = "Adm1n-secret-two";
    let viewer_pw = "V1ewer-secret";
    let wrong_pw = "Wr0ng-guess-xyz";
    let secrets = [admin_pw, admin_pw2, viewer_pw, wrong_pw];

    // Before any storage: a clear error.
    let (code, out) = user_cmd(&dir, &["list"], "");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("vigil init"), "{out}");

    // `vigil run` with auth on (the default) starts, and says how to make
    // the first admin.
    let mut child = vigil(&dir)
        .args(["run", "--seconds", "120"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut run = Running(child);
    let log = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let l = log.clone();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(i) = line.find("listening on ") {
                let _ = tx.send(line[i + 13..].trim().to_owned());
            }
            let mut l = l.lock().unwrap();
            l.push_str(&line);
            l.push('\n');
        }
    });
    let addr: SocketAddr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("vigil run never listened")
        .parse()
        .unwrap();
    assert!(
        log.lock()
            .unwrap()
            .contains("vigil user add NAME --role admin"),
        "{}",
        log.lock().unwrap()
    );
    assert_eq!(send(addr, "GET", "/api/status", "", "").status, 401);

    // The first admin, password on stdin, while the server runs.
    let (code, out) = user_cmd(&dir, &["add", "root"], &format!("{admin_pw}\n"));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("added user root (admin)"), "{out}");
    let (code, out) = user_cmd(&dir, &["add", "vera"], &format!("{viewer_pw}\n"));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("(viewer)"), "{out}");
    let (code, out) = user_cmd(&dir, &["add", "vera"], &format!("{viewer_pw}\n"));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("already exists"), "{out}");
    let (code, out) = user_cmd(&dir, &["add", "shorty"], "short\n");
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("too short") && !out.contains("short\n"),
        "{out}"
    );
    let (code, out) = user_cmd(&dir, &["add", "Bad:Name"], "whatever-pw\n");
    assert_eq!(code, 2, "{out}");

    // The server sees them at once.
    let cookie = format!("Cookie: {}\r\n", login(addr, "root", admin_pw));
    let r = send(addr, "GET", "/api/status", &cookie, "");
    assert_eq!(r.status, 200, "{}", r.dump());
    assert_eq!(r.json()["user"]["name"], "root");
    let r = send(
        addr,
        "POST",
        "/api/login",
        "",
        &login_body("root", wrong_pw),
    );
    assert_eq!(r.status, 401);
    // A password typed into the name field.
    let r = send(
        addr,
        "POST",
        "/api/login",
        "",
        &login_body(viewer_pw, wrong_pw),
    );
    assert_eq!(r.status, 401);
    assert_eq!(
        send(addr, "GET", "/api/status", &basic("vera", viewer_pw), "").status,
        200
    );

    // The last admin stays; a new password ends the sessions.
    let (code, out) = user_cmd(&dir, &["del", "root"], "");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("last admin"), "{out}");
    let (code, out) = user_cmd(&dir, &["role", "root", "--role", "viewer"], "");
    assert_eq!(code, 1, "{out}");
    let (code, out) = user_cmd(&dir, &["passwd", "root"], &format!("{admin_pw2}\n"));
    assert_eq!(code, 0, "{out}");
    assert_eq!(send(addr, "GET", "/api/status", &cookie, "").status, 401);
    login(addr, "root", admin_pw2);
    let (code, out) = user_cmd(&dir, &["list"], "");
    assert_eq!(code, 0, "{out}");
    assert_eq!(out, "root\tadmin\nvera\tviewer\n");
    let (code, out) = user_cmd(&dir, &["del", "vera"], "");
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        send(addr, "GET", "/api/status", &basic("vera", viewer_pw), "").status,
        401
    );
    let (code, out) = user_cmd(&dir, &["passwd", "ghost"], "whatever-pw\n");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("no user named"), "{out}");

    // `config check` shows nothing of them either.
    let out = vigil(&dir).args(["config", "check"]).output().unwrap();
    assert!(out.status.success());
    let check = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // Stop the server (SIGTERM) and read its whole log.
    // SAFETY: signals our own child by its pid.
    unsafe {
        libc::kill(run.0.id() as libc::pid_t, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while run.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "vigil run did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
    reader.join().unwrap();
    let log = log.lock().unwrap().clone();
    assert!(log.contains("logged in"), "{log}");
    assert!(log.contains("wrong password for user \"root\""), "{log}");
    for s in secrets {
        assert!(!log.contains(s), "a password in the log:\n{log}");
        assert!(!check.contains(s));
    }
    drop(run);
    let _ = std::fs::remove_dir_all(&dir);
}
