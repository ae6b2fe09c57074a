//! What each document has used of the caps a peer applies to it (ops, Automerge actors) and whom it excludes:
//! the numbers `status` shows, so a member sees a document approach a limit before an edit is refused.

use super::sink::*;
use super::DocumentEngine;
use wsis_protocol::ids::DocId;
use wsis_protocol::limits::{MAX_ACTORS_PER_AUTHOR, MAX_DOCUMENT_ACTORS, MAX_DOCUMENT_OPS};

/// One document's use of its caps, as this node holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentUsage {
    pub doc: DocId,
    /// Ops over every stored envelope, and the cap (`MAX_DOCUMENT_OPS`).
    pub ops: u64,
    pub max_ops: u64,
    /// This node's own unpublished ops (they count against the cap when published).
    pub unpublished_ops: u64,
    /// Automerge actors of the stored envelopes, and the cap (`MAX_DOCUMENT_ACTORS`).
    pub actors: usize,
    pub max_actors: usize,
    /// Actors of this node's organisation, and the cap per author (`MAX_ACTORS_PER_AUTHOR`).
    pub own_actors: usize,
    pub max_own_actors: usize,
    /// Authors excluded from the document for an equivocation.
    pub excluded_authors: usize,
}

impl<S: EnvelopeSink> DocumentEngine<S> {
    /// Every document's use of its caps, sorted by document id.
    pub fn usage(&self) -> Vec<DocumentUsage> {
        let mut out: Vec<DocumentUsage> = self
            .docs
            .values()
            .map(|st| DocumentUsage {
                doc: st.id,
                ops: st.ops,
                max_ops: MAX_DOCUMENT_OPS,
                unpublished_ops: st.local.pending.iter().map(|(_, c)| c.len() as u64).sum(),
                actors: st.actors.len(),
                max_actors: MAX_DOCUMENT_ACTORS,
                own_actors: st.author_actors.get(&self.author).copied().unwrap_or(0),
                max_own_actors: MAX_ACTORS_PER_AUTHOR,
                excluded_authors: st.excluded.len(),
            })
            .collect();
        out.sort_by_key(|u| u.doc);
        out
    }
}
