//! Documents and who may write them: the documents a replica knows, what each is for, the authorisation
//! step of the change-envelope pipeline (may this author write this document at the governance heads it cites?),
//! and the document states finality makes permanent (the heads named by finalised attestations).

use super::eval::{At, DocScope};
use super::Governance;
use crate::ids::{DocId, Hash32, OpId, OrgId};
use crate::op::{DocKind, MeetingKind, OpKind, TeamCode};

/// Why an author may not write a document at the cited heads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WriteDenied {
    #[error("cited governance heads are not known yet: {0:?}")]
    UnknownHeads(Vec<OpId>),
    #[error("no governance heads cited")]
    NoHeads,
    #[error("the document does not exist in the cited history")]
    UnknownDocument,
    #[error("the author is not an admitted member at the cited heads")]
    NotMember,
    #[error("the author's capability was revoked in a revocation the envelope does not cite")]
    RevokedConcurrently,
    #[error("the author is not a member of the team")]
    NotTeamMember,
    #[error("the author left the team in a LeaveTeam the envelope does not cite")]
    LeftTeam,
    #[error("the author did not attend the meeting")]
    NotAttendee,
    #[error("only the organisation that created the document writes it")]
    NotCreator,
    #[error("only the team's coordinator writes the charter")]
    NotCoordinator,
    #[error("the envelope's key is not its author's inception key")]
    KeyMismatch,
    #[error("the envelope belongs to another federation")]
    WrongFederation,
}

impl Governance {
    /// Every document with a valid creating op (meeting records and created documents), sorted.
    pub fn documents(&self) -> Vec<DocId> {
        let mut v: Vec<DocId> = self
            .index
            .meetings
            .keys()
            .chain(self.index.docs.keys())
            .map(|id| DocId(id.0))
            .collect();
        v.sort();
        v
    }

    /// The kind and scope of a document created in this federation.
    pub fn document(&self, doc: &DocId) -> Option<DocumentInfo> {
        let (i, scope) = self.doc_scope(&OpId(doc.0))?;
        let valid = self.nodes[i as usize].validity.is_ok();
        Some(match scope {
            DocScope::MeetingRecord {
                meeting,
                kind,
                convener,
            } => DocumentInfo {
                id: *doc,
                scope: DocumentScope::MeetingRecord { meeting, kind },
                creator: convener,
                valid,
            },
            DocScope::Created { kind, creator } => DocumentInfo {
                id: *doc,
                scope: DocumentScope::Created(kind),
                creator,
                valid,
            },
        })
    }

    /// May `author` write `doc` with a change envelope that cites `heads`? The pure authorisation step of the
    /// acceptance pipeline. Unknown heads are reported so the caller can park the envelope and fetch them.
    pub fn may_write(
        &self,
        doc: &DocId,
        author: &OrgId,
        heads: &[OpId],
    ) -> Result<(), WriteDenied> {
        if heads.is_empty() {
            return Err(WriteDenied::NoHeads);
        }
        let unknown: Vec<OpId> = heads
            .iter()
            .filter(|h| !self.by_id.contains_key(h))
            .copied()
            .collect();
        if !unknown.is_empty() {
            return Err(WriteDenied::UnknownHeads(unknown));
        }
        let vc = self.merged_vc(heads.iter().map(|h| self.by_id[h]));
        let at = At { vc: &vc, op: None };
        let (di, scope) = self
            .doc_scope(&OpId(doc.0))
            .ok_or(WriteDenied::UnknownDocument)?;
        if !self.le_vc(di, &vc) {
            return Err(WriteDenied::UnknownDocument);
        }
        if !self.is_member_at(author, &at) {
            let seen = At { vc: &vc, op: None };
            return Err(if self.member_in_history(author, &seen) {
                WriteDenied::RevokedConcurrently
            } else {
                WriteDenied::NotMember
            });
        }
        match scope {
            DocScope::MeetingRecord {
                meeting,
                kind,
                convener,
            } => match kind {
                MeetingKind::Team(team) => {
                    if convener == *author {
                        Ok(())
                    } else {
                        self.team_writer_at(&team, author, &at)
                    }
                }
                MeetingKind::Recommendation | MeetingKind::Coordinators => {
                    if self.fed.secretariat.contains(author)
                        || self.attended_at(&meeting, author, &at)
                    {
                        Ok(())
                    } else {
                        Err(WriteDenied::NotAttendee)
                    }
                }
            },
            DocScope::Created { kind, creator } => match kind {
                DocKind::OutputDraft { team, .. } => self.team_writer_at(&team, author, &at),
                DocKind::NationalReport { .. } => {
                    if creator == *author {
                        Ok(())
                    } else {
                        Err(WriteDenied::NotCreator)
                    }
                }
                DocKind::TeamCharter { team } => {
                    if self.is_coordinator_at(&team, author, &at) {
                        Ok(())
                    } else {
                        Err(WriteDenied::NotCoordinator)
                    }
                }
            },
        }
    }

    /// Team membership for an envelope citing `at`: a member by the Join and Leave ops in the cited history
    /// (`NotTeamMember`), and no known valid LeaveTeam of the author for the team with a higher seq than the Join
    /// that decides it there (`LeftTeam`). A leave the envelope does not cite counts, as a Member revocation it
    /// does not cite counts (§9.6 of docs/protocol.md): an organisation that left cannot go on writing by citing
    /// heads from before it left. One author's Join and Leave ops are ordered by seq (the chain rule), so "after
    /// the decisive Join" needs no clock.
    fn team_writer_at(&self, team: &TeamCode, org: &OrgId, at: &At<'_>) -> Result<(), WriteDenied> {
        if !self.team_member_at(team, org, at) {
            return Err(WriteDenied::NotTeamMember);
        }
        let events = self
            .index
            .team_events
            .get(&(team.clone(), *org))
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let seq = |i: u32| self.nodes[i as usize].seq;
        let decisive = events
            .iter()
            .filter(|(i, _)| self.le_vc(*i, at.vc))
            .map(|&(i, _)| seq(i))
            .max()
            .unwrap_or(0);
        let left_later = events.iter().any(|&(i, join)| {
            !join && seq(i) > decisive && self.nodes[i as usize].validity.is_ok()
        });
        if left_later {
            Err(WriteDenied::LeftTeam)
        } else {
            Ok(())
        }
    }

    /// The document heads named by every valid, finalised attestation of `doc` (deduplicated, sorted): each
    /// SubmitOutput and SubmitNationalReport of it (superseded or not) and each ApproveRecord of its meeting, that
    /// is valid now and in the history of a passed checkpoint ([`Governance::is_finalised`]).
    ///
    /// The content these heads name is final: the node keeps every change in their causal history valid whatever
    /// later governance says about its author (a revocation, a leave), so the attested state can always be
    /// rebuilt and assembled (issue 11, defect 5; docs/protocol.md §9.6). A function of the valid ops and the
    /// passed checkpoints only, so the same on every replica with the same ops, in every delivery order.
    pub fn finalised_attested_heads(&self, doc: &DocId) -> Vec<Hash32> {
        let final_valid = |i: u32| self.nodes[i as usize].validity.is_ok() && self.finalised(i);
        let mut heads: Vec<Hash32> = Vec::new();
        for &i in &self.index.submissions {
            if let OpKind::SubmitOutput {
                doc: d,
                attestation,
                ..
            }
            | OpKind::SubmitNationalReport {
                doc: d,
                attestation,
                ..
            } = self.nodes[i as usize].op.kind()
            {
                if d == doc && final_valid(i) {
                    heads.extend(attestation.heads.iter().copied());
                }
            }
        }
        for &i in self.index.approvals.get(&OpId(doc.0)).into_iter().flatten() {
            if let OpKind::ApproveRecord { record, .. } = self.nodes[i as usize].op.kind() {
                if final_valid(i) {
                    heads.extend(record.heads.iter().copied());
                }
            }
        }
        heads.sort();
        heads.dedup();
        heads
    }

    /// The authorisation step of the acceptance pipeline, on an envelope whose header and signature are verified
    /// (stage 1, before Automerge parses anything): the signing key is the author's inception key, and the author
    /// may write the document at the governance heads the envelope cites.
    pub fn authorize_header(
        &self,
        env: &crate::envelope::VerifiedHeader,
    ) -> Result<(), WriteDenied> {
        if env.header().federation != self.fed.id {
            return Err(WriteDenied::WrongFederation);
        }
        match self.inceptions.get(&env.header().author) {
            Some(rec) if rec.body().key == env.header().key => {}
            _ => return Err(WriteDenied::KeyMismatch),
        }
        self.may_write(
            &env.header().doc,
            &env.header().author,
            &env.header().gov_heads,
        )
    }

    /// [`Governance::authorize_header`] for a fully verified envelope.
    pub fn authorize_envelope(
        &self,
        env: &crate::envelope::SignedEnvelope,
    ) -> Result<(), WriteDenied> {
        self.authorize_header(env.verified_header())
    }
}

/// What a document is for.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "scope")]
pub enum DocumentScope {
    MeetingRecord { meeting: OpId, kind: MeetingKind },
    Created(DocKind),
}

/// A document's identity and who created it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DocumentInfo {
    pub id: DocId,
    pub scope: DocumentScope,
    pub creator: OrgId,
    /// The creating op is valid now.
    pub valid: bool,
}
