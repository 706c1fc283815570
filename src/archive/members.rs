//! Parallel inflation of our gzip members, with a sequential fallback.
//!
//! A gzip file `write` made is a series of members whose headers carry their
//! total length in the "WT" extra subfield (see `crate::compress`). While
//! the headers are ours, [`GzipMembers`] reads each member whole (its length
//! is in the header), inflates it with libdeflate on a rayon worker, and
//! hands the results out in order; at most `2 × threads + 2` members (each
//! at most 1 MiB inflated) are in flight, so memory stays bounded. libdeflate
//! checks each member's CRC-32 and size.
//!
//! At the first header that is not ours (any other gzip, or a length no
//! member of ours can have), the rest of the file, from that header on, is
//! read sequentially by flate2's multi-member decoder, as before.

use std::collections::VecDeque;
use std::io::{self, Cursor, Read};

use crossbeam_channel::Receiver;
use flate2::read::MultiGzDecoder;

use super::read_up_to;
use crate::compress::{GZIP_EXTRA_SUBFIELD_ID, GZIP_MEMBER_HEADER_LEN, GZIP_MEMBER_SIZE};

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

/// An inflated member, or why it could not be.
type Inflated = io::Result<Vec<u8>>;

/// The rest of the file read sequentially: the header bytes already read,
/// then the source.
type Fallback<R> = MultiGzDecoder<io::Chain<Cursor<Vec<u8>>, R>>;

/// A `Read` of the inflated stream of a gzip file; see the module docs.
pub(super) struct GzipMembers<R: Read> {
    /// The compressed file, while members are still read from it.
    source: Option<R>,
    /// Members being inflated, in file order.
    pending: VecDeque<Receiver<Inflated>>,
    /// The member being handed out, and how much of it is.
    current: Vec<u8>,
    position: usize,
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
            position: 0,
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
            let mut header = vec![0; GZIP_MEMBER_HEADER_LEN];
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
            header.truncate(got);
            let Some(len) = our_member_len(&header) else {
                self.foreign = Some(header);
                return Ok(());
            };
            let mut member = header;
            member.resize(len, 0);
            let got = read_up_to(source, &mut member[GZIP_MEMBER_HEADER_LEN..])?;
            if got < len - GZIP_MEMBER_HEADER_LEN {
                return Err(MemberError::io(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "the gzip member at byte {} of the file is truncated ({} of its {len} bytes)",
                        self.offset,
                        GZIP_MEMBER_HEADER_LEN + got
                    ),
                ));
            }
            let at = self.offset;
            self.offset += len as u64;
            let (result, receiver) = crossbeam_channel::bounded(1);
            let job = move || {
                // The receiver is gone only if the reader was dropped.
                let _ = result.send(inflate_member(&member, at));
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

    fn read_inner(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.position < self.current.len() {
                let n = buffer.len().min(self.current.len() - self.position);
                buffer[..n].copy_from_slice(&self.current[self.position..self.position + n]);
                self.position += n;
                return Ok(n);
            }
            if let Some(fallback) = self.fallback.as_mut() {
                return fallback.read(buffer);
            }
            self.fill()?;
            if let Some(receiver) = self.pending.pop_front() {
                self.current = receiver
                    .recv()
                    .map_err(|_| io::Error::other("a gzip inflating worker died"))??;
                self.position = 0;
                continue;
            }
            match (self.foreign.take(), self.source.take()) {
                (Some(read), Some(source)) => {
                    self.fallback = Some(MultiGzDecoder::new(Cursor::new(read).chain(source)));
                }
                _ => return Ok(0),
            }
        }
    }
}

impl<R: Read> Read for GzipMembers<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        if self.failed {
            return Err(io::Error::other("the gzip stream failed earlier"));
        }
        let result = self.read_inner(buffer);
        if result.is_err() {
            self.failed = true;
        }
        result
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

/// Inflates one whole member (header to trailer) with libdeflate, which
/// checks its CRC-32 and size.
fn inflate_member(member: &[u8], at: u64) -> Inflated {
    let damaged = |why: String| {
        MemberError::io(
            io::ErrorKind::InvalidData,
            format!("the gzip member at byte {at} of the file is damaged: {why}"),
        )
    };
    let trailer = &member[member.len() - 4..];
    let size = u32::from_le_bytes(trailer.try_into().expect("4 bytes")) as usize;
    if size > GZIP_MEMBER_SIZE {
        return Err(damaged(format!(
            "it claims {size} bytes, more than a member holds"
        )));
    }
    let mut out = vec![0; size];
    let inflated = libdeflater::Decompressor::new()
        .gzip_decompress(member, &mut out)
        .map_err(|e| {
            damaged(match e {
                libdeflater::DecompressionError::BadData => "bad deflate data or CRC-32".into(),
                libdeflater::DecompressionError::InsufficientSpace => {
                    format!("it inflates to more than the {size} bytes its trailer says")
                }
            })
        })?;
    if inflated != size {
        return Err(damaged(format!(
            "{inflated} bytes inflated, the trailer says {size}"
        )));
    }
    Ok(out)
}
