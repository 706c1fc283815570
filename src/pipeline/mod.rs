//! The one pipeline behind every writer (`write`, `check`, `delta`,
//! `sign`): a list of segments ─► one worker pool ─► an ordered sink.
//!
//! ```text
//! SegmentSource (N segments) ─► workers (N threads): encode segment i ─► pieces
//!                                 └── compress pieces (gzip members) ◄──┘
//!   calling thread: pieces of segment 0, 1, 2 … in order ─► OrderedSink
//!                   (output, cache stores, export stream, progress: composed as (A, B))
//! ```
//!
//! A segment is one store path (or a run of members the tool makes, or a
//! run of a bundle's export records): a worker encodes it (the
//! [`SegmentSource`]: tar bytes, scan, NAR check) and hands its bytes on in
//! [`GZIP_MEMBER_SIZE`] [`Piece`]s through a [`PieceWriter`]. A piece is cut
//! at a fixed offset from its segment's start, so the output never depends
//! on the thread count. A gzip piece goes to a small queue of compression
//! jobs that idle workers take, or, when the queue is full, is compressed by
//! the worker itself into one gzip member; workers take queued jobs of older
//! segments before going on with their own. Other formats hand the tar
//! pieces on as they are (a stream compressor behind the sink takes them).
//! So one large store path keeps every core busy, and many small ones are
//! read in parallel.
//!
//! The calling thread only puts the finished pieces ([`ReadyPiece`]) in
//! order and hands each to the [`OrderedSink`], then tells it where each
//! segment ends. What the sinks do with them is theirs (`sink.rs`).
//!
//! Memory is bounded whatever the closure's size: the segment being written
//! (the head) may hold at most [`HEAD_HELD_LIMIT`] bytes that are not yet
//! written; the segments after it together at most [`HELD_LIMIT`]. A worker
//! over its limit helps with queued compression jobs or waits for the
//! writer. The head never waits on the others, so the pipeline cannot
//! deadlock.
//!
//! Errors are deterministic: the run fails with the error of the first
//! failing segment in archive order; later segments are cancelled.

mod sink;

use std::collections::{BTreeMap, VecDeque};
use std::io::{self, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crate::cache::SegmentFile;
use crate::compress::{gzip_member, GZIP_MEMBER_SIZE};

pub(crate) use sink::{OrderedSink, OutputSink, ProgressSink};

/// The most bytes the head segment may hold unwritten.
const HEAD_HELD_LIMIT: usize = 16 * GZIP_MEMBER_SIZE;
/// The most bytes all later segments may hold together.
const HELD_LIMIT: usize = 64 * GZIP_MEMBER_SIZE;
/// The most segments started ahead of the head.
const MAX_AHEAD: usize = 1024;

/// What the pipeline makes of the pieces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PieceFormat {
    /// Each piece becomes one gzip member at this level; with `keep_tar`
    /// the sink sees its tar bytes too (to hash them in order).
    Gzip { level: u32, keep_tar: bool },
    /// Pieces are handed on as tar bytes (for a stream compressor).
    Tar,
    /// Pieces are dropped (a scan without output).
    Discard,
}

/// What went wrong in the pipeline itself, whatever the segments are.
#[derive(Debug)]
pub(crate) enum Fault {
    /// A piece could not be compressed.
    Compress(io::Error),
    /// A worker thread panicked.
    Panicked,
    /// The output sink could not take a piece.
    Output(io::Error),
}

/// The segments of one run, encoded on the workers.
pub(crate) trait SegmentSource: Sync {
    /// What a segment amounted to (counts, scan findings), handed back in
    /// order.
    type Done: Send;
    /// Why a segment or the run failed.
    type Error: Send + From<Fault>;

    /// How many segments there are.
    fn len(&self) -> usize;

    /// Encodes segment `index`, handing its pieces to `out` in order
    /// (through a [`PieceWriter`], or [`PieceSink::put`] for a cache hit).
    fn encode(
        &self,
        index: usize,
        out: &dyn PieceSink<Self::Error>,
    ) -> Result<Self::Done, Stop<Self::Error>>;
}

/// What a segment hands the pipeline, piece by piece, in order.
pub(crate) enum Piece {
    /// Up to [`GZIP_MEMBER_SIZE`] tar bytes, to be compressed.
    Tar(Vec<u8>),
    /// A checked cached segment whose gzip members stand for the whole
    /// segment; they are copied from the file by the sink.
    Cached(SegmentFile),
}

/// A piece in its final form, as the ordered sink sees it.
pub(crate) enum ReadyPiece {
    /// Made on a worker.
    Made(MadePiece),
    /// Copied from the cache file (holds no memory).
    Cached(SegmentFile),
}

/// A piece made on a worker: a gzip member, tar bytes, or nothing.
pub(crate) struct MadePiece {
    /// The bytes that go into the output as they are (shared, so that a
    /// sink can keep them without a copy).
    pub bytes: Arc<Vec<u8>>,
    /// Tar bytes they stand for.
    pub tar_len: u64,
    /// CRC-32 of those tar bytes (gzip; 0 otherwise).
    pub crc: u32,
    /// Whether `bytes` is a gzip member.
    pub compressed: bool,
    /// The tar bytes themselves, kept beside a gzip member when the format
    /// asks for them.
    pub kept_tar: Option<Vec<u8>>,
}

impl MadePiece {
    /// The piece's tar bytes, if the sink can see them.
    pub fn tar(&self) -> Option<&[u8]> {
        match (&self.kept_tar, self.compressed) {
            (Some(tar), _) => Some(tar),
            (None, false) => Some(&self.bytes),
            (None, true) => None,
        }
    }
}

impl ReadyPiece {
    /// Tar bytes it stands for.
    pub fn tar_len(&self) -> u64 {
        match self {
            ReadyPiece::Made(piece) => piece.tar_len,
            ReadyPiece::Cached(found) => found.input_len,
        }
    }

    /// Bytes it holds in memory.
    fn held(&self) -> usize {
        match self {
            ReadyPiece::Made(piece) => {
                piece.bytes.len() + piece.kept_tar.as_ref().map_or(0, Vec::len)
            }
            ReadyPiece::Cached(_) => 0,
        }
    }
}

/// Why a segment stopped before it was encoded.
#[derive(Debug)]
pub(crate) enum Stop<E> {
    /// The segment cannot be written: the run fails with this.
    Failed(E),
    /// Another segment failed first, or the run was abandoned.
    Cancelled,
}

/// Where a segment's pieces go (the pipeline).
pub(crate) trait PieceSink<E> {
    /// Takes the segment's next piece; may wait while too much is held in
    /// memory.
    fn put(&self, segment: usize, piece: Piece) -> Result<(), Stop<E>>;
    /// Whether segment `segment` should stop now.
    fn check(&self, segment: usize) -> Result<(), Stop<E>>;
    /// An empty buffer for the next piece (recycled when possible).
    fn buffer(&self) -> Vec<u8>;
}

/// Cuts a segment's bytes into pieces of [`GZIP_MEMBER_SIZE`] and hands
/// them on: a segment's `Write` side.
pub(crate) struct PieceWriter<'s, E> {
    sink: &'s dyn PieceSink<E>,
    segment: usize,
    /// Pieces handed on so far.
    handed: usize,
    buffer: Vec<u8>,
    /// Why the sink refused a piece (the writer's caller sees an I/O
    /// error).
    stop: Option<Stop<E>>,
}

impl<'s, E> PieceWriter<'s, E> {
    pub fn new(sink: &'s dyn PieceSink<E>, segment: usize) -> Self {
        PieceWriter {
            sink,
            segment,
            handed: 0,
            buffer: Vec::new(),
            stop: None,
        }
    }

    /// Why the sink stopped the segment, if it did: a write that failed
    /// because of it should fail with this.
    pub fn take_stop(&mut self) -> Option<Stop<E>> {
        self.stop.take()
    }

    fn hand_on(&mut self) -> Result<(), Stop<E>> {
        let piece = std::mem::take(&mut self.buffer);
        self.handed += 1;
        self.sink.put(self.segment, Piece::Tar(piece))
    }

    /// Hands on the last, partial piece (an empty segment hands on one
    /// empty piece).
    pub fn finish(mut self) -> Result<(), Stop<E>> {
        if !self.buffer.is_empty() || self.handed == 0 {
            self.hand_on()?;
        }
        Ok(())
    }
}

impl<E> Write for PieceWriter<'_, E> {
    fn write(&mut self, mut bytes: &[u8]) -> io::Result<usize> {
        let written = bytes.len();
        while !bytes.is_empty() {
            if self.buffer.capacity() == 0 {
                self.buffer = self.sink.buffer();
            }
            let take = (GZIP_MEMBER_SIZE - self.buffer.len()).min(bytes.len());
            self.buffer.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.buffer.len() == GZIP_MEMBER_SIZE {
                if let Err(stop) = self.hand_on() {
                    self.stop = Some(stop);
                    return Err(io::Error::other("the segment was stopped"));
                }
            }
        }
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A compression job: piece `index` of segment `segment`.
struct Job {
    segment: usize,
    index: usize,
    input: Vec<u8>,
}

/// A started segment that is not yet written.
struct Slot<D, E> {
    /// Finished pieces by number.
    ready: BTreeMap<usize, ReadyPiece>,
    /// Pieces handed over so far.
    handed: usize,
    next_to_write: usize,
    /// Bytes of its pieces queued or ready.
    held: usize,
    done: Option<D>,
    failure: Option<E>,
}

impl<D, E> Default for Slot<D, E> {
    fn default() -> Self {
        Slot {
            ready: BTreeMap::new(),
            handed: 0,
            next_to_write: 0,
            held: 0,
            done: None,
            failure: None,
        }
    }
}

struct State<D, E> {
    next_to_start: usize,
    /// The segment being written.
    head: usize,
    /// Workers encoding a segment right now.
    encoding: usize,
    jobs: VecDeque<Job>,
    slots: BTreeMap<usize, Slot<D, E>>,
    /// Bytes of queued and ready pieces of every segment.
    held: usize,
    /// The first segment, in archive order, that failed.
    first_failure: Option<usize>,
    /// The writer gave up: workers stop.
    abandoned: bool,
}

impl<D, E> State<D, E> {
    fn fail(&mut self, segment: usize, error: E) {
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

    /// Numbers the segment's next piece.
    fn next_index(&mut self, segment: usize) -> usize {
        self.slots.get_mut(&segment).map_or(0, |slot| {
            slot.handed += 1;
            slot.handed - 1
        })
    }
}

/// The pipeline: see the module docs.
pub(crate) struct Pipeline<S: SegmentSource> {
    source: S,
    format: PieceFormat,
    /// Worker threads (at least 1).
    threads: usize,
    state: Mutex<State<S::Done, S::Error>>,
    changed: Condvar,
    /// Piece buffers to reuse (allocating and faulting in 1 MiB per piece
    /// cost more than the scan).
    spare: Mutex<Vec<Vec<u8>>>,
}

impl<S: SegmentSource> Pipeline<S> {
    pub fn new(source: S, format: PieceFormat, threads: usize) -> Self {
        Pipeline {
            source,
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

    /// The segments' source.
    pub fn source(&self) -> &S {
        &self.source
    }

    /// Runs the workers and hands every piece to `sink` in order; returns
    /// what each segment amounted to, in order.
    pub fn run(
        &self,
        sink: &mut dyn OrderedSink<S::Done, S::Error>,
    ) -> Result<Vec<S::Done>, S::Error> {
        std::thread::scope(|scope| {
            for _ in 0..self.threads {
                scope.spawn(|| self.work());
            }
            let result = self.put_in_order(sink);
            // Whatever happened, the workers stop.
            self.lock().abandoned = true;
            self.changed.notify_all();
            result
        })
    }

    fn lock(&self) -> MutexGuard<'_, State<S::Done, S::Error>> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn wait<'g>(
        &self,
        guard: MutexGuard<'g, State<S::Done, S::Error>>,
    ) -> MutexGuard<'g, State<S::Done, S::Error>> {
        self.changed
            .wait(guard)
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A worker: compression jobs first, then the next segment, until
    /// everything is encoded.
    fn work(&self) {
        let segments = self.source.len();
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
            let startable = next < segments
                && !state.cancelled(next)
                && (next == state.head
                    || (state.held <= HELD_LIMIT && next - state.head < MAX_AHEAD));
            if startable {
                state.next_to_start += 1;
                state.encoding += 1;
                state.slots.insert(next, Slot::default());
                drop(state);
                let outcome = catch_unwind(AssertUnwindSafe(|| self.source.encode(next, self)));
                state = self.lock();
                state.encoding -= 1;
                match outcome {
                    Ok(Ok(done)) => {
                        if let Some(slot) = state.slots.get_mut(&next) {
                            slot.done = Some(done);
                        }
                    }
                    Ok(Err(Stop::Failed(error))) => state.fail(next, error),
                    Ok(Err(Stop::Cancelled)) => {}
                    Err(_) => state.fail(next, Fault::Panicked.into()),
                }
                self.changed.notify_all();
                continue;
            }
            let all_started = next >= segments || state.cancelled(next);
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
        let (level, keep_tar) = match self.format {
            PieceFormat::Gzip { level, keep_tar } => (level, keep_tar),
            PieceFormat::Tar | PieceFormat::Discard => unreachable!("only gzip queues jobs"),
        };
        let result = catch_unwind(AssertUnwindSafe(|| gzip_member(&input, level)));
        let tar_len = input.len() as u64;
        let kept_tar = if keep_tar {
            Some(input)
        } else {
            self.recycle(input);
            None
        };
        let mut state = self.lock();
        match result {
            Ok(Ok(member)) => {
                let piece = MadePiece {
                    bytes: Arc::new(member.bytes),
                    tar_len,
                    crc: member.crc,
                    compressed: true,
                    kept_tar,
                };
                Self::deliver(&mut state, segment, index, ReadyPiece::Made(piece));
            }
            Ok(Err(error)) => state.fail(segment, Fault::Compress(error).into()),
            Err(_) => state.fail(segment, Fault::Panicked.into()),
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

    /// Gives a written piece's buffers back for reuse.
    fn recycle_piece(&self, piece: ReadyPiece) {
        let ReadyPiece::Made(piece) = piece else {
            return;
        };
        if let Some(tar) = piece.kept_tar {
            self.recycle(tar);
        }
        if !piece.compressed {
            if let Ok(bytes) = Arc::try_unwrap(piece.bytes) {
                self.recycle(bytes);
            }
        }
    }

    fn deliver(
        state: &mut State<S::Done, S::Error>,
        segment: usize,
        index: usize,
        ready: ReadyPiece,
    ) {
        let bytes = ready.held();
        if let Some(slot) = state.slots.get_mut(&segment) {
            slot.ready.insert(index, ready);
            state.hold(segment, bytes);
        }
    }

    /// The calling thread's part: hands the segments' pieces to `sink` in
    /// order.
    fn put_in_order(
        &self,
        sink: &mut dyn OrderedSink<S::Done, S::Error>,
    ) -> Result<Vec<S::Done>, S::Error> {
        let mut done = Vec::with_capacity(self.source.len());
        for segment in 0..self.source.len() {
            loop {
                match self.next_piece(segment)? {
                    Next::Piece(mut piece) => {
                        sink.piece(segment, &mut piece)?;
                        self.recycle_piece(piece);
                    }
                    Next::End(finished) => {
                        sink.segment_end(segment, &finished)?;
                        done.push(finished);
                        break;
                    }
                }
            }
        }
        Ok(done)
    }

    /// Waits for the next piece of `segment`, or for its end once every
    /// piece is written.
    fn next_piece(&self, segment: usize) -> Result<Next<S::Done>, S::Error> {
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
                    return Ok(Next::Piece(ready));
                }
                if slot.done.is_some() && slot.handed == next {
                    let finished = state.slots.remove(&segment).and_then(|s| s.done);
                    state.head = segment + 1;
                    self.changed.notify_all();
                    return Ok(Next::End(finished.expect("checked above")));
                }
            }
            state = self.wait(state);
        }
    }

    /// Puts a finished piece where the writer finds it, then throttles.
    fn hand_over(&self, segment: usize, ready: ReadyPiece) -> Result<(), Stop<S::Error>> {
        let mut state = self.lock();
        let index = state.next_index(segment);
        Self::deliver(&mut state, segment, index, ready);
        self.changed.notify_all();
        self.throttle(state, segment)
    }

    /// After a piece of `segment` was handed on: does older segments' queued
    /// work, then waits (helping with any job) while `segment` holds more
    /// than it may.
    fn throttle<'s>(
        &'s self,
        mut state: MutexGuard<'s, State<S::Done, S::Error>>,
        segment: usize,
    ) -> Result<(), Stop<S::Error>> {
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

/// What the writer waits for.
enum Next<D> {
    Piece(ReadyPiece),
    End(D),
}

impl<S: SegmentSource> PieceSink<S::Error> for Pipeline<S> {
    fn put(&self, segment: usize, piece: Piece) -> Result<(), Stop<S::Error>> {
        let made = |bytes: Vec<u8>, tar_len: usize| {
            ReadyPiece::Made(MadePiece {
                bytes: Arc::new(bytes),
                tar_len: tar_len as u64,
                crc: 0,
                compressed: false,
                kept_tar: None,
            })
        };
        let input = match (piece, self.format) {
            (Piece::Cached(found), _) => {
                return self.hand_over(segment, ReadyPiece::Cached(found));
            }
            (Piece::Tar(input), PieceFormat::Discard) => {
                // Only counted.
                let len = input.len();
                self.recycle(input);
                return self.hand_over(segment, made(Vec::new(), len));
            }
            (Piece::Tar(input), PieceFormat::Tar) => {
                let len = input.len();
                return self.hand_over(segment, made(input, len));
            }
            (Piece::Tar(input), PieceFormat::Gzip { .. }) => input,
        };
        let mut state = self.lock();
        if state.cancelled(segment) {
            return Err(Stop::Cancelled);
        }
        let index = state.next_index(segment);
        let job = Job {
            segment,
            index,
            input,
        };
        if state.jobs.len() + 1 < self.threads {
            state.hold(segment, job.input.len());
            state.jobs.push_back(job);
            self.changed.notify_all();
        } else {
            drop(state);
            self.compress(job);
            state = self.lock();
        }
        self.throttle(state, segment)
    }

    fn buffer(&self) -> Vec<u8> {
        let spare = self.spare.lock().unwrap_or_else(|p| p.into_inner()).pop();
        spare.unwrap_or_else(|| Vec::with_capacity(GZIP_MEMBER_SIZE))
    }

    fn check(&self, segment: usize) -> Result<(), Stop<S::Error>> {
        if self.lock().cancelled(segment) {
            return Err(Stop::Cancelled);
        }
        Ok(())
    }
}
