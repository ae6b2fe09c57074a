//! Attack catalogue, document authorisation under governance changes, engine layer: issue 11 defect 5 (revoking
//! a member erased its finalised, attested text from every node, and the Chair could no longer assemble the year)
//! and issue 14 defect 7 (an organisation that left a team kept writing its draft by citing heads from before it
//! left). The governance side is `protocol/tests/catalogue_document_finality.rs`.
//!
//! Every case runs the same envelopes through engines that learn the governance ops in different orders, and
//! checks that they end with the same document (export, heads and served-envelope digest).
#![allow(clippy::unwrap_used)]

use automerge::transaction::Transactable;
use automerge::{ObjType, ReadDoc, ROOT};
use std::collections::BTreeMap;
use wsis_node::engine::{
    DocumentEngine, EnvelopeStatus, MemorySink, Peer, PublishError, ReceiveError, Received,
};
use wsis_protocol::bundle::{self, verify};
use wsis_protocol::envelope::SignedEnvelope;
use wsis_protocol::fixture::World;
use wsis_protocol::gov::{Governance, WriteDenied};
use wsis_protocol::ids::{DocId, Hash32};
use wsis_protocol::op::{
    Attestation, ChairRole, DocKind, MotionKind, OpKind, Procedure, RevocableRole, SignedOp,
};

const YEAR: u16 = 2026;

/// A year in which ITU coordinates C2 and UNDESA C1 and chairs; APC, Acme and Kenya are C2 members, and APC has
/// created C2's output draft.
struct Year {
    w: World,
    undesa: usize,
    apc: usize,
    acme: usize,
    kenya: usize,
    doc: DocId,
    coordinators: SignedOp,
}

fn year() -> Year {
    let mut w = World::wsis();
    let undesa = w.add_org("UNDESA", "international-organisation", None);
    let apc = w.add_org("APC", "civil-society", None);
    let acme = w.add_org("Acme", "private-sector", None);
    let kenya = w.add_org("Kenya", "government", Some("KE"));
    for o in [undesa, apc, acme, kenya] {
        w.admit(o);
    }
    w.recommend_and_nominate("C2", 0, &[undesa, apc, kenya]);
    w.recommend_and_nominate("C1", undesa, &[undesa, apc, kenya]);
    for o in [apc, acme, kenya] {
        w.op(o, OpKind::JoinTeam { team: w.team("C2") });
    }
    let coordinators = w.coordinators_meeting();
    w.pass_motion(
        &coordinators,
        MotionKind::Elect {
            role: ChairRole::Chair,
            org: w.id(undesa),
        },
        &[0, undesa],
    );
    w.pass_motion(
        &coordinators,
        MotionKind::AdoptProcedure(Procedure {
            year: YEAR,
            teams: vec![w.team("C1"), w.team("C2")],
            deadline_ms: 1_700_000_000_000 + 10_000_000_000,
            required_sections: vec!["achievements".into(), "challenges".into()],
            national_reports: false,
        }),
        &[0, undesa],
    );
    let kind = DocKind::OutputDraft {
        team: w.team("C2"),
        year: YEAR,
    };
    let doc = DocId(w.op(apc, OpKind::CreateDoc { kind }).id().0);
    assert!(w.gov.invalid_ops().is_empty(), "{:?}", w.gov.invalid_ops());
    Year {
        w,
        undesa,
        apc,
        acme,
        kenya,
        doc,
        coordinators,
    }
}

fn engine(w: &World, org: usize) -> DocumentEngine {
    DocumentEngine::new(
        w.federation,
        w.id(org),
        w.secret_of(org),
        MemorySink::default(),
    )
}

fn peer(n: u8) -> Peer {
    Peer::new(&[n; 38])
}

/// A replica holding `ops`, inserted in that order.
fn replay(w: &World, ops: &[&SignedOp]) -> Governance {
    let mut g = Governance::new(w.log[0].clone().verify().unwrap()).unwrap();
    for op in ops {
        let _ = g.insert((*op).clone().verify().unwrap());
    }
    g
}

fn prefix(w: &World, n: usize) -> Governance {
    replay(w, &w.log[..n].iter().collect::<Vec<_>>())
}

/// Writes `text` as the Text section `key` (making the `sections` map first if the document has none).
fn write(e: &mut DocumentEngine, doc: &DocId, key: &str, text: &str) {
    e.edit(doc, |tx| {
        let sections = match tx.get(ROOT, "sections")? {
            Some((_, id)) => id,
            None => tx.put_object(ROOT, "sections", ObjType::Map)?,
        };
        let t = tx.put_object(&sections, key, ObjType::Text)?;
        tx.splice_text(&t, 0, 0, text)
    })
    .unwrap();
}

fn publish(e: &mut DocumentEngine, gov: &Governance, doc: &DocId) -> SignedEnvelope {
    let mut v = e.publish(gov, doc).unwrap();
    assert_eq!(v.len(), 1);
    v.remove(0)
}

fn receive_all(e: &mut DocumentEngine, gov: &Governance, envs: &[&SignedEnvelope]) {
    for env in envs {
        let r = e.receive(gov, &peer(1), env.bytes());
        assert!(
            matches!(r, Ok(Received::Accepted(_) | Received::Parked(_))),
            "{r:?}"
        );
    }
    assert_eq!(e.parked_len(), 0, "everything released");
    assert_eq!(
        e.rejected_counts().values().sum::<u64>(),
        0,
        "nobody is blamed"
    );
}

/// `from`'s engine after a restart: a fresh engine restored from its store, in reverse order, at `gov`.
fn restarted(w: &World, org: usize, gov: &Governance, from: &DocumentEngine) -> DocumentEngine {
    let mut stored: Vec<Vec<u8>> = from.sink().all().map(<[u8]>::to_vec).collect();
    stored.reverse();
    let mut e = engine(w, org);
    let r = e.restore(gov, &stored);
    assert_eq!((r.accepted, r.parked, r.rejected), (stored.len(), 0, 0));
    e
}

fn export(e: &DocumentEngine, doc: &DocId) -> String {
    String::from_utf8(e.export(doc).unwrap()).unwrap()
}

/// The same document everywhere: export, heads and the digest of the served envelopes.
fn assert_same(engines: &[&DocumentEngine], doc: &DocId) {
    for e in &engines[1..] {
        assert_eq!(export(e, doc), export(engines[0], doc));
        assert_eq!(e.heads(doc), engines[0].heads(doc));
        assert_eq!(e.heads_digest(doc), engines[0].heads_digest(doc));
    }
}

const ACME_ATTESTED: &str = "Acme: spectrum costs block rural coverage.";
const ACME_LATE: &str = "Acme: written after the submission.";

/// APC and Acme write C2's draft; ITU submits it; Acme then writes more (unattested); the closing checkpoint
/// passes; UNESCO removes Acme, concurrently with the checkpoint (its revocation cites the heads the checkpoint
/// motion was proposed on, so a replica can learn it before or after the checkpoint).
struct Story {
    y: Year,
    envs: Vec<SignedEnvelope>,
    attested: Vec<Hash32>,
    /// Governance: up to the submission; everything but the revocation; everything; the revocation but no
    /// checkpoint (it was delivered before the checkpoint motion).
    g_submitted: Governance,
    g_checkpoint: Governance,
    g_all: Governance,
    g_revoked_first: Governance,
}

fn story() -> Story {
    let mut y = year();
    let doc = y.doc;
    let mut apc = engine(&y.w, y.apc);
    let mut acme = engine(&y.w, y.acme);
    let mut itu = engine(&y.w, 0);
    write(
        &mut apc,
        &doc,
        "achievements",
        "APC: 40 more districts connected.",
    );
    let e_apc = publish(&mut apc, &y.w.gov, &doc);
    receive_all(&mut acme, &y.w.gov, &[&e_apc]);
    write(&mut acme, &doc, "challenges", ACME_ATTESTED);
    let e_acme = publish(&mut acme, &y.w.gov, &doc);
    receive_all(&mut itu, &y.w.gov, &[&e_apc, &e_acme]);
    let attested = itu.heads(&doc);
    let attestation = Attestation {
        heads: attested.clone(),
        content_hash: itu.content_hash(&doc).unwrap(),
    };
    y.w.op(
        0,
        OpKind::SubmitOutput {
            team: y.w.team("C2"),
            year: YEAR,
            doc,
            attestation,
        },
    );
    let submitted = y.w.log.len();
    write(&mut acme, &doc, "late", ACME_LATE);
    let e_late = publish(&mut acme, &y.w.gov, &doc);
    let before_checkpoint = y.w.gov.heads();
    let checkpoint = y.w.log.len();
    let cm = y.coordinators.clone();
    y.w.pass_motion(
        &cm,
        MotionKind::Checkpoint {
            heads: before_checkpoint.clone(),
        },
        &[0, y.undesa],
    );
    let revocation = y.w.op_at(
        1,
        &before_checkpoint,
        OpKind::RevokeRole {
            role: RevocableRole::Member,
            org: y.w.id(y.acme),
        },
    );
    assert!(
        y.w.gov.invalid_ops().is_empty(),
        "{:?}",
        y.w.gov.invalid_ops()
    );
    let all: Vec<&SignedOp> = y.w.log.iter().collect();
    let g_submitted = prefix(&y.w, submitted);
    let g_checkpoint = replay(&y.w, &all[..all.len() - 1]);
    let g_all = replay(&y.w, &all);
    let mut first: Vec<&SignedOp> = all[..checkpoint].to_vec();
    first.push(&revocation);
    let g_revoked_first = replay(&y.w, &first);
    assert!(g_all.is_finalised(&y.w.log[submitted - 1].id()));
    assert!(!g_revoked_first.is_finalised(&y.w.log[submitted - 1].id()));
    Story {
        y,
        envs: vec![e_apc, e_acme, e_late],
        attested,
        g_submitted,
        g_checkpoint,
        g_all,
        g_revoked_first,
    }
}

/// Issue 11 defect 5: the removal comes after the attestation was finalised, and the attested text stays on
/// every node — one that held it before (revalidated), one that learns everything first — while the text Acme
/// wrote after the submission goes. The Chair rebuilds the attested heads, assembles the year and the offline
/// verifier accepts it, Acme's paragraph included.
#[test]
fn a_revocation_after_attestation_keeps_the_attested_text_and_the_chair_assembles_the_year() {
    let s = story();
    let doc = s.y.doc;
    let envs: Vec<&SignedEnvelope> = s.envs.iter().collect();
    let mut before = engine(&s.y.w, s.y.kenya);
    receive_all(&mut before, &s.g_submitted, &envs);
    assert!(export(&before, &doc).contains(ACME_LATE));
    before.revalidate(&s.g_checkpoint);
    let r = before.revalidate(&s.g_all);
    assert_eq!(
        (r.invalidated, r.reinstated),
        (1, 0),
        "only the late envelope"
    );
    let mut chair = engine(&s.y.w, s.y.undesa);
    let reversed: Vec<&SignedEnvelope> = envs.iter().rev().copied().collect();
    receive_all(&mut chair, &s.g_all, &reversed);
    for e in [&before, &chair] {
        let text = export(e, &doc);
        assert!(text.contains(ACME_ATTESTED), "{text}");
        assert!(!text.contains(ACME_LATE), "{text}");
        assert_eq!(e.heads(&doc), s.attested);
        assert_eq!(
            e.envelope_status(&doc, &s.envs[1].id()),
            Some(EnvelopeStatus::Applied)
        );
        assert_eq!(
            e.envelope_status(&doc, &s.envs[2].id()),
            Some(EnvelopeStatus::Unauthorised(
                WriteDenied::RevokedConcurrently
            ))
        );
    }
    // A restart keeps what finality kept.
    let again = restarted(&s.y.w, s.y.kenya, &s.g_all, &before);
    assert_same(&[&before, &chair, &again], &doc);

    // The Chair's tool, as `node/src/chair.rs` runs it.
    let plan = bundle::plan(&s.g_all, YEAR, &s.y.w.id(s.y.undesa)).unwrap();
    let mut docs = BTreeMap::new();
    for (d, heads) in plan.documents() {
        docs.insert(d, chair.save_at(&d, &heads).unwrap());
    }
    assert!(docs.contains_key(&doc));
    let b = bundle::assemble(&plan, &s.y.w.orgs[s.y.undesa].secret, &docs).unwrap();
    verify(&b.files, &s.y.w.federation).unwrap();
    let json = String::from_utf8(b.files[&format!("docs/{doc}.json")].clone()).unwrap();
    assert!(json.contains(ACME_ATTESTED), "{json}");
}

/// A removal before any checkpoint finalises the submission still removes everything Acme wrote, attested or
/// not, whether the node held the envelopes first or learned of the revocation first; once the checkpoint
/// passes, the attested text comes back and the rest stays out.
#[test]
fn a_revocation_before_finalisation_still_removes_unattested_changes() {
    let s = story();
    let doc = s.y.doc;
    let envs: Vec<&SignedEnvelope> = s.envs.iter().collect();
    let mut held = engine(&s.y.w, s.y.kenya);
    receive_all(&mut held, &s.g_submitted, &envs);
    let r = held.revalidate(&s.g_revoked_first);
    assert_eq!((r.invalidated, r.reinstated), (2, 0));
    let mut told = engine(&s.y.w, s.y.apc);
    receive_all(&mut told, &s.g_revoked_first, &envs);
    for e in [&held, &told] {
        let text = export(e, &doc);
        assert!(!text.contains(ACME_ATTESTED), "{text}");
        assert!(!text.contains(ACME_LATE), "{text}");
        assert_eq!(
            e.envelope_status(&doc, &s.envs[1].id()),
            Some(EnvelopeStatus::Unauthorised(
                WriteDenied::RevokedConcurrently
            ))
        );
    }
    assert_same(&[&held, &told], &doc);
    for e in [&mut held, &mut told] {
        let r = e.revalidate(&s.g_all);
        assert_eq!((r.invalidated, r.reinstated), (0, 1));
        let text = export(e, &doc);
        assert!(text.contains(ACME_ATTESTED), "{text}");
        assert!(!text.contains(ACME_LATE), "{text}");
    }
    assert_same(&[&held, &told], &doc);
}

/// Every delivery order of the same envelopes and governance ops ends with the same document: the revocation
/// before or after the envelopes, before or after the checkpoint, envelopes in either order.
#[test]
fn every_delivery_order_of_revocation_checkpoint_and_envelopes_gives_one_document() {
    let s = story();
    let doc = s.y.doc;
    let forward: Vec<&SignedEnvelope> = s.envs.iter().collect();
    let backward: Vec<&SignedEnvelope> = s.envs.iter().rev().collect();
    let mut engines = Vec::new();
    for (n, (steps, envs)) in [
        // Envelopes first, then checkpoint, then revocation.
        (vec![&s.g_submitted, &s.g_checkpoint, &s.g_all], &forward),
        // Envelopes first, then the revocation, then the checkpoint.
        (
            vec![&s.g_submitted, &s.g_revoked_first, &s.g_all],
            &backward,
        ),
        // Everything governance first.
        (vec![&s.g_all], &backward),
        (vec![&s.g_all], &forward),
        // The revocation known, envelopes, then the checkpoint.
        (vec![&s.g_revoked_first, &s.g_all], &forward),
        // The checkpoint known, envelopes, then the revocation.
        (vec![&s.g_checkpoint, &s.g_all], &backward),
    ]
    .into_iter()
    .enumerate()
    {
        let mut e = engine(&s.y.w, s.y.kenya);
        receive_all(&mut e, steps[0], envs);
        for g in &steps[1..] {
            e.revalidate(g);
        }
        let text = export(&e, &doc);
        assert!(text.contains(ACME_ATTESTED), "order {n}: {text}");
        assert!(!text.contains(ACME_LATE), "order {n}: {text}");
        engines.push(e);
    }
    let refs: Vec<&DocumentEngine> = engines.iter().collect();
    assert_same(&refs, &doc);
}

/// Issue 14 defect 7: Acme leaves C2, then its node — ignoring the leave — publishes with the heads from before
/// it, to write the team's draft. A node that held the envelope before learning of the leave drops it on
/// revalidation; one that knew of the leave stores it as unauthorised (its cited history allows it) without
/// blaming the sender. Same document either way; Acme's own engine, up to date, refuses to publish.
#[test]
fn a_member_that_left_the_team_cannot_write_its_draft_citing_heads_from_before_in_either_order() {
    let mut y = year();
    let doc = y.doc;
    let mut apc = engine(&y.w, y.apc);
    write(
        &mut apc,
        &doc,
        "achievements",
        "APC: 40 more districts connected.",
    );
    let e_apc = publish(&mut apc, &y.w.gov, &doc);
    let g_before = prefix(&y.w, y.w.log.len());
    y.w.op(
        y.acme,
        OpKind::LeaveTeam {
            team: y.w.team("C2"),
        },
    );
    let g_left = prefix(&y.w, y.w.log.len());
    let mut acme = engine(&y.w, y.acme);
    receive_all(&mut acme, &g_before, &[&e_apc]);
    write(
        &mut acme,
        &doc,
        "challenges",
        "Acme: written after leaving.",
    );
    let e_late = publish(&mut acme, &g_before, &doc);
    assert!(
        export(&acme, &doc).contains("after leaving"),
        "a stale node sees it"
    );

    let mut held = engine(&y.w, y.kenya);
    receive_all(&mut held, &g_before, &[&e_apc, &e_late]);
    let r = held.revalidate(&g_left);
    assert_eq!((r.invalidated, r.reinstated), (1, 0));
    let mut told = engine(&y.w, y.undesa);
    receive_all(&mut told, &g_left, &[&e_late, &e_apc]);
    for e in [&held, &told] {
        assert!(!export(e, &doc).contains("after leaving"));
        assert_eq!(
            e.envelope_status(&doc, &e_late.id()),
            Some(EnvelopeStatus::Unauthorised(WriteDenied::LeftTeam))
        );
    }
    assert_same(&[&held, &told], &doc);

    acme.revalidate(&g_left);
    write(&mut acme, &doc, "challenges", "Acme: still here.");
    assert!(matches!(
        acme.publish(&g_left, &doc),
        Err(PublishError::Refused {
            reason: ReceiveError::Denied(WriteDenied::NotTeamMember),
            ..
        })
    ));
}

/// The honest concurrent case: Acme's edit made as it left, which APC — not yet aware of the leave — built on,
/// stays (it was in the document before anyone entitled to write knew of the leave); Acme's other edit citing the
/// same heads, which nobody built on, goes. Same answer in every delivery order.
#[test]
fn an_edit_another_member_built_on_before_the_leave_stays_and_one_nobody_built_on_goes() {
    let mut y = year();
    let doc = y.doc;
    let mut apc = engine(&y.w, y.apc);
    write(
        &mut apc,
        &doc,
        "achievements",
        "APC: 40 more districts connected.",
    );
    let e_apc = publish(&mut apc, &y.w.gov, &doc);
    let g_before = prefix(&y.w, y.w.log.len());
    let mut acme = engine(&y.w, y.acme);
    receive_all(&mut acme, &g_before, &[&e_apc]);
    write(
        &mut acme,
        &doc,
        "challenges",
        "Acme: concurrent with leaving.",
    );
    let e_adopted = publish(&mut acme, &g_before, &doc);
    write(&mut acme, &doc, "late", "Acme: nobody built on this.");
    let e_alone = publish(&mut acme, &g_before, &doc);
    y.w.op(
        y.acme,
        OpKind::LeaveTeam {
            team: y.w.team("C2"),
        },
    );
    let g_left = prefix(&y.w, y.w.log.len());
    // APC has Acme's first edit but not the leave, and writes on top of it.
    receive_all(&mut apc, &g_before, &[&e_adopted]);
    write(&mut apc, &doc, "recommendations", "APC: building on Acme.");
    let e_reply = publish(&mut apc, &g_before, &doc);

    let all = [&e_apc, &e_adopted, &e_alone, &e_reply];
    let mut held = engine(&y.w, y.kenya);
    receive_all(&mut held, &g_before, &all);
    held.revalidate(&g_left);
    let mut told = engine(&y.w, y.undesa);
    receive_all(
        &mut told,
        &g_left,
        &[&e_reply, &e_alone, &e_adopted, &e_apc],
    );
    let mut told_forward = engine(&y.w, 0);
    receive_all(&mut told_forward, &g_left, &all);
    for e in [&held, &told, &told_forward] {
        let text = export(e, &doc);
        assert!(text.contains("concurrent with leaving"), "{text}");
        assert!(text.contains("building on Acme"), "{text}");
        assert!(!text.contains("nobody built on this"), "{text}");
        assert_eq!(
            e.envelope_status(&doc, &e_adopted.id()),
            Some(EnvelopeStatus::Applied)
        );
        assert_eq!(
            e.envelope_status(&doc, &e_alone.id()),
            Some(EnvelopeStatus::Unauthorised(WriteDenied::LeftTeam))
        );
    }
    let again = restarted(&y.w, y.kenya, &g_left, &held);
    assert_same(&[&held, &told, &told_forward, &again], &doc);
}
