//! The bundle's layout and its manifest, `wsl-delta/manifest.json`, as
//! types: every store path in it is a [`StorePath`], every hash a
//! [`NarHash`] or checked hex. A manifest from a bundle is hostile input:
//! [`BundleManifest`] deserializes only through [`RawManifest`] and the
//! checks of [`TryFrom`], whose error names the field (`requires[3]`,
//! `paths[0].references[1]`), so nothing downstream (the `apply` script,
//! Nix's command lines, the reports) ever sees unchecked text.

use serde::{Deserialize, Serialize};

use crate::sign::{add_signature, Domain, Signature, SigningKey};
use crate::store::{NarHash, StoreDir, StorePath};

/// The directory every member is in.
pub const BUNDLE_DIR: &str = "wsl-delta";
pub const MANIFEST_MEMBER: &str = "wsl-delta/manifest.json";
pub const APPLY_MEMBER: &str = "wsl-delta/apply";
pub const EXPORT_MEMBER: &str = "wsl-delta/nix-export";
/// Version of the bundle's layout and manifest.
pub const BUNDLE_VERSION: u32 = 1;
/// The one store directory bundles are made for and read with.
pub const STORE_DIR: StoreDir = StoreDir::NIX;

/// One store path the bundle ships.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(into = "RawBundlePath")]
pub struct BundlePath {
    /// The store path shipped.
    pub path: StorePath,
    /// Its NAR hash, which the import is checked against.
    pub nar_hash: NarHash,
    /// Its NAR's size in bytes: how much of the export stream it takes.
    pub nar_size: u64,
    /// Sorted (by basename, which is by absolute path), as the export
    /// stream lists them.
    pub references: Vec<StorePath>,
}

impl BundlePath {
    /// `/nix/store/<basename>`.
    pub fn absolute(&self) -> String {
        absolute(&self.path)
    }
}

/// `/nix/store/<basename>` of a path of a bundle.
pub fn absolute(path: &StorePath) -> String {
    path.to_absolute(&STORE_DIR)
}

/// SHA-256 (lowercase hex, checked) and size of the `nix-export` member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportDigest {
    pub sha256: String,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleTool {
    pub name: String,
    pub version: String,
}

/// `wsl-delta/manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "RawManifest", try_from = "RawManifest")]
pub struct BundleManifest {
    /// Version of the bundle's layout, [`BUNDLE_VERSION`].
    pub bundle_version: u32,
    /// The wsl-tarball that wrote the bundle: its name and version.
    pub tool: BundleTool,
    /// Always [`STORE_DIR`].
    pub store_dir: String,
    /// The system the bundle updates, when OLD named one (a tarball or a
    /// manifest; a closure file names none).
    pub old_system: Option<StorePath>,
    /// The system the bundle moves to.
    pub new_system: StorePath,
    /// What OLD was: `tarball`, `manifest` or `closure`.
    pub baseline: String,
    /// The paths shipped, in the export stream's (dependency) order.
    pub paths: Vec<BundlePath>,
    /// References of the shipped paths that are not shipped: what the old
    /// system must already have.
    pub requires: Vec<StorePath>,
    /// SHA-256 and size of the `nix-export` member.
    pub export: ExportDigest,
    /// `passed` or `skipped`.
    pub security_checks: String,
    /// Signatures of the rest, in key-name order.
    pub signatures: Vec<Signature>,
}

impl BundleManifest {
    /// The manifest as a JSON value, as its signatures cover it.
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("a manifest serialises")
    }

    /// Adds (or replaces) `key`'s signature.
    pub fn sign(&mut self, key: &SigningKey) {
        let signature = key
            .sign_manifest(Domain::Bundle, &self.to_value())
            .expect("a manifest is a JSON object");
        self.signatures = add_signature(&self.signatures, signature);
    }

    /// The manifest as pretty JSON with a final newline, as the bundle stores it.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Sum of the shipped paths' NAR sizes.
    pub fn nar_bytes(&self) -> u64 {
        self.paths.iter().map(|p| p.nar_size).sum()
    }

    /// The old system's absolute path, when the bundle names one.
    pub fn old_system_path(&self) -> Option<String> {
        self.old_system.as_ref().map(absolute)
    }

    /// The new system's absolute path.
    pub fn new_system_path(&self) -> String {
        absolute(&self.new_system)
    }
}

/// A [`BundlePath`] as JSON has it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawBundlePath {
    pub path: String,
    /// SRI, as `nix path-info --json` writes it.
    pub nar_hash: String,
    pub nar_size: u64,
    pub references: Vec<String>,
}

impl From<BundlePath> for RawBundlePath {
    fn from(path: BundlePath) -> Self {
        RawBundlePath {
            path: path.absolute(),
            nar_hash: path.nar_hash.to_sri(),
            nar_size: path.nar_size,
            references: path.references.iter().map(absolute).collect(),
        }
    }
}

/// A [`BundleManifest`] as JSON has it: text nothing may use unchecked.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawManifest {
    pub bundle_version: u32,
    pub tool: BundleTool,
    pub store_dir: String,
    pub old_system: Option<String>,
    pub new_system: String,
    pub baseline: String,
    pub paths: Vec<RawBundlePath>,
    pub requires: Vec<String>,
    pub export: ExportDigest,
    pub security_checks: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signatures: Vec<String>,
}

impl From<BundleManifest> for RawManifest {
    fn from(manifest: BundleManifest) -> Self {
        RawManifest {
            bundle_version: manifest.bundle_version,
            tool: manifest.tool,
            store_dir: manifest.store_dir,
            old_system: manifest.old_system.as_ref().map(absolute),
            new_system: absolute(&manifest.new_system),
            baseline: manifest.baseline,
            paths: manifest.paths.into_iter().map(Into::into).collect(),
            requires: manifest.requires.iter().map(absolute).collect(),
            export: manifest.export,
            security_checks: manifest.security_checks,
            signatures: manifest.signatures.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// A manifest field that is not what it must be; the text starts with the
/// field's name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ManifestFieldError {
    pub field: String,
    pub message: String,
}

fn field_error(field: impl Into<String>, message: impl ToString) -> ManifestFieldError {
    ManifestFieldError {
        field: field.into(),
        message: message.to_string(),
    }
}

/// Parses `text`, the manifest's `field`, as a store path under [`STORE_DIR`].
pub fn parse_store_path(field: &str, text: &str) -> Result<StorePath, ManifestFieldError> {
    // `from_absolute` also takes a trailing slash; the manifest has none.
    StorePath::from_absolute(text, &STORE_DIR)
        .map_err(|e| field_error(field, e))
        .and_then(|path| match absolute(&path) == text {
            true => Ok(path),
            false => Err(field_error(
                field,
                format!("\"{text}\" is not a store path"),
            )),
        })
}

fn one_of(field: &str, text: String, allowed: &[&str]) -> Result<String, ManifestFieldError> {
    match allowed.contains(&text.as_str()) {
        true => Ok(text),
        false => Err(field_error(
            field,
            format!("\"{text}\" is not one of {}", allowed.join(", ")),
        )),
    }
}

impl TryFrom<RawManifest> for BundleManifest {
    type Error = ManifestFieldError;

    fn try_from(raw: RawManifest) -> Result<Self, Self::Error> {
        if raw.store_dir != STORE_DIR.as_str() {
            return Err(field_error(
                "storeDir",
                format!(
                    "\"{}\": bundles are made for {STORE_DIR} only",
                    raw.store_dir
                ),
            ));
        }
        let old_system = raw
            .old_system
            .as_deref()
            .map(|text| parse_store_path("oldSystem", text))
            .transpose()?;
        let new_system = parse_store_path("newSystem", &raw.new_system)?;
        let mut paths = Vec::with_capacity(raw.paths.len());
        for (i, entry) in raw.paths.into_iter().enumerate() {
            let path = parse_store_path(&format!("paths[{i}].path"), &entry.path)?;
            let nar_hash = NarHash::parse(&entry.nar_hash)
                .map_err(|e| field_error(format!("paths[{i}].narHash"), e))?;
            let references = entry
                .references
                .iter()
                .enumerate()
                .map(|(j, text)| parse_store_path(&format!("paths[{i}].references[{j}]"), text))
                .collect::<Result<Vec<_>, _>>()?;
            paths.push(BundlePath {
                path,
                nar_hash,
                nar_size: entry.nar_size,
                references,
            });
        }
        let requires = raw
            .requires
            .iter()
            .enumerate()
            .map(|(i, text)| parse_store_path(&format!("requires[{i}]"), text))
            .collect::<Result<Vec<_>, _>>()?;
        let sha256 = &raw.export.sha256;
        if sha256.len() != 64
            || !sha256
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(field_error(
                "export.sha256",
                format!("\"{sha256}\" is not 64 lowercase hex digits"),
            ));
        }
        let signatures = raw
            .signatures
            .iter()
            .enumerate()
            .map(|(i, text)| {
                Signature::parse(text).map_err(|e| field_error(format!("signatures[{i}]"), e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(BundleManifest {
            signatures,
            bundle_version: raw.bundle_version,
            tool: raw.tool,
            store_dir: raw.store_dir,
            old_system,
            new_system,
            baseline: one_of(
                "baseline",
                raw.baseline,
                &["tarball", "manifest", "closure"],
            )?,
            paths,
            requires,
            export: raw.export,
            security_checks: one_of(
                "securityChecks",
                raw.security_checks,
                &["passed", "skipped"],
            )?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATH: &str = "/nix/store/00000000000000000000000000000000-a";

    fn raw() -> RawManifest {
        RawManifest {
            bundle_version: BUNDLE_VERSION,
            tool: BundleTool {
                name: "wsl-tarball".into(),
                version: "0".into(),
            },
            store_dir: STORE_DIR.to_string(),
            old_system: None,
            new_system: PATH.into(),
            baseline: "closure".into(),
            paths: vec![RawBundlePath {
                path: PATH.into(),
                nar_hash: NarHash([0; 32]).to_sri(),
                nar_size: 8,
                references: vec![PATH.into()],
            }],
            requires: Vec::new(),
            export: ExportDigest {
                sha256: "0".repeat(64),
                size: 8,
            },
            security_checks: "skipped".into(),
            signatures: Vec::new(),
        }
    }

    #[test]
    fn a_manifest_round_trips_through_json() {
        let manifest = BundleManifest::try_from(raw()).unwrap();
        let json = manifest.to_json();
        assert!(
            json.contains(&format!("\"newSystem\": \"{PATH}\"")),
            "{json}"
        );
        let back: BundleManifest = serde_json::from_str(&json).unwrap();
        assert_eq!(back, manifest);
    }

    #[test]
    fn every_field_that_is_no_store_path_is_named() {
        type Edit = fn(&mut RawManifest);
        let cases: [(Edit, &str); 8] = [
            (|m| m.signatures = vec!["k:AAAA".into()], "signatures[0]: "),
            (|m| m.requires = vec!["--store".into()], "requires[0]: "),
            (
                |m| m.old_system = Some(format!("{PATH}';x;#")),
                "oldSystem: ",
            ),
            (|m| m.new_system = format!("{PATH}/"), "newSystem: "),
            (|m| m.paths[0].path = "a".into(), "paths[0].path: "),
            (
                |m| m.paths[0].references = vec![PATH.into(), "/etc".into()],
                "paths[0].references[1]: ",
            ),
            (|m| m.store_dir = "/gnu/store".into(), "storeDir: "),
            (|m| m.export.sha256 = "'".repeat(64), "export.sha256: "),
        ];
        for (edit, field) in cases {
            let mut manifest = raw();
            edit(&mut manifest);
            let error = BundleManifest::try_from(manifest).unwrap_err().to_string();
            assert!(error.starts_with(field), "{error}");
        }
    }
}
