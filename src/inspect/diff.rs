//! `diff`: why two tarballs differ, for builds that are not reproducible.
//!
//! Both archives are read in lockstep. The report names the store paths
//! added, removed and changed (by NAR hash recomputed from the members), and
//! the first member that differs: its name, the header fields that differ,
//! or the offset of the first differing content byte.

use std::io::Read;
use std::path::Path;

use serde::Serialize;

use super::walk::{ArchiveWalk, WalkError, WalkOptions};
use super::{compression_name, hex, InspectError};
use crate::archive::{
    header_field_at, is_stdin, open_tarball, ArchiveError, Member, TarballReader,
};

/// Which of the two archives an error is in.
enum Side {
    A,
    B,
}
use crate::store::NarHash;

/// A store path in both tarballs with different contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangedStorePath {
    pub path: String,
    pub nar_hash_a: Option<String>,
    pub nar_hash_b: Option<String>,
    pub nar_size_a: u64,
    pub nar_size_b: u64,
}

/// The first member at which the two archives part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FirstDifference {
    /// The member (in A; the one in B for a member only B has).
    pub member: String,
    /// The store path the member belongs to, if any.
    pub store_path: Option<String>,
    /// Offset of the member's header in A's uncompressed tar stream.
    pub tar_offset: u64,
    /// `name`, `only in A`, `only in B`, a header field (`mode`, `uid`,
    /// `size`, `mtime`, `linkname`, `uname`, …), or `content`.
    pub field: String,
    /// Both values, or the offset of the first differing content byte.
    pub detail: String,
}

/// What `diff` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Difference {
    pub a: String,
    pub b: String,
    /// The files are byte for byte the same.
    pub identical: bool,
    /// The uncompressed tar streams are the same.
    pub tar_identical: bool,
    pub compression_a: String,
    pub compression_b: String,
    pub sha256_a: String,
    pub sha256_b: String,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<ChangedStorePath>,
    pub first_difference: Option<FirstDifference>,
}

impl Difference {
    /// The report for people.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "A {} ({}, sha256 {})\n",
            self.a, self.compression_a, self.sha256_a
        ));
        out.push_str(&format!(
            "B {} ({}, sha256 {})\n",
            self.b, self.compression_b, self.sha256_b
        ));
        if self.identical {
            out.push_str("identical\n");
            return out;
        }
        if self.tar_identical {
            out.push_str(
                "the tar streams are identical: only the compression differs (format, level or compressor version)\n",
            );
            return out;
        }
        out.push_str(&format!(
            "store paths: {} added, {} removed, {} changed\n",
            self.added.len(),
            self.removed.len(),
            self.changed.len()
        ));
        for path in &self.added {
            out.push_str(&format!("  + {path}\n"));
        }
        for path in &self.removed {
            out.push_str(&format!("  - {path}\n"));
        }
        for change in &self.changed {
            out.push_str(&format!(
                "  ~ {} (NAR {} -> {}, {} -> {} bytes)\n",
                change.path,
                change.nar_hash_a.as_deref().unwrap_or("?"),
                change.nar_hash_b.as_deref().unwrap_or("?"),
                change.nar_size_a,
                change.nar_size_b
            ));
        }
        if let Some(first) = &self.first_difference {
            out.push_str(&format!(
                "first difference: {} (tar offset {})\n",
                first.member, first.tar_offset
            ));
            if let Some(store_path) = &first.store_path {
                out.push_str(&format!("  in store path {store_path}\n"));
            }
            out.push_str(&format!("  {}: {}\n", first.field, first.detail));
        }
        out
    }
}

const CHUNK: usize = 64 * 1024;

/// Compares two tarballs.
pub fn diff(a: &Path, b: &Path) -> Result<Difference, InspectError> {
    if is_stdin(a) && is_stdin(b) {
        return Err(InspectError::BothStdin);
    }
    let error_a = |error: WalkError| error.in_file(a);
    let error_b = |error: WalkError| error.in_file(b);
    let mut reader_a = open_tarball(a).map_err(|e| error_a(e.into()))?;
    let mut reader_b = open_tarball(b).map_err(|e| error_b(e.into()))?;
    reader_a.hash_tar_stream();
    reader_b.hash_tar_stream();
    // Only store paths and streams are compared: no member table, no files.
    let options = WalkOptions {
        track_members: false,
        keep_files: false,
        ..WalkOptions::default()
    };
    let mut walk_a = ArchiveWalk::new(reader_a.compression(), &options);
    let mut walk_b = ArchiveWalk::new(reader_b.compression(), &options);
    let mut first: Option<FirstDifference> = None;
    let mut buffer = vec![0u8; CHUNK];
    let mut buffer_b = vec![0u8; CHUNK];
    loop {
        let member_a = reader_a.next_member().map_err(|e| error_a(e.into()))?;
        let member_b = reader_b.next_member().map_err(|e| error_b(e.into()))?;
        if member_a.is_none() && member_b.is_none() {
            break;
        }
        if first.is_none() {
            first = compare_headers(&walk_a, member_a.as_ref(), member_b.as_ref());
        }
        match (&member_a, &member_b) {
            (Some(ma), Some(mb)) if first.is_none() => {
                walk_a.begin(ma).map_err(|e| error_a(e.into()))?;
                walk_b.begin(mb).map_err(|e| error_b(e.into()))?;
                let chunks = (&mut buffer[..CHUNK], &mut buffer_b[..]);
                first = compare_content(
                    &mut reader_a,
                    &mut walk_a,
                    &mut reader_b,
                    &mut walk_b,
                    ma,
                    chunks,
                )
                .map_err(|(side, e)| match side {
                    Side::A => error_a(e.into()),
                    Side::B => error_b(e.into()),
                })?;
                walk_a.end_member();
                walk_b.end_member();
            }
            _ => {
                if let Some(ma) = &member_a {
                    walk_a.begin(ma).map_err(|e| error_a(e.into()))?;
                    walk_a
                        .feed_content(&mut reader_a, ma, &mut buffer)
                        .map_err(|e| error_a(e.into()))?;
                    walk_a.end_member();
                }
                if let Some(mb) = &member_b {
                    walk_b.begin(mb).map_err(|e| error_b(e.into()))?;
                    walk_b
                        .feed_content(&mut reader_b, mb, &mut buffer)
                        .map_err(|e| error_b(e.into()))?;
                    walk_b.end_member();
                }
            }
        }
    }
    walk_a.finish(&mut reader_a).map_err(error_a)?;
    walk_b.finish(&mut reader_b).map_err(error_b)?;
    // Reading stopped at trailing data: the files cannot be compared whole.
    for (walk, path) in [(&walk_a, a), (&walk_b, b)] {
        if let Some(offset) = walk.end.trailing_data {
            return Err(WalkError::from(ArchiveError::TrailingData { offset }).in_file(path));
        }
    }

    let mut added = Vec::new();
    let mut removed = Vec::new();
    let mut changed = Vec::new();
    for (basename, object) in &walk_a.store_objects {
        match walk_b.store_objects.get(basename) {
            None => removed.push(object.path.clone()),
            Some(other)
                if other.nar_hash != object.nar_hash || other.nar_size != object.nar_size =>
            {
                changed.push(ChangedStorePath {
                    path: object.path.clone(),
                    nar_hash_a: object.nar_hash.map(|h| NarHash(h).to_sri()),
                    nar_hash_b: other.nar_hash.map(|h| NarHash(h).to_sri()),
                    nar_size_a: object.nar_size,
                    nar_size_b: other.nar_size,
                })
            }
            Some(_) => {}
        }
    }
    for (basename, object) in &walk_b.store_objects {
        if !walk_a.store_objects.contains_key(basename) {
            added.push(object.path.clone());
        }
    }
    let tar_identical = walk_a.tar_sha256 == walk_b.tar_sha256 && walk_a.end == walk_b.end;
    if first.is_none() && !tar_identical {
        first = Some(FirstDifference {
            member: "(end of archive)".to_owned(),
            store_path: None,
            tar_offset: walk_a.end.tar_bytes.min(walk_b.end.tar_bytes),
            field: "end of archive".to_owned(),
            detail: format!(
                "A's tar stream is {} bytes with {} end blocks, B's {} bytes with {}",
                walk_a.end.tar_bytes,
                walk_a.end.zero_blocks,
                walk_b.end.tar_bytes,
                walk_b.end.zero_blocks
            ),
        });
    }
    Ok(Difference {
        a: a.display().to_string(),
        b: b.display().to_string(),
        identical: walk_a.file_sha256 == walk_b.file_sha256 && walk_a.file_size == walk_b.file_size,
        tar_identical,
        compression_a: compression_name(walk_a.compression).to_owned(),
        compression_b: compression_name(walk_b.compression).to_owned(),
        sha256_a: hex(&walk_a.file_sha256),
        sha256_b: hex(&walk_b.file_sha256),
        added,
        removed,
        changed,
        first_difference: first,
    })
}

/// The store path a member belongs to, as an absolute path.
fn store_path_of(walk: &ArchiveWalk, member: &Member) -> Option<String> {
    let store_dir = walk.store_dir();
    let prefix = format!("{}/", store_dir.trim_start_matches('/'));
    let rest = member.path.strip_prefix(prefix.as_bytes())?;
    let basename = rest.split(|&b| b == b'/').next()?;
    Some(format!("{store_dir}/{}", String::from_utf8_lossy(basename)))
}

/// Names and header fields of two members at the same position.
fn compare_headers(
    walk: &ArchiveWalk,
    a: Option<&Member>,
    b: Option<&Member>,
) -> Option<FirstDifference> {
    let difference = |member: &Member, field: &str, detail: String| FirstDifference {
        member: member.display_path(),
        store_path: store_path_of(walk, member),
        tar_offset: member.offset,
        field: field.to_owned(),
        detail,
    };
    let (a, b) = match (a, b) {
        (Some(a), Some(b)) => (a, b),
        (Some(a), None) => {
            return Some(difference(
                a,
                "only in A",
                "B's archive ends before it".into(),
            ))
        }
        (None, Some(b)) => {
            return Some(difference(
                b,
                "only in B",
                "A's archive ends before it".into(),
            ))
        }
        (None, None) => return None,
    };
    // The common case, cheaply: the same header and the same overrides.
    if a.header_block == b.header_block
        && a.raw_name == b.raw_name
        && a.link_target == b.link_target
        && (a.size, a.uid, a.gid, a.mtime) == (b.size, b.uid, b.gid, b.mtime)
    {
        return None;
    }
    if a.path != b.path {
        return Some(difference(
            a,
            "name",
            format!(
                "A has {} where B has {}",
                a.display_path(),
                b.display_path()
            ),
        ));
    }
    let text = |bytes: &[u8]| format!("{:?}", String::from_utf8_lossy(bytes));
    let fields: [(&str, String, String); 9] = [
        ("typeflag", a.kind.describe(), b.kind.describe()),
        ("mode", format!("{:04o}", a.mode), format!("{:04o}", b.mode)),
        ("uid", a.uid.to_string(), b.uid.to_string()),
        ("gid", a.gid.to_string(), b.gid.to_string()),
        ("size", a.size.to_string(), b.size.to_string()),
        ("mtime", a.mtime.to_string(), b.mtime.to_string()),
        ("linkname", text(&a.link_target), text(&b.link_target)),
        ("uname", text(&a.user_name), text(&b.user_name)),
        ("gname", text(&a.group_name), text(&b.group_name)),
    ];
    let differing: Vec<String> = fields
        .iter()
        .filter(|(_, x, y)| x != y)
        .map(|(name, x, y)| format!("{name} {x} in A, {y} in B"))
        .collect();
    if let Some((name, _, _)) = fields.iter().find(|(_, x, y)| x != y) {
        return Some(difference(a, name, differing.join("; ")));
    }
    let raw_difference = (0..a.header_block.len())
        .filter(|&i| !(148..156).contains(&i))
        .find(|&i| a.header_block[i] != b.header_block[i]);
    if let Some(offset) = raw_difference {
        return Some(difference(
            a,
            header_field_at(offset),
            format!(
                "header byte {offset} is 0x{:02x} in A, 0x{:02x} in B",
                a.header_block[offset], b.header_block[offset]
            ),
        ));
    }
    if a.raw_name != b.raw_name {
        return Some(difference(
            a,
            "name",
            format!(
                "spelled {} in A, {} in B",
                text(&a.raw_name),
                text(&b.raw_name)
            ),
        ));
    }
    None
}

/// Reads both contents (same size) in step, feeding the walks, and reports
/// the first differing byte.
fn compare_content(
    reader_a: &mut TarballReader,
    walk_a: &mut ArchiveWalk,
    reader_b: &mut TarballReader,
    walk_b: &mut ArchiveWalk,
    member: &Member,
    (chunk_a, chunk_b): (&mut [u8], &mut [u8]),
) -> Result<Option<FirstDifference>, (Side, ArchiveError)> {
    let mut position: u64 = 0;
    let mut found = None;
    loop {
        let n = fill(
            &mut reader_a.content(),
            chunk_a,
            member.content_offset + position,
        )
        .map_err(|e| (Side::A, e))?;
        let m = fill(
            &mut reader_b.content(),
            &mut chunk_b[..n.max(1)],
            member.content_offset + position,
        )
        .map_err(|e| (Side::B, e))?;
        if n == 0 && m == 0 {
            break;
        }
        walk_a.content(&chunk_a[..n]);
        walk_b.content(&chunk_b[..m]);
        if found.is_none() {
            let common = n.min(m);
            // memcmp first; the byte-wise search only where they differ.
            let differs = chunk_a[..common] != chunk_b[..common];
            if let Some(i) = differs
                .then(|| (0..common).find(|&i| chunk_a[i] != chunk_b[i]))
                .flatten()
            {
                let offset = position + i as u64;
                found = Some(FirstDifference {
                    member: member.display_path(),
                    store_path: store_path_of(walk_a, member),
                    tar_offset: member.offset,
                    field: "content".to_owned(),
                    detail: format!(
                        "first differing byte at offset {offset} of {} (0x{:02x} in A, 0x{:02x} in B)",
                        member.size, chunk_a[i], chunk_b[i]
                    ),
                });
            }
        }
        position += n as u64;
    }
    Ok(found)
}

/// Reads until `buffer` is full or the content ends.
fn fill(content: &mut impl Read, buffer: &mut [u8], offset: u64) -> Result<usize, ArchiveError> {
    let mut filled = 0;
    while filled < buffer.len() {
        match content.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(source) => return Err(ArchiveError::from_content(offset, source)),
        }
    }
    Ok(filled)
}
