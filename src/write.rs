//! The `write` pipeline: plan ─► tar ─► compression ─► atomic output.
//!
//! Everything streams: entries are walked ahead on other threads, each file
//! is read in chunks straight into the tar writer, the compressor works on
//! fixed blocks in parallel, and the compressed bytes go to a temporary file
//! that is renamed over the destination only when everything succeeded.

use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::compress::{CompressError, CompressOptions, Compressor};
use crate::output::{AtomicOutput, OutputError};
use crate::plan::{Plan, PlanError};
use crate::tar::{TarError, TarStats, TarWriter};

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
}

/// What a finished write did.
#[derive(Debug, Clone, Copy)]
pub struct WriteSummary {
    pub store_paths: usize,
    pub tar: TarStats,
    /// Size of the compressed file.
    pub output_bytes: u64,
    pub elapsed: Duration,
}

/// Writes `plan` as a compressed tarball to `destination`, atomically.
pub fn write_tarball(
    plan: &Plan,
    destination: &Path,
    mtime: u64,
    compression: &CompressOptions,
) -> Result<WriteSummary, WriteError> {
    let started = Instant::now();
    let output = AtomicOutput::create(destination)?;
    let finish_error = |source| WriteError::Finish {
        path: destination.to_path_buf(),
        source,
    };
    let file = output.try_clone_file().map_err(finish_error)?;
    let compressor = Compressor::new(BufWriter::with_capacity(1 << 20, file), compression)?;
    let mut tar = TarWriter::new(compressor, mtime);
    plan.for_each_entry(|entry| tar.append(entry).map_err(WriteError::from))?;
    let (compressor, tar_stats) = tar.finish()?;
    let mut buffered = compressor.finish().map_err(finish_error)?;
    buffered.flush().map_err(finish_error)?;
    drop(buffered);
    let output_bytes = output.commit()?;
    Ok(WriteSummary {
        store_paths: plan.store_paths().len(),
        tar: tar_stats,
        output_bytes,
        elapsed: started.elapsed(),
    })
}
