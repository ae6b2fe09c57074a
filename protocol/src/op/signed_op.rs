//! The op body and the signed op: the canonical encoding of everything an op says, the rules about one op
//! alone, and the op as received (its exact signed bytes, their id, and the decoded body).

use super::payload::{check_ascending, dec_id32, dec_ids, enc_ids};
use super::{decode_signed_wrapper, sign_wrapped, OpError, OpKind, VERSION};
use crate::cbor::Encoder;
use crate::crypto::{Domain, PublicKey, SecretKey, SIGNATURE_LEN};
use crate::envelope::wrapper::{open_versioned_body, read_signed_front};
use crate::ids::{FederationId, OpId, OrgId};
use crate::limits::{MAX_OP_BYTES, MAX_PARENTS, MAX_TIMESTAMP_MS};
use std::fmt;
use std::sync::Arc;

/// Everything an op says, before it is signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpBody {
    /// `None` only for the genesis op, whose own hash is the federation id.
    pub federation: Option<FederationId>,
    pub author: OrgId,
    pub key: PublicKey,
    /// Per-author sequence number, starting at 1; each op's predecessor by the same author is in its history.
    pub seq: u64,
    /// The heads the author had seen: sorted ascending, unique.
    pub parents: Vec<OpId>,
    /// The author's clock. Informational only: no rule reads it.
    pub timestamp_ms: u64,
    pub kind: OpKind,
}

impl OpBody {
    /// The canonical encoding of the body.
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Encoder::new();
        e.map(8 + self.federation.is_some() as usize);
        e.key(0).u64(VERSION);
        if let Some(f) = &self.federation {
            e.key(1).bytes(&f.0);
        }
        e.key(2).bytes(&self.author.0);
        e.key(3).bytes(self.key.as_bytes());
        e.key(4).u64(self.seq);
        e.key(5);
        enc_ids(&mut e, &self.parents);
        e.key(6).u64(self.timestamp_ms);
        e.key(7).u64(self.kind.tag());
        e.key(8);
        self.kind.encode_payload(&mut e);
        e.into_bytes()
    }

    fn decode(bytes: &[u8], nested: bool) -> Result<Self, OpError> {
        let (mut d, mut m) = open_versioned_body(bytes, VERSION)?;
        let federation = if m.optional(&mut d, 1)? {
            Some(FederationId(dec_id32(&mut d, "federation")?))
        } else {
            None
        };
        m.required(&mut d, 2)?;
        let author = OrgId(dec_id32(&mut d, "author")?);
        m.required(&mut d, 3)?;
        let key = PublicKey::from_bytes(&d.fixed::<32>("public key")?).map_err(OpError::Key)?;
        m.required(&mut d, 4)?;
        let seq = d.u64()?;
        m.required(&mut d, 5)?;
        let parents = dec_ids(&mut d, "parents", MAX_PARENTS)?;
        check_ascending(&parents, "parents")?;
        m.required(&mut d, 6)?;
        let timestamp_ms = d.u64()?;
        m.required(&mut d, 7)?;
        let tag = d.u64()?;
        m.required(&mut d, 8)?;
        let kind = OpKind::decode_payload(tag, &mut d, nested)?;
        m.end()?;
        d.finish()?;
        let body = OpBody {
            federation,
            author,
            key,
            seq,
            parents: parents.into_iter().map(OpId).collect(),
            timestamp_ms,
            kind,
        };
        body.check_structure()?;
        Ok(body)
    }

    /// Rules about one op alone.
    fn check_structure(&self) -> Result<(), OpError> {
        if self.seq == 0 {
            return Err(OpError::Structure("sequence numbers start at 1"));
        }
        if self.timestamp_ms > MAX_TIMESTAMP_MS {
            return Err(OpError::Structure("timestamp beyond year 2200"));
        }
        match &self.kind {
            OpKind::Genesis(g) => {
                if self.federation.is_some() || !self.parents.is_empty() || self.seq != 1 {
                    return Err(OpError::Structure(
                        "a genesis has no federation, no parents and seq 1",
                    ));
                }
                let convener = g.secretariat.iter().find(|s| s.id() == self.author).ok_or(
                    OpError::Structure("the genesis author is one of the secretariat"),
                )?;
                if convener.body().key != self.key {
                    return Err(OpError::Structure(
                        "the genesis is signed with the convener's inception key",
                    ));
                }
            }
            other => {
                if self.federation.is_none() || self.parents.is_empty() {
                    return Err(OpError::Structure(
                        "every op but the genesis names its federation and parents",
                    ));
                }
                if let OpKind::OrgInception(rec) = other {
                    if rec.id() != self.author || rec.body().key != self.key || self.seq != 1 {
                        return Err(OpError::Structure(
                            "an inception op is seq 1 by the organisation it creates, signed with its key",
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// Canonicalises, signs and checks the op as a peer will: what nodes use to make every op they sign.
    ///
    /// The kind's lists are put in their canonical form ([`OpKind::canonicalize`]) and the parents sorted and
    /// deduplicated; then the body is encoded and signed, and the signed bytes go through the very decoder every
    /// peer runs ([`SignedOp::from_bytes`]: strict decoding, the structural checks of one op, the signature). If
    /// that decoder refuses them, so does `seal`, with the decoder's reason, and the op must not be stored or sent:
    /// a peer would refuse it and penalise the sender. The op returned is the one decoded from the signed bytes.
    pub fn seal(mut self, secret: &SecretKey) -> Result<SignedOp, OpError> {
        if secret.public() != self.key {
            return Err(OpError::Structure("an op is signed with the key it names"));
        }
        self.kind.canonicalize();
        self.parents.sort();
        self.parents.dedup();
        let signed = self.sign(secret);
        SignedOp::from_bytes(signed.bytes())
    }

    /// Signs the body as it is, without canonicalising or checking it: the raw signer that tests and forgery
    /// fixtures use to build ops a peer refuses. Nodes use [`OpBody::seal`]. The secret key must be the body's key.
    pub fn sign(self, secret: &SecretKey) -> SignedOp {
        assert_eq!(
            secret.public(),
            self.key,
            "an op is signed with the key it names"
        );
        let body = self.encode();
        let (bytes, sig) = sign_wrapped(secret, Domain::GovernanceOp, &body);
        // Re-reading our own wrapper only locates the body; it cannot fail on bytes we just encoded.
        let body_range = read_signed_front(&bytes, 2, "body", MAX_OP_BYTES)
            .map(|front| front.signed)
            .unwrap_or((0, 0));
        SignedOp {
            id: OpId::of_bytes(&bytes),
            bytes,
            body_range,
            signature: sig,
            body: self,
        }
    }
}

/// A governance op as received: the exact signed bytes, their id, and the decoded body.
///
/// Holding a `SignedOp` means the bytes decoded strictly and passed the structural checks; it does **not** mean
/// the signature was verified — call [`SignedOp::verify_signature`] (the replay does, for every op it accepts).
#[derive(Clone)]
pub struct SignedOp {
    bytes: Arc<[u8]>,
    id: OpId,
    body_range: (usize, usize),
    signature: [u8; SIGNATURE_LEN],
    body: OpBody,
}

impl PartialEq for SignedOp {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id && self.bytes == other.bytes
    }
}
impl Eq for SignedOp {}

impl fmt::Debug for SignedOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}({:?} by {:?} #{})",
            self.body.kind.name(),
            self.id,
            self.body.author,
            self.body.seq
        )
    }
}

impl SignedOp {
    /// Strictly decodes signed op bytes and checks the op's structure. Does not verify the signature.
    pub fn decode(bytes: &[u8]) -> Result<Self, OpError> {
        Self::decode_inner(bytes, false)
    }

    pub(super) fn decode_inner(bytes: &[u8], nested: bool) -> Result<Self, OpError> {
        if bytes.len() > MAX_OP_BYTES {
            return Err(OpError::TooLarge {
                what: "op",
                len: bytes.len(),
                max: MAX_OP_BYTES,
            });
        }
        let (body_range, signature) = decode_signed_wrapper(bytes, MAX_OP_BYTES)?;
        let body = OpBody::decode(&bytes[body_range.0..body_range.1], nested)?;
        Ok(Self {
            bytes: bytes.into(),
            id: OpId::of_bytes(bytes),
            body_range,
            signature,
            body,
        })
    }

    /// Decodes and verifies the signature: the whole check that needs no other op.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, OpError> {
        let op = Self::decode(bytes)?;
        op.verify_signature()?;
        Ok(op)
    }

    /// Strict ed25519 verification of the signature over the exact body bytes received.
    pub fn verify_signature(&self) -> Result<(), OpError> {
        self.body
            .key
            .verify(Domain::GovernanceOp, self.body_bytes(), &self.signature)
            .map_err(|_| OpError::BadSignature)
    }

    pub fn id(&self) -> OpId {
        self.id
    }

    /// The exact signed bytes (what is stored, sent and hashed).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The body bytes the signature covers.
    pub fn body_bytes(&self) -> &[u8] {
        &self.bytes[self.body_range.0..self.body_range.1]
    }

    pub fn signature(&self) -> &[u8; SIGNATURE_LEN] {
        &self.signature
    }

    pub fn body(&self) -> &OpBody {
        &self.body
    }

    pub fn author(&self) -> OrgId {
        self.body.author
    }

    pub fn seq(&self) -> u64 {
        self.body.seq
    }

    pub fn parents(&self) -> &[OpId] {
        &self.body.parents
    }

    pub fn kind(&self) -> &OpKind {
        &self.body.kind
    }
}
