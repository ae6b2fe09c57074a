//! Round trips of every op kind and the structural checks of one op.

use super::*;
use crate::cbor::DecodeError;
use crate::crypto::SecretKey;
use crate::ids::{DocId, FederationId, Hash32, OpId, OrgId};

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
