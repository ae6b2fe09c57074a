//! What the replica says about an op: refused at insertion ([`InsertError`]: nothing of it is stored), stored
//! ([`Inserted`]: applied, duplicate or parked), and, once replayed, valid or without effect for a reason
//! ([`Invalid`]).

use crate::ids::{FederationId, OpId};
use crate::limits::{MAX_PARKED_OPS, MAX_PENDING_OPS};
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
    /// Its parents are missing and so is its author's inception: not parked (it may enter once the inception is
    /// here). Like [`InsertError::ParkingFull`], about this replica's state rather than the op.
    #[error("the op's parents are missing and its author is unknown here: not parked")]
    UnknownAuthor,
    /// Its author is not admitted here and the op is not one that may wait for the admission (an inception or a
    /// binding), or is one more than may wait: not held. Like [`InsertError::UnknownAuthor`], about this replica's
    /// state: the op enters once an `Admit` of its author has (see `gov/admission.rs`).
    #[error("the op's author is not admitted here: not held")]
    NotAdmitted,
    #[error("the pending area is full ({MAX_PENDING_OPS} ops of organisations not yet admitted)")]
    PendingFull,
    #[error(transparent)]
    Op(#[from] OpError),
}

impl InsertError {
    /// A refusal about this replica's state (a full parking area, an author not known yet), not about the op: the
    /// op may enter later, so its sender is not blamed and the refusal is not remembered.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            InsertError::ParkingFull
                | InsertError::UnknownAuthor
                | InsertError::NotAdmitted
                | InsertError::PendingFull
        )
    }

    /// A stable machine code for the refusal (kebab-case), as the local API returns it.
    pub fn code(&self) -> &'static str {
        match self {
            InsertError::WrongFederation { .. } => "wrong-federation",
            InsertError::SecondGenesis => "second-genesis",
            InsertError::NotGenesis => "not-genesis",
            InsertError::KeyMismatch => "key-mismatch",
            InsertError::ChainRule { .. } => "chain-rule",
            InsertError::SeqOutOfRange => "seq-out-of-range",
            InsertError::BadParents => "bad-parents",
            InsertError::ParkingFull => "parking-full",
            InsertError::UnknownAuthor => "unknown-author",
            InsertError::NotAdmitted => "not-admitted",
            InsertError::PendingFull => "pending-full",
            InsertError::Op(e) => e.code(),
        }
    }
}

/// What [`Governance::check`](super::Governance::check) says an insertion of an op would do, when it would not
/// leave the op valid in the DAG. Exhaustive on purpose: a caller that acts on a verdict must handle every one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    /// The insertion would refuse the op (nothing of it would be stored).
    #[error(transparent)]
    Refused(#[from] InsertError),
    /// The insertion would park the op until these parents arrive.
    #[error("the op waits for {} missing parents", missing.len())]
    Parked { missing: Vec<OpId> },
    /// The op would wait outside the DAG until its author is admitted (its inception or a binding).
    #[error("the op waits for its organisation's admission")]
    Pending,
    /// The op would enter the DAG but the replay would give it no effect, for this reason.
    #[error("{0}")]
    Invalid(Invalid),
}

impl CheckError {
    /// A stable machine code (kebab-case): the refusal's, `parked`, or the invalidity reason's.
    pub fn code(&self) -> &'static str {
        match self {
            CheckError::Refused(e) => e.code(),
            CheckError::Parked { .. } => "parked",
            CheckError::Pending => "pending",
            CheckError::Invalid(why) => why.code(),
        }
    }
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
    /// Held outside the DAG until its author is admitted (see `gov/admission.rs`).
    Pending,
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
    /// A `BindNode` whose author already has `MAX_BINDINGS_PER_ORG` valid bindings in its history.
    TooManyBindings,
    /// The author already created `MAX_DOCS_PER_ORG` documents in the op's history.
    DocumentBudget,
}

impl Invalid {
    /// Every reason, in declaration order (for tests and documentation).
    pub const ALL: [Invalid; 23] = [
        Invalid::Equivocation,
        Invalid::NotMember,
        Invalid::NotSecretariat,
        Invalid::NotNominatingAuthority,
        Invalid::NotCoordinator,
        Invalid::RevokedConcurrently,
        Invalid::UnknownTeam,
        Invalid::UnknownOrg,
        Invalid::UnknownReference,
        Invalid::WrongMeetingKind,
        Invalid::NotAttendee,
        Invalid::NotInElectorate,
        Invalid::DoubleVote,
        Invalid::MotionNotPassed,
        Invalid::SlotOccupied,
        Invalid::NotGovernment,
        Invalid::WrongDocument,
        Invalid::NotTeamMember,
        Invalid::Duplicate,
        Invalid::BadEvidence,
        Invalid::NotApplicable,
        Invalid::TooManyBindings,
        Invalid::DocumentBudget,
    ];

    /// The digest's code for this reason (0 is a valid op). Part of the state digest: never renumber.
    pub(super) fn digest_code(self) -> u8 {
        self as u8 + 1
    }

    /// A stable machine code (kebab-case, the same string as the reason's JSON form): what the local API returns
    /// when the replay would mark a command's op invalid, and what scripts match on.
    pub fn code(self) -> &'static str {
        match self {
            Invalid::Equivocation => "equivocation",
            Invalid::NotMember => "not-member",
            Invalid::NotSecretariat => "not-secretariat",
            Invalid::NotNominatingAuthority => "not-nominating-authority",
            Invalid::NotCoordinator => "not-coordinator",
            Invalid::RevokedConcurrently => "revoked-concurrently",
            Invalid::UnknownTeam => "unknown-team",
            Invalid::UnknownOrg => "unknown-org",
            Invalid::UnknownReference => "unknown-reference",
            Invalid::WrongMeetingKind => "wrong-meeting-kind",
            Invalid::NotAttendee => "not-attendee",
            Invalid::NotInElectorate => "not-in-electorate",
            Invalid::DoubleVote => "double-vote",
            Invalid::MotionNotPassed => "motion-not-passed",
            Invalid::SlotOccupied => "slot-occupied",
            Invalid::NotGovernment => "not-government",
            Invalid::WrongDocument => "wrong-document",
            Invalid::NotTeamMember => "not-team-member",
            Invalid::Duplicate => "duplicate",
            Invalid::BadEvidence => "bad-evidence",
            Invalid::NotApplicable => "not-applicable",
            Invalid::TooManyBindings => "too-many-bindings",
            Invalid::DocumentBudget => "document-budget",
        }
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
            Invalid::TooManyBindings => "the organisation has bound as many peer ids as it may",
            Invalid::DocumentBudget => "the author has created as many documents as it may",
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
