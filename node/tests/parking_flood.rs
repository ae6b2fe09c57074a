//! Parking floods against a live node over loopback libp2p (issue 11 defect 6, issue 14 defect 6): real nodes
//! (sled, signatures, the sync protocol), attackers as raw libp2p clients with fresh identities.
//!
//! Before the fix, forty fresh peer ids filled the node's parking for ever (a quota per peer id, no expiry) and an
//! honest op that needed parking was then refused and its sender penalised. Now parked ops are charged to the
//! sending peer's organisation (peers bound to nobody share one quota), expire, and a full pool blames nobody.
//! Figures are printed; nothing is asserted about time.

mod common;

use common::nodes::{admit, eventually, start_secretariat};
use common::raw::{push_all, raw_client, RawSwarm};
use common::{init, loopback};
use libp2p::{Multiaddr, PeerId};
use std::time::Instant;
use wsis_node::net::{SyncRequest, SyncResponse};
use wsis_node::node::{Node, NodeOptions};
use wsis_protocol::crypto::SecretKey;
use wsis_protocol::ids::{FederationId, OpId, OrgId};
use wsis_protocol::op::{OpBody, OpKind, SignedOp, StakeholderType, TeamCode};

/// An organisation's node whose key the test keeps (to sign ops the node itself never sends).
async fn member(
    root: &std::path::Path,
    name: &str,
    fed: FederationId,
    boot: &Multiaddr,
) -> (Node, SecretKey) {
    let dir = init(root, name, StakeholderType::CivilSociety, None);
    let key = SecretKey::from_seed(&dir.org_key().to_seed());
    let node = Node::start(
        dir,
        NodeOptions {
            listen: loopback(),
            bootstrap: vec![boot.clone()],
            join: Some(fed),
            ..Default::default()
        },
    )
    .await
    .expect("join");
    (node, key)
}

/// An op by `author` (signed with `key`) with sequence number `seq`, citing `parents`.
fn signed(
    fed: FederationId,
    author: OrgId,
    key: &SecretKey,
    seq: u64,
    parents: Vec<OpId>,
) -> SignedOp {
    let mut parents = parents;
    parents.sort();
    OpBody {
        federation: Some(fed),
        author,
        key: key.public(),
        seq,
        parents,
        timestamp_ms: 1_700_000_000_000 + seq,
        kind: OpKind::JoinTeam {
            team: TeamCode::new("C1").expect("valid"),
        },
    }
    .sign(key)
}

/// Catalogue (issue 11 defect 6, issue 14 defect 6), live: forty fresh peer ids push orphans that park (each well
/// under the push rule), and seven peer ids a member binds push orphans signed by that member; then an honest
/// member's op that needs parking still parks, is released when its parent comes, and its sender is not penalised.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parking_flood_from_many_peer_ids_leaves_room_for_an_honest_member() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (itu, fed, boot) = start_secretariat(tmp.path()).await;
    let (apc, apc_key) = member(tmp.path(), "APC", fed, &boot).await;
    let (mallory, mallory_key) = member(tmp.path(), "Mallory", fed, &boot).await;
    for n in [&apc, &mallory] {
        admit(&itu, n).await;
    }
    let bound_at_itu = |peer: PeerId, org: OrgId| {
        let itu = &itu;
        async move {
            itu.with_gov(|g| g.bound_orgs(&peer.to_bytes()) == vec![org])
                .await
        }
    };
    eventually("APC's node is bound at the secretariat", || {
        bound_at_itu(apc.peer_id(), apc.org())
    })
    .await;

    // 1. Forty fresh peer ids, bound to nobody, 256 orphan inceptions each (a parent nobody has).
    let started = Instant::now();
    let orphans = common::evil::orphan_ops(fed, 40 * 256);
    let mut answered = 0;
    for chunk in orphans.chunks(256) {
        let mut raw = raw_client();
        raw.dial(boot.clone()).expect("dial");
        answered += push_all(&mut raw, itu.peer_id(), chunk, 8).await;
    }
    let outsiders_parked = itu.with_gov(|g| g.parked_len()).await;
    println!(
        "40 unbound peer ids pushed {} orphans ({answered} pushes answered) in {:?}: {outsiders_parked} parked",
        orphans.len(),
        started.elapsed()
    );

    // 2. Seven more peer ids, bound by Mallory (a member), push 64 orphans each signed by Mallory.
    let mut raws: Vec<RawSwarm> = (0..7).map(|_| raw_client()).collect();
    for raw in &raws {
        mallory
            .submit(OpKind::BindNode {
                peer_id: raw.local_peer_id().to_bytes(),
            })
            .await
            .expect("bind");
    }
    for raw in &raws {
        let peer = *raw.local_peer_id();
        eventually("Mallory's binding reaches the secretariat", || {
            bound_at_itu(peer, mallory.org())
        })
        .await;
    }
    let started = Instant::now();
    for (r, raw) in raws.iter_mut().enumerate() {
        let ops: Vec<Vec<u8>> = (0..64u64)
            .map(|i| {
                let mut fake = [0xfa; 32];
                fake[..8].copy_from_slice(&(r as u64 * 1000 + i).to_be_bytes());
                let seq = 10_000 + r as u64 * 1000 + i;
                signed(fed, mallory.org(), &mallory_key, seq, vec![OpId(fake)])
                    .bytes()
                    .to_vec()
            })
            .collect();
        raw.dial(boot.clone()).expect("dial");
        push_all(raw, itu.peer_id(), &ops, 8).await;
    }
    let parked = itu.with_gov(|g| g.parked_len()).await;
    let stats = itu.stats();
    println!(
        "7 peer ids bound by Mallory pushed 448 orphans in {:?}: {parked} parked in all; {} refused by parking, \
         {} evicted",
        started.elapsed(),
        stats.ops_parking_refused,
        stats.ops_evicted
    );
    // One shared quota for the unbound, one for Mallory's organisation: nowhere near the pool.
    assert!(parked <= 2 * 256, "{parked} parked");

    // 3. The honest member: two ops of APC's, the second pushed first (it needs parking), from APC's own node.
    let (seq, heads) = itu
        .with_gov(|g| {
            let seq = g
                .ops()
                .filter(|o| o.author() == apc.org())
                .map(|o| o.seq())
                .max()
                .unwrap_or(0);
            (seq, g.heads())
        })
        .await;
    let first = signed(fed, apc.org(), &apc_key, seq + 1, heads);
    let second = signed(fed, apc.org(), &apc_key, seq + 2, vec![first.id()]);
    let started = Instant::now();
    for op in [&second, &first] {
        let reply = apc
            .network()
            .request(
                itu.peer_id(),
                &SyncRequest::Push {
                    ops: vec![op.bytes().to_vec()],
                },
            )
            .await;
        assert!(
            matches!(reply, Ok(SyncResponse::Ack { .. })),
            "the honest push is answered: {reply:?}"
        );
        if op.id() == second.id() {
            assert!(
                itu.with_gov(|g| g.is_parked(&second.id())).await,
                "the honest op parked despite the flood"
            );
        }
    }
    eventually("both honest ops are in the secretariat's DAG", || async {
        itu.with_gov(|g| g.contains(&first.id()) && g.contains(&second.id()))
            .await
    })
    .await;
    println!(
        "the honest member's parked op got in {:?} after its push",
        started.elapsed()
    );
    let net = itu.network().stats().await.expect("stats");
    let honest = net.peers.get(&apc.peer_id()).cloned().unwrap_or_default();
    assert_eq!(honest.penalties, 0, "the honest sender is not penalised");
    assert!(!honest.banned);
    for n in [&itu, &apc, &mallory] {
        n.shutdown().await;
    }
}
