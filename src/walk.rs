//! Walking a host directory tree into rootfs entries.
//!
//! The walk is depth-first with each directory's names sorted byte-wise:
//! exactly the order of GNU tar's `--sort=name`. Modes are taken from
//! `lstat`, symlinks stay symlinks, and names stay raw bytes. Only
//! directories, regular files and symlinks can be archived; anything else is
//! an error naming the file.

use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::entry::{Content, Entry, EntryKind};

/// Why a tree could not be walked.
#[derive(Debug, thiserror::Error)]
pub enum TreeWalkError {
    #[error("cannot read {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{} is a {kind}; only directories, regular files and symlinks can go into the rootfs", path.display())]
    UnsupportedFileType { path: PathBuf, kind: &'static str },
}

/// Walks `source` (a file, symlink or directory on the host) and returns its
/// entries in archive order, named `archive_path` and below.
pub fn walk_tree(source: &Path, archive_path: &[u8]) -> Result<Vec<Entry>, TreeWalkError> {
    let mut entries = Vec::new();
    walk_into(source, archive_path.to_vec(), &mut entries)?;
    Ok(entries)
}

fn walk_into(
    source: &Path,
    archive_path: Vec<u8>,
    out: &mut Vec<Entry>,
) -> Result<(), TreeWalkError> {
    let io_error = |source_error| TreeWalkError::Io {
        path: source.to_path_buf(),
        source: source_error,
    };
    let metadata = fs::symlink_metadata(source).map_err(io_error)?;
    let file_type = metadata.file_type();
    let mode = metadata.mode() & 0o7777;
    if file_type.is_dir() {
        out.push(Entry::directory(archive_path.clone(), mode));
        let mut names: Vec<_> = fs::read_dir(source)
            .map_err(io_error)?
            .map(|entry| entry.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(io_error)?;
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for name in names {
            let mut child_path = archive_path.clone();
            if !child_path.is_empty() {
                child_path.push(b'/');
            }
            child_path.extend_from_slice(name.as_bytes());
            walk_into(&source.join(&name), child_path, out)?;
        }
    } else if file_type.is_symlink() {
        let target = fs::read_link(source).map_err(io_error)?;
        let mut entry = Entry::symlink(archive_path, target.as_os_str().as_bytes());
        entry.mode = mode;
        out.push(entry);
    } else if file_type.is_file() {
        out.push(Entry {
            path: archive_path,
            kind: EntryKind::File {
                size: metadata.len(),
                content: Content::Disk(source.to_path_buf()),
            },
            mode,
            uid: 0,
            gid: 0,
        });
    } else {
        let kind = if file_type.is_fifo() {
            "named pipe"
        } else if file_type.is_socket() {
            "socket"
        } else if file_type.is_block_device() {
            "block device"
        } else {
            "character device"
        };
        return Err(TreeWalkError::UnsupportedFileType {
            path: source.to_path_buf(),
            kind,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;
    use std::os::unix::fs::symlink;

    #[test]
    fn walks_depth_first_in_byte_order_with_raw_names() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir(root.join("b")).unwrap();
        fs::write(root.join("b/x"), b"x").unwrap();
        fs::write(root.join("B"), b"upper").unwrap();
        fs::write(root.join("a.txt"), b"a").unwrap();
        fs::write(root.join(OsStr::from_bytes(b"\xff\xfe")), b"raw").unwrap();
        symlink("../target", root.join("link")).unwrap();

        let entries = walk_tree(root, b"top").unwrap();
        let names: Vec<&[u8]> = entries.iter().map(|e| e.path.as_slice()).collect();
        assert_eq!(
            names,
            vec![
                &b"top"[..],
                b"top/B",
                b"top/a.txt",
                b"top/b",
                b"top/b/x",
                b"top/link",
                b"top/\xff\xfe"
            ]
        );
        assert_eq!(
            entries[5].kind,
            EntryKind::Symlink {
                target: b"../target".to_vec()
            }
        );
        assert!(matches!(entries[1].kind, EntryKind::File { size: 5, .. }));
    }

    #[test]
    #[allow(unsafe_code)] // mkfifo(3) to make the named pipe under test
    fn refuses_a_named_pipe_and_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let c_path = std::ffi::CString::new(fifo.as_os_str().as_bytes()).unwrap();
        // SAFETY: `c_path` is a valid NUL-terminated string for the call.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o644) }, 0);
        let err = walk_tree(dir.path(), b"x").unwrap_err();
        assert!(
            err.to_string().contains("pipe") && err.to_string().contains("named pipe"),
            "{err}"
        );
    }

    #[test]
    fn missing_source_names_the_path() {
        let err = walk_tree(Path::new("/nonexistent/wsl-tarball-test"), b"x").unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/wsl-tarball-test"),
            "{err}"
        );
    }
}
