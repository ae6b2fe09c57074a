//! libp2p networking: transport, behaviours and the sync wire protocol. The only module that knows libp2p.
//!
//! [`Network::new`] builds a swarm (TCP and QUIC, Noise, Yamux; identify, ping, Kademlia, optional mDNS, gossipsub
//! and the `/wsis/sync/1` request-response protocol) and spawns one tokio task that owns it. The application talks
//! to that task through a cloneable [`Network`] handle (commands over a bounded channel) and receives
//! [`NetEvent`]s over another bounded channel. The layer decides nothing about federation data: it hands every
//! inbound request and announcement, with the authenticated peer id, to the application, which answers
//! ([`Network::respond`], [`Network::validate_announcement`]) and reports bad input ([`Network::penalise`]).
//!
//! What the layer does enforce on its own: frame limits before allocation ([`codec`]), strict decoding
//! ([`wire`]), that a response answers the request it was sent for, count caps on every list, bounded queues
//! everywhere (when the application falls behind, inbound requests are refused with
//! [`RefuseReason::Busy`] and announcements ignored, rather than buffered without end), and a per-peer penalty
//! score: a malformed frame, a malformed or rejected announcement, or [`Network::penalise`] each add one point,
//! points decay (half-life [`penalty::PENALTY_HALF_LIFE`]), and a peer whose score reaches
//! [`NetConfig::penalty_threshold`] is disconnected and refused until its ban expires ([`penalty::BAN_DURATION`],
//! doubling for repeat offenders up to [`penalty::MAX_BAN_DURATION`]). See [`penalty`] for the numbers and why.
//!
//! Besides bans, the operator can block peers for as long as the node runs ([`NetConfig::blocked_peers`]): they
//! are put on the same swarm block list at start and never taken off it (an expiring ban of a blocked peer does
//! not unblock it), so every connection to or from them is denied, they are never dialled (bootstrap entries
//! naming them are skipped), and requests to them fail with [`RequestError::Blocked`]. Their announcements still
//! reach the node when other peers forward them: a block cuts links, it does not distrust the peer's data. The
//! testnet uses it to partition a federation.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use wsis_node::net::{NetConfig, NetEvent, Network, SyncResponse};
//! use wsis_protocol::ids::FederationId;
//!
//! let mut config = NetConfig::new([7; 32], FederationId([1; 32]));
//! config.listen = vec!["/ip4/127.0.0.1/tcp/0".parse()?];
//! let (net, mut events) = Network::new(config)?;
//! while let Some(event) = events.recv().await {
//!     match event {
//!         NetEvent::InboundRequest { channel_id, .. } => {
//!             net.respond(channel_id, SyncResponse::Genesis(b"genesis bytes".to_vec())).await?;
//!         }
//!         NetEvent::ListenAddr { address } => println!("listening on {address}"),
//!         _ => {}
//!     }
//! }
//! # Ok(()) }
//! ```

pub mod codec;
pub mod penalty;
pub mod wire;

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::core::transport::ListenerId;
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance, MessageAuthenticity, ValidationMode};
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, InboundRequestId, OutboundRequestId, ProtocolSupport};
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{
    allow_block_list, connection_limits, identify, identity, kad, mdns, noise, ping, tcp, yamux,
    StreamProtocol, Swarm, SwarmBuilder,
};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use wsis_protocol::ids::{DocId, FederationId};

pub use codec::{frame_error, FrameError, SyncCodec, Wire};
pub use libp2p::gossipsub::MessageId;
pub use libp2p::{Multiaddr, PeerId};
pub use wire::{
    Announce, Batch, EncodeError, RefuseReason, SyncRequest, SyncResponse, MAX_ANNOUNCE_BYTES,
    MAX_ANNOUNCE_DOCS, MAX_PUSH_OPS, MAX_REASON_BYTES, MAX_REQUEST_FRAME_BYTES, MAX_REQUEST_IDS,
    MAX_RESPONSE_FRAME_BYTES, MAX_RESPONSE_HEADS, MAX_RESPONSE_ITEMS, SYNC_PROTOCOL,
};

/// The largest gossipsub RPC: one announcement plus signature, key and framing.
pub const MAX_GOSSIP_TRANSMIT_BYTES: usize = 64 * 1024;
/// Peers whose traffic and penalties are remembered (disconnected, unpenalised ones are forgotten first).
pub const MAX_TRACKED_PEERS: usize = 4096;
/// Peers remembered as banned at once; past this the oldest ban is lifted early.
pub const MAX_BANNED_PEERS: usize = 4096;
/// Established connections to one peer.
const MAX_CONNECTIONS_PER_PEER: u32 = 2;
/// Concurrent sync streams on one connection.
const MAX_STREAMS_PER_CONNECTION: usize = 32;
/// How long shutdown waits for connections to close before dropping them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

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
            .finish()
    }
}

/// Errors of the network layer's setup and commands.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    #[error("invalid node key")]
    Key(#[source] identity::DecodingError),
    #[error("no tokio runtime is running")]
    NoRuntime,
    #[error("cannot build the transport")]
    Transport(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("cannot build the network behaviour")]
    Behaviour(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("bootstrap address {0} does not end in /p2p/<peer id>")]
    BootstrapWithoutPeerId(Multiaddr),
    #[error("cannot listen on {address}")]
    Listen {
        address: Multiaddr,
        #[source]
        source: libp2p::TransportError<io::Error>,
    },
    #[error("cannot dial {address}")]
    Dial {
        address: Multiaddr,
        #[source]
        source: libp2p::swarm::DialError,
    },
    #[error("the network task has stopped")]
    Stopped,
    #[error("message cannot be encoded")]
    Encode(#[from] EncodeError),
    #[error("no pending request {0} (already answered, timed out, or unknown)")]
    UnknownChannel(ChannelId),
    #[error("the requester is gone (request {0} timed out or its connection closed)")]
    ChannelClosed(ChannelId),
    #[error("cannot publish the announcement")]
    Publish(#[source] gossipsub::PublishError),
}

/// Why an outbound sync request got no usable response.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    #[error(transparent)]
    Network(#[from] NetError),
    #[error("the peer is banned")]
    Banned,
    #[error("the peer is blocked by this node's configuration")]
    Blocked,
    #[error("too many requests in flight")]
    TooManyPending,
    #[error("could not connect to the peer")]
    DialFailure,
    #[error("no response in time")]
    Timeout,
    #[error("the connection closed before the response")]
    ConnectionClosed,
    #[error("the peer does not speak {SYNC_PROTOCOL}")]
    UnsupportedProtocol,
    #[error("malformed response")]
    Malformed(#[source] FrameError),
    #[error("i/o error on the sync stream")]
    Io(#[source] io::Error),
    #[error("a {got} response does not answer a {request} request")]
    UnexpectedResponse {
        request: &'static str,
        got: &'static str,
    },
}

/// Names an inbound request until the application answers it with [`Network::respond`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChannelId(InboundRequestId);

impl std::fmt::Display for ChannelId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// What the application is told. Every variant is about one peer, named by its authenticated id.
#[derive(Debug)]
#[non_exhaustive]
pub enum NetEvent {
    /// A decoded sync request; answer it with [`Network::respond`] (within `request_timeout_ms`).
    InboundRequest {
        peer: PeerId,
        request: SyncRequest,
        channel_id: ChannelId,
    },
    /// A decoded announcement; answer with [`Network::validate_announcement`] so gossipsub forwards (accept) or
    /// drops it. `peer` forwarded it to us; `source` signed it (gossipsub's strict mode checked the signature).
    Announcement {
        peer: PeerId,
        source: Option<PeerId>,
        msg: Announce,
        message_id: MessageId,
    },
    /// The first connection to a peer was established.
    PeerConnected {
        peer: PeerId,
        address: Multiaddr,
        inbound: bool,
    },
    /// The last connection to a peer closed.
    PeerDisconnected { peer: PeerId },
    /// A peer reached the penalty threshold: disconnected and refused until its ban expires.
    PeerBanned { peer: PeerId },
    /// A peer's ban expired (or was lifted to make room in the ban list): it may connect again.
    PeerUnbanned { peer: PeerId },
    /// The node listens on a new address.
    ListenAddr { address: Multiaddr },
}

/// The application's verdict on an announcement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validation {
    /// Valid: deliver and forward.
    Accept,
    /// Invalid: drop, and count a penalty against the peer that forwarded it.
    Reject,
    /// Neither (e.g. not interesting now): drop without a penalty.
    Ignore,
}

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
    /// a ban does, see [`penalty`]).
    pub penalties: u32,
    pub connected: bool,
    pub banned: bool,
}

/// A snapshot of the network's counters.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct NetStats {
    /// Per peer, for at most [`MAX_TRACKED_PEERS`] peers.
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

/// The composed libp2p behaviour. `blocked` and `limits` enforce bans (and configured blocks) and connection caps.
#[derive(NetworkBehaviour)]
pub struct Behaviour {
    pub blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    pub limits: connection_limits::Behaviour,
    pub identify: identify::Behaviour,
    pub ping: ping::Behaviour,
    pub kad: kad::Behaviour<kad::store::MemoryStore>,
    pub mdns: Toggle<mdns::tokio::Behaviour>,
    pub gossipsub: gossipsub::Behaviour,
    pub sync: request_response::Behaviour<SyncCodec>,
}

/// The gossip topic of a federation: `wsis/<federation id>/heads`.
pub fn heads_topic(federation: &FederationId) -> IdentTopic {
    IdentTopic::new(format!("wsis/{federation}/heads"))
}

/// The Kademlia protocol of a federation, so federations keep separate routing tables.
pub fn kad_protocol(federation: &FederationId) -> Result<StreamProtocol, NetError> {
    StreamProtocol::try_from_owned(format!("/wsis/{federation}/kad/1"))
        .map_err(|e| NetError::Config(format!("kademlia protocol name: {e}")))
}

/// The identify protocol version this node announces.
pub const IDENTIFY_PROTOCOL_VERSION: &str = "/wsis/1";

fn build_behaviour(
    key: &identity::Keypair,
    config: &NetConfig,
) -> Result<Behaviour, Box<dyn std::error::Error + Send + Sync>> {
    let peer_id = key.public().to_peer_id();

    let identify = identify::Behaviour::new(
        identify::Config::new(IDENTIFY_PROTOCOL_VERSION.to_string(), key.public())
            .with_agent_version(format!("wsis-node/{}", env!("CARGO_PKG_VERSION"))),
    );

    let mut kad_config = kad::Config::new(kad_protocol(&config.federation)?);
    kad_config.set_query_timeout(Duration::from_secs(30));
    let mut kad =
        kad::Behaviour::with_config(peer_id, kad::store::MemoryStore::new(peer_id), kad_config);
    // Nodes run on servers and answer routing queries; without this Kademlia waits for a confirmed external
    // address, which loopback and LAN setups never get.
    kad.set_mode(Some(kad::Mode::Server));

    let mdns = if config.mdns {
        Some(mdns::tokio::Behaviour::new(
            mdns::Config::default(),
            peer_id,
        )?)
    } else {
        None
    };

    let gossip_config = gossipsub::ConfigBuilder::default()
        .validation_mode(ValidationMode::Strict)
        .validate_messages()
        .max_transmit_size(MAX_GOSSIP_TRANSMIT_BYTES)
        .heartbeat_interval(Duration::from_secs(1))
        .build()?;
    let mut gossipsub =
        gossipsub::Behaviour::new(MessageAuthenticity::Signed(key.clone()), gossip_config)?;
    gossipsub.subscribe(&heads_topic(&config.federation))?;

    let sync = request_response::Behaviour::with_codec(
        SyncCodec,
        [(SyncCodec::protocol(), ProtocolSupport::Full)],
        request_response::Config::default()
            .with_request_timeout(Duration::from_millis(config.request_timeout_ms))
            .with_max_concurrent_streams(MAX_STREAMS_PER_CONNECTION),
    );

    let limits = connection_limits::Behaviour::new(
        connection_limits::ConnectionLimits::default()
            .with_max_established(Some(config.max_connections))
            .with_max_established_per_peer(Some(MAX_CONNECTIONS_PER_PEER))
            .with_max_pending_incoming(Some(64))
            .with_max_pending_outgoing(Some(64)),
    );

    Ok(Behaviour {
        blocked: allow_block_list::Behaviour::default(),
        limits,
        identify,
        ping: ping::Behaviour::new(ping::Config::new()),
        kad,
        mdns: Toggle::from(mdns),
        gossipsub,
        sync,
    })
}

/// Splits `/…/p2p/<id>` into the peer id and the address without it.
fn split_peer(address: &Multiaddr) -> Option<(PeerId, Multiaddr)> {
    let mut base = address.clone();
    match base.pop() {
        Some(Protocol::P2p(peer)) => Some((peer, base)),
        _ => None,
    }
}

#[derive(Debug)]
enum Command {
    SendRequest {
        peer: PeerId,
        bytes: Vec<u8>,
        expect: Expect,
        reply: oneshot::Sender<Result<SyncResponse, RequestError>>,
    },
    Respond {
        channel_id: ChannelId,
        bytes: Vec<u8>,
        reply: oneshot::Sender<Result<(), NetError>>,
    },
    Announce {
        bytes: Vec<u8>,
        reply: oneshot::Sender<Result<(), NetError>>,
    },
    Validate {
        message_id: MessageId,
        peer: PeerId,
        verdict: Validation,
    },
    Dial {
        address: Multiaddr,
        reply: oneshot::Sender<Result<(), NetError>>,
    },
    Disconnect {
        peer: PeerId,
    },
    Penalise {
        peer: PeerId,
        reason: String,
    },
    ListenAddrs {
        reply: oneshot::Sender<Vec<Multiaddr>>,
    },
    ConnectedPeers {
        reply: oneshot::Sender<Vec<PeerId>>,
    },
    GossipPeers {
        reply: oneshot::Sender<Vec<PeerId>>,
    },
    Stats {
        reply: oneshot::Sender<NetStats>,
    },
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

/// What kind of response a request may get (besides a refusal); kept instead of the request itself.
#[derive(Debug, Clone, Copy)]
enum Expect {
    Genesis,
    Ops,
    Envelopes,
    Heads(DocId),
    Ack,
    DocDigests,
}

impl Expect {
    fn of(request: &SyncRequest) -> Self {
        match request {
            SyncRequest::Hello { .. } => Expect::Genesis,
            SyncRequest::GovSince { .. } | SyncRequest::GetOps { .. } => Expect::Ops,
            SyncRequest::DocHeads { doc } => Expect::Heads(*doc),
            SyncRequest::GetEnvelopes { .. } => Expect::Envelopes,
            SyncRequest::Push { .. } => Expect::Ack,
            SyncRequest::DocDigests { .. } => Expect::DocDigests,
        }
    }

    fn accepts(self, response: &SyncResponse) -> bool {
        match (self, response) {
            (_, SyncResponse::Refused { .. }) => true,
            (Expect::Genesis, SyncResponse::Genesis(_)) => true,
            (Expect::Ops, SyncResponse::Ops { .. }) => true,
            (Expect::Envelopes, SyncResponse::Envelopes { .. }) => true,
            (Expect::Heads(doc), SyncResponse::Heads { doc: d, .. }) => doc == *d,
            (Expect::Ack, SyncResponse::Ack { .. }) => true,
            (Expect::DocDigests, SyncResponse::DocDigests { .. }) => true,
            _ => false,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Expect::Genesis => "hello",
            Expect::Ops => "gov-since/get-ops",
            Expect::Envelopes => "get-envelopes",
            Expect::Heads(_) => "doc-heads",
            Expect::Ack => "push",
            Expect::DocDigests => "doc-digests",
        }
    }
}

/// A response on its way; resolves when the peer answers or the request fails.
#[derive(Debug)]
pub struct PendingResponse(oneshot::Receiver<Result<SyncResponse, RequestError>>);

impl Future for PendingResponse {
    type Output = Result<SyncResponse, RequestError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(RequestError::Network(NetError::Stopped))))
    }
}

/// A handle to the running network task. Cheap to clone; when every clone is dropped the task shuts down.
#[derive(Debug, Clone)]
pub struct Network {
    commands: mpsc::Sender<Command>,
    local_peer_id: PeerId,
    task: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl Network {
    /// Builds the swarm, starts listening and dialling, and spawns the task that owns the swarm on the current
    /// tokio runtime. Returns the handle and the receiver of [`NetEvent`]s (bounded by
    /// [`NetConfig::event_capacity`]; the application must keep reading it).
    pub fn new(config: NetConfig) -> Result<(Network, mpsc::Receiver<NetEvent>), NetError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| NetError::NoRuntime)?;
        if config.command_capacity == 0 || config.event_capacity == 0 {
            return Err(NetError::Config(
                "channel capacities must be positive".into(),
            ));
        }
        let mut seed = config.node_key_seed;
        let keypair = identity::Keypair::ed25519_from_bytes(&mut seed).map_err(NetError::Key)?;
        let local_peer_id = keypair.public().to_peer_id();
        let blocked_peers: HashSet<PeerId> = config.blocked_peers.iter().copied().collect();

        let mut bootstrap = Vec::with_capacity(config.bootstrap.len());
        for address in &config.bootstrap {
            let (peer, base) = split_peer(address)
                .ok_or_else(|| NetError::BootstrapWithoutPeerId(address.clone()))?;
            if peer == local_peer_id {
                tracing::debug!(%address, "skipping bootstrap address of this node");
                continue;
            }
            if blocked_peers.contains(&peer) {
                tracing::warn!(%address, "skipping bootstrap address of a blocked peer");
                continue;
            }
            bootstrap.push((peer, base, address.clone()));
        }

        let idle = Duration::from_millis(config.idle_timeout_ms);
        let mut swarm = SwarmBuilder::with_existing_identity(keypair)
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )
            .map_err(|e| NetError::Transport(Box::new(e)))?
            .with_quic()
            .with_behaviour(|key| build_behaviour(key, &config))
            .map_err(|e| NetError::Behaviour(Box::new(e)))?
            .with_swarm_config(|c| c.with_idle_connection_timeout(idle))
            .build();
        for peer in &blocked_peers {
            tracing::info!(%peer, "peer blocked by configuration");
            swarm.behaviour_mut().blocked.block_peer(*peer);
        }

        let mut listeners = Vec::with_capacity(config.listen.len());
        for address in &config.listen {
            let id = swarm
                .listen_on(address.clone())
                .map_err(|source| NetError::Listen {
                    address: address.clone(),
                    source,
                })?;
            listeners.push(id);
        }

        for (peer, base, full) in &bootstrap {
            swarm.behaviour_mut().kad.add_address(peer, base.clone());
            if let Err(e) = swarm.dial(full.clone()) {
                tracing::warn!(address = %full, error = %e, "cannot dial bootstrap peer");
            }
        }
        if !bootstrap.is_empty() {
            if let Err(e) = swarm.behaviour_mut().kad.bootstrap() {
                tracing::debug!(error = %e, "kademlia bootstrap not started");
            }
        }

        let (command_tx, command_rx) = mpsc::channel(config.command_capacity);
        let (event_tx, event_rx) = mpsc::channel(config.event_capacity);
        let topic = heads_topic(&config.federation);
        tracing::info!(peer_id = %local_peer_id, topic = %topic.hash(), "network starting");
        let task = Task {
            swarm,
            commands: command_rx,
            events: event_tx,
            topic,
            kad_protocol: kad_protocol(&config.federation)?,
            bootstrap: bootstrap
                .into_iter()
                .map(|(p, _, full)| (p, full))
                .collect(),
            listeners,
            pending_inbound: HashMap::new(),
            pending_outbound: HashMap::new(),
            stats: HashMap::new(),
            banned: HashMap::new(),
            banned_order: VecDeque::new(),
            blocked_peers,
            conduct: HashMap::new(),
            policy: config.penalty_policy(),
            totals: NetStats::default(),
            config,
        };
        let handle = runtime.spawn(task.run());
        Ok((
            Network {
                commands: command_tx,
                local_peer_id,
                task: Arc::new(Mutex::new(Some(handle))),
            },
            event_rx,
        ))
    }

    /// This node's peer id.
    pub fn local_peer_id(&self) -> PeerId {
        self.local_peer_id
    }

    async fn command(&self, command: Command) -> Result<(), NetError> {
        self.commands
            .send(command)
            .await
            .map_err(|_| NetError::Stopped)
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, NetError> {
        let (tx, rx) = oneshot::channel();
        self.command(make(tx)).await?;
        rx.await.map_err(|_| NetError::Stopped)
    }

    /// Sends a request (dialling the peer if needed, from addresses Kademlia or mDNS know). The request is
    /// encoded and size-checked here; the returned future resolves to the response, or an error when the peer
    /// fails, times out, disconnects or answers with something that does not answer this request.
    pub async fn send_request(
        &self,
        peer: PeerId,
        request: &SyncRequest,
    ) -> Result<PendingResponse, NetError> {
        let bytes = request.encode()?;
        let expect = Expect::of(request);
        let (tx, rx) = oneshot::channel();
        self.command(Command::SendRequest {
            peer,
            bytes,
            expect,
            reply: tx,
        })
        .await?;
        Ok(PendingResponse(rx))
    }

    /// [`Network::send_request`] and wait for the response.
    pub async fn request(
        &self,
        peer: PeerId,
        request: &SyncRequest,
    ) -> Result<SyncResponse, RequestError> {
        self.send_request(peer, request).await?.await
    }

    /// Answers an inbound request. Fails if the response breaks a limit, or the request is no longer pending.
    pub async fn respond(
        &self,
        channel_id: ChannelId,
        response: SyncResponse,
    ) -> Result<(), NetError> {
        let bytes = response.encode()?;
        self.ask(|reply| Command::Respond {
            channel_id,
            bytes,
            reply,
        })
        .await?
    }

    /// Publishes an announcement on the federation's topic. Fails with [`NetError::Publish`] when no peer is
    /// subscribed yet (announce again later).
    pub async fn announce(&self, msg: &Announce) -> Result<(), NetError> {
        let bytes = msg.encode()?;
        self.ask(|reply| Command::Announce { bytes, reply }).await?
    }

    /// The application's verdict on an [`NetEvent::Announcement`]: gossipsub forwards it only on `Accept`.
    pub async fn validate_announcement(
        &self,
        message_id: MessageId,
        peer: PeerId,
        verdict: Validation,
    ) -> Result<(), NetError> {
        self.command(Command::Validate {
            message_id,
            peer,
            verdict,
        })
        .await
    }

    /// Dials an address (with or without `/p2p/<id>`).
    pub async fn dial(&self, address: Multiaddr) -> Result<(), NetError> {
        self.ask(|reply| Command::Dial { address, reply }).await?
    }

    /// Closes every connection to a peer (it may connect again).
    pub async fn disconnect(&self, peer: PeerId) -> Result<(), NetError> {
        self.command(Command::Disconnect { peer }).await
    }

    /// Counts one invalid item against a peer; when its (decaying) score reaches [`NetConfig::penalty_threshold`]
    /// the peer is disconnected and refused until its ban expires.
    pub async fn penalise(&self, peer: PeerId, reason: impl Into<String>) -> Result<(), NetError> {
        self.command(Command::Penalise {
            peer,
            reason: reason.into(),
        })
        .await
    }

    /// The addresses the node listens on now.
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>, NetError> {
        self.ask(|reply| Command::ListenAddrs { reply }).await
    }

    /// Peers with at least one established connection.
    pub async fn connected_peers(&self) -> Result<Vec<PeerId>, NetError> {
        self.ask(|reply| Command::ConnectedPeers { reply }).await
    }

    /// Peers subscribed to the federation's gossip topic (those an announcement can reach directly).
    pub async fn gossip_peers(&self) -> Result<Vec<PeerId>, NetError> {
        self.ask(|reply| Command::GossipPeers { reply }).await
    }

    /// Traffic and penalty counters.
    pub async fn stats(&self) -> Result<NetStats, NetError> {
        self.ask(|reply| Command::Stats { reply }).await
    }

    /// Stops listening, closes connections (waiting briefly for them to close), fails pending requests and ends
    /// the task; the event receiver then yields `None`. Calling it again, or from another clone, is harmless.
    pub async fn shutdown(&self) -> Result<(), NetError> {
        // If the task is already gone the command fails; that is a finished shutdown, not an error.
        let _ = self.ask(|reply| Command::Shutdown { reply }).await;
        let handle = self.task.lock().ok().and_then(|mut slot| slot.take());
        if let Some(handle) = handle {
            if let Err(e) = handle.await {
                tracing::warn!(error = %e, "network task ended abnormally");
            }
        }
        Ok(())
    }
}

struct PendingOutbound {
    peer: PeerId,
    expect: Expect,
    reply: oneshot::Sender<Result<SyncResponse, RequestError>>,
}

struct Task {
    swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<NetEvent>,
    topic: IdentTopic,
    kad_protocol: StreamProtocol,
    bootstrap: Vec<(PeerId, Multiaddr)>,
    listeners: Vec<ListenerId>,
    pending_inbound: HashMap<
        InboundRequestId,
        (
            PeerId,
            request_response::ResponseChannel<Wire<SyncResponse>>,
        ),
    >,
    pending_outbound: HashMap<OutboundRequestId, PendingOutbound>,
    stats: HashMap<PeerId, PeerStats>,
    /// Peers banned now (blocked in the swarm) with the end of their ban, and the order they were banned in.
    banned: HashMap<PeerId, Instant>,
    banned_order: VecDeque<PeerId>,
    /// Peers blocked by configuration: on the swarm's block list for the task's whole life.
    blocked_peers: HashSet<PeerId>,
    /// Penalty scores and ban deadlines, for at most [`MAX_TRACKED_PEERS`] peers.
    conduct: HashMap<PeerId, penalty::Conduct>,
    policy: penalty::PenaltyPolicy,
    totals: NetStats,
    config: NetConfig,
}

impl Task {
    async fn run(mut self) {
        let mut redial =
            tokio::time::interval(Duration::from_millis(self.config.redial_interval_ms.max(1)));
        redial.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut sweep = tokio::time::interval(penalty::BAN_SWEEP_INTERVAL);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(Command::Shutdown { reply }) => {
                        self.shutdown().await;
                        let _ = reply.send(());
                        return;
                    }
                    Some(command) => self.on_command(command),
                    None => {
                        tracing::debug!("every network handle dropped");
                        self.shutdown().await;
                        return;
                    }
                },
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                _ = redial.tick() => self.redial(),
                _ = sweep.tick() => self.lift_expired_bans(Instant::now()),
            }
        }
    }

    async fn shutdown(&mut self) {
        tracing::info!("network shutting down");
        for id in self.listeners.drain(..) {
            self.swarm.remove_listener(id);
        }
        for (_, pending) in self.pending_outbound.drain() {
            let _ = pending
                .reply
                .send(Err(RequestError::Network(NetError::Stopped)));
        }
        self.pending_inbound.clear();
        let peers: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
        for peer in peers {
            let _ = self.swarm.disconnect_peer_id(peer);
        }
        let grace = tokio::time::sleep(SHUTDOWN_GRACE);
        tokio::pin!(grace);
        while self.swarm.network_info().num_peers() > 0 {
            tokio::select! {
                _ = &mut grace => {
                    tracing::debug!("connections still open after the grace period; dropping them");
                    break;
                }
                event = self.swarm.select_next_some() => {
                    if let SwarmEvent::ConnectionClosed { peer_id, num_established: 0, .. } = event {
                        tracing::debug!(peer = %peer_id, "disconnected on shutdown");
                    }
                }
            }
        }
    }

    /// Hands an event to the application without waiting; false (and counted) if its queue is full or gone.
    fn emit(&mut self, event: NetEvent) -> bool {
        match self.events.try_send(event) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(event)) => {
                self.totals.events_dropped += 1;
                tracing::warn!(?event, "event queue full; dropping event");
                false
            }
            Err(mpsc::error::TrySendError::Closed(event)) => {
                self.totals.events_dropped += 1;
                tracing::debug!(?event, "event receiver dropped");
                false
            }
        }
    }

    /// The stats entry of a peer, creating it if there is room (forgetting an idle, unpenalised peer if needed).
    fn peer_stats(&mut self, peer: PeerId) -> Option<&mut PeerStats> {
        if !self.stats.contains_key(&peer) && self.stats.len() >= MAX_TRACKED_PEERS {
            let victim = self
                .stats
                .iter()
                .filter(|(_, s)| !s.connected && !s.banned)
                .min_by_key(|(_, s)| s.penalties)
                .map(|(p, _)| *p);
            match victim {
                Some(victim) => {
                    self.stats.remove(&victim);
                }
                None => return None,
            }
        }
        Some(self.stats.entry(peer).or_default())
    }

    fn count_in(&mut self, peer: PeerId, bytes: usize, f: impl FnOnce(&mut PeerStats)) {
        self.totals.bytes_in += bytes as u64;
        if let Some(s) = self.peer_stats(peer) {
            s.bytes_in += bytes as u64;
            f(s);
        }
    }

    fn count_out(&mut self, peer: PeerId, bytes: usize, f: impl FnOnce(&mut PeerStats)) {
        self.totals.bytes_out += bytes as u64;
        if let Some(s) = self.peer_stats(peer) {
            s.bytes_out += bytes as u64;
            f(s);
        }
    }

    /// The conduct entry of a peer, creating it if there is room (forgetting one with nothing worth keeping).
    fn conduct(&mut self, peer: PeerId, now: Instant) -> Option<&mut penalty::Conduct> {
        if !self.conduct.contains_key(&peer) && self.conduct.len() >= MAX_TRACKED_PEERS {
            let policy = self.policy;
            self.conduct.retain(|_, c| !c.is_forgettable(now, &policy));
            if self.conduct.len() >= MAX_TRACKED_PEERS {
                return None;
            }
        }
        Some(self.conduct.entry(peer).or_default())
    }

    fn penalise(&mut self, peer: PeerId, reason: &str) {
        if self.banned.contains_key(&peer) {
            return;
        }
        let now = Instant::now();
        let policy = self.policy;
        if let Some(s) = self.peer_stats(peer) {
            s.penalties = s.penalties.saturating_add(1);
        }
        let verdict = match self.conduct(peer, now) {
            Some(c) => c.penalise(now, &policy),
            // No room to remember the peer: treat it as a repeat offender (a ban bounded in time).
            None => penalty::Verdict::Banned {
                until: now + policy.ban,
                length: policy.ban,
            },
        };
        match verdict {
            penalty::Verdict::Counted { score } => {
                tracing::warn!(%peer, %reason, score, threshold = policy.threshold, "peer penalised")
            }
            penalty::Verdict::Banned { until, length } => {
                tracing::warn!(%peer, %reason, ban_s = length.as_secs(), "peer penalised past the threshold");
                self.ban(peer, until);
            }
            penalty::Verdict::AlreadyBanned => {}
        }
    }

    /// Lifts a ban: unblocks the peer and lets gossipsub talk to it again; its score starts from zero.
    fn unban(&mut self, peer: PeerId) {
        self.banned.remove(&peer);
        self.banned_order.retain(|p| *p != peer);
        if let Some(c) = self.conduct.get_mut(&peer) {
            c.lift_ban();
        }
        if let Some(s) = self.stats.get_mut(&peer) {
            s.banned = false;
        }
        let still_blocked = self.blocked_peers.contains(&peer);
        let behaviour = self.swarm.behaviour_mut();
        if !still_blocked {
            behaviour.blocked.unblock_peer(peer);
        }
        behaviour.gossipsub.remove_blacklisted_peer(&peer);
        tracing::info!(%peer, "ban lifted");
        self.emit(NetEvent::PeerUnbanned { peer });
    }

    fn lift_expired_bans(&mut self, now: Instant) {
        let expired: Vec<PeerId> = self
            .banned
            .iter()
            .filter(|(_, until)| **until <= now)
            .map(|(p, _)| *p)
            .collect();
        for peer in expired {
            self.unban(peer);
        }
    }

    fn ban(&mut self, peer: PeerId, until: Instant) {
        tracing::warn!(%peer, "peer banned: disconnecting and refusing it");
        if self.banned_order.len() >= MAX_BANNED_PEERS {
            if let Some(oldest) = self.banned_order.front().copied() {
                self.unban(oldest);
            }
        }
        self.banned.insert(peer, until);
        self.banned_order.push_back(peer);
        if let Some(s) = self.peer_stats(peer) {
            s.banned = true;
        }
        let behaviour = self.swarm.behaviour_mut();
        behaviour.blocked.block_peer(peer);
        behaviour.gossipsub.blacklist_peer(&peer);
        let _ = behaviour.kad.remove_peer(&peer);
        let _ = self.swarm.disconnect_peer_id(peer);
        self.emit(NetEvent::PeerBanned { peer });
    }

    fn redial(&mut self) {
        for (peer, address) in self.bootstrap.clone() {
            if self.banned.contains_key(&peer) || self.swarm.is_connected(&peer) {
                continue;
            }
            tracing::debug!(%peer, %address, "re-dialling bootstrap peer");
            if let Err(e) = self.swarm.dial(address.clone()) {
                tracing::debug!(%peer, error = %e, "re-dial failed");
            }
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::SendRequest {
                peer,
                bytes,
                expect,
                reply,
            } => {
                if self.banned.contains_key(&peer) {
                    let _ = reply.send(Err(RequestError::Banned));
                    return;
                }
                if self.blocked_peers.contains(&peer) {
                    let _ = reply.send(Err(RequestError::Blocked));
                    return;
                }
                if self.pending_outbound.len() >= self.config.max_pending_outbound {
                    let _ = reply.send(Err(RequestError::TooManyPending));
                    return;
                }
                let len = bytes.len() + codec::FRAME_PREFIX_BYTES;
                let id = self
                    .swarm
                    .behaviour_mut()
                    .sync
                    .send_request(&peer, Wire::Outgoing(bytes));
                tracing::debug!(%peer, request = expect.name(), %id, "sync request sent");
                self.count_out(peer, len, |s| s.requests_out += 1);
                self.pending_outbound.insert(
                    id,
                    PendingOutbound {
                        peer,
                        expect,
                        reply,
                    },
                );
            }
            Command::Respond {
                channel_id,
                bytes,
                reply,
            } => {
                let result = match self.pending_inbound.remove(&channel_id.0) {
                    None => Err(NetError::UnknownChannel(channel_id)),
                    Some((peer, channel)) => {
                        let len = bytes.len() + codec::FRAME_PREFIX_BYTES;
                        match self
                            .swarm
                            .behaviour_mut()
                            .sync
                            .send_response(channel, Wire::Outgoing(bytes))
                        {
                            Ok(()) => {
                                self.count_out(peer, len, |_| {});
                                Ok(())
                            }
                            Err(_) => Err(NetError::ChannelClosed(channel_id)),
                        }
                    }
                };
                let _ = reply.send(result);
            }
            Command::Announce { bytes, reply } => {
                let len = bytes.len() as u64;
                let topic = self.topic.clone();
                let result = match self.swarm.behaviour_mut().gossipsub.publish(topic, bytes) {
                    Ok(id) => {
                        tracing::debug!(message_id = %id, len, "announcement published");
                        self.totals.gossip_bytes_published += len;
                        Ok(())
                    }
                    Err(e) => Err(NetError::Publish(e)),
                };
                let _ = reply.send(result);
            }
            Command::Validate {
                message_id,
                peer,
                verdict,
            } => {
                let acceptance = match verdict {
                    Validation::Accept => MessageAcceptance::Accept,
                    Validation::Reject => MessageAcceptance::Reject,
                    Validation::Ignore => MessageAcceptance::Ignore,
                };
                let known = self
                    .swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&message_id, &peer, acceptance);
                if !known {
                    tracing::debug!(%message_id, "validated announcement no longer cached");
                }
                if verdict == Validation::Reject {
                    self.penalise(peer, "rejected announcement");
                }
            }
            Command::Dial { address, reply } => {
                let result =
                    if split_peer(&address).is_some_and(|(p, _)| self.banned.contains_key(&p)) {
                        Ok(())
                    } else {
                        self.swarm
                            .dial(address.clone())
                            .map_err(|source| NetError::Dial { address, source })
                    };
                let _ = reply.send(result);
            }
            Command::Disconnect { peer } => {
                if self.swarm.disconnect_peer_id(peer).is_err() {
                    tracing::debug!(%peer, "disconnect: not connected");
                }
            }
            Command::Penalise { peer, reason } => self.penalise(peer, &reason),
            Command::ListenAddrs { reply } => {
                let _ = reply.send(self.swarm.listeners().cloned().collect());
            }
            Command::ConnectedPeers { reply } => {
                let _ = reply.send(self.swarm.connected_peers().copied().collect());
            }
            Command::GossipPeers { reply } => {
                let topic = self.topic.hash();
                let peers = self
                    .swarm
                    .behaviour()
                    .gossipsub
                    .all_peers()
                    .filter(|(_, topics)| topics.contains(&&topic))
                    .map(|(p, _)| *p)
                    .collect();
                let _ = reply.send(peers);
            }
            Command::Stats { reply } => {
                let mut stats = self.totals.clone();
                stats.peers = self.stats.clone();
                let _ = reply.send(stats);
            }
            Command::Shutdown { reply } => {
                // Handled in `run`; never reaches here.
                let _ = reply.send(());
            }
        }
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Sync(event)) => self.on_sync(event),
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(event)) => self.on_gossip(event),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => {
                tracing::debug!(peer = %peer_id, agent = %info.agent_version, "identified");
                if info.protocols.contains(&self.kad_protocol) {
                    for address in info.listen_addrs {
                        self.swarm
                            .behaviour_mut()
                            .kad
                            .add_address(&peer_id, address);
                    }
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Mdns(mdns::Event::Discovered(found))) => {
                for (peer, address) in found {
                    if self.banned.contains_key(&peer) || self.blocked_peers.contains(&peer) {
                        continue;
                    }
                    tracing::debug!(%peer, %address, "discovered by mdns");
                    self.swarm
                        .behaviour_mut()
                        .kad
                        .add_address(&peer, address.clone());
                    if !self.swarm.is_connected(&peer) {
                        let _ = self.swarm.dial(address.with(Protocol::P2p(peer)));
                    }
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Kad(event)) => {
                tracing::trace!(?event, "kademlia");
            }
            SwarmEvent::Behaviour(BehaviourEvent::Ping(event)) => {
                tracing::trace!(?event, "ping");
            }
            SwarmEvent::Behaviour(_) => {}
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(%address, "listening");
                self.emit(NetEvent::ListenAddr { address });
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                endpoint,
                num_established,
                ..
            } => {
                // The block list denies these before establishment; this is a second line.
                if self.banned.contains_key(&peer_id) || self.blocked_peers.contains(&peer_id) {
                    let _ = self.swarm.disconnect_peer_id(peer_id);
                    return;
                }
                if let Some(s) = self.peer_stats(peer_id) {
                    s.connected = true;
                }
                if num_established.get() == 1 {
                    let address = endpoint.get_remote_address().clone();
                    tracing::info!(peer = %peer_id, %address, "peer connected");
                    self.emit(NetEvent::PeerConnected {
                        peer: peer_id,
                        address,
                        inbound: endpoint.is_listener(),
                    });
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                cause,
                ..
            } => {
                if let Some(s) = self.stats.get_mut(&peer_id) {
                    s.connected = false;
                }
                tracing::info!(peer = %peer_id, cause = ?cause, "peer disconnected");
                self.emit(NetEvent::PeerDisconnected { peer: peer_id });
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                tracing::debug!(peer = ?peer_id, %error, "outgoing connection failed");
            }
            SwarmEvent::IncomingConnectionError {
                send_back_addr,
                error,
                ..
            } => {
                tracing::debug!(%send_back_addr, %error, "incoming connection failed");
            }
            SwarmEvent::ListenerError { error, .. } => {
                tracing::warn!(%error, "listener error");
            }
            _ => {}
        }
    }

    fn on_sync(&mut self, event: request_response::Event<Wire<SyncRequest>, Wire<SyncResponse>>) {
        use request_response::{Event, Message};
        match event {
            Event::Message {
                peer,
                message:
                    Message::Request {
                        request_id,
                        request,
                        channel,
                    },
                ..
            } => {
                let (msg, wire_bytes) = match request {
                    Wire::Incoming { msg, wire_bytes } => (msg, wire_bytes),
                    Wire::Invalid { error, wire_bytes } => {
                        // Dropping the channel closes the stream without an answer.
                        self.count_in(peer, wire_bytes, |s| s.requests_in += 1);
                        self.penalise(peer, &format!("bad request frame: {error}"));
                        return;
                    }
                    Wire::Outgoing(_) => return,
                };
                self.count_in(peer, wire_bytes, |s| s.requests_in += 1);
                tracing::debug!(%peer, request = msg.kind_name(), %request_id, "sync request received");
                if self.pending_inbound.len() >= self.config.max_pending_inbound {
                    self.refuse_busy(peer, channel);
                    return;
                }
                let channel_id = ChannelId(request_id);
                if self.emit(NetEvent::InboundRequest {
                    peer,
                    request: msg,
                    channel_id,
                }) {
                    self.pending_inbound.insert(request_id, (peer, channel));
                } else {
                    self.refuse_busy(peer, channel);
                }
            }
            Event::Message {
                peer,
                message:
                    Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                let Some(pending) = self.pending_outbound.remove(&request_id) else {
                    return;
                };
                let (msg, wire_bytes) = match response {
                    Wire::Incoming { msg, wire_bytes } => (msg, wire_bytes),
                    Wire::Invalid { error, wire_bytes } => {
                        self.count_in(peer, wire_bytes, |_| {});
                        self.penalise(peer, &format!("bad response frame: {error}"));
                        let _ = pending.reply.send(Err(RequestError::Malformed(error)));
                        return;
                    }
                    Wire::Outgoing(_) => {
                        let _ = pending.reply.send(Err(RequestError::Io(io::Error::other(
                            "codec returned an outgoing frame",
                        ))));
                        return;
                    }
                };
                self.count_in(peer, wire_bytes, |_| {});
                let result = if pending.expect.accepts(&msg) {
                    tracing::debug!(%peer, response = msg.kind_name(), %request_id, "sync response received");
                    Ok(msg)
                } else {
                    self.penalise(peer, "response does not answer the request");
                    Err(RequestError::UnexpectedResponse {
                        request: pending.expect.name(),
                        got: msg.kind_name(),
                    })
                };
                let _ = pending.reply.send(result);
            }
            Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                let Some(pending) = self.pending_outbound.remove(&request_id) else {
                    return;
                };
                debug_assert_eq!(pending.peer, peer);
                tracing::debug!(%peer, %request_id, %error, "sync request failed");
                let error = match error {
                    request_response::OutboundFailure::DialFailure => RequestError::DialFailure,
                    request_response::OutboundFailure::Timeout => RequestError::Timeout,
                    request_response::OutboundFailure::ConnectionClosed => {
                        RequestError::ConnectionClosed
                    }
                    request_response::OutboundFailure::UnsupportedProtocols => {
                        RequestError::UnsupportedProtocol
                    }
                    request_response::OutboundFailure::Io(e) => match frame_error(&e) {
                        Some(fault) if fault.is_peer_fault() => {
                            let fault = fault.clone();
                            self.penalise(peer, &format!("bad response frame: {fault}"));
                            RequestError::Malformed(fault)
                        }
                        _ => RequestError::Io(e),
                    },
                };
                let _ = pending.reply.send(Err(error));
            }
            Event::InboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                self.pending_inbound.remove(&request_id);
                match &error {
                    request_response::InboundFailure::Io(e) => match frame_error(e) {
                        Some(fault) if fault.is_peer_fault() => {
                            let reason = format!("bad request frame: {fault}");
                            self.penalise(peer, &reason);
                        }
                        _ => {
                            tracing::debug!(%peer, %request_id, %error, "inbound sync stream failed")
                        }
                    },
                    _ => tracing::debug!(%peer, %request_id, %error, "inbound sync request failed"),
                }
            }
            Event::ResponseSent {
                peer, request_id, ..
            } => {
                tracing::trace!(%peer, %request_id, "sync response sent");
            }
        }
    }

    fn refuse_busy(
        &mut self,
        peer: PeerId,
        channel: request_response::ResponseChannel<Wire<SyncResponse>>,
    ) {
        tracing::warn!(%peer, "application behind; refusing request as busy");
        let busy = SyncResponse::Refused {
            reason: RefuseReason::Busy,
        };
        if let Ok(bytes) = busy.encode() {
            let len = bytes.len() + codec::FRAME_PREFIX_BYTES;
            if self
                .swarm
                .behaviour_mut()
                .sync
                .send_response(channel, Wire::Outgoing(bytes))
                .is_ok()
            {
                self.count_out(peer, len, |_| {});
            }
        }
    }

    fn on_gossip(&mut self, event: gossipsub::Event) {
        match event {
            gossipsub::Event::Message {
                propagation_source: peer,
                message_id,
                message,
            } => {
                self.count_in(peer, message.data.len(), |s| s.announcements_in += 1);
                if message.topic != self.topic.hash() {
                    self.report(&message_id, &peer, MessageAcceptance::Ignore);
                    return;
                }
                match Announce::decode(&message.data) {
                    Err(e) => {
                        tracing::debug!(%peer, error = %e, "malformed announcement");
                        self.report(&message_id, &peer, MessageAcceptance::Reject);
                        self.penalise(peer, "malformed announcement");
                    }
                    Ok(msg) => {
                        let event = NetEvent::Announcement {
                            peer,
                            source: message.source,
                            msg,
                            message_id: message_id.clone(),
                        };
                        if !self.emit(event) {
                            self.report(&message_id, &peer, MessageAcceptance::Ignore);
                        }
                    }
                }
            }
            gossipsub::Event::Subscribed { peer_id, topic } => {
                tracing::debug!(peer = %peer_id, %topic, "peer subscribed");
            }
            gossipsub::Event::GossipsubNotSupported { peer_id } => {
                tracing::debug!(peer = %peer_id, "peer does not speak gossipsub");
            }
            gossipsub::Event::SlowPeer { peer_id, .. } => {
                tracing::debug!(peer = %peer_id, "slow gossip peer");
            }
            _ => {}
        }
    }

    fn report(&mut self, id: &MessageId, peer: &PeerId, acceptance: MessageAcceptance) {
        self.swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(id, peer, acceptance);
    }
}
