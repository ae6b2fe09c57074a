//! Meetings: convening, attending, appending minutes to the record and approving it.

use super::documents::{doc_view, submit_attested, write};
use super::parse::{check_text, parse_op, parse_team};
use super::types::{ConveneRequest, DocView, MinutesRequest, OpDone};
use super::{done, ApiError, ApiResult, App};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::Json;
use std::sync::Arc;
use wsis_protocol::content;
use wsis_protocol::gov::MeetingInfo;
use wsis_protocol::ids::{DocId, OpId};
use wsis_protocol::op::{MeetingKind, OpKind};

pub(super) async fn meetings(State(app): State<Arc<App>>) -> ApiResult<Vec<MeetingInfo>> {
    Ok(Json(app.node.with_gov(|gov| gov.meetings()).await))
}

pub(super) async fn convene(
    State(app): State<Arc<App>>,
    body: Result<Json<ConveneRequest>, JsonRejection>,
) -> ApiResult<OpDone> {
    let Json(req) = body?;
    check_text(&req.title)?;
    // Who may convene which meeting is the replay's rule (`not-coordinator`, `not-secretariat`, `not-member`).
    let meeting =
        app.node
            .with_gov(|gov| match req.kind.as_str() {
                "team" => {
                    let team = req.team.as_deref().ok_or_else(|| {
                        ApiError::bad("missing-team", "a team meeting needs `team`")
                    })?;
                    Ok(MeetingKind::Team(parse_team(gov, team)?))
                }
                "recommendation" => Ok(MeetingKind::Recommendation),
                "coordinators" => Ok(MeetingKind::Coordinators),
                other => Err(ApiError::bad(
                    "bad-kind",
                    format!("unknown meeting kind `{other}` (team, recommendation, coordinators)"),
                )),
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
    write(&app, &record, |tx, schema| {
        Ok(content::create_skeleton(tx, schema)?)
    })
    .await?;
    Ok(done(op))
}

pub(super) async fn attend(
    State(app): State<Arc<App>>,
    Path(meeting): Path<String>,
) -> ApiResult<OpDone> {
    let meeting = known_meeting(&app, &meeting).await?;
    Ok(done(
        app.node.submit_checked(OpKind::Attend { meeting }).await?,
    ))
}

pub(super) async fn minutes(
    State(app): State<Arc<App>>,
    Path(meeting): Path<String>,
    body: Result<Json<MinutesRequest>, JsonRejection>,
) -> ApiResult<DocView> {
    let Json(req) = body?;
    check_text(&req.text)?;
    let meeting = parse_op(&meeting, "meeting")?;
    let record = DocId(meeting.0);
    let by = app.node.org();
    write(&app, &record, |tx, schema| {
        content::append_minute(tx, schema, &by, &req.text)
    })
    .await?;
    doc_view(&app, &record).await
}

pub(super) async fn approve(
    State(app): State<Arc<App>>,
    Path(meeting): Path<String>,
) -> ApiResult<OpDone> {
    let meeting = known_meeting(&app, &meeting).await?;
    submit_attested(&app, &DocId(meeting.0), |record| OpKind::ApproveRecord {
        meeting,
        record,
    })
    .await
}

/// The meeting `meeting` names, if this node knows it (404 otherwise). Who may act on it is the replay's rule.
async fn known_meeting(app: &App, meeting: &str) -> Result<OpId, ApiError> {
    let meeting = parse_op(meeting, "meeting")?;
    let known = app
        .node
        .with_gov(|gov| gov.meeting(&meeting).is_some())
        .await;
    if !known {
        return Err(ApiError::not_found(
            "unknown-meeting",
            format!("no meeting {meeting}"),
        ));
    }
    Ok(meeting)
}
