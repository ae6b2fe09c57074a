//! What the network tells the application ([`NetEvent`]) and what the application answers an announcement with
//! ([`Validation`]).

use libp2p::gossipsub::MessageId;
use libp2p::request_response::InboundRequestId;
use libp2p::{Multiaddr, PeerId};

use super::wire::{Announce, SyncRequest};

/// Names an inbound request until the application answers it with
/// [`Network::respond`](super::Network::respond).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChannelId(pub(super) InboundRequestId);

impl std::fmt::Display for ChannelId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// What the application is told. Every variant is about one peer, named by its authenticated id.
#[derive(Debug)]
#[non_exhaustive]
pub enum NetEvent {
    /// A decoded sync request; answer it with [`Network::respond`](super::Network::respond) (within
    /// `request_timeout_ms`).
    InboundRequest {
        peer: PeerId,
        request: SyncRequest,
        channel_id: ChannelId,
    },
    /// A decoded announcement; answer with
    /// [`Network::validate_announcement`](super::Network::validate_announcement) so gossipsub forwards (accept) or
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
