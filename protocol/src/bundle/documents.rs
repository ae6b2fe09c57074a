//! The bundled documents: each is loaded (behind a panic firewall: the bytes are untrusted), its heads are
//! checked against every attestation of it, and every attested content hash is recomputed from the document
//! itself. The Chair runs the same check before signing that the verifier runs after.

use super::closing::{Attested, AttestedBy};
use crate::chunk_cost::document_cost;
use crate::export::canonical_json;
use crate::ids::Hash32;
use crate::ids::{sha256, DocId};
use crate::limits::{
    MAX_DOCUMENT_CHANGES, MAX_DOCUMENT_INFLATED_BYTES, MAX_DOCUMENT_OPS, MAX_DOCUMENT_REFS,
};
use crate::rebuild::{document_at, frontier, RebuildError};
use automerge::{Automerge, Change, ChangeHash};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Why a bundled document does not match what is attested.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DocumentError {
    #[error("automerge could not load the bytes")]
    Load,
    #[error("the document's columns cannot be read before loading it: {0}")]
    Unreadable(crate::chunk_cost::CostError),
    #[error("the document would expand into {count} {what} when loaded, the limit is {max}")]
    TooCostly {
        what: &'static str,
        count: u64,
        max: u64,
    },
    #[error("{by} attests heads that are not in the document: {missing:?}")]
    MissingHeads {
        by: AttestedBy,
        missing: Vec<Hash32>,
    },
    #[error("the document cannot be rebuilt at attested heads: {0}")]
    Rebuild(RebuildError),
    #[error("the document goes beyond the attested heads (head {0:?} is not attested)")]
    ExtraHeads(Hash32),
    #[error(
        "the document's heads {found:?} are not the frontier of its attested heads {expected:?}"
    )]
    NotAtFrontier {
        expected: Vec<Hash32>,
        found: Vec<Hash32>,
    },
    #[error("{by} attests content hash {attested}, the document at its heads exports to {found}")]
    ContentHash {
        by: AttestedBy,
        attested: Hash32,
        found: Hash32,
    },
}

pub(super) fn guarded<T>(f: impl FnOnce() -> Option<T>) -> Option<T> {
    catch_unwind(AssertUnwindSafe(f)).ok().flatten()
}

/// What a document would expand into when loaded, read from its column metadata (inflating compressed columns
/// under a cap) before Automerge sees it: a few hundred bytes can claim millions of ops (the op bomb), and
/// `Automerge::load` would expand every one of them.
pub(super) fn check_cost(bytes: &[u8]) -> Result<(), DocumentError> {
    let cost =
        document_cost(bytes, MAX_DOCUMENT_INFLATED_BYTES).map_err(DocumentError::Unreadable)?;
    for (what, count, max) in [
        ("ops", cost.ops, MAX_DOCUMENT_OPS),
        ("successor references", cost.succs, MAX_DOCUMENT_REFS),
        ("changes", cost.changes, MAX_DOCUMENT_CHANGES),
        ("dependency references", cost.deps, MAX_DOCUMENT_REFS),
    ] {
        if count > max {
            return Err(DocumentError::TooCostly { what, count, max });
        }
    }
    Ok(())
}

/// Loads a document (behind a panic firewall), checks its heads against the attestations and every attested
/// content hash; returns the canonical JSON of the whole document.
///
/// The document must be exactly at the [`frontier`] of the union of its attested heads (two contested submissions
/// of one document may name a change and one of its ancestors): the Chair's node saved it at that union with
/// [`document_at`], which builds at the same frontier. The document at an attestation's heads, when they are not
/// the whole document's, is rebuilt from the document's own changes by [`document_at`] too — never
/// `Automerge::fork_at`, which panics on some concurrently edited histories (see [`crate::rebuild`]).
pub(super) fn check_document(
    bytes: &[u8],
    attested: &[&Attested],
) -> Result<Vec<u8>, DocumentError> {
    check_cost(bytes)?;
    let doc = guarded(|| Automerge::load(bytes).ok()).ok_or(DocumentError::Load)?;
    // Every change, extracted once (behind the firewall: the bytes are untrusted), answers both which heads the
    // document has and, for an earlier attestation, what the document was there.
    let changes: HashMap<ChangeHash, Change> = guarded(|| {
        Some(
            doc.get_changes(&[])
                .into_iter()
                .map(|c| (c.hash(), c))
                .collect(),
        )
    })
    .ok_or(DocumentError::Load)?;
    let mut all: BTreeSet<Hash32> = BTreeSet::new();
    for a in attested {
        let missing: Vec<Hash32> = a
            .heads
            .iter()
            .filter(|h| !changes.contains_key(&ChangeHash(h.0)))
            .copied()
            .collect();
        if !missing.is_empty() {
            return Err(DocumentError::MissingHeads { by: a.by, missing });
        }
        all.extend(a.heads.iter().copied());
    }
    let mut heads: Vec<Hash32> = doc.get_heads().iter().map(|h| Hash32(h.0)).collect();
    heads.sort();
    if let Some(extra) = heads.iter().find(|h| !all.contains(h)) {
        return Err(DocumentError::ExtraHeads(*extra));
    }
    let all: Vec<Hash32> = all.into_iter().collect();
    let expected = frontier(|h| changes.get(h), &all).map_err(DocumentError::Rebuild)?;
    if expected != heads {
        return Err(DocumentError::NotAtFrontier {
            expected,
            found: heads,
        });
    }
    let whole = guarded(|| canonical_json(&doc).ok()).ok_or(DocumentError::Load)?;
    for a in attested {
        let at = frontier(|h| changes.get(h), &a.heads).map_err(DocumentError::Rebuild)?;
        let json = if at == heads {
            whole.clone()
        } else {
            let earlier = document_at(|h| changes.get(h), &at).map_err(DocumentError::Rebuild)?;
            guarded(|| canonical_json(&earlier).ok()).ok_or(DocumentError::Load)?
        };
        let found = Hash32(sha256(&json));
        if found != a.content_hash {
            return Err(DocumentError::ContentHash {
                by: a.by,
                attested: a.content_hash,
                found,
            });
        }
    }
    Ok(whole)
}

pub(super) fn group(attested: &[Attested]) -> BTreeMap<DocId, Vec<&Attested>> {
    let mut m: BTreeMap<DocId, Vec<&Attested>> = BTreeMap::new();
    for a in attested {
        m.entry(a.doc).or_default().push(a);
    }
    m
}

/// The content hashes the view is computed with: per document, the hash recomputed at the heads of its first
/// submission (documents were checked against every attestation before this is called).
pub(super) fn view_hashes(attested: &[Attested]) -> BTreeMap<DocId, Hash32> {
    let mut m = BTreeMap::new();
    for a in attested {
        if let AttestedBy::Submission(_) = a.by {
            m.entry(a.doc).or_insert(a.content_hash);
        }
    }
    m
}
