//! What `diff` reports: the types of its result (which the JSON mirrors,
//! exactly) and the capped text form for people, in which every name, link
//! target, field value and line of content from the tarballs is escaped
//! for a terminal.

use crate::count::count;
use serde::Serialize;

use crate::escape::Escaped;

/// The most member differences kept for the report; more are counted.
pub const MAX_LISTED_MEMBERS: usize = 100_000;
/// What [`Difference::to_text`] prints at most: members per group, members
/// in all, and lines of each unified diff.
const TEXT_MEMBERS_PER_GROUP: usize = 50;
const TEXT_MEMBERS: usize = 500;
const TEXT_DIFF_LINES: usize = 200;

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
    pub member: String,
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
}

/// The differences among the members of one store path, or outside the
/// store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberGroup {
    /// Null for members outside the store.
    pub store_path: Option<String>,
    /// The store path added, removed or changed; null outside the store.
    pub change: Option<Change>,
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
}

/// What `diff` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Difference {
    /// The schema's version, [`crate::inspect::JSON_VERSION`].
    pub version: u32,
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
    /// Store paths only B has.
    pub added: Vec<String>,
    /// Store paths only A has.
    pub removed: Vec<String>,
    /// Store paths in both with different NAR hashes or sizes.
    pub changed: Vec<ChangedStorePath>,
    pub members: MemberChangeCounts,
    /// Member differences by store path, in archive order; members outside
    /// the store come first.
    pub groups: Vec<MemberGroup>,
    pub first_difference: Option<FirstDifference>,
}

impl Difference {
    /// The report for people, capped: at most 50 members per group, 500 in
    /// all and 200 lines per unified diff, with a line saying what was left
    /// out.
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
        out.push_str(&store_path_changes_text(
            &self.added,
            &self.removed,
            &self.changed,
        ));
        let counts = &self.members;
        out.push_str(&format!(
            "members: {} added, {} removed, {} changed\n",
            counts.added, counts.removed, counts.changed
        ));
        let mut shown = 0;
        let mut left_out: u64 = counts.not_listed;
        for group in &self.groups {
            match (&group.store_path, group.change) {
                (None, _) => out.push_str("outside the store\n"),
                (Some(path), Some(change)) => out.push_str(&format!(
                    "{} ({})\n",
                    Escaped(path),
                    match change {
                        Change::Added => "added",
                        Change::Removed => "removed",
                        Change::Changed => "changed",
                    }
                )),
                (Some(path), None) => out.push_str(&format!("{}\n", Escaped(path))),
            }
            let room = TEXT_MEMBERS_PER_GROUP.min(TEXT_MEMBERS - shown);
            for member in group.members.iter().take(room) {
                member_text(member, &mut out);
            }
            let here = group.members.len().min(room);
            shown += here;
            let rest = (group.members.len() - here) as u64;
            if rest > 0 {
                out.push_str(&format!("  … and {} here\n", count(rest, "more member")));
                left_out += rest;
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
}

/// One member's lines in the text report.
fn member_text(member: &MemberChange, out: &mut String) {
    let sign = member.change.sign();
    if member.change != Change::Changed {
        out.push_str(&format!(
            "  {sign} {} ({}, {} bytes)\n",
            Escaped(&member.member),
            Escaped(&member.kind),
            member.size
        ));
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
        Escaped(&member.member),
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
