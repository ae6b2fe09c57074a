//! Storage quotas per organisation (issue 14, "no quotas"): what each author has stored, per document and in
//! total, and the check that refuses an envelope that would pass a quota before anything of it is stored.
//!
//! The limits are protocol constants ([`MAX_AUTHOR_DOC_BYTES`], [`MAX_AUTHOR_DOC_ENVELOPES`],
//! [`MAX_AUTHOR_BYTES`]), the same at every node. Usage counts every stored envelope of the author, authorised or
//! stored as unauthorised, since both cost the node memory and disk. It counts signed bytes as received, the size
//! that is stored and served.
//!
//! Which envelope is the one that passes a quota can depend on arrival order when one author writes concurrently
//! (several sessions) right at its limit: one node may store `a` and refuse `b`, another the reverse. Only an
//! author at its quota is affected, and its own envelopes then differ between nodes; honest authors far from the
//! limits are not (docs/protocol.md, "Quotas").

use std::collections::{BTreeMap, HashMap};
use wsis_protocol::ids::{DocId, OrgId};
use wsis_protocol::limits::{MAX_AUTHOR_BYTES, MAX_AUTHOR_DOC_BYTES, MAX_AUTHOR_DOC_ENVELOPES};

/// What one author has stored in one document, or over all documents.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Usage {
    pub envelopes: u64,
    pub bytes: u64,
}

impl Usage {
    fn add(&mut self, bytes: u64) {
        self.envelopes += 1;
        self.bytes = self.bytes.saturating_add(bytes);
    }
}

/// The quotas an engine applies: the protocol's ([`Default`]). Only tests replace them
/// ([`DocumentEngine::with_quota_limits`](super::DocumentEngine::with_quota_limits)), to reach a count limit
/// without sending sixteen thousand envelopes; a node always runs with the protocol's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaLimits {
    pub doc_bytes: u64,
    pub doc_envelopes: u64,
    pub author_bytes: u64,
}

impl Default for QuotaLimits {
    fn default() -> Self {
        QuotaLimits {
            doc_bytes: MAX_AUTHOR_DOC_BYTES,
            doc_envelopes: MAX_AUTHOR_DOC_ENVELOPES,
            author_bytes: MAX_AUTHOR_BYTES,
        }
    }
}

/// Which quota an envelope would pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaKind {
    /// Bytes of the author's envelopes in this document ([`MAX_AUTHOR_DOC_BYTES`]).
    DocumentBytes,
    /// The author's envelopes in this document ([`MAX_AUTHOR_DOC_ENVELOPES`]).
    DocumentEnvelopes,
    /// Bytes of the author's envelopes over all documents ([`MAX_AUTHOR_BYTES`]).
    AuthorBytes,
}

impl QuotaKind {
    /// The protocol's limit.
    pub fn max(self) -> u64 {
        self.max_in(&QuotaLimits::default())
    }

    fn max_in(self, l: &QuotaLimits) -> u64 {
        match self {
            QuotaKind::DocumentBytes => l.doc_bytes,
            QuotaKind::DocumentEnvelopes => l.doc_envelopes,
            QuotaKind::AuthorBytes => l.author_bytes,
        }
    }
}

impl std::fmt::Display for QuotaKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            QuotaKind::DocumentBytes => "bytes in this document",
            QuotaKind::DocumentEnvelopes => "envelopes in this document",
            QuotaKind::AuthorBytes => "bytes over all documents",
        })
    }
}

/// An envelope refused because storing it would pass one of its author's quotas.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the author {author} would have {would_have} {kind}, its quota is {max}")]
pub struct QuotaExceeded {
    pub author: OrgId,
    pub doc: DocId,
    pub kind: QuotaKind,
    pub would_have: u64,
    pub max: u64,
}

/// One author's usage against its quotas, for `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorQuota {
    pub author: OrgId,
    /// Over all documents.
    pub total: Usage,
    /// Per document, sorted by document.
    pub documents: Vec<(DocId, Usage)>,
}

impl AuthorQuota {
    /// The largest fraction of a quota this author uses, in parts per thousand (for "nearest their limits").
    pub fn fill_permille(&self) -> u64 {
        let permille = |used: u64, max: u64| used.saturating_mul(1000) / max.max(1);
        let mut worst = permille(self.total.bytes, MAX_AUTHOR_BYTES);
        for (_, u) in &self.documents {
            worst = worst
                .max(permille(u.bytes, MAX_AUTHOR_DOC_BYTES))
                .max(permille(u.envelopes, MAX_AUTHOR_DOC_ENVELOPES));
        }
        worst
    }
}

/// Usage of every author that has stored envelopes here. Small: two counters per (author, document) written.
#[derive(Debug, Default)]
pub(super) struct Quotas {
    pub(super) limits: QuotaLimits,
    per_doc: HashMap<(OrgId, DocId), Usage>,
    per_author: HashMap<OrgId, Usage>,
}

impl Quotas {
    /// Whether `author` may store `bytes` more in `doc`.
    pub(super) fn check(&self, author: OrgId, doc: DocId, bytes: u64) -> Result<(), QuotaExceeded> {
        let d = self
            .per_doc
            .get(&(author, doc))
            .copied()
            .unwrap_or_default();
        let t = self.per_author.get(&author).copied().unwrap_or_default();
        let over = [
            (QuotaKind::DocumentEnvelopes, d.envelopes.saturating_add(1)),
            (QuotaKind::DocumentBytes, d.bytes.saturating_add(bytes)),
            (QuotaKind::AuthorBytes, t.bytes.saturating_add(bytes)),
        ]
        .into_iter()
        .find(|(kind, would_have)| *would_have > kind.max_in(&self.limits));
        match over {
            Some((kind, would_have)) => Err(QuotaExceeded {
                author,
                doc,
                kind,
                would_have,
                max: kind.max_in(&self.limits),
            }),
            None => Ok(()),
        }
    }

    /// Counts a stored envelope (a new one, or one restored from the store).
    pub(super) fn record(&mut self, author: OrgId, doc: DocId, bytes: u64) {
        self.per_doc.entry((author, doc)).or_default().add(bytes);
        self.per_author.entry(author).or_default().add(bytes);
    }

    /// `author`'s usage (zero if it stored nothing here).
    pub(super) fn of(&self, author: &OrgId) -> AuthorQuota {
        let documents: BTreeMap<DocId, Usage> = self
            .per_doc
            .iter()
            .filter(|((a, _), _)| a == author)
            .map(|((_, d), u)| (*d, *u))
            .collect();
        AuthorQuota {
            author: *author,
            total: self.per_author.get(author).copied().unwrap_or_default(),
            documents: documents.into_iter().collect(),
        }
    }

    /// The `n` authors nearest one of their limits, nearest first (ties by id).
    pub(super) fn nearest(&self, n: usize) -> Vec<AuthorQuota> {
        let mut all: Vec<AuthorQuota> = self.per_author.keys().map(|a| self.of(a)).collect();
        all.sort_by(|a, b| {
            b.fill_permille()
                .cmp(&a.fill_permille())
                .then(a.author.cmp(&b.author))
        });
        all.truncate(n);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_quota_refuses_the_envelope_that_would_pass_it_and_nothing_before() {
        let (a, b, d, e) = (
            OrgId([1; 32]),
            OrgId([2; 32]),
            DocId([3; 32]),
            DocId([4; 32]),
        );
        let mut q = Quotas::default();
        q.record(a, d, MAX_AUTHOR_DOC_BYTES - 10);
        assert!(q.check(a, d, 10).is_ok());
        let err = q.check(a, d, 11).unwrap_err();
        assert_eq!(err.kind, QuotaKind::DocumentBytes);
        assert_eq!(err.would_have, MAX_AUTHOR_DOC_BYTES + 1);
        // Another author, another document: unaffected.
        assert!(q.check(b, d, 11).is_ok());
        assert!(q.check(a, e, 11).is_ok());

        let mut q = Quotas::default();
        for _ in 0..MAX_AUTHOR_DOC_ENVELOPES {
            q.record(a, d, 1);
        }
        assert_eq!(
            q.check(a, d, 1).unwrap_err().kind,
            QuotaKind::DocumentEnvelopes
        );

        let mut q = Quotas::default();
        let docs = MAX_AUTHOR_BYTES / MAX_AUTHOR_DOC_BYTES;
        for i in 0..docs {
            q.record(a, DocId([i as u8 + 10; 32]), MAX_AUTHOR_DOC_BYTES);
        }
        assert_eq!(q.check(a, e, 1).unwrap_err().kind, QuotaKind::AuthorBytes);
        assert_eq!(q.nearest(1)[0].author, a);
        assert_eq!(q.of(&a).fill_permille(), 1000);
    }
}
