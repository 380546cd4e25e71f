//! One direction of data flow: no module of `src/` imports a module listed
//! after it in the layer list of `src/lib.rs`'s doc comment. With
//! `--nocapture` it prints the module graph it read. Test code
//! (`tests.rs`, `testutil.rs`, `*_tests.rs`, `#[cfg(test)] mod` blocks)
//! may reach anywhere.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Layer number of every top-level module, from the numbered list in
/// `src/lib.rs` ("//! 4. `stream`: ...").
fn layers(lib: &str) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for line in lib.lines() {
        let Some(rest) = line.strip_prefix("//! ") else {
            continue;
        };
        let Some((num, text)) = rest.split_once(". ") else {
            continue;
        };
        let Ok(layer) = num.trim().parse::<usize>() else {
            continue;
        };
        // The module names are the backquoted words before the colon.
        let head = text.split(':').next().unwrap_or("");
        for name in head.split('`').skip(1).step_by(2) {
            out.insert(name.to_owned(), layer);
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn is_test_file(path: &Path) -> bool {
    let name = path.file_name().unwrap().to_str().unwrap();
    name == "tests.rs"
        || name == "testutil.rs"
        || name.ends_with("_tests.rs")
        || path.components().any(|c| c.as_os_str() == "tests")
}

/// The file without its inline test modules.
fn without_tests(src: &str) -> String {
    let mut out = String::new();
    let mut lines = src.lines().peekable();
    while let Some(line) = lines.next() {
        let next = lines.peek().map_or("", |l| l.trim_start());
        if line.trim() == "#[cfg(test)]"
            && (next.starts_with("mod ") || next.starts_with("pub(crate) mod "))
        {
            // An inline `mod tests { ... }` runs to the end of the file in
            // this code base; `mod tests;` is a file of its own.
            if next.ends_with('{') {
                break;
            }
            lines.next();
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The top-level modules `crate::x` named in `src`.
fn imports(src: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = src;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            out.push(name);
        }
    }
    out
}

#[test]
fn no_module_imports_a_layer_above_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(root.join("lib.rs")).unwrap();
    let layer = layers(&lib);
    assert!(
        layer.len() >= 10,
        "layer list not found in src/lib.rs: {layer:?}"
    );
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut wrong = Vec::new();
    let mut graph: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
    for path in files {
        let rel = path.strip_prefix(&root).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_str()
            .unwrap();
        let module = top.trim_end_matches(".rs");
        if matches!(module, "lib" | "main" | "portability_tests") || is_test_file(rel) {
            continue;
        }
        let Some(&own) = layer.get(module) else {
            wrong.push(format!(
                "{}: module `{module}` is not in the layer list",
                rel.display()
            ));
            continue;
        };
        let src = std::fs::read_to_string(&path).unwrap();
        for name in imports(&without_tests(&src)) {
            if name != module {
                graph
                    .entry(module.to_owned())
                    .or_default()
                    .insert(name.clone());
            }
            match layer.get(&name) {
                Some(&l) if name != module && l >= own => wrong.push(format!(
                    "{}: `{module}` (layer {own}) imports `{name}` (layer {l})",
                    rel.display()
                )),
                None => wrong.push(format!("{}: imports unlisted `{name}`", rel.display())),
                _ => {}
            }
        }
    }
    // The module graph, for `cargo test --test layering -- --nocapture`.
    for (module, uses) in &graph {
        let uses: Vec<&str> = uses.iter().map(String::as_str).collect();
        println!("{module} -> {}", uses.join(" "));
    }
    wrong.sort();
    wrong.dedup();
    assert!(
        wrong.is_empty(),
        "imports against the layers:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_checker_sees_what_it_must() {
    let lib = "//! 1. `a`, `b`: x.\n//! 2. `c`: y: z.\n";
    let l = layers(lib);
    assert_eq!((l["a"], l["b"], l["c"]), (1, 1, 2));
    let src = "use crate::c::X;\nfn f() { crate::a::g() }\n#[cfg(test)]\nmod tests {\n use crate::z;\n}\n";
    assert_eq!(imports(&without_tests(src)), ["c", "a"]);
    assert!(is_test_file(Path::new("serve/ts/tests.rs")));
    assert!(!is_test_file(Path::new("serve/ts.rs")));
}
