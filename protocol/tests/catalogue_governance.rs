//! The trust model's attack catalogue, governance layer: cases 7–11, 15–28 (12–14 are change-envelope cases,
//! tested in `protocol/src/envelope.rs` and the node). One named test per case.
//!
//! Over 800 lines on purpose: the catalogue is read case by case against `../shared/design/trust-model.md`, and
//! every case builds on the same small federation helpers; one file keeps the numbering in one place.
#![allow(clippy::unwrap_used)]

use wsis_protocol::fixture::World;
use wsis_protocol::gov::{Governance, InsertError, Inserted, Invalid, WriteDenied};
use wsis_protocol::ids::Hash32;
use wsis_protocol::ids::{DocId, FederationId, OpId};
use wsis_protocol::op::{
    Attestation, ChairRole, Country, DocKind, MeetingKind, MotionKind, OpKind, RevocableRole,
    SignedOp,
};

fn fresh_replica(w: &World) -> Governance {
    Governance::new(w.log[0].clone().verify().unwrap()).unwrap()
}

/// Delivers `ops` in this order; an op refused as transient (its author's inception not here yet: not parked) is
/// delivered again, as the next sync would, until nothing more enters.
fn replay(w: &World, ops: &[SignedOp]) -> Governance {
    let mut g = fresh_replica(w);
    let mut pending: Vec<&SignedOp> = ops.iter().collect();
    loop {
        let before = pending.len();
        pending.retain(
            |op| matches!(g.insert((*op).clone().verify().unwrap()), Err(e) if e.is_transient()),
        );
        if pending.is_empty() || pending.len() == before {
            return g;
        }
    }
}

fn att() -> Attestation {
    Attestation {
        heads: vec![Hash32([1; 32])],
        content_hash: Hash32([2; 32]),
    }
}

/// A world with an admitted NGO (2), a government (3, Kenya), a company (4); the NGO coordinates C2.
fn base() -> (World, usize, usize, usize) {
    let mut w = World::wsis();
    let ngo = w.add_org("APC", "civil-society", None);
    let gov = w.add_org("Kenya", "government", Some("KE"));
    let co = w.add_org("Acme", "private-sector", None);
    for o in [ngo, gov, co] {
        w.admit(o);
    }
    w.recommend_and_nominate("C2", ngo, &[ngo, gov, co]);
    assert_eq!(w.gov.coordinator(&w.team("C2")).unwrap().org, w.id(ngo));
    (w, ngo, gov, co)
}

#[test]
fn case_07_missing_parents_are_parked_bounded_and_released() {
    let (w, ..) = base();
    let mut g = fresh_replica(&w);
    // Deliver everything newest first: all but the genesis' children park, except ops of authors whose inception
    // has not arrived, which are refused without parking and delivered again (as the next sync would).
    let ops: Vec<SignedOp> = w.log[1..].to_vec();
    let mut pending: Vec<&SignedOp> = ops.iter().rev().collect();
    while !pending.is_empty() {
        pending.retain(|op| match g.insert((*op).clone().verify().unwrap()) {
            Ok(r) => {
                assert!(matches!(
                    r,
                    Inserted::Parked { .. }
                        | Inserted::Applied { .. }
                        | Inserted::Duplicate
                        | Inserted::Pending
                ));
                false
            }
            Err(e) => {
                // Its author's inception is not here yet (unknown, or not admitted here yet): transient.
                assert!(
                    matches!(e, InsertError::UnknownAuthor | InsertError::NotAdmitted),
                    "{e:?}"
                );
                true
            }
        });
    }
    assert_eq!(
        g.parked_len(),
        0,
        "the last delivered op unblocked the whole chain"
    );
    assert_eq!(g.digest(), w.gov.digest());

    // Missing parents are reported so they can be fetched by id.
    let mut g = fresh_replica(&w);
    let last = ops.last().unwrap();
    assert!(matches!(
        g.insert(last.clone().verify().unwrap()).unwrap(),
        Inserted::Parked { .. }
    ));
    assert_eq!(g.missing(), last.parents().to_vec());
}

#[test]
fn case_08_orphan_flood_past_the_quota_is_refused() {
    let mut w = World::wsis();
    let mut g = fresh_replica(&w);
    let mut refused = 0;
    for i in 0..(wsis_protocol::limits::MAX_PARKED_OPS + 5) {
        // Each op cites a parent nobody has.
        let mut fake = [0u8; 32];
        fake[..8].copy_from_slice(&(i as u64).to_be_bytes());
        let op = w.sign_at(0, &[OpId(fake)], OpKind::JoinTeam { team: w.team("C1") });
        match g.insert(op.verify().unwrap()) {
            Ok(Inserted::Parked { .. }) => {}
            Err(InsertError::ParkingFull) => refused += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(refused, 5);
    assert_eq!(g.parked_len(), wsis_protocol::limits::MAX_PARKED_OPS);
    assert_eq!(g.len(), 1, "nothing parked entered the DAG");
}

#[test]
fn case_09_parents_or_references_from_another_federation() {
    let (mut w, ngo, gov, _) = base();
    let other = World::with_teams(wsis_protocol::reference::wsis_teams()[..3].to_vec());
    assert_ne!(other.federation, w.federation);
    // An op signed for another federation is refused.
    let foreign = {
        let mut o = wsis_protocol::fixture::Org::new(999, "X", "academia".parse().unwrap(), None);
        o.sign(
            Some(other.federation),
            &[other.log[0].id()],
            OpKind::OrgInception(o.inception.clone()),
            0,
        )
    };
    assert!(matches!(
        w.gov.insert(foreign.verify().unwrap()),
        Err(InsertError::WrongFederation { .. })
    ));
    // An op of ours citing the other federation's genesis as parent waits forever, never applied.
    let cross = w.sign_at(
        ngo,
        &[other.log[0].id()],
        OpKind::JoinTeam { team: w.team("C3") },
    );
    assert!(matches!(
        w.gov.insert(cross.verify().unwrap()).unwrap(),
        Inserted::Parked { .. }
    ));
    // An Attend naming a meeting of the other federation has no effect.
    let ghost_meeting = other.log[0].id();
    let attend = w.op(
        gov,
        OpKind::Attend {
            meeting: ghost_meeting,
        },
    );
    assert_eq!(
        w.gov.validity(&attend.id()),
        Some(Err(Invalid::UnknownReference))
    );
}

#[test]
fn case_10_the_same_op_twice_is_deduplicated() {
    let (mut w, ngo, ..) = base();
    let op = w.op(ngo, OpKind::JoinTeam { team: w.team("C3") });
    let before = (w.gov.len(), w.gov.digest());
    assert_eq!(
        w.gov.insert(op.clone().verify().unwrap()).unwrap(),
        Inserted::Duplicate
    );
    assert_eq!(w.gov.insert_bytes(op.bytes()).unwrap(), Inserted::Duplicate);
    assert_eq!((w.gov.len(), w.gov.digest()), before);
}

#[test]
fn case_11_equivocation_in_both_orders_gives_the_same_result() {
    let (mut w, ngo, ..) = base();
    let heads = w.gov.heads();
    let seq = w.orgs[ngo].next_seq;
    let a = w.sign_at(ngo, &heads, OpKind::JoinTeam { team: w.team("C3") });
    w.orgs[ngo].next_seq = seq; // the same seq again: equivocation
    let b = w.sign_at(ngo, &heads, OpKind::JoinTeam { team: w.team("C4") });
    let prefix: Vec<SignedOp> = w.log[1..w.log.len() - 2].to_vec();
    let mut one = replay(&w, &prefix);
    let mut two = replay(&w, &prefix);
    one.insert(a.clone().verify().unwrap()).unwrap();
    one.insert(b.clone().verify().unwrap()).unwrap();
    two.insert(b.clone().verify().unwrap()).unwrap();
    two.insert(a.clone().verify().unwrap()).unwrap();
    assert_eq!(one.digest(), two.digest());
    for g in [&one, &two] {
        assert_eq!(g.validity(&a.id()), Some(Err(Invalid::Equivocation)));
        assert_eq!(g.validity(&b.id()), Some(Err(Invalid::Equivocation)));
        assert_eq!(g.equivocations().len(), 1);
        assert!(g.team_members(&w.team("C3")).is_empty());
    }
    // A node that only ever saw `a` learns of `b` through an Evidence op, with the same outcome for `a`.
    let mut three = replay(&w, &prefix);
    three.insert(a.clone().verify().unwrap()).unwrap();
    assert_eq!(three.validity(&a.id()), Some(Ok(())));
    let heads = three.heads();
    let mut reporter = wsis_protocol::fixture::Org::new(
        2,
        "UNESCO",
        "international-organisation".parse().unwrap(),
        None,
    );
    reporter.next_seq = w.orgs[1].next_seq;
    let ev = reporter.sign(
        Some(w.federation),
        &heads,
        OpKind::Evidence {
            first: Box::new(a.clone()),
            second: Box::new(b.clone()),
        },
        0,
    );
    three.insert(ev.clone().verify().unwrap()).unwrap();
    assert_eq!(three.validity(&ev.id()), Some(Ok(())));
    assert_eq!(three.validity(&a.id()), Some(Err(Invalid::Equivocation)));
}

#[test]
fn case_15_timestamps_far_in_the_future_or_past_change_nothing() {
    // The same story told with absurd clocks gives the same validity for every op.
    fn story(clock: impl Fn(u64) -> u64) -> Vec<Result<(), String>> {
        let mut w = World::wsis();
        let ngo = w.add_org("APC", "civil-society", None);
        let mut out = Vec::new();
        let steps = [
            OpKind::JoinTeam { team: w.team("C1") },
            OpKind::Admit { org: w.id(ngo) },
            OpKind::JoinTeam { team: w.team("C2") },
        ];
        for (i, kind) in steps.into_iter().enumerate() {
            let author = if matches!(kind, OpKind::Admit { .. }) {
                0
            } else {
                ngo
            };
            let parents = w.gov.parents_for(&w.id(author), &kind);
            let op = w.orgs[author].sign(Some(w.federation), &parents, kind, clock(i as u64));
            match w.gov.insert(op.clone().verify().unwrap()) {
                Ok(_) => out.push(
                    w.gov
                        .validity(&op.id())
                        .unwrap()
                        .map_err(|e| e.code().to_string()),
                ),
                Err(e) => {
                    // Refused before its author is admitted: its sequence number is free again.
                    w.orgs[author].next_seq -= 1;
                    out.push(Err(e.code().to_string()));
                }
            }
        }
        out
    }
    let normal = story(|i| 1_700_000_000_000 + i * 1000);
    assert_eq!(normal, vec![Err("not-admitted".into()), Ok(()), Ok(())]);
    assert_eq!(
        story(|i| 7_258_118_400_000 - i),
        normal,
        "far future, running backwards"
    );
    assert_eq!(story(|_| 0), normal, "the epoch");
}

#[test]
fn case_16_a_non_coordinator_submits_an_output() {
    let (mut w, ngo, _, co) = base();
    w.op(co, OpKind::JoinTeam { team: w.team("C2") });
    let draft = w.op(
        co,
        OpKind::CreateDoc {
            kind: DocKind::OutputDraft {
                team: w.team("C2"),
                year: 2026,
            },
        },
    );
    let sub = OpKind::SubmitOutput {
        team: w.team("C2"),
        year: 2026,
        doc: DocId(draft.id().0),
        attestation: att(),
    };
    let bad = w.op(co, sub.clone());
    assert_eq!(
        w.gov.validity(&bad.id()),
        Some(Err(Invalid::NotCoordinator))
    );
    let good = w.op(ngo, sub);
    assert_eq!(w.gov.validity(&good.id()), Some(Ok(())));
    assert_eq!(w.gov.submissions().len(), 1);
}

#[test]
fn case_17_a_non_member_writes_a_team_document() {
    let (mut w, ngo, gov, _) = base();
    w.op(ngo, OpKind::JoinTeam { team: w.team("C2") });
    let draft = w.op(
        ngo,
        OpKind::CreateDoc {
            kind: DocKind::OutputDraft {
                team: w.team("C2"),
                year: 2026,
            },
        },
    );
    let doc = DocId(draft.id().0);
    let heads = w.gov.heads();
    assert_eq!(w.gov.may_write(&doc, &w.id(ngo), &heads), Ok(()));
    assert_eq!(
        w.gov.may_write(&doc, &w.id(gov), &heads),
        Err(WriteDenied::NotTeamMember)
    );
    let outsider = w.add_org("Unadmitted", "academia", None);
    let heads = w.gov.heads();
    assert_eq!(
        w.gov.may_write(&doc, &w.id(outsider), &heads),
        Err(WriteDenied::NotMember)
    );
    // Citing heads from before the document existed is refused too.
    assert_eq!(
        w.gov.may_write(&doc, &w.id(ngo), &[w.log[0].id()]),
        Err(WriteDenied::UnknownDocument)
    );
}

#[test]
fn case_18_a_non_secretariat_admits_an_org() {
    let (mut w, ngo, ..) = base();
    let x = w.add_org("Newcomer", "academia", None);
    let admit = w.op(ngo, OpKind::Admit { org: w.id(x) });
    // It names x's inception, which waits outside the DAG; only a secretariat's Admit carries it in, so this one
    // waits for it in the parking area (and expires there), and x stays outside.
    assert!(w.gov.is_parked(&admit.id()));
    assert_eq!(w.gov.validity(&admit.id()), None);
    assert!(!w.gov.is_member(&w.id(x)));
    assert!(
        w.gov.org(&w.id(x)).is_some_and(|o| !o.member),
        "still asking"
    );
}

#[test]
fn case_19_a_government_reports_for_another_country() {
    let (mut w, _, gov, co) = base();
    let ke = Country::new("KE").unwrap();
    let br = Country::new("BR").unwrap();
    let bad_doc = w.op(
        gov,
        OpKind::CreateDoc {
            kind: DocKind::NationalReport {
                country: br,
                year: 2026,
            },
        },
    );
    assert_eq!(
        w.gov.validity(&bad_doc.id()),
        Some(Err(Invalid::NotGovernment))
    );
    let doc = w.op(
        gov,
        OpKind::CreateDoc {
            kind: DocKind::NationalReport {
                country: ke,
                year: 2026,
            },
        },
    );
    assert_eq!(w.gov.validity(&doc.id()), Some(Ok(())));
    let bad = w.op(
        gov,
        OpKind::SubmitNationalReport {
            country: br,
            year: 2026,
            doc: DocId(doc.id().0),
            attestation: att(),
        },
    );
    assert_eq!(w.gov.validity(&bad.id()), Some(Err(Invalid::NotGovernment)));
    let company = w.op(
        co,
        OpKind::SubmitNationalReport {
            country: ke,
            year: 2026,
            doc: DocId(doc.id().0),
            attestation: att(),
        },
    );
    assert_eq!(
        w.gov.validity(&company.id()),
        Some(Err(Invalid::NotGovernment))
    );
    let good = w.op(
        gov,
        OpKind::SubmitNationalReport {
            country: ke,
            year: 2026,
            doc: DocId(doc.id().0),
            attestation: att(),
        },
    );
    assert_eq!(w.gov.validity(&good.id()), Some(Ok(())));
}

fn output_draft(w: &mut World, coordinator: usize) -> DocId {
    w.op(coordinator, OpKind::JoinTeam { team: w.team("C2") });
    let d = w.op(
        coordinator,
        OpKind::CreateDoc {
            kind: DocKind::OutputDraft {
                team: w.team("C2"),
                year: 2026,
            },
        },
    );
    DocId(d.id().0)
}

#[test]
fn case_20_a_revoked_coordinator_submits_after_the_revocation() {
    let (mut w, ngo, ..) = base();
    let doc = output_draft(&mut w, ngo);
    w.op(
        0,
        OpKind::RevokeRole {
            role: RevocableRole::Coordinator(w.team("C2")),
            org: w.id(ngo),
        },
    );
    let sub = w.op(
        ngo,
        OpKind::SubmitOutput {
            team: w.team("C2"),
            year: 2026,
            doc,
            attestation: att(),
        },
    );
    assert_eq!(
        w.gov.validity(&sub.id()),
        Some(Err(Invalid::NotCoordinator))
    );
    assert!(w.gov.coordinator(&w.team("C2")).is_none());
}

#[test]
fn case_21_revocation_concurrent_with_a_non_finalised_submission_invalidates_it() {
    let (mut w, ngo, ..) = base();
    let doc = output_draft(&mut w, ngo);
    let fork = w.gov.heads();
    let sub = w.op_at(
        ngo,
        &fork,
        OpKind::SubmitOutput {
            team: w.team("C2"),
            year: 2026,
            doc,
            attestation: att(),
        },
    );
    assert_eq!(w.gov.validity(&sub.id()), Some(Ok(())));
    w.op_at(
        0,
        &fork,
        OpKind::RevokeRole {
            role: RevocableRole::Coordinator(w.team("C2")),
            org: w.id(ngo),
        },
    );
    assert_eq!(
        w.gov.validity(&sub.id()),
        Some(Err(Invalid::RevokedConcurrently))
    );
    // Delivered the other way round, the outcome is the same.
    let g = replay(&w, &{
        let mut v = w.log[1..].to_vec();
        let n = v.len();
        v.swap(n - 1, n - 2);
        v
    });
    assert_eq!(
        g.validity(&sub.id()),
        Some(Err(Invalid::RevokedConcurrently))
    );
    assert_eq!(g.digest(), w.gov.digest());
}

#[test]
fn case_22_revocation_concurrent_with_a_finalised_submission_leaves_it_valid() {
    let (mut w, ngo, gov, co) = base();
    // Two more coordinators so the coordinators' meeting has an electorate of three.
    w.recommend_and_nominate("C3", gov, &[ngo, gov, co]);
    w.recommend_and_nominate("C4", co, &[ngo, gov, co]);
    let doc = output_draft(&mut w, ngo);
    let fork = w.gov.heads();
    let sub = w.op_at(
        ngo,
        &fork,
        OpKind::SubmitOutput {
            team: w.team("C2"),
            year: 2026,
            doc,
            attestation: att(),
        },
    );
    let meeting = w.coordinators_meeting();
    w.pass_motion(
        &meeting,
        MotionKind::Checkpoint {
            heads: vec![sub.id()],
        },
        &[ngo, gov],
    );
    assert!(w.gov.is_finalised(&sub.id()));
    // A back-dated revocation on the old branch, by the other secretariat organisation (ITU could not back-date:
    // the chain rule puts its own later ops in the history of anything it signs).
    w.op_at(
        1,
        &fork,
        OpKind::RevokeRole {
            role: RevocableRole::Coordinator(w.team("C2")),
            org: w.id(ngo),
        },
    );
    assert_eq!(
        w.gov.validity(&sub.id()),
        Some(Ok(())),
        "finalised: the late revocation cannot touch it"
    );
    assert!(
        w.gov.coordinator(&w.team("C2")).is_none(),
        "but the role is gone from now on"
    );
    assert_eq!(replay(&w, &w.log[1..]).digest(), w.gov.digest());
}

#[test]
fn case_23_concurrent_grant_and_revoke_revoke_wins() {
    let mut w = World::wsis();
    let x = w.add_org("Newcomer", "academia", None);
    // The grant names x's inception (waiting outside the DAG), so the fork includes it.
    let fork = w.gov.parents_for(&w.id(0), &OpKind::Admit { org: w.id(x) });
    let grant = w.op_at(0, &fork, OpKind::Admit { org: w.id(x) });
    let revoke = w.op_at(
        1,
        &fork,
        OpKind::RevokeRole {
            role: RevocableRole::Member,
            org: w.id(x),
        },
    );
    assert_eq!(w.gov.validity(&grant.id()), Some(Ok(())));
    assert_eq!(w.gov.validity(&revoke.id()), Some(Ok(())));
    assert!(!w.gov.is_member(&w.id(x)));
    let join = w.op(x, OpKind::JoinTeam { team: w.team("C1") });
    assert_eq!(w.gov.validity(&join.id()), Some(Err(Invalid::NotMember)));
    // Both delivery orders agree.
    let mut ops = w.log[1..].to_vec();
    let n = ops.len();
    ops.swap(n - 2, n - 3);
    assert_eq!(replay(&w, &ops).digest(), w.gov.digest());
}

#[test]
fn case_24_remove_and_re_add_concurrent_with_a_remove_stays_removed() {
    let mut w = World::wsis();
    let x = w.add_org("Newcomer", "academia", None);
    w.admit(x);
    let fork = w.gov.heads();
    // Branch A: ITU removes and re-admits. Branch B: UNESCO removes.
    let r1 = w.op_at(
        0,
        &fork,
        OpKind::RevokeRole {
            role: RevocableRole::Member,
            org: w.id(x),
        },
    );
    let readd = w.op_at(0, &[r1.id()], OpKind::Admit { org: w.id(x) });
    let r2 = w.op_at(
        1,
        &fork,
        OpKind::RevokeRole {
            role: RevocableRole::Member,
            org: w.id(x),
        },
    );
    assert!(!w.gov.is_member(&w.id(x)), "stays removed");
    // Without the concurrent removal, the re-admission would stand.
    let without: Vec<SignedOp> = w.log[1..]
        .iter()
        .filter(|o| o.id() != r2.id())
        .cloned()
        .collect();
    let g = replay(&w, &without);
    assert!(g.is_member(&w.id(x)));
    let _ = readd;
    // A re-admission that saw both removals stands.
    let after = w.op(0, OpKind::Admit { org: w.id(x) });
    assert_eq!(w.gov.validity(&after.id()), Some(Ok(())));
    assert!(w.gov.is_member(&w.id(x)));
}

#[test]
fn case_25_two_concurrent_chair_elections_are_contested_and_deterministic() {
    let (mut w, ngo, gov, co) = base();
    w.recommend_and_nominate("C3", gov, &[ngo, gov, co]);
    w.recommend_and_nominate("C4", co, &[ngo, gov, co]);
    let meeting = w.coordinators_meeting();
    let fork = w.gov.heads();
    let m1 = w.op_at(
        0,
        &fork,
        OpKind::Motion {
            meeting: meeting.id(),
            motion: MotionKind::Elect {
                role: ChairRole::Chair,
                org: w.id(gov),
            },
        },
    );
    let m2 = w.op_at(
        1,
        &fork,
        OpKind::Motion {
            meeting: meeting.id(),
            motion: MotionKind::Elect {
                role: ChairRole::Chair,
                org: w.id(co),
            },
        },
    );
    for v in [ngo, gov, co] {
        w.op_at(
            v,
            &[m1.id()],
            OpKind::Ballot {
                motion: m1.id(),
                yes: true,
            },
        );
    }
    for v in [ngo, gov] {
        // Each voter's ballot on m2 cites its own ballot on m1 too (the chain rule).
        let heads = w.gov.heads();
        w.op_at(
            v,
            &heads,
            OpKind::Ballot {
                motion: m2.id(),
                yes: true,
            },
        );
    }
    let bench = w.gov.chair();
    let chair = bench.chair.expect("someone is Chair");
    assert_eq!(chair.org, w.id(gov), "more ballots wins");
    assert_eq!(chair.contested_with, vec![w.id(co)]);
    // Any delivery order gives the same Chair.
    let mut ops = w.log[1..].to_vec();
    ops.reverse();
    let g = replay(&w, &ops);
    assert_eq!(g.chair(), w.gov.chair());
    assert_eq!(g.digest(), w.gov.digest());
}

#[test]
fn case_26_a_ballot_from_outside_the_electorate() {
    let (mut w, ngo, gov, co) = base();
    let outsider = w.add_org("Late", "academia", None);
    w.admit(outsider);
    let meeting = w.op(
        0,
        OpKind::Convene {
            meeting: MeetingKind::Recommendation,
            year: 2026,
            title: "R".into(),
        },
    );
    w.op(
        ngo,
        OpKind::Attend {
            meeting: meeting.id(),
        },
    );
    let motion = w.op(
        0,
        OpKind::Motion {
            meeting: meeting.id(),
            motion: MotionKind::Recommend {
                team: w.team("C5"),
                org: w.id(co),
            },
        },
    );
    // Attending after the motion was tabled does not put one in its electorate.
    w.op(
        gov,
        OpKind::Attend {
            meeting: meeting.id(),
        },
    );
    let late = w.op(
        gov,
        OpKind::Ballot {
            motion: motion.id(),
            yes: true,
        },
    );
    let outside = w.op(
        outsider,
        OpKind::Ballot {
            motion: motion.id(),
            yes: true,
        },
    );
    assert_eq!(
        w.gov.validity(&late.id()),
        Some(Err(Invalid::NotInElectorate))
    );
    assert_eq!(
        w.gov.validity(&outside.id()),
        Some(Err(Invalid::NotInElectorate))
    );
    assert_eq!(w.gov.motion(&motion.id()).unwrap().yes, 0);
}

#[test]
fn case_27_double_voting() {
    let (mut w, ngo, gov, co) = base();
    let meeting = w.op(
        0,
        OpKind::Convene {
            meeting: MeetingKind::Recommendation,
            year: 2026,
            title: "R".into(),
        },
    );
    for v in [ngo, gov, co] {
        w.op(
            v,
            OpKind::Attend {
                meeting: meeting.id(),
            },
        );
    }
    let motion = w.op(
        0,
        OpKind::Motion {
            meeting: meeting.id(),
            motion: MotionKind::Recommend {
                team: w.team("C5"),
                org: w.id(co),
            },
        },
    );
    w.op(
        ngo,
        OpKind::Ballot {
            motion: motion.id(),
            yes: true,
        },
    );
    let again = w.op(
        ngo,
        OpKind::Ballot {
            motion: motion.id(),
            yes: true,
        },
    );
    assert_eq!(w.gov.validity(&again.id()), Some(Err(Invalid::DoubleVote)));
    let info = w.gov.motion(&motion.id()).unwrap();
    assert_eq!(
        (info.yes, info.passed),
        (1, false),
        "one vote of three is no majority"
    );
}

#[test]
fn case_28_cascade_everything_that_depends_on_an_invalid_admission_is_invalid() {
    let mut w = World::wsis();
    let ngo = w.add_org("APC", "civil-society", None);
    let x = w.add_org("Sham", "private-sector", None);
    w.admit(ngo);
    // The NGO (not secretariat) "admits" x; everything x does on that basis fails.
    let bad_admit = w.op(ngo, OpKind::Admit { org: w.id(x) });
    let join = w.op(x, OpKind::JoinTeam { team: w.team("C1") });
    let doc = w.op(
        x,
        OpKind::CreateDoc {
            kind: DocKind::OutputDraft {
                team: w.team("C1"),
                year: 2026,
            },
        },
    );
    let meeting = w.op(
        0,
        OpKind::Convene {
            meeting: MeetingKind::Recommendation,
            year: 2026,
            title: "R".into(),
        },
    );
    let attend = w.op(
        x,
        OpKind::Attend {
            meeting: meeting.id(),
        },
    );
    // The sham admission cannot carry x's inception in (only a secretariat's can): it waits, and nothing x signs
    // enters the DAG at all (refused as not admitted, transient: it would enter after a real admission).
    assert!(w.gov.is_parked(&bad_admit.id()));
    for op in [&join, &doc, &attend] {
        assert!(!w.gov.contains(&op.id()) && !w.gov.is_pending(&op.id()));
    }
    // And a ballot by x on a motion there: x never made it into the electorate.
    let motion = w.op(
        0,
        OpKind::Motion {
            meeting: meeting.id(),
            motion: MotionKind::Recommend {
                team: w.team("C1"),
                org: w.id(ngo),
            },
        },
    );
    let ballot = w.op(
        x,
        OpKind::Ballot {
            motion: motion.id(),
            yes: true,
        },
    );
    assert!(!w.gov.contains(&ballot.id()));
    // The document x "created" cannot be written to.
    let heads = w.gov.heads();
    assert_eq!(
        w.gov.may_write(&DocId(doc.id().0), &w.id(x), &heads),
        Err(WriteDenied::UnknownDocument)
    );
    let _ = FederationId([0; 32]);
}

// ---------------------------------------------------------------------------------------------------------------
// Regressions found in review: finality against equivocation, equivocating revocations, sync of twins, roles
// that outlive accreditation.

/// A world where ITU, APC and Kenya coordinate C2, C3, C4 (an electorate of three for the coordinators' meeting).
fn three_coordinators() -> (World, usize, usize, usize) {
    let (mut w, ngo, gov, co) = base();
    w.recommend_and_nominate("C3", gov, &[ngo, gov, co]);
    w.recommend_and_nominate("C4", co, &[ngo, gov, co]);
    (w, ngo, gov, co)
}

#[test]
fn a_finalised_op_survives_its_authors_later_equivocation() {
    let (mut w, ngo, gov, co) = three_coordinators();
    let before = w.gov.heads();
    let seq = w.orgs[co].next_seq;
    let a = w.op_at(co, &before, OpKind::JoinTeam { team: w.team("C5") });
    let meeting = w.coordinators_meeting();
    w.pass_motion(
        &meeting,
        MotionKind::Checkpoint {
            heads: vec![a.id()],
        },
        &[ngo, gov],
    );
    assert!(w.gov.is_finalised(&a.id()));
    // The author signs a twin of the finalised op, on the same parents.
    w.orgs[co].next_seq = seq;
    let twin = w.sign_at(co, &before, OpKind::LeaveTeam { team: w.team("C5") });
    w.gov.insert(twin.clone().verify().unwrap()).unwrap();
    assert_eq!(
        w.gov.validity(&a.id()),
        Some(Ok(())),
        "finalised: the twin cannot undo it"
    );
    assert_eq!(w.gov.validity(&twin.id()), Some(Err(Invalid::Equivocation)));
    assert_eq!(
        w.gov.equivocations().len(),
        1,
        "the equivocation is still recorded as evidence"
    );
    assert_eq!(replay(&w, &w.log[1..]).digest(), w.gov.digest());
}

#[test]
fn an_equivocating_revocation_revokes_nothing() {
    let (mut w, ngo, ..) = base();
    let fork = w.gov.heads();
    let seq = w.orgs[1].next_seq;
    let r = w.op_at(
        1,
        &fork,
        OpKind::RevokeRole {
            role: RevocableRole::Member,
            org: w.id(ngo),
        },
    );
    w.orgs[1].next_seq = seq;
    let twin = w.op_at(1, &fork, OpKind::JoinTeam { team: w.team("C1") });
    assert_eq!(w.gov.validity(&r.id()), Some(Err(Invalid::Equivocation)));
    assert_eq!(w.gov.validity(&twin.id()), Some(Err(Invalid::Equivocation)));
    assert!(
        w.gov.is_member(&w.id(ngo)),
        "an excluded revocation has no effect"
    );
}

#[test]
fn sync_sends_both_equivocating_twins() {
    let (mut w, ngo, ..) = base();
    let heads = w.gov.heads();
    let seq = w.orgs[ngo].next_seq;
    let _a = w.op_at(ngo, &heads, OpKind::JoinTeam { team: w.team("C3") });
    // A peer that has `a` as a head: the clock says it has (ngo, seq) already.
    let their_heads = w.gov.heads();
    w.orgs[ngo].next_seq = seq;
    let b = w.op_at(ngo, &heads, OpKind::JoinTeam { team: w.team("C4") });
    let missing: Vec<OpId> = w
        .gov
        .ops_missing_from(&their_heads)
        .iter()
        .map(|o| o.id())
        .collect();
    assert!(missing.contains(&b.id()), "the twin the peer lacks is sent");
}

#[test]
fn an_expelled_coordinator_holds_no_role() {
    let (mut w, ngo, ..) = base();
    let doc = output_draft(&mut w, ngo);
    w.op(
        0,
        OpKind::RevokeRole {
            role: RevocableRole::Member,
            org: w.id(ngo),
        },
    );
    let sub = w.op(
        ngo,
        OpKind::SubmitOutput {
            team: w.team("C2"),
            year: 2026,
            doc,
            attestation: att(),
        },
    );
    assert_ne!(w.gov.validity(&sub.id()), Some(Ok(())));
    assert!(w.gov.coordinator(&w.team("C2")).is_none());
    let meeting = w.coordinators_meeting();
    assert!(!w
        .gov
        .coordinators_meeting_electorate_for_test(&meeting.id())
        .contains(&w.id(ngo)));
}
