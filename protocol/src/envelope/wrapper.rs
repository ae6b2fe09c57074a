//! The outer map of a signed envelope: where the header bytes are, the signature, and where each raw change is.

use super::MAX_HEADER_BYTES;
use crate::cbor::{DecodeError, Decoder};
use crate::crypto::SIGNATURE_LEN;
use crate::limits::{MAX_CHANGES_PER_ENVELOPE, MAX_CHANGE_BYTES};

/// The parts of the outer map: where the header bytes are, the signature, and where each raw change is.
pub(super) struct Wrapper {
    pub(super) header: (usize, usize),
    pub(super) signature: [u8; SIGNATURE_LEN],
    pub(super) changes: Vec<(usize, usize)>,
}

/// `map { 0: header bytes, 1: signature, 2: [change bytes] }`, strictly.
pub(super) fn decode_wrapper(bytes: &[u8]) -> Result<Wrapper, DecodeError> {
    let mut d = Decoder::new(bytes);
    let mut m = d.map(3)?;
    m.required(&mut d, 0)?;
    let header = d.bytes("envelope header", MAX_HEADER_BYTES)?;
    let header_end = d.position();
    let header = (header_end - header.len(), header_end);
    m.required(&mut d, 1)?;
    let signature = d.fixed::<SIGNATURE_LEN>("signature")?;
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
