//! Checking a cache hit before it is used, for a cache whose contents
//! crossed a trust boundary ([`SegmentCache::checks_contents`]): the
//! segment's bytes must be exactly what encoding the store path afresh would
//! give, except that its content is what the segment holds, proven by the
//! closure's NAR hash.
//!
//! The store path is walked (names, kinds, modes, sizes, symlink targets:
//! metadata only, no file is read) and tarred again as [`SegmentEncoder`]
//! does, with every file's content taken from the segment. Each byte the tar
//! writer makes (headers, padding) must equal the segment's next byte, and
//! the segment must end where the members end: an added, dropped, renamed
//! or re-moded member, or any other header difference, is a mismatch. The
//! content bytes go through a fresh [`NarMatch`] and a fresh scanner, so the
//! NAR hash and size must be the closure's, and the findings are derived
//! again (the metadata the segment carries is not used). The segment's gzip
//! members are inflated one by one and must be framed exactly as `write`
//! frames them (a header with the "WT" length, raw deflate that ends where
//! the trailer starts, CRC-32 and size that match): every gzip reader then
//! reads the same bytes that were checked here.
//!
//! A hit that fails is not used: the writer encodes the store path afresh
//! and replaces the entry. So the segment contributes only compressed bytes
//! that were inflated and checked; the checked cost is inflating, NAR
//! hashing and scanning instead of reading and compressing.
//!
//! [`SegmentCache::checks_contents`]: crate::cache::SegmentCache::checks_contents

use std::cell::{Cell, RefCell};
use std::io::{self, Read, Write};

use flate2::{Decompress, FlushDecompress, Status};

use super::segment::{SegmentEncoder, Stop};
use super::WriteError;
use crate::cache::SegmentFile;
use crate::compress::{GZIP_EXTRA_SUBFIELD_ID, GZIP_MEMBER_HEADER_LEN, GZIP_MEMBER_SIZE};
use crate::entry::EntryKind;
use crate::nar_match::NarMatchError;
use crate::pipeline::PieceSink;
use crate::scan::{Scanner, SegmentScan};
use crate::store::StorePath;
use crate::tar::{TarError, TarStats, TarWriter};

/// What a checked hit amounts to: what encoding it afresh would have said.
#[derive(Debug)]
pub(super) struct Rechecked {
    pub stats: TarStats,
    pub scan: Option<SegmentScan>,
}

impl SegmentEncoder<'_> {
    /// Checks the cached segment `found` of segment `index`, the store path
    /// `path`; see the module docs. `Ok(Err(why))` when it fails.
    pub(super) fn recheck(
        &self,
        index: usize,
        path: &StorePath,
        found: &mut SegmentFile,
        sink: &dyn PieceSink<WriteError>,
    ) -> Result<Result<Rechecked, String>, Stop> {
        // A store path that cannot be walked fails the write, as it would
        // without the cache.
        let entries = self.plan.store_path_entries(path)?;
        let members = match found.members() {
            Ok(members) => members,
            Err(error) => return Ok(Err(format!("unreadable: {error}"))),
        };
        let cached = RefCell::new(Inflater::new(members));
        let copying = Cell::new(false);
        let matching = Matching {
            cached: &cached,
            copying: &copying,
        };
        let observers = (self.scanner.map(Scanner::fresh), self.nar_match(path));
        let mut tar = TarWriter::with_observer(matching, self.mtime, observers);
        for entry in &entries {
            sink.check(index)?;
            let appended = match &entry.kind {
                EntryKind::File { size, .. } if entry.uid == 0 && entry.gid == 0 => {
                    let size = *size;
                    tar.append_streamed(&entry.path, entry.mode, size, |out| {
                        copying.set(true);
                        let copied = cached.borrow_mut().copy(size, out);
                        copying.set(false);
                        copied.map_err(TarError::Write)
                    })
                }
                // The walk makes root-owned members only.
                EntryKind::File { .. } => return Ok(Err("a store file not owned by root".into())),
                EntryKind::Directory | EntryKind::Symlink { .. } => tar.append(entry),
            };
            if let Err(error) = appended {
                return Ok(Err(match error {
                    TarError::Write(error) => error.to_string(),
                    other => other.to_string(),
                }));
            }
        }
        let (_, (scanner, mut nar_match), stats) = tar.into_segment();
        match nar_match.end() {
            Ok(()) => {}
            Err(NarMatchError::Mismatch(mismatch)) => {
                return Ok(Err(format!(
                    "its content's NAR hash is {} ({} bytes), the closure says {} ({} bytes)",
                    mismatch.actual.hash,
                    mismatch.actual.size,
                    mismatch.expected.hash,
                    mismatch.expected.size
                )))
            }
            Err(NarMatchError::Nar { source, .. }) => {
                return Ok(Err(format!("its members are not a NAR: {source}")))
            }
        }
        match cached.borrow_mut().at_end() {
            Ok(true) => {}
            Ok(false) => {
                return Ok(Err(format!(
                    "it holds more than the store path's {} tar bytes",
                    stats.archive_bytes
                )))
            }
            Err(error) => return Ok(Err(error.to_string())),
        }
        if found.input_len != stats.archive_bytes {
            return Ok(Err("its header's length is not its members'".into()));
        }
        Ok(Ok(Rechecked {
            stats,
            scan: scanner.map(Scanner::finish_segment),
        }))
    }
}

/// The tar writer's sink during a check: every byte it makes must be the
/// segment's next byte, except content, which was just taken from there.
struct Matching<'a, R: Read> {
    cached: &'a RefCell<Inflater<R>>,
    /// Content is being copied from the segment (the bytes are its own).
    copying: &'a Cell<bool>,
}

impl<R: Read> Write for Matching<'_, R> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        if !self.copying.get() {
            self.cached.borrow_mut().expect(bytes)?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// CRC-32 and ISIZE.
const TRAILER_LEN: usize = 8;
/// More than a member of ours can take compressed (deflate's stored-block
/// worst case of 1 MiB, header and trailer).
const MAX_MEMBER_LEN: usize = GZIP_MEMBER_SIZE + GZIP_MEMBER_SIZE / 8 + 4096;

/// The tar bytes of a segment's gzip members, inflated one member at a time
/// and checked as the module docs say.
struct Inflater<R: Read> {
    source: R,
    compressed: Vec<u8>,
    /// The member being handed out: `inflated[position..len]` is left.
    inflated: Vec<u8>,
    len: usize,
    position: usize,
    inflate: Decompress,
    /// Offsets of the next member in the members, and of the next tar byte.
    member_at: u64,
    tar_at: u64,
}

/// Why a segment's bytes are not the ones expected.
fn rejected(why: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why)
}

impl<R: Read> Inflater<R> {
    fn new(source: R) -> Self {
        Inflater {
            source,
            compressed: Vec::new(),
            inflated: Vec::new(),
            len: 0,
            position: 0,
            inflate: Decompress::new(false),
            member_at: 0,
            tar_at: 0,
        }
    }

    /// Inflates the next member; `false` at the end of the members.
    fn next_member(&mut self) -> io::Result<bool> {
        let at = self.member_at;
        let mut header = [0; GZIP_MEMBER_HEADER_LEN];
        let got = read_up_to(&mut self.source, &mut header)?;
        if got == 0 {
            return Ok(false);
        }
        let [s1, s2] = GZIP_EXTRA_SUBFIELD_ID;
        if got < header.len()
            || header[..4] != [0x1f, 0x8b, 8, 4]
            || header[10..16] != [8, 0, s1, s2, 4, 0]
        {
            return Err(rejected(format!(
                "the gzip member at byte {at} is not framed as write frames members"
            )));
        }
        let total = u32::from_le_bytes(header[16..20].try_into().expect("4 bytes")) as usize;
        if !(GZIP_MEMBER_HEADER_LEN + TRAILER_LEN..=MAX_MEMBER_LEN).contains(&total) {
            return Err(rejected(format!(
                "the gzip member at byte {at} claims {total} bytes"
            )));
        }
        self.compressed.resize(total - GZIP_MEMBER_HEADER_LEN, 0);
        if read_up_to(&mut self.source, &mut self.compressed)? < self.compressed.len() {
            return Err(rejected(format!(
                "the gzip member at byte {at} is cut short"
            )));
        }
        let (deflated, trailer) = self
            .compressed
            .split_at(self.compressed.len() - TRAILER_LEN);
        let crc = u32::from_le_bytes(trailer[..4].try_into().expect("4 bytes"));
        let size = u32::from_le_bytes(trailer[4..].try_into().expect("4 bytes")) as usize;
        if size > GZIP_MEMBER_SIZE {
            return Err(rejected(format!(
                "the gzip member at byte {at} claims {size} bytes inflated"
            )));
        }
        // One byte more than claimed: a stream that goes on shows.
        self.inflated.resize(GZIP_MEMBER_SIZE + 1, 0);
        self.inflate.reset(false);
        let status = self.inflate.decompress(
            deflated,
            &mut self.inflated[..size + 1],
            FlushDecompress::Finish,
        );
        let exact = matches!(status, Ok(Status::StreamEnd))
            && self.inflate.total_in() == deflated.len() as u64
            && self.inflate.total_out() == size as u64;
        if !exact || crc32fast::hash(&self.inflated[..size]) != crc {
            return Err(rejected(format!(
                "the gzip member at byte {at} does not inflate to exactly the {size} bytes its trailer says"
            )));
        }
        self.len = size;
        self.position = 0;
        self.member_at += total as u64;
        Ok(true)
    }

    /// The next inflated bytes; empty at the end.
    fn available(&mut self) -> io::Result<&[u8]> {
        while self.position == self.len {
            if !self.next_member()? {
                break;
            }
        }
        Ok(&self.inflated[self.position..self.len])
    }

    fn consume(&mut self, n: usize) {
        self.position += n;
        self.tar_at += n as u64;
    }

    /// The next bytes must be `expected`.
    fn expect(&mut self, mut expected: &[u8]) -> io::Result<()> {
        while !expected.is_empty() {
            let at = self.tar_at;
            let available = self.available()?;
            if available.is_empty() {
                return Err(rejected(format!(
                    "it ends at tar byte {at}, before the store path's members do"
                )));
            }
            let n = available.len().min(expected.len());
            if let Some(differs) = (0..n).find(|&i| available[i] != expected[i]) {
                return Err(rejected(format!(
                    "its tar bytes differ from the store path's at byte {}",
                    at + differs as u64
                )));
            }
            self.consume(n);
            expected = &expected[n..];
        }
        Ok(())
    }

    /// Copies the next `len` bytes into `out`.
    fn copy(&mut self, mut len: u64, out: &mut dyn Write) -> io::Result<()> {
        while len > 0 {
            let at = self.tar_at;
            let available = self.available()?;
            if available.is_empty() {
                return Err(rejected(format!("it ends at tar byte {at}, inside a file")));
            }
            let n = available
                .len()
                .min(usize::try_from(len).unwrap_or(usize::MAX));
            out.write_all(&available[..n])?;
            self.consume(n);
            len -= n as u64;
        }
        Ok(())
    }

    /// Whether every byte was handed out.
    fn at_end(&mut self) -> io::Result<bool> {
        Ok(self.available()?.is_empty())
    }
}

/// Reads until `buffer` is full or the source ends.
fn read_up_to(source: &mut impl Read, buffer: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match source.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compress::gzip_member;

    /// Everything the inflater hands out, or why it stopped.
    fn inflate(members: &[u8]) -> Result<Vec<u8>, String> {
        let mut inflater = Inflater::new(members);
        let mut out = Vec::new();
        loop {
            let available = inflater.available().map_err(|e| e.to_string())?;
            if available.is_empty() {
                return Ok(out);
            }
            let n = available.len();
            out.extend_from_slice(available);
            inflater.consume(n);
        }
    }

    #[test]
    fn only_members_framed_as_write_frames_them_inflate() {
        let first = vec![7; GZIP_MEMBER_SIZE];
        let second = b"the rest".to_vec();
        let ours = [
            gzip_member(&first, 6).unwrap().bytes,
            gzip_member(&second, 6).unwrap().bytes,
        ]
        .concat();
        assert_eq!(inflate(&ours).unwrap(), [first, second.clone()].concat());
        assert_eq!(inflate(&[]).unwrap(), Vec::<u8>::new());

        let member = gzip_member(&second, 6).unwrap().bytes;
        // Any other gzip: a reader might frame it otherwise.
        let mut foreign = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        foreign.write_all(&second).unwrap();
        let foreign = foreign.finish().unwrap();
        // A byte between the deflate stream's end and the trailer (the
        // length field says so): gzip would read it as the trailer's.
        let mut padded = member.clone();
        padded.insert(member.len() - TRAILER_LEN, 0);
        let len = padded.len() as u32;
        padded[16..20].copy_from_slice(&len.to_le_bytes());
        let mut wrong_crc = member.clone();
        let at = member.len() - TRAILER_LEN;
        wrong_crc[at] ^= 1;
        let mut wrong_size = member.clone();
        wrong_size[at + 4] += 1;
        let mut long = member.clone();
        long[16..20].copy_from_slice(&(MAX_MEMBER_LEN as u32 + 1).to_le_bytes());
        for (bytes, why) in [
            (foreign, "is not framed as write frames members"),
            (padded, "does not inflate to exactly"),
            (wrong_crc, "does not inflate to exactly"),
            (wrong_size, "does not inflate to exactly"),
            (long, "claims"),
            (member[..member.len() - 1].to_vec(), "is cut short"),
            ([member.clone(), vec![0x1f]].concat(), "is not framed"),
        ] {
            let error = inflate(&bytes).unwrap_err();
            assert!(error.contains(why), "{error}");
        }
        let error = inflate(&[ours.clone(), vec![0; 30]].concat()).unwrap_err();
        assert!(
            error.starts_with(&format!("the gzip member at byte {} ", ours.len())),
            "{error}"
        );
    }

    #[test]
    fn expected_bytes_must_match_and_copies_come_whole() {
        let tar = (0..3000u32).map(|i| i as u8).collect::<Vec<_>>();
        let members = gzip_member(&tar, 1).unwrap().bytes;
        let mut inflater = Inflater::new(&members[..]);
        inflater.expect(&tar[..512]).unwrap();
        let mut copied = Vec::new();
        inflater.copy(1000, &mut copied).unwrap();
        assert_eq!(copied, tar[512..1512]);
        let mut wrong = tar[1512..2000].to_vec();
        wrong[10] ^= 1;
        let error = inflater.expect(&wrong).unwrap_err().to_string();
        assert_eq!(
            error,
            "its tar bytes differ from the store path's at byte 1522"
        );

        let mut inflater = Inflater::new(&members[..]);
        inflater.expect(&tar).unwrap();
        assert!(inflater.at_end().unwrap());
        let error = inflater.expect(b"x").unwrap_err().to_string();
        assert!(error.starts_with("it ends at tar byte 3000"), "{error}");
    }
}
