//! The signed header of an envelope ([`ChangeEnvelope`]): everything the signature covers, its canonical
//! encoding and strict decoding, the rules about the header alone, and sealing a batch of local changes.

use super::verified::{change_ops, check_envelope_ops, check_parsed, inspect_change, RawChange};
use super::wrapper::{decode_wrapper, open_versioned_body, write_signed_front};
use super::{
    actor_id, EnvelopeError, SignedEnvelope, VerifiedHeader, ACTOR_ID_LEN, SESSION_SALT_LEN,
    VERSION,
};
use crate::cbor::{DecodeError, Encoder};
use crate::crypto::{Domain, PublicKey, SecretKey};
use crate::ids::{DocId, EnvelopeId, FederationId, Hash32, OpId, OrgId};
use crate::limits::{MAX_CHANGES_PER_ENVELOPE, MAX_CHANGE_BYTES, MAX_ENVELOPE_BYTES, MAX_HEADS};

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

    pub(super) fn decode(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        let (mut d, mut m) = open_versioned_body(bytes, VERSION)?;
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
            let mut fact = inspect_change(index, raw, &signed, &actor)?;
            fact.ops = change_ops(index, raw)?;
            check_parsed(index, change, raw, &signed, &fact, &actor)?;
            facts.push(fact);
        }
        check_envelope_ops(&facts)?;
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
        write_signed_front(&mut e, 3, &header_bytes, &signature)
            .key(2)
            .array(changes.len());
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
