//! Resolving a destination name by name, as the kernel would, to the
//! regular file a write replaces, refusing symlinks another user planted
//! (`fs.protected_symlinks`) and anything that is not a regular file.

use std::ffi::OsString;
use std::fs::{self};
use std::io::{self};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

use crate::os;

use super::OutputError;

/// The most symlinks followed resolving one destination (the kernel's
/// limit, `MAXSYMLINKS`).
const MAX_SYMLINKS: usize = 40;

/// The file a write to `destination` replaces: `destination` itself, or
/// the end of its symlink chain, as a path without symlinks. Refuses what
/// is not (to be) a regular file, and every symlink on the way (in a
/// directory of the path, in the chain, or the destination itself) that
/// the kernel's `fs.protected_symlinks` rule would not let this user
/// follow, whether or not the sysctl is on: the write must not be steered
/// by a link another user planted in a shared directory such as `/tmp`.
pub fn resolve_destination(destination: &Path) -> Result<PathBuf, OutputError> {
    let create_error = |source| OutputError::Create {
        path: destination.to_path_buf(),
        source,
    };
    let absolute = std::path::absolute(destination).map_err(create_error)?;
    let me = os::effective_uid();
    // Resolved so far: a directory, with no symlink in it.
    let mut resolved = PathBuf::from("/");
    // Names still to walk, the next one last.
    let mut pending: Vec<OsString> = Vec::new();
    push_components(&mut pending, &absolute);
    let mut followed = 0;
    // Whether the destination itself (its last name) is a symlink.
    let mut through_link = false;
    let found = loop {
        let Some(name) = pending.pop() else {
            // The destination resolved to a directory ("/", "x/..").
            break Some(fs::metadata(&resolved).map_err(create_error)?);
        };
        if name == ".." {
            resolved.pop();
            continue;
        }
        let last = pending.is_empty();
        let candidate = resolved.join(&name);
        let metadata = match fs::symlink_metadata(&candidate) {
            Ok(metadata) => metadata,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                if through_link {
                    return Err(OutputError::DanglingSymlink {
                        path: destination.to_path_buf(),
                        target: fs::read_link(destination).unwrap_or_default(),
                    });
                }
                if !last {
                    return Err(OutputError::MissingDirectory {
                        dir: parent_dir(destination),
                    });
                }
                resolved = candidate;
                break None;
            }
            Err(error) => return Err(create_error(error)),
        };
        if metadata.file_type().is_symlink() {
            check_followable(destination, &candidate, &metadata, &resolved, me)?;
            followed += 1;
            if followed > MAX_SYMLINKS {
                return Err(create_error(io::Error::from_raw_os_error(libc::ELOOP)));
            }
            let target = fs::read_link(&candidate).map_err(create_error)?;
            through_link |= last;
            if target.is_absolute() {
                resolved = PathBuf::from("/");
            }
            push_components(&mut pending, &target);
            continue;
        }
        resolved = candidate;
        if last {
            break Some(metadata);
        }
        if !metadata.is_dir() {
            return Err(create_error(io::Error::from_raw_os_error(libc::ENOTDIR)));
        }
    };
    let Some(metadata) = found else {
        return Ok(resolved);
    };
    let file_type = metadata.file_type();
    let kind = if file_type.is_file() {
        return Ok(resolved);
    } else if file_type.is_dir() {
        return Err(OutputError::IsDirectory {
            path: destination.to_path_buf(),
        });
    } else if file_type.is_fifo() {
        "a fifo"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_block_device() {
        "a block device"
    } else if file_type.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    };
    Err(OutputError::NotRegular {
        path: destination.to_path_buf(),
        kind,
    })
}

/// Pushes `path`'s names onto `pending` so that the first is popped first
/// (`.` dropped; a root is the caller's business).
fn push_components(pending: &mut Vec<OsString>, path: &Path) {
    let names: Vec<OsString> = path
        .components()
        .filter_map(|component| match component {
            Component::Normal(name) => Some(name.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect();
    pending.extend(names.into_iter().rev());
}

/// The kernel's `fs.protected_symlinks` rule: in a sticky world-writable
/// directory, a symlink is followed only if the follower or the
/// directory's owner owns it.
fn check_followable(
    destination: &Path,
    link: &Path,
    link_metadata: &fs::Metadata,
    dir: &Path,
    me: u32,
) -> Result<(), OutputError> {
    let dir_metadata = fs::metadata(dir).map_err(|source| OutputError::Create {
        path: destination.to_path_buf(),
        source,
    })?;
    let shared = dir_metadata.mode() & 0o1002 == 0o1002;
    let owner = link_metadata.uid();
    if !shared || owner == me || owner == dir_metadata.uid() {
        return Ok(());
    }
    Err(OutputError::UntrustedSymlink {
        destination: destination.to_path_buf(),
        link: link.to_path_buf(),
        owner,
        dir: dir.to_path_buf(),
        dir_owner: dir_metadata.uid(),
        me,
    })
}

/// A path another user may have spelt (a link's target), as text: raw, as
/// every library message is (the binary escapes the whole line once where
/// it prints it, see `crate::escape`).
pub(super) fn shown(path: &Path) -> String {
    path.display().to_string()
}

/// `DESTINATION: ` when the link is another path than the destination.
pub(super) fn by_way_of(destination: &Path, link: &Path) -> String {
    if std::path::absolute(destination).ok().as_deref() == Some(link) {
        String::new()
    } else {
        format!("{}: ", destination.display())
    }
}

/// The directory a path is in (`.` for a bare name).
pub(super) fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

pub(super) fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".to_owned())
}
