//! `gov/ops`, the op log file: every governance op of the closing point's history but the genesis, each as its
//! length and its signed bytes, in an order in which every op comes after its parents.
//!
//! Reading it is bounded before anything is decoded (record size, record count), and decoding and verifying the
//! records is spread over threads because it is most of what the verifier spends its time on.

use super::closing::ReplayError;
use super::verify::Problem;
use crate::gov::{par_map, VerifiedOp};
use crate::limits::{MAX_BUNDLE_OPS, MAX_OP_BYTES};
use crate::op::{OpError, SignedOp};

/// Why `gov/ops` could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpsFileError {
    #[error("truncated at byte {0}")]
    Truncated(usize),
    #[error("record at byte {at} is {len} bytes, more than {MAX_OP_BYTES}")]
    TooLarge { at: usize, len: usize },
    #[error("more than {MAX_BUNDLE_OPS} ops")]
    TooMany,
    #[error("op #{index}: {error}")]
    Op { index: usize, error: OpError },
}

/// `gov/ops`: for each op, its length as a 4-byte big-endian integer, then its signed bytes.
pub fn encode_ops<'a>(ops: impl IntoIterator<Item = &'a SignedOp>) -> Vec<u8> {
    let mut out = Vec::new();
    for op in ops {
        out.extend_from_slice(&(op.bytes().len() as u32).to_be_bytes());
        out.extend_from_slice(op.bytes());
    }
    out
}

/// Splits `gov/ops` into its records, checking lengths; nothing is decoded.
pub(super) fn split_ops(bytes: &[u8]) -> Result<Vec<&[u8]>, OpsFileError> {
    let mut records = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let Some(len) = bytes.get(at..at + 4) else {
            return Err(OpsFileError::Truncated(at));
        };
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        if len > MAX_OP_BYTES {
            return Err(OpsFileError::TooLarge { at, len });
        }
        let Some(op) = bytes.get(at + 4..at + 4 + len) else {
            return Err(OpsFileError::Truncated(at));
        };
        if records.len() >= MAX_BUNDLE_OPS {
            return Err(OpsFileError::TooMany);
        }
        records.push(op);
        at += 4 + len;
    }
    Ok(records)
}

/// Strictly decodes `gov/ops` (signatures not verified).
pub fn decode_ops(bytes: &[u8]) -> Result<Vec<SignedOp>, OpsFileError> {
    split_ops(bytes)?
        .into_iter()
        .enumerate()
        .map(|(index, r)| SignedOp::decode(r).map_err(|error| OpsFileError::Op { index, error }))
        .collect()
}

/// Decodes and strictly verifies `gov/ops` records on up to `threads` threads (decoding validates every key, so
/// it is worth spreading too); results in file order, the first failure in file order is returned.
pub(super) fn decode_and_verify(
    records: &[&[u8]],
    threads: usize,
) -> Result<Vec<VerifiedOp>, Box<Problem>> {
    let one = |index: usize, r: &[u8]| -> Result<VerifiedOp, Box<Problem>> {
        let op = SignedOp::decode(r)
            .map_err(|error| Box::new(Problem::OpsFile(OpsFileError::Op { index, error })))?;
        let id = op.id();
        op.verify()
            .map_err(|error| Box::new(Problem::Replay(ReplayError::Signature { op: id, error })))
    };
    par_map(records.to_vec(), threads, one)
        .into_iter()
        .collect()
}
