//! A bounded memory of the items (governance ops, change envelopes) this node refused from peers, so that one
//! bad item costs its sender one penalty, not one per sync round.
//!
//! Why: a refused item never enters the replica, so the next `GovSince` or `GetEnvelopes` answer holds it again
//! (and ops that descend from it wait for it as a missing parent). Penalising it again at every anti-entropy
//! round banned a node that had signed one bad item within about a minute. The verdict on an item is a function
//! of its bytes (strict decoding, signature, structural rules, and governance at the heads it cites), so an id
//! refused once is refused again: it is skipped, neither fetched by id nor penalised, whoever sends it.
//!
//! Bounds: the ids are hashes of bytes the peer chose, so a peer can mint as many as it likes. Each entry is
//! charged to the peer that sent it first; a peer holds at most `per_peer` entries (its oldest is forgotten
//! first) and the memory at most `total` (the oldest overall is forgotten first). A forgotten item is only
//! checked (and penalised) again. A peer that sends many distinct bad items is penalised for each and banned as
//! before.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

use crate::net::PeerId;

/// Refused ids charged to one peer at most.
pub(super) const MAX_REFUSED_PER_PEER: usize = 64;
/// Refused ids remembered at most, per kind of item.
pub(super) const MAX_REFUSED: usize = 4_096;
/// Bytes of a remembered reason at most (the reason is this node's own error text; bounded anyway).
const MAX_REASON_BYTES: usize = 200;

/// Why an item was refused, and from whom it came first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Refusal {
    pub(super) peer: PeerId,
    pub(super) reason: String,
}

/// Refused ids of one kind of item, bounded per peer and in total, oldest forgotten first.
#[derive(Debug)]
pub(super) struct RefusedIds<K> {
    entries: HashMap<K, Refusal>,
    /// Every remembered id, oldest first, with the peer it is charged to.
    order: VecDeque<(K, PeerId)>,
    per_peer: HashMap<PeerId, usize>,
    max_per_peer: usize,
    max_total: usize,
}

impl<K: Copy + Eq + Hash> Default for RefusedIds<K> {
    fn default() -> Self {
        Self::new(MAX_REFUSED_PER_PEER, MAX_REFUSED)
    }
}

impl<K: Copy + Eq + Hash> RefusedIds<K> {
    pub(super) fn new(max_per_peer: usize, max_total: usize) -> Self {
        Self {
            entries: HashMap::new(),
            order: VecDeque::new(),
            per_peer: HashMap::new(),
            max_per_peer: max_per_peer.max(1),
            max_total: max_total.max(1),
        }
    }

    /// Whether `id` was refused (and is still remembered).
    pub(super) fn contains(&self, id: &K) -> bool {
        self.entries.contains_key(id)
    }

    /// Why `id` was refused, if it is remembered.
    pub(super) fn get(&self, id: &K) -> Option<&Refusal> {
        self.entries.get(id)
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Remembers that `id`, sent by `peer`, was refused for `reason`. Returns false if it was remembered already
    /// (the first sender and reason are kept).
    pub(super) fn remember(&mut self, id: K, peer: PeerId, reason: &str) -> bool {
        if self.entries.contains_key(&id) {
            return false;
        }
        if self.per_peer.get(&peer).copied().unwrap_or(0) >= self.max_per_peer {
            // The peer's own oldest goes: a peer can only push out what is charged to it.
            if let Some(at) = self.order.iter().position(|(_, p)| *p == peer) {
                self.forget_at(at);
            }
        }
        while self.entries.len() >= self.max_total {
            self.forget_at(0);
        }
        let mut reason = reason.to_string();
        if reason.len() > MAX_REASON_BYTES {
            let mut cut = MAX_REASON_BYTES;
            while !reason.is_char_boundary(cut) {
                cut -= 1;
            }
            reason.truncate(cut);
        }
        self.entries.insert(id, Refusal { peer, reason });
        self.order.push_back((id, peer));
        *self.per_peer.entry(peer).or_insert(0) += 1;
        true
    }

    fn forget_at(&mut self, at: usize) {
        if let Some((id, peer)) = self.order.remove(at) {
            self.entries.remove(&id);
            if let Some(n) = self.per_peer.get_mut(&peer) {
                *n -= 1;
                if *n == 0 {
                    self.per_peer.remove(&peer);
                }
            }
        }
    }
}
