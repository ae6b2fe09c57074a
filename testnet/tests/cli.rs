//! The `wsis-testnet` binary's own argument checks: a bad run is refused before any node process starts or any
//! directory is made, with one clear line and the conventional exit code (2 for usage, 1 for refused values).
//!
//! (The annual cycle itself runs in `cli/tests/smoke.rs` and `cli/tests/partition.rs`; `.ci/run` also runs this
//! binary, built by this test target, on the five-node smoke.)

use std::path::Path;
use std::process::{Command, Output};

fn testnet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wsis-testnet"))
        .args(args)
        .output()
        .expect("the wsis-testnet binary runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn refused_runs_name_the_reason_and_create_nothing() {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let cases: [(&[&str], &str); 3] = [
        (&["--nodes", "1"], "--nodes must be at least 2"),
        (
            &["--nodes", "3", "--kill", "3"],
            "--kill must be smaller than --nodes",
        ),
        (
            &["--nodes", "4", "--teams", "0"],
            "--teams must be between 1 and 18",
        ),
    ];
    for (extra, expected) in cases {
        let out_dir = tmp.path().join("run");
        let out_arg = out_dir.to_string_lossy().into_owned();
        let mut args = vec!["run", "--out", out_arg.as_str()];
        args.extend_from_slice(extra);
        let out = testnet(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains(expected), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(
            !Path::new(&out_dir).exists(),
            "{args:?} created {out_dir:?}"
        );
    }
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["run"][..],
        &["run", "--out", "x", "--scenario", "no-such-scenario"],
        &["run", "--out", "x", "--nodes", "many"],
        &["fly"],
    ] {
        let out = testnet(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("error:"), "{args:?}");
    }
}

#[test]
fn help_names_both_commands() {
    let out = testnet(&["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("demo") && text.contains("run"), "{text}");
}
