//! The vocabulary ops speak in: stakeholder types, team codes and country codes, each checked when it is made
//! so that a value of these types is always one the protocol accepts.

use crate::cbor::DecodeError;
use crate::limits::MAX_TEAM_CODE_BYTES;
use std::fmt;

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

    pub(super) fn wire(self) -> u64 {
        self as u64
    }

    pub(super) fn from_wire(v: u64) -> Result<Self, DecodeError> {
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
