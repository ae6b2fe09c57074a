//! `wsis store check`: every stored item that would stop a start or be refused by it, found without starting a
//! node, each named by tree, key and reason.
//!
//! A node's start loads every op and envelope through [`verify`](super::verify) (hash = key, strict decoding,
//! signature, federation) and stops at the first failure; it then replays the ops into the governance replica
//! and restores the envelopes into the document engine, which may refuse items too (those are only counted at
//! start, but a peer would refuse them as well). This module runs the same checks over the whole store, with
//! the same functions, and collects every failure instead of stopping at the first, so that
//! [`quarantine`](super::quarantine) can set them all aside in one go.
//!
//! It opens sled itself, read-only in effect (nothing is written; the schema version is not even created): it
//! runs with the node stopped, and reports [`StoreOpenError::Locked`] if a node holds the database.

use super::replay::ReplayError;
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use wsis_protocol::crypto::SecretKey;
use wsis_protocol::envelope::SignedEnvelope;
use wsis_protocol::gov::Governance;
use wsis_protocol::ids::{EnvelopeId, FederationId, OrgId};
use wsis_protocol::op::SignedOp;

use super::quarantine::{list_quarantined, Quarantined};
use super::verify::{decode_peer, show_envelope_key, verify_envelope, verify_op};
use super::{
    open_sled, read_meta, StoreError, StoreOpenError, DOC_INDEX_KEY_LEN, TREE_DOC_INDEX,
    TREE_ENVELOPES, TREE_OPS, TREE_PEERS,
};
use crate::engine::{DocumentEngine, MemorySink};

/// One stored item that fails validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The sled tree: `ops`, `envelopes`, `doc_index` or `peers`.
    pub tree: &'static str,
    /// The key as the start-up error names it (an op or envelope id, or hex).
    pub key: String,
    /// The key's bytes, in hex (what `store::quarantine` moves).
    pub key_hex: String,
    /// Why it fails: the same words the start-up error or the replay would use.
    pub reason: String,
    #[serde(skip)]
    pub(super) raw_key: Vec<u8>,
}

impl Finding {
    fn new(tree: &'static str, raw_key: &[u8], key: String, reason: String) -> Finding {
        Finding {
            tree,
            key,
            key_hex: hex::encode(raw_key),
            reason,
            raw_key: raw_key.to_vec(),
        }
    }

    /// From the [`StoreError::Damaged`] a load would have stopped at.
    fn from_damaged(raw_key: &[u8], e: StoreError) -> Finding {
        match e {
            StoreError::Damaged { tree, key, reason } => Finding::new(tree, raw_key, key, reason),
            other => Finding::new(
                TREE_OPS,
                raw_key,
                format!("0x{}", hex::encode(raw_key)),
                other.to_string(),
            ),
        }
    }
}

/// How many items of each tree were looked at.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Checked {
    pub ops: usize,
    pub envelopes: usize,
    pub index_entries: usize,
    pub peers: usize,
}

/// What `wsis store check` reports.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CheckReport {
    /// The federation the items were checked against (the store's, else the data directory's).
    pub federation: Option<FederationId>,
    pub checked: Checked,
    /// Items that fail validation; each can be quarantined.
    pub findings: Vec<Finding>,
    /// What stops a start but is not one item that quarantine could set aside (no genesis, a genesis that does
    /// not verify, envelopes in a store bound to no federation): these need a backup or a fresh join.
    pub problems: Vec<String>,
    /// What earlier runs set aside, oldest first.
    pub quarantined: Vec<Quarantined>,
}

impl CheckReport {
    /// Whether a node would start from this store and nothing in it fails validation.
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty() && self.problems.is_empty()
    }
}

/// Opens the database at `path` (normally `DATA/db`) without creating it, for check and quarantine.
pub(super) fn open_existing(
    path: &Path,
) -> Result<(sled::Db, Option<FederationId>), StoreOpenError> {
    if !path.is_dir() {
        return Err(StoreOpenError::Missing {
            path: path.to_path_buf(),
        });
    }
    let sled_err = |source| super::classify_open_error(path, source);
    let db = open_sled(path).map_err(sled_err)?;
    let meta = db.open_tree(super::TREE_META).map_err(sled_err)?;
    let federation = read_meta(&meta, path)?;
    Ok((db, federation))
}

/// Checks every item of the database at `path`. `fallback` is the data directory's federation, used when the
/// store itself is not bound yet (as a node's start does).
pub fn check_store(
    path: impl AsRef<Path>,
    fallback: Option<FederationId>,
) -> Result<CheckReport, StoreOpenError> {
    let path = path.as_ref();
    let (db, bound) = open_existing(path)?;
    check_db(&db, bound, fallback).map_err(|e| StoreOpenError::Read {
        path: path.to_path_buf(),
        source: Box::new(e),
    })
}

pub(super) fn check_db(
    db: &sled::Db,
    bound: Option<FederationId>,
    fallback: Option<FederationId>,
) -> Result<CheckReport, StoreError> {
    let tree = |name: &str| {
        db.open_tree(name)
            .map_err(|source| super::error::sled_error(format!("opening the tree {name}"), source))
    };
    let federation = bound.or(fallback);
    let mut report = CheckReport {
        federation,
        ..Default::default()
    };
    let ops = check_ops(&tree(TREE_OPS)?, bound, &mut report)?;
    let gov = replay(ops, federation, &mut report);
    check_envelopes(
        &tree(TREE_ENVELOPES)?,
        &tree(TREE_DOC_INDEX)?,
        bound,
        gov.as_ref(),
        &mut report,
    )?;
    check_peers(&tree(TREE_PEERS)?, &mut report)?;
    report.quarantined = list_quarantined(db)?;
    Ok(report)
}

fn read_error(what: &str) -> impl Fn(sled::Error) -> StoreError + '_ {
    move |source| super::error::sled_error(format!("reading the {what}"), source)
}

/// Every op, verified as [`Store::load_ops`](super::Store::load_ops) verifies it.
fn check_ops(
    ops: &sled::Tree,
    bound: Option<FederationId>,
    report: &mut CheckReport,
) -> Result<Vec<SignedOp>, StoreError> {
    let mut good = Vec::new();
    for item in ops.iter() {
        let (key, bytes) = item.map_err(read_error("ops"))?;
        report.checked.ops += 1;
        match verify_op(&key, &bytes, bound) {
            Ok(op) => good.push(op),
            Err(e) => report.findings.push(Finding::from_damaged(&key, e)),
        }
    }
    Ok(good)
}

/// Replays the ops that verified as a node's start does (topological order, the genesis first), listing every
/// op the replica refuses. Returns the replica for the envelope check, unless the genesis is missing or bad.
fn replay(
    ops: Vec<SignedOp>,
    federation: Option<FederationId>,
    report: &mut CheckReport,
) -> Option<Governance> {
    if ops.is_empty() {
        return None;
    }
    let Some(federation) = federation else {
        report.problems.push(
            "the store holds ops but neither it nor the data directory names a federation".into(),
        );
        return None;
    };
    match super::replay::replay_ops(ops, federation) {
        Ok((gov, refused)) => {
            for (id, why) in refused {
                report.findings.push(Finding::new(
                    TREE_OPS,
                    &id.0,
                    id.to_string(),
                    format!("refused by the governance replay: {why}"),
                ));
            }
            Some(gov)
        }
        Err(ReplayError::NoGenesis | ReplayError::WrongGenesis { .. }) => {
            report.problems.push(format!(
                "the genesis of {federation} is not stored (or fails validation, see above): a node cannot start \
                 without it; restore the data directory from a backup, or move it aside and join again"
            ));
            None
        }
        Err(ReplayError::BadGenesis(e)) => {
            report.problems.push(format!(
                "the stored genesis is not valid ({e}): a node cannot start without it; restore the data \
                 directory from a backup"
            ));
            None
        }
    }
}

/// Every envelope and index entry, verified as [`Store::load_envelopes`](super::Store::load_envelopes) verifies
/// them, then restored into a scratch document engine as a node's start does, listing what it refuses.
fn check_envelopes(
    envelopes: &sled::Tree,
    index: &sled::Tree,
    bound: Option<FederationId>,
    gov: Option<&Governance>,
    report: &mut CheckReport,
) -> Result<(), StoreError> {
    let Some(federation) = bound else {
        if !envelopes.is_empty() {
            report.problems.push(
                "the store holds change envelopes but is bound to no federation, so none can be verified".into(),
            );
        }
        return Ok(());
    };
    // Each envelope on its own: hash = key, strict decoding, signature.
    let mut good: HashMap<EnvelopeId, SignedEnvelope> = HashMap::new();
    let mut bad: HashSet<Vec<u8>> = HashSet::new();
    for item in envelopes.iter() {
        let (key, bytes) = item.map_err(read_error("envelopes"))?;
        report.checked.envelopes += 1;
        match verify_envelope(&key, &bytes, federation, None) {
            Ok(env) => {
                good.insert(env.id(), env);
            }
            Err(e) => {
                bad.insert(key.to_vec());
                report.findings.push(Finding::from_damaged(&key, e));
            }
        }
    }
    // Each index entry: well formed, naming a stored envelope of its document, once. Entries naming a damaged
    // envelope are not listed on their own: quarantining the envelope moves them with it.
    let mut listed: Vec<SignedEnvelope> = Vec::new();
    let mut seen: HashSet<EnvelopeId> = HashSet::new();
    for item in index.iter() {
        let (key, _) = item.map_err(read_error("document index"))?;
        report.checked.index_entries += 1;
        let entry = |reason: String| {
            Finding::new(
                TREE_DOC_INDEX,
                &key,
                format!("0x{}", hex::encode(&key)),
                reason,
            )
        };
        if key.len() != DOC_INDEX_KEY_LEN {
            report.findings.push(entry(format!(
                "an index key is {DOC_INDEX_KEY_LEN} bytes, found {}",
                key.len()
            )));
            continue;
        }
        if bad.contains(&key[40..]) {
            continue;
        }
        let mut id = [0u8; 32];
        id.copy_from_slice(&key[40..]);
        let id = EnvelopeId(id);
        let Some(env) = good.get(&id) else {
            report
                .findings
                .push(entry(format!("it lists {id}, which is not stored")));
            continue;
        };
        if env.header().doc.0[..] != key[..32] {
            report.findings.push(entry(format!(
                "it lists {id} under 0x{}, but the envelope is for {}",
                hex::encode(&key[..32]),
                env.header().doc
            )));
            continue;
        }
        if !seen.insert(id) {
            report.findings.push(entry(format!(
                "a second index entry for {id} (the document would hold it twice)"
            )));
            continue;
        }
        listed.push(env.clone());
    }
    for (id, _) in good.iter().filter(|(id, _)| !seen.contains(id)) {
        report.findings.push(Finding::new(
            TREE_ENVELOPES,
            &id.0,
            show_envelope_key(&id.0),
            "no document lists this envelope in doc_index".into(),
        ));
    }
    report
        .findings
        .sort_by(|a, b| (a.tree, &a.raw_key).cmp(&(b.tree, &b.raw_key)));
    if let Some(gov) = gov {
        restore(listed, federation, gov, report);
    }
    Ok(())
}

/// Restores the listed envelopes into a scratch engine, one at a time in store order (each document's
/// insertion order, in which every envelope comes after the ones it depends on), so a refusal names its
/// envelope. Nothing is signed and nothing is stored: the key is a throwaway and the sink is in memory.
fn restore(
    listed: Vec<SignedEnvelope>,
    federation: FederationId,
    gov: &Governance,
    report: &mut CheckReport,
) {
    let mut engine = DocumentEngine::new(
        federation,
        OrgId([0; 32]),
        SecretKey::from_seed(&[0; 32]),
        MemorySink::default(),
    );
    for env in listed {
        let id = env.id();
        if engine.restore_envelopes(gov, [env]).rejected > 0 {
            report.findings.push(Finding::new(
                TREE_ENVELOPES,
                &id.0,
                id.to_string(),
                "refused by the document engine at start".into(),
            ));
        }
    }
}

fn check_peers(peers: &sled::Tree, report: &mut CheckReport) -> Result<(), StoreError> {
    for item in peers.iter() {
        let (key, bytes) = item.map_err(read_error("peers"))?;
        report.checked.peers += 1;
        if let Err(e) = decode_peer(&key, &bytes) {
            report.findings.push(Finding::from_damaged(&key, e));
        }
    }
    Ok(())
}
