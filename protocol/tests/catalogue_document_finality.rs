//! Attack catalogue, document authorisation under governance changes, protocol layer: issue 11 defect 5 (one
//! secretariat could erase finalised content by revoking its author) and issue 14 defect 7 (an organisation that
//! left a team kept writing its draft by citing heads from before it left). The engine's side, where the
//! documents themselves are kept or lose changes, is `node/tests/document_finality.rs`.
#![allow(clippy::unwrap_used)]

mod bundle_fixture;

use bundle_fixture::{build, YEAR};
use std::collections::BTreeMap;
use wsis_protocol::bundle::{self, verify};
use wsis_protocol::fixture::World;
use wsis_protocol::gov::{Governance, WriteDenied};
use wsis_protocol::ids::{DocId, Hash32, OpId};
use wsis_protocol::op::{DocKind, MeetingKind, OpKind, RevocableRole, SignedOp};

fn replay(w: &World, ops: &[&SignedOp]) -> Governance {
    let mut g = Governance::new(w.log[0].clone().verify().unwrap()).unwrap();
    for op in ops {
        let _ = g.insert((*op).clone().verify().unwrap());
    }
    g
}

fn submitted_heads(g: &Governance, op: &OpId) -> Vec<Hash32> {
    match g.get(op).map(|o| o.kind().clone()) {
        Some(OpKind::SubmitOutput { attestation, .. }) => {
            let mut h = attestation.heads;
            h.sort();
            h
        }
        other => panic!("not a submission: {other:?}"),
    }
}

/// The secretariat removes APC — the author of C2's output draft and an approver of the C2 meeting record —
/// after the year's submissions, concurrently with the closing checkpoint. Whether a replica learns of the
/// removal before the checkpoint passes or after, the attested heads stay final (the engine keeps every change in
/// their history valid, `node/tests/document_finality.rs`), and the Chair still plans, assembles and verifies
/// the year with APC's text in it.
#[test]
fn a_removal_after_attestation_leaves_the_attested_heads_final_and_the_year_assembles() {
    let mut y = build(1, true);
    let checkpoint = y.checkpoint.unwrap();
    let at = y.w.log.iter().position(|o| o.id() == checkpoint).unwrap();
    let before_checkpoint = y.w.log[at].parents().to_vec();
    // UNESCO (secretariat) has signed nothing since its JoinTeam, long before: the revocation can cite the
    // heads the checkpoint motion was proposed on, and is concurrent with it.
    let revocation = y.w.op_at(
        1,
        &before_checkpoint,
        OpKind::RevokeRole {
            role: RevocableRole::Member,
            org: y.w.id(y.apc),
        },
    );
    assert!(
        y.w.gov.invalid_ops().is_empty(),
        "{:?}",
        y.w.gov.invalid_ops()
    );

    // Delivery orders: the revocation last (after the checkpoint), or right before the checkpoint motion.
    let log: Vec<&SignedOp> = y.w.log.iter().collect();
    let late = replay(&y.w, &log);
    let mut early_order: Vec<&SignedOp> = log[..at].to_vec();
    early_order.push(&revocation);
    early_order.extend(log[at..].iter().filter(|o| o.id() != revocation.id()));
    let early = replay(&y.w, &early_order);
    // Before the checkpoint, the submission is not final yet.
    let not_yet = replay(&y.w, &early_order[..=at]);

    let c2_heads = submitted_heads(&late, &y.c2_submission);
    let record = {
        let mut v: Vec<Hash32> = match late
            .meetings()
            .into_iter()
            .find(|m| m.id == y.meeting)
            .and_then(|m| m.approved_record)
        {
            Some(r) => r
                .heads
                .iter()
                .map(|h| {
                    let mut b = [0u8; 32];
                    hex::decode_to_slice(h, &mut b).unwrap();
                    Hash32(b)
                })
                .collect(),
            None => panic!("the C2 meeting record is approved"),
        };
        v.sort();
        v
    };
    for g in [&late, &early] {
        assert_eq!(g.digest(), late.digest(), "one state whatever the order");
        assert!(g.is_finalised(&y.c2_submission));
        assert_eq!(g.finalised_attested_heads(&y.c2_output), c2_heads);
        assert_eq!(g.finalised_attested_heads(&DocId(y.meeting.0)), record);
        // The removal is real: APC can no longer write, at any heads.
        assert_eq!(
            g.may_write(&y.c2_output, &y.w.id(y.apc), &g.heads()),
            Err(WriteDenied::NotMember)
        );
    }
    assert!(
        not_yet.finalised_attested_heads(&y.c2_output).is_empty(),
        "an attestation no checkpoint covers protects nothing"
    );
    assert!(
        late.finalised_attested_heads(&y.unsubmitted).is_empty(),
        "a draft nobody attested has no final state"
    );

    // The Chair's tool on the replica that knows the removal: plan, assemble, verify; APC's text is bundled.
    let plan = bundle::plan(&late, YEAR, &y.w.id(y.undesa)).unwrap();
    let planned = plan.documents();
    let mut c2_planned = planned[&y.c2_output].clone();
    c2_planned.sort();
    assert_eq!(c2_planned, c2_heads);
    let docs: BTreeMap<DocId, Vec<u8>> = planned.keys().map(|d| (*d, y.docs[d].clone())).collect();
    let b = bundle::assemble(&plan, y.chair_key(), &docs).unwrap();
    verify(&b.files, &y.w.federation).unwrap();
    let json = String::from_utf8(b.files[&format!("docs/{}.json", y.c2_output)].clone()).unwrap();
    assert!(
        json.contains("Broadband reached 40 more districts"),
        "{json}"
    );
}

/// C2 with APC (the draft's creator), Acme and Kenya as members, and a C2 team meeting convened by ITU (its
/// coordinator) that Acme attends.
struct Team {
    w: World,
    acme: usize,
    draft: DocId,
    record: DocId,
}

fn team() -> Team {
    let mut w = World::wsis();
    let apc = w.add_org("APC", "civil-society", None);
    let acme = w.add_org("Acme", "private-sector", None);
    let kenya = w.add_org("Kenya", "government", Some("KE"));
    for o in [apc, acme, kenya] {
        w.admit(o);
    }
    w.recommend_and_nominate("C2", 0, &[apc, acme, kenya]);
    for o in [apc, acme, kenya] {
        w.op(o, OpKind::JoinTeam { team: w.team("C2") });
    }
    let kind = DocKind::OutputDraft {
        team: w.team("C2"),
        year: 2026,
    };
    let draft = DocId(w.op(apc, OpKind::CreateDoc { kind }).id().0);
    let meeting = w.op(
        0,
        OpKind::Convene {
            meeting: MeetingKind::Team(w.team("C2")),
            year: 2026,
            title: "C2 spring meeting".into(),
        },
    );
    w.op(
        acme,
        OpKind::Attend {
            meeting: meeting.id(),
        },
    );
    assert!(w.gov.invalid_ops().is_empty(), "{:?}", w.gov.invalid_ops());
    Team {
        w,
        acme,
        draft,
        record: DocId(meeting.id().0),
    }
}

/// Acme leaves C2, then cites the governance heads from before it left to go on writing the team's draft and
/// its meeting record: a known LeaveTeam it does not cite refuses it (`LeftTeam`), as a known revocation does.
/// A replica that does not have the leave yet allows it — exactly the history the envelope cites — so the node
/// stores it as unauthorised rather than blaming the sender, at every node in every order
/// (`node/tests/document_finality.rs`). After rejoining, Acme writes again, but only citing the rejoin.
#[test]
fn an_organisation_that_left_cannot_write_by_citing_heads_from_before_it_left() {
    let mut t = team();
    let acme = t.w.id(t.acme);
    let before = t.w.gov.heads();
    for doc in [t.draft, t.record] {
        assert_eq!(t.w.gov.may_write(&doc, &acme, &before), Ok(()));
    }
    t.w.op(
        t.acme,
        OpKind::LeaveTeam {
            team: t.w.team("C2"),
        },
    );
    let after = t.w.gov.heads();
    for doc in [t.draft, t.record] {
        assert_eq!(
            t.w.gov.may_write(&doc, &acme, &before),
            Err(WriteDenied::LeftTeam),
            "citing heads from before the leave"
        );
        assert_eq!(
            t.w.gov.may_write(&doc, &acme, &after),
            Err(WriteDenied::NotTeamMember),
            "citing the leave"
        );
    }
    // What the envelope's own history says: it is authorised there (the node stores it as unauthorised).
    let history = t.w.gov.replica_of_history(&before).unwrap();
    assert_eq!(history.may_write(&t.draft, &acme, &before), Ok(()));

    // Rejoining: writing citing the rejoin is allowed; the leave still refuses what cites heads before it.
    t.w.op(
        t.acme,
        OpKind::JoinTeam {
            team: t.w.team("C2"),
        },
    );
    let rejoined = t.w.gov.heads();
    assert_eq!(t.w.gov.may_write(&t.draft, &acme, &rejoined), Ok(()));
    assert_eq!(
        t.w.gov.may_write(&t.draft, &acme, &before),
        Err(WriteDenied::LeftTeam)
    );
    assert_eq!(
        t.w.gov.may_write(&t.draft, &acme, &after),
        Err(WriteDenied::NotTeamMember),
        "citing the leave but not the rejoin"
    );
}
