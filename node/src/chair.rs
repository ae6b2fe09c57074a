//! The Chair's tool: assembling the year's stocktaking bundle from this node's replica and documents.

use crate::runtime::Node;
use std::collections::BTreeMap;

/// Why the bundle could not be assembled.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AssembleError {
    #[error("bundle assembly is not available in this build")]
    Unavailable,
}

/// Assembles the bundle of `year`: relative path → bytes.
pub async fn assemble(
    _node: &Node,
    _year: u16,
) -> Result<BTreeMap<String, Vec<u8>>, AssembleError> {
    Err(AssembleError::Unavailable)
}
