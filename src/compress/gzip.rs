//! Parallel, deterministic gzip in the style of pigz.
//!
//! The input is cut into [`BLOCK_SIZE`] blocks at fixed offsets of the input
//! stream (so how the caller chunks its writes never matters). Each block is
//! raw-deflated on a worker thread (rayon's global pool, shared with the
//! rest of the pipeline) by a fresh [`flate2::Compress`], primed
//! with the last [`DICTIONARY_SIZE`] bytes of the previous block's input as a
//! preset dictionary, and ended with a sync flush (an empty stored block that
//! leaves the stream byte-aligned), so the blocks' outputs can simply be
//! concatenated. The last block ends with `Finish` instead, which sets the
//! final-block bit. Each worker also computes its block's CRC-32; the writer
//! combines them in order for the trailer.
//!
//! Because every block's compressed bytes are a pure function of (level,
//! dictionary, input), the output is identical for any number of threads.
//!
//! The caller's thread does the buffering and writes the compressed blocks to
//! the sink strictly in order. At most `2 × threads + 2` blocks are in flight;
//! when that many are pending, `write` waits for the oldest one, so memory is
//! bounded whatever the input size.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};
use flate2::{FlushCompress, Status};

/// Uncompressed size of every block but the last (pigz's default).
pub const BLOCK_SIZE: usize = 128 * 1024;

/// Size of the deflate window, and so of the preset dictionary.
pub const DICTIONARY_SIZE: usize = 32 * 1024;

/// One block for a worker to compress.
struct BlockJob {
    input: Vec<u8>,
    /// Preset dictionary (the tail of the previous block), possibly empty.
    dictionary: Vec<u8>,
    is_last: bool,
    result: Sender<io::Result<CompressedBlock>>,
}

/// A worker's answer: raw deflate bytes plus the CRC-32 of the input.
struct CompressedBlock {
    deflated: Vec<u8>,
    crc: crc32fast::Hasher,
}

/// The compressed form of one segment: a stretch of input that starts and
/// ends at a dictionary restart, so its deflate bytes depend only on its own
/// input and can be stored and spliced into a later stream unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompressedSegment {
    /// Raw deflate blocks, ending with a sync flush (never the final block).
    pub deflated: Vec<u8>,
    /// CRC-32 of the segment's input.
    pub crc: u32,
    /// Length of the segment's input.
    pub input_len: u64,
}

/// What a pending block belongs to, for segment capture.
#[derive(Debug, Clone, Copy, Default)]
struct BlockTag {
    /// The segment being captured that this block is part of.
    segment: Option<u64>,
    /// The block is the segment's last.
    ends_segment: bool,
}

/// A segment whose blocks are being collected as they are written out.
struct SegmentCapture {
    id: u64,
    deflated: Vec<u8>,
    crc: crc32fast::Hasher,
}

/// Where blocks are compressed: rayon's global pool, the one the plan walks
/// store paths on (sized by `--threads`), so gzip starts no threads of its
/// own and none before there is work. Dropping this makes queued blocks of
/// an abandoned stream skip their work.
///
/// The encoder waits for results on the caller's thread, so it must not be
/// driven from inside a rayon worker of a one-thread pool.
struct WorkerPool {
    level: u32,
    cancelled: Arc<AtomicBool>,
}

impl WorkerPool {
    fn start(level: u32) -> Self {
        WorkerPool {
            level,
            cancelled: Arc::new(AtomicBool::new(false)),
        }
    }

    fn submit(&self, job: BlockJob) {
        let cancelled = Arc::clone(&self.cancelled);
        let level = self.level;
        rayon::spawn(move || {
            if cancelled.load(Ordering::Relaxed) {
                return;
            }
            let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
                compress_block(&job.input, &job.dictionary, job.is_last, level)
            }))
            .unwrap_or_else(|_| Err(io::Error::other("a gzip worker panicked")));
            // The receiver is gone only if the encoder was dropped; fine.
            let _ = job.result.send(result);
        });
    }
}

impl Drop for WorkerPool {
    fn drop(&mut self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }
}

/// Raw-deflates one block with a fresh deflate state.
fn compress_block(
    input: &[u8],
    dictionary: &[u8],
    is_last: bool,
    level: u32,
) -> io::Result<CompressedBlock> {
    let deflate_error = |e: flate2::CompressError| io::Error::other(format!("deflate failed: {e}"));
    // A fresh state for every block: reusing one via reset + set_dictionary
    // has been seen to give run-to-run differences.
    let mut deflater = flate2::Compress::new(flate2::Compression::new(level), false);
    if !dictionary.is_empty() {
        deflater.set_dictionary(dictionary).map_err(deflate_error)?;
    }
    let flush = if is_last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    // Above deflate's worst case (zlib-rs level 1 may use fixed Huffman
    // codes, 9 bits for some bytes), so one call suffices; zlib warns that a
    // sync flush ending exactly at the end of the output space would repeat
    // the flush marker.
    let mut deflated = Vec::with_capacity(input.len() + input.len() / 8 + 1024);
    loop {
        let consumed = usize::try_from(deflater.total_in()).unwrap_or(usize::MAX);
        let remaining = input.get(consumed..).unwrap_or_default();
        let status = deflater
            .compress_vec(remaining, &mut deflated, flush)
            .map_err(deflate_error)?;
        let all_consumed = deflater.total_in() == input.len() as u64;
        let done = if is_last {
            status == Status::StreamEnd
        } else {
            // zlib: the flush is complete when it left output space unused.
            all_consumed && deflated.len() < deflated.capacity()
        };
        if done {
            break;
        }
        deflated.reserve(deflated.capacity().max(4096));
    }
    let mut crc = crc32fast::Hasher::new();
    crc.update(input);
    Ok(CompressedBlock { deflated, crc })
}

/// gzip header: magic, CM=8 (deflate), FLG=0, MTIME=0, XFL, OS=3 (Unix).
fn gzip_header(level: u32) -> [u8; 10] {
    let extra_flags = match level {
        9 => 2,
        1 => 4,
        _ => 0,
    };
    [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, extra_flags, 3]
}

/// A parallel gzip encoder writing into `inner`; see the module docs.
pub(super) struct ParallelGzipEncoder<W: Write> {
    inner: W,
    level: u32,
    max_in_flight: usize,
    /// Input of the block being filled (at most [`BLOCK_SIZE`] bytes). It is
    /// handed to a worker only once more input arrives (or at `finish`), so
    /// that the last block is the one that gets `Finish`.
    block: Vec<u8>,
    /// Dictionary for the block being filled.
    dictionary: Vec<u8>,
    /// Set by [`Self::restart_block`]: end the current block before the next
    /// byte, and start the next block without a dictionary.
    restart_pending: bool,
    /// Results of submitted blocks, oldest first, with what they belong to.
    pending: VecDeque<(Receiver<io::Result<CompressedBlock>>, BlockTag)>,
    /// The segment the block being filled belongs to, if one is captured.
    current_segment: Option<u64>,
    /// The segment whose blocks are being written out, and the ones done.
    capture: Option<SegmentCapture>,
    finished_segments: Vec<(u64, CompressedSegment)>,
    header_written: bool,
    crc: crc32fast::Hasher,
    /// Set after any error; every later call fails.
    failed: bool,
    workers: WorkerPool,
}

impl<W: Write> ParallelGzipEncoder<W> {
    /// `level` must be 1–9 and `threads` at least 1 (checked by the caller).
    pub(super) fn new(inner: W, level: u32, threads: usize) -> io::Result<Self> {
        Ok(ParallelGzipEncoder {
            inner,
            level,
            max_in_flight: 2 * threads + 2,
            block: Vec::with_capacity(BLOCK_SIZE),
            dictionary: Vec::new(),
            restart_pending: false,
            pending: VecDeque::new(),
            current_segment: None,
            capture: None,
            finished_segments: Vec::new(),
            header_written: false,
            crc: crc32fast::Hasher::new(),
            failed: false,
            workers: WorkerPool::start(level),
        })
    }

    /// Ends the current block (if it holds any input) before the next byte
    /// and compresses what follows without a dictionary, so the compressed
    /// bytes from here on depend only on the input from here on.
    pub(super) fn restart_block(&mut self) {
        if self.block.is_empty() {
            self.dictionary.clear();
        } else {
            self.restart_pending = true;
        }
    }

    /// Starts a segment at the next byte (a dictionary restart) whose
    /// compressed bytes are collected under `id`; see [`Self::end_segment`].
    pub(super) fn begin_segment(&mut self, id: u64) -> io::Result<()> {
        self.guarded(|this| {
            this.end_block_here()?;
            this.current_segment = Some(id);
            Ok(())
        })
    }

    /// Ends the segment at this byte (a dictionary restart). Its compressed
    /// bytes appear in [`Self::take_finished_segments`] once written out.
    pub(super) fn end_segment(&mut self) -> io::Result<()> {
        self.guarded(|this| {
            if this.current_segment.is_some() {
                this.submit_block_tagged(false, true)?;
                this.current_segment = None;
            }
            Ok(())
        })
    }

    /// Segments whose every block has been written out since the last call.
    pub(super) fn take_finished_segments(&mut self) -> Vec<(u64, CompressedSegment)> {
        std::mem::take(&mut self.finished_segments)
    }

    /// Splices a stored segment in at this byte, exactly as if its input
    /// had been written between two dictionary restarts.
    pub(super) fn append_segment(&mut self, segment: &CompressedSegment) -> io::Result<()> {
        self.guarded(|this| {
            this.end_block_here()?;
            let (result, receiver) = crossbeam_channel::bounded(1);
            let block = CompressedBlock {
                deflated: segment.deflated.clone(),
                crc: crc32fast::Hasher::new_with_initial_len(segment.crc, segment.input_len),
            };
            // The channel has room for this one message.
            let _ = result.send(Ok(block));
            this.pending.push_back((receiver, BlockTag::default()));
            this.write_ready_blocks()?;
            while this.pending.len() >= this.max_in_flight {
                this.write_oldest_block()?;
            }
            Ok(())
        })
    }

    /// Submits the block being filled now, if any, and restarts the
    /// dictionary, so the next byte starts a fresh block.
    fn end_block_here(&mut self) -> io::Result<()> {
        if self.block.is_empty() {
            self.dictionary.clear();
            self.restart_pending = false;
            Ok(())
        } else {
            self.restart_pending = true;
            self.submit_block(false)
        }
    }

    pub(super) fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    fn check_not_failed(&self) -> io::Result<()> {
        if self.failed {
            Err(io::Error::other("gzip encoder failed earlier"))
        } else {
            Ok(())
        }
    }

    /// Runs `step`, marking the encoder failed if it errs.
    fn guarded<T>(&mut self, step: impl FnOnce(&mut Self) -> io::Result<T>) -> io::Result<T> {
        self.check_not_failed()?;
        let result = step(self);
        if result.is_err() {
            self.failed = true;
        }
        result
    }

    /// Hands the current block to the workers and starts a new one.
    fn submit_block(&mut self, is_last: bool) -> io::Result<()> {
        self.submit_block_tagged(is_last, false)
    }

    /// [`Self::submit_block`]; `ends_segment` also restarts the dictionary
    /// and marks the block as its segment's last.
    fn submit_block_tagged(&mut self, is_last: bool, ends_segment: bool) -> io::Result<()> {
        if ends_segment {
            self.restart_pending = true;
        }
        let input = std::mem::replace(&mut self.block, Vec::with_capacity(BLOCK_SIZE));
        let next_dictionary = if self.restart_pending {
            self.restart_pending = false;
            Vec::new()
        } else {
            input[input.len().saturating_sub(DICTIONARY_SIZE)..].to_vec()
        };
        let dictionary = std::mem::replace(&mut self.dictionary, next_dictionary);
        let (result, result_receiver) = crossbeam_channel::bounded(1);
        self.workers.submit(BlockJob {
            input,
            dictionary,
            is_last,
            result,
        });
        let tag = BlockTag {
            segment: self.current_segment,
            ends_segment,
        };
        self.pending.push_back((result_receiver, tag));
        // Write out whatever is already done, then wait while too many
        // blocks are in flight.
        self.write_ready_blocks()?;
        while self.pending.len() >= self.max_in_flight {
            self.write_oldest_block()?;
        }
        Ok(())
    }

    /// Writes out the finished blocks at the front of the queue.
    fn write_ready_blocks(&mut self) -> io::Result<()> {
        while let Some(block) = self.pending.front().and_then(|(r, _)| r.try_recv().ok()) {
            let (_, tag) = self.pending.pop_front().expect("the front exists");
            self.write_block(block, tag)?;
        }
        Ok(())
    }

    /// Waits for the oldest pending block and writes it out.
    fn write_oldest_block(&mut self) -> io::Result<()> {
        let Some((receiver, tag)) = self.pending.pop_front() else {
            return Ok(());
        };
        let block = receiver
            .recv()
            .map_err(|_| io::Error::other("gzip worker thread died"))?;
        self.write_block(block, tag)
    }

    fn write_block(&mut self, block: io::Result<CompressedBlock>, tag: BlockTag) -> io::Result<()> {
        let block = block?;
        if !self.header_written {
            self.inner.write_all(&gzip_header(self.level))?;
            self.header_written = true;
        }
        self.inner.write_all(&block.deflated)?;
        self.crc.combine(&block.crc);
        if let Some(id) = tag.segment {
            let capture = self.capture.get_or_insert_with(|| SegmentCapture {
                id,
                deflated: Vec::new(),
                crc: crc32fast::Hasher::new(),
            });
            capture.deflated.extend_from_slice(&block.deflated);
            capture.crc.combine(&block.crc);
            if tag.ends_segment {
                let done = self.capture.take().expect("capture was just set");
                let input_len = done.crc.total_len();
                self.finished_segments.push((
                    done.id,
                    CompressedSegment {
                        deflated: done.deflated,
                        crc: done.crc.finalize(),
                        input_len,
                    },
                ));
            }
        }
        Ok(())
    }

    fn buffer_input(&mut self, mut input: &[u8]) -> io::Result<()> {
        while !input.is_empty() {
            if self.block.len() == BLOCK_SIZE || self.restart_pending {
                self.submit_block(false)?;
            }
            let take = (BLOCK_SIZE - self.block.len()).min(input.len());
            self.block.extend_from_slice(&input[..take]);
            input = &input[take..];
        }
        Ok(())
    }

    /// Compresses the last block, writes everything and the trailer, and
    /// returns the sink (flushed) with the segments finished since the last
    /// [`Self::take_finished_segments`].
    pub(super) fn finish(mut self) -> io::Result<(W, Vec<(u64, CompressedSegment)>)> {
        self.guarded(|this| {
            this.submit_block(true)?;
            while !this.pending.is_empty() {
                this.write_oldest_block()?;
            }
            let crc = this.crc.clone().finalize();
            // ISIZE is the input length modulo 2^32.
            let input_size = this.crc.total_len() as u32;
            let mut trailer = [0u8; 8];
            trailer[..4].copy_from_slice(&crc.to_le_bytes());
            trailer[4..].copy_from_slice(&input_size.to_le_bytes());
            this.inner.write_all(&trailer)?;
            this.inner.flush()
        })?;
        Ok((self.inner, self.finished_segments))
    }
}

impl<W: Write> Write for ParallelGzipEncoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.guarded(|this| this.buffer_input(buf))?;
        Ok(buf.len())
    }

    /// Writes out the blocks already compressed and flushes the sink. It
    /// does not end the current block: flushing never changes the output.
    fn flush(&mut self) -> io::Result<()> {
        self.guarded(|this| {
            this.write_ready_blocks()?;
            this.inner.flush()
        })
    }
}
