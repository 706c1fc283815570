//! Progress of a write or a read, reported to an observer the caller passes
//! in.
//!
//! The library never prints: [`write_tarball`](crate::write::write_tarball)
//! counts the bytes of the tar stream as they go into the compressor and
//! tells a [`Progress`] now and then; `inspect`, `verify` and `diff` count
//! the bytes of the file(s) they read. The CLI turns that into a progress
//! bar or log lines; `()` ignores it.

use std::io::{self, Write};

/// Sees how far a write or a read has got.
pub trait Progress {
    /// `archive_bytes` bytes of the uncompressed tar stream are written, or,
    /// for a read, bytes of the (compressed) input file(s) are read.
    /// Called at most every [`REPORT_EVERY`] bytes, and once at the end.
    fn advance(&mut self, archive_bytes: u64);
}

/// No progress reporting.
impl Progress for () {
    fn advance(&mut self, _archive_bytes: u64) {}
}

/// How many bytes pass between two reports.
pub const REPORT_EVERY: u64 = 4 << 20;

/// A writer that counts what passes through it and reports to a [`Progress`].
pub struct ProgressWriter<'p, W: Write> {
    inner: W,
    progress: &'p mut dyn Progress,
    written: u64,
    reported: u64,
}

impl<'p, W: Write> ProgressWriter<'p, W> {
    pub fn new(inner: W, progress: &'p mut dyn Progress) -> Self {
        ProgressWriter {
            inner,
            progress,
            written: 0,
            reported: 0,
        }
    }

    /// The inner writer, for bytes that reach it another way (see
    /// [`ProgressWriter::count`]).
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// Counts archive bytes that reached the inner writer without passing
    /// through this one (spliced from the segment cache).
    pub fn count(&mut self, archive_bytes: u64) {
        self.written += archive_bytes;
    }

    /// Reports the final count and hands back the inner writer.
    pub fn finish(self) -> W {
        self.progress.advance(self.written);
        self.inner
    }
}

impl<W: Write> Write for ProgressWriter<'_, W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(bytes)?;
        self.written += n as u64;
        if self.written - self.reported >= REPORT_EVERY {
            self.reported = self.written;
            self.progress.advance(self.written);
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Seen(Vec<u64>);

    impl Progress for Seen {
        fn advance(&mut self, archive_bytes: u64) {
            self.0.push(archive_bytes);
        }
    }

    #[test]
    fn reports_every_few_megabytes_and_at_the_end() {
        let mut seen = Seen(Vec::new());
        let mut writer = ProgressWriter::new(Vec::new(), &mut seen);
        let chunk = vec![0u8; 1 << 20];
        for _ in 0..9 {
            writer.write_all(&chunk).unwrap();
        }
        let bytes = writer.finish();
        assert_eq!(bytes.len(), 9 << 20);
        assert_eq!(seen.0, vec![4 << 20, 8 << 20, 9 << 20]);
    }
}
