//! Store paths as a type: a 32-character nix32 hash part and a name.
//!
//! Text from outside (closure files, CLI arguments) is parsed into a
//! [`StorePath`] once, at the edge; everything after that handles the type.
//! The store directory (`/nix/store`) is not part of the value: a
//! [`crate::store::Closure`] carries it, as a [`crate::store::StoreDir`].
//!
//! ```
//! use wsl_tarball::store::{StoreDir, StorePath, StorePathError};
//!
//! let store = StoreDir::NIX;
//!
//! let hello = StorePath::from_absolute(
//!     "/nix/store/7h7qgvs4kgzsn8a6rb273saxyqh4jxlz-hello-2.12/",
//!     &store,
//! )?;
//! assert_eq!(hello.hash_part(), "7h7qgvs4kgzsn8a6rb273saxyqh4jxlz");
//! assert_eq!(hello.name(), "hello-2.12");
//! assert_eq!(hello.to_absolute(&store), "/nix/store/7h7qgvs4kgzsn8a6rb273saxyqh4jxlz-hello-2.12");
//!
//! // A path inside a store object names the store object.
//! let inside = StorePath::from_absolute(
//!     "/nix/store/7h7qgvs4kgzsn8a6rb273saxyqh4jxlz-hello-2.12/bin/hello",
//!     &store,
//! );
//! assert!(matches!(inside, Err(StorePathError::InsideStorePath { .. })));
//! # Ok::<(), StorePathError>(())
//! ```

use std::fmt;

use super::{nixbase32, StoreDir};

/// Length of the hash part of a store path's basename.
pub const HASH_PART_LEN: usize = 32;
/// Longest name Nix accepts after the hash part and the dash.
pub const MAX_NAME_LEN: usize = 211;

/// Why a string is not a store path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorePathError {
    /// Not below the store directory (the path, the directory).
    #[error("\"{0}\" is not inside the store directory \"{1}\"")]
    NotInStore(String, String),
    #[error("\"{path}\" is inside store path {store_path}; give the store path itself")]
    /// Below a store path rather than one.
    InsideStorePath {
        /// The path as given.
        path: String,
        /// The store path it is inside.
        store_path: String,
    },
    #[error("\"{0}\" is too short to be a store path basename (<32-char hash>-<name>)")]
    /// Shorter than a hash part, a dash and a name.
    TooShort(String),
    #[error(
        "\"{0}\" has a hash part that is not 32 nix32 characters (0-9, a-z without e, o, u, t)"
    )]
    /// The hash part is not 32 nix32 characters.
    BadHashPart(String),
    #[error("\"{0}\" has no dash between the hash part and the name")]
    /// No dash after the hash part.
    MissingDash(String),
    #[error("\"{0}\" has an invalid name: {1}")]
    /// A name Nix refuses (the basename, why).
    BadName(String, &'static str),
}

/// One store object, identified by its basename `<hash>-<name>`.
///
/// Ordering is byte-wise on the basename, which is the order GNU tar's
/// `--sort=name` puts the entries of `/nix/store` in.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StorePath {
    basename: String,
}

impl StorePath {
    /// Parses a basename such as `7h7qgvs4kgzsn8a6rb273saxyqh4jxlz-hello-2.12`.
    pub fn from_basename(basename: &str) -> Result<Self, StorePathError> {
        let bytes = basename.as_bytes();
        if bytes.len() < HASH_PART_LEN + 2 {
            return Err(StorePathError::TooShort(basename.to_owned()));
        }
        if !bytes[..HASH_PART_LEN]
            .iter()
            .all(|&c| nixbase32::is_nix32_char(c))
        {
            return Err(StorePathError::BadHashPart(basename.to_owned()));
        }
        if bytes[HASH_PART_LEN] != b'-' {
            return Err(StorePathError::MissingDash(basename.to_owned()));
        }
        let name = &basename[HASH_PART_LEN + 1..];
        validate_name(name).map_err(|why| StorePathError::BadName(basename.to_owned(), why))?;
        Ok(StorePath {
            basename: basename.to_owned(),
        })
    }

    /// Parses an absolute path `<store_dir>/<basename>`, with or without
    /// trailing slashes. A path below a store object is rejected with an
    /// error naming the store path it is inside.
    pub fn from_absolute(path: &str, store_dir: &StoreDir) -> Result<Self, StorePathError> {
        let rest = path
            .strip_prefix(store_dir.as_str())
            .and_then(|rest| rest.strip_prefix('/'))
            .map(|rest| rest.trim_end_matches('/'))
            .filter(|rest| !rest.is_empty())
            .ok_or_else(|| StorePathError::NotInStore(path.to_owned(), store_dir.to_string()))?;
        match rest.split_once('/') {
            None => Self::from_basename(rest),
            Some((basename, _)) => {
                let inside = Self::from_basename(basename)?;
                Err(StorePathError::InsideStorePath {
                    path: path.to_owned(),
                    store_path: inside.to_absolute(store_dir),
                })
            }
        }
    }

    /// `<hash>-<name>`.
    pub fn basename(&self) -> &str {
        &self.basename
    }

    /// The 32-character nix32 hash part.
    pub fn hash_part(&self) -> &str {
        &self.basename[..HASH_PART_LEN]
    }

    /// The name after the hash part.
    pub fn name(&self) -> &str {
        &self.basename[HASH_PART_LEN + 1..]
    }

    /// The name split into a package name and a version, as Nix's
    /// `builtins.parseDrvName` does (see [`parse_drv_name`]).
    pub fn name_and_version(&self) -> (&str, &str) {
        parse_drv_name(self.name())
    }

    /// `<store_dir>/<basename>`.
    pub fn to_absolute(&self, store_dir: &StoreDir) -> String {
        format!("{store_dir}/{}", self.basename)
    }
}

/// Splits a store path name into a package name and a version the way
/// Nix's `builtins.parseDrvName` does: the version starts after the first
/// `-` followed by a digit; without one, the version is empty.
///
/// ```
/// use wsl_tarball::store::parse_drv_name;
/// assert_eq!(parse_drv_name("hello-2.12.1"), ("hello", "2.12.1"));
/// assert_eq!(parse_drv_name("nixos-system-nixos-24.05pre"), ("nixos-system-nixos", "24.05pre"));
/// assert_eq!(parse_drv_name("openssl-3.0.13-dev"), ("openssl", "3.0.13-dev"));
/// assert_eq!(parse_drv_name("etc"), ("etc", ""));
/// ```
pub fn parse_drv_name(name: &str) -> (&str, &str) {
    let bytes = name.as_bytes();
    match (0..bytes.len().saturating_sub(1))
        .find(|&i| bytes[i] == b'-' && bytes[i + 1].is_ascii_digit())
    {
        Some(dash) => (&name[..dash], &name[dash + 1..]),
        None => (name, ""),
    }
}

fn validate_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("the name is empty");
    }
    if name.len() > MAX_NAME_LEN {
        return Err("the name is longer than 211 bytes");
    }
    // Leading dots are allowed, as Nix allows them since NixOS/nix#9867
    // (`checkName` in libstore/path.cc), except for the names `.` and `..`
    // and names whose first dash-separated component is `.` or `..`.
    let first_component = name.split('-').next().unwrap_or(name);
    if first_component == "." || first_component == ".." {
        return Err("the name is, or begins with, the component \".\" or \"..\"");
    }
    if !name
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || b"+-._?=".contains(&c))
    {
        return Err("the name holds a character outside A-Z a-z 0-9 + - . _ ? =");
    }
    Ok(())
}

impl fmt::Display for StorePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.basename)
    }
}

impl fmt::Debug for StorePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StorePath({})", self.basename)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "7h7qgvs4kgzsn8a6rb273saxyqh4jxlz-hello-2.12";

    #[test]
    fn parses_basename_and_absolute() {
        let p = StorePath::from_basename(GOOD).unwrap();
        assert_eq!(p.hash_part(), "7h7qgvs4kgzsn8a6rb273saxyqh4jxlz");
        assert_eq!(p.name(), "hello-2.12");
        let abs = format!("/nix/store/{GOOD}");
        assert_eq!(
            StorePath::from_absolute(&abs, &StoreDir::new("/nix/store/").unwrap()).unwrap(),
            p
        );
        assert_eq!(p.to_absolute(&StoreDir::NIX), abs);
        // A trailing slash, as shell completion adds, names the same path.
        assert_eq!(
            StorePath::from_absolute(&format!("{abs}/"), &StoreDir::NIX).unwrap(),
            p
        );
        assert_eq!(
            StorePath::from_absolute(&format!("{abs}//"), &StoreDir::NIX).unwrap(),
            p
        );
    }

    #[test]
    fn accepts_leading_dots_as_nix_does() {
        // NixOS/nix#9867: a leading period is allowed unless the first
        // dash-separated component is `.` or `..`.
        for name in [
            ".hidden",
            "..a",
            "...",
            ".a-b",
            "..a-1.0",
            ".git-hooks",
            "a.-b",
        ] {
            let basename = format!("7h7qgvs4kgzsn8a6rb273saxyqh4jxlz-{name}");
            let path = StorePath::from_basename(&basename).unwrap();
            assert_eq!(path.name(), name);
        }
    }

    #[test]
    fn rejects_malformed_paths() {
        let bad_hash = "7h7qgvs4kgzsn8a6rb273saxyqh4jxle-hello";
        assert!(matches!(
            StorePath::from_basename(bad_hash),
            Err(StorePathError::BadHashPart(_))
        ));
        assert!(matches!(
            StorePath::from_basename("7h7qgvs4kgzsn8a6rb273saxyqh4jxlz_hello"),
            Err(StorePathError::MissingDash(_))
        ));
        for name in [".", "..", ".-a", "..-a", ".-", "..-"] {
            let basename = format!("7h7qgvs4kgzsn8a6rb273saxyqh4jxlz-{name}");
            assert_eq!(
                StorePath::from_basename(&basename).unwrap_err().to_string(),
                format!(
                    "\"{basename}\" has an invalid name: the name is, or begins with, the component \".\" or \"..\""
                ),
                "{name}"
            );
        }
        assert!(matches!(
            StorePath::from_basename("7h7qgvs4kgzsn8a6rb273saxyqh4jxlz-a b"),
            Err(StorePathError::BadName(..))
        ));
        let long = format!("7h7qgvs4kgzsn8a6rb273saxyqh4jxlz-{}", "a".repeat(212));
        assert!(StorePath::from_basename(&long).is_err());
        assert_eq!(
            StorePath::from_absolute(&format!("/nix/store/{GOOD}/bin/"), &StoreDir::NIX)
                .unwrap_err()
                .to_string(),
            format!(
                "\"/nix/store/{GOOD}/bin/\" is inside store path /nix/store/{GOOD}; give the store path itself"
            )
        );
        assert!(StorePath::from_absolute("/nix/store/", &StoreDir::NIX).is_err());
        assert!(StorePath::from_absolute("/nix/store//", &StoreDir::NIX).is_err());
        assert!(StorePath::from_absolute(&format!("/gnu/store/{GOOD}"), &StoreDir::NIX).is_err());
    }

    #[test]
    fn error_names_the_path() {
        let err = StorePath::from_basename("nope").unwrap_err();
        assert!(err.to_string().contains("\"nope\""), "{err}");
    }
}
