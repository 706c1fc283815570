//! `wsl-tarball apply BUNDLE`: what the bundle's `apply` script does, with
//! every NAR checked before Nix sees it.
//!
//! 1. The system profile must lead to the bundle's old system (or already
//!    to the new one: then nothing is done), and every path the bundle
//!    needs from the old system must be valid in the local store.
//! 2. The export stream is read once and every NAR hashed against the
//!    manifest, then piped into `nix-store --import`, and each path's NAR
//!    hash is asked back from the store.
//! 3. `nix-env -p PROFILE --set NEW`, then `NEW/bin/switch-to-configuration
//!    boot` (or `switch`); if activation fails the profile is rolled back.
//!
//! Nothing changes before every path is imported and checked. With `root`,
//! Nix works on `local?root=ROOT` and its profile, and the activation is
//! only printed (`dry_activate` is required).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::bundle::{BundleManifest, EXPORT_MEMBER};
use super::export::check_export;
use super::read::{open_bundle, OpenBundle};
use super::DeltaError;
use crate::hex;
use crate::store::NarHash;

/// Where the system profile is inside a root.
const PROFILE: &str = "nix/var/nix/profiles/system";

/// How to apply.
#[derive(Debug, Clone, Default)]
pub struct ApplyOptions {
    /// Work on the NixOS root at this directory instead of `/`.
    pub root: Option<PathBuf>,
    /// `switch-to-configuration switch` instead of `boot`.
    pub switch: bool,
    /// Print the activation command instead of running it.
    pub dry_activate: bool,
}

/// What `apply` did, for the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyOutcome {
    pub profile: PathBuf,
    pub old_system: String,
    pub new_system: String,
    /// Paths imported and checked; 0 when the profile was already there.
    pub imported: usize,
    pub already_applied: bool,
    /// The activation command line.
    pub activation: Vec<String>,
    /// Whether it ran (not with `dry_activate`).
    pub activated: bool,
}

impl ApplyOptions {
    fn store_args(&self) -> Vec<String> {
        match &self.root {
            Some(root) => vec!["--store".into(), format!("local?root={}", root.display())],
            None => Vec::new(),
        }
    }

    fn profile(&self) -> PathBuf {
        match &self.root {
            Some(root) => root.join(PROFILE),
            None => Path::new("/").join(PROFILE),
        }
    }
}

/// Applies `bundle`; see the module docs.
pub fn apply(bundle: &Path, options: &ApplyOptions) -> Result<ApplyOutcome, DeltaError> {
    if options.root.is_some() && !options.dry_activate {
        return Err(DeltaError::Usage {
            message: "--root needs --dry-activate: the new system cannot be activated inside another root",
        });
    }
    let OpenBundle { manifest, .. } = open_bundle(bundle)?;
    let profile = options.profile();
    let current = current_system(&profile, options.root.as_deref(), &manifest.store_dir);
    let action = if options.switch { "switch" } else { "boot" };
    let activation = vec![
        format!("{}/bin/switch-to-configuration", manifest.new_system),
        action.to_owned(),
    ];
    let mut outcome = ApplyOutcome {
        profile: profile.clone(),
        old_system: current.clone().unwrap_or_else(|| "(none)".into()),
        new_system: manifest.new_system.clone(),
        imported: 0,
        already_applied: false,
        activation,
        activated: false,
    };
    if current.as_deref() == Some(manifest.new_system.as_str()) {
        outcome.already_applied = true;
        return Ok(outcome);
    }
    if let Some(expected) = &manifest.old_system {
        if current.as_deref() != Some(expected.as_str()) {
            return Err(DeltaError::WrongSystem {
                expected: expected.clone(),
                found: outcome.old_system,
                profile: profile.display().to_string(),
            });
        }
    }
    check_required(&manifest, options)?;
    check_bundle(bundle, &manifest)?;
    import(bundle, options)?;
    check_imported(&manifest, options)?;
    outcome.imported = manifest.paths.len();

    let mut set = vec!["-p".to_owned(), profile.display().to_string()];
    set.extend(["--set".to_owned(), manifest.new_system.clone()]);
    run("nix-env", &options.store_args(), &set)?;
    if !options.dry_activate {
        let status = Command::new(&outcome.activation[0])
            .arg(&outcome.activation[1])
            .status();
        if !status.as_ref().is_ok_and(|s| s.success()) {
            let rollback = vec![
                "-p".to_owned(),
                profile.display().to_string(),
                "--rollback".to_owned(),
            ];
            let rolled_back = run("nix-env", &options.store_args(), &rollback).is_ok();
            return Err(DeltaError::Command {
                command: outcome.activation.join(" "),
                status: match status {
                    Ok(status) => status.to_string(),
                    Err(e) => e.to_string(),
                },
                detail: if rolled_back {
                    format!(
                        "; the system profile was rolled back to {}",
                        outcome.old_system
                    )
                } else {
                    format!(
                        "; rolling the system profile back failed too: run nix-env -p {} --rollback",
                        profile.display()
                    )
                },
            });
        }
        outcome.activated = true;
    }
    Ok(outcome)
}

/// The store path `profile` leads to; absolute link targets are inside `root`.
fn current_system(profile: &Path, root: Option<&Path>, store_dir: &str) -> Option<String> {
    let store_prefix = format!("{}/", store_dir.trim_end_matches('/'));
    let mut link = profile.to_path_buf();
    for _ in 0..16 {
        let target = std::fs::read_link(&link).ok()?;
        let text = target.to_str()?;
        if let Some(rest) = text.strip_prefix(&store_prefix) {
            return Some(format!("{store_prefix}{}", rest.split('/').next()?));
        }
        link = if target.is_absolute() {
            match root {
                Some(root) => root.join(target.strip_prefix("/").ok()?),
                None => target,
            }
        } else {
            link.parent()?.join(target)
        };
    }
    None
}

/// Every path the bundle needs from the old system is valid locally.
fn check_required(manifest: &BundleManifest, options: &ApplyOptions) -> Result<(), DeltaError> {
    if manifest.requires.is_empty() {
        return Ok(());
    }
    let mut args = vec!["--check-validity".to_owned(), "--print-invalid".to_owned()];
    args.extend(manifest.requires.iter().cloned());
    let output = run("nix-store", &options.store_args(), &args)?;
    let invalid: Vec<&str> = output.lines().filter(|l| !l.is_empty()).collect();
    match invalid.first() {
        Some(first) => Err(DeltaError::MissingRequired {
            count: invalid.len(),
            first: (*first).to_owned(),
        }),
        None => Ok(()),
    }
}

/// Reads the whole export stream once and checks it against the manifest.
fn check_bundle(bundle: &Path, manifest: &BundleManifest) -> Result<(), DeltaError> {
    let damaged = |message: String| DeltaError::DamagedBundle {
        path: bundle.to_path_buf(),
        message: format!("{message}; nothing was changed"),
    };
    let OpenBundle { mut reader, .. } = open_bundle(bundle)?;
    while let Some(member) = reader.next_member().map_err(|e| damaged(e.to_string()))? {
        if member.path != EXPORT_MEMBER.as_bytes() {
            continue;
        }
        let (failures, digest) = check_export(reader.content(), &manifest.paths);
        if let Some(first) = failures.first() {
            return Err(damaged(first.clone()));
        }
        return match digest {
            Some((sha256, _)) if hex::encode(&sha256) == manifest.export.sha256 => Ok(()),
            _ => Err(damaged(format!(
                "{EXPORT_MEMBER} does not have the sha256 the manifest says"
            ))),
        };
    }
    Err(damaged(format!("no {EXPORT_MEMBER}")))
}

/// Pipes the export stream into `nix-store --import`.
fn import(bundle: &Path, options: &ApplyOptions) -> Result<(), DeltaError> {
    let mut args = options.store_args();
    args.push("--import".into());
    let command = format!("nix-store {}", args.join(" "));
    let mut child = Command::new("nix-store")
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| DeltaError::Spawn {
            command: command.clone(),
            source,
        })?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let copied = (|| -> Result<(), String> {
        let OpenBundle { mut reader, .. } = open_bundle(bundle).map_err(|e| e.to_string())?;
        while let Some(member) = reader.next_member().map_err(|e| e.to_string())? {
            if member.path == EXPORT_MEMBER.as_bytes() {
                std::io::copy(&mut reader.content(), &mut stdin).map_err(|e| e.to_string())?;
                break;
            }
        }
        Ok(())
    })();
    drop(stdin);
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        pipe.read_to_string(&mut stderr).ok();
    }
    let status = child.wait().map_err(|source| DeltaError::Spawn {
        command: command.clone(),
        source,
    })?;
    if !status.success() || copied.is_err() {
        return Err(DeltaError::Command {
            command,
            status: status.to_string(),
            detail: format!(
                ": {}{}; the system profile was not changed",
                stderr.trim(),
                copied.err().map(|e| format!(" ({e})")).unwrap_or_default()
            ),
        });
    }
    Ok(())
}

/// Asks the store for each imported path's NAR hash.
fn check_imported(manifest: &BundleManifest, options: &ApplyOptions) -> Result<(), DeltaError> {
    for path in &manifest.paths {
        let args = vec!["-q".to_owned(), "--hash".to_owned(), path.path.clone()];
        let output = run("nix-store", &options.store_args(), &args)?;
        let actual = NarHash::parse(output.trim()).ok();
        if actual != NarHash::parse(&path.nar_hash).ok() {
            return Err(DeltaError::ImportedHash {
                path: path.path.clone(),
                expected: path.nar_hash.clone(),
                actual: output.trim().to_owned(),
            });
        }
    }
    Ok(())
}

/// Runs a Nix command, returning its stdout; its stderr goes into the error.
fn run(program: &str, store_args: &[String], args: &[String]) -> Result<String, DeltaError> {
    let command = std::iter::once(program)
        .chain(store_args.iter().chain(args).map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ");
    let output = Command::new(program)
        .args(store_args)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| DeltaError::Spawn {
            command: command.clone(),
            source,
        })?;
    if !output.status.success() {
        return Err(DeltaError::Command {
            command,
            status: output.status.to_string(),
            detail: format!(": {}", String::from_utf8_lossy(&output.stderr).trim()),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}
