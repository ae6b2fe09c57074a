//! The two verified stages of an envelope: [`VerifiedHeader`] (stage 1, no Automerge code: header, signature,
//! change hashes, framing and actors) and [`SignedEnvelope`] (stage 2, each change parsed by Automerge and
//! cross-checked against stage 1), with the per-change checks each stage runs.

use super::chunk::{check_chunk_framing, read_change_prefix};
use super::wrapper::decode_wrapper;
use super::{ChangeEnvelope, EnvelopeError, ACTOR_ID_LEN};
use crate::chunk_cost::change_cost;
use crate::crypto::{Domain, SIGNATURE_LEN};
use crate::ids::{sha256, EnvelopeId, FederationId, Hash32};
use crate::limits::{MAX_CHANGE_OPS, MAX_CHANGE_PREDS, MAX_ENVELOPE_BYTES, MAX_ENVELOPE_OPS};
use std::fmt;
use std::sync::Arc;

/// What stage 1 reads from the front of one change, for the dependency and equivocation checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ChangeFacts {
    pub(super) seq: u64,
    pub(super) deps: Vec<Hash32>,
    /// Ops, as Automerge will count them, read from the column metadata ([`change_ops`]; 0 until then).
    pub(super) ops: u64,
}

/// One change after stage 1: where it is in the envelope, and its facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RawChange {
    pub(super) range: (usize, usize),
    pub(super) facts: ChangeFacts,
}

/// The stage-1 checks on one change chunk, without Automerge: framing, the checksum against our own SHA-256 of
/// the chunk (its Automerge hash; the checksum is outside the hash, so unchecked a relay could change it), that
/// hash against the `signed` one, and the actor read from the front of the data. Returns the change's seq and
/// dependencies.
pub(super) fn inspect_change(
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
    Ok(ChangeFacts { seq, deps, ops: 0 })
}

/// The ops one change chunk expands into, counted from its column metadata without expanding anything (the op
/// bomb), and checked against [`MAX_CHANGE_OPS`] and [`MAX_CHANGE_PREDS`]. Runs after the signature check: a
/// forgery is named as one, and a peer pays for this count only with signed bytes.
pub(super) fn change_ops(index: usize, bytes: &[u8]) -> Result<u64, EnvelopeError> {
    let malformed = |reason: String| EnvelopeError::MalformedChange { index, reason };
    let chunk = check_chunk_framing(bytes).map_err(|r| malformed(r.to_string()))?;
    let cost = change_cost(chunk.data).map_err(|e| malformed(e.to_string()))?;
    for (what, count, max) in [
        ("ops", cost.ops, MAX_CHANGE_OPS),
        ("predecessor references", cost.preds, MAX_CHANGE_PREDS),
    ] {
        if count > max {
            return Err(EnvelopeError::ChangeTooCostly {
                index,
                what,
                count,
                max,
            });
        }
    }
    Ok(cost.ops)
}

/// The ops of a whole envelope, checked against [`MAX_ENVELOPE_OPS`] (each change is already under its own cap,
/// so the sum cannot overflow).
pub(super) fn check_envelope_ops<'a>(
    facts: impl IntoIterator<Item = &'a ChangeFacts>,
) -> Result<(), EnvelopeError> {
    let count: u64 = facts.into_iter().map(|f| f.ops).sum();
    if count > MAX_ENVELOPE_OPS {
        return Err(EnvelopeError::EnvelopeTooCostly {
            count,
            max: MAX_ENVELOPE_OPS,
        });
    }
    Ok(())
}

/// The stage-2 checks on one change Automerge has parsed: it holds exactly the received bytes, and it agrees
/// with stage 1 on the hash, the actor, the seq and the dependencies (stage 1 already checked each of them; this
/// is defence in depth against the two readers disagreeing).
/// Automerge's change parser behind a panic firewall: on some hostile changes (an op counter past `u32::MAX` in a
/// key column, found by the `envelope_changes` fuzz target) it panics instead of returning an error.
pub(crate) fn parse_change(bytes: &[u8]) -> Result<automerge::Change, String> {
    match std::panic::catch_unwind(|| automerge::Change::try_from(bytes)) {
        Ok(parsed) => parsed.map_err(|e| e.to_string()),
        Err(_) => Err("automerge's change parser panicked on it".into()),
    }
}

pub(super) fn check_parsed(
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
    // The op count decides the op-bomb caps before Automerge runs; Automerge must count the same.
    if change.seq() != facts.seq || !same_deps || change.len() as u64 != facts.ops {
        return Err(EnvelopeError::MalformedChange {
            index,
            reason: "automerge reads the change's seq, dependencies or op count differently".into(),
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
    pub(super) bytes: Arc<[u8]>,
    pub(super) id: EnvelopeId,
    pub(super) header_range: (usize, usize),
    pub(super) signature: [u8; SIGNATURE_LEN],
    pub(super) header: ChangeEnvelope,
    pub(super) changes: Vec<RawChange>,
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
        for (index, change) in changes.iter_mut().enumerate() {
            change.facts.ops = change_ops(index, &bytes[change.range.0..change.range.1])?;
        }
        check_envelope_ops(changes.iter().map(|c| &c.facts))?;
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
        let actor = self.header.actor();
        let mut changes = Vec::with_capacity(self.changes.len());
        for (index, (raw, signed)) in self
            .changes
            .iter()
            .zip(&self.header.change_hashes)
            .enumerate()
        {
            let bytes = &self.bytes[raw.range.0..raw.range.1];
            let change = parse_change(bytes)
                .map_err(|reason| EnvelopeError::MalformedChange { index, reason })?;
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
    /// The ops the envelope's changes expand into, as Automerge counts them (read in stage 1 from the column
    /// metadata; each change is at most `MAX_CHANGE_OPS`, the envelope at most `MAX_ENVELOPE_OPS`).
    pub fn ops(&self) -> u64 {
        self.changes.iter().map(|c| c.facts.ops).sum()
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
        let actor = self.header.actor();
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
    pub(super) verified: VerifiedHeader,
    pub(super) changes: Vec<automerge::Change>,
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
    /// ([`VerifiedHeader::change_keys`]), and the governance check for the author at the cited heads.
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

    pub fn header(&self) -> &ChangeEnvelope {
        self.verified.header()
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
}
