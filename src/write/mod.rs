//! The `write` pipeline: plan ─► segments on every core ─► members in order
//! ─► atomic output.
//!
//! The plan's [`Segment`](crate::plan::Segment)s (each store path, and the
//! members the tool makes) are encoded on worker threads (`segment.rs`:
//! walk, read, tar, scan, NAR check, 1 MiB pieces) on the one pipeline
//! ([`crate::pipeline`]) and compressed on whichever worker is free; the
//! calling thread only puts the finished pieces in order into the sinks
//! (`assemble.rs`): a temporary file that is renamed over the destination
//! only when everything succeeded, the progress, and the cache stores,
//! which a store thread writes (`store.rs`).
//!
//! Every store path's members are hashed as a NAR while they are written
//! ([`crate::nar_match::NarMatch`]) and must match the closure's `narHash`
//! and `narSize`; otherwise the write fails and nothing reaches the
//! destination. A `--cache` hit was proven so when it was stored, and is
//! spliced without reading the store path; when the cache checks contents
//! (its files crossed a trust boundary), a hit is first inflated, compared
//! with the store path's walk, NAR-hashed and scanned (`recheck.rs`), and
//! encoded afresh if it fails.
//!
//! To standard output ([`crate::output::is_stdout`]) the bytes go out as
//! they are made, into a [`Stream`] that holds back the last few until the
//! caller commits: a run that fails after it started leaves a stream cut
//! short (and the caller says so).
//!
//! When `--allow-override` replaced files the tool makes, the complete
//! temporary file is verified ([`crate::inspect::verify`]) before it is
//! handed back: `write` never produces a tarball that `verify` rejects.
//!
//! With security checks, a fresh copy of the [`Scanner`] sees every member
//! and byte of a segment as they are written, on the worker, and the
//! segments' findings are judged together at the end; [`write_tarball`]
//! hands back a
//! [`PendingTarball`] with the report, and the caller commits it or drops it
//! (leaving nothing at the destination). [`check_plan`] runs the same scan
//! without writing anything.

mod assemble;
mod recheck;
mod segment;
mod store;

use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::cache::{CacheError, DamagedSegment, SegmentCache};
use crate::compress::{CompressError, CompressOptions, Compression, Compressor};
use crate::direct_write::DirectWriter;
use crate::hex;
use crate::inspect::{verify, InspectError};
use crate::manifest::HashingWriter;
use crate::nar_match::NarMatchError;
use crate::output::{commit_all, is_stdout, AtomicOutput, OutputError, Stream};
use crate::pipeline::{Fault, PieceFormat};
use crate::plan::{Plan, PlanError};
use crate::progress::Progress;
use crate::scan::{ScanReport, Scanner};
use crate::tar::{TarError, TarStats};
use assemble::assemble;
use segment::SegmentEncoder;

/// Why the tarball could not be written. Nothing is left at the destination.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The tarball's destination cannot be written.
    #[error(transparent)]
    Output(#[from] OutputError),
    /// The plan cannot be carried out (an input tree changed, say).
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// A member cannot be tarred (a file that cannot be read, say).
    #[error(transparent)]
    Tar(#[from] TarError),
    /// The compression options are refused.
    #[error("compression options: {0}")]
    CompressOptions(#[from] CompressError),
    /// The tarball cannot be flushed and synced.
    #[error("writing {}: {source}", path.display())]
    Finish {
        /// The tarball's destination.
        path: std::path::PathBuf,
        /// Why it failed.
        source: io::Error,
    },
    /// A store path's contents do not match the closure's NAR hash and size.
    #[error(transparent)]
    Nar(#[from] NarMatchError),
    /// Replacing files the tool makes with extra files would give a tarball `verify` rejects.
    #[error("override of {}: with these replacements the tarball fails verify, so it was not written: {}", paths.join(", "), failures.join("; "))]
    OverrideRejected {
        /// The rootfs paths replaced.
        paths: Vec<String>,
        /// What `verify` found wrong with the result.
        failures: Vec<String>,
    },
    /// The finished tarball cannot be read back for verification.
    #[error("verifying the tarball before it is committed: {0}")]
    Verify(#[source] InspectError),
    /// A compressor worker failed.
    #[error("compressing the tarball: {0}")]
    Compress(#[source] io::Error),
    /// A worker thread panicked (a bug).
    #[error("internal error: a worker thread panicked")]
    WorkerPanicked,
    /// Overrides of files the tool makes were asked for with the tarball streamed to standard output.
    #[error("replaced files the tool makes are verified in the complete tarball before it is committed, which a stream to standard output cannot wait for: write to a file")]
    OverrideToStream,
}

impl From<Fault> for WriteError {
    fn from(fault: Fault) -> Self {
        match fault {
            Fault::Compress(error) => WriteError::Compress(error),
            Fault::Panicked => WriteError::WorkerPanicked,
            Fault::Output(error) => WriteError::Tar(TarError::Write(error)),
        }
    }
}

/// What a finished write did.
#[derive(Debug, Clone, Copy)]
pub struct WriteSummary {
    /// Number of store paths in the closure that were written.
    pub store_paths: usize,
    /// What the tar stream held: members and bytes.
    pub tar: TarStats,
    /// Size of the compressed file.
    pub output_bytes: u64,
    /// SHA-256 of the compressed file, hashed as it was written, when
    /// [`WriteOptions::hash_output`] asked for it.
    pub output_sha256: Option<[u8; 32]>,
    /// Wall-clock time the write took.
    pub elapsed: Duration,
}

/// A complete, synced-on-commit tarball in its temporary file: not at the
/// destination until [`PendingTarball::commit`]; dropping it removes it.
#[derive(Debug)]
pub struct PendingTarball {
    output: Destination,
    summary: WriteSummary,
    scan: Option<ScanReport>,
    damaged_cache_segments: Vec<DamagedSegment>,
    cache_store_failure: Option<CacheError>,
}

impl PendingTarball {
    /// What was written.
    pub fn summary(&self) -> &WriteSummary {
        &self.summary
    }

    /// The security report, if a scanner was given.
    pub fn scan_report(&self) -> Option<&ScanReport> {
        self.scan.as_ref()
    }

    /// `--cache` entries that were damaged: each was compressed again (the
    /// tarball does not contain its bytes) and replaced in the cache.
    pub fn damaged_cache_segments(&self) -> &[DamagedSegment] {
        &self.damaged_cache_segments
    }

    /// Why the cache stopped taking new segments during the write, if it
    /// did: the tarball is complete, the cache merely missed them.
    pub fn cache_store_failure(&self) -> Option<&CacheError> {
        self.cache_store_failure.as_ref()
    }

    /// Moves the tarball and `companions` (its manifest) to their
    /// destinations as one transaction (see [`crate::output::commit_all`]):
    /// if any cannot be committed, none replaces its destination.
    /// `on_wait` hears of a directory another run is committing into,
    /// before this one waits for it.
    pub fn commit_with(
        self,
        companions: Vec<AtomicOutput>,
        on_wait: &mut dyn FnMut(&Path),
    ) -> Result<WriteSummary, WriteError> {
        let mut outputs = companions;
        match self.output {
            Destination::File(output) => outputs.insert(0, output),
            // The stream is whole before its manifest is committed.
            Destination::Stream(stream) => stream.complete()?,
        }
        commit_all(outputs, on_wait)?;
        Ok(self.summary)
    }
}

/// Where a pending tarball is.
#[derive(Debug)]
enum Destination {
    /// In its temporary file.
    File(AtomicOutput),
    /// Sent to standard output, but for the bytes the stream holds back.
    Stream(Stream),
}

/// What the compressed bytes are written into.
enum Sink {
    /// The temporary file, through its own descriptor.
    File {
        direct: DirectWriter,
        output: AtomicOutput,
    },
    Stream(Stream),
}

impl io::Write for Sink {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match self {
            Sink::File { direct, .. } => direct.write(bytes),
            Sink::Stream(stream) => stream.write(bytes),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::File { direct, .. } => direct.flush(),
            Sink::Stream(stream) => stream.flush(),
        }
    }
}

/// How [`write_tarball`] writes a plan.
#[derive(Debug, Clone, Copy)]
pub struct WriteOptions<'a> {
    /// Modification time of every member, in seconds since 1970.
    pub mtime: u64,
    pub compression: &'a CompressOptions,
    /// The segment cache (gzip only; ignored otherwise).
    pub cache: Option<&'a SegmentCache>,
    /// Hash the compressed file for [`WriteSummary::output_sha256`] (a
    /// manifest needs it); costs a pass over every output byte.
    pub hash_output: bool,
}

/// Writes `plan` as a compressed tarball into a temporary file beside
/// `destination`, scanning it with copies of `scanner` if given. Nothing
/// reaches the destination until the caller commits the result. `progress`
/// hears how many tar bytes are done.
pub fn write_tarball(
    plan: &Plan,
    destination: &Path,
    options: &WriteOptions<'_>,
    scanner: Option<Scanner>,
    progress: &mut dyn Progress,
) -> Result<PendingTarball, WriteError> {
    let started = Instant::now();
    let WriteOptions {
        mtime,
        compression,
        cache,
        hash_output,
    } = *options;
    let level = compression.validate()?;
    let finish_error = |source| WriteError::Finish {
        path: destination.to_path_buf(),
        source,
    };
    let sink = if is_stdout(destination) {
        if !plan.overridden().is_empty() {
            return Err(WriteError::OverrideToStream);
        }
        Sink::Stream(Stream::open()?)
    } else {
        let output = AtomicOutput::create(destination)?;
        let file = output.try_clone_file().map_err(finish_error)?;
        // Past the page cache where the file system allows: see
        // crate::direct_write.
        let direct = DirectWriter::new(file).map_err(finish_error)?;
        Sink::File { direct, output }
    };
    let mut hashing = if hash_output {
        HashingWriter::new(sink)
    } else {
        HashingWriter::counting(sink)
    };
    let gzip = compression.compression == Compression::Gzip;
    // Everything a store path's segment depends on besides its contents;
    // see crate::cache.
    let cache = cache.filter(|_| gzip).map(|cache| {
        let scan = scanner.as_ref().map_or_else(
            || "none".to_owned(),
            |s| hex::encode(&s.rules().fingerprint()),
        );
        let settings = format!(
            "mtime={mtime} level={level} owners={:?} scan={scan}",
            plan.chown_rules()
        );
        (cache, settings)
    });
    let encoder = SegmentEncoder::new(plan, mtime, scanner.as_ref(), cache.clone());
    // A failed write into the compressed file names the file.
    let name_destination = |error: WriteError| match error {
        WriteError::Tar(TarError::Write(source)) => finish_error(source),
        other => other,
    };
    let threads = compression.threads;
    let assembled = if gzip {
        let format = PieceFormat::Gzip {
            level,
            keep_tar: false,
        };
        let cache = cache.map(|(cache, _)| cache);
        assemble(encoder, format, threads, &mut hashing, cache, progress)
            .map_err(name_destination)?
    } else {
        let mut compressor = Compressor::new(&mut hashing, compression)?;
        let format = PieceFormat::Tar;
        let assembled = assemble(encoder, format, threads, &mut compressor, None, progress)
            .map_err(name_destination)?;
        compressor.finish().map_err(finish_error)?;
        assembled
    };
    let (sink, output_sha256, output_bytes) = hashing.finish();
    let output = match sink {
        Sink::File { direct, output } => {
            drop(direct.finish().map_err(finish_error)?);
            if !plan.overridden().is_empty() {
                verify_overrides(plan, &output)?;
            }
            Destination::File(output)
        }
        Sink::Stream(mut stream) => {
            io::Write::flush(&mut stream).map_err(finish_error)?;
            Destination::Stream(stream)
        }
    };
    let scan = scanner.map(|scanner| scanner.judge(assembled.scans));
    Ok(PendingTarball {
        damaged_cache_segments: assembled.damaged,
        cache_store_failure: assembled.cache_store_failure,
        output,
        summary: WriteSummary {
            store_paths: plan.store_paths().len(),
            tar: assembled.stats,
            output_bytes,
            output_sha256,
            elapsed: started.elapsed(),
        },
        scan,
    })
}

/// Verifies the complete temporary file of a plan with `--allow-override`
/// replacements: the user's files must still give a tarball that `verify`
/// accepts.
fn verify_overrides(plan: &Plan, output: &AtomicOutput) -> Result<(), WriteError> {
    // The temporary file, whether or not it has a name.
    let path = PathBuf::from(format!("/proc/self/fd/{}", output.file().as_raw_fd()));
    let verification = verify(&path, !plan.has_skeleton()).map_err(WriteError::Verify)?;
    if verification.passed() {
        return Ok(());
    }
    Err(WriteError::OverrideRejected {
        paths: plan.overridden().to_vec(),
        failures: verification
            .failures()
            .map(|(_, failure)| failure.to_owned())
            .collect(),
    })
}

/// Runs `plan` through the pipeline into nothing, for the scan alone, on
/// `threads` workers.
pub fn check_plan(
    plan: &Plan,
    mtime: u64,
    scanner: Scanner,
    threads: usize,
) -> Result<ScanReport, WriteError> {
    let encoder = SegmentEncoder::new(plan, mtime, Some(&scanner), None);
    let format = PieceFormat::Discard;
    let assembled = assemble(encoder, format, threads, &mut io::sink(), None, &mut ())?;
    Ok(scanner.judge(assembled.scans))
}
