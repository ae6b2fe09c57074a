//! Integrity: bytes read back are checked exactly as if a peer had sent them (strict decoding, signature, key =
//! SHA-256 of the bytes, federation), and a failure names the tree and the key.

use wsis_protocol::envelope::SignedEnvelope;
use wsis_protocol::ids::{DocId, EnvelopeId, FederationId, OpId};
use wsis_protocol::op::{OpKind, SignedOp};

use super::{PeerRecord, StoreError, MAX_PEER_RECORD_BYTES, TREE_ENVELOPES, TREE_OPS, TREE_PEERS};

/// The federation an op belongs to: the one it names, or its own id for a genesis.
pub(super) fn op_federation(op: &SignedOp) -> FederationId {
    match (op.body().federation, op.kind()) {
        (Some(f), _) => f,
        (None, OpKind::Genesis(_)) => FederationId(op.id().0),
        // Structural checks make every other op name its federation; treat the impossible as the op's own id,
        // which matches no real federation.
        (None, _) => FederationId(op.id().0),
    }
}

/// How a key is shown in [`StoreError::Damaged`]: the id's own human form when it is 32 bytes, hex otherwise.
fn show_key(key: &[u8], as_id: fn([u8; 32]) -> String) -> String {
    match <[u8; 32]>::try_from(key) {
        Ok(k) => as_id(k),
        Err(_) => format!("0x{}", hex::encode(key)),
    }
}

fn show_op_key(key: &[u8]) -> String {
    show_key(key, |k| OpId(k).to_string())
}

pub(super) fn show_envelope_key(key: &[u8]) -> String {
    show_key(key, |k| EnvelopeId(k).to_string())
}

/// Checks stored op bytes exactly as if a peer had sent them, plus that they are stored under their own hash.
/// The hash is checked first: it is cheap, and a mismatch is the clearest account of what went wrong.
pub(super) fn verify_op(
    key: &[u8],
    bytes: &[u8],
    federation: Option<FederationId>,
) -> Result<SignedOp, StoreError> {
    let damaged = |reason: String| StoreError::Damaged {
        tree: TREE_OPS,
        key: show_op_key(key),
        reason,
    };
    if key.len() != 32 {
        return Err(damaged(format!("a key is 32 bytes, found {}", key.len())));
    }
    let id = OpId::of_bytes(bytes);
    if id.0 != key {
        return Err(damaged(format!(
            "the stored bytes hash to {id}, not to their key"
        )));
    }
    let op = SignedOp::from_bytes(bytes).map_err(|e| damaged(e.to_string()))?;
    if let Some(bound) = federation {
        let found = op_federation(&op);
        if found != bound {
            return Err(damaged(format!(
                "the op belongs to federation {found}, the store to {bound}"
            )));
        }
    }
    Ok(op)
}

pub(super) fn verify_envelope(
    key: &[u8],
    bytes: &[u8],
    federation: FederationId,
    doc: Option<DocId>,
) -> Result<SignedEnvelope, StoreError> {
    let damaged = |reason: String| StoreError::Damaged {
        tree: TREE_ENVELOPES,
        key: show_envelope_key(key),
        reason,
    };
    let id = EnvelopeId::of_bytes(bytes);
    if id.0 != key {
        return Err(damaged(format!(
            "the stored bytes hash to {id}, not to their key"
        )));
    }
    let envelope =
        SignedEnvelope::from_bytes(bytes, federation).map_err(|e| damaged(e.to_string()))?;
    if let Some(doc) = doc {
        if envelope.header().doc != doc {
            return Err(damaged(format!(
                "the envelope is for {}, but doc_index lists it under {doc}",
                envelope.header().doc
            )));
        }
    }
    Ok(envelope)
}

pub(super) fn decode_peer(key: &[u8], bytes: &[u8]) -> Result<PeerRecord, StoreError> {
    let damaged = |reason: String| StoreError::Damaged {
        tree: TREE_PEERS,
        key: format!("0x{}", hex::encode(key)),
        reason,
    };
    if bytes.len() > MAX_PEER_RECORD_BYTES {
        return Err(damaged(format!(
            "the record is {} bytes, the limit is {MAX_PEER_RECORD_BYTES}",
            bytes.len()
        )));
    }
    serde_json::from_slice(bytes).map_err(|e| damaged(e.to_string()))
}
