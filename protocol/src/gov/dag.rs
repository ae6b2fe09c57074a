//! Walking the DAG itself, apart from what the ops mean: ancestry through the vector clocks, the history of a set
//! of heads, what a peer with given heads lacks, the parents of an organisation's next op, and a topological order
//! of a set of ops.

use super::{Governance, InsertError, VerifiedOp};
use crate::ids::{IdMap, OpId, OrgId};
use crate::limits::MAX_PARENTS;
use crate::op::{OpKind, SignedOp};
use std::collections::HashSet;

impl Governance {
    /// The op `org` signed last in this replica (its highest seq; with equivocating twins, the first stored).
    /// An organisation not yet admitted has its ops held outside the DAG: its last held op.
    pub fn last_op(&self, org: &OrgId) -> Option<OpId> {
        if !self.org_index.contains_key(org) {
            return self.pending_of(org).last().map(|op| op.id());
        }
        let org_index = *self.org_index.get(org)?;
        let seq = u32::try_from(self.last_seq(org)).ok()?;
        let node = *self.by_author_seq.get(&(org_index, seq))?.first()?;
        Some(self.nodes[node as usize].op.id())
    }

    /// Parents for an organisation's next op: the current heads, at most [`MAX_PARENTS`], always including one
    /// whose history holds `own`, its previous op (the chain rule), or `own` itself when no head's history
    /// holds it (it has not entered this replica). Sorted.
    ///
    /// Past the limit, valid heads by members come first (then by OpId): heads that anyone inflates — invalid
    /// ops, equivocating twins — are the ones left for a later op to merge, so they cost their author, not the
    /// federation (a checkpoint names exactly its parents).
    pub fn parents_after(&self, own: Option<OpId>) -> Vec<OpId> {
        let mut heads = self.heads();
        if heads.len() > MAX_PARENTS {
            let vc = self.top_vc();
            let at = super::eval::At { vc: &vc, op: None };
            heads.sort_by_cached_key(|h| {
                let sound = self.by_id.get(h).is_some_and(|&i| {
                    let n = &self.nodes[i as usize];
                    n.validity.is_ok()
                        && self.is_member_at(&n.op.author(), &at)
                        && !self.statics.equivocations.contains_key(&(n.org, n.seq))
                });
                (!sound, *h)
            });
        }
        let mut chosen: Vec<OpId> = Vec::new();
        if let Some(own) = own {
            let head = heads
                .iter()
                .find(|h| self.is_ancestor(&own, h) == Some(true));
            chosen.push(head.copied().unwrap_or(own));
        }
        for h in heads {
            if chosen.len() >= MAX_PARENTS {
                break;
            }
            if !chosen.contains(&h) {
                chosen.push(h);
            }
        }
        chosen.sort();
        chosen
    }

    /// Parents for `author`'s next op of this kind: [`Governance::parents_after`] its last op; an `Admit` also names
    /// the inception of the organisation it admits when that waits outside the DAG (`gov/admission.rs`), so the
    /// `Admit` carries it in. Sorted.
    pub fn parents_for(&self, author: &OrgId, kind: &OpKind) -> Vec<OpId> {
        let own = self.last_op(author);
        let mut parents = self.parents_after(own);
        let OpKind::Admit { org } = kind else {
            return parents;
        };
        let Some(inception) = self.pending_of(org).first().map(|op| op.id()) else {
            return parents;
        };
        if parents.contains(&inception) {
            return parents;
        }
        if parents.len() >= MAX_PARENTS {
            // Give up a head that is not the one carrying the author's own chain.
            let chain = |p: &OpId| {
                Some(*p) == own || own.is_some_and(|o| self.is_ancestor(&o, p) == Some(true))
            };
            if let Some(pos) = parents.iter().rposition(|p| !chain(p)) {
                parents.remove(pos);
            }
        }
        parents.push(inception);
        parents.sort();
        parents
    }

    /// What to name in a sync request as "have": the heads, then their ancestors breadth-first, at most `max`.
    /// [`ops_missing_from`](Self::ops_missing_from) on the other side ignores ids it does not know, so with heads
    /// alone a peer that has not yet seen our newest op (usually our head: we just voted) knows none of them and
    /// sends the whole DAG; the heads' parents are almost always known to it.
    pub fn have_summary(&self, max: usize) -> Vec<OpId> {
        let mut out: Vec<OpId> = Vec::new();
        let mut seen: HashSet<OpId> = HashSet::new();
        let mut queue: std::collections::VecDeque<OpId> = self.heads().into_iter().collect();
        while let Some(id) = queue.pop_front() {
            if out.len() >= max {
                break;
            }
            if !seen.insert(id) {
                continue;
            }
            out.push(id);
            if let Some(op) = self.get(&id) {
                queue.extend(op.parents().iter().copied());
            }
        }
        out
    }

    /// The ops that are not in the history of `their_heads`, in topological order: what a peer with those heads
    /// lacks. Heads this replica does not know are ignored (the peer will send those).
    pub fn ops_missing_from(&self, their_heads: &[OpId]) -> Vec<&SignedOp> {
        self.ops_missing_iter(their_heads).collect()
    }

    /// [`ops_missing_from`](Self::ops_missing_from) one op at a time, for a responder that stops when its page is
    /// full: the cost is the heads' clocks plus the ops looked at, never a list of the whole DAG (an empty
    /// `their_heads` yields the DAG from the genesis on, and a page of it costs a page).
    pub fn ops_missing_iter<'a>(
        &'a self,
        their_heads: &[OpId],
    ) -> impl Iterator<Item = &'a SignedOp> + 'a {
        let vc = self.merged_vc(
            their_heads
                .iter()
                .filter_map(|h| self.by_id.get(h).copied()),
        );
        // Equivocating twins share an (author, seq), so the clock cannot tell which one the peer has: send both.
        self.nodes
            .iter()
            .enumerate()
            .filter(move |(i, n)| {
                !self.le_vc(*i as u32, &vc)
                    || self
                        .by_author_seq
                        .get(&(n.org, n.seq))
                        .is_some_and(|t| t.len() > 1)
            })
            .map(|(_, n)| &n.op)
    }

    /// Exact ancestry, by walking parents from `from` (pruned by the clocks). Only needed where the clock is
    /// ambiguous: for equivocating twins.
    pub(crate) fn reaches(&self, from: &[OpId], target: u32) -> bool {
        let mut stack: Vec<u32> = from
            .iter()
            .filter_map(|h| self.by_id.get(h).copied())
            .collect();
        let mut seen: HashSet<u32> = HashSet::new();
        while let Some(n) = stack.pop() {
            if n == target {
                return true;
            }
            if !seen.insert(n) || !self.le(target, n) {
                continue;
            }
            let parents = self.nodes[n as usize].op.parents();
            stack.extend(parents.iter().filter_map(|p| self.by_id.get(p).copied()));
        }
        false
    }

    /// The history (ancestors, inclusive) of the given heads, in topological order. Unknown heads are ignored.
    pub fn history_of(&self, heads: &[OpId]) -> Vec<&SignedOp> {
        let vc = self.merged_vc(heads.iter().filter_map(|h| self.by_id.get(h).copied()));
        self.nodes
            .iter()
            .enumerate()
            .filter(|(i, _)| self.le_vc(*i as u32, &vc))
            .map(|(_, n)| &n.op)
            .collect()
    }

    /// A replica holding exactly the ops in the history of `heads` (the genesis included), as a node that had
    /// received only those would hold it: each op's validity is decided again from that history alone. Unknown
    /// heads are ignored. The ops were verified when this replica took them, so their signatures are not checked
    /// again: the cost is one insertion per op of the history.
    pub fn replica_of_history(&self, heads: &[OpId]) -> Result<Governance, InsertError> {
        let genesis = self.genesis().clone();
        let mut replica = Governance::new(VerifiedOp(genesis.clone()))?;
        replica.open_gate = true;
        for op in self.history_of(heads) {
            if op.id() != genesis.id() {
                // In topological order, each after its parents: every op this DAG took, the replica takes
                // (valid or not); a refusal would be a structural rule this DAG applied too, so it cannot occur.
                let _ = replica.insert(VerifiedOp(op.clone()));
            }
        }
        Ok(replica)
    }

    /// The highest sequence number of `org` in the DAG, or among its ops held for admission (0 if none): the
    /// next op it signs takes this plus one.
    pub fn last_seq(&self, org: &OrgId) -> u64 {
        if !self.org_index.contains_key(org) {
            return self.pending_of(org).last().map_or(0, |op| op.seq());
        }
        // Every op is in the history of some head, so the heads' merged clock holds each author's highest seq.
        self.org_index
            .get(org)
            .and_then(|&i| self.top_vc().get(i as usize).copied())
            .unwrap_or(0) as u64
    }

    /// Element-wise maximum of the vector clocks of some nodes.
    pub(crate) fn merged_vc(&self, nodes: impl Iterator<Item = u32>) -> Box<[u32]> {
        let mut vc = vec![0u32; self.org_ids.len()];
        for n in nodes {
            for (a, b) in vc.iter_mut().zip(self.nodes[n as usize].vc.iter()) {
                *a = (*a).max(*b);
            }
        }
        vc.into_boxed_slice()
    }

    /// Is node `a` in the history described by `vc` (inclusive)?
    pub(crate) fn le_vc(&self, a: u32, vc: &[u32]) -> bool {
        let n = &self.nodes[a as usize];
        vc.get(n.org as usize).is_some_and(|&s| s >= n.seq)
    }

    /// Is node `a` in the history of node `b` (inclusive)?
    pub(crate) fn le(&self, a: u32, b: u32) -> bool {
        self.le_vc(a, &self.nodes[b as usize].vc)
    }
}

/// Orders ops so every op comes after its parents (Kahn's algorithm, ties by OpId), for loading a store in one
/// pass without parking. Ops whose parents are not all in the input come last, in id order; the genesis, if
/// present, comes first.
pub fn topological_order(ops: Vec<SignedOp>) -> Vec<SignedOp> {
    let ids: HashSet<OpId> = ops.iter().map(|o| o.id()).collect();
    let mut pending: IdMap<OpId, usize> = IdMap::default();
    let mut children: IdMap<OpId, Vec<OpId>> = IdMap::default();
    let mut by_id: IdMap<OpId, SignedOp> = IdMap::default();
    let mut ready = std::collections::BinaryHeap::new();
    for op in ops {
        let missing = op.parents().iter().filter(|p| ids.contains(p)).count();
        for p in op.parents() {
            if ids.contains(p) {
                children.entry(*p).or_default().push(op.id());
            }
        }
        if missing == 0 {
            ready.push(std::cmp::Reverse(op.id()));
        } else {
            pending.insert(op.id(), missing);
        }
        by_id.insert(op.id(), op);
    }
    let mut out = Vec::with_capacity(by_id.len());
    while let Some(std::cmp::Reverse(id)) = ready.pop() {
        for c in children.remove(&id).unwrap_or_default() {
            if let Some(n) = pending.get_mut(&c) {
                *n -= 1;
                if *n == 0 {
                    pending.remove(&c);
                    ready.push(std::cmp::Reverse(c));
                }
            }
        }
        if let Some(op) = by_id.remove(&id) {
            out.push(op);
        }
    }
    let mut rest: Vec<SignedOp> = by_id.into_values().collect();
    rest.sort_by_key(|o| o.id());
    out.extend(rest);
    // The genesis first: it has no parents, so it is among the first ready ops; put it at the front exactly.
    if let Some(pos) = out
        .iter()
        .position(|o| matches!(o.kind(), OpKind::Genesis(_)))
    {
        let g = out.remove(pos);
        out.insert(0, g);
    }
    out
}
