//! The closing point and what it attests.
//!
//! A year is closed by a passed Checkpoint motion tabled in a coordinators' meeting convened for the year; the
//! closing point is that motion and its valid ballots. Both the Chair (who plans the bundle) and the verifier
//! (who checks it) rebuild a replica of the closing point's history alone and ask it the same questions here:
//! did the checkpoint pass, who held the chair, which document states does the history attest.

use crate::gov::{verify_all, Governance, InsertError, Inserted, VerifiedOp};
use crate::ids::Hash32;
use crate::ids::{DocId, OpId, OrgId};
use crate::op::{MeetingKind, MotionKind, OpError, OpKind, SignedOp};

/// What the closing point says, or why it does not close the year. Shared by [`plan`](super::plan) and
/// [`verify`](super::verify), which ask the same questions of the same replica (the closing point's history only).
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
pub(super) struct Closing {
    pub(super) chair: OrgId,
    pub(super) attested: Vec<Attested>,
}

pub(super) fn closing(gov: &Governance, year: u16, motion: &OpId) -> Result<Closing, ClosingError> {
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

pub(super) fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Verifies and inserts ops in order; every op must be applied (not refused, duplicate or parked).
pub(super) fn replay(gov: Governance, ops: Vec<SignedOp>) -> Result<Governance, ReplayError> {
    let verified = verify_all(ops, threads())
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|(op, error)| ReplayError::Signature { op, error })?;
    insert_all(gov, verified)
}

pub(super) fn insert_all(
    mut gov: Governance,
    ops: Vec<VerifiedOp>,
) -> Result<Governance, ReplayError> {
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
