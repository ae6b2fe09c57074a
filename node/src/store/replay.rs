//! Replaying the stored ops into a governance replica: what a node's start does and what `wsis store check`
//! repeats to list the ops the replay refuses. One function, so the check lists exactly what the start refuses.

use wsis_protocol::gov::{topological_order, Governance, InsertError};
use wsis_protocol::ids::{FederationId, OpId};
use wsis_protocol::op::SignedOp;

/// Why the stored ops give no replica at all.
#[derive(Debug)]
pub enum ReplayError {
    /// No op is stored.
    NoGenesis,
    /// The first op in topological order is not the federation's genesis.
    WrongGenesis { found: FederationId },
    /// The genesis does not verify or does not start a replica.
    BadGenesis(InsertError),
}

/// The replica of `stored` (any order) for `federation`, and each stored op it refuses with the reason.
pub fn replay_ops(
    stored: Vec<SignedOp>,
    federation: FederationId,
) -> Result<(Governance, Vec<(OpId, String)>), ReplayError> {
    let mut it = topological_order(stored).into_iter();
    let genesis = it.next().ok_or(ReplayError::NoGenesis)?;
    let found = FederationId(genesis.id().0);
    if found != federation {
        return Err(ReplayError::WrongGenesis { found });
    }
    let mut gov = genesis
        .verify()
        .map_err(InsertError::from)
        .and_then(Governance::new)
        .map_err(ReplayError::BadGenesis)?;
    let mut refused = Vec::new();
    for op in it {
        let id = op.id();
        // The store verified each op's signature on load; the replica checks it again through `verify`.
        let why = match op.verify() {
            Ok(v) => gov.insert(v).err().map(|e| e.to_string()),
            Err(e) => Some(e.to_string()),
        };
        if let Some(why) = why {
            refused.push((id, why));
        }
    }
    Ok((gov, refused))
}
