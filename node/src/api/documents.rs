//! Documents: output drafts and national reports — creating them with their structure, editing a section or
//! the activities, attesting and submitting them, and reading a document back.

use super::parse::{check_text, parse_doc, parse_team};
use super::types::{DocView, EditRequest, NationalReportRequest, OpDone, OutputDraftRequest};
use super::{
    done, require_member, ApiError, ApiResult, App, MAX_SECTION_NAME_BYTES,
    NATIONAL_REPORT_SECTIONS, OUTPUT_SECTIONS,
};
use automerge::transaction::Transactable;
use automerge::{ObjType, ReadDoc, ROOT};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::Json;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use wsis_protocol::gov::{DocumentScope, Governance};
use wsis_protocol::ids::{DocId, OrgId};
use wsis_protocol::op::{Attestation, DocKind, OpKind, StakeholderType};

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

pub(super) async fn draft_output(
    State(app): State<Arc<App>>,
    body: Result<Json<OutputDraftRequest>, JsonRejection>,
) -> ApiResult<OpDone> {
    let Json(req) = body?;
    draft(
        &app,
        |gov, me| {
            let team = parse_team(gov, &req.team)?;
            if !gov.team_members(&team).contains(me) {
                return Err(ApiError::refused(
                    "not-team-member",
                    format!("the request needs a member of team {team} (join the team first)"),
                ));
            }
            Ok(DocKind::OutputDraft {
                team,
                year: req.year,
            })
        },
        &OUTPUT_SECTIONS,
        true,
    )
    .await
}

pub(super) async fn draft_national_report(
    State(app): State<Arc<App>>,
    body: Result<Json<NationalReportRequest>, JsonRejection>,
) -> ApiResult<OpDone> {
    let Json(req) = body?;
    draft(
        &app,
        |gov, me| match gov.org(me) {
            Some(o) if o.stakeholder == StakeholderType::Government => {
                let country = o.country.ok_or_else(|| {
                    ApiError::refused(
                        "no-country",
                        "this government has no country in its inception",
                    )
                })?;
                Ok(DocKind::NationalReport {
                    country,
                    year: req.year,
                })
            }
            _ => Err(ApiError::refused(
                "not-government",
                "only a government writes a national implementation report",
            )),
        },
        &NATIONAL_REPORT_SECTIONS,
        false,
    )
    .await
}

/// Creates a document of the kind `kind` grants this (admitted) organisation, with the given structure; `kind`
/// refuses when the organisation may not write that document.
async fn draft(
    app: &App,
    kind: impl FnOnce(&Governance, &OrgId) -> Result<DocKind, ApiError>,
    sections: &[&str],
    activities: bool,
) -> ApiResult<OpDone> {
    let me = app.node.org();
    let kind = app
        .node
        .with_gov(|gov| {
            require_member(gov, &me)?;
            kind(gov, &me)
        })
        .await?;
    create_document(app, kind, sections, activities).await
}

pub(super) async fn edit(
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
                "an edit is `section` with `text` or `append`, or `activity` alone",
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

/// Checks that this organisation may write `doc` now, so an edit that could never be published is not made.
pub(super) async fn check_writer(app: &App, doc: &DocId) -> Result<(), ApiError> {
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
pub(super) async fn submit_attested(
    app: &App,
    doc: &DocId,
    submission: impl FnOnce(Attestation) -> OpKind,
) -> ApiResult<OpDone> {
    let attestation = attestation_now(app, doc).await?;
    Ok(done(
        app.node.submit_checked(submission(attestation)).await?,
    ))
}

pub(super) async fn submit_output(
    State(app): State<Arc<App>>,
    Path(doc): Path<String>,
) -> ApiResult<OpDone> {
    let me = app.node.org();
    submit_document(&app, &doc, "an output draft", |gov, kind| match kind {
        DocKind::OutputDraft { team, year } => {
            Some(if gov.coordinator(&team).map(|c| c.org) != Some(me) {
                Err(ApiError::refused(
                    "not-coordinator",
                    format!("only the coordinator of {team} submits its output"),
                ))
            } else {
                Ok(move |doc, attestation| OpKind::SubmitOutput {
                    team,
                    year,
                    doc,
                    attestation,
                })
            })
        }
        _ => None,
    })
    .await
}

pub(super) async fn submit_national_report(
    State(app): State<Arc<App>>,
    Path(doc): Path<String>,
) -> ApiResult<OpDone> {
    submit_document(&app, &doc, "a national report", |_, kind| match kind {
        DocKind::NationalReport { country, year } => {
            Some(Ok(move |doc, attestation| OpKind::SubmitNationalReport {
                country,
                year,
                doc,
                attestation,
            }))
        }
        _ => None,
    })
    .await
}

/// Submits the created document `doc`, which must be `what`: `submission` picks the kind it accepts (`None` for
/// any other, answered as the wrong document), checks who may submit it, and builds the submission op from the
/// document's id and its attestation as this node has it now.
async fn submit_document<S>(
    app: &App,
    doc: &str,
    what: &str,
    submission: impl FnOnce(&Governance, DocKind) -> Option<Result<S, ApiError>>,
) -> ApiResult<OpDone>
where
    S: FnOnce(DocId, Attestation) -> OpKind,
{
    let doc = parse_doc(doc)?;
    let build = app
        .node
        .with_gov(|gov| {
            let kind = created_kind(gov, &doc, what)?;
            submission(gov, kind).unwrap_or_else(|| Err(wrong_document(&doc, what)))
        })
        .await?;
    submit_attested(app, &doc, |attestation| build(doc, attestation)).await
}

pub(super) async fn docs(
    State(app): State<Arc<App>>,
) -> ApiResult<Vec<wsis_protocol::gov::DocumentInfo>> {
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

pub(super) async fn doc(
    State(app): State<Arc<App>>,
    Path(doc): Path<String>,
) -> ApiResult<DocView> {
    let doc = parse_doc(&doc)?;
    doc_view(&app, &doc).await
}

pub(super) async fn doc_view(app: &App, doc: &DocId) -> ApiResult<DocView> {
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
