//! Invariants of ARCHITECTURE.md that a test can check by reading the source.

use std::path::Path;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every `.rs` file under `src/` with its path relative to `src/` and its text.
fn sources() -> Vec<(String, String)> {
    let src = crate::harness::root().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files
        .iter()
        .map(|f| {
            let rel = f.strip_prefix(&src).unwrap().to_string_lossy().to_string();
            (rel, std::fs::read_to_string(f).unwrap())
        })
        .collect()
}

/// Files outside `allowed` prefixes whose text contains any of `needles`.
fn outside(allowed: &[&str], needles: &[&str]) -> Vec<String> {
    sources()
        .into_iter()
        .filter(|(rel, _)| !allowed.iter().any(|a| rel.starts_with(a)))
        .filter(|(_, text)| needles.iter().any(|n| text.contains(n)))
        .map(|(rel, _)| rel)
        .collect()
}

/// Domain modules never import axum: HTTP lives in `src/http/` and `src/server/` (and the
/// binary's `main.rs`, which starts the server).
#[test]
fn only_the_http_layer_imports_axum() {
    let offenders = outside(&["http/", "server/", "main.rs"], &["axum::", "use axum"]);
    assert!(offenders.is_empty(), "axum imported by {offenders:?}");
}

/// OpenAPI schemas live in the HTTP layer (`http/schemas.rs` and the handlers); domain types
/// carry no documentation derives.
#[test]
fn only_the_http_layer_describes_schemas() {
    let offenders = outside(
        &["http/", "openapi.rs", "main.rs"],
        &["ToSchema", "#[schema("],
    );
    assert!(offenders.is_empty(), "schemas declared in {offenders:?}");
}

/// No source file grows past 400 lines: past that, split it by responsibility.
#[test]
fn no_source_file_is_over_400_lines() {
    let long: Vec<(String, usize)> = sources()
        .into_iter()
        .map(|(rel, text)| (rel, text.lines().count()))
        .filter(|(_, n)| *n > 400)
        .collect();
    assert!(long.is_empty(), "over 400 lines: {long:?}");
}
