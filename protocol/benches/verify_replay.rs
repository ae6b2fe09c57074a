//! Verification and replay throughput of 100,000 signed governance ops, against `ed25519_dalek::verify_batch`
//! measured on the same signatures in the same run. Prints ops/s and ratios; asserts nothing about speed.
//!
//! `cargo bench -p wsis-protocol --bench verify_replay` (set `WSIS_BENCH_OPS` and `WSIS_BENCH_RUNS` to change the
//! size and the number of repetitions; each figure is reported as min / median / max over the runs).

mod common;

use common::{env, stats};
use ed25519_dalek::{Signature, VerifyingKey};
use std::time::Instant;
use wsis_protocol::crypto::Domain;
use wsis_protocol::fixture::World;
use wsis_protocol::gov::{verify_all, Governance, VerifiedOp};
use wsis_protocol::op::SignedOp;

/// A busy federation: 50 organisations joining and leaving teams, attending meetings, approving records.
fn build(n_ops: usize) -> World {
    let mut w = World::wsis();
    let orgs = common::admitted_orgs(&mut w);
    common::add_statements(&mut w, &orgs, n_ops + 1);
    w.log.truncate(n_ops + 1);
    w
}

fn show(name: &str, v: &[f64]) -> f64 {
    let (min, med, max) = stats(v.to_vec());
    println!("{name:<58} {med:>12.0} ops/s   (min {min:.0}, max {max:.0})");
    med
}

fn main() {
    let n = env("WSIS_BENCH_OPS", 100_000);
    let runs = env("WSIS_BENCH_RUNS", 5);
    let t = Instant::now();
    let w = build(n);
    let genesis = w.log[0].clone();
    let ops: Vec<SignedOp> = w.log[1..].to_vec();
    let bytes: Vec<Vec<u8>> = ops.iter().map(|o| o.bytes().to_vec()).collect();
    println!(
        "built {} ops by {} organisations in {:.1} s; {} valid",
        ops.len(),
        w.orgs.len(),
        t.elapsed().as_secs_f64(),
        ops.iter()
            .filter(|o| w.gov.validity(&o.id()) == Some(Ok(())))
            .count()
    );
    // The same signatures for dalek's batch verification: the exact preimages our ops sign.
    let preimages: Vec<Vec<u8>> = ops
        .iter()
        .map(|o| Domain::GovernanceOp.preimage(o.body_bytes()))
        .collect();
    let sigs: Vec<Signature> = ops
        .iter()
        .map(|o| Signature::from_bytes(o.signature()))
        .collect();
    let keys: Vec<VerifyingKey> = ops
        .iter()
        .map(|o| VerifyingKey::from_bytes(o.body().key.as_bytes()).expect("valid keys"))
        .collect();
    let verified: Vec<VerifiedOp> = ops
        .iter()
        .cloned()
        .map(|o| o.verify().expect("valid"))
        .collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());

    let (mut batch, mut batch256, mut single, mut parallel, mut replay, mut full) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for _ in 0..runs {
        let msgs: Vec<&[u8]> = preimages.iter().map(|p| p.as_slice()).collect();
        let t = Instant::now();
        ed25519_dalek::verify_batch(&msgs, &sigs, &keys).expect("batch verifies");
        batch.push(n as f64 / t.elapsed().as_secs_f64());

        let t = Instant::now();
        for ((m, s), k) in msgs.chunks(256).zip(sigs.chunks(256)).zip(keys.chunks(256)) {
            ed25519_dalek::verify_batch(m, s, k).expect("batch verifies");
        }
        batch256.push(n as f64 / t.elapsed().as_secs_f64());

        // Our verification: strict decode + verify_strict of the exact bytes, one thread.
        let t = Instant::now();
        for b in &bytes {
            let op = SignedOp::decode(b).expect("decodes");
            op.verify_signature().expect("verifies");
        }
        single.push(n as f64 / t.elapsed().as_secs_f64());

        let decoded: Vec<SignedOp> = bytes
            .iter()
            .map(|b| SignedOp::decode(b).expect("decodes"))
            .collect();
        let t = Instant::now();
        let out = verify_all(decoded, threads);
        assert!(out.iter().all(|r| r.is_ok()));
        parallel.push(n as f64 / t.elapsed().as_secs_f64());

        // Replay without signature checks (ops already verified), in topological order.
        let mut g = Governance::new(genesis.clone().verify().expect("valid")).expect("genesis");
        let input = verified.clone();
        let t = Instant::now();
        for op in input {
            g.insert(op).expect("inserts");
        }
        replay.push(n as f64 / t.elapsed().as_secs_f64());
        assert_eq!(
            g.digest(),
            w.gov.digest(),
            "the replay reproduces the state"
        );

        // Everything a node does with bytes from a peer: decode, verify, replay.
        let mut g = Governance::new(genesis.clone().verify().expect("valid")).expect("genesis");
        let t = Instant::now();
        for b in &bytes {
            g.insert_bytes(b).expect("inserts");
        }
        full.push(n as f64 / t.elapsed().as_secs_f64());
    }
    println!(
        "\n{n} signed governance ops, {runs} runs, {threads} threads available; median (min, max):"
    );
    let b = show("ed25519_dalek::verify_batch, one batch of all", &batch);
    let b256 = show("ed25519_dalek::verify_batch, batches of 256", &batch256);
    let base = b.max(b256);
    let s = show("wsis decode + verify_strict, 1 thread", &single);
    let p = show(
        &format!("wsis decode + verify_strict, verify_all on {threads} threads"),
        &parallel,
    );
    let r = show("wsis replay (verified ops, no signature checks)", &replay);
    let f = show("wsis decode + verify + replay, 1 thread", &full);
    println!("\nratios against the faster batch figure ({base:.0} ops/s):");
    println!(
        "  verification, 1 thread:        {:.2}  (target >= 0.70)",
        s / base
    );
    println!(
        "  verification, {threads} threads:       {:.2}  (target >= 0.70)",
        p / base
    );
    println!(
        "  replay without signatures:     {:.0} ops/s  (target >= 200000): {:.2}x the target",
        r,
        r / 200_000.0
    );
    println!("  full pipeline / batch:         {:.2}", f / base);
}
