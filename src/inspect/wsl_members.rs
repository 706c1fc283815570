//! What a walk records, beyond its member table, for the `wsl-format`
//! check: the members of `*.target.wants` directories (where systemd units
//! are enabled) and the names of extended attributes, each with the first
//! member that has it. Both bounded.

use std::collections::BTreeMap;

use crate::archive::Member;

/// The most `.target.wants` members recorded (a NixOS system has a few
/// hundred).
const MAX_WANTS: usize = 4096;
/// The most distinct extended attribute names recorded.
const MAX_XATTR_NAMES: usize = 64;

/// Members of `.target.wants` directories and extended attribute names.
#[derive(Debug, Default)]
pub struct WslMembers {
    /// Paths of members whose directory's name ends in `.target.wants`,
    /// in archive order.
    pub wants: Vec<Vec<u8>>,
    /// Such members not recorded (beyond [`MAX_WANTS`]).
    pub wants_dropped: u64,
    /// Extended attribute name, and the first member that has it.
    pub xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl WslMembers {
    /// Records what `member` adds.
    pub fn observe(&mut self, member: &Member) {
        let path = member.path.as_slice();
        if let Some(slash) = path.iter().rposition(|&b| b == b'/') {
            if path[..slash].ends_with(b".target.wants") {
                if self.wants.len() < MAX_WANTS {
                    self.wants.push(path.to_vec());
                } else {
                    self.wants_dropped += 1;
                }
            }
        }
        for name in &member.xattrs {
            if self.xattrs.len() < MAX_XATTR_NAMES || self.xattrs.contains_key(name) {
                self.xattrs
                    .entry(name.clone())
                    .or_insert_with(|| path.to_vec());
            }
        }
    }
}
