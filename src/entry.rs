//! One member of the rootfs, as the plan hands it to the tar writer.
//!
//! Names are raw bytes: files inside store paths may have names that are not
//! UTF-8, and they must reach the archive unchanged.

use std::path::PathBuf;
use std::sync::Arc;

/// Where a regular file's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// A file on the host, read while the archive is written. Its size was
    /// taken when it was walked; a different size at read time is an error.
    Disk(PathBuf),
    /// Bytes made by the tool itself (the Nix database, symlink farms, …).
    Inline(Arc<[u8]>),
}

/// What kind of member an entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    Directory,
    Symlink { target: Vec<u8> },
    File { size: u64, content: Content },
}

/// A member of the rootfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Path below the rootfs root without a leading `/` or `./` and without
    /// a trailing slash; empty for the root itself. `nix/store/…-hello/bin`.
    pub path: Vec<u8>,
    pub kind: EntryKind,
    /// Permission bits (`0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

impl Entry {
    /// A root-owned directory.
    pub fn directory(path: impl Into<Vec<u8>>, mode: u32) -> Self {
        Self::root_owned(path, EntryKind::Directory, mode)
    }

    /// A root-owned symlink (mode 0777, as Linux reports every symlink).
    pub fn symlink(path: impl Into<Vec<u8>>, target: impl Into<Vec<u8>>) -> Self {
        let target = target.into();
        Self::root_owned(path, EntryKind::Symlink { target }, 0o777)
    }

    /// A root-owned file whose bytes the tool made.
    pub fn inline_file(path: impl Into<Vec<u8>>, bytes: impl Into<Arc<[u8]>>, mode: u32) -> Self {
        let bytes: Arc<[u8]> = bytes.into();
        let kind = EntryKind::File {
            size: bytes.len() as u64,
            content: Content::Inline(bytes),
        };
        Self::root_owned(path, kind, mode)
    }

    fn root_owned(path: impl Into<Vec<u8>>, kind: EntryKind, mode: u32) -> Self {
        Entry {
            path: path.into(),
            kind,
            mode,
            uid: 0,
            gid: 0,
        }
    }

    /// The entry's path as `/`-rooted text for messages (lossy for
    /// non-UTF-8), not escaped: what prints a message escapes it
    /// ([`crate::escape`]).
    pub fn display_path(&self) -> String {
        format!("/{}", String::from_utf8_lossy(&self.path))
    }

    pub fn is_directory(&self) -> bool {
        matches!(self.kind, EntryKind::Directory)
    }
}
