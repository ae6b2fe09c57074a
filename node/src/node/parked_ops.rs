//! Which peer parked which governance ops, so one peer's orphans are bounded (catalogue case 8), under the same
//! rule as parked envelopes ([`crate::parking`]).

use super::*;
use crate::parking::{Bounds, Parking, Refusal};

/// Governance ops parked here at once, all peers together: below the replica's own backstop
/// ([`wsis_protocol::limits::MAX_PARKED_OPS`]), so a full ledger refuses a newcomer without blaming its peer
/// before the replica would refuse it as an error.
const MAX_PARKED_OPS_TOTAL: usize = 8_192;

/// Which peer made which governance ops wait for missing parents. The replica holds the ops; this decides per
/// peer what may stay parked there: a newcomer past its peer's quota, or with the ledger full, is refused and the
/// caller evicts it from the replica (`evict_parked`); nothing already parked moves for a newcomer.
#[derive(Debug)]
pub(super) struct ParkedLedger {
    ops: Parking<PeerId, OpId, OpId, ()>,
}

impl Default for ParkedLedger {
    fn default() -> Self {
        ParkedLedger {
            ops: Parking::new(Bounds {
                per_peer_entries: MAX_PARKED_OPS_PER_PEER,
                per_peer_bytes: usize::MAX,
                total_entries: MAX_PARKED_OPS_TOTAL,
                total_bytes: usize::MAX,
                peers: MAX_PARKING_PEERS,
            }),
        }
    }
}

impl ParkedLedger {
    /// Records that `peer` parked `id` (`bytes` long, waiting for `missing`), or refuses it: the caller then
    /// evicts it from the replica, and penalises the peer for a [`Refusal::Quota`]. Before refusing, ops no longer
    /// parked in the replica (per `still_parked`: released or evicted there) are forgotten.
    pub(super) fn record(
        &mut self,
        peer: PeerId,
        id: OpId,
        bytes: usize,
        missing: Vec<OpId>,
        still_parked: impl Fn(&OpId) -> bool,
    ) -> Result<(), Refusal> {
        if self.ops.refusal(&peer, bytes).is_some() {
            self.ops.retain(still_parked);
        }
        self.ops.park(&peer, id, bytes, missing, ())
    }

    /// Ops that left the replica's parking area because their parents arrived.
    pub(super) fn release(&mut self, ids: &[OpId]) {
        for id in ids {
            self.ops.remove(id);
        }
    }

    /// Everything `peer` parked, in arrival order (when it is banned).
    pub(super) fn forget(&mut self, peer: &PeerId) -> Vec<OpId> {
        self.ops
            .forget(peer)
            .into_iter()
            .map(|(id, _)| id)
            .collect()
    }

    /// Ops parked (and not known to have left) here.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.ops.len()
    }
}
