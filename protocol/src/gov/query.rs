//! Read-only questions about the replayed state: who is a member, who coordinates, who chairs, which meetings
//! and motions there are, and what was submitted (documents and write access are in `access.rs`).
//!
//! "Now" means at the current heads of this replica. Every answer that involves a concurrency rule says so
//! (`contested_with`, `superseded`), so a conflict is shown, never silently resolved.

use super::eval::At;
use super::{Governance, Invalid};
use crate::ids::{DocId, OpId, OrgId};
use crate::op::{
    Attestation, ChairRole, Country, MeetingKind, MotionKind, OpKind, Procedure, StakeholderType,
    TeamCode,
};
use std::collections::BTreeSet;

/// A meeting record as approved: (document heads, content hash).
type RecordKey = (Vec<[u8; 32]>, [u8; 32]);

/// An organisation as the replica sees it now (also the API's `GET /v1/orgs` row, read back by its clients).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OrgInfo {
    pub id: OrgId,
    pub name: String,
    pub stakeholder: StakeholderType,
    pub country: Option<Country>,
    pub secretariat: bool,
    /// Admitted (accredited).
    pub member: bool,
}

/// The holder of a single-holder slot and the rivals it beat, if any.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SlotHolder {
    pub org: OrgId,
    /// The op that granted the role (a Nominate, or the Elect motion).
    pub granted_by: OpId,
    /// Organisations with a concurrent valid claim that lost the deterministic contest.
    pub contested_with: Vec<OrgId>,
}

/// The Chair and Co-Chairs.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ChairBench {
    pub chair: Option<SlotHolder>,
    pub co_chairs: Vec<OrgId>,
}

/// A meeting.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MeetingInfo {
    pub id: OpId,
    pub kind: MeetingKind,
    pub year: u16,
    pub title: String,
    pub convener: OrgId,
    pub attendees: Vec<OrgId>,
    /// The record as approved (by the convener and enough attendees on the same heads and content), if it is.
    pub approved_record: Option<ApprovedRecord>,
}

/// An approved meeting record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ApprovedRecord {
    pub heads: Vec<String>,
    pub content_hash: String,
    pub approvers: Vec<OrgId>,
}

/// A motion and its count.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MotionInfo {
    pub id: OpId,
    pub meeting: OpId,
    pub proposer: OrgId,
    pub summary: String,
    pub electorate: usize,
    pub yes: usize,
    pub no: usize,
    pub passed: bool,
}

/// What a submission is for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum SubmissionSubject {
    Output { team: TeamCode },
    NationalReport { country: Country },
}

/// A valid submission (team output or national report).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SubmissionInfo {
    pub op: OpId,
    pub subject: SubmissionSubject,
    pub year: u16,
    pub doc: DocId,
    pub heads: Vec<String>,
    pub content_hash: String,
    pub author: OrgId,
    /// The author's clock; informational (used only to show "late").
    pub timestamp_ms: u64,
    /// A later submission for the same subject and year has this one in its history.
    pub superseded: bool,
    /// Another valid submission for the same subject and year is concurrent with this one.
    pub contested: bool,
}

impl Governance {
    /// The history of all current heads.
    pub(crate) fn top_vc(&self) -> Box<[u32]> {
        let heads: Vec<u32> = self
            .heads()
            .iter()
            .filter_map(|h| self.by_id.get(h).copied())
            .collect();
        self.merged_vc(heads.into_iter())
    }

    pub fn is_member(&self, org: &OrgId) -> bool {
        let vc = self.top_vc();
        self.is_member_at(org, &At { vc: &vc, op: None })
    }

    /// An organisation in the DAG, or one asking for admission (its inception held outside the DAG; not a member).
    pub fn org(&self, org: &OrgId) -> Option<OrgInfo> {
        let vc = self.top_vc();
        self.org_info(org, &At { vc: &vc, op: None })
            .or_else(|| self.pending_org(org))
    }

    /// The organisation whose inception waits for admission.
    fn pending_org(&self, org: &OrgId) -> Option<OrgInfo> {
        let op = self.pending_of(org).into_iter().next()?;
        let OpKind::OrgInception(rec) = op.kind() else {
            return None;
        };
        let b = rec.body();
        Some(OrgInfo {
            id: *org,
            name: b.name.clone(),
            stakeholder: b.stakeholder,
            country: b.country,
            secretariat: false,
            member: false,
        })
    }

    /// Organisations asking for admission (inceptions held outside the DAG), by name.
    pub fn admission_requests(&self) -> Vec<OrgInfo> {
        let mut v: Vec<OrgInfo> = self
            .pending_inceptions()
            .into_iter()
            .filter_map(|op| self.pending_org(&op.author()))
            .collect();
        v.sort_by(|a, b| (&a.name, a.id).cmp(&(&b.name, b.id)));
        v
    }

    fn org_info(&self, org: &OrgId, at: &At<'_>) -> Option<OrgInfo> {
        let rec = self.inceptions.get(org)?;
        let b = rec.body();
        Some(OrgInfo {
            id: *org,
            name: b.name.clone(),
            stakeholder: b.stakeholder,
            country: b.country,
            secretariat: self.fed.secretariat.contains(org),
            member: self.is_member_at(org, at),
        })
    }

    /// Every organisation known (secretariat and incepted), sorted by name then id.
    pub fn orgs(&self) -> Vec<OrgInfo> {
        let vc = self.top_vc();
        let at = At { vc: &vc, op: None };
        let mut v: Vec<OrgInfo> = self
            .inceptions
            .keys()
            .filter_map(|o| self.org_info(o, &at))
            .collect();
        v.sort_by(|a, b| (&a.name, a.id).cmp(&(&b.name, b.id)));
        v
    }

    /// Current members of a team (admitted organisations whose last join/leave was a join), sorted.
    pub fn team_members(&self, team: &TeamCode) -> Vec<OrgId> {
        let vc = self.top_vc();
        let at = At { vc: &vc, op: None };
        let mut v: Vec<OrgId> = self
            .index
            .team_events
            .keys()
            .filter(|(t, o)| {
                t == team && self.team_member_at(t, o, &at) && self.is_member_at(o, &at)
            })
            .map(|(_, o)| *o)
            .collect();
        v.sort();
        v
    }

    /// The team's coordinator now, with any rival it beat.
    pub fn coordinator(&self, team: &TeamCode) -> Option<SlotHolder> {
        let vc = self.top_vc();
        self.coordinator_holder(team, &At { vc: &vc, op: None })
    }

    fn coordinator_holder(&self, team: &TeamCode, at: &At<'_>) -> Option<SlotHolder> {
        let (org, n) = self.coordinator_at(team, at)?;
        let mut contested_with: Vec<OrgId> = self
            .index
            .nominations
            .get(team)
            .into_iter()
            .flatten()
            .filter(|&&l| {
                self.facts.lost_nominations.contains(&l) && !self.le(l, n) && !self.le(n, l)
            })
            .filter_map(|&l| super::eval::nominee(&self.nodes[l as usize].op))
            .filter(|o| *o != org)
            .collect();
        contested_with.sort();
        contested_with.dedup();
        Some(SlotHolder {
            org,
            granted_by: self.nodes[n as usize].op.id(),
            contested_with,
        })
    }

    /// The Chair and Co-Chairs now.
    pub fn chair(&self) -> ChairBench {
        let vc = self.top_vc();
        self.chair_at_point(&At { vc: &vc, op: None })
    }

    /// The Chair and Co-Chairs in the history of the given heads (e.g. a closing checkpoint).
    pub fn chair_at(&self, heads: &[OpId]) -> ChairBench {
        let vc = self.merged_vc(heads.iter().filter_map(|h| self.by_id.get(h).copied()));
        self.chair_at_point(&At { vc: &vc, op: None })
    }

    fn chair_at_point(&self, at: &At<'_>) -> ChairBench {
        // Elect motions that passed at this point.
        let mut passed: Vec<(u32, ChairRole, OrgId, OpId)> = Vec::new();
        for (id, m) in &self.index.motions {
            if let OpKind::Motion {
                meeting,
                motion: MotionKind::Elect { role, org },
            } = self.nodes[m.idx as usize].op.kind()
            {
                if self.motion_passed_at(id, at) {
                    passed.push((m.idx, *role, *org, *meeting));
                }
            }
        }
        let chairs: Vec<&(u32, ChairRole, OrgId, OpId)> =
            passed.iter().filter(|p| p.1 == ChairRole::Chair).collect();
        // A later election (one that has an earlier one in its history) supersedes it.
        let latest: Vec<&&(u32, ChairRole, OrgId, OpId)> = chairs
            .iter()
            .filter(|a| !chairs.iter().any(|b| b.0 != a.0 && self.le(a.0, b.0)))
            .collect();
        let rank = |p: &(u32, ChairRole, OrgId, OpId)| {
            let id = self.nodes[p.0 as usize].op.id();
            (std::cmp::Reverse(self.yes_at(&id, at)), id)
        };
        let winner = latest.iter().min_by_key(|p| rank(p));
        let chair = winner.map(|w| SlotHolder {
            org: w.2,
            granted_by: self.nodes[w.0 as usize].op.id(),
            contested_with: {
                let mut v: Vec<OrgId> = latest.iter().map(|p| p.2).filter(|o| *o != w.2).collect();
                v.sort();
                v.dedup();
                v
            },
        });
        // Co-Chairs: those elected in the meeting that elected the Chair (or, with no Chair, the latest ones).
        let co: Vec<&(u32, ChairRole, OrgId, OpId)> = passed
            .iter()
            .filter(|p| p.1 == ChairRole::CoChair)
            .collect();
        let mut co_chairs: Vec<OrgId> = match winner {
            Some(w) => co.iter().filter(|p| p.3 == w.3).map(|p| p.2).collect(),
            None => co
                .iter()
                .filter(|a| !co.iter().any(|b| b.3 != a.3 && self.le(a.0, b.0)))
                .map(|p| p.2)
                .collect(),
        };
        co_chairs.sort();
        co_chairs.dedup();
        ChairBench { chair, co_chairs }
    }

    fn yes_at(&self, motion: &OpId, at: &At<'_>) -> usize {
        self.index
            .motions
            .get(motion)
            .map_or(0, |m| self.yes_voters(m, Some(at.vc)).len())
    }

    /// A deterministic order for lists: the author's timestamp (informational, but part of the signed op, so
    /// every replica sees the same), then the OpId. Never the local insertion order.
    fn display_order(&self, i: u32) -> (u64, OpId) {
        let op = &self.nodes[i as usize].op;
        (op.body().timestamp_ms, op.id())
    }

    /// Every valid meeting, ordered by (timestamp, OpId).
    pub fn meetings(&self) -> Vec<MeetingInfo> {
        let mut idxs: Vec<u32> = self.index.meetings.values().copied().collect();
        idxs.sort_by_key(|&i| self.display_order(i));
        idxs.into_iter()
            .filter_map(|i| self.meeting_info(i))
            .collect()
    }

    pub fn meeting(&self, id: &OpId) -> Option<MeetingInfo> {
        self.index
            .meetings
            .get(id)
            .and_then(|&i| self.meeting_info(i))
    }

    fn meeting_info(&self, i: u32) -> Option<MeetingInfo> {
        let op = &self.nodes[i as usize].op;
        let OpKind::Convene {
            meeting,
            year,
            title,
        } = op.kind()
        else {
            return None;
        };
        let mut attendees: Vec<OrgId> = self
            .index
            .attendance
            .get(&op.id())
            .into_iter()
            .flatten()
            .map(|(o, _)| *o)
            .collect();
        attendees.sort();
        attendees.dedup();
        Some(MeetingInfo {
            id: op.id(),
            kind: meeting.clone(),
            year: *year,
            title: title.clone(),
            convener: op.author(),
            approved_record: self.approved_record(&op.id(), op.author()),
            attendees,
        })
    }

    /// The record approval with the most approvers that includes the convener and reaches the policy threshold
    /// (ties: the lower content hash).
    fn approved_record(&self, meeting: &OpId, convener: OrgId) -> Option<ApprovedRecord> {
        let mut by_att: std::collections::BTreeMap<RecordKey, BTreeSet<OrgId>> = Default::default();
        for &a in self.index.approvals.get(meeting).into_iter().flatten() {
            let op = &self.nodes[a as usize].op;
            if let OpKind::ApproveRecord {
                record:
                    Attestation {
                        heads,
                        content_hash,
                    },
                ..
            } = op.kind()
            {
                by_att
                    .entry((heads.iter().map(|h| h.0).collect(), content_hash.0))
                    .or_default()
                    .insert(op.author());
            }
        }
        by_att
            .into_iter()
            .filter(|(_, who)| {
                who.contains(&convener) && who.len() >= self.fed.record_approvals as usize
            })
            .max_by(|a, b| a.1.len().cmp(&b.1.len()).then(b.0.cmp(&a.0)))
            .map(|((heads, hash), who)| ApprovedRecord {
                heads: heads.iter().map(hex::encode).collect(),
                content_hash: hex::encode(hash),
                approvers: who.into_iter().collect(),
            })
    }

    /// Every valid motion, in topological order.
    pub fn motions(&self) -> Vec<MotionInfo> {
        let mut v: Vec<(u32, OpId)> = self
            .index
            .motions
            .iter()
            .map(|(id, m)| (m.idx, *id))
            .collect();
        v.sort();
        v.into_iter()
            .filter_map(|(_, id)| self.motion(&id))
            .collect()
    }

    pub fn motion(&self, id: &OpId) -> Option<MotionInfo> {
        let m = self.index.motions.get(id)?;
        let op = &self.nodes[m.idx as usize].op;
        let OpKind::Motion { meeting, motion } = op.kind() else {
            return None;
        };
        // Distinct voters: an equivocating voter's twins count once.
        let yes = self.yes_voters(m, None);
        let no: BTreeSet<OrgId> = m
            .ballots
            .iter()
            .filter(|(o, y, _)| !*y && !yes.contains(o))
            .map(|(o, _, _)| *o)
            .collect();
        let passed = match motion {
            // A checkpoint's passing is the history-only judgement's, the one finality rests on.
            MotionKind::Checkpoint { .. } => {
                self.passed_checkpoint_motions().binary_search(id).is_ok()
            }
            _ => self.motion_passed(m),
        };
        Some(MotionInfo {
            id: *id,
            meeting: *meeting,
            proposer: op.author(),
            summary: self.describe_motion(motion),
            electorate: m.electorate.len(),
            yes: yes.len(),
            no: no.len(),
            passed,
        })
    }

    /// The motion kind of a valid motion.
    pub fn motion_kind(&self, id: &OpId) -> Option<&MotionKind> {
        let m = self.index.motions.get(id)?;
        match self.nodes[m.idx as usize].op.kind() {
            OpKind::Motion { motion, .. } => Some(motion),
            _ => None,
        }
    }

    /// The electorate a coordinators' meeting would give its motions (the coordinators when it was convened).
    #[doc(hidden)]
    pub fn coordinators_meeting_electorate_for_test(&self, meeting: &OpId) -> Vec<OrgId> {
        self.coordinators_meeting_electorate(meeting)
            .into_iter()
            .collect()
    }

    /// The organisations that may vote on a motion.
    pub fn electorate(&self, motion: &OpId) -> Option<Vec<OrgId>> {
        self.index
            .motions
            .get(motion)
            .map(|m| m.electorate.iter().copied().collect())
    }

    fn describe_motion(&self, m: &MotionKind) -> String {
        let name = |o: &OrgId| {
            self.inceptions
                .get(o)
                .map_or_else(|| format!("{o:#}"), |r| r.body().name.clone())
        };
        match m {
            MotionKind::Recommend { team, org } => {
                format!("recommend {} as coordinator of {team}", name(org))
            }
            MotionKind::Elect {
                role: ChairRole::Chair,
                org,
            } => format!("elect {} as Chair", name(org)),
            MotionKind::Elect {
                role: ChairRole::CoChair,
                org,
            } => format!("elect {} as Co-Chair", name(org)),
            MotionKind::AdoptProcedure(p) => {
                format!("adopt the stocktaking procedure for {}", p.year)
            }
            MotionKind::Checkpoint { heads } => format!("checkpoint at {} head(s)", heads.len()),
            MotionKind::AdoptReport { year, .. } => format!("adopt the report for {year}"),
        }
    }

    /// The procedure adopted for a year: among passed AdoptProcedure motions for it, the latest; concurrent ones
    /// are decided by lower OpId and reported in the second element.
    pub fn procedure(&self, year: u16) -> Option<(OpId, Procedure, Vec<OpId>)> {
        let mut passed: Vec<(u32, OpId, Procedure)> = self
            .index
            .motions
            .iter()
            .filter(|(_, m)| self.motion_passed(m))
            .filter_map(|(id, m)| match self.nodes[m.idx as usize].op.kind() {
                OpKind::Motion {
                    motion: MotionKind::AdoptProcedure(p),
                    ..
                } if p.year == year => Some((m.idx, *id, p.clone())),
                _ => None,
            })
            .collect();
        passed.sort_by_key(|p| p.1);
        let latest: Vec<&(u32, OpId, Procedure)> = passed
            .iter()
            .filter(|a| !passed.iter().any(|b| b.0 != a.0 && self.le(a.0, b.0)))
            .collect();
        let first = latest.first()?;
        let rivals = latest.iter().skip(1).map(|p| p.1).collect();
        Some((first.1, first.2.clone(), rivals))
    }

    /// Passed checkpoint motions with their heads, ordered by (timestamp, OpId). Passing is decided by history
    /// alone (`finality.rs`): once passed, a checkpoint stays passed whatever arrives later.
    pub fn passed_checkpoints(&self) -> Vec<(OpId, Vec<OpId>)> {
        let mut v: Vec<(u32, OpId, Vec<OpId>)> = self
            .passed_checkpoint_motions()
            .iter()
            .filter_map(|id| Some((*self.by_id.get(id)?, *id, self.checkpoint_heads(id)?)))
            .collect();
        v.sort_by_key(|(i, _, _)| self.display_order(*i));
        v.into_iter().map(|(_, id, h)| (id, h)).collect()
    }

    /// Is the op in the history of a passed checkpoint?
    pub fn is_finalised(&self, id: &OpId) -> bool {
        self.by_id.get(id).is_some_and(|&i| self.finalised(i))
    }

    /// Is op `a` in the history of op `b` (inclusive)? `None` if either is unknown.
    pub fn is_ancestor(&self, a: &OpId, b: &OpId) -> Option<bool> {
        Some(self.le(*self.by_id.get(a)?, *self.by_id.get(b)?))
    }

    /// Is op `a` in the history of the given heads (inclusive)?
    pub fn in_history_of(&self, a: &OpId, heads: &[OpId]) -> bool {
        let vc = self.merged_vc(heads.iter().filter_map(|h| self.by_id.get(h).copied()));
        self.by_id.get(a).is_some_and(|&i| self.le_vc(i, &vc))
    }

    /// Every valid submission, ordered by (timestamp, OpId).
    pub fn submissions(&self) -> Vec<SubmissionInfo> {
        let subs = &self.index.submissions;
        let subject = |i: u32| -> Option<(SubmissionSubject, u16, DocId, &Attestation)> {
            match self.nodes[i as usize].op.kind() {
                OpKind::SubmitOutput {
                    team,
                    year,
                    doc,
                    attestation,
                } => Some((
                    SubmissionSubject::Output { team: team.clone() },
                    *year,
                    *doc,
                    attestation,
                )),
                OpKind::SubmitNationalReport {
                    country,
                    year,
                    doc,
                    attestation,
                } => Some((
                    SubmissionSubject::NationalReport { country: *country },
                    *year,
                    *doc,
                    attestation,
                )),
                _ => None,
            }
        };
        let mut out = Vec::new();
        let mut sorted = subs.clone();
        sorted.sort_by_key(|&i| self.display_order(i));
        for &i in &sorted {
            let Some((subj, year, doc, att)) = subject(i) else {
                continue;
            };
            let same: Vec<u32> = sorted
                .iter()
                .copied()
                .filter(|&j| {
                    j != i && subject(j).is_some_and(|(s, y, _, _)| s == subj && y == year)
                })
                .collect();
            let op = &self.nodes[i as usize].op;
            out.push(SubmissionInfo {
                op: op.id(),
                year,
                doc,
                heads: att.heads.iter().map(|h| h.to_string()).collect(),
                content_hash: att.content_hash.to_string(),
                author: op.author(),
                timestamp_ms: op.body().timestamp_ms,
                superseded: same.iter().any(|&j| self.le(i, j)),
                contested: same.iter().any(|&j| !self.le(i, j) && !self.le(j, i)),
                subject: subj,
            });
        }
        out
    }

    /// The team's current coordination modalities (the latest SetModalities; concurrent ones: lower OpId).
    pub fn modalities(&self, team: &TeamCode) -> Option<String> {
        let all = self.index.modalities.get(team)?;
        let latest: Vec<u32> = all
            .iter()
            .copied()
            .filter(|&a| !all.iter().any(|&b| b != a && self.le(a, b)))
            .collect();
        let best = latest
            .into_iter()
            .min_by_key(|&i| self.nodes[i as usize].op.id())?;
        match self.nodes[best as usize].op.kind() {
            OpKind::SetModalities { text, .. } => Some(text.clone()),
            _ => None,
        }
    }

    /// Organisations that bound this libp2p peer id and are members now: who the peer may read for.
    pub fn bound_orgs(&self, peer_id: &[u8]) -> Vec<OrgId> {
        let vc = self.top_vc();
        let at = At { vc: &vc, op: None };
        let mut v: Vec<OrgId> = self
            .index
            .bindings
            .iter()
            .filter_map(|&i| {
                let op = &self.nodes[i as usize].op;
                match op.kind() {
                    OpKind::BindNode { peer_id: p }
                        if p == peer_id && self.is_member_at(&op.author(), &at) =>
                    {
                        Some(op.author())
                    }
                    _ => None,
                }
            })
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// Ops that are in the DAG but have no effect, with the reason.
    pub fn invalid_ops(&self) -> Vec<(OpId, Invalid)> {
        self.nodes
            .iter()
            .filter_map(|n| n.validity.err().map(|e| (n.op.id(), e)))
            .collect()
    }

    /// Equivocations found: (author, seq, the conflicting op ids).
    pub fn equivocations(&self) -> Vec<(OrgId, u64, Vec<OpId>)> {
        self.statics
            .equivocations
            .iter()
            .map(|((org, seq), ids)| (self.org_ids[*org as usize], *seq as u64, ids.clone()))
            .collect()
    }

    /// Members, coordinators and the Chair: the part of the state the digest covers besides op validity.
    pub fn summary(&self) -> StateSummary {
        let vc = self.top_vc();
        let at = At { vc: &vc, op: None };
        let mut members: Vec<OrgId> = self
            .inceptions
            .keys()
            .filter(|o| self.is_member_at(o, &at))
            .copied()
            .collect();
        members.sort();
        StateSummary {
            members,
            coordinators: self
                .fed
                .teams
                .keys()
                .filter_map(|t| self.coordinator_holder(t, &at).map(|h| (t.clone(), h)))
                .collect(),
            chair: self.chair_at_point(&at),
            finalised_checkpoints: self
                .passed_checkpoints()
                .into_iter()
                .map(|(id, _)| id)
                .collect(),
        }
    }
}

/// The derived roles, for the state digest and for display.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StateSummary {
    pub members: Vec<OrgId>,
    pub coordinators: Vec<(TeamCode, SlotHolder)>,
    pub chair: ChairBench,
    pub finalised_checkpoints: Vec<OpId>,
}
