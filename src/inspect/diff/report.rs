//! What `diff` reports: the types of its result (which the JSON mirrors,
//! exactly) and the capped text form for people, in which every name, link
//! target, field value and line of content from the tarballs is escaped
//! for a terminal.

use crate::count::count;
use std::collections::HashSet;

use serde::Serialize;

use crate::escape::Escaped;
use crate::store::{parse_drv_name, HASH_PART_LEN};

/// The most member differences kept for the report; more are counted.
pub const MAX_LISTED_MEMBERS: usize = 100_000;
/// What [`Difference::to_text`] prints at most: members per group, members
/// in all, and lines of each unified diff.
const TEXT_MEMBERS_PER_GROUP: usize = 50;
const TEXT_MEMBERS: usize = 500;
const TEXT_DIFF_LINES: usize = 200;
/// Lines of the version table per kind, and names of pairs rebuilt.
const TEXT_PACKAGES: usize = 100;
const TEXT_REBUILT: usize = 20;

/// A store path in both tarballs with different contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangedStorePath {
    /// The store path (A's spelling).
    pub path: String,
    /// Its NAR hash in A, when known.
    pub nar_hash_a: Option<String>,
    /// Its NAR hash in B, when known.
    pub nar_hash_b: Option<String>,
    /// Its NAR size in A.
    pub nar_size_a: u64,
    /// Its NAR size in B.
    pub nar_size_b: u64,
}

/// A store path only A has and one only B has, paired by name without the
/// hash (package name and output, as Nix's `parseDrvName` splits names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StorePathPair {
    /// The package name (with ` (dev)` and the like for an output).
    pub name: String,
    /// The version in A.
    pub version_a: String,
    /// The version in B.
    pub version_b: String,
    /// A's NAR size.
    pub nar_size_a: u64,
    /// B's NAR size.
    pub nar_size_b: u64,
    /// A's store path.
    pub path_a: String,
    /// B's store path.
    pub path_b: String,
}

/// The store paths one side adds, removes and changes, as `diff` prints
/// them for two tarballs and for two system descriptions alike.
pub fn store_path_changes_text(
    added: &[String],
    removed: &[String],
    changed: &[ChangedStorePath],
) -> String {
    let mut out = format!(
        "store paths: {} added, {} removed, {} changed\n",
        added.len(),
        removed.len(),
        changed.len()
    );
    for path in added {
        out.push_str(&format!("  + {}\n", Escaped(path)));
    }
    for path in removed {
        out.push_str(&format!("  - {}\n", Escaped(path)));
    }
    for change in changed {
        out.push_str(&format!(
            "  ~ {} (NAR {} -> {}, {} -> {} bytes)\n",
            Escaped(&change.path),
            Escaped(change.nar_hash_a.as_deref().unwrap_or("?")),
            Escaped(change.nar_hash_b.as_deref().unwrap_or("?")),
            change.nar_size_a,
            change.nar_size_b
        ));
    }
    out
}

/// The first member at which the two archives part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FirstDifference {
    /// The member's name.
    pub member: String,
    /// The store path the member belongs to, if any.
    pub store_path: Option<String>,
    /// Offset of the member's header in A's uncompressed tar stream (in
    /// B's, for a member only B has).
    pub tar_offset: u64,
    /// `only in A`, `only in B`, a header field (`mode`, `uid`, `size`,
    /// `mtime`, `linkname`, `uname`, …), `name` (spelled differently), or
    /// `content`.
    pub field: String,
    /// Both values, or the offset of the first differing content byte.
    pub detail: String,
}

/// How a member differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Change {
    /// Only B has it.
    Added,
    /// Only A has it.
    Removed,
    /// Both have it, with different fields or content.
    Changed,
}

impl Change {
    fn sign(self) -> char {
        match self {
            Change::Added => '+',
            Change::Removed => '-',
            Change::Changed => '~',
        }
    }
}

/// One header field that differs, with both values as text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    /// `typeflag`, `mode`, `uid`, `gid`, `size`, `mtime`, `linkname`,
    /// `uname`, `gname`, `name` (spelled differently), or another header
    /// field when only its raw bytes differ.
    pub field: String,
    pub a: String,
    pub b: String,
}

/// A member added, removed or changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberChange {
    /// The member's `/`-rooted path.
    pub member: String,
    /// Added, removed or changed, and how.
    pub change: Change,
    /// `file`, `directory`, `symlink`, … (B's for a changed member).
    pub kind: String,
    /// Content size (B's for a changed member).
    pub size: u64,
    /// Header fields that differ (changed members only).
    pub fields: Vec<FieldChange>,
    /// Where the contents part, if they do.
    pub content: Option<String>,
    /// For text files of at most 64 KiB on both sides
    /// ([`super::MAX_TEXT_DIFF_BYTES`]).
    pub unified_diff: Option<String>,
    /// A symlink's target (B's for a changed member).
    pub link_target: Option<String>,
    /// A symlink whose target differs only in paired store paths: the same
    /// once each of A's store paths is replaced by its partner. Not counted
    /// as changed.
    pub store_hash_only: bool,
    /// Both targets of a symlink whose target changed, exactly.
    #[serde(skip)]
    pub(super) targets: Option<(Vec<u8>, Vec<u8>)>,
}

/// The differences among the members of one store path, or outside the
/// store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberGroup {
    /// Null for members outside the store.
    pub store_path: Option<String>,
    /// The store path added, removed or changed; null outside the store.
    /// For a pair, `changed`, with A's store path in `pairedWith`.
    pub change: Option<Change>,
    /// A's store path when this is B's side of a pair.
    pub paired_with: Option<String>,
    /// Where B's `etc` store path links this store path into `/etc`.
    pub etc_path: Option<String>,
    /// The path below the store path that `etc_path` names.
    #[serde(skip)]
    pub(super) etc_below: String,
    pub members: Vec<MemberChange>,
}

/// How many members differ, counted whole (including those not listed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberChangeCounts {
    pub added: u64,
    pub removed: u64,
    pub changed: u64,
    /// Differences counted but not listed (beyond [`MAX_LISTED_MEMBERS`]).
    pub not_listed: u64,
    /// Unified diffs left out once their total passed 16 MiB.
    pub unified_diffs_left_out: u64,
    /// Symlinks whose targets differ only in paired store paths (not in
    /// `changed`).
    pub store_hash_only: u64,
}

/// What `diff` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Difference {
    /// The schema's version, [`crate::inspect::JSON_VERSION`].
    pub version: u32,
    /// The first file, as named.
    pub a: String,
    /// The second file, as named.
    pub b: String,
    /// The files are byte for byte the same.
    pub identical: bool,
    /// The uncompressed tar streams hold the same members: every header
    /// block, name, link target and content the same, at the same offsets,
    /// and the same end of archive.
    pub tar_identical: bool,
    /// A's compression.
    pub compression_a: String,
    /// B's compression.
    pub compression_b: String,
    /// SHA-256 of A's file.
    pub sha256_a: String,
    /// SHA-256 of B's file.
    pub sha256_b: String,
    /// Store paths only B has.
    pub added: Vec<String>,
    /// Store paths only A has.
    pub removed: Vec<String>,
    /// Store paths in both with different contents (a member added,
    /// removed, or changed in type, executable bit, size, link target or
    /// content: what their NAR holds). `diff` of two tarballs compares the
    /// members themselves and leaves the NAR hashes null.
    pub changed: Vec<ChangedStorePath>,
    /// Store paths of `removed` and `added` paired by name.
    pub pairs: Vec<StorePathPair>,
    /// Counts of member changes.
    pub members: MemberChangeCounts,
    /// Member differences by store path, in archive order; members outside
    /// the store come first.
    pub groups: Vec<MemberGroup>,
    /// Where the tar streams first differ, if they do.
    pub first_difference: Option<FirstDifference>,
}

impl Difference {
    /// The report for people, capped: the packages paired, added, removed
    /// and rebuilt; then the member differences, those linked into `/etc`
    /// first, at most 50 per group, 500 in all and 200 lines per unified
    /// diff, with a line saying what was left out; symlinks whose targets
    /// moved only with a store hash last.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "A {} ({}, sha256 {})\n",
            Escaped(&self.a),
            self.compression_a,
            self.sha256_a
        ));
        out.push_str(&format!(
            "B {} ({}, sha256 {})\n",
            Escaped(&self.b),
            self.compression_b,
            self.sha256_b
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
        self.packages_text(&mut out);
        out.push_str(&format!(
            "store paths: {} added, {} removed, {} changed",
            self.added.len(),
            self.removed.len(),
            self.changed.len()
        ));
        if !self.pairs.is_empty() {
            out.push_str(&format!(
                " ({} of the added paired by name with removed ones)",
                self.pairs.len()
            ));
        }
        out.push('\n');
        let paired: HashSet<&str> = self
            .pairs
            .iter()
            .flat_map(|p| [p.path_a.as_str(), p.path_b.as_str()])
            .collect();
        for path in self.added.iter().filter(|p| !paired.contains(p.as_str())) {
            out.push_str(&format!("  + {}\n", Escaped(path)));
        }
        for path in self.removed.iter().filter(|p| !paired.contains(p.as_str())) {
            out.push_str(&format!("  - {}\n", Escaped(path)));
        }
        for change in &self.changed {
            out.push_str(&format!(
                "  ~ {} (NAR size {} -> {} bytes)\n",
                Escaped(&change.path),
                change.nar_size_a,
                change.nar_size_b
            ));
        }
        let counts = &self.members;
        out.push_str(&format!(
            "members: {} added, {} removed, {} changed",
            counts.added, counts.removed, counts.changed
        ));
        if counts.store_hash_only > 0 {
            out.push_str(&format!(
                ", {} symlinks moved only with a store hash",
                counts.store_hash_only
            ));
        }
        out.push('\n');
        // Groups linked into /etc first, then outside the store, pairs,
        // store paths changed in place, and store paths added or removed.
        let mut order: Vec<&MemberGroup> = self.groups.iter().collect();
        order.sort_by_key(|group| match (&group.etc_path, &group.store_path) {
            (Some(_), _) => 0,
            (None, None) => 1,
            _ if group.paired_with.is_some() => 2,
            _ if group.change == Some(Change::Changed) => 3,
            _ => 4,
        });
        let mut shown = 0;
        let mut left_out: u64 = counts.not_listed;
        for hash_only in [false, true] {
            let mut heading = hash_only;
            for group in &order {
                let members: Vec<&MemberChange> = group
                    .members
                    .iter()
                    .filter(|m| m.store_hash_only == hash_only)
                    .collect();
                if members.is_empty() {
                    continue;
                }
                if heading {
                    out.push_str("symlinks whose targets moved only with a store hash:\n");
                    heading = false;
                }
                group_heading(group, &mut out);
                let room = TEXT_MEMBERS_PER_GROUP.min(TEXT_MEMBERS - shown);
                for member in members.iter().take(room) {
                    member_text(member, group, &mut out);
                }
                let here = members.len().min(room);
                shown += here;
                let rest = (members.len() - here) as u64;
                if rest > 0 {
                    out.push_str(&format!("  … and {} here\n", count(rest, "more member")));
                    left_out += rest;
                }
            }
        }
        if left_out > 0 || counts.unified_diffs_left_out > 0 {
            out.push_str(&format!(
                "left out: {} and {} (`diff --json` lists every member kept; at most {MAX_LISTED_MEMBERS} are kept)\n",
                count(left_out, "member"),
                count(counts.unified_diffs_left_out, "unified diff")
            ));
        }
        if let Some(first) = &self.first_difference {
            out.push_str(&format!(
                "first difference: {} (tar offset {})\n",
                Escaped(&first.member),
                first.tar_offset
            ));
            if let Some(store_path) = &first.store_path {
                out.push_str(&format!("  in store path {}\n", Escaped(store_path)));
            }
            out.push_str(&format!(
                "  {}: {}\n",
                Escaped(&first.field),
                Escaped(&first.detail)
            ));
        }
        out
    }

    /// The version table: pairs with a new version, packages added and
    /// removed, and pairs rebuilt with the same version.
    fn packages_text(&self, out: &mut String) {
        let paired: HashSet<&str> = self
            .pairs
            .iter()
            .flat_map(|p| [p.path_a.as_str(), p.path_b.as_str()])
            .collect();
        let unpaired = |paths: &[String]| -> Vec<String> {
            paths
                .iter()
                .filter(|p| !paired.contains(p.as_str()))
                .map(|p| package_of(p))
                .collect()
        };
        let (added, removed) = (unpaired(&self.added), unpaired(&self.removed));
        let (updated, rebuilt): (Vec<&StorePathPair>, Vec<&StorePathPair>) =
            self.pairs.iter().partition(|p| p.version_a != p.version_b);
        if self.pairs.is_empty() && added.is_empty() && removed.is_empty() {
            return;
        }
        out.push_str(&format!(
            "packages: {} with a new version, {} added, {} removed, {} rebuilt with the same version\n",
            updated.len(),
            added.len(),
            removed.len(),
            rebuilt.len()
        ));
        for pair in updated.iter().take(TEXT_PACKAGES) {
            out.push_str(&format!(
                "  {} {} → {}, {}\n",
                Escaped(&pair.name),
                Escaped(&pair.version_a),
                Escaped(&pair.version_b),
                size_change(pair.nar_size_a, pair.nar_size_b)
            ));
        }
        for (sign, names) in [('+', &added), ('-', &removed)] {
            for name in names.iter().take(TEXT_PACKAGES) {
                out.push_str(&format!("  {sign} {}\n", Escaped(name)));
            }
        }
        let hidden = updated.len().saturating_sub(TEXT_PACKAGES)
            + added.len().saturating_sub(TEXT_PACKAGES)
            + removed.len().saturating_sub(TEXT_PACKAGES);
        if hidden > 0 {
            out.push_str(&format!(
                "  … and {hidden} more (`diff --json` has them all)\n"
            ));
        }
        if !rebuilt.is_empty() {
            let names: Vec<String> = rebuilt
                .iter()
                .take(TEXT_REBUILT)
                .map(|p| match p.version_a.as_str() {
                    "" => Escaped(&p.name).to_string(),
                    version => format!("{} {}", Escaped(&p.name), Escaped(version)),
                })
                .collect();
            out.push_str(&format!("  rebuilt, same version: {}", names.join(", ")));
            if rebuilt.len() > TEXT_REBUILT {
                out.push_str(&format!(" and {} more", rebuilt.len() - TEXT_REBUILT));
            }
            out.push('\n');
        }
    }
}

/// `name version` of a store path, for the version table.
fn package_of(path: &str) -> String {
    let basename = path.rsplit('/').next().unwrap_or(path);
    let name = basename.get(HASH_PART_LEN + 1..).unwrap_or(basename);
    match parse_drv_name(name) {
        (pname, "") => pname.to_owned(),
        (pname, version) => format!("{pname} {version}"),
    }
}

/// `+12.0 KiB`, `-3 bytes`, `±0 bytes`.
fn size_change(a: u64, b: u64) -> String {
    let (sign, delta) = match b.cmp(&a) {
        std::cmp::Ordering::Greater => ('+', b - a),
        std::cmp::Ordering::Less => ('-', a - b),
        std::cmp::Ordering::Equal => return "±0 bytes".to_owned(),
    };
    let units = [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    match units.iter().find(|(_, size)| delta >= *size) {
        Some((unit, size)) => format!("{sign}{:.1} {unit}", delta as f64 / *size as f64),
        None => format!("{sign}{delta} bytes"),
    }
}

/// A group's heading line in the text report.
fn group_heading(group: &MemberGroup, out: &mut String) {
    let line = match (&group.store_path, &group.paired_with, group.change) {
        (None, _, _) => "outside the store".to_owned(),
        (Some(path), Some(a), _) => {
            let pair = format!("{} → {}", Escaped(a), Escaped(path));
            match &group.etc_path {
                Some(etc) => format!("{} ({pair})", Escaped(etc)),
                None => pair,
            }
        }
        (Some(path), None, Some(change)) => format!(
            "{} ({})",
            Escaped(path),
            match change {
                Change::Added => "added",
                Change::Removed => "removed",
                Change::Changed => "changed",
            }
        ),
        (Some(path), None, None) => Escaped(path).to_string(),
    };
    out.push_str(&line);
    out.push('\n');
}

/// One member's lines in the text report: its name (as linked into
/// `/etc` when its group is), and what differs.
fn member_text(member: &MemberChange, group: &MemberGroup, out: &mut String) {
    let sign = member.change.sign();
    let name = shown_name(member, group);
    if member.store_hash_only {
        out.push_str(&format!(
            "  = {} -> {}\n",
            Escaped(&name),
            Escaped(member.link_target.as_deref().unwrap_or(""))
        ));
        return;
    }
    if member.change != Change::Changed {
        match &member.link_target {
            Some(target) => out.push_str(&format!(
                "  {sign} {} -> {} ({})\n",
                Escaped(&name),
                Escaped(target),
                Escaped(&member.kind),
            )),
            None => out.push_str(&format!(
                "  {sign} {} ({}, {} bytes)\n",
                Escaped(&name),
                Escaped(&member.kind),
                member.size
            )),
        }
        return;
    }
    let mut parts: Vec<String> = member
        .fields
        .iter()
        .map(|f| {
            format!(
                "{} {} -> {}",
                Escaped(&f.field),
                Escaped(&f.a),
                Escaped(&f.b)
            )
        })
        .collect();
    if let Some(content) = &member.content {
        parts.push(format!("content: {}", Escaped(content)));
    }
    out.push_str(&format!(
        "  {sign} {}: {}\n",
        Escaped(&name),
        parts.join("; ")
    ));
    if let Some(diff) = &member.unified_diff {
        // Split at LF alone: a CR at a line's end is shown, escaped.
        let lines: Vec<&str> = diff.split_terminator('\n').collect();
        for line in lines.iter().take(TEXT_DIFF_LINES) {
            out.push_str(&format!("    {}\n", Escaped(line)));
        }
        if lines.len() > TEXT_DIFF_LINES {
            out.push_str(&format!(
                "    … and {} of diff\n",
                count(lines.len() - TEXT_DIFF_LINES, "more line")
            ));
        }
    }
}

/// A member's name as the text report shows it: below `/etc` when its
/// group is linked there.
fn shown_name(member: &MemberChange, group: &MemberGroup) -> String {
    let (Some(etc), Some(store_path)) = (&group.etc_path, &group.store_path) else {
        return member.member.clone();
    };
    let below = format!("{store_path}{}", group.etc_below);
    match member.member.strip_prefix(&below) {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => format!("{etc}{rest}"),
        _ => member.member.clone(),
    }
}
