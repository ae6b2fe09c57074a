//! The op-bomb check counts what Automerge will count: for every change chunk — real ones and mutations of them —
//! that both `chunk_cost::change_cost` and Automerge's parser accept, the op counts are equal. Were the counter to
//! read fewer ops than Automerge, a bomb could pass under the caps; refusing more is always safe, so a mutation
//! only one of them accepts is fine.
//!
//! A property test (proptest, 2,000 cases per property), not a coverage-guided fuzzer: it starts from a varied
//! history so the mutations land in every column kind.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::OnceLock;
use wsis_protocol::chunk_cost::change_cost;
use wsis_protocol::ids::sha256;

/// The raw change chunks of a history with every kind of op and a second actor (`fixture::varied_history`).
fn corpus() -> &'static Vec<Vec<u8>> {
    static CORPUS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let mut a = wsis_protocol::fixture::varied_history();
        a.get_changes(&[])
            .into_iter()
            .map(|c| c.raw_bytes().to_vec())
            .collect()
    })
}

/// The data of a change chunk (after magic, checksum, type and length).
fn data_of(chunk: &[u8]) -> &[u8] {
    let mut i = 9;
    while chunk[i] & 0x80 != 0 {
        i += 1;
    }
    &chunk[i + 1..]
}

/// A change chunk around `data`, with the right length, hash and checksum (so only the contents can be wrong).
fn chunk_of(data: &[u8]) -> Vec<u8> {
    let mut body = vec![1u8];
    let mut len = data.len();
    loop {
        let b = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            body.push(b);
            break;
        }
        body.push(b | 0x80);
    }
    body.extend_from_slice(data);
    let hash = sha256(&body);
    let mut out = vec![0x85, 0x6f, 0x4a, 0x83];
    out.extend_from_slice(&hash[..4]);
    out.extend_from_slice(&body);
    out
}

/// Automerge's op count, or `None` when it refuses the chunk (or panics on it).
fn automerge_ops(chunk: &[u8]) -> Option<u64> {
    catch_unwind(AssertUnwindSafe(|| {
        automerge::Change::try_from(chunk)
            .ok()
            .map(|c| c.len() as u64)
    }))
    .ok()
    .flatten()
}

#[test]
fn every_real_change_is_counted_as_automerge_counts_it() {
    for chunk in corpus() {
        assert_eq!(
            change_cost(data_of(chunk)).map(|c| c.ops).ok(),
            automerge_ops(chunk)
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn where_both_accept_a_mutated_change_they_count_the_same_ops(
        pick in any::<prop::sample::Index>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<Option<prop::sample::Index>>(),
    ) {
        let chunks = corpus();
        let mut data = data_of(&chunks[pick.index(chunks.len())]).to_vec();
        for (at, byte) in edits {
            let i = at.index(data.len());
            data[i] = byte;
        }
        if let Some(cut) = cut {
            data.truncate(cut.index(data.len()));
        }
        let ours = change_cost(&data).map(|c| c.ops).ok();
        let theirs = automerge_ops(&chunk_of(&data));
        if let (Some(ours), Some(theirs)) = (ours, theirs) {
            prop_assert_eq!(ours, theirs);
        }
    }
}
