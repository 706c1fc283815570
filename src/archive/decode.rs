//! Opening a tarball: the compression by its magic bytes, and the decoder
//! stack between the file and the tar reader (our gzip members inflated in
//! parallel by `members.rs`, xz, zstd), counting and hashing the file and
//! the tar stream as they are read.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use super::error::is_stdin;
use super::members::{self, read_up_to};
use super::{ArchiveError, TarballReader};
use crate::compress::Compression;

/// Counts the bytes it reads and, if asked, hashes them.
pub(super) struct Tap<R> {
    pub(super) inner: R,
    pub(super) bytes: u64,
    pub(super) sha256: Option<Sha256>,
}

impl<R: BufRead> Read for Tap<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buffer)?;
        self.bytes += n as u64;
        if let Some(hasher) = &mut self.sha256 {
            hasher.update(&buffer[..n]);
        }
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Tap<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    /// Counts (and hashes) the consumed bytes, which the inner reader still
    /// holds: `fill_buf` hands them out again without reading.
    fn consume(&mut self, n: usize) {
        if let (Some(hasher), true) = (&mut self.sha256, n > 0) {
            if let Ok(bytes) = self.inner.fill_buf() {
                hasher.update(&bytes[..n.min(bytes.len())]);
            }
        }
        self.bytes += n as u64;
        self.inner.consume(n);
    }
}

/// Detects the compression of a file from its first bytes.
pub fn detect_compression(magic: &[u8]) -> Compression {
    if magic.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if magic.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Compression::Xz
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// The most memory the xz decoder may use: xz -9 needs 65 MiB.
const XZ_MEMORY_LIMIT: u64 = 72 << 20;
/// The largest zstd window accepted (64 MiB): zstd -19 uses 8 MiB, and
/// `--long` 27 is refused with a clear error rather than 128 MiB of memory.
const ZSTD_WINDOW_LOG_MAX: u32 = 26;

#[derive(Default)]
pub(super) struct FileStats {
    pub(super) bytes: u64,
    pub(super) sha256: Option<Sha256>,
}

/// The bytes read to detect the compression, then the rest of the file.
type HeadThenRest = io::Chain<io::Cursor<Vec<u8>>, Box<dyn Read + Send>>;

/// Reads the file and reports its size and digest to a shared place, so the
/// decoder can own the reader.
struct SharedTap {
    inner: BufReader<HeadThenRest>,
    stats: Arc<Mutex<FileStats>>,
}

impl Read for SharedTap {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buffer)?;
        if let Ok(mut stats) = self.stats.lock() {
            stats.bytes += n as u64;
            if let Some(hasher) = &mut stats.sha256 {
                hasher.update(&buffer[..n]);
            }
        }
        Ok(n)
    }
}

impl BufRead for SharedTap {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    /// Counts (and hashes) the consumed bytes, as [`Tap`] does.
    fn consume(&mut self, n: usize) {
        if let Ok(mut stats) = self.stats.lock() {
            stats.bytes += n as u64;
            if let (Some(hasher), true) = (&mut stats.sha256, n > 0) {
                if let Ok(bytes) = self.inner.fill_buf() {
                    hasher.update(&bytes[..n.min(bytes.len())]);
                }
            }
        }
        self.inner.consume(n);
    }
}

/// Opens a tarball, detecting its compression; `-` is standard input.
/// The file is read once, front to back, so pipes and FIFOs work. Its
/// SHA-256 is computed as it is read ([`TarballReader::file_sha256`]),
/// unless [`TarballReader::skip_file_sha256`] says it is not needed.
pub fn open_tarball(path: &Path) -> Result<TarballReader, ArchiveError> {
    let open_error = |source| ArchiveError::Open { source };
    let mut file: Box<dyn Read + Send> = if is_stdin(path) {
        Box::new(io::stdin())
    } else {
        let file = File::open(path).map_err(open_error)?;
        if file.metadata().is_ok_and(|m| m.is_dir()) {
            return Err(open_error(io::Error::other("it is a directory")));
        }
        Box::new(file)
    };
    let mut head = vec![0u8; 6];
    let got = read_up_to(&mut file, &mut head)
        .map_err(|source| ArchiveError::Read { offset: 0, source })?;
    head.truncate(got);
    if got == 0 {
        return Err(ArchiveError::Empty {
            compression: Compression::None,
        });
    }
    let compression = detect_compression(&head);
    TarballReader::from_parts(compression, head, file)
}

/// Opens a tarball held in memory (the fuzz tests' way in).
pub fn read_tarball_bytes(bytes: Vec<u8>) -> Result<TarballReader, ArchiveError> {
    if bytes.is_empty() {
        return Err(ArchiveError::Empty {
            compression: Compression::None,
        });
    }
    let compression = detect_compression(&bytes);
    TarballReader::from_parts(compression, bytes, Box::new(io::empty()))
}

/// The buffer in front of the file. Reads larger than it (most of a gzip
/// member of ours) go straight from the file to the caller's buffer.
const FILE_BUFFER: usize = 64 << 10;
/// The buffer between the xz and zstd decoders and the tar reader.
const DECODED_BUFFER: usize = 256 << 10;

/// What a decoder's error means: the compressed data ends early, or is
/// corrupt (or needs more memory than allowed).
fn decoder_error(compression: Compression, file_offset: u64, source: io::Error) -> ArchiveError {
    // Our gzip members name themselves (offset, truncated or damaged).
    if let Some(member) = source
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<members::MemberError>())
    {
        return ArchiveError::Member {
            message: member.to_string(),
        };
    }
    let text = source.to_string();
    if text.contains("memory limit") || text.contains("too much memory") {
        return ArchiveError::DecoderMemory {
            compression,
            limit: match compression {
                Compression::Xz => XZ_MEMORY_LIMIT,
                _ => 1 << ZSTD_WINDOW_LOG_MAX,
            },
        };
    }
    let truncated = source.kind() == io::ErrorKind::UnexpectedEof
        || source.to_string().contains("incomplete")
        || source.to_string().contains("premature end");
    if truncated {
        ArchiveError::TruncatedCompressed {
            compression,
            file_offset,
        }
    } else {
        ArchiveError::Corrupt {
            compression,
            file_offset,
            source,
        }
    }
}

/// [`TarballReader::read_error`], from the fields it needs.
pub(super) fn stream_error(
    compression: Compression,
    file_tap: &Mutex<FileStats>,
    offset: u64,
    source: io::Error,
) -> ArchiveError {
    match compression {
        Compression::None => ArchiveError::Read { offset, source },
        compression => {
            let file_offset = file_tap.lock().map_or(0, |s| s.bytes);
            decoder_error(compression, file_offset, source)
        }
    }
}

impl TarballReader {
    /// The reader of a file whose first bytes are `head` and the rest `rest`,
    /// through the decoder `compression` names.
    fn from_parts(
        compression: Compression,
        head: Vec<u8>,
        rest: Box<dyn Read + Send>,
    ) -> Result<Self, ArchiveError> {
        let setup_error = |source| ArchiveError::Corrupt {
            compression,
            file_offset: 0,
            source,
        };
        let stats = Arc::new(Mutex::new(FileStats {
            bytes: 0,
            sha256: Some(Sha256::new()),
        }));
        let whole = SharedTap {
            inner: BufReader::with_capacity(FILE_BUFFER, io::Cursor::new(head).chain(rest)),
            stats: stats.clone(),
        };
        let decoded: Box<dyn BufRead + Send> = match compression {
            Compression::Gzip => Box::new(members::GzipMembers::new(whole)),
            Compression::Xz => {
                let stream = liblzma::stream::Stream::new_stream_decoder(
                    XZ_MEMORY_LIMIT,
                    liblzma::stream::CONCATENATED,
                )
                .map_err(|e| setup_error(io::Error::other(e)))?;
                Box::new(BufReader::with_capacity(
                    DECODED_BUFFER,
                    liblzma::read::XzDecoder::new_stream(whole, stream),
                ))
            }
            Compression::Zstd => {
                let mut decoder = zstd::stream::read::Decoder::new(whole).map_err(setup_error)?;
                decoder
                    .window_log_max(ZSTD_WINDOW_LOG_MAX)
                    .map_err(setup_error)?;
                Box::new(BufReader::with_capacity(DECODED_BUFFER, decoder))
            }
            Compression::None => Box::new(whole),
        };
        Ok(TarballReader {
            compression,
            stream: Tap {
                inner: decoded,
                bytes: 0,
                sha256: None,
            },
            file_tap: stats,
            remaining: 0,
            pending_padding: 0,
            members: 0,
            end: None,
        })
    }
}
