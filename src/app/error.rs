//! Why a request failed, in the domain's words: which input, which value,
//! what is wrong. The CLI adds the flag that carried the value.

use std::path::PathBuf;

use crate::archive::ReadError;
use crate::cache::CacheError;
use crate::compress::CompressError;
use crate::count::count;
use crate::delta::{BundleError, InventoryError, MakeError};
use crate::input::InputError;
use crate::inspect::InspectError;
use crate::nix::NixError;
use crate::output::OutputError;
use crate::overlap::OverlapError;
use crate::plan::{ChownRuleError, FactsError, PlanError};
use crate::scan::{AllowRuleError, ScanConfigError};
use crate::sign::KeyError;
use crate::store::{ClosureError, StorePathError};
use crate::write::WriteError;

/// How a command ends: the exit status the CLI documents in its `--help`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0: done; every check passed; A and B are identical.
    Success,
    /// 1: a check ran and said no (verification failed, A and B differ),
    /// or a command that writes or applies failed.
    Failure,
    /// 2: trouble: bad usage, or an input a reading command cannot read.
    Trouble,
    /// 3: error-severity security findings.
    Findings,
}

impl ExitStatus {
    /// The status as the process's exit code.
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Failure => 1,
            ExitStatus::Trouble => 2,
            ExitStatus::Findings => crate::scan::FINDINGS_EXIT_CODE,
        }
    }
}

/// Where error-severity findings stopped a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FindingsStage {
    /// `check`: nothing was to be written.
    Check,
    /// `write`/`build`: the tarball was not written.
    Tarball,
    /// `delta`: the bundle was not written.
    Bundle,
    /// `write`/`build -o -`: the stream on standard output is cut short.
    Stream,
}

impl FindingsStage {
    fn what(self) -> &'static str {
        match self {
            FindingsStage::Check => "",
            FindingsStage::Tarball => ": the tarball was not written",
            FindingsStage::Bundle => ": the bundle was not written",
            FindingsStage::Stream => STREAM_ABANDONED,
        }
    }
}

/// An output that must be a file, never standard output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotStdout {
    /// The manifest vouches for the tarball.
    Manifest,
    /// An update bundle is verified in its file before it is committed.
    Bundle,
}

impl NotStdout {
    /// Why it must be a file.
    pub fn why(self) -> &'static str {
        match self {
            NotStdout::Manifest => "the manifest is a file that vouches for the tarball",
            NotStdout::Bundle => "an update bundle is verified in its file before it is committed",
        }
    }
}

impl std::fmt::Display for NotStdout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NotStdout::Manifest => "manifest",
            NotStdout::Bundle => "bundle",
        })
    }
}

/// What a run that streamed to standard output and failed adds.
pub const STREAM_ABANDONED: &str = ": the tarball streamed to standard output is cut short and must not be used; no manifest was written";

/// Why a request failed. Nothing at the destinations changed.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The security checks found error-severity findings.
    #[error("{}{}", count(*errors, "error-severity finding"), stage.what())]
    Findings {
        /// How many findings were errors.
        errors: usize,
        /// What the findings stopped.
        stage: FindingsStage,
    },

    // Bad settings, found before any input is read (see `is_usage`).
    /// The worker thread count is not one the compressor accepts.
    #[error("{threads} worker threads: {source}")]
    Threads {
        /// The thread count asked for.
        threads: usize,
        /// Why the compressor refuses it.
        source: CompressError,
    },
    /// The compression, level and threads asked for do not go together.
    #[error(transparent)]
    CompressOptions(CompressError),
    /// The cache directory cannot be opened or its size limit used.
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// An output names an input (or lies inside an input tree).
    #[error(transparent)]
    Overlap(#[from] OverlapError),
    /// An ownership rule (path, UID:GID) does not parse.
    #[error(transparent)]
    Chown(#[from] ChownRuleError),
    /// Settings that apply to a tarball only were given for an update bundle.
    #[error("an update bundle holds only store paths: extra files, owners, a manifest, an SBOM and a cache do not apply to it")]
    BundleSettings,
    /// A signing key was given, and no manifest is written to hold the signature.
    #[error("a signature is recorded in the manifest, and no manifest is written")]
    SignKeyWithoutManifest,
    /// The host's NixOS module asks for a signature, and no manifest is written to hold it.
    #[error("the host's wsl.tarball.signing.keyFile ({key}) asks for a signature, which is recorded in the manifest, and no manifest is written")]
    ModuleSignKeyWithoutManifest {
        /// The key file the host's module names.
        key: String,
    },
    /// A cache size limit was given without a cache directory.
    #[error("a cache size limit applies to a cache, and no cache directory is given")]
    CacheLimitWithoutCache,
    /// A check of the cache's contents was asked for without a cache directory.
    #[error("checking the cache's contents applies to a cache, and no cache directory is given")]
    CacheCheckWithoutCache,
    /// An output's destination cannot take the file (its directory is missing, say).
    #[error(transparent)]
    Destination(OutputError),
    /// An output that must be a file was given as standard output (`-`).
    #[error("{file} {}: that is standard output, and {}; give a file name", path.display(), file.why())]
    NotToStdout {
        /// Which output it is.
        file: NotStdout,
        /// The destination given (`-`).
        path: PathBuf,
    },
    /// Overrides of files the tool makes were asked for with the tarball streamed to standard output.
    #[error("overriding files the tool makes: replaced files are verified in the complete tarball before it is committed, which a stream to standard output cannot wait for; write to a file")]
    OverrideToStream,
    /// The compression asked for and the output's suffix name different formats.
    #[error("compression {compression} contradicts the output {}, whose suffix names {suffix}: ask for {suffix}, or name the file for {compression}", output.display())]
    SuffixContradicts {
        /// The tarball's destination.
        output: PathBuf,
        /// The compression asked for (`gzip`, `xz`, `zstd`, `none`).
        compression: &'static str,
        /// The compression the suffix names.
        suffix: &'static str,
    },
    /// The output's suffix names a compression wsl-tarball does not write (`.tar.bz2`, say).
    #[error("output {}: its suffix names {compression}, which wsl-tarball does not write; name it .tar.gz or .wsl (gzip), .tar.xz (xz), .tar.zst (zstd) or .tar (none)", output.display())]
    UnsupportedSuffix {
        /// The tarball's destination.
        output: PathBuf,
        /// The compression its suffix names.
        compression: &'static str,
    },

    // Bad inputs.
    /// Neither a system store path nor a facts file naming one was given.
    #[error("no system store path: give one, or a facts file that names it")]
    NoSystem,
    /// An icon was given for a bare store tarball, which has no skeleton to name it; holds the icon's path.
    #[error("icon {}: a bare store tarball has no /etc/wsl-distribution.conf to name it", .0.display())]
    IconWithoutSkeleton(PathBuf),
    /// The system is not a store path.
    #[error("system {system}: {source}")]
    InvalidSystem {
        /// The system as given.
        system: String,
        /// Why it is not a store path.
        source: StorePathError,
    },
    /// The system lacks `init`, `etc` or `sw`: it cannot get a WSL skeleton or boot.
    #[error("{system} is not a NixOS toplevel (it lacks init, etc or sw), so it gets no WSL skeleton and cannot boot")]
    NotNixosToplevel {
        /// The system store path given.
        system: String,
    },
    /// The facts file's compression is not one wsl-tarball writes.
    #[error("compression \"{value}\" from the facts file: {source}")]
    FactsCompression {
        /// The compression the facts file names.
        value: String,
        /// Why it is refused.
        source: CompressError,
    },
    /// The modification time (seconds since 1970) does not fit a tar header.
    #[error("modification time {0} is too large")]
    MtimeTooLarge(u64),
    /// A user file (closure, facts, manifest) cannot be read within its size limit.
    #[error(transparent)]
    Input(#[from] InputError),
    /// The facts file does not parse.
    #[error(transparent)]
    Facts(#[from] FactsError),
    /// The closure file does not parse.
    #[error(transparent)]
    Closure(#[from] ClosureError),
    /// An allow rule for findings does not parse.
    #[error(transparent)]
    Allow(#[from] AllowRuleError),
    /// A `--pattern` or `--identifier` of the security checks is refused.
    #[error(transparent)]
    ScanConfig(#[from] ScanConfigError),
    /// Running `nix` failed (for `build`).
    #[error(transparent)]
    Nix(#[from] NixError),
    /// The signing key cannot be read or does not parse.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// `sign` refused its inputs.
    #[error(transparent)]
    Sign(#[from] SignError),
    /// A manifest was given for an update bundle, which holds its own.
    #[error("an update bundle holds its own manifest; no other is read for it")]
    ManifestForBundle,
    /// Trusted keys were given to verify a tarball without its manifest.
    #[error("a tarball's signature is in the manifest written with it, and no manifest is given")]
    TrustedKeysWithoutManifest,
    /// `publish` failed.
    #[error(transparent)]
    Publish(#[from] crate::publish::PublishError),

    // Failures while running.
    /// The rootfs cannot be planned (a conflict between entries, say).
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// Writing the tarball failed.
    #[error(transparent)]
    Write(#[from] WriteError),
    /// Committing an output (the manifest, the SBOM) failed.
    #[error(transparent)]
    Output(#[from] OutputError),
    /// Making the update bundle failed.
    #[error(transparent)]
    Delta(#[from] MakeError),
    /// The earlier system's inventory (tarball, manifest or closure) cannot be read.
    #[error(transparent)]
    Inventory(#[from] InventoryError),
    /// Reading or applying an update bundle failed.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// A tarball cannot be read.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// `inspect`, `verify` or `diff` cannot read what it was given.
    #[error(transparent)]
    Inspect(#[from] InspectError),
    /// A failure after the tarball began to stream to standard output.
    #[error("{0}{STREAM_ABANDONED}")]
    StreamAbandoned(Box<AppError>),
}

impl AppError {
    /// The exit status of a command that writes or applies and failed so:
    /// findings 3, bad usage 2, anything else 1. (A reading command's
    /// failures are trouble: [`super::ReadingError`].)
    pub fn status(&self) -> ExitStatus {
        match self {
            AppError::Findings { .. } => ExitStatus::Findings,
            error if error.is_usage() => ExitStatus::Trouble,
            _ => ExitStatus::Failure,
        }
    }

    /// Bad usage, found before anything was read or written. Every
    /// variant is named, so a new one must be placed.
    pub fn is_usage(&self) -> bool {
        match self {
            AppError::Threads { .. }
            | AppError::CompressOptions { .. }
            | AppError::Cache { .. }
            | AppError::Overlap { .. }
            | AppError::Chown { .. }
            | AppError::SignKeyWithoutManifest
            | AppError::ModuleSignKeyWithoutManifest { .. }
            | AppError::CacheLimitWithoutCache
            | AppError::CacheCheckWithoutCache
            | AppError::Destination { .. }
            | AppError::NotToStdout { .. }
            | AppError::OverrideToStream
            | AppError::SuffixContradicts { .. }
            | AppError::UnsupportedSuffix { .. } => true,
            AppError::Sign(error) => error.is_usage(),
            AppError::Publish(error) => error.is_usage(),
            AppError::Findings { .. }
            | AppError::BundleSettings
            | AppError::NoSystem
            | AppError::IconWithoutSkeleton { .. }
            | AppError::InvalidSystem { .. }
            | AppError::NotNixosToplevel { .. }
            | AppError::FactsCompression { .. }
            | AppError::MtimeTooLarge { .. }
            | AppError::Input { .. }
            | AppError::Facts { .. }
            | AppError::Closure { .. }
            | AppError::Allow { .. }
            | AppError::ScanConfig { .. }
            | AppError::Nix { .. }
            | AppError::Key { .. }
            | AppError::ManifestForBundle
            | AppError::TrustedKeysWithoutManifest
            | AppError::Plan { .. }
            | AppError::Write { .. }
            | AppError::Output { .. }
            | AppError::Delta { .. }
            | AppError::Inventory { .. }
            | AppError::Bundle { .. }
            | AppError::Read { .. }
            | AppError::Inspect { .. }
            | AppError::StreamAbandoned { .. } => false,
        }
    }
}

/// Why `sign` refused.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// An image was given to `sign` in place of its manifest.
    #[error("{}: an image is signed through its manifest; give the manifest `write` wrote for it", file.display())]
    NoManifest {
        /// The image given in its place.
        file: PathBuf,
    },
    /// A manifest was given for an update bundle, which holds its own.
    #[error("{}: an update bundle holds its own manifest; a separate manifest does not apply", file.display())]
    BundleWithManifest {
        /// The bundle.
        file: PathBuf,
    },
    /// The manifest does not parse or is not one `write` makes.
    #[error("manifest {}: {message}; nothing was signed", manifest.display())]
    BadManifest {
        /// The manifest given.
        manifest: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The manifest records an SBOM that is not in its directory.
    #[error("manifest {}: the SBOM it records (sbom.file {:?}) is not beside it: {} does not exist; nothing was signed", manifest.display(), crate::escape::escape_str(.file), looked_for.display())]
    SbomNotBeside {
        /// The manifest given.
        manifest: PathBuf,
        /// The SBOM's file name as the manifest records it (unescaped: from the file).
        file: String,
        /// Where it was looked for.
        looked_for: PathBuf,
    },
    /// An SBOM was given, and the manifest records none.
    #[error("{} was given as the SBOM, but the manifest {} records none; nothing was signed", sbom.display(), manifest.display())]
    NoSbomRecorded {
        /// The SBOM given.
        sbom: PathBuf,
        /// The manifest, which records no SBOM.
        manifest: PathBuf,
    },
    /// The image given does not match what its manifest records.
    #[error("{} is not the image manifest {} describes ({what}); nothing was signed", file.display(), manifest.display())]
    NotThisImage {
        /// The image given.
        file: PathBuf,
        /// The manifest given.
        manifest: PathBuf,
        /// What differs (its size or its SHA-256).
        what: String,
    },
    /// The secret key lies in the extra-files tree, so it would ship in the tarball.
    #[error("the signing key {} is inside the extra files {}: it would be copied into the tarball", key.display(), tree.display())]
    KeyInExtraFiles {
        /// The secret key file.
        key: PathBuf,
        /// The extra-files tree that holds it.
        tree: PathBuf,
    },
    /// The secret key lies in the Nix store, where every user can read it.
    #[error("the signing key {} is in the Nix store ({}), readable by every user: keep secret keys outside the store", key.display(), store.display())]
    KeyInStore {
        /// The secret key file.
        key: PathBuf,
        /// The store directory that holds it.
        store: PathBuf,
    },
    /// An input (the manifest, the image, the key) cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why it cannot be read.
        source: std::io::Error,
    },
    /// The signed manifest or bundle cannot be written.
    #[error("writing {}: {source}", path.display())]
    Write {
        /// The destination.
        path: PathBuf,
        /// Why it cannot be written.
        source: std::io::Error,
    },
}

impl SignError {
    /// Bad usage rather than a refused input. Every variant is named.
    pub fn is_usage(&self) -> bool {
        match self {
            SignError::NoManifest { .. }
            | SignError::BundleWithManifest { .. }
            | SignError::NoSbomRecorded { .. }
            | SignError::KeyInExtraFiles { .. }
            | SignError::KeyInStore { .. } => true,
            SignError::BadManifest { .. }
            | SignError::SbomNotBeside { .. }
            | SignError::NotThisImage { .. }
            | SignError::Read { .. }
            | SignError::Write { .. } => false,
        }
    }
}
