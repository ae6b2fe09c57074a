//! Two nodes over loopback TCP: node A holds `WSIS_BENCH_DOCS` documents × `WSIS_BENCH_CHANGES` signed changes
//! (published in envelopes of `WSIS_BENCH_BATCH` changes), node B starts empty and is admitted; time until B holds
//! every change, verified changes/s, and the ratio to the in-process ceiling: the same envelopes verified
//! (signatures) and applied with `apply_changes` in one process, measured in the same run. Prints numbers only.
//!
//! ```text
//! cargo bench -p wsis-node --bench sync
//! ```
//!
//! Both nodes run in this one process, so the peak RSS printed is of the two together.

use automerge::transaction::Transactable;
use std::time::{Duration, Instant};
use wsis_node::data_dir::{DataDir, InitOptions};
use wsis_node::node::{create_federation, Node, NodeOptions};
use wsis_protocol::envelope::VerifiedHeader;
use wsis_protocol::ids::DocId;
use wsis_protocol::op::{DocKind, OpKind, StakeholderType, TeamCode};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l.to_string())
        })
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

async fn address_of(node: &Node) -> wsis_node::net::Multiaddr {
    loop {
        let addrs = node.network().listen_addrs().await.expect("net");
        if let Some(a) = addrs
            .into_iter()
            .find(|a| a.to_string().contains("127.0.0.1"))
        {
            return format!("{a}/p2p/{}", node.peer_id()).parse().expect("addr");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run());
}

async fn run() {
    let n_docs = env_or("WSIS_BENCH_DOCS", 200);
    let n_changes = env_or("WSIS_BENCH_CHANGES", 100);
    let batch = env_or("WSIS_BENCH_BATCH", 10).max(1);
    let tmp = tempfile::tempdir().expect("tempdir");
    let loopback: Vec<wsis_node::net::Multiaddr> =
        vec!["/ip4/127.0.0.1/tcp/0".parse().expect("addr")];

    let mut dir = DataDir::init(
        tmp.path().join("a"),
        InitOptions {
            name: "ITU".into(),
            stakeholder: StakeholderType::InternationalOrganisation,
            country: None,
        },
    )
    .expect("init");
    let fed = create_federation(
        &mut dir,
        "bench",
        wsis_protocol::reference::wsis_teams(),
        vec![],
    )
    .await
    .expect("genesis");
    let a = Node::start(
        dir,
        NodeOptions {
            listen: loopback.clone(),
            ..Default::default()
        },
    )
    .await
    .expect("start a");
    let c1 = TeamCode::new("C1").expect("team");
    a.submit(OpKind::JoinTeam { team: c1.clone() })
        .await
        .expect("join");
    let t = Instant::now();
    let mut docs = Vec::new();
    for i in 0..n_docs {
        let op = a
            .submit(OpKind::CreateDoc {
                kind: DocKind::OutputDraft {
                    team: c1.clone(),
                    year: 2000 + (i % 100) as u16,
                },
            })
            .await
            .expect("doc");
        let doc = DocId(op.id().0);
        for j in 0..n_changes {
            a.edit(&doc, |tx| {
                tx.put(automerge::ROOT, format!("item{j}"), j as i64)?;
                Ok(())
            })
            .await
            .expect("edit");
            if (j + 1) % batch == 0 {
                a.publish(&doc).await.expect("publish");
            }
        }
        a.publish(&doc).await.expect("publish");
        docs.push(doc);
    }
    let total_changes = n_docs * n_changes;
    println!("node A: {n_docs} documents x {n_changes} changes in envelopes of {batch}, built in {:.1} s", t.elapsed().as_secs_f64());

    // The in-process ceiling: every stored envelope verified (stage 1: signature; stage 2: Automerge parse) and its
    // changes applied to a fresh document, in one process.
    let envelopes: Vec<Vec<u8>> = a
        .with_docs(|_, d| {
            docs.iter()
                .flat_map(|doc| {
                    d.stored_envelope_ids(doc)
                        .into_iter()
                        .filter_map(|id| d.envelope(doc, &id).map(|e| e.bytes().to_vec()))
                        .collect::<Vec<_>>()
                })
                .collect()
        })
        .await;
    let t = Instant::now();
    let mut applied = 0;
    let mut by_doc: std::collections::HashMap<DocId, automerge::Automerge> = Default::default();
    for bytes in &envelopes {
        let env = VerifiedHeader::from_bytes(bytes, fed)
            .expect("verifies")
            .parse_changes()
            .expect("parses");
        let doc = by_doc.entry(env.header().doc).or_default();
        let changes = env.into_changes();
        applied += changes.len();
        doc.apply_changes(changes).expect("applies");
    }
    let ceiling = applied as f64 / t.elapsed().as_secs_f64();
    assert_eq!(applied, total_changes);

    // Node B joins, is admitted, and pulls everything.
    let boot = address_of(&a).await;
    let dir = DataDir::init(
        tmp.path().join("b"),
        InitOptions {
            name: "APC".into(),
            stakeholder: StakeholderType::CivilSociety,
            country: None,
        },
    )
    .expect("init");
    let b = Node::start(
        dir,
        NodeOptions {
            listen: loopback,
            bootstrap: vec![boot],
            join: Some(fed),
            ..Default::default()
        },
    )
    .await
    .expect("start b");
    let b_org = b.org();
    while !a.with_gov(|g| g.org(&b_org).is_some()).await {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let t = Instant::now();
    a.submit(OpKind::Admit { org: b_org }).await.expect("admit");
    let expected: Vec<_> = a
        .with_docs(|_, d| docs.iter().map(|doc| d.heads(doc)).collect::<Vec<_>>())
        .await;
    loop {
        let now: Vec<_> = b
            .with_docs(|_, d| docs.iter().map(|doc| d.heads(doc)).collect::<Vec<_>>())
            .await;
        if now == expected {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(1800),
            "sync did not finish"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let secs = t.elapsed().as_secs_f64();
    let rate = total_changes as f64 / secs;
    let stats = a.network().stats().await.expect("stats");
    println!(
        "full sync of {total_changes} changes in {} envelopes: {secs:.2} s",
        envelopes.len()
    );
    println!("verified changes/s over loopback:     {rate:.0}");
    println!("in-process ceiling (verify + apply):  {ceiling:.0}");
    println!(
        "ratio:                                {:.2}  (target >= 0.50)",
        rate / ceiling
    );
    println!(
        "bytes sent by A: {}   peak RSS of the process (both nodes): {} MiB",
        stats.bytes_out,
        peak_rss_kib() / 1024
    );
    a.shutdown().await;
    b.shutdown().await;
}
