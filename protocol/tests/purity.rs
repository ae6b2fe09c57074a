//! `wsis-protocol` is pure (docs: architecture.md): no async runtime, no networking, no storage engine among its
//! normal dependencies, and no filesystem, sockets or clock in its source. Callers pass bytes and time in.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

const FORBIDDEN_CRATES: [&str; 6] = ["tokio", "libp2p", "sled", "async-std", "mio", "reqwest"];
const FORBIDDEN_SOURCE: [&str; 4] = ["std::fs", "std::net", "SystemTime", "Instant::now"];

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn normal_dependencies_have_no_runtime_network_or_storage_crates() {
    let workspace = crate_dir().join("..");
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "-p",
            "wsis-protocol",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .current_dir(&workspace)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "cargo tree failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A cargo that printed nothing (or something else) must not make this test pass.
    assert!(
        stdout.lines().any(|l| l.starts_with("wsis-protocol ")),
        "cargo tree did not list wsis-protocol:\n{stdout}"
    );
    let bad: Vec<&str> = stdout
        .lines()
        .filter(|l| FORBIDDEN_CRATES.iter().any(|c| l.starts_with(c)))
        .collect();
    assert!(
        bad.is_empty(),
        "wsis-protocol must stay pure, but depends on:\n{}",
        bad.join("\n")
    );
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

#[test]
fn source_uses_no_filesystem_network_or_clock() {
    let src = crate_dir().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(
        files.iter().any(|f| f.ends_with("lib.rs")),
        "no lib.rs under {}",
        src.display()
    );
    let mut found = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            for word in FORBIDDEN_SOURCE {
                if line.contains(word) {
                    found.push(format!(
                        "{}:{}: {word}: {}",
                        file.display(),
                        n + 1,
                        line.trim()
                    ));
                }
            }
        }
    }
    assert!(found.is_empty(), "impure source:\n{}", found.join("\n"));
}
