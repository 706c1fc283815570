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

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use sha2::{Digest, Sha256};

use crate::compress::Compression;
use crate::os::effective_uid;
use crate::output::{AtomicOutput, OutputError};

const MAGIC: &[u8; 8] = b"WSLSEG4\n";
/// Magic, input length, CRC-32, metadata length, BLAKE3.
const HEADER_LEN: usize = 8 + 8 + 8 + 8 + 32;
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
    #[error("cache directory {}: {source}", dir.display())]
    Io { dir: PathBuf, source: io::Error },
    #[error("cache {} is not a directory", dir.display())]
    NotADirectory { dir: PathBuf },
    #[error(
        "the cache works with gzip only (each store path is its own gzip segment), not {compression}"
    )]
    NotGzip { compression: Compression },
    #[error(transparent)]
    NotPrivate(Box<NotPrivate>),
    #[error(transparent)]
    Entry(#[from] OutputError),
}

/// A cache directory that someone besides the running user can write (or
/// replace), so anything in it may be planted: see the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotPrivate {
    /// The cache directory, as given.
    pub dir: PathBuf,
    /// The directory at fault: `None` for the cache directory itself,
    /// otherwise one of its parents.
    pub parent: Option<PathBuf>,
    pub owner: u32,
    /// The owner's name in /etc/passwd, if it has one.
    pub owner_name: Option<String>,
    /// Permission bits (`0o7777`).
    pub mode: u32,
}

impl fmt::Display for NotPrivate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Raw, as every library message: the binary escapes the line once.
        let shown = |path: &Path| path.display().to_string();
        write!(f, "cache directory {} is not private: ", shown(&self.dir))?;
        match &self.parent {
            None => f.write_str("it")?,
            Some(parent) => write!(f, "its parent {}", shown(parent))?,
        }
        f.write_str(" is owned by ")?;
        match &self.owner_name {
            Some(name) => write!(f, "{} (uid {})", name, self.owner)?,
            None => write!(f, "uid {}", self.owner)?,
        }
        write!(f, " with mode {:04o}; ", self.mode)?;
        match &self.parent {
            None => f.write_str(
                "a cache is used only when no one else can write it (owned by you, not writable by group or others)",
            ),
            Some(_) => f.write_str(
                "a cache is used only when no one else can replace it (its parents owned by you or root, not writable by group or others unless sticky, as /tmp is)",
            ),
        }
    }
}

impl std::error::Error for NotPrivate {}

/// A cache entry that failed its checksum, is malformed, is not the running
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
        // Losing this only makes the segment look older.
        let _ = found.file.set_modified(SystemTime::now());
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
        let mut output = AtomicOutput::create_cached_segment(&destination)?;
        // The header, written for real once everything is known.
        output.write_all(&[0; HEADER_LEN])?;
        Ok(SegmentWriter {
            output,
            destination,
            hasher: blake3::Hasher::new(),
            members_len: 0,
        })
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

/// A segment being stored: see [`SegmentCache::begin_store`].
pub struct SegmentWriter {
    output: AtomicOutput,
    destination: PathBuf,
    /// Over the members so far (see [`header`]).
    hasher: blake3::Hasher,
    members_len: u64,
}

impl SegmentWriter {
    /// The next gzip members of the segment.
    pub fn write_members(&mut self, bytes: &[u8]) -> Result<(), CacheError> {
        self.hasher.update(bytes);
        self.members_len += bytes.len() as u64;
        Ok(self.output.write_all(bytes)?)
    }

    /// Writes the metadata and the header, and commits the entry.
    pub fn finish(mut self, metadata: &[u8], input_len: u64, crc: u32) -> Result<(), CacheError> {
        self.output.write_all(metadata)?;
        self.hasher.update(metadata);
        let header = header(input_len, crc, metadata.len() as u64, self.hasher);
        let file = self.output.file();
        let write_error = |source| OutputError::Write {
            path: self.destination.clone(),
            source,
        };
        file.write_all_at(&header, 0).map_err(write_error)?;
        // The kernel's file times are coarse (a clock tick); the system
        // clock orders segments stored in quick succession.
        file.set_modified(SystemTime::now()).map_err(write_error)?;
        self.output.commit()?;
        Ok(())
    }
}

/// A stored segment whose checksum matched: see
/// [`SegmentCache::open_segment`].
pub struct SegmentFile {
    pub metadata: Vec<u8>,
    /// Length and CRC-32 of the tar bytes the members stand for.
    pub input_len: u64,
    pub crc: u32,
    file: File,
    path: PathBuf,
    members_len: u64,
}

/// The most metadata a segment may carry (it is read whole).
const MAX_METADATA_LEN: u64 = 64 << 20;

impl SegmentFile {
    /// Reads the header and the metadata and checks the checksum over the
    /// whole file.
    fn check(mut file: File, path: PathBuf) -> Result<Self, DamagedSegment> {
        let damaged = |why: &str| DamagedSegment {
            file: path.clone(),
            why: why.to_owned(),
        };
        let len = file.metadata().map_err(|_| damaged("unreadable"))?.len();
        let mut header = [0; HEADER_LEN];
        if len < HEADER_LEN as u64 || file.read_exact(&mut header).is_err() {
            return Err(damaged("truncated"));
        }
        if &header[..8] != MAGIC {
            return Err(damaged("not a segment file"));
        }
        let number =
            |at: usize| u64::from_le_bytes(header[at..at + 8].try_into().expect("8 bytes"));
        let input_len = number(8);
        let crc = u32::try_from(number(16)).map_err(|_| damaged("bad CRC field"))?;
        let metadata_len = number(24);
        let members_len = (len - HEADER_LEN as u64)
            .checked_sub(metadata_len)
            .filter(|_| metadata_len <= MAX_METADATA_LEN)
            .ok_or_else(|| damaged("metadata length beyond the end"))?;
        let mut hasher = blake3::Hasher::new();
        let mut buffer = vec![0; COPY_CHUNK];
        let mut left = members_len;
        while left > 0 {
            let want = left.min(COPY_CHUNK as u64) as usize;
            file.read_exact(&mut buffer[..want])
                .map_err(|_| damaged("truncated"))?;
            hasher.update(&buffer[..want]);
            left -= want as u64;
        }
        let mut metadata = vec![0; metadata_len as usize];
        file.read_exact(&mut metadata)
            .map_err(|_| damaged("truncated"))?;
        hasher.update(&metadata);
        if header != self::header(input_len, crc, metadata_len, hasher) {
            return Err(damaged("checksum mismatch"));
        }
        Ok(SegmentFile {
            metadata,
            input_len,
            crc,
            file,
            path,
            members_len,
        })
    }

    /// Bytes of gzip members.
    pub fn members_len(&self) -> u64 {
        self.members_len
    }

    /// Copies the members into `out`, a chunk at a time. The file is the
    /// one that was checked (entries are replaced by rename, never
    /// rewritten), but a copy that comes out short is an error.
    pub fn copy_members(&mut self, out: &mut dyn Write) -> io::Result<u64> {
        self.file.seek(SeekFrom::Start(HEADER_LEN as u64))?;
        // Whole chunks: a writer with a smaller buffer takes them directly.
        let mut buffer = vec![0; COPY_CHUNK.min(self.members_len as usize)];
        let mut left = self.members_len;
        while left > 0 {
            let want = left.min(COPY_CHUNK as u64) as usize;
            self.file.read_exact(&mut buffer[..want]).map_err(|error| {
                io::Error::new(
                    error.kind(),
                    format!("cache segment {}: {error}", self.path.display()),
                )
            })?;
            out.write_all(&buffer[..want])?;
            left -= want as u64;
        }
        Ok(self.members_len)
    }

    /// The damage report for this file.
    pub fn damaged(&self, why: impl Into<String>) -> DamagedSegment {
        DamagedSegment {
            file: self.path.clone(),
            why: why.into(),
        }
    }

    /// The gzip members, read from the start (for a content check before
    /// they are copied).
    pub fn members(&mut self) -> io::Result<io::Take<&File>> {
        self.file.seek(SeekFrom::Start(HEADER_LEN as u64))?;
        Ok((&self.file).take(self.members_len))
    }
}

/// Bytes read at a time.
const COPY_CHUNK: usize = 1 << 20;

/// Makes `dir` and whichever of its parents are missing, each mode 0700
/// whatever the umask (a umask can take the owner's bits away too).
fn create_private(dir: &Path) -> io::Result<()> {
    let mut missing = Vec::new();
    let mut at = dir;
    while let Err(error) = fs::symlink_metadata(at) {
        if error.kind() != io::ErrorKind::NotFound {
            return Err(error);
        }
        missing.push(at);
        match at.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => at = parent,
            _ => break,
        }
    }
    for path in missing.into_iter().rev() {
        match fs::DirBuilder::new().mode(0o700).create(path) {
            Ok(()) => fs::set_permissions(path, fs::Permissions::from_mode(0o700))?,
            // Made meanwhile by someone else: judged as any other.
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// The real path of `dir` if only `uid` can write it: owned by `uid`, not
/// writable by group or others, and every parent owned by `uid` or root and
/// not writable by group or others unless sticky (in a sticky directory no
/// one else can rename or remove what `uid` owns, so `/tmp` is fine).
///
/// When `dir` is not there yet, `None` if what would be made there would
/// be private: its nearest existing parent and that one's parents pass the
/// parents' rule (so nothing is made where it could not be used).
fn check_private(dir: &Path, uid: u32) -> Result<Option<PathBuf>, CacheError> {
    let io_error = |source| CacheError::Io {
        dir: dir.to_path_buf(),
        source,
    };
    let mut existing = dir;
    loop {
        match fs::symlink_metadata(existing) {
            Ok(_) => break,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(io_error(error)),
        }
        existing = match existing.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
    }
    let exists = existing == dir;
    let real = fs::canonicalize(existing).map_err(io_error)?;
    let not_private = |parent: Option<&Path>, metadata: &fs::Metadata| {
        CacheError::NotPrivate(Box::new(NotPrivate {
            dir: dir.to_path_buf(),
            parent: parent.map(Path::to_path_buf),
            owner: metadata.uid(),
            owner_name: user_name(metadata.uid()),
            mode: metadata.mode() & 0o7777,
        }))
    };
    if exists {
        let metadata = fs::metadata(&real).map_err(io_error)?;
        if metadata.uid() != uid || metadata.mode() & 0o022 != 0 {
            return Err(not_private(None, &metadata));
        }
    }
    for parent in real.ancestors().skip(usize::from(exists)) {
        let metadata = fs::metadata(parent).map_err(io_error)?;
        let owner_trusted = metadata.uid() == uid || metadata.uid() == 0;
        let others_write = metadata.mode() & 0o022 != 0 && metadata.mode() & 0o1000 == 0;
        if !owner_trusted || others_write {
            return Err(not_private(Some(parent), &metadata));
        }
    }
    Ok(exists.then_some(real))
}

/// The name /etc/passwd gives `uid`, for messages.
fn user_name(uid: u32) -> Option<String> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        (fields.nth(1)?.parse::<u32>().ok()? == uid).then(|| name.to_owned())
    })
}

/// A segment file's header: magic, input length, CRC-32, metadata length,
/// and the BLAKE3 hash of the members, the metadata and those three numbers
/// (`hasher` has seen the members and the metadata).
fn header(
    input_len: u64,
    crc: u32,
    metadata_len: u64,
    mut hasher: blake3::Hasher,
) -> [u8; HEADER_LEN] {
    let mut header = [0; HEADER_LEN];
    header[..8].copy_from_slice(MAGIC);
    header[8..16].copy_from_slice(&input_len.to_le_bytes());
    header[16..24].copy_from_slice(&u64::from(crc).to_le_bytes());
    header[24..32].copy_from_slice(&metadata_len.to_le_bytes());
    hasher.update(&header[8..32]);
    header[32..].copy_from_slice(hasher.finalize().as_bytes());
    header
}

/// Why a `--cache-limit` value is not a size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BadSize {
    #[error("not a size: give bytes, or a whole number followed by K, M, G or T (powers of 1024), such as 500M or 10G")]
    NotASize,
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
mod tests {
    use super::*;

    fn segment(members: &[u8]) -> CompressedSegment {
        CompressedSegment {
            members: members.to_vec(),
            crc: 0xdead_beef,
            input_len: 1024,
        }
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn stores_and_loads_metadata_and_members_and_reports_damage() {
        let dir = tempfile::tempdir().unwrap();
        let cache = SegmentCache::open(&dir.path().join("cache"), DEFAULT_LIMIT_BYTES).unwrap();
        let key = SegmentKey::new("/nix/store/x-a", "sha256-AAAA", "mtime=1");
        assert_eq!(cache.load(&key), Ok(None));
        let cached = CachedSegment {
            metadata: b"tar stats and findings".to_vec(),
            segment: segment(&[1, 2, 3]),
        };
        cache
            .store(&key, &cached.metadata, &cached.segment)
            .unwrap();
        assert_eq!(cache.load(&key), Ok(Some(cached.clone())));
        let good = fs::read(cache.file(&key)).unwrap();
        assert_eq!(good.len(), HEADER_LEN + cached.metadata.len() + 3);
        let metadata_at = HEADER_LEN;
        for (at, why) in [
            (good.len() - 1, "checksum mismatch"),
            (9, "checksum mismatch"),
            (17, "checksum mismatch"),
            (40, "checksum mismatch"),
            (metadata_at, "checksum mismatch"),
            (metadata_at + 5, "checksum mismatch"),
            (0, "not a segment file"),
        ] {
            let mut bad = good.clone();
            bad[at] ^= 1;
            fs::write(cache.file(&key), &bad).unwrap();
            let damaged = cache.load(&key).unwrap_err();
            assert_eq!(damaged.why, why, "byte {at}");
            assert_eq!(damaged.file, cache.file(&key));
            assert!(damaged.to_string().contains(".seg is damaged"), "{damaged}");
        }
        // A metadata length that shifts the boundary, or points past the end.
        for (len, why) in [
            (cached.metadata.len() as u64 - 1, "checksum mismatch"),
            (
                cached.metadata.len() as u64 + 4,
                "metadata length beyond the end",
            ),
            (u64::MAX, "metadata length beyond the end"),
        ] {
            let mut bad = good.clone();
            bad[24..32].copy_from_slice(&len.to_le_bytes());
            fs::write(cache.file(&key), &bad).unwrap();
            assert_eq!(cache.load(&key).unwrap_err().why, why, "length {len}");
        }
        fs::write(cache.file(&key), &good[..HEADER_LEN - 1]).unwrap();
        assert_eq!(cache.load(&key).unwrap_err().why, "truncated");
        fs::write(cache.file(&key), &good[..good.len() - 1]).unwrap();
        assert_eq!(cache.load(&key).unwrap_err().why, "checksum mismatch");

        // Empty metadata (write.rs stores none yet) round-trips too.
        cache.store(&key, &[], &cached.segment).unwrap();
        assert_eq!(
            cache.load(&key),
            Ok(Some(CachedSegment {
                metadata: Vec::new(),
                segment: cached.segment.clone()
            }))
        );
        // The probe and every store left nothing but the one entry.
        assert_eq!(names(&dir.path().join("cache")), [format!("{}.seg", key.0)]);
        assert_ne!(
            key,
            SegmentKey::new("/nix/store/x-a", "sha256-AAAA", "mtime=2")
        );
    }

    #[test]
    fn the_key_depends_on_the_tool_version() {
        assert!(FORMAT_VERSION.contains(env!("CARGO_PKG_VERSION")));
    }

    #[test]
    fn eviction_removes_the_least_recently_used_first() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("cache");
        // Each segment file is HEADER_LEN + 100 bytes.
        let size = (HEADER_LEN + 100) as u64;
        let open = |limit| SegmentCache::open(&root, limit).unwrap();
        let cache = open(u64::MAX);
        let keys: Vec<SegmentKey> = (0..4)
            .map(|i| SegmentKey::new(&format!("/nix/store/x-{i}"), "sha256-AAAA", ""))
            .collect();
        for key in &keys {
            cache.store(key, &[], &segment(&[7; 100])).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        // Not segments: another file, a temporary of a run in flight, a
        // directory named like a segment.
        fs::write(root.join("notes.txt"), vec![0; 10_000]).unwrap();
        fs::write(
            root.join(format!(".{}.seg.1234.tmp", keys[0].0)),
            vec![0; 10_000],
        )
        .unwrap();
        fs::create_dir(root.join("dir.seg")).unwrap();
        assert_eq!(
            cache.evict().unwrap(),
            Eviction {
                removed: 0,
                removed_bytes: 0,
                kept_bytes: 4 * size
            }
        );
        // Used in the order 0, 1, 2, 3; loading 0 and then 2 makes it 1, 3, 0, 2.
        for i in [0, 2] {
            assert!(cache.load(&keys[i]).unwrap().is_some());
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let file = |i: usize| format!("{}.seg", keys[i].0);
        assert_eq!(
            open(2 * size + 1).evict().unwrap(),
            Eviction {
                removed: 2,
                removed_bytes: 2 * size,
                kept_bytes: 2 * size
            }
        );
        let mut expected = vec![
            format!(".{}.seg.1234.tmp", keys[0].0),
            "dir.seg".to_owned(),
            file(0),
            file(2),
            "notes.txt".to_owned(),
        ];
        expected.sort();
        assert_eq!(names(&root), expected);
        // At the limit exactly, nothing goes; below it, the oldest.
        assert_eq!(open(2 * size).evict().unwrap().removed, 0);
        assert_eq!(open(2 * size - 1).evict().unwrap().removed, 1);
        assert!(!root.join(file(0)).exists());
        assert!(root.join(file(2)).exists());
        assert_eq!(
            open(0).evict().unwrap(),
            Eviction {
                removed: 1,
                removed_bytes: size,
                kept_bytes: 0
            }
        );
        assert_eq!(names(&root).len(), 3, "{:?}", names(&root));
    }

    #[test]
    fn eviction_skips_a_segment_removed_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        let cache = SegmentCache::open(dir.path(), 0).unwrap();
        let key = SegmentKey::new("/nix/store/x-a", "sha256-AAAA", "");
        cache.store(&key, &[], &segment(&[1])).unwrap();
        fs::remove_file(cache.file(&key)).unwrap();
        assert_eq!(
            cache.evict().unwrap(),
            Eviction {
                removed: 0,
                removed_bytes: 0,
                kept_bytes: 0
            }
        );
    }

    #[test]
    fn sizes_are_bytes_or_powers_of_1024() {
        for (text, bytes) in [
            ("0", 0),
            ("4096", 4096),
            ("1K", 1024),
            ("1k", 1024),
            ("500M", 500 << 20),
            ("10G", 10 << 30),
            ("2T", 2 << 40),
            ("16777215T", 16_777_215 << 40),
        ] {
            assert_eq!(parse_size(text), Ok(bytes), "{text}");
        }
        for text in ["", "G", "1.5G", "-1", "10 G", "10GB", "10X", "ten", " 1"] {
            assert_eq!(parse_size(text), Err(BadSize::NotASize), "{text:?}");
        }
        for text in ["16777216T", "18446744073709551616"] {
            assert_eq!(parse_size(text), Err(BadSize::TooLarge), "{text}");
        }
    }

    #[test]
    fn only_gzip_and_a_directory_are_usable() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        fs::write(&file, b"").unwrap();
        assert!(SegmentCache::check_usable(dir.path(), Compression::Gzip).is_ok());
        assert!(SegmentCache::check_usable(&dir.path().join("new"), Compression::Gzip).is_ok());
        assert_eq!(
            SegmentCache::check_usable(&file, Compression::Gzip)
                .unwrap_err()
                .to_string(),
            format!("cache {} is not a directory", file.display())
        );
        for compression in [Compression::Xz, Compression::Zstd, Compression::None] {
            let err = SegmentCache::check_usable(dir.path(), compression).unwrap_err();
            assert!(err.to_string().ends_with(compression.name()), "{err}");
        }
        // open creates the directory, and fails naming it when it cannot.
        assert!(SegmentCache::open(&dir.path().join("a/b"), 0).is_ok());
        let under_file = file.join("cache");
        let err = SegmentCache::open(&under_file, 0).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("cache directory {}: ", under_file.display())),
            "{err}"
        );
        assert_eq!(
            SegmentCache::open(&file, 0).unwrap_err().to_string(),
            format!(
                "cache directory {}: Not a directory (os error 20)",
                file.display()
            )
        );
    }
}
