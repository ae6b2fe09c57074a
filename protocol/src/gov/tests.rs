//! Unit tests of the replica's own mechanics (the rules are tested in protocol/tests/).

use super::*;
use crate::fixture::World;
use crate::op::OpKind;

#[test]
fn topological_order_puts_parents_first_and_the_genesis_at_the_front() {
    let mut w = World::wsis();
    let apc = w.add_org("APC", "civil-society", None);
    w.admit(apc);
    w.op(apc, OpKind::JoinTeam { team: w.team("C1") });
    let mut ops = w.log.clone();
    ops.reverse();
    let sorted = topological_order(ops);
    assert!(matches!(sorted[0].kind(), OpKind::Genesis(_)));
    let mut g = Governance::new(sorted[0].clone().verify().unwrap()).unwrap();
    for op in &sorted[1..] {
        let r = g.insert(op.clone().verify().unwrap()).unwrap();
        assert!(
            matches!(r, Inserted::Applied { .. }),
            "{op:?} parked: not topological"
        );
    }
    assert_eq!(g.digest(), w.gov.digest());
}

#[test]
fn last_seq_follows_each_author() {
    let mut w = World::wsis();
    let apc = w.add_org("APC", "civil-society", None);
    assert_eq!(w.gov.last_seq(&w.id(apc)), 1);
    assert_eq!(w.gov.last_seq(&w.id(0)), 1);
    w.admit(apc);
    assert_eq!(w.gov.last_seq(&w.id(0)), 2);
    assert_eq!(w.gov.last_seq(&crate::ids::OrgId([9; 32])), 0);
}

#[test]
fn released_ops_are_reported_in_the_order_they_entered() {
    let mut w = World::wsis();
    let apc = w.add_org("APC", "civil-society", None);
    w.admit(apc);
    let mut g = Governance::new(w.log[0].clone().verify().unwrap()).unwrap();
    let (a, b, c) = (w.log[1].clone(), w.log[2].clone(), w.log[0].clone());
    let _ = c;
    assert!(matches!(
        g.insert(b.clone().verify().unwrap()).unwrap(),
        Inserted::Parked { .. }
    ));
    match g.insert(a.clone().verify().unwrap()).unwrap() {
        Inserted::Applied { released, .. } => assert_eq!(released, vec![b.id()]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_have_summary_lets_a_peer_that_lacks_our_newest_op_send_only_the_difference() {
    let mut w = World::wsis();
    let orgs: Vec<usize> = (0..6)
        .map(|i| w.add_org(&format!("Org {i}"), "civil-society", None))
        .collect();
    for &o in &orgs {
        w.admit(o);
    }
    for &o in &orgs {
        w.op(o, OpKind::JoinTeam { team: w.team("C1") });
    }
    // The peer has everything so far; we then add one op of our own and the peer adds two.
    let mut peer = w.gov.clone();
    let base = w.gov.heads();
    let ours = w.op(orgs[0], OpKind::JoinTeam { team: w.team("C2") });
    let before = w.gov.clone();
    let first = w.op_at(orgs[1], &base, OpKind::JoinTeam { team: w.team("C3") });
    let second = w.op_at(
        orgs[1],
        &[first.id()],
        OpKind::JoinTeam { team: w.team("C4") },
    );
    let theirs = [first, second];
    for op in &theirs {
        peer.insert(op.clone().verify().unwrap()).unwrap();
    }
    assert!(!peer.contains(&ours.id()));

    // Heads alone: the peer knows none of them and would send its whole DAG.
    assert_eq!(before.heads(), vec![ours.id()]);
    assert_eq!(peer.ops_missing_from(&before.heads()).len(), peer.len());
    // Heads and their ancestors: only what we lack.
    let summary = before.have_summary(128);
    assert_eq!(summary[0], ours.id());
    let mut sent: Vec<OpId> = peer
        .ops_missing_from(&summary)
        .iter()
        .map(|o| o.id())
        .collect();
    sent.sort();
    let mut want: Vec<OpId> = theirs.iter().map(|o| o.id()).collect();
    want.sort();
    assert_eq!(sent, want);
    // Bounded, and breadth-first from the heads.
    assert_eq!(before.have_summary(1), vec![ours.id()]);
    assert!(before.have_summary(10_000).len() <= before.len());
}

#[test]
fn evicted_parked_ops_are_gone_and_a_late_parent_releases_only_the_rest() {
    let mut w = World::wsis();
    let apc = w.add_org("APC", "civil-society", None);
    w.admit(apc);
    let mut replica = Governance::new(w.log[0].clone().verify().unwrap()).unwrap();
    for op in &w.log[1..] {
        replica.insert(op.clone().verify().unwrap()).unwrap();
    }
    // A parent the replica lacks, and two children waiting for it.
    let parent = w.op(apc, OpKind::JoinTeam { team: w.team("C1") });
    let kept = w.op_at(apc, &[parent.id()], OpKind::JoinTeam { team: w.team("C2") });
    let evicted = w.op_at(0, &[parent.id()], OpKind::JoinTeam { team: w.team("C3") });
    for op in [&kept, &evicted] {
        let r = replica.insert(op.clone().verify().unwrap()).unwrap();
        assert!(matches!(r, Inserted::Parked { .. }));
    }
    assert_eq!(replica.parked_len(), 2);
    assert_eq!(replica.evict_parked(&[evicted.id(), OpId([9; 32])]), 1);
    assert!(!replica.is_parked(&evicted.id()) && replica.is_parked(&kept.id()));
    assert_eq!(replica.parked_len(), 1);
    match replica.insert(parent.clone().verify().unwrap()).unwrap() {
        Inserted::Applied { released, .. } => assert_eq!(released, vec![kept.id()]),
        other => panic!("{other:?}"),
    }
    assert!(!replica.contains(&evicted.id()));
    assert_eq!(replica.parked_len(), 0);
    // Fetched again later, the evicted op enters normally.
    let r = replica.insert(evicted.clone().verify().unwrap()).unwrap();
    assert!(matches!(r, Inserted::Applied { .. }));
}

#[test]
fn parents_after_keep_the_chain_rule_past_the_parent_limit() {
    use crate::limits::MAX_PARENTS;
    let mut w = World::wsis();
    let orgs: Vec<usize> = (0..MAX_PARENTS + 6)
        .map(|i| w.add_org(&format!("Org {i}"), "civil-society", None))
        .collect();
    for &o in &orgs {
        w.admit(o);
    }
    let base = w.gov.heads();
    // The first org's own op, then every other org concurrently: more heads than one op may cite.
    let own = w.op_at(orgs[0], &base, OpKind::JoinTeam { team: w.team("C1") });
    for &o in &orgs[1..] {
        w.op_at(o, &base, OpKind::JoinTeam { team: w.team("C1") });
    }
    assert!(w.gov.heads().len() > MAX_PARENTS);
    assert_eq!(w.gov.last_op(&w.id(orgs[0])), Some(own.id()));
    let parents = w.gov.parents_after(w.gov.last_op(&w.id(orgs[0])));
    assert_eq!(parents.len(), MAX_PARENTS);
    assert!(parents.contains(&own.id()), "the chain rule holds");
    assert!(
        parents.windows(2).all(|p| p[0] < p[1]),
        "sorted, no repeats"
    );
    // An op this replica has not seen is cited itself.
    let unseen = OpId([7; 32]);
    let parents = w.gov.parents_after(Some(unseen));
    assert!(parents.contains(&unseen) && parents.len() == MAX_PARENTS);
    // Few heads: all of them.
    let mut small = World::wsis();
    let apc = small.add_org("APC", "civil-society", None);
    small.admit(apc);
    assert_eq!(
        small.gov.parents_after(small.gov.last_op(&small.id(apc))),
        small.gov.heads()
    );
    assert_eq!(small.gov.last_op(&crate::ids::OrgId([9; 32])), None);
}
