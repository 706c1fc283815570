//! How a run that failed ends: its exit status (the library's
//! [`ExitStatus`], documented in `cli::EXIT_STATUS`) and its message, with
//! the flag that carried a bad value added to the library's domain errors.

use anyhow::anyhow;

use wsl_tarball::app::{AppError, ExitStatus, ReadingError, SignError};
use wsl_tarball::compress::CompressError;
use wsl_tarball::delta;
use wsl_tarball::escape::Escaped;
use wsl_tarball::plan::PlanError;

/// A command that did not succeed: the message and the exit status.
#[derive(Debug)]
pub struct Failure {
    pub status: ExitStatus,
    pub error: anyhow::Error,
}

impl Failure {
    /// Trouble (exit status 2): bad usage the command line found, or a
    /// reading command's report that cannot be printed.
    pub fn trouble(error: anyhow::Error) -> Self {
        Failure {
            status: ExitStatus::Trouble,
            error,
        }
    }

    /// The message on stderr: findings with the way to accept deliberate
    /// ones (`page` documents the command's --allow), else the error.
    pub fn report(&self, page: &str) {
        if self.status == ExitStatus::Findings {
            let message = format!("{:#}", self.error);
            eprintln!(
                "wsl-tarball: {}; accept deliberate ones with --allow (see `man {page}`)",
                Escaped(&message)
            );
        } else {
            eprintln!(
                "wsl-tarball: error: {}",
                Escaped(&error_message(&self.error))
            );
        }
    }
}

/// A writing command's failure, with the flags added.
impl From<AppError> for Failure {
    fn from(error: AppError) -> Self {
        Failure {
            status: error.status(),
            error: with_flags(error),
        }
    }
}

/// A reading command's failure, with the flags added.
impl From<ReadingError> for Failure {
    fn from(error: ReadingError) -> Self {
        Failure {
            status: error.status(),
            error: with_flags(error.0),
        }
    }
}

/// The command line's own failures (printing the output): exit status 1.
impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Failure {
            status: ExitStatus::Failure,
            error,
        }
    }
}

/// The library's error with the flag that carried the value.
fn with_flags(error: AppError) -> anyhow::Error {
    match error {
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
        AppError::MtimeTooLarge(_) => anyhow!("--mtime is too large"),
        AppError::BundleSettings => anyhow!("--delta-from writes an update bundle of store paths: --extra-files, --chown, --manifest, --sbom, --cache, --cache-limit and --cache-check-contents do not apply to it"),
        AppError::TrustedKey(source) => anyhow!(source).context("--trusted-key"),
        AppError::ManifestForBundle => {
            anyhow!("--manifest: an update bundle holds its own manifest")
        }
        AppError::TrustedKeysWithoutManifest => anyhow!(
            "--trusted-key needs --manifest FILE for a tarball: its signature is in the manifest `write --manifest` wrote"
        ),
        error => error.into(),
    }
}

/// The error and its causes joined by ": ", leaving out a cause whose text
/// the message already holds (the library's errors name their cause).
fn error_message(error: &anyhow::Error) -> String {
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

/// `apply`'s failure (exit status 1), with the flag that lets an unsigned
/// bundle through where the signature is what failed.
pub fn apply_failure(error: delta::DeltaError) -> Failure {
    let error = match error {
        delta::DeltaError::Unsigned { .. } => anyhow!(
            "{error}. Sign it with a trusted key (`wsl-tarball sign`), or pass --allow-unsigned to apply it unchecked"
        ),
        delta::DeltaError::TrustedKeys { .. } => anyhow!(
            "{error}; nothing was changed (--allow-unsigned applies the bundle without its signature checked)"
        ),
        error => error.into(),
    };
    Failure {
        status: ExitStatus::Failure,
        error,
    }
}

/// `sign`'s failure: `sign` names its key --key, not --sign-key.
pub fn sign_failure(error: AppError) -> Failure {
    match error {
        AppError::Sign(SignError::KeyInStore { .. }) => Failure::trouble(anyhow!("--key: {error}")),
        error => error.into(),
    }
}
