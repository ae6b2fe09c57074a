//! The sync protocol's messages and the gossip announcement, in the project's canonical CBOR.
//!
//! Every message is `map{0: kind, 1: payload}` where the payload is itself a struct-like map. Decoding is strict
//! (the rules of [`wsis_protocol::cbor`]: no duplicate or unknown keys, minimal lengths, no trailing bytes) and
//! every list has a count cap that is checked before anything is allocated; the total is bounded by the frame
//! limit, which is checked first. Encoding checks the same caps, so this node never sends what a peer would refuse.
//!
//! This file holds the messages and their limits; their encoding is in `encoding` (the kind numbers, the strict
//! decoders), the response filler in [`Batch`].

mod batch;
mod encoding;
#[cfg(test)]
pub(crate) mod tests;

use wsis_protocol::ids::{DocId, EnvelopeId, FederationId, OpId};

pub use batch::Batch;

/// The sync protocol's name, negotiated on every stream.
pub const SYNC_PROTOCOL: &str = "/wsis/sync/1";
/// The largest request frame (payload after the length prefix).
pub const MAX_REQUEST_FRAME_BYTES: usize = 64 * 1024;
/// The largest response frame (payload after the length prefix).
pub const MAX_RESPONSE_FRAME_BYTES: usize = 16 * 1024 * 1024;
/// A responder's page: the ops or envelopes of one `Ops` or `Envelopes` answer take at most this many bytes,
/// except one item larger than this, which goes alone (an envelope may be up to
/// [`MAX_ENVELOPE_BYTES`](wsis_protocol::limits::MAX_ENVELOPE_BYTES)). A requester follows `more` with its new
/// heads. Not a decoding limit: a peer's larger answer (up to the frame limit) is still read.
pub const MAX_PAGE_BYTES: usize = 1024 * 1024;
/// The largest encoded gossip announcement.
pub const MAX_ANNOUNCE_BYTES: usize = 48 * 1024;
/// Ids in one request list (`GovSince.heads`, `GetOps.ids`, `GetEnvelopes.have`): 1024 × 34 bytes fits a frame.
pub const MAX_REQUEST_IDS: usize = 1024;
/// Ops in one `Push` (an unknown peer pushes its inception and binding; a few more are tolerated).
pub const MAX_PUSH_OPS: usize = 16;
/// Ops or envelopes in one response; the frame limit bounds their total size.
pub const MAX_RESPONSE_ITEMS: usize = 4096;
/// Heads in one `Heads` response.
pub const MAX_RESPONSE_HEADS: usize = 1024;
/// Documents named in one announcement.
pub const MAX_ANNOUNCE_DOCS: usize = 256;
/// Free text in a refusal.
pub const MAX_REASON_BYTES: usize = 256;

/// Why a message could not be encoded: it breaks a cap a peer would enforce.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    #[error("{what} has {count} items, the limit is {max}")]
    TooMany {
        what: &'static str,
        count: usize,
        max: usize,
    },
    #[error("{what} is {len} bytes, the limit is {max}")]
    TooLarge {
        what: &'static str,
        len: usize,
        max: usize,
    },
}

/// A request on `/wsis/sync/1`.
///
/// Peers bound to admitted organisations may send any request; an unknown peer may only send the ones for which
/// [`SyncRequest::allowed_for_unknown_peer`] is true. Enforcing that is the application's job (it knows who is
/// admitted); the network layer passes the authenticated peer id with every request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SyncRequest {
    /// "Which genesis do you follow?" Answered with [`SyncResponse::Genesis`]; allowed for unknown peers.
    Hello { federation: FederationId },
    /// "These are my governance heads; send what I lack." Answered with [`SyncResponse::Ops`].
    GovSince { heads: Vec<OpId> },
    /// Fetch governance ops by id (missing parents). Answered with [`SyncResponse::Ops`].
    GetOps { ids: Vec<OpId> },
    /// A document's current envelope heads. Answered with [`SyncResponse::Heads`].
    DocHeads { doc: DocId },
    /// Envelopes of a document that are not ancestors of `have`. Answered with [`SyncResponse::Envelopes`].
    GetEnvelopes { doc: DocId, have: Vec<EnvelopeId> },
    /// Signed ops offered by the requester. An unknown peer may push only its own inception and binding.
    /// Answered with [`SyncResponse::Ack`].
    Push { ops: Vec<Vec<u8>> },
    /// "A digest of every document's heads, in document id order, starting after `after`." Answered with
    /// [`SyncResponse::DocDigests`]. Lets a sync skip the documents both sides already agree on: one round trip
    /// instead of one per document.
    DocDigests { after: Option<DocId> },
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefuseReason {
    /// Free text (at most [`MAX_REASON_BYTES`]).
    Other(String),
    /// The peer is not bound to an admitted organisation, and the request needs that.
    NotAdmitted,
    /// The request names another federation.
    WrongFederation,
    /// The named item or document is not known here.
    NotFound,
    /// The node is overloaded; try later or elsewhere.
    Busy,
    /// The request was well-formed but made no sense (e.g. a push of ops the peer may not push).
    Invalid,
}

/// A response on `/wsis/sync/1`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SyncResponse {
    /// The genesis op's signed bytes.
    Genesis(Vec<u8>),
    /// Signed governance ops; `more` says the responder had more than fit in one frame.
    Ops { ops: Vec<Vec<u8>>, more: bool },
    /// Signed change envelopes; `more` says the responder had more than fit in one frame.
    Envelopes { envelopes: Vec<Vec<u8>>, more: bool },
    /// A document's envelope heads.
    Heads { doc: DocId, heads: Vec<EnvelopeId> },
    /// The request was refused.
    Refused { reason: RefuseReason },
    /// A push was received; `accepted` ops were new and passed the checks.
    Ack { accepted: u32 },
    /// Documents in ascending id order with a digest of their envelope heads (at most [`MAX_RESPONSE_ITEMS`]);
    /// `more` says the responder has more documents after the last one.
    DocDigests {
        digests: Vec<(DocId, [u8; 32])>,
        more: bool,
    },
    /// "I hold no replica to answer from yet": the responder is a newcomer still fetching the genesis, or a node
    /// whose application is still starting. Sent at once, so a newcomer asking around for the genesis moves on
    /// instead of waiting for the request to time out. A possible answer to every request, like a refusal.
    NoGenesis,
}

/// A gossip announcement: "these are my heads". Receivers pull what they lack over the sync protocol.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Announce {
    /// Governance DAG heads (at most [`MAX_HEADS`](wsis_protocol::limits::MAX_HEADS)).
    pub gov_heads: Vec<OpId>,
    /// Documents with their envelope heads (at most [`MAX_ANNOUNCE_DOCS`], each with at most
    /// [`MAX_HEADS`](wsis_protocol::limits::MAX_HEADS)).
    pub docs: Vec<(DocId, Vec<EnvelopeId>)>,
}

impl SyncRequest {
    /// Whether a peer that is not bound to an admitted organisation may send this request at all: it may fetch the
    /// genesis and push (its own inception and binding — the application checks which ops).
    pub fn allowed_for_unknown_peer(&self) -> bool {
        matches!(self, SyncRequest::Hello { .. } | SyncRequest::Push { .. })
    }

    /// Whether `response` is a possible answer to this request (a refusal and "no genesis" always are). Anything else is a protocol
    /// violation by the responder.
    pub fn accepts(&self, response: &SyncResponse) -> bool {
        match (self, response) {
            (_, SyncResponse::Refused { .. } | SyncResponse::NoGenesis) => true,
            (SyncRequest::Hello { .. }, SyncResponse::Genesis(_)) => true,
            (
                SyncRequest::GovSince { .. } | SyncRequest::GetOps { .. },
                SyncResponse::Ops { .. },
            ) => true,
            (SyncRequest::DocHeads { doc }, SyncResponse::Heads { doc: d, .. }) => doc == d,
            (SyncRequest::GetEnvelopes { .. }, SyncResponse::Envelopes { .. }) => true,
            (SyncRequest::Push { .. }, SyncResponse::Ack { .. }) => true,
            (SyncRequest::DocDigests { .. }, SyncResponse::DocDigests { .. }) => true,
            _ => false,
        }
    }

    /// A short name for logs.
    pub fn kind_name(&self) -> &'static str {
        match self {
            SyncRequest::Hello { .. } => "hello",
            SyncRequest::GovSince { .. } => "gov-since",
            SyncRequest::GetOps { .. } => "get-ops",
            SyncRequest::DocHeads { .. } => "doc-heads",
            SyncRequest::GetEnvelopes { .. } => "get-envelopes",
            SyncRequest::Push { .. } => "push",
            SyncRequest::DocDigests { .. } => "doc-digests",
        }
    }
}

impl std::fmt::Display for RefuseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RefuseReason::Other(text) => write!(f, "{text}"),
            RefuseReason::NotAdmitted => f.write_str("not admitted"),
            RefuseReason::WrongFederation => f.write_str("wrong federation"),
            RefuseReason::NotFound => f.write_str("not found"),
            RefuseReason::Busy => f.write_str("busy"),
            RefuseReason::Invalid => f.write_str("invalid request"),
        }
    }
}

impl SyncResponse {
    /// A short name for logs.
    pub fn kind_name(&self) -> &'static str {
        match self {
            SyncResponse::Genesis(_) => "genesis",
            SyncResponse::Ops { .. } => "ops",
            SyncResponse::Envelopes { .. } => "envelopes",
            SyncResponse::Heads { .. } => "heads",
            SyncResponse::Refused { .. } => "refused",
            SyncResponse::Ack { .. } => "ack",
            SyncResponse::DocDigests { .. } => "doc-digests",
            SyncResponse::NoGenesis => "no-genesis",
        }
    }
}
