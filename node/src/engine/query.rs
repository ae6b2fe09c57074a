//! Read-only questions to the engine: documents, heads, what to serve and announce, exports, parking and
//! rejection counters, equivocation evidence, stats.

use super::doc_state::*;
use super::error::*;
use super::outcome::*;
use super::parking::*;
use super::sink::*;
use super::{canonical_json, DocumentEngine};
use automerge::{Automerge, ChangeHash};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use wsis_protocol::envelope::SignedEnvelope;
use wsis_protocol::ids::Hash32;
use wsis_protocol::ids::{sha256, DocId, EnvelopeId, OpId};
use wsis_protocol::rebuild::{document_at, RebuildError};

impl<S: EnvelopeSink> DocumentEngine<S> {
    /// Documents this engine holds, sorted.
    pub fn documents(&self) -> Vec<DocId> {
        let mut v: Vec<DocId> = self.docs.keys().copied().collect();
        v.sort();
        v
    }

    /// The materialised document (read-only; use [`edit`](Self::edit) to write).
    pub fn document(&self, doc: &DocId) -> Option<&Automerge> {
        self.docs.get(doc).map(|st| &st.doc)
    }

    /// Heads of the materialised document, sorted (unpublished local changes included).
    pub fn heads(&self, doc: &DocId) -> Vec<Hash32> {
        let mut v: Vec<Hash32> = self
            .docs
            .get(doc)
            .map(|st| st.doc.get_heads().iter().map(to_hash32).collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    /// Ids of the stored envelopes of `doc` that this node serves, sorted: every stored envelope, authorised now or
    /// not. Each was authorised by the governance history it cites, so every peer stores it too rather than
    /// refusing it (module docs of [`super`], *Stored but unauthorised*), and a peer that never saw it needs it to
    /// resolve the envelopes built on its changes; the receiver judges each itself. Equivocating envelopes are
    /// included (peers must see both sides to exclude both). The same as
    /// [`stored_envelope_ids`](Self::stored_envelope_ids).
    pub fn envelope_ids(&self, doc: &DocId) -> Vec<EnvelopeId> {
        let mut v: Vec<EnvelopeId> = self
            .docs
            .get(doc)
            .map(|st| st.envelopes.iter().map(|s| s.env.id()).collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    /// Ids of every stored envelope of `doc`, authorised or not, sorted.
    pub fn stored_envelope_ids(&self, doc: &DocId) -> Vec<EnvelopeId> {
        let mut v: Vec<EnvelopeId> = self
            .docs
            .get(doc)
            .map(|st| st.by_id.keys().copied().collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    /// The served envelopes (see [`envelope_ids`](Self::envelope_ids)) that no other served envelope depends on,
    /// sorted: what to announce. A peer that has these has everything served.
    pub fn envelope_heads(&self, doc: &DocId) -> Vec<EnvelopeId> {
        let Some(st) = self.docs.get(doc) else {
            return Vec::new();
        };
        let mut covered = vec![false; st.envelopes.len()];
        for (i, s) in st.envelopes.iter().enumerate() {
            for c in s.env.changes() {
                for d in c.deps() {
                    if let Some(e) = st.changes.get(d) {
                        for &(j, _) in &e.carriers {
                            if j as usize != i {
                                covered[j as usize] = true;
                            }
                        }
                    }
                }
            }
        }
        let mut v: Vec<EnvelopeId> = st
            .envelopes
            .iter()
            .enumerate()
            .filter(|(i, _)| !covered[*i])
            .map(|(_, s)| s.env.id())
            .collect();
        v.sort();
        v
    }

    /// A digest of [`envelope_heads`](Self::envelope_heads): two nodes with equal digests serve the same envelopes
    /// of `doc` (the heads name every served envelope through their dependencies). A document held here with no
    /// served envelope has the digest of the empty list.
    pub fn heads_digest(&self, doc: &DocId) -> [u8; 32] {
        let mut bytes = Vec::with_capacity(32 + 32 * 4);
        bytes.extend_from_slice(b"wsis/v1/doc-heads-digest");
        for head in self.envelope_heads(doc) {
            bytes.extend_from_slice(&head.0);
        }
        sha256(&bytes)
    }

    /// Documents held here with an id greater than `after` (all with `None`), in ascending id order, with their
    /// [`heads_digest`](Self::heads_digest); at most `max`. The flag says whether more documents follow.
    pub fn heads_digests_after(
        &self,
        after: Option<&DocId>,
        max: usize,
    ) -> (Vec<(DocId, [u8; 32])>, bool) {
        self.heads_digests_page(after, max, usize::MAX)
    }

    /// [`heads_digests_after`](Self::heads_digests_after) bounded by work too: a digest costs a walk of its
    /// document's envelopes, so the page ends (flag set) once the documents in it hold `max_envelopes` stored
    /// envelopes, after at least one document. A responder answers `DocDigests` with this, so one request costs
    /// a bounded walk however large the documents are.
    pub fn heads_digests_page(
        &self,
        after: Option<&DocId>,
        max: usize,
        max_envelopes: usize,
    ) -> (Vec<(DocId, [u8; 32])>, bool) {
        let mut ids: Vec<&DocId> = self
            .docs
            .keys()
            .filter(|d| after.is_none_or(|a| *d > a))
            .collect();
        ids.sort();
        let mut digests = Vec::new();
        let mut work = 0usize;
        for d in &ids {
            let cost = self.docs.get(*d).map_or(0, |st| st.envelopes.len());
            if digests.len() >= max || (!digests.is_empty() && work + cost > max_envelopes) {
                return (digests, true);
            }
            work += cost;
            digests.push((**d, self.heads_digest(d)));
        }
        (digests, false)
    }

    /// A stored envelope.
    pub fn envelope(&self, doc: &DocId, id: &EnvelopeId) -> Option<&SignedEnvelope> {
        let st = self.docs.get(doc)?;
        st.by_id.get(id).map(|&i| &st.envelopes[i as usize].env)
    }

    /// The status of a stored envelope.
    pub fn envelope_status(&self, doc: &DocId, id: &EnvelopeId) -> Option<EnvelopeStatus> {
        let st = self.docs.get(doc)?;
        st.by_id
            .get(id)
            .map(|&i| st.status(&st.envelopes[i as usize]))
    }

    /// The served envelopes a peer lacks, given envelope ids it has (typically its heads): everything whose changes
    /// are not all in the causal history of the changes of `theirs`, in causal order, without carrying a change
    /// twice. Ids unknown here are ignored. All of them: a responder uses
    /// [`missing_envelopes`](Self::missing_envelopes) and stops when its page is full.
    pub fn envelopes_missing_from(
        &self,
        doc: &DocId,
        theirs: &[EnvelopeId],
    ) -> Vec<&SignedEnvelope> {
        self.missing_envelopes(doc, theirs).collect()
    }

    /// [`envelopes_missing_from`](Self::envelopes_missing_from) one envelope at a time, with what it cost so far
    /// ([`MissingEnvelopes::visited`], [`MissingEnvelopes::walked`]). The history of `theirs` is walked at once
    /// (what the request names); the stored envelopes are looked at only as the caller pulls, so a page of an
    /// empty `theirs` costs a page, not the document.
    pub fn missing_envelopes<'a>(
        &'a self,
        doc: &DocId,
        theirs: &[EnvelopeId],
    ) -> MissingEnvelopes<'a> {
        let Some(st) = self.docs.get(doc) else {
            return MissingEnvelopes {
                st: None,
                have: HashSet::new(),
                next: 0,
                visited: 0,
                walked: 0,
            };
        };
        let mut have: HashSet<ChangeHash> = HashSet::new();
        let mut walked = 0;
        let mut stack: Vec<ChangeHash> = theirs
            .iter()
            .filter_map(|id| st.by_id.get(id))
            .flat_map(|&i| {
                st.envelopes[i as usize]
                    .env
                    .changes()
                    .iter()
                    .map(|c| c.hash())
            })
            .collect();
        while let Some(h) = stack.pop() {
            if have.insert(h) {
                walked += 1;
                if let Some(c) = st.change(&h) {
                    stack.extend(c.deps().iter().copied());
                }
            }
        }
        MissingEnvelopes {
            st: Some(st),
            have,
            next: 0,
            visited: 0,
            walked,
        }
    }

    /// The canonical JSON export of the materialised document ([`canonical_json`]), unpublished local changes
    /// included.
    pub fn export(&self, doc: &DocId) -> Result<Vec<u8>, ExportError> {
        let st = self.docs.get(doc).ok_or(ExportError::UnknownDocument)?;
        Ok(canonical_json(&st.doc)?)
    }

    /// SHA-256 of [`export`](Self::export).
    pub fn content_hash(&self, doc: &DocId) -> Result<Hash32, ExportError> {
        Ok(Hash32(sha256(&self.export(doc)?)))
    }

    /// The document as it was at `heads`, rebuilt by the protocol's [`document_at`] (the function the verifier
    /// rebuilds attested states with) from the stored envelopes' changes and the unpublished local ones.
    pub(super) fn fork_at(&self, doc: &DocId, heads: &[Hash32]) -> Result<Automerge, ExportError> {
        let st = self.docs.get(doc).ok_or(ExportError::UnknownDocument)?;
        let pending = |h: &ChangeHash| {
            st.local
                .pending
                .iter()
                .find(|(_, c)| c.hash() == *h)
                .map(|(_, c)| c)
        };
        let unknown: Vec<Hash32> = heads
            .iter()
            .map(|h| ChangeHash(h.0))
            .filter(|h| !st.valid.contains(h) && pending(h).is_none())
            .map(|h| to_hash32(&h))
            .collect();
        if !unknown.is_empty() {
            return Err(ExportError::UnknownHeads(unknown));
        }
        document_at(|h| st.change(h).or_else(|| pending(h)), heads).map_err(|e| match e {
            RebuildError::UnknownChanges(missing) => ExportError::UnknownHeads(missing),
            _ => ExportError::Rebuild,
        })
    }

    /// The canonical export of the document at `heads` (what a submission attests).
    pub fn export_at(&self, doc: &DocId, heads: &[Hash32]) -> Result<Vec<u8>, ExportError> {
        Ok(canonical_json(&self.fork_at(doc, heads)?)?)
    }

    /// Automerge bytes (`Automerge::save`) of the document at `heads`, for the stocktaking bundle.
    pub fn save_at(&self, doc: &DocId, heads: &[Hash32]) -> Result<Vec<u8>, ExportError> {
        Ok(self.fork_at(doc, heads)?.save())
    }

    /// Rejected envelopes per reason, since the engine started.
    pub fn rejected_counts(&self) -> &BTreeMap<Reject, u64> {
        &self.rejected
    }

    /// Rejected envelopes for one reason.
    pub fn rejected_count(&self, reason: Reject) -> u64 {
        self.rejected.get(&reason).copied().unwrap_or(0)
    }

    /// Envelopes waiting in the parking buffer.
    pub fn parked_len(&self) -> usize {
        self.parking.slots.len()
    }

    /// Envelopes `peer` sent that are parked, and their bytes.
    pub fn parked_by(&self, peer: &Peer) -> (usize, usize) {
        self.parking.slots.peer_usage(peer)
    }

    /// Envelopes parked on the quota of the organisation `org` (all its peer ids together), and their bytes.
    pub fn parked_for(&self, org: &wsis_protocol::ids::OrgId) -> (usize, usize) {
        self.parking.slots.usage(&crate::parking::Owner::Org(*org))
    }

    /// Change hashes that parked envelopes wait for, sorted: fetch the envelopes that carry them.
    pub fn missing_changes(&self) -> Vec<Hash32> {
        let mut v: Vec<Hash32> = self.parking.slots.awaited().map(to_hash32).collect();
        v.sort();
        v
    }

    /// Governance ops that parked envelopes wait for, sorted: fetch them.
    pub fn missing_ops(&self) -> Vec<OpId> {
        let mut v: BTreeSet<OpId> = BTreeSet::new();
        for (_, p) in self.parking.slots.iter() {
            if let Wait::Governance(ops) = &p.value.wait {
                v.extend(ops.iter().copied());
            }
        }
        v.into_iter().collect()
    }

    /// Automerge equivocations among authorised envelopes of `doc`, sorted by actor and seq: every change named
    /// is excluded from the document.
    pub fn equivocations(&self, doc: &DocId) -> Vec<Equivocation> {
        let Some(st) = self.docs.get(doc) else {
            return Vec::new();
        };
        let mut v: Vec<Equivocation> = st
            .equivocations
            .iter()
            .filter_map(|(&(actor, seq), hashes)| {
                let mut envelopes: Vec<EnvelopeId> = hashes
                    .iter()
                    .filter_map(|h| st.changes.get(h))
                    .flat_map(|e| e.carriers.iter())
                    .map(|&(i, _)| st.envelopes[i as usize].env.id())
                    .collect();
                envelopes.sort();
                envelopes.dedup();
                let author = hashes
                    .iter()
                    .filter_map(|h| st.changes.get(h))
                    .filter_map(|e| e.carriers.first())
                    .map(|&(i, _)| st.envelopes[i as usize].env.header().author)
                    .next()?;
                Some(Equivocation {
                    doc: *doc,
                    author,
                    actor: st.actors[actor as usize].to_bytes().to_vec(),
                    seq,
                    changes: hashes.iter().map(to_hash32).collect(),
                    envelopes,
                })
            })
            .collect();
        // Sorted by what they are, not by this node's internal actor numbering (which follows arrival order).
        v.sort_by(|a, b| (&a.actor, a.seq).cmp(&(&b.actor, b.seq)));
        v
    }

    /// Counters for metrics.
    pub fn stats(&self) -> EngineStats {
        let counts = self.parking.slots.counts();
        let mut s = EngineStats {
            documents: self.docs.len(),
            parked_envelopes: self.parking.slots.len(),
            parked_bytes: self.parking.slots.total_bytes(),
            parking_refused: counts.refused_quota + counts.refused_full,
            parking_dropped: counts.dropped + counts.expired,
            signatures: self.signatures,
            duplicates: self.duplicates,
            ..EngineStats::default()
        };
        for st in self.docs.values() {
            s.stored_envelopes += st.envelopes.len();
            s.valid_changes += st.valid.len();
            s.unpublished_changes += st.local.pending.len();
            s.quarantined_changes += st.quarantined.len();
            s.equivocations += st.equivocations.len();
            s.rebuilds += st.rebuilds;
        }
        s
    }

    /// Signatures this engine made (one per published envelope).
    pub fn signatures_made(&self) -> u64 {
        self.signatures
    }
}

/// The envelopes a peer lacks, one at a time ([`DocumentEngine::missing_envelopes`]), in causal order.
pub struct MissingEnvelopes<'a> {
    st: Option<&'a DocState>,
    have: HashSet<ChangeHash>,
    next: usize,
    visited: usize,
    walked: usize,
}

impl MissingEnvelopes<'_> {
    /// Stored envelopes looked at so far (those yielded and those skipped as already held by the peer).
    pub fn visited(&self) -> usize {
        self.visited
    }

    /// Changes walked in the history of the envelopes the peer named.
    pub fn walked(&self) -> usize {
        self.walked
    }
}

impl<'a> Iterator for MissingEnvelopes<'a> {
    type Item = &'a SignedEnvelope;

    fn next(&mut self) -> Option<&'a SignedEnvelope> {
        let st = self.st?;
        // Stored order is causal: an envelope is stored only after everything it depends on.
        while let Some(s) = st.envelopes.get(self.next) {
            self.next += 1;
            self.visited += 1;
            if s.env
                .changes()
                .iter()
                .any(|c| !self.have.contains(&c.hash()))
            {
                self.have.extend(s.env.changes().iter().map(|c| c.hash()));
                return Some(&s.env);
            }
        }
        None
    }
}
