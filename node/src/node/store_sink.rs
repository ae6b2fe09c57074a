//! The document engine's sink on the node's store, with the group commit the engine drives.

use super::*;

/// The document engine's sink: the node's store. The engine calls it synchronously, before it applies an envelope
/// or returns it for announcement; the store acknowledges once the envelope is flushed.
///
/// In a batch receive the engine opens a group commit ([`EnvelopeSink::begin_batch`]): each accepted envelope is
/// queued for the writer at once, and [`EnvelopeSink::commit_batch`] waits for all of them at the end of the batch,
/// before the engine applies the batch and while the node still holds the engine's lock, so one group commit
/// covers the whole response instead of one flush per envelope, and nothing from the batch can be read (served,
/// exported) before it is durable. Outside a batch — this node's own changes (`publish`) — each envelope is
/// flushed before it is announced.
///
/// Every write blocks the calling thread until the writer answers; on the node's multi-threaded runtime it runs
/// under `block_in_place` (see the module docs), elsewhere inline.
pub struct StoreSink {
    store: Store,
    deferred: Option<Vec<crate::store::PendingWrite>>,
}

impl StoreSink {
    pub fn new(store: Store) -> Self {
        StoreSink {
            store,
            deferred: None,
        }
    }
}

impl EnvelopeSink for StoreSink {
    type Error = StoreError;

    fn put_envelope(&mut self, envelope: &SignedEnvelope) -> Result<(), StoreError> {
        // The node runs on a multi-threaded runtime; waiting for the writer here must not stall other tasks.
        match &mut self.deferred {
            Some(pending) => {
                let queued = blocking(|| self.store.queue_envelope_blocking(envelope))?;
                pending.push(queued);
                Ok(())
            }
            None => blocking(|| self.store.put_envelope_blocking(envelope)),
        }
    }

    fn begin_batch(&mut self) {
        self.deferred.get_or_insert_with(Vec::new);
    }

    fn commit_batch(&mut self) -> Result<(), StoreError> {
        let pending = self.deferred.take().unwrap_or_default();
        blocking(|| {
            let mut first = Ok(());
            for p in pending {
                if let Err(e) = p.wait() {
                    if first.is_ok() {
                        first = Err(e);
                    }
                }
            }
            first
        })
    }
}
