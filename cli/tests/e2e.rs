//! End to end through the CLI: real `wsis node` processes on loopback, every step of a WSIS year driven by
//! `wsis` commands (the testnet library only sequences them), then the Chair's bundle verified offline, tampered
//! copies refused with the file named, and the report rendered.

use std::path::{Path, PathBuf};
use std::process::Command;
use wsis_testnet::scenario::{annual_cycle, Options};
use wsis_testnet::{orgs, Testnet};

fn wsis() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_wsis"))
}

fn verify(bundle: &Path, federation: &str) -> (i32, String) {
    let out = Command::new(wsis())
        .arg("verify")
        .arg(bundle)
        .arg("--federation")
        .arg(federation)
        .output()
        .expect("wsis runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("readable") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

#[test]
fn a_wsis_year_with_four_organisations_ends_in_a_verified_bundle_and_a_report() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("run");
    let mut net = Testnet::create(wsis(), root.clone(), orgs::demo(4)).expect("data directories");
    net.launch("e2e federation")
        .expect("genesis, nodes, admission");
    let outcome = annual_cycle(
        &mut net,
        &Options {
            teams: Some(3),
            ..Options::default()
        },
    )
    .expect("the annual cycle");

    // Every node holds the same governance and documents.
    net.wait_converged(wsis_testnet::SYNC_DEADLINE)
        .expect("converged");

    // The verifier's summary: three outputs and two national reports (Kenya, Brazil) in the bundle.
    assert_eq!(
        outcome.verified["outputs_submitted"], 3,
        "{}",
        outcome.verified
    );
    assert_eq!(
        outcome.verified["national_reports"], 2,
        "{}",
        outcome.verified
    );
    let (code, stderr) = verify(&outcome.bundle_dir, &net.federation);
    assert_eq!(code, 0, "{stderr}");

    // The live view on another node agrees with the bundle on what was submitted.
    let view = net
        .cli(2, &["stocktake", "view", "--year", "2026"])
        .expect("view");
    assert_eq!(view["summary"]["outputs_submitted"], 3);
    assert_eq!(view["summary"]["records_approved"], 3);
    assert!(view["chair"]["org"]["name"].as_str().is_some(), "{view}");

    // The report names every participating team's coordinator and shows missing teams as missing.
    let html = std::fs::read_to_string(&outcome.report_html).expect("report.html");
    assert!(html.contains("International Telecommunication Union"));
    assert!(html.to_lowercase().contains("missing"));

    // A changed byte in any one file: exit 1, and the message names the file.
    for victim in ["view/stocktake.json", "gov/ops", "manifest.json"] {
        let copy = tmp
            .path()
            .join(format!("tampered-{}", victim.replace('/', "-")));
        std::fs::create_dir_all(&copy).expect("mkdir");
        copy_dir(&outcome.bundle_dir, &copy);
        let path = copy.join(victim);
        let mut bytes = std::fs::read(&path).expect("file");
        let at = bytes.len() / 2;
        bytes[at] ^= 0x01;
        std::fs::write(&path, bytes).expect("write");
        let (code, stderr) = verify(&copy, &net.federation);
        assert_eq!(code, 1, "{victim}: {stderr}");
        assert!(stderr.contains(victim), "{victim} not named: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    }
    // An extra file is refused, and so is the wrong federation.
    let copy = tmp.path().join("extra");
    std::fs::create_dir_all(&copy).expect("mkdir");
    copy_dir(&outcome.bundle_dir, &copy);
    std::fs::write(copy.join("docs/notes.txt"), b"not in the manifest").expect("write");
    let (code, stderr) = verify(&copy, &net.federation);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("docs/notes.txt"), "{stderr}");
    let other = format!("fed_{}", "ab".repeat(32));
    let (code, _) = verify(&outcome.bundle_dir, &other);
    assert_eq!(code, 1);
    net.stop_all();
}
