//! The rules: when is an op valid, and what does a valid op add to the indexes.
//!
//! Every query here is made *at a point*: an op (its history, plus the whole-set concurrency facts) or a set of
//! heads (for change envelopes). A query never looks at an op outside the point's history except through the
//! whole-set facts (revocations, lost nominations, passed checkpoints, equivocations), which is what makes the
//! result independent of insertion order.
//!
//! Finality: no whole-set fact invalidates an op inside a passed checkpoint that does not contain the fact
//! ([`Governance::protected`]); a contest between concurrent nominations is ranked by the ballots in each
//! nomination's own history (voting on a recommendation closes, for the contest, at the nomination that acts on
//! it); and the rules also run in a history-only mode (`finality.rs`), where no fact is read at all, to decide
//! which checkpoints passed.

use super::{Governance, Invalid, MotionEntry, Node, Validity};
use crate::ids::{DocId, OpId, OrgId};
use crate::limits::MAX_BINDINGS_PER_ORG;
use crate::op::{
    DocKind, MeetingKind, MotionKind, OpKind, RevocableRole, SignedOp, StakeholderType, TeamCode,
};
use std::collections::BTreeSet;

/// A point at which rules are evaluated: the history `vc`, and the op itself if the point is an op.
pub(crate) struct At<'a> {
    pub(crate) vc: &'a [u32],
    pub(crate) op: Option<u32>,
}

/// The kind of a document together with what created it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DocScope {
    MeetingRecord {
        meeting: OpId,
        kind: MeetingKind,
        convener: OrgId,
    },
    Created {
        kind: DocKind,
        creator: OrgId,
    },
}

/// Static validity of a revocation: the right authority, a sensible target.
pub(crate) fn revocation_valid(
    g: &Governance,
    node: &Node,
    role: &RevocableRole,
    org: &OrgId,
) -> Validity {
    let author = node.op.author();
    match role {
        RevocableRole::Member => {
            if !g.fed.secretariat.contains(&author) {
                return Err(Invalid::NotSecretariat);
            }
            if g.fed.secretariat.contains(org) {
                return Err(Invalid::NotApplicable);
            }
        }
        RevocableRole::Coordinator(team) => {
            if !g.is_nominating_authority(&author) {
                return Err(Invalid::NotNominatingAuthority);
            }
            if !g.fed.teams.contains_key(team) {
                return Err(Invalid::UnknownTeam);
            }
        }
    }
    Ok(())
}

/// If two ops are a real equivocation (same federation, author, key and seq; different ops; the author's key),
/// the (org index, seq) they share.
///
/// The equivocator's inception must be in the history `vc` of the evidence op, so the answer depends on the evidence
/// op and its history only, not on what else has arrived.
pub(crate) fn evidence_pair(
    g: &Governance,
    a: &SignedOp,
    b: &SignedOp,
    vc: &[u32],
) -> Option<(u32, u32)> {
    if !g.org_known_at(&a.author(), &At { vc, op: None }) {
        return None;
    }
    if a.id() == b.id()
        || a.author() != b.author()
        || a.seq() != b.seq()
        || a.seq() > u32::MAX as u64
    {
        return None;
    }
    if a.body().federation != Some(g.fed.id) || b.body().federation != Some(g.fed.id) {
        return None;
    }
    let key = g.inceptions.get(&a.author())?.body().key;
    if a.body().key != key || b.body().key != key {
        return None;
    }
    if a.verify_signature().is_err() || b.verify_signature().is_err() {
        return None;
    }
    let org = *g.org_index.get(&a.author())?;
    Some((org, a.seq() as u32))
}

impl Governance {
    pub(crate) fn is_nominating_authority(&self, org: &OrgId) -> bool {
        match &self.fed.nominating_authority {
            Some(a) => a == org,
            None => self.fed.secretariat.contains(org),
        }
    }

    fn in_hist(&self, a: u32, at: &At<'_>) -> bool {
        self.le_vc(a, at.vc)
    }

    /// Is op `x` finalised by a passed checkpoint that does not contain `r`? Then `r` cannot invalidate it: the
    /// one rule through which every whole-set fact (revocation, rival nomination, equivocating twin) is filtered.
    pub(crate) fn protected(&self, x: u32, r: u32) -> bool {
        self.facts
            .checkpoints
            .iter()
            .any(|(c, _)| self.le_vc(x, c) && !self.le_vc(r, c))
    }

    pub(crate) fn finalised(&self, x: u32) -> bool {
        self.facts.checkpoints.iter().any(|(c, _)| self.le_vc(x, c))
    }

    /// Does revocation `r` take away, at `at`, the capability granted by `grant`?
    fn revocation_hits(&self, r: u32, grant: u32, at: &At<'_>) -> bool {
        if self.le(r, grant) {
            // Revoked before the grant, and the grant saw it: a legitimate re-grant.
            return false;
        }
        if self.in_hist(r, at) {
            // Seen at this point, after or concurrently with the grant: revoke wins.
            return true;
        }
        if self.history_only {
            // Judged by its history alone: a revocation not in it does not exist.
            return false;
        }
        match at.op {
            // The revocation came after this op: the op stands.
            Some(x) if self.le(x, r) => false,
            // Concurrent, but this op was finalised by a checkpoint the revocation is not part of.
            Some(x) if self.protected(x, r) => false,
            // Concurrent with the op, or a revocation not in the cited heads of an envelope.
            _ => true,
        }
    }

    /// Is a capability granted by one of `grants` held at `at`, given every valid revocation in `revokes`?
    fn held(&self, grants: &[u32], revokes: &[u32], at: &At<'_>) -> bool {
        grants.iter().any(|&g| {
            self.in_hist(g, at)
                && !self.facts.lost_nominations.contains(&g)
                && revokes.iter().all(|&r| !self.revocation_hits(r, g, at))
        })
    }

    /// The valid admissions and revocations of an organisation's membership.
    fn membership_events(&self, org: &OrgId) -> (&[u32], &[u32]) {
        let grants = self.index.admits.get(org).map(Vec::as_slice).unwrap_or(&[]);
        let revokes = self
            .statics
            .member_revokes
            .get(org)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        (grants, revokes)
    }

    pub(crate) fn is_member_at(&self, org: &OrgId, at: &At<'_>) -> bool {
        if self.fed.secretariat.contains(org) {
            return true;
        }
        let (grants, revokes) = self.membership_events(org);
        self.held(grants, revokes, at)
    }

    /// Is the organisation's inception in the history (secretariat organisations always are)?
    pub(crate) fn org_known_at(&self, org: &OrgId, at: &At<'_>) -> bool {
        if self.fed.secretariat.contains(org) {
            return true;
        }
        self.inception_op
            .get(org)
            .is_some_and(|&i| self.in_hist(i, at))
    }

    /// The coordinator of `team` in the history at `at` (revocations seen there applied), with its nomination.
    pub(crate) fn coordinator_at(&self, team: &TeamCode, at: &At<'_>) -> Option<(OrgId, u32)> {
        let noms = self.index.nominations.get(team)?;
        noms.iter()
            .copied()
            .filter(|&n| self.in_hist(n, at) && !self.facts.lost_nominations.contains(&n))
            .filter_map(|n| {
                let org = nominee(&self.nodes[n as usize].op)?;
                // A coordinator whose accreditation was withdrawn holds no role (and no longer fills the slot).
                if !self.member_in_history(&org, at) {
                    return None;
                }
                let ended = self
                    .statics
                    .coordinator_revokes
                    .get(&(team.clone(), org))
                    .is_some_and(|rs| rs.iter().any(|&r| self.in_hist(r, at) && !self.le(r, n)));
                (!ended).then_some((org, n))
            })
            // Normally at most one remains (rivals lose through the facts); rivals both in the history are decided
            // here by the contest order, which depends on their own histories only (the same in every pass).
            .min_by_key(|&(_, n)| self.nomination_rank(n))
    }

    /// Contest order of nominations: more yes-ballots on the cited recommendation *in the nomination's own
    /// history* first, then the lower OpId. Ballots cast after the nomination acted on the recommendation (not
    /// in its history) never change the order: the recommendation's voting is closed for the contest.
    pub(crate) fn nomination_rank(&self, n: u32) -> (std::cmp::Reverse<usize>, OpId) {
        let node = &self.nodes[n as usize];
        let yes = match node.op.kind() {
            OpKind::Nominate { recommendation, .. } => self
                .index
                .motions
                .get(recommendation)
                .map_or(0, |m| self.yes_voters(m, Some(&node.vc)).len()),
            _ => 0,
        };
        (std::cmp::Reverse(yes), node.op.id())
    }

    /// The distinct organisations with a valid yes-ballot on a motion (in the history `vc`, if given). An
    /// equivocating voter whose twins both stand counts once.
    pub(crate) fn yes_voters(&self, m: &MotionEntry, vc: Option<&[u32]>) -> BTreeSet<OrgId> {
        m.ballots
            .iter()
            .filter(|(_, y, i)| *y && vc.is_none_or(|vc| self.le_vc(*i, vc)))
            .map(|(o, _, _)| *o)
            .collect()
    }

    /// Is `org` the coordinator of `team` at `at`, with no revocation concurrent with it, and still a member?
    pub(crate) fn is_coordinator_at(&self, team: &TeamCode, org: &OrgId, at: &At<'_>) -> bool {
        if !self.is_member_at(org, at) {
            return false;
        }
        match self.coordinator_at(team, at) {
            Some((holder, n)) if &holder == org => {
                let revokes = self
                    .statics
                    .coordinator_revokes
                    .get(&(team.clone(), *org))
                    .map(Vec::as_slice)
                    .unwrap_or(&[]);
                self.held(&[n], revokes, at)
            }
            _ => false,
        }
    }

    pub(crate) fn team_member_at(&self, team: &TeamCode, org: &OrgId, at: &At<'_>) -> bool {
        // Join and leave ops of one org form a chain: the one with the highest seq in the history decides.
        self.index
            .team_events
            .get(&(team.clone(), *org))
            .and_then(|evs| {
                evs.iter()
                    .filter(|(i, _)| self.in_hist(*i, at))
                    .max_by_key(|(i, _)| self.nodes[*i as usize].seq)
                    .map(|(_, join)| *join)
            })
            .unwrap_or(false)
    }

    pub(crate) fn attended_at(&self, meeting: &OpId, org: &OrgId, at: &At<'_>) -> bool {
        self.index
            .attendance
            .get(meeting)
            .is_some_and(|a| a.iter().any(|(o, i)| o == org && self.in_hist(*i, at)))
    }

    /// A meeting convened in the history at `at`.
    pub(crate) fn meeting_at(&self, meeting: &OpId, at: &At<'_>) -> Option<(MeetingKind, OrgId)> {
        let &i = self.index.meetings.get(meeting)?;
        if !self.in_hist(i, at) {
            return None;
        }
        let op = &self.nodes[i as usize].op;
        match op.kind() {
            OpKind::Convene { meeting, .. } => Some((meeting.clone(), op.author())),
            _ => None,
        }
    }

    pub(crate) fn doc_scope(&self, doc: &OpId) -> Option<(u32, DocScope)> {
        if let Some(&i) = self.index.meetings.get(doc) {
            let op = &self.nodes[i as usize].op;
            if let OpKind::Convene { meeting, .. } = op.kind() {
                return Some((
                    i,
                    DocScope::MeetingRecord {
                        meeting: *doc,
                        kind: meeting.clone(),
                        convener: op.author(),
                    },
                ));
            }
        }
        let &i = self.index.docs.get(doc)?;
        let op = &self.nodes[i as usize].op;
        match op.kind() {
            OpKind::CreateDoc { kind } => Some((
                i,
                DocScope::Created {
                    kind: kind.clone(),
                    creator: op.author(),
                },
            )),
            _ => None,
        }
    }

    /// Yes-ballots on a motion counted at `at`, and whether that is a strict majority of its electorate.
    pub(crate) fn motion_passed_at(&self, motion: &OpId, at: &At<'_>) -> bool {
        let Some(m) = self.index.motions.get(motion) else {
            return false;
        };
        if !self.in_hist(m.idx, at) {
            return false;
        }
        self.yes_voters(m, Some(at.vc)).len() * 2 > m.electorate.len()
    }

    pub(crate) fn motion_passed(&self, m: &MotionEntry) -> bool {
        self.yes_voters(m, None).len() * 2 > m.electorate.len()
    }

    fn team_known(&self, team: &TeamCode) -> Validity {
        if self.fed.teams.contains_key(team) {
            Ok(())
        } else {
            Err(Invalid::UnknownTeam)
        }
    }

    /// What a document an op cites is for; it must have been created in the point's history.
    fn cited_doc(&self, doc: &DocId, at: &At<'_>) -> Result<DocScope, Invalid> {
        let (di, scope) = self
            .doc_scope(&OpId(doc.0))
            .ok_or(Invalid::UnknownReference)?;
        self.require(self.in_hist(di, at), Invalid::UnknownReference)?;
        Ok(scope)
    }

    /// Valid `BindNode` ops of `org` in the history of node `idx`, `idx` excluded (the author's ops form one
    /// chain, so this is every binding it made before; issue 14, defect 6).
    fn bindings_before(&self, org: &OrgId, idx: u32) -> usize {
        self.index
            .bindings
            .iter()
            .filter(|&&b| b != idx && self.le(b, idx) && self.nodes[b as usize].op.author() == *org)
            .count()
    }

    fn require(&self, cond: bool, why: Invalid) -> Validity {
        if cond {
            Ok(())
        } else {
            Err(why)
        }
    }

    /// Valid documents `org` created in the history at `at` (the document budget counts them).
    pub(crate) fn docs_created_at(&self, org: &OrgId, at: &At<'_>) -> usize {
        self.index.docs_of.get(org).map_or(0, |v| {
            v.iter()
                .filter(|&&i| Some(i) != at.op && self.in_hist(i, at))
                .count()
        })
    }

    /// Valid documents `org` created, over every op this replica holds (for `status`).
    pub fn docs_created_by(&self, org: &OrgId) -> usize {
        self.index.docs_of.get(org).map_or(0, Vec::len)
    }

    /// Membership check that tells a concurrent revocation apart from never having been a member.
    fn require_member(&self, org: &OrgId, at: &At<'_>) -> Validity {
        if self.is_member_at(org, at) {
            return Ok(());
        }
        Err(if self.was_member_in_history(org, at) {
            Invalid::RevokedConcurrently
        } else {
            Invalid::NotMember
        })
    }

    /// Membership counting only revocations in the history (no concurrency rule): for role holders, where the
    /// concurrency rule applies to the role's own use, not to who holds it.
    pub(crate) fn member_in_history(&self, org: &OrgId, at: &At<'_>) -> bool {
        self.fed.secretariat.contains(org) || self.was_member_in_history(org, at)
    }

    /// Membership counting only revocations in the history (to name the reason of a failure).
    fn was_member_in_history(&self, org: &OrgId, at: &At<'_>) -> bool {
        let (grants, revokes) = self.membership_events(org);
        grants.iter().any(|&g| {
            self.in_hist(g, at)
                && revokes
                    .iter()
                    .all(|&r| !self.in_hist(r, at) || self.le(r, g))
        })
    }

    fn require_coordinator(&self, team: &TeamCode, org: &OrgId, at: &At<'_>) -> Validity {
        self.team_known(team)?;
        if self.is_coordinator_at(team, org, at) {
            return Ok(());
        }
        let by_history = self
            .coordinator_at(team, at)
            .is_some_and(|(h, _)| &h == org);
        Err(if by_history {
            Invalid::RevokedConcurrently
        } else {
            Invalid::NotCoordinator
        })
    }

    /// Is this op one of an equivocating pair, and not protected by a checkpoint that holds it but not its twin?
    pub(crate) fn excluded_as_equivocation(&self, idx: u32) -> bool {
        let n = &self.nodes[idx as usize];
        let Some(twins) = self.statics.equivocations.get(&(n.org, n.seq)) else {
            return false;
        };
        let me = n.op.id();
        // Finalised, and no twin is in the same checkpoint: a later twin cannot undo it. The clock cannot tell
        // twins apart, so ancestry is checked exactly here.
        let protected = self.facts.checkpoints.iter().any(|(c, heads)| {
            self.le_vc(idx, c)
                && self.reaches(heads, idx)
                && twins.iter().all(|t| {
                    *t == me || self.by_id.get(t).is_none_or(|&ti| !self.reaches(heads, ti))
                })
        });
        !protected
    }

    /// The validity of node `idx`, given the indexes of the ops before it and the current facts.
    pub(crate) fn evaluate(&self, idx: u32) -> Validity {
        let node = &self.nodes[idx as usize];
        if self.excluded_as_equivocation(idx) {
            return Err(Invalid::Equivocation);
        }
        let o = node.op.author();
        let at = At {
            vc: &node.vc,
            op: Some(idx),
        };
        // The history strictly before this op, for "did this exist before" checks on the author's own chain.
        match node.op.kind() {
            OpKind::Genesis(_) => Ok(()),
            OpKind::OrgInception(_) => Ok(()),
            OpKind::Admit { org } => {
                self.require(self.fed.secretariat.contains(&o), Invalid::NotSecretariat)?;
                self.require(!self.fed.secretariat.contains(org), Invalid::NotApplicable)?;
                self.require(self.org_known_at(org, &at), Invalid::UnknownOrg)
            }
            OpKind::BindNode { .. } => self.require(
                self.bindings_before(&o, idx) < MAX_BINDINGS_PER_ORG,
                Invalid::TooManyBindings,
            ),
            OpKind::JoinTeam { team } => {
                self.team_known(team)?;
                self.require_member(&o, &at)
            }
            OpKind::LeaveTeam { team } => self.team_known(team),
            OpKind::Convene { meeting, .. } => match meeting {
                MeetingKind::Team(team) => self.require_coordinator(team, &o, &at),
                MeetingKind::Recommendation | MeetingKind::Coordinators => {
                    self.require(self.fed.secretariat.contains(&o), Invalid::NotSecretariat)
                }
            },
            OpKind::Attend { meeting } => {
                self.meeting_at(meeting, &at)
                    .ok_or(Invalid::UnknownReference)?;
                self.require_member(&o, &at)?;
                let dup = self.index.attendance.get(meeting).is_some_and(|a| {
                    a.iter()
                        .any(|(org, i)| org == &o && *i != idx && self.in_hist(*i, &at))
                });
                self.require(!dup, Invalid::Duplicate)
            }
            OpKind::Motion { meeting, motion } => {
                let (kind, _) = self
                    .meeting_at(meeting, &at)
                    .ok_or(Invalid::UnknownReference)?;
                let secretariat = self.fed.secretariat.contains(&o);
                match (&kind, motion) {
                    (MeetingKind::Recommendation, MotionKind::Recommend { team, org }) => {
                        self.team_known(team)?;
                        self.require(
                            secretariat || self.attended_at(meeting, &o, &at),
                            Invalid::NotAttendee,
                        )?;
                        self.require(self.org_known_at(org, &at), Invalid::UnknownOrg)?;
                        self.require(self.is_member_at(org, &at), Invalid::NotMember)?;
                    }
                    (MeetingKind::Coordinators, MotionKind::Recommend { .. }) => {
                        return Err(Invalid::WrongMeetingKind)
                    }
                    (MeetingKind::Coordinators, other) => {
                        let electorate = self.coordinators_meeting_electorate(meeting);
                        self.require(
                            secretariat || electorate.contains(&o),
                            Invalid::NotInElectorate,
                        )?;
                        match other {
                            MotionKind::Elect { org, .. } => {
                                self.require(self.org_known_at(org, &at), Invalid::UnknownOrg)?;
                                self.require(self.is_member_at(org, &at), Invalid::NotMember)?;
                            }
                            MotionKind::AdoptProcedure(p) => {
                                for t in &p.teams {
                                    self.team_known(t)?;
                                }
                            }
                            MotionKind::Checkpoint { heads } => {
                                for h in heads {
                                    let ok = self
                                        .by_id
                                        .get(h)
                                        .is_some_and(|&i| i != idx && self.in_hist(i, &at));
                                    self.require(ok, Invalid::UnknownReference)?;
                                }
                            }
                            MotionKind::AdoptReport { .. } | MotionKind::Recommend { .. } => {}
                        }
                    }
                    _ => return Err(Invalid::WrongMeetingKind),
                }
                self.require_member(&o, &at)
            }
            OpKind::Ballot { motion, .. } => {
                let m = self
                    .index
                    .motions
                    .get(motion)
                    .ok_or(Invalid::UnknownReference)?;
                self.require(self.in_hist(m.idx, &at), Invalid::UnknownReference)?;
                self.require(m.electorate.contains(&o), Invalid::NotInElectorate)?;
                let voted = m
                    .ballots
                    .iter()
                    .any(|(v, _, i)| v == &o && *i != idx && self.in_hist(*i, &at));
                self.require(!voted, Invalid::DoubleVote)
            }
            OpKind::Nominate {
                team,
                org,
                recommendation,
            } => {
                self.team_known(team)?;
                self.require(
                    self.is_nominating_authority(&o),
                    Invalid::NotNominatingAuthority,
                )?;
                let m = self
                    .index
                    .motions
                    .get(recommendation)
                    .ok_or(Invalid::MotionNotPassed)?;
                let cites_right_motion = matches!(
                    self.nodes[m.idx as usize].op.kind(),
                    OpKind::Motion { motion: MotionKind::Recommend { team: t, org: r }, .. } if t == team && r == org
                );
                self.require(cites_right_motion, Invalid::MotionNotPassed)?;
                self.require(
                    self.motion_passed_at(recommendation, &at),
                    Invalid::MotionNotPassed,
                )?;
                self.require(self.is_member_at(org, &at), Invalid::NotMember)?;
                self.require(
                    self.coordinator_at(team, &at).is_none(),
                    Invalid::SlotOccupied,
                )
            }
            OpKind::RevokeRole { role, org } => revocation_valid(self, node, role, org),
            OpKind::SetModalities { team, .. } => self.require_coordinator(team, &o, &at),
            OpKind::CreateDoc { kind } => {
                self.require_member(&o, &at)?;
                self.require(
                    self.docs_created_at(&o, &at) < crate::limits::MAX_DOCS_PER_ORG,
                    Invalid::DocumentBudget,
                )?;
                match kind {
                    DocKind::OutputDraft { team, .. } => {
                        self.team_known(team)?;
                        self.require(self.team_member_at(team, &o, &at), Invalid::NotTeamMember)
                    }
                    DocKind::NationalReport { country, .. } => {
                        self.require_government_of(&o, country)
                    }
                    DocKind::TeamCharter { team } => self.require_coordinator(team, &o, &at),
                }
            }
            OpKind::ApproveRecord { meeting, .. } => {
                let (_, convener) = self
                    .meeting_at(meeting, &at)
                    .ok_or(Invalid::UnknownReference)?;
                self.require(
                    convener == o || self.attended_at(meeting, &o, &at),
                    Invalid::NotAttendee,
                )?;
                self.require_member(&o, &at)
            }
            OpKind::SubmitOutput {
                team, year, doc, ..
            } => {
                self.require_coordinator(team, &o, &at)?;
                let scope = self.cited_doc(doc, &at)?;
                let right = matches!(
                    scope,
                    DocScope::Created { kind: DocKind::OutputDraft { team: ref t, year: y }, .. }
                        if t == team && y == *year
                );
                self.require(right, Invalid::WrongDocument)
            }
            OpKind::SubmitNationalReport {
                country, year, doc, ..
            } => {
                self.require_member(&o, &at)?;
                self.require_government_of(&o, country)?;
                let scope = self.cited_doc(doc, &at)?;
                let right = matches!(
                    scope,
                    DocScope::Created { kind: DocKind::NationalReport { country: c, year: y }, creator }
                        if c == *country && y == *year && creator == o
                );
                self.require(right, Invalid::WrongDocument)
            }
            OpKind::Evidence { first, second } => self.require(
                evidence_pair(self, first, second, &node.vc).is_some(),
                Invalid::BadEvidence,
            ),
        }
    }

    fn require_government_of(&self, org: &OrgId, country: &crate::op::Country) -> Validity {
        let inc = self.inceptions.get(org).ok_or(Invalid::UnknownOrg)?;
        let b = inc.body();
        self.require(
            b.stakeholder == StakeholderType::Government && b.country.as_ref() == Some(country),
            Invalid::NotGovernment,
        )
    }

    /// The electorate of a coordinators' meeting: the coordinators in the history of its convening.
    pub(crate) fn coordinators_meeting_electorate(&self, meeting: &OpId) -> BTreeSet<OrgId> {
        let Some(&ci) = self.index.meetings.get(meeting) else {
            return BTreeSet::new();
        };
        let at = At {
            vc: &self.nodes[ci as usize].vc,
            op: Some(ci),
        };
        self.fed
            .teams
            .keys()
            .filter_map(|t| self.coordinator_at(t, &at).map(|(o, _)| o))
            .collect()
    }

    /// Adds a valid op to the indexes.
    pub(crate) fn index_op(&mut self, idx: u32) {
        // The motion electorate needs `&self` queries; compute it before borrowing the index mutably.
        let electorate = match self.nodes[idx as usize].op.kind() {
            OpKind::Motion {
                meeting,
                motion: MotionKind::Recommend { .. },
            } => Some(
                self.index
                    .attendance
                    .get(meeting)
                    .map(|a| {
                        a.iter()
                            .filter(|(_, i)| self.le(*i, idx))
                            .map(|(o, _)| *o)
                            .collect()
                    })
                    .unwrap_or_default(),
            ),
            OpKind::Motion { meeting, .. } => Some(self.coordinators_meeting_electorate(meeting)),
            _ => None,
        };
        let op = &self.nodes[idx as usize].op;
        let o = op.author();
        let ix = &mut self.index;
        match op.kind() {
            OpKind::Admit { org } => ix.admits.entry(*org).or_default().push(idx),
            OpKind::BindNode { .. } => ix.bindings.push(idx),
            OpKind::JoinTeam { team } => ix
                .team_events
                .entry((team.clone(), o))
                .or_default()
                .push((idx, true)),
            OpKind::LeaveTeam { team } => ix
                .team_events
                .entry((team.clone(), o))
                .or_default()
                .push((idx, false)),
            OpKind::Convene { .. } => {
                ix.meetings.insert(op.id(), idx);
            }
            OpKind::Attend { meeting } => ix.attendance.entry(*meeting).or_default().push((o, idx)),
            OpKind::Motion { meeting, .. } => {
                let electorate = electorate.unwrap_or_default();
                ix.motions.insert(
                    op.id(),
                    MotionEntry {
                        idx,
                        electorate,
                        ballots: Vec::new(),
                    },
                );
                ix.motions_of_meeting
                    .entry(*meeting)
                    .or_default()
                    .push(op.id());
            }
            OpKind::Ballot { motion, yes } => {
                if let Some(m) = ix.motions.get_mut(motion) {
                    m.ballots.push((o, *yes, idx));
                }
            }
            OpKind::Nominate { team, .. } => {
                ix.nominations.entry(team.clone()).or_default().push(idx)
            }
            OpKind::SetModalities { team, .. } => {
                ix.modalities.entry(team.clone()).or_default().push(idx)
            }
            OpKind::CreateDoc { .. } => {
                ix.docs.insert(op.id(), idx);
                ix.docs_of.entry(o).or_default().push(idx);
            }
            OpKind::ApproveRecord { meeting, .. } => {
                ix.approvals.entry(*meeting).or_default().push(idx)
            }
            OpKind::SubmitOutput { .. } | OpKind::SubmitNationalReport { .. } => {
                ix.submissions.push(idx)
            }
            OpKind::Genesis(_)
            | OpKind::OrgInception(_)
            | OpKind::RevokeRole { .. }
            | OpKind::Evidence { .. } => {}
        }
    }

    /// Could this valid op change the whole-set facts?
    pub(crate) fn facts_affected_by(&self, idx: u32) -> bool {
        matches!(
            self.nodes[idx as usize].op.kind(),
            OpKind::Nominate { .. } | OpKind::Ballot { .. }
        )
    }

    /// Derives the whole-set facts from the current indexes (the checkpoints are the history-only judgement's).
    pub(crate) fn derive_facts(&self) -> super::Facts {
        let mut lost = BTreeSet::new();
        for noms in self.index.nominations.values() {
            for &a in noms {
                for &b in noms {
                    // Rivals: concurrent nominations for one slot. A nomination finalised without its rival wins;
                    // otherwise the lower-ranked one loses.
                    if a != b
                        && !self.le(a, b)
                        && !self.le(b, a)
                        && !self.protected(a, b)
                        && (self.protected(b, a)
                            || self.nomination_rank(b) < self.nomination_rank(a))
                    {
                        lost.insert(a);
                    }
                }
            }
        }
        super::Facts {
            lost_nominations: lost,
            checkpoints: self.hist.checkpoints.clone(),
        }
    }
}

/// The organisation a Nominate op names.
pub(crate) fn nominee(op: &SignedOp) -> Option<OrgId> {
    match op.kind() {
        OpKind::Nominate { org, .. } => Some(*org),
        _ => None,
    }
}
