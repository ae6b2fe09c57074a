//! The acceptance pipeline for remote envelopes (module docs of [`super`], steps 1 to 7), its batch form, and the
//! release of parked envelopes when what they wait for arrives.

use super::doc_state::*;
use super::error::*;
use super::outcome::*;
use super::parking::*;
use super::sink::*;
use super::DocumentEngine;
use automerge::ChangeHash;
use std::collections::HashSet;
use wsis_protocol::envelope::automerge_actor;
use wsis_protocol::envelope::{EnvelopeError, SignedEnvelope, VerifiedHeader};
use wsis_protocol::gov::{Governance, WriteDenied};
use wsis_protocol::ids::{DocId, OpId, OrgId};
use wsis_protocol::limits::MAX_DOCUMENT_OPS;

/// An envelope after stage 1 of verification, or after both stages.
#[derive(Debug, Clone)]
pub(super) enum Incoming {
    Header(VerifiedHeader),
    Parsed(SignedEnvelope),
}

impl Incoming {
    pub(super) fn header(&self) -> &VerifiedHeader {
        match self {
            Incoming::Header(h) => h,
            Incoming::Parsed(e) => e.verified_header(),
        }
    }

    /// Stage 2 (Automerge's parser), if not done yet.
    pub(super) fn parse(self) -> Result<SignedEnvelope, EnvelopeError> {
        match self {
            Incoming::Header(h) => h.parse_changes(),
            Incoming::Parsed(e) => Ok(e),
        }
    }
}

/// One step of the pipeline for one envelope.
pub(super) enum Step {
    Accepted {
        doc: DocId,
        applied: usize,
        rebuilt: bool,
        hashes: Vec<ChangeHash>,
        /// The author this envelope (or one it released) excluded from its document.
        excluded: Option<OrgId>,
    },
    Duplicate,
    Parked(Parked),
}

/// What [`DocumentEngine::judge`] found: the envelope may be stored now, is already here, or waits for something.
pub(super) enum Verdict {
    /// Passes every rule. `authorised` is `Err` only for a restored envelope no longer authorised.
    Acceptable {
        env: SignedEnvelope,
        authorised: Result<(), WriteDenied>,
        pre: Precheck,
    },
    /// Already stored or parked, or it brings no change that is not already covered.
    Duplicate,
    /// Cites governance ops or depends on changes this node does not have yet: to park.
    Wait {
        env: Incoming,
        wait: Wait,
        parked: Parked,
    },
}

impl Verdict {
    fn wait_for_ops(env: Incoming, missing: Vec<OpId>) -> Verdict {
        let parked = Parked {
            id: env.header().id(),
            missing_ops: missing.clone(),
            missing_changes: Vec::new(),
        };
        Verdict::Wait {
            env,
            wait: Wait::Governance(missing),
            parked,
        }
    }
}

impl<S: EnvelopeSink> DocumentEngine<S> {
    /// Runs the whole acceptance pipeline on envelope bytes from `from`, then retries parked envelopes that this
    /// one lets in. A rejection is counted ([`rejected_counts`](Self::rejected_counts)); the caller should penalise
    /// the peer for any error with a [`ReceiveError::reason`].
    pub fn receive(
        &mut self,
        gov: &Governance,
        from: &Peer,
        bytes: &[u8],
    ) -> Result<Received, ReceiveError> {
        match VerifiedHeader::from_bytes(bytes, self.federation) {
            Ok(h) => self.receive_incoming(gov, from, Incoming::Header(h)),
            Err(e) => {
                let e = ReceiveError::Envelope(e);
                self.count(e.reason());
                Err(e)
            }
        }
    }

    /// [`receive`](Self::receive) for many envelopes (e.g. one sync response), in order, applying what they bring
    /// with one Automerge call per document at the end. Automerge 0.7 spends time proportional to the document
    /// on every `apply_changes` call, so for many small envelopes this is several times faster than `receive` in
    /// a loop. Results are in input order; their `applied` counts are what the pipeline accepted (a change that
    /// Automerge then refuses is quarantined as usual).
    ///
    /// The envelopes the batch accepts are stored in one group commit ([`EnvelopeSink::begin_batch`],
    /// [`EnvelopeSink::commit_batch`]), which ends before their changes are applied and before this returns. If
    /// the commit fails, every envelope the batch accepted is reported as [`ReceiveError::Store`].
    pub fn receive_batch<B: AsRef<[u8]>>(
        &mut self,
        gov: &Governance,
        from: &Peer,
        envelopes: impl IntoIterator<Item = B>,
    ) -> Vec<Result<Received, ReceiveError>> {
        self.defer = true;
        self.sink.begin_batch();
        let mut results: Vec<Result<Received, ReceiveError>> = envelopes
            .into_iter()
            .map(|b| self.receive(gov, from, b.as_ref()))
            .collect();
        // One group commit for every envelope the batch stored, before any of their changes is applied.
        if let Err(e) = self.sink.commit_batch() {
            let failure = BatchCommitFailed::new(e);
            for r in &mut results {
                if matches!(r, Ok(Received::Accepted(_))) {
                    *r = Err(ReceiveError::Store(Box::new(failure.clone())));
                }
            }
        }
        // Applied even when the commit failed: the envelopes are indexed already and the document must match
        // the valid set. They are reported as storage failures (not the sender's fault) and, missing from the
        // store, fetched again after a restart.
        self.flush_deferred();
        results
    }

    /// Ends a batch: applies every deferred change.
    pub(super) fn flush_deferred(&mut self) {
        self.defer = false;
        for st in self.docs.values_mut() {
            st.flush_deferred();
        }
    }

    /// [`receive`](Self::receive) after stage 1 of verification was done elsewhere (e.g. signatures checked on a
    /// thread pool with [`VerifiedHeader::from_bytes`]).
    pub fn receive_header(
        &mut self,
        gov: &Governance,
        from: &Peer,
        header: VerifiedHeader,
    ) -> Result<Received, ReceiveError> {
        self.receive_incoming(gov, from, Incoming::Header(header))
    }

    /// [`receive`](Self::receive) for a fully verified envelope.
    pub fn receive_verified(
        &mut self,
        gov: &Governance,
        from: &Peer,
        env: SignedEnvelope,
    ) -> Result<Received, ReceiveError> {
        self.receive_incoming(gov, from, Incoming::Parsed(env))
    }

    pub(super) fn receive_incoming(
        &mut self,
        gov: &Governance,
        from: &Peer,
        env: Incoming,
    ) -> Result<Received, ReceiveError> {
        let found = env.header().header().federation;
        if found != self.federation {
            let e = ReceiveError::Envelope(EnvelopeError::WrongFederation {
                expected: self.federation,
                found,
            });
            self.count(e.reason());
            return Err(e);
        }
        let id = env.header().id();
        match self.admit(gov, env, from, false) {
            Ok(Step::Accepted {
                doc,
                applied,
                rebuilt,
                hashes,
                excluded,
            }) => {
                let (released, more_applied, more_rebuilt, more_excluded) =
                    self.release(gov, hashes);
                Ok(Received::Accepted(Accepted {
                    id,
                    doc,
                    applied: applied + more_applied,
                    released,
                    rebuilt: rebuilt || more_rebuilt,
                    excluded: excluded.or(more_excluded),
                }))
            }
            Ok(Step::Duplicate) => Ok(Received::Duplicate),
            Ok(Step::Parked(p)) => Ok(Received::Parked(p)),
            Err(e) => Err(e),
        }
    }

    /// Pipeline steps 2 to 7 for an envelope past stage 1: [`judge`](Self::judge), then parking, or storing and
    /// applying. `restore`: the envelope comes from this node's store (not stored again; kept even if no longer
    /// authorised, as before the restart).
    pub(super) fn admit(
        &mut self,
        gov: &Governance,
        env: Incoming,
        from: &Peer,
        restore: bool,
    ) -> Result<Step, ReceiveError> {
        let verdict = match self.judge(gov, env, restore) {
            Ok(v) => v,
            Err(e) => {
                self.count(e.reason());
                return Err(e);
            }
        };
        let (env, authorised, pre) = match verdict {
            Verdict::Duplicate => {
                self.duplicates += 1;
                return Ok(Step::Duplicate);
            }
            Verdict::Wait { env, wait, parked } => {
                return self.park(gov, env, from, restore, wait, parked)
            }
            Verdict::Acceptable {
                env,
                authorised,
                pre,
            } => (env, authorised, pre),
        };
        let doc = env.header().doc;
        if !restore {
            self.sink
                .put_envelope(&env)
                .map_err(|e| ReceiveError::Store(Box::new(e)))?;
        }
        self.record_stored(&env);
        let hashes: Vec<ChangeHash> = env.changes().iter().map(|c| c.hash()).collect();
        let defer = self.defer;
        let st = self.state(&doc);
        let authorised_now = authorised.is_ok();
        let valid_before = st.valid.len();
        let Indexed {
            fresh,
            need_full,
            excluded,
        } = st.index(env, authorised, pre);
        let mut applied = 0;
        let mut rebuilt = false;
        if authorised_now {
            let before = st.valid.len();
            let incremental = if need_full {
                Err(())
            } else {
                st.apply_fresh(&fresh, defer)
            };
            match incremental {
                Ok(n) => applied = n,
                Err(()) => {
                    let suspects: HashSet<ChangeHash> = fresh.iter().copied().collect();
                    st.rebuild(&suspects);
                    rebuilt = true;
                    applied = st.valid.len().saturating_sub(before);
                }
            }
        }
        // What is stored may put envelopes the state refuses into the document (finalised content, an edit
        // adopted before its author left: `history`), whether or not this one is authorised.
        if self.reinstate_beyond_state(gov, &doc) {
            rebuilt = true;
            applied = self
                .docs
                .get(&doc)
                .map_or(applied, |st| st.valid.len().saturating_sub(valid_before));
        }
        Ok(Step::Accepted {
            doc,
            applied,
            rebuilt,
            hashes,
            excluded,
        })
    }

    /// Whether an envelope past stage 1 is acceptable for its document at the governance state `gov` (pipeline
    /// steps 2 to 5): the one function that decides it, for a peer's envelope ([`admit`](Self::admit)) and for
    /// this node's own before it is stored or announced ([`publish`](Self::publish)). It changes nothing (the
    /// caller counts, parks or stores). `restore`: an envelope from this node's store, judged on the same rules
    /// except that one no longer authorised is kept (`authorised` is then `Err`) and the op cap is not applied
    /// again to what was accepted before.
    pub(super) fn judge(
        &mut self,
        gov: &Governance,
        env: Incoming,
        restore: bool,
    ) -> Result<Verdict, ReceiveError> {
        let head = env.header();
        let doc = head.header().doc;
        let id = head.id();
        if self
            .docs
            .get(&doc)
            .is_some_and(|st| st.by_id.contains_key(&id))
            || self.parking.slots.contains(&id)
        {
            return Ok(Verdict::Duplicate);
        }
        // Governance heads first: an envelope from an organisation whose inception we have not seen yet cites it.
        let unknown: Vec<OpId> = head
            .header()
            .gov_heads
            .iter()
            .filter(|h| !gov.contains(h))
            .copied()
            .collect();
        if !unknown.is_empty() {
            return Ok(Verdict::wait_for_ops(env, unknown));
        }
        let authorised = match gov.authorize_header(head) {
            Ok(()) => Ok(()),
            Err(WriteDenied::UnknownHeads(missing)) => {
                return Ok(Verdict::wait_for_ops(env, missing));
            }
            Err(d) if restore => Err(d),
            // Refused here, but authorised by the history it cites: had it arrived before the ops outside that
            // history that refuse it (a revocation it does not cite, or one invalidating an op inside it), it
            // would be stored, and `revalidate` would mark it unauthorised. So it is stored as unauthorised now:
            // what is stored does not depend on arrival order (module docs, *Stored but unauthorised*). Not an
            // error: nobody is penalised and it never enters the node's memory of refused envelopes.
            Err(d) if self.history.authorised(gov, head) => Err(d),
            // Not authorised even by the history it cites: refused at every node whatever the order, and the
            // sender is at fault (a non-member's write, a team it is not in there, a document it did not create).
            Err(d) => return Err(ReceiveError::Denied(d)),
        };
        let st = self.state(&doc);
        // Fresh actors make Automerge's apply grow with every actor the document has: refused past the caps
        // before Automerge parses anything. Not applied to what this node stored before.
        if !restore {
            let h = head.header();
            st.actor_room(&h.author, &automerge_actor(&h.key, &doc, &h.session_salt))?;
        }
        // Nothing new: every change is applied, or already carried by an authorised stored envelope (then this one
        // cannot change the valid set; refusing it keeps re-sealed copies from costing storage and rebuilds).
        if head
            .header()
            .change_hashes
            .iter()
            .all(|h| st.covers(&ChangeHash(h.0)))
        {
            return Ok(Verdict::Duplicate);
        }
        // Quotas (issue 14): before the envelope parks, is parsed or stored. Restored envelopes were counted in.
        if !restore {
            self.check_quota(head)?;
        }
        let st = self.state(&doc);
        let missing: Vec<ChangeHash> = head
            .external_deps()
            .iter()
            .map(|h| ChangeHash(h.0))
            .filter(|h| !st.changes.contains_key(h))
            .collect();
        if !missing.is_empty() {
            let parked = Parked {
                id,
                missing_ops: Vec::new(),
                missing_changes: missing.iter().map(to_hash32).collect(),
            };
            return Ok(Verdict::Wait {
                env,
                wait: Wait::Changes(missing),
                parked,
            });
        }
        // Stage 2: only now does Automerge's parser see the bytes.
        let env = env.parse().map_err(ReceiveError::Envelope)?;
        let st = self.state(&doc);
        let pre = st.precheck(&env)?;
        if let (false, Err(ops)) = (restore, st.ops_with(env.verified_header().ops())) {
            return Err(ReceiveError::DocumentFull {
                ops,
                max: MAX_DOCUMENT_OPS,
            });
        }
        Ok(Verdict::Acceptable {
            env,
            authorised,
            pre,
        })
    }

    pub(super) fn park(
        &mut self,
        gov: &Governance,
        env: Incoming,
        from: &Peer,
        restore: bool,
        wait: Wait,
        parked: Parked,
    ) -> Result<Step, ReceiveError> {
        match self.parking.park(
            gov,
            from,
            ParkedEnvelope { env, restore, wait },
            std::time::Instant::now(),
        ) {
            Ok(()) => Ok(Step::Parked(parked)),
            Err(e) => {
                self.count(e.reason());
                Err(e)
            }
        }
    }

    /// Retries parked envelopes waiting for any of `known` (newly stored changes), transitively. Returns
    /// (accepted, changes applied, a document was rebuilt, an author one of them excluded).
    pub(super) fn release(
        &mut self,
        gov: &Governance,
        mut known: Vec<ChangeHash>,
    ) -> (usize, usize, bool, Option<OrgId>) {
        let (mut released, mut applied, mut rebuilt, mut excluded) = (0, 0, false, None);
        while let Some(h) = known.pop() {
            for id in self.parking.slots.take_waiters(&h) {
                let ready = self
                    .parking
                    .slots
                    .get(&id)
                    .is_some_and(|p| match &p.value.wait {
                        Wait::Changes(missing) => {
                            let st = self.docs.get(&p.value.env.header().header().doc);
                            missing
                                .iter()
                                .all(|m| st.is_some_and(|st| st.changes.contains_key(m)))
                        }
                        Wait::Governance(_) => false,
                    });
                if !ready {
                    continue;
                }
                let Some(p) = self.parking.remove(&id) else {
                    continue;
                };
                if let Ok(Step::Accepted {
                    applied: a,
                    rebuilt: r,
                    hashes,
                    excluded: x,
                    ..
                }) = self.admit(gov, p.value.env, &p.peer, p.value.restore)
                {
                    released += 1;
                    applied += a;
                    rebuilt |= r;
                    excluded = excluded.or(x);
                    known.extend(hashes);
                }
            }
        }
        (released, applied, rebuilt, excluded)
    }

    /// Drops everything `peer` parked (e.g. when it is penalised or disconnects). Returns how many.
    pub fn forget_peer(&mut self, peer: &Peer) -> usize {
        self.parking.slots.forget(peer).len()
    }
}
