//! Defect 1 of issue 10 from the command line, with real node processes: a procedure whose teams are typed in the
//! order a person types them (and one twice) is signed in canonical form, reaches every peer, and no peer refuses
//! it or anything else; a meeting with an empty title is refused as bad input (exit 2, the decoder's reason) and
//! changes nothing; the secretariat's node restarts and the federation converges again.

use std::path::PathBuf;
use std::time::Duration;
use wsis_testnet::{orgs, CliError, Testnet};

fn wsis() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_wsis"))
}

#[test]
fn teams_typed_out_of_order_are_accepted_by_every_peer_and_an_empty_title_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // ITU (secretariat), UNESCO (secretariat), Kenya (government).
    let mut net = Testnet::create(wsis(), tmp.path().join("run"), orgs::demo(3)).expect("init");
    net.launch("typed as people type").expect("launch");
    let deadline = Duration::from_secs(120);

    let meeting = net
        .cli(
            0,
            &[
                "meeting",
                "convene",
                "--kind",
                "coordinators",
                "--year",
                "2026",
                "--title",
                "Coordinators 2026",
            ],
        )
        .expect("convene");
    let meeting = meeting["op"].as_str().expect("an op id").to_string();
    net.cli(
        0,
        &[
            "motion",
            "propose",
            "--meeting",
            &meeting,
            "--kind",
            "procedure",
            "--year",
            "2026",
            "--expect-team",
            "C7.EGOV",
            "--expect-team",
            "C7.EBUS",
            "--expect-team",
            "C7.EGOV",
        ],
    )
    .expect("propose: the teams are put in order, not refused");
    net.wait_converged(deadline)
        .expect("every peer has the procedure");
    for i in 0..3 {
        let s = net.status(i).expect("status");
        assert_eq!(s.ops_refused, 0, "node {i} refused an op: {s:?}");
        assert_eq!(s.ops_invalid, 0, "node {i}: {s:?}");
    }

    // An empty title: bad input, the decoder's reason, nothing signed.
    let before = net.status(0).expect("status");
    let err = net
        .cli(
            0,
            &[
                "meeting",
                "convene",
                "--kind",
                "coordinators",
                "--year",
                "2026",
                "--title",
                "",
            ],
        )
        .expect_err("refused");
    let refused = err
        .downcast_ref::<CliError>()
        .expect("the command's own failure");
    assert_eq!(refused.code, 2, "bad input: {refused}");
    assert!(
        refused.stderr.contains("a name must not be empty"),
        "{refused}"
    );
    assert_eq!(refused.stderr.trim().lines().count(), 1, "{refused}");
    let after = net.status(0).expect("status");
    assert_eq!(
        (after.ops, after.gov_digest),
        (before.ops, before.gov_digest)
    );

    // The secretariat's node restarts from its data directory and the federation converges.
    net.stop_nodes(&[0]);
    net.start_node(0).expect("restart");
    net.wait_converged(deadline)
        .expect("converged after the restart");
    for i in 0..3 {
        assert_eq!(net.status(i).expect("status").ops_refused, 0);
    }
    net.stop_all();
}
