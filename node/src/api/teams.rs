//! The teams: listing them, joining and leaving one, and the coordinator setting its working modalities.

use super::parse::{check_text, parse_team};
use super::types::{ModalitiesRequest, OpDone, TeamRow};
use super::{done, org_name, ApiError, ApiResult, App};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::Json;
use std::sync::Arc;
use wsis_protocol::op::OpKind;

pub(super) async fn teams(State(app): State<Arc<App>>) -> ApiResult<Vec<TeamRow>> {
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

pub(super) async fn join_team(
    State(app): State<Arc<App>>,
    Path(team): Path<String>,
) -> ApiResult<OpDone> {
    change_membership(&app, &team, Membership::Join).await
}

pub(super) async fn leave_team(
    State(app): State<Arc<App>>,
    Path(team): Path<String>,
) -> ApiResult<OpDone> {
    change_membership(&app, &team, Membership::Leave).await
}

/// Which way a membership request goes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Membership {
    Join,
    Leave,
}

/// Joins or leaves `team`. Who may join is the replay's rule (`not-member`: not admitted); joining a team this
/// organisation is in, or leaving one it is not in, is an op the rules accept but that would change nothing, so
/// it is refused here (`already`, `not-team-member`) rather than signed.
async fn change_membership(app: &App, team: &str, change: Membership) -> ApiResult<OpDone> {
    let me = app.node.org();
    let team = app
        .node
        .with_gov(|gov| {
            let team = parse_team(gov, team)?;
            match (change, gov.team_members(&team).contains(&me)) {
                (Membership::Join, true) => Err(ApiError::refused(
                    "already",
                    format!("already a member of {team}"),
                )),
                (Membership::Leave, false) => Err(ApiError::refused(
                    "not-team-member",
                    format!("not a member of {team}"),
                )),
                _ => Ok(team),
            }
        })
        .await?;
    let kind = match change {
        Membership::Join => OpKind::JoinTeam { team },
        Membership::Leave => OpKind::LeaveTeam { team },
    };
    Ok(done(app.node.submit_checked(kind).await?))
}

pub(super) async fn modalities(
    State(app): State<Arc<App>>,
    Path(team): Path<String>,
    body: Result<Json<ModalitiesRequest>, JsonRejection>,
) -> ApiResult<OpDone> {
    let Json(req) = body?;
    check_text(&req.text)?;
    // Only the team's coordinator sets them: the replay's rule (`not-coordinator`).
    let team = app.node.with_gov(|gov| parse_team(gov, &team)).await?;
    Ok(done(
        app.node
            .submit_checked(OpKind::SetModalities {
                team,
                text: req.text,
            })
            .await?,
    ))
}
