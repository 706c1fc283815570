//! Standard output as a tarball's destination: which names mean it, and
//! the [`Stream`] that holds back the last bytes until the run has passed
//! every check.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use crate::os;

use super::OutputError;

/// Whether `destination` names standard output: `-`, as the readers take
/// `-` for standard input, or `/dev/stdout`, `/dev/fd/1`,
/// `/proc/self/fd/1` (a link to a pipe that [`AtomicOutput`] could not
/// replace).
pub fn is_stdout(destination: &Path) -> bool {
    let text = destination.as_os_str().as_encoded_bytes();
    matches!(
        text,
        b"-" | b"/dev/stdout" | b"/dev/fd/1" | b"/proc/self/fd/1"
    )
}

/// How many bytes at the end of a [`Stream`] wait for
/// [`Stream::complete`]. Eight is the gzip trailer (CRC-32 and size) of the
/// last member, less than the xz stream footer and than any zstd frame: a
/// run that fails after its stream started leaves a compressed stream that
/// every reader rejects as cut short. (Without compression the end is zero
/// padding, which tar readers do not miss: there only the exit status
/// tells.)
pub const HELD_BACK: usize = 8;

/// Standard output as a tarball's destination: written as the bytes come,
/// past a buffer, holding back the last [`HELD_BACK`] bytes until
/// [`Stream::complete`]. Dropped without it, the stream stays cut short.
pub struct Stream {
    pub(super) out: io::BufWriter<File>,
    pub(super) held: Vec<u8>,
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Stream")
    }
}

impl Stream {
    /// Standard output, unless it is a terminal (compressed bytes there
    /// are of no use, as gzip and zstd say). Also makes a file-size limit
    /// an ordinary write error (SIGXFSZ ignored), as for files.
    pub fn open() -> Result<Self, OutputError> {
        check_stdout_not_terminal()?;
        os::ignore_file_size_signal();
        use std::os::fd::AsFd;
        let fd = io::stdout()
            .as_fd()
            .try_clone_to_owned()
            .map_err(OutputError::Stream)?;
        Ok(Stream {
            out: io::BufWriter::with_capacity(1 << 20, File::from(fd)),
            held: Vec::with_capacity(2 * HELD_BACK),
        })
    }

    /// Sends the bytes held back and flushes: the stream is whole.
    pub fn complete(mut self) -> Result<(), OutputError> {
        let held = std::mem::take(&mut self.held);
        self.out
            .write_all(&held)
            .and_then(|()| self.out.flush())
            .map_err(OutputError::Stream)
    }
}

impl Write for Stream {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        if bytes.len() >= HELD_BACK {
            self.out.write_all(&self.held)?;
            self.held.clear();
            let (now, later) = bytes.split_at(bytes.len() - HELD_BACK);
            self.out.write_all(now)?;
            self.held.extend_from_slice(later);
        } else {
            self.held.extend_from_slice(bytes);
            let over = self.held.len().saturating_sub(HELD_BACK);
            self.out.write_all(&self.held[..over])?;
            self.held.drain(..over);
        }
        Ok(bytes.len())
    }

    /// Flushes what has been sent; the held bytes stay held.
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Bad usage when standard output is a terminal (see [`Stream::open`]):
/// checked before a run reads anything.
pub fn check_stdout_not_terminal() -> Result<(), OutputError> {
    use std::io::IsTerminal;
    if io::stdout().is_terminal() {
        return Err(OutputError::Terminal);
    }
    Ok(())
}
