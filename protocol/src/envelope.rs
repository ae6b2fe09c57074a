//! Signed change envelopes: how an Automerge change to a content document travels between nodes.
//!
//! Wire form (see `docs/protocol.md` for the full table):
//!
//! ```text
//! SignedEnvelope = map { 0: header (byte string: the canonical ChangeEnvelope), 1: signature (64 bytes),
//!                        2: changes [byte string] (raw, uncompressed Automerge change chunks, in header order) }
//! ChangeEnvelope = map { 0: version = 1, 1: federation id, 2: doc DocId, 3: author OrgId, 4: public key,
//!                        5: session salt (16 bytes), 6: governance heads [OpId] (ascending, unique, 1..=256),
//!                        7: change hashes [32 bytes] (unique, in batch order, 1..=4096) }
//! ```
//!
//! The signature covers `"wsis/v1/change-envelope" || 0x00 || header`: it names the batch's change hashes in
//! order, not the change bytes, so a burst of local commits costs one signature and the changes are never
//! re-encoded. Each change is bound to the signature by its Automerge hash. Automerge (0.7,
//! `storage::chunk::hash`) defines it as SHA-256 over the chunk type byte, the LEB128 data length and the data;
//! because a chunk here must encode its length minimally, that is SHA-256 of the chunk bytes after the 4 magic
//! bytes and the 4 checksum bytes, which this module computes itself. The
//! [`EnvelopeId`](crate::ids::EnvelopeId) is the SHA-256 of the whole signed bytes, which are kept exactly as
//! received.
//!
//! The Automerge actor of every change must be [`actor_id`]`(key, doc, session_salt)`: an author cannot write
//! under another organisation's actor (their (actor, seq) space), and a node that picks a fresh salt per session
//! never reuses an (actor, seq) pair after a restart.
//!
//! A third party cannot change an envelope's bytes, and so its id, without breaking it: the CBOR is canonical,
//! signatures are strict (no `S + L`), and each change chunk must be uncompressed with a minimal length and a
//! correct checksum, so the signed hash fixes every byte of it.
//!
//! # Two verification stages
//!
//! Automerge's change parser is not run on bytes from an unknown or unauthorised sender: it checks every op,
//! and its run-length encoded columns let a small change claim a very large number of ops. Verification is
//! therefore split:
//!
//! 1. [`VerifiedHeader::from_bytes`] needs no Automerge code and costs time linear in the envelope's size
//!    (which is capped first): size cap, strict decoding of the wrapper and header, the federation, as many
//!    changes as signed hashes, and for each change the chunk framing (magic, uncompressed change chunk,
//!    minimal length covering exactly the bytes), our own SHA-256 of the chunk, its checksum, the signed hash at
//!    its position, and its dependencies, actor and seq read from the front of the chunk by a small bounded
//!    reader of our own (the actor must be the derived one); then the strict signature over the header bytes.
//! 2. [`VerifiedHeader::parse_changes`] runs Automerge's parser on each change and checks that Automerge holds
//!    exactly the received bytes and agrees with stage 1 on the hash, actor, seq and dependencies.
//!
//! [`SignedEnvelope::from_bytes`] runs both stages, for callers that do not need to stop in between.
//!
//! # The order a node follows
//!
//! 1. [`VerifiedHeader::from_bytes`] on the received bytes.
//! 2. The governance check on the header: the signing key is the author's key and the author may write the
//!    document at the cited governance heads ([`crate::gov::Governance::authorize_header`]).
//! 3. Dependencies and equivocation, still without Automerge: every hash in
//!    [`VerifiedHeader::external_deps`] already accepted (otherwise park the envelope's bytes in a bounded
//!    per-peer buffer and fetch by hash), and no other accepted change under an (actor, seq) of
//!    [`VerifiedHeader::change_keys`].
//! 4. [`VerifiedHeader::parse_changes`].
//! 5. `Automerge::apply_changes` with [`SignedEnvelope::into_changes`].
//!
//! Never feed bytes from a peer to Automerge's `receive_sync_message`, `load_incremental` or `merge`: they apply
//! changes with no check.
//!
//! The parts, one file each under `envelope/`: `header` (the signed header, [`ChangeEnvelope`], and sealing),
//! `wrapper` (the signed CBOR wrapper, shared with `crate::op`), `chunk` (the Automerge chunk reader of stage 1,
//! shared with [`crate::chunk_cost`]) and `verified` (the two stages, [`VerifiedHeader`] and [`SignedEnvelope`]).

use crate::cbor::DecodeError;
use crate::crypto::{CryptoError, PublicKey};
use crate::ids::{sha256, DocId, FederationId};
use crate::limits::{MAX_CHANGES_PER_ENVELOPE, MAX_HEADS};

pub(crate) mod chunk;
mod header;
mod verified;
pub(crate) mod wrapper;

pub use header::ChangeEnvelope;
pub(crate) use verified::parse_change;
pub use verified::{SignedEnvelope, VerifiedHeader};

/// The only envelope wire version this crate speaks.
pub const VERSION: u64 = 1;
/// Length of the per-session salt that goes into the actor id.
pub const SESSION_SALT_LEN: usize = 16;
/// Length of a derived Automerge actor id.
pub const ACTOR_ID_LEN: usize = 16;

/// The domain tag of the actor-id derivation.
const ACTOR_TAG: &[u8] = b"wsis/v1/actor";

/// An upper bound on a valid header: fixed fields plus 34 bytes (head and content) per listed hash.
const MAX_HEADER_BYTES: usize = 1024 + 34 * (MAX_HEADS + MAX_CHANGES_PER_ENVELOPE);

/// Why bytes are not a well-formed, correctly signed change envelope, or why an envelope could not be sealed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    #[error("{what} is {len} bytes, the limit is {max}")]
    TooLarge {
        what: &'static str,
        len: usize,
        max: usize,
    },
    #[error("malformed encoding: {0}")]
    Decode(#[from] DecodeError),
    #[error("structurally invalid: {0}")]
    Structure(&'static str),
    #[error("envelope belongs to federation {found}, expected {expected}")]
    WrongFederation {
        expected: FederationId,
        found: FederationId,
    },
    #[error("envelope signs {hashes} change hashes but carries {changes} changes")]
    ChangeCountMismatch { hashes: usize, changes: usize },
    #[error("change {index} is not a well-formed automerge change: {reason}")]
    MalformedChange { index: usize, reason: String },
    #[error("change {index} expands into {count} {what}, the limit is {max}")]
    ChangeTooCostly {
        index: usize,
        what: &'static str,
        count: u64,
        max: u64,
    },
    #[error("the envelope's changes expand into {count} ops, the limit is {max}")]
    EnvelopeTooCostly { count: u64, max: u64 },
    #[error("change {index} does not match the hash signed at its position")]
    HashMismatch { index: usize },
    #[error("change {index} was made by an actor not derived from the envelope's key, document and salt")]
    ForeignActor { index: usize },
    #[error("bad public key: {0}")]
    Key(CryptoError),
    #[error("signature does not verify")]
    BadSignature,
}

/// The Automerge actor id of `key` writing `doc` in the session with `session_salt`: the first 16 bytes of
/// SHA-256(`"wsis/v1/actor" || 0x00 || key || doc || salt`).
///
/// A node picks a fresh random salt for each session (each process start), so a restarted node that lost its
/// in-memory sequence counter never reuses an (actor, seq) pair. The derivation binds the actor to one key and
/// one document, so a change cannot claim another organisation's actor.
pub fn actor_id(
    key: &PublicKey,
    doc: &DocId,
    session_salt: &[u8; SESSION_SALT_LEN],
) -> [u8; ACTOR_ID_LEN] {
    let mut pre = Vec::with_capacity(ACTOR_TAG.len() + 1 + 32 + 32 + SESSION_SALT_LEN);
    pre.extend_from_slice(ACTOR_TAG);
    pre.push(0);
    pre.extend_from_slice(key.as_bytes());
    pre.extend_from_slice(doc.as_bytes());
    pre.extend_from_slice(session_salt);
    let h = sha256(&pre);
    let mut out = [0u8; ACTOR_ID_LEN];
    out.copy_from_slice(&h[..ACTOR_ID_LEN]);
    out
}

/// [`actor_id`] as an Automerge [`ActorId`](automerge::ActorId), for `AutoCommit::with_actor` / `set_actor`.
pub fn automerge_actor(
    key: &PublicKey,
    doc: &DocId,
    session_salt: &[u8; SESSION_SALT_LEN],
) -> automerge::ActorId {
    automerge::ActorId::from(actor_id(key, doc, session_salt))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Test inputs are built here; a failure is a test failure.
mod tests;
