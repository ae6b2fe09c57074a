//! Creating a data directory ([`DataDir::init`]): fresh keys, a signed inception record, the config template,
//! all or nothing.

use rand::RngCore;
use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use wsis_protocol::crypto::SecretKey;
use wsis_protocol::limits::{MAX_NAME_BYTES, MAX_TIMESTAMP_MS};
use wsis_protocol::op::{Country, Inception, StakeholderType};

use super::config::{Config, CONFIG_TEMPLATE};
use super::files::write_atomic;
use super::{
    DataDir, ALL_ENTRIES, API_TOKEN_BYTES, API_TOKEN_FILE, CONFIG_FILE, DB_DIR, INCEPTION_FILE,
    NODE_KEY_FILE, ORG_KEY_FILE, SEED_LEN,
};

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
    /// The record the options make would be refused by every peer's decoder (the same check as for every op
    /// this node signs: [`Inception::seal`]).
    #[error("this organisation's inception record would be refused by every peer: {0}")]
    Refused(#[source] wsis_protocol::op::OpError),
    #[error("cannot draw random bytes for the keys")]
    Random(#[source] rand::Error),
    #[error("cannot write {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
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
        .seal(&org_key)
        .map_err(InitError::Refused)?;
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
