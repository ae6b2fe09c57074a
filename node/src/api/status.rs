//! `GET /v1/status`, `GET /v1/ops/{op}`, the organisations and their admission.

use super::parse::parse_op;
use super::parse::parse_org;
use super::types::{
    AdmitRequest, DocumentLimits, OpDone, OpInfo, OrgRow, QuotaRow, QuotaStatus, Status,
};
use super::{done, ApiError, ApiResult, App};
use crate::engine::AuthorQuota;
use crate::node::Engine;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::Json;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use wsis_protocol::gov::Governance;
use wsis_protocol::ids::OrgId;
use wsis_protocol::limits::{
    MAX_AUTHOR_BYTES, MAX_AUTHOR_DOC_BYTES, MAX_AUTHOR_DOC_ENVELOPES, MAX_DOCS_PER_ORG,
};
use wsis_protocol::op::OpKind;

/// Organisations listed as nearest their limits in `status`.
const NEAREST_QUOTAS: usize = 5;

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
                ops_pending: gov.pending_len(),
                admission_requests: gov.admission_requests().len(),
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
                quotas: quota_status(gov, docs, &me),
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
    // Members and former members first, then the organisations asking for admission (their inceptions wait
    // outside the DAG until a secretariat admits them; `member` is false).
    Ok(Json(
        app.node
            .with_gov(|gov| {
                let mut rows = gov.orgs();
                rows.extend(gov.admission_requests());
                rows
            })
            .await,
    ))
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

/// The quotas block: `me`'s usage, and the organisations nearest a limit (storage quotas at this node, or the
/// document budget, whichever is fuller).
fn quota_status(gov: &Governance, docs: &Engine, me: &OrgId) -> QuotaStatus {
    let mut rows: Vec<QuotaRow> = docs
        .quotas_nearest(usize::MAX)
        .iter()
        .map(|q| quota_row(gov, q))
        .collect();
    // Organisations that created documents but stored nothing here still have a budget to show.
    for org in gov.orgs() {
        if gov.docs_created_by(&org.id) > 0 && !rows.iter().any(|r| r.org == org.id.to_string()) {
            rows.push(quota_row(gov, &docs.quota_of(&org.id)));
        }
    }
    rows.sort_by(|a, b| {
        b.fill_permille
            .cmp(&a.fill_permille)
            .then(a.org.cmp(&b.org))
    });
    rows.truncate(NEAREST_QUOTAS);
    QuotaStatus {
        own: quota_row(gov, &docs.quota_of(me)),
        nearest: rows,
    }
}

fn quota_row(gov: &Governance, q: &AuthorQuota) -> QuotaRow {
    let permille = |used: u64, max: u64| used.saturating_mul(1000) / max.max(1);
    let fill = |u: &crate::engine::Usage| {
        permille(u.bytes, MAX_AUTHOR_DOC_BYTES).max(permille(u.envelopes, MAX_AUTHOR_DOC_ENVELOPES))
    };
    let fullest = q
        .documents
        .iter()
        .max_by_key(|(d, u)| (fill(u), std::cmp::Reverse(*d)));
    let docs_created = gov.docs_created_by(&q.author);
    QuotaRow {
        org: q.author.to_string(),
        name: gov.org(&q.author).map(|o| o.name).unwrap_or_default(),
        bytes: q.total.bytes,
        bytes_quota: MAX_AUTHOR_BYTES,
        fullest_doc: fullest.map(|(d, _)| d.to_string()),
        doc_bytes: fullest.map_or(0, |(_, u)| u.bytes),
        doc_bytes_quota: MAX_AUTHOR_DOC_BYTES,
        doc_envelopes: fullest.map_or(0, |(_, u)| u.envelopes),
        doc_envelopes_quota: MAX_AUTHOR_DOC_ENVELOPES,
        docs_created,
        docs_budget: MAX_DOCS_PER_ORG,
        fill_permille: q
            .fill_permille()
            .max(permille(docs_created as u64, MAX_DOCS_PER_ORG as u64)),
    }
}
