//! OpenSSH signatures (`PROTOCOL.sshsig` in the OpenSSH sources), for ed25519 keys and SHA-512 only: enough for
//! the Chair's signature over a bundle manifest to be checked with `ssh-keygen -Y verify`.
//!
//! The signed data is `"SSHSIG" || string(namespace) || string("") || string("sha512") || string(SHA-512(message))`
//! and is signed with plain ed25519 (no wsis domain tag: the `SSHSIG` preamble and the namespace are the domain
//! separation). The signature blob is `"SSHSIG" || uint32(1) || string(public key blob) || string(namespace) ||
//! string("") || string("sha512") || string(signature blob)`, armored as base64 in lines of 70 characters between
//! `-----BEGIN SSH SIGNATURE-----` and `-----END SSH SIGNATURE-----`. An SSH `string` is a 4-byte big-endian length
//! and the bytes.

use crate::crypto::{Domain, PublicKey, SecretKey, SIGNATURE_LEN};
use sha2::{Digest, Sha512};

/// The SSHSIG namespace of a bundle manifest signature: the tag of [`Domain::BundleManifest`].
pub fn namespace() -> &'static str {
    // The tags are ASCII literals.
    std::str::from_utf8(Domain::BundleManifest.tag()).unwrap_or("wsis/v1/bundle-manifest")
}

const MAGIC: &[u8; 6] = b"SSHSIG";
const KEY_TYPE: &str = "ssh-ed25519";
const HASH: &str = "sha512";
const BEGIN: &str = "-----BEGIN SSH SIGNATURE-----\n";
const END: &str = "-----END SSH SIGNATURE-----\n";
const LINE: usize = 70;
/// An armored ed25519 signature is about 300 bytes; anything much larger is not one.
const MAX_ARMORED: usize = 4096;

/// Why an SSH signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SshSigError {
    #[error("not an armored ssh signature")]
    Armor,
    #[error("invalid base64")]
    Base64,
    #[error("malformed signature blob: {0}")]
    Malformed(&'static str),
    #[error("signed by another key than the chair's")]
    WrongKey,
    #[error("namespace is not `{}`", namespace())]
    WrongNamespace,
    #[error("hash algorithm is not sha512")]
    UnsupportedHash,
    #[error("signature does not verify")]
    BadSignature,
}

fn put_string(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// The SSH wire form of an ed25519 public key: `string("ssh-ed25519") || string(key)`.
pub fn public_key_blob(key: &PublicKey) -> Vec<u8> {
    let mut out = Vec::with_capacity(51);
    put_string(&mut out, KEY_TYPE.as_bytes());
    put_string(&mut out, key.as_bytes());
    out
}

/// The bytes ed25519 signs for `message` in `namespace`.
pub fn signed_data(namespace: &str, message: &[u8]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    put_string(&mut out, namespace.as_bytes());
    put_string(&mut out, b"");
    put_string(&mut out, HASH.as_bytes());
    put_string(&mut out, &Sha512::digest(message));
    out
}

/// Signs `message` in the bundle-manifest namespace; returns the armored signature (what `ssh-keygen -Y sign`
/// writes to `<file>.sig`).
pub fn sign(key: &SecretKey, message: &[u8]) -> String {
    let sig = key.sign_raw(&signed_data(namespace(), message));
    armor(&blob(&key.public(), &sig))
}

fn blob(key: &PublicKey, sig: &[u8; SIGNATURE_LEN]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&1u32.to_be_bytes());
    put_string(&mut out, &public_key_blob(key));
    put_string(&mut out, namespace().as_bytes());
    put_string(&mut out, b"");
    put_string(&mut out, HASH.as_bytes());
    let mut s = Vec::with_capacity(83);
    put_string(&mut s, KEY_TYPE.as_bytes());
    put_string(&mut s, sig);
    put_string(&mut out, &s);
    out
}

fn armor(blob: &[u8]) -> String {
    let b64 = base64_encode(blob);
    let mut out = String::from(BEGIN);
    for chunk in b64.as_bytes().chunks(LINE) {
        // base64 output is ASCII.
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(END);
    out
}

/// The `allowed_signers` line for the Chair's key: principal `chair`, restricted to the namespace.
pub fn allowed_signers_line(key: &PublicKey) -> String {
    format!(
        "chair namespaces=\"{}\" {KEY_TYPE} {}\n",
        namespace(),
        base64_encode(&public_key_blob(key))
    )
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], SshSigError> {
        if self.0.len() < n {
            return Err(SshSigError::Malformed("truncated"));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }

    fn u32(&mut self) -> Result<u32, SshSigError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn string(&mut self) -> Result<&'a [u8], SshSigError> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    fn done(&self) -> Result<(), SshSigError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(SshSigError::Malformed("trailing bytes"))
        }
    }
}

/// Verifies an armored SSHSIG over `message` in the bundle-manifest namespace, made by `key`, strictly: only the
/// exact encoding this module writes is accepted, and the ed25519 signature is checked with `verify_strict`.
pub fn verify(armored: &[u8], message: &[u8], key: &PublicKey) -> Result<(), SshSigError> {
    if armored.len() > MAX_ARMORED {
        return Err(SshSigError::Armor);
    }
    let text = std::str::from_utf8(armored).map_err(|_| SshSigError::Armor)?;
    let inner = text
        .strip_prefix(BEGIN)
        .and_then(|t| t.strip_suffix(END))
        .ok_or(SshSigError::Armor)?;
    let b64: String = inner.split('\n').collect();
    let blob_bytes = base64_decode(&b64).ok_or(SshSigError::Base64)?;
    let mut r = Reader(&blob_bytes);
    if r.take(6)? != MAGIC {
        return Err(SshSigError::Malformed("magic"));
    }
    if r.u32()? != 1 {
        return Err(SshSigError::Malformed("version"));
    }
    let pk = r.string()?;
    let ns = r.string()?;
    let reserved = r.string()?;
    let hash = r.string()?;
    let sig_blob = r.string()?;
    r.done()?;
    let mut pr = Reader(pk);
    if pr.string()? != KEY_TYPE.as_bytes() {
        return Err(SshSigError::Malformed("key type"));
    }
    let pk_bytes = pr.string()?;
    pr.done()?;
    if pk_bytes != key.as_bytes() {
        return Err(SshSigError::WrongKey);
    }
    if ns != namespace().as_bytes() {
        return Err(SshSigError::WrongNamespace);
    }
    if !reserved.is_empty() {
        return Err(SshSigError::Malformed("reserved field"));
    }
    if hash != HASH.as_bytes() {
        return Err(SshSigError::UnsupportedHash);
    }
    let mut sr = Reader(sig_blob);
    if sr.string()? != KEY_TYPE.as_bytes() {
        return Err(SshSigError::Malformed("signature type"));
    }
    let sig: [u8; SIGNATURE_LEN] = sr
        .string()?
        .try_into()
        .map_err(|_| SshSigError::Malformed("signature length"))?;
    sr.done()?;
    // One encoding only: the armor, line breaks and base64 must be exactly what `sign` writes.
    if armor(&blob_bytes).as_bytes() != armored {
        return Err(SshSigError::Armor);
    }
    key.verify_raw(&signed_data(namespace(), message), &sig)
        .map_err(|_| SshSigError::BadSignature)
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 (RFC 4648 §4) with padding.
pub fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Strict standard base64: padding required, no whitespace, unused bits zero. `None` if invalid.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.as_bytes();
    if s.len() % 4 != 0 {
        return None;
    }
    let val = |c: u8| ALPHABET.iter().position(|&a| a == c).map(|v| v as u32);
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let quads = s.len() / 4;
    for (qi, q) in s.chunks(4).enumerate() {
        let pad = q.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && qi + 1 != quads) {
            return None;
        }
        let mut n = 0u32;
        for &c in &q[..4 - pad] {
            n = (n << 6) | val(c)?;
        }
        n <<= 6 * pad as u32;
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        let keep = 3 - pad;
        if bytes[keep..].iter().any(|&b| b != 0) {
            return None;
        }
        out.extend_from_slice(&bytes[..keep]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_and_is_strict() {
        for len in 0..40 {
            let v: Vec<u8> = (0..len as u8).map(|i| i.wrapping_mul(37)).collect();
            assert_eq!(base64_decode(&base64_encode(&v)), Some(v));
        }
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert_eq!(base64_decode("Zm9="), None, "non-zero unused bits");
        assert_eq!(base64_decode("Zm8"), None, "missing padding");
        assert_eq!(base64_decode("Zm8=Zm8="), None, "padding in the middle");
        assert_eq!(base64_decode("Zm 8"), None);
    }

    #[test]
    fn a_signature_verifies_only_for_its_message_key_and_encoding() {
        let k = SecretKey::from_seed(&[7; 32]);
        let other = SecretKey::from_seed(&[8; 32]);
        let sig = sign(&k, b"manifest");
        assert!(sig.starts_with(BEGIN) && sig.ends_with(END));
        assert!(sig.lines().all(|l| l.len() <= LINE));
        assert_eq!(verify(sig.as_bytes(), b"manifest", &k.public()), Ok(()));
        assert_eq!(
            verify(sig.as_bytes(), b"manifesT", &k.public()),
            Err(SshSigError::BadSignature)
        );
        assert_eq!(
            verify(sig.as_bytes(), b"manifest", &other.public()),
            Err(SshSigError::WrongKey)
        );
        let crlf = sig.replace('\n', "\r\n");
        assert!(verify(crlf.as_bytes(), b"manifest", &k.public()).is_err());
        // The signed data is domain-separated from the protocol's own signatures.
        let raw = k.sign_raw(&signed_data(namespace(), b"manifest"));
        assert!(k
            .public()
            .verify(Domain::BundleManifest, b"manifest", &raw)
            .is_err());
    }
}
