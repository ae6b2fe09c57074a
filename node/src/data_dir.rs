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

use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use wsis_protocol::crypto::SecretKey;
use wsis_protocol::ids::{FederationId, OrgId};
use wsis_protocol::limits::{MAX_INCEPTION_BYTES, MAX_NAME_BYTES, MAX_TIMESTAMP_MS};
use wsis_protocol::op::{Country, Inception, OpError, SignedInception, StakeholderType};

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
const CONFIG_TEMPLATE: &str = r#"# Configuration of a WSIS federation node, written by `wsis init`.
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

/// What `wsis init` asks for: how the organisation describes itself in its inception record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitOptions {
    /// The organisation's name as the federation will show it.
    pub name: String,
    pub stakeholder: StakeholderType,
    /// Required for a government (it is the country it reports for); optional otherwise.
    pub country: Option<Country>,
}

/// Why a data directory could not be initialised.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InitError {
    #[error(
        "{} already exists: this data directory is already initialised (refusing to overwrite its keys)",
        path.display()
    )]
    AlreadyInitialised { path: PathBuf },
    #[error(
        "a government organisation must name its country (an ISO 3166-1 alpha-2 code such as KE)"
    )]
    CountryRequired,
    #[error("invalid organisation name: {reason}")]
    InvalidName { reason: &'static str },
    #[error("cannot draw random bytes for the keys")]
    Random(#[source] rand::Error),
    #[error("cannot write {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

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
    /// Creates a data directory with fresh keys and a signed inception record.
    ///
    /// The directory may exist if it is empty of our files (a mount point, a volume); if any file or directory
    /// `init` would create is already there, nothing is touched and [`InitError::AlreadyInitialised`] names it.
    /// On failure, whatever this call created is removed again, so a failed `init` can simply be retried.
    pub fn init(path: impl AsRef<Path>, options: InitOptions) -> Result<DataDir, InitError> {
        let root = path.as_ref().to_path_buf();
        check_name(&options.name)?;
        if options.stakeholder == StakeholderType::Government && options.country.is_none() {
            return Err(InitError::CountryRequired);
        }
        for entry in ALL_ENTRIES {
            let p = root.join(entry);
            match fs::symlink_metadata(&p) {
                Ok(_) => return Err(InitError::AlreadyInitialised { path: p }),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(source) => return Err(InitError::Io { path: p, source }),
            }
        }

        let mut org_seed = [0u8; SEED_LEN];
        let mut node_seed = [0u8; SEED_LEN];
        let mut token = [0u8; API_TOKEN_BYTES];
        for buf in [&mut org_seed[..], &mut node_seed[..], &mut token[..]] {
            rand::rngs::OsRng
                .try_fill_bytes(buf)
                .map_err(InitError::Random)?;
        }
        let org_key = SecretKey::from_seed(&org_seed);
        let inception = Inception {
            name: options.name,
            stakeholder: options.stakeholder,
            country: options.country,
            key: org_key.public(),
            created_ms: now_ms(),
        }
        .sign(&org_key);
        let api_token = hex::encode(token);

        let mut created = Created::default();
        let result = (|| -> Result<(), InitError> {
            let root_existed = root.exists();
            create_private_dir(&root).map_err(|source| InitError::Io {
                path: root.clone(),
                source,
            })?;
            if !root_existed {
                created.dirs.push(root.clone());
            }
            let db = root.join(DB_DIR);
            create_private_dir(&db).map_err(|source| InitError::Io {
                path: db.clone(),
                source,
            })?;
            created.dirs.push(db);
            // The organisation key is written before anything that depends on it; config.toml comes last.
            let files: [(&str, &[u8]); 5] = [
                (ORG_KEY_FILE, &org_seed),
                (NODE_KEY_FILE, &node_seed),
                (API_TOKEN_FILE, api_token.as_bytes()),
                (INCEPTION_FILE, inception.bytes()),
                (CONFIG_FILE, CONFIG_TEMPLATE.as_bytes()),
            ];
            for (name, bytes) in files {
                let path = root.join(name);
                write_atomic(&root, name, bytes).map_err(|source| InitError::Io {
                    path: path.clone(),
                    source,
                })?;
                created.files.push(path);
            }
            Ok(())
        })();
        match result {
            Ok(()) => {
                created.files.clear();
                created.dirs.clear();
            }
            Err(e) => {
                created.undo();
                return Err(e);
            }
        }

        Ok(DataDir {
            root,
            config: Config::default(),
            org_key,
            inception,
            node_key_seed: node_seed,
            api_token,
        })
    }

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

/// The same checks the protocol applies when decoding an inception, made here so `init` fails with a clear
/// message instead of writing a record that every node (this one included) would refuse.
fn check_name(name: &str) -> Result<(), InitError> {
    if name.trim().is_empty() {
        return Err(InitError::InvalidName {
            reason: "the name must not be empty",
        });
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(InitError::InvalidName {
            reason: "the name is longer than 256 bytes",
        });
    }
    Ok(())
}

/// The local clock, for the informational creation time of the inception record only.
fn now_ms() -> u64 {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    u64::try_from(ms).unwrap_or(u64::MAX).min(MAX_TIMESTAMP_MS)
}

/// What a failing `init` created and must remove again. Only paths this call created are listed, so undoing
/// never removes anything the operator had.
#[derive(Default)]
struct Created {
    files: Vec<PathBuf>,
    dirs: Vec<PathBuf>,
}

impl Created {
    fn undo(&mut self) {
        for f in self.files.drain(..).rev() {
            let _ = fs::remove_file(f);
        }
        for d in self.dirs.drain(..).rev() {
            // Only empty directories: `remove_dir` refuses anything else.
            let _ = fs::remove_dir(d);
        }
    }
}

/// Creates a directory only the owner can enter. An existing directory is left as it is.
fn create_private_dir(path: &Path) -> io::Result<()> {
    match fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
    {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && path.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Writes `dir/name` atomically: a temporary file created with mode 0600 (never wider, not even briefly), written,
/// fsynced, renamed over the target, and the directory fsynced so the rename itself survives a crash.
fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    // A temporary left by a crash is ours and incomplete by definition.
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let write = || -> io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, dir.join(name))?;
        File::open(dir)?.sync_all()
    };
    let result = write();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Refuses a secret file that group or others can access in any way.
fn check_private(path: &Path) -> Result<(), OpenError> {
    let meta = fs::metadata(path).map_err(|e| io_to_open(path, e))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(OpenError::InsecurePermissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

fn io_to_open(path: &Path, e: io::Error) -> OpenError {
    if e.kind() == io::ErrorKind::NotFound {
        OpenError::Missing {
            path: path.to_path_buf(),
        }
    } else {
        OpenError::Io {
            path: path.to_path_buf(),
            source: e,
        }
    }
}

/// Reads a file of at most `max` bytes without ever allocating more than `max + 1`.
fn read_capped(path: &Path, max: u64) -> Result<Vec<u8>, OpenError> {
    let f = File::open(path).map_err(|e| io_to_open(path, e))?;
    let mut buf = Vec::new();
    f.take(max + 1)
        .read_to_end(&mut buf)
        .map_err(|e| io_to_open(path, e))?;
    if buf.len() as u64 > max {
        return Err(OpenError::Damaged {
            path: path.to_path_buf(),
            reason: format!("it is larger than {max} bytes"),
        });
    }
    Ok(buf)
}

fn read_seed(path: &Path) -> Result<[u8; SEED_LEN], OpenError> {
    let bytes = read_capped(path, SEED_LEN as u64)?;
    <[u8; SEED_LEN]>::try_from(bytes.as_slice()).map_err(|_| OpenError::Damaged {
        path: path.to_path_buf(),
        reason: format!(
            "a key file holds exactly {SEED_LEN} bytes, found {}",
            bytes.len()
        ),
    })
}

fn read_api_token(path: &Path) -> Result<String, OpenError> {
    let bytes = read_capped(path, 4 * API_TOKEN_BYTES as u64)?;
    // Tolerate the newline an editor adds; nothing else.
    let token = std::str::from_utf8(&bytes)
        .map(str::trim_end)
        .unwrap_or_default();
    if token.len() != 2 * API_TOKEN_BYTES || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(OpenError::Damaged {
            path: path.to_path_buf(),
            reason: format!("the token is {} hex digits", 2 * API_TOKEN_BYTES),
        });
    }
    Ok(token.to_string())
}

fn read_config_text(path: &Path) -> Result<String, OpenError> {
    let bytes = read_capped(path, MAX_CONFIG_BYTES)?;
    String::from_utf8(bytes).map_err(|_| OpenError::Damaged {
        path: path.to_path_buf(),
        reason: "it is not utf-8 text".into(),
    })
}

fn read_config(path: &Path) -> Result<Config, OpenError> {
    let text = read_config_text(path)?;
    toml::from_str(&text).map_err(|source| OpenError::Config {
        path: path.to_path_buf(),
        source: Box::new(source),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(stakeholder: StakeholderType, country: Option<&str>) -> InitOptions {
        InitOptions {
            name: "Example Organisation".into(),
            stakeholder,
            country: country.map(|c| Country::new(c).expect("valid test country")),
        }
    }

    #[test]
    fn errors_are_small() {
        // Callers wrap these in their own enums; clippy's `result_large_err` fires above 128 bytes.
        for (name, size) in [
            ("InitError", std::mem::size_of::<InitError>()),
            ("OpenError", std::mem::size_of::<OpenError>()),
            ("BindError", std::mem::size_of::<BindError>()),
        ] {
            eprintln!("{name}: {size} bytes");
            assert!(size <= 72, "{name} is {size} bytes");
        }
    }

    #[test]
    fn the_template_parses_to_the_defaults() {
        let parsed: Config = toml::from_str(CONFIG_TEMPLATE).expect("template parses");
        assert_eq!(parsed, Config::default());
    }

    #[test]
    fn init_then_open_round_trips() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("data");
        let made = DataDir::init(&path, options(StakeholderType::Academia, None)).expect("init");
        let opened = DataDir::open(&path).expect("open");
        assert_eq!(opened.org_id(), made.org_id());
        assert_eq!(opened.org_key().public(), made.org_key().public());
        assert_eq!(opened.node_key_seed(), made.node_key_seed());
        assert_eq!(opened.api_token(), made.api_token());
        assert_eq!(opened.config(), &Config::default());
        assert_eq!(opened.inception().body().name, "Example Organisation");
        assert!(opened.check_api_token(made.api_token()));
        assert!(!opened.check_api_token(&"0".repeat(64)));
        for name in [
            ORG_KEY_FILE,
            NODE_KEY_FILE,
            API_TOKEN_FILE,
            INCEPTION_FILE,
            CONFIG_FILE,
        ] {
            let mode = fs::metadata(path.join(name))
                .expect("file exists")
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "{name} is private");
        }
        assert!(path.join(DB_DIR).is_dir());
        assert!(!format!("{opened:?}").contains(opened.api_token()));
    }

    #[test]
    fn a_government_needs_a_country() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = DataDir::init(dir.path(), options(StakeholderType::Government, None))
            .expect_err("refused");
        assert!(matches!(err, InitError::CountryRequired), "{err}");
        assert!(err.to_string().contains("country"));
        // Nothing was written.
        assert_eq!(fs::read_dir(dir.path()).expect("readable").count(), 0);
        DataDir::init(dir.path(), options(StakeholderType::Government, Some("KE")))
            .expect("with a country");
    }

    #[test]
    fn an_empty_name_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut o = options(StakeholderType::CivilSociety, None);
        o.name = "  ".into();
        assert!(matches!(
            DataDir::init(dir.path(), o),
            Err(InitError::InvalidName { .. })
        ));
    }

    #[test]
    fn bind_keeps_comments_and_refuses_another_federation() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut d =
            DataDir::init(dir.path(), options(StakeholderType::Academia, None)).expect("init");
        let fed = FederationId([7; 32]);
        d.bind_federation(fed).expect("bind");
        d.bind_federation(fed).expect("binding again is a no-op");
        let text = fs::read_to_string(dir.path().join(CONFIG_FILE)).expect("config");
        assert!(text.contains("# Discover other nodes"), "comments kept");
        assert!(text.contains(&format!("federation = \"{fed}\"")));
        let reopened = DataDir::open(dir.path()).expect("open");
        assert_eq!(reopened.federation(), Some(fed));
        let other = FederationId([8; 32]);
        let mut again = reopened;
        assert!(matches!(
            again.bind_federation(other),
            Err(BindError::WrongFederation { found, expected }) if found == fed && expected == other
        ));
    }

    #[test]
    fn a_key_file_readable_by_others_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().expect("tempdir");
        DataDir::init(dir.path(), options(StakeholderType::Academia, None)).expect("init");
        let key = dir.path().join(ORG_KEY_FILE);
        fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).expect("chmod");
        let err = DataDir::open(dir.path()).expect_err("refused");
        assert!(
            matches!(&err, OpenError::InsecurePermissions { path, mode: 0o644 } if path == &key),
            "{err}"
        );
        let msg = err.to_string();
        assert!(msg.contains(&key.display().to_string()), "{msg}");
        assert!(
            msg.contains(&format!("chmod 600 {}", key.display())),
            "{msg}"
        );
        fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).expect("chmod");
        DataDir::open(dir.path()).expect("fixed");
    }

    #[test]
    fn a_second_init_is_refused_and_changes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first =
            DataDir::init(dir.path(), options(StakeholderType::Academia, None)).expect("init");
        let err = DataDir::init(dir.path(), options(StakeholderType::Academia, None))
            .expect_err("refused");
        assert!(matches!(err, InitError::AlreadyInitialised { .. }), "{err}");
        assert!(err.to_string().contains("already initialised"));
        let again = DataDir::open(dir.path()).expect("open");
        assert_eq!(again.org_id(), first.org_id());
    }

    #[test]
    fn a_missing_file_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        DataDir::init(dir.path(), options(StakeholderType::Academia, None)).expect("init");
        let inception = dir.path().join(INCEPTION_FILE);
        fs::remove_file(&inception).expect("remove");
        let err = DataDir::open(dir.path()).expect_err("refused");
        assert!(
            matches!(&err, OpenError::Missing { path } if path == &inception),
            "{err}"
        );
        assert!(DataDir::open(dir.path().join("nowhere")).is_err());
    }

    #[test]
    fn the_wrong_federation_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut d =
            DataDir::init(dir.path(), options(StakeholderType::Academia, None)).expect("init");
        let ours = FederationId([1; 32]);
        let mut theirs = ours;
        theirs.0[31] ^= 1; // differs only in the last byte
        d.check_federation(theirs)
            .expect("an unbound directory has no federation yet");
        d.bind_federation(ours).expect("bind");
        d.check_federation(ours).expect("ours");
        let err = DataDir::open(dir.path())
            .expect("open")
            .check_federation(theirs)
            .expect_err("refused");
        assert!(
            matches!(err, OpenError::WrongFederation { found, expected } if found == ours && expected == theirs),
            "{err}"
        );
        assert!(err
            .to_string()
            .starts_with(&format!("this data directory belongs to federation {ours}")));
    }

    #[test]
    fn a_broken_config_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        DataDir::init(dir.path(), options(StakeholderType::Academia, None)).expect("init");
        write_atomic(dir.path(), CONFIG_FILE, b"mnds = true\n").expect("write");
        let err = DataDir::open(dir.path()).expect_err("refused");
        assert!(matches!(&err, OpenError::Config { .. }), "{err}");
        assert!(err.to_string().contains("config.toml"));
    }

    #[test]
    fn a_damaged_key_file_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        DataDir::init(dir.path(), options(StakeholderType::Academia, None)).expect("init");
        let key = dir.path().join(NODE_KEY_FILE);
        write_atomic(dir.path(), NODE_KEY_FILE, &[1; 31]).expect("write");
        let err = DataDir::open(dir.path()).expect_err("refused");
        assert!(
            matches!(&err, OpenError::Damaged { path, .. } if path == &key),
            "{err}"
        );
        assert!(err.to_string().contains("node.key"));
    }

    #[test]
    fn a_swapped_org_key_is_caught() {
        let dir = tempfile::tempdir().expect("tempdir");
        DataDir::init(dir.path(), options(StakeholderType::Academia, None)).expect("init");
        write_atomic(dir.path(), ORG_KEY_FILE, &[9; 32]).expect("write");
        let err = DataDir::open(dir.path()).expect_err("refused");
        assert!(
            matches!(&err, OpenError::Damaged { path, .. } if path.ends_with(INCEPTION_FILE)),
            "{err}"
        );
    }
}
