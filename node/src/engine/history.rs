//! Envelopes the node's current governance state refuses, and what still decides about them: whether the
//! governance history an envelope cites authorises it (refusing it outright or storing it as unauthorised, module
//! docs of [`super`], *Stored but unauthorised*), and whether a stored one stays in the document all the same
//! because its changes are final (*Finalised content*).
//!
//! Every answer here is a function of the envelope, the ops of its cited history, the stored envelopes of its
//! document and the governance state's finalised attestations, so every node with the same envelopes and ops gives
//! the same one, whatever it received first. The current state alone cannot: a revocation the envelope does not
//! cite, or one that invalidates an op inside its history (a JoinTeam concurrent with the author's revocation),
//! changes the answer there, and even the reason reported.

use super::doc_state::DocState;
use super::sink::EnvelopeSink;
use super::DocumentEngine;
use automerge::ChangeHash;
use std::collections::{HashMap, HashSet};
use wsis_protocol::crypto::PublicKey;
use wsis_protocol::envelope::VerifiedHeader;
use wsis_protocol::gov::{Governance, WriteDenied};
use wsis_protocol::ids::{DocId, EnvelopeId, OpId, OrgId};

/// Answers kept at most (then forgotten all at once): an answer never changes, so this only bounds memory.
const MAX_ANSWERS: usize = 1024;

/// The answer depends on the document, the author, the key and the cited heads (sorted) only.
type Key = (DocId, OrgId, PublicKey, Vec<OpId>);

/// Answers of [`HistoryAuthorisation::authorised`], remembered: envelopes of one author citing the same heads
/// (the usual case, a burst of edits) rebuild the history once.
#[derive(Debug, Default)]
pub(super) struct HistoryAuthorisation {
    answers: HashMap<Key, bool>,
    /// Stored envelopes that the current state refuses but that are in the document (their `authorised` is
    /// `Ok`) because [`HistoryAuthorisation::beyond_state`] says so. They never vouch for another envelope's
    /// changes (only envelopes the state itself authorises adopt, see `beyond_state`), so they are told apart.
    pub(super) reinstated: HashSet<EnvelopeId>,
    /// Histories rebuilt (for tests and metrics).
    pub(super) rebuilt: u64,
}

/// What the current governance state says of one stored envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Standing {
    /// Authorised by the state itself.
    Authorised,
    /// Refused by the state, for this reason.
    Refused(WriteDenied),
    /// Refused by the state, already in the document through [`HistoryAuthorisation::beyond_state`].
    Reinstated,
}

impl HistoryAuthorisation {
    /// Is the envelope authorised by a governance replica holding exactly the ops in the history of the heads it
    /// cites (all of them known to `gov`)? Rebuilding that replica costs one insertion per op of the history
    /// (`Governance::replica_of_history`; signatures are not checked again); it is done only for an envelope `gov`
    /// refuses, once per key.
    pub(super) fn authorised(&mut self, gov: &Governance, head: &VerifiedHeader) -> bool {
        let h = head.header();
        let mut heads = h.gov_heads.clone();
        heads.sort();
        let key = (h.doc, h.author, h.key, heads);
        if let Some(&a) = self.answers.get(&key) {
            return a;
        }
        self.rebuilt += 1;
        let answer = gov
            .replica_of_history(&h.gov_heads)
            .is_ok_and(|g| g.authorize_header(head).is_ok());
        if self.answers.len() >= MAX_ANSWERS {
            self.answers.clear();
        }
        self.answers.insert(key, answer);
        answer
    }

    /// The stored envelopes of `st` (indexes into `st.envelopes`; `standing` is in the same order) that the
    /// current state refuses (`Standing::Refused`) but that belong in the document all the same. An envelope
    /// does if it is authorised by its cited history and
    ///
    /// 1. **finalised content**: every change it carries is in the causal history of the heads a finalised, valid
    ///    attestation of the document names ([`Governance::finalised_attested_heads`]) — what a passed
    ///    checkpoint made final stays, whatever is later said of its author (issue 11, defect 5); or
    /// 2. **adopted before the author left**: the state refuses it only because its author left the team
    ///    (`WriteDenied::LeftTeam`) and every change it carries is in the causal history of a change carried by
    ///    an envelope of *another* author that the state authorises: someone still entitled to write built on it,
    ///    so it was in the document before that writer knew of the leave (issue 14, defect 7; the honest edit made
    ///    concurrently with leaving). Reinstated envelopes never adopt, so this needs no fixpoint.
    ///
    /// "Every change" rather than "some": an envelope re-carrying an attested change beside new ones gets nothing
    /// (the attested change stays valid through its first carrier). An envelope is one author's chain of changes,
    /// so for attested heads taken from a node's document it is all or nothing anyway.
    ///
    /// Both sets only grow as envelopes are stored (the governance state fixed), and are the same on every node
    /// with the same stored envelopes: content-addressed causal histories, the state's own answers.
    pub(super) fn beyond_state(
        &mut self,
        gov: &Governance,
        st: &DocState,
        standing: &[Standing],
    ) -> Vec<usize> {
        if !standing.iter().any(|s| matches!(s, Standing::Refused(_))) {
            return Vec::new();
        }
        let attested_heads = gov.finalised_attested_heads(&st.id);
        let attested = (!attested_heads.is_empty())
            .then(|| ancestors(st, attested_heads.iter().map(|h| ChangeHash(h.0))));
        // Adopted changes, per leaving author: the causal histories of other authors' authorised envelopes.
        let mut adopted: HashMap<OrgId, HashSet<ChangeHash>> = HashMap::new();
        let mut out = Vec::new();
        for (i, s) in standing.iter().enumerate() {
            let Standing::Refused(reason) = s else {
                continue;
            };
            let Some(stored) = st.envelopes.get(i) else {
                continue;
            };
            let env = &stored.env;
            let within =
                |set: &HashSet<ChangeHash>| env.changes().iter().all(|c| set.contains(&c.hash()));
            let author = env.header().author;
            let keep = attested.as_ref().is_some_and(within)
                || (*reason == WriteDenied::LeftTeam
                    && within(adopted.entry(author).or_insert_with(|| {
                        let starts = st
                            .envelopes
                            .iter()
                            .zip(standing)
                            .filter(|(e, s)| {
                                **s == Standing::Authorised && e.env.header().author != author
                            })
                            .flat_map(|(e, _)| e.env.changes().iter().map(|c| c.hash()));
                        ancestors(st, starts)
                    })));
            if keep && self.authorised(gov, env.verified_header()) {
                out.push(i);
            }
        }
        out
    }
}

/// The stored changes in the causal history of `starts` (themselves included), walking dependencies; a change
/// that is not stored ends its branch (its history cannot be known yet, and grows when it arrives).
pub(super) fn ancestors(
    st: &DocState,
    starts: impl IntoIterator<Item = ChangeHash>,
) -> HashSet<ChangeHash> {
    let mut seen: HashSet<ChangeHash> = HashSet::new();
    let mut stack: Vec<ChangeHash> = starts.into_iter().collect();
    while let Some(h) = stack.pop() {
        let Some(c) = st.change(&h) else {
            continue;
        };
        if !seen.insert(h) {
            continue;
        }
        stack.extend(c.deps().iter().filter(|d| !seen.contains(d)).copied());
    }
    seen
}

impl<S: EnvelopeSink> DocumentEngine<S> {
    /// After an envelope of `doc` is stored (the governance state unchanged): puts into the document the stored
    /// envelopes the state refuses that now belong there ([`HistoryAuthorisation::beyond_state`]: the new
    /// envelope may complete the path from attested heads to them, or adopt them), and rebuilds it if any did.
    /// Returns whether it rebuilt. Nothing comes out here: both sets only grow while the state is fixed;
    /// [`DocumentEngine::revalidate`] decides afresh when the state changes.
    pub(super) fn reinstate_beyond_state(&mut self, gov: &Governance, doc: &DocId) -> bool {
        let Some(st) = self.docs.get_mut(doc) else {
            return false;
        };
        if st.envelopes.iter().all(|s| s.authorised.is_ok()) {
            return false;
        }
        let standing: Vec<Standing> = st
            .envelopes
            .iter()
            .map(|s| match &s.authorised {
                _ if self.history.reinstated.contains(&s.env.id()) => Standing::Reinstated,
                Ok(()) => Standing::Authorised,
                Err(d) => Standing::Refused(d.clone()),
            })
            .collect();
        let keep = self.history.beyond_state(gov, st, &standing);
        if keep.is_empty() {
            return false;
        }
        for i in keep {
            if let Some(s) = st.envelopes.get_mut(i) {
                s.authorised = Ok(());
                self.history.reinstated.insert(s.env.id());
            }
        }
        st.rebuild(&HashSet::new());
        true
    }
}
