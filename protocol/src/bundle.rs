//! The stocktaking bundle and the offline verifier.
//!
//! The verifier is the trust root of a year's stocktaking: whoever holds a bundle and the federation id (obtained
//! independently, e.g. from the secretariat) can check every claim in it without a node, a network or any trust in
//! the Chair beyond the signature it checks. This module and its submodules are meant to be read on their own.
//!
//! # What a bundle is
//!
//! A bundle is the Chair's self-contained, signed record of one year: a map from relative path to bytes (the caller
//! reads and writes the directory; this crate does no I/O). Its layout is fixed (`docs/protocol.md` §14):
//!
//! - `gov/genesis` and `gov/ops`: every governance op of the *closing point*'s history (the closing point is the
//!   passed Checkpoint motion that closes the year, with every valid ballot on it), the op log framed by length
//!   ([`encode_ops`]);
//! - `docs/<id>.automerge` and `docs/<id>.json`: every document state the *checkpoint's own history* attests (the
//!   year's submissions and approved meeting records; never what only a ballot brought in), as Automerge bytes at
//!   the frontier of its attested heads and as canonical JSON ([`Attested`]);
//! - `view/stocktake.json`: the stocktaking view recomputed from the checkpoint's history and the documents;
//! - `manifest.json`, `manifest.json.sig`, `allowed_signers`, `SHA256SUMS`, `VERIFY.txt`: the seal ([`seal`]) —
//!   a canonical manifest listing every file with its hash and size, the Chair's OpenSSH [`sshsig`] signature over
//!   it, and what `sha256sum -c` and `ssh-keygen -Y verify` need to check files and signature with stock tools.
//!
//! # How a bundle is made
//!
//! On the Chair's node: [`plan`] decides, from the Chair's replica, what closes the year and which document states
//! the bundle must hold ([`Plan::documents`]); the node saves each document at those heads; [`assemble`] checks
//! each document against its attestations, writes every file and [`seal`]s it with the Chair's key; the node writes
//! [`Bundle::files`] to a directory.
//!
//! # How a bundle is verified
//!
//! [`verify`] takes the files and the pinned federation id and returns a [`VerifiedBundle`] or the first
//! [`VerifyError`], naming the file at fault. In order: sizes and [paths](check_path); the manifest is canonical
//! and names the pinned federation; the signature over it is the manifest's chair key's; the files are exactly the
//! manifest's, with its hashes, and `SHA256SUMS` and `VERIFY.txt` are what the manifest implies; the genesis hashes
//! to the pinned id; every op verifies and replays with nothing beyond the closing point; the checkpoint passed and
//! the manifest's chair held the chair at it with that key; no later checkpoint of the year is in the bundle and
//! the closing point attests exactly what the checkpoint's own history attests ([`ClosingError`]); the documents
//! are exactly the attested ones, each matching every attestation and its JSON; the recomputed view is
//! byte-identical. What the verifier cannot see is what a bundle leaves out: a Chair who closes with an earlier
//! checkpoint whose ballots saw nothing later makes a bundle that verifies (the coordinators' adoption of the
//! closing checkpoint must bind it, `docs/protocol.md` §14.1). A Chair's key alone therefore
//! cannot make a false bundle pass: re-sealing edited content yields a valid signature over files that fail the
//! later checks. [`crate::report::render`] then turns a verified bundle into the report people read.

mod assemble;
mod closing;
mod documents;
mod layout;
mod manifest;
mod ops_file;
pub mod sshsig;
mod verify;

pub use assemble::{assemble, plan, AssembleError, Bundle, Plan};
pub use closing::{Attested, AttestedBy, ClosingError, ClosingPoint, ReplayError};
pub use documents::DocumentError;
pub use layout::{
    automerge_path, check_path, json_path, PathError, ALLOWED_SIGNERS, GENESIS, MANIFEST, OPS,
    SHA256SUMS, SIGNATURE, VERIFY_TXT, VIEW,
};
pub use manifest::{
    seal, verify_text, Manifest, ManifestError, ManifestHeader, SealError, BUNDLE_FORMAT,
};
pub use ops_file::{decode_ops, encode_ops, OpsFileError};
pub use verify::{verify, Problem, VerifiedBundle, VerifyError};

#[cfg(test)]
mod tests;
