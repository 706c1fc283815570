//! The segment cache behind `--cache DIR`: compressed store paths, reused.
//!
//! With gzip, every store path is compressed as a segment that starts and
//! ends with a dictionary restart, so its compressed bytes depend only on its
//! own tar bytes. Those depend only on what [`SegmentKey`] hashes: the store
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
//! length and CRC-32, then the raw deflate bytes. Files are written to a temporary name and renamed, so a crash
//! never leaves a torn entry; an unreadable or malformed entry is a miss.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::compress::CompressedSegment;

const MAGIC: &[u8; 8] = b"WSLSEG1\n";
/// Bumped whenever the bytes a segment holds would change for the same key.
const FORMAT_VERSION: &str = "wsl-tarball segment v1, 128 KiB blocks";

/// Why the cache directory cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("--cache {}: {source}", dir.display())]
pub struct CacheError {
    pub dir: PathBuf,
    pub source: io::Error,
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

/// A directory of segments.
#[derive(Debug, Clone)]
pub struct SegmentCache {
    dir: PathBuf,
}

impl SegmentCache {
    /// Opens (creating if needed) the cache directory.
    pub fn open(dir: &Path) -> Result<Self, CacheError> {
        fs::create_dir_all(dir).map_err(|source| CacheError {
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

    /// Whether a segment is stored under `key` (without reading it).
    pub fn contains(&self, key: &SegmentKey) -> bool {
        self.file(key).is_file()
    }

    /// The segment stored under `key`, if it is there and well formed.
    pub fn load(&self, key: &SegmentKey) -> Option<CompressedSegment> {
        let bytes = fs::read(self.file(key)).ok()?;
        let rest = bytes.strip_prefix(MAGIC)?;
        let number = |index: usize| -> Option<u64> {
            let field = rest.get(index * 8..index * 8 + 8)?;
            Some(u64::from_le_bytes(field.try_into().ok()?))
        };
        let input_len = number(0)?;
        let crc = u32::try_from(number(1)?).ok()?;
        let deflated = rest.get(2 * 8..)?.to_vec();
        Some(CompressedSegment {
            deflated,
            crc,
            input_len,
        })
    }

    /// Stores a segment under `key`, atomically.
    pub fn store(&self, key: &SegmentKey, segment: &CompressedSegment) -> Result<(), CacheError> {
        let error = |source| CacheError {
            dir: self.dir.clone(),
            source,
        };
        let path = self.file(key);
        let temporary = path.with_extension(format!("tmp{}", std::process::id()));
        let mut file = fs::File::create(&temporary).map_err(error)?;
        let mut header = MAGIC.to_vec();
        header.extend_from_slice(&segment.input_len.to_le_bytes());
        header.extend_from_slice(&u64::from(segment.crc).to_le_bytes());
        file.write_all(&header)
            .and_then(|()| file.write_all(&segment.deflated))
            .and_then(|()| fs::rename(&temporary, &path))
            .map_err(|e| {
                let _ = fs::remove_file(&temporary);
                error(e)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_and_loads_and_treats_garbage_as_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let cache = SegmentCache::open(&dir.path().join("cache")).unwrap();
        let key = SegmentKey::new("/nix/store/x-a", "sha256-AAAA", "mtime=1");
        assert!(cache.load(&key).is_none());
        let cached = CompressedSegment {
            deflated: vec![1, 2, 3],
            crc: 0xdead_beef,
            input_len: 1024,
        };
        cache.store(&key, &cached).unwrap();
        assert!(cache.contains(&key));
        assert_eq!(cache.load(&key), Some(cached));
        std::fs::write(cache.file(&key), b"WSLSEG1\nshort").unwrap();
        assert!(cache.load(&key).is_none());
        assert_ne!(
            key,
            SegmentKey::new("/nix/store/x-a", "sha256-AAAA", "mtime=2")
        );
    }
}
