//! Writing an update bundle: the store paths of the new closure that the
//! old system lacks, in dependency order, as a `nix-store --export` stream,
//! with the manifest and the `apply` script, in a compressed tar.
//!
//! [`plan_bundle`] is the first pass: it picks and orders the paths,
//! serialises each from the host store as a NAR, checks it against the
//! closure's narHash and narSize, hashes the export stream and shows every
//! member and byte to the security scanner; then the manifest and the script
//! are made (and scanned). Nothing is created on disk. [`BundlePlan::write`]
//! is the second pass: it streams the same bytes into the container through
//! the compressor into an [`AtomicOutput`], and fails if any byte differs
//! from the first pass. Same inputs, same bytes, for every thread count.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::export::{record_trailer, stream_size, RECORD_START, STREAM_END};
use super::inventory::Inventory;
use super::manifest::{
    absolute, BundleManifest, BundlePath, BundleTool, ExportDigest, APPLY_MEMBER, BUNDLE_DIR,
    BUNDLE_VERSION, EXPORT_MEMBER, MANIFEST_MEMBER, STORE_DIR,
};
use super::script::apply_script;
use super::MakeError;
use crate::compress::{CompressOptions, Compressor};
use crate::entry::Entry;
use crate::manifest::HashingWriter;
use crate::nar::{dump_host_path, NarHasher};
use crate::output::AtomicOutput;
use crate::scan::{ScanReport, Scanner};
use crate::sign::SigningKey;
use crate::store::{Closure, NarHash, PathInfo, StorePath};
use crate::tar::{ContentObserver, TarWriter};

/// What a bundle is made from.
pub struct BundleInputs<'a> {
    /// The new system's closure.
    pub closure: &'a Closure,
    pub system: &'a StorePath,
    /// What the colleague has.
    pub baseline: &'a Inventory,
    /// The host directory holding the store paths (`/nix/store`).
    pub store_source: PathBuf,
    /// `None` when the checks are skipped.
    pub scanner: Option<Scanner>,
    /// Signs the manifest.
    pub signing_key: Option<&'a SigningKey>,
}

/// The first pass's result: everything but the compressed bytes.
pub struct BundlePlan {
    pub manifest: BundleManifest,
    manifest_json: String,
    script: String,
    store_source: PathBuf,
    scan: Option<ScanReport>,
}

/// What [`BundlePlan::write`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BundleSummary {
    pub output_bytes: u64,
    pub output_sha256: [u8; 32],
    pub tar_bytes: u64,
}

/// Writes to two sinks.
struct Tee<'a, A: Write, B: Write>(&'a mut A, &'a mut B);

impl<A: Write, B: Write> Write for Tee<'_, A, B> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.write_all(bytes)?;
        self.1.write_all(bytes)?;
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The first pass; see the module docs.
pub fn plan_bundle(inputs: BundleInputs<'_>) -> Result<BundlePlan, MakeError> {
    let closure = inputs.closure;
    let store_dir = closure.store_dir().to_string();
    if *closure.store_dir() != STORE_DIR {
        return Err(MakeError::StoreDir { store_dir });
    }
    if !closure.contains(inputs.system) {
        return Err(MakeError::SystemNotInClosure {
            system: absolute(inputs.system),
        });
    }
    let selected: BTreeMap<&StorePath, &PathInfo> = closure
        .iter()
        .filter(|info| !inputs.baseline.paths.contains_key(&info.path))
        .map(|info| (&info.path, info))
        .collect();
    let paths: Vec<BundlePath> = dependency_order(&selected)
        .into_iter()
        .map(|info| BundlePath {
            path: info.path.clone(),
            nar_hash: info.nar_hash,
            nar_size: info.nar_size,
            references: info.references.clone(),
        })
        .collect();
    let shipped: BTreeSet<&StorePath> = paths.iter().map(|p| &p.path).collect();
    let requires: BTreeSet<StorePath> = paths
        .iter()
        .flat_map(|p| p.references.iter())
        .filter(|r| !shipped.contains(r))
        .cloned()
        .collect();

    let mut scanner = inputs.scanner;
    let mut export_hash = HashingWriter::new(std::io::sink());
    let feed = |hash: &mut HashingWriter<std::io::Sink>, bytes: &[u8]| {
        hash.write_all(bytes)
            .expect("hashing into a sink cannot fail")
    };
    for path in &paths {
        let mut nar = NarHasher::new();
        feed(&mut export_hash, &RECORD_START);
        {
            let mut tee = Tee(&mut nar, &mut export_hash);
            match scanner.as_mut() {
                Some(scanner) => dump(&inputs.store_source, path, &mut tee, scanner)?,
                None => dump(&inputs.store_source, path, &mut tee, &mut ())?,
            }
        }
        let (digest, size) = nar.finish();
        if path.nar_hash != NarHash(digest) || size != path.nar_size {
            return Err(MakeError::StoreMismatch {
                path: path.absolute(),
                expected_hash: path.nar_hash.to_sri(),
                actual_hash: NarHash(digest).to_sri(),
                expected_size: path.nar_size,
                actual_size: size,
            });
        }
        feed(&mut export_hash, &record_trailer(path));
    }
    feed(&mut export_hash, &STREAM_END);
    // `HashingWriter::new` always hashes.
    let (_, export_sha256, export_size) = export_hash.finish();
    let export_sha256 = export_sha256.unwrap_or_default();
    debug_assert_eq!(export_size, stream_size(&paths));

    let mut manifest = BundleManifest {
        bundle_version: BUNDLE_VERSION,
        tool: BundleTool {
            name: env!("CARGO_PKG_NAME").to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        },
        store_dir: STORE_DIR.to_string(),
        old_system: inputs.baseline.system.clone(),
        new_system: inputs.system.clone(),
        baseline: inputs.baseline.kind.name().to_owned(),
        paths,
        requires: requires.into_iter().collect(),
        export: ExportDigest {
            sha256: crate::hex::encode(&export_sha256),
            size: export_size,
        },
        security_checks: if scanner.is_some() {
            "passed"
        } else {
            "skipped"
        }
        .to_owned(),
        signatures: Vec::new(),
    };
    if let Some(key) = inputs.signing_key {
        manifest.sign(key);
    }
    let manifest_json = manifest.to_json();
    let script = apply_script(&manifest);
    let scan = scanner.map(|mut scanner| {
        for (member, bytes) in [(MANIFEST_MEMBER, &manifest_json), (APPLY_MEMBER, &script)] {
            scanner.begin_member(member.as_bytes(), None);
            scanner.content(bytes.as_bytes());
            scanner.end_member();
        }
        scanner.finish()
    });
    Ok(BundlePlan {
        manifest,
        manifest_json,
        script,
        store_source: inputs.store_source,
        scan,
    })
}

/// One path's NAR from the host store into `out`, members shown to `observer`.
fn dump<W: Write>(
    store_source: &Path,
    path: &BundlePath,
    out: &mut W,
    observer: &mut impl ContentObserver,
) -> Result<(), MakeError> {
    let basename = path.path.basename();
    let archive_path = format!("{}/{basename}", STORE_DIR.relative());
    dump_host_path(
        &store_source.join(basename),
        archive_path.as_bytes(),
        out,
        observer,
    )?;
    Ok(())
}

/// The paths in an order where every path comes after the paths it
/// references (self-references aside); among the ready ones, by basename.
fn dependency_order<'a>(selected: &BTreeMap<&StorePath, &'a PathInfo>) -> Vec<&'a PathInfo> {
    let mut waiting: BTreeMap<&StorePath, usize> = BTreeMap::new();
    let mut referrers: BTreeMap<&StorePath, Vec<&StorePath>> = BTreeMap::new();
    for (path, info) in selected {
        let inside: Vec<&StorePath> = info
            .references
            .iter()
            .filter(|r| *r != *path && selected.contains_key(r))
            .collect();
        waiting.insert(path, inside.len());
        for reference in inside {
            referrers.entry(reference).or_default().push(path);
        }
    }
    let mut ready: BTreeSet<&StorePath> = waiting
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(p, _)| *p)
        .collect();
    let mut order = Vec::with_capacity(selected.len());
    while let Some(path) = ready.pop_first() {
        order.push(selected[path]);
        for referrer in referrers.get(path).into_iter().flatten() {
            let count = waiting.get_mut(referrer).expect("every referrer waits");
            *count -= 1;
            if *count == 0 {
                ready.insert(referrer);
            }
        }
    }
    order
}

impl BundlePlan {
    /// The security report of the first pass, if the checks ran.
    pub fn scan_report(&self) -> Option<&ScanReport> {
        self.scan.as_ref()
    }

    /// The second pass: writes the bundle to `destination` atomically.
    pub fn write(
        &self,
        destination: &Path,
        mtime: u64,
        compression: &CompressOptions,
    ) -> Result<BundleSummary, MakeError> {
        let write_error = |source| MakeError::Write {
            path: destination.to_path_buf(),
            source,
        };
        let members = BundleMembers {
            manifest_json: &self.manifest_json,
            script: &self.script,
            export_size: self.manifest.export.size,
        };
        write_bundle(destination, mtime, compression, members, |out| {
            let mut export = out;
            for path in &self.manifest.paths {
                export.write_all(&RECORD_START).map_err(write_error)?;
                let mut nar = NarHasher::new();
                dump(
                    &self.store_source,
                    path,
                    &mut Tee(&mut nar, &mut export),
                    &mut (),
                )?;
                let (digest, _) = nar.finish();
                if path.nar_hash != NarHash(digest) {
                    return Err(MakeError::ChangedWhileWriting {
                        path: path.absolute(),
                    });
                }
                export
                    .write_all(&record_trailer(path))
                    .map_err(write_error)?;
            }
            export.write_all(&STREAM_END).map_err(write_error)?;
            Ok(())
        })
    }
}

/// The members of a bundle but the export stream's bytes.
pub(crate) struct BundleMembers<'a> {
    pub manifest_json: &'a str,
    pub script: &'a str,
    /// The export stream's size; `fill_export` writes exactly that.
    pub export_size: u64,
}

/// Writes a bundle of `members` to `destination` atomically, the export
/// stream's bytes from `fill_export`.
pub(crate) fn write_bundle(
    destination: &Path,
    mtime: u64,
    compression: &CompressOptions,
    members: BundleMembers<'_>,
    fill_export: impl FnOnce(&mut dyn Write) -> Result<(), MakeError>,
) -> Result<BundleSummary, MakeError> {
    let output = AtomicOutput::create(destination)?;
    let write_error = |source| MakeError::Write {
        path: destination.to_path_buf(),
        source,
    };
    let file = output.try_clone_file().map_err(write_error)?;
    let hashing = HashingWriter::new(BufWriter::with_capacity(1 << 20, file));
    let compressor = Compressor::new(hashing, compression)?;
    let mut tar = TarWriter::new(compressor, mtime);
    tar.append(&Entry::directory(BUNDLE_DIR, 0o755))?;
    tar.append(&Entry::inline_file(
        MANIFEST_MEMBER,
        members.manifest_json.as_bytes().to_vec(),
        0o644,
    ))?;
    tar.append(&Entry::inline_file(
        APPLY_MEMBER,
        members.script.as_bytes().to_vec(),
        0o755,
    ))?;
    tar.append_streamed(
        EXPORT_MEMBER.as_bytes(),
        0o644,
        members.export_size,
        fill_export,
    )?;
    let (compressor, stats) = tar.finish()?;
    let hashing = compressor.finish().map_err(write_error)?;
    let (mut buffered, output_sha256, _) = hashing.finish();
    // `HashingWriter::new` always hashes.
    let output_sha256 = output_sha256.unwrap_or_default();
    buffered.flush().map_err(write_error)?;
    drop(buffered);
    let output_bytes = output.commit()?;
    Ok(BundleSummary {
        output_bytes,
        output_sha256,
        tar_bytes: stats.archive_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: &str, hash_char: char, references: &[&StorePath]) -> PathInfo {
        let path =
            StorePath::from_basename(&format!("{}-{name}", hash_char.to_string().repeat(32)))
                .unwrap();
        let mut references: Vec<StorePath> = references.iter().map(|r| (*r).clone()).collect();
        references.sort();
        PathInfo {
            path,
            nar_hash: NarHash([0; 32]),
            nar_size: 8,
            references,
            deriver: None,
            ca: None,
            signatures: Vec::new(),
        }
    }

    #[test]
    fn a_system_outside_the_closure_is_named() {
        let lib = info("lib", '0', &[]);
        let top = info("top", '2', &[]);
        let closure = Closure::new(&crate::store::StoreDir::NIX, [lib]).unwrap();
        let baseline = Inventory {
            kind: super::super::InventoryKind::Closure,
            system: None,
            paths: BTreeMap::new(),
            store_dir: STORE_DIR,
        };
        let error = plan_bundle(BundleInputs {
            closure: &closure,
            system: &top.path,
            baseline: &baseline,
            store_source: PathBuf::from("/nix/store"),
            scanner: None,
            signing_key: None,
        })
        .err()
        .unwrap();
        assert_eq!(
            error.to_string(),
            format!(
                "the new system /nix/store/{} is not in the new closure",
                top.path
            )
        );
    }

    #[test]
    fn references_come_first_then_basename_order() {
        // lib (hash 0…) references itself and app (hash 1…) references it;
        // among paths ready at once, basename order: lib before doc (hash 3…).
        let lib = info("lib", '0', &[]);
        let lib = info("lib", '0', &[&lib.path]);
        let app = info("app", '1', &[&lib.path]);
        let top = info("top", '2', &[&app.path, &lib.path]);
        let doc = info("doc", '3', &[]);
        let selected: BTreeMap<&StorePath, &PathInfo> = [&top, &doc, &app, &lib]
            .into_iter()
            .map(|i| (&i.path, i))
            .collect();
        let names: Vec<&str> = dependency_order(&selected)
            .iter()
            .map(|i| i.path.name())
            .collect();
        assert_eq!(names, ["lib", "app", "top", "doc"]);
    }
}
