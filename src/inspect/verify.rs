//! `verify`: is this tarball what `wsl-tarball write` promises?
//!
//! Offline, without Nix: tar structure, no hard links, owners and modes in
//! the store, every store path's NAR hash and size recomputed from its
//! members against Nix's database inside the tarball, every reference
//! present, the system profile, and, when the tarball has a NixOS skeleton,
//! the files WSL needs. Given the manifest `write --manifest` wrote, also
//! that the file is the one it records (sha256 and size), as is the SBOM
//! it records (beside the manifest under its recorded name, or the file
//! given), and given trusted keys, that the manifest is signed by one of
//! them ([`crate::sign`]).

use crate::count::count;
use std::path::Path;

use serde::Serialize;

use std::collections::{BTreeMap, BTreeSet};

use super::checks::{Check, CheckStatus};
use super::walk::{ArchiveWalk, KeptFile, StoreObject, WalkOptions, MAX_PROBLEMS_PER_CHECK};
use super::{
    read_database, Database, DatabaseError, DatabaseVisitor, InspectError, RegisteredPath,
};
use crate::escape::{escape_str, Escaped};
use crate::progress::Progress;
use crate::sign::{check_signatures, manifest_signatures, Domain, PublicKey};
use crate::store::{NarHash, StoreDir, StorePath};
use crate::tar::MemberKind;

/// How one check went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckOutcome {
    /// Which check.
    pub check: Check,
    /// What it covers.
    pub description: &'static str,
    /// How it went.
    pub status: CheckStatus,
    /// Why a check was skipped, or what a passed check covered.
    pub note: Option<String>,
    /// The failures, at most 1000 per check.
    pub failures: Vec<String>,
    /// Failures beyond those listed.
    #[serde(rename = "moreFailures")]
    pub more_failures: u64,
    /// What the check flags without failing (the `wsl-format` check's
    /// warnings); they do not change the verdict.
    pub warnings: Vec<String>,
}

/// What `verify` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verification {
    /// The schema's version, [`crate::inspect::JSON_VERSION`].
    pub version: u32,
    /// The file, as named.
    pub file: String,
    /// Its compression.
    pub compression: String,
    /// Store paths in it.
    pub store_paths: usize,
    /// Every check, in order.
    pub checks: Vec<CheckOutcome>,
}

impl Verification {
    /// True if no check failed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.status != CheckStatus::Failed)
    }

    /// Every failure, prefixed with its check.
    pub fn failures(&self) -> impl Iterator<Item = (Check, &str)> {
        self.checks
            .iter()
            .flat_map(|c| c.failures.iter().map(move |f| (c.check, f.as_str())))
    }

    /// The report for people: one line per check, failures indented below,
    /// names from the tarball escaped for a terminal. At most
    /// `max_failures` failures are listed per check.
    pub fn to_text(&self, max_failures: usize) -> String {
        let mut out = format!(
            "verifying {} ({} compression, {})\n",
            Escaped(&self.file),
            self.compression,
            count(self.store_paths, "store path")
        );
        for outcome in &self.checks {
            let tag = match outcome.status {
                CheckStatus::Passed => "ok  ",
                CheckStatus::Failed => "FAIL",
                CheckStatus::Skipped => "skip",
            };
            out.push_str(&format!("{tag}  {}", outcome.description));
            if let Some(note) = &outcome.note {
                out.push_str(&format!(" ({})", Escaped(note)));
            }
            out.push('\n');
            for failure in outcome.failures.iter().take(max_failures) {
                out.push_str(&format!("      - {}\n", Escaped(failure)));
            }
            let more =
                outcome.failures.len().saturating_sub(max_failures) as u64 + outcome.more_failures;
            if more > 0 {
                out.push_str(&format!("      … and {more} more\n"));
            }
            for warning in &outcome.warnings {
                out.push_str(&format!("      warning: {}\n", Escaped(warning)));
            }
        }
        let failed = self.failures().count() as u64
            + self.checks.iter().map(|c| c.more_failures).sum::<u64>();
        let skipped = self
            .checks
            .iter()
            .filter(|c| c.status == CheckStatus::Skipped)
            .count();
        let warnings: usize = self.checks.iter().map(|c| c.warnings.len()).sum();
        let warned = if warnings > 0 {
            format!(", {}", count(warnings, "warning"))
        } else {
            String::new()
        };
        if failed == 0 {
            out.push_str(&format!(
                "verified: {} checks passed, {skipped} skipped{warned}\n",
                self.checks.len() - skipped
            ));
        } else {
            out.push_str(&format!("NOT verified: {}\n", count(failed, "failure")));
        }
        out
    }
}

/// Failures found so far: at most [`MAX_PROBLEMS_PER_CHECK`] kept per
/// check, the rest counted.
struct Failures {
    kept: Vec<(Check, String)>,
    counts: BTreeMap<Check, usize>,
    omitted: BTreeMap<Check, u64>,
}

impl Failures {
    fn from_walk(walk: &ArchiveWalk) -> Self {
        let mut counts = BTreeMap::new();
        for (check, _) in &walk.problems {
            *counts.entry(*check).or_default() += 1;
        }
        Failures {
            kept: walk.problems.clone(),
            counts,
            omitted: walk.omitted_problems.clone(),
        }
    }

    fn push(&mut self, check: Check, message: String) {
        let count = self.counts.entry(check).or_default();
        if *count >= MAX_PROBLEMS_PER_CHECK {
            *self.omitted.entry(check).or_default() += 1;
        } else {
            *count += 1;
            self.kept.push((check, message));
        }
    }
}

/// Runs every check on the tarball at `path` (`-` for standard input).
/// Without a WSL skeleton the tarball cannot boot and fails, unless `bare`
/// says a bare store tarball is meant (`verify --bare`).
pub fn verify(path: &Path, bare: bool) -> Result<Verification, InspectError> {
    verify_with_progress(path, bare, &mut ())
}

/// [`verify`], telling `progress` how many bytes of the file were read.
pub fn verify_with_progress(
    path: &Path,
    bare: bool,
    progress: &mut dyn Progress,
) -> Result<Verification, InspectError> {
    verify_signed(path, bare, None, None, &[], progress)
}

/// [`verify_with_progress`], and with `manifest` the [`Check::Manifest`]
/// check, and with `trusted` keys (which need `manifest`) the
/// [`Check::Signature`] check. The SBOM the manifest records is `sbom`
/// when given (a renamed copy), else its recorded file beside the
/// manifest.
pub fn verify_signed(
    path: &Path,
    bare: bool,
    manifest: Option<&Path>,
    sbom: Option<&Path>,
    trusted: &[PublicKey],
    progress: &mut dyn Progress,
) -> Result<Verification, InspectError> {
    verify_image(path, bare, manifest, sbom, trusted, progress)
        .map(|(verification, _)| verification)
}

/// [`verify_signed`], and the image's architecture as the `wsl-format`
/// check found it (the ELF machine of its `/bin/sh`, `/bin/bash` or
/// `/sbin/init`: `x86-64` or `aarch64`), when it has a skeleton and one of
/// them is an ELF for either.
pub(crate) fn verify_image(
    path: &Path,
    bare: bool,
    manifest: Option<&Path>,
    sbom: Option<&Path>,
    trusted: &[PublicKey],
    progress: &mut dyn Progress,
) -> Result<(Verification, Option<&'static str>), InspectError> {
    // The manifest first: an unreadable one is trouble before the long read.
    let manifest_bytes = manifest.map(super::read_manifest_bytes).transpose()?;
    // Only a manifest's check needs the compressed file's digest.
    let options = WalkOptions {
        hash_file: manifest.is_some(),
        ..WalkOptions::default()
    };
    let mut walk = ArchiveWalk::run_with_progress(path, &options, progress)?;
    if let Some(error) = walk.take_spill_error() {
        return Err(error.into());
    }
    let mut failures = Failures::from_walk(&walk);
    let mut notes: Vec<(Check, String)> = Vec::new();
    let mut skipped: Vec<(Check, String)> = Vec::new();

    if walk.end.zero_blocks < 2 {
        failures.push(
            Check::TarFormat,
            format!(
                "the archive ends after {} zero blocks, not the two that mark its end",
                walk.end.zero_blocks
            ),
        );
    }
    if let Some(offset) = walk.end.trailing_data {
        failures.push(
            Check::TarFormat,
            format!("trailing data after the end-of-archive at offset {offset} of the tar stream (more than the zero padding of a tar record); reading stopped there"),
        );
    }
    check_database(&walk, &mut failures, &mut notes, &mut skipped)?;
    match walk.system_path() {
        Some(system) => notes.push((Check::SystemProfile, system)),
        None => failures.push(
            Check::SystemProfile,
            "/nix/var/nix/profiles/system is missing or does not lead to a store path in the tarball".to_owned(),
        ),
    }
    check_skeleton(&walk, bare, &mut failures, &mut skipped);
    let mut warnings: Vec<String> = Vec::new();
    let mut arch = None;
    if skipped.iter().any(|(c, _)| *c == Check::Skeleton) {
        skipped.push((
            Check::WslFormat,
            "no WSL skeleton: a bare store tarball (--bare)".to_owned(),
        ));
    } else if failures.counts.contains_key(&Check::Skeleton)
        && !walk.members.contains(b"etc/passwd")
        && walk.resolve(b"sbin/init").is_none()
    {
        skipped.push((Check::WslFormat, "no WSL skeleton".to_owned()));
    } else {
        let found = super::wsl_format::check(&walk);
        for failure in found.failures {
            failures.push(Check::WslFormat, failure);
        }
        warnings = found.warnings;
        arch = found.arch;
    }
    let mut asked = Vec::new();
    if let Some(bytes) = &manifest_bytes {
        asked.push(Check::Manifest);
        if !trusted.is_empty() {
            asked.push(Check::Signature);
        }
        let dir = manifest.and_then(Path::parent).unwrap_or(Path::new(""));
        let sbom = match sbom {
            Some(path) => SbomLookup::Given(path),
            None => SbomLookup::Beside(dir),
        };
        check_manifest(&walk, bytes, sbom, trusted, &mut failures, &mut notes);
    }

    let checks = Check::ALL
        .iter()
        .chain(&asked)
        .map(|&check| {
            let failed: Vec<String> = failures
                .kept
                .iter()
                .filter(|(c, _)| *c == check)
                .map(|(_, message)| message.clone())
                .collect();
            let more_failures = failures.omitted.get(&check).copied().unwrap_or(0);
            let skip = skipped.iter().find(|(c, _)| *c == check);
            let note = notes
                .iter()
                .find(|(c, _)| *c == check)
                .or(skip)
                .map(|(_, n)| n.clone());
            CheckOutcome {
                check,
                description: check.description(),
                status: if !failed.is_empty() || more_failures > 0 {
                    CheckStatus::Failed
                } else if skip.is_some() {
                    CheckStatus::Skipped
                } else {
                    CheckStatus::Passed
                },
                note,
                failures: failed,
                more_failures,
                warnings: if check == Check::WslFormat {
                    warnings.clone()
                } else {
                    Vec::new()
                },
            }
        })
        .collect();
    let verification = Verification {
        version: super::JSON_VERSION,
        file: crate::archive::source_name(path),
        compression: walk.compression.name().to_owned(),
        store_paths: walk.store_objects.len(),
        checks,
    };
    Ok((verification, arch))
}

/// Where the SBOM a manifest records is read from.
#[derive(Debug, Clone, Copy)]
enum SbomLookup<'a> {
    /// Its recorded file name in this directory, the manifest's.
    Beside(&'a Path),
    /// This file, whatever its name.
    Given(&'a Path),
}

/// The file against the manifest's `tarball.sha256` and `size`, the SBOM
/// it names (see [`SbomLookup`]) against its `sbom.sha256`, and the
/// manifest's signatures against `trusted` (when there are any).
fn check_manifest(
    walk: &ArchiveWalk,
    bytes: &[u8],
    sbom: SbomLookup<'_>,
    trusted: &[PublicKey],
    failures: &mut Failures,
    notes: &mut Vec<(Check, String)>,
) {
    let fail_both = |failures: &mut Failures, message: String| {
        failures.push(Check::Manifest, message.clone());
        if !trusted.is_empty() {
            failures.push(Check::Signature, message);
        }
    };
    let manifest: serde_json::Value = match serde_json::from_slice(bytes) {
        Ok(value @ serde_json::Value::Object(_)) => value,
        Ok(_) => return fail_both(failures, "the manifest is not a JSON object".into()),
        Err(e) => return fail_both(failures, format!("the manifest is not JSON: {e}")),
    };
    let sha256 = walk.file_sha256.map(|d| crate::hex::encode(&d));
    let recorded = manifest["tarball"]["sha256"].as_str();
    if recorded != sha256.as_deref() {
        failures.push(
            Check::Manifest,
            format!(
                "the file's sha256 is {}, the manifest records {}",
                sha256.as_deref().unwrap_or("unknown"),
                recorded.map_or("none".into(), |r| format!("{:?}", escape_str(r)))
            ),
        );
    }
    let size = manifest["tarball"]["size"].as_u64();
    if size != Some(walk.file_size) {
        failures.push(
            Check::Manifest,
            format!(
                "the file is {} bytes, the manifest records {}",
                walk.file_size,
                size.map_or("no size".into(), |s| s.to_string())
            ),
        );
    }
    let checked = match (manifest.get("sbom"), sbom) {
        (Some(record), lookup) => check_sbom(record, lookup),
        (None, SbomLookup::Given(path)) => Err(format!(
            "the SBOM {} was given, but the manifest records no SBOM (no sbom field)",
            path.display()
        )),
        (None, SbomLookup::Beside(_)) => Ok(()),
    };
    if let Err(message) = checked {
        failures.push(Check::Manifest, message);
    }
    if trusted.is_empty() {
        return;
    }
    let signatures = match manifest_signatures(&manifest) {
        Ok(signatures) => signatures,
        Err(why) => return failures.push(Check::Signature, format!("the manifest's {why}")),
    };
    match check_signatures(Domain::Image, &manifest, &signatures, trusted) {
        Ok(key) => notes.push((Check::Signature, format!("by {}", escape_str(&key)))),
        Err(problem) => failures.push(Check::Signature, format!("the manifest: {problem}")),
    }
}

/// The largest SBOM read.
const MAX_SBOM_BYTES: u64 = 256 << 20;

/// The SBOM the manifest's `sbom` names, found by `lookup`, against its
/// recorded SHA-256.
fn check_sbom(record: &serde_json::Value, lookup: SbomLookup<'_>) -> Result<(), String> {
    let record: crate::manifest::ManifestSbom = serde_json::from_value(record.clone())
        .map_err(|e| format!("the manifest's sbom is not {{\"file\", \"sha256\"}}: {e}"))?;
    let path = match lookup {
        SbomLookup::Given(path) => path.to_path_buf(),
        SbomLookup::Beside(dir) => {
            let name = crate::input::plain_file_name(&record.file).map_err(|why| {
                format!(
                    "the manifest's sbom.file {:?} {why}",
                    escape_str(&record.file)
                )
            })?;
            let path = dir.join(name);
            if let Err(e) = std::fs::metadata(&path) {
                if e.kind() == std::io::ErrorKind::NotFound {
                    return Err(format!(
                        "the SBOM the manifest records (sbom.file {:?}) is not beside the manifest: {} does not exist; when it is elsewhere or renamed, --sbom FILE names it",
                        escape_str(&record.file),
                        path.display()
                    ));
                }
            }
            path
        }
    };
    let shown = path.display();
    let bytes = crate::input::read_limited(&path, MAX_SBOM_BYTES, "an SBOM")
        .map_err(|e| format!("the SBOM the manifest records, {shown}: {e}"))?;
    let sha256 = crate::hex::encode(&<sha2::Sha256 as sha2::Digest>::digest(&bytes));
    if sha256 != record.sha256 {
        return Err(format!(
            "the SBOM {shown}: its sha256 is {sha256}, the manifest records {:?}",
            escape_str(&record.sha256)
        ));
    }
    Ok(())
}

/// Compares the database's rows, as they are read, with the archive.
struct Comparison<'w> {
    in_archive: BTreeMap<&'w str, &'w StoreObject>,
    /// Store paths of the archive the database registers.
    registered: BTreeSet<&'w str>,
    registered_count: u64,
    hashed: u64,
    failures: &'w mut Failures,
    store_dir: StoreDir,
}

impl DatabaseVisitor for Comparison<'_> {
    fn path(&mut self, entry: RegisteredPath) {
        self.registered_count += 1;
        let path = entry.path.to_absolute(&self.store_dir);
        let Some((&key, object)) = self.in_archive.get_key_value(path.as_str()) else {
            self.failures.push(
                Check::NixDatabase,
                format!("{path} is registered in the Nix database but missing from the tarball"),
            );
            return;
        };
        self.registered.insert(key);
        if let Some(actual) = object.nar_hash {
            let actual = NarHash(actual);
            let expected = entry.nar_hash;
            if expected == actual {
                self.hashed += 1;
            } else {
                self.failures.push(
                    Check::StoreContents,
                    format!(
                        "{path}: NAR hash recomputed from the archive is {actual}, the database says {expected} (NAR size {} here, {} there)",
                        object.nar_size,
                        entry.nar_size.map_or("unknown".to_owned(), |s| s.to_string())
                    ),
                );
            }
        }
        // Without a hash the walk already reported why no NAR could be made.
        if let Some(expected_size) = entry.nar_size {
            if object.nar_hash.is_some() && expected_size != object.nar_size {
                self.failures.push(
                    Check::StoreContents,
                    format!(
                        "{path}: NAR size recomputed from the archive is {}, the database says {expected_size}",
                        object.nar_size
                    ),
                );
            }
        }
    }

    fn reference(&mut self, referrer: &StorePath, reference: &StorePath) {
        let referrer = referrer.to_absolute(&self.store_dir);
        let reference = reference.to_absolute(&self.store_dir);
        if self.in_archive.contains_key(referrer.as_str())
            && !self.in_archive.contains_key(reference.as_str())
        {
            self.failures.push(
                Check::References,
                format!("{referrer} references {reference}, which is not in the tarball"),
            );
        }
    }
}

/// The message for a kept file larger than verify reads.
fn too_large(path: &str, size: u64, limit: u64) -> String {
    format!("{path} is {size} bytes, more than the {limit} bytes verify reads")
}

/// Database present, same set of paths as the archive, hashes and sizes,
/// references. Fails only when this machine cannot read the database back.
fn check_database(
    walk: &ArchiveWalk,
    failures: &mut Failures,
    notes: &mut Vec<(Check, String)>,
    skipped: &mut Vec<(Check, String)>,
) -> Result<(), InspectError> {
    let sqlite = walk.kept_files.get(&b"nix/var/nix/db/db.sqlite"[..]);
    let registration = walk.kept_files.get(&b"nix-path-registration"[..]);
    let (database, source) = match (sqlite, registration) {
        (Some(KeptFile::Spilled(file)), _) => {
            (Ok(Database::Sqlite(file)), "/nix/var/nix/db/db.sqlite")
        }
        (Some(KeptFile::TooLarge { size, limit }), _) => (
            Err(too_large("/nix/var/nix/db/db.sqlite", *size, *limit)),
            "/nix/var/nix/db/db.sqlite",
        ),
        (_, Some(KeptFile::Spilled(file))) => {
            (Ok(Database::Registration(file)), "/nix-path-registration")
        }
        (_, Some(KeptFile::TooLarge { size, limit })) => (
            Err(too_large("/nix-path-registration", *size, *limit)),
            "/nix-path-registration",
        ),
        _ => (
            Err("no Nix database (/nix/var/nix/db/db.sqlite or /nix-path-registration)".to_owned()),
            "",
        ),
    };
    let in_archive: BTreeMap<&str, &StoreObject> = walk
        .store_objects
        .values()
        .map(|object| (object.path.as_str(), object))
        .collect();
    let mut comparison = Comparison {
        in_archive,
        registered: BTreeSet::new(),
        registered_count: 0,
        hashed: 0,
        failures,
        store_dir: walk.store_dir().clone(),
    };
    let result = database
        .map_err(DatabaseError::Content)
        .and_then(|database| read_database(database, walk.store_dir(), &mut comparison));
    let Comparison {
        in_archive,
        registered,
        registered_count,
        hashed,
        failures,
        ..
    } = comparison;
    match result {
        Ok(()) => {}
        Err(DatabaseError::Temporary(error)) => return Err(error.into()),
        Err(DatabaseError::Content(message)) => {
            failures.push(Check::NixDatabase, message);
            for check in [Check::StoreContents, Check::References] {
                skipped.push((check, "no readable Nix database to compare with".to_owned()));
            }
            return Ok(());
        }
    }
    notes.push((
        Check::NixDatabase,
        format!("{source}, {}", count(registered_count, "path")),
    ));
    if sqlite.is_some() {
        match walk.kept_files.get(&b"nix/var/nix/db/schema"[..]) {
            Some(KeptFile::Bytes(schema))
                if schema.as_slice() == crate::nixdb::SCHEMA_FILE_CONTENTS.as_bytes() => {}
            Some(KeptFile::Bytes(schema)) => failures.push(
                Check::NixDatabase,
                format!(
                    "/nix/var/nix/db/schema says \"{}\", expected \"{}\"",
                    String::from_utf8_lossy(schema),
                    crate::nixdb::SCHEMA_FILE_CONTENTS
                ),
            ),
            Some(KeptFile::TooLarge { size, limit }) => failures.push(
                Check::NixDatabase,
                too_large("/nix/var/nix/db/schema", *size, *limit),
            ),
            _ => failures.push(
                Check::NixDatabase,
                "/nix/var/nix/db/schema is missing".to_owned(),
            ),
        }
    }
    for path in in_archive.keys() {
        if !registered.contains(path) {
            failures.push(
                Check::NixDatabase,
                format!("{path} is in the tarball but not registered in the Nix database"),
            );
        }
    }
    notes.push((Check::StoreContents, format!("{hashed} NAR hashes match")));
    Ok(())
}

/// With a skeleton (`/etc/passwd` or `/sbin/init` present): the files WSL needs.
fn check_skeleton(
    walk: &ArchiveWalk,
    bare: bool,
    failures: &mut Failures,
    skipped: &mut Vec<(Check, String)>,
) {
    let has_skeleton = walk.members.contains(b"etc/passwd") || walk.resolve(b"sbin/init").is_some();
    if !has_skeleton {
        if bare {
            skipped.push((
                Check::Skeleton,
                "no /etc/passwd or /sbin/init: a bare store tarball (--bare)".to_owned(),
            ));
        } else {
            failures.push(
                Check::Skeleton,
                "no /etc/passwd or /sbin/init: WSL cannot boot this tarball; write it with the skeleton (the default for a NixOS toplevel), or pass --bare to verify a bare store tarball".to_owned(),
            );
        }
        return;
    }
    let mut fail = |message: String| failures.push(Check::Skeleton, message);
    match walk.kept_files.get(&b"etc/passwd"[..]) {
        Some(KeptFile::TooLarge { size, limit }) => fail(too_large("/etc/passwd", *size, *limit)),
        Some(KeptFile::Spilled(_)) | None => {
            fail("/etc/passwd is missing or not a regular file".to_owned())
        }
        Some(KeptFile::Bytes(passwd)) => {
            let text = String::from_utf8_lossy(passwd);
            let root = text
                .lines()
                .map(|line| line.split(':').collect::<Vec<_>>())
                .find(|fields| fields.first() == Some(&"root"));
            match root {
                Some(fields) if fields.get(2) == Some(&"0") => {}
                Some(fields) => fail(format!(
                    "/etc/passwd: root has uid \"{}\", not 0",
                    fields.get(2).copied().unwrap_or("")
                )),
                None => fail("/etc/passwd has no root user".to_owned()),
            }
            if let Some(node) = walk.owners.get(&b"etc/passwd"[..]) {
                if node.uid != 0 || node.mode & 0o022 != 0 {
                    fail(format!(
                        "/etc/passwd: owner {}:{} mode {:04o}, expected root-owned and not writable by others",
                        node.uid, node.gid, node.mode
                    ));
                }
            }
        }
    }
    if let Some(node) = walk.owners.get(&b"etc/shadow"[..]) {
        if node.mode & 0o007 != 0 || node.uid != 0 {
            fail(format!(
                "/etc/shadow: owner {}:{} mode {:04o}, expected root-owned with no access for others",
                node.uid, node.gid, node.mode
            ));
        }
    }
    for program in ["/sbin/init", "/bin/sh"] {
        match walk.resolve(program.trim_start_matches('/').as_bytes()) {
            Some((_, node)) if node.kind == MemberKind::Regular && node.mode & 0o111 != 0 => {}
            Some((target, node)) => fail(format!(
                "{program} resolves to {} ({}, mode {:04o}), not an executable file",
                crate::archive::display_path(&target),
                node.kind.describe(),
                node.mode
            )),
            None => fail(format!(
                "{program} is missing or does not resolve inside the rootfs"
            )),
        }
    }
    match walk.resolve(b"etc/wsl.conf") {
        Some((_, node)) if node.kind == MemberKind::Regular => {}
        _ => fail(
            "/etc/wsl.conf is missing or does not resolve to a file inside the rootfs".to_owned(),
        ),
    }
}
