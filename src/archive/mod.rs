//! Reading tarballs back: the shared reader behind `inspect`, `verify`,
//! `diff` and `check FILE`.
//!
//! [`open_tarball`] detects the compression by its magic bytes (gzip, xz,
//! zstd, or a plain tar), decompresses as it reads (our own gzip members in
//! parallel, see `members.rs`), and hands out members one
//! at a time with raw-byte names: GNU `L`/`K` long names and link targets,
//! pax `path`/`linkpath`/`size` records, base-256 numbers and ustar prefixes
//! are applied, and the header checksum of every block is verified.
//! What it hands out is what GNU tar and bsdtar (so `wsl --import`) read
//! from the same bytes, or it fails: a member the two would read
//! differently (an unknown type flag, a link, device or fifo with a size, a
//! file named with a trailing `/`, a hard link to nothing) is an error, as
//! is a gzip member whose "WT" length is not its own (`members.rs`).
//!
//! ```no_run
//! # use std::io::Read;
//! let mut tarball = wsl_tarball::archive::open_tarball("nixos.wsl".as_ref())?;
//! while let Some(member) = tarball.next_member()? {
//!     let mut bytes = Vec::new();
//!     tarball.content().read_to_end(&mut bytes)?;
//!     println!("{} {} bytes", member.display_path(), bytes.len());
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The reader is a lending iterator: a member's content can be read until the
//! next call to [`TarballReader::next_member`], which skips whatever is left.
//! [`MemberContent`] is also a `BufRead`, lending the decompressor's own
//! buffer (for our gzip members, the inflated member), so a caller that only
//! looks at the bytes (hashing) does not copy them.

mod error;
mod header;
mod member;
mod members;

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

pub use crate::tar::layout::header_field_at;
pub use error::{is_stdin, sniff_format, source_name, ArchiveError, ReadError, STDIN_ARGUMENT};
pub use header::HeaderError;
use header::{decode_header, is_zero_block, until_nul};
pub use member::{display_path, normalize_path, ArchiveEnd, Member};

use crate::compress::Compression;
use crate::tar::{padding_len, MemberKind, BLOCK_SIZE, RECORD_SIZE};

/// Counts the bytes it reads and, if asked, hashes them.
struct Tap<R> {
    inner: R,
    bytes: u64,
    sha256: Option<Sha256>,
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

/// A tarball being read member by member.
pub struct TarballReader {
    compression: Compression,
    /// The decompressed tar stream, counted (and optionally hashed).
    stream: Tap<Box<dyn BufRead + Send>>,
    /// Handle on the compressed file's counter, shared through the decoder.
    file_tap: Arc<Mutex<FileStats>>,
    /// Content bytes of the current member not yet read.
    remaining: u64,
    /// Padding after the current member's content.
    pending_padding: usize,
    /// Members returned so far.
    members: u64,
    end: Option<ArchiveEnd>,
}

#[derive(Default)]
struct FileStats {
    bytes: u64,
    sha256: Option<Sha256>,
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

fn read_up_to(reader: &mut impl Read, buffer: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
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
fn stream_error(
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

/// A pax or GNU long-name override for the next member.
#[derive(Default)]
struct Overrides {
    /// From a GNU `L` and `K` header.
    path: Option<Vec<u8>>,
    link_target: Option<Vec<u8>>,
    /// From a pax `path` and `linkpath` record.
    pax_path: Option<Vec<u8>>,
    pax_link_target: Option<Vec<u8>>,
    /// A pax header came.
    pax: bool,
    size: Option<u64>,
    uid: Option<u64>,
    gid: Option<u64>,
    mtime: Option<u64>,
}

/// Extension members are small; refuse absurd ones.
const MAX_EXTENSION_SIZE: u64 = 1 << 20;

impl TarballReader {
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

    /// An error of the decompressed stream at `offset` of the tar stream,
    /// said as what it is: a truncated or corrupt compressed file.
    fn read_error(&self, offset: u64, source: io::Error) -> ArchiveError {
        stream_error(self.compression, &self.file_tap, offset, source)
    }

    /// The compression detected from the file's magic bytes.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// Do not hash the compressed file: [`TarballReader::file_sha256`] is
    /// then `None`. For callers that do not report it (`verify`); call
    /// before reading the first member.
    pub fn skip_file_sha256(&mut self) {
        if let Ok(mut stats) = self.file_tap.lock() {
            stats.sha256 = None;
        }
    }

    /// Also hash the uncompressed tar stream (see [`TarballReader::tar_sha256`]).
    /// Call before reading the first member.
    pub fn hash_tar_stream(&mut self) {
        self.stream.sha256 = Some(Sha256::new());
    }

    /// Bytes of the uncompressed tar stream read so far.
    pub fn tar_offset(&self) -> u64 {
        self.stream.bytes
    }

    /// Bytes of the compressed file read so far.
    pub fn file_bytes_read(&self) -> u64 {
        self.file_tap.lock().map_or(0, |s| s.bytes)
    }

    /// How the archive ended, once [`TarballReader::next_member`] returned `None`.
    pub fn end(&self) -> Option<ArchiveEnd> {
        self.end
    }

    /// SHA-256 of the whole file, once the archive has been read to its end
    /// (the rest of the file is read to compute it); `None` after
    /// [`TarballReader::skip_file_sha256`] (or once it was taken).
    pub fn file_sha256(&mut self) -> Result<Option<[u8; 32]>, ArchiveError> {
        self.drain()?;
        let mut stats = self.file_tap.lock().map_err(|_| ArchiveError::Read {
            offset: 0,
            source: io::Error::other("poisoned lock"),
        })?;
        Ok(stats.sha256.take().map(|hasher| hasher.finalize().into()))
    }

    /// Size of the compressed file, once it has been read to its end.
    pub fn file_size(&mut self) -> Result<u64, ArchiveError> {
        self.drain()?;
        Ok(self.file_bytes_read())
    }

    /// SHA-256 of the uncompressed tar stream, if asked for with
    /// [`TarballReader::hash_tar_stream`], once the archive has been read.
    pub fn tar_sha256(&mut self) -> Result<Option<[u8; 32]>, ArchiveError> {
        self.drain()?;
        Ok(self.stream.sha256.take().map(|h| h.finalize().into()))
    }

    /// Reads everything left, so that counts and digests are complete.
    fn drain(&mut self) -> Result<(), ArchiveError> {
        while self.end.is_none() {
            self.next_member()?;
        }
        if let Some(offset) = self.end.and_then(|end| end.trailing_data) {
            return Err(ArchiveError::TrailingData { offset });
        }
        let offset = self.stream.bytes;
        io::copy(&mut self.stream, &mut io::sink())
            .map_err(|source| self.read_error(offset, source))?;
        Ok(())
    }

    /// The current member's content (what [`TarballReader::next_member`]
    /// returned last); it ends after `size` bytes.
    pub fn content(&mut self) -> MemberContent<'_> {
        MemberContent { reader: self }
    }

    /// The next member, or `None` at the end of the archive. Content of the
    /// previous member that was not read is skipped.
    pub fn next_member(&mut self) -> Result<Option<Member>, ArchiveError> {
        if self.end.is_some() {
            return Ok(None);
        }
        self.skip_rest()?;
        let mut overrides = Overrides::default();
        let mut first_offset = None;
        loop {
            let offset = self.stream.bytes;
            let mut block = [0u8; BLOCK_SIZE];
            let n = read_up_to(&mut self.stream, &mut block)
                .map_err(|source| self.read_error(offset, source))?;
            match (n, offset) {
                (0, 0) => {
                    return Err(ArchiveError::Empty {
                        compression: self.compression,
                    })
                }
                (0, _) => {
                    // EOF without end-of-archive blocks.
                    self.end = Some(ArchiveEnd {
                        zero_blocks: 0,
                        trailing_data: None,
                        tar_bytes: offset,
                    });
                    return Ok(None);
                }
                (BLOCK_SIZE, _) => {}
                (_, 0) => {
                    return Err(ArchiveError::NotTar {
                        compression: self.compression,
                        looks_like: sniff_format(&block[..n]),
                        short: Some(n as u64),
                    })
                }
                _ => {
                    return Err(ArchiveError::Truncated {
                        offset,
                        what: "a header",
                    })
                }
            }
            if is_zero_block(&block) {
                self.finish_at_zero_block(offset)?;
                return Ok(None);
            }
            first_offset.get_or_insert(offset);
            let raw = match decode_header(&block) {
                Ok(raw) => raw,
                // A block with tar's magic is a damaged tar header.
                Err(_) if offset == 0 && !crate::tar::layout::has_tar_magic(&block) => {
                    return Err(ArchiveError::NotTar {
                        compression: self.compression,
                        looks_like: sniff_format(&block),
                        short: None,
                    })
                }
                Err(source) => return Err(ArchiveError::Header { offset, source }),
            };
            let kind = MemberKind::from_flag(raw.type_flag);
            match kind {
                MemberKind::GnuLongName | MemberKind::GnuLongLink => {
                    let data = self.read_extension(raw.size, offset, "GNU long name")?;
                    let value = until_nul(&data).to_vec();
                    // A second one replaces the first, in GNU tar and bsdtar.
                    if kind == MemberKind::GnuLongName {
                        overrides.path = Some(value);
                    } else {
                        overrides.link_target = Some(value);
                    }
                }
                MemberKind::PaxHeader => {
                    let data = self.read_extension(raw.size, offset, "pax")?;
                    // A second pax header for one member: bsdtar refuses
                    // the archive, GNU tar keeps the last.
                    if std::mem::replace(&mut overrides.pax, true) {
                        return Err(ArchiveError::Extension {
                            offset,
                            kind: "pax",
                            message: "a second one for the same member; GNU tar keeps the \
                                      last, bsdtar refuses the archive, so it is refused"
                                .into(),
                        });
                    }
                    apply_pax(&data, &mut overrides).map_err(|message| {
                        ArchiveError::Extension {
                            offset,
                            kind: "pax",
                            message,
                        }
                    })?;
                }
                MemberKind::PaxGlobal => {
                    // Global pax headers hold nothing a rootfs member needs;
                    // the records GNU tar would apply to the members after
                    // them (and bsdtar would not) are refused.
                    let data = self.read_extension(raw.size, offset, "pax global")?;
                    global_pax_conflict(&data).map_err(|message| ArchiveError::Extension {
                        offset,
                        kind: "pax global",
                        message,
                    })?;
                }
                _ => {
                    // A GNU long name and a pax name for one member: GNU tar
                    // takes the pax one, bsdtar the one that came first.
                    if (overrides.path.is_some() && overrides.pax_path.is_some())
                        || (overrides.link_target.is_some() && overrides.pax_link_target.is_some())
                    {
                        return Err(ArchiveError::Extension {
                            offset,
                            kind: "GNU long name",
                            message: "a pax name for the same member as well; GNU tar and \
                                      bsdtar take different ones, so it is refused"
                                .into(),
                        });
                    }
                    let raw_name = (overrides.pax_path.take())
                        .or(overrides.path.take())
                        .unwrap_or(raw.name);
                    let size = overrides.size.unwrap_or(raw.size);
                    // What GNU tar and bsdtar read alike, or nothing: a
                    // member either of them would read otherwise (its
                    // content extracted where this reader saw a header, or
                    // the reverse) is refused.
                    let refused = match kind {
                        MemberKind::Other(flag) => Some(HeaderError::UnsupportedType { flag }),
                        MemberKind::Regular if raw_name.ends_with(b"/") => {
                            Some(HeaderError::FileNamedAsDirectory)
                        }
                        MemberKind::Regular | MemberKind::Directory => None,
                        _ if size > 0 => Some(HeaderError::SizedNonFile {
                            kind: kind.describe(),
                            size,
                        }),
                        _ => None,
                    };
                    let header_link_empty = raw.link_name.is_empty();
                    let link_target = (overrides.pax_link_target.take())
                        .or(overrides.link_target.take())
                        .unwrap_or(raw.link_name);
                    // bsdtar takes a long link name only if the header has
                    // a link name of its own; GNU tar takes it anyway.
                    let refused = refused.or_else(|| {
                        (matches!(kind, MemberKind::Symlink | MemberKind::HardLink)
                            && header_link_empty
                            && !link_target.is_empty())
                        .then_some(HeaderError::LongLinkWithoutLinkName)
                    });
                    let refused = refused.or_else(|| {
                        (kind == MemberKind::HardLink && link_target.is_empty())
                            .then_some(HeaderError::EmptyHardLinkTarget)
                    });
                    if let Some(source) = refused {
                        return Err(ArchiveError::Header { offset, source });
                    }
                    let content_size = match kind {
                        MemberKind::Regular => size,
                        _ => 0,
                    };
                    self.remaining = content_size;
                    self.pending_padding = padding_len(content_size);
                    self.members += 1;
                    return Ok(Some(Member {
                        path: normalize_path(&raw_name),
                        raw_name,
                        kind,
                        mode: raw.mode,
                        uid: overrides.uid.unwrap_or(raw.uid),
                        gid: overrides.gid.unwrap_or(raw.gid),
                        mtime: overrides.mtime.unwrap_or(raw.mtime),
                        size: content_size,
                        link_target,
                        user_name: raw.user_name,
                        group_name: raw.group_name,
                        header_block: block,
                        offset: first_offset.unwrap_or(offset),
                        content_offset: self.stream.bytes,
                    }));
                }
            }
        }
    }

    /// After the first zero block (at `first_zero`): the second must follow,
    /// then nothing but the zero padding of the record they end in (GNU tar
    /// and bsdtar pad to 20 blocks, 10240 bytes). Anything else, non-zero
    /// bytes or more zeros, is trailing data, and reading stops there, so an
    /// endless stream of zeros (`/dev/zero`) ends at once.
    fn finish_at_zero_block(&mut self, first_zero: u64) -> Result<(), ArchiveError> {
        let record = RECORD_SIZE as u64;
        let after_end_blocks = first_zero + 2 * BLOCK_SIZE as u64;
        let padding_end = after_end_blocks.div_ceil(record) * record;
        let mut zero_blocks = 1;
        let mut trailing_data = None;
        let mut buffer = [0u8; BLOCK_SIZE];
        loop {
            let offset = self.stream.bytes;
            // Up to the end of the record, then one byte more to see if the
            // stream ends there.
            let want = if offset < padding_end {
                (padding_end - offset).min(BLOCK_SIZE as u64) as usize
            } else {
                1
            };
            let n = read_up_to(&mut self.stream, &mut buffer[..want])
                .map_err(|source| self.read_error(offset, source))?;
            if n == 0 {
                break;
            }
            if offset >= padding_end {
                trailing_data = Some(offset);
                break;
            }
            if let Some(i) = buffer[..n].iter().position(|&b| b != 0) {
                // An ext2/3/4 image starts with 1024 zero bytes, then its
                // superblock with the magic 0xEF53 at byte 1080.
                if self.members == 0 && offset == 1024 && n >= 58 && buffer[56..58] == [0x53, 0xef]
                {
                    return Err(ArchiveError::NotTar {
                        compression: self.compression,
                        looks_like: Some("an ext2/3/4 file system image"),
                        short: None,
                    });
                }
                trailing_data = Some(offset + i as u64);
                break;
            }
            if zero_blocks == 1 && n == BLOCK_SIZE && offset == first_zero + BLOCK_SIZE as u64 {
                zero_blocks = 2;
            }
        }
        self.end = Some(ArchiveEnd {
            zero_blocks,
            trailing_data,
            tar_bytes: self.stream.bytes.min(trailing_data.unwrap_or(u64::MAX)),
        });
        Ok(())
    }

    fn read_extension(
        &mut self,
        size: u64,
        offset: u64,
        kind: &'static str,
    ) -> Result<Vec<u8>, ArchiveError> {
        if size > MAX_EXTENSION_SIZE {
            return Err(ArchiveError::Extension {
                offset,
                kind,
                message: format!("{size} bytes is too large"),
            });
        }
        let mut data = vec![0u8; size as usize];
        self.read_exact_or_truncated(&mut data, kind)?;
        let mut padding = vec![0u8; padding_len(size)];
        self.read_exact_or_truncated(&mut padding, kind)?;
        Ok(data)
    }

    fn read_exact_or_truncated(
        &mut self,
        buffer: &mut [u8],
        what: &'static str,
    ) -> Result<(), ArchiveError> {
        let offset = self.stream.bytes;
        let n = read_up_to(&mut self.stream, buffer)
            .map_err(|source| self.read_error(offset, source))?;
        if n < buffer.len() {
            return Err(ArchiveError::Truncated { offset, what });
        }
        Ok(())
    }

    /// Skips the unread content and the padding of the current member.
    fn skip_rest(&mut self) -> Result<(), ArchiveError> {
        let skip = self.remaining.saturating_add(self.pending_padding as u64);
        if skip > 0 {
            let offset = self.stream.bytes;
            let copied = io::copy(&mut (&mut self.stream).take(skip), &mut io::sink())
                .map_err(|source| self.read_error(offset, source))?;
            if copied < skip {
                return Err(ArchiveError::Truncated {
                    offset: self.stream.bytes,
                    what: "a member's content",
                });
            }
        }
        self.remaining = 0;
        self.pending_padding = 0;
        Ok(())
    }
}

/// The content of the current member; reads return 0 at its end, and an
/// `UnexpectedEof` error if the archive ends first.
pub struct MemberContent<'a> {
    reader: &'a mut TarballReader,
}

impl Read for MemberContent<'_> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let want = (self.reader.remaining.min(buffer.len() as u64)) as usize;
        if want == 0 {
            return Ok(0);
        }
        let offset = self.reader.stream.bytes;
        let n = match self.reader.stream.read(&mut buffer[..want]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Err(e),
            Err(e) => return Err(io::Error::other(self.reader.read_error(offset, e))),
        };
        if n == 0 {
            return Err(io::Error::other(ArchiveError::Truncated {
                offset,
                what: "a member's content",
            }));
        }
        self.reader.remaining -= n as u64;
        Ok(n)
    }
}

impl BufRead for MemberContent<'_> {
    /// The next bytes of the content, straight from the decompressor's
    /// buffer; empty at the content's end; an error if the archive ends first.
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        let TarballReader {
            stream,
            remaining,
            compression,
            file_tap,
            ..
        } = &mut *self.reader;
        if *remaining == 0 {
            return Ok(&[]);
        }
        let offset = stream.bytes;
        let bytes = match stream.fill_buf() {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Err(e),
            Err(e) => {
                return Err(io::Error::other(stream_error(
                    *compression,
                    file_tap,
                    offset,
                    e,
                )))
            }
        };
        if bytes.is_empty() {
            return Err(io::Error::other(ArchiveError::Truncated {
                offset,
                what: "a member's content",
            }));
        }
        let n = (*remaining).min(bytes.len() as u64) as usize;
        Ok(&bytes[..n])
    }

    fn consume(&mut self, n: usize) {
        let n = (n as u64).min(self.reader.remaining);
        self.reader.remaining -= n;
        self.reader.stream.consume(n as usize);
    }
}

/// A pax record's key and value.
type PaxRecord<'a> = (&'a [u8], &'a [u8]);

/// The records of a pax extended header (`LEN KEY=VALUE\n`).
fn pax_records(data: &[u8]) -> Result<Vec<PaxRecord<'_>>, String> {
    let mut records = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let space = rest
            .iter()
            .position(|&b| b == b' ')
            .ok_or("a record without a length")?;
        let len: usize = std::str::from_utf8(&rest[..space])
            .ok()
            .and_then(|t| t.parse().ok())
            .ok_or("a record length that is not a number")?;
        if len <= space + 1 || len > rest.len() || rest[len - 1] != b'\n' {
            return Err("a record length that does not match the record".into());
        }
        let record = &rest[space + 1..len - 1];
        let equals = record
            .iter()
            .position(|&b| b == b'=')
            .ok_or("a record without '='")?;
        records.push((&record[..equals], &record[equals + 1..]));
        rest = &rest[len..];
    }
    Ok(records)
}

/// GNU tar reads a file with `GNU.sparse.*` records as a sparse file, under
/// another name and with other content than its bytes; bsdtar too.
const SPARSE_PREFIX: &[u8] = b"GNU.sparse.";

/// Applies the records of a pax extended header (`LEN KEY=VALUE\n`).
fn apply_pax(data: &[u8], overrides: &mut Overrides) -> Result<(), String> {
    for (key, value) in pax_records(data)? {
        let number = || -> Result<u64, String> {
            let text = std::str::from_utf8(value).map_err(|_| "a non-UTF-8 number")?;
            let whole = text.split('.').next().unwrap_or(text);
            whole
                .parse()
                // Quoted as Debug does: the readers' own errors stay
                // printable (tests/fuzz.rs), before main.rs escapes them.
                .map_err(|_| format!("{text:?} is not a number"))
        };
        match key {
            b"path" => overrides.pax_path = Some(value.to_vec()),
            b"linkpath" => overrides.pax_link_target = Some(value.to_vec()),
            b"size" => overrides.size = Some(number()?),
            b"uid" => overrides.uid = Some(number()?),
            b"gid" => overrides.gid = Some(number()?),
            b"mtime" => overrides.mtime = Some(number()?),
            _ if key.starts_with(SPARSE_PREFIX) => {
                return Err(format!(
                    "a {} record: GNU tar and bsdtar read the file as a sparse file, with \
                     another name and content, so it is refused",
                    crate::escape::escape_bytes(key)
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

/// Keys of a pax global header that GNU tar applies to every member after
/// it and bsdtar ignores: a name, a size or an owner the two read apart.
const GLOBAL_KEYS_READ_APART: [&[u8]; 7] = [
    b"path",
    b"linkpath",
    b"size",
    b"uid",
    b"gid",
    b"uname",
    b"gname",
];

/// Why a pax global header is refused, if it is.
fn global_pax_conflict(data: &[u8]) -> Result<(), String> {
    for (key, _) in pax_records(data)? {
        if GLOBAL_KEYS_READ_APART.contains(&key) || key.starts_with(SPARSE_PREFIX) {
            return Err(format!(
                "a '{}' record: GNU tar applies it to every member after it, bsdtar \
                 ignores it, so it is refused",
                crate::escape::escape_bytes(key)
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
