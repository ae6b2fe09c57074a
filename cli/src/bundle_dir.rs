//! A stocktaking bundle on disk: reading it for the verifier (refusing anything a bundle never contains) and
//! writing it for the Chair.
//!
//! Reading refuses symlinks, special files, names that are not plain relative paths, and sizes past the
//! protocol's limits, before anything is parsed (catalogue case 38).

use crate::Failure;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Files in a bundle at most (checked again, with sizes, by the protocol's verifier).
const MAX_FILES: usize = 1_000_000;
/// Bytes in one bundle at most.
const MAX_TOTAL_BYTES: u64 = 4 * 1024 * 1024 * 1024;
/// Directory depth at most.
const MAX_DEPTH: usize = 8;

/// Why a bundle directory could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DirError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}: a symlink; a bundle holds only regular files")]
    Symlink(String),
    #[error("{0}: not a regular file or directory")]
    Special(String),
    #[error("{0}: not a valid bundle path")]
    BadName(String),
    #[error("the bundle is too large (more than {MAX_FILES} files, {MAX_TOTAL_BYTES} bytes or {MAX_DEPTH} levels)")]
    TooLarge,
    #[error("{0} exists and is not empty; choose a new directory")]
    NotEmpty(PathBuf),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DirError + '_ {
    move |source| DirError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads every file under `root` (relative path with `/` → bytes).
pub fn read(root: &Path) -> Result<BTreeMap<String, Vec<u8>>, DirError> {
    let meta = std::fs::symlink_metadata(root).map_err(io(root))?;
    if meta.file_type().is_symlink() {
        return Err(DirError::Symlink(root.display().to_string()));
    }
    let mut files = BTreeMap::new();
    let mut total = 0u64;
    let mut stack = vec![(root.to_path_buf(), String::new(), 0usize)];
    while let Some((dir, prefix, depth)) = stack.pop() {
        if depth > MAX_DEPTH {
            return Err(DirError::TooLarge);
        }
        for entry in std::fs::read_dir(&dir).map_err(io(&dir))? {
            let entry = entry.map_err(io(&dir))?;
            let name = entry
                .file_name()
                .into_string()
                .map_err(|n| DirError::BadName(format!("{prefix}{}", n.to_string_lossy())))?;
            let rel = format!("{prefix}{name}");
            let kind = entry.file_type().map_err(io(&entry.path()))?;
            if kind.is_symlink() {
                return Err(DirError::Symlink(rel));
            } else if kind.is_dir() {
                stack.push((entry.path(), format!("{rel}/"), depth + 1));
            } else if kind.is_file() {
                let len = entry.metadata().map_err(io(&entry.path()))?.len();
                total = total.saturating_add(len);
                if files.len() >= MAX_FILES || total > MAX_TOTAL_BYTES {
                    return Err(DirError::TooLarge);
                }
                let bytes = std::fs::read(entry.path()).map_err(io(&entry.path()))?;
                files.insert(rel, bytes);
            } else {
                return Err(DirError::Special(rel));
            }
        }
    }
    Ok(files)
}

/// Writes a bundle into `root`, which must not exist or be empty. Each path is checked before anything is
/// written.
pub fn write(root: &Path, files: &BTreeMap<String, Vec<u8>>) -> Result<(), DirError> {
    for path in files.keys() {
        wsis_protocol::bundle::check_path(path).map_err(|_| DirError::BadName(path.clone()))?;
    }
    if root.exists() {
        let mut entries = std::fs::read_dir(root).map_err(io(root))?;
        if entries.next().is_some() {
            return Err(DirError::NotEmpty(root.to_path_buf()));
        }
    }
    std::fs::create_dir_all(root).map_err(io(root))?;
    for (rel, bytes) in files {
        let path = root.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::write(&path, bytes).map_err(io(&path))?;
    }
    Ok(())
}

/// `wsis verify`: reads and verifies a bundle; a summary as JSON on success.
pub fn verify_dir(dir: &Path, federation: &str) -> Result<serde_json::Value, Failure> {
    let fed = parse_federation(federation)?;
    let files = read(dir).map_err(|e| Failure::Failed(format!("invalid bundle: {e}")))?;
    let verified = wsis_protocol::bundle::verify(&files, &fed)
        .map_err(|e| Failure::Failed(format!("invalid bundle: {e}")))?;
    let submitted = verified.view.summary.outputs_submitted;
    Ok(serde_json::json!({
        "bundle": dir.display().to_string(),
        "federation": verified.manifest.header.federation.to_string(),
        "year": verified.year,
        "closing_checkpoint": verified.manifest.header.closing_checkpoint.to_string(),
        "chair": verified.manifest.header.chair.to_string(),
        "manifest_sha256": verified.manifest_hash.to_string(),
        "files": verified.manifest.files.len(),
        "ops": verified.replica.len(),
        "attested_documents": verified.attested.len(),
        "outputs_submitted": submitted,
        "teams": verified.view.summary.teams,
        "national_reports": verified.view.summary.national_reports,
    }))
}

/// `wsis report render`: verifies, then renders.
pub fn render_dir(dir: &Path, federation: Option<&str>, format: &str) -> Result<String, Failure> {
    let files = read(dir).map_err(|e| Failure::Failed(format!("invalid bundle: {e}")))?;
    let fed = match federation {
        Some(f) => parse_federation(f)?,
        None => {
            let manifest = files
                .get(wsis_protocol::bundle::MANIFEST)
                .ok_or_else(|| Failure::Failed("invalid bundle: no manifest.json".into()))?;
            let fed = wsis_protocol::bundle::Manifest::parse(manifest)
                .map_err(|e| Failure::Failed(format!("invalid bundle: manifest.json: {e}")))?
                .header
                .federation;
            eprintln!(
                "warning: no --federation given; verifying against the id the bundle claims ({fed}). Pin the id \
                 you trust with --federation."
            );
            fed
        }
    };
    let verified = wsis_protocol::bundle::verify(&files, &fed)
        .map_err(|e| Failure::Failed(format!("invalid bundle: {e}")))?;
    let format = match format {
        "html" => wsis_protocol::report::Format::Html,
        _ => wsis_protocol::report::Format::Markdown,
    };
    Ok(wsis_protocol::report::render(&verified, format))
}

fn parse_federation(s: &str) -> Result<wsis_protocol::ids::FederationId, Failure> {
    s.trim().parse().map_err(|_| {
        Failure::Usage(format!(
            "--federation {s}: expected fed_ followed by all 64 hex digits"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(entries: &[(&str, &[u8])]) -> BTreeMap<String, Vec<u8>> {
        entries
            .iter()
            .map(|(p, b)| (p.to_string(), b.to_vec()))
            .collect()
    }

    #[test]
    fn a_written_bundle_reads_back_byte_for_byte() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("bundle");
        let bundle = files(&[
            ("manifest.cbor", b"m"),
            ("documents/a/b.automerge", b"\0\x01"),
        ]);
        write(&root, &bundle).expect("written");
        assert_eq!(read(&root).expect("read"), bundle);
    }

    #[test]
    fn writing_refuses_a_non_empty_directory_and_escaping_names_before_writing_anything() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("keep"), b"operator's file").expect("seeded");
        let err = write(dir.path(), &files(&[("manifest.cbor", b"m")])).unwrap_err();
        assert!(matches!(err, DirError::NotEmpty(_)), "{err}");
        let fresh = dir.path().join("fresh");
        let err = write(
            &fresh,
            &files(&[("../escape", b"x"), ("manifest.cbor", b"m")]),
        )
        .unwrap_err();
        assert!(
            matches!(err, DirError::BadName(ref n) if n == "../escape"),
            "{err}"
        );
        assert!(!fresh.exists(), "nothing is written when one name is bad");
        assert_eq!(
            std::fs::read(dir.path().join("keep")).expect("kept"),
            b"operator's file"
        );
    }

    /// Catalogue case 38: a symlink inside a bundle, or the bundle itself being one, is refused by name before
    /// anything is parsed (the link could point anywhere on the auditor's machine).
    #[cfg(unix)]
    #[test]
    fn case_38_symlinks_are_refused_naming_the_link() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("bundle");
        write(&root, &files(&[("manifest.cbor", b"m"), ("gov/ops", b"o")])).expect("written");
        std::os::unix::fs::symlink("/etc/hostname", root.join("gov/extra")).expect("symlink");
        let err = read(&root).unwrap_err();
        assert!(
            matches!(err, DirError::Symlink(ref n) if n == "gov/extra"),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            "gov/extra: a symlink; a bundle holds only regular files"
        );

        let link = dir.path().join("link");
        std::fs::remove_file(root.join("gov/extra")).expect("removed");
        std::os::unix::fs::symlink(&root, &link).expect("symlink");
        assert!(matches!(read(&link), Err(DirError::Symlink(_))));
        assert!(read(&root).is_ok(), "the real directory still reads");
    }
}
