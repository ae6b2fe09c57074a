//! `DATA/api.addr`: the address the running node's API actually listens on (useful with port 0). `wsis node`
//! writes it once the API listens and removes it on exit; the CLI and the testnet read it to find the node.
//!
//! The file is written atomically (a temporary file, then a rename), so a reader sees the old address or the
//! new one, never half of one.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::files::write_atomic;
use super::{DataDir, API_ADDR_FILE};

/// The `api.addr` file of one data directory. It can be named without opening the directory (the testnet
/// watches for it while the node starts; `wsis node` keeps it after the node took the [`DataDir`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiAddrFile {
    dir: PathBuf,
}

impl ApiAddrFile {
    /// The `api.addr` of the data directory at `dir`.
    pub fn of(dir: impl AsRef<Path>) -> Self {
        Self {
            dir: dir.as_ref().to_path_buf(),
        }
    }

    /// `DATA/api.addr`.
    pub fn path(&self) -> PathBuf {
        self.dir.join(API_ADDR_FILE)
    }

    /// Whether the file is there (the node's API is listening, or a node that crashed left it behind).
    pub fn exists(&self) -> bool {
        self.path().exists()
    }

    /// Records `addr`, atomically, as one line of text.
    pub fn write(&self, addr: SocketAddr) -> io::Result<()> {
        write_atomic(&self.dir, API_ADDR_FILE, format!("{addr}\n").as_bytes())
    }

    /// The recorded address, if the file is there and holds one (surrounding whitespace is ignored).
    pub fn read(&self) -> Option<SocketAddr> {
        std::fs::read_to_string(self.path())
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Removes the file; a file that is already gone is not an error.
    pub fn remove(&self) -> io::Result<()> {
        match std::fs::remove_file(self.path()) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

impl DataDir {
    /// This directory's `api.addr`.
    pub fn api_addr_file(&self) -> ApiAddrFile {
        ApiAddrFile::of(self.path())
    }
}
