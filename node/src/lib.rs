//! # wsis-node
//!
//! A node of a WSIS federation: the organisation's identity and data directory ([`identity`]), durable storage on
//! sled ([`store`]), the verified Automerge document engine ([`engine`]) and libp2p networking ([`net`]).
pub mod api;
pub mod chair;
pub mod engine;
pub mod identity;
pub mod net;
pub mod runtime;
pub mod store;
