//! Owner overrides (`--chown PATH UID:GID`): numeric owners for a subtree of the rootfs.
//!
//! Same meaning as upstream's `tarballBuilder --chown`: the path and
//! everything below it get the owner. Paths are rootfs paths, with or without
//! the leading slash (`/home/nixos` or `home/nixos`, as upstream's
//! `chown -R "$root/$path"` takes both), never host paths. A rule must name
//! something below the root: an empty path (an unset shell variable) or `/`
//! would chown the store too. The plan refuses rules that reach the store,
//! Nix's database or the user tables, and rules naming a path that is not in
//! the rootfs.

use crate::entry::Entry;

/// Why an owner override (PATH UID:GID) was refused. It reads "owner
/// override DETAIL"; the CLI names its flag before [`Self::detail`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("owner override {}", self.detail())]
pub enum ChownRuleError {
    /// The path (as given) has a `.` or `..` component.
    DotComponent(String),
    /// The owner (as given) is not numeric UID:GID.
    BadOwner(String),
    /// The path is empty.
    EmptyPath,
    /// The path (as given) names the whole rootfs, `/`.
    WholeRootfs(String),
    /// `rule` is the override as [`ChownRule`] shows it.
    Protected {
        /// The override as [`ChownRule`] shows it.
        rule: String,
        /// What it reaches that must stay root's (the store, Nix's database, ...).
        what: &'static str,
    },
    /// The path is in neither the skeleton nor the extra files.
    NotInRootfs {
        /// The override as [`ChownRule`] shows it.
        rule: String,
        /// The rootfs path, without its leading slash.
        path: String,
    },
}

impl ChownRuleError {
    /// What is wrong, after the words naming the override.
    pub fn detail(&self) -> String {
        match self {
            ChownRuleError::DotComponent(path) => {
                format!("path \"{path}\" must not contain '.' or '..' components")
            }
            ChownRuleError::BadOwner(owner) => format!(
                "owner \"{owner}\" must be numeric UID:GID, such as 1000:100 (names are not looked up: this machine's users are not the rootfs's)"
            ),
            ChownRuleError::EmptyPath => "path is empty (an unset shell variable?); name a rootfs path such as /home/nixos".to_owned(),
            ChownRuleError::WholeRootfs(path) => format!(
                "\"{path}\" names the whole rootfs, which holds /nix/store (owned by root); name a path below it such as /home/nixos"
            ),
            ChownRuleError::Protected { rule, what } => format!(
                "{rule}: it reaches {what}, which must stay owned by root:root (verify rejects anything else)"
            ),
            ChownRuleError::NotInRootfs { rule, path } => format!(
                "{rule}: /{path} is not in the rootfs (neither the skeleton nor the extra files make it)"
            ),
        }
    }
}

/// One owner override.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChownRule {
    /// Rootfs path without the leading slash; never empty.
    path: Vec<u8>,
    pub uid: u32,
    pub gid: u32,
}

impl ChownRule {
    /// Parses the two arguments of `--chown PATH UID:GID`.
    pub fn parse(path: &str, owner: &str) -> Result<Self, ChownRuleError> {
        if path.is_empty() {
            return Err(ChownRuleError::EmptyPath);
        }
        let relative = path.trim_start_matches('/').trim_end_matches('/');
        if relative.is_empty() {
            return Err(ChownRuleError::WholeRootfs(path.to_owned()));
        }
        if relative
            .split('/')
            .any(|c| c == "." || c == ".." || c.is_empty())
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

    /// The rootfs path the rule names, without the leading slash.
    pub fn path(&self) -> &[u8] {
        &self.path
    }

    /// Whether the rule covers an entry at `path` (rootfs-relative).
    pub fn covers(&self, path: &[u8]) -> bool {
        path.starts_with(&self.path)
            && (path.len() == self.path.len() || path[self.path.len()] == b'/')
    }

    /// Whether the rule covers `path` or anything below it: true when either
    /// path is the other or an ancestor of it.
    pub fn reaches(&self, path: &[u8]) -> bool {
        self.covers(path)
            || (self.path.starts_with(path) && self.path.get(path.len()) == Some(&b'/'))
    }

    /// Sets the owner of `entry` if the rule covers it.
    pub fn apply(&self, entry: &mut Entry) {
        if self.covers(&entry.path) {
            entry.uid = self.uid;
            entry.gid = self.gid;
        }
    }
}

/// The rule as given: `/PATH UID:GID`.
impl std::fmt::Display for ChownRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "/{} {}:{}",
            String::from_utf8_lossy(&self.path),
            self.uid,
            self.gid
        )
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
    }

    #[test]
    fn reaches_ancestors_and_descendants() {
        let nix = ChownRule::parse("/nix", "1:1").unwrap();
        assert!(nix.reaches(b"nix/store"));
        let inside = ChownRule::parse("/nix/store/abc-x", "1:1").unwrap();
        assert!(inside.reaches(b"nix/store"));
        assert!(!ChownRule::parse("/nixos", "1:1")
            .unwrap()
            .reaches(b"nix/store"));
        assert!(!ChownRule::parse("/nix/var", "1:1")
            .unwrap()
            .reaches(b"nix/store"));
    }

    #[test]
    fn takes_upstream_spellings_and_rejects_bad_arguments_by_name() {
        assert_eq!(
            ChownRule::parse("home/x", "1:1"),
            ChownRule::parse("/home/x/", "1:1")
        );
        assert!(ChownRule::parse("/a/../b", "1:1").is_err());
        assert!(ChownRule::parse("/a//b", "1:1").is_err());
        let err = ChownRule::parse("/home", "nixos:users").unwrap_err();
        assert!(err.to_string().contains("nixos:users"));
        assert_eq!(ChownRule::parse("", "1:1"), Err(ChownRuleError::EmptyPath));
        let err = ChownRule::parse("/", "1:1").unwrap_err();
        assert_eq!(err, ChownRuleError::WholeRootfs("/".to_owned()));
        assert!(err.to_string().contains("whole rootfs"), "{err}");
    }
}
