//! Why a tarball cannot be read, and the messages that say so: the
//! [`ArchiveError`] kinds, [`ReadError`] (the error with the file's name in
//! front), naming standard input, and what a file that is not a tarball
//! looks like.

use std::io;
use std::path::Path;

use super::HeaderError;
use crate::compress::Compression;

/// Why a tarball could not be read. The messages read after the file's
/// name ([`ReadError`] puts it in front).
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The file could not be opened.
    #[error("cannot open it: {source}")]
    Open {
        /// Why.
        source: io::Error,
    },
    #[error("{}", empty_message(*.compression))]
    /// The file, or its decompressed stream, is empty.
    Empty {
        /// The compression found.
        compression: Compression,
    },
    #[error("{}", not_tar_message(*.compression, .looks_like, *.short))]
    /// The (decompressed) bytes are not a tar archive.
    NotTar {
        /// The compression found.
        compression: Compression,
        /// What the first bytes look like (`a zip file`), if recognised.
        looks_like: Option<&'static str>,
        /// The whole (decompressed) stream, when shorter than a tar header.
        short: Option<u64>,
    },
    #[error("the {} stream is truncated: it ends after {file_offset} bytes of the file, before the end of the compressed data", compression_word(*.compression))]
    /// The compressed stream ends before its end.
    TruncatedCompressed {
        /// The compression found.
        compression: Compression,
        /// Where the file ends.
        file_offset: u64,
    },
    /// One of our gzip members, found through its length field, is damaged
    /// or truncated; the message names its offset in the file.
    #[error("{message}")]
    Member {
        /// What is wrong, with the member's offset.
        message: String,
    },
    #[error("the {} stream is corrupt near byte {file_offset} of the file: {source}", compression_word(*.compression))]
    /// The decoder found corrupt data.
    Corrupt {
        /// The compression found.
        compression: Compression,
        /// Roughly where in the file.
        file_offset: u64,
        /// What the decoder said.
        source: io::Error,
    },
    #[error("the {} stream needs more than {} MiB of memory to decode (more than {} uses); it is refused to keep memory bounded", compression_word(*.compression), .limit >> 20, largest_setting(*.compression))]
    /// The stream needs more decoder memory than allowed.
    DecoderMemory {
        /// The compression found.
        compression: Compression,
        /// The memory allowed, in bytes.
        limit: u64,
    },
    #[error("reading the archive at byte {offset} of the tar stream: {source}")]
    /// Reading failed.
    Read {
        /// Where in the tar stream.
        offset: u64,
        /// Why.
        source: io::Error,
    },
    #[error("the archive is truncated: it ends in the middle of {what} at byte {offset} of the tar stream")]
    /// The tar stream ends inside a header or a member's content.
    Truncated {
        /// Where in the tar stream.
        offset: u64,
        /// What it ends in (`a header`, `the content of ...`).
        what: &'static str,
    },
    #[error("bad tar header at byte {offset} of the tar stream: {source}")]
    /// A header block is not valid.
    Header {
        /// Where in the tar stream.
        offset: u64,
        /// What is wrong with it.
        source: HeaderError,
    },
    #[error("bad {kind} record at byte {offset} of the tar stream: {message}")]
    /// A GNU long name or pax record is not valid, or is refused.
    Extension {
        /// Where in the tar stream.
        offset: u64,
        /// Which extension (`pax`, `GNU long name`, ...).
        kind: &'static str,
        /// What is wrong.
        message: String,
    },
    #[error("trailing data after the end-of-archive at offset {offset} of the tar stream (more than the zero padding of a tar record)")]
    /// Non-zero data after the end-of-archive blocks.
    TrailingData {
        /// Where in the tar stream.
        offset: u64,
    },
}

impl ArchiveError {
    /// The error behind a failed read of [`MemberContent`](super::MemberContent) at `offset` of
    /// the tar stream.
    pub fn from_content(offset: u64, source: io::Error) -> Self {
        match source.downcast::<ArchiveError>() {
            Ok(inner) => inner,
            Err(source) => ArchiveError::Read { offset, source },
        }
    }
}

/// An [`ArchiveError`] with the file it happened in, said once:
/// `nixos.wsl: the gzip stream is truncated: …`.
#[derive(Debug, thiserror::Error)]
pub struct ReadError {
    /// The file as the user named it (`standard input` for `-`).
    pub file: String,
    /// What went wrong.
    pub source: ArchiveError,
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.source {
            // "nixos.wsl is empty; not a tar archive"
            ArchiveError::Empty {
                compression: Compression::None,
            } => write!(f, "{} is empty; not a tar archive", self.file),
            source => write!(f, "{}: {source}", self.file),
        }
    }
}

impl ReadError {
    /// `source` in the file `path` (`-` is standard input).
    pub fn new(path: &Path, source: ArchiveError) -> Self {
        ReadError {
            file: source_name(path),
            source,
        }
    }
}

/// The argument that means standard input.
pub const STDIN_ARGUMENT: &str = "-";

/// True if `path` is `-`, standard input.
pub fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == STDIN_ARGUMENT
}

/// The file's name for messages: `standard input` for `-`.
pub fn source_name(path: &Path) -> String {
    if is_stdin(path) {
        "standard input".to_owned()
    } else {
        path.display().to_string()
    }
}

fn compression_word(compression: Compression) -> &'static str {
    match compression {
        Compression::Gzip => "gzip",
        Compression::Xz => "xz",
        Compression::Zstd => "zstd",
        Compression::None => "tar",
    }
}

fn largest_setting(compression: Compression) -> &'static str {
    match compression {
        Compression::Xz => "xz -9",
        Compression::Zstd => "zstd -19 or --long=26",
        _ => "the compressor",
    }
}

fn empty_message(compression: Compression) -> String {
    match compression {
        Compression::None => "is empty; not a tar archive".to_owned(),
        other => format!(
            "its {}-compressed content is empty; not a tar archive",
            compression_word(other)
        ),
    }
}

fn not_tar_message(
    compression: Compression,
    looks_like: &Option<&'static str>,
    short: Option<u64>,
) -> String {
    let subject = match compression {
        Compression::None => "not a tar archive".to_owned(),
        other => format!(
            "its {}-compressed content is not a tar archive",
            compression_word(other)
        ),
    };
    match (looks_like, short) {
        (Some(kind), _) => format!("{subject}; it starts like {kind}"),
        (None, Some(bytes)) => {
            format!("{subject}: it is {bytes} bytes long, shorter than one tar header (512)")
        }
        (None, None) => format!("{subject}: its first 512 bytes are not a tar header"),
    }
}

/// What a file that is not a tar archive looks like, from its first bytes:
/// only formats whose magic bytes are certain.
pub fn sniff_format(head: &[u8]) -> Option<&'static str> {
    const MAGICS: [(&[u8], &str); 14] = [
        (b"PK\x03\x04", "a zip file"),
        (b"PK\x05\x06", "a zip file (an empty one)"),
        (b"7z\xbc\xaf\x27\x1c", "a 7z archive"),
        (b"Rar!\x1a\x07", "a rar archive"),
        (
            b"\x04\x22\x4d\x18",
            "lz4-compressed data, which wsl-tarball does not read (gzip, xz, zstd or plain tar)",
        ),
        (b"\x89PNG\r\n\x1a\n", "a PNG image"),
        (b"\0\0\x01\0", "an ICO icon"),
        (
            b"\x0d\0\0\0\0\0\0\0nix-archive-1",
            "a NAR file (nix-store --dump), not a tarball",
        ),
        (b"QFI\xfb", "a qcow2 disk image"),
        (b"vhdxfile", "a VHDX disk image"),
        (b"\x7fELF", "an ELF executable"),
        (b"%PDF-", "a PDF document"),
        (
            b"\x1f\x9d",
            "compress (.Z) data, which wsl-tarball does not read (gzip, xz, zstd or plain tar)",
        ),
        (
            b"\x5d\0\0",
            "lzma-compressed data, which wsl-tarball does not read (gzip, xz, zstd or plain tar)",
        ),
    ];
    if head.len() >= 4 && head.starts_with(b"BZh") && (b'1'..=b'9').contains(&head[3]) {
        return Some(
            "bzip2-compressed data, which wsl-tarball does not read (gzip, xz, zstd or plain tar); decompress it first with bunzip2",
        );
    }
    MAGICS
        .iter()
        .find(|(magic, _)| head.starts_with(magic))
        .map(|(_, kind)| *kind)
}
