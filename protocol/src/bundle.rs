//! The stocktaking bundle and the offline verifier.
//!
//! A bundle is the Chair's self-contained, signed record of one year's stocktaking: every governance op up to the
//! closing checkpoint, every attested document (Automerge bytes and canonical JSON), the stocktaking view, a
//! manifest signed in the OpenSSH `SSHSIG` format and `SHA256SUMS`, so that stock tools can check the files and the
//! signature and [`verify`] can check everything else. The bundle is a map from relative path to bytes; the
//! caller reads and writes the filesystem. Layout and rules: `docs/protocol.md` §14.
//!
//! The node does: [`plan`] → `save_at(doc, heads)` for each of [`Plan::documents`] → [`assemble`] with the
//! organisation key → write [`Bundle::files`]. The offline verifier does: read the directory → [`verify`] with the
//! federation id pinned by the user → [`crate::report::render`].

pub mod sshsig;

use crate::crypto::{PublicKey, SecretKey};
use crate::export::canonical_json;
use crate::gov::{verify_all, Governance, InsertError, Inserted, VerifiedOp};
use crate::ids::{sha256, DocId, FederationId, OpId, OrgId};
use crate::limits::{
    MAX_BUNDLE_BYTES, MAX_BUNDLE_FILES, MAX_BUNDLE_FILE_BYTES, MAX_BUNDLE_OPS,
    MAX_BUNDLE_PATH_BYTES, MAX_OP_BYTES,
};
use crate::op::{Hash32, MeetingKind, MotionKind, OpError, OpKind, SignedOp};
use crate::view::StocktakeView;
use automerge::{Automerge, ChangeHash, ReadDoc};
use std::collections::{BTreeMap, BTreeSet};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The `format` of a bundle manifest.
pub const BUNDLE_FORMAT: &str = "wsis-bundle/1";
/// The canonical manifest.
pub const MANIFEST: &str = "manifest.json";
/// The Chair's SSHSIG signature over [`MANIFEST`].
pub const SIGNATURE: &str = "manifest.json.sig";
/// The `ssh-keygen` allowed-signers file naming the Chair's key.
pub const ALLOWED_SIGNERS: &str = "allowed_signers";
/// `sha256sum -c` input covering every other file.
pub const SHA256SUMS: &str = "SHA256SUMS";
/// Instructions for checking the bundle with stock tools.
pub const VERIFY_TXT: &str = "VERIFY.txt";
/// The signed genesis op.
pub const GENESIS: &str = "gov/genesis";
/// Every other governance op of the closing point's history, length-prefixed, in a topological order.
pub const OPS: &str = "gov/ops";
/// The canonical JSON of the stocktaking view.
pub const VIEW: &str = "view/stocktake.json";

/// `docs/<doc id>.automerge`.
pub fn automerge_path(doc: &DocId) -> String {
    format!("docs/{doc}.automerge")
}

/// `docs/<doc id>.json`.
pub fn json_path(doc: &DocId) -> String {
    format!("docs/{doc}.json")
}

// ---------------------------------------------------------------------------------------------------------------
// Paths

/// Why a bundle path is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    #[error("empty path")]
    Empty,
    #[error("path longer than {MAX_BUNDLE_PATH_BYTES} bytes")]
    TooLong,
    #[error("absolute path")]
    Absolute,
    #[error("empty path component")]
    EmptyComponent,
    #[error("`.` or `..` component")]
    DotComponent,
    #[error("character {0:?} not allowed (only a-z, A-Z, 0-9, `.`, `_`, `-` and `/` between components)")]
    BadCharacter(char),
}

/// A bundle path is relative, made of non-empty components of `[A-Za-z0-9._-]` separated by `/`, none of them `.`
/// or `..`, and none starting with `-` (so no path can be taken for a command-line option).
pub fn check_path(path: &str) -> Result<(), PathError> {
    if path.is_empty() {
        return Err(PathError::Empty);
    }
    if path.len() > MAX_BUNDLE_PATH_BYTES {
        return Err(PathError::TooLong);
    }
    if path.starts_with('/') {
        return Err(PathError::Absolute);
    }
    for c in path.split('/') {
        if c.is_empty() {
            return Err(PathError::EmptyComponent);
        }
        if c == "." || c == ".." {
            return Err(PathError::DotComponent);
        }
        if let Some(bad) = c
            .chars()
            .find(|ch| !(ch.is_ascii_alphanumeric() || matches!(ch, '.' | '_' | '-')))
        {
            return Err(PathError::BadCharacter(bad));
        }
        if c.starts_with('-') {
            return Err(PathError::BadCharacter('-'));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------------
// The op log file

/// Why `gov/ops` could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpsFileError {
    #[error("truncated at byte {0}")]
    Truncated(usize),
    #[error("record at byte {at} is {len} bytes, more than {MAX_OP_BYTES}")]
    TooLarge { at: usize, len: usize },
    #[error("more than {MAX_BUNDLE_OPS} ops")]
    TooMany,
    #[error("op #{index}: {error}")]
    Op { index: usize, error: OpError },
}

/// `gov/ops`: for each op, its length as a 4-byte big-endian integer, then its signed bytes.
pub fn encode_ops<'a>(ops: impl IntoIterator<Item = &'a SignedOp>) -> Vec<u8> {
    let mut out = Vec::new();
    for op in ops {
        out.extend_from_slice(&(op.bytes().len() as u32).to_be_bytes());
        out.extend_from_slice(op.bytes());
    }
    out
}

/// Splits `gov/ops` into its records, checking lengths; nothing is decoded.
fn split_ops(bytes: &[u8]) -> Result<Vec<&[u8]>, OpsFileError> {
    let mut records = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let Some(len) = bytes.get(at..at + 4) else {
            return Err(OpsFileError::Truncated(at));
        };
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        if len > MAX_OP_BYTES {
            return Err(OpsFileError::TooLarge { at, len });
        }
        let Some(op) = bytes.get(at + 4..at + 4 + len) else {
            return Err(OpsFileError::Truncated(at));
        };
        if records.len() >= MAX_BUNDLE_OPS {
            return Err(OpsFileError::TooMany);
        }
        records.push(op);
        at += 4 + len;
    }
    Ok(records)
}

/// Strictly decodes `gov/ops` (signatures not verified).
pub fn decode_ops(bytes: &[u8]) -> Result<Vec<SignedOp>, OpsFileError> {
    split_ops(bytes)?
        .into_iter()
        .enumerate()
        .map(|(index, r)| SignedOp::decode(r).map_err(|error| OpsFileError::Op { index, error }))
        .collect()
}

/// Decodes and strictly verifies `gov/ops` records on up to `threads` threads (decoding validates every key, so
/// it is worth spreading too); results in file order, the first failure in file order is returned.
fn decode_and_verify(records: &[&[u8]], threads: usize) -> Result<Vec<VerifiedOp>, Box<Problem>> {
    let one = |index: usize, r: &[u8]| -> Result<VerifiedOp, Box<Problem>> {
        let op = SignedOp::decode(r)
            .map_err(|error| Box::new(Problem::OpsFile(OpsFileError::Op { index, error })))?;
        let id = op.id();
        op.verify()
            .map_err(|error| Box::new(Problem::Replay(ReplayError::Signature { op: id, error })))
    };
    let threads = threads.clamp(1, 64);
    if threads == 1 || records.len() < 64 {
        return records.iter().enumerate().map(|(i, r)| one(i, r)).collect();
    }
    let chunk = records.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = records
            .chunks(chunk)
            .enumerate()
            .map(|(c, rs)| {
                s.spawn(move || {
                    rs.iter()
                        .enumerate()
                        .map(|(i, r)| one(c * chunk + i, r))
                        .collect::<Result<Vec<_>, _>>()
                })
            })
            .collect();
        let mut out = Vec::with_capacity(records.len());
        for h in handles {
            match h.join() {
                Ok(v) => out.extend(v?),
                // A panic in decoding or ed25519 would be a bug in this crate or the library: surface it.
                Err(p) => std::panic::resume_unwind(p),
            }
        }
        Ok(out)
    })
}

// ---------------------------------------------------------------------------------------------------------------
// The closing point and what it attests

/// What the closing point says, or why it does not close the year. Shared by [`plan`] and [`verify`], which ask
/// the same questions of the same replica (the closing point's history only).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClosingError {
    #[error("{0} is not a valid checkpoint motion")]
    NotACheckpoint(OpId),
    #[error("checkpoint {motion} was not tabled in a coordinators' meeting convened for {year}")]
    WrongMeeting { motion: OpId, year: u16 },
    #[error("checkpoint {motion} did not pass: {yes} yes ballot(s) from an electorate of {electorate} coordinators (more than half needed)")]
    NotPassed {
        motion: OpId,
        yes: usize,
        electorate: usize,
    },
    #[error("nobody held the chair at checkpoint {0}")]
    NoChair(OpId),
    #[error("the chair at checkpoint {motion} was {at_checkpoint}, at the closing point it is {at_close}")]
    ChairChanged {
        motion: OpId,
        at_checkpoint: OrgId,
        at_close: OrgId,
    },
    #[error("no stocktaking procedure for {0} was adopted in the closing checkpoint's history")]
    NoProcedure(u16),
    #[error("attestation heads of {0} are not hex")]
    BadRecordHeads(OpId),
}

/// Who attests a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum AttestedBy {
    /// A valid, non-superseded `SubmitOutput` or `SubmitNationalReport` for the year.
    Submission(OpId),
    /// The approved record of a meeting convened for the year.
    MeetingRecord(OpId),
}

impl std::fmt::Display for AttestedBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AttestedBy::Submission(op) => write!(f, "submission {op}"),
            AttestedBy::MeetingRecord(m) => write!(f, "the approved record of meeting {m}"),
        }
    }
}

/// A document state that the closing point's history attests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attested {
    pub doc: DocId,
    pub heads: Vec<Hash32>,
    pub content_hash: Hash32,
    pub by: AttestedBy,
}

#[derive(Debug)]
struct Closing {
    chair: OrgId,
    attested: Vec<Attested>,
}

fn closing(gov: &Governance, year: u16, motion: &OpId) -> Result<Closing, ClosingError> {
    let meeting = match gov.get(motion).map(|op| op.kind()) {
        Some(OpKind::Motion {
            meeting,
            motion: MotionKind::Checkpoint { .. },
        }) if gov.validity(motion) == Some(Ok(())) => *meeting,
        _ => return Err(ClosingError::NotACheckpoint(*motion)),
    };
    match gov.meeting(&meeting) {
        Some(m) if m.kind == MeetingKind::Coordinators && m.year == year => {}
        _ => {
            return Err(ClosingError::WrongMeeting {
                motion: *motion,
                year,
            })
        }
    }
    let info = gov
        .motion(motion)
        .ok_or(ClosingError::NotACheckpoint(*motion))?;
    if !info.passed || info.yes * 2 <= info.electorate {
        return Err(ClosingError::NotPassed {
            motion: *motion,
            yes: info.yes,
            electorate: info.electorate,
        });
    }
    let chair = gov
        .chair_at(&[*motion])
        .chair
        .ok_or(ClosingError::NoChair(*motion))?
        .org;
    if let Some(now) = gov.chair().chair {
        if now.org != chair {
            return Err(ClosingError::ChairChanged {
                motion: *motion,
                at_checkpoint: chair,
                at_close: now.org,
            });
        }
    }
    if gov.procedure(year).is_none() {
        return Err(ClosingError::NoProcedure(year));
    }
    Ok(Closing {
        chair,
        attested: attestations(gov, year)?,
    })
}

/// Every document state the replica attests for `year`: valid, non-superseded submissions and approved records of
/// meetings convened for the year, ordered by document then source.
fn attestations(gov: &Governance, year: u16) -> Result<Vec<Attested>, ClosingError> {
    let mut out = Vec::new();
    for s in gov.submissions() {
        if s.year != year || s.superseded {
            continue;
        }
        let att = match gov.get(&s.op).map(|op| op.kind()) {
            Some(OpKind::SubmitOutput { attestation, .. })
            | Some(OpKind::SubmitNationalReport { attestation, .. }) => attestation,
            _ => continue,
        };
        out.push(Attested {
            doc: s.doc,
            heads: att.heads.clone(),
            content_hash: att.content_hash,
            by: AttestedBy::Submission(s.op),
        });
    }
    for m in gov.meetings() {
        let Some(r) = m.approved_record.filter(|_| m.year == year) else {
            continue;
        };
        let hex32 = |s: &String| -> Option<Hash32> {
            let mut h = [0u8; 32];
            hex::decode_to_slice(s, &mut h).ok().map(|_| Hash32(h))
        };
        let heads: Option<Vec<Hash32>> = r.heads.iter().map(hex32).collect();
        let (Some(heads), Some(content_hash)) = (heads, hex32(&r.content_hash)) else {
            return Err(ClosingError::BadRecordHeads(m.id));
        };
        out.push(Attested {
            doc: DocId(m.id.0),
            heads,
            content_hash,
            by: AttestedBy::MeetingRecord(m.id),
        });
    }
    out.sort_by_key(|a| (a.doc, a.by));
    Ok(out)
}

/// Why a replica could not be rebuilt from ops.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    #[error("op {op}: {error}")]
    Signature { op: OpId, error: OpError },
    #[error("op {op} is refused: {error}")]
    Refused { op: OpId, error: Box<InsertError> },
    #[error("op {op} comes before its parents {missing:?} or they are not in the bundle")]
    MissingParents { op: OpId, missing: Vec<OpId> },
    #[error("op {0} appears twice")]
    Duplicate(OpId),
}

fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Verifies and inserts ops in order; every op must be applied (not refused, duplicate or parked).
fn replay(gov: Governance, ops: Vec<SignedOp>) -> Result<Governance, ReplayError> {
    let verified = verify_all(ops, threads())
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|(op, error)| ReplayError::Signature { op, error })?;
    insert_all(gov, verified)
}

fn insert_all(mut gov: Governance, ops: Vec<VerifiedOp>) -> Result<Governance, ReplayError> {
    for op in ops {
        let id = op.op().id();
        match gov.insert(op) {
            Ok(Inserted::Applied { .. }) => {}
            Ok(Inserted::Duplicate) => return Err(ReplayError::Duplicate(id)),
            Ok(Inserted::Parked { missing }) => {
                return Err(ReplayError::MissingParents { op: id, missing })
            }
            Err(error) => {
                return Err(ReplayError::Refused {
                    op: id,
                    error: Box::new(error),
                })
            }
        }
    }
    Ok(gov)
}

// ---------------------------------------------------------------------------------------------------------------
// Documents

/// Why a bundled document does not match what is attested.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DocumentError {
    #[error("automerge could not load the bytes")]
    Load,
    #[error("{by} attests heads that are not in the document: {missing:?}")]
    MissingHeads {
        by: AttestedBy,
        missing: Vec<Hash32>,
    },
    #[error("the document goes beyond the attested heads (head {0:?} is not attested)")]
    ExtraHeads(Hash32),
    #[error("{by} attests content hash {attested}, the document at its heads exports to {found}")]
    ContentHash {
        by: AttestedBy,
        attested: Hash32,
        found: Hash32,
    },
}

fn guarded<T>(f: impl FnOnce() -> Option<T>) -> Option<T> {
    catch_unwind(AssertUnwindSafe(f)).ok().flatten()
}

/// Loads a document (behind a panic firewall), checks its heads against the attestations and every attested
/// content hash; returns the canonical JSON of the whole document.
fn check_document(bytes: &[u8], attested: &[&Attested]) -> Result<Vec<u8>, DocumentError> {
    let doc = guarded(|| Automerge::load(bytes).ok()).ok_or(DocumentError::Load)?;
    let mut all: BTreeSet<Hash32> = BTreeSet::new();
    for a in attested {
        let missing: Vec<Hash32> = a
            .heads
            .iter()
            .filter(|h| doc.get_change_by_hash(&ChangeHash(h.0)).is_none())
            .copied()
            .collect();
        if !missing.is_empty() {
            return Err(DocumentError::MissingHeads { by: a.by, missing });
        }
        all.extend(a.heads.iter().copied());
    }
    let heads: Vec<Hash32> = doc.get_heads().iter().map(|h| Hash32(h.0)).collect();
    if let Some(extra) = heads.iter().find(|h| !all.contains(h)) {
        return Err(DocumentError::ExtraHeads(*extra));
    }
    let whole = guarded(|| canonical_json(&doc).ok()).ok_or(DocumentError::Load)?;
    for a in attested {
        let mut at: Vec<Hash32> = a.heads.clone();
        at.sort();
        at.dedup();
        let mut sorted_heads = heads.clone();
        sorted_heads.sort();
        let json = if at == sorted_heads {
            whole.clone()
        } else {
            let hs: Vec<ChangeHash> = at.iter().map(|h| ChangeHash(h.0)).collect();
            guarded(|| canonical_json(&doc.fork_at(&hs).ok()?).ok()).ok_or(DocumentError::Load)?
        };
        let found = Hash32(sha256(&json));
        if found != a.content_hash {
            return Err(DocumentError::ContentHash {
                by: a.by,
                attested: a.content_hash,
                found,
            });
        }
    }
    Ok(whole)
}

fn group(attested: &[Attested]) -> BTreeMap<DocId, Vec<&Attested>> {
    let mut m: BTreeMap<DocId, Vec<&Attested>> = BTreeMap::new();
    for a in attested {
        m.entry(a.doc).or_default().push(a);
    }
    m
}

/// The content hashes the view is computed with: per document, the hash recomputed at the heads of its first
/// submission (documents were checked against every attestation before this is called).
fn view_hashes(attested: &[Attested]) -> BTreeMap<DocId, Hash32> {
    let mut m = BTreeMap::new();
    for a in attested {
        if let AttestedBy::Submission(_) = a.by {
            m.entry(a.doc).or_insert(a.content_hash);
        }
    }
    m
}

// ---------------------------------------------------------------------------------------------------------------
// Planning and assembling

/// Why no bundle can be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AssembleError {
    #[error("no checkpoint tabled in a coordinators' meeting for {0} has passed")]
    NoPassedCheckpoint(u16),
    #[error("submissions for {year} are not covered by the closing checkpoint {checkpoint}, pass a new checkpoint first: {ops:?}")]
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
    chair: OrgId,
    chair_key: PublicKey,
    ops: Vec<SignedOp>,
    replica: Governance,
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
    /// heads attested for it; one attestation in the usual case).
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
/// Checkpoint motion tabled in a coordinators' meeting convened for the year (concurrent ones: the lower OpId); the
/// closing point adds its valid ballots. Everything is then judged on a replica of the closing point's history
/// alone, as the verifier will. `caller` must be the Chair there, and every valid submission for the year in `gov`
/// must be in that history (so that nothing submitted can be left out).
pub fn plan(gov: &Governance, year: u16, caller: &OrgId) -> Result<Plan, AssembleError> {
    let candidates: Vec<OpId> = gov
        .passed_checkpoints()
        .into_iter()
        .map(|(id, _)| id)
        .filter(|id| match gov.get(id).map(|op| op.kind()) {
            Some(OpKind::Motion { meeting, .. }) => gov
                .meeting(meeting)
                .is_some_and(|m| m.kind == MeetingKind::Coordinators && m.year == year),
            _ => false,
        })
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
    let mut closing_heads = vec![latest];
    for op in gov.ops() {
        if matches!(op.kind(), OpKind::Ballot { motion, .. } if *motion == latest)
            && gov.validity(&op.id()) == Some(Ok(()))
        {
            closing_heads.push(op.id());
        }
    }
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
    let uncovered: Vec<OpId> = gov
        .submissions()
        .into_iter()
        .filter(|s| s.year == year && !replica.contains(&s.op))
        .map(|s| s.op)
        .collect();
    if !uncovered.is_empty() {
        return Err(AssembleError::UncoveredSubmissions {
            year,
            checkpoint: latest,
            ops: uncovered,
        });
    }
    let c = closing(&replica, year, &latest)?;
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
        chair: c.chair,
        chair_key,
        ops,
        replica,
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
    let view = StocktakeView::compute(&plan.replica, plan.year, &view_hashes(&plan.attested));
    content.insert(VIEW.into(), view.to_canonical_json());
    content.insert(VERIFY_TXT.into(), verify_text(&header).into_bytes());
    Ok(seal(&header, content, chair)?)
}

// ---------------------------------------------------------------------------------------------------------------
// Manifest and seal

/// What the manifest says besides the file list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestHeader {
    pub federation: FederationId,
    pub year: u16,
    pub closing_checkpoint: OpId,
    pub chair: OrgId,
    pub chair_key: PublicKey,
}

/// A parsed manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub header: ManifestHeader,
    /// Path → (SHA-256, size).
    pub files: BTreeMap<String, (Hash32, u64)>,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestJson {
    // Fields in ascending order: serde_json writes them in declaration order, so this is the sorted-key form.
    chair: OrgId,
    chair_key: String,
    closing_checkpoint: OpId,
    federation: FederationId,
    files: BTreeMap<String, FileJson>,
    format: String,
    year: u16,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FileJson {
    sha256: String,
    size: u64,
}

/// Why `manifest.json` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    #[error("not a manifest: {0}")]
    Json(String),
    #[error("format is not {BUNDLE_FORMAT}")]
    Format,
    #[error("not in canonical form (sorted keys, no whitespace)")]
    NotCanonical,
    #[error("chair_key is not a valid ed25519 key")]
    Key,
    #[error("file entry {0}: sha256 is not 64 lowercase hex digits")]
    Hash(String),
    #[error("file entry {0}: {1}")]
    Path(String, PathError),
}

impl Manifest {
    /// Canonical JSON: sorted keys, no whitespace, no trailing newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        let m = ManifestJson {
            chair: self.header.chair,
            chair_key: hex::encode(self.header.chair_key.as_bytes()),
            closing_checkpoint: self.header.closing_checkpoint,
            federation: self.header.federation,
            files: self
                .files
                .iter()
                .map(|(p, (h, s))| {
                    (
                        p.clone(),
                        FileJson {
                            sha256: h.to_string(),
                            size: *s,
                        },
                    )
                })
                .collect(),
            format: BUNDLE_FORMAT.into(),
            year: self.header.year,
        };
        // Plain structs of strings and integers always serialise.
        serde_json::to_vec(&m).unwrap_or_default()
    }

    /// Parses a manifest, accepting only the canonical form.
    pub fn parse(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        let m: ManifestJson =
            serde_json::from_slice(bytes).map_err(|e| ManifestError::Json(e.to_string()))?;
        if m.format != BUNDLE_FORMAT {
            return Err(ManifestError::Format);
        }
        let mut key = [0u8; 32];
        if m.chair_key.len() != 64
            || m.chair_key.bytes().any(|b| b.is_ascii_uppercase())
            || hex::decode_to_slice(&m.chair_key, &mut key).is_err()
        {
            return Err(ManifestError::Key);
        }
        let chair_key = PublicKey::from_bytes(&key).map_err(|_| ManifestError::Key)?;
        let mut files = BTreeMap::new();
        for (p, f) in m.files {
            check_path(&p).map_err(|e| ManifestError::Path(p.clone(), e))?;
            let mut h = [0u8; 32];
            if f.sha256.len() != 64
                || f.sha256.bytes().any(|b| b.is_ascii_uppercase())
                || hex::decode_to_slice(&f.sha256, &mut h).is_err()
            {
                return Err(ManifestError::Hash(p));
            }
            files.insert(p, (Hash32(h), f.size));
        }
        let out = Manifest {
            header: ManifestHeader {
                federation: m.federation,
                year: m.year,
                closing_checkpoint: m.closing_checkpoint,
                chair: m.chair,
                chair_key,
            },
            files,
        };
        if out.to_bytes() != bytes {
            return Err(ManifestError::NotCanonical);
        }
        Ok(out)
    }
}

/// Why [`seal`] refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    #[error("the signing key is not the manifest's chair key")]
    WrongKey,
    #[error("{path}: {error}")]
    Path { path: String, error: PathError },
    #[error("{0} is written by the seal itself")]
    Reserved(String),
}

/// Files the seal writes (not listed in the manifest, except that `SHA256SUMS` covers the last two).
const SEAL_FILES: [&str; 4] = [MANIFEST, SHA256SUMS, SIGNATURE, ALLOWED_SIGNERS];

/// Writes `manifest.json` over `content`, signs it, and adds `allowed_signers` and `SHA256SUMS`. [`assemble`]
/// uses it; it is public so that tests (and tools) can re-seal edited content — which is exactly what an attacker
/// holding the Chair's key can do, and why [`verify`] checks far more than the signature.
pub fn seal(
    header: &ManifestHeader,
    content: BTreeMap<String, Vec<u8>>,
    key: &SecretKey,
) -> Result<Bundle, SealError> {
    if key.public() != header.chair_key {
        return Err(SealError::WrongKey);
    }
    for p in content.keys() {
        check_path(p).map_err(|error| SealError::Path {
            path: p.clone(),
            error,
        })?;
        if SEAL_FILES.contains(&p.as_str()) {
            return Err(SealError::Reserved(p.clone()));
        }
    }
    let manifest = Manifest {
        header: header.clone(),
        files: content
            .iter()
            .map(|(p, b)| (p.clone(), (Hash32(sha256(b)), b.len() as u64)))
            .collect(),
    }
    .to_bytes();
    let mut files = content;
    files.insert(SIGNATURE.into(), sshsig::sign(key, &manifest).into_bytes());
    files.insert(
        ALLOWED_SIGNERS.into(),
        sshsig::allowed_signers_line(&header.chair_key).into_bytes(),
    );
    files.insert(MANIFEST.into(), manifest);
    let sums = sha256sums(&files);
    files.insert(SHA256SUMS.into(), sums);
    Ok(Bundle { files })
}

/// `SHA256SUMS` for every file but itself, in path order: `<hex>  <path>\n` (what `sha256sum` writes).
fn sha256sums(files: &BTreeMap<String, Vec<u8>>) -> Vec<u8> {
    let mut out = String::new();
    for (p, b) in files {
        if p != SHA256SUMS {
            out.push_str(&hex::encode(sha256(b)));
            out.push_str("  ");
            out.push_str(p);
            out.push('\n');
        }
    }
    out.into_bytes()
}

/// Does `SHA256SUMS` list a different hash for `path` than its current content? False when it cannot tell.
fn changed_since_sealing(files: &BTreeMap<String, Vec<u8>>, path: &str) -> bool {
    let Some(sums) = files.get(SHA256SUMS) else {
        return false;
    };
    let suffix = format!("  {path}");
    String::from_utf8_lossy(sums)
        .lines()
        .find_map(|l| l.strip_suffix(suffix.as_str()))
        .is_some_and(|hash| {
            files
                .get(path)
                .is_some_and(|b| hash != hex::encode(sha256(b)))
        })
}

/// `VERIFY.txt`.
pub fn verify_text(h: &ManifestHeader) -> String {
    let ns = sshsig::namespace();
    format!(
        "WSIS stocktaking bundle for {year}\n\
         federation: {fed}\n\
         chair: {chair}\n\
         chair key (ed25519, hex): {key}\n\
         closing checkpoint: {cp}\n\
         \n\
         How to check this bundle, from inside its directory:\n\
         \n\
         1. Every file is intact (GNU coreutils):\n\
         \n\
         \x20  sha256sum -c SHA256SUMS\n\
         \n\
         2. The Chair signed the manifest, which lists every file with its SHA-256 and size (OpenSSH 8.1 or later):\n\
         \n\
         \x20  ssh-keygen -Y verify -f allowed_signers -I chair -n {ns} -s manifest.json.sig < manifest.json\n\
         \n\
         3. The key in allowed_signers is the Chair's: compare the base64 key in allowed_signers (or the hex key\n\
         \x20  above) with the Chair's key as published elsewhere, e.g. on the secretariat's website or in the\n\
         \x20  Meeting's minutes. Steps 1 and 2 prove nothing if the key is not the Chair's.\n\
         \n\
         4. Everything else (every governance op, the Chair's role at the checkpoint, the coordinators' majority,\n\
         \x20  every submission included and none added, every document's content, the view) with the wsis tool,\n\
         \x20  pinning the federation id you obtained independently:\n\
         \n\
         \x20  wsis verify . --federation {fed}\n",
        year = h.year,
        fed = h.federation,
        chair = h.chair,
        key = hex::encode(h.chair_key.as_bytes()),
        cp = h.closing_checkpoint,
    )
}

// ---------------------------------------------------------------------------------------------------------------
// Verification

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
    /// The replica of the closing point's history.
    pub replica: Governance,
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
/// verifies strictly and replays, in order, and nothing lies beyond the closing point; the checkpoint passed by
/// more than half of the coordinators and the manifest's chair held the Chair at it with that key; the bundled
/// documents are exactly the attested ones and each matches its attestations and its `.json`; the recomputed view
/// is byte-identical.
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
    let replica = insert_all(base, ops).or_else(|e| fail(OPS, Problem::Replay(e)))?;
    let cp = h.closing_checkpoint;
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
    let view = StocktakeView::compute(&replica, h.year, &view_hashes(&c.attested));
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
        view,
        attested: c.attested,
        documents,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        let key = SecretKey::from_seed(&[3; 32]).public();
        Manifest {
            header: ManifestHeader {
                federation: FederationId([1; 32]),
                year: 2026,
                closing_checkpoint: OpId([2; 32]),
                chair: OrgId([3; 32]),
                chair_key: key,
            },
            files: [("gov/ops".to_string(), (Hash32([4; 32]), 10))]
                .into_iter()
                .collect(),
        }
    }

    #[test]
    fn the_manifest_round_trips_and_only_its_canonical_form_parses() {
        let m = manifest();
        let bytes = m.to_bytes();
        assert!(bytes.starts_with(b"{\"chair\":\"org_0303"));
        assert!(!bytes.contains(&b' ') && !bytes.contains(&b'\n'));
        assert_eq!(Manifest::parse(&bytes), Ok(m));
        let text = String::from_utf8(bytes).unwrap_or_default();
        let spaced = text.replacen(",", ", ", 1);
        assert_eq!(
            Manifest::parse(spaced.as_bytes()),
            Err(ManifestError::NotCanonical)
        );
        let upper = text.replace("04040404", "0404040A");
        assert!(matches!(
            Manifest::parse(upper.as_bytes()),
            Err(ManifestError::Hash(_))
        ));
        let unknown = text.replacen("{\"chair\"", "{\"a\":1,\"chair\"", 1);
        assert!(matches!(
            Manifest::parse(unknown.as_bytes()),
            Err(ManifestError::Json(_))
        ));
        let format = text.replace("wsis-bundle/1", "wsis-bundle/2");
        assert_eq!(
            Manifest::parse(format.as_bytes()),
            Err(ManifestError::Format)
        );
        let escape = text.replace("gov/ops", "../ops");
        assert!(matches!(
            Manifest::parse(escape.as_bytes()),
            Err(ManifestError::Path(_, PathError::DotComponent))
        ));
    }

    #[test]
    fn the_ops_file_is_length_prefixed_and_truncation_is_an_error() {
        let mut w = crate::fixture::World::wsis();
        let a = w.add_org("A", "academia", None);
        w.admit(a);
        let ops: Vec<SignedOp> = w.log[1..].to_vec();
        let bytes = encode_ops(&ops);
        assert_eq!(decode_ops(&bytes), Ok(ops.clone()));
        assert_eq!(decode_ops(&[]), Ok(vec![]));
        // A cut at a record boundary is a shorter valid log (the manifest hash and the closing checks catch that);
        // any other cut is an error.
        let boundary = 4 + ops[0].bytes().len();
        for cut in (1..bytes.len()).filter(|&c| c != boundary) {
            assert!(decode_ops(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        assert_eq!(decode_ops(&bytes[..boundary]), Ok(ops[..1].to_vec()));
        let mut huge = bytes.clone();
        huge[..4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            decode_ops(&huge),
            Err(OpsFileError::TooLarge { at: 0, .. })
        ));
    }
}
