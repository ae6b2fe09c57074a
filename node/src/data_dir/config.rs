//! `DATA/config.toml`: the node's settings ([`Config`]), the commented template `init` writes, and recording the
//! federation in it without losing the operator's edits.

use serde::{Deserialize, Serialize};
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use wsis_protocol::ids::FederationId;

use super::files::{read_capped, write_atomic};
use super::{DataDir, OpenError, CONFIG_FILE};

/// A config file larger than this is refused before it is read: it is hand-edited text, not data.
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// The default API address: loopback only, because the token is the API's only protection.
pub const DEFAULT_API_ADDR: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 7300));

/// The node's configuration, as read from `DATA/config.toml`. Every key is optional; a missing key takes its
/// default. Unknown keys are refused, so that a misspelt key is an error instead of a silently ignored setting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// libp2p listen addresses (multiaddrs). Kept as text here: only `node::net` knows libp2p and parses them.
    pub listen: Vec<String>,
    /// Peers dialled at start (multiaddrs ending in `/p2p/<peer id>`).
    pub bootstrap: Vec<String>,
    /// Peer ids this node never connects to nor accepts connections from (text, like `bootstrap`).
    pub blocked_peers: Vec<String>,
    /// Where the local HTTP API and dashboard listen.
    pub api_addr: SocketAddr,
    /// Peer discovery on the local network. Off by default: a production node should not announce itself on
    /// whatever LAN it happens to be on.
    pub mdns: bool,
    /// The federation this node belongs to, once known (see [`DataDir::bind_federation`]).
    pub federation: Option<FederationId>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: vec![
                "/ip4/0.0.0.0/tcp/0".to_string(),
                "/ip4/0.0.0.0/udp/0/quic-v1".to_string(),
            ],
            bootstrap: Vec::new(),
            blocked_peers: Vec::new(),
            api_addr: DEFAULT_API_ADDR,
            mdns: false,
            federation: None,
        }
    }
}

/// The file `init` writes: the defaults of [`Config::default`], each with a comment saying what it is for.
/// A unit test checks that it parses to exactly `Config::default()`.
pub(super) const CONFIG_TEMPLATE: &str = r#"# Configuration of a WSIS federation node, written by `wsis init`.
# Edit freely; the node reads this file when it starts. Every key is optional: a missing key takes the
# default shown here. Unknown keys are refused, so a misspelt key is an error rather than silently ignored.

# Addresses this node listens on for other nodes (libp2p multiaddrs). Port 0 picks a free port at every
# start; give a fixed port to a node that others use as a bootstrap peer.
listen = ["/ip4/0.0.0.0/tcp/0", "/ip4/0.0.0.0/udp/0/quic-v1"]

# Nodes to contact at start, as multiaddrs ending in /p2p/<peer id>, for example
# bootstrap = ["/dns4/node.example.org/tcp/4001/p2p/12D3KooW..."]
bootstrap = []

# Nodes (peer ids, 12D3KooW...) this node never connects to and refuses connections from, for example
# blocked_peers = ["12D3KooW..."]
blocked_peers = []

# Where the local API and dashboard listen. Keep it on loopback: DATA/api.token is its only protection.
api_addr = "127.0.0.1:7300"

# Discover other nodes on the local network with mDNS (useful on a LAN or in a test network).
mdns = false

# The federation this node belongs to (fed_ followed by 64 hex digits). Recorded by the node when it joins
# a federation; a node refuses to start with a different one.
# federation = "fed_..."
"#;

/// Why the federation could not be recorded in `config.toml`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BindError {
    #[error("this data directory belongs to federation {found}, not {expected}")]
    WrongFederation {
        found: FederationId,
        expected: FederationId,
    },
    #[error("cannot read the configuration")]
    Read(#[source] Box<OpenError>),
    #[error("{} is not valid toml", path.display())]
    Syntax {
        path: PathBuf,
        #[source]
        source: Box<toml_edit::TomlError>,
    },
    #[error("{} is not a valid configuration", path.display())]
    Config {
        path: PathBuf,
        #[source]
        source: Box<toml::de::Error>,
    },
    #[error("cannot update {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl DataDir {
    /// Records the federation in `config.toml`, keeping the operator's comments and edits (the file is edited,
    /// not regenerated). Binding again to the same federation does nothing; a different one is refused, because
    /// the database holds that federation's data.
    pub fn bind_federation(&mut self, federation: FederationId) -> Result<(), BindError> {
        let path = self.config_path();
        // Re-read the file: the operator may have edited it since the node opened it.
        let text = read_config_text(&path).map_err(|e| BindError::Read(Box::new(e)))?;
        let current: Config = toml::from_str(&text).map_err(|source| BindError::Config {
            path: path.clone(),
            source: Box::new(source),
        })?;
        match current.federation {
            Some(found) if found == federation => {
                self.config = current;
                return Ok(());
            }
            Some(found) => {
                return Err(BindError::WrongFederation {
                    found,
                    expected: federation,
                })
            }
            None => {}
        }
        let mut doc: toml_edit::DocumentMut = text.parse().map_err(|source| BindError::Syntax {
            path: path.clone(),
            source: Box::new(source),
        })?;
        doc["federation"] = toml_edit::value(federation.to_string());
        let updated = doc.to_string();
        let config: Config = toml::from_str(&updated).map_err(|source| BindError::Config {
            path: path.clone(),
            source: Box::new(source),
        })?;
        write_atomic(&self.root, CONFIG_FILE, updated.as_bytes())
            .map_err(|source| BindError::Io { path, source })?;
        self.config = config;
        Ok(())
    }
}

pub(super) fn read_config_text(path: &Path) -> Result<String, OpenError> {
    let bytes = read_capped(path, MAX_CONFIG_BYTES)?;
    String::from_utf8(bytes).map_err(|_| OpenError::Damaged {
        path: path.to_path_buf(),
        reason: "it is not utf-8 text".into(),
    })
}

pub(super) fn read_config(path: &Path) -> Result<Config, OpenError> {
    let text = read_config_text(path)?;
    toml::from_str(&text).map_err(|source| OpenError::Config {
        path: path.to_path_buf(),
        source: Box::new(source),
    })
}
