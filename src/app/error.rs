//! Why a request failed, in the domain's words: which input, which value,
//! what is wrong. The CLI adds the flag that carried the value.

use std::path::PathBuf;

use crate::archive::ReadError;
use crate::cache::CacheError;
use crate::compress::CompressError;
use crate::count::count;
use crate::delta::DeltaError;
use crate::input::InputError;
use crate::nix::NixError;
use crate::output::OutputError;
use crate::overlap::OverlapError;
use crate::plan::{ChownRuleError, FactsError, PlanError};
use crate::scan::{AllowRuleError, ScanConfigError};
use crate::sign::KeyError;
use crate::store::{ClosureError, StorePathError};
use crate::write::WriteError;

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

/// What a run that streamed to standard output and failed adds.
const STREAM_ABANDONED: &str = ": the tarball streamed to standard output is cut short and must not be used; no manifest was written";

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
    #[error("--cache-limit applies to a cache, and `write` has none unless --cache DIR is given")]
    CacheLimitWithoutCache,
    #[error("--cache-check-contents applies to a cache, and `write` has none unless --cache DIR is given")]
    CacheCheckWithoutCache,
    #[error(transparent)]
    Destination(OutputError),
    #[error("{flag} {}: that is standard output, and {why}; give a file name", path.display())]
    NotToStdout {
        flag: &'static str,
        path: PathBuf,
        why: &'static str,
    },
    #[error("--allow-override: replaced files are verified in the complete tarball before it is committed, which a stream to standard output cannot wait for; give -o FILE")]
    OverrideToStream,
    #[error("--compression {flag} contradicts -o {}, whose suffix names {suffix}: leave out --compression to write {suffix}, or name the file for {flag}", output.display())]
    SuffixContradicts {
        output: PathBuf,
        flag: &'static str,
        suffix: &'static str,
    },
    #[error("-o {}: its suffix names {compression}, which wsl-tarball does not write; name it .tar.gz or .wsl (gzip), .tar.xz (xz), .tar.zst (zstd) or .tar (none)", output.display())]
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
    Sign(#[from] super::SignError),
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
    Delta(#[from] DeltaError),
    #[error(transparent)]
    Read(#[from] ReadError),
    /// A failure after the tarball began to stream to standard output.
    #[error("{0}{STREAM_ABANDONED}")]
    StreamAbandoned(Box<AppError>),
}

impl AppError {
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
