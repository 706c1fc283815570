//! Why a request failed, in the domain's words: which input, which value,
//! what is wrong. The CLI adds the flag that carried the value.

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
}

impl FindingsStage {
    fn what(self) -> &'static str {
        match self {
            FindingsStage::Check => "",
            FindingsStage::Tarball => ": the tarball was not written",
            FindingsStage::Bundle => ": the bundle was not written",
        }
    }
}

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

    // Bad inputs.
    #[error("no system store path: give one, or a facts file that names it")]
    NoSystem,
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
                | AppError::Overlap(_)
                | AppError::Chown(_)
        ) || matches!(self, AppError::Sign(error) if error.is_usage())
    }
}
