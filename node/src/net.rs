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
//! [`RefuseReason::Busy`] and announcements ignored, rather than buffered without end; one peer may have at most
//! [`MAX_PENDING_INBOUND_PER_PEER`] requests waiting, over at most 8 streams per connection), and a per-peer penalty
//! score: a malformed frame, a malformed or rejected announcement, or [`Network::penalise`] each add one point,
//! points decay (half-life [`penalty::PENALTY_HALF_LIFE`]), and a peer whose score reaches
//! [`NetConfig::penalty_threshold`] is disconnected and refused until its ban expires ([`penalty::BAN_DURATION`],
//! doubling for repeat offenders up to [`penalty::MAX_BAN_DURATION`]). See [`penalty`] for the numbers and why.
//!
//! A node that has nothing to serve from yet (fetching the genesis, loading its store) builds its network with
//! [`NetConfig::serve_from_start`] off: the task answers every inbound request at once with
//! [`SyncResponse::NoGenesis`] until [`Network::serve`], so a peer asking it (another newcomer looking for the
//! genesis) moves on at once instead of waiting for its request to time out.
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
//!
//! Where things are: [`NetConfig`] and the fixed limits in `config`; the composed [`Behaviour`] in `behaviour`;
//! the [`Network`] handle in `handle`, which sends the swarm task the commands of `command`; the task itself, its
//! event loop and what it does with peers' frames and conduct, in `swarm`; what it reports in `event`, `stats`
//! and `error`. The wire format is [`wire`] (messages) and [`codec`] (framing); the penalty rules are [`penalty`].

mod behaviour;
pub mod codec;
mod command;
mod config;
mod error;
mod event;
mod handle;
pub mod penalty;
mod stats;
mod swarm;
pub mod wire;

pub use behaviour::{
    heads_topic, kad_protocol, Behaviour, BehaviourEvent, IDENTIFY_PROTOCOL_VERSION,
};
pub use codec::{frame_error, FrameError, SyncCodec, Wire};
pub use config::{
    NetConfig, ServeBudget, MAX_BANNED_PEERS, MAX_GOSSIP_TRANSMIT_BYTES,
    MAX_PENDING_INBOUND_PER_PEER, MAX_TRACKED_PEERS,
};
pub use error::{NetError, RequestError};
pub use event::{ChannelId, NetEvent, Validation};
pub use handle::{Network, PendingResponse};
pub use libp2p::gossipsub::MessageId;
pub use libp2p::{Multiaddr, PeerId};
pub use stats::{NetStats, PeerStats};
pub use wire::{
    Announce, Batch, EncodeError, RefuseReason, SyncRequest, SyncResponse, MAX_ANNOUNCE_BYTES,
    MAX_ANNOUNCE_DOCS, MAX_PAGE_BYTES, MAX_PUSH_OPS, MAX_REASON_BYTES, MAX_REQUEST_FRAME_BYTES,
    MAX_REQUEST_IDS, MAX_RESPONSE_FRAME_BYTES, MAX_RESPONSE_HEADS, MAX_RESPONSE_ITEMS,
    SYNC_PROTOCOL,
};
