//! What the engine reports: who sent an envelope ([`Peer`]), why it was rejected ([`Reject`]), what happened to
//! it ([`Received`], [`Accepted`], [`Parked`]), the state of a stored envelope, and the reports and counters of the
//! engine's other operations.

use std::fmt;
use wsis_protocol::envelope::EnvelopeError;
use wsis_protocol::gov::WriteDenied;
use wsis_protocol::ids::Hash32;
use wsis_protocol::ids::{DocId, EnvelopeId, OpId, OrgId};

/// Who sent an envelope: the opaque bytes of the sending peer's id (a libp2p `PeerId::to_bytes()`). The engine
/// only uses it to account parked envelopes per peer.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Peer(Box<[u8]>);

impl Peer {
    pub fn new(id: &[u8]) -> Self {
        Peer(id.into())
    }

    /// This node itself (envelopes restored from the store).
    pub fn local() -> Self {
        Peer(Box::new([]))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            write!(f, "Peer(local)")
        } else {
            write!(f, "Peer({})", hex::encode(&self.0))
        }
    }
}

/// Why an envelope was rejected, for [`DocumentEngine::rejected_counts`](super::DocumentEngine::rejected_counts) (metrics) and peer scoring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Reject {
    /// Over a size or cost cap (envelope, change, list; ops a change or envelope expands into: the op bomb).
    TooLarge,
    /// Not a strict encoding, wrong structure, or a change that is not a canonical uncompressed Automerge change.
    Malformed,
    /// A change's bytes do not hash to the hash signed at its position (catalogue 14).
    HashMismatch,
    /// A change's actor is not derived from the envelope's key, document and salt (catalogue 13).
    ForeignActor,
    /// A bad key or a signature that does not verify.
    BadSignature,
    /// An envelope of another federation.
    WrongFederation,
    /// The author may not write the document at the cited heads, or signed with a key that is not its own
    /// (catalogue 13, 17, 29).
    Unauthorised,
    /// The changes break a history rule (causal order inside the envelope, the actor chain, actors referenced
    /// from outside the change's history).
    InvalidHistory,
    /// The peer's parking buffer (or the whole buffer) is full (catalogue 8).
    ParkingFull,
    /// Storing it would pass one of its author's quotas (issue 14).
    OverQuota,
}

impl Reject {
    pub(super) fn of_envelope_error(e: &EnvelopeError) -> Reject {
        match e {
            EnvelopeError::TooLarge { .. }
            | EnvelopeError::ChangeTooCostly { .. }
            | EnvelopeError::EnvelopeTooCostly { .. } => Reject::TooLarge,
            EnvelopeError::HashMismatch { .. } => Reject::HashMismatch,
            EnvelopeError::ForeignActor { .. } => Reject::ForeignActor,
            EnvelopeError::Key(_) | EnvelopeError::BadSignature => Reject::BadSignature,
            EnvelopeError::WrongFederation { .. } => Reject::WrongFederation,
            _ => Reject::Malformed,
        }
    }
}

/// What happened to an envelope that was not rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Received {
    /// Stored, and its valid changes applied.
    Accepted(Accepted),
    /// Already stored or parked, or every change in it is already applied (the same change may travel in several
    /// envelopes); nothing stored.
    Duplicate,
    /// Waiting in the peer's parking buffer for what is listed; it is retried automatically when changes arrive
    /// ([`DocumentEngine::receive`](super::DocumentEngine::receive)) or governance ops do ([`DocumentEngine::revalidate`](super::DocumentEngine::revalidate)).
    Parked(Parked),
}

/// Details of an accepted envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub id: EnvelopeId,
    pub doc: DocId,
    /// Changes that entered the materialised documents, this envelope's and those of parked envelopes it released.
    pub applied: usize,
    /// Parked envelopes that this one let in (accepted in the same call).
    pub released: usize,
    /// A document was rebuilt (an equivocation, or a change Automerge refused).
    pub rebuilt: bool,
    /// The author whose first equivocation in the document this envelope (or one it released) revealed: from
    /// now on none of that author's changes there is applied, and nothing it sends can force a rebuild. The
    /// envelope is stored as evidence and served; the caller penalises the sender once (each node sees a given
    /// author's first equivocation in a document once).
    pub excluded: Option<OrgId>,
}

/// Why an envelope is parked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parked {
    pub id: EnvelopeId,
    /// Governance ops it cites that this replica does not have: fetch them (`GetOps`).
    pub missing_ops: Vec<OpId>,
    /// Changes it depends on that are not stored here: fetch the envelopes carrying them.
    pub missing_changes: Vec<Hash32>,
}

/// The state of a stored envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EnvelopeStatus {
    /// Authorised, and all its changes are in the materialised document.
    Applied,
    /// Authorised, but `excluded` of its changes are not applied (equivocation, a refused change, or a dependency
    /// on an excluded change).
    PartlyExcluded { excluded: usize },
    /// Not authorised in the current governance state (e.g. a late revocation): stored, not applied.
    Unauthorised(WriteDenied),
}

/// Evidence of an Automerge equivocation: one actor (so one key) made different changes with the same seq.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Equivocation {
    pub doc: DocId,
    pub author: OrgId,
    pub actor: Vec<u8>,
    pub seq: u64,
    /// The conflicting change hashes, sorted.
    pub changes: Vec<Hash32>,
    /// The stored envelopes that carry them, sorted.
    pub envelopes: Vec<EnvelopeId>,
}

/// What [`DocumentEngine::revalidate`](super::DocumentEngine::revalidate) did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Revalidation {
    /// Stored envelopes that were authorised and no longer are.
    pub invalidated: usize,
    /// Stored envelopes that were not authorised and now are.
    pub reinstated: usize,
    /// Documents rebuilt because their valid set changed.
    pub rebuilt: Vec<DocId>,
    /// Parked envelopes accepted now that their governance ops are known.
    pub released: usize,
    /// Parked envelopes rejected now that their governance ops are known (not authorised).
    pub rejected: usize,
}

/// What [`DocumentEngine::restore`](super::DocumentEngine::restore) did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Restored {
    pub accepted: usize,
    pub parked: usize,
    /// Stored bytes that no longer verify (corruption) or break a rule.
    pub rejected: usize,
}

/// Counters for metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineStats {
    pub documents: usize,
    pub stored_envelopes: usize,
    pub valid_changes: usize,
    pub unpublished_changes: usize,
    pub parked_envelopes: usize,
    pub parked_bytes: usize,
    /// Envelopes refused by the parking buffer (a peer past its quota, or the buffer full).
    pub parking_refused: u64,
    /// Parked envelopes dropped with the peer that sent them ([`DocumentEngine::forget_peer`](super::DocumentEngine::forget_peer)),
    /// or because they waited longer than [`ParkingLimits::ttl`](super::ParkingLimits::ttl).
    pub parking_dropped: u64,
    pub quarantined_changes: usize,
    pub equivocations: usize,
    pub signatures: u64,
    pub rebuilds: u64,
    pub duplicates: u64,
}
