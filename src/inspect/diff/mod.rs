//! `diff`: why two tarballs differ, for builds that are not reproducible.
//!
//! Both archives are read once, in step, as a merge-join on member names:
//! archives that `write` (or GNU tar `--sort=name`) made list each
//! directory's entries in name order, depth first, so comparing names
//! component by component tells which side is behind. Memory stays bounded:
//! neither archive's member table is kept, only the differences found (at
//! most [`MAX_LISTED_MEMBERS`], the rest counted) and, for the current pair
//! of small text files, their content for a unified diff.
//!
//! The report names every member added, removed and changed, inside and
//! outside the store, grouped by store path, with the fields that differ
//! (see [`MemberChange`]); the store paths added, removed and changed (by
//! NAR hash recomputed from the members); and the first difference in
//! archive order. [`Difference::to_text`] caps what it prints and says how
//! much it left out; the JSON has everything kept.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

mod report;

pub use report::{
    store_path_changes_text, Change, ChangedStorePath, Difference, FieldChange, FirstDifference,
    MemberChange, MemberChangeCounts, MemberGroup, MAX_LISTED_MEMBERS,
};

use super::walk::{ArchiveWalk, WalkError, WalkOptions};
use super::{InspectError, JSON_VERSION};
use crate::archive::{
    header_field_at, is_stdin, open_tarball, ArchiveError, Member, MemberKind, TarballReader,
};
use crate::hex;
use crate::progress::{Progress, REPORT_EVERY};
use crate::store::NarHash;

/// Files up to this size on both sides are compared as text when they are
/// text (UTF-8 without NUL bytes).
pub const MAX_TEXT_DIFF_BYTES: u64 = 64 << 10;
/// The most bytes of unified diffs kept in all; later ones are left out.
const MAX_UNIFIED_DIFF_TOTAL: usize = 16 << 20;

/// Which of the two archives an error is in.
enum Side {
    A,
    B,
}

const CHUNK: usize = 64 * 1024;

/// The order GNU tar `--sort=name` and `write` list members in: each
/// directory's entries by name (bytewise), depth first.
fn archive_order(a: &[u8], b: &[u8]) -> Ordering {
    a.split(|&c| c == b'/').cmp(b.split(|&c| c == b'/'))
}

/// The report being gathered.
struct Collector {
    store_dir: String,
    counts: MemberChangeCounts,
    groups: Vec<MemberGroup>,
    group_index: HashMap<Option<String>, usize>,
    listed: usize,
    unified_bytes: usize,
    first: Option<FirstDifference>,
}

impl Collector {
    /// The store path a member belongs to, as an absolute path.
    fn store_path_of(&self, member: &Member) -> Option<String> {
        let prefix = format!("{}/", self.store_dir.trim_start_matches('/'));
        let rest = member.path.strip_prefix(prefix.as_bytes())?;
        let basename = rest.split(|&b| b == b'/').next()?;
        Some(format!(
            "{}/{}",
            self.store_dir,
            String::from_utf8_lossy(basename)
        ))
    }

    fn first(&mut self, member: &Member, field: &str, detail: String) {
        if self.first.is_none() {
            self.first = Some(FirstDifference {
                member: member.display_path(),
                store_path: self.store_path_of(member),
                tar_offset: member.offset,
                field: field.to_owned(),
                detail,
            });
        }
    }

    fn record(&mut self, member: &Member, mut change: MemberChange) {
        match change.change {
            Change::Added => self.counts.added += 1,
            Change::Removed => self.counts.removed += 1,
            Change::Changed => self.counts.changed += 1,
        }
        if self.listed >= MAX_LISTED_MEMBERS {
            self.counts.not_listed += 1;
            return;
        }
        if let Some(diff) = &change.unified_diff {
            if self.unified_bytes + diff.len() > MAX_UNIFIED_DIFF_TOTAL {
                change.unified_diff = None;
                self.counts.unified_diffs_left_out += 1;
            } else {
                self.unified_bytes += diff.len();
            }
        }
        self.listed += 1;
        let key = self.store_path_of(member);
        let index = match self.group_index.get(&key) {
            Some(&index) => index,
            None => {
                self.groups.push(MemberGroup {
                    store_path: key.clone(),
                    change: None,
                    members: Vec::new(),
                });
                self.group_index.insert(key, self.groups.len() - 1);
                self.groups.len() - 1
            }
        };
        self.groups[index].members.push(change);
    }

    /// A member only one side has.
    fn one_sided(&mut self, member: &Member, change: Change) {
        let (field, detail) = match change {
            Change::Removed => ("only in A", "B has no member of that name"),
            _ => ("only in B", "A has no member of that name"),
        };
        self.first(member, field, detail.to_owned());
        self.record(
            member,
            MemberChange {
                member: member.display_path(),
                change,
                kind: member.kind.describe(),
                size: member.size,
                fields: Vec::new(),
                content: None,
                unified_diff: None,
            },
        );
    }
}

/// Compares two tarballs.
pub fn diff(a: &Path, b: &Path) -> Result<Difference, InspectError> {
    diff_with_progress(a, b, &mut ())
}

/// [`diff`], telling `progress` how many bytes of the two files were read.
pub fn diff_with_progress(
    a: &Path,
    b: &Path,
    progress: &mut dyn Progress,
) -> Result<Difference, InspectError> {
    if is_stdin(a) && is_stdin(b) {
        return Err(InspectError::BothStdin);
    }
    let error_a = |error: WalkError| error.in_file(a);
    let error_b = |error: WalkError| error.in_file(b);
    let on_side = |(side, error): (Side, ArchiveError)| match side {
        Side::A => error_a(error.into()),
        Side::B => error_b(error.into()),
    };
    let mut reader_a = open_tarball(a).map_err(|e| error_a(e.into()))?;
    let mut reader_b = open_tarball(b).map_err(|e| error_b(e.into()))?;
    reader_a.hash_tar_stream();
    reader_b.hash_tar_stream();
    // Store paths and streams are compared; no member table, no files.
    let options = WalkOptions {
        track_members: false,
        keep_files: false,
        ..WalkOptions::default()
    };
    let mut walk_a = ArchiveWalk::new(reader_a.compression(), &options);
    let mut walk_b = ArchiveWalk::new(reader_b.compression(), &options);
    let mut collector = Collector {
        store_dir: walk_a.store_dir(),
        counts: MemberChangeCounts::default(),
        groups: Vec::new(),
        group_index: HashMap::new(),
        listed: 0,
        unified_bytes: 0,
        first: None,
    };
    let mut buffer = vec![0u8; CHUNK];
    let mut buffer_b = vec![0u8; CHUNK];
    let mut member_a = reader_a.next_member().map_err(|e| error_a(e.into()))?;
    let mut member_b = reader_b.next_member().map_err(|e| error_b(e.into()))?;
    let mut reported = 0;
    loop {
        let read = reader_a.file_bytes_read() + reader_b.file_bytes_read();
        if read - reported >= REPORT_EVERY {
            reported = read;
            progress.advance(read);
        }
        let order = match (&member_a, &member_b) {
            (None, None) => break,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(ma), Some(mb)) => archive_order(&ma.path, &mb.path),
        };
        match order {
            Ordering::Less => {
                let ma = member_a.take().expect("A has a member");
                collector.one_sided(&ma, Change::Removed);
                walk_a.begin(&ma).map_err(|e| error_a(e.into()))?;
                walk_a
                    .feed_content(&mut reader_a, &ma)
                    .map_err(|e| error_a(e.into()))?;
                walk_a.end_member();
                member_a = reader_a.next_member().map_err(|e| error_a(e.into()))?;
            }
            Ordering::Greater => {
                let mb = member_b.take().expect("B has a member");
                collector.one_sided(&mb, Change::Added);
                walk_b.begin(&mb).map_err(|e| error_b(e.into()))?;
                walk_b
                    .feed_content(&mut reader_b, &mb)
                    .map_err(|e| error_b(e.into()))?;
                walk_b.end_member();
                member_b = reader_b.next_member().map_err(|e| error_b(e.into()))?;
            }
            Ordering::Equal => {
                let ma = member_a.take().expect("A has a member");
                let mb = member_b.take().expect("B has a member");
                walk_a.begin(&ma).map_err(|e| error_a(e.into()))?;
                walk_b.begin(&mb).map_err(|e| error_b(e.into()))?;
                let fields = header_changes(&ma, &mb);
                let content = compare_content(
                    (&mut reader_a, &mut walk_a, &ma),
                    (&mut reader_b, &mut walk_b, &mb),
                    (&mut buffer, &mut buffer_b),
                )
                .map_err(on_side)?;
                walk_a.end_member();
                walk_b.end_member();
                if !fields.is_empty() || content.detail.is_some() {
                    match (fields.first(), &content.detail) {
                        (Some(first), _) => {
                            let detail = fields
                                .iter()
                                .map(|f| format!("{} {} in A, {} in B", f.field, f.a, f.b))
                                .collect::<Vec<_>>()
                                .join("; ");
                            let field = first.field.clone();
                            collector.first(&ma, &field, detail);
                        }
                        (None, Some(detail)) => collector.first(&ma, "content", detail.clone()),
                        (None, None) => {}
                    }
                    collector.record(
                        &ma,
                        MemberChange {
                            member: mb.display_path(),
                            change: Change::Changed,
                            kind: mb.kind.describe(),
                            size: mb.size,
                            fields,
                            content: content.detail,
                            unified_diff: content.unified_diff,
                        },
                    );
                }
                member_a = reader_a.next_member().map_err(|e| error_a(e.into()))?;
                member_b = reader_b.next_member().map_err(|e| error_b(e.into()))?;
            }
        }
    }
    walk_a.finish(&mut reader_a).map_err(error_a)?;
    walk_b.finish(&mut reader_b).map_err(error_b)?;
    progress.advance(walk_a.file_size + walk_b.file_size);
    // Reading stopped at trailing data: the files cannot be compared whole.
    for (walk, path) in [(&walk_a, a), (&walk_b, b)] {
        if let Some(offset) = walk.end.trailing_data {
            return Err(WalkError::from(ArchiveError::TrailingData { offset }).in_file(path));
        }
    }

    let mut added = Vec::new();
    let mut removed = Vec::new();
    let mut changed = Vec::new();
    let mut path_changes: HashMap<String, Change> = HashMap::new();
    for (basename, object) in &walk_a.store_objects {
        match walk_b.store_objects.get(basename) {
            None => {
                path_changes.insert(object.path.clone(), Change::Removed);
                removed.push(object.path.clone())
            }
            Some(other)
                if other.nar_hash != object.nar_hash || other.nar_size != object.nar_size =>
            {
                path_changes.insert(object.path.clone(), Change::Changed);
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
            path_changes.insert(object.path.clone(), Change::Added);
            added.push(object.path.clone());
        }
    }
    let mut groups = collector.groups;
    for group in &mut groups {
        group.change = group
            .store_path
            .as_ref()
            .and_then(|path| path_changes.get(path).copied());
    }
    // Outside the store first, then the store paths in archive order.
    groups.sort_by_key(|group| group.store_path.is_some());
    let tar_identical = walk_a.tar_sha256 == walk_b.tar_sha256 && walk_a.end == walk_b.end;
    let mut first = collector.first;
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
        version: JSON_VERSION,
        a: a.display().to_string(),
        b: b.display().to_string(),
        identical: walk_a.file_sha256 == walk_b.file_sha256 && walk_a.file_size == walk_b.file_size,
        tar_identical,
        compression_a: walk_a.compression.name().to_owned(),
        compression_b: walk_b.compression.name().to_owned(),
        // Not hashed past trailing data: zeros, as before.
        sha256_a: hex::encode(&walk_a.file_sha256.unwrap_or_default()),
        sha256_b: hex::encode(&walk_b.file_sha256.unwrap_or_default()),
        added,
        removed,
        changed,
        members: collector.counts,
        groups,
        first_difference: first,
    })
}

/// The header fields that differ between two members of the same name:
/// the decoded fields, else the first raw header byte that differs (the
/// checksum aside), else the name's spelling.
fn header_changes(a: &Member, b: &Member) -> Vec<FieldChange> {
    // The common case, cheaply: the same header and the same overrides.
    if a.header_block == b.header_block
        && a.raw_name == b.raw_name
        && a.link_target == b.link_target
        && (a.size, a.uid, a.gid, a.mtime) == (b.size, b.uid, b.gid, b.mtime)
    {
        return Vec::new();
    }
    // Quoted but not escaped: the JSON keeps the exact text, the text
    // report escapes it.
    let text = |bytes: &[u8]| format!("\"{}\"", String::from_utf8_lossy(bytes));
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
    let changes: Vec<FieldChange> = fields
        .into_iter()
        .filter(|(_, x, y)| x != y)
        .map(|(field, a, b)| FieldChange {
            field: field.to_owned(),
            a,
            b,
        })
        .collect();
    if !changes.is_empty() {
        return changes;
    }
    let raw_difference = (0..a.header_block.len())
        .filter(|&i| !(148..156).contains(&i))
        .find(|&i| a.header_block[i] != b.header_block[i]);
    if let Some(offset) = raw_difference {
        return vec![FieldChange {
            field: header_field_at(offset).to_owned(),
            a: format!("byte {offset} 0x{:02x}", a.header_block[offset]),
            b: format!("byte {offset} 0x{:02x}", b.header_block[offset]),
        }];
    }
    if a.raw_name != b.raw_name {
        return vec![FieldChange {
            field: "name".to_owned(),
            a: text(&a.raw_name),
            b: text(&b.raw_name),
        }];
    }
    Vec::new()
}

/// How two members' contents compare.
struct ContentComparison {
    detail: Option<String>,
    unified_diff: Option<String>,
}

/// Reads both contents in step, feeding the walks; reports where they
/// part, and a unified diff when both are small text files.
fn compare_content(
    (reader_a, walk_a, a): (&mut TarballReader, &mut ArchiveWalk, &Member),
    (reader_b, walk_b, b): (&mut TarballReader, &mut ArchiveWalk, &Member),
    (chunk_a, chunk_b): (&mut [u8], &mut [u8]),
) -> Result<ContentComparison, (Side, ArchiveError)> {
    let keep_text = a.kind == MemberKind::Regular
        && b.kind == MemberKind::Regular
        && a.size <= MAX_TEXT_DIFF_BYTES
        && b.size <= MAX_TEXT_DIFF_BYTES;
    let (mut text_a, mut text_b) = (Vec::new(), Vec::new());
    let mut position: u64 = 0;
    let mut detail = None;
    loop {
        let n = fill(
            &mut reader_a.content(),
            chunk_a,
            a.content_offset + position,
        )
        .map_err(|e| (Side::A, e))?;
        let m = fill(
            &mut reader_b.content(),
            chunk_b,
            b.content_offset + position,
        )
        .map_err(|e| (Side::B, e))?;
        if n == 0 && m == 0 {
            break;
        }
        walk_a.content(&chunk_a[..n]);
        walk_b.content(&chunk_b[..m]);
        if keep_text {
            text_a.extend_from_slice(&chunk_a[..n]);
            text_b.extend_from_slice(&chunk_b[..m]);
        }
        if detail.is_none() {
            // Chunks are full but for the last: only the last can be short.
            let common = n.min(m);
            // memcmp first; the byte-wise search only where they differ.
            let found = (chunk_a[..common] != chunk_b[..common])
                .then(|| (0..common).find(|&i| chunk_a[i] != chunk_b[i]))
                .flatten();
            if let Some(i) = found {
                detail = Some(format!(
                    "first differing byte at offset {} of {} (0x{:02x} in A, 0x{:02x} in B)",
                    position + i as u64,
                    a.size,
                    chunk_a[i],
                    chunk_b[i]
                ));
            } else if n != m {
                detail = Some(format!(
                    "one is a prefix of the other: they part at offset {} ({} bytes in A, {} in B)",
                    position + common as u64,
                    a.size,
                    b.size
                ));
            }
        }
        position += n.max(m) as u64;
    }
    let unified_diff = match (&detail, keep_text) {
        (Some(_), true) => unified_diff(&text_a, &text_b, &a.display_path()),
        _ => None,
    };
    Ok(ContentComparison {
        detail,
        unified_diff,
    })
}

/// A unified diff of two texts (UTF-8 without NUL bytes), or `None` for
/// binary content.
fn unified_diff(a: &[u8], b: &[u8], name: &str) -> Option<String> {
    let text = |bytes: &[u8]| {
        std::str::from_utf8(bytes)
            .ok()
            .filter(|text| !text.contains('\0'))
            .map(str::to_owned)
    };
    let (a, b) = (text(a)?, text(b)?);
    let diff = similar::TextDiff::from_lines(&a, &b);
    Some(
        diff.unified_diff()
            .context_radius(3)
            .header(&format!("A{name}"), &format!("B{name}"))
            .to_string(),
    )
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

#[cfg(test)]
mod tests {
    use super::archive_order;
    use std::cmp::Ordering;

    #[test]
    fn archive_order_is_depth_first_by_component() {
        // `a/x` comes before `a-b`, though '/' sorts after '-' bytewise.
        assert_eq!(archive_order(b"a/x", b"a-b"), Ordering::Less);
        assert_eq!(archive_order(b"a", b"a/x"), Ordering::Less);
        assert_eq!(archive_order(b"", b"etc"), Ordering::Less);
        assert_eq!(archive_order(b"etc/b", b"etc/a/z"), Ordering::Greater);
        assert_eq!(archive_order(b"nix/store", b"nix/store"), Ordering::Equal);
    }
}
