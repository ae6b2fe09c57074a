//! The op kinds: every governance act an op can carry, with the payload types they name. How each kind is
//! written on the wire is in [`super::payload`].

use super::{Country, SignedInception, SignedOp, TeamCode};
use crate::ids::{DocId, Hash32, OpId, OrgId};

/// A team in the genesis: a code and a title.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Team {
    pub code: TeamCode,
    pub name: String,
}

/// Federation-wide parameters fixed at genesis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Policy {
    /// Distinct attendee approvals (the convener's among them) that make a meeting record approved.
    pub record_approvals: u8,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            record_approvals: 2,
        }
    }
}

/// The root of a federation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Genesis {
    pub name: String,
    /// The convening secretariat organisations (ITU, UNESCO, …). The op's author is one of them.
    pub secretariat: Vec<SignedInception>,
    /// Who nominates coordinators; `None` means any secretariat organisation.
    pub nominating_authority: Option<OrgId>,
    pub teams: Vec<Team>,
    pub policy: Policy,
}

/// The kinds of meeting the mechanism knows.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "team")]
pub enum MeetingKind {
    /// A multi-stakeholder team's meeting, convened by its coordinator (seed point 2).
    Team(TeamCode),
    /// A meeting of stakeholders to agree on recommendations of coordinators (point 3), convened by a secretariat.
    Recommendation,
    /// The Meeting of the coordinators (points 5–7), convened by a secretariat.
    Coordinators,
}

/// Roles that can be elected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChairRole {
    Chair,
    CoChair,
}

/// What a motion asks the meeting to decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MotionKind {
    /// Recommend `org` as coordinator of `team` (recommendation meetings).
    Recommend { team: TeamCode, org: OrgId },
    /// Elect the Chair or a Co-Chair (coordinators' meetings).
    Elect { role: ChairRole, org: OrgId },
    /// The stocktaking procedure for a year (coordinators' meetings).
    AdoptProcedure(Procedure),
    /// Finalise everything up to these governance heads (coordinators' meetings).
    Checkpoint { heads: Vec<OpId> },
    /// Adopt the year's report, named by the hash of its bundle manifest (coordinators' meetings).
    AdoptReport { year: u16, manifest_hash: Hash32 },
}

/// The procedure of a year's stocktaking exercise (seed point 6).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Procedure {
    pub year: u16,
    /// Teams expected to submit an output; empty means every team.
    pub teams: Vec<TeamCode>,
    /// Informational deadline; submissions signed later are shown as late, never dropped.
    pub deadline_ms: u64,
    /// Section names every output must have (e.g. achievements, challenges, recommendations).
    pub required_sections: Vec<String>,
    /// Whether national implementation reports are part of the exercise.
    pub national_reports: bool,
}

/// Roles that can be revoked with [`OpKind::RevokeRole`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "role", content = "team")]
pub enum RevocableRole {
    /// Accreditation, granted by `Admit` (revoked by a secretariat organisation).
    Member,
    /// Coordinator of a team, granted by `Nominate` (revoked by the nominating authority).
    Coordinator(TeamCode),
}

/// Kinds of content document created by `CreateDoc` (meeting records are created by `Convene`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum DocKind {
    /// A team's annual output draft; members of the team write it.
    OutputDraft { team: TeamCode, year: u16 },
    /// A national implementation report; the creating government writes it.
    NationalReport { country: Country, year: u16 },
    /// A team's charter; its coordinator writes it.
    TeamCharter { team: TeamCode },
}

/// A document at a point in its history: the Automerge heads and the SHA-256 of its canonical JSON export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attestation {
    pub heads: Vec<Hash32>,
    pub content_hash: Hash32,
}

/// Every governance op kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpKind {
    Genesis(Box<Genesis>),
    OrgInception(SignedInception),
    Admit {
        org: OrgId,
    },
    BindNode {
        peer_id: Vec<u8>,
    },
    JoinTeam {
        team: TeamCode,
    },
    LeaveTeam {
        team: TeamCode,
    },
    Convene {
        meeting: MeetingKind,
        year: u16,
        title: String,
    },
    Attend {
        meeting: OpId,
    },
    Motion {
        meeting: OpId,
        motion: MotionKind,
    },
    Ballot {
        motion: OpId,
        yes: bool,
    },
    Nominate {
        team: TeamCode,
        org: OrgId,
        recommendation: OpId,
    },
    RevokeRole {
        role: RevocableRole,
        org: OrgId,
    },
    SetModalities {
        team: TeamCode,
        text: String,
    },
    CreateDoc {
        kind: DocKind,
    },
    ApproveRecord {
        meeting: OpId,
        record: Attestation,
    },
    SubmitOutput {
        team: TeamCode,
        year: u16,
        doc: DocId,
        attestation: Attestation,
    },
    SubmitNationalReport {
        country: Country,
        year: u16,
        doc: DocId,
        attestation: Attestation,
    },
    Evidence {
        first: Box<SignedOp>,
        second: Box<SignedOp>,
    },
}

impl OpKind {
    /// The wire number of the kind.
    pub fn tag(&self) -> u64 {
        match self {
            OpKind::Genesis(_) => 1,
            OpKind::OrgInception(_) => 2,
            OpKind::Admit { .. } => 3,
            OpKind::BindNode { .. } => 4,
            OpKind::JoinTeam { .. } => 5,
            OpKind::LeaveTeam { .. } => 6,
            OpKind::Convene { .. } => 7,
            OpKind::Attend { .. } => 8,
            OpKind::Motion { .. } => 9,
            OpKind::Ballot { .. } => 10,
            OpKind::Nominate { .. } => 11,
            OpKind::RevokeRole { .. } => 12,
            OpKind::SetModalities { .. } => 13,
            OpKind::CreateDoc { .. } => 14,
            OpKind::ApproveRecord { .. } => 15,
            OpKind::SubmitOutput { .. } => 16,
            OpKind::SubmitNationalReport { .. } => 17,
            OpKind::Evidence { .. } => 18,
        }
    }

    /// A short name for logs and tables.
    pub fn name(&self) -> &'static str {
        match self {
            OpKind::Genesis(_) => "genesis",
            OpKind::OrgInception(_) => "org-inception",
            OpKind::Admit { .. } => "admit",
            OpKind::BindNode { .. } => "bind-node",
            OpKind::JoinTeam { .. } => "join-team",
            OpKind::LeaveTeam { .. } => "leave-team",
            OpKind::Convene { .. } => "convene",
            OpKind::Attend { .. } => "attend",
            OpKind::Motion { .. } => "motion",
            OpKind::Ballot { .. } => "ballot",
            OpKind::Nominate { .. } => "nominate",
            OpKind::RevokeRole { .. } => "revoke-role",
            OpKind::SetModalities { .. } => "set-modalities",
            OpKind::CreateDoc { .. } => "create-doc",
            OpKind::ApproveRecord { .. } => "approve-record",
            OpKind::SubmitOutput { .. } => "submit-output",
            OpKind::SubmitNationalReport { .. } => "submit-national-report",
            OpKind::Evidence { .. } => "evidence",
        }
    }

    /// Puts every list that has one canonical form into it, so that what a person typed (teams in any order, a
    /// head twice) becomes what every peer's strict decoder accepts instead of an op they refuse:
    ///
    /// - lists the decoder requires strictly ascending (procedure teams, checkpoint heads, document heads of an
    ///   attestation) are sorted and deduplicated;
    /// - a procedure's required sections keep their order (it is the order a report shows them in) and lose exact
    ///   duplicates, which would only repeat a section.
    ///
    /// Nothing else is changed: a list the decoder requires unique but whose entries differ in more than their
    /// key (two genesis teams with one code and two names) cannot be merged silently, so it stays and
    /// [`OpBody::seal`](super::OpBody::seal) refuses it with the decoder's reason. Evidence carries signed ops as
    /// they were signed and is never touched.
    pub fn canonicalize(&mut self) {
        fn ascending<T: Ord>(v: &mut Vec<T>) {
            v.sort();
            v.dedup();
        }
        match self {
            OpKind::Motion { motion, .. } => match motion {
                MotionKind::AdoptProcedure(p) => {
                    ascending(&mut p.teams);
                    let mut seen = std::collections::HashSet::new();
                    p.required_sections.retain(|s| seen.insert(s.clone()));
                }
                MotionKind::Checkpoint { heads } => ascending(heads),
                MotionKind::Recommend { .. }
                | MotionKind::Elect { .. }
                | MotionKind::AdoptReport { .. } => {}
            },
            OpKind::ApproveRecord { record, .. } => ascending(&mut record.heads),
            OpKind::SubmitOutput { attestation, .. }
            | OpKind::SubmitNationalReport { attestation, .. } => ascending(&mut attestation.heads),
            OpKind::Genesis(_)
            | OpKind::OrgInception(_)
            | OpKind::Admit { .. }
            | OpKind::BindNode { .. }
            | OpKind::JoinTeam { .. }
            | OpKind::LeaveTeam { .. }
            | OpKind::Convene { .. }
            | OpKind::Attend { .. }
            | OpKind::Ballot { .. }
            | OpKind::Nominate { .. }
            | OpKind::RevokeRole { .. }
            | OpKind::SetModalities { .. }
            | OpKind::CreateDoc { .. }
            | OpKind::Evidence { .. } => {}
        }
    }
}
