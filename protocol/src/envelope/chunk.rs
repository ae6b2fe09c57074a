//! The Automerge chunk reader of stage 1: a small bounded reader of our own for the chunk framing (magic,
//! checksum, type, minimal LEB128 length) and the fields at the front of a change (dependencies, actor, seq),
//! so that no Automerge code runs on bytes before they are verified.

use crate::ids::Hash32;

/// The first four bytes of every Automerge chunk.
pub(super) const AUTOMERGE_MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
/// Automerge chunk types: 1 is an uncompressed change, 2 a deflate-compressed one.
pub(super) const CHUNK_TYPE_CHANGE: u8 = 1;
pub(super) const CHUNK_TYPE_COMPRESSED_CHANGE: u8 = 2;

/// Why an unsigned LEB128 number (Automerge's integer encoding) did not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Uleb128Error {
    CutOff,
    TooLarge,
    NonMinimal,
}

/// Reads an unsigned LEB128 number from the front of `input` with the rules of Automerge's own reader: at most
/// 64 bits, and minimal (no trailing zero byte after the first).
pub(super) fn read_uleb128(input: &mut &[u8]) -> Result<u64, Uleb128Error> {
    let mut value: u64 = 0;
    let mut shift = 0u32;
    loop {
        let (&b, rest) = input.split_first().ok_or(Uleb128Error::CutOff)?;
        *input = rest;
        // The tenth byte holds bit 63 only.
        if shift == 63 && b > 1 {
            return Err(Uleb128Error::TooLarge);
        }
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            if b == 0 && shift > 0 {
                return Err(Uleb128Error::NonMinimal);
            }
            return Ok(value);
        }
        shift += 7;
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
    let (magic, rest) = bytes
        .split_first_chunk::<4>()
        .ok_or("too short for an automerge chunk")?;
    if *magic != AUTOMERGE_MAGIC {
        return Err("not an automerge chunk");
    }
    let (checksum, hashed) = rest
        .split_first_chunk::<4>()
        .ok_or("too short for an automerge chunk")?;
    let (&chunk_type, mut rest) = hashed
        .split_first()
        .ok_or("too short for an automerge chunk")?;
    match chunk_type {
        CHUNK_TYPE_CHANGE => {}
        CHUNK_TYPE_COMPRESSED_CHANGE => return Err("compressed changes are not accepted"),
        _ => return Err("not a change chunk"),
    }
    let len = read_uleb128(&mut rest).map_err(|e| match e {
        Uleb128Error::CutOff => "chunk length is cut off",
        Uleb128Error::TooLarge => "chunk length is too large",
        Uleb128Error::NonMinimal => "chunk length is not minimally encoded",
    })?;
    if len != rest.len() as u64 {
        return Err("chunk length does not match the change bytes");
    }
    Ok(Chunk {
        checksum: *checksum,
        hashed,
        data: rest,
    })
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
