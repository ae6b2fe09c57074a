//! Round trips of every op kind and the structural checks of one op.

use super::*;
use crate::cbor::DecodeError;
use crate::crypto::SecretKey;
use crate::ids::{FederationId, OpId, OrgId};

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
    let kinds = crate::fixture::one_of_every_kind(inner.clone(), inner);
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
