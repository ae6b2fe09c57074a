//! Finality: which checkpoints have passed, decided by history alone, so that nothing that arrives later can
//! un-pass one.
//!
//! The replay judges ops twice. The *history-only* judgement gives every op the validity its own causal history
//! gives it: a revocation, a rival nomination or an equivocating twin counts only once it is in the op's history,
//! and no whole-set fact is read. That judgement is a pure function of the op's history, so it never changes once
//! the op is in the DAG, and it is kept up to date one op at a time. A checkpoint has *passed* when, in it, its
//! motion is valid and more than half of the electorate fixed when its meeting was convened cast a yes-ballot
//! (distinct voters; twins count once). The set of passed checkpoints therefore only grows.
//!
//! The full judgement (the one every query, the digest and the verifier read) then applies the concurrency rules
//! of the trust model — a concurrent revocation wins, the lower-ranked of two concurrent nominations loses, an
//! equivocation is excluded — but never against an op inside a passed checkpoint that does not contain the fact
//! (see `eval.rs`, `protected`). Because the checkpoints are decided first and by history only, the fixpoint of
//! the full judgement never feeds back into which checkpoints passed: there is no circularity between finality and
//! the electorate that votes for it.

use super::{eval, Governance, Index, Static};
use crate::ids::OpId;
use crate::op::{MotionKind, OpKind, RevocableRole};

/// The history-only judgement: the indexes of the ops valid by their own history, the revocations by the right
/// authority (equivocating or not: evidence is a whole-set fact), and the checkpoints that passed.
#[derive(Debug, Clone, Default)]
pub(crate) struct History {
    pub(crate) index: Index,
    pub(crate) statics: Static,
    /// Every passed checkpoint: the vector clock of its heads and the heads, as [`super::Facts::checkpoints`].
    pub(crate) checkpoints: Vec<(Box<[u32]>, Vec<OpId>)>,
    /// The passed checkpoint motions, sorted.
    pub(crate) motions: Vec<OpId>,
}

impl Governance {
    /// Runs `f` with the history-only state in place of the full one: its indexes and revocations, no facts, and
    /// revocations that hit only from an op's history.
    fn in_history_mode<R>(&mut self, f: impl FnOnce(&mut Self) -> R) -> R {
        std::mem::swap(&mut self.index, &mut self.hist.index);
        std::mem::swap(&mut self.statics, &mut self.hist.statics);
        let facts = std::mem::take(&mut self.facts);
        self.history_only = true;
        let r = f(self);
        self.history_only = false;
        self.facts = facts;
        std::mem::swap(&mut self.statics, &mut self.hist.statics);
        std::mem::swap(&mut self.index, &mut self.hist.index);
        r
    }

    /// Judges every op by its history again, from scratch (in node order: every op after its parents).
    pub(crate) fn rebuild_history(&mut self) {
        self.hist = History::default();
        for idx in 1..self.nodes.len() as u32 {
            self.history_revocation(idx);
        }
        self.in_history_mode(|g| {
            for idx in 1..g.nodes.len() as u32 {
                if g.evaluate(idx).is_ok() {
                    g.index_op(idx);
                }
            }
        });
        self.derive_checkpoints();
    }

    /// Adds a newly linked op to the history-only judgement. Returns true if the passed checkpoints changed (the
    /// full judgement must then be run again).
    pub(crate) fn history_attach(&mut self, idx: u32) -> bool {
        self.history_revocation(idx);
        let valid = self.in_history_mode(|g| {
            let valid = g.evaluate(idx).is_ok();
            if valid {
                g.index_op(idx);
            }
            valid
        });
        if !valid || !matches!(self.nodes[idx as usize].op.kind(), OpKind::Ballot { .. }) {
            return false;
        }
        let before = self.hist.motions.len();
        self.derive_checkpoints();
        self.hist.motions.len() != before
    }

    /// Would the linked op at `idx` (not in the history-only state) make a checkpoint pass? Changes nothing.
    pub(crate) fn checkpoints_change_with(&mut self, idx: u32) -> bool {
        let OpKind::Ballot { motion, yes: true } = self.nodes[idx as usize].op.kind() else {
            return false;
        };
        let motion = *motion;
        if self.hist.motions.binary_search(&motion).is_ok() {
            return false;
        }
        self.in_history_mode(|g| {
            if g.evaluate(idx).is_err() {
                return false;
            }
            let Some(m) = g.index.motions.get(&motion) else {
                return false;
            };
            let is_checkpoint = matches!(
                g.nodes[m.idx as usize].op.kind(),
                OpKind::Motion {
                    motion: MotionKind::Checkpoint { .. },
                    ..
                }
            );
            let voter = g.nodes[idx as usize].op.author();
            let mut voters = g.yes_voters(m, None);
            voters.insert(voter);
            is_checkpoint && voters.len() * 2 > m.electorate.len()
        })
    }

    /// A revocation by the right authority enters the history-only revocation lists (equivocating or not).
    fn history_revocation(&mut self, idx: u32) {
        let node = &self.nodes[idx as usize];
        let OpKind::RevokeRole { role, org } = node.op.kind() else {
            return;
        };
        if eval::revocation_valid(self, node, role, org).is_err() {
            return;
        }
        match role {
            RevocableRole::Member => self
                .hist
                .statics
                .member_revokes
                .entry(*org)
                .or_default()
                .push(idx),
            RevocableRole::Coordinator(t) => self
                .hist
                .statics
                .coordinator_revokes
                .entry((t.clone(), *org))
                .or_default()
                .push(idx),
        }
    }

    /// The passed checkpoints of the history-only judgement.
    fn derive_checkpoints(&mut self) {
        let mut passed: Vec<(OpId, Box<[u32]>, Vec<OpId>)> = self
            .hist
            .index
            .motions
            .iter()
            .filter(|(_, m)| self.yes_voters(m, None).len() * 2 > m.electorate.len())
            .filter_map(|(id, m)| match self.nodes[m.idx as usize].op.kind() {
                OpKind::Motion {
                    motion: MotionKind::Checkpoint { heads },
                    ..
                } => Some((
                    *id,
                    self.merged_vc(heads.iter().filter_map(|h| self.by_id.get(h).copied())),
                    heads.clone(),
                )),
                _ => None,
            })
            .collect();
        passed.sort_by_key(|p| p.0);
        self.hist.motions = passed.iter().map(|p| p.0).collect();
        let mut checkpoints: Vec<(Box<[u32]>, Vec<OpId>)> =
            passed.into_iter().map(|(_, c, h)| (c, h)).collect();
        // Trailing zeros depend on how many organisations this replica has seen; drop them so facts compare equal.
        for (c, _) in &mut checkpoints {
            let len = c.iter().rposition(|&s| s != 0).map_or(0, |p| p + 1);
            *c = c[..len].into();
        }
        checkpoints.sort();
        checkpoints.dedup();
        self.hist.checkpoints = checkpoints;
    }

    /// The passed checkpoint motions (history-only judgement), sorted by id.
    pub(crate) fn passed_checkpoint_motions(&self) -> &[OpId] {
        &self.hist.motions
    }

    /// The heads a passed checkpoint motion names.
    pub(crate) fn checkpoint_heads(&self, motion: &OpId) -> Option<Vec<OpId>> {
        match self.get(motion)?.kind() {
            OpKind::Motion {
                motion: MotionKind::Checkpoint { heads },
                ..
            } => Some(heads.clone()),
            _ => None,
        }
    }
}
