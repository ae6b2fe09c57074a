//! Parsing what the user typed: ids, team codes and text bounds, each refused with an API error naming
//! what was expected.

use super::{ApiError, MAX_TEXT_BYTES};
use std::str::FromStr;
use wsis_protocol::gov::Governance;
use wsis_protocol::ids::{DocId, OpId, OrgId};
use wsis_protocol::op::TeamCode;

pub(super) fn parse_org(s: &str) -> Result<OrgId, ApiError> {
    OrgId::from_str(s.trim()).map_err(|_| {
        ApiError::bad(
            "bad-id",
            format!("`{s}` is not an organisation id (org_ followed by 64 hex digits)"),
        )
    })
}

pub(super) fn parse_op(s: &str, what: &str) -> Result<OpId, ApiError> {
    OpId::from_str(s.trim()).map_err(|_| {
        ApiError::bad(
            "bad-id",
            format!("`{s}` is not a {what} id (op_ followed by 64 hex digits)"),
        )
    })
}

pub(super) fn parse_doc(s: &str) -> Result<DocId, ApiError> {
    DocId::from_str(s.trim()).map_err(|_| {
        ApiError::bad(
            "bad-id",
            format!("`{s}` is not a document id (doc_ followed by 64 hex digits)"),
        )
    })
}

pub(super) fn parse_team(gov: &Governance, s: &str) -> Result<TeamCode, ApiError> {
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

pub(super) fn check_text(text: &str) -> Result<(), ApiError> {
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
