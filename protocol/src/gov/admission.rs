//! Organisations waiting for admission: the replica's pending area (issue 11, defect 1).
//!
//! Anyone can make a key and sign an `OrgInception`; only a secretariat organisation's `Admit` makes the
//! organisation part of the federation. So nothing an organisation signs enters the DAG before an `Admit` of it
//! does:
//!
//! - **The gate.** An op whose author is neither a genesis secretariat organisation nor *incepted in the DAG* is
//!   held here, outside the DAG, if it is the author's inception or one of its bindings, and refused otherwise
//!   ([`InsertError::NotAdmitted`], transient: it may enter once the organisation is admitted). An inception
//!   enters the DAG only as the parent of an `Admit` of its organisation by a secretariat organisation: when such
//!   an `Admit` arrives and waits for ops held here, they are carried in with it (in sequence order, through the
//!   normal insertion); when the inception arrives after the `Admit` (which then parks, waiting for it), it passes
//!   the gate because a parked `Admit` of its organisation waits for it. Once the inception is in the DAG the
//!   organisation's other held ops follow it in, and its later ops are inserted as anyone's.
//! - **What it costs.** Nothing held is in the DAG: no vector clock, no dense index, no head, nothing a sync
//!   serves or a bundle holds, and a node stores only its own held ops. The area holds at most
//!   [`MAX_PENDING_OPS`] ops and [`MAX_PENDING_PER_ORG`] per organisation; it has a logical clock that ticks at
//!   every attempt to hold (refused ones included), and an op held more than [`PENDING_OP_TTL_HOLDS`] attempts ago
//!   is dropped, oldest first, before anything is refused for room. One organisation's ops can be kept from
//!   expiring ([`Governance::keep_pending_of`]): the node's own, which it cannot sign again without equivocating.
//! - **Order does not matter.** Whether an op is in the DAG once every op has arrived does not depend on the order
//!   of arrival: an admitted organisation's ops all enter (a refused one is offered again by the next sync, as
//!   for any transient refusal), a never-admitted one's never do. What is held at a given moment is a cache, not
//!   replicated state.

use super::{Governance, InsertError, Inserted, VerifiedOp};
use crate::ids::{IdMap, OpId, OrgId};
use crate::limits::{MAX_PENDING_OPS, MAX_PENDING_PER_ORG, PENDING_OP_TTL_HOLDS};
use crate::op::{OpKind, SignedOp};
use std::collections::BTreeMap;

/// One held op and when it arrived (the area's clock).
#[derive(Debug, Clone)]
struct Held {
    op: VerifiedOp,
    arrival: u64,
}

/// The pending area. See the module docs.
#[derive(Debug, Clone, Default)]
pub(crate) struct Pending {
    ops: IdMap<OpId, Held>,
    /// organisation → (seq → held op).
    by_org: IdMap<OrgId, BTreeMap<u64, OpId>>,
    /// arrival → held op, oldest first (for expiry).
    queue: BTreeMap<u64, OpId>,
    /// Attempts to hold so far.
    clock: u64,
    /// The organisation whose held ops never expire (the node's own).
    kept: Option<OrgId>,
    /// Ids dropped by expiry since the caller last took them (at most [`MAX_PENDING_OPS`] kept).
    expired: Vec<OpId>,
}

impl Pending {
    pub(crate) fn contains(&self, id: &OpId) -> bool {
        self.ops.contains_key(id)
    }

    fn author_of(&self, id: &OpId) -> Option<OrgId> {
        self.ops.get(id).map(|h| h.op.op().author())
    }

    /// The held inception of `org`, if any.
    fn inception_of(&self, org: &OrgId) -> Option<&SignedOp> {
        let id = self.by_org.get(org)?.get(&1)?;
        self.ops.get(id).map(|h| h.op.op())
    }

    /// Is the oldest expirable held op past its time when the clock reads `now`? (The kept organisation's ops
    /// are skipped: they are bounded by [`MAX_PENDING_PER_ORG`].)
    fn oldest_expirable(&self, now: u64) -> Option<OpId> {
        self.queue
            .values()
            .filter(|id| self.author_of(id) != self.kept)
            .map(|id| (id, self.ops.get(id).map_or(0, |h| h.arrival)))
            .next()
            .filter(|(_, arrival)| now.saturating_sub(*arrival) > PENDING_OP_TTL_HOLDS)
            .map(|(id, _)| *id)
    }

    /// Ticks the clock and drops what has expired.
    fn tick(&mut self) {
        self.clock += 1;
        while let Some(id) = self.oldest_expirable(self.clock) {
            self.remove(&id);
            if self.expired.len() < MAX_PENDING_OPS {
                self.expired.push(id);
            }
        }
    }

    fn insert(&mut self, op: VerifiedOp) {
        let id = op.op().id();
        let arrival = self.clock;
        self.by_org
            .entry(op.op().author())
            .or_default()
            .insert(op.op().seq(), id);
        self.queue.insert(arrival, id);
        self.ops.insert(id, Held { op, arrival });
    }

    fn remove(&mut self, id: &OpId) -> Option<VerifiedOp> {
        let held = self.ops.remove(id)?;
        self.queue.remove(&held.arrival);
        let org = held.op.op().author();
        if let Some(seqs) = self.by_org.get_mut(&org) {
            seqs.remove(&held.op.op().seq());
            if seqs.is_empty() {
                self.by_org.remove(&org);
            }
        }
        Some(held.op)
    }

    /// Takes all of `org`'s held ops out, in sequence order.
    fn take_org(&mut self, org: &OrgId) -> Vec<VerifiedOp> {
        let ids: Vec<OpId> = self
            .by_org
            .get(org)
            .map(|s| s.values().copied().collect())
            .unwrap_or_default();
        ids.iter().filter_map(|id| self.remove(id)).collect()
    }
}

impl Governance {
    /// Must `op` wait outside the DAG (or be refused) because its author is not admitted? See the module docs.
    pub(crate) fn gated(&self, op: &SignedOp) -> bool {
        let author = op.author();
        if self.fed.secretariat.contains(&author)
            || self.inception_op.contains_key(&author)
            || self.admitting == Some(author)
        {
            return false;
        }
        if self.open_gate {
            return false;
        }
        // The inception an `Admit` of its organisation waits for in the parking area, and for nothing else: it
        // enters with the `Admit`, so an inception is never in the DAG without an `Admit` of it.
        let id = op.id();
        let awaited = matches!(op.kind(), OpKind::OrgInception(_))
            && self.parking.waiters(&id).any(|w| {
                self.admits(w) == Some(author) && self.parking_missing_of(&w.id()) == [id]
            });
        !awaited
    }

    /// The organisation `op` admits, if it is an `Admit` by a genesis secretariat organisation.
    fn admits(&self, op: &SignedOp) -> Option<OrgId> {
        match op.kind() {
            OpKind::Admit { org } if self.fed.secretariat.contains(&op.author()) => Some(*org),
            _ => None,
        }
    }

    /// Why a gated op cannot be held now, if it cannot. Changes nothing ([`Governance::check`] asks the same, as
    /// of the expiry its attempt would do).
    pub(crate) fn hold_refusal(&self, op: &SignedOp) -> Option<InsertError> {
        let room = self.pending.ops.len() < MAX_PENDING_OPS
            || self
                .pending
                .oldest_expirable(self.pending.clock + 1)
                .is_some();
        self.hold_refusal_with(op, room)
    }

    fn hold_refusal_with(&self, op: &SignedOp, room: bool) -> Option<InsertError> {
        let author = op.author();
        let key = match op.kind() {
            OpKind::OrgInception(rec) => {
                if op.seq() != 1 {
                    return Some(InsertError::ChainRule {
                        seen: 0,
                        seq: op.seq(),
                    });
                }
                rec.body().key
            }
            OpKind::BindNode { .. } => match self.pending.inception_of(&author) {
                Some(inception) => inception.body().key,
                // Its inception is not held here (not arrived, or expired): offered again with it.
                None => return Some(InsertError::UnknownAuthor),
            },
            _ => return Some(InsertError::NotAdmitted),
        };
        if key != op.body().key {
            return Some(InsertError::KeyMismatch);
        }
        let seqs = self.pending.by_org.get(&author);
        if seqs.is_some_and(|s| s.contains_key(&op.seq())) || op.seq() > MAX_PENDING_PER_ORG as u64
        {
            // A second op under a held (author, seq), or more than an inception and its bindings.
            return Some(InsertError::NotAdmitted);
        }
        // Its parents must be known here (in the DAG or held), so that carrying it in cannot park it.
        let known = |p: &OpId| self.by_id.contains_key(p) || self.pending.contains(p);
        if !op.parents().iter().all(known) {
            return Some(InsertError::NotAdmitted);
        }
        (!room).then_some(InsertError::PendingFull)
    }

    /// Holds a gated op (see [`Governance::hold_refusal`]), after dropping what has expired.
    pub(crate) fn hold(&mut self, op: VerifiedOp) -> Result<(), InsertError> {
        self.pending.tick();
        let room = self.pending.ops.len() < MAX_PENDING_OPS;
        if let Some(refused) = self.hold_refusal_with(op.op(), room) {
            return Err(refused);
        }
        self.pending.insert(op);
        Ok(())
    }

    /// The organisation whose held ops an op with these missing parents carries in: an `Admit` by a secretariat
    /// organisation, waiting for ops of the organisation it admits that are held here, and for nothing else (so
    /// that the inception enters together with the `Admit`).
    pub(crate) fn carries(&self, op: &SignedOp, missing: &[OpId]) -> Option<OrgId> {
        let org = self.admits(op)?;
        let held = |m: &OpId| self.pending.author_of(m) == Some(org);
        (!missing.is_empty() && missing.iter().all(held)).then_some(org)
    }

    /// Inserts all of `org`'s held ops, in sequence order, past the gate. Returns the ids that entered the DAG,
    /// with what each released. An op the insertion refuses now (e.g. its chain is broken) is dropped.
    pub(crate) fn carry_in(&mut self, org: OrgId) -> Vec<OpId> {
        let held = self.pending.take_org(&org);
        if held.is_empty() {
            return Vec::new();
        }
        let outer = self.admitting.replace(org);
        let mut entered = Vec::new();
        for op in held {
            let id = op.op().id();
            if let Ok(Inserted::Applied { released, .. }) = self.insert(op) {
                entered.push(id);
                entered.extend(released);
            }
        }
        self.admitting = outer;
        entered
    }

    /// Carries in the held ops of organisations whose inception is among `entered` (ops that just entered the
    /// DAG). Returns the ids that entered.
    pub(crate) fn carry_in_after(&mut self, entered: &[OpId]) -> Vec<OpId> {
        let orgs: Vec<OrgId> = entered
            .iter()
            .filter_map(|id| self.get(id))
            .filter(|op| matches!(op.kind(), OpKind::OrgInception(_)))
            .map(|op| op.author())
            .filter(|org| self.pending.by_org.contains_key(org))
            .collect();
        orgs.into_iter().flat_map(|o| self.carry_in(o)).collect()
    }

    /// Whether `org` is a genesis secretariat organisation or its inception is in the DAG (so its ops are inserted
    /// like anyone's, not held for admission).
    pub fn is_incepted(&self, org: &OrgId) -> bool {
        self.fed.secretariat.contains(org) || self.inception_op.contains_key(org)
    }

    /// How many organisations the vector clocks are indexed by: the genesis secretariat and those incepted in the
    /// DAG, never one that only asked for admission (so a clock's cost does not grow with outsiders).
    pub fn clock_width(&self) -> usize {
        self.org_ids.len()
    }

    /// Ops of organisations not yet admitted, held outside the DAG.
    pub fn pending_len(&self) -> usize {
        self.pending.ops.len()
    }

    /// Whether `id` is held outside the DAG, waiting for its author's admission.
    pub fn is_pending(&self, id: &OpId) -> bool {
        self.pending.contains(id)
    }

    /// The held op `id`.
    pub fn pending_op(&self, id: &OpId) -> Option<&SignedOp> {
        self.pending.ops.get(id).map(|h| h.op.op())
    }

    /// Every held op, oldest first.
    pub fn pending_ops(&self) -> impl Iterator<Item = &SignedOp> {
        self.pending
            .queue
            .values()
            .filter_map(|id| self.pending_op(id))
    }

    /// `org`'s held ops, in sequence order.
    pub fn pending_of(&self, org: &OrgId) -> Vec<&SignedOp> {
        self.pending
            .by_org
            .get(org)
            .into_iter()
            .flat_map(|s| s.values())
            .filter_map(|id| self.pending_op(id))
            .collect()
    }

    /// Organisations asking for admission: each held inception, by organisation id.
    pub fn pending_inceptions(&self) -> Vec<&SignedOp> {
        let mut orgs: Vec<&OrgId> = self.pending.by_org.keys().collect();
        orgs.sort();
        orgs.into_iter()
            .filter_map(|o| self.pending.inception_of(o))
            .collect()
    }

    /// Keeps `org`'s held ops from expiring (a node's own: it cannot sign them again without equivocating).
    pub fn keep_pending_of(&mut self, org: OrgId) {
        self.pending.kept = Some(org);
    }

    /// Drops held ops (a flooding peer's, or ones a node let expire). Returns how many were held.
    pub fn evict_pending(&mut self, ids: &[OpId]) -> usize {
        ids.iter()
            .filter(|id| self.pending.remove(id).is_some())
            .count()
    }

    /// The held ops the area dropped as expired since the last call, oldest first.
    pub fn take_expired_pending(&mut self) -> Vec<OpId> {
        std::mem::take(&mut self.pending.expired)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::World;

    /// Held ops expire after their time in hold attempts, oldest first, except the kept organisation's.
    #[test]
    fn held_ops_expire_oldest_first_except_the_kept_organisations() {
        let mut w = World::wsis();
        let kept = w.add_org("Kept", "government", Some("KE"));
        let first = w.add_org("First", "civil-society", None);
        w.gov.keep_pending_of(w.id(kept));
        assert_eq!(w.gov.pending_len(), 2);
        w.gov.pending.clock += PENDING_OP_TTL_HOLDS;
        let _third = w.add_org("Third", "civil-society", None);
        assert!(w.gov.pending_of(&w.id(first)).is_empty(), "expired");
        assert_eq!(w.gov.pending_of(&w.id(kept)).len(), 1, "kept");
        assert_eq!(w.gov.take_expired_pending().len(), 1);
        assert_eq!(w.gov.pending_len(), 2);
    }
}
