//! Reading the files a user hands the tool (closure metadata, facts, icons,
//! configuration files) through a hard limit on the bytes actually read.
//!
//! A size from `metadata()` is no guard: a device such as `/dev/zero` or a
//! pipe reports 0 and then never ends. [`read_limited`] counts what it reads
//! and stops one byte past the limit, so an endless or oversized input is an
//! error naming the file and the limit, never gigabytes of memory.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// The largest closure file read: `nix path-info --json -r` of a large
/// desktop closure is a few MiB.
pub const MAX_CLOSURE_BYTES: u64 = 256 << 20;
/// The largest facts file read (users, `/etc` settings and paths).
pub const MAX_FACTS_BYTES: u64 = 64 << 20;

/// Why an input file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("{} is larger than the limit of {limit} bytes for {what}", path.display())]
    TooLarge {
        path: PathBuf,
        what: &'static str,
        limit: u64,
    },
}

/// Reads all of `path`, which may be a regular file, a pipe or a device,
/// failing with [`InputError::TooLarge`] once more than `limit` bytes have
/// been read. `what` names the input in that error ("a closure file").
pub fn read_limited(path: &Path, limit: u64, what: &'static str) -> Result<Vec<u8>, InputError> {
    let read_error = |source| InputError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(read_error)?;
    read_limited_from(file, path, limit, what)
}

/// [`read_limited`] on an open reader; `path` names it in errors.
pub fn read_limited_from(
    reader: impl Read,
    path: &Path,
    limit: u64,
    what: &'static str,
) -> Result<Vec<u8>, InputError> {
    let mut bytes = Vec::new();
    reader
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|source| InputError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    if bytes.len() as u64 > limit {
        return Err(InputError::TooLarge {
            path: path.to_path_buf(),
            what,
            limit,
        });
    }
    Ok(bytes)
}

/// Why a name from an input file is not a plain file name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileNameError {
    #[error("is empty")]
    Empty,
    #[error("is not a plain file name (it is `.` or `..`, or holds a `/`)")]
    NotPlain,
    #[error("holds a control character")]
    Control,
    #[error("is longer than 255 bytes")]
    TooLong,
}

/// `name`, a file name some input names (a manifest's `tarball.file`),
/// when it is a plain file name to look for beside that input: no
/// directory, no `.` or `..`, no control character.
pub fn plain_file_name(name: &str) -> Result<&str, FileNameError> {
    if name.is_empty() {
        return Err(FileNameError::Empty);
    }
    if name == "." || name == ".." || name.contains('/') || name.contains('\\') {
        return Err(FileNameError::NotPlain);
    }
    if name.chars().any(char::is_control) {
        return Err(FileNameError::Control);
    }
    if name.len() > 255 {
        return Err(FileNameError::TooLong);
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endless_device_stops_at_the_limit_with_the_file_named() {
        let error = read_limited(Path::new("/dev/zero"), 4096, "a facts file").unwrap_err();
        assert!(
            matches!(error, InputError::TooLarge { limit: 4096, .. }),
            "{error}"
        );
        assert_eq!(
            error.to_string(),
            "/dev/zero is larger than the limit of 4096 bytes for a facts file"
        );
    }

    #[test]
    fn a_file_at_the_limit_is_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x");
        std::fs::write(&path, vec![7u8; 100]).unwrap();
        assert_eq!(read_limited(&path, 100, "x").unwrap(), vec![7u8; 100]);
        assert!(read_limited(&path, 99, "x").is_err());
    }

    #[test]
    fn a_missing_file_is_named() {
        let error = read_limited(Path::new("/nonexistent/closure.json"), 10, "x").unwrap_err();
        assert!(error
            .to_string()
            .starts_with("cannot read /nonexistent/closure.json: "));
    }

    #[test]
    fn only_plain_file_names_pass() {
        assert_eq!(plain_file_name("nixos.wsl"), Ok("nixos.wsl"));
        assert_eq!(plain_file_name("..a.wsl"), Ok("..a.wsl"));
        for bad in ["", ".", "..", "../x.wsl", "a/b", "/etc/passwd", "a\\b"] {
            assert!(plain_file_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!(plain_file_name("a\nb"), Err(FileNameError::Control));
    }
}
