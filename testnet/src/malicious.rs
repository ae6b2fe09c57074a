//! The malicious node (filled in below).
use crate::Testnet;
use anyhow::{bail, Result};

/// Pushes forged and unauthorised data at every honest node; returns how many items were pushed.
pub fn attack(_net: &Testnet, _seed: u64) -> Result<u64> {
    bail!("the malicious node is not available yet")
}
