//! A request-response codec for `/wsis/sync/1` without the honest codec's checks: what a malicious or broken
//! peer can put on the wire. Requests and responses are `Vec<u8>` written exactly as given; a request is read as
//! one length-prefixed frame (the bound is the protocol's, so the server side never allocates more), a response
//! as whatever bytes arrive until the stream closes.

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::request_response;
use libp2p::StreamProtocol;
use std::io;
use wsis_node::net::{MAX_REQUEST_FRAME_BYTES, MAX_RESPONSE_FRAME_BYTES};

/// The raw codec, used by a raw client (net tests) and a malicious sync server (federation tests).
#[derive(Clone, Default)]
pub struct RawCodec;

#[async_trait::async_trait]
impl request_response::Codec for RawCodec {
    type Protocol = StreamProtocol;
    /// Written as given; read back as the body of a request frame.
    type Request = Vec<u8>;
    /// Written as given; read back as every byte up to the end of the stream.
    type Response = Vec<u8>;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        let mut prefix = [0u8; 4];
        io.read_exact(&mut prefix).await?;
        let len = u32::from_be_bytes(prefix) as usize;
        if len > MAX_REQUEST_FRAME_BYTES {
            return Err(io::Error::other("request frame over the limit"));
        }
        let mut body = vec![0; len];
        io.read_exact(&mut body).await?;
        Ok(body)
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        let mut buf = Vec::new();
        io.take(MAX_RESPONSE_FRAME_BYTES as u64 + 8)
            .read_to_end(&mut buf)
            .await?;
        if buf.is_empty() {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(buf)
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        io.write_all(&req).await?;
        io.flush().await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        io.write_all(&res).await?;
        io.close().await
    }
}

/// A libp2p client speaking `/wsis/sync/1` through [`RawCodec`].
pub type RawSwarm = libp2p::Swarm<request_response::Behaviour<RawCodec>>;

/// A client with a fresh identity (a fresh peer id costs nothing) that speaks the sync protocol byte for byte.
pub fn raw_client() -> RawSwarm {
    use libp2p::{noise, tcp, yamux, SwarmBuilder};
    SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .expect("transport")
        .with_behaviour(|_| {
            request_response::Behaviour::with_codec(
                RawCodec,
                [(
                    StreamProtocol::new(wsis_node::net::SYNC_PROTOCOL),
                    request_response::ProtocolSupport::Outbound,
                )],
                request_response::Config::default(),
            )
        })
        .expect("behaviour")
        .with_swarm_config(|c| c.with_idle_connection_timeout(std::time::Duration::from_secs(60)))
        .build()
}

/// Pushes `ops` from `swarm` to `victim`, `per_push` per request, one request at a time, until a push is refused
/// or the victim stops answering (a ban). Returns the pushes answered.
pub async fn push_all(
    swarm: &mut RawSwarm,
    victim: libp2p::PeerId,
    ops: &[Vec<u8>],
    per_push: usize,
) -> usize {
    use futures::StreamExt;
    use libp2p::swarm::SwarmEvent;
    let mut answered = 0;
    for chunk in ops.chunks(per_push.max(1)) {
        let request = wsis_node::net::SyncRequest::Push {
            ops: chunk.to_vec(),
        };
        let bytes = super::frame(&request.encode().expect("encodes"));
        let id = swarm.behaviour_mut().send_request(&victim, bytes);
        let done = tokio::time::timeout(super::nodes::DEADLINE, async {
            loop {
                match swarm.select_next_some().await {
                    SwarmEvent::Behaviour(request_response::Event::Message {
                        message: request_response::Message::Response { request_id, .. },
                        ..
                    }) if request_id == id => return true,
                    SwarmEvent::Behaviour(request_response::Event::OutboundFailure {
                        request_id,
                        ..
                    }) if request_id == id => return false,
                    _ => {}
                }
            }
        })
        .await;
        match done {
            Ok(true) => answered += 1,
            // Refused or banned: the flood from this peer id is over.
            _ => break,
        }
    }
    answered
}
