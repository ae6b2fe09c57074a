//! Unit tests of the engine's internals (batching, causal order, actor sets, parking); the pipeline is tested
//! from the outside in `node/tests/engine.rs`.

use super::doc_state::{ActorSet, Salt};
use super::local::next_batch;
use super::local::*;
use super::parking::{ParkedEnvelope, Parking, Wait};
use super::receive::Incoming;
use super::restore::causal_order;
use super::*;
use automerge::transaction::Transactable;
use automerge::Change;
use automerge::ROOT;
use automerge::{AutoCommit, ObjType};
use wsis_protocol::crypto::SecretKey;
use wsis_protocol::envelope::{automerge_actor, ChangeEnvelope, SignedEnvelope};
use wsis_protocol::ids::{DocId, EnvelopeId, FederationId, OpId, OrgId};
use wsis_protocol::limits::{MAX_CHANGES_PER_ENVELOPE, MAX_ENVELOPE_BYTES};

const FED: FederationId = FederationId([9; 32]);
const DOC: DocId = DocId([4; 32]);

fn key() -> SecretKey {
    SecretKey::from_seed(&[1; 32])
}

/// `n` successive changes under `salt`'s actor.
fn changes(salt: Salt, n: usize) -> Vec<Change> {
    let mut d = AutoCommit::new().with_actor(automerge_actor(&key().public(), &DOC, &salt));
    for i in 0..n {
        d.put(ROOT, "k", i as i64).unwrap();
        d.commit();
    }
    d.get_changes(&[])
}

fn sealed(salt: Salt, changes: Vec<Change>) -> SignedEnvelope {
    ChangeEnvelope::seal(
        FED,
        DOC,
        OrgId([1; 32]),
        &key(),
        salt,
        vec![OpId([1; 32])],
        changes,
    )
    .unwrap()
}

#[test]
fn batches_split_at_the_change_limit_and_at_a_salt_change() {
    let a = [1; 16];
    let b = [2; 16];
    let cs = changes(a, 3);
    let mut pending: Vec<(Salt, Change)> = Vec::new();
    for i in 0..MAX_CHANGES_PER_ENVELOPE + 5 {
        pending.push((a, cs[i % 3].clone()));
    }
    let max = MAX_ENVELOPE_BYTES;
    assert_eq!(next_batch(&pending, 1, max), Some(MAX_CHANGES_PER_ENVELOPE));
    let mixed = vec![(a, cs[0].clone()), (a, cs[1].clone()), (b, cs[2].clone())];
    assert_eq!(next_batch(&mixed, 1, max), Some(2));
    assert_eq!(next_batch(&mixed[2..], 1, max), Some(1));
    assert_eq!(next_batch(&[], 1, max), None);
}

#[test]
fn batches_split_before_the_byte_limit_and_the_estimate_is_an_upper_bound() {
    let salt = [3; 16];
    let pending: Vec<(Salt, Change)> = changes(salt, 40).into_iter().map(|c| (salt, c)).collect();
    let heads = 3;
    let cost: Vec<usize> = pending.iter().map(|(_, c)| change_cost(c)).collect();
    // A budget with room for exactly the first 10 changes.
    let budget = envelope_overhead(heads) + cost[..10].iter().sum::<usize>();
    assert_eq!(next_batch(&pending, heads, budget), Some(10));
    assert_eq!(next_batch(&pending, heads, budget - 1), Some(9));
    // A single change always goes, even over the budget (seal then reports the real size).
    assert_eq!(next_batch(&pending, heads, 1), Some(1));
    // The estimate is never below the real size of the sealed envelope.
    for n in [1, 10, 40] {
        let env = ChangeEnvelope::seal(
            FED,
            DOC,
            OrgId([1; 32]),
            &key(),
            salt,
            (0..heads as u8).map(|i| OpId([i; 32])).collect(),
            pending[..n].iter().map(|(_, c)| c.clone()).collect(),
        )
        .unwrap();
        let estimate = envelope_overhead(heads) + cost[..n].iter().sum::<usize>();
        assert!(
            env.bytes().len() <= estimate,
            "{n}: {} > {estimate}",
            env.bytes().len()
        );
    }
}

#[test]
fn restored_envelopes_are_put_in_causal_order() {
    let salt = [5; 16];
    let cs = changes(salt, 4);
    let envs: Vec<SignedEnvelope> = cs.iter().map(|c| sealed(salt, vec![c.clone()])).collect();
    let ids: Vec<EnvelopeId> = envs.iter().map(SignedEnvelope::id).collect();
    let mut shuffled: Vec<Incoming> = envs
        .iter()
        .rev()
        .map(|e| Incoming::Header(e.verified_header().clone()))
        .collect();
    shuffled.swap(0, 2);
    let ordered: Vec<EnvelopeId> = causal_order(shuffled)
        .iter()
        .map(|e| e.header().id())
        .collect();
    assert_eq!(ordered, ids);
}

#[test]
fn actor_sets_grow_and_union() {
    let mut a = ActorSet::default();
    assert!(!a.contains(0));
    a.insert(3);
    a.insert(130);
    let mut b = ActorSet::default();
    b.insert(64);
    b.union(&a);
    for i in [3, 64, 130] {
        assert!(b.contains(i));
    }
    assert!(!b.contains(4) && !b.contains(1000));
}

#[test]
fn export_handles_deep_nesting_without_recursion() {
    const DEPTH: usize = 1_500;
    let mut d = AutoCommit::new();
    let mut obj = ROOT;
    for i in 0..DEPTH {
        obj = if i % 2 == 0 {
            d.put_object(&obj, "n", ObjType::Map).unwrap()
        } else {
            let l = d.put_object(&obj, "l", ObjType::List).unwrap();
            d.insert_object(&l, 0, ObjType::Map).unwrap()
        };
    }
    d.put(&obj, "leaf", true).unwrap();
    // A recursive writer would need far more than this stack for 1,500 levels.
    let text = std::thread::Builder::new()
        .stack_size(128 * 1024)
        .spawn(move || String::from_utf8(canonical_json(&d).unwrap()).unwrap())
        .unwrap()
        .join()
        .unwrap();
    assert!(
        text.starts_with("{\"n\":{\"l\":[{\"n\":"),
        "{}",
        &text[..40]
    );
    assert!(text.contains("{\"leaf\":true}"));
    assert_eq!(text.matches('{').count(), text.matches('}').count());
    assert_eq!(text.matches('[').count(), DEPTH / 2);
}

/// Envelope `i` of `cs` (one change each), parked waiting for `wait`.
fn parked(salt: [u8; 16], cs: &[Change], i: usize, wait: Wait) -> ParkedEnvelope {
    ParkedEnvelope {
        env: Incoming::Parsed(sealed(salt, vec![cs[i].clone()])),
        restore: false,
        wait,
    }
}

/// A governance state binding peer `x` to one organisation, `y` and `z` to another (the second binds two).
fn bound() -> (wsis_protocol::fixture::World, Peer, Peer, Peer) {
    use wsis_protocol::op::OpKind;
    let mut w = wsis_protocol::fixture::World::wsis();
    let (x, y, z) = (Peer::new(b"x"), Peer::new(b"y"), Peer::new(b"z"));
    for (org, p) in [(0, &x), (1, &y), (1, &z)] {
        w.op(
            org,
            OpKind::BindNode {
                peer_id: p.as_bytes().to_vec(),
            },
        );
    }
    (w, x, y, z)
}

#[test]
fn parking_accounts_per_organisation_and_releases_its_quota_on_removal() {
    let salt = [7; 16];
    let cs = changes(salt, 3);
    let mut p = Parking {
        limits: ParkingLimits {
            per_org_envelopes: 2,
            ..ParkingLimits::default()
        },
        ..Parking::default()
    };
    let (w, x, y, z) = bound();
    let now = std::time::Instant::now();
    let env = |i: usize, h: usize| parked(salt, &cs, i, Wait::Changes(vec![cs[h].hash()]));
    p.park(&w.gov, &y, env(1, 0), now).unwrap();
    p.park(&w.gov, &z, env(2, 1), now).unwrap();
    // `z` is another peer id of `y`'s organisation: it shares the quota.
    assert!(matches!(
        p.park(&w.gov, &z, env(0, 0), now),
        Err(ReceiveError::ParkingFull { envelopes: 2, .. })
    ));
    let governance = Wait::Governance(vec![OpId([2; 32])]);
    p.park(&w.gov, &x, parked(salt, &cs, 0, governance), now)
        .unwrap();
    let id = env(1, 0).env.header().id();
    assert!(p.remove(&id).is_some());
    assert!(
        p.slots.awaited().all(|h| *h != cs[0].hash()),
        "index entries go with it"
    );
    assert_eq!(p.slots.peer_usage(&y).0, 0);
    p.park(&w.gov, &y, env(1, 0), now).unwrap();
    assert_eq!(p.slots.len(), 3);
    assert_eq!(
        p.slots.total_bytes(),
        p.slots
            .iter()
            .map(|(_, e)| e.value.env.header().bytes().len())
            .sum::<usize>()
    );
}

#[test]
fn a_full_parking_buffer_refuses_the_newcomer_without_blaming_it() {
    let salt = [8; 16];
    let cs = changes(salt, 3);
    let mut p = Parking::default();
    p.limits.total_envelopes = 1;
    let (w, x, y, _) = bound();
    let now = std::time::Instant::now();
    let env = |i: usize| parked(salt, &cs, i, Wait::Changes(vec![cs[0].hash()]));
    p.park(&w.gov, &x, env(1), now).unwrap();
    let e = p.park(&w.gov, &y, env(2), now).unwrap_err();
    assert!(matches!(e, ReceiveError::ParkingBusy));
    assert_eq!(e.reason(), Some(Reject::ParkingFull));
    assert!(!e.penalises());
    assert_eq!(p.slots.len(), 1, "what was parked stays");
}

/// Catalogue (issue 14, defect 6): peers bound to no organisation share one quota, and a refusal from it blames
/// none of them; an envelope parked longer than the ttl leaves, and its room is free again.
#[test]
fn unattributed_peers_share_one_quota_without_blame_and_parked_envelopes_expire() {
    let salt = [9; 16];
    let cs = changes(salt, 4);
    let mut p = Parking {
        limits: ParkingLimits {
            per_org_envelopes: 2,
            ..ParkingLimits::default()
        },
        ..Parking::default()
    };
    let w = wsis_protocol::fixture::World::wsis();
    let now = std::time::Instant::now();
    let env = |i: usize| parked(salt, &cs, i, Wait::Changes(vec![cs[0].hash()]));
    p.park(&w.gov, &Peer::new(b"s1"), env(1), now).unwrap();
    p.park(&w.gov, &Peer::new(b"s2"), env(2), now).unwrap();
    let e = p.park(&w.gov, &Peer::new(b"s3"), env(3), now).unwrap_err();
    assert!(matches!(e, ReceiveError::ParkingBusy) && !e.penalises());
    let later = now + p.limits.ttl + std::time::Duration::from_secs(1);
    p.park(&w.gov, &Peer::new(b"s3"), env(3), later).unwrap();
    assert_eq!(p.slots.len(), 1, "the two old ones expired");
    assert_eq!(p.slots.counts().expired, 2);
}

/// A document at `MAX_DOCUMENT_OPS` (what the offline verifier loads at most) takes no more ops: an envelope
/// from a peer is refused as too large, counted and blamed on the sender, and nothing is stored; this node's own
/// publish is refused with the same error, nothing stored, and its unpublished change rolled back. (The count is set directly: reaching
/// two million real ops would cost the test seconds and hundreds of MiB.)
#[test]
fn a_document_at_its_op_cap_takes_no_more_from_peers_or_from_this_node() {
    use wsis_protocol::fixture::World;
    use wsis_protocol::limits::MAX_DOCUMENT_OPS;
    use wsis_protocol::op::{DocKind, OpKind};

    let mut w = World::wsis();
    let apc = w.add_org("APC", "civil-society", None);
    let acme = w.add_org("Acme", "private-sector", None);
    for org in [apc, acme] {
        w.admit(org);
        w.op(org, OpKind::JoinTeam { team: w.team("C2") });
    }
    let kind = DocKind::OutputDraft {
        team: w.team("C2"),
        year: 2026,
    };
    let doc = DocId(w.op(apc, OpKind::CreateDoc { kind }).id().0);
    let engine = |org: usize| {
        DocumentEngine::new(
            w.federation,
            w.id(org),
            w.secret_of(org),
            MemorySink::default(),
        )
    };
    let (mut a, mut b) = (engine(apc), engine(acme));
    let from_a = Peer::new(b"node-a");

    a.edit(&doc, |tx| tx.put(ROOT, "p", 1)).unwrap();
    let first = a.publish(&w.gov, &doc).unwrap();
    assert!(matches!(
        b.receive(&w.gov, &from_a, first[0].bytes()),
        Ok(Received::Accepted(_))
    ));
    assert!(
        b.docs[&doc].ops > 0,
        "the accepted envelope's ops are counted"
    );

    b.docs.get_mut(&doc).unwrap().ops = MAX_DOCUMENT_OPS;
    a.edit(&doc, |tx| tx.put(ROOT, "p", 2)).unwrap();
    let second = a.publish(&w.gov, &doc).unwrap();
    let err = b.receive(&w.gov, &from_a, second[0].bytes()).unwrap_err();
    assert!(
        matches!(
            err,
            ReceiveError::DocumentFull {
                max: MAX_DOCUMENT_OPS,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.reason(), Some(Reject::TooLarge));
    assert!(err.penalises());
    assert_eq!(
        b.sink().len(),
        1,
        "nothing of the refused envelope is stored"
    );
    assert_eq!(b.rejected_counts().get(&Reject::TooLarge).copied(), Some(1));

    // This node's own edit past the cap is refused when it is made, before anything is committed.
    let real = a.docs[&doc].ops;
    a.docs.get_mut(&doc).unwrap().ops = MAX_DOCUMENT_OPS;
    let e = a.edit(&doc, |tx| tx.put(ROOT, "p", 3)).unwrap_err();
    assert!(
        matches!(
            e,
            EditError::DocumentFull {
                max: MAX_DOCUMENT_OPS,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(a.unpublished_len(&doc), 0);
    // An edit made before the document filled up (peers' envelopes arrived meanwhile) is refused at publish.
    a.docs.get_mut(&doc).unwrap().ops = real;
    a.edit(&doc, |tx| tx.put(ROOT, "p", 3)).unwrap();
    a.docs.get_mut(&doc).unwrap().ops = MAX_DOCUMENT_OPS;
    let stored = a.sink().len();
    match a.publish(&w.gov, &doc) {
        Err(PublishError::Refused {
            reason: ReceiveError::DocumentFull { max, .. },
            discarded: 1,
        }) => assert_eq!(max, MAX_DOCUMENT_OPS),
        other => panic!("{other:?}"),
    }
    assert_eq!(a.sink().len(), stored, "nothing of it is stored");
    assert_eq!(a.unpublished_len(&doc), 0, "the change is rolled back");
    assert_eq!(
        a.export(&doc).unwrap(),
        br#"{"p":2}"#,
        "the document is what is stored"
    );
}
