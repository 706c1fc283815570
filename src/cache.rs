//! The segment cache behind `--cache DIR`: compressed store paths, reused.
//!
//! With gzip, every store path is compressed as a segment of whole gzip
//! members (no member spans a store-path boundary), so its compressed bytes
//! depend only on its own tar bytes. Those depend only on what [`SegmentKey`] hashes: the store
//! path and its NAR hash (store paths are immutable), the mtime, the owner
//! rules, the compression level and this format's version. A rebuild after
//! one store path changed reads and compresses only that path; every other
//! segment is spliced in from here, and the output is byte-identical to a
//! cold build.
//!
//! The store path is still walked, read and scanned on a hit (every byte
//! that ships is checked); only its compression is skipped.
//!
//! One file per segment, `<key>.seg`: the magic line, the segment's input
//! length and CRC-32, the SHA-256 of those two fields and the member bytes,
//! then the gzip members. The checksum is verified before a segment is
//! spliced in: a damaged entry (a flipped bit, a truncated file) is reported
//! as [`DamagedSegment`], and the writer compresses the store path again and
//! replaces the entry. Entries are written as atomic outputs
//! ([`AtomicOutput::create_cache_entry`]), so a crash never leaves a torn or
//! stray file.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::compress::{CompressedSegment, Compression};
use crate::output::{AtomicOutput, OutputError};

const MAGIC: &[u8; 8] = b"WSLSEG4\n";
/// Magic, input length, CRC-32, metadata length, SHA-256.
const HEADER_LEN: usize = 8 + 8 + 8 + 8 + 32;
/// Bumped whenever the bytes a segment holds would change for the same key,
/// or the file format changes.
const FORMAT_VERSION: &str = concat!(
    "wsl-tarball ",
    env!("CARGO_PKG_VERSION"),
    " segment v4, libdeflate gzip members of 1 MiB, metadata, sha256"
);

/// Why the cache directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("--cache {}: {source}", dir.display())]
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
    /// bytes of a store path (mtime, owner rules, compression level).
    pub fn new(store_path: &str, nar_hash: &str, settings: &str) -> Self {
        let mut hasher = Sha256::new();
        for part in [FORMAT_VERSION, store_path, nar_hash, settings] {
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part.as_bytes());
        }
        SegmentKey(
            hasher
                .finalize()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        )
    }
}

/// A stored segment: its members and the writer's metadata about them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedSegment {
    pub metadata: Vec<u8>,
    pub segment: CompressedSegment,
}

/// A directory of segments.
#[derive(Debug, Clone)]
pub struct SegmentCache {
    dir: PathBuf,
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

    /// Opens (creating if needed) the cache directory.
    pub fn open(dir: &Path) -> Result<Self, CacheError> {
        fs::create_dir_all(dir).map_err(|source| CacheError::Io {
            dir: dir.to_path_buf(),
            source,
        })?;
        Ok(SegmentCache {
            dir: dir.to_path_buf(),
        })
    }

    fn file(&self, key: &SegmentKey) -> PathBuf {
        self.dir.join(format!("{}.seg", key.0))
    }

    /// The file that holds (or would hold) the segment under `key`.
    pub fn file_of(&self, key: &SegmentKey) -> PathBuf {
        self.file(key)
    }

    /// Whether a segment is stored under `key` (without reading it).
    pub fn contains(&self, key: &SegmentKey) -> bool {
        self.file(key).is_file()
    }

    /// The segment stored under `key`: `Ok(None)` when there is none (or
    /// it cannot be read), an error when it is there but damaged.
    pub fn load(&self, key: &SegmentKey) -> Result<Option<CachedSegment>, DamagedSegment> {
        let file = self.file(key);
        let Ok(bytes) = fs::read(&file) else {
            return Ok(None);
        };
        let damaged = |why| DamagedSegment {
            file: file.clone(),
            why,
        };
        if bytes.len() < HEADER_LEN {
            return Err(damaged("truncated"));
        }
        let (header, rest) = bytes.split_at(HEADER_LEN);
        if &header[..8] != MAGIC {
            return Err(damaged("not a segment file"));
        }
        let number =
            |at: usize| u64::from_le_bytes(header[at..at + 8].try_into().expect("8 bytes"));
        let input_len = number(8);
        let crc = u32::try_from(number(16)).map_err(|_| damaged("bad CRC field"))?;
        let metadata_len = usize::try_from(number(24))
            .ok()
            .filter(|&len| len <= rest.len())
            .ok_or_else(|| damaged("bad metadata length"))?;
        let (metadata, members) = rest.split_at(metadata_len);
        if header[32..] != checksum(input_len, crc, metadata, members) {
            return Err(damaged("checksum mismatch"));
        }
        Ok(Some(CachedSegment {
            metadata: metadata.to_vec(),
            segment: CompressedSegment {
                members: members.to_vec(),
                crc,
                input_len,
            },
        }))
    }

    /// Stores a segment and its metadata under `key`, atomically, replacing
    /// what was there.
    pub fn store(
        &self,
        key: &SegmentKey,
        metadata: &[u8],
        segment: &CompressedSegment,
    ) -> Result<(), CacheError> {
        let mut output = AtomicOutput::create_cache_entry(&self.file(key))?;
        let mut header = MAGIC.to_vec();
        header.extend_from_slice(&segment.input_len.to_le_bytes());
        header.extend_from_slice(&u64::from(segment.crc).to_le_bytes());
        header.extend_from_slice(&(metadata.len() as u64).to_le_bytes());
        header.extend_from_slice(&checksum(
            segment.input_len,
            segment.crc,
            metadata,
            &segment.members,
        ));
        output.write_all(&header)?;
        output.write_all(metadata)?;
        output.write_all(&segment.members)?;
        output.commit()?;
        Ok(())
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_and_loads_and_reports_damage() {
        let dir = tempfile::tempdir().unwrap();
        let cache = SegmentCache::open(&dir.path().join("cache")).unwrap();
        let key = SegmentKey::new("/nix/store/x-a", "sha256-AAAA", "mtime=1");
        assert_eq!(cache.load(&key), Ok(None));
        let cached = CompressedSegment {
            members: vec![1, 2, 3],
            crc: 0xdead_beef,
            input_len: 1024,
        };
        cache.store(&key, b"{}", &cached).unwrap();
        assert!(cache.contains(&key));
        let stored = CachedSegment {
            metadata: b"{}".to_vec(),
            segment: cached.clone(),
        };
        assert_eq!(cache.load(&key), Ok(Some(stored.clone())));
        let good = std::fs::read(cache.file(&key)).unwrap();
        for (at, why) in [
            (good.len() - 1, "checksum mismatch"),
            (9, "checksum mismatch"),
            (40, "checksum mismatch"),
            (0, "not a segment file"),
        ] {
            let mut bad = good.clone();
            bad[at] ^= 1;
            std::fs::write(cache.file(&key), &bad).unwrap();
            let damaged = cache.load(&key).unwrap_err();
            assert_eq!(damaged.why, why, "byte {at}");
            assert!(damaged.to_string().contains(".seg is damaged"), "{damaged}");
        }
        std::fs::write(cache.file(&key), b"WSLSEG4\nshort").unwrap();
        assert_eq!(cache.load(&key).unwrap_err().why, "truncated");
        cache.store(&key, b"{}", &cached).unwrap();
        assert_eq!(cache.load(&key), Ok(Some(stored)));
        assert_eq!(
            std::fs::read_dir(dir.path().join("cache")).unwrap().count(),
            1
        );
        assert_ne!(
            key,
            SegmentKey::new("/nix/store/x-a", "sha256-AAAA", "mtime=2")
        );
    }

    #[test]
    fn only_gzip_and_a_directory_are_usable() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, b"").unwrap();
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
    }
}
