//! The `wire` fuzz corpus, replayed on stable: every file committed under `fuzz/corpus/wire/` goes through
//! `wsis_node::fuzz::wire`, which asserts that whatever decodes re-encodes to the same bytes. This is how CI
//! checks the corpus (and every crash the fuzzer once found, kept there as a regression) without a nightly
//! toolchain; fuzzing for minutes is `cargo fuzz run wire --features node` (see README.md).
//!
//! The seeds the corpus started from, one message of every request, response and announcement kind carrying real
//! signed ops, are built here and checked to decode, so the corpus never silently degrades into bytes every
//! decoder refuses. `WSIS_WRITE_FUZZ_SEEDS=1 cargo test -p wsis-node --test fuzz_corpora` writes them into it.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use wsis_node::fuzz;
use wsis_node::net::wire::{Announce, RefuseReason, SyncRequest, SyncResponse};
use wsis_protocol::fixture::World;
use wsis_protocol::ids::{sha256, DocId, EnvelopeId, OpId};
use wsis_protocol::SignedOp;

fn corpus_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/wire")
}

#[test]
fn every_corpus_file_holds_the_wire_invariants() {
    let dir = corpus_dir();
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        // A failed invariant panics; name the file so it can be run with `cargo fuzz run wire <file>`.
        let result = std::panic::catch_unwind(|| fuzz::wire(&data));
        assert!(result.is_ok(), "{} breaks an invariant", path.display());
        files += 1;
    }
    assert!(files > 0, "empty corpus");
}

/// One message of every kind, each behind its selector byte (0 request, 1 response, 2 announcement).
fn seeds() -> Vec<Vec<u8>> {
    let mut w = World::wsis();
    let apc = w.add_org("APC", "civil-society", None);
    w.admit(apc);
    let ops: Vec<Vec<u8>> = w.log.iter().map(|op| op.bytes().to_vec()).collect();
    let ids: Vec<OpId> = w.log.iter().map(SignedOp::id).collect();
    let doc = DocId([4; 32]);
    let env = |n: u8| EnvelopeId([n; 32]);
    let requests = [
        SyncRequest::Hello {
            federation: w.federation,
        },
        SyncRequest::GovSince { heads: vec![] },
        SyncRequest::GovSince { heads: ids.clone() },
        SyncRequest::GetOps { ids: ids.clone() },
        SyncRequest::DocHeads { doc },
        SyncRequest::GetEnvelopes {
            doc,
            have: vec![env(6), env(7)],
        },
        SyncRequest::Push { ops: ops.clone() },
        SyncRequest::DocDigests { after: None },
        SyncRequest::DocDigests { after: Some(doc) },
    ];
    let responses = [
        SyncResponse::Genesis(ops[0].clone()),
        SyncResponse::Ops {
            ops: ops.clone(),
            more: true,
        },
        SyncResponse::Envelopes {
            envelopes: vec![vec![0x85, 0x6f, 0x4a, 0x83], vec![]],
            more: false,
        },
        SyncResponse::Heads {
            doc,
            heads: vec![env(9), env(10)],
        },
        SyncResponse::Refused {
            reason: RefuseReason::NotAdmitted,
        },
        SyncResponse::Refused {
            reason: RefuseReason::WrongFederation,
        },
        SyncResponse::Refused {
            reason: RefuseReason::NotFound,
        },
        SyncResponse::Refused {
            reason: RefuseReason::Busy,
        },
        SyncResponse::Refused {
            reason: RefuseReason::Invalid,
        },
        SyncResponse::Refused {
            reason: RefuseReason::Other("no thanks".into()),
        },
        SyncResponse::Ack { accepted: 2 },
        SyncResponse::DocDigests {
            digests: vec![(doc, [13; 32]), (DocId([14; 32]), [15; 32])],
            more: true,
        },
    ];
    let announces = [
        Announce::default(),
        Announce {
            gov_heads: ids.clone(),
            docs: vec![(doc, vec![env(4)]), (DocId([5; 32]), vec![])],
        },
    ];
    let mut out = Vec::new();
    for r in &requests {
        let bytes = r.encode().unwrap();
        assert_eq!(SyncRequest::decode(&bytes).as_ref(), Ok(r));
        out.push([&[0][..], &bytes].concat());
    }
    for r in &responses {
        let bytes = r.encode().unwrap();
        assert_eq!(SyncResponse::decode(&bytes).as_ref(), Ok(r));
        out.push([&[1][..], &bytes].concat());
    }
    for a in &announces {
        let bytes = a.encode().unwrap();
        assert_eq!(Announce::decode(&bytes).as_ref(), Ok(a));
        out.push([&[2][..], &bytes].concat());
    }
    out
}

#[test]
fn the_seeds_decode_and_hold_the_invariants() {
    let seeds = seeds();
    seeds.iter().for_each(|s| fuzz::wire(s));
    if std::env::var_os("WSIS_WRITE_FUZZ_SEEDS").is_some() {
        let dir = corpus_dir();
        std::fs::create_dir_all(&dir).unwrap();
        for seed in seeds {
            let name: String = sha256(&seed)[..20]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            std::fs::write(dir.join(format!("seed-{name}")), seed).unwrap();
        }
    }
}
