//! The members a walk has seen, in bounded memory: names are kept only as
//! keyed hashes, with each member's kind and mode, or a symlink's target,
//! so `verify` can check parents and duplicates and resolve symlinks inside
//! the rootfs without holding any name.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

use super::WalkLimit;
use crate::archive::Member;
use crate::tar::MemberKind;

/// The most members a walk remembers (about 70 MiB of state, see
/// [`MemberTable`]); more is an error, to keep memory bounded.
pub const MAX_MEMBERS: u64 = 3_500_000;
/// The most bytes of symlink targets a walk remembers.
pub const MAX_LINK_TARGET_BYTES: usize = 32 << 20;
/// A member's metadata as the walk remembers it, to resolve symlinks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    /// What the member is.
    pub kind: MemberKind,
    /// Symlink target; empty otherwise.
    pub link_target: Vec<u8>,
    /// Permission bits (0 for symlinks).
    pub mode: u32,
    /// Owned by uid 0 and gid 0.
    pub root_owned: bool,
}

/// Every member seen, in about 17 bytes each: a 96-bit keyed hash of the
/// name (the table never holds names), and either the kind and mode packed
/// in 32 bits or, for a symlink, where its target is in one shared buffer.
#[derive(Default)]
pub struct MemberTable {
    hashers: [std::collections::hash_map::RandomState; 2],
    map: HashMap<[u32; 3], u32, BuildHasherDefault<KeyHasher>>,
    targets: Vec<u8>,
}

const SYMLINK_BIT: u32 = 1 << 31;
/// Set when the member is owned by 0:0 (symlink target offsets stay below
/// [`MAX_LINK_TARGET_BYTES`], well under this bit).
const ROOT_BIT: u32 = 1 << 30;

/// The table's keys are already random: use their first word as the hash.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 << 8) | u64::from(byte);
        }
    }
    fn write_u32(&mut self, word: u32) {
        self.0 = (self.0 << 32) | u64::from(word);
    }
}

impl MemberTable {
    fn key(&self, path: &[u8]) -> [u32; 3] {
        let [a, b] = &self.hashers;
        let (a, b) = (a.hash_one(path), b.hash_one(path));
        [a as u32, (a >> 32) as u32, b as u32]
    }

    /// How many members.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Whether a member is named `path`.
    pub fn contains(&self, path: &[u8]) -> bool {
        self.map.contains_key(&self.key(path))
    }

    /// Records a member; false if a member of that name was there (the
    /// first one is kept).
    pub(super) fn insert(&mut self, member: &Member) -> Result<bool, WalkLimit> {
        let key = self.key(&member.path);
        if self.map.contains_key(&key) {
            return Ok(false);
        }
        if self.map.len() as u64 >= MAX_MEMBERS {
            return Err(WalkLimit {
                what: "members",
                limit: MAX_MEMBERS,
            });
        }
        let root = if member.uid == 0 && member.gid == 0 {
            ROOT_BIT
        } else {
            0
        };
        let value = if member.kind == MemberKind::Symlink {
            let target = &member.link_target;
            if self.targets.len() + target.len() + 4 > MAX_LINK_TARGET_BYTES {
                return Err(WalkLimit {
                    what: "bytes of symlink targets",
                    limit: MAX_LINK_TARGET_BYTES as u64,
                });
            }
            let at = self.targets.len() as u32;
            self.targets
                .extend_from_slice(&(target.len() as u32).to_le_bytes());
            self.targets.extend_from_slice(target);
            SYMLINK_BIT | at | root
        } else {
            let (code, flag) = match member.kind {
                MemberKind::Regular => (0, 0),
                MemberKind::Directory => (1, 0),
                MemberKind::HardLink => (2, 0),
                MemberKind::CharDevice => (3, 0),
                MemberKind::BlockDevice => (4, 0),
                MemberKind::Fifo => (5, 0),
                MemberKind::Symlink => unreachable!("handled above"),
                // Any other flag (the reader hands out no extension
                // members, so only `Other`), kept as the flag itself.
                other => (6, other.flag()),
            };
            code | (member.mode & 0o7777) << 3 | u32::from(flag) << 16 | root
        };
        self.map.insert(key, value);
        Ok(true)
    }

    /// The metadata of the member named `path`.
    pub fn get(&self, path: &[u8]) -> Option<NodeInfo> {
        let value = *self.map.get(&self.key(path))?;
        let root_owned = value & ROOT_BIT != 0;
        if value & SYMLINK_BIT != 0 {
            let at = (value & !(SYMLINK_BIT | ROOT_BIT)) as usize;
            let len = u32::from_le_bytes(self.targets[at..at + 4].try_into().ok()?) as usize;
            return Some(NodeInfo {
                kind: MemberKind::Symlink,
                link_target: self.targets[at + 4..at + 4 + len].to_vec(),
                mode: 0,
                root_owned,
            });
        }
        let kind = match value & 7 {
            0 => MemberKind::Regular,
            1 => MemberKind::Directory,
            2 => MemberKind::HardLink,
            3 => MemberKind::CharDevice,
            4 => MemberKind::BlockDevice,
            5 => MemberKind::Fifo,
            _ => MemberKind::from_flag((value >> 16) as u8),
        };
        Some(NodeInfo {
            kind,
            link_target: Vec::new(),
            mode: (value >> 3) & 0o7777,
            root_owned,
        })
    }
}
