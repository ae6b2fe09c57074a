//! The stocktaking view: what the Meeting of the coordinators sees for a year, computed from the governance state
//! alone (plus the content hashes of the documents the caller could export), and serialised to canonical JSON.
//!
//! The view is a pure function: the same replica, year and attested hashes give the same bytes, on every node and
//! in the offline verifier, which recomputes it and compares it byte for byte with `view/stocktake.json`.
//! Nothing is hidden: contested roles and submissions, late submissions, missing outputs and documents whose
//! content does not match the attestation each have a status of their own.

use crate::gov::{Governance, SubmissionInfo, SubmissionSubject};
use crate::ids::Hash32;
use crate::ids::{DocId, FederationId, OpId, OrgId};
use crate::op::{Country, MeetingKind, StakeholderType, TeamCode};
use std::collections::BTreeMap;

/// The format tag written into every view.
pub const VIEW_FORMAT: &str = "wsis-stocktake/1";

/// The whole view for one year.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StocktakeView {
    pub format: &'static str,
    pub federation: FederationId,
    pub federation_name: String,
    pub year: u16,
    /// The governance heads the view was computed at.
    pub heads: Vec<OpId>,
    pub procedure: Option<ProcedureView>,
    pub chair: Option<RoleView>,
    pub co_chairs: Vec<OrgRef>,
    pub teams: Vec<TeamView>,
    pub national_reports: Vec<NationalReportView>,
    pub summary: Summary,
}

/// An organisation by id and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct OrgRef {
    pub id: OrgId,
    pub name: String,
}

/// A single-holder role and who else claimed it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RoleView {
    pub org: OrgRef,
    pub granted_by: OpId,
    /// Non-empty when the slot was contested; the holder won the deterministic contest.
    pub contested_with: Vec<OrgRef>,
}

/// The adopted procedure.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProcedureView {
    pub motion: OpId,
    pub teams: Vec<TeamCode>,
    pub deadline_ms: u64,
    pub required_sections: Vec<String>,
    pub national_reports: bool,
    pub contested_with: Vec<OpId>,
}

/// One team.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TeamView {
    pub code: TeamCode,
    pub name: String,
    /// Whether the procedure expects an output from this team this year.
    pub expected: bool,
    pub coordinator: Option<RoleView>,
    pub modalities: Option<String>,
    pub members: Vec<MemberView>,
    /// Members counted by stakeholder type (every type present, zeros included).
    pub members_by_stakeholder: BTreeMap<StakeholderType, u32>,
    pub meetings: Vec<MeetingView>,
    pub output: OutputView,
}

/// A team member.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MemberView {
    pub id: OrgId,
    pub name: String,
    pub stakeholder: StakeholderType,
}

/// A meeting held this year.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MeetingView {
    pub id: OpId,
    pub title: String,
    pub convener: OrgRef,
    pub attendees: u32,
    /// `approved` or `not-approved`.
    pub record: &'static str,
    pub record_content_hash: Option<String>,
    pub approvers: Vec<OrgRef>,
}

/// Status of a submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Submitted, and the attested document's content matches.
    Submitted,
    /// No valid submission.
    Missing,
    /// Two or more concurrent valid submissions; the one shown won by lower OpId.
    Contested,
    /// Submitted, but the attested document was not available to this view.
    DocumentMissing,
    /// Submitted, but the available document's content hash differs from the attested one.
    HashMismatch,
}

/// A team's output for the year.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OutputView {
    pub status: Status,
    pub submission: Option<SubmissionView>,
}

/// The details of the submission shown.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SubmissionView {
    pub op: OpId,
    pub doc: DocId,
    pub heads: Vec<String>,
    pub content_hash: String,
    pub submitted_by: OrgRef,
    /// Signed after the procedure's deadline by the author's own clock (informational; never a reason to drop).
    pub late: bool,
    pub contested_with: Vec<OpId>,
}

/// A national implementation report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NationalReportView {
    pub country: Country,
    pub status: Status,
    pub submission: SubmissionView,
}

/// Counts over the whole view.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    pub teams: u32,
    pub teams_expected: u32,
    pub outputs_submitted: u32,
    pub outputs_missing: u32,
    pub outputs_contested: u32,
    pub outputs_with_document_problems: u32,
    pub outputs_late: u32,
    pub national_reports: u32,
    pub meetings_held: u32,
    pub records_approved: u32,
    pub contested_roles: u32,
}

impl StocktakeView {
    /// Computes the view of `year` from a replica and the content hashes of the attested documents the caller
    /// holds (document id → SHA-256 of its canonical JSON export).
    pub fn compute(
        gov: &Governance,
        year: u16,
        attested: &BTreeMap<DocId, Hash32>,
    ) -> StocktakeView {
        let org_ref = |id: &OrgId| OrgRef {
            id: *id,
            name: gov
                .org(id)
                .map(|o| o.name)
                .unwrap_or_else(|| format!("{id:#}")),
        };
        let role = |h: crate::gov::SlotHolder| RoleView {
            org: org_ref(&h.org),
            granted_by: h.granted_by,
            contested_with: h.contested_with.iter().map(&org_ref).collect(),
        };
        let procedure = gov
            .procedure(year)
            .map(|(motion, p, rivals)| ProcedureView {
                motion,
                teams: p.teams,
                deadline_ms: p.deadline_ms,
                required_sections: p.required_sections,
                national_reports: p.national_reports,
                contested_with: rivals,
            });
        let bench = gov.chair();
        let submissions: Vec<SubmissionInfo> = gov
            .submissions()
            .into_iter()
            .filter(|s| s.year == year && !s.superseded)
            .collect();
        let deadline = procedure.as_ref().map(|p| p.deadline_ms);
        let submission_view = |subs: &[&SubmissionInfo]| -> Option<(Status, SubmissionView)> {
            // Concurrent valid submissions: show the lowest OpId, say it is contested, name the others.
            let shown = subs.iter().min_by_key(|s| s.op)?;
            let contested_with: Vec<OpId> = subs
                .iter()
                .map(|s| s.op)
                .filter(|o| *o != shown.op)
                .collect();
            let status = if !contested_with.is_empty() {
                Status::Contested
            } else {
                match attested.get(&shown.doc) {
                    None => Status::DocumentMissing,
                    Some(h) if h.to_string() != shown.content_hash => Status::HashMismatch,
                    Some(_) => Status::Submitted,
                }
            };
            Some((
                status,
                SubmissionView {
                    op: shown.op,
                    doc: shown.doc,
                    heads: shown.heads.clone(),
                    content_hash: shown.content_hash.clone(),
                    submitted_by: org_ref(&shown.author),
                    late: deadline.is_some_and(|d| shown.timestamp_ms > d),
                    contested_with,
                },
            ))
        };
        let meetings = gov.meetings();
        let mut teams = Vec::new();
        for (code, name) in &gov.federation().teams {
            let expected = procedure
                .as_ref()
                .is_none_or(|p| p.teams.is_empty() || p.teams.contains(code));
            let mut members: Vec<MemberView> = gov
                .team_members(code)
                .iter()
                .filter_map(|id| gov.org(id))
                .map(|o| MemberView {
                    id: o.id,
                    name: o.name,
                    stakeholder: o.stakeholder,
                })
                .collect();
            members.sort_by(|a, b| (&a.name, a.id).cmp(&(&b.name, b.id)));
            let mut by_type: BTreeMap<StakeholderType, u32> =
                StakeholderType::ALL.iter().map(|t| (*t, 0)).collect();
            for m in &members {
                *by_type.entry(m.stakeholder).or_default() += 1;
            }
            let team_meetings = meetings
                .iter()
                .filter(|m| m.year == year && m.kind == MeetingKind::Team(code.clone()))
                .map(|m| MeetingView {
                    id: m.id,
                    title: m.title.clone(),
                    convener: org_ref(&m.convener),
                    attendees: m.attendees.len() as u32,
                    record: if m.approved_record.is_some() {
                        "approved"
                    } else {
                        "not-approved"
                    },
                    record_content_hash: m.approved_record.as_ref().map(|r| r.content_hash.clone()),
                    approvers: m
                        .approved_record
                        .as_ref()
                        .map(|r| r.approvers.iter().map(&org_ref).collect())
                        .unwrap_or_default(),
                })
                .collect();
            let subs: Vec<&SubmissionInfo> = submissions
                .iter()
                .filter(
                    |s| matches!(&s.subject, SubmissionSubject::Output { team } if team == code),
                )
                .collect();
            let output = match submission_view(&subs) {
                Some((status, s)) => OutputView {
                    status,
                    submission: Some(s),
                },
                None => OutputView {
                    status: Status::Missing,
                    submission: None,
                },
            };
            teams.push(TeamView {
                code: code.clone(),
                name: name.clone(),
                expected,
                coordinator: gov.coordinator(code).map(role),
                modalities: gov.modalities(code),
                members,
                members_by_stakeholder: by_type,
                meetings: team_meetings,
                output,
            });
        }
        let mut countries: BTreeMap<Country, Vec<&SubmissionInfo>> = BTreeMap::new();
        for s in &submissions {
            if let SubmissionSubject::NationalReport { country } = &s.subject {
                countries.entry(*country).or_default().push(s);
            }
        }
        let national_reports: Vec<NationalReportView> = countries
            .into_iter()
            .filter_map(|(country, subs)| {
                submission_view(&subs).map(|(status, submission)| NationalReportView {
                    country,
                    status,
                    submission,
                })
            })
            .collect();
        let count = |f: &dyn Fn(&TeamView) -> bool| teams.iter().filter(|t| f(t)).count() as u32;
        let chair = bench.chair.map(role);
        let summary = Summary {
            teams: teams.len() as u32,
            teams_expected: count(&|t| t.expected),
            outputs_submitted: count(&|t| t.output.status == Status::Submitted),
            outputs_missing: count(&|t| t.expected && t.output.status == Status::Missing),
            outputs_contested: count(&|t| t.output.status == Status::Contested),
            outputs_with_document_problems: count(&|t| {
                matches!(
                    t.output.status,
                    Status::DocumentMissing | Status::HashMismatch
                )
            }),
            outputs_late: count(&|t| t.output.submission.as_ref().is_some_and(|s| s.late)),
            national_reports: national_reports.len() as u32,
            meetings_held: teams.iter().map(|t| t.meetings.len() as u32).sum(),
            records_approved: teams
                .iter()
                .flat_map(|t| &t.meetings)
                .filter(|m| m.record == "approved")
                .count() as u32,
            contested_roles: teams
                .iter()
                .filter(|t| {
                    t.coordinator
                        .as_ref()
                        .is_some_and(|c| !c.contested_with.is_empty())
                })
                .count() as u32
                + chair.as_ref().is_some_and(|c| !c.contested_with.is_empty()) as u32,
        };
        StocktakeView {
            format: VIEW_FORMAT,
            federation: gov.federation_id(),
            federation_name: gov.federation().name.clone(),
            year,
            heads: gov.heads(),
            procedure,
            chair,
            co_chairs: bench.co_chairs.iter().map(&org_ref).collect(),
            teams,
            national_reports,
            summary,
        }
    }

    /// Canonical JSON: fixed field order, no insignificant whitespace, a trailing newline. Byte-stable.
    pub fn to_canonical_json(&self) -> Vec<u8> {
        // Serialising plain structs, strings and integers cannot fail.
        let mut v = serde_json::to_vec(self).unwrap_or_default();
        v.push(b'\n');
        v
    }
}
