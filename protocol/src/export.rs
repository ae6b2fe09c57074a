//! The canonical JSON export of Automerge documents, shared by the node (which attests it in `SubmitOutput` and
//! `ApproveRecord`) and the offline verifier (which recomputes it from the bundled Automerge bytes).

use crate::ids::sha256;
use crate::ids::Hash32;
use automerge::{AutomergeError, ObjId, ReadDoc, ROOT};

/// The canonical JSON export of an Automerge document: what `SubmitOutput` attests (SHA-256 of these bytes) and
/// what the offline verifier recomputes from the saved document.
///
/// Format (UTF-8, no whitespace, no trailing newline; depth is unbounded and handled without recursion):
/// - the root and every map or table → a JSON object; keys sorted by their UTF-8 bytes; for a key with conflicting
///   values, Automerge's winner (the value `get` returns, the same on every replica);
/// - a list → an array, in list order;
/// - a text object → a JSON string of its characters (marks are not exported; a block marker is whatever
///   `ReadDoc::text` yields for it);
/// - strings → JSON strings, escaped as `serde_json` does (`"`, `\` and control characters only);
/// - int, uint, counter (its current value) → JSON integers; a finite f64 → the shortest representation that
///   round-trips (`serde_json`/`ryu`, e.g. `1.0`, `1e300`); booleans and null as themselves;
/// - values JSON lacks → tagged objects: `{"$bytes":"<lowercase hex>"}`, `{"$timestamp":<ms since epoch>}`,
///   `{"$float":"NaN"|"Infinity"|"-Infinity"}`, `{"$unknown":{"bytes":"<hex>","type":<code>}}`.
///
/// A map that happens to contain only a key such as `"$bytes"` exports like the tagged value; the export is a
/// rendering of the content, and the attested heads name the exact document.
pub fn canonical_json<D: ReadDoc>(doc: &D) -> Result<Vec<u8>, AutomergeError> {
    let mut out = Vec::new();
    // Each frame is a container being written: its remaining (key, value, id) entries and its closing byte.
    type Entry<'a> = (Option<String>, automerge::ValueRef<'a>, ObjId);
    let mut stack: Vec<(std::vec::IntoIter<Entry<'_>>, u8, bool)> = Vec::new();
    out.push(b'{');
    stack.push((map_entries(doc, &ROOT).into_iter(), b'}', true));
    while let Some((entries, close, first)) = stack.last_mut() {
        let Some((key, value, id)) = entries.next() else {
            out.push(*close);
            stack.pop();
            continue;
        };
        if !*first {
            out.push(b',');
        }
        *first = false;
        if let Some(k) = key {
            write_json_str(&mut out, &k);
            out.push(b':');
        }
        match value {
            automerge::ValueRef::Scalar(s) => write_scalar(&mut out, &s),
            automerge::ValueRef::Object(automerge::ObjType::Map | automerge::ObjType::Table) => {
                out.push(b'{');
                stack.push((map_entries(doc, &id).into_iter(), b'}', true));
            }
            automerge::ValueRef::Object(automerge::ObjType::List) => {
                out.push(b'[');
                let items: Vec<Entry<'_>> = doc
                    .list_range(&id, ..)
                    .map(|item| {
                        let id = item.id();
                        (None, item.value, id)
                    })
                    .collect();
                stack.push((items.into_iter(), b']', true));
            }
            automerge::ValueRef::Object(automerge::ObjType::Text) => {
                write_json_str(&mut out, &doc.text(&id)?);
            }
        }
    }
    Ok(out)
}

/// SHA-256 of [`canonical_json`].
pub fn content_hash_of<D: ReadDoc>(doc: &D) -> Result<Hash32, AutomergeError> {
    Ok(Hash32(sha256(&canonical_json(doc)?)))
}

fn map_entries<'a, D: ReadDoc>(
    doc: &'a D,
    obj: &ObjId,
) -> Vec<(Option<String>, automerge::ValueRef<'a>, ObjId)> {
    let mut v: Vec<_> = doc
        .map_range(obj, ..)
        .map(|item| {
            let id = item.id();
            (Some(item.key.into_owned()), item.value, id)
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn write_json_str(out: &mut Vec<u8>, s: &str) {
    // Writing a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

fn write_scalar(out: &mut Vec<u8>, s: &automerge::ScalarValueRef<'_>) {
    use automerge::ScalarValueRef as S;
    match s {
        S::Str(s) => write_json_str(out, s),
        S::Int(i) | S::Counter(i) => out.extend_from_slice(i.to_string().as_bytes()),
        S::Uint(u) => out.extend_from_slice(u.to_string().as_bytes()),
        S::F64(f) if f.is_finite() => {
            let _ = serde_json::to_writer(&mut *out, f);
        }
        S::F64(f) => {
            let name = if f.is_nan() {
                "NaN"
            } else if *f > 0.0 {
                "Infinity"
            } else {
                "-Infinity"
            };
            out.extend_from_slice(b"{\"$float\":");
            write_json_str(out, name);
            out.push(b'}');
        }
        S::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        S::Null => out.extend_from_slice(b"null"),
        S::Timestamp(t) => {
            out.extend_from_slice(b"{\"$timestamp\":");
            out.extend_from_slice(t.to_string().as_bytes());
            out.push(b'}');
        }
        S::Bytes(b) => {
            out.extend_from_slice(b"{\"$bytes\":\"");
            out.extend_from_slice(hex::encode(b).as_bytes());
            out.extend_from_slice(b"\"}");
        }
        S::Unknown { type_code, bytes } => {
            out.extend_from_slice(b"{\"$unknown\":{\"bytes\":\"");
            out.extend_from_slice(hex::encode(bytes).as_bytes());
            out.extend_from_slice(b"\",\"type\":");
            out.extend_from_slice(type_code.to_string().as_bytes());
            out.extend_from_slice(b"}}");
        }
    }
}
