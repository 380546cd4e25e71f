use super::*;
use toml_edit::Value;

fn base() -> &'static Path {
    Path::new("/etc/vigil")
}

fn s(k: &str, v: &str) -> (String, Value) {
    (k.to_owned(), Value::from(v))
}

fn set(k: &str, v: impl Into<Value>) -> (String, Option<Value>) {
    (k.to_owned(), Some(v.into()))
}

const FILE: &str = r#"# Vigil on the shed's board
[storage]
path = "/mnt/sd/vigil"   # pool files live here
pools = 4

# --- cameras ---

# The front door: main only.
[[camera]]
name = "front"
url = "rtsp://10.0.0.2/main"   # wired
password = "s3cret"
priority = 5       # keep this one

[http]
listen = "127.0.0.1:8080"
auth = false

# The garden, added later (note the layout).
[[camera]]
  name="garden"
  url   =   'rtsp://10.0.0.3/h264'
  transport = "udp"  # lossy wifi: UDP copes better

# end of file comment
"#;

#[test]
fn add_keeps_everything_and_goes_after_the_last_camera() {
    let e = add_camera(
        FILE,
        base(),
        &[
            s("name", "back"),
            s("url", "rtsp://10.0.0.4/main"),
            s("password", "p\"w"),
        ],
    )
    .unwrap();
    // Everything of the old file is still there, in order.
    let mut rest = e.text.as_str();
    for line in FILE
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with("# end"))
    {
        let at = rest
            .find(line)
            .unwrap_or_else(|| panic!("lost {line:?}:\n{}", e.text));
        rest = &rest[at + line.len()..];
    }
    // The new camera follows the garden camera.
    let garden = e.text.find("name=\"garden\"").unwrap();
    let back = e.text.find("[[camera]]\nname = \"back\"").unwrap();
    assert!(back > garden, "{}", e.text);
    assert_eq!(e.config.cameras.len(), 3);
    let c = &e.config.cameras[2];
    assert_eq!(c.name, "back");
    assert_eq!(c.password.as_deref(), Some("p\"w"));
    // A blank line before the new header.
    assert!(
        e.text.contains("\n\n[[camera]]\nname = \"back\""),
        "{}",
        e.text
    );
}

#[test]
fn add_to_a_file_without_cameras_or_final_newline() {
    let text = "[storage]\npools = 4 # four";
    let e = add_camera(text, base(), &[s("name", "a"), s("url", "rtsp://h/")]).unwrap();
    assert!(
        e.text.starts_with("[storage]\npools = 4 # four\n"),
        "{:?}",
        e.text
    );
    assert_eq!(e.config.cameras.len(), 1);
    let e = add_camera("", base(), &[s("name", "a"), s("url", "rtsp://h/")]).unwrap();
    assert_eq!(e.config.cameras[0].url, "rtsp://h/");
}

#[test]
fn add_refuses_duplicates_and_names_bad_fields() {
    let dup = add_camera(FILE, base(), &[s("name", "front"), s("url", "rtsp://h/")]);
    assert_eq!(dup.unwrap_err(), EditError::Exists("front".into()));
    type Case<'a> = (&'a [(String, Value)], &'a str, &'a str);
    let cases: &[Case] = &[
        (&[s("name", "x"), s("url", "http://h/")], "url", "rtsp://"),
        (&[s("name", "X Y"), s("url", "rtsp://h/")], "name", "a-z"),
        (&[s("url", "rtsp://h/")], "name", "missing"),
        (&[s("name", "x")], "url", "missing"),
        (
            &[s("name", "x"), s("url", "rtsp://h/"), s("transport", "tpc")],
            "transport",
            "udp",
        ),
        (
            &[
                s("name", "x"),
                s("url", "rtsp://h/"),
                ("priority".into(), Value::from(500)),
            ],
            "priority",
            "between",
        ),
        (
            &[
                s("name", "x"),
                s("url", "rtsp://h/"),
                ("enabled".into(), Value::from(1)),
            ],
            "enabled",
            "true or false",
        ),
        (
            &[s("name", "x"), s("url", "rtsp://h/"), s("colour", "red")],
            "colour",
            "unknown",
        ),
        (
            &[s("name", "x"), s("url", "rtsp://h/"), s("record", "both")],
            "record",
            "sub_url",
        ),
    ];
    for (fields, field, needle) in cases {
        match add_camera(FILE, base(), fields) {
            Err(EditError::Field { field: f, message }) => {
                assert_eq!(f, *field, "{message}");
                assert!(message.contains(needle), "{field}: {message}");
            }
            other => panic!("{field}: {other:?}"),
        }
    }
}

#[test]
fn change_keeps_comments_and_layout() {
    let e = change_camera(
        FILE,
        base(),
        "garden",
        &[
            set("transport", "tcp"),
            set("url", "rtsp://10.0.0.3/h265"),
            set("segment_seconds", 30),
        ],
    )
    .unwrap();
    assert!(
        e.text
            .contains("  transport = \"tcp\"  # lossy wifi: UDP copes better\n"),
        "{}",
        e.text
    );
    // The value changed in its place, with its odd spacing kept.
    assert!(
        e.text.contains("  url   =   \"rtsp://10.0.0.3/h265\"\n"),
        "{}",
        e.text
    );
    assert!(e.text.contains("  name=\"garden\"\n"));
    assert!(e.text.contains("segment_seconds = 30"));
    // Only that camera changed.
    assert_eq!(
        e.text
            .replace("segment_seconds = 30\n", "")
            .replace("\"tcp\"", "\"udp\"")
            .replace("h265\"", "h264'")
            .replace("\"rtsp://10.0.0.3", "'rtsp://10.0.0.3"),
        FILE,
    );
    let g = &e.config.cameras[1];
    assert_eq!(
        (g.segment_seconds, g.transport),
        (30, crate::config::Transport::Tcp)
    );
}

#[test]
fn change_of_nothing_is_byte_identical() {
    let e = change_camera(
        FILE,
        base(),
        "front",
        &[set("priority", 5), set("url", "rtsp://10.0.0.2/main")],
    )
    .unwrap();
    assert_eq!(e.text, FILE);
}

#[test]
fn change_removes_keys_and_checks_the_result() {
    let e = change_camera(FILE, base(), "front", &[("password".into(), None)]).unwrap();
    assert!(!e.text.contains("s3cret"));
    assert_eq!(e.config.cameras[0].password, None);
    assert!(e
        .text
        .contains("url = \"rtsp://10.0.0.2/main\"   # wired\npriority = 5"));
    match change_camera(FILE, base(), "front", &[("url".into(), None)]) {
        Err(EditError::Field { field, .. }) => assert_eq!(field, "url"),
        other => panic!("{other:?}"),
    }
    match change_camera(FILE, base(), "front", &[set("name", "door")]) {
        Err(EditError::Field { field, message }) => {
            assert_eq!(field, "name");
            assert!(message.contains("renamed"));
        }
        other => panic!("{other:?}"),
    }
    // Naming itself is fine.
    change_camera(FILE, base(), "front", &[set("name", "front")]).unwrap();
    assert_eq!(
        change_camera(FILE, base(), "nope", &[]).unwrap_err(),
        EditError::NotFound("nope".into())
    );
}

#[test]
fn remove_takes_the_table_and_its_own_comment_only() {
    let e = remove_camera(FILE, base(), "garden").unwrap();
    assert!(
        !e.text.contains("garden") && !e.text.contains("lossy"),
        "{}",
        e.text
    );
    assert!(e.text.contains("# end of file comment"));
    assert!(e.text.contains("[http]\nlisten"));
    assert_eq!(e.config.cameras.len(), 1);
    let e = remove_camera(&e.text, base(), "front").unwrap();
    assert!(e.config.cameras.is_empty());
    assert!(e.text.contains("# --- cameras ---"), "{}", e.text);
    assert!(e.text.contains("pools = 4"));
    assert_eq!(
        remove_camera(FILE, base(), "front2").unwrap_err(),
        EditError::NotFound("front2".into())
    );
}

#[test]
fn an_invalid_file_is_never_edited() {
    let broken = FILE.replace("pools = 4", "pools = 1");
    for r in [
        add_camera(&broken, base(), &[s("name", "x"), s("url", "rtsp://h/")]),
        remove_camera(&broken, base(), "front"),
        change_camera(&broken, base(), "front", &[set("priority", 2)]),
    ] {
        match r {
            Err(EditError::File(e)) => assert_eq!(e.key, "storage.pools"),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn crlf_files_stay_crlf() {
    let text = FILE.replace('\n', "\r\n");
    let e = add_camera(&text, base(), &[s("name", "b"), s("url", "rtsp://h/")]).unwrap();
    assert!(!e.text.replace("\r\n", "").contains('\n'), "{:?}", e.text);
    let e = change_camera(&e.text, base(), "b", &[set("priority", 3)]).unwrap();
    assert!(!e.text.replace("\r\n", "").contains('\n'), "{:?}", e.text);
    assert_eq!(e.config.cameras[2].priority, 3);
}

#[test]
fn atomic_write_replaces_and_keeps_mode() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("vigil-write-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let path = dir.join("vigil.toml");
    fs::write(&path, "old").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
    write_atomic(&path, "new").unwrap();
    assert_eq!(fs::read_to_string(&path).unwrap(), "new");
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o640
    );
    assert!(!temp_path(&path).exists());
    // Through a symbolic link: the target changes, the link stays.
    let link = dir.join("link.toml");
    std::os::unix::fs::symlink(&path, &link).unwrap();
    write_atomic(&link, "newer").unwrap();
    assert!(fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(fs::read_to_string(&path).unwrap(), "newer");
    // A leftover temporary file from a crash is simply reused.
    fs::write(temp_path(&path), "torn garbage that is longer").unwrap();
    write_atomic(&path, "last").unwrap();
    assert_eq!(fs::read_to_string(&path).unwrap(), "last");
    assert!(!temp_path(&path).exists());
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_removed_tables_detached_comments_stay() {
    let e = remove_camera(FILE, base(), "front").unwrap();
    let at = |needle: &str| {
        e.text
            .find(needle)
            .unwrap_or_else(|| panic!("{needle}: {}", e.text))
    };
    assert!(at("pools = 4") < at("# --- cameras ---"));
    assert!(at("# --- cameras ---") < at("[http]"));
    assert!(!e.text.contains("front door"));
    let text = "[storage]\npools = 4\n\n# cams\n\n# last one\n[[camera]]\nname = \"a\"\nurl = \"rtsp://h/\"\n# trailing\n";
    let e = remove_camera(text, base(), "a").unwrap();
    assert_eq!(e.text, "[storage]\npools = 4\n\n# cams\n\n# trailing\n");
}

#[test]
fn dotted_keys_and_inline_tables() {
    // Dotted keys at the top are tables the parser accepts: kept as written.
    let text = "storage.pools = 4 # dotted\nhttp.auth = false\n";
    let e = add_camera(text, base(), &[s("name", "a"), s("url", "rtsp://h/")]).unwrap();
    assert!(e.text.starts_with(text), "{}", e.text);
    assert_eq!((e.config.storage.pools, e.config.http.auth), (4, false));
    let e = change_camera(&e.text, base(), "a", &[set("enabled", false)]).unwrap();
    assert!(e.text.starts_with(text), "{}", e.text);
    assert!(!e.config.cameras[0].enabled);
    // Cameras as an inline array of inline tables are not a valid config:
    // the edit is refused, the file left alone.
    let inline = "camera = [{ name = \"a\", url = \"rtsp://h/\" }]\n";
    assert!(matches!(
        add_camera(inline, base(), &[s("name", "b"), s("url", "rtsp://h/")]),
        Err(EditError::File(_))
    ));
}

#[test]
fn cameras_text_round_trips() {
    let c = parse_str(FILE, base()).unwrap();
    let text = cameras_text(&c.cameras);
    let back = parse_str(&text, base()).unwrap();
    assert_eq!(back.cameras, c.cameras);
    assert_eq!(cameras_text(&[]), "");
}

#[test]
fn a_camera_is_written_with_every_key_of_the_one_list_in_its_order() {
    let cfg = crate::config::parse_str(
        "[[camera]]\nname = \"a\"\nurl = \"rtsp://h/1\"\nsub_url = \"rtsp://h/2\"\n\
         username = \"u\"\npassword = \"p\"\n",
        base(),
    )
    .unwrap();
    let keys: Vec<String> = camera_fields(&cfg.cameras[0])
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(keys, crate::config::CAMERA_KEYS);
}
