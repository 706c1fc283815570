//! Reading members one at a time: headers decoded and checked, GNU long
//! names and pax records applied (`pax.rs`), what GNU tar and bsdtar would
//! read differently refused, the end of the archive and what follows it;
//! and the [`MemberContent`] of the current member.

use std::io::{self, BufRead, Read};

use sha2::{Digest, Sha256};

use super::decode::stream_error;
use super::header::{decode_header, is_zero_block, until_nul, HeaderError};
use super::members::read_up_to;
use super::pax::{apply_pax, global_pax_conflict, Overrides};
use super::{normalize_path, sniff_format, ArchiveEnd, ArchiveError, Member, TarballReader};
use crate::compress::Compression;
use crate::tar::{padding_len, MemberKind, BLOCK_SIZE, RECORD_SIZE};

/// Extension members are small; refuse absurd ones.
const MAX_EXTENSION_SIZE: u64 = 1 << 20;

impl TarballReader {
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
                        xattrs: std::mem::take(&mut overrides.xattrs),
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
