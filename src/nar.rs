//! NAR serialisation (Nix ARchive), streamed from a walk in name order.
//!
//! A store object's NAR hash is the SHA-256 of its NAR: the string
//! `nix-archive-1`, then the root node. Every string is a little-endian u64
//! length, the bytes, and zero padding to a multiple of 8. Nodes are
//!
//! ```text
//! ( type regular [executable ""] contents <bytes> )
//! ( type symlink target <target> )
//! ( type directory { entry ( name <name> node <node> ) }* )
//! ```
//!
//! with directory entries sorted byte-wise by name. [`NarEncoder`] takes the
//! nodes of one store object in that order (the order of a tar archive
//! written with `--sort=name`), with file contents streamed in chunks, and
//! writes the NAR to any [`Write`]; [`NarHasher`] is the sink that hashes
//! and counts it. [`dump_host_path`] serialises a store object straight from
//! the host's store (what `nix-store --dump` does), walking it with
//! [`crate::walk`] and showing every member to a [`ContentObserver`].

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::entry::{Content, Entry, EntryKind};
use crate::tar::ContentObserver;
use crate::walk::{walk_tree, TreeWalkError};

/// One node of a NAR, as a tar member describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NarNode<'a> {
    Directory,
    Symlink {
        target: &'a [u8],
    },
    /// A regular file of `size` bytes; `executable` when the owner may
    /// execute it (Nix looks at `S_IXUSR` only).
    Regular {
        executable: bool,
        size: u64,
    },
}

impl<'a> NarNode<'a> {
    /// The node a rootfs entry is in a NAR: its kind, and for a file the
    /// owner's execute bit and the size.
    pub fn of_entry(entry: &'a Entry) -> Self {
        match &entry.kind {
            EntryKind::Directory => NarNode::Directory,
            EntryKind::Symlink { target } => NarNode::Symlink { target },
            EntryKind::File { size, .. } => NarNode::Regular {
                executable: entry.mode & 0o100 != 0,
                size: *size,
            },
        }
    }
}

/// Why the nodes given do not form a NAR.
#[derive(Debug, thiserror::Error)]
pub enum NarError {
    #[error("\"{path}\" comes before its parent directory (or after it was closed)")]
    MissingParent { path: String },
    #[error("\"{path}\" is out of name order or duplicated: the walk must be sorted by name")]
    OutOfOrder { path: String },
    #[error("\"{path}\" is below the root, which is not a directory")]
    RootNotDirectory { path: String },
    #[error("\"{path}\": a name may not be empty, '.', '..' or contain '/' or NUL")]
    BadName { path: String },
    #[error("the content of \"{path}\" is {actual} bytes, not the {expected} announced")]
    ContentSize {
        path: String,
        expected: u64,
        actual: u64,
    },
    #[error("no root node was given")]
    Empty,
    #[error("writing the NAR: {0}")]
    Write(#[from] io::Error),
}

/// Why a store object on the host could not be serialised.
#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    #[error(transparent)]
    Walk(#[from] TreeWalkError),
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("{}: {source}", path.display())]
    Nar { path: PathBuf, source: NarError },
}

const DUMP_CHUNK: usize = 256 * 1024;

/// Writes the NAR of `source` (a store object on the host) into `out`.
/// `observer` sees every member as it would go into a tarball, named
/// `archive_path` and below (`nix/store/…-hello/bin/hello`), and every
/// content byte, in the same pass.
pub fn dump_host_path<W: Write + ?Sized>(
    source: &Path,
    archive_path: &[u8],
    out: &mut W,
    observer: &mut impl ContentObserver,
) -> Result<(), DumpError> {
    let entries = walk_tree(source, archive_path)?;
    let mut encoder = NarEncoder::new(out);
    let mut buffer = vec![0u8; DUMP_CHUNK];
    for entry in &entries {
        let relative = entry
            .path
            .strip_prefix(archive_path)
            .map(|rest| rest.strip_prefix(b"/").unwrap_or(rest))
            .unwrap_or(&entry.path);
        let nar_error = |error| DumpError::Nar {
            path: source.join(std::ffi::OsStr::from_bytes(relative)),
            source: error,
        };
        let node = NarNode::of_entry(entry);
        observer.begin_entry(entry);
        encoder.add(relative, node).map_err(nar_error)?;
        if let EntryKind::File { content, .. } = &entry.kind {
            match content {
                Content::Disk(path) => {
                    let read_error = |source| DumpError::Read {
                        path: path.clone(),
                        source,
                    };
                    let mut file = File::open(path).map_err(read_error)?;
                    loop {
                        let n = match file.read(&mut buffer) {
                            Ok(0) => break,
                            Ok(n) => n,
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                            Err(e) => return Err(read_error(e)),
                        };
                        observer.content(&buffer[..n]);
                        encoder.content(&buffer[..n]).map_err(nar_error)?;
                    }
                }
                Content::Inline(bytes) => {
                    observer.content(bytes);
                    encoder.content(bytes).map_err(nar_error)?;
                }
            }
        }
        observer.end_entry();
    }
    encoder.finish().map_err(|error| DumpError::Nar {
        path: source.to_path_buf(),
        source: error,
    })?;
    Ok(())
}

/// An open directory: its path components and the last entry written in it.
struct OpenDirectory {
    components: Vec<Vec<u8>>,
    last_entry: Option<Vec<u8>>,
}

/// The regular file whose content is being written.
struct OpenFile {
    path: String,
    expected: u64,
    written: u64,
    /// Whether closing it also closes an `entry (` (not for a root file).
    in_directory: bool,
}

/// Writes one store object as a NAR from nodes given in name order.
pub struct NarEncoder<W: Write> {
    out: W,
    directories: Vec<OpenDirectory>,
    open_file: Option<OpenFile>,
    root_written: bool,
}

impl<W: Write> NarEncoder<W> {
    pub fn new(out: W) -> Self {
        NarEncoder {
            out,
            directories: Vec::new(),
            open_file: None,
            root_written: false,
        }
    }

    /// Adds the node at `path`, relative to the store object's root and
    /// `/`-separated (empty for the root itself). Parents must come before
    /// children and siblings in byte-wise name order.
    pub fn add(&mut self, path: &[u8], node: NarNode<'_>) -> Result<(), NarError> {
        self.close_file()?;
        let display = || String::from_utf8_lossy(path).into_owned();
        if !self.root_written {
            if !path.is_empty() {
                return Err(NarError::MissingParent { path: display() });
            }
            self.write_str(b"nix-archive-1")?;
            self.root_written = true;
            return self.open_node(Vec::new(), node, false, display());
        }
        if path.is_empty() {
            return Err(NarError::OutOfOrder { path: display() });
        }
        if self.directories.is_empty() {
            return Err(NarError::RootNotDirectory { path: display() });
        }
        let components: Vec<Vec<u8>> = path.split(|&b| b == b'/').map(<[u8]>::to_vec).collect();
        if components
            .iter()
            .any(|c| c.is_empty() || c == b"." || c == b".." || c.contains(&0))
        {
            return Err(NarError::BadName { path: display() });
        }
        let (name, parent) = components
            .split_last()
            .ok_or_else(|| NarError::BadName { path: display() })?;
        // Close directories until the innermost open one is the parent.
        while let Some(top) = self.directories.last() {
            if parent.starts_with(&top.components) {
                break;
            }
            self.close_directory()?;
        }
        let top = self
            .directories
            .last_mut()
            .ok_or_else(|| NarError::MissingParent { path: display() })?;
        if top.components.as_slice() != parent {
            return Err(NarError::MissingParent { path: display() });
        }
        if top
            .last_entry
            .as_deref()
            .is_some_and(|last| last >= name.as_slice())
        {
            return Err(NarError::OutOfOrder { path: display() });
        }
        top.last_entry = Some(name.clone());
        self.write_str(b"entry")?;
        self.write_str(b"(")?;
        self.write_str(b"name")?;
        self.write_str(name)?;
        self.write_str(b"node")?;
        self.open_node(components, node, true, display())
    }

    fn open_node(
        &mut self,
        components: Vec<Vec<u8>>,
        node: NarNode<'_>,
        in_directory: bool,
        path: String,
    ) -> Result<(), NarError> {
        self.write_str(b"(")?;
        self.write_str(b"type")?;
        match node {
            NarNode::Directory => {
                self.write_str(b"directory")?;
                self.directories.push(OpenDirectory {
                    components,
                    last_entry: None,
                });
            }
            NarNode::Symlink { target } => {
                self.write_str(b"symlink")?;
                self.write_str(b"target")?;
                self.write_str(target)?;
                self.write_str(b")")?;
                if in_directory {
                    self.write_str(b")")?;
                }
            }
            NarNode::Regular { executable, size } => {
                self.write_str(b"regular")?;
                if executable {
                    self.write_str(b"executable")?;
                    self.write_str(b"")?;
                }
                self.write_str(b"contents")?;
                self.out.write_all(&size.to_le_bytes())?;
                self.open_file = Some(OpenFile {
                    path,
                    expected: size,
                    written: 0,
                    in_directory,
                });
            }
        }
        Ok(())
    }

    /// The next chunk of the current regular file's content.
    pub fn content(&mut self, chunk: &[u8]) -> Result<(), NarError> {
        if let Some(file) = &mut self.open_file {
            file.written += chunk.len() as u64;
        }
        self.out.write_all(chunk)?;
        Ok(())
    }

    fn close_file(&mut self) -> Result<(), NarError> {
        if let Some(file) = self.open_file.take() {
            if file.written != file.expected {
                return Err(NarError::ContentSize {
                    path: file.path,
                    expected: file.expected,
                    actual: file.written,
                });
            }
            self.write_padding(file.expected)?;
            self.write_str(b")")?;
            if file.in_directory {
                self.write_str(b")")?;
            }
        }
        Ok(())
    }

    fn close_directory(&mut self) -> Result<(), NarError> {
        if let Some(directory) = self.directories.pop() {
            self.write_str(b")")?;
            if !directory.components.is_empty() {
                self.write_str(b")")?;
            }
        }
        Ok(())
    }

    /// Closes every open node and hands back the sink.
    pub fn finish(mut self) -> Result<W, NarError> {
        if !self.root_written {
            return Err(NarError::Empty);
        }
        self.close_file()?;
        while !self.directories.is_empty() {
            self.close_directory()?;
        }
        Ok(self.out)
    }

    fn write_str(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(&(bytes.len() as u64).to_le_bytes())?;
        self.out.write_all(bytes)?;
        self.write_padding(bytes.len() as u64)
    }

    fn write_padding(&mut self, len: u64) -> io::Result<()> {
        let padding = ((8 - len % 8) % 8) as usize;
        self.out.write_all(&[0u8; 8][..padding])
    }
}

/// A sink that computes a NAR's SHA-256 and size.
#[derive(Default, Clone)]
pub struct NarHasher {
    sha256: Sha256,
    size: u64,
}

impl NarHasher {
    pub fn new() -> Self {
        Self::default()
    }

    /// The NAR's SHA-256 and size in bytes.
    pub fn finish(self) -> ([u8; 32], u64) {
        (self.sha256.finalize().into(), self.size)
    }
}

impl Write for NarHasher {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.sha256.update(bytes);
        self.size += bytes.len() as u64;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A sink that only counts a NAR's bytes (its `narSize`).
#[derive(Default, Clone, Copy)]
pub struct NarSizer {
    pub size: u64,
}

impl Write for NarSizer {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.size += bytes.len() as u64;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nar_str(out: &mut Vec<u8>, s: &[u8]) {
        out.extend_from_slice(&(s.len() as u64).to_le_bytes());
        out.extend_from_slice(s);
        out.resize(out.len().div_ceil(8) * 8, 0);
    }

    #[test]
    fn a_single_file_matches_the_spec() {
        let mut encoder = NarEncoder::new(Vec::new());
        encoder
            .add(
                b"",
                NarNode::Regular {
                    executable: true,
                    size: 3,
                },
            )
            .unwrap();
        encoder.content(b"hi\n").unwrap();
        let nar = encoder.finish().unwrap();
        let mut expected = Vec::new();
        for s in [
            &b"nix-archive-1"[..],
            b"(",
            b"type",
            b"regular",
            b"executable",
            b"",
            b"contents",
            b"hi\n",
            b")",
        ] {
            nar_str(&mut expected, s);
        }
        assert_eq!(nar, expected);
    }

    #[test]
    fn a_tree_closes_directories_when_the_walk_leaves_them() {
        let mut encoder = NarEncoder::new(Vec::new());
        encoder.add(b"", NarNode::Directory).unwrap();
        encoder.add(b"a", NarNode::Directory).unwrap();
        encoder
            .add(b"a/l", NarNode::Symlink { target: b"../b" })
            .unwrap();
        encoder
            .add(
                b"b",
                NarNode::Regular {
                    executable: false,
                    size: 0,
                },
            )
            .unwrap();
        let nar = encoder.finish().unwrap();
        let mut expected = Vec::new();
        for s in [
            &b"nix-archive-1"[..],
            b"(",
            b"type",
            b"directory",
            b"entry",
            b"(",
            b"name",
            b"a",
            b"node",
            b"(",
            b"type",
            b"directory",
            b"entry",
            b"(",
            b"name",
            b"l",
            b"node",
            b"(",
            b"type",
            b"symlink",
            b"target",
            b"../b",
            b")",
            b")",
            b")",
            b")",
            b"entry",
            b"(",
            b"name",
            b"b",
            b"node",
            b"(",
            b"type",
            b"regular",
            b"contents",
            b"",
            b")",
            b")",
            b")",
        ] {
            nar_str(&mut expected, s);
        }
        assert_eq!(nar, expected);
    }

    #[test]
    fn out_of_order_and_orphans_are_errors() {
        let mut encoder = NarEncoder::new(NarSizer::default());
        encoder.add(b"", NarNode::Directory).unwrap();
        encoder.add(b"b", NarNode::Directory).unwrap();
        assert!(matches!(
            encoder.add(b"a", NarNode::Directory),
            Err(NarError::OutOfOrder { .. })
        ));
        let mut encoder = NarEncoder::new(NarSizer::default());
        encoder.add(b"", NarNode::Directory).unwrap();
        assert!(matches!(
            encoder.add(b"x/y", NarNode::Directory),
            Err(NarError::MissingParent { .. })
        ));
    }

    #[test]
    fn short_content_is_an_error() {
        let mut encoder = NarEncoder::new(NarSizer::default());
        encoder
            .add(
                b"",
                NarNode::Regular {
                    executable: false,
                    size: 5,
                },
            )
            .unwrap();
        encoder.content(b"abc").unwrap();
        assert!(matches!(
            encoder.finish(),
            Err(NarError::ContentSize { .. })
        ));
    }
}
