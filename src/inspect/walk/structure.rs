//! The checks made member by member as the walk passes: names, duplicates,
//! parents before children, hard links, store owners and modes.

use super::*;

impl ArchiveWalk {
    /// Names, duplicates, parents, hard links, store owners and modes.
    pub(super) fn check_structure(&mut self, member: &Member) {
        let shown = member.display_path();
        let dotdot = member.path.split(|&b| b == b'/').any(|c| c == b"..");
        if member.raw_name.starts_with(b"/") || dotdot {
            self.problem(
                Check::TarFormat,
                format!(
                    "{shown}: the name \"{}\" is absolute or has a '..' component",
                    String::from_utf8_lossy(&member.raw_name)
                ),
            );
        }
        if !member.path.is_empty() {
            let parent = match member.path.iter().rposition(|&b| b == b'/') {
                Some(slash) => &member.path[..slash],
                None => &b""[..],
            };
            let parent_is_directory = self
                .members
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
}
