//! Writing an update bundle: the store paths of the new closure that the
//! old system lacks, in dependency order, as a `nix-store --export` stream,
//! with the manifest and the `apply` script, in a compressed tar.
//!
//! One pass over each shipped path, on the one pipeline
//! ([`crate::pipeline`]):
//!
//! ```text
//! tar: wsl-delta/, manifest.json, apply, nix-export's header  ─► the prefix, made last
//!      export records, a segment per run of whole records     ─► the pool: NAR from the
//!        (each run at least 1 MiB, decided by the manifest's       host store, NAR check,
//!        NAR sizes alone)                                          scan, gzip members
//!      end of the export stream, padding, end of the archive  ─► the tail
//! ```
//!
//! The workers serialise each path from the host store as a NAR, check it
//! against the closure's narHash and narSize, show every member and byte to
//! a fresh copy of the security scanner and compress the pieces. The ordered
//! sink hashes the export stream in order. The manifest, which comes first
//! in the bundle, holds the export's sha256, so with gzip the prefix is
//! planned before the pass with a stand-in digest (its bytes that depend on
//! the digest are stored members of their own, so the real prefix has the
//! planned length), the pieces go straight into the file after it, and the
//! real prefix is written over the planned one at the end; a stream
//! compressor's tar bytes are spooled into an unnamed temporary file and
//! compressed after the prefix instead. The manifest is scanned too. The
//! bundle is an [`AtomicOutput`] that the caller commits once it has judged
//! the scan ([`PendingBundle`]). With gzip the prefix and the tail are
//! members of their own, so every member's bytes depend only on the segment
//! it is in: same inputs, same bytes, for every thread count. `sign`
//! rewrites a bundle the same way from a copy of its export stream.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::export::{record_trailer, stream_size, RECORD_START, STREAM_END};
use super::inventory::Inventory;
use super::manifest::{
    absolute, BundleManifest, BundlePath, BundleTool, ExportDigest, APPLY_MEMBER, BUNDLE_VERSION,
    MANIFEST_MEMBER, STORE_DIR,
};
use super::prefix::{prefix_tar, tail_bytes, PlannedPrefix, PrefixMembers, PLANNED_SHA256};
use super::MakeError;
use crate::compress::{gzip_member, CompressOptions, Compression, Compressor, GZIP_MEMBER_SIZE};
use crate::nar::{dump_host_path, NarHasher};
use crate::output::AtomicOutput;
use crate::pipeline::{
    Fault, OrderedSink, PieceFormat, PieceSink, PieceWriter, Pipeline, ReadyPiece, SegmentSource,
    Stop,
};
use crate::scan::{ScanReport, Scanner, SegmentScan};
use crate::sign::SigningKey;
use crate::store::{Closure, NarHash, PathInfo, StorePath};

/// What a bundle is made from.
pub struct BundleInputs<'a> {
    /// The new system's closure.
    pub closure: &'a Closure,
    /// The new system's toplevel, a path of the closure.
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

/// A complete bundle in its temporary file: not at the destination until
/// [`PendingBundle::commit`]; dropping it removes it.
pub struct PendingBundle {
    /// The bundle's manifest, as written into it.
    pub manifest: BundleManifest,
    output: AtomicOutput,
    summary: BundleSummary,
    scan: Option<ScanReport>,
}

impl PendingBundle {
    /// The security report, if the checks ran.
    pub fn scan_report(&self) -> Option<&ScanReport> {
        self.scan.as_ref()
    }

    /// Moves the bundle to its destination.
    pub fn commit(self) -> Result<(BundleManifest, BundleSummary), MakeError> {
        self.output.commit()?;
        Ok((self.manifest, self.summary))
    }
}

/// What a bundle's writing wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BundleSummary {
    /// Size of the compressed bundle, in bytes.
    pub output_bytes: u64,
    /// Size of the uncompressed tar stream, in bytes.
    pub tar_bytes: u64,
}

/// Writes to two sinks.
struct Tee<'a, A: Write, B: Write>(&'a mut A, &'a mut B);

impl<A: Write, B: Write> Write for Tee<'_, A, B> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.write_all(bytes)?;
        self.1.write_all(bytes)?;
        Ok(bytes.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes the bundle of `inputs` into a temporary file beside
/// `destination`; see the module docs. Nothing is at the destination until
/// the caller commits the result.
pub fn write_bundle(
    inputs: BundleInputs<'_>,
    destination: &Path,
    mtime: u64,
    compression: &CompressOptions,
) -> Result<PendingBundle, MakeError> {
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

    let scanner = inputs.scanner;
    let source = RecordSource::Store(&inputs.store_source);
    let mut manifest = None;
    let written = assemble_bundle(
        destination,
        mtime,
        compression,
        &paths,
        source,
        scanner.as_ref(),
        |export| {
            let mut made = BundleManifest {
                bundle_version: BUNDLE_VERSION,
                tool: BundleTool {
                    name: env!("CARGO_PKG_NAME").to_owned(),
                    version: env!("CARGO_PKG_VERSION").to_owned(),
                },
                store_dir: STORE_DIR.to_string(),
                old_system: inputs.baseline.system.clone(),
                new_system: inputs.system.clone(),
                baseline: inputs.baseline.kind.name().to_owned(),
                paths: paths.clone(),
                requires: requires.iter().cloned().collect(),
                export: export.clone(),
                security_checks: if scanner.is_some() {
                    "passed"
                } else {
                    "skipped"
                }
                .to_owned(),
                signatures: Vec::new(),
            };
            if let Some(key) = inputs.signing_key {
                made.sign(key);
            }
            let members = PrefixMembers::of(&made);
            manifest = Some(made);
            members
        },
    )?;
    let scan = scanner.map(|scanner| {
        let mut members = scanner.fresh();
        for (member, bytes) in [
            (MANIFEST_MEMBER, &written.manifest_json),
            (APPLY_MEMBER, &written.script),
        ] {
            members.begin_member(member.as_bytes(), None);
            members.content(bytes.as_bytes());
            members.end_member();
        }
        let mut scans = written.scans;
        scans.push(members.finish_segment());
        scanner.judge(scans)
    });
    Ok(PendingBundle {
        manifest: manifest.expect("made with the members"),
        output: written.output,
        summary: written.summary,
        scan,
    })
}

/// One path's NAR from the host store into `out`, members shown to `observer`.
fn dump<W: Write>(
    store_source: &Path,
    path: &BundlePath,
    out: &mut W,
    observer: &mut Option<Scanner>,
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

/// Where the export records' bytes come from.
#[derive(Clone, Copy)]
pub(crate) enum RecordSource<'a> {
    /// Each path's NAR serialised from this host store directory (and
    /// checked against its narHash and narSize).
    Store(&'a Path),
    /// A whole export stream of the paths, checked already (`sign`).
    Export(&'a File),
}

/// What [`assemble_bundle`] wrote, not yet committed.
pub(crate) struct WrittenBundle {
    pub output: AtomicOutput,
    pub summary: BundleSummary,
    /// The export stream's digest, as the manifest holds it.
    pub export: ExportDigest,
    pub manifest_json: String,
    pub script: String,
    /// The export records' scans, in order (empty without a scanner).
    pub scans: Vec<SegmentScan>,
}

/// Why the pass over the records failed.
#[derive(Debug)]
pub(crate) enum Failure {
    Delta(MakeError),
    Fault(Fault),
}

impl From<Fault> for Failure {
    fn from(fault: Fault) -> Self {
        Failure::Fault(fault)
    }
}

/// The export records of `paths` cut into segments: runs of whole records
/// of at least [`GZIP_MEMBER_SIZE`] bytes (the last run may be shorter).
struct Records<'a> {
    paths: &'a [BundlePath],
    /// Each record's start in the export stream.
    offsets: Vec<u64>,
    runs: Vec<Range<usize>>,
    source: RecordSource<'a>,
    scanner: Option<&'a Scanner>,
}

impl<'a> Records<'a> {
    fn new(
        paths: &'a [BundlePath],
        source: RecordSource<'a>,
        scanner: Option<&'a Scanner>,
    ) -> Self {
        let mut offsets = Vec::with_capacity(paths.len());
        let mut runs = Vec::new();
        let (mut at, mut start, mut run_bytes) = (0, 0, 0);
        for (index, path) in paths.iter().enumerate() {
            let len = record_len(path);
            offsets.push(at);
            at += len;
            run_bytes += len;
            if run_bytes >= GZIP_MEMBER_SIZE as u64 {
                runs.push(start..index + 1);
                (start, run_bytes) = (index + 1, 0);
            }
        }
        if start < paths.len() {
            runs.push(start..paths.len());
        }
        Records {
            paths,
            offsets,
            runs,
            source,
            scanner,
        }
    }

    /// Writes record `index` into `out`.
    fn record(
        &self,
        index: usize,
        out: &mut PieceWriter<'_, Failure>,
        scanner: &mut Option<Scanner>,
    ) -> Result<(), Stop<Failure>> {
        let path = &self.paths[index];
        match self.source {
            RecordSource::Store(store) => {
                let result = out.write_all(&RECORD_START);
                stopped(out, result)?;
                let mut nar = NarHasher::new();
                if let Err(error) = dump(store, path, &mut Tee(&mut nar, out), scanner) {
                    return Err(out
                        .take_stop()
                        .unwrap_or(Stop::Failed(Failure::Delta(error))));
                }
                let (digest, size) = nar.finish();
                if path.nar_hash != NarHash(digest) || size != path.nar_size {
                    return Err(Stop::Failed(Failure::Delta(MakeError::StoreMismatch {
                        path: path.absolute(),
                        expected_hash: path.nar_hash.to_sri(),
                        actual_hash: NarHash(digest).to_sri(),
                        expected_size: path.nar_size,
                        actual_size: size,
                    })));
                }
                let result = out.write_all(&record_trailer(path));
                stopped(out, result)
            }
            RecordSource::Export(file) => {
                let mut buffer = vec![0; GZIP_MEMBER_SIZE];
                let (mut at, mut left) = (self.offsets[index], record_len(path));
                while left > 0 {
                    let want = left.min(buffer.len() as u64) as usize;
                    if let Err(error) = file.read_exact_at(&mut buffer[..want], at) {
                        return Err(Stop::Failed(Failure::Fault(Fault::Output(error))));
                    }
                    let result = out.write_all(&buffer[..want]);
                    stopped(out, result)?;
                    (at, left) = (at + want as u64, left - want as u64);
                }
                Ok(())
            }
        }
    }
}

/// A write into a segment's pieces failed: the pipeline stopped it.
fn stopped(
    out: &mut PieceWriter<'_, Failure>,
    result: io::Result<()>,
) -> Result<(), Stop<Failure>> {
    result.map_err(|error| {
        out.take_stop()
            .unwrap_or(Stop::Failed(Failure::Fault(Fault::Output(error))))
    })
}

/// Bytes of `path`'s record in the export stream.
fn record_len(path: &BundlePath) -> u64 {
    RECORD_START.len() as u64 + path.nar_size + record_trailer(path).len() as u64
}

impl SegmentSource for Records<'_> {
    type Done = Option<SegmentScan>;
    type Error = Failure;

    fn len(&self) -> usize {
        self.runs.len()
    }

    fn encode(
        &self,
        index: usize,
        out: &dyn PieceSink<Failure>,
    ) -> Result<Option<SegmentScan>, Stop<Failure>> {
        let mut pieces = PieceWriter::new(out, index);
        let mut scanner = self.scanner.map(Scanner::fresh);
        for record in self.runs[index].clone() {
            out.check(index)?;
            self.record(record, &mut pieces, &mut scanner)?;
        }
        pieces.finish()?;
        Ok(scanner.map(Scanner::finish_segment))
    }
}

/// The ordered sink of a bundle: hashes the export stream in order and
/// writes its pieces to `out` (the bundle file after its prefix, or a
/// spool).
struct ExportSink {
    sha256: Sha256,
    bytes: u64,
    out: BufWriter<File>,
}

impl ExportSink {
    fn new(file: File) -> Self {
        ExportSink {
            sha256: Sha256::new(),
            bytes: 0,
            out: BufWriter::with_capacity(1 << 20, file),
        }
    }

    /// The export stream's digest (its end included), and the file.
    fn finish(mut self, export_size: u64) -> Result<(ExportDigest, File), io::Error> {
        self.sha256.update(STREAM_END);
        debug_assert_eq!(self.bytes + STREAM_END.len() as u64, export_size);
        let digest = ExportDigest {
            sha256: crate::hex::encode(&self.sha256.finalize()),
            size: export_size,
        };
        let file = self.out.into_inner().map_err(|e| e.into_error())?;
        Ok((digest, file))
    }
}

impl OrderedSink<Option<SegmentScan>, Failure> for ExportSink {
    fn piece(&mut self, _: usize, piece: &mut ReadyPiece) -> Result<(), Failure> {
        let ReadyPiece::Made(made) = piece else {
            unreachable!("a bundle's records come from no cache");
        };
        let tar = made.tar().expect("a bundle's pieces keep their tar bytes");
        self.sha256.update(tar);
        self.bytes += tar.len() as u64;
        let written = self.out.write_all(&made.bytes);
        written.map_err(|error| Failure::Fault(Fault::Output(error)))
    }
}

/// Writes a bundle of `paths` to a temporary file beside `destination`:
/// the records from `source` (scanned with copies of `scanner`) on the one
/// pipeline, then the manifest and the script that `members` makes from
/// the export stream's digest. See the module docs.
///
/// With gzip the records' members go straight to their place in the file:
/// the prefix is planned first with [`PLANNED_SHA256`] for the digest, its
/// bytes that depend on the digest (the hex and the signatures) compressed
/// as stored members of their own, so the real prefix, written last over
/// the planned one, has the same length. With a stream compressor the
/// records are spooled to an unnamed temporary file and compressed after
/// the prefix.
pub(crate) fn assemble_bundle(
    destination: &Path,
    mtime: u64,
    compression: &CompressOptions,
    paths: &[BundlePath],
    source: RecordSource<'_>,
    scanner: Option<&Scanner>,
    mut members: impl FnMut(&ExportDigest) -> PrefixMembers,
) -> Result<WrittenBundle, MakeError> {
    let level = compression.validate()?;
    let output = AtomicOutput::create(destination)?;
    let write_error = |source| MakeError::Write {
        path: destination.to_path_buf(),
        source,
    };
    let failed = |failure| match failure {
        Failure::Delta(error) => error,
        Failure::Fault(Fault::Compress(source) | Fault::Output(source)) => write_error(source),
        Failure::Fault(Fault::Panicked) => {
            write_error(io::Error::other("internal error: a worker thread panicked"))
        }
    };
    let export_size = stream_size(paths);
    let gzip = compression.compression == Compression::Gzip;
    let format = if gzip {
        PieceFormat::Gzip {
            level,
            keep_tar: true,
        }
    } else {
        PieceFormat::Tar
    };
    let pipeline = Pipeline::new(
        Records::new(paths, source, scanner),
        format,
        compression.threads,
    );
    // The members, the prefix and the tail once the digest is known.
    let mut made_from = |digest: &ExportDigest| -> Result<_, MakeError> {
        let made = members(digest);
        let prefix = prefix_tar(&made, mtime, export_size)?;
        let tail = tail_bytes(prefix.len() as u64, export_size);
        Ok((made, prefix, tail))
    };
    let mut file = output.try_clone_file().map_err(write_error)?;

    let (digest, made, prefix, tail, scans, output_bytes);
    if gzip {
        let (planned, planned_tar, _) = made_from(&ExportDigest {
            sha256: PLANNED_SHA256.to_owned(),
            size: export_size,
        })?;
        let plan =
            PlannedPrefix::plan(planned_tar, &planned.varying, level).map_err(write_error)?;
        file.seek(SeekFrom::Start(plan.len()))
            .map_err(write_error)?;
        let mut sink = ExportSink::new(file);
        scans = pipeline.run(&mut sink).map_err(failed)?;
        let mut file;
        (digest, file) = sink.finish(export_size).map_err(write_error)?;
        (made, prefix, tail) = made_from(&digest)?;
        let prefix_members = plan.fill(&prefix).map_err(write_error)?;
        let tail_member = gzip_member(&tail, level).map_err(write_error)?;
        file.write_all(&tail_member.bytes).map_err(write_error)?;
        file.write_all_at(&prefix_members, 0).map_err(write_error)?;
        output_bytes = file.stream_position().map_err(write_error)?;
    } else {
        let spool_dir = destination
            .parent()
            .filter(|dir| !dir.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let spool = tempfile::tempfile_in(spool_dir).map_err(write_error)?;
        let mut sink = ExportSink::new(spool);
        scans = pipeline.run(&mut sink).map_err(failed)?;
        let mut spool;
        (digest, spool) = sink.finish(export_size).map_err(write_error)?;
        spool.rewind().map_err(write_error)?;
        (made, prefix, tail) = made_from(&digest)?;
        let mut out = BufWriter::with_capacity(1 << 20, &mut file);
        let mut compressor = Compressor::new(&mut out, compression)?;
        compressor.write_all(&prefix).map_err(write_error)?;
        io::copy(&mut spool, &mut compressor).map_err(write_error)?;
        compressor.write_all(&tail).map_err(write_error)?;
        compressor.finish().map_err(write_error)?;
        out.flush().map_err(write_error)?;
        drop(out);
        output_bytes = file.stream_position().map_err(write_error)?;
    }
    Ok(WrittenBundle {
        output,
        summary: BundleSummary {
            output_bytes,
            tar_bytes: (prefix.len() + tail.len()) as u64 + export_size,
        },
        export: digest,
        manifest_json: made.manifest_json,
        script: made.script,
        scans: scans.into_iter().flatten().collect(),
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
        let dir = tempfile::tempdir().unwrap();
        let inputs = BundleInputs {
            closure: &closure,
            system: &top.path,
            baseline: &baseline,
            store_source: PathBuf::from("/nix/store"),
            scanner: None,
            signing_key: None,
        };
        let destination = dir.path().join("update.wsl-delta");
        let options = CompressOptions::default();
        let error = write_bundle(inputs, &destination, 1, &options)
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

    #[test]
    fn records_are_cut_into_runs_of_at_least_a_piece_by_their_sizes_alone() {
        let bundle_path = |name: &str, hash_char: char, nar_size: u64| {
            let mut path = info(name, hash_char, &[]);
            path.nar_size = nar_size;
            BundlePath {
                path: path.path,
                nar_hash: path.nar_hash,
                nar_size,
                references: Vec::new(),
            }
        };
        let piece = GZIP_MEMBER_SIZE as u64;
        // Small, small, large (ends the first run), large alone, small left over.
        let paths = [
            bundle_path("a", '0', 1000),
            bundle_path("b", '1', 2000),
            bundle_path("c", '2', piece),
            bundle_path("d", '3', 3 * piece),
            bundle_path("e", '4', 8),
        ];
        let records = Records::new(&paths, RecordSource::Store(Path::new("/nix/store")), None);
        assert_eq!(records.runs, [0..3, 3..4, 4..5]);
        let lengths: Vec<u64> = paths.iter().map(record_len).collect();
        let starts: Vec<u64> = lengths
            .iter()
            .scan(0, |at, len| {
                let start = *at;
                *at += len;
                Some(start)
            })
            .collect();
        assert_eq!(records.offsets, starts);
        assert_eq!(
            lengths.iter().sum::<u64>() + STREAM_END.len() as u64,
            stream_size(&paths)
        );
        assert!(Records::new(&[], RecordSource::Store(Path::new("/")), None)
            .runs
            .is_empty());
    }
}
