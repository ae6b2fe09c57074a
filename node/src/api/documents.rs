//! Documents: output drafts and national reports — creating them with their structure, editing a section or
//! the activities, attesting and submitting them, and reading a document back.
//!
//! What a document holds is the content schema's business ([`wsis_protocol::content`]: keys, sections, how each
//! edit is written); who may create, write or submit one is the replay's and the engine's. This file only turns
//! requests into ops and schema edits and their refusals into API errors: ops go through `submit_checked` (the
//! replay's refusal, mapped by the API), document writes through the engine's publish, which runs exactly what a
//! peer runs and rolls the edit back if a peer would refuse it ([`publish`]).

use super::parse::{check_text, parse_doc, parse_team};
use super::types::{DocView, EditRequest, NationalReportRequest, OpDone, OutputDraftRequest};
use super::{done, ApiError, ApiResult, App};
use crate::engine::{chain, EditError, PublishError, ReceiveError};
use crate::node::DocError;
use automerge::transaction::Transaction;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::Json;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use wsis_protocol::content::{self, ContentError, Schema};
use wsis_protocol::gov::{DocumentScope, Governance};
use wsis_protocol::ids::DocId;
use wsis_protocol::op::{Attestation, DocKind, OpKind};

/// Creates a document and, as its creator, gives it its structure ([`content::create_skeleton`]), so co-authors
/// only ever edit inside it.
async fn create_document(app: &App, kind: DocKind) -> ApiResult<OpDone> {
    let op = app
        .node
        .submit_checked(OpKind::CreateDoc { kind: kind.clone() })
        .await?;
    let doc = DocId(op.id().0);
    let schema = app.node.with_gov(|gov| Schema::of_kind(gov, &kind)).await;
    app.node
        .edit(&doc, |tx| content::create_skeleton(tx, &schema))
        .await
        .map_err(|e| doc_error(&doc, e))?;
    publish(app, &doc).await?;
    Ok(done(op))
}

pub(super) async fn draft_output(
    State(app): State<Arc<App>>,
    body: Result<Json<OutputDraftRequest>, JsonRejection>,
) -> ApiResult<OpDone> {
    let Json(req) = body?;
    let team = app.node.with_gov(|gov| parse_team(gov, &req.team)).await?;
    create_document(
        &app,
        DocKind::OutputDraft {
            team,
            year: req.year,
        },
    )
    .await
}

pub(super) async fn draft_national_report(
    State(app): State<Arc<App>>,
    body: Result<Json<NationalReportRequest>, JsonRejection>,
) -> ApiResult<OpDone> {
    let Json(req) = body?;
    let me = app.node.org();
    // The report's country is this organisation's (from its inception); whether it may write one is the replay's.
    let country = app
        .node
        .with_gov(|gov| gov.org(&me).and_then(|o| o.country))
        .await
        .ok_or_else(|| {
            ApiError::refused(
                "no-country",
                "this organisation has no country in its inception: only a government writes a national \
                 implementation report",
            )
        })?;
    create_document(
        &app,
        DocKind::NationalReport {
            country,
            year: req.year,
        },
    )
    .await
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
    write(&app, &doc, |tx, schema| match &change {
        Change::Set(section, text) => content::set_section(tx, schema, section, text),
        Change::Append(section, text) => content::append_to_section(tx, schema, section, text),
        Change::Activity(text) => content::append_activity(tx, schema, text),
    })
    .await?;
    doc_view(&app, &doc).await
}

/// Writes to `doc` with a content-schema edit and publishes it: the one way the API changes a document. The
/// schema is the document's (from the governance state: 404 for an unknown document); a schema refusal (an
/// unknown section, a container the document does not have or does not have yet) writes nothing; a publish a
/// peer would refuse rolls the edit back ([`publish`]).
pub(super) async fn write(
    app: &App,
    doc: &DocId,
    f: impl FnOnce(&mut Transaction<'_>, &Schema) -> Result<(), ContentError>,
) -> Result<(), ApiError> {
    let schema = app
        .node
        .with_gov(|gov| {
            let info = gov.document(doc).ok_or_else(|| unknown_document(doc))?;
            Ok::<_, ApiError>(Schema::of_scope(gov, &info.scope))
        })
        .await?;
    // An Automerge error aborts the transaction; a schema refusal comes before anything is written.
    let outcome = app
        .node
        .edit(doc, |tx| match f(tx, &schema) {
            Err(ContentError::Automerge(e)) => Err(e),
            other => Ok(other),
        })
        .await
        .map_err(|e| doc_error(doc, e))?;
    outcome.map_err(content_error)?;
    publish(app, doc).await
}

/// Publishes `doc`'s unpublished changes. Refused (409) when a peer would refuse them, with the reason a peer
/// gives; the changes are then rolled back, so the document here is again what is stored and what peers have.
pub(super) async fn publish(app: &App, doc: &DocId) -> Result<(), ApiError> {
    app.node
        .publish(doc)
        .await
        .map(|_| ())
        .map_err(|e| doc_error(doc, e))
}

fn content_error(e: ContentError) -> ApiError {
    match e {
        ContentError::UnknownSection { .. } => ApiError::bad("unknown-section", e.to_string()),
        ContentError::NoContainer(_) => ApiError::bad("wrong-content", e.to_string()),
        ContentError::NotSynced(_) => ApiError::refused("not-synced", e.to_string()),
        _ => ApiError::refused("document", e.to_string()),
    }
}

/// An engine refusal as the API answers it: the reason a peer would give, with a stable code.
fn doc_error(doc: &DocId, e: DocError) -> ApiError {
    match &e {
        DocError::Publish(PublishError::Refused { reason, discarded }) => {
            let code = match reason {
                ReceiveError::Denied(_) => "not-writer",
                ReceiveError::DocumentFull { .. } => "document-full",
                ReceiveError::TooManyActors { .. } => "too-many-actors",
                _ => "not-publishable",
            };
            ApiError::refused(
                code,
                format!(
                    "peers would refuse this change to {doc}: {}; {discarded} unpublished change(s) rolled back",
                    chain(reason)
                ),
            )
        }
        DocError::Publish(PublishError::Store(_)) => {
            ApiError::internal(format!("{doc} not stored: {}", chain(&e)))
        }
        DocError::Edit(EditError::ChangeTooLarge { .. } | EditError::TooManyOps { .. }) => {
            ApiError::bad("too-large", chain(&e))
        }
        // Refused before anything is committed or stored (the engine's edit-time caps).
        DocError::Edit(EditError::DocumentFull { .. }) => {
            ApiError::refused("document-full", chain(&e))
        }
        DocError::Edit(EditError::TooManyActors { .. }) => {
            ApiError::refused("too-many-actors", chain(&e))
        }
        _ => ApiError::refused("document", chain(&e)),
    }
}

/// Attests the document as this node has it now: publishes pending changes, then signs heads and content hash.
async fn attestation_now(app: &App, doc: &DocId) -> Result<Attestation, ApiError> {
    publish(app, doc).await?;
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
    // Whether this organisation coordinates the team is the replay's to say (`submit_checked`).
    submit_document(&app, &doc, "an output draft", |kind| match kind {
        DocKind::OutputDraft { team, year } => Some(move |doc, attestation| OpKind::SubmitOutput {
            team,
            year,
            doc,
            attestation,
        }),
        _ => None,
    })
    .await
}

pub(super) async fn submit_national_report(
    State(app): State<Arc<App>>,
    Path(doc): Path<String>,
) -> ApiResult<OpDone> {
    submit_document(&app, &doc, "a national report", |kind| match kind {
        DocKind::NationalReport { country, year } => {
            Some(move |doc, attestation| OpKind::SubmitNationalReport {
                country,
                year,
                doc,
                attestation,
            })
        }
        _ => None,
    })
    .await
}

/// Submits the created document `doc`, which must be `what`: `submission` picks the kind it accepts (`None` for
/// any other, answered as the wrong document) and builds the submission op from the document's id and its
/// attestation as this node has it now. Who may submit it is the replay's to say.
async fn submit_document<S>(
    app: &App,
    doc: &str,
    what: &str,
    submission: impl FnOnce(DocKind) -> Option<S>,
) -> ApiResult<OpDone>
where
    S: FnOnce(DocId, Attestation) -> OpKind,
{
    let doc = parse_doc(doc)?;
    let build = app
        .node
        .with_gov(|gov| {
            let kind = created_kind(gov, &doc, what)?;
            submission(kind).ok_or_else(|| wrong_document(&doc, what))
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
