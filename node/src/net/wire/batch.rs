//! [`Batch`]: a response filled with as many ops or envelopes as fit one frame.

use wsis_protocol::limits::{MAX_ENVELOPE_BYTES, MAX_OP_BYTES};

use super::{SyncResponse, MAX_RESPONSE_FRAME_BYTES, MAX_RESPONSE_ITEMS};

/// Fills an `Ops` or `Envelopes` response with as many items as fit one response frame (and the count cap), so a
/// responder can stream a long answer as several requests with `more = true`.
///
/// ```
/// use wsis_node::net::{Batch, SyncResponse};
/// let mut batch = Batch::for_ops();
/// for op in [vec![1u8; 10], vec![2u8; 10]] {
///     if let Err(_op) = batch.try_push(op) {
///         break; // full: answer with more = true
///     }
/// }
/// let resp = batch.into_ops(false);
/// assert!(matches!(resp, SyncResponse::Ops { ref ops, more: false } if ops.len() == 2));
/// ```
#[derive(Debug)]
pub struct Batch {
    items: Vec<Vec<u8>>,
    bytes: usize,
    max_item: usize,
    /// The response size once it holds two items or more.
    page: usize,
    /// The response size with one item.
    lone: usize,
}

/// Room for the message envelope around the items (map heads, kind, `more`, the array head).
const BATCH_OVERHEAD: usize = 32;

impl Batch {
    /// A batch of signed governance ops.
    pub fn for_ops() -> Self {
        Self {
            items: Vec::new(),
            bytes: BATCH_OVERHEAD,
            max_item: MAX_OP_BYTES,
            page: MAX_RESPONSE_FRAME_BYTES,
            lone: MAX_RESPONSE_FRAME_BYTES,
        }
    }

    /// A batch of signed change envelopes.
    pub fn for_envelopes() -> Self {
        Self {
            items: Vec::new(),
            bytes: BATCH_OVERHEAD,
            max_item: MAX_ENVELOPE_BYTES,
            page: MAX_RESPONSE_FRAME_BYTES,
            lone: MAX_RESPONSE_FRAME_BYTES,
        }
    }

    /// A page of at most `page` bytes in all, or of one item alone in at most `lone` bytes (a responder's page
    /// bound and what its peer's budget reserved; both capped by the frame limit).
    pub fn limited(mut self, page: usize, lone: usize) -> Self {
        self.lone = lone.min(MAX_RESPONSE_FRAME_BYTES);
        self.page = page.min(self.lone);
        self
    }

    /// Adds an item if it fits; otherwise gives it back (the batch is full, or the item is larger than any
    /// response may carry — check [`Batch::is_empty`] to tell these apart).
    pub fn try_push(&mut self, item: Vec<u8>) -> Result<(), Vec<u8>> {
        // A byte string's head is at most 9 bytes.
        let cost = item.len() + 9;
        let limit = if self.items.is_empty() {
            self.lone
        } else {
            self.page
        };
        if item.len() > self.max_item
            || self.items.len() >= MAX_RESPONSE_ITEMS
            || self.bytes + cost > limit
        {
            return Err(item);
        }
        self.bytes += cost;
        self.items.push(item);
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn into_ops(self, more: bool) -> SyncResponse {
        SyncResponse::Ops {
            ops: self.items,
            more,
        }
    }

    pub fn into_envelopes(self, more: bool) -> SyncResponse {
        SyncResponse::Envelopes {
            envelopes: self.items,
            more,
        }
    }
}
