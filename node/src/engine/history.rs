//! Whether an envelope refused at this node's governance state is authorised by the governance history it cites
//! alone: what decides between refusing it outright and storing it as unauthorised (module docs of [`super`],
//! *Stored but unauthorised*).
//!
//! The answer is a function of the envelope and of the ops in its cited history only, so every node that knows
//! those heads gives the same one, whatever else it has received and in whatever order. The current state cannot
//! give it: a revocation the envelope does not cite, or one that invalidates an op inside its history (a JoinTeam
//! concurrent with the author's revocation), changes the answer there, and even the reason reported.

use std::collections::HashMap;
use wsis_protocol::crypto::PublicKey;
use wsis_protocol::envelope::VerifiedHeader;
use wsis_protocol::gov::Governance;
use wsis_protocol::ids::{DocId, OpId, OrgId};

/// Answers kept at most (then forgotten all at once): an answer never changes, so this only bounds memory.
const MAX_ANSWERS: usize = 1024;

/// The answer depends on the document, the author, the key and the cited heads (sorted) only.
type Key = (DocId, OrgId, PublicKey, Vec<OpId>);

/// Answers of [`HistoryAuthorisation::authorised`], remembered: envelopes of one author citing the same heads
/// (the usual case, a burst of edits) rebuild the history once.
#[derive(Debug, Default)]
pub(super) struct HistoryAuthorisation {
    answers: HashMap<Key, bool>,
    /// Histories rebuilt (for tests and metrics).
    pub(super) rebuilt: u64,
}

impl HistoryAuthorisation {
    /// Is the envelope authorised by a governance replica holding exactly the ops in the history of the heads it
    /// cites (all of them known to `gov`)? Rebuilding that replica costs one insertion per op of the history
    /// (`Governance::replica_of_history`; signatures are not checked again); it is done only for an envelope `gov` refuses, once per key.
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
}
