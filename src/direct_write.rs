//! Writing a large file once, front to back, past the page cache, on a
//! thread of its own.
//!
//! A tarball is written once and read by another machine: keeping its
//! pages in the page cache is pure cost, and on virtual machines a fresh
//! page-cache page is dear (on the 2-core benchmark VM, `dd` of 800 MiB into
//! a file took 4.4 s, 3.9 s of it system time; with `oflag=direct` 0.7 s).
//! [`DirectWriter`] gathers the bytes in an aligned buffer and writes whole
//! aligned blocks with `O_DIRECT` (see [`crate::os::set_direct_io`]); the
//! last partial block is written normally, after `O_DIRECT` is turned off.
//! A file system that refuses `O_DIRECT` (when it is turned on, or at a
//! write, which is then repeated) gets ordinary writes from then on. The
//! bytes in the file are the same either way.
//!
//! An `O_DIRECT` write returns when the device has the bytes, so the writes
//! run on a thread of the writer's own: while it writes one buffer, the
//! caller fills the other. A cached rebuild, which only copies stored
//! members, then takes about the device's time instead of the device's time
//! plus the copying. An error of a write is returned by the next call, and
//! by every call after it.

use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;

use crate::os::{set_direct_io, AlignedBuffer, DIRECT_IO_ALIGN};

/// Bytes gathered before a write: 1 MiB (a full disk shows within the
/// first two MiB, as with a buffered writer).
const BUFFER_BLOCKS: usize = 256;

/// A sequential writer into `file` from its current length on; see the
/// module docs. Call [`DirectWriter::finish`]: dropping it loses what is
/// still buffered.
pub struct DirectWriter {
    /// The buffer being filled, and how much of it is.
    buffer: AlignedBuffer,
    filled: usize,
    /// The other buffer, when the writing thread is not writing it.
    spare: Option<AlignedBuffer>,
    requests: Option<SyncSender<Request>>,
    replies: Receiver<Reply>,
    thread: Option<JoinHandle<()>>,
    /// The first failed write, repeated to every later call.
    failed: Option<(io::ErrorKind, String)>,
}

/// What the writing thread is asked to do with a buffer's first `len` bytes.
struct Request {
    buffer: AlignedBuffer,
    len: usize,
    what: Writing,
}

enum Writing {
    /// Whole blocks (a full buffer).
    Blocks,
    /// Everything, keeping the partial last block in the buffer to be
    /// written again with the bytes that complete it.
    Flush,
    /// Everything, and the file back: the writer's end.
    Finish,
}

/// A buffer handed back, with the bytes kept at its start.
struct Reply {
    buffer: AlignedBuffer,
    kept: usize,
    result: io::Result<()>,
    /// With [`Writing::Finish`], the file, positioned at its end.
    file: Option<File>,
}

/// The writing thread's side: the file and where the next block goes.
struct Sink {
    file: File,
    /// Where the next byte goes in the file.
    offset: u64,
    /// `O_DIRECT` is on.
    direct: bool,
}

impl DirectWriter {
    /// Writes into `file` (which should be empty) with `O_DIRECT` if its
    /// file system takes it. `file` must be a descriptor of its own (a
    /// [`File::try_clone`] shares the flag with the original).
    pub fn new(file: File) -> io::Result<Self> {
        let offset = file.metadata()?.len();
        let direct = offset % DIRECT_IO_ALIGN as u64 == 0 && set_direct_io(&file, true).is_ok();
        let sink = Sink {
            file,
            offset,
            direct,
        };
        // One request at a time: the caller waits for a buffer back before
        // it sends the next.
        let (requests, inbox) = mpsc::sync_channel::<Request>(1);
        let (outbox, replies) = mpsc::sync_channel::<Reply>(1);
        let thread = std::thread::Builder::new()
            .name("output".to_owned())
            .spawn(move || sink.serve(inbox, outbox))?;
        Ok(DirectWriter {
            buffer: AlignedBuffer::new(BUFFER_BLOCKS),
            filled: 0,
            spare: Some(AlignedBuffer::new(BUFFER_BLOCKS)),
            requests: Some(requests),
            replies,
            thread: Some(thread),
            failed: None,
        })
    }

    /// Writes what is buffered, turns `O_DIRECT` off and hands back the
    /// file, positioned at its end.
    pub fn finish(mut self) -> io::Result<File> {
        self.wait_for_spare()?;
        // The thread ends after this reply; dropping `self` joins it.
        let file = self.request(Writing::Finish)?;
        Ok(file.expect("a finished write hands back its file"))
    }

    /// The earlier failure, if any, as an error.
    fn check(&self) -> io::Result<()> {
        match &self.failed {
            Some((kind, message)) => Err(io::Error::new(*kind, message.clone())),
            None => Ok(()),
        }
    }

    /// Takes back the buffer the thread is writing, once it is written.
    fn wait_for_spare(&mut self) -> io::Result<()> {
        self.check()?;
        if self.spare.is_none() {
            let reply = self.receive()?;
            self.spare = Some(reply.buffer);
        }
        Ok(())
    }

    /// Sends the buffer being filled and waits for it to come back
    /// written; the file comes back too after [`Writing::Finish`].
    fn request(&mut self, what: Writing) -> io::Result<Option<File>> {
        self.send(what)?;
        let Reply {
            buffer, kept, file, ..
        } = self.receive()?;
        // Nothing was written meanwhile: the buffer sent comes back as the
        // one being filled, with what it kept, and the other is spare again.
        self.spare = Some(std::mem::replace(&mut self.buffer, buffer));
        self.filled = kept;
        Ok(file)
    }

    /// Hands the buffer being filled to the thread and goes on with the
    /// spare one (which must be back).
    fn send(&mut self, what: Writing) -> io::Result<()> {
        let spare = self.spare.take().expect("the spare buffer is back");
        let buffer = std::mem::replace(&mut self.buffer, spare);
        let len = std::mem::take(&mut self.filled);
        let sent = self
            .requests
            .as_ref()
            .is_some_and(|requests| requests.send(Request { buffer, len, what }).is_ok());
        if !sent {
            return Err(self.fail(io::Error::other("the output's writing thread stopped")));
        }
        Ok(())
    }

    fn receive(&mut self) -> io::Result<Reply> {
        let Ok(reply) = self.replies.recv() else {
            return Err(self.fail(io::Error::other("the output's writing thread stopped")));
        };
        match reply.result {
            Ok(()) => Ok(reply),
            Err(error) => Err(self.fail(error)),
        }
    }

    /// Remembers `error` for every later call.
    fn fail(&mut self, error: io::Error) -> io::Error {
        self.failed = Some((error.kind(), error.to_string()));
        error
    }
}

impl Drop for DirectWriter {
    /// Stops the thread; nothing is written after the writer is gone.
    fn drop(&mut self) {
        self.requests = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Write for DirectWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.check()?;
        let capacity = self.buffer.as_slice().len();
        if self.filled == capacity {
            self.wait_for_spare()?;
            self.send(Writing::Blocks)?;
        }
        let take = bytes.len().min(capacity - self.filled);
        self.buffer.as_mut_slice()[self.filled..self.filled + take].copy_from_slice(&bytes[..take]);
        self.filled += take;
        Ok(take)
    }

    /// Writes everything gathered so far, so that a full disk shows now:
    /// whole blocks directly, the tail through the page cache. The tail
    /// stays in the buffer and is written again, whole, with the bytes
    /// that complete its block.
    fn flush(&mut self) -> io::Result<()> {
        self.wait_for_spare()?;
        self.request(Writing::Flush)?;
        Ok(())
    }
}

impl Sink {
    /// The thread's loop: writes each buffer it gets and hands it back,
    /// until the writer finishes (the file goes back with the last reply)
    /// or is dropped.
    fn serve(mut self, inbox: Receiver<Request>, outbox: SyncSender<Reply>) {
        while let Ok(Request { buffer, len, what }) = inbox.recv() {
            let finish = matches!(what, Writing::Finish);
            let (buffer, kept, result) = self.write(buffer, len, what);
            if finish {
                let (result, file) = match result.and_then(|()| self.end()) {
                    Ok(()) => (Ok(()), Some(self.file)),
                    Err(error) => (Err(error), None),
                };
                let _ = outbox.send(Reply {
                    buffer,
                    kept,
                    result,
                    file,
                });
                return;
            }
            let reply = Reply {
                buffer,
                kept,
                result,
                file: None,
            };
            if outbox.send(reply).is_err() {
                return;
            }
        }
    }

    /// Writes `buffer[..len]` as `what` asks, and hands the buffer back
    /// with the bytes to keep moved to its start.
    fn write(
        &mut self,
        mut buffer: AlignedBuffer,
        len: usize,
        what: Writing,
    ) -> (AlignedBuffer, usize, io::Result<()>) {
        let whole = if self.direct {
            len / DIRECT_IO_ALIGN * DIRECT_IO_ALIGN
        } else {
            len
        };
        let result = (|| {
            match what {
                Writing::Blocks => self.write_at_offset(&buffer.as_slice()[..len])?,
                Writing::Flush => {
                    self.write_at_offset(&buffer.as_slice()[..whole])?;
                    if whole < len {
                        self.write_tail(&buffer.as_slice()[whole..len])?;
                    }
                }
                Writing::Finish => {
                    if whole < len {
                        // The tail: O_DIRECT cannot write it.
                        self.stop_direct()?;
                    }
                    self.write_at_offset(&buffer.as_slice()[..len])?;
                }
            }
            Ok(())
        })();
        let kept = match what {
            Writing::Flush if result.is_ok() => {
                buffer.as_mut_slice().copy_within(whole..len, 0);
                len - whole
            }
            _ => 0,
        };
        (buffer, kept, result)
    }

    /// Writes `bytes` at the offset and moves it on.
    fn write_at_offset(&mut self, bytes: &[u8]) -> io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        match self.file.write_all_at(bytes, self.offset) {
            Err(_) if self.direct => {
                // The file system took the flag but not the write (EINVAL
                // on most, other errors on some network and FUSE file
                // systems): once more, through the page cache. A real
                // failure (a full disk) fails again, and is reported.
                self.stop_direct()?;
                self.file.write_all_at(bytes, self.offset)?;
            }
            other => other?,
        }
        self.offset += bytes.len() as u64;
        Ok(())
    }

    /// Writes a partial block through the page cache without moving the
    /// offset: it is written again, whole, later.
    fn write_tail(&mut self, tail: &[u8]) -> io::Result<()> {
        if self.direct {
            set_direct_io(&self.file, false)?;
        }
        self.file.write_all_at(tail, self.offset)?;
        if self.direct && set_direct_io(&self.file, true).is_err() {
            self.direct = false;
        }
        Ok(())
    }

    fn stop_direct(&mut self) -> io::Result<()> {
        self.direct = false;
        set_direct_io(&self.file, false)
    }

    /// Turns `O_DIRECT` off and positions the file at its end: writes
    /// went to explicit offsets, later ones continue at the end.
    fn end(&mut self) -> io::Result<()> {
        if self.direct {
            self.stop_direct()?;
        }
        self.file.seek(SeekFrom::Start(self.offset))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// The bytes written are the file, whatever the write sizes, with or
    /// without O_DIRECT (tmpfs and others refuse it; the target directory
    /// is on the test machine's disk).
    #[test]
    fn the_file_holds_exactly_the_bytes_written() {
        for base in [
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")),
            std::env::temp_dir(),
        ] {
            check_writes_in(&base);
        }
    }

    /// A failed write (here: a full device) is returned by a later call,
    /// and every call after it fails too, naming the same cause.
    #[test]
    fn a_failed_write_fails_every_later_call() {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let mut writer = DirectWriter::new(file).unwrap();
        let chunk = vec![7u8; 64 << 10];
        let mut first = None;
        for _ in 0..64 {
            if let Err(error) = writer.write_all(&chunk) {
                first = Some(error);
                break;
            }
        }
        let first = first.expect("4 MiB into /dev/full fail within the writes");
        assert_eq!(first.raw_os_error(), Some(libc::ENOSPC), "{first}");
        let again = writer.write(b"x").unwrap_err();
        assert_eq!(again.to_string(), first.to_string());
        assert_eq!(writer.flush().unwrap_err().to_string(), first.to_string());
        assert_eq!(writer.finish().unwrap_err().to_string(), first.to_string());
    }

    fn check_writes_in(base: &std::path::Path) {
        let dir = tempfile::tempdir_in(base).unwrap();
        let bytes: Vec<u8> = (0..(9 << 20) + 1234)
            .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for sizes in [[1, 4095, 4097], [1 << 20, 3, 70_000], [5 << 20, 1, 1]] {
            let path = dir.path().join("out");
            let file = File::create(&path).unwrap();
            let mut writer = DirectWriter::new(file).unwrap();
            let mut at = 0;
            let mut turn = 0;
            while at < bytes.len() {
                let end = (at + sizes[turn % 3]).min(bytes.len());
                writer.write_all(&bytes[at..end]).unwrap();
                at = end;
                turn += 1;
                if turn % 7 == 0 {
                    writer.flush().unwrap();
                }
            }
            let mut file = writer.finish().unwrap();
            file.write_all(b"after").unwrap();
            let mut back = Vec::new();
            File::open(&path).unwrap().read_to_end(&mut back).unwrap();
            assert_eq!(back.len(), bytes.len() + 5, "{sizes:?}");
            assert!(back[..bytes.len()] == bytes[..], "{sizes:?}");
            assert_eq!(&back[bytes.len()..], b"after");
        }
    }
}
