//! The `write` pipeline: plan ─► tar ─► compression ─► atomic output.
//!
//! Everything streams: entries are walked ahead on other threads, each file
//! is read in chunks straight into the tar writer, the compressor works on
//! fixed blocks in parallel, and the compressed bytes go to a temporary file
//! that is renamed over the destination only when everything succeeded.
//!
//! With security checks, a [`Scanner`] sees every member and byte on its own
//! thread while they are written; [`write_tarball`] hands back a
//! [`PendingTarball`] with the report, and the caller commits it or drops it
//! (leaving nothing at the destination). [`check_plan`] runs the same scan
//! without writing anything.

use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::compress::{CompressError, CompressOptions, Compressor};
use crate::manifest::HashingWriter;
use crate::output::{AtomicOutput, OutputError};
use crate::plan::{Plan, PlanError};
use crate::progress::{Progress, ProgressWriter};
use crate::scan::{BackgroundScanner, ScanReport, Scanner};
use crate::tar::{ContentObserver, TarError, TarStats, TarWriter};

/// Why the tarball could not be written. Nothing is left at the destination.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Tar(#[from] TarError),
    #[error("compression options: {0}")]
    CompressOptions(#[from] CompressError),
    #[error("writing {}: {source}", path.display())]
    Finish {
        path: std::path::PathBuf,
        source: io::Error,
    },
    #[error("the security scan thread failed")]
    ScanThread,
}

/// What a finished write did.
#[derive(Debug, Clone, Copy)]
pub struct WriteSummary {
    pub store_paths: usize,
    pub tar: TarStats,
    /// Size of the compressed file.
    pub output_bytes: u64,
    /// SHA-256 of the compressed file, hashed as it was written.
    pub output_sha256: [u8; 32],
    pub elapsed: Duration,
}

/// A complete, synced-on-commit tarball in its temporary file: not at the
/// destination until [`PendingTarball::commit`]; dropping it removes it.
#[derive(Debug)]
pub struct PendingTarball {
    output: AtomicOutput,
    summary: WriteSummary,
    scan: Option<ScanReport>,
}

impl PendingTarball {
    /// What was written (`output_bytes` is known after commit).
    pub fn summary(&self) -> &WriteSummary {
        &self.summary
    }

    /// The security report, if a scanner was given.
    pub fn scan_report(&self) -> Option<&ScanReport> {
        self.scan.as_ref()
    }

    /// Moves the tarball to its destination.
    pub fn commit(self) -> Result<WriteSummary, WriteError> {
        let output_bytes = self.output.commit()?;
        Ok(WriteSummary {
            output_bytes,
            ..self.summary
        })
    }
}

/// Writes `plan` as a compressed tarball into a temporary file beside
/// `destination`, scanning it with `scanner` if given. Nothing reaches the
/// destination until the caller commits the result. `progress` hears how
/// many tar bytes are done.
pub fn write_tarball(
    plan: &Plan,
    destination: &Path,
    mtime: u64,
    compression: &CompressOptions,
    scanner: Option<Scanner>,
    progress: &mut dyn Progress,
) -> Result<PendingTarball, WriteError> {
    let started = Instant::now();
    let output = AtomicOutput::create(destination)?;
    let finish_error = |source| WriteError::Finish {
        path: destination.to_path_buf(),
        source,
    };
    let file = output.try_clone_file().map_err(finish_error)?;
    let hashing = HashingWriter::new(BufWriter::with_capacity(1 << 20, file));
    let compressor = ProgressWriter::new(Compressor::new(hashing, compression)?, progress);
    let (compressor, tar_stats, scan) = match scanner {
        Some(scanner) => {
            let background = BackgroundScanner::spawn(scanner);
            let (compressor, background, stats) = stream_plan(plan, compressor, mtime, background)?;
            let report = background.finish().ok_or(WriteError::ScanThread)?;
            (compressor, stats, Some(report))
        }
        None => {
            let (compressor, (), stats) = stream_plan(plan, compressor, mtime, ())?;
            (compressor, stats, None)
        }
    };
    let hashing = compressor.finish().finish().map_err(finish_error)?;
    let (mut buffered, output_sha256, _) = hashing.finish();
    buffered.flush().map_err(finish_error)?;
    drop(buffered);
    Ok(PendingTarball {
        output,
        summary: WriteSummary {
            store_paths: plan.store_paths().len(),
            tar: tar_stats,
            output_bytes: 0,
            output_sha256,
            elapsed: started.elapsed(),
        },
        scan,
    })
}

/// Runs `plan` through the tar writer into nothing, for the scan alone.
pub fn check_plan(plan: &Plan, mtime: u64, scanner: Scanner) -> Result<ScanReport, WriteError> {
    let background = BackgroundScanner::spawn(scanner);
    let (_, background, _) = stream_plan(plan, io::sink(), mtime, background)?;
    background.finish().ok_or(WriteError::ScanThread)
}

/// Streams every entry of `plan` through a tar writer into `inner`.
fn stream_plan<W: Write, O: ContentObserver>(
    plan: &Plan,
    inner: W,
    mtime: u64,
    observer: O,
) -> Result<(W, O, TarStats), WriteError> {
    let mut tar = TarWriter::with_observer(inner, mtime, observer);
    plan.for_each_entry(|entry| tar.append(entry).map_err(WriteError::from))?;
    Ok(tar.finish_observed()?)
}
