//! The verified document engine: Automerge documents behind the acceptance pipeline.
//!
//! ```
//! use automerge::transaction::Transactable;
//! use automerge::ROOT;
//! use wsis_node::engine::{DocumentEngine, MemorySink, Peer, Received};
//! use wsis_protocol::crypto::SecretKey;
//! use wsis_protocol::fixture::World;
//! use wsis_protocol::ids::DocId;
//! use wsis_protocol::op::{DocKind, OpKind};
//!
//! // A federation where APC and Acme are members of team C2, which has an output draft.
//! let mut w = World::wsis();
//! let (apc, acme) = (w.add_org("APC", "civil-society", None), w.add_org("Acme", "private-sector", None));
//! for org in [apc, acme] {
//!     w.admit(org);
//!     w.op(org, OpKind::JoinTeam { team: w.team("C2") });
//! }
//! let kind = DocKind::OutputDraft { team: w.team("C2"), year: 2026 };
//! let doc = DocId(w.op(apc, OpKind::CreateDoc { kind }).id().0);
//!
//! let engine = |w: &World, org: usize| {
//!     let secret = SecretKey::from_seed(&w.orgs[org].secret.to_seed());
//!     DocumentEngine::new(w.federation, w.id(org), secret, MemorySink::default())
//! };
//! let (mut a, mut b) = (engine(&w, apc), engine(&w, acme));
//!
//! // A burst of local edits is signed once, when published.
//! for i in 0..10 {
//!     a.edit(&doc, |tx| tx.put(ROOT, "paragraph", i)).unwrap();
//! }
//! let envelopes = a.publish(&w.gov, &doc).unwrap();
//! assert_eq!(envelopes.len(), 1);
//!
//! // The other node accepts it only after the whole pipeline; then both documents export the same bytes.
//! let r = b.receive(&w.gov, &Peer::new(b"node-a"), envelopes[0].bytes()).unwrap();
//! assert!(matches!(r, Received::Accepted(_)));
//! assert_eq!(a.export(&doc).unwrap(), b.export(&doc).unwrap());
//! assert_eq!(b.export(&doc).unwrap(), br#"{"paragraph":9}"#);
//! ```
//!
//! # Model
//!
//! For every document the engine keeps the envelopes it accepted into the store (the source of truth, kept exactly
//! as received) and an [`Automerge`] document materialised from them, which is only a cache: it can be rebuilt at
//! any time from the stored envelopes and the governance state, and it is, whenever the set of valid changes
//! shrinks (a late revocation, an equivocation).
//!
//! A change is **valid** — in the materialised document — iff
//! 1. at least one stored envelope that carries it is authorised by the governance state
//!    ([`Governance::authorize_envelope`]),
//! 2. no other change carried by an authorised envelope has the same (actor, seq) (Automerge equivocation:
//!    both are excluded; catalogue 12),
//! 3. Automerge did not refuse it (see *Panic firewall*), and
//! 4. every change it depends on is valid (invalidity cascades).
//!
//! That is a function of the stored envelopes and the governance state only, never of the arrival order, so every
//! node with the same envelopes and governance ops materialises the same document (same heads, same
//! [`export`](DocumentEngine::export) bytes). The incremental path (new changes applied on top of the cache, or
//! recorded as excluded) computes exactly the same set; only when a change that is already applied has to come out
//! is the document rebuilt.
//!
//! # The acceptance pipeline (remote envelopes)
//!
//! In order:
//! 1. stage 1 of verification, without any Automerge code ([`VerifiedHeader::from_bytes`]): size caps, strict
//!    decoding, each change's framing, checksum and signed hash, its actor derived from the envelope's key, and
//!    the signature;
//! 2. governance heads known (otherwise the envelope is **parked** until the governance ops arrive) and
//!    [`Governance::authorize_header`] (the key is the author's, the author may write this document at the cited
//!    heads);
//! 3. deduplication by change hash, then every dependency outside the envelope already stored (otherwise
//!    **parked**, and the missing change hashes are reported so the caller can fetch them);
//! 4. stage 2: Automerge parses the changes ([`VerifiedHeader::parse_changes`]) — only for an authorised author
//!    whose dependencies are here;
//! 5. history rules that make Automerge's own assertions unreachable: changes inside an envelope come in causal
//!    order, a change with seq `n > 1` depends directly on its actor's change `n - 1` (Automerge always does this),
//!    and every other actor a change references is in its causal history;
//! 6. the envelope is stored (through the [`EnvelopeSink`]) — before anything is applied;
//! 7. the equivocation check, then `Automerge::apply_changes`.
//!
//! Peer bytes are never given to `receive_sync_message`, `load_incremental` or `merge`.
//!
//! Parked envelopes are held in a buffer bounded per peer ([`ParkingLimits`]: 256 envelopes or 16 MiB by default)
//! and in total; past the bound a new envelope is **refused** ([`ReceiveError::ParkingFull`]) — nothing already
//! parked is evicted, so a flooding peer cannot push out what honest peers sent — and the caller should penalise
//! the peer. [`DocumentEngine::forget_peer`] drops what a peer parked.
//!
//! # Panic firewall
//!
//! Automerge 0.7 asserts (panics) on some malformed-but-parseable changes: an op that references an actor or an
//! object that the document does not have. Step 5 rejects the actor cases deterministically. For the rest (e.g. an
//! op whose object id names an op that is not an object), `apply_changes` runs under `catch_unwind`; when it panics
//! or errs, the document is rebuilt from the changes already trusted and the new ones are tried one at a time; the
//! change Automerge refuses is *quarantined* (excluded, with everything that depends on it) and the engine goes
//! on. This needs `panic = "unwind"` (the default). Which
//! change is refused can in theory depend on concurrent history, so only a malicious change can be affected.
//!
//! # Local edits
//!
//! [`DocumentEngine::edit`] and [`DocumentEngine::apply_local`] write with the actor
//! `automerge_actor(org key, doc, session salt)`, with a random salt per engine (process). Changes accumulate and
//! [`DocumentEngine::publish`] seals all unpublished changes of a document into one envelope (more only past the
//! per-envelope limits): a burst of commits costs one signature. Publishing checks that this organisation may write
//! the document at its current governance heads; if not, the unpublished changes are discarded and the document is
//! rebuilt without them. If a rebuild ever drops one of this session's own changes, the document switches to a fresh
//! salt so no (actor, seq) pair is reused.
//!
//! # Canonical export
//!
//! See [`canonical_json`].

use automerge::transaction::Transaction;
#[cfg(test)]
use automerge::ROOT;
use automerge::{ActorId, Automerge, AutomergeError, Change, ChangeHash};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use wsis_protocol::crypto::{PublicKey, SecretKey};
use wsis_protocol::envelope::{
    automerge_actor, ChangeEnvelope, EnvelopeError, SignedEnvelope, VerifiedHeader,
    SESSION_SALT_LEN,
};
use wsis_protocol::gov::{Governance, WriteDenied};
use wsis_protocol::ids::{sha256, DocId, EnvelopeId, FederationId, OpId, OrgId};
use wsis_protocol::limits::{
    MAX_CHANGES_PER_ENVELOPE, MAX_CHANGE_BYTES, MAX_ENVELOPE_BYTES, MAX_HEADS,
};
use wsis_protocol::op::Hash32;

// ---------------------------------------------------------------------------------------------------------------
// Storage seam
// ---------------------------------------------------------------------------------------------------------------

/// Where accepted envelopes go before their changes are applied: the node's store implements this.
///
/// `put_envelope` is called once per accepted envelope (remote or published locally), before the engine applies it
/// or returns it for announcement; it should return once the envelope is durable (or queued in a group commit the
/// caller flushes before acknowledging). An error leaves the engine unchanged for that envelope.
pub trait EnvelopeSink {
    type Error: std::error::Error + Send + Sync + 'static;

    fn put_envelope(&mut self, envelope: &SignedEnvelope) -> Result<(), Self::Error>;
}

impl<S: EnvelopeSink + ?Sized> EnvelopeSink for &mut S {
    type Error = S::Error;

    fn put_envelope(&mut self, envelope: &SignedEnvelope) -> Result<(), Self::Error> {
        (**self).put_envelope(envelope)
    }
}

impl<S: EnvelopeSink + ?Sized> EnvelopeSink for Box<S> {
    type Error = S::Error;

    fn put_envelope(&mut self, envelope: &SignedEnvelope) -> Result<(), Self::Error> {
        (**self).put_envelope(envelope)
    }
}

/// The node's store is the production sink: [`Store::put_envelope_blocking`](crate::store::Store) returns once
/// the envelope is flushed (group commit), so an envelope is durable before it is applied or announced. It blocks
/// the calling thread: run the engine on a dedicated or blocking thread, not on an async task.
impl EnvelopeSink for crate::store::Store {
    type Error = crate::store::StoreError;

    fn put_envelope(&mut self, envelope: &SignedEnvelope) -> Result<(), Self::Error> {
        self.put_envelope_blocking(envelope)
    }
}

/// An in-memory [`EnvelopeSink`] for tests and tools: keeps the signed bytes per document, in acceptance order.
#[derive(Debug, Default, Clone)]
pub struct MemorySink {
    by_doc: BTreeMap<DocId, Vec<(EnvelopeId, Vec<u8>)>>,
    puts: usize,
}

impl MemorySink {
    /// The stored envelopes of `doc`, in the order they were put.
    pub fn envelopes_of(&self, doc: &DocId) -> impl Iterator<Item = &[u8]> {
        self.by_doc
            .get(doc)
            .into_iter()
            .flatten()
            .map(|(_, b)| b.as_slice())
    }

    /// Every stored envelope, grouped by document.
    pub fn all(&self) -> impl Iterator<Item = &[u8]> {
        self.by_doc.values().flatten().map(|(_, b)| b.as_slice())
    }

    /// How many envelopes were put.
    pub fn len(&self) -> usize {
        self.puts
    }

    pub fn is_empty(&self) -> bool {
        self.puts == 0
    }
}

impl EnvelopeSink for MemorySink {
    type Error = std::convert::Infallible;

    fn put_envelope(&mut self, envelope: &SignedEnvelope) -> Result<(), Self::Error> {
        self.by_doc
            .entry(envelope.doc())
            .or_default()
            .push((envelope.id(), envelope.bytes().to_vec()));
        self.puts += 1;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------------------------------

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

/// Bounds of the parking buffer (envelopes waiting for governance ops or for changes they depend on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParkingLimits {
    pub per_peer_envelopes: usize,
    pub per_peer_bytes: usize,
    pub total_envelopes: usize,
    pub total_bytes: usize,
}

impl Default for ParkingLimits {
    fn default() -> Self {
        ParkingLimits {
            per_peer_envelopes: 256,
            per_peer_bytes: 16 * 1024 * 1024,
            total_envelopes: 4096,
            total_bytes: 128 * 1024 * 1024,
        }
    }
}

/// Why an envelope was rejected, for [`DocumentEngine::rejected_counts`] (metrics) and peer scoring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Reject {
    /// Over a size cap (envelope, change, list).
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
}

impl Reject {
    fn of_envelope_error(e: &EnvelopeError) -> Reject {
        match e {
            EnvelopeError::TooLarge { .. } => Reject::TooLarge,
            EnvelopeError::HashMismatch { .. } => Reject::HashMismatch,
            EnvelopeError::ForeignActor { .. } => Reject::ForeignActor,
            EnvelopeError::Key(_) | EnvelopeError::BadSignature => Reject::BadSignature,
            EnvelopeError::WrongFederation { .. } => Reject::WrongFederation,
            _ => Reject::Malformed,
        }
    }
}

/// Why an incoming envelope was not accepted (it was not parked either). Everything except [`Self::Store`] is the
/// sender's fault and is counted in [`DocumentEngine::rejected_counts`].
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
            ReceiveError::ParkingFull { .. } => Some(Reject::ParkingFull),
            ReceiveError::Store(_) => None,
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
    /// ([`DocumentEngine::receive`]) or governance ops do ([`DocumentEngine::revalidate`]).
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

/// What [`DocumentEngine::revalidate`] did.
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

/// What [`DocumentEngine::restore`] did.
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
    pub quarantined_changes: usize,
    pub equivocations: usize,
    pub signatures: u64,
    pub rebuilds: u64,
    pub duplicates: u64,
}

/// Why a local edit failed. A failed edit changes nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EditError {
    #[error("automerge refused the edit")]
    Automerge(#[from] AutomergeError),
    #[error("the change is {len} bytes, the limit is {max}: split the edit")]
    ChangeTooLarge { len: usize, max: usize },
}

/// Why [`DocumentEngine::apply_local`] refused changes. Changes before the refused one are kept.
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
    #[error("sealing the envelope failed")]
    Seal(#[from] EnvelopeError),
    /// This organisation may not write the document at its current governance heads; the unpublished changes
    /// were discarded and the document rebuilt without them.
    #[error(
        "this organisation may not write the document ({discarded} unpublished changes discarded)"
    )]
    Denied {
        #[source]
        reason: WriteDenied,
        discarded: usize,
    },
    /// Envelopes sealed before the failing one are stored (see [`DocumentEngine::envelope_ids`]); the rest stays
    /// unpublished for a retry.
    #[error("storing the envelope failed")]
    Store(#[source] Box<dyn std::error::Error + Send + Sync>),
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

// ---------------------------------------------------------------------------------------------------------------
// Canonical export
// ---------------------------------------------------------------------------------------------------------------

pub use wsis_protocol::export::{canonical_json, content_hash_of};

// ---------------------------------------------------------------------------------------------------------------
// Per-document state
// ---------------------------------------------------------------------------------------------------------------

type Salt = [u8; SESSION_SALT_LEN];

/// A set of actor indexes (of one document), as bits.
#[derive(Debug, Clone, Default)]
struct ActorSet(Vec<u64>);

impl ActorSet {
    fn contains(&self, i: u32) -> bool {
        self.0
            .get(i as usize / 64)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    fn insert(&mut self, i: u32) {
        let w = i as usize / 64;
        if self.0.len() <= w {
            self.0.resize(w + 1, 0);
        }
        self.0[w] |= 1 << (i % 64);
    }

    fn union(&mut self, other: &ActorSet) {
        if self.0.len() < other.0.len() {
            self.0.resize(other.0.len(), 0);
        }
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a |= b;
        }
    }
}

#[derive(Debug)]
struct ChangeEntry {
    actor: u32,
    seq: u64,
    /// Actors in this change's causal history, itself included.
    history: ActorSet,
    /// (stored envelope index, position) of every stored envelope carrying it; the first one holds its bytes.
    carriers: Vec<(u32, u32)>,
}

#[derive(Debug)]
struct StoredEnvelope {
    env: SignedEnvelope,
    authorised: Result<(), WriteDenied>,
}

#[derive(Debug)]
struct Local {
    salt: Salt,
    actor: ActorId,
    /// Unpublished local changes in commit order, with the salt they were made under.
    pending: Vec<(Salt, Change)>,
    /// The last change made under `actor` (published or not), and its seq.
    last: Option<(ChangeHash, u64)>,
}

#[derive(Debug)]
struct DocState {
    id: DocId,
    /// This node's signing key (for deriving its actor).
    key: PublicKey,
    doc: Automerge,
    envelopes: Vec<StoredEnvelope>,
    by_id: HashMap<EnvelopeId, u32>,
    changes: HashMap<ChangeHash, ChangeEntry>,
    actors: Vec<ActorId>,
    actor_index: HashMap<ActorId, u32>,
    /// (actor index, seq) → every stored change with that key.
    by_key: HashMap<(u32, u64), Vec<ChangeHash>>,
    /// Changes in the materialised document that came from stored envelopes (unpublished local ones excluded).
    valid: HashSet<ChangeHash>,
    /// Changes Automerge refused (panic or error) and everything is built without.
    quarantined: BTreeSet<ChangeHash>,
    /// (actor index, seq) with two or more authorised changes: excluded, evidence.
    equivocations: BTreeMap<(u32, u64), BTreeSet<ChangeHash>>,
    local: Local,
    rebuilds: u64,
    /// Changes counted in `valid` but not applied yet (a batch in progress, see `DocumentEngine::receive_batch`).
    deferred: Vec<ChangeHash>,
}

/// What a pre-check of an envelope's changes against the history found.
struct Precheck {
    /// For each change of the envelope: the actors of its dependencies' histories (own actor not yet added).
    histories: Vec<ActorSet>,
}

impl DocState {
    fn new(id: DocId, key: PublicKey, salt: Salt) -> Self {
        let actor = automerge_actor(&key, &id, &salt);
        DocState {
            id,
            key,
            doc: Automerge::new().with_actor(actor.clone()),
            envelopes: Vec::new(),
            by_id: HashMap::new(),
            changes: HashMap::new(),
            actors: Vec::new(),
            actor_index: HashMap::new(),
            by_key: HashMap::new(),
            valid: HashSet::new(),
            quarantined: BTreeSet::new(),
            equivocations: BTreeMap::new(),
            local: Local {
                salt,
                actor,
                pending: Vec::new(),
                last: None,
            },
            rebuilds: 0,
            deferred: Vec::new(),
        }
    }

    /// The parsed change for a stored hash.
    fn change(&self, h: &ChangeHash) -> Option<&Change> {
        let e = self.changes.get(h)?;
        let &(env, pos) = e.carriers.first()?;
        self.envelopes
            .get(env as usize)?
            .env
            .changes()
            .get(pos as usize)
    }

    /// Is `h` applied, or carried by an authorised stored envelope (so another carrier adds nothing)?
    fn covers(&self, h: &ChangeHash) -> bool {
        self.valid.contains(h) || self.is_authorised_change(h)
    }

    fn is_authorised_change(&self, h: &ChangeHash) -> bool {
        self.changes.get(h).is_some_and(|e| {
            e.carriers
                .iter()
                .any(|&(i, _)| self.envelopes[i as usize].authorised.is_ok())
        })
    }

    /// The history rules (pipeline step 4). All external dependencies must be stored.
    fn precheck(&self, env: &SignedEnvelope) -> Result<Precheck, ReceiveError> {
        let changes = env.changes();
        let own: HashMap<ChangeHash, usize> = changes
            .iter()
            .enumerate()
            .map(|(i, c)| (c.hash(), i))
            .collect();
        let own_actor = self.actor_index.get(changes[0].actor_id()).copied();
        let mut histories: Vec<ActorSet> = Vec::with_capacity(changes.len());
        let fail = |index, rule| Err(ReceiveError::InvalidHistory { index, rule });
        for (i, c) in changes.iter().enumerate() {
            let mut hist = ActorSet::default();
            let mut prev_found = c.seq() == 1;
            if c.seq() == 0 {
                return fail(i, "automerge sequence numbers start at 1");
            }
            for d in c.deps() {
                if let Some(&j) = own.get(d) {
                    if j >= i {
                        return fail(i, "changes in an envelope must be in causal order");
                    }
                    hist.union(&histories[j]);
                    prev_found |= changes[j].seq() + 1 == c.seq();
                } else if let Some(e) = self.changes.get(d) {
                    hist.union(&e.history);
                    prev_found |= Some(e.actor) == own_actor && e.seq + 1 == c.seq();
                } else {
                    return fail(i, "a dependency is not stored");
                }
            }
            if !prev_found {
                return fail(
                    i,
                    "a change must depend directly on its actor's previous change",
                );
            }
            for a in c.other_actor_ids() {
                let known = self
                    .actor_index
                    .get(a)
                    .is_some_and(|&ai| hist.contains(ai) || Some(ai) == own_actor);
                if !known && a != c.actor_id() {
                    return fail(i, "a change references an actor outside its history");
                }
            }
            histories.push(hist);
        }
        Ok(Precheck { histories })
    }

    fn actor_idx(&mut self, actor: &ActorId) -> u32 {
        if let Some(&i) = self.actor_index.get(actor) {
            return i;
        }
        let i = self.actors.len() as u32;
        self.actors.push(actor.clone());
        self.actor_index.insert(actor.clone(), i);
        i
    }

    /// Adds a stored envelope to the indexes. Returns the new change hashes (for an authorised envelope) and
    /// whether the incremental path is not enough (a conflict, or a known change that this envelope may make
    /// valid).
    fn index(
        &mut self,
        env: SignedEnvelope,
        authorised: Result<(), WriteDenied>,
        pre: Precheck,
    ) -> (Vec<ChangeHash>, bool) {
        let idx = self.envelopes.len() as u32;
        let ok = authorised.is_ok();
        let actor = self.actor_idx(env.changes()[0].actor_id());
        self.by_id.insert(env.id(), idx);
        self.envelopes.push(StoredEnvelope { env, authorised });
        let mut fresh = Vec::new();
        let mut need_full = false;
        let n = self.envelopes[idx as usize].env.changes().len();
        for (pos, mut hist) in (0..n).zip(pre.histories) {
            let (h, seq) = {
                let c = &self.envelopes[idx as usize].env.changes()[pos];
                (c.hash(), c.seq())
            };
            if self.changes.contains_key(&h) {
                // This envelope can make a known change valid only if no authorised envelope carried it before.
                let had_authorised = self.is_authorised_change(&h);
                if let Some(e) = self.changes.get_mut(&h) {
                    e.carriers.push((idx, pos as u32));
                }
                need_full |= ok && !had_authorised && !self.valid.contains(&h);
                continue;
            }
            if ok {
                let others: Vec<ChangeHash> = self
                    .by_key
                    .get(&(actor, seq))
                    .map(|v| {
                        v.iter()
                            .filter(|o| **o != h && self.is_authorised_change(o))
                            .copied()
                            .collect()
                    })
                    .unwrap_or_default();
                if others.is_empty() {
                    fresh.push(h);
                } else {
                    // An equivocation: this change and the others under its (actor, seq) are all excluded. The
                    // document needs a rebuild only if one of them is applied; otherwise (a repeated or
                    // in-envelope equivocation) recording the evidence is enough, so resending conflicting
                    // changes cannot force rebuilds.
                    need_full |= others.iter().any(|o| self.valid.contains(o));
                    fresh.retain(|f| !others.contains(f));
                    let evidence = self.equivocations.entry((actor, seq)).or_default();
                    evidence.insert(h);
                    evidence.extend(others);
                }
            }
            hist.insert(actor);
            self.by_key.entry((actor, seq)).or_default().push(h);
            self.changes.insert(
                h,
                ChangeEntry {
                    actor,
                    seq,
                    history: hist,
                    carriers: vec![(idx, pos as u32)],
                },
            );
        }
        (fresh, need_full)
    }

    /// Applies new changes of an authorised envelope on top of the cache. `Err` means the cache is no longer
    /// trustworthy (Automerge panicked or erred) and must be rebuilt.
    /// With `defer`, the ready changes are counted as valid at once but applied later, in one call
    /// ([`Self::flush_deferred`]).
    fn apply_fresh(&mut self, fresh: &[ChangeHash], defer: bool) -> Result<usize, ()> {
        // Changes inside an envelope are in causal order (precheck), so one pass decides readiness.
        let mut ready: Vec<ChangeHash> = Vec::new();
        let mut ready_set: HashSet<ChangeHash> = HashSet::new();
        for h in fresh {
            if self.quarantined.contains(h) {
                continue;
            }
            let Some(c) = self.change(h) else { continue };
            if c.deps()
                .iter()
                .all(|d| self.valid.contains(d) || ready_set.contains(d))
            {
                ready_set.insert(*h);
                ready.push(*h);
            }
        }
        if ready.is_empty() {
            return Ok(0);
        }
        if defer {
            let n = ready.len();
            self.valid.extend(ready.iter().copied());
            self.deferred.extend(ready);
            return Ok(n);
        }
        let batch: Vec<Change> = ready
            .iter()
            .filter_map(|h| self.change(h).cloned())
            .collect();
        if !guarded_apply(&mut self.doc, batch) {
            return Err(());
        }
        let n = ready.len();
        self.valid.extend(ready);
        Ok(n)
    }

    /// Applies the deferred changes in one Automerge call (rebuilding if Automerge refuses them). Returns true if
    /// it had to rebuild.
    fn flush_deferred(&mut self) -> bool {
        if self.deferred.is_empty() {
            return false;
        }
        let deferred = std::mem::take(&mut self.deferred);
        let batch: Vec<Change> = deferred
            .iter()
            .filter_map(|h| self.change(h).cloned())
            .collect();
        if guarded_apply(&mut self.doc, batch) {
            return false;
        }
        let suspects: HashSet<ChangeHash> = deferred.into_iter().collect();
        self.rebuild(&suspects);
        true
    }

    /// The valid changes in a topological order, and the equivocations among authorised changes.
    #[allow(clippy::type_complexity)]
    fn compute_valid(&self) -> (Vec<ChangeHash>, BTreeMap<(u32, u64), BTreeSet<ChangeHash>>) {
        let mut seen: HashSet<ChangeHash> = HashSet::new();
        let mut candidates: Vec<ChangeHash> = Vec::new();
        for s in self.envelopes.iter().filter(|s| s.authorised.is_ok()) {
            for c in s.env.changes() {
                if seen.insert(c.hash()) {
                    candidates.push(c.hash());
                }
            }
        }
        let mut keys: HashMap<(u32, u64), Vec<ChangeHash>> = HashMap::new();
        for h in &candidates {
            if let Some(e) = self.changes.get(h) {
                keys.entry((e.actor, e.seq)).or_default().push(*h);
            }
        }
        let equivocations: BTreeMap<(u32, u64), BTreeSet<ChangeHash>> = keys
            .into_iter()
            .filter(|(_, v)| v.len() > 1)
            .map(|(k, v)| (k, v.into_iter().collect()))
            .collect();
        let excluded: HashSet<ChangeHash> = equivocations
            .values()
            .flatten()
            .chain(self.quarantined.iter())
            .copied()
            .collect();
        // Kahn over the candidates that are not excluded; a dependency outside that set blocks a change forever.
        let nodes: Vec<ChangeHash> = candidates
            .into_iter()
            .filter(|h| !excluded.contains(h))
            .collect();
        let pos: HashMap<ChangeHash, usize> =
            nodes.iter().enumerate().map(|(i, h)| (*h, i)).collect();
        let mut indegree = vec![0usize; nodes.len()];
        let mut blocked = vec![false; nodes.len()];
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
        for (i, h) in nodes.iter().enumerate() {
            let Some(c) = self.change(h) else {
                blocked[i] = true;
                continue;
            };
            for d in c.deps() {
                match pos.get(d) {
                    Some(&j) => {
                        indegree[i] += 1;
                        dependents[j].push(i);
                    }
                    None => blocked[i] = true,
                }
            }
        }
        let mut queue: std::collections::VecDeque<usize> = (0..nodes.len())
            .filter(|&i| indegree[i] == 0 && !blocked[i])
            .collect();
        let mut order = Vec::with_capacity(nodes.len());
        while let Some(i) = queue.pop_front() {
            order.push(nodes[i]);
            for &k in &dependents[i] {
                indegree[k] -= 1;
                if indegree[k] == 0 && !blocked[k] {
                    queue.push_back(k);
                }
            }
        }
        (order, equivocations)
    }

    /// Rebuilds the materialised document from the valid changes, then re-applies unpublished local changes.
    /// `suspects` are the changes to try one by one first if Automerge refuses the batch (the newly arrived ones).
    /// Returns true if the valid set changed.
    fn rebuild(&mut self, suspects: &HashSet<ChangeHash>) -> bool {
        self.rebuilds += 1;
        // The rebuild materialises every valid change, deferred ones included.
        self.deferred.clear();
        let (order, equivocations) = self.compute_valid();
        self.equivocations = equivocations;
        let (doc, applied, refused) = self.materialise(&order, suspects);
        self.quarantined.extend(refused);
        let changed = applied != self.valid;
        self.valid = applied;
        self.doc = doc;
        // Unpublished local changes: keep those whose dependencies survived, in order (each depends on the
        // previous one of the same actor, so the first that cannot be applied ends the run).
        let pending = std::mem::take(&mut self.local.pending);
        let mut kept: Vec<(Salt, Change)> = Vec::new();
        let mut kept_set: HashSet<ChangeHash> = HashSet::new();
        for (salt, c) in pending {
            let deps_ok = c
                .deps()
                .iter()
                .all(|d| self.valid.contains(d) || kept_set.contains(d));
            if !deps_ok || !guarded_apply(&mut self.doc, vec![c.clone()]) {
                break;
            }
            kept_set.insert(c.hash());
            kept.push((salt, c));
        }
        self.local.pending = kept;
        // If one of this session's own changes is gone, a later local change would reuse its (actor, seq).
        if let Some((last, _)) = self.local.last {
            if !self.valid.contains(&last) && !kept_set.contains(&last) {
                self.rotate_actor();
            }
        }
        changed
    }

    /// Switches local writing to a fresh salt, so a fresh actor whose (actor, seq) space is unused.
    fn rotate_actor(&mut self) {
        self.local.salt = rand::random();
        self.local.actor = automerge_actor(&self.key, &self.id, &self.local.salt);
        self.local.last = None;
        self.doc.set_actor(self.local.actor.clone());
    }

    /// A fresh document with the changes of `order` (a topological order). If Automerge refuses the batch, the
    /// changes that are neither suspects nor depend on one are applied as a batch, then the rest one at a time;
    /// a change Automerge refuses is returned (to quarantine) and everything depending on it is left out.
    fn materialise(
        &self,
        order: &[ChangeHash],
        suspects: &HashSet<ChangeHash>,
    ) -> (Automerge, HashSet<ChangeHash>, Vec<ChangeHash>) {
        let fresh = || Automerge::new().with_actor(self.local.actor.clone());
        let changes_of = |hs: &[ChangeHash]| -> Vec<Change> {
            hs.iter().filter_map(|h| self.change(h).cloned()).collect()
        };
        let mut doc = fresh();
        if guarded_apply(&mut doc, changes_of(order)) {
            return (doc, order.iter().copied().collect(), Vec::new());
        }
        let mut tainted: HashSet<ChangeHash> = HashSet::new();
        let (mut trusted, mut rest) = (Vec::new(), Vec::new());
        for h in order {
            let depends = self
                .change(h)
                .is_some_and(|c| c.deps().iter().any(|d| tainted.contains(d)));
            if suspects.contains(h) || depends {
                tainted.insert(*h);
                rest.push(*h);
            } else {
                trusted.push(*h);
            }
        }
        doc = fresh();
        if rest.is_empty() || !guarded_apply(&mut doc, changes_of(&trusted)) {
            doc = fresh();
            trusted.clear();
            rest = order.to_vec();
        }
        let mut applied_set: HashSet<ChangeHash> = trusted.iter().copied().collect();
        let mut applied: Vec<ChangeHash> = trusted;
        let mut refused: Vec<ChangeHash> = Vec::new();
        for h in &rest {
            let Some(c) = self.change(h) else { continue };
            if !c.deps().iter().all(|d| applied_set.contains(d)) {
                continue; // depends on a refused change
            }
            if guarded_apply(&mut doc, vec![c.clone()]) {
                applied.push(*h);
                applied_set.insert(*h);
            } else {
                refused.push(*h);
                // The failed attempt may have left the document half-updated: start again from what passed.
                doc = fresh();
                if !guarded_apply(&mut doc, changes_of(&applied)) {
                    // Cannot happen (the same changes applied before); give up on everything to stay safe.
                    return (fresh(), HashSet::new(), order.to_vec());
                }
            }
        }
        (doc, applied_set, refused)
    }

    fn status(&self, s: &StoredEnvelope) -> EnvelopeStatus {
        match &s.authorised {
            Err(d) => EnvelopeStatus::Unauthorised(d.clone()),
            Ok(()) => {
                let excluded = s
                    .env
                    .changes()
                    .iter()
                    .filter(|c| !self.valid.contains(&c.hash()))
                    .count();
                if excluded == 0 {
                    EnvelopeStatus::Applied
                } else {
                    EnvelopeStatus::PartlyExcluded { excluded }
                }
            }
        }
    }
}

/// A fresh document built from exactly the changes `heads` name (themselves and their ancestors), looked up with
/// `change`; its heads are checked to be `heads`.
///
/// Not `Automerge::fork_at`: automerge 0.7.4 panics in it (`ChangeCollector::from_build_meta`: `MissingOps`) on
/// some histories of concurrently edited documents — a 12-node testnet hit it when the Chair assembled the bundle
/// (regression: `node/tests/engine.rs::a_document_at_heads_is_rebuilt_where_automerge_fork_at_panics`). Rebuilding
/// from the changes is what the verifier does too, behind the same panic firewall as every `apply_changes`.
pub fn document_at<'a>(
    change: impl Fn(&ChangeHash) -> Option<&'a Change>,
    heads: &[Hash32],
) -> Result<Automerge, ExportError> {
    let hs: Vec<ChangeHash> = heads.iter().map(|h| ChangeHash(h.0)).collect();
    // Post-order depth-first walk: a change is emitted after its dependencies (the history is a DAG, so a
    // dependency seen earlier has already been emitted or sits above on the stack).
    let mut seen: HashSet<ChangeHash> = HashSet::new();
    let mut stack: Vec<(ChangeHash, bool)> = hs.iter().map(|h| (*h, false)).collect();
    let mut changes: Vec<Change> = Vec::new();
    while let Some((h, expanded)) = stack.pop() {
        let c = change(&h).ok_or_else(|| ExportError::UnknownHeads(vec![to_hash32(&h)]))?;
        if expanded {
            changes.push(c.clone());
            continue;
        }
        if !seen.insert(h) {
            continue;
        }
        stack.push((h, true));
        stack.extend(
            c.deps()
                .iter()
                .filter(|d| !seen.contains(*d))
                .map(|d| (*d, false)),
        );
    }
    let mut doc = Automerge::new();
    if !guarded_apply(&mut doc, changes) {
        return Err(ExportError::Rebuild);
    }
    let mut want = hs;
    want.sort();
    want.dedup();
    let mut got = doc.get_heads();
    got.sort();
    if got != want {
        return Err(ExportError::Rebuild);
    }
    Ok(doc)
}

/// `apply_changes` behind a panic firewall: false if Automerge panicked or returned an error (the document must
/// then be discarded).
fn guarded_apply(doc: &mut Automerge, changes: Vec<Change>) -> bool {
    matches!(
        catch_unwind(AssertUnwindSafe(|| doc.apply_changes(changes))),
        Ok(Ok(()))
    )
}

fn to_hash32(h: &ChangeHash) -> Hash32 {
    Hash32(h.0)
}

// ---------------------------------------------------------------------------------------------------------------
// Parking
// ---------------------------------------------------------------------------------------------------------------

/// An envelope after stage 1 of verification, or after both stages.
#[derive(Debug, Clone)]
enum Incoming {
    Header(VerifiedHeader),
    Parsed(SignedEnvelope),
}

impl Incoming {
    fn header(&self) -> &VerifiedHeader {
        match self {
            Incoming::Header(h) => h,
            Incoming::Parsed(e) => e.verified_header(),
        }
    }

    /// Stage 2 (Automerge's parser), if not done yet.
    fn parse(self) -> Result<SignedEnvelope, EnvelopeError> {
        match self {
            Incoming::Header(h) => h.parse_changes(),
            Incoming::Parsed(e) => Ok(e),
        }
    }
}

#[derive(Debug)]
enum Wait {
    Governance(Vec<OpId>),
    Changes(Vec<ChangeHash>),
}

#[derive(Debug)]
struct ParkedEnvelope {
    env: Incoming,
    from: Peer,
    restore: bool,
    wait: Wait,
    /// Arrival number, for a deterministic retry order.
    seq: u64,
}

#[derive(Debug, Default)]
struct Parking {
    limits: ParkingLimits,
    entries: HashMap<EnvelopeId, ParkedEnvelope>,
    per_peer: HashMap<Peer, (usize, usize)>,
    total_bytes: usize,
    /// missing change → parked envelopes waiting for it.
    waiting: HashMap<ChangeHash, Vec<EnvelopeId>>,
    next_seq: u64,
}

impl Parking {
    fn park(
        &mut self,
        env: Incoming,
        from: &Peer,
        restore: bool,
        wait: Wait,
    ) -> Result<(), ReceiveError> {
        let bytes = env.header().bytes().len();
        let (n, b) = self.per_peer.get(from).copied().unwrap_or((0, 0));
        let l = self.limits;
        if n + 1 > l.per_peer_envelopes
            || b + bytes > l.per_peer_bytes
            || self.entries.len() + 1 > l.total_envelopes
            || self.total_bytes + bytes > l.total_bytes
        {
            return Err(ReceiveError::ParkingFull {
                envelopes: n,
                bytes: b,
            });
        }
        let id = env.header().id();
        if let Wait::Changes(missing) = &wait {
            for m in missing {
                self.waiting.entry(*m).or_default().push(id);
            }
        }
        self.per_peer.insert(from.clone(), (n + 1, b + bytes));
        self.total_bytes += bytes;
        self.entries.insert(
            id,
            ParkedEnvelope {
                env,
                from: from.clone(),
                restore,
                wait,
                seq: self.next_seq,
            },
        );
        self.next_seq += 1;
        Ok(())
    }

    fn remove(&mut self, id: &EnvelopeId) -> Option<ParkedEnvelope> {
        let p = self.entries.remove(id)?;
        let bytes = p.env.header().bytes().len();
        if let Some((n, b)) = self.per_peer.get_mut(&p.from) {
            *n -= 1;
            *b -= bytes;
            if *n == 0 {
                self.per_peer.remove(&p.from);
            }
        }
        self.total_bytes -= bytes;
        if let Wait::Changes(missing) = &p.wait {
            for m in missing {
                if let Some(v) = self.waiting.get_mut(m) {
                    v.retain(|x| x != id);
                    if v.is_empty() {
                        self.waiting.remove(m);
                    }
                }
            }
        }
        Some(p)
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The engine
// ---------------------------------------------------------------------------------------------------------------

/// One step of the pipeline for one envelope.
enum Step {
    Accepted {
        doc: DocId,
        applied: usize,
        rebuilt: bool,
        hashes: Vec<ChangeHash>,
    },
    Duplicate,
    Parked(Parked),
}

/// The verified document engine of one node. See the [module documentation](self).
pub struct DocumentEngine<S: EnvelopeSink = MemorySink> {
    federation: FederationId,
    author: OrgId,
    secret: SecretKey,
    session_salt: Salt,
    docs: HashMap<DocId, DocState>,
    parking: Parking,
    rejected: BTreeMap<Reject, u64>,
    sink: S,
    signatures: u64,
    duplicates: u64,
    /// Inside `receive_batch` or `restore`: apply once per document at the end.
    defer: bool,
}

impl<S: EnvelopeSink> fmt::Debug for DocumentEngine<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DocumentEngine")
            .field("federation", &self.federation)
            .field("author", &self.author)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl<S: EnvelopeSink> DocumentEngine<S> {
    /// An engine for the organisation `author` (signing with `secret`, its inception key) in `federation`, with a
    /// fresh random session salt.
    pub fn new(federation: FederationId, author: OrgId, secret: SecretKey, sink: S) -> Self {
        DocumentEngine {
            federation,
            author,
            secret,
            session_salt: rand::random(),
            docs: HashMap::new(),
            parking: Parking::default(),
            rejected: BTreeMap::new(),
            sink,
            signatures: 0,
            duplicates: 0,
            defer: false,
        }
    }

    /// Replaces the parking bounds (the defaults are [`ParkingLimits::default`]).
    pub fn with_parking_limits(mut self, limits: ParkingLimits) -> Self {
        self.parking.limits = limits;
        self
    }

    pub fn sink(&self) -> &S {
        &self.sink
    }

    pub fn sink_mut(&mut self) -> &mut S {
        &mut self.sink
    }

    pub fn session_salt(&self) -> &[u8; SESSION_SALT_LEN] {
        &self.session_salt
    }

    fn state(&mut self, doc: &DocId) -> &mut DocState {
        let (key, salt) = (self.secret.public(), self.session_salt);
        self.docs
            .entry(*doc)
            .or_insert_with(|| DocState::new(*doc, key, salt))
    }

    fn rebuild(&mut self, doc: &DocId) -> bool {
        self.docs
            .get_mut(doc)
            .is_some_and(|st| st.rebuild(&HashSet::new()))
    }

    fn count(&mut self, reason: Option<Reject>) {
        if let Some(r) = reason {
            *self.rejected.entry(r).or_default() += 1;
        }
    }

    // -----------------------------------------------------------------------------------------------------------
    // Local edits
    // -----------------------------------------------------------------------------------------------------------

    /// The actor this node writes `doc` with in this session.
    pub fn local_actor(&mut self, doc: &DocId) -> ActorId {
        self.state(doc).local.actor.clone()
    }

    /// Runs `f` in an Automerge transaction on the materialised document and keeps the resulting change as an
    /// unpublished local change (an empty transaction makes none). It is visible locally at once and leaves the
    /// node with the next [`publish`](Self::publish).
    pub fn edit<O>(
        &mut self,
        doc: &DocId,
        f: impl FnOnce(&mut Transaction<'_>) -> Result<O, AutomergeError>,
    ) -> Result<O, EditError> {
        let st = self.state(doc);
        // Behind the panic firewall like every other Automerge call that builds changes from the op set (see
        // `fork_at`): a panic here would otherwise leave a committed change that `pending` does not know.
        let transacted = catch_unwind(AssertUnwindSafe(|| {
            st.doc.transact(f).map_err(|failure| failure.error)
        }));
        let success = match transacted {
            Ok(result) => result?,
            Err(_) => {
                self.rebuild(doc);
                return Err(EditError::Automerge(AutomergeError::Fail));
            }
        };
        let Some(hash) = success.hash else {
            return Ok(success.result);
        };
        let last = catch_unwind(AssertUnwindSafe(|| st.doc.get_last_local_change()))
            .ok()
            .flatten();
        let Some(change) = last else {
            // Automerge just committed it; treat a missing change as a failed edit.
            self.rebuild(doc);
            return Err(EditError::Automerge(AutomergeError::InvalidHash(hash)));
        };
        let len = change.raw_bytes().len();
        if len > MAX_CHANGE_BYTES {
            // Undo by rebuilding without it (it is not in `pending`). As it was this actor's last change, the
            // rebuild also moves local writing to a fresh actor, so its (actor, seq) is never reused.
            let st = self.state(doc);
            st.local.last = Some((hash, change.seq()));
            self.rebuild(doc);
            return Err(EditError::ChangeTooLarge {
                len,
                max: MAX_CHANGE_BYTES,
            });
        }
        let st = self.state(doc);
        st.local.last = Some((hash, change.seq()));
        st.local.pending.push((st.local.salt, change));
        Ok(success.result)
    }

    /// Adds changes made elsewhere with [`local_actor`](Self::local_actor) (e.g. on a fork of the document) as
    /// unpublished local changes. Each must continue this node's sequence and depend only on what the
    /// document has.
    pub fn apply_local(
        &mut self,
        doc: &DocId,
        changes: Vec<Change>,
    ) -> Result<(), ApplyLocalError> {
        let mut pending: HashSet<ChangeHash> = self
            .state(doc)
            .local
            .pending
            .iter()
            .map(|(_, c)| c.hash())
            .collect();
        for (index, c) in changes.into_iter().enumerate() {
            let st = self.state(doc);
            if c.actor_id() != &st.local.actor {
                return Err(ApplyLocalError::ForeignActor { index });
            }
            let expected = st.local.last.map_or(1, |(_, s)| s + 1);
            if c.seq() != expected {
                return Err(ApplyLocalError::OutOfSequence {
                    index,
                    expected,
                    found: c.seq(),
                });
            }
            let len = c.raw_bytes().len();
            if len > MAX_CHANGE_BYTES {
                return Err(ApplyLocalError::ChangeTooLarge {
                    index,
                    len,
                    max: MAX_CHANGE_BYTES,
                });
            }
            if !c
                .deps()
                .iter()
                .all(|d| st.valid.contains(d) || pending.contains(d))
            {
                return Err(ApplyLocalError::MissingDependencies { index });
            }
            if !guarded_apply(&mut st.doc, vec![c.clone()]) {
                self.rebuild(doc);
                return Err(ApplyLocalError::Automerge { index });
            }
            st.local.last = Some((c.hash(), c.seq()));
            pending.insert(c.hash());
            st.local.pending.push((st.local.salt, c));
        }
        Ok(())
    }

    /// Unpublished local changes of `doc`.
    pub fn unpublished_len(&self, doc: &DocId) -> usize {
        self.docs.get(doc).map_or(0, |st| st.local.pending.len())
    }

    /// Seals every unpublished local change of `doc` into signed envelopes citing `gov`'s current heads — one
    /// envelope unless the batch exceeds an envelope's limits (4,096 changes, 8 MiB) — stores them through the sink
    /// and returns them for announcement. Nothing to publish gives an empty vector.
    pub fn publish(
        &mut self,
        gov: &Governance,
        doc: &DocId,
    ) -> Result<Vec<SignedEnvelope>, PublishError> {
        let heads = gov.heads();
        if self.unpublished_len(doc) == 0 {
            return Ok(Vec::new());
        }
        // Checked before signing, so a refused batch costs no signature (and again on the sealed envelope below,
        // which also checks the key).
        if let Err(reason) = gov.may_write(doc, &self.author, &heads) {
            return Err(self.discard_unpublished(doc, reason));
        }
        let mut out = Vec::new();
        while let Some((batch, salt, changes)) = self.docs.get(doc).and_then(|st| {
            let pending = &st.local.pending;
            let batch = next_batch(pending, heads.len(), MAX_ENVELOPE_BYTES)?;
            let changes: Vec<Change> = pending[..batch].iter().map(|(_, c)| c.clone()).collect();
            Some((batch, pending[0].0, changes))
        }) {
            let env = ChangeEnvelope::seal(
                self.federation,
                *doc,
                self.author,
                &self.secret,
                salt,
                heads.clone(),
                changes,
            )?;
            self.signatures += 1;
            if let Err(reason) = gov.authorize_envelope(&env) {
                return Err(self.discard_unpublished(doc, reason));
            }
            self.sink
                .put_envelope(&env)
                .map_err(|e| PublishError::Store(Box::new(e)))?;
            let st = self.state(doc);
            st.local.pending.drain(..batch);
            let pre = st.precheck(&env).unwrap_or_else(|_| Precheck {
                histories: own_histories(st, &env),
            });
            let (fresh, _) = st.index(env.clone(), Ok(()), pre);
            // Already in the document: they were applied when made.
            st.valid.extend(fresh);
            out.push(env);
        }
        Ok(out)
    }

    /// Drops the unpublished changes of `doc` (they could never be accepted) and rebuilds it without them.
    fn discard_unpublished(&mut self, doc: &DocId, reason: WriteDenied) -> PublishError {
        let st = self.state(doc);
        let discarded = st.local.pending.len();
        st.local.pending.clear();
        self.rebuild(doc);
        PublishError::Denied { reason, discarded }
    }

    // -----------------------------------------------------------------------------------------------------------
    // Remote envelopes
    // -----------------------------------------------------------------------------------------------------------

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
    pub fn receive_batch<B: AsRef<[u8]>>(
        &mut self,
        gov: &Governance,
        from: &Peer,
        envelopes: impl IntoIterator<Item = B>,
    ) -> Vec<Result<Received, ReceiveError>> {
        self.defer = true;
        let results = envelopes
            .into_iter()
            .map(|b| self.receive(gov, from, b.as_ref()))
            .collect();
        self.flush_deferred();
        results
    }

    /// Ends a batch: applies every deferred change.
    fn flush_deferred(&mut self) {
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

    fn receive_incoming(
        &mut self,
        gov: &Governance,
        from: &Peer,
        env: Incoming,
    ) -> Result<Received, ReceiveError> {
        let found = env.header().federation();
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
            }) => {
                let (released, more_applied, more_rebuilt) = self.release(gov, hashes);
                Ok(Received::Accepted(Accepted {
                    id,
                    doc,
                    applied: applied + more_applied,
                    released,
                    rebuilt: rebuilt || more_rebuilt,
                }))
            }
            Ok(Step::Duplicate) => Ok(Received::Duplicate),
            Ok(Step::Parked(p)) => Ok(Received::Parked(p)),
            Err(e) => Err(e),
        }
    }

    /// Pipeline steps 2 to 7 for an envelope past stage 1. `restore`: the envelope comes from this node's store
    /// (not stored again; kept even if no longer authorised, as before the restart).
    fn admit(
        &mut self,
        gov: &Governance,
        env: Incoming,
        from: &Peer,
        restore: bool,
    ) -> Result<Step, ReceiveError> {
        let head = env.header();
        let doc = head.doc();
        let id = head.id();
        if self
            .docs
            .get(&doc)
            .is_some_and(|st| st.by_id.contains_key(&id))
            || self.parking.entries.contains_key(&id)
        {
            self.duplicates += 1;
            return Ok(Step::Duplicate);
        }
        // Governance heads first: an envelope from an organisation whose inception we have not seen yet cites it.
        let unknown: Vec<OpId> = head
            .gov_heads()
            .iter()
            .filter(|h| !gov.contains(h))
            .copied()
            .collect();
        if !unknown.is_empty() {
            let parked = Parked {
                id,
                missing_ops: unknown.clone(),
                missing_changes: Vec::new(),
            };
            return self.park(env, from, restore, Wait::Governance(unknown), parked);
        }
        let authorised = match gov.authorize_header(head) {
            Ok(()) => Ok(()),
            Err(WriteDenied::UnknownHeads(missing)) => {
                let parked = Parked {
                    id,
                    missing_ops: missing.clone(),
                    missing_changes: Vec::new(),
                };
                return self.park(env, from, restore, Wait::Governance(missing), parked);
            }
            Err(d) if restore => Err(d),
            Err(d) => {
                let e = ReceiveError::Denied(d);
                self.count(e.reason());
                return Err(e);
            }
        };
        let st = self.state(&doc);
        // Nothing new: every change is applied, or already carried by an authorised stored envelope (then this one
        // cannot change the valid set; refusing it keeps re-sealed copies from costing storage and rebuilds).
        if head
            .change_hashes()
            .iter()
            .all(|h| st.covers(&ChangeHash(h.0)))
        {
            self.duplicates += 1;
            return Ok(Step::Duplicate);
        }
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
            return self.park(env, from, restore, Wait::Changes(missing), parked);
        }
        // Stage 2: only now does Automerge's parser see the bytes.
        let env = match env.parse() {
            Ok(env) => env,
            Err(e) => {
                let e = ReceiveError::Envelope(e);
                self.count(e.reason());
                return Err(e);
            }
        };
        let st = self.state(&doc);
        let pre = match st.precheck(&env) {
            Ok(p) => p,
            Err(e) => {
                self.count(e.reason());
                return Err(e);
            }
        };
        if !restore {
            self.sink
                .put_envelope(&env)
                .map_err(|e| ReceiveError::Store(Box::new(e)))?;
        }
        let hashes: Vec<ChangeHash> = env.changes().iter().map(|c| c.hash()).collect();
        let defer = self.defer;
        let st = self.state(&doc);
        let authorised_now = authorised.is_ok();
        let (fresh, need_full) = st.index(env, authorised, pre);
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
        Ok(Step::Accepted {
            doc,
            applied,
            rebuilt,
            hashes,
        })
    }

    fn park(
        &mut self,
        env: Incoming,
        from: &Peer,
        restore: bool,
        wait: Wait,
        parked: Parked,
    ) -> Result<Step, ReceiveError> {
        match self.parking.park(env, from, restore, wait) {
            Ok(()) => Ok(Step::Parked(parked)),
            Err(e) => {
                self.count(e.reason());
                Err(e)
            }
        }
    }

    /// Retries parked envelopes waiting for any of `known` (newly stored changes), transitively. Returns
    /// (accepted, changes applied, a document was rebuilt).
    fn release(&mut self, gov: &Governance, mut known: Vec<ChangeHash>) -> (usize, usize, bool) {
        let (mut released, mut applied, mut rebuilt) = (0, 0, false);
        while let Some(h) = known.pop() {
            let Some(mut waiters) = self.parking.waiting.remove(&h) else {
                continue;
            };
            waiters.sort_by_key(|id| self.parking.entries.get(id).map(|p| p.seq));
            for id in waiters {
                let ready = self
                    .parking
                    .entries
                    .get(&id)
                    .is_some_and(|p| match &p.wait {
                        Wait::Changes(missing) => {
                            let st = self.docs.get(&p.env.header().doc());
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
                    ..
                }) = self.admit(gov, p.env, &p.from, p.restore)
                {
                    released += 1;
                    applied += a;
                    rebuilt |= r;
                    known.extend(hashes);
                }
            }
        }
        (released, applied, rebuilt)
    }

    /// Drops everything `peer` parked (e.g. when it is penalised or disconnects). Returns how many.
    pub fn forget_peer(&mut self, peer: &Peer) -> usize {
        let ids: Vec<EnvelopeId> = self
            .parking
            .entries
            .iter()
            .filter(|(_, p)| &p.from == peer)
            .map(|(id, _)| *id)
            .collect();
        for id in &ids {
            self.parking.remove(id);
        }
        ids.len()
    }

    /// Loads envelopes from this node's store after a restart: each is verified again and goes through the
    /// pipeline in causal order (whatever order the store yields), without being stored again. Envelopes that
    /// are no longer authorised are kept (stored, not applied), as they were before the restart.
    pub fn restore<B: AsRef<[u8]>>(
        &mut self,
        gov: &Governance,
        stored: impl IntoIterator<Item = B>,
    ) -> Restored {
        let mut report = Restored::default();
        let mut envs = Vec::new();
        for b in stored {
            match VerifiedHeader::from_bytes(b.as_ref(), self.federation) {
                Ok(env) => envs.push(Incoming::Header(env)),
                Err(_) => report.rejected += 1,
            }
        }
        self.restore_incoming(gov, envs, report)
    }

    /// [`restore`](Self::restore) for envelopes the store has verified already (`Store::load_envelopes`), so
    /// no signature is checked twice.
    pub fn restore_envelopes(
        &mut self,
        gov: &Governance,
        stored: impl IntoIterator<Item = SignedEnvelope>,
    ) -> Restored {
        let envs = stored.into_iter().map(Incoming::Parsed).collect();
        self.restore_incoming(gov, envs, Restored::default())
    }

    fn restore_incoming(
        &mut self,
        gov: &Governance,
        envs: Vec<Incoming>,
        mut report: Restored,
    ) -> Restored {
        self.defer = true;
        for env in causal_order(envs) {
            if env.header().federation() != self.federation {
                report.rejected += 1;
                continue;
            }
            match self.admit(gov, env, &Peer::local(), true) {
                Ok(Step::Accepted { hashes, .. }) => {
                    let (released, _, _) = self.release(gov, hashes);
                    report.accepted += 1 + released;
                }
                Ok(Step::Parked(_) | Step::Duplicate) => {}
                Err(_) => report.rejected += 1,
            }
        }
        self.flush_deferred();
        report.parked = self.parked_by(&Peer::local()).0;
        report
    }

    // -----------------------------------------------------------------------------------------------------------
    // Governance changes
    // -----------------------------------------------------------------------------------------------------------

    /// Re-runs authorisation on every stored envelope against `gov` (call it after governance ops arrive: a late
    /// revocation, a contest resolved) and rebuilds every document whose valid set changed. Invalidated envelopes
    /// stay stored but out of the materialised document. Also retries envelopes parked for governance ops.
    pub fn revalidate(&mut self, gov: &Governance) -> Revalidation {
        let mut report = Revalidation::default();
        let mut ids: Vec<DocId> = self.docs.keys().copied().collect();
        ids.sort();
        // Envelopes of one author citing the same heads (the usual case between governance changes) share one
        // answer: it depends only on the document, the author, the key and the heads.
        let mut cache: AuthorisationCache = HashMap::new();
        for doc in ids {
            let Some(st) = self.docs.get_mut(&doc) else {
                continue;
            };
            let mut changed = false;
            for s in &mut st.envelopes {
                let key = (
                    doc,
                    s.env.author(),
                    *s.env.key(),
                    s.env.gov_heads().to_vec(),
                );
                let now = cache
                    .entry(key)
                    .or_insert_with(|| gov.authorize_envelope(&s.env))
                    .clone();
                if now != s.authorised {
                    match (&s.authorised, &now) {
                        (Ok(()), Err(_)) => report.invalidated += 1,
                        (Err(_), Ok(())) => report.reinstated += 1,
                        _ => {}
                    }
                    changed |= s.authorised.is_ok() != now.is_ok();
                    s.authorised = now;
                }
            }
            if changed {
                st.rebuild(&HashSet::new());
                report.rebuilt.push(doc);
            }
        }
        // Parked for governance ops: retry those whose ops are all known now.
        let mut ready: Vec<(u64, EnvelopeId)> = self
            .parking
            .entries
            .iter()
            .filter(|(_, p)| match &p.wait {
                Wait::Governance(ops) => ops.iter().all(|o| gov.contains(o)),
                Wait::Changes(_) => false,
            })
            .map(|(id, p)| (p.seq, *id))
            .collect();
        ready.sort();
        for (_, id) in ready {
            let Some(p) = self.parking.remove(&id) else {
                continue;
            };
            match self.admit(gov, p.env, &p.from, p.restore) {
                Ok(Step::Accepted { hashes, .. }) => {
                    report.released += 1;
                    let (released, _, _) = self.release(gov, hashes);
                    report.released += released;
                }
                Ok(_) => {}
                Err(_) => report.rejected += 1,
            }
        }
        report
    }

    // -----------------------------------------------------------------------------------------------------------
    // Queries
    // -----------------------------------------------------------------------------------------------------------

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

    /// Ids of the stored envelopes of `doc` that are authorised now, sorted: what this node serves. Equivocating
    /// envelopes are included (peers must see both sides to exclude both); unauthorised ones are not.
    pub fn envelope_ids(&self, doc: &DocId) -> Vec<EnvelopeId> {
        let mut v: Vec<EnvelopeId> = self
            .docs
            .get(doc)
            .map(|st| {
                st.envelopes
                    .iter()
                    .filter(|s| s.authorised.is_ok())
                    .map(|s| s.env.id())
                    .collect()
            })
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
            if s.authorised.is_err() {
                continue;
            }
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
            .filter(|(i, s)| s.authorised.is_ok() && !covered[*i])
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
        let mut ids: Vec<&DocId> = self
            .docs
            .keys()
            .filter(|d| after.is_none_or(|a| *d > a))
            .collect();
        ids.sort();
        let more = ids.len() > max;
        let digests = ids
            .into_iter()
            .take(max)
            .map(|d| (*d, self.heads_digest(d)))
            .collect();
        (digests, more)
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
    /// twice. Ids unknown here are ignored.
    pub fn envelopes_missing_from(
        &self,
        doc: &DocId,
        theirs: &[EnvelopeId],
    ) -> Vec<&SignedEnvelope> {
        let Some(st) = self.docs.get(doc) else {
            return Vec::new();
        };
        let mut have: HashSet<ChangeHash> = HashSet::new();
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
                if let Some(c) = st.change(&h) {
                    stack.extend(c.deps().iter().copied());
                }
            }
        }
        let mut out = Vec::new();
        // Stored order is causal: an envelope is stored only after everything it depends on.
        for s in st.envelopes.iter().filter(|s| s.authorised.is_ok()) {
            if s.env.changes().iter().any(|c| !have.contains(&c.hash())) {
                have.extend(s.env.changes().iter().map(|c| c.hash()));
                out.push(&s.env);
            }
        }
        out
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

    /// The document as it was at `heads`, rebuilt by [`document_at`] from the stored envelopes' changes and the
    /// unpublished local ones.
    fn fork_at(&self, doc: &DocId, heads: &[Hash32]) -> Result<Automerge, ExportError> {
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
        document_at(|h| st.change(h).or_else(|| pending(h)), heads)
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
        self.parking.entries.len()
    }

    /// Envelopes `peer` has parked, and their bytes.
    pub fn parked_by(&self, peer: &Peer) -> (usize, usize) {
        self.parking.per_peer.get(peer).copied().unwrap_or((0, 0))
    }

    /// Change hashes that parked envelopes wait for, sorted: fetch the envelopes that carry them.
    pub fn missing_changes(&self) -> Vec<Hash32> {
        let mut v: Vec<Hash32> = self.parking.waiting.keys().map(to_hash32).collect();
        v.sort();
        v
    }

    /// Governance ops that parked envelopes wait for, sorted: fetch them.
    pub fn missing_ops(&self) -> Vec<OpId> {
        let mut v: BTreeSet<OpId> = BTreeSet::new();
        for p in self.parking.entries.values() {
            if let Wait::Governance(ops) = &p.wait {
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
                    .map(|&(i, _)| st.envelopes[i as usize].env.author())
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
        let mut s = EngineStats {
            documents: self.docs.len(),
            parked_envelopes: self.parking.entries.len(),
            parked_bytes: self.parking.total_bytes,
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

/// Authorisation answers within one [`DocumentEngine::revalidate`], by (document, author, key, cited heads).
type AuthorisationCache = HashMap<(DocId, OrgId, PublicKey, Vec<OpId>), Result<(), WriteDenied>>;

/// Upper bound on an envelope's size besides its changes: header fields, signature, framing, and 34 bytes per
/// cited governance head.
fn envelope_overhead(heads: usize) -> usize {
    2048 + 34 * heads.min(MAX_HEADS)
}

/// Upper bound on what one change adds to an envelope: its bytes, a CBOR length prefix, and its hash in the header.
fn change_cost(c: &Change) -> usize {
    c.raw_bytes().len() + 9 + 34
}

/// How many of the first pending changes (all with the first one's salt) fit one envelope of `max_bytes`.
fn next_batch(pending: &[(Salt, Change)], heads: usize, max_bytes: usize) -> Option<usize> {
    let (salt, _) = pending.first()?;
    let mut size = envelope_overhead(heads);
    let mut n = 0;
    for (s, c) in pending {
        let add = change_cost(c);
        if s != salt || n == MAX_CHANGES_PER_ENVELOPE || (n > 0 && size + add > max_bytes) {
            break;
        }
        size += add;
        n += 1;
    }
    Some(n.max(1))
}

/// Histories for own published changes when the precheck cannot run (it always can for changes made here; this
/// keeps the index consistent regardless).
fn own_histories(st: &DocState, env: &SignedEnvelope) -> Vec<ActorSet> {
    env.changes()
        .iter()
        .map(|c| {
            let mut h = ActorSet::default();
            for d in c.deps() {
                if let Some(e) = st.changes.get(d) {
                    h.union(&e.history);
                }
            }
            h
        })
        .collect()
}

/// Orders envelopes so that each comes after the envelopes carrying its dependencies (input order otherwise).
fn causal_order(envs: Vec<Incoming>) -> Vec<Incoming> {
    let mut carrier: HashMap<Hash32, usize> = HashMap::new();
    for (i, e) in envs.iter().enumerate() {
        for h in e.header().change_hashes() {
            carrier.entry(*h).or_insert(i);
        }
    }
    let mut indegree = vec![0usize; envs.len()];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); envs.len()];
    for (i, e) in envs.iter().enumerate() {
        let mut on: BTreeSet<usize> = BTreeSet::new();
        for d in e.header().external_deps() {
            if let Some(&j) = carrier.get(&d) {
                if j != i {
                    on.insert(j);
                }
            }
        }
        indegree[i] = on.len();
        for j in on {
            dependents[j].push(i);
        }
    }
    let mut ready: BTreeSet<usize> = (0..envs.len()).filter(|&i| indegree[i] == 0).collect();
    let mut order = Vec::with_capacity(envs.len());
    while let Some(i) = ready.pop_first() {
        order.push(i);
        for &k in &dependents[i] {
            indegree[k] -= 1;
            if indegree[k] == 0 {
                ready.insert(k);
            }
        }
    }
    // A cycle cannot happen with hashes; anything left over is appended in input order.
    let placed: HashSet<usize> = order.iter().copied().collect();
    order.extend((0..envs.len()).filter(|i| !placed.contains(i)));
    let mut slots: Vec<Option<Incoming>> = envs.into_iter().map(Some).collect();
    order
        .into_iter()
        .filter_map(|i| slots.get_mut(i).and_then(Option::take))
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Test inputs are built here; a failure is a test failure.
mod tests {
    use super::*;
    use automerge::transaction::Transactable;
    use automerge::{AutoCommit, ObjType};

    const FED: FederationId = FederationId([9; 32]);
    const DOC: DocId = DocId([4; 32]);

    fn key() -> SecretKey {
        SecretKey::from_seed(&[1; 32])
    }

    /// `n` successive changes under `salt`'s actor.
    fn changes(salt: Salt, n: usize) -> Vec<Change> {
        let mut d = AutoCommit::new().with_actor(automerge_actor(&key().public(), &DOC, &salt));
        for i in 0..n {
            d.put(ROOT, "k", i as i64).unwrap();
            d.commit();
        }
        d.get_changes(&[])
    }

    fn sealed(salt: Salt, changes: Vec<Change>) -> SignedEnvelope {
        ChangeEnvelope::seal(
            FED,
            DOC,
            OrgId([1; 32]),
            &key(),
            salt,
            vec![OpId([1; 32])],
            changes,
        )
        .unwrap()
    }

    #[test]
    fn batches_split_at_the_change_limit_and_at_a_salt_change() {
        let a = [1; 16];
        let b = [2; 16];
        let cs = changes(a, 3);
        let mut pending: Vec<(Salt, Change)> = Vec::new();
        for i in 0..MAX_CHANGES_PER_ENVELOPE + 5 {
            pending.push((a, cs[i % 3].clone()));
        }
        let max = MAX_ENVELOPE_BYTES;
        assert_eq!(next_batch(&pending, 1, max), Some(MAX_CHANGES_PER_ENVELOPE));
        let mixed = vec![(a, cs[0].clone()), (a, cs[1].clone()), (b, cs[2].clone())];
        assert_eq!(next_batch(&mixed, 1, max), Some(2));
        assert_eq!(next_batch(&mixed[2..], 1, max), Some(1));
        assert_eq!(next_batch(&[], 1, max), None);
    }

    #[test]
    fn batches_split_before_the_byte_limit_and_the_estimate_is_an_upper_bound() {
        let salt = [3; 16];
        let pending: Vec<(Salt, Change)> =
            changes(salt, 40).into_iter().map(|c| (salt, c)).collect();
        let heads = 3;
        let cost: Vec<usize> = pending.iter().map(|(_, c)| change_cost(c)).collect();
        // A budget with room for exactly the first 10 changes.
        let budget = envelope_overhead(heads) + cost[..10].iter().sum::<usize>();
        assert_eq!(next_batch(&pending, heads, budget), Some(10));
        assert_eq!(next_batch(&pending, heads, budget - 1), Some(9));
        // A single change always goes, even over the budget (seal then reports the real size).
        assert_eq!(next_batch(&pending, heads, 1), Some(1));
        // The estimate is never below the real size of the sealed envelope.
        for n in [1, 10, 40] {
            let env = ChangeEnvelope::seal(
                FED,
                DOC,
                OrgId([1; 32]),
                &key(),
                salt,
                (0..heads as u8).map(|i| OpId([i; 32])).collect(),
                pending[..n].iter().map(|(_, c)| c.clone()).collect(),
            )
            .unwrap();
            let estimate = envelope_overhead(heads) + cost[..n].iter().sum::<usize>();
            assert!(
                env.bytes().len() <= estimate,
                "{n}: {} > {estimate}",
                env.bytes().len()
            );
        }
    }

    #[test]
    fn restored_envelopes_are_put_in_causal_order() {
        let salt = [5; 16];
        let cs = changes(salt, 4);
        let envs: Vec<SignedEnvelope> = cs.iter().map(|c| sealed(salt, vec![c.clone()])).collect();
        let ids: Vec<EnvelopeId> = envs.iter().map(SignedEnvelope::id).collect();
        let mut shuffled: Vec<Incoming> = envs
            .iter()
            .rev()
            .map(|e| Incoming::Header(e.verified_header().clone()))
            .collect();
        shuffled.swap(0, 2);
        let ordered: Vec<EnvelopeId> = causal_order(shuffled)
            .iter()
            .map(|e| e.header().id())
            .collect();
        assert_eq!(ordered, ids);
    }

    #[test]
    fn actor_sets_grow_and_union() {
        let mut a = ActorSet::default();
        assert!(!a.contains(0));
        a.insert(3);
        a.insert(130);
        let mut b = ActorSet::default();
        b.insert(64);
        b.union(&a);
        for i in [3, 64, 130] {
            assert!(b.contains(i));
        }
        assert!(!b.contains(4) && !b.contains(1000));
    }

    #[test]
    fn export_handles_deep_nesting_without_recursion() {
        const DEPTH: usize = 1_500;
        let mut d = AutoCommit::new();
        let mut obj = ROOT;
        for i in 0..DEPTH {
            obj = if i % 2 == 0 {
                d.put_object(&obj, "n", ObjType::Map).unwrap()
            } else {
                let l = d.put_object(&obj, "l", ObjType::List).unwrap();
                d.insert_object(&l, 0, ObjType::Map).unwrap()
            };
        }
        d.put(&obj, "leaf", true).unwrap();
        // A recursive writer would need far more than this stack for 1,500 levels.
        let text = std::thread::Builder::new()
            .stack_size(128 * 1024)
            .spawn(move || String::from_utf8(canonical_json(&d).unwrap()).unwrap())
            .unwrap()
            .join()
            .unwrap();
        assert!(
            text.starts_with("{\"n\":{\"l\":[{\"n\":"),
            "{}",
            &text[..40]
        );
        assert!(text.contains("{\"leaf\":true}"));
        assert_eq!(text.matches('{').count(), text.matches('}').count());
        assert_eq!(text.matches('[').count(), DEPTH / 2);
    }

    #[test]
    fn parking_accounts_per_peer_and_releases_its_quota_on_removal() {
        let salt = [7; 16];
        let cs = changes(salt, 3);
        let mut p = Parking {
            limits: ParkingLimits {
                per_peer_envelopes: 2,
                ..ParkingLimits::default()
            },
            ..Parking::default()
        };
        let (x, y) = (Peer::new(b"x"), Peer::new(b"y"));
        let env = |i: usize| Incoming::Parsed(sealed(salt, vec![cs[i].clone()]));
        let wait = |h: ChangeHash| Wait::Changes(vec![h]);
        p.park(env(1), &x, false, wait(cs[0].hash())).unwrap();
        p.park(env(2), &x, false, wait(cs[1].hash())).unwrap();
        assert!(matches!(
            p.park(env(0), &x, false, wait(cs[0].hash())),
            Err(ReceiveError::ParkingFull { envelopes: 2, .. })
        ));
        p.park(env(0), &y, false, Wait::Governance(vec![OpId([2; 32])]))
            .unwrap();
        let id = env(1).header().id();
        assert!(p.remove(&id).is_some());
        assert!(
            !p.waiting.contains_key(&cs[0].hash()),
            "index entries go with it"
        );
        assert_eq!(p.per_peer.get(&x).map(|q| q.0), Some(1));
        p.park(env(1), &x, false, wait(cs[0].hash())).unwrap();
        assert_eq!(p.entries.len(), 3);
        assert_eq!(
            p.total_bytes,
            p.entries
                .values()
                .map(|e| e.env.header().bytes().len())
                .sum::<usize>()
        );
    }
}
