//! Delta updates: ship a colleague only the store paths their distribution
//! lacks, and apply them inside it with Nix itself.
//!
//! A bundle (`update.wsl-delta`) is a tar, compressed like tarballs, of
//!
//! ```text
//! wsl-delta/manifest.json   old and new system, each path's narHash/narSize/references,
//!                           what it needs from the old system, the export's sha256
//! wsl-delta/apply           a POSIX sh script doing what `wsl-tarball apply` does
//! wsl-delta/nix-export      the new paths in `nix-store --export` format, in dependency order
//! ```
//!
//! - [`inventory`]: what a system description lists (an earlier tarball's
//!   Nix database, a `--manifest` JSON, a closure file), and `diff` of two.
//! - [`export`]: Nix's export framing around each NAR, written and read back.
//! - [`manifest`]: the layout and the manifest, every store path in it
//!   parsed where it is read.
//! - [`bundle`]: the writer (one pass over the new paths, on the one
//!   pipeline: NAR, check, scan and compress on every core).
//! - [`script`]: the `apply` script.
//! - [`read`]: opening a bundle, `inspect` and `verify` of one.
//! - [`apply`](mod@apply): `wsl-tarball apply`: read the bundle once into a
//!   private copy checking everything `verify` checks, then import that
//!   copy, check, set the profile, activate.

pub mod apply;
pub mod bundle;
pub mod export;
pub mod inventory;
pub mod manifest;
pub mod read;
pub mod script;
pub mod sign;

use std::path::PathBuf;

pub use apply::{apply, ApplyOptions, ApplyOutcome, SignatureOutcome};
pub use bundle::{write_bundle, BundleInputs, BundleSummary, PendingBundle};
pub use inventory::{compare, read_inventory, Inventory, InventoryDifference, InventoryKind};
pub use manifest::{BundleManifest, BundlePath};
pub use read::{
    inspect_bundle, is_bundle, verify_bundle, verify_signed_bundle, BundleInspection,
    BundleVerification,
};

/// Why a delta could not be made, read or applied.
#[derive(Debug, thiserror::Error)]
pub enum DeltaError {
    #[error("{}: not a tarball, a `--manifest` JSON or a closure file: {message}", path.display())]
    NotASystem { path: PathBuf, message: String },
    #[error("{}: {message}", path.display())]
    BadInventory { path: PathBuf, message: String },
    /// This machine's trouble (a temporary file), never a verdict on OLD.
    #[error(transparent)]
    Temporary(#[from] crate::inspect::TemporaryError),
    #[error("bundles are made for the store directory /nix/store, not {store_dir}")]
    StoreDir { store_dir: String },
    #[error("the new system {system} is not in the new closure")]
    SystemNotInClosure { system: String },
    #[error(
        "{path}: the host store holds other contents than the closure says \
         (NAR {actual_hash}, {actual_size} bytes; the closure says {expected_hash}, {expected_size} bytes)"
    )]
    StoreMismatch {
        path: String,
        expected_hash: String,
        actual_hash: String,
        expected_size: u64,
        actual_size: u64,
    },
    #[error("{path} changed in the host store while the bundle was written")]
    ChangedWhileWriting { path: String },
    #[error("{}: not an update bundle: {message}", path.display())]
    NotABundle { path: PathBuf, message: String },
    #[error("{}: the bundle is damaged: {message}", path.display())]
    DamagedBundle { path: PathBuf, message: String },
    #[error("{}: the bundle's manifest is not valid: {message}", path.display())]
    BadManifest { path: PathBuf, message: String },
    #[error(
        "this bundle updates {expected}, but the system here is {found} \
         ({profile}); nothing was changed"
    )]
    WrongSystem {
        expected: String,
        found: String,
        profile: String,
    },
    #[error(
        "the local store lacks {} the bundle needs from the old system, \
         first {first}; nothing was changed",
        crate::count::count(*count, "store path")
    )]
    MissingRequired { count: usize, first: String },
    #[error("{message}")]
    Usage { message: &'static str },
    #[error("{}: refusing a bundle not signed by a key Nix trusts ({source_name}): {problem}; nothing was changed", path.display())]
    Unsigned {
        path: PathBuf,
        source_name: String,
        problem: crate::sign::SignatureProblem,
    },
    #[error("cannot read the keys Nix trusts (trusted-public-keys): {message}")]
    TrustedKeys { message: String },
    #[error("--root {}: {why}", root.display())]
    BadRoot { root: PathBuf, why: &'static str },
    #[error("`{command}` failed ({status}){detail}")]
    Command {
        command: String,
        status: String,
        detail: String,
    },
    #[error("cannot run `{command}`: {source}")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    #[error("after the import, {path} has NAR hash {actual} in the local store, not {expected}")]
    ImportedHash {
        path: String,
        expected: String,
        actual: String,
    },
    #[error("{error}; the paths the import added were deleted again: the store is as it was and the system profile was not changed")]
    ImportUndone { error: Box<DeltaError> },
    #[error("{error}; undoing the import failed too ({undo}): the store may keep paths of the bundle that nothing uses; the system profile was not changed")]
    ImportNotUndone {
        error: Box<DeltaError>,
        undo: Box<DeltaError>,
    },
    #[error(transparent)]
    Closure(#[from] crate::store::ClosureError),
    #[error(transparent)]
    Dump(#[from] crate::nar::DumpError),
    #[error(transparent)]
    Tar(#[from] crate::tar::TarError),
    #[error(transparent)]
    Compress(#[from] crate::compress::CompressError),
    #[error(transparent)]
    Output(#[from] crate::output::OutputError),
    #[error("writing {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}
