//! Why a delta operation failed, one error type per operation: reading a
//! system description ([`InventoryError`]), making a bundle
//! ([`MakeError`]), reading one ([`BundleError`]) and applying one
//! ([`ApplyError`]). Each names the file, store path or command, and what
//! is wrong.

use std::path::PathBuf;

/// Why a system description (an earlier tarball, its manifest, a closure
/// file) could not be read: `delta --from`, `diff`.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("{}: not a tarball, a tarball's manifest or a closure file: {message}", path.display())]
    NotASystem { path: PathBuf, message: String },
    #[error("{}: {message}", path.display())]
    BadInventory { path: PathBuf, message: String },
    /// This machine's trouble (a temporary file), never a verdict on OLD.
    #[error(transparent)]
    Temporary(#[from] crate::inspect::TemporaryError),
}

/// Why a bundle could not be made (`delta`), or rewritten signed.
#[derive(Debug, thiserror::Error)]
pub enum MakeError {
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
    /// The bundle to sign could not be read.
    #[error(transparent)]
    Bundle(#[from] BundleError),
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

/// Why a bundle could not be read, or failed its checks: `inspect`,
/// `verify`, `sign` and `apply` of a bundle.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("{}: not an update bundle: {message}", path.display())]
    NotABundle { path: PathBuf, message: String },
    #[error("{}: the bundle is damaged: {message}", path.display())]
    DamagedBundle { path: PathBuf, message: String },
    #[error("{}: the bundle's manifest is not valid: {message}", path.display())]
    BadManifest { path: PathBuf, message: String },
    /// The private copy of the checked export stream could not be written.
    #[error("writing {}: {source}", path.display())]
    Copy {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Why `apply` refused a bundle or failed; each says what was changed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Bundle(#[from] BundleError),
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
    #[error("another root needs a dry activation: the new system cannot be activated inside another root")]
    RootWithoutDryActivate,
    #[error("{}: refusing a bundle not signed by a key Nix trusts ({source_name}): {problem}; nothing was changed", path.display())]
    Unsigned {
        path: PathBuf,
        source_name: String,
        problem: crate::sign::SignatureProblem,
    },
    #[error("cannot read the keys Nix trusts (trusted-public-keys): {message}")]
    TrustedKeys { message: String },
    #[error("root {}: {why}", root.display())]
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
    ImportUndone { error: Box<ApplyError> },
    #[error("{error}; undoing the import failed too ({undo}): the store may keep paths of the bundle that nothing uses; the system profile was not changed")]
    ImportNotUndone {
        error: Box<ApplyError>,
        undo: Box<ApplyError>,
    },
    #[error("writing {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}
