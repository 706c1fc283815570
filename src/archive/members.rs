//! Parallel inflation of our gzip members, with a sequential fallback.
//!
//! A gzip file `write` made is a series of members whose headers carry their
//! total length in the "WT" extra subfield (see `crate::compress`). While
//! the headers are ours, [`GzipMembers`] reads each member whole (its length
//! is in the header), inflates it with libdeflate on a rayon worker, and
//! hands the results out in order; at most `2 × threads + 2` members (each
//! at most 1 MiB inflated) are in flight, so memory stays bounded. The
//! buffers of finished members (compressed and inflated) are handed back and
//! reused for the next ones, so a member costs no allocation, zero-filling
//! or page faults.
//!
//! The WT length is a claim, not a fact: gzip, GNU tar and bsdtar never read
//! it, they inflate one member after another. So a member is taken as ours
//! only if libdeflate, inflating it, took exactly its WT length: the deflate
//! data ends where the trailer starts, and the trailer (CRC-32 and ISIZE,
//! both checked) ends where the WT length says. A WT length stretched over
//! more data (which gzip would read as further members, hidden from a
//! reader that trusted it), shrunk inside the member, or overlapping the
//! next one is an error naming the member's offset, as is anything but
//! another gzip member right after one of ours (gzip stops there; so does
//! bsdtar).
//!
//! At the first header that is a gzip header but not ours (any other gzip,
//! or a length no member of ours can have), the rest of the file, from that
//! header on, is read sequentially by flate2's multi-member decoder, as
//! gzip reads it.
//!
//! [`GzipMembers`] is a `BufRead`: `fill_buf` lends the inflated member
//! itself, so the tar reader hashes content where libdeflate put it.

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, Cursor, Read};
use std::sync::{Arc, Mutex};

use crossbeam_channel::Receiver;
use flate2::read::MultiGzDecoder;

use crate::compress::{GZIP_EXTRA_SUBFIELD_ID, GZIP_MEMBER_HEADER_LEN, GZIP_MEMBER_SIZE};
use crate::os::{GzipInflater, InflateError};

/// The first two bytes of every gzip member.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// More than a member of ours can take compressed: deflate's stored-block
/// worst case of a 1 MiB input plus header and trailer, with room to spare.
const MAX_MEMBER_LEN: usize = GZIP_MEMBER_SIZE + GZIP_MEMBER_SIZE / 8 + 4096;

/// What is wrong with one of our members, said with its offset in the file;
/// carried inside an `io::Error` so the reader can keep the words.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(super) struct MemberError(String);

impl MemberError {
    fn io(kind: io::ErrorKind, message: String) -> io::Error {
        io::Error::new(kind, MemberError(message))
    }
}

/// An inflated member (a buffer and how much of it the member filled), or
/// why it could not be.
type Inflated = io::Result<(Vec<u8>, usize)>;

/// Buffers of finished members, kept for the next ones. A buffer is only
/// ever grown, never shrunk, so reusing it neither allocates nor zero-fills;
/// a buffer's length is not the member's (that is carried beside it).
#[derive(Clone, Default)]
struct Pool(Arc<Mutex<Vec<Vec<u8>>>>);

impl Pool {
    /// A buffer of at least `len` bytes (its bytes are stale).
    fn take(&self, len: usize) -> Vec<u8> {
        let mut buffer = self
            .0
            .lock()
            .ok()
            .and_then(|mut p| p.pop())
            .unwrap_or_default();
        if buffer.len() < len {
            buffer.resize(len, 0);
        }
        buffer
    }

    /// Keeps `buffer` for later, up to `limit` buffers.
    fn give(&self, buffer: Vec<u8>, limit: usize) {
        if let Ok(mut pool) = self.0.lock() {
            if pool.len() < limit && buffer.capacity() > 0 {
                pool.push(buffer);
            }
        }
    }
}

/// The rest of the file read sequentially: the header bytes already read,
/// then the source.
type Fallback<R> = BufReader<MultiGzDecoder<io::Chain<Cursor<Vec<u8>>, R>>>;

/// The fallback's buffer of inflated bytes.
const FALLBACK_BUFFER: usize = 256 << 10;

/// A `Read` and `BufRead` of the inflated stream of a gzip file; see the
/// module docs.
pub(super) struct GzipMembers<R: Read> {
    /// The compressed file, while members are still read from it.
    source: Option<R>,
    /// Members being inflated, in file order.
    pending: VecDeque<Receiver<Inflated>>,
    /// The member being handed out: its buffer, the member's length in it,
    /// and how much of it was handed out.
    current: Vec<u8>,
    current_len: usize,
    position: usize,
    /// Buffers for compressed members, and for inflated ones.
    compressed_pool: Pool,
    inflated_pool: Pool,
    /// Bytes of a header that is not ours: from here on, the fallback.
    foreign: Option<Vec<u8>>,
    fallback: Option<Fallback<R>>,
    /// Offset in the compressed file of the next member to read.
    offset: u64,
    max_in_flight: usize,
    failed: bool,
}

impl<R: Read> GzipMembers<R> {
    pub(super) fn new(source: R) -> Self {
        GzipMembers {
            source: Some(source),
            pending: VecDeque::new(),
            current: Vec::new(),
            current_len: 0,
            position: 0,
            compressed_pool: Pool::default(),
            inflated_pool: Pool::default(),
            foreign: None,
            fallback: None,
            offset: 0,
            max_in_flight: 2 * rayon::current_num_threads() + 2,
            failed: false,
        }
    }

    /// Reads members and queues them until enough are in flight, the file
    /// ends, or a header is not ours.
    fn fill(&mut self) -> io::Result<()> {
        while self.pending.len() < self.max_in_flight && self.foreign.is_none() {
            let Some(source) = self.source.as_mut() else {
                return Ok(());
            };
            let mut header = [0; GZIP_MEMBER_HEADER_LEN];
            let got = read_up_to(source, &mut header)?;
            if got == 0 {
                // The end of the file, at a member boundary.
                if self.offset == 0 {
                    // Not even one member: let flate2 say what is wrong.
                    self.foreign = Some(Vec::new());
                } else {
                    self.source = None;
                }
                return Ok(());
            }
            let Some(len) = our_member_len(&header[..got]) else {
                if self.offset > 0 && !header[..got].starts_with(&GZIP_MAGIC) {
                    self.queue_error(MemberError::io(
                        io::ErrorKind::InvalidData,
                        format!(
                            "at byte {} of the file, after the last gzip member, are bytes \
                             that are not a gzip member (gzip would stop there, ignoring \
                             them as trailing garbage)",
                            self.offset
                        ),
                    ));
                    return Ok(());
                }
                self.foreign = Some(header[..got].to_vec());
                return Ok(());
            };
            let mut member = self.compressed_pool.take(len);
            member[..GZIP_MEMBER_HEADER_LEN].copy_from_slice(&header);
            let got = read_up_to(source, &mut member[GZIP_MEMBER_HEADER_LEN..len])?;
            if got < len - GZIP_MEMBER_HEADER_LEN {
                self.queue_error(MemberError::io(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "the gzip member at byte {} of the file is truncated ({} of its {len} bytes)",
                        self.offset,
                        GZIP_MEMBER_HEADER_LEN + got
                    ),
                ));
                return Ok(());
            }
            let at = self.offset;
            self.offset += len as u64;
            let (result, receiver) = crossbeam_channel::bounded(1);
            let (compressed_pool, inflated_pool) =
                (self.compressed_pool.clone(), self.inflated_pool.clone());
            let keep = self.max_in_flight + 1;
            let job = move || {
                let inflated = inflate_member(&member[..len], at, |size| inflated_pool.take(size));
                compressed_pool.give(member, keep);
                // The receiver is gone only if the reader was dropped.
                let _ = result.send(inflated);
            };
            if rayon::current_thread_index().is_some() {
                // On a rayon worker, waiting for the pool could deadlock.
                job();
            } else {
                rayon::spawn(job);
            }
            self.pending.push_back(receiver);
        }
        Ok(())
    }

    /// Stops reading the file: after the members already in flight, the
    /// stream fails with `error`.
    fn queue_error(&mut self, error: io::Error) {
        let (result, receiver) = crossbeam_channel::bounded(1);
        // The receiver is right here.
        let _ = result.send(Err(error));
        self.pending.push_back(receiver);
        self.source = None;
    }

    /// Makes the next inflated bytes ready: the current member has some
    /// left, or the fallback has taken over, or the file has ended.
    fn advance(&mut self) -> io::Result<()> {
        while self.position >= self.current_len && self.fallback.is_none() {
            self.fill()?;
            if let Some(receiver) = self.pending.pop_front() {
                let (inflated, len) = receiver
                    .recv()
                    .map_err(|_| io::Error::other("a gzip inflating worker died"))??;
                let done = std::mem::replace(&mut self.current, inflated);
                self.inflated_pool.give(done, self.max_in_flight + 1);
                self.current_len = len;
                self.position = 0;
                continue;
            }
            match (self.foreign.take(), self.source.take()) {
                (Some(read), Some(source)) => {
                    self.fallback = Some(BufReader::with_capacity(
                        FALLBACK_BUFFER,
                        MultiGzDecoder::new(Cursor::new(read).chain(source)),
                    ));
                }
                _ => return Ok(()),
            }
        }
        Ok(())
    }
}

impl<R: Read> BufRead for GzipMembers<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.failed {
            return Err(io::Error::other("the gzip stream failed earlier"));
        }
        if let Err(error) = self.advance() {
            self.failed = true;
            return Err(error);
        }
        if self.position < self.current_len {
            return Ok(&self.current[self.position..self.current_len]);
        }
        match self.fallback.as_mut() {
            Some(fallback) => match fallback.fill_buf() {
                Ok(bytes) => Ok(bytes),
                Err(error) => {
                    self.failed = true;
                    Err(error)
                }
            },
            None => Ok(&[]),
        }
    }

    fn consume(&mut self, n: usize) {
        if self.position < self.current_len {
            self.position = (self.position + n).min(self.current_len);
        } else if let Some(fallback) = self.fallback.as_mut() {
            fallback.consume(n);
        }
    }
}

impl<R: Read> Read for GzipMembers<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = buffer.len().min(available.len());
        buffer[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

/// The total length of the member whose header this is, if it is a header
/// of ours with a length a member of ours can have.
fn our_member_len(header: &[u8]) -> Option<usize> {
    let [s1, s2] = GZIP_EXTRA_SUBFIELD_ID;
    if header.len() < GZIP_MEMBER_HEADER_LEN
        || header[..4] != [0x1f, 0x8b, 8, 4]
        || header[10..16] != [8, 0, s1, s2, 4, 0]
    {
        return None;
    }
    let len = u32::from_le_bytes(header[16..20].try_into().ok()?) as usize;
    (GZIP_MEMBER_HEADER_LEN + 8..=MAX_MEMBER_LEN)
        .contains(&len)
        .then_some(len)
}

/// Inflates one whole member (header to trailer, `member.len()` bytes by
/// its WT length) with libdeflate into a buffer from `buffer_of` (called
/// with the size the trailer claims, once that is known to be one a member
/// of ours can have). The member is ours only if libdeflate took exactly
/// `member.len()` bytes and the CRC-32 and ISIZE of the trailer there match;
/// anything else is an error naming the member's offset `at`.
fn inflate_member(member: &[u8], at: u64, buffer_of: impl FnOnce(usize) -> Vec<u8>) -> Inflated {
    let wt = member.len();
    let damaged = |why: String| {
        MemberError::io(
            io::ErrorKind::InvalidData,
            format!("the gzip member at byte {at} of the file is damaged: {why}"),
        )
    };
    let trailer = &member[wt - 4..];
    let size = u32::from_le_bytes(trailer.try_into().expect("4 bytes")) as usize;
    if size > GZIP_MEMBER_SIZE {
        return Err(damaged(format!(
            "the ISIZE at the end of its {wt} bytes (its WT length) claims {size} bytes, \
             more than a member holds"
        )));
    }
    let mut out = buffer_of(size);
    let (taken, inflated) = GzipInflater::new()
        .gzip_decompress_ex(member, &mut out[..size])
        .map_err(|e| {
            damaged(match e {
                InflateError::BadData => format!(
                    "bad deflate data, a CRC-32 or ISIZE that does not match, or deflate \
                     data that goes on past the {wt} bytes of its WT length"
                ),
                InflateError::InsufficientSpace => format!(
                    "it inflates to more than the {size} bytes the ISIZE at the end of its \
                     {wt} bytes (its WT length) says"
                ),
            })
        })?;
    if taken != wt {
        return Err(damaged(format!(
            "its WT length says {wt} bytes, but its deflate data and trailer end after \
             {taken}; gzip and tar would read the {} bytes from byte {} on as more of the \
             file (a forged length, hiding them from a reader that trusts it)",
            wt - taken,
            at + taken as u64
        )));
    }
    if inflated != size {
        return Err(damaged(format!(
            "{inflated} bytes inflated, the trailer says {size}"
        )));
    }
    Ok((out, size))
}

/// Reads until `buffer` is full or the reader ends; the bytes read.
pub(super) fn read_up_to(reader: &mut impl Read, buffer: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}
