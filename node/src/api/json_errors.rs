//! Every error the API answers is its one-line JSON error, also those axum produces itself before a handler
//! runs: an unrouted path (404), a method a route does not serve (405), a path or query that does not parse
//! (400). Scripts and the CLI then read one format for every failure, and nothing answers with an empty body.

use super::ErrorBody;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

/// The longest explanation kept from a framework rejection's text (it can quote the request).
const MAX_REASON_CHARS: usize = 300;

/// Rewrites a non-JSON error response into `{"error", "code"}`, keeping its status.
pub(super) async fn json_errors(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let text = axum::body::to_bytes(response.into_body(), 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let reason: String = super::one_safe_line(
        text.split(['\r', '\n'])
            .find(|l| !l.trim().is_empty())
            .unwrap_or(""),
    )
    .chars()
    .take(MAX_REASON_CHARS)
    .collect();
    let (code, default) = match status {
        StatusCode::NOT_FOUND => ("not-routed", "no such route (see docs/api.md)"),
        StatusCode::METHOD_NOT_ALLOWED => ("bad-method", "this route does not serve that method"),
        StatusCode::PAYLOAD_TOO_LARGE => ("too-large", "the request body is too large"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("bad-json", "the body must be JSON"),
        s if s.is_server_error() => ("internal", "internal error (see the node's log)"),
        _ => ("bad-request", "the request could not be read"),
    };
    let error = if reason.is_empty() {
        default.to_string()
    } else {
        reason
    };
    (
        status,
        Json(ErrorBody {
            error,
            code: code.to_string(),
        }),
    )
        .into_response()
}
