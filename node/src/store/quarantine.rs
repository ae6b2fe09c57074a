//! `wsis store check --quarantine`: items that fail validation are moved, byte for byte, out of the trees a
//! node loads and serves into a quarantine tree it never reads, so one bad item cannot keep an organisation from
//! running its node. Nothing is deleted.
//!
//! ```text
//! quarantine      tree name ‖ 0x00 ‖ counter (u64 BE) ‖ original key → the original value, unchanged
//! quarantine_log  the same key → JSON QuarantineRecord (tree, key, reason, when)
//! ```
//!
//! The counter (sled's persistent monotonic id) makes every quarantine key unique, so an item quarantined twice
//! (the same key damaged again later) never overwrites the first copy. Each move is one sled transaction: the
//! item leaves its tree and enters the quarantine together, or not at all. An envelope is moved with the
//! `doc_index` entries that name it, so the index never lists an envelope that is not there.

use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};
use std::path::Path;
use wsis_protocol::ids::FederationId;

use super::check::{check_db, open_existing, CheckReport, Finding};
use super::error::sled_error;
use super::{StoreError, StoreOpenError, DOC_INDEX_KEY_LEN, TREE_DOC_INDEX, TREE_ENVELOPES};

pub(super) const TREE_QUARANTINE: &str = "quarantine";
pub(super) const TREE_QUARANTINE_LOG: &str = "quarantine_log";

/// Passes of check-then-move at most: moving an item can, in principle, let the next check see another (an
/// envelope whose only index entry was wrong is unlisted once the entry is moved; the first pass already
/// catches that, so a second pass normally finds nothing).
const MAX_PASSES: usize = 4;

/// What the log keeps about one quarantined item.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct QuarantineRecord {
    tree: String,
    key: String,
    reason: String,
    quarantined_at_ms: u64,
}

/// One quarantined item, as `wsis store check` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Quarantined {
    /// The tree it was moved out of.
    pub tree: String,
    /// Its key there, as the start-up error named it.
    pub key: String,
    pub reason: String,
    /// When it was moved (milliseconds since the Unix epoch, by this machine's clock).
    pub quarantined_at_ms: u64,
    /// The size of the kept value.
    pub bytes: usize,
    /// Its key in the `quarantine` tree, in hex.
    pub quarantine_key: String,
}

/// What a quarantine run did.
#[derive(Debug, Clone, Serialize)]
pub struct QuarantineOutcome {
    /// The items moved by this run.
    pub moved: Vec<Finding>,
    /// The check after the moves: what is left (normally nothing but `problems`) and everything quarantined.
    pub after: CheckReport,
}

/// Checks the database at `path` and moves every item that fails validation into the quarantine, then checks
/// again. `fallback` is the data directory's federation (see [`check_store`](super::check_store)).
pub fn quarantine_store(
    path: impl AsRef<Path>,
    fallback: Option<FederationId>,
) -> Result<QuarantineOutcome, StoreOpenError> {
    let path = path.as_ref();
    let (db, bound) = open_existing(path)?;
    let read = |source| StoreOpenError::Read {
        path: path.to_path_buf(),
        source: Box::new(source),
    };
    let mut moved = Vec::new();
    let mut report = check_db(&db, bound, fallback).map_err(read)?;
    for _ in 0..MAX_PASSES {
        if report.findings.is_empty() {
            break;
        }
        let now = now_ms();
        for finding in std::mem::take(&mut report.findings) {
            if move_item(&db, &finding, now).map_err(read)? {
                moved.push(finding);
            }
        }
        db.flush()
            .map_err(|source| read(sled_error("flushing the quarantine".into(), source)))?;
        report = check_db(&db, bound, fallback).map_err(read)?;
    }
    Ok(QuarantineOutcome {
        moved,
        after: report,
    })
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn quarantine_key(tree: &str, counter: u64, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(tree.len() + 9 + key.len());
    k.extend_from_slice(tree.as_bytes());
    k.push(0);
    k.extend_from_slice(&counter.to_be_bytes());
    k.extend_from_slice(key);
    k
}

fn record(tree: &str, key: String, reason: &str, at_ms: u64) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(&QuarantineRecord {
        tree: tree.to_string(),
        key,
        reason: reason.to_string(),
        quarantined_at_ms: at_ms,
    })
    .map_err(|_| StoreError::Invalid("a quarantine record must encode as json"))
}

/// Moves one item (and, for an envelope, the index entries naming it) into the quarantine. Returns false if it
/// was no longer there (moved by an earlier finding, e.g. with its envelope).
fn move_item(db: &sled::Db, finding: &Finding, at_ms: u64) -> Result<bool, StoreError> {
    let context = || format!("quarantining {} in {}", finding.key, finding.tree);
    let storage = |source| sled_error(context(), source);
    let open = |name: &str| db.open_tree(name).map_err(storage);
    let source = open(finding.tree)?;
    let (quarantine, log) = (open(TREE_QUARANTINE)?, open(TREE_QUARANTINE_LOG)?);
    let Some(value) = source.get(&finding.raw_key).map_err(storage)? else {
        return Ok(false);
    };
    let main_key = quarantine_key(
        finding.tree,
        db.generate_id().map_err(storage)?,
        &finding.raw_key,
    );
    let main_record = record(finding.tree, finding.key.clone(), &finding.reason, at_ms)?;
    // The index entries naming a quarantined envelope go with it (an entry that names nothing stops a start).
    let mut entries = Vec::new();
    if finding.tree == TREE_ENVELOPES {
        let index = open(TREE_DOC_INDEX)?;
        for item in index.iter() {
            let (key, _) = item.map_err(storage)?;
            if key.len() == DOC_INDEX_KEY_LEN && key[40..] == finding.raw_key[..] {
                let q = quarantine_key(TREE_DOC_INDEX, db.generate_id().map_err(storage)?, &key);
                let why = format!(
                    "moved with the envelope {}: {}",
                    finding.key, finding.reason
                );
                let rec = record(
                    TREE_DOC_INDEX,
                    format!("0x{}", hex::encode(&key)),
                    &why,
                    at_ms,
                )?;
                entries.push((key.to_vec(), q, rec));
            }
        }
    }
    let result = if finding.tree == TREE_ENVELOPES {
        let index = open(TREE_DOC_INDEX)?;
        (&source, &index, &quarantine, &log).transaction(|(source, index, quarantine, log)| {
            source.remove(&finding.raw_key[..])?;
            quarantine.insert(&main_key[..], value.clone())?;
            log.insert(&main_key[..], &main_record[..])?;
            for (key, q, rec) in &entries {
                index.remove(&key[..])?;
                // An index entry's value is empty; it is kept as it was.
                quarantine.insert(&q[..], &[][..])?;
                log.insert(&q[..], &rec[..])?;
            }
            Ok::<(), ConflictableTransactionError<()>>(())
        })
    } else {
        (&source, &quarantine, &log).transaction(|(source, quarantine, log)| {
            source.remove(&finding.raw_key[..])?;
            quarantine.insert(&main_key[..], value.clone())?;
            log.insert(&main_key[..], &main_record[..])?;
            Ok::<(), ConflictableTransactionError<()>>(())
        })
    };
    result.map_err(|e| match e {
        TransactionError::Storage(source) => sled_error(context(), source),
        // The closures never abort.
        TransactionError::Abort(()) => StoreError::Invalid("transaction aborted"),
    })?;
    Ok(true)
}

/// Everything quarantined, oldest first (the counter orders moves within a tree; the time across trees).
pub(super) fn list_quarantined(db: &sled::Db) -> Result<Vec<Quarantined>, StoreError> {
    let storage = |source| sled_error("reading the quarantine".into(), source);
    let quarantine = db.open_tree(TREE_QUARANTINE).map_err(storage)?;
    let log = db.open_tree(TREE_QUARANTINE_LOG).map_err(storage)?;
    let mut out = Vec::new();
    for item in quarantine.iter() {
        let (key, value) = item.map_err(storage)?;
        // A record that does not decode (hand-edited) still lists the item, from its quarantine key.
        let rec = log
            .get(&key)
            .map_err(storage)?
            .and_then(|r| serde_json::from_slice::<QuarantineRecord>(&r).ok());
        let tree_of_key = key
            .iter()
            .position(|&b| b == 0)
            .map(|i| String::from_utf8_lossy(&key[..i]).into_owned())
            .unwrap_or_default();
        out.push(match rec {
            Some(r) => Quarantined {
                tree: r.tree,
                key: r.key,
                reason: r.reason,
                quarantined_at_ms: r.quarantined_at_ms,
                bytes: value.len(),
                quarantine_key: hex::encode(&key),
            },
            None => Quarantined {
                tree: tree_of_key,
                key: format!("0x{}", hex::encode(&key)),
                reason: "(no readable record)".into(),
                quarantined_at_ms: 0,
                bytes: value.len(),
                quarantine_key: hex::encode(&key),
            },
        });
    }
    out.sort_by(|a, b| {
        (a.quarantined_at_ms, &a.quarantine_key).cmp(&(b.quarantined_at_ms, &b.quarantine_key))
    });
    Ok(out)
}

/// The stored bytes of every quarantined item from `tree` whose original key is `key`, oldest first: what an
/// operator (or a test) inspects to see that nothing was lost.
pub fn quarantined_bytes(
    path: impl AsRef<Path>,
    tree: &str,
    key: &[u8],
) -> Result<Vec<Vec<u8>>, StoreOpenError> {
    let path = path.as_ref();
    let (db, _) = open_existing(path)?;
    let read = |source| StoreOpenError::Read {
        path: path.to_path_buf(),
        source: Box::new(sled_error("reading the quarantine".into(), source)),
    };
    let quarantine = db.open_tree(TREE_QUARANTINE).map_err(read)?;
    let mut prefix = tree.as_bytes().to_vec();
    prefix.push(0);
    let mut out = Vec::new();
    for item in quarantine.scan_prefix(&prefix) {
        let (k, v) = item.map_err(read)?;
        if k.len() == prefix.len() + 8 + key.len() && k[prefix.len() + 8..] == key[..] {
            out.push(v.to_vec());
        }
    }
    Ok(out)
}
