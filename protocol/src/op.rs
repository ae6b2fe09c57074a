//! Signed governance ops and organisation inception records: their types, their canonical encoding and their
//! structural checks (everything that can be said about one op without looking at any other).
//!
//! Wire form of an op (see `docs/protocol.md` for the full table):
//!
//! ```text
//! SignedOp = map { 0: body (byte string: the canonical OpBody), 1: signature (64 bytes) }
//! OpBody   = map { 0: version = 1, 1: federation id (absent only in Genesis), 2: author OrgId, 3: public key,
//!                  4: seq, 5: parents [OpId] (ascending, unique), 6: timestamp_ms, 7: kind, 8: payload map }
//! ```
//!
//! The signature covers `"wsis/v1/governance-op" || 0x00 || body` and the [`OpId`](crate::ids::OpId) is the
//! SHA-256 of the whole `SignedOp` bytes. The bytes are kept as received: nothing is ever re-encoded to be
//! verified or hashed.
//!
//! The parts, one file each under `op/`: `vocabulary` (stakeholder types, team codes, countries), `inception`
//! (the inception record), `kind` (the op kinds and their payload types), `payload` (how each kind is encoded
//! and strictly decoded) and `signed_op` (the op body and the signed op). Everything is re-exported here.

mod inception;
mod kind;
mod payload;
mod signed_op;
mod vocabulary;

pub use inception::{Inception, SignedInception};
pub use kind::{
    Attestation, ChairRole, DocKind, Genesis, MeetingKind, MotionKind, OpKind, Policy, Procedure,
    RevocableRole, Team,
};
pub use signed_op::{OpBody, SignedOp};
pub use vocabulary::{Country, StakeholderType, TeamCode};

use crate::cbor::{DecodeError, Encoder};
use crate::crypto::{CryptoError, Domain, SecretKey, SIGNATURE_LEN};
use crate::envelope::wrapper::{read_signed_front, write_signed_front, SignedFront};
use std::sync::Arc;

/// The only wire version this crate speaks.
pub const VERSION: u64 = 1;

/// Why bytes are not a well-formed, correctly signed op or inception record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpError {
    #[error("{what} is {len} bytes, the limit is {max}")]
    TooLarge {
        what: &'static str,
        len: usize,
        max: usize,
    },
    #[error("malformed encoding: {0}")]
    Decode(#[from] DecodeError),
    #[error("bad public key: {0}")]
    Key(CryptoError),
    #[error("signature does not verify")]
    BadSignature,
    #[error("structurally invalid: {0}")]
    Structure(&'static str),
}

impl OpError {
    /// A stable machine code for the kind of refusal (kebab-case; the local API returns it, scripts match on it).
    pub fn code(&self) -> &'static str {
        match self {
            OpError::TooLarge { .. } => "op-too-large",
            OpError::Decode(_) => "malformed",
            OpError::Key(_) => "bad-key",
            OpError::BadSignature => "bad-signature",
            OpError::Structure(_) => "structurally-invalid",
        }
    }
}

/// `map { 0: body bytes, 1: signature }` → (where the body sits in `bytes`, signature).
fn decode_signed_wrapper(
    bytes: &[u8],
    max_body: usize,
) -> Result<((usize, usize), [u8; SIGNATURE_LEN]), DecodeError> {
    let SignedFront {
        decoder: d,
        map: m,
        signed,
        signature,
    } = read_signed_front(bytes, 2, "signed body", max_body)?;
    m.end()?;
    d.finish()?;
    Ok((signed, signature))
}

/// Signs `body` under `domain` and wraps it as `map { 0: body, 1: signature }`: the signed bytes and the signature.
fn sign_wrapped(
    secret: &SecretKey,
    domain: Domain,
    body: &[u8],
) -> (Arc<[u8]>, [u8; SIGNATURE_LEN]) {
    let signature = secret.sign(domain, body);
    let mut e = Encoder::new();
    write_signed_front(&mut e, 2, body, &signature);
    (e.into_bytes().into(), signature)
}

#[cfg(test)]
mod tests;
