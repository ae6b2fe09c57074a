//! The storage seam: where the engine puts accepted envelopes before it applies them ([`EnvelopeSink`]), and the
//! in-memory sink for tests and tools ([`MemorySink`]).

use std::collections::BTreeMap;
use wsis_protocol::envelope::SignedEnvelope;
use wsis_protocol::ids::{DocId, EnvelopeId};

/// Where accepted envelopes go before their changes are applied: the node's store implements this.
///
/// `put_envelope` is called once per accepted envelope (remote or published locally), before the engine applies it
/// or returns it for announcement; it should return once the envelope is durable (or queued in a group commit the
/// caller flushes before acknowledging). An error leaves the engine unchanged for that envelope.
pub trait EnvelopeSink {
    type Error: std::error::Error + Send + Sync + 'static;

    fn put_envelope(&mut self, envelope: &SignedEnvelope) -> Result<(), Self::Error>;
}

impl<S: EnvelopeSink + ?Sized> EnvelopeSink for &mut S {
    type Error = S::Error;

    fn put_envelope(&mut self, envelope: &SignedEnvelope) -> Result<(), Self::Error> {
        (**self).put_envelope(envelope)
    }
}

impl<S: EnvelopeSink + ?Sized> EnvelopeSink for Box<S> {
    type Error = S::Error;

    fn put_envelope(&mut self, envelope: &SignedEnvelope) -> Result<(), Self::Error> {
        (**self).put_envelope(envelope)
    }
}

/// The node's store is the production sink: [`Store::put_envelope_blocking`](crate::store::Store) returns once
/// the envelope is flushed (group commit), so an envelope is durable before it is applied or announced. It blocks
/// the calling thread: run the engine on a dedicated or blocking thread, not on an async task.
impl EnvelopeSink for crate::store::Store {
    type Error = crate::store::StoreError;

    fn put_envelope(&mut self, envelope: &SignedEnvelope) -> Result<(), Self::Error> {
        self.put_envelope_blocking(envelope)
    }
}

/// An in-memory [`EnvelopeSink`] for tests and tools: keeps the signed bytes per document, in acceptance order.
#[derive(Debug, Default, Clone)]
pub struct MemorySink {
    pub(super) by_doc: BTreeMap<DocId, Vec<(EnvelopeId, Vec<u8>)>>,
    pub(super) puts: usize,
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
            .entry(envelope.doc())
            .or_default()
            .push((envelope.id(), envelope.bytes().to_vec()));
        self.puts += 1;
        Ok(())
    }
}
