//! End-to-end smoke test: five real `wsis node` processes run the annual cycle for all 18 teams while one node
//! is killed with SIGKILL and restarted and a malicious member pushes forged and unauthorised data at every node.
//! Every node converges, the Chair's bundle verifies offline, the killed node lost nothing it acknowledged, and
//! every malicious item is rejected on every node, none applied.

use wsis_testnet::scenario::{annual_cycle, Options};
use wsis_testnet::{malicious, orgs, report, Testnet};

#[test]
fn five_nodes_all_teams_a_kill_and_a_malicious_member() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("net");
    let started = std::time::Instant::now();
    let mut net = Testnet::create(
        env!("CARGO_BIN_EXE_wsis").into(),
        root.clone(),
        orgs::demo(5),
    )
    .expect("testnet created");
    net.progress = Box::new(|line| eprintln!("  {line}"));
    net.launch("WSIS smoke test").expect("launched");
    let opts = Options {
        teams: None,
        kill: 1,
        malicious: true,
        ..Default::default()
    };
    let outcome = annual_cycle(&mut net, &opts).expect("the annual cycle");

    let attack = outcome.malicious.as_ref().expect("the malicious node ran");
    let verdict = malicious::check(&net, attack, opts.year).expect("every malicious item rejected");
    eprintln!("{}", verdict.table());
    let run = report::write(
        &net,
        &outcome,
        Some(verdict.clone()),
        started.elapsed(),
        &root,
    )
    .expect("report");
    eprintln!("{}", report::table(&run));

    assert!(run.converged, "every node converged: {run:#?}");
    assert_eq!(run.nodes.len(), 5);
    // `wsis verify` printed its summary only if the bundle verified (the scenario fails otherwise).
    assert!(
        outcome.verified["manifest_sha256"].is_string(),
        "the bundle verifies: {}",
        outcome.verified
    );
    assert_eq!(
        outcome.verified["outputs_submitted"].as_u64(),
        Some(18),
        "every team's output is in the verified bundle: {}",
        outcome.verified
    );
    assert!(
        outcome.malicious_pushed > 0,
        "the malicious node pushed something"
    );
    assert!(attack.unauthorised.len() >= 3, "{attack:#?}");
    assert!(
        attack.unauthorised.iter().all(|u| u.invalid != "VALID"),
        "the protocol itself judged every unauthorised op invalid: {attack:#?}"
    );
    for n in &verdict.nodes {
        assert!(
            n.ops_refused >= 2,
            "{} refused the forged ops: {n:?}",
            n.acronym
        );
        assert_eq!(n.unauthorised_invalid, attack.unauthorised.len(), "{n:?}");
        assert_eq!(n.forged_present, 0, "{n:?}");
    }
    for n in &run.nodes {
        assert!(n.rejected > 0, "{} shows the rejections: {n:?}", n.acronym);
    }
    assert!(
        !outcome.killed.is_empty(),
        "a node was killed and restarted"
    );
    net.stop_all();
}
