//! Round trips of every op kind and the structural checks of one op.

use super::*;
use crate::cbor::DecodeError;
use crate::crypto::SecretKey;
use crate::ids::{FederationId, Hash32, OpId, OrgId};

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

/// A body by ITU's key in federation 9 with the given kind and parents.
fn body(sk: &SecretKey, rec: &SignedInception, parents: Vec<OpId>, kind: OpKind) -> OpBody {
    OpBody {
        federation: Some(FederationId([9; 32])),
        author: rec.id(),
        key: sk.public(),
        seq: 2,
        parents,
        timestamp_ms: 1_700_000_000_000,
        kind,
    }
}

#[test]
fn every_op_kind_seals_and_round_trips() {
    let (sk, rec) = inception(1, "ITU");
    let inner = body(
        &sk,
        &rec,
        vec![OpId([1; 32])],
        OpKind::Admit {
            org: OrgId([3; 32]),
        },
    );
    let inner = inner.sign(&sk);
    let kinds = crate::fixture::one_of_every_kind(inner.clone(), inner);
    for kind in kinds {
        let raw = body(&sk, &rec, vec![OpId([1; 32]), OpId([2; 32])], kind);
        let op = raw
            .clone()
            .seal(&sk)
            .unwrap_or_else(|e| panic!("{raw:?}: {e}"));
        assert_eq!(op.body(), &raw, "already canonical: sealed as given");
        let again = SignedOp::from_bytes(op.bytes()).expect("a peer accepts it");
        assert_eq!(again, op);
        assert_eq!(again.body().encode(), op.body_bytes());
    }
}

/// The defect of issue 10: teams typed out of order. `sign` makes an op every peer refuses; `seal` makes the
/// canonical op every peer accepts, and every list the decoder requires ascending is sorted and deduplicated.
#[test]
fn seal_canonicalises_unsorted_and_duplicated_lists() {
    let (sk, rec) = inception(1, "ITU");
    let team = |c: &str| TeamCode::new(c).unwrap();
    let (a, b) = (OpId([1; 32]), OpId([2; 32]));
    let procedure = OpKind::Motion {
        meeting: a,
        motion: MotionKind::AdoptProcedure(Procedure {
            year: 2026,
            teams: vec![team("C7.EGOV"), team("C7.EBUS"), team("C7.EGOV")],
            deadline_ms: 0,
            required_sections: vec![
                "challenges".into(),
                "achievements".into(),
                "challenges".into(),
            ],
            national_reports: false,
        }),
    };
    let raw = body(&sk, &rec, vec![b, a, b], procedure.clone());
    assert_eq!(
        SignedOp::decode(raw.clone().sign(&sk).bytes()).map(|_| ()),
        Err(OpError::Decode(DecodeError::Invalid(
            "id lists must be sorted ascending without duplicates"
        ))),
        "the raw signer keeps what it is given"
    );
    let op = raw.seal(&sk).expect("sealed");
    assert_eq!(op.parents(), &[a, b]);
    match op.kind() {
        OpKind::Motion {
            motion: MotionKind::AdoptProcedure(p),
            ..
        } => {
            assert_eq!(p.teams, vec![team("C7.EBUS"), team("C7.EGOV")]);
            // Order kept (it is the order a report shows), duplicates gone.
            assert_eq!(
                p.required_sections,
                vec!["challenges".to_string(), "achievements".into()]
            );
        }
        other => panic!("{other:?}"),
    }
    let raw = body(&sk, &rec, vec![a], procedure);
    assert_eq!(
        SignedOp::decode(raw.sign(&sk).bytes()).map(|_| ()),
        Err(OpError::Structure(
            "procedure teams must be sorted and unique"
        )),
    );

    let heads = vec![Hash32([5; 32]), Hash32([1; 32]), Hash32([5; 32])];
    let att = Attestation {
        heads,
        content_hash: Hash32([7; 32]),
    };
    let kinds = [
        OpKind::Motion {
            meeting: a,
            motion: MotionKind::Checkpoint {
                heads: vec![b, a, b],
            },
        },
        OpKind::ApproveRecord {
            meeting: a,
            record: att.clone(),
        },
        OpKind::SubmitOutput {
            team: team("C1"),
            year: 2026,
            doc: crate::ids::DocId([6; 32]),
            attestation: att.clone(),
        },
        OpKind::SubmitNationalReport {
            country: Country::new("KE").unwrap(),
            year: 2026,
            doc: crate::ids::DocId([6; 32]),
            attestation: att,
        },
    ];
    for kind in kinds {
        let raw = body(&sk, &rec, vec![a], kind);
        assert!(SignedOp::decode(raw.clone().sign(&sk).bytes()).is_err());
        let op = raw.seal(&sk).expect("sealed");
        let (ids, hashes): (Vec<[u8; 32]>, Vec<[u8; 32]>) = match op.kind() {
            OpKind::Motion {
                motion: MotionKind::Checkpoint { heads },
                ..
            } => (heads.iter().map(|h| h.0).collect(), vec![]),
            OpKind::ApproveRecord { record: at, .. }
            | OpKind::SubmitOutput {
                attestation: at, ..
            }
            | OpKind::SubmitNationalReport {
                attestation: at, ..
            } => (vec![], at.heads.iter().map(|h| h.0).collect()),
            other => panic!("{other:?}"),
        };
        for list in [ids, hashes] {
            assert!(list.windows(2).all(|w| w[0] < w[1]), "{list:?}");
        }
    }
}

/// What the decoder refuses and cannot be canonicalised is refused by `seal`, with the decoder's own reason.
#[test]
fn seal_refuses_what_a_peer_refuses_with_the_decoders_reason() {
    let (sk, rec) = inception(1, "ITU");
    let a = OpId([1; 32]);
    for title in ["", "   "] {
        let raw = body(
            &sk,
            &rec,
            vec![a],
            OpKind::Convene {
                meeting: MeetingKind::Coordinators,
                year: 2026,
                title: title.into(),
            },
        );
        let peer = SignedOp::decode(raw.clone().sign(&sk).bytes()).map(|_| ());
        assert_eq!(
            peer,
            Err(OpError::Decode(DecodeError::Invalid(
                "a name must not be empty"
            )))
        );
        assert_eq!(raw.seal(&sk).map(|_| ()), peer);
    }
    let raw = body(
        &sk,
        &rec,
        vec![a],
        OpKind::Motion {
            meeting: a,
            motion: MotionKind::AdoptProcedure(Procedure {
                year: 2026,
                teams: vec![],
                deadline_ms: 0,
                required_sections: vec!["".into()],
                national_reports: false,
            }),
        },
    );
    assert_eq!(
        raw.seal(&sk).map(|_| ()),
        Err(OpError::Decode(DecodeError::Invalid(
            "a name must not be empty"
        )))
    );
    // No parents: the structural rule about one op.
    let raw = body(
        &sk,
        &rec,
        vec![],
        OpKind::Admit {
            org: OrgId([3; 32]),
        },
    );
    assert_eq!(
        raw.seal(&sk).map(|_| ()),
        Err(OpError::Structure(
            "every op but the genesis names its federation and parents"
        ))
    );
    // The wrong key is an error, not a panic.
    let other = SecretKey::from_seed(&[2; 32]);
    let raw = body(
        &sk,
        &rec,
        vec![a],
        OpKind::Admit {
            org: OrgId([3; 32]),
        },
    );
    assert!(raw.seal(&other).is_err());
    // An inception with an empty name.
    let empty = Inception {
        name: " ".into(),
        stakeholder: StakeholderType::CivilSociety,
        country: None,
        key: sk.public(),
        created_ms: 0,
    };
    assert_eq!(
        empty.seal(&sk).map(|_| ()),
        Err(OpError::Decode(DecodeError::Invalid(
            "a name must not be empty"
        )))
    );
}

proptest::proptest! {
    /// Any order and any repetition of teams, sections and heads seals into an op a peer accepts, the same op
    /// whatever the order, and sealing what was sealed changes nothing.
    #[test]
    fn seal_is_canonical_whatever_the_order(
        teams in proptest::collection::vec(0usize..6, 0..12),
        sections in proptest::collection::vec(0usize..4, 0..8),
        heads in proptest::collection::vec(0u8..5, 1..10),
        rotate in 0usize..12,
    ) {
        let (sk, rec) = inception(1, "ITU");
        let codes = ["C1", "C2", "C7.EGOV", "C7.EBUS", "C10", "C11"];
        let names = ["achievements", "challenges", "recommendations", "summary"];
        let procedure = |teams: &[usize], sections: &[usize]| OpKind::Motion {
            meeting: OpId([1; 32]),
            motion: MotionKind::AdoptProcedure(Procedure {
                year: 2026,
                teams: teams.iter().map(|&t| TeamCode::new(codes[t]).unwrap()).collect(),
                deadline_ms: 0,
                required_sections: sections.iter().map(|&s| names[s].to_string()).collect(),
                national_reports: true,
            }),
        };
        let parents: Vec<OpId> = heads.iter().map(|&h| OpId([h; 32])).collect();
        let op = body(&sk, &rec, parents.clone(), procedure(&teams, &sections)).seal(&sk).unwrap();
        proptest::prop_assert!(SignedOp::from_bytes(op.bytes()).is_ok());
        // Teams rotated: the same op (sections keep their order, so they are left as they were).
        let mut rotated = teams.clone();
        if !rotated.is_empty() {
            let k = rotate % rotated.len();
            rotated.rotate_left(k);
        }
        let mut shuffled_parents = parents;
        shuffled_parents.reverse();
        let other = body(&sk, &rec, shuffled_parents, procedure(&rotated, &sections)).seal(&sk).unwrap();
        proptest::prop_assert_eq!(other.id(), op.id());
        let resealed = op.body().clone().seal(&sk).unwrap();
        proptest::prop_assert_eq!(resealed.bytes(), op.bytes());
    }
}
