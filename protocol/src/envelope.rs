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
//! bytes and the 4 checksum bytes, which this module computes itself. The [`EnvelopeId`] is the SHA-256 of the
//! whole signed bytes, which are kept exactly as received.
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

use crate::cbor::{DecodeError, Decoder, Encoder};
use crate::crypto::{CryptoError, Domain, PublicKey, SecretKey, SIGNATURE_LEN};
use crate::ids::{sha256, DocId, EnvelopeId, FederationId, Hash32, OpId, OrgId};
use crate::limits::{
    MAX_CHANGES_PER_ENVELOPE, MAX_CHANGE_BYTES, MAX_ENVELOPE_BYTES, MAX_HEADS, MAX_MAP_ENTRIES,
};
use std::fmt;
use std::sync::Arc;

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

/// The first four bytes of every Automerge chunk.
const AUTOMERGE_MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
/// Automerge chunk types: 1 is an uncompressed change, 2 a deflate-compressed one.
const CHUNK_TYPE_CHANGE: u8 = 1;
const CHUNK_TYPE_COMPRESSED_CHANGE: u8 = 2;

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

/// The signed header of an envelope: everything the signature covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeEnvelope {
    pub federation: FederationId,
    pub doc: DocId,
    /// The organisation that claims the changes. That `key` is one of its keys at `gov_heads` is for the
    /// governance check (`Governance::authorize_header`), not for this module.
    pub author: OrgId,
    pub key: PublicKey,
    pub session_salt: [u8; SESSION_SALT_LEN],
    /// The governance heads the author had seen: sorted ascending, unique, at least one (the genesis at minimum).
    pub gov_heads: Vec<OpId>,
    /// The Automerge hashes of the batch's changes, in the order the changes travel. Unique, at least one.
    pub change_hashes: Vec<Hash32>,
}

impl ChangeEnvelope {
    /// The canonical encoding of the header (the signed bytes).
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Encoder::new();
        e.map(8);
        e.key(0).u64(VERSION);
        e.key(1).bytes(self.federation.as_bytes());
        e.key(2).bytes(self.doc.as_bytes());
        e.key(3).bytes(self.author.as_bytes());
        e.key(4).bytes(self.key.as_bytes());
        e.key(5).bytes(&self.session_salt);
        e.key(6).array(self.gov_heads.len());
        for h in &self.gov_heads {
            e.bytes(h.as_bytes());
        }
        e.key(7).array(self.change_hashes.len());
        for h in &self.change_hashes {
            e.bytes(&h.0);
        }
        e.into_bytes()
    }

    fn decode(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        let mut d = Decoder::new(bytes);
        let mut m = d.map(MAX_MAP_ENTRIES)?;
        m.required(&mut d, 0)?;
        let v = d.u64()?;
        if v != VERSION {
            return Err(DecodeError::UnknownVersion(v).into());
        }
        m.required(&mut d, 1)?;
        let federation = FederationId(d.fixed::<32>("federation")?);
        m.required(&mut d, 2)?;
        let doc = DocId(d.fixed::<32>("document")?);
        m.required(&mut d, 3)?;
        let author = OrgId(d.fixed::<32>("author")?);
        m.required(&mut d, 4)?;
        let key =
            PublicKey::from_bytes(&d.fixed::<32>("public key")?).map_err(EnvelopeError::Key)?;
        m.required(&mut d, 5)?;
        let session_salt = d.fixed::<SESSION_SALT_LEN>("session salt")?;
        m.required(&mut d, 6)?;
        let gov_heads = d.array_of("governance heads", MAX_HEADS, |d| {
            d.fixed::<32>("governance head").map(OpId)
        })?;
        m.required(&mut d, 7)?;
        let change_hashes = d.array_of("change hashes", MAX_CHANGES_PER_ENVELOPE, |d| {
            d.fixed::<32>("change hash").map(Hash32)
        })?;
        m.end()?;
        d.finish()?;
        let header = Self {
            federation,
            doc,
            author,
            key,
            session_salt,
            gov_heads,
            change_hashes,
        };
        header.check_structure()?;
        Ok(header)
    }

    /// Rules about the header alone.
    fn check_structure(&self) -> Result<(), EnvelopeError> {
        if self.gov_heads.is_empty() {
            return Err(EnvelopeError::Structure(
                "an envelope cites at least one governance head",
            ));
        }
        if !self.gov_heads.windows(2).all(|w| w[0] < w[1]) {
            return Err(DecodeError::Invalid(
                "id lists must be sorted ascending without duplicates",
            )
            .into());
        }
        if self.change_hashes.is_empty() {
            return Err(EnvelopeError::Structure(
                "an envelope carries at least one change",
            ));
        }
        let mut sorted = self.change_hashes.clone();
        sorted.sort_unstable();
        if sorted.windows(2).any(|w| w[0] == w[1]) {
            return Err(EnvelopeError::Structure(
                "a change appears twice in one envelope",
            ));
        }
        Ok(())
    }

    /// The actor every change in this envelope must have.
    pub fn actor(&self) -> [u8; ACTOR_ID_LEN] {
        actor_id(&self.key, &self.doc, &self.session_salt)
    }

    /// Signs a batch of local changes to `doc`.
    ///
    /// `gov_heads` are sorted and deduplicated here. Every change must have been made with the actor
    /// [`actor_id`]`(secret.public(), doc, session_salt)` ([`EnvelopeError::ForeignActor`] otherwise); the batch
    /// must have 1 to [`MAX_CHANGES_PER_ENVELOPE`] distinct changes of at most [`MAX_CHANGE_BYTES`] each, and the
    /// whole envelope must fit in [`MAX_ENVELOPE_BYTES`] ([`EnvelopeError::TooLarge`]: split the batch). Each
    /// change passes the same per-change checks as a received one, so what `seal` returns is exactly what
    /// [`SignedEnvelope::from_bytes`] makes of its bytes.
    pub fn seal(
        federation: FederationId,
        doc: DocId,
        author: OrgId,
        secret: &SecretKey,
        session_salt: [u8; SESSION_SALT_LEN],
        mut gov_heads: Vec<OpId>,
        changes: Vec<automerge::Change>,
    ) -> Result<SignedEnvelope, EnvelopeError> {
        gov_heads.sort_unstable();
        gov_heads.dedup();
        if gov_heads.len() > MAX_HEADS {
            return Err(EnvelopeError::Structure("too many governance heads"));
        }
        if changes.len() > MAX_CHANGES_PER_ENVELOPE {
            return Err(EnvelopeError::Structure("too many changes in one envelope"));
        }
        let key = secret.public();
        let actor = actor_id(&key, &doc, &session_salt);
        let mut facts = Vec::with_capacity(changes.len());
        for (index, change) in changes.iter().enumerate() {
            let raw = change.raw_bytes();
            if raw.len() > MAX_CHANGE_BYTES {
                return Err(EnvelopeError::TooLarge {
                    what: "change",
                    len: raw.len(),
                    max: MAX_CHANGE_BYTES,
                });
            }
            let signed = Hash32(change.hash().0);
            let fact = inspect_change(index, raw, &signed, &actor)?;
            check_parsed(index, change, raw, &signed, &fact, &actor)?;
            facts.push(fact);
        }
        let header = ChangeEnvelope {
            federation,
            doc,
            author,
            key,
            session_salt,
            gov_heads,
            change_hashes: changes.iter().map(|c| Hash32(c.hash().0)).collect(),
        };
        header.check_structure()?;
        let header_bytes = header.encode();
        let signature = secret.sign(Domain::ChangeEnvelope, &header_bytes);
        let mut e = Encoder::new();
        e.map(3);
        e.key(0).bytes(&header_bytes);
        e.key(1).bytes(&signature);
        e.key(2).array(changes.len());
        for c in &changes {
            e.bytes(c.raw_bytes());
        }
        let bytes = e.into_bytes();
        if bytes.len() > MAX_ENVELOPE_BYTES {
            return Err(EnvelopeError::TooLarge {
                what: "envelope",
                len: bytes.len(),
                max: MAX_ENVELOPE_BYTES,
            });
        }
        // Re-reading our own wrapper only locates the header and the changes; it cannot fail on bytes we just
        // encoded.
        let wrapper = decode_wrapper(&bytes)?;
        let raw_changes = wrapper
            .changes
            .iter()
            .zip(facts)
            .map(|(&range, facts)| RawChange { range, facts })
            .collect();
        Ok(SignedEnvelope {
            verified: VerifiedHeader {
                id: EnvelopeId::of_bytes(&bytes),
                header_range: wrapper.header,
                bytes: bytes.into(),
                signature,
                header,
                changes: raw_changes,
            },
            changes,
        })
    }
}

/// The parts of the outer map: where the header bytes are, the signature, and where each raw change is.
struct Wrapper {
    header: (usize, usize),
    signature: [u8; SIGNATURE_LEN],
    changes: Vec<(usize, usize)>,
}

/// `map { 0: header bytes, 1: signature, 2: [change bytes] }`, strictly.
fn decode_wrapper(bytes: &[u8]) -> Result<Wrapper, DecodeError> {
    let mut d = Decoder::new(bytes);
    let mut m = d.map(3)?;
    m.required(&mut d, 0)?;
    let header = d.bytes("envelope header", MAX_HEADER_BYTES)?;
    let header_end = d.position();
    let header = (header_end - header.len(), header_end);
    m.required(&mut d, 1)?;
    let signature = d.fixed::<SIGNATURE_LEN>("signature")?;
    m.required(&mut d, 2)?;
    let changes = d.array_of("changes", MAX_CHANGES_PER_ENVELOPE, |d| {
        let change = d.bytes("change", MAX_CHANGE_BYTES)?;
        let end = d.position();
        Ok((end - change.len(), end))
    })?;
    m.end()?;
    d.finish()?;
    Ok(Wrapper {
        header,
        signature,
        changes,
    })
}

/// Why an unsigned LEB128 number (Automerge's integer encoding) did not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Uleb128Error {
    CutOff,
    TooLarge,
    NonMinimal,
}

/// Reads an unsigned LEB128 number from the front of `input` with the rules of Automerge's own reader: at most
/// 64 bits, and minimal (no trailing zero byte after the first).
fn read_uleb128(input: &mut &[u8]) -> Result<u64, Uleb128Error> {
    let mut value: u64 = 0;
    let mut shift = 0u32;
    loop {
        let (&b, rest) = input.split_first().ok_or(Uleb128Error::CutOff)?;
        *input = rest;
        // The tenth byte holds bit 63 only.
        if shift == 63 && b > 1 {
            return Err(Uleb128Error::TooLarge);
        }
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            if b == 0 && shift > 0 {
                return Err(Uleb128Error::NonMinimal);
            }
            return Ok(value);
        }
        shift += 7;
    }
}

/// A change chunk whose framing passed [`check_chunk_framing`].
struct Chunk<'a> {
    checksum: [u8; 4],
    /// What the Automerge hash covers: the chunk type byte, the length and the data.
    hashed: &'a [u8],
    /// The change itself, after the length.
    data: &'a [u8],
}

/// Checks the Automerge chunk framing before anything reads the change: the magic bytes, an **uncompressed**
/// change chunk (a compressed one would have to be inflated before any check, and many compressions of one
/// change have the same hash), and a minimal LEB128 length that covers exactly the rest of the bytes.
fn check_chunk_framing(bytes: &[u8]) -> Result<Chunk<'_>, &'static str> {
    let (magic, rest) = bytes
        .split_first_chunk::<4>()
        .ok_or("too short for an automerge chunk")?;
    if *magic != AUTOMERGE_MAGIC {
        return Err("not an automerge chunk");
    }
    let (checksum, hashed) = rest
        .split_first_chunk::<4>()
        .ok_or("too short for an automerge chunk")?;
    let (&chunk_type, mut rest) = hashed
        .split_first()
        .ok_or("too short for an automerge chunk")?;
    match chunk_type {
        CHUNK_TYPE_CHANGE => {}
        CHUNK_TYPE_COMPRESSED_CHANGE => return Err("compressed changes are not accepted"),
        _ => return Err("not a change chunk"),
    }
    let len = read_uleb128(&mut rest).map_err(|e| match e {
        Uleb128Error::CutOff => "chunk length is cut off",
        Uleb128Error::TooLarge => "chunk length is too large",
        Uleb128Error::NonMinimal => "chunk length is not minimally encoded",
    })?;
    if len != rest.len() as u64 {
        return Err("chunk length does not match the change bytes");
    }
    Ok(Chunk {
        checksum: *checksum,
        hashed,
        data: rest,
    })
}

/// The fields at the front of a change's data in Automerge's binary format, read without Automerge: the
/// dependencies (a count, then 32-byte hashes), the actor (a length, then its bytes) and the seq. Reading stops
/// there; the ops are left to Automerge in stage 2. Nothing is allocated beyond what the bytes hold.
fn read_change_prefix(mut data: &[u8]) -> Result<(Vec<Hash32>, &[u8], u64), &'static str> {
    let count = read_uleb128(&mut data).map_err(|_| "malformed dependency count")?;
    if count > (data.len() / 32) as u64 {
        return Err("dependencies are cut off");
    }
    let mut deps = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let (hash, rest) = data
            .split_first_chunk::<32>()
            .ok_or("dependencies are cut off")?;
        deps.push(Hash32(*hash));
        data = rest;
    }
    let len = read_uleb128(&mut data).map_err(|_| "malformed actor id length")?;
    if len > data.len() as u64 {
        return Err("actor id is cut off");
    }
    let (actor, mut data) = data.split_at(len as usize);
    let seq = read_uleb128(&mut data).map_err(|_| "malformed seq")?;
    Ok((deps, actor, seq))
}

/// What stage 1 reads from the front of one change, for the dependency and equivocation checks.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ChangeFacts {
    seq: u64,
    deps: Vec<Hash32>,
}

/// One change after stage 1: where it is in the envelope, and its facts.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RawChange {
    range: (usize, usize),
    facts: ChangeFacts,
}

/// The stage-1 checks on one change chunk, without Automerge: framing, the checksum against our own SHA-256 of
/// the chunk (its Automerge hash; the checksum is outside the hash, so unchecked a relay could change it), that
/// hash against the `signed` one, and the actor read from the front of the data. Returns the change's seq and
/// dependencies.
fn inspect_change(
    index: usize,
    bytes: &[u8],
    signed: &Hash32,
    actor: &[u8; ACTOR_ID_LEN],
) -> Result<ChangeFacts, EnvelopeError> {
    let malformed = |reason: &str| EnvelopeError::MalformedChange {
        index,
        reason: reason.to_string(),
    };
    let chunk = check_chunk_framing(bytes).map_err(malformed)?;
    let hash = sha256(chunk.hashed);
    if chunk.checksum[..] != hash[..4] {
        return Err(malformed("checksum does not match the change"));
    }
    if hash != signed.0 {
        return Err(EnvelopeError::HashMismatch { index });
    }
    let (deps, change_actor, seq) = read_change_prefix(chunk.data).map_err(malformed)?;
    if change_actor != actor.as_slice() {
        return Err(EnvelopeError::ForeignActor { index });
    }
    Ok(ChangeFacts { seq, deps })
}

/// The stage-2 checks on one change Automerge has parsed: it holds exactly the received bytes, and it agrees
/// with stage 1 on the hash, the actor, the seq and the dependencies (stage 1 already checked each of them; this
/// is defence in depth against the two readers disagreeing).
fn check_parsed(
    index: usize,
    change: &automerge::Change,
    raw: &[u8],
    signed: &Hash32,
    facts: &ChangeFacts,
    actor: &[u8; ACTOR_ID_LEN],
) -> Result<(), EnvelopeError> {
    if change.raw_bytes() != raw {
        return Err(EnvelopeError::MalformedChange {
            index,
            reason: "change bytes are not in automerge's canonical form".into(),
        });
    }
    if change.hash().0 != signed.0 {
        return Err(EnvelopeError::HashMismatch { index });
    }
    if change.actor_id().to_bytes() != actor.as_slice() {
        return Err(EnvelopeError::ForeignActor { index });
    }
    let same_deps = change.deps().len() == facts.deps.len()
        && change
            .deps()
            .iter()
            .zip(&facts.deps)
            .all(|(a, b)| a.0 == b.0);
    if change.seq() != facts.seq || !same_deps {
        return Err(EnvelopeError::MalformedChange {
            index,
            reason: "automerge reads the change's seq or dependencies differently".into(),
        });
    }
    Ok(())
}

/// Stage 1 of verification: an envelope whose header, signature and change hashes are verified, whose changes
/// Automerge has not parsed yet.
///
/// Holding a `VerifiedHeader` means every check of [`VerifiedHeader::from_bytes`] passed: the author's key
/// signed these exact bytes, and each change's bytes hash to the signed hash and name the derived actor. It
/// does **not** mean the changes are valid Automerge changes ([`Self::parse_changes`]) nor that the author may
/// write the document (the governance check). See the module documentation for the order a node follows.
#[derive(Clone)]
pub struct VerifiedHeader {
    bytes: Arc<[u8]>,
    id: EnvelopeId,
    header_range: (usize, usize),
    signature: [u8; SIGNATURE_LEN],
    header: ChangeEnvelope,
    changes: Vec<RawChange>,
}

impl PartialEq for VerifiedHeader {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id && self.bytes == other.bytes
    }
}
impl Eq for VerifiedHeader {}

impl fmt::Debug for VerifiedHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "VerifiedHeader({:?} {:?} by {:?}, {} changes)",
            self.id,
            self.header.doc,
            self.header.author,
            self.changes.len()
        )
    }
}

impl VerifiedHeader {
    /// Stage 1: decodes and verifies an envelope received from anywhere, without running Automerge, in this
    /// order: size cap, strict decoding of the wrapper and header, the federation, as many changes as signed
    /// hashes; for each change, the chunk framing (magic, uncompressed change chunk, minimal length covering
    /// exactly the bytes), the checksum against our own SHA-256 of the chunk, that hash against the one signed at
    /// its position, and the actor (read from the front of the chunk) against the one derived from the
    /// envelope's key, document and salt; finally the strict signature over the exact header bytes.
    pub fn from_bytes(
        bytes: &[u8],
        expected_federation: FederationId,
    ) -> Result<Self, EnvelopeError> {
        if bytes.len() > MAX_ENVELOPE_BYTES {
            return Err(EnvelopeError::TooLarge {
                what: "envelope",
                len: bytes.len(),
                max: MAX_ENVELOPE_BYTES,
            });
        }
        let wrapper = decode_wrapper(bytes)?;
        let header_bytes = &bytes[wrapper.header.0..wrapper.header.1];
        let header = ChangeEnvelope::decode(header_bytes)?;
        if header.federation != expected_federation {
            return Err(EnvelopeError::WrongFederation {
                expected: expected_federation,
                found: header.federation,
            });
        }
        if wrapper.changes.len() != header.change_hashes.len() {
            return Err(EnvelopeError::ChangeCountMismatch {
                hashes: header.change_hashes.len(),
                changes: wrapper.changes.len(),
            });
        }
        let actor = header.actor();
        let mut changes = Vec::with_capacity(wrapper.changes.len());
        for (index, (&range, signed)) in wrapper
            .changes
            .iter()
            .zip(&header.change_hashes)
            .enumerate()
        {
            let facts = inspect_change(index, &bytes[range.0..range.1], signed, &actor)?;
            changes.push(RawChange { range, facts });
        }
        header
            .key
            .verify(Domain::ChangeEnvelope, header_bytes, &wrapper.signature)
            .map_err(|_| EnvelopeError::BadSignature)?;
        Ok(Self {
            bytes: bytes.into(),
            id: EnvelopeId::of_bytes(bytes),
            header_range: wrapper.header,
            signature: wrapper.signature,
            header,
            changes,
        })
    }

    /// Stage 2: runs Automerge's change parser on each change (which reads every op) and checks that Automerge
    /// holds exactly the received bytes and agrees with stage 1 on the hash, the actor, the seq and the
    /// dependencies. Call it only for an envelope whose author passed the governance check and whose
    /// dependencies are accepted (see the module documentation).
    pub fn parse_changes(self) -> Result<SignedEnvelope, EnvelopeError> {
        let actor = self.actor();
        let mut changes = Vec::with_capacity(self.changes.len());
        for (index, (raw, signed)) in self
            .changes
            .iter()
            .zip(&self.header.change_hashes)
            .enumerate()
        {
            let bytes = &self.bytes[raw.range.0..raw.range.1];
            let change =
                automerge::Change::try_from(bytes).map_err(|e| EnvelopeError::MalformedChange {
                    index,
                    reason: e.to_string(),
                })?;
            check_parsed(index, &change, bytes, signed, &raw.facts, &actor)?;
            changes.push(change);
        }
        Ok(SignedEnvelope {
            verified: self,
            changes,
        })
    }

    pub fn id(&self) -> EnvelopeId {
        self.id
    }

    /// The exact signed bytes (what is stored, sent and hashed).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The header bytes the signature covers.
    pub fn header_bytes(&self) -> &[u8] {
        &self.bytes[self.header_range.0..self.header_range.1]
    }

    pub fn signature(&self) -> &[u8; SIGNATURE_LEN] {
        &self.signature
    }

    pub fn header(&self) -> &ChangeEnvelope {
        &self.header
    }

    pub fn federation(&self) -> FederationId {
        self.header.federation
    }

    pub fn doc(&self) -> DocId {
        self.header.doc
    }

    pub fn author(&self) -> OrgId {
        self.header.author
    }

    pub fn key(&self) -> &PublicKey {
        &self.header.key
    }

    pub fn session_salt(&self) -> &[u8; SESSION_SALT_LEN] {
        &self.header.session_salt
    }

    pub fn gov_heads(&self) -> &[OpId] {
        &self.header.gov_heads
    }

    /// The signed change hashes, in batch order (the same order as [`Self::raw_changes`]).
    pub fn change_hashes(&self) -> &[Hash32] {
        &self.header.change_hashes
    }

    /// The actor of every change in the envelope.
    pub fn actor(&self) -> [u8; ACTOR_ID_LEN] {
        self.header.actor()
    }

    /// The raw change chunks, in batch order: each hashes to the signed hash at its position, but Automerge has
    /// not parsed it.
    pub fn raw_changes(&self) -> impl ExactSizeIterator<Item = &[u8]> + '_ {
        self.changes
            .iter()
            .map(|c| &self.bytes[c.range.0..c.range.1])
    }

    /// (actor, seq, hash) of each change, in batch order: two different hashes under one (actor, seq), within this
    /// envelope or across envelopes, are an Automerge equivocation. Read without Automerge; stage 2 checks that
    /// Automerge reads the same seq.
    pub fn change_keys(&self) -> Vec<([u8; ACTOR_ID_LEN], u64, Hash32)> {
        let actor = self.actor();
        self.changes
            .iter()
            .zip(&self.header.change_hashes)
            .map(|(c, h)| (actor, c.facts.seq, *h))
            .collect()
    }

    /// The dependencies of the batch that are not in the batch itself, sorted and unique: what must already be
    /// accepted before these changes may be applied (otherwise park the envelope and fetch them by hash). Read
    /// without Automerge; stage 2 checks that Automerge reads the same dependencies.
    pub fn external_deps(&self) -> Vec<Hash32> {
        let mut own = self.header.change_hashes.clone();
        own.sort_unstable();
        let mut deps: Vec<Hash32> = self
            .changes
            .iter()
            .flat_map(|c| c.facts.deps.iter().copied())
            .filter(|h| own.binary_search(h).is_err())
            .collect();
        deps.sort_unstable();
        deps.dedup();
        deps
    }
}

/// A fully verified change envelope: a [`VerifiedHeader`] whose changes Automerge has parsed.
///
/// Holding a `SignedEnvelope` means every check that needs only the envelope passed (see
/// [`SignedEnvelope::from_bytes`]). It does **not** mean the author may write the document: the node must pass
/// the governance check before applying [`SignedEnvelope::changes`].
#[derive(Clone)]
pub struct SignedEnvelope {
    verified: VerifiedHeader,
    changes: Vec<automerge::Change>,
}

impl PartialEq for SignedEnvelope {
    fn eq(&self, other: &Self) -> bool {
        self.verified == other.verified
    }
}
impl Eq for SignedEnvelope {}

impl fmt::Debug for SignedEnvelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Envelope({:?} {:?} by {:?}, {} changes)",
            self.verified.id,
            self.verified.header.doc,
            self.verified.header.author,
            self.changes.len()
        )
    }
}

impl SignedEnvelope {
    /// Decodes and verifies an envelope received from anywhere: [`VerifiedHeader::from_bytes`] then
    /// [`VerifiedHeader::parse_changes`]. A node that receives envelopes from peers runs the two stages
    /// separately, with the governance, dependency and equivocation checks in between (see the module
    /// documentation); this is for callers that trust the sender or have nothing to check in between.
    ///
    /// Not checked here: dependencies present, (actor, seq) equivocation against other envelopes
    /// ([`Self::change_keys`]), and the governance check for the author at the cited heads.
    pub fn from_bytes(
        bytes: &[u8],
        expected_federation: FederationId,
    ) -> Result<Self, EnvelopeError> {
        VerifiedHeader::from_bytes(bytes, expected_federation)?.parse_changes()
    }

    /// The stage-1 part: the header, signature and raw changes.
    pub fn verified_header(&self) -> &VerifiedHeader {
        &self.verified
    }

    pub fn id(&self) -> EnvelopeId {
        self.verified.id()
    }

    /// The exact signed bytes (what is stored, sent and hashed).
    pub fn bytes(&self) -> &[u8] {
        self.verified.bytes()
    }

    /// The header bytes the signature covers.
    pub fn header_bytes(&self) -> &[u8] {
        self.verified.header_bytes()
    }

    pub fn signature(&self) -> &[u8; SIGNATURE_LEN] {
        self.verified.signature()
    }

    pub fn header(&self) -> &ChangeEnvelope {
        self.verified.header()
    }

    pub fn federation(&self) -> FederationId {
        self.verified.federation()
    }

    pub fn doc(&self) -> DocId {
        self.verified.doc()
    }

    pub fn author(&self) -> OrgId {
        self.verified.author()
    }

    pub fn key(&self) -> &PublicKey {
        self.verified.key()
    }

    pub fn session_salt(&self) -> &[u8; SESSION_SALT_LEN] {
        self.verified.session_salt()
    }

    pub fn gov_heads(&self) -> &[OpId] {
        self.verified.gov_heads()
    }

    /// The signed change hashes, in batch order (the same order as [`Self::changes`]).
    pub fn change_hashes(&self) -> &[Hash32] {
        self.verified.change_hashes()
    }

    /// The actor of every change in the envelope.
    pub fn actor(&self) -> [u8; ACTOR_ID_LEN] {
        self.verified.actor()
    }

    /// The parsed changes, in batch order. Apply them (`Automerge::apply_changes`) only after the governance
    /// check, the dependency check and the equivocation check.
    pub fn changes(&self) -> &[automerge::Change] {
        &self.changes
    }

    /// The parsed changes, by value (what `apply_changes` takes).
    pub fn into_changes(self) -> Vec<automerge::Change> {
        self.changes
    }

    /// (actor, seq, hash) of each change, in batch order: two different hashes under one (actor, seq), within this
    /// envelope or across envelopes, are an Automerge equivocation.
    pub fn change_keys(&self) -> Vec<([u8; ACTOR_ID_LEN], u64, Hash32)> {
        self.verified.change_keys()
    }

    /// The dependencies of the batch that are not in the batch itself, sorted and unique: what must already be
    /// accepted before these changes may be applied (otherwise park the envelope and fetch them by hash).
    pub fn external_deps(&self) -> Vec<Hash32> {
        self.verified.external_deps()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Test inputs are built here; a failure is a test failure.
mod tests {
    use super::*;
    use automerge::transaction::Transactable;
    use automerge::{AutoCommit, ReadDoc, ROOT};

    const FED: FederationId = FederationId([9; 32]);
    const DOC: DocId = DocId([4; 32]);
    const SALT: [u8; SESSION_SALT_LEN] = [7; SESSION_SALT_LEN];

    fn org(seed: u8) -> (SecretKey, OrgId) {
        (SecretKey::from_seed(&[seed; 32]), OrgId([seed; 32]))
    }

    fn heads() -> Vec<OpId> {
        vec![OpId([1; 32]), OpId([2; 32])]
    }

    /// `n` successive changes by `actor`, each setting `k` to its index.
    fn changes_by(actor: automerge::ActorId, n: i64) -> Vec<automerge::Change> {
        let mut doc = AutoCommit::new().with_actor(actor);
        for i in 0..n {
            doc.put(ROOT, "k", i).unwrap();
            doc.commit();
        }
        doc.get_changes(&[])
    }

    fn own_changes(secret: &SecretKey, n: i64) -> Vec<automerge::Change> {
        changes_by(automerge_actor(&secret.public(), &DOC, &SALT), n)
    }

    fn header_for(secret: &SecretKey, author: OrgId, hashes: Vec<Hash32>) -> ChangeEnvelope {
        ChangeEnvelope {
            federation: FED,
            doc: DOC,
            author,
            key: secret.public(),
            session_salt: SALT,
            gov_heads: heads(),
            change_hashes: hashes,
        }
    }

    /// Builds wire bytes with no checks at all: what a malicious peer can send.
    fn forge(header_bytes: &[u8], signature: &[u8; 64], changes: &[&[u8]]) -> Vec<u8> {
        let mut e = Encoder::new();
        e.map(3);
        e.key(0).bytes(header_bytes);
        e.key(1).bytes(signature);
        e.key(2).array(changes.len());
        for c in changes {
            e.bytes(c);
        }
        e.into_bytes()
    }

    /// A correctly signed envelope over `header` carrying `changes` verbatim.
    fn forge_signed(secret: &SecretKey, header: &ChangeEnvelope, changes: &[&[u8]]) -> Vec<u8> {
        let hb = header.encode();
        forge(&hb, &secret.sign(Domain::ChangeEnvelope, &hb), changes)
    }

    fn hashes(changes: &[automerge::Change]) -> Vec<Hash32> {
        changes.iter().map(|c| Hash32(c.hash().0)).collect()
    }

    fn sealed(secret: &SecretKey, author: OrgId, n: i64) -> SignedEnvelope {
        ChangeEnvelope::seal(
            FED,
            DOC,
            author,
            secret,
            SALT,
            heads(),
            own_changes(secret, n),
        )
        .unwrap()
    }

    #[test]
    fn actor_id_is_the_documented_hash_and_depends_on_every_input() {
        let (sk, _) = org(1);
        let key = sk.public();
        let mut pre = b"wsis/v1/actor\0".to_vec();
        pre.extend_from_slice(key.as_bytes());
        pre.extend_from_slice(DOC.as_bytes());
        pre.extend_from_slice(&SALT);
        let expected = actor_id(&key, &DOC, &SALT);
        assert_eq!(expected[..], sha256(&pre)[..16]);
        assert_eq!(
            automerge_actor(&key, &DOC, &SALT).to_bytes(),
            expected.as_slice()
        );
        assert_ne!(actor_id(&org(2).0.public(), &DOC, &SALT), expected);
        assert_ne!(actor_id(&key, &DocId([5; 32]), &SALT), expected);
        assert_ne!(actor_id(&key, &DOC, &[8; 16]), expected, "a new session");
    }

    #[test]
    fn round_trip_keeps_bytes_and_changes_apply() {
        let (sk, author) = org(1);
        let env = sealed(&sk, author, 3);
        let again = SignedEnvelope::from_bytes(env.bytes(), FED).unwrap();
        assert_eq!(again, env);
        assert_eq!(again.id(), EnvelopeId::of_bytes(env.bytes()));
        assert_eq!(again.header(), env.header());
        assert_eq!(again.header().encode(), again.header_bytes());
        assert_eq!(again.doc(), DOC);
        assert_eq!(again.author(), author);
        assert_eq!(again.key(), &sk.public());
        assert_eq!(again.session_salt(), &SALT);
        assert_eq!(again.gov_heads(), &heads()[..]);
        assert_eq!(again.change_hashes(), &hashes(env.changes())[..]);
        assert_eq!(
            sk.public().verify(
                Domain::ChangeEnvelope,
                again.header_bytes(),
                again.signature()
            ),
            Ok(())
        );
        // Sealing is deterministic: the same inputs give the same bytes and id.
        assert_eq!(sealed(&sk, author, 3).id(), env.id());
        // The batch is self-contained (the first change has no deps), and seqs count up from 1.
        assert!(again.external_deps().is_empty());
        let keys = again.change_keys();
        assert_eq!(keys.iter().map(|k| k.1).collect::<Vec<_>>(), vec![1, 2, 3]);
        assert!(keys.iter().all(|k| k.0 == again.actor()));
        let mut doc = AutoCommit::new();
        doc.apply_changes(again.into_changes()).unwrap();
        let (v, _) = doc.get(ROOT, "k").unwrap().unwrap();
        assert_eq!(v.to_i64(), Some(2));
    }

    #[test]
    fn gov_heads_are_sorted_and_deduplicated_when_sealing() {
        let (sk, author) = org(1);
        let env = ChangeEnvelope::seal(
            FED,
            DOC,
            author,
            &sk,
            SALT,
            vec![OpId([3; 32]), OpId([1; 32]), OpId([3; 32])],
            own_changes(&sk, 1),
        )
        .unwrap();
        let again = SignedEnvelope::from_bytes(env.bytes(), FED).unwrap();
        assert_eq!(again.gov_heads(), &[OpId([1; 32]), OpId([3; 32])]);
    }

    #[test]
    fn a_later_batch_names_its_external_deps() {
        let (sk, author) = org(1);
        let all = own_changes(&sk, 3);
        let env =
            ChangeEnvelope::seal(FED, DOC, author, &sk, SALT, heads(), all[1..].to_vec()).unwrap();
        assert_eq!(env.external_deps(), vec![Hash32(all[0].hash().0)]);
    }

    #[test]
    fn seal_refuses_changes_by_another_actor() {
        let (sk, author) = org(1);
        let (other, _) = org(2);
        let mut changes = own_changes(&sk, 1);
        // Another org's derived actor for the same document and salt.
        changes.extend(changes_by(automerge_actor(&other.public(), &DOC, &SALT), 1));
        assert_eq!(
            ChangeEnvelope::seal(FED, DOC, author, &sk, SALT, heads(), changes).unwrap_err(),
            EnvelopeError::ForeignActor { index: 1 }
        );
        // A random actor.
        let random = changes_by(automerge::ActorId::random(), 1);
        assert_eq!(
            ChangeEnvelope::seal(FED, DOC, author, &sk, SALT, heads(), random).unwrap_err(),
            EnvelopeError::ForeignActor { index: 0 }
        );
        // Our own actor, but for another session.
        let stale = changes_by(automerge_actor(&sk.public(), &DOC, &[0; 16]), 1);
        assert_eq!(
            ChangeEnvelope::seal(FED, DOC, author, &sk, SALT, heads(), stale).unwrap_err(),
            EnvelopeError::ForeignActor { index: 0 }
        );
    }

    #[test]
    fn seal_refuses_empty_and_duplicate_batches_and_missing_heads() {
        let (sk, author) = org(1);
        assert_eq!(
            ChangeEnvelope::seal(FED, DOC, author, &sk, SALT, heads(), vec![]).unwrap_err(),
            EnvelopeError::Structure("an envelope carries at least one change")
        );
        let one = own_changes(&sk, 1);
        let twice = vec![one[0].clone(), one[0].clone()];
        assert_eq!(
            ChangeEnvelope::seal(FED, DOC, author, &sk, SALT, heads(), twice).unwrap_err(),
            EnvelopeError::Structure("a change appears twice in one envelope")
        );
        assert_eq!(
            ChangeEnvelope::seal(FED, DOC, author, &sk, SALT, vec![], one).unwrap_err(),
            EnvelopeError::Structure("an envelope cites at least one governance head")
        );
    }

    /// Catalogue case 13: a change whose actor is not derived from the envelope's key.
    #[test]
    fn foreign_actor_is_rejected_on_receipt() {
        let (victim, _) = org(1);
        let (attacker, attacker_org) = org(2);
        // A change made under the victim's derived actor, signed into the attacker's envelope.
        let stolen = changes_by(automerge_actor(&victim.public(), &DOC, &SALT), 1);
        let own = own_changes(&attacker, 1);
        let header = header_for(
            &attacker,
            attacker_org,
            hashes(&[own[0].clone(), stolen[0].clone()]),
        );
        let bytes = forge_signed(
            &attacker,
            &header,
            &[own[0].raw_bytes(), stolen[0].raw_bytes()],
        );
        assert_eq!(
            SignedEnvelope::from_bytes(&bytes, FED),
            Err(EnvelopeError::ForeignActor { index: 1 })
        );
        // A random actor, and the attacker's own actor for another document.
        for actor in [
            automerge::ActorId::random(),
            automerge_actor(&attacker.public(), &DocId([5; 32]), &SALT),
        ] {
            let c = changes_by(actor, 1);
            let header = header_for(&attacker, attacker_org, hashes(&c));
            let bytes = forge_signed(&attacker, &header, &[c[0].raw_bytes()]);
            assert_eq!(
                SignedEnvelope::from_bytes(&bytes, FED),
                Err(EnvelopeError::ForeignActor { index: 0 })
            );
        }
        // Claiming the victim's key in the header makes the actor match, but then the signature cannot.
        let header = header_for(&victim, attacker_org, hashes(&stolen));
        let hb = header.encode();
        let bytes = forge(
            &hb,
            &attacker.sign(Domain::ChangeEnvelope, &hb),
            &[stolen[0].raw_bytes()],
        );
        assert_eq!(
            SignedEnvelope::from_bytes(&bytes, FED),
            Err(EnvelopeError::BadSignature)
        );
    }

    /// Catalogue case 14: change bytes that do not match the signed hash.
    #[test]
    fn swapped_or_reordered_changes_do_not_match_the_signed_hashes() {
        let (sk, author) = org(1);
        let signed = own_changes(&sk, 2);
        // Another valid change by the same actor at the same seq (what an equivocator or a relay could swap in).
        let mut other_doc =
            AutoCommit::new().with_actor(automerge_actor(&sk.public(), &DOC, &SALT));
        other_doc.put(ROOT, "k", "swapped").unwrap();
        let swapped = other_doc.get_last_local_change().unwrap();
        assert_eq!(swapped.seq(), signed[0].seq());
        let header = header_for(&sk, author, hashes(&signed));
        let bytes = forge_signed(&sk, &header, &[swapped.raw_bytes(), signed[1].raw_bytes()]);
        assert_eq!(
            SignedEnvelope::from_bytes(&bytes, FED),
            Err(EnvelopeError::HashMismatch { index: 0 })
        );
        let bytes = forge_signed(
            &sk,
            &header,
            &[signed[1].raw_bytes(), signed[0].raw_bytes()],
        );
        assert_eq!(
            SignedEnvelope::from_bytes(&bytes, FED),
            Err(EnvelopeError::HashMismatch { index: 0 })
        );
    }

    #[test]
    fn flipping_any_byte_of_a_change_is_an_error_not_a_panic() {
        let (sk, author) = org(1);
        let changes = own_changes(&sk, 2);
        let header = header_for(&sk, author, hashes(&changes));
        let good = changes[1].raw_bytes().to_vec();
        for i in 0..good.len() {
            for mask in [0x01u8, 0x80, 0xff] {
                let mut bad = good.clone();
                bad[i] ^= mask;
                let bytes = forge_signed(&sk, &header, &[changes[0].raw_bytes(), &bad]);
                let r = SignedEnvelope::from_bytes(&bytes, FED);
                assert!(
                    matches!(
                        r,
                        Err(EnvelopeError::MalformedChange { index: 1, .. }
                            | EnvelopeError::HashMismatch { index: 1 })
                    ),
                    "byte {i} ^ {mask:#x}: {r:?}"
                );
            }
        }
    }

    /// The checksum is outside the hash: without an explicit check, a relay could change it and so the
    /// envelope's id while the signature still verified.
    #[test]
    fn a_wrong_checksum_is_rejected_although_the_hash_matches() {
        let (sk, author) = org(1);
        let c = own_changes(&sk, 1);
        let mut bad = c[0].raw_bytes().to_vec();
        bad[4] ^= 1;
        assert_eq!(
            automerge::Change::try_from(&bad[..]).map(|p| p.hash()).ok(),
            Some(c[0].hash()),
            "automerge alone accepts it with the same hash"
        );
        let header = header_for(&sk, author, hashes(&c));
        let bytes = forge_signed(&sk, &header, &[&bad]);
        assert!(matches!(
            SignedEnvelope::from_bytes(&bytes, FED),
            Err(EnvelopeError::MalformedChange { index: 0, .. })
        ));
    }

    /// A compressed chunk would be inflated before any check (a bomb), and has the same hash as the
    /// uncompressed change, so it would be a second encoding of the same signed content.
    #[test]
    fn compressed_changes_are_rejected_before_parsing() {
        let (sk, author) = org(1);
        let mut doc = AutoCommit::new().with_actor(automerge_actor(&sk.public(), &DOC, &SALT));
        doc.put(ROOT, "text", "a".repeat(4096)).unwrap();
        let mut change = doc.get_last_local_change().unwrap();
        let compressed = change.bytes().into_owned();
        assert_eq!(compressed[8], CHUNK_TYPE_COMPRESSED_CHANGE);
        assert!(compressed.len() < change.raw_bytes().len());
        let header = header_for(&sk, author, vec![Hash32(change.hash().0)]);
        let bytes = forge_signed(&sk, &header, &[&compressed]);
        assert_eq!(
            SignedEnvelope::from_bytes(&bytes, FED),
            Err(EnvelopeError::MalformedChange {
                index: 0,
                reason: "compressed changes are not accepted".into()
            })
        );
        // The uncompressed form of the same change is fine.
        let bytes = forge_signed(&sk, &header, &[change.raw_bytes()]);
        assert!(SignedEnvelope::from_bytes(&bytes, FED).is_ok());
    }

    #[test]
    fn a_non_minimal_chunk_length_is_rejected() {
        let (sk, author) = org(1);
        let c = own_changes(&sk, 1);
        let raw = c[0].raw_bytes();
        // Re-encode the one-byte length (< 128 here) as two LEB128 bytes: same data, same hash.
        assert!(raw[9] < 0x80);
        let mut bad = raw[..9].to_vec();
        bad.extend_from_slice(&[raw[9] | 0x80, 0x00]);
        bad.extend_from_slice(&raw[10..]);
        let header = header_for(&sk, author, hashes(&c));
        let bytes = forge_signed(&sk, &header, &[&bad]);
        assert_eq!(
            SignedEnvelope::from_bytes(&bytes, FED),
            Err(EnvelopeError::MalformedChange {
                index: 0,
                reason: "chunk length is not minimally encoded".into()
            })
        );
    }

    /// Catalogue case 1: a signature made for another purpose over the same header bytes does not verify.
    #[test]
    fn a_signature_from_another_domain_does_not_verify() {
        let (sk, author) = org(1);
        let c = own_changes(&sk, 1);
        let hb = header_for(&sk, author, hashes(&c)).encode();
        for domain in [
            Domain::GovernanceOp,
            Domain::OrgInception,
            Domain::BundleManifest,
        ] {
            let bytes = forge(&hb, &sk.sign(domain, &hb), &[c[0].raw_bytes()]);
            assert_eq!(
                SignedEnvelope::from_bytes(&bytes, FED),
                Err(EnvelopeError::BadSignature),
                "{domain:?}"
            );
        }
        let bytes = forge(&hb, &sk.sign_raw(&hb), &[c[0].raw_bytes()]);
        assert_eq!(
            SignedEnvelope::from_bytes(&bytes, FED),
            Err(EnvelopeError::BadSignature)
        );
    }

    #[test]
    fn wrong_federation_is_rejected_even_on_the_last_byte() {
        let (sk, author) = org(1);
        let env = sealed(&sk, author, 1);
        let mut near = FED;
        near.0[31] ^= 1;
        assert_eq!(
            SignedEnvelope::from_bytes(env.bytes(), near),
            Err(EnvelopeError::WrongFederation {
                expected: near,
                found: FED
            })
        );
    }

    #[test]
    fn truncation_at_every_cut_point_is_an_error() {
        let (sk, author) = org(1);
        let env = sealed(&sk, author, 2);
        let b = env.bytes();
        for cut in 0..b.len() {
            assert!(
                SignedEnvelope::from_bytes(&b[..cut], FED).is_err(),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn trailing_bytes_are_rejected_outside_and_inside_the_header() {
        let (sk, author) = org(1);
        let env = sealed(&sk, author, 1);
        let mut b = env.bytes().to_vec();
        b.push(0);
        assert_eq!(
            SignedEnvelope::from_bytes(&b, FED),
            Err(EnvelopeError::Decode(DecodeError::TrailingBytes {
                count: 1
            }))
        );
        let mut hb = env.header_bytes().to_vec();
        hb.push(0);
        let bytes = forge(
            &hb,
            &sk.sign(Domain::ChangeEnvelope, &hb),
            &[env.changes()[0].raw_bytes()],
        );
        assert_eq!(
            SignedEnvelope::from_bytes(&bytes, FED),
            Err(EnvelopeError::Decode(DecodeError::TrailingBytes {
                count: 1
            }))
        );
    }

    #[test]
    fn oversized_input_is_refused_before_decoding() {
        let junk = vec![0xffu8; MAX_ENVELOPE_BYTES + 1];
        assert_eq!(
            SignedEnvelope::from_bytes(&junk, FED),
            Err(EnvelopeError::TooLarge {
                what: "envelope",
                len: MAX_ENVELOPE_BYTES + 1,
                max: MAX_ENVELOPE_BYTES
            })
        );
        // One change over its own cap, inside an envelope under the envelope cap.
        let (sk, author) = org(1);
        let big = vec![0u8; MAX_CHANGE_BYTES + 1];
        let header = header_for(&sk, author, vec![Hash32([0; 32])]);
        let bytes = forge_signed(&sk, &header, &[&big]);
        assert!(matches!(
            SignedEnvelope::from_bytes(&bytes, FED),
            Err(EnvelopeError::Decode(DecodeError::TooLong {
                what: "change",
                ..
            }))
        ));
    }

    #[test]
    fn seal_refuses_a_batch_that_does_not_fit_one_envelope() {
        let (sk, author) = org(1);
        let mut doc = AutoCommit::new().with_actor(automerge_actor(&sk.public(), &DOC, &SALT));
        for i in 0..9 {
            doc.put(ROOT, "blob", vec![i as u8; 1000 * 1000]).unwrap();
            doc.commit();
        }
        let changes = doc.get_changes(&[]);
        assert!(changes
            .iter()
            .all(|c| c.raw_bytes().len() <= MAX_CHANGE_BYTES));
        assert!(matches!(
            ChangeEnvelope::seal(FED, DOC, author, &sk, SALT, heads(), changes),
            Err(EnvelopeError::TooLarge {
                what: "envelope",
                ..
            })
        ));
    }

    #[test]
    fn empty_batches_duplicates_and_count_mismatches_are_rejected() {
        let (sk, author) = org(1);
        let c = own_changes(&sk, 2);
        let empty = forge_signed(&sk, &header_for(&sk, author, vec![]), &[]);
        assert_eq!(
            SignedEnvelope::from_bytes(&empty, FED),
            Err(EnvelopeError::Structure(
                "an envelope carries at least one change"
            ))
        );
        let h = hashes(&c);
        let dup = forge_signed(
            &sk,
            &header_for(&sk, author, vec![h[0], h[0]]),
            &[c[0].raw_bytes(), c[0].raw_bytes()],
        );
        assert_eq!(
            SignedEnvelope::from_bytes(&dup, FED),
            Err(EnvelopeError::Structure(
                "a change appears twice in one envelope"
            ))
        );
        let short = forge_signed(
            &sk,
            &header_for(&sk, author, h.clone()),
            &[c[0].raw_bytes()],
        );
        assert_eq!(
            SignedEnvelope::from_bytes(&short, FED),
            Err(EnvelopeError::ChangeCountMismatch {
                hashes: 2,
                changes: 1
            })
        );
        let long = forge_signed(
            &sk,
            &header_for(&sk, author, vec![h[0]]),
            &[c[0].raw_bytes(), c[1].raw_bytes()],
        );
        assert_eq!(
            SignedEnvelope::from_bytes(&long, FED),
            Err(EnvelopeError::ChangeCountMismatch {
                hashes: 1,
                changes: 2
            })
        );
    }

    #[test]
    fn governance_heads_must_be_present_sorted_and_unique() {
        let (sk, author) = org(1);
        let c = own_changes(&sk, 1);
        for (gov_heads, expected) in [
            (
                vec![],
                EnvelopeError::Structure("an envelope cites at least one governance head"),
            ),
            (
                vec![OpId([2; 32]), OpId([1; 32])],
                EnvelopeError::Decode(DecodeError::Invalid(
                    "id lists must be sorted ascending without duplicates",
                )),
            ),
            (
                vec![OpId([1; 32]), OpId([1; 32])],
                EnvelopeError::Decode(DecodeError::Invalid(
                    "id lists must be sorted ascending without duplicates",
                )),
            ),
        ] {
            let mut header = header_for(&sk, author, hashes(&c));
            header.gov_heads = gov_heads;
            let bytes = forge_signed(&sk, &header, &[c[0].raw_bytes()]);
            assert_eq!(SignedEnvelope::from_bytes(&bytes, FED), Err(expected));
        }
    }

    /// Re-encodes a valid header with one field replaced, signed correctly: the decoder, not the signature,
    /// must refuse it.
    #[test]
    fn unknown_version_unknown_fields_and_non_minimal_ints_are_rejected() {
        let (sk, author) = org(1);
        let c = own_changes(&sk, 1);
        let header = header_for(&sk, author, hashes(&c));
        let good = header.encode();
        // `a8 00 01 ...`: map of 8, key 0, version 1.
        assert_eq!(&good[..3], &[0xa8, 0x00, 0x01]);
        let mut v2 = good.clone();
        v2[2] = 0x02;
        let mut non_minimal = vec![0xa8, 0x00, 0x18, 0x01];
        non_minimal.extend_from_slice(&good[3..]);
        let mut extra = good.clone();
        extra[0] = 0xa9;
        extra.extend_from_slice(&[0x08, 0x00]);
        let mut dup_key = vec![0xa9, 0x00, 0x01];
        dup_key.extend_from_slice(&good[1..]);
        for (hb, check) in [
            (
                v2,
                (|e: &EnvelopeError| e == &EnvelopeError::Decode(DecodeError::UnknownVersion(2)))
                    as fn(&EnvelopeError) -> bool,
            ),
            (non_minimal, |e| {
                matches!(e, EnvelopeError::Decode(DecodeError::NonMinimal { .. }))
            }),
            (extra, |e| {
                e == &EnvelopeError::Decode(DecodeError::UnknownFields { count: 1 })
            }),
            (dup_key, |e| {
                matches!(e, EnvelopeError::Decode(DecodeError::UnexpectedKey { .. }))
            }),
        ] {
            let bytes = forge(
                &hb,
                &sk.sign(Domain::ChangeEnvelope, &hb),
                &[c[0].raw_bytes()],
            );
            let r = SignedEnvelope::from_bytes(&bytes, FED);
            assert!(r.as_ref().is_err_and(check), "{r:?}");
        }
    }

    #[test]
    fn weak_keys_and_wrong_signers_are_rejected() {
        let (sk, author) = org(1);
        let c = own_changes(&sk, 1);
        // All-zero key: a small-order point, refused while decoding.
        let mut hb = header_for(&sk, author, hashes(&c)).encode();
        let key_at = hb
            .windows(32)
            .position(|w| w == sk.public().as_bytes())
            .unwrap();
        hb[key_at..key_at + 32].fill(0);
        let bytes = forge(
            &hb,
            &sk.sign(Domain::ChangeEnvelope, &hb),
            &[c[0].raw_bytes()],
        );
        assert_eq!(
            SignedEnvelope::from_bytes(&bytes, FED),
            Err(EnvelopeError::Key(CryptoError::WeakKey))
        );
        // A valid envelope whose signature is flipped in one bit.
        let env = sealed(&sk, author, 1);
        let mut sig = *env.signature();
        sig[10] ^= 1;
        let bytes = forge(env.header_bytes(), &sig, &[env.changes()[0].raw_bytes()]);
        assert_eq!(
            SignedEnvelope::from_bytes(&bytes, FED),
            Err(EnvelopeError::BadSignature)
        );
    }

    /// What the node's equivocation check needs: two envelopes carrying different changes with the same
    /// (actor, seq) show it in `change_keys`.
    #[test]
    fn change_keys_expose_automerge_equivocation() {
        let (sk, author) = org(1);
        let actor = automerge_actor(&sk.public(), &DOC, &SALT);
        let mut a = AutoCommit::new().with_actor(actor.clone());
        a.put(ROOT, "k", 1).unwrap();
        let mut b = AutoCommit::new().with_actor(actor);
        b.put(ROOT, "k", 2).unwrap();
        let seal = |c: automerge::Change| {
            ChangeEnvelope::seal(FED, DOC, author, &sk, SALT, heads(), vec![c]).unwrap()
        };
        let ea = seal(a.get_last_local_change().unwrap());
        let eb = seal(b.get_last_local_change().unwrap());
        let (ka, kb) = (ea.change_keys()[0], eb.change_keys()[0]);
        assert_eq!((ka.0, ka.1), (kb.0, kb.1));
        assert_ne!(ka.2, kb.2);
    }

    // ---- The two stages ------------------------------------------------------------------------------------

    fn uleb(mut v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return out;
            }
            out.push(b | 0x80);
        }
    }

    /// A chunk of `chunk_type` around `data`, with a minimal length and the checksum of its SHA-256: framing that
    /// passes every stage-1 check, whatever `data` is.
    fn frame(chunk_type: u8, data: &[u8]) -> Vec<u8> {
        let mut hashed = vec![chunk_type];
        hashed.extend(uleb(data.len() as u64));
        hashed.extend_from_slice(data);
        let hash = sha256(&hashed);
        let mut chunk = AUTOMERGE_MAGIC.to_vec();
        chunk.extend_from_slice(&hash[..4]);
        chunk.extend(hashed);
        chunk
    }

    /// The hash stage 1 computes for a chunk: SHA-256 of everything after the magic bytes and the checksum.
    fn chunk_hash(chunk: &[u8]) -> Hash32 {
        Hash32(sha256(&chunk[8..]))
    }

    /// Change data with a well-formed front (deps, actor, seq, start op, time, message, other actors) followed
    /// by one op column that claims far more bytes than there are: Automerge's parser rejects it.
    fn garbage_ops(actor: &[u8], seq: u64, deps: &[Hash32]) -> Vec<u8> {
        let mut d = uleb(deps.len() as u64);
        for h in deps {
            d.extend_from_slice(&h.0);
        }
        d.extend(uleb(actor.len() as u64));
        d.extend_from_slice(actor);
        d.extend(uleb(seq));
        d.extend(uleb(1)); // start op
        d.push(0); // time
        d.extend(uleb(0)); // message
        d.extend(uleb(0)); // other actors
        d.extend(uleb(1)); // one column ...
        d.extend(uleb(0x01)); // ... with some spec ...
        d.extend(uleb(1 << 40)); // ... and a length that is not there
        d.extend_from_slice(&[0xff; 16]);
        d
    }

    /// A real change by `actor` whose op column bytes are overwritten with 0xff, re-framed with a correct
    /// length, checksum and hash: the front is intact, the ops are nonsense.
    fn scrambled_ops(actor: automerge::ActorId) -> Vec<u8> {
        let mut doc = AutoCommit::new().with_actor(actor);
        doc.put(ROOT, "k", "v").unwrap();
        let raw = doc.get_last_local_change().unwrap().raw_bytes().to_vec();
        let data_at = raw.len() - check_chunk_framing(&raw).unwrap().data.len();
        let mut data = raw[data_at..].to_vec();
        let n = data.len();
        data[n - 6..].fill(0xff);
        frame(CHUNK_TYPE_CHANGE, &data)
    }

    fn automerge_rejects(chunk: &[u8]) -> bool {
        automerge::Change::try_from(chunk).is_err()
    }

    /// Automerge 0.7's change hash (`storage::chunk::hash`) is SHA-256 over the chunk type, the minimal LEB128
    /// data length and the data: for a chunk that passes our framing check, SHA-256 of the bytes after the magic
    /// and the checksum. Stage 1 computes it itself; here it must equal `Change::hash()` for real changes of
    /// every shape, and the front of each chunk must read as Automerge reads it.
    #[test]
    fn stage_one_hash_and_prefix_agree_with_automerge() {
        let (sk, _) = org(1);
        let actor = automerge_actor(&sk.public(), &DOC, &SALT);
        let mut changes = own_changes(&sk, 3);
        // A long value: 2- and 3-byte LEB128 chunk lengths.
        for len in [200, 20_000] {
            let mut doc = AutoCommit::new().with_actor(actor.clone());
            doc.put(ROOT, "text", "x".repeat(len)).unwrap();
            changes.push(doc.get_last_local_change().unwrap());
        }
        // A commit message, and a merge commit with two dependencies.
        let mut a = AutoCommit::new().with_actor(actor.clone());
        a.put(ROOT, "k", 1).unwrap();
        a.commit_with(automerge::transaction::CommitOptions::default().with_message("hello"));
        changes.push(a.get_last_local_change().unwrap());
        let mut b = a.fork().with_actor(automerge::ActorId::random());
        b.put(ROOT, "b", 1).unwrap();
        b.commit();
        a.put(ROOT, "a", 1).unwrap();
        a.commit();
        a.merge(&mut b).unwrap();
        a.put(ROOT, "after", 1).unwrap();
        a.commit();
        let merged = a.get_last_local_change().unwrap();
        assert_eq!(merged.deps().len(), 2);
        changes.push(merged);
        let mut length_bytes = std::collections::BTreeSet::new();
        for c in &changes {
            let raw = c.raw_bytes();
            let chunk = check_chunk_framing(raw).unwrap();
            length_bytes.insert(chunk.hashed.len() - 1 - chunk.data.len());
            let ours = sha256(chunk.hashed);
            assert_eq!(ours, c.hash().0);
            assert_eq!(ours, sha256(&raw[8..]));
            // Automerge's definition, spelled out.
            let mut pre = vec![CHUNK_TYPE_CHANGE];
            pre.extend(uleb(chunk.data.len() as u64));
            pre.extend_from_slice(chunk.data);
            assert_eq!(ours, sha256(&pre));
            assert_eq!(raw[4..8], ours[..4], "checksum");
            let (deps, change_actor, seq) = read_change_prefix(chunk.data).unwrap();
            assert_eq!(
                deps,
                c.deps().iter().map(|h| Hash32(h.0)).collect::<Vec<_>>()
            );
            assert_eq!(change_actor, c.actor_id().to_bytes());
            assert_eq!(seq, c.seq());
        }
        assert_eq!(length_bytes.into_iter().collect::<Vec<_>>(), vec![1, 2, 3]);
    }

    #[test]
    fn the_stages_compose_to_from_bytes_and_seal() {
        let (sk, author) = org(1);
        let all = own_changes(&sk, 3);
        let env =
            ChangeEnvelope::seal(FED, DOC, author, &sk, SALT, heads(), all[1..].to_vec()).unwrap();
        let header = VerifiedHeader::from_bytes(env.bytes(), FED).unwrap();
        // What `seal` built equals what stage 1 reads from the bytes, to the per-change facts.
        assert_eq!(&header, env.verified_header());
        assert_eq!(header.changes, env.verified_header().changes);
        assert_eq!(header.id(), env.id());
        assert_eq!(header.bytes(), env.bytes());
        assert_eq!(header.header_bytes(), env.header_bytes());
        assert_eq!(header.signature(), env.signature());
        assert_eq!(header.header(), env.header());
        assert_eq!(header.federation(), FED);
        assert_eq!(header.doc(), DOC);
        assert_eq!(header.author(), author);
        assert_eq!(header.key(), &sk.public());
        assert_eq!(header.session_salt(), &SALT);
        assert_eq!(header.gov_heads(), &heads()[..]);
        assert_eq!(header.change_hashes(), &hashes(&all[1..])[..]);
        assert_eq!(header.actor(), env.actor());
        assert!(header
            .raw_changes()
            .eq(all[1..].iter().map(|c| c.raw_bytes())));
        // Dependencies and (actor, seq) are known before Automerge parses anything.
        assert_eq!(header.external_deps(), vec![Hash32(all[0].hash().0)]);
        assert_eq!(header.change_keys(), env.change_keys());
        assert_eq!(
            header.change_keys().iter().map(|k| k.1).collect::<Vec<_>>(),
            vec![2, 3]
        );
        let full = header.parse_changes().unwrap();
        assert_eq!(full, env);
        assert_eq!(full.changes(), env.changes());
        assert_eq!(SignedEnvelope::from_bytes(env.bytes(), FED).unwrap(), full);
    }

    /// Bytes Automerge's parser rejects pass stage 1 when they are framed, hashed and signed correctly: stage 1
    /// never ran Automerge on them. Stage 2 rejects them.
    #[test]
    fn stage_one_accepts_signed_garbage_ops_and_stage_two_rejects_them() {
        let (sk, author) = org(1);
        let actor = actor_id(&sk.public(), &DOC, &SALT);
        let good = own_changes(&sk, 1);
        let dep = Hash32([0xab; 32]);
        for garbage in [
            frame(CHUNK_TYPE_CHANGE, &garbage_ops(&actor, 2, &[dep])),
            scrambled_ops(automerge_actor(&sk.public(), &DOC, &SALT)),
        ] {
            assert!(automerge_rejects(&garbage));
            let header = header_for(
                &sk,
                author,
                vec![Hash32(good[0].hash().0), chunk_hash(&garbage)],
            );
            let bytes = forge_signed(&sk, &header, &[good[0].raw_bytes(), &garbage]);
            let verified = VerifiedHeader::from_bytes(&bytes, FED).unwrap();
            assert_eq!(verified.raw_changes().nth(1), Some(&garbage[..]));
            assert_eq!(verified.change_keys()[1].2, chunk_hash(&garbage));
            let r = verified.parse_changes();
            assert!(
                matches!(r, Err(EnvelopeError::MalformedChange { index: 1, .. })),
                "{r:?}"
            );
            assert_eq!(
                SignedEnvelope::from_bytes(&bytes, FED).map(|_| ()),
                r.map(|_| ())
            );
        }
        // The front of the garbage change is read without Automerge.
        let garbage = frame(CHUNK_TYPE_CHANGE, &garbage_ops(&actor, 2, &[dep]));
        let header = header_for(&sk, author, vec![chunk_hash(&garbage)]);
        let verified =
            VerifiedHeader::from_bytes(&forge_signed(&sk, &header, &[&garbage]), FED).unwrap();
        assert_eq!(verified.external_deps(), vec![dep]);
        assert_eq!(
            verified.change_keys(),
            vec![(actor, 2, chunk_hash(&garbage))]
        );
    }

    /// Each rejection below comes from stage 1 on a change Automerge cannot parse, so none of them needed
    /// Automerge: had it run first, the error would have been its `MalformedChange`.
    #[test]
    fn stage_one_rejects_forgeries_without_automerge() {
        let (sk, author) = org(1);
        let (other, _) = org(2);
        let actor = actor_id(&sk.public(), &DOC, &SALT);
        let garbage = frame(CHUNK_TYPE_CHANGE, &garbage_ops(&actor, 1, &[]));
        assert!(automerge_rejects(&garbage));
        let stage1 = |header: &[u8], sig: &[u8; 64], change: &[u8]| {
            VerifiedHeader::from_bytes(&forge(header, sig, &[change]), FED)
        };

        // Wrong hash: the header signs another change.
        let hb = header_for(&sk, author, vec![Hash32([0x11; 32])]).encode();
        assert_eq!(
            stage1(&hb, &sk.sign(Domain::ChangeEnvelope, &hb), &garbage),
            Err(EnvelopeError::HashMismatch { index: 0 })
        );
        // One byte of the change flipped, the checksum fixed up to match: still not the signed hash.
        let mut data = check_chunk_framing(&garbage).unwrap().data.to_vec();
        let last = data.len() - 1;
        data[last] ^= 1;
        let tampered = frame(CHUNK_TYPE_CHANGE, &data);
        let hb = header_for(&sk, author, vec![chunk_hash(&garbage)]).encode();
        assert_eq!(
            stage1(&hb, &sk.sign(Domain::ChangeEnvelope, &hb), &tampered),
            Err(EnvelopeError::HashMismatch { index: 0 })
        );

        // Forged signature: right hash, signed by another key or with one bit flipped.
        assert_eq!(
            stage1(&hb, &other.sign(Domain::ChangeEnvelope, &hb), &garbage),
            Err(EnvelopeError::BadSignature)
        );
        let mut sig = sk.sign(Domain::ChangeEnvelope, &hb);
        sig[0] ^= 1;
        assert_eq!(
            stage1(&hb, &sig, &garbage),
            Err(EnvelopeError::BadSignature)
        );
        assert!(stage1(&hb, &sk.sign(Domain::ChangeEnvelope, &hb), &garbage).is_ok());

        // Foreign actor: the actor at the front of the chunk is not the derived one.
        let other_actor = actor_id(&other.public(), &DOC, &SALT);
        let foreign = frame(CHUNK_TYPE_CHANGE, &garbage_ops(&other_actor, 1, &[]));
        assert!(automerge_rejects(&foreign));
        let hb = header_for(&sk, author, vec![chunk_hash(&foreign)]).encode();
        assert_eq!(
            stage1(&hb, &sk.sign(Domain::ChangeEnvelope, &hb), &foreign),
            Err(EnvelopeError::ForeignActor { index: 0 })
        );

        // Compressed: a deflate stream that is not one, framed and hashed correctly. Automerge would try to
        // inflate it; stage 1 refuses the chunk type.
        let bomb = frame(CHUNK_TYPE_COMPRESSED_CHANGE, &[0xff; 64]);
        assert!(automerge_rejects(&bomb));
        let hb = header_for(&sk, author, vec![chunk_hash(&bomb)]).encode();
        assert_eq!(
            stage1(&hb, &sk.sign(Domain::ChangeEnvelope, &hb), &bomb),
            Err(EnvelopeError::MalformedChange {
                index: 0,
                reason: "compressed changes are not accepted".into()
            })
        );
    }

    /// The counts and lengths at the front of a change come from the sender: they are checked against the bytes
    /// present before anything is allocated or read.
    #[test]
    fn stage_one_does_not_trust_counts_in_the_change_front() {
        let (sk, author) = org(1);
        let actor = actor_id(&sk.public(), &DOC, &SALT);
        let mut huge_deps = uleb(u64::MAX);
        huge_deps.extend_from_slice(&[0; 64]);
        let mut huge_actor = uleb(0);
        huge_actor.extend(uleb(u64::MAX));
        huge_actor.extend_from_slice(&actor);
        let mut no_seq = uleb(0);
        no_seq.extend(uleb(16));
        no_seq.extend_from_slice(&actor);
        let mut non_minimal_seq = no_seq.clone();
        non_minimal_seq.extend_from_slice(&[0x81, 0x00]);
        for (data, reason) in [
            (vec![], "malformed dependency count"),
            (huge_deps, "dependencies are cut off"),
            (huge_actor, "actor id is cut off"),
            (no_seq, "malformed seq"),
            (non_minimal_seq, "malformed seq"),
        ] {
            let chunk = frame(CHUNK_TYPE_CHANGE, &data);
            let header = header_for(&sk, author, vec![chunk_hash(&chunk)]);
            assert_eq!(
                VerifiedHeader::from_bytes(&forge_signed(&sk, &header, &[&chunk]), FED),
                Err(EnvelopeError::MalformedChange {
                    index: 0,
                    reason: reason.into()
                }),
                "{reason}"
            );
        }
    }

    /// Stage 2 re-checks what stage 1 established, against Automerge's own reading (defence in depth: the two
    /// readers must never disagree).
    #[test]
    fn stage_two_cross_checks_stage_one() {
        let (sk, author) = org(1);
        let env = sealed(&sk, author, 2);
        let fresh = || VerifiedHeader::from_bytes(env.bytes(), FED).unwrap();
        let disagree = Err(EnvelopeError::MalformedChange {
            index: 1,
            reason: "automerge reads the change's seq or dependencies differently".into(),
        });

        let mut h = fresh();
        h.changes[1].facts.seq += 1;
        assert_eq!(h.parse_changes(), disagree);
        let mut h = fresh();
        h.changes[1].facts.deps.clear();
        assert_eq!(h.parse_changes(), disagree);
        let mut h = fresh();
        h.changes[1].facts.deps.push(Hash32([0; 32]));
        assert_eq!(h.parse_changes(), disagree);
        let mut h = fresh();
        h.header.change_hashes[1].0[31] ^= 1;
        assert_eq!(
            h.parse_changes(),
            Err(EnvelopeError::HashMismatch { index: 1 })
        );
        let mut h = fresh();
        h.header.session_salt[0] ^= 1;
        assert_eq!(
            h.parse_changes(),
            Err(EnvelopeError::ForeignActor { index: 0 })
        );
        assert_eq!(fresh().parse_changes(), Ok(env));
    }

    #[test]
    fn leb128_reading_follows_automerge() {
        let read = |b: &[u8]| {
            let mut i = b;
            read_uleb128(&mut i).map(|v| (v, i.len()))
        };
        assert_eq!(read(&[0x00]), Ok((0, 0)));
        assert_eq!(read(&[0x7f, 0x01]), Ok((127, 1)));
        assert_eq!(read(&[0x80, 0x01]), Ok((128, 0)));
        assert_eq!(read(&uleb(u64::MAX)), Ok((u64::MAX, 0)));
        assert_eq!(uleb(u64::MAX).len(), 10);
        for v in [1u64, 300, 1 << 35, (1 << 63) + 5] {
            assert_eq!(read(&uleb(v)), Ok((v, 0)));
        }
        let mut too_large = vec![0xff; 9];
        too_large.push(0x02);
        assert_eq!(read(&too_large), Err(Uleb128Error::TooLarge));
        let mut eleven = vec![0x80; 10];
        eleven.push(0x00);
        assert_eq!(read(&eleven), Err(Uleb128Error::TooLarge));
        assert_eq!(read(&[0x80, 0x00]), Err(Uleb128Error::NonMinimal));
        assert_eq!(read(&[0xff, 0x80, 0x00]), Err(Uleb128Error::NonMinimal));
        assert_eq!(read(&[]), Err(Uleb128Error::CutOff));
        assert_eq!(read(&[0x80]), Err(Uleb128Error::CutOff));
    }
}
