//! Documents and who may write them: the documents a replica knows, what each is for, and the authorisation
//! step of the change-envelope pipeline (may this author write this document at the governance heads it cites?).

use super::eval::{At, DocScope};
use super::Governance;
use crate::ids::{DocId, OpId, OrgId};
use crate::op::{DocKind, MeetingKind};

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
                    if self.team_member_at(&team, author, &at) || convener == *author {
                        Ok(())
                    } else {
                        Err(WriteDenied::NotTeamMember)
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
                DocKind::OutputDraft { team, .. } => {
                    if self.team_member_at(&team, author, &at) {
                        Ok(())
                    } else {
                        Err(WriteDenied::NotTeamMember)
                    }
                }
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
