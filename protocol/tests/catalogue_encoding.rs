//! The encoding and crypto part of the trust model's attack and bad-input catalogue (cases 1–6, and the encoding
//! side of case 15). Every test starts from real signed ops of the golden federation (`tests/common`) and mutates
//! their bytes, re-encoding with the public `cbor::Encoder` and re-signing where the point is that *only* the
//! encoding is wrong.
//!
//! Over 800 lines on purpose: one test per catalogue case, each with many mutations of the same golden ops; one
//! file keeps the catalogue's numbering in one place.
#![allow(clippy::unwrap_used)]

mod common;

use common::{assemble, fields, item, sign_wrap, unwrap, with_field, wrap, Golden, T0};
use sha2::{Digest, Sha512};
use wsis_protocol::cbor::DecodeError;
use wsis_protocol::crypto::{CryptoError, Domain, PublicKey, SecretKey};
use wsis_protocol::limits::{
    MAX_INCEPTION_BYTES, MAX_OP_BYTES, MAX_PARENTS, MAX_TEXT_BYTES, MAX_TIMESTAMP_MS,
};
use wsis_protocol::op::{
    Inception, OpError, OpKind, SignedInception, SignedOp, StakeholderType, TeamCode,
};

/// Both `SignedOp::decode` and `SignedOp::from_bytes` refuse the bytes with an error matching the pattern.
macro_rules! assert_op_err {
    ($bytes:expr, $pat:pat $(if $guard:expr)?) => {{
        let owned = &$bytes;
        let bytes: &[u8] = owned.as_ref();
        let r = SignedOp::decode(bytes);
        assert!(
            matches!(r, Err($pat) $(if $guard)?),
            "decode: expected {}, got {:?}",
            stringify!($pat),
            r
        );
        let r = SignedOp::from_bytes(bytes);
        assert!(
            matches!(r, Err($pat) $(if $guard)?),
            "from_bytes: expected {}, got {:?}",
            stringify!($pat),
            r
        );
    }};
}

/// `SignedInception::from_bytes` refuses the bytes with an error matching the pattern.
macro_rules! assert_inception_err {
    ($bytes:expr, $pat:pat $(if $guard:expr)?) => {{
        let owned = &$bytes;
        let bytes: &[u8] = owned.as_ref();
        let r = SignedInception::from_bytes(bytes);
        assert!(
            matches!(r, Err($pat) $(if $guard)?),
            "expected {}, got {:?}",
            stringify!($pat),
            r
        );
    }};
}

const JOIN: &str = "join-team-ngo-c7-ehealth";

/// The fields of the body of the NGO's JoinTeam op: 0 version, 1 federation, 2 author, 3 key, 4 seq, 5 parents,
/// 6 timestamp, 7 kind, 8 payload.
fn join_fields(g: &Golden) -> Vec<(u64, Vec<u8>)> {
    let (body, _) = unwrap(g.op(JOIN).bytes());
    fields(&body)
}

/// A body made of `fields`, properly signed by the NGO: whatever is refused is refused for its encoding.
fn ngo_signed(g: &Golden, fields: &[(u64, Vec<u8>)]) -> Vec<u8> {
    sign_wrap(&g.ngo.secret, Domain::GovernanceOp, &assemble(fields))
}

fn u64_item(v: u64) -> Vec<u8> {
    item(|e| {
        e.u64(v);
    })
}

fn bytes_item(v: &[u8]) -> Vec<u8> {
    item(|e| {
        e.bytes(v);
    })
}

fn text_item(v: &str) -> Vec<u8> {
    item(|e| {
        e.text(v);
    })
}

/// An inception record body with fields replaced, signed by `secret` in the inception domain.
fn inception_with(secret: &SecretKey, rec: &SignedInception, key: u64, value: Vec<u8>) -> Vec<u8> {
    let (body, _) = unwrap(rec.bytes());
    let body = assemble(&with_field(&fields(&body), key, value));
    sign_wrap(secret, Domain::OrgInception, &body)
}

/// The Kenya OrgInception op with its embedded inception record replaced by `record`, re-signed.
fn kenya_inception_op_with(g: &Golden, record: &[u8]) -> Vec<u8> {
    let (body, _) = unwrap(g.op("inception-kenya").bytes());
    let payload = item(|e| {
        e.map(1).key(0).bytes(record);
    });
    let body = assemble(&with_field(&fields(&body), 8, payload));
    sign_wrap(&g.kenya.secret, Domain::GovernanceOp, &body)
}

// ---------------------------------------------------------------------------------------------------------------

#[test]
fn case_01_signature_replayed_across_domains() {
    let g = Golden::build();
    let op = g.op(JOIN);
    let (body, sig) = unwrap(op.bytes());
    let key = g.ngo.secret.public();

    // Control: the op verifies in its own domain, and the signature is over the tagged preimage.
    SignedOp::from_bytes(op.bytes()).unwrap();
    assert_eq!(key.verify(Domain::GovernanceOp, &body, &sig), Ok(()));
    assert_eq!(
        key.verify_raw(&Domain::GovernanceOp.preimage(&body), &sig),
        Ok(())
    );

    // The op's signature is refused in every other domain and with no domain at all.
    for d in [
        Domain::OrgInception,
        Domain::ChangeEnvelope,
        Domain::BundleManifest,
    ] {
        assert_eq!(key.verify(d, &body, &sig), Err(CryptoError::BadSignature));
    }
    assert_eq!(key.verify_raw(&body, &sig), Err(CryptoError::BadSignature));

    // The same body, signed by the right key but for another purpose, decodes (the bytes are fine) and does not
    // verify as an op.
    let others = [
        g.ngo.secret.sign(Domain::OrgInception, &body),
        g.ngo.secret.sign(Domain::ChangeEnvelope, &body),
        g.ngo.secret.sign(Domain::BundleManifest, &body),
        g.ngo.secret.sign_raw(&body),
    ];
    for other in others {
        let forged = wrap(&body, &other);
        assert!(SignedOp::decode(&forged).is_ok());
        assert_eq!(
            SignedOp::from_bytes(&forged).unwrap_err(),
            OpError::BadSignature
        );
    }

    // An inception record signed in any domain but its own is refused.
    let (ibody, _) = unwrap(g.ngo.inception.bytes());
    SignedInception::from_bytes(g.ngo.inception.bytes()).unwrap();
    for d in [
        Domain::GovernanceOp,
        Domain::ChangeEnvelope,
        Domain::BundleManifest,
    ] {
        assert_inception_err!(sign_wrap(&g.ngo.secret, d, &ibody), OpError::BadSignature);
    }
    assert_inception_err!(
        wrap(&ibody, &g.ngo.secret.sign_raw(&ibody)),
        OpError::BadSignature
    );

    // A signature of one op moved onto another op by the same key (same domain, other bytes) is refused.
    let (other_body, other_sig) = unwrap(g.op("inception-ngo").bytes());
    assert_eq!(
        SignedOp::from_bytes(&wrap(&other_body, &sig)).unwrap_err(),
        OpError::BadSignature
    );
    assert_eq!(
        SignedOp::from_bytes(&wrap(&body, &other_sig)).unwrap_err(),
        OpError::BadSignature
    );

    // The preimages can't collide: tags are distinct, contain no 0 byte, and none is a prefix of another.
    let tags = [
        Domain::OrgInception,
        Domain::GovernanceOp,
        Domain::ChangeEnvelope,
        Domain::BundleManifest,
    ]
    .map(|d| d.tag());
    for (i, a) in tags.iter().enumerate() {
        assert!(!a.contains(&0));
        for (j, b) in tags.iter().enumerate() {
            if i != j {
                assert!(!a.starts_with(b), "{a:?} / {b:?}");
            }
        }
    }
}

#[test]
fn case_02_non_canonical_encodings() {
    let g = Golden::build();
    let op = g.op(JOIN);
    let f = join_fields(&g);
    let (body, sig) = unwrap(op.bytes());
    // Control: the field-level re-assembly is byte-identical, and re-signing it gives the very same op.
    assert_eq!(assemble(&f), body);
    assert_eq!(ngo_signed(&g, &f), op.bytes());

    // --- Duplicate keys.
    let mut dup = f.clone();
    dup.insert(5, f[4].clone()); // seq twice
    assert_eq!(dup[4].0, 4);
    assert_op_err!(
        ngo_signed(&g, &dup),
        OpError::Decode(DecodeError::UnexpectedKey {
            expected: 5,
            found: 4
        })
    );
    let mut dup = f.clone();
    dup.push(f[8].clone()); // the payload twice, at the end
    assert_op_err!(
        ngo_signed(&g, &dup),
        OpError::Decode(DecodeError::UnknownFields { count: 1 })
    );
    // Duplicate key in the signed wrapper.
    let twice = item(|e| {
        e.map(2).key(0).bytes(&body).key(0).bytes(&body);
    });
    assert_op_err!(
        twice,
        OpError::Decode(DecodeError::UnexpectedKey {
            expected: 1,
            found: 0
        })
    );

    // --- Keys out of order, unknown keys.
    let mut swapped = f.clone();
    swapped.swap(1, 2); // author before federation
    assert_op_err!(
        ngo_signed(&g, &swapped),
        OpError::Decode(DecodeError::UnexpectedKey {
            expected: 3,
            found: 1
        })
    );
    let mut swapped = f.clone();
    swapped.swap(5, 6); // timestamp before parents
    assert_op_err!(
        ngo_signed(&g, &swapped),
        OpError::Decode(DecodeError::MissingField { key: 5 })
    );
    let sig_first = item(|e| {
        e.map(2).key(1).bytes(&sig).key(0).bytes(&body);
    });
    assert_op_err!(
        sig_first,
        OpError::Decode(DecodeError::MissingField { key: 0 })
    );
    let mut extra = f.clone();
    extra.push((9, u64_item(0)));
    assert_op_err!(
        ngo_signed(&g, &extra),
        OpError::Decode(DecodeError::UnknownFields { count: 1 })
    );

    // --- Indefinite lengths: of the body map, of a text, of an array, of the body byte string.
    let mut indefinite = assemble(&f);
    assert_eq!(indefinite[0], 0xa9);
    indefinite[0] = 0xbf;
    indefinite.push(0xff);
    assert_op_err!(
        sign_wrap(&g.ngo.secret, Domain::GovernanceOp, &indefinite),
        OpError::Decode(DecodeError::IndefiniteLength { offset: 0 })
    );
    let mut team = vec![0xa1, 0x00, 0x7f, 0x6a];
    team.extend_from_slice(b"C7.EHEALTH");
    team.push(0xff);
    assert_op_err!(
        ngo_signed(&g, &with_field(&f, 8, team)),
        OpError::Decode(DecodeError::IndefiniteLength { .. })
    );
    let mut parents = vec![0x9f];
    parents.extend_from_slice(&bytes_item(&op.parents()[0].0));
    parents.push(0xff);
    assert_op_err!(
        ngo_signed(&g, &with_field(&f, 5, parents)),
        OpError::Decode(DecodeError::IndefiniteLength { .. })
    );
    let mut chunked = vec![0xa2, 0x00, 0x5f];
    chunked.extend_from_slice(&bytes_item(&body));
    chunked.push(0xff);
    chunked.extend_from_slice(&item(|e| {
        e.key(1).bytes(&sig);
    }));
    assert_op_err!(
        chunked,
        OpError::Decode(DecodeError::IndefiniteLength { offset: 2 })
    );

    // --- Non-minimal integers and lengths.
    assert_op_err!(
        ngo_signed(&g, &with_field(&f, 0, vec![0x18, 0x01])),
        OpError::Decode(DecodeError::NonMinimal { .. })
    );
    assert_op_err!(
        ngo_signed(&g, &with_field(&f, 4, vec![0x19, 0x00, 0x02])),
        OpError::Decode(DecodeError::NonMinimal { .. })
    );
    assert_op_err!(
        ngo_signed(
            &g,
            &with_field(&f, 4, vec![0x1b, 0, 0, 0, 0, 0, 0, 0, 0x02])
        ),
        OpError::Decode(DecodeError::NonMinimal { .. })
    );
    let mut author = vec![0x59, 0x00, 0x20]; // a 32-byte string with a two-byte length
    author.extend_from_slice(&g.ngo.inception.id().0);
    assert_op_err!(
        ngo_signed(&g, &with_field(&f, 2, author)),
        OpError::Decode(DecodeError::NonMinimal { .. })
    );
    let mut long_header = assemble(&f);
    long_header.splice(0..1, [0xb8, 0x09]); // map of 9 entries with a one-byte count
    assert_op_err!(
        sign_wrap(&g.ngo.secret, Domain::GovernanceOp, &long_header),
        OpError::Decode(DecodeError::NonMinimal { offset: 0 })
    );
    let non_minimal_key = item(|e| {
        e.map(f.len());
        for (k, v) in &f {
            if *k == 4 {
                e.raw(&[0x18, 0x04]);
            } else {
                e.key(*k);
            }
            e.raw(v);
        }
    });
    assert_op_err!(
        sign_wrap(&g.ngo.secret, Domain::GovernanceOp, &non_minimal_key),
        OpError::Decode(DecodeError::NonMinimal { .. })
    );
    let mut wrapper = vec![0xa2, 0x00, 0x5a];
    wrapper.extend_from_slice(&(body.len() as u32).to_be_bytes());
    wrapper.extend_from_slice(&body);
    wrapper.extend_from_slice(&item(|e| {
        e.key(1).bytes(&sig);
    }));
    assert_op_err!(
        wrapper,
        OpError::Decode(DecodeError::NonMinimal { offset: 2 })
    );

    // --- Trailing bytes: after the body inside the signed string, and after the whole op.
    let mut trailing_body = body.clone();
    trailing_body.push(0x00);
    assert_op_err!(
        sign_wrap(&g.ngo.secret, Domain::GovernanceOp, &trailing_body),
        OpError::Decode(DecodeError::TrailingBytes { count: 1 })
    );
    let mut trailing = op.bytes().to_vec();
    trailing.push(0x00);
    assert_op_err!(
        trailing,
        OpError::Decode(DecodeError::TrailingBytes { count: 1 })
    );

    // --- Parents not sorted ascending, or duplicated (a list has exactly one encoding).
    let admit = g.op("admit-kenya");
    assert_eq!(admit.parents().len(), 2);
    let (abody, _) = unwrap(admit.bytes());
    let af = fields(&abody);
    let (p0, p1) = (admit.parents()[0], admit.parents()[1]);
    for list in [[p1, p0], [p0, p0]] {
        let parents = item(|e| {
            e.array(2).bytes(&list[0].0).bytes(&list[1].0);
        });
        let bytes = sign_wrap(
            &g.itu.secret,
            Domain::GovernanceOp,
            &assemble(&with_field(&af, 5, parents)),
        );
        assert_op_err!(bytes, OpError::Decode(DecodeError::Invalid(_)));
    }
    // Through the public API too: `OpBody::sign` writes what it is given; the decoder refuses it.
    let unsorted = g.ngo.op(
        Some(g.federation),
        3,
        &[],
        T0,
        OpKind::LeaveTeam {
            team: TeamCode::new("C1").unwrap(),
        },
    );
    let mut b = unsorted.body().clone();
    b.parents = vec![p1, p0];
    let signed = b.sign(&g.ngo.secret);
    assert_op_err!(signed.bytes(), OpError::Decode(DecodeError::Invalid(_)));

    // --- Items outside the subset: a tag around the op, a negative integer, a float, null.
    let mut tagged = vec![0xd8, 0x18];
    tagged.extend_from_slice(op.bytes());
    assert_op_err!(
        tagged,
        OpError::Decode(DecodeError::Unsupported { major: 6, .. })
    );
    assert_op_err!(
        ngo_signed(&g, &with_field(&f, 4, vec![0x21])),
        OpError::Decode(DecodeError::Unsupported { major: 1, .. })
    );
    assert_op_err!(
        ngo_signed(&g, &with_field(&f, 4, vec![0xf9, 0x40, 0x00])),
        OpError::Decode(DecodeError::Unsupported { major: 7, .. })
    );
    assert_op_err!(
        ngo_signed(&g, &with_field(&f, 1, vec![0xf6])),
        OpError::Decode(DecodeError::Unsupported { major: 7, .. })
    );

    // --- Non-canonical encodings nested in a signed inception record, directly and inside an op.
    let nested = inception_with(&g.kenya.secret, &g.kenya.inception, 0, vec![0x18, 0x01]);
    assert_inception_err!(nested, OpError::Decode(DecodeError::NonMinimal { .. }));
    assert_op_err!(
        kenya_inception_op_with(&g, &nested),
        OpError::Decode(DecodeError::NonMinimal { .. })
    );
    let (kbody, _) = unwrap(g.kenya.inception.bytes());
    let mut kf = fields(&kbody);
    kf.swap(3, 4); // key before country
    let swapped = sign_wrap(&g.kenya.secret, Domain::OrgInception, &assemble(&kf));
    assert_inception_err!(swapped, OpError::Decode(DecodeError::UnexpectedKey { .. }));
    let mut trailing = kbody.clone();
    trailing.push(0);
    let trailing = sign_wrap(&g.kenya.secret, Domain::OrgInception, &trailing);
    assert_op_err!(
        kenya_inception_op_with(&g, &trailing),
        OpError::Decode(DecodeError::TrailingBytes { count: 1 })
    );
}

#[test]
fn case_03_wycheproof_eddsa_invalid_vectors() {
    // The full Wycheproof Ed25519 set runs in `tests/wycheproof_eddsa.rs`. Here: a few hand-picked vectors.
    // RFC 8032 §7.1 tests 1–3 verify through our API, and our signer reproduces them byte for byte.
    let rfc = [
        (
            "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
            "",
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        ),
        (
            "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
            "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
            "72",
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
        ),
        (
            "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
            "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
            "af82",
            "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
        ),
    ];
    for (seed, pk, msg, sig) in rfc {
        let seed: [u8; 32] = hex::decode(seed).unwrap().try_into().unwrap();
        let pk: [u8; 32] = hex::decode(pk).unwrap().try_into().unwrap();
        let msg = hex::decode(msg).unwrap();
        let sig: [u8; 64] = hex::decode(sig).unwrap().try_into().unwrap();
        let sk = SecretKey::from_seed(&seed);
        assert_eq!(sk.public().as_bytes(), &pk);
        assert_eq!(sk.sign_raw(&msg), sig);
        let key = PublicKey::from_bytes(&pk).unwrap();
        assert_eq!(key.verify_raw(&msg, &sig), Ok(()));

        // Invalid variants of the valid vector: any flipped bit of R or S or of the message; S + L (malleability);
        // R and S swapped; an all-zero signature.
        for bit in (0..512).step_by(7) {
            let mut bad = sig;
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(key.verify_raw(&msg, &bad).is_err(), "bit {bit}");
        }
        let mut other = msg.clone();
        other.push(0);
        assert!(key.verify_raw(&other, &sig).is_err());
        assert!(key.verify_raw(&msg, &add_l_to_s(&sig)).is_err());
        let mut swapped = [0u8; 64];
        swapped[..32].copy_from_slice(&sig[32..]);
        swapped[32..].copy_from_slice(&sig[..32]);
        assert!(key.verify_raw(&msg, &swapped).is_err());
        assert!(key.verify_raw(&msg, &[0; 64]).is_err());
    }
}

#[test]
fn case_04_small_order_or_non_canonical_keys_and_r_and_s_at_or_above_l() {
    let g = Golden::build();
    let op = g.op(JOIN);
    let (body, sig) = unwrap(op.bytes());
    let key = g.ngo.secret.public();
    let preimage = Domain::GovernanceOp.preimage(&body);

    // --- R = the identity (small order), with S = H(R, A, M)·a: a lax verifier ([S]B == R + [k]A) accepts this
    // "signature" made without a nonce; verify_strict must not.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let forged = zero_nonce_signature(&g.ngo.secret, &identity, &preimage);
    {
        use ed25519_dalek::Verifier as _;
        let lax = ed25519_dalek::VerifyingKey::from_bytes(key.as_bytes()).unwrap();
        assert!(
            lax.verify(&preimage, &ed25519_dalek::Signature::from_bytes(&forged))
                .is_ok(),
            "control: the forged signature is accepted by a non-strict verifier"
        );
    }
    assert_eq!(
        key.verify(Domain::GovernanceOp, &body, &forged),
        Err(CryptoError::BadSignature)
    );
    let bytes = wrap(&body, &forged);
    assert!(SignedOp::decode(&bytes).is_ok());
    assert_eq!(
        SignedOp::from_bytes(&bytes).unwrap_err(),
        OpError::BadSignature
    );

    // Other small-order R (and a non-canonical encoding of the identity), with S = 0 and with the real S.
    for r in SMALL_ORDER.iter().chain(&[NON_CANONICAL_IDENTITY]) {
        let r: [u8; 32] = hex::decode(r).unwrap().try_into().unwrap();
        for s in [[0u8; 32], sig[32..].try_into().unwrap()] {
            let mut bad = [0u8; 64];
            bad[..32].copy_from_slice(&r);
            bad[32..].copy_from_slice(&s);
            assert_eq!(
                SignedOp::from_bytes(&wrap(&body, &bad)).unwrap_err(),
                OpError::BadSignature
            );
        }
        let forged = zero_nonce_signature(&g.ngo.secret, &r, &preimage);
        assert_eq!(
            SignedOp::from_bytes(&wrap(&body, &forged)).unwrap_err(),
            OpError::BadSignature
        );
    }

    // --- S at or above L: S + L (same value mod L), S = L, S with the top bits set.
    let mut s_is_l = sig;
    s_is_l[32..].copy_from_slice(&L);
    let mut high = sig;
    high[63] |= 0xf0;
    for bad in [add_l_to_s(&sig), s_is_l, high] {
        assert_eq!(
            SignedOp::from_bytes(&wrap(&body, &bad)).unwrap_err(),
            OpError::BadSignature
        );
    }
    // Control: the unmodified signature verifies.
    SignedOp::from_bytes(&wrap(&body, &sig)).unwrap();

    // --- Keys: every small-order point and every non-canonical encoding (y ≥ p, and x = 0 with the sign bit set) is
    // refused, as a bare key, as an op's key and as an inception record's key (direct and inside an op).
    let mut bad_keys: Vec<[u8; 32]> = SMALL_ORDER
        .iter()
        .map(|h| hex::decode(h).unwrap().try_into().unwrap())
        .collect();
    for y in 0..19u8 {
        // p + y, little-endian: p = 2^255 - 19 = ed ff … ff 7f.
        let mut k = [0xffu8; 32];
        k[0] = 0xed + y;
        k[31] = 0x7f;
        bad_keys.push(k);
        k[31] = 0xff;
        bad_keys.push(k);
    }
    let mut x0_sign = identity;
    x0_sign[31] |= 0x80;
    bad_keys.push(x0_sign);
    let f = join_fields(&g);
    for k in &bad_keys {
        let e = PublicKey::from_bytes(k).unwrap_err();
        assert!(
            matches!(
                e,
                CryptoError::WeakKey | CryptoError::NonCanonicalKey | CryptoError::InvalidKey
            ),
            "{}",
            hex::encode(k)
        );
        let bytes = ngo_signed(&g, &with_field(&f, 3, bytes_item(k)));
        assert_op_err!(bytes, OpError::Key(_));
        let rec = inception_with(&g.kenya.secret, &g.kenya.inception, 4, bytes_item(k));
        assert_inception_err!(rec, OpError::Key(_));
        assert_op_err!(kenya_inception_op_with(&g, &rec), OpError::Key(_));
    }
    // The small-order points, all canonically encoded, are refused as weak.
    for h in &SMALL_ORDER {
        let k: [u8; 32] = hex::decode(h).unwrap().try_into().unwrap();
        assert_eq!(PublicKey::from_bytes(&k), Err(CryptoError::WeakKey));
    }
    // A y for which no x exists is not a point at all.
    let not_a_point = (2u8..=255)
        .map(|y| {
            let mut k = [0u8; 32];
            k[0] = y;
            k
        })
        .find(|k| ed25519_dalek::VerifyingKey::from_bytes(k).is_err())
        .unwrap();
    assert_eq!(
        PublicKey::from_bytes(&not_a_point),
        Err(CryptoError::InvalidKey)
    );
    assert_op_err!(
        ngo_signed(&g, &with_field(&f, 3, bytes_item(&not_a_point))),
        OpError::Key(CryptoError::InvalidKey)
    );
}

#[test]
fn case_05_truncated_oversized_empty_and_all_zero_fields() {
    let g = Golden::build();
    // An evidence op nests two whole signed ops: its truncations cut through nested records too.
    let leave = |seq, ts| {
        g.ngo.op(
            Some(g.federation),
            seq,
            &[g.head()],
            ts,
            OpKind::LeaveTeam {
                team: TeamCode::new("C7.EHEALTH").unwrap(),
            },
        )
    };
    let evidence = g.itu.op(
        Some(g.federation),
        4,
        &[g.head()],
        T0,
        OpKind::Evidence {
            first: Box::new(leave(3, T0)),
            second: Box::new(leave(3, T0 + 1)),
        },
    );
    SignedOp::from_bytes(evidence.bytes()).unwrap();

    // --- Every truncation point of every golden op (genesis included), of the evidence op and of every inception
    // record is an error, and nothing panics.
    let mut cuts = 0;
    for (name, op) in g
        .ops
        .iter()
        .map(|(n, o)| (*n, o))
        .chain([("evidence", &evidence)])
    {
        let b = op.bytes();
        for cut in 0..b.len() {
            assert!(SignedOp::decode(&b[..cut]).is_err(), "{name} cut at {cut}");
            assert!(SignedOp::from_bytes(&b[..cut]).is_err());
            assert!(SignedInception::from_bytes(&b[..cut]).is_err());
            cuts += 1;
        }
    }
    for org in [&g.itu, &g.unesco, &g.kenya, &g.ngo] {
        let b = org.inception.bytes();
        for cut in 0..b.len() {
            assert!(SignedInception::from_bytes(&b[..cut]).is_err(), "cut {cut}");
            assert!(SignedOp::decode(&b[..cut]).is_err());
            cuts += 1;
        }
    }
    assert!(cuts > 3000, "{cuts}");

    // --- Empty input, empty map, empty body, empty signature.
    assert_op_err!(
        [],
        OpError::Decode(DecodeError::UnexpectedEnd { offset: 0 })
    );
    assert_inception_err!(
        [],
        OpError::Decode(DecodeError::UnexpectedEnd { offset: 0 })
    );
    assert_op_err!(
        [0xa0],
        OpError::Decode(DecodeError::MissingField { key: 0 })
    );
    let (body, sig) = unwrap(g.op(JOIN).bytes());
    assert_op_err!(
        wrap(&[], &sig),
        OpError::Decode(DecodeError::UnexpectedEnd { .. })
    );
    assert_op_err!(
        wrap(&body, &[]),
        OpError::Decode(DecodeError::WrongLength {
            what: "signature",
            expected: 64,
            found: 0
        })
    );

    // --- Oversized: the whole op, the whole inception record, then single fields.
    let mut big = g.op(JOIN).bytes().to_vec();
    big.resize(MAX_OP_BYTES + 1, 0);
    assert_op_err!(
        big,
        OpError::TooLarge {
            what: "op",
            len,
            max: MAX_OP_BYTES
        } if len == MAX_OP_BYTES + 1
    );
    big.truncate(MAX_OP_BYTES); // at the limit the size is fine and the padding is trailing bytes
    assert_op_err!(big, OpError::Decode(DecodeError::TrailingBytes { .. }));
    let mut big = g.kenya.inception.bytes().to_vec();
    big.resize(MAX_INCEPTION_BYTES + 1, 0);
    assert_inception_err!(
        big,
        OpError::TooLarge {
            what: "inception record",
            ..
        }
    );
    // A byte string claiming 2^62 bytes: refused from its head, before any allocation.
    let hostile = [0xa2, 0x00, 0x5b, 0x40, 0, 0, 0, 0, 0, 0, 0];
    assert_op_err!(
        hostile,
        OpError::Decode(DecodeError::TooLong {
            what: "signed body",
            ..
        })
    );
    assert_op_err!(
        wrap(&body, &[7; 65]),
        OpError::Decode(DecodeError::TooLong {
            what: "signature",
            len: 65,
            max: 64
        })
    );
    assert_op_err!(
        wrap(&body, &[7; 63]),
        OpError::Decode(DecodeError::WrongLength {
            what: "signature",
            expected: 64,
            found: 63
        })
    );
    let f = join_fields(&g);
    let key = g.ngo.secret.public();
    let mut key33 = key.as_bytes().to_vec();
    key33.push(0);
    assert_op_err!(
        ngo_signed(&g, &with_field(&f, 3, bytes_item(&key33))),
        OpError::Decode(DecodeError::TooLong {
            what: "public key",
            len: 33,
            max: 32
        })
    );
    assert_op_err!(
        ngo_signed(&g, &with_field(&f, 2, bytes_item(&[1; 31]))),
        OpError::Decode(DecodeError::WrongLength {
            what: "author",
            expected: 32,
            found: 31
        })
    );
    let too_many = item(|e| {
        e.array(MAX_PARENTS + 1);
        for i in 0..=MAX_PARENTS {
            e.bytes(&[i as u8; 32]);
        }
    });
    assert_op_err!(
        ngo_signed(&g, &with_field(&f, 5, too_many)),
        OpError::Decode(DecodeError::TooLong {
            what: "parents",
            ..
        })
    );
    let team17 = item(|e| {
        e.map(1).key(0).text("C7.EHEALTHXXXXXX1");
    });
    assert_op_err!(
        ngo_signed(&g, &with_field(&f, 8, team17)),
        OpError::Decode(DecodeError::TooLong {
            what: "team code",
            len: 17,
            max: 16
        })
    );
    let modalities = |len: usize| {
        let text = "m".repeat(len);
        let kind = u64_item(13);
        let payload = item(|e| {
            e.map(2).key(0).text("C7.EHEALTH").key(1).text(&text);
        });
        ngo_signed(&g, &with_field(&with_field(&f, 7, kind), 8, payload))
    };
    SignedOp::from_bytes(&modalities(MAX_TEXT_BYTES)).unwrap();
    assert_op_err!(
        modalities(MAX_TEXT_BYTES + 1),
        OpError::Decode(DecodeError::TooLong {
            what: "modalities",
            ..
        })
    );
    let convene = |title: &str| {
        let payload = item(|e| {
            e.map(3).key(0).u64(1).key(2).u64(2026).key(3).text(title);
        });
        ngo_signed(&g, &with_field(&with_field(&f, 7, u64_item(7)), 8, payload))
    };
    SignedOp::from_bytes(&convene(&"t".repeat(256))).unwrap();
    assert_op_err!(
        convene(&"t".repeat(257)),
        OpError::Decode(DecodeError::TooLong {
            what: "meeting title",
            ..
        })
    );

    // --- Empty fields.
    assert_op_err!(
        convene(""),
        OpError::Decode(DecodeError::Invalid("a name must not be empty"))
    );
    assert_op_err!(
        convene(" \t"),
        OpError::Decode(DecodeError::Invalid("a name must not be empty"))
    );
    let empty_team = item(|e| {
        e.map(1).key(0).text("");
    });
    assert_op_err!(
        ngo_signed(&g, &with_field(&f, 8, empty_team)),
        OpError::Decode(DecodeError::Invalid(_))
    );
    assert_op_err!(
        ngo_signed(&g, &with_field(&f, 8, vec![0xa0])),
        OpError::Decode(DecodeError::MissingField { key: 0 })
    );
    let bind = |peer: &[u8]| {
        let payload = item(|e| {
            e.map(1).key(0).bytes(peer);
        });
        ngo_signed(&g, &with_field(&with_field(&f, 7, u64_item(4)), 8, payload))
    };
    SignedOp::from_bytes(&bind(&[0, 36, 8, 1])).unwrap();
    assert_op_err!(bind(&[]), OpError::Structure("empty peer id"));
    assert_op_err!(
        ngo_signed(&g, &with_field(&f, 5, vec![0x80])),
        OpError::Structure(_)
    );
    let (gbody, _) = unwrap(g.genesis().bytes());
    let gf = fields(&gbody);
    let gpayload = fields(&gf.iter().find(|(k, _)| *k == 8).unwrap().1);
    let genesis_with = |key: u64, value: Vec<u8>| {
        let payload = assemble(&with_field(&gpayload, key, value));
        sign_wrap(
            &g.itu.secret,
            Domain::GovernanceOp,
            &assemble(&with_field(&gf, 8, payload)),
        )
    };
    SignedOp::from_bytes(&genesis_with(0, text_item("WSIS golden"))).unwrap();
    assert_op_err!(genesis_with(1, vec![0x80]), OpError::Structure(_));
    assert_op_err!(genesis_with(3, vec![0x80]), OpError::Structure(_));
    assert_op_err!(
        genesis_with(0, text_item("")),
        OpError::Decode(DecodeError::Invalid(_))
    );
    assert_op_err!(
        genesis_with(
            4,
            item(|e| {
                e.map(1).key(0).u64(0);
            })
        ),
        OpError::Structure("record_approvals is 1 to 255")
    );

    // --- All-zero fields: a zero key (a point of order 4) in an op, in an inception record and in an
    // inception op; a zero signature; sequence number 0.
    assert_op_err!(
        ngo_signed(&g, &with_field(&f, 3, bytes_item(&[0; 32]))),
        OpError::Key(CryptoError::WeakKey)
    );
    let zero_key = inception_with(&g.kenya.secret, &g.kenya.inception, 4, bytes_item(&[0; 32]));
    assert_inception_err!(zero_key, OpError::Key(CryptoError::WeakKey));
    assert_op_err!(
        kenya_inception_op_with(&g, &zero_key),
        OpError::Key(CryptoError::WeakKey)
    );
    let zero_sig = wrap(&body, &[0; 64]);
    assert!(SignedOp::decode(&zero_sig).is_ok());
    assert_eq!(
        SignedOp::from_bytes(&zero_sig).unwrap_err(),
        OpError::BadSignature
    );
    let (kbody, _) = unwrap(g.kenya.inception.bytes());
    assert_inception_err!(wrap(&kbody, &[0; 64]), OpError::BadSignature);
    assert_op_err!(
        ngo_signed(&g, &with_field(&f, 4, u64_item(0))),
        OpError::Structure("sequence numbers start at 1")
    );
    // A zero author id (an OrgId is a hash, not a key) with a valid key decodes: whether that author exists is the
    // replay's question. An op that drops its federation id does not become a genesis.
    let zero_author = ngo_signed(&g, &with_field(&f, 2, bytes_item(&[0; 32])));
    assert!(SignedOp::from_bytes(&zero_author).is_ok());
    let no_federation: Vec<_> = f.iter().filter(|(k, _)| *k != 1).cloned().collect();
    assert_op_err!(ngo_signed(&g, &no_federation), OpError::Structure(_));
}

#[test]
fn case_06_unknown_version_or_kind() {
    let g = Golden::build();
    let f = join_fields(&g);
    let org = bytes_item(&[5; 32]);
    let with_kind = |kind: u64, payload: Vec<u8>| {
        ngo_signed(
            &g,
            &with_field(&with_field(&f, 7, u64_item(kind)), 8, payload),
        )
    };

    // --- Versions in the op body and in the inception record (direct, inside an OrgInception op, in a genesis).
    for v in [0, 2, 99] {
        assert_op_err!(
            ngo_signed(&g, &with_field(&f, 0, u64_item(v))),
            OpError::Decode(DecodeError::UnknownVersion(x)) if x == v
        );
        let rec = inception_with(&g.kenya.secret, &g.kenya.inception, 0, u64_item(v));
        assert_inception_err!(
            rec,
            OpError::Decode(DecodeError::UnknownVersion(x)) if x == v
        );
        assert_op_err!(
            kenya_inception_op_with(&g, &rec),
            OpError::Decode(DecodeError::UnknownVersion(x)) if x == v
        );
    }
    let (gbody, _) = unwrap(g.genesis().bytes());
    let gf = fields(&gbody);
    let mut gpayload = fields(&gf.iter().find(|(k, _)| *k == 8).unwrap().1);
    let unesco_v2 = inception_with(&g.unesco.secret, &g.unesco.inception, 0, u64_item(2));
    gpayload = with_field(
        &gpayload,
        1,
        item(|e| {
            e.array(2).bytes(g.itu.inception.bytes()).bytes(&unesco_v2);
        }),
    );
    let genesis = sign_wrap(
        &g.itu.secret,
        Domain::GovernanceOp,
        &assemble(&with_field(&gf, 8, assemble(&gpayload))),
    );
    assert_op_err!(genesis, OpError::Decode(DecodeError::UnknownVersion(2)));

    // --- Kinds: op kind, meeting kind, motion kind, document kind, role, chair role, stakeholder type. Each
    // control with a known kind decodes, so the refusal is the kind's.
    for (known, unknown) in [(5, 0), (5, 19), (5, 99), (5, u64::MAX)] {
        SignedOp::from_bytes(&with_kind(known, f[8].1.clone())).unwrap();
        assert_op_err!(
            with_kind(unknown, vec![0xa0]),
            OpError::Decode(DecodeError::UnknownKind { what: "op kind", value }) if value == unknown
        );
    }
    let meeting = |k: u64| {
        item(|e| {
            e.map(3).key(0).u64(k).key(2).u64(2026).key(3).text("t");
        })
    };
    SignedOp::from_bytes(&with_kind(7, meeting(2))).unwrap();
    assert_op_err!(
        with_kind(7, meeting(99)),
        OpError::Decode(DecodeError::UnknownKind {
            what: "meeting kind",
            value: 99
        })
    );
    let motion = |k: u64, inner: Vec<u8>| {
        item(|e| {
            e.map(3)
                .key(0)
                .bytes(&[6; 32])
                .key(1)
                .u64(k)
                .key(2)
                .raw(&inner);
        })
    };
    let report = item(|e| {
        e.map(2).key(0).u64(2026).key(1).bytes(&[8; 32]);
    });
    SignedOp::from_bytes(&with_kind(9, motion(4, report))).unwrap();
    assert_op_err!(
        with_kind(9, motion(99, vec![0xa0])),
        OpError::Decode(DecodeError::UnknownKind {
            what: "motion kind",
            value: 99
        })
    );
    let elect = |role: u64| {
        item(|e| {
            e.map(2).key(0).u64(role).key(1).raw(&org);
        })
    };
    SignedOp::from_bytes(&with_kind(9, motion(1, elect(1)))).unwrap();
    assert_op_err!(
        with_kind(9, motion(1, elect(99))),
        OpError::Decode(DecodeError::UnknownKind {
            what: "chair role",
            value: 99
        })
    );
    let doc = |k: u64| {
        item(|e| {
            e.map(2).key(0).u64(k).key(1).text("C1");
        })
    };
    SignedOp::from_bytes(&with_kind(14, doc(2))).unwrap();
    assert_op_err!(
        with_kind(14, doc(99)),
        OpError::Decode(DecodeError::UnknownKind {
            what: "document kind",
            value: 99
        })
    );
    let revoke = |role: u64| {
        item(|e| {
            e.map(2).key(0).u64(role).key(2).raw(&org);
        })
    };
    SignedOp::from_bytes(&with_kind(12, revoke(0))).unwrap();
    assert_op_err!(
        with_kind(12, revoke(99)),
        OpError::Decode(DecodeError::UnknownKind {
            what: "role",
            value: 99
        })
    );
    let stakeholder = inception_with(&g.ngo.secret, &g.ngo.inception, 2, u64_item(99));
    assert_inception_err!(
        stakeholder,
        OpError::Decode(DecodeError::UnknownKind {
            what: "stakeholder type",
            value: 99
        })
    );
    let stakeholder = inception_with(&g.ngo.secret, &g.ngo.inception, 2, u64_item(6));
    assert_inception_err!(
        stakeholder,
        OpError::Decode(DecodeError::UnknownKind {
            what: "stakeholder type",
            value: 6
        })
    );
}

#[test]
fn case_15_timestamps_far_in_the_future_or_past() {
    // The encoding side of case 15: a timestamp is informational and signed. Any value up to the year-2200 bound
    // decodes (the far past included); beyond it the op is malformed, the same on every node whatever its clock.
    // That timestamps have no effect on ordering or authority is the replay's property, tested with the replay.
    let g = Golden::build();
    let op_at = |ts: u64| {
        g.ngo.op(
            Some(g.federation),
            3,
            &[g.head()],
            ts,
            OpKind::LeaveTeam {
                team: TeamCode::new("C7.EHEALTH").unwrap(),
            },
        )
    };
    for ts in [0, 1, T0, MAX_TIMESTAMP_MS] {
        let op = op_at(ts);
        assert_eq!(
            SignedOp::from_bytes(op.bytes())
                .unwrap()
                .body()
                .timestamp_ms,
            ts
        );
    }
    for ts in [MAX_TIMESTAMP_MS + 1, u64::MAX] {
        let op = op_at(ts);
        assert_op_err!(op.bytes(), OpError::Structure("timestamp beyond year 2200"));
    }
    // The timestamp is covered by the signature: a relay can't move an op in time.
    let op = op_at(T0);
    let (body, sig) = unwrap(op.bytes());
    let f = with_field(&fields(&body), 6, u64_item(0));
    let moved = wrap(&assemble(&f), &sig);
    assert!(SignedOp::decode(&moved).is_ok());
    assert_eq!(
        SignedOp::from_bytes(&moved).unwrap_err(),
        OpError::BadSignature
    );
    // Ops differing only in their timestamp are different ops.
    assert_ne!(op_at(T0).id(), op_at(T0 + 1).id());

    // Inception records: the same bound.
    for (ts, ok) in [
        (0, true),
        (MAX_TIMESTAMP_MS, true),
        (MAX_TIMESTAMP_MS + 1, false),
    ] {
        let rec = Inception {
            name: "Clockless".into(),
            stakeholder: StakeholderType::Academia,
            country: None,
            key: g.ngo.secret.public(),
            created_ms: ts,
        }
        .sign(&g.ngo.secret);
        let r = SignedInception::from_bytes(rec.bytes());
        if ok {
            r.unwrap();
        } else {
            assert_eq!(
                r.unwrap_err(),
                OpError::Structure("timestamp beyond year 2200")
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Small-order points and scalar arithmetic modulo the group order L, for forging "signatures" that only a lax
// verifier accepts.

/// Encodings of the eight points of small order (RFC 8032 / Wycheproof lists): identity, order 2, 4 and 8.
const SMALL_ORDER: [&str; 8] = [
    "0100000000000000000000000000000000000000000000000000000000000000",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000000000000000000000000000000000080",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
];
/// y = p + 1: a non-canonical encoding of the identity.
const NON_CANONICAL_IDENTITY: &str =
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f";

/// The group order L, little-endian.
const L: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

fn add_l_to_s(sig: &[u8; 64]) -> [u8; 64] {
    let mut out = *sig;
    let mut carry = 0u16;
    for i in 0..32 {
        let v = out[32 + i] as u16 + L[i] as u16 + carry;
        out[32 + i] = v as u8;
        carry = v >> 8;
    }
    out
}

type U256 = [u64; 4];

fn u256(bytes: &[u8; 32]) -> U256 {
    let mut out = [0u64; 4];
    for (i, limb) in out.iter_mut().enumerate() {
        *limb = u64::from_le_bytes(bytes[8 * i..8 * i + 8].try_into().unwrap());
    }
    out
}

fn u256_bytes(v: &U256) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, limb) in v.iter().enumerate() {
        out[8 * i..8 * i + 8].copy_from_slice(&limb.to_le_bytes());
    }
    out
}

/// a + b mod L, for a, b < L.
fn add_mod_l(a: &U256, b: &U256) -> U256 {
    let l = u256(&L);
    let mut sum = [0u64; 4];
    let mut carry = 0u128;
    for i in 0..4 {
        let v = a[i] as u128 + b[i] as u128 + carry;
        sum[i] = v as u64;
        carry = v >> 64;
    }
    let ge = (0..4)
        .rev()
        .find(|&i| sum[i] != l[i])
        .is_none_or(|i| sum[i] > l[i]);
    if ge {
        let mut borrow = 0i128;
        for i in 0..4 {
            let v = sum[i] as i128 - l[i] as i128 - borrow;
            borrow = (v < 0) as i128;
            sum[i] = v.rem_euclid(1 << 64) as u64;
        }
    }
    sum
}

/// A little-endian integer of any length, reduced mod L.
fn reduce(le: &[u8]) -> U256 {
    let mut r = [0u64; 4];
    for byte in le.iter().rev() {
        for bit in (0..8).rev() {
            r = add_mod_l(&r, &r);
            if byte >> bit & 1 == 1 {
                r = add_mod_l(&r, &[1, 0, 0, 0]);
            }
        }
    }
    r
}

fn mul_mod_l(a: &U256, b: &U256) -> U256 {
    let mut r = [0u64; 4];
    for limb in b.iter().rev() {
        for bit in (0..64).rev() {
            r = add_mod_l(&r, &r);
            if limb >> bit & 1 == 1 {
                r = add_mod_l(&r, a);
            }
        }
    }
    r
}

/// (R, S) with the given R bytes and S = H(R ‖ A ‖ M)·a mod L: a signature with nonce 0 when R is the identity.
fn zero_nonce_signature(secret: &SecretKey, r: &[u8; 32], message: &[u8]) -> [u8; 64] {
    let h: [u8; 64] = Sha512::digest(secret.to_seed()).into();
    let mut a: [u8; 32] = h[..32].try_into().unwrap();
    a[0] &= 248;
    a[31] &= 127;
    a[31] |= 64;
    let mut hasher = Sha512::new();
    hasher.update(r);
    hasher.update(secret.public().as_bytes());
    hasher.update(message);
    let k: [u8; 64] = hasher.finalize().into();
    let s = mul_mod_l(&reduce(&k), &reduce(&a));
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(r);
    sig[32..].copy_from_slice(&u256_bytes(&s));
    sig
}
