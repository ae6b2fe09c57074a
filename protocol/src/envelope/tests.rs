//! Stage 1 and stage 2 against forgeries, truncations, foreign actors and Automerge's own reading.
//!
//! Over 800 lines on purpose: one test per way of breaking an envelope, each small, all sharing the forging
//! helpers at the top; splitting them would only move those helpers into a third file.

use super::chunk::*;
use super::*;
use crate::cbor::Encoder;
use crate::crypto::{Domain, SecretKey};
use crate::fixture::op_bomb_change;
use crate::ids::{EnvelopeId, Hash32, OpId, OrgId};
use crate::limits::{
    MAX_CHANGE_BYTES, MAX_CHANGE_OPS, MAX_CHANGE_PREDS, MAX_ENVELOPE_BYTES, MAX_ENVELOPE_OPS,
};
use automerge::transaction::Transactable;
use automerge::{AutoCommit, ReadDoc, ROOT};

const FED: FederationId = FederationId([9; 32]);
const DOC: DocId = DocId([4; 32]);
const SALT: [u8; SESSION_SALT_LEN] = [7; SESSION_SALT_LEN];

fn org(seed: u8) -> (SecretKey, OrgId) {
    (SecretKey::from_seed(&[seed; 32]), OrgId([seed; 32]))
}

fn heads() -> Vec<OpId> {
    vec![OpId([1; 32]), OpId([2; 32])]
}

/// `n` successive changes by `actor`, each setting `k` to its index.
fn changes_by(actor: automerge::ActorId, n: i64) -> Vec<automerge::Change> {
    let mut doc = AutoCommit::new().with_actor(actor);
    for i in 0..n {
        doc.put(ROOT, "k", i).unwrap();
        doc.commit();
    }
    doc.get_changes(&[])
}

fn own_changes(secret: &SecretKey, n: i64) -> Vec<automerge::Change> {
    changes_by(automerge_actor(&secret.public(), &DOC, &SALT), n)
}

fn header_for(secret: &SecretKey, author: OrgId, hashes: Vec<Hash32>) -> ChangeEnvelope {
    ChangeEnvelope {
        federation: FED,
        doc: DOC,
        author,
        key: secret.public(),
        session_salt: SALT,
        gov_heads: heads(),
        change_hashes: hashes,
    }
}

/// Builds wire bytes with no checks at all: what a malicious peer can send.
fn forge(header_bytes: &[u8], signature: &[u8; 64], changes: &[&[u8]]) -> Vec<u8> {
    let mut e = Encoder::new();
    e.map(3);
    e.key(0).bytes(header_bytes);
    e.key(1).bytes(signature);
    e.key(2).array(changes.len());
    for c in changes {
        e.bytes(c);
    }
    e.into_bytes()
}

/// A correctly signed envelope over `header` carrying `changes` verbatim.
fn forge_signed(secret: &SecretKey, header: &ChangeEnvelope, changes: &[&[u8]]) -> Vec<u8> {
    let hb = header.encode();
    forge(&hb, &secret.sign(Domain::ChangeEnvelope, &hb), changes)
}

fn hashes(changes: &[automerge::Change]) -> Vec<Hash32> {
    changes.iter().map(|c| Hash32(c.hash().0)).collect()
}

fn sealed(secret: &SecretKey, author: OrgId, n: i64) -> SignedEnvelope {
    ChangeEnvelope::seal(
        FED,
        DOC,
        author,
        secret,
        SALT,
        heads(),
        own_changes(secret, n),
    )
    .unwrap()
}

#[test]
fn actor_id_is_the_documented_hash_and_depends_on_every_input() {
    let (sk, _) = org(1);
    let key = sk.public();
    let mut pre = b"wsis/v1/actor\0".to_vec();
    pre.extend_from_slice(key.as_bytes());
    pre.extend_from_slice(DOC.as_bytes());
    pre.extend_from_slice(&SALT);
    let expected = actor_id(&key, &DOC, &SALT);
    assert_eq!(expected[..], sha256(&pre)[..16]);
    assert_eq!(
        automerge_actor(&key, &DOC, &SALT).to_bytes(),
        expected.as_slice()
    );
    assert_ne!(actor_id(&org(2).0.public(), &DOC, &SALT), expected);
    assert_ne!(actor_id(&key, &DocId([5; 32]), &SALT), expected);
    assert_ne!(actor_id(&key, &DOC, &[8; 16]), expected, "a new session");
}

#[test]
fn round_trip_keeps_bytes_and_changes_apply() {
    let (sk, author) = org(1);
    let env = sealed(&sk, author, 3);
    let again = SignedEnvelope::from_bytes(env.bytes(), FED).unwrap();
    assert_eq!(again, env);
    assert_eq!(again.id(), EnvelopeId::of_bytes(env.bytes()));
    assert_eq!(again.header(), env.header());
    assert_eq!(
        again.header().encode(),
        again.verified_header().header_bytes()
    );
    assert_eq!(again.header().doc, DOC);
    assert_eq!(again.header().author, author);
    assert_eq!(again.header().key, sk.public());
    assert_eq!(again.header().session_salt, SALT);
    assert_eq!(again.header().gov_heads, heads());
    assert_eq!(again.header().change_hashes, hashes(env.changes()));
    assert_eq!(
        sk.public().verify(
            Domain::ChangeEnvelope,
            again.verified_header().header_bytes(),
            again.verified_header().signature()
        ),
        Ok(())
    );
    // Sealing is deterministic: the same inputs give the same bytes and id.
    assert_eq!(sealed(&sk, author, 3).id(), env.id());
    // The batch is self-contained (the first change has no deps), and seqs count up from 1.
    assert!(again.verified_header().external_deps().is_empty());
    let keys = again.verified_header().change_keys();
    assert_eq!(keys.iter().map(|k| k.1).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert!(keys.iter().all(|k| k.0 == again.header().actor()));
    let mut doc = AutoCommit::new();
    doc.apply_changes(again.into_changes()).unwrap();
    let (v, _) = doc.get(ROOT, "k").unwrap().unwrap();
    assert_eq!(v.to_i64(), Some(2));
}

#[test]
fn gov_heads_are_sorted_and_deduplicated_when_sealing() {
    let (sk, author) = org(1);
    let env = ChangeEnvelope::seal(
        FED,
        DOC,
        author,
        &sk,
        SALT,
        vec![OpId([3; 32]), OpId([1; 32]), OpId([3; 32])],
        own_changes(&sk, 1),
    )
    .unwrap();
    let again = SignedEnvelope::from_bytes(env.bytes(), FED).unwrap();
    assert_eq!(again.header().gov_heads, [OpId([1; 32]), OpId([3; 32])]);
}

#[test]
fn a_later_batch_names_its_external_deps() {
    let (sk, author) = org(1);
    let all = own_changes(&sk, 3);
    let env =
        ChangeEnvelope::seal(FED, DOC, author, &sk, SALT, heads(), all[1..].to_vec()).unwrap();
    assert_eq!(
        env.verified_header().external_deps(),
        vec![Hash32(all[0].hash().0)]
    );
}

#[test]
fn seal_refuses_changes_by_another_actor() {
    let (sk, author) = org(1);
    let (other, _) = org(2);
    let mut changes = own_changes(&sk, 1);
    // Another org's derived actor for the same document and salt.
    changes.extend(changes_by(automerge_actor(&other.public(), &DOC, &SALT), 1));
    assert_eq!(
        ChangeEnvelope::seal(FED, DOC, author, &sk, SALT, heads(), changes).unwrap_err(),
        EnvelopeError::ForeignActor { index: 1 }
    );
    // A random actor.
    let random = changes_by(automerge::ActorId::random(), 1);
    assert_eq!(
        ChangeEnvelope::seal(FED, DOC, author, &sk, SALT, heads(), random).unwrap_err(),
        EnvelopeError::ForeignActor { index: 0 }
    );
    // Our own actor, but for another session.
    let stale = changes_by(automerge_actor(&sk.public(), &DOC, &[0; 16]), 1);
    assert_eq!(
        ChangeEnvelope::seal(FED, DOC, author, &sk, SALT, heads(), stale).unwrap_err(),
        EnvelopeError::ForeignActor { index: 0 }
    );
}

#[test]
fn seal_refuses_empty_and_duplicate_batches_and_missing_heads() {
    let (sk, author) = org(1);
    assert_eq!(
        ChangeEnvelope::seal(FED, DOC, author, &sk, SALT, heads(), vec![]).unwrap_err(),
        EnvelopeError::Structure("an envelope carries at least one change")
    );
    let one = own_changes(&sk, 1);
    let twice = vec![one[0].clone(), one[0].clone()];
    assert_eq!(
        ChangeEnvelope::seal(FED, DOC, author, &sk, SALT, heads(), twice).unwrap_err(),
        EnvelopeError::Structure("a change appears twice in one envelope")
    );
    assert_eq!(
        ChangeEnvelope::seal(FED, DOC, author, &sk, SALT, vec![], one).unwrap_err(),
        EnvelopeError::Structure("an envelope cites at least one governance head")
    );
}

/// Catalogue case 13: a change whose actor is not derived from the envelope's key.
#[test]
fn foreign_actor_is_rejected_on_receipt() {
    let (victim, _) = org(1);
    let (attacker, attacker_org) = org(2);
    // A change made under the victim's derived actor, signed into the attacker's envelope.
    let stolen = changes_by(automerge_actor(&victim.public(), &DOC, &SALT), 1);
    let own = own_changes(&attacker, 1);
    let header = header_for(
        &attacker,
        attacker_org,
        hashes(&[own[0].clone(), stolen[0].clone()]),
    );
    let bytes = forge_signed(
        &attacker,
        &header,
        &[own[0].raw_bytes(), stolen[0].raw_bytes()],
    );
    assert_eq!(
        SignedEnvelope::from_bytes(&bytes, FED),
        Err(EnvelopeError::ForeignActor { index: 1 })
    );
    // A random actor, and the attacker's own actor for another document.
    for actor in [
        automerge::ActorId::random(),
        automerge_actor(&attacker.public(), &DocId([5; 32]), &SALT),
    ] {
        let c = changes_by(actor, 1);
        let header = header_for(&attacker, attacker_org, hashes(&c));
        let bytes = forge_signed(&attacker, &header, &[c[0].raw_bytes()]);
        assert_eq!(
            SignedEnvelope::from_bytes(&bytes, FED),
            Err(EnvelopeError::ForeignActor { index: 0 })
        );
    }
    // Claiming the victim's key in the header makes the actor match, but then the signature cannot.
    let header = header_for(&victim, attacker_org, hashes(&stolen));
    let hb = header.encode();
    let bytes = forge(
        &hb,
        &attacker.sign(Domain::ChangeEnvelope, &hb),
        &[stolen[0].raw_bytes()],
    );
    assert_eq!(
        SignedEnvelope::from_bytes(&bytes, FED),
        Err(EnvelopeError::BadSignature)
    );
}

/// Catalogue case 14: change bytes that do not match the signed hash.
#[test]
fn swapped_or_reordered_changes_do_not_match_the_signed_hashes() {
    let (sk, author) = org(1);
    let signed = own_changes(&sk, 2);
    // Another valid change by the same actor at the same seq (what an equivocator or a relay could swap in).
    let mut other_doc = AutoCommit::new().with_actor(automerge_actor(&sk.public(), &DOC, &SALT));
    other_doc.put(ROOT, "k", "swapped").unwrap();
    let swapped = other_doc.get_last_local_change().unwrap();
    assert_eq!(swapped.seq(), signed[0].seq());
    let header = header_for(&sk, author, hashes(&signed));
    let bytes = forge_signed(&sk, &header, &[swapped.raw_bytes(), signed[1].raw_bytes()]);
    assert_eq!(
        SignedEnvelope::from_bytes(&bytes, FED),
        Err(EnvelopeError::HashMismatch { index: 0 })
    );
    let bytes = forge_signed(
        &sk,
        &header,
        &[signed[1].raw_bytes(), signed[0].raw_bytes()],
    );
    assert_eq!(
        SignedEnvelope::from_bytes(&bytes, FED),
        Err(EnvelopeError::HashMismatch { index: 0 })
    );
}

#[test]
fn flipping_any_byte_of_a_change_is_an_error_not_a_panic() {
    let (sk, author) = org(1);
    let changes = own_changes(&sk, 2);
    let header = header_for(&sk, author, hashes(&changes));
    let good = changes[1].raw_bytes().to_vec();
    for i in 0..good.len() {
        for mask in [0x01u8, 0x80, 0xff] {
            let mut bad = good.clone();
            bad[i] ^= mask;
            let bytes = forge_signed(&sk, &header, &[changes[0].raw_bytes(), &bad]);
            let r = SignedEnvelope::from_bytes(&bytes, FED);
            assert!(
                matches!(
                    r,
                    Err(EnvelopeError::MalformedChange { index: 1, .. }
                        | EnvelopeError::HashMismatch { index: 1 })
                ),
                "byte {i} ^ {mask:#x}: {r:?}"
            );
        }
    }
}

/// The checksum is outside the hash: without an explicit check, a relay could change it and so the
/// envelope's id while the signature still verified.
#[test]
fn a_wrong_checksum_is_rejected_although_the_hash_matches() {
    let (sk, author) = org(1);
    let c = own_changes(&sk, 1);
    let mut bad = c[0].raw_bytes().to_vec();
    bad[4] ^= 1;
    assert_eq!(
        automerge::Change::try_from(&bad[..]).map(|p| p.hash()).ok(),
        Some(c[0].hash()),
        "automerge alone accepts it with the same hash"
    );
    let header = header_for(&sk, author, hashes(&c));
    let bytes = forge_signed(&sk, &header, &[&bad]);
    assert!(matches!(
        SignedEnvelope::from_bytes(&bytes, FED),
        Err(EnvelopeError::MalformedChange { index: 0, .. })
    ));
}

/// A compressed chunk would be inflated before any check (a bomb), and has the same hash as the
/// uncompressed change, so it would be a second encoding of the same signed content.
#[test]
fn compressed_changes_are_rejected_before_parsing() {
    let (sk, author) = org(1);
    let mut doc = AutoCommit::new().with_actor(automerge_actor(&sk.public(), &DOC, &SALT));
    doc.put(ROOT, "text", "a".repeat(4096)).unwrap();
    let mut change = doc.get_last_local_change().unwrap();
    let compressed = change.bytes().into_owned();
    assert_eq!(compressed[8], CHUNK_TYPE_COMPRESSED_CHANGE);
    assert!(compressed.len() < change.raw_bytes().len());
    let header = header_for(&sk, author, vec![Hash32(change.hash().0)]);
    let bytes = forge_signed(&sk, &header, &[&compressed]);
    assert_eq!(
        SignedEnvelope::from_bytes(&bytes, FED),
        Err(EnvelopeError::MalformedChange {
            index: 0,
            reason: "compressed changes are not accepted".into()
        })
    );
    // The uncompressed form of the same change is fine.
    let bytes = forge_signed(&sk, &header, &[change.raw_bytes()]);
    assert!(SignedEnvelope::from_bytes(&bytes, FED).is_ok());
}

#[test]
fn a_non_minimal_chunk_length_is_rejected() {
    let (sk, author) = org(1);
    let c = own_changes(&sk, 1);
    let raw = c[0].raw_bytes();
    // Re-encode the one-byte length (< 128 here) as two LEB128 bytes: same data, same hash.
    assert!(raw[9] < 0x80);
    let mut bad = raw[..9].to_vec();
    bad.extend_from_slice(&[raw[9] | 0x80, 0x00]);
    bad.extend_from_slice(&raw[10..]);
    let header = header_for(&sk, author, hashes(&c));
    let bytes = forge_signed(&sk, &header, &[&bad]);
    assert_eq!(
        SignedEnvelope::from_bytes(&bytes, FED),
        Err(EnvelopeError::MalformedChange {
            index: 0,
            reason: "chunk length is not minimally encoded".into()
        })
    );
}

/// Catalogue case 1: a signature made for another purpose over the same header bytes does not verify.
#[test]
fn a_signature_from_another_domain_does_not_verify() {
    let (sk, author) = org(1);
    let c = own_changes(&sk, 1);
    let hb = header_for(&sk, author, hashes(&c)).encode();
    for domain in [
        Domain::GovernanceOp,
        Domain::OrgInception,
        Domain::BundleManifest,
    ] {
        let bytes = forge(&hb, &sk.sign(domain, &hb), &[c[0].raw_bytes()]);
        assert_eq!(
            SignedEnvelope::from_bytes(&bytes, FED),
            Err(EnvelopeError::BadSignature),
            "{domain:?}"
        );
    }
    let bytes = forge(&hb, &sk.sign_raw(&hb), &[c[0].raw_bytes()]);
    assert_eq!(
        SignedEnvelope::from_bytes(&bytes, FED),
        Err(EnvelopeError::BadSignature)
    );
}

#[test]
fn wrong_federation_is_rejected_even_on_the_last_byte() {
    let (sk, author) = org(1);
    let env = sealed(&sk, author, 1);
    let mut near = FED;
    near.0[31] ^= 1;
    assert_eq!(
        SignedEnvelope::from_bytes(env.bytes(), near),
        Err(EnvelopeError::WrongFederation {
            expected: near,
            found: FED
        })
    );
}

#[test]
fn truncation_at_every_cut_point_is_an_error() {
    let (sk, author) = org(1);
    let env = sealed(&sk, author, 2);
    let b = env.bytes();
    for cut in 0..b.len() {
        assert!(
            SignedEnvelope::from_bytes(&b[..cut], FED).is_err(),
            "cut at {cut}"
        );
    }
}

#[test]
fn trailing_bytes_are_rejected_outside_and_inside_the_header() {
    let (sk, author) = org(1);
    let env = sealed(&sk, author, 1);
    let mut b = env.bytes().to_vec();
    b.push(0);
    assert_eq!(
        SignedEnvelope::from_bytes(&b, FED),
        Err(EnvelopeError::Decode(DecodeError::TrailingBytes {
            count: 1
        }))
    );
    let mut hb = env.verified_header().header_bytes().to_vec();
    hb.push(0);
    let bytes = forge(
        &hb,
        &sk.sign(Domain::ChangeEnvelope, &hb),
        &[env.changes()[0].raw_bytes()],
    );
    assert_eq!(
        SignedEnvelope::from_bytes(&bytes, FED),
        Err(EnvelopeError::Decode(DecodeError::TrailingBytes {
            count: 1
        }))
    );
}

#[test]
fn oversized_input_is_refused_before_decoding() {
    let junk = vec![0xffu8; MAX_ENVELOPE_BYTES + 1];
    assert_eq!(
        SignedEnvelope::from_bytes(&junk, FED),
        Err(EnvelopeError::TooLarge {
            what: "envelope",
            len: MAX_ENVELOPE_BYTES + 1,
            max: MAX_ENVELOPE_BYTES
        })
    );
    // One change over its own cap, inside an envelope under the envelope cap.
    let (sk, author) = org(1);
    let big = vec![0u8; MAX_CHANGE_BYTES + 1];
    let header = header_for(&sk, author, vec![Hash32([0; 32])]);
    let bytes = forge_signed(&sk, &header, &[&big]);
    assert!(matches!(
        SignedEnvelope::from_bytes(&bytes, FED),
        Err(EnvelopeError::Decode(DecodeError::TooLong {
            what: "change",
            ..
        }))
    ));
}

#[test]
fn seal_refuses_a_batch_that_does_not_fit_one_envelope() {
    let (sk, author) = org(1);
    let mut doc = AutoCommit::new().with_actor(automerge_actor(&sk.public(), &DOC, &SALT));
    for i in 0..9 {
        doc.put(ROOT, "blob", vec![i as u8; 1000 * 1000]).unwrap();
        doc.commit();
    }
    let changes = doc.get_changes(&[]);
    assert!(changes
        .iter()
        .all(|c| c.raw_bytes().len() <= MAX_CHANGE_BYTES));
    assert!(matches!(
        ChangeEnvelope::seal(FED, DOC, author, &sk, SALT, heads(), changes),
        Err(EnvelopeError::TooLarge {
            what: "envelope",
            ..
        })
    ));
}

#[test]
fn empty_batches_duplicates_and_count_mismatches_are_rejected() {
    let (sk, author) = org(1);
    let c = own_changes(&sk, 2);
    let empty = forge_signed(&sk, &header_for(&sk, author, vec![]), &[]);
    assert_eq!(
        SignedEnvelope::from_bytes(&empty, FED),
        Err(EnvelopeError::Structure(
            "an envelope carries at least one change"
        ))
    );
    let h = hashes(&c);
    let dup = forge_signed(
        &sk,
        &header_for(&sk, author, vec![h[0], h[0]]),
        &[c[0].raw_bytes(), c[0].raw_bytes()],
    );
    assert_eq!(
        SignedEnvelope::from_bytes(&dup, FED),
        Err(EnvelopeError::Structure(
            "a change appears twice in one envelope"
        ))
    );
    let short = forge_signed(
        &sk,
        &header_for(&sk, author, h.clone()),
        &[c[0].raw_bytes()],
    );
    assert_eq!(
        SignedEnvelope::from_bytes(&short, FED),
        Err(EnvelopeError::ChangeCountMismatch {
            hashes: 2,
            changes: 1
        })
    );
    let long = forge_signed(
        &sk,
        &header_for(&sk, author, vec![h[0]]),
        &[c[0].raw_bytes(), c[1].raw_bytes()],
    );
    assert_eq!(
        SignedEnvelope::from_bytes(&long, FED),
        Err(EnvelopeError::ChangeCountMismatch {
            hashes: 1,
            changes: 2
        })
    );
}

#[test]
fn governance_heads_must_be_present_sorted_and_unique() {
    let (sk, author) = org(1);
    let c = own_changes(&sk, 1);
    for (gov_heads, expected) in [
        (
            vec![],
            EnvelopeError::Structure("an envelope cites at least one governance head"),
        ),
        (
            vec![OpId([2; 32]), OpId([1; 32])],
            EnvelopeError::Decode(DecodeError::Invalid(
                "id lists must be sorted ascending without duplicates",
            )),
        ),
        (
            vec![OpId([1; 32]), OpId([1; 32])],
            EnvelopeError::Decode(DecodeError::Invalid(
                "id lists must be sorted ascending without duplicates",
            )),
        ),
    ] {
        let mut header = header_for(&sk, author, hashes(&c));
        header.gov_heads = gov_heads;
        let bytes = forge_signed(&sk, &header, &[c[0].raw_bytes()]);
        assert_eq!(SignedEnvelope::from_bytes(&bytes, FED), Err(expected));
    }
}

/// Re-encodes a valid header with one field replaced, signed correctly: the decoder, not the signature,
/// must refuse it.
#[test]
fn unknown_version_unknown_fields_and_non_minimal_ints_are_rejected() {
    let (sk, author) = org(1);
    let c = own_changes(&sk, 1);
    let header = header_for(&sk, author, hashes(&c));
    let good = header.encode();
    // `a8 00 01 ...`: map of 8, key 0, version 1.
    assert_eq!(&good[..3], &[0xa8, 0x00, 0x01]);
    let mut v2 = good.clone();
    v2[2] = 0x02;
    let mut non_minimal = vec![0xa8, 0x00, 0x18, 0x01];
    non_minimal.extend_from_slice(&good[3..]);
    let mut extra = good.clone();
    extra[0] = 0xa9;
    extra.extend_from_slice(&[0x08, 0x00]);
    let mut dup_key = vec![0xa9, 0x00, 0x01];
    dup_key.extend_from_slice(&good[1..]);
    for (hb, check) in [
        (
            v2,
            (|e: &EnvelopeError| e == &EnvelopeError::Decode(DecodeError::UnknownVersion(2)))
                as fn(&EnvelopeError) -> bool,
        ),
        (non_minimal, |e| {
            matches!(e, EnvelopeError::Decode(DecodeError::NonMinimal { .. }))
        }),
        (extra, |e| {
            e == &EnvelopeError::Decode(DecodeError::UnknownFields { count: 1 })
        }),
        (dup_key, |e| {
            matches!(e, EnvelopeError::Decode(DecodeError::UnexpectedKey { .. }))
        }),
    ] {
        let bytes = forge(
            &hb,
            &sk.sign(Domain::ChangeEnvelope, &hb),
            &[c[0].raw_bytes()],
        );
        let r = SignedEnvelope::from_bytes(&bytes, FED);
        assert!(r.as_ref().is_err_and(check), "{r:?}");
    }
}

#[test]
fn weak_keys_and_wrong_signers_are_rejected() {
    let (sk, author) = org(1);
    let c = own_changes(&sk, 1);
    // All-zero key: a small-order point, refused while decoding.
    let mut hb = header_for(&sk, author, hashes(&c)).encode();
    let key_at = hb
        .windows(32)
        .position(|w| w == sk.public().as_bytes())
        .unwrap();
    hb[key_at..key_at + 32].fill(0);
    let bytes = forge(
        &hb,
        &sk.sign(Domain::ChangeEnvelope, &hb),
        &[c[0].raw_bytes()],
    );
    assert_eq!(
        SignedEnvelope::from_bytes(&bytes, FED),
        Err(EnvelopeError::Key(CryptoError::WeakKey))
    );
    // A valid envelope whose signature is flipped in one bit.
    let env = sealed(&sk, author, 1);
    let mut sig = *env.verified_header().signature();
    sig[10] ^= 1;
    let bytes = forge(
        env.verified_header().header_bytes(),
        &sig,
        &[env.changes()[0].raw_bytes()],
    );
    assert_eq!(
        SignedEnvelope::from_bytes(&bytes, FED),
        Err(EnvelopeError::BadSignature)
    );
}

/// What the node's equivocation check needs: two envelopes carrying different changes with the same
/// (actor, seq) show it in `change_keys`.
#[test]
fn change_keys_expose_automerge_equivocation() {
    let (sk, author) = org(1);
    let actor = automerge_actor(&sk.public(), &DOC, &SALT);
    let mut a = AutoCommit::new().with_actor(actor.clone());
    a.put(ROOT, "k", 1).unwrap();
    let mut b = AutoCommit::new().with_actor(actor);
    b.put(ROOT, "k", 2).unwrap();
    let seal = |c: automerge::Change| {
        ChangeEnvelope::seal(FED, DOC, author, &sk, SALT, heads(), vec![c]).unwrap()
    };
    let ea = seal(a.get_last_local_change().unwrap());
    let eb = seal(b.get_last_local_change().unwrap());
    let (ka, kb) = (
        ea.verified_header().change_keys()[0],
        eb.verified_header().change_keys()[0],
    );
    assert_eq!((ka.0, ka.1), (kb.0, kb.1));
    assert_ne!(ka.2, kb.2);
}

// ---- The two stages ------------------------------------------------------------------------------------

fn uleb(mut v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return out;
        }
        out.push(b | 0x80);
    }
}

/// A chunk of `chunk_type` around `data`, with a minimal length and the checksum of its SHA-256: framing that
/// passes every stage-1 check, whatever `data` is.
fn frame(chunk_type: u8, data: &[u8]) -> Vec<u8> {
    let mut hashed = vec![chunk_type];
    hashed.extend(uleb(data.len() as u64));
    hashed.extend_from_slice(data);
    let hash = sha256(&hashed);
    let mut chunk = AUTOMERGE_MAGIC.to_vec();
    chunk.extend_from_slice(&hash[..4]);
    chunk.extend(hashed);
    chunk
}

/// The hash stage 1 computes for a chunk: SHA-256 of everything after the magic bytes and the checksum.
fn chunk_hash(chunk: &[u8]) -> Hash32 {
    Hash32(sha256(&chunk[8..]))
}

/// Change data with a well-formed front (deps, actor, seq, start op, time, message, other actors) followed
/// by one op column that claims far more bytes than there are: Automerge's parser rejects it.
fn garbage_ops(actor: &[u8], seq: u64, deps: &[Hash32]) -> Vec<u8> {
    let mut d = uleb(deps.len() as u64);
    for h in deps {
        d.extend_from_slice(&h.0);
    }
    d.extend(uleb(actor.len() as u64));
    d.extend_from_slice(actor);
    d.extend(uleb(seq));
    d.extend(uleb(1)); // start op
    d.push(0); // time
    d.extend(uleb(0)); // message
    d.extend(uleb(0)); // other actors
    d.extend(uleb(1)); // one column ...
    d.extend(uleb(0x01)); // ... with some spec ...
    d.extend(uleb(1 << 40)); // ... and a length that is not there
    d.extend_from_slice(&[0xff; 16]);
    d
}

fn automerge_rejects(chunk: &[u8]) -> bool {
    automerge::Change::try_from(chunk).is_err()
}

/// Automerge 0.7's change hash (`storage::chunk::hash`) is SHA-256 over the chunk type, the minimal LEB128
/// data length and the data: for a chunk that passes our framing check, SHA-256 of the bytes after the magic
/// and the checksum. Stage 1 computes it itself; here it must equal `Change::hash()` for real changes of
/// every shape, and the front of each chunk must read as Automerge reads it.
#[test]
fn stage_one_hash_and_prefix_agree_with_automerge() {
    let (sk, _) = org(1);
    let actor = automerge_actor(&sk.public(), &DOC, &SALT);
    let mut changes = own_changes(&sk, 3);
    // A long value: 2- and 3-byte LEB128 chunk lengths.
    for len in [200, 20_000] {
        let mut doc = AutoCommit::new().with_actor(actor.clone());
        doc.put(ROOT, "text", "x".repeat(len)).unwrap();
        changes.push(doc.get_last_local_change().unwrap());
    }
    // A commit message, and a merge commit with two dependencies.
    let mut a = AutoCommit::new().with_actor(actor.clone());
    a.put(ROOT, "k", 1).unwrap();
    a.commit_with(automerge::transaction::CommitOptions::default().with_message("hello"));
    changes.push(a.get_last_local_change().unwrap());
    let mut b = a.fork().with_actor(automerge::ActorId::random());
    b.put(ROOT, "b", 1).unwrap();
    b.commit();
    a.put(ROOT, "a", 1).unwrap();
    a.commit();
    a.merge(&mut b).unwrap();
    a.put(ROOT, "after", 1).unwrap();
    a.commit();
    let merged = a.get_last_local_change().unwrap();
    assert_eq!(merged.deps().len(), 2);
    changes.push(merged);
    let mut length_bytes = std::collections::BTreeSet::new();
    for c in &changes {
        let raw = c.raw_bytes();
        let chunk = check_chunk_framing(raw).unwrap();
        length_bytes.insert(chunk.hashed.len() - 1 - chunk.data.len());
        let ours = sha256(chunk.hashed);
        assert_eq!(ours, c.hash().0);
        assert_eq!(ours, sha256(&raw[8..]));
        // Automerge's definition, spelled out.
        let mut pre = vec![CHUNK_TYPE_CHANGE];
        pre.extend(uleb(chunk.data.len() as u64));
        pre.extend_from_slice(chunk.data);
        assert_eq!(ours, sha256(&pre));
        assert_eq!(raw[4..8], ours[..4], "checksum");
        let (deps, change_actor, seq) = read_change_prefix(chunk.data).unwrap();
        assert_eq!(
            deps,
            c.deps().iter().map(|h| Hash32(h.0)).collect::<Vec<_>>()
        );
        assert_eq!(change_actor, c.actor_id().to_bytes());
        assert_eq!(seq, c.seq());
    }
    assert_eq!(length_bytes.into_iter().collect::<Vec<_>>(), vec![1, 2, 3]);
}

#[test]
fn the_stages_compose_to_from_bytes_and_seal() {
    let (sk, author) = org(1);
    let all = own_changes(&sk, 3);
    let env =
        ChangeEnvelope::seal(FED, DOC, author, &sk, SALT, heads(), all[1..].to_vec()).unwrap();
    let header = VerifiedHeader::from_bytes(env.bytes(), FED).unwrap();
    // What `seal` built equals what stage 1 reads from the bytes, to the per-change facts.
    assert_eq!(&header, env.verified_header());
    assert_eq!(header.changes, env.verified_header().changes);
    assert_eq!(header.id(), env.id());
    assert_eq!(header.bytes(), env.bytes());
    assert_eq!(header.header_bytes(), env.verified_header().header_bytes());
    assert_eq!(header.signature(), env.verified_header().signature());
    assert_eq!(header.header(), env.header());
    assert_eq!(header.header().federation, FED);
    assert_eq!(header.header().doc, DOC);
    assert_eq!(header.header().author, author);
    assert_eq!(header.header().key, sk.public());
    assert_eq!(header.header().session_salt, SALT);
    assert_eq!(header.header().gov_heads, heads());
    assert_eq!(header.header().change_hashes, hashes(&all[1..]));
    assert_eq!(header.header().actor(), env.header().actor());
    assert!(header
        .raw_changes()
        .eq(all[1..].iter().map(|c| c.raw_bytes())));
    // Dependencies and (actor, seq) are known before Automerge parses anything.
    assert_eq!(header.external_deps(), vec![Hash32(all[0].hash().0)]);
    assert_eq!(header.change_keys(), env.verified_header().change_keys());
    assert_eq!(
        header.change_keys().iter().map(|k| k.1).collect::<Vec<_>>(),
        vec![2, 3]
    );
    let full = header.parse_changes().unwrap();
    assert_eq!(full, env);
    assert_eq!(full.changes(), env.changes());
    assert_eq!(SignedEnvelope::from_bytes(env.bytes(), FED).unwrap(), full);
}

/// Bytes Automerge's parser rejects pass stage 1 when they are framed, hashed and signed correctly: stage 1
/// never ran Automerge on them. Stage 2 rejects them.
#[test]
fn stage_one_accepts_signed_garbage_ops_and_stage_two_rejects_them() {
    let (sk, author) = org(1);
    let actor = actor_id(&sk.public(), &DOC, &SALT);
    let good = own_changes(&sk, 1);
    // Ops whose columns stage 1 can count but whose contents Automerge refuses (predecessor references with no
    // predecessor columns): stage 1 accepts, stage 2 refuses.
    let garbage = op_bomb_change(actor, 2, 5, 1);
    assert!(automerge_rejects(&garbage));
    let header = header_for(
        &sk,
        author,
        vec![Hash32(good[0].hash().0), chunk_hash(&garbage)],
    );
    let bytes = forge_signed(&sk, &header, &[good[0].raw_bytes(), &garbage]);
    let verified = VerifiedHeader::from_bytes(&bytes, FED).unwrap();
    assert_eq!(verified.raw_changes().nth(1), Some(&garbage[..]));
    assert_eq!(verified.change_keys()[1].2, chunk_hash(&garbage));
    let r = verified.parse_changes();
    assert!(
        matches!(r, Err(EnvelopeError::MalformedChange { index: 1, .. })),
        "{r:?}"
    );
    assert_eq!(
        SignedEnvelope::from_bytes(&bytes, FED).map(|_| ()),
        r.map(|_| ())
    );
    // Ops whose columns claim more bytes than there are: stage 1 refuses them itself, from the column metadata,
    // after reading the front (dependencies, actor, seq) and the signature without Automerge.
    let dep = Hash32([0xab; 32]);
    let garbage = frame(CHUNK_TYPE_CHANGE, &garbage_ops(&actor, 2, &[dep]));
    assert!(automerge_rejects(&garbage));
    let header = header_for(&sk, author, vec![chunk_hash(&garbage)]);
    let r = VerifiedHeader::from_bytes(&forge_signed(&sk, &header, &[&garbage]), FED).map(|_| ());
    assert!(
        matches!(r, Err(EnvelopeError::MalformedChange { index: 0, ref reason }) if reason.contains("op columns")),
        "{r:?}"
    );
}

/// Each rejection below comes from stage 1 on a change Automerge cannot parse, so none of them needed
/// Automerge: had it run first, the error would have been its `MalformedChange`.
#[test]
fn stage_one_rejects_forgeries_without_automerge() {
    let (sk, author) = org(1);
    let (other, _) = org(2);
    let actor = actor_id(&sk.public(), &DOC, &SALT);
    let garbage = frame(CHUNK_TYPE_CHANGE, &garbage_ops(&actor, 1, &[]));
    assert!(automerge_rejects(&garbage));
    let stage1 = |header: &[u8], sig: &[u8; 64], change: &[u8]| {
        VerifiedHeader::from_bytes(&forge(header, sig, &[change]), FED)
    };

    // Wrong hash: the header signs another change.
    let hb = header_for(&sk, author, vec![Hash32([0x11; 32])]).encode();
    assert_eq!(
        stage1(&hb, &sk.sign(Domain::ChangeEnvelope, &hb), &garbage),
        Err(EnvelopeError::HashMismatch { index: 0 })
    );
    // One byte of the change flipped, the checksum fixed up to match: still not the signed hash.
    let mut data = check_chunk_framing(&garbage).unwrap().data.to_vec();
    let last = data.len() - 1;
    data[last] ^= 1;
    let tampered = frame(CHUNK_TYPE_CHANGE, &data);
    let hb = header_for(&sk, author, vec![chunk_hash(&garbage)]).encode();
    assert_eq!(
        stage1(&hb, &sk.sign(Domain::ChangeEnvelope, &hb), &tampered),
        Err(EnvelopeError::HashMismatch { index: 0 })
    );

    // Forged signature: right hash, signed by another key or with one bit flipped.
    assert_eq!(
        stage1(&hb, &other.sign(Domain::ChangeEnvelope, &hb), &garbage),
        Err(EnvelopeError::BadSignature)
    );
    let mut sig = sk.sign(Domain::ChangeEnvelope, &hb);
    sig[0] ^= 1;
    assert_eq!(
        stage1(&hb, &sig, &garbage),
        Err(EnvelopeError::BadSignature)
    );
    // Correctly signed, it passes every check before the op count, which refuses an op column that claims more
    // bytes than there are (still without Automerge).
    assert!(matches!(
        stage1(&hb, &sk.sign(Domain::ChangeEnvelope, &hb), &garbage),
        Err(EnvelopeError::MalformedChange { index: 0, ref reason }) if reason.contains("op columns")
    ));

    // Foreign actor: the actor at the front of the chunk is not the derived one.
    let other_actor = actor_id(&other.public(), &DOC, &SALT);
    let foreign = frame(CHUNK_TYPE_CHANGE, &garbage_ops(&other_actor, 1, &[]));
    assert!(automerge_rejects(&foreign));
    let hb = header_for(&sk, author, vec![chunk_hash(&foreign)]).encode();
    assert_eq!(
        stage1(&hb, &sk.sign(Domain::ChangeEnvelope, &hb), &foreign),
        Err(EnvelopeError::ForeignActor { index: 0 })
    );

    // Compressed: a deflate stream that is not one, framed and hashed correctly. Automerge would try to
    // inflate it; stage 1 refuses the chunk type.
    let bomb = frame(CHUNK_TYPE_COMPRESSED_CHANGE, &[0xff; 64]);
    assert!(automerge_rejects(&bomb));
    let hb = header_for(&sk, author, vec![chunk_hash(&bomb)]).encode();
    assert_eq!(
        stage1(&hb, &sk.sign(Domain::ChangeEnvelope, &hb), &bomb),
        Err(EnvelopeError::MalformedChange {
            index: 0,
            reason: "compressed changes are not accepted".into()
        })
    );
}

/// The counts and lengths at the front of a change come from the sender: they are checked against the bytes
/// present before anything is allocated or read.
#[test]
fn stage_one_does_not_trust_counts_in_the_change_front() {
    let (sk, author) = org(1);
    let actor = actor_id(&sk.public(), &DOC, &SALT);
    let mut huge_deps = uleb(u64::MAX);
    huge_deps.extend_from_slice(&[0; 64]);
    let mut huge_actor = uleb(0);
    huge_actor.extend(uleb(u64::MAX));
    huge_actor.extend_from_slice(&actor);
    let mut no_seq = uleb(0);
    no_seq.extend(uleb(16));
    no_seq.extend_from_slice(&actor);
    let mut non_minimal_seq = no_seq.clone();
    non_minimal_seq.extend_from_slice(&[0x81, 0x00]);
    for (data, reason) in [
        (vec![], "malformed dependency count"),
        (huge_deps, "dependencies are cut off"),
        (huge_actor, "actor id is cut off"),
        (no_seq, "malformed seq"),
        (non_minimal_seq, "malformed seq"),
    ] {
        let chunk = frame(CHUNK_TYPE_CHANGE, &data);
        let header = header_for(&sk, author, vec![chunk_hash(&chunk)]);
        assert_eq!(
            VerifiedHeader::from_bytes(&forge_signed(&sk, &header, &[&chunk]), FED),
            Err(EnvelopeError::MalformedChange {
                index: 0,
                reason: reason.into()
            }),
            "{reason}"
        );
    }
}

/// Stage 2 re-checks what stage 1 established, against Automerge's own reading (defence in depth: the two
/// readers must never disagree).
#[test]
fn stage_two_cross_checks_stage_one() {
    let (sk, author) = org(1);
    let env = sealed(&sk, author, 2);
    let fresh = || VerifiedHeader::from_bytes(env.bytes(), FED).unwrap();
    let disagree = Err(EnvelopeError::MalformedChange {
        index: 1,
        reason: "automerge reads the change's seq, dependencies or op count differently".into(),
    });

    let mut h = fresh();
    h.changes[1].facts.seq += 1;
    assert_eq!(h.parse_changes(), disagree);
    let mut h = fresh();
    h.changes[1].facts.deps.clear();
    assert_eq!(h.parse_changes(), disagree);
    let mut h = fresh();
    h.changes[1].facts.deps.push(Hash32([0; 32]));
    assert_eq!(h.parse_changes(), disagree);
    let mut h = fresh();
    h.changes[1].facts.ops += 1;
    assert_eq!(h.parse_changes(), disagree);
    let mut h = fresh();
    h.header.change_hashes[1].0[31] ^= 1;
    assert_eq!(
        h.parse_changes(),
        Err(EnvelopeError::HashMismatch { index: 1 })
    );
    let mut h = fresh();
    h.header.session_salt[0] ^= 1;
    assert_eq!(
        h.parse_changes(),
        Err(EnvelopeError::ForeignActor { index: 0 })
    );
    assert_eq!(fresh().parse_changes(), Ok(env));
}

#[test]
fn leb128_reading_follows_automerge() {
    let read = |b: &[u8]| {
        let mut i = b;
        read_uleb128(&mut i).map(|v| (v, i.len()))
    };
    assert_eq!(read(&[0x00]), Ok((0, 0)));
    assert_eq!(read(&[0x7f, 0x01]), Ok((127, 1)));
    assert_eq!(read(&[0x80, 0x01]), Ok((128, 0)));
    assert_eq!(read(&uleb(u64::MAX)), Ok((u64::MAX, 0)));
    assert_eq!(uleb(u64::MAX).len(), 10);
    for v in [1u64, 300, 1 << 35, (1 << 63) + 5] {
        assert_eq!(read(&uleb(v)), Ok((v, 0)));
    }
    let mut too_large = vec![0xff; 9];
    too_large.push(0x02);
    assert_eq!(read(&too_large), Err(Leb128Error::TooLarge));
    let mut eleven = vec![0x80; 10];
    eleven.push(0x00);
    assert_eq!(read(&eleven), Err(Leb128Error::TooLarge));
    assert_eq!(read(&[0x80, 0x00]), Err(Leb128Error::NonMinimal));
    assert_eq!(read(&[0xff, 0x80, 0x00]), Err(Leb128Error::NonMinimal));
    assert_eq!(read(&[]), Err(Leb128Error::CutOff));
    assert_eq!(read(&[0x80]), Err(Leb128Error::CutOff));
}

/// The op bomb: a change of a few dozen bytes whose run-length columns claim more ops, or more predecessor
/// references, than the caps is refused at stage 1 from its column metadata, before Automerge sees it; so is an
/// envelope whose changes are each under the cap but together over the envelope's. Under the caps the same
/// encoding passes both stages, and Automerge counts the ops stage 1 counted.
#[test]
fn an_op_bomb_is_refused_at_stage_one_before_automerge_runs() {
    let (sk, author) = org(1);
    let actor = actor_id(&sk.public(), &DOC, &SALT);
    for (n, preds, what, count, max) in [
        (
            MAX_CHANGE_OPS + 1,
            0,
            "ops",
            MAX_CHANGE_OPS + 1,
            MAX_CHANGE_OPS,
        ),
        (1 << 40, 0, "ops", 1 << 40, MAX_CHANGE_OPS),
        (
            1,
            MAX_CHANGE_PREDS + 1,
            "predecessor references",
            MAX_CHANGE_PREDS + 1,
            MAX_CHANGE_PREDS,
        ),
    ] {
        let chunk = op_bomb_change(actor, 1, n, preds);
        assert!(chunk.len() < 120, "{} bytes", chunk.len());
        let header = header_for(&sk, author, vec![chunk_hash(&chunk)]);
        let bytes = forge_signed(&sk, &header, &[&chunk]);
        let refused = Err(EnvelopeError::ChangeTooCostly {
            index: 0,
            what,
            count,
            max,
        });
        assert_eq!(VerifiedHeader::from_bytes(&bytes, FED).map(|_| ()), refused);
        assert_eq!(SignedEnvelope::from_bytes(&bytes, FED).map(|_| ()), refused);
    }

    let chunks: Vec<Vec<u8>> = (1..=5)
        .map(|seq| op_bomb_change(actor, seq, MAX_CHANGE_OPS, 0))
        .collect();
    let header = header_for(&sk, author, chunks.iter().map(|c| chunk_hash(c)).collect());
    let parts: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
    assert_eq!(
        VerifiedHeader::from_bytes(&forge_signed(&sk, &header, &parts), FED).map(|_| ()),
        Err(EnvelopeError::EnvelopeTooCostly {
            count: 5 * MAX_CHANGE_OPS,
            max: MAX_ENVELOPE_OPS
        })
    );

    let small = op_bomb_change(actor, 1, 5, 0);
    let header = header_for(&sk, author, vec![chunk_hash(&small)]);
    let env = SignedEnvelope::from_bytes(&forge_signed(&sk, &header, &[&small]), FED).unwrap();
    assert_eq!(env.changes()[0].len(), 5);
}
