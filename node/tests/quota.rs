//! Issue 14, defect 4 ("no quotas"), at engine level: the storage quotas per (author, document) in bytes and in
//! envelopes, the document budget per author, nothing over a quota ever stored, and an honest author unaffected
//! by another's flood. The same attack against live nodes is `node/tests/quota_live.rs`.
#![allow(clippy::unwrap_used)]

use automerge::transaction::Transactable;
use automerge::{AutoCommit, Change, ROOT};
use rand::{Rng, SeedableRng};
use wsis_node::engine::{
    DocumentEngine, MemorySink, Peer, PublishError, QuotaKind, QuotaLimits, ReceiveError, Received,
    Reject,
};
use wsis_protocol::envelope::{automerge_actor, ChangeEnvelope, SignedEnvelope};
use wsis_protocol::fixture::World;
use wsis_protocol::gov::{Invalid, WriteDenied};
use wsis_protocol::ids::DocId;
use wsis_protocol::limits::{MAX_AUTHOR_DOC_BYTES, MAX_CHANGE_BYTES, MAX_DOCS_PER_ORG};
use wsis_protocol::op::{DocKind, OpKind};

/// APC (the attacker) and Acme (honest) are members of team C2, which has an output draft created by Acme.
struct Fed {
    w: World,
    apc: usize,
    acme: usize,
    doc: DocId,
}

fn federation() -> Fed {
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
    let doc = DocId(w.op(acme, OpKind::CreateDoc { kind }).id().0);
    Fed { w, apc, acme, doc }
}

fn engine(w: &World, org: usize) -> DocumentEngine {
    DocumentEngine::new(
        w.federation,
        w.id(org),
        w.secret_of(org),
        MemorySink::default(),
    )
}

/// A member writing straight through Automerge (no engine, so no quota of its own stops it): each call makes
/// one change and seals it into one envelope, under one session salt.
struct Flooder {
    doc: AutoCommit,
    salt: [u8; 16],
    rng: rand::rngs::StdRng,
}

impl Flooder {
    fn new(f: &Fed, salt: u8) -> Flooder {
        let salt = [salt; 16];
        let actor = automerge_actor(&f.w.secret_of(f.apc).public(), &f.doc, &salt);
        Flooder {
            doc: AutoCommit::new().with_actor(actor),
            salt,
            rng: rand::rngs::StdRng::seed_from_u64(salt[0] as u64),
        }
    }

    /// An envelope carrying one change that puts `len` random letters (incompressible enough) under a key.
    fn envelope(&mut self, f: &Fed, len: usize) -> SignedEnvelope {
        let text: String = (0..len)
            .map(|_| self.rng.sample(rand::distributions::Alphanumeric) as char)
            .collect();
        self.doc.put(ROOT, "payload", text).unwrap();
        let change: Change = self.doc.get_last_local_change().unwrap().clone();
        ChangeEnvelope::seal(
            f.w.federation,
            f.doc,
            f.w.id(f.apc),
            &f.w.secret_of(f.apc),
            self.salt,
            f.w.gov.heads(),
            vec![change],
        )
        .unwrap()
    }
}

fn stored_bytes(e: &DocumentEngine, doc: &DocId) -> u64 {
    e.sink().envelopes_of(doc).map(|b| b.len() as u64).sum()
}

fn accepted(r: Result<Received, ReceiveError>) {
    assert!(matches!(r, Ok(Received::Accepted(_))), "{r:?}");
}

#[test]
fn quota_bytes_per_author_and_document_refuse_the_flood_and_nothing_over_it_is_stored() {
    let f = federation();
    let mut victim = engine(&f.w, f.acme);
    let mut apc = Flooder::new(&f, 1);
    let peer = Peer::new(b"attacker");
    // Changes of 0.9 MiB: the quota (one largest envelope, 8 MiB) takes eight of them and a little more.
    let len = MAX_CHANGE_BYTES * 9 / 10;
    let (mut accepted_count, mut stored) = (0u64, 0u64);
    let err = loop {
        let env = apc.envelope(&f, len);
        match victim.receive(&f.w.gov, &peer, env.bytes()) {
            Ok(Received::Accepted(_)) => {
                accepted_count += 1;
                stored += env.bytes().len() as u64;
            }
            Ok(other) => panic!("{other:?}"),
            Err(e) => {
                // Refused exactly when it would pass the quota.
                assert!(stored + env.bytes().len() as u64 > MAX_AUTHOR_DOC_BYTES);
                break e;
            }
        }
        assert!(accepted_count < 100, "never refused");
    };
    assert!(accepted_count >= 8, "{accepted_count}");
    let ReceiveError::OverQuota(q) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(q.kind, QuotaKind::DocumentBytes);
    assert_eq!(q.author, f.w.id(f.apc));
    assert!(q.would_have > MAX_AUTHOR_DOC_BYTES);
    assert_eq!(err.reason(), Some(Reject::OverQuota));
    assert!(err.penalises());
    assert_eq!(
        victim.rejected_counts().get(&Reject::OverQuota).copied(),
        Some(1)
    );

    // Nothing over the quota was stored, and the usage reported is what is stored.
    let stored = stored_bytes(&victim, &f.doc);
    assert!(stored <= MAX_AUTHOR_DOC_BYTES, "{stored}");
    assert_eq!(victim.sink().len() as u64, accepted_count);
    let usage = victim.quota_of(&f.w.id(f.apc));
    assert_eq!(usage.documents.len(), 1);
    assert_eq!(usage.documents[0].1.bytes, stored);
    assert_eq!(usage.documents[0].1.envelopes, accepted_count);
    assert_eq!(usage.total.bytes, stored);
    assert_eq!(victim.quotas_nearest(1)[0].author, f.w.id(f.apc));

    // The honest author, in the same document, is unaffected.
    let mut acme = engine(&f.w, f.acme);
    acme.edit(&f.doc, |tx| {
        tx.put(ROOT, "summary", "Connectivity in 12 countries")
    })
    .unwrap();
    for env in acme.publish(&f.w.gov, &f.doc).unwrap() {
        accepted(victim.receive(&f.w.gov, &Peer::new(b"acme"), env.bytes()));
    }
    assert_eq!(victim.sink().len() as u64, accepted_count + 1);
    assert!(victim
        .export(&f.doc)
        .is_ok_and(|j| String::from_utf8_lossy(&j).contains("12 countries")));
    assert_eq!(victim.quota_of(&f.w.id(f.acme)).documents[0].1.envelopes, 1);
}

/// The count quota with a limit of 200 instead of the protocol's 16,384 (`with_quota_limits`, tests only): the
/// same check, reached without sixteen thousand envelopes. The protocol's numbers are checked by
/// `node/src/engine/quota.rs::each_quota_refuses_the_envelope_that_would_pass_it_and_nothing_before`.
#[test]
fn quota_envelopes_per_author_and_document_refuse_past_the_count() {
    const LIMIT: u64 = 200;
    let f = federation();
    let mut victim = engine(&f.w, f.acme).with_quota_limits(QuotaLimits {
        doc_envelopes: LIMIT,
        ..QuotaLimits::default()
    });
    let mut apc = Flooder::new(&f, 2);
    let peer = Peer::new(b"attacker");
    // In one batch, as a sync response is received: the batch stops storing at the quota.
    let batch: Vec<SignedEnvelope> = (0..LIMIT + 2).map(|_| apc.envelope(&f, 8)).collect();
    let results = victim.receive_batch(&f.w.gov, &peer, batch.iter().map(|e| e.bytes()));
    for r in &results[..LIMIT as usize] {
        assert!(matches!(r, Ok(Received::Accepted(_))), "{r:?}");
    }
    for r in &results[LIMIT as usize..] {
        let Err(err @ ReceiveError::OverQuota(q)) = r else {
            panic!("{r:?}")
        };
        assert_eq!(q.kind, QuotaKind::DocumentEnvelopes);
        assert_eq!((q.would_have, q.max), (LIMIT + 1, LIMIT));
        assert!(err.penalises());
    }
    assert_eq!(victim.sink().len() as u64, LIMIT);
    assert_eq!(
        victim.quota_of(&f.w.id(f.apc)).documents[0].1.envelopes,
        LIMIT
    );
    // The honest author is unaffected.
    let mut acme = engine(&f.w, f.acme);
    acme.edit(&f.doc, |tx| tx.put(ROOT, "summary", "Connectivity"))
        .unwrap();
    for env in acme.publish(&f.w.gov, &f.doc).unwrap() {
        accepted(victim.receive(&f.w.gov, &Peer::new(b"acme"), env.bytes()));
    }
}

#[test]
fn quota_usage_survives_a_restart_and_this_nodes_own_publish_is_refused_past_it() {
    let f = federation();
    let mut apc = engine(&f.w, f.apc);
    let len = MAX_CHANGE_BYTES * 9 / 10;
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let mut text = |len: usize| -> String {
        (0..len)
            .map(|_| rng.sample(rand::distributions::Alphanumeric) as char)
            .collect()
    };
    // Publish 0.9 MiB at a time until this node's own judge refuses: exactly as a peer would refuse it, and
    // rolled back.
    let mut published = 0;
    let err = loop {
        let t = text(len);
        apc.edit(&f.doc, |tx| tx.put(ROOT, "payload", t)).unwrap();
        match apc.publish(&f.w.gov, &f.doc) {
            Ok(_) => published += 1,
            Err(e) => break e,
        }
        assert!(published < 100, "never refused");
    };
    assert!(
        matches!(
            err,
            PublishError::Refused {
                reason: ReceiveError::OverQuota(_),
                discarded: 1
            }
        ),
        "{err:?}"
    );
    assert_eq!(apc.sink().len(), published);
    assert_eq!(apc.unpublished_len(&f.doc), 0);

    // After a restart the usage is counted again from the store: the quota is still full.
    let before = apc.quota_of(&f.w.id(f.apc));
    let stored: Vec<Vec<u8>> = apc.sink().all().map(<[u8]>::to_vec).collect();
    let mut restarted = engine(&f.w, f.apc);
    let report = restarted.restore(&f.w.gov, &stored);
    assert_eq!(report.accepted, published);
    assert_eq!(restarted.quota_of(&f.w.id(f.apc)), before);
    let t = text(len);
    restarted
        .edit(&f.doc, |tx| tx.put(ROOT, "payload", t))
        .unwrap();
    assert!(matches!(
        restarted.publish(&f.w.gov, &f.doc),
        Err(PublishError::Refused {
            reason: ReceiveError::OverQuota(_),
            ..
        })
    ));
}

#[test]
fn document_budget_a_create_doc_past_the_budget_is_invalid_and_its_document_unwritable() {
    let mut w = World::wsis();
    let kenya = w.add_org("Kenya", "government", Some("KE"));
    let other = w.add_org("Acme", "private-sector", None);
    w.admit(kenya);
    w.admit(other);
    w.op(other, OpKind::JoinTeam { team: w.team("C2") });
    let report = |year: u16| DocKind::NationalReport {
        country: wsis_protocol::op::Country::new("KE").unwrap(),
        year,
    };
    for year in 2000..2000 + MAX_DOCS_PER_ORG as u16 {
        let op = w.op(kenya, OpKind::CreateDoc { kind: report(year) });
        assert_eq!(w.gov.validity(&op.id()), Some(Ok(())));
    }
    let over = w.op(
        kenya,
        OpKind::CreateDoc {
            kind: report(2000 + MAX_DOCS_PER_ORG as u16),
        },
    );
    assert_eq!(
        w.gov.validity(&over.id()),
        Some(Err(Invalid::DocumentBudget))
    );
    assert_eq!(w.gov.docs_created_by(&w.id(kenya)), MAX_DOCS_PER_ORG);

    // The same answer from a replica that receives the ops in another order (the budget counts the op's history).
    let mut replica =
        wsis_protocol::gov::Governance::new(w.log[0].clone().verify().unwrap()).unwrap();
    // An op whose author is not known yet is refused as transient (not parked): delivered again, as a sync would.
    let mut pending: Vec<_> = w.log[1..].iter().rev().collect();
    loop {
        let before = pending.len();
        pending.retain(|op| {
            matches!(replica.insert((*op).clone().verify().unwrap()), Err(e) if e.is_transient())
        });
        if pending.is_empty() || pending.len() == before {
            break;
        }
    }
    assert_eq!(
        replica.validity(&over.id()),
        Some(Err(Invalid::DocumentBudget))
    );

    // Nobody can write the document the invalid op names; another organisation still creates documents.
    let doc = DocId(over.id().0);
    let mut e = engine(&w, kenya);
    e.edit(&doc, |tx| tx.put(ROOT, "title", "over budget"))
        .unwrap();
    assert!(matches!(
        e.publish(&w.gov, &doc),
        Err(PublishError::Refused {
            reason: ReceiveError::Denied(WriteDenied::UnknownDocument),
            ..
        })
    ));
    let kind = DocKind::OutputDraft {
        team: w.team("C2"),
        year: 2026,
    };
    let fine = w.op(other, OpKind::CreateDoc { kind });
    assert_eq!(w.gov.validity(&fine.id()), Some(Ok(())));
}
