//! Round trips, strictness (truncation, trailing bytes, unknown kinds and fields) and caps of every message;
//! `all_requests` and `all_responses` are shared with the codec's tests.
#![allow(clippy::unwrap_used)]

use wsis_protocol::cbor::{DecodeError, Encoder};
use wsis_protocol::ids::{DocId, EnvelopeId, FederationId, OpId};
use wsis_protocol::limits::{MAX_ENVELOPE_BYTES, MAX_HEADS, MAX_OP_BYTES};

use super::encoding::*;
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
        SyncResponse::NoGenesis,
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

/// "No genesis" is the answer of a node without a replica (a newcomer still fetching the genesis, a node still
/// starting) to any request: five fixed bytes, accepted as the answer to every request (by the messages' rule
/// and by the swarm's record of what it asked), and strict like every other kind.
#[test]
fn no_genesis_is_five_fixed_bytes_and_answers_every_request() {
    let bytes = SyncResponse::NoGenesis.encode().unwrap();
    // map(2) {0: 7, 1: map(0)}
    assert_eq!(bytes, vec![0xa2, 0x00, 0x07, 0x01, 0xa0]);
    for req in all_requests() {
        assert!(req.accepts(&SyncResponse::NoGenesis), "{req:?}");
        assert!(
            crate::net::command::Expect::of(&req).accepts(&SyncResponse::NoGenesis),
            "{req:?}"
        );
    }
    // A payload with a field, or a payload that is not a map, is refused.
    let mut e = Encoder::new();
    e.map(2)
        .key(0)
        .u64(RESP_NO_GENESIS)
        .key(1)
        .map(1)
        .key(0)
        .u64(0);
    assert!(SyncResponse::decode(&e.into_bytes()).is_err());
    let mut e = Encoder::new();
    e.map(2).key(0).u64(RESP_NO_GENESIS).key(1).u64(0);
    assert!(SyncResponse::decode(&e.into_bytes()).is_err());
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
