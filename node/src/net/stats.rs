//! Traffic and conduct counters: per peer ([`PeerStats`]) and for the whole layer ([`NetStats`]).

use std::collections::HashMap;

use libp2p::PeerId;

/// Traffic and conduct of one peer. Bytes are sync frames (prefix included) and gossip payloads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PeerStats {
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub requests_in: u64,
    pub requests_out: u64,
    pub announcements_in: u64,
    /// Penalties counted against the peer while it was tracked (this count never decays; the score that decides
    /// a ban does, see [`penalty`](super::penalty)).
    pub penalties: u32,
    pub connected: bool,
    pub banned: bool,
}

/// A snapshot of the network's counters.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct NetStats {
    /// Per peer, for at most [`MAX_TRACKED_PEERS`](super::MAX_TRACKED_PEERS) peers.
    pub peers: HashMap<PeerId, PeerStats>,
    /// All bytes received, including from peers no longer tracked.
    pub bytes_in: u64,
    /// All bytes sent in sync frames.
    pub bytes_out: u64,
    /// Announcement payload bytes published by this node (gossipsub decides which peers get them).
    pub gossip_bytes_published: u64,
    /// Events that could not be delivered because the application's queue was full.
    pub events_dropped: u64,
}
