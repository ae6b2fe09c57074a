//! Verified ops: the replay accepts only a [`VerifiedOp`], and only signature verification makes one, so no
//! unverified op can reach the DAG by mistake. [`verify_all`] spreads the verification of many ops over threads.

use crate::ids::OpId;
use crate::op::{OpError, SignedOp};

/// A signed op whose signature has been verified. Only [`SignedOp::verify`] and [`verify_all`] make one, so
/// the replay can never be handed an unverified op by mistake.
#[derive(Debug, Clone)]
pub struct VerifiedOp(pub(super) SignedOp);

impl VerifiedOp {
    pub fn op(&self) -> &SignedOp {
        &self.0
    }

    pub fn into_inner(self) -> SignedOp {
        self.0
    }
}

impl SignedOp {
    /// Verifies the signature, producing the only kind of op the replay accepts.
    pub fn verify(self) -> Result<VerifiedOp, OpError> {
        self.verify_signature()?;
        Ok(VerifiedOp(self))
    }
}

/// Verifies many ops on `threads` threads (strict verification, one signature each; see `docs/ARCHITECTURE.md`
/// for why batch verification is not used). Results are in input order.
pub fn verify_all(ops: Vec<SignedOp>, threads: usize) -> Vec<Result<VerifiedOp, (OpId, OpError)>> {
    let threads = threads.clamp(1, 64);
    if threads == 1 || ops.len() < 64 {
        return ops.into_iter().map(|op| op.verify_with_id()).collect();
    }
    let chunk = ops.len().div_ceil(threads);
    let mut chunks: Vec<Vec<SignedOp>> = Vec::with_capacity(threads);
    let mut it = ops.into_iter();
    loop {
        let c: Vec<SignedOp> = it.by_ref().take(chunk).collect();
        if c.is_empty() {
            break;
        }
        chunks.push(c);
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|c| {
                s.spawn(move || {
                    c.into_iter()
                        .map(|op| op.verify_with_id())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| match h.join() {
                Ok(v) => v,
                // A panic inside ed25519 verification would be a bug in the library; surface it.
                Err(p) => std::panic::resume_unwind(p),
            })
            .collect()
    })
}

impl SignedOp {
    fn verify_with_id(self) -> Result<VerifiedOp, (OpId, OpError)> {
        let id = self.id();
        self.verify().map_err(|e| (id, e))
    }
}
