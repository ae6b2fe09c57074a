//! Framing for `/wsis/sync/1`: one length-prefixed frame per stream direction.
//!
//! A frame is a 4-byte big-endian length followed by that many bytes of canonical CBOR. The length is checked
//! against the direction's limit ([`MAX_REQUEST_FRAME_BYTES`], [`MAX_RESPONSE_FRAME_BYTES`]) **before** anything is
//! allocated, and the buffer then grows only as bytes actually arrive, so a peer that announces a large frame and
//! sends nothing costs nothing (trust-model case 42). After the frame the sender closes its side; anything more is
//! an error too.
//!
//! A frame that is the peer's fault (over the limit, trailing bytes, malformed CBOR) is read as
//! [`Wire::Invalid`] rather than an error, because libp2p's request-response behaviour does not report a failed
//! read of a request to the application, and the network must know which peer to penalise. A stream that merely
//! breaks (truncated frame, reset) is an `io::Error`, not counted against the peer.

use std::io;

use async_trait::async_trait;
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use wsis_protocol::cbor::DecodeError;

use super::wire::{
    EncodeError, SyncRequest, SyncResponse, MAX_REQUEST_FRAME_BYTES, MAX_RESPONSE_FRAME_BYTES,
    SYNC_PROTOCOL,
};

/// The length prefix's size.
pub const FRAME_PREFIX_BYTES: usize = 4;
/// The buffer reserved up front for a frame body; it grows with the bytes received, up to the frame's length.
const INITIAL_FRAME_CAPACITY: usize = 16 * 1024;

/// Why a frame was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    TooLarge { len: u64, max: usize },
    #[error("frame ends after {got} of {expected} bytes")]
    Truncated { expected: usize, got: usize },
    #[error("bytes follow the frame")]
    TrailingBytes,
    #[error("malformed message")]
    Decode(#[source] DecodeError),
    #[error("message cannot be encoded")]
    Encode(#[source] EncodeError),
}

impl FrameError {
    fn into_io(self) -> io::Error {
        let kind = match self {
            FrameError::Truncated { .. } => io::ErrorKind::UnexpectedEof,
            FrameError::Encode(_) => io::ErrorKind::InvalidInput,
            _ => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, self)
    }

    /// Whether this error is the remote's fault (a malformed or oversized frame, or bytes after it), as opposed to
    /// ours or a broken stream's.
    pub fn is_peer_fault(&self) -> bool {
        matches!(
            self,
            FrameError::TooLarge { .. } | FrameError::TrailingBytes | FrameError::Decode(_)
        )
    }
}

/// The [`FrameError`] inside an I/O error from this codec, if there is one.
pub fn frame_error(e: &io::Error) -> Option<&FrameError> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<FrameError>())
}

/// Reads one frame of at most `max` bytes. The length is checked before any allocation.
pub async fn read_frame<R>(io: &mut R, max: usize) -> io::Result<Vec<u8>>
where
    R: AsyncRead + Unpin + Send,
{
    let mut prefix = [0u8; FRAME_PREFIX_BYTES];
    io.read_exact(&mut prefix).await?;
    let len = u64::from(u32::from_be_bytes(prefix));
    if len > max as u64 {
        return Err(FrameError::TooLarge { len, max }.into_io());
    }
    // `len <= max`, a usize, so this cannot truncate.
    let expected = len as usize;
    let mut buf = Vec::with_capacity(expected.min(INITIAL_FRAME_CAPACITY));
    AsyncReadExt::take(&mut *io, len)
        .read_to_end(&mut buf)
        .await?;
    if buf.len() != expected {
        return Err(FrameError::Truncated {
            expected,
            got: buf.len(),
        }
        .into_io());
    }
    Ok(buf)
}

/// Fails if the remote sends anything after its frame (it must close its side instead).
pub async fn expect_end<R>(io: &mut R) -> io::Result<()>
where
    R: AsyncRead + Unpin + Send,
{
    let mut probe = [0u8; 1];
    match io.read(&mut probe).await? {
        0 => Ok(()),
        _ => Err(FrameError::TrailingBytes.into_io()),
    }
}

/// Writes one frame of at most `max` bytes.
pub async fn write_frame<W>(io: &mut W, bytes: &[u8], max: usize) -> io::Result<()>
where
    W: AsyncWrite + Unpin + Send,
{
    let len = u32::try_from(bytes.len())
        .ok()
        .filter(|len| *len as usize <= max)
        .ok_or_else(|| {
            FrameError::Encode(EncodeError::TooLarge {
                what: "frame",
                len: bytes.len(),
                max,
            })
            .into_io()
        })?;
    io.write_all(&len.to_be_bytes()).await?;
    io.write_all(bytes).await?;
    io.flush().await
}

/// A message on the wire: outgoing ones are encoded (and size-checked) by the network task before they are queued,
/// so an over-limit message is refused locally; incoming ones arrive decoded, with their size for accounting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wire<T> {
    /// Canonical bytes to send.
    Outgoing(Vec<u8>),
    /// A strictly decoded message and the size of its frame (prefix included).
    Incoming { msg: T, wire_bytes: usize },
    /// A frame the peer got wrong, and the bytes read of it. Never sent.
    Invalid {
        error: FrameError,
        wire_bytes: usize,
    },
}

trait Message: Sized {
    const MAX_FRAME: usize;
    fn encode(&self) -> Result<Vec<u8>, EncodeError>;
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError>;
}

impl Message for SyncRequest {
    const MAX_FRAME: usize = MAX_REQUEST_FRAME_BYTES;
    fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        SyncRequest::encode(self)
    }
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        SyncRequest::decode(bytes)
    }
}

impl Message for SyncResponse {
    const MAX_FRAME: usize = MAX_RESPONSE_FRAME_BYTES;
    fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        SyncResponse::encode(self)
    }
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        SyncResponse::decode(bytes)
    }
}

async fn read_message<T: Message, R>(io: &mut R) -> io::Result<Wire<T>>
where
    R: AsyncRead + Unpin + Send,
{
    fn invalid<T>(e: io::Error, wire_bytes: usize) -> io::Result<Wire<T>> {
        match frame_error(&e) {
            Some(error) if error.is_peer_fault() => Ok(Wire::Invalid {
                error: error.clone(),
                wire_bytes,
            }),
            _ => Err(e),
        }
    }
    let bytes = match read_frame(io, T::MAX_FRAME).await {
        Ok(bytes) => bytes,
        Err(e) => return invalid(e, FRAME_PREFIX_BYTES),
    };
    let wire_bytes = bytes.len() + FRAME_PREFIX_BYTES;
    if let Err(e) = expect_end(io).await {
        return invalid(e, wire_bytes);
    }
    Ok(match T::decode(&bytes) {
        Ok(msg) => Wire::Incoming { msg, wire_bytes },
        Err(e) => Wire::Invalid {
            error: FrameError::Decode(e),
            wire_bytes,
        },
    })
}

async fn write_message<T: Message, W>(io: &mut W, wire: Wire<T>) -> io::Result<()>
where
    W: AsyncWrite + Unpin + Send,
{
    let bytes = match wire {
        Wire::Outgoing(bytes) => bytes,
        Wire::Incoming { msg, .. } => msg.encode().map_err(|e| FrameError::Encode(e).into_io())?,
        Wire::Invalid { .. } => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "an invalid frame is never sent",
            ))
        }
    };
    write_frame(io, &bytes, T::MAX_FRAME).await
}

/// The request-response codec of `/wsis/sync/1`.
#[derive(Debug, Clone, Default)]
pub struct SyncCodec;

impl SyncCodec {
    /// The protocol name as libp2p negotiates it.
    pub fn protocol() -> StreamProtocol {
        StreamProtocol::new(SYNC_PROTOCOL)
    }
}

#[async_trait]
impl libp2p::request_response::Codec for SyncCodec {
    type Protocol = StreamProtocol;
    type Request = Wire<SyncRequest>;
    type Response = Wire<SyncResponse>;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Self::Request>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_message(io).await
    }

    async fn read_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Self::Response>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_message(io).await
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Self::Request,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_message(io, req).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        resp: Self::Response,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_message(io, resp).await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::net::wire::RefuseReason;
    use futures::executor::block_on;
    use futures::io::Cursor;
    use libp2p::request_response::Codec;

    fn framed(payload: &[u8]) -> Vec<u8> {
        let mut out = (payload.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(payload);
        out
    }

    fn read_req(bytes: Vec<u8>) -> io::Result<Wire<SyncRequest>> {
        let mut io = Cursor::new(bytes);
        block_on(SyncCodec.read_request(&SyncCodec::protocol(), &mut io))
    }

    fn read_resp(bytes: Vec<u8>) -> io::Result<Wire<SyncResponse>> {
        let mut io = Cursor::new(bytes);
        block_on(SyncCodec.read_response(&SyncCodec::protocol(), &mut io))
    }

    fn fault(e: &io::Error) -> FrameError {
        frame_error(e).cloned().unwrap()
    }

    /// The error of a frame read as [`Wire::Invalid`].
    fn invalid<T: std::fmt::Debug>(wire: io::Result<Wire<T>>) -> FrameError {
        match wire {
            Ok(Wire::Invalid { error, .. }) => error,
            other => panic!("expected an invalid frame, got {other:?}"),
        }
    }

    #[test]
    fn every_message_round_trips_through_the_codec() {
        for req in crate::net::wire::tests::all_requests() {
            let mut out = Cursor::new(Vec::new());
            let wire = Wire::Outgoing(req.encode().unwrap());
            block_on(SyncCodec.write_request(&SyncCodec::protocol(), &mut out, wire)).unwrap();
            let bytes = out.into_inner();
            let len = bytes.len();
            assert_eq!(
                read_req(bytes).unwrap(),
                Wire::Incoming {
                    msg: req,
                    wire_bytes: len
                }
            );
        }
        for resp in crate::net::wire::tests::all_responses() {
            let mut out = Cursor::new(Vec::new());
            // The decoded form is re-encoded on write.
            let wire = Wire::Incoming {
                msg: resp.clone(),
                wire_bytes: 0,
            };
            block_on(SyncCodec.write_response(&SyncCodec::protocol(), &mut out, wire)).unwrap();
            let bytes = out.into_inner();
            let len = bytes.len();
            assert_eq!(
                read_resp(bytes).unwrap(),
                Wire::Incoming {
                    msg: resp,
                    wire_bytes: len
                }
            );
        }
    }

    #[test]
    fn an_over_limit_length_is_refused_before_reading_the_body() {
        for len in [MAX_REQUEST_FRAME_BYTES as u32 + 1, u32::MAX] {
            // Only the prefix is there: a reader that waited for (or allocated) the body would fail differently.
            let mut io = Cursor::new(len.to_be_bytes().to_vec());
            let e = block_on(read_frame(&mut io, MAX_REQUEST_FRAME_BYTES)).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidData);
            assert_eq!(
                fault(&e),
                FrameError::TooLarge {
                    len: u64::from(len),
                    max: MAX_REQUEST_FRAME_BYTES
                }
            );
            assert_eq!(
                io.position(),
                FRAME_PREFIX_BYTES as u64,
                "nothing read past the prefix"
            );
        }
        // The same through the codec, which reports the peer's fault as an invalid frame: a request frame one byte
        // over the request limit, body present; a response prefix over the response limit.
        let wire = read_req(framed(&vec![0; MAX_REQUEST_FRAME_BYTES + 1]));
        assert!(matches!(
            wire,
            Ok(Wire::Invalid {
                error: FrameError::TooLarge { .. },
                wire_bytes: FRAME_PREFIX_BYTES
            })
        ));
        let mut prefix = (MAX_RESPONSE_FRAME_BYTES as u32 + 1).to_be_bytes().to_vec();
        prefix.push(0);
        assert!(matches!(
            invalid(read_resp(prefix)),
            FrameError::TooLarge { .. }
        ));
        // Exactly at the limit is a frame (it then fails to decode, being zeros).
        assert!(matches!(
            invalid(read_req(framed(&vec![0; MAX_REQUEST_FRAME_BYTES]))),
            FrameError::Decode(_)
        ));
    }

    #[test]
    fn writing_an_over_limit_frame_is_refused_locally() {
        let mut out = Cursor::new(Vec::new());
        let wire = Wire::Outgoing(vec![0; MAX_REQUEST_FRAME_BYTES + 1]);
        let e =
            block_on(SyncCodec.write_request(&SyncCodec::protocol(), &mut out, wire)).unwrap_err();
        assert!(!fault(&e).is_peer_fault());
        assert!(out.into_inner().is_empty(), "nothing written");
    }

    #[test]
    fn truncated_frames_are_stream_errors_not_peer_faults() {
        let bytes = framed(
            &SyncResponse::Refused {
                reason: RefuseReason::Busy,
            }
            .encode()
            .unwrap(),
        );
        for cut in 0..bytes.len() {
            let e = read_resp(bytes[..cut].to_vec()).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "cut {cut}");
            assert!(frame_error(&e).is_none_or(|f| !f.is_peer_fault()));
        }
        // A frame that promises more than the stream holds.
        let mut short = 100u32.to_be_bytes().to_vec();
        short.extend_from_slice(&[0; 10]);
        assert_eq!(
            fault(&read_req(short).unwrap_err()),
            FrameError::Truncated {
                expected: 100,
                got: 10
            }
        );
    }

    #[test]
    fn trailing_bytes_after_the_frame_or_inside_it_are_invalid() {
        let payload = SyncRequest::DocHeads {
            doc: wsis_protocol::ids::DocId([3; 32]),
        }
        .encode()
        .unwrap();
        let mut after = framed(&payload);
        after.push(0);
        assert_eq!(invalid(read_req(after)), FrameError::TrailingBytes);

        let mut inside = payload.clone();
        inside.push(0);
        assert!(matches!(
            invalid(read_req(framed(&inside))),
            FrameError::Decode(DecodeError::TrailingBytes { count: 1 })
        ));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for len in 0..200usize {
            let body: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            // Random bytes are (almost surely) not a message; whatever they are, reading them returns.
            assert!(
                !matches!(read_req(framed(&body)), Err(ref e) if frame_error(e).is_some_and(|f| f.is_peer_fault()))
            );
            let _ = read_resp(framed(&body));
            let _ = crate::net::wire::Announce::decode(&body);
        }
    }
}
