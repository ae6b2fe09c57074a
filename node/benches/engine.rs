//! Throughput of the document engine's acceptance pipeline, in one process, against Automerge's own
//! `apply_changes` on the same changes, measured in the same run. `WSIS_BENCH_CHANGES` one-character text edits
//! (default 20 000) are published in envelopes of 100 and of 1 000 changes; for each envelope size it prints the
//! time and changes/s of: local edit + publish; raw `apply_changes` in one call and once per envelope (the
//! ceilings); stage-1 + stage-2 verification alone; the engine after verification; the full pipeline with
//! `receive` per envelope, with the sled store as sink, and with `receive_batch`; and the ratios of the pipeline
//! paths to the raw per-envelope apply. Prints numbers only: timing is never asserted.
//!
//! ```text
//! cargo bench -p wsis-node --bench engine
//! ```

use automerge::transaction::Transactable;
use automerge::{Automerge, Change, ObjType, ROOT};
use std::time::{Duration, Instant};
use wsis_node::engine::{DocumentEngine, MemorySink, Peer, ReceiveError, Received};
use wsis_protocol::crypto::SecretKey;
use wsis_protocol::envelope::SignedEnvelope;
use wsis_protocol::fixture::World;
use wsis_protocol::ids::DocId;
use wsis_protocol::op::{DocKind, OpKind};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn secret(w: &World, org: usize) -> SecretKey {
    w.secret_of(org)
}

fn engine(w: &World, org: usize) -> DocumentEngine {
    DocumentEngine::new(
        w.federation,
        w.id(org),
        secret(w, org),
        MemorySink::default(),
    )
}

fn accepted(r: Result<Received, ReceiveError>) {
    match r {
        Ok(Received::Accepted(_)) => {}
        other => panic!("expected acceptance, got {other:?}"),
    }
}

fn main() {
    // APC and Acme are members of team C2, which has an output draft.
    let mut w = World::wsis();
    let apc = w.add_org("APC", "civil-society", None);
    let acme = w.add_org("Acme", "private-sector", None);
    for o in [apc, acme] {
        w.admit(o);
        w.op(o, OpKind::JoinTeam { team: w.team("C2") });
    }
    let kind = DocKind::OutputDraft {
        team: w.team("C2"),
        year: 2026,
    };
    let doc = DocId(w.op(apc, OpKind::CreateDoc { kind }).id().0);
    let gov = &w.gov;
    let n = env_or("WSIS_BENCH_CHANGES", 20_000);
    let peer = Peer::new(&[1; 38]);
    println!("engine pipeline: {n} one-character text edits by one author, one document");

    for batch in [100usize, 1000] {
        let mut a = engine(&w, apc);
        let text = a
            .edit(&doc, |tx| tx.put_object(ROOT, "text", ObjType::Text))
            .expect("edit");
        let t = Instant::now();
        let mut envs = Vec::new();
        for i in 0..n {
            a.edit(&doc, |tx| tx.splice_text(&text, i, 0, "x"))
                .expect("edit");
            if (i + 1) % batch == 0 {
                envs.extend(a.publish(gov, &doc).expect("publish"));
            }
        }
        envs.extend(a.publish(gov, &doc).expect("publish"));
        let local = t.elapsed();
        let changes: Vec<Change> = envs.iter().flat_map(|e| e.changes().to_vec()).collect();
        let total = changes.len();

        let t = Instant::now();
        let mut raw = Automerge::new();
        raw.apply_changes(changes).expect("apply");
        let raw_all = t.elapsed();

        let t = Instant::now();
        let mut raw2 = Automerge::new();
        for e in &envs {
            raw2.apply_changes(e.changes().to_vec()).expect("apply");
        }
        let raw_per_envelope = t.elapsed();

        let t = Instant::now();
        let verified: Vec<SignedEnvelope> = envs
            .iter()
            .map(|e| SignedEnvelope::from_bytes(e.bytes(), w.federation).expect("verifies"))
            .collect();
        let verify = t.elapsed();

        let t = Instant::now();
        let mut b = engine(&w, acme);
        for e in verified {
            accepted(b.receive_verified(gov, &peer, e));
        }
        let engine_only = t.elapsed();

        let t = Instant::now();
        let mut c = engine(&w, acme);
        for e in &envs {
            accepted(c.receive(gov, &peer, e.bytes()));
        }
        let full = t.elapsed();
        assert_eq!(
            c.export(&doc).expect("export"),
            a.export(&doc).expect("export")
        );

        let dir = tempfile::tempdir().expect("tempdir");
        let store = wsis_node::store::Store::open(dir.path().join("db")).expect("store");
        store
            .bind_federation_blocking(w.federation)
            .expect("federation");
        let t = Instant::now();
        let mut s = DocumentEngine::new(
            w.federation,
            w.id(acme),
            secret(&w, acme),
            wsis_node::node::StoreSink::new(store),
        );
        for e in &envs {
            accepted(s.receive(gov, &peer, e.bytes()));
        }
        let stored = t.elapsed();

        let t = Instant::now();
        let mut bt = engine(&w, acme);
        let results = bt.receive_batch(gov, &peer, envs.iter().map(|e| e.bytes()));
        let batched = t.elapsed();
        assert!(results.iter().all(Result::is_ok));
        assert_eq!(
            bt.export(&doc).expect("export"),
            a.export(&doc).expect("export")
        );

        let rate = |d: Duration| total as f64 / d.as_secs_f64();
        let line = |what: &str, d: Duration| {
            println!(
                "  {what:<46} {:>9.1} ms {:>10.0} changes/s   ratio to raw per envelope {:.2}",
                d.as_secs_f64() * 1e3,
                rate(d),
                raw_per_envelope.as_secs_f64() / d.as_secs_f64(),
            )
        };
        println!(
            "envelopes of {batch} changes: {} envelopes, {} signatures made",
            envs.len(),
            a.signatures_made()
        );
        line("local edit + publish", local);
        line("raw apply_changes, one call (ceiling)", raw_all);
        line("raw apply_changes, one call per envelope", raw_per_envelope);
        line("verify only (stage 1 + stage 2)", verify);
        line("engine after verification (receive_verified)", engine_only);
        line("full pipeline, receive per envelope", full);
        line("full pipeline, receive per envelope, sled sink", stored);
        line("full pipeline, receive_batch", batched);
    }
}
