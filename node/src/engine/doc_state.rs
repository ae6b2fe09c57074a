//! The per-document state: the stored envelopes (the source of truth), their indexes (changes, actors, causal
//! histories, equivocations) and the materialised Automerge document built from the valid changes — with the
//! panic firewall every Automerge apply goes through.

use super::error::*;
use super::outcome::*;
use automerge::{ActorId, Automerge, Change, ChangeHash};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use wsis_protocol::crypto::PublicKey;
use wsis_protocol::envelope::{automerge_actor, SignedEnvelope, SESSION_SALT_LEN};
use wsis_protocol::gov::WriteDenied;
use wsis_protocol::ids::Hash32;
use wsis_protocol::ids::{sha256, DocId, EnvelopeId, OrgId};
use wsis_protocol::limits::{MAX_ACTORS_PER_AUTHOR, MAX_DOCUMENT_ACTORS, MAX_DOCUMENT_OPS};

pub(super) type Salt = [u8; SESSION_SALT_LEN];

/// A set of actor indexes (of one document), as bits.
#[derive(Debug, Clone, Default)]
pub(super) struct ActorSet(Vec<u64>);

impl ActorSet {
    pub(super) fn contains(&self, i: u32) -> bool {
        self.0
            .get(i as usize / 64)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    pub(super) fn insert(&mut self, i: u32) {
        let w = i as usize / 64;
        if self.0.len() <= w {
            self.0.resize(w + 1, 0);
        }
        self.0[w] |= 1 << (i % 64);
    }

    pub(super) fn union(&mut self, other: &ActorSet) {
        if self.0.len() < other.0.len() {
            self.0.resize(other.0.len(), 0);
        }
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a |= b;
        }
    }
}

#[derive(Debug)]
pub(super) struct ChangeEntry {
    pub(super) actor: u32,
    pub(super) seq: u64,
    /// Actors in this change's causal history, itself included.
    pub(super) history: ActorSet,
    /// (stored envelope index, position) of every stored envelope carrying it; the first one holds its bytes.
    pub(super) carriers: Vec<(u32, u32)>,
}

#[derive(Debug)]
pub(super) struct StoredEnvelope {
    pub(super) env: SignedEnvelope,
    pub(super) authorised: Result<(), WriteDenied>,
}

#[derive(Debug)]
pub(super) struct Local {
    pub(super) salt: Salt,
    pub(super) actor: ActorId,
    /// Unpublished local changes in commit order, with the salt they were made under.
    pub(super) pending: Vec<(Salt, Change)>,
    /// The last change made under `actor` (published or not), and its seq.
    pub(super) last: Option<(ChangeHash, u64)>,
}

#[derive(Debug)]
pub(super) struct DocState {
    pub(super) id: DocId,
    /// This node's signing key (for deriving its actor).
    pub(super) key: PublicKey,
    pub(super) doc: Automerge,
    pub(super) envelopes: Vec<StoredEnvelope>,
    pub(super) by_id: HashMap<EnvelopeId, u32>,
    pub(super) changes: HashMap<ChangeHash, ChangeEntry>,
    pub(super) actors: Vec<ActorId>,
    pub(super) actor_index: HashMap<ActorId, u32>,
    /// (actor index, seq) → every stored change with that key.
    pub(super) by_key: HashMap<(u32, u64), Vec<ChangeHash>>,
    /// Changes in the materialised document that came from stored envelopes (unpublished local ones excluded).
    pub(super) valid: HashSet<ChangeHash>,
    /// Changes Automerge refused (panic or error) and everything is built without.
    pub(super) quarantined: BTreeSet<ChangeHash>,
    /// (actor index, seq) with two or more authorised changes: excluded, evidence.
    pub(super) equivocations: BTreeMap<(u32, u64), BTreeSet<ChangeHash>>,
    pub(super) local: Local,
    pub(super) rebuilds: u64,
    /// Changes counted in `valid` but not applied yet (a batch in progress, see `DocumentEngine::receive_batch`).
    pub(super) deferred: Vec<ChangeHash>,
    /// Ops over every stored envelope (authorised or not): what the document may cost to load, capped at
    /// `MAX_DOCUMENT_OPS`, the cap the offline verifier applies to a bundled document.
    pub(super) ops: u64,
    /// Actors of stored envelopes per author the envelopes name (capped at `MAX_ACTORS_PER_AUTHOR`).
    pub(super) author_actors: HashMap<OrgId, usize>,
    /// The author of each actor, from the authorised envelopes carrying its changes (a key is one author's).
    pub(super) actor_author: HashMap<u32, OrgId>,
    /// Authors with an equivocation among the authorised envelopes: none of their changes is valid (see
    /// `compute_valid`), so nothing they send later can be applied, nor force a rebuild.
    pub(super) excluded: BTreeSet<OrgId>,
}

/// What indexing a stored envelope found.
pub(super) struct Indexed {
    /// The envelope's changes that are new and may be applied (authorised, not excluded).
    pub(super) fresh: Vec<ChangeHash>,
    /// The incremental path is not enough: rebuild.
    pub(super) need_full: bool,
    /// The author this envelope excluded from the document (its first equivocation here).
    pub(super) excluded: Option<OrgId>,
}

/// What a pre-check of an envelope's changes against the history found.
pub(super) struct Precheck {
    /// For each change of the envelope: the actors of its dependencies' histories (own actor not yet added).
    pub(super) histories: Vec<ActorSet>,
}

impl DocState {
    pub(super) fn new(id: DocId, key: PublicKey, salt: Salt) -> Self {
        let actor = automerge_actor(&key, &id, &salt);
        DocState {
            id,
            key,
            doc: Automerge::new().with_actor(actor.clone()),
            envelopes: Vec::new(),
            by_id: HashMap::new(),
            changes: HashMap::new(),
            actors: Vec::new(),
            actor_index: HashMap::new(),
            by_key: HashMap::new(),
            valid: HashSet::new(),
            quarantined: BTreeSet::new(),
            equivocations: BTreeMap::new(),
            local: Local {
                salt,
                actor,
                pending: Vec::new(),
                last: None,
            },
            rebuilds: 0,
            deferred: Vec::new(),
            ops: 0,
            author_actors: HashMap::new(),
            actor_author: HashMap::new(),
            excluded: BTreeSet::new(),
        }
    }

    /// The parsed change for a stored hash.
    pub(super) fn change(&self, h: &ChangeHash) -> Option<&Change> {
        let e = self.changes.get(h)?;
        let &(env, pos) = e.carriers.first()?;
        self.envelopes
            .get(env as usize)?
            .env
            .changes()
            .get(pos as usize)
    }

    /// Is `h` applied, or carried by an authorised stored envelope (so another carrier adds nothing)?
    pub(super) fn covers(&self, h: &ChangeHash) -> bool {
        self.valid.contains(h) || self.is_authorised_change(h)
    }

    pub(super) fn is_authorised_change(&self, h: &ChangeHash) -> bool {
        self.changes.get(h).is_some_and(|e| {
            e.carriers
                .iter()
                .any(|&(i, _)| self.envelopes[i as usize].authorised.is_ok())
        })
    }

    /// The history rules (pipeline step 4). All external dependencies must be stored.
    pub(super) fn precheck(&self, env: &SignedEnvelope) -> Result<Precheck, ReceiveError> {
        let changes = env.changes();
        let own: HashMap<ChangeHash, usize> = changes
            .iter()
            .enumerate()
            .map(|(i, c)| (c.hash(), i))
            .collect();
        let own_actor = self.actor_index.get(changes[0].actor_id()).copied();
        let mut histories: Vec<ActorSet> = Vec::with_capacity(changes.len());
        let fail = |index, rule| Err(ReceiveError::InvalidHistory { index, rule });
        for (i, c) in changes.iter().enumerate() {
            let mut hist = ActorSet::default();
            let mut prev_found = c.seq() == 1;
            if c.seq() == 0 {
                return fail(i, "automerge sequence numbers start at 1");
            }
            for d in c.deps() {
                if let Some(&j) = own.get(d) {
                    if j >= i {
                        return fail(i, "changes in an envelope must be in causal order");
                    }
                    hist.union(&histories[j]);
                    prev_found |= changes[j].seq() + 1 == c.seq();
                } else if let Some(e) = self.changes.get(d) {
                    hist.union(&e.history);
                    prev_found |= Some(e.actor) == own_actor && e.seq + 1 == c.seq();
                } else {
                    return fail(i, "a dependency is not stored");
                }
            }
            if !prev_found {
                return fail(
                    i,
                    "a change must depend directly on its actor's previous change",
                );
            }
            for a in c.other_actor_ids() {
                let known = self
                    .actor_index
                    .get(a)
                    .is_some_and(|&ai| hist.contains(ai) || Some(ai) == own_actor);
                if !known && a != c.actor_id() {
                    return fail(i, "a change references an actor outside its history");
                }
            }
            histories.push(hist);
        }
        Ok(Precheck { histories })
    }

    pub(super) fn actor_idx(&mut self, actor: &ActorId) -> u32 {
        if let Some(&i) = self.actor_index.get(actor) {
            return i;
        }
        let i = self.actors.len() as u32;
        self.actors.push(actor.clone());
        self.actor_index.insert(actor.clone(), i);
        i
    }

    /// The document's ops once `more` are added, or `Err` with that total when it would pass `MAX_DOCUMENT_OPS`
    /// (the cap the offline verifier loads; peers and this node's own publish both check it here).
    pub(super) fn ops_with(&self, more: u64) -> Result<u64, u64> {
        let total = self.ops.saturating_add(more);
        if total > MAX_DOCUMENT_OPS {
            Err(total)
        } else {
            Ok(total)
        }
    }

    /// Whether an envelope by `author` written with `actor` fits the actor caps: an actor already here always
    /// does; a new one must not pass the author's cap (`MAX_ACTORS_PER_AUTHOR`) or the document's
    /// (`MAX_DOCUMENT_ACTORS`). Checked before Automerge parses anything (fresh actors make Automerge quadratic).
    pub(super) fn actor_room(&self, author: &OrgId, actor: &ActorId) -> Result<(), ReceiveError> {
        if self.actor_index.contains_key(actor) {
            return Ok(());
        }
        let mine = self.author_actors.get(author).copied().unwrap_or(0);
        if mine >= MAX_ACTORS_PER_AUTHOR {
            return Err(ReceiveError::TooManyActors {
                scope: ActorScope::Author,
                max: MAX_ACTORS_PER_AUTHOR,
            });
        }
        if self.actors.len() >= MAX_DOCUMENT_ACTORS {
            return Err(ReceiveError::TooManyActors {
                scope: ActorScope::Document,
                max: MAX_DOCUMENT_ACTORS,
            });
        }
        Ok(())
    }

    /// Is the change `h` by an author excluded from this document?
    fn by_excluded(&self, h: &ChangeHash) -> bool {
        self.changes
            .get(h)
            .and_then(|e| self.actor_author.get(&e.actor))
            .is_some_and(|a| self.excluded.contains(a))
    }

    /// Adds a stored envelope to the indexes: the new change hashes (for an authorised envelope), whether the
    /// incremental path is not enough (a conflict, or a known change that this envelope may make valid), and
    /// the author it excluded, if its changes are that author's first equivocation here.
    pub(super) fn index(
        &mut self,
        env: SignedEnvelope,
        authorised: Result<(), WriteDenied>,
        pre: Precheck,
    ) -> Indexed {
        let idx = self.envelopes.len() as u32;
        let ok = authorised.is_ok();
        let author = env.header().author;
        let known_actor = self.actor_index.contains_key(env.changes()[0].actor_id());
        let actor = self.actor_idx(env.changes()[0].actor_id());
        if !known_actor {
            *self.author_actors.entry(author).or_default() += 1;
        }
        if ok {
            self.actor_author.entry(actor).or_insert(author);
        }
        let mut newly_excluded = None;
        self.by_id.insert(env.id(), idx);
        self.ops += env.verified_header().ops();
        self.envelopes.push(StoredEnvelope { env, authorised });
        let mut fresh = Vec::new();
        let mut need_full = false;
        let n = self.envelopes[idx as usize].env.changes().len();
        for (pos, mut hist) in (0..n).zip(pre.histories) {
            let (h, seq) = {
                let c = &self.envelopes[idx as usize].env.changes()[pos];
                (c.hash(), c.seq())
            };
            if self.changes.contains_key(&h) {
                // This envelope can make a known change valid only if no authorised envelope carried it before.
                let had_authorised = self.is_authorised_change(&h);
                if let Some(e) = self.changes.get_mut(&h) {
                    e.carriers.push((idx, pos as u32));
                }
                need_full |=
                    ok && !had_authorised && !self.valid.contains(&h) && !self.by_excluded(&h);
                continue;
            }
            if ok {
                let others: Vec<ChangeHash> = self
                    .by_key
                    .get(&(actor, seq))
                    .map(|v| {
                        v.iter()
                            .filter(|o| **o != h && self.is_authorised_change(o))
                            .copied()
                            .collect()
                    })
                    .unwrap_or_default();
                if others.is_empty() {
                    fresh.push(h);
                } else {
                    // An equivocation: this change and the others under its (actor, seq) are all excluded. The
                    // document needs a rebuild only if one of them is applied; otherwise (a repeated or
                    // in-envelope equivocation) recording the evidence is enough, so resending conflicting
                    // changes cannot force rebuilds.
                    need_full |= others.iter().any(|o| self.valid.contains(o));
                    fresh.retain(|f| !others.contains(f));
                    let evidence = self.equivocations.entry((actor, seq)).or_default();
                    evidence.insert(h);
                    evidence.extend(others);
                    // The author's first equivocation here excludes all its changes (`compute_valid`): one
                    // rebuild now if any is applied, and none for what it sends later (nothing of it is applied).
                    let equivocator = self.actor_author.get(&actor).copied().unwrap_or(author);
                    if self.excluded.insert(equivocator) {
                        newly_excluded = Some(equivocator);
                        let actors: HashSet<u32> = self
                            .actor_author
                            .iter()
                            .filter(|(_, a)| **a == equivocator)
                            .map(|(i, _)| *i)
                            .collect();
                        need_full |= self.valid.iter().any(|v| {
                            self.changes
                                .get(v)
                                .is_some_and(|e| actors.contains(&e.actor))
                        });
                    }
                }
            }
            hist.insert(actor);
            self.by_key.entry((actor, seq)).or_default().push(h);
            self.changes.insert(
                h,
                ChangeEntry {
                    actor,
                    seq,
                    history: hist,
                    carriers: vec![(idx, pos as u32)],
                },
            );
        }
        // Every change of an envelope is its actor's, so its author's: none is applied once that author is out.
        if self.excluded.contains(&author) {
            fresh.clear();
        }
        Indexed {
            fresh,
            need_full,
            excluded: newly_excluded,
        }
    }

    /// Applies new changes of an authorised envelope on top of the cache. `Err` means the cache is no longer
    /// trustworthy (Automerge panicked or erred) and must be rebuilt.
    /// With `defer`, the ready changes are counted as valid at once but applied later, in one call
    /// ([`Self::flush_deferred`]).
    pub(super) fn apply_fresh(&mut self, fresh: &[ChangeHash], defer: bool) -> Result<usize, ()> {
        // Changes inside an envelope are in causal order (precheck), so one pass decides readiness.
        let mut ready: Vec<ChangeHash> = Vec::new();
        let mut ready_set: HashSet<ChangeHash> = HashSet::new();
        for h in fresh {
            if self.quarantined.contains(h) {
                continue;
            }
            let Some(c) = self.change(h) else { continue };
            if c.deps()
                .iter()
                .all(|d| self.valid.contains(d) || ready_set.contains(d))
            {
                ready_set.insert(*h);
                ready.push(*h);
            }
        }
        if ready.is_empty() {
            return Ok(0);
        }
        if defer {
            let n = ready.len();
            self.valid.extend(ready.iter().copied());
            self.deferred.extend(ready);
            return Ok(n);
        }
        let batch: Vec<Change> = ready
            .iter()
            .filter_map(|h| self.change(h).cloned())
            .collect();
        if !guarded_apply(&mut self.doc, batch) {
            return Err(());
        }
        let n = ready.len();
        self.valid.extend(ready);
        Ok(n)
    }

    /// Applies the deferred changes in one Automerge call (rebuilding if Automerge refuses them). Returns true if
    /// it had to rebuild.
    pub(super) fn flush_deferred(&mut self) -> bool {
        if self.deferred.is_empty() {
            return false;
        }
        let deferred = std::mem::take(&mut self.deferred);
        let batch: Vec<Change> = deferred
            .iter()
            .filter_map(|h| self.change(h).cloned())
            .collect();
        if guarded_apply(&mut self.doc, batch) {
            return false;
        }
        let suspects: HashSet<ChangeHash> = deferred.into_iter().collect();
        self.rebuild(&suspects);
        true
    }

    /// The valid changes in a topological order, the equivocations among authorised changes, and the authors
    /// they exclude (every change of such an author is left out, whatever the order the envelopes came in).
    #[allow(clippy::type_complexity)]
    pub(super) fn compute_valid(
        &self,
    ) -> (
        Vec<ChangeHash>,
        BTreeMap<(u32, u64), BTreeSet<ChangeHash>>,
        BTreeSet<OrgId>,
    ) {
        let mut seen: HashSet<ChangeHash> = HashSet::new();
        let mut candidates: Vec<ChangeHash> = Vec::new();
        for s in self.envelopes.iter().filter(|s| s.authorised.is_ok()) {
            for c in s.env.changes() {
                if seen.insert(c.hash()) {
                    candidates.push(c.hash());
                }
            }
        }
        let mut keys: HashMap<(u32, u64), Vec<ChangeHash>> = HashMap::new();
        for h in &candidates {
            if let Some(e) = self.changes.get(h) {
                keys.entry((e.actor, e.seq)).or_default().push(*h);
            }
        }
        let equivocations: BTreeMap<(u32, u64), BTreeSet<ChangeHash>> = keys
            .into_iter()
            .filter(|(_, v)| v.len() > 1)
            .map(|(k, v)| (k, v.into_iter().collect()))
            .collect();
        let excluded_authors: BTreeSet<OrgId> = equivocations
            .keys()
            .filter_map(|(actor, _)| self.actor_author.get(actor).copied())
            .collect();
        let by_excluded_author = |h: &ChangeHash| {
            self.changes
                .get(h)
                .and_then(|e| self.actor_author.get(&e.actor))
                .is_some_and(|a| excluded_authors.contains(a))
        };
        let excluded: HashSet<ChangeHash> = equivocations
            .values()
            .flatten()
            .chain(self.quarantined.iter())
            .chain(candidates.iter().filter(|h| by_excluded_author(h)))
            .copied()
            .collect();
        // Kahn over the candidates that are not excluded; a dependency outside that set blocks a change forever.
        let nodes: Vec<ChangeHash> = candidates
            .into_iter()
            .filter(|h| !excluded.contains(h))
            .collect();
        let pos: HashMap<ChangeHash, usize> =
            nodes.iter().enumerate().map(|(i, h)| (*h, i)).collect();
        let mut indegree = vec![0usize; nodes.len()];
        let mut blocked = vec![false; nodes.len()];
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
        for (i, h) in nodes.iter().enumerate() {
            let Some(c) = self.change(h) else {
                blocked[i] = true;
                continue;
            };
            for d in c.deps() {
                match pos.get(d) {
                    Some(&j) => {
                        indegree[i] += 1;
                        dependents[j].push(i);
                    }
                    None => blocked[i] = true,
                }
            }
        }
        let mut queue: std::collections::VecDeque<usize> = (0..nodes.len())
            .filter(|&i| indegree[i] == 0 && !blocked[i])
            .collect();
        let mut order = Vec::with_capacity(nodes.len());
        while let Some(i) = queue.pop_front() {
            order.push(nodes[i]);
            for &k in &dependents[i] {
                indegree[k] -= 1;
                if indegree[k] == 0 && !blocked[k] {
                    queue.push_back(k);
                }
            }
        }
        (order, equivocations, excluded_authors)
    }

    /// Rebuilds the materialised document from the valid changes, then re-applies unpublished local changes.
    /// `suspects` are the changes to try one by one first if Automerge refuses the batch (the newly arrived ones).
    /// Returns true if the valid set changed.
    pub(super) fn rebuild(&mut self, suspects: &HashSet<ChangeHash>) -> bool {
        self.rebuilds += 1;
        // The rebuild materialises every valid change, deferred ones included.
        self.deferred.clear();
        let (order, equivocations, excluded) = self.compute_valid();
        self.equivocations = equivocations;
        self.excluded = excluded;
        let (doc, applied, refused) = self.materialise(&order, suspects);
        self.quarantined.extend(refused);
        let changed = applied != self.valid;
        self.valid = applied;
        self.doc = doc;
        // Unpublished local changes: keep those whose dependencies survived, in order (each depends on the
        // previous one of the same actor, so the first that cannot be applied ends the run).
        let pending = std::mem::take(&mut self.local.pending);
        let mut kept: Vec<(Salt, Change)> = Vec::new();
        let mut kept_set: HashSet<ChangeHash> = HashSet::new();
        for (salt, c) in pending {
            let deps_ok = c
                .deps()
                .iter()
                .all(|d| self.valid.contains(d) || kept_set.contains(d));
            if !deps_ok || !guarded_apply(&mut self.doc, vec![c.clone()]) {
                break;
            }
            kept_set.insert(c.hash());
            kept.push((salt, c));
        }
        self.local.pending = kept;
        // If one of this session's own changes is gone, a later local change would reuse its (actor, seq).
        if let Some((last, _)) = self.local.last {
            if !self.valid.contains(&last) && !kept_set.contains(&last) {
                self.rotate_actor();
            }
        }
        changed
    }

    /// Switches local writing to a fresh salt, so a fresh actor whose (actor, seq) space is unused. The new salt
    /// is a hash of the old one: as unique as the session's random salt, and reproducible in a seeded simulation.
    pub(super) fn rotate_actor(&mut self) {
        let next = sha256(&[b"wsis/v1/rotate-salt".as_slice(), &self.local.salt].concat());
        self.local.salt.copy_from_slice(&next[..SESSION_SALT_LEN]);
        self.local.actor = automerge_actor(&self.key, &self.id, &self.local.salt);
        self.local.last = None;
        self.doc.set_actor(self.local.actor.clone());
    }

    /// A fresh document with the changes of `order` (a topological order). If Automerge refuses the batch, the
    /// changes that are neither suspects nor depend on one are applied as a batch, then the rest one at a time;
    /// a change Automerge refuses is returned (to quarantine) and everything depending on it is left out.
    pub(super) fn materialise(
        &self,
        order: &[ChangeHash],
        suspects: &HashSet<ChangeHash>,
    ) -> (Automerge, HashSet<ChangeHash>, Vec<ChangeHash>) {
        let fresh = || Automerge::new().with_actor(self.local.actor.clone());
        let changes_of = |hs: &[ChangeHash]| -> Vec<Change> {
            hs.iter().filter_map(|h| self.change(h).cloned()).collect()
        };
        let mut doc = fresh();
        if guarded_apply(&mut doc, changes_of(order)) {
            return (doc, order.iter().copied().collect(), Vec::new());
        }
        let mut tainted: HashSet<ChangeHash> = HashSet::new();
        let (mut trusted, mut rest) = (Vec::new(), Vec::new());
        for h in order {
            let depends = self
                .change(h)
                .is_some_and(|c| c.deps().iter().any(|d| tainted.contains(d)));
            if suspects.contains(h) || depends {
                tainted.insert(*h);
                rest.push(*h);
            } else {
                trusted.push(*h);
            }
        }
        doc = fresh();
        if rest.is_empty() || !guarded_apply(&mut doc, changes_of(&trusted)) {
            doc = fresh();
            trusted.clear();
            rest = order.to_vec();
        }
        let mut applied_set: HashSet<ChangeHash> = trusted.iter().copied().collect();
        let mut applied: Vec<ChangeHash> = trusted;
        let mut refused: Vec<ChangeHash> = Vec::new();
        for h in &rest {
            let Some(c) = self.change(h) else { continue };
            if !c.deps().iter().all(|d| applied_set.contains(d)) {
                continue; // depends on a refused change
            }
            if guarded_apply(&mut doc, vec![c.clone()]) {
                applied.push(*h);
                applied_set.insert(*h);
            } else {
                refused.push(*h);
                // The failed attempt may have left the document half-updated: start again from what passed.
                doc = fresh();
                if !guarded_apply(&mut doc, changes_of(&applied)) {
                    // Cannot happen (the same changes applied before); give up on everything to stay safe.
                    return (fresh(), HashSet::new(), order.to_vec());
                }
            }
        }
        (doc, applied_set, refused)
    }

    pub(super) fn status(&self, s: &StoredEnvelope) -> EnvelopeStatus {
        match &s.authorised {
            Err(d) => EnvelopeStatus::Unauthorised(d.clone()),
            Ok(()) => {
                let excluded = s
                    .env
                    .changes()
                    .iter()
                    .filter(|c| !self.valid.contains(&c.hash()))
                    .count();
                if excluded == 0 {
                    EnvelopeStatus::Applied
                } else {
                    EnvelopeStatus::PartlyExcluded { excluded }
                }
            }
        }
    }
}

/// `apply_changes` behind a panic firewall: false if Automerge panicked or returned an error (the document must
/// then be discarded).
pub(super) fn guarded_apply(doc: &mut Automerge, changes: Vec<Change>) -> bool {
    matches!(
        catch_unwind(AssertUnwindSafe(|| doc.apply_changes(changes))),
        Ok(Ok(()))
    )
}

pub(super) fn to_hash32(h: &ChangeHash) -> Hash32 {
    Hash32(h.0)
}
