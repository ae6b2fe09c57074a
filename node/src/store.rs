//! Durable storage on sled: signed governance ops, signed change envelopes, and what the node knows about peers.
//!
//! ```text
//! meta        "schema_version" → u32 BE;  "federation" → 32 bytes
//! ops         OpId (32) → signed op bytes, exactly as received
//! envelopes   EnvelopeId (32) → signed envelope bytes, exactly as received
//! doc_index   DocId (32) ‖ insertion counter (u64 BE) ‖ EnvelopeId (32) → empty
//! peers       peer id bytes → JSON PeerRecord
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

use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};
use sled::IVec;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use wsis_protocol::envelope::SignedEnvelope;
use wsis_protocol::ids::{DocId, EnvelopeId, FederationId, OpId, OrgId};
use wsis_protocol::limits::MAX_PEER_ID_BYTES;
use wsis_protocol::op::{OpKind, SignedOp};

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

const TREE_META: &str = "meta";
const TREE_OPS: &str = "ops";
const TREE_ENVELOPES: &str = "envelopes";
const TREE_DOC_INDEX: &str = "doc_index";
const TREE_PEERS: &str = "peers";
const META_SCHEMA: &[u8] = b"schema_version";
const META_FEDERATION: &[u8] = b"federation";
/// DocId ‖ counter ‖ EnvelopeId.
const DOC_INDEX_KEY_LEN: usize = 32 + 8 + 32;

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

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreOpenError {
    #[error(
        "the database {} is in use by another process (is a node already running on this data directory?)",
        path.display()
    )]
    Locked {
        path: PathBuf,
        #[source]
        source: sled::Error,
    },
    #[error("cannot open the database {}", path.display())]
    Sled {
        path: PathBuf,
        #[source]
        source: sled::Error,
    },
    #[error(
        "the database {} has schema version {found}; this build reads version {supported}",
        path.display()
    )]
    Schema {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("the database {} is damaged: {reason}", path.display())]
    Damaged { path: PathBuf, reason: String },
    #[error("cannot start the store's writer thread")]
    Spawn(#[source] std::io::Error),
}

/// Why a read or a write failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// sled failed (an I/O error, the disk full, corruption sled detected itself). The write may or may not be
    /// on disk; it was not acknowledged.
    #[error("storage failed while {context}")]
    Io {
        context: String,
        #[source]
        source: sled::Error,
    },
    /// The filesystem is (nearly) full. Nothing of this write was applied; writes resume once space is freed.
    #[error(
        "not enough free space for the database {}: {available} bytes free, the store keeps at least {needed} \
         free for this write; free some space and retry",
        path.display()
    )]
    DiskFull {
        path: PathBuf,
        available: u64,
        needed: u64,
    },
    /// A flush did not finish in time (a full or failing disk). The write may or may not be on disk.
    #[error(
        "a flush of the database {} has not completed after {waited_ms} ms (is the disk full or failing?); \
         writes are refused until it does",
        path.display()
    )]
    FlushStalled { path: PathBuf, waited_ms: u64 },
    /// Stored bytes no longer verify. Nothing is skipped: the caller decides (a node refuses to start and names
    /// the item; an operator restores or removes it).
    #[error("damaged item in tree `{tree}` at key {key}: {reason}")]
    Damaged {
        tree: &'static str,
        key: String,
        reason: String,
    },
    #[error("this store belongs to federation {found}, not {expected}")]
    WrongFederation {
        found: FederationId,
        expected: FederationId,
    },
    /// Envelopes can only be verified against a federation, so none are stored before the store is bound.
    #[error("the store is not bound to a federation yet: bind it before storing or reading change envelopes")]
    NotBound,
    #[error("{what} is {len} bytes, the limit is {max}")]
    TooLarge {
        what: &'static str,
        len: usize,
        max: usize,
    },
    #[error("invalid input: {0}")]
    Invalid(&'static str),
    /// The writer thread is gone (the store is being dropped, or the thread died). Nothing more can be written.
    #[error("the store's writer has stopped; nothing more can be written")]
    Closed,
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

/// One write, already turned into the bytes sled stores, so the writer thread does no encoding or copying.
enum Write {
    Op {
        id: OpId,
        bytes: IVec,
    },
    Envelope {
        id: EnvelopeId,
        doc: DocId,
        bytes: IVec,
    },
    Peer {
        id: IVec,
        record: IVec,
    },
    Federation(FederationId),
}

impl Write {
    fn len(&self) -> usize {
        match self {
            Write::Op { bytes, .. } | Write::Envelope { bytes, .. } => bytes.len(),
            Write::Peer { id, record } => id.len() + record.len(),
            Write::Federation(_) => 32,
        }
    }
}

struct Request {
    write: Write,
    ack: oneshot::Sender<Result<(), StoreError>>,
    /// Holds this request's share of [`MAX_QUEUED_BYTES`] until the writer is done with it.
    _queued: OwnedSemaphorePermit,
}

/// A queued write ([`Store::queue_envelope_blocking`]): durable once [`PendingWrite::wait`] (or
/// [`PendingWrite::done`]) returns `Ok`.
#[must_use = "a queued write is durable only once its acknowledgement arrived"]
#[derive(Debug)]
pub struct PendingWrite(oneshot::Receiver<Result<(), StoreError>>);

impl PendingWrite {
    /// Waits for the flush that covers the write.
    pub async fn done(self) -> Result<(), StoreError> {
        self.0.await.map_err(|_| StoreError::Closed)?
    }

    /// [`PendingWrite::done`] for synchronous callers. Blocks the thread; do not call it from an async task.
    pub fn wait(self) -> Result<(), StoreError> {
        futures::executor::block_on(self.done())
    }
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
        let sled_err = |source: sled::Error| {
            if is_lock_error(&source) {
                StoreOpenError::Locked {
                    path: path.clone(),
                    source,
                }
            } else {
                StoreOpenError::Sled {
                    path: path.clone(),
                    source,
                }
            }
        };
        let db = open_sled(&path).map_err(sled_err)?;
        let trees = Trees {
            meta: db.open_tree(TREE_META).map_err(sled_err)?,
            ops: db.open_tree(TREE_OPS).map_err(sled_err)?,
            envelopes: db.open_tree(TREE_ENVELOPES).map_err(sled_err)?,
            doc_index: db.open_tree(TREE_DOC_INDEX).map_err(sled_err)?,
            peers: db.open_tree(TREE_PEERS).map_err(sled_err)?,
        };
        let damaged = |reason: &str| StoreOpenError::Damaged {
            path: path.clone(),
            reason: reason.to_string(),
        };
        match trees.meta.get(META_SCHEMA).map_err(sled_err)? {
            Some(v) => {
                let found = <[u8; 4]>::try_from(v.as_ref())
                    .map(u32::from_be_bytes)
                    .map_err(|_| damaged("the schema version is not 4 bytes"))?;
                if found != SCHEMA_VERSION {
                    return Err(StoreOpenError::Schema {
                        path,
                        found,
                        supported: SCHEMA_VERSION,
                    });
                }
            }
            None => {
                trees
                    .meta
                    .insert(META_SCHEMA, &SCHEMA_VERSION.to_be_bytes())
                    .map_err(sled_err)?;
                db.flush().map_err(sled_err)?;
            }
        }
        let federation = OnceLock::new();
        if let Some(v) = trees.meta.get(META_FEDERATION).map_err(sled_err)? {
            let id = <[u8; 32]>::try_from(v.as_ref())
                .map_err(|_| damaged("the federation id is not 32 bytes"))?;
            let _ = federation.set(FederationId(id));
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

    // -----------------------------------------------------------------------------------------------------------
    // Writes. Each returns once the write is durable.

    /// Binds the store to a federation, durably. Binding again to the same one is a no-op; another is refused.
    pub async fn bind_federation(&self, federation: FederationId) -> Result<(), StoreError> {
        if let Some(&found) = self.inner.federation.get() {
            return if found == federation {
                Ok(())
            } else {
                Err(StoreError::WrongFederation {
                    found,
                    expected: federation,
                })
            };
        }
        self.submit(Write::Federation(federation)).await?;
        // The writer refused any other federation, so this is the stored one.
        let _ = self.inner.federation.set(federation);
        Ok(())
    }

    /// Stores a signed op (idempotent: the key is the hash of the bytes).
    pub async fn put_op(&self, op: &SignedOp) -> Result<(), StoreError> {
        self.check_op_federation(op)?;
        self.submit(Write::Op {
            id: op.id(),
            bytes: IVec::from(op.bytes()),
        })
        .await
    }

    /// Stores a signed envelope and lists it under its document (idempotent: a second put changes nothing, so
    /// the document's order is the order of first arrival).
    pub async fn put_envelope(&self, envelope: &SignedEnvelope) -> Result<(), StoreError> {
        self.submit(self.envelope_write(envelope)?).await
    }

    /// Queues an envelope write without waiting for its flush: the returned [`PendingWrite`] resolves once a
    /// group commit covered it. For callers that store many envelopes and then wait for all of them (one flush
    /// instead of one per envelope); blocks only while the queue is full. Do not call it from an async task.
    pub fn queue_envelope_blocking(
        &self,
        envelope: &SignedEnvelope,
    ) -> Result<PendingWrite, StoreError> {
        let write = self.envelope_write(envelope)?;
        futures::executor::block_on(self.enqueue(write)).map(PendingWrite)
    }

    fn envelope_write(&self, envelope: &SignedEnvelope) -> Result<Write, StoreError> {
        let bound = self.inner.federation.get().ok_or(StoreError::NotBound)?;
        if envelope.header().federation != *bound {
            return Err(StoreError::WrongFederation {
                found: *bound,
                expected: envelope.header().federation,
            });
        }
        Ok(Write::Envelope {
            id: envelope.id(),
            doc: envelope.header().doc,
            bytes: IVec::from(envelope.bytes()),
        })
    }

    /// Stores (replaces) what is known about a peer.
    pub async fn put_peer(&self, peer_id: &[u8], record: &PeerRecord) -> Result<(), StoreError> {
        let write = peer_write(peer_id, record)?;
        self.submit(write).await
    }

    /// [`Store::bind_federation`] for synchronous callers (tools, tests). Blocks the thread; do not call it from
    /// an async task.
    pub fn bind_federation_blocking(&self, federation: FederationId) -> Result<(), StoreError> {
        futures::executor::block_on(self.bind_federation(federation))
    }

    /// [`Store::put_op`] for synchronous callers (tools, tests). Blocks the thread; do not call it from an async
    /// task.
    pub fn put_op_blocking(&self, op: &SignedOp) -> Result<(), StoreError> {
        futures::executor::block_on(self.put_op(op))
    }

    /// [`Store::put_envelope`] for synchronous callers. Blocks the thread; do not call it from an async task.
    pub fn put_envelope_blocking(&self, envelope: &SignedEnvelope) -> Result<(), StoreError> {
        futures::executor::block_on(self.put_envelope(envelope))
    }

    /// [`Store::put_peer`] for synchronous callers. Blocks the thread; do not call it from an async task.
    pub fn put_peer_blocking(&self, peer_id: &[u8], record: &PeerRecord) -> Result<(), StoreError> {
        futures::executor::block_on(self.put_peer(peer_id, record))
    }

    /// Queues a write and waits for its acknowledgement. The futures used here (tokio's semaphore, mpsc and
    /// oneshot) need no runtime, which is what lets the blocking variants use `block_on`.
    async fn submit(&self, write: Write) -> Result<(), StoreError> {
        PendingWrite(self.enqueue(write).await?).done().await
    }

    /// Queues a write; the receiver gets its acknowledgement.
    async fn enqueue(
        &self,
        write: Write,
    ) -> Result<oneshot::Receiver<Result<(), StoreError>>, StoreError> {
        let queue = self.inner.queue.as_ref().ok_or(StoreError::Closed)?;
        // Every write is far below the bound (an envelope is at most 8 MiB), so this never waits forever.
        let permits = u32::try_from(write.len().clamp(1, MAX_QUEUED_BYTES)).unwrap_or(u32::MAX);
        let queued = Arc::clone(&self.inner.queued_bytes)
            .acquire_many_owned(permits)
            .await
            .map_err(|_| StoreError::Closed)?;
        let (ack, acked) = oneshot::channel();
        queue
            .send(Request {
                write,
                ack,
                _queued: queued,
            })
            .await
            .map_err(|_| StoreError::Closed)?;
        Ok(acked)
    }

    /// Refuses an op of another federation once the store is bound (the genesis is the op whose id is the
    /// federation).
    fn check_op_federation(&self, op: &SignedOp) -> Result<(), StoreError> {
        match (self.federation(), op_federation(op)) {
            (Some(bound), found) if bound != found => Err(StoreError::WrongFederation {
                found: bound,
                expected: found,
            }),
            _ => Ok(()),
        }
    }

    // -----------------------------------------------------------------------------------------------------------
    // Reads. Everything read is verified again; reads do not wait for the writer (they see applied writes,
    // including ones whose flush is still running).

    /// Whether an op is stored (no verification: a membership test for sync).
    pub fn contains_op(&self, id: &OpId) -> Result<bool, StoreError> {
        self.inner
            .trees
            .ops
            .contains_key(id.0)
            .map_err(|source| read_error(format!("looking up {id}"), source))
    }

    /// One op, verified.
    pub fn get_op(&self, id: &OpId) -> Result<Option<SignedOp>, StoreError> {
        let bytes = self
            .inner
            .trees
            .ops
            .get(id.0)
            .map_err(|source| read_error(format!("reading {id}"), source))?;
        bytes
            .map(|b| verify_op(&id.0, &b, self.federation()))
            .transpose()
    }

    /// Every stored op, each verified again (decoding, signature, key = hash of the bytes, federation), in key
    /// order. The first item that fails is reported; nothing is skipped.
    pub fn load_ops(&self) -> Result<Vec<SignedOp>, StoreError> {
        let federation = self.federation();
        let mut out = Vec::new();
        for item in self.inner.trees.ops.iter() {
            let (key, bytes) =
                item.map_err(|source| read_error("reading the ops".into(), source))?;
            out.push(verify_op(&key, &bytes, federation)?);
        }
        Ok(out)
    }

    /// The number of stored ops (walks the tree).
    pub fn op_count(&self) -> usize {
        self.inner.trees.ops.len()
    }

    /// One envelope, verified.
    pub fn get_envelope(&self, id: &EnvelopeId) -> Result<Option<SignedEnvelope>, StoreError> {
        let Some(federation) = self.federation() else {
            return Ok(None);
        };
        let bytes = self
            .inner
            .trees
            .envelopes
            .get(id.0)
            .map_err(|source| read_error(format!("reading {id}"), source))?;
        bytes
            .map(|b| verify_envelope(&id.0, &b, federation, None))
            .transpose()
    }

    /// The envelopes of one document, verified, in the order they were first stored.
    pub fn envelopes_of(&self, doc: &DocId) -> Result<Vec<SignedEnvelope>, StoreError> {
        let Some(federation) = self.federation() else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for item in self.inner.trees.doc_index.scan_prefix(doc.0) {
            let (key, _) = item.map_err(|source| read_error(format!("listing {doc}"), source))?;
            out.push(self.indexed_envelope(&key, federation)?);
        }
        Ok(out)
    }

    /// Every stored envelope, verified, grouped by document and in insertion order within each. Also checks
    /// that the index and the envelopes agree: an envelope that no document lists is reported as damaged.
    pub fn load_envelopes(&self) -> Result<Vec<SignedEnvelope>, StoreError> {
        let trees = &self.inner.trees;
        let Some(federation) = self.federation() else {
            return if trees.envelopes.is_empty() {
                Ok(Vec::new())
            } else {
                Err(StoreError::NotBound)
            };
        };
        let mut out = Vec::new();
        for item in trees.doc_index.iter() {
            let (key, _) =
                item.map_err(|source| read_error("reading the document index".into(), source))?;
            out.push(self.indexed_envelope(&key, federation)?);
        }
        if out.len() != trees.envelopes.len() {
            let listed: std::collections::HashSet<EnvelopeId> =
                out.iter().map(|e| e.id()).collect();
            for item in trees.envelopes.iter() {
                let (key, _) =
                    item.map_err(|source| read_error("reading the envelopes".into(), source))?;
                let unlisted = <[u8; 32]>::try_from(key.as_ref())
                    .map(|k| !listed.contains(&EnvelopeId(k)))
                    .unwrap_or(true);
                if unlisted {
                    return Err(StoreError::Damaged {
                        tree: TREE_ENVELOPES,
                        key: show_envelope_key(&key),
                        reason: "no document lists this envelope in doc_index".into(),
                    });
                }
            }
            // The count differs but every envelope is listed: an index entry names an envelope twice.
            return Err(StoreError::Damaged {
                tree: TREE_DOC_INDEX,
                key: String::from("(whole tree)"),
                reason: "the index lists more entries than there are envelopes".into(),
            });
        }
        Ok(out)
    }

    /// The envelope a `doc_index` key names, verified, including that it belongs to the indexed document.
    fn indexed_envelope(
        &self,
        key: &[u8],
        federation: FederationId,
    ) -> Result<SignedEnvelope, StoreError> {
        let damaged = |reason: String| StoreError::Damaged {
            tree: TREE_DOC_INDEX,
            key: format!("0x{}", hex::encode(key)),
            reason,
        };
        if key.len() != DOC_INDEX_KEY_LEN {
            return Err(damaged(format!(
                "an index key is {DOC_INDEX_KEY_LEN} bytes, found {}",
                key.len()
            )));
        }
        let mut doc = [0u8; 32];
        let mut id = [0u8; 32];
        doc.copy_from_slice(&key[..32]);
        id.copy_from_slice(&key[40..]);
        let (doc, id) = (DocId(doc), EnvelopeId(id));
        let bytes = self
            .inner
            .trees
            .envelopes
            .get(id.0)
            .map_err(|source| read_error(format!("reading {id}"), source))?
            .ok_or_else(|| damaged(format!("it lists {id}, which is not stored")))?;
        verify_envelope(&id.0, &bytes, federation, Some(doc))
    }

    /// What is known about one peer.
    pub fn get_peer(&self, peer_id: &[u8]) -> Result<Option<PeerRecord>, StoreError> {
        let bytes = self
            .inner
            .trees
            .peers
            .get(peer_id)
            .map_err(|source| read_error("reading a peer record".into(), source))?;
        bytes.map(|b| decode_peer(peer_id, &b)).transpose()
    }

    /// Every peer record, in peer id order.
    pub fn load_peers(&self) -> Result<Vec<(Vec<u8>, PeerRecord)>, StoreError> {
        let mut out = Vec::new();
        for item in self.inner.trees.peers.iter() {
            let (key, bytes) =
                item.map_err(|source| read_error("reading the peers".into(), source))?;
            out.push((key.to_vec(), decode_peer(&key, &bytes)?));
        }
        Ok(out)
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

fn read_error(context: String, source: sled::Error) -> StoreError {
    StoreError::Io { context, source }
}

/// The federation an op belongs to: the one it names, or its own id for a genesis.
fn op_federation(op: &SignedOp) -> FederationId {
    match (op.body().federation, op.kind()) {
        (Some(f), _) => f,
        (None, OpKind::Genesis(_)) => FederationId(op.id().0),
        // Structural checks make every other op name its federation; treat the impossible as the op's own id,
        // which matches no real federation.
        (None, _) => FederationId(op.id().0),
    }
}

/// How a key is shown in [`StoreError::Damaged`]: the id's own human form when it is 32 bytes, hex otherwise.
fn show_key(key: &[u8], as_id: fn([u8; 32]) -> String) -> String {
    match <[u8; 32]>::try_from(key) {
        Ok(k) => as_id(k),
        Err(_) => format!("0x{}", hex::encode(key)),
    }
}

fn show_op_key(key: &[u8]) -> String {
    show_key(key, |k| OpId(k).to_string())
}

fn show_envelope_key(key: &[u8]) -> String {
    show_key(key, |k| EnvelopeId(k).to_string())
}

/// Checks stored op bytes exactly as if a peer had sent them, plus that they are stored under their own hash.
/// The hash is checked first: it is cheap, and a mismatch is the clearest account of what went wrong.
fn verify_op(
    key: &[u8],
    bytes: &[u8],
    federation: Option<FederationId>,
) -> Result<SignedOp, StoreError> {
    let damaged = |reason: String| StoreError::Damaged {
        tree: TREE_OPS,
        key: show_op_key(key),
        reason,
    };
    if key.len() != 32 {
        return Err(damaged(format!("a key is 32 bytes, found {}", key.len())));
    }
    let id = OpId::of_bytes(bytes);
    if id.0 != key {
        return Err(damaged(format!(
            "the stored bytes hash to {id}, not to their key"
        )));
    }
    let op = SignedOp::from_bytes(bytes).map_err(|e| damaged(e.to_string()))?;
    if let Some(bound) = federation {
        let found = op_federation(&op);
        if found != bound {
            return Err(damaged(format!(
                "the op belongs to federation {found}, the store to {bound}"
            )));
        }
    }
    Ok(op)
}

fn verify_envelope(
    key: &[u8],
    bytes: &[u8],
    federation: FederationId,
    doc: Option<DocId>,
) -> Result<SignedEnvelope, StoreError> {
    let damaged = |reason: String| StoreError::Damaged {
        tree: TREE_ENVELOPES,
        key: show_envelope_key(key),
        reason,
    };
    let id = EnvelopeId::of_bytes(bytes);
    if id.0 != key {
        return Err(damaged(format!(
            "the stored bytes hash to {id}, not to their key"
        )));
    }
    let envelope =
        SignedEnvelope::from_bytes(bytes, federation).map_err(|e| damaged(e.to_string()))?;
    if let Some(doc) = doc {
        if envelope.header().doc != doc {
            return Err(damaged(format!(
                "the envelope is for {}, but doc_index lists it under {doc}",
                envelope.header().doc
            )));
        }
    }
    Ok(envelope)
}

fn peer_write(peer_id: &[u8], record: &PeerRecord) -> Result<Write, StoreError> {
    if peer_id.is_empty() {
        return Err(StoreError::Invalid("a peer id is not empty"));
    }
    if peer_id.len() > MAX_PEER_ID_BYTES {
        return Err(StoreError::TooLarge {
            what: "peer id",
            len: peer_id.len(),
            max: MAX_PEER_ID_BYTES,
        });
    }
    let json = serde_json::to_vec(record)
        .map_err(|_| StoreError::Invalid("a peer record must encode as json"))?;
    if json.len() > MAX_PEER_RECORD_BYTES {
        return Err(StoreError::TooLarge {
            what: "peer record",
            len: json.len(),
            max: MAX_PEER_RECORD_BYTES,
        });
    }
    Ok(Write::Peer {
        id: IVec::from(peer_id),
        record: IVec::from(json),
    })
}

fn decode_peer(key: &[u8], bytes: &[u8]) -> Result<PeerRecord, StoreError> {
    let damaged = |reason: String| StoreError::Damaged {
        tree: TREE_PEERS,
        key: format!("0x{}", hex::encode(key)),
        reason,
    };
    if bytes.len() > MAX_PEER_RECORD_BYTES {
        return Err(damaged(format!(
            "the record is {} bytes, the limit is {MAX_PEER_RECORD_BYTES}",
            bytes.len()
        )));
    }
    serde_json::from_slice(bytes).map_err(|e| damaged(e.to_string()))
}

// ---------------------------------------------------------------------------------------------------------------
// The writer.

/// The writer thread: batch, check free space, apply, flush once, acknowledge. Runs until every `Store` clone is
/// dropped and the queue is drained, so nothing queued is ever abandoned.
fn run_writer(
    db: sled::Db,
    trees: Trees,
    path: PathBuf,
    options: StoreOptions,
    mut rx: mpsc::Receiver<Request>,
) {
    let mut flusher = Flusher::start(db.clone(), &path, options.flush_timeout_ms);
    let mut batch: Vec<Request> = Vec::with_capacity(MAX_BATCH_ITEMS);
    let mut results: Vec<Result<(), StoreError>> = Vec::with_capacity(MAX_BATCH_ITEMS);
    while let Some(first) = rx.blocking_recv() {
        let mut bytes = first.write.len();
        batch.push(first);
        while batch.len() < MAX_BATCH_ITEMS && bytes < MAX_BATCH_BYTES {
            match rx.try_recv() {
                Ok(next) => {
                    bytes += next.write.len();
                    batch.push(next);
                }
                Err(_) => break,
            }
        }
        let refused = flusher
            .as_mut()
            .map_or(Err(StoreError::Closed), |f| f.ready())
            .and_then(|()| check_free_space(&path, options.min_free_bytes, bytes));
        match refused {
            Err(e) => results.extend(batch.iter().map(|_| Err(e.clone()))),
            Ok(()) => {
                results.extend(batch.iter().map(|r| apply(&db, &trees, &r.write)));
                // Flushed even when every write was a no-op: a duplicate may have been applied by an earlier
                // batch whose flush failed, and `Ok` must still mean "on disk".
                let flushed = flusher
                    .as_mut()
                    .map_or(Err(StoreError::Closed), |f| f.flush(batch.len()));
                if let Err(e) = flushed {
                    for r in results.iter_mut().filter(|r| r.is_ok()) {
                        *r = Err(e.clone());
                    }
                }
            }
        }
        for (request, result) in batch.drain(..).zip(results.drain(..)) {
            // A caller that stopped waiting still had its write applied; there is no one to tell.
            let _ = request.ack.send(result);
        }
    }
    if let Some(f) = flusher {
        f.stop();
    }
}

/// Refuses a batch that would leave less than `min_free_bytes` ([`MIN_FREE_BYTES`] by default) free on the
/// database's filesystem.
///
/// sled 0.34 does not survive running out of space: its `flush` waits for ever for a log write that failed
/// (measured on a full tmpfs), so every caller would hang. Refusing before the disk is full gives the operator a
/// clear error, leaves the database untouched and consistent, and writes resume by themselves once space is
/// freed. If the free space cannot be read (an exotic filesystem), the check is skipped rather than refusing
/// every write.
fn check_free_space(
    path: &Path,
    min_free_bytes: u64,
    batch_bytes: usize,
) -> Result<(), StoreError> {
    let Ok(available) = fs2::available_space(path) else {
        return Ok(());
    };
    // sled writes each value to its log and later rewrites pages: allow for twice the batch.
    let needed = min_free_bytes.saturating_add(2 * batch_bytes as u64);
    if available < needed {
        return Err(StoreError::DiskFull {
            path: path.to_path_buf(),
            available,
            needed,
        });
    }
    Ok(())
}

/// Runs sled's `flush` on its own thread so the writer can stop waiting for one that never returns (see
/// [`check_free_space`]; a failing disk can do the same). After the timeout ([`FLUSH_TIMEOUT_MS`] by default) the
/// batch is answered with
/// [`StoreError::FlushStalled`], and so is every later batch, unapplied, until the stuck flush completes.
struct Flusher {
    path: PathBuf,
    requests: std::sync::mpsc::SyncSender<()>,
    done: std::sync::mpsc::Receiver<Result<usize, sled::Error>>,
    thread: JoinHandle<()>,
    timeout_ms: u64,
    /// A flush was requested and has not answered yet.
    stalled: bool,
}

impl Flusher {
    fn start(db: sled::Db, path: &Path, timeout_ms: u64) -> Option<Flusher> {
        let (requests, incoming) = std::sync::mpsc::sync_channel::<()>(1);
        let (answer, done) = std::sync::mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("wsis-store-flush".into())
            .spawn(move || {
                while incoming.recv().is_ok() {
                    if answer.send(db.flush()).is_err() {
                        break;
                    }
                }
            })
            .ok()?;
        Some(Flusher {
            path: path.to_path_buf(),
            requests,
            done,
            thread,
            timeout_ms,
            stalled: false,
        })
    }

    /// Whether a new batch may be applied: not while an earlier flush is still stuck.
    fn ready(&mut self) -> Result<(), StoreError> {
        if self.stalled {
            match self.done.try_recv() {
                // The stuck flush finally finished; its batch was already answered with an error.
                Ok(_) => self.stalled = false,
                Err(_) => {
                    return Err(StoreError::FlushStalled {
                        path: self.path.clone(),
                        waited_ms: self.timeout_ms,
                    })
                }
            }
        }
        Ok(())
    }

    /// Flushes everything applied so far and waits, at most the timeout, for it to be on disk.
    fn flush(&mut self, writes: usize) -> Result<(), StoreError> {
        if self.requests.send(()).is_err() {
            return Err(StoreError::Closed);
        }
        match self
            .done
            .recv_timeout(std::time::Duration::from_millis(self.timeout_ms))
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(source)) => Err(StoreError::Io {
                context: format!(
                    "flushing a batch of {writes} writes to {}",
                    self.path.display()
                ),
                source,
            }),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                self.stalled = true;
                Err(StoreError::FlushStalled {
                    path: self.path.clone(),
                    waited_ms: self.timeout_ms,
                })
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err(StoreError::Closed),
        }
    }

    /// Ends the flush thread. A thread stuck in sled is left behind rather than joined, so that dropping the
    /// store cannot hang too.
    fn stop(self) {
        drop(self.requests);
        if !self.stalled {
            let _ = self.thread.join();
        }
    }
}

/// Applies one write to sled (not yet durable).
fn apply(db: &sled::Db, trees: &Trees, write: &Write) -> Result<(), StoreError> {
    match write {
        Write::Op { id, bytes } => {
            trees
                .ops
                .insert(id.0, bytes.clone())
                .map_err(|source| write_error(format!("storing {id}"), source))?;
        }
        Write::Envelope { id, doc, bytes } => {
            let context = || format!("storing {id}");
            if trees
                .envelopes
                .contains_key(id.0)
                .map_err(|source| write_error(context(), source))?
            {
                return Ok(());
            }
            let counter = db
                .generate_id()
                .map_err(|source| write_error(context(), source))?;
            let mut index_key = [0u8; DOC_INDEX_KEY_LEN];
            index_key[..32].copy_from_slice(&doc.0);
            index_key[32..40].copy_from_slice(&counter.to_be_bytes());
            index_key[40..].copy_from_slice(&id.0);
            (&trees.envelopes, &trees.doc_index)
                .transaction(|(envelopes, index)| {
                    envelopes.insert(&id.0, bytes.clone())?;
                    index.insert(&index_key[..], &[][..])?;
                    Ok::<(), ConflictableTransactionError<()>>(())
                })
                .map_err(|e| match e {
                    TransactionError::Storage(source) => write_error(context(), source),
                    // The closure never aborts.
                    TransactionError::Abort(()) => StoreError::Invalid("transaction aborted"),
                })?;
        }
        Write::Peer { id, record } => {
            trees
                .peers
                .insert(id, record.clone())
                .map_err(|source| write_error("storing a peer record".into(), source))?;
        }
        Write::Federation(federation) => {
            let context = || format!("binding the store to {federation}");
            match trees
                .meta
                .get(META_FEDERATION)
                .map_err(|source| write_error(context(), source))?
            {
                Some(v) if v.as_ref() == federation.0 => {}
                Some(v) => {
                    let found =
                        <[u8; 32]>::try_from(v.as_ref()).map_err(|_| StoreError::Damaged {
                            tree: TREE_META,
                            key: "federation".into(),
                            reason: "the federation id is not 32 bytes".into(),
                        })?;
                    return Err(StoreError::WrongFederation {
                        found: FederationId(found),
                        expected: *federation,
                    });
                }
                None => {
                    trees
                        .meta
                        .insert(META_FEDERATION, &federation.0)
                        .map_err(|source| write_error(context(), source))?;
                }
            }
        }
    }
    Ok(())
}

fn write_error(context: String, source: sled::Error) -> StoreError {
    StoreError::Io { context, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_small() {
        // Callers wrap these in their own enums; clippy's `result_large_err` fires above 128 bytes.
        for (name, size) in [
            ("StoreError", std::mem::size_of::<StoreError>()),
            ("StoreOpenError", std::mem::size_of::<StoreOpenError>()),
        ] {
            eprintln!("{name}: {size} bytes");
            assert!(size <= 96, "{name} is {size} bytes");
        }
    }
}
