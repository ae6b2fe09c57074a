//! Issue 14, defect 4 ("no quotas"), against live nodes over loopback (real libp2p, real sled): an admitted member
//! pushes ~21 MiB into one document in three well-signed envelopes, served by its own sync server. The victim
//! stores the first, refuses the other two over the author's quota (and penalises the server), and its store
//! holds no more than the quota of that author's envelopes (its database grows by one envelope, not three). The victim's memory and database size before and
//! after are printed (figures in docs/performance.md, "Quotas"); nothing here asserts a time.
#![allow(clippy::unwrap_used)]

mod common;

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ROOT};
use common::evil;
use common::nodes::{admit, eventually, start_secretariat};
use common::{init, loopback};
use rand::{Rng, SeedableRng};
use wsis_node::engine::Reject;
use wsis_node::net::SyncResponse;
use wsis_node::node::{Node, NodeOptions};
use wsis_protocol::crypto::SecretKey;
use wsis_protocol::envelope::{automerge_actor, ChangeEnvelope};
use wsis_protocol::ids::DocId;
use wsis_protocol::limits::{MAX_AUTHOR_DOC_BYTES, MAX_CHANGE_BYTES, MAX_ENVELOPE_BYTES};
use wsis_protocol::op::{DocKind, OpKind, StakeholderType, TeamCode};

/// `VmHWM` (peak resident set) and `VmRSS` of this process, in KiB (zero where /proc is not there).
fn memory_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// Bytes of every file under `dir`.
fn dir_bytes(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_live_a_member_pushing_21_mib_into_a_document_is_refused_past_its_quota() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (itu, fed, boot) = start_secretariat(tmp.path()).await;
    let victim_db = tmp.path().join("ITU").join("db");
    let dir = init(
        tmp.path(),
        "Mallory Inc",
        StakeholderType::PrivateSector,
        None,
    );
    let mallory_key = SecretKey::from_seed(&dir.org_key().to_seed());
    let mallory = Node::start(
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
    admit(&itu, &mallory).await;
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
    let id = created.id();
    eventually("ITU knows the document", || async {
        itu.with_gov(|g| g.contains(&id) && g.document(&doc).is_some())
            .await
    })
    .await;
    let heads = itu.with_gov(|g| g.heads()).await;

    // Three envelopes of seven changes of ~1 MB of random letters each (~7 MiB an envelope, ~21 MiB in all),
    // one change chain under one salt, each envelope in its own sync response.
    let salt = [7u8; 16];
    let mut d = AutoCommit::new().with_actor(automerge_actor(&mallory_key.public(), &doc, &salt));
    let mut rng = rand::rngs::StdRng::seed_from_u64(14);
    let mut pushed = 0usize;
    let responses: Vec<Vec<u8>> = (0..3)
        .map(|_| {
            let changes = (0..7)
                .map(|_| {
                    let text: String = (0..MAX_CHANGE_BYTES - 48 * 1024)
                        .map(|_| rng.sample(rand::distributions::Alphanumeric) as char)
                        .collect();
                    d.put(ROOT, "payload", text).expect("put");
                    d.get_last_local_change().expect("change").clone()
                })
                .collect();
            let env = ChangeEnvelope::seal(
                fed,
                doc,
                mallory.org(),
                &mallory_key,
                salt,
                heads.clone(),
                changes,
            )
            .expect("seal");
            assert!(env.bytes().len() <= MAX_ENVELOPE_BYTES);
            pushed += env.bytes().len();
            evil::frame(&SyncResponse::Envelopes {
                envelopes: vec![env.bytes().to_vec()],
                more: false,
            })
        })
        .collect();
    drop(d);

    let (hwm_before, rss_before) = memory_kib();
    let db_before = dir_bytes(&victim_db);

    let server = evil::start(itu.peer_id(), boot.clone(), doc, responses);
    mallory
        .submit(OpKind::BindNode {
            peer_id: server.peer_id.to_bytes(),
        })
        .await
        .expect("bind");
    eventually("ITU pulled all three envelopes", || async {
        let _ = itu.sync_with(server.peer_id).await;
        server.remaining() == 0
            && itu
                .with_docs(|_, d| d.rejected_count(Reject::OverQuota) >= 2)
                .await
    })
    .await;

    let (hwm_after, rss_after) = memory_kib();
    let db_after = dir_bytes(&victim_db);
    let usage = itu.with_docs(|_, d| d.quota_of(&mallory.org())).await;
    println!(
        "quota_live: pushed {pushed} bytes in 3 envelopes; stored for the author {} bytes in {} envelopes \
         (quota {MAX_AUTHOR_DOC_BYTES}); VmHWM {hwm_before} -> {hwm_after} KiB, VmRSS {rss_before} -> \
         {rss_after} KiB (the whole test process: victim, attacker node, malicious server); victim database \
         {db_before} -> {db_after} bytes",
        usage.total.bytes, usage.total.envelopes
    );
    assert_eq!(usage.total.envelopes, 1, "{usage:?}");
    assert!(usage.total.bytes <= MAX_AUTHOR_DOC_BYTES, "{usage:?}");
    assert_eq!(
        itu.with_docs(|_, d| d.rejected_count(Reject::OverQuota))
            .await,
        2
    );
    eventually("the server is penalised", || async {
        let stats = itu.network().stats().await.expect("stats");
        stats
            .peers
            .get(&server.peer_id)
            .is_some_and(|p| p.penalties >= 1)
    })
    .await;
    // What the victim stores for the document: the one envelope within the quota, nothing of the other two.
    let (stored, bytes) = itu
        .with_docs(|_, d| {
            let ids = d.stored_envelope_ids(&doc);
            let bytes: usize = ids
                .iter()
                .filter_map(|id| d.envelope(&doc, id).map(|e| e.bytes().len()))
                .sum();
            (ids.len(), bytes)
        })
        .await;
    assert_eq!(stored, 1);
    assert!(bytes as u64 <= MAX_AUTHOR_DOC_BYTES, "{bytes}");
    assert!(
        db_after - db_before < pushed as u64 / 2,
        "the database grew by {} bytes for {pushed} pushed",
        db_after - db_before
    );
    // `GET /v1/status` names the attacker as the organisation nearest its limits, with what it stored.
    let (addr, stop, api) = common::http::serve_api(&itu, "quota-token").await;
    let (code, body) = common::http::call(addr, "GET", "/v1/status", "quota-token", "").await;
    assert_eq!(code, 200, "{body}");
    let status: wsis_node::api::types::Status = serde_json::from_str(&body).expect("status json");
    let top = status.quotas.nearest.first().expect("a row");
    assert_eq!(top.org, mallory.org().to_string(), "{:?}", status.quotas);
    assert_eq!(top.fullest_doc, Some(doc.to_string()));
    assert_eq!((top.doc_bytes, top.doc_envelopes), (bytes as u64, 1));
    assert_eq!(top.doc_bytes_quota, MAX_AUTHOR_DOC_BYTES);
    assert_eq!(top.docs_created, 1);
    assert!(top.fill_permille >= 800, "{top:?}");
    assert_eq!(status.quotas.own.bytes, 0, "ITU wrote nothing");
    let _ = stop.send(());
    let _ = api.await;
    server.stop();
    for n in [&itu, &mallory] {
        n.shutdown().await;
    }
}
