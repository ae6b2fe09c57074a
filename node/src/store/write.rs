//! Writes: each is turned into the bytes sled stores ([`Write`]), queued with its share of the byte budget, and
//! acknowledged by the writer thread once a flush covered it.

use sled::IVec;
use std::sync::Arc;
use tokio::sync::{oneshot, OwnedSemaphorePermit};
use wsis_protocol::envelope::SignedEnvelope;
use wsis_protocol::ids::{DocId, EnvelopeId, FederationId, OpId};
use wsis_protocol::limits::MAX_PEER_ID_BYTES;
use wsis_protocol::op::SignedOp;

use super::verify::op_federation;
use super::{PeerRecord, Store, StoreError, MAX_PEER_RECORD_BYTES, MAX_QUEUED_BYTES};

/// One write, already turned into the bytes sled stores, so the writer thread does no encoding or copying.
pub(super) enum Write {
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
    pub(super) fn len(&self) -> usize {
        match self {
            Write::Op { bytes, .. } | Write::Envelope { bytes, .. } => bytes.len(),
            Write::Peer { id, record } => id.len() + record.len(),
            Write::Federation(_) => 32,
        }
    }
}

/// A write on its way to the writer thread, with the channel that acknowledges it.
pub(super) struct Request {
    pub(super) write: Write,
    pub(super) ack: oneshot::Sender<Result<(), StoreError>>,
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

impl Store {
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
