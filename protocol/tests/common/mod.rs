//! Fixtures shared by the integration tests: the golden federation (fixed seeds, fixed timestamps) and small helpers
//! to take signed records apart and put (possibly malformed) ones together again.
//!
//! The golden federation is also what `golden.rs` pins byte for byte, so changing anything here changes
//! `tests/golden/ops.txt` (regenerate it with `WSIS_BLESS=1`, and say why in the commit).
#![allow(dead_code, clippy::unwrap_used)]

use wsis_protocol::cbor::{Decoder, Encoder};
use wsis_protocol::crypto::{Domain, SecretKey, SIGNATURE_LEN};
use wsis_protocol::ids::{FederationId, OpId};
use wsis_protocol::op::{
    Country, Genesis, Inception, MeetingKind, OpBody, OpKind, Policy, SignedInception, SignedOp,
    StakeholderType, Team, TeamCode,
};

/// 2026-01-01T00:00:00Z.
pub const T0: u64 = 1_767_225_600_000;
pub const MINUTE: u64 = 60_000;

pub struct Org {
    pub secret: SecretKey,
    pub inception: SignedInception,
}

impl Org {
    pub fn new(seed: u8, name: &str, stakeholder: StakeholderType, country: Option<&str>) -> Self {
        let secret = SecretKey::from_seed(&[seed; 32]);
        let inception = Inception {
            name: name.into(),
            stakeholder,
            country: country.map(|c| Country::new(c).unwrap()),
            key: secret.public(),
            created_ms: T0,
        }
        .sign(&secret);
        Self { secret, inception }
    }

    /// Signs an op by this org.
    pub fn op(
        &self,
        federation: Option<FederationId>,
        seq: u64,
        parents: &[&SignedOp],
        timestamp_ms: u64,
        kind: OpKind,
    ) -> SignedOp {
        let mut parents: Vec<OpId> = parents.iter().map(|p| p.id()).collect();
        parents.sort();
        OpBody {
            federation,
            author: self.inception.id(),
            key: self.secret.public(),
            seq,
            parents,
            timestamp_ms,
            kind,
        }
        .sign(&self.secret)
    }
}

/// The golden federation: ITU and UNESCO as secretariat, Kenya's government and an NGO joining.
pub struct Golden {
    pub itu: Org,
    pub unesco: Org,
    pub kenya: Org,
    pub ngo: Org,
    pub federation: FederationId,
    /// Every op in causal order, with its name in the golden file.
    pub ops: Vec<(&'static str, SignedOp)>,
}

impl Golden {
    pub fn build() -> Self {
        let itu = Org::new(
            1,
            "International Telecommunication Union",
            StakeholderType::InternationalOrganisation,
            None,
        );
        let unesco = Org::new(
            2,
            "United Nations Educational, Scientific and Cultural Organization",
            StakeholderType::InternationalOrganisation,
            None,
        );
        let kenya = Org::new(3, "Kenya", StakeholderType::Government, Some("KE"));
        let ngo = Org::new(
            4,
            "Open Health Alliance",
            StakeholderType::CivilSociety,
            None,
        );
        let team = |code: &str, name: &str| Team {
            code: TeamCode::new(code).unwrap(),
            name: name.into(),
        };
        let genesis = itu.op(
            None,
            1,
            &[],
            T0,
            OpKind::Genesis(Box::new(Genesis {
                name: "WSIS golden".into(),
                secretariat: vec![itu.inception.clone(), unesco.inception.clone()],
                nominating_authority: None,
                teams: vec![
                    team(
                        "C1",
                        "The role of public governance authorities and all stakeholders in the \
                         promotion of ICTs for development",
                    ),
                    team("C2", "Information and communication infrastructure"),
                    team("C7.EHEALTH", "ICT applications: E-health"),
                ],
                policy: Policy::default(),
            })),
        );
        let fed = Some(FederationId(genesis.id().0));
        let kenya_inception = kenya.op(
            fed,
            1,
            &[&genesis],
            T0 + MINUTE,
            OpKind::OrgInception(kenya.inception.clone()),
        );
        let ngo_inception = ngo.op(
            fed,
            1,
            &[&genesis],
            T0 + 2 * MINUTE,
            OpKind::OrgInception(ngo.inception.clone()),
        );
        let admit_kenya = itu.op(
            fed,
            2,
            &[&kenya_inception, &ngo_inception],
            T0 + 3 * MINUTE,
            OpKind::Admit {
                org: kenya.inception.id(),
            },
        );
        let admit_ngo = unesco.op(
            fed,
            1,
            &[&admit_kenya],
            T0 + 4 * MINUTE,
            OpKind::Admit {
                org: ngo.inception.id(),
            },
        );
        let join = ngo.op(
            fed,
            2,
            &[&admit_ngo],
            T0 + 5 * MINUTE,
            OpKind::JoinTeam {
                team: TeamCode::new("C7.EHEALTH").unwrap(),
            },
        );
        let convene = itu.op(
            fed,
            3,
            &[&join],
            T0 + 6 * MINUTE,
            OpKind::Convene {
                meeting: MeetingKind::Recommendation,
                year: 2026,
                title: "Recommendation of coordinators 2026".into(),
            },
        );
        Self {
            federation: FederationId(genesis.id().0),
            ops: vec![
                ("genesis", genesis),
                ("inception-kenya", kenya_inception),
                ("inception-ngo", ngo_inception),
                ("admit-kenya", admit_kenya),
                ("admit-ngo", admit_ngo),
                ("join-team-ngo-c7-ehealth", join),
                ("convene-recommendation-2026", convene),
            ],
            itu,
            unesco,
            kenya,
            ngo,
        }
    }

    pub fn op(&self, name: &str) -> &SignedOp {
        &self
            .ops
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("no golden op {name}"))
            .1
    }

    pub fn genesis(&self) -> &SignedOp {
        self.op("genesis")
    }

    /// The latest op (a head): a parent for new test ops.
    pub fn head(&self) -> &SignedOp {
        &self.ops.last().unwrap().1
    }
}

/// One complete encoded item, written by `f`.
pub fn item(f: impl FnOnce(&mut Encoder)) -> Vec<u8> {
    let mut e = Encoder::new();
    f(&mut e);
    e.into_bytes()
}

/// `map { 0: body, 1: signature }`, the wrapper of signed ops and inception records.
pub fn wrap(body: &[u8], signature: &[u8]) -> Vec<u8> {
    item(|e| {
        e.map(2).key(0).bytes(body).key(1).bytes(signature);
    })
}

/// A body signed properly in `domain`, wrapped: whatever is wrong with the result is wrong with the body.
pub fn sign_wrap(secret: &SecretKey, domain: Domain, body: &[u8]) -> Vec<u8> {
    wrap(body, &secret.sign(domain, body))
}

/// Splits a canonical wrapper into (body, signature).
pub fn unwrap(signed: &[u8]) -> (Vec<u8>, [u8; SIGNATURE_LEN]) {
    let mut d = Decoder::new(signed);
    let mut m = d.map(2).unwrap();
    m.required(&mut d, 0).unwrap();
    let body = d.bytes("body", usize::MAX).unwrap().to_vec();
    m.required(&mut d, 1).unwrap();
    let sig = d.fixed::<SIGNATURE_LEN>("signature").unwrap();
    m.end().unwrap();
    d.finish().unwrap();
    (body, sig)
}

/// The entries of an encoded map with fewer than 24 entries, as (key, encoded value) pairs, in wire order.
pub fn fields(map: &[u8]) -> Vec<(u64, Vec<u8>)> {
    assert_eq!(map[0] >> 5, 5, "a map");
    let count = (map[0] & 0x1f) as usize;
    assert!(count < 24, "a small map");
    let mut d = Decoder::new(&map[1..]);
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let k = d.u64().unwrap();
        let start = d.position();
        d.skip(32).unwrap();
        out.push((k, d.slice(start, d.position()).to_vec()));
    }
    d.finish().unwrap();
    out
}

/// A map of the given entries, written in the order given (canonical only if the keys ascend).
pub fn assemble(fields: &[(u64, Vec<u8>)]) -> Vec<u8> {
    item(|e| {
        e.map(fields.len());
        for (k, v) in fields {
            e.key(*k).raw(v);
        }
    })
}

/// `fields` with the value of `key` replaced (the key must be present).
pub fn with_field(fields: &[(u64, Vec<u8>)], key: u64, value: Vec<u8>) -> Vec<(u64, Vec<u8>)> {
    let mut out = fields.to_vec();
    let slot = out
        .iter_mut()
        .find(|(k, _)| *k == key)
        .unwrap_or_else(|| panic!("no field {key}"));
    slot.1 = value;
    out
}
