//! Build script: compresses the web page (`web-min/`) with gzip at build
//! time, so that the binary carries it ready to send and the server does
//! no compression work at run time (`src/serve/web.rs` serves it).
//!
//! Writes `$OUT_DIR/web_assets.rs`: one `Asset` per file, with its bytes,
//! its gzip bytes and an entity tag computed from its content.

use flate2::write::GzEncoder;
use flate2::Compression;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The page's files, with the `Content-Type` each is served with.
const ASSETS: &[(&str, &str)] = &[
    ("index.html", "text/html; charset=utf-8"),
    ("app.css", "text/css; charset=utf-8"),
    ("app.js", "text/javascript; charset=utf-8"),
];

/// FNV-1a, 64 bits: enough to tell versions of a file apart in an ETag.
fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let manifest = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    );
    println!("cargo:rerun-if-changed=build.rs");
    let mut code = String::from("&[\n");
    for (name, content_type) in ASSETS {
        let src = manifest.join("web-min").join(name);
        println!("cargo:rerun-if-changed={}", src.display());
        let raw =
            std::fs::read(&src).unwrap_or_else(|e| panic!("cannot read {}: {e}", src.display()));
        // GzEncoder writes a header with no file name and mtime 0: the same
        // input always gives the same bytes (reproducible builds).
        let mut enc = GzEncoder::new(Vec::new(), Compression::best());
        enc.write_all(&raw).expect("writing to a Vec");
        let gz = enc.finish().expect("writing to a Vec");
        let gz_path = out.join(format!("{name}.gz"));
        std::fs::write(&gz_path, &gz)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", gz_path.display()));
        let _ = writeln!(
            code,
            "    Asset {{ name: {name:?}, content_type: {content_type:?}, \
             raw: include_bytes!({raw_path:?}), gz: include_bytes!({gz_path:?}), \
             tag: \"{tag:016x}\" }},",
            raw_path = path_str(&src),
            gz_path = path_str(&gz_path),
            tag = fnv1a(&raw),
        );
    }
    code.push_str("]\n");
    let dest = out.join("web_assets.rs");
    std::fs::write(&dest, code).unwrap_or_else(|e| panic!("cannot write {}: {e}", dest.display()));
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap_or_else(|| {
        panic!(
            "{} is not UTF-8: include_bytes! needs a UTF-8 path",
            p.display()
        )
    })
}
