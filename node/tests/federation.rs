//! Several nodes in one test process over loopback TCP: a federation is created, organisations join through a
//! bootstrap peer, the secretariat admits them, governance ops made on different nodes converge to the same
//! replayed state everywhere; a restarted node catches up from its data directory; an unadmitted peer is refused.
//!
//! Waiting uses polling with a generous deadline so a slow machine only makes the test slower, never flaky; no
//! assertion is about time.

use std::time::Duration;
use wsis_node::identity::{DataDir, InitOptions};
use wsis_node::net::Multiaddr;
use wsis_node::runtime::{create_federation, Node, NodeOptions};
use wsis_protocol::ids::FederationId;
use wsis_protocol::op::{Country, OpKind, StakeholderType, TeamCode};

const DEADLINE: Duration = Duration::from_secs(120);

fn loopback() -> Vec<Multiaddr> {
    vec!["/ip4/127.0.0.1/tcp/0".parse().expect("valid multiaddr")]
}

fn init(root: &std::path::Path, name: &str, st: StakeholderType, country: Option<&str>) -> DataDir {
    DataDir::init(
        root.join(name),
        InitOptions {
            name: name.into(),
            stakeholder: st,
            country: country.map(|c| Country::new(c).expect("valid")),
        },
    )
    .expect("init")
}

async fn address_of(node: &Node) -> Multiaddr {
    let start = tokio::time::Instant::now();
    loop {
        let addrs = node.network().listen_addrs().await.expect("net running");
        if let Some(a) = addrs
            .into_iter()
            .find(|a| a.to_string().contains("127.0.0.1"))
        {
            return format!("{a}/p2p/{}", node.peer_id())
                .parse()
                .expect("valid");
        }
        assert!(start.elapsed() < DEADLINE, "node never listened");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls `check` until it holds, failing with `what` at the deadline.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = tokio::time::Instant::now();
    while !check().await {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn start_secretariat(root: &std::path::Path) -> (Node, FederationId, Multiaddr) {
    let mut dir = init(
        root,
        "ITU",
        StakeholderType::InternationalOrganisation,
        None,
    );
    let fed = create_federation(
        &mut dir,
        "WSIS test",
        wsis_protocol::reference::wsis_teams(),
        vec![],
    )
    .await
    .expect("genesis");
    let node = Node::start(
        dir,
        NodeOptions {
            listen: loopback(),
            ..Default::default()
        },
    )
    .await
    .expect("start");
    let addr = address_of(&node).await;
    (node, fed, addr)
}

async fn join(
    root: &std::path::Path,
    name: &str,
    st: StakeholderType,
    country: Option<&str>,
    fed: FederationId,
    boot: &Multiaddr,
) -> Node {
    let dir = init(root, name, st, country);
    Node::start(
        dir,
        NodeOptions {
            listen: loopback(),
            bootstrap: vec![boot.clone()],
            join: Some(fed),
            ..Default::default()
        },
    )
    .await
    .expect("join")
}

async fn digest(n: &Node) -> [u8; 32] {
    n.with_gov(|g| g.digest()).await
}

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
    let itu_org = itu.org();
    let learned = outsider
        .with_gov(|g| g.ops().filter(|op| op.author() == itu_org).count())
        .await;
    assert_eq!(
        learned, 1,
        "only the genesis (signed by ITU) reached the unadmitted node"
    );
    assert!(
        itu.stats().requests_refused > 0,
        "the secretariat refused the outsider's sync requests"
    );
    itu.shutdown().await;
    outsider.shutdown().await;
}

/// Catalogue cases 29, 7/8 at the node, and the malicious-peer test: an admitted organisation's node
/// pushes forged and unauthorised ops and an orphan flood; nothing forged is stored or applied, invalid ones have
/// no effect, the peer is penalised, and honest sync goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malicious_peer_is_refused_penalised_and_honest_sync_goes_on() {
    use wsis_node::net::{SyncRequest, SyncResponse};
    use wsis_protocol::fixture::Org;
    use wsis_protocol::ids::OpId;

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
        let org = n.org();
        eventually("inception reaches the secretariat", || async {
            itu.with_gov(|g| g.org(&org).is_some()).await
        })
        .await;
        itu.submit(OpKind::Admit { org }).await.expect("admit");
    }
    let evil_org = evil.org();
    eventually("the malicious org is admitted on its node", || async {
        evil.with_gov(|g| g.is_member(&evil_org)).await
    })
    .await;

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
    let mut orphans = Vec::new();
    for i in 0..50u8 {
        let mut o = Org::new(5000 + i as u64, "Ghost", StakeholderType::Academia, None);
        orphans.push(
            o.sign(
                Some(fed),
                &[OpId([i; 32])],
                OpKind::OrgInception(o.inception.clone()),
                0,
            )
            .bytes()
            .to_vec(),
        );
    }
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
    let org = apc.org();
    eventually("inception", || async {
        itu.with_gov(|g| g.org(&org).is_some()).await
    })
    .await;
    itu.submit(OpKind::Admit { org }).await.expect("admit");
    eventually("admitted", || async {
        apc.with_gov(|g| g.is_member(&org)).await
    })
    .await;

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
        let org = n.org();
        eventually("inception", || async {
            itu.with_gov(|g| g.org(&org).is_some()).await
        })
        .await;
        itu.submit(OpKind::Admit { org }).await.expect("admit");
        eventually("admitted", || async {
            n.with_gov(|g| g.is_member(&org)).await
        })
        .await;
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
