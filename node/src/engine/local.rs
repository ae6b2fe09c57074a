//! Local edits: changes made with this node's actor, kept unpublished until [`DocumentEngine::publish`] seals
//! them into as few envelopes as the limits allow (one signature per burst).

use super::doc_state::*;
use super::error::*;
use super::sink::*;
use super::DocumentEngine;
use automerge::transaction::Transaction;
use automerge::{ActorId, AutomergeError, Change, ChangeHash};
use std::collections::HashSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use wsis_protocol::envelope::{ChangeEnvelope, SignedEnvelope};
use wsis_protocol::gov::{Governance, WriteDenied};
use wsis_protocol::ids::DocId;
use wsis_protocol::limits::{
    MAX_CHANGES_PER_ENVELOPE, MAX_CHANGE_BYTES, MAX_DOCUMENT_OPS, MAX_ENVELOPE_BYTES, MAX_HEADS,
};

impl<S: EnvelopeSink> DocumentEngine<S> {
    /// The actor this node writes `doc` with in this session.
    pub fn local_actor(&mut self, doc: &DocId) -> ActorId {
        self.state(doc).local.actor.clone()
    }

    /// Runs `f` in an Automerge transaction on the materialised document and keeps the resulting change as an
    /// unpublished local change (an empty transaction makes none). It is visible locally at once and leaves the
    /// node with the next [`publish`](Self::publish).
    pub fn edit<O>(
        &mut self,
        doc: &DocId,
        f: impl FnOnce(&mut Transaction<'_>) -> Result<O, AutomergeError>,
    ) -> Result<O, EditError> {
        let st = self.state(doc);
        // Behind the panic firewall like every other Automerge call that builds changes from the op set (see
        // `fork_at`): a panic here would otherwise leave a committed change that `pending` does not know.
        let transacted = catch_unwind(AssertUnwindSafe(|| {
            st.doc.transact(f).map_err(|failure| failure.error)
        }));
        let success = match transacted {
            Ok(result) => result?,
            Err(_) => {
                self.rebuild(doc);
                return Err(EditError::Automerge(AutomergeError::Fail));
            }
        };
        let Some(hash) = success.hash else {
            return Ok(success.result);
        };
        let last = catch_unwind(AssertUnwindSafe(|| st.doc.get_last_local_change()))
            .ok()
            .flatten();
        let Some(change) = last else {
            // Automerge just committed it; treat a missing change as a failed edit.
            self.rebuild(doc);
            return Err(EditError::Automerge(AutomergeError::InvalidHash(hash)));
        };
        let len = change.raw_bytes().len();
        if len > MAX_CHANGE_BYTES {
            // Undo by rebuilding without it (it is not in `pending`). As it was this actor's last change, the
            // rebuild also moves local writing to a fresh actor, so its (actor, seq) is never reused.
            let st = self.state(doc);
            st.local.last = Some((hash, change.seq()));
            self.rebuild(doc);
            return Err(EditError::ChangeTooLarge {
                len,
                max: MAX_CHANGE_BYTES,
            });
        }
        let st = self.state(doc);
        st.local.last = Some((hash, change.seq()));
        st.local.pending.push((st.local.salt, change));
        Ok(success.result)
    }

    /// Adds changes made elsewhere with [`local_actor`](Self::local_actor) (e.g. on a fork of the document) as
    /// unpublished local changes. Each must continue this node's sequence and depend only on what the
    /// document has.
    pub fn apply_local(
        &mut self,
        doc: &DocId,
        changes: Vec<Change>,
    ) -> Result<(), ApplyLocalError> {
        let mut pending: HashSet<ChangeHash> = self
            .state(doc)
            .local
            .pending
            .iter()
            .map(|(_, c)| c.hash())
            .collect();
        for (index, c) in changes.into_iter().enumerate() {
            let st = self.state(doc);
            if c.actor_id() != &st.local.actor {
                return Err(ApplyLocalError::ForeignActor { index });
            }
            let expected = st.local.last.map_or(1, |(_, s)| s + 1);
            if c.seq() != expected {
                return Err(ApplyLocalError::OutOfSequence {
                    index,
                    expected,
                    found: c.seq(),
                });
            }
            let len = c.raw_bytes().len();
            if len > MAX_CHANGE_BYTES {
                return Err(ApplyLocalError::ChangeTooLarge {
                    index,
                    len,
                    max: MAX_CHANGE_BYTES,
                });
            }
            if !c
                .deps()
                .iter()
                .all(|d| st.valid.contains(d) || pending.contains(d))
            {
                return Err(ApplyLocalError::MissingDependencies { index });
            }
            if !guarded_apply(&mut st.doc, vec![c.clone()]) {
                self.rebuild(doc);
                return Err(ApplyLocalError::Automerge { index });
            }
            st.local.last = Some((c.hash(), c.seq()));
            pending.insert(c.hash());
            st.local.pending.push((st.local.salt, c));
        }
        Ok(())
    }

    /// Unpublished local changes of `doc`.
    pub fn unpublished_len(&self, doc: &DocId) -> usize {
        self.docs.get(doc).map_or(0, |st| st.local.pending.len())
    }

    /// Seals every unpublished local change of `doc` into signed envelopes citing `gov`'s current heads — one
    /// envelope unless the batch exceeds an envelope's limits (4,096 changes, 8 MiB) — stores them through the sink
    /// and returns them for announcement. Nothing to publish gives an empty vector.
    pub fn publish(
        &mut self,
        gov: &Governance,
        doc: &DocId,
    ) -> Result<Vec<SignedEnvelope>, PublishError> {
        let heads = gov.heads();
        if self.unpublished_len(doc) == 0 {
            return Ok(Vec::new());
        }
        // Checked before signing, so a refused batch costs no signature (and again on the sealed envelope below,
        // which also checks the key).
        if let Err(reason) = gov.may_write(doc, &self.author, &heads) {
            return Err(self.discard_unpublished(doc, reason));
        }
        let mut out = Vec::new();
        while let Some((batch, salt, changes)) = self.docs.get(doc).and_then(|st| {
            let pending = &st.local.pending;
            let batch = next_batch(pending, heads.len(), MAX_ENVELOPE_BYTES)?;
            let changes: Vec<Change> = pending[..batch].iter().map(|(_, c)| c.clone()).collect();
            Some((batch, pending[0].0, changes))
        }) {
            // Checked before signing: `Change::len` is the count stage 1 reads (stage 2 checks they agree).
            let more = changes.iter().map(|c| c.len() as u64).sum();
            if let Err(ops) = self.state(doc).ops_with(more) {
                return Err(PublishError::DocumentFull {
                    ops,
                    max: MAX_DOCUMENT_OPS,
                });
            }
            let env = ChangeEnvelope::seal(
                self.federation,
                *doc,
                self.author,
                &self.secret,
                salt,
                heads.clone(),
                changes,
            )?;
            self.signatures += 1;
            if let Err(reason) = gov.authorize_envelope(&env) {
                return Err(self.discard_unpublished(doc, reason));
            }
            self.sink
                .put_envelope(&env)
                .map_err(|e| PublishError::Store(Box::new(e)))?;
            let st = self.state(doc);
            st.local.pending.drain(..batch);
            let pre = st.precheck(&env).unwrap_or_else(|_| Precheck {
                histories: own_histories(st, &env),
            });
            let (fresh, _) = st.index(env.clone(), Ok(()), pre);
            // Already in the document: they were applied when made.
            st.valid.extend(fresh);
            out.push(env);
        }
        Ok(out)
    }

    /// Drops the unpublished changes of `doc` (they could never be accepted) and rebuilds it without them.
    pub(super) fn discard_unpublished(&mut self, doc: &DocId, reason: WriteDenied) -> PublishError {
        let st = self.state(doc);
        let discarded = st.local.pending.len();
        st.local.pending.clear();
        self.rebuild(doc);
        PublishError::Denied { reason, discarded }
    }
}

/// Upper bound on an envelope's size besides its changes: header fields, signature, framing, and 34 bytes per
/// cited governance head.
pub(super) fn envelope_overhead(heads: usize) -> usize {
    2048 + 34 * heads.min(MAX_HEADS)
}

/// Upper bound on what one change adds to an envelope: its bytes, a CBOR length prefix, and its hash in the header.
pub(super) fn change_cost(c: &Change) -> usize {
    c.raw_bytes().len() + 9 + 34
}

/// How many of the first pending changes (all with the first one's salt) fit one envelope of `max_bytes`.
pub(super) fn next_batch(
    pending: &[(Salt, Change)],
    heads: usize,
    max_bytes: usize,
) -> Option<usize> {
    let (salt, _) = pending.first()?;
    let mut size = envelope_overhead(heads);
    let mut n = 0;
    for (s, c) in pending {
        let add = change_cost(c);
        if s != salt || n == MAX_CHANGES_PER_ENVELOPE || (n > 0 && size + add > max_bytes) {
            break;
        }
        size += add;
        n += 1;
    }
    Some(n.max(1))
}

/// Histories for own published changes when the precheck cannot run (it always can for changes made here; this
/// keeps the index consistent regardless).
pub(super) fn own_histories(st: &DocState, env: &SignedEnvelope) -> Vec<ActorSet> {
    env.changes()
        .iter()
        .map(|c| {
            let mut h = ActorSet::default();
            for d in c.deps() {
                if let Some(e) = st.changes.get(d) {
                    h.union(&e.history);
                }
            }
            h
        })
        .collect()
}
