//! The reading commands `inspect`, `verify`, `diff` and `check` as requests
//! and reports: which reader a file needs (a tarball, an update bundle, a
//! system description) is decided here, and every report carries its
//! verdict as an [`ExitStatus`].
//!
//! A reading command that cannot give its verdict (bad usage, an input that
//! cannot be read or is malformed) is trouble, exit status 2; error-severity
//! findings of `check` are 3 ([`ReadingError`]).

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{AppError, ContentRequest, Events, ExitStatus, SystemRequest};
use crate::delta::{self, BundleInspection, BundleVerification, InventoryDifference};
use crate::inspect::{self, Difference, Inspection, Verification};
use crate::progress::ProgressReport;
use crate::publish::ChannelVerification;
use crate::scan::ScanReport;
use crate::sign::PublicKey;
use crate::store::StoreDir;

/// How many failures of one check a verification's text lists.
const MAX_FAILURES_SHOWN: usize = 20;

/// Why a reading command gave no verdict: trouble (exit status 2), but for
/// error-severity findings (3).
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct ReadingError(pub AppError);

impl ReadingError {
    /// The exit status the command ends with.
    pub fn status(&self) -> ExitStatus {
        match self.0 {
            AppError::Findings { .. } => ExitStatus::Findings,
            _ => ExitStatus::Trouble,
        }
    }
}

impl<E: Into<AppError>> From<E> for ReadingError {
    fn from(error: E) -> Self {
        ReadingError(error.into())
    }
}

/// `inspect`'s summary of a tarball or an update bundle.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum InspectReport {
    /// A rootfs tarball's summary.
    Tarball(Inspection),
    /// An update bundle's summary.
    Bundle(BundleInspection),
}

impl InspectReport {
    /// The summary for people, names from the file escaped.
    pub fn to_text(&self) -> String {
        match self {
            InspectReport::Tarball(inspection) => inspection.to_text(),
            InspectReport::Bundle(inspection) => inspection.to_text(),
        }
    }

    /// A summary that was made is a success.
    pub fn status(&self) -> ExitStatus {
        ExitStatus::Success
    }
}

/// `inspect FILE`: a bundle's summary for a bundle, else a tarball's (with
/// its `--manifest`'s check outcome when given), with a progress bar for a
/// large file.
pub fn inspect(
    file: &Path,
    top: usize,
    manifest: Option<&Path>,
) -> Result<InspectReport, ReadingError> {
    if delta::is_bundle(file) {
        return Ok(InspectReport::Bundle(delta::inspect_bundle(file)?));
    }
    let mut bar = ProgressReport::reading(&[file]);
    let inspection = inspect::inspect_with_progress(file, top, manifest, &mut bar);
    bar.finish();
    Ok(InspectReport::Tarball(inspection?))
}

/// What `verify` is asked.
#[derive(Debug, Clone)]
pub struct VerifyRequest {
    /// The tarball or update bundle.
    pub file: PathBuf,
    /// A tarball without the WSL skeleton passes.
    pub bare: bool,
    /// The manifest written for a tarball.
    pub manifest: Option<PathBuf>,
    /// The SBOM the manifest records, when it is not beside the manifest.
    pub sbom: Option<PathBuf>,
    /// A signature by one of these keys is required.
    pub trusted_keys: Vec<PublicKey>,
}

/// `verify`'s checks of a tarball or an update bundle.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum VerifyReport {
    /// A rootfs tarball's checks.
    Tarball(Verification),
    /// An update bundle's checks.
    Bundle(BundleVerification),
    /// A channel's `DistributionInfo.json`, as `publish` writes it.
    Channel(ChannelVerification),
}

impl VerifyReport {
    /// The report for people, with at most 20 failures listed per check.
    pub fn to_text(&self) -> String {
        match self {
            VerifyReport::Tarball(v) => v.to_text(MAX_FAILURES_SHOWN),
            VerifyReport::Bundle(v) => v.to_text(MAX_FAILURES_SHOWN),
            VerifyReport::Channel(v) => v.to_text(),
        }
    }

    /// Success when every check passed, else failure (exit status 1).
    pub fn status(&self) -> ExitStatus {
        let passed = match self {
            VerifyReport::Tarball(v) => v.passed(),
            VerifyReport::Bundle(v) => v.passed(),
            VerifyReport::Channel(v) => v.passed(),
        };
        if passed {
            ExitStatus::Success
        } else {
            ExitStatus::Failure
        }
    }
}

/// `verify FILE`: a channel manifest's checks for a `DistributionInfo.json`,
/// a bundle's checks for a bundle (it holds its own
/// manifest), else a tarball's; trusted keys need a tarball's manifest,
/// where its signature is.
pub fn verify(request: &VerifyRequest) -> Result<VerifyReport, ReadingError> {
    let trusted = &request.trusted_keys;
    if let Some(verification) = super::publish::verify_channel(&request.file, trusted)? {
        return Ok(VerifyReport::Channel(verification));
    }
    if delta::is_bundle(&request.file) {
        if request.manifest.is_some() {
            return Err(AppError::ManifestForBundle.into());
        }
        let verification = delta::verify_signed_bundle(&request.file, trusted)?;
        return Ok(VerifyReport::Bundle(verification));
    }
    if !trusted.is_empty() && request.manifest.is_none() {
        return Err(AppError::TrustedKeysWithoutManifest.into());
    }
    let mut bar = ProgressReport::reading(&[&request.file]);
    let verification = inspect::verify_signed(
        &request.file,
        request.bare,
        request.manifest.as_deref(),
        request.sbom.as_deref(),
        trusted,
        &mut bar,
    );
    bar.finish();
    Ok(VerifyReport::Tarball(verification?))
}

/// `diff`'s comparison: of two systems' store paths when either side is a
/// system description, else of two tarballs.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum DiffReport {
    /// The store paths the two system descriptions differ in.
    Systems(InventoryDifference),
    /// The members the two tarballs differ in.
    Tarballs(Box<Difference>),
}

impl DiffReport {
    /// The report for people, names from the inputs escaped.
    pub fn to_text(&self) -> String {
        match self {
            DiffReport::Systems(d) => d.to_text(),
            DiffReport::Tarballs(d) => d.to_text(),
        }
    }

    /// Success when A and B are identical, else failure (exit status 1).
    pub fn status(&self) -> ExitStatus {
        let identical = match self {
            DiffReport::Systems(d) => d.identical,
            DiffReport::Tarballs(d) => d.identical,
        };
        if identical {
            ExitStatus::Success
        } else {
            ExitStatus::Failure
        }
    }
}

/// `diff A B`: a readable file that is no tarball (a manifest or a closure
/// file) on either side compares the two systems' store paths; two
/// tarballs are compared member by member, both read at once.
pub fn diff(a: &Path, b: &Path) -> Result<DiffReport, ReadingError> {
    let description = |path: &Path| path.is_file() && delta::inventory::is_system_description(path);
    if description(a) || description(b) {
        let a_inventory = delta::read_inventory(a, &StoreDir::default())?;
        let b_inventory = delta::read_inventory(b, &StoreDir::default())?;
        let (a_name, b_name) = (a.display().to_string(), b.display().to_string());
        let difference = delta::compare(&a_inventory, &a_name, &b_inventory, &b_name);
        return Ok(DiffReport::Systems(difference));
    }
    let mut bar = ProgressReport::reading(&[a, b]);
    let difference = inspect::diff_with_progress(a, b, &mut bar);
    bar.finish();
    Ok(DiffReport::Tarballs(Box::new(difference?)))
}

/// What `check` scans.
#[derive(Debug, Clone)]
pub enum CheckRequest {
    /// An existing tarball: the environment of `check` did not make it, so
    /// only the rules apply.
    Tarball {
        /// The tarball to scan.
        tarball: PathBuf,
        /// What the rootfs holds besides the closure, and the checks' settings.
        content: ContentRequest,
    },
    /// The rootfs `write` would make, with `threads` workers.
    Rootfs {
        /// Which system the rootfs is made of.
        system: SystemRequest,
        /// What the rootfs holds besides the closure, and the checks' settings.
        content: ContentRequest,
        /// Worker threads; `None`: one per core.
        threads: Option<usize>,
    },
}

/// `check`: the security report (`None` when the checks are skipped);
/// error-severity findings end it with [`ExitStatus::Findings`].
pub fn check(
    request: &CheckRequest,
    events: &mut dyn Events,
) -> Result<Option<ScanReport>, ReadingError> {
    Ok(match request {
        CheckRequest::Tarball { tarball, content } => {
            let store_dir = &content.store_dir;
            super::check_tarball(tarball, &content.checks, store_dir, events)?
        }
        CheckRequest::Rootfs {
            system,
            content,
            threads,
        } => super::check_rootfs(system, content, *threads, events)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::FindingsStage;
    use crate::compress::CompressError;

    fn findings() -> AppError {
        AppError::Findings {
            errors: 2,
            stage: FindingsStage::Check,
        }
    }

    /// The statuses each command's --help documents.
    #[test]
    fn statuses_are_the_documented_exit_codes() {
        let codes = [
            ExitStatus::Success,
            ExitStatus::Failure,
            ExitStatus::Trouble,
            ExitStatus::Findings,
        ]
        .map(ExitStatus::code);
        assert_eq!(codes, [0, 1, 2, 3]);
    }

    /// A making command: findings 3, bad usage 2, anything else 1; a
    /// reading command: findings 3, anything else trouble.
    #[test]
    fn errors_carry_their_status() {
        let usage = || AppError::Threads {
            threads: 0,
            source: CompressError::UnknownCompression("lz4".into()),
        };
        assert!(usage().is_usage());
        assert_eq!(usage().status(), ExitStatus::Trouble);
        assert_eq!(findings().status(), ExitStatus::Findings);
        assert_eq!(AppError::NoSystem.status(), ExitStatus::Failure);
        assert_eq!(ReadingError(findings()).status(), ExitStatus::Findings);
        assert_eq!(ReadingError(usage()).status(), ExitStatus::Trouble);
        assert_eq!(
            ReadingError::from(AppError::NoSystem).status(),
            ExitStatus::Trouble
        );
    }
}
