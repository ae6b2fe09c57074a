//! The stocktaking view over a small annual cycle: what it shows, that it hides nothing, and that its canonical
//! JSON is byte-stable across replicas that received the ops in different orders.
#![allow(clippy::unwrap_used)]

use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::collections::BTreeMap;
use wsis_protocol::fixture::World;
use wsis_protocol::gov::Governance;
use wsis_protocol::ids::DocId;
use wsis_protocol::ids::Hash32;
use wsis_protocol::op::{
    Attestation, ChairRole, Country, DocKind, MeetingKind, MotionKind, OpKind, Procedure,
    StakeholderType,
};
use wsis_protocol::view::{Status, StocktakeView};

struct Cycle {
    w: World,
    attested: BTreeMap<DocId, Hash32>,
    /// C2's output document.
    c2_doc: DocId,
}

fn annual_cycle() -> Cycle {
    let mut w = World::wsis();
    let undesa = w.add_org("UNDESA", "international-organisation", None);
    let apc = w.add_org("APC", "civil-society", None);
    let kenya = w.add_org("Kenya", "government", Some("KE"));
    let uni = w.add_org("University of Nairobi", "academia", None);
    for o in [undesa, apc, kenya, uni] {
        w.admit(o);
    }
    // Coordinators: ITU for C2 and UNDESA for C1, recommended at a stakeholder meeting.
    w.recommend_and_nominate("C2", 0, &[undesa, apc, kenya]);
    w.recommend_and_nominate("C1", undesa, &[undesa, apc, kenya]);
    for o in [apc, kenya, uni] {
        w.op(o, OpKind::JoinTeam { team: w.team("C2") });
    }
    w.op(0, OpKind::JoinTeam { team: w.team("C2") });
    w.op(
        0,
        OpKind::SetModalities {
            team: w.team("C2"),
            text: "Quarterly online meetings; decisions by consensus.".into(),
        },
    );
    // A C2 team meeting whose record is approved by the convener and an attendee.
    let meeting = w.op(
        0,
        OpKind::Convene {
            meeting: MeetingKind::Team(w.team("C2")),
            year: 2026,
            title: "C2 spring meeting".into(),
        },
    );
    w.op(
        apc,
        OpKind::Attend {
            meeting: meeting.id(),
        },
    );
    w.op(
        kenya,
        OpKind::Attend {
            meeting: meeting.id(),
        },
    );
    let record = Attestation {
        heads: vec![Hash32([3; 32])],
        content_hash: Hash32([4; 32]),
    };
    w.op(
        0,
        OpKind::ApproveRecord {
            meeting: meeting.id(),
            record: record.clone(),
        },
    );
    w.op(
        apc,
        OpKind::ApproveRecord {
            meeting: meeting.id(),
            record,
        },
    );
    // The coordinators' meeting elects a Chair and adopts the procedure.
    let cm = w.coordinators_meeting();
    w.pass_motion(
        &cm,
        MotionKind::Elect {
            role: ChairRole::Chair,
            org: w.id(undesa),
        },
        &[0, undesa],
    );
    let procedure = Procedure {
        year: 2026,
        teams: vec![w.team("C1"), w.team("C2")],
        deadline_ms: 1_700_000_000_000 + 10_000_000,
        required_sections: vec![
            "achievements".into(),
            "challenges".into(),
            "recommendations".into(),
        ],
        national_reports: true,
    };
    w.pass_motion(&cm, MotionKind::AdoptProcedure(procedure), &[0, undesa]);
    // C2's output: drafted, submitted by ITU as coordinator.
    let draft = w.op(
        apc,
        OpKind::CreateDoc {
            kind: DocKind::OutputDraft {
                team: w.team("C2"),
                year: 2026,
            },
        },
    );
    let out_hash = Hash32([9; 32]);
    w.op(
        0,
        OpKind::SubmitOutput {
            team: w.team("C2"),
            year: 2026,
            doc: DocId(draft.id().0),
            attestation: Attestation {
                heads: vec![Hash32([5; 32])],
                content_hash: out_hash,
            },
        },
    );
    // Kenya's national report.
    let nr = w.op(
        kenya,
        OpKind::CreateDoc {
            kind: DocKind::NationalReport {
                country: Country::new("KE").unwrap(),
                year: 2026,
            },
        },
    );
    let nr_hash = Hash32([10; 32]);
    w.op(
        kenya,
        OpKind::SubmitNationalReport {
            country: Country::new("KE").unwrap(),
            year: 2026,
            doc: DocId(nr.id().0),
            attestation: Attestation {
                heads: vec![Hash32([6; 32])],
                content_hash: nr_hash,
            },
        },
    );
    let attested = [(DocId(draft.id().0), out_hash), (DocId(nr.id().0), nr_hash)]
        .into_iter()
        .collect();
    Cycle {
        w,
        attested,
        c2_doc: DocId(draft.id().0),
    }
}

#[test]
fn the_view_shows_roles_members_meetings_outputs_and_reports() {
    let Cycle { w, attested, .. } = annual_cycle();
    let v = StocktakeView::compute(&w.gov, 2026, &attested);
    assert_eq!(v.teams.len(), 18);
    assert_eq!(v.chair.as_ref().unwrap().org.name, "UNDESA");
    let c2 = v.teams.iter().find(|t| t.code.as_str() == "C2").unwrap();
    assert_eq!(c2.coordinator.as_ref().unwrap().org.name, "ITU");
    assert!(c2.expected);
    assert_eq!(c2.members.len(), 4);
    assert_eq!(c2.members_by_stakeholder[&StakeholderType::Government], 1);
    assert_eq!(
        c2.members_by_stakeholder[&StakeholderType::InternationalOrganisation],
        1
    );
    assert_eq!(c2.meetings.len(), 1);
    assert_eq!(c2.meetings[0].record, "approved");
    assert_eq!(c2.output.status, Status::Submitted);
    assert!(c2.modalities.as_deref().unwrap().starts_with("Quarterly"));
    let c1 = v.teams.iter().find(|t| t.code.as_str() == "C1").unwrap();
    assert_eq!(
        c1.output.status,
        Status::Missing,
        "an expected output that never came is shown as missing"
    );
    let c3 = v.teams.iter().find(|t| t.code.as_str() == "C3").unwrap();
    assert!(!c3.expected);
    assert_eq!(v.national_reports.len(), 1);
    assert_eq!(v.national_reports[0].status, Status::Submitted);
    assert_eq!(v.summary.outputs_submitted, 1);
    assert_eq!(v.summary.outputs_missing, 1);
    assert_eq!(v.summary.teams_expected, 2);
    assert_eq!(v.summary.records_approved, 1);
    assert_eq!(v.procedure.as_ref().unwrap().required_sections.len(), 3);
}

#[test]
fn document_problems_and_lateness_are_shown() {
    let Cycle {
        mut w,
        mut attested,
        c2_doc,
    } = annual_cycle();
    // The C2 document is not available, then available with different content.
    attested.remove(&c2_doc);
    let v = StocktakeView::compute(&w.gov, 2026, &attested);
    let status = |v: &StocktakeView| {
        v.teams
            .iter()
            .find(|t| t.code.as_str() == "C2")
            .unwrap()
            .output
            .status
    };
    assert_eq!(status(&v), Status::DocumentMissing);
    attested.insert(c2_doc, Hash32([0xee; 32]));
    assert_eq!(
        status(&StocktakeView::compute(&w.gov, 2026, &attested)),
        Status::HashMismatch
    );

    // UNDESA submits C1's output long after the deadline: shown, flagged late, never dropped.
    let undesa = 2;
    w.op(undesa, OpKind::JoinTeam { team: w.team("C1") });
    let d = w.op(
        undesa,
        OpKind::CreateDoc {
            kind: DocKind::OutputDraft {
                team: w.team("C1"),
                year: 2026,
            },
        },
    );
    let heads = w.gov.heads();
    let (fed, c1_team) = (w.federation, w.team("C1"));
    let late = w.orgs[undesa].sign(
        Some(fed),
        &heads,
        OpKind::SubmitOutput {
            team: c1_team,
            year: 2026,
            doc: DocId(d.id().0),
            attestation: Attestation {
                heads: vec![],
                content_hash: Hash32([1; 32]),
            },
        },
        1_900_000_000_000,
    );
    w.gov.insert(late.verify().unwrap()).unwrap();
    let v = StocktakeView::compute(&w.gov, 2026, &attested);
    let c1 = v.teams.iter().find(|t| t.code.as_str() == "C1").unwrap();
    assert!(c1.output.submission.as_ref().unwrap().late);
    assert_eq!(v.summary.outputs_late, 1);
}

#[test]
fn concurrent_submissions_are_contested_not_silently_resolved() {
    let Cycle {
        mut w, attested, ..
    } = annual_cycle();
    // A second Kenyan government body (a ministry) reports for the same country on a concurrent branch.
    let ministry = w.add_org("Kenya Ministry of ICT", "government", Some("KE"));
    w.admit(ministry);
    let ke = Country::new("KE").unwrap();
    let doc = w.op(
        ministry,
        OpKind::CreateDoc {
            kind: DocKind::NationalReport {
                country: ke,
                year: 2026,
            },
        },
    );
    let kenya = 4;
    // Kenya's own report (submitted in the cycle) is superseded by nothing; the ministry's is concurrent with a
    // second Kenyan submission made on a branch that does not see it.
    let fork = w.gov.heads();
    let kenya_doc = w
        .gov
        .submissions()
        .iter()
        .find(|s| s.author == w.id(kenya))
        .unwrap()
        .doc;
    let att = |b: u8| Attestation {
        heads: vec![Hash32([b; 32])],
        content_hash: Hash32([b; 32]),
    };
    let a = w.op_at(
        ministry,
        &fork,
        OpKind::SubmitNationalReport {
            country: ke,
            year: 2026,
            doc: DocId(doc.id().0),
            attestation: att(30),
        },
    );
    let b = w.op_at(
        kenya,
        &fork,
        OpKind::SubmitNationalReport {
            country: ke,
            year: 2026,
            doc: kenya_doc,
            attestation: att(31),
        },
    );
    let v = StocktakeView::compute(&w.gov, 2026, &attested);
    let ke_view = &v.national_reports[0];
    assert_eq!(ke_view.status, Status::Contested);
    let shown = ke_view.submission.op;
    let other = if shown == a.id() { b.id() } else { a.id() };
    assert_eq!(shown, a.id().min(b.id()), "the lower OpId is shown");
    assert_eq!(ke_view.submission.contested_with, vec![other]);
}

#[test]
fn canonical_json_is_byte_stable_across_delivery_orders() {
    let Cycle { w, attested, .. } = annual_cycle();
    let bytes = StocktakeView::compute(&w.gov, 2026, &attested).to_canonical_json();
    assert_eq!(
        bytes,
        StocktakeView::compute(&w.gov, 2026, &attested).to_canonical_json()
    );
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    for _ in 0..5 {
        let mut ops = w.log[1..].to_vec();
        ops.shuffle(&mut rng);
        let mut g = Governance::new(w.log[0].clone().verify().unwrap()).unwrap();
        deliver_all(&mut g, ops);
        assert_eq!(
            StocktakeView::compute(&g, 2026, &attested).to_canonical_json(),
            bytes
        );
    }
    let text = String::from_utf8(bytes).unwrap();
    assert!(text.starts_with("{\"format\":\"wsis-stocktake/1\""));
    assert!(text.ends_with("}\n"));
}

#[test]
fn three_concurrent_reports_give_the_same_bytes_in_every_order() {
    let Cycle {
        mut w, attested, ..
    } = annual_cycle();
    let ke = Country::new("KE").unwrap();
    let bodies: Vec<usize> = (0..3)
        .map(|i| w.add_org(&format!("Kenya body {i}"), "government", Some("KE")))
        .collect();
    for &b in &bodies {
        w.admit(b);
    }
    let mut docs = Vec::new();
    for &b in &bodies {
        docs.push(w.op(
            b,
            OpKind::CreateDoc {
                kind: DocKind::NationalReport {
                    country: ke,
                    year: 2026,
                },
            },
        ));
    }
    let fork = w.gov.heads();
    for (i, &b) in bodies.iter().enumerate() {
        let att = Attestation {
            heads: vec![Hash32([40 + i as u8; 32])],
            content_hash: Hash32([40 + i as u8; 32]),
        };
        w.op_at(
            b,
            &fork,
            OpKind::SubmitNationalReport {
                country: ke,
                year: 2026,
                doc: DocId(docs[i].id().0),
                attestation: att,
            },
        );
    }
    let bytes = StocktakeView::compute(&w.gov, 2026, &attested).to_canonical_json();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    for _ in 0..6 {
        let mut ops = w.log[1..].to_vec();
        ops.shuffle(&mut rng);
        let mut g = Governance::new(w.log[0].clone().verify().unwrap()).unwrap();
        deliver_all(&mut g, ops);
        assert_eq!(
            StocktakeView::compute(&g, 2026, &attested).to_canonical_json(),
            bytes
        );
    }
}

/// Inserts `ops` in this order; an op refused as transient (its author's inception not here yet: ops of unknown
/// authors do not park) is delivered again, as the next sync would, until nothing more enters.
fn deliver_all(g: &mut Governance, ops: Vec<wsis_protocol::op::SignedOp>) {
    let mut pending = ops;
    loop {
        let before = pending.len();
        pending.retain(
            |op| matches!(g.insert(op.clone().verify().unwrap()), Err(e) if e.is_transient()),
        );
        if pending.is_empty() || pending.len() == before {
            return;
        }
    }
}
