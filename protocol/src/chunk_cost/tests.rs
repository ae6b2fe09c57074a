#![allow(clippy::unwrap_used)]

use super::*;
use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjType, ROOT};

/// The data of a change chunk: the bytes after magic, checksum, type and length.
fn chunk_data(chunk: &[u8]) -> &[u8] {
    let mut r = Reader::new(&chunk[9..], "test");
    let len = r.uleb().unwrap();
    assert_eq!(len as usize, r.bytes.len(), "an uncompressed change chunk");
    r.bytes
}

#[test]
fn the_op_count_of_every_change_equals_automerges() {
    let mut doc = crate::fixture::varied_history();
    let changes = doc.get_changes(&[]);
    assert!(changes.len() >= 5);
    for change in changes {
        let cost = change_cost(chunk_data(change.raw_bytes())).unwrap();
        assert_eq!(cost.ops, change.len() as u64, "change {}", change.hash());
    }
}

#[test]
fn predecessors_are_counted() {
    let mut doc = AutoCommit::new();
    doc.put(ROOT, "k", 1).unwrap();
    doc.commit();
    // Three overwrites of one key, each naming the previous value as its predecessor.
    for i in 2..5 {
        doc.put(ROOT, "k", i).unwrap();
    }
    let change = doc.get_last_local_change().unwrap();
    let cost = change_cost(chunk_data(change.raw_bytes())).unwrap();
    assert_eq!(cost.ops, 3);
    assert_eq!(cost.preds, 3);
}

/// The data of a bomb change (see [`crate::fixture::op_bomb_change`]).
fn op_bomb(n: u64, preds: u64) -> Vec<u8> {
    chunk_data(&crate::fixture::op_bomb_change([7; 16], 1, n, preds)).to_vec()
}

#[test]
fn an_op_bomb_is_counted_without_expanding_it() {
    for n in [1u64, 1000, 8_000_000, 1 << 40, i64::MAX as u64] {
        let data = op_bomb(n, 0);
        assert!(data.len() < 100, "{} bytes", data.len());
        assert_eq!(change_cost(&data).unwrap().ops, n);
    }
    // One op with 2^40 predecessors is a bomb too.
    let data = op_bomb(1, 1 << 40);
    let cost = change_cost(&data).unwrap();
    assert_eq!((cost.ops, cost.preds), (1, 1 << 40));
    // Many ops with many predecessors each: the product saturates instead of overflowing.
    assert_eq!(
        change_cost(&op_bomb(1 << 40, 1 << 40)).unwrap().preds,
        u64::MAX
    );
}

#[test]
fn a_small_bomb_is_what_automerge_counts_too() {
    // The same hand-built encoding that claims 2^40 ops parses in Automerge for a small n, with that many ops:
    // the counter reads the columns the way Automerge does.
    let bytes = crate::fixture::op_bomb_change([7; 16], 1, 5, 0);
    let data = chunk_data(&bytes).to_vec();
    let change = automerge::Change::from_bytes(bytes).unwrap();
    assert_eq!(change.len(), 5);
    assert_eq!(change_cost(&data).unwrap().ops, 5);
}

#[test]
fn truncation_and_garbage_are_errors_not_panics() {
    let mut doc = crate::fixture::varied_history();
    let change = doc.get_last_local_change().unwrap().clone();
    let data = chunk_data(change.raw_bytes()).to_vec();
    for cut in 0..data.len() {
        // Any prefix either fails or counts no more than the whole (a column cut at a run boundary is shorter).
        if let Ok(cost) = change_cost(&data[..cut]) {
            assert!(cost.ops <= change.len() as u64);
        }
    }
    for seed in 0..2000u32 {
        let mut garbage = data.clone();
        let i = (seed as usize * 7919) % garbage.len();
        garbage[i] ^= (seed % 255 + 1) as u8;
        let _ = change_cost(&garbage);
    }
    assert!(change_cost(&[]).is_err());
    assert!(change_cost(&[0xff; 64]).is_err());
}

#[test]
fn compressed_columns_in_a_change_are_refused() {
    let mut data = op_bomb(3, 0);
    // The first column's spec is after 27 fixed bytes of header: set its deflate bit.
    let at = 1 + 1 + 16 + 1 + 1 + 1 + 1 + 1 + 1;
    assert_eq!(u32::from(data[at]), (1 << 4) | TYPE_STRING);
    data[at] |= DEFLATE_BIT as u8;
    assert_eq!(change_cost(&data), Err(CostError::CompressedChangeColumn));
}

#[test]
fn too_many_columns_are_refused_before_allocating() {
    let mut data = op_bomb(1, 0);
    // The column count follows 23 bytes of header; make it 2^28 - 1.
    let at = 23;
    assert_eq!(data[at], 5);
    data.splice(at..at + 1, [0xff, 0xff, 0xff, 0x7f]);
    assert_eq!(
        change_cost(&data),
        Err(CostError::Malformed(
            "more columns than any automerge version writes"
        ))
    );
}

#[test]
fn a_saved_document_is_bounded_by_its_ops_and_changes() {
    let mut doc = crate::fixture::varied_history();
    let saved = doc.save();
    let changes = doc.get_changes(&[]);
    let total_ops: u64 = changes.iter().map(|c| c.len() as u64).sum();
    let cost = document_cost(&saved, 1 << 20).unwrap();
    assert_eq!(cost.changes, changes.len() as u64);
    assert!(
        cost.ops > 0 && cost.ops <= total_ops + 1,
        "{cost:?} vs {total_ops}"
    );
    assert_eq!(cost.actors, 2);
}

#[test]
fn a_big_document_with_compressed_columns_is_inflated_under_the_cap() {
    let mut doc = AutoCommit::new();
    let text = doc.put_object(ROOT, "t", ObjType::Text).unwrap();
    for i in 0..200 {
        doc.splice_text(&text, 0, 0, &format!("line {i} of a long report\n"))
            .unwrap();
        doc.commit();
    }
    let saved = doc.save();
    let cost = document_cost(&saved, 16 << 20).unwrap();
    assert_eq!(cost.changes, 200);
    assert!(cost.ops >= 200 * 20, "{cost:?}");
    // A cap smaller than what the columns inflate to is refused (only if some column is compressed).
    if let Err(e) = document_cost(&saved, 64) {
        assert!(matches!(e, CostError::InflatesTooFar { limit: 64 }), "{e}");
    }
    assert!(document_cost(&saved[..saved.len() - 1], 16 << 20).is_err());
    let mut extra = saved.clone();
    extra.push(0);
    assert!(document_cost(&extra, 16 << 20).is_err());
}

#[test]
fn a_document_bomb_is_counted() {
    // A document chunk whose op columns claim 2^40 ops in a few bytes.
    let bytes = crate::fixture::document_bomb(1 << 40);
    assert_eq!(document_cost(&bytes, 1024).unwrap().ops, 1 << 40);
}
