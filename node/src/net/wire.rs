//! The sync protocol's messages and the gossip announcement, in the project's canonical CBOR.
//!
//! Every message is `map{0: kind, 1: payload}` where the payload is itself a struct-like map. Decoding is strict
//! (the rules of [`wsis_protocol::cbor`]: no duplicate or unknown keys, minimal lengths, no trailing bytes) and
//! every list has a count cap that is checked before anything is allocated; the total is bounded by the frame
//! limit, which is checked first. Encoding checks the same caps, so this node never sends what a peer would refuse.

use wsis_protocol::cbor::{DecodeError, Decoder, Encoder};
use wsis_protocol::ids::{DocId, EnvelopeId, FederationId, OpId};
use wsis_protocol::limits::{MAX_ENVELOPE_BYTES, MAX_HEADS, MAX_OP_BYTES};

/// The sync protocol's name, negotiated on every stream.
pub const SYNC_PROTOCOL: &str = "/wsis/sync/1";
/// The largest request frame (payload after the length prefix).
pub const MAX_REQUEST_FRAME_BYTES: usize = 64 * 1024;
/// The largest response frame (payload after the length prefix).
pub const MAX_RESPONSE_FRAME_BYTES: usize = 16 * 1024 * 1024;
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
}

/// A gossip announcement: "these are my heads". Receivers pull what they lack over the sync protocol.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Announce {
    /// Governance DAG heads (at most [`MAX_HEADS`]).
    pub gov_heads: Vec<OpId>,
    /// Documents with their envelope heads (at most [`MAX_ANNOUNCE_DOCS`], each with at most [`MAX_HEADS`]).
    pub docs: Vec<(DocId, Vec<EnvelopeId>)>,
}

// Kinds on the wire. Never renumber: changing one is a protocol change.
const REQ_HELLO: u64 = 0;
const REQ_GOV_SINCE: u64 = 1;
const REQ_GET_OPS: u64 = 2;
const REQ_DOC_HEADS: u64 = 3;
const REQ_GET_ENVELOPES: u64 = 4;
const REQ_PUSH: u64 = 5;
const REQ_DOC_DIGESTS: u64 = 6;

const RESP_GENESIS: u64 = 0;
const RESP_OPS: u64 = 1;
const RESP_ENVELOPES: u64 = 2;
const RESP_HEADS: u64 = 3;
const RESP_REFUSED: u64 = 4;
const RESP_ACK: u64 = 5;
const RESP_DOC_DIGESTS: u64 = 6;

const GOSSIP_ANNOUNCE: u64 = 0;

const REASON_OTHER: u64 = 0;
const REASON_NOT_ADMITTED: u64 = 1;
const REASON_WRONG_FEDERATION: u64 = 2;
const REASON_NOT_FOUND: u64 = 3;
const REASON_BUSY: u64 = 4;
const REASON_INVALID: u64 = 5;

fn check_count(what: &'static str, count: usize, max: usize) -> Result<(), EncodeError> {
    if count > max {
        Err(EncodeError::TooMany { what, count, max })
    } else {
        Ok(())
    }
}

fn check_len(what: &'static str, len: usize, max: usize) -> Result<(), EncodeError> {
    if len > max {
        Err(EncodeError::TooLarge { what, len, max })
    } else {
        Ok(())
    }
}

fn check_input(what: &'static str, bytes: &[u8], max: usize) -> Result<(), DecodeError> {
    if bytes.len() > max {
        Err(DecodeError::TooLong {
            what,
            len: bytes.len() as u64,
            max: max as u64,
        })
    } else {
        Ok(())
    }
}

fn ids<const N: usize>(e: &mut Encoder, ids: impl ExactSizeIterator<Item = [u8; N]>) {
    e.array(ids.len());
    for id in ids {
        e.bytes(&id);
    }
}

fn blobs(e: &mut Encoder, items: &[Vec<u8>]) {
    e.array(items.len());
    for item in items {
        e.bytes(item);
    }
}

/// Opens `map{0: kind, 1: payload}` and returns the kind; the caller decodes the payload and calls [`close`].
fn open(d: &mut Decoder<'_>) -> Result<(wsis_protocol::cbor::MapDecoder, u64), DecodeError> {
    let mut m = d.map(2)?;
    m.required(d, 0)?;
    let kind = d.u64()?;
    m.required(d, 1)?;
    Ok((m, kind))
}

fn close(m: wsis_protocol::cbor::MapDecoder, d: &Decoder<'_>) -> Result<(), DecodeError> {
    m.end()?;
    d.finish()
}

fn read_id(d: &mut Decoder<'_>, what: &'static str) -> Result<[u8; 32], DecodeError> {
    d.fixed::<32>(what)
}

fn read_blobs(
    d: &mut Decoder<'_>,
    what: &'static str,
    max_count: usize,
    max_len: usize,
) -> Result<Vec<Vec<u8>>, DecodeError> {
    d.array_of(what, max_count, |d| Ok(d.bytes(what, max_len)?.to_vec()))
}

/// Reads a payload map whose single field 0 is read by `f`.
fn single<T>(
    d: &mut Decoder<'_>,
    f: impl FnOnce(&mut Decoder<'_>) -> Result<T, DecodeError>,
) -> Result<T, DecodeError> {
    let mut m = d.map(1)?;
    m.required(d, 0)?;
    let v = f(d)?;
    m.end()?;
    Ok(v)
}

/// Reads a payload map with fields 0 and 1.
fn pair<A, B>(
    d: &mut Decoder<'_>,
    a: impl FnOnce(&mut Decoder<'_>) -> Result<A, DecodeError>,
    b: impl FnOnce(&mut Decoder<'_>) -> Result<B, DecodeError>,
) -> Result<(A, B), DecodeError> {
    let mut m = d.map(2)?;
    m.required(d, 0)?;
    let va = a(d)?;
    m.required(d, 1)?;
    let vb = b(d)?;
    m.end()?;
    Ok((va, vb))
}

impl SyncRequest {
    /// The canonical bytes, checked against every cap and the request frame limit.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut e = Encoder::new();
        e.map(2).key(0);
        match self {
            SyncRequest::Hello { federation } => {
                e.u64(REQ_HELLO).key(1).map(1).key(0).bytes(&federation.0);
            }
            SyncRequest::GovSince { heads } => {
                check_count("heads", heads.len(), MAX_REQUEST_IDS)?;
                e.u64(REQ_GOV_SINCE).key(1).map(1).key(0);
                ids(&mut e, heads.iter().map(|h| h.0));
            }
            SyncRequest::GetOps { ids: list } => {
                check_count("op ids", list.len(), MAX_REQUEST_IDS)?;
                e.u64(REQ_GET_OPS).key(1).map(1).key(0);
                ids(&mut e, list.iter().map(|h| h.0));
            }
            SyncRequest::DocHeads { doc } => {
                e.u64(REQ_DOC_HEADS).key(1).map(1).key(0).bytes(&doc.0);
            }
            SyncRequest::GetEnvelopes { doc, have } => {
                check_count("envelope ids", have.len(), MAX_REQUEST_IDS)?;
                e.u64(REQ_GET_ENVELOPES)
                    .key(1)
                    .map(2)
                    .key(0)
                    .bytes(&doc.0)
                    .key(1);
                ids(&mut e, have.iter().map(|h| h.0));
            }
            SyncRequest::Push { ops } => {
                check_count("pushed ops", ops.len(), MAX_PUSH_OPS)?;
                for op in ops {
                    check_len("pushed op", op.len(), MAX_OP_BYTES)?;
                }
                e.u64(REQ_PUSH).key(1).map(1).key(0);
                blobs(&mut e, ops);
            }
            SyncRequest::DocDigests { after } => {
                e.u64(REQ_DOC_DIGESTS).key(1).map(1).key(0);
                ids(&mut e, after.iter().map(|d| d.0));
            }
        }
        let bytes = e.into_bytes();
        check_len("request", bytes.len(), MAX_REQUEST_FRAME_BYTES)?;
        Ok(bytes)
    }

    /// Strictly decodes one request; anything malformed, oversized or trailing is an error.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        check_input("request", bytes, MAX_REQUEST_FRAME_BYTES)?;
        let mut d = Decoder::new(bytes);
        let (m, kind) = open(&mut d)?;
        let d = &mut d;
        let req = match kind {
            REQ_HELLO => SyncRequest::Hello {
                federation: FederationId(single(d, |d| read_id(d, "federation id"))?),
            },
            REQ_GOV_SINCE => SyncRequest::GovSince {
                heads: single(d, |d| {
                    d.array_of("heads", MAX_REQUEST_IDS, |d| Ok(OpId(read_id(d, "op id")?)))
                })?,
            },
            REQ_GET_OPS => SyncRequest::GetOps {
                ids: single(d, |d| {
                    d.array_of("op ids", MAX_REQUEST_IDS, |d| {
                        Ok(OpId(read_id(d, "op id")?))
                    })
                })?,
            },
            REQ_DOC_HEADS => SyncRequest::DocHeads {
                doc: DocId(single(d, |d| read_id(d, "doc id"))?),
            },
            REQ_GET_ENVELOPES => {
                let (doc, have) = pair(
                    d,
                    |d| read_id(d, "doc id"),
                    |d| {
                        d.array_of("envelope ids", MAX_REQUEST_IDS, |d| {
                            Ok(EnvelopeId(read_id(d, "envelope id")?))
                        })
                    },
                )?;
                SyncRequest::GetEnvelopes {
                    doc: DocId(doc),
                    have,
                }
            }
            REQ_PUSH => SyncRequest::Push {
                ops: single(d, |d| {
                    read_blobs(d, "pushed ops", MAX_PUSH_OPS, MAX_OP_BYTES)
                })?,
            },
            REQ_DOC_DIGESTS => SyncRequest::DocDigests {
                after: single(d, |d| {
                    d.array_of("after", 1, |d| Ok(DocId(read_id(d, "doc id")?)))
                })?
                .pop(),
            },
            value => {
                return Err(DecodeError::UnknownKind {
                    what: "sync request",
                    value,
                })
            }
        };
        close(m, d)?;
        Ok(req)
    }

    /// Whether a peer that is not bound to an admitted organisation may send this request at all: it may fetch the
    /// genesis and push (its own inception and binding — the application checks which ops).
    pub fn allowed_for_unknown_peer(&self) -> bool {
        matches!(self, SyncRequest::Hello { .. } | SyncRequest::Push { .. })
    }

    /// Whether `response` is a possible answer to this request (a refusal always is). Anything else is a protocol
    /// violation by the responder.
    pub fn accepts(&self, response: &SyncResponse) -> bool {
        match (self, response) {
            (_, SyncResponse::Refused { .. }) => true,
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

impl RefuseReason {
    fn encode(&self, e: &mut Encoder) -> Result<(), EncodeError> {
        let code = match self {
            RefuseReason::Other(text) => {
                check_len("refusal reason", text.len(), MAX_REASON_BYTES)?;
                e.map(2).key(0).u64(REASON_OTHER).key(1).text(text);
                return Ok(());
            }
            RefuseReason::NotAdmitted => REASON_NOT_ADMITTED,
            RefuseReason::WrongFederation => REASON_WRONG_FEDERATION,
            RefuseReason::NotFound => REASON_NOT_FOUND,
            RefuseReason::Busy => REASON_BUSY,
            RefuseReason::Invalid => REASON_INVALID,
        };
        e.map(1).key(0).u64(code);
        Ok(())
    }

    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let mut m = d.map(2)?;
        m.required(d, 0)?;
        let code = d.u64()?;
        let reason = match code {
            REASON_OTHER => {
                m.required(d, 1)?;
                RefuseReason::Other(d.text("refusal reason", MAX_REASON_BYTES)?.to_string())
            }
            REASON_NOT_ADMITTED => RefuseReason::NotAdmitted,
            REASON_WRONG_FEDERATION => RefuseReason::WrongFederation,
            REASON_NOT_FOUND => RefuseReason::NotFound,
            REASON_BUSY => RefuseReason::Busy,
            REASON_INVALID => RefuseReason::Invalid,
            value => {
                return Err(DecodeError::UnknownKind {
                    what: "refusal reason",
                    value,
                })
            }
        };
        m.end()?;
        Ok(reason)
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
    /// The canonical bytes, checked against every cap and the response frame limit.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut e = Encoder::new();
        e.map(2).key(0);
        match self {
            SyncResponse::Genesis(genesis) => {
                check_len("genesis", genesis.len(), MAX_OP_BYTES)?;
                e.u64(RESP_GENESIS).key(1).map(1).key(0).bytes(genesis);
            }
            SyncResponse::Ops { ops, more } => {
                check_count("ops", ops.len(), MAX_RESPONSE_ITEMS)?;
                for op in ops {
                    check_len("op", op.len(), MAX_OP_BYTES)?;
                }
                e.u64(RESP_OPS).key(1).map(2).key(0);
                blobs(&mut e, ops);
                e.key(1).bool(*more);
            }
            SyncResponse::Envelopes { envelopes, more } => {
                check_count("envelopes", envelopes.len(), MAX_RESPONSE_ITEMS)?;
                for env in envelopes {
                    check_len("envelope", env.len(), MAX_ENVELOPE_BYTES)?;
                }
                e.u64(RESP_ENVELOPES).key(1).map(2).key(0);
                blobs(&mut e, envelopes);
                e.key(1).bool(*more);
            }
            SyncResponse::Heads { doc, heads } => {
                check_count("heads", heads.len(), MAX_RESPONSE_HEADS)?;
                e.u64(RESP_HEADS).key(1).map(2).key(0).bytes(&doc.0).key(1);
                ids(&mut e, heads.iter().map(|h| h.0));
            }
            SyncResponse::Refused { reason } => {
                e.u64(RESP_REFUSED).key(1).map(1).key(0);
                reason.encode(&mut e)?;
            }
            SyncResponse::Ack { accepted } => {
                e.u64(RESP_ACK)
                    .key(1)
                    .map(1)
                    .key(0)
                    .u64(u64::from(*accepted));
            }
            SyncResponse::DocDigests { digests, more } => {
                check_count("doc digests", digests.len(), MAX_RESPONSE_ITEMS)?;
                e.u64(RESP_DOC_DIGESTS).key(1).map(2).key(0);
                e.array(digests.len());
                for (doc, digest) in digests {
                    e.array(2).bytes(&doc.0).bytes(digest);
                }
                e.key(1).bool(*more);
            }
        }
        let bytes = e.into_bytes();
        check_len("response", bytes.len(), MAX_RESPONSE_FRAME_BYTES)?;
        Ok(bytes)
    }

    /// Strictly decodes one response; anything malformed, oversized or trailing is an error.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        check_input("response", bytes, MAX_RESPONSE_FRAME_BYTES)?;
        let mut d = Decoder::new(bytes);
        let (m, kind) = open(&mut d)?;
        let d = &mut d;
        let resp = match kind {
            RESP_GENESIS => SyncResponse::Genesis(single(d, |d| {
                Ok(d.bytes("genesis", MAX_OP_BYTES)?.to_vec())
            })?),
            RESP_OPS => {
                let (ops, more) = pair(
                    d,
                    |d| read_blobs(d, "ops", MAX_RESPONSE_ITEMS, MAX_OP_BYTES),
                    |d| d.bool(),
                )?;
                SyncResponse::Ops { ops, more }
            }
            RESP_ENVELOPES => {
                let (envelopes, more) = pair(
                    d,
                    |d| read_blobs(d, "envelopes", MAX_RESPONSE_ITEMS, MAX_ENVELOPE_BYTES),
                    |d| d.bool(),
                )?;
                SyncResponse::Envelopes { envelopes, more }
            }
            RESP_HEADS => {
                let (doc, heads) = pair(
                    d,
                    |d| read_id(d, "doc id"),
                    |d| {
                        d.array_of("heads", MAX_RESPONSE_HEADS, |d| {
                            Ok(EnvelopeId(read_id(d, "envelope id")?))
                        })
                    },
                )?;
                SyncResponse::Heads {
                    doc: DocId(doc),
                    heads,
                }
            }
            RESP_REFUSED => SyncResponse::Refused {
                reason: single(d, RefuseReason::decode)?,
            },
            RESP_ACK => SyncResponse::Ack {
                accepted: single(d, |d| d.u32("accepted"))?,
            },
            RESP_DOC_DIGESTS => {
                let (digests, more) = pair(
                    d,
                    |d| {
                        d.array_of("doc digests", MAX_RESPONSE_ITEMS, |d| {
                            if d.array("doc digest", 2)? != 2 {
                                return Err(DecodeError::Invalid("a doc digest is a pair"));
                            }
                            Ok((DocId(read_id(d, "doc id")?), read_id(d, "digest")?))
                        })
                    },
                    |d| d.bool(),
                )?;
                SyncResponse::DocDigests { digests, more }
            }
            value => {
                return Err(DecodeError::UnknownKind {
                    what: "sync response",
                    value,
                })
            }
        };
        close(m, d)?;
        Ok(resp)
    }

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
        }
    }
}

impl Announce {
    /// The canonical bytes, checked against every cap and [`MAX_ANNOUNCE_BYTES`].
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        check_count("gov heads", self.gov_heads.len(), MAX_HEADS)?;
        check_count("announced docs", self.docs.len(), MAX_ANNOUNCE_DOCS)?;
        let mut e = Encoder::new();
        e.map(2).key(0).u64(GOSSIP_ANNOUNCE).key(1).map(2).key(0);
        ids(&mut e, self.gov_heads.iter().map(|h| h.0));
        e.key(1).array(self.docs.len());
        for (doc, heads) in &self.docs {
            check_count("doc heads", heads.len(), MAX_HEADS)?;
            e.map(2).key(0).bytes(&doc.0).key(1);
            ids(&mut e, heads.iter().map(|h| h.0));
        }
        let bytes = e.into_bytes();
        check_len("announcement", bytes.len(), MAX_ANNOUNCE_BYTES)?;
        Ok(bytes)
    }

    /// Strictly decodes one announcement.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        check_input("announcement", bytes, MAX_ANNOUNCE_BYTES)?;
        let mut d = Decoder::new(bytes);
        let (m, kind) = open(&mut d)?;
        if kind != GOSSIP_ANNOUNCE {
            return Err(DecodeError::UnknownKind {
                what: "gossip message",
                value: kind,
            });
        }
        let d = &mut d;
        let (gov_heads, docs) = pair(
            d,
            |d| d.array_of("gov heads", MAX_HEADS, |d| Ok(OpId(read_id(d, "op id")?))),
            |d| {
                d.array_of("announced docs", MAX_ANNOUNCE_DOCS, |d| {
                    pair(
                        d,
                        |d| Ok(DocId(read_id(d, "doc id")?)),
                        |d| {
                            d.array_of("doc heads", MAX_HEADS, |d| {
                                Ok(EnvelopeId(read_id(d, "envelope id")?))
                            })
                        },
                    )
                })
            },
        )?;
        close(m, d)?;
        Ok(Announce { gov_heads, docs })
    }
}

/// Fills an `Ops` or `Envelopes` response with as many items as fit one response frame (and the count cap), so a
/// responder can stream a long answer as several requests with `more = true`.
///
/// ```
/// use wsis_node::net::{Batch, SyncResponse};
/// let mut batch = Batch::for_ops();
/// for op in [vec![1u8; 10], vec![2u8; 10]] {
///     if let Err(_op) = batch.try_push(op) {
///         break; // full: answer with more = true
///     }
/// }
/// let resp = batch.into_ops(false);
/// assert!(matches!(resp, SyncResponse::Ops { ref ops, more: false } if ops.len() == 2));
/// ```
#[derive(Debug)]
pub struct Batch {
    items: Vec<Vec<u8>>,
    bytes: usize,
    max_item: usize,
}

/// Room for the message envelope around the items (map heads, kind, `more`, the array head).
const BATCH_OVERHEAD: usize = 32;

impl Batch {
    /// A batch of signed governance ops.
    pub fn for_ops() -> Self {
        Self {
            items: Vec::new(),
            bytes: BATCH_OVERHEAD,
            max_item: MAX_OP_BYTES,
        }
    }

    /// A batch of signed change envelopes.
    pub fn for_envelopes() -> Self {
        Self {
            items: Vec::new(),
            bytes: BATCH_OVERHEAD,
            max_item: MAX_ENVELOPE_BYTES,
        }
    }

    /// Adds an item if it fits; otherwise gives it back (the batch is full, or the item is larger than any
    /// response may carry — check [`Batch::is_empty`] to tell these apart).
    pub fn try_push(&mut self, item: Vec<u8>) -> Result<(), Vec<u8>> {
        // A byte string's head is at most 9 bytes.
        let cost = item.len() + 9;
        if item.len() > self.max_item
            || self.items.len() >= MAX_RESPONSE_ITEMS
            || self.bytes + cost > MAX_RESPONSE_FRAME_BYTES
        {
            return Err(item);
        }
        self.bytes += cost;
        self.items.push(item);
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn into_ops(self, more: bool) -> SyncResponse {
        SyncResponse::Ops {
            ops: self.items,
            more,
        }
    }

    pub fn into_envelopes(self, more: bool) -> SyncResponse {
        SyncResponse::Envelopes {
            envelopes: self.items,
            more,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;

    fn id(n: u8) -> [u8; 32] {
        [n; 32]
    }

    pub(crate) fn all_requests() -> Vec<SyncRequest> {
        vec![
            SyncRequest::Hello {
                federation: FederationId(id(1)),
            },
            SyncRequest::GovSince { heads: vec![] },
            SyncRequest::GovSince {
                heads: vec![OpId(id(2)), OpId(id(3))],
            },
            SyncRequest::GetOps {
                ids: (0..MAX_REQUEST_IDS).map(|i| OpId(id(i as u8))).collect(),
            },
            SyncRequest::DocHeads { doc: DocId(id(4)) },
            SyncRequest::GetEnvelopes {
                doc: DocId(id(5)),
                have: vec![EnvelopeId(id(6))],
            },
            SyncRequest::Push {
                ops: vec![vec![1, 2, 3], vec![]],
            },
            SyncRequest::DocDigests { after: None },
            SyncRequest::DocDigests {
                after: Some(DocId(id(11))),
            },
        ]
    }

    pub(crate) fn all_responses() -> Vec<SyncResponse> {
        vec![
            SyncResponse::Genesis(vec![9; 100]),
            SyncResponse::Ops {
                ops: vec![vec![1], vec![2; 300]],
                more: true,
            },
            SyncResponse::Ops {
                ops: vec![],
                more: false,
            },
            SyncResponse::Envelopes {
                envelopes: vec![vec![7; 70_000]],
                more: false,
            },
            SyncResponse::Heads {
                doc: DocId(id(8)),
                heads: vec![EnvelopeId(id(9)), EnvelopeId(id(10))],
            },
            SyncResponse::Refused {
                reason: RefuseReason::NotAdmitted,
            },
            SyncResponse::Refused {
                reason: RefuseReason::WrongFederation,
            },
            SyncResponse::Refused {
                reason: RefuseReason::NotFound,
            },
            SyncResponse::Refused {
                reason: RefuseReason::Busy,
            },
            SyncResponse::Refused {
                reason: RefuseReason::Invalid,
            },
            SyncResponse::Refused {
                reason: RefuseReason::Other("no thanks".into()),
            },
            SyncResponse::Ack { accepted: 2 },
            SyncResponse::DocDigests {
                digests: vec![(DocId(id(12)), id(13)), (DocId(id(14)), id(15))],
                more: true,
            },
            SyncResponse::DocDigests {
                digests: vec![],
                more: false,
            },
        ]
    }

    fn announce() -> Announce {
        Announce {
            gov_heads: vec![OpId(id(1)), OpId(id(2))],
            docs: vec![
                (DocId(id(3)), vec![EnvelopeId(id(4))]),
                (DocId(id(5)), vec![]),
            ],
        }
    }

    #[test]
    fn every_message_round_trips() {
        for req in all_requests() {
            let bytes = req.encode().unwrap();
            assert_eq!(SyncRequest::decode(&bytes), Ok(req.clone()), "{req:?}");
        }
        for resp in all_responses() {
            let bytes = resp.encode().unwrap();
            assert_eq!(
                SyncResponse::decode(&bytes),
                Ok(resp.clone()),
                "{}",
                resp.kind_name()
            );
        }
        let a = announce();
        assert_eq!(Announce::decode(&a.encode().unwrap()), Ok(a));
        assert_eq!(
            Announce::decode(&Announce::default().encode().unwrap()),
            Ok(Announce::default())
        );
    }

    #[test]
    fn truncated_messages_are_errors() {
        let mut all: Vec<Vec<u8>> = all_requests()
            .iter()
            .filter(|r| !matches!(r, SyncRequest::GetOps { .. }))
            .map(|r| r.encode().unwrap())
            .collect();
        all.push(announce().encode().unwrap());
        for bytes in &all {
            for cut in 0..bytes.len() {
                assert!(SyncRequest::decode(&bytes[..cut]).is_err(), "cut {cut}");
                assert!(Announce::decode(&bytes[..cut]).is_err(), "cut {cut}");
            }
        }
        for resp in all_responses() {
            let bytes = resp.encode().unwrap();
            // Every prefix of a small message; a sample of prefixes of a large one.
            let step = (bytes.len() / 512).max(1);
            for cut in (0..bytes.len()).step_by(step) {
                assert!(SyncResponse::decode(&bytes[..cut]).is_err(), "cut {cut}");
            }
        }
    }

    #[test]
    fn trailing_bytes_are_errors() {
        for req in all_requests() {
            let mut bytes = req.encode().unwrap();
            bytes.push(0);
            assert_eq!(
                SyncRequest::decode(&bytes),
                Err(DecodeError::TrailingBytes { count: 1 })
            );
        }
        for resp in all_responses() {
            let mut bytes = resp.encode().unwrap();
            bytes.push(0);
            assert_eq!(
                SyncResponse::decode(&bytes),
                Err(DecodeError::TrailingBytes { count: 1 })
            );
        }
        let mut bytes = announce().encode().unwrap();
        bytes.push(0);
        assert_eq!(
            Announce::decode(&bytes),
            Err(DecodeError::TrailingBytes { count: 1 })
        );
    }

    #[test]
    fn unknown_kinds_and_extra_fields_are_errors() {
        let mut e = Encoder::new();
        e.map(2).key(0).u64(99).key(1).map(0);
        let bytes = e.into_bytes();
        assert!(matches!(
            SyncRequest::decode(&bytes),
            Err(DecodeError::UnknownKind { value: 99, .. })
        ));
        assert!(matches!(
            SyncResponse::decode(&bytes),
            Err(DecodeError::UnknownKind { value: 99, .. })
        ));
        assert!(Announce::decode(&bytes).is_err());

        // A Hello with an extra payload field.
        let mut e = Encoder::new();
        e.map(2)
            .key(0)
            .u64(REQ_HELLO)
            .key(1)
            .map(2)
            .key(0)
            .bytes(&[1; 32])
            .key(1)
            .u64(0);
        assert!(SyncRequest::decode(&e.into_bytes()).is_err());

        // A Hello whose federation id is 31 bytes.
        let mut e = Encoder::new();
        e.map(2)
            .key(0)
            .u64(REQ_HELLO)
            .key(1)
            .map(1)
            .key(0)
            .bytes(&[1; 31]);
        assert!(SyncRequest::decode(&e.into_bytes()).is_err());

        // A refusal with an unknown code.
        let mut e = Encoder::new();
        e.map(2)
            .key(0)
            .u64(RESP_REFUSED)
            .key(1)
            .map(1)
            .key(0)
            .map(1)
            .key(0)
            .u64(77);
        assert!(matches!(
            SyncResponse::decode(&e.into_bytes()),
            Err(DecodeError::UnknownKind { value: 77, .. })
        ));
    }

    #[test]
    fn caps_are_enforced_on_both_sides() {
        let too_many = SyncRequest::GetOps {
            ids: vec![OpId(id(0)); MAX_REQUEST_IDS + 1],
        };
        assert!(matches!(
            too_many.encode(),
            Err(EncodeError::TooMany { .. })
        ));
        // Hand-encode the same list: the decoder refuses it at the array head.
        let mut e = Encoder::new();
        e.map(2).key(0).u64(REQ_GET_OPS).key(1).map(1).key(0);
        ids(&mut e, std::iter::repeat_n([0u8; 32], MAX_REQUEST_IDS + 1));
        let bytes = e.into_bytes();
        assert!(matches!(
            SyncRequest::decode(&bytes),
            Err(DecodeError::TooLong { .. })
        ));

        let push = SyncRequest::Push {
            ops: vec![vec![0; 1]; MAX_PUSH_OPS + 1],
        };
        assert!(push.encode().is_err());
        // Within the count cap but over the request frame.
        let push = SyncRequest::Push {
            ops: vec![vec![0; MAX_REQUEST_FRAME_BYTES / 2]; 3],
        };
        assert!(matches!(
            push.encode(),
            Err(EncodeError::TooLarge {
                what: "request",
                ..
            })
        ));
        assert!(matches!(
            SyncRequest::decode(&vec![0; MAX_REQUEST_FRAME_BYTES + 1]),
            Err(DecodeError::TooLong { .. })
        ));

        let big = SyncResponse::Ops {
            ops: vec![vec![0; MAX_OP_BYTES + 1]],
            more: false,
        };
        assert!(big.encode().is_err());
        let over_frame = SyncResponse::Envelopes {
            envelopes: vec![vec![0; MAX_ENVELOPE_BYTES]; 2],
            more: false,
        };
        assert!(matches!(
            over_frame.encode(),
            Err(EncodeError::TooLarge {
                what: "response",
                ..
            })
        ));
        let reason = SyncResponse::Refused {
            reason: RefuseReason::Other("x".repeat(MAX_REASON_BYTES + 1)),
        };
        assert!(reason.encode().is_err());

        let a = Announce {
            gov_heads: vec![OpId(id(0)); MAX_HEADS + 1],
            docs: vec![],
        };
        assert!(a.encode().is_err());
        // Within every count cap but over the byte limit.
        let a = Announce {
            gov_heads: vec![],
            docs: vec![(DocId(id(0)), vec![EnvelopeId(id(1)); MAX_HEADS]); 8],
        };
        assert!(matches!(a.encode(), Err(EncodeError::TooLarge { .. })));
    }

    #[test]
    fn responses_match_requests() {
        let hello = SyncRequest::Hello {
            federation: FederationId(id(1)),
        };
        assert!(hello.accepts(&SyncResponse::Genesis(vec![])));
        assert!(hello.accepts(&SyncResponse::Refused {
            reason: RefuseReason::Busy
        }));
        assert!(!hello.accepts(&SyncResponse::Ack { accepted: 0 }));
        let heads = SyncRequest::DocHeads { doc: DocId(id(1)) };
        assert!(heads.accepts(&SyncResponse::Heads {
            doc: DocId(id(1)),
            heads: vec![]
        }));
        assert!(!heads.accepts(&SyncResponse::Heads {
            doc: DocId(id(2)),
            heads: vec![]
        }));
        assert!(hello.allowed_for_unknown_peer());
        assert!(!heads.allowed_for_unknown_peer());
    }

    #[test]
    fn a_full_batch_still_encodes() {
        let mut batch = Batch::for_envelopes();
        let mut refused = None;
        for _ in 0..10 {
            if let Err(item) = batch.try_push(vec![0; 3 * 1024 * 1024]) {
                refused = Some(item);
                break;
            }
        }
        assert!(refused.is_some());
        assert_eq!(batch.len(), 5);
        let bytes = batch.into_envelopes(true).encode().unwrap();
        assert!(bytes.len() <= MAX_RESPONSE_FRAME_BYTES);

        let mut batch = Batch::for_ops();
        for _ in 0..MAX_RESPONSE_ITEMS {
            batch.try_push(vec![]).unwrap();
        }
        assert!(batch.try_push(vec![]).is_err());
        assert!(Batch::for_ops()
            .try_push(vec![0; MAX_OP_BYTES + 1])
            .is_err());
        batch.into_ops(true).encode().unwrap();
    }
}
