//! Meetings: convening, attending, appending minutes to the record and approving it.

use super::documents::{doc_view, submit_attested, write};
use super::parse::{check_text, parse_op, parse_team};
use super::types::{ConveneRequest, DocView, MinutesRequest, OpDone};
use super::{done, require_member, ApiError, ApiResult, App};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::Json;
use std::sync::Arc;
use wsis_protocol::content;
use wsis_protocol::gov::MeetingInfo;
use wsis_protocol::ids::{DocId, OpId, OrgId};
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
    let me = app.node.org();
    let meeting = app
        .node
        .with_gov(|gov| {
            require_member(gov, &me)?;
            let secretariat = gov.federation().secretariat.contains(&me);
            match req.kind.as_str() {
                "team" => {
                    let team = req.team.as_deref().ok_or_else(|| {
                        ApiError::bad("missing-team", "a team meeting needs `team`")
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
    let meeting = checked_meeting(&app, &meeting, true, |info, me| {
        if info.attendees.contains(me) {
            return Err(ApiError::refused("already", "already attending"));
        }
        Ok(())
    })
    .await?;
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
    let meeting = checked_meeting(&app, &meeting, false, |info, me| {
        if info.convener != *me && !info.attendees.contains(me) {
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

/// The meeting `meeting` names, once this organisation may act on it: admitted first if `admitted`, then the
/// meeting known, then `check` of the meeting and this organisation.
async fn checked_meeting(
    app: &App,
    meeting: &str,
    admitted: bool,
    check: impl FnOnce(&MeetingInfo, &OrgId) -> Result<(), ApiError>,
) -> Result<OpId, ApiError> {
    let meeting = parse_op(meeting, "meeting")?;
    let me = app.node.org();
    app.node
        .with_gov(|gov| {
            if admitted {
                require_member(gov, &me)?;
            }
            let info = gov.meeting(&meeting).ok_or_else(|| {
                ApiError::not_found("unknown-meeting", format!("no meeting {meeting}"))
            })?;
            check(&info, &me)
        })
        .await?;
    Ok(meeting)
}
