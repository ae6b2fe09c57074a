//! The governance replica: the signed op DAG of one federation and its deterministic replay.
//!
//! # Model
//!
//! Ops form a DAG through their `parents`. Each author's ops form a chain: an op with sequence number `n` has the
//! same author's op `n - 1` in its history (the *chain rule*, checked when the op is inserted). Thanks to the chain
//! rule a per-op vector clock `vc[author] = highest seq seen` answers "is A in the history of X?" in O(1):
//! `X.vc[A.author] >= A.seq`.
//!
//! Insertion is **structural**: the signature verifies, the op belongs to this federation, its parents are known
//! (otherwise it is parked, bounded), its key is its author's inception key, and it obeys the chain rule. An op
//! that fails these is refused and never stored. Everything else is **validity**, decided by the replay and
//! recorded per op; invalid ops stay in the DAG (others may have built on them) but have no effect.
//!
//! Validity of an op is a function of the op, its causal history, and a small set of facts about the whole op set
//! that the concurrency rules of the trust model need (concurrent revocations, rival nominations, equivocations,
//! passed checkpoints). Because every query the rules make is filtered to the op's history or uses those
//! whole-set facts, the result does not depend on the order in which ops were inserted. When an insertion changes
//! one of the facts, the whole DAG is re-evaluated (until the facts are stable); otherwise an insertion costs one
//! evaluation.
//!
//! See `docs/protocol.md` for the rules of every op kind and `docs/ARCHITECTURE.md` for the invariants.

mod access;
mod admission;
mod check;
mod dag;
mod eval;
mod finality;
mod outcome;
mod parking;
mod query;
mod verified;

pub use access::{DocumentInfo, DocumentScope, WriteDenied};
pub use dag::topological_order;
pub use outcome::{CheckError, InsertError, Inserted, Invalid, Validity};
pub use query::{
    ApprovedRecord, ChairBench, MeetingInfo, MotionInfo, OrgInfo, SlotHolder, StateSummary,
    SubmissionInfo, SubmissionSubject,
};
pub(crate) use verified::par_map;
pub use verified::{verify_all, VerifiedOp};

use crate::crypto::PublicKey;
use crate::ids::IdMap;
use crate::ids::{FederationId, OpId, OrgId};
use crate::limits::MAX_PARENTS;
use crate::op::{Genesis, OpKind, RevocableRole, SignedInception, SignedOp, TeamCode};
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// One op in the DAG with what the replay needs about it.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) op: SignedOp,
    /// Dense index of the author (internal to this replica; never part of any output).
    pub(crate) org: u32,
    pub(crate) seq: u32,
    /// `vc[i]` = highest seq of org `i` in this op's history, this op included.
    pub(crate) vc: Box<[u32]>,
    pub(crate) validity: Validity,
}

/// What the genesis fixed.
#[derive(Debug, Clone)]
pub struct FederationInfo {
    pub id: FederationId,
    pub name: String,
    pub secretariat: BTreeSet<OrgId>,
    pub nominating_authority: Option<OrgId>,
    pub teams: BTreeMap<TeamCode, String>,
    pub record_approvals: u8,
}

/// Whole-set facts the concurrency rules need; re-derived after every change and iterated to a fixpoint.
///
/// None of them can invalidate an op inside a passed checkpoint that does not contain the fact (`eval.rs`,
/// `protected`), and the checkpoints themselves are decided by history alone (`finality.rs`), before and
/// independently of the fixpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Facts {
    /// Nominations that lost a contest against a concurrent rival (ranked by what each nomination's own history
    /// holds; a nomination finalised without its rival never loses to it).
    pub(crate) lost_nominations: BTreeSet<u32>,
    /// Every passed checkpoint motion: the vector clock of its heads, and the heads themselves (node indexes,
    /// for exact ancestry where the clock is ambiguous: equivocating twins share an (author, seq)). A copy of
    /// the history-only judgement's ([`finality::History`]), fixed during the fixpoint.
    pub(crate) checkpoints: Vec<(Box<[u32]>, Vec<OpId>)>,
}

/// The indexes of valid ops that the rules and queries read. Every entry is a node index.
#[derive(Debug, Clone, Default)]
pub(crate) struct Index {
    pub(crate) admits: IdMap<OrgId, Vec<u32>>,
    pub(crate) nominations: BTreeMap<TeamCode, Vec<u32>>,
    pub(crate) team_events: IdMap<(TeamCode, OrgId), Vec<(u32, bool)>>,
    pub(crate) meetings: IdMap<OpId, u32>,
    pub(crate) attendance: IdMap<OpId, Vec<(OrgId, u32)>>,
    pub(crate) approvals: IdMap<OpId, Vec<u32>>,
    pub(crate) motions: IdMap<OpId, MotionEntry>,
    pub(crate) motions_of_meeting: IdMap<OpId, Vec<OpId>>,
    pub(crate) docs: IdMap<OpId, u32>,
    /// Valid `CreateDoc` ops by author: the document budget (`MAX_DOCS_PER_ORG`).
    pub(crate) docs_of: IdMap<OrgId, Vec<u32>>,
    pub(crate) submissions: Vec<u32>,
    pub(crate) modalities: BTreeMap<TeamCode, Vec<u32>>,
    pub(crate) bindings: Vec<u32>,
}

#[derive(Debug, Clone)]
pub(crate) struct MotionEntry {
    pub(crate) idx: u32,
    pub(crate) electorate: BTreeSet<OrgId>,
    /// Valid ballots: (voter, yes, node index).
    pub(crate) ballots: Vec<(OrgId, bool, u32)>,
}

/// Ops whose validity does not depend on any state (revocations by the right authority, evidence): collected
/// over the whole set before evaluation, because the concurrency rules need all of them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Static {
    pub(crate) member_revokes: IdMap<OrgId, Vec<u32>>,
    pub(crate) coordinator_revokes: IdMap<(TeamCode, OrgId), Vec<u32>>,
    /// (org index, seq) pairs with two or more distinct signed ops, with the evidence that shows it.
    pub(crate) equivocations: BTreeMap<(u32, u32), Vec<OpId>>,
}

/// What [`Governance::link`] changed besides pushing the node, so that [`Governance::unlink`] can undo it.
struct Linked {
    idx: u32,
    /// Another op by the same author has the same sequence number.
    equivocates: bool,
    /// The author had no dense index before.
    new_org: bool,
    /// For an inception op: the inception record and inception op index it replaced, if any.
    replaced_inception: Option<(Option<SignedInception>, Option<u32>)>,
    /// Parents that were heads until the op arrived.
    removed_heads: Vec<OpId>,
}

/// An addition to the static sets ([`Static`]).
enum StaticEntry {
    MemberRevoke(OrgId),
    CoordinatorRevoke(TeamCode, OrgId),
    /// The (org index, seq) that equivocated and the two ops that show it.
    Equivocation((u32, u32), OpId, OpId),
}

/// A replica of one federation's governance: the DAG and its replayed state.
///
/// A node judges its own op with [`Governance::check`] (the insertion's checks and evaluation, without inserting)
/// before it stores it, so a refused command changes nothing and no copy of the replica is made.
#[derive(Debug, Clone)]
pub struct Governance {
    pub(crate) fed: FederationInfo,
    pub(crate) nodes: Vec<Node>,
    pub(crate) by_id: IdMap<OpId, u32>,
    pub(crate) org_ids: Vec<OrgId>,
    pub(crate) org_index: IdMap<OrgId, u32>,
    pub(crate) inceptions: IdMap<OrgId, SignedInception>,
    /// Node index of each org's inception op (absent for secretariat orgs, whose inception is in the genesis).
    pub(crate) inception_op: IdMap<OrgId, u32>,
    by_author_seq: IdMap<(u32, u32), Vec<u32>>,
    heads: BTreeSet<OpId>,
    parking: parking::Parking,
    /// Ops of organisations not yet admitted, outside the DAG (`admission.rs`).
    pending: admission::Pending,
    /// The organisation whose held ops are being carried in by its `Admit` (they pass the gate).
    admitting: Option<OrgId>,
    /// A replica of a history another replica judged (`replica_of_history`, a bundle's): every op of it enters, as
    /// it did there; the admission gate is for what arrives from peers (a cut of a history may hold an inception
    /// without the `Admit` that carried it in elsewhere).
    pub(crate) open_gate: bool,
    pub(crate) statics: Static,
    pub(crate) facts: Facts,
    pub(crate) index: Index,
    /// The history-only judgement, which decides the passed checkpoints.
    pub(crate) hist: finality::History,
    /// True while the rules run for the history-only judgement.
    pub(crate) history_only: bool,
    /// Full re-evaluations so far (for tests and metrics).
    pub(crate) recomputations: u64,
    /// True if the last re-evaluation hit the iteration cap before the facts were stable.
    pub(crate) unsettled: bool,
}

/// Iterations of the fact fixpoint before giving up (the result stays deterministic either way).
const MAX_FIXPOINT_ITERATIONS: usize = 16;

impl Governance {
    /// Starts a replica from a genesis op (signature verified by the caller through [`VerifiedOp`]).
    pub fn new(genesis: VerifiedOp) -> Result<Self, InsertError> {
        let op = genesis.into_inner();
        let g: &Genesis = match op.kind() {
            OpKind::Genesis(g) => g,
            _ => return Err(InsertError::NotGenesis),
        };
        let fed = FederationInfo {
            id: FederationId(op.id().0),
            name: g.name.clone(),
            secretariat: g.secretariat.iter().map(|s| s.id()).collect(),
            nominating_authority: g.nominating_authority,
            teams: g
                .teams
                .iter()
                .map(|t| (t.code.clone(), t.name.clone()))
                .collect(),
            record_approvals: g.policy.record_approvals,
        };
        let mut me = Governance {
            fed,
            nodes: Vec::new(),
            by_id: IdMap::default(),
            org_ids: Vec::new(),
            org_index: IdMap::default(),
            inceptions: IdMap::default(),
            inception_op: IdMap::default(),
            by_author_seq: IdMap::default(),
            heads: BTreeSet::new(),
            parking: parking::Parking::default(),
            pending: admission::Pending::default(),
            admitting: None,
            open_gate: false,
            statics: Static::default(),
            facts: Facts::default(),
            index: Index::default(),
            hist: finality::History::default(),
            history_only: false,
            recomputations: 0,
            unsettled: false,
        };
        for s in &g.secretariat {
            me.inceptions.insert(s.id(), s.clone());
            me.org_idx(s.id());
        }
        let org = me.org_idx(op.author());
        let mut vc = vec![0u32; me.org_ids.len()].into_boxed_slice();
        vc[org as usize] = 1;
        me.by_author_seq.insert((org, 1), vec![0]);
        me.by_id.insert(op.id(), 0);
        me.heads.insert(op.id());
        me.nodes.push(Node {
            op,
            org,
            seq: 1,
            vc,
            validity: Ok(()),
        });
        Ok(me)
    }

    /// Starts a replica from genesis bytes, checking the genesis hashes to `expected` on all 32 bytes.
    pub fn from_genesis_bytes(bytes: &[u8], expected: &FederationId) -> Result<Self, InsertError> {
        let op = SignedOp::from_bytes(bytes)?;
        let found = FederationId(op.id().0);
        if &found != expected {
            return Err(InsertError::WrongFederation {
                expected: *expected,
                found: Some(found),
            });
        }
        Self::new(VerifiedOp(op))
    }

    pub fn federation(&self) -> &FederationInfo {
        &self.fed
    }

    pub fn federation_id(&self) -> FederationId {
        self.fed.id
    }

    pub fn genesis(&self) -> &SignedOp {
        &self.nodes[0].op
    }

    /// Ops in the DAG (parked ones excluded).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The current heads (ops no other op cites), sorted.
    pub fn heads(&self) -> Vec<OpId> {
        self.heads.iter().copied().collect()
    }

    pub fn contains(&self, id: &OpId) -> bool {
        self.by_id.contains_key(id)
    }

    pub fn get(&self, id: &OpId) -> Option<&SignedOp> {
        self.by_id.get(id).map(|&i| &self.nodes[i as usize].op)
    }

    /// Validity of an op in the DAG.
    pub fn validity(&self, id: &OpId) -> Option<Validity> {
        self.by_id.get(id).map(|&i| self.nodes[i as usize].validity)
    }

    /// All ops in a topological order (every op after its parents).
    pub fn ops(&self) -> impl Iterator<Item = &SignedOp> {
        self.nodes.iter().map(|n| &n.op)
    }

    /// Re-evaluates every op from scratch. Insertion keeps the state equal to this at all times; the node calls it
    /// after loading from disk (a cheap self-check), and the tests compare the two.
    pub fn reevaluate(&mut self) {
        self.recompute();
    }

    /// Full re-evaluations performed so far.
    pub fn recomputations(&self) -> u64 {
        self.recomputations
    }

    /// True if the concurrency facts did not settle within the iteration cap (never seen outside adversarial
    /// constructions; the state is still deterministic).
    pub fn unsettled(&self) -> bool {
        self.unsettled
    }

    /// Verifies and inserts raw op bytes.
    pub fn insert_bytes(&mut self, bytes: &[u8]) -> Result<Inserted, InsertError> {
        self.insert(SignedOp::decode(bytes)?.verify()?)
    }

    /// Inserts a verified op: structural checks, holding it if its author is not admitted, parking it if parents
    /// are missing, evaluation.
    pub fn insert(&mut self, op: VerifiedOp) -> Result<Inserted, InsertError> {
        let id = op.op().id();
        if self.by_id.contains_key(&id) || self.parking.contains(&id) || self.pending.contains(&id)
        {
            return Ok(Inserted::Duplicate);
        }
        self.precheck(op.op())?;
        if self.gated(op.op()) {
            // Outside the DAG until an `Admit` of its author carries it in (see `gov/admission.rs`).
            self.hold(op)?;
            return Ok(Inserted::Pending);
        }
        let missing: Vec<OpId> = op
            .op()
            .parents()
            .iter()
            .filter(|p| !self.by_id.contains_key(p))
            .copied()
            .collect();
        if !missing.is_empty() {
            let carries = self.carries(op.op(), &missing);
            // Refused without parking unless the author and its key are known (see `gov/parking.rs`).
            self.park(op, &missing)?;
            // An `Admit` waiting for held ops of the organisation it admits carries them in, and they release it.
            let Some(org) = carries else {
                return Ok(Inserted::Parked { missing });
            };
            let mut released = self.carry_in(org);
            if !self.by_id.contains_key(&id) {
                let missing = self.parking_missing_of(&id);
                return Ok(Inserted::Parked { missing });
            }
            released.retain(|r| *r != id);
            let valid = self.validity(&id) == Some(Ok(()));
            return Ok(Inserted::Applied { valid, released });
        }
        let mut recompute = false;
        let valid = self.attach(op, &mut recompute)?;
        // Release parked descendants whose parents are now all present.
        let mut released = self.release_parked(id, &mut recompute);
        if recompute {
            self.recompute();
        }
        // An inception that entered (awaited by its `Admit`) brings its organisation's other held ops.
        let entered: Vec<OpId> = std::iter::once(id)
            .chain(released.iter().copied())
            .collect();
        let carried = self.carry_in_after(&entered);
        let valid = if recompute || !carried.is_empty() {
            self.validity(&id) == Some(Ok(()))
        } else {
            valid
        };
        released.extend(carried);
        Ok(Inserted::Applied { valid, released })
    }

    /// Checks that need no parents: federation, genesis uniqueness, parent count, seq range.
    fn precheck(&self, op: &SignedOp) -> Result<(), InsertError> {
        if matches!(op.kind(), OpKind::Genesis(_)) {
            return Err(InsertError::SecondGenesis);
        }
        if op.body().federation != Some(self.fed.id) {
            return Err(InsertError::WrongFederation {
                expected: self.fed.id,
                found: op.body().federation,
            });
        }
        if op.parents().len() > MAX_PARENTS || op.parents().contains(&op.id()) {
            return Err(InsertError::BadParents);
        }
        if op.seq() > u32::MAX as u64 {
            return Err(InsertError::SeqOutOfRange);
        }
        Ok(())
    }

    /// The key an author must sign with: the key of its inception record, if known.
    fn author_key(&self, op: &SignedOp) -> Option<PublicKey> {
        match op.kind() {
            OpKind::OrgInception(rec) => Some(rec.body().key),
            _ => self.inceptions.get(&op.author()).map(|r| r.body().key),
        }
    }

    /// Adds an op whose parents are all present. Returns its validity.
    fn attach(&mut self, op: VerifiedOp, recompute: &mut bool) -> Result<bool, InsertError> {
        let op = op.into_inner();
        let vc = self.place(&op)?;
        let linked = self.link(op, vc);
        let idx = linked.idx;
        if linked.equivocates {
            *recompute = true;
        }
        if *recompute {
            // The whole set is re-evaluated once all released ops are attached.
            return Ok(false);
        }
        if self.history_attach(idx) {
            // A checkpoint passed: what it finalises is protected from now on.
            *recompute = true;
            return Ok(false);
        }
        if self.collect_static(idx) {
            *recompute = true;
            return Ok(false);
        }
        let v = self.evaluate(idx);
        self.nodes[idx as usize].validity = v;
        if v.is_ok() {
            self.index_op(idx);
            // A change to the whole-set facts (a rival nomination, a checkpoint that now passes) needs a full pass.
            if self.facts_affected_by(idx) && self.derive_facts() != self.facts {
                *recompute = true;
            }
        }
        Ok(v.is_ok())
    }

    /// The structural checks of an op whose parents are all present (its key is its author's inception key; the
    /// chain rule), changing nothing. Returns the merged clock of its parents, which [`Governance::link`] takes.
    fn place(&self, op: &SignedOp) -> Result<Box<[u32]>, InsertError> {
        if self.author_key(op) != Some(op.body().key) {
            return Err(InsertError::KeyMismatch);
        }
        let parents = op
            .parents()
            .iter()
            .filter_map(|p| self.by_id.get(p).copied());
        let vc = self.merged_vc(parents);
        let seen = self
            .org_index
            .get(&op.author())
            .and_then(|&org| vc.get(org as usize))
            .copied()
            .unwrap_or(0) as u64;
        let is_secretariat = self.fed.secretariat.contains(&op.author());
        let first_op_ok =
            op.seq() != 1 || is_secretariat || matches!(op.kind(), OpKind::OrgInception(_));
        if seen + 1 != op.seq() || !first_op_ok {
            return Err(InsertError::ChainRule {
                seen,
                seq: op.seq(),
            });
        }
        Ok(vc)
    }

    /// Puts a placed op into the DAG (not yet evaluated: its validity is `Ok` until the caller evaluates it), and
    /// says what it changed so that [`Governance::unlink`] can take it out again.
    fn link(&mut self, op: SignedOp, mut vc: Box<[u32]>) -> Linked {
        let new_org = !self.org_index.contains_key(&op.author());
        let org = self.org_idx(op.author());
        if vc.len() <= org as usize {
            let mut v = vc.into_vec();
            v.resize(org as usize + 1, 0);
            vc = v.into_boxed_slice();
        }
        vc[org as usize] = op.seq() as u32;

        let idx = self.nodes.len() as u32;
        let id = op.id();
        let mut replaced_inception = None;
        if let OpKind::OrgInception(rec) = op.kind() {
            replaced_inception = Some((
                self.inceptions.insert(rec.id(), rec.clone()),
                self.inception_op.insert(rec.id(), idx),
            ));
        }
        let removed_heads = op
            .parents()
            .iter()
            .filter(|p| self.heads.remove(*p))
            .copied()
            .collect();
        self.heads.insert(id);
        self.by_id.insert(id, idx);
        let twins = self
            .by_author_seq
            .entry((org, op.seq() as u32))
            .or_default();
        twins.push(idx);
        let equivocates = twins.len() > 1;
        self.nodes.push(Node {
            op,
            org,
            seq: vc[org as usize],
            vc,
            validity: Ok(()),
        });
        Linked {
            idx,
            equivocates,
            new_org,
            replaced_inception,
            removed_heads,
        }
    }

    /// Takes the last linked op out of the DAG again, restoring everything [`Governance::link`] changed (the
    /// indexes and facts are the caller's to restore).
    fn unlink(&mut self, linked: Linked) {
        let Some(node) = self.nodes.pop() else {
            return;
        };
        debug_assert_eq!(linked.idx as usize, self.nodes.len());
        let id = node.op.id();
        let key = (node.org, node.op.seq() as u32);
        if let Some(twins) = self.by_author_seq.get_mut(&key) {
            twins.retain(|&t| t != linked.idx);
            if twins.is_empty() {
                self.by_author_seq.remove(&key);
            }
        }
        self.by_id.remove(&id);
        self.heads.remove(&id);
        self.heads.extend(linked.removed_heads);
        if let (OpKind::OrgInception(rec), Some((inception, inception_op))) =
            (node.op.kind(), linked.replaced_inception)
        {
            match inception {
                Some(previous) => self.inceptions.insert(rec.id(), previous),
                None => self.inceptions.remove(&rec.id()),
            };
            match inception_op {
                Some(previous) => self.inception_op.insert(rec.id(), previous),
                None => self.inception_op.remove(&rec.id()),
            };
        }
        if linked.new_org {
            self.org_ids.pop();
            self.org_index.remove(&node.op.author());
        }
    }

    /// Records an op in the static sets if it belongs there. Returns true if that requires a full re-evaluation
    /// (a new revocation or new evidence changes what other ops mean).
    fn collect_static(&mut self, idx: u32) -> bool {
        let Some(entry) = self.static_entry(idx) else {
            return false;
        };
        match entry {
            StaticEntry::MemberRevoke(org) => self
                .statics
                .member_revokes
                .entry(org)
                .or_default()
                .push(idx),
            StaticEntry::CoordinatorRevoke(team, org) => self
                .statics
                .coordinator_revokes
                .entry((team, org))
                .or_default()
                .push(idx),
            StaticEntry::Equivocation(key, first, second) => {
                let ids = self.statics.equivocations.entry(key).or_default();
                ids.push(first);
                ids.push(second);
            }
        }
        true
    }

    /// What an op would add to the static sets, if anything new: a valid revocation, or evidence of an
    /// equivocation not recorded yet. Changes nothing.
    fn static_entry(&self, idx: u32) -> Option<StaticEntry> {
        let node = &self.nodes[idx as usize];
        match node.op.kind() {
            OpKind::RevokeRole { role, org } => {
                // An equivocating revocation is excluded like any equivocating op (evidence is collected first),
                // unless a checkpoint finalised it without its twin.
                if self.excluded_as_equivocation(idx)
                    || eval::revocation_valid(self, node, role, org).is_err()
                {
                    return None;
                }
                Some(match role {
                    RevocableRole::Member => StaticEntry::MemberRevoke(*org),
                    RevocableRole::Coordinator(t) => {
                        StaticEntry::CoordinatorRevoke(t.clone(), *org)
                    }
                })
            }
            OpKind::Evidence { first, second } => {
                let key = eval::evidence_pair(self, first, second, &node.vc)?;
                let known = self
                    .statics
                    .equivocations
                    .get(&key)
                    .is_some_and(|ids| ids.contains(&first.id()));
                (!known).then(|| StaticEntry::Equivocation(key, first.id(), second.id()))
            }
            _ => None,
        }
    }

    /// Re-evaluates every op from scratch until the whole-set facts are stable.
    pub(crate) fn recompute(&mut self) {
        self.recomputations += 1;
        // Static sets first: they depend on nothing but the ops themselves.
        self.statics = Static::default();
        for ((org, seq), twins) in &self.by_author_seq {
            if twins.len() > 1 {
                let ids = twins
                    .iter()
                    .map(|&i| self.nodes[i as usize].op.id())
                    .collect();
                self.statics.equivocations.insert((*org, *seq), ids);
            }
        }
        // The checkpoints first, by history alone: they protect what they finalise from every fact below.
        self.rebuild_history();
        self.facts = Facts {
            lost_nominations: BTreeSet::new(),
            checkpoints: self.hist.checkpoints.clone(),
        };
        // Evidence before revocations: an equivocating revocation must not count.
        let (evidence, others): (Vec<u32>, Vec<u32>) = (0..self.nodes.len() as u32)
            .partition(|&i| matches!(self.nodes[i as usize].op.kind(), OpKind::Evidence { .. }));
        for idx in evidence.into_iter().chain(others) {
            self.collect_static(idx);
        }
        let mut facts = self.facts.clone();
        self.unsettled = true;
        for _ in 0..MAX_FIXPOINT_ITERATIONS {
            self.facts = facts;
            self.evaluate_all();
            facts = self.derive_facts();
            if facts == self.facts {
                self.unsettled = false;
                break;
            }
        }
    }

    fn evaluate_all(&mut self) {
        self.index = Index::default();
        for idx in 0..self.nodes.len() as u32 {
            let v = if idx == 0 { Ok(()) } else { self.evaluate(idx) };
            self.nodes[idx as usize].validity = v;
            if v.is_ok() {
                self.index_op(idx);
            }
        }
    }

    pub(crate) fn org_idx(&mut self, org: OrgId) -> u32 {
        if let Some(&i) = self.org_index.get(&org) {
            return i;
        }
        let i = self.org_ids.len() as u32;
        self.org_ids.push(org);
        self.org_index.insert(org, i);
        i
    }

    /// A digest of the replayed state: every op id with its validity, plus the derived roles. Two replicas with
    /// the same ops have the same digest whatever the order they received them in.
    pub fn digest(&self) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(b"wsis/v1/gov-state-digest");
        h.update(self.fed.id.0);
        let mut ids: Vec<(OpId, u8)> = self
            .nodes
            .iter()
            .map(|n| {
                (
                    n.op.id(),
                    match n.validity {
                        Ok(()) => 0,
                        Err(e) => e.digest_code(),
                    },
                )
            })
            .collect();
        ids.sort();
        for (id, code) in ids {
            h.update(id.0);
            h.update([code]);
        }
        let summary = serde_json::to_vec(&self.summary()).unwrap_or_default();
        h.update(&summary);
        h.finalize().into()
    }

    /// Ids of all ops, for set comparisons in tests and sync.
    pub fn op_ids(&self) -> HashSet<OpId> {
        self.by_id.keys().copied().collect()
    }
}

#[cfg(test)]
mod tests;
