//! The verified document engine: Automerge documents behind the acceptance pipeline.
//!
//! ```
//! use automerge::transaction::Transactable;
//! use automerge::ROOT;
//! use wsis_node::engine::{DocumentEngine, MemorySink, Peer, Received};
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
//!     DocumentEngine::new(w.federation, w.id(org), w.secret_of(org), MemorySink::default())
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
//! as received) and an [`Automerge`](automerge::Automerge) document materialised from them, which is only a cache: it can be rebuilt at
//! any time from the stored envelopes and the governance state, and it is, whenever the set of valid changes
//! shrinks (a late revocation, an equivocation).
//!
//! A change is **valid** — in the materialised document — iff
//! 1. at least one stored envelope that carries it is authorised by the governance state
//!    ([`Governance::authorize_envelope`](wsis_protocol::gov::Governance::authorize_envelope)), or is kept in
//!    the document although the state refuses it (see *Finalised content*),
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
//! 1. stage 1 of verification, without any Automerge code ([`VerifiedHeader::from_bytes`](wsis_protocol::envelope::VerifiedHeader::from_bytes)): size caps, strict
//!    decoding, each change's framing, checksum and signed hash, its actor derived from the envelope's key, and
//!    the signature;
//! 2. governance heads known (otherwise the envelope is **parked** until the governance ops arrive) and
//!    [`Governance::authorize_header`](wsis_protocol::gov::Governance::authorize_header) (the key is the author's, the author may write this document at the cited
//!    heads) — refused outright if not, unless the history the envelope cites authorises it (see *Stored but
//!    unauthorised*);
//! 3. deduplication by change hash, then the author's storage quotas (`quota`: bytes and envelopes per document,
//!    bytes in total; over one, **refused** and the sender penalised, so nothing over a quota is parked, parsed
//!    or stored), then every dependency outside the envelope already stored (otherwise **parked**, and the
//!    missing change hashes are reported so the caller can fetch them);
//! 4. stage 2: Automerge parses the changes ([`VerifiedHeader::parse_changes`](wsis_protocol::envelope::VerifiedHeader::parse_changes)) — only for an authorised author
//!    whose dependencies are here;
//! 5. history rules that make Automerge's own assertions unreachable: changes inside an envelope come in causal
//!    order, a change with seq `n > 1` depends directly on its actor's change `n - 1` (Automerge always does this),
//!    and every other actor a change references is in its causal history;
//! 6. the envelope is stored (through the [`EnvelopeSink`]) — before anything is applied;
//! 7. the equivocation check, then `Automerge::apply_changes`.
//!
//! Steps 2 to 5 are one function, `judge` (in `receive`), which decides without changing anything; `receive` then
//! parks or stores, and [`DocumentEngine::publish`] runs the same function on this node's own sealed envelopes.
//!
//! # Stored but unauthorised
//!
//! What is stored must not depend on arrival order, or neither do the documents: an honest peer may build on a
//! change before it learns that the change's author was revoked, and its envelope (which may also carry its own,
//! valid edits) can only be stored where the change it depends on is. So an envelope that the current governance
//! state refuses at step 2 is judged again against a replica holding exactly the ops of the history it cites
//! (`history`):
//! - **authorised by its cited history** (refused here only because of ops outside that history: a revocation it
//!   does not cite, or one that invalidates an op inside it, such as a JoinTeam concurrent with the author's
//!   revocation): it goes on through the pipeline and is **stored as unauthorised**, not applied — exactly what a
//!   node that received it before those ops holds once [`DocumentEngine::revalidate`] has run. It is not an error:
//!   nobody is penalised and the node's memory of refused envelopes never holds it;
//! - **refused by its cited history** too (a non-member's write, a team the author is not in there, a document it
//!   did not create, a key that is not its inception key): refused outright, at every node, in every order; the
//!   sender is at fault and penalised.
//!
//! That answer is a function of the envelope and its cited history alone, so it is the same everywhere. The reason
//! codes are not: `may_write` reports the first failing rule, and whether membership fails first depends on which
//! revocations have arrived (the simulation in `node/tests/doc_convergence.rs` found both). Rebuilding the history
//! costs one insertion per op of it; it is done only for envelopes the current state refuses, once per (document,
//! author, key, cited heads).
//!
//! Every stored envelope was authorised by its cited history, so every stored envelope is **served**
//! ([`DocumentEngine::envelope_ids`], `envelope_heads`, `envelopes_missing_from`, and the heads digest anti-entropy
//! compares): a node that never saw one can still resolve the envelopes built on its changes, and judges it itself.
//!
//! **Finalised content.** A stored envelope the state refuses stays in the document (its `authorised` is `Ok`) when every change it
//! carries is in the causal history of the heads a valid, finalised attestation of the document names
//! ([`Governance::finalised_attested_heads`](wsis_protocol::gov::Governance::finalised_attested_heads)): a
//! removal cannot erase what a passed checkpoint attested. One refused only because its author left the team
//! (`WriteDenied::LeftTeam`) stays when another author's envelope that the state authorises built on all of its
//! changes. Both are decided in `history` after every stored envelope and on every [`DocumentEngine::revalidate`],
//! from the stored envelopes and the state only, so in every order alike (docs/protocol.md §9.6).
//!
//! Stored-but-unauthorised envelopes are bounded like every other: they count against the per-document op cap
//! ([`MAX_DOCUMENT_OPS`](wsis_protocol::limits::MAX_DOCUMENT_OPS)) and wait in parking under its per-peer bounds. A
//! revoked member that keeps citing heads from before its revocation can fill a document up to that cap with
//! stored-but-unauthorised envelopes; per-author quotas (issue 14) are what will close it.
//! Not covered: a fact outside the cited history that makes an op inside it *more* valid (a checkpoint protecting
//! it from a revocation in the history) can still make an envelope stored at one node and refused at another
//! (docs/decisions.md, "Refusals that depend on arrival order").
//!
//! Peer bytes are never given to `receive_sync_message`, `load_incremental` or `merge`.
//!
//! Parked envelopes are held in a buffer bounded per organisation ([`ParkingLimits`]: 256 envelopes or 16 MiB by
//! default, charged to the organisation the sending peer is bound to, so its peer ids share it) and in total; past
//! the organisation's bound a new envelope is **refused** ([`ReceiveError::ParkingFull`]) and the caller should
//! penalise the peer; past the quota that unbound peers share, or with the whole buffer full, it is refused too
//! ([`ReceiveError::ParkingBusy`]), but that is not the peer's fault ([`ReceiveError::penalises`]). Nothing already
//! parked is evicted for a newcomer, so a flooding peer cannot push out what honest peers sent, and a parked
//! envelope leaves after [`ParkingLimits::ttl`]; governance ops parked at the node follow the same rule (one
//! structure for both, `crate::parking`). [`DocumentEngine::forget_peer`] drops what a peer parked.
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
//! per-envelope limits): a burst of commits costs one signature. A published envelope goes through exactly what a
//! peer's goes through before it is stored or returned for announcement: its bytes are decoded by stage 1 and judged
//! by the function `receive` uses (steps 2 to 5 above, `judge`) at the current governance state. If a peer would
//! refuse it, [`PublishError::Refused`] carries the [`ReceiveError`] that peer would give, nothing is stored, and the
//! unpublished changes are rolled back (the document is rebuilt from what is stored, as peers have it). If a rebuild
//! ever drops one of this session's own changes, the document switches to a fresh salt so no (actor, seq) pair is
//! reused.
//!
//! # Canonical export
//!
//! See [`canonical_json`].
//!
//! # Where the code is
//!
//! This file holds [`DocumentEngine`] itself; its methods live beside the concern they serve: `receive` (the
//! pipeline above and the release of parked envelopes), `local` (edits and publishing), `restore` (restart and
//! revalidation), `query` (reads and exports), `history` (authorisation by an envelope's cited history alone),
//! `quota` (what each author has stored, against its quotas), `usage` (what each document has used of its caps).
//! `doc_state` is one document's state and the panic firewall,
//! `parking` the bounded buffer, `sink` the storage seam, `outcome` and `error` what the engine reports.

mod doc_state;
mod error;
mod history;
mod local;
mod outcome;
mod parking;
mod query;
mod quota;
mod receive;
mod restore;
mod sink;
#[cfg(test)]
#[allow(clippy::unwrap_used)] // Test inputs are built here; a failure is a test failure.
mod tests;
mod usage;

pub use error::{
    chain, ActorScope, ApplyLocalError, EditError, ExportError, PublishError, ReceiveError,
};
pub use outcome::{
    Accepted, EngineStats, EnvelopeStatus, Equivocation, Parked, Peer, Received, Reject, Restored,
    Revalidation,
};
pub use parking::ParkingLimits;
pub use query::MissingEnvelopes;
pub use quota::{AuthorQuota, QuotaExceeded, QuotaKind, QuotaLimits, Usage};
pub use sink::{EnvelopeSink, MemorySink};
pub use usage::DocumentUsage;
pub use wsis_protocol::export::{canonical_json, content_hash_of};

use self::doc_state::*;
use self::history::HistoryAuthorisation;
use self::parking::*;
use self::quota::Quotas;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use wsis_protocol::crypto::SecretKey;
use wsis_protocol::envelope::SESSION_SALT_LEN;
use wsis_protocol::ids::{DocId, FederationId, OrgId};

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
    /// Authorisation by an envelope's cited history alone, for envelopes the current state refuses.
    history: HistoryAuthorisation,
    /// What each author has stored here, against its quotas (`quota`).
    quotas: Quotas,
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
            history: HistoryAuthorisation::default(),
            quotas: Quotas::default(),
        }
    }

    /// Replaces the fresh random session salt, before any document is touched: for deterministic simulations
    /// (`node/tests/doc_convergence.rs`) only. A node must keep the random salt: a salt used again after a
    /// restart would reuse (actor, seq) pairs, which peers exclude as equivocation.
    #[doc(hidden)]
    pub fn with_session_salt(mut self, salt: [u8; SESSION_SALT_LEN]) -> Self {
        self.session_salt = salt;
        self
    }

    /// Replaces the parking bounds (the defaults are [`ParkingLimits::default`]).
    pub fn with_parking_limits(mut self, limits: ParkingLimits) -> Self {
        self.parking.limits = limits;
        self
    }

    /// Replaces the quotas (the protocol's by default): for tests only, which reach a count limit this way
    /// without sending sixteen thousand envelopes. A node must keep the protocol's, or it refuses what its peers
    /// store (or stores what they refuse).
    #[doc(hidden)]
    pub fn with_quota_limits(mut self, limits: QuotaLimits) -> Self {
        self.quotas.limits = limits;
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

    /// Refuses an envelope whose storing would pass one of its author's quotas (pipeline step 2, after the
    /// authorisation and the duplicate check, before it parks, is parsed or stored).
    fn check_quota(
        &self,
        head: &wsis_protocol::envelope::VerifiedHeader,
    ) -> Result<(), ReceiveError> {
        let h = head.header();
        self.quotas
            .check(h.author, h.doc, head.bytes().len() as u64)
            .map_err(ReceiveError::OverQuota)
    }

    /// Counts an envelope that is being stored (received, published or restored) against its author's quotas.
    fn record_stored(&mut self, env: &wsis_protocol::envelope::SignedEnvelope) {
        let h = env.header();
        self.quotas
            .record(h.author, h.doc, env.bytes().len() as u64);
    }

    /// What `author` has stored here, per document and in total, against its quotas
    /// ([`MAX_AUTHOR_DOC_BYTES`](wsis_protocol::limits::MAX_AUTHOR_DOC_BYTES) and the others).
    pub fn quota_of(&self, author: &OrgId) -> AuthorQuota {
        self.quotas.of(author)
    }

    /// The `n` authors nearest one of their quotas, nearest first.
    pub fn quotas_nearest(&self, n: usize) -> Vec<AuthorQuota> {
        self.quotas.nearest(n)
    }

    fn count(&mut self, reason: Option<Reject>) {
        if let Some(r) = reason {
            *self.rejected.entry(r).or_default() += 1;
        }
    }
}
