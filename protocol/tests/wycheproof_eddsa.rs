//! Catalogue case 3: the Wycheproof EdDSA (Ed25519) verification vectors, run through the project's own key parsing
//! and strict verification (`PublicKey::from_bytes` then `PublicKey::verify_raw`), not through ed25519-dalek
//! directly, so that a change to our wrappers (a laxer key check, a non-strict verify) is caught here.
#![allow(clippy::unwrap_used)]

use wsis_protocol::crypto::{PublicKey, PUBLIC_KEY_LEN, SIGNATURE_LEN};
use wycheproof::eddsa::{TestName, TestSet};
use wycheproof::TestResult;

/// What our API said about one vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Accepted,
    /// The key was refused by `PublicKey::from_bytes`.
    KeyRejected,
    /// The signature is not 64 bytes: our API takes `&[u8; 64]`, so such a signature cannot even be passed in. The
    /// harness refuses it here, before any call, which is exactly what a caller holding wire bytes must do.
    WrongLength,
    /// `verify_raw` refused the signature.
    SignatureRejected,
}

fn run(pk: &[u8], msg: &[u8], sig: &[u8]) -> Outcome {
    // Wycheproof Ed25519 keys are all 32 bytes; a different length would be a key we cannot parse at all.
    let Ok(pk) = <&[u8; PUBLIC_KEY_LEN]>::try_from(pk) else {
        return Outcome::KeyRejected;
    };
    let Ok(key) = PublicKey::from_bytes(pk) else {
        return Outcome::KeyRejected;
    };
    let Ok(sig) = <&[u8; SIGNATURE_LEN]>::try_from(sig) else {
        return Outcome::WrongLength;
    };
    match key.verify_raw(msg, sig) {
        Ok(()) => Outcome::Accepted,
        Err(_) => Outcome::SignatureRejected,
    }
}

#[test]
fn wycheproof_ed25519_vectors() {
    let set = TestSet::load(TestName::Ed25519).unwrap();
    let (mut valid, mut invalid, mut acceptable) = (0usize, 0usize, 0usize);
    let (mut acceptable_accepted, mut wrong_length, mut key_rejected) = (0usize, 0usize, 0usize);
    let mut failures = Vec::new();
    for group in &set.test_groups {
        let pk: &[u8] = &group.key.pk;
        for t in &group.tests {
            let outcome = std::panic::catch_unwind(|| run(pk, &t.msg, &t.sig))
                .unwrap_or_else(|_| panic!("tc {} panicked: {}", t.tc_id, t.comment));
            match outcome {
                Outcome::WrongLength => wrong_length += 1,
                Outcome::KeyRejected => key_rejected += 1,
                _ => {}
            }
            match t.result {
                TestResult::Valid => {
                    valid += 1;
                    if outcome != Outcome::Accepted {
                        failures.push(format!(
                            "tc {} (valid, {}) was refused: {outcome:?}",
                            t.tc_id, t.comment
                        ));
                    }
                }
                TestResult::Invalid => {
                    invalid += 1;
                    if outcome == Outcome::Accepted {
                        failures.push(format!(
                            "tc {} (invalid, {}, flags {:?}) was accepted",
                            t.tc_id, t.comment, t.flags
                        ));
                    }
                }
                TestResult::Acceptable => {
                    acceptable += 1;
                    if outcome == Outcome::Accepted {
                        acceptable_accepted += 1;
                    }
                }
            }
        }
    }
    let total = valid + invalid + acceptable;
    println!(
        "wycheproof ed25519: {total} vectors: {valid} valid, {invalid} invalid, {acceptable} acceptable \
         ({acceptable_accepted} of them accepted); {wrong_length} wrong-length signatures, {key_rejected} keys refused"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // An empty or truncated vector set must not pass silently.
    assert_eq!(
        total, set.number_of_tests,
        "every vector in the set was run"
    );
    assert!(total > 100, "only {total} vectors ran");
    assert!(
        valid > 0 && invalid > 0,
        "both valid and invalid vectors ran"
    );
}
