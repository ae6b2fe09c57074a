//! # wsis-protocol
//!
//! The pure core of the WSIS federation: everything two nodes, or a node and an offline verifier, must agree on
//! byte for byte. No I/O, no clock, no async runtime (`tests/purity.rs` holds the crate to that): callers pass
//! bytes and time in, and get values and typed errors back. The node (`wsis-node`) adds storage, networking and
//! the API around it.
//!
//! ## The main types
//!
//! - Identifiers ([`ids`]): [`FederationId`], [`OrgId`], [`OpId`], [`DocId`], [`EnvelopeId`], each the SHA-256 of
//!   the signed bytes it names, so an id cannot be claimed for other content.
//! - Governance ([`op`], [`gov`]): an organisation signs a [`SignedOp`] (an [`OpBody`] whose [`OpKind`] says what
//!   it does: admit a member, nominate a coordinator, vote, submit a document…); a [`Governance`] replica holds the
//!   op DAG of one federation and replays it deterministically, so that every replica with the same ops reaches
//!   the same state, whatever order they arrived in.
//! - Content ([`envelope`]): a change to a content document (an Automerge document) travels as a
//!   [`SignedEnvelope`], verified in two stages: [`VerifiedHeader`] without running Automerge, then the changes.
//! - The year's record ([`view`], [`bundle`], [`report`]): the [`StocktakeView`] of a year, and the Chair's signed
//!   bundle of it, which anyone can check offline with [`verify_bundle`].
//!
//! ## A flow
//!
//! An op is signed, a replica replays it: the replica starts from the genesis (whose hash is the federation id,
//! pinned by whoever starts the replica) and each op is verified, then inserted. The example builds a small
//! federation with the test fixture and replays its ops on a fresh replica, as a node does with ops from a peer:
//!
//! ```
//! use wsis_protocol::fixture::World;
//! use wsis_protocol::{Governance, Inserted, SignedOp};
//!
//! let mut w = World::wsis(); // a federation whose secretariat is ITU and UNESCO
//! let apc = w.add_org("APC", "civil-society", None); // publishes its signed inception record
//! let admit = w.admit(apc); // the secretariat signs an Admit op naming that inception
//!
//! let mut replica = Governance::from_genesis_bytes(w.log[0].bytes(), &w.federation)?;
//! let [inception, admit_bytes] = [&w.log[1], &w.log[2]].map(SignedOp::bytes);
//! // Strict decoding, then the signature. Not admitted yet: the inception waits outside the DAG…
//! let op = SignedOp::decode(inception)?.verify()?;
//! assert!(matches!(replica.insert(op)?, Inserted::Pending));
//! // …until the Admit carries it in.
//! let op = SignedOp::decode(admit_bytes)?.verify()?;
//! assert!(matches!(replica.insert(op)?, Inserted::Applied { valid: true, .. }));
//! assert_eq!(replica.validity(&admit.id()), Some(Ok(())));
//! assert!(replica.is_member(&w.id(apc)));
//! assert_eq!(replica.digest(), w.gov.digest()); // the same ops, the same state
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! An envelope is verified, then authorised: [`VerifiedHeader::from_bytes`] checks an envelope's signature and
//! the framing of its changes against the pinned federation; [`Governance::authorize_header`] then says whether
//! its author may write that document at the governance heads the envelope cites; only then does
//! [`VerifiedHeader::parse_changes`] let Automerge read the changes.
//!
//! A bundle is verified offline: [`bundle::plan`] and [`bundle::assemble`] make the Chair's bundle for a year
//! from the Chair's replica; [`verify_bundle`] checks such a bundle from its files and the pinned federation id
//! alone (the module documentation of [`bundle`] walks through it), and [`report::render`] turns the
//! [`VerifiedBundle`] into the report people read.
//!
//! The rules themselves are in `docs/protocol.md`; the invariants and the tests that hold them in
//! `docs/ARCHITECTURE.md`.

pub mod bundle;
pub mod cbor;
pub mod chunk_cost;
pub mod content;
pub mod crypto;
pub mod envelope;
pub mod export;
// Test and example support, not production API, so hidden from the documentation; compiled in (not behind
// `cfg(test)`) because the node's tests, the doctests and the benchmarks, which are other crates, use it.
#[doc(hidden)]
pub mod fixture;
// The bodies of the fuzz targets (fuzz/), shared with the stable corpus replay (tests/fuzz_corpora.rs).
#[doc(hidden)]
pub mod fuzz;
pub mod gov;
pub mod ids;
pub mod limits;
pub mod op;
pub mod rebuild;
pub mod reference;
pub mod report;
pub mod view;

pub use bundle::{verify as verify_bundle, VerifiedBundle, VerifyError as BundleError};
pub use crypto::{PublicKey, SecretKey};
pub use envelope::{ChangeEnvelope, EnvelopeError, SignedEnvelope, VerifiedHeader};
pub use gov::{Governance, InsertError, Inserted, Invalid, Validity, VerifiedOp, WriteDenied};
pub use ids::Hash32;
pub use ids::{DocId, EnvelopeId, FederationId, OpId, OrgId};
pub use op::{OpBody, OpError, OpKind, SignedOp};
pub use view::StocktakeView;
