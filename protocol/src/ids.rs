//! Self-certifying identifiers.
//!
//! Every id is the SHA-256 of some signed bytes, so an id names exactly one thing and anyone holding the bytes can
//! check the name. Ids are compared on all 32 bytes (derived `Eq` over the whole array); the short form printed by
//! [`Display`](std::fmt::Display) with `{:#}` is for humans only and is never parsed or compared.
//!
//! The human form is `<prefix>_<64 lowercase hex digits>`, e.g. `op_3f1a…`. The prefix says which kind of id it is,
//! so an `OrgId` can never be mistaken for an `OpId` when pasted into a command line.
//!
//! [`Hash32`] is here too: a 32-byte hash that is not one of our ids (an Automerge change hash, a content hash),
//! printed as bare hex.

use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Why a textual id did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdParseError {
    #[error("expected an id starting with `{expected}_`")]
    WrongPrefix { expected: &'static str },
    #[error("an id has 64 hex digits after the prefix, found {found}")]
    WrongLength { found: usize },
    #[error("an id has only lowercase hex digits after the prefix")]
    NotHex,
}

macro_rules! define_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            /// The prefix of the human form.
            pub const PREFIX: &'static str = $prefix;

            /// The raw 32 bytes.
            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }

            /// The id of the given bytes: their SHA-256.
            pub fn of_bytes(bytes: &[u8]) -> Self {
                Self(sha256(bytes))
            }
        }

        impl fmt::Display for $name {
            /// `prefix_<64 hex>`; with `{:#}` a 12-digit short form for tables (never parse that back).
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let hex = hex::encode(self.0);
                if f.alternate() {
                    write!(f, "{}_{}", $prefix, &hex[..12])
                } else {
                    write!(f, "{}_{}", $prefix, hex)
                }
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:#}", self)
            }
        }

        impl FromStr for $name {
            type Err = IdParseError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Ok(Self(parse_prefixed($prefix, s)?))
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

fn parse_prefixed(prefix: &'static str, s: &str) -> Result<[u8; 32], IdParseError> {
    let rest = s
        .strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('_'))
        .ok_or(IdParseError::WrongPrefix { expected: prefix })?;
    if rest.len() != 64 {
        return Err(IdParseError::WrongLength { found: rest.len() });
    }
    if !rest
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(IdParseError::NotHex);
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(rest, &mut out).map_err(|_| IdParseError::NotHex)?;
    Ok(out)
}

define_id!(
    /// SHA-256 of the genesis op's signed bytes: names a federation.
    FederationId,
    "fed"
);
define_id!(
    /// SHA-256 of an organisation's signed inception record.
    OrgId,
    "org"
);
define_id!(
    /// SHA-256 of a signed governance op's bytes.
    OpId,
    "op"
);
define_id!(
    /// The [`OpId`] of the op that created the document (a `CreateDoc`, or the `Convene` of a meeting record).
    DocId,
    "doc"
);
define_id!(
    /// SHA-256 of a signed change envelope's bytes.
    EnvelopeId,
    "env"
);

impl From<OpId> for DocId {
    fn from(id: OpId) -> Self {
        DocId(id.0)
    }
}

impl From<DocId> for OpId {
    fn from(id: DocId) -> Self {
        OpId(id.0)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_form_round_trips_and_names_its_kind() {
        let id = OpId::of_bytes(b"x");
        let s = id.to_string();
        assert!(s.starts_with("op_"));
        assert_eq!(s.len(), 3 + 64);
        assert_eq!(s.parse::<OpId>(), Ok(id));
        assert_eq!(
            s.parse::<OrgId>(),
            Err(IdParseError::WrongPrefix { expected: "org" })
        );
    }

    #[test]
    fn short_prefix_and_uppercase_are_rejected() {
        let id = FederationId::of_bytes(b"genesis");
        let full = id.to_string();
        let short = format!("{id:#}");
        assert_eq!(
            short.parse::<FederationId>(),
            Err(IdParseError::WrongLength { found: 12 })
        );
        assert_eq!(
            full.to_uppercase()
                .replace("FED_", "fed_")
                .parse::<FederationId>(),
            Err(IdParseError::NotHex)
        );
    }

    #[test]
    fn ids_differing_only_in_the_last_byte_are_different() {
        let a = OrgId([7; 32]);
        let mut b = a;
        b.0[31] ^= 1;
        assert_ne!(a, b);
        assert_eq!(a.to_string()[..60], b.to_string()[..60]);
    }
}

/// A hasher for maps keyed by our ids. Ids are SHA-256 outputs, already uniformly distributed, so folding their
/// bytes is enough and much cheaper than SipHash on the replay's hot path. An attacker cannot aim for collisions
/// without grinding signatures, and a collision only costs a probe.
#[derive(Debug, Default, Clone, Copy)]
pub struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.0 =
                (self.0.rotate_left(5) ^ u64::from_le_bytes(b)).wrapping_mul(0x517c_c1b7_2722_0a95);
        }
    }
}

/// A `HashMap` keyed by ids (or tuples containing them), with [`IdHasher`].
pub type IdMap<K, V> = std::collections::HashMap<K, V, std::hash::BuildHasherDefault<IdHasher>>;
