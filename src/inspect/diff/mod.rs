//! `diff`: what changed between two tarballs — two releases, or two builds
//! that should have been the same.
//!
//! Each archive is read on its own thread ([`side`]); this thread merges
//! the two member streams on member names: archives that `write` (or GNU
//! tar `--sort=name`) made list each directory's entries in name order,
//! depth first, so comparing names component by component tells which side
//! is behind. Members of the same name are compared header by header and
//! byte by byte. Members only one side has inside a store path are kept
//! (bounded, see [`pairing`]) until both sides are read; then store paths
//! only A has are paired with those only B has by name without the hash
//! and their members compared below the store path. Memory stays bounded:
//! neither archive's member table is kept, only the differences found (at
//! most [`MAX_LISTED_MEMBERS`], the rest counted), the kept members of
//! unmatched store paths, and small text files' contents for unified diffs.
//!
//! The report leads with the packages paired (new versions, rebuilt with
//! the same version), added and removed; it names every member added,
//! removed and changed, grouped by store path (pair), with the fields that
//! differ (see [`MemberChange`]), labels symlinks whose targets moved only
//! with a store hash, and gives the first difference in archive order.
//! [`Difference::to_text`] caps what it prints and says how much it left
//! out; the JSON has everything kept.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::AtomicBool;

mod compare;
mod pairing;
mod report;
mod side;

pub use report::{
    store_path_changes_text, Change, ChangedStorePath, Difference, FieldChange, FirstDifference,
    MemberChange, MemberChangeCounts, MemberGroup, StorePathPair, MAX_LISTED_MEMBERS,
};

use compare::{
    changed_fields, compare_content, compare_streams, header_changes, ContentComparison, Side,
};
use pairing::{Entry, Pending};
use side::{Content, SideStream};

use super::walk::{ArchiveWalk, ArchiveWalkError, WalkOptions};
use super::{InspectError, JSON_VERSION};
use crate::archive::{is_stdin, open_tarball, ArchiveError, Member};
use crate::hex;
use crate::progress::{Progress, REPORT_EVERY};
use crate::store::{NarHash, StoreDir};
use crate::tar::MemberKind;

/// Files up to this size on both sides are compared as text when they are
/// text (UTF-8 without NUL bytes).
pub const MAX_TEXT_DIFF_BYTES: u64 = 64 << 10;
/// The most bytes of unified diffs kept in all; later ones are left out.
const MAX_UNIFIED_DIFF_TOTAL: usize = 16 << 20;

/// The order GNU tar `--sort=name` and `write` list members in: each
/// directory's entries by name (bytewise), depth first.
fn archive_order(a: &[u8], b: &[u8]) -> Ordering {
    a.split(|&c| c == b'/').cmp(b.split(|&c| c == b'/'))
}

/// The report being gathered.
struct Collector {
    store_dir: StoreDir,
    counts: MemberChangeCounts,
    groups: Vec<MemberGroup>,
    group_index: HashMap<Option<String>, usize>,
    listed: usize,
    unified_bytes: usize,
    first: Option<FirstDifference>,
    /// Basenames of store paths both sides have whose NAR contents differ
    /// (a member added, removed, or changed in type, executable bit, size,
    /// link target or content).
    nar_differs: HashSet<String>,
    /// Two members of the same name start at different offsets.
    layout_differs: bool,
}

impl Collector {
    /// The basename of the store path a member belongs to, and where the
    /// path below it starts.
    fn store_basename(&self, path: &[u8]) -> Option<(String, usize)> {
        let prefix = format!("{}/", self.store_dir.relative());
        let rest = path.strip_prefix(prefix.as_bytes())?;
        let basename = rest.split(|&b| b == b'/').next()?;
        let below = (prefix.len() + basename.len() + 1).min(path.len());
        Some((String::from_utf8_lossy(basename).into_owned(), below))
    }

    /// The store path a member belongs to, as an absolute path.
    fn store_path_of(&self, path: &[u8]) -> Option<String> {
        let (basename, _) = self.store_basename(path)?;
        Some(format!("{}/{basename}", self.store_dir))
    }

    fn first(&mut self, member: &Member, field: &str, detail: String) {
        if self.first.is_none() {
            self.first = Some(FirstDifference {
                member: member.display_path(),
                store_path: self.store_path_of(&member.path),
                tar_offset: member.offset,
                field: field.to_owned(),
                detail,
            });
        }
    }

    /// The group of a store path (`None`: outside the store).
    fn group(&mut self, key: Option<String>) -> &mut MemberGroup {
        let index = match self.group_index.get(&key) {
            Some(&index) => index,
            None => {
                self.groups.push(MemberGroup {
                    store_path: key.clone(),
                    change: None,
                    paired_with: None,
                    etc_path: None,
                    etc_below: String::new(),
                    members: Vec::new(),
                });
                self.group_index.insert(key, self.groups.len() - 1);
                self.groups.len() - 1
            }
        };
        &mut self.groups[index]
    }

    fn record(&mut self, key: Option<String>, mut change: MemberChange) {
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
        self.group(key).members.push(change);
    }

    /// A member only one side has, in store path group `key`.
    fn one_sided(&mut self, key: Option<String>, entry: &Entry, change: Change) {
        self.record(
            key,
            MemberChange {
                member: entry.display_path(),
                change,
                kind: entry.kind.describe(),
                size: entry.size,
                fields: Vec::new(),
                content: None,
                unified_diff: None,
                link_target: link_target(&entry.kind, &entry.link_target),
                store_hash_only: false,
                targets: None,
            },
        );
    }
}

/// A symlink's target as text (lossy, not escaped).
fn link_target(kind: &MemberKind, target: &[u8]) -> Option<String> {
    (*kind == MemberKind::Symlink).then(|| String::from_utf8_lossy(target).into_owned())
}

/// Compares two tarballs.
pub fn diff(a: &Path, b: &Path) -> Result<Difference, InspectError> {
    diff_with_progress(a, b, &mut ())
}

/// [`diff`], telling `progress` how many bytes of the two files were read.
/// Each file is read on its own thread.
pub fn diff_with_progress(
    a: &Path,
    b: &Path,
    progress: &mut dyn Progress,
) -> Result<Difference, InspectError> {
    if is_stdin(a) && is_stdin(b) {
        return Err(InspectError::BothStdin);
    }
    let mut reader_a = open_tarball(a).map_err(|e| ArchiveWalkError::from(e).in_file(a))?;
    let reader_b = open_tarball(b).map_err(|e| ArchiveWalkError::from(e).in_file(b))?;
    // Members are compared byte for byte, so no NAR hashes and no digest
    // of the tar stream (which cost as much as inflating); no member
    // table, no files.
    let options = WalkOptions {
        hash_nar: false,
        track_members: false,
        keep_files: false,
        ..WalkOptions::default()
    };
    let store_dir = ArchiveWalk::new(reader_a.compression(), &options)
        .store_dir()
        .clone();
    // Two files with the same bytes are identical at once: one of them is
    // walked (a tarball that cannot be read is trouble, as ever) while this
    // thread's helper compares the two byte for byte. A difference stops
    // the walk, and the two are compared member by member from the start.
    if !is_stdin(a) && !is_stdin(b) && compare::same_size(a, b) {
        let differ = AtomicBool::new(false);
        let (same, walk) = std::thread::scope(|scope| {
            let same = scope.spawn(|| {
                let same = compare::same_bytes(a, b);
                if !matches!(same, Ok(true)) {
                    differ.store(true, std::sync::atomic::Ordering::Relaxed);
                }
                same
            });
            let walk = ArchiveWalk::run_reader_unless(&mut reader_a, &options, progress, &differ);
            let same = same
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (same, walk)
        });
        if same? {
            let walk = walk
                .map_err(|e| e.in_file(a))?
                .expect("a walk stops only at a difference");
            if let Some(offset) = walk.end.trailing_data {
                return Err(
                    ArchiveWalkError::from(ArchiveError::TrailingData { offset }).in_file(a),
                );
            }
            progress.advance(2 * walk.file_size);
            let sha256 = hex::encode(&walk.file_sha256.unwrap_or_default());
            let compression = walk.compression.name().to_owned();
            return Ok(Difference {
                version: JSON_VERSION,
                a: a.display().to_string(),
                b: b.display().to_string(),
                identical: true,
                tar_identical: true,
                compression_a: compression.clone(),
                compression_b: compression,
                sha256_a: sha256.clone(),
                sha256_b: sha256,
                added: Vec::new(),
                removed: Vec::new(),
                changed: Vec::new(),
                pairs: Vec::new(),
                members: MemberChangeCounts::default(),
                groups: Vec::new(),
                first_difference: None,
            });
        }
        reader_a = open_tarball(a).map_err(|e| ArchiveWalkError::from(e).in_file(a))?;
    }
    std::thread::scope(|scope| {
        let (body_a, side_a) = side::side(reader_a, options.clone());
        let (body_b, side_b) = side::side(reader_b, options.clone());
        scope.spawn(body_a);
        scope.spawn(body_b);
        compare((a, side_a), (b, side_b), store_dir, progress)
    })
}

/// The merge-join of the two sides' members by name, then the pairing.
fn compare(
    (a, mut side_a): (&Path, SideStream),
    (b, mut side_b): (&Path, SideStream),
    store_dir: StoreDir,
    progress: &mut dyn Progress,
) -> Result<Difference, InspectError> {
    let error_a = |error: ArchiveWalkError| error.in_file(a);
    let error_b = |error: ArchiveWalkError| error.in_file(b);
    let mut collector = Collector {
        store_dir,
        counts: MemberChangeCounts::default(),
        groups: Vec::new(),
        group_index: HashMap::new(),
        listed: 0,
        unified_bytes: 0,
        first: None,
        nar_differs: HashSet::new(),
        layout_differs: false,
    };
    // Members only one side has: kept by store path for pairing, or
    // outside the store recorded at once.
    let (mut pending_a, mut pending_b) = (Pending::default(), Pending::default());
    let mut member_a = side_a.next_member().map_err(error_a)?;
    let mut member_b = side_b.next_member().map_err(error_b)?;
    let mut reported = 0;
    loop {
        let read = side_a.bytes() + side_b.bytes();
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
                collector.first(&ma, "only in A", "B has no member of that name".to_owned());
                one_sided(
                    &mut collector,
                    (&mut side_a, &mut pending_a),
                    ma,
                    Change::Removed,
                )
                .map_err(error_a)?;
                member_a = side_a.next_member().map_err(error_a)?;
            }
            Ordering::Greater => {
                let mb = member_b.take().expect("B has a member");
                collector.first(&mb, "only in B", "A has no member of that name".to_owned());
                one_sided(
                    &mut collector,
                    (&mut side_b, &mut pending_b),
                    mb,
                    Change::Added,
                )
                .map_err(error_b)?;
                member_b = side_b.next_member().map_err(error_b)?;
            }
            Ordering::Equal => {
                let ma = member_a.take().expect("A has a member");
                let mb = member_b.take().expect("B has a member");
                let content = compare_streams((&mut side_a, &ma), (&mut side_b, &mb)).map_err(
                    |(side, error)| match side {
                        Side::A => error_a(error),
                        Side::B => error_b(error),
                    },
                )?;
                same_name(&mut collector, &ma, &mb, content);
                member_a = side_a.next_member().map_err(error_a)?;
                member_b = side_b.next_member().map_err(error_b)?;
            }
        }
    }
    let walk_a = side_a.into_walk();
    let walk_b = side_b.into_walk();
    progress.advance(walk_a.file_size + walk_b.file_size);
    // Reading stopped at trailing data: the files cannot be compared whole.
    for (walk, path) in [(&walk_a, a), (&walk_b, b)] {
        if let Some(offset) = walk.end.trailing_data {
            return Err(
                ArchiveWalkError::from(ArchiveError::TrailingData { offset }).in_file(path),
            );
        }
    }

    let mut added = Vec::new();
    let mut removed = Vec::new();
    let mut changed = Vec::new();
    let mut path_changes: HashMap<String, Change> = HashMap::new();
    let (mut only_a, mut only_b) = (Vec::new(), Vec::new());
    for (basename, object) in &walk_a.store_objects {
        match walk_b.store_objects.get(basename) {
            None => {
                path_changes.insert(object.path.clone(), Change::Removed);
                removed.push(object.path.clone());
                only_a.push((basename, object));
            }
            Some(other)
                if collector.nar_differs.contains(basename)
                    || other.nar_size != object.nar_size =>
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
            only_b.push((basename, object));
        }
    }

    let paired = pairing::pair_store_paths(&only_a, &only_b);
    compare_pairs(&mut collector, &paired, pending_a, pending_b);
    let partners: HashMap<String, String> = paired
        .iter()
        .map(|p| (p.basename_a.clone(), p.basename_b.clone()))
        .collect();
    label_store_hash_only(&mut collector, &partners);

    let mut groups = collector.groups;
    for group in &mut groups {
        if group.paired_with.is_none() {
            group.change = group
                .store_path
                .as_ref()
                .and_then(|path| path_changes.get(path).copied());
        }
    }
    // Outside the store first, then the store paths in order.
    groups.sort_by(|x, y| {
        (x.store_path.is_some(), &x.store_path).cmp(&(y.store_path.is_some(), &y.store_path))
    });
    // Every member the same, header block, name and content, at the same
    // offset, and the same end.
    let tar_identical =
        collector.first.is_none() && !collector.layout_differs && walk_a.end == walk_b.end;
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
        pairs: paired.into_iter().map(|p| p.pair).collect(),
        members: collector.counts,
        groups,
        first_difference: first,
    })
}

/// A member only one side has: kept for pairing when in a store path,
/// else recorded.
fn one_sided(
    collector: &mut Collector,
    (side, pending): (&mut SideStream, &mut Pending),
    member: Member,
    change: Change,
) -> Result<(), ArchiveWalkError> {
    let key = collector.store_path_of(&member.path);
    if let Some((basename, below)) = collector.store_basename(&member.path) {
        // A store path both sides have differs.
        collector.nar_differs.insert(basename.clone());
        if !pending.full() {
            let content = match member.kind {
                MemberKind::Regular => side.read_content(member.size, pending.keep_up_to())?,
                _ => {
                    side.skip_content()?;
                    Content::None
                }
            };
            pending.keep(&basename, below, member, content);
            return Ok(());
        }
    }
    side.skip_content()?;
    let entry = Entry::new(member, 0, Content::None);
    collector.one_sided(key, &entry, change);
    Ok(())
}

/// Two members of the same name.
fn same_name(collector: &mut Collector, ma: &Member, mb: &Member, content: ContentComparison) {
    if (ma.offset, ma.content_offset) != (mb.offset, mb.content_offset) {
        collector.layout_differs = true;
    }
    let fields = header_changes(ma, mb);
    if fields.is_empty() && content.detail.is_none() {
        return;
    }
    match (fields.first(), &content.detail) {
        (Some(first), _) => {
            let detail = fields
                .iter()
                .map(|f| format!("{} {} in A, {} in B", f.field, f.a, f.b))
                .collect::<Vec<_>>()
                .join("; ");
            let field = first.field.clone();
            collector.first(ma, &field, detail);
        }
        (None, Some(detail)) => collector.first(ma, "content", detail.clone()),
        (None, None) => {}
    }
    if let Some((basename, _)) = collector.store_basename(&ma.path) {
        let in_nar = content.detail.is_some()
            || (ma.mode & 0o100) != (mb.mode & 0o100)
            || fields
                .iter()
                .any(|f| ["typeflag", "size", "linkname", "name"].contains(&f.field.as_str()));
        if in_nar {
            collector.nar_differs.insert(basename);
        }
    }
    let key = collector.store_path_of(&ma.path);
    let targets = symlink_targets(&ma.kind, &ma.link_target, &mb.kind, &mb.link_target);
    collector.record(
        key,
        MemberChange {
            member: mb.display_path(),
            change: Change::Changed,
            kind: mb.kind.describe(),
            size: mb.size,
            fields,
            content: content.detail,
            unified_diff: content.unified_diff,
            link_target: link_target(&mb.kind, &mb.link_target),
            store_hash_only: false,
            targets,
        },
    );
}

/// Both targets of two symlinks whose targets differ.
fn symlink_targets(
    kind_a: &MemberKind,
    a: &[u8],
    kind_b: &MemberKind,
    b: &[u8],
) -> Option<(Vec<u8>, Vec<u8>)> {
    (*kind_a == MemberKind::Symlink && *kind_b == MemberKind::Symlink && a != b)
        .then(|| (a.to_vec(), b.to_vec()))
}

/// Compares the kept members of each pair by their paths below the store
/// paths; records the members of unpaired store paths as added or removed.
fn compare_pairs(
    collector: &mut Collector,
    paired: &[pairing::Paired],
    mut pending_a: Pending,
    mut pending_b: Pending,
) {
    let store_dir = collector.store_dir.clone();
    let etc_links = pairing::etc_links(paired, &pending_b, &store_dir);
    for pair in paired {
        let key = Some(pair.pair.path_b.clone());
        let group = collector.group(key.clone());
        group.paired_with = Some(pair.pair.path_a.clone());
        group.change = Some(Change::Changed);
        let etc = etc_links.get(&pair.basename_b);
        if let Some((etc_path, below)) = etc {
            group.etc_path = Some(etc_path.clone());
            group.etc_below = below.clone();
        }
        let entries_a = pending_a
            .by_basename
            .remove(&pair.basename_a)
            .unwrap_or_default();
        let entries_b = pending_b
            .by_basename
            .remove(&pair.basename_b)
            .unwrap_or_default();
        let mut a = entries_a.into_iter().peekable();
        let mut b = entries_b.into_iter().peekable();
        loop {
            let order = match (a.peek(), b.peek()) {
                (None, None) => break,
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some(x), Some(y)) => archive_order(x.relative(), y.relative()),
            };
            match order {
                Ordering::Less => {
                    let x = a.next().expect("A has a member");
                    collector.one_sided(key.clone(), &x, Change::Removed);
                }
                Ordering::Greater => {
                    let y = b.next().expect("B has a member");
                    collector.one_sided(key.clone(), &y, Change::Added);
                }
                Ordering::Equal => {
                    let x = a.next().expect("A has a member");
                    let y = b.next().expect("B has a member");
                    if let Some(change) = compare_entries(&x, &y, &pair.pair.path_b, etc) {
                        collector.record(key.clone(), change);
                    }
                }
            }
        }
    }
    // Store paths in both or unpaired: their members one-sided.
    for (pending, change) in [(pending_a, Change::Removed), (pending_b, Change::Added)] {
        for (basename, entries) in pending.by_basename {
            let key = Some(format!("{store_dir}/{basename}"));
            for entry in &entries {
                collector.one_sided(key.clone(), entry, change);
            }
        }
    }
}

/// How two members at the same place in paired store paths differ, if
/// they do; the name is B's (as linked into `/etc` for a unified diff's
/// header, when it is).
fn compare_entries(
    a: &Entry,
    b: &Entry,
    path_b: &str,
    etc: Option<&(String, String)>,
) -> Option<MemberChange> {
    let text = |bytes: &[u8]| format!("\"{}\"", String::from_utf8_lossy(bytes));
    let fields: [(&str, String, String); 7] = [
        ("typeflag", a.kind.describe(), b.kind.describe()),
        ("mode", format!("{:04o}", a.mode), format!("{:04o}", b.mode)),
        ("uid", a.uid.to_string(), b.uid.to_string()),
        ("gid", a.gid.to_string(), b.gid.to_string()),
        ("size", a.size.to_string(), b.size.to_string()),
        ("mtime", a.mtime.to_string(), b.mtime.to_string()),
        ("linkname", text(&a.link_target), text(&b.link_target)),
    ];
    let fields = changed_fields(fields);
    let name = b.display_path();
    let shown = match etc {
        Some((etc_path, below)) => {
            let root = format!("{path_b}{below}");
            match name.strip_prefix(&root) {
                Some(rest) if rest.is_empty() || rest.starts_with('/') => {
                    format!("{etc_path}{rest}")
                }
                _ => name.clone(),
            }
        }
        None => name.clone(),
    };
    let regular = a.kind == MemberKind::Regular && b.kind == MemberKind::Regular;
    let content = compare_content((&a.content, a.size), (&b.content, b.size), regular, &shown);
    if fields.is_empty() && content.detail.is_none() {
        return None;
    }
    Some(MemberChange {
        member: name,
        change: Change::Changed,
        kind: b.kind.describe(),
        size: b.size,
        fields,
        content: content.detail,
        unified_diff: content.unified_diff,
        link_target: link_target(&b.kind, &b.link_target),
        store_hash_only: false,
        targets: symlink_targets(&a.kind, &a.link_target, &b.kind, &b.link_target),
    })
}

/// Labels the symlinks whose only difference is a target that is the same
/// once A's store paths are replaced by their partners, and counts them
/// apart from the changed members.
fn label_store_hash_only(collector: &mut Collector, partners: &HashMap<String, String>) {
    let store_dir = collector.store_dir.clone();
    let mut relabelled = 0;
    for group in &mut collector.groups {
        for member in &mut group.members {
            let Some((a, b)) = &member.targets else {
                continue;
            };
            let only_target = member.content.is_none()
                && member.fields.len() == 1
                && member.fields[0].field == "linkname";
            if only_target && pairing::with_partners(a, &store_dir, partners) == *b {
                member.store_hash_only = true;
                relabelled += 1;
            }
        }
    }
    collector.counts.changed -= relabelled;
    collector.counts.store_hash_only += relabelled;
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
