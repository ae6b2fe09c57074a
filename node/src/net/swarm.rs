//! The swarm task: one tokio task owns the libp2p swarm and runs its event loop, taking commands from the
//! [`Network`](super::Network) handles and handing events to the application.
//!
//! [`spawn`] builds the swarm and starts the task; this file holds the loop, the commands and the swarm's own
//! events. What peers send (sync frames, gossip) is handled in [`inbound`], their conduct (stats, penalties, bans)
//! in [`conduct`].

mod conduct;
mod inbound;

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::core::transport::ListenerId;
use libp2p::gossipsub::{IdentTopic, MessageAcceptance};
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, InboundRequestId, OutboundRequestId};
use libp2p::swarm::SwarmEvent;
use libp2p::{
    identify, identity, mdns, noise, tcp, yamux, Multiaddr, PeerId, StreamProtocol, Swarm,
    SwarmBuilder,
};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::behaviour::{build_behaviour, heads_topic, kad_protocol, Behaviour, BehaviourEvent};
use super::codec::{self, Wire};
use super::command::{Command, Expect};
use super::config::{split_peer, NetConfig, SHUTDOWN_GRACE};
use super::error::{NetError, RequestError};
use super::event::{NetEvent, Validation};
use super::penalty;
use super::stats::{NetStats, PeerStats};
use super::wire::SyncResponse;

/// What [`spawn`] hands the [`Network`](super::Network) handle: the two channels' ends, the peer id, the task.
pub(super) struct Spawned {
    pub(super) commands: mpsc::Sender<Command>,
    pub(super) events: mpsc::Receiver<NetEvent>,
    pub(super) local_peer_id: PeerId,
    /// The bootstrap peers' ids (without this node and blocked peers), in configuration order.
    pub(super) bootstrap_peers: Vec<PeerId>,
    pub(super) task: JoinHandle<()>,
}

/// Builds the swarm, starts listening and dialling, and spawns the task that owns it on the current tokio runtime.
pub(super) fn spawn(config: NetConfig) -> Result<Spawned, NetError> {
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
        let (peer, base) =
            split_peer(address).ok_or_else(|| NetError::BootstrapWithoutPeerId(address.clone()))?;
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
    let bootstrap_peers = bootstrap.iter().map(|(p, _, _)| *p).collect();
    let task = Task {
        serving: config.serve_from_start,
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
    Ok(Spawned {
        commands: command_tx,
        events: event_rx,
        local_peer_id,
        bootstrap_peers,
        task: runtime.spawn(task.run()),
    })
}

struct PendingOutbound {
    peer: PeerId,
    expect: Expect,
    reply: oneshot::Sender<Result<SyncResponse, RequestError>>,
}

struct Task {
    swarm: Swarm<Behaviour>,
    /// Whether inbound requests go to the application; until then each is answered "no genesis" at once.
    serving: bool,
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

    /// Sends an encoded response on its channel and counts it; false if the requester is gone.
    fn send_response(
        &mut self,
        peer: PeerId,
        channel: request_response::ResponseChannel<Wire<SyncResponse>>,
        bytes: Vec<u8>,
    ) -> bool {
        let len = bytes.len() + codec::FRAME_PREFIX_BYTES;
        let sent = self
            .swarm
            .behaviour_mut()
            .sync
            .send_response(channel, Wire::Outgoing(bytes))
            .is_ok();
        if sent {
            self.count_out(peer, len, |_| {});
        }
        sent
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
                        if self.send_response(peer, channel, bytes) {
                            Ok(())
                        } else {
                            Err(NetError::ChannelClosed(channel_id))
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
            Command::Serve => self.serving = true,
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
}
