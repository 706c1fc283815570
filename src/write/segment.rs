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

use serde::{Deserialize, Serialize};

use super::WriteError;
use crate::cache::{DamagedSegment, SegmentCache, SegmentFile, SegmentKey};
#[cfg(doc)]
use crate::compress::GZIP_MEMBER_SIZE;
use crate::entry::Entry;
use crate::nar_match::{NarDigest, NarMatch, NarMatchError};
use crate::pipeline::{Piece, PieceSink, PieceWriter, SegmentSource};
use crate::plan::{Plan, PlanError, Segment};
use crate::scan::{Scanner, SegmentScan};
use crate::store::{NarHash, StorePath};
use crate::tar::{TarError, TarStats, TarWriter};

/// Why a segment stopped before it was encoded.
pub(super) type Stop = crate::pipeline::Stop<WriteError>;

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

/// A segment, encoded.
#[derive(Debug)]
pub(super) struct Encoded {
    pub stats: TarStats,
    pub scan: Option<SegmentScan>,
    /// The cached segment that was damaged and is being replaced.
    pub damaged: Option<DamagedSegment>,
}

/// What a cached segment holds besides the members: everything the write
/// would have learnt from reading the store path.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SegmentMetadata {
    stats: TarStats,
    scan: Option<SegmentScan>,
}

/// The cached segment's metadata for a segment.
pub(super) fn cache_metadata(encoded: &Encoded) -> Vec<u8> {
    let facts = SegmentMetadata {
        stats: encoded.stats,
        scan: encoded.scan.clone(),
    };
    serde_json::to_vec(&facts).expect("segment facts serialise")
}

/// Encodes a plan's segments; shared by every worker.
pub(super) struct SegmentEncoder<'a> {
    pub plan: &'a Plan,
    pub mtime: u64,
    /// The template every segment's scanner is a fresh copy of.
    pub scanner: Option<&'a Scanner>,
    /// The cache, with the settings string every key includes (gzip only).
    pub cache: Option<(&'a SegmentCache, String)>,
    segments: Vec<Segment<'a>>,
    /// Each segment's cache key (a store path's, when there is a cache),
    /// derived once: the worker looks it up, the cache stores store under
    /// it.
    keys: Vec<Option<SegmentKey>>,
}

impl<'a> SegmentSource for SegmentEncoder<'a> {
    type Done = Encoded;
    type Error = WriteError;

    fn len(&self) -> usize {
        self.segments.len()
    }

    fn encode(&self, index: usize, out: &dyn PieceSink<WriteError>) -> Result<Encoded, Stop> {
        self.encode_segment(index, out)
    }
}

impl<'a> SegmentEncoder<'a> {
    /// The encoder of `plan`'s segments.
    pub fn new(
        plan: &'a Plan,
        mtime: u64,
        scanner: Option<&'a Scanner>,
        cache: Option<(&'a SegmentCache, String)>,
    ) -> Self {
        let mut encoder = SegmentEncoder {
            plan,
            mtime,
            scanner,
            cache,
            segments: plan.segments(),
            keys: Vec::new(),
        };
        encoder.keys = encoder
            .segments
            .iter()
            .map(|segment| match segment {
                Segment::StorePath(path) => encoder.cache_key(path),
                Segment::Members(_) => None,
            })
            .collect();
        encoder
    }

    /// Segment `index`'s cache key, if it has one.
    pub fn key(&self, index: usize) -> Option<&SegmentKey> {
        self.keys.get(index)?.as_ref()
    }

    /// Encodes segment number `index` into `sink`; a store path whose key
    /// ([`SegmentEncoder::cache_key`]) is in the cache is not read.
    fn encode_segment(
        &self,
        index: usize,
        sink: &dyn PieceSink<WriteError>,
    ) -> Result<Encoded, Stop> {
        let segment = &self.segments[index];
        let key = self.keys[index].as_ref();
        let (entries, store_path): (Cow<'_, [Entry]>, _) = match segment {
            Segment::Members(entries) => (Cow::Borrowed(entries.as_slice()), None),
            Segment::StorePath(path) => {
                let mut damaged = None;
                if let Some(((cache, _), key)) = self.cache.as_ref().zip(key) {
                    match self.load(cache, key) {
                        Ok(Some((mut found, _))) if cache.checks_contents() => {
                            match self.recheck(index, path, &mut found, sink)? {
                                Ok(rechecked) => {
                                    sink.put(index, Piece::Cached(found))?;
                                    return Ok(Encoded {
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
                            sink.put(index, Piece::Cached(found))?;
                            return Ok(Encoded {
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
    ) -> Result<Option<(SegmentFile, SegmentMetadata)>, DamagedSegment> {
        let Some(found) = cache.open_segment(key)? else {
            return Ok(None);
        };
        let facts: SegmentMetadata = serde_json::from_slice(&found.metadata)
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
        sink: &dyn PieceSink<WriteError>,
    ) -> Result<Encoded, Stop> {
        let nar_match = store_path.map_or_else(NarMatch::new, |path| self.nar_match(path));
        let scanner = self.scanner.map(Scanner::fresh);
        let pieces = PieceWriter::new(sink, index);
        let mut tar = TarWriter::with_observer(pieces, self.mtime, (scanner, nar_match));
        for entry in entries {
            sink.check(index)?;
            if let Err(error) = tar.append(entry) {
                return Err(tar.inner_mut().take_stop().unwrap_or(Stop::from(error)));
            }
        }
        let (pieces, (scanner, mut nar_match), stats) = tar.into_segment();
        if store_path.is_some() {
            nar_match.end()?;
        }
        pieces.finish()?;
        Ok(Encoded {
            stats,
            scan: scanner.map(Scanner::finish_segment),
            damaged: None,
        })
    }
}
