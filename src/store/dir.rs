//! The store directory (`/nix/store`) as a type, as [`super::StorePath`] is:
//! parsed once where it enters (`--store-dir`, a bundle, a tarball), so no
//! one downstream trims or checks it again.

use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};

/// The store directory Nix uses unless configured otherwise.
pub const DEFAULT_STORE_DIR: &str = "/nix/store";

/// An absolute, normalised store directory: no trailing slash, no empty,
/// `.` or `..` component, and not the root itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StoreDir(Cow<'static, str>);

/// Why a text is not a store directory.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("store directory {value:?} is not usable: {why}")]
pub struct StoreDirError {
    /// The text as given.
    pub value: String,
    /// What is wrong with it.
    pub why: &'static str,
}

impl StoreDir {
    /// `/nix/store`, [`DEFAULT_STORE_DIR`].
    pub const NIX: StoreDir = StoreDir(Cow::Borrowed(DEFAULT_STORE_DIR));

    /// Parses `text`: absolute, with repeated and trailing slashes folded
    /// (`/nix//store/` is `/nix/store`); a `.` or `..` component, the root
    /// and a NUL byte are refused.
    pub fn new(text: &str) -> Result<Self, StoreDirError> {
        let error = |why| StoreDirError {
            value: text.to_owned(),
            why,
        };
        if !text.starts_with('/') {
            return Err(error("it must be an absolute path"));
        }
        if text.contains('\0') {
            return Err(error("it contains a NUL byte"));
        }
        let mut normal = String::with_capacity(text.len());
        for component in text.split('/').filter(|c| !c.is_empty()) {
            if component == "." || component == ".." {
                return Err(error("it must not contain a `.` or `..` component"));
            }
            normal.push('/');
            normal.push_str(component);
        }
        if normal.is_empty() {
            return Err(error("the root directory is no store directory"));
        }
        Ok(StoreDir(Cow::Owned(normal)))
    }

    /// The directory as text, without a trailing slash.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The directory below the root, as a rootfs path names it
    /// (`nix/store`).
    pub fn relative(&self) -> &str {
        &self.0[1..]
    }

    /// Whether `path` is this directory or inside it: the whole name, so
    /// `/nix/store2` is not inside `/nix/store`.
    pub fn contains(&self, path: &str) -> bool {
        path.strip_prefix(self.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }
}

impl StoreDir {
    /// Where the store's files are read from: the directory itself, or the
    /// same path below `root` (as `nix --store local?root=ROOT` reads it).
    pub fn source(&self, root: Option<&Path>) -> PathBuf {
        match root {
            Some(root) => root.join(self.relative()),
            None => PathBuf::from(self.as_str()),
        }
    }
}

impl Default for StoreDir {
    /// [`StoreDir::NIX`].
    fn default() -> Self {
        StoreDir::NIX
    }
}

impl fmt::Display for StoreDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for StoreDir {
    type Err = StoreDirError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        StoreDir::new(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_directories_are_normalised() {
        assert_eq!(StoreDir::new("/nix/store").unwrap().as_str(), "/nix/store");
        assert_eq!(StoreDir::new("/nix/store/").unwrap().as_str(), "/nix/store");
        assert_eq!(
            StoreDir::new("//nix///store//").unwrap().as_str(),
            "/nix/store"
        );
        assert_eq!(StoreDir::default().as_str(), DEFAULT_STORE_DIR);
        assert_eq!(StoreDir::default().relative(), "nix/store");
    }

    #[test]
    fn what_is_not_a_store_directory_is_refused_naming_it() {
        for (text, why) in [
            ("nix/store", "absolute"),
            ("", "absolute"),
            ("/", "root"),
            ("//", "root"),
            ("/nix/../store", "`..`"),
            ("/nix/./store", "`.`"),
            ("/nix/st\0re", "NUL"),
        ] {
            let message = StoreDir::new(text).unwrap_err().to_string();
            assert!(message.contains(&format!("{text:?}")), "{message}");
            assert!(message.contains(why), "{text:?}: {message}");
        }
    }

    #[test]
    fn inside_means_the_whole_directory_name() {
        let dir = StoreDir::default();
        assert!(dir.contains("/nix/store"));
        assert!(dir.contains("/nix/store/abc-hello"));
        assert!(!dir.contains("/nix/store2/abc-hello"));
        assert!(!dir.contains("/nix"));
    }
}
