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
//!
//! The parts: `decode.rs` opens the file and stacks the decoders,
//! `members.rs` inflates our gzip members in parallel, `reader.rs` reads
//! members and their content, `header.rs` decodes header blocks, `pax.rs`
//! applies GNU long names and pax records, `member.rs` is what the reader
//! hands out, `error.rs` what goes wrong.
//!
//! This is the one way the tool reads an archive: `check FILE` scans the
//! members it hands out, and `inspect`, `verify` and `diff` read them
//! through `inspect`'s archive walk, which is built on it.

mod decode;
mod error;
mod header;
mod member;
mod members;
mod pax;
mod reader;

use std::io::BufRead;
use std::sync::{Arc, Mutex};

pub use crate::tar::layout::header_field_at;
pub use decode::{detect_compression, open_tarball, read_tarball_bytes};
pub use error::{is_stdin, sniff_format, source_name, ArchiveError, ReadError, STDIN_ARGUMENT};
pub use header::HeaderError;
pub use member::{display_path, normalize_path, ArchiveEnd, Member};
pub use reader::MemberContent;

use crate::compress::Compression;
use decode::{FileStats, Tap};

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

#[cfg(test)]
mod tests;
