//! The engine's error enums, one per operation: receiving, editing, adding local changes, publishing, exporting.

use super::outcome::*;
use automerge::AutomergeError;
use wsis_protocol::envelope::EnvelopeError;
use wsis_protocol::gov::WriteDenied;
use wsis_protocol::ids::Hash32;

/// Why an incoming envelope was not accepted (it was not parked either). Everything except [`Self::Store`] is the
/// sender's fault and is counted in [`DocumentEngine::rejected_counts`](super::DocumentEngine::rejected_counts).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiveError {
    #[error("invalid envelope")]
    Envelope(#[from] EnvelopeError),
    #[error("the author may not write this document")]
    Denied(#[source] WriteDenied),
    #[error("change {index} breaks a history rule: {rule}")]
    InvalidHistory { index: usize, rule: &'static str },
    #[error(
        "the parking buffer is full for this peer ({envelopes} envelopes, {bytes} bytes parked)"
    )]
    ParkingFull { envelopes: usize, bytes: usize },
    /// The whole parking buffer is full: refused, but not the sender's fault (do not penalise it; the envelope is
    /// fetched again later). Counted as [`Reject::ParkingFull`].
    #[error("the parking buffer is full")]
    ParkingBusy,
    /// The document would hold more ops than the offline verifier loads (`MAX_DOCUMENT_OPS`): refused, so no
    /// member can make a document, and with it the year's bundle, unverifiable. Counted as [`Reject::TooLarge`].
    #[error("the document would hold {ops} ops, the limit is {max}")]
    DocumentFull { ops: u64, max: u64 },
    /// Storing it would pass one of its author's quotas (`super::quota`): refused, nothing stored, the sender
    /// penalised. Counted as [`Reject::OverQuota`].
    #[error("over quota")]
    OverQuota(#[source] super::quota::QuotaExceeded),
    /// The envelope brings a new Automerge actor (a new session salt or key) past the author's cap in this
    /// document (`MAX_ACTORS_PER_AUTHOR`) or the document's (`MAX_DOCUMENT_ACTORS`): Automerge's cost grows
    /// with the actors a document has. Counted as [`Reject::TooLarge`].
    #[error("{scope} already has {max} Automerge actors in this document, the limit")]
    TooManyActors { scope: ActorScope, max: usize },
    #[error("storing the envelope failed")]
    Store(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ReceiveError {
    /// The rejection reason, or `None` for a local storage failure (not the sender's fault).
    pub fn reason(&self) -> Option<Reject> {
        match self {
            ReceiveError::Envelope(e) => Some(Reject::of_envelope_error(e)),
            ReceiveError::Denied(_) => Some(Reject::Unauthorised),
            ReceiveError::InvalidHistory { .. } => Some(Reject::InvalidHistory),
            ReceiveError::DocumentFull { .. } | ReceiveError::TooManyActors { .. } => {
                Some(Reject::TooLarge)
            }
            ReceiveError::OverQuota(_) => Some(Reject::OverQuota),
            ReceiveError::ParkingFull { .. } | ReceiveError::ParkingBusy => {
                Some(Reject::ParkingFull)
            }
            ReceiveError::Store(_) => None,
        }
    }

    /// Whether the sender is to blame (penalise it): every rejection except a full buffer it did not fill.
    pub fn penalises(&self) -> bool {
        self.reason().is_some() && !matches!(self, ReceiveError::ParkingBusy)
    }
}

/// Whose actor cap an envelope would pass ([`ReceiveError::TooManyActors`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActorScope {
    /// The author (its session salts and keys in one document).
    Author,
    /// The document (all its authors).
    Document,
}

impl std::fmt::Display for ActorScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ActorScope::Author => "the author",
            ActorScope::Document => "the document",
        })
    }
}

/// Why a local edit failed. A failed edit changes nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EditError {
    #[error("automerge refused the edit")]
    Automerge(#[from] AutomergeError),
    #[error("the change is {len} bytes, the limit is {max}: split the edit")]
    ChangeTooLarge { len: usize, max: usize },
    /// The edit makes more Automerge ops than one change may hold (`MAX_CHANGE_OPS`): peers would refuse it.
    #[error("the edit makes {ops} ops, one change may hold {max}: split the edit")]
    TooManyOps { ops: u64, max: u64 },
    /// With what is stored and unpublished, the document would pass `MAX_DOCUMENT_OPS`: peers would refuse it.
    #[error("the document would hold {ops} ops, the limit is {max}")]
    DocumentFull { ops: u64, max: u64 },
    /// This session's actor would be a new one past the actor caps (see [`ReceiveError::TooManyActors`]).
    #[error("{scope} already has {max} Automerge actors in this document, the limit")]
    TooManyActors { scope: ActorScope, max: usize },
}

/// Why [`DocumentEngine::apply_local`](super::DocumentEngine::apply_local) refused changes. Changes before the refused one are kept.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyLocalError {
    #[error("change {index} was not made with this node's actor for the document")]
    ForeignActor { index: usize },
    #[error("change {index} has seq {found}, the next local seq is {expected}")]
    OutOfSequence {
        index: usize,
        expected: u64,
        found: u64,
    },
    #[error("change {index} depends on changes the document does not have")]
    MissingDependencies { index: usize },
    #[error("change {index} is {len} bytes, the limit is {max}")]
    ChangeTooLarge {
        index: usize,
        len: usize,
        max: usize,
    },
    #[error("automerge refused change {index}")]
    Automerge { index: usize },
}

/// Why publishing failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// A peer would refuse the envelope, for `reason` — exactly the error its
    /// [`receive`](super::DocumentEngine::receive) gives for the same bytes (the same functions decide it). Nothing
    /// of it is stored or announced, and the `discarded` unpublished changes were rolled back: the document is
    /// again what is stored (see [`DocumentEngine::publish`](super::DocumentEngine::publish)).
    #[error(
        "peers would refuse it: {} ({discarded} unpublished changes rolled back)",
        chain(.reason)
    )]
    Refused {
        #[source]
        reason: ReceiveError,
        discarded: usize,
    },
    /// Envelopes sealed before the failing one are stored (see [`DocumentEngine::envelope_ids`](super::DocumentEngine::envelope_ids)); the rest stays
    /// unpublished for a retry.
    #[error("storing the envelope failed")]
    Store(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl PublishError {
    /// The refusal a peer would give, if that is why publishing failed.
    pub fn refusal(&self) -> Option<&ReceiveError> {
        match self {
            PublishError::Refused { reason, .. } => Some(reason),
            PublishError::Store(_) => None,
        }
    }
}

/// An error and its sources on one line ("invalid envelope: change 0 …"), for messages shown to a person.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        out.push_str(": ");
        out.push_str(&s.to_string());
        next = s.source();
    }
    out
}

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    #[error("the document is not known here")]
    UnknownDocument,
    #[error("the document does not have these heads: {0:?}")]
    UnknownHeads(Vec<Hash32>),
    #[error("automerge could not read the document")]
    Automerge(#[from] AutomergeError),
    #[error("automerge refused to rebuild the document at the requested heads")]
    Rebuild,
}

/// The group commit of a batch failed ([`ReceiveError::Store`] of every envelope the batch accepted): one error
/// shared by all of them.
#[derive(Debug, Clone)]
pub(super) struct BatchCommitFailed(std::sync::Arc<dyn std::error::Error + Send + Sync>);

impl BatchCommitFailed {
    pub(super) fn new(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        BatchCommitFailed(std::sync::Arc::new(e))
    }
}

impl std::fmt::Display for BatchCommitFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the batch's group commit failed")
    }
}

impl std::error::Error for BatchCommitFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}
