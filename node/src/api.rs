//! The local HTTP API: how the `wsis` CLI, scripts and the testnet drive a running node.
//!
//! - **Loopback by default** (`api_addr` in `config.toml`); every request needs `Authorization: Bearer <token>`
//!   with the token from `DATA/api.token`. The token is the API's only protection, which is why the default
//!   address is loopback.
//! - **JSON in, JSON out.** Errors are `{"error": "<one line>", "code": "<stable code>"}` with 400 (bad input),
//!   401 (no or wrong token), 404 (unknown id), 409 (refused by the governance rules or not possible yet) or 500.
//! - **Acknowledged means durable**: a 2xx reply to a write comes after the op or envelope is flushed to disk.
//! - **A refused command changes nothing**: governance ops go through [`Node::submit_checked`] (sealed and read
//!   back by the peers' strict decoder, then judged by the replay without being inserted), and document edits are
//!   checked against the writer rules before the edit is made.
//! - **One source of rules**: the handlers parse the request, look up what the op needs (404 for an id that
//!   does not exist) and build the op; whether the op is allowed is the replay's answer, with its stable code
//!   (`not-coordinator`, `not-attendee`, …, listed in `docs/api.md`). The only checks of their own are guards
//!   against ops the rules accept but that would change nothing (joining a team twice, admitting twice).
//!
//! Every route is listed in [`ROUTES`]; `docs/api.md` documents each one and a test keeps the two in step.

mod documents;
mod json_errors;
mod meetings;
mod motions;
mod parse;
mod status;
mod stocktake;
mod teams;
pub mod types;

use crate::node::{DocError, Node, SubmitError};
use axum::extract::rejection::JsonRejection;
use axum::extract::DefaultBodyLimit;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use documents::{
    doc, docs, draft_national_report, draft_output, edit, submit_national_report, submit_output,
};
use meetings::{approve, attend, convene, meetings, minutes};
use motions::{motions, nominate, propose, vote};
use status::{admit, op_info, orgs, status};
use std::net::SocketAddr;
use std::sync::Arc;
use stocktake::{assemble, stocktake};
use teams::{join_team, leave_team, modalities, teams};
use types::{ErrorBody, OpDone};
use wsis_protocol::gov::Governance;
use wsis_protocol::ids::OrgId;

/// Request bodies larger than this are refused before they are read (the largest legitimate body is a section
/// of text).
pub const MAX_REQUEST_BYTES: usize = 1024 * 1024;
/// Text in one edit or one paragraph of minutes at most.
pub const MAX_TEXT_BYTES: usize = 64 * 1024;

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

/// The sections output drafts and national reports start with: the content schema's.
pub use wsis_protocol::content::{NATIONAL_REPORT_SECTIONS, OUTPUT_SECTIONS};

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

/// An error message is one line a terminal can print safely, whatever the request echoed into it: control
/// characters (newlines, escape sequences) are shown escaped, and a long message is cut.
const MAX_ERROR_CHARS: usize = 500;

pub(crate) fn one_safe_line(message: &str) -> String {
    let mut out = String::new();
    for (i, c) in message.chars().enumerate() {
        if i == MAX_ERROR_CHARS {
            out.push('…');
            break;
        }
        if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: one_safe_line(&self.message),
            code: self.code.to_string(),
        };
        (self.status, Json(body)).into_response()
    }
}

/// A refused op keeps the code of the rule that refused it: the strict decoder's (400: the request asked for an op
/// no peer accepts), the replay's invalidity reason or structural refusal (409: the governance rules say no).
impl From<SubmitError> for ApiError {
    fn from(e: SubmitError) -> Self {
        let message = e.to_string();
        match e {
            SubmitError::Malformed(op) => ApiError::bad(op.code(), message),
            SubmitError::Invalid(why) => ApiError::refused(why.code(), message),
            SubmitError::Refused(refusal) => ApiError::refused(refusal.code(), message),
            SubmitError::Parked(_) => ApiError::refused("parked", message),
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
        .layer(axum::middleware::from_fn(json_errors::json_errors))
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
// Shared by the handlers.

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
