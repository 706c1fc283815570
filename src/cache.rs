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
//! report. So a segment is trusted like the store itself: a directory the
//! cache makes is private to its owner (mode 0700).
//!
//! One file per segment, `<key>.seg`: the magic line, the segment's input
//! length and CRC-32, the metadata's length, the SHA-256 of those three
//! fields, the metadata and the member bytes, then the metadata and the
//! gzip members. The checksum is verified before a segment is used: a
//! damaged entry (a flipped bit anywhere, a truncated file) is reported as
//! [`DamagedSegment`], and the writer compresses the store path again and
//! replaces the entry. Entries are written as atomic outputs
//! ([`AtomicOutput::create_cache_entry`]), so a crash never leaves a torn or
//! stray file.
//!
//! The cache has a size limit. A file's mtime says when it was last used:
//! it is set to now when the segment is stored and on every hit.
//! [`SegmentCache::evict`] removes the least recently used segments until
//! the `.seg` files total at most the limit; it leaves every other file
//! alone (in-flight temporaries are hidden `.NAME.PID.tmp` files) and
//! tolerates files that another process removes meanwhile.

use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use sha2::{Digest, Sha256};

use crate::compress::{CompressedSegment, Compression};
use crate::output::{AtomicOutput, OutputError};

const MAGIC: &[u8; 8] = b"WSLSEG4\n";
/// Magic, input length, CRC-32, metadata length, SHA-256.
const HEADER_LEN: usize = 8 + 8 + 8 + 8 + 32;
/// Bumped whenever the bytes a segment holds would change for the same key,
/// or the file format changes; the tool's version is part of it.
const FORMAT_VERSION: &str = concat!(
    "wsl-tarball ",
    env!("CARGO_PKG_VERSION"),
    " segment v4, libdeflate gzip members of 1 MiB, metadata, sha256"
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
    #[error("--cache {} is not a directory", dir.display())]
    NotADirectory { dir: PathBuf },
    #[error(
        "--cache works with gzip only (each store path is its own gzip segment), not {compression}"
    )]
    NotGzip { compression: Compression },
    #[error(transparent)]
    Entry(#[from] OutputError),
}

/// A cache entry that failed its checksum or is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cache segment {} is damaged ({why})", file.display())]
pub struct DamagedSegment {
    pub file: PathBuf,
    pub why: &'static str,
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

/// A stored segment: the writer's metadata and the gzip members.
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
    dir: PathBuf,
    limit_bytes: u64,
}

impl SegmentCache {
    /// Checks, without creating anything, that `dir` can be a cache for
    /// `compression`: gzip only, and `dir` a directory or not there yet.
    pub fn check_usable(dir: &Path, compression: Compression) -> Result<(), CacheError> {
        if compression != Compression::Gzip {
            return Err(CacheError::NotGzip { compression });
        }
        match fs::metadata(dir) {
            Ok(metadata) if !metadata.is_dir() => Err(CacheError::NotADirectory {
                dir: dir.to_path_buf(),
            }),
            _ => Ok(()),
        }
    }

    /// Opens (creating if needed) the cache directory, and checks that
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
        // Private when made here: a segment is trusted like the store.
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io_error)?;
        drop(AtomicOutput::create_cache_entry(&dir.join("probe.seg"))?);
        Ok(SegmentCache {
            dir: dir.to_path_buf(),
            limit_bytes,
        })
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
        self.dir.join(format!("{}.{EXTENSION}", key.0))
    }

    /// The file that holds (or would hold) the segment under `key`.
    pub fn file_of(&self, key: &SegmentKey) -> PathBuf {
        self.file(key)
    }

    /// The segment stored under `key`: `Ok(None)` when there is none (or
    /// it cannot be read), an error when it is there but damaged. A hit
    /// marks the segment used (its mtime becomes now).
    pub fn load(&self, key: &SegmentKey) -> Result<Option<CachedSegment>, DamagedSegment> {
        let path = self.file(key);
        let mut bytes = Vec::new();
        let Ok(file) = File::open(&path).and_then(|mut file| {
            file.read_to_end(&mut bytes)?;
            Ok(file)
        }) else {
            return Ok(None);
        };
        let cached = parse(&bytes).map_err(|why| DamagedSegment { file: path, why })?;
        // Losing this only makes the segment look older.
        let _ = file.set_modified(SystemTime::now());
        Ok(Some(cached))
    }

    /// Stores a segment and its metadata under `key`, atomically, replacing
    /// what was there; it counts as used now.
    pub fn store(
        &self,
        key: &SegmentKey,
        metadata: &[u8],
        segment: &CompressedSegment,
    ) -> Result<(), CacheError> {
        let destination = self.file(key);
        let mut output = AtomicOutput::create_cache_entry(&destination)?;
        let metadata_len = metadata.len() as u64;
        let mut header = MAGIC.to_vec();
        header.extend_from_slice(&segment.input_len.to_le_bytes());
        header.extend_from_slice(&u64::from(segment.crc).to_le_bytes());
        header.extend_from_slice(&metadata_len.to_le_bytes());
        header.extend_from_slice(&checksum(
            segment.input_len,
            segment.crc,
            metadata,
            &segment.members,
        ));
        output.write_all(&header)?;
        output.write_all(metadata)?;
        output.write_all(&segment.members)?;
        // The kernel's file times are coarse (a clock tick); the system
        // clock orders segments stored in quick succession.
        output
            .file()
            .set_modified(SystemTime::now())
            .map_err(|source| OutputError::Write {
                path: destination,
                source,
            })?;
        output.commit()?;
        Ok(())
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
        for entry in fs::read_dir(&self.dir).map_err(io_error)? {
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
            match fs::remove_file(self.dir.join(&name)) {
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

/// A segment file's contents, or why they are damaged.
fn parse(bytes: &[u8]) -> Result<CachedSegment, &'static str> {
    if bytes.len() < HEADER_LEN {
        return Err("truncated");
    }
    let (header, rest) = bytes.split_at(HEADER_LEN);
    if &header[..8] != MAGIC {
        return Err("not a segment file");
    }
    let number = |at: usize| u64::from_le_bytes(header[at..at + 8].try_into().expect("8 bytes"));
    let input_len = number(8);
    let crc = u32::try_from(number(16)).map_err(|_| "bad CRC field")?;
    let metadata_len = usize::try_from(number(24))
        .ok()
        .filter(|&len| len <= rest.len())
        .ok_or("metadata length beyond the end")?;
    let (metadata, members) = rest.split_at(metadata_len);
    if header[32..] != checksum(input_len, crc, metadata, members) {
        return Err("checksum mismatch");
    }
    Ok(CachedSegment {
        metadata: metadata.to_vec(),
        segment: CompressedSegment {
            members: members.to_vec(),
            crc,
            input_len,
        },
    })
}

/// SHA-256 over a segment's fields, as stored in its header.
fn checksum(input_len: u64, crc: u32, metadata: &[u8], members: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(input_len.to_le_bytes());
    hasher.update(u64::from(crc).to_le_bytes());
    hasher.update((metadata.len() as u64).to_le_bytes());
    hasher.update(metadata);
    hasher.update(members);
    hasher.finalize().into()
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
            format!("--cache {} is not a directory", file.display())
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
