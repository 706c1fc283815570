//! `--chown PATH UID:GID`: numeric owners for a subtree of the rootfs.
//!
//! Same meaning as upstream's `tarballBuilder --chown`: the path and
//! everything below it get the owner. Paths are rootfs paths, with or without
//! the leading slash (`/home/nixos` or `home/nixos`, as upstream's
//! `chown -R "$root/$path"` takes both), never host paths.

use crate::entry::Entry;

/// Why a `--chown` argument was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChownRuleError {
    #[error("--chown path {0:?} must not contain '.' or '..' components")]
    DotComponent(String),
    #[error("--chown owner {0:?} must be numeric UID:GID, such as 1000:100")]
    BadOwner(String),
}

/// One owner override.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChownRule {
    /// Rootfs path without the leading slash; empty for the whole rootfs.
    path: Vec<u8>,
    pub uid: u32,
    pub gid: u32,
}

impl ChownRule {
    /// Parses the two arguments of `--chown PATH UID:GID`.
    pub fn parse(path: &str, owner: &str) -> Result<Self, ChownRuleError> {
        let relative = path.trim_start_matches('/').trim_end_matches('/');
        if relative
            .split('/')
            .any(|c| c == "." || c == ".." || (c.is_empty() && !relative.is_empty()))
        {
            return Err(ChownRuleError::DotComponent(path.to_owned()));
        }
        let bad_owner = || ChownRuleError::BadOwner(owner.to_owned());
        let (uid, gid) = owner.split_once(':').ok_or_else(bad_owner)?;
        Ok(ChownRule {
            path: relative.as_bytes().to_vec(),
            uid: uid.parse().map_err(|_| bad_owner())?,
            gid: gid.parse().map_err(|_| bad_owner())?,
        })
    }

    /// Whether the rule covers an entry at `path` (rootfs-relative).
    pub fn covers(&self, path: &[u8]) -> bool {
        self.path.is_empty()
            || (path.starts_with(&self.path)
                && (path.len() == self.path.len() || path[self.path.len()] == b'/'))
    }

    /// Sets the owner of `entry` if the rule covers it.
    pub fn apply(&self, entry: &mut Entry) {
        if self.covers(&entry.path) {
            entry.uid = self.uid;
            entry.gid = self.gid;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covers_the_path_and_below_only() {
        let rule = ChownRule::parse("/home/nixos/", "1000:100").unwrap();
        assert!(rule.covers(b"home/nixos"));
        assert!(rule.covers(b"home/nixos/.bashrc"));
        assert!(!rule.covers(b"home/nixos2"));
        assert!(!rule.covers(b"home"));
        assert!(ChownRule::parse("/", "1:1").unwrap().covers(b"etc"));
    }

    #[test]
    fn takes_upstream_spellings_and_rejects_bad_arguments_by_name() {
        assert_eq!(
            ChownRule::parse("home/x", "1:1"),
            ChownRule::parse("/home/x/", "1:1")
        );
        assert!(ChownRule::parse("/a/../b", "1:1").is_err());
        let err = ChownRule::parse("/home", "nixos:users").unwrap_err();
        assert!(err.to_string().contains("nixos:users"));
    }
}
