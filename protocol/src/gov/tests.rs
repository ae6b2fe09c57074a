//! Unit tests of the replica's own mechanics (the rules are tested in protocol/tests/).

use super::*;
use crate::fixture::World;
use crate::op::OpKind;

#[test]
fn topological_order_puts_parents_first_and_the_genesis_at_the_front() {
    let mut w = World::wsis();
    let apc = w.add_org("APC", "civil-society", None);
    w.admit(apc);
    w.op(apc, OpKind::JoinTeam { team: w.team("C1") });
    let mut ops = w.log.clone();
    ops.reverse();
    let sorted = topological_order(ops);
    assert!(matches!(sorted[0].kind(), OpKind::Genesis(_)));
    let mut g = Governance::new(sorted[0].clone().verify().unwrap()).unwrap();
    for op in &sorted[1..] {
        let r = g.insert(op.clone().verify().unwrap()).unwrap();
        // An inception waits outside the DAG for the Admit that follows it.
        assert!(
            matches!(r, Inserted::Applied { .. } | Inserted::Pending),
            "{op:?} parked: not topological"
        );
    }
    assert_eq!(g.pending_len(), 0);
    assert_eq!(g.digest(), w.gov.digest());
}

#[test]
fn last_seq_follows_each_author() {
    let mut w = World::wsis();
    let apc = w.add_org("APC", "civil-society", None);
    assert_eq!(w.gov.last_seq(&w.id(apc)), 1);
    assert_eq!(w.gov.last_seq(&w.id(0)), 1);
    w.admit(apc);
    assert_eq!(w.gov.last_seq(&w.id(0)), 2);
    assert_eq!(w.gov.last_seq(&crate::ids::OrgId([9; 32])), 0);
}

#[test]
fn released_ops_are_reported_in_the_order_they_entered() {
    let mut w = World::wsis();
    let apc = w.add_org("APC", "civil-society", None);
    w.admit(apc);
    let mut g = Governance::new(w.log[0].clone().verify().unwrap()).unwrap();
    let (a, b, c) = (w.log[1].clone(), w.log[2].clone(), w.log[0].clone());
    let _ = c;
    assert!(matches!(
        g.insert(b.clone().verify().unwrap()).unwrap(),
        Inserted::Parked { .. }
    ));
    match g.insert(a.clone().verify().unwrap()).unwrap() {
        Inserted::Applied { released, .. } => assert_eq!(released, vec![b.id()]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_have_summary_lets_a_peer_that_lacks_our_newest_op_send_only_the_difference() {
    let mut w = World::wsis();
    let orgs: Vec<usize> = (0..6)
        .map(|i| w.add_org(&format!("Org {i}"), "civil-society", None))
        .collect();
    for &o in &orgs {
        w.admit(o);
    }
    for &o in &orgs {
        w.op(o, OpKind::JoinTeam { team: w.team("C1") });
    }
    // The peer has everything so far; we then add one op of our own and the peer adds two.
    let mut peer = w.gov.clone();
    let base = w.gov.heads();
    let ours = w.op(orgs[0], OpKind::JoinTeam { team: w.team("C2") });
    let before = w.gov.clone();
    let first = w.op_at(orgs[1], &base, OpKind::JoinTeam { team: w.team("C3") });
    let second = w.op_at(
        orgs[1],
        &[first.id()],
        OpKind::JoinTeam { team: w.team("C4") },
    );
    let theirs = [first, second];
    for op in &theirs {
        peer.insert(op.clone().verify().unwrap()).unwrap();
    }
    assert!(!peer.contains(&ours.id()));

    // Heads alone: the peer knows none of them and would send its whole DAG.
    assert_eq!(before.heads(), vec![ours.id()]);
    assert_eq!(peer.ops_missing_from(&before.heads()).len(), peer.len());
    // Heads and their ancestors: only what we lack.
    let summary = before.have_summary(128);
    assert_eq!(summary[0], ours.id());
    let mut sent: Vec<OpId> = peer
        .ops_missing_from(&summary)
        .iter()
        .map(|o| o.id())
        .collect();
    sent.sort();
    let mut want: Vec<OpId> = theirs.iter().map(|o| o.id()).collect();
    want.sort();
    assert_eq!(sent, want);
    // Bounded, and breadth-first from the heads.
    assert_eq!(before.have_summary(1), vec![ours.id()]);
    assert!(before.have_summary(10_000).len() <= before.len());
}

#[test]
fn evicted_parked_ops_are_gone_and_a_late_parent_releases_only_the_rest() {
    let mut w = World::wsis();
    let apc = w.add_org("APC", "civil-society", None);
    w.admit(apc);
    let mut replica = Governance::new(w.log[0].clone().verify().unwrap()).unwrap();
    for op in &w.log[1..] {
        replica.insert(op.clone().verify().unwrap()).unwrap();
    }
    // A parent the replica lacks, and two children waiting for it.
    let parent = w.op(apc, OpKind::JoinTeam { team: w.team("C1") });
    let kept = w.op_at(apc, &[parent.id()], OpKind::JoinTeam { team: w.team("C2") });
    let evicted = w.op_at(0, &[parent.id()], OpKind::JoinTeam { team: w.team("C3") });
    for op in [&kept, &evicted] {
        let r = replica.insert(op.clone().verify().unwrap()).unwrap();
        assert!(matches!(r, Inserted::Parked { .. }));
    }
    assert_eq!(replica.parked_len(), 2);
    assert_eq!(replica.evict_parked(&[evicted.id(), OpId([9; 32])]), 1);
    assert!(!replica.is_parked(&evicted.id()) && replica.is_parked(&kept.id()));
    assert_eq!(replica.parked_len(), 1);
    match replica.insert(parent.clone().verify().unwrap()).unwrap() {
        Inserted::Applied { released, .. } => assert_eq!(released, vec![kept.id()]),
        other => panic!("{other:?}"),
    }
    assert!(!replica.contains(&evicted.id()));
    assert_eq!(replica.parked_len(), 0);
    // Fetched again later, the evicted op enters normally.
    let r = replica.insert(evicted.clone().verify().unwrap()).unwrap();
    assert!(matches!(r, Inserted::Applied { .. }));
}

#[test]
fn parents_after_keep_the_chain_rule_past_the_parent_limit() {
    use crate::limits::MAX_PARENTS;
    let mut w = World::wsis();
    let orgs: Vec<usize> = (0..MAX_PARENTS + 6)
        .map(|i| w.add_org(&format!("Org {i}"), "civil-society", None))
        .collect();
    for &o in &orgs {
        w.admit(o);
    }
    let base = w.gov.heads();
    // The first org's own op, then every other org concurrently: more heads than one op may cite.
    let own = w.op_at(orgs[0], &base, OpKind::JoinTeam { team: w.team("C1") });
    for &o in &orgs[1..] {
        w.op_at(o, &base, OpKind::JoinTeam { team: w.team("C1") });
    }
    assert!(w.gov.heads().len() > MAX_PARENTS);
    assert_eq!(w.gov.last_op(&w.id(orgs[0])), Some(own.id()));
    let parents = w.gov.parents_after(w.gov.last_op(&w.id(orgs[0])));
    assert_eq!(parents.len(), MAX_PARENTS);
    assert!(parents.contains(&own.id()), "the chain rule holds");
    assert!(
        parents.windows(2).all(|p| p[0] < p[1]),
        "sorted, no repeats"
    );
    // An op this replica has not seen is cited itself.
    let unseen = OpId([7; 32]);
    let parents = w.gov.parents_after(Some(unseen));
    assert!(parents.contains(&unseen) && parents.len() == MAX_PARENTS);
    // Few heads: all of them.
    let mut small = World::wsis();
    let apc = small.add_org("APC", "civil-society", None);
    small.admit(apc);
    assert_eq!(
        small.gov.parents_after(small.gov.last_op(&small.id(apc))),
        small.gov.heads()
    );
    assert_eq!(small.gov.last_op(&crate::ids::OrgId([9; 32])), None);
}

/// A history with every path an insertion can take: valid ops of most kinds, ops the replay marks invalid (not a
/// member, unknown team, duplicate attendance, double vote, a vote outside the electorate), ops that need a full
/// re-evaluation (rival concurrent nominations, revocations, an equivocation and its evidence, a passed
/// checkpoint), and ops the structural checks refuse (chain rule, wrong key, wrong federation). Returns the world;
/// `w.log` holds every op in signing order.
fn varied_governance() -> World {
    use crate::op::{MeetingKind, MotionKind, OpBody, RevocableRole};
    let mut w = World::wsis();
    let apc = w.add_org("APC", "civil-society", None);
    let isoc = w.add_org("ISOC", "technical-community", None);
    let gsma = w.add_org("GSMA", "private-sector", None);
    let kenya = w.add_org("Kenya", "government", Some("KE"));
    let outsider = w.add_org("Outsider", "civil-society", None);
    // Not admitted yet: invalid, then valid once admitted.
    w.op(apc, OpKind::JoinTeam { team: w.team("C1") });
    for o in [apc, isoc, gsma, kenya] {
        w.admit(o);
    }
    w.admit(apc); // admitted twice (valid, changes nothing)
    w.op(apc, OpKind::JoinTeam { team: w.team("C1") });
    w.op(
        isoc,
        OpKind::JoinTeam {
            team: TeamCode::new("X9").unwrap(),
        },
    );
    // APC becomes coordinator of C1.
    let (motion, _) = w.recommend_and_nominate("C1", apc, &[isoc, gsma]);
    w.op(
        isoc,
        OpKind::Ballot {
            motion: motion.id(),
            yes: true,
        },
    ); // double vote
    w.op(
        outsider,
        OpKind::Ballot {
            motion: motion.id(),
            yes: true,
        },
    ); // not in the electorate
       // A second recommendation meeting with a duplicate attendance and two rival, concurrent nominations for C2.
    let meeting = w.op(
        0,
        OpKind::Convene {
            meeting: MeetingKind::Recommendation,
            year: 2026,
            title: "C2".into(),
        },
    );
    for v in [isoc, gsma, isoc] {
        w.op(
            v,
            OpKind::Attend {
                meeting: meeting.id(),
            },
        );
    }
    let mut recommendations = Vec::new();
    for org in [isoc, gsma] {
        let id = w.id(org);
        let m = w.op(
            0,
            OpKind::Motion {
                meeting: meeting.id(),
                motion: MotionKind::Recommend {
                    team: w.team("C2"),
                    org: id,
                },
            },
        );
        for v in [isoc, gsma] {
            w.op(
                v,
                OpKind::Ballot {
                    motion: m.id(),
                    yes: true,
                },
            );
        }
        recommendations.push((org, m));
    }
    let fork = w.gov.heads();
    for (author, (org, m)) in [0, 1].into_iter().zip(recommendations) {
        let id = w.id(org);
        w.op_at(
            author,
            &fork,
            OpKind::Nominate {
                team: w.team("C2"),
                org: id,
                recommendation: m.id(),
            },
        );
    }
    // A coordinators' meeting that passes a checkpoint.
    let coordinators = w.coordinators_meeting();
    let heads = w.gov.heads();
    w.pass_motion(
        &coordinators,
        MotionKind::Checkpoint { heads },
        &[apc, isoc, gsma],
    );
    // Coordinator work, then revocations.
    w.op(
        apc,
        OpKind::SetModalities {
            team: w.team("C1"),
            text: "Monthly.".into(),
        },
    );
    w.op(
        isoc,
        OpKind::SetModalities {
            team: w.team("C1"),
            text: "Not mine to set.".into(),
        },
    );
    let kenya_id = w.id(kenya);
    w.op(
        0,
        OpKind::RevokeRole {
            role: RevocableRole::Member,
            org: kenya_id,
        },
    );
    let apc_id = w.id(apc);
    w.op(
        1,
        OpKind::RevokeRole {
            role: RevocableRole::Coordinator(w.team("C1")),
            org: apc_id,
        },
    );
    w.op(kenya, OpKind::JoinTeam { team: w.team("C3") }); // revoked
                                                          // An equivocation, then UNESCO's evidence of it.
    let heads = w.gov.heads();
    let seq = w.orgs[gsma].next_seq;
    let a = w.op_at(gsma, &heads, OpKind::JoinTeam { team: w.team("C4") });
    w.orgs[gsma].next_seq = seq;
    let b = w.sign_at(gsma, &heads, OpKind::JoinTeam { team: w.team("C5") });
    w.op(
        1,
        OpKind::Evidence {
            first: Box::new(a),
            second: Box::new(b.clone()),
        },
    );
    let _ = w.gov.insert(b.verify().unwrap());
    // Refused by the structural checks: a gap in the chain, the wrong key, the wrong federation.
    w.orgs[isoc].next_seq += 3;
    w.op(isoc, OpKind::JoinTeam { team: w.team("C6") });
    let heads = w.gov.heads();
    let forged = OpBody {
        federation: Some(w.federation),
        author: w.id(apc),
        key: w.orgs[isoc].secret.public(),
        seq: w.orgs[apc].next_seq,
        parents: heads.clone(),
        timestamp_ms: 0,
        kind: OpKind::JoinTeam { team: w.team("C7") },
    }
    .sign(&w.orgs[isoc].secret);
    w.log.push(forged);
    let c8 = w.team("C8");
    let elsewhere = w.orgs[gsma].sign(
        Some(crate::ids::FederationId([7; 32])),
        &heads,
        OpKind::JoinTeam { team: c8 },
        0,
    );
    w.log.push(elsewhere);
    w
}

/// `check` says what `insert` then does, op by op, and leaves the replica as it was: same digest, length, heads,
/// parked ops and counters. Replayed in signing order, then in an order that parks and releases ops.
#[test]
fn check_agrees_with_insert_on_every_op_of_a_varied_history() {
    let w = varied_governance();
    let ops = &w.log[1..];
    let mut reordered: Vec<_> = ops.to_vec();
    // Every third op first: many arrive before their parents, park, and are released later.
    reordered.sort_by_key(|op| {
        let i = ops.iter().position(|o| o.id() == op.id()).unwrap();
        (i % 3 != 0, i)
    });
    for (signing_order, order) in [(true, ops.to_vec()), (false, reordered)] {
        let mut g = Governance::new(w.log[0].clone().verify().unwrap()).unwrap();
        let (mut refused, mut invalid, mut parked, mut full_passes) = (0, 0, 0, 0);
        for op in order {
            let verified = op.clone().verify().unwrap();
            let before = (
                g.digest(),
                g.len(),
                g.heads(),
                g.parked_len(),
                g.recomputations(),
            );
            let verdict = g.check(&verified);
            let after = (
                g.digest(),
                g.len(),
                g.heads(),
                g.parked_len(),
                g.recomputations(),
            );
            assert_eq!(before, after, "check changed the replica ({op:?})");
            let recomputations = g.recomputations();
            let inserted = g.insert(verified);
            if g.recomputations() > recomputations {
                full_passes += 1;
            }
            match (&verdict, inserted) {
                (Err(CheckError::Refused(e)), Err(e2)) => {
                    assert_eq!(*e, e2, "{op:?}");
                    refused += 1;
                }
                (Err(CheckError::Pending), Ok(Inserted::Pending)) => {}
                (Err(CheckError::Parked { missing }), Ok(Inserted::Parked { missing: m })) => {
                    assert_eq!(*missing, m, "{op:?}");
                    parked += 1;
                }
                (_, Ok(Inserted::Applied { valid, .. })) => {
                    let now = g.validity(&op.id()).unwrap();
                    assert_eq!(verdict, now.map_err(CheckError::Invalid), "{op:?}");
                    assert_eq!(valid, now.is_ok(), "{op:?}");
                    invalid += now.is_err() as usize;
                }
                (verdict, inserted) => panic!("{op:?}: check {verdict:?}, insert {inserted:?}"),
            }
        }
        if signing_order {
            // Every path was taken: refusals, invalid verdicts, full re-evaluations.
            assert!(
                refused >= 3 && invalid >= 6 && full_passes >= 3,
                "{refused} refused, {invalid} invalid, {full_passes} full passes"
            );
        } else {
            assert!(parked > 0, "the reordering parks ops");
        }
    }
}

#[test]
fn check_of_an_op_already_in_the_dag_is_its_validity() {
    let w = varied_governance();
    let mut g = w.gov.clone();
    for op in &w.log[1..] {
        let Some(validity) = g.validity(&op.id()) else {
            continue;
        };
        assert_eq!(
            g.check(&op.clone().verify().unwrap()),
            validity.map_err(CheckError::Invalid)
        );
    }
}

#[test]
fn every_invalid_reason_has_a_stable_code_equal_to_its_json_name() {
    let mut codes = std::collections::BTreeSet::new();
    for why in Invalid::ALL {
        let json = serde_json::to_string(&why).unwrap();
        assert_eq!(json, format!("\"{}\"", why.code()));
        assert!(codes.insert(why.code()), "{} twice", why.code());
    }
    // ALL is complete: the digest codes are 1..=len, one per variant.
    for (i, why) in Invalid::ALL.into_iter().enumerate() {
        assert_eq!(why.digest_code() as usize, i + 1);
    }
}

/// The replica of a history is what a node that received only that history holds: for the history of every op of
/// a varied governance (a revocation, rival nominations, an equivocation, a passed checkpoint among them), a
/// replica built by receiving exactly those ops from their bytes, signatures checked, has the same digest and the
/// same validity for each op.
#[test]
fn the_replica_of_a_history_is_what_a_node_that_received_only_it_holds() {
    let w = varied_governance();
    let g = &w.gov;
    let mut cuts: Vec<OpId> = g.ops().map(|op| op.id()).step_by(7).collect();
    cuts.push(g.heads()[0]);
    for cut in cuts {
        let heads = [cut];
        let replica = g.replica_of_history(&heads).unwrap();
        let mut received = Governance::new(w.log[0].clone().verify().unwrap()).unwrap();
        // Received as a bundle's verifier receives a judged history: every op of it enters (a cut may hold an
        // inception without the Admit that carried it in).
        received.open_gate = true;
        for op in g.history_of(&heads) {
            if op.id() != w.log[0].id() {
                let _ = received.insert_bytes(op.bytes());
            }
        }
        assert_eq!(replica.digest(), received.digest(), "history of {cut:?}");
        assert_eq!(replica.len(), g.history_of(&heads).len());
        for op in g.history_of(&heads) {
            assert_eq!(replica.validity(&op.id()), received.validity(&op.id()));
        }
    }
    // The whole DAG's history is the replica itself.
    assert_eq!(
        g.replica_of_history(&g.heads()).unwrap().digest(),
        g.digest()
    );
}
