//! Unit tests of the manifest's canonical form and the op log file's framing (the whole bundle, tampering
//! included, is tested in protocol/tests/).

use super::*;
use crate::crypto::SecretKey;
use crate::ids::Hash32;
use crate::ids::{FederationId, OpId, OrgId};
use crate::op::SignedOp;

fn manifest() -> Manifest {
    let key = SecretKey::from_seed(&[3; 32]).public();
    Manifest {
        header: ManifestHeader {
            federation: FederationId([1; 32]),
            year: 2026,
            closing_checkpoint: OpId([2; 32]),
            chair: OrgId([3; 32]),
            chair_key: key,
        },
        files: [("gov/ops".to_string(), (Hash32([4; 32]), 10))]
            .into_iter()
            .collect(),
    }
}

#[test]
fn the_manifest_round_trips_and_only_its_canonical_form_parses() {
    let m = manifest();
    let bytes = m.to_bytes();
    assert!(bytes.starts_with(b"{\"chair\":\"org_0303"));
    assert!(!bytes.contains(&b' ') && !bytes.contains(&b'\n'));
    assert_eq!(Manifest::parse(&bytes), Ok(m));
    let text = String::from_utf8(bytes).unwrap_or_default();
    let spaced = text.replacen(",", ", ", 1);
    assert_eq!(
        Manifest::parse(spaced.as_bytes()),
        Err(ManifestError::NotCanonical)
    );
    let upper = text.replace("04040404", "0404040A");
    assert!(matches!(
        Manifest::parse(upper.as_bytes()),
        Err(ManifestError::Hash(_))
    ));
    let unknown = text.replacen("{\"chair\"", "{\"a\":1,\"chair\"", 1);
    assert!(matches!(
        Manifest::parse(unknown.as_bytes()),
        Err(ManifestError::Json(_))
    ));
    let format = text.replace("wsis-bundle/1", "wsis-bundle/2");
    assert_eq!(
        Manifest::parse(format.as_bytes()),
        Err(ManifestError::Format)
    );
    let escape = text.replace("gov/ops", "../ops");
    assert!(matches!(
        Manifest::parse(escape.as_bytes()),
        Err(ManifestError::Path(_, PathError::DotComponent))
    ));
}

#[test]
fn the_ops_file_is_length_prefixed_and_truncation_is_an_error() {
    let mut w = crate::fixture::World::wsis();
    let a = w.add_org("A", "academia", None);
    w.admit(a);
    let ops: Vec<SignedOp> = w.log[1..].to_vec();
    let bytes = encode_ops(&ops);
    assert_eq!(decode_ops(&bytes), Ok(ops.clone()));
    assert_eq!(decode_ops(&[]), Ok(vec![]));
    // A cut at a record boundary is a shorter valid log (the manifest hash and the closing checks catch that);
    // any other cut is an error.
    let boundary = 4 + ops[0].bytes().len();
    for cut in (1..bytes.len()).filter(|&c| c != boundary) {
        assert!(decode_ops(&bytes[..cut]).is_err(), "cut at {cut}");
    }
    assert_eq!(decode_ops(&bytes[..boundary]), Ok(ops[..1].to_vec()));
    let mut huge = bytes.clone();
    huge[..4].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(matches!(
        decode_ops(&huge),
        Err(OpsFileError::TooLarge { at: 0, .. })
    ));
}

/// The op bomb in a bundle: a document of a few dozen bytes whose columns claim 2^40 ops is refused from its
/// column metadata, naming what it would expand into, before `Automerge::load` could expand it; a real saved
/// document passes the same check.
#[test]
fn a_document_bomb_is_refused_before_automerge_loads_it() {
    let bomb = crate::fixture::document_bomb(1 << 40);
    assert!(bomb.len() < 64, "{} bytes", bomb.len());
    assert_eq!(
        super::documents::check_cost(&bomb),
        Err(super::documents::DocumentError::TooCostly {
            what: "ops",
            count: 1 << 40,
            max: crate::limits::MAX_DOCUMENT_OPS
        })
    );
    let mut doc = automerge::AutoCommit::new();
    automerge::transaction::Transactable::put(&mut doc, automerge::ROOT, "k", "v").unwrap();
    assert_eq!(super::documents::check_cost(&doc.save()), Ok(()));
}
