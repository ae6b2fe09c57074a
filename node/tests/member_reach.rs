//! A member's reach in the document engine is bounded (issue 14): the catalogue tests of fresh actors (defect 2),
//! equivocation pairs (defect 3) and the op caps at edit time (defect 1, the local path). Each drives an
//! admitted, authorised member that signs what it sends, and asserts the attack now fails — on counts (what is
//! stored, refused, rebuilt), never on time.
#![allow(clippy::unwrap_used)]

use automerge::transaction::Transactable;
use automerge::{AutoCommit, Change, ObjType, ROOT};
use wsis_node::engine::{
    ActorScope, DocumentEngine, EditError, MemorySink, Peer, ReceiveError, Received, Reject,
};
use wsis_protocol::cbor::Encoder;
use wsis_protocol::crypto::{Domain, SecretKey};
use wsis_protocol::envelope::{actor_id, automerge_actor, ChangeEnvelope, SignedEnvelope};
use wsis_protocol::fixture::{op_bomb_change, World};
use wsis_protocol::ids::{sha256, DocId, Hash32};
use wsis_protocol::limits::{
    MAX_ACTORS_PER_AUTHOR, MAX_CHANGE_OPS, MAX_DOCUMENT_ACTORS, MAX_DOCUMENT_OPS,
};
use wsis_protocol::op::{DocKind, OpKind};

/// A federation whose team C2 has `members` organisations (the first creates the output draft).
struct Fed {
    w: World,
    members: Vec<usize>,
    doc: DocId,
}

fn federation(members: usize) -> Fed {
    let mut w = World::wsis();
    let members: Vec<usize> = (0..members)
        .map(|i| w.add_org(&format!("Member {i}"), "civil-society", None))
        .collect();
    for &o in &members {
        w.admit(o);
        w.op(o, OpKind::JoinTeam { team: w.team("C2") });
    }
    let kind = DocKind::OutputDraft {
        team: w.team("C2"),
        year: 2026,
    };
    let doc = DocId(w.op(members[0], OpKind::CreateDoc { kind }).id().0);
    Fed { w, members, doc }
}

fn engine(w: &World, org: usize) -> DocumentEngine {
    DocumentEngine::new(
        w.federation,
        w.id(org),
        w.secret_of(org),
        MemorySink::default(),
    )
}

/// Wire bytes correctly signed by `org` for `doc`, with raw change chunks: what a malicious member can send.
fn forge(w: &World, org: usize, doc: DocId, salt: [u8; 16], changes: &[&[u8]]) -> Vec<u8> {
    let key: SecretKey = w.secret_of(org);
    let header = ChangeEnvelope {
        federation: w.federation,
        doc,
        author: w.id(org),
        key: key.public(),
        session_salt: salt,
        gov_heads: w.gov.heads(),
        change_hashes: changes.iter().map(|c| Hash32(sha256(&c[8..]))).collect(),
    };
    let hb = header.encode();
    let sig = key.sign(Domain::ChangeEnvelope, &hb);
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

fn seal(w: &World, org: usize, doc: DocId, salt: [u8; 16], changes: Vec<Change>) -> SignedEnvelope {
    ChangeEnvelope::seal(
        w.federation,
        doc,
        w.id(org),
        &w.orgs[org].secret,
        salt,
        w.gov.heads(),
        changes,
    )
    .unwrap()
}

/// The `i`-th distinct session salt.
fn salt(i: u64) -> [u8; 16] {
    let mut s = [0u8; 16];
    s[..8].copy_from_slice(&i.to_be_bytes());
    s[8] = 0x5a;
    s
}

/// One one-op envelope (`put ROOT.k = null`) by `org` under a fresh salt: 32,768 of these under new salts cost
/// an unbounded engine 152 s and 494 MiB.
fn fresh_actor_envelope(f: &Fed, org: usize, i: u64) -> Vec<u8> {
    let s = salt(i);
    let change = op_bomb_change(actor_id(&f.w.secret_of(org).public(), &f.doc, &s), 1, 1, 0);
    forge(&f.w, org, f.doc, s, &[&change])
}

/// Issue 14, defect 2: an admitted member sends 32,768 one-op envelopes, each under a new session salt (a new
/// Automerge actor). The engine stores its first `MAX_ACTORS_PER_AUTHOR` and refuses every later one before
/// Automerge parses it (counted, and penalised by the caller); further authors fill the document up to
/// `MAX_DOCUMENT_ACTORS` and the next new actor is refused for the document. An actor already in the document
/// is never refused for it.
#[test]
fn fresh_actors_past_the_author_and_document_caps_are_refused_and_penalised() {
    const ATTACK: u64 = 32_768;
    // Authors at their own cap that fill the document, plus one more.
    let members = MAX_DOCUMENT_ACTORS / MAX_ACTORS_PER_AUTHOR + 1;
    let f = federation(members + 1);
    let victim = *f.members.last().unwrap();
    let attacker = f.members[0];
    let mut b = engine(&f.w, victim);
    let from = Peer::new(b"attacker");
    let (mut stored, mut refused) = (0u64, 0u64);
    for i in 0..ATTACK {
        match b.receive(&f.w.gov, &from, &fresh_actor_envelope(&f, attacker, i)) {
            Ok(Received::Accepted(_)) => stored += 1,
            Err(
                e @ ReceiveError::TooManyActors {
                    scope: ActorScope::Author,
                    ..
                },
            ) => {
                assert!(e.penalises());
                assert_eq!(e.reason(), Some(Reject::TooLarge));
                refused += 1;
            }
            other => panic!("envelope {i}: {other:?}"),
        }
    }
    assert_eq!(stored, MAX_ACTORS_PER_AUTHOR as u64);
    assert_eq!(refused, ATTACK - MAX_ACTORS_PER_AUTHOR as u64);
    assert_eq!(b.sink().len(), MAX_ACTORS_PER_AUTHOR);
    assert_eq!(
        b.rejected_counts().get(&Reject::TooLarge).copied(),
        Some(refused)
    );
    let usage = b.usage();
    assert_eq!(usage[0].actors, MAX_ACTORS_PER_AUTHOR);
    assert_eq!(b.stats().rebuilds, 0);

    // An actor it already has: its next change is not a new actor, so it is accepted.
    let s = salt(0);
    let second = op_bomb_change(
        actor_id(&f.w.secret_of(attacker).public(), &f.doc, &s),
        2,
        1,
        0,
    );
    let first_hash = b.heads(&f.doc);
    assert!(!first_hash.is_empty());

    // Other members fill the document to its cap; past it, a new actor is refused for the document.
    let mut i = ATTACK;
    for &org in &f.members[1..members - 1] {
        for _ in 0..MAX_ACTORS_PER_AUTHOR {
            assert!(matches!(
                b.receive(&f.w.gov, &from, &fresh_actor_envelope(&f, org, i)),
                Ok(Received::Accepted(_))
            ));
            i += 1;
        }
    }
    assert_eq!(b.usage()[0].actors, MAX_DOCUMENT_ACTORS);
    let e = b
        .receive(&f.w.gov, &from, &fresh_actor_envelope(&f, victim, i))
        .unwrap_err();
    assert!(
        matches!(
            e,
            ReceiveError::TooManyActors {
                scope: ActorScope::Document,
                max: MAX_DOCUMENT_ACTORS
            }
        ),
        "{e:?}"
    );
    assert!(e.penalises());
    assert_eq!(b.sink().len(), MAX_DOCUMENT_ACTORS);
    // The refused change's bytes never reached the store; the known actor's second change is judged on the
    // other rules only (it is not refused for its actor).
    let r = b.receive(
        &f.w.gov,
        &from,
        &forge(&f.w, attacker, f.doc, s, &[&second]),
    );
    assert!(
        !matches!(r, Err(ReceiveError::TooManyActors { .. })),
        "{r:?}"
    );
}

/// An equivocation pair by `org` under `salt`: two different one-op changes with seq 1.
fn twins(f: &Fed, org: usize, salt: [u8; 16], key: &str) -> (SignedEnvelope, SignedEnvelope) {
    let actor = automerge_actor(&f.w.secret_of(org).public(), &f.doc, &salt);
    let make = |v: i64| {
        let mut d = AutoCommit::new().with_actor(actor.clone());
        d.put(ROOT, key, v).unwrap();
        d.get_last_local_change().unwrap()
    };
    (
        seal(&f.w, org, f.doc, salt, vec![make(1)]),
        seal(&f.w, org, f.doc, salt, vec![make(2)]),
    )
}

/// Issue 14, defect 3: on a 2,000-change document, an author's first equivocation pair costs one rebuild and
/// excludes the author from the document (none of its changes is applied, whatever it sent before or after);
/// the envelope revealing it names the author so the sender is penalised. Every later pair, under fresh actors,
/// is stored as evidence with no rebuild and nothing applied. An engine receiving everything in the reverse
/// order, and one restarted from the store, hold the same document.
#[test]
fn an_equivocating_author_is_excluded_after_one_rebuild_and_cannot_force_another() {
    const PAIRS: u64 = 32;
    let f = federation(2);
    let (honest, attacker) = (f.members[0], f.members[1]);
    let mut a = engine(&f.w, honest);
    let list = a
        .edit(&f.doc, |tx| {
            tx.put_object(ROOT, "activities", ObjType::List)
        })
        .unwrap();
    for i in 0..1999 {
        a.edit(&f.doc, |tx| tx.insert(&list, i, format!("activity {i}")))
            .unwrap();
    }
    let mut sent: Vec<Vec<u8>> = a
        .publish(&f.w.gov, &f.doc)
        .unwrap()
        .iter()
        .map(|e| e.bytes().to_vec())
        .collect();
    let mut b = engine(&f.w, f.members[0]);
    let from = Peer::new(b"attacker");
    for e in &sent {
        assert!(matches!(
            b.receive(&f.w.gov, &from, e),
            Ok(Received::Accepted(_))
        ));
    }
    // An honest-looking change of the attacker under its own salt, applied until it equivocates.
    let mut d = AutoCommit::new().with_actor(automerge_actor(
        &f.w.secret_of(attacker).public(),
        &f.doc,
        &salt(999),
    ));
    d.put(ROOT, "attacker", "was here").unwrap();
    let plain = seal(
        &f.w,
        attacker,
        f.doc,
        salt(999),
        vec![d.get_last_local_change().unwrap()],
    );
    let acc = match b.receive(&f.w.gov, &from, plain.bytes()) {
        Ok(Received::Accepted(acc)) => acc,
        other => panic!("{other:?}"),
    };
    assert_eq!((acc.applied, acc.excluded), (1, None));
    sent.push(plain.bytes().to_vec());
    let before = b.stats().rebuilds;
    for i in 0..PAIRS {
        let (x, y) = twins(&f, attacker, salt(i), "budget");
        let first = match b.receive(&f.w.gov, &from, x.bytes()) {
            Ok(Received::Accepted(acc)) => acc,
            other => panic!("{other:?}"),
        };
        let second = match b.receive(&f.w.gov, &from, y.bytes()) {
            Ok(Received::Accepted(acc)) => acc,
            other => panic!("{other:?}"),
        };
        if i == 0 {
            assert_eq!(first.applied, 1, "applied before the conflict is known");
            assert!(second.rebuilt);
            assert_eq!(second.excluded, Some(f.w.id(attacker)));
        } else {
            assert_eq!(
                (first.applied, first.rebuilt, first.excluded),
                (0, false, None)
            );
            assert_eq!(
                (second.applied, second.rebuilt, second.excluded),
                (0, false, None)
            );
        }
        sent.push(x.bytes().to_vec());
        sent.push(y.bytes().to_vec());
    }
    assert_eq!(
        b.stats().rebuilds,
        before + 1,
        "one rebuild for all the pairs"
    );
    assert_eq!(b.equivocations(&f.doc).len(), PAIRS as usize);
    assert_eq!(b.usage()[0].excluded_authors, 1);
    assert_eq!(
        b.export(&f.doc).unwrap(),
        a.export(&f.doc).unwrap(),
        "nothing of the attacker is left"
    );
    assert_eq!(
        b.sink().len(),
        sent.len(),
        "every pair is stored as evidence"
    );

    // The reverse order: the pairs come first (each second half reveals nothing new after the first pair).
    let mut c = engine(&f.w, f.members[0]);
    for e in sent.iter().rev() {
        assert!(matches!(
            c.receive(&f.w.gov, &from, e),
            Ok(Received::Accepted(_))
        ));
    }
    assert_eq!(c.stats().rebuilds, 1);
    assert_eq!(c.export(&f.doc).unwrap(), b.export(&f.doc).unwrap());
    assert_eq!(c.heads(&f.doc), b.heads(&f.doc));
    let mut r = engine(&f.w, f.members[0]);
    r.restore(&f.w.gov, b.sink().all());
    assert_eq!(r.export(&f.doc).unwrap(), b.export(&f.doc).unwrap());
    assert_eq!(r.usage()[0].excluded_authors, 1);
}

/// Issue 14, defect 1 on the local path: an edit past the ops one change may hold, or past what the document
/// may hold, is refused by `edit` with a typed error before anything is committed: the document, its
/// unpublished changes and the store are as before, and the next edit works.
#[test]
fn an_edit_past_an_op_cap_is_refused_at_edit_time_and_changes_nothing() {
    let f = federation(1);
    let mut a = engine(&f.w, f.members[0]);
    a.edit(&f.doc, |tx| tx.put(ROOT, "title", "Connectivity"))
        .unwrap();
    let before = a.export(&f.doc).unwrap();
    let big = "x".repeat(MAX_CHANGE_OPS as usize + 1);
    let e = a
        .edit(&f.doc, |tx| {
            let text = tx.put_object(ROOT, "body", ObjType::Text)?;
            tx.splice_text(&text, 0, 0, &big)
        })
        .unwrap_err();
    assert!(
        matches!(e, EditError::TooManyOps { ops, max: MAX_CHANGE_OPS } if ops == MAX_CHANGE_OPS + 2),
        "{e:?}"
    );
    assert_eq!(a.export(&f.doc).unwrap(), before);
    assert_eq!(a.unpublished_len(&f.doc), 1);

    // Fill the document to just below its cap with changes within the per-change cap, then go past it.
    let chunk = "y".repeat(MAX_CHANGE_OPS as usize - 1);
    let text = a
        .edit(&f.doc, |tx| tx.put_object(ROOT, "body", ObjType::Text))
        .unwrap();
    let mut published = a.publish(&f.w.gov, &f.doc).unwrap().len();
    loop {
        let used = a.usage()[0].ops + a.usage()[0].unpublished_ops;
        if used + MAX_CHANGE_OPS > MAX_DOCUMENT_OPS {
            break;
        }
        a.edit(&f.doc, |tx| tx.splice_text(&text, 0, 0, &chunk))
            .unwrap();
        published += a.publish(&f.w.gov, &f.doc).unwrap().len();
    }
    let stored = a.sink().len();
    assert_eq!(stored, published);
    let e = a
        .edit(&f.doc, |tx| tx.splice_text(&text, 0, 0, &chunk))
        .unwrap_err();
    assert!(
        matches!(e, EditError::DocumentFull { max: MAX_DOCUMENT_OPS, ops } if ops > MAX_DOCUMENT_OPS),
        "{e:?}"
    );
    assert_eq!(a.unpublished_len(&f.doc), 0);
    assert_eq!(a.sink().len(), stored, "nothing stored");
    assert!(a.publish(&f.w.gov, &f.doc).unwrap().is_empty());
    a.edit(&f.doc, |tx| tx.put(ROOT, "title", "Still editable"))
        .unwrap();
    assert_eq!(a.publish(&f.w.gov, &f.doc).unwrap().len(), 1);
}
