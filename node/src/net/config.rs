//! How a node joins the network ([`NetConfig`]) and the fixed limits the layer enforces whatever the configuration.

use std::time::Duration;

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use wsis_protocol::ids::FederationId;

use super::penalty;

/// The largest gossipsub RPC: one announcement plus signature, key and framing.
pub const MAX_GOSSIP_TRANSMIT_BYTES: usize = 64 * 1024;
/// Peers whose traffic and penalties are remembered (disconnected, unpenalised ones are forgotten first).
pub const MAX_TRACKED_PEERS: usize = 4096;
/// Peers remembered as banned at once; past this the oldest ban is lifted early.
pub const MAX_BANNED_PEERS: usize = 4096;
/// Established connections to one peer.
pub(super) const MAX_CONNECTIONS_PER_PEER: u32 = 2;
/// Concurrent sync streams on one connection. Few: each inbound one can hold a response page in memory, and an
/// honest node runs one sync at a time with a peer.
pub(super) const MAX_STREAMS_PER_CONNECTION: usize = 8;
/// Inbound requests of one peer waiting for the application's answer (over all its connections); past this
/// they are refused as busy at once, before the application sees them.
pub const MAX_PENDING_INBOUND_PER_PEER: usize = 8;
/// How long shutdown waits for connections to close before dropping them.
pub(super) const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// How a node joins the network. Build with [`NetConfig::new`], then set the public fields.
#[derive(Clone)]
#[non_exhaustive]
pub struct NetConfig {
    /// The libp2p transport key's ed25519 seed (`DATA/node.key`); it determines the [`PeerId`].
    pub node_key_seed: [u8; 32],
    /// Addresses to listen on, e.g. `/ip4/0.0.0.0/tcp/4001`, `/ip4/0.0.0.0/udp/4001/quic-v1`.
    pub listen: Vec<Multiaddr>,
    /// Peers to dial at start and re-dial when disconnected; each must end in `/p2p/<peer id>`.
    pub bootstrap: Vec<Multiaddr>,
    /// Peers refused for as long as the node runs: no connection to or from them, never dialled.
    pub blocked_peers: Vec<PeerId>,
    /// Discover peers on the LAN by mDNS (multicast; off unless asked for).
    pub mdns: bool,
    /// The federation this node serves: names the gossip topic and the Kademlia protocol.
    pub federation: FederationId,
    /// Penalty score at which a peer is disconnected and refused (banned); see [`penalty`].
    pub penalty_threshold: u32,
    /// Half-life of a penalty point, in milliseconds (0: points never decay).
    pub penalty_half_life_ms: u64,
    /// Length of a peer's first ban; each further ban of the same peer doubles it.
    pub ban_ms: u64,
    /// Longest ban.
    pub max_ban_ms: u64,
    /// How long a sync request may take, both ways (also how long the application has to answer one).
    pub request_timeout_ms: u64,
    /// How long a connection with no open stream is kept.
    pub idle_timeout_ms: u64,
    /// How often unconnected bootstrap peers are re-dialled.
    pub redial_interval_ms: u64,
    /// Established connections in total.
    pub max_connections: u32,
    /// Capacity of the command channel.
    pub command_capacity: usize,
    /// Capacity of the event channel.
    pub event_capacity: usize,
    /// Inbound requests waiting for the application's answer; past this they are refused as busy.
    pub max_pending_inbound: usize,
    /// Outbound requests waiting for a response.
    pub max_pending_outbound: usize,
    /// Whether inbound requests go to the application from the start. When false, the task answers each one at
    /// once with [`SyncResponse::NoGenesis`](super::SyncResponse::NoGenesis) until [`Network::serve`](super::Network::serve):
    /// a node that is still fetching the genesis or loading its store has nothing to answer from, and a
    /// requester waiting for the request to time out (a newcomer asking around for the genesis) would wait for
    /// nothing.
    pub serve_from_start: bool,
    /// What one peer may cost this node in requests answered and response bytes (see [`ServeBudget`]).
    pub serve_budget: ServeBudget,
}

/// The token-bucket budget of one peer's requests (applied by the node when it answers them): a request takes a
/// request token and reserves response bytes, so what a peer is served over `t` seconds is at most
/// `byte_burst + bytes_per_sec × t` bytes in at most `request_burst + requests_per_sec × t` answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServeBudget {
    /// Requests answered per second, sustained.
    pub requests_per_sec: u32,
    /// Requests answered at once after a quiet spell.
    pub request_burst: u32,
    /// Response bytes per second, sustained.
    pub bytes_per_sec: u64,
    /// Response bytes at once after a quiet spell (at least one envelope of the largest size, so any envelope
    /// can be served).
    pub byte_burst: u64,
}

impl Default for ServeBudget {
    /// 50 requests/s (burst 200) and 4 MiB/s (burst 24 MiB): an honest sync is one request at a time per peer,
    /// so these only show when a node pulls a whole large federation from one peer (it then takes about a
    /// second per 4 MiB beyond the burst, and its other peers serve it too).
    fn default() -> Self {
        Self {
            requests_per_sec: 50,
            request_burst: 200,
            bytes_per_sec: 4 * 1024 * 1024,
            byte_burst: 24 * 1024 * 1024,
        }
    }
}

impl NetConfig {
    /// Defaults for everything but the key and the federation; no listen address and no bootstrap peers.
    pub fn new(node_key_seed: [u8; 32], federation: FederationId) -> Self {
        Self {
            node_key_seed,
            listen: Vec::new(),
            bootstrap: Vec::new(),
            blocked_peers: Vec::new(),
            mdns: false,
            federation,
            penalty_threshold: penalty::DEFAULT_PENALTY_THRESHOLD,
            penalty_half_life_ms: penalty::PENALTY_HALF_LIFE.as_millis() as u64,
            ban_ms: penalty::BAN_DURATION.as_millis() as u64,
            max_ban_ms: penalty::MAX_BAN_DURATION.as_millis() as u64,
            request_timeout_ms: 30_000,
            idle_timeout_ms: 60_000,
            redial_interval_ms: 15_000,
            max_connections: 256,
            command_capacity: 256,
            event_capacity: 1024,
            max_pending_inbound: 1024,
            max_pending_outbound: 1024,
            serve_from_start: true,
            serve_budget: ServeBudget::default(),
        }
    }

    /// The penalty rules these settings make.
    pub fn penalty_policy(&self) -> penalty::PenaltyPolicy {
        penalty::PenaltyPolicy {
            threshold: self.penalty_threshold,
            half_life: Duration::from_millis(self.penalty_half_life_ms),
            ban: Duration::from_millis(self.ban_ms),
            max_ban: Duration::from_millis(self.max_ban_ms),
        }
    }
}

impl std::fmt::Debug for NetConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetConfig")
            .field("node_key_seed", &"<redacted>")
            .field("listen", &self.listen)
            .field("bootstrap", &self.bootstrap)
            .field("blocked_peers", &self.blocked_peers)
            .field("mdns", &self.mdns)
            .field("federation", &self.federation)
            .field("penalty_threshold", &self.penalty_threshold)
            .field("penalty_half_life_ms", &self.penalty_half_life_ms)
            .field("ban_ms", &self.ban_ms)
            .field("max_ban_ms", &self.max_ban_ms)
            .field("request_timeout_ms", &self.request_timeout_ms)
            .field("idle_timeout_ms", &self.idle_timeout_ms)
            .field("redial_interval_ms", &self.redial_interval_ms)
            .field("max_connections", &self.max_connections)
            .field("command_capacity", &self.command_capacity)
            .field("event_capacity", &self.event_capacity)
            .field("max_pending_inbound", &self.max_pending_inbound)
            .field("max_pending_outbound", &self.max_pending_outbound)
            .field("serve_from_start", &self.serve_from_start)
            .field("serve_budget", &self.serve_budget)
            .finish()
    }
}

/// Splits `/…/p2p/<id>` into the peer id and the address without it.
pub(super) fn split_peer(address: &Multiaddr) -> Option<(PeerId, Multiaddr)> {
    let mut base = address.clone();
    match base.pop() {
        Some(Protocol::P2p(peer)) => Some((peer, base)),
        _ => None,
    }
}
