//! Why the store could not be opened ([`StoreOpenError`]), and why a read or a write failed ([`StoreError`]).

use std::path::PathBuf;
use wsis_protocol::ids::FederationId;

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreOpenError {
    #[error(
        "the database {} is in use by another process (is a node already running on this data directory?)",
        path.display()
    )]
    Locked {
        path: PathBuf,
        #[source]
        source: sled::Error,
    },
    #[error("cannot open the database {}", path.display())]
    Sled {
        path: PathBuf,
        #[source]
        source: sled::Error,
    },
    #[error(
        "the database {} has schema version {found}; this build reads version {supported}",
        path.display()
    )]
    Schema {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("the database {} is damaged: {reason}", path.display())]
    Damaged { path: PathBuf, reason: String },
    #[error("cannot start the store's writer thread")]
    Spawn(#[source] std::io::Error),
    /// `wsis store check` found no database (it never creates one).
    #[error("there is no database at {} (has this data directory's node never run?)", path.display())]
    Missing { path: PathBuf },
    /// `wsis store check` could not read or move an item.
    #[error("cannot check the database {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: Box<StoreError>,
    },
}

/// Why a read or a write failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// sled failed (an I/O error, the disk full, corruption sled detected itself). The write may or may not be
    /// on disk; it was not acknowledged.
    #[error("storage failed while {context}")]
    Io {
        context: String,
        #[source]
        source: sled::Error,
    },
    /// The filesystem is (nearly) full. Nothing of this write was applied; writes resume once space is freed.
    #[error(
        "not enough free space for the database {}: {available} bytes free, the store keeps at least {needed} \
         free for this write; free some space and retry",
        path.display()
    )]
    DiskFull {
        path: PathBuf,
        available: u64,
        needed: u64,
    },
    /// A flush did not finish in time (a full or failing disk). The write may or may not be on disk.
    #[error(
        "a flush of the database {} has not completed after {waited_ms} ms (is the disk full or failing?); \
         writes are refused until it does",
        path.display()
    )]
    FlushStalled { path: PathBuf, waited_ms: u64 },
    /// Stored bytes no longer verify. Nothing is skipped: the caller decides (a node refuses to start and names
    /// the item; an operator restores or removes it).
    #[error("damaged item in tree `{tree}` at key {key}: {reason}")]
    Damaged {
        tree: &'static str,
        key: String,
        reason: String,
    },
    #[error("this store belongs to federation {found}, not {expected}")]
    WrongFederation {
        found: FederationId,
        expected: FederationId,
    },
    /// Envelopes can only be verified against a federation, so none are stored before the store is bound.
    #[error("the store is not bound to a federation yet: bind it before storing or reading change envelopes")]
    NotBound,
    #[error("{what} is {len} bytes, the limit is {max}")]
    TooLarge {
        what: &'static str,
        len: usize,
        max: usize,
    },
    #[error("invalid input: {0}")]
    Invalid(&'static str),
    /// The writer thread is gone (the store is being dropped, or the thread died). Nothing more can be written.
    #[error("the store's writer has stopped; nothing more can be written")]
    Closed,
}

/// A sled failure while reading or writing, with what the store was doing.
pub(super) fn sled_error(context: String, source: sled::Error) -> StoreError {
    StoreError::Io { context, source }
}

/// The start-up error for a store item that stops a node's start: what is wrong, and the command that lists and
/// sets aside such items (`wsis store check`), so that one bad item never leaves an organisation without a node.
pub fn damaged_at_start(e: &StoreError, data_dir: &std::path::Path) -> String {
    let dir = data_dir.display();
    let advice = format!(
        "run `wsis --data-dir {dir} store check` to list such items and `wsis --data-dir {dir} store check \
         --quarantine` to set them aside (kept, never served, never deleted), then start the node again"
    );
    match e {
        StoreError::Damaged { tree, key, reason } => format!(
            "the store holds an item that fails validation (tree {tree}, key {key}: {reason}); {advice}"
        ),
        StoreError::NotBound => format!(
            "the store holds change envelopes but is bound to no federation; {advice}"
        ),
        other => format!("the store failed: {other}"),
    }
}
