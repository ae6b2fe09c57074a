//! Where each file of a bundle lives, and which paths a bundle may hold at all.
//!
//! The names are fixed (`docs/protocol.md` §14) so that the verifier can refuse any file outside the layout; the
//! path rule keeps every name safe to write on any filesystem and to pass to a shell command.

use crate::ids::DocId;
use crate::limits::MAX_BUNDLE_PATH_BYTES;

/// The canonical manifest.
pub const MANIFEST: &str = "manifest.json";
/// The Chair's SSHSIG signature over [`MANIFEST`].
pub const SIGNATURE: &str = "manifest.json.sig";
/// The `ssh-keygen` allowed-signers file naming the Chair's key.
pub const ALLOWED_SIGNERS: &str = "allowed_signers";
/// `sha256sum -c` input covering every other file.
pub const SHA256SUMS: &str = "SHA256SUMS";
/// Instructions for checking the bundle with stock tools.
pub const VERIFY_TXT: &str = "VERIFY.txt";
/// The signed genesis op.
pub const GENESIS: &str = "gov/genesis";
/// Every other governance op of the closing point's history, length-prefixed, in a topological order.
pub const OPS: &str = "gov/ops";
/// The canonical JSON of the stocktaking view.
pub const VIEW: &str = "view/stocktake.json";

/// `docs/<doc id>.automerge`.
pub fn automerge_path(doc: &DocId) -> String {
    format!("docs/{doc}.automerge")
}

/// `docs/<doc id>.json`.
pub fn json_path(doc: &DocId) -> String {
    format!("docs/{doc}.json")
}

/// Why a bundle path is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    #[error("empty path")]
    Empty,
    #[error("path longer than {MAX_BUNDLE_PATH_BYTES} bytes")]
    TooLong,
    #[error("absolute path")]
    Absolute,
    #[error("empty path component")]
    EmptyComponent,
    #[error("`.` or `..` component")]
    DotComponent,
    #[error("character {0:?} not allowed (only a-z, A-Z, 0-9, `.`, `_`, `-` and `/` between components)")]
    BadCharacter(char),
}

/// A bundle path is relative, made of non-empty components of `[A-Za-z0-9._-]` separated by `/`, none of them `.`
/// or `..`, and none starting with `-` (so no path can be taken for a command-line option).
pub fn check_path(path: &str) -> Result<(), PathError> {
    if path.is_empty() {
        return Err(PathError::Empty);
    }
    if path.len() > MAX_BUNDLE_PATH_BYTES {
        return Err(PathError::TooLong);
    }
    if path.starts_with('/') {
        return Err(PathError::Absolute);
    }
    for c in path.split('/') {
        if c.is_empty() {
            return Err(PathError::EmptyComponent);
        }
        if c == "." || c == ".." {
            return Err(PathError::DotComponent);
        }
        if let Some(bad) = c
            .chars()
            .find(|ch| !(ch.is_ascii_alphanumeric() || matches!(ch, '.' | '_' | '-')))
        {
            return Err(PathError::BadCharacter(bad));
        }
        if c.starts_with('-') {
            return Err(PathError::BadCharacter('-'));
        }
    }
    Ok(())
}
