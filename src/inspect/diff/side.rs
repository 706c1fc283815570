//! One side of a `diff`, read on its own thread.
//!
//! The thread walks the archive as `inspect` does (NAR hashes, stream
//! digests) and sends each member, with what `diff` needs of its content,
//! to the comparing thread in batches over a bounded channel: small files'
//! bytes (for exact offsets and unified diffs) and, for larger files, the
//! SHA-256 of each 64 KiB block, so two files with the same digests are
//! the same without comparing their bytes.

use std::io::BufRead;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::MAX_TEXT_DIFF_BYTES;
use crate::archive::{ArchiveError, Member, MemberKind, TarballReader};
use crate::inspect::walk::{ArchiveWalk, WalkError, WalkOptions};

/// Bytes per content block digest.
pub(super) const BLOCK: usize = 64 * 1024;
/// Members per batch sent to the comparing thread.
const BATCH: usize = 256;
/// Batches in flight per side.
const IN_FLIGHT: usize = 16;

/// What `diff` keeps of a member's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Content {
    /// Not a regular file.
    None,
    /// A regular file of at most [`MAX_TEXT_DIFF_BYTES`].
    Bytes(Vec<u8>),
    /// A larger regular file: the SHA-256 of each [`BLOCK`] bytes.
    Blocks(Vec<[u8; 32]>),
}

impl Content {
    /// The block digests of kept bytes (to keep less memory).
    pub(super) fn into_blocks(self) -> Content {
        match self {
            Content::Bytes(bytes) => Content::Blocks(
                bytes
                    .chunks(BLOCK)
                    .map(|chunk| Sha256::digest(chunk).into())
                    .collect(),
            ),
            other => other,
        }
    }
}

/// A member and its content.
pub(super) struct Record {
    pub member: Member,
    pub content: Content,
}

enum Message {
    Records(Vec<Record>),
    Done(Box<Result<ArchiveWalk, WalkError>>),
}

/// The comparing thread's end of one side.
pub(super) struct SideStream {
    receiver: Receiver<Message>,
    batch: std::vec::IntoIter<Record>,
    walk: Option<Result<ArchiveWalk, WalkError>>,
    /// Bytes of the file read so far.
    pub bytes_read: Arc<AtomicU64>,
}

impl SideStream {
    /// The next member, or `None` at the end of the archive.
    pub fn next(&mut self) -> Result<Option<Record>, WalkError> {
        loop {
            if let Some(record) = self.batch.next() {
                return Ok(Some(record));
            }
            if self.walk.is_some() {
                return Ok(None);
            }
            match self.receiver.recv() {
                Ok(Message::Records(records)) => self.batch = records.into_iter(),
                Ok(Message::Done(result)) => match *result {
                    Ok(walk) => self.walk = Some(Ok(walk)),
                    Err(error) => return Err(error),
                },
                Err(_) => unreachable!("a side's thread sends Done before it ends"),
            }
        }
    }

    /// The finished walk, once [`SideStream::next`] returned `None`.
    pub fn into_walk(self) -> Result<ArchiveWalk, WalkError> {
        self.walk.expect("the side was read to its end")
    }

    pub fn bytes(&self) -> u64 {
        self.bytes_read.load(Ordering::Relaxed)
    }
}

/// The reading thread's body and the stream it feeds; run the body on its
/// own thread.
pub(super) fn side(
    reader: TarballReader,
    options: WalkOptions,
) -> (impl FnOnce() + Send, SideStream) {
    let (sender, receiver) = sync_channel(IN_FLIGHT);
    let bytes_read = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&bytes_read);
    let body = move || {
        let result = read_all(reader, &options, &sender, &counter);
        // The comparing thread may have stopped (an error on the other side).
        let _ = sender.send(Message::Done(Box::new(result)));
    };
    let stream = SideStream {
        receiver,
        batch: Vec::new().into_iter(),
        walk: None,
        bytes_read,
    };
    (body, stream)
}

fn read_all(
    mut reader: TarballReader,
    options: &WalkOptions,
    sender: &SyncSender<Message>,
    counter: &AtomicU64,
) -> Result<ArchiveWalk, WalkError> {
    let mut walk = ArchiveWalk::new(reader.compression(), options);
    let mut batch = Vec::with_capacity(BATCH);
    while let Some(member) = reader.next_member()? {
        walk.begin(&member)?;
        let content = read_content(&mut reader, &mut walk, &member)?;
        walk.end_member();
        batch.push(Record { member, content });
        if batch.len() >= BATCH {
            counter.store(reader.file_bytes_read(), Ordering::Relaxed);
            let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
            if sender.send(Message::Records(full)).is_err() {
                // Nobody listens: stop reading.
                return Ok(walk);
            }
        }
    }
    if !batch.is_empty() && sender.send(Message::Records(batch)).is_err() {
        return Ok(walk);
    }
    walk.finish(&mut reader)?;
    counter.store(walk.file_size, Ordering::Relaxed);
    Ok(walk)
}

/// Feeds a member's content to the walk, keeping small files' bytes and
/// larger files' block digests.
fn read_content(
    reader: &mut TarballReader,
    walk: &mut ArchiveWalk,
    member: &Member,
) -> Result<Content, ArchiveError> {
    if member.kind != MemberKind::Regular {
        walk.feed_content(reader, member)?;
        return Ok(Content::None);
    }
    let small = member.size <= MAX_TEXT_DIFF_BYTES;
    let mut bytes = Vec::new();
    let mut blocks = Vec::new();
    let mut hasher = Sha256::new();
    let mut in_block = 0;
    let mut content = reader.content();
    let mut offset = member.content_offset;
    loop {
        let chunk = match content.fill_buf() {
            Ok(chunk) => chunk,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ArchiveError::from_content(offset, e)),
        };
        if chunk.is_empty() {
            break;
        }
        let n = chunk.len();
        walk.content(chunk);
        if small {
            bytes.extend_from_slice(chunk);
        } else {
            let mut rest = chunk;
            while !rest.is_empty() {
                let take = rest.len().min(BLOCK - in_block);
                hasher.update(&rest[..take]);
                in_block += take;
                rest = &rest[take..];
                if in_block == BLOCK {
                    blocks.push(hasher.finalize_reset().into());
                    in_block = 0;
                }
            }
        }
        content.consume(n);
        offset += n as u64;
    }
    if small {
        return Ok(Content::Bytes(bytes));
    }
    if in_block > 0 {
        blocks.push(hasher.finalize().into());
    }
    Ok(Content::Blocks(blocks))
}
