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

mod database;
mod diff;
mod verify;
mod walk;

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

pub use database::{read_registered_paths, RegisteredPath};
pub use diff::{diff, Difference, FirstDifference};
pub use verify::{verify, Check, CheckOutcome, Verification};
pub use walk::{ArchiveWalk, NodeInfo, StoreObject, WalkOptions};

use crate::archive::ArchiveError;
use crate::compress::Compression;

/// Why a tarball could not be looked at.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error("{}: {source}", path.display())]
    Archive {
        path: std::path::PathBuf,
        source: ArchiveError,
    },
    #[error("manifest {}: {message}", path.display())]
    Manifest {
        path: std::path::PathBuf,
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
    pub entries: u64,
    pub directories: u64,
    pub files: u64,
    pub symlinks: u64,
    #[serde(rename = "hardLinks")]
    pub hard_links: u64,
    pub other: u64,
}

/// A store path's size, for the top-N list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StorePathSize {
    pub path: String,
    #[serde(rename = "narSize")]
    pub nar_size: u64,
}

/// One skeleton file: whether it exists (parent directories followed through
/// symlinks, as `lstat` does) and whether it resolves, through symlinks
/// inside the rootfs, to something that exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SkeletonFile {
    pub path: String,
    pub present: bool,
    /// What it is after following symlinks: `file`, `directory`, … or null
    /// when it does not resolve inside the rootfs.
    pub resolves_to: Option<String>,
}

/// What `inspect` reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Inspection {
    pub file: String,
    /// `gzip`, `xz`, `zstd` or `none`, from the magic bytes.
    pub compression: String,
    /// `gnu` when every header has GNU tar's magic, `ustar` for POSIX, `mixed`.
    pub tar_format: String,
    pub file_size: u64,
    pub file_sha256: String,
    pub tar_size: u64,
    pub members: MemberCounts,
    /// Bytes of regular-file content.
    pub content_bytes: u64,
    pub store_paths: u64,
    /// Sum of the recomputed NAR sizes of the store paths.
    pub store_nar_bytes: u64,
    /// `profiles/system`'s target, if it is a store path in the tarball.
    pub system: Option<String>,
    /// `sqlite`, `registration` or `none`.
    pub nix_database: String,
    pub skeleton: Vec<SkeletonFile>,
    pub top_store_paths: Vec<StorePathSize>,
    /// `passed`, `failed`, `not run`, or `unknown` without a manifest.
    pub security_checks: String,
}

/// `inspect`: walks the archive once (no NAR hashing) and summarises it.
/// `manifest`, if given, is the JSON `write --manifest` wrote beside the
/// tarball; its security-check outcome is reported.
pub fn inspect(
    tarball: &Path,
    top: usize,
    manifest: Option<&Path>,
) -> Result<Inspection, InspectError> {
    let walk = ArchiveWalk::run(
        tarball,
        &WalkOptions {
            hash_nar: false,
            ..WalkOptions::default()
        },
    )?;
    let security_checks = match manifest {
        None => "unknown".to_owned(),
        Some(path) => security_outcome_from_manifest(path, &walk.file_sha256)?,
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
        file: tarball.display().to_string(),
        compression: compression_name(walk.compression).to_owned(),
        tar_format: walk.tar_format().to_owned(),
        file_size: walk.file_size,
        file_sha256: hex(&walk.file_sha256),
        tar_size: walk.end.tar_bytes,
        members: walk.counts,
        content_bytes: walk.content_bytes,
        store_paths: walk.store_objects.len() as u64,
        store_nar_bytes: walk.store_objects.values().map(|o| o.nar_size).sum(),
        system: walk.system_path(),
        nix_database: walk.nix_database_kind().to_owned(),
        skeleton: SKELETON_FILES
            .iter()
            .map(|path| walk.skeleton_file(path))
            .collect(),
        top_store_paths: sizes,
        security_checks,
    })
}

/// The `securityChecks.status` of a manifest, after checking that it
/// describes this tarball.
fn security_outcome_from_manifest(path: &Path, sha256: &[u8; 32]) -> Result<String, InspectError> {
    let error = |message: String| InspectError::Manifest {
        path: path.to_path_buf(),
        message,
    };
    let bytes = std::fs::read(path).map_err(|e| error(e.to_string()))?;
    let manifest: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| error(format!("not JSON: {e}")))?;
    let recorded = manifest["tarball"]["sha256"].as_str().unwrap_or_default();
    if recorded != hex(sha256) {
        return Err(error(format!(
            "describes a tarball with sha256 {recorded:?}, not this one ({})",
            hex(sha256)
        )));
    }
    Ok(manifest["securityChecks"]["status"]
        .as_str()
        .unwrap_or("unknown")
        .to_owned())
}

impl Inspection {
    /// The human-readable summary.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let m = &self.members;
        out.push_str(&format!("file         {}\n", self.file));
        out.push_str(&format!(
            "format       {} tar, {} compression; {} ({} uncompressed)\n",
            self.tar_format,
            self.compression,
            human_bytes(self.file_size),
            human_bytes(self.tar_size)
        ));
        out.push_str(&format!("sha256       {}\n", self.file_sha256));
        out.push_str(&format!(
            "entries      {} ({} directories, {} files, {} symlinks, {} hard links, {} other)\n",
            m.entries, m.directories, m.files, m.symlinks, m.hard_links, m.other
        ));
        out.push_str(&format!(
            "store paths  {} ({} NAR, {} of file content in the archive)\n",
            self.store_paths,
            human_bytes(self.store_nar_bytes),
            human_bytes(self.content_bytes)
        ));
        out.push_str(&format!(
            "system       {}\n",
            self.system
                .as_deref()
                .unwrap_or("(no /nix/var/nix/profiles/system)")
        ));
        out.push_str(&format!("nix database {}\n", self.nix_database));
        out.push_str(&format!("security     {}\n", self.security_checks));
        out.push_str("skeleton\n");
        for file in &self.skeleton {
            let state = match (&file.resolves_to, file.present) {
                (Some(kind), _) => kind.clone(),
                (None, true) => "dangling".to_owned(),
                (None, false) => "missing".to_owned(),
            };
            out.push_str(&format!("  {:<30} {state}\n", file.path));
        }
        out.push_str(&format!(
            "largest store paths (top {})\n",
            self.top_store_paths.len()
        ));
        for path in &self.top_store_paths {
            out.push_str(&format!(
                "  {:>10}  {}\n",
                human_bytes(path.nar_size),
                path.path
            ));
        }
        out
    }
}

pub(crate) fn compression_name(compression: Compression) -> &'static str {
    match compression {
        Compression::Gzip => "gzip",
        Compression::Xz => "xz",
        Compression::Zstd => "zstd",
        Compression::None => "none",
    }
}

/// Lowercase hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `1.5 MiB`-style sizes for people.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Store paths by basename, for the commands that compare them.
pub(crate) type StoreObjects = BTreeMap<String, StoreObject>;
