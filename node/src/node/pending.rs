//! Which peer made this node hold which ops of organisations not yet admitted (issue 11, defect 1), so that one
//! peer's share of the replica's pending area (`wsis_protocol::gov` admission) is small, expires in time, and a peer
//! that pushes more than an organisation's identity is an outsider's flood: refused and penalised.
//!
//! The replica decides *whether* an op waits for admission; this decides how many one peer may make wait. A peer
//! is charged for what it sent, whoever signed it: an outsider can make keys for free, so per-organisation quotas
//! would not bound it, but every peer id costs it a connection (and a ban ends it).

use super::*;
use crate::parking::{Bounds, Parking, Refusal};
use std::time::{Duration, Instant};

/// Held ops one peer may have waiting for admission here: an organisation's inception and its bindings, with
/// room for one key rotation of its node. An honest newcomer sends two.
pub(super) const MAX_PENDING_PER_PEER: usize = 8;
/// Held ops charged here at once, all peers together: below the replica's own bound
/// ([`wsis_protocol::limits::MAX_PENDING_OPS`]), so that the ledger refuses before the replica does.
pub(super) const MAX_PENDING_TOTAL: usize = 2_048;
/// Peers with ops held here at once.
pub(super) const MAX_PENDING_PEERS: usize = 512;
/// How long an op may wait for its organisation's admission here before it is dropped; the organisation's node
/// offers it again at its next sync.
pub(super) const PENDING_TTL: Duration = Duration::from_secs(10 * 60);

/// What [`PendingLedger::record`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Recorded {
    /// Ops dropped from the replica's pending area: expired ones, and the newcomer if it was refused.
    pub(super) evicted: usize,
    /// The newcomer was refused, and why.
    pub(super) refused: Option<Refusal>,
}

/// Which peer made which ops wait for admission. See the module docs.
#[derive(Debug)]
pub(super) struct PendingLedger {
    ops: Parking<PeerId, PeerId, OpId, OpId, ()>,
}

impl Default for PendingLedger {
    fn default() -> Self {
        PendingLedger {
            ops: Parking::new(Bounds {
                per_owner_entries: MAX_PENDING_PER_PEER,
                per_owner_bytes: usize::MAX,
                total_entries: MAX_PENDING_TOTAL,
                total_bytes: usize::MAX,
                owners: MAX_PENDING_PEERS,
                ttl: PENDING_TTL,
            }),
        }
    }
}

impl PendingLedger {
    /// Records that `peer` made `gov` hold `id` (`bytes` long) at `now`, or refuses it and drops it from `gov`.
    /// Ops that expired here or in the replica go first.
    pub(super) fn record(
        &mut self,
        gov: &mut Governance,
        peer: PeerId,
        id: OpId,
        bytes: usize,
        now: Instant,
    ) -> Recorded {
        for gone in gov.take_expired_pending() {
            self.ops.remove(&gone);
        }
        let (expired, refused) =
            match self
                .ops
                .park(&peer, &peer, id, bytes, Vec::new(), (), now, true)
            {
                Ok(expired) => (expired, None),
                Err((r, expired)) => (expired, Some(r)),
            };
        let expired: Vec<OpId> = expired.into_iter().map(|(id, _)| id).collect();
        let mut evicted = gov.evict_pending(&expired);
        if refused.is_some() {
            evicted += gov.evict_pending(&[id]);
        }
        Recorded { evicted, refused }
    }

    /// Ops that entered the DAG (their organisation was admitted) or left the replica's pending area.
    pub(super) fn release(&mut self, ids: &[OpId]) {
        for id in ids {
            self.ops.remove(id);
        }
    }

    /// Everything `peer` made wait (when it is banned).
    pub(super) fn forget(&mut self, peer: &PeerId) -> Vec<OpId> {
        self.ops
            .forget(peer)
            .into_iter()
            .map(|(id, _)| id)
            .collect()
    }

    /// Ops charged here (and not known to have left).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.ops.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wsis_protocol::fixture::World;

    /// A peer past its quota has its newcomer refused and dropped from the replica; another peer is unaffected;
    /// entries past their time are dropped.
    #[test]
    fn one_peer_holds_at_most_its_quota_and_entries_expire() {
        let mut w = World::wsis();
        let flooder = PeerId::random();
        let other = PeerId::random();
        let mut ledger = PendingLedger::default();
        let t0 = Instant::now();
        let mut refused = 0;
        for i in 0..MAX_PENDING_PER_PEER + 3 {
            let o = w.add_org(&format!("Junk {i}"), "civil-society", None);
            let id = w.gov.last_op(&w.id(o)).expect("held");
            let r = ledger.record(&mut w.gov, flooder, id, 100, t0);
            refused += usize::from(r.refused.is_some());
        }
        assert_eq!(refused, 3);
        assert_eq!(w.gov.pending_len(), MAX_PENDING_PER_PEER);
        let o = w.add_org("Honest", "government", Some("KE"));
        let id = w.gov.last_op(&w.id(o)).expect("held");
        let r = ledger.record(&mut w.gov, other, id, 100, t0);
        assert_eq!(r.refused, None);
        // Past their time, the flooder's go at the next record.
        let o = w.add_org("Later", "government", Some("BR"));
        let id = w.gov.last_op(&w.id(o)).expect("held");
        let later = t0 + PENDING_TTL + Duration::from_secs(1);
        let r = ledger.record(&mut w.gov, other, id, 100, later);
        assert_eq!(r.evicted, MAX_PENDING_PER_PEER + 1);
        assert_eq!((w.gov.pending_len(), ledger.len()), (1, 1));
    }
}
