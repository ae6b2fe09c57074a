//! The network layer's errors: of setup and commands ([`NetError`]) and of one outbound request ([`RequestError`]).

use std::io;

use libp2p::{gossipsub, identity, Multiaddr};

use super::codec::FrameError;
use super::event::ChannelId;
use super::wire::{EncodeError, SYNC_PROTOCOL};

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
    /// The peer answered [`SyncResponse::NoGenesis`](super::SyncResponse::NoGenesis): it holds no replica to
    /// answer from yet (it is fetching the genesis, or still starting). Not a fault; ask again later.
    #[error("the peer has no replica to answer from yet")]
    NoReplica,
    #[error("a {got} response does not answer a {request} request")]
    UnexpectedResponse {
        request: &'static str,
        got: &'static str,
    },
}
