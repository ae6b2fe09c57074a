//! Several nodes in one test process over loopback TCP: a federation is created, organisations join through a
//! bootstrap peer, the secretariat admits them, governance ops made on different nodes converge to the same
//! replayed state everywhere; a restarted node catches up from its data directory; an unadmitted peer is refused.
//!
//! Waiting uses polling with a generous deadline so a slow machine only makes the test slower, never flaky; no
//! assertion is about time.
//!
//! Over 800 lines: each test is one long scenario of whole nodes (set-up, ops, waiting, checks) whose steps only
//! make sense together, and `docs/ARCHITECTURE.md` cites them by this path; the shared set-up is in `common`.

use std::time::Duration;
use wsis_node::data_dir::DataDir;
use wsis_node::node::{Node, NodeOptions};
use wsis_protocol::op::{OpKind, StakeholderType, TeamCode};

mod common;

use common::evil;
use common::nodes::{address_of, admit, digest, eventually, join, start_secretariat, DEADLINE};
use common::{init, loopback};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_organisations_converge_and_a_restarted_node_catches_up() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (itu, fed, boot) = start_secretariat(tmp.path()).await;
    let apc = join(
        tmp.path(),
        "APC",
        StakeholderType::CivilSociety,
        None,
        fed,
        &boot,
    )
    .await;
    let kenya = join(
        tmp.path(),
        "Kenya",
        StakeholderType::Government,
        Some("KE"),
        fed,
        &boot,
    )
    .await;

    // The joiners' inceptions reach the secretariat by push; the secretariat admits them.
    for n in [&apc, &kenya] {
        let org = n.org();
        eventually("inception reaches the secretariat", || async {
            itu.with_gov(|g| g.org(&org).is_some()).await
        })
        .await;
        itu.submit(OpKind::Admit { org }).await.expect("admit");
    }
    for n in [&apc, &kenya] {
        let org = n.org();
        eventually("the joiner learns it was admitted", || async {
            n.with_gov(|g| g.is_member(&org)).await
        })
        .await;
    }
    // Concurrent work on three nodes.
    let c2 = TeamCode::new("C2").expect("valid");
    apc.submit(OpKind::JoinTeam { team: c2.clone() })
        .await
        .expect("join team");
    kenya
        .submit(OpKind::JoinTeam { team: c2.clone() })
        .await
        .expect("join team");
    itu.submit(OpKind::JoinTeam { team: c2.clone() })
        .await
        .expect("join team");
    eventually("all three see three members of C2", || async {
        let mut ok = true;
        for n in [&itu, &apc, &kenya] {
            ok &= n.with_gov(|g| g.team_members(&c2).len() == 3).await;
        }
        ok
    })
    .await;
    eventually("identical state digests", || async {
        let d = digest(&itu).await;
        d == digest(&apc).await && d == digest(&kenya).await
    })
    .await;

    // Kenya goes down; the others keep working; Kenya restarts from its data directory and catches up.
    let kenya_dir = tmp.path().join("Kenya");
    kenya.shutdown().await;
    drop(kenya);
    apc.submit(OpKind::LeaveTeam { team: c2.clone() })
        .await
        .expect("leave");
    itu.submit(OpKind::JoinTeam {
        team: TeamCode::new("C3").expect("valid"),
    })
    .await
    .expect("join");
    let dir = DataDir::open(&kenya_dir).expect("reopen");
    let kenya = Node::start(
        dir,
        NodeOptions {
            listen: loopback(),
            bootstrap: vec![boot.clone()],
            ..Default::default()
        },
    )
    .await
    .expect("restart");
    eventually("the restarted node catches up", || async {
        digest(&kenya).await == digest(&itu).await
    })
    .await;
    assert_eq!(kenya.with_gov(|g| g.team_members(&c2).len()).await, 2);
    for n in [&itu, &apc, &kenya] {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unadmitted_peer_gets_the_genesis_and_nothing_else() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (itu, fed, boot) = start_secretariat(tmp.path()).await;
    itu.submit(OpKind::JoinTeam {
        team: TeamCode::new("C1").expect("valid"),
    })
    .await
    .expect("op");
    let outsider = join(
        tmp.path(),
        "Outsider",
        StakeholderType::PrivateSector,
        None,
        fed,
        &boot,
    )
    .await;
    let org = outsider.org();
    eventually(
        "the outsider's inception reaches the secretariat",
        || async { itu.with_gov(|g| g.org(&org).is_some()).await },
    )
    .await;
    // Give the outsider time to try syncing; it must learn nothing beyond the genesis and its own ops.
    tokio::time::sleep(Duration::from_secs(6)).await;
    // It may learn the genesis and ITU's introduction of itself (the binding of ITU's peer id, which every node
    // pushes once to each peer so that nodes of organisations incepted in the genesis can be told apart), but no
    // federation data: not ITU's team membership.
    let itu_org = itu.org();
    let learned: Vec<&'static str> = outsider
        .with_gov(|g| {
            g.ops()
                .filter(|op| op.author() == itu_org)
                .map(|op| op.kind().name())
                .collect()
        })
        .await;
    assert!(
        learned
            .iter()
            .all(|k| matches!(*k, "genesis" | "bind-node" | "org-inception")),
        "only the genesis and ITU's own introduction reached the unadmitted node: {learned:?}"
    );
    assert!(learned.contains(&"genesis"));
    assert!(!learned.contains(&"join-team"));
    assert!(
        itu.stats().requests_refused > 0,
        "the secretariat refused the outsider's sync requests"
    );
    itu.shutdown().await;
    outsider.shutdown().await;
}

/// Catalogue case 8 over loopback libp2p: an admitted peer pushes orphan ops (each citing a parent nobody has)
/// until it is banned; everything it parked is then evicted, and the secretariat's parking area is empty again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_orphan_flood_gets_the_peer_banned_and_its_parked_ops_evicted() {
    use wsis_node::net::{SyncRequest, SyncResponse};

    let tmp = tempfile::tempdir().expect("tempdir");
    let (itu, fed, boot) = start_secretariat(tmp.path()).await;
    let evil = join(
        tmp.path(),
        "Mallory Inc",
        StakeholderType::PrivateSector,
        None,
        fed,
        &boot,
    )
    .await;
    admit(&itu, &evil).await;

    // Orphans by the flooder's own organisation (its key from its data directory): ops of unknown authors are
    // refused without parking, so only a known author's orphans park.
    let key = DataDir::open(tmp.path().join("Mallory Inc")).expect("data dir");
    let orphans = evil::orphan_ops_of(fed, evil.org(), key.org_key(), 400);
    let mut refused_after = None;
    for (n, chunk) in orphans.chunks(16).enumerate() {
        let reply = evil
            .network()
            .request(
                itu.peer_id(),
                &SyncRequest::Push {
                    ops: chunk.to_vec(),
                },
            )
            .await;
        match reply {
            Ok(SyncResponse::Ack { accepted }) => assert_eq!(accepted, 0),
            _ => {
                refused_after = Some(n);
                break;
            }
        }
    }
    let pushes = refused_after.expect("the flood was cut off by a ban");
    assert!(pushes > 0, "some pushes were taken before the ban");
    eventually(
        "the flooder is banned and its parked ops evicted",
        || async {
            let banned = itu
                .network()
                .stats()
                .await
                .is_ok_and(|s| s.peers.get(&evil.peer_id()).is_some_and(|p| p.banned));
            banned && itu.with_gov(|g| g.parked_len()).await == 0
        },
    )
    .await;
    // The push that triggered the ban was taken too, though its reply was cut off.
    let evicted = itu.stats().ops_evicted;
    assert!(
        evicted >= (pushes * 16) as u64 && evicted <= ((pushes + 1) * 16) as u64,
        "{evicted} evicted after {pushes} acknowledged pushes"
    );
    assert_eq!(itu.with_gov(|g| g.parked_len()).await, 0);
    itu.shutdown().await;
    evil.shutdown().await;
}

/// Catalogue cases 29, 7/8 at the node, and the malicious-peer test: an admitted organisation's node
/// pushes forged and unauthorised ops and an orphan flood; nothing forged is stored or applied, invalid ones have
/// no effect, the peer is penalised, and honest sync goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malicious_peer_is_refused_penalised_and_honest_sync_goes_on() {
    use wsis_node::net::{SyncRequest, SyncResponse};
    use wsis_protocol::fixture::Org;

    let tmp = tempfile::tempdir().expect("tempdir");
    let (itu, fed, boot) = start_secretariat(tmp.path()).await;
    let honest = join(
        tmp.path(),
        "APC",
        StakeholderType::CivilSociety,
        None,
        fed,
        &boot,
    )
    .await;
    let evil = join(
        tmp.path(),
        "Mallory Inc",
        StakeholderType::PrivateSector,
        None,
        fed,
        &boot,
    )
    .await;
    for n in [&honest, &evil] {
        admit(&itu, n).await;
    }

    let heads = itu.with_gov(|g| g.heads()).await;
    let before = itu.with_gov(|g| g.len()).await;
    // 1. A forged signature. 2. An op claiming to be ITU's, signed with another key. 3. An admission by a
    // non-secretariat (well-formed, so it enters the DAG, but has no effect). 4. Orphans citing unknown parents.
    let mut stranger = Org::new(4242, "Stranger", StakeholderType::Academia, None);
    let mut forged = stranger
        .sign(
            Some(fed),
            &heads,
            OpKind::JoinTeam {
                team: TeamCode::new("C1").expect("valid"),
            },
            0,
        )
        .bytes()
        .to_vec();
    let n = forged.len();
    forged[n - 5] ^= 1;
    let mut impostor_body = stranger
        .sign(Some(fed), &heads, OpKind::Admit { org: stranger.id() }, 0)
        .body()
        .clone();
    impostor_body.author = itu.org();
    let impostor = impostor_body.sign(&stranger.secret).bytes().to_vec();
    let key = DataDir::open(tmp.path().join("Mallory Inc")).expect("data dir");
    let orphans = evil::orphan_ops_of(fed, evil.org(), key.org_key(), 50);
    let mut pushed = vec![forged, impostor];
    pushed.extend(orphans);
    // A push frame holds at most 16 ops: the flood comes in several.
    for chunk in pushed.chunks(16) {
        let reply = evil
            .network()
            .request(
                itu.peer_id(),
                &SyncRequest::Push {
                    ops: chunk.to_vec(),
                },
            )
            .await;
        match reply {
            Ok(SyncResponse::Ack { accepted }) => {
                assert_eq!(accepted, 0, "nothing pushed was new and valid")
            }
            // Once banned, the malicious peer's requests fail: that is the point.
            Err(_) => {}
            other => panic!("unexpected reply {other:?}"),
        }
    }
    // The non-secretariat admission, through the malicious node's own (valid) signing path.
    let bad_admit = evil
        .submit(OpKind::Admit { org: stranger.id() })
        .await
        .expect("signed");
    eventually("the secretariat has the bogus admission", || async {
        itu.with_gov(|g| g.contains(&bad_admit.id())).await
    })
    .await;

    let itu_gov_len = itu.with_gov(|g| g.len()).await;
    assert!(
        itu_gov_len <= before + 4,
        "forged and orphan ops did not enter the DAG ({before} -> {itu_gov_len})"
    );
    assert!(
        itu.with_gov(|g| g.validity(&bad_admit.id())
            == Some(Err(wsis_protocol::gov::Invalid::NotSecretariat)))
            .await
    );
    assert!(!itu.with_gov(|g| g.is_member(&stranger.id())).await);
    assert!(
        itu.stats().ops_refused >= 2,
        "refusals were counted: {:?}",
        itu.stats()
    );
    let penalties = itu
        .network()
        .stats()
        .await
        .expect("stats")
        .peers
        .get(&evil.peer_id())
        .map_or(0, |p| p.penalties);
    assert!(
        penalties >= 2,
        "the malicious peer was penalised ({penalties})"
    );

    // Honest sync goes on.
    honest
        .submit(OpKind::JoinTeam {
            team: TeamCode::new("C9").expect("valid"),
        })
        .await
        .expect("op");
    let c9 = TeamCode::new("C9").expect("valid");
    eventually("honest ops still propagate", || async {
        itu.with_gov(|g| g.team_members(&c9).len() == 1).await
    })
    .await;
    for n in [&itu, &honest, &evil] {
        n.shutdown().await;
    }
}

/// Partition and heal: two halves work separately, then reconnect and converge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_on_both_sides_of_a_partition_converge_after_healing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (itu, fed, boot) = start_secretariat(tmp.path()).await;
    let apc = join(
        tmp.path(),
        "APC",
        StakeholderType::CivilSociety,
        None,
        fed,
        &boot,
    )
    .await;
    admit(&itu, &apc).await;

    // Split: APC goes offline (its node stops); both sides keep working.
    let apc_dir = tmp.path().join("APC");
    apc.shutdown().await;
    drop(apc);
    itu.submit(OpKind::JoinTeam {
        team: TeamCode::new("C4").expect("valid"),
    })
    .await
    .expect("op");
    let dir = DataDir::open(&apc_dir).expect("reopen");
    // The APC side works in isolation (no bootstrap), then heals by dialling the secretariat.
    let apc = Node::start(
        dir,
        NodeOptions {
            listen: loopback(),
            ..Default::default()
        },
    )
    .await
    .expect("restart");
    apc.submit(OpKind::JoinTeam {
        team: TeamCode::new("C5").expect("valid"),
    })
    .await
    .expect("op");
    assert_ne!(
        digest(&apc).await,
        digest(&itu).await,
        "the halves differ while split"
    );
    apc.network().dial(boot.clone()).await.expect("dial");
    eventually("the halves converge after healing", || async {
        digest(&apc).await == digest(&itu).await
    })
    .await;
    for n in [&itu, &apc] {
        n.shutdown().await;
    }
}

/// A node option blocks a peer: C refuses A (given as `blocked_peers`). C is never connected to A, not even when
/// each dials the other (and A holds no connection to C once C has refused it), yet C joins through B, is admitted
/// by A and receives A's ops relayed by B.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_peer_is_never_connected_but_its_ops_arrive_through_another() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (a, fed, a_addr) = start_secretariat(tmp.path()).await;
    let b = join(
        tmp.path(),
        "APC",
        StakeholderType::CivilSociety,
        None,
        fed,
        &a_addr,
    )
    .await;
    let org = b.org();
    eventually("B's inception reaches A", || async {
        a.with_gov(|g| g.org(&org).is_some()).await
    })
    .await;
    a.submit(OpKind::Admit { org }).await.expect("admit B");
    eventually("B is admitted", || async {
        b.with_gov(|g| g.is_member(&org)).await
    })
    .await;
    let b_addr = address_of(&b).await;

    // C bootstraps from B and from A, but blocks A: the A entry is skipped, the B one used.
    let c = Node::start(
        init(tmp.path(), "Kenya", StakeholderType::Government, Some("KE")),
        NodeOptions {
            listen: loopback(),
            bootstrap: vec![a_addr.clone(), b_addr.clone()],
            blocked_peers: vec![a.peer_id()],
            join: Some(fed),
            ..Default::default()
        },
    )
    .await
    .expect("C joins through B");
    let (a_id, c_id) = (a.peer_id(), c.peer_id());
    // C denies A before any connection is established on its side, so C never lists A. A's side of a connection
    // it dials may exist for a moment before C closes it (C rejects it once the handshake names A), so A is
    // checked once things have settled, below.
    let apart = || async {
        let c_peers = c.network().connected_peers().await.expect("C runs");
        assert!(!c_peers.contains(&a_id), "C is connected to A: {c_peers:?}");
    };

    // C's inception reaches A only through B; A admits C.
    let c_org = c.org();
    eventually("C's inception reaches A through B", || async {
        apart().await;
        a.with_gov(|g| g.org(&c_org).is_some()).await
    })
    .await;
    a.submit(OpKind::Admit { org: c_org })
        .await
        .expect("admit C");

    // C may neither dial A nor send it a request.
    assert!(
        c.network().dial(a_addr.clone()).await.is_err(),
        "C may not dial A"
    );
    assert!(matches!(
        c.network()
            .request(
                a_id,
                &wsis_node::net::SyncRequest::DocHeads {
                    doc: wsis_protocol::ids::DocId([0; 32]),
                }
            )
            .await,
        Err(wsis_node::net::RequestError::Blocked)
    ));

    // A's later op reaches C through B.
    let team = TeamCode::new("C4").expect("valid");
    a.submit(OpKind::JoinTeam { team: team.clone() })
        .await
        .expect("op");
    let a_org = a.org();
    eventually("C is admitted and has A's op, relayed by B", || async {
        apart().await;
        c.with_gov(|g| g.is_member(&c_org) && g.team_members(&team).contains(&a_org))
            .await
    })
    .await;
    eventually("identical state digests", || async {
        apart().await;
        let d = digest(&a).await;
        d == digest(&b).await && d == digest(&c).await
    })
    .await;
    // A dialling C is refused at C once the handshake names A (A may see the connection for a moment, so look
    // again only after it had time to be closed).
    let c_addr = address_of(&c).await;
    let _ = a.network().dial(c_addr).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    apart().await;
    eventually("A holds no connection to C", || async {
        !a.network()
            .connected_peers()
            .await
            .expect("A runs")
            .contains(&c_id)
    })
    .await;
    assert!(
        c.network()
            .connected_peers()
            .await
            .expect("C runs")
            .contains(&b.peer_id()),
        "C links B"
    );
    assert!(
        b.network().connected_peers().await.expect("B runs").len() == 2,
        "B links both"
    );
    for n in [&a, &b, &c] {
        n.shutdown().await;
    }
}

/// The first node test: governance ops plus concurrent edits of one document by three organisations
/// converge to identical heads and content on every node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_organisations_edit_one_document_concurrently_and_converge() {
    use automerge::transaction::Transactable;
    use wsis_protocol::ids::DocId;
    use wsis_protocol::op::DocKind;

    let tmp = tempfile::tempdir().expect("tempdir");
    let (itu, fed, boot) = start_secretariat(tmp.path()).await;
    let apc = join(
        tmp.path(),
        "APC",
        StakeholderType::CivilSociety,
        None,
        fed,
        &boot,
    )
    .await;
    let kenya = join(
        tmp.path(),
        "Kenya",
        StakeholderType::Government,
        Some("KE"),
        fed,
        &boot,
    )
    .await;
    for n in [&apc, &kenya] {
        admit(&itu, n).await;
    }
    let c2 = TeamCode::new("C2").expect("valid");
    for n in [&itu, &apc, &kenya] {
        n.submit(OpKind::JoinTeam { team: c2.clone() })
            .await
            .expect("join");
    }
    let draft = apc
        .submit(OpKind::CreateDoc {
            kind: DocKind::OutputDraft {
                team: c2.clone(),
                year: 2026,
            },
        })
        .await
        .expect("doc");
    let doc = DocId(draft.id().0);
    eventually("everyone sees three members and the draft", || async {
        let mut ok = true;
        for n in [&itu, &apc, &kenya] {
            ok &= n
                .with_gov(|g| g.team_members(&c2).len() == 3 && g.document(&doc).is_some())
                .await;
        }
        ok
    })
    .await;
    // Concurrent edits: each organisation writes its own section and a shared field, then publishes.
    for (n, section, text) in [
        (&itu, "achievements", "Broadband maps for 40 countries"),
        (&apc, "challenges", "Affordability in rural areas"),
        (&kenya, "recommendations", "Community networks licensing"),
    ] {
        n.edit(&doc, |tx| {
            tx.put(automerge::ROOT, section, text)?;
            tx.put(automerge::ROOT, "last_editor", section)?;
            Ok(())
        })
        .await
        .expect("edit");
    }
    for n in [&itu, &apc, &kenya] {
        assert_eq!(
            n.publish(&doc).await.expect("publish"),
            1,
            "one envelope per burst of local changes"
        );
    }
    eventually(
        "identical document content and heads everywhere",
        || async {
            let a = itu
                .with_docs(|_, d| (d.export(&doc).ok(), d.heads(&doc)))
                .await;
            let b = apc
                .with_docs(|_, d| (d.export(&doc).ok(), d.heads(&doc)))
                .await;
            let c = kenya
                .with_docs(|_, d| (d.export(&doc).ok(), d.heads(&doc)))
                .await;
            a.0.is_some() && a == b && b == c && a.1.len() == 3
        },
    )
    .await;
    let json = itu.with_docs(|_, d| d.export(&doc).expect("export")).await;
    let text = String::from_utf8(json).expect("utf-8");
    for s in ["Broadband maps", "Affordability", "Community networks"] {
        assert!(text.contains(s), "{s} missing from {text}");
    }
    for n in [&itu, &apc, &kenya] {
        n.shutdown().await;
    }
}

/// The malicious-peer test for document change envelopes, over real loopback libp2p: a node bound to an
/// admitted member of the team answers the victim's `GetEnvelopes` pulls (the sync protocol has no envelope push)
/// with, one response each, an unsigned change (an envelope with a zero signature, and bare change bytes), changes
/// by non-members (an admitted organisation outside the team at the heads it cites, and an organisation the
/// federation does not know), changes under another organisation's actor id (and another organisation's
/// authorship), an oversized frame, and an orphan flood past the parking quota. Nothing is applied or stored, the
/// victim's rejection counters grow, the peer is penalised for each response, and an honest third node's edit
/// still syncs afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malicious_change_envelopes_are_refused_penalised_and_honest_sync_goes_on() {
    use automerge::transaction::Transactable;
    use automerge::{AutoCommit, ROOT};
    use wsis_node::engine::Reject;
    use wsis_node::net::{SyncResponse, MAX_RESPONSE_FRAME_BYTES};
    use wsis_protocol::crypto::{Domain, PublicKey, SecretKey};
    use wsis_protocol::envelope::{automerge_actor, ChangeEnvelope};
    use wsis_protocol::fixture::Org;
    use wsis_protocol::ids::DocId;
    use wsis_protocol::ids::Hash32;
    use wsis_protocol::op::DocKind;

    let tmp = tempfile::tempdir().expect("tempdir");
    let (itu, fed, boot) = start_secretariat(tmp.path()).await;
    // Joins like `join`, keeping the organisation key (the malicious server signs with Mallory's; APC's public
    // key is what a forger puts in a foreign actor id).
    let join_keeping_key = |name: &'static str, st| {
        let dir = init(tmp.path(), name, st, None);
        let key = SecretKey::from_seed(&dir.org_key().to_seed());
        let boot = boot.clone();
        async move {
            let node = Node::start(
                dir,
                NodeOptions {
                    listen: loopback(),
                    bootstrap: vec![boot],
                    join: Some(fed),
                    ..Default::default()
                },
            )
            .await
            .expect("join");
            (node, key)
        }
    };
    let (apc, apc_secret) = join_keeping_key("APC", StakeholderType::CivilSociety).await;
    let (mallory, mallory_key) =
        join_keeping_key("Mallory Inc", StakeholderType::PrivateSector).await;
    for n in [&apc, &mallory] {
        admit(&itu, n).await;
    }
    let c2 = TeamCode::new("C2").expect("valid");
    apc.submit(OpKind::JoinTeam { team: c2.clone() })
        .await
        .expect("join team");
    let draft = apc
        .submit(OpKind::CreateDoc {
            kind: DocKind::OutputDraft {
                team: c2.clone(),
                year: 2026,
            },
        })
        .await
        .expect("doc");
    let doc = DocId(draft.id().0);
    apc.edit(&doc, |tx| tx.put(ROOT, "achievements", "Broadband maps"))
        .await
        .expect("edit");
    apc.publish(&doc).await.expect("publish");
    let mallory_org = mallory.org();
    eventually("ITU has the draft and APC's first edit", || async {
        itu.with_docs(|g, d| {
            g.document(&doc).is_some()
                && g.is_member(&mallory_org)
                && d.export(&doc)
                    .is_ok_and(|j| String::from_utf8_lossy(&j).contains("Broadband"))
        })
        .await
    })
    .await;
    // Heads at which Mallory is admitted but not in the team; then Mallory joins the team.
    let heads_outside = itu.with_gov(|g| g.heads()).await;
    let joined = mallory
        .submit(OpKind::JoinTeam { team: c2.clone() })
        .await
        .expect("join team");
    eventually("ITU sees Mallory in the team", || async {
        itu.with_gov(|g| g.contains(&joined.id()) && g.team_members(&c2).len() == 2)
            .await
    })
    .await;
    let heads = itu.with_gov(|g| g.heads()).await;
    let apc_key: PublicKey = apc_secret.public();

    let changes_of = |key: &PublicKey, salt: [u8; 16], text: &str| {
        let mut d = AutoCommit::new().with_actor(automerge_actor(key, &doc, &salt));
        d.put(ROOT, "forged", text).expect("put");
        d.get_changes(&[])
    };
    let header = |author, key: &PublicKey, salt, heads: &[_], changes: &[automerge::Change]| {
        ChangeEnvelope {
            federation: fed,
            doc,
            author,
            key: *key,
            session_salt: salt,
            gov_heads: heads.to_vec(),
            change_hashes: changes.iter().map(|c| Hash32(c.hash().0)).collect(),
        }
    };
    let envelopes = |list: Vec<Vec<u8>>| {
        evil::frame(&SyncResponse::Envelopes {
            envelopes: list,
            more: false,
        })
    };
    let mpub = mallory_key.public();

    // 1. Unsigned: an authorised author's envelope with a zero signature, and a bare change with no envelope.
    let c = changes_of(&mpub, [1; 16], "FORGED unsigned");
    let unsigned = evil::forge_envelope(
        &header(mallory_org, &mpub, [1; 16], &heads, &c),
        &[0; 64],
        &[c[0].raw_bytes()],
    );
    let bare = c[0].raw_bytes().to_vec();
    // 2. Non-members: Mallory citing heads where it is not in the team; an organisation nobody admitted.
    let c = changes_of(&mpub, [2; 16], "FORGED non-member");
    let outside = ChangeEnvelope::seal(
        fed,
        doc,
        mallory_org,
        &mallory_key,
        [2; 16],
        heads_outside.clone(),
        c,
    )
    .expect("seal");
    let stranger = Org::new(4242, "Stranger", StakeholderType::Academia, None);
    let c = changes_of(&stranger.secret.public(), [3; 16], "FORGED stranger");
    let unknown = ChangeEnvelope::seal(
        fed,
        doc,
        stranger.id(),
        &stranger.secret,
        [3; 16],
        heads.clone(),
        c,
    )
    .expect("seal");
    // 3. Another organisation's actor id (APC's), signed by Mallory; and APC's authorship claimed with
    // Mallory's key.
    let c = changes_of(&apc_key, [4; 16], "FORGED foreign actor");
    let h = header(mallory_org, &mpub, [4; 16], &heads, &c);
    let foreign_actor = evil::forge_envelope(
        &h,
        &mallory_key.sign(Domain::ChangeEnvelope, &h.encode()),
        &[c[0].raw_bytes()],
    );
    let c = changes_of(&mpub, [5; 16], "FORGED authorship");
    let impostor =
        ChangeEnvelope::seal(fed, doc, apc.org(), &mallory_key, [5; 16], heads.clone(), c)
            .expect("seal");
    // 4. A frame whose length prefix is over the response limit.
    let mut oversized = (MAX_RESPONSE_FRAME_BYTES as u32 + 1).to_be_bytes().to_vec();
    oversized.extend_from_slice(&[0; 1024]);
    // 5. An orphan flood: Mallory's envelopes, each depending on a change nobody has, past the parking quota.
    let flood: Vec<Vec<u8>> = (0..300u64)
        .map(|i| {
            let mut salt = [9u8; 16];
            salt[..8].copy_from_slice(&i.to_be_bytes());
            let mut d = AutoCommit::new().with_actor(automerge_actor(&mpub, &doc, &salt));
            d.put(ROOT, "hidden", i as i64).expect("put");
            d.commit();
            d.put(ROOT, "FORGED orphan", i as i64).expect("put");
            d.commit();
            let c = d.get_last_local_change().expect("change").clone();
            ChangeEnvelope::seal(
                fed,
                doc,
                mallory_org,
                &mallory_key,
                salt,
                heads.clone(),
                vec![c],
            )
            .expect("seal")
            .bytes()
            .to_vec()
        })
        .collect();
    let responses = vec![
        envelopes(vec![unsigned, bare]),
        envelopes(vec![outside.bytes().to_vec(), unknown.bytes().to_vec()]),
        envelopes(vec![foreign_actor, impostor.bytes().to_vec()]),
        oversized,
        envelopes(flood),
    ];
    let attacks = responses.len();

    // The malicious server speaks for Mallory, an admitted member of the team.
    let server = evil::start(itu.peer_id(), boot.clone(), doc, responses);
    let bound = mallory
        .submit(OpKind::BindNode {
            peer_id: server.peer_id.to_bytes(),
        })
        .await
        .expect("bind");
    eventually("ITU pulled every malicious response", || async {
        server.remaining() == 0
            && itu
                .with_docs(|_, d| d.rejected_count(Reject::ParkingFull) > 0)
                .await
    })
    .await;
    assert!(itu.with_gov(|g| g.contains(&bound.id())).await);

    let (counts, stored_authors, parked) = itu
        .with_docs(|_, d| {
            let authors: Vec<_> = d
                .stored_envelope_ids(&doc)
                .iter()
                .filter_map(|id| d.envelope(&doc, id).map(|e| e.header().author))
                .collect();
            (d.rejected_counts().clone(), authors, d.parked_len())
        })
        .await;
    let count = |r: Reject| counts.get(&r).copied().unwrap_or(0);
    assert!(count(Reject::BadSignature) >= 1, "{counts:?}");
    assert!(count(Reject::Malformed) >= 1, "{counts:?}");
    assert!(count(Reject::Unauthorised) >= 3, "{counts:?}");
    assert!(count(Reject::ForeignActor) >= 1, "{counts:?}");
    assert_eq!(count(Reject::ParkingFull), 300 - 256, "{counts:?}");
    assert!(parked <= 256, "the flood is bounded: {parked} parked");
    assert!(
        stored_authors.iter().all(|a| *a == apc.org()),
        "only APC's envelopes are stored: {stored_authors:?}"
    );
    let text = itu
        .with_docs(|_, d| String::from_utf8(d.export(&doc).expect("export")).expect("utf-8"))
        .await;
    assert!(!text.contains("FORGED"), "forged content applied: {text}");
    // The penalty for the last response is sent after the engine's counters move: wait for it.
    eventually("one penalty per malicious response at least", || async {
        let stats = itu.network().stats().await.expect("stats");
        stats
            .peers
            .get(&server.peer_id)
            .is_some_and(|p| p.penalties as usize >= attacks)
    })
    .await;

    // Honest sync goes on: APC's next edit reaches ITU.
    apc.edit(&doc, |tx| tx.put(ROOT, "challenges", "Affordability"))
        .await
        .expect("edit");
    apc.publish(&doc).await.expect("publish");
    eventually("APC's later edit reaches ITU", || async {
        itu.with_docs(|_, d| {
            d.export(&doc)
                .is_ok_and(|j| String::from_utf8_lossy(&j).contains("Affordability"))
        })
        .await
    })
    .await;
    let text = itu
        .with_docs(|_, d| String::from_utf8(d.export(&doc).expect("export")).expect("utf-8"))
        .await;
    assert!(!text.contains("FORGED"), "{text}");
    server.stop();
    for n in [&itu, &apc, &mallory] {
        n.shutdown().await;
    }
}

/// The node is meant for the multi-threaded runtime, but its blocking work (store flushes, restore) also runs on a
/// current-thread one (inline, where `block_in_place` would panic): publish, then restart and restore.
#[tokio::test(flavor = "current_thread")]
async fn a_node_also_runs_on_a_current_thread_runtime() {
    use automerge::transaction::Transactable;
    use wsis_protocol::ids::DocId;
    use wsis_protocol::op::DocKind;

    let tmp = tempfile::tempdir().expect("tempdir");
    let (itu, _, _) = start_secretariat(tmp.path()).await;
    let c2 = TeamCode::new("C2").expect("valid");
    itu.submit(OpKind::JoinTeam { team: c2.clone() })
        .await
        .expect("join team");
    let draft = itu
        .submit(OpKind::CreateDoc {
            kind: DocKind::OutputDraft {
                team: c2,
                year: 2026,
            },
        })
        .await
        .expect("doc");
    let doc = DocId(draft.id().0);
    itu.edit(&doc, |tx| tx.put(automerge::ROOT, "summary", "inline"))
        .await
        .expect("edit");
    assert_eq!(itu.publish(&doc).await.expect("publish"), 1);
    let before = itu.with_docs(|_, d| d.export(&doc).expect("export")).await;
    itu.shutdown().await;
    drop(itu);
    // `shutdown` does not wait for the node's own tasks (the anti-entropy timer holds the store until its next
    // tick): retry until the store's lock is free.
    let start = tokio::time::Instant::now();
    let again = loop {
        let started = Node::start(
            DataDir::open(tmp.path().join("ITU")).expect("reopen"),
            NodeOptions {
                listen: loopback(),
                ..Default::default()
            },
        )
        .await;
        match started {
            Ok(node) => break node,
            Err(wsis_node::node::StartError::Store(e)) if start.elapsed() < DEADLINE => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("restart: {e:?}"),
        }
    };
    let after = again
        .with_docs(|_, d| d.export(&doc).expect("export"))
        .await;
    assert_eq!(after, before);
    again.shutdown().await;
}

/// The ops of the penalty tests: a structurally invalid op signed with its author's real key (a procedure
/// motion whose teams are not sorted: `OpBody::sign` signs without validating, as the local path once did), and
/// the inception of a fresh organisation citing the genesis, valid, which a peer relays.
mod bad_ops {
    use wsis_protocol::fixture::Org;
    use wsis_protocol::ids::{FederationId, OpId};
    use wsis_protocol::op::{MotionKind, OpKind, Procedure, StakeholderType, TeamCode};

    pub fn inception(fed: FederationId, seed: u64) -> Vec<u8> {
        let mut org = Org::new(seed, "Relayed", StakeholderType::Academia, None);
        let kind = OpKind::OrgInception(org.inception.clone());
        org.sign(Some(fed), &[OpId(fed.0)], kind, seed)
            .bytes()
            .to_vec()
    }

    /// The author's inception, then `n` distinct unsorted-teams motions (each signed by it at seq 2), then one
    /// op that descends from the first motion.
    pub fn signed_by_one_author(fed: FederationId, n: u64) -> (Vec<u8>, Vec<Vec<u8>>, Vec<u8>) {
        let mut org = Org::new(7_000, "Careless", StakeholderType::CivilSociety, None);
        let kind = OpKind::OrgInception(org.inception.clone());
        let incepted = org.sign(Some(fed), &[OpId(fed.0)], kind, 1);
        let team = |c: &str| TeamCode::new(c).expect("valid");
        let bad: Vec<_> = (0..n)
            .map(|i| {
                org.next_seq = 2;
                org.sign(
                    Some(fed),
                    &[incepted.id()],
                    OpKind::Motion {
                        meeting: incepted.id(),
                        motion: MotionKind::AdoptProcedure(Procedure {
                            year: 2026,
                            teams: vec![team("C7"), team("C2")],
                            deadline_ms: i,
                            required_sections: vec![],
                            national_reports: false,
                        }),
                    },
                    2 + i,
                )
            })
            .collect();
        let after = org.sign(
            Some(fed),
            &[bad[0].id()],
            OpKind::LeaveTeam { team: team("C2") },
            100,
        );
        (
            incepted.bytes().to_vec(),
            bad.iter().map(|o| o.bytes().to_vec()).collect(),
            after.bytes().to_vec(),
        )
    }
}

/// Syncs `node` with `server` until the inception `inception` waits at `node` for admission, then has `node` (a
/// secretariat's) admit its organisation, so that the organisation's other ops count from then on.
async fn admit_when_held(node: &Node, server: &evil::Server, inception: &[u8]) {
    let org = wsis_protocol::op::SignedOp::decode(inception)
        .expect("decodes")
        .author();
    eventually("the inception waits for admission", || async {
        let _ = node.sync_with(server.peer_id).await;
        node.with_gov(|g| g.org(&org).is_some()).await
    })
    .await;
    node.submit(OpKind::Admit { org }).await.expect("admit");
    assert!(
        node.with_gov(|g| g.is_member(&org)).await,
        "the organisation is admitted"
    );
}

/// Waits until `server` is connected to `node`.
async fn connected(node: &Node, server: &evil::Server) {
    eventually("the server is connected", || async {
        node.network()
            .connected_peers()
            .await
            .is_ok_and(|p| p.contains(&server.peer_id))
    })
    .await;
}

/// Issue 10 (deliverable 4): a peer whose DAG holds one invalid op serves it at every sync (its victim never
/// accepts it, so never has it). It is refused and penalised once, then skipped: through ten sync rounds (what
/// each anti-entropy round does with a peer, driven here one by one) the peer stays connected with one penalty,
/// the op that descends from the bad one is dropped without being asked for the bad parent by id, and the valid
/// ops the peer relays, one more each round, all arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_serving_one_invalid_op_is_penalised_once_and_its_valid_ops_keep_arriving() {
    use wsis_protocol::ids::OpId;
    let tmp = tempfile::tempdir().expect("tempdir");
    let (itu, fed, boot) = start_secretariat(tmp.path()).await;
    let (incepted, bad, after) = bad_ops::signed_by_one_author(fed, 1);
    let server = evil::start(
        itu.peer_id(),
        boot.clone(),
        wsis_protocol::ids::DocId([0; 32]),
        vec![],
    );
    for op in [incepted.clone(), bad[0].clone(), after.clone()] {
        server.serve_op(op);
    }
    connected(&itu, &server).await;
    admit_when_held(&itu, &server, &incepted).await;
    for round in 0..10u64 {
        let relayed = bad_ops::inception(fed, 9_000 + round);
        server.serve_op(relayed.clone());
        itu.sync_with(server.peer_id)
            .await
            .unwrap_or_else(|e| panic!("round {round}: the sync failed: {e}"));
        // A relayed inception waits for admission outside the DAG; the secretariat admits it.
        assert!(
            itu.with_gov(|g| g.is_pending(&OpId::of_bytes(&relayed)))
                .await,
            "round {round}: the relayed op arrived"
        );
        admit_when_held(&itu, &server, &relayed).await;
    }
    assert!(
        itu.with_gov(|g| g.contains(&OpId::of_bytes(&incepted)))
            .await
    );
    for op in [&bad[0], &after] {
        assert!(!itu.with_gov(|g| g.contains(&OpId::of_bytes(op))).await);
    }
    assert_eq!(
        itu.with_gov(|g| g.parked_len()).await,
        0,
        "nothing waits for the bad op"
    );
    assert!(
        !server
            .asked
            .lock()
            .expect("lock")
            .contains(&OpId::of_bytes(&bad[0])),
        "the refused op is not fetched by id"
    );
    let stats = itu.network().stats().await.expect("stats");
    let peer = stats.peers.get(&server.peer_id).expect("tracked");
    assert_eq!(peer.penalties, 1, "{peer:?}");
    assert!(peer.connected && !peer.banned, "{peer:?}");
    assert_eq!(itu.stats().ops_refused, 1);
    server.stop();
    itu.shutdown().await;
}

/// Issue 10 (deliverable 4), the other side: remembering refusals does not shelter a peer that serves many
/// distinct invalid ops; each is a fault of its own, and the peer is banned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_serving_many_distinct_invalid_ops_is_still_banned() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (itu, fed, boot) = start_secretariat(tmp.path()).await;
    let (incepted, bad, _) = bad_ops::signed_by_one_author(fed, 12);
    let server = evil::start(
        itu.peer_id(),
        boot.clone(),
        wsis_protocol::ids::DocId([0; 32]),
        vec![],
    );
    server.serve_op(incepted);
    for op in bad {
        server.serve_op(op);
    }
    // The sync on connection pulls them (and bans the peer, perhaps before a test could see it connected): they do
    // not decode, and garbage is refused and penalised whoever sends it, admitted or not.
    eventually("the peer is banned", || async {
        let stats = itu.network().stats().await.expect("stats");
        stats.peers.get(&server.peer_id).is_some_and(|p| p.banned)
    })
    .await;
    server.stop();
    itu.shutdown().await;
}

/// Issue 10 (deliverable 4), for change envelopes: a peer that serves the same refused envelope at every sync
/// (it never enters the victim's heads) is penalised once; through ten sync rounds it stays connected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_serving_one_refused_envelope_is_penalised_once() {
    use wsis_node::net::SyncResponse;
    use wsis_protocol::ids::DocId;
    use wsis_protocol::op::DocKind;
    let tmp = tempfile::tempdir().expect("tempdir");
    let (itu, _fed, boot) = start_secretariat(tmp.path()).await;
    let c2 = TeamCode::new("C2").expect("valid");
    itu.submit(OpKind::JoinTeam { team: c2.clone() })
        .await
        .expect("join team");
    let created = itu
        .submit(OpKind::CreateDoc {
            kind: DocKind::OutputDraft {
                team: c2,
                year: 2026,
            },
        })
        .await
        .expect("doc");
    let doc = DocId(created.id().0);
    assert!(itu.with_gov(|g| g.document(&doc).is_some()).await);
    // Not an envelope at all: refused by the strict decoder, the sender's fault.
    let bad = evil::frame(&SyncResponse::Envelopes {
        envelopes: vec![vec![0xA5; 64]],
        more: false,
    });
    let server = evil::start(itu.peer_id(), boot.clone(), doc, vec![bad; 10]);
    connected(&itu, &server).await;
    eventually("ten rounds served", || async {
        let _ = itu.sync_with(server.peer_id).await;
        server.remaining() == 0
    })
    .await;
    let stats = itu.network().stats().await.expect("stats");
    let peer = stats.peers.get(&server.peer_id).expect("tracked");
    assert_eq!(peer.penalties, 1, "{peer:?}");
    assert!(peer.connected && !peer.banned, "{peer:?}");
    server.stop();
    itu.shutdown().await;
}
