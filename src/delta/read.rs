//! Reading a bundle back: [`is_bundle`] for the commands that take any
//! file, [`inspect_bundle`] (what it holds, what it needs from the old
//! system) and [`verify_bundle`] (manifest, layout, the `apply` script,
//! every NAR against its hash, dependency order, closedness), offline and
//! without Nix. [`check_bundle`] is those checks on one pass over an open
//! bundle; `apply` runs the same, copying the export stream as it goes.

use crate::count::count;
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::Path;

use serde::Serialize;

use super::export::check_export;
use super::manifest::{
    absolute, BundleManifest, APPLY_MEMBER, BUNDLE_DIR, BUNDLE_VERSION, EXPORT_MEMBER,
    MANIFEST_MEMBER,
};
use super::script::apply_script;
use super::BundleError;
use crate::archive::{open_tarball, TarballReader};
use crate::escape::Escaped;
use crate::hex;
use crate::sign::{check_signatures, Domain, PublicKey};
use crate::store::StorePath;
use crate::tar::MemberKind;

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
    /// The manifest as read, which its signatures cover.
    pub manifest_value: serde_json::Value,
}

/// Opens `path` and reads its manifest; the reader is left before the
/// `apply` member.
pub fn open_bundle(path: &Path) -> Result<OpenBundle, BundleError> {
    let (reader, manifest) = open_bundle_parts(path)?;
    let (manifest, manifest_value) = manifest?;
    Ok(OpenBundle {
        reader,
        manifest,
        manifest_value,
    })
}

/// The `signature` check of a bundle: its manifest signed by one of
/// `trusted` ([`crate::sign::check_signatures`]).
pub fn signature_check(open: &OpenBundle, trusted: &[PublicKey]) -> BundleCheck {
    let failures = match check_signatures(
        Domain::Bundle,
        &open.manifest_value,
        &open.manifest.signatures,
        trusted,
    ) {
        Ok(_) => Vec::new(),
        Err(problem) => vec![format!("{MANIFEST_MEMBER}: {problem}")],
    };
    check(
        "signature",
        "signature: the manifest (which holds the export's sha256) is signed by a trusted key",
        failures,
    )
}

/// [`open_bundle`], with a manifest that is not valid kept apart from a
/// file that is no bundle of this version.
#[allow(clippy::type_complexity)]
fn open_bundle_parts(
    path: &Path,
) -> Result<
    (
        TarballReader,
        Result<(BundleManifest, serde_json::Value), BundleError>,
    ),
    BundleError,
> {
    let not_a_bundle = |message: String| BundleError::NotABundle {
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
    // The version first: a later layout is not a damaged one.
    let value = serde_json::from_slice::<serde_json::Value>(&bytes)
        .map_err(|e| not_a_bundle(format!("{MANIFEST_MEMBER}: {e}")))?;
    let version = value
        .get("bundleVersion")
        .and_then(serde_json::Value::as_u64);
    if version != Some(u64::from(BUNDLE_VERSION)) {
        return Err(not_a_bundle(format!(
            "{MANIFEST_MEMBER}: bundleVersion {} (this tool reads {BUNDLE_VERSION})",
            version.map_or("missing".into(), |v| v.to_string())
        )));
    }
    // Every store path, hash and name checked, or the field named.
    let manifest = serde_json::from_slice(&bytes)
        .map(|manifest| (manifest, value))
        .map_err(|e| BundleError::BadManifest {
            path: path.to_path_buf(),
            message: e.to_string(),
        });
    Ok((reader, manifest))
}

/// What `inspect` reports for a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BundleInspection {
    /// The schema's version, [`crate::inspect::JSON_VERSION`].
    pub version: u32,
    /// The bundle's path, as given.
    pub file: String,
    /// What the file is: `update bundle`.
    pub kind: &'static str,
    /// The bundle's compression (`gzip`, `xz`, `zstd`, `none`).
    pub compression: String,
    /// The bundle's size in bytes.
    pub file_size: u64,
    /// SHA-256 of the bundle file, lowercase hex.
    pub file_sha256: String,
    /// The system the bundle updates (absolute), when the manifest names one.
    pub old_system: Option<String>,
    /// The system the bundle moves to (absolute).
    pub new_system: String,
    /// What the bundle was made against: `tarball`, `manifest` or `closure`.
    pub baseline: String,
    /// Sum of the shipped store paths' NAR sizes.
    pub nar_bytes: u64,
    /// Whether the security checks ran when it was made: `passed` or `skipped`.
    pub security_checks: String,
    /// The key names of the manifest's signatures (not checked here:
    /// `verify --trusted-key` checks them).
    pub signed_by: Vec<String>,
    /// What the bundle ships, in import order, with NAR sizes.
    pub paths: Vec<super::manifest::BundlePath>,
    /// What it needs from the old system.
    pub requires: Vec<String>,
}

/// `inspect` of a bundle: its manifest, and the file's size and SHA-256.
pub fn inspect_bundle(path: &Path) -> Result<BundleInspection, BundleError> {
    let OpenBundle {
        mut reader,
        manifest,
        ..
    } = open_bundle(path)?;
    let damaged = |message: String| BundleError::DamagedBundle {
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
        old_system: manifest.old_system_path(),
        new_system: manifest.new_system_path(),
        baseline: manifest.baseline.clone(),
        nar_bytes: manifest.nar_bytes(),
        security_checks: manifest.security_checks.clone(),
        signed_by: manifest
            .signatures
            .iter()
            .map(|s| s.name().to_owned())
            .collect(),
        requires: manifest.requires.iter().map(absolute).collect(),
        paths: manifest.paths,
    })
}

impl BundleInspection {
    /// The summary as `inspect` prints it.
    pub fn to_text(&self) -> String {
        let human = crate::inspect::human_bytes;
        let mut out = format!(
            "file         {}\nformat       update bundle, {} compression; {}\nsha256       {}\n",
            Escaped(&self.file),
            self.compression,
            human(self.file_size),
            self.file_sha256
        );
        out.push_str(&format!(
            "old system   {}\nnew system   {}\n",
            Escaped(
                self.old_system
                    .as_deref()
                    .unwrap_or("(not named: made from a closure file)")
            ),
            Escaped(&self.new_system)
        ));
        out.push_str(&format!(
            "made from    {}\nsecurity     {}\n",
            Escaped(&self.baseline),
            Escaped(&self.security_checks)
        ));
        out.push_str(&match self.signed_by.is_empty() {
            true => "signed       no\n".to_owned(),
            false => format!(
                "signed       by {} (not checked here: verify --trusted-key checks it)\n",
                self.signed_by
                    .iter()
                    .map(|name| crate::escape::escape_str(name).into_owned())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
        out.push_str(&format!(
            "ships        {} ({} NAR), in import order\n",
            count(self.paths.len(), "store path"),
            human(self.nar_bytes)
        ));
        for path in &self.paths {
            out.push_str(&format!(
                "  {:>10}  {}\n",
                human(path.nar_size),
                Escaped(&path.absolute())
            ));
        }
        out.push_str(&format!(
            "needs        {} from the old system\n",
            count(self.requires.len(), "store path")
        ));
        for path in &self.requires {
            out.push_str(&format!("  {}\n", Escaped(path)));
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
    /// The bundle's path, as given.
    pub file: String,
    /// What the file is: `update bundle`.
    pub kind: &'static str,
    /// The bundle's compression (`gzip`, `xz`, `zstd`, `none`).
    pub compression: String,
    /// How many store paths the bundle ships.
    pub store_paths: usize,
    /// Each check, in the order it ran.
    pub checks: Vec<BundleCheck>,
}

impl BundleVerification {
    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }

    /// The checks as `verify` prints them, with at most `max_failures` failures listed per check.
    pub fn to_text(&self, max_failures: usize) -> String {
        let mut out = format!(
            "verifying {} (update bundle, {} compression, {})\n",
            Escaped(&self.file),
            self.compression,
            count(self.store_paths, "store path")
        );
        for check in &self.checks {
            let tag = if check.passed { "ok  " } else { "FAIL" };
            out.push_str(&format!("{tag}  {}\n", check.description));
            for failure in check.failures.iter().take(max_failures) {
                out.push_str(&format!("      - {}\n", Escaped(failure)));
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

/// The most bytes of `wsl-delta/apply` read: the script the tool makes is
/// a few kilobytes and a line per store path.
const MAX_SCRIPT_BYTES: u64 = 16 << 20;

/// `verify` of a bundle. Errors only when it cannot be opened as one; a
/// manifest whose fields are not what they must be fails the `manifest`
/// check.
pub fn verify_bundle(path: &Path) -> Result<BundleVerification, BundleError> {
    verify_signed_bundle(path, &[])
}

/// [`verify_bundle`], and with `trusted` keys the `signature` check.
pub fn verify_signed_bundle(
    path: &Path,
    trusted: &[PublicKey],
) -> Result<BundleVerification, BundleError> {
    let file = path.display().to_string();
    let (reader, manifest) = open_bundle_parts(path)?;
    let compression = reader.compression().name().to_owned();
    let open = match manifest {
        Ok((manifest, manifest_value)) => OpenBundle {
            reader,
            manifest,
            manifest_value,
        },
        Err(error) => {
            let message = match error {
                BundleError::BadManifest { message, .. } => message,
                error => error.to_string(),
            };
            return Ok(BundleVerification {
                version: crate::inspect::JSON_VERSION,
                file,
                kind: "update bundle",
                compression,
                store_paths: 0,
                checks: vec![manifest_check(vec![format!(
                    "{MANIFEST_MEMBER}: {message}"
                )])],
            });
        }
    };
    let store_paths = open.manifest.paths.len();
    let signature = (!trusted.is_empty()).then(|| signature_check(&open, trusted));
    let mut checks = check_bundle(open, &mut std::io::sink());
    checks.extend(signature);
    Ok(BundleVerification {
        version: crate::inspect::JSON_VERSION,
        file,
        kind: "update bundle",
        compression,
        store_paths,
        checks,
    })
}

fn manifest_check(failures: Vec<String>) -> BundleCheck {
    check(
        "manifest",
        "manifest: every store path, hash and field well-formed",
        failures,
    )
}

fn check(check: &'static str, description: &'static str, failures: Vec<String>) -> BundleCheck {
    BundleCheck {
        check,
        description,
        passed: failures.is_empty(),
        failures,
    }
}

/// A reader that copies what it reads into `copy`.
struct CopyingReader<'a, R: Read> {
    inner: R,
    copy: &'a mut dyn Write,
}

impl<R: Read> Read for CopyingReader<'_, R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buffer)?;
        self.copy.write_all(&buffer[..n])?;
        Ok(n)
    }
}

/// Every check of `verify` on an open bundle, reading the rest of it once;
/// the `nix-export` member's bytes go to `export_copy` as they are checked.
/// The manifest parsed (every field checked) when the bundle was opened.
pub fn check_bundle(open: OpenBundle, export_copy: &mut dyn Write) -> Vec<BundleCheck> {
    let OpenBundle {
        mut reader,
        manifest,
        ..
    } = open;
    let script = apply_script(&manifest);
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
        let regular = member.kind == MemberKind::Regular;
        if member.path == EXPORT_MEMBER.as_bytes() {
            if !regular {
                layout.push(format!(
                    "{EXPORT_MEMBER} is a {}, not a regular file",
                    member.kind.describe()
                ));
                continue;
            }
            let copying = CopyingReader {
                inner: reader.content(),
                copy: &mut *export_copy,
            };
            let (failures, read) = check_export(copying, &manifest.paths);
            export_failures = failures;
            digest = read;
        } else if member.path == APPLY_MEMBER.as_bytes() {
            if !regular {
                layout.push(format!(
                    "{APPLY_MEMBER} is a {}, not a regular file",
                    member.kind.describe()
                ));
                continue;
            }
            if member.mode & 0o111 == 0 {
                layout.push(format!("{APPLY_MEMBER} is not executable"));
            }
            let mut bytes = Vec::new();
            let read = reader
                .content()
                .take(MAX_SCRIPT_BYTES)
                .read_to_end(&mut bytes);
            if let Err(e) = read {
                layout.push(format!("reading {APPLY_MEMBER}: {e}"));
            } else if bytes != script.as_bytes() {
                layout.push(format!(
                    "{APPLY_MEMBER} is not the script this tool makes from the manifest"
                ));
            }
        }
    }
    if seen != [APPLY_MEMBER, EXPORT_MEMBER] {
        layout.push(format!(
            "after the manifest, the members are {}; expected {:?}",
            seen.iter()
                .map(|name| format!("\"{name}\""))
                .collect::<Vec<_>>()
                .join(", "),
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
    let (order, closed) = order_and_closedness(&manifest);
    vec![
        manifest_check(Vec::new()),
        check(
            "layout",
            "layout: wsl-delta/ with manifest.json, the apply script made from it (a regular, executable file), nix-export",
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
    ]
}

/// The manifest's own consistency: dependency order (references first,
/// each path once) and closedness (every reference shipped or required,
/// the new system among them).
fn order_and_closedness(manifest: &BundleManifest) -> (Vec<String>, Vec<String>) {
    let mut order = Vec::new();
    let mut imported: BTreeSet<&StorePath> = BTreeSet::new();
    let shipped: BTreeSet<&StorePath> = manifest.paths.iter().map(|p| &p.path).collect();
    let requires: BTreeSet<&StorePath> = manifest.requires.iter().collect();
    let mut closed = Vec::new();
    for path in &manifest.paths {
        if imported.contains(&path.path) {
            order.push(format!("{} is listed twice", path.absolute()));
        }
        if requires.contains(&path.path) {
            closed.push(format!(
                "{} is both shipped and listed as needed from the old system",
                path.absolute()
            ));
        }
        for reference in &path.references {
            if shipped.contains(reference) {
                if *reference != path.path && !imported.contains(reference) {
                    order.push(format!(
                        "{} comes before {}, which it references",
                        path.absolute(),
                        absolute(reference)
                    ));
                }
            } else if !requires.contains(reference) {
                closed.push(format!(
                    "{} references {}, which is neither shipped nor listed as needed from the old system",
                    path.absolute(),
                    absolute(reference)
                ));
            }
        }
        imported.insert(&path.path);
    }
    if !shipped.contains(&manifest.new_system)
        && !requires.contains(&manifest.new_system)
        && !manifest.paths.is_empty()
    {
        closed.push(format!(
            "the new system {} is neither shipped nor needed",
            manifest.new_system_path()
        ));
    }
    (order, closed)
}
