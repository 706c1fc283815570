//! Nix's export format, as `nix-store --export` writes and
//! `nix-store --import` reads it (Nix's `Store::exportPaths`):
//!
//! ```text
//! for each path, references before referrers:
//!   u64 1
//!   the path's NAR
//!   u64 0x4558494e ("NIXE")
//!   string path, u64 count and strings references (sorted), string deriver
//!   u64 0 (no legacy signature)
//! u64 0
//! ```
//!
//! Numbers are little-endian u64; strings are a u64 length, the bytes and
//! zero padding to a multiple of 8, as in a NAR. We write no deriver (it
//! depends on the machine, see docs/src/format.md on the Nix database). [`ExportReader`]
//! reads a stream back against the manifest's list, hashing every NAR.

use std::io::{self, Read, Write};

use sha2::{Digest, Sha256};

use super::manifest::{absolute, parse_store_path, BundlePath};
use crate::nar::NarHasher;
use crate::store::{NarHash, StorePath};

/// The magic number after each NAR.
pub const EXPORT_MAGIC: u64 = 0x4558_494e;
/// Longest string the reader accepts (a store path, a deriver).
const MAX_STRING: u64 = 4096;
/// Most references the reader accepts for one path.
const MAX_REFERENCES: u64 = 1 << 16;

fn put_u64(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(&n.to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, bytes: &[u8]) {
    put_u64(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
    out.resize(out.len().div_ceil(8) * 8, 0);
}

/// What comes before a path's NAR.
pub const RECORD_START: [u8; 8] = 1u64.to_le_bytes();
/// What ends the stream.
pub const STREAM_END: [u8; 8] = 0u64.to_le_bytes();

/// What follows a path's NAR: magic, path, references, empty deriver, no
/// signature.
pub fn record_trailer(path: &BundlePath) -> Vec<u8> {
    let mut out = Vec::new();
    put_u64(&mut out, EXPORT_MAGIC);
    put_str(&mut out, path.absolute().as_bytes());
    put_u64(&mut out, path.references.len() as u64);
    for reference in &path.references {
        put_str(&mut out, absolute(reference).as_bytes());
    }
    put_str(&mut out, b"");
    put_u64(&mut out, 0);
    out
}

/// Bytes of a whole export stream of `paths`.
pub fn stream_size(paths: &[BundlePath]) -> u64 {
    paths
        .iter()
        .map(|p| RECORD_START.len() as u64 + p.nar_size + record_trailer(p).len() as u64)
        .sum::<u64>()
        + STREAM_END.len() as u64
}

/// One record as read back, its path and references parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportRecord {
    pub path: StorePath,
    pub references: Vec<StorePath>,
    pub deriver: String,
    pub nar_hash: NarHash,
    pub nar_size: u64,
}

/// Reads an export stream whose records the manifest lists, in its order.
/// Every NAR is read as many bytes as the manifest's `narSize` says and
/// hashed; the framing after it must follow.
pub struct ExportReader<R: Read> {
    inner: R,
    sha256: Sha256,
    bytes: u64,
}

impl<R: Read> ExportReader<R> {
    pub fn new(inner: R) -> Self {
        ExportReader {
            inner,
            sha256: Sha256::new(),
            bytes: 0,
        }
    }

    fn fill(&mut self, buffer: &mut [u8], what: &str) -> Result<(), String> {
        self.inner.read_exact(buffer).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                format!("the export stream ends in {what} at byte {}", self.bytes)
            } else {
                format!("reading the export stream at byte {}: {e}", self.bytes)
            }
        })?;
        self.sha256.update(&*buffer);
        self.bytes += buffer.len() as u64;
        Ok(())
    }

    fn u64(&mut self, what: &str) -> Result<u64, String> {
        let mut bytes = [0u8; 8];
        self.fill(&mut bytes, what)?;
        Ok(u64::from_le_bytes(bytes))
    }

    fn string(&mut self, what: &str) -> Result<String, String> {
        let len = self.u64(what)?;
        if len > MAX_STRING {
            return Err(format!("{what} at byte {} is {len} bytes long", self.bytes));
        }
        let mut bytes = vec![0u8; (len as usize).div_ceil(8) * 8];
        self.fill(&mut bytes, what)?;
        if bytes[len as usize..].iter().any(|&b| b != 0) {
            return Err(format!("{what}: non-zero padding"));
        }
        bytes.truncate(len as usize);
        String::from_utf8(bytes).map_err(|_| format!("{what} is not UTF-8"))
    }

    /// The next record, whose NAR is `nar_size` bytes, or `None` at the end
    /// marker. Errors say where the framing broke.
    pub fn next_record(&mut self, nar_size: Option<u64>) -> Result<Option<ExportRecord>, String> {
        let at = self.bytes;
        match self.u64("a record marker")? {
            0 => return Ok(None),
            1 => {}
            other => {
                return Err(format!(
                    "byte {at}: record marker {other}, expected 1 (a path) or 0 (the end)"
                ))
            }
        }
        let Some(nar_size) = nar_size else {
            return Err(format!(
                "byte {at}: a record the manifest does not list (it lists fewer paths)"
            ));
        };
        let mut hasher = NarHasher::new();
        let mut remaining = nar_size;
        let mut buffer = vec![0u8; 256 * 1024];
        while remaining > 0 {
            let n = remaining.min(buffer.len() as u64) as usize;
            self.fill(&mut buffer[..n], "a NAR")?;
            hasher.write_all(&buffer[..n]).map_err(|e| e.to_string())?;
            remaining -= n as u64;
        }
        let (digest, size) = hasher.finish();
        let magic_at = self.bytes;
        let magic = self.u64("the export magic")?;
        if magic != EXPORT_MAGIC {
            return Err(format!(
                "byte {magic_at}: no export magic after {nar_size} NAR bytes (the NAR is not the size the manifest says)"
            ));
        }
        let path_at = self.bytes;
        let path = self.string("a store path")?;
        let path = parse_store_path(&format!("the record's path at byte {path_at}"), &path)
            .map_err(|e| e.to_string())?;
        let count = self.u64("a reference count")?;
        if count > MAX_REFERENCES {
            return Err(format!("{}: {count} references", absolute(&path)));
        }
        let mut references = Vec::with_capacity(count as usize);
        for i in 0..count {
            let reference = self.string("a reference")?;
            references.push(
                parse_store_path(
                    &format!("{}: reference {i} in the export", absolute(&path)),
                    &reference,
                )
                .map_err(|e| e.to_string())?,
            );
        }
        let deriver = self.string("a deriver")?;
        if self.u64("the signature flag")? == 1 {
            self.string("a signature")?;
        }
        Ok(Some(ExportRecord {
            path,
            references,
            deriver,
            nar_hash: NarHash(digest),
            nar_size: size,
        }))
    }

    /// SHA-256 and size of everything read, after checking nothing follows.
    pub fn finish(mut self) -> Result<([u8; 32], u64), String> {
        let mut probe = [0u8; 1];
        match self.inner.read(&mut probe) {
            Ok(0) => Ok((self.sha256.finalize().into(), self.bytes)),
            Ok(_) => Err(format!(
                "bytes follow the end marker at byte {}",
                self.bytes
            )),
            Err(e) => Err(format!("reading the export stream: {e}")),
        }
    }
}

/// Checks a whole export stream against the manifest's list: every record
/// in order with the NAR hash, size, path and references listed. Returns
/// the failures (a broken framing ends the list) and the stream's SHA-256
/// and size when it could be read to its end.
pub fn check_export(
    reader: impl Read,
    paths: &[BundlePath],
) -> (Vec<String>, Option<([u8; 32], u64)>) {
    let mut export = ExportReader::new(reader);
    let mut failures = Vec::new();
    let mut expected = paths.iter();
    for index in 0.. {
        let next = expected.next();
        let record = match export.next_record(next.map(|p| p.nar_size)) {
            Ok(record) => record,
            Err(message) => {
                failures.push(message);
                return (failures, None);
            }
        };
        let (Some(record), Some(listed)) = (record, next) else {
            if let Some(listed) = next {
                failures.push(format!(
                    "{}: listed in the manifest but not in the export stream",
                    listed.absolute()
                ));
                failures.extend(expected.map(|p| {
                    format!(
                        "{}: listed in the manifest but not in the export stream",
                        p.absolute()
                    )
                }));
                return (failures, None);
            }
            break;
        };
        if record.path != listed.path {
            failures.push(format!(
                "record {index} is {}, the manifest lists {} there",
                absolute(&record.path),
                listed.absolute()
            ));
        }
        if listed.nar_hash != record.nar_hash {
            failures.push(format!(
                "{}: NAR hash {} in the export, the manifest says {}",
                listed.absolute(),
                record.nar_hash.to_sri(),
                listed.nar_hash.to_sri()
            ));
        }
        if record.references != listed.references {
            failures.push(format!(
                "{}: references in the export differ from the manifest's",
                listed.absolute()
            ));
        }
    }
    match export.finish() {
        Ok(digest) => (failures, Some(digest)),
        Err(message) => {
            failures.push(message);
            (failures, None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nar::NarHasher;

    const PATH: &str = "/nix/store/00000000000000000000000000000000-a";
    const REFERENCE: &str = "/nix/store/11111111111111111111111111111111-b";

    /// A record of `nar` (any bytes: the reader does not parse the NAR).
    fn listed(nar: &[u8]) -> BundlePath {
        let mut hasher = NarHasher::new();
        hasher.write_all(nar).unwrap();
        let (digest, size) = hasher.finish();
        BundlePath {
            path: parse_store_path("path", PATH).unwrap(),
            nar_hash: NarHash(digest),
            nar_size: size,
            references: vec![parse_store_path("reference", REFERENCE).unwrap()],
        }
    }

    fn stream(path: &BundlePath, nar: &[u8]) -> Vec<u8> {
        let mut out = RECORD_START.to_vec();
        out.extend_from_slice(nar);
        out.extend_from_slice(&record_trailer(path));
        out.extend_from_slice(&STREAM_END);
        out
    }

    #[test]
    fn a_stream_reads_back_and_its_size_is_known_in_advance() {
        let nar = b"sixteen bytes!!!";
        let path = listed(nar);
        let bytes = stream(&path, nar);
        assert_eq!(bytes.len() as u64, stream_size(std::slice::from_ref(&path)));
        let (failures, digest) = check_export(&bytes[..], std::slice::from_ref(&path));
        assert!(failures.is_empty(), "{failures:?}");
        let (sha256, size) = digest.unwrap();
        assert_eq!(size, bytes.len() as u64);
        assert_eq!(sha256, <[u8; 32]>::from(Sha256::digest(&bytes)));
        // The trailer: magic, path, one reference, empty deriver, no signature.
        let trailer = record_trailer(&path);
        assert_eq!(&trailer[..8], &EXPORT_MAGIC.to_le_bytes());
        assert_eq!(trailer.len(), 8 + 8 + 48 + 8 + 8 + 48 + 8 + 8);
    }

    #[test]
    fn a_changed_nar_is_named_by_its_path() {
        let nar = b"sixteen bytes!!!";
        let path = listed(nar);
        let bytes = stream(&path, b"sixteen bytes!!?");
        let (failures, _) = check_export(&bytes[..], std::slice::from_ref(&path));
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert!(
            failures[0].starts_with(&format!("{PATH}: NAR hash")),
            "{failures:?}"
        );
    }

    #[test]
    fn broken_framing_says_where() {
        let nar = b"sixteen bytes!!!";
        let path = listed(nar);
        let mut longer = path.clone();
        longer.nar_size += 8;
        let bytes = stream(&path, nar);
        let (failures, digest) = check_export(&bytes[..], std::slice::from_ref(&longer));
        assert!(digest.is_none());
        assert!(failures[0].contains("no export magic"), "{failures:?}");

        let (failures, _) = check_export(&bytes[..], &[]);
        assert!(
            failures[0].contains("the manifest does not list"),
            "{failures:?}"
        );

        let mut trailing = bytes.clone();
        trailing.push(0);
        let (failures, _) = check_export(&trailing[..], std::slice::from_ref(&path));
        assert!(
            failures[0].contains("bytes follow the end marker"),
            "{failures:?}"
        );

        let (failures, _) = check_export(&bytes[..40], std::slice::from_ref(&path));
        assert!(failures[0].contains("ends in"), "{failures:?}");
    }

    #[test]
    fn a_record_whose_path_or_reference_is_no_store_path_is_refused() {
        let nar = b"sixteen bytes!!!";
        let path = listed(nar);
        let good = stream(&path, nar);
        // The same lengths, other text: the path, then the reference.
        let shell = format!("{}';#", &PATH[..PATH.len() - 3]);
        let option = format!("{:/<45}", "--store local?root=/tmp/x");
        for (from, to, needle) in [
            (PATH, shell.as_str(), "the record's path at byte"),
            (REFERENCE, option.as_str(), "reference 0 in the export"),
        ] {
            assert_eq!(from.len(), to.len());
            let at = good
                .windows(from.len())
                .rposition(|w| w == from.as_bytes())
                .unwrap();
            let mut bytes = good.clone();
            bytes[at..at + to.len()].copy_from_slice(to.as_bytes());
            let (failures, digest) = check_export(&bytes[..], std::slice::from_ref(&path));
            assert!(digest.is_none());
            assert!(failures[0].contains(needle), "{failures:?}");
        }
    }
}
