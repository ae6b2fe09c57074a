//! The closing point and what it attests.
//!
//! A year is closed by a passed Checkpoint motion tabled in a coordinators' meeting convened for the year; the
//! closing point is that motion and every valid ballot on it. Both the Chair (who plans the bundle) and the
//! verifier (who checks it) rebuild a replica of the closing point's history alone and ask it the same questions
//! here: did the checkpoint pass, who held the chair, which document states does the history attest.
//!
//! What is attested is what the *checkpoint's own history* attests, judged on a replica of that history alone
//! ([`Closing::finalised`]), never ops that only a ballot brought in: a ballot cites whatever its voter had seen,
//! which may be a revision submitted after the checkpoint was tabled, or a submission that a revocation concurrent
//! with it makes invalid on every node holding both (the checkpoint does not finalise what it does not contain).
//! The closing point's history must agree: an attestation it holds that the checkpoint's history does not (or the
//! reverse), or a passed checkpoint of the year later than the closing one, means this checkpoint does not close
//! the year — the Chair's tool refuses to assemble and the verifier refuses the bundle, for the same reason.

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
    #[error("the history of checkpoint {motion} cannot be replayed on its own: {error}")]
    History {
        motion: OpId,
        error: Box<InsertError>,
    },
    #[error("checkpoint {later}, passed for {year} and later than the closing checkpoint {motion}, is in the closing point's history: the later checkpoint closes the year")]
    LaterCheckpoint {
        motion: OpId,
        later: OpId,
        year: u16,
    },
    #[error("{by} is attested by the closing point's ballots' history but not by checkpoint {motion}'s own history: it was brought in after the checkpoint (pass a new checkpoint that covers it)")]
    BeyondCheckpoint { motion: OpId, by: AttestedBy },
    #[error("{by} is attested by checkpoint {motion}'s history but not once its ballots' history is added: the closing point contradicts its checkpoint")]
    UndoneAtClose { motion: OpId, by: AttestedBy },
}

/// The closing point: the checkpoint and every valid ballot on it, with the tally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosingPoint {
    pub checkpoint: OpId,
    /// The coordinators' meeting the checkpoint was tabled in.
    pub meeting: OpId,
    /// Every valid ballot on the checkpoint, sorted.
    pub ballots: Vec<OpId>,
    pub yes: usize,
    pub no: usize,
    pub electorate: usize,
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
    pub(super) point: ClosingPoint,
    /// A replica of the checkpoint's own history: what the checkpoint finalises. The attestations and the view
    /// come from it.
    pub(super) finalised: Governance,
    pub(super) attested: Vec<Attested>,
}

/// Every valid ballot on `motion` in `gov`, sorted: the closing point's ballots. The Chair's tool takes all it
/// knows (never a subset, which could hide a ballot that brings in a later revision); the verifier counts all the
/// bundle holds.
pub(super) fn closing_ballots(gov: &Governance, motion: &OpId) -> Vec<OpId> {
    let mut v: Vec<OpId> = gov
        .ops()
        .filter(|op| matches!(op.kind(), OpKind::Ballot { motion: m, .. } if m == motion))
        .map(|op| op.id())
        .filter(|id| gov.validity(id) == Some(Ok(())))
        .collect();
    v.sort();
    v
}

/// Is `motion` a Checkpoint motion tabled in a coordinators' meeting convened for `year`?
pub(super) fn closes_year(gov: &Governance, year: u16, motion: &OpId) -> bool {
    match gov.get(motion).map(|op| op.kind()) {
        Some(OpKind::Motion {
            meeting,
            motion: MotionKind::Checkpoint { .. },
        }) => gov
            .meeting(meeting)
            .is_some_and(|m| m.kind == MeetingKind::Coordinators && m.year == year),
        _ => false,
    }
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
    if let Some(later) = gov.passed_checkpoints().into_iter().find_map(|(id, _)| {
        (id != *motion && closes_year(gov, year, &id) && gov.is_ancestor(motion, &id) == Some(true))
            .then_some(id)
    }) {
        return Err(ClosingError::LaterCheckpoint {
            motion: *motion,
            later,
            year,
        });
    }
    let finalised = gov
        .replica_of_history(&[*motion])
        .map_err(|error| ClosingError::History {
            motion: *motion,
            error: Box::new(error),
        })?;
    if finalised.procedure(year).is_none() {
        return Err(ClosingError::NoProcedure(year));
    }
    let attested = attestations(&finalised, year)?;
    let at_close = attestations(gov, year)?;
    if let Some(a) = at_close.iter().find(|a| !attested.contains(a)) {
        return Err(ClosingError::BeyondCheckpoint {
            motion: *motion,
            by: a.by,
        });
    }
    if let Some(a) = attested.iter().find(|a| !at_close.contains(a)) {
        return Err(ClosingError::UndoneAtClose {
            motion: *motion,
            by: a.by,
        });
    }
    Ok(Closing {
        chair,
        point: ClosingPoint {
            checkpoint: *motion,
            meeting,
            ballots: closing_ballots(gov, motion),
            yes: info.yes,
            no: info.no,
            electorate: info.electorate,
        },
        finalised,
        attested,
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
    // A bundle's ops are a history its Chair's replica judged: each enters as it did there (an inception with
    // the `Admit` that carried it in, or one whose `Admit` is outside a cut of that history).
    gov.open_gate = true;
    for op in ops {
        let id = op.op().id();
        match gov.insert(op) {
            Ok(Inserted::Applied { .. }) => {}
            Ok(Inserted::Duplicate) => return Err(ReplayError::Duplicate(id)),
            // Unreachable with the gate open; named so that the match stays exhaustive.
            Ok(Inserted::Pending) => {
                return Err(ReplayError::MissingParents {
                    op: id,
                    missing: vec![],
                })
            }
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
