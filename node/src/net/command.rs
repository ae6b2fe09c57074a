//! What the [`Network`](super::Network) handle asks of the swarm task ([`Command`]), and what a response to
//! each request must be ([`Expect`]).

use libp2p::gossipsub::MessageId;
use libp2p::{Multiaddr, PeerId};
use tokio::sync::oneshot;
use wsis_protocol::ids::DocId;

use super::error::{NetError, RequestError};
use super::event::{ChannelId, Validation};
use super::stats::NetStats;
use super::wire::{SyncRequest, SyncResponse};

/// One request from a [`Network`](super::Network) handle to the task; `reply` carries the answer back.
#[derive(Debug)]
pub(super) enum Command {
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
    /// From now on, inbound requests go to the application (see [`NetConfig::serve_from_start`](super::NetConfig::serve_from_start)).
    Serve,
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

/// What kind of response a request may get (besides a refusal); kept instead of the request itself.
#[derive(Debug, Clone, Copy)]
pub(super) enum Expect {
    Genesis,
    Ops,
    Envelopes,
    Heads(DocId),
    Ack,
    DocDigests,
}

impl Expect {
    pub(super) fn of(request: &SyncRequest) -> Self {
        match request {
            SyncRequest::Hello { .. } => Expect::Genesis,
            SyncRequest::GovSince { .. } | SyncRequest::GetOps { .. } => Expect::Ops,
            SyncRequest::DocHeads { doc } => Expect::Heads(*doc),
            SyncRequest::GetEnvelopes { .. } => Expect::Envelopes,
            SyncRequest::Push { .. } => Expect::Ack,
            SyncRequest::DocDigests { .. } => Expect::DocDigests,
        }
    }

    pub(super) fn accepts(self, response: &SyncResponse) -> bool {
        match (self, response) {
            (_, SyncResponse::Refused { .. } | SyncResponse::NoGenesis) => true,
            (Expect::Genesis, SyncResponse::Genesis(_)) => true,
            (Expect::Ops, SyncResponse::Ops { .. }) => true,
            (Expect::Envelopes, SyncResponse::Envelopes { .. }) => true,
            (Expect::Heads(doc), SyncResponse::Heads { doc: d, .. }) => doc == *d,
            (Expect::Ack, SyncResponse::Ack { .. }) => true,
            (Expect::DocDigests, SyncResponse::DocDigests { .. }) => true,
            _ => false,
        }
    }

    pub(super) fn name(self) -> &'static str {
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
