//! The manifest `write --manifest FILE` publishes beside a tarball.
//!
//! JSON with the tool version, the settings that shape the bytes, the
//! system path, every store path with its NAR hash and size, the tarball's
//! SHA-256 and size (hashed by [`HashingWriter`] as the compressed bytes are
//! written, never by reading the file again), and the security-check
//! outcome. Nothing in it depends on the machine or the time of the run, so
//! the same inputs give the same manifest.
//!
//! With an SBOM (`write --sbom`) it records the SBOM's file name and
//! SHA-256 (`sbom`), so a signature on the manifest covers the SBOM too.
//!
//! A signed manifest also lists `signatures` (Nix key name and ed25519
//! signature of its canonical form, see [`crate::sign`]); the field is left
//! out when there are none, and signing at write time or later
//! ([`Manifest::from_json`], [`Manifest::sign`]) gives the same bytes.

use std::io::{self, Write};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::sign::{add_signature, Domain, Signature, SigningKey};
use crate::store::Closure;

/// Version of the manifest's shape.
pub const MANIFEST_VERSION: u32 = 1;

/// The whole manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub manifest_version: u32,
    pub tool: Tool,
    pub settings: ManifestSettings,
    /// The NixOS toplevel `/nix/var/nix/profiles/system` points at.
    pub system: String,
    pub store_paths: Vec<ManifestStorePath>,
    pub tarball: ManifestTarball,
    pub security_checks: ManifestScan,
    /// The SBOM `write --sbom` wrote with the tarball, when it did (left
    /// out otherwise, so manifests without one keep their bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sbom: Option<ManifestSbom>,
    /// `NAME:BASE64` ed25519 signatures, in key-name order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signatures: Vec<Signature>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

/// The settings that decide the tarball's bytes (not the thread count,
/// which does not).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestSettings {
    pub compression: String,
    /// The effective level (the format's default when none was given);
    /// null for no compression.
    pub level: Option<u32>,
    pub mtime: u64,
    /// `sqlite` or `registration`.
    pub nix_db: String,
    pub store_dir: String,
    /// `nixos` (a NixOS skeleton, from the facts or the defaults) or `none`.
    pub skeleton: String,
    pub extra_files: Option<String>,
    /// `PATH UID:GID`, in the order given.
    pub chown: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestStorePath {
    pub path: String,
    /// SRI, as `nix path-info --json` writes it.
    pub nar_hash: String,
    pub nar_size: u64,
    pub references: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestTarball {
    /// The file name, without its directory.
    pub file: String,
    /// Lowercase hex SHA-256 of the file.
    pub sha256: String,
    pub size: u64,
    pub uncompressed_size: u64,
    pub entries: u64,
}

/// The SBOM written with the tarball: a signature on the manifest covers
/// it through its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestSbom {
    /// The file name, without its directory (`verify` looks for it beside
    /// the manifest).
    pub file: String,
    /// Lowercase hex SHA-256 of the file.
    pub sha256: String,
}

/// Whether the security scan ran and what it found (the manifest's
/// `securityChecks` section).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestScan {
    /// `passed`, or `skipped` (WSL_TARBALL_SKIP_CHECKS); a run with
    /// error-severity findings writes no manifest.
    pub status: String,
    /// The scan's own report, when it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<serde_json::Value>,
}

/// The store paths of a closure as manifest entries, in basename order.
pub fn manifest_store_paths(closure: &Closure) -> Vec<ManifestStorePath> {
    let store_dir = closure.store_dir();
    closure
        .iter()
        .map(|info| ManifestStorePath {
            path: info.path.to_absolute(store_dir),
            nar_hash: info.nar_hash.to_sri(),
            nar_size: info.nar_size,
            references: info
                .references
                .iter()
                .map(|r| r.to_absolute(store_dir))
                .collect(),
        })
        .collect()
}

/// Why a manifest file cannot be taken for signing.
#[derive(Debug, thiserror::Error)]
pub enum ManifestReadError {
    #[error("not a tarball manifest as wsl-tarball writes one: {0}")]
    Shape(serde_json::Error),
    #[error("it holds fields or values this version does not write (re-signing would drop them)")]
    NotRoundTrip,
}

impl Manifest {
    /// A manifest `write --manifest` wrote, from its JSON value; refused
    /// unless writing it back gives the same value (so a signature on what
    /// is written covers all that was read).
    pub fn from_json(value: &serde_json::Value) -> Result<Manifest, ManifestReadError> {
        let manifest: Manifest =
            serde_json::from_value(value.clone()).map_err(ManifestReadError::Shape)?;
        match serde_json::to_value(&manifest).ok().as_ref() == Some(value) {
            true => Ok(manifest),
            false => Err(ManifestReadError::NotRoundTrip),
        }
    }

    /// Adds (or replaces) `key`'s signature of this manifest.
    pub fn sign(&mut self, key: &SigningKey) {
        let value = serde_json::to_value(&*self).expect("a manifest serialises");
        let signature = key
            .sign_manifest(Domain::Image, &value)
            .expect("a manifest is a JSON object");
        self.signatures = add_signature(&self.signatures, signature);
    }

    /// Pretty JSON with a final newline.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }
}

/// A writer that hashes and counts what passes through it.
pub struct HashingWriter<W: Write> {
    inner: W,
    /// `None`: only counting.
    sha256: Option<Sha256>,
    bytes: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            sha256: Some(Sha256::new()),
            bytes: 0,
        }
    }

    /// A writer that counts the bytes but does not hash them (when nothing
    /// needs the SHA-256: it costs a pass over every byte).
    pub fn counting(inner: W) -> Self {
        HashingWriter {
            inner,
            sha256: None,
            bytes: 0,
        }
    }

    /// The inner writer, the SHA-256 (unless only counting) and the count
    /// of the bytes written.
    pub fn finish(self) -> (W, Option<[u8; 32]>, u64) {
        let sha256 = self.sha256.map(|hasher| hasher.finalize().into());
        (self.inner, sha256, self.bytes)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(bytes)?;
        if let Some(sha256) = &mut self.sha256 {
            sha256.update(&bytes[..n]);
        }
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashing_writer_hashes_exactly_what_was_written() {
        let mut writer = HashingWriter::new(Vec::new());
        writer.write_all(b"abc").unwrap();
        let (bytes, digest, count) = writer.finish();
        let digest = digest.unwrap();
        assert_eq!(bytes, b"abc");
        assert_eq!(count, 3);
        assert_eq!(
            crate::hex::encode(&digest),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
