//! `delta`: an update bundle of the store paths the new closure has and OLD
//! lacks, scanned like a tarball.

use std::path::PathBuf;

use super::security::{judge, scanner};
use super::sign::read_signing_key;
use super::{AppError, CheckSettings, CompressionRequest, Events, FindingsStage};
use crate::delta::{self, BundleManifest, BundleSummary};
use crate::input::{read_limited, MAX_CLOSURE_BYTES};
use crate::store::{read_closure, StoreDir, StorePath};

/// An update bundle to write.
#[derive(Debug, Clone)]
pub struct DeltaRequest {
    /// What the colleague has: an earlier tarball, its manifest or a closure.
    pub from: PathBuf,
    /// The new system's closure file.
    pub closure: PathBuf,
    /// The new system (toplevel) store path.
    pub system: String,
    /// The bundle, replaced atomically.
    pub output: PathBuf,
    /// Gzip unless given; the NixOS module has no say in a bundle.
    pub compression: CompressionRequest,
    /// Modification time of the bundle's members.
    pub mtime: u64,
    /// Read the store from ROOT/nix/store.
    pub store_root: Option<PathBuf>,
    /// The security checks the bundle's contents go through.
    pub checks: CheckSettings,
    /// A Nix secret key file to sign the bundle's manifest with.
    pub sign_key: Option<PathBuf>,
}

/// A written bundle.
#[derive(Debug)]
pub struct DeltaOutcome {
    /// The manifest inside the bundle: the systems it goes from and to, and its store paths.
    pub manifest: BundleManifest,
    /// The counts and sizes of what the bundle holds.
    pub summary: BundleSummary,
    /// Where the bundle was written.
    pub output: PathBuf,
    /// How many store paths the new closure has.
    pub closure_paths: usize,
}

/// Reads OLD and the closure file, scans and writes the bundle.
pub fn write_delta(
    request: &DeltaRequest,
    events: &mut dyn Events,
) -> Result<DeltaOutcome, AppError> {
    // Bad compression settings are usage errors: found before any reading.
    request.compression.options(None)?;
    check_bundle_destination(&request.output)?;
    let bytes = read_limited(&request.closure, MAX_CLOSURE_BYTES, "a closure file")?;
    delta_from_bytes(
        request,
        &bytes,
        &request.closure.display().to_string(),
        events,
    )
}

/// Bad usage when the bundle would go to standard output: it is verified
/// in its file before it is committed (see [`crate::delta`]).
pub(super) fn check_bundle_destination(output: &std::path::Path) -> Result<(), AppError> {
    if crate::output::is_stdout(output) {
        return Err(AppError::NotToStdout {
            file: super::NotStdout::Bundle,
            path: output.to_path_buf(),
        });
    }
    Ok(())
}

/// [`write_delta`] with the closure already read (`build --delta-from`).
pub(super) fn delta_from_bytes(
    request: &DeltaRequest,
    closure_bytes: &[u8],
    source_name: &str,
    events: &mut dyn Events,
) -> Result<DeltaOutcome, AppError> {
    let compress_options = request.compression.options(None)?;
    let store_dir = &StoreDir::default();
    let store_source = store_dir.source(request.store_root.as_deref());
    let signing_key = request
        .sign_key
        .as_deref()
        .map(|key| read_signing_key(key, None, &store_source))
        .transpose()?;
    let (closure, _) = read_closure(closure_bytes, source_name, store_dir)?;
    let system = super::rootfs::follow_links_to_store(&request.system, store_dir);
    let system =
        StorePath::from_absolute(&system, store_dir).map_err(|source| AppError::InvalidSystem {
            system: request.system.clone(),
            source,
        })?;
    let baseline = delta::read_inventory(&request.from, store_dir)?;
    let scanner = scanner(&request.checks, store_dir, Some(&system), true, events)?;
    let inputs = delta::BundleInputs {
        closure: &closure,
        system: &system,
        baseline: &baseline,
        store_source,
        scanner,
        signing_key: signing_key.as_ref(),
    };
    let pending = delta::write_bundle(inputs, &request.output, request.mtime, &compress_options)?;
    if let Some(report) = pending.scan_report() {
        judge(report, FindingsStage::Bundle, events)?;
    }
    let (manifest, summary) = pending.commit()?;
    Ok(DeltaOutcome {
        manifest,
        summary,
        output: request.output.clone(),
        closure_paths: closure.len(),
    })
}
