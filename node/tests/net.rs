//! The libp2p layer over loopback TCP (127.0.0.1, port 0 only; mDNS off): connection via bootstrap addresses,
//! request/response, gossip, oversized frames on a raw stream, penalties, and a peer dropping mid-request.
//!
//! Timeouts here only keep a broken build from hanging the suite; nothing asserts on timing.
#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::time::Duration;

use futures::StreamExt;
use libp2p::multiaddr::Protocol;
use libp2p::request_response;
use libp2p::swarm::SwarmEvent;
use tokio::sync::mpsc;
use wsis_node::net::{
    Announce, NetConfig, NetError, NetEvent, Network, PeerId, RequestError, SyncRequest,
    SyncResponse, Validation, MAX_REQUEST_FRAME_BYTES,
};
use wsis_node::net::{Multiaddr, RefuseReason};
use wsis_protocol::ids::{DocId, EnvelopeId, FederationId, OpId};

mod common;

use common::frame;
use common::raw::{raw_client, RawSwarm};

const FEDERATION: FederationId = FederationId([42; 32]);
/// Only to turn a hang into a failure; generous so a slow machine never trips it.
const HARNESS_LIMIT: Duration = Duration::from_secs(60);
const GENESIS: &[u8] = b"the genesis op of the test federation";
const BIG_ENVELOPE_BYTES: usize = 3 * 1024 * 1024;

async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    match tokio::time::timeout(HARNESS_LIMIT, f).await {
        Ok(v) => v,
        Err(_) => panic!("test harness limit reached while waiting for {what}"),
    }
}

fn config(seed: u8, bootstrap: &[&Node]) -> NetConfig {
    let mut c = NetConfig::new([seed; 32], FEDERATION);
    c.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()];
    c.bootstrap = bootstrap.iter().map(|n| n.addr.clone()).collect();
    c.mdns = false;
    c
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Policy {
    /// Answer every request (and forward it to the test).
    Answer,
    /// Never answer (forward only).
    Silent,
}

/// A running network, with a task that answers requests by `Policy` and forwards every event to `events`.
struct Node {
    net: Network,
    id: PeerId,
    addr: Multiaddr,
    events: mpsc::Receiver<NetEvent>,
}

fn answer(request: &SyncRequest) -> SyncResponse {
    match request {
        SyncRequest::Hello { federation } if *federation == FEDERATION => {
            SyncResponse::Genesis(GENESIS.to_vec())
        }
        SyncRequest::Hello { .. } => SyncResponse::Refused {
            reason: RefuseReason::WrongFederation,
        },
        SyncRequest::GetEnvelopes { .. } => SyncResponse::Envelopes {
            envelopes: vec![vec![7; BIG_ENVELOPE_BYTES]],
            more: false,
        },
        SyncRequest::DocHeads { doc } => SyncResponse::Heads {
            doc: *doc,
            heads: vec![EnvelopeId([1; 32])],
        },
        _ => SyncResponse::Refused {
            reason: RefuseReason::NotFound,
        },
    }
}

async fn start(config: NetConfig, policy: Policy) -> Node {
    let (net, mut raw_events) = Network::new(config).unwrap();
    let (tx, mut events) = mpsc::channel(1024);
    let responder = net.clone();
    tokio::spawn(async move {
        while let Some(event) = raw_events.recv().await {
            if let NetEvent::InboundRequest {
                channel_id,
                request,
                ..
            } = &event
            {
                if policy == Policy::Answer {
                    if let Err(e) = responder.respond(*channel_id, answer(request)).await {
                        eprintln!("responder: {e}");
                    }
                }
            }
            if tx.send(event).await.is_err() {
                break;
            }
        }
    });
    let address = within(
        "a listen address",
        next(&mut events, |e| match e {
            NetEvent::ListenAddr { address } => Some(address.clone()),
            _ => None,
        }),
    )
    .await;
    let id = net.local_peer_id();
    Node {
        addr: address.with(Protocol::P2p(id)),
        net,
        id,
        events,
    }
}

/// The next event `f` picks, skipping the others. Panics if the stream ends.
async fn next<T>(
    events: &mut mpsc::Receiver<NetEvent>,
    mut f: impl FnMut(&NetEvent) -> Option<T>,
) -> T {
    loop {
        let event = events.recv().await.expect("event stream ended");
        if let Some(v) = f(&event) {
            return v;
        }
    }
}

async fn connected(node: &mut Node, peer: PeerId) {
    within(
        "a connection",
        next(&mut node.events, |e| match e {
            NetEvent::PeerConnected { peer: p, .. } if *p == peer => Some(()),
            _ => None,
        }),
    )
    .await
}

/// Polls `f` until it returns true (harness-bounded).
async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    within(what, async {
        while !f().await {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
}

#[tokio::test]
async fn two_nodes_connect_via_bootstrap_and_round_trip_requests() {
    let mut a = start(config(1, &[]), Policy::Answer).await;
    let mut b = start(config(2, &[&a]), Policy::Answer).await;
    connected(&mut a, b.id).await;
    connected(&mut b, a.id).await;

    let hello = SyncRequest::Hello {
        federation: FEDERATION,
    };
    let response = within("hello", b.net.request(a.id, &hello)).await.unwrap();
    assert_eq!(response, SyncResponse::Genesis(GENESIS.to_vec()));
    let request = within(
        "the request at a",
        next(&mut a.events, |e| match e {
            NetEvent::InboundRequest { peer, request, .. } if *peer == b.id => {
                Some(request.clone())
            }
            _ => None,
        }),
    )
    .await;
    assert_eq!(request, hello);

    // A refusal is a valid answer to anything.
    let other = SyncRequest::Hello {
        federation: FederationId([0; 32]),
    };
    assert_eq!(
        within("refusal", b.net.request(a.id, &other))
            .await
            .unwrap(),
        SyncResponse::Refused {
            reason: RefuseReason::WrongFederation
        }
    );

    // A multi-megabyte response, well within the response frame limit, the other way round too.
    let get = SyncRequest::GetEnvelopes {
        doc: DocId([3; 32]),
        have: vec![EnvelopeId([4; 32])],
    };
    for (from, to) in [(&b, &a), (&a, &b)] {
        match within("envelopes", from.net.request(to.id, &get))
            .await
            .unwrap()
        {
            SyncResponse::Envelopes { envelopes, more } => {
                assert!(!more);
                assert_eq!(envelopes, vec![vec![7; BIG_ENVELOPE_BYTES]]);
            }
            other => panic!("unexpected response {other:?}"),
        }
    }

    // A request over the request frame limit is refused locally; nothing is sent.
    let huge = SyncRequest::Push {
        ops: vec![vec![0; 40 * 1024]; 2],
    };
    assert!(matches!(
        b.net.send_request(a.id, &huge).await,
        Err(NetError::Encode(_))
    ));

    // Traffic is counted per peer.
    let stats = b.net.stats().await.unwrap();
    let with_a = &stats.peers[&a.id];
    assert!(with_a.bytes_in >= BIG_ENVELOPE_BYTES as u64);
    assert_eq!(with_a.requests_out, 3);
    assert_eq!(with_a.requests_in, 1);
    assert!(with_a.connected);
    assert_eq!(with_a.penalties, 0);
    let stats = a.net.stats().await.unwrap();
    assert_eq!(stats.peers[&b.id].requests_in, 3);
    assert!(stats.peers[&b.id].bytes_out >= BIG_ENVELOPE_BYTES as u64);

    assert!(a.net.connected_peers().await.unwrap().contains(&b.id));
    assert!(!a.net.listen_addrs().await.unwrap().is_empty());
    a.net.shutdown().await.unwrap();
    b.net.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_announcement_from_a_reaches_b_and_c() {
    let a = start(config(11, &[]), Policy::Answer).await;
    let mut b = start(config(12, &[&a]), Policy::Answer).await;
    let mut c = start(config(13, &[&a]), Policy::Answer).await;

    eventually("b and c subscribed at a", || async {
        let peers = a.net.gossip_peers().await.unwrap();
        peers.contains(&b.id) && peers.contains(&c.id)
    })
    .await;

    let msg = Announce {
        gov_heads: vec![OpId([1; 32]), OpId([2; 32])],
        docs: vec![(DocId([3; 32]), vec![EnvelopeId([4; 32])])],
    };
    a.net.announce(&msg).await.unwrap();

    for node in [&mut b, &mut c] {
        let (peer, source, got, id) = within(
            "the announcement",
            next(&mut node.events, |e| match e {
                NetEvent::Announcement {
                    peer,
                    source,
                    msg,
                    message_id,
                } => Some((*peer, *source, msg.clone(), message_id.clone())),
                _ => None,
            }),
        )
        .await;
        assert_eq!(got, msg);
        assert_eq!(source, Some(a.id), "signed by a");
        node.net
            .validate_announcement(id, peer, Validation::Accept)
            .await
            .unwrap();
    }
    for node in [&a, &b, &c] {
        node.net.shutdown().await.unwrap();
    }
}

/// Sends raw bytes on a fresh sync stream and returns what came back, or the failure.
async fn raw_exchange(
    swarm: &mut RawSwarm,
    peer: PeerId,
    bytes: Vec<u8>,
) -> Result<Vec<u8>, String> {
    let id = swarm.behaviour_mut().send_request(&peer, bytes);
    loop {
        match swarm.select_next_some().await {
            SwarmEvent::Behaviour(request_response::Event::Message {
                message:
                    request_response::Message::Response {
                        request_id,
                        response,
                    },
                ..
            }) if request_id == id => return Ok(response),
            SwarmEvent::Behaviour(request_response::Event::OutboundFailure {
                request_id,
                error,
                ..
            }) if request_id == id => return Err(error.to_string()),
            _ => {}
        }
    }
}

#[tokio::test]
async fn an_oversized_frame_on_a_raw_stream_is_refused_and_the_node_keeps_serving() {
    let mut a = start(config(21, &[]), Policy::Answer).await;
    let mut raw = raw_client();
    let raw_id = *raw.local_peer_id();
    raw.dial(a.addr.clone()).unwrap();

    // A length prefix one byte over the request limit, then a little body: refused at the prefix.
    let mut oversized = (MAX_REQUEST_FRAME_BYTES as u32 + 1).to_be_bytes().to_vec();
    oversized.extend_from_slice(&[0; 1024]);
    let outcome = within(
        "the oversized frame",
        raw_exchange(&mut raw, a.id, oversized),
    )
    .await;
    assert!(
        outcome.is_err(),
        "no response to an oversized frame: {outcome:?}"
    );
    // And a length prefix claiming 4 GiB.
    let outcome = within(
        "the 4 GiB prefix",
        raw_exchange(&mut raw, a.id, vec![0xff; 4]),
    )
    .await;
    assert!(
        outcome.is_err(),
        "no response to a 4 GiB prefix: {outcome:?}"
    );

    // The offender is penalised (one penalty per bad frame), not banned: below the threshold.
    eventually("the penalties", || async {
        let stats = a.net.stats().await.unwrap();
        stats.peers.get(&raw_id).is_some_and(|s| s.penalties == 2)
    })
    .await;

    // The node still serves: a valid request from the same client, on a new stream, is answered.
    let hello = SyncRequest::Hello {
        federation: FEDERATION,
    }
    .encode()
    .unwrap();
    let reply = within(
        "hello after the bad frames",
        raw_exchange(&mut raw, a.id, frame(&hello)),
    )
    .await
    .unwrap();
    let (prefix, body) = reply.split_at(4);
    assert_eq!(
        u32::from_be_bytes(prefix.try_into().unwrap()) as usize,
        body.len()
    );
    assert_eq!(
        SyncResponse::decode(body).unwrap(),
        SyncResponse::Genesis(GENESIS.to_vec())
    );
    // The only request the application saw from the client is that hello.
    let seen = within(
        "the hello at a",
        next(&mut a.events, |e| match e {
            NetEvent::InboundRequest { peer, request, .. } if *peer == raw_id => {
                Some(request.clone())
            }
            _ => None,
        }),
    )
    .await;
    assert!(matches!(seen, SyncRequest::Hello { .. }));

    // And a proper node can still talk to it.
    let b = start(config(22, &[&a]), Policy::Answer).await;
    let response = within(
        "hello from b",
        b.net.request(
            a.id,
            &SyncRequest::Hello {
                federation: FEDERATION,
            },
        ),
    )
    .await
    .unwrap();
    assert_eq!(response, SyncResponse::Genesis(GENESIS.to_vec()));
    a.net.shutdown().await.unwrap();
    b.net.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_peer_penalised_past_the_threshold_is_disconnected_and_refused() {
    let mut cfg = config(31, &[]);
    cfg.penalty_threshold = 3;
    let mut a = start(cfg, Policy::Answer).await;
    let b = start(config(32, &[&a]), Policy::Answer).await;
    connected(&mut a, b.id).await;

    for i in 0..3 {
        a.net
            .penalise(b.id, format!("invalid op {i}"))
            .await
            .unwrap();
    }
    within(
        "the ban",
        next(&mut a.events, |e| match e {
            NetEvent::PeerBanned { peer } if *peer == b.id => Some(()),
            _ => None,
        }),
    )
    .await;
    within(
        "the disconnection",
        next(&mut a.events, |e| match e {
            NetEvent::PeerDisconnected { peer } if *peer == b.id => Some(()),
            _ => None,
        }),
    )
    .await;
    let stats = a.net.stats().await.unwrap();
    assert!(stats.peers[&b.id].banned);
    assert_eq!(stats.peers[&b.id].penalties, 3);

    // B may try again, but A refuses the connection, so B's request fails instead of hanging.
    let hello = SyncRequest::Hello {
        federation: FEDERATION,
    };
    let result = within("b's request to a", b.net.request(a.id, &hello)).await;
    assert!(result.is_err(), "a banned peer got an answer: {result:?}");
    assert!(!a.net.connected_peers().await.unwrap().contains(&b.id));
    // And A will not send to B.
    assert!(matches!(
        a.net.request(b.id, &hello).await,
        Err(RequestError::Banned)
    ));
    a.net.shutdown().await.unwrap();
    b.net.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_peer_that_drops_mid_request_gives_the_requester_an_error() {
    let mut a = start(config(41, &[]), Policy::Silent).await;
    let mut b_config = config(42, &[&a]);
    // So that only the drop, not a timeout, can end the request within the harness limit.
    b_config.request_timeout_ms = 10 * HARNESS_LIMIT.as_millis() as u64;
    let mut b = start(b_config, Policy::Answer).await;
    connected(&mut b, a.id).await;

    let pending = b
        .net
        .send_request(
            a.id,
            &SyncRequest::GovSince {
                heads: vec![OpId([5; 32])],
            },
        )
        .await
        .unwrap();
    within(
        "the request at a",
        next(&mut a.events, |e| match e {
            NetEvent::InboundRequest { peer, .. } if *peer == b.id => Some(()),
            _ => None,
        }),
    )
    .await;
    // A goes away without answering.
    a.net.shutdown().await.unwrap();
    let result = within("the failed request", pending).await;
    assert!(
        matches!(
            result,
            Err(RequestError::ConnectionClosed | RequestError::Io(_))
        ),
        "{result:?}"
    );
    // A's event stream ends after shutdown.
    within("a's events to end", async {
        while a.events.recv().await.is_some() {}
    })
    .await;
    // B is still usable.
    assert!(!b.net.connected_peers().await.unwrap().contains(&a.id));
    b.net.shutdown().await.unwrap();
}

/// Issue 10 (deliverable 5): a node whose application does not serve yet (`serve_from_start` off, as a node
/// fetching the genesis or loading its store) answers every request at once with `NoGenesis` — not the
/// application's answer, and not a timeout — which is a valid answer to any request (no penalty); once the
/// application calls `serve`, requests reach it. The requester knows its bootstrap peers.
#[tokio::test]
async fn a_node_not_serving_yet_answers_no_genesis_at_once_then_serves() {
    let mut quiet = config(61, &[]);
    quiet.serve_from_start = false;
    let mut a = start(quiet, Policy::Answer).await;
    let mut b = start(config(62, &[&a]), Policy::Answer).await;
    connected(&mut a, b.id).await;
    connected(&mut b, a.id).await;
    assert_eq!(b.net.bootstrap_peers(), &[a.id]);
    let hello = SyncRequest::Hello {
        federation: FEDERATION,
    };
    for request in [
        hello.clone(),
        SyncRequest::GetOps {
            ids: vec![OpId([1; 32])],
        },
        SyncRequest::DocHeads {
            doc: DocId([2; 32]),
        },
    ] {
        assert_eq!(
            within("no genesis", b.net.request(a.id, &request))
                .await
                .unwrap(),
            SyncResponse::NoGenesis,
            "{request:?}"
        );
    }
    a.net.serve().await.unwrap();
    assert_eq!(
        within("hello", b.net.request(a.id, &hello)).await.unwrap(),
        SyncResponse::Genesis(GENESIS.to_vec())
    );
    let stats = b.net.stats().await.unwrap();
    assert_eq!(stats.peers[&a.id].penalties, 0);
    a.net.shutdown().await.unwrap();
    b.net.shutdown().await.unwrap();
}
