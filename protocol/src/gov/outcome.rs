//! What the replica says about an op: refused at insertion ([`InsertError`]: nothing of it is stored), stored
//! ([`Inserted`]: applied, duplicate or parked), and, once replayed, valid or without effect for a reason
//! ([`Invalid`]).

use crate::ids::{FederationId, OpId};
use crate::limits::MAX_PARKED_OPS;
use crate::op::OpError;

/// Why an op was refused at insertion. Nothing of a refused op is stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InsertError {
    #[error("op belongs to federation {found:?}, this replica is {expected:?}")]
    WrongFederation {
        expected: FederationId,
        found: Option<FederationId>,
    },
    #[error("a federation has exactly one genesis")]
    SecondGenesis,
    #[error("not a genesis op")]
    NotGenesis,
    #[error("op is signed with a key that is not its author's inception key")]
    KeyMismatch,
    #[error("chain rule: the author's previous op in this op's history has seq {seen}, this op has seq {seq}")]
    ChainRule { seen: u64, seq: u64 },
    #[error("sequence number beyond the supported range")]
    SeqOutOfRange,
    #[error("an op cites itself or too many parents")]
    BadParents,
    #[error("the parking area is full ({MAX_PARKED_OPS} ops wait for missing parents)")]
    ParkingFull,
    #[error(transparent)]
    Op(#[from] OpError),
}

/// What happened to an inserted op.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inserted {
    /// Stored in the DAG and evaluated; `valid` is its validity right after insertion (it can change later when
    /// a concurrency rule applies). `released` are the parked ops that this insertion let in, in the order they
    /// entered the DAG (a node stores them too).
    Applied { valid: bool, released: Vec<OpId> },
    /// Already known.
    Duplicate,
    /// Waiting for these parents.
    Parked { missing: Vec<OpId> },
}

/// Why a valid-looking op has no effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Invalid {
    /// Its author signed two different ops with the same sequence number.
    Equivocation,
    /// The author is not an admitted member in the op's history.
    NotMember,
    /// Only a secretariat organisation may do this.
    NotSecretariat,
    /// Only the nominating authority may do this.
    NotNominatingAuthority,
    /// The author is not the team's coordinator in the op's history, or lost a contested nomination.
    NotCoordinator,
    /// A capability the op needs was revoked concurrently (and the op is not finalised).
    RevokedConcurrently,
    /// The team is not one of the federation's teams.
    UnknownTeam,
    /// The organisation named is unknown in the op's history.
    UnknownOrg,
    /// A meeting, motion, document or head it cites is not in its history.
    UnknownReference,
    /// The motion does not belong in this kind of meeting.
    WrongMeetingKind,
    /// The author did not attend the meeting.
    NotAttendee,
    /// The author is not in the motion's electorate.
    NotInElectorate,
    /// The author already voted on this motion.
    DoubleVote,
    /// The cited motion had not passed in the op's history, or is not the right motion.
    MotionNotPassed,
    /// The team already has a coordinator in the op's history.
    SlotOccupied,
    /// Only a government may do this, and only for its own country.
    NotGovernment,
    /// The cited document is of the wrong kind, team, country or year.
    WrongDocument,
    /// The author is not a member of the team in the op's history.
    NotTeamMember,
    /// The author already attended.
    Duplicate,
    /// The evidence does not show two conflicting ops by one key.
    BadEvidence,
    /// The op targets something that cannot have it (e.g. revoking a secretariat's membership).
    NotApplicable,
}

impl Invalid {
    /// The digest's code for this reason (0 is a valid op).
    pub(super) fn code(self) -> u8 {
        self as u8 + 1
    }

    /// A one-line explanation for people (CLI errors, the verifier, the report).
    pub fn explain(self) -> &'static str {
        match self {
            Invalid::Equivocation => {
                "its author signed two different ops with the same sequence number"
            }
            Invalid::NotMember => "the author is not an admitted member",
            Invalid::NotSecretariat => "only a secretariat organisation may do this",
            Invalid::NotNominatingAuthority => "only the nominating authority may do this",
            Invalid::NotCoordinator => "the author is not the team's coordinator",
            Invalid::RevokedConcurrently => "a capability it needs was revoked concurrently",
            Invalid::UnknownTeam => "the team is not one of the federation's teams",
            Invalid::UnknownOrg => "the organisation is unknown",
            Invalid::UnknownReference => "a meeting, motion, document or head it cites is unknown",
            Invalid::WrongMeetingKind => "the motion does not belong in this kind of meeting",
            Invalid::NotAttendee => "the author did not attend the meeting",
            Invalid::NotInElectorate => "the author is not in the motion's electorate",
            Invalid::DoubleVote => "the author already voted on this motion",
            Invalid::MotionNotPassed => {
                "the cited motion has not passed or is not the right motion"
            }
            Invalid::SlotOccupied => "the team already has a coordinator",
            Invalid::NotGovernment => "only a government may do this, and only for its own country",
            Invalid::WrongDocument => "the document is of the wrong kind, team, country or year",
            Invalid::NotTeamMember => "the author is not a member of the team",
            Invalid::Duplicate => "already done",
            Invalid::BadEvidence => "the evidence does not show two conflicting ops by one key",
            Invalid::NotApplicable => "the op does not apply to its target",
        }
    }
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.explain())
    }
}

/// An op's validity after replay.
pub type Validity = Result<(), Invalid>;
