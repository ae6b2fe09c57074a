//! Every size the protocol accepts, in one place. Decoders check these before allocating; the node uses the same
//! numbers for frames and buffers. Changing one is a protocol change.

/// The largest signed governance op, genesis included.
pub const MAX_OP_BYTES: usize = 256 * 1024;
/// The largest signed inception record.
pub const MAX_INCEPTION_BYTES: usize = 2 * 1024;
/// Causal parents of one op.
pub const MAX_PARENTS: usize = 64;
/// Names of federations, organisations, teams; meeting titles.
pub const MAX_NAME_BYTES: usize = 256;
/// Free text in ops (modalities).
pub const MAX_TEXT_BYTES: usize = 16 * 1024;
/// A team code such as `C7.EHEALTH`.
pub const MAX_TEAM_CODE_BYTES: usize = 16;
/// Teams in a federation.
pub const MAX_TEAMS: usize = 64;
/// Secretariat organisations named in the genesis.
pub const MAX_SECRETARIAT: usize = 8;
/// Heads cited by one op or envelope (governance heads or document heads).
pub const MAX_HEADS: usize = 256;
/// Teams or sections listed in a procedure.
pub const MAX_LIST_ITEMS: usize = 64;
/// A libp2p peer id in binary form.
pub const MAX_PEER_ID_BYTES: usize = 128;
/// Entries in one encoded map.
pub const MAX_MAP_ENTRIES: usize = 32;
/// Automerge changes in one envelope.
pub const MAX_CHANGES_PER_ENVELOPE: usize = 4096;
/// One raw Automerge change.
pub const MAX_CHANGE_BYTES: usize = 1024 * 1024;
/// One signed envelope (header plus changes).
pub const MAX_ENVELOPE_BYTES: usize = 8 * 1024 * 1024;
/// Ops in one Automerge change, as Automerge counts them (`Change::len`). Counted from the column metadata
/// before any Automerge code runs (`chunk_cost`): a run-length column repeats one op any number of times in a
/// few bytes, and Automerge expands it one op at a time (the op bomb). 262,144 ops is a quarter of a million
/// typed characters in one change.
pub const MAX_CHANGE_OPS: u64 = 262_144;
/// Predecessor references of the ops of one change.
pub const MAX_CHANGE_PREDS: u64 = 2 * MAX_CHANGE_OPS;
/// Bytes of signed envelopes one organisation may have stored in one document (issue 14, quotas): one envelope of
/// the largest size fits. An envelope that would pass it is refused, never stored, and its sender penalised.
pub const MAX_AUTHOR_DOC_BYTES: u64 = MAX_ENVELOPE_BYTES as u64;
/// Envelopes one organisation may have stored in one document. An honest node seals a burst of edits into one
/// envelope, so this is some sixteen thousand publishes.
pub const MAX_AUTHOR_DOC_ENVELOPES: u64 = 16_384;
/// Bytes of signed envelopes one organisation may have stored over all documents at one node.
pub const MAX_AUTHOR_BYTES: u64 = 8 * MAX_AUTHOR_DOC_BYTES;
/// Documents one organisation may create (`CreateDoc` ops): a `CreateDoc` whose author already has this many
/// valid ones in its history is invalid (`document-budget`). Every node decides it from the op's history alone.
pub const MAX_DOCS_PER_ORG: usize = 256;
/// Ops in one envelope, over all its changes.
pub const MAX_ENVELOPE_OPS: u64 = 4 * MAX_CHANGE_OPS;
/// Ops one bundled document may hold when the verifier loads it (an upper bound read from its columns).
pub const MAX_DOCUMENT_OPS: u64 = 8 * MAX_CHANGE_OPS;
/// Successor references in one bundled document, and dependency references of its changes.
pub const MAX_DOCUMENT_REFS: u64 = 2 * MAX_DOCUMENT_OPS;
/// Changes in one bundled document.
pub const MAX_DOCUMENT_CHANGES: u64 = 1_048_576;
/// Bytes the compressed columns of one bundled document may inflate to while their cost is read.
pub const MAX_DOCUMENT_INFLATED_BYTES: usize = 64 * 1024 * 1024;
/// Automerge actors one author may write one document with: one per session salt (a process's random salt, or
/// a rotation after a rebuild dropped one of its own changes) and key. Automerge's cost of applying a change
/// grows with the actors a document has (32,768 one-op changes under fresh salts cost 152 s and 494 MiB), so an
/// envelope bringing an author's actor past this is refused. 128 is a node restarted and writing the document
/// every third day of a year.
pub const MAX_ACTORS_PER_AUTHOR: usize = 128;
/// Automerge actors one document may hold, over all its authors: 32 authors at their own cap.
pub const MAX_DOCUMENT_ACTORS: usize = 4096;
/// Ops waiting for missing parents, across all peers, in one replica.
pub const MAX_PARKED_OPS: usize = 10_000;
/// Timestamps are informational; anything beyond this (year 2200) is refused as malformed.
pub const MAX_TIMESTAMP_MS: u64 = 7_258_118_400_000;
/// Files in a stocktaking bundle (two per attested document plus nine fixed files).
pub const MAX_BUNDLE_FILES: usize = 8192;
/// One file of a stocktaking bundle (the op log of a large federation is the largest).
pub const MAX_BUNDLE_FILE_BYTES: usize = 512 * 1024 * 1024;
/// A whole stocktaking bundle.
pub const MAX_BUNDLE_BYTES: u64 = 2 * 1024 * 1024 * 1024;
/// Governance ops in a bundle's `gov/ops`.
pub const MAX_BUNDLE_OPS: usize = 2_000_000;
/// A relative path in a bundle, and one component of it.
pub const MAX_BUNDLE_PATH_BYTES: usize = 255;

// Parking and bindings (issue 11 defect 6, issue 14 defect 6): what a flooder of parked items can hold. The node's
// per-organisation quotas and time expiry are below these backstops (`node/src/parking.rs`).

/// Attempts to park (refused ones included) after which an op still waiting for its parents expires from the
/// replica's parking area ([`MAX_PARKED_OPS`] bounds it in size). A logical clock, so replicas fed the same ops
/// drop the same ones; a dropped op is fetched again by the next sync.
pub const PARKED_OP_TTL_PARKS: u64 = 2 * MAX_PARKED_OPS as u64;
/// Peer ids one organisation may bind: a `BindNode` whose author already has this many valid bindings in its
/// history is invalid (peer ids cost nothing, so an organisation must not multiply its share of per-peer buffers).
pub const MAX_BINDINGS_PER_ORG: usize = 8;

// Admission (issue 11 defect 1): what an organisation no secretariat has admitted can make a replica hold. Its ops
// wait outside the DAG (`gov/admission.rs`); the node's per-peer ledger (`node/src/node/pending.rs`) is below these.

/// Ops of organisations not yet admitted that one replica holds, over all of them.
pub const MAX_PENDING_OPS: usize = 4096;
/// Ops one organisation not yet admitted may have waiting: its inception and its bindings.
pub const MAX_PENDING_PER_ORG: usize = 1 + MAX_BINDINGS_PER_ORG;
/// Attempts to hold an op (refused ones included) after which a waiting op expires from the pending area. A
/// logical clock, like [`PARKED_OP_TTL_PARKS`]; the organisation's node offers its ops again at its next sync.
pub const PENDING_OP_TTL_HOLDS: u64 = 2 * MAX_PENDING_OPS as u64;
