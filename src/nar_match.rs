//! The NAR match: in the pass that writes the archive, each store path's
//! members must be exactly the NAR the closure states (`narHash`, `narSize`).
//!
//! [`NarMatch`] is a [`ContentObserver`]: it sees every member and content
//! byte the tar writer takes (on a `--cache` hit too, whose bytes are still
//! read), serialises the members of the current store path as a NAR with
//! [`NarEncoder`] into a [`NarHasher`], and compares digest and size when the
//! store path ends. A stale closure file or a store path changed on the host
//! is an error, so the database inside a written tarball never disagrees
//! with its contents.

use std::path::PathBuf;

use crate::entry::Entry;
use crate::nar::{NarEncoder, NarError, NarHasher, NarNode};
use crate::store::NarHash;
use crate::tar::ContentObserver;

/// Why a store path's bytes are not what the closure says.
#[derive(Debug, thiserror::Error)]
pub enum NarMatchError {
    #[error(
        "store path {} (read from {}) is not what the closure says: its NAR hash is {} ({} bytes), the closure says {} ({} bytes); the closure file is stale or the store path was modified",
        .0.path, .0.host.display(), .0.actual.hash, .0.actual.size, .0.expected.hash, .0.expected.size
    )]
    Mismatch(Box<NarMismatch>),
    #[error("store path {path} (read from {}) has no NAR form: {source}", host.display())]
    Nar {
        path: String,
        host: PathBuf,
        source: NarError,
    },
}

/// A store path whose NAR, as written, differs from the closure's.
#[derive(Debug)]
pub struct NarMismatch {
    pub path: String,
    pub host: PathBuf,
    pub expected: NarDigest,
    pub actual: NarDigest,
}

/// A NAR's SHA-256 and size: `narHash` and `narSize`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NarDigest {
    pub hash: NarHash,
    pub size: u64,
}

/// The store path whose members are being written.
struct Current {
    path: String,
    host: PathBuf,
    /// Its name in the archive (`nix/store/…-name`).
    archive_path: Vec<u8>,
    expected: NarDigest,
    encoder: NarEncoder<NarHasher>,
    broken: Option<NarError>,
}

impl Current {
    fn add(&mut self, entry: &Entry) -> Result<(), NarError> {
        let relative = match entry.path.strip_prefix(self.archive_path.as_slice()) {
            Some([]) => &[][..],
            Some([b'/', rest @ ..]) => rest,
            _ => {
                return Err(NarError::MissingParent {
                    path: entry.display_path(),
                })
            }
        };
        self.encoder.add(relative, NarNode::of_entry(entry))
    }
}

/// Hashes each store path's members as they are written; see the module doc.
#[derive(Default)]
pub struct NarMatch {
    current: Option<Current>,
}

impl NarMatch {
    pub fn new() -> Self {
        Self::default()
    }

    /// The members of the store path `path` (as the tarball names it, read
    /// from `host`), named `archive_path` and below, follow.
    pub fn begin(
        &mut self,
        path: String,
        host: PathBuf,
        archive_path: Vec<u8>,
        expected: NarDigest,
    ) {
        self.current = Some(Current {
            path,
            host,
            archive_path,
            expected,
            encoder: NarEncoder::new(NarHasher::new()),
            broken: None,
        });
    }

    /// The current store path is complete: its NAR must be the expected one.
    pub fn end(&mut self) -> Result<(), NarMatchError> {
        let Some(current) = self.current.take() else {
            return Ok(());
        };
        let nar_error = |source| NarMatchError::Nar {
            path: current.path.clone(),
            host: current.host.clone(),
            source,
        };
        if let Some(source) = current.broken {
            return Err(nar_error(source));
        }
        let (digest, size) = current.encoder.finish().map_err(nar_error)?.finish();
        let actual = NarDigest {
            hash: NarHash(digest),
            size,
        };
        if actual != current.expected {
            return Err(NarMatchError::Mismatch(Box::new(NarMismatch {
                path: current.path,
                host: current.host,
                expected: current.expected,
                actual,
            })));
        }
        Ok(())
    }
}

impl ContentObserver for NarMatch {
    fn begin_entry(&mut self, entry: &Entry) {
        if let Some(current) = &mut self.current {
            if current.broken.is_none() {
                current.broken = current.add(entry).err();
            }
        }
    }

    fn content(&mut self, chunk: &[u8]) {
        if let Some(current) = &mut self.current {
            if current.broken.is_none() {
                current.broken = current.encoder.content(chunk).err();
            }
        }
    }

    fn end_entry(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tar::TarWriter;

    /// Writes a tiny store path through a tar writer with the NAR match.
    fn write_and_match(expected: NarDigest, content: &[u8]) -> Result<(), NarMatchError> {
        let mut tar = TarWriter::with_observer(Vec::new(), 1, NarMatch::new());
        tar.observer_mut().begin(
            "/nix/store/x-y".to_owned(),
            PathBuf::from("/host/x-y"),
            b"nix/store/x-y".to_vec(),
            expected,
        );
        tar.append(&Entry::directory("nix/store/x-y", 0o555))
            .unwrap();
        tar.append(&Entry::inline_file(
            "nix/store/x-y/f",
            content.to_vec(),
            0o444,
        ))
        .unwrap();
        tar.observer_mut().end()
    }

    /// The NAR of `{ f: content }`, by the encoder alone.
    fn reference(content: &[u8]) -> NarDigest {
        let mut encoder = NarEncoder::new(NarHasher::new());
        encoder.add(b"", NarNode::Directory).unwrap();
        let node = NarNode::Regular {
            executable: false,
            size: content.len() as u64,
        };
        encoder.add(b"f", node).unwrap();
        encoder.content(content).unwrap();
        let (hash, size) = encoder.finish().unwrap().finish();
        NarDigest {
            hash: NarHash(hash),
            size,
        }
    }

    #[test]
    fn the_written_members_must_be_the_stated_nar() {
        write_and_match(reference(b"good"), b"good").unwrap();
        let err = write_and_match(reference(b"good"), b"evil").unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, NarMatchError::Mismatch { .. }), "{text}");
        assert!(text.contains("/nix/store/x-y"), "{text}");
        assert!(text.contains(&reference(b"good").hash.to_sri()), "{text}");
        assert!(text.contains(&reference(b"evil").hash.to_sri()), "{text}");
        let wrong_size = NarDigest {
            size: reference(b"good").size + 8,
            ..reference(b"good")
        };
        let err = write_and_match(wrong_size, b"good")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("({} bytes)", wrong_size.size)),
            "{err}"
        );
    }
}
