//! Motions (proposing, voting) and the nomination of a recommended coordinator.

use super::parse::{parse_op, parse_org, parse_team};
use super::types::{MotionRequest, MotionSpec, NominateRequest, OpDone, VoteRequest};
use super::{done, require_member, ApiError, ApiResult, App};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::Json;
use std::sync::Arc;
use wsis_protocol::ids::Hash32;
use wsis_protocol::op::{ChairRole, MotionKind, OpKind, Procedure};

pub(super) async fn motions(
    State(app): State<Arc<App>>,
) -> ApiResult<Vec<wsis_protocol::gov::MotionInfo>> {
    Ok(Json(app.node.with_gov(|gov| gov.motions()).await))
}

pub(super) async fn propose(
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

pub(super) async fn vote(
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

pub(super) async fn nominate(
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
