//! Reading a bundle back: [`is_bundle`] for the commands that take any
//! file, [`inspect_bundle`] (what it holds, what it needs from the old
//! system) and [`verify_bundle`] (layout, manifest, every NAR against its
//! hash, dependency order, closedness), offline and without Nix.

use crate::count::count;
use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;

use serde::Serialize;

use super::bundle::{
    BundleManifest, APPLY_MEMBER, BUNDLE_DIR, BUNDLE_VERSION, EXPORT_MEMBER, MANIFEST_MEMBER,
};
use super::export::check_export;
use super::DeltaError;
use crate::archive::{open_tarball, MemberKind, TarballReader};
use crate::hex;

/// The largest manifest read.
const MAX_MANIFEST_BYTES: u64 = 64 << 20;

/// Whether `path` is an update bundle: a (compressed) tar whose first
/// member is the `wsl-delta` directory. Unreadable files are not bundles
/// (the caller's own reader reports them).
pub fn is_bundle(path: &Path) -> bool {
    // Only a regular file can be looked at and then read again: standard
    // input or a pipe would lose what this reads.
    if !path.is_file() {
        return false;
    }
    let Ok(mut reader) = open_tarball(path) else {
        return false;
    };
    matches!(reader.next_member(), Ok(Some(m)) if m.path == BUNDLE_DIR.as_bytes() && m.kind == MemberKind::Directory)
}

/// A bundle opened up to its manifest.
pub struct OpenBundle {
    pub reader: TarballReader,
    pub manifest: BundleManifest,
}

/// Opens `path` and reads its manifest; the reader is left before the
/// `apply` member.
pub fn open_bundle(path: &Path) -> Result<OpenBundle, DeltaError> {
    let not_a_bundle = |message: String| DeltaError::NotABundle {
        path: path.to_path_buf(),
        message,
    };
    let mut reader = open_tarball(path).map_err(|e| not_a_bundle(e.to_string()))?;
    let first = reader
        .next_member()
        .map_err(|e| not_a_bundle(e.to_string()))?;
    if !matches!(&first, Some(m) if m.path == BUNDLE_DIR.as_bytes()) {
        return Err(not_a_bundle(format!(
            "its first member is {}, not the {BUNDLE_DIR}/ directory",
            first.map_or("nothing".into(), |m| m.display_path())
        )));
    }
    let manifest = reader
        .next_member()
        .map_err(|e| not_a_bundle(e.to_string()))?
        .filter(|m| m.path == MANIFEST_MEMBER.as_bytes() && m.kind == MemberKind::Regular)
        .ok_or_else(|| not_a_bundle(format!("no {MANIFEST_MEMBER} after {BUNDLE_DIR}/")))?;
    if manifest.size > MAX_MANIFEST_BYTES {
        return Err(not_a_bundle(format!(
            "{MANIFEST_MEMBER} is {} bytes",
            manifest.size
        )));
    }
    let mut bytes = Vec::new();
    reader
        .content()
        .read_to_end(&mut bytes)
        .map_err(|e| not_a_bundle(format!("reading {MANIFEST_MEMBER}: {e}")))?;
    let manifest: BundleManifest = serde_json::from_slice(&bytes)
        .map_err(|e| not_a_bundle(format!("{MANIFEST_MEMBER}: {e}")))?;
    if manifest.bundle_version != BUNDLE_VERSION {
        return Err(not_a_bundle(format!(
            "{MANIFEST_MEMBER}: bundleVersion {} (this tool reads {BUNDLE_VERSION})",
            manifest.bundle_version
        )));
    }
    Ok(OpenBundle { reader, manifest })
}

/// What `inspect` reports for a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BundleInspection {
    /// The schema's version, [`crate::inspect::JSON_VERSION`].
    pub version: u32,
    pub file: String,
    pub kind: &'static str,
    pub compression: String,
    pub file_size: u64,
    pub file_sha256: String,
    pub old_system: Option<String>,
    pub new_system: String,
    pub baseline: String,
    pub nar_bytes: u64,
    pub security_checks: String,
    /// What the bundle ships, in import order, with NAR sizes.
    pub paths: Vec<super::bundle::BundlePath>,
    /// What it needs from the old system.
    pub requires: Vec<String>,
}

/// `inspect` of a bundle: its manifest, and the file's size and SHA-256.
pub fn inspect_bundle(path: &Path) -> Result<BundleInspection, DeltaError> {
    let OpenBundle {
        mut reader,
        manifest,
    } = open_bundle(path)?;
    let damaged = |message: String| DeltaError::DamagedBundle {
        path: path.to_path_buf(),
        message,
    };
    let file_sha256 = reader
        .file_sha256()
        .map_err(|e| damaged(e.to_string()))?
        .expect("open_tarball hashes the file");
    let file_size = reader.file_size().map_err(|e| damaged(e.to_string()))?;
    Ok(BundleInspection {
        version: crate::inspect::JSON_VERSION,
        file: path.display().to_string(),
        kind: "update bundle",
        compression: reader.compression().name().to_owned(),
        file_size,
        file_sha256: hex::encode(&file_sha256),
        old_system: manifest.old_system.clone(),
        new_system: manifest.new_system.clone(),
        baseline: manifest.baseline.clone(),
        nar_bytes: manifest.nar_bytes(),
        security_checks: manifest.security_checks.clone(),
        paths: manifest.paths,
        requires: manifest.requires,
    })
}

impl BundleInspection {
    pub fn to_text(&self) -> String {
        let human = crate::inspect::human_bytes;
        let mut out = format!(
            "file         {}\nformat       update bundle, {} compression; {}\nsha256       {}\n",
            self.file,
            self.compression,
            human(self.file_size),
            self.file_sha256
        );
        out.push_str(&format!(
            "old system   {}\nnew system   {}\n",
            self.old_system
                .as_deref()
                .unwrap_or("(not named: made from a closure file)"),
            self.new_system
        ));
        out.push_str(&format!(
            "made from    {}\nsecurity     {}\n",
            self.baseline, self.security_checks
        ));
        out.push_str(&format!(
            "ships        {} ({} NAR), in import order\n",
            count(self.paths.len(), "store path"),
            human(self.nar_bytes)
        ));
        for path in &self.paths {
            out.push_str(&format!("  {:>10}  {}\n", human(path.nar_size), path.path));
        }
        out.push_str(&format!(
            "needs        {} from the old system\n",
            count(self.requires.len(), "store path")
        ));
        for path in &self.requires {
            out.push_str(&format!("  {path}\n"));
        }
        out
    }
}

/// One check of `verify` on a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BundleCheck {
    pub check: &'static str,
    pub description: &'static str,
    pub passed: bool,
    pub failures: Vec<String>,
}

/// What `verify` found in a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BundleVerification {
    /// The schema's version, [`crate::inspect::JSON_VERSION`].
    pub version: u32,
    pub file: String,
    pub kind: &'static str,
    pub compression: String,
    pub store_paths: usize,
    pub checks: Vec<BundleCheck>,
}

impl BundleVerification {
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }

    pub fn to_text(&self, max_failures: usize) -> String {
        let mut out = format!(
            "verifying {} (update bundle, {} compression, {})\n",
            self.file,
            self.compression,
            count(self.store_paths, "store path")
        );
        for check in &self.checks {
            let tag = if check.passed { "ok  " } else { "FAIL" };
            out.push_str(&format!("{tag}  {}\n", check.description));
            for failure in check.failures.iter().take(max_failures) {
                out.push_str(&format!("      - {failure}\n"));
            }
            if check.failures.len() > max_failures {
                out.push_str(&format!(
                    "      … and {} more\n",
                    check.failures.len() - max_failures
                ));
            }
        }
        let failures: usize = self.checks.iter().map(|c| c.failures.len()).sum();
        if failures == 0 {
            out.push_str("verified\n");
        } else {
            out.push_str(&format!("NOT verified: {}\n", count(failures, "failure")));
        }
        out
    }
}

/// `verify` of a bundle. Errors only when it cannot be opened as one.
pub fn verify_bundle(path: &Path) -> Result<BundleVerification, DeltaError> {
    let OpenBundle {
        mut reader,
        manifest,
    } = open_bundle(path)?;
    let mut layout = Vec::new();
    let mut export_failures = Vec::new();
    let mut digest = None;
    let mut seen = Vec::new();
    loop {
        let member = match reader.next_member() {
            Ok(Some(member)) => member,
            Ok(None) => break,
            Err(e) => {
                layout.push(e.to_string());
                break;
            }
        };
        seen.push(String::from_utf8_lossy(&member.path).into_owned());
        if member.path == EXPORT_MEMBER.as_bytes() && member.kind == MemberKind::Regular {
            let (failures, read) = check_export(reader.content(), &manifest.paths);
            export_failures = failures;
            digest = read;
        } else if member.path == APPLY_MEMBER.as_bytes() && member.mode & 0o111 == 0 {
            layout.push(format!("{APPLY_MEMBER} is not executable"));
        }
    }
    if seen != [APPLY_MEMBER, EXPORT_MEMBER] {
        layout.push(format!(
            "after the manifest, the members are {seen:?}; expected {:?}",
            [APPLY_MEMBER, EXPORT_MEMBER]
        ));
    }
    if let Some((sha256, size)) = digest {
        if hex::encode(&sha256) != manifest.export.sha256 || size != manifest.export.size {
            export_failures.push(format!(
                "{EXPORT_MEMBER} has sha256 {} and {size} bytes, the manifest says {} and {} bytes",
                hex::encode(&sha256),
                manifest.export.sha256,
                manifest.export.size
            ));
        }
    } else if export_failures.is_empty() {
        export_failures.push(format!("no {EXPORT_MEMBER}"));
    }
    let mut order = Vec::new();
    let mut imported: BTreeSet<&str> = BTreeSet::new();
    let shipped: BTreeSet<&str> = manifest.paths.iter().map(|p| p.path.as_str()).collect();
    let requires: BTreeSet<&str> = manifest.requires.iter().map(String::as_str).collect();
    let mut closed = Vec::new();
    for path in &manifest.paths {
        for reference in &path.references {
            let reference = reference.as_str();
            if shipped.contains(reference) {
                if reference != path.path && !imported.contains(reference) {
                    order.push(format!(
                        "{} comes before {reference}, which it references",
                        path.path
                    ));
                }
            } else if !requires.contains(reference) {
                closed.push(format!(
                    "{} references {reference}, which is neither shipped nor listed as needed from the old system",
                    path.path
                ));
            }
        }
        imported.insert(&path.path);
    }
    if !shipped.contains(manifest.new_system.as_str())
        && !requires.contains(manifest.new_system.as_str())
        && !manifest.paths.is_empty()
    {
        closed.push(format!(
            "the new system {} is neither shipped nor needed",
            manifest.new_system
        ));
    }
    let check = |check, description, failures: Vec<String>| BundleCheck {
        check,
        description,
        passed: failures.is_empty(),
        failures,
    };
    Ok(BundleVerification {
        version: crate::inspect::JSON_VERSION,
        file: path.display().to_string(),
        kind: "update bundle",
        compression: reader.compression().name().to_owned(),
        store_paths: manifest.paths.len(),
        checks: vec![
            check(
                "layout",
                "layout: wsl-delta/ with manifest.json, an executable apply, nix-export",
                layout,
            ),
            check(
                "store-contents",
                "nix-export: every NAR's hash and size, path and references match the manifest, and its sha256",
                export_failures,
            ),
            check(
                "order",
                "dependency order: every shipped path comes after the shipped paths it references",
                order,
            ),
            check(
                "closed",
                "closed: every reference is shipped or listed as needed from the old system",
                closed,
            ),
        ],
    })
}
