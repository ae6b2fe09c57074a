//! Planning and assembling a bundle, on the Chair's node: [`plan`] decides from the Chair's replica what closes
//! the year and which document states must be supplied; [`assemble`] checks the supplied documents, writes every
//! file and seals the bundle.

use super::closing::{
    closes_year, closing, closing_ballots, replay, Attested, ClosingError, ClosingPoint,
    ReplayError,
};
use super::documents::{check_document, group, view_hashes, DocumentError};
use super::layout::{automerge_path, json_path, GENESIS, MANIFEST, OPS, VERIFY_TXT, VIEW};
use super::manifest::{seal, verify_text, ManifestHeader, SealError};
use super::ops_file::encode_ops;
use crate::crypto::{PublicKey, SecretKey};
use crate::gov::Governance;
use crate::ids::Hash32;
use crate::ids::{sha256, DocId, OpId, OrgId};
use crate::op::SignedOp;
use crate::view::StocktakeView;
use std::collections::BTreeMap;

/// Why no bundle can be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AssembleError {
    #[error("no checkpoint tabled in a coordinators' meeting for {0} has passed")]
    NoPassedCheckpoint(u16),
    #[error("submissions for {year} are not in the history of the closing checkpoint {checkpoint}, pass a new checkpoint first: {ops:?}")]
    UncoveredSubmissions {
        year: u16,
        checkpoint: OpId,
        ops: Vec<OpId>,
    },
    #[error("{caller} is not the chair at the closing checkpoint ({chair} is)")]
    NotChair { caller: OrgId, chair: OrgId },
    #[error("the signing key is not the chair's inception key")]
    WrongKey,
    #[error(transparent)]
    Closing(#[from] ClosingError),
    #[error("rebuilding the closing point's history: {0}")]
    Replay(#[from] ReplayError),
    #[error("document {0} was not supplied")]
    MissingDocument(DocId),
    #[error("document {0} was supplied but is not attested")]
    UnplannedDocument(DocId),
    #[error("document {doc}: {error}")]
    Document {
        doc: DocId,
        error: Box<DocumentError>,
    },
    #[error(transparent)]
    Seal(#[from] SealError),
}

/// What a bundle for a year will hold, decided from the Chair's replica: the closing point, the ops of its history
/// and the document states the caller must supply ([`Plan::documents`]).
#[derive(Debug)]
pub struct Plan {
    year: u16,
    closing_checkpoint: OpId,
    closing_heads: Vec<OpId>,
    closing_point: ClosingPoint,
    not_chosen: Vec<OpId>,
    chair: OrgId,
    chair_key: PublicKey,
    ops: Vec<SignedOp>,
    replica: Governance,
    finalised: Governance,
    attested: Vec<Attested>,
}

impl Plan {
    pub fn year(&self) -> u16 {
        self.year
    }

    /// The Checkpoint motion that closes the year.
    pub fn closing_checkpoint(&self) -> OpId {
        self.closing_checkpoint
    }

    /// The closing point: the checkpoint motion and its ballots.
    pub fn closing_heads(&self) -> &[OpId] {
        &self.closing_heads
    }

    /// The closing point with its tally, as the verifier will count it.
    pub fn closing_point(&self) -> &ClosingPoint {
        &self.closing_point
    }

    /// The other passed checkpoints of the year in the Chair's replica, which were not chosen (earlier than the
    /// closing one, or concurrent with it and of a higher id).
    pub fn not_chosen(&self) -> &[OpId] {
        &self.not_chosen
    }

    pub fn chair(&self) -> OrgId {
        self.chair
    }

    /// Governance ops in the bundle, genesis included.
    pub fn op_count(&self) -> usize {
        self.ops.len() + 1
    }

    /// Every attestation the bundle must honour.
    pub fn attested(&self) -> &[Attested] {
        &self.attested
    }

    /// The documents to supply to [`assemble`], each as Automerge `save()` bytes at these heads (the union of the
    /// heads attested for it; one attestation in the usual case). The union may hold a change and one of its
    /// ancestors (contested submissions of one document): the document is saved at its
    /// [frontier](crate::rebuild::frontier), which [`crate::rebuild::document_at`] builds at and the verifier
    /// requires.
    pub fn documents(&self) -> BTreeMap<DocId, Vec<Hash32>> {
        let mut m: BTreeMap<DocId, Vec<Hash32>> = BTreeMap::new();
        for a in &self.attested {
            let v = m.entry(a.doc).or_default();
            v.extend(a.heads.iter().copied());
            v.sort();
            v.dedup();
        }
        m
    }
}

/// Decides what closes `year` in `gov` and what the bundle holds. The closing checkpoint is the latest passed
/// Checkpoint motion tabled in a coordinators' meeting convened for the year that this replica knows (concurrent
/// ones: the lower OpId); the closing point adds every valid ballot on it this replica holds, never a subset.
/// Everything is then judged on a replica of the closing point's history alone, by the checks the verifier runs
/// (`bundle/closing.rs`, [`ClosingError`]): what is attested is what the checkpoint's own history attests, and
/// the closing point must agree with it. `caller` must be the Chair there, and every valid submission for the
/// year in `gov` must be in the checkpoint's history (so that nothing submitted can be left out).
pub fn plan(gov: &Governance, year: u16, caller: &OrgId) -> Result<Plan, AssembleError> {
    let candidates: Vec<OpId> = gov
        .passed_checkpoints()
        .into_iter()
        .map(|(id, _)| id)
        .filter(|id| closes_year(gov, year, id))
        .collect();
    let latest = candidates
        .iter()
        .filter(|a| {
            !candidates
                .iter()
                .any(|b| b != *a && gov.is_ancestor(a, b) == Some(true))
        })
        .min()
        .copied()
        .ok_or(AssembleError::NoPassedCheckpoint(year))?;
    let mut not_chosen: Vec<OpId> = candidates.into_iter().filter(|c| *c != latest).collect();
    not_chosen.sort();
    let mut closing_heads = closing_ballots(gov, &latest);
    closing_heads.push(latest);
    closing_heads.sort();
    let genesis_id = gov.genesis().id();
    let history: Vec<SignedOp> = gov
        .history_of(&closing_heads)
        .into_iter()
        .filter(|op| op.id() != genesis_id)
        .cloned()
        .collect();
    let ops = crate::gov::topological_order(history);
    let base = Governance::new(gov.genesis().clone().verify().map_err(|error| {
        ReplayError::Signature {
            op: genesis_id,
            error,
        }
    })?)
    .map_err(|error| ReplayError::Refused {
        op: genesis_id,
        error: Box::new(error),
    })?;
    let replica = replay(base, ops.clone())?;
    let c = closing(&replica, year, &latest)?;
    let uncovered: Vec<OpId> = gov
        .submissions()
        .into_iter()
        .filter(|s| s.year == year && !c.finalised.contains(&s.op))
        .map(|s| s.op)
        .collect();
    if !uncovered.is_empty() {
        return Err(AssembleError::UncoveredSubmissions {
            year,
            checkpoint: latest,
            ops: uncovered,
        });
    }
    if c.chair != *caller {
        return Err(AssembleError::NotChair {
            caller: *caller,
            chair: c.chair,
        });
    }
    let chair_key = replica
        .inceptions
        .get(&c.chair)
        .map(|r| r.body().key)
        .ok_or(ClosingError::NoChair(latest))?;
    Ok(Plan {
        year,
        closing_checkpoint: latest,
        closing_heads,
        closing_point: c.point,
        not_chosen,
        chair: c.chair,
        chair_key,
        ops,
        replica,
        finalised: c.finalised,
        attested: c.attested,
    })
}

/// A complete bundle: relative path → bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    pub files: BTreeMap<String, Vec<u8>>,
}

impl Bundle {
    /// SHA-256 of `manifest.json`: what an `AdoptReport` motion names.
    pub fn manifest_hash(&self) -> Hash32 {
        Hash32(sha256(
            self.files.get(MANIFEST).map_or(&[][..], |v| v.as_slice()),
        ))
    }
}

/// Builds and signs the bundle. `documents` holds Automerge `save()` bytes at the heads of
/// [`Plan::documents`]; each is checked against its attestations before anything is signed.
pub fn assemble(
    plan: &Plan,
    chair: &SecretKey,
    documents: &BTreeMap<DocId, Vec<u8>>,
) -> Result<Bundle, AssembleError> {
    if chair.public() != plan.chair_key {
        return Err(AssembleError::WrongKey);
    }
    if let Some(extra) = documents
        .keys()
        .find(|d| !plan.attested.iter().any(|a| a.doc == **d))
    {
        return Err(AssembleError::UnplannedDocument(*extra));
    }
    let header = ManifestHeader {
        federation: plan.replica.federation_id(),
        year: plan.year,
        closing_checkpoint: plan.closing_checkpoint,
        chair: plan.chair,
        chair_key: plan.chair_key,
    };
    let mut content: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for (doc, attested) in group(&plan.attested) {
        let bytes = documents
            .get(&doc)
            .ok_or(AssembleError::MissingDocument(doc))?;
        let json = check_document(bytes, &attested).map_err(|error| AssembleError::Document {
            doc,
            error: Box::new(error),
        })?;
        content.insert(automerge_path(&doc), bytes.clone());
        content.insert(json_path(&doc), json);
    }
    content.insert(GENESIS.into(), plan.replica.genesis().bytes().to_vec());
    content.insert(OPS.into(), encode_ops(&plan.ops));
    let view = StocktakeView::compute(&plan.finalised, plan.year, &view_hashes(&plan.attested));
    content.insert(VIEW.into(), view.to_canonical_json());
    content.insert(VERIFY_TXT.into(), verify_text(&header).into_bytes());
    Ok(seal(&header, content, chair)?)
}
