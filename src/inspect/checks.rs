//! The checks `verify` runs, and how each went: the vocabulary that the
//! archive walk (which finds problems member by member) and `verify` (which
//! reports them) share, so neither depends on the other.

use serde::Serialize;

/// The checks `verify` runs, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Check {
    /// The tar structure: checksums, names, parents, duplicates, the end.
    TarFormat,
    /// No hard links.
    HardLinks,
    /// Owners and modes of the store and the skeleton.
    Ownership,
    /// The Nix database lists exactly the store paths in the tarball.
    NixDatabase,
    /// Every store path's NAR hash and size match the database.
    StoreContents,
    /// Every reference is in the tarball.
    References,
    /// `/nix/var/nix/profiles/system` leads to a store path in the tarball.
    SystemProfile,
    /// The WSL skeleton files.
    Skeleton,
    /// Microsoft's rules for modern WSL distributions ([`super::wsl_format`]).
    WslFormat,
    /// With `--manifest`: not in [`Check::ALL`], run only when asked.
    Manifest,
    /// With trusted keys: not in [`Check::ALL`], run only when asked.
    Signature,
}

impl Check {
    /// The checks `verify` always runs, in report order.
    pub const ALL: [Check; 9] = [
        Check::TarFormat,
        Check::HardLinks,
        Check::Ownership,
        Check::NixDatabase,
        Check::StoreContents,
        Check::References,
        Check::SystemProfile,
        Check::Skeleton,
        Check::WslFormat,
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
            Check::Manifest => "manifest: the file's sha256 and size are the ones the manifest records",
            Check::Signature => "signature: the manifest is signed by a trusted key",
            Check::WslFormat => "WSL distribution format: what Microsoft's validate-modern.py checks (errors fail, its warnings are listed)",
            Check::Skeleton => "WSL skeleton: /etc/passwd with root as uid 0, /etc/shadow private, /sbin/init and /bin/sh executable, /etc/wsl.conf",
        }
    }
}

/// How one check went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    /// It passed.
    Passed,
    /// It failed.
    Failed,
    /// Not run: what it needs is missing (`--bare`, no database).
    Skipped,
}
