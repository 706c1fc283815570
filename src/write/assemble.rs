//! A plan's segments through the one pipeline ([`crate::pipeline`]) into
//! the output: the sinks of a write are the output file, the cache stores
//! (`store.rs`) and the progress; the end of the archive follows the last
//! segment.

use std::io::Write;

use super::segment::SegmentEncoder;
use super::store::CacheStores;
use super::WriteError;
use crate::cache::{CacheError, DamagedSegment, SegmentCache};
use crate::compress::gzip_member;
use crate::pipeline::{OutputSink, PieceFormat, Pipeline, ProgressSink};
use crate::progress::Progress;
use crate::scan::SegmentScan;
use crate::tar::{end_of_archive_len, TarError, TarStats};

/// What the whole archive amounted to.
#[derive(Debug)]
pub(super) struct Assembled {
    pub stats: TarStats,
    /// Every segment's scan, in archive order (empty without a scanner).
    pub scans: Vec<SegmentScan>,
    pub damaged: Vec<DamagedSegment>,
    /// Why the cache stopped taking new segments, if it did (the write
    /// goes on without storing).
    pub cache_store_failure: Option<CacheError>,
}

/// Runs `encoder`'s segments on `threads` workers and writes every piece,
/// then the end of the archive, into `out` in archive order. `progress`
/// hears how many tar bytes are written; `cache` stores what was
/// compressed afresh (gzip only).
pub(super) fn assemble(
    encoder: SegmentEncoder<'_>,
    format: PieceFormat,
    threads: usize,
    out: &mut dyn Write,
    cache: Option<&SegmentCache>,
    progress: &mut dyn Progress,
) -> Result<Assembled, WriteError> {
    let pipeline = Pipeline::new(encoder, format, threads);
    let mut progress = ProgressSink::new(progress);
    let (segments, cache_store_failure) = std::thread::scope(|scope| {
        let stores = cache.map(|cache| CacheStores::start(scope, cache, pipeline.source()));
        let mut sink = (OutputSink(&mut *out), (&mut progress, stores));
        let segments = pipeline.run(&mut sink);
        let (_, (_, stores)) = sink;
        (segments, stores.and_then(CacheStores::finish))
    });
    let segments = segments?;
    let mut stats = TarStats::default();
    let mut scans = Vec::new();
    let mut damaged = Vec::new();
    for segment in segments {
        stats.add(&segment.stats);
        scans.extend(segment.scan);
        damaged.extend(segment.damaged);
    }
    stats.archive_bytes = progress.tar_bytes;
    let end = vec![0; end_of_archive_len(stats.archive_bytes)];
    let write_error = |source| WriteError::Tar(TarError::Write(source));
    match format {
        PieceFormat::Gzip { level, .. } => {
            let member = gzip_member(&end, level).map_err(WriteError::Compress)?;
            out.write_all(&member.bytes).map_err(write_error)?;
        }
        PieceFormat::Tar => out.write_all(&end).map_err(write_error)?,
        PieceFormat::Discard => {}
    }
    stats.archive_bytes += end.len() as u64;
    progress.finish(end.len() as u64);
    Ok(Assembled {
        stats,
        scans,
        damaged,
        cache_store_failure,
    })
}
