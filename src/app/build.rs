//! `build`: let Nix build a flake's host as the calling user, then write its
//! tarball (or an update bundle) from the closure Nix reports.

use std::path::{Path, PathBuf};

use super::delta::{delta_from_bytes, DeltaOutcome, DeltaRequest};
use super::rootfs::{write_planned, Silent};
use super::{
    AppError, CompressionRequest, ContentRequest, Event, Events, OutputRequest, WriteOutcome,
};
use crate::input::{read_limited, MAX_FACTS_BYTES};
use crate::nix::{quote_attribute, Nix};
use crate::plan::NixosFacts;

/// Where `build` writes a bundle when the output is left at the tarball's
/// default.
const DEFAULT_BUNDLE: &str = "update.wsl-delta";

/// A host of a flake to build and write.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    /// A name under nixosConfigurations; `None` lets [`Nix::select_host`]
    /// choose.
    pub host: Option<String>,
    /// The flake reference.
    pub flake: String,
    /// Write an update bundle from this earlier tarball, manifest or closure
    /// instead of a tarball.
    pub delta_from: Option<PathBuf>,
    /// What goes into the rootfs besides the closure, and how it is read.
    pub content: ContentRequest,
    /// How the tarball (or the bundle) is compressed.
    pub compression: CompressionRequest,
    /// Where the tarball and its manifest, SBOM and cache go.
    pub output: OutputRequest,
    /// Whether `output.output` was left at its default (a bundle then goes
    /// to update.wsl-delta).
    pub default_output: bool,
    /// No cache: not even the default one (`default_cache_dir`), which a
    /// gzip tarball otherwise uses when `output.cache` is `None`.
    pub no_cache: bool,
    /// Whether to report progress while the tarball is written.
    pub progress: bool,
}

/// `build`'s cache when none is given: `$XDG_CACHE_HOME/wsl-tarball`, else
/// `$HOME/.cache/wsl-tarball` (an empty or relative `XDG_CACHE_HOME` is
/// ignored, as the XDG base directory specification says). `None` without
/// either.
fn default_cache_dir() -> Option<PathBuf> {
    let absolute = |name| {
        std::env::var_os(name)
            .map(PathBuf::from)
            .filter(|path| path.is_absolute())
    };
    let base = absolute("XDG_CACHE_HOME").or_else(|| absolute("HOME").map(|h| h.join(".cache")))?;
    Some(base.join("wsl-tarball"))
}

/// What `build` wrote.
#[derive(Debug)]
pub enum BuildOutcome {
    /// A rootfs tarball, written and committed.
    Tarball(WriteOutcome),
    /// An update bundle, written instead of a tarball (`--delta-from`).
    Bundle(Box<DeltaOutcome>),
}

/// Builds the host's facts (or toplevel), reads its closure, writes.
pub fn build(request: &BuildRequest, events: &mut dyn Events) -> Result<BuildOutcome, AppError> {
    let content = &request.content;
    let output = &request.output;
    if request.delta_from.is_some()
        && (content.extra_files.is_some()
            || !content.chown.is_empty()
            || output.manifest.is_some()
            || output.sbom.is_some()
            || output.cache.is_some()
            || output.cache_limit.is_some()
            || output.cache_check_contents)
    {
        return Err(AppError::BundleSettings);
    }
    if request.delta_from.is_some() {
        super::delta::check_bundle_destination(&output.output)?;
    } else {
        output.check_destinations(&content.allow_override)?;
    }
    output.check_distinct(&[], content.extra_files.as_deref())?;
    content.chown_rules()?;
    if request.delta_from.is_none() {
        output.check_signing()?;
    }
    request.compression.check_early()?;
    let nix = Nix::detect()?;
    let host = nix.select_host(&request.flake, request.host.as_deref())?;
    if let Some(reason) = &host.reason {
        events.event(Event::HostChosen {
            host: &host.name,
            reason,
        });
    }
    let attribute = format!(
        "{}#nixosConfigurations.{}.config.system.build",
        request.flake,
        quote_attribute(&host.name)
    );
    let mut signed_output;
    let mut output = output;
    let facts = if nix.host_has_facts(&request.flake, &host.name)? {
        // The module's signing key, read here and never by the pure build.
        if output.sign_key.is_none() {
            let config = format!(
                "{}#nixosConfigurations.{}.config",
                request.flake,
                quote_attribute(&host.name)
            );
            if let Some(key) = nix.signing_key_file(&config)? {
                if request.delta_from.is_none() && output.manifest.is_none() {
                    return Err(AppError::ModuleSignKeyWithoutManifest { key });
                }
                signed_output = output.clone();
                signed_output.sign_key = Some(PathBuf::from(key));
                output = &signed_output;
            }
        }
        let path = nix.build_out(&format!("{attribute}.wslTarballFacts"))?;
        let bytes = read_limited(Path::new(&path), MAX_FACTS_BYTES, "a facts file")?;
        NixosFacts::parse(&bytes, &path)?
    } else {
        events.event(Event::NoFacts { host: &host.name });
        NixosFacts::defaults(&nix.build_out(&format!("{attribute}.toplevel"))?)
    };
    if let Some(old) = &request.delta_from {
        let (closure_json, source_name) = nix.closure_json(&facts.system)?;
        let bundle = if request.default_output {
            PathBuf::from(DEFAULT_BUNDLE)
        } else {
            output.output.clone()
        };
        let delta = DeltaRequest {
            from: old.clone(),
            closure: PathBuf::from(&source_name),
            system: facts.system.clone(),
            output: bundle,
            compression: request.compression,
            mtime: content.mtime,
            store_root: content.store_root.clone(),
            checks: content.checks.clone(),
            sign_key: output.sign_key.clone(),
        };
        return Ok(BuildOutcome::Bundle(Box::new(delta_from_bytes(
            &delta,
            &closure_json,
            &source_name,
            events,
        )?)));
    }
    let default_cache = if request.no_cache {
        None
    } else {
        default_cache_dir()
    };
    let outcome = write_planned(
        content,
        &request.compression,
        output,
        || Ok(nix.closure_json(&facts.system)?),
        &facts.system,
        Some(&facts),
        default_cache.as_deref(),
        request.progress,
        &mut Silent(events),
    )?;
    Ok(BuildOutcome::Tarball(outcome))
}
