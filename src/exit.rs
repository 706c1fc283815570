//! How a run ends: the exit statuses (see `cli::EXIT_STATUS`) and the
//! error messages, with the flag that carried a bad value added to the
//! library's domain errors.

use anyhow::anyhow;

use wsl_tarball::app::{AppError, SignError};
use wsl_tarball::compress::CompressError;
use wsl_tarball::plan::PlanError;

/// A check that ran and said no (exit status 1): verification failed, the
/// tarballs differ. Its report is already printed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unsuccessful(pub &'static str);

/// Trouble (exit status 2): bad usage, or for the reading commands an input
/// that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("{0:#}")]
pub struct Trouble(pub anyhow::Error);

/// Error-severity security findings stopped the run (exit status 3).
pub fn findings(error: &anyhow::Error) -> bool {
    let inner = error.downcast_ref::<Trouble>().map_or(error, |t| &t.0);
    matches!(
        inner.downcast_ref::<AppError>(),
        Some(AppError::Findings { .. })
    )
}

/// Every error of a reading command is trouble, but a check that said no.
pub fn trouble(error: anyhow::Error) -> anyhow::Error {
    if error.is::<Unsuccessful>() || error.is::<Trouble>() || findings(&error) {
        error
    } else {
        Trouble(error).into()
    }
}

/// The library's error with the flag that carried the value; bad usage is
/// trouble (exit status 2).
pub fn with_flags(error: AppError) -> anyhow::Error {
    let usage = error.is_usage();
    let error = match error {
        AppError::Threads { threads, source } => {
            anyhow!(source).context(format!("--threads {threads}"))
        }
        AppError::CompressOptions(
            source @ (CompressError::LevelOutOfRange { level, .. }
            | CompressError::LevelNotAccepted { level, .. }),
        ) => anyhow!(source).context(format!("--level {level}")),
        AppError::InvalidSystem { system, source } => {
            anyhow!(source).context(format!("--system {system}"))
        }
        AppError::NotNixosToplevel { system } => anyhow!(
            "--system {system} is not a NixOS toplevel (it lacks init, etc or sw), so it gets no WSL skeleton and cannot boot: give --facts, or --no-skeleton for a bare store tarball"
        ),
        AppError::NoSystem => anyhow!("give --system or --facts"),
        AppError::Plan(PlanError::OwnerWithoutFacts { file, kind, name }) => anyhow!(
            "NixOS skeleton: {file} names {kind} \"{name}\", but without --facts the skeleton knows only root. Give the module's facts: \
             `nix build .#nixosConfigurations.HOST.config.system.build.wslTarballFacts`, then --facts result \
             (or let `wsl-tarball build HOST` do both)"
        ),
        AppError::SignKeyWithoutManifest => anyhow!(
            "--sign-key needs --manifest FILE: the signature is recorded in the manifest"
        ),
        AppError::ModuleSignKeyWithoutManifest { key } => anyhow!(
            "the host's wsl.tarball.signing.keyFile ({key}) asks for a signature, which is recorded in the manifest: give --manifest FILE"
        ),
        AppError::Sign(SignError::KeyInExtraFiles { key, tree }) => anyhow!(
            "--sign-key {} is inside --extra-files {}: it would be copied into the tarball",
            key.display(),
            tree.display()
        ),
        AppError::Sign(SignError::KeyInStore { key, store }) => anyhow!(
            "--sign-key {} is in the Nix store ({}), readable by every user: keep secret keys outside the store",
            key.display(),
            store.display()
        ),
        AppError::Sign(error @ SignError::SbomNotBeside { .. }) => {
            anyhow!("{error}; when it is elsewhere or renamed, --sbom FILE names it")
        }
        AppError::Sign(error @ SignError::NoSbomRecorded { .. }) => anyhow!("--sbom: {error}"),
        AppError::MtimeTooLarge(_) => anyhow!("--mtime is too large"),
        AppError::BundleSettings => anyhow!("--delta-from writes an update bundle of store paths: --extra-files, --chown, --manifest, --sbom, --cache, --cache-limit and --cache-check-contents do not apply to it"),
        error => error.into(),
    };
    if usage {
        Trouble(error).into()
    } else {
        error
    }
}

/// The error and its causes joined by ": ", leaving out a cause whose text
/// the message already holds (the library's errors name their cause).
pub fn error_message(error: &anyhow::Error) -> String {
    let error = error.downcast_ref::<Trouble>().map_or(error, |t| &t.0);
    let mut message = error.to_string();
    for cause in error.chain().skip(1) {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
    }
    message
}
