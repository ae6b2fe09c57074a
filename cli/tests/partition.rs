//! The testnet's partition fault with real processes: six `wsis node` processes run the annual cycle (three
//! teams) with the output drafts written in two halves that block each other (`wsis node --block-peer`); the
//! halves must diverge while split and converge after healing, and the rest of the cycle must pass. Also the
//! usage error of a malformed `--block-peer`.

use std::path::PathBuf;
use std::process::Command;
use wsis_testnet::scenario::{self, Options};
use wsis_testnet::{orgs, Testnet, SYNC_DEADLINE};

fn wsis() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_wsis"))
}

#[test]
fn a_malformed_block_peer_is_a_usage_error() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("org");
    let init = Command::new(wsis())
        .args(["--json", "--data-dir"])
        .arg(&dir)
        .args(["init", "--name", "APC", "--stakeholder", "civil-society"])
        .output()
        .expect("runs");
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let out = Command::new(wsis())
        .arg("--data-dir")
        .arg(&dir)
        .args(["node", "--block-peer", "not-a-peer-id"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--block-peer not-a-peer-id"),
        "the error names the flag and value: {stderr}"
    );
}

#[test]
fn six_nodes_split_for_the_drafts_diverge_heal_and_finish_the_cycle() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut net =
        Testnet::create(wsis(), tmp.path().join("net"), orgs::demo(6)).expect("testnet created");
    net.launch("WSIS partition test").expect("launched");
    let outcome = scenario::annual_cycle(
        &mut net,
        &Options {
            teams: Some(3),
            partition: true,
            ..Default::default()
        },
    )
    .expect("the annual cycle passes with a partition");
    // The run's report carries the split.
    let report =
        wsis_testnet::report::write(&net, &outcome, None, std::time::Duration::ZERO, tmp.path())
            .expect("report written");
    let json: serde_json::Value = serde_json::from_slice(
        &std::fs::read(tmp.path().join("report.json")).expect("report.json"),
    )
    .expect("report.json is JSON");
    assert!(report.converged);
    assert!(
        json["partition"]["edits_a"].as_u64().unwrap_or(0) > 0,
        "{json}"
    );
    assert_ne!(
        json["partition"]["docs_digest_a"],
        json["partition"]["docs_digest_b"]
    );
    let p = outcome.partition.expect("the partition ran");
    assert_eq!(p.half_a.len() + p.half_b.len(), 6);
    assert!(p.edits_a > 0 && p.edits_b > 0, "edits on both sides: {p:?}");
    assert!(p.docs_edited_on_both_sides > 0, "{p:?}");
    assert_ne!(p.docs_digest_a, p.docs_digest_b, "the halves diverged");
    assert!(
        outcome.verified["files"].as_u64().unwrap_or(0) > 0,
        "the bundle verifies offline: {}",
        outcome.verified
    );
    net.wait_converged(SYNC_DEADLINE)
        .expect("every node converged at the end");
    // After healing, links cross the former split again.
    let across = net
        .connected_peers(0)
        .expect("status")
        .into_iter()
        .filter(|p| (3..6).any(|j| net.nodes[j].peer_id.as_deref() == Some(p.as_str())))
        .count();
    assert!(across > 0, "node 0 links the former other half again");
    net.stop_all();
}
