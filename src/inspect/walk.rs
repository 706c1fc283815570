//! The one pass over an archive that `inspect`, `verify` and `diff` share.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{self, Read, Write};
use std::path::Path;

use super::verify::Check;
use super::{InspectError, MemberCounts, SkeletonFile, StoreObjects};
use crate::archive::{
    display_path, open_tarball, ArchiveEnd, ArchiveError, Member, MemberKind, TarballReader,
};
use crate::compress::Compression;
use crate::nar::{NarEncoder, NarHasher, NarNode, NarSizer};
use crate::store::StorePath;

/// What the walk computes.
#[derive(Debug, Clone)]
pub struct WalkOptions {
    /// Compute NAR hashes (sizes are always computed).
    pub hash_nar: bool,
    /// The store directory inside the rootfs.
    pub store_dir: String,
    /// Hash the uncompressed tar stream too.
    pub hash_tar_stream: bool,
}

impl Default for WalkOptions {
    fn default() -> Self {
        WalkOptions {
            hash_nar: true,
            store_dir: crate::store::DEFAULT_STORE_DIR.to_owned(),
            hash_tar_stream: false,
        }
    }
}

/// A member's metadata, kept for every member to resolve symlinks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    pub kind: MemberKind,
    pub link_target: Vec<u8>,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
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
    pub nar_size: u64,
    pub members: u64,
    /// Why no NAR could be made of its members.
    pub problem: Option<String>,
}

/// Files whose content the walk keeps (the database and skeleton tables).
const KEPT_FILES: [&[u8]; 6] = [
    b"etc/passwd",
    b"etc/group",
    b"etc/shadow",
    b"nix/var/nix/db/db.sqlite",
    b"nix/var/nix/db/schema",
    b"nix-path-registration",
];
const MAX_KEPT_FILE: u64 = 256 << 20;

enum NarSink {
    Hash(NarHasher),
    Size(NarSizer),
}

impl Write for NarSink {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match self {
            NarSink::Hash(h) => h.write(bytes),
            NarSink::Size(s) => s.write(bytes),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

struct CurrentObject {
    basename: String,
    encoder: Option<NarEncoder<NarSink>>,
    members: u64,
    problem: Option<String>,
}

/// Everything one pass over an archive learned.
pub struct ArchiveWalk {
    options: WalkOptions,
    store_prefix: Vec<u8>,
    pub compression: Compression,
    pub file_size: u64,
    pub file_sha256: [u8; 32],
    pub tar_sha256: Option<[u8; 32]>,
    pub end: ArchiveEnd,
    pub counts: MemberCounts,
    pub content_bytes: u64,
    pub store_objects: StoreObjects,
    /// Every member by path.
    pub nodes: HashMap<Vec<u8>, NodeInfo>,
    /// Contents of [`KEPT_FILES`] that are regular files.
    pub kept_files: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Problems seen member by member, in archive order.
    pub problems: Vec<(Check, String)>,
    gnu_headers: u64,
    ustar_headers: u64,
    current: Option<CurrentObject>,
    kept: Option<(Vec<u8>, Vec<u8>)>,
    finished_objects: HashSet<String>,
}

impl ArchiveWalk {
    pub fn new(compression: Compression, options: &WalkOptions) -> Self {
        let store_prefix = options.store_dir.trim_matches('/').as_bytes().to_vec();
        ArchiveWalk {
            options: options.clone(),
            store_prefix,
            compression,
            file_size: 0,
            file_sha256: [0; 32],
            tar_sha256: None,
            end: ArchiveEnd::default(),
            counts: MemberCounts::default(),
            content_bytes: 0,
            store_objects: BTreeMap::new(),
            nodes: HashMap::new(),
            kept_files: BTreeMap::new(),
            problems: Vec::new(),
            gnu_headers: 0,
            ustar_headers: 0,
            current: None,
            kept: None,
            finished_objects: HashSet::new(),
        }
    }

    /// Opens `path` and walks all of it.
    pub fn run(path: &Path, options: &WalkOptions) -> Result<Self, InspectError> {
        let error = |source| InspectError::Archive {
            path: path.to_path_buf(),
            source,
        };
        let mut reader = open_tarball(path).map_err(error)?;
        if options.hash_tar_stream {
            reader.hash_tar_stream();
        }
        let mut walk = ArchiveWalk::new(reader.compression(), options);
        let mut buffer = vec![0u8; 256 * 1024];
        while let Some(member) = reader.next_member().map_err(error)? {
            walk.begin(&member);
            walk.feed_content(&mut reader, &member, &mut buffer)
                .map_err(error)?;
            walk.end_member();
        }
        walk.finish(&mut reader).map_err(error)?;
        Ok(walk)
    }

    /// Reads the current member's content from `reader` into the walk.
    pub fn feed_content(
        &mut self,
        reader: &mut TarballReader,
        member: &Member,
        buffer: &mut [u8],
    ) -> Result<(), ArchiveError> {
        let mut content = reader.content();
        let mut offset = member.content_offset;
        loop {
            let n = content
                .read(buffer)
                .map_err(|source| ArchiveError::Read { offset, source })?;
            if n == 0 {
                return Ok(());
            }
            offset += n as u64;
            self.content(&buffer[..n]);
        }
    }

    /// A member starts.
    pub fn begin(&mut self, member: &Member) {
        self.counts.entries += 1;
        if member.header_block[257..265] == *b"ustar  \0" {
            self.gnu_headers += 1;
        } else if member.header_block[257..263] == *b"ustar\0" {
            self.ustar_headers += 1;
        }
        match member.kind {
            MemberKind::Directory => self.counts.directories += 1,
            MemberKind::Regular => self.counts.files += 1,
            MemberKind::Symlink => self.counts.symlinks += 1,
            MemberKind::HardLink => self.counts.hard_links += 1,
            _ => self.counts.other += 1,
        }
        self.content_bytes += member.size;
        self.check_structure(member);
        self.nodes.insert(
            member.path.clone(),
            NodeInfo {
                kind: member.kind.clone(),
                link_target: member.link_target.clone(),
                mode: member.mode,
                uid: member.uid,
                gid: member.gid,
                size: member.size,
            },
        );
        if member.kind == MemberKind::Regular
            && member.size <= MAX_KEPT_FILE
            && KEPT_FILES.contains(&member.path.as_slice())
        {
            self.kept = Some((member.path.clone(), Vec::new()));
        }
        self.store_member(member);
    }

    /// The next chunk of the current member's content.
    pub fn content(&mut self, chunk: &[u8]) {
        if let Some((_, bytes)) = &mut self.kept {
            bytes.extend_from_slice(chunk);
        }
        if let Some(current) = &mut self.current {
            if let Some(encoder) = &mut current.encoder {
                if let Err(error) = encoder.content(chunk) {
                    current.problem = Some(error.to_string());
                    current.encoder = None;
                }
            }
        }
    }

    /// The current member is complete.
    pub fn end_member(&mut self) {
        if let Some((path, bytes)) = self.kept.take() {
            self.kept_files.insert(path, bytes);
        }
    }

    /// Ends the walk: closes the last store path and records how the archive
    /// ended and the file's size and digest.
    pub fn finish(&mut self, reader: &mut TarballReader) -> Result<(), ArchiveError> {
        self.close_object();
        self.tar_sha256 = reader.tar_sha256()?;
        self.file_sha256 = reader.file_sha256()?;
        self.file_size = reader.file_size()?;
        self.end = reader.end().unwrap_or_default();
        Ok(())
    }

    fn problem(&mut self, check: Check, message: String) {
        self.problems.push((check, message));
    }

    /// Names, duplicates, parents, hard links, store owners and modes.
    fn check_structure(&mut self, member: &Member) {
        let shown = member.display_path();
        let dotdot = member.path.split(|&b| b == b'/').any(|c| c == b"..");
        if member.raw_name.starts_with(b"/") || dotdot {
            self.problem(
                Check::TarFormat,
                format!(
                    "{shown}: the name {:?} is absolute or has a '..' component",
                    String::from_utf8_lossy(&member.raw_name)
                ),
            );
        }
        if self.nodes.contains_key(&member.path) {
            self.problem(Check::TarFormat, format!("{shown} appears twice"));
        }
        if !member.path.is_empty() {
            let parent = match member.path.iter().rposition(|&b| b == b'/') {
                Some(slash) => &member.path[..slash],
                None => &b""[..],
            };
            let parent_is_directory = self
                .nodes
                .get(parent)
                .is_some_and(|node| node.kind == MemberKind::Directory);
            if !parent_is_directory {
                self.problem(
                    Check::TarFormat,
                    format!(
                        "{shown}: no directory entry for its parent {} before it",
                        display_path(parent)
                    ),
                );
            }
        }
        if member.kind == MemberKind::HardLink {
            self.problem(
                Check::HardLinks,
                format!(
                    "{shown} is a hard link to {} (WSL's importer rejects hard links)",
                    display_path(&crate::archive::normalize_path(&member.link_target))
                ),
            );
        }
        if member.path == self.store_prefix {
            if member.kind != MemberKind::Directory || member.mode != 0o1775 || member.uid != 0 {
                self.problem(
                    Check::Ownership,
                    format!(
                        "{shown}: {} mode {:04o} owner {}:{}, expected a directory with mode 1775 owned by root",
                        member.kind.describe(),
                        member.mode,
                        member.uid,
                        member.gid
                    ),
                );
            }
        } else if self.store_relative(&member.path).is_some() {
            let expected_modes: &[u32] = match member.kind {
                MemberKind::Directory => &[0o555],
                MemberKind::Regular => &[0o444, 0o555],
                _ => &[],
            };
            if member.uid != 0 || member.gid != 0 {
                self.problem(
                    Check::Ownership,
                    format!(
                        "{shown}: owner {}:{}, expected 0:0 (root) inside the store",
                        member.uid, member.gid
                    ),
                );
            }
            if !expected_modes.is_empty() && !expected_modes.contains(&member.mode) {
                let expected: Vec<String> =
                    expected_modes.iter().map(|m| format!("{m:04o}")).collect();
                self.problem(
                    Check::Ownership,
                    format!(
                        "{shown}: {} mode {:04o}, expected {} inside the store",
                        member.kind.describe(),
                        member.mode,
                        expected.join(" or ")
                    ),
                );
            }
        }
    }

    /// `(basename, path below it)` for a member inside the store.
    fn store_relative<'p>(&self, path: &'p [u8]) -> Option<(&'p [u8], &'p [u8])> {
        let rest = path
            .strip_prefix(self.store_prefix.as_slice())?
            .strip_prefix(b"/")?;
        Some(match rest.iter().position(|&b| b == b'/') {
            Some(slash) => (&rest[..slash], &rest[slash + 1..]),
            None => (rest, &b""[..]),
        })
    }

    /// Feeds a member inside the store to its store path's NAR.
    fn store_member(&mut self, member: &Member) {
        let Some((basename, relative)) = self.store_relative(&member.path) else {
            self.close_object();
            return;
        };
        let basename = String::from_utf8_lossy(basename).into_owned();
        let relative = relative.to_vec();
        if self.current.as_ref().map(|c| c.basename.as_str()) != Some(basename.as_str()) {
            self.close_object();
            let mut problem = None;
            if let Err(error) = StorePath::from_basename(&basename) {
                problem = Some(format!("not a store path: {error}"));
            }
            if self.finished_objects.contains(&basename) {
                problem = Some(format!(
                    "its members are not together: {} comes after another store path's",
                    member.display_path()
                ));
            }
            let sink = if self.options.hash_nar {
                NarSink::Hash(NarHasher::new())
            } else {
                NarSink::Size(NarSizer::default())
            };
            self.current = Some(CurrentObject {
                basename,
                encoder: Some(NarEncoder::new(sink)),
                members: 0,
                problem,
            });
        }
        let Some(current) = &mut self.current else {
            return;
        };
        current.members += 1;
        let node = match member.kind {
            MemberKind::Directory => Some(NarNode::Directory),
            MemberKind::Symlink => Some(NarNode::Symlink {
                target: &member.link_target,
            }),
            MemberKind::Regular => Some(NarNode::Regular {
                executable: member.mode & 0o100 != 0,
                size: member.size,
            }),
            _ => None,
        };
        let Some(encoder) = &mut current.encoder else {
            return;
        };
        let result = match node {
            Some(node) => encoder.add(&relative, node).map_err(|e| e.to_string()),
            None => Err(format!(
                "{} is a {}, which has no NAR form (hashing stopped there)",
                member.display_path(),
                member.kind.describe()
            )),
        };
        if let Err(problem) = result {
            current.problem.get_or_insert(problem);
            current.encoder = None;
        }
    }

    fn close_object(&mut self) {
        let Some(mut current) = self.current.take() else {
            return;
        };
        let (nar_hash, nar_size) = match current.encoder.take().map(NarEncoder::finish) {
            Some(Ok(NarSink::Hash(hasher))) => {
                let (hash, size) = hasher.finish();
                (Some(hash), size)
            }
            Some(Ok(NarSink::Size(sizer))) => (None, sizer.size),
            Some(Err(error)) => {
                current.problem.get_or_insert(error.to_string());
                (None, 0)
            }
            None => (None, 0),
        };
        let path = format!(
            "/{}/{}",
            String::from_utf8_lossy(&self.store_prefix),
            current.basename
        );
        if let Some(problem) = &current.problem {
            self.problems
                .push((Check::StoreContents, format!("{path}: {problem}")));
        }
        self.finished_objects.insert(current.basename.clone());
        self.store_objects.insert(
            current.basename,
            StoreObject {
                path,
                nar_hash,
                nar_size,
                members: current.members,
                problem: current.problem,
            },
        );
    }

    /// `gnu`, `ustar`, `mixed` or `empty`.
    pub fn tar_format(&self) -> &'static str {
        match (self.gnu_headers, self.ustar_headers) {
            (0, 0) => "empty",
            (_, 0) => "gnu",
            (0, _) => "ustar",
            _ => "mixed",
        }
    }

    /// The store directory as an absolute path.
    pub fn store_dir(&self) -> String {
        format!("/{}", String::from_utf8_lossy(&self.store_prefix))
    }

    /// `sqlite`, `registration` or `none`.
    pub fn nix_database_kind(&self) -> &'static str {
        if self
            .kept_files
            .contains_key(&b"nix/var/nix/db/db.sqlite"[..])
        {
            "sqlite"
        } else if self.kept_files.contains_key(&b"nix-path-registration"[..]) {
            "registration"
        } else {
            "none"
        }
    }

    /// Follows symlinks inside the rootfs (absolute targets are taken from
    /// the rootfs root, as inside the distribution). Returns the final path
    /// and its member, or `None` if it does not resolve.
    pub fn resolve(&self, path: &[u8]) -> Option<(Vec<u8>, &NodeInfo)> {
        let mut pending: Vec<Vec<u8>> = split_components(path).into_iter().rev().collect();
        let mut resolved: Vec<Vec<u8>> = Vec::new();
        let mut hops = 0;
        while let Some(component) = pending.pop() {
            match component.as_slice() {
                b"." => continue,
                b".." => {
                    resolved.pop();
                    continue;
                }
                _ => resolved.push(component),
            }
            let joined = resolved.join(&b'/');
            let node = self.nodes.get(&joined)?;
            match node.kind {
                MemberKind::Symlink => {
                    hops += 1;
                    if hops > 40 {
                        return None;
                    }
                    resolved.pop();
                    if node.link_target.starts_with(b"/") {
                        resolved.clear();
                    }
                    pending.extend(split_components(&node.link_target).into_iter().rev());
                }
                MemberKind::Directory => {}
                _ if !pending.is_empty() => return None,
                _ => {}
            }
        }
        let joined = resolved.join(&b'/');
        let node = self.nodes.get(&joined)?;
        Some((joined, node))
    }

    /// The store path `/nix/var/nix/profiles/system` leads to.
    pub fn system_path(&self) -> Option<String> {
        let (path, _) = self.resolve(b"nix/var/nix/profiles/system")?;
        let (basename, below) = self.store_relative(&path)?;
        below
            .is_empty()
            .then(|| format!("{}/{}", self.store_dir(), String::from_utf8_lossy(basename)))
    }

    /// A skeleton file's presence and what it resolves to.
    pub fn skeleton_file(&self, path: &str) -> SkeletonFile {
        let relative = path.trim_start_matches('/').as_bytes();
        SkeletonFile {
            path: path.to_owned(),
            present: self.exists(relative),
            resolves_to: self.resolve(relative).map(|(_, node)| node.kind.describe()),
        }
    }

    /// Whether `path` names a member, its parent directories followed
    /// through symlinks as `lstat` does (`/sbin/init` with `/sbin -> /bin`).
    fn exists(&self, path: &[u8]) -> bool {
        if self.nodes.contains_key(path) {
            return true;
        }
        let Some(slash) = path.iter().rposition(|&b| b == b'/') else {
            return false;
        };
        match self.resolve(&path[..slash]) {
            Some((mut parent, node)) if node.kind == MemberKind::Directory => {
                if !parent.is_empty() {
                    parent.push(b'/');
                }
                parent.extend_from_slice(&path[slash + 1..]);
                self.nodes.contains_key(&parent)
            }
            _ => false,
        }
    }
}

fn split_components(path: &[u8]) -> Vec<Vec<u8>> {
    path.split(|&b| b == b'/')
        .filter(|c| !c.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}
