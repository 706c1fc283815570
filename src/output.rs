//! Atomic outputs: files that appear complete, or not at all.
//!
//! An [`AtomicOutput`] is written into an unnamed temporary file (Linux
//! `O_TMPFILE`) in the destination's directory. Such a file has no name, so
//! whatever ends the process (SIGKILL included) leaves nothing behind. At
//! commit the file is synced, linked to a hidden name `.NAME.PID.tmp` and
//! renamed over the destination, and the directory is synced.
//!
//! Where the file system has no `O_TMPFILE` (`EOPNOTSUPP`, `EISDIR`), the
//! temporary file is created under the hidden name at once; catchable
//! terminating signals remove it (see `crate::os::remove_on_signal`), and
//! every [`AtomicOutput::create`] first removes `.NAME.PID.tmp` files of the
//! same destination whose process is gone (after SIGKILL, or a power cut).
//!
//! [`commit_all`] makes several outputs one transaction (the tarball and its
//! manifest): every file is complete and synced, and linked under its hidden
//! name, before the first rename; a failure before that leaves every
//! destination as it was. Its renames hold a lock on the destinations'
//! directories, so that two runs' transactions never interleave.
//!
//! Destinations: a symlink is written through, as `cp` does (its target is
//! replaced, in the target's directory, and the link stays); a dangling
//! symlink, a directory, a fifo, a device or a socket is refused, never
//! turned into a regular file. The path is resolved here, name by name, and
//! a symlink that the kernel's `fs.protected_symlinks` would not follow for
//! this user (another user's link in a sticky world-writable directory such
//! as `/tmp`) is refused wherever it is on the way, sysctl or not: the file
//! replaced is one the user named, not one another user pointed at. A link
//! planted after the check is harmless: the rename replaces a name and never
//! follows one, and in a sticky directory another user can neither remove
//! a checked directory nor change a link that is not theirs.
//!
//! Standard output (`-`, `/dev/stdout`; see [`is_stdout`]) is no file to
//! replace: [`AtomicOutput`] refuses it, and a tarball goes there as a
//! [`Stream`], whose bytes leave as they are made but for the last
//! [`HELD_BACK`], sent only when the run has passed every check.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use crate::os;

/// Why an output could not be created or committed.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("output directory {} does not exist", dir.display())]
    MissingDirectory { dir: PathBuf },
    #[error("{} is a directory; give a file name", path.display())]
    IsDirectory { path: PathBuf },
    #[error("{} is {kind}, not a regular file; refusing to replace it", path.display())]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error("not writing through dangling symlink {} (it points to {})", path.display(), shown(target))]
    DanglingSymlink { path: PathBuf, target: PathBuf },
    #[error("{}not writing through symlink {} owned by uid {owner}: it is in the sticky world-writable directory {} (owned by uid {dir_owner}), where only links of the directory's owner or your own (uid {me}) are followed, as the kernel's fs.protected_symlinks does", by_way_of(destination, link), shown(link), shown(dir))]
    UntrustedSymlink {
        destination: PathBuf,
        link: PathBuf,
        owner: u32,
        dir: PathBuf,
        dir_owner: u32,
        me: u32,
    },
    #[error("cannot create a temporary file for {}: {source}", path.display())]
    Create { path: PathBuf, source: io::Error },
    #[error("writing {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot lock the directory {} to commit into it: {source}", dir.display())]
    Lock { dir: PathBuf, source: io::Error },
    #[error("cannot finish {}: {source}", path.display())]
    Commit { path: PathBuf, source: io::Error },
    #[error("{} is standard output, and this output is written to a file; give a file name", path.display())]
    StandardOutput { path: PathBuf },
    #[error("standard output is a terminal: not writing a compressed tarball there; redirect it to a file or a pipe")]
    Terminal,
    #[error("standard output: {0}")]
    Stream(#[source] io::Error),
}

/// Whether `destination` names standard output: `-`, as the readers take
/// `-` for standard input, or `/dev/stdout`, `/dev/fd/1`,
/// `/proc/self/fd/1` (a link to a pipe that [`AtomicOutput`] could not
/// replace).
pub fn is_stdout(destination: &Path) -> bool {
    let text = destination.as_os_str().as_encoded_bytes();
    matches!(
        text,
        b"-" | b"/dev/stdout" | b"/dev/fd/1" | b"/proc/self/fd/1"
    )
}

/// How many bytes at the end of a [`Stream`] wait for
/// [`Stream::complete`]. Eight is the gzip trailer (CRC-32 and size) of the
/// last member, less than the xz stream footer and than any zstd frame: a
/// run that fails after its stream started leaves a compressed stream that
/// every reader rejects as cut short. (Without compression the end is zero
/// padding, which tar readers do not miss: there only the exit status
/// tells.)
pub const HELD_BACK: usize = 8;

/// Standard output as a tarball's destination: written as the bytes come,
/// past a buffer, holding back the last [`HELD_BACK`] bytes until
/// [`Stream::complete`]. Dropped without it, the stream stays cut short.
pub struct Stream {
    out: io::BufWriter<File>,
    held: Vec<u8>,
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Stream")
    }
}

impl Stream {
    /// Standard output, unless it is a terminal (compressed bytes there
    /// are of no use, as gzip and zstd say). Also makes a file-size limit
    /// an ordinary write error (SIGXFSZ ignored), as for files.
    pub fn open() -> Result<Self, OutputError> {
        check_stdout_not_terminal()?;
        os::ignore_file_size_signal();
        use std::os::fd::AsFd;
        let fd = io::stdout()
            .as_fd()
            .try_clone_to_owned()
            .map_err(OutputError::Stream)?;
        Ok(Stream {
            out: io::BufWriter::with_capacity(1 << 20, File::from(fd)),
            held: Vec::with_capacity(2 * HELD_BACK),
        })
    }

    /// Sends the bytes held back and flushes: the stream is whole.
    pub fn complete(mut self) -> Result<(), OutputError> {
        let held = std::mem::take(&mut self.held);
        self.out
            .write_all(&held)
            .and_then(|()| self.out.flush())
            .map_err(OutputError::Stream)
    }
}

impl Write for Stream {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        if bytes.len() >= HELD_BACK {
            self.out.write_all(&self.held)?;
            self.held.clear();
            let (now, later) = bytes.split_at(bytes.len() - HELD_BACK);
            self.out.write_all(now)?;
            self.held.extend_from_slice(later);
        } else {
            self.held.extend_from_slice(bytes);
            let over = self.held.len().saturating_sub(HELD_BACK);
            self.out.write_all(&self.held[..over])?;
            self.held.drain(..over);
        }
        Ok(bytes.len())
    }

    /// Flushes what has been sent; the held bytes stay held.
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Bad usage when standard output is a terminal (see [`Stream::open`]):
/// checked before a run reads anything.
pub fn check_stdout_not_terminal() -> Result<(), OutputError> {
    use std::io::IsTerminal;
    if io::stdout().is_terminal() {
        return Err(OutputError::Terminal);
    }
    Ok(())
}

/// Where the bytes live until commit.
#[derive(Debug)]
enum Temporary {
    /// An `O_TMPFILE` file, not yet linked anywhere.
    Unnamed,
    /// A hidden file beside the destination, removed on drop and on
    /// terminating signals.
    Named {
        path: PathBuf,
        _on_signal: os::RemoveOnSignal,
    },
}

/// A temporary file that becomes its destination on [`AtomicOutput::commit`]
/// (or [`commit_all`]) and vanishes if dropped before that.
#[derive(Debug)]
pub struct AtomicOutput {
    /// The destination as the caller named it (for messages).
    destination: PathBuf,
    /// The file that is replaced: the destination, or a symlink's target.
    target: PathBuf,
    file: File,
    temporary: Option<Temporary>,
    /// Whether commit syncs the file and its directory.
    durable: bool,
}

impl AtomicOutput {
    /// Checks `destination` (see the module docs), removes stale temporary
    /// files of dead runs beside it, and creates the temporary file. Also
    /// makes a file-size limit an ordinary write error (SIGXFSZ ignored).
    pub fn create(destination: &Path) -> Result<Self, OutputError> {
        if is_stdout(destination) {
            return Err(OutputError::StandardOutput {
                path: destination.to_path_buf(),
            });
        }
        let target = resolve_destination(destination)?;
        let dir = parent_dir(&target);
        if !dir.is_dir() {
            return Err(OutputError::MissingDirectory {
                dir: parent_dir(destination),
            });
        }
        remove_stale_temporaries(&target);
        Self::create_at(destination, target, true)
    }

    /// A cached segment's file: the same atomic replacement (and SIGXFSZ
    /// ignored), without syncing (losing one in a crash costs only time) and
    /// without the checks a user's destination gets. The directory must
    /// exist.
    pub fn create_cached_segment(destination: &Path) -> Result<Self, OutputError> {
        Self::create_at(destination, destination.to_path_buf(), false)
    }

    fn create_at(destination: &Path, target: PathBuf, durable: bool) -> Result<Self, OutputError> {
        os::ignore_file_size_signal();
        let create_error = |source| OutputError::Create {
            path: destination.to_path_buf(),
            source,
        };
        let dir = parent_dir(&target);
        let unnamed = OpenOptions::new()
            .write(true)
            .mode(0o644)
            .custom_flags(libc::O_TMPFILE)
            .open(&dir);
        let (file, temporary) = match unnamed {
            Ok(file) => (file, Temporary::Unnamed),
            Err(error) if o_tmpfile_unsupported(&error) => {
                let path = hidden_name(&target);
                let on_signal = os::remove_on_signal(&path);
                let file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o644)
                    .open(&path)
                    .map_err(create_error)?;
                (
                    file,
                    Temporary::Named {
                        path,
                        _on_signal: on_signal,
                    },
                )
            }
            Err(error) => return Err(create_error(error)),
        };
        Ok(AtomicOutput {
            destination: destination.to_path_buf(),
            target,
            file,
            temporary: Some(temporary),
            durable,
        })
    }

    /// The file to write into.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// A second handle to the temporary file, for a writer that must own one.
    pub fn try_clone_file(&self) -> io::Result<File> {
        self.file.try_clone()
    }

    /// Writes all of `bytes`; an error names the destination.
    pub fn write_all(&mut self, bytes: &[u8]) -> Result<(), OutputError> {
        self.file
            .write_all(bytes)
            .map_err(|source| OutputError::Write {
                path: self.destination.clone(),
                source,
            })
    }

    /// The destination as given.
    pub fn destination(&self) -> &Path {
        &self.destination
    }

    /// Syncs the file, puts it at the destination and syncs the directory.
    /// Returns the file's size in bytes.
    pub fn commit(self) -> Result<u64, OutputError> {
        Ok(commit_all(vec![self], &mut |_| {})?[0])
    }

    fn commit_error(&self) -> impl Fn(io::Error) -> OutputError + '_ {
        |source| OutputError::Commit {
            path: self.destination.clone(),
            source,
        }
    }

    /// Syncs the data (when durable) and returns the size.
    fn sync(&self) -> Result<u64, OutputError> {
        if self.durable {
            self.file.sync_all().map_err(self.commit_error())?;
        }
        Ok(self.file.metadata().map_err(self.commit_error())?.len())
    }

    /// Gives an unnamed file its hidden name beside the target.
    fn stage(&mut self) -> Result<(), OutputError> {
        if let Some(Temporary::Unnamed) = self.temporary {
            let path = hidden_name(&self.target);
            let on_signal = os::remove_on_signal(&path);
            let linked = match os::link_unnamed_file(&self.file, &path) {
                // Left by a run of a process with our id: not ours to keep.
                Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
                    let _ = fs::remove_file(&path);
                    os::link_unnamed_file(&self.file, &path)
                }
                other => other,
            };
            linked.map_err(self.commit_error())?;
            self.temporary = Some(Temporary::Named {
                path,
                _on_signal: on_signal,
            });
        }
        Ok(())
    }

    /// Renames the staged file over the target.
    fn place(&mut self) -> Result<(), OutputError> {
        if let Some(Temporary::Named { path, .. }) = &self.temporary {
            fs::rename(path, &self.target).map_err(self.commit_error())?;
            // Renamed: nothing is left to remove.
            self.temporary = None;
        }
        Ok(())
    }
}

impl Drop for AtomicOutput {
    fn drop(&mut self) {
        if let Some(Temporary::Named { path, .. }) = &self.temporary {
            let _ = fs::remove_file(path);
        }
    }
}

/// Commits `outputs` as one transaction: each is synced and staged under its
/// hidden name before any is renamed over its destination; then the
/// directories are synced. Returns the sizes, in order. An error before the
/// renames leaves every destination as it was (and removes the temporary
/// files); the renames themselves fail only if the directory changes under
/// the run.
///
/// With more than one destination, their directories are locked (see
/// [`lock_directories`]) from staging to the end, so that a concurrent
/// run's renames into them come wholly before or after these: a tarball
/// and its manifest always come from the same run. `on_wait` hears of a
/// directory whose lock another run holds, before this one waits for it.
pub fn commit_all(
    mut outputs: Vec<AtomicOutput>,
    on_wait: &mut dyn FnMut(&Path),
) -> Result<Vec<u64>, OutputError> {
    let sizes = outputs
        .iter()
        .map(AtomicOutput::sync)
        .collect::<Result<Vec<_>, _>>()?;
    let durable: Vec<PathBuf> = outputs
        .iter()
        .filter(|o| o.durable)
        .map(|o| parent_dir(&o.target))
        .collect();
    let _locked = if durable.len() > 1 {
        lock_directories(durable, on_wait)?
    } else {
        Vec::new()
    };
    for output in &mut outputs {
        output.stage()?;
    }
    for output in &mut outputs {
        output.place()?;
    }
    let mut synced: Vec<PathBuf> = Vec::new();
    for output in outputs.iter().filter(|o| o.durable) {
        let dir = parent_dir(&output.target);
        if !synced.contains(&dir) {
            File::open(&dir)
                .and_then(|d| d.sync_all())
                .map_err(output.commit_error())?;
            synced.push(dir);
        }
    }
    Ok(sizes)
}

/// Locks each of `dirs` (`flock`, exclusive, on the directory itself: no
/// lock file is made or left, and a read-only directory can be locked),
/// in the order of their device and inode numbers, so that two runs that
/// lock the same directories never wait for each other in a circle. A
/// directory locked by another run is passed to `on_wait`, then waited
/// for. A file system without `flock` on directories (NFS emulates it with
/// POSIX locks, which a directory cannot take) is committed into unlocked,
/// as before there was a lock. The locks hold until the files are dropped.
fn lock_directories(
    dirs: Vec<PathBuf>,
    on_wait: &mut dyn FnMut(&Path),
) -> Result<Vec<File>, OutputError> {
    let lock_error = |dir: &Path| {
        let dir = dir.to_path_buf();
        move |source| OutputError::Lock { dir, source }
    };
    let mut opened = Vec::new();
    for dir in dirs {
        let file = File::open(&dir).map_err(lock_error(&dir))?;
        let metadata = file.metadata().map_err(lock_error(&dir))?;
        opened.push(((metadata.dev(), metadata.ino()), dir, file));
    }
    opened.sort_by_key(|(id, ..)| *id);
    opened.dedup_by_key(|(id, ..)| *id);
    for (_, dir, file) in &opened {
        let unsupported = |error: &io::Error| {
            matches!(
                error.raw_os_error(),
                Some(libc::EBADF | libc::ENOLCK | libc::EOPNOTSUPP | libc::ENOSYS | libc::EINVAL)
            )
        };
        match os::try_lock_exclusive(file) {
            Ok(true) => {}
            Ok(false) => {
                on_wait(dir);
                os::lock_exclusive(file).map_err(lock_error(dir))?;
            }
            Err(error) if unsupported(&error) => {}
            Err(error) => return Err(lock_error(dir)(error)),
        }
    }
    Ok(opened.into_iter().map(|(_, _, file)| file).collect())
}

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
fn shown(path: &Path) -> String {
    path.display().to_string()
}

/// `DESTINATION: ` when the link is another path than the destination.
fn by_way_of(destination: &Path, link: &Path) -> String {
    if std::path::absolute(destination).ok().as_deref() == Some(link) {
        String::new()
    } else {
        format!("{}: ", destination.display())
    }
}

/// The directory a path is in (`.` for a bare name).
fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".to_owned())
}

/// `.NAME.PID.tmp` beside `target`.
fn hidden_name(target: &Path) -> PathBuf {
    parent_dir(target).join(format!(".{}.{}.tmp", file_name(target), std::process::id()))
}

/// Whether opening with `O_TMPFILE` failed because the file system (or
/// kernel) does not support it, rather than for a reason that a named file
/// would hit too.
fn o_tmpfile_unsupported(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::EOPNOTSUPP | libc::EISDIR | libc::EINVAL)
    )
}

/// Removes `.NAME.PID.tmp` files beside `target` left by processes that no
/// longer exist. Files of live processes (a concurrent run) are kept.
fn remove_stale_temporaries(target: &Path) {
    let prefix = format!(".{}.", file_name(target));
    let Ok(entries) = fs::read_dir(parent_dir(target)) else {
        return;
    };
    let me = std::process::id();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(&prefix))
            .and_then(|rest| rest.strip_suffix(".tmp"))
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != me && !os::process_is_alive(pid) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn commit_replaces_and_drop_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let destination = dir.path().join("nixos.wsl");
        fs::write(&destination, b"old").unwrap();

        let mut failed = AtomicOutput::create(&destination).unwrap();
        failed.write_all(b"partial").unwrap();
        assert_eq!(names(dir.path()), ["nixos.wsl"], "the temporary is unnamed");
        drop(failed);
        assert_eq!(fs::read(&destination).unwrap(), b"old");
        assert_eq!(names(dir.path()), ["nixos.wsl"]);

        let mut output = AtomicOutput::create(&destination).unwrap();
        output.write_all(b"new").unwrap();
        assert_eq!(output.commit().unwrap(), 3);
        assert_eq!(fs::read(&destination).unwrap(), b"new");
        assert_eq!(names(dir.path()), ["nixos.wsl"]);
    }

    #[test]
    fn the_named_fallback_commits_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let destination = dir.path().join("nixos.wsl");
        fs::write(&destination, b"old").unwrap();
        // What a file system without O_TMPFILE gets.
        let named = |destination: &Path| {
            let path = hidden_name(destination);
            let file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
                .unwrap();
            AtomicOutput {
                destination: destination.to_path_buf(),
                target: destination.to_path_buf(),
                file,
                temporary: Some(Temporary::Named {
                    _on_signal: os::remove_on_signal(&path),
                    path,
                }),
                durable: true,
            }
        };
        let mut dropped = named(&destination);
        dropped.write_all(b"partial").unwrap();
        assert_eq!(names(dir.path()).len(), 2);
        drop(dropped);
        assert_eq!(names(dir.path()), ["nixos.wsl"]);
        let mut output = named(&destination);
        output.write_all(b"new").unwrap();
        output.commit().unwrap();
        assert_eq!(fs::read(&destination).unwrap(), b"new");
        assert_eq!(names(dir.path()), ["nixos.wsl"]);
    }

    #[test]
    fn stale_temporaries_of_dead_processes_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let destination = dir.path().join("nixos.wsl");
        // Process ids above the kernel's pid_max are never alive.
        let dead = dir.path().join(".nixos.wsl.2147483646.tmp");
        let live = dir.path().join(format!(
            ".nixos.wsl.{}.tmp",
            std::os::unix::process::parent_id()
        ));
        let other = dir.path().join(".other.wsl.2147483646.tmp");
        for path in [&dead, &live, &other] {
            fs::write(path, b"x").unwrap();
        }
        AtomicOutput::create(&destination).unwrap();
        assert!(!dead.exists());
        assert!(live.exists(), "a live process's file is kept");
        assert!(other.exists(), "another destination's file is kept");
    }

    #[test]
    fn a_stream_holds_back_its_last_bytes_until_complete() {
        use std::io::{Read, Seek};
        let mut held = Vec::new();
        let mut sent = Vec::new();
        // Pieces shorter and longer than what is held back, in every order.
        for split in [0, 1, 7, 8, 9, 20, 29] {
            let bytes: Vec<u8> = (0..30).collect();
            let (a, b) = bytes.split_at(split);
            let mut stream = Stream {
                out: io::BufWriter::new(tempfile::tempfile().unwrap()),
                held: Vec::new(),
            };
            for piece in [a, &[][..], b] {
                stream.write_all(piece).unwrap();
            }
            stream.flush().unwrap();
            held.push(stream.held.clone());
            let mut file = stream.out.into_inner().unwrap();
            file.rewind().unwrap();
            let mut out = Vec::new();
            file.read_to_end(&mut out).unwrap();
            sent.push(out);
        }
        for (held, sent) in held.iter().zip(&sent) {
            assert_eq!(held.as_slice(), &(22..30).collect::<Vec<u8>>()[..]);
            assert_eq!(sent.as_slice(), &(0..22).collect::<Vec<u8>>()[..]);
        }
    }

    #[test]
    fn standard_output_is_no_file_to_replace() {
        for name in ["-", "/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"] {
            assert!(is_stdout(Path::new(name)), "{name}");
            let err = AtomicOutput::create(Path::new(name)).unwrap_err();
            assert!(err.to_string().contains("standard output"), "{err}");
        }
        for name in ["./-", "-x", "/dev/stderr"] {
            assert!(!is_stdout(Path::new(name)), "{name}");
        }
    }

    #[test]
    fn missing_directory_is_named() {
        let err = AtomicOutput::create(Path::new("/nonexistent-dir/x.wsl")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent-dir"), "{err}");
    }

    #[test]
    fn non_regular_destinations_are_refused() {
        let err = AtomicOutput::create(Path::new("/dev/null")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "/dev/null is a character device, not a regular file; refusing to replace it"
        );
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink("missing", &link).unwrap();
        let err = AtomicOutput::create(&link).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("not writing through dangling symlink"),
            "{err}"
        );
    }

    #[test]
    fn destinations_resolve_name_by_name_as_the_kernel_does() {
        use std::os::unix::fs::symlink;
        let tmp = tempfile::tempdir().unwrap();
        let dir = fs::canonicalize(tmp.path()).unwrap();
        fs::create_dir_all(dir.join("a/b")).unwrap();
        fs::write(dir.join("a/file"), b"x").unwrap();
        // `..` after a directory link leaves the link's target, not the link.
        symlink("a/b", dir.join("to-b")).unwrap();
        symlink("../file", dir.join("a/b/up")).unwrap();
        symlink("to-b/up", dir.join("chain")).unwrap();
        assert_eq!(
            resolve_destination(&dir.join("to-b/../file")).unwrap(),
            dir.join("a/file")
        );
        assert_eq!(
            resolve_destination(&dir.join("chain")).unwrap(),
            dir.join("a/file")
        );
        assert_eq!(
            resolve_destination(&dir.join("to-b/new.wsl")).unwrap(),
            dir.join("a/b/new.wsl")
        );
        // A loop ends as the kernel's does.
        symlink("loop2", dir.join("loop1")).unwrap();
        symlink("loop1", dir.join("loop2")).unwrap();
        let err = resolve_destination(&dir.join("loop1")).unwrap_err();
        assert!(err.to_string().contains("symbolic links"), "{err}");
        // A file used as a directory.
        let err = resolve_destination(&dir.join("a/file/x")).unwrap_err();
        assert!(err.to_string().contains("Not a directory"), "{err}");
    }

    #[test]
    fn a_transaction_waits_for_a_locked_directory_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        let mut first = AtomicOutput::create(&a).unwrap();
        first.write_all(b"a").unwrap();
        let mut second = AtomicOutput::create(&b).unwrap();
        second.write_all(b"b").unwrap();
        // Another run's lock on the directory.
        let held = File::open(dir.path()).unwrap();
        os::lock_exclusive(&held).unwrap();
        let (told, waiting) = std::sync::mpsc::channel();
        let committing = std::thread::spawn(move || {
            commit_all(vec![first, second], &mut |dir| {
                told.send(dir.to_path_buf()).unwrap()
            })
        });
        let waited_for = waiting.recv().unwrap();
        assert_eq!(waited_for, fs::canonicalize(dir.path()).unwrap());
        assert_eq!(names(dir.path()), Vec::<String>::new(), "nothing renamed");
        drop(held);
        assert_eq!(committing.join().unwrap().unwrap(), [1, 1]);
        assert_eq!(names(dir.path()), ["a", "b"]);
    }

    #[test]
    fn a_transaction_fails_whole_before_renaming() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        fs::write(&a, b"old a").unwrap();
        fs::write(&b, b"old b").unwrap();
        let mut first = AtomicOutput::create(&a).unwrap();
        first.write_all(b"new a").unwrap();
        let mut second = AtomicOutput::create(&b).unwrap();
        second.write_all(b"new b").unwrap();
        // The third output's hidden name is taken by a directory: its
        // staging fails, after the first two are staged but before any rename.
        let sub = dir.path().join("sub");
        fs::create_dir(&sub).unwrap();
        let mut third = AtomicOutput::create(&sub.join("c")).unwrap();
        third.write_all(b"c").unwrap();
        fs::create_dir(hidden_name(&third.target)).unwrap();
        let err = commit_all(vec![first, second, third], &mut |_| {}).unwrap_err();
        assert!(err.to_string().contains("sub/c"), "{err}");
        assert_eq!(fs::read(&a).unwrap(), b"old a");
        assert_eq!(fs::read(&b).unwrap(), b"old b");
        assert_eq!(names(dir.path()), ["a", "b", "sub"]);
        assert_eq!(names(&sub).len(), 1, "only the directory in the way");
    }
}
