//! Durable storage on sled: signed governance ops, signed change envelopes, and what the node knows about peers.
//!
//! ```text
//! meta        "schema_version" → u32 BE;  "federation" → 32 bytes
//! ops         OpId (32) → signed op bytes, exactly as received
//! envelopes   EnvelopeId (32) → signed envelope bytes, exactly as received
//! doc_index   DocId (32) ‖ insertion counter (u64 BE) ‖ EnvelopeId (32) → empty
//! peers       peer id bytes → JSON PeerRecord
//! quarantine, quarantine_log   items set aside by `wsis store check --quarantine` (see `quarantine`); never read
//!             by a node, never served, never deleted
//! ```
//!
//! Why it works this way:
//!
//! - **Acknowledged means durable.** A `put_*` returns `Ok` only after sled's `flush` (write + fsync) covered the
//!   write, so an API reply or a CLI success never reports a write that a crash could take back (trust-model case
//!   41). A write that returned an error may or may not be on disk; retrying is always safe because every key is
//!   the hash of its value (or, for peers, the write is idempotent).
//! - **Group commit.** An fsync costs milliseconds; one per write would cap a node at a few hundred writes per
//!   second. One writer thread owns all writes: it takes every request that is waiting (up to [`MAX_BATCH_ITEMS`]
//!   and [`MAX_BATCH_BYTES`]), applies them, flushes once, and only then answers each caller. While it flushes,
//!   new requests queue up and form the next batch, so the batch size adapts to the load by itself.
//! - **A full disk is an error, not a hang.** sled 0.34's `flush` can wait for ever once the disk is full
//!   (observed on a full tmpfs), so the writer refuses a batch that would leave less than [`MIN_FREE_BYTES`] free
//!   ([`StoreError::DiskFull`]: nothing applied, the database stays consistent, writes resume once space is
//!   freed), and runs each flush on a helper thread with a timeout ([`StoreError::FlushStalled`]) for the case
//!   where the disk fills anyway.
//! - **Bounded.** The queue holds at most [`WRITE_QUEUE_CAPACITY`] requests and [`MAX_QUEUED_BYTES`] bytes; a
//!   caller that finds it full waits (back-pressure) instead of growing memory without limit.
//! - **Verified on the way out.** Bytes read back are checked again exactly as if a peer had sent them (strict
//!   decoding, signature, key = SHA-256 of the bytes): disk corruption, a bad restore or a hand-edited database
//!   gives [`StoreError::Damaged`] naming the tree and key, never a panic and never a silently skipped item.
//! - **Envelopes in insertion order per document.** The envelope and its `doc_index` entry are written in one
//!   sled transaction, so after a crash either both exist or neither does. The counter is sled's persistent
//!   monotonic id, so order survives restarts.
//!
//! Only this module knows sled.
//!
//! Where things are: the writes and their queue in `write`, the writer thread (group commit, free space, the
//! flush watchdog) in `writer`, the reads in `read`, the checks every read applies in `verify`, the errors in
//! `error`; `check` finds every item that fails validation (for `wsis store check`, with the node stopped) and
//! `quarantine` sets such items aside. This file opens the database.

mod check;
mod error;
mod quarantine;
mod read;
mod replay;
#[cfg(test)]
mod tests;
mod verify;
mod write;
mod writer;

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use tokio::sync::{mpsc, Semaphore};
use wsis_protocol::ids::{FederationId, OrgId};

pub use check::{check_store, CheckReport, Checked, Finding};
pub use error::{damaged_at_start, StoreError, StoreOpenError};
pub use quarantine::{quarantine_store, quarantined_bytes, QuarantineOutcome, Quarantined};
pub use replay::{replay_ops, ReplayError};
pub use write::PendingWrite;

use write::Request;
use writer::run_writer;

/// The layout version of the database. Opening a database with another version is refused rather than
/// misread.
pub const SCHEMA_VERSION: u32 = 1;
/// Write requests that may wait for the writer.
pub const WRITE_QUEUE_CAPACITY: usize = 1024;
/// Bytes of write requests that may wait for the writer (an envelope can be 8 MiB, so the request count alone
/// does not bound memory).
pub const MAX_QUEUED_BYTES: usize = 256 * 1024 * 1024;
/// Writes applied before one flush.
pub const MAX_BATCH_ITEMS: usize = 1024;
/// Bytes applied before one flush (a batch may exceed it by its last item).
pub const MAX_BATCH_BYTES: usize = 64 * 1024 * 1024;
/// Free space kept on the database's filesystem: a batch that would leave less is refused with
/// [`StoreError::DiskFull`] instead of being handed to sled, which hangs when the disk fills (see
/// `check_free_space`).
pub const MIN_FREE_BYTES: u64 = 64 * 1024 * 1024;
/// How long the writer waits for one flush before answering [`StoreError::FlushStalled`].
pub const FLUSH_TIMEOUT_MS: u64 = 60_000;
/// The largest encoded [`PeerRecord`].
pub const MAX_PEER_RECORD_BYTES: usize = 16 * 1024;

pub(super) const TREE_META: &str = "meta";
pub(super) const TREE_OPS: &str = "ops";
pub(super) const TREE_ENVELOPES: &str = "envelopes";
pub(super) const TREE_DOC_INDEX: &str = "doc_index";
pub(super) const TREE_PEERS: &str = "peers";
pub(super) const META_SCHEMA: &[u8] = b"schema_version";
pub(super) const META_FEDERATION: &[u8] = b"federation";
/// DocId ‖ counter ‖ EnvelopeId.
pub(super) const DOC_INDEX_KEY_LEN: usize = 32 + 8 + 32;

/// Tunables of [`Store::open_with`]; [`Store::open`] uses the defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreOptions {
    /// Free space kept on the database's filesystem (see [`MIN_FREE_BYTES`]).
    pub min_free_bytes: u64,
    /// How long one flush may take before writes are answered with [`StoreError::FlushStalled`].
    pub flush_timeout_ms: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            min_free_bytes: MIN_FREE_BYTES,
            flush_timeout_ms: FLUSH_TIMEOUT_MS,
        }
    }
}

/// What the node remembers about a peer between runs. Every field is optional on disk so that fields can be added
/// without a schema change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PeerRecord {
    /// Addresses (multiaddrs, as text) the peer was reachable at.
    pub addresses: Vec<String>,
    /// The organisation the peer serves, once a `BindNode` op says so.
    pub org: Option<OrgId>,
    /// When the peer was last seen, by the local clock (informational: nothing is decided on it).
    pub last_seen_ms: Option<u64>,
}

/// The sled trees, one handle each (cheap to clone: sled handles are reference-counted).
#[derive(Clone)]
struct Trees {
    meta: sled::Tree,
    ops: sled::Tree,
    envelopes: sled::Tree,
    doc_index: sled::Tree,
    peers: sled::Tree,
}

/// The node's database. Cheap to clone; all clones share one writer. Dropping the last clone lets the writer
/// finish every queued request, then closes the database.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    trees: Trees,
    /// Set once, by `open` or `bind_federation`; a store never changes federation.
    federation: OnceLock<FederationId>,
    queued_bytes: Arc<Semaphore>,
    queue: Option<mpsc::Sender<Request>>,
    writer: Option<JoinHandle<()>>,
}

impl Drop for Inner {
    /// Closing the queue ends the writer after it has applied and flushed everything already queued; joining it
    /// releases sled's lock, so the same process can reopen the database right away.
    fn drop(&mut self) {
        self.queue.take();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .field("federation", &self.inner.federation.get())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (or creates) the database at `path` (normally `DATA/db`) and starts its writer thread.
    pub fn open(path: impl AsRef<Path>) -> Result<Store, StoreOpenError> {
        Self::open_with(path, StoreOptions::default())
    }

    /// [`Store::open`] with explicit tunables (a small device may keep less free space; tests shorten the flush
    /// timeout).
    pub fn open_with(
        path: impl AsRef<Path>,
        options: StoreOptions,
    ) -> Result<Store, StoreOpenError> {
        let path = path.as_ref().to_path_buf();
        let sled_err = |source: sled::Error| classify_open_error(&path, source);
        let db = open_sled(&path).map_err(sled_err)?;
        let trees = Trees {
            meta: db.open_tree(TREE_META).map_err(sled_err)?,
            ops: db.open_tree(TREE_OPS).map_err(sled_err)?,
            envelopes: db.open_tree(TREE_ENVELOPES).map_err(sled_err)?,
            doc_index: db.open_tree(TREE_DOC_INDEX).map_err(sled_err)?,
            peers: db.open_tree(TREE_PEERS).map_err(sled_err)?,
        };
        if trees.meta.get(META_SCHEMA).map_err(sled_err)?.is_none() {
            trees
                .meta
                .insert(META_SCHEMA, &SCHEMA_VERSION.to_be_bytes())
                .map_err(sled_err)?;
            db.flush().map_err(sled_err)?;
        }
        let federation = OnceLock::new();
        if let Some(id) = read_meta(&trees.meta, &path)? {
            let _ = federation.set(id);
        }

        let (queue, rx) = mpsc::channel(WRITE_QUEUE_CAPACITY);
        let writer = {
            let (db, trees, path) = (db.clone(), trees.clone(), path.clone());
            std::thread::Builder::new()
                .name("wsis-store-writer".into())
                .spawn(move || run_writer(db, trees, path, options, rx))
                .map_err(StoreOpenError::Spawn)?
        };
        Ok(Store {
            inner: Arc::new(Inner {
                path,
                trees,
                federation,
                queued_bytes: Arc::new(Semaphore::new(MAX_QUEUED_BYTES)),
                queue: Some(queue),
                writer: Some(writer),
            }),
        })
    }

    /// Where the database lives.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The federation this store belongs to, once bound.
    pub fn federation(&self) -> Option<FederationId> {
        self.inner.federation.get().copied()
    }
}

/// A sled error while opening: [`StoreOpenError::Locked`] when another process holds the database.
fn classify_open_error(path: &Path, source: sled::Error) -> StoreOpenError {
    if is_lock_error(&source) {
        StoreOpenError::Locked {
            path: path.to_path_buf(),
            source,
        }
    } else {
        StoreOpenError::Sled {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Checks the schema version (absent in a new database) and reads the federation the store is bound to.
fn read_meta(meta: &sled::Tree, path: &Path) -> Result<Option<FederationId>, StoreOpenError> {
    let sled_err = |source| classify_open_error(path, source);
    let damaged = |reason: &str| StoreOpenError::Damaged {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    if let Some(v) = meta.get(META_SCHEMA).map_err(sled_err)? {
        let found = <[u8; 4]>::try_from(v.as_ref())
            .map(u32::from_be_bytes)
            .map_err(|_| damaged("the schema version is not 4 bytes"))?;
        if found != SCHEMA_VERSION {
            return Err(StoreOpenError::Schema {
                path: path.to_path_buf(),
                found,
                supported: SCHEMA_VERSION,
            });
        }
    }
    match meta.get(META_FEDERATION).map_err(sled_err)? {
        Some(v) => <[u8; 32]>::try_from(v.as_ref())
            .map(|id| Some(FederationId(id)))
            .map_err(|_| damaged("the federation id is not 32 bytes")),
        None => Ok(None),
    }
}

/// How long `open` waits for sled's lock before reporting [`StoreOpenError::Locked`].
const LOCK_WAIT_MS: u64 = 5_000;

/// Opens sled, waiting a little for its lock. A store dropped a moment ago in this same process can still hold
/// the lock while sled's background I/O threads finish with the file; without the wait a node restarted in-process
/// (tests, the testnet) would fail at random. Another process holding it is reported after the wait.
fn open_sled(path: &Path) -> Result<sled::Db, sled::Error> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(LOCK_WAIT_MS);
    let mut pause_ms = 5;
    loop {
        let result = sled::Config::new()
            .path(path)
            // Durability comes from the writer's explicit flushes, not from a timer.
            .flush_every_ms(None)
            .open();
        match result {
            Err(e) if is_lock_error(&e) && std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(pause_ms));
                pause_ms = (pause_ms * 2).min(100);
            }
            other => return other,
        }
    }
}

/// sled 0.34 reports a held lock only as an `Other` I/O error with this text.
fn is_lock_error(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io) if io.to_string().contains("could not acquire lock"))
}
