//! `GET /v1/status`, `GET /v1/ops/{op}`, the organisations and their admission.

use super::parse::parse_op;
use super::parse::parse_org;
use super::types::{AdmitRequest, DocumentLimits, OpDone, OpInfo, OrgRow, Status};
use super::{done, ApiError, ApiResult, App};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::Json;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use wsis_protocol::op::OpKind;

pub(super) async fn status(State(app): State<Arc<App>>) -> ApiResult<Status> {
    let node = &app.node;
    let me = node.org();
    let peer = node.peer_id();
    let listen = node
        .network()
        .listen_addrs()
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|a| format!("{a}/p2p/{peer}"))
        .collect();
    let mut peers: Vec<String> = node
        .network()
        .connected_peers()
        .await
        .unwrap_or_default()
        .iter()
        .map(ToString::to_string)
        .collect();
    peers.sort();
    let connected_peers = peers.len();
    let stats = node.stats();
    let net = node.network().stats().await.unwrap_or_default();
    let status = node
        .with_docs(|gov, docs| {
            let info = gov.org(&me);
            let mut hasher = Sha256::new();
            let mut ids = docs.documents();
            ids.sort();
            for d in &ids {
                hasher.update(d.0);
                for h in docs.heads(d) {
                    hasher.update(h.0);
                }
            }
            Status {
                org: me.to_string(),
                name: info.as_ref().map(|o| o.name.clone()).unwrap_or_default(),
                stakeholder: info
                    .as_ref()
                    .map(|o| o.stakeholder.to_string())
                    .unwrap_or_default(),
                country: info.as_ref().and_then(|o| o.country).map(|c| c.to_string()),
                federation: gov.federation_id().to_string(),
                federation_name: gov.federation().name.clone(),
                peer_id: peer.to_string(),
                listen,
                connected_peers,
                peers,
                admitted: gov.is_member(&me),
                secretariat: gov.federation().secretariat.contains(&me),
                ops: gov.len(),
                ops_parked: gov.parked_len(),
                ops_invalid: gov.invalid_ops().len(),
                gov_digest: hex::encode(gov.digest()),
                documents: ids.len(),
                docs_digest: hex::encode(hasher.finalize()),
                ops_received: stats.ops_received,
                ops_refused: stats.ops_refused,
                requests_refused: stats.requests_refused,
                ops_evicted: stats.ops_evicted,
                ops_parking_refused: stats.ops_parking_refused,
                envelopes_rejected: docs
                    .rejected_counts()
                    .iter()
                    .map(|(r, n)| (format!("{r:?}"), *n))
                    .collect(),
                bytes_in: net.bytes_in,
                bytes_out: net.bytes_out,
                limits: docs
                    .usage()
                    .into_iter()
                    .map(|u| DocumentLimits {
                        doc: u.doc.to_string(),
                        ops: u.ops,
                        unpublished_ops: u.unpublished_ops,
                        max_ops: u.max_ops,
                        actors: u.actors,
                        max_actors: u.max_actors,
                        own_actors: u.own_actors,
                        max_own_actors: u.max_own_actors,
                        excluded_authors: u.excluded_authors,
                    })
                    .collect(),
            }
        })
        .await;
    Ok(Json(status))
}

pub(super) async fn op_info(
    State(app): State<Arc<App>>,
    Path(op): Path<String>,
) -> ApiResult<OpInfo> {
    let id = parse_op(&op, "governance op")?;
    app.node
        .with_gov(|gov| {
            let op = gov
                .get(&id)
                .ok_or_else(|| ApiError::not_found("unknown-op", format!("no op {id}")))?;
            Ok(Json(OpInfo {
                op: id.to_string(),
                kind: op.kind().name().to_string(),
                author: op.author().to_string(),
                seq: op.seq(),
                invalid: gov
                    .validity(&id)
                    .and_then(Result::err)
                    .map(|w| w.to_string()),
            }))
        })
        .await
}

pub(super) async fn orgs(State(app): State<Arc<App>>) -> ApiResult<Vec<OrgRow>> {
    Ok(Json(app.node.with_gov(|gov| gov.orgs()).await))
}

pub(super) async fn admit(
    State(app): State<Arc<App>>,
    body: Result<Json<AdmitRequest>, JsonRejection>,
) -> ApiResult<OpDone> {
    let Json(req) = body?;
    let org = parse_org(&req.org)?;
    // Only a secretariat organisation admits, and never another secretariat organisation: the replay's rules
    // (`not-secretariat`, `not-applicable`). Admitting a member again is allowed by the rules (it is how a revoked
    // organisation is readmitted) and changes nothing otherwise.
    let known = app.node.with_gov(|gov| gov.org(&org).is_some()).await;
    if !known {
        return Err(ApiError::not_found(
            "unknown-org",
            format!("no inception of {org} has reached this node yet (is its node running and connected?)"),
        ));
    }
    Ok(done(app.node.submit_checked(OpKind::Admit { org }).await?))
}
