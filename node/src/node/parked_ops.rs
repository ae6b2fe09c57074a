//! Which peer parked which governance ops, so that what one organisation's peers park is bounded (catalogue case
//! 8; issue 11, defect 6), under the same rule as parked envelopes ([`crate::parking`]): a quota per
//! organisation (the one the sending peer is bound to; unattributed peers share one), a global cap below the
//! replica's, and expiry in time. A full ledger, or the shared quota of unattributed peers, never blames the peer
//! that hit it.

use super::*;
use crate::parking::{Bounds, Owner, Parking, Refusal};
use std::time::{Duration, Instant};

/// Governance ops charged to one organisation (all its peer ids together) that may wait for missing parents here;
/// past it, its newcomers are refused (evicted from the replica at once) and the sender penalised. Honest peers
/// send parents first, so they park only during a partial sync.
pub(super) const MAX_PARKED_OPS_PER_ORG: usize = 256;
/// Governance ops parked here at once, all owners together: below the replica's own backstop
/// ([`wsis_protocol::limits::MAX_PARKED_OPS`]), so a full ledger refuses a newcomer without blaming its peer
/// before the replica would refuse it as an error.
pub(super) const MAX_PARKED_OPS_TOTAL: usize = 8_192;
/// How long a governance op may wait for its parents here before it is evicted (it is fetched again, in order, by
/// the next sync if it is still wanted).
pub(super) const PARKED_OP_TTL: Duration = Duration::from_secs(10 * 60);

/// What [`ParkedLedger::record`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Recorded {
    /// Ops evicted from the replica: expired ones, and the newcomer if it was refused.
    pub(super) evicted: usize,
    /// The newcomer was refused, and why.
    pub(super) refused: Option<Refusal>,
    /// The refusal is the sender's fault (its organisation is past its quota): penalise it.
    pub(super) blame: bool,
}

/// Which peer made which governance ops wait for missing parents, charged to which organisation. The replica
/// holds the ops; this decides what may stay parked there: a newcomer past its organisation's quota, or with the
/// ledger full, is refused and evicted from the replica (`evict_parked`); nothing already parked moves for a
/// newcomer; what waited longer than [`PARKED_OP_TTL`] is evicted.
#[derive(Debug)]
pub(super) struct ParkedLedger {
    ops: Parking<Owner, PeerId, OpId, OpId, ()>,
}

impl Default for ParkedLedger {
    fn default() -> Self {
        ParkedLedger {
            ops: Parking::new(Bounds {
                per_owner_entries: MAX_PARKED_OPS_PER_ORG,
                per_owner_bytes: usize::MAX,
                total_entries: MAX_PARKED_OPS_TOTAL,
                total_bytes: usize::MAX,
                owners: MAX_PARKED_OPS_TOTAL,
                ttl: PARKED_OP_TTL,
            }),
        }
    }
}

impl ParkedLedger {
    /// Records that `peer` parked `id` in `gov` (`bytes` long, waiting for `missing`) at `now`, or refuses it and
    /// evicts it from `gov`. Ops that expired (here, or in the replica's own parking area) go first.
    pub(super) fn record(
        &mut self,
        gov: &mut Governance,
        peer: PeerId,
        id: OpId,
        bytes: usize,
        missing: Vec<OpId>,
        now: Instant,
    ) -> Recorded {
        for gone in gov.take_expired_parked() {
            self.ops.remove(&gone);
        }
        let owner = Owner::of(gov, &peer.to_bytes());
        let (expired, refused) =
            match self
                .ops
                .park(&owner, &peer, id, bytes, missing, (), now, true)
            {
                Ok(expired) => (expired, None),
                Err((r, expired)) => (expired, Some(r)),
            };
        let expired: Vec<OpId> = expired.into_iter().map(|(id, _)| id).collect();
        let mut evicted = gov.evict_parked(&expired);
        if refused.is_some() {
            evicted += gov.evict_parked(&[id]);
        }
        Recorded {
            evicted,
            refused,
            blame: matches!(refused, Some(Refusal::Quota { .. })) && owner.accountable(),
        }
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

#[cfg(test)]
mod tests;
