//! The segment cache behind `--cache DIR` (and `build`'s default cache):
//! compressed store paths, reused.
//!
//! With gzip, every store path is compressed as a segment of whole gzip
//! members (no member spans a store-path boundary), so its compressed bytes
//! depend only on its own tar bytes. Those depend only on what [`SegmentKey`] hashes: the store
//! path and its NAR hash (store paths are immutable), the mtime, the owner
//! rules, the compression level and this format's version, which includes
//! the tool's version (scan rules and tar encoding change with it). A
//! rebuild after one store path changed compresses only that path; every
//! other segment is spliced in from here, and the output is byte-identical
//! to a cold build.
//!
//! Next to its gzip members a segment holds a metadata blob the writer
//! chooses (the store path's tar stats and scan findings); this module
//! stores and checks it but does not read it. On a hit the writer reads
//! nothing of the store path: the segment was stored only after the store
//! path's bytes matched its NAR hash, and its findings are replayed into the
//! report. So a segment is trusted like the store itself, and that holds
//! only while no one else can write the cache: [`SegmentCache::open`] uses a
//! directory only when it is owned by the running user and not writable by
//! group or others, below parents owned by that user or root and not
//! writable by others unless sticky (as ssh's `StrictModes` judges `~/.ssh`);
//! otherwise it is [`NotPrivate`]. A directory it makes is mode 0700
//! whatever the umask. A segment file must be a regular file of the same
//! user's, not writable by others, or it is [`DamagedSegment`] (and
//! replaced). A cache whose contents crossed a trust boundary (a CI cache
//! restored from another branch) is opened with
//! [`SegmentCache::check_contents`]: the writer then re-checks every hit
//! (see `crate::write`) and uses the file only as compressed bytes to splice.
//!
//! One file per segment, `<key>.seg`: the magic line, the segment's input
//! length and CRC-32, the metadata's length and a BLAKE3 hash over the members,
//! the metadata and those three numbers; then the gzip members, then the
//! metadata. So an entry is written as the members come
//! ([`SegmentCache::begin_store`]) and read back checked without holding it
//! in memory ([`SegmentCache::open_segment`], [`SegmentFile::copy_members`]).
//! The checksum is verified before a segment is used (it is unkeyed: it
//! finds damage, not a forgery, which the ownership rules and
//! `check_contents` are for): a damaged entry (a
//! flipped bit anywhere, a truncated file) is reported as
//! [`DamagedSegment`], and the writer compresses the store path again and
//! replaces the entry. Entries are written as atomic outputs
//! ([`AtomicOutput::create_cached_segment`]), so a crash never leaves a torn or
//! stray file.
//!
//! The cache has a size limit. A file's mtime says when it was last used:
//! it is set to now when the segment is stored and on every hit.
//! [`SegmentCache::evict`] removes the least recently used segments until
//! the `.seg` files total at most the limit; it leaves every other file
//! alone (in-flight temporaries are hidden `.NAME.PID.tmp` files) and
//! tolerates files that another process removes meanwhile.
//!
//! Here: the cache and its keys; `file.rs`: the segment file's format,
//! written and read; `private.rs`: whether a directory is private.

mod file;
mod private;

use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use sha2::{Digest, Sha256};

use crate::compress::Compression;
use crate::os::effective_uid;
use crate::output::{AtomicOutput, OutputError};
pub use file::{SegmentFile, SegmentWriter};
pub use private::NotPrivate;
use private::{check_private, create_private};

/// Bumped whenever the bytes a segment holds would change for the same key,
/// or the file format changes; the tool's version is part of it.
const FORMAT_VERSION: &str = concat!(
    "wsl-tarball ",
    env!("CARGO_PKG_VERSION"),
    " segment v4, libdeflate gzip members of 1 MiB, metadata, blake3"
);
/// The extension of segment files; eviction considers no other file.
const EXTENSION: &str = "seg";

/// The size limit when none is given: 10 GiB.
pub const DEFAULT_LIMIT_BYTES: u64 = 10 << 30;

/// Why the cache directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The cache directory cannot be created, read or written.
    #[error("cache directory {}: {source}", dir.display())]
    Io {
        /// The cache directory.
        dir: PathBuf,
        /// Why it cannot be used.
        source: io::Error,
    },
    /// The cache path exists and is not a directory.
    #[error("cache directory {} is not a directory", dir.display())]
    NotADirectory {
        /// The path given.
        dir: PathBuf,
    },
    #[error(
        "a cache works with gzip only (each store path is its own gzip segment), not {compression}"
    )]
    /// A cache was asked for with a compression other than gzip: segments are gzip members.
    NotGzip {
        /// The compression asked for.
        compression: Compression,
    },
    /// Someone besides the running user can write (or replace) the cache directory, so anything in it may be planted.
    #[error(transparent)]
    NotPrivate(Box<NotPrivate>),
    /// A segment file cannot be committed into the cache.
    #[error(transparent)]
    Entry(#[from] OutputError),
}

/// A cached segment that failed its checksum, is malformed, is not the running
/// user's, or failed the content check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cache segment {} is damaged ({why})", file.display())]
pub struct DamagedSegment {
    pub file: PathBuf,
    pub why: String,
}

/// Everything a segment's bytes depend on, hashed into a file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentKey(String);

impl SegmentKey {
    /// `settings` must name every setting that changes the tar or deflate
    /// bytes of a store path, or its metadata (mtime, owner rules,
    /// compression level, scan settings).
    pub fn new(store_path: &str, nar_hash: &str, settings: &str) -> Self {
        let mut hasher = Sha256::new();
        for part in [FORMAT_VERSION, store_path, nar_hash, settings] {
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part.as_bytes());
        }
        SegmentKey(crate::hex::encode(&hasher.finalize()))
    }
}

/// A segment's gzip members held whole, with their input's CRC-32 and
/// length (the tests' view of what [`SegmentWriter`] streams).
#[cfg(test)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompressedSegment {
    /// Complete gzip members, back to back.
    pub members: Vec<u8>,
    pub crc: u32,
    pub input_len: u64,
}

/// A stored segment: the writer's metadata and the gzip members.
#[cfg(test)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedSegment {
    pub metadata: Vec<u8>,
    pub segment: CompressedSegment,
}

/// What [`SegmentCache::evict`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Eviction {
    /// Segment files removed.
    pub removed: usize,
    /// Bytes of the segment files removed.
    pub removed_bytes: u64,
    /// The size of the segment files left.
    pub kept_bytes: u64,
}

/// A directory of segments with a size limit.
#[derive(Debug, Clone)]
pub struct SegmentCache {
    /// As given (for messages).
    dir: PathBuf,
    /// The directory itself, symlinks resolved when it was checked: every
    /// file is opened here.
    real_dir: PathBuf,
    limit_bytes: u64,
    /// The running user, who alone may own segments.
    uid: u32,
    check_contents: bool,
}

impl SegmentCache {
    /// Checks, without creating anything, that `dir` can be a cache for
    /// `compression`: gzip only, and `dir` a private directory
    /// ([`NotPrivate`]) or not there yet.
    pub fn check_usable(dir: &Path, compression: Compression) -> Result<(), CacheError> {
        if compression != Compression::Gzip {
            return Err(CacheError::NotGzip { compression });
        }
        match fs::metadata(dir) {
            Ok(metadata) if !metadata.is_dir() => Err(CacheError::NotADirectory {
                dir: dir.to_path_buf(),
            }),
            _ => check_private(dir, effective_uid()).map(drop),
        }
    }

    /// Opens (creating if needed, mode 0700) the cache directory, checks
    /// that no one else can write it ([`NotPrivate`]), and checks that
    /// entries can be written in it (an unnamed temporary file, gone at
    /// once). [`SegmentCache::evict`] keeps it to `limit_bytes`.
    pub fn open(dir: &Path, limit_bytes: u64) -> Result<Self, CacheError> {
        let io_error = |source| CacheError::Io {
            dir: dir.to_path_buf(),
            source,
        };
        if fs::metadata(dir).is_ok_and(|metadata| !metadata.is_dir()) {
            return Err(io_error(io::Error::from_raw_os_error(libc::ENOTDIR)));
        }
        let uid = effective_uid();
        check_private(dir, uid)?;
        create_private(dir).map_err(io_error)?;
        let real_dir = check_private(dir, uid)?
            .ok_or_else(|| io_error(io::Error::from(io::ErrorKind::NotFound)))?;
        drop(AtomicOutput::create_cached_segment(
            &real_dir.join("probe.seg"),
        )?);
        Ok(SegmentCache {
            dir: dir.to_path_buf(),
            real_dir,
            limit_bytes,
            uid,
            check_contents: false,
        })
    }

    /// Whether the writer re-checks every hit against the store path before
    /// it uses it (for a cache whose contents crossed a trust boundary).
    pub fn check_contents(mut self, on: bool) -> Self {
        self.check_contents = on;
        self
    }

    /// See [`SegmentCache::check_contents`].
    pub fn checks_contents(&self) -> bool {
        self.check_contents
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The size [`SegmentCache::evict`] trims the segments to.
    pub fn limit_bytes(&self) -> u64 {
        self.limit_bytes
    }

    fn file(&self, key: &SegmentKey) -> PathBuf {
        self.real_dir.join(format!("{}.{EXTENSION}", key.0))
    }

    /// The segment stored under `key`, read whole (the tests' view of
    /// [`SegmentCache::open_segment`]): `Ok(None)` when there
    /// is none (or it cannot be read), an error when it is there but
    /// damaged. A hit marks the segment used (its mtime becomes now).
    #[cfg(test)]
    pub fn load(&self, key: &SegmentKey) -> Result<Option<CachedSegment>, DamagedSegment> {
        let Some(mut found) = self.open_segment(key)? else {
            return Ok(None);
        };
        let mut members = Vec::new();
        found
            .copy_members(&mut members)
            .map_err(|_| found.damaged("unreadable"))?;
        Ok(Some(CachedSegment {
            segment: CompressedSegment {
                members,
                crc: found.crc,
                input_len: found.input_len,
            },
            metadata: found.metadata,
        }))
    }

    /// The segment stored under `key`, checked (its checksum is read
    /// through once) but with its members left in the file, to be copied
    /// out with [`SegmentFile::copy_members`]: memory stays small whatever
    /// the segment's size. `Ok(None)` and errors as [`SegmentCache::load`].
    /// A segment file that is not the running user's regular file, or that
    /// others can write, is damaged.
    pub fn open_segment(&self, key: &SegmentKey) -> Result<Option<SegmentFile>, DamagedSegment> {
        let path = self.file(key);
        let damaged = |why: String| DamagedSegment {
            file: path.clone(),
            why,
        };
        // Not through a symlink, and a fifo does not block.
        let opened = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&path);
        let file = match opened {
            Ok(file) => file,
            Err(error) if error.raw_os_error() == Some(libc::ELOOP) => {
                return Err(damaged("a symlink, not a segment file".into()))
            }
            Err(_) => return Ok(None),
        };
        let metadata = file.metadata().map_err(|_| damaged("unreadable".into()))?;
        if !metadata.is_file() {
            return Err(damaged("not a regular file".into()));
        }
        if metadata.uid() != self.uid {
            return Err(damaged(format!(
                "owned by uid {}, not by you: someone else put it there",
                metadata.uid()
            )));
        }
        if metadata.mode() & 0o022 != 0 {
            return Err(damaged(format!(
                "writable by group or others (mode {:04o})",
                metadata.mode() & 0o7777
            )));
        }
        let found = SegmentFile::check(file, path)?;
        found.mark_used();
        Ok(Some(found))
    }

    /// Stores a segment and its metadata under `key`, atomically, replacing
    /// what was there; it counts as used now (the tests' view of
    /// [`SegmentCache::begin_store`]).
    #[cfg(test)]
    pub fn store(
        &self,
        key: &SegmentKey,
        metadata: &[u8],
        segment: &CompressedSegment,
    ) -> Result<(), CacheError> {
        let mut writer = self.begin_store(key)?;
        writer.write_members(&segment.members)?;
        writer.finish(metadata, segment.input_len, segment.crc)
    }

    /// Starts storing a segment under `key` whose members are written as
    /// they come ([`SegmentWriter`]); nothing is there until
    /// [`SegmentWriter::finish`], and dropping the writer leaves nothing.
    pub fn begin_store(&self, key: &SegmentKey) -> Result<SegmentWriter, CacheError> {
        let destination = self.file(key);
        let output = AtomicOutput::create_cached_segment(&destination)?;
        SegmentWriter::new(output, destination)
    }

    /// Removes the least recently used segments (oldest mtime first, then
    /// by name) until the segment files total at most the limit. Files
    /// that are not segments, and hidden temporaries, are left alone; a
    /// file removed meanwhile by another process is skipped.
    pub fn evict(&self) -> Result<Eviction, CacheError> {
        let io_error = |source| CacheError::Io {
            dir: self.dir.clone(),
            source,
        };
        let mut segments: Vec<(SystemTime, std::ffi::OsString, u64)> = Vec::new();
        for entry in fs::read_dir(&self.real_dir).map_err(io_error)? {
            let entry = match entry {
                Ok(entry) => entry,
                Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
                Err(error) => return Err(io_error(error)),
            };
            let name = entry.file_name();
            let path = Path::new(&name);
            if name.as_encoded_bytes().starts_with(b".")
                || !path.extension().is_some_and(|x| x == EXTENSION)
            {
                continue;
            }
            let metadata = match entry.metadata() {
                Ok(metadata) => metadata,
                Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
                Err(error) => return Err(io_error(error)),
            };
            if !metadata.is_file() {
                continue;
            }
            let used = metadata.modified().map_err(io_error)?;
            segments.push((used, name, metadata.len()));
        }
        segments.sort();
        let mut eviction = Eviction {
            removed: 0,
            removed_bytes: 0,
            kept_bytes: segments.iter().map(|(_, _, size)| size).sum(),
        };
        for (_, name, size) in segments {
            if eviction.kept_bytes <= self.limit_bytes {
                break;
            }
            match fs::remove_file(self.real_dir.join(&name)) {
                Ok(()) => {
                    eviction.removed += 1;
                    eviction.removed_bytes += size;
                }
                Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                Err(error) => return Err(io_error(error)),
            }
            eviction.kept_bytes -= size;
        }
        Ok(eviction)
    }
}

/// Why a `--cache-limit` value is not a size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BadSize {
    /// The value is not bytes, nor a whole number with K, M, G or T.
    #[error("not a size: give bytes, or a whole number followed by K, M, G or T (powers of 1024), such as 500M or 10G")]
    NotASize,
    /// The value is 2^64 bytes or more.
    #[error("more than 2^64 bytes")]
    TooLarge,
}

/// A size such as `4096`, `500M` or `10G`: a whole number of bytes,
/// optionally followed by K, M, G or T (1024, 1024², 1024³, 1024⁴; either
/// case).
pub fn parse_size(text: &str) -> Result<u64, BadSize> {
    let shift = match text.as_bytes().last().map(u8::to_ascii_uppercase) {
        Some(b'K') => 10,
        Some(b'M') => 20,
        Some(b'G') => 30,
        Some(b'T') => 40,
        _ => 0,
    };
    let digits = if shift == 0 {
        text
    } else {
        &text[..text.len() - 1]
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(BadSize::NotASize);
    }
    digits
        .parse::<u64>()
        .ok()
        .and_then(|number| number.checked_mul(1 << shift))
        .ok_or(BadSize::TooLarge)
}

#[cfg(test)]
mod tests;
