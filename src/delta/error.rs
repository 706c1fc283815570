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
    /// The file is not a tarball, a tarball's manifest or a closure file.
    #[error("{}: not a tarball, a tarball's manifest or a closure file: {message}", path.display())]
    NotASystem {
        /// The file given.
        path: PathBuf,
        /// Why it is none of them.
        message: String,
    },
    /// The file is one of them, and what it lists does not parse.
    #[error("{}: {message}", path.display())]
    BadInventory {
        /// The file given.
        path: PathBuf,
        /// What is wrong in it.
        message: String,
    },
    /// This machine's trouble (a temporary file), never a verdict on OLD.
    #[error(transparent)]
    Temporary(#[from] crate::inspect::TemporaryError),
}

/// Why a bundle could not be made (`delta`), or rewritten signed.
#[derive(Debug, thiserror::Error)]
pub enum MakeError {
    /// The store directory is not `/nix/store`, the one bundles are for.
    #[error("bundles are made for the store directory /nix/store, not {store_dir}")]
    StoreDir {
        /// The store directory asked for.
        store_dir: String,
    },
    /// The new system is not a path of the new closure.
    #[error("the new system {system} is not in the new closure")]
    SystemNotInClosure {
        /// The new system's store path.
        system: String,
    },
    #[error(
        "{path}: the host store holds other contents than the closure says \
         (NAR {actual_hash}, {actual_size} bytes; the closure says {expected_hash}, {expected_size} bytes)"
    )]
    /// A store path's contents on the host differ from what the closure records.
    StoreMismatch {
        /// The store path (absolute).
        path: String,
        /// The NAR hash the closure records.
        expected_hash: String,
        /// The NAR hash of the host's contents.
        actual_hash: String,
        /// The NAR size in bytes the closure records.
        expected_size: u64,
        /// The NAR size in bytes of the host's contents.
        actual_size: u64,
    },
    /// The bundle to sign could not be read.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// The closure file does not parse.
    #[error(transparent)]
    Closure(#[from] crate::store::ClosureError),
    /// A store path cannot be serialised as a NAR (unreadable, or an unsupported file type).
    #[error(transparent)]
    Dump(#[from] crate::nar::DumpError),
    /// A bundle member cannot be tarred.
    #[error(transparent)]
    Tar(#[from] crate::tar::TarError),
    /// The compression options are refused.
    #[error(transparent)]
    Compress(#[from] crate::compress::CompressError),
    /// The bundle cannot be committed to its destination.
    #[error(transparent)]
    Output(#[from] crate::output::OutputError),
    /// The bundle cannot be written.
    #[error("writing {}: {source}", path.display())]
    Write {
        /// The bundle's destination.
        path: PathBuf,
        /// Why it cannot be written.
        source: std::io::Error,
    },
}

/// Why a bundle could not be read, or failed its checks: `inspect`,
/// `verify`, `sign` and `apply` of a bundle.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// The file does not start as an update bundle does.
    #[error("{}: not an update bundle: {message}", path.display())]
    NotABundle {
        /// The file given.
        path: PathBuf,
        /// What it lacks.
        message: String,
    },
    /// The bundle's members or export stream are not what its manifest says.
    #[error("{}: the bundle is damaged: {message}", path.display())]
    DamagedBundle {
        /// The bundle.
        path: PathBuf,
        /// What is damaged (a member, the export stream, a digest).
        message: String,
    },
    /// The bundle's `manifest.json` does not parse or breaks a rule.
    #[error("{}: the bundle's manifest is not valid: {message}", path.display())]
    BadManifest {
        /// The bundle.
        path: PathBuf,
        /// Which field is wrong, and how.
        message: String,
    },
    /// The private copy of the checked export stream could not be written.
    #[error("writing {}: {source}", path.display())]
    Copy {
        /// The private copy's path.
        path: PathBuf,
        /// Why it cannot be written.
        source: std::io::Error,
    },
}

/// Why `apply` refused a bundle or failed; each says what was changed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The bundle cannot be read, or fails its checks.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error(
        "this bundle updates {expected}, but the system here is {found} \
         ({profile}); nothing was changed"
    )]
    /// The bundle updates another system than the profile's.
    WrongSystem {
        /// The system the bundle updates.
        expected: String,
        /// The system the profile points to.
        found: String,
        /// The system profile.
        profile: String,
    },
    #[error(
        "the local store lacks {} the bundle needs from the old system, \
         first {first}; nothing was changed",
        crate::count::count(*count, "store path")
    )]
    /// The local store lacks store paths the bundle requires from the old system.
    MissingRequired {
        /// How many required store paths are missing.
        count: usize,
        /// The first of them (absolute).
        first: String,
    },
    /// Activation was asked for inside another root, which only a dry activation can do.
    #[error("another root needs a dry activation: the new system cannot be activated inside another root")]
    RootWithoutDryActivate,
    /// The bundle's signature does not satisfy the keys Nix trusts, and unsigned bundles were not allowed.
    #[error("{}: refusing a bundle not signed by a key Nix trusts ({source_name}): {problem}; nothing was changed", path.display())]
    Unsigned {
        /// The bundle.
        path: PathBuf,
        /// Where the trusted keys were read from (the Nix configuration, or the keys given).
        source_name: String,
        /// What is wrong with the signature: missing, by an unknown key, or bad.
        problem: crate::sign::SignatureProblem,
    },
    /// The keys Nix trusts (`trusted-public-keys`) cannot be read.
    #[error("cannot read the keys Nix trusts (trusted-public-keys): {message}")]
    TrustedKeys {
        /// Why they cannot be read.
        message: String,
    },
    /// The other root to apply into is not usable.
    #[error("root {}: {why}", root.display())]
    BadRoot {
        /// The root given.
        root: PathBuf,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A command (`nix-store --import`, the activation) failed.
    #[error("`{command}` failed ({status}){detail}")]
    Command {
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// What follows the status: the end of its standard error, or that the profile was rolled back (empty if nothing).
        detail: String,
    },
    /// A command cannot be started.
    #[error("cannot run `{command}`: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// Why it cannot be started.
        source: std::io::Error,
    },
    /// An imported store path's NAR hash differs from the manifest's.
    #[error("after the import, {path} has NAR hash {actual} in the local store, not {expected}")]
    ImportedHash {
        /// The store path (absolute).
        path: String,
        /// The NAR hash the manifest records.
        expected: String,
        /// The NAR hash in the local store.
        actual: String,
    },
    /// Applying failed after the import; the imported paths were deleted again.
    #[error("{error}; the paths the import added were deleted again: the store is as it was and the system profile was not changed")]
    ImportUndone {
        /// Why the import was undone.
        error: Box<ApplyError>,
    },
    /// Applying failed after the import, and deleting the imported paths failed too.
    #[error("{error}; undoing the import failed too ({undo}): the store may keep paths of the bundle that nothing uses; the system profile was not changed")]
    ImportNotUndone {
        /// Why applying failed.
        error: Box<ApplyError>,
        /// Why undoing the import failed.
        undo: Box<ApplyError>,
    },
    /// A store entry the failed import added cannot be removed.
    #[error("writing {}: {source}", path.display())]
    Write {
        /// The store entry.
        path: PathBuf,
        /// Why it cannot be removed.
        source: std::io::Error,
    },
}
