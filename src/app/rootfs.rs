//! `write` and `check --closure`: a closure and a system into a rootfs,
//! written (with its manifest) or only scanned.

use std::path::{Path, PathBuf};

use super::request::{CompressionRequest, ContentRequest, OutputRequest, Skeleton, SystemRequest};

use super::security::{judge, scanner};
use super::sign::read_signing_key;
use super::{default_threads, AppError, Event, Events, FindingsStage};
use crate::cache::{SegmentCache, DEFAULT_LIMIT_BYTES};
use crate::compress::{check_threads, CompressOptions, Compression};
use crate::input::{read_limited, MAX_CLOSURE_BYTES, MAX_FACTS_BYTES};
use sha2::{Digest, Sha256};

use crate::manifest::{
    manifest_store_paths, Manifest, ManifestSbom, ManifestScan, ManifestSettings, ManifestTarball,
    Tool, MANIFEST_VERSION,
};
use crate::output::AtomicOutput;
use crate::overlap::{Named, Role};
use crate::plan::{is_nixos_toplevel, NixDbMode, NixosFacts, Plan, PlanInputs};
use crate::progress::ProgressReport;
use crate::sbom::sbom_json;
use crate::store::{read_closure, Closure, StoreDir, StorePath};
use crate::write::{check_plan, write_tarball, WriteOptions, WriteSummary};

/// A written and committed rootfs.
#[derive(Debug)]
pub struct WriteOutcome {
    /// What the write did: its counts, sizes and time.
    pub summary: WriteSummary,
}

/// The facts and system of a request (reads the facts file).
fn system_and_facts(
    system: &SystemRequest,
    content: &ContentRequest,
) -> Result<(String, Option<NixosFacts>), AppError> {
    let facts = match &system.facts {
        Some(path) => {
            let bytes = read_limited(path, MAX_FACTS_BYTES, "a facts file")?;
            Some(NixosFacts::parse(&bytes, &path.display().to_string())?)
        }
        None => None,
    };
    let system_path = match (&system.system, &facts) {
        (Some(system), _) => follow_links_to_store(system, &content.store_dir),
        (None, Some(facts)) => facts.system.clone(),
        (None, None) => return Err(AppError::NoSystem),
    };
    let nixos = match (facts, system.skeleton) {
        (Some(facts), _) => Some(facts),
        (None, Skeleton::Nixos) => Some(NixosFacts::defaults(&system_path)),
        (None, Skeleton::None) => None,
        (None, Skeleton::Auto) => skeleton_by_default(&system_path, content)?,
    };
    let nixos = match (nixos, &system.icon) {
        (Some(mut facts), Some(icon)) => {
            facts.icon = Some(icon.clone());
            facts.icon_given = true;
            Some(facts)
        }
        (None, Some(icon)) => return Err(AppError::IconWithoutSkeleton(icon.clone())),
        (nixos, None) => nixos,
    };
    Ok((system_path, nixos))
}

/// Links followed until the path is in the store, as Nix follows them
/// (`followLinksToStore`): `result`, `./result/` or a chain of links to a
/// store path become the store path. Relative paths are taken from the
/// working directory and `.`, `..`, repeated and trailing slashes removed
/// as Nix's `absPath` does, without resolving the directories on the way.
/// A path already in the store is returned as it is (the store path's
/// parser judges it: a path below a store path is an error naming it); so
/// is one that leads nowhere in the store, for the parser to name.
pub(super) fn follow_links_to_store(path: &str, store_dir: &StoreDir) -> String {
    let in_store = |p: &str| {
        p.strip_prefix(store_dir.as_str())
            .is_some_and(|rest| rest.starts_with('/'))
    };
    if in_store(path) || path.is_empty() {
        return path.to_owned();
    }
    let Ok(cwd) = std::env::current_dir() else {
        return path.to_owned();
    };
    let mut current = lexically_absolute(&cwd, Path::new(path));
    // Linux gives up after 40 links; so does this.
    for _ in 0..40 {
        let Some(text) = current.to_str() else { break };
        if in_store(text) {
            return text.to_owned();
        }
        let Ok(target) = std::fs::read_link(&current) else {
            break;
        };
        let parent = current.parent().unwrap_or(Path::new("/")).to_path_buf();
        current = lexically_absolute(&parent, &target);
    }
    path.to_owned()
}

/// `path` taken from `base` when relative, with `.`, `..` and repeated or
/// trailing slashes removed (no link is resolved).
fn lexically_absolute(base: &Path, path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for component in base.join(path).components() {
        match component {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::Normal(name) => out.push(name),
            _ => {}
        }
    }
    out
}

/// Defaults for a NixOS toplevel; anything else must ask for no skeleton.
fn skeleton_by_default(
    system: &str,
    content: &ContentRequest,
) -> Result<Option<NixosFacts>, AppError> {
    let store_dir = &content.store_dir;
    // An invalid system is reported, with its reason, by the plan.
    let Ok(path) = StorePath::from_absolute(system, store_dir) else {
        return Ok(None);
    };
    if is_nixos_toplevel(&content.store_source().join(path.basename())) {
        return Ok(Some(NixosFacts::defaults(&path.to_absolute(store_dir))));
    }
    Err(AppError::NotNixosToplevel {
        system: system.to_owned(),
    })
}

/// The closure and plan of a run, and its scanner.
pub(super) struct Planned {
    pub closure: Closure,
    pub plan: Plan,
    pub scanner: Option<crate::scan::Scanner>,
}

/// Reads the closure (`closure_bytes` gives its bytes and name), plans the
/// rootfs and makes the scanner. Emits [`Event::ClosureRead`] first.
pub(super) fn plan_rootfs(
    content: &ContentRequest,
    closure_bytes: (Vec<u8>, String),
    system: &str,
    nixos: Option<&NixosFacts>,
    events: &mut dyn Events,
) -> Result<Planned, AppError> {
    let (bytes, source_name) = closure_bytes;
    let store_dir = &content.store_dir;
    let (closure, format) = read_closure(&bytes, &source_name, store_dir)?;
    events.event(Event::ClosureRead {
        source_name: &source_name,
        format: &format.to_string(),
    });
    let system_path =
        StorePath::from_absolute(system, store_dir).map_err(|source| AppError::InvalidSystem {
            system: system.to_owned(),
            source,
        })?;
    let chown = content.chown_rules()?;
    let registration_time =
        i64::try_from(content.mtime).map_err(|_| AppError::MtimeTooLarge(content.mtime))?;
    let scanner = scanner(&content.checks, store_dir, Some(&system_path), true, events)?;
    let plan = Plan::new(PlanInputs {
        closure: &closure,
        system: system_path,
        store_source: content.store_source(),
        nix_db: content.nix_db,
        registration_time,
        extra_files: content.extra_files.clone(),
        chown,
        allow_override: content.allow_override.clone(),
        nixos: nixos.map(NixosFacts::nixos_inputs),
    })?;
    Ok(Planned {
        closure,
        plan,
        scanner,
    })
}

fn closure_file(path: &Path) -> Result<(Vec<u8>, String), AppError> {
    let bytes = read_limited(path, MAX_CLOSURE_BYTES, "a closure file")?;
    Ok((bytes, path.display().to_string()))
}

/// `write`: the rootfs of `system` into `output`, with its manifest.
pub fn write_rootfs(
    system: &SystemRequest,
    content: &ContentRequest,
    compression: &CompressionRequest,
    output: &OutputRequest,
    progress: bool,
    events: &mut dyn Events,
) -> Result<WriteOutcome, AppError> {
    let mut inputs = vec![Named {
        role: Role::Closure,
        path: &system.closure,
    }];
    if let Some(facts) = &system.facts {
        inputs.push(Named {
            role: Role::Facts,
            path: facts,
        });
    }
    output.check_destinations(&content.allow_override)?;
    output.check_distinct(&inputs, content.extra_files.as_deref())?;
    content.chown_rules()?;
    output.check_signing()?;
    if output.cache.is_none() && output.cache_limit.is_some() {
        return Err(AppError::CacheLimitWithoutCache);
    }
    if output.cache.is_none() && output.cache_check_contents {
        return Err(AppError::CacheCheckWithoutCache);
    }
    compression.check_early()?;
    if system.facts.is_none() {
        // Without a module the flags say it all: check them before anything.
        compression.options_for(None, &output.output)?;
    }
    let (system_path, nixos) = system_and_facts(system, content)?;
    write_planned(
        content,
        compression,
        output,
        || closure_file(&system.closure),
        &system_path,
        nixos.as_ref(),
        None,
        progress,
        events,
    )
}

/// `check --closure`: scans the rootfs `write` would make, writing nothing,
/// walking it with `threads` workers. `None` when the checks are skipped.
pub fn check_rootfs(
    system: &SystemRequest,
    content: &ContentRequest,
    threads: Option<usize>,
    events: &mut dyn Events,
) -> Result<Option<crate::scan::ScanReport>, AppError> {
    let threads = threads.unwrap_or_else(default_threads);
    check_threads(threads).map_err(|source| AppError::Threads { threads, source })?;
    content.chown_rules()?;
    let (system_path, nixos) = system_and_facts(system, content)?;
    let planned = plan_rootfs(
        content,
        closure_file(&system.closure)?,
        &system_path,
        nixos.as_ref(),
        &mut Silent(events),
    )?;
    let Some(scanner) = planned.scanner else {
        return Ok(None);
    };
    let report = check_plan(&planned.plan, content.mtime, scanner, threads)?;
    judge(&report, FindingsStage::Check, events)?;
    Ok(Some(report))
}

/// Passes on every event but the closure's (`check` prints only its report;
/// `build` read the closure from the Nix it ran, which is no news).
pub(super) struct Silent<'e>(pub &'e mut dyn Events);

impl Events for Silent<'_> {
    fn event(&mut self, event: Event<'_>) {
        if !matches!(event, Event::ClosureRead { .. }) {
            self.0.event(event);
        }
    }
}

/// The shared tail of `write` and `build`: check the settings, read the
/// closure, plan, stream, scan, write the manifest, commit, trim the cache.
///
/// `default_cache` is the cache used when `output.cache` is `None`: only
/// with gzip, and when it cannot be used the run goes on without one
/// ([`Event::DefaultCacheUnusable`]). An explicit `output.cache` that
/// cannot be used is an error.
#[allow(clippy::too_many_arguments)]
pub(super) fn write_planned(
    content: &ContentRequest,
    compression: &CompressionRequest,
    output: &OutputRequest,
    closure_bytes: impl FnOnce() -> Result<(Vec<u8>, String), AppError>,
    system: &str,
    nixos: Option<&NixosFacts>,
    default_cache: Option<&Path>,
    progress: bool,
    events: &mut dyn Events,
) -> Result<WriteOutcome, AppError> {
    let compress_options = compression.options_for(nixos, &output.output)?;
    if let Some(dir) = &output.cache {
        SegmentCache::check_usable(dir, compress_options.compression)?;
    }
    if compress_options.compression == Compression::Zstd {
        events.event(Event::UnofficialCompression {
            compression: compress_options.compression.name(),
        });
    }
    // Read before the long write: a bad key fails the run before it starts.
    let signing_key = output
        .sign_key
        .as_deref()
        .map(|key| read_signing_key(key, content.extra_files.as_deref(), &content.store_source()))
        .transpose()?;
    let planned = plan_rootfs(content, closure_bytes()?, system, nixos, events)?;
    let Planned {
        closure,
        plan,
        scanner,
    } = planned;
    let limit = output.cache_limit.unwrap_or(DEFAULT_LIMIT_BYTES);
    let open =
        |dir| SegmentCache::open(dir, limit).map(|c| c.check_contents(output.cache_check_contents));
    let cache = match (&output.cache, default_cache) {
        (Some(dir), _) => Some(open(dir)?),
        (None, Some(dir)) if compress_options.compression == Compression::Gzip => match open(dir) {
            Ok(cache) => Some(cache),
            Err(error) => {
                events.event(Event::DefaultCacheUnusable { dir, error: &error });
                None
            }
        },
        (None, _) => None,
    };
    // Created before the long write, so that a manifest that cannot be
    // written fails the run before it starts.
    let mut manifest_output = output
        .manifest
        .as_deref()
        .map(AtomicOutput::create)
        .transpose()?;
    let mut sbom_output = output
        .sbom
        .as_deref()
        .map(AtomicOutput::create)
        .transpose()?;
    let mut progress = ProgressReport::new(
        !progress,
        closure.total_nar_size(),
        &output.output,
        closure.len(),
    );
    let options = WriteOptions {
        mtime: content.mtime,
        compression: &compress_options,
        cache: cache.as_ref(),
        hash_output: manifest_output.is_some() || sbom_output.is_some(),
    };
    let streamed = output.to_stdout();
    let stage = if streamed {
        FindingsStage::Stream
    } else {
        FindingsStage::Tarball
    };
    let write_and_commit = || -> Result<WriteSummary, AppError> {
        let pending = write_tarball(&plan, &output.output, &options, scanner, &mut progress)?;
        progress.finish();
        for damaged in pending.damaged_cache_segments() {
            events.event(Event::DamagedCacheSegment(damaged));
        }
        if let Some(error) = pending.cache_store_failure() {
            events.event(Event::CacheStoreFailed(error));
        }
        if let Some(report) = pending.scan_report() {
            // Dropping the pending tarball on error removes its temporary file
            // (or leaves the stream cut short).
            judge(report, stage, events)?;
        }
        // The SBOM first: the manifest records its SHA-256.
        let mut sbom_record = None;
        if let Some(sbom_output) = &mut sbom_output {
            let sha256 = pending
                .summary()
                .output_sha256
                .expect("hashed when an SBOM is written");
            let sbom = sbom_json(&closure, &tarball_file_name(output), &sha256);
            sbom_output.write_all(sbom.as_bytes())?;
            sbom_record = output.sbom.as_deref().map(|path| ManifestSbom {
                file: path
                    .file_name()
                    .map(|name| name.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                sha256: crate::hex::encode(&Sha256::digest(sbom.as_bytes())),
            });
        }
        if let Some(manifest_output) = &mut manifest_output {
            let mut manifest = manifest(
                content,
                &compress_options,
                output,
                system,
                nixos.is_some(),
                &closure,
                pending.summary(),
                pending.scan_report(),
            )?;
            manifest.sbom = sbom_record;
            if let Some(key) = &signing_key {
                manifest.sign(key);
            }
            manifest_output.write_all(manifest.to_json().as_bytes())?;
        }
        // The tarball, its manifest and its SBOM replace their destinations
        // together (a stream is whole before they are committed).
        let companions = manifest_output.into_iter().chain(sbom_output).collect();
        Ok(pending.commit_with(companions, &mut |dir| {
            events.event(Event::WaitingForCommitLock { dir })
        })?)
    };
    let summary = write_and_commit().map_err(|error| match error {
        // Bytes went out: say they are not to be used.
        error @ AppError::Findings { .. } => error,
        error if streamed => AppError::StreamAbandoned(Box::new(error)),
        error => error,
    })?;
    // Only now: a failed run leaves the cache as it was, but for the
    // segments it stored.
    if let Some(cache) = &cache {
        match cache.evict() {
            Ok(eviction) => events.event(Event::CacheEvicted {
                dir: cache.dir(),
                limit: cache.limit_bytes(),
                eviction: &eviction,
            }),
            Err(error) => events.event(Event::CacheEvictionFailed(&error)),
        }
    }
    Ok(WriteOutcome { summary })
}

/// The tarball's file name, without its directory.
/// The tarball's name as the manifest and the SBOM record it: its file
/// name, or `-` for a stream (its name is the reader's business).
fn tarball_file_name(output: &OutputRequest) -> String {
    if output.to_stdout() {
        return "-".to_owned();
    }
    output
        .output
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The manifest of a written tarball.
#[allow(clippy::too_many_arguments)]
fn manifest(
    content: &ContentRequest,
    compress_options: &CompressOptions,
    output: &OutputRequest,
    system: &str,
    skeleton: bool,
    closure: &Closure,
    summary: &WriteSummary,
    report: Option<&crate::scan::ScanReport>,
) -> Result<Manifest, AppError> {
    let security_checks = match report {
        Some(report) => ManifestScan {
            status: "passed".to_owned(),
            report: Some(report.to_json_value()),
        },
        None => ManifestScan {
            status: "skipped".to_owned(),
            report: None,
        },
    };
    Ok(Manifest {
        manifest_version: MANIFEST_VERSION,
        tool: Tool {
            name: env!("CARGO_PKG_NAME").to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        },
        settings: ManifestSettings {
            compression: compress_options.compression.name().to_owned(),
            level: match compress_options.compression {
                Compression::None => None,
                _ => Some(
                    compress_options
                        .validate()
                        .map_err(AppError::CompressOptions)?,
                ),
            },
            mtime: content.mtime,
            nix_db: match content.nix_db {
                NixDbMode::Sqlite => "sqlite",
                NixDbMode::Registration => "registration",
            }
            .to_owned(),
            store_dir: content.store_dir.to_string(),
            skeleton: if skeleton { "nixos" } else { "none" }.to_owned(),
            extra_files: content
                .extra_files
                .as_ref()
                .map(|p| p.display().to_string()),
            chown: content
                .chown
                .iter()
                .map(|(path, owner)| format!("{path} {owner}"))
                .collect(),
        },
        system: system.to_owned(),
        store_paths: manifest_store_paths(closure),
        tarball: ManifestTarball {
            file: tarball_file_name(output),
            // Hashed whenever a manifest is written.
            sha256: summary
                .output_sha256
                .as_ref()
                .map(|sha256| crate::hex::encode(sha256))
                .unwrap_or_default(),
            size: summary.output_bytes,
            uncompressed_size: summary.tar.archive_bytes,
            entries: summary.tar.files + summary.tar.directories + summary.tar.symlinks,
        },
        security_checks,
        sbom: None,
        signatures: Vec::new(),
    })
}
