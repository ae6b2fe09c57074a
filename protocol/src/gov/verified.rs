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
    par_map(ops, threads, |_, op| op.verify_with_id())
}

/// Maps `f` over `items` (with each item's index) on up to `threads` threads, at most 64, and on this thread alone
/// below 64 items; the results are in input order. Verifying signatures is most of what loading a replica or
/// checking a bundle costs, so both spread it this way.
pub(crate) fn par_map<T: Send, R: Send>(
    items: Vec<T>,
    threads: usize,
    f: impl Fn(usize, T) -> R + Sync,
) -> Vec<R> {
    let threads = threads.clamp(1, 64);
    if threads == 1 || items.len() < 64 {
        return items
            .into_iter()
            .enumerate()
            .map(|(i, t)| f(i, t))
            .collect();
    }
    let chunk = items.len().div_ceil(threads);
    let mut chunks: Vec<Vec<T>> = Vec::with_capacity(threads);
    let mut it = items.into_iter();
    loop {
        let c: Vec<T> = it.by_ref().take(chunk).collect();
        if c.is_empty() {
            break;
        }
        chunks.push(c);
    }
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .into_iter()
            .enumerate()
            .map(|(c, items)| {
                s.spawn(move || {
                    items
                        .into_iter()
                        .enumerate()
                        .map(|(i, t)| f(c * chunk + i, t))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| match h.join() {
                Ok(v) => v,
                // A panic in decoding or in ed25519 verification would be a bug in this crate or the library:
                // surface it.
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
