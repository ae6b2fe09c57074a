//! The [`Network`] handle the application holds: every call is a command to the swarm task.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use libp2p::gossipsub::MessageId;
use libp2p::{Multiaddr, PeerId};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::command::{Command, Expect};
use super::config::NetConfig;
use super::error::{NetError, RequestError};
use super::event::{ChannelId, NetEvent, Validation};
use super::stats::NetStats;
use super::swarm;
use super::wire::{Announce, SyncRequest, SyncResponse};

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
    bootstrap_peers: Arc<[PeerId]>,
    task: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl Network {
    /// Builds the swarm, starts listening and dialling, and spawns the task that owns the swarm on the current
    /// tokio runtime. Returns the handle and the receiver of [`NetEvent`]s (bounded by
    /// [`NetConfig::event_capacity`]; the application must keep reading it).
    pub fn new(config: NetConfig) -> Result<(Network, mpsc::Receiver<NetEvent>), NetError> {
        let spawned = swarm::spawn(config)?;
        Ok((
            Network {
                commands: spawned.commands,
                local_peer_id: spawned.local_peer_id,
                bootstrap_peers: spawned.bootstrap_peers.into(),
                task: Arc::new(Mutex::new(Some(spawned.task))),
            },
            spawned.events,
        ))
    }

    /// This node's peer id.
    pub fn local_peer_id(&self) -> PeerId {
        self.local_peer_id
    }

    /// The configured bootstrap peers (without this node and blocked peers), in configuration order.
    pub fn bootstrap_peers(&self) -> &[PeerId] {
        &self.bootstrap_peers
    }

    /// Hands inbound requests to the application from now on; until then (with
    /// [`NetConfig::serve_from_start`] false) each is answered [`SyncResponse::NoGenesis`] at once.
    pub async fn serve(&self) -> Result<(), NetError> {
        self.command(Command::Serve).await
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
