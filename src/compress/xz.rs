//! xz via liblzma's multithreaded encoder, with a fixed block size.
//!
//! The multithreaded encoder cuts the input into independent .xz blocks of
//! `block_size` bytes and compresses them in parallel; each block's bytes
//! depend only on its own input, so with a fixed block size the output is the
//! same for any thread count (tested). The single-threaded encoder would
//! write one block without size fields, i.e. different bytes, so it is never
//! used — even `threads = 1` goes through the multithreaded encoder.
//!
//! Every piece of output is written through to the sink (and the sink
//! flushed) as soon as liblzma produces it, so a write error (a full disk, a
//! file-size limit) is reported when it happens, not after the whole stream
//! has been compressed into buffers. liblzma 5.2's multithreaded encoder
//! produces a block's bytes only when the block is complete, so the first
//! write comes once the first block (or the stream header) is out.
//!
//! This is a small writer over [`xz2::stream::Stream`] rather than
//! `xz2::write::XzEncoder`, which unwraps encoder errors and silently
//! finishes the stream when dropped.

use std::io::{self, Write};

use xz2::stream::{Action, Check, MtStreamBuilder, Status, Stream};

/// Output is handed to the sink in pieces of at most this size.
const OUTPUT_BUFFER_SIZE: usize = 256 * 1024;

/// liblzma's own limit on encoder threads.
const MAX_THREADS: usize = 16384;

/// Dictionary size of xz preset 0–9 (see xz(1)).
fn preset_dictionary_size(level: u32) -> u64 {
    const MIB: u64 = 1024 * 1024;
    match level {
        0 => 256 * 1024,
        1 => MIB,
        2 => 2 * MIB,
        3 | 4 => 4 * MIB,
        5 | 6 => 8 * MIB,
        7 => 16 * MIB,
        8 => 32 * MIB,
        _ => 64 * MIB,
    }
}

/// Uncompressed size of each .xz block: three times the dictionary size, at
/// least 1 MiB — what xz itself picks in multithreaded mode.
pub(super) fn block_size(level: u32) -> u64 {
    (3 * preset_dictionary_size(level)).max(1024 * 1024)
}

/// An xz encoder writing into `inner`.
pub(super) struct XzEncoder<W: Write> {
    inner: W,
    stream: Stream,
    output: Vec<u8>,
}

impl<W: Write> XzEncoder<W> {
    /// `level` must be 0–9 and `threads` at least 1 (checked by the caller).
    pub(super) fn new(inner: W, level: u32, threads: usize) -> io::Result<Self> {
        let threads = u32::try_from(threads.min(MAX_THREADS)).unwrap_or(1);
        let stream = MtStreamBuilder::new()
            .threads(threads)
            .preset(level)
            .block_size(block_size(level))
            .check(Check::Crc64)
            .encoder()?;
        Ok(XzEncoder {
            inner,
            stream,
            output: Vec::with_capacity(OUTPUT_BUFFER_SIZE),
        })
    }

    pub(super) fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// Runs the encoder once and writes what it produced. Returns whether
    /// the stream has ended.
    fn step(&mut self, input: &[u8], action: Action) -> io::Result<(usize, bool)> {
        let consumed_before = self.stream.total_in();
        self.output.clear();
        let status = self.stream.process_vec(input, &mut self.output, action)?;
        if status == Status::MemNeeded {
            return Err(io::Error::other("xz encoder made no progress"));
        }
        if !self.output.is_empty() {
            // Straight through to the file: liblzma hands out a block's
            // bytes only once the block is done, and a buffer further down
            // could hold a small system's whole stream, so a full disk would
            // surface only at the very end.
            self.inner.write_all(&self.output)?;
            self.inner.flush()?;
        }
        let consumed =
            usize::try_from(self.stream.total_in() - consumed_before).map_err(io::Error::other)?;
        Ok((consumed, status == Status::StreamEnd))
    }

    pub(super) fn finish(mut self) -> io::Result<W> {
        while !self.step(&[], Action::Finish)?.1 {}
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for XzEncoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut input = buf;
        while !input.is_empty() {
            let (consumed, _) = self.step(input, Action::Run)?;
            input = &input[consumed..];
        }
        Ok(buf.len())
    }

    /// Flushes the sink only; flushing the encoder would change the output.
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
