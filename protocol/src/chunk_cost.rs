//! What an Automerge chunk will cost to parse, read from its column metadata in time linear in its bytes.
//!
//! Automerge stores ops in run-length encoded columns: "repeat `put ROOT.k = null` N times" is a few bytes for
//! any N, and Automerge's parser expands such a run one op at a time (catalogue: the op bomb). So before any
//! Automerge code sees bytes from a peer or a bundle, this module counts what they would expand into — ops,
//! predecessor (or successor) references, changes — without expanding anything, and the caller refuses what is
//! over its limits ([`crate::limits`]).
//!
//! The counts follow Automerge 0.7's own reading:
//! - a change chunk has as many ops as its `action` column (id 4, integer) holds values: Automerge's op iterator
//!   stops when that column is done. Each op reads one value from every other column, except the `pred` group
//!   (id 7), where op *i* reads as many references as the *i*-th group value says: so the references are the sum
//!   of the first `ops` group values;
//! - a document chunk is bounded above: its ops by the longest op column, its references by the sum of every
//!   group column, its changes by the longest change-metadata column. Columns there may be DEFLATE-compressed;
//!   they are inflated with a cap on the output, so a small compressed column cannot cost more memory than the cap.
//!
//! Encodings (the Automerge binary format): unsigned and signed LEB128; a run-length column is a sequence of
//! runs, each a signed count `n` then, for `n > 0`, one value repeated `n` times, for `n < 0`, `-n` literal
//! values, and for `n = 0` an unsigned count of nulls; a boolean column is a sequence of unsigned run lengths,
//! alternately false and true. Every LEB128 number here must be minimally encoded (Automerge writes them so);
//! anything else is refused, which is always safe: refusing more than Automerge would never lets a bomb through.
//!
//! The LEB128 numbers and the chunk framing are read by the envelope's chunk reader (`envelope::chunk`), the one
//! reader of Automerge bytes in this crate; this module adds the columns.

use crate::envelope::chunk::{
    chunk_data, chunk_head, read_sleb128, read_uleb128, FrameError, Leb128Error,
    CHUNK_TYPE_DOCUMENT,
};
use std::io::Read;

/// Column types, the low three bits of a column specification.
const TYPE_GROUP: u32 = 0;
const TYPE_ACTOR: u32 = 1;
const TYPE_INTEGER: u32 = 2;
const TYPE_DELTA: u32 = 3;
const TYPE_BOOLEAN: u32 = 4;
const TYPE_STRING: u32 = 5;
const TYPE_VALUE_METADATA: u32 = 6;
// Type 7 is a raw value column: bytes whose lengths the value-metadata column gives; it has no count of its own.
/// Bit 3 of a column specification: the column's bytes are DEFLATE-compressed.
const DEFLATE_BIT: u32 = 0b1000;

/// The change op columns that decide the cost (Automerge 0.7, `storage/change/change_op_columns.rs`).
const CHANGE_ACTION_COLUMN: u32 = 4;
const CHANGE_PRED_COLUMN: u32 = 7;

/// More columns than any Automerge version writes (a change has 14 at most, a document 16); a count past this
/// is refused before anything is allocated for it.
pub const MAX_COLUMNS: u64 = 64;

/// What one change chunk expands into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChangeCost {
    /// Ops, as Automerge counts them (`Change::len`).
    pub ops: u64,
    /// Predecessor references, over all ops.
    pub preds: u64,
    /// Actors named besides the change's own.
    pub other_actors: u64,
}

/// An upper bound of what one document chunk expands into when Automerge loads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DocumentCost {
    /// Ops stored in the document (at most the longest op column).
    pub ops: u64,
    /// Successor references (the sum of the op columns' group values).
    pub succs: u64,
    /// Changes (at most the longest change-metadata column).
    pub changes: u64,
    /// Dependency references of the changes (the sum of the change columns' group values).
    pub deps: u64,
    /// Actors of the document.
    pub actors: u64,
}

/// Why a chunk's cost could not be read. Every one of these means: do not give the bytes to Automerge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CostError {
    #[error("automerge chunk cut off in {0}")]
    CutOff(&'static str),
    #[error("automerge chunk malformed: {0}")]
    Malformed(&'static str),
    #[error("a change chunk with compressed columns is not accepted")]
    CompressedChangeColumn,
    #[error("a compressed column inflates past {limit} bytes")]
    InflatesTooFar { limit: usize },
}

/// A strict reader over one byte slice.
struct Reader<'a> {
    bytes: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8], what: &'static str) -> Self {
        Reader { bytes, what }
    }

    fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], CostError> {
        let n = usize::try_from(n).map_err(|_| CostError::CutOff(self.what))?;
        if n > self.bytes.len() {
            return Err(CostError::CutOff(self.what));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    /// Unsigned LEB128, minimal, at most 64 bits.
    fn uleb(&mut self) -> Result<u64, CostError> {
        read_uleb128(&mut self.bytes).map_err(|e| leb_error(e, self.what))
    }

    /// Signed LEB128, minimal, at most 64 bits.
    fn sleb(&mut self) -> Result<i64, CostError> {
        read_sleb128(&mut self.bytes).map_err(|e| leb_error(e, self.what))
    }

    /// A length-prefixed byte string.
    fn prefixed(&mut self) -> Result<&'a [u8], CostError> {
        let len = self.uleb()?;
        self.take(len)
    }
}

/// The cost error of a LEB128 number that did not read in `what`.
fn leb_error(e: Leb128Error, what: &'static str) -> CostError {
    match e {
        Leb128Error::CutOff => CostError::CutOff(what),
        Leb128Error::TooLarge => CostError::Malformed("LEB128 number past 64 bits"),
        Leb128Error::NonMinimal => CostError::Malformed("LEB128 number not minimally encoded"),
    }
}

/// One column: its specification and its bytes.
struct Column<'a> {
    spec: u32,
    data: &'a [u8],
}

impl Column<'_> {
    fn id(&self) -> u32 {
        self.spec >> 4
    }

    fn column_type(&self) -> u32 {
        self.spec & 0b111
    }

    fn deflated(&self) -> bool {
        self.spec & DEFLATE_BIT != 0
    }
}

/// Reads a column metadata block (`count`, then `count` × (spec, length)) and returns the specs with lengths.
fn column_metadata(r: &mut Reader<'_>) -> Result<Vec<(u32, u64)>, CostError> {
    let count = r.uleb()?;
    if count > MAX_COLUMNS {
        return Err(CostError::Malformed(
            "more columns than any automerge version writes",
        ));
    }
    let mut columns = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let spec = u32::try_from(r.uleb()?)
            .map_err(|_| CostError::Malformed("column specification past 32 bits"))?;
        let len = r.uleb()?;
        columns.push((spec, len));
    }
    Ok(columns)
}

/// Splits `data` into the columns `meta` describes, in order.
fn split_columns<'a>(
    r: &mut Reader<'a>,
    meta: &[(u32, u64)],
) -> Result<Vec<Column<'a>>, CostError> {
    meta.iter()
        .map(|&(spec, len)| {
            Ok(Column {
                spec,
                data: r.take(len)?,
            })
        })
        .collect()
}

/// Adds without overflowing: a count past `u64::MAX` is as refused as one at it.
fn add(a: u64, b: u64) -> u64 {
    a.saturating_add(b)
}

/// How a column's values are encoded, for skipping them.
#[derive(Clone, Copy)]
enum ValueKind {
    /// An unsigned LEB128 number (group, actor, integer, value metadata).
    Unsigned,
    /// A signed LEB128 number (delta).
    Signed,
    /// A length-prefixed UTF-8 string.
    String,
}

/// Walks a run-length encoded column and calls `each(run_length, value)` per run (`value` is `None` for nulls and
/// for non-numeric values), until the column ends or `each` returns `false`. Linear in the column's bytes.
fn rle_runs(
    data: &[u8],
    kind: ValueKind,
    mut each: impl FnMut(u64, Option<u64>) -> bool,
) -> Result<(), CostError> {
    let mut r = Reader::new(data, "a run-length column");
    let value = |r: &mut Reader<'_>| -> Result<Option<u64>, CostError> {
        match kind {
            ValueKind::Unsigned => r.uleb().map(Some),
            ValueKind::Signed => r.sleb().map(|_| None),
            ValueKind::String => r.prefixed().map(|_| None),
        }
    };
    while !r.is_empty() {
        let count = r.sleb()?;
        let go_on = if count > 0 {
            let v = value(&mut r)?;
            each(count.unsigned_abs(), v)
        } else if count < 0 {
            let mut go_on = true;
            for _ in 0..count.unsigned_abs() {
                // A literal run of n values holds n encoded values, so this loop is bounded by the bytes.
                let v = value(&mut r)?;
                if !each(1, v) {
                    go_on = false;
                    break;
                }
            }
            go_on
        } else {
            each(r.uleb()?, None)
        };
        if !go_on {
            break;
        }
    }
    Ok(())
}

/// The number of values in a column of any counted type (`None` for raw value columns, which have no count).
fn values_in(column_type: u32, data: &[u8]) -> Result<Option<u64>, CostError> {
    let kind = match column_type {
        TYPE_GROUP | TYPE_ACTOR | TYPE_INTEGER | TYPE_VALUE_METADATA => ValueKind::Unsigned,
        TYPE_DELTA => ValueKind::Signed,
        TYPE_STRING => ValueKind::String,
        TYPE_BOOLEAN => {
            let mut r = Reader::new(data, "a boolean column");
            let mut n = 0u64;
            while !r.is_empty() {
                n = add(n, r.uleb()?);
            }
            return Ok(Some(n));
        }
        _ => return Ok(None),
    };
    let mut n = 0u64;
    rle_runs(data, kind, |len, _| {
        n = add(n, len);
        true
    })?;
    Ok(Some(n))
}

/// The sum of a group column's first `limit` values (all of them for `u64::MAX`), nulls counting zero.
fn group_sum(data: &[u8], limit: u64) -> Result<u64, CostError> {
    let (mut sum, mut seen) = (0u64, 0u64);
    rle_runs(data, ValueKind::Unsigned, |len, value| {
        let take = len.min(limit - seen);
        sum = add(sum, take.saturating_mul(value.unwrap_or(0)));
        seen += take;
        seen < limit
    })?;
    Ok(sum)
}

/// The cost of one change chunk, from its data (the bytes after the chunk header's length).
pub fn change_cost(data: &[u8]) -> Result<ChangeCost, CostError> {
    let mut r = Reader::new(data, "the change header");
    let deps = r.uleb()?;
    r.take(
        deps.checked_mul(32)
            .ok_or(CostError::CutOff("the dependencies"))?,
    )?;
    r.prefixed()?; // actor
    r.uleb()?; // seq
    if r.uleb()? == 0 {
        return Err(CostError::Malformed("start op is zero"));
    }
    r.sleb()?; // time
    r.prefixed()?; // message
    let other_actors = r.uleb()?;
    for _ in 0..other_actors {
        // Each actor takes at least one byte, so this loop is bounded by the bytes.
        r.prefixed()?;
    }
    let meta = column_metadata(&mut r)?;
    r.what = "the op columns";
    let columns = split_columns(&mut r, &meta)?;
    if columns.iter().any(Column::deflated) {
        return Err(CostError::CompressedChangeColumn);
    }
    let find = |id: u32, column_type: u32| -> Result<Option<&[u8]>, CostError> {
        let mut found = columns
            .iter()
            .filter(|c| c.id() == id && c.column_type() == column_type);
        let first = found.next();
        if found.next().is_some() {
            return Err(CostError::Malformed("a column appears twice"));
        }
        Ok(first.map(|c| c.data))
    };
    let ops = match find(CHANGE_ACTION_COLUMN, TYPE_INTEGER)? {
        Some(action) => values_in(TYPE_INTEGER, action)?.unwrap_or(0),
        None => 0,
    };
    let preds = match find(CHANGE_PRED_COLUMN, TYPE_GROUP)? {
        Some(group) if ops > 0 => group_sum(group, ops)?,
        _ => 0,
    };
    Ok(ChangeCost {
        ops,
        preds,
        other_actors,
    })
}

/// Inflates a DEFLATE-compressed column, refusing output past `limit` bytes.
fn inflate(data: &[u8], limit: usize) -> Result<Vec<u8>, CostError> {
    let mut out = Vec::new();
    let mut decoder = flate2::read::DeflateDecoder::new(data).take(limit as u64 + 1);
    decoder
        .read_to_end(&mut out)
        .map_err(|_| CostError::Malformed("a compressed column does not inflate"))?;
    if out.len() > limit {
        return Err(CostError::InflatesTooFar { limit });
    }
    Ok(out)
}

/// The longest value count and the sum of group values over `columns`, inflating compressed columns (at most
/// `budget` bytes in all, which is decreased).
fn columns_cost(columns: &[Column<'_>], budget: &mut usize) -> Result<(u64, u64), CostError> {
    let (mut rows, mut refs) = (0u64, 0u64);
    for column in columns {
        let inflated;
        let data = if column.deflated() {
            inflated = inflate(column.data, *budget)?;
            *budget -= inflated.len();
            inflated.as_slice()
        } else {
            column.data
        };
        if let Some(n) = values_in(column.column_type(), data)? {
            rows = rows.max(n);
        }
        if column.column_type() == TYPE_GROUP {
            refs = add(refs, group_sum(data, u64::MAX)?);
        }
    }
    Ok((rows, refs))
}

/// An upper bound of the cost of loading `bytes` with `Automerge::load`: they must be exactly one document
/// chunk (what `Automerge::save` writes). Compressed columns are inflated, `max_inflated` bytes in all at most.
pub fn document_cost(bytes: &[u8], max_inflated: usize) -> Result<DocumentCost, CostError> {
    const HEAD: &str = "the chunk header";
    let framing = |e: FrameError| match e {
        FrameError::CutOff | FrameError::PastEnd => CostError::CutOff(HEAD),
        FrameError::NotAutomerge => CostError::Malformed("not an automerge chunk"),
        FrameError::Length(e) => leb_error(e, HEAD),
        FrameError::BytesAfter => CostError::Malformed("bytes after the document chunk"),
    };
    let head = chunk_head(bytes).map_err(framing)?;
    // The checksum: Automerge checks it; it decides nothing about the cost.
    if head.chunk_type != CHUNK_TYPE_DOCUMENT {
        return Err(CostError::Malformed("not a document chunk"));
    }
    let data = chunk_data(head.rest).map_err(framing)?;
    let mut r = Reader::new(data, "the document header");
    let actors = r.uleb()?;
    for _ in 0..actors {
        r.prefixed()?;
    }
    let heads = r.uleb()?;
    r.take(
        heads
            .checked_mul(32)
            .ok_or(CostError::CutOff("the heads"))?,
    )?;
    let change_meta = column_metadata(&mut r)?;
    let op_meta = column_metadata(&mut r)?;
    r.what = "the change columns";
    let change_columns = split_columns(&mut r, &change_meta)?;
    r.what = "the op columns";
    let op_columns = split_columns(&mut r, &op_meta)?;
    let mut budget = max_inflated;
    let (changes, deps) = columns_cost(&change_columns, &mut budget)?;
    let (ops, succs) = columns_cost(&op_columns, &mut budget)?;
    Ok(DocumentCost {
        ops,
        succs,
        changes,
        deps,
        actors,
    })
}

#[cfg(test)]
mod tests;
