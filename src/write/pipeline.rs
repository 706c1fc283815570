//! The parallel pipeline behind `write`: every stage on every core, the
//! calling thread only puts finished pieces in order.
//!
//! ```text
//! Plan::segments ─► workers (N threads): walk ─► read ─► tar ─► scan + NAR hash ─► pieces
//!                                        └──── compress pieces (gzip members) ◄──┘
//!                   calling thread: pieces of segment 0, 1, 2 … in order ─► output
//! ```
//!
//! Each worker takes the next segment (a store path, or a run of members the
//! tool makes) and encodes it ([`SegmentEncoder`]), handing its tar bytes on
//! in [`GZIP_MEMBER_SIZE`] pieces. A gzip piece goes to a small queue of
//! compression jobs that idle workers take, or, when the queue is full, is
//! compressed by the worker itself; workers take queued jobs of older
//! segments before going on with their own. Other formats hand the tar
//! pieces on as they are, and the calling thread feeds them to the stream
//! compressor (xz and zstd run their own threads). So one large store path
//! keeps every core busy, and many small ones are read in parallel.
//!
//! Memory is bounded whatever the closure's size: the segment being written
//! (the head) may hold at most [`HEAD_HELD_LIMIT`] bytes that are not yet
//! written; the segments after it together at most [`HELD_LIMIT`]. A worker
//! over its limit helps with queued compression jobs or waits for the
//! writer. The head never waits on the others, so the pipeline cannot
//! deadlock.
//!
//! Errors are deterministic: the write fails with the error of the first
//! failing segment in archive order; later segments are cancelled.

use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Condvar, Mutex, MutexGuard};

use super::segment::{cache_metadata, Chunk, Encoded, Piece, PieceSink, SegmentEncoder, Stop};
use super::WriteError;
use crate::cache::{
    CacheError, DamagedSegment, SegmentCache, SegmentFile, SegmentKey, SegmentWriter,
};
use crate::compress::{gzip_member, GZIP_MEMBER_SIZE};
use crate::plan::Segment;
use crate::progress::{Progress, REPORT_EVERY};
use crate::scan::SegmentScan;
use crate::tar::{end_of_archive_len, TarError, TarStats};

/// The most bytes the head segment may hold unwritten.
const HEAD_HELD_LIMIT: usize = 16 * GZIP_MEMBER_SIZE;
/// The most bytes all later segments may hold together.
const HELD_LIMIT: usize = 64 * GZIP_MEMBER_SIZE;
/// The most segments started ahead of the head.
const MAX_AHEAD: usize = 1024;

/// What the pipeline makes of the pieces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PieceFormat {
    /// Each piece becomes one gzip member at this level.
    Gzip { level: u32 },
    /// Pieces are written as tar bytes (for a stream compressor).
    Tar,
    /// Pieces are dropped (a scan without output).
    Discard,
}

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

/// A compression job: piece `index` of segment `segment`.
struct Job {
    segment: usize,
    index: usize,
    input: Vec<u8>,
}

/// A finished piece, waiting to be written.
enum Ready {
    Chunk(Chunk),
    /// Copied from the cache file (holds no memory).
    Cached(SegmentFile),
}

impl Ready {
    /// Bytes it holds in memory.
    fn held(&self) -> usize {
        match self {
            Ready::Chunk(chunk) => chunk.bytes.len(),
            Ready::Cached(_) => 0,
        }
    }
}

/// A started segment that is not yet written.
#[derive(Default)]
struct Slot {
    /// Finished pieces by number.
    ready: BTreeMap<usize, Ready>,
    next_to_write: usize,
    /// Bytes of its pieces queued or ready.
    held: usize,
    done: Option<Encoded>,
    failure: Option<WriteError>,
}

struct State {
    next_to_start: usize,
    /// The segment being written.
    head: usize,
    /// Workers encoding a segment right now.
    encoding: usize,
    jobs: VecDeque<Job>,
    slots: BTreeMap<usize, Slot>,
    /// Bytes of queued and ready pieces of every segment.
    held: usize,
    /// The first segment, in archive order, that failed.
    first_failure: Option<usize>,
    /// The writer gave up: workers stop.
    abandoned: bool,
}

impl State {
    fn fail(&mut self, segment: usize, error: WriteError) {
        if let Some(slot) = self.slots.get_mut(&segment) {
            slot.failure.get_or_insert(error);
        }
        self.first_failure = Some(self.first_failure.map_or(segment, |f| f.min(segment)));
    }

    fn cancelled(&self, segment: usize) -> bool {
        self.abandoned || self.first_failure.is_some_and(|f| f < segment)
    }

    /// Takes the oldest job, accounting for its bytes.
    fn take_job(&mut self) -> Option<Job> {
        let job = self.jobs.pop_front()?;
        self.release(job.segment, job.input.len());
        Some(job)
    }

    fn hold(&mut self, segment: usize, bytes: usize) {
        self.held += bytes;
        if let Some(slot) = self.slots.get_mut(&segment) {
            slot.held += bytes;
        }
    }

    fn release(&mut self, segment: usize, bytes: usize) {
        self.held -= bytes;
        if let Some(slot) = self.slots.get_mut(&segment) {
            slot.held -= bytes;
        }
    }

    /// Whether segment `segment` holds more than it may.
    fn over_limit(&self, segment: usize) -> bool {
        if segment == self.head {
            self.slots
                .get(&segment)
                .is_some_and(|s| s.held > HEAD_HELD_LIMIT)
        } else {
            self.held > HELD_LIMIT
        }
    }
}

/// The pipeline: see the module docs.
pub(super) struct Pipeline<'a> {
    pub encoder: SegmentEncoder<'a>,
    pub segments: Vec<Segment<'a>>,
    /// Each segment's cache key (a store path's, when there is a cache),
    /// derived once: the worker looks it up, the writer stores under it.
    keys: Vec<Option<SegmentKey>>,
    pub format: PieceFormat,
    /// Worker threads (at least 1).
    pub threads: usize,
    state: Mutex<State>,
    changed: Condvar,
    /// Piece buffers to reuse (allocating and faulting in 1 MiB per piece
    /// cost more than the scan).
    spare: Mutex<Vec<Vec<u8>>>,
}

impl<'a> Pipeline<'a> {
    pub fn new(
        encoder: SegmentEncoder<'a>,
        segments: Vec<Segment<'a>>,
        format: PieceFormat,
        threads: usize,
    ) -> Self {
        let keys = segments
            .iter()
            .map(|segment| match segment {
                Segment::StorePath(path) => encoder.cache_key(path),
                Segment::Members(_) => None,
            })
            .collect();
        Pipeline {
            encoder,
            segments,
            keys,
            format,
            threads: threads.max(1),
            state: Mutex::new(State {
                next_to_start: 0,
                head: 0,
                encoding: 0,
                jobs: VecDeque::new(),
                slots: BTreeMap::new(),
                held: 0,
                first_failure: None,
                abandoned: false,
            }),
            changed: Condvar::new(),
            spare: Mutex::new(Vec::new()),
        }
    }

    /// Runs the workers and writes every piece, then the end of the
    /// archive, into `out` in archive order. `progress` hears how many tar
    /// bytes are written; `cache` stores what was compressed afresh.
    pub fn run(
        &self,
        out: &mut dyn Write,
        cache: Option<&SegmentCache>,
        progress: &mut dyn Progress,
    ) -> Result<Assembled, WriteError> {
        std::thread::scope(|scope| {
            for _ in 0..self.threads {
                scope.spawn(|| self.work());
            }
            let result = self.write_in_order(out, cache, progress);
            // Whatever happened, the workers stop.
            self.lock().abandoned = true;
            self.changed.notify_all();
            result
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn wait<'g>(&self, guard: MutexGuard<'g, State>) -> MutexGuard<'g, State> {
        self.changed
            .wait(guard)
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A worker: compression jobs first, then the next segment, until
    /// everything is encoded.
    fn work(&self) {
        let mut state = self.lock();
        loop {
            if state.abandoned {
                return;
            }
            if let Some(job) = state.take_job() {
                drop(state);
                self.compress(job);
                state = self.lock();
                continue;
            }
            let next = state.next_to_start;
            let startable = next < self.segments.len()
                && !state.cancelled(next)
                && (next == state.head
                    || (state.held <= HELD_LIMIT && next - state.head < MAX_AHEAD));
            if startable {
                state.next_to_start += 1;
                state.encoding += 1;
                state.slots.insert(next, Slot::default());
                drop(state);
                let outcome = catch_unwind(AssertUnwindSafe(|| {
                    let key = self.keys[next].as_ref();
                    self.encoder.encode(next, &self.segments[next], key, self)
                }));
                state = self.lock();
                state.encoding -= 1;
                match outcome {
                    Ok(Ok(encoded)) => {
                        if let Some(slot) = state.slots.get_mut(&next) {
                            slot.done = Some(encoded);
                        }
                    }
                    Ok(Err(Stop::Failed(error))) => state.fail(next, error),
                    Ok(Err(Stop::Cancelled)) => {}
                    Err(_) => state.fail(next, WriteError::WorkerPanicked),
                }
                self.changed.notify_all();
                continue;
            }
            let all_started = next >= self.segments.len() || state.cancelled(next);
            if all_started && state.encoding == 0 && state.jobs.is_empty() {
                return;
            }
            state = self.wait(state);
        }
    }

    /// Runs a compression job and hands its member on.
    fn compress(&self, job: Job) {
        let Job {
            segment,
            index,
            input,
        } = job;
        let level = match self.format {
            PieceFormat::Gzip { level } => level,
            PieceFormat::Tar | PieceFormat::Discard => unreachable!("only gzip queues jobs"),
        };
        let result = catch_unwind(AssertUnwindSafe(|| gzip_member(&input, level)));
        let input_len = input.len() as u64;
        self.recycle(input);
        let mut state = self.lock();
        match result {
            Ok(Ok(member)) => {
                let chunk = Chunk {
                    bytes: member.bytes,
                    input_len,
                    crc: member.crc,
                };
                Self::deliver(&mut state, segment, index, Ready::Chunk(chunk));
            }
            Ok(Err(error)) => state.fail(segment, WriteError::Compress(error)),
            Err(_) => state.fail(segment, WriteError::WorkerPanicked),
        }
        self.changed.notify_all();
    }

    /// Keeps a piece buffer for reuse.
    fn recycle(&self, mut buffer: Vec<u8>) {
        let mut spare = self.spare.lock().unwrap_or_else(|p| p.into_inner());
        if spare.len() < 2 * self.threads + 2 && buffer.capacity() >= GZIP_MEMBER_SIZE {
            buffer.clear();
            spare.push(buffer);
        }
    }

    fn deliver(state: &mut State, segment: usize, index: usize, ready: Ready) {
        let bytes = ready.held();
        if let Some(slot) = state.slots.get_mut(&segment) {
            slot.ready.insert(index, ready);
            state.hold(segment, bytes);
        }
    }

    /// The calling thread's part: writes the segments' pieces in order.
    fn write_in_order(
        &self,
        out: &mut dyn Write,
        cache: Option<&SegmentCache>,
        progress: &mut dyn Progress,
    ) -> Result<Assembled, WriteError> {
        let write_error = |source| WriteError::Tar(TarError::Write(source));
        let mut assembled = Assembled {
            stats: TarStats::default(),
            scans: Vec::new(),
            damaged: Vec::new(),
            cache_store_failure: None,
        };
        let mut reported = 0;
        for segment in 0..self.segments.len() {
            // A store path compressed afresh goes into the cache as it is
            // written: its entry, the members so far, and their CRC.
            let mut storing: Option<(SegmentWriter, crc32fast::Hasher)> = None;
            let mut first = true;
            loop {
                let (ready, done) = self.next_piece(segment)?;
                let input_len = match ready {
                    Some(Ready::Chunk(chunk)) if self.format == PieceFormat::Tar => {
                        out.write_all(&chunk.bytes).map_err(write_error)?;
                        let input_len = chunk.input_len;
                        self.recycle(chunk.bytes);
                        input_len
                    }
                    Some(Ready::Chunk(chunk)) => {
                        out.write_all(&chunk.bytes).map_err(write_error)?;
                        if std::mem::take(&mut first) && assembled.cache_store_failure.is_none() {
                            storing = self.begin_store(cache, segment, &mut assembled);
                        }
                        if let Some((writer, crc)) = &mut storing {
                            crc.combine(&crc32fast::Hasher::new_with_initial_len(
                                chunk.crc,
                                chunk.input_len,
                            ));
                            if let Err(error) = writer.write_members(&chunk.bytes) {
                                assembled.cache_store_failure = Some(error);
                                storing = None;
                            }
                        }
                        chunk.input_len
                    }
                    Some(Ready::Cached(mut found)) => {
                        found.copy_members(out).map_err(write_error)?;
                        found.input_len
                    }
                    None => {
                        let Some(encoded) = done else { continue };
                        let archive_bytes = assembled.stats.archive_bytes;
                        assembled.stats.add(&encoded.stats);
                        assembled.stats.archive_bytes = archive_bytes;
                        if let Some((writer, crc)) = storing.take() {
                            let metadata = cache_metadata(&encoded);
                            let finished =
                                writer.finish(&metadata, crc.total_len(), crc.finalize());
                            if let Err(error) = finished {
                                assembled.cache_store_failure = Some(error);
                            }
                        }
                        assembled.damaged.extend(encoded.damaged);
                        assembled.scans.extend(encoded.scan);
                        break;
                    }
                };
                let written = assembled.stats.archive_bytes + input_len;
                assembled.stats.archive_bytes = written;
                if written - reported >= REPORT_EVERY {
                    reported = written;
                    progress.advance(written);
                }
            }
        }
        let end = vec![0; end_of_archive_len(assembled.stats.archive_bytes)];
        match self.format {
            PieceFormat::Gzip { level } => {
                let member = gzip_member(&end, level).map_err(WriteError::Compress)?;
                out.write_all(&member.bytes).map_err(write_error)?;
            }
            PieceFormat::Tar => out.write_all(&end).map_err(write_error)?,
            PieceFormat::Discard => {}
        }
        assembled.stats.archive_bytes += end.len() as u64;
        progress.advance(assembled.stats.archive_bytes);
        Ok(assembled)
    }

    /// Starts the cache entry of a store path that is being compressed
    /// afresh; a cache that cannot take it is noted, and not used again.
    fn begin_store(
        &self,
        cache: Option<&SegmentCache>,
        segment: usize,
        assembled: &mut Assembled,
    ) -> Option<(SegmentWriter, crc32fast::Hasher)> {
        let key = self.keys[segment].as_ref()?;
        match cache?.begin_store(key) {
            Ok(writer) => Some((writer, crc32fast::Hasher::new())),
            Err(error) => {
                assembled.cache_store_failure = Some(error);
                None
            }
        }
    }

    /// Waits for the next piece of `segment` (`(Some, None)`), or for its
    /// end once every piece is written (`(None, Some)`).
    fn next_piece(&self, segment: usize) -> Result<(Option<Ready>, Option<Encoded>), WriteError> {
        let mut state = self.lock();
        loop {
            if let Some(slot) = state.slots.get_mut(&segment) {
                if let Some(error) = slot.failure.take() {
                    return Err(error);
                }
                let next = slot.next_to_write;
                if let Some(ready) = slot.ready.remove(&next) {
                    slot.next_to_write += 1;
                    state.release(segment, ready.held());
                    self.changed.notify_all();
                    return Ok((Some(ready), None));
                }
                if slot.done.as_ref().is_some_and(|d| d.pieces == next) {
                    let encoded = state.slots.remove(&segment).and_then(|s| s.done);
                    state.head = segment + 1;
                    self.changed.notify_all();
                    return Ok((None, encoded));
                }
            }
            state = self.wait(state);
        }
    }
}

impl PieceSink for Pipeline<'_> {
    fn put(&self, segment: usize, index: usize, piece: Piece) -> Result<(), Stop> {
        let input = match (piece, self.format) {
            (Piece::Tar(input), PieceFormat::Discard) => {
                // Only counted.
                let chunk = Chunk {
                    input_len: input.len() as u64,
                    bytes: Vec::new(),
                    crc: 0,
                };
                self.recycle(input);
                return self.hand_over(segment, index, Ready::Chunk(chunk));
            }
            (Piece::Cached(found), _) => {
                return self.hand_over(segment, index, Ready::Cached(found));
            }
            (Piece::Tar(input), PieceFormat::Tar) => {
                let chunk = Chunk {
                    input_len: input.len() as u64,
                    bytes: input,
                    crc: 0,
                };
                return self.hand_over(segment, index, Ready::Chunk(chunk));
            }
            (Piece::Tar(input), PieceFormat::Gzip { .. }) => input,
        };
        let mut state = self.lock();
        if state.cancelled(segment) {
            return Err(Stop::Cancelled);
        }
        if state.jobs.len() + 1 < self.threads {
            state.hold(segment, input.len());
            state.jobs.push_back(Job {
                segment,
                index,
                input,
            });
            self.changed.notify_all();
        } else {
            drop(state);
            self.compress(Job {
                segment,
                index,
                input,
            });
            state = self.lock();
        }
        self.throttle(state, segment)
    }

    fn buffer(&self) -> Vec<u8> {
        let spare = self.spare.lock().unwrap_or_else(|p| p.into_inner()).pop();
        spare.unwrap_or_else(|| Vec::with_capacity(GZIP_MEMBER_SIZE))
    }

    fn check(&self, segment: usize) -> Result<(), Stop> {
        if self.lock().cancelled(segment) {
            return Err(Stop::Cancelled);
        }
        Ok(())
    }
}

impl Pipeline<'_> {
    /// Puts a finished piece where the writer finds it, then throttles.
    fn hand_over(&self, segment: usize, index: usize, ready: Ready) -> Result<(), Stop> {
        let mut state = self.lock();
        Self::deliver(&mut state, segment, index, ready);
        self.changed.notify_all();
        self.throttle(state, segment)
    }

    /// After a piece of `segment` was handed on: does older segments' queued
    /// work, then waits (helping with any job) while `segment` holds more
    /// than it may.
    fn throttle<'s>(
        &'s self,
        mut state: MutexGuard<'s, State>,
        segment: usize,
    ) -> Result<(), Stop> {
        loop {
            if state.cancelled(segment) {
                return Err(Stop::Cancelled);
            }
            let older_job = state.jobs.front().is_some_and(|job| job.segment < segment);
            let over = state.over_limit(segment);
            if older_job || over {
                if let Some(job) = state.take_job() {
                    drop(state);
                    self.compress(job);
                    state = self.lock();
                    continue;
                }
            }
            if !over {
                return Ok(());
            }
            state = self.wait(state);
        }
    }
}
