//! The bodies of the fuzz targets (`fuzz/fuzz_targets/*.rs`, run with `cargo fuzz`), one function per decoder.
//!
//! They live here, not in the fuzz crate, so that the stable test `protocol/tests/fuzz_corpora.rs` replays every
//! committed corpus file through exactly the code the fuzzer ran: that replay is how CI checks the corpora without
//! a nightly toolchain. Each function asserts invariants, not only "no panic": whatever a decoder accepts
//! re-encodes to exactly the bytes it was given (one encoding per value, so one id per value), and an envelope
//! accepted in stage 1 counts the ops Automerge counts in stage 2. A failed assertion is a panic, which is what
//! the fuzzer reports as a crash.
//!
//! Not production API (hidden from the documentation); compiled in because the fuzz crate and the replay test are
//! other crates.

use crate::bundle::{decode_ops, encode_ops, sshsig, Manifest};
use crate::cbor::Encoder;
use crate::chunk_cost::change_cost;
use crate::crypto::{Domain, SecretKey};
use crate::envelope::chunk::{chunk_data, chunk_head};
use crate::envelope::wrapper::write_signed_front;
use crate::envelope::{actor_id, ChangeEnvelope, VerifiedHeader};
use crate::ids::{sha256, DocId, FederationId, Hash32, OpId, OrgId};
use crate::limits::{MAX_CHANGE_OPS, MAX_CHANGE_PREDS, MAX_ENVELOPE_OPS};
use crate::op::{Inception, SignedInception, SignedOp};

/// The federation the envelope targets pin (seed envelopes are sealed for it).
pub const FEDERATION: FederationId = FederationId([0x46; 32]);
/// The document of the envelopes `envelope_changes` builds.
pub const DOC: DocId = DocId([0xd0; 32]);
/// The author the envelopes `envelope_changes` builds claim.
pub const AUTHOR: OrgId = OrgId([0xa0; 32]);
/// The session salt of the envelopes `envelope_changes` builds.
pub const SALT: [u8; 16] = [0x5a; 16];
/// The message the SSHSIG branch of [`bundle`] verifies against.
pub const SSHSIG_MESSAGE: &[u8] = b"{\"format\":\"wsis-bundle/1\"}";

/// Automerge's chunk type of an uncompressed change (stage 1 refuses compressed ones).
const CHANGE_CHUNK: u8 = 1;

/// The key that signs the envelopes `envelope_changes` builds and the SSHSIG branch of [`bundle`] checks.
pub fn key() -> SecretKey {
    SecretKey::from_seed(&[0x4b; 32])
}

/// The Automerge actor every change `envelope_changes` accepts must carry: the one derived from [`key`],
/// [`DOC`] and [`SALT`] (seed changes are made with it, so mutations keep it).
pub fn actor() -> [u8; 16] {
    actor_id(&key().public(), &DOC, &SALT)
}

/// `map { 0: signed bytes, 1: signature }` followed by `extra` more entries the caller writes.
fn signed_front(signed: &[u8], signature: &[u8; 64], entries: usize) -> Encoder {
    let mut e = Encoder::new();
    write_signed_front(&mut e, entries, signed, signature);
    e
}

/// `SignedOp::decode` and `SignedOp::from_bytes`: what decodes re-encodes (body and wrapper) to the same bytes,
/// its id is the hash of those bytes, and verifying the signature never changes what was decoded.
pub fn op(data: &[u8]) {
    let decoded = SignedOp::decode(data);
    let verified = SignedOp::from_bytes(data);
    match decoded {
        Ok(op) => {
            assert_eq!(op.body().encode(), op.body_bytes(), "op body not canonical");
            let wrapper = signed_front(op.body_bytes(), op.signature(), 2).into_bytes();
            assert_eq!(wrapper, data, "op wrapper not canonical");
            assert_eq!(op.id(), OpId::of_bytes(data));
            if let Ok(v) = verified {
                assert_eq!(v, op, "from_bytes decoded differently from decode");
            }
        }
        Err(_) => assert!(verified.is_err(), "from_bytes accepted what decode refused"),
    }
}

/// `SignedInception::from_bytes`, and the inception body decoder on the raw input (the signature stops the
/// fuzzer before the body's end otherwise): whatever decodes re-encodes to the same bytes.
pub fn inception(data: &[u8]) {
    if let Ok(rec) = SignedInception::from_bytes(data) {
        assert_eq!(rec.id(), OrgId::of_bytes(data));
        // The signature is the wrapper's last entry, 64 bytes at the very end of canonical CBOR.
        let mut signature = [0u8; 64];
        signature.copy_from_slice(&data[data.len() - 64..]);
        assert_eq!(
            signed_front(&rec.body().encode(), &signature, 2).into_bytes(),
            data,
            "inception record not canonical"
        );
    }
    if let Ok(body) = Inception::decode(data) {
        assert_eq!(body.encode(), data, "inception body not canonical");
    }
}

/// Checks an envelope that passed stage 1 and runs stage 2: the header and wrapper are canonical, the op counts
/// are within the caps, and if Automerge parses the changes it counts exactly the ops stage 1 counted.
fn check_envelope(data: &[u8], h: VerifiedHeader) {
    assert_eq!(
        h.header().encode(),
        h.header_bytes(),
        "header not canonical"
    );
    let mut e = signed_front(h.header_bytes(), h.signature(), 3);
    e.key(2).array(h.raw_changes().len());
    for c in h.raw_changes() {
        e.bytes(c);
    }
    assert_eq!(e.into_bytes(), data, "envelope wrapper not canonical");
    assert!(h.ops() <= MAX_ENVELOPE_OPS, "envelope past the op cap");
    let counted = h.ops();
    let keys = h.change_keys();
    let deps = h.external_deps();
    if let Ok(env) = h.parse_changes() {
        let automerge: u64 = env.changes().iter().map(|c| c.len() as u64).sum();
        assert_eq!(
            automerge, counted,
            "stage 1 and Automerge count different ops"
        );
        for (change, (actor, seq, hash)) in env.changes().iter().zip(&keys) {
            assert_eq!(change.actor_id().to_bytes(), actor.as_slice());
            assert_eq!(change.seq(), *seq);
            assert_eq!(change.hash().0, hash.0);
        }
        let own: Vec<_> = keys.iter().map(|k| k.2).collect();
        let mut am_deps: Vec<Hash32> = env
            .changes()
            .iter()
            .flat_map(|c| c.deps().iter().map(|d| Hash32(d.0)))
            .filter(|d| !own.contains(d))
            .collect();
        am_deps.sort_unstable();
        am_deps.dedup();
        assert_eq!(
            am_deps, deps,
            "stage 1 and Automerge read different dependencies"
        );
    }
}

/// Stage 1 (`VerifiedHeader::from_bytes`) on arbitrary bytes, then stage 2 on what it accepts; the same bytes
/// are refused under another federation.
pub fn envelope_header(data: &[u8]) {
    if let Ok(h) = VerifiedHeader::from_bytes(data, FEDERATION) {
        assert!(
            VerifiedHeader::from_bytes(data, FederationId([0; 32])).is_err(),
            "an envelope verified under two federations"
        );
        check_envelope(data, h);
    }
}

/// Stage 2 (`VerifiedHeader::parse_changes`, with the column counter of `chunk_cost` in stage 1 before it): the
/// input is one change chunk, which is wrapped in an envelope signed here with [`key`] (its checksum fixed up
/// first, so mutations reach the change's columns rather than stopping at the checksum). Besides the envelope
/// invariants: a change Automerge parses canonically, that the column counter reads within the caps and with the
/// right actor, passes stage 1; its op count from the column metadata is never below Automerge's (the caps hold), and when the two agree it
/// passes stage 2 too (when they do not, stage 2 refuses it, as `check_parsed` does).
pub fn envelope_changes(data: &[u8]) {
    let (chunk, bytes) = wrap_change(data);
    let stage1 = VerifiedHeader::from_bytes(&bytes, FEDERATION);
    envelope_changes_checks(chunk, bytes, stage1);
}

/// The input as one change chunk with its checksum fixed up (so mutations reach the change's columns rather than
/// stopping at the checksum), and an envelope carrying it, signed with [`key`] for [`FEDERATION`].
fn wrap_change(data: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut chunk = data.to_vec();
    if chunk.len() > 8 {
        let hash = sha256(&chunk[8..]);
        chunk[4..8].copy_from_slice(&hash[..4]);
    }
    let hash = Hash32(sha256(chunk.get(8..).unwrap_or(&[])));
    let secret = key();
    let header = ChangeEnvelope {
        federation: FEDERATION,
        doc: DOC,
        author: AUTHOR,
        key: secret.public(),
        session_salt: SALT,
        gov_heads: vec![OpId([0x11; 32])],
        change_hashes: vec![hash],
    };
    let header_bytes = header.encode();
    let signature = secret.sign(Domain::ChangeEnvelope, &header_bytes);
    let mut e = signed_front(&header_bytes, &signature, 3);
    e.key(2).array(1).bytes(&chunk);
    (chunk, e.into_bytes())
}

/// Stage-1 change inspection against Automerge's own count (issue 14, the op bomb): the input is one change
/// chunk, wrapped in an envelope as [`envelope_changes`] does. For every change stage 1 accepts
/// (`VerifiedHeader::from_bytes`, which counts the ops from the column metadata) and Automerge's parser reads:
/// stage 1 never counts fewer ops than Automerge (`Change::len`), so no change past the caps gets through; and
/// for every such change that is canonical — Automerge re-encodes its decoded form to exactly these bytes, as it
/// does every change an Automerge encoder writes — stage 1's ops and predecessor references equal Automerge's.
/// (A non-canonical change may be over-counted: columns of different lengths, say; stage 2 refuses those.)
/// Returns whether the equality was checked (the seeds assert it is, so the property is never vacuous).
pub fn change_ops(data: &[u8]) -> bool {
    let (chunk, bytes) = wrap_change(data);
    let Ok(h) = VerifiedHeader::from_bytes(&bytes, FEDERATION) else {
        return false;
    };
    let counted = h.ops();
    let Ok(change) = crate::envelope::parse_change(&chunk) else {
        return false;
    };
    let automerge = change.len() as u64;
    assert!(
        counted >= automerge,
        "stage 1 under-counts: {counted} ops, Automerge reads {automerge}"
    );
    // Decoding and re-encoding run Automerge code on hostile bytes: behind a firewall like every other call.
    let expanded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let expanded = change.decode();
        let preds: u64 = expanded
            .operations
            .iter()
            .map(|o| o.pred.len() as u64)
            .sum();
        let again = automerge::Change::from(expanded);
        (preds, again.raw_bytes() == chunk.as_slice())
    }));
    let Ok((preds, true)) = expanded else {
        return false;
    };
    assert_eq!(
        counted, automerge,
        "stage 1 and Automerge count different ops"
    );
    let cost = chunk_head(&chunk)
        .ok()
        .and_then(|head| chunk_data(head.rest).ok())
        .map(change_cost);
    match cost {
        Some(Ok(c)) => assert_eq!(
            c.preds, preds,
            "stage 1 and Automerge count different preds"
        ),
        other => panic!("stage 1 accepted a change whose cost does not read: {other:?}"),
    }
    true
}

/// The checks of [`envelope_changes`] once stage 1 has run on the wrapped input.
fn envelope_changes_checks(
    chunk: Vec<u8>,
    bytes: Vec<u8>,
    stage1: Result<VerifiedHeader, crate::envelope::EnvelopeError>,
) {
    let parsed = crate::envelope::parse_change(&chunk)
        .ok()
        .filter(|c| c.raw_bytes() == chunk.as_slice());
    // The change data after the chunk's type and length, as stage 1 reads it; only uncompressed change chunks.
    let change_data = chunk_head(&chunk)
        .ok()
        .filter(|h| h.chunk_type == CHANGE_CHUNK)
        .and_then(|h| chunk_data(h.rest).ok());
    // Whether the column counter (stage 1) and Automerge (stage 2) count the same ops: stage 2 refuses the change
    // when they do not, so the counter may over-count a hostile change, never under-count one (the caps rest on it).
    let mut counts_agree = false;
    if let (Some(change), Some(change_data)) = (&parsed, change_data) {
        // The counter may refuse what Automerge's more lenient parser accepts (a run-length column cut off, say):
        // a conservative refusal of a change no Automerge encoder writes. It must not accept an under-count.
        if let Ok(c) = &change_cost(change_data) {
            assert!(
                c.ops >= change.len() as u64,
                "the column counter under-counts: {} ops, Automerge reads {}",
                c.ops,
                change.len()
            );
            counts_agree = c.ops == change.len() as u64;
            let within_caps = c.ops <= MAX_CHANGE_OPS && c.preds <= MAX_CHANGE_PREDS;
            if change.actor_id().to_bytes() == actor().as_slice() && within_caps {
                if let Err(e) = &stage1 {
                    panic!("stage 1 refused a change Automerge accepts: {e}");
                }
            }
        }
    }
    if let Ok(h) = stage1 {
        let accepted = h.clone().parse_changes().is_ok();
        check_envelope(&bytes, h);
        if counts_agree {
            assert!(accepted, "stage 2 refused a change Automerge accepts");
        }
    }
}

/// The bundle's files, selected by the first byte: 0 `manifest.json` (`Manifest::parse`), 1 `gov/ops`
/// (`decode_ops`), 2 `manifest.json.sig` (`sshsig::verify` against [`key`] and [`SSHSIG_MESSAGE`]). What a
/// decoder accepts re-encodes to the same bytes; the only signature that verifies is the one `sshsig::sign`
/// makes (ed25519 is deterministic), and strict base64 round-trips.
pub fn bundle(data: &[u8]) {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 3 {
        0 => {
            if let Ok(m) = Manifest::parse(rest) {
                assert_eq!(m.to_bytes(), rest, "manifest not canonical");
            }
        }
        1 => {
            if let Ok(ops) = decode_ops(rest) {
                assert_eq!(encode_ops(&ops), rest, "gov/ops not canonical");
                for op in &ops {
                    assert_eq!(op.body().encode(), op.body_bytes(), "op body not canonical");
                }
            }
        }
        _ => {
            let secret = key();
            if sshsig::verify(rest, SSHSIG_MESSAGE, &secret.public()).is_ok() {
                assert_eq!(
                    rest,
                    sshsig::sign(&secret, SSHSIG_MESSAGE).as_bytes(),
                    "a second SSHSIG verifies"
                );
            }
            if let Ok(text) = std::str::from_utf8(rest) {
                if let Some(decoded) = sshsig::base64_decode(text) {
                    assert_eq!(sshsig::base64_encode(&decoded), text, "base64 not strict");
                }
            }
        }
    }
}
