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
