//! `wsl-tarball apply BUNDLE`: what the bundle's `apply` script does, with
//! everything `verify` checks checked first, on the very bytes Nix imports.
//!
//! 1. The bundle is opened once and its manifest parsed (every store path
//!    and hash checked). The system profile must lead to the bundle's old
//!    system (or already to the new one: then nothing is done).
//! 2. The rest of the bundle is read once: the `apply` script, layout, every
//!    NAR against the manifest, the export's SHA-256, dependency order and
//!    closedness ([`check_bundle`], as `verify` does), while the export
//!    stream is copied into an unnamed temporary file only this process
//!    holds. A FIFO, or a file renamed or rewritten meanwhile, cannot hand
//!    Nix other bytes than the ones checked.
//! 3. Every path the bundle needs from the old system must be valid in the
//!    local store; then the copy is piped into `nix-store --import`, and
//!    each path's NAR hash is asked back from the store. If either fails,
//!    the paths the import added are deleted again and any directory or
//!    `.lock` file of a shipped path that was not in the store directory
//!    before is removed: the store is as it was.
//! 4. `nix-env -p PROFILE --set NEW`, then `NEW/bin/switch-to-configuration
//!    boot` (or `switch`); if activation fails the profile is rolled back.
//!
//! Before all that, the manifest's signature is checked against the keys
//! Nix itself trusts for substitutes (`trusted-public-keys`, from
//! `nix show-config`, or with `root` from ROOT/etc/nix/nix.conf): a bundle
//! not signed by one of them is refused unless `allow_unsigned`, and then
//! the outcome says what was skipped.
//!
//! Every Nix command gets `--` before the store paths. With `root` (made
//! absolute first), Nix works on `local?root=ROOT` and its profile, and the
//! activation is only printed (`dry_activate` is required).

use std::collections::BTreeSet;
use std::io::{BufWriter, Read, Seek};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::manifest::{absolute, BundleManifest, STORE_DIR};
use super::read::{check_bundle, open_bundle, OpenBundle};
use super::{ApplyError, BundleError};
use crate::sign::{check_signatures, Domain, PublicKey};
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
    /// Apply a bundle whose signature is missing, unknown or bad.
    pub allow_unsigned: bool,
}

/// How the bundle's signature went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureOutcome {
    /// Signed by this trusted key.
    Trusted {
        /// The trusted key's name (`cache.example.org-1`, say).
        key: String,
    },
    /// Not satisfied, and applied anyway (`allow_unsigned`): why.
    Skipped {
        /// Why the signature did not satisfy: missing, by an unknown key, or bad.
        why: String,
    },
}

/// What `apply` did, for the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyOutcome {
    /// The system profile the bundle moved (`/nix/var/nix/profiles/system`, under the root if given).
    pub profile: PathBuf,
    /// The system the profile pointed to before, as an absolute store path.
    pub old_system: String,
    /// The system it points to now, as an absolute store path.
    pub new_system: String,
    /// Paths imported and checked; 0 when the profile was already there.
    pub imported: usize,
    /// Whether the profile already pointed to the new system, so nothing was imported.
    pub already_applied: bool,
    /// The activation command line.
    pub activation: Vec<String>,
    /// Whether it ran (not with `dry_activate`).
    pub activated: bool,
    /// How the bundle's signature went.
    pub signature: SignatureOutcome,
}

impl ApplyOptions {
    /// The options with `root` made absolute, and refused when Nix could
    /// not take it as `local?root=ROOT`.
    fn resolved(&self) -> Result<ApplyOptions, ApplyError> {
        let Some(root) = &self.root else {
            return Ok(self.clone());
        };
        let bad_root = |why: &'static str| ApplyError::BadRoot {
            root: root.clone(),
            why,
        };
        let absolute =
            std::path::absolute(root).map_err(|_| bad_root("cannot make it absolute"))?;
        let text = absolute
            .to_str()
            .ok_or_else(|| bad_root("it is not UTF-8"))?;
        if text.contains(['?', '&', '#', '%']) {
            return Err(bad_root(
                "a directory whose name holds ? & # or % cannot be a Nix store URI",
            ));
        }
        Ok(ApplyOptions {
            root: Some(absolute),
            ..self.clone()
        })
    }

    fn store_args(&self) -> Vec<String> {
        match &self.root {
            Some(root) => vec!["--store".into(), format!("local?root={}", root.display())],
            None => Vec::new(),
        }
    }

    fn profile(&self) -> PathBuf {
        self.under_root(PROFILE)
    }

    /// The store directory as this process sees it.
    fn store_dir(&self) -> PathBuf {
        self.under_root(STORE_DIR.relative())
    }

    fn under_root(&self, path: &str) -> PathBuf {
        match &self.root {
            Some(root) => root.join(path),
            None => Path::new("/").join(path),
        }
    }
}

/// Adds "nothing was changed" to an error from before any change.
fn unchanged(error: BundleError) -> BundleError {
    match error {
        BundleError::BadManifest { path, message } => BundleError::BadManifest {
            path,
            message: format!("{message}; nothing was changed"),
        },
        BundleError::NotABundle { path, message } => BundleError::NotABundle {
            path,
            message: format!("{message}; nothing was changed"),
        },
        error => error,
    }
}

/// Applies `bundle`; see the module docs.
pub fn apply(bundle: &Path, options: &ApplyOptions) -> Result<ApplyOutcome, ApplyError> {
    if options.root.is_some() && !options.dry_activate {
        return Err(ApplyError::RootWithoutDryActivate);
    }
    let options = &options.resolved()?;
    let open = open_bundle(bundle).map_err(unchanged)?;
    let signature = check_signature(bundle, &open, options)?;
    let manifest = open.manifest.clone();
    let new_system = manifest.new_system_path();
    let profile = options.profile();
    let current = current_system(&profile, options.root.as_deref());
    let action = if options.switch { "switch" } else { "boot" };
    let activation = vec![
        format!("{new_system}/bin/switch-to-configuration"),
        action.to_owned(),
    ];
    let mut outcome = ApplyOutcome {
        profile: profile.clone(),
        old_system: current.clone().unwrap_or_else(|| "(none)".into()),
        new_system: new_system.clone(),
        imported: 0,
        already_applied: false,
        activation,
        activated: false,
        signature,
    };
    if current.as_deref() == Some(new_system.as_str()) {
        outcome.already_applied = true;
        return Ok(outcome);
    }
    if let Some(expected) = manifest.old_system_path() {
        if current.as_deref() != Some(expected.as_str()) {
            return Err(ApplyError::WrongSystem {
                expected,
                found: outcome.old_system,
                profile: profile.display().to_string(),
            });
        }
    }
    let export = checked_copy(bundle, open)?;
    check_required(&manifest, options)?;
    import(&manifest, export, options)?;
    outcome.imported = manifest.paths.len();

    let mut set = vec!["-p".to_owned(), profile.display().to_string()];
    set.extend(["--set".to_owned(), "--".to_owned(), new_system]);
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
            return Err(ApplyError::Command {
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

/// The manifest's signature against the keys Nix trusts; an error unless
/// it is good or `allow_unsigned`.
fn check_signature(
    bundle: &Path,
    open: &OpenBundle,
    options: &ApplyOptions,
) -> Result<SignatureOutcome, ApplyError> {
    let (trusted, source_name) = match trusted_public_keys(options) {
        Ok(found) => found,
        Err(error) if options.allow_unsigned => {
            return Ok(SignatureOutcome::Skipped {
                why: error.to_string(),
            })
        }
        Err(error) => return Err(error),
    };
    match check_signatures(
        Domain::Bundle,
        &open.manifest_value,
        &open.manifest.signatures,
        &trusted,
    ) {
        Ok(key) => Ok(SignatureOutcome::Trusted { key }),
        Err(problem) if options.allow_unsigned => Ok(SignatureOutcome::Skipped {
            why: problem.to_string(),
        }),
        Err(problem) => Err(ApplyError::Unsigned {
            path: bundle.to_path_buf(),
            source_name,
            problem,
        }),
    }
}

/// The public keys Nix trusts, and where they were read: with `root`,
/// `trusted-public-keys` and `extra-trusted-public-keys` of
/// ROOT/etc/nix/nix.conf (none when it has none; `include` lines are not
/// followed); else from `nix show-config --json` (or `nix config show`).
fn trusted_public_keys(options: &ApplyOptions) -> Result<(Vec<PublicKey>, String), ApplyError> {
    let (words, name) = match &options.root {
        Some(root) => nix_conf_under(root)?,
        None => (
            running_nix_trusted_keys()?,
            "nix show-config's trusted-public-keys".to_owned(),
        ),
    };
    parse_keys(&words, &name).map(|keys| (keys, name))
}

/// The trusted keys ROOT/etc/nix/nix.conf lists (none when there is no
/// such file), and the file's name.
fn nix_conf_under(root: &Path) -> Result<(Vec<String>, String), ApplyError> {
    let bad = |message: String| ApplyError::TrustedKeys { message };
    let path = resolve_in_root(root, Path::new("etc/nix/nix.conf"))
        .ok_or_else(|| bad("etc/nix/nix.conf: too many symbolic links".into()))?;
    let name = path.display().to_string();
    let text = match crate::input::read_limited(&path, 1 << 20, "nix.conf") {
        Ok(bytes) => {
            String::from_utf8(bytes).map_err(|_| bad(format!("{name}: not UTF-8 text")))?
        }
        Err(crate::input::InputError::Read { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            String::new()
        }
        Err(error) => return Err(bad(error.to_string())),
    };
    Ok((nix_conf_trusted_keys(&text), name))
}

/// `trusted-public-keys` of the running Nix: `nix show-config --json`, or
/// `nix config show --json` where `show-config` is gone.
fn running_nix_trusted_keys() -> Result<Vec<String>, ApplyError> {
    let show_config = ["show-config", "--json"];
    let config_show = ["config", "show", "--json"];
    nix_config_trusted_keys(&show_config)
        .or_else(|error| nix_config_trusted_keys(&config_show).map_err(|_| error))
}

fn nix_config_trusted_keys(args: &[&str]) -> Result<Vec<String>, ApplyError> {
    let command = format!("nix {}", args.join(" "));
    let bad = |message: String| ApplyError::TrustedKeys { message };
    let output = Command::new("nix")
        .args(["--extra-experimental-features", "nix-command"])
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map_err(|e| bad(format!("cannot run `{command}`: {e}")))?;
    if !output.status.success() {
        return Err(bad(format!("`{command}` failed ({})", output.status)));
    }
    let config: serde_json::Value =
        serde_json::from_slice(&output.stdout).map_err(|e| bad(format!("`{command}`: {e}")))?;
    let values = config["trusted-public-keys"]["value"]
        .as_array()
        .ok_or_else(|| bad(format!("`{command}` lists no trusted-public-keys")))?;
    values
        .iter()
        .map(|value| {
            value.as_str().map(str::to_owned).ok_or_else(|| {
                bad(format!(
                    "`{command}`: a trusted-public-keys value is not a string"
                ))
            })
        })
        .collect()
}

fn parse_keys(words: &[String], source_name: &str) -> Result<Vec<PublicKey>, ApplyError> {
    words
        .iter()
        .enumerate()
        .map(|(i, word)| {
            PublicKey::parse(word).map_err(|why| ApplyError::TrustedKeys {
                message: format!("{source_name}: key {}: {why}", i + 1),
            })
        })
        .collect()
}

/// `path` inside `root`, its symbolic links followed inside `root` (an
/// absolute target is taken from `root`, `..` stops at it), as the system
/// at `root` would see it; `None` after 40 links.
fn resolve_in_root(root: &Path, path: &Path) -> Option<PathBuf> {
    use std::path::Component;
    let mut pending: Vec<std::ffi::OsString> = path
        .components()
        .rev()
        .map(|c| c.as_os_str().to_owned())
        .collect();
    let mut current = root.to_path_buf();
    let mut links = 0;
    while let Some(name) = pending.pop() {
        match Path::new(&name).components().next() {
            Some(Component::ParentDir) if current != root => {
                current.pop();
            }
            Some(Component::Normal(name)) => {
                let next = current.join(name);
                match std::fs::symlink_metadata(&next) {
                    Ok(meta) if meta.file_type().is_symlink() => {
                        links += 1;
                        if links > 40 {
                            return None;
                        }
                        let target = std::fs::read_link(&next).ok()?;
                        if target.is_absolute() {
                            current = root.to_path_buf();
                        }
                        pending.extend(
                            target
                                .components()
                                .rev()
                                .filter(|c| !matches!(c, Component::RootDir))
                                .map(|c| c.as_os_str().to_owned()),
                        );
                    }
                    _ => current = next,
                }
            }
            _ => {}
        }
    }
    Some(current)
}

/// The keys a nix.conf's `trusted-public-keys` (the last one) and
/// `extra-trusted-public-keys` (all) lines list.
fn nix_conf_trusted_keys(text: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut extra = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or_default();
        let Some((name, value)) = line.split_once('=') else {
            continue;
        };
        let values = value.split_whitespace().map(str::to_owned);
        match name.trim() {
            "trusted-public-keys" | "binary-cache-public-keys" => keys = values.collect(),
            "extra-trusted-public-keys" | "extra-binary-cache-public-keys" => extra.extend(values),
            _ => {}
        }
    }
    keys.extend(extra);
    keys
}

/// Reads the rest of the bundle once, checking all `verify` checks, into
/// an unnamed temporary file holding the export stream: that file, at its
/// start, when every check passed.
pub(super) fn checked_copy(bundle: &Path, open: OpenBundle) -> Result<std::fs::File, BundleError> {
    let temporary = |source| BundleError::Copy {
        path: std::env::temp_dir(),
        source,
    };
    let file = tempfile::tempfile().map_err(temporary)?;
    let mut copy = BufWriter::with_capacity(1 << 20, file);
    let checks = check_bundle(open, &mut copy);
    if let Some((check, failure)) = checks
        .iter()
        .find_map(|c| c.failures.first().map(|f| (c.check, f)))
    {
        return Err(BundleError::DamagedBundle {
            path: bundle.to_path_buf(),
            message: format!("{check}: {failure}; nothing was changed"),
        });
    }
    let mut file = copy.into_inner().map_err(|e| temporary(e.into_error()))?;
    file.rewind().map_err(temporary)?;
    Ok(file)
}

/// The store path `profile` leads to; absolute link targets are inside `root`.
fn current_system(profile: &Path, root: Option<&Path>) -> Option<String> {
    let store_prefix = format!("{STORE_DIR}/");
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

/// Of `paths`, those the local store does not hold as valid.
fn invalid_paths(paths: &[String], options: &ApplyOptions) -> Result<Vec<String>, ApplyError> {
    if paths.is_empty() {
        return Ok(Vec::new());
    }
    let mut args = vec![
        "--check-validity".to_owned(),
        "--print-invalid".to_owned(),
        "--".to_owned(),
    ];
    args.extend(paths.iter().cloned());
    let output = run("nix-store", &options.store_args(), &args)?;
    Ok(output
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect())
}

/// Every path the bundle needs from the old system is valid locally.
fn check_required(manifest: &BundleManifest, options: &ApplyOptions) -> Result<(), ApplyError> {
    let required: Vec<String> = manifest.requires.iter().map(absolute).collect();
    let invalid = invalid_paths(&required, options)?;
    match invalid.first() {
        Some(first) => Err(ApplyError::MissingRequired {
            count: invalid.len(),
            first: first.clone(),
        }),
        None => Ok(()),
    }
}

/// Pipes the checked copy into `nix-store --import` and asks every path's
/// NAR hash back; on failure, leaves the store as it was before.
fn import(
    manifest: &BundleManifest,
    export: std::fs::File,
    options: &ApplyOptions,
) -> Result<(), ApplyError> {
    let shipped: Vec<String> = manifest.paths.iter().map(|p| p.absolute()).collect();
    let fresh = invalid_paths(&shipped, options)?;
    let entries_before = store_entries(options, manifest);
    let imported = run_import(export, options).and_then(|()| check_imported(manifest, options));
    if let Err(error) = imported {
        let error = Box::new(error);
        return Err(
            match undo_import(&fresh, &entries_before, manifest, options) {
                Ok(()) => ApplyError::ImportUndone { error },
                Err(undo) => ApplyError::ImportNotUndone {
                    error,
                    undo: Box::new(undo),
                },
            },
        );
    }
    Ok(())
}

/// The entries of the store directory that belong to the shipped paths
/// (`<path>` and `<path>.lock`) and exist now.
fn store_entries(options: &ApplyOptions, manifest: &BundleManifest) -> BTreeSet<String> {
    let store = options.store_dir();
    manifest
        .paths
        .iter()
        .flat_map(|p| {
            let basename = p.path.basename();
            [basename.to_owned(), format!("{basename}.lock")]
        })
        .filter(|name| std::fs::symlink_metadata(store.join(name)).is_ok())
        .collect()
}

/// Deletes the paths of `fresh` (shipped paths not valid before the
/// import) Nix now holds as valid, then removes what is left in the store
/// directory of a shipped path that was not there before (an unregistered
/// directory, a `.lock` file).
fn undo_import(
    fresh: &[String],
    before: &BTreeSet<String>,
    manifest: &BundleManifest,
    options: &ApplyOptions,
) -> Result<(), ApplyError> {
    let fresh: BTreeSet<&String> = fresh.iter().collect();
    let shipped: Vec<String> = manifest.paths.iter().map(|p| p.absolute()).collect();
    let still_invalid: BTreeSet<String> = invalid_paths(&shipped, options)?.into_iter().collect();
    let added: Vec<String> = shipped
        .iter()
        .filter(|p| fresh.contains(p) && !still_invalid.contains(*p))
        .cloned()
        .collect();
    if !added.is_empty() {
        let mut args = vec![
            "--delete".to_owned(),
            "--ignore-liveness".to_owned(),
            "--".to_owned(),
        ];
        args.extend(added);
        run("nix-store", &options.store_args(), &args)?;
    }
    let store = options.store_dir();
    for name in store_entries(options, manifest).difference(before) {
        let path = store.join(name);
        let removed = match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(&path),
            Ok(_) => std::fs::remove_file(&path),
            Err(_) => Ok(()),
        };
        removed.map_err(|source| ApplyError::Write { path, source })?;
    }
    Ok(())
}

/// `nix-store --import` reading the checked copy.
fn run_import(export: std::fs::File, options: &ApplyOptions) -> Result<(), ApplyError> {
    let mut args = options.store_args();
    args.push("--import".into());
    let command = format!("nix-store {}", args.join(" "));
    let mut child = Command::new("nix-store")
        .args(&args)
        .stdin(Stdio::from(export))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| ApplyError::Spawn {
            command: command.clone(),
            source,
        })?;
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        pipe.read_to_string(&mut stderr).ok();
    }
    let status = child.wait().map_err(|source| ApplyError::Spawn {
        command: command.clone(),
        source,
    })?;
    if !status.success() {
        return Err(ApplyError::Command {
            command,
            status: status.to_string(),
            detail: format!(": {}", stderr.trim()),
        });
    }
    Ok(())
}

/// Asks the store for each imported path's NAR hash.
fn check_imported(manifest: &BundleManifest, options: &ApplyOptions) -> Result<(), ApplyError> {
    for path in &manifest.paths {
        let args = vec![
            "-q".to_owned(),
            "--hash".to_owned(),
            "--".to_owned(),
            path.absolute(),
        ];
        let output = run("nix-store", &options.store_args(), &args)?;
        if NarHash::parse(output.trim()).ok() != Some(path.nar_hash) {
            return Err(ApplyError::ImportedHash {
                path: path.absolute(),
                expected: path.nar_hash.to_sri(),
                actual: output.trim().to_owned(),
            });
        }
    }
    Ok(())
}

/// Runs a Nix command, returning its stdout; its stderr goes into the error.
fn run(program: &str, store_args: &[String], args: &[String]) -> Result<String, ApplyError> {
    let command = std::iter::once(program)
        .chain(store_args.iter().chain(args).map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ");
    let output = Command::new(program)
        .args(store_args)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| ApplyError::Spawn {
            command: command.clone(),
            source,
        })?;
    if !output.status.success() {
        return Err(ApplyError::Command {
            command,
            status: output.status.to_string(),
            detail: format!(": {}", String::from_utf8_lossy(&output.stderr).trim()),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nix_conf_lists_the_last_trusted_keys_and_every_extra_one() {
        let text = "trusted-public-keys = a:1 b:2\n# trusted-public-keys = x:0\n\
                    extra-trusted-public-keys = c:3 # comment\ntrusted-public-keys = d:4\n";
        assert_eq!(nix_conf_trusted_keys(text), ["d:4", "c:3"]);
    }

    #[test]
    fn links_inside_a_root_stay_inside_it() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("etc/static/nix")).unwrap();
        std::fs::write(root.join("etc/static/nix/nix.conf"), "inside").unwrap();
        std::os::unix::fs::symlink("/etc/static/nix", root.join("etc/nix")).unwrap();
        let found = resolve_in_root(&root, Path::new("etc/nix/nix.conf")).unwrap();
        assert_eq!(found, root.join("etc/static/nix/nix.conf"));
        std::os::unix::fs::symlink("../../../../../loop", root.join("loop")).unwrap();
        assert_eq!(
            resolve_in_root(&root, Path::new("loop")),
            None,
            "a link to itself (.. stops at the root) ends"
        );
    }
}
