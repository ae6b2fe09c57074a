//! The Chair's tool: the year's stocktaking bundle, assembled from this node's replica and documents and signed
//! with the organisation's key.
//!
//! The protocol decides what goes in ([`wsis_protocol::bundle::plan`]: the closing checkpoint — the latest passed
//! checkpoint of the year this replica knows, with every ballot on it — its history, the attested documents and
//! heads); this module supplies each document's Automerge bytes at its attested heads from the engine (rebuilt at
//! their frontier, as the verifier requires), and the key, and logs which checkpoint closes the year and which
//! passed ones were not chosen. Nothing leaves the node unless the protocol's assembly succeeded.

use crate::node::Node;
use std::collections::BTreeMap;
use wsis_protocol::bundle;
use wsis_protocol::ids::DocId;

/// Why the bundle could not be assembled.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AssembleError {
    #[error(transparent)]
    Plan(#[from] bundle::AssembleError),
    #[error("document {doc} is not available at its attested heads on this node ({reason}); wait for sync")]
    Document { doc: DocId, reason: String },
}

/// Assembles the bundle of `year`: relative path → bytes.
pub async fn assemble(node: &Node, year: u16) -> Result<BTreeMap<String, Vec<u8>>, AssembleError> {
    let me = node.org();
    let (plan, documents) = node
        .with_docs(|gov, engine| -> Result<_, AssembleError> {
            let plan = bundle::plan(gov, year, &me)?;
            let mut documents = BTreeMap::new();
            for (doc, heads) in plan.documents() {
                let bytes = engine
                    .save_at(&doc, &heads)
                    .map_err(|e| AssembleError::Document {
                        doc,
                        reason: e.to_string(),
                    })?;
                documents.insert(doc, bytes);
            }
            Ok((plan, documents))
        })
        .await?;
    let point = plan.closing_point();
    tracing::info!(
        year,
        checkpoint = %point.checkpoint,
        ballots = point.ballots.len(),
        yes = point.yes,
        no = point.no,
        electorate = point.electorate,
        not_chosen = ?plan.not_chosen(),
        "the year is closed by the latest passed checkpoint this node knows, with every ballot on it"
    );
    let bundle = bundle::assemble(&plan, node.org_key(), &documents)?;
    Ok(bundle.files)
}
