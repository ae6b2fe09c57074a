//! The local HTTP API: how the `wsis` CLI, scripts and the testnet drive a running node.
//!
//! - **Loopback by default** (`api_addr` in `config.toml`); every request needs `Authorization: Bearer <token>`
//!   with the token from `DATA/api.token`. The token is the API's only protection, which is why the default
//!   address is loopback.
//! - **JSON in, JSON out.** Errors are `{"error": "<one line>", "code": "<stable code>"}` with 400 (bad input),
//!   401 (no or wrong token), 404 (unknown id), 409 (refused by the governance rules or not possible yet) or 500.
//! - **Acknowledged means durable**: a 2xx reply to a write comes after the op or envelope is flushed to disk.
//! - **A refused command changes nothing**: governance ops go through [`Node::submit_checked`] (dry run on a copy
//!   of the replica), and document edits are checked against the writer rules before the edit is made.
//!
//! Every route is listed in [`ROUTES`]; `docs/api.md` documents each one and a test keeps the two in step.

pub mod types;

use crate::node::{DocError, Node, SubmitError};
use automerge::transaction::Transactable;
use automerge::{ObjType, ReadDoc, ROOT};
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use types::*;
use wsis_protocol::gov::{DocumentScope, Governance};
use wsis_protocol::ids::{DocId, OpId, OrgId};
use wsis_protocol::op::{
    Attestation, ChairRole, Country, DocKind, Hash32, MeetingKind, MotionKind, OpKind, Procedure,
    StakeholderType, TeamCode,
};
use wsis_protocol::view::StocktakeView;

/// Request bodies larger than this are refused before they are read (the largest legitimate body is a section
/// of text).
pub const MAX_REQUEST_BYTES: usize = 1024 * 1024;
/// Text in one edit or one paragraph of minutes at most.
pub const MAX_TEXT_BYTES: usize = 64 * 1024;
/// Section names are short identifiers.
const MAX_SECTION_NAME_BYTES: usize = 64;

/// Every route, as `METHOD path` (documented in `docs/api.md`).
pub const ROUTES: &[&str] = &[
    "GET /v1/status",
    "GET /v1/ops/{op}",
    "GET /v1/orgs",
    "POST /v1/orgs/admit",
    "GET /v1/teams",
    "POST /v1/teams/{team}/join",
    "POST /v1/teams/{team}/leave",
    "POST /v1/teams/{team}/modalities",
    "GET /v1/meetings",
    "POST /v1/meetings",
    "POST /v1/meetings/{meeting}/attend",
    "POST /v1/meetings/{meeting}/minutes",
    "POST /v1/meetings/{meeting}/approve",
    "GET /v1/motions",
    "POST /v1/motions",
    "POST /v1/motions/{motion}/vote",
    "POST /v1/coordinators",
    "POST /v1/outputs",
    "POST /v1/outputs/{doc}/submit",
    "POST /v1/national-reports",
    "POST /v1/national-reports/{doc}/submit",
    "GET /v1/docs",
    "GET /v1/docs/{doc}",
    "POST /v1/docs/{doc}/edit",
    "GET /v1/stocktake",
    "POST /v1/stocktake/assemble",
];

/// Output sections every draft starts with (the seed's annual outputs: achievements, challenges,
/// recommendations).
pub const OUTPUT_SECTIONS: [&str; 3] = ["achievements", "challenges", "recommendations"];
/// Sections a national report starts with.
pub const NATIONAL_REPORT_SECTIONS: [&str; 4] =
    ["summary", "achievements", "challenges", "recommendations"];

/// An API error: status, stable code, one-line message.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn bad(code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code,
            message: message.into(),
        }
    }
    fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            code,
            message: message.into(),
        }
    }
    fn refused(code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::CONFLICT,
            code,
            message: message.into(),
        }
    }
    fn internal(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal",
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.message,
            code: self.code.to_string(),
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<SubmitError> for ApiError {
    fn from(e: SubmitError) -> Self {
        match e {
            SubmitError::Invalid(why) => ApiError::refused("refused", format!("refused: {why}")),
            SubmitError::Refused(e) => ApiError::refused("refused", format!("refused: {e}")),
            SubmitError::Store(e) => ApiError::internal(format!("not stored: {e}")),
        }
    }
}

impl From<DocError> for ApiError {
    fn from(e: DocError) -> Self {
        ApiError::refused("document", format!("document edit refused: {e}"))
    }
}

impl From<JsonRejection> for ApiError {
    fn from(e: JsonRejection) -> Self {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return ApiError {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                code: "too-large",
                message: format!("request body over {MAX_REQUEST_BYTES} bytes"),
            };
        }
        ApiError::bad("bad-json", format!("bad request body: {}", e.body_text()))
    }
}

type ApiResult<T> = Result<Json<T>, ApiError>;

struct App {
    node: Node,
    token: String,
}

/// The API's router over a running node, requiring `token` on every request.
pub fn router(node: Node, token: String) -> Router {
    let app = Arc::new(App { node, token });
    Router::new()
        .route("/v1/status", get(status))
        .route("/v1/ops/{op}", get(op_info))
        .route("/v1/orgs", get(orgs))
        .route("/v1/orgs/admit", post(admit))
        .route("/v1/teams", get(teams))
        .route("/v1/teams/{team}/join", post(join_team))
        .route("/v1/teams/{team}/leave", post(leave_team))
        .route("/v1/teams/{team}/modalities", post(modalities))
        .route("/v1/meetings", get(meetings).post(convene))
        .route("/v1/meetings/{meeting}/attend", post(attend))
        .route("/v1/meetings/{meeting}/minutes", post(minutes))
        .route("/v1/meetings/{meeting}/approve", post(approve))
        .route("/v1/motions", get(motions).post(propose))
        .route("/v1/motions/{motion}/vote", post(vote))
        .route("/v1/coordinators", post(nominate))
        .route("/v1/outputs", post(draft_output))
        .route("/v1/outputs/{doc}/submit", post(submit_output))
        .route("/v1/national-reports", post(draft_national_report))
        .route(
            "/v1/national-reports/{doc}/submit",
            post(submit_national_report),
        )
        .route("/v1/docs", get(docs))
        .route("/v1/docs/{doc}", get(doc))
        .route("/v1/docs/{doc}/edit", post(edit))
        .route("/v1/stocktake", get(stocktake))
        .route("/v1/stocktake/assemble", post(assemble))
        .layer(axum::middleware::from_fn_with_state(app.clone(), authorise))
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .layer(axum::middleware::from_fn(contain_panics))
        .with_state(app)
}

/// A handler that panics (a bug, or one in a dependency such as Automerge) answers 500 with a JSON error instead
/// of dropping the connection, which the CLI could only report as "no node answers". The node keeps running:
/// its locks are tokio mutexes, which a panic does not poison.
async fn contain_panics(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    use futures::FutureExt;
    let path = request.uri().path().to_string();
    match std::panic::AssertUnwindSafe(next.run(request))
        .catch_unwind()
        .await
    {
        Ok(response) => response,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            tracing::error!(%path, panic = %what, "an API handler panicked");
            ApiError {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                code: "internal",
                message: format!(
                    "internal error while serving {path} (see the node's log): {what}"
                ),
            }
            .into_response()
        }
    }
}

/// Serves the API on `listener` until `shutdown` completes.
pub async fn serve(
    node: Node,
    token: String,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(node, token))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Binds the API address (port 0 picks a free port); the caller reads `local_addr` to publish it.
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}

async fn authorise(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let presented = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !constant_time_eq(presented.as_bytes(), app.token.as_bytes()) {
        return ApiError {
            status: StatusCode::UNAUTHORIZED,
            code: "unauthorised",
            message: "missing or wrong API token (see DATA/api.token)".into(),
        }
        .into_response();
    }
    next.run(request).await
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

// ---------------------------------------------------------------------------------------------------------------
// Parsing what the user typed.

fn parse_org(s: &str) -> Result<OrgId, ApiError> {
    OrgId::from_str(s.trim()).map_err(|_| {
        ApiError::bad(
            "bad-id",
            format!("`{s}` is not an organisation id (org_ followed by 64 hex digits)"),
        )
    })
}

fn parse_op(s: &str, what: &str) -> Result<OpId, ApiError> {
    OpId::from_str(s.trim()).map_err(|_| {
        ApiError::bad(
            "bad-id",
            format!("`{s}` is not a {what} id (op_ followed by 64 hex digits)"),
        )
    })
}

fn parse_doc(s: &str) -> Result<DocId, ApiError> {
    DocId::from_str(s.trim()).map_err(|_| {
        ApiError::bad(
            "bad-id",
            format!("`{s}` is not a document id (doc_ followed by 64 hex digits)"),
        )
    })
}

fn parse_team(gov: &Governance, s: &str) -> Result<TeamCode, ApiError> {
    let code = TeamCode::new(s.trim()).map_err(|e| ApiError::bad("bad-team", e))?;
    if !gov.federation().teams.contains_key(&code) {
        let known: Vec<String> = gov
            .federation()
            .teams
            .keys()
            .map(|t| t.to_string())
            .collect();
        return Err(ApiError::not_found(
            "unknown-team",
            format!("unknown team `{s}` (teams: {})", known.join(", ")),
        ));
    }
    Ok(code)
}

fn check_text(text: &str) -> Result<(), ApiError> {
    if text.len() > MAX_TEXT_BYTES {
        return Err(ApiError::bad(
            "too-long",
            format!(
                "text of {} bytes is longer than {MAX_TEXT_BYTES}",
                text.len()
            ),
        ));
    }
    Ok(())
}

fn org_name(gov: &Governance, org: &OrgId) -> String {
    gov.org(org)
        .map(|o| o.name)
        .unwrap_or_else(|| org.to_string())
}

fn done(op: wsis_protocol::op::SignedOp) -> Json<OpDone> {
    Json(OpDone {
        op: op.id().to_string(),
        kind: op.kind().name().to_string(),
    })
}

fn require_member(gov: &Governance, me: &OrgId) -> Result<(), ApiError> {
    if !gov.is_member(me) {
        return Err(ApiError::refused(
            "not-admitted",
            "this organisation is not admitted yet: a secretariat organisation must run `wsis org admit`",
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------------
// Status and organisations.

async fn status(State(app): State<Arc<App>>) -> ApiResult<Status> {
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
                envelopes_rejected: docs
                    .rejected_counts()
                    .iter()
                    .map(|(r, n)| (format!("{r:?}"), *n))
                    .collect(),
                bytes_in: net.bytes_in,
                bytes_out: net.bytes_out,
            }
        })
        .await;
    Ok(Json(status))
}

async fn op_info(State(app): State<Arc<App>>, Path(op): Path<String>) -> ApiResult<OpInfo> {
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

async fn orgs(State(app): State<Arc<App>>) -> ApiResult<Vec<wsis_protocol::gov::OrgInfo>> {
    Ok(Json(app.node.with_gov(|gov| gov.orgs()).await))
}

async fn admit(
    State(app): State<Arc<App>>,
    body: Result<Json<AdmitRequest>, JsonRejection>,
) -> ApiResult<OpDone> {
    let Json(req) = body?;
    let org = parse_org(&req.org)?;
    let me = app.node.org();
    app.node
        .with_gov(|gov| {
            if !gov.federation().secretariat.contains(&me) {
                return Err(ApiError::refused(
                    "not-secretariat",
                    "only a secretariat organisation may admit organisations",
                ));
            }
            match gov.org(&org) {
                None => Err(ApiError::not_found(
                    "unknown-org",
                    format!("no inception of {org} has reached this node yet (is its node running and connected?)"),
                )),
                Some(o) if o.member => Err(ApiError::refused(
                    "already",
                    format!("{} is already admitted", o.name),
                )),
                Some(_) => Ok(()),
            }
        })
        .await?;
    Ok(done(app.node.submit_checked(OpKind::Admit { org }).await?))
}

// ---------------------------------------------------------------------------------------------------------------
// Teams.

async fn teams(State(app): State<Arc<App>>) -> ApiResult<Vec<TeamRow>> {
    Ok(Json(
        app.node
            .with_gov(|gov| {
                gov.federation()
                    .teams
                    .iter()
                    .map(|(code, name)| {
                        let coordinator = gov.coordinator(code);
                        TeamRow {
                            code: code.to_string(),
                            name: name.clone(),
                            coordinator: coordinator.as_ref().map(|c| c.org.to_string()),
                            coordinator_name: coordinator.as_ref().map(|c| org_name(gov, &c.org)),
                            contested_with: coordinator
                                .map(|c| c.contested_with.iter().map(|o| o.to_string()).collect())
                                .unwrap_or_default(),
                            members: gov
                                .team_members(code)
                                .iter()
                                .map(|o| o.to_string())
                                .collect(),
                            modalities: gov.modalities(code),
                        }
                    })
                    .collect()
            })
            .await,
    ))
}

async fn join_team(State(app): State<Arc<App>>, Path(team): Path<String>) -> ApiResult<OpDone> {
    let me = app.node.org();
    let team = app
        .node
        .with_gov(|gov| {
            require_member(gov, &me)?;
            let team = parse_team(gov, &team)?;
            if gov.team_members(&team).contains(&me) {
                return Err(ApiError::refused(
                    "already",
                    format!("already a member of {team}"),
                ));
            }
            Ok(team)
        })
        .await?;
    Ok(done(
        app.node.submit_checked(OpKind::JoinTeam { team }).await?,
    ))
}

async fn leave_team(State(app): State<Arc<App>>, Path(team): Path<String>) -> ApiResult<OpDone> {
    let me = app.node.org();
    let team = app
        .node
        .with_gov(|gov| {
            let team = parse_team(gov, &team)?;
            if !gov.team_members(&team).contains(&me) {
                return Err(ApiError::refused(
                    "not-member",
                    format!("not a member of {team}"),
                ));
            }
            Ok(team)
        })
        .await?;
    Ok(done(
        app.node.submit_checked(OpKind::LeaveTeam { team }).await?,
    ))
}

async fn modalities(
    State(app): State<Arc<App>>,
    Path(team): Path<String>,
    body: Result<Json<ModalitiesRequest>, JsonRejection>,
) -> ApiResult<OpDone> {
    let Json(req) = body?;
    check_text(&req.text)?;
    let me = app.node.org();
    let team = app
        .node
        .with_gov(|gov| {
            let team = parse_team(gov, &team)?;
            if gov.coordinator(&team).map(|c| c.org) != Some(me) {
                return Err(ApiError::refused(
                    "not-coordinator",
                    format!("only the coordinator of {team} may set its modalities"),
                ));
            }
            Ok(team)
        })
        .await?;
    Ok(done(
        app.node
            .submit_checked(OpKind::SetModalities {
                team,
                text: req.text,
            })
            .await?,
    ))
}

// ---------------------------------------------------------------------------------------------------------------
// Meetings.

async fn meetings(State(app): State<Arc<App>>) -> ApiResult<Vec<wsis_protocol::gov::MeetingInfo>> {
    Ok(Json(app.node.with_gov(|gov| gov.meetings()).await))
}

async fn convene(
    State(app): State<Arc<App>>,
    body: Result<Json<ConveneRequest>, JsonRejection>,
) -> ApiResult<OpDone> {
    let Json(req) = body?;
    check_text(&req.title)?;
    let me = app.node.org();
    let meeting = app
        .node
        .with_gov(|gov| {
            require_member(gov, &me)?;
            let secretariat = gov.federation().secretariat.contains(&me);
            match req.kind.as_str() {
                "team" => {
                    let team = req.team.as_deref().ok_or_else(|| {
                        ApiError::bad("missing-team", "a team meeting needs --team")
                    })?;
                    let team = parse_team(gov, team)?;
                    if gov.coordinator(&team).map(|c| c.org) != Some(me) {
                        return Err(ApiError::refused(
                            "not-coordinator",
                            format!("only the coordinator of {team} may convene its meetings"),
                        ));
                    }
                    Ok(MeetingKind::Team(team))
                }
                "recommendation" | "coordinators" if !secretariat => Err(ApiError::refused(
                    "not-secretariat",
                    "only a secretariat organisation convenes recommendation and coordinators' meetings",
                )),
                "recommendation" => Ok(MeetingKind::Recommendation),
                "coordinators" => Ok(MeetingKind::Coordinators),
                other => Err(ApiError::bad(
                    "bad-kind",
                    format!("unknown meeting kind `{other}` (team, recommendation, coordinators)"),
                )),
            }
        })
        .await?;
    let op = app
        .node
        .submit_checked(OpKind::Convene {
            meeting,
            year: req.year,
            title: req.title,
        })
        .await?;
    // The record document exists from the Convene; its structure is made once, by the convener, so concurrent
    // writers never create rival `minutes` lists.
    let record = DocId(op.id().0);
    app.node
        .edit(&record, |tx| {
            tx.put_object(ROOT, "minutes", ObjType::List)?;
            Ok(())
        })
        .await?;
    app.node.publish(&record).await?;
    Ok(done(op))
}

async fn attend(State(app): State<Arc<App>>, Path(meeting): Path<String>) -> ApiResult<OpDone> {
    let meeting = parse_op(&meeting, "meeting")?;
    let me = app.node.org();
    app.node
        .with_gov(|gov| {
            require_member(gov, &me)?;
            let info = gov.meeting(&meeting).ok_or_else(|| {
                ApiError::not_found("unknown-meeting", format!("no meeting {meeting}"))
            })?;
            if info.attendees.contains(&me) {
                return Err(ApiError::refused("already", "already attending"));
            }
            Ok(())
        })
        .await?;
    Ok(done(
        app.node.submit_checked(OpKind::Attend { meeting }).await?,
    ))
}

/// Checks that this organisation may write `doc` now, so an edit that could never be published is not made.
async fn check_writer(app: &App, doc: &DocId) -> Result<(), ApiError> {
    let me = app.node.org();
    app.node
        .with_gov(|gov| {
            if gov.document(doc).is_none() {
                return Err(unknown_document(doc));
            }
            gov.may_write(doc, &me, &gov.heads()).map_err(|e| {
                ApiError::refused(
                    "not-writer",
                    format!("this organisation may not write {doc}: {e}"),
                )
            })
        })
        .await
}

async fn minutes(
    State(app): State<Arc<App>>,
    Path(meeting): Path<String>,
    body: Result<Json<MinutesRequest>, JsonRejection>,
) -> ApiResult<DocView> {
    let Json(req) = body?;
    check_text(&req.text)?;
    let meeting = parse_op(&meeting, "meeting")?;
    let record = DocId(meeting.0);
    check_writer(&app, &record).await?;
    let list = app
        .node
        .with_docs(|_, docs| {
            docs.document(&record)
                .and_then(|d| d.get(ROOT, "minutes").ok().flatten())
                .map(|(_, id)| id)
        })
        .await
        .ok_or_else(|| {
            ApiError::refused(
                "not-synced",
                "the meeting record has not reached this node yet; try again in a moment",
            )
        })?;
    let by = app.node.org().to_string();
    app.node
        .edit(&record, |tx| {
            let at = tx.length(&list);
            let entry = tx.insert_object(&list, at, ObjType::Map)?;
            tx.put(&entry, "by", by)?;
            tx.put(&entry, "text", req.text)?;
            Ok(())
        })
        .await?;
    app.node.publish(&record).await?;
    doc_view(&app, &record).await
}

/// Attests the document as this node has it now: publishes pending changes, then signs heads and content hash.
async fn attestation_now(app: &App, doc: &DocId) -> Result<Attestation, ApiError> {
    app.node.publish(doc).await?;
    app.node
        .with_docs(|_, docs| {
            let heads = docs.heads(doc);
            if heads.is_empty() {
                return Err(ApiError::refused(
                    "empty-document",
                    format!("{doc} has no content on this node yet"),
                ));
            }
            let content_hash = docs
                .content_hash(doc)
                .map_err(|e| ApiError::internal(format!("cannot export {doc}: {e}")))?;
            Ok(Attestation {
                heads,
                content_hash,
            })
        })
        .await
}

async fn approve(State(app): State<Arc<App>>, Path(meeting): Path<String>) -> ApiResult<OpDone> {
    let meeting = parse_op(&meeting, "meeting")?;
    let me = app.node.org();
    app.node
        .with_gov(|gov| {
            let info = gov.meeting(&meeting).ok_or_else(|| {
                ApiError::not_found("unknown-meeting", format!("no meeting {meeting}"))
            })?;
            if info.convener != me && !info.attendees.contains(&me) {
                return Err(ApiError::refused(
                    "not-attendee",
                    "only the convener and attendees approve a meeting record",
                ));
            }
            Ok(())
        })
        .await?;
    submit_attested(&app, &DocId(meeting.0), |record| OpKind::ApproveRecord {
        meeting,
        record,
    })
    .await
}

// ---------------------------------------------------------------------------------------------------------------
// Motions and nominations.

async fn motions(State(app): State<Arc<App>>) -> ApiResult<Vec<wsis_protocol::gov::MotionInfo>> {
    Ok(Json(app.node.with_gov(|gov| gov.motions()).await))
}

async fn propose(
    State(app): State<Arc<App>>,
    body: Result<Json<MotionRequest>, JsonRejection>,
) -> ApiResult<OpDone> {
    let Json(req) = body?;
    let meeting = parse_op(&req.meeting, "meeting")?;
    let me = app.node.org();
    let motion = app
        .node
        .with_gov(|gov| -> Result<MotionKind, ApiError> {
            require_member(gov, &me)?;
            if gov.meeting(&meeting).is_none() {
                return Err(ApiError::not_found(
                    "unknown-meeting",
                    format!("no meeting {meeting}"),
                ));
            }
            Ok(match req.motion {
                MotionSpec::Recommend { team, org } => MotionKind::Recommend {
                    team: parse_team(gov, &team)?,
                    org: parse_org(&org)?,
                },
                MotionSpec::Elect { role, org } => MotionKind::Elect {
                    role: match role.as_str() {
                        "chair" => ChairRole::Chair,
                        "co-chair" => ChairRole::CoChair,
                        other => {
                            return Err(ApiError::bad(
                                "bad-role",
                                format!("unknown role `{other}` (chair, co-chair)"),
                            ))
                        }
                    },
                    org: parse_org(&org)?,
                },
                MotionSpec::AdoptProcedure {
                    year,
                    teams,
                    deadline_ms,
                    sections,
                    national_reports,
                } => MotionKind::AdoptProcedure(Procedure {
                    year,
                    teams: teams
                        .iter()
                        .map(|t| parse_team(gov, t))
                        .collect::<Result<_, _>>()?,
                    deadline_ms,
                    required_sections: sections,
                    national_reports,
                }),
                MotionSpec::Checkpoint => MotionKind::Checkpoint { heads: gov.heads() },
                MotionSpec::AdoptReport {
                    year,
                    manifest_hash,
                } => {
                    let bytes = hex::decode(manifest_hash.trim())
                        .ok()
                        .and_then(|b| <[u8; 32]>::try_from(b).ok())
                        .ok_or_else(|| {
                            ApiError::bad(
                                "bad-hash",
                                "the manifest hash is 64 hex digits (sha256sum manifest.json)",
                            )
                        })?;
                    MotionKind::AdoptReport {
                        year,
                        manifest_hash: Hash32(bytes),
                    }
                }
            })
        })
        .await?;
    Ok(done(
        app.node
            .submit_checked(OpKind::Motion { meeting, motion })
            .await?,
    ))
}

async fn vote(
    State(app): State<Arc<App>>,
    Path(motion): Path<String>,
    body: Result<Json<VoteRequest>, JsonRejection>,
) -> ApiResult<OpDone> {
    let Json(req) = body?;
    let motion = parse_op(&motion, "motion")?;
    let me = app.node.org();
    app.node
        .with_gov(|gov| {
            if gov.motion(&motion).is_none() {
                return Err(ApiError::not_found(
                    "unknown-motion",
                    format!("no motion {motion}"),
                ));
            }
            if !gov.electorate(&motion).unwrap_or_default().contains(&me) {
                return Err(ApiError::refused(
                    "not-in-electorate",
                    "this organisation is not in the motion's electorate (attend the meeting first)",
                ));
            }
            Ok(())
        })
        .await?;
    Ok(done(
        app.node
            .submit_checked(OpKind::Ballot {
                motion,
                yes: req.yes,
            })
            .await?,
    ))
}

async fn nominate(
    State(app): State<Arc<App>>,
    body: Result<Json<NominateRequest>, JsonRejection>,
) -> ApiResult<OpDone> {
    let Json(req) = body?;
    let org = parse_org(&req.org)?;
    let recommendation = parse_op(&req.recommendation, "motion")?;
    let team = app
        .node
        .with_gov(|gov| {
            let team = parse_team(gov, &req.team)?;
            let motion = gov.motion(&recommendation).ok_or_else(|| {
                ApiError::not_found("unknown-motion", format!("no motion {recommendation}"))
            })?;
            if !motion.passed {
                return Err(ApiError::refused(
                    "not-passed",
                    format!(
                        "the recommendation has not passed ({} yes of {} needed more than half)",
                        motion.yes, motion.electorate
                    ),
                ));
            }
            match gov.motion_kind(&recommendation) {
                Some(MotionKind::Recommend { team: t, org: o }) if *t == team && *o == org => {
                    Ok(team)
                }
                _ => Err(ApiError::refused(
                    "wrong-motion",
                    format!(
                        "motion {recommendation} does not recommend that organisation for {team}"
                    ),
                )),
            }
        })
        .await?;
    Ok(done(
        app.node
            .submit_checked(OpKind::Nominate {
                team,
                org,
                recommendation,
            })
            .await?,
    ))
}

// ---------------------------------------------------------------------------------------------------------------
// Documents: output drafts and national reports.

/// Creates a document and, as its creator, gives it its structure (sections as text, activities as a list), so
/// co-authors only ever edit inside it.
async fn create_document(
    app: &App,
    kind: DocKind,
    sections: &[&str],
    activities: bool,
) -> ApiResult<OpDone> {
    let op = app.node.submit_checked(OpKind::CreateDoc { kind }).await?;
    let doc = DocId(op.id().0);
    app.node
        .edit(&doc, |tx| {
            let map = tx.put_object(ROOT, "sections", ObjType::Map)?;
            for s in sections {
                tx.put_object(&map, *s, ObjType::Text)?;
            }
            if activities {
                tx.put_object(ROOT, "activities", ObjType::List)?;
            }
            Ok(())
        })
        .await?;
    app.node.publish(&doc).await?;
    Ok(done(op))
}

async fn draft_output(
    State(app): State<Arc<App>>,
    body: Result<Json<OutputDraftRequest>, JsonRejection>,
) -> ApiResult<OpDone> {
    let Json(req) = body?;
    let me = app.node.org();
    let team = app
        .node
        .with_gov(|gov| {
            require_member(gov, &me)?;
            let team = parse_team(gov, &req.team)?;
            if !gov.team_members(&team).contains(&me) {
                return Err(ApiError::refused(
                    "not-team-member",
                    format!("join {team} first (`wsis team join {team}`)"),
                ));
            }
            Ok(team)
        })
        .await?;
    create_document(
        &app,
        DocKind::OutputDraft {
            team,
            year: req.year,
        },
        &OUTPUT_SECTIONS,
        true,
    )
    .await
}

async fn draft_national_report(
    State(app): State<Arc<App>>,
    body: Result<Json<NationalReportRequest>, JsonRejection>,
) -> ApiResult<OpDone> {
    let Json(req) = body?;
    let me = app.node.org();
    let country = app
        .node
        .with_gov(|gov| {
            require_member(gov, &me)?;
            match gov.org(&me) {
                Some(o) if o.stakeholder == StakeholderType::Government => {
                    o.country.ok_or_else(|| {
                        ApiError::refused(
                            "no-country",
                            "this government has no country in its inception",
                        )
                    })
                }
                _ => Err(ApiError::refused(
                    "not-government",
                    "only a government writes a national implementation report",
                )),
            }
        })
        .await?;
    create_document(
        &app,
        DocKind::NationalReport {
            country,
            year: req.year,
        },
        &NATIONAL_REPORT_SECTIONS,
        false,
    )
    .await
}

async fn edit(
    State(app): State<Arc<App>>,
    Path(doc): Path<String>,
    body: Result<Json<EditRequest>, JsonRejection>,
) -> ApiResult<DocView> {
    let Json(req) = body?;
    let doc = parse_doc(&doc)?;
    for t in [&req.text, &req.append, &req.activity]
        .into_iter()
        .flatten()
    {
        check_text(t)?;
    }
    enum Change {
        Set(String, String),
        Append(String, String),
        Activity(String),
    }
    let change = match (req.section, req.text, req.append, req.activity) {
        (Some(s), Some(t), None, None) => Change::Set(s, t),
        (Some(s), None, Some(t), None) => Change::Append(s, t),
        (None, None, None, Some(a)) => Change::Activity(a),
        _ => {
            return Err(ApiError::bad(
                "bad-edit",
                "an edit is --section NAME with --text or --append, or --activity TEXT",
            ))
        }
    };
    if let Change::Set(s, _) | Change::Append(s, _) = &change {
        if s.is_empty()
            || s.len() > MAX_SECTION_NAME_BYTES
            || !s
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(ApiError::bad(
                "bad-section",
                format!("`{s}` is not a section name (lower-case letters, digits and -)"),
            ));
        }
    }
    check_writer(&app, &doc).await?;
    // The containers the creator made; missing means its first change has not arrived yet.
    let containers = app
        .node
        .with_docs(|_, docs| {
            let d = docs.document(&doc)?;
            let sections = d.get(ROOT, "sections").ok().flatten().map(|(_, id)| id);
            let activities = d.get(ROOT, "activities").ok().flatten().map(|(_, id)| id);
            Some((sections, activities))
        })
        .await;
    let not_synced = || {
        ApiError::refused(
            "not-synced",
            "the document's structure has not reached this node yet; try again in a moment",
        )
    };
    let (sections, activities) = containers.ok_or_else(not_synced)?;
    match change {
        Change::Activity(text) => {
            let list = activities.ok_or_else(|| {
                ApiError::refused("no-activities", "this document has no activities list")
            })?;
            app.node
                .edit(&doc, |tx| {
                    let at = tx.length(&list);
                    tx.insert(&list, at, text)?;
                    Ok(())
                })
                .await?;
        }
        Change::Set(section, text) | Change::Append(section, text) if sections.is_none() => {
            let _ = (section, text);
            return Err(not_synced());
        }
        Change::Set(section, text) => {
            let map = sections.ok_or_else(not_synced)?;
            app.node
                .edit(&doc, |tx| {
                    let obj = match tx.get(&map, section.as_str())? {
                        Some((automerge::Value::Object(ObjType::Text), id)) => id,
                        _ => tx.put_object(&map, section.as_str(), ObjType::Text)?,
                    };
                    let len = tx.length(&obj) as isize;
                    tx.splice_text(&obj, 0, len, &text)?;
                    Ok(())
                })
                .await?;
        }
        Change::Append(section, text) => {
            let map = sections.ok_or_else(not_synced)?;
            app.node
                .edit(&doc, |tx| {
                    let obj = match tx.get(&map, section.as_str())? {
                        Some((automerge::Value::Object(ObjType::Text), id)) => id,
                        _ => tx.put_object(&map, section.as_str(), ObjType::Text)?,
                    };
                    let len = tx.length(&obj);
                    let text = if len > 0 { format!("\n{text}") } else { text };
                    tx.splice_text(&obj, len, 0, &text)?;
                    Ok(())
                })
                .await?;
        }
    }
    app.node.publish(&doc).await?;
    doc_view(&app, &doc).await
}

fn unknown_document(doc: &DocId) -> ApiError {
    ApiError::not_found("unknown-document", format!("no document {doc}"))
}

/// The kind of a document created by a `CreateDoc` op, or the API's error naming what it should have been
/// (`what`, e.g. "an output draft").
fn created_kind(gov: &Governance, doc: &DocId, what: &str) -> Result<DocKind, ApiError> {
    match gov.document(doc).map(|d| d.scope) {
        Some(DocumentScope::Created(kind)) => Ok(kind),
        Some(_) => Err(wrong_document(doc, what)),
        None => Err(unknown_document(doc)),
    }
}

fn wrong_document(doc: &DocId, what: &str) -> ApiError {
    ApiError::bad("wrong-document", format!("{doc} is not {what}"))
}

/// Attests `doc` as this node has it now and submits the op `submission` builds from that attestation.
async fn submit_attested(
    app: &App,
    doc: &DocId,
    submission: impl FnOnce(Attestation) -> OpKind,
) -> ApiResult<OpDone> {
    let attestation = attestation_now(app, doc).await?;
    Ok(done(
        app.node.submit_checked(submission(attestation)).await?,
    ))
}

async fn submit_output(State(app): State<Arc<App>>, Path(doc): Path<String>) -> ApiResult<OpDone> {
    let doc = parse_doc(&doc)?;
    let me = app.node.org();
    let what = "an output draft";
    let (team, year) = app
        .node
        .with_gov(|gov| match created_kind(gov, &doc, what)? {
            DocKind::OutputDraft { team, year } => {
                if gov.coordinator(&team).map(|c| c.org) != Some(me) {
                    return Err(ApiError::refused(
                        "not-coordinator",
                        format!("only the coordinator of {team} submits its output"),
                    ));
                }
                Ok((team, year))
            }
            _ => Err(wrong_document(&doc, what)),
        })
        .await?;
    submit_attested(&app, &doc, |attestation| OpKind::SubmitOutput {
        team,
        year,
        doc,
        attestation,
    })
    .await
}

async fn submit_national_report(
    State(app): State<Arc<App>>,
    Path(doc): Path<String>,
) -> ApiResult<OpDone> {
    let doc = parse_doc(&doc)?;
    let what = "a national report";
    let (country, year): (Country, u16) = app
        .node
        .with_gov(|gov| match created_kind(gov, &doc, what)? {
            DocKind::NationalReport { country, year } => Ok((country, year)),
            _ => Err(wrong_document(&doc, what)),
        })
        .await?;
    submit_attested(&app, &doc, |attestation| OpKind::SubmitNationalReport {
        country,
        year,
        doc,
        attestation,
    })
    .await
}

async fn docs(State(app): State<Arc<App>>) -> ApiResult<Vec<wsis_protocol::gov::DocumentInfo>> {
    Ok(Json(
        app.node
            .with_gov(|gov| {
                gov.documents()
                    .iter()
                    .filter_map(|d| gov.document(d))
                    .collect()
            })
            .await,
    ))
}

async fn doc(State(app): State<Arc<App>>, Path(doc): Path<String>) -> ApiResult<DocView> {
    let doc = parse_doc(&doc)?;
    doc_view(&app, &doc).await
}

async fn doc_view(app: &App, doc: &DocId) -> ApiResult<DocView> {
    app.node
        .with_docs(|gov, docs| {
            let info = gov.document(doc).ok_or_else(|| unknown_document(doc))?;
            let json = docs
                .export(doc)
                .map_err(|e| ApiError::internal(format!("cannot export {doc}: {e}")))?;
            let content = serde_json::from_slice(&json)
                .map_err(|e| ApiError::internal(format!("export of {doc} is not JSON: {e}")))?;
            Ok(Json(DocView {
                doc: doc.to_string(),
                scope: serde_json::to_value(&info.scope).unwrap_or_default(),
                creator: info.creator.to_string(),
                heads: docs.heads(doc).iter().map(|h| h.to_string()).collect(),
                content_hash: hex::encode(Sha256::digest(&json)),
                content,
            }))
        })
        .await
}

// ---------------------------------------------------------------------------------------------------------------
// Stocktaking.

#[derive(serde::Deserialize)]
struct YearQuery {
    year: u16,
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

async fn stocktake(
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

async fn assemble(
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
