//! What the walk answers about the rootfs once it has passed: the tar
//! dialect, the store directory, the Nix database, symlinks resolved inside
//! the rootfs, the system profile and the skeleton files.

use super::*;

impl ArchiveWalk {
    /// Which tar dialect the headers are in.
    pub fn tar_format(&self) -> TarFormat {
        match (self.gnu_headers, self.ustar_headers) {
            (0, 0) => TarFormat::Empty,
            (_, 0) => TarFormat::Gnu,
            (0, _) => TarFormat::Ustar,
            _ => TarFormat::Mixed,
        }
    }

    /// The store directory as an absolute path.
    pub fn store_dir(&self) -> &StoreDir {
        &self.options.store_dir
    }

    /// Which Nix database the rootfs has.
    pub fn nix_database_kind(&self) -> NixDatabaseKind {
        let is_file = |path: &[u8]| {
            self.members
                .get(path)
                .is_some_and(|node| node.kind == MemberKind::Regular)
        };
        if is_file(b"nix/var/nix/db/db.sqlite") {
            NixDatabaseKind::Sqlite
        } else if is_file(b"nix-path-registration") {
            NixDatabaseKind::Registration
        } else {
            NixDatabaseKind::None
        }
    }

    /// Follows symlinks inside the rootfs (absolute targets are taken from
    /// the rootfs root, as inside the distribution). Returns the final path
    /// and its member, or `None` if it does not resolve.
    pub fn resolve(&self, path: &[u8]) -> Option<(Vec<u8>, NodeInfo)> {
        let mut pending: Vec<Vec<u8>> = split_components(path).into_iter().rev().collect();
        let mut resolved: Vec<Vec<u8>> = Vec::new();
        let mut hops = 0;
        while let Some(component) = pending.pop() {
            match component.as_slice() {
                b"." => continue,
                b".." => {
                    resolved.pop();
                    continue;
                }
                _ => resolved.push(component),
            }
            let joined = resolved.join(&b'/');
            let node = self.members.get(&joined)?;
            match node.kind {
                MemberKind::Symlink => {
                    hops += 1;
                    if hops > 40 {
                        return None;
                    }
                    resolved.pop();
                    if node.link_target.starts_with(b"/") {
                        resolved.clear();
                    }
                    pending.extend(split_components(&node.link_target).into_iter().rev());
                }
                MemberKind::Directory => {}
                _ if !pending.is_empty() => return None,
                _ => {}
            }
        }
        let joined = resolved.join(&b'/');
        let node = self.members.get(&joined)?;
        Some((joined, node))
    }

    /// The store path `/nix/var/nix/profiles/system` leads to.
    pub fn system_path(&self) -> Option<String> {
        let (path, _) = self.resolve(b"nix/var/nix/profiles/system")?;
        let (basename, below) = self.store_relative(&path)?;
        below
            .is_empty()
            .then(|| format!("{}/{}", self.store_dir(), String::from_utf8_lossy(basename)))
    }

    /// A skeleton file's presence and what it resolves to.
    pub fn skeleton_file(&self, path: &str) -> SkeletonFile {
        let relative = path.trim_start_matches('/').as_bytes();
        SkeletonFile {
            path: path.to_owned(),
            present: self.exists(relative),
            resolves_to: self.resolve(relative).map(|(_, node)| node.kind.describe()),
        }
    }

    /// Whether `path` names a member, its parent directories followed
    /// through symlinks as `lstat` does (`/sbin/init` with `/sbin -> /bin`).
    pub(super) fn exists(&self, path: &[u8]) -> bool {
        if self.members.contains(path) {
            return true;
        }
        let Some(slash) = path.iter().rposition(|&b| b == b'/') else {
            return false;
        };
        match self.resolve(&path[..slash]) {
            Some((mut parent, node)) if node.kind == MemberKind::Directory => {
                if !parent.is_empty() {
                    parent.push(b'/');
                }
                parent.extend_from_slice(&path[slash + 1..]);
                self.members.contains(&parent)
            }
            _ => false,
        }
    }
}

fn split_components(path: &[u8]) -> Vec<Vec<u8>> {
    path.split(|&b| b == b'/')
        .filter(|c| !c.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}
