//! Deterministic gzip as a series of members, compressed by libdeflate.
//!
//! RFC 1952 §2.2: "a gzip file consists of a series of members". The input
//! is cut into members of at most [`MEMBER_SIZE`] bytes at fixed offsets of
//! the input stream (so how the caller chunks its writes never matters), and
//! additionally wherever the caller asks for a member boundary
//! ([`GzipEncoder::restart_member`]). Each member is compressed by
//! libdeflate at the requested level into a complete gzip member: header,
//! raw deflate, CRC-32 and ISIZE trailer. Members share no dictionary, so a
//! member's bytes are a pure function of (level, input), and the output is
//! identical for any number of threads, run and machine (libdeflate's
//! output does not depend on the CPU it runs on).
//!
//! Every member's header is the same apart from its length field:
//!
//! ```text
//! 1f 8b 08 04 00000000 XFL 03   magic, deflate, FLG=FEXTRA, MTIME 0, OS Unix
//! 08 00                         XLEN = 8
//! 57 54 04 00 <u32 LE>          subfield "WT" (wsl-tarball), 4 bytes: the
//!                               member's total length, header to trailer
//! ```
//!
//! XFL is 2 at level 9, 4 at level 1, else 0 (as gzip sets it). The "WT"
//! subfield works like BGZF's "BC": a reader finds every member boundary by
//! reading 20-byte headers and skipping, without inflating. Any gzip reader
//! ignores it and reads the members one after another.
//!
//! The writers (`write`, `delta`, `sign`) cut and order members themselves
//! and compress them with [`gzip_member`] on the one worker pool
//! (`crate::pipeline`); [`GzipEncoder`] compresses a stream on the caller's
//! thread, member by member, for everything else.

use std::cell::RefCell;
use std::io::{self, Write};

/// The most input one member covers.
pub const MEMBER_SIZE: usize = 1024 * 1024;

/// The gzip extra subfield id carrying a member's length: "WT".
pub const EXTRA_SUBFIELD_ID: [u8; 2] = *b"WT";

/// Length of every member's header, extra field included.
pub const MEMBER_HEADER_LEN: usize = 20;

/// CRC-32 and ISIZE.
const TRAILER_LEN: usize = 8;

thread_local! {
    /// Each worker's libdeflate compressor (a few hundred KiB of match-finder
    /// state) and output buffer, kept between members; the compressor
    /// carries no state from one call to the next, so reuse never changes
    /// the output.
    static DEFLATERS: RefCell<Option<(u32, libdeflater::Compressor, Vec<u8>)>> = const { RefCell::new(None) };
}

/// The gzip member header for a member of `total_len` bytes.
fn member_header(level: u32, total_len: u32) -> [u8; MEMBER_HEADER_LEN] {
    let extra_flags = match level {
        9 => 2,
        1 => 4,
        _ => 0,
    };
    let [s1, s2] = EXTRA_SUBFIELD_ID;
    let [l0, l1, l2, l3] = total_len.to_le_bytes();
    [
        0x1f,
        0x8b,
        8,
        4,
        0,
        0,
        0,
        0,
        extra_flags,
        3,
        8,
        0,
        s1,
        s2,
        4,
        0,
        l0,
        l1,
        l2,
        l3,
    ]
}

/// One complete gzip member, made by [`gzip_member`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GzipMember {
    /// Header (with its "WT" length), raw deflate, CRC-32 and ISIZE.
    pub bytes: Vec<u8>,
    /// CRC-32 of the input.
    pub crc: u32,
}

/// Compresses `input` (at most [`MEMBER_SIZE`] bytes) into one complete
/// gzip member with libdeflate at `level` (1–9): for callers that cut and
/// order members themselves, and for [`GzipEncoder`].
pub fn gzip_member(input: &[u8], level: u32) -> io::Result<GzipMember> {
    let crc = crc32fast::hash(input);
    let bytes = DEFLATERS.with(|cell| -> io::Result<Vec<u8>> {
        let mut slot = cell.borrow_mut();
        if !matches!(slot.as_ref(), Some((l, _, _)) if *l == level) {
            let lvl = libdeflater::CompressionLvl::new(level as i32)
                .map_err(|e| io::Error::other(format!("libdeflate level {level}: {e:?}")))?;
            *slot = Some((level, libdeflater::Compressor::new(lvl), Vec::new()));
        }
        let (_, deflater, scratch) = slot.as_mut().expect("just set");
        let bound = deflater.deflate_compress_bound(input.len());
        // Deflate into the thread's scratch buffer (zeroed once, not per
        // member), then keep only what the member needs.
        if scratch.len() < bound {
            scratch.resize(bound, 0);
        }
        let deflated = deflater
            .deflate_compress(input, &mut scratch[..bound])
            .map_err(|e| io::Error::other(format!("libdeflate failed: {e:?}")))?;
        let total = MEMBER_HEADER_LEN + deflated + TRAILER_LEN;
        let total_len = u32::try_from(total)
            .map_err(|_| io::Error::other("a gzip member is longer than 4 GiB"))?;
        let mut bytes = Vec::with_capacity(total);
        bytes.extend_from_slice(&member_header(level, total_len));
        bytes.extend_from_slice(&scratch[..deflated]);
        bytes.extend_from_slice(&[0; TRAILER_LEN]);
        Ok(bytes)
    })?;
    let mut bytes = bytes;
    let end = bytes.len() - TRAILER_LEN;
    bytes[end..end + 4].copy_from_slice(&crc.to_le_bytes());
    // ISIZE is the input length modulo 2^32 (a member is far smaller).
    bytes[end + 4..].copy_from_slice(&(input.len() as u32).to_le_bytes());
    Ok(GzipMember { bytes, crc })
}

/// A gzip encoder writing into `inner` on the caller's thread; see the
/// module docs.
pub(super) struct GzipEncoder<W: Write> {
    inner: W,
    level: u32,
    /// Input of the member being filled (at most [`MEMBER_SIZE`] bytes).
    member: Vec<u8>,
    /// Bytes written to `inner`.
    written: u64,
    /// Set after any error; every later call fails.
    failed: bool,
}

impl<W: Write> GzipEncoder<W> {
    /// `level` must be 1–9 (checked by the caller).
    pub(super) fn new(inner: W, level: u32) -> io::Result<Self> {
        libdeflater::CompressionLvl::new(level as i32)
            .map_err(|e| io::Error::other(format!("libdeflate level {level}: {e:?}")))?;
        Ok(GzipEncoder {
            inner,
            level,
            member: Vec::new(),
            written: 0,
            failed: false,
        })
    }

    /// Ends the current member (if it holds any input) before the next
    /// byte, so the compressed bytes from here on depend only on the input
    /// from here on.
    pub(super) fn restart_member(&mut self) -> io::Result<()> {
        self.guarded(|this| this.end_member_here())
    }

    pub(super) fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// Runs `step`, marking the encoder failed if it errs.
    fn guarded<T>(&mut self, step: impl FnOnce(&mut Self) -> io::Result<T>) -> io::Result<T> {
        if self.failed {
            return Err(io::Error::other("gzip encoder failed earlier"));
        }
        let result = step(self);
        if result.is_err() {
            self.failed = true;
        }
        result
    }

    /// Compresses and writes the member being filled (if it holds input),
    /// so the next byte starts a new one.
    fn end_member_here(&mut self) -> io::Result<()> {
        if self.member.is_empty() {
            return Ok(());
        }
        let member = gzip_member(&self.member, self.level)?;
        self.member.clear();
        self.write_member(&member)
    }

    fn write_member(&mut self, member: &GzipMember) -> io::Result<()> {
        self.inner.write_all(&member.bytes)?;
        self.written += member.bytes.len() as u64;
        Ok(())
    }

    fn buffer_input(&mut self, mut input: &[u8]) -> io::Result<()> {
        while !input.is_empty() {
            if self.member.capacity() == 0 {
                self.member.reserve_exact(MEMBER_SIZE);
            }
            let take = (MEMBER_SIZE - self.member.len()).min(input.len());
            self.member.extend_from_slice(&input[..take]);
            input = &input[take..];
            if self.member.len() == MEMBER_SIZE {
                self.end_member_here()?;
            }
        }
        Ok(())
    }

    /// Compresses the last member, writes it (an empty input gives one
    /// empty member, the shortest valid gzip file) and returns the sink,
    /// flushed.
    pub(super) fn finish(mut self) -> io::Result<W> {
        self.guarded(|this| {
            this.end_member_here()?;
            if this.written == 0 {
                let empty = gzip_member(&[], this.level)?;
                this.write_member(&empty)?;
            }
            this.inner.flush()
        })?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for GzipEncoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.guarded(|this| this.buffer_input(buf))?;
        Ok(buf.len())
    }

    /// Flushes the sink. It does not end the current member: flushing
    /// never changes the output.
    fn flush(&mut self) -> io::Result<()> {
        self.guarded(|this| this.inner.flush())
    }
}
