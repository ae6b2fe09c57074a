//! The messages' canonical CBOR: `map{0: kind, 1: payload}`, the kind numbers, and strict decoders that check
//! every count cap before allocating and the frame limit before anything else.

use wsis_protocol::cbor::{DecodeError, Decoder, Encoder};
use wsis_protocol::ids::{DocId, EnvelopeId, FederationId, OpId};
use wsis_protocol::limits::{MAX_ENVELOPE_BYTES, MAX_HEADS, MAX_OP_BYTES};

use super::*;

// Kinds on the wire. Never renumber: changing one is a protocol change.
pub(super) const REQ_HELLO: u64 = 0;
pub(super) const REQ_GOV_SINCE: u64 = 1;
pub(super) const REQ_GET_OPS: u64 = 2;
pub(super) const REQ_DOC_HEADS: u64 = 3;
pub(super) const REQ_GET_ENVELOPES: u64 = 4;
pub(super) const REQ_PUSH: u64 = 5;
pub(super) const REQ_DOC_DIGESTS: u64 = 6;

pub(super) const RESP_GENESIS: u64 = 0;
pub(super) const RESP_OPS: u64 = 1;
pub(super) const RESP_ENVELOPES: u64 = 2;
pub(super) const RESP_HEADS: u64 = 3;
pub(super) const RESP_REFUSED: u64 = 4;
pub(super) const RESP_ACK: u64 = 5;
pub(super) const RESP_DOC_DIGESTS: u64 = 6;
pub(super) const RESP_NO_GENESIS: u64 = 7;

pub(super) const GOSSIP_ANNOUNCE: u64 = 0;

pub(super) const REASON_OTHER: u64 = 0;
pub(super) const REASON_NOT_ADMITTED: u64 = 1;
pub(super) const REASON_WRONG_FEDERATION: u64 = 2;
pub(super) const REASON_NOT_FOUND: u64 = 3;
pub(super) const REASON_BUSY: u64 = 4;
pub(super) const REASON_INVALID: u64 = 5;

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

pub(super) fn ids<const N: usize>(e: &mut Encoder, ids: impl ExactSizeIterator<Item = [u8; N]>) {
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
            SyncResponse::NoGenesis => {
                e.u64(RESP_NO_GENESIS).key(1).map(0);
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
            RESP_NO_GENESIS => {
                d.map(0)?.end()?;
                SyncResponse::NoGenesis
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
