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
//! re-encoded. Each change is bound to the signature by its Automerge hash (SHA-256 of its chunk type, length and
//! data). The [`EnvelopeId`] is the SHA-256 of the whole signed bytes, which are kept exactly as received.
//!
//! The Automerge actor of every change must be [`actor_id`]`(key, doc, session_salt)`: an author cannot write
//! under another organisation's actor (their (actor, seq) space), and a node that picks a fresh salt per session
//! never reuses an (actor, seq) pair after a restart.
//!
//! A third party cannot change an envelope's bytes, and so its id, without breaking it: the CBOR is canonical,
//! signatures are strict (no `S + L`), and each change chunk must be uncompressed with a minimal length and a
//! correct checksum, so the signed hash fixes every byte of it.
//!
//! [`SignedEnvelope::from_bytes`] performs every check that needs nothing but the envelope. It does **not**
//! decide whether the author may write the document: after `from_bytes` the node must check the changes'
//! dependencies and equivocation ([`SignedEnvelope::change_keys`]), then call `Governance::may_write` (in
//! `gov.rs`) with the envelope's author, key, document and governance heads, and only then hand
//! [`SignedEnvelope::changes`] to `Automerge::apply_changes`.

use crate::cbor::{DecodeError, Decoder, Encoder};
use crate::crypto::{CryptoError, Domain, PublicKey, SecretKey, SIGNATURE_LEN};
use crate::ids::{sha256, DocId, EnvelopeId, FederationId, OpId, OrgId};
use crate::limits::{
    MAX_CHANGES_PER_ENVELOPE, MAX_CHANGE_BYTES, MAX_ENVELOPE_BYTES, MAX_HEADS, MAX_MAP_ENTRIES,
};
use crate::op::Hash32;
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
    /// governance check (`Governance::may_write`), not for this module.
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
    /// whole envelope must fit in [`MAX_ENVELOPE_BYTES`] ([`EnvelopeError::TooLarge`]: split the batch).
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
        for (index, change) in changes.iter().enumerate() {
            let raw = change.raw_bytes();
            if raw.len() > MAX_CHANGE_BYTES {
                return Err(EnvelopeError::TooLarge {
                    what: "change",
                    len: raw.len(),
                    max: MAX_CHANGE_BYTES,
                });
            }
            check_chunk(raw, change).map_err(|reason| EnvelopeError::MalformedChange {
                index,
                reason: reason.to_string(),
            })?;
            if change.actor_id().to_bytes() != actor.as_slice() {
                return Err(EnvelopeError::ForeignActor { index });
            }
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
        // Re-reading our own wrapper only locates the header; it cannot fail on bytes we just encoded.
        let wrapper = decode_wrapper(&bytes)?;
        Ok(SignedEnvelope {
            id: EnvelopeId::of_bytes(&bytes),
            header_range: wrapper.header,
            bytes: bytes.into(),
            signature,
            header,
            changes,
        })
    }
}

/// The parts of the outer map: where the header bytes are, the signature, and the raw change byte strings.
struct Wrapper<'a> {
    header: (usize, usize),
    signature: [u8; SIGNATURE_LEN],
    changes: Vec<&'a [u8]>,
}

/// `map { 0: header bytes, 1: signature, 2: [change bytes] }`, strictly.
fn decode_wrapper(bytes: &[u8]) -> Result<Wrapper<'_>, DecodeError> {
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
        d.bytes("change", MAX_CHANGE_BYTES)
    })?;
    m.end()?;
    d.finish()?;
    Ok(Wrapper {
        header,
        signature,
        changes,
    })
}

/// Checks the Automerge chunk framing before the bytes reach Automerge: the magic bytes, an **uncompressed**
/// change chunk (a compressed one would be inflated before any check, and many compressions of one change have
/// the same hash), and a minimal LEB128 length that covers exactly the rest of the bytes.
fn check_chunk_framing(bytes: &[u8]) -> Result<(), &'static str> {
    let (magic, rest) = bytes
        .split_first_chunk::<4>()
        .ok_or("too short for an automerge chunk")?;
    if *magic != AUTOMERGE_MAGIC {
        return Err("not an automerge chunk");
    }
    let (_checksum, rest) = rest
        .split_first_chunk::<4>()
        .ok_or("too short for an automerge chunk")?;
    let (&chunk_type, mut rest) = rest
        .split_first()
        .ok_or("too short for an automerge chunk")?;
    match chunk_type {
        CHUNK_TYPE_CHANGE => {}
        CHUNK_TYPE_COMPRESSED_CHANGE => return Err("compressed changes are not accepted"),
        _ => return Err("not a change chunk"),
    }
    let mut len: u64 = 0;
    let mut shift = 0u32;
    loop {
        let (&b, r) = rest.split_first().ok_or("chunk length is cut off")?;
        rest = r;
        if shift > 56 {
            return Err("chunk length is too large");
        }
        len |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            if b == 0 && shift > 0 {
                return Err("chunk length is not minimally encoded");
            }
            break;
        }
        shift += 7;
    }
    if len != rest.len() as u64 {
        return Err("chunk length does not match the change bytes");
    }
    Ok(())
}

/// The checks on one change's bytes beyond what Automerge's parser does: canonical framing, a checksum that
/// matches the hash (Automerge does not check it when parsing a single change, and the hash does not cover it),
/// and Automerge holding exactly these bytes.
fn check_chunk(bytes: &[u8], change: &automerge::Change) -> Result<(), &'static str> {
    check_chunk_framing(bytes)?;
    let hash = change.hash().0;
    if bytes.get(4..8) != hash.get(..4) {
        return Err("checksum does not match the change");
    }
    if change.raw_bytes() != bytes {
        return Err("change bytes are not in automerge's canonical form");
    }
    Ok(())
}

/// Parses one change from a peer: framing first, then Automerge's parser (which checks every op), then the
/// checksum and canonical form.
fn parse_change(bytes: &[u8]) -> Result<automerge::Change, String> {
    check_chunk_framing(bytes).map_err(str::to_string)?;
    let change = automerge::Change::try_from(bytes).map_err(|e| e.to_string())?;
    check_chunk(bytes, &change).map_err(str::to_string)?;
    Ok(change)
}

/// A verified change envelope: the exact signed bytes, their id, the decoded header and the parsed changes.
///
/// Holding a `SignedEnvelope` means every check that needs only the envelope passed (see
/// [`SignedEnvelope::from_bytes`]). It does **not** mean the author may write the document: the node must call
/// `Governance::may_write` before applying [`SignedEnvelope::changes`].
#[derive(Clone)]
pub struct SignedEnvelope {
    bytes: Arc<[u8]>,
    id: EnvelopeId,
    header_range: (usize, usize),
    signature: [u8; SIGNATURE_LEN],
    header: ChangeEnvelope,
    changes: Vec<automerge::Change>,
}

impl PartialEq for SignedEnvelope {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id && self.bytes == other.bytes
    }
}
impl Eq for SignedEnvelope {}

impl fmt::Debug for SignedEnvelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Envelope({:?} {:?} by {:?}, {} changes)",
            self.id,
            self.header.doc,
            self.header.author,
            self.changes.len()
        )
    }
}

impl SignedEnvelope {
    /// Decodes and verifies an envelope received from anywhere, in this order: size cap, strict decoding of the
    /// wrapper and header, the federation, as many changes as signed hashes, each change parses as an uncompressed
    /// canonical Automerge change whose hash is the one signed at its position, each change's actor is derived
    /// from the envelope's key, document and salt, and the strict signature over the exact header bytes.
    ///
    /// Not checked here (the node does it next): dependencies present, (actor, seq) equivocation against other
    /// envelopes ([`Self::change_keys`]), and `Governance::may_write` for the author at the cited heads.
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
        let mut changes = Vec::with_capacity(wrapper.changes.len());
        for (index, (raw, signed)) in wrapper
            .changes
            .iter()
            .zip(&header.change_hashes)
            .enumerate()
        {
            let change = parse_change(raw)
                .map_err(|reason| EnvelopeError::MalformedChange { index, reason })?;
            if change.hash().0 != signed.0 {
                return Err(EnvelopeError::HashMismatch { index });
            }
            changes.push(change);
        }
        let actor = header.actor();
        if let Some(index) = changes
            .iter()
            .position(|c| c.actor_id().to_bytes() != actor.as_slice())
        {
            return Err(EnvelopeError::ForeignActor { index });
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

    /// The signed change hashes, in batch order (the same order as [`Self::changes`]).
    pub fn change_hashes(&self) -> &[Hash32] {
        &self.header.change_hashes
    }

    /// The actor of every change in the envelope.
    pub fn actor(&self) -> [u8; ACTOR_ID_LEN] {
        self.header.actor()
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
        let actor = self.actor();
        self.changes
            .iter()
            .map(|c| (actor, c.seq(), Hash32(c.hash().0)))
            .collect()
    }

    /// The dependencies of the batch that are not in the batch itself, sorted and unique: what must already be
    /// accepted before these changes may be applied (otherwise park the envelope and fetch them by hash).
    pub fn external_deps(&self) -> Vec<Hash32> {
        let mut own = self.header.change_hashes.clone();
        own.sort_unstable();
        let mut deps: Vec<Hash32> = self
            .changes
            .iter()
            .flat_map(|c| c.deps().iter().map(|h| Hash32(h.0)))
            .filter(|h| own.binary_search(h).is_err())
            .collect();
        deps.sort_unstable();
        deps.dedup();
        deps
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
}
