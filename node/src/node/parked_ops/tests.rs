//! The parked-op ledger (the parking rules themselves are tested in `crate::parking`): quotas per organisation,
//! the shared quota of unattributed peers, blame, and expiry into the replica.

use super::*;
use wsis_protocol::fixture::World;
use wsis_protocol::limits::MAX_BINDINGS_PER_ORG;
use wsis_protocol::op::OpKind;

/// The `n`th of many distinct ids.
fn nth(n: usize) -> OpId {
    let mut id = [0xee; 32];
    id[..8].copy_from_slice(&(n as u64).to_be_bytes());
    OpId(id)
}

/// A federation with two admitted organisations (2: Mallory, 3: honest), `k` peer ids bound to Mallory's and one
/// to the honest one.
fn world(k: usize) -> (World, Vec<PeerId>, PeerId) {
    let mut w = World::wsis();
    let mallory = w.add_org("Mallory", "private-sector", None);
    let honest = w.add_org("APC", "civil-society", None);
    w.admit(mallory);
    w.admit(honest);
    let peers: Vec<PeerId> = (0..k).map(|_| PeerId::random()).collect();
    for p in &peers {
        w.op(
            mallory,
            OpKind::BindNode {
                peer_id: p.to_bytes(),
            },
        );
    }
    let h = PeerId::random();
    w.op(
        honest,
        OpKind::BindNode {
            peer_id: h.to_bytes(),
        },
    );
    (w, peers, h)
}

/// Catalogue (issue 14 defect 6, for ops): an organisation's peer ids share one quota, so more peer ids buy no
/// more room; the one past the quota is blamed, and another organisation's peer still parks.
#[test]
fn one_organisations_peers_share_one_quota() {
    let (mut w, mallory, honest) = world(MAX_BINDINGS_PER_ORG - 1);
    let mut ledger = ParkedLedger::default();
    let now = Instant::now();
    for n in 0..MAX_PARKED_OPS_PER_ORG {
        let peer = mallory[n % mallory.len()];
        let r = ledger.record(&mut w.gov, peer, nth(n), 100, vec![], now);
        assert_eq!(r.refused, None, "{n}");
    }
    let r = ledger.record(&mut w.gov, mallory[0], nth(100_000), 100, vec![], now);
    assert!(matches!(r.refused, Some(Refusal::Quota { .. })) && r.blame);
    let r = ledger.record(&mut w.gov, mallory[1], nth(100_001), 100, vec![], now);
    assert!(
        r.blame,
        "a fresh peer id of the same organisation is no way round"
    );
    let r = ledger.record(&mut w.gov, honest, nth(200_000), 100, vec![], now);
    assert_eq!(
        r,
        Recorded::default(),
        "the honest organisation's quota is its own"
    );
    assert_eq!(ledger.len(), MAX_PARKED_OPS_PER_ORG + 1);
    // Forgetting one banned peer drops what it sent, not its organisation's other peers' ops.
    let forgotten = ledger.forget(&mallory[0]);
    assert_eq!(forgotten.first(), Some(&nth(0)), "in arrival order");
    assert_eq!(ledger.len(), MAX_PARKED_OPS_PER_ORG + 1 - forgotten.len());
}

/// Catalogue (issue 11 defect 6): forty fresh peer ids bound to nobody share one quota; filling it blames none of
/// them (it is not any one's fault) and leaves the rest of the ledger to members.
#[test]
fn unattributed_peers_share_one_quota_and_nobody_is_blamed_for_it() {
    let (mut w, _, honest) = world(0);
    let mut ledger = ParkedLedger::default();
    let now = Instant::now();
    let strangers: Vec<PeerId> = (0..40).map(|_| PeerId::random()).collect();
    let mut refused = 0;
    for n in 0..40 * MAX_PARKED_OPS_PER_ORG {
        let r = ledger.record(&mut w.gov, strangers[n % 40], nth(n), 100, vec![], now);
        assert!(!r.blame);
        refused += usize::from(r.refused.is_some());
    }
    assert_eq!(refused, 39 * MAX_PARKED_OPS_PER_ORG);
    assert_eq!(ledger.len(), MAX_PARKED_OPS_PER_ORG);
    let r = ledger.record(&mut w.gov, honest, nth(1_000_000), 100, vec![], now);
    assert_eq!(r, Recorded::default());
}

/// Catalogue (issue 11 defect 6): an op parked longer than the ttl is evicted from the ledger and from the replica
/// at the next record, and its room is free again.
#[test]
fn an_op_parked_too_long_expires_from_the_ledger_and_the_replica() {
    let (mut w, _, honest) = world(0);
    let mut ledger = ParkedLedger::default();
    let team = w.team("C1");
    let park = |w: &mut World, i: u8| {
        let op = w.sign_at(0, &[OpId([i; 32])], OpKind::JoinTeam { team: team.clone() });
        let id = op.id();
        let _ = w.gov.insert(op.verify().expect("verifies"));
        id
    };
    let old = park(&mut w, 1);
    let t0 = Instant::now();
    assert_eq!(
        ledger
            .record(&mut w.gov, honest, old, 100, vec![], t0)
            .evicted,
        0
    );
    let young = park(&mut w, 2);
    assert!(w.gov.is_parked(&old) && w.gov.is_parked(&young));
    let later = t0 + PARKED_OP_TTL + Duration::from_secs(1);
    let r = ledger.record(&mut w.gov, honest, young, 100, vec![], later);
    assert_eq!((r.evicted, r.refused), (1, None));
    assert!(!w.gov.is_parked(&old) && w.gov.is_parked(&young));
    assert_eq!(ledger.len(), 1);
}
