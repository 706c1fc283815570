//! The flags behind the library's errors. The library says what is wrong
//! in its own words ("extra files DIR", "owner override /etc 1000:100",
//! "the cache"); the command line tells it with the flag the user typed
//! (`--extra-files DIR`, `--chown /etc 1000:100`, `--cache`), and how to
//! pass one that fixes it.

use anyhow::anyhow;

use wsl_tarball::app::{
    AppError, CacheError, ChownRuleError, Conflict, EntryOrigin, ExitStatus, NotStdout,
    OverlapError, PlanError, Role, SignError, WriteError, STREAM_ABANDONED,
};
use wsl_tarball::compress::CompressError;
use wsl_tarball::delta::{ApplyError, InventoryError};

use crate::exit::Failure;

/// The library's error with the flag that carried the value.
pub fn with_flags(error: AppError) -> anyhow::Error {
    if let Some(text) = flagged(&error) {
        return anyhow!(text);
    }
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
        error => error.into(),
    }
}

/// The message of an error a flag's value caused, told with the flag.
fn flagged(error: &AppError) -> Option<String> {
    Some(match error {
        AppError::NotNixosToplevel { system } => format!(
            "--system {system} is not a NixOS toplevel (it lacks init, etc or sw), so it gets no WSL skeleton and cannot boot: give --facts, or --no-skeleton for a bare store tarball"
        ),
        AppError::NoSystem => "give --system or --facts".to_owned(),
        AppError::Plan(PlanError::OwnerWithoutFacts { file, kind, name }) => format!(
            "NixOS skeleton: {file} names {kind} \"{name}\", but without --facts the skeleton knows only root. Give the module's facts: \
             `nix build .#nixosConfigurations.HOST.config.system.build.wslTarballFacts`, then --facts result \
             (or let `wsl-tarball build HOST` do both)"
        ),
        AppError::Plan(plan) | AppError::Write(WriteError::Plan(plan)) => plan_message(plan)?,
        AppError::Chown(rule) => chown_message(rule),
        AppError::Overlap(overlap) => overlap_message(overlap, flag),
        AppError::Write(WriteError::OverrideRejected { paths, failures }) => format!(
            "--allow-override {}: with these replacements the tarball fails verify, so it was not written: {}",
            paths.join(", "),
            failures.join("; ")
        ),
        AppError::Cache(cache) => cache_message(cache)?,
        AppError::CacheLimitWithoutCache => {
            "--cache-limit applies to a cache, and `write` has none unless --cache DIR is given"
                .to_owned()
        }
        AppError::CacheCheckWithoutCache => "--cache-check-contents applies to a cache, and `write` has none unless --cache DIR is given".to_owned(),
        AppError::SignKeyWithoutManifest => {
            "--sign-key needs --manifest FILE: the signature is recorded in the manifest"
                .to_owned()
        }
        AppError::ModuleSignKeyWithoutManifest { key } => format!(
            "the host's wsl.tarball.signing.keyFile ({key}) asks for a signature, which is recorded in the manifest: give --manifest FILE"
        ),
        AppError::Sign(SignError::KeyInExtraFiles { key, tree }) => format!(
            "--sign-key {} is inside --extra-files {}: it would be copied into the tarball",
            key.display(),
            tree.display()
        ),
        AppError::Sign(SignError::KeyInStore { key, store }) => format!(
            "--sign-key {} is in the Nix store ({}), readable by every user: keep secret keys outside the store",
            key.display(),
            store.display()
        ),
        AppError::Sign(error @ SignError::SbomNotBeside { .. }) => {
            format!("{error}; when it is elsewhere or renamed, --sbom FILE names it")
        }
        AppError::Sign(error @ SignError::NoSbomRecorded { .. }) => format!("--sbom: {error}"),
        AppError::MtimeTooLarge(_) => "--mtime is too large".to_owned(),
        AppError::BundleSettings => "--delta-from writes an update bundle of store paths: --extra-files, --chown, --manifest, --sbom, --cache, --cache-limit and --cache-check-contents do not apply to it".to_owned(),
        AppError::NotToStdout { file, path } => {
            let flag = match file {
                NotStdout::Manifest => "--manifest",
                NotStdout::Bundle => "-o",
            };
            format!(
                "{flag} {}: that is standard output, and {}; give a file name",
                path.display(),
                file.why()
            )
        }
        AppError::OverrideToStream => "--allow-override: replaced files are verified in the complete tarball before it is committed, which a stream to standard output cannot wait for; give -o FILE".to_owned(),
        AppError::SuffixContradicts {
            output,
            compression,
            suffix,
        } => format!(
            "--compression {compression} contradicts -o {}, whose suffix names {suffix}: leave out --compression to write {suffix}, or name the file for {compression}",
            output.display()
        ),
        AppError::UnsupportedSuffix { output, compression } => format!(
            "-o {}: its suffix names {compression}, which wsl-tarball does not write; name it .tar.gz or .wsl (gzip), .tar.xz (xz), .tar.zst (zstd) or .tar (none)",
            output.display()
        ),
        AppError::Inventory(InventoryError::NotASystem { path, message }) => format!(
            "{}: not a tarball, a `--manifest` JSON or a closure file: {message}",
            path.display()
        ),
        AppError::ManifestForBundle => {
            "--manifest: an update bundle holds its own manifest".to_owned()
        }
        AppError::TrustedKeysWithoutManifest => "--trusted-key needs --manifest FILE for a tarball: its signature is in the manifest `write --manifest` wrote".to_owned(),
        AppError::StreamAbandoned(inner) => {
            let inner = flagged(inner).unwrap_or_else(|| inner.to_string());
            format!("{inner}{STREAM_ABANDONED}")
        }
        _ => return None,
    })
}

/// The flag that names a file in that role (`write`, `build`, `check`,
/// `delta`).
fn flag(role: Role) -> &'static str {
    match role {
        Role::Output => "-o",
        Role::Manifest => "--manifest",
        Role::Sbom => "--sbom",
        Role::SigningKey => "--sign-key",
        Role::Closure => "--closure",
        Role::Facts => "--facts",
        Role::ExtraFiles => "--extra-files",
        Role::Image => "FILE",
    }
}

/// Two names for one file, or an output in an input tree, by their flags.
fn overlap_message(error: &OverlapError, flag: fn(Role) -> &'static str) -> String {
    match error {
        OverlapError::SameFile {
            first_role,
            first,
            second_role,
            second,
        } => format!(
            "{} {} and {} {} name the same file",
            flag(*first_role),
            first.display(),
            flag(*second_role),
            second.display()
        ),
        OverlapError::OutputIsInput {
            output_role,
            output,
            input_role,
            input,
        } => format!(
            "{} {} is the input {} {}; it would be overwritten",
            flag(*output_role),
            output.display(),
            flag(*input_role),
            input.display()
        ),
        OverlapError::InsideTree {
            output_role,
            output,
            tree_role,
            tree,
        } => format!(
            "{} {} is inside the {} directory {}; it would be copied into later tarballs",
            flag(*output_role),
            output.display(),
            flag(*tree_role),
            tree.display()
        ),
    }
}

/// `--chown PATH UID:GID`'s refusal.
fn chown_message(error: &ChownRuleError) -> String {
    format!("--chown {}", error.detail())
}

/// The plan's refusals of `--extra-files`, `--allow-override` and
/// `--chown`.
fn plan_message(error: &PlanError) -> Option<String> {
    Some(match error {
        PlanError::ExtraFiles { dir, source } => {
            format!("--extra-files {}: {source}", dir.display())
        }
        PlanError::ExtraFilesNotADirectory { dir } => format!(
            "--extra-files {}: not a directory; give the directory whose contents go to the rootfs root",
            dir.display()
        ),
        PlanError::ExtraFilesConflict {
            path,
            host,
            conflict,
        } => {
            let conflict = match conflict {
                Conflict::ToolFile { made_by, path } => format!(
                    "would replace what {} makes there; pass --allow-override /{path} if you mean it",
                    origin(made_by)
                ),
                conflict => conflict.to_string(),
            };
            format!("--extra-files: /{path} ({}) {conflict}", host.display())
        }
        PlanError::AllowOverride { path, why } => format!("--allow-override \"{path}\": {why}"),
        PlanError::BadRootfsPath { path, origin: made_by, why } => {
            format!("rootfs path \"{path}\" from {}: {why}", origin(made_by))
        }
        PlanError::Chown(rule) => chown_message(rule),
        _ => return None,
    })
}

/// What made a member, an extra file named by its flag.
fn origin(origin: &EntryOrigin) -> String {
    match origin {
        EntryOrigin::ExtraFile(host) => format!("--extra-files {}", host.display()),
        origin => origin.to_string(),
    }
}

/// `--cache DIR`'s refusals.
fn cache_message(error: &CacheError) -> Option<String> {
    Some(match error {
        CacheError::NotADirectory { dir } => {
            format!("--cache {} is not a directory", dir.display())
        }
        CacheError::NotGzip { compression } => format!(
            "--cache works with gzip only (each store path is its own gzip segment), not {compression}"
        ),
        _ => return None,
    })
}

/// `apply`'s failure (exit status 1), with the flag that lets an unsigned
/// bundle through where the signature is what failed.
pub fn apply_failure(error: ApplyError) -> Failure {
    let error = match error {
        ApplyError::Unsigned { .. } => anyhow!(
            "{error}. Sign it with a trusted key (`wsl-tarball sign`), or pass --allow-unsigned to apply it unchecked"
        ),
        ApplyError::TrustedKeys { .. } => anyhow!(
            "{error}; nothing was changed (--allow-unsigned applies the bundle without its signature checked)"
        ),
        ApplyError::BadRoot { root, why } => anyhow!("--root {}: {why}", root.display()),
        ApplyError::RootWithoutDryActivate => anyhow!(
            "--root needs --dry-activate: the new system cannot be activated inside another root"
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
        AppError::Overlap(overlap) => {
            let flag = |role| match role {
                Role::SigningKey => "--key",
                role => flag(role),
            };
            Failure::trouble(anyhow!(overlap_message(&overlap, flag)))
        }
        AppError::Sign(SignError::KeyInStore { .. }) => Failure::trouble(anyhow!("--key: {error}")),
        error => error.into(),
    }
}
