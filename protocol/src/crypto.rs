//! Keys and signatures: ed25519 with domain separation and strict verification only.
//!
//! Every signature covers `DOMAIN_TAG || 0x00 || message`, where the tag names what is being signed
//! ([`Domain`]). A signature made for a governance op therefore never verifies as a change envelope, an inception
//! record or a bundle manifest. Verification is always `verify_strict` (rejects small-order `R`, non-canonical `S`
//! and weak keys), and public keys are additionally required to be canonically encoded points that are not of small
//! order, so that every honest node and the offline verifier accept exactly the same set of signatures.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use std::fmt;

/// Public key length in bytes.
pub const PUBLIC_KEY_LEN: usize = 32;
/// Signature length in bytes.
pub const SIGNATURE_LEN: usize = 64;

/// What a signature is for. The tag is part of the signed bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Domain {
    /// An organisation's self-signed inception record.
    OrgInception,
    /// A governance op.
    GovernanceOp,
    /// A batch of Automerge changes to one document.
    ChangeEnvelope,
    /// The manifest of a stocktaking bundle.
    BundleManifest,
}

impl Domain {
    /// The domain-separation tag.
    pub fn tag(self) -> &'static [u8] {
        match self {
            Domain::OrgInception => b"wsis/v1/org-inception",
            Domain::GovernanceOp => b"wsis/v1/governance-op",
            Domain::ChangeEnvelope => b"wsis/v1/change-envelope",
            Domain::BundleManifest => b"wsis/v1/bundle-manifest",
        }
    }

    /// The exact bytes that are signed for `message` in this domain.
    pub fn preimage(self, message: &[u8]) -> Vec<u8> {
        let tag = self.tag();
        let mut out = Vec::with_capacity(tag.len() + 1 + message.len());
        out.extend_from_slice(tag);
        out.push(0);
        out.extend_from_slice(message);
        out
    }
}

/// Why a key or signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    #[error("public key is not a valid curve point")]
    InvalidKey,
    #[error("public key is not canonically encoded")]
    NonCanonicalKey,
    #[error("public key is of small order (weak)")]
    WeakKey,
    #[error("signature does not verify")]
    BadSignature,
}

/// A validated ed25519 public key: a canonical encoding of a point that is not of small order. The decompressed
/// point is kept so verification never decompresses the same key twice.
#[derive(Clone, Copy)]
pub struct PublicKey {
    bytes: [u8; PUBLIC_KEY_LEN],
    key: VerifyingKey,
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}
impl Eq for PublicKey {}
impl std::hash::Hash for PublicKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.bytes.hash(state)
    }
}
impl PartialOrd for PublicKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for PublicKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.bytes.cmp(&other.bytes)
    }
}

/// Is the encoded y coordinate below p = 2^255 - 19? (The sign bit is the top bit and is not part of y.) Every y
/// at or above p is a second encoding of a smaller y; the only other non-canonical encodings set the sign bit on
/// x = 0, which happens only for the two small-order points y = 1 and y = -1, rejected as weak anyway.
fn y_is_canonical(bytes: &[u8; PUBLIC_KEY_LEN]) -> bool {
    let mut y = *bytes;
    y[31] &= 0x7f;
    // p = 0x7fff…ffed in little-endian: y >= p iff y[31] == 0x7f, y[1..31] all 0xff and y[0] >= 0xed.
    !(y[31] == 0x7f && y[1..31].iter().all(|&b| b == 0xff) && y[0] >= 0xed)
}

impl PublicKey {
    /// Validates raw key bytes.
    pub fn from_bytes(bytes: &[u8; PUBLIC_KEY_LEN]) -> Result<Self, CryptoError> {
        if !y_is_canonical(bytes) {
            return Err(CryptoError::NonCanonicalKey);
        }
        let key = VerifyingKey::from_bytes(bytes).map_err(|_| CryptoError::InvalidKey)?;
        if key.is_weak() {
            return Err(CryptoError::WeakKey);
        }
        Ok(Self { bytes: *bytes, key })
    }

    pub fn as_bytes(&self) -> &[u8; PUBLIC_KEY_LEN] {
        &self.bytes
    }

    /// Strict verification of `signature` over `message` in `domain`.
    pub fn verify(
        &self,
        domain: Domain,
        message: &[u8],
        signature: &[u8; SIGNATURE_LEN],
    ) -> Result<(), CryptoError> {
        verify_raw(&self.key, &domain.preimage(message), signature)
    }

    /// Strict verification of a signature over raw bytes (no domain tag). Only for test vectors and for formats
    /// whose own framing is the domain separation (SSHSIG).
    pub fn verify_raw(
        &self,
        message: &[u8],
        signature: &[u8; SIGNATURE_LEN],
    ) -> Result<(), CryptoError> {
        verify_raw(&self.key, message, signature)
    }
}

pub(crate) fn verify_raw(
    key: &VerifyingKey,
    message: &[u8],
    signature: &[u8; SIGNATURE_LEN],
) -> Result<(), CryptoError> {
    let sig = Signature::from_bytes(signature);
    key.verify_strict(message, &sig)
        .map_err(|_| CryptoError::BadSignature)
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ed25519:{}", &hex::encode(self.bytes)[..16])
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ed25519:{}", hex::encode(self.bytes))
    }
}

/// An organisation's signing key. The secret never leaves this type except through [`SecretKey::to_seed`], which
/// exists so the node can write the key file.
pub struct SecretKey(SigningKey);

impl SecretKey {
    /// The key for a 32-byte seed (the key file's content; fixed seeds give the golden test vectors).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self(SigningKey::from_bytes(seed))
    }

    pub fn to_seed(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    pub fn public(&self) -> PublicKey {
        let key = self.0.verifying_key();
        PublicKey {
            bytes: key.to_bytes(),
            key,
        }
    }

    /// Signs `message` in `domain`.
    pub fn sign(&self, domain: Domain, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.0.sign(&domain.preimage(message)).to_bytes()
    }

    /// Signs raw bytes with no domain tag: only for formats whose framing is the domain separation (SSHSIG).
    pub fn sign_raw(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.0.sign(message).to_bytes()
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({:?})", self.public())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_for_one_domain_does_not_verify_in_another() {
        let k = SecretKey::from_seed(&[1; 32]);
        let sig = k.sign(Domain::GovernanceOp, b"payload");
        let pk = k.public();
        assert_eq!(pk.verify(Domain::GovernanceOp, b"payload", &sig), Ok(()));
        for d in [
            Domain::OrgInception,
            Domain::ChangeEnvelope,
            Domain::BundleManifest,
        ] {
            assert_eq!(
                pk.verify(d, b"payload", &sig),
                Err(CryptoError::BadSignature)
            );
        }
        assert_eq!(
            pk.verify_raw(b"payload", &sig),
            Err(CryptoError::BadSignature)
        );
    }

    #[test]
    fn small_order_and_non_canonical_keys_are_rejected() {
        // The identity point (small order).
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(PublicKey::from_bytes(&identity), Err(CryptoError::WeakKey));
        // The all-zero encoding is a point of order 4.
        assert_eq!(PublicKey::from_bytes(&[0; 32]), Err(CryptoError::WeakKey));
        // y = p + 1 is a non-canonical encoding of y = 1.
        let mut non_canonical = [0xffu8; 32];
        non_canonical[0] = 0xee;
        non_canonical[31] = 0x7f;
        assert_eq!(
            PublicKey::from_bytes(&non_canonical),
            Err(CryptoError::NonCanonicalKey)
        );
        // The same with the sign bit set, and y = p exactly.
        non_canonical[31] = 0xff;
        assert_eq!(
            PublicKey::from_bytes(&non_canonical),
            Err(CryptoError::NonCanonicalKey)
        );
        non_canonical[0] = 0xed;
        assert_eq!(
            PublicKey::from_bytes(&non_canonical),
            Err(CryptoError::NonCanonicalKey)
        );
        // y = p - 1 (that is, -2) is canonical; whether it is on the curve is decompression's business.
        non_canonical[0] = 0xec;
        non_canonical[31] = 0x7f;
        assert_ne!(
            PublicKey::from_bytes(&non_canonical),
            Err(CryptoError::NonCanonicalKey)
        );
    }

    #[test]
    fn s_at_or_above_the_group_order_is_rejected() {
        let k = SecretKey::from_seed(&[2; 32]);
        let mut sig = k.sign(Domain::GovernanceOp, b"m");
        // Add L to S (little-endian): S + L is a non-canonical scalar that would verify on lax implementations.
        const L: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut carry = 0u16;
        for i in 0..32 {
            let v = sig[32 + i] as u16 + L[i] as u16 + carry;
            sig[32 + i] = v as u8;
            carry = v >> 8;
        }
        assert_eq!(
            k.public().verify(Domain::GovernanceOp, b"m", &sig),
            Err(CryptoError::BadSignature)
        );
    }
}
