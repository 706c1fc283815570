//! One side of a `diff`, read on its own thread.
//!
//! The thread decompresses and walks the archive (file digest, NAR sizes)
//! and sends each member's header and content to the comparing thread in
//! batches over a bounded channel, so both files are inflated at once and
//! memory stays bounded (a few MiB in flight per side). It hashes nothing
//! it does not have to: contents are compared byte for byte where both
//! sides have a member of the same name, and hashed (SHA-256 per 64 KiB
//! block, [`Content::Blocks`]) only where they are kept for pairing.

use std::io::BufRead;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::archive::{ArchiveError, Member, TarballReader};
use crate::inspect::walk::{ArchiveWalk, ArchiveWalkError, WalkOptions};

/// Bytes per content block digest, and per chunk sent.
pub(super) const BLOCK: usize = 64 * 1024;
/// Bytes per batch sent to the comparing thread (about).
const BATCH_BYTES: usize = 256 * 1024;
/// Items per batch at most.
const BATCH_ITEMS: usize = 512;
/// Batches in flight per side.
const IN_FLIGHT: usize = 16;

/// What `diff` keeps of a member's content for pairing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Content {
    /// Not a regular file.
    None,
    /// A regular file of at most [`super::MAX_TEXT_DIFF_BYTES`].
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

/// What a side's thread sends: a member, then its content in chunks, then
/// its end.
enum Item {
    Member(Box<Member>),
    Chunk(Vec<u8>),
    End,
}

enum Message {
    Items(Vec<Item>),
    Done(Box<Result<ArchiveWalk, ArchiveWalkError>>),
}

/// The comparing thread's end of one side.
pub(super) struct SideStream {
    receiver: Receiver<Message>,
    batch: std::vec::IntoIter<Item>,
    walk: Option<ArchiveWalk>,
    bytes_read: Arc<AtomicU64>,
}

impl SideStream {
    fn item(&mut self) -> Result<Option<Item>, ArchiveWalkError> {
        loop {
            if let Some(item) = self.batch.next() {
                return Ok(Some(item));
            }
            if self.walk.is_some() {
                return Ok(None);
            }
            match self.receiver.recv() {
                Ok(Message::Items(items)) => self.batch = items.into_iter(),
                Ok(Message::Done(result)) => self.walk = Some((*result)?),
                Err(_) => panic!("a diff reading thread ended without its result"),
            }
        }
    }

    /// The next member, or `None` at the end of the archive. The previous
    /// member's content must have been read to its end.
    pub fn next_member(&mut self) -> Result<Option<Member>, ArchiveWalkError> {
        match self.item()? {
            None => Ok(None),
            Some(Item::Member(member)) => Ok(Some(*member)),
            Some(_) => panic!("a member's content was not read to its end"),
        }
    }

    /// The next chunk of the current member's content, `None` at its end.
    pub fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, ArchiveWalkError> {
        match self.item()? {
            Some(Item::Chunk(chunk)) => Ok(Some(chunk)),
            Some(Item::End) => Ok(None),
            _ => panic!("a member's content ended without its end"),
        }
    }

    /// Reads the current member's content to its end.
    pub fn skip_content(&mut self) -> Result<(), ArchiveWalkError> {
        while self.next_chunk()?.is_some() {}
        Ok(())
    }

    /// The current member's content: its bytes when it is at most
    /// `keep_up_to` bytes, else its block digests.
    pub fn read_content(
        &mut self,
        size: u64,
        keep_up_to: u64,
    ) -> Result<Content, ArchiveWalkError> {
        if size <= keep_up_to {
            let mut bytes = Vec::with_capacity(size as usize);
            while let Some(chunk) = self.next_chunk()? {
                bytes.extend_from_slice(&chunk);
            }
            return Ok(Content::Bytes(bytes));
        }
        let mut blocks = Vec::new();
        let mut hasher = Sha256::new();
        let mut in_block = 0;
        while let Some(chunk) = self.next_chunk()? {
            let mut rest = chunk.as_slice();
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
        if in_block > 0 {
            blocks.push(hasher.finalize().into());
        }
        Ok(Content::Blocks(blocks))
    }

    /// The finished walk, once [`SideStream::next_member`] returned `None`.
    pub fn into_walk(self) -> ArchiveWalk {
        self.walk.expect("the side was read to its end")
    }

    /// Bytes of the file read so far.
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
        let mut batch = Batch {
            sender: &sender,
            items: Vec::with_capacity(BATCH_ITEMS),
            bytes: 0,
            listening: true,
        };
        let result = read_all(reader, &options, &mut batch, &counter);
        batch.flush();
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

/// Items gathered for the next send.
struct Batch<'s> {
    sender: &'s SyncSender<Message>,
    items: Vec<Item>,
    bytes: usize,
    /// The comparing thread still receives.
    listening: bool,
}

impl Batch<'_> {
    fn push(&mut self, item: Item, bytes: usize) {
        self.items.push(item);
        self.bytes += bytes;
        if self.items.len() >= BATCH_ITEMS || self.bytes >= BATCH_BYTES {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.items.is_empty() {
            return;
        }
        let items = std::mem::replace(&mut self.items, Vec::with_capacity(BATCH_ITEMS));
        self.bytes = 0;
        if self.listening && self.sender.send(Message::Items(items)).is_err() {
            self.listening = false;
        }
    }
}

fn read_all(
    mut reader: TarballReader,
    options: &WalkOptions,
    batch: &mut Batch,
    counter: &AtomicU64,
) -> Result<ArchiveWalk, ArchiveWalkError> {
    let mut walk = ArchiveWalk::new(reader.compression(), options);
    // Stops reading as soon as nobody compares any more (an error on the
    // other side).
    while let Some(member) = reader.next_member()? {
        walk.begin(&member)?;
        let (offset, size) = (member.content_offset, member.size);
        batch.push(Item::Member(Box::new(member)), 512);
        send_content(&mut reader, &mut walk, batch, offset, size)?;
        if !batch.listening {
            return Ok(walk);
        }
        walk.end_member();
        counter.store(reader.file_bytes_read(), Ordering::Relaxed);
    }
    walk.finish(&mut reader)?;
    counter.store(walk.file_size, Ordering::Relaxed);
    Ok(walk)
}

/// Feeds the current member's content to the walk and sends it in chunks
/// of at most [`BLOCK`] bytes.
fn send_content(
    reader: &mut TarballReader,
    walk: &mut ArchiveWalk,
    batch: &mut Batch,
    mut offset: u64,
    size: u64,
) -> Result<(), ArchiveError> {
    let mut content = reader.content();
    let mut chunk = Vec::new();
    let mut sent: u64 = 0;
    loop {
        let bytes = match content.fill_buf() {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ArchiveError::from_content(offset, e)),
        };
        if bytes.is_empty() {
            break;
        }
        let n = bytes.len();
        walk.content(bytes);
        let mut rest = bytes;
        while !rest.is_empty() {
            if chunk.capacity() == 0 {
                let left = size.saturating_sub(sent).max(rest.len() as u64);
                chunk = Vec::with_capacity(left.min(BLOCK as u64) as usize);
            }
            let take = rest.len().min(BLOCK - chunk.len());
            chunk.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            sent += take as u64;
            if chunk.len() == BLOCK {
                let full = std::mem::take(&mut chunk);
                batch.push(Item::Chunk(full), BLOCK);
            }
        }
        content.consume(n);
        offset += n as u64;
        if !batch.listening {
            return Ok(());
        }
    }
    if !chunk.is_empty() {
        let n = chunk.len();
        batch.push(Item::Chunk(chunk), n);
    }
    batch.push(Item::End, 0);
    Ok(())
}
