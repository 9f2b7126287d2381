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

/// Domain modules never import axum: HTTP lives in `src/http/` and `src/server/` (and the
/// binary's `main.rs`, which starts the server).
#[test]
fn only_the_http_layer_imports_axum() {
    let src = crate::harness::root().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut offenders = Vec::new();
    for f in files {
        let rel = f.strip_prefix(&src).unwrap().to_string_lossy().to_string();
        if rel.starts_with("http/") || rel.starts_with("server/") || rel == "main.rs" {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        if text.contains("axum::") || text.contains("use axum") {
            offenders.push(rel);
        }
    }
    assert!(offenders.is_empty(), "axum imported by {offenders:?}");
}

/// OpenAPI schemas live in the HTTP layer (`http/schemas.rs` and the handlers); domain types
/// carry no documentation derives.
#[test]
fn only_the_http_layer_describes_schemas() {
    let src = crate::harness::root().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut offenders = Vec::new();
    for f in files {
        let rel = f.strip_prefix(&src).unwrap().to_string_lossy().to_string();
        if rel.starts_with("http/") || rel == "openapi.rs" || rel == "main.rs" {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        if text.contains("ToSchema") || text.contains("#[schema(") {
            offenders.push(rel);
        }
    }
    assert!(offenders.is_empty(), "schemas declared in {offenders:?}");
}

/// No source file grows past 400 lines: past that, split it by responsibility.
#[test]
fn no_source_file_is_over_400_lines() {
    let src = crate::harness::root().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let long: Vec<(String, usize)> = files
        .iter()
        .map(|f| {
            let n = std::fs::read_to_string(f).unwrap().lines().count();
            (f.strip_prefix(&src).unwrap().display().to_string(), n)
        })
        .filter(|(_, n)| *n > 400)
        .collect();
    assert!(long.is_empty(), "over 400 lines: {long:?}");
}
