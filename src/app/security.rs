//! The security-check policy of a run: which rules, and whether the build
//! environment's sensitive values are searched for.
//!
//! What is written (`write`, `build`, `delta`, `check --closure`) is searched
//! for the values of the sensitive variables in the environment that made
//! it; an existing tarball (`check FILE`) was made elsewhere, so only the
//! rules apply to it. WSL_TARBALL_SKIP_CHECKS skips the checks, with a loud
//! [`Event::ChecksSkipped`].

use std::path::Path;
use std::sync::Arc;

use super::{AppError, Event, Events, FindingsStage};
use crate::scan::archive::scan_archive_file;
use crate::scan::{
    checks_skipped_by, sensitive_variables, AllowRule, ScanOptions, ScanReport, ScanRules,
    ScanScope, Scanner, SKIP_CHECKS_VAR,
};
use crate::store::{StoreDir, StorePath};

/// The security checks' settings (see docs/src/security.md).
#[derive(Debug, Clone, Default)]
pub struct CheckSettings {
    /// Every finding is an error, also outside the system's configuration.
    pub strict: bool,
    /// Accepted findings: DETECTOR, DETECTOR:GLOB or /GLOB.
    pub allow: Vec<String>,
    /// Literal texts to report wherever they occur.
    pub patterns: Vec<String>,
    /// Personal identifiers, matched case-insensitively as whole words.
    pub identifiers: Vec<String>,
}

/// The scanner for a run, or `None` when WSL_TARBALL_SKIP_CHECKS skips the
/// checks. `system` is the system's store path; `environment` adds the
/// build environment's sensitive values.
pub(super) fn scanner(
    settings: &CheckSettings,
    store_dir: &StoreDir,
    system: Option<&StorePath>,
    environment: bool,
    events: &mut dyn Events,
) -> Result<Option<Scanner>, AppError> {
    if checks_skipped_by(std::env::var_os(SKIP_CHECKS_VAR).as_deref()) {
        events.event(Event::ChecksSkipped);
        return Ok(None);
    }
    let options = ScanOptions {
        patterns: settings.patterns.clone(),
        identifiers: settings.identifiers.clone(),
        allow: settings
            .allow
            .iter()
            .map(|rule| AllowRule::parse(rule))
            .collect::<Result<_, _>>()?,
        strict: settings.strict,
        environment: if environment {
            sensitive_variables(std::env::vars_os())
        } else {
            Vec::new()
        },
    };
    let mut scope = ScanScope::new(store_dir);
    scope.system = system.map(|path| path.basename().to_owned());
    Ok(Some(Scanner::new(
        Arc::new(ScanRules::new(&options)?),
        scope,
    )))
}

/// Hands the report to `events`; error-severity findings fail the run.
pub(super) fn judge(
    report: &ScanReport,
    stage: FindingsStage,
    events: &mut dyn Events,
) -> Result<(), AppError> {
    events.event(Event::ScanReport(report));
    if report.has_errors() {
        return Err(AppError::Findings {
            errors: report.errors(),
            stage,
        });
    }
    Ok(())
}

/// `check FILE`: scans an existing tarball (the rules only) and returns the
/// report, or `None` when the checks are skipped.
pub fn check_tarball(
    tarball: &Path,
    settings: &CheckSettings,
    store_dir: &StoreDir,
    events: &mut dyn Events,
) -> Result<Option<ScanReport>, AppError> {
    let Some(mut scanner) = scanner(settings, store_dir, None, false, events)? else {
        return Ok(None);
    };
    scan_archive_file(tarball, &mut scanner)?;
    let report = scanner.finish();
    judge(&report, FindingsStage::Check, events)?;
    Ok(Some(report))
}
