//! Durable write rate of the store (group commit, many concurrent writers awaiting their acknowledgement) against
//! sled's own unflushed insert rate, with the same ops, in the same run.
//!
//! ```text
//! cargo bench -p wsis-node --bench store
//! WSIS_BENCH_OPS=50000 WSIS_BENCH_WRITERS=512 cargo bench -p wsis-node --bench store
//! ```
//!
//! The unflushed rate is what sled does when nothing waits for the disk: an upper bound for a store that
//! acknowledges only flushed writes. The ratio says what durability costs once group commit amortises the fsyncs;
//! the target is at least 60 %. Prints numbers only: timing is never asserted.

use std::sync::Arc;
use std::time::Instant;
use wsis_node::store::Store;
use wsis_protocol::crypto::SecretKey;
use wsis_protocol::ids::{FederationId, OpId, OrgId};
use wsis_protocol::op::{OpBody, OpKind, SignedOp, TeamCode};

const RUNS: usize = 5;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn ops(n: usize) -> Vec<SignedOp> {
    let secret = SecretKey::from_seed(&[1; 32]);
    let team = TeamCode::new("C7.EHEALTH").expect("valid team code");
    (1..=n as u64)
        .map(|seq| {
            OpBody {
                federation: Some(FederationId([9; 32])),
                author: OrgId([1; 32]),
                key: secret.public(),
                seq,
                parents: vec![OpId([2; 32]), OpId([3; 32])],
                timestamp_ms: 1_700_000_000_000 + seq,
                kind: OpKind::JoinTeam { team: team.clone() },
            }
            .sign(&secret)
        })
        .collect()
}

/// sled alone: insert every op into a tree, never flush. Same sled configuration as the store.
fn unflushed(ops: &[SignedOp]) -> f64 {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = sled::Config::new()
        .path(dir.path())
        .flush_every_ms(None)
        .open()
        .expect("sled");
    let tree = db.open_tree("ops").expect("tree");
    let start = Instant::now();
    for op in ops {
        tree.insert(op.id().0, op.bytes()).expect("insert");
    }
    let secs = start.elapsed().as_secs_f64();
    ops.len() as f64 / secs
}

/// The store: `writers` tasks each putting its share of the ops and awaiting every acknowledgement (durable).
fn durable(rt: &tokio::runtime::Runtime, ops: &Arc<Vec<SignedOp>>, writers: usize) -> f64 {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("store");
    let start = Instant::now();
    rt.block_on(async {
        let mut tasks = Vec::with_capacity(writers);
        for w in 0..writers {
            let (store, ops) = (store.clone(), Arc::clone(ops));
            tasks.push(tokio::spawn(async move {
                for op in ops.iter().skip(w).step_by(writers) {
                    store.put_op(op).await.expect("put");
                }
            }));
        }
        for t in tasks {
            t.await.expect("writer task");
        }
    });
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(store.op_count(), ops.len(), "every op stored");
    ops.len() as f64 / secs
}

fn stats(mut xs: Vec<f64>) -> (f64, f64, f64) {
    xs.sort_by(f64::total_cmp);
    (xs[0], xs[xs.len() / 2], xs[xs.len() - 1])
}

fn main() {
    let n = env_or("WSIS_BENCH_OPS", 20_000);
    let writers = env_or("WSIS_BENCH_WRITERS", 256);
    let ops = Arc::new(ops(n));
    let size = ops.iter().map(|o| o.bytes().len()).sum::<usize>() / n;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!("store bench: {n} ops of ~{size} bytes, {writers} concurrent writers, {RUNS} runs");
    let (mut raw, mut safe, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for run in 1..=RUNS {
        let r = unflushed(&ops);
        let d = durable(&rt, &ops, writers);
        println!(
            "  run {run}: sled unflushed {r:>10.0} ops/s   store durable {d:>10.0} ops/s   ratio {:>5.1} %",
            100.0 * d / r
        );
        raw.push(r);
        safe.push(d);
        ratios.push(100.0 * d / r);
    }
    for (name, xs, unit) in [
        ("sled unflushed", raw, "ops/s"),
        ("store durable ", safe, "ops/s"),
        ("ratio         ", ratios, "%"),
    ] {
        let (min, median, max) = stats(xs);
        println!("  {name}  min {min:>10.1}  median {median:>10.1}  max {max:>10.1}  {unit}");
    }
}
