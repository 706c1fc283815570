//! The cache stores of a write, off the ordering thread: [`CacheStores`] is
//! the ordered sink that tees every store path compressed afresh into the
//! `--cache`. It hands the members (shared, not copied) to a store thread,
//! which writes each entry, combines the members' CRC-32s and finishes the
//! entry with the segment's metadata; so the cache's page-cache writes never
//! hold up the output.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::{Scope, ScopedJoinHandle};

use super::segment::{cache_metadata, Encoded, SegmentEncoder};
use super::WriteError;
use crate::cache::{CacheError, SegmentCache, SegmentKey, SegmentWriter};
use crate::pipeline::{OrderedSink, ReadyPiece};

/// Messages the store thread may hold before the ordering thread waits
/// (each a member of at most 1 MiB of tar bytes).
const QUEUED: usize = 64;

/// What the store thread is told, in archive order.
enum Store {
    /// A store path compressed afresh starts: store it under this key.
    Begin(SegmentKey),
    /// Its next gzip member.
    Member {
        bytes: Arc<Vec<u8>>,
        tar_len: u64,
        crc: u32,
    },
    /// It is complete, with this metadata.
    Finish(Vec<u8>),
}

/// The ordered sink that stores fresh segments; see the module docs.
pub(super) struct CacheStores<'scope, 'e> {
    encoder: &'e SegmentEncoder<'e>,
    sender: SyncSender<Store>,
    thread: ScopedJoinHandle<'scope, Option<CacheError>>,
    /// Whether the segment being handed on is being stored.
    storing: bool,
    /// Whether the segment being handed on has had a piece yet.
    started: bool,
}

impl<'scope, 'e> CacheStores<'scope, 'e> {
    /// Starts the store thread in `scope`.
    pub fn start<'env>(
        scope: &'scope Scope<'scope, 'env>,
        cache: &'env SegmentCache,
        encoder: &'e SegmentEncoder<'e>,
    ) -> Self {
        let (sender, receiver) = sync_channel(QUEUED);
        let thread = scope.spawn(move || store(cache, receiver));
        CacheStores {
            encoder,
            sender,
            thread,
            storing: false,
            started: false,
        }
    }

    /// Waits for the stores to be written; returns why the cache stopped
    /// taking new segments, if it did (the write goes on without storing).
    pub fn finish(self) -> Option<CacheError> {
        drop(self.sender);
        self.thread
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }

    fn send(&mut self, message: Store) {
        // The store thread only ends after the sender is dropped.
        if self.sender.send(message).is_err() {
            self.storing = false;
        }
    }
}

impl OrderedSink<Encoded, WriteError> for CacheStores<'_, '_> {
    fn piece(&mut self, segment: usize, piece: &mut ReadyPiece) -> Result<(), WriteError> {
        // A store path compressed afresh goes into the cache as it is
        // written; a hit is not stored again.
        let ReadyPiece::Made(made) = piece else {
            return Ok(());
        };
        if !std::mem::replace(&mut self.started, true) {
            if let Some(key) = self.encoder.key(segment) {
                self.storing = true;
                self.send(Store::Begin(key.clone()));
            }
        }
        if self.storing {
            self.send(Store::Member {
                bytes: Arc::clone(&made.bytes),
                tar_len: made.tar_len,
                crc: made.crc,
            });
        }
        Ok(())
    }

    fn segment_end(&mut self, _: usize, done: &Encoded) -> Result<(), WriteError> {
        if std::mem::take(&mut self.storing) {
            self.send(Store::Finish(cache_metadata(done)));
        }
        self.started = false;
        Ok(())
    }
}

/// The store thread: writes the entries it is told of until the first
/// failure, after which it only drains its queue.
fn store(cache: &SegmentCache, messages: Receiver<Store>) -> Option<CacheError> {
    let mut failure = None;
    let mut entry: Option<(SegmentWriter, crc32fast::Hasher)> = None;
    for message in messages {
        if failure.is_some() {
            continue;
        }
        match message {
            Store::Begin(key) => match cache.begin_store(&key) {
                Ok(writer) => entry = Some((writer, crc32fast::Hasher::new())),
                Err(error) => failure = Some(error),
            },
            Store::Member {
                bytes,
                tar_len,
                crc,
            } => {
                if let Some((writer, hasher)) = &mut entry {
                    hasher.combine(&crc32fast::Hasher::new_with_initial_len(crc, tar_len));
                    if let Err(error) = writer.write_members(&bytes) {
                        failure = Some(error);
                        entry = None;
                    }
                }
            }
            Store::Finish(metadata) => {
                if let Some((writer, hasher)) = entry.take() {
                    let finished = writer.finish(&metadata, hasher.total_len(), hasher.finalize());
                    failure = finished.err();
                }
            }
        }
    }
    failure
}
