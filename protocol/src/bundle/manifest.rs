//! The manifest and the seal: `manifest.json` lists every content file with its SHA-256 and size, in one canonical
//! form only; the seal signs it with the Chair's key (OpenSSH `SSHSIG`), names that key in `allowed_signers` and
//! writes `SHA256SUMS` and `VERIFY.txt`, so that stock tools can check files and signature without wsis.

use super::assemble::Bundle;
use super::layout::{check_path, PathError, ALLOWED_SIGNERS, MANIFEST, SHA256SUMS, SIGNATURE};
use super::sshsig;
use crate::crypto::{PublicKey, SecretKey};
use crate::ids::Hash32;
use crate::ids::{sha256, FederationId, OpId, OrgId};
use std::collections::BTreeMap;

/// The `format` of a bundle manifest.
pub const BUNDLE_FORMAT: &str = "wsis-bundle/1";

/// What the manifest says besides the file list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestHeader {
    pub federation: FederationId,
    pub year: u16,
    pub closing_checkpoint: OpId,
    pub chair: OrgId,
    pub chair_key: PublicKey,
}

/// A parsed manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub header: ManifestHeader,
    /// Path → (SHA-256, size).
    pub files: BTreeMap<String, (Hash32, u64)>,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestJson {
    // Fields in ascending order: serde_json writes them in declaration order, so this is the sorted-key form.
    chair: OrgId,
    chair_key: String,
    closing_checkpoint: OpId,
    federation: FederationId,
    files: BTreeMap<String, FileJson>,
    format: String,
    year: u16,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FileJson {
    sha256: String,
    size: u64,
}

/// Why `manifest.json` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    #[error("not a manifest: {0}")]
    Json(String),
    #[error("format is not {BUNDLE_FORMAT}")]
    Format,
    #[error("not in canonical form (sorted keys, no whitespace)")]
    NotCanonical,
    #[error("chair_key is not a valid ed25519 key")]
    Key,
    #[error("file entry {0}: sha256 is not 64 lowercase hex digits")]
    Hash(String),
    #[error("file entry {0}: {1}")]
    Path(String, PathError),
}

impl Manifest {
    /// Canonical JSON: sorted keys, no whitespace, no trailing newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        let m = ManifestJson {
            chair: self.header.chair,
            chair_key: hex::encode(self.header.chair_key.as_bytes()),
            closing_checkpoint: self.header.closing_checkpoint,
            federation: self.header.federation,
            files: self
                .files
                .iter()
                .map(|(p, (h, s))| {
                    (
                        p.clone(),
                        FileJson {
                            sha256: h.to_string(),
                            size: *s,
                        },
                    )
                })
                .collect(),
            format: BUNDLE_FORMAT.into(),
            year: self.header.year,
        };
        // Plain structs of strings and integers always serialise.
        serde_json::to_vec(&m).unwrap_or_default()
    }

    /// Parses a manifest, accepting only the canonical form.
    pub fn parse(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        let m: ManifestJson =
            serde_json::from_slice(bytes).map_err(|e| ManifestError::Json(e.to_string()))?;
        if m.format != BUNDLE_FORMAT {
            return Err(ManifestError::Format);
        }
        let mut key = [0u8; 32];
        if m.chair_key.len() != 64
            || m.chair_key.bytes().any(|b| b.is_ascii_uppercase())
            || hex::decode_to_slice(&m.chair_key, &mut key).is_err()
        {
            return Err(ManifestError::Key);
        }
        let chair_key = PublicKey::from_bytes(&key).map_err(|_| ManifestError::Key)?;
        let mut files = BTreeMap::new();
        for (p, f) in m.files {
            check_path(&p).map_err(|e| ManifestError::Path(p.clone(), e))?;
            let mut h = [0u8; 32];
            if f.sha256.len() != 64
                || f.sha256.bytes().any(|b| b.is_ascii_uppercase())
                || hex::decode_to_slice(&f.sha256, &mut h).is_err()
            {
                return Err(ManifestError::Hash(p));
            }
            files.insert(p, (Hash32(h), f.size));
        }
        let out = Manifest {
            header: ManifestHeader {
                federation: m.federation,
                year: m.year,
                closing_checkpoint: m.closing_checkpoint,
                chair: m.chair,
                chair_key,
            },
            files,
        };
        if out.to_bytes() != bytes {
            return Err(ManifestError::NotCanonical);
        }
        Ok(out)
    }
}

/// Why [`seal`] refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    #[error("the signing key is not the manifest's chair key")]
    WrongKey,
    #[error("{path}: {error}")]
    Path { path: String, error: PathError },
    #[error("{0} is written by the seal itself")]
    Reserved(String),
}

/// Files the seal writes (not listed in the manifest, except that `SHA256SUMS` covers the last two).
pub(super) const SEAL_FILES: [&str; 4] = [MANIFEST, SHA256SUMS, SIGNATURE, ALLOWED_SIGNERS];

/// Writes `manifest.json` over `content`, signs it, and adds `allowed_signers` and `SHA256SUMS`.
/// [`assemble`](super::assemble) uses it; it is public so that tests (and tools) can re-seal edited content — which
/// is exactly what an attacker holding the Chair's key can do, and why [`verify`](super::verify) checks far more
/// than the signature.
pub fn seal(
    header: &ManifestHeader,
    content: BTreeMap<String, Vec<u8>>,
    key: &SecretKey,
) -> Result<Bundle, SealError> {
    if key.public() != header.chair_key {
        return Err(SealError::WrongKey);
    }
    for p in content.keys() {
        check_path(p).map_err(|error| SealError::Path {
            path: p.clone(),
            error,
        })?;
        if SEAL_FILES.contains(&p.as_str()) {
            return Err(SealError::Reserved(p.clone()));
        }
    }
    let manifest = Manifest {
        header: header.clone(),
        files: content
            .iter()
            .map(|(p, b)| (p.clone(), (Hash32(sha256(b)), b.len() as u64)))
            .collect(),
    }
    .to_bytes();
    let mut files = content;
    files.insert(SIGNATURE.into(), sshsig::sign(key, &manifest).into_bytes());
    files.insert(
        ALLOWED_SIGNERS.into(),
        sshsig::allowed_signers_line(&header.chair_key).into_bytes(),
    );
    files.insert(MANIFEST.into(), manifest);
    let sums = sha256sums(&files);
    files.insert(SHA256SUMS.into(), sums);
    Ok(Bundle { files })
}

/// `SHA256SUMS` for every file but itself, in path order: `<hex>  <path>\n` (what `sha256sum` writes).
pub(super) fn sha256sums(files: &BTreeMap<String, Vec<u8>>) -> Vec<u8> {
    let mut out = String::new();
    for (p, b) in files {
        if p != SHA256SUMS {
            out.push_str(&hex::encode(sha256(b)));
            out.push_str("  ");
            out.push_str(p);
            out.push('\n');
        }
    }
    out.into_bytes()
}

/// Does `SHA256SUMS` list a different hash for `path` than its current content? False when it cannot tell.
pub(super) fn changed_since_sealing(files: &BTreeMap<String, Vec<u8>>, path: &str) -> bool {
    let Some(sums) = files.get(SHA256SUMS) else {
        return false;
    };
    let suffix = format!("  {path}");
    String::from_utf8_lossy(sums)
        .lines()
        .find_map(|l| l.strip_suffix(suffix.as_str()))
        .is_some_and(|hash| {
            files
                .get(path)
                .is_some_and(|b| hash != hex::encode(sha256(b)))
        })
}

/// `VERIFY.txt`.
pub fn verify_text(h: &ManifestHeader) -> String {
    let ns = sshsig::namespace();
    format!(
        "WSIS stocktaking bundle for {year}\n\
         federation: {fed}\n\
         chair: {chair}\n\
         chair key (ed25519, hex): {key}\n\
         closing checkpoint: {cp}\n\
         \n\
         How to check this bundle, from inside its directory:\n\
         \n\
         1. Every file is intact (GNU coreutils):\n\
         \n\
         \x20  sha256sum -c SHA256SUMS\n\
         \n\
         2. The Chair signed the manifest, which lists every file with its SHA-256 and size (OpenSSH 8.1 or later):\n\
         \n\
         \x20  ssh-keygen -Y verify -f allowed_signers -I chair -n {ns} -s manifest.json.sig < manifest.json\n\
         \n\
         3. The key in allowed_signers is the Chair's: compare the base64 key in allowed_signers (or the hex key\n\
         \x20  above) with the Chair's key as published elsewhere, e.g. on the secretariat's website or in the\n\
         \x20  Meeting's minutes. Steps 1 and 2 prove nothing if the key is not the Chair's.\n\
         \n\
         4. Everything else (every governance op, the Chair's role at the checkpoint, the coordinators' majority,\n\
         \x20  every submission included and none added, every document's content, the view) with the wsis tool,\n\
         \x20  pinning the federation id you obtained independently:\n\
         \n\
         \x20  wsis verify . --federation {fed}\n",
        year = h.year,
        fed = h.federation,
        chair = h.chair,
        key = hex::encode(h.chair_key.as_bytes()),
        cp = h.closing_checkpoint,
    )
}
