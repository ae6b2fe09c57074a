//! Judging an op without inserting it: [`Governance::check`] runs exactly the checks and the evaluation
//! [`Governance::insert`] would, on a temporary node that is taken out again, so a node can refuse a command whose
//! op the replay would refuse or mark invalid before it signs anything durable, without copying its replica.

use super::{CheckError, Governance, Inserted, Validity, VerifiedOp};
use crate::ids::OpId;
use crate::op::OpKind;

impl Governance {
    /// What inserting `op` would do, without inserting it: `Ok` if it would enter the DAG valid, otherwise why not
    /// (refused by the structural checks, parked for missing parents, or stored without effect for a reason).
    ///
    /// The verdict is the one [`Governance::insert`] would give, by the same code: the same pre-checks and
    /// structural checks, then the op is linked into the DAG as a temporary node, evaluated (with a full
    /// re-evaluation when the insertion would need one: an equivocation, a new revocation or evidence, a change
    /// to the whole-set facts), and unlinked; the indexes and facts a full pass rebuilds are put back as they
    /// were. The replica is unchanged afterwards (same digest, same answers); only when ops already parked here
    /// cite `op` — they would be released with it, which cannot happen for an op that was just signed — is the
    /// verdict taken on a copy. An op already in the DAG is judged by its current validity.
    pub fn check(&mut self, op: &VerifiedOp) -> Result<(), CheckError> {
        let signed = op.op();
        let id = signed.id();
        if let Some(validity) = self.validity(&id) {
            return validity.map_err(CheckError::Invalid);
        }
        let missing: Vec<OpId> = signed
            .parents()
            .iter()
            .filter(|p| !self.by_id.contains_key(p))
            .copied()
            .collect();
        if self.parking.contains(&id) {
            return Err(CheckError::Parked { missing });
        }
        if self.pending.contains(&id) {
            return Err(CheckError::Pending);
        }
        self.precheck(signed)?;
        if self.gated(signed) {
            return Err(self
                .hold_refusal(signed)
                .map_or(CheckError::Pending, CheckError::Refused));
        }
        if !missing.is_empty() {
            if let Some(refused) = self.park_refusal(signed) {
                return Err(refused.into());
            }
            if self.carries(signed, &missing).is_some() {
                // An `Admit` that carries in held ops: judged as the insertion would leave it.
                return self.check_on_copy(op);
            }
            return Err(CheckError::Parked { missing });
        }
        if self.parking.is_awaited(&id) {
            return self.check_on_copy(op);
        }
        let vc = self.place(signed)?;
        let linked = self.link(signed.clone(), vc);
        let idx = linked.idx;
        let verdict = if linked.equivocates
            || self.static_entry(idx).is_some()
            || self.checkpoints_change_with(idx)
        {
            self.evaluate_in_full_pass(idx)
        } else {
            let v = self.evaluate(idx);
            if v.is_ok() && self.facts_affected_by(idx) && self.facts_change_with(idx) {
                self.evaluate_in_full_pass(idx)
            } else {
                v
            }
        };
        self.unlink(linked);
        verdict.map_err(CheckError::Invalid)
    }

    /// The verdict of an insertion that would release parked ops, taken on a copy of the replica.
    fn check_on_copy(&self, op: &VerifiedOp) -> Result<(), CheckError> {
        let id = op.op().id();
        let mut copy = self.clone();
        match copy.insert(op.clone())? {
            Inserted::Applied { .. } | Inserted::Duplicate => copy
                .validity(&id)
                .unwrap_or(Ok(()))
                .map_err(CheckError::Invalid),
            Inserted::Parked { missing } => Err(CheckError::Parked { missing }),
            Inserted::Pending => Err(CheckError::Pending),
        }
    }

    /// Would the valid op at `idx` (linked, not indexed) change the whole-set facts? Indexes it, derives the
    /// facts, and takes it out of the index again.
    fn facts_change_with(&mut self, idx: u32) -> bool {
        self.index_op(idx);
        let changed = self.derive_facts() != self.facts;
        self.unindex_fact_op(idx);
        changed
    }

    /// Undoes [`Governance::index_op`] for the last indexed op, of a kind [`Governance::facts_affected_by`]
    /// names (the only ones [`Governance::facts_change_with`] indexes).
    fn unindex_fact_op(&mut self, idx: u32) {
        let ix = &mut self.index;
        match self.nodes[idx as usize].op.kind() {
            OpKind::Ballot { motion, .. } => {
                if let Some(m) = ix.motions.get_mut(motion) {
                    if m.ballots.last().is_some_and(|b| b.2 == idx) {
                        m.ballots.pop();
                    }
                }
            }
            OpKind::Nominate { team, .. } => {
                if let Some(noms) = ix.nominations.get_mut(team) {
                    if noms.last() == Some(&idx) {
                        noms.pop();
                    }
                    if noms.is_empty() {
                        ix.nominations.remove(team);
                    }
                }
            }
            other => debug_assert!(false, "{} does not affect the facts", other.name()),
        }
    }

    /// The validity the linked op at `idx` gets from the full re-evaluation its insertion would run; the derived
    /// state (static sets, facts, indexes, every op's validity, the counters) is put back afterwards.
    fn evaluate_in_full_pass(&mut self, idx: u32) -> Validity {
        let statics = self.statics.clone();
        let facts = self.facts.clone();
        let index = self.index.clone();
        let hist = self.hist.clone();
        let validities: Vec<Validity> = self.nodes.iter().map(|n| n.validity).collect();
        let (recomputations, unsettled) = (self.recomputations, self.unsettled);
        self.recompute();
        let verdict = self.nodes[idx as usize].validity;
        self.statics = statics;
        self.facts = facts;
        self.index = index;
        self.hist = hist;
        for (node, validity) in self.nodes.iter_mut().zip(validities) {
            node.validity = validity;
        }
        self.recomputations = recomputations;
        self.unsettled = unsettled;
        verdict
    }
}
