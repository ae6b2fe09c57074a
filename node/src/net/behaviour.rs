//! The composed libp2p behaviour ([`Behaviour`]): which protocols a node speaks and how each is configured.

use std::time::Duration;

use libp2p::gossipsub::{self, IdentTopic, MessageAuthenticity, ValidationMode};
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{
    allow_block_list, connection_limits, identify, identity, kad, mdns, ping, StreamProtocol,
};
use wsis_protocol::ids::FederationId;

use super::codec::SyncCodec;
use super::config::{
    NetConfig, MAX_CONNECTIONS_PER_PEER, MAX_GOSSIP_TRANSMIT_BYTES, MAX_STREAMS_PER_CONNECTION,
};
use super::error::NetError;

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

pub(super) fn build_behaviour(
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
