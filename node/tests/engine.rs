//! The verified document engine: convergence of concurrent edits through the acceptance pipeline, lazy signing,
//! and the content cases of the attack catalogue (12, 13, 14, 17, 29, and the parking bounds of 7 and 8).
//!
//! Over 800 lines on purpose: every case drives the same small federation and engine helpers at the top, and the
//! catalogue's content cases are easier to audit side by side than spread over files.
#![allow(clippy::unwrap_used)]

use automerge::transaction::Transactable;
use automerge::{AutoCommit, Automerge, Change, ObjType, ReadDoc, ScalarValue, ROOT};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use wsis_node::engine::{
    canonical_json, DocumentEngine, EnvelopeStatus, MemorySink, ParkingLimits, Peer, PublishError,
    ReceiveError, Received, Reject,
};
use wsis_protocol::cbor::Encoder;
use wsis_protocol::crypto::{Domain, SecretKey};
use wsis_protocol::envelope::{
    actor_id, automerge_actor, ChangeEnvelope, EnvelopeError, SignedEnvelope,
};
use wsis_protocol::fixture::{op_bomb_change, World};
use wsis_protocol::gov::{Governance, WriteDenied};
use wsis_protocol::ids::Hash32;
use wsis_protocol::ids::{sha256, DocId};
use wsis_protocol::op::{DocKind, OpKind, RevocableRole};

/// A federation where APC, Acme and Kenya are members of team C2, which has an output draft; Outsider is admitted
/// but not in the team.
struct Fed {
    w: World,
    apc: usize,
    acme: usize,
    kenya: usize,
    outsider: usize,
    doc: DocId,
}

fn federation() -> Fed {
    let mut w = World::wsis();
    let apc = w.add_org("APC", "civil-society", None);
    let acme = w.add_org("Acme", "private-sector", None);
    let kenya = w.add_org("Kenya", "government", Some("KE"));
    let outsider = w.add_org("Outsider", "private-sector", None);
    for o in [apc, acme, kenya, outsider] {
        w.admit(o);
    }
    for o in [apc, acme, kenya] {
        w.op(o, OpKind::JoinTeam { team: w.team("C2") });
    }
    let kind = DocKind::OutputDraft {
        team: w.team("C2"),
        year: 2026,
    };
    let doc = DocId(w.op(apc, OpKind::CreateDoc { kind }).id().0);
    Fed {
        w,
        apc,
        acme,
        kenya,
        outsider,
        doc,
    }
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

fn peer(n: u8) -> Peer {
    Peer::new(&[n; 38])
}

fn one<T>(mut v: Vec<T>) -> T {
    assert_eq!(v.len(), 1);
    v.remove(0)
}

fn accepted(r: Result<Received, ReceiveError>) -> wsis_node::engine::Accepted {
    match r {
        Ok(Received::Accepted(a)) => a,
        other => panic!("expected acceptance, got {other:?}"),
    }
}

/// An envelope sealed outside any engine: `author` named, `signer`'s key, changes made with `salt`'s actor.
fn seal(
    w: &World,
    author: usize,
    signer: usize,
    doc: DocId,
    salt: [u8; 16],
    changes: Vec<Change>,
) -> SignedEnvelope {
    ChangeEnvelope::seal(
        w.federation,
        doc,
        w.id(author),
        &w.orgs[signer].secret,
        salt,
        w.gov.heads(),
        changes,
    )
    .unwrap()
}

/// Wire bytes with no checks at all, correctly signed by `signer`: what a malicious member can send.
fn forge(header: &ChangeEnvelope, signer: &SecretKey, changes: &[&[u8]]) -> Vec<u8> {
    let hb = header.encode();
    let sig = signer.sign(Domain::ChangeEnvelope, &hb);
    let mut e = Encoder::new();
    e.map(3);
    e.key(0).bytes(&hb);
    e.key(1).bytes(&sig);
    e.key(2).array(changes.len());
    for c in changes {
        e.bytes(c);
    }
    e.into_bytes()
}

/// A governance replica holding the first `n` ops of the world's log.
fn replica(w: &World, n: usize) -> Governance {
    let mut g = Governance::new(w.log[0].clone().verify().unwrap()).unwrap();
    for op in &w.log[1..n] {
        let _ = g.insert(op.clone().verify().unwrap());
    }
    g
}

fn export_str(e: &DocumentEngine, doc: &DocId) -> String {
    String::from_utf8(e.export(doc).unwrap()).unwrap()
}

#[test]
fn three_organisations_converge_whatever_the_delivery_order() {
    let f = federation();
    let gov = &f.w.gov;
    let doc = f.doc;
    let mut engines: Vec<DocumentEngine> = [f.apc, f.acme, f.kenya]
        .iter()
        .map(|&o| engine(&f.w, o))
        .collect();

    // Round 1, concurrent: everyone sets the same title (a conflict) and writes its own section.
    for (i, e) in engines.iter_mut().enumerate() {
        e.edit(&doc, |tx| {
            tx.put(ROOT, "title", format!("Draft by org {i}"))?;
            let s = tx.put_object(ROOT, format!("section-{i}"), ObjType::Text)?;
            tx.splice_text(&s, 0, 0, "Broadband for all")?;
            let l = tx.put_object(ROOT, format!("actions-{i}"), ObjType::List)?;
            tx.insert(&l, 0, "consult")?;
            Ok(())
        })
        .unwrap();
    }
    let round1: Vec<SignedEnvelope> = engines
        .iter_mut()
        .map(|e| one(e.publish(gov, &doc).unwrap()))
        .collect();

    // A partial exchange, then round 2 builds on what each has seen (several commits each).
    accepted(engines[0].receive(gov, &peer(2), round1[1].bytes()));
    accepted(engines[1].receive(gov, &peer(3), round1[2].bytes()));
    let section1 = engines[0]
        .document(&doc)
        .unwrap()
        .get(ROOT, "section-1")
        .unwrap()
        .unwrap()
        .1;
    engines[0]
        .edit(&doc, |tx| tx.splice_text(&section1, 0, 0, "Reviewed: "))
        .unwrap();
    for (i, e) in engines.iter_mut().enumerate() {
        for k in 0..5 {
            e.edit(&doc, |tx| tx.put(ROOT, format!("note-{i}-{k}"), k as i64))
                .unwrap();
        }
    }
    let round2: Vec<SignedEnvelope> = engines
        .iter_mut()
        .map(|e| one(e.publish(gov, &doc).unwrap()))
        .collect();

    let all: Vec<SignedEnvelope> = round1.iter().chain(&round2).cloned().collect();
    let mut observer = engine(&f.w, f.outsider);
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut orders: Vec<Vec<SignedEnvelope>> = vec![all.iter().rev().cloned().collect()];
    for _ in 0..3 {
        let mut o = all.clone();
        o.shuffle(&mut rng);
        orders.push(o);
    }
    for (e, order) in engines.iter_mut().chain([&mut observer]).zip(&orders) {
        for env in order {
            let r = e.receive(gov, &peer(9), env.bytes()).unwrap();
            assert!(
                matches!(
                    r,
                    Received::Accepted(_) | Received::Duplicate | Received::Parked(_)
                ),
                "{r:?}"
            );
        }
    }

    let reference = engines[0].export(&doc).unwrap();
    for e in engines.iter().chain([&observer]) {
        assert_eq!(e.parked_len(), 0, "everything parked was released");
        assert_eq!(e.heads(&doc), engines[0].heads(&doc));
        assert_eq!(e.export(&doc).unwrap(), reference);
        assert_eq!(e.envelope_ids(&doc).len(), 6);
    }
    let text = String::from_utf8(reference).unwrap();
    for needle in [
        "\"section-0\":\"Broadband for all\"",
        "\"section-1\":\"Reviewed: Broadband for all\"",
        "\"actions-2\":[\"consult\"]",
        "\"note-2-4\":4",
        "\"title\":\"Draft by org ",
    ] {
        assert!(text.contains(needle), "{needle} in {text}");
    }
    // The title conflict resolved to one value, the same everywhere.
    assert_eq!(text.matches("\"title\"").count(), 1);

    // One sync response with everything, shuffled, applied in one Automerge call: the same document.
    let mut batched = engine(&f.w, f.outsider);
    let mut shuffled = all.clone();
    shuffled.shuffle(&mut rng);
    let results = batched.receive_batch(gov, &peer(9), shuffled.iter().map(|e| e.bytes()));
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(batched.parked_len(), 0);
    assert_eq!(batched.export(&doc).unwrap(), text.as_bytes());
    assert_eq!(batched.heads(&doc), engines[0].heads(&doc));
}

#[test]
fn a_burst_of_1000_commits_is_published_as_one_envelope_with_one_signature() {
    let f = federation();
    let mut a = engine(&f.w, f.apc);
    let text = a
        .edit(&f.doc, |tx| tx.put_object(ROOT, "text", ObjType::Text))
        .unwrap();
    for i in 0..1000 {
        a.edit(&f.doc, |tx| tx.splice_text(&text, i, 0, "x"))
            .unwrap();
    }
    assert_eq!(a.unpublished_len(&f.doc), 1001);
    assert_eq!(
        a.signatures_made(),
        0,
        "nothing is signed before publishing"
    );

    let env = one(a.publish(&f.w.gov, &f.doc).unwrap());
    assert_eq!(env.header().change_hashes.len(), 1001);
    assert_eq!(a.signatures_made(), 1);
    assert_eq!(a.sink().len(), 1, "stored before it is returned");
    assert_eq!(a.unpublished_len(&f.doc), 0);
    assert!(a.publish(&f.w.gov, &f.doc).unwrap().is_empty());
    assert_eq!(a.signatures_made(), 1);

    let mut b = engine(&f.w, f.acme);
    let acc = accepted(b.receive(&f.w.gov, &peer(1), env.bytes()));
    assert_eq!(acc.applied, 1001);
    assert_eq!(b.heads(&f.doc), a.heads(&f.doc));
    assert_eq!(
        export_str(&b, &f.doc),
        format!("{{\"text\":\"{}\"}}", "x".repeat(1000))
    );
    // The same envelope again is a duplicate, not a second application.
    assert_eq!(
        b.receive(&f.w.gov, &peer(1), env.bytes()).unwrap(),
        Received::Duplicate
    );
}

#[test]
fn case_17_an_envelope_by_a_non_member_is_rejected_and_nothing_is_applied() {
    let f = federation();
    let mut b = engine(&f.w, f.apc);

    // The outsider's own engine refuses to publish, and drops the local edit from its cache.
    let mut o = engine(&f.w, f.outsider);
    o.edit(&f.doc, |tx| tx.put(ROOT, "spam", "buy now"))
        .unwrap();
    match o.publish(&f.w.gov, &f.doc) {
        Err(PublishError::Refused {
            reason: ReceiveError::Denied(reason),
            discarded,
        }) => {
            assert_eq!(reason, WriteDenied::NotTeamMember);
            assert_eq!(discarded, 1);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(export_str(&o, &f.doc), "{}");
    assert_eq!(o.signatures_made(), 0);
    assert!(o.sink().is_empty());

    // A hand-made envelope from the outsider reaches another node: refused at authorisation.
    let salt = [3; 16];
    let mut d = AutoCommit::new().with_actor(automerge_actor(&o_key(&f).public(), &f.doc, &salt));
    d.put(ROOT, "spam", "buy now").unwrap();
    let env = seal(
        &f.w,
        f.outsider,
        f.outsider,
        f.doc,
        salt,
        d.get_changes(&[]),
    );
    match b.receive(&f.w.gov, &peer(4), env.bytes()) {
        Err(ReceiveError::Denied(WriteDenied::NotTeamMember)) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(b.rejected_count(Reject::Unauthorised), 1);
    assert!(b.heads(&f.doc).is_empty());
    assert!(b.stored_envelope_ids(&f.doc).is_empty());
    assert!(b.sink().is_empty());
    assert_eq!(b.parked_len(), 0);
}

fn o_key(f: &Fed) -> SecretKey {
    secret(&f.w, f.outsider)
}

#[test]
fn case_13_a_change_under_another_orgs_actor_is_rejected() {
    let f = federation();
    let mut b = engine(&f.w, f.kenya);
    let salt = [1; 16];
    let acme = secret(&f.w, f.acme);
    let apc_actor = automerge_actor(&secret(&f.w, f.apc).public(), &f.doc, &salt);
    let mut d = AutoCommit::new().with_actor(apc_actor);
    d.put(ROOT, "signed-by-apc", "not really").unwrap();
    let c = d.get_last_local_change().unwrap();
    // Sealing refuses it; a malicious member builds the bytes by hand.
    assert!(matches!(
        ChangeEnvelope::seal(
            f.w.federation,
            f.doc,
            f.w.id(f.acme),
            &acme,
            salt,
            f.w.gov.heads(),
            vec![c.clone()]
        ),
        Err(EnvelopeError::ForeignActor { index: 0 })
    ));
    let header = ChangeEnvelope {
        federation: f.w.federation,
        doc: f.doc,
        author: f.w.id(f.acme),
        key: acme.public(),
        session_salt: salt,
        gov_heads: f.w.gov.heads(),
        change_hashes: vec![Hash32(c.hash().0)],
    };
    let bytes = forge(&header, &acme, &[c.raw_bytes()]);
    let err = b.receive(&f.w.gov, &peer(5), &bytes).unwrap_err();
    assert!(
        matches!(
            err,
            ReceiveError::Envelope(EnvelopeError::ForeignActor { index: 0 })
        ),
        "{err:?}"
    );
    assert_eq!(err.reason(), Some(Reject::ForeignActor));

    // Claiming APC's authorship while signing with Acme's key: the actor matches the key, the author does not.
    let mut d = AutoCommit::new().with_actor(automerge_actor(&acme.public(), &f.doc, &salt));
    d.put(ROOT, "signed-by-apc", "not really").unwrap();
    let env = seal(&f.w, f.apc, f.acme, f.doc, salt, d.get_changes(&[]));
    let err = b.receive(&f.w.gov, &peer(5), env.bytes()).unwrap_err();
    assert!(
        matches!(err, ReceiveError::Denied(WriteDenied::KeyMismatch)),
        "{err:?}"
    );

    assert_eq!(b.rejected_count(Reject::ForeignActor), 1);
    assert_eq!(b.rejected_count(Reject::Unauthorised), 1);
    assert!(b.heads(&f.doc).is_empty());
    assert!(b.sink().is_empty());
}

#[test]
fn case_14_tampered_change_bytes_are_rejected_and_the_original_still_accepted() {
    let f = federation();
    let mut a = engine(&f.w, f.apc);
    a.edit(&f.doc, |tx| {
        tx.put(ROOT, "summary", "Connectivity in 12 countries")
    })
    .unwrap();
    let env = one(a.publish(&f.w.gov, &f.doc).unwrap());
    let raw = env.changes()[0].raw_bytes().to_vec();
    let at = env
        .bytes()
        .windows(raw.len())
        .position(|w| w == raw.as_slice())
        .unwrap();
    let mut b = engine(&f.w, f.acme);
    let mut rejected = 0;
    for offset in [4usize, 9, 12, raw.len() / 2, raw.len() - 3, raw.len() - 1] {
        let mut bytes = env.bytes().to_vec();
        bytes[at + offset] ^= 0x20;
        let err = b.receive(&f.w.gov, &peer(6), &bytes).unwrap_err();
        assert!(
            matches!(err.reason(), Some(Reject::HashMismatch | Reject::Malformed)),
            "offset {offset}: {err:?}"
        );
        rejected += 1;
    }
    let counts = b.rejected_counts();
    assert_eq!(
        counts.get(&Reject::HashMismatch).copied().unwrap_or(0)
            + counts.get(&Reject::Malformed).copied().unwrap_or(0),
        rejected
    );
    assert!(b.heads(&f.doc).is_empty());
    assert!(b.sink().is_empty());
    // Nothing about the rejections sticks to the genuine envelope.
    accepted(b.receive(&f.w.gov, &peer(1), env.bytes()));
    assert_eq!(b.export(&f.doc).unwrap(), a.export(&f.doc).unwrap());
}

/// The op bomb (issue 14, defect 1): an authorised team member's envelope, validly signed, whose one change
/// claims 8 M ops in a few dozen bytes (Automerge would expand every one) is refused at stage 1 from the change's
/// column metadata: nothing is stored or applied, the sender is penalised, and the member's honest edits still
/// arrive.
#[test]
fn an_op_bomb_from_an_authorised_member_is_refused_before_automerge_and_nothing_is_stored() {
    let f = federation();
    let mut b = engine(&f.w, f.acme);
    let key = secret(&f.w, f.apc);
    let salt = [9u8; 16];
    let bomb = op_bomb_change(actor_id(&key.public(), &f.doc, &salt), 1, 8 << 20, 0);
    assert!(bomb.len() < 120, "{} bytes", bomb.len());
    let header = ChangeEnvelope {
        federation: f.w.federation,
        doc: f.doc,
        author: f.w.id(f.apc),
        key: key.public(),
        session_salt: salt,
        gov_heads: f.w.gov.heads(),
        change_hashes: vec![Hash32(sha256(&bomb[8..]))],
    };
    let err = b
        .receive(&f.w.gov, &peer(5), &forge(&header, &key, &[&bomb]))
        .unwrap_err();
    assert!(
        matches!(
            err,
            ReceiveError::Envelope(EnvelopeError::ChangeTooCostly { index: 0, what: "ops", count, .. })
                if count == 8 << 20
        ),
        "{err:?}"
    );
    assert_eq!(err.reason(), Some(Reject::TooLarge));
    assert!(err.penalises());
    assert!(b.heads(&f.doc).is_empty());
    assert!(b.sink().is_empty());
    assert_eq!(b.rejected_counts().get(&Reject::TooLarge).copied(), Some(1));

    let mut a = engine(&f.w, f.apc);
    a.edit(&f.doc, |tx| {
        tx.put(ROOT, "summary", "Connectivity in 12 countries")
    })
    .unwrap();
    accepted(b.receive(
        &f.w.gov,
        &peer(1),
        one(a.publish(&f.w.gov, &f.doc).unwrap()).bytes(),
    ));
    assert_eq!(b.export(&f.doc).unwrap(), a.export(&f.doc).unwrap());
}

#[test]
fn missing_dependencies_park_the_envelope_until_they_arrive() {
    let f = federation();
    let mut a = engine(&f.w, f.apc);
    a.edit(&f.doc, |tx| tx.put(ROOT, "step", 1)).unwrap();
    let e1 = one(a.publish(&f.w.gov, &f.doc).unwrap());
    a.edit(&f.doc, |tx| tx.put(ROOT, "step", 2)).unwrap();
    let e2 = one(a.publish(&f.w.gov, &f.doc).unwrap());
    a.edit(&f.doc, |tx| tx.put(ROOT, "step", 3)).unwrap();
    let e3 = one(a.publish(&f.w.gov, &f.doc).unwrap());

    let mut b = engine(&f.w, f.acme);
    for e in [&e3, &e2] {
        match b.receive(&f.w.gov, &peer(1), e.bytes()).unwrap() {
            Received::Parked(p) => assert_eq!(p.missing_changes.len(), 1),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(b.parked_len(), 2);
    assert_eq!(
        b.missing_changes(),
        e1.header()
            .change_hashes
            .clone()
            .into_iter()
            .chain(e2.header().change_hashes.iter().copied())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
    );
    assert!(b.heads(&f.doc).is_empty(), "nothing applied while parked");
    assert!(b.sink().is_empty(), "nothing stored while parked");
    assert_eq!(
        b.receive(&f.w.gov, &peer(1), e3.bytes()).unwrap(),
        Received::Duplicate
    );

    let acc = accepted(b.receive(&f.w.gov, &peer(1), e1.bytes()));
    assert_eq!(acc.released, 2);
    assert_eq!(acc.applied, 3);
    assert_eq!(b.parked_len(), 0);
    assert!(b.missing_changes().is_empty());
    assert_eq!(export_str(&b, &f.doc), r#"{"step":3}"#);
    assert_eq!(b.heads(&f.doc), a.heads(&f.doc));
    assert_eq!(b.sink().len(), 3);

    // What a peer that has only e1 lacks, and what to announce.
    assert_eq!(a.envelope_heads(&f.doc), vec![e3.id()]);
    let lacking: Vec<_> = a
        .envelopes_missing_from(&f.doc, &[e1.id()])
        .iter()
        .map(|e| e.id())
        .collect();
    assert_eq!(lacking, vec![e2.id(), e3.id()]);
    assert!(a
        .envelopes_missing_from(&f.doc, &b.envelope_heads(&f.doc))
        .is_empty());
    assert_eq!(a.envelopes_missing_from(&f.doc, &[]).len(), 3);
}

#[test]
fn envelopes_citing_unknown_governance_ops_wait_for_them() {
    let mut f = federation();
    // Kenya's replica stops before Acme joined the team; Acme then writes citing the newer heads.
    let n = f.w.log.len();
    let acme_late = f.w.add_org("Late", "private-sector", None);
    f.w.admit(acme_late);
    f.w.op(
        acme_late,
        OpKind::JoinTeam {
            team: f.w.team("C2"),
        },
    );
    let old = replica(&f.w, n);
    let mut writer = engine(&f.w, acme_late);
    writer
        .edit(&f.doc, |tx| tx.put(ROOT, "late", true))
        .unwrap();
    let env = one(writer.publish(&f.w.gov, &f.doc).unwrap());

    let mut b = engine(&f.w, f.kenya);
    match b.receive(&old, &peer(8), env.bytes()).unwrap() {
        Received::Parked(p) => {
            assert!(!p.missing_ops.is_empty());
            assert_eq!(b.missing_ops(), p.missing_ops);
        }
        other => panic!("{other:?}"),
    }
    assert!(b.heads(&f.doc).is_empty());
    // The governance ops arrive (here: the full replica) and revalidation retries the parked envelope.
    let r = b.revalidate(&f.w.gov);
    assert_eq!(r.released, 1);
    assert_eq!(b.parked_len(), 0);
    assert_eq!(export_str(&b, &f.doc), r#"{"late":true}"#);
}

/// Envelopes by `org` that each depend on a change nobody has: parked forever unless bounded.
fn orphans(f: &Fed, org: usize, n: usize) -> Vec<SignedEnvelope> {
    let key = secret(&f.w, org);
    (0..n)
        .map(|i| {
            let mut salt = [0u8; 16];
            salt[..8].copy_from_slice(&(i as u64).to_be_bytes());
            let mut d = AutoCommit::new().with_actor(automerge_actor(&key.public(), &f.doc, &salt));
            d.put(ROOT, "hidden", i as i64).unwrap();
            d.commit();
            d.put(ROOT, "orphan", i as i64).unwrap();
            d.commit();
            let c = d.get_last_local_change().unwrap();
            seal(&f.w, org, org, f.doc, salt, vec![c])
        })
        .collect()
}

#[test]
fn case_8_an_orphan_flood_is_refused_past_the_per_organisation_bound() {
    let mut f = federation();
    let (attacker, honest) = (peer(66), peer(1));
    // Quotas are per organisation: the peers are bound to theirs (Acme floods, APC is honest).
    let acme = f.acme;
    bind(&mut f.w, acme, &attacker);
    let apc = f.apc;
    bind(&mut f.w, apc, &honest);
    let mut b = engine(&f.w, f.kenya);
    let flood = orphans(&f, f.acme, 300);
    let mut parked = 0;
    let mut refused = 0;
    for env in &flood {
        match b.receive(&f.w.gov, &attacker, env.bytes()) {
            Ok(Received::Parked(_)) => parked += 1,
            Err(ReceiveError::ParkingFull { .. }) => refused += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!((parked, refused), (256, 44));
    assert_eq!(b.parked_by(&attacker).0, 256);
    assert_eq!(b.rejected_count(Reject::ParkingFull), 44);
    assert_eq!(b.stats().parking_refused, 44);
    // Another peer still has its own quota.
    let mine = orphans(&f, f.apc, 1);
    assert!(matches!(
        b.receive(&f.w.gov, &honest, mine[0].bytes()),
        Ok(Received::Parked(_))
    ));
    assert_eq!(b.parked_len(), 257);
    // Penalising the attacker frees its quota at once.
    assert_eq!(b.forget_peer(&attacker), 256);
    assert_eq!(b.parked_len(), 1);
    assert_eq!(b.parked_by(&attacker), (0, 0));
    assert_eq!(b.stats().parking_dropped, 256);
    assert!(b.heads(&f.doc).is_empty());

    // The byte bound applies as well.
    let mut small = engine(&f.w, f.kenya).with_parking_limits(ParkingLimits {
        per_org_bytes: 3 * flood[0].bytes().len(),
        ..ParkingLimits::default()
    });
    let outcomes: Vec<bool> = flood[..4]
        .iter()
        .map(|e| small.receive(&f.w.gov, &attacker, e.bytes()).is_ok())
        .collect();
    assert_eq!(outcomes, vec![true, true, true, false]);

    // A full buffer refuses the flooder's newcomers (not as its fault) and keeps the honest peer's envelope.
    let mut full = engine(&f.w, f.kenya).with_parking_limits(ParkingLimits {
        total_envelopes: 3,
        ..ParkingLimits::default()
    });
    assert!(full.receive(&f.w.gov, &honest, mine[0].bytes()).is_ok());
    for env in &flood[..2] {
        assert!(full.receive(&f.w.gov, &attacker, env.bytes()).is_ok());
    }
    let e = full
        .receive(&f.w.gov, &attacker, flood[2].bytes())
        .unwrap_err();
    assert!(matches!(e, ReceiveError::ParkingBusy) && !e.penalises());
    assert_eq!(full.parked_by(&honest).0, 1);
    assert_eq!(full.rejected_count(Reject::ParkingFull), 1);
}

/// `org` binds `p` (a `BindNode` op in the fixture's replica).
fn bind(w: &mut World, org: usize, p: &Peer) {
    w.op(
        org,
        OpKind::BindNode {
            peer_id: p.as_bytes().to_vec(),
        },
    );
}

/// Catalogue (issue 14, defect 6): one organisation with sixteen peer ids, each flooding 256 envelopes that can
/// never be released, used to fill all 4,096 slots; then an honest envelope was refused and its sender blamed.
/// Now its peer ids share its one quota (and only `MAX_BINDINGS_PER_ORG` of them are bound: the rest share the
/// quota of unattributed peers), so the pool keeps room, the honest envelope parks, and no refusal of a shared or
/// full quota blames anyone.
#[test]
fn case_8b_one_organisation_with_many_peer_ids_cannot_fill_the_parking_pool() {
    let mut f = federation();
    let peers: Vec<Peer> = (100..116).map(peer).collect();
    for p in &peers {
        let acme = f.acme;
        bind(&mut f.w, acme, p);
    }
    let honest = peer(1);
    let apc = f.apc;
    bind(&mut f.w, apc, &honest);
    let bound = peers
        .iter()
        .filter(|p| f.w.gov.bound_orgs(p.as_bytes()) == vec![f.w.id(f.acme)])
        .count();
    assert_eq!(bound, wsis_protocol::limits::MAX_BINDINGS_PER_ORG);
    let mut b = engine(&f.w, f.kenya);
    let flood = orphans(&f, f.acme, 16 * 256);
    let (mut parked, mut blamed, mut unblamed) = (0, 0, 0);
    for (i, env) in flood.iter().enumerate() {
        match b.receive(&f.w.gov, &peers[i / 256], env.bytes()) {
            Ok(Received::Parked(_)) => parked += 1,
            Err(e @ ReceiveError::ParkingFull { .. }) => {
                assert!(e.penalises());
                blamed += 1
            }
            Err(e @ ReceiveError::ParkingBusy) => {
                assert!(!e.penalises());
                unblamed += 1
            }
            other => panic!("{other:?}"),
        }
    }
    println!("16 peer ids × 256 orphans: {parked} parked, {blamed} refused past Acme's quota, {unblamed} past the shared one");
    // Acme's quota, and the shared quota of the peers it could not bind.
    assert_eq!(parked, 2 * 256);
    assert_eq!(b.parked_for(&f.w.id(f.acme)).0, 256);
    assert_eq!(blamed, 8 * 256 - 256);
    assert_eq!(unblamed, 8 * 256 - 256);
    let mine = orphans(&f, f.apc, 1);
    assert!(matches!(
        b.receive(&f.w.gov, &honest, mine[0].bytes()),
        Ok(Received::Parked(_))
    ));
    assert_eq!(b.parked_by(&honest).0, 1);
}

#[test]
fn case_12_automerge_equivocation_in_both_orders_is_excluded_everywhere_without_panic() {
    let mut f = federation();
    let gov = &f.w.gov;
    let mut honest = engine(&f.w, f.apc);
    honest
        .edit(&f.doc, |tx| tx.put(ROOT, "agreed", "yes"))
        .unwrap();
    let h = one(honest.publish(gov, &f.doc).unwrap());

    // Acme signs two different changes with the same (actor, seq), and a third on top of one of them.
    let salt = [5; 16];
    let actor = automerge_actor(&secret(&f.w, f.acme).public(), &f.doc, &salt);
    let mut x = AutoCommit::new().with_actor(actor.clone());
    x.put(ROOT, "budget", 100).unwrap();
    x.commit();
    let mut y = AutoCommit::new().with_actor(actor);
    y.put(ROOT, "budget", 999).unwrap();
    y.commit();
    let cx = x.get_last_local_change().unwrap();
    let cy = y.get_last_local_change().unwrap();
    assert_eq!((cx.seq(), cy.seq()), (1, 1));
    x.put(ROOT, "after", true).unwrap();
    x.commit();
    let cx2 = x.get_last_local_change().unwrap();
    let ex = seal(&f.w, f.acme, f.acme, f.doc, salt, vec![cx]);
    let ey = seal(&f.w, f.acme, f.acme, f.doc, salt, vec![cy]);
    let ex2 = seal(&f.w, f.acme, f.acme, f.doc, salt, vec![cx2]);

    let mut e1 = engine(&f.w, f.kenya);
    for env in [&h, &ex, &ex2] {
        accepted(e1.receive(gov, &peer(1), env.bytes()));
    }
    assert!(
        export_str(&e1, &f.doc).contains("budget"),
        "applied before the conflict is known"
    );
    let acc = accepted(e1.receive(gov, &peer(2), ey.bytes()));
    assert!(acc.rebuilt);

    let mut e2 = engine(&f.w, f.outsider);
    accepted(e2.receive(gov, &peer(2), ey.bytes()));
    accepted(e2.receive(gov, &peer(1), h.bytes()));
    assert!(matches!(
        e2.receive(gov, &peer(1), ex2.bytes()),
        Ok(Received::Parked(_))
    ));
    accepted(e2.receive(gov, &peer(1), ex.bytes()));

    for e in [&e1, &e2] {
        assert_eq!(export_str(e, &f.doc), r#"{"agreed":"yes"}"#);
        let ev = one(e.equivocations(&f.doc));
        assert_eq!(
            (ev.seq, ev.author, ev.changes.len()),
            (1, f.w.id(f.acme), 2)
        );
        assert_eq!(ev.envelopes.len(), 2);
        assert_eq!(
            e.envelope_status(&f.doc, &ex.id()),
            Some(EnvelopeStatus::PartlyExcluded { excluded: 1 })
        );
        assert_eq!(
            e.envelope_status(&f.doc, &ex2.id()),
            Some(EnvelopeStatus::PartlyExcluded { excluded: 1 })
        );
        assert_eq!(
            e.envelope_status(&f.doc, &h.id()),
            Some(EnvelopeStatus::Applied)
        );
        // Both sides are served, so every peer sees the conflict.
        assert_eq!(e.envelope_ids(&f.doc).len(), 4);
        assert_eq!(e.parked_len(), 0);
    }
    assert_eq!(e1.heads(&f.doc), e2.heads(&f.doc));
    assert_eq!(
        e1.receive(gov, &peer(1), ex.bytes()).unwrap(),
        Received::Duplicate
    );

    // No crash loop: a restart from the stored envelopes (in any order) reaches the same document.
    let mut stored: Vec<Vec<u8>> = e2.sink().all().map(<[u8]>::to_vec).collect();
    stored.reverse();
    let mut e3 = engine(&f.w, f.kenya);
    let r = e3.restore(gov, &stored);
    assert_eq!((r.accepted, r.parked, r.rejected), (4, 0, 0));
    assert_eq!(e3.export(&f.doc).unwrap(), e1.export(&f.doc).unwrap());
    assert!(e3.sink().is_empty(), "restoring does not store again");

    // Re-sealing an excluded change under other (valid) governance heads gives a new envelope id but nothing new:
    // a duplicate, neither stored nor worth a rebuild.
    let (cx, ex_id) = (ex.changes()[0].clone(), ex.id());
    f.w.op(
        f.kenya,
        OpKind::JoinTeam {
            team: f.w.team("C3"),
        },
    );
    let again = seal(&f.w, f.acme, f.acme, f.doc, salt, vec![cx]);
    assert_ne!(again.id(), ex_id);
    let (stored, rebuilds) = (e1.sink().len(), e1.stats().rebuilds);
    assert_eq!(
        e1.receive(&f.w.gov, &peer(2), again.bytes()).unwrap(),
        Received::Duplicate
    );
    assert_eq!((e1.sink().len(), e1.stats().rebuilds), (stored, rebuilds));

    // A third change under the same (actor, seq), and a fresh actor equivocating inside one envelope: excluded
    // and recorded, without rebuilding (nothing applied has to be taken out).
    let mut z = AutoCommit::new().with_actor(automerge_actor(
        &secret(&f.w, f.acme).public(),
        &f.doc,
        &salt,
    ));
    z.put(ROOT, "budget", 1).unwrap();
    let third = seal(
        &f.w,
        f.acme,
        f.acme,
        f.doc,
        salt,
        vec![z.get_last_local_change().unwrap()],
    );
    let salt2 = [8; 16];
    let actor2 = automerge_actor(&secret(&f.w, f.acme).public(), &f.doc, &salt2);
    let twin = |v: i64| {
        let mut d = AutoCommit::new().with_actor(actor2.clone());
        d.put(ROOT, "twin", v).unwrap();
        d.get_last_local_change().unwrap()
    };
    let inside = seal(&f.w, f.acme, f.acme, f.doc, salt2, vec![twin(1), twin(2)]);
    for env in [&third, &inside] {
        let acc = accepted(e1.receive(&f.w.gov, &peer(2), env.bytes()));
        assert_eq!((acc.applied, acc.rebuilt), (0, false));
    }
    assert_eq!(e1.stats().rebuilds, rebuilds);
    assert_eq!(export_str(&e1, &f.doc), r#"{"agreed":"yes"}"#);
    let evidence = e1.equivocations(&f.doc);
    assert_eq!(evidence.len(), 2);
    assert!(
        evidence.iter().any(|e| e.changes.len() == 3),
        "{evidence:?}"
    );
    // A restart from the stored envelopes agrees.
    let mut e4 = engine(&f.w, f.kenya);
    e4.restore(&f.w.gov, e1.sink().all());
    assert_eq!(e4.export(&f.doc).unwrap(), e1.export(&f.doc).unwrap());
    assert_eq!(e4.equivocations(&f.doc), evidence);
}

#[test]
fn automerge_parses_changes_only_from_authorised_authors_with_their_dependencies_present() {
    let f = federation();
    let mut b = engine(&f.w, f.kenya);
    let salt = [6; 16];
    let header_for = |org: usize, hash: Hash32| ChangeEnvelope {
        federation: f.w.federation,
        doc: f.doc,
        author: f.w.id(org),
        key: secret(&f.w, org).public(),
        session_salt: salt,
        gov_heads: f.w.gov.heads(),
        change_hashes: vec![hash],
    };
    for (org, expect_denied) in [(f.outsider, true), (f.acme, false)] {
        let key = secret(&f.w, org);
        // A change stage 1 reads and counts (no Automerge code) but Automerge cannot parse: five ops with
        // predecessor references and no predecessor columns.
        let bytes = op_bomb_change(actor_id(&key.public(), &f.doc, &salt), 1, 5, 1);
        let hash = Hash32(sha256(&bytes[8..]));
        assert!(
            Change::try_from(bytes.as_slice()).is_err(),
            "automerge cannot parse it"
        );
        let wire = forge(&header_for(org, hash), &key, &[&bytes]);
        let err = b.receive(&f.w.gov, &peer(3), &wire).unwrap_err();
        if expect_denied {
            // Refused at the governance check: the parser never ran.
            assert!(
                matches!(err, ReceiveError::Denied(WriteDenied::NotTeamMember)),
                "{err:?}"
            );
        } else {
            assert!(
                matches!(
                    err,
                    ReceiveError::Envelope(EnvelopeError::MalformedChange { index: 0, .. })
                ),
                "{err:?}"
            );
        }
    }
    assert_eq!(
        (
            b.rejected_count(Reject::Unauthorised),
            b.rejected_count(Reject::Malformed)
        ),
        (1, 1)
    );
    assert!(b.sink().is_empty());
}

#[test]
fn case_29_a_late_revocation_removes_the_authors_changes_but_keeps_its_envelopes() {
    let mut f = federation();
    let doc = f.doc;
    let mut apc = engine(&f.w, f.apc);
    let mut acme = engine(&f.w, f.acme);
    acme.edit(&doc, |tx| tx.put(ROOT, "acme-section", "Our products"))
        .unwrap();
    let e_acme = one(acme.publish(&f.w.gov, &doc).unwrap());
    apc.edit(&doc, |tx| tx.put(ROOT, "apc-section", "Community networks"))
        .unwrap();
    let e_apc1 = one(apc.publish(&f.w.gov, &doc).unwrap());
    accepted(apc.receive(&f.w.gov, &peer(2), e_acme.bytes()));
    // Built on top of Acme's change: it depends on it, so it falls with it (invalidity cascades).
    apc.edit(&doc, |tx| tx.put(ROOT, "apc-reply", "Thanks Acme"))
        .unwrap();
    let e_apc2 = one(apc.publish(&f.w.gov, &doc).unwrap());

    let mut observer = engine(&f.w, f.kenya);
    for e in [&e_acme, &e_apc1, &e_apc2] {
        accepted(observer.receive(&f.w.gov, &peer(1), e.bytes()));
    }
    assert!(export_str(&observer, &doc).contains("acme-section"));

    // The secretariat revokes Acme's membership; the revocation is concurrent with Acme's envelope (which cites
    // older heads) and reaches the observer after it.
    f.w.op(
        0,
        OpKind::RevokeRole {
            role: RevocableRole::Member,
            org: f.w.id(f.acme),
        },
    );
    let r = observer.revalidate(&f.w.gov);
    assert_eq!((r.invalidated, r.reinstated), (1, 0));
    assert_eq!(r.rebuilt, vec![doc]);
    assert_eq!(
        export_str(&observer, &doc),
        r#"{"apc-section":"Community networks"}"#
    );
    assert_eq!(
        observer.stored_envelope_ids(&doc).len(),
        3,
        "the envelopes stay stored"
    );
    assert_eq!(observer.sink().len(), 3);
    assert!(
        observer.envelope_ids(&doc).contains(&e_acme.id()),
        "and still served: a peer that never saw it needs it to resolve e_apc2, and judges it itself"
    );
    assert_eq!(
        observer.envelope_status(&doc, &e_acme.id()),
        Some(EnvelopeStatus::Unauthorised(
            WriteDenied::RevokedConcurrently
        ))
    );
    assert_eq!(
        observer.envelope_status(&doc, &e_apc2.id()),
        Some(EnvelopeStatus::PartlyExcluded { excluded: 1 })
    );
    // Idempotent.
    let again = observer.revalidate(&f.w.gov);
    assert_eq!((again.invalidated, again.rebuilt.len()), (0, 0));

    // A node that learns of the revocation first never applies Acme's change, but stores its envelope as
    // unauthorised all the same (refusing it would depend on the order, and leave e_apc2 waiting for its change
    // for ever): it ends with the same stored envelopes, the same content and the same digest, and blames nobody.
    let mut late = engine(&f.w, f.outsider);
    let r = late.receive(&f.w.gov, &peer(2), e_acme.bytes());
    assert!(
        matches!(&r, Ok(Received::Accepted(a)) if a.applied == 0),
        "{r:?}"
    );
    assert_eq!(late.rejected_counts().values().sum::<u64>(), 0);
    accepted(late.receive(&f.w.gov, &peer(1), e_apc1.bytes()));
    accepted(late.receive(&f.w.gov, &peer(1), e_apc2.bytes()));
    assert_eq!(late.parked_len(), 0);
    assert_eq!(late.export(&doc).unwrap(), observer.export(&doc).unwrap());
    assert_eq!(
        late.stored_envelope_ids(&doc),
        observer.stored_envelope_ids(&doc)
    );
    assert_eq!(late.heads_digest(&doc), observer.heads_digest(&doc));
    assert_eq!(
        late.envelope_status(&doc, &e_apc2.id()),
        Some(EnvelopeStatus::PartlyExcluded { excluded: 1 })
    );

    // The removed org keeps pushing: its engine refuses to publish, and hand-made envelopes are refused.
    acme.revalidate(&f.w.gov);
    acme.edit(&doc, |tx| tx.put(ROOT, "acme-section", "Still here"))
        .unwrap();
    assert!(matches!(
        acme.publish(&f.w.gov, &doc),
        Err(PublishError::Refused {
            reason: ReceiveError::Denied(WriteDenied::NotMember),
            ..
        })
    ));
    let salt = [9; 16];
    let mut d =
        AutoCommit::new().with_actor(automerge_actor(&secret(&f.w, f.acme).public(), &doc, &salt));
    d.put(ROOT, "acme-section", "Still here").unwrap();
    let pushed = seal(&f.w, f.acme, f.acme, doc, salt, d.get_changes(&[]));
    assert!(matches!(
        observer.receive(&f.w.gov, &peer(2), pushed.bytes()),
        Err(ReceiveError::Denied(WriteDenied::NotMember))
    ));
    assert_eq!(
        export_str(&observer, &doc),
        r#"{"apc-section":"Community networks"}"#
    );
}

#[test]
fn export_is_canonical_and_byte_stable() {
    let f = federation();
    let mut a = engine(&f.w, f.apc);
    a.edit(&f.doc, |tx| {
        tx.put(ROOT, "z", "last")?;
        tx.put(ROOT, "a", 1)?;
        tx.put(ROOT, "é", true)?;
        tx.put(ROOT, "B", ScalarValue::Null)?;
        let l = tx.put_object(ROOT, "list", ObjType::List)?;
        tx.insert(&l, 0, 1.5)?;
        tx.insert(&l, 1, -2)?;
        tx.insert(&l, 2, u64::MAX)?;
        let m = tx.insert_object(&l, 3, ObjType::Map)?;
        tx.put(&m, "y", "\"quoted\"\n")?;
        tx.put(&m, "x", ScalarValue::Bytes(vec![0, 255]))?;
        let t = tx.put_object(ROOT, "text", ObjType::Text)?;
        tx.splice_text(&t, 0, 0, "héllo")?;
        tx.put(ROOT, "counter", ScalarValue::counter(5))?;
        tx.put(ROOT, "when", ScalarValue::Timestamp(1_700_000_000_000))?;
        tx.put(ROOT, "nan", f64::NAN)?;
        tx.put(ROOT, "float", 1.0)?;
        Ok(())
    })
    .unwrap();
    let first_heads = a.heads(&f.doc);
    a.edit(&f.doc, |tx| tx.increment(ROOT, "counter", 3))
        .unwrap();
    let expected = r#"{"B":null,"a":1,"counter":8,"float":1.0,"list":[1.5,-2,18446744073709551615,{"x":{"$bytes":"00ff"},"y":"\"quoted\"\n"}],"nan":{"$float":"NaN"},"text":"héllo","when":{"$timestamp":1700000000000},"z":"last","é":true}"#;
    assert_eq!(export_str(&a, &f.doc), expected);
    assert_eq!(a.export(&f.doc).unwrap(), a.export(&f.doc).unwrap());
    assert_eq!(
        a.content_hash(&f.doc).unwrap(),
        Hash32(sha256(expected.as_bytes()))
    );

    // The same content written in another order, by another organisation: the same bytes.
    let mut b = engine(&f.w, f.acme);
    b.edit(&f.doc, |tx| {
        tx.put(ROOT, "float", 1.0)?;
        tx.put(ROOT, "nan", f64::NAN)?;
        tx.put(ROOT, "when", ScalarValue::Timestamp(1_700_000_000_000))?;
        tx.put(ROOT, "counter", ScalarValue::counter(8))?;
        let t = tx.put_object(ROOT, "text", ObjType::Text)?;
        tx.splice_text(&t, 0, 0, "llo")?;
        tx.splice_text(&t, 0, 0, "hé")?;
        let l = tx.put_object(ROOT, "list", ObjType::List)?;
        let m = tx.insert_object(&l, 0, ObjType::Map)?;
        tx.put(&m, "x", ScalarValue::Bytes(vec![0, 255]))?;
        tx.put(&m, "y", "\"quoted\"\n")?;
        tx.insert(&l, 0, u64::MAX)?;
        tx.insert(&l, 0, -2)?;
        tx.insert(&l, 0, 1.5)?;
        tx.put(ROOT, "B", ScalarValue::Null)?;
        tx.put(ROOT, "é", true)?;
        tx.put(ROOT, "a", 1)?;
        tx.put(ROOT, "z", "last")?;
        Ok(())
    })
    .unwrap();
    assert_eq!(export_str(&b, &f.doc), expected);

    // What goes into the stocktaking bundle: the document saved at given heads re-exports to the same bytes.
    let saved = a.save_at(&f.doc, &first_heads).unwrap();
    let loaded = Automerge::load(&saved).unwrap();
    let at = a.export_at(&f.doc, &first_heads).unwrap();
    assert_eq!(canonical_json(&loaded).unwrap(), at);
    assert_eq!(
        String::from_utf8(at).unwrap(),
        expected.replace("\"counter\":8", "\"counter\":5")
    );
    let now = a.heads(&f.doc);
    assert_eq!(
        canonical_json(&Automerge::load(&a.save_at(&f.doc, &now).unwrap()).unwrap()).unwrap(),
        expected.as_bytes()
    );
    assert!(a.save_at(&f.doc, &[Hash32([7; 32])]).is_err());
}

#[test]
fn automerge_assertions_are_unreachable_or_contained() {
    let f = federation();
    let gov = &f.w.gov;
    let mut a = engine(&f.w, f.apc);
    a.edit(&f.doc, |tx| tx.put(ROOT, "z", 1)).unwrap();
    let base = one(a.publish(gov, &f.doc).unwrap());
    let apc_actor = base.changes()[0].actor_id().clone();

    let salt = [4; 16];
    let acme_actor = automerge_actor(&secret(&f.w, f.acme).public(), &f.doc, &salt);
    let mut d = AutoCommit::new().with_actor(acme_actor.clone());
    d.apply_changes(base.changes().to_vec()).unwrap();
    // Overwriting APC's value references APC's op 1 (as the predecessor).
    d.put(ROOT, "z", 2).unwrap();
    let m = d.put_object(ROOT, "m", ObjType::Map).unwrap();
    d.put(&m, "x", 1).unwrap();
    d.commit();
    let honest = d.get_last_local_change().unwrap();
    assert_eq!(honest.other_actor_ids(), std::slice::from_ref(&apc_actor));

    // 1. An op on an object that is not one (APC's scalar op 1): parses, passes every rule, and makes Automerge
    //    panic. Contained: the change is quarantined and the engine goes on.
    let mut exp = honest.decode();
    exp.operations[2].obj =
        automerge::legacy::ObjectId::Id(automerge::legacy::OpId(1, apc_actor.clone()));
    let bad_obj = Change::from(exp);
    // 2. The honest change without its dependency: references an actor outside its history. Rejected.
    let mut exp = honest.decode();
    exp.deps.clear();
    let dangling = Change::from(exp);
    // 3. A seq-2 change that does not depend on seq 1: breaks the actor chain. Rejected.
    let mut chain = AutoCommit::new().with_actor(acme_actor);
    chain.put(ROOT, "one", 1).unwrap();
    chain.commit();
    chain.put(ROOT, "two", 2).unwrap();
    chain.commit();
    let all = chain.get_changes(&[]);
    let mut exp = all[1].decode();
    exp.deps.clear();
    let gap = Change::from(exp);
    a.edit(&f.doc, |tx| tx.put(ROOT, "after", "fine")).unwrap();
    let next = one(a.publish(gov, &f.doc).unwrap());

    for engine_order in [false, true] {
        let mut b = engine(&f.w, f.kenya);
        if engine_order {
            accepted(b.receive(gov, &peer(1), base.bytes()));
        }
        let err = b
            .receive(
                gov,
                &peer(2),
                seal(&f.w, f.acme, f.acme, f.doc, salt, vec![dangling.clone()]).bytes(),
            )
            .unwrap_err();
        assert!(
            matches!(err, ReceiveError::InvalidHistory { .. }),
            "{err:?}"
        );
        let err = b
            .receive(
                gov,
                &peer(2),
                seal(
                    &f.w,
                    f.acme,
                    f.acme,
                    f.doc,
                    salt,
                    vec![all[0].clone(), gap.clone()],
                )
                .bytes(),
            )
            .unwrap_err();
        assert!(
            matches!(err, ReceiveError::InvalidHistory { index: 1, .. }),
            "{err:?}"
        );
        assert_eq!(b.rejected_count(Reject::InvalidHistory), 2);
        if !engine_order {
            accepted(b.receive(gov, &peer(1), base.bytes()));
        }
        let bad = seal(&f.w, f.acme, f.acme, f.doc, salt, vec![bad_obj.clone()]);
        let acc = accepted(b.receive(gov, &peer(2), bad.bytes()));
        assert_eq!(acc.applied, 0);
        assert_eq!(b.stats().quarantined_changes, 1);
        assert_eq!(
            b.envelope_status(&f.doc, &bad.id()),
            Some(EnvelopeStatus::PartlyExcluded { excluded: 1 })
        );
        assert_eq!(export_str(&b, &f.doc), r#"{"z":1}"#);
        // The engine still works.
        accepted(b.receive(gov, &peer(1), next.bytes()));
        assert_eq!(export_str(&b, &f.doc), r#"{"after":"fine","z":1}"#);
    }

    // The same inside one batch, where the refused change is found when the batch is applied at the end.
    let mut c = engine(&f.w, f.kenya);
    let bad = seal(&f.w, f.acme, f.acme, f.doc, salt, vec![bad_obj.clone()]);
    let results = c.receive_batch(gov, &peer(1), [base.bytes(), bad.bytes(), next.bytes()]);
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(c.stats().quarantined_changes, 1);
    assert_eq!(export_str(&c, &f.doc), r#"{"after":"fine","z":1}"#);
}

#[test]
fn a_restart_restores_the_same_documents_from_stored_envelopes() {
    let f = federation();
    let mut a = engine(&f.w, f.apc);
    let mut b = engine(&f.w, f.acme);
    for i in 0..20 {
        let (e, peer_e) = if i % 2 == 0 {
            (&mut a, &mut b)
        } else {
            (&mut b, &mut a)
        };
        e.edit(&f.doc, |tx| tx.put(ROOT, format!("k{}", i % 7), i))
            .unwrap();
        let env = one(e.publish(&f.w.gov, &f.doc).unwrap());
        accepted(peer_e.receive(&f.w.gov, &peer(1), env.bytes()));
    }
    assert_eq!(a.export(&f.doc).unwrap(), b.export(&f.doc).unwrap());
    let mut stored: Vec<Vec<u8>> = a.sink().all().map(<[u8]>::to_vec).collect();
    assert_eq!(stored.len(), 20);
    stored.shuffle(&mut rand::rngs::StdRng::seed_from_u64(1));
    let mut restarted = engine(&f.w, f.apc);
    let r = restarted.restore(&f.w.gov, &stored);
    assert_eq!((r.accepted, r.parked, r.rejected), (20, 0, 0));
    assert_eq!(restarted.export(&f.doc).unwrap(), a.export(&f.doc).unwrap());
    assert_eq!(restarted.heads(&f.doc), a.heads(&f.doc));
    // A restarted node writes with a fresh actor, so its new changes never reuse an (actor, seq).
    assert_ne!(restarted.local_actor(&f.doc), a.local_actor(&f.doc));
    restarted
        .edit(&f.doc, |tx| tx.put(ROOT, "restarted", true))
        .unwrap();
    let env = one(restarted.publish(&f.w.gov, &f.doc).unwrap());
    accepted(b.receive(&f.w.gov, &peer(1), env.bytes()));
    assert!(b.equivocations(&f.doc).is_empty());
}

#[test]
fn the_store_is_the_sink_and_a_restart_from_it_restores_the_documents() {
    let f = federation();
    let dir = tempfile::tempdir().unwrap();
    let store = wsis_node::store::Store::open(dir.path().join("db")).unwrap();
    store.bind_federation_blocking(f.w.federation).unwrap();
    let mut a = DocumentEngine::new(
        f.w.federation,
        f.w.id(f.apc),
        secret(&f.w, f.apc),
        wsis_node::node::StoreSink::new(store.clone()),
    );
    let mut b = engine(&f.w, f.acme);
    for i in 0..5 {
        b.edit(&f.doc, |tx| tx.put(ROOT, format!("acme-{i}"), i))
            .unwrap();
        let env = one(b.publish(&f.w.gov, &f.doc).unwrap());
        accepted(a.receive(&f.w.gov, &peer(2), env.bytes()));
        a.edit(&f.doc, |tx| tx.put(ROOT, format!("apc-{i}"), i))
            .unwrap();
        let mine = one(a.publish(&f.w.gov, &f.doc).unwrap());
        accepted(b.receive(&f.w.gov, &peer(1), mine.bytes()));
    }
    let stored = store.envelopes_of(&f.doc).unwrap();
    assert_eq!(
        stored.len(),
        10,
        "received and published envelopes are both stored"
    );
    let expected = a.export(&f.doc).unwrap();
    assert_eq!(b.export(&f.doc).unwrap(), expected);
    drop(a);
    drop(store);

    let store = wsis_node::store::Store::open(dir.path().join("db")).unwrap();
    let mut restarted = DocumentEngine::new(
        f.w.federation,
        f.w.id(f.apc),
        secret(&f.w, f.apc),
        wsis_node::node::StoreSink::new(store.clone()),
    );
    let r = restarted.restore_envelopes(&f.w.gov, store.load_envelopes().unwrap());
    assert_eq!((r.accepted, r.parked, r.rejected), (10, 0, 0));
    assert_eq!(restarted.export(&f.doc).unwrap(), expected);
}

/// The sync's first step compares one digest per document: equal digests must mean the same served envelopes,
/// whatever order they arrived in, and any new envelope must change the digest. Pages are in id order.
#[test]
fn heads_digests_are_equal_exactly_when_the_served_envelopes_are() {
    let mut f = federation();
    let before = f.w.gov.clone();
    let gov = &before;
    let doc = f.doc;
    let mut apc = engine(&f.w, f.apc);
    let mut acme = engine(&f.w, f.acme);
    let empty = engine(&f.w, f.kenya);
    let mut envelopes = Vec::new();
    for (e, who) in [(&mut apc, "apc"), (&mut acme, "acme")] {
        for k in 0..3 {
            e.edit(&doc, |tx| tx.put(ROOT, format!("{who}-{k}"), k as i64))
                .unwrap();
            envelopes.push(one(e.publish(gov, &doc).unwrap()));
        }
    }
    let mut a = engine(&f.w, f.outsider);
    let mut b = engine(&f.w, f.outsider);
    for env in &envelopes {
        a.receive(gov, &peer(1), env.bytes()).unwrap();
    }
    for env in envelopes.iter().rev() {
        b.receive(gov, &peer(1), env.bytes()).unwrap();
    }
    assert_eq!(a.parked_len() + b.parked_len(), 0);
    assert_eq!(a.heads_digest(&doc), b.heads_digest(&doc));
    assert_ne!(
        a.heads_digest(&doc),
        apc.heads_digest(&doc),
        "apc lacks acme's envelopes"
    );
    assert_ne!(a.heads_digest(&doc), empty.heads_digest(&doc));

    // One more envelope on one side: the digests differ until the other side has it too.
    apc.edit(&doc, |tx| tx.put(ROOT, "late", 1)).unwrap();
    let late = one(apc.publish(gov, &doc).unwrap());
    a.receive(gov, &peer(1), late.bytes()).unwrap();
    assert_ne!(a.heads_digest(&doc), b.heads_digest(&doc));
    b.receive(gov, &peer(1), late.bytes()).unwrap();
    assert_eq!(a.heads_digest(&doc), b.heads_digest(&doc));

    // Acme is revoked, concurrently with its envelopes (they cite older heads). `a` holds them, now unauthorised;
    // `c` gets the revocation first: it stores them as unauthorised all the same (its history authorises them),
    // and both serve them, so the digests stay equal exactly when the served sets are.
    let acme_id = f.w.id(f.acme);
    f.w.op(
        0,
        OpKind::RevokeRole {
            role: RevocableRole::Member,
            org: acme_id,
        },
    );
    let w = &f.w;
    a.revalidate(&w.gov);
    let mut c = engine(w, f.outsider);
    for env in envelopes.iter().chain([&late]) {
        accepted(c.receive(&w.gov, &peer(1), env.bytes()));
    }
    assert_eq!(c.envelope_ids(&doc), a.envelope_ids(&doc));
    assert_eq!(
        c.envelope_ids(&doc).len(),
        7,
        "unauthorised envelopes are served"
    );
    assert_eq!(c.heads_digest(&doc), a.heads_digest(&doc));
    assert_eq!(c.export(&doc).unwrap(), a.export(&doc).unwrap());

    // Paging: only documents held, ascending, `more` while some remain.
    let (all, more) = a.heads_digests_after(None, 10);
    assert_eq!((all.len(), more), (1, false));
    assert_eq!(all[0], (doc, a.heads_digest(&doc)));
    assert_eq!(a.heads_digests_after(None, 0), (vec![], true));
    assert_eq!(a.heads_digests_after(Some(&doc), 10), (vec![], false));
    assert_eq!(empty.heads_digests_after(None, 10), (vec![], false));
}

/// What this node publishes passed the checks a peer applies (issue 10): an edit its author may not publish is
/// refused by `publish` with the very error a peer's `receive` gives for the same edit, nothing is stored or
/// signed, and the edit is rolled back so the document is again what peers have. Two ways to lose the right: a
/// member that left the team, and a document kind only its creator writes (a national report).
#[test]
fn publish_refuses_what_a_peer_refuses_with_the_same_reason_and_stores_nothing() {
    let mut f = federation();
    let doc = f.doc;
    let mut acme = engine(&f.w, f.acme);
    let mut observer = engine(&f.w, f.apc);
    acme.edit(&doc, |tx| tx.put(ROOT, "acme", "before"))
        .unwrap();
    let first = one(acme.publish(&f.w.gov, &doc).unwrap());
    accepted(observer.receive(&f.w.gov, &peer(2), first.bytes()));
    f.w.op(
        f.acme,
        OpKind::LeaveTeam {
            team: f.w.team("C2"),
        },
    );
    let kenya_report = DocId(
        f.w.op(
            f.kenya,
            OpKind::CreateDoc {
                kind: DocKind::NationalReport {
                    country: wsis_protocol::op::Country::new("KE").unwrap(),
                    year: 2026,
                },
            },
        )
        .id()
        .0,
    );
    acme.revalidate(&f.w.gov);
    observer.revalidate(&f.w.gov);

    for (target, expected) in [
        (doc, WriteDenied::NotTeamMember),
        (kenya_report, WriteDenied::NotCreator),
    ] {
        let (stored, signed) = (acme.sink().len(), acme.signatures_made());
        // An unknown document exports as an error before the edit, as `{}` once the engine holds it.
        let before = acme.export(&target).unwrap_or_else(|_| b"{}".to_vec());
        acme.edit(&target, |tx| tx.put(ROOT, "acme", "after"))
            .unwrap();
        let err = acme.publish(&f.w.gov, &target).unwrap_err();
        let mine = err.refusal().unwrap();
        assert!(
            matches!(mine, ReceiveError::Denied(d) if *d == expected),
            "{target}: {err}"
        );
        assert!(
            err.to_string().contains(&expected.to_string()),
            "the message names the reason: {err}"
        );
        assert_eq!(acme.sink().len(), stored, "nothing stored");
        assert_eq!(acme.signatures_made(), signed, "nothing signed");
        assert_eq!(acme.unpublished_len(&target), 0, "the edit is rolled back");
        assert_eq!(acme.export(&target).unwrap(), before);

        // The same edit, sealed by hand and pushed to a peer: the same typed reason.
        let salt = [7; 16];
        let mut d = AutoCommit::new().with_actor(automerge_actor(
            &secret(&f.w, f.acme).public(),
            &target,
            &salt,
        ));
        d.put(ROOT, "acme", "after").unwrap();
        let pushed = seal(&f.w, f.acme, f.acme, target, salt, d.get_changes(&[]));
        let theirs = observer
            .receive(&f.w.gov, &peer(2), pushed.bytes())
            .unwrap_err();
        assert!(matches!(&theirs, ReceiveError::Denied(d) if *d == expected));
        assert_eq!(theirs.reason(), mine.reason());
    }

    // Rolled back, not wedged: once the right is back, the next edit publishes and a peer takes it.
    f.w.op(
        f.acme,
        OpKind::JoinTeam {
            team: f.w.team("C2"),
        },
    );
    acme.revalidate(&f.w.gov);
    observer.revalidate(&f.w.gov);
    acme.edit(&doc, |tx| tx.put(ROOT, "acme", "again")).unwrap();
    let env = one(acme.publish(&f.w.gov, &doc).unwrap());
    accepted(observer.receive(&f.w.gov, &peer(2), env.bytes()));
    assert_eq!(acme.export(&doc).unwrap(), observer.export(&doc).unwrap());
}

/// One random edit on a document: scalars, nested maps, text splices, list inserts and deletions.
fn random_edit(rng: &mut rand::rngs::StdRng, tx: &mut automerge::transaction::Transaction<'_>) {
    use rand::Rng;
    let key = format!("k{}", rng.gen_range(0..6));
    match rng.gen_range(0..7) {
        0 => {
            tx.put(ROOT, key.as_str(), rng.gen::<i64>()).unwrap();
        }
        1 => {
            let len = rng.gen_range(0..300);
            let s: String = (0..len).map(|_| rng.gen_range('a'..='\u{5ff}')).collect();
            tx.put(ROOT, key.as_str(), s).unwrap();
        }
        2 => {
            let m = tx.put_object(ROOT, key.as_str(), ObjType::Map).unwrap();
            tx.put(&m, "inner", rng.gen::<bool>()).unwrap();
        }
        3 | 4 => {
            let t = match tx.get(ROOT, "text").unwrap() {
                Some((automerge::Value::Object(ObjType::Text), id)) => id,
                _ => tx.put_object(ROOT, "text", ObjType::Text).unwrap(),
            };
            let len = tx.length(&t);
            let at = rng.gen_range(0..=len);
            let del = rng.gen_range(0..=(len - at).min(5)) as isize;
            tx.splice_text(&t, at, del, "línea 🌍 ").unwrap();
        }
        5 => {
            let l = match tx.get(ROOT, "list").unwrap() {
                Some((automerge::Value::Object(ObjType::List), id)) => id,
                _ => tx.put_object(ROOT, "list", ObjType::List).unwrap(),
            };
            let len = tx.length(&l);
            tx.insert(&l, rng.gen_range(0..=len), rng.gen::<u32>() as i64)
                .unwrap();
        }
        _ => {
            let _ = tx.delete(ROOT, key.as_str());
        }
    }
}

/// Whatever `publish` accepts, another engine's `receive` accepts (issue 10): two members edit one document
/// concurrently with a spread of random edits and bursts, exchange their envelopes now and then (so changes
/// build on each other's), and a third engine that receives every published envelope in publish order accepts
/// each one and ends with the same document.
#[test]
fn whatever_publish_accepts_a_peer_accepts() {
    use rand::Rng;
    let f = federation();
    let gov = &f.w.gov;
    for seed in 0..48u64 {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut writers = [engine(&f.w, f.apc), engine(&f.w, f.acme)];
        let mut observer = engine(&f.w, f.kenya);
        let mut published: Vec<(usize, SignedEnvelope)> = Vec::new();
        let mut delivered = [0usize; 2];
        for _ in 0..24 {
            let w = rng.gen_range(0..2);
            for _ in 0..rng.gen_range(1..6) {
                writers[w]
                    .edit(&f.doc, |tx| {
                        random_edit(&mut rng, tx);
                        Ok(())
                    })
                    .unwrap();
            }
            for env in writers[w].publish(gov, &f.doc).unwrap() {
                published.push((w, env));
            }
            if rng.gen_bool(0.3) {
                // The other writer catches up on what this one published.
                let other = 1 - w;
                for (_, env) in published[delivered[other]..]
                    .iter()
                    .filter(|(by, _)| *by == w)
                {
                    let _ = writers[other].receive(gov, &peer(9), env.bytes()).unwrap();
                }
                delivered[other] = published.len();
            }
        }
        for (i, (_, env)) in published.iter().enumerate() {
            let r = observer.receive(gov, &peer(1), env.bytes());
            assert!(
                matches!(r, Ok(Received::Accepted(_))),
                "seed {seed}, envelope {i}: {r:?}"
            );
        }
        for w in &mut writers {
            for (_, env) in &published {
                let _ = w.receive(gov, &peer(9), env.bytes()).unwrap();
            }
            assert_eq!(
                w.export(&f.doc).unwrap(),
                observer.export(&f.doc).unwrap(),
                "seed {seed}"
            );
        }
    }
}

/// Sections are Automerge Text written with the content schema (`update_text`): two members rewriting different
/// parts of one section of an output draft concurrently, each on its own engine, both keep their words once the
/// envelopes cross, and every engine ends with the same document — read back with the report's reader.
#[test]
fn two_engines_editing_one_section_concurrently_both_keep_their_text() {
    use wsis_protocol::content::{self, Schema};
    let f = federation();
    let gov = &f.w.gov;
    let schema = Schema::of_scope(gov, &gov.document(&f.doc).unwrap().scope);
    let mut apc = engine(&f.w, f.apc);
    let mut acme = engine(&f.w, f.acme);
    apc.edit(&f.doc, |tx| content::create_skeleton(tx, &schema))
        .unwrap();
    let set = |e: &mut DocumentEngine, text: &str| {
        e.edit(&f.doc, |tx| {
            content::set_section(tx, &schema, "challenges", text).map_err(|e| match e {
                content::ContentError::Automerge(e) => e,
                other => panic!("{other}"),
            })
        })
        .unwrap();
        one(e.publish(gov, &f.doc).unwrap())
    };
    let base = set(&mut apc, "Cost. Skills.");
    accepted(acme.receive(gov, &peer(1), base.bytes()));
    let from_apc = set(&mut apc, "High cost. Skills.");
    let from_acme = set(&mut acme, "Cost. Digital skills.");
    accepted(acme.receive(gov, &peer(1), from_apc.bytes()));
    accepted(apc.receive(gov, &peer(2), from_acme.bytes()));
    let mut observer = engine(&f.w, f.kenya);
    for env in [&base, &from_acme, &from_apc] {
        accepted(observer.receive(gov, &peer(3), env.bytes()));
    }
    for e in [&apc, &acme, &observer] {
        let json: serde_json::Value = serde_json::from_slice(&e.export(&f.doc).unwrap()).unwrap();
        assert_eq!(
            content::section(&json, "challenges").as_deref(),
            Some("High cost. Digital skills.")
        );
    }
    assert_eq!(
        apc.export(&f.doc).unwrap(),
        observer.export(&f.doc).unwrap()
    );
}
