//! The `write` pipeline: plan ─► tar ─► compression ─► atomic output.
//!
//! Everything streams: entries are walked ahead on other threads, each file
//! is read in chunks straight into the tar writer, the compressor works on
//! fixed blocks in parallel, and the compressed bytes go to a temporary file
//! that is renamed over the destination only when everything succeeded.
//!
//! Every store path's members are hashed as a NAR while they are written
//! ([`NarCheck`]) and must match the closure's `narHash` and `narSize`;
//! otherwise the write fails and nothing reaches the destination.
//!
//! When `--allow-override` replaced files the tool makes, the complete
//! temporary file is verified ([`crate::inspect::verify`]) before it is
//! handed back: `write` never produces a tarball that `verify` rejects.
//!
//! With security checks, a [`Scanner`] sees every member and byte as they
//! are written, on the writing thread; [`write_tarball`] hands back a
//! [`PendingTarball`] with the report, and the caller commits it or drops it
//! (leaving nothing at the destination). [`check_plan`] runs the same scan
//! without writing anything.

use std::cell::RefCell;
use std::io::{self, BufWriter, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::cache::{CacheError, DamagedSegment, SegmentCache, SegmentKey};
use crate::compress::{CompressError, CompressOptions, Compressor};
use crate::inspect::{verify, InspectError};
use crate::manifest::HashingWriter;
use crate::nar_check::{NarCheck, NarCheckError, NarDigest};
use crate::output::{commit_all, AtomicOutput, OutputError};
use crate::plan::{Plan, PlanError, PlanItem};
use crate::progress::{Progress, ProgressWriter};
use crate::scan::{ScanReport, Scanner};
use crate::store::NarHash;
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
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error(transparent)]
    Nar(#[from] NarCheckError),
    #[error("--allow-override {}: with these replacements the tarball fails verify, so it was not written: {}", paths.join(", "), failures.join("; "))]
    OverrideRejected {
        paths: Vec<String>,
        failures: Vec<String>,
    },
    #[error("verifying the tarball before it is committed: {0}")]
    Verify(#[source] InspectError),
    #[error("--cache: the segment for {path} holds {cached} bytes but the store path now makes {actual}; delete the cache directory")]
    CacheMismatch {
        path: String,
        cached: u64,
        actual: u64,
    },
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
    damaged_cache_segments: Vec<DamagedSegment>,
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

    /// Moves the tarball to its destination.
    pub fn commit(self) -> Result<WriteSummary, WriteError> {
        self.commit_with(Vec::new())
    }

    /// Moves the tarball and `companions` (its manifest) to their
    /// destinations as one transaction (see [`crate::output::commit_all`]):
    /// if any cannot be committed, none replaces its destination.
    pub fn commit_with(self, companions: Vec<AtomicOutput>) -> Result<WriteSummary, WriteError> {
        let mut outputs = vec![self.output];
        outputs.extend(companions);
        commit_all(outputs)?;
        Ok(self.summary)
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
    cache: Option<&SegmentCache>,
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
    // Everything a store path's compressed bytes depend on besides its
    // contents; see crate::cache.
    let settings = format!(
        "mtime={mtime} level={} owners={:?}",
        compression.validate()?,
        plan.chown_rules()
    );
    let segments = SegmentedStream {
        cache,
        settings,
        damaged: RefCell::new(Vec::new()),
    };
    // A failed write into the compressed file names the file.
    let name_destination = |error: WriteError| match error {
        WriteError::Tar(TarError::Write(source)) => finish_error(source),
        other => other,
    };
    let (hashing, tar_stats, scan) = match scanner {
        Some(scanner) => {
            // Inline: on the writing thread, with no copy of the bytes.
            let (hashing, scanner, stats) = segments
                .stream(plan, compressor, mtime, scanner)
                .map_err(name_destination)?;
            (hashing, stats, Some(scanner.finish()))
        }
        None => {
            let (hashing, (), stats) = segments
                .stream(plan, compressor, mtime, ())
                .map_err(name_destination)?;
            (hashing, stats, None)
        }
    };
    let (mut buffered, output_sha256, output_bytes) = hashing.finish();
    buffered.flush().map_err(finish_error)?;
    drop(buffered);
    if !plan.overridden().is_empty() {
        verify_overrides(plan, &output)?;
    }
    Ok(PendingTarball {
        damaged_cache_segments: segments.damaged.into_inner(),
        output,
        summary: WriteSummary {
            store_paths: plan.store_paths().len(),
            tar: tar_stats,
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

/// Streams a plan with each store path compressed as its own gzip segment
/// (whole gzip members, none spanning a store-path boundary), so that its compressed bytes
/// can be stored in, and later spliced from, a [`SegmentCache`]. Output is
/// the same with or without the cache. Other formats stream plainly.
struct SegmentedStream<'c> {
    cache: Option<&'c SegmentCache>,
    settings: String,
    /// Cache entries that failed their checksum, in the order met.
    damaged: RefCell<Vec<DamagedSegment>>,
}

/// The compressed stream as the tar writer sees it.
type CompressedSink<'p, W> = ProgressWriter<'p, Compressor<W>>;

impl SegmentedStream<'_> {
    fn stream<'p, W: Write, O: ContentObserver>(
        &self,
        plan: &Plan,
        inner: CompressedSink<'p, W>,
        mtime: u64,
        observer: O,
    ) -> Result<(W, O, TarStats), WriteError> {
        let mut tar = TarWriter::with_observer(inner, mtime, (observer, NarCheck::new()));
        let segmented = tar.inner_mut().get_mut().supports_segments();
        let store_dir = plan.store_dir_in_archive();
        // Keys of the segments being compressed, by segment id.
        let mut keys: Vec<SegmentKey> = Vec::new();
        // The cached segment standing in for the store path being read.
        let mut hit: Option<(crate::compress::CompressedSegment, u64)> = None;
        plan.for_each_item(|item| -> Result<(), WriteError> {
            // Before anything is cached or spliced: the bytes read are the
            // NAR the closure states.
            match item {
                PlanItem::StorePathStart(path) => {
                    // Every store path of a plan has its closure info; one
                    // without could not be proven and fails the check.
                    let (hash, size) = plan.nar_info(path).unwrap_or((NarHash([0; 32]), 0));
                    tar.observer_mut().1.begin(
                        plan.store_path_display(path),
                        plan.host_path(path),
                        plan.store_path_in_archive(path),
                        NarDigest { hash, size },
                    );
                }
                PlanItem::StorePathEnd(_) => tar.observer_mut().1.end()?,
                PlanItem::Entry(_) => {}
            }
            match item {
                PlanItem::Entry(entry) => tar.append(entry)?,
                PlanItem::StorePathStart(path) if segmented => {
                    let nar_hash = plan.nar_hash(path).map(|h| h.to_sri()).unwrap_or_default();
                    let archive_path = format!(
                        "{}/{}",
                        String::from_utf8_lossy(&store_dir),
                        path.basename()
                    );
                    let key = SegmentKey::new(&archive_path, &nar_hash, &self.settings);
                    let cached = match self.cache.map(|cache| cache.load(&key)) {
                        Some(Ok(found)) => found.map(|cached| cached.segment),
                        Some(Err(damaged)) => {
                            // Compressed again below; the store replaces it.
                            self.damaged.borrow_mut().push(damaged);
                            None
                        }
                        None => None,
                    };
                    match cached {
                        Some(segment) => {
                            // Still read and scan every byte; skip compressing.
                            hit = Some((segment, tar.stats().archive_bytes));
                            tar.set_discarding(true);
                        }
                        None => {
                            tar.inner_mut()
                                .get_mut()
                                .begin_segment(keys.len() as u64)
                                .map_err(TarError::Write)?;
                            keys.push(key);
                        }
                    }
                }
                PlanItem::StorePathEnd(path) if segmented => {
                    if let Some((segment, started_at)) = hit.take() {
                        tar.set_discarding(false);
                        let actual = tar.stats().archive_bytes - started_at;
                        if actual != segment.input_len {
                            return Err(WriteError::CacheMismatch {
                                path: path.basename().to_owned(),
                                cached: segment.input_len,
                                actual,
                            });
                        }
                        let sink = tar.inner_mut();
                        sink.get_mut()
                            .append_segment(&segment)
                            .map_err(TarError::Write)?;
                        sink.count(segment.input_len);
                    } else {
                        let compressor = tar.inner_mut().get_mut();
                        compressor.end_segment().map_err(TarError::Write)?;
                        self.store(&keys, compressor.take_finished_segments())?;
                    }
                }
                PlanItem::StorePathStart(_) | PlanItem::StorePathEnd(_) => {}
            }
            Ok(())
        })?;
        let (sink, (observer, _), stats) = tar.finish_observed()?;
        let (inner, finished) = sink
            .finish()
            .finish_with_segments()
            .map_err(TarError::Write)?;
        self.store(&keys, finished)?;
        Ok((inner, observer, stats))
    }

    /// Stores finished segments in the cache, if there is one.
    fn store(
        &self,
        keys: &[SegmentKey],
        finished: Vec<(u64, crate::compress::CompressedSegment)>,
    ) -> Result<(), WriteError> {
        if let Some(cache) = self.cache {
            for (id, segment) in finished {
                if let Some(key) = usize::try_from(id).ok().and_then(|i| keys.get(i)) {
                    cache.store(key, &[], &segment)?;
                }
            }
        }
        Ok(())
    }
}

/// Runs `plan` through the tar writer into nothing, for the scan alone.
pub fn check_plan(plan: &Plan, mtime: u64, scanner: Scanner) -> Result<ScanReport, WriteError> {
    let (_, scanner, _) = stream_plan(plan, io::sink(), mtime, scanner)?;
    Ok(scanner.finish())
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
