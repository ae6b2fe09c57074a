//! The Automerge chunk reader of stage 1: a small bounded reader of our own for the chunk framing (magic,
//! checksum, type, minimal LEB128 length) and the fields at the front of a change (dependencies, actor, seq),
//! so that no Automerge code runs on bytes before they are verified. Its readers return errors, never panic, on
//! any input; [`crate::chunk_cost`] reads its columns with the same LEB128 and framing readers.

use crate::ids::Hash32;

/// The first four bytes of every Automerge chunk.
pub(crate) const AUTOMERGE_MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
/// Automerge chunk types: 0 is a document, 1 an uncompressed change, 2 a deflate-compressed change.
pub(crate) const CHUNK_TYPE_DOCUMENT: u8 = 0;
pub(super) const CHUNK_TYPE_CHANGE: u8 = 1;
pub(super) const CHUNK_TYPE_COMPRESSED_CHANGE: u8 = 2;

/// Why a LEB128 number (Automerge's integer encoding) did not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Leb128Error {
    CutOff,
    TooLarge,
    NonMinimal,
}

/// Reads an unsigned LEB128 number from the front of `input` with the rules of Automerge's own reader: at most
/// 64 bits, and minimal (no trailing zero byte after the first).
pub(crate) fn read_uleb128(input: &mut &[u8]) -> Result<u64, Leb128Error> {
    let mut value: u64 = 0;
    let mut shift = 0u32;
    loop {
        let (&b, rest) = input.split_first().ok_or(Leb128Error::CutOff)?;
        *input = rest;
        // The tenth byte holds bit 63 only.
        if shift == 63 && b > 1 {
            return Err(Leb128Error::TooLarge);
        }
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            if b == 0 && shift > 0 {
                return Err(Leb128Error::NonMinimal);
            }
            return Ok(value);
        }
        shift += 7;
    }
}

/// Reads a signed LEB128 number from the front of `input`: at most 64 bits, and minimal (no trailing byte that
/// only repeats the sign).
pub(crate) fn read_sleb128(input: &mut &[u8]) -> Result<i64, Leb128Error> {
    let mut value: i64 = 0;
    let mut shift = 0u32;
    let mut prev: u8 = 0;
    loop {
        let (&b, rest) = input.split_first().ok_or(Leb128Error::CutOff)?;
        *input = rest;
        if shift == 63 {
            // The tenth byte holds only the sign: 0x00 for positive, 0x7f for negative numbers.
            if b != 0 && b != 0x7f {
                return Err(Leb128Error::TooLarge);
            }
        }
        value |= i64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            if shift > 0 && ((b == 0 && prev & 0x40 == 0) || (b == 0x7f && prev & 0x40 != 0)) {
                return Err(Leb128Error::NonMinimal);
            }
            shift += 7;
            if shift < 64 && b & 0x40 != 0 {
                value |= -1i64 << shift;
            }
            return Ok(value);
        }
        prev = b;
        shift += 7;
    }
}

/// Why the front of an Automerge chunk did not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FrameError {
    /// Fewer bytes than the magic, the checksum and the type.
    CutOff,
    /// The first four bytes are not the Automerge magic.
    NotAutomerge,
    /// The data length did not read.
    Length(Leb128Error),
    /// The data length claims more bytes than there are.
    PastEnd,
    /// Bytes remain after the data the length covers.
    BytesAfter,
}

/// The front of an Automerge chunk: the magic (checked), the checksum and the chunk type.
pub(crate) struct ChunkHead<'a> {
    pub(crate) checksum: [u8; 4],
    pub(crate) chunk_type: u8,
    /// Everything after the checksum: the type byte, the length and the data (what the Automerge hash covers).
    pub(crate) hashed: &'a [u8],
    /// Everything after the type byte: the length and the data, for [`chunk_data`].
    pub(crate) rest: &'a [u8],
}

/// Reads the magic, the checksum and the chunk type from the front of `bytes`. The caller decides on the type
/// before it reads the length ([`chunk_data`]).
pub(crate) fn chunk_head(bytes: &[u8]) -> Result<ChunkHead<'_>, FrameError> {
    let (magic, rest) = bytes.split_first_chunk::<4>().ok_or(FrameError::CutOff)?;
    if *magic != AUTOMERGE_MAGIC {
        return Err(FrameError::NotAutomerge);
    }
    let (checksum, hashed) = rest.split_first_chunk::<4>().ok_or(FrameError::CutOff)?;
    let (&chunk_type, rest) = hashed.split_first().ok_or(FrameError::CutOff)?;
    Ok(ChunkHead {
        checksum: *checksum,
        chunk_type,
        hashed,
        rest,
    })
}

/// Reads the minimal LEB128 data length from the front of `rest` ([`ChunkHead::rest`]) and returns the data,
/// which must be exactly the bytes that follow it.
pub(crate) fn chunk_data(mut rest: &[u8]) -> Result<&[u8], FrameError> {
    let len = read_uleb128(&mut rest).map_err(FrameError::Length)?;
    match len.cmp(&(rest.len() as u64)) {
        std::cmp::Ordering::Greater => Err(FrameError::PastEnd),
        std::cmp::Ordering::Less => Err(FrameError::BytesAfter),
        std::cmp::Ordering::Equal => Ok(rest),
    }
}

/// A change chunk whose framing passed [`check_chunk_framing`].
pub(super) struct Chunk<'a> {
    pub(super) checksum: [u8; 4],
    /// What the Automerge hash covers: the chunk type byte, the length and the data.
    pub(super) hashed: &'a [u8],
    /// The change itself, after the length.
    pub(super) data: &'a [u8],
}

/// Checks the Automerge chunk framing before anything reads the change: the magic bytes, an **uncompressed**
/// change chunk (a compressed one would have to be inflated before any check, and many compressions of one
/// change have the same hash), and a minimal LEB128 length that covers exactly the rest of the bytes.
pub(super) fn check_chunk_framing(bytes: &[u8]) -> Result<Chunk<'_>, &'static str> {
    let head = chunk_head(bytes).map_err(frame_reason)?;
    match head.chunk_type {
        CHUNK_TYPE_CHANGE => {}
        CHUNK_TYPE_COMPRESSED_CHANGE => return Err("compressed changes are not accepted"),
        _ => return Err("not a change chunk"),
    }
    let data = chunk_data(head.rest).map_err(frame_reason)?;
    Ok(Chunk {
        checksum: head.checksum,
        hashed: head.hashed,
        data,
    })
}

/// The reason stage 1 gives for a framing error.
fn frame_reason(e: FrameError) -> &'static str {
    match e {
        FrameError::CutOff => "too short for an automerge chunk",
        FrameError::NotAutomerge => "not an automerge chunk",
        FrameError::Length(Leb128Error::CutOff) => "chunk length is cut off",
        FrameError::Length(Leb128Error::TooLarge) => "chunk length is too large",
        FrameError::Length(Leb128Error::NonMinimal) => "chunk length is not minimally encoded",
        FrameError::PastEnd | FrameError::BytesAfter => {
            "chunk length does not match the change bytes"
        }
    }
}

/// The fields at the front of a change's data in Automerge's binary format, read without Automerge: the
/// dependencies (a count, then 32-byte hashes), the actor (a length, then its bytes) and the seq. Reading stops
/// there; the ops are left to Automerge in stage 2. Nothing is allocated beyond what the bytes hold.
pub(super) fn read_change_prefix(
    mut data: &[u8],
) -> Result<(Vec<Hash32>, &[u8], u64), &'static str> {
    let count = read_uleb128(&mut data).map_err(|_| "malformed dependency count")?;
    if count > (data.len() / 32) as u64 {
        return Err("dependencies are cut off");
    }
    let mut deps = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let (hash, rest) = data
            .split_first_chunk::<32>()
            .ok_or("dependencies are cut off")?;
        deps.push(Hash32(*hash));
        data = rest;
    }
    let len = read_uleb128(&mut data).map_err(|_| "malformed actor id length")?;
    if len > data.len() as u64 {
        return Err("actor id is cut off");
    }
    let (actor, mut data) = data.split_at(len as usize);
    let seq = read_uleb128(&mut data).map_err(|_| "malformed seq")?;
    Ok((deps, actor, seq))
}
