//! Whether a cache directory is private: only the running user can write
//! or replace it (see the module docs of `crate::cache`), and making it so.

use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::CacheError;

/// A cache directory that someone besides the running user can write (or
/// replace), so anything in it may be planted: see the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotPrivate {
    /// The cache directory, as given.
    pub dir: PathBuf,
    /// The directory at fault: `None` for the cache directory itself,
    /// otherwise one of its parents.
    pub parent: Option<PathBuf>,
    pub owner: u32,
    /// The owner's name in /etc/passwd, if it has one.
    pub owner_name: Option<String>,
    /// Permission bits (`0o7777`).
    pub mode: u32,
}

impl fmt::Display for NotPrivate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Raw, as every library message: the binary escapes the line once.
        let shown = |path: &Path| path.display().to_string();
        write!(f, "cache directory {} is not private: ", shown(&self.dir))?;
        match &self.parent {
            None => f.write_str("it")?,
            Some(parent) => write!(f, "its parent {}", shown(parent))?,
        }
        f.write_str(" is owned by ")?;
        match &self.owner_name {
            Some(name) => write!(f, "{} (uid {})", name, self.owner)?,
            None => write!(f, "uid {}", self.owner)?,
        }
        write!(f, " with mode {:04o}; ", self.mode)?;
        match &self.parent {
            None => f.write_str(
                "a cache is used only when no one else can write it (owned by you, not writable by group or others)",
            ),
            Some(_) => f.write_str(
                "a cache is used only when no one else can replace it (its parents owned by you or root, not writable by group or others unless sticky, as /tmp is)",
            ),
        }
    }
}

impl std::error::Error for NotPrivate {}

/// Makes `dir` and whichever of its parents are missing, each mode 0700
/// whatever the umask (a umask can take the owner's bits away too).
pub(super) fn create_private(dir: &Path) -> io::Result<()> {
    let mut missing = Vec::new();
    let mut at = dir;
    while let Err(error) = fs::symlink_metadata(at) {
        if error.kind() != io::ErrorKind::NotFound {
            return Err(error);
        }
        missing.push(at);
        match at.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => at = parent,
            _ => break,
        }
    }
    for path in missing.into_iter().rev() {
        match fs::DirBuilder::new().mode(0o700).create(path) {
            Ok(()) => fs::set_permissions(path, fs::Permissions::from_mode(0o700))?,
            // Made meanwhile by someone else: judged as any other.
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// The real path of `dir` if only `uid` can write it: owned by `uid`, not
/// writable by group or others, and every parent owned by `uid` or root and
/// not writable by group or others unless sticky (in a sticky directory no
/// one else can rename or remove what `uid` owns, so `/tmp` is fine).
///
/// When `dir` is not there yet, `None` if what would be made there would
/// be private: its nearest existing parent and that one's parents pass the
/// parents' rule (so nothing is made where it could not be used).
pub(super) fn check_private(dir: &Path, uid: u32) -> Result<Option<PathBuf>, CacheError> {
    let io_error = |source| CacheError::Io {
        dir: dir.to_path_buf(),
        source,
    };
    let mut existing = dir;
    loop {
        match fs::symlink_metadata(existing) {
            Ok(_) => break,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(io_error(error)),
        }
        existing = match existing.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
    }
    let exists = existing == dir;
    let real = fs::canonicalize(existing).map_err(io_error)?;
    let not_private = |parent: Option<&Path>, metadata: &fs::Metadata| {
        CacheError::NotPrivate(Box::new(NotPrivate {
            dir: dir.to_path_buf(),
            parent: parent.map(Path::to_path_buf),
            owner: metadata.uid(),
            owner_name: user_name(metadata.uid()),
            mode: metadata.mode() & 0o7777,
        }))
    };
    if exists {
        let metadata = fs::metadata(&real).map_err(io_error)?;
        if metadata.uid() != uid || metadata.mode() & 0o022 != 0 {
            return Err(not_private(None, &metadata));
        }
    }
    for parent in real.ancestors().skip(usize::from(exists)) {
        let metadata = fs::metadata(parent).map_err(io_error)?;
        let owner_trusted = metadata.uid() == uid || metadata.uid() == 0;
        let others_write = metadata.mode() & 0o022 != 0 && metadata.mode() & 0o1000 == 0;
        if !owner_trusted || others_write {
            return Err(not_private(Some(parent), &metadata));
        }
    }
    Ok(exists.then_some(real))
}

/// The name /etc/passwd gives `uid`, for messages.
fn user_name(uid: u32) -> Option<String> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        (fields.nth(1)?.parse::<u32>().ok()? == uid).then(|| name.to_owned())
    })
}
