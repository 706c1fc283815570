//! Store paths paired across the two sides by name without the hash, the
//! way `nix store diff-closures` and nvd pair them, and the members of each
//! pair compared with the store path prefix stripped.
//!
//! A store path only one side has is paired with one of the same package
//! name (and output) on the other side: the one of the same version first
//! ("rebuilt, same version"), else in version order. Its members, kept while
//! reading (at most [`MAX_PENDING_MEMBERS`] per side), are then compared by
//! their path below the store path. A symlink whose target differs only in
//! store paths that are paired (every `<store>/<hash>-<name>` replaced by
//! its partner) is labelled as such, not counted as a change.

use std::collections::{BTreeMap, HashMap};

use super::report::StorePathPair;
use super::side::Content;
use super::MAX_TEXT_DIFF_BYTES;
use crate::archive::display_path;
use crate::archive::Member;
use crate::inspect::walk::StoreObject;
use crate::store::{parse_drv_name, StoreDir, HASH_PART_LEN};
use crate::tar::MemberKind;

/// Members of store paths only one side has, kept per side for pairing;
/// beyond this they are reported as added or removed unpaired.
pub const MAX_PENDING_MEMBERS: usize = 500_000;
/// Bytes of small files' content kept per side for pairing; beyond this
/// only block digests are kept (no unified diffs).
const MAX_PENDING_BYTES: usize = 64 << 20;

/// Outputs that end a version (`openssl-3.0.13-dev`): part of the pairing
/// key, so `-dev` pairs with `-dev`.
const OUTPUTS: &[&str] = &[
    "bin", "dev", "doc", "devdoc", "info", "lib", "man", "out", "debug", "static", "py", "getent",
];

/// A member of a store path only one side has.
pub(super) struct Entry {
    /// The member's path.
    pub path: Vec<u8>,
    /// Where the path below the store path starts in `path`.
    relative_start: usize,
    pub kind: MemberKind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub size: u64,
    pub link_target: Vec<u8>,
    pub content: Content,
}

impl Entry {
    /// A member, its path below its store path starting at
    /// `relative_start`, and its content as `keep` keeps it.
    pub fn new(member: Member, relative_start: usize, content: Content) -> Entry {
        Entry {
            relative_start: relative_start.min(member.path.len()),
            path: member.path,
            kind: member.kind,
            mode: member.mode,
            uid: member.uid,
            gid: member.gid,
            mtime: member.mtime,
            size: member.size,
            link_target: member.link_target,
            content,
        }
    }

    /// The path below the store path (empty for the store path itself).
    pub fn relative(&self) -> &[u8] {
        &self.path[self.relative_start..]
    }

    pub fn display_path(&self) -> String {
        display_path(&self.path)
    }
}

/// The kept members of one side's unmatched store paths, by basename.
#[derive(Default)]
pub(super) struct Pending {
    pub by_basename: BTreeMap<String, Vec<Entry>>,
    members: usize,
    bytes: usize,
}

impl Pending {
    /// Whether no more members can be kept.
    pub fn full(&self) -> bool {
        self.members >= MAX_PENDING_MEMBERS
    }

    /// How many bytes of a file's content to keep (block digests beyond).
    pub fn keep_up_to(&self) -> u64 {
        if self.bytes < MAX_PENDING_BYTES {
            MAX_TEXT_DIFF_BYTES
        } else {
            0
        }
    }

    /// Keeps a member of store path `basename` (even when full).
    pub fn keep(
        &mut self,
        basename: &str,
        relative_start: usize,
        member: Member,
        content: Content,
    ) {
        self.members += 1;
        if let Content::Bytes(bytes) = &content {
            self.bytes += bytes.len();
        }
        let entry = Entry::new(member, relative_start, content);
        match self.by_basename.get_mut(basename) {
            Some(entries) => entries.push(entry),
            None => {
                self.by_basename.insert(basename.to_owned(), vec![entry]);
            }
        }
    }
}

/// A store path's name split for pairing: package name, version, and the
/// key it pairs by (the package name and any output suffix).
fn name_parts(basename: &str) -> (String, String, (String, String)) {
    let name = match basename.as_bytes().get(HASH_PART_LEN) {
        Some(b'-') => &basename[HASH_PART_LEN + 1..],
        _ => basename,
    };
    let (pname, version) = parse_drv_name(name);
    let output = version
        .rsplit_once('-')
        .map(|(_, output)| output)
        .filter(|output| OUTPUTS.contains(output))
        .unwrap_or("");
    (
        pname.to_owned(),
        version.to_owned(),
        (pname.to_owned(), output.to_owned()),
    )
}

/// A pair, with the basenames it joins.
pub(super) struct Paired {
    pub basename_a: String,
    pub basename_b: String,
    pub pair: StorePathPair,
}

/// Pairs the store paths only A has with those only B has.
pub(super) fn pair_store_paths(
    only_a: &[(&String, &StoreObject)],
    only_b: &[(&String, &StoreObject)],
) -> Vec<Paired> {
    type Side<'s> = Vec<(String, &'s String, &'s StoreObject)>;
    let mut keys: BTreeMap<(String, String), (Side, Side)> = BTreeMap::new();
    for (list, is_a) in [(only_a, true), (only_b, false)] {
        for &(basename, object) in list {
            let (_, version, key) = name_parts(basename);
            let sides = keys.entry(key).or_default();
            let side = if is_a { &mut sides.0 } else { &mut sides.1 };
            side.push((version, basename, object));
        }
    }
    let mut pairs = Vec::new();
    for ((pname, output), (mut a, mut b)) in keys {
        let name = if output.is_empty() {
            pname.clone()
        } else {
            format!("{pname} ({output})")
        };
        let mut make =
            |(version_a, basename_a, object_a): (String, &String, &StoreObject),
             (version_b, basename_b, object_b): (String, &String, &StoreObject)| {
                pairs.push(Paired {
                    basename_a: basename_a.clone(),
                    basename_b: basename_b.clone(),
                    pair: StorePathPair {
                        name: name.clone(),
                        version_a,
                        version_b,
                        nar_size_a: object_a.nar_size,
                        nar_size_b: object_b.nar_size,
                        path_a: object_a.path.clone(),
                        path_b: object_b.path.clone(),
                    },
                })
            };
        // The same version first: rebuilt.
        let mut i = 0;
        while i < a.len() {
            match b.iter().position(|other| other.0 == a[i].0) {
                Some(j) => make(a.remove(i), b.remove(j)),
                None => i += 1,
            }
        }
        a.sort_by(|x, y| x.0.cmp(&y.0));
        b.sort_by(|x, y| x.0.cmp(&y.0));
        for (x, y) in a.into_iter().zip(b) {
            make(x, y);
        }
    }
    pairs
}

/// Replaces, in a link target of A, every `<store>/<basename>` of a paired
/// store path by its partner's.
pub(super) fn with_partners(
    target: &[u8],
    store_dir: &StoreDir,
    partners: &HashMap<String, String>,
) -> Vec<u8> {
    let prefix = format!("{store_dir}/");
    let prefix = prefix.as_bytes();
    let mut out = Vec::with_capacity(target.len());
    let mut rest = target;
    while let Some(at) = find(rest, prefix) {
        let after = at + prefix.len();
        out.extend_from_slice(&rest[..after]);
        rest = &rest[after..];
        let end = rest.iter().position(|&b| b == b'/').unwrap_or(rest.len());
        let basename = String::from_utf8_lossy(&rest[..end]);
        match partners.get(basename.as_ref()) {
            Some(partner) => out.extend_from_slice(partner.as_bytes()),
            None => out.extend_from_slice(&rest[..end]),
        }
        rest = &rest[end..];
    }
    out.extend_from_slice(rest);
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Where B's `etc` store path links files of other store paths into
/// `/etc`: B's store path basename → (`/etc/…` path, the path below the
/// store path it names, `/`-rooted or empty).
pub(super) fn etc_links(
    pairs: &[Paired],
    pending_b: &Pending,
    store_dir: &StoreDir,
) -> HashMap<String, (String, String)> {
    let mut links = HashMap::new();
    let Some(etc) = pairs.iter().find(|p| p.pair.name == "etc") else {
        return links;
    };
    let prefix = format!("{store_dir}/");
    links.insert(
        etc.basename_b.clone(),
        ("/etc".to_owned(), "/etc".to_owned()),
    );
    let Some(entries) = pending_b.by_basename.get(&etc.basename_b) else {
        return links;
    };
    for entry in entries {
        let Some(below) = entry.relative().strip_prefix(b"etc/") else {
            continue;
        };
        if entry.kind != MemberKind::Symlink {
            continue;
        }
        let target = String::from_utf8_lossy(&entry.link_target);
        let Some(in_store) = target.strip_prefix(&prefix) else {
            continue;
        };
        let (basename, rest) = match in_store.find('/') {
            Some(slash) => (&in_store[..slash], &in_store[slash..]),
            None => (in_store, ""),
        };
        if pairs.iter().any(|p| p.basename_b == basename) {
            links.entry(basename.to_owned()).or_insert((
                format!("/etc/{}", String::from_utf8_lossy(below)),
                rest.to_owned(),
            ));
        }
    }
    links
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_into_package_version_and_output() {
        let (pname, version, key) =
            name_parts("7h7qgvs4kgzsn8a6rb273saxyqh4jxlz-openssl-3.0.13-dev");
        assert_eq!(
            (pname.as_str(), version.as_str()),
            ("openssl", "3.0.13-dev")
        );
        assert_eq!(key, ("openssl".to_owned(), "dev".to_owned()));
        let (_, version, key) = name_parts("7h7qgvs4kgzsn8a6rb273saxyqh4jxlz-etc");
        assert_eq!(version, "");
        assert_eq!(key, ("etc".to_owned(), String::new()));
    }

    fn object(basename: &str, nar_size: u64) -> (String, StoreObject) {
        let object = StoreObject {
            path: format!("/nix/store/{basename}"),
            nar_hash: None,
            nar_size,
            members: 1,
            problem: None,
        };
        (basename.to_owned(), object)
    }

    #[test]
    fn the_same_version_pairs_first_then_versions_in_order_and_outputs_apart() {
        let h = |c: char| c.to_string().repeat(32);
        let a = [
            object(&format!("{}-glibc-2.38", h('a')), 10),
            object(&format!("{}-glibc-2.39", h('b')), 11),
            object(&format!("{}-openssl-3.0.1-dev", h('c')), 12),
            object(&format!("{}-gone-1", h('d')), 13),
        ];
        let b = [
            object(&format!("{}-glibc-2.39", h('f')), 21),
            object(&format!("{}-glibc-2.40", h('g')), 22),
            object(&format!("{}-openssl-3.0.2", h('h')), 23),
            object(&format!("{}-openssl-3.0.2-dev", h('i')), 24),
        ];
        let only_a: Vec<(&String, &StoreObject)> = a.iter().map(|(k, v)| (k, v)).collect();
        let only_b: Vec<(&String, &StoreObject)> = b.iter().map(|(k, v)| (k, v)).collect();
        let pairs = pair_store_paths(&only_a, &only_b);
        let got: Vec<(&str, &str, &str, u64, u64)> = pairs
            .iter()
            .map(|p| {
                let p = &p.pair;
                (
                    p.name.as_str(),
                    p.version_a.as_str(),
                    p.version_b.as_str(),
                    p.nar_size_a,
                    p.nar_size_b,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("glibc", "2.39", "2.39", 11, 21),
                ("glibc", "2.38", "2.40", 10, 22),
                ("openssl (dev)", "3.0.1-dev", "3.0.2-dev", 12, 24),
            ]
        );
    }

    #[test]
    fn link_targets_take_the_partners_basename() {
        let partners = HashMap::from([(
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-etc".to_owned(),
            "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-etc".to_owned(),
        )]);
        assert_eq!(
            with_partners(
                b"/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-etc/etc/x",
                &StoreDir::NIX,
                &partners
            ),
            b"/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-etc/etc/x"
        );
        assert_eq!(
            with_partners(
                b"/nix/store/cccccccccccccccccccccccccccccccc-etc",
                &StoreDir::NIX,
                &partners
            ),
            b"/nix/store/cccccccccccccccccccccccccccccccc-etc"
        );
        assert_eq!(
            with_partners(b"../lib", &StoreDir::NIX, &partners),
            b"../lib"
        );
    }
}
