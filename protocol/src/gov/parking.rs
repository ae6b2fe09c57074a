//! Ops waiting for missing parents: the replica's parking area (issue 11, defect 6).
//!
//! A parked op is not in the DAG; it waits for parents this replica does not have and enters when the last of
//! them arrives. Everything about it is peer-chosen (its parents above all: any 32 bytes), so the area is built to
//! cost the same whatever those bytes are:
//!
//! - **Only ops of known authors park.** Before an op parks, its key must be its author's inception key (an
//!   `OrgInception` carries its own; any other op needs the inception in the DAG). An op of an unknown author is
//!   refused ([`InsertError::UnknownAuthor`], not the sender's fault: it may be fetched again once the inception is
//!   here) and one with a wrong key is refused as [`InsertError::KeyMismatch`], both without parking. So parking
//!   costs a flooder a signing key the federation knows.
//! - **Linear in what is parked, whatever the ids.** The maps are keyed SipHash ([`crate::ids::IdMap`]), so no
//!   choice of parent ids collides on purpose; the list of ops waiting for one parent is ordered by arrival
//!   (`BTreeMap`), so taking one op out of it is logarithmic, not a scan (before, 10,000 ops citing one invented
//!   parent made every eviction walk all of them). [`Parking::work`] counts the entries touched, for the tests.
//! - **Bounded and expiring.** At most [`MAX_PARKED_OPS`] ops. The area has a logical clock that ticks at every
//!   attempt to park (refused ones included, so a full area ages); an op parked more than [`PARKED_OP_TTL_PARKS`]
//!   attempts ago is dropped before the area refuses anything, oldest first. The clock depends only on the
//!   sequence of insertions, so two replicas fed the same ops behave the same. A dropped op is fetched again by
//!   the next sync; the ids dropped are kept for the caller ([`Governance::take_expired_parked`]).
//! - **A full area is nobody's fault.** [`InsertError::ParkingFull`] says so; the node never penalises for it
//!   (per-organisation quotas and time expiry at the node: `node/src/node/parked_ops.rs`).

use super::{Governance, InsertError, VerifiedOp};
use crate::ids::{IdMap, OpId};
use crate::limits::{MAX_PARKED_OPS, PARKED_OP_TTL_PARKS};
use crate::op::{OpKind, SignedOp};
use std::collections::BTreeMap;

/// One parked op and when it arrived (the area's clock).
#[derive(Debug, Clone)]
struct Slot {
    op: VerifiedOp,
    arrival: u64,
}

/// The parking area. See the module docs.
#[derive(Debug, Clone, Default)]
pub(crate) struct Parking {
    ops: IdMap<OpId, Slot>,
    /// missing parent → (arrival → parked op waiting for it).
    waiting: IdMap<OpId, BTreeMap<u64, OpId>>,
    /// arrival → parked op, oldest first (for expiry).
    queue: BTreeMap<u64, OpId>,
    /// Attempts to park so far.
    clock: u64,
    /// Ids dropped by expiry since the caller last took them (at most [`MAX_PARKED_OPS`] kept).
    expired: Vec<OpId>,
    /// Index entries touched so far (insertions, removals, releases): linear in the ops parked, for tests.
    work: u64,
}

impl Parking {
    pub(crate) fn len(&self) -> usize {
        self.ops.len()
    }

    pub(crate) fn contains(&self, id: &OpId) -> bool {
        self.ops.contains_key(id)
    }

    /// Whether some parked op waits for `id`.
    pub(crate) fn is_awaited(&self, id: &OpId) -> bool {
        self.waiting.contains_key(id)
    }

    /// The parked ops waiting for `id`, in arrival order.
    pub(crate) fn waiters(&self, id: &OpId) -> impl Iterator<Item = &SignedOp> {
        self.waiting
            .get(id)
            .into_iter()
            .flat_map(|w| w.values())
            .filter_map(|child| self.ops.get(child).map(|s| s.op.op()))
    }

    /// Would an attempt to park now find room (after the expiry that attempt would do)?
    fn has_room(&self) -> bool {
        self.ops.len() < MAX_PARKED_OPS || self.oldest_expires_at(self.clock + 1)
    }

    /// Is the oldest parked op past its time when the clock reads `now`?
    fn oldest_expires_at(&self, now: u64) -> bool {
        self.queue
            .first_key_value()
            .is_some_and(|(&arrival, _)| now.saturating_sub(arrival) > PARKED_OP_TTL_PARKS)
    }

    /// Parks `op` waiting for `missing`, after dropping what has expired; refuses it if the area is still full.
    fn park(&mut self, op: VerifiedOp, missing: &[OpId]) -> Result<(), InsertError> {
        self.clock += 1;
        while self.oldest_expires_at(self.clock) {
            let Some((_, id)) = self.queue.pop_first() else {
                break;
            };
            self.remove(&id);
            if self.expired.len() < MAX_PARKED_OPS {
                self.expired.push(id);
            }
        }
        if self.ops.len() >= MAX_PARKED_OPS {
            return Err(InsertError::ParkingFull);
        }
        let id = op.op().id();
        let arrival = self.clock;
        for m in missing {
            self.work += 1;
            self.waiting.entry(*m).or_default().insert(arrival, id);
        }
        self.queue.insert(arrival, id);
        self.ops.insert(id, Slot { op, arrival });
        Ok(())
    }

    /// Takes `id` out with its index entries.
    fn remove(&mut self, id: &OpId) -> Option<VerifiedOp> {
        let slot = self.ops.remove(id)?;
        self.queue.remove(&slot.arrival);
        for parent in slot.op.op().parents() {
            self.work += 1;
            if let Some(waiting) = self.waiting.get_mut(parent) {
                waiting.remove(&slot.arrival);
                if waiting.is_empty() {
                    self.waiting.remove(parent);
                }
            }
        }
        Some(slot.op)
    }

    /// The parked ops waiting for `parent`, in arrival order; the index forgets `parent` (they stay parked).
    fn take_waiters(&mut self, parent: &OpId) -> Vec<OpId> {
        let waiters: Vec<OpId> = self
            .waiting
            .remove(parent)
            .map(|w| w.into_values().collect())
            .unwrap_or_default();
        self.work += waiters.len() as u64;
        waiters
    }
}

impl Governance {
    /// Ops waiting for missing parents.
    pub fn parked_len(&self) -> usize {
        self.parking.len()
    }

    /// Whether `id` waits in the parking area for missing parents.
    pub fn is_parked(&self, id: &OpId) -> bool {
        self.parking.contains(id)
    }

    /// Parents that parked ops wait for and that this replica does not have: what to fetch by id.
    pub fn missing(&self) -> Vec<OpId> {
        let mut v: Vec<OpId> = self
            .parking
            .waiting
            .keys()
            .filter(|id| !self.by_id.contains_key(id))
            .copied()
            .collect();
        v.sort();
        v
    }

    /// The parents the parked op `id` still waits for.
    pub(crate) fn parking_missing_of(&self, id: &OpId) -> Vec<OpId> {
        self.parking.ops.get(id).map_or_else(Vec::new, |slot| {
            slot.op
                .op()
                .parents()
                .iter()
                .filter(|p| !self.by_id.contains_key(p))
                .copied()
                .collect()
        })
    }

    /// Drops parked ops (an orphan flood's, or a banned peer's, or ones a node let expire; catalogue case 8): they
    /// leave the parking area and the lists of ops waiting for their parents. Returns how many were parked. An
    /// honest op dropped here is fetched again by the next sync, in order.
    pub fn evict_parked(&mut self, ids: &[OpId]) -> usize {
        ids.iter()
            .filter(|id| self.parking.remove(id).is_some())
            .count()
    }

    /// The ops the parking area dropped as expired since the last call (so that a caller keeping its own account
    /// of parked ops can forget them), oldest first.
    pub fn take_expired_parked(&mut self) -> Vec<OpId> {
        std::mem::take(&mut self.parking.expired)
    }

    /// Index entries the parking area has touched so far: grows linearly with the ops parked and released, whatever
    /// their ids (catalogue: `protocol/tests/catalogue_parking.rs`).
    pub fn parking_work(&self) -> u64 {
        self.parking.work
    }

    /// Why an op with missing parents could not park now, if it could not: its author is unknown or its key is not
    /// the author's, or the area is full. Changes nothing ([`Governance::check`] asks the same).
    pub(crate) fn park_refusal(&self, op: &SignedOp) -> Option<InsertError> {
        let known = match op.kind() {
            OpKind::OrgInception(_) => true,
            _ => self.inceptions.contains_key(&op.author()),
        };
        if !known {
            return Some(InsertError::UnknownAuthor);
        }
        if self.author_key(op) != Some(op.body().key) {
            return Some(InsertError::KeyMismatch);
        }
        (!self.parking.has_room()).then_some(InsertError::ParkingFull)
    }

    /// Parks an op whose parents are not all here (its author known and its key right), or refuses it.
    pub(crate) fn park(&mut self, op: VerifiedOp, missing: &[OpId]) -> Result<(), InsertError> {
        match self.park_refusal(op.op()) {
            // A full area is re-judged by the attempt itself (which ticks the clock and may expire the oldest).
            None | Some(InsertError::ParkingFull) => self.parking.park(op, missing),
            Some(e) => Err(e),
        }
    }

    /// Attaches the parked ops that `id` (just attached) lets in, transitively, in arrival order. Returns the ids
    /// that entered the DAG. A parked op that now fails the structural checks (e.g. the chain rule) is dropped.
    pub(crate) fn release_parked(&mut self, id: OpId, recompute: &mut bool) -> Vec<OpId> {
        let mut released = Vec::new();
        let mut ready = vec![id];
        while let Some(parent) = ready.pop() {
            for child in self.parking.take_waiters(&parent) {
                let all_present = self.parking.ops.get(&child).is_some_and(|c| {
                    c.op.op()
                        .parents()
                        .iter()
                        .all(|p| self.by_id.contains_key(p))
                });
                if !all_present {
                    // An `Admit` now waiting only for held ops of the organisation it admits carries them in.
                    let carries = self.parking.ops.get(&child).and_then(|c| {
                        let op = c.op.op();
                        self.carries(op, &self.parking_missing_of(&op.id()))
                    });
                    if let Some(org) = carries {
                        released.extend(self.carry_in(org));
                    }
                    continue;
                }
                let Some(c) = self.parking.remove(&child) else {
                    continue;
                };
                if self.attach(c, recompute).is_ok() {
                    released.push(child);
                    ready.push(child);
                }
            }
        }
        released
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::World;
    use crate::op::OpKind;

    /// A parked op past its time is dropped at the next attempt to park, oldest first, and reported; until then
    /// it stays.
    #[test]
    fn a_parked_op_expires_after_its_time_in_park_attempts() {
        let mut w = World::wsis();
        let mut p = Parking::default();
        let op = |w: &mut World, i: u8| {
            let kind = OpKind::JoinTeam { team: w.team("C1") };
            w.sign_at(0, &[OpId([i; 32])], kind).verify().unwrap()
        };
        let first = op(&mut w, 1);
        let first_id = first.op().id();
        p.park(first, &[OpId([1; 32])]).unwrap();
        // Age it without parking anything else: refused attempts tick the clock too.
        p.clock += PARKED_OP_TTL_PARKS - 1;
        let second = op(&mut w, 2);
        p.park(second, &[OpId([2; 32])]).unwrap();
        assert!(p.contains(&first_id), "exactly at its time it stays");
        let third = op(&mut w, 3);
        p.park(third, &[OpId([3; 32])]).unwrap();
        assert!(!p.contains(&first_id));
        assert!(
            !p.is_awaited(&OpId([1; 32])),
            "its index entries go with it"
        );
        assert_eq!((p.len(), p.expired.clone()), (2, vec![first_id]));
    }
}
