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
