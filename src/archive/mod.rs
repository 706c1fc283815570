//! Reading tarballs back: the shared reader behind `inspect`, `verify`,
//! `diff` and `check FILE`.
//!
//! [`open_tarball`] detects the compression by its magic bytes (gzip, xz,
//! zstd, or a plain tar), decompresses as it reads (our own gzip members in
//! parallel, see `members.rs`), and hands out members one
//! at a time with raw-byte names: GNU `L`/`K` long names and link targets,
//! pax `path`/`linkpath`/`size` records, base-256 numbers and ustar prefixes
//! are applied, and the header checksum of every block is verified.
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

mod header;
mod members;

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use header::{decode_header, is_zero_block, until_nul};
pub use header::{header_field_at, HeaderError, HEADER_FIELDS};

use crate::compress::Compression;
use crate::tar::{padding_len, BLOCK_SIZE};

/// Why a tarball could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("cannot open {}: {source}", path.display())]
    Open { path: PathBuf, source: io::Error },
    #[error("reading the archive at byte {offset} of the tar stream: {source}")]
    Read { offset: u64, source: io::Error },
    #[error("the archive ends in the middle of {what} at byte {offset} of the tar stream")]
    Truncated { offset: u64, what: &'static str },
    #[error("bad tar header at byte {offset} of the tar stream: {source}")]
    Header { offset: u64, source: HeaderError },
    #[error("bad {kind} record at byte {offset} of the tar stream: {message}")]
    Extension {
        offset: u64,
        kind: &'static str,
        message: String,
    },
}

/// What a member is, by its tar type flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberKind {
    Regular,
    Directory,
    Symlink,
    /// A hard link to an earlier member (its name is the link target).
    HardLink,
    CharDevice,
    BlockDevice,
    Fifo,
    /// Any other type flag.
    Other(u8),
}

impl MemberKind {
    fn from_flag(flag: u8) -> Self {
        match flag {
            b'0' | b'\0' | b'7' => MemberKind::Regular,
            b'1' => MemberKind::HardLink,
            b'2' => MemberKind::Symlink,
            b'3' => MemberKind::CharDevice,
            b'4' => MemberKind::BlockDevice,
            b'5' => MemberKind::Directory,
            b'6' => MemberKind::Fifo,
            other => MemberKind::Other(other),
        }
    }

    /// A word for messages.
    pub fn describe(&self) -> String {
        match self {
            MemberKind::Regular => "file".into(),
            MemberKind::Directory => "directory".into(),
            MemberKind::Symlink => "symlink".into(),
            MemberKind::HardLink => "hard link".into(),
            MemberKind::CharDevice => "character device".into(),
            MemberKind::BlockDevice => "block device".into(),
            MemberKind::Fifo => "fifo".into(),
            MemberKind::Other(flag) => format!("type {:?}", char::from(*flag)),
        }
    }
}

/// One archive member, with long names and pax records applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Rootfs path without `./`, a leading `/` or a trailing `/`; empty for
    /// the root. `nix/store/…-hello/bin/hello`.
    pub path: Vec<u8>,
    /// The name exactly as the archive spells it (`./nix/store/`).
    pub raw_name: Vec<u8>,
    pub kind: MemberKind,
    /// Permission bits (`0o7777`).
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    /// Bytes of content that follow the header (0 for all but files).
    pub size: u64,
    /// Symlink or hard-link target; empty otherwise.
    pub link_target: Vec<u8>,
    pub user_name: Vec<u8>,
    pub group_name: Vec<u8>,
    /// The member's own header block (after any long-name members).
    pub header_block: [u8; BLOCK_SIZE],
    /// Offset of the member's first header block (long names included) in
    /// the uncompressed tar stream.
    pub offset: u64,
    /// Offset of the content in the uncompressed tar stream.
    pub content_offset: u64,
}

impl Member {
    /// The path as `/`-rooted text for messages (lossy for non-UTF-8).
    pub fn display_path(&self) -> String {
        display_path(&self.path)
    }
}

/// A rootfs path as `/`-rooted text (lossy for non-UTF-8 bytes).
pub fn display_path(path: &[u8]) -> String {
    format!("/{}", String::from_utf8_lossy(path))
}

/// How the archive ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ArchiveEnd {
    /// Zero blocks seen where the archive ended (GNU tar writes two).
    pub zero_blocks: u32,
    /// Non-zero bytes after the end-of-archive blocks.
    pub trailing_garbage: bool,
    /// Size of the uncompressed tar stream, end blocks and padding included.
    pub tar_bytes: u64,
}

/// Counts the bytes it reads and, if asked, hashes them.
struct Tap<R> {
    inner: R,
    bytes: u64,
    sha256: Option<Sha256>,
}

impl<R: Read> Read for Tap<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buffer)?;
        self.bytes += n as u64;
        if let Some(hasher) = &mut self.sha256 {
            hasher.update(&buffer[..n]);
        }
        Ok(n)
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

/// A tarball being read member by member.
pub struct TarballReader {
    compression: Compression,
    /// The decompressed tar stream, counted (and optionally hashed).
    stream: Tap<Box<dyn Read + Send>>,
    /// Handle on the compressed file's counter, shared through the decoder.
    file_tap: Arc<Mutex<FileStats>>,
    /// Content bytes of the current member not yet read.
    remaining: u64,
    /// Padding after the current member's content.
    pending_padding: usize,
    end: Option<ArchiveEnd>,
}

#[derive(Default)]
struct FileStats {
    bytes: u64,
    sha256: Option<Sha256>,
}

/// Reads the file and reports its size and digest to a shared place, so the
/// decoder can own the reader.
struct SharedTap {
    inner: BufReader<File>,
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

/// Opens a tarball, detecting its compression. The file's SHA-256 is
/// computed as it is read ([`TarballReader::file_sha256`]).
pub fn open_tarball(path: &Path) -> Result<TarballReader, ArchiveError> {
    let open_error = |source| ArchiveError::Open {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(open_error)?;
    let mut magic = [0u8; 6];
    let got = read_up_to(&mut file, &mut magic).map_err(open_error)?;
    let compression = detect_compression(&magic[..got]);
    file.seek(SeekFrom::Start(0)).map_err(open_error)?;
    let stats = Arc::new(Mutex::new(FileStats {
        bytes: 0,
        sha256: Some(Sha256::new()),
    }));
    let whole = SharedTap {
        inner: BufReader::with_capacity(1 << 20, file),
        stats: stats.clone(),
    };
    let decoded: Box<dyn Read + Send> = match compression {
        Compression::Gzip => Box::new(members::GzipMembers::new(whole)),
        Compression::Xz => Box::new(xz2::read::XzDecoder::new_multi_decoder(whole)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(whole).map_err(open_error)?),
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
        end: None,
    })
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

/// A pax or GNU long-name override for the next member.
#[derive(Default)]
struct Overrides {
    path: Option<Vec<u8>>,
    link_target: Option<Vec<u8>>,
    size: Option<u64>,
    uid: Option<u64>,
    gid: Option<u64>,
    mtime: Option<u64>,
}

/// Extension members are small; refuse absurd ones.
const MAX_EXTENSION_SIZE: u64 = 1 << 20;

impl TarballReader {
    /// The compression detected from the file's magic bytes.
    pub fn compression(&self) -> Compression {
        self.compression
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
    /// (the rest of the file is read to compute it).
    pub fn file_sha256(&mut self) -> Result<[u8; 32], ArchiveError> {
        self.drain()?;
        let mut stats = self.file_tap.lock().map_err(|_| ArchiveError::Read {
            offset: 0,
            source: io::Error::other("poisoned lock"),
        })?;
        let hasher = stats.sha256.take().unwrap_or_default();
        let digest: [u8; 32] = hasher.finalize().into();
        stats.sha256 = None;
        Ok(digest)
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
        let offset = self.stream.bytes;
        io::copy(&mut self.stream, &mut io::sink())
            .map_err(|source| ArchiveError::Read { offset, source })?;
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
            let Some(block) = self.read_block("a header")? else {
                // EOF without end-of-archive blocks.
                self.end = Some(ArchiveEnd {
                    zero_blocks: 0,
                    trailing_garbage: false,
                    tar_bytes: offset,
                });
                return Ok(None);
            };
            if is_zero_block(&block) {
                self.finish_at_zero_block()?;
                return Ok(None);
            }
            first_offset.get_or_insert(offset);
            let raw =
                decode_header(&block).map_err(|source| ArchiveError::Header { offset, source })?;
            match raw.type_flag {
                b'L' | b'K' => {
                    let data = self.read_extension(raw.size, offset, "GNU long name")?;
                    let value = until_nul(&data).to_vec();
                    if raw.type_flag == b'L' {
                        overrides.path = Some(value);
                    } else {
                        overrides.link_target = Some(value);
                    }
                }
                b'x' => {
                    let data = self.read_extension(raw.size, offset, "pax")?;
                    apply_pax(&data, &mut overrides).map_err(|message| {
                        ArchiveError::Extension {
                            offset,
                            kind: "pax",
                            message,
                        }
                    })?;
                }
                b'g' => {
                    // Global pax headers hold nothing a rootfs member needs.
                    self.read_extension(raw.size, offset, "pax global")?;
                }
                _ => {
                    let kind = MemberKind::from_flag(raw.type_flag);
                    let raw_name = overrides.path.take().unwrap_or(raw.name);
                    let size = overrides.size.unwrap_or(raw.size);
                    let content_size = match kind {
                        MemberKind::Regular | MemberKind::Other(_) => size,
                        _ => 0,
                    };
                    self.remaining = content_size;
                    self.pending_padding = padding_len(content_size);
                    return Ok(Some(Member {
                        path: normalize_path(&raw_name),
                        raw_name,
                        kind,
                        mode: raw.mode,
                        uid: overrides.uid.unwrap_or(raw.uid),
                        gid: overrides.gid.unwrap_or(raw.gid),
                        mtime: overrides.mtime.unwrap_or(raw.mtime),
                        size: content_size,
                        link_target: overrides.link_target.take().unwrap_or(raw.link_name),
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

    /// After the first zero block: the second must follow; the rest of the
    /// stream must be zeros.
    fn finish_at_zero_block(&mut self) -> Result<(), ArchiveError> {
        let mut zero_blocks = 1;
        let mut trailing_garbage = false;
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let offset = self.stream.bytes;
            let n = read_up_to(&mut self.stream, &mut buffer)
                .map_err(|source| ArchiveError::Read { offset, source })?;
            if n == 0 {
                break;
            }
            if zero_blocks == 1 {
                // The block right after the first zero block.
                if n >= BLOCK_SIZE && buffer[..BLOCK_SIZE].iter().all(|&b| b == 0) {
                    zero_blocks = 2;
                }
            }
            if buffer[..n].iter().any(|&b| b != 0) {
                trailing_garbage = true;
            }
        }
        self.end = Some(ArchiveEnd {
            zero_blocks,
            trailing_garbage,
            tar_bytes: self.stream.bytes,
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

    fn read_block(&mut self, what: &'static str) -> Result<Option<[u8; BLOCK_SIZE]>, ArchiveError> {
        let mut block = [0u8; BLOCK_SIZE];
        let offset = self.stream.bytes;
        let n = read_up_to(&mut self.stream, &mut block)
            .map_err(|source| ArchiveError::Read { offset, source })?;
        match n {
            0 => Ok(None),
            BLOCK_SIZE => Ok(Some(block)),
            _ => Err(ArchiveError::Truncated { offset, what }),
        }
    }

    fn read_exact_or_truncated(
        &mut self,
        buffer: &mut [u8],
        what: &'static str,
    ) -> Result<(), ArchiveError> {
        let offset = self.stream.bytes;
        let n = read_up_to(&mut self.stream, buffer)
            .map_err(|source| ArchiveError::Read { offset, source })?;
        if n < buffer.len() {
            return Err(ArchiveError::Truncated { offset, what });
        }
        Ok(())
    }

    /// Skips the unread content and the padding of the current member.
    fn skip_rest(&mut self) -> Result<(), ArchiveError> {
        let skip = self.remaining + self.pending_padding as u64;
        if skip > 0 {
            let offset = self.stream.bytes;
            let copied = io::copy(&mut (&mut self.stream).take(skip), &mut io::sink())
                .map_err(|source| ArchiveError::Read { offset, source })?;
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
        let n = self.reader.stream.read(&mut buffer[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the archive ends in the middle of a member's content",
            ));
        }
        self.reader.remaining -= n as u64;
        Ok(n)
    }
}

/// Applies the records of a pax extended header (`LEN KEY=VALUE\n`).
fn apply_pax(data: &[u8], overrides: &mut Overrides) -> Result<(), String> {
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
        let (key, value) = (&record[..equals], &record[equals + 1..]);
        let number = || -> Result<u64, String> {
            let text = std::str::from_utf8(value).map_err(|_| "a non-UTF-8 number")?;
            let whole = text.split('.').next().unwrap_or(text);
            whole
                .parse()
                .map_err(|_| format!("{text:?} is not a number"))
        };
        match key {
            b"path" => overrides.path = Some(value.to_vec()),
            b"linkpath" => overrides.link_target = Some(value.to_vec()),
            b"size" => overrides.size = Some(number()?),
            b"uid" => overrides.uid = Some(number()?),
            b"gid" => overrides.gid = Some(number()?),
            b"mtime" => overrides.mtime = Some(number()?),
            _ => {}
        }
        rest = &rest[len..];
    }
    Ok(())
}

/// `./nix/store/` → `nix/store`; `./` and `.` → the empty root path.
pub fn normalize_path(name: &[u8]) -> Vec<u8> {
    let mut rest = name;
    loop {
        if let Some(r) = rest.strip_prefix(b"./") {
            rest = r;
        } else if let Some(r) = rest.strip_prefix(b"/") {
            rest = r;
        } else {
            break;
        }
    }
    while let Some(r) = rest.strip_suffix(b"/") {
        rest = r;
    }
    if rest == b"." {
        rest = b"";
    }
    rest.to_vec()
}

#[cfg(test)]
mod tests;
