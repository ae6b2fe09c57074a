//! A sync server that serves whatever bytes it is given: what a malicious node can put on the wire. It answers
//! `GetEnvelopes` for one document from one victim with the next queued raw response (a length-prefixed frame,
//! or not), `GovSince` with every op of its list (like a peer whose DAG holds them: the victim lacks them
//! until it accepts them), `GetOps` with the listed ops asked for (recording the ids asked), and every other
//! request with an empty, well-formed answer or a refusal. Beside it, the hostile bytes such a node
//! sends: an orphan flood of governance ops and change envelopes forged without any check.

use futures::StreamExt;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::SwarmEvent;
use libp2p::{noise, tcp, yamux, StreamProtocol, SwarmBuilder};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wsis_node::net::{Multiaddr, PeerId, RefuseReason, SyncRequest, SyncResponse, SYNC_PROTOCOL};
use wsis_protocol::ids::{DocId, FederationId, OpId};
use wsis_protocol::op::{OpKind, StakeholderType};

/// A well-formed frame holding `response`.
pub fn frame(response: &SyncResponse) -> Vec<u8> {
    super::frame(&response.encode().expect("encodes"))
}

/// A running malicious server: its peer id, the raw responses still queued, the ops it serves (the test may
/// add to them while it runs) and the op ids the victim asked for with `GetOps`.
pub struct Server {
    pub peer_id: PeerId,
    pub queue: Arc<Mutex<VecDeque<Vec<u8>>>>,
    pub ops: Arc<Mutex<Vec<Vec<u8>>>>,
    pub asked: Arc<Mutex<Vec<OpId>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// How many queued responses have not been served yet.
    pub fn remaining(&self) -> usize {
        self.queue.lock().expect("lock").len()
    }

    /// Adds an op to those it serves.
    pub fn serve_op(&self, op: Vec<u8>) {
        self.ops.lock().expect("lock").push(op);
    }

    /// Stops serving (the swarm is dropped with its task).
    pub fn stop(self) {
        self.task.abort();
    }
}

/// Starts the server, dials `victim` at `address`, and serves `responses` in order to its `GetEnvelopes`
/// requests for `doc`.
pub fn start(victim: PeerId, address: Multiaddr, doc: DocId, responses: Vec<Vec<u8>>) -> Server {
    let mut swarm = SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .expect("transport")
        .with_behaviour(|_| {
            request_response::Behaviour::with_codec(
                super::raw::RawCodec,
                [(StreamProtocol::new(SYNC_PROTOCOL), ProtocolSupport::Inbound)],
                request_response::Config::default(),
            )
        })
        .expect("behaviour")
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(600)))
        .build();
    let peer_id = *swarm.local_peer_id();
    swarm.dial(address).expect("dial");
    let queue = Arc::new(Mutex::new(VecDeque::from(responses)));
    let served = queue.clone();
    let ops: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let asked: Arc<Mutex<Vec<OpId>>> = Arc::default();
    let (gov, asked_log) = (ops.clone(), asked.clone());
    let task = tokio::spawn(async move {
        let empty = frame(&SyncResponse::Envelopes {
            envelopes: vec![],
            more: false,
        });
        loop {
            let SwarmEvent::Behaviour(request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
                ..
            }) = swarm.select_next_some().await
            else {
                continue;
            };
            let response = match SyncRequest::decode(&request) {
                Ok(SyncRequest::GetEnvelopes { doc: d, .. }) if d == doc && peer == victim => {
                    served
                        .lock()
                        .expect("lock")
                        .pop_front()
                        .unwrap_or_else(|| empty.clone())
                }
                Ok(SyncRequest::GetEnvelopes { .. }) => empty.clone(),
                Ok(SyncRequest::GovSince { .. }) => frame(&SyncResponse::Ops {
                    ops: gov.lock().expect("lock").clone(),
                    more: false,
                }),
                Ok(SyncRequest::GetOps { ids }) => {
                    asked_log.lock().expect("lock").extend(ids.iter().copied());
                    let ops = gov
                        .lock()
                        .expect("lock")
                        .iter()
                        .filter(|b| ids.contains(&OpId::of_bytes(b)))
                        .cloned()
                        .collect();
                    frame(&SyncResponse::Ops { ops, more: false })
                }
                Ok(SyncRequest::DocHeads { doc }) => {
                    frame(&SyncResponse::Heads { doc, heads: vec![] })
                }
                _ => frame(&SyncResponse::Refused {
                    reason: RefuseReason::NotAdmitted,
                }),
            };
            let _ = swarm.behaviour_mut().send_response(channel, response);
        }
    });
    Server {
        peer_id,
        queue,
        ops,
        asked,
        task,
    }
}

/// `n` well-signed inceptions of fresh organisations, each citing a parent nobody has: an orphan flood.
pub fn orphan_ops(fed: FederationId, n: u32) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let mut ghost = wsis_protocol::fixture::Org::new(
                5000 + u64::from(i),
                "Ghost",
                StakeholderType::Academia,
                None,
            );
            let mut parent = [0xEE; 32];
            parent[..4].copy_from_slice(&i.to_be_bytes());
            ghost
                .sign(
                    Some(fed),
                    &[OpId(parent)],
                    OpKind::OrgInception(ghost.inception.clone()),
                    0,
                )
                .bytes()
                .to_vec()
        })
        .collect()
}

/// `n` ops of an organisation the victim knows (`secret` is its key), each citing a parent nobody has: an orphan
/// flood that parks (since issue 11 an inception of an unknown organisation waits for admission instead, and ops of
/// unknown authors are refused without parking).
pub fn orphan_ops_of(
    fed: FederationId,
    org: wsis_protocol::ids::OrgId,
    secret: &wsis_protocol::crypto::SecretKey,
    n: u32,
) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let mut parent = [0xEE; 32];
            parent[..4].copy_from_slice(&i.to_be_bytes());
            wsis_protocol::op::OpBody {
                federation: Some(fed),
                author: org,
                key: secret.public(),
                seq: 1_000 + u64::from(i),
                parents: vec![OpId(parent)],
                timestamp_ms: 0,
                kind: OpKind::Attend {
                    meeting: OpId([0xDD; 32]),
                },
            }
            .seal(secret)
            .expect("a well-formed op")
            .bytes()
            .to_vec()
        })
        .collect()
}

/// `n` inceptions and bindings of fresh organisations nobody admitted, citing the genesis: an outsider's flood.
/// Seeds start at `seed` (distinct floods use distinct ranges).
pub fn outsider_ops(fed: FederationId, seed: u64, n: u32) -> Vec<Vec<u8>> {
    let genesis = OpId(fed.0);
    (0..u64::from(n))
        .flat_map(|i| {
            let mut o = wsis_protocol::fixture::Org::new(
                seed + i,
                "Outsider",
                StakeholderType::Academia,
                None,
            );
            let inception = o.sign(
                Some(fed),
                &[genesis],
                OpKind::OrgInception(o.inception.clone()),
                0,
            );
            let binding = o.sign(
                Some(fed),
                &[inception.id()],
                OpKind::BindNode {
                    peer_id: vec![0x42; 38],
                },
                0,
            );
            [inception.bytes().to_vec(), binding.bytes().to_vec()]
        })
        .collect()
}

/// Raw change-envelope bytes with the given signature, no checks at all: what a malicious node can send.
pub fn forge_envelope(
    header: &wsis_protocol::envelope::ChangeEnvelope,
    signature: &[u8],
    changes: &[&[u8]],
) -> Vec<u8> {
    let hb = header.encode();
    let mut e = wsis_protocol::cbor::Encoder::new();
    e.map(3);
    e.key(0).bytes(&hb);
    e.key(1).bytes(signature);
    e.key(2).array(changes.len());
    for c in changes {
        e.bytes(c);
    }
    e.into_bytes()
}
