//! `wsis store check [--quarantine]` with real processes: a node whose store holds the procedure op with its
//! teams in typed order (issue 10, defect 1) refuses to start and names the command; the check lists the op
//! (tree, key, reason) and exits 1; the quarantine moves it and nothing else; the node starts again and a peer
//! receives its later ops; the quarantined bytes are still there afterwards.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use wsis_node::data_dir::DataDir;
use wsis_node::store::{quarantined_bytes, Store};
use wsis_protocol::envelope::SignedEnvelope;
use wsis_protocol::ids::{EnvelopeId, OpId};
use wsis_protocol::op::{MotionKind, OpBody, OpKind, Procedure, SignedOp, TeamCode};
use wsis_testnet::{orgs, Testnet};

const DEADLINE: Duration = Duration::from_secs(120);

fn wsis() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_wsis"))
}

/// `wsis [--json] --data-dir DIR ARGS`: exit code, stdout, stderr.
fn run(dir: &Path, json: bool, args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(wsis());
    if json {
        cmd.arg("--json");
    }
    let out = cmd
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .output()
        .expect("wsis runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn stored(db: &Path) -> (HashSet<OpId>, HashSet<EnvelopeId>) {
    let store = Store::open(db).expect("open the stopped node's store");
    let ops = store.load_ops().expect("ops load");
    let envs = store.load_envelopes().expect("envelopes load");
    (
        ops.iter().map(SignedOp::id).collect(),
        envs.iter().map(SignedEnvelope::id).collect(),
    )
}

#[test]
fn a_store_holding_an_unsorted_procedure_op_is_quarantined_starts_and_syncs() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // ITU and UNESCO, both secretariat organisations (no admission to wait for).
    let mut net = Testnet::create(wsis(), tmp.path().join("run"), orgs::demo(2)).expect("init");
    net.launch("store check federation").expect("launch");
    let itu = net.nodes[0].dir.clone();
    // Something of every kind in the store: ops and a document's envelopes.
    let meeting = net
        .cli_retry(
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
    let meeting = meeting["op"].as_str().expect("op id").to_string();
    net.cli_retry(0, &["meeting", "minutes", &meeting, "Opened by ITU."])
        .expect("minutes");
    net.wait_converged(DEADLINE).expect("converged");
    net.stop_nodes(&[0]);

    // The op as ITU's node signed it before issue 10: teams in the order typed, signed with ITU's key.
    let db = itu.join("db");
    let (ops_before, envs_before) = stored(&db);
    assert!(!envs_before.is_empty());
    let data = DataDir::open(&itu).expect("data dir");
    let bad = {
        let store = Store::open(&db).expect("open");
        let mine: Vec<SignedOp> = store
            .load_ops()
            .expect("ops")
            .into_iter()
            .filter(|o| o.author() == data.org_id())
            .collect();
        let last = mine.iter().max_by_key(|o| o.seq()).expect("ITU's ops");
        let team = |c: &str| TeamCode::new(c).expect("team code");
        let bad = OpBody {
            federation: data.federation(),
            author: data.org_id(),
            key: data.org_key().public(),
            seq: last.seq() + 1,
            parents: vec![last.id()],
            timestamp_ms: 1_800_000_000_000,
            kind: OpKind::Motion {
                meeting: meeting.parse().expect("op id"),
                motion: MotionKind::AdoptProcedure(Procedure {
                    year: 2026,
                    teams: vec![team("C7.EGOV"), team("C7.EBUS")],
                    deadline_ms: 0,
                    required_sections: vec![],
                    national_reports: false,
                }),
            },
        }
        .sign(data.org_key());
        store
            .put_op_blocking(&bad)
            .expect("stored as the old local path did");
        bad
    };
    let bad_id = bad.id().to_string();

    // The node refuses to start, and says what to run.
    assert!(net.start_node(0).is_err(), "a damaged store must not start");
    let log = std::fs::read_to_string(itu.join("node.log")).expect("node.log");
    for needle in [
        "store holds an item that fails validation",
        "tree ops",
        bad_id.as_str(),
        "procedure teams must be sorted and unique",
        "store check --quarantine",
    ] {
        assert!(log.contains(needle), "`{needle}` not in the log:\n{log}");
    }

    // `store check` lists it and exits 1, in text and in JSON.
    let (code, out, err) = run(&itu, false, &["store", "check"]);
    eprintln!("wsis store check:\n{out}{err}");
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(out.contains("tree ops"), "{out}");
    assert!(out.contains(&bad_id), "{out}");
    assert!(
        out.contains("procedure teams must be sorted and unique"),
        "{out}"
    );
    assert!(err.contains("--quarantine"), "{err}");
    let (code, out, _) = run(&itu, true, &["store", "check"]);
    assert_eq!(code, 1);
    let report: serde_json::Value = serde_json::from_str(&out).expect("json");
    let findings = report["findings"].as_array().expect("findings");
    assert_eq!(findings.len(), 1, "{out}");
    assert_eq!(findings[0]["tree"], "ops");
    assert_eq!(findings[0]["key"], bad_id.as_str());

    // Quarantine: exit 0, the op moved, nothing else touched.
    let (code, out, err) = run(&itu, false, &["store", "check", "--quarantine"]);
    eprintln!("wsis store check --quarantine:\n{out}{err}");
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("moved 1 item"), "{out}");
    let (code, out, _) = run(&itu, true, &["store", "check"]);
    assert_eq!(code, 0, "{out}");
    let report: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(report["findings"].as_array().map(Vec::len), Some(0));
    let quarantined = report["quarantined"].as_array().expect("quarantined");
    assert_eq!(quarantined.len(), 1);
    assert_eq!(quarantined[0]["key"], bad_id.as_str());
    assert!(quarantined[0]["quarantined_at_ms"].as_u64().unwrap_or(0) > 0);
    assert_eq!(stored(&db), (ops_before.clone(), envs_before.clone()));

    // The node starts; UNESCO, restarted to bootstrap from ITU's new address, receives ITU's later op.
    net.start_node(0).expect("starts once quarantined");
    net.stop_nodes(&[1]);
    net.start_node(1).expect("UNESCO starts");
    let later = net
        .cli_retry(
            0,
            &[
                "meeting",
                "convene",
                "--kind",
                "coordinators",
                "--year",
                "2027",
                "--title",
                "Coordinators 2027",
            ],
        )
        .expect("a later op");
    let later = later["op"].as_str().expect("op id").to_string();
    let start = Instant::now();
    while net.cli(1, &["op", "show", &later]).is_err() {
        assert!(start.elapsed() < DEADLINE, "UNESCO never received {later}");
        std::thread::sleep(Duration::from_millis(200));
    }
    net.wait_converged(DEADLINE)
        .expect("converged after the quarantine");
    net.stop_all();

    // Nothing was lost, and the quarantined op is still there byte for byte.
    let (ops_after, envs_after) = stored(&db);
    assert!(ops_after.is_superset(&ops_before));
    assert!(envs_after.is_superset(&envs_before));
    assert!(!ops_after.contains(&bad.id()));
    assert_eq!(
        quarantined_bytes(&db, "ops", &bad.id().0).expect("quarantine"),
        vec![bad.bytes().to_vec()]
    );
    let (code, out, _) = run(&itu, false, &["store", "check"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("quarantined"), "{out}");
}
