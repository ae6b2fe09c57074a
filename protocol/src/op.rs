//! Signed governance ops and organisation inception records: their types, their canonical encoding and their
//! structural checks (everything that can be said about one op without looking at any other).
//!
//! Wire form of an op (see `docs/protocol.md` for the full table):
//!
//! ```text
//! SignedOp = map { 0: body (byte string: the canonical OpBody), 1: signature (64 bytes) }
//! OpBody   = map { 0: version = 1, 1: federation id (absent only in Genesis), 2: author OrgId, 3: public key,
//!                  4: seq, 5: parents [OpId] (ascending, unique), 6: timestamp_ms, 7: kind, 8: payload map }
//! ```
//!
//! The signature covers `"wsis/v1/governance-op" || 0x00 || body` and the [`OpId`] is the SHA-256 of the whole
//! `SignedOp` bytes. The bytes are kept as received: nothing is ever re-encoded to be verified or hashed.

use crate::cbor::{DecodeError, Decoder, Encoder, MapDecoder};
use crate::crypto::{CryptoError, Domain, PublicKey, SecretKey, SIGNATURE_LEN};
use crate::ids::{DocId, FederationId, OpId, OrgId};
use crate::limits::*;
use std::fmt;
use std::sync::Arc;

/// The only wire version this crate speaks.
pub const VERSION: u64 = 1;

/// Why bytes are not a well-formed, correctly signed op or inception record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpError {
    #[error("{what} is {len} bytes, the limit is {max}")]
    TooLarge {
        what: &'static str,
        len: usize,
        max: usize,
    },
    #[error("malformed encoding: {0}")]
    Decode(#[from] DecodeError),
    #[error("bad public key: {0}")]
    Key(CryptoError),
    #[error("signature does not verify")]
    BadSignature,
    #[error("structurally invalid: {0}")]
    Structure(&'static str),
}

/// A stakeholder type (the six used in WSIS practice).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum StakeholderType {
    Government,
    PrivateSector,
    CivilSociety,
    InternationalOrganisation,
    Academia,
    TechnicalCommunity,
}

impl StakeholderType {
    pub const ALL: [StakeholderType; 6] = [
        StakeholderType::Government,
        StakeholderType::PrivateSector,
        StakeholderType::CivilSociety,
        StakeholderType::InternationalOrganisation,
        StakeholderType::Academia,
        StakeholderType::TechnicalCommunity,
    ];

    /// The code used on the command line and in JSON.
    pub fn code(self) -> &'static str {
        match self {
            StakeholderType::Government => "government",
            StakeholderType::PrivateSector => "private-sector",
            StakeholderType::CivilSociety => "civil-society",
            StakeholderType::InternationalOrganisation => "international-organisation",
            StakeholderType::Academia => "academia",
            StakeholderType::TechnicalCommunity => "technical-community",
        }
    }

    fn wire(self) -> u64 {
        self as u64
    }

    fn from_wire(v: u64) -> Result<Self, DecodeError> {
        Self::ALL
            .get(v as usize)
            .copied()
            .filter(|_| v < 6)
            .ok_or(DecodeError::UnknownKind {
                what: "stakeholder type",
                value: v,
            })
    }
}

impl std::str::FromStr for StakeholderType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|t| t.code() == s)
            .ok_or_else(|| {
                format!(
                    "unknown stakeholder type `{s}` (expected one of: {})",
                    Self::ALL.map(|t| t.code()).join(", ")
                )
            })
    }
}

impl fmt::Display for StakeholderType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A team code such as `C1` or `C7.EHEALTH`: 1–16 characters of `A-Z`, `0-9`, `.`, `-`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TeamCode(String);

impl TeamCode {
    pub fn new(code: &str) -> Result<Self, &'static str> {
        if code.is_empty() || code.len() > MAX_TEAM_CODE_BYTES {
            return Err("a team code has 1 to 16 characters");
        }
        if !code
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        {
            return Err("a team code has only A-Z, 0-9, '.' and '-'");
        }
        Ok(Self(code.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TeamCode {
    type Error = &'static str;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        TeamCode::new(&s)
    }
}

impl From<TeamCode> for String {
    fn from(t: TeamCode) -> String {
        t.0
    }
}

impl fmt::Display for TeamCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for TeamCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An ISO 3166-1 alpha-2 country code: two upper-case ASCII letters.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct Country([u8; 2]);

impl Country {
    pub fn new(code: &str) -> Result<Self, &'static str> {
        match code.as_bytes() {
            [a, b] if a.is_ascii_uppercase() && b.is_ascii_uppercase() => Ok(Self([*a, *b])),
            _ => Err("a country is an ISO 3166-1 alpha-2 code: two upper-case letters"),
        }
    }

    pub fn as_str(&self) -> &str {
        // Two ASCII upper-case letters, checked at construction.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl TryFrom<String> for Country {
    type Error = &'static str;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Country::new(&s)
    }
}

impl From<Country> for String {
    fn from(c: Country) -> String {
        c.as_str().to_string()
    }
}

impl fmt::Display for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Small decoding helpers shared by the payload decoders.

fn dec_name<'a>(d: &mut Decoder<'a>, what: &'static str) -> Result<&'a str, DecodeError> {
    let s = d.text(what, MAX_NAME_BYTES)?;
    if s.trim().is_empty() {
        return Err(DecodeError::Invalid("a name must not be empty"));
    }
    Ok(s)
}

fn dec_team(d: &mut Decoder<'_>) -> Result<TeamCode, DecodeError> {
    TeamCode::new(d.text("team code", MAX_TEAM_CODE_BYTES)?).map_err(DecodeError::Invalid)
}

fn dec_country(d: &mut Decoder<'_>) -> Result<Country, DecodeError> {
    Country::new(d.text("country", 2)?).map_err(DecodeError::Invalid)
}

fn dec_id32(d: &mut Decoder<'_>, what: &'static str) -> Result<[u8; 32], DecodeError> {
    d.fixed::<32>(what)
}

fn dec_ids(
    d: &mut Decoder<'_>,
    what: &'static str,
    max: usize,
) -> Result<Vec<[u8; 32]>, DecodeError> {
    d.array_of(what, max, |d| d.fixed::<32>(what))
}

/// Ids in a list must be strictly ascending (sorted, no duplicates) so that a list has exactly one encoding.
fn check_ascending(ids: &[[u8; 32]], what: &'static str) -> Result<(), DecodeError> {
    if ids.windows(2).all(|w| w[0] < w[1]) {
        Ok(())
    } else {
        let _ = what;
        Err(DecodeError::Invalid(
            "id lists must be sorted ascending without duplicates",
        ))
    }
}

fn enc_ids<T: AsRef<[u8; 32]>>(e: &mut Encoder, ids: &[T]) {
    e.array(ids.len());
    for id in ids {
        e.bytes(id.as_ref());
    }
}

macro_rules! as_ref_32 {
    ($($t:ty),*) => {$(
        impl AsRef<[u8; 32]> for $t {
            fn as_ref(&self) -> &[u8; 32] { &self.0 }
        }
    )*};
}
as_ref_32!(OpId, OrgId, DocId, FederationId, Hash32);

/// A 32-byte hash that is not an id of ours (an Automerge change hash, a content hash, a manifest hash).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hash32(pub [u8; 32]);

impl fmt::Debug for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", &hex::encode(self.0)[..12])
    }
}

impl fmt::Display for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl serde::Serialize for Hash32 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Inception records.

/// What an organisation says about itself when it comes into existence. Self-signed; its hash is the [`OrgId`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inception {
    pub name: String,
    pub stakeholder: StakeholderType,
    /// Required for governments (it is the country they may report for); optional otherwise.
    pub country: Option<Country>,
    pub key: PublicKey,
    /// Informational; lets an organisation make a fresh identity with the same name and key material.
    pub created_ms: u64,
}

/// A signed inception record, kept as the exact bytes that were signed.
#[derive(Clone, PartialEq, Eq)]
pub struct SignedInception {
    bytes: Arc<[u8]>,
    id: OrgId,
    body: Inception,
}

impl fmt::Debug for SignedInception {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Inception({:?} {:?})", self.id, self.body.name)
    }
}

impl Inception {
    fn encode(&self) -> Vec<u8> {
        let mut e = Encoder::new();
        e.map(5 + self.country.is_some() as usize);
        e.key(0).u64(VERSION);
        e.key(1).text(&self.name);
        e.key(2).u64(self.stakeholder.wire());
        if let Some(c) = self.country {
            e.key(3).text(c.as_str());
        }
        e.key(4).bytes(self.key.as_bytes());
        e.key(5).u64(self.created_ms);
        e.into_bytes()
    }

    fn decode(bytes: &[u8]) -> Result<Self, OpError> {
        let mut d = Decoder::new(bytes);
        let mut m = d.map(MAX_MAP_ENTRIES)?;
        m.required(&mut d, 0)?;
        let v = d.u64()?;
        if v != VERSION {
            return Err(DecodeError::UnknownVersion(v).into());
        }
        m.required(&mut d, 1)?;
        let name = dec_name(&mut d, "organisation name")?.to_string();
        m.required(&mut d, 2)?;
        let stakeholder = StakeholderType::from_wire(d.u64()?)?;
        let country = if m.optional(&mut d, 3)? {
            Some(dec_country(&mut d)?)
        } else {
            None
        };
        m.required(&mut d, 4)?;
        let key = PublicKey::from_bytes(&d.fixed::<32>("public key")?).map_err(OpError::Key)?;
        m.required(&mut d, 5)?;
        let created_ms = d.u64()?;
        m.end()?;
        d.finish()?;
        if stakeholder == StakeholderType::Government && country.is_none() {
            return Err(OpError::Structure(
                "a government's inception names its country",
            ));
        }
        if created_ms > MAX_TIMESTAMP_MS {
            return Err(OpError::Structure("timestamp beyond year 2200"));
        }
        Ok(Self {
            name,
            stakeholder,
            country,
            key,
            created_ms,
        })
    }

    /// Signs the record with the organisation's key, which must be the key it names.
    pub fn sign(self, secret: &SecretKey) -> SignedInception {
        assert_eq!(
            secret.public(),
            self.key,
            "an inception is signed by the key it names"
        );
        let body = self.encode();
        let sig = secret.sign(Domain::OrgInception, &body);
        let mut e = Encoder::new();
        e.map(2).key(0).bytes(&body).key(1).bytes(&sig);
        let bytes: Arc<[u8]> = e.into_bytes().into();
        SignedInception {
            id: OrgId::of_bytes(&bytes),
            bytes,
            body: self,
        }
    }
}

impl SignedInception {
    /// Decodes and verifies a signed inception record.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, OpError> {
        if bytes.len() > MAX_INCEPTION_BYTES {
            return Err(OpError::TooLarge {
                what: "inception record",
                len: bytes.len(),
                max: MAX_INCEPTION_BYTES,
            });
        }
        let (body_bytes, sig) = decode_signed_wrapper(bytes, MAX_INCEPTION_BYTES)?;
        let body = Inception::decode(body_bytes)?;
        body.key
            .verify(Domain::OrgInception, body_bytes, &sig)
            .map_err(|_| OpError::BadSignature)?;
        Ok(Self {
            bytes: bytes.into(),
            id: OrgId::of_bytes(bytes),
            body,
        })
    }

    pub fn id(&self) -> OrgId {
        self.id
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn body(&self) -> &Inception {
        &self.body
    }
}

/// `map { 0: body bytes, 1: signature }` → (body, signature).
fn decode_signed_wrapper(
    bytes: &[u8],
    max_body: usize,
) -> Result<(&[u8], [u8; SIGNATURE_LEN]), OpError> {
    let mut d = Decoder::new(bytes);
    let mut m = d.map(2)?;
    m.required(&mut d, 0)?;
    let body = d.bytes("signed body", max_body)?;
    m.required(&mut d, 1)?;
    let sig = d.fixed::<SIGNATURE_LEN>("signature")?;
    m.end()?;
    d.finish()?;
    Ok((body, sig))
}

// ---------------------------------------------------------------------------------------------------------------
// Payloads.

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

    fn encode_payload(&self, e: &mut Encoder) {
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
                e.key(1);
                enc_ids(e, &record.heads);
                e.key(2).bytes(&record.content_hash.0);
            }
            OpKind::SubmitOutput {
                team,
                year,
                doc,
                attestation,
            } => {
                e.map(5)
                    .key(0)
                    .text(team.as_str())
                    .key(1)
                    .u64(*year as u64)
                    .key(2)
                    .bytes(&doc.0);
                e.key(3);
                enc_ids(e, &attestation.heads);
                e.key(4).bytes(&attestation.content_hash.0);
            }
            OpKind::SubmitNationalReport {
                country,
                year,
                doc,
                attestation,
            } => {
                e.map(5)
                    .key(0)
                    .text(country.as_str())
                    .key(1)
                    .u64(*year as u64)
                    .key(2)
                    .bytes(&doc.0);
                e.key(3);
                enc_ids(e, &attestation.heads);
                e.key(4).bytes(&attestation.content_hash.0);
            }
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
    fn decode_payload(tag: u64, d: &mut Decoder<'_>, nested: bool) -> Result<Self, OpError> {
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
                    value => {
                        return Err(DecodeError::UnknownKind {
                            what: "meeting kind",
                            value,
                        }
                        .into())
                    }
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
                            value => {
                                return Err(DecodeError::UnknownKind {
                                    what: "chair role",
                                    value,
                                }
                                .into())
                            }
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
                    value => {
                        return Err(DecodeError::UnknownKind {
                            what: "motion kind",
                            value,
                        }
                        .into())
                    }
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
                    value => {
                        return Err(DecodeError::UnknownKind {
                            what: "role",
                            value,
                        }
                        .into())
                    }
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
                    value => {
                        return Err(DecodeError::UnknownKind {
                            what: "document kind",
                            value,
                        }
                        .into())
                    }
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
                if matches!(
                    first.body.kind,
                    OpKind::Evidence { .. } | OpKind::Genesis(_)
                ) || matches!(
                    second.body.kind,
                    OpKind::Evidence { .. } | OpKind::Genesis(_)
                ) {
                    return Err(OpError::Structure(
                        "evidence cannot nest evidence or a genesis",
                    ));
                }
                OpKind::Evidence {
                    first: Box::new(first),
                    second: Box::new(second),
                }
            }
            value => {
                return Err(DecodeError::UnknownKind {
                    what: "op kind",
                    value,
                }
                .into())
            }
        };
        m.end()?;
        Ok(kind)
    }
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

// ---------------------------------------------------------------------------------------------------------------
// The op body and the signed op.

/// Everything an op says, before it is signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpBody {
    /// `None` only for the genesis op, whose own hash is the federation id.
    pub federation: Option<FederationId>,
    pub author: OrgId,
    pub key: PublicKey,
    /// Per-author sequence number, starting at 1; each op's predecessor by the same author is in its history.
    pub seq: u64,
    /// The heads the author had seen: sorted ascending, unique.
    pub parents: Vec<OpId>,
    /// The author's clock. Informational only: no rule reads it.
    pub timestamp_ms: u64,
    pub kind: OpKind,
}

impl OpBody {
    /// The canonical encoding of the body.
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Encoder::new();
        e.map(8 + self.federation.is_some() as usize);
        e.key(0).u64(VERSION);
        if let Some(f) = &self.federation {
            e.key(1).bytes(&f.0);
        }
        e.key(2).bytes(&self.author.0);
        e.key(3).bytes(self.key.as_bytes());
        e.key(4).u64(self.seq);
        e.key(5);
        enc_ids(&mut e, &self.parents);
        e.key(6).u64(self.timestamp_ms);
        e.key(7).u64(self.kind.tag());
        e.key(8);
        self.kind.encode_payload(&mut e);
        e.into_bytes()
    }

    fn decode(bytes: &[u8], nested: bool) -> Result<Self, OpError> {
        let mut d = Decoder::new(bytes);
        let mut m = d.map(MAX_MAP_ENTRIES)?;
        m.required(&mut d, 0)?;
        let v = d.u64()?;
        if v != VERSION {
            return Err(DecodeError::UnknownVersion(v).into());
        }
        let federation = if m.optional(&mut d, 1)? {
            Some(FederationId(dec_id32(&mut d, "federation")?))
        } else {
            None
        };
        m.required(&mut d, 2)?;
        let author = OrgId(dec_id32(&mut d, "author")?);
        m.required(&mut d, 3)?;
        let key = PublicKey::from_bytes(&d.fixed::<32>("public key")?).map_err(OpError::Key)?;
        m.required(&mut d, 4)?;
        let seq = d.u64()?;
        m.required(&mut d, 5)?;
        let parents = dec_ids(&mut d, "parents", MAX_PARENTS)?;
        check_ascending(&parents, "parents")?;
        m.required(&mut d, 6)?;
        let timestamp_ms = d.u64()?;
        m.required(&mut d, 7)?;
        let tag = d.u64()?;
        m.required(&mut d, 8)?;
        let kind = OpKind::decode_payload(tag, &mut d, nested)?;
        m.end()?;
        d.finish()?;
        let body = OpBody {
            federation,
            author,
            key,
            seq,
            parents: parents.into_iter().map(OpId).collect(),
            timestamp_ms,
            kind,
        };
        body.check_structure()?;
        Ok(body)
    }

    /// Rules about one op alone.
    fn check_structure(&self) -> Result<(), OpError> {
        if self.seq == 0 {
            return Err(OpError::Structure("sequence numbers start at 1"));
        }
        if self.timestamp_ms > MAX_TIMESTAMP_MS {
            return Err(OpError::Structure("timestamp beyond year 2200"));
        }
        match &self.kind {
            OpKind::Genesis(g) => {
                if self.federation.is_some() || !self.parents.is_empty() || self.seq != 1 {
                    return Err(OpError::Structure(
                        "a genesis has no federation, no parents and seq 1",
                    ));
                }
                let convener = g.secretariat.iter().find(|s| s.id() == self.author).ok_or(
                    OpError::Structure("the genesis author is one of the secretariat"),
                )?;
                if convener.body().key != self.key {
                    return Err(OpError::Structure(
                        "the genesis is signed with the convener's inception key",
                    ));
                }
            }
            other => {
                if self.federation.is_none() || self.parents.is_empty() {
                    return Err(OpError::Structure(
                        "every op but the genesis names its federation and parents",
                    ));
                }
                if let OpKind::OrgInception(rec) = other {
                    if rec.id() != self.author || rec.body().key != self.key || self.seq != 1 {
                        return Err(OpError::Structure(
                            "an inception op is seq 1 by the organisation it creates, signed with its key",
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// Signs the body. The secret key must be the body's key.
    pub fn sign(self, secret: &SecretKey) -> SignedOp {
        assert_eq!(
            secret.public(),
            self.key,
            "an op is signed with the key it names"
        );
        let body = self.encode();
        let sig = secret.sign(Domain::GovernanceOp, &body);
        let mut e = Encoder::new();
        e.map(2).key(0).bytes(&body).key(1).bytes(&sig);
        let bytes: Arc<[u8]> = e.into_bytes().into();
        let body_range = body_range(&bytes);
        SignedOp {
            id: OpId::of_bytes(&bytes),
            bytes,
            body_range,
            signature: sig,
            body: self,
        }
    }
}

/// Where the body byte string sits inside the signed bytes (after the map header, key 0 and the string head).
fn body_range(signed: &[u8]) -> (usize, usize) {
    let mut d = Decoder::new(signed);
    // Only called on bytes we just encoded or already decoded successfully.
    let ok = (|| -> Result<(usize, usize), DecodeError> {
        let mut m = d.map(2)?;
        m.required(&mut d, 0)?;
        let body = d.bytes("body", MAX_OP_BYTES)?;
        let end = d.position();
        Ok((end - body.len(), end))
    })();
    ok.unwrap_or((0, 0))
}

/// A governance op as received: the exact signed bytes, their id, and the decoded body.
///
/// Holding a `SignedOp` means the bytes decoded strictly and passed the structural checks; it does **not** mean
/// the signature was verified — call [`SignedOp::verify_signature`] (the replay does, for every op it accepts).
#[derive(Clone)]
pub struct SignedOp {
    bytes: Arc<[u8]>,
    id: OpId,
    body_range: (usize, usize),
    signature: [u8; SIGNATURE_LEN],
    body: OpBody,
}

impl PartialEq for SignedOp {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id && self.bytes == other.bytes
    }
}
impl Eq for SignedOp {}

impl fmt::Debug for SignedOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}({:?} by {:?} #{})",
            self.body.kind.name(),
            self.id,
            self.body.author,
            self.body.seq
        )
    }
}

impl SignedOp {
    /// Strictly decodes signed op bytes and checks the op's structure. Does not verify the signature.
    pub fn decode(bytes: &[u8]) -> Result<Self, OpError> {
        Self::decode_inner(bytes, false)
    }

    fn decode_inner(bytes: &[u8], nested: bool) -> Result<Self, OpError> {
        if bytes.len() > MAX_OP_BYTES {
            return Err(OpError::TooLarge {
                what: "op",
                len: bytes.len(),
                max: MAX_OP_BYTES,
            });
        }
        let (body_bytes, signature) = decode_signed_wrapper(bytes, MAX_OP_BYTES)?;
        let body = OpBody::decode(body_bytes, nested)?;
        let body_range = body_range(bytes);
        Ok(Self {
            bytes: bytes.into(),
            id: OpId::of_bytes(bytes),
            body_range,
            signature,
            body,
        })
    }

    /// Decodes and verifies the signature: the whole check that needs no other op.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, OpError> {
        let op = Self::decode(bytes)?;
        op.verify_signature()?;
        Ok(op)
    }

    /// Strict ed25519 verification of the signature over the exact body bytes received.
    pub fn verify_signature(&self) -> Result<(), OpError> {
        self.body
            .key
            .verify(Domain::GovernanceOp, self.body_bytes(), &self.signature)
            .map_err(|_| OpError::BadSignature)
    }

    pub fn id(&self) -> OpId {
        self.id
    }

    /// The exact signed bytes (what is stored, sent and hashed).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The body bytes the signature covers.
    pub fn body_bytes(&self) -> &[u8] {
        &self.bytes[self.body_range.0..self.body_range.1]
    }

    pub fn signature(&self) -> &[u8; SIGNATURE_LEN] {
        &self.signature
    }

    pub fn body(&self) -> &OpBody {
        &self.body
    }

    pub fn author(&self) -> OrgId {
        self.body.author
    }

    pub fn seq(&self) -> u64 {
        self.body.seq
    }

    pub fn parents(&self) -> &[OpId] {
        &self.body.parents
    }

    pub fn kind(&self) -> &OpKind {
        &self.body.kind
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inception(seed: u8, name: &str) -> (SecretKey, SignedInception) {
        let sk = SecretKey::from_seed(&[seed; 32]);
        let rec = Inception {
            name: name.into(),
            stakeholder: StakeholderType::InternationalOrganisation,
            country: None,
            key: sk.public(),
            created_ms: 0,
        }
        .sign(&sk);
        (sk, rec)
    }

    #[test]
    fn inception_round_trips_and_its_id_is_its_hash() {
        let (_, rec) = inception(1, "ITU");
        let again = SignedInception::from_bytes(rec.bytes()).unwrap();
        assert_eq!(again, rec);
        assert_eq!(rec.id(), OrgId::of_bytes(rec.bytes()));
    }

    #[test]
    fn government_inception_needs_a_country() {
        let sk = SecretKey::from_seed(&[3; 32]);
        let rec = Inception {
            name: "Kenya".into(),
            stakeholder: StakeholderType::Government,
            country: None,
            key: sk.public(),
            created_ms: 0,
        }
        .sign(&sk);
        assert_eq!(
            SignedInception::from_bytes(rec.bytes()),
            Err(OpError::Structure(
                "a government's inception names its country"
            ))
        );
    }

    #[test]
    fn every_op_kind_round_trips() {
        let (sk, rec) = inception(1, "ITU");
        let fed = FederationId([9; 32]);
        let a = OpId([1; 32]);
        let b = OpId([2; 32]);
        let team = TeamCode::new("C7.EHEALTH").unwrap();
        let att = Attestation {
            heads: vec![Hash32([1; 32]), Hash32([5; 32])],
            content_hash: Hash32([7; 32]),
        };
        let inner = OpBody {
            federation: Some(fed),
            author: rec.id(),
            key: sk.public(),
            seq: 4,
            parents: vec![a],
            timestamp_ms: 1,
            kind: OpKind::Admit {
                org: OrgId([3; 32]),
            },
        }
        .sign(&sk);
        let kinds = vec![
            OpKind::Admit {
                org: OrgId([3; 32]),
            },
            OpKind::BindNode {
                peer_id: vec![0, 36, 8, 1],
            },
            OpKind::JoinTeam { team: team.clone() },
            OpKind::LeaveTeam { team: team.clone() },
            OpKind::Convene {
                meeting: MeetingKind::Team(team.clone()),
                year: 2026,
                title: "First".into(),
            },
            OpKind::Convene {
                meeting: MeetingKind::Coordinators,
                year: 2026,
                title: "Coordinators".into(),
            },
            OpKind::Attend { meeting: a },
            OpKind::Motion {
                meeting: a,
                motion: MotionKind::Recommend {
                    team: team.clone(),
                    org: OrgId([4; 32]),
                },
            },
            OpKind::Motion {
                meeting: a,
                motion: MotionKind::Elect {
                    role: ChairRole::CoChair,
                    org: OrgId([4; 32]),
                },
            },
            OpKind::Motion {
                meeting: a,
                motion: MotionKind::AdoptProcedure(Procedure {
                    year: 2026,
                    teams: vec![TeamCode::new("C1").unwrap(), team.clone()],
                    deadline_ms: 99,
                    required_sections: vec!["achievements".into()],
                    national_reports: true,
                }),
            },
            OpKind::Motion {
                meeting: a,
                motion: MotionKind::Checkpoint { heads: vec![a, b] },
            },
            OpKind::Motion {
                meeting: a,
                motion: MotionKind::AdoptReport {
                    year: 2026,
                    manifest_hash: Hash32([8; 32]),
                },
            },
            OpKind::Ballot {
                motion: b,
                yes: true,
            },
            OpKind::Nominate {
                team: team.clone(),
                org: OrgId([4; 32]),
                recommendation: b,
            },
            OpKind::RevokeRole {
                role: RevocableRole::Member,
                org: OrgId([4; 32]),
            },
            OpKind::RevokeRole {
                role: RevocableRole::Coordinator(team.clone()),
                org: OrgId([4; 32]),
            },
            OpKind::SetModalities {
                team: team.clone(),
                text: "We meet quarterly.".into(),
            },
            OpKind::CreateDoc {
                kind: DocKind::OutputDraft {
                    team: team.clone(),
                    year: 2026,
                },
            },
            OpKind::CreateDoc {
                kind: DocKind::NationalReport {
                    country: Country::new("KE").unwrap(),
                    year: 2026,
                },
            },
            OpKind::CreateDoc {
                kind: DocKind::TeamCharter { team: team.clone() },
            },
            OpKind::ApproveRecord {
                meeting: a,
                record: att.clone(),
            },
            OpKind::SubmitOutput {
                team: team.clone(),
                year: 2026,
                doc: DocId([6; 32]),
                attestation: att.clone(),
            },
            OpKind::SubmitNationalReport {
                country: Country::new("BR").unwrap(),
                year: 2026,
                doc: DocId([6; 32]),
                attestation: att,
            },
            OpKind::Evidence {
                first: Box::new(inner.clone()),
                second: Box::new(inner),
            },
        ];
        for (i, kind) in kinds.into_iter().enumerate() {
            let op = OpBody {
                federation: Some(fed),
                author: rec.id(),
                key: sk.public(),
                seq: 2 + i as u64,
                parents: vec![a, b],
                timestamp_ms: 1_700_000_000_000,
                kind,
            }
            .sign(&sk);
            let again = SignedOp::from_bytes(op.bytes()).unwrap_or_else(|e| panic!("{op:?}: {e}"));
            assert_eq!(again.body(), op.body());
            assert_eq!(again.id(), op.id());
            assert_eq!(
                again.body().encode(),
                op.body_bytes(),
                "re-encoding is byte-identical"
            );
        }
    }

    #[test]
    fn unsorted_parents_are_rejected() {
        let (sk, rec) = inception(1, "ITU");
        let op = OpBody {
            federation: Some(FederationId([9; 32])),
            author: rec.id(),
            key: sk.public(),
            seq: 2,
            parents: vec![OpId([2; 32]), OpId([1; 32])],
            timestamp_ms: 0,
            kind: OpKind::JoinTeam {
                team: TeamCode::new("C1").unwrap(),
            },
        }
        .sign(&sk);
        assert!(matches!(
            SignedOp::decode(op.bytes()),
            Err(OpError::Decode(DecodeError::Invalid(_)))
        ));
    }
}
