//! The attack catalogue, finality (issue 11, defects 2 and 3): head inflation cannot stop a checkpoint, and
//! nothing that arrives after a checkpoint passed — a back-dated rival nomination, late ballots, any whole-set
//! fact — changes the validity of what it finalised. Each test builds the attack and asserts it now fails; the
//! property at the end tries every kind of whole-set fact against finalised ops.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use wsis_protocol::fixture::{Org, World};
use wsis_protocol::gov::{Governance, Invalid};
use wsis_protocol::ids::{DocId, Hash32, OpId};
use wsis_protocol::limits::MAX_PARENTS;
use wsis_protocol::op::{
    Attestation, DocKind, MeetingKind, MotionKind, OpKind, RevocableRole, SignedOp, StakeholderType,
};

/// Delivers `ops` in this order; an op refused as transient (its author's inception not here yet: not parked) is
/// delivered again, as the next sync would, until nothing more enters.
fn replay(w: &World, ops: &[SignedOp]) -> Governance {
    let mut g = Governance::new(w.log[0].clone().verify().unwrap()).unwrap();
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

/// A checkpoint as a node proposes it: ITU's next op, whose parents are `parents_after` and whose heads are exactly
/// those parents; then yes-ballots from `voters`. Returns the motion.
fn propose_checkpoint(w: &mut World, meeting: &SignedOp, voters: &[usize]) -> SignedOp {
    let parents = w.gov.parents_after(w.gov.last_op(&w.id(0)));
    let m = w.op_at(
        0,
        &parents.clone(),
        OpKind::Motion {
            meeting: meeting.id(),
            motion: MotionKind::Checkpoint { heads: parents },
        },
    );
    for &v in voters {
        w.op(
            v,
            OpKind::Ballot {
                motion: m.id(),
                yes: true,
            },
        );
    }
    m
}

fn passed(g: &Governance, motion: &SignedOp) -> bool {
    g.passed_checkpoints()
        .iter()
        .any(|(id, _)| *id == motion.id())
}

/// ITU, UNESCO; APC (2), Kenya (3), Acme (4) admitted and coordinating C2, C3, C4; `extra` more admitted members
/// that have not acted since their admission. Returns the world and the extra members.
fn federation(extra: usize) -> (World, Vec<usize>) {
    let mut w = World::wsis();
    let ngo = w.add_org("APC", "civil-society", None);
    let gov = w.add_org("Kenya", "government", Some("KE"));
    let co = w.add_org("Acme", "private-sector", None);
    let extras: Vec<usize> = (0..extra)
        .map(|i| w.add_org(&format!("member {i}"), "academia", None))
        .collect();
    for o in [ngo, gov, co].into_iter().chain(extras.iter().copied()) {
        w.admit(o);
    }
    (w, extras)
}

fn coordinators(w: &mut World) {
    w.recommend_and_nominate("C2", 2, &[2, 3, 4]);
    w.recommend_and_nominate("C3", 3, &[2, 3, 4]);
    w.recommend_and_nominate("C4", 4, &[2, 3, 4]);
}

/// APC (C2's coordinator) drafts and submits its output; returns the submission.
fn submit(w: &mut World) -> SignedOp {
    w.op(2, OpKind::JoinTeam { team: w.team("C2") });
    let draft = w.op(
        2,
        OpKind::CreateDoc {
            kind: DocKind::OutputDraft {
                team: w.team("C2"),
                year: 2026,
            },
        },
    );
    let sub = w.op(
        2,
        OpKind::SubmitOutput {
            team: w.team("C2"),
            year: 2026,
            doc: DocId(draft.id().0),
            attestation: att(),
        },
    );
    assert_eq!(w.gov.validity(&sub.id()), Some(Ok(())));
    sub
}

#[test]
fn finality_01_outsider_head_inflation_does_not_stop_a_checkpoint() {
    let (mut w, _) = federation(0);
    coordinators(&mut w);
    let sub = submit(&mut w);
    let meeting = w.coordinators_meeting();
    // Two honest heads, concurrent.
    let fork = w.gov.heads();
    let honest = [
        w.op_at(3, &fork, OpKind::JoinTeam { team: w.team("C5") }),
        w.op_at(4, &fork, OpKind::JoinTeam { team: w.team("C5") }),
    ];
    // 70 outsiders each push an inception citing only the genesis: 70 more heads than any op can cite.
    let genesis = w.log[0].id();
    for i in 0..70u64 {
        let o = w.orgs.len();
        w.orgs.push(Org::new(
            50_000 + i,
            &format!("outsider {i}"),
            StakeholderType::Academia,
            None,
        ));
        let rec = w.orgs[o].inception.clone();
        w.op_at(o, &[genesis], OpKind::OrgInception(rec));
    }
    let heads = w.gov.heads();
    if heads.len() > MAX_PARENTS {
        // What a node used to propose, every current head, is beyond any op's reach: not in its history.
        let parents = w.gov.parents_after(w.gov.last_op(&w.id(0)));
        let all = w.sign_at(
            0,
            &parents,
            OpKind::Motion {
                meeting: meeting.id(),
                motion: MotionKind::Checkpoint {
                    heads: heads.clone(),
                },
            },
        );
        assert_eq!(
            w.gov.check(&all.clone().verify().unwrap()),
            Err(wsis_protocol::gov::CheckError::Invalid(
                Invalid::UnknownReference
            ))
        );
        w.log.pop();
        w.orgs[0].next_seq -= 1;
    }
    let checkpoint = propose_checkpoint(&mut w, &meeting, &[2, 3]);
    if heads.len() > MAX_PARENTS {
        assert!(
            checkpoint.parents().len() <= MAX_PARENTS,
            "the checkpoint names at most what an op can cite"
        );
    }
    assert_eq!(w.gov.validity(&checkpoint.id()), Some(Ok(())));
    assert!(
        passed(&w.gov, &checkpoint),
        "the flood does not stop the checkpoint"
    );
    assert!(w.gov.is_finalised(&sub.id()));
    assert!(
        honest.iter().all(|h| w.gov.is_finalised(&h.id())),
        "the honest heads are finalised: valid heads by members are cited first"
    );
    assert_eq!(replay(&w, &w.log[1..]).digest(), w.gov.digest());
}

#[test]
fn finality_02_more_than_64_concurrent_member_heads_do_not_stop_a_checkpoint() {
    // A large honest federation: 70 members act concurrently (each contributes one head, by the chain rule).
    let (mut w, extras) = federation(70);
    coordinators(&mut w);
    let meeting = w.coordinators_meeting();
    let fork = w.gov.heads();
    let joins: Vec<SignedOp> = extras
        .iter()
        .map(|&o| w.op_at(o, &fork, OpKind::JoinTeam { team: w.team("C5") }))
        .collect();
    assert!(w.gov.heads().len() > MAX_PARENTS);
    let first = propose_checkpoint(&mut w, &meeting, &[2, 3]);
    assert_eq!(first.parents().len(), MAX_PARENTS);
    assert!(
        passed(&w.gov, &first),
        "a checkpoint passes however many heads there are"
    );
    let finalised = joins.iter().filter(|j| w.gov.is_finalised(&j.id())).count();
    assert!(
        finalised >= MAX_PARENTS - 1,
        "{finalised} of 70 heads finalised"
    );
    // Every op merges up to 64 heads, so the next checkpoint finalises the rest.
    let second = propose_checkpoint(&mut w, &meeting, &[2, 3]);
    assert!(passed(&w.gov, &second));
    assert!(joins.iter().all(|j| w.gov.is_finalised(&j.id())));
    assert_eq!(replay(&w, &w.log[1..]).digest(), w.gov.digest());
}

#[test]
fn finality_03_a_backdated_rival_nomination_cannot_unseat_a_finalised_coordinator() {
    // Four members who do not act on the main branch, so that they can sign on a back-dated one.
    let (mut w, extras) = federation(4);
    let fork = w.gov.heads();
    coordinators(&mut w);
    let sub = submit(&mut w);
    let meeting = w.coordinators_meeting();
    let checkpoint = propose_checkpoint(&mut w, &meeting, &[2, 3]);
    assert!(w.gov.is_finalised(&sub.id()));
    let electorate = w.gov.electorate(&checkpoint.id()).unwrap();

    // UNESCO (a nominating authority by default) runs a rival recommendation for C2 on a branch that predates
    // APC's nomination, with four yes-votes against APC's three, and nominates its candidate there.
    let (motion, tip) = rival_recommendation(&mut w, 1, &fork, &extras, extras.len());
    let rival = w.op_at(
        1,
        &[tip],
        OpKind::Nominate {
            team: w.team("C2"),
            org: w.id(extras[0]),
            recommendation: motion.id(),
        },
    );
    assert_eq!(w.gov.validity(&rival.id()), Some(Ok(())), "a valid claim");
    // Anyone merges the branch.
    w.op(0, OpKind::JoinTeam { team: w.team("C9") });

    assert_eq!(
        w.gov.validity(&sub.id()),
        Some(Ok(())),
        "the finalised submission stays valid"
    );
    assert_eq!(w.gov.coordinator(&w.team("C2")).unwrap().org, w.id(2));
    assert!(passed(&w.gov, &checkpoint), "the checkpoint still passes");
    assert_eq!(w.gov.electorate(&checkpoint.id()).unwrap(), electorate);
    let holder = w.gov.coordinator(&w.team("C2")).unwrap();
    assert!(
        holder.contested_with.contains(&w.id(extras[0])),
        "the rival is shown as contested, and lost"
    );
    assert_eq!(replay(&w, &w.log[1..]).digest(), w.gov.digest());
    let mut reversed = w.log[1..].to_vec();
    reversed.reverse();
    assert_eq!(replay(&w, &reversed).digest(), w.gov.digest());
}

/// A recommendation meeting for C2 convened by `by` on a branch from `fork`: `attendees` attend, `by` moves to
/// recommend the first of them, and the first `yes` attendees vote yes. Returns (motion, the branch's tip).
fn rival_recommendation(
    w: &mut World,
    by: usize,
    fork: &[OpId],
    attendees: &[usize],
    yes: usize,
) -> (SignedOp, OpId) {
    let parents = backdated(w, by, fork);
    let convene = w.op_at(
        by,
        &parents,
        OpKind::Convene {
            meeting: MeetingKind::Recommendation,
            year: 2026,
            title: "A rival recommendation".into(),
        },
    );
    let mut tip = convene.id();
    for &a in attendees {
        tip = w
            .op_at(
                a,
                &[tip],
                OpKind::Attend {
                    meeting: convene.id(),
                },
            )
            .id();
    }
    let motion = w.op_at(
        by,
        &[tip],
        OpKind::Motion {
            meeting: convene.id(),
            motion: MotionKind::Recommend {
                team: w.team("C2"),
                org: w.id(attendees[0]),
            },
        },
    );
    let mut tip = motion.id();
    for &a in &attendees[..yes] {
        tip = w
            .op_at(
                a,
                &[tip],
                OpKind::Ballot {
                    motion: motion.id(),
                    yes: true,
                },
            )
            .id();
    }
    (motion, tip)
}

/// The earliest parents `org` can sign on after `fork`: the fork, plus its own last op (the chain rule).
fn backdated(w: &World, org: usize, fork: &[OpId]) -> Vec<OpId> {
    let mut parents = fork.to_vec();
    if let Some(last) = w.gov.last_op(&w.id(org)) {
        if !w.gov.in_history_of(&last, fork) {
            parents.push(last);
        }
    }
    parents.sort();
    parents
}

#[test]
fn finality_04_late_ballots_do_not_flip_a_contest() {
    let (mut w, extras) = federation(5);
    let fork = w.gov.heads();
    // Two concurrent nominations for C2: ITU's for APC (four yes) and, on a branch, UNESCO's for a member with
    // three yes-votes of five attendees.
    let (_, n1) = w.recommend_and_nominate("C2", 2, &[0, 2, 3, 4]);
    let (motion, tip) = rival_recommendation(&mut w, 1, &fork, &extras, 3);
    let n2 = w.op_at(
        1,
        &[tip],
        OpKind::Nominate {
            team: w.team("C2"),
            org: w.id(extras[0]),
            recommendation: motion.id(),
        },
    );
    assert_eq!(w.gov.validity(&n2.id()), Some(Ok(())));
    w.recommend_and_nominate("C3", 3, &[2, 3, 4]);
    w.recommend_and_nominate("C4", 4, &[2, 3, 4]);
    assert_eq!(
        w.gov.coordinator(&w.team("C2")).unwrap().org,
        w.id(2),
        "four yes-votes beat three"
    );
    let sub = submit(&mut w);
    let late_ballot = |w: &mut World, a: usize| {
        let b = w.op(
            a,
            OpKind::Ballot {
                motion: motion.id(),
                yes: true,
            },
        );
        assert_eq!(
            w.gov.validity(&b.id()),
            Some(Ok(())),
            "a valid, late ballot"
        );
    };
    // One attendee who had not voted casts a late yes-ballot before any checkpoint: four against four now,
    // but voting on the rival recommendation closed, for the contest, at the nomination that acted on it.
    late_ballot(&mut w, extras[3]);
    assert_eq!(w.gov.coordinator(&w.team("C2")).unwrap().org, w.id(2));
    assert_eq!(w.gov.validity(&sub.id()), Some(Ok(())));

    let meeting = w.coordinators_meeting();
    propose_checkpoint(&mut w, &meeting, &[2, 3]);
    assert!(w.gov.is_finalised(&sub.id()));
    // The other one after finalisation: the rival recommendation has five yes-votes against APC's four.
    late_ballot(&mut w, extras[4]);
    assert_eq!(w.gov.motion(&motion.id()).unwrap().yes, 5);
    assert_eq!(
        w.gov.coordinator(&w.team("C2")).unwrap().org,
        w.id(2),
        "the contest was decided by what each nomination's history held"
    );
    assert_eq!(w.gov.validity(&sub.id()), Some(Ok(())));
    assert_eq!(w.gov.validity(&n1.id()), Some(Ok(())));
    assert_eq!(replay(&w, &w.log[1..]).digest(), w.gov.digest());
}

#[test]
fn finality_05_a_revocation_of_the_checkpoint_proposer_does_not_unpass_it() {
    // The checkpoint motion is outside its own history: a back-dated revocation concurrent with it (here of a
    // coordinator that proposes it) would, by the concurrency rule, take the motion's validity away. Passing is
    // decided by history alone, so the checkpoint and what it finalised stand.
    let (mut w, _) = federation(0);
    coordinators(&mut w);
    let sub = submit(&mut w);
    let meeting = w.coordinators_meeting();
    let fork = w.gov.heads();
    let m = w.op(
        2,
        OpKind::Motion {
            meeting: meeting.id(),
            motion: MotionKind::Checkpoint {
                heads: fork.clone(),
            },
        },
    );
    w.op(
        3,
        OpKind::Ballot {
            motion: m.id(),
            yes: true,
        },
    );
    w.op(
        4,
        OpKind::Ballot {
            motion: m.id(),
            yes: true,
        },
    );
    assert!(passed(&w.gov, &m));
    w.op_at(
        1,
        &fork,
        OpKind::RevokeRole {
            role: RevocableRole::Member,
            org: w.id(2),
        },
    );
    assert!(passed(&w.gov, &m), "the checkpoint stays passed");
    assert_eq!(w.gov.validity(&sub.id()), Some(Ok(())));
    assert!(
        !w.gov.is_member(&w.id(2)),
        "the revocation holds from now on"
    );
    assert_eq!(replay(&w, &w.log[1..]).digest(), w.gov.digest());
}

/// The whole-set facts an attacker can add after a checkpoint passed, each built on a branch that predates the
/// checkpoint (back-dated as far as the chain rule lets its author go).
#[derive(Debug, Clone)]
enum Attack {
    /// A secretariat revokes a member's membership.
    RevokeMember(usize),
    /// The nominating authority revokes a coordinator.
    RevokeCoordinator(usize),
    /// A back-dated rival nomination for C2 with more yes-votes.
    RivalNomination,
    /// Late yes-ballots on the rival recommendation.
    LateBallots,
    /// A member signs a twin of its last op (equivocation), and evidence of it is published.
    Equivocate(usize),
    /// Another checkpoint passes (finalising later ops too).
    AnotherCheckpoint,
}

fn attack() -> impl Strategy<Value = Attack> {
    prop_oneof![
        (2usize..5).prop_map(Attack::RevokeMember),
        (2usize..5).prop_map(Attack::RevokeCoordinator),
        Just(Attack::RivalNomination),
        Just(Attack::LateBallots),
        (2usize..9).prop_map(Attack::Equivocate),
        Just(Attack::AnotherCheckpoint),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    /// Every kind of whole-set fact (member and coordinator revocations, rival nominations and the ballots that
    /// rank them, equivocations and their evidence, further checkpoints), in any combination and delivered in
    /// any order, leaves every finalised op with the validity it had when the checkpoint passed.
    #[test]
    fn no_whole_set_fact_changes_a_finalised_op(
        attacks in proptest::collection::vec(attack(), 1..6),
        order_seed in any::<u64>(),
    ) {
        let (mut w, extras) = federation(4);
        let fork = w.gov.heads();
        coordinators(&mut w);
        let sub = submit(&mut w);
        let meeting = w.coordinators_meeting();
        let checkpoint = propose_checkpoint(&mut w, &meeting, &[2, 3]);
        let finalised: Vec<(OpId, Result<(), Invalid>)> = w
            .gov
            .ops()
            .filter(|op| w.gov.is_finalised(&op.id()))
            .map(|op| (op.id(), w.gov.validity(&op.id()).unwrap()))
            .collect();
        prop_assert!(finalised.iter().any(|(id, _)| *id == sub.id()));
        let mut rival: Option<SignedOp> = None;
        for a in &attacks {
            match a {
                Attack::RevokeMember(o) => {
                    let parents = backdated(&w, 1, &fork);
                    w.op_at(1, &parents, OpKind::RevokeRole { role: RevocableRole::Member, org: w.id(*o) });
                }
                Attack::RevokeCoordinator(o) => {
                    let team = w.team(["C2", "C3", "C4"][*o - 2]);
                    let parents = backdated(&w, 1, &fork);
                    w.op_at(1, &parents, OpKind::RevokeRole { role: RevocableRole::Coordinator(team), org: w.id(*o) });
                }
                Attack::RivalNomination if rival.is_none() => {
                    let (motion, tip) = rival_recommendation(&mut w, 1, &fork, &extras, 3);
                    w.op_at(1, &[tip], OpKind::Nominate {
                        team: w.team("C2"), org: w.id(extras[0]), recommendation: motion.id() });
                    rival = Some(motion);
                }
                Attack::RivalNomination => {}
                Attack::LateBallots => {
                    if let Some(motion) = &rival {
                        for &e in &extras[3..] {
                            w.op(e, OpKind::Ballot { motion: motion.id(), yes: true });
                        }
                    }
                }
                Attack::Equivocate(o) => {
                    let o = (*o).min(w.orgs.len() - 1);
                    if let Some(last) = w.gov.last_op(&w.id(o)).and_then(|id| w.gov.get(&id).cloned()) {
                        w.orgs[o].next_seq = last.seq();
                        let twin = w.sign_at(o, last.parents(), OpKind::LeaveTeam { team: w.team("C7") });
                        let _ = w.gov.insert(twin.clone().verify().unwrap());
                        w.op(0, OpKind::Evidence { first: Box::new(last), second: Box::new(twin) });
                    }
                }
                Attack::AnotherCheckpoint => {
                    let m = w.coordinators_meeting();
                    propose_checkpoint(&mut w, &m, &[2, 3, 4]);
                }
            }
        }
        prop_assert!(passed(&w.gov, &checkpoint), "the checkpoint stays passed");
        for (id, v) in &finalised {
            prop_assert_eq!(w.gov.validity(id), Some(*v), "finalised op {} changed under {:?}", id, attacks);
        }
        // The same in any delivery order, and from a full re-evaluation.
        let mut order = w.log[1..].to_vec();
        let mut s = order_seed;
        for i in (1..order.len()).rev() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            order.swap(i, (s >> 33) as usize % (i + 1));
        }
        let mut shuffled = replay(&w, &order);
        prop_assert_eq!(shuffled.digest(), w.gov.digest());
        shuffled.reevaluate();
        prop_assert_eq!(shuffled.digest(), w.gov.digest());
    }
}
