//! Organisations joining together (issue 10, defect 2): sixteen `wsis node --federation ID --bootstrap ADDR`
//! processes started together through one bootstrap node all get the genesis and run, and the secretariat
//! admits every one of them through the CLI. Each newcomer asks its bootstrap peer first, and the other
//! newcomers it meets answer "no genesis" at once instead of leaving its request to time out.
//!
//! They start within one second, one every [`SPREAD`], as in the issue: started at the very same instant, every
//! newcomer's first round finds only the bootstrap peer connected, and even the old `fetch_genesis` was quick;
//! spread over a second, the later ones are already connected to earlier newcomers (through Kademlia) when they
//! first ask, and the old code could wait 30 s for each such newcomer's silence (in one of seven runs of the
//! old binary, ten of fourteen newcomers took about 60 s; the others were quick, so this test does not tell the
//! old code from the new by itself: `node/tests/net.rs` holds the immediate answer).
//!
//! The deadline only detects a hang (no assertion is about time); the join times are printed (run with
//! `--nocapture`) so they can be reported.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};
use wsis_testnet::{orgs, Testnet};

/// Newcomers started together.
const NEWCOMERS: usize = 16;
/// Between two newcomers' starts: sixteen within one second.
const SPREAD: Duration = Duration::from_millis(60);
/// Generous: only a hang takes this long.
const DEADLINE: Duration = Duration::from_secs(180);

fn wsis() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_wsis"))
}

/// The newcomers' processes, killed when the test ends however it ends.
struct Newcomers(Vec<Child>);

impl Drop for Newcomers {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn summary(times: &mut [Duration]) -> String {
    times.sort();
    format!(
        "min {:.2} s, median {:.2} s, max {:.2} s",
        times[0].as_secs_f64(),
        times[times.len() / 2].as_secs_f64(),
        times[times.len() - 1].as_secs_f64()
    )
}

#[test]
fn sixteen_newcomers_started_within_a_second_through_one_bootstrap_all_run_and_are_admitted() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut net = Testnet::create(wsis(), tmp.path().join("net"), orgs::demo(NEWCOMERS + 1))
        .expect("data directories");
    // The genesis names only the convening secretariat: every newcomer needs admission.
    let created = Command::new(wsis())
        .arg("--json")
        .arg("--data-dir")
        .arg(&net.nodes[0].dir)
        .args(["federation", "create", "--name", "joining together"])
        .output()
        .expect("wsis runs");
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let created: serde_json::Value = serde_json::from_slice(&created.stdout).expect("JSON");
    net.federation = created["federation"]
        .as_str()
        .expect("a federation id")
        .to_string();
    net.start_node(0).expect("the bootstrap node runs");
    let boot = net.nodes[0].address.clone().expect("its address");

    let started = Instant::now();
    let mut newcomers = Newcomers(Vec::new());
    // Wall-clock start of each newcomer, to compare with the time its node wrote its API address.
    let mut spawned_at = Vec::new();
    for i in 1..=NEWCOMERS {
        let dir = &net.nodes[i].dir;
        let log = std::fs::File::create(dir.join("node.log")).expect("log file");
        let child = Command::new(wsis())
            .arg("node")
            .arg("--data-dir")
            .arg(dir)
            .args(["--api", "127.0.0.1:0", "--listen", "/ip4/127.0.0.1/tcp/0"])
            .args(["--mdns", "false", "--federation", &net.federation])
            .args(["--bootstrap", &boot])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn wsis node");
        spawned_at.push(SystemTime::now());
        newcomers.0.push(child);
        std::thread::sleep(SPREAD);
    }

    // Running: the node writes its API address once it has the genesis and has started; the file's time, less
    // the process's start, is its join time (a file check, so polling sixteen APIs does not blur the figures).
    let mut join_times: Vec<Duration> = Vec::new();
    for (k, spawned) in spawned_at.iter().enumerate() {
        let i = k + 1;
        let file = wsis_node::data_dir::ApiAddrFile::of(&net.nodes[i].dir);
        while !file.exists() {
            if let Ok(Some(status)) = newcomers.0[k].try_wait() {
                let log =
                    std::fs::read_to_string(net.nodes[i].dir.join("node.log")).unwrap_or_default();
                panic!("newcomer {i} exited with {status}: {log}");
            }
            assert!(
                started.elapsed() < DEADLINE,
                "newcomer {i} does not run after {DEADLINE:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let written = std::fs::metadata(file.path())
            .and_then(|m| m.modified())
            .expect("the file's time");
        join_times.push(written.duration_since(*spawned).unwrap_or(Duration::ZERO));
    }
    for i in 1..=NEWCOMERS {
        while net.status_if_answering(i).ok().flatten().is_none() {
            assert!(
                started.elapsed() < DEADLINE,
                "newcomer {i}'s API does not answer"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    // Admitted by the secretariat, once each inception has reached it; each newcomer learns it.
    for i in 1..=NEWCOMERS {
        let org = net.nodes[i].org.clone();
        net.cli_retry(0, &["org", "admit", &org]).expect("admit");
    }
    let mut admitted: Vec<Option<Duration>> = vec![None; NEWCOMERS];
    while admitted.iter().any(Option::is_none) {
        for (k, at) in admitted.iter_mut().enumerate() {
            if at.is_none()
                && net
                    .status_if_answering(k + 1)
                    .ok()
                    .flatten()
                    .is_some_and(|s| s.admitted)
            {
                *at = Some(started.elapsed());
            }
        }
        assert!(
            started.elapsed() < DEADLINE,
            "not every newcomer is admitted after {DEADLINE:?}: {admitted:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let mut admit_times: Vec<Duration> = admitted.into_iter().flatten().collect();
    net.wait_converged(DEADLINE)
        .expect("all seventeen nodes converge");
    println!(
        "{NEWCOMERS} newcomers started within a second: each running (genesis fetched, API up) {} after its start; all admitted {} after the first start",
        summary(&mut join_times),
        summary(&mut admit_times)
    );
    drop(newcomers);
    net.stop_all();
}
