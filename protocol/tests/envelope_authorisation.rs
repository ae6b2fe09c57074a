//! The authorisation step of the acceptance pipeline: a verified change envelope against the governance state at
//! the heads it cites (catalogue cases 13, 17 and 29 at the protocol layer).
#![allow(clippy::unwrap_used)]

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ROOT};
use wsis_protocol::envelope::{automerge_actor, ChangeEnvelope, SignedEnvelope};
use wsis_protocol::fixture::World;
use wsis_protocol::gov::WriteDenied;
use wsis_protocol::ids::{DocId, OpId};
use wsis_protocol::op::{DocKind, OpKind, RevocableRole};

const SALT: [u8; 16] = [7; 16];

fn envelope(
    w: &World,
    author: usize,
    key_of: usize,
    doc: DocId,
    heads: Vec<OpId>,
) -> SignedEnvelope {
    let key = &w.orgs[key_of].secret;
    let mut d = AutoCommit::new().with_actor(automerge_actor(&key.public(), &doc, &SALT));
    d.put(
        ROOT,
        "achievements",
        "Broadband strategy adopted in 12 countries",
    )
    .unwrap();
    d.commit();
    let changes = d.get_changes(&[]);
    let env =
        ChangeEnvelope::seal(w.federation, doc, w.id(author), key, SALT, heads, changes).unwrap();
    // What a peer receives: bytes, verified again.
    SignedEnvelope::from_bytes(env.bytes(), w.federation).unwrap()
}

fn setup() -> (World, usize, usize, DocId) {
    let mut w = World::wsis();
    let apc = w.add_org("APC", "civil-society", None);
    let acme = w.add_org("Acme", "private-sector", None);
    w.admit(apc);
    w.admit(acme);
    w.op(apc, OpKind::JoinTeam { team: w.team("C2") });
    let d = w.op(
        apc,
        OpKind::CreateDoc {
            kind: DocKind::OutputDraft {
                team: w.team("C2"),
                year: 2026,
            },
        },
    );
    (w, apc, acme, DocId(d.id().0))
}

#[test]
fn a_team_member_may_write_the_output_draft() {
    let (w, apc, _, doc) = setup();
    let env = envelope(&w, apc, apc, doc, w.gov.heads());
    assert_eq!(w.gov.authorize_envelope(&env), Ok(()));
}

#[test]
fn case_17_a_non_member_of_the_team_may_not() {
    let (w, _, acme, doc) = setup();
    let env = envelope(&w, acme, acme, doc, w.gov.heads());
    assert_eq!(
        w.gov.authorize_envelope(&env),
        Err(WriteDenied::NotTeamMember)
    );
}

#[test]
fn case_13_an_envelope_claiming_another_orgs_authorship_is_refused() {
    // Acme signs (and derives its actor from its own key) but names APC as author.
    let (w, apc, acme, doc) = setup();
    let env = envelope(&w, apc, acme, doc, w.gov.heads());
    assert_eq!(
        w.gov.authorize_envelope(&env),
        Err(WriteDenied::KeyMismatch)
    );
}

#[test]
fn envelopes_citing_unknown_heads_wait_for_them() {
    let (w, apc, _, doc) = setup();
    let env = envelope(&w, apc, apc, doc, vec![OpId([9; 32])]);
    assert_eq!(
        w.gov.authorize_envelope(&env),
        Err(WriteDenied::UnknownHeads(vec![OpId([9; 32])]))
    );
}

#[test]
fn case_29_a_removed_org_keeps_pushing_and_nothing_is_authorised() {
    let (mut w, apc, _, doc) = setup();
    let before_removal = w.gov.heads();
    w.op(
        0,
        OpKind::RevokeRole {
            role: RevocableRole::Member,
            org: w.id(apc),
        },
    );
    // Citing the current heads: not a member.
    let env = envelope(&w, apc, apc, doc, w.gov.heads());
    assert_eq!(w.gov.authorize_envelope(&env), Err(WriteDenied::NotMember));
    // Back-dating by citing heads from before the removal does not help: the removal is not in the cited history,
    // so it counts as concurrent and wins.
    let env = envelope(&w, apc, apc, doc, before_removal);
    assert_eq!(
        w.gov.authorize_envelope(&env),
        Err(WriteDenied::RevokedConcurrently)
    );
}
