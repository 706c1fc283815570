//! Encoding one [`Segment`] of the archive on a worker: its tar bytes in
//! member-sized pieces, its scan findings and its NAR check, or, on a cache
//! hit, its stored members and findings without reading anything (or, when
//! the cache checks contents, once `recheck.rs` has checked them).
//!
//! A segment's tar bytes depend only on its members and the mtime (a tar
//! header does not depend on where it sits in the archive), so segments can
//! be encoded in any order on any thread; the pipeline puts the pieces back
//! in order. The pieces are cut at fixed offsets from the segment's start
//! ([`GZIP_MEMBER_SIZE`]), so the output never depends on the thread count.

use std::borrow::Cow;
use std::io::{self, Write};

use serde::{Deserialize, Serialize};

use super::WriteError;
use crate::cache::{DamagedSegment, SegmentCache, SegmentFile, SegmentKey};
use crate::compress::GZIP_MEMBER_SIZE;
use crate::entry::Entry;
use crate::nar_match::{NarDigest, NarMatch, NarMatchError};
use crate::plan::{Plan, PlanError, Segment};
use crate::scan::{Scanner, SegmentScan};
use crate::store::{NarHash, StorePath};
use crate::tar::{TarError, TarStats, TarWriter};

/// A finished, compressed piece of a segment, ready to be written.
#[derive(Debug)]
pub(super) struct Chunk {
    /// The bytes that go into the output as they are.
    pub bytes: Vec<u8>,
    /// Tar bytes they stand for.
    pub input_len: u64,
    /// CRC-32 of those tar bytes (gzip; 0 otherwise).
    pub crc: u32,
}

/// What a segment hands the pipeline, piece by piece, in order.
pub(super) enum Piece {
    /// Up to [`GZIP_MEMBER_SIZE`] tar bytes, to be compressed.
    Tar(Vec<u8>),
    /// A checked cache entry whose gzip members stand for the whole
    /// segment; they are copied from the file when written.
    Cached(SegmentFile),
}

/// Why a segment stopped before it was encoded.
#[derive(Debug)]
pub(super) enum Stop {
    /// The segment cannot be written: the write fails with this.
    Failed(WriteError),
    /// Another segment failed first, or the write was abandoned.
    Cancelled,
}

impl From<WriteError> for Stop {
    fn from(error: WriteError) -> Self {
        Stop::Failed(error)
    }
}

impl From<TarError> for Stop {
    fn from(error: TarError) -> Self {
        Stop::Failed(WriteError::Tar(error))
    }
}

impl From<PlanError> for Stop {
    fn from(error: PlanError) -> Self {
        Stop::Failed(WriteError::Plan(error))
    }
}

impl From<NarMatchError> for Stop {
    fn from(error: NarMatchError) -> Self {
        Stop::Failed(WriteError::Nar(error))
    }
}

/// Where a segment's pieces go (the pipeline).
pub(super) trait PieceSink {
    /// Takes piece number `index` of segment `segment`; may wait while too
    /// much is held in memory.
    fn put(&self, segment: usize, index: usize, piece: Piece) -> Result<(), Stop>;
    /// Whether segment `segment` should stop now.
    fn check(&self, segment: usize) -> Result<(), Stop>;
    /// An empty buffer for the next piece (recycled when possible).
    fn buffer(&self) -> Vec<u8>;
}

/// A segment, encoded.
#[derive(Debug)]
pub(super) struct Encoded {
    /// How many pieces it was handed over in.
    pub pieces: usize,
    pub stats: TarStats,
    pub scan: Option<SegmentScan>,
    /// The cache entry that was damaged and is being replaced.
    pub damaged: Option<DamagedSegment>,
}

/// What a cache entry holds besides the members: everything the write
/// would have learnt from reading the store path.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CachedFacts {
    stats: TarStats,
    scan: Option<SegmentScan>,
}

/// The cache entry's metadata for a segment.
pub(super) fn cache_metadata(encoded: &Encoded) -> Vec<u8> {
    let facts = CachedFacts {
        stats: encoded.stats,
        scan: encoded.scan.clone(),
    };
    serde_json::to_vec(&facts).expect("segment facts serialise")
}

/// Encodes segments; shared by every worker.
pub(super) struct SegmentEncoder<'a> {
    pub plan: &'a Plan,
    pub mtime: u64,
    /// The template every segment's scanner is a fresh copy of.
    pub scanner: Option<&'a Scanner>,
    /// The cache, with the settings string every key includes (gzip only).
    pub cache: Option<(&'a SegmentCache, String)>,
}

impl SegmentEncoder<'_> {
    /// Encodes segment number `index` into `sink`; a store path whose
    /// `key` ([`SegmentEncoder::cache_key`]) is in the cache is not read.
    pub fn encode(
        &self,
        index: usize,
        segment: &Segment<'_>,
        key: Option<&SegmentKey>,
        sink: &dyn PieceSink,
    ) -> Result<Encoded, Stop> {
        let (entries, store_path): (Cow<'_, [Entry]>, _) = match segment {
            Segment::Members(entries) => (Cow::Borrowed(entries.as_slice()), None),
            Segment::StorePath(path) => {
                let mut damaged = None;
                if let Some(((cache, _), key)) = self.cache.as_ref().zip(key) {
                    match self.load(cache, key) {
                        Ok(Some((mut found, _))) if cache.checks_contents() => {
                            match self.recheck(index, path, &mut found, sink)? {
                                Ok(rechecked) => {
                                    sink.put(index, 0, Piece::Cached(found))?;
                                    return Ok(Encoded {
                                        pieces: 1,
                                        stats: rechecked.stats,
                                        scan: rechecked.scan,
                                        damaged: None,
                                    });
                                }
                                Err(why) => {
                                    damaged = Some(
                                        found
                                            .damaged(format!("it failed the content check: {why}")),
                                    )
                                }
                            }
                        }
                        Ok(Some((found, facts))) => {
                            sink.put(index, 0, Piece::Cached(found))?;
                            return Ok(Encoded {
                                pieces: 1,
                                stats: facts.stats,
                                scan: facts.scan,
                                damaged: None,
                            });
                        }
                        Ok(None) => {}
                        Err(found) => damaged = Some(found),
                    }
                }
                let entries = self.plan.store_path_entries(path)?;
                let mut encoded = self.encode_entries(index, &entries, Some(path), sink)?;
                encoded.damaged = damaged;
                return Ok(encoded);
            }
        };
        self.encode_entries(index, &entries, store_path, sink)
    }

    /// The cache key of a store path's segment, if there is a cache.
    pub fn cache_key(&self, path: &StorePath) -> Option<SegmentKey> {
        let (_, settings) = self.cache.as_ref()?;
        let nar_hash = self.plan.nar_hash(path).map(|h| h.to_sri())?;
        let archive_path = self.plan.store_path_display(path);
        Some(SegmentKey::new(&archive_path, &nar_hash, settings))
    }

    /// A stored segment whose facts match this write's (a scan report
    /// exactly when this write scans); anything unreadable is damaged.
    fn load(
        &self,
        cache: &SegmentCache,
        key: &SegmentKey,
    ) -> Result<Option<(SegmentFile, CachedFacts)>, DamagedSegment> {
        let Some(found) = cache.open_segment(key)? else {
            return Ok(None);
        };
        let facts: CachedFacts = serde_json::from_slice(&found.metadata)
            .map_err(|_| found.damaged("unreadable metadata"))?;
        if facts.scan.is_some() != self.scanner.is_some()
            || facts.stats.archive_bytes != found.input_len
        {
            return Err(found.damaged("metadata does not match the members"));
        }
        Ok(Some((found, facts)))
    }

    /// The NAR check of store path `path`'s members.
    pub(super) fn nar_match(&self, path: &StorePath) -> NarMatch {
        let mut nar_match = NarMatch::new();
        // Every store path of a plan has its closure info; one without
        // could not be proven and fails the check.
        let (hash, size) = self.plan.nar_info(path).unwrap_or((NarHash([0; 32]), 0));
        nar_match.begin(
            self.plan.store_path_display(path),
            self.plan.host_path(path),
            self.plan.store_path_in_archive(path),
            NarDigest { hash, size },
        );
        nar_match
    }

    /// Reads, tars, scans and (for a store path) NAR-checks `entries`.
    fn encode_entries(
        &self,
        index: usize,
        entries: &[Entry],
        store_path: Option<&StorePath>,
        sink: &dyn PieceSink,
    ) -> Result<Encoded, Stop> {
        let nar_match = store_path.map_or_else(NarMatch::new, |path| self.nar_match(path));
        let scanner = self.scanner.map(Scanner::fresh);
        let pieces = PieceWriter {
            sink,
            segment: index,
            next: 0,
            buffer: Vec::new(),
            stop: None,
        };
        let mut tar = TarWriter::with_observer(pieces, self.mtime, (scanner, nar_match));
        for entry in entries {
            sink.check(index)?;
            if let Err(error) = tar.append(entry) {
                return Err(tar.inner_mut().stop.take().unwrap_or(Stop::from(error)));
            }
        }
        let (mut pieces, (scanner, mut nar_match), stats) = tar.into_segment();
        if store_path.is_some() {
            nar_match.end()?;
        }
        pieces.finish()?;
        Ok(Encoded {
            pieces: pieces.next,
            stats,
            scan: scanner.map(Scanner::finish_segment),
            damaged: None,
        })
    }
}

/// The tar writer's sink: cuts the segment's bytes into pieces of
/// [`GZIP_MEMBER_SIZE`] and hands them on.
struct PieceWriter<'s> {
    sink: &'s dyn PieceSink,
    segment: usize,
    /// Number of the next piece.
    next: usize,
    buffer: Vec<u8>,
    /// Why the sink refused a piece (the tar writer sees an I/O error).
    stop: Option<Stop>,
}

impl PieceWriter<'_> {
    fn hand_on(&mut self) -> Result<(), Stop> {
        let piece = std::mem::take(&mut self.buffer);
        let index = self.next;
        self.next += 1;
        self.sink.put(self.segment, index, Piece::Tar(piece))
    }

    /// Hands on the last, partial piece.
    fn finish(&mut self) -> Result<(), Stop> {
        if !self.buffer.is_empty() || self.next == 0 {
            self.hand_on()?;
        }
        Ok(())
    }
}

impl Write for PieceWriter<'_> {
    fn write(&mut self, mut bytes: &[u8]) -> io::Result<usize> {
        let written = bytes.len();
        while !bytes.is_empty() {
            if self.buffer.capacity() == 0 {
                self.buffer = self.sink.buffer();
            }
            let take = (GZIP_MEMBER_SIZE - self.buffer.len()).min(bytes.len());
            self.buffer.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.buffer.len() == GZIP_MEMBER_SIZE {
                if let Err(stop) = self.hand_on() {
                    self.stop = Some(stop);
                    return Err(io::Error::other("the segment was stopped"));
                }
            }
        }
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
