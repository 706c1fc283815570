//! The [`AtomicOutput`]: an unnamed (or hidden) temporary file that becomes
//! its destination at commit, alone or with others in one transaction
//! ([`commit_all`]), and the clean-up of temporaries that dead runs left.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::os;

use super::destination::{file_name, parent_dir, resolve_destination};
use super::stream::is_stdout;
use super::OutputError;

/// Where the bytes live until commit.
#[derive(Debug)]
pub(super) enum Temporary {
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
    pub(super) destination: PathBuf,
    /// The file that is replaced: the destination, or a symlink's target.
    pub(super) target: PathBuf,
    pub(super) file: File,
    pub(super) temporary: Option<Temporary>,
    /// Whether commit syncs the file and its directory.
    pub(super) durable: bool,
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

/// `.NAME.PID.tmp` beside `target`.
pub(super) fn hidden_name(target: &Path) -> PathBuf {
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
