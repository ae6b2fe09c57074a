//! The node's data directory: the organisation's identity (keys, inception record), its configuration and the file layout.
//!
//! ```text
//! DATA/config.toml     commented defaults; the operator edits it (listen addresses, bootstrap peers, blocked
//!                      peers, API, mDNS, and the federation once the node belongs to one)
//! DATA/org.key         the organisation's ed25519 signing key: its 32-byte seed (0600)
//! DATA/node.key        the 32-byte ed25519 seed of the libp2p transport key (0600)
//! DATA/api.token       bearer token of the local API: 32 random bytes as 64 hex digits (0600)
//! DATA/org.inception   the organisation's signed inception record, exactly as signed
//! DATA/db/             the sled database (see [`crate::store`])
//! DATA/api.addr        the address the running node's API listens on (see [`ApiAddrFile`]); gone when it stops
//! ```
//!
//! Why it is shaped this way:
//!
//! - The organisation key and the transport key are separate so that a node can be rebound (a new `BindNode`)
//!   without touching the organisation's identity, and so that the key whose compromise forges governance ops is
//!   never handed to libp2p.
//! - The inception record is kept as the exact signed bytes: the [`OrgId`] is their hash, so re-signing on every
//!   start would give the organisation a new identity each time (the creation time is part of the record).
//! - Every file is written to a temporary name with mode 0600 set at creation and then renamed, so a crash leaves
//!   either the old file or the new one, and a key is never readable by others, not even for an instant.
//! - [`DataDir::open`] refuses key files that group or others can read instead of silently fixing them: a key that
//!   was exposed may have been copied, and the operator has to know.
//!
//! Where things are: this file holds the layout (every file name) and [`DataDir::open`] with its accessors;
//! `init` creates a directory, `config` is `config.toml` (its defaults, its template, binding the federation),
//! and `files` the private-file primitives (atomic writes, capped reads, the permission check).

mod api_addr;
mod config;
mod files;
mod init;
#[cfg(test)]
mod tests;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use wsis_protocol::crypto::SecretKey;
use wsis_protocol::ids::{FederationId, OrgId};
use wsis_protocol::limits::MAX_INCEPTION_BYTES;
use wsis_protocol::op::{OpError, SignedInception};

pub use api_addr::ApiAddrFile;
pub use config::{BindError, Config, DEFAULT_API_ADDR};
pub use init::{InitError, InitOptions};

use config::read_config;
use files::{check_private, read_api_token, read_capped, read_seed};

/// The configuration file.
pub const CONFIG_FILE: &str = "config.toml";
/// The organisation's signing key (32-byte seed).
pub const ORG_KEY_FILE: &str = "org.key";
/// The libp2p transport key (32-byte ed25519 seed).
pub const NODE_KEY_FILE: &str = "node.key";
/// The local API's bearer token.
pub const API_TOKEN_FILE: &str = "api.token";
/// The organisation's signed inception record.
pub const INCEPTION_FILE: &str = "org.inception";
/// The sled database directory.
pub const DB_DIR: &str = "db";
/// The address the running node's API listens on, written by `wsis node` (see [`ApiAddrFile`]).
pub const API_ADDR_FILE: &str = "api.addr";

/// The files that must not be readable by anyone but the node's user.
const SECRET_FILES: [&str; 3] = [ORG_KEY_FILE, NODE_KEY_FILE, API_TOKEN_FILE];
/// Everything `init` creates; any of them existing means the directory was (at least partly) initialised.
const ALL_ENTRIES: [&str; 6] = [
    CONFIG_FILE,
    ORG_KEY_FILE,
    NODE_KEY_FILE,
    API_TOKEN_FILE,
    INCEPTION_FILE,
    DB_DIR,
];

/// Length of a key seed.
const SEED_LEN: usize = 32;
/// Random bytes in the API token (hex-encoded in the file).
const API_TOKEN_BYTES: usize = 32;

/// Why a data directory could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    #[error("{} is missing (is this an initialised data directory? `wsis init` creates one)", path.display())]
    Missing { path: PathBuf },
    #[error("{} is damaged: {reason}", path.display())]
    Damaged { path: PathBuf, reason: String },
    #[error(
        "{} is readable by group or others (mode {mode:03o}); a secret key must be private: run `chmod 600 {}`",
        path.display(), path.display()
    )]
    InsecurePermissions { path: PathBuf, mode: u32 },
    #[error("{} is not a valid signed inception record", path.display())]
    Inception {
        path: PathBuf,
        #[source]
        source: OpError,
    },
    #[error("{} is not a valid configuration", path.display())]
    Config {
        path: PathBuf,
        #[source]
        source: Box<toml::de::Error>,
    },
    #[error("cannot read {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("this data directory belongs to federation {found}, not {expected}")]
    WrongFederation {
        found: FederationId,
        expected: FederationId,
    },
}

/// An opened, checked data directory: the keys are loaded, the inception record verified and matched to the key.
pub struct DataDir {
    root: PathBuf,
    config: Config,
    org_key: SecretKey,
    inception: SignedInception,
    node_key_seed: [u8; SEED_LEN],
    api_token: String,
}

impl std::fmt::Debug for DataDir {
    /// Never prints a secret: only the path, the organisation and the federation.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataDir")
            .field("root", &self.root)
            .field("org", &self.inception.id())
            .field("federation", &self.config.federation)
            .finish_non_exhaustive()
    }
}

impl DataDir {
    /// Opens an initialised data directory and checks everything in it before anything uses it: the key files'
    /// permissions (group and others must have no access), their sizes, the inception record's signature and
    /// that it names the organisation key, and the configuration's syntax.
    pub fn open(path: impl AsRef<Path>) -> Result<DataDir, OpenError> {
        let root = path.as_ref().to_path_buf();
        match fs::metadata(&root) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(OpenError::Damaged {
                    path: root,
                    reason: "not a directory".into(),
                })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(OpenError::Missing { path: root })
            }
            Err(source) => return Err(OpenError::Io { path: root, source }),
        }
        for name in SECRET_FILES {
            check_private(&root.join(name))?;
        }

        let org_seed = read_seed(&root.join(ORG_KEY_FILE))?;
        let node_key_seed = read_seed(&root.join(NODE_KEY_FILE))?;
        let api_token = read_api_token(&root.join(API_TOKEN_FILE))?;
        let org_key = SecretKey::from_seed(&org_seed);

        let inception_path = root.join(INCEPTION_FILE);
        let bytes = read_capped(&inception_path, MAX_INCEPTION_BYTES as u64)?;
        let inception =
            SignedInception::from_bytes(&bytes).map_err(|source| OpenError::Inception {
                path: inception_path.clone(),
                source,
            })?;
        if inception.body().key != org_key.public() {
            return Err(OpenError::Damaged {
                path: inception_path,
                reason: format!(
                    "it names the key {}, but {} holds the key {}",
                    inception.body().key,
                    ORG_KEY_FILE,
                    org_key.public()
                ),
            });
        }

        let config = read_config(&root.join(CONFIG_FILE))?;
        Ok(DataDir {
            root,
            config,
            org_key,
            inception,
            node_key_seed,
            api_token,
        })
    }

    /// Refuses to run against another federation's data. An unbound directory passes: it has no federation yet.
    pub fn check_federation(&self, expected: FederationId) -> Result<(), OpenError> {
        match self.config.federation {
            Some(found) if found != expected => Err(OpenError::WrongFederation { found, expected }),
            _ => Ok(()),
        }
    }

    /// The data directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Where the sled database lives (`DATA/db`).
    pub fn db_path(&self) -> PathBuf {
        self.root.join(DB_DIR)
    }

    /// `DATA/config.toml`.
    pub fn config_path(&self) -> PathBuf {
        self.root.join(CONFIG_FILE)
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The federation recorded in `config.toml`, if any.
    pub fn federation(&self) -> Option<FederationId> {
        self.config.federation
    }

    /// The organisation's signing key.
    pub fn org_key(&self) -> &SecretKey {
        &self.org_key
    }

    /// The organisation's id: the hash of its inception record.
    pub fn org_id(&self) -> OrgId {
        self.inception.id()
    }

    /// The organisation's signed inception record.
    pub fn inception(&self) -> &SignedInception {
        &self.inception
    }

    /// The seed of the libp2p transport key (`node::net` turns it into a libp2p keypair).
    pub fn node_key_seed(&self) -> &[u8; SEED_LEN] {
        &self.node_key_seed
    }

    /// The local API's bearer token (64 hex digits).
    pub fn api_token(&self) -> &str {
        &self.api_token
    }

    /// Compares a presented bearer token with ours in time independent of where they differ, so the API does not
    /// leak the token one byte at a time.
    pub fn check_api_token(&self, presented: &str) -> bool {
        let (a, b) = (self.api_token.as_bytes(), presented.as_bytes());
        if a.len() != b.len() {
            return false;
        }
        a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}
