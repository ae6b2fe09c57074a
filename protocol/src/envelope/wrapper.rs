//! The signed CBOR wrapper: `map { 0: signed bytes, 1: signature, … }`, the outer form of every signed thing in
//! the protocol (a change envelope, a governance op, an inception record). One reader and one writer of its
//! front (and of the versioned body inside), so the three never drift apart; the envelope's own wrapper (with
//! its changes at key 2) is built on it.
//!
//! It lives beside the envelope because the envelope has the longest wrapper; `crate::op` reuses it.

use super::MAX_HEADER_BYTES;
use crate::cbor::{DecodeError, Decoder, Encoder, MapDecoder};
use crate::crypto::SIGNATURE_LEN;
use crate::limits::{MAX_CHANGES_PER_ENVELOPE, MAX_CHANGE_BYTES, MAX_MAP_ENTRIES};

/// The front of a signed wrapper, read strictly: the decoder and the map positioned after the signature, for
/// the caller to read its further entries and then `map.end()` and `decoder.finish()`.
pub(crate) struct SignedFront<'a> {
    pub(crate) decoder: Decoder<'a>,
    pub(crate) map: MapDecoder,
    /// Where the signed bytes (key 0) sit inside the wrapper.
    pub(crate) signed: (usize, usize),
    pub(crate) signature: [u8; SIGNATURE_LEN],
}

/// Reads `map { 0: signed bytes (at most `max_signed`, named `what` in errors), 1: signature, … }` with at most
/// `entries` entries, up to and including the signature.
pub(crate) fn read_signed_front<'a>(
    bytes: &'a [u8],
    entries: usize,
    what: &'static str,
    max_signed: usize,
) -> Result<SignedFront<'a>, DecodeError> {
    let mut d = Decoder::new(bytes);
    let mut m = d.map(entries)?;
    m.required(&mut d, 0)?;
    let signed = d.bytes(what, max_signed)?;
    let end = d.position();
    let signed = (end - signed.len(), end);
    m.required(&mut d, 1)?;
    let signature = d.fixed::<SIGNATURE_LEN>("signature")?;
    Ok(SignedFront {
        decoder: d,
        map: m,
        signed,
        signature,
    })
}

/// Writes the front of a signed wrapper with `entries` entries: the map head, the signed bytes and the signature.
/// The caller writes any further entries.
pub(crate) fn write_signed_front<'e>(
    e: &'e mut Encoder,
    entries: usize,
    signed: &[u8],
    signature: &[u8; SIGNATURE_LEN],
) -> &'e mut Encoder {
    e.map(entries).key(0).bytes(signed).key(1).bytes(signature)
}

/// Opens a signed body (`map { 0: version, … }`, at most [`MAX_MAP_ENTRIES`] entries) and checks its version:
/// the decoder and the map come back positioned after key 0.
pub(crate) fn open_versioned_body(
    bytes: &[u8],
    version: u64,
) -> Result<(Decoder<'_>, MapDecoder), DecodeError> {
    let mut d = Decoder::new(bytes);
    let mut m = d.map(MAX_MAP_ENTRIES)?;
    m.required(&mut d, 0)?;
    let v = d.u64()?;
    if v != version {
        return Err(DecodeError::UnknownVersion(v));
    }
    Ok((d, m))
}

/// The parts of an envelope's outer map: where the header bytes are, the signature, and where each raw change is.
pub(super) struct Wrapper {
    pub(super) header: (usize, usize),
    pub(super) signature: [u8; SIGNATURE_LEN],
    pub(super) changes: Vec<(usize, usize)>,
}

/// `map { 0: header bytes, 1: signature, 2: [change bytes] }`, strictly.
pub(super) fn decode_wrapper(bytes: &[u8]) -> Result<Wrapper, DecodeError> {
    let SignedFront {
        decoder: mut d,
        map: mut m,
        signed: header,
        signature,
    } = read_signed_front(bytes, 3, "envelope header", MAX_HEADER_BYTES)?;
    m.required(&mut d, 2)?;
    let changes = d.array_of("changes", MAX_CHANGES_PER_ENVELOPE, |d| {
        let change = d.bytes("change", MAX_CHANGE_BYTES)?;
        let end = d.position();
        Ok((end - change.len(), end))
    })?;
    m.end()?;
    d.finish()?;
    Ok(Wrapper {
        header,
        signature,
        changes,
    })
}
