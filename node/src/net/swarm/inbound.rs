//! What peers send the swarm task: sync requests and responses, and gossip announcements. Each is decoded,
//! counted, checked (a response must answer its request) and handed to the application or to the requester;
//! a malformed one is penalised.

use std::io;

use libp2p::gossipsub::{self, MessageAcceptance, MessageId};
use libp2p::request_response;
use libp2p::PeerId;

use super::Task;
use crate::net::codec::{frame_error, Wire};
use crate::net::config::MAX_PENDING_INBOUND_PER_PEER;
use crate::net::error::RequestError;
use crate::net::event::{ChannelId, NetEvent};
use crate::net::wire::{Announce, RefuseReason, SyncRequest, SyncResponse};

impl Task {
    pub(super) fn on_sync(
        &mut self,
        event: request_response::Event<Wire<SyncRequest>, Wire<SyncResponse>>,
    ) {
        use request_response::{Event, Message};
        match event {
            Event::Message {
                peer,
                message:
                    Message::Request {
                        request_id,
                        request,
                        channel,
                    },
                ..
            } => {
                let (msg, wire_bytes) = match request {
                    Wire::Incoming { msg, wire_bytes } => (msg, wire_bytes),
                    Wire::Invalid { error, wire_bytes } => {
                        // Dropping the channel closes the stream without an answer.
                        self.count_in(peer, wire_bytes, |s| s.requests_in += 1);
                        self.penalise(peer, &format!("bad request frame: {error}"));
                        return;
                    }
                    Wire::Outgoing(_) => return,
                };
                self.count_in(peer, wire_bytes, |s| s.requests_in += 1);
                tracing::debug!(%peer, request = msg.kind_name(), %request_id, "sync request received");
                if !self.serving {
                    self.answer_no_genesis(peer, channel);
                    return;
                }
                // One peer may not hold more than its share of the application's attention: each pending answer
                // can hold a response page, and one peer's flood must leave room for the others.
                let of_peer = self
                    .pending_inbound
                    .values()
                    .filter(|(p, _)| *p == peer)
                    .count();
                if of_peer >= MAX_PENDING_INBOUND_PER_PEER {
                    tracing::debug!(%peer, of_peer, "peer has too many requests pending; refusing as busy");
                    self.send_busy(peer, channel);
                    return;
                }
                if self.pending_inbound.len() >= self.config.max_pending_inbound {
                    self.refuse_busy(peer, channel);
                    return;
                }
                let channel_id = ChannelId(request_id);
                if self.emit(NetEvent::InboundRequest {
                    peer,
                    request: msg,
                    channel_id,
                }) {
                    self.pending_inbound.insert(request_id, (peer, channel));
                } else {
                    self.refuse_busy(peer, channel);
                }
            }
            Event::Message {
                peer,
                message:
                    Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                let Some(pending) = self.pending_outbound.remove(&request_id) else {
                    return;
                };
                let (msg, wire_bytes) = match response {
                    Wire::Incoming { msg, wire_bytes } => (msg, wire_bytes),
                    Wire::Invalid { error, wire_bytes } => {
                        self.count_in(peer, wire_bytes, |_| {});
                        self.penalise(peer, &format!("bad response frame: {error}"));
                        let _ = pending.reply.send(Err(RequestError::Malformed(error)));
                        return;
                    }
                    Wire::Outgoing(_) => {
                        let _ = pending.reply.send(Err(RequestError::Io(io::Error::other(
                            "codec returned an outgoing frame",
                        ))));
                        return;
                    }
                };
                self.count_in(peer, wire_bytes, |_| {});
                let result = if pending.expect.accepts(&msg) {
                    tracing::debug!(%peer, response = msg.kind_name(), %request_id, "sync response received");
                    Ok(msg)
                } else {
                    self.penalise(peer, "response does not answer the request");
                    Err(RequestError::UnexpectedResponse {
                        request: pending.expect.name(),
                        got: msg.kind_name(),
                    })
                };
                let _ = pending.reply.send(result);
            }
            Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                let Some(pending) = self.pending_outbound.remove(&request_id) else {
                    return;
                };
                debug_assert_eq!(pending.peer, peer);
                tracing::debug!(%peer, %request_id, %error, "sync request failed");
                let error = match error {
                    request_response::OutboundFailure::DialFailure => RequestError::DialFailure,
                    request_response::OutboundFailure::Timeout => RequestError::Timeout,
                    request_response::OutboundFailure::ConnectionClosed => {
                        RequestError::ConnectionClosed
                    }
                    request_response::OutboundFailure::UnsupportedProtocols => {
                        RequestError::UnsupportedProtocol
                    }
                    request_response::OutboundFailure::Io(e) => match frame_error(&e) {
                        Some(fault) if fault.is_peer_fault() => {
                            let fault = fault.clone();
                            self.penalise(peer, &format!("bad response frame: {fault}"));
                            RequestError::Malformed(fault)
                        }
                        _ => RequestError::Io(e),
                    },
                };
                let _ = pending.reply.send(Err(error));
            }
            Event::InboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                self.pending_inbound.remove(&request_id);
                match &error {
                    request_response::InboundFailure::Io(e) => match frame_error(e) {
                        Some(fault) if fault.is_peer_fault() => {
                            let reason = format!("bad request frame: {fault}");
                            self.penalise(peer, &reason);
                        }
                        _ => {
                            tracing::debug!(%peer, %request_id, %error, "inbound sync stream failed")
                        }
                    },
                    _ => tracing::debug!(%peer, %request_id, %error, "inbound sync request failed"),
                }
            }
            Event::ResponseSent {
                peer, request_id, ..
            } => {
                tracing::trace!(%peer, %request_id, "sync response sent");
            }
        }
    }

    fn refuse_busy(
        &mut self,
        peer: PeerId,
        channel: request_response::ResponseChannel<Wire<SyncResponse>>,
    ) {
        tracing::warn!(%peer, "application behind; refusing request as busy");
        self.send_busy(peer, channel);
    }

    fn send_busy(
        &mut self,
        peer: PeerId,
        channel: request_response::ResponseChannel<Wire<SyncResponse>>,
    ) {
        let busy = SyncResponse::Refused {
            reason: RefuseReason::Busy,
        };
        if let Ok(bytes) = busy.encode() {
            self.send_response(peer, channel, bytes);
        }
    }

    /// Answers at once that this node has no replica yet (see [`NetConfig::serve_from_start`]), so the requester
    /// asks someone else now rather than after its timeout.
    ///
    /// [`NetConfig::serve_from_start`]: crate::net::NetConfig::serve_from_start
    fn answer_no_genesis(
        &mut self,
        peer: PeerId,
        channel: request_response::ResponseChannel<Wire<SyncResponse>>,
    ) {
        tracing::debug!(%peer, "no replica yet; answering no-genesis");
        if let Ok(bytes) = SyncResponse::NoGenesis.encode() {
            self.send_response(peer, channel, bytes);
        }
    }

    pub(super) fn on_gossip(&mut self, event: gossipsub::Event) {
        match event {
            gossipsub::Event::Message {
                propagation_source: peer,
                message_id,
                message,
            } => {
                self.count_in(peer, message.data.len(), |s| s.announcements_in += 1);
                if message.topic != self.topic.hash() {
                    self.report(&message_id, &peer, MessageAcceptance::Ignore);
                    return;
                }
                match Announce::decode(&message.data) {
                    Err(e) => {
                        tracing::debug!(%peer, error = %e, "malformed announcement");
                        self.report(&message_id, &peer, MessageAcceptance::Reject);
                        self.penalise(peer, "malformed announcement");
                    }
                    Ok(msg) => {
                        let event = NetEvent::Announcement {
                            peer,
                            source: message.source,
                            msg,
                            message_id: message_id.clone(),
                        };
                        if !self.emit(event) {
                            self.report(&message_id, &peer, MessageAcceptance::Ignore);
                        }
                    }
                }
            }
            gossipsub::Event::Subscribed { peer_id, topic } => {
                tracing::debug!(peer = %peer_id, %topic, "peer subscribed");
            }
            gossipsub::Event::GossipsubNotSupported { peer_id } => {
                tracing::debug!(peer = %peer_id, "peer does not speak gossipsub");
            }
            gossipsub::Event::SlowPeer { peer_id, .. } => {
                tracing::debug!(peer = %peer_id, "slow gossip peer");
            }
            _ => {}
        }
    }

    fn report(&mut self, id: &MessageId, peer: &PeerId, acceptance: MessageAcceptance) {
        self.swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(id, peer, acceptance);
    }
}
