//! Documents at attested heads are rebuilt from their changes (`wsis_protocol::rebuild::document_at`), by the
//! Chair's node and by the verifier alike, never with `Automerge::fork_at`, which panics in automerge 0.7.4 on the
//! history below: a bundle holding it assembles and verifies.
#![allow(clippy::unwrap_used)]

mod bundle_fixture;

use automerge::{Automerge, Change, ChangeHash};
use bundle_fixture::{contested_year, YEAR};
use std::collections::{BTreeMap, HashMap};
use std::panic::{catch_unwind, AssertUnwindSafe};
use wsis_protocol::bundle::{self, verify, AssembleError, DocumentError};
use wsis_protocol::export::{canonical_json, content_hash_of};
use wsis_protocol::ids::{DocId, Hash32};
use wsis_protocol::op::Attestation;
use wsis_protocol::rebuild::{document_at, RebuildError};
use wsis_protocol::view::Status;

/// The five changes of a team's output draft from a 12-node testnet run (its coordinator created the sections,
/// two organisations then wrote concurrently). automerge 0.7.4's `fork_at` at this document's heads, and at some
/// earlier ones, panics (`MissingOps` in `ChangeCollector::from_build_meta`): the Chair could not assemble the
/// bundle. `document_at` rebuilds from the changes instead, for every head tried.
const FORK_AT_PANIC_CHANGES: [&str; 5] = [
    "856f4a8373e571af017a0010cac218b94fef7a66cb0138032f972b9d01010000000701060206153d34014206560270020001030000010001030100017b0873656374696f6e730c616368696576656d656e74730a6368616c6c656e6765730f7265636f6d6d656e646174696f6e730a61637469766974696573057f0003047f0205000500",
    "856f4a83cc4d92710180010173e571af641c335d97e44d08d855106b64fa316dde2935eb1eb8e95df3934dfe1051eb4e30d583f8138b33f1320571913c010600000110cac218b94fef7a66cb0138032f972b9d08010202021302340242025603571870027f017f057f0000017f017f860341504320686f737465642061204331312073657373696f6e7f00",
    "856f4a8380deb81c01bf0101cc4d927191768026f5035d8cc0987605a028524685ca0a9a18b4ef2dc49fc31e1051eb4e30d583f8138b33f1320571913c020700000110cac218b94fef7a66cb0138032f972b9d09010302031105130634024203560357487003c80001c800030001c700007e0007c600010048c80001c800164331313a2066756e64696e6720616e642070617274696369706174696f6e2066726f6d20646576656c6f70696e6720636f756e74726965732072656d61696e206c696d697465642ec80000",
    "856f4a83fb708e9b01ce010273e571af641c335d97e44d08d855106b64fa316dde2935eb1eb8e95df3934dfe80deb81cae1b188c085596245333a38b00eaef5b49c5dcd237288617928b1b9f10cac218b94fef7a66cb0138032f972b9d024f00000009010302031105130734024203560357477003c70000c700040001c600007e00cf00c500010047c70001c700164331313a20636f6e74696e75652074686520776f726b2070726f6772616d6d6520616e64207265706f72742070726f677265737320617420746865206e65787420466f72756d2ec70000",
    "856f4a83a7ee885a01b60101fb708e9bca47469107424f50a948a53a0a71984c877c1434348e20d0ba424ab910cac218b94fef7a66cb0138032f972b9d039601000000090103020311051307340242035603574e7003ce0000ce00020001cd00007e009601cc0001004ece0001ce00164331313a206d756c74692d7374616b65686f6c64657220616374697669746965732064656c69766572656420696e20323032363b206d656574696e67207265636f72647320617070726f7665642ece0000",
];

fn history() -> Vec<Change> {
    FORK_AT_PANIC_CHANGES
        .iter()
        .map(|h| Change::from_bytes(hex::decode(h).unwrap()).unwrap())
        .collect()
}

fn sorted(mut v: Vec<ChangeHash>) -> Vec<ChangeHash> {
    v.sort();
    v
}

fn to32(hs: &[ChangeHash]) -> Vec<Hash32> {
    hs.iter().map(|h| Hash32(h.0)).collect()
}

/// `fork_at` at `heads`, behind `catch_unwind`: true if it panicked.
fn fork_at_panics(doc: &Automerge, heads: &[ChangeHash]) -> bool {
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let panicked = catch_unwind(AssertUnwindSafe(|| doc.fork_at(heads).is_ok())).is_err();
    std::panic::set_hook(quiet);
    panicked
}

#[test]
fn a_document_at_heads_is_rebuilt_where_automerge_fork_at_panics() {
    let changes = history();
    let by_hash: HashMap<ChangeHash, Change> =
        changes.iter().map(|c| (c.hash(), c.clone())).collect();
    let mut full = Automerge::new();
    full.apply_changes(changes.clone()).unwrap();
    // The hard case: fork_at panics at the document's heads and at the fourth change.
    assert!(fork_at_panics(&full, &full.get_heads()));
    assert!(fork_at_panics(&full, &[changes[3].hash()]));
    let every_head = changes
        .iter()
        .map(|c| vec![c.hash()])
        .chain([full.get_heads()]);
    for heads in every_head {
        let at = document_at(|h| by_hash.get(h), &to32(&heads)).unwrap();
        assert_eq!(sorted(at.get_heads()), sorted(heads.clone()));
        // What the bundle carries loads back to the same document.
        let loaded = Automerge::load(&at.save()).unwrap();
        assert_eq!(sorted(loaded.get_heads()), sorted(heads));
        assert_eq!(
            canonical_json(&loaded).unwrap(),
            canonical_json(&at).unwrap()
        );
    }
    let at_heads = document_at(|h| by_hash.get(h), &to32(&full.get_heads())).unwrap();
    assert_eq!(
        canonical_json(&at_heads).unwrap(),
        canonical_json(&full).unwrap()
    );
    let text = String::from_utf8(canonical_json(&at_heads).unwrap()).unwrap();
    assert!(text.contains("C11: funding and participation"), "{text}");
    // A change and its ancestor (the union of two attestations): the document at the later one.
    let both = to32(&[changes[3].hash(), changes[4].hash()]);
    let union = document_at(|h| by_hash.get(h), &both).unwrap();
    assert_eq!(union.get_heads(), vec![changes[4].hash()]);
    // A head this history does not have, or a history with a change missing, is an error, not a panic.
    assert_eq!(
        document_at(|h| by_hash.get(h), &[Hash32([7; 32])]).unwrap_err(),
        RebuildError::UnknownChanges(vec![Hash32([7; 32])])
    );
    let gap = changes[2].hash();
    assert_eq!(
        document_at(
            |h| by_hash.get(h).filter(|_| *h != gap),
            &to32(&full.get_heads())
        )
        .unwrap_err(),
        RebuildError::UnknownChanges(vec![Hash32(gap.0)])
    );
}

fn attest(d: &Automerge) -> Attestation {
    Attestation {
        heads: to32(&d.get_heads()),
        content_hash: content_hash_of(d).unwrap(),
    }
}

/// What the Chair's node supplies: every planned document at its planned heads, the draft rebuilt from its changes
/// by the one rebuild function.
fn supplied(
    y: &bundle_fixture::Year,
    plan: &bundle::Plan,
    doc: DocId,
    by_hash: &HashMap<ChangeHash, Change>,
) -> BTreeMap<DocId, Vec<u8>> {
    plan.documents()
        .iter()
        .map(|(d, heads)| {
            let bytes = if *d == doc {
                document_at(|h| by_hash.get(h), heads).unwrap().save()
            } else {
                y.docs[d].clone()
            };
            (*d, bytes)
        })
        .collect()
}

/// The draft is submitted twice, concurrently ([`contested_year`]): at the fourth change (where `fork_at` panics) and at
/// the fifth. Both submissions are attested, the Chair's node saves the document at the union of their heads, and
/// the verifier checks the earlier attestation on a document rebuilt from the bundled document's own changes. With
/// `fork_at` (what the verifier called before) it could not have: it panics on the bundled bytes at those heads.
#[test]
fn a_bundle_whose_document_history_panics_fork_at_verifies() {
    let changes = history();
    let by_hash: HashMap<ChangeHash, Change> =
        changes.iter().map(|c| (c.hash(), c.clone())).collect();
    let state = |n: usize| {
        let mut d = Automerge::new();
        d.apply_changes(changes[..n].to_vec()).unwrap();
        d
    };
    let (fourth, fifth) = (state(4), state(5));
    assert_eq!(fourth.get_heads(), vec![changes[3].hash()]);
    assert_ne!(content_hash_of(&fourth), content_hash_of(&fifth));

    let (y, doc) = contested_year([attest(&fourth), attest(&fifth)]);
    let plan = bundle::plan(&y.w.gov, YEAR, &y.w.id(y.undesa)).unwrap();
    assert_eq!(
        plan.documents()[&doc],
        to32(&sorted(vec![changes[3].hash(), changes[4].hash()]))
    );
    let b = bundle::assemble(&plan, y.chair_key(), &supplied(&y, &plan, doc, &by_hash)).unwrap();

    // The hard case: on the bundled document, fork_at panics at the earlier attestation's heads.
    let bundled = Automerge::load(&b.files[&format!("docs/{doc}.automerge")]).unwrap();
    assert_eq!(bundled.get_heads(), vec![changes[4].hash()]);
    assert!(fork_at_panics(&bundled, &[changes[3].hash()]));

    let v = verify(&b.files, &y.w.federation).unwrap();
    let c3 = v
        .view
        .teams
        .iter()
        .find(|t| t.code.as_str() == "C3")
        .unwrap();
    assert_eq!(c3.output.status, Status::Contested);
    assert_eq!(v.attested.iter().filter(|a| a.doc == doc).count(), 2);
    assert!(v.documents[&doc]
        .to_string()
        .contains("C11: funding and participation"));
}

/// The earlier attestation is checked, not skipped: the same history with the fourth change's submission
/// attesting the content of the third is refused, naming that submission and the hash the rebuild exports to.
#[test]
fn an_earlier_attestation_of_a_bundled_document_is_checked_on_the_rebuilt_state() {
    let changes = history();
    let by_hash: HashMap<ChangeHash, Change> =
        changes.iter().map(|c| (c.hash(), c.clone())).collect();
    let state = |n: usize| {
        let mut d = Automerge::new();
        d.apply_changes(changes[..n].to_vec()).unwrap();
        d
    };
    let mut lie = attest(&state(4));
    lie.content_hash = content_hash_of(&state(3)).unwrap();
    let (y, doc) = contested_year([lie.clone(), attest(&state(5))]);
    let plan = bundle::plan(&y.w.gov, YEAR, &y.w.id(y.undesa)).unwrap();
    match bundle::assemble(&plan, y.chair_key(), &supplied(&y, &plan, doc, &by_hash)) {
        Err(AssembleError::Document { doc: d, error }) => {
            assert_eq!(d, doc);
            match *error {
                DocumentError::ContentHash {
                    attested, found, ..
                } => {
                    assert_eq!(attested, lie.content_hash);
                    assert_eq!(found, content_hash_of(&state(4)).unwrap());
                }
                e => panic!("unexpected {e}"),
            }
        }
        other => panic!("unexpected {other:?}"),
    }
}
