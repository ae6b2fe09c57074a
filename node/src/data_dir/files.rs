//! The private-file primitives every data-directory file goes through: atomic writes with mode 0600 from the
//! start, reads capped before allocation, and the refusal of a secret file others can read.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use super::{OpenError, API_TOKEN_BYTES, SEED_LEN};

/// Writes `dir/name` atomically: a temporary file created with mode 0600 (never wider, not even briefly), written,
/// fsynced, renamed over the target, and the directory fsynced so the rename itself survives a crash.
pub(super) fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
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
pub(super) fn check_private(path: &Path) -> Result<(), OpenError> {
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
pub(super) fn read_capped(path: &Path, max: u64) -> Result<Vec<u8>, OpenError> {
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

pub(super) fn read_seed(path: &Path) -> Result<[u8; SEED_LEN], OpenError> {
    let bytes = read_capped(path, SEED_LEN as u64)?;
    <[u8; SEED_LEN]>::try_from(bytes.as_slice()).map_err(|_| OpenError::Damaged {
        path: path.to_path_buf(),
        reason: format!(
            "a key file holds exactly {SEED_LEN} bytes, found {}",
            bytes.len()
        ),
    })
}

pub(super) fn read_api_token(path: &Path) -> Result<String, OpenError> {
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
