//! # wsis-protocol
//!
//! The pure core of the WSIS federation: identifiers, the canonical encoding, signed governance ops, the
//! deterministic replay that turns a set of ops into a [`GovState`], verified change envelopes for content
//! documents, and the stocktaking view. No I/O, no clock, no async runtime: callers pass bytes and time in.
pub mod bundle;
pub mod cbor;
pub mod chunk_cost;
pub mod crypto;
pub mod envelope;
pub mod export;
pub mod fixture;
pub mod gov;
pub mod ids;
pub mod limits;
pub mod op;
pub mod reference;
pub mod report;
pub mod view;
