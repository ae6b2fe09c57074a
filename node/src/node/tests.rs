//! Unit tests of the refused-id memory (the parked-op ledger's are in `parked_ops/tests.rs`).

use super::*;

fn op(n: u8) -> OpId {
    OpId([n; 32])
}

/// The `n`th of many distinct ids (none equal to an `op(_)`).
fn nth(n: usize) -> OpId {
    let mut id = [0xee; 32];
    id[..8].copy_from_slice(&(n as u64).to_be_bytes());
    OpId(id)
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
