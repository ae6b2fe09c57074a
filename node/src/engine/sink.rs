//! The storage seam: where the engine puts accepted envelopes before it applies them ([`EnvelopeSink`]), and the
//! in-memory sink for tests and tools ([`MemorySink`]).

use std::collections::BTreeMap;
use wsis_protocol::envelope::SignedEnvelope;
use wsis_protocol::ids::{DocId, EnvelopeId};

/// Where accepted envelopes go before their changes are applied: the node's store implements this
/// (`crate::node::StoreSink`).
///
/// `put_envelope` is called once per accepted envelope (remote or published locally), before the engine applies it
/// or returns it for announcement; outside a batch it returns once the envelope is durable. An error leaves the
/// engine unchanged for that envelope.
///
/// The engine owns the group commit: [`DocumentEngine::receive_batch`](super::DocumentEngine::receive_batch) calls
/// [`begin_batch`](Self::begin_batch), then `put_envelope` for every envelope it accepts (which may only queue the
/// write), then [`commit_batch`](Self::commit_batch) — which returns once every queued write is durable — before it
/// applies the batch's changes and returns. A sink without a group commit keeps the defaults (every put is
/// durable at once).
pub trait EnvelopeSink {
    type Error: std::error::Error + Send + Sync + 'static;

    fn put_envelope(&mut self, envelope: &SignedEnvelope) -> Result<(), Self::Error>;

    /// Starts a group commit: until [`commit_batch`](Self::commit_batch), `put_envelope` may queue writes without
    /// waiting for them.
    fn begin_batch(&mut self) {}

    /// Ends the group commit: waits for every write queued since [`begin_batch`](Self::begin_batch) (all of them,
    /// even after an error) and returns the first error.
    fn commit_batch(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

impl<S: EnvelopeSink + ?Sized> EnvelopeSink for &mut S {
    type Error = S::Error;

    fn put_envelope(&mut self, envelope: &SignedEnvelope) -> Result<(), Self::Error> {
        (**self).put_envelope(envelope)
    }

    fn begin_batch(&mut self) {
        (**self).begin_batch()
    }

    fn commit_batch(&mut self) -> Result<(), Self::Error> {
        (**self).commit_batch()
    }
}

/// An in-memory [`EnvelopeSink`] for tests and tools: keeps the signed bytes per document, in acceptance order.
#[derive(Debug, Default, Clone)]
pub struct MemorySink {
    by_doc: BTreeMap<DocId, Vec<(EnvelopeId, Vec<u8>)>>,
    puts: usize,
}

impl MemorySink {
    /// The stored envelopes of `doc`, in the order they were put.
    pub fn envelopes_of(&self, doc: &DocId) -> impl Iterator<Item = &[u8]> {
        self.by_doc
            .get(doc)
            .into_iter()
            .flatten()
            .map(|(_, b)| b.as_slice())
    }

    /// Every stored envelope, grouped by document.
    pub fn all(&self) -> impl Iterator<Item = &[u8]> {
        self.by_doc.values().flatten().map(|(_, b)| b.as_slice())
    }

    /// How many envelopes were put.
    pub fn len(&self) -> usize {
        self.puts
    }

    pub fn is_empty(&self) -> bool {
        self.puts == 0
    }
}

impl EnvelopeSink for MemorySink {
    type Error = std::convert::Infallible;

    fn put_envelope(&mut self, envelope: &SignedEnvelope) -> Result<(), Self::Error> {
        self.by_doc
            .entry(envelope.header().doc)
            .or_default()
            .push((envelope.id(), envelope.bytes().to_vec()));
        self.puts += 1;
        Ok(())
    }
}
