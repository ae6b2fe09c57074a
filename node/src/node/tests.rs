//! Unit tests of the parked-op ledger (the rules themselves are tested in `crate::parking`) and of the refused-id
//! memory.

use super::parked_ops::ParkedLedger;
use super::*;
use crate::parking::Refusal;

fn op(n: u8) -> OpId {
    OpId([n; 32])
}

/// The `n`th of many distinct ids (none equal to an `op(_)`).
fn nth(n: usize) -> OpId {
    let mut id = [0xee; 32];
    id[..8].copy_from_slice(&(n as u64).to_be_bytes());
    OpId(id)
}

#[test]
fn a_peer_past_its_parking_quota_has_its_newcomers_refused() {
    let mut ledger = ParkedLedger::default();
    let (mallory, honest) = (PeerId::random(), PeerId::random());
    let parked = |_: &OpId| true;
    for n in 0..MAX_PARKED_OPS_PER_PEER {
        assert!(ledger.record(mallory, nth(n), 100, vec![], parked).is_ok());
    }
    assert!(ledger.record(honest, op(100), 100, vec![], parked).is_ok());
    // Mallory's next is refused, and nothing of anyone's moves.
    assert!(matches!(
        ledger.record(mallory, op(3), 100, vec![], parked),
        Err(Refusal::Quota { .. })
    ));
    assert_eq!(ledger.len(), MAX_PARKED_OPS_PER_PEER + 1);
    // Ops released meanwhile (no longer parked) are forgotten before anything is refused.
    let released = |o: &OpId| *o != nth(0);
    assert!(ledger.record(mallory, op(4), 100, vec![], released).is_ok());
    // Released on arrival of their parents.
    ledger.release(&[nth(1)]);
    let forgotten = ledger.forget(&mallory);
    assert_eq!(forgotten.len(), MAX_PARKED_OPS_PER_PEER - 1);
    assert_eq!(forgotten.last(), Some(&op(4)), "in arrival order");
    assert!(ledger.forget(&mallory).is_empty());
    assert_eq!(ledger.forget(&honest), vec![op(100)]);
}

#[test]
fn past_the_tracked_peers_a_new_peers_orphan_is_refused_without_blame() {
    let mut ledger = ParkedLedger::default();
    for n in 0..MAX_PARKING_PEERS {
        assert!(ledger
            .record(PeerId::random(), nth(n), 100, vec![], |_| true)
            .is_ok());
    }
    let newcomer = PeerId::random();
    assert_eq!(
        ledger.record(newcomer, op(201), 100, vec![], |_| true),
        Err(Refusal::Full)
    );
    // Once the others' ops are released, there is room again.
    assert!(ledger
        .record(newcomer, op(202), 100, vec![], |_| false)
        .is_ok());
    assert_eq!(ledger.len(), 1);
}

/// The refused-id memory: a peer's entries past its cap push out its own oldest, never another peer's; past the
/// total, the oldest overall goes; an id is charged to its first sender once.
#[test]
fn refused_ids_are_bounded_per_peer_and_in_total_oldest_first() {
    use super::refused::RefusedIds;
    let mut memory: RefusedIds<OpId> = RefusedIds::new(4, 10);
    let (mallory, honest) = (PeerId::random(), PeerId::random());
    assert!(memory.remember(op(1), honest, "structurally invalid: teams unsorted"));
    assert!(!memory.remember(op(1), mallory, "again"), "remembered once");
    assert_eq!(memory.get(&op(1)).map(|r| r.peer), Some(honest));
    for n in 0..100 {
        memory.remember(nth(n), mallory, "bad");
    }
    // Mallory's hundred distinct ids keep only its newest four; the honest peer's entry stays.
    assert!(memory.contains(&op(1)));
    assert_eq!(memory.len(), 5);
    assert!((96..100).all(|n| memory.contains(&nth(n))));
    assert!(!memory.contains(&nth(95)));
    // Many peers (one id each) fill the total: the oldest overall is forgotten first.
    for n in 0..10 {
        memory.remember(nth(1000 + n), PeerId::random(), "bad");
    }
    assert_eq!(memory.len(), 10);
    assert!(!memory.contains(&op(1)), "the oldest went first");
    assert!(memory.contains(&nth(1009)));
    // A long reason is cut, on a character boundary.
    memory.remember(op(2), honest, &"é".repeat(500));
    assert!(memory.get(&op(2)).is_some_and(|r| r.reason.len() <= 200));
}
