//! The op bomb against live nodes over loopback (issue 14, defect 1): an admitted member, a team member allowed
//! to write the document, serves its victims validly signed envelopes whose one ~70-byte change claims 8 M and
//! 2^40 ops (Automerge would expand every one: before the fix a victim peaked at ~3 GB at 8 M and stopped
//! answering at 2^40). Each victim refuses them at stage 1, penalises the sender, stores nothing of them, keeps
//! answering its API, and restarts cleanly from its store.
//!
//! The figures: each scenario first pulls as many honest envelopes of the same shape (one op, same size) from
//! the same sender as a reference, then the bombs, and prints the process's CPU time and peak RSS (VmHWM) for
//! each phase and their ratio. The nodes share this test process, so the peak is an upper bound for any one
//! victim. Nothing here asserts on time or memory (machines differ); the bound is stated in
//! docs/ARCHITECTURE.md and measured by the benchmark, `cargo test -p wsis-node --test op_bomb_live --
//! --ignored --nocapture` (docs/performance.md).

mod common;

use common::evil;
use common::http::{call, serve_api};
use common::nodes::{address_of, admit, eventually, join, start_secretariat, DEADLINE};
use common::{init, loopback};
use std::time::Duration;
use wsis_node::data_dir::DataDir;
use wsis_node::engine::Reject;
use wsis_node::net::SyncResponse;
use wsis_node::node::{Node, NodeOptions};
use wsis_protocol::crypto::{Domain, SecretKey};
use wsis_protocol::envelope::{actor_id, ChangeEnvelope};
use wsis_protocol::fixture::op_bomb_change;
use wsis_protocol::ids::{sha256, DocId, EnvelopeId, FederationId, Hash32, OpId, OrgId};
use wsis_protocol::op::{DocKind, OpKind, StakeholderType, TeamCode};

/// The ops the bombs claim: 8 M (3 GB per victim before the fix) and 2^40 (victims dead before the fix).
const BOMBS: [u64; 2] = [8 << 20, 1 << 40];

/// CPU time (user + system) of this process in clock ticks, and its peak resident set in KiB.
fn usage() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses): utime and stime are the 14th and 15th fields.
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let cpu = field(11) + field(12);
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (cpu, hwm)
}

/// One envelope by `author` (signing with `key`) whose one change claims `ops` ops under `salt`.
fn envelope(
    fed: FederationId,
    doc: DocId,
    author: OrgId,
    key: &SecretKey,
    gov_heads: Vec<OpId>,
    salt: [u8; 16],
    ops: u64,
) -> Vec<u8> {
    let change = op_bomb_change(actor_id(&key.public(), &doc, &salt), 1, ops, 0);
    let header = ChangeEnvelope {
        federation: fed,
        doc,
        author,
        key: key.public(),
        session_salt: salt,
        gov_heads,
        change_hashes: vec![Hash32(sha256(&change[8..]))],
    };
    let signature = key.sign(Domain::ChangeEnvelope, &header.encode());
    evil::forge_envelope(&header, &signature, &[&change])
}

fn response(envelopes: Vec<Vec<u8>>) -> Vec<u8> {
    evil::frame(&SyncResponse::Envelopes {
        envelopes,
        more: false,
    })
}

/// What one phase cost the process.
#[derive(Debug, Clone, Copy)]
struct Phase {
    cpu_ticks: u64,
    peak_kib: u64,
}

/// The federation, the malicious member's servers (one per victim), the reference phase and the attack phase
/// of `rounds` × (one envelope per bomb size), with every check; `restart` also restarts the first victim.
async fn scenario(rounds: usize, restart: bool) -> (Phase, Phase) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (itu, fed, boot) = start_secretariat(tmp.path()).await;
    let kenya = join(
        tmp.path(),
        "Kenya",
        StakeholderType::Government,
        Some("KE"),
        fed,
        &boot,
    )
    .await;
    let mallory_dir = init(tmp.path(), "Mallory", StakeholderType::PrivateSector, None);
    let key = SecretKey::from_seed(&mallory_dir.org_key().to_seed());
    let mallory = Node::start(
        mallory_dir,
        NodeOptions {
            listen: loopback(),
            bootstrap: vec![boot.clone()],
            join: Some(fed),
            ..Default::default()
        },
    )
    .await
    .expect("join");
    for n in [&kenya, &mallory] {
        admit(&itu, n).await;
    }
    // Mallory is an authorised writer: a member of the team, and the creator of the document.
    let c2 = TeamCode::new("C2").expect("valid");
    mallory
        .submit(OpKind::JoinTeam { team: c2.clone() })
        .await
        .expect("join team");
    let created = mallory
        .submit(OpKind::CreateDoc {
            kind: DocKind::OutputDraft {
                team: c2,
                year: 2026,
            },
        })
        .await
        .expect("doc");
    let doc = DocId(created.id().0);
    let victims = [&itu, &kenya];
    let heads = mallory.with_gov(|g| g.heads()).await;
    for v in victims {
        let h = heads.clone();
        eventually("the victim has Mallory's document", || {
            let h = h.clone();
            async move { v.with_gov(|g| h.iter().all(|x| g.contains(x))).await }
        })
        .await;
    }
    let token = "op-bomb-test-token";
    let (api, stop_api, api_task) = serve_api(&itu, token).await;

    // One malicious server per victim, bound to Mallory (an admitted member may bind its nodes).
    let mut servers = Vec::new();
    for v in victims {
        let server = evil::start(v.peer_id(), address_of(v).await, doc, Vec::new());
        mallory
            .submit(OpKind::BindNode {
                peer_id: server.peer_id.to_bytes(),
            })
            .await
            .expect("bind");
        servers.push(server);
    }
    let author = mallory.org();
    let mut salt_no = 0u64;
    let mut next_salt = || {
        salt_no += 1;
        let mut s = [0x77u8; 16];
        s[..8].copy_from_slice(&salt_no.to_be_bytes());
        s
    };

    // Reference: as many honest envelopes of the same shape (one op each) from the same sender.
    let (cpu0, _) = usage();
    let honest: Vec<Vec<u8>> = (0..rounds * BOMBS.len())
        .map(|_| envelope(fed, doc, author, &key, heads.clone(), next_salt(), 1))
        .collect();
    for s in &servers {
        // One sync response holding them all, as the attack below (one response per sync round).
        s.queue
            .lock()
            .expect("lock")
            .push_back(response(honest.clone()));
    }
    for v in victims {
        eventually("the victim stores the honest envelopes", || async {
            v.with_docs(|_, d| d.stored_envelope_ids(&doc).len() == honest.len())
                .await
        })
        .await;
    }
    let (cpu1, peak1) = usage();
    let reference = Phase {
        cpu_ticks: cpu1 - cpu0,
        peak_kib: peak1,
    };

    // The attack: validly signed op bombs by the same authorised member.
    let mut bombs: Vec<Vec<u8>> = Vec::new();
    for _ in 0..rounds {
        for ops in BOMBS {
            let e = envelope(fed, doc, author, &key, heads.clone(), next_salt(), ops);
            assert!(
                e.len() < 600,
                "an op bomb is a few hundred bytes: {}",
                e.len()
            );
            bombs.push(e);
        }
    }
    for s in &servers {
        s.queue
            .lock()
            .expect("lock")
            .push_back(response(bombs.clone()));
    }
    for (v, s) in victims.iter().zip(&servers) {
        eventually("the victim refused every bomb", || async {
            v.with_docs(|_, d| d.rejected_count(Reject::TooLarge) == bombs.len() as u64)
                .await
        })
        .await;
        eventually("the sender is penalised", || async {
            v.network()
                .stats()
                .await
                .is_ok_and(|st| st.peers.get(&s.peer_id).is_some_and(|p| p.penalties >= 1))
        })
        .await;
        let stored = v.with_docs(|_, d| d.stored_envelope_ids(&doc)).await;
        assert_eq!(stored.len(), honest.len(), "nothing of the bombs is stored");
        for b in &bombs {
            assert!(!stored.contains(&EnvelopeId::of_bytes(b)));
        }
    }
    let (cpu2, peak2) = usage();
    let attack = Phase {
        cpu_ticks: cpu2 - cpu1,
        peak_kib: peak2,
    };
    // The victim's API kept answering through the attack, and shows the document's use of its caps.
    let (status, body) = call(api, "GET", "/v1/status", token, "").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"limits\""), "{body}");

    for s in servers {
        s.stop();
    }
    let before = itu.with_docs(|_, d| d.export(&doc).expect("export")).await;
    let _ = stop_api.send(());
    let _ = api_task.await;
    for n in [&kenya, &mallory] {
        n.shutdown().await;
    }
    itu.shutdown().await;
    drop(itu);
    if restart {
        // A clean restart: the store holds nothing of the bombs, so nothing is re-applied (before the fix the
        // bomb was stored before it was applied, and every start re-applied it: a crash loop). `shutdown` does
        // not wait for the node's own tasks: retry until the store's lock is free.
        let start = tokio::time::Instant::now();
        let again = loop {
            match Node::start(
                DataDir::open(tmp.path().join("ITU")).expect("reopen"),
                NodeOptions {
                    listen: loopback(),
                    ..Default::default()
                },
            )
            .await
            {
                Ok(node) => break node,
                Err(wsis_node::node::StartError::Store(_)) if start.elapsed() < DEADLINE => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("restart: {e:?}"),
            }
        };
        let after = again
            .with_docs(|_, d| d.export(&doc).expect("export"))
            .await;
        assert_eq!(after, before);
        let (api, stop, task) = serve_api(&again, token).await;
        let (status, body) = call(api, "GET", "/v1/status", token, "").await;
        assert_eq!(status, 200, "{body}");
        let _ = stop.send(());
        let _ = task.await;
        again.shutdown().await;
    }
    (reference, attack)
}

fn report(rounds: usize, reference: Phase, attack: Phase) {
    let ratio = |a: u64, b: u64| a as f64 / b.max(1) as f64;
    println!(
        "op bomb, {} envelopes per victim ({:?} claimed ops), 2 victims: reference {} CPU ticks, peak {} KiB; \
         attack {} CPU ticks, peak {} KiB; CPU ratio {:.2}, peak ratio {:.3}",
        rounds * BOMBS.len(),
        BOMBS,
        reference.cpu_ticks,
        reference.peak_kib,
        attack.cpu_ticks,
        attack.peak_kib,
        ratio(attack.cpu_ticks, reference.cpu_ticks),
        ratio(attack.peak_kib, reference.peak_kib),
    );
}

/// Issue 14, defect 1, live: op bombs of 8 M and 2^40 claimed ops from an authorised member are refused by
/// every victim, the sender penalised, nothing stored; the API answers and the victim restarts cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_op_bomb_from_a_member_is_refused_by_live_nodes_which_keep_answering_and_restart_cleanly(
) {
    let (reference, attack) = scenario(1, true).await;
    report(1, reference, attack);
}

/// The benchmark (ignored by default; docs/performance.md): 64 rounds of both bombs against two victims, with
/// 128 honest one-op envelopes first as the reference measured in the same run; prints the ratios.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: cargo test -p wsis-node --test op_bomb_live -- --ignored --nocapture"]
async fn op_bomb_benchmark() {
    let (reference, attack) = scenario(64, false).await;
    report(64, reference, attack);
}
