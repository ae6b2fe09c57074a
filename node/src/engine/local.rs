//! Local edits: changes made with this node's actor, kept unpublished until [`DocumentEngine::publish`] seals
//! them into as few envelopes as the limits allow (one signature per burst).

use super::doc_state::*;
use super::error::*;
use super::receive::{Incoming, Verdict};
use super::sink::*;
use super::DocumentEngine;
use automerge::transaction::{Transactable, Transaction};
use automerge::{ActorId, AutomergeError, Change, ChangeHash};
use std::collections::HashSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use wsis_protocol::envelope::{ChangeEnvelope, SignedEnvelope, VerifiedHeader};
use wsis_protocol::gov::Governance;
use wsis_protocol::ids::DocId;
use wsis_protocol::limits::{
    MAX_CHANGES_PER_ENVELOPE, MAX_CHANGE_BYTES, MAX_CHANGE_OPS, MAX_DOCUMENT_OPS,
    MAX_ENVELOPE_BYTES, MAX_ENVELOPE_OPS, MAX_HEADS,
};

impl<S: EnvelopeSink> DocumentEngine<S> {
    /// The actor this node writes `doc` with in this session.
    pub fn local_actor(&mut self, doc: &DocId) -> ActorId {
        self.state(doc).local.actor.clone()
    }

    /// Runs `f` in an Automerge transaction on the materialised document and keeps the resulting change as an
    /// unpublished local change (an empty transaction makes none). It is visible locally at once and leaves the
    /// node with the next [`publish`](Self::publish).
    ///
    /// An edit a peer would refuse for its cost is refused here, before it is committed (nothing changes): more
    /// ops than one change may hold ([`EditError::TooManyOps`]), more than the document may hold with what is
    /// stored and unpublished ([`EditError::DocumentFull`]), or a new actor past the actor caps
    /// ([`EditError::TooManyActors`]).
    pub fn edit<O>(
        &mut self,
        doc: &DocId,
        f: impl FnOnce(&mut Transaction<'_>) -> Result<O, AutomergeError>,
    ) -> Result<O, EditError> {
        let author = self.author;
        let st = self.state(doc);
        if let Err(ReceiveError::TooManyActors { scope, max }) =
            st.actor_room(&author, &st.local.actor)
        {
            return Err(EditError::TooManyActors { scope, max });
        }
        let unpublished: u64 = st.local.pending.iter().map(|(_, c)| c.len() as u64).sum();
        let used = st.ops.saturating_add(unpublished);
        // Behind the panic firewall like every other Automerge call that builds changes from the op set (see
        // `fork_at`): a panic here would otherwise leave a committed change that `pending` does not know.
        let transacted = catch_unwind(AssertUnwindSafe(|| {
            let mut tx = st.doc.transaction();
            let result = match f(&mut tx) {
                Ok(result) => result,
                Err(e) => {
                    tx.rollback();
                    return Err(EditError::Automerge(e));
                }
            };
            let ops = tx.pending_ops() as u64;
            if ops > MAX_CHANGE_OPS {
                tx.rollback();
                return Err(EditError::TooManyOps {
                    ops,
                    max: MAX_CHANGE_OPS,
                });
            }
            if used.saturating_add(ops) > MAX_DOCUMENT_OPS {
                tx.rollback();
                return Err(EditError::DocumentFull {
                    ops: used.saturating_add(ops),
                    max: MAX_DOCUMENT_OPS,
                });
            }
            let (hash, _) = tx.commit();
            Ok((result, hash))
        }));
        let (result, hash) = match transacted {
            Ok(outcome) => outcome?,
            Err(_) => {
                self.rebuild(doc);
                return Err(EditError::Automerge(AutomergeError::Fail));
            }
        };
        let Some(hash) = hash else {
            return Ok(result);
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
        Ok(result)
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
    /// envelope unless the batch exceeds an envelope's limits (4,096 changes, 8 MiB) — runs each one's bytes
    /// through exactly what a peer runs, and only then stores it through the sink and returns it for
    /// announcement. What a peer runs: stage 1 ([`VerifiedHeader::from_bytes`], with its caps), then `judge`, the
    /// function [`receive`](Self::receive) uses (authorisation, dependencies, stage 2, the history rules, the
    /// document's op cap). Nothing to publish gives an empty vector.
    ///
    /// If a peer would refuse an envelope, it is not stored and [`PublishError::Refused`] carries the
    /// [`ReceiveError`] that peer would give. The unpublished changes from that envelope on are then **rolled
    /// back**: no peer would ever accept them, so keeping them would leave this node showing a document nobody
    /// else can have and every later publish of it failing the same way. The document is rebuilt from what is
    /// stored, exactly as peers have it, and the error says how many changes were discarded. Envelopes of the same
    /// call sealed before the refused one stay stored (served, and announced with the next announcement; see
    /// [`envelope_ids`](Self::envelope_ids)). A storage failure ([`PublishError::Store`]) is not a refusal: the
    /// changes stay unpublished for a retry.
    pub fn publish(
        &mut self,
        gov: &Governance,
        doc: &DocId,
    ) -> Result<Vec<SignedEnvelope>, PublishError> {
        let heads = gov.heads();
        if self.unpublished_len(doc) == 0 {
            return Ok(Vec::new());
        }
        // The rule `authorize_header` applies to the sealed envelope below, asked first so that a batch this
        // organisation may not write costs no signature.
        if let Err(reason) = gov.may_write(doc, &self.author, &heads) {
            return Err(self.roll_back(doc, ReceiveError::Denied(reason)));
        }
        let mut out = Vec::new();
        while let Some((batch, salt, changes)) = self.docs.get(doc).and_then(|st| {
            let pending = &st.local.pending;
            let batch = next_batch(pending, heads.len(), MAX_ENVELOPE_BYTES)?;
            let changes: Vec<Change> = pending[..batch].iter().map(|(_, c)| c.clone()).collect();
            Some((batch, pending[0].0, changes))
        }) {
            // Sealing applies stage 1's caps to the changes (the same functions); its refusal is the one a peer
            // would give to the same bytes.
            let sealed = ChangeEnvelope::seal(
                self.federation,
                *doc,
                self.author,
                &self.secret,
                salt,
                heads.clone(),
                changes,
            )
            .map_err(ReceiveError::Envelope);
            if sealed.is_ok() {
                self.signatures += 1;
            }
            let (env, pre) = match sealed.and_then(|env| self.judge_own(gov, &env)) {
                Ok(accepted) => accepted,
                Err(reason) => return Err(self.roll_back(doc, reason)),
            };
            self.sink
                .put_envelope(&env)
                .map_err(|e| PublishError::Store(Box::new(e)))?;
            self.record_stored(&env);
            let st = self.state(doc);
            st.local.pending.drain(..batch);
            let indexed = st.index(env.clone(), Ok(()), pre);
            // Already in the document: they were applied when made.
            st.valid.extend(indexed.fresh);
            out.push(env);
        }
        Ok(out)
    }

    /// This node's sealed envelope as a peer receives it: decoded from its bytes by stage 1, then judged at `gov`.
    /// Anything but "acceptable and authorised now" is the refusal a peer would give (an envelope a peer would
    /// park or drop as a duplicate cannot come from a consistent local state; it is refused rather than sent).
    fn judge_own(
        &mut self,
        gov: &Governance,
        sealed: &SignedEnvelope,
    ) -> Result<(SignedEnvelope, Precheck), ReceiveError> {
        let header = VerifiedHeader::from_bytes(sealed.bytes(), self.federation)?;
        match self.judge(gov, Incoming::Header(header), false)? {
            Verdict::Acceptable {
                env,
                authorised: Ok(()),
                pre,
            } => Ok((env, pre)),
            Verdict::Acceptable {
                authorised: Err(d), ..
            } => Err(ReceiveError::Denied(d)),
            Verdict::Wait { .. } => Err(ReceiveError::InvalidHistory {
                index: 0,
                rule: "a dependency is not stored",
            }),
            Verdict::Duplicate => Err(ReceiveError::InvalidHistory {
                index: 0,
                rule: "every change is already published",
            }),
        }
    }

    /// Drops the unpublished changes of `doc` (a peer would refuse them) and rebuilds it without them.
    pub(super) fn roll_back(&mut self, doc: &DocId, reason: ReceiveError) -> PublishError {
        let st = self.state(doc);
        let discarded = st.local.pending.len();
        st.local.pending.clear();
        self.rebuild(doc);
        PublishError::Refused { reason, discarded }
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

/// How many of the first pending changes (all with the first one's salt) fit one envelope of `max_bytes` and
/// `MAX_ENVELOPE_OPS` ops (each change is within `MAX_CHANGE_OPS`, so at least one always fits).
pub(super) fn next_batch(
    pending: &[(Salt, Change)],
    heads: usize,
    max_bytes: usize,
) -> Option<usize> {
    let (salt, _) = pending.first()?;
    let mut size = envelope_overhead(heads);
    let mut ops = 0u64;
    let mut n = 0;
    for (s, c) in pending {
        let add = change_cost(c);
        let more = c.len() as u64;
        if s != salt
            || n == MAX_CHANGES_PER_ENVELOPE
            || (n > 0 && (size + add > max_bytes || ops + more > MAX_ENVELOPE_OPS))
        {
            break;
        }
        size += add;
        ops += more;
        n += 1;
    }
    Some(n.max(1))
}
