//! The payload encoding of the op kinds: the canonical CBOR map each kind is written as, and its strict decoder
//! (with the small field readers the inception record and the op body share).

use super::{
    Attestation, ChairRole, Country, DocKind, Genesis, MeetingKind, MotionKind, OpError, OpKind,
    Policy, Procedure, RevocableRole, SignedInception, SignedOp, Team, TeamCode,
};
use crate::cbor::{DecodeError, Decoder, Encoder, MapDecoder};
use crate::ids::{DocId, Hash32, OpId, OrgId};
use crate::limits::*;

pub(super) fn dec_name<'a>(
    d: &mut Decoder<'a>,
    what: &'static str,
) -> Result<&'a str, DecodeError> {
    let s = d.text(what, MAX_NAME_BYTES)?;
    if s.trim().is_empty() {
        return Err(DecodeError::Invalid("a name must not be empty"));
    }
    Ok(s)
}

pub(super) fn dec_team(d: &mut Decoder<'_>) -> Result<TeamCode, DecodeError> {
    TeamCode::new(d.text("team code", MAX_TEAM_CODE_BYTES)?).map_err(DecodeError::Invalid)
}

pub(super) fn dec_country(d: &mut Decoder<'_>) -> Result<Country, DecodeError> {
    Country::new(d.text("country", 2)?).map_err(DecodeError::Invalid)
}

pub(super) fn dec_id32(d: &mut Decoder<'_>, what: &'static str) -> Result<[u8; 32], DecodeError> {
    d.fixed::<32>(what)
}

pub(super) fn dec_ids(
    d: &mut Decoder<'_>,
    what: &'static str,
    max: usize,
) -> Result<Vec<[u8; 32]>, DecodeError> {
    d.array_of(what, max, |d| d.fixed::<32>(what))
}

/// Ids in a list must be strictly ascending (sorted, no duplicates) so that a list has exactly one encoding.
pub(super) fn check_ascending(ids: &[[u8; 32]], what: &'static str) -> Result<(), DecodeError> {
    if ids.windows(2).all(|w| w[0] < w[1]) {
        Ok(())
    } else {
        let _ = what;
        Err(DecodeError::Invalid(
            "id lists must be sorted ascending without duplicates",
        ))
    }
}

pub(super) fn enc_ids<T: AsRef<[u8; 32]>>(e: &mut Encoder, ids: &[T]) {
    e.array(ids.len());
    for id in ids {
        e.bytes(id.as_ref());
    }
}

impl OpKind {
    pub(super) fn encode_payload(&self, e: &mut Encoder) {
        match self {
            OpKind::Genesis(g) => {
                e.map(4 + g.nominating_authority.is_some() as usize);
                e.key(0).text(&g.name);
                e.key(1).array(g.secretariat.len());
                for s in &g.secretariat {
                    e.bytes(s.bytes());
                }
                if let Some(a) = &g.nominating_authority {
                    e.key(2).bytes(&a.0);
                }
                e.key(3).array(g.teams.len());
                for t in &g.teams {
                    e.map(2).key(0).text(t.code.as_str()).key(1).text(&t.name);
                }
                e.key(4).map(1).key(0).u64(g.policy.record_approvals as u64);
            }
            OpKind::OrgInception(rec) => {
                e.map(1).key(0).bytes(rec.bytes());
            }
            OpKind::Admit { org } => {
                e.map(1).key(0).bytes(&org.0);
            }
            OpKind::BindNode { peer_id } => {
                e.map(1).key(0).bytes(peer_id);
            }
            OpKind::JoinTeam { team } | OpKind::LeaveTeam { team } => {
                e.map(1).key(0).text(team.as_str());
            }
            OpKind::Convene {
                meeting,
                year,
                title,
            } => {
                let team = match meeting {
                    MeetingKind::Team(t) => Some(t),
                    _ => None,
                };
                e.map(3 + team.is_some() as usize);
                e.key(0).u64(match meeting {
                    MeetingKind::Team(_) => 0,
                    MeetingKind::Recommendation => 1,
                    MeetingKind::Coordinators => 2,
                });
                if let Some(t) = team {
                    e.key(1).text(t.as_str());
                }
                e.key(2).u64(*year as u64);
                e.key(3).text(title);
            }
            OpKind::Attend { meeting } => {
                e.map(1).key(0).bytes(&meeting.0);
            }
            OpKind::Motion { meeting, motion } => {
                e.map(3).key(0).bytes(&meeting.0);
                match motion {
                    MotionKind::Recommend { team, org } => {
                        e.key(1)
                            .u64(0)
                            .key(2)
                            .map(2)
                            .key(0)
                            .text(team.as_str())
                            .key(1)
                            .bytes(&org.0);
                    }
                    MotionKind::Elect { role, org } => {
                        e.key(1)
                            .u64(1)
                            .key(2)
                            .map(2)
                            .key(0)
                            .u64(*role as u64)
                            .key(1)
                            .bytes(&org.0);
                    }
                    MotionKind::AdoptProcedure(p) => {
                        e.key(1).u64(2).key(2).map(5);
                        e.key(0).u64(p.year as u64);
                        e.key(1).array(p.teams.len());
                        for t in &p.teams {
                            e.text(t.as_str());
                        }
                        e.key(2).u64(p.deadline_ms);
                        e.key(3).array(p.required_sections.len());
                        for s in &p.required_sections {
                            e.text(s);
                        }
                        e.key(4).bool(p.national_reports);
                    }
                    MotionKind::Checkpoint { heads } => {
                        e.key(1).u64(3).key(2).map(1).key(0);
                        enc_ids(e, heads);
                    }
                    MotionKind::AdoptReport {
                        year,
                        manifest_hash,
                    } => {
                        e.key(1)
                            .u64(4)
                            .key(2)
                            .map(2)
                            .key(0)
                            .u64(*year as u64)
                            .key(1)
                            .bytes(&manifest_hash.0);
                    }
                }
            }
            OpKind::Ballot { motion, yes } => {
                e.map(2).key(0).bytes(&motion.0).key(1).bool(*yes);
            }
            OpKind::Nominate {
                team,
                org,
                recommendation,
            } => {
                e.map(3)
                    .key(0)
                    .text(team.as_str())
                    .key(1)
                    .bytes(&org.0)
                    .key(2)
                    .bytes(&recommendation.0);
            }
            OpKind::RevokeRole { role, org } => {
                match role {
                    RevocableRole::Member => e.map(2).key(0).u64(0),
                    RevocableRole::Coordinator(t) => e.map(3).key(0).u64(1).key(1).text(t.as_str()),
                };
                e.key(2).bytes(&org.0);
            }
            OpKind::SetModalities { team, text } => {
                e.map(2).key(0).text(team.as_str()).key(1).text(text);
            }
            OpKind::CreateDoc { kind } => match kind {
                DocKind::OutputDraft { team, year } => {
                    e.map(3)
                        .key(0)
                        .u64(0)
                        .key(1)
                        .text(team.as_str())
                        .key(3)
                        .u64(*year as u64);
                }
                DocKind::NationalReport { country, year } => {
                    e.map(3)
                        .key(0)
                        .u64(1)
                        .key(2)
                        .text(country.as_str())
                        .key(3)
                        .u64(*year as u64);
                }
                DocKind::TeamCharter { team } => {
                    e.map(2).key(0).u64(2).key(1).text(team.as_str());
                }
            },
            OpKind::ApproveRecord { meeting, record } => {
                e.map(3).key(0).bytes(&meeting.0);
                enc_attestation(e, 1, record);
            }
            OpKind::SubmitOutput {
                team,
                year,
                doc,
                attestation,
            } => enc_submission(e, team.as_str(), *year, doc, attestation),
            OpKind::SubmitNationalReport {
                country,
                year,
                doc,
                attestation,
            } => enc_submission(e, country.as_str(), *year, doc, attestation),
            OpKind::Evidence { first, second } => {
                e.map(2)
                    .key(0)
                    .bytes(first.bytes())
                    .key(1)
                    .bytes(second.bytes());
            }
        }
    }

    /// `nested` is true inside an Evidence payload, where another Evidence (or a genesis) is refused *before* it is
    /// decoded, so nesting can never recurse.
    pub(super) fn decode_payload(
        tag: u64,
        d: &mut Decoder<'_>,
        nested: bool,
    ) -> Result<Self, OpError> {
        if nested && (tag == 1 || tag == 18) {
            return Err(OpError::Structure(
                "evidence cannot nest evidence or a genesis",
            ));
        }
        let mut m = d.map(MAX_MAP_ENTRIES)?;
        let kind = match tag {
            1 => {
                m.required(d, 0)?;
                let name = dec_name(d, "federation name")?.to_string();
                m.required(d, 1)?;
                let secretariat = d.array_of("secretariat", MAX_SECRETARIAT, |d| {
                    d.bytes("inception", MAX_INCEPTION_BYTES)
                })?;
                let secretariat = secretariat
                    .into_iter()
                    .map(SignedInception::from_bytes)
                    .collect::<Result<Vec<_>, _>>()?;
                let nominating_authority = if m.optional(d, 2)? {
                    Some(OrgId(dec_id32(d, "nominating authority")?))
                } else {
                    None
                };
                m.required(d, 3)?;
                let teams = d.array_of("teams", MAX_TEAMS, |d| {
                    let mut tm = d.map(2)?;
                    tm.required(d, 0)?;
                    let code = dec_team(d)?;
                    tm.required(d, 1)?;
                    let name = dec_name(d, "team name")?.to_string();
                    tm.end()?;
                    Ok(Team { code, name })
                })?;
                m.required(d, 4)?;
                let mut pm = d.map(1)?;
                pm.required(d, 0)?;
                let record_approvals = d.u64()?;
                pm.end()?;
                let record_approvals = u8::try_from(record_approvals)
                    .ok()
                    .filter(|v| *v >= 1)
                    .ok_or(OpError::Structure("record_approvals is 1 to 255"))?;
                if secretariat.is_empty() {
                    return Err(OpError::Structure(
                        "a genesis names at least one secretariat organisation",
                    ));
                }
                let mut ids: Vec<_> = secretariat.iter().map(|s| s.id()).collect();
                ids.sort();
                ids.dedup();
                if ids.len() != secretariat.len() {
                    return Err(OpError::Structure(
                        "a secretariat organisation is listed twice",
                    ));
                }
                let mut codes: Vec<_> = teams.iter().map(|t| &t.code).collect();
                codes.sort();
                codes.dedup();
                if codes.len() != teams.len() || teams.is_empty() {
                    return Err(OpError::Structure("team codes must be present and unique"));
                }
                OpKind::Genesis(Box::new(Genesis {
                    name,
                    secretariat,
                    nominating_authority,
                    teams,
                    policy: Policy { record_approvals },
                }))
            }
            2 => {
                m.required(d, 0)?;
                let rec = SignedInception::from_bytes(d.bytes("inception", MAX_INCEPTION_BYTES)?)?;
                OpKind::OrgInception(rec)
            }
            3 => {
                m.required(d, 0)?;
                OpKind::Admit {
                    org: OrgId(dec_id32(d, "org")?),
                }
            }
            4 => {
                m.required(d, 0)?;
                let peer_id = d.bytes("peer id", MAX_PEER_ID_BYTES)?;
                if peer_id.is_empty() {
                    return Err(OpError::Structure("empty peer id"));
                }
                OpKind::BindNode {
                    peer_id: peer_id.to_vec(),
                }
            }
            5 | 6 => {
                m.required(d, 0)?;
                let team = dec_team(d)?;
                if tag == 5 {
                    OpKind::JoinTeam { team }
                } else {
                    OpKind::LeaveTeam { team }
                }
            }
            7 => {
                m.required(d, 0)?;
                let k = d.u64()?;
                let meeting = match k {
                    0 => {
                        m.required(d, 1)?;
                        MeetingKind::Team(dec_team(d)?)
                    }
                    1 => MeetingKind::Recommendation,
                    2 => MeetingKind::Coordinators,
                    value => return Err(unknown("meeting kind", value)),
                };
                m.required(d, 2)?;
                let year = d.u16("year")?;
                m.required(d, 3)?;
                let title = dec_name(d, "meeting title")?.to_string();
                OpKind::Convene {
                    meeting,
                    year,
                    title,
                }
            }
            8 => {
                m.required(d, 0)?;
                OpKind::Attend {
                    meeting: OpId(dec_id32(d, "meeting")?),
                }
            }
            9 => {
                m.required(d, 0)?;
                let meeting = OpId(dec_id32(d, "meeting")?);
                m.required(d, 1)?;
                let k = d.u64()?;
                m.required(d, 2)?;
                let mut mm = d.map(MAX_MAP_ENTRIES)?;
                let motion = match k {
                    0 => {
                        mm.required(d, 0)?;
                        let team = dec_team(d)?;
                        mm.required(d, 1)?;
                        MotionKind::Recommend {
                            team,
                            org: OrgId(dec_id32(d, "org")?),
                        }
                    }
                    1 => {
                        mm.required(d, 0)?;
                        let role = match d.u64()? {
                            0 => ChairRole::Chair,
                            1 => ChairRole::CoChair,
                            value => return Err(unknown("chair role", value)),
                        };
                        mm.required(d, 1)?;
                        MotionKind::Elect {
                            role,
                            org: OrgId(dec_id32(d, "org")?),
                        }
                    }
                    2 => {
                        mm.required(d, 0)?;
                        let year = d.u16("year")?;
                        mm.required(d, 1)?;
                        let teams = d.array_of("teams", MAX_LIST_ITEMS, dec_team)?;
                        mm.required(d, 2)?;
                        let deadline_ms = d.u64()?;
                        mm.required(d, 3)?;
                        let required_sections = d.array_of("sections", MAX_LIST_ITEMS, |d| {
                            Ok(dec_name(d, "section")?.to_string())
                        })?;
                        mm.required(d, 4)?;
                        let national_reports = d.bool()?;
                        let mut sorted = teams.clone();
                        sorted.sort();
                        sorted.dedup();
                        if sorted != teams {
                            return Err(OpError::Structure(
                                "procedure teams must be sorted and unique",
                            ));
                        }
                        MotionKind::AdoptProcedure(Procedure {
                            year,
                            teams,
                            deadline_ms,
                            required_sections,
                            national_reports,
                        })
                    }
                    3 => {
                        mm.required(d, 0)?;
                        let heads = dec_ids(d, "checkpoint heads", MAX_HEADS)?;
                        check_ascending(&heads, "checkpoint heads")?;
                        if heads.is_empty() {
                            return Err(OpError::Structure("a checkpoint names at least one head"));
                        }
                        MotionKind::Checkpoint {
                            heads: heads.into_iter().map(OpId).collect(),
                        }
                    }
                    4 => {
                        mm.required(d, 0)?;
                        let year = d.u16("year")?;
                        mm.required(d, 1)?;
                        MotionKind::AdoptReport {
                            year,
                            manifest_hash: Hash32(dec_id32(d, "manifest hash")?),
                        }
                    }
                    value => return Err(unknown("motion kind", value)),
                };
                mm.end()?;
                OpKind::Motion { meeting, motion }
            }
            10 => {
                m.required(d, 0)?;
                let motion = OpId(dec_id32(d, "motion")?);
                m.required(d, 1)?;
                OpKind::Ballot {
                    motion,
                    yes: d.bool()?,
                }
            }
            11 => {
                m.required(d, 0)?;
                let team = dec_team(d)?;
                m.required(d, 1)?;
                let org = OrgId(dec_id32(d, "org")?);
                m.required(d, 2)?;
                OpKind::Nominate {
                    team,
                    org,
                    recommendation: OpId(dec_id32(d, "recommendation")?),
                }
            }
            12 => {
                m.required(d, 0)?;
                let role = match d.u64()? {
                    0 => RevocableRole::Member,
                    1 => {
                        m.required(d, 1)?;
                        RevocableRole::Coordinator(dec_team(d)?)
                    }
                    value => return Err(unknown("role", value)),
                };
                m.required(d, 2)?;
                OpKind::RevokeRole {
                    role,
                    org: OrgId(dec_id32(d, "org")?),
                }
            }
            13 => {
                m.required(d, 0)?;
                let team = dec_team(d)?;
                m.required(d, 1)?;
                OpKind::SetModalities {
                    team,
                    text: d.text("modalities", MAX_TEXT_BYTES)?.to_string(),
                }
            }
            14 => {
                m.required(d, 0)?;
                let k = d.u64()?;
                let kind = match k {
                    0 => {
                        m.required(d, 1)?;
                        let team = dec_team(d)?;
                        m.required(d, 3)?;
                        DocKind::OutputDraft {
                            team,
                            year: d.u16("year")?,
                        }
                    }
                    1 => {
                        m.required(d, 2)?;
                        let country = dec_country(d)?;
                        m.required(d, 3)?;
                        DocKind::NationalReport {
                            country,
                            year: d.u16("year")?,
                        }
                    }
                    2 => {
                        m.required(d, 1)?;
                        DocKind::TeamCharter { team: dec_team(d)? }
                    }
                    value => return Err(unknown("document kind", value)),
                };
                OpKind::CreateDoc { kind }
            }
            15 => {
                m.required(d, 0)?;
                let meeting = OpId(dec_id32(d, "meeting")?);
                let record = dec_attestation(d, &mut m, 1)?;
                OpKind::ApproveRecord { meeting, record }
            }
            16 | 17 => {
                m.required(d, 0)?;
                let (team, country) = if tag == 16 {
                    (Some(dec_team(d)?), None)
                } else {
                    (None, Some(dec_country(d)?))
                };
                m.required(d, 1)?;
                let year = d.u16("year")?;
                m.required(d, 2)?;
                let doc = DocId(dec_id32(d, "document")?);
                let attestation = dec_attestation(d, &mut m, 3)?;
                match (team, country) {
                    (Some(team), _) => OpKind::SubmitOutput {
                        team,
                        year,
                        doc,
                        attestation,
                    },
                    (_, Some(country)) => OpKind::SubmitNationalReport {
                        country,
                        year,
                        doc,
                        attestation,
                    },
                    _ => unreachable!("one of the two is set above"),
                }
            }
            18 => {
                m.required(d, 0)?;
                let first = SignedOp::decode_inner(d.bytes("evidence op", MAX_OP_BYTES)?, true)?;
                m.required(d, 1)?;
                let second = SignedOp::decode_inner(d.bytes("evidence op", MAX_OP_BYTES)?, true)?;
                if matches!(first.kind(), OpKind::Evidence { .. } | OpKind::Genesis(_))
                    || matches!(second.kind(), OpKind::Evidence { .. } | OpKind::Genesis(_))
                {
                    return Err(OpError::Structure(
                        "evidence cannot nest evidence or a genesis",
                    ));
                }
                OpKind::Evidence {
                    first: Box::new(first),
                    second: Box::new(second),
                }
            }
            value => return Err(unknown("op kind", value)),
        };
        m.end()?;
        Ok(kind)
    }
}

/// A submission (output or national report): the team or country, the year, the document and its attestation.
fn enc_submission(e: &mut Encoder, place: &str, year: u16, doc: &DocId, attestation: &Attestation) {
    e.map(5)
        .key(0)
        .text(place)
        .key(1)
        .u64(year as u64)
        .key(2)
        .bytes(&doc.0);
    enc_attestation(e, 3, attestation);
}

/// An attestation under `first_key` (the heads) and the key after it (the content hash), as [`dec_attestation`]
/// reads it.
fn enc_attestation(e: &mut Encoder, first_key: u64, attestation: &Attestation) {
    e.key(first_key);
    enc_ids(e, &attestation.heads);
    e.key(first_key + 1).bytes(&attestation.content_hash.0);
}

/// A kind number (of a meeting, a motion, a role, …) that this version does not know.
fn unknown(what: &'static str, value: u64) -> OpError {
    DecodeError::UnknownKind { what, value }.into()
}

fn dec_attestation(
    d: &mut Decoder<'_>,
    m: &mut MapDecoder,
    first_key: u64,
) -> Result<Attestation, OpError> {
    m.required(d, first_key)?;
    let heads = dec_ids(d, "document heads", MAX_HEADS)?;
    check_ascending(&heads, "document heads")?;
    m.required(d, first_key + 1)?;
    let content_hash = Hash32(dec_id32(d, "content hash")?);
    Ok(Attestation {
        heads: heads.into_iter().map(Hash32).collect(),
        content_hash,
    })
}
