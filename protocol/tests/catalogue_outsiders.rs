//! The attack catalogue, outsiders (issue 11, defect 1): an organisation no secretariat has admitted can make a
//! replica hold a bounded, expiring handful of its ops outside the DAG and nothing else. Its inceptions and
//! bindings never become heads, clocks, bindings or bundle content; an `Admit` carries in exactly the inception
//! it names, in any delivery order. Each test builds the attack and asserts it now fails.
#![allow(clippy::unwrap_used)]

use wsis_protocol::fixture::{Org, World};
use wsis_protocol::gov::{Governance, InsertError, Inserted};
use wsis_protocol::limits::{MAX_PENDING_OPS, PENDING_OP_TTL_HOLDS};
use wsis_protocol::op::{OpKind, SignedOp, StakeholderType};

/// An organisation the fixture knows (its key) but whose ops are not signed yet.
fn outsider(w: &mut World, seed: u64) -> usize {
    w.orgs.push(Org::new(
        seed,
        &format!("outsider {seed}"),
        StakeholderType::Academia,
        None,
    ));
    w.orgs.len() - 1
}

/// Its inception and one binding, citing only the genesis (as a node that was never admitted signs them).
fn identity(w: &mut World, o: usize, peer: u8) -> [SignedOp; 2] {
    let genesis = w.log[0].id();
    let rec = w.orgs[o].inception.clone();
    let inception = w.sign_at(o, &[genesis], OpKind::OrgInception(rec));
    let binding = w.sign_at(
        o,
        &[inception.id()],
        OpKind::BindNode {
            peer_id: vec![peer; 38],
        },
    );
    [inception, binding]
}

fn fresh(w: &World) -> Governance {
    Governance::new(w.log[0].clone().verify().unwrap()).unwrap()
}

/// Delivers `ops` in this order; an op refused as transient is delivered again, as the next sync would, until
/// nothing more enters.
fn deliver(g: &mut Governance, ops: &[SignedOp]) {
    let mut left: Vec<&SignedOp> = ops.iter().collect();
    loop {
        let before = left.len();
        left.retain(
            |op| matches!(g.insert((*op).clone().verify().unwrap()), Err(e) if e.is_transient()),
        );
        if left.is_empty() || left.len() == before {
            return;
        }
    }
}

#[test]
fn outsiders_01_a_flood_of_inceptions_and_bindings_never_enters_the_dag() {
    let mut w = World::wsis();
    let member = w.add_org("APC", "civil-society", None);
    w.admit(member);
    w.op(member, OpKind::JoinTeam { team: w.team("C1") });
    let (len, heads, digest, width) = (
        w.gov.len(),
        w.gov.heads(),
        w.gov.digest(),
        w.gov.clock_width(),
    );
    // 20,000 organisations, each an inception and a binding (the review's flood cost a replica 850 MB). Each one
    // waits, or is refused for room or because its inception was dropped: transient, nobody's fault.
    let (mut held, mut full) = (0, 0);
    for i in 0..10_000u64 {
        let o = outsider(&mut w, 100_000 + i);
        for op in identity(&mut w, o, (i % 251) as u8) {
            match w.gov.insert(op.verify().unwrap()) {
                Ok(Inserted::Pending) => held += 1,
                Err(e) if e.is_transient() => full += 1,
                other => panic!("{other:?}"),
            }
        }
    }
    assert!(
        held > MAX_PENDING_OPS && full > 0,
        "{held} held, {full} refused"
    );
    assert_eq!(w.gov.len(), len, "nothing entered the DAG");
    assert_eq!(
        w.gov.heads(),
        heads,
        "no head: nothing for a checkpoint to name"
    );
    assert_eq!(w.gov.digest(), digest, "the replayed state is untouched");
    assert_eq!(
        w.gov.clock_width(),
        width,
        "clocks are as wide as the organisations admitted, not every one that ever signed"
    );
    assert!(w.gov.pending_len() <= MAX_PENDING_OPS, "bounded");
    assert!(
        w.gov.bound_orgs(&[7; 38]).is_empty(),
        "an outsider binds nothing"
    );
    // What a peer may ask for is untouched too: everything missing from a fresh replica is the honest DAG.
    let served = w.gov.ops_missing_iter(&[]).count();
    assert_eq!(served, len);
}

#[test]
fn outsiders_02_an_admit_carries_in_the_inception_it_names_in_every_delivery_order() {
    let mut w = World::wsis();
    let o = outsider(&mut w, 7);
    let [inception, binding] = identity(&mut w, o, 9);
    for op in [&inception, &binding] {
        w.gov.insert(op.clone().verify().unwrap()).unwrap();
    }
    assert!(
        w.gov.org(&w.id(o)).is_some_and(|i| !i.member),
        "an admission request"
    );
    assert_eq!(w.gov.admission_requests().len(), 1);
    let admit = w.admit(o);
    assert!(
        admit.parents().contains(&inception.id()),
        "an Admit names the inception it admits"
    );
    assert!(w.gov.is_member(&w.id(o)));
    assert_eq!(w.gov.bound_orgs(&[9; 38]), vec![w.id(o)]);
    assert_eq!(w.gov.pending_len(), 0);
    let reference = w.gov.digest();
    let ops = [inception, binding, admit];
    for order in [
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ] {
        let mut g = fresh(&w);
        let ordered: Vec<SignedOp> = order.iter().map(|&i| ops[i].clone()).collect();
        deliver(&mut g, &ordered);
        assert_eq!(g.digest(), reference, "order {order:?}");
        assert_eq!(g.pending_len(), 0, "order {order:?}");
    }
}

#[test]
fn outsiders_03_an_outsiders_other_ops_are_refused_without_blame_until_it_is_admitted() {
    let mut w = World::wsis();
    let o = outsider(&mut w, 8);
    let [inception, binding] = identity(&mut w, o, 3);
    for op in [&inception, &binding] {
        w.gov.insert(op.clone().verify().unwrap()).unwrap();
    }
    let join = w.sign_at(o, &[binding.id()], OpKind::JoinTeam { team: w.team("C1") });
    let refused = w.gov.insert(join.clone().verify().unwrap());
    assert_eq!(refused, Err(InsertError::NotAdmitted));
    assert!(
        InsertError::NotAdmitted.is_transient(),
        "not the sender's fault"
    );
    assert!(!w.gov.contains(&join.id()) && !w.gov.is_pending(&join.id()));
    // A second inception under the same (author, seq), and more than an identity's worth, are not held either.
    let genesis = w.log[0].id();
    let rec = w.orgs[o].inception.clone();
    let twin = w.sign_at(o, &[genesis, binding.id()], OpKind::OrgInception(rec));
    assert!(w.gov.insert(twin.verify().unwrap()).is_err());
    w.orgs[o].next_seq -= 1;
    // Admitted, the same op enters and is valid (it cites the binding, which the Admit carried in).
    w.admit(o);
    assert!(matches!(
        w.gov.insert(join.clone().verify().unwrap()),
        Ok(Inserted::Applied { .. })
    ));
    // Its JoinTeam does not cite the Admit: judged in its own history, it is not a member's.
    assert!(w.gov.validity(&join.id()).is_some_and(|v| v.is_err()));
    let later = w.op(o, OpKind::JoinTeam { team: w.team("C2") });
    assert_eq!(w.gov.validity(&later.id()), Some(Ok(())));
}

#[test]
fn outsiders_04_the_pending_area_is_bounded_and_expires_and_an_honest_newcomer_still_gets_in() {
    let mut w = World::wsis();
    let flood = MAX_PENDING_OPS + 500;
    for i in 0..flood as u64 {
        let o = outsider(&mut w, 200_000 + i);
        let [inception, _] = identity(&mut w, o, 1);
        let r = w.gov.insert(inception.verify().unwrap());
        assert!(
            matches!(r, Ok(Inserted::Pending) | Err(InsertError::PendingFull)),
            "{r:?}"
        );
    }
    assert_eq!(w.gov.pending_len(), MAX_PENDING_OPS);
    // While the flood is fresh an honest newcomer is refused for room: transient, so its node offers it again.
    let honest = outsider(&mut w, 77);
    let [inception, _] = identity(&mut w, honest, 5);
    let first = w.gov.insert(inception.clone().verify().unwrap());
    assert_eq!(first, Err(InsertError::PendingFull));
    assert!(InsertError::PendingFull.is_transient());
    // Every attempt ages the area (the logical clock): within the flood's time the newcomer is held.
    let mut attempts = 1;
    while w.gov.insert(inception.clone().verify().unwrap()) != Ok(Inserted::Pending) {
        attempts += 1;
        assert!(attempts <= PENDING_OP_TTL_HOLDS, "never held");
    }
    let expired = w.gov.take_expired_pending();
    assert!(!expired.is_empty());
    assert!(w.gov.org(&w.id(honest)).is_some(), "held despite the flood");
    w.admit(honest);
    assert!(w.gov.is_member(&w.id(honest)));
}

#[test]
fn outsiders_05_an_admit_whose_inception_expired_waits_and_takes_it_when_it_comes_again() {
    let mut w = World::wsis();
    let o = outsider(&mut w, 9);
    let [inception, binding] = identity(&mut w, o, 4);
    for op in [&inception, &binding] {
        w.gov.insert(op.clone().verify().unwrap()).unwrap();
    }
    let admit = w.admit(o);
    // A replica that has the Admit but lost the held ops (expired, or never got them).
    let mut g = fresh(&w);
    let r = g.insert(admit.clone().verify().unwrap()).unwrap();
    assert_eq!(
        r,
        Inserted::Parked {
            missing: vec![inception.id()]
        }
    );
    assert_eq!(g.missing(), vec![inception.id()], "fetched by id");
    assert!(matches!(
        g.insert(inception.verify().unwrap()),
        Ok(Inserted::Applied { .. })
    ));
    assert!(g.is_member(&w.id(o)));
    // The binding, offered again by the newcomer's node, enters as any member's op.
    assert!(matches!(
        g.insert(binding.verify().unwrap()),
        Ok(Inserted::Applied { .. })
    ));
    assert_eq!(g.digest(), w.gov.digest());
}
