//! One archive member as the reader hands it out, and how the archive ended.

use crate::tar::{MemberKind, BLOCK_SIZE};

/// One archive member, with long names and pax records applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Rootfs path without `./`, a leading `/` or a trailing `/`; empty for
    /// the root. `nix/store/…-hello/bin/hello`.
    pub path: Vec<u8>,
    /// The name exactly as the archive spells it (`./nix/store/`).
    pub raw_name: Vec<u8>,
    /// What the member is, by its type flag.
    pub kind: MemberKind,
    /// Permission bits (`0o7777`).
    pub mode: u32,
    /// Owner's user id.
    pub uid: u64,
    /// Owner's group id.
    pub gid: u64,
    /// Modification time, seconds since the epoch.
    pub mtime: u64,
    /// Bytes of content that follow the header (0 for all but files).
    pub size: u64,
    /// Symlink or hard-link target; empty otherwise.
    pub link_target: Vec<u8>,
    /// Owner's user name (empty in our archives).
    pub user_name: Vec<u8>,
    /// Owner's group name (empty in our archives).
    pub group_name: Vec<u8>,
    /// The member's own header block (after any long-name members).
    pub header_block: [u8; BLOCK_SIZE],
    /// Offset of the member's first header block (long names included) in
    /// the uncompressed tar stream.
    pub offset: u64,
    /// Offset of the content in the uncompressed tar stream.
    pub content_offset: u64,
    /// Extended attribute names from pax `SCHILY.xattr.` records.
    pub xattrs: Vec<Vec<u8>>,
}

impl Member {
    /// The path as `/`-rooted text for messages and JSON (lossy for
    /// non-UTF-8), not escaped: what prints it on a terminal escapes it
    /// ([`crate::escape`]), so JSON keeps the exact name.
    pub fn display_path(&self) -> String {
        display_path(&self.path)
    }
}

/// A rootfs path as `/`-rooted text (lossy for non-UTF-8 bytes), not
/// escaped (see [`Member::display_path`]).
pub fn display_path(path: &[u8]) -> String {
    format!("/{}", String::from_utf8_lossy(path))
}

/// How the archive ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ArchiveEnd {
    /// Zero blocks seen where the archive ended (GNU tar writes two).
    pub zero_blocks: u32,
    /// Where data that is not end-of-archive padding starts after the
    /// end-of-archive blocks: a non-zero byte, or zeros beyond the record
    /// the end blocks are in. Reading stops there.
    pub trailing_data: Option<u64>,
    /// Size of the uncompressed tar stream, end blocks and padding included
    /// (up to the trailing data, if any).
    pub tar_bytes: u64,
}

/// `./nix/store/` → `nix/store`; `./` and `.` → the empty root path.
pub fn normalize_path(name: &[u8]) -> Vec<u8> {
    let mut rest = name;
    loop {
        if let Some(r) = rest.strip_prefix(b"./") {
            rest = r;
        } else if let Some(r) = rest.strip_prefix(b"/") {
            rest = r;
        } else {
            break;
        }
    }
    while let Some(r) = rest.strip_suffix(b"/") {
        rest = r;
    }
    if rest == b"." {
        rest = b"";
    }
    rest.to_vec()
}
