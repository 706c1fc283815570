//! The archive walk: the one pass over an archive that `inspect`, `verify`
//! and `diff` share, on the one reader ([`crate::archive`]) that `check FILE`
//! uses too.
//!
//! Memory is bounded whatever the archive holds: content is streamed (NAR
//! hashes are computed as bytes arrive), members are remembered as hashes
//! of their names in a [`MemberTable`], only small skeleton tables are kept
//! in memory and the Nix database is spilled to an unnamed temporary file,
//! problems are kept up to a limit and counted beyond it, and the number of
//! members, store paths and symlink-target bytes is capped ([`WalkLimit`]).
//!
//! The parts: this file runs the pass and records problems; `structure.rs`
//! checks each member's name, parents, links, owners and modes; `store.rs`
//! feeds store paths to their NARs; `keep.rs` keeps the files and heads
//! `verify` reads; `rootfs.rs` answers questions about the rootfs after the
//! pass.

mod keep;
mod rootfs;
mod store;
mod structure;

use keep::Keeping;
use store::CurrentObject;

use std::collections::BTreeMap;
use std::io::{self, BufRead, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use super::checks::Check;
use super::member_table::{MemberTable, NodeInfo};
use super::{
    InspectError, MemberCounts, NixDatabaseKind, SkeletonFile, StoreObjects, TarFormat, WalkLimit,
};
use crate::archive::{
    display_path, open_tarball, ArchiveEnd, ArchiveError, Member, ReadError, TarballReader,
};
use crate::compress::Compression;
use crate::nar::{NarEncoder, NarHasher, NarNode, NarSizer};
use crate::progress::{Progress, REPORT_EVERY};
use crate::store::{StoreDir, StorePath};
use crate::tar::MemberKind;

/// What the walk computes.
#[derive(Debug, Clone)]
pub struct WalkOptions {
    /// Compute NAR hashes (sizes are always computed).
    pub hash_nar: bool,
    /// The store directory inside the rootfs.
    pub store_dir: StoreDir,
    /// Hash the uncompressed tar stream too.
    pub hash_tar_stream: bool,
    /// Hash the (compressed) file, [`ArchiveWalk::file_sha256`]; `verify`
    /// does without.
    pub hash_file: bool,
    /// Remember every member (as a hash of its name, its kind, mode and
    /// link target) to check names, duplicates and parents and to resolve
    /// symlinks; `diff` does without.
    pub track_members: bool,
    /// Keep the contents of the Nix database and the skeleton tables
    /// (`verify`); the database is spilled to an unnamed temporary file.
    pub keep_files: bool,
}

impl Default for WalkOptions {
    fn default() -> Self {
        WalkOptions {
            hash_nar: true,
            store_dir: StoreDir::default(),
            hash_tar_stream: false,
            hash_file: true,
            track_members: true,
            keep_files: true,
        }
    }
}

/// The most store paths a walk records (a large desktop closure has a few
/// thousand).
pub const MAX_STORE_PATHS: usize = 65_536;
/// Problems kept per check; the rest are counted.
pub const MAX_PROBLEMS_PER_CHECK: usize = 1000;
/// Bytes of problem messages kept in all; the rest are counted.
const MAX_PROBLEM_BYTES: usize = 4 << 20;

/// Owner and mode of the files whose owner `verify` checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    /// Owner's user id.
    pub uid: u64,
    /// Owner's group id.
    pub gid: u64,
    /// Permission bits.
    pub mode: u32,
    /// Content size.
    pub size: u64,
}

/// One store path as found in the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreObject {
    /// Absolute path, `/nix/store/…`.
    pub path: String,
    /// SHA-256 of its NAR, recomputed from the members (when hashing, and
    /// when the members form a NAR).
    pub nar_hash: Option<[u8; 32]>,
    /// Bytes of its NAR.
    pub nar_size: u64,
    /// Its members.
    pub members: u64,
    /// Why no NAR could be made of its members.
    pub problem: Option<String>,
}

/// Small files whose content `verify` reads: the skeleton tables and the
/// database's schema version.
const KEPT_TEXT_FILES: [&[u8]; 4] = [
    b"etc/passwd",
    b"etc/group",
    b"etc/shadow",
    b"nix/var/nix/db/schema",
];
/// The largest skeleton table or schema file read.
pub const MAX_KEPT_TEXT: u64 = 4 << 20;
/// The database files, spilled to an unnamed temporary file.
const DATABASE_FILES: [&[u8]; 2] = [b"nix/var/nix/db/db.sqlite", b"nix-path-registration"];
/// The largest database file read (spilled to disk, not kept in memory).
pub const MAX_DATABASE_BYTES: u64 = 1 << 30;
/// Files whose owner and mode `verify` checks.
const OWNED_FILES: [&[u8]; 4] = [
    b"etc/passwd",
    b"etc/shadow",
    b"etc/wsl.conf",
    b"etc/wsl-distribution.conf",
];
/// Directories whose members' owners, modes and sizes `verify` records
/// (where `wsl-distribution.conf` names its assets), up to
/// [`MAX_OWNED_MEMBERS`] members.
const OWNED_DIRS: [&[u8]; 3] = [b"usr/lib/wsl/", b"usr/libexec/wsl/", b"usr/share/wsl/"];
const MAX_OWNED_MEMBERS: usize = 4096;
/// Names (or store-path name suffixes) of the WSL configuration files kept,
/// wherever they are, since `/etc/wsl.conf` may lead into the store; at most
/// [`MAX_WSL_CONFS`] of them, each up to [`MAX_WSL_CONF`] bytes as WSL reads.
const WSL_CONF_NAMES: [&[u8]; 2] = [b"wsl.conf", b"wsl-distribution.conf"];
const MAX_WSL_CONFS: usize = 16;
pub const MAX_WSL_CONF: u64 = 1 << 20;
/// The first bytes kept of an executable: an ELF header's `e_ident` and
/// `e_machine`, or a script's `#!` line (the kernel reads 256 bytes).
const ELF_HEAD: usize = 20;
const SCRIPT_HEAD: usize = 256;
/// The most executables whose first bytes are kept, and the bytes of
/// `#!` lines kept in all.
const MAX_HEADS: usize = 1 << 18;
const MAX_SCRIPT_HEAD_BYTES: usize = 8 << 20;

/// The content of a file the walk keeps.
#[derive(Debug)]
pub enum KeptFile {
    /// A small file's bytes.
    Bytes(Vec<u8>),
    /// A database file, in an unnamed temporary file (gone when dropped).
    Spilled(std::fs::File),
    /// Larger than the limit: not read.
    TooLarge {
        /// Its size.
        size: u64,
        /// The most kept.
        limit: u64,
    },
}

/// Why a walk stopped: the archive could not be read, or a limit.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveWalkError {
    #[error(transparent)]
    /// The archive could not be read.
    Archive(#[from] ArchiveError),
    #[error(transparent)]
    /// A memory limit was reached.
    Limit(#[from] WalkLimit),
}

impl ArchiveWalkError {
    /// The error with the file's name.
    pub fn in_file(self, path: &Path) -> InspectError {
        match self {
            ArchiveWalkError::Archive(source) => {
                InspectError::Archive(ReadError::new(path, source))
            }
            ArchiveWalkError::Limit(source) => InspectError::Limit {
                file: crate::archive::source_name(path),
                source,
            },
        }
    }
}

/// Everything one pass over an archive learned.
pub struct ArchiveWalk {
    options: WalkOptions,
    store_prefix: Vec<u8>,
    /// The compression found.
    pub compression: Compression,
    /// Size of the file in bytes.
    pub file_size: u64,
    /// SHA-256 of the file (with [`WalkOptions::hash_file`]).
    pub file_sha256: Option<[u8; 32]>,
    /// SHA-256 of the uncompressed tar stream (with [`WalkOptions::hash_tar_stream`]).
    pub tar_sha256: Option<[u8; 32]>,
    /// How the archive ended.
    pub end: ArchiveEnd,
    /// Members by kind.
    pub counts: MemberCounts,
    /// Bytes of regular-file content.
    pub content_bytes: u64,
    /// The store paths found.
    pub store_objects: StoreObjects,
    /// Every member (with [`WalkOptions::track_members`]).
    pub members: MemberTable,
    /// Owner and mode of [`OWNED_FILES`].
    pub owners: BTreeMap<Vec<u8>, Owner>,
    /// Enabled-unit links and extended attributes, for `wsl-format`.
    pub wsl: crate::inspect::wsl_members::WslMembers,
    /// Contents of the kept files that are regular files (with
    /// [`WalkOptions::keep_files`]).
    pub kept_files: BTreeMap<Vec<u8>, KeptFile>,
    /// The first bytes of executable regular files that start like an ELF
    /// or a script, by a keyed hash of the name ([`ArchiveWalk::head`]).
    heads: std::collections::HashMap<u64, Vec<u8>>,
    heads_hasher: std::collections::hash_map::RandomState,
    head_bytes: usize,
    /// Executables whose first bytes were not kept (beyond the limits).
    pub heads_dropped: u64,
    /// The current member's first bytes, while an executable is read.
    head: Option<(u64, Vec<u8>)>,
    wsl_confs: usize,
    /// Problems seen member by member, in archive order (at most
    /// [`MAX_PROBLEMS_PER_CHECK`] per check).
    pub problems: Vec<(Check, String)>,
    /// Problems not kept, by check.
    pub omitted_problems: BTreeMap<Check, u64>,
    problem_bytes: usize,
    problem_counts: BTreeMap<Check, usize>,
    gnu_headers: u64,
    ustar_headers: u64,
    current: Option<CurrentObject>,
    kept: Option<(Vec<u8>, Keeping)>,
    /// Why a kept file could not be written to its temporary file.
    spill_error: Option<super::TemporaryError>,
}

impl ArchiveWalk {
    /// A walk of an archive in `compression`, before its first member.
    pub fn new(compression: Compression, options: &WalkOptions) -> Self {
        let store_prefix = options.store_dir.relative().as_bytes().to_vec();
        ArchiveWalk {
            options: options.clone(),
            store_prefix,
            compression,
            file_size: 0,
            file_sha256: None,
            tar_sha256: None,
            end: ArchiveEnd::default(),
            counts: MemberCounts::default(),
            content_bytes: 0,
            store_objects: BTreeMap::new(),
            members: MemberTable::default(),
            owners: BTreeMap::new(),
            wsl: Default::default(),
            kept_files: BTreeMap::new(),
            heads: Default::default(),
            heads_hasher: Default::default(),
            head_bytes: 0,
            heads_dropped: 0,
            head: None,
            wsl_confs: 0,
            problems: Vec::new(),
            omitted_problems: BTreeMap::new(),
            problem_bytes: 0,
            problem_counts: BTreeMap::new(),
            gnu_headers: 0,
            ustar_headers: 0,
            current: None,
            kept: None,
            spill_error: None,
        }
    }

    /// Opens `path` (`-` for standard input) and walks all of it.
    pub fn run(path: &Path, options: &WalkOptions) -> Result<Self, InspectError> {
        Self::run_with_progress(path, options, &mut ())
    }

    /// [`ArchiveWalk::run`], telling `progress` how many bytes of the file
    /// have been read.
    pub fn run_with_progress(
        path: &Path,
        options: &WalkOptions,
        progress: &mut dyn Progress,
    ) -> Result<Self, InspectError> {
        let error = |source| InspectError::Archive(ReadError::new(path, source));
        let mut reader = open_tarball(path).map_err(error)?;
        Self::run_reader(&mut reader, options, progress).map_err(|e| e.in_file(path))
    }

    /// Walks all of an open tarball.
    pub fn run_reader(
        reader: &mut TarballReader,
        options: &WalkOptions,
        progress: &mut dyn Progress,
    ) -> Result<Self, ArchiveWalkError> {
        let walk = Self::run_reader_unless(reader, options, progress, &AtomicBool::new(false))?;
        Ok(walk.expect("never stopped"))
    }

    /// [`ArchiveWalk::run_reader`], given up between two members once
    /// `stop` is set (`None` then).
    pub(crate) fn run_reader_unless(
        reader: &mut TarballReader,
        options: &WalkOptions,
        progress: &mut dyn Progress,
        stop: &AtomicBool,
    ) -> Result<Option<Self>, ArchiveWalkError> {
        let mut reported = 0;
        if options.hash_tar_stream {
            reader.hash_tar_stream();
        }
        if !options.hash_file {
            reader.skip_file_sha256();
        }
        let mut walk = ArchiveWalk::new(reader.compression(), options);
        while let Some(member) = reader.next_member()? {
            if stop.load(Ordering::Relaxed) {
                return Ok(None);
            }
            walk.begin(&member)?;
            walk.feed_content(reader, &member)?;
            walk.end_member();
            let read = reader.file_bytes_read();
            if read - reported >= REPORT_EVERY {
                reported = read;
                progress.advance(read);
            }
        }
        walk.finish(reader)?;
        progress.advance(walk.file_size);
        Ok(Some(walk))
    }

    /// Reads the current member's content from `reader` into the walk,
    /// in the reader's own buffers (no copy).
    pub fn feed_content(
        &mut self,
        reader: &mut TarballReader,
        member: &Member,
    ) -> Result<(), ArchiveError> {
        let mut content = reader.content();
        let mut offset = member.content_offset;
        loop {
            let chunk = match content.fill_buf() {
                Ok(chunk) => chunk,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ArchiveError::from_content(offset, e)),
            };
            if chunk.is_empty() {
                return Ok(());
            }
            let n = chunk.len();
            self.content(chunk);
            content.consume(n);
            offset += n as u64;
        }
    }

    /// A member starts.
    pub fn begin(&mut self, member: &Member) -> Result<(), WalkLimit> {
        self.counts.entries += 1;
        if crate::tar::layout::has_gnu_magic(&member.header_block) {
            self.gnu_headers += 1;
        } else if crate::tar::layout::has_ustar_magic(&member.header_block) {
            self.ustar_headers += 1;
        }
        match member.kind {
            MemberKind::Directory => self.counts.directories += 1,
            MemberKind::Regular => self.counts.files += 1,
            MemberKind::Symlink => self.counts.symlinks += 1,
            MemberKind::HardLink => self.counts.hard_links += 1,
            _ => self.counts.other += 1,
        }
        self.content_bytes = self.content_bytes.saturating_add(member.size);
        if self.options.track_members {
            self.check_structure(member);
            if !self.members.insert(member)? {
                self.problem(
                    Check::TarFormat,
                    format!("{} appears twice", member.display_path()),
                );
            }
            self.wsl.observe(member);
            let owned_dir = OWNED_DIRS.iter().any(|d| member.path.starts_with(d))
                && self.owners.len() < MAX_OWNED_MEMBERS;
            if OWNED_FILES.contains(&member.path.as_slice()) || owned_dir {
                self.owners.entry(member.path.clone()).or_insert(Owner {
                    uid: member.uid,
                    gid: member.gid,
                    mode: member.mode,
                    size: member.size,
                });
            }
            if member.kind == MemberKind::Regular && member.mode & 0o111 != 0 {
                let key = self.head_key(&member.path);
                self.head = Some((key, Vec::new()));
            }
        }
        if self.options.keep_files
            && member.kind == MemberKind::Regular
            && !self.kept_files.contains_key(&member.path)
        {
            self.start_keeping(member);
        }
        self.store_member(member)
    }

    /// The next chunk of the current member's content.
    pub fn content(&mut self, chunk: &[u8]) {
        self.keep_content(chunk);
        self.store_content(chunk);
    }

    /// Ends the walk: closes the last store path and records how the archive
    /// ended and the file's size and digest (not with trailing data after
    /// the end of the archive, where reading stopped).
    pub fn finish(&mut self, reader: &mut TarballReader) -> Result<(), ArchiveWalkError> {
        self.close_object();
        // Reads to the end of the archive, if the caller stopped early.
        while reader.next_member()?.is_some() {}
        self.end = reader.end().unwrap_or_default();
        if self.end.trailing_data.is_some() {
            self.file_size = reader.file_bytes_read();
            return Ok(());
        }
        self.tar_sha256 = reader.tar_sha256()?;
        self.file_sha256 = reader.file_sha256()?;
        self.file_size = reader.file_size()?;
        Ok(())
    }

    /// Records a problem, or only counts it beyond the limits.
    fn problem(&mut self, check: Check, message: String) {
        let kept = self.problem_counts.entry(check).or_default();
        if *kept >= MAX_PROBLEMS_PER_CHECK || self.problem_bytes + message.len() > MAX_PROBLEM_BYTES
        {
            *self.omitted_problems.entry(check).or_default() += 1;
            return;
        }
        *kept += 1;
        self.problem_bytes += message.len();
        self.problems.push((check, message));
    }
}
