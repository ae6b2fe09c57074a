//! `wsis verify` reads a bundle within the protocol's limits while it reads: too many files, a file or a bundle
//! too large, and a FIFO are refused by name before anything is read. The real binary runs under an address-space
//! limit (`prlimit --as`, util-linux) far below the sizes involved, so reading a refused file would fail; a control
//! case shows that it does.
#![cfg(target_os = "linux")]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use wsis_protocol::limits::{MAX_BUNDLE_BYTES, MAX_BUNDLE_FILES, MAX_BUNDLE_FILE_BYTES};

/// The address space `wsis verify` runs in: enough for the binary (it runs in 64 MiB), far below every file below.
const ADDRESS_SPACE: u64 = 192 * 1024 * 1024;
/// Larger than `ADDRESS_SPACE`, within `MAX_BUNDLE_FILE_BYTES`: a file of this size cannot be read under the limit.
const UNREADABLE: u64 = 300 * 1024 * 1024;

fn federation() -> String {
    format!("fed_{}", "0".repeat(64))
}

/// A sparse file of `len` bytes (costs no disk).
fn sparse(path: &Path, len: u64) {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).expect("dir");
    }
    File::create(path)
        .and_then(|f| f.set_len(len))
        .expect("sparse file");
}

/// Runs `wsis verify <dir>`, under the address-space limit if `limited`; (exit code, or None if killed by a
/// signal; stderr). A generous deadline only detects a hang.
fn verify(dir: &Path, limited: bool) -> (Option<i32>, String) {
    let wsis = PathBuf::from(env!("CARGO_BIN_EXE_wsis"));
    let mut cmd = if limited {
        let mut c = Command::new("prlimit");
        c.arg(format!("--as={ADDRESS_SPACE}")).arg("--").arg(wsis);
        c
    } else {
        Command::new(wsis)
    };
    let mut child = cmd
        .arg("verify")
        .arg(dir)
        .arg("--federation")
        .arg(federation())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("wsis (and prlimit, from util-linux) run");
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("wsis verify {} hung", dir.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
    }
    (status.code(), stderr)
}

fn bundle_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("manifest.json"), b"{}").expect("manifest");
    dir
}

/// Without the order of the checks, none of the refusals below would say anything: a file larger than the
/// address space cannot be read there (the reader says so, it does not crash).
#[test]
fn under_the_address_space_limit_a_file_within_the_protocols_limit_cannot_be_read() {
    let dir = bundle_dir();
    sparse(&dir.path().join("gov/ops"), UNREADABLE);
    let (code, stderr) = verify(dir.path(), true);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("gov/ops: cannot allocate {UNREADABLE} bytes")),
        "{stderr}"
    );
}

#[test]
fn a_file_past_the_protocols_limit_is_refused_by_name_without_being_read() {
    let dir = bundle_dir();
    let len = 600_000_000;
    assert!(len > MAX_BUNDLE_FILE_BYTES as u64);
    sparse(&dir.path().join("gov/ops"), len);
    let (code, stderr) = verify(dir.path(), true);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "invalid bundle: gov/ops: {len} bytes, a bundle file holds at most {MAX_BUNDLE_FILE_BYTES} \
             (MAX_BUNDLE_FILE_BYTES)"
        )),
        "{stderr}"
    );
}

#[test]
fn a_bundle_past_the_protocols_total_is_refused_before_its_files_are_read() {
    let dir = bundle_dir();
    // Five files, each within the per-file limit and the address space, together past MAX_BUNDLE_BYTES.
    let each = MAX_BUNDLE_FILE_BYTES as u64 - 1;
    let n = MAX_BUNDLE_BYTES / each + 1;
    for i in 0..n {
        sparse(&dir.path().join(format!("docs/f{i}.automerge")), each);
    }
    let (code, stderr) = verify(dir.path(), true);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "with it the bundle exceeds {MAX_BUNDLE_BYTES} bytes (MAX_BUNDLE_BYTES)"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("invalid bundle: docs/f"), "{stderr}");
}

#[test]
fn too_many_files_are_refused_before_any_is_read() {
    let dir = bundle_dir();
    // One file that cannot be read under the limit, and more files than the protocol allows in all.
    sparse(&dir.path().join("gov/ops"), UNREADABLE);
    let docs = dir.path().join("docs");
    std::fs::create_dir_all(&docs).expect("docs");
    for i in 0..MAX_BUNDLE_FILES {
        File::create(docs.join(format!("d{i}.json"))).expect("file");
    }
    let (code, stderr) = verify(dir.path(), true);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "invalid bundle: more than {MAX_BUNDLE_FILES} files (MAX_BUNDLE_FILES); refused before reading any"
        )),
        "{stderr}"
    );
}

/// Opening a FIFO for reading blocks until a writer comes; the verifier refuses it by name instead.
#[test]
fn a_fifo_is_refused_by_name_without_blocking() {
    let dir = bundle_dir();
    std::fs::create_dir_all(dir.path().join("gov")).expect("gov");
    let fifo = dir.path().join("gov/ops");
    let made = Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(made.success());
    let (code, stderr) = verify(dir.path(), false);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("invalid bundle: gov/ops: not a regular file or directory"),
        "{stderr}"
    );
}
