//! The writer thread: batch, check free space, apply, flush once, acknowledge (group commit), with the flush
//! run on a helper thread under a timeout.

use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use tokio::sync::mpsc;
use wsis_protocol::ids::FederationId;

use super::error::sled_error;
use super::write::{Request, Write};
use super::{
    StoreError, StoreOptions, Trees, DOC_INDEX_KEY_LEN, MAX_BATCH_BYTES, MAX_BATCH_ITEMS,
    META_FEDERATION, TREE_META,
};

/// The writer thread: batch, check free space, apply, flush once, acknowledge. Runs until every `Store` clone is
/// dropped and the queue is drained, so nothing queued is ever abandoned.
pub(super) fn run_writer(
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

/// Refuses a batch that would leave less than `min_free_bytes` ([`MIN_FREE_BYTES`](super::MIN_FREE_BYTES) by
/// default) free on the database's filesystem.
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
/// [`check_free_space`]; a failing disk can do the same). After the timeout
/// ([`FLUSH_TIMEOUT_MS`](super::FLUSH_TIMEOUT_MS) by default) the batch is answered with
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
                .map_err(|source| sled_error(format!("storing {id}"), source))?;
        }
        Write::Envelope { id, doc, bytes } => {
            let context = || format!("storing {id}");
            if trees
                .envelopes
                .contains_key(id.0)
                .map_err(|source| sled_error(context(), source))?
            {
                return Ok(());
            }
            let counter = db
                .generate_id()
                .map_err(|source| sled_error(context(), source))?;
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
                    TransactionError::Storage(source) => sled_error(context(), source),
                    // The closure never aborts.
                    TransactionError::Abort(()) => StoreError::Invalid("transaction aborted"),
                })?;
        }
        Write::Peer { id, record } => {
            trees
                .peers
                .insert(id, record.clone())
                .map_err(|source| sled_error("storing a peer record".into(), source))?;
        }
        Write::Federation(federation) => {
            let context = || format!("binding the store to {federation}");
            match trees
                .meta
                .get(META_FEDERATION)
                .map_err(|source| sled_error(context(), source))?
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
                        .map_err(|source| sled_error(context(), source))?;
                }
            }
        }
    }
    Ok(())
}
