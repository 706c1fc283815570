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
    Findings { errors: usize, stage: FindingsStage },

    // Bad settings, found before any input is read (see `is_usage`).
    #[error("{threads} worker threads: {source}")]
    Threads {
        threads: usize,
        source: CompressError,
    },
    #[error(transparent)]
    CompressOptions(CompressError),
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error(transparent)]
    Overlap(#[from] OverlapError),
    #[error(transparent)]
    Chown(#[from] ChownRuleError),
    #[error("an update bundle holds only store paths: extra files, owners, a manifest, an SBOM and a cache do not apply to it")]
    BundleSettings,
    #[error("a signature is recorded in the manifest, and no manifest is written")]
    SignKeyWithoutManifest,
    #[error("the host's wsl.tarball.signing.keyFile ({key}) asks for a signature, which is recorded in the manifest, and no manifest is written")]
    ModuleSignKeyWithoutManifest { key: String },
    #[error("a cache size limit applies to a cache, and no cache directory is given")]
    CacheLimitWithoutCache,
    #[error("checking the cache's contents applies to a cache, and no cache directory is given")]
    CacheCheckWithoutCache,
    #[error(transparent)]
    Destination(OutputError),
    #[error("{file} {}: that is standard output, and {}; give a file name", path.display(), file.why())]
    NotToStdout { file: NotStdout, path: PathBuf },
    #[error("overriding files the tool makes: replaced files are verified in the complete tarball before it is committed, which a stream to standard output cannot wait for; write to a file")]
    OverrideToStream,
    #[error("compression {compression} contradicts the output {}, whose suffix names {suffix}: ask for {suffix}, or name the file for {compression}", output.display())]
    SuffixContradicts {
        output: PathBuf,
        compression: &'static str,
        suffix: &'static str,
    },
    #[error("output {}: its suffix names {compression}, which wsl-tarball does not write; name it .tar.gz or .wsl (gzip), .tar.xz (xz), .tar.zst (zstd) or .tar (none)", output.display())]
    UnsupportedSuffix {
        output: PathBuf,
        compression: &'static str,
    },

    // Bad inputs.
    #[error("no system store path: give one, or a facts file that names it")]
    NoSystem,
    #[error("icon {}: a bare store tarball has no /etc/wsl-distribution.conf to name it", .0.display())]
    IconWithoutSkeleton(PathBuf),
    #[error("system {system}: {source}")]
    InvalidSystem {
        system: String,
        source: StorePathError,
    },
    #[error("{system} is not a NixOS toplevel (it lacks init, etc or sw), so it gets no WSL skeleton and cannot boot")]
    NotNixosToplevel { system: String },
    #[error("compression \"{value}\" from the facts file: {source}")]
    FactsCompression {
        value: String,
        source: CompressError,
    },
    #[error("modification time {0} is too large")]
    MtimeTooLarge(u64),
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Facts(#[from] FactsError),
    #[error(transparent)]
    Closure(#[from] ClosureError),
    #[error(transparent)]
    Allow(#[from] AllowRuleError),
    #[error(transparent)]
    ScanConfig(#[from] ScanConfigError),
    #[error(transparent)]
    Nix(#[from] NixError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Sign(#[from] SignError),
    #[error("trusted key: {0}")]
    TrustedKey(KeyError),
    #[error("an update bundle holds its own manifest; no other is read for it")]
    ManifestForBundle,
    #[error("a tarball's signature is in the manifest written with it, and no manifest is given")]
    TrustedKeysWithoutManifest,
    #[error(transparent)]
    Publish(#[from] crate::publish::PublishError),

    // Failures while running.
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error(transparent)]
    Delta(#[from] MakeError),
    #[error(transparent)]
    Inventory(#[from] InventoryError),
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error(transparent)]
    Read(#[from] ReadError),
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

    /// Bad usage, found before anything was read or written.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            AppError::Threads { .. }
                | AppError::CompressOptions(_)
                | AppError::Cache(_)
                | AppError::CacheLimitWithoutCache
                | AppError::CacheCheckWithoutCache
                | AppError::SignKeyWithoutManifest
                | AppError::ModuleSignKeyWithoutManifest { .. }
                | AppError::Destination(_)
                | AppError::NotToStdout { .. }
                | AppError::OverrideToStream
                | AppError::SuffixContradicts { .. }
                | AppError::UnsupportedSuffix { .. }
                | AppError::Overlap(_)
                | AppError::Chown(_)
        ) || matches!(self, AppError::Sign(error) if error.is_usage())
            || matches!(self, AppError::Publish(error) if error.is_usage())
    }
}

/// Why `sign` refused.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("{}: an image is signed through its manifest; give the manifest `write` wrote for it", file.display())]
    NoManifest { file: PathBuf },
    #[error("{}: an update bundle holds its own manifest; a separate manifest does not apply", file.display())]
    BundleWithManifest { file: PathBuf },
    #[error("manifest {}: {message}; nothing was signed", manifest.display())]
    BadManifest { manifest: PathBuf, message: String },
    #[error("manifest {}: the SBOM it records (sbom.file {:?}) is not beside it: {} does not exist; nothing was signed", manifest.display(), crate::escape::escape_str(.file), looked_for.display())]
    SbomNotBeside {
        manifest: PathBuf,
        file: String,
        looked_for: PathBuf,
    },
    #[error("{} was given as the SBOM, but the manifest {} records none; nothing was signed", sbom.display(), manifest.display())]
    NoSbomRecorded { sbom: PathBuf, manifest: PathBuf },
    #[error("{} is not the image manifest {} describes ({what}); nothing was signed", file.display(), manifest.display())]
    NotThisImage {
        file: PathBuf,
        manifest: PathBuf,
        what: String,
    },
    #[error("the signing key {} is inside the extra files {}: it would be copied into the tarball", key.display(), tree.display())]
    KeyInExtraFiles { key: PathBuf, tree: PathBuf },
    #[error("the signing key {} is in the Nix store ({}), readable by every user: keep secret keys outside the store", key.display(), store.display())]
    KeyInStore { key: PathBuf, store: PathBuf },
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl SignError {
    /// Bad usage rather than a refused input.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            SignError::NoManifest { .. }
                | SignError::BundleWithManifest { .. }
                | SignError::NoSbomRecorded { .. }
                | SignError::KeyInExtraFiles { .. }
                | SignError::KeyInStore { .. }
        )
    }
}
