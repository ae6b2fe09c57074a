//! A document at given heads, rebuilt from exactly the changes those heads name. The one way the node (exports
//! and the Chair's bundle, `node/src/engine/query.rs`) and the offline verifier (`bundle/documents.rs`) get a
//! document at attested heads, so the Chair's tool and the verifier cannot disagree on a document state.
//!
//! Requested heads are first reduced to their [`frontier`]: several attestations of one document (two contested
//! submissions, a submission and an approved record) may name a change and one of its ancestors, and the document
//! they jointly describe is the one at the changes no other requested change descends from. The Chair's node and
//! the verifier reduce through this same function.
//!
//! Not `Automerge::fork_at`: automerge 0.7.4 panics in it (`ChangeCollector::from_build_meta`: `MissingOps`) on
//! some histories of concurrently edited documents — a 12-node testnet hit it when the Chair assembled the bundle,
//! and the verifier, which called it too, would have refused a good bundle (regressions:
//! `protocol/tests/bundle_rebuild.rs`).

use crate::ids::Hash32;
use automerge::{Automerge, Change, ChangeHash};
use std::collections::HashSet;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Why a document could not be rebuilt at the requested heads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RebuildError {
    /// A requested head, or a change one depends on, is not known to the caller.
    #[error("the document does not have these changes: {0:?}")]
    UnknownChanges(Vec<Hash32>),
    /// Automerge refused (or panicked on) the changes, or the result does not have the expected heads.
    #[error("automerge refused to rebuild the document at the requested heads")]
    Refused,
}

/// The history of some heads: every change they name and its ancestors, each after its dependencies, and which
/// requested heads are ancestors of other requested heads.
struct History<'a> {
    changes: Vec<&'a Change>,
    /// The requested heads that are not an ancestor of another requested head: sorted, without duplicates.
    frontier: Vec<Hash32>,
}

/// Post-order depth-first walk: a change is emitted after its dependencies. `seen` marks a change when it is first
/// expanded, so each is emitted once; a dependency already seen has been emitted (only a cycle, which hashes make
/// impossible, could leave it above on the stack — then Automerge refuses). A requested head that some walked
/// change depends on is an ancestor of another requested head, so it is not on the frontier.
fn walk<'a>(
    change: impl Fn(&ChangeHash) -> Option<&'a Change>,
    heads: &[Hash32],
) -> Result<History<'a>, RebuildError> {
    let mut seen: HashSet<ChangeHash> = HashSet::new();
    let mut deps: HashSet<ChangeHash> = HashSet::new();
    let mut missing: Vec<Hash32> = Vec::new();
    let mut stack: Vec<(ChangeHash, bool)> =
        heads.iter().map(|h| (ChangeHash(h.0), false)).collect();
    let mut changes: Vec<&'a Change> = Vec::new();
    while let Some((h, expanded)) = stack.pop() {
        let Some(c) = change(&h) else {
            if seen.insert(h) {
                missing.push(Hash32(h.0));
            }
            continue;
        };
        if expanded {
            changes.push(c);
            continue;
        }
        if !seen.insert(h) {
            continue;
        }
        stack.push((h, true));
        for d in c.deps() {
            deps.insert(*d);
            if !seen.contains(d) {
                stack.push((*d, false));
            }
        }
    }
    if !missing.is_empty() {
        return Err(RebuildError::UnknownChanges(missing));
    }
    let mut frontier: Vec<Hash32> = heads
        .iter()
        .filter(|h| !deps.contains(&ChangeHash(h.0)))
        .copied()
        .collect();
    frontier.sort();
    frontier.dedup();
    Ok(History { changes, frontier })
}

/// The frontier of `heads`: the requested heads that no other requested head descends from, sorted and without
/// duplicates (the heads of [`document_at`]'s result). Ancestry is read from the changes `change` returns; a
/// requested head or an ancestor it does not know is an error.
pub fn frontier<'a>(
    change: impl Fn(&ChangeHash) -> Option<&'a Change>,
    heads: &[Hash32],
) -> Result<Vec<Hash32>, RebuildError> {
    Ok(walk(change, heads)?.frontier)
}

/// A fresh document built from exactly the changes `heads` name (themselves and their ancestors), looked up with
/// `change`. `heads` may hold a change and one of its ancestors (the union of several attestations of one
/// document, `bundle::Plan::documents`): the document is built at their [`frontier`], and its heads are checked to
/// be exactly that frontier.
///
/// Pure and panic-free: Automerge runs behind a panic firewall, and a cycle or a missing change in what `change`
/// returns is an error.
pub fn document_at<'a>(
    change: impl Fn(&ChangeHash) -> Option<&'a Change>,
    heads: &[Hash32],
) -> Result<Automerge, RebuildError> {
    let history = walk(change, heads)?;
    let changes: Vec<Change> = history.changes.into_iter().cloned().collect();
    let mut doc = Automerge::new();
    let applied = catch_unwind(AssertUnwindSafe(|| doc.apply_changes(changes)));
    if !matches!(applied, Ok(Ok(()))) {
        return Err(RebuildError::Refused);
    }
    let mut got: Vec<Hash32> = doc.get_heads().iter().map(|h| Hash32(h.0)).collect();
    got.sort();
    if got != history.frontier {
        return Err(RebuildError::Refused);
    }
    Ok(doc)
}
