//! Writing a large file once, front to back, past the page cache.
//!
//! A tarball is written once and read by another machine: keeping its
//! pages in the page cache is pure cost, and on virtual machines a fresh
//! page-cache page is dear (on the 2-core benchmark VM, `dd` of 800 MiB into
//! a file took 4.4 s, 3.9 s of it system time; with `oflag=direct` 0.7 s).
//! [`DirectWriter`] gathers the bytes in an aligned buffer and writes whole
//! aligned blocks with `O_DIRECT` (see [`crate::os::set_direct_io`]); the
//! last partial block is written normally, after `O_DIRECT` is turned off.
//! A file system that refuses `O_DIRECT` (when it is turned on, or at a
//! write, which is then repeated) gets ordinary writes from then on. The bytes in the file are
//! the same either way.

use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;

use crate::os::{set_direct_io, AlignedBuffer, DIRECT_IO_ALIGN};

/// Bytes gathered before a write: 1 MiB (a full disk shows at the first
/// MiB, as with a buffered writer).
const BUFFER_BLOCKS: usize = 256;

/// A sequential writer into `file` from its current length on; see the
/// module docs. Call [`DirectWriter::finish`]: dropping it loses what is
/// still buffered.
pub struct DirectWriter {
    file: File,
    buffer: AlignedBuffer,
    filled: usize,
    /// Where the buffer's first byte goes in the file.
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
        Ok(DirectWriter {
            file,
            buffer: AlignedBuffer::new(BUFFER_BLOCKS),
            filled: 0,
            offset,
            direct,
        })
    }

    /// Writes the whole blocks of the buffer (all of it when `everything`)
    /// and keeps the rest at its start.
    fn write_out(&mut self, everything: bool) -> io::Result<()> {
        let len = if everything || !self.direct {
            self.filled
        } else {
            self.filled / DIRECT_IO_ALIGN * DIRECT_IO_ALIGN
        };
        if len == 0 {
            return Ok(());
        }
        if self.direct && len % DIRECT_IO_ALIGN != 0 {
            // The tail: O_DIRECT cannot write it.
            self.stop_direct()?;
        }
        let written = self
            .file
            .write_all_at(&self.buffer.as_slice()[..len], self.offset);
        match written {
            Err(_) if self.direct => {
                // The file system took the flag but not the write (EINVAL
                // on most, other errors on some network and FUSE file
                // systems): once more, through the page cache. A real
                // failure (a full disk) fails again, and is reported.
                self.stop_direct()?;
                self.file
                    .write_all_at(&self.buffer.as_slice()[..len], self.offset)?;
            }
            other => other?,
        }
        self.offset += len as u64;
        self.buffer.as_mut_slice().copy_within(len..self.filled, 0);
        self.filled -= len;
        Ok(())
    }

    fn stop_direct(&mut self) -> io::Result<()> {
        self.direct = false;
        set_direct_io(&self.file, false)
    }

    /// Writes what is buffered, turns `O_DIRECT` off and hands back the
    /// file.
    pub fn finish(mut self) -> io::Result<File> {
        self.write_out(true)?;
        if self.direct {
            self.stop_direct()?;
        }
        // Writes went to explicit offsets; later ones continue at the end.
        self.file.seek(SeekFrom::Start(self.offset))?;
        Ok(self.file)
    }
}

impl Write for DirectWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let capacity = self.buffer.as_slice().len();
        if self.filled == capacity {
            self.write_out(false)?;
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
        self.write_out(false)?;
        if self.filled > 0 {
            if self.direct {
                set_direct_io(&self.file, false)?;
            }
            self.file
                .write_all_at(&self.buffer.as_slice()[..self.filled], self.offset)?;
            if self.direct && set_direct_io(&self.file, true).is_err() {
                self.direct = false;
            }
        }
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
