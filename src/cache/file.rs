//! A segment file, `<key>.seg`: written as the members come
//! ([`SegmentWriter`]) and read back checked without holding it in memory
//! ([`SegmentFile`]). The layout is in the module docs of `crate::cache`.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::time::SystemTime;

use super::{CacheError, DamagedSegment};
use crate::output::{AtomicOutput, OutputError};

pub(super) const MAGIC: &[u8; 8] = b"WSLSEG4\n";
/// Magic, input length, CRC-32, metadata length, BLAKE3.
pub(super) const HEADER_LEN: usize = 8 + 8 + 8 + 8 + 32;

/// A segment being stored: see [`SegmentCache::begin_store`].
pub struct SegmentWriter {
    output: AtomicOutput,
    destination: PathBuf,
    /// Over the members so far (see [`header`]).
    hasher: blake3::Hasher,
    members_len: u64,
}

impl SegmentWriter {
    /// A writer into `output`, which becomes `destination`; the header's
    /// room is written here, the header itself by [`SegmentWriter::finish`].
    pub(super) fn new(mut output: AtomicOutput, destination: PathBuf) -> Result<Self, CacheError> {
        output.write_all(&[0; HEADER_LEN])?;
        Ok(SegmentWriter {
            output,
            destination,
            hasher: blake3::Hasher::new(),
            members_len: 0,
        })
    }

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
    /// Length of the tar bytes the members stand for.
    pub input_len: u64,
    /// CRC-32 of those tar bytes (only [`SegmentCache::load`], the tests'
    /// view, reads it back; the write path splices the members whole).
    #[cfg(test)]
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
    pub(super) fn check(mut file: File, path: PathBuf) -> Result<Self, DamagedSegment> {
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
            #[cfg(test)]
            crc,
            file,
            path,
            members_len,
        })
    }

    /// Marks the segment used now (losing this only makes it look older).
    pub(super) fn mark_used(&self) {
        let _ = self.file.set_modified(SystemTime::now());
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
