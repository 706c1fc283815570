//! Looking inside a finished tarball: `inspect`, `verify` and `diff`.
//!
//! One pass over the archive ([`ArchiveWalk`]) gathers everything the three
//! commands need, without Nix and without extracting anything: counts, every
//! member's kind and link target (to resolve symlinks inside the rootfs),
//! each store path's NAR hash and size recomputed from its members, Nix's
//! database and a few small skeleton files, and the problems seen on the way
//! (hard links, owners, modes, structure).
//!
//! - [`inspect`]: a summary ([`Inspection`]), as text or JSON.
//! - [`verify`]: checks that a tarball is what `wsl-tarball write` promises
//!   ([`Verification`]); every failure is listed.
//! - [`diff`]: why two tarballs differ ([`Difference`]).

mod checks;
mod database;
mod diff;
mod member_table;
mod verify;
mod walk;
mod wsl_format;
mod wsl_members;

use crate::count::count;
use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

pub use checks::{Check, CheckStatus};
pub use database::{read_database, Database, DatabaseError, DatabaseVisitor, RegisteredPath};
pub use diff::{
    diff, diff_with_progress, store_path_changes_text, Change, ChangedStorePath, Difference,
    FirstDifference, MemberChange, StorePathPair,
};
pub use member_table::{MemberTable, NodeInfo};
pub(crate) use verify::verify_image;
pub use verify::{verify, verify_signed, verify_with_progress, CheckOutcome, Verification};
pub use walk::{ArchiveWalk, ArchiveWalkError, KeptFile, Owner, StoreObject, WalkOptions};

use crate::archive::{ArchiveError, ReadError};
use crate::escape::Escaped;
use crate::hex;
pub use crate::progress::human_bytes;
use crate::progress::Progress;

/// The version of the JSON schema of `inspect`, `verify` and `diff` (and of
/// their bundle and system-description forms); docs/src/json.md.
pub const JSON_VERSION: u32 = 1;

/// A limit that keeps a walk's memory bounded was reached.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: more than {limit}, the most wsl-tarball reads (its memory use is bounded)")]
pub struct WalkLimit {
    /// What was counted.
    pub what: &'static str,
    /// The most allowed.
    pub limit: u64,
}

/// This machine's trouble, not the input's: a temporary file or directory
/// could not be made, written or read back (a missing or full temporary
/// directory, say).
#[derive(Debug, thiserror::Error)]
#[error("{what} in the temporary directory {}: {source}", dir.display())]
pub struct TemporaryError {
    /// What could not be done, naming the member it was for.
    pub what: String,
    /// The temporary directory.
    pub dir: std::path::PathBuf,
    /// What the system said.
    pub source: std::io::Error,
}

impl TemporaryError {
    /// `what` failed with `source` in the temporary directory (`TMPDIR`,
    /// else `/tmp`).
    pub fn new(what: String, source: std::io::Error) -> Self {
        TemporaryError {
            what,
            dir: std::env::temp_dir(),
            source,
        }
    }
}

/// Why a tarball could not be looked at.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error(transparent)]
    /// This machine's trouble.
    Temporary(#[from] TemporaryError),
    #[error(transparent)]
    /// The archive could not be read.
    Archive(#[from] ReadError),
    #[error("{file}: {source}")]
    /// A memory limit was reached in `file`.
    Limit {
        /// The file, as named.
        file: String,
        /// The limit.
        source: WalkLimit,
    },
    #[error("standard input can be only one of the two tarballs")]
    /// Both tarballs of a `diff` are standard input.
    BothStdin,
    #[error("manifest {}: {message}", path.display())]
    /// A manifest that could not be read or is malformed.
    Manifest {
        /// The manifest file.
        path: std::path::PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// Files of the WSL/NixOS skeleton that `inspect` reports on, in the order shown.
pub const SKELETON_FILES: [&str; 13] = [
    "/etc/wsl.conf",
    "/etc/wsl-distribution.conf",
    "/etc/passwd",
    "/etc/group",
    "/etc/shadow",
    "/etc/static",
    "/etc/NIXOS",
    "/etc/nixos/configuration.nix",
    "/sbin/init",
    "/bin/sh",
    "/bin/bash",
    "/usr/bin/env",
    "/usr/lib/wsl/nixos.ico",
];

/// Counts of members by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MemberCounts {
    /// Every member.
    pub entries: u64,
    /// Directories.
    pub directories: u64,
    /// Regular files.
    pub files: u64,
    /// Symlinks.
    pub symlinks: u64,
    #[serde(rename = "hardLinks")]
    /// Hard links.
    pub hard_links: u64,
    /// Anything else (devices, fifos).
    pub other: u64,
}

/// A store path's size, for the top-N list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StorePathSize {
    /// The store path.
    pub path: String,
    #[serde(rename = "narSize")]
    /// Its NAR size.
    pub nar_size: u64,
}

/// One skeleton file: whether it exists (parent directories followed through
/// symlinks, as `lstat` does) and whether it resolves, through symlinks
/// inside the rootfs, to something that exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SkeletonFile {
    /// The file's path in the rootfs.
    pub path: String,
    /// Whether it exists.
    pub present: bool,
    /// What it is after following symlinks: `file`, `directory`, … or null
    /// when it does not resolve inside the rootfs.
    pub resolves_to: Option<String>,
}

/// The tar dialect of an archive's headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TarFormat {
    /// Every header has GNU tar's magic (`ustar  `).
    Gnu,
    /// Every header has POSIX's (`ustar\0`).
    Ustar,
    /// Some of each.
    Mixed,
    /// No members.
    Empty,
}

impl TarFormat {
    /// The name reports print.
    pub fn name(self) -> &'static str {
        match self {
            TarFormat::Gnu => "gnu",
            TarFormat::Ustar => "ustar",
            TarFormat::Mixed => "mixed",
            TarFormat::Empty => "empty",
        }
    }
}

/// Which Nix database a rootfs has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NixDatabaseKind {
    /// `/nix/var/nix/db/db.sqlite`.
    Sqlite,
    /// `/nix-path-registration`, loaded at first boot.
    Registration,
    /// Neither.
    None,
}

impl NixDatabaseKind {
    /// The name reports print.
    pub fn name(self) -> &'static str {
        match self {
            NixDatabaseKind::Sqlite => "sqlite",
            NixDatabaseKind::Registration => "registration",
            NixDatabaseKind::None => "none",
        }
    }
}

/// What `inspect` reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Inspection {
    /// The schema's version, [`crate::inspect::JSON_VERSION`].
    pub version: u32,
    /// The file, as named.
    pub file: String,
    /// `gzip`, `xz`, `zstd` or `none`, from the magic bytes.
    pub compression: String,
    /// The tar dialect of the headers.
    pub tar_format: TarFormat,
    /// Size of the file in bytes.
    pub file_size: u64,
    /// SHA-256 of the file, hex.
    pub file_sha256: String,
    /// Size of the uncompressed tar stream.
    pub tar_size: u64,
    /// Members by kind.
    pub members: MemberCounts,
    /// Bytes of regular-file content.
    pub content_bytes: u64,
    /// Store paths in the tarball.
    pub store_paths: u64,
    /// Sum of the recomputed NAR sizes of the store paths.
    pub store_nar_bytes: u64,
    /// `profiles/system`'s target, if it is a store path in the tarball.
    pub system: Option<String>,
    /// Which Nix database it has.
    pub nix_database: NixDatabaseKind,
    /// The skeleton files and whether they are there.
    pub skeleton: Vec<SkeletonFile>,
    /// The largest store paths.
    pub top_store_paths: Vec<StorePathSize>,
    /// `passed`, `failed`, `not run`, or `unknown` without a manifest.
    pub security_checks: String,
}

/// `inspect`: walks the archive once (no NAR hashing) and summarises it;
/// `-` is standard input. Trailing data after the end of the archive is an
/// error.
/// `manifest`, if given, is the JSON `write --manifest` wrote beside the
/// tarball; its security-check outcome is reported.
pub fn inspect(
    tarball: &Path,
    top: usize,
    manifest: Option<&Path>,
) -> Result<Inspection, InspectError> {
    inspect_with_progress(tarball, top, manifest, &mut ())
}

/// [`inspect`], telling `progress` how many bytes of the file were read.
pub fn inspect_with_progress(
    tarball: &Path,
    top: usize,
    manifest: Option<&Path>,
    progress: &mut dyn Progress,
) -> Result<Inspection, InspectError> {
    let walk = ArchiveWalk::run_with_progress(
        tarball,
        &WalkOptions {
            hash_nar: false,
            keep_files: false,
            ..WalkOptions::default()
        },
        progress,
    )?;
    if let Some(offset) = walk.end.trailing_data {
        return Err(ArchiveWalkError::from(ArchiveError::TrailingData { offset }).in_file(tarball));
    }
    let file_sha256 = walk.file_sha256.expect("inspect hashes the file");
    let security_checks = match manifest {
        None => "unknown".to_owned(),
        Some(path) => security_outcome_from_manifest(path, &file_sha256)?,
    };
    let mut sizes: Vec<StorePathSize> = walk
        .store_objects
        .values()
        .map(|object| StorePathSize {
            path: object.path.clone(),
            nar_size: object.nar_size,
        })
        .collect();
    sizes.sort_by(|a, b| b.nar_size.cmp(&a.nar_size).then(a.path.cmp(&b.path)));
    sizes.truncate(top);
    Ok(Inspection {
        version: JSON_VERSION,
        file: crate::archive::source_name(tarball),
        compression: walk.compression.name().to_owned(),
        tar_format: walk.tar_format(),
        file_size: walk.file_size,
        file_sha256: hex::encode(&file_sha256),
        tar_size: walk.end.tar_bytes,
        members: walk.counts,
        content_bytes: walk.content_bytes,
        store_paths: walk.store_objects.len() as u64,
        store_nar_bytes: walk.store_objects.values().map(|o| o.nar_size).sum(),
        system: walk.system_path(),
        nix_database: walk.nix_database_kind(),
        skeleton: SKELETON_FILES
            .iter()
            .map(|path| walk.skeleton_file(path))
            .collect(),
        top_store_paths: sizes,
        security_checks,
    })
}

/// The largest manifest read (it lists every store path and finding).
const MAX_MANIFEST_BYTES: u64 = 64 << 20;

/// The bytes of the manifest at `path`, an error naming it if they cannot
/// be read.
pub(crate) fn read_manifest_bytes(path: &Path) -> Result<Vec<u8>, InspectError> {
    let error = |message: String| InspectError::Manifest {
        path: path.to_path_buf(),
        message,
    };
    crate::input::read_limited(path, MAX_MANIFEST_BYTES, "a manifest").map_err(|e| match e {
        // The path is already in front.
        crate::input::InputError::Read { source, .. } => error(format!("cannot read it: {source}")),
        crate::input::InputError::TooLarge { limit, .. } => error(format!(
            "larger than the limit of {limit} bytes for a manifest"
        )),
    })
}

/// The `securityChecks.status` of a manifest, after checking that it
/// describes this tarball.
fn security_outcome_from_manifest(path: &Path, sha256: &[u8; 32]) -> Result<String, InspectError> {
    let error = |message: String| InspectError::Manifest {
        path: path.to_path_buf(),
        message,
    };
    let bytes = read_manifest_bytes(path)?;
    let manifest: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| error(format!("not JSON: {e}")))?;
    let recorded = manifest["tarball"]["sha256"].as_str().unwrap_or_default();
    if recorded != hex::encode(sha256) {
        return Err(error(format!(
            "describes a tarball with sha256 \"{recorded}\", not this one ({})",
            hex::encode(sha256)
        )));
    }
    Ok(manifest["securityChecks"]["status"]
        .as_str()
        .unwrap_or("unknown")
        .to_owned())
}

impl Inspection {
    /// The human-readable summary, with the names from the tarball and the
    /// manifest escaped for a terminal.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let m = &self.members;
        out.push_str(&format!("file         {}\n", Escaped(&self.file)));
        out.push_str(&format!(
            "format       {} tar, {} compression; {} ({} uncompressed)\n",
            self.tar_format.name(),
            self.compression,
            human_bytes(self.file_size),
            human_bytes(self.tar_size)
        ));
        out.push_str(&format!("sha256       {}\n", self.file_sha256));
        out.push_str(&format!(
            "entries      {} ({}, {}, {}, {}, {} other)\n",
            m.entries,
            count(m.directories, "directory"),
            count(m.files, "file"),
            count(m.symlinks, "symlink"),
            count(m.hard_links, "hard link"),
            m.other
        ));
        out.push_str(&format!(
            "store paths  {} ({} NAR, {} of file content in the archive)\n",
            self.store_paths,
            human_bytes(self.store_nar_bytes),
            human_bytes(self.content_bytes)
        ));
        out.push_str(&format!(
            "system       {}\n",
            Escaped(
                self.system
                    .as_deref()
                    .unwrap_or("(no /nix/var/nix/profiles/system)")
            )
        ));
        out.push_str(&format!("nix database {}\n", self.nix_database.name()));
        out.push_str(&format!(
            "security     {}\n",
            Escaped(&self.security_checks)
        ));
        out.push_str("skeleton\n");
        for file in &self.skeleton {
            let state = match (&file.resolves_to, file.present) {
                (Some(kind), _) => kind.clone(),
                (None, true) => "dangling".to_owned(),
                (None, false) => "missing".to_owned(),
            };
            out.push_str(&format!("  {:<30} {state}\n", Escaped(&file.path)));
        }
        out.push_str(&format!(
            "largest store paths (top {})\n",
            self.top_store_paths.len()
        ));
        for path in &self.top_store_paths {
            out.push_str(&format!(
                "  {:>10}  {}\n",
                human_bytes(path.nar_size),
                Escaped(&path.path)
            ));
        }
        out
    }
}

/// Store paths by basename, for the commands that compare them.
pub(crate) type StoreObjects = BTreeMap<String, StoreObject>;
