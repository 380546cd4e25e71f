//! Fuzzes the authentication challenge parser: the input split at newlines
//! into `WWW-Authenticate` values, answered with fixed credentials.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil::rtsp::auth::{Authenticator, Credentials};

const PASSWORD: &str = "fuzz-secret-password";

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let values: Vec<&str> = text.split('\n').take(32).collect();
    // Error messages echo the camera's own text (printable ASCII only,
    // scheme names lowercased), so input that spells the password after
    // that filtering is echoed, not leaked: check for leaks otherwise.
    let visible: String = text
        .chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .collect::<String>()
        .to_ascii_lowercase();
    let check_leaks = !text.contains(PASSWORD) && !visible.contains(PASSWORD);
    let mut a = Authenticator::new(Some(Credentials {
        username: "admin".into(),
        password: PASSWORD.into(),
    }));
    for round in 0..3 {
        match a.on_unauthorized(&values) {
            Ok(()) => {
                let h = a
                    .authorization("DESCRIBE", "rtsp://127.0.0.1/stream")
                    .expect("challenged with credentials");
                // The header cannot be used to inject header lines, and
                // never carries the password in clear.
                assert!(!h.contains('\r') && !h.contains('\n'));
                assert!(!check_leaks || !h.contains(PASSWORD));
            }
            Err(e) => {
                assert!(!check_leaks || !format!("{e} {e:?}").contains(PASSWORD));
                if round == 0 {
                    break;
                }
            }
        }
    }
    assert!(!check_leaks || !format!("{a:?}").contains(PASSWORD));
});
