//! Stocktaking: the year's stocktake view and the assembled bundle.

use super::types::{AssembleRequest, BundleFiles};
use super::{ApiError, ApiResult, App};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;
use wsis_protocol::gov::Governance;
use wsis_protocol::ids::DocId;
use wsis_protocol::ids::Hash32;
use wsis_protocol::op::OpKind;
use wsis_protocol::view::StocktakeView;

#[derive(serde::Deserialize)]
pub(super) struct YearQuery {
    pub(super) year: u16,
}

/// The content hash of every attested document as this node holds it at the attested heads.
fn attested_hashes(
    gov: &Governance,
    docs: &crate::node::Engine,
    year: u16,
) -> BTreeMap<DocId, Hash32> {
    let mut out = BTreeMap::new();
    for s in gov.submissions().iter().filter(|s| s.year == year) {
        let heads = match gov.get(&s.op).map(|op| op.kind()) {
            Some(OpKind::SubmitOutput { attestation, .. })
            | Some(OpKind::SubmitNationalReport { attestation, .. }) => attestation.heads.clone(),
            _ => continue,
        };
        if let Ok(json) = docs.export_at(&s.doc, &heads) {
            out.insert(s.doc, Hash32(Sha256::digest(&json).into()));
        }
    }
    out
}

pub(super) async fn stocktake(
    State(app): State<Arc<App>>,
    Query(q): Query<YearQuery>,
) -> Result<Response, ApiError> {
    let json = app
        .node
        .with_docs(|gov, docs| {
            StocktakeView::compute(gov, q.year, &attested_hashes(gov, docs, q.year))
                .to_canonical_json()
        })
        .await;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        json,
    )
        .into_response())
}

pub(super) async fn assemble(
    State(app): State<Arc<App>>,
    body: Result<Json<AssembleRequest>, JsonRejection>,
) -> ApiResult<BundleFiles> {
    let Json(req) = body?;
    let files = crate::chair::assemble(&app.node, req.year)
        .await
        .map_err(|e| ApiError::refused("cannot-assemble", e.to_string()))?;
    Ok(Json(BundleFiles {
        federation: app.node.with_gov(|g| g.federation_id().to_string()).await,
        year: req.year,
        files: files
            .into_iter()
            .map(|(path, bytes)| {
                (
                    path,
                    base64::engine::general_purpose::STANDARD.encode(bytes),
                )
            })
            .collect(),
    }))
}
