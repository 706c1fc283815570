//! The bundle's members around its export stream: the prefix
//! (`wsl-delta/`, the manifest, the script and the export member's header)
//! and the tail (the stream's end, padding, the end of the archive).
//!
//! The manifest holds the export stream's sha256, known only after the pass
//! over the shipped paths, yet it comes first in the bundle. With gzip the
//! prefix is therefore planned before the pass ([`PlannedPrefix`]): made
//! with a stand-in digest, its bytes that depend on the digest (the hex and
//! the manifest's signatures) compressed as stored members of their own,
//! whose length depends on their length alone, and every other run
//! compressed as usual. The real prefix then compresses to the planned
//! length, and goes over the planned one once the digest is known.

use std::io;
use std::ops::Range;

use super::export::STREAM_END;
use super::manifest::{BundleManifest, APPLY_MEMBER, BUNDLE_DIR, EXPORT_MEMBER, MANIFEST_MEMBER};
use super::script::apply_script;
use super::MakeError;
use crate::compress::{gzip_member, GZIP_MEMBER_SIZE};
use crate::entry::Entry;
use crate::tar::{
    append_header, end_of_archive_len, padding_len, HeaderFields, MemberKind, TarWriter,
};

/// The members before the export stream, made from its digest.
#[derive(Clone)]
pub(crate) struct PrefixMembers {
    /// `manifest.json`.
    pub manifest_json: String,
    /// `apply`.
    pub script: String,
    /// Strings in them that change with the digest, besides its hex: the
    /// manifest's signatures.
    pub varying: Vec<String>,
}

impl PrefixMembers {
    /// The members of `manifest`.
    pub(crate) fn of(manifest: &BundleManifest) -> Self {
        PrefixMembers {
            manifest_json: manifest.to_json(),
            script: apply_script(manifest),
            varying: manifest.signatures.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// The export digest the prefix is planned with before the real one is
/// known: hex of the same length.
pub(crate) const PLANNED_SHA256: &str =
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// A gzip prefix planned before the export digest is known.
pub(crate) struct PlannedPrefix {
    tar: Vec<u8>,
    varying: Vec<Range<usize>>,
    members: Vec<u8>,
    level: u32,
}

impl PlannedPrefix {
    /// Plans the prefix `tar` (made by [`prefix_tar`] from members made
    /// from [`PLANNED_SHA256`], whose `varying` strings those are), gzip at
    /// `level`.
    pub(crate) fn plan(tar: Vec<u8>, varying: &[String], level: u32) -> io::Result<Self> {
        let varying = varying_ranges(
            &tar,
            std::iter::once(PLANNED_SHA256).chain(varying.iter().map(String::as_str)),
        );
        let members = prefix_gzip(&tar, &varying, level)?;
        Ok(PlannedPrefix {
            tar,
            varying,
            members,
            level,
        })
    }

    /// Length of the compressed prefix, planned and real.
    pub(crate) fn len(&self) -> u64 {
        self.members.len() as u64
    }

    /// The real prefix's gzip members, of [`PlannedPrefix::len`] bytes: an
    /// error if `real` (the tar bytes) differs from the plan outside its
    /// digest-dependent bytes.
    pub(crate) fn fill(&self, real: &[u8]) -> io::Result<Vec<u8>> {
        let members = prefix_gzip(real, &self.varying, self.level)?;
        if !same_outside(&self.tar, real, &self.varying) || members.len() != self.members.len() {
            return Err(io::Error::other(
                "internal error: the bundle's manifest changed in more than its export digest",
            ));
        }
        Ok(members)
    }
}

/// The tar bytes before the export stream's: `wsl-delta/`, the manifest,
/// the script and the export member's header.
pub(crate) fn prefix_tar(
    made: &PrefixMembers,
    mtime: u64,
    export_size: u64,
) -> Result<Vec<u8>, MakeError> {
    let mut tar = TarWriter::new(Vec::new(), mtime);
    tar.append(&Entry::directory(BUNDLE_DIR, 0o755))?;
    tar.append(&Entry::inline_file(
        MANIFEST_MEMBER,
        made.manifest_json.as_bytes().to_vec(),
        0o644,
    ))?;
    tar.append(&Entry::inline_file(
        APPLY_MEMBER,
        made.script.as_bytes().to_vec(),
        0o755,
    ))?;
    let (mut prefix, (), _) = tar.into_segment();
    append_header(
        &mut prefix,
        &HeaderFields {
            name: format!("./{EXPORT_MEMBER}").as_bytes(),
            kind: MemberKind::Regular,
            mode: 0o644,
            uid: 0,
            gid: 0,
            size: export_size,
            mtime,
            link_target: b"",
        },
    );
    Ok(prefix)
}

/// The tar bytes after the export stream's records: its end, the member's
/// padding and the end of the archive.
pub(crate) fn tail_bytes(prefix_len: u64, export_size: u64) -> Vec<u8> {
    let mut tail = STREAM_END.to_vec();
    tail.resize(tail.len() + padding_len(export_size), 0);
    let archive_bytes = prefix_len + export_size + padding_len(export_size) as u64;
    tail.resize(tail.len() + end_of_archive_len(archive_bytes), 0);
    tail
}

/// Where any of `strings` occurs in `bytes`, sorted, overlaps merged.
fn varying_ranges<'s>(bytes: &[u8], strings: impl Iterator<Item = &'s str>) -> Vec<Range<usize>> {
    let mut ranges: Vec<Range<usize>> = strings
        .filter(|s| !s.is_empty())
        .flat_map(|s| {
            memchr::memmem::find_iter(bytes, s.as_bytes()).map(move |at| at..at + s.len())
        })
        .collect();
    ranges.sort_by_key(|r| r.start);
    let mut merged: Vec<Range<usize>> = Vec::with_capacity(ranges.len());
    for range in ranges {
        match merged.last_mut() {
            Some(last) if range.start <= last.end => last.end = last.end.max(range.end),
            _ => merged.push(range),
        }
    }
    merged
}

/// `prefix` as gzip members: the runs between the `varying` ranges at
/// `level`, each range a stored member of its own (level 0), whose length
/// depends on the range's length alone.
fn prefix_gzip(prefix: &[u8], varying: &[Range<usize>], level: u32) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut at = 0;
    let ends = varying
        .iter()
        .cloned()
        .chain(std::iter::once(prefix.len()..prefix.len()));
    for range in ends {
        for piece in prefix[at..range.start].chunks(GZIP_MEMBER_SIZE) {
            out.extend_from_slice(&gzip_member(piece, level)?.bytes);
        }
        if !range.is_empty() {
            out.extend_from_slice(&gzip_member(&prefix[range.clone()], 0)?.bytes);
        }
        at = range.end;
    }
    Ok(out)
}

/// Whether `a` and `b` have the same length and bytes outside `varying`.
fn same_outside(a: &[u8], b: &[u8], varying: &[Range<usize>]) -> bool {
    let mut at = 0;
    a.len() == b.len()
        && varying
            .iter()
            .cloned()
            .chain(std::iter::once(a.len()..a.len()))
            .all(|range| {
                let same = a[at..range.start] == b[at..range.start];
                at = range.end;
                same
            })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inflate(members: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(members), &mut out).unwrap();
        out
    }

    #[test]
    fn the_planned_prefix_has_the_real_ones_length_and_differs_only_in_stored_members() {
        let signature = |c: char| format!("team-1:{}", c.to_string().repeat(86));
        let members = |sha256: &str, signature: String| {
            PrefixMembers {
            manifest_json: format!(
                "{{\"export\": {{\"sha256\": \"{sha256}\"}}, \"signatures\": [\"{signature}\"], \"pad\": \"{}\"}}\n",
                "x".repeat(3 * GZIP_MEMBER_SIZE)
            ),
            script: format!("export_sha256='{sha256}'\n"),
            varying: vec![signature],
        }
        };
        let planned = members(PLANNED_SHA256, signature('A'));
        let real_sha256 = "f".repeat(64);
        let real = members(&real_sha256, signature('B'));
        let size = 12345;
        let planned_tar = prefix_tar(&planned, 1, size).unwrap();
        let plan = PlannedPrefix::plan(planned_tar.clone(), &planned.varying, 6).unwrap();
        let real_tar = prefix_tar(&real, 1, size).unwrap();
        let varying = varying_ranges(
            &planned_tar,
            std::iter::once(PLANNED_SHA256).chain(planned.varying.iter().map(String::as_str)),
        );
        // The hex twice (manifest and script) and the signature once.
        assert_eq!(varying.len(), 3, "{varying:?}");
        assert!(same_outside(&planned_tar, &real_tar, &varying));
        assert!(!same_outside(&planned_tar, &real_tar, &[]));
        let planned_gzip = prefix_gzip(&planned_tar, &varying, 6).unwrap();
        let real_gzip = prefix_gzip(&real_tar, &varying, 6).unwrap();
        assert_eq!(planned_gzip.len(), real_gzip.len());
        assert_eq!(inflate(&real_gzip), real_tar);
        assert_eq!(inflate(&planned_gzip), planned_tar);
        assert_eq!(plan.len(), planned_gzip.len() as u64);
        assert_eq!(plan.fill(&real_tar).unwrap(), real_gzip);
        // More than the digest changed: the plan no longer holds.
        let other = members(&real_sha256, signature('B'));
        let mut other_tar = prefix_tar(&other, 1, size).unwrap();
        other_tar[600] ^= 1;
        assert!(plan.fill(&other_tar).is_err());
        // The long runs are compressed, not stored.
        assert!(real_gzip.len() < real_tar.len() / 10);
    }

    #[test]
    #[allow(clippy::single_range_in_vec_init)]
    fn varying_ranges_are_every_occurrence_sorted_and_merged() {
        let bytes = b"..abcab..abc.xy";
        let ranges = varying_ranges(bytes, ["abc", "cab", "xy", ""].into_iter());
        assert_eq!(ranges, [2..7, 9..12, 13..15]);
        assert!(same_outside(b"..abcab..", b"..zzzzz..", &[2..7]));
        assert!(!same_outside(b"..abcab..", b".zzzzzz..", &[2..7]));
        assert!(!same_outside(b"..abcab..", b"..zzzzz.", &[2..7]));
    }
}
