//! Bad input to the commands: a one-line error, the right exit code (2 usage, 1 refused or failed), and nothing
//! changed on the node.

use std::path::{Path, PathBuf};
use std::process::Command;
use wsis_testnet::{orgs, Testnet};

fn wsis() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_wsis"))
}

fn run(dir: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(wsis())
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .output()
        .expect("wsis runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn state(net: &Testnet, i: usize) -> (usize, String) {
    let s = net.status(i).expect("status");
    (s.ops, s.gov_digest)
}

#[test]
fn bad_input_gives_one_clear_line_and_changes_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // ITU (secretariat), UNESCO (secretariat), Kenya (government).
    let mut net = Testnet::create(wsis(), tmp.path().join("run"), orgs::demo(3)).expect("init");
    net.launch("bad input federation").expect("launch");
    let itu = net.nodes[0].dir.clone();
    let kenya = net.nodes[2].dir.clone();
    let before = [state(&net, 0), state(&net, 2)];

    let org = net.nodes[2].org.clone();
    let zero_op = format!("op_{}", "0".repeat(64));
    let zero_doc = format!("doc_{}", "0".repeat(64));
    let cases: Vec<(&Path, Vec<&str>, i32, &str)> = vec![
        // Unknown team.
        (&kenya, vec!["team", "join", "C99"], 1, "unknown team"),
        (
            &kenya,
            vec!["output", "draft", "--team", "C99", "--year", "2026"],
            1,
            "unknown team",
        ),
        // Wrong role: a government admitting, convening a coordinators' meeting, nominating, submitting.
        (&kenya, vec!["org", "admit", &org], 1, "secretariat"),
        (
            &kenya,
            vec![
                "meeting",
                "convene",
                "--kind",
                "coordinators",
                "--year",
                "2026",
                "--title",
                "x",
            ],
            1,
            "secretariat",
        ),
        (
            &kenya,
            vec![
                "meeting", "convene", "--kind", "team", "--team", "C1", "--year", "2026",
                "--title", "x",
            ],
            1,
            "coordinator",
        ),
        (
            &itu,
            vec!["national-report", "draft", "--year", "2026"],
            1,
            "government",
        ),
        // Malformed ids.
        (
            &kenya,
            vec!["meeting", "attend", "op_zz"],
            2,
            "not a meeting id",
        ),
        (
            &kenya,
            vec!["org", "admit", "org_123"],
            2,
            "not an organisation id",
        ),
        (
            &kenya,
            vec!["output", "submit", "doc_../../etc"],
            2,
            "not a valid id",
        ),
        (
            &kenya,
            vec!["motion", "vote", &zero_op, "--yes"],
            1,
            "no motion",
        ),
        // Usage errors.
        (
            &kenya,
            vec!["output", "edit", &zero_doc],
            2,
            "say what to change",
        ),
        (
            &kenya,
            vec!["motion", "propose", "--meeting", "m", "--kind", "impeach"],
            2,
            "unknown motion kind",
        ),
        (&kenya, vec!["frobnicate"], 2, "unrecognized subcommand"),
    ];
    for (dir, args, code, needle) in &cases {
        let (got, stderr) = run(dir, args);
        assert_eq!(got, *code, "{args:?}: {stderr}");
        assert!(
            stderr.to_lowercase().contains(&needle.to_lowercase()),
            "{args:?}: expected `{needle}` in: {stderr}"
        );
        if *code == 1 {
            assert_eq!(
                stderr.trim().lines().count(),
                1,
                "{args:?}: one line: {stderr}"
            );
        }
    }
    // Nothing changed anywhere.
    assert_eq!([state(&net, 0), state(&net, 2)], before);

    // No node running: a clear error naming the remedy.
    let (_, kenya_dir) = (0, kenya.clone());
    net.stop_all();
    let (code, stderr) = run(&kenya_dir, &["team", "list"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("is `wsis node` running"), "{stderr}");
    // No data directory at all: usage.
    let out = Command::new(wsis())
        .args(["team", "list"])
        .env_remove("WSIS_DATA_DIR")
        .env_remove("WSIS_API")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    // An unknown stakeholder type at init.
    let (code, stderr) = run(
        &tmp.path().join("new"),
        &["init", "--name", "X", "--stakeholder", "alien"],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        !tmp.path().join("new").exists(),
        "init refused, nothing written"
    );
}
