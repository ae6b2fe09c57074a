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

/// The hasher of every map keyed by ids: SipHash-1-3 with a random key per map (std's `RandomState`).
///
/// Ids are SHA-256 outputs, but a peer chooses many of the ids a replica hashes without hashing anything: the
/// parents an op cites, the ops an envelope cites, what a request names. With an unkeyed hasher (the fold this
/// replaced was invertible) a peer could compute ids that all land in one bucket, and every insertion then walked
/// all of them: 3,000 ops parked under colliding parent ids took 94 s with the governance lock held (issue 11,
/// defect 6). A key the peer does not know makes colliding ids as hard to find as guessing the key.
///
/// The key differs from map to map and from run to run, so iteration order is arbitrary: no output may depend on
/// it (every query sorts, every digest hashes sorted data; `protocol/tests/convergence.rs` compares replicas fed in
/// different orders, each with its own keys).
pub type IdBuildHasher = std::collections::hash_map::RandomState;

/// A `HashMap` keyed by ids (or tuples containing them), with [`IdBuildHasher`].
pub type IdMap<K, V> = std::collections::HashMap<K, V, IdBuildHasher>;

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

    /// The unkeyed fold that `IdMap` used before (issue 11, defect 6), fed the way `#[derive(Hash)]` feeds a
    /// `[u8; 32]`: the length prefix, then the bytes.
    fn unkeyed_fold(id: &[u8; 32]) -> u64 {
        const C: u64 = 0x517c_c1b7_2722_0a95;
        let mut h = 0u64;
        let mut step = |w: u64| h = (h.rotate_left(5) ^ w).wrapping_mul(C);
        step(32);
        for chunk in id.chunks(8) {
            let mut b = [0u8; 8];
            b.copy_from_slice(chunk);
            step(u64::from_le_bytes(b));
        }
        h
    }

    /// Ids a peer computes to all collide under the unkeyed fold (it is invertible: pick three words, solve the
    /// fourth for a fixed output).
    fn colliding_ids(n: usize) -> Vec<[u8; 32]> {
        const C: u64 = 0x517c_c1b7_2722_0a95;
        // The inverse of C modulo 2^64 (Newton's iteration; C is odd).
        let mut inv: u64 = 1;
        for _ in 0..6 {
            inv = inv.wrapping_mul(2u64.wrapping_sub(C.wrapping_mul(inv)));
        }
        let target = 0x0123_4567_89ab_cdefu64;
        (0..n as u64)
            .map(|i| {
                let mut h = 0u64;
                let mut step = |w: u64| h = (h.rotate_left(5) ^ w).wrapping_mul(C);
                step(32);
                let words = [i, !i, i.wrapping_mul(3)];
                for w in words {
                    step(w);
                }
                let last = target.wrapping_mul(inv) ^ h.rotate_left(5);
                let mut id = [0u8; 32];
                for (k, w) in words.iter().chain([&last]).enumerate() {
                    id[k * 8..k * 8 + 8].copy_from_slice(&w.to_le_bytes());
                }
                id
            })
            .collect()
    }

    /// Catalogue (issue 11, defect 6): ids crafted to collide under the old unkeyed hasher are spread by the keyed
    /// one, so a map of them costs one probe per lookup, not a walk over all of them.
    #[test]
    fn ids_crafted_to_collide_unkeyed_do_not_collide_keyed() {
        use std::hash::BuildHasher;
        let ids = colliding_ids(3_000);
        assert!(
            ids.iter()
                .all(|id| unkeyed_fold(id) == unkeyed_fold(&ids[0])),
            "the attack: every crafted id has the same unkeyed hash"
        );
        let distinct: std::collections::BTreeSet<[u8; 32]> = ids.iter().copied().collect();
        assert_eq!(distinct.len(), ids.len());
        let keyed = IdBuildHasher::default();
        let hashes: std::collections::BTreeSet<u64> =
            ids.iter().map(|id| keyed.hash_one(OpId(*id))).collect();
        // 3,000 random 64-bit values collide with probability about 2^-41.
        assert_eq!(hashes.len(), ids.len(), "keyed hashes are all distinct");
        // Two maps (two replicas) have different keys: nothing may depend on one map's order.
        let other = IdBuildHasher::default();
        assert_ne!(keyed.hash_one(OpId(ids[0])), other.hash_one(OpId(ids[0])));
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
