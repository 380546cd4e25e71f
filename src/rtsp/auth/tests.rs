use super::*;

fn creds(u: &str, p: &str) -> Option<Credentials> {
    Some(Credentials {
        username: u.into(),
        password: p.into(),
    })
}

/// Extracts `name=value` / `name="value"` from our own header.
fn field(header: &str, name: &str) -> Option<String> {
    let c = parse_challenges(&[header]);
    c.first()?.param(name).map(str::to_string)
}

const RFC2617: &str = r#"Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41""#;

#[test]
fn rfc2617_example() {
    let mut a = Authenticator::new(creds("Mufasa", "Circle Of Life"));
    a.set_cnonce("0a4f113b");
    a.on_unauthorized(&[RFC2617]).unwrap();
    let h = a.authorization("GET", "/dir/index.html").unwrap();
    assert!(h.starts_with("Digest "), "{h}");
    assert_eq!(
        field(&h, "response").as_deref(),
        Some("6629fae49393a05397450978507c4ef1")
    );
    assert_eq!(field(&h, "nc").as_deref(), Some("00000001"));
    assert_eq!(field(&h, "qop").as_deref(), Some("auth"));
    assert_eq!(field(&h, "cnonce").as_deref(), Some("0a4f113b"));
    assert_eq!(field(&h, "uri").as_deref(), Some("/dir/index.html"));
    assert_eq!(field(&h, "username").as_deref(), Some("Mufasa"));
    assert_eq!(
        field(&h, "opaque").as_deref(),
        Some("5ccc069c403ebaf9f0171e9517f40e41")
    );
    // The next request counts up.
    let h2 = a.authorization("GET", "/dir/index.html").unwrap();
    assert_eq!(field(&h2, "nc").as_deref(), Some("00000002"));
    assert_ne!(field(&h2, "response"), field(&h, "response"));
}

#[test]
fn rfc2069_without_qop() {
    let mut a = Authenticator::new(creds("Mufasa", "Circle Of Life"));
    a.on_unauthorized(&[
        r#"Digest realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093""#,
    ])
    .unwrap();
    let h = a.authorization("GET", "/dir/index.html").unwrap();
    // MD5(MD5(A1):nonce:MD5(A2)), computed independently (Python hashlib).
    assert_eq!(
        field(&h, "response").as_deref(),
        Some("670fd8c2df070c60b045671b8b24ff02")
    );
    assert_eq!(field(&h, "qop"), None);
    assert_eq!(field(&h, "nc"), None);
    assert_eq!(field(&h, "cnonce"), None);
}

#[test]
fn md5_sess() {
    let mut a = Authenticator::new(creds("Mufasa", "Circle Of Life"));
    a.set_cnonce("0a4f113b");
    a.on_unauthorized(&[r#"Digest realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", qop=auth, algorithm=MD5-sess"#])
        .unwrap();
    let h = a.authorization("GET", "/dir/index.html").unwrap();
    assert_eq!(
        field(&h, "response").as_deref(),
        Some("8e3825c57e897f5a0dec6c2d4e5059d0")
    );
    assert_eq!(field(&h, "algorithm").as_deref(), Some("MD5-sess"));
}

#[test]
fn auth_int_only() {
    let mut a = Authenticator::new(creds("Mufasa", "Circle Of Life"));
    a.set_cnonce("0a4f113b");
    a.on_unauthorized(&[r#"Digest realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", qop="auth-int""#])
        .unwrap();
    let h = a.authorization("GET", "/dir/index.html").unwrap();
    assert_eq!(field(&h, "qop").as_deref(), Some("auth-int"));
    assert_eq!(
        field(&h, "response").as_deref(),
        Some("5e6610ecf9ba3017a4870ad48e3ad30b")
    );
}

#[test]
fn basic() {
    let mut a = Authenticator::new(creds("Aladdin", "open sesame"));
    assert_eq!(a.authorization("DESCRIBE", "rtsp://h/"), None);
    a.on_unauthorized(&[r#"Basic realm="WallyWorld""#]).unwrap();
    assert_eq!(
        a.authorization("DESCRIBE", "rtsp://h/").as_deref(),
        Some("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==")
    );
    assert_eq!(a.scheme_name(), Some("basic"));
    // Challenged again after answering: wrong password.
    assert_eq!(
        a.on_unauthorized(&[r#"Basic realm="WallyWorld""#]),
        Err(AuthError::Rejected)
    );
}

#[test]
fn prefers_digest_over_basic() {
    for challenges in [
        &[r#"Basic realm="x""#, r#"Digest realm="x", nonce="n1""#][..],
        &[r#"Basic realm="x", Digest realm="x", nonce="n1""#][..],
        &[r#"Digest realm="x", nonce="n1", Basic realm="x""#][..],
    ] {
        let mut a = Authenticator::new(creds("u", "p"));
        a.on_unauthorized(challenges).unwrap();
        let h = a.authorization("OPTIONS", "rtsp://h/").unwrap();
        assert!(h.starts_with("Digest "), "{challenges:?}: {h}");
        assert_eq!(field(&h, "nonce").as_deref(), Some("n1"));
    }
}

#[test]
fn sloppy_challenges() {
    let reference = {
        let mut a = Authenticator::new(creds("admin", "12345"));
        a.set_cnonce("c");
        a.on_unauthorized(&[r#"Digest realm="IP Camera", nonce="abc", qop="auth""#])
            .unwrap();
        a.authorization("DESCRIBE", "rtsp://h/").unwrap()
    };
    for ch in [
        // Unquoted values, other order, odd case and spacing.
        r#"DIGEST   Nonce = abc ,QOP=auth,  REALM="IP Camera""#,
        // Unquoted list for qop.
        r#"digest realm="IP Camera", nonce="abc", qop=auth,auth-int"#,
        // Missing commas between quoted values.
        r#"Digest realm="IP Camera" nonce="abc" qop="auth""#,
        // Unquoted value with a space.
        r#"Digest realm=IP Camera, nonce=abc, qop=auth"#,
        // Escaped characters and trailing junk.
        r#"Digest realm="IP \Camera", nonce="abc", qop="auth", ,, "#,
    ] {
        let mut a = Authenticator::new(creds("admin", "12345"));
        a.set_cnonce("c");
        a.on_unauthorized(&[ch]).unwrap();
        let h = a.authorization("DESCRIBE", "rtsp://h/").unwrap();
        assert_eq!(field(&h, "response"), field(&reference, "response"), "{ch}");
    }
}

#[test]
fn challenges_split_across_values() {
    // The same challenge, whether it comes in one header field or split
    // at every comma by the caller: read as one list.
    let whole = r#"Digest realm="r", qop=auth,auth-int, nonce="n", algorithm=MD5, Basic realm="r""#;
    let split = [
        r#"Digest realm="r""#,
        "qop=auth",
        "auth-int",
        r#"nonce="n""#,
        "algorithm=MD5",
        r#"Basic realm="r""#,
    ];
    for values in [&[whole][..], &split[..]] {
        let c = parse_challenges(values);
        assert_eq!(c.len(), 2, "{values:?}");
        assert_eq!(c[0].scheme, "digest");
        assert_eq!(c[0].param("qop"), Some("auth,auth-int"));
        assert_eq!(c[0].param("nonce"), Some("n"));
        assert_eq!(c[0].param("algorithm"), Some("MD5"));
        assert_eq!(c[1].scheme, "basic");
    }
    // An unknown scheme after an unquoted parameter still starts a
    // challenge.
    let c = parse_challenges(&[r#"Digest nonce="n", algorithm=MD5"#, "Negotiate"]);
    assert_eq!(c.len(), 2);
    assert_eq!(c[0].param("algorithm"), Some("MD5"));
}

#[test]
fn no_credentials() {
    let mut a = Authenticator::new(None);
    assert_eq!(
        a.on_unauthorized(&[r#"Digest realm="x", nonce="y""#]),
        Err(AuthError::NoCredentials)
    );
    assert_eq!(a.authorization("DESCRIBE", "rtsp://h/"), None);
}

#[test]
fn unsupported() {
    let mut a = Authenticator::new(creds("u", "p"));
    let e = a
        .on_unauthorized(&[r#"Digest realm="x", nonce="y", algorithm=SHA-256"#])
        .unwrap_err();
    assert!(
        matches!(&e, AuthError::Unsupported(s) if s.contains("SHA-256")),
        "{e:?}"
    );
    // SHA-256 offered first, MD5 second: MD5 is used.
    a.on_unauthorized(&[
        r#"Digest realm="x", nonce="y", algorithm=SHA-256"#,
        r#"Digest realm="x", nonce="y", algorithm=MD5"#,
    ])
    .unwrap();
    let mut b = Authenticator::new(creds("u", "p"));
    assert!(matches!(
        b.on_unauthorized(&["Negotiate abc=="]),
        Err(AuthError::Unsupported(s)) if s == "negotiate"
    ));
    assert!(matches!(
        b.on_unauthorized(&[]),
        Err(AuthError::Unsupported(_))
    ));
    // Digest without a nonce cannot be answered.
    assert!(b.on_unauthorized(&[r#"Digest realm="x""#]).is_err());
}

#[test]
fn rejected_on_same_nonce_after_answer() {
    let ch = r#"Digest realm="x", nonce="n1""#;
    let mut a = Authenticator::new(creds("u", "wrong"));
    a.on_unauthorized(&[ch]).unwrap();
    // Challenged again before we answered: fine.
    a.on_unauthorized(&[ch]).unwrap();
    a.authorization("DESCRIBE", "rtsp://h/").unwrap();
    assert_eq!(a.on_unauthorized(&[ch]), Err(AuthError::Rejected));
}

#[test]
fn stale_or_new_nonce_retries() {
    let mut a = Authenticator::new(creds("u", "p"));
    a.on_unauthorized(&[r#"Digest realm="x", nonce="n1", qop="auth""#])
        .unwrap();
    a.authorization("DESCRIBE", "rtsp://h/").unwrap();
    let h = a.authorization("SETUP", "rtsp://h/t1").unwrap();
    assert_eq!(field(&h, "nc").as_deref(), Some("00000002"));
    // Stale nonce: same nonce value even, but stale=true.
    a.on_unauthorized(&[r#"Digest realm="x", nonce="n1", qop="auth", stale=TRUE"#])
        .unwrap();
    let h = a.authorization("SETUP", "rtsp://h/t1").unwrap();
    assert_eq!(field(&h, "nc").as_deref(), Some("00000001"));
    // New nonce.
    a.on_unauthorized(&[r#"Digest realm="x", nonce="n2", qop="auth""#])
        .unwrap();
    let h = a.authorization("PLAY", "rtsp://h/").unwrap();
    assert_eq!(field(&h, "nonce").as_deref(), Some("n2"));
    assert_eq!(field(&h, "nc").as_deref(), Some("00000001"));
}

#[test]
fn random_cnonces_differ() {
    assert_ne!(new_cnonce(), new_cnonce());
    assert_eq!(new_cnonce().len(), 16);
}

#[test]
fn header_values_are_escaped() {
    let mut a = Authenticator::new(creds("us\"er", "p"));
    a.on_unauthorized(&["Digest realm=\"a\\\"b\", nonce=\"x\r\nInjected: 1\""])
        .unwrap();
    let h = a.authorization("OPTIONS", "rtsp://h/").unwrap();
    assert!(!h.contains('\r') && !h.contains('\n'), "{h}");
    assert_eq!(field(&h, "username").as_deref(), Some("us\"er"));
    assert_eq!(field(&h, "realm").as_deref(), Some("a\"b"));
}

#[test]
fn password_never_shown() {
    let mut a = Authenticator::new(creds("admin", "hunter2-secret"));
    a.on_unauthorized(&[r#"Digest realm="x", nonce="y""#])
        .unwrap();
    a.authorization("DESCRIBE", "rtsp://h/").unwrap();
    let debug = format!("{a:?}");
    assert!(
        debug.contains("admin") && !debug.contains("hunter2"),
        "{debug}"
    );
    let errors = [
        a.on_unauthorized(&[r#"Digest realm="x", nonce="y""#])
            .unwrap_err(),
        AuthError::NoCredentials,
        AuthError::Unsupported("x".into()),
    ];
    for e in errors {
        assert!(!format!("{e} {e:?}").contains("hunter2"));
    }
}
