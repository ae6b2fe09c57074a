//! A stocktaking bundle on disk: reading it for the verifier (refusing anything a bundle never contains) and
//! writing it for the Chair.
//!
//! Reading applies the protocol's limits (`wsis_protocol::limits`: `MAX_BUNDLE_FILES`, `MAX_BUNDLE_FILE_BYTES`,
//! `MAX_BUNDLE_BYTES`, and `bundle::check_path` for names) while it reads, not after: a bundle is untrusted input,
//! and reading it whole before the verifier's own checks let a 600 MB junk file cost 620 MB of memory before it
//! was refused. First the tree is listed without reading any file — every name checked, symlinks and special
//! files (FIFOs, sockets, devices) refused, files counted and each one's size taken from its metadata — so a bundle
//! with too many files, or one too large, is refused before a byte of it is read. Then each file is opened without
//! following a symlink and without blocking (a FIFO swapped in after the listing cannot hang the verifier), checked
//! again to be a regular file of an acceptable size, and read through a reader bounded by what is left of its
//! allowance (a file can grow between the listing and the read). Every refusal names the file and the limit.
//! The protocol's verifier checks the same limits again on the files it is given (catalogue case 38).

use crate::Failure;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use wsis_protocol::bundle::{check_path, PathError};
use wsis_protocol::limits::{MAX_BUNDLE_BYTES, MAX_BUNDLE_FILES, MAX_BUNDLE_FILE_BYTES};

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
    #[error("{0}: not a regular file or directory (a FIFO, socket or device?); a bundle holds only regular files")]
    Special(String),
    #[error("{0}: not a valid bundle path")]
    BadName(String),
    #[error("{name}: not a valid bundle path: {reason}")]
    BadPath { name: String, reason: PathError },
    #[error("more than {MAX_BUNDLE_FILES} files (MAX_BUNDLE_FILES); refused before reading any")]
    TooManyFiles,
    #[error("more than {MAX_BUNDLE_FILES} directories; refused before reading any file")]
    TooManyDirectories,
    #[error("{file}: {len} bytes, a bundle file holds at most {MAX_BUNDLE_FILE_BYTES} (MAX_BUNDLE_FILE_BYTES); refused without reading it")]
    FileTooLarge { file: String, len: u64 },
    #[error("{file}: with it the bundle exceeds {MAX_BUNDLE_BYTES} bytes (MAX_BUNDLE_BYTES); refused without reading it")]
    BundleTooLarge { file: String },
    #[error("{file}: grew past {max} bytes while being read (MAX_BUNDLE_FILE_BYTES, or what MAX_BUNDLE_BYTES leaves); reading stopped there")]
    Grew { file: String, max: u64 },
    #[error("{file}: cannot allocate {len} bytes to read it")]
    OutOfMemory { file: String, len: u64 },
    #[error("{0} exists and is not empty; choose a new directory")]
    NotEmpty(PathBuf),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DirError + '_ {
    move |source| DirError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A regular file found by [`list`], not read yet.
#[derive(Debug)]
struct Listed {
    rel: String,
    path: PathBuf,
}

/// Reads every file under `root` (relative path with `/` → bytes), within the protocol's limits: [`list`]
/// first, then each file through [`read_file`].
pub fn read(root: &Path) -> Result<BTreeMap<String, Vec<u8>>, DirError> {
    let listed = list(root)?;
    let mut files = BTreeMap::new();
    let mut total = 0u64;
    for f in listed {
        // The listing bounded the sum of the listed sizes; the running total of what was really read bounds
        // files that grew since.
        let bytes = read_file(&f.path, &f.rel, MAX_BUNDLE_BYTES.saturating_sub(total))?;
        total = total.saturating_add(bytes.len() as u64);
        files.insert(f.rel, bytes);
    }
    Ok(files)
}

/// Lists the regular files under `root` without reading any: names pass `check_path` (which bounds the depth
/// too: a path is at most `MAX_BUNDLE_PATH_BYTES`), symlinks and special files are refused, at most
/// `MAX_BUNDLE_FILES` files (and as many directories), each at most `MAX_BUNDLE_FILE_BYTES` by its metadata, at
/// most `MAX_BUNDLE_BYTES` in all. Stops at the first entry past a limit, so a huge directory is not listed whole.
fn list(root: &Path) -> Result<Vec<Listed>, DirError> {
    let meta = std::fs::symlink_metadata(root).map_err(io(root))?;
    if meta.file_type().is_symlink() {
        return Err(DirError::Symlink(root.display().to_string()));
    }
    let mut out: Vec<Listed> = Vec::new();
    let mut total = 0u64;
    let mut dirs = 0usize;
    let mut stack = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, prefix)) = stack.pop() {
        for entry in std::fs::read_dir(&dir).map_err(io(&dir))? {
            let entry = entry.map_err(io(&dir))?;
            let name = entry
                .file_name()
                .into_string()
                .map_err(|n| DirError::BadName(format!("{prefix}{}", n.to_string_lossy())))?;
            let rel = format!("{prefix}{name}");
            check_path(&rel).map_err(|reason| DirError::BadPath {
                name: rel.clone(),
                reason,
            })?;
            // `DirEntry::file_type` and `DirEntry::metadata` do not follow symlinks.
            let kind = entry.file_type().map_err(io(&entry.path()))?;
            if kind.is_symlink() {
                return Err(DirError::Symlink(rel));
            } else if kind.is_dir() {
                dirs += 1;
                if dirs > MAX_BUNDLE_FILES {
                    return Err(DirError::TooManyDirectories);
                }
                stack.push((entry.path(), format!("{rel}/")));
            } else if kind.is_file() {
                if out.len() >= MAX_BUNDLE_FILES {
                    return Err(DirError::TooManyFiles);
                }
                let len = entry.metadata().map_err(io(&entry.path()))?.len();
                if len > MAX_BUNDLE_FILE_BYTES as u64 {
                    return Err(DirError::FileTooLarge { file: rel, len });
                }
                total = total.saturating_add(len);
                if total > MAX_BUNDLE_BYTES {
                    return Err(DirError::BundleTooLarge { file: rel });
                }
                out.push(Listed {
                    rel,
                    path: entry.path(),
                });
            } else {
                return Err(DirError::Special(rel));
            }
        }
    }
    Ok(out)
}

/// Opens a listed file without following a symlink and without blocking (opening a FIFO for reading would wait
/// for a writer), so that whatever replaced the listed file since is seen, not waited on or followed.
fn open(path: &Path) -> std::io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    options.open(path)
}

/// Reads one file: a regular file (checked on the open handle), of at most `MAX_BUNDLE_FILE_BYTES` and at most
/// `bundle_left`, read through a reader that stops one byte past that allowance.
fn read_file(path: &Path, rel: &str, bundle_left: u64) -> Result<Vec<u8>, DirError> {
    let file = match open(path) {
        Ok(f) => f,
        // O_NOFOLLOW on a symlink (swapped in since the listing).
        Err(e) if e.raw_os_error() == Some(libc_eloop()) => {
            return Err(DirError::Symlink(rel.to_string()))
        }
        Err(e) => return Err(io(path)(e)),
    };
    let meta = file.metadata().map_err(io(path))?;
    if !meta.is_file() {
        return Err(DirError::Special(rel.to_string()));
    }
    let file_max = MAX_BUNDLE_FILE_BYTES as u64;
    let room = file_max.min(bundle_left);
    if meta.len() > file_max {
        return Err(DirError::FileTooLarge {
            file: rel.to_string(),
            len: meta.len(),
        });
    }
    if meta.len() > room {
        return Err(DirError::BundleTooLarge {
            file: rel.to_string(),
        });
    }
    // The capacity is the checked size, reserved fallibly (a verifier run under a memory limit gets an error, not
    // an abort); a file that grew is read up to one byte past its allowance, no further.
    let mut bytes = Vec::new();
    let want = usize::try_from(meta.len()).unwrap_or(usize::MAX);
    bytes
        .try_reserve_exact(want)
        .map_err(|_| DirError::OutOfMemory {
            file: rel.to_string(),
            len: meta.len(),
        })?;
    file.take(room.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io(path))?;
    if bytes.len() as u64 > room {
        return Err(DirError::Grew {
            file: rel.to_string(),
            max: room,
        });
    }
    Ok(bytes)
}

/// The errno `open` gives for a symlink under O_NOFOLLOW.
fn libc_eloop() -> i32 {
    #[cfg(unix)]
    {
        libc::ELOOP
    }
    #[cfg(not(unix))]
    {
        -1
    }
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
    let c = &verified.closing;
    Ok(serde_json::json!({
        "bundle": dir.display().to_string(),
        "federation": verified.manifest.header.federation.to_string(),
        "year": verified.year,
        "closing_checkpoint": verified.manifest.header.closing_checkpoint.to_string(),
        "closing_ballots": c.ballots.len(),
        "closing_tally": closing_tally(c),
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

/// The closing checkpoint's tally in words: what `wsis verify` and `wsis stocktake assemble` say of the closing
/// point (the verifier counted every ballot on the checkpoint the bundle holds).
pub fn closing_tally(c: &wsis_protocol::bundle::ClosingPoint) -> String {
    format!(
        "{} yes, {} no of {} coordinators",
        c.yes, c.no, c.electorate
    )
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

    /// A file whose metadata says less than it yields (procfs reports 0 bytes; a file can also grow between the
    /// listing and the read) is read no further than its allowance, and refused naming it.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_file_that_yields_more_than_its_size_is_read_no_further_than_its_allowance() {
        let status = Path::new("/proc/self/status");
        assert_eq!(std::fs::metadata(status).expect("procfs").len(), 0);
        let err = read_file(status, "gov/ops", 5).unwrap_err();
        assert!(
            matches!(err, DirError::Grew { ref file, max: 5 } if file == "gov/ops"),
            "{err}"
        );
        assert!(!read_file(status, "gov/ops", 1 << 20)
            .expect("read within the allowance")
            .is_empty());
    }

    /// A name no bundle path can have is refused by name while listing, before any file is read.
    #[test]
    fn a_bad_name_is_refused_while_listing() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("manifest.json"), b"m").expect("file");
        std::fs::write(dir.path().join("bad name"), b"x").expect("file");
        let err = read(dir.path()).unwrap_err();
        assert!(
            matches!(err, DirError::BadPath { ref name, reason: PathError::BadCharacter(' ') } if name == "bad name"),
            "{err}"
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
