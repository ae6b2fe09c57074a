//! Motions (proposing, voting) and the nomination of a recommended coordinator.

use super::parse::{parse_op, parse_org, parse_team};
use super::types::{MotionRequest, MotionSpec, NominateRequest, OpDone, VoteRequest};
use super::{done, ApiError, ApiResult, App};
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
    // Which motions belong in which meeting, and who may propose them, are the replay's rules; the teams are
    // canonicalised (sorted, deduplicated) when the op is sealed.
    let motion = app
        .node
        .with_gov(|gov| -> Result<MotionKind, ApiError> {
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
    // Who may vote (the electorate, once) is the replay's rule: `not-in-electorate`, `double-vote`.
    let known = app.node.with_gov(|gov| gov.motion(&motion).is_some()).await;
    if !known {
        return Err(ApiError::not_found(
            "unknown-motion",
            format!("no motion {motion}"),
        ));
    }
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
    // Whether the recommendation passed and recommends this organisation for this team is the replay's rule
    // (`motion-not-passed`), as is who may nominate (`not-nominating-authority`).
    let team = app
        .node
        .with_gov(|gov| {
            let team = parse_team(gov, &req.team)?;
            if gov.motion(&recommendation).is_none() {
                return Err(ApiError::not_found(
                    "unknown-motion",
                    format!("no motion {recommendation}"),
                ));
            }
            Ok(team)
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
