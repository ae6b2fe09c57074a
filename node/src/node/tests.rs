//! Unit tests of the parked-op ledger.

use super::parked_ops::ParkedLedger;
use super::*;

fn op(n: u8) -> OpId {
    OpId([n; 32])
}

#[test]
fn a_peer_past_its_parking_quota_loses_its_oldest_parked_ops() {
    let mut ledger = ParkedLedger::default();
    let (mallory, honest) = (PeerId::random(), PeerId::random());
    let parked = |_: &OpId| true;
    for n in 0..3 {
        assert!(ledger.record(mallory, op(n), 3, parked).is_empty());
    }
    assert!(ledger.record(honest, op(100), 3, parked).is_empty());
    // The fourth of Mallory's evicts its first, and only Mallory's.
    assert_eq!(ledger.record(mallory, op(3), 3, parked), vec![op(0)]);
    assert_eq!(ledger.record(mallory, op(4), 3, parked), vec![op(1)]);
    // Ops released meanwhile (no longer parked) are forgotten before anything is evicted.
    let released = |o: &OpId| *o != op(2) && *o != op(3);
    assert!(ledger.record(mallory, op(5), 3, released).is_empty());
    assert_eq!(ledger.forget(&mallory), vec![op(4), op(5)]);
    assert!(ledger.forget(&mallory).is_empty());
    assert_eq!(ledger.forget(&honest), vec![op(100)]);
}

#[test]
fn past_the_tracked_peers_a_new_peers_orphan_is_evicted_at_once() {
    let mut ledger = ParkedLedger::default();
    for n in 0..MAX_PARKING_PEERS {
        assert!(ledger
            .record(PeerId::random(), op((n % 200) as u8), 8, |_| true)
            .is_empty());
    }
    let newcomer = PeerId::random();
    assert_eq!(ledger.record(newcomer, op(201), 8, |_| true), vec![op(201)]);
    // Once the others' ops are released, there is room again.
    assert!(ledger.record(newcomer, op(202), 8, |_| false).is_empty());
    assert_eq!(ledger.by_peer.len(), 1);
}
