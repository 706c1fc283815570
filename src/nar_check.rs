//! Checking, in the pass that writes the archive, that each store path's
//! members are exactly the NAR the closure states (`narHash`, `narSize`).
//!
//! [`NarCheck`] is a [`ContentObserver`]: it sees every member and content
//! byte the tar writer takes (on a `--cache` hit too, whose bytes are still
//! read), serialises the members of the current store path as a NAR with
//! [`NarEncoder`] into a [`NarHasher`], and compares digest and size when the
//! store path ends. A stale closure file or a store path changed on the host
//! is an error, so the database inside a written tarball never disagrees
//! with its contents.
//!
//! The NAR is framed on the writing thread, but hashed on a thread of its
//! own ([`HashPipe`] hands it blocks of NAR bytes): SHA-256 is most of the
//! cost, and on a `--cache` rebuild the writing thread is the critical path.

use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;

use crate::entry::{Entry, EntryKind};
use crate::nar::{NarEncoder, NarError, NarHasher, NarNode};
use crate::store::NarHash;
use crate::tar::ContentObserver;

/// Why a store path's bytes are not what the closure says.
#[derive(Debug, thiserror::Error)]
pub enum NarCheckError {
    #[error(
        "store path {} (read from {}) is not what the closure says: its NAR hash is {} ({} bytes), the closure says {} ({} bytes); the closure file is stale or the store path was modified",
        .0.path, .0.host.display(), .0.actual.hash, .0.actual.size, .0.expected.hash, .0.expected.size
    )]
    Mismatch(Box<NarMismatch>),
    #[error("store path {path} (read from {}) has no NAR form: {source}", host.display())]
    Nar {
        path: String,
        host: PathBuf,
        source: NarError,
    },
}

/// A store path whose NAR, as written, differs from the closure's.
#[derive(Debug)]
pub struct NarMismatch {
    pub path: String,
    pub host: PathBuf,
    pub expected: NarDigest,
    pub actual: NarDigest,
}

/// A NAR's SHA-256 and size: `narHash` and `narSize`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NarDigest {
    pub hash: NarHash,
    pub size: u64,
}

/// The store path whose members are being written.
struct Current {
    path: String,
    host: PathBuf,
    /// Its name in the archive (`nix/store/…-name`).
    archive_path: Vec<u8>,
    expected: NarDigest,
    encoder: NarEncoder<HashPipe>,
    broken: Option<NarError>,
}

impl Current {
    fn add(&mut self, entry: &Entry) -> Result<(), NarError> {
        let relative = match entry.path.strip_prefix(self.archive_path.as_slice()) {
            Some([]) => &[][..],
            Some([b'/', rest @ ..]) => rest,
            _ => {
                return Err(NarError::MissingParent {
                    path: entry.display_path(),
                })
            }
        };
        let node = match &entry.kind {
            EntryKind::Directory => NarNode::Directory,
            EntryKind::Symlink { target } => NarNode::Symlink { target },
            EntryKind::File { size, .. } => NarNode::Regular {
                executable: entry.mode & 0o100 != 0,
                size: *size,
            },
        };
        self.encoder.add(relative, node)
    }
}

/// Hashes each store path's members as they are written; see the module doc.
pub struct NarCheck {
    current: Option<Current>,
    hashing: HashingThread,
}

impl NarCheck {
    /// Starts the hashing thread.
    pub fn new() -> io::Result<Self> {
        Ok(NarCheck {
            current: None,
            hashing: HashingThread::start()?,
        })
    }

    /// The members of the store path `path` (as the tarball names it, read
    /// from `host`), named `archive_path` and below, follow.
    pub fn begin(
        &mut self,
        path: String,
        host: PathBuf,
        archive_path: Vec<u8>,
        expected: NarDigest,
    ) {
        self.current = Some(Current {
            path,
            host,
            archive_path,
            expected,
            encoder: NarEncoder::new(self.hashing.pipe()),
            broken: None,
        });
    }

    /// The current store path is complete: its NAR must be the expected one.
    pub fn end(&mut self) -> Result<(), NarCheckError> {
        let Some(current) = self.current.take() else {
            return Ok(());
        };
        let nar_error = |source| NarCheckError::Nar {
            path: current.path.clone(),
            host: current.host.clone(),
            source,
        };
        if let Some(source) = current.broken {
            return Err(nar_error(source));
        }
        let (digest, size) = current
            .encoder
            .finish()
            .map_err(nar_error)?
            .finish()
            .map_err(|e| nar_error(NarError::Write(e)))?;
        let actual = NarDigest {
            hash: NarHash(digest),
            size,
        };
        if actual != current.expected {
            return Err(NarCheckError::Mismatch(Box::new(NarMismatch {
                path: current.path,
                host: current.host,
                expected: current.expected,
                actual,
            })));
        }
        Ok(())
    }
}

impl ContentObserver for NarCheck {
    fn begin_entry(&mut self, entry: &Entry) {
        if let Some(current) = &mut self.current {
            if current.broken.is_none() {
                current.broken = current.add(entry).err();
            }
        }
    }

    fn content(&mut self, chunk: &[u8]) {
        if let Some(current) = &mut self.current {
            if current.broken.is_none() {
                current.broken = current.encoder.content(chunk).err();
            }
        }
    }

    fn end_entry(&mut self) {}
}

/// NAR bytes per block handed to the hashing thread.
const HASH_BLOCK: usize = 256 * 1024;
/// Blocks that may wait for the hashing thread.
const BLOCKS_IN_FLIGHT: usize = 4;

/// What the hashing thread is asked to do.
enum HashJob {
    /// The next NAR bytes of the current store path.
    Block(Vec<u8>),
    /// The NAR is complete: reply with its SHA-256 and size, start anew.
    Finish(mpsc::SyncSender<([u8; 32], u64)>),
}

/// The thread that hashes NAR bytes, one store path after another, and the
/// blocks it has finished with, for reuse.
struct HashingThread {
    jobs: Option<mpsc::SyncSender<HashJob>>,
    spare_blocks: Arc<Mutex<Vec<Vec<u8>>>>,
    worker: Option<JoinHandle<()>>,
}

impl HashingThread {
    fn start() -> io::Result<Self> {
        let (jobs, incoming) = mpsc::sync_channel::<HashJob>(BLOCKS_IN_FLIGHT);
        let spare_blocks = Arc::new(Mutex::new(Vec::new()));
        let returned = Arc::clone(&spare_blocks);
        let worker = std::thread::Builder::new()
            .name("nar-hash".to_owned())
            .spawn(move || {
                let mut hasher = NarHasher::new();
                for job in incoming {
                    match job {
                        HashJob::Block(mut block) => {
                            // A NarHasher never fails to take bytes.
                            let _ = hasher.write_all(&block);
                            block.clear();
                            if let Ok(mut spare) = returned.lock() {
                                spare.push(block);
                            }
                        }
                        HashJob::Finish(reply) => {
                            let _ = reply.send(std::mem::take(&mut hasher).finish());
                        }
                    }
                }
            })?;
        Ok(HashingThread {
            jobs: Some(jobs),
            spare_blocks,
            worker: Some(worker),
        })
    }

    /// A sink for one store path's NAR.
    fn pipe(&self) -> HashPipe {
        HashPipe {
            block: Vec::new(),
            jobs: self.jobs.clone(),
            spare_blocks: Arc::clone(&self.spare_blocks),
        }
    }
}

impl Drop for HashingThread {
    fn drop(&mut self) {
        // Closing the channel ends the thread.
        self.jobs = None;
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

/// A NAR sink that gathers bytes into blocks for the hashing thread.
struct HashPipe {
    block: Vec<u8>,
    jobs: Option<mpsc::SyncSender<HashJob>>,
    spare_blocks: Arc<Mutex<Vec<Vec<u8>>>>,
}

fn hashing_thread_gone() -> io::Error {
    io::Error::other("the NAR hashing thread has stopped")
}

impl HashPipe {
    fn send(&mut self, job: HashJob) -> io::Result<()> {
        let jobs = self.jobs.as_ref().ok_or_else(hashing_thread_gone)?;
        jobs.send(job).map_err(|_| hashing_thread_gone())
    }

    fn send_block(&mut self) -> io::Result<()> {
        let spare = self
            .spare_blocks
            .lock()
            .ok()
            .and_then(|mut spare| spare.pop())
            .unwrap_or_else(|| Vec::with_capacity(HASH_BLOCK));
        let block = std::mem::replace(&mut self.block, spare);
        self.send(HashJob::Block(block))
    }

    /// The SHA-256 and size of everything written, once the thread has
    /// hashed it.
    fn finish(mut self) -> io::Result<([u8; 32], u64)> {
        if !self.block.is_empty() {
            self.send_block()?;
        }
        let (reply, answer) = mpsc::sync_channel(1);
        self.send(HashJob::Finish(reply))?;
        answer.recv().map_err(|_| hashing_thread_gone())
    }
}

impl Write for HashPipe {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        if self.block.capacity() == 0 {
            self.block.reserve(HASH_BLOCK);
        }
        let room = HASH_BLOCK - self.block.len();
        let taken = bytes.len().min(room);
        self.block.extend_from_slice(&bytes[..taken]);
        if self.block.len() == HASH_BLOCK {
            self.send_block()?;
        }
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tar::TarWriter;
    use std::io::Write;

    /// Writes a tiny store path through a tar writer with the check.
    fn check(expected: NarDigest, content: &[u8]) -> Result<(), NarCheckError> {
        let mut tar = TarWriter::with_observer(Vec::new(), 1, NarCheck::new().unwrap());
        tar.observer_mut().begin(
            "/nix/store/x-y".to_owned(),
            PathBuf::from("/host/x-y"),
            b"nix/store/x-y".to_vec(),
            expected,
        );
        tar.append(&Entry::directory("nix/store/x-y", 0o555))
            .unwrap();
        tar.append(&Entry::inline_file(
            "nix/store/x-y/f",
            content.to_vec(),
            0o444,
        ))
        .unwrap();
        tar.observer_mut().end()
    }

    /// The NAR of `{ f: content }`, by the encoder alone.
    fn reference(content: &[u8]) -> NarDigest {
        let mut encoder = NarEncoder::new(NarHasher::new());
        encoder.add(b"", NarNode::Directory).unwrap();
        let node = NarNode::Regular {
            executable: false,
            size: content.len() as u64,
        };
        encoder.add(b"f", node).unwrap();
        encoder.content(content).unwrap();
        let (hash, size) = encoder.finish().unwrap().finish();
        NarDigest {
            hash: NarHash(hash),
            size,
        }
    }

    #[test]
    fn the_hashing_thread_hashes_each_nar_as_a_plain_hasher_does() {
        let hashing = HashingThread::start().unwrap();
        // Several blocks, a partial one, odd write sizes; then a second NAR
        // on the same thread starts from scratch.
        let data: Vec<u8> = (0..HASH_BLOCK * 3 + 1234)
            .map(|i| (i % 251) as u8)
            .collect();
        for round in 0..2 {
            let mut pipe = hashing.pipe();
            let mut plain = NarHasher::new();
            for piece in data[round..].chunks(77_777) {
                pipe.write_all(piece).unwrap();
                plain.write_all(piece).unwrap();
            }
            assert_eq!(pipe.finish().unwrap(), plain.finish());
        }
    }

    #[test]
    fn the_written_members_must_be_the_stated_nar() {
        check(reference(b"good"), b"good").unwrap();
        let err = check(reference(b"good"), b"evil").unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, NarCheckError::Mismatch { .. }), "{text}");
        assert!(text.contains("/nix/store/x-y"), "{text}");
        assert!(text.contains(&reference(b"good").hash.to_sri()), "{text}");
        assert!(text.contains(&reference(b"evil").hash.to_sri()), "{text}");
        let wrong_size = NarDigest {
            size: reference(b"good").size + 8,
            ..reference(b"good")
        };
        let err = check(wrong_size, b"good").unwrap_err().to_string();
        assert!(
            err.contains(&format!("({} bytes)", wrong_size.size)),
            "{err}"
        );
    }
}
