//! The body of the `wire` fuzz target (`fuzz/fuzz_targets/wire.rs`, run with `cargo fuzz`): every sync wire kind,
//! requests, responses and the gossip announcement, selected by the input's first byte.
//!
//! It lives here, not in the fuzz crate, so that the stable test `node/tests/fuzz_corpora.rs` replays every
//! committed corpus file through exactly the code the fuzzer ran (how CI checks the corpus without nightly). The
//! invariant, beyond "no panic": whatever decodes re-encodes, within the caps, to exactly the bytes it was decoded
//! from (one encoding per message, and this node never sends what it would refuse).
//!
//! Not production API (hidden from the documentation); compiled in because the fuzz crate and the replay test are
//! other crates.

use crate::net::wire::{Announce, SyncRequest, SyncResponse};

/// `0`: a [`SyncRequest`], `1`: a [`SyncResponse`], `2`: an [`Announce`] (the selector modulo 3), then the message.
pub fn wire(data: &[u8]) {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let encoded = match which % 3 {
        0 => SyncRequest::decode(rest).ok().map(|m| m.encode()),
        1 => SyncResponse::decode(rest).ok().map(|m| m.encode()),
        _ => Announce::decode(rest).ok().map(|m| m.encode()),
    };
    match encoded {
        None => {}
        Some(Ok(bytes)) => assert_eq!(bytes, rest, "wire message {which} not canonical"),
        Some(Err(e)) => panic!("a decoded wire message {which} does not re-encode: {e}"),
    }
}
