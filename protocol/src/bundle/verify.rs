//! The offline verifier: [`verify`] checks a bundle's every claim from its bytes and the federation id the user
//! pinned, and nothing else (no network, no node, no trust in the Chair beyond the signature it checks).

use super::closing::{
    closing, insert_all, threads, Attested, AttestedBy, ClosingError, ClosingPoint, ReplayError,
};
use super::documents::{check_document, group, view_hashes, DocumentError};
use super::layout::{
    automerge_path, check_path, json_path, PathError, ALLOWED_SIGNERS, GENESIS, MANIFEST, OPS,
    SHA256SUMS, SIGNATURE, VERIFY_TXT, VIEW,
};
use super::manifest::{
    changed_since_sealing, sha256sums, verify_text, Manifest, ManifestError, SEAL_FILES,
};
use super::ops_file::{decode_and_verify, split_ops, OpsFileError};
use super::sshsig;
use crate::gov::{Governance, InsertError};
use crate::ids::Hash32;
use crate::ids::{sha256, DocId, FederationId, OpId, OrgId};
use crate::limits::{MAX_BUNDLE_BYTES, MAX_BUNDLE_FILES, MAX_BUNDLE_FILE_BYTES};
use crate::op::OpKind;
use crate::view::StocktakeView;
use std::collections::{BTreeMap, BTreeSet};

/// Why a bundle failed verification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    #[error("more than {MAX_BUNDLE_FILES} files")]
    TooManyFiles,
    #[error("larger than {MAX_BUNDLE_FILE_BYTES} bytes")]
    FileTooLarge,
    #[error("the bundle is larger than {MAX_BUNDLE_BYTES} bytes")]
    BundleTooLarge,
    #[error("bad path: {0}")]
    Path(PathError),
    #[error("missing")]
    Missing,
    #[error("not listed in the manifest")]
    NotInManifest,
    #[error("listed in the manifest but not in the bundle")]
    MissingFromBundle,
    #[error("sha256 or size differs from the manifest")]
    ManifestMismatch,
    #[error("does not match the files (first differing entry: {0})")]
    SumsMismatch(String),
    #[error(transparent)]
    Manifest(ManifestError),
    #[error("the manifest names federation {found}, the pinned federation is {pinned}")]
    ManifestFederation {
        pinned: FederationId,
        found: FederationId,
    },
    #[error("does not name the manifest's chair key as the only signer")]
    AllowedSigners,
    #[error("signature: {0}")]
    Signature(sshsig::SshSigError),
    #[error("not a file of a bundle")]
    Unexpected,
    #[error("does not match the instructions generated from the manifest")]
    VerifyText,
    #[error("genesis: {0}")]
    Genesis(Box<InsertError>),
    #[error("{0}")]
    OpsFile(OpsFileError),
    #[error("{0}")]
    Replay(ReplayError),
    #[error(
        "op {0} is not in the history of the closing point (the checkpoint and its valid ballots)"
    )]
    BeyondClosingPoint(OpId),
    #[error("the manifest's closing checkpoint {0} is not in the bundle")]
    UnknownCheckpoint(OpId),
    #[error("ballot {ballot} on the closing checkpoint cites ops the bundle does not hold ({missing:?}): a closing point holds every ballot on its checkpoint in its history, and their history")]
    IncompleteClosingPoint { ballot: OpId, missing: Vec<OpId> },
    #[error("{0}")]
    Closing(ClosingError),
    #[error("the manifest names {manifest} as chair, the chair at the checkpoint was {chair}")]
    NotChair { manifest: OrgId, chair: OrgId },
    #[error("chair_key is not the inception key of the chair {0}")]
    ChairKey(OrgId),
    #[error("{0} attests this document, which is not in the bundle")]
    OmittedDocument(AttestedBy),
    #[error("no registered submission or approved record for the year attests this document")]
    Unregistered,
    #[error("{0}")]
    Document(Box<DocumentError>),
    #[error("differs from the canonical export of the bundled automerge document")]
    ExportMismatch,
    #[error("differs from the recomputed view at byte {0}")]
    ViewMismatch(usize),
}

/// A failed verification: the file at fault and why. One line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {problem}")]
pub struct VerifyError {
    pub file: String,
    pub problem: Box<Problem>,
}

fn fail<T>(file: &str, problem: Problem) -> Result<T, VerifyError> {
    Err(VerifyError {
        file: file.into(),
        problem: Box::new(problem),
    })
}

/// A bundle that passed every check, with what the report needs.
#[derive(Debug)]
pub struct VerifiedBundle {
    pub manifest: Manifest,
    pub manifest_hash: Hash32,
    /// The replica of the closing point's history (the checkpoint, its ballots and what they cite).
    pub replica: Governance,
    /// The replica of the closing checkpoint's own history: what it finalises, and what the bundle attests and
    /// its view shows.
    pub finalised: Governance,
    /// The closing point: the checkpoint, every ballot on it in the bundle, the tally.
    pub closing: ClosingPoint,
    pub year: u16,
    pub view: StocktakeView,
    pub attested: Vec<Attested>,
    /// Canonical JSON of every bundled document, parsed.
    pub documents: BTreeMap<DocId, serde_json::Value>,
}

/// Verifies a bundle against the federation id the user pinned. Checks, in this order (the first failure is
/// returned, naming its file): sizes and paths; the manifest parses and names the pinned federation; the Chair's
/// signature over it with the key in it; the files are exactly the manifest's, with its hashes and sizes;
/// `SHA256SUMS`; no file outside the layout; `VERIFY.txt`; the genesis hashes to the pinned id; every op decodes,
/// verifies strictly and replays, in order (a ballot on the checkpoint with missing parents names the incomplete
/// closing point), and nothing lies beyond the closing point (the checkpoint and every valid ballot on it); the
/// checkpoint passed by more than half of the coordinators and the manifest's chair held the Chair at it with
/// that key; no later passed checkpoint of the year is in the bundle, and what the checkpoint's own history
/// attests is exactly what the whole closing point attests (nothing brought in by a ballot); the bundled
/// documents are exactly the attested ones and each matches its attestations and its `.json`; the view recomputed
/// from the checkpoint's history is byte-identical.
pub fn verify(
    files: &BTreeMap<String, Vec<u8>>,
    federation: &FederationId,
) -> Result<VerifiedBundle, VerifyError> {
    if files.len() > MAX_BUNDLE_FILES {
        return fail(".", Problem::TooManyFiles);
    }
    let mut total = 0u64;
    for (p, b) in files {
        check_path(p).or_else(|e| fail(p, Problem::Path(e)))?;
        if b.len() > MAX_BUNDLE_FILE_BYTES {
            return fail(p, Problem::FileTooLarge);
        }
        total += b.len() as u64;
    }
    if total > MAX_BUNDLE_BYTES {
        return fail(".", Problem::BundleTooLarge);
    }
    let get = |p: &str| {
        files.get(p).ok_or_else(|| VerifyError {
            file: p.into(),
            problem: Box::new(Problem::Missing),
        })
    };
    let manifest_bytes = get(MANIFEST)?;
    let manifest =
        Manifest::parse(manifest_bytes).or_else(|e| fail(MANIFEST, Problem::Manifest(e)))?;
    let h = &manifest.header;
    if h.federation != *federation {
        return fail(
            MANIFEST,
            Problem::ManifestFederation {
                pinned: *federation,
                found: h.federation,
            },
        );
    }
    // Until the signature is checked, SHA256SUMS (not authenticated) is the best guide to which of the manifest
    // and the file checked against it changed since sealing; it only chooses the file an error names.
    let blame = |other: &'static str| {
        if changed_since_sealing(files, MANIFEST) && !changed_since_sealing(files, other) {
            MANIFEST
        } else {
            other
        }
    };
    if get(ALLOWED_SIGNERS)?.as_slice() != sshsig::allowed_signers_line(&h.chair_key).as_bytes() {
        return fail(blame(ALLOWED_SIGNERS), Problem::AllowedSigners);
    }
    sshsig::verify(get(SIGNATURE)?, manifest_bytes, &h.chair_key)
        .or_else(|e| fail(blame(SIGNATURE), Problem::Signature(e)))?;
    if manifest
        .files
        .keys()
        .any(|p| SEAL_FILES.contains(&p.as_str()))
    {
        return fail(MANIFEST, Problem::Unexpected);
    }
    for (p, b) in files {
        if SEAL_FILES.contains(&p.as_str()) {
            continue;
        }
        match manifest.files.get(p) {
            None => return fail(p, Problem::NotInManifest),
            Some((hash, size)) if *size != b.len() as u64 || *hash != Hash32(sha256(b)) => {
                return fail(p, Problem::ManifestMismatch)
            }
            Some(_) => {}
        }
    }
    if let Some(p) = manifest.files.keys().find(|p| !files.contains_key(*p)) {
        return fail(p, Problem::MissingFromBundle);
    }
    let sums = get(SHA256SUMS)?;
    let expected = sha256sums(files);
    if *sums != expected {
        let theirs = String::from_utf8_lossy(sums);
        let ours = String::from_utf8_lossy(&expected);
        let first = theirs
            .lines()
            .zip(ours.lines())
            .find(|(a, b)| a != b)
            .map(|(a, _)| a.to_string())
            .unwrap_or_else(|| "line count".into());
        return fail(SHA256SUMS, Problem::SumsMismatch(first));
    }
    // The layout: fixed files plus document pairs.
    let fixed = [VERIFY_TXT, GENESIS, OPS, VIEW];
    for p in fixed {
        get(p)?;
    }
    let mut doc_files: BTreeSet<DocId> = BTreeSet::new();
    for p in files.keys() {
        if SEAL_FILES.contains(&p.as_str()) || fixed.contains(&p.as_str()) {
            continue;
        }
        let doc = p
            .strip_prefix("docs/")
            .and_then(|r| {
                r.strip_suffix(".automerge")
                    .or_else(|| r.strip_suffix(".json"))
            })
            .and_then(|d| d.parse::<DocId>().ok());
        match doc {
            Some(d) => {
                doc_files.insert(d);
            }
            None => return fail(p, Problem::Unexpected),
        }
    }
    if *get(VERIFY_TXT)? != verify_text(h).into_bytes() {
        return fail(VERIFY_TXT, Problem::VerifyText);
    }
    // Governance.
    let base = Governance::from_genesis_bytes(get(GENESIS)?, federation)
        .or_else(|e| fail(GENESIS, Problem::Genesis(Box::new(e))))?;
    let records = split_ops(get(OPS)?).or_else(|e| fail(OPS, Problem::OpsFile(e)))?;
    let ops = decode_and_verify(&records, threads()).map_err(|problem| VerifyError {
        file: OPS.into(),
        problem,
    })?;
    let cp = h.closing_checkpoint;
    // A ballot on the checkpoint whose parents are missing: the bundle left out part of the closing point (another
    // ballot it cites, or what that voter had seen). Named as such rather than as a bare replay failure.
    let ballots_on_cp: BTreeSet<OpId> = ops
        .iter()
        .filter(|op| matches!(op.op().kind(), OpKind::Ballot { motion, .. } if *motion == cp))
        .map(|op| op.op().id())
        .collect();
    let replica = insert_all(base, ops).or_else(|e| match e {
        ReplayError::MissingParents { op, missing } if ballots_on_cp.contains(&op) => fail(
            OPS,
            Problem::IncompleteClosingPoint {
                ballot: op,
                missing,
            },
        ),
        e => fail(OPS, Problem::Replay(e)),
    })?;
    if !replica.contains(&cp) {
        return fail(MANIFEST, Problem::UnknownCheckpoint(cp));
    }
    for head in replica.heads() {
        let ballot_on_cp = matches!(
            replica.get(&head).map(|op| op.kind()),
            Some(OpKind::Ballot { motion, .. }) if *motion == cp
        ) && replica.validity(&head) == Some(Ok(()));
        if head != cp && !ballot_on_cp {
            return fail(OPS, Problem::BeyondClosingPoint(head));
        }
    }
    let c = closing(&replica, h.year, &cp).or_else(|e| fail(OPS, Problem::Closing(e)))?;
    if c.chair != h.chair {
        return fail(
            MANIFEST,
            Problem::NotChair {
                manifest: h.chair,
                chair: c.chair,
            },
        );
    }
    if replica.inceptions.get(&c.chair).map(|r| r.body().key) != Some(h.chair_key) {
        return fail(MANIFEST, Problem::ChairKey(c.chair));
    }
    // Documents: exactly the attested ones, each matching.
    let groups = group(&c.attested);
    for (doc, atts) in &groups {
        for p in [automerge_path(doc), json_path(doc)] {
            if !files.contains_key(&p) {
                return fail(&p, Problem::OmittedDocument(atts[0].by));
            }
        }
    }
    if let Some(d) = doc_files.iter().find(|d| !groups.contains_key(*d)) {
        let p = if files.contains_key(&automerge_path(d)) {
            automerge_path(d)
        } else {
            json_path(d)
        };
        return fail(&p, Problem::Unregistered);
    }
    let mut documents = BTreeMap::new();
    for (doc, atts) in &groups {
        let am = automerge_path(doc);
        let jp = json_path(doc);
        let json = check_document(get(&am)?, atts)
            .or_else(|e| fail(&am, Problem::Document(Box::new(e))))?;
        if *get(&jp)? != json {
            return fail(&jp, Problem::ExportMismatch);
        }
        let value = serde_json::from_slice(&json).unwrap_or(serde_json::Value::Null);
        documents.insert(*doc, value);
    }
    // The view.
    let view = StocktakeView::compute(&c.finalised, h.year, &view_hashes(&c.attested));
    let ours = view.to_canonical_json();
    let theirs = get(VIEW)?;
    if *theirs != ours {
        let at = theirs
            .iter()
            .zip(&ours)
            .position(|(a, b)| a != b)
            .unwrap_or(theirs.len().min(ours.len()));
        return fail(VIEW, Problem::ViewMismatch(at));
    }
    Ok(VerifiedBundle {
        manifest_hash: Hash32(sha256(manifest_bytes)),
        year: h.year,
        manifest,
        replica,
        finalised: c.finalised,
        closing: c.point,
        view,
        attested: c.attested,
        documents,
    })
}
