//! `verify`: is this tarball what `wsl-tarball write` promises?
//!
//! Offline, without Nix: tar structure, no hard links, owners and modes in
//! the store, every store path's NAR hash and size recomputed from its
//! members against Nix's database inside the tarball, every reference
//! present, the system profile, and, when the tarball has a NixOS skeleton,
//! the files WSL needs.

use std::path::Path;

use serde::Serialize;

use super::walk::{ArchiveWalk, WalkOptions};
use super::{read_registered_paths, InspectError};
use crate::archive::MemberKind;
use crate::store::NarHash;

/// The checks `verify` runs, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Check {
    TarFormat,
    HardLinks,
    Ownership,
    NixDatabase,
    StoreContents,
    References,
    SystemProfile,
    Skeleton,
}

impl Check {
    pub const ALL: [Check; 8] = [
        Check::TarFormat,
        Check::HardLinks,
        Check::Ownership,
        Check::NixDatabase,
        Check::StoreContents,
        Check::References,
        Check::SystemProfile,
        Check::Skeleton,
    ];

    /// What the check covers, for the report.
    pub fn description(self) -> &'static str {
        match self {
            Check::TarFormat => "tar structure: header checksums, names, parents before children, no duplicates, end-of-archive blocks",
            Check::HardLinks => "no hard links",
            Check::Ownership => "owners and modes: /nix/store 1775, store contents owned by 0:0, files 0444/0555, directories 0555",
            Check::NixDatabase => "Nix database present and listing exactly the store paths in the tarball",
            Check::StoreContents => "every store path's NAR hash and size, recomputed from the archive, match the database",
            Check::References => "every reference of every store path is in the tarball",
            Check::SystemProfile => "/nix/var/nix/profiles/system leads to a store path in the tarball",
            Check::Skeleton => "WSL skeleton: /etc/passwd with root as uid 0, /etc/shadow private, /sbin/init and /bin/sh executable, /etc/wsl.conf",
        }
    }
}

/// How one check went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckOutcome {
    pub check: Check,
    pub description: &'static str,
    /// `passed`, `failed` or `skipped`.
    pub status: &'static str,
    /// Why a check was skipped, or what a passed check covered.
    pub note: Option<String>,
    pub failures: Vec<String>,
}

/// What `verify` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verification {
    pub file: String,
    pub compression: String,
    pub store_paths: usize,
    pub checks: Vec<CheckOutcome>,
}

impl Verification {
    /// True if no check failed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.status != "failed")
    }

    /// Every failure, prefixed with its check.
    pub fn failures(&self) -> impl Iterator<Item = (Check, &str)> {
        self.checks
            .iter()
            .flat_map(|c| c.failures.iter().map(move |f| (c.check, f.as_str())))
    }

    /// The report for people: one line per check, failures indented below.
    /// At most `max_failures` failures are listed per check.
    pub fn to_text(&self, max_failures: usize) -> String {
        let mut out = format!(
            "verifying {} ({} compression, {} store paths)\n",
            self.file, self.compression, self.store_paths
        );
        for outcome in &self.checks {
            let tag = match outcome.status {
                "passed" => "ok  ",
                "failed" => "FAIL",
                _ => "skip",
            };
            out.push_str(&format!("{tag}  {}", outcome.description));
            if let Some(note) = &outcome.note {
                out.push_str(&format!(" ({note})"));
            }
            out.push('\n');
            for failure in outcome.failures.iter().take(max_failures) {
                out.push_str(&format!("      - {failure}\n"));
            }
            if outcome.failures.len() > max_failures {
                out.push_str(&format!(
                    "      … and {} more\n",
                    outcome.failures.len() - max_failures
                ));
            }
        }
        let failed = self.failures().count();
        let skipped = self.checks.iter().filter(|c| c.status == "skipped").count();
        if failed == 0 {
            out.push_str(&format!(
                "verified: {} checks passed, {skipped} skipped\n",
                self.checks.len() - skipped
            ));
        } else {
            out.push_str(&format!("NOT verified: {failed} failures\n"));
        }
        out
    }
}

/// Runs every check on the tarball at `path`. Without a WSL skeleton the
/// tarball cannot boot and fails, unless `bare` says a bare store tarball is
/// meant (`verify --bare`).
pub fn verify(path: &Path, bare: bool) -> Result<Verification, InspectError> {
    let walk = ArchiveWalk::run(path, &WalkOptions::default())?;
    let mut failures: Vec<(Check, String)> = walk.problems.clone();
    let mut notes: Vec<(Check, String)> = Vec::new();
    let mut skipped: Vec<(Check, String)> = Vec::new();

    if walk.end.zero_blocks < 2 {
        failures.push((
            Check::TarFormat,
            format!(
                "the archive ends after {} zero blocks, not the two that mark its end",
                walk.end.zero_blocks
            ),
        ));
    }
    if walk.end.trailing_garbage {
        failures.push((
            Check::TarFormat,
            "non-zero bytes after the end-of-archive blocks".to_owned(),
        ));
    }

    check_database(&walk, &mut failures, &mut notes, &mut skipped);
    match walk.system_path() {
        Some(system) => notes.push((Check::SystemProfile, system)),
        None => failures.push((
            Check::SystemProfile,
            "/nix/var/nix/profiles/system is missing or does not lead to a store path in the tarball".to_owned(),
        )),
    }
    check_skeleton(&walk, bare, &mut failures, &mut skipped);

    let checks = Check::ALL
        .iter()
        .map(|&check| {
            let failed: Vec<String> = failures
                .iter()
                .filter(|(c, _)| *c == check)
                .map(|(_, message)| message.clone())
                .collect();
            let skip = skipped.iter().find(|(c, _)| *c == check);
            let note = notes
                .iter()
                .find(|(c, _)| *c == check)
                .or(skip)
                .map(|(_, n)| n.clone());
            CheckOutcome {
                check,
                description: check.description(),
                status: if !failed.is_empty() {
                    "failed"
                } else if skip.is_some() {
                    "skipped"
                } else {
                    "passed"
                },
                note,
                failures: failed,
            }
        })
        .collect();
    Ok(Verification {
        file: path.display().to_string(),
        compression: super::compression_name(walk.compression).to_owned(),
        store_paths: walk.store_objects.len(),
        checks,
    })
}

/// Database present, same set of paths as the archive, hashes and sizes,
/// references.
fn check_database(
    walk: &ArchiveWalk,
    failures: &mut Vec<(Check, String)>,
    notes: &mut Vec<(Check, String)>,
    skipped: &mut Vec<(Check, String)>,
) {
    let sqlite = walk.kept_files.get(&b"nix/var/nix/db/db.sqlite"[..]);
    let registration = walk.kept_files.get(&b"nix-path-registration"[..]);
    let registered =
        match read_registered_paths(sqlite.map(Vec::as_slice), registration.map(Vec::as_slice)) {
            Ok(registered) => registered,
            Err(message) => {
                failures.push((Check::NixDatabase, message));
                for check in [Check::StoreContents, Check::References] {
                    skipped.push((check, "no readable Nix database to compare with".to_owned()));
                }
                return;
            }
        };
    let source = if sqlite.is_some() {
        "/nix/var/nix/db/db.sqlite"
    } else {
        "/nix-path-registration"
    };
    notes.push((
        Check::NixDatabase,
        format!("{source}, {} paths", registered.len()),
    ));
    if sqlite.is_some() {
        match walk.kept_files.get(&b"nix/var/nix/db/schema"[..]) {
            Some(schema) if schema.as_slice() == crate::nixdb::SCHEMA_FILE_CONTENTS.as_bytes() => {}
            Some(schema) => failures.push((
                Check::NixDatabase,
                format!(
                    "/nix/var/nix/db/schema says {:?}, expected {:?}",
                    String::from_utf8_lossy(schema),
                    crate::nixdb::SCHEMA_FILE_CONTENTS
                ),
            )),
            None => failures.push((
                Check::NixDatabase,
                "/nix/var/nix/db/schema is missing".to_owned(),
            )),
        }
    }
    let in_archive: std::collections::BTreeMap<&str, &super::StoreObject> = walk
        .store_objects
        .values()
        .map(|object| (object.path.as_str(), object))
        .collect();
    for path in registered.keys() {
        if !in_archive.contains_key(path.as_str()) {
            failures.push((
                Check::NixDatabase,
                format!("{path} is registered in the Nix database but missing from the tarball"),
            ));
        }
    }
    for path in in_archive.keys() {
        if !registered.contains_key(*path) {
            failures.push((
                Check::NixDatabase,
                format!("{path} is in the tarball but not registered in the Nix database"),
            ));
        }
    }
    let mut hashed = 0;
    for (path, entry) in &registered {
        let Some(object) = in_archive.get(path.as_str()) else {
            continue;
        };
        for reference in &entry.references {
            if !in_archive.contains_key(reference.as_str()) {
                failures.push((
                    Check::References,
                    format!("{path} references {reference}, which is not in the tarball"),
                ));
            }
        }
        let Some(actual) = object.nar_hash else {
            // The walk already reported why no NAR could be made.
            continue;
        };
        let actual = NarHash(actual);
        match NarHash::parse(&entry.nar_hash) {
            Ok(expected) if expected == actual => hashed += 1,
            Ok(expected) => failures.push((
                Check::StoreContents,
                format!(
                    "{path}: NAR hash recomputed from the archive is {actual}, the database says {expected} (NAR size {} here, {} there)",
                    object.nar_size,
                    entry.nar_size.map_or("unknown".to_owned(), |s| s.to_string())
                ),
            )),
            Err(error) => failures.push((Check::StoreContents, format!("{path}: database hash: {error}"))),
        }
        if let Some(expected_size) = entry.nar_size {
            if expected_size != object.nar_size {
                failures.push((
                    Check::StoreContents,
                    format!(
                        "{path}: NAR size recomputed from the archive is {}, the database says {expected_size}",
                        object.nar_size
                    ),
                ));
            }
        }
    }
    notes.push((Check::StoreContents, format!("{hashed} NAR hashes match")));
}

/// With a skeleton (`/etc/passwd` or `/sbin/init` present): the files WSL needs.
fn check_skeleton(
    walk: &ArchiveWalk,
    bare: bool,
    failures: &mut Vec<(Check, String)>,
    skipped: &mut Vec<(Check, String)>,
) {
    let has_skeleton =
        walk.nodes.contains_key(&b"etc/passwd"[..]) || walk.resolve(b"sbin/init").is_some();
    if !has_skeleton {
        if bare {
            skipped.push((
                Check::Skeleton,
                "no /etc/passwd or /sbin/init: a bare store tarball (--bare)".to_owned(),
            ));
        } else {
            failures.push((
                Check::Skeleton,
                "no /etc/passwd or /sbin/init: WSL cannot boot this tarball; write it with the skeleton (the default for a NixOS toplevel), or pass --bare to verify a bare store tarball".to_owned(),
            ));
        }
        return;
    }
    let mut fail = |message: String| failures.push((Check::Skeleton, message));
    match walk.kept_files.get(&b"etc/passwd"[..]) {
        None => fail("/etc/passwd is missing or not a regular file".to_owned()),
        Some(passwd) => {
            let text = String::from_utf8_lossy(passwd);
            let root = text
                .lines()
                .map(|line| line.split(':').collect::<Vec<_>>())
                .find(|fields| fields.first() == Some(&"root"));
            match root {
                Some(fields) if fields.get(2) == Some(&"0") => {}
                Some(fields) => fail(format!(
                    "/etc/passwd: root has uid {:?}, not 0",
                    fields.get(2).copied().unwrap_or("")
                )),
                None => fail("/etc/passwd has no root user".to_owned()),
            }
            if let Some(node) = walk.nodes.get(&b"etc/passwd"[..]) {
                if node.uid != 0 || node.mode & 0o022 != 0 {
                    fail(format!(
                        "/etc/passwd: owner {}:{} mode {:04o}, expected root-owned and not writable by others",
                        node.uid, node.gid, node.mode
                    ));
                }
            }
        }
    }
    if let Some(node) = walk.nodes.get(&b"etc/shadow"[..]) {
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
