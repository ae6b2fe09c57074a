//! The attack catalogue, parking (issue 11 defect 6, issue 14 defect 6), at the replica: each test mounts the
//! attack that used to work and asserts it now fails. Work is asserted on the replica's own counter
//! ([`Governance::parking_work`]), never on time; the times are printed for the record.
//!
//! The node side (per-organisation quotas, expiry in time, no penalty for a full pool) is tested in
//! `node/src/parking/tests.rs`, `node/src/engine/tests.rs`, and live in `node/tests/parking_flood.rs`.
#![allow(clippy::unwrap_used)]

use std::time::Instant;
use wsis_protocol::fixture::{Org, World};
use wsis_protocol::gov::{Governance, InsertError, Inserted, Invalid};
use wsis_protocol::ids::OpId;
use wsis_protocol::limits::{MAX_BINDINGS_PER_ORG, MAX_PARKED_OPS, PARKED_OP_TTL_PARKS};
use wsis_protocol::op::{OpBody, OpKind, StakeholderType};

fn fresh_replica(w: &World) -> Governance {
    Governance::new(w.log[0].clone().verify().unwrap()).unwrap()
}

/// `n` distinct ids that all hash alike under the unkeyed fold `IdMap` used before the fix (it is invertible:
/// choose three words, solve the fourth). What an attacker cites as parents.
fn colliding_ids(n: usize) -> Vec<OpId> {
    const C: u64 = 0x517c_c1b7_2722_0a95;
    let mut inv: u64 = 1;
    for _ in 0..6 {
        inv = inv.wrapping_mul(2u64.wrapping_sub(C.wrapping_mul(inv)));
    }
    (0..n as u64)
        .map(|i| {
            let mut h = 0u64;
            let mut step = |w: u64| h = (h.rotate_left(5) ^ w).wrapping_mul(C);
            step(32);
            let words = [i, !i, i.wrapping_mul(3)];
            for w in words {
                step(w);
            }
            let last = 0x0123_4567_89ab_cdefu64.wrapping_mul(inv) ^ h.rotate_left(5);
            let mut id = [0u8; 32];
            for (k, w) in words.iter().chain([&last]).enumerate() {
                id[k * 8..k * 8 + 8].copy_from_slice(&w.to_le_bytes());
            }
            OpId(id)
        })
        .collect()
}

/// 3,000 ops (the figure) parked under parent ids crafted to collide, then all evicted: the replica
/// touches a bounded number of index entries per op (before: every insertion probed every colliding key, 94 s
/// with the governance lock held). The same with every op citing one invented parent, whose waiting list used
/// to be scanned at every eviction.
#[test]
fn parking_under_colliding_parent_ids_costs_linear_work() {
    const N: usize = 3_000;
    let mut w = World::wsis();
    let team = w.team("C1");
    let parents = colliding_ids(N);
    let shared = colliding_ids(1)[0];
    let signed: Vec<_> = parents
        .iter()
        .enumerate()
        .map(|(i, p)| {
            // Two parents each: its own colliding id and one shared by all.
            let cite = if i % 2 == 0 {
                vec![*p]
            } else {
                vec![*p, shared]
            };
            w.sign_at(0, &cite, OpKind::JoinTeam { team: team.clone() })
                .verify()
                .unwrap()
        })
        .collect();
    let mut g = fresh_replica(&w);
    let started = Instant::now();
    for op in &signed {
        assert!(matches!(
            g.insert(op.clone()).unwrap(),
            Inserted::Parked { .. }
        ));
    }
    let parked_in = started.elapsed();
    assert_eq!(g.parked_len(), N);
    let parking = g.parking_work();
    let ids: Vec<OpId> = signed.iter().map(|o| o.op().id()).collect();
    let started = Instant::now();
    assert_eq!(g.evict_parked(&ids), N);
    let evicted_in = started.elapsed();
    let total = g.parking_work();
    println!(
        "parked {N} ops under colliding parent ids in {parked_in:?}, evicted them in {evicted_in:?}; \
         parking work {parking}, with eviction {total}"
    );
    // At most two index entries per op to park it and two to take it out.
    assert!(parking <= 2 * N as u64, "{parking}");
    assert!(total <= 4 * N as u64, "{total}");
    assert_eq!(g.parked_len(), 0);
    assert!(g.missing().is_empty());
}

/// An op whose author this replica does not know is refused without parking, and so is one signed with a key
/// that is not its author's: parking costs a flooder a key the federation knows. Neither refusal blames an op that
/// may be fine later ([`InsertError::is_transient`] only for the unknown author).
#[test]
fn an_op_of_an_unknown_author_is_refused_without_parking() {
    let w = World::wsis();
    let mut g = fresh_replica(&w);
    let mut stranger = Org::new(9_999, "Nobody", StakeholderType::CivilSociety, None);
    let fake = OpId([0xab; 32]);
    let team = w.team("C1");
    let op = stranger.sign(
        Some(w.federation),
        &[fake],
        OpKind::JoinTeam { team: team.clone() },
        1,
    );
    let e = g.insert(op.verify().unwrap()).unwrap_err();
    // An author nobody admitted here: not even held (only an inception or a binding waits for admission).
    assert_eq!(e, InsertError::NotAdmitted);
    assert!(
        e.is_transient(),
        "not the sender's fault: it may enter later"
    );
    // ITU's id with the stranger's key.
    let forged = OpBody {
        federation: Some(w.federation),
        author: w.id(0),
        key: stranger.secret.public(),
        seq: 2,
        parents: vec![fake],
        timestamp_ms: 1,
        kind: OpKind::JoinTeam { team },
    }
    .sign(&stranger.secret);
    let e = g.insert(forged.verify().unwrap()).unwrap_err();
    assert_eq!(e, InsertError::KeyMismatch);
    assert!(!e.is_transient());
    assert_eq!(g.parked_len(), 0);
    assert!(
        g.missing().is_empty(),
        "nothing asks for the invented parent"
    );
    // An inception citing a parent nobody has neither parks nor waits for admission: it would have to be
    // carried into the DAG by its Admit, and could not enter there either.
    let mut newcomer = Org::new(9_998, "Newcomer", StakeholderType::CivilSociety, None);
    let record = newcomer.inception.clone();
    let inception = newcomer.sign(Some(w.federation), &[fake], OpKind::OrgInception(record), 1);
    assert_eq!(
        g.insert(inception.verify().unwrap()),
        Err(InsertError::NotAdmitted)
    );
    assert_eq!((g.parked_len(), g.pending_len()), (0, 0));
}

/// A full parking area does not stay full for ever (before: forty fresh peer ids filled it for good): every
/// attempt to park ticks the area's clock, refused ones included, and an op parked more than
/// `PARKED_OP_TTL_PARKS` attempts ago is dropped, oldest first, so the honest op gets in. The count of attempts
/// is exact, so two replicas fed the same ops drop the same ones.
#[test]
fn expiry_frees_a_full_parking_area() {
    let mut w = World::wsis();
    let team = w.team("C1");
    let mut g = fresh_replica(&w);
    let mut first = None;
    for i in 0..MAX_PARKED_OPS {
        let mut fake = [0u8; 32];
        fake[..8].copy_from_slice(&(i as u64).to_be_bytes());
        let op = w.sign_at(0, &[OpId(fake)], OpKind::JoinTeam { team: team.clone() });
        first.get_or_insert(op.id());
        assert!(matches!(
            g.insert(op.verify().unwrap()).unwrap(),
            Inserted::Parked { .. }
        ));
    }
    let honest = w
        .sign_at(1, &[OpId([0xcd; 32])], OpKind::JoinTeam { team })
        .verify()
        .unwrap();
    let mut refused = 0usize;
    loop {
        match g.insert(honest.clone()) {
            Err(InsertError::ParkingFull) => refused += 1,
            Ok(Inserted::Parked { .. }) => break,
            other => panic!("{other:?}"),
        }
        assert!(refused <= 2 * PARKED_OP_TTL_PARKS as usize, "never got in");
    }
    println!(
        "a full area of {MAX_PARKED_OPS} let the honest op in after {refused} refused attempts"
    );
    assert_eq!(refused, PARKED_OP_TTL_PARKS as usize - MAX_PARKED_OPS + 1);
    assert!(g.is_parked(&honest.op().id()));
    assert_eq!(g.parked_len(), MAX_PARKED_OPS);
    assert_eq!(g.take_expired_parked(), vec![first.unwrap()]);
    assert!(g.take_expired_parked().is_empty());
}

/// One organisation cannot multiply itself by binding peer ids: the `BindNode` past `MAX_BINDINGS_PER_ORG` is
/// invalid (before: 16 peer ids × 256 parked envelopes filled a node's whole envelope pool), and the peer id it
/// names reads for nobody. Another organisation's bindings are not affected.
#[test]
fn bindings_past_the_cap_per_organisation_are_invalid() {
    let mut w = World::wsis();
    let ngo = w.add_org("APC", "civil-society", None);
    w.admit(ngo);
    let bind = |w: &mut World, org: usize, n: usize| {
        let mut peer_id = vec![org as u8; 38];
        peer_id[..8].copy_from_slice(&(n as u64).to_be_bytes());
        let op = w.op(
            org,
            OpKind::BindNode {
                peer_id: peer_id.clone(),
            },
        );
        (op.id(), peer_id)
    };
    for n in 0..MAX_BINDINGS_PER_ORG {
        let (id, peer) = bind(&mut w, ngo, n);
        assert_eq!(w.gov.validity(&id), Some(Ok(())));
        assert_eq!(w.gov.bound_orgs(&peer), vec![w.id(ngo)]);
    }
    let (over, peer) = bind(&mut w, ngo, MAX_BINDINGS_PER_ORG);
    assert_eq!(w.gov.validity(&over), Some(Err(Invalid::TooManyBindings)));
    assert!(w.gov.bound_orgs(&peer).is_empty());
    let (other, peer) = bind(&mut w, 1, 0);
    assert_eq!(w.gov.validity(&other), Some(Ok(())));
    assert_eq!(w.gov.bound_orgs(&peer), vec![w.id(1)]);
    // The same verdict from scratch, in any order.
    let mut g = fresh_replica(&w);
    let mut pending: Vec<_> = w.log[1..].iter().rev().collect();
    while !pending.is_empty() {
        let before = pending.len();
        pending.retain(|op| g.insert((*op).clone().verify().unwrap()).is_err());
        assert!(pending.len() < before, "every op enters in the end");
    }
    assert_eq!(g.digest(), w.gov.digest());
}
