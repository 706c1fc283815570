//! Atomic output: write beside the destination, fsync, rename.
//!
//! The archive is written to a hidden temporary file in the destination's
//! directory and renamed over the destination only once it is complete and
//! synced, so a failed run never leaves a partial file and never clobbers an
//! existing one. If the process is interrupted (SIGINT, SIGTERM, SIGHUP) the
//! signal handler unlinks the temporary file before the process exits.

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicPtr, Ordering};

/// Why the output could not be created or committed.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("output directory {} does not exist", dir.display())]
    MissingDirectory { dir: PathBuf },
    #[error("{} is a directory; give a file name for the tarball", path.display())]
    IsDirectory { path: PathBuf },
    #[error("cannot create {}: {source}", path.display())]
    Create { path: PathBuf, source: io::Error },
    #[error("cannot finish {}: {source}", path.display())]
    Commit { path: PathBuf, source: io::Error },
}

/// A temporary file that becomes `destination` on [`AtomicOutput::commit`]
/// and is removed if dropped before that.
#[derive(Debug)]
pub struct AtomicOutput {
    destination: PathBuf,
    temporary: PathBuf,
    file: Option<File>,
}

impl AtomicOutput {
    /// Creates the temporary file beside `destination`.
    pub fn create(destination: &Path) -> Result<Self, OutputError> {
        if destination.is_dir() {
            return Err(OutputError::IsDirectory {
                path: destination.to_path_buf(),
            });
        }
        let dir = match destination.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !dir.is_dir() {
            return Err(OutputError::MissingDirectory { dir });
        }
        let file_name = destination
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "nixos.wsl".to_owned());
        let temporary = dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
        // Registered first, so an interrupt right after creation still
        // removes the file (unlinking a name not yet created is harmless).
        register_for_interrupt_cleanup(&temporary);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&temporary)
            .map_err(|source| {
                unregister_interrupt_cleanup();
                OutputError::Create {
                    path: temporary.clone(),
                    source,
                }
            })?;
        Ok(AtomicOutput {
            destination: destination.to_path_buf(),
            temporary,
            file: Some(file),
        })
    }

    /// The file to write into.
    pub fn file(&self) -> &File {
        self.file
            .as_ref()
            .expect("the file lives until commit or drop")
    }

    /// A second handle to the temporary file, for a writer that must own one.
    pub fn try_clone_file(&self) -> io::Result<File> {
        self.file().try_clone()
    }

    pub fn destination(&self) -> &Path {
        &self.destination
    }

    /// Syncs the data, renames it over the destination and syncs the
    /// directory. Returns the final size in bytes.
    pub fn commit(mut self) -> Result<u64, OutputError> {
        let commit_error = |source| OutputError::Commit {
            path: self.destination.clone(),
            source,
        };
        let file = self.file.take().expect("commit runs once");
        file.sync_all().map_err(commit_error)?;
        let size = file.metadata().map_err(commit_error)?.len();
        drop(file);
        fs::rename(&self.temporary, &self.destination).map_err(commit_error)?;
        unregister_interrupt_cleanup();
        if let Some(dir) = self
            .destination
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
        {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(commit_error)?;
        }
        Ok(size)
    }
}

impl Drop for AtomicOutput {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.temporary);
            unregister_interrupt_cleanup();
        }
    }
}

/// The temporary file the signal handler removes, as a leaked C string.
static PENDING_TEMPORARY: AtomicPtr<libc::c_char> = AtomicPtr::new(std::ptr::null_mut());

fn register_for_interrupt_cleanup(path: &Path) {
    let Ok(c_path) = CString::new(path.as_os_str().as_bytes()) else {
        return;
    };
    PENDING_TEMPORARY.store(c_path.into_raw(), Ordering::SeqCst);
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only calls async-signal-safe functions.
        unsafe {
            libc::signal(
                signal,
                remove_temporary_and_exit as *const () as libc::sighandler_t,
            );
        }
    }
}

fn unregister_interrupt_cleanup() {
    let previous = PENDING_TEMPORARY.swap(std::ptr::null_mut(), Ordering::SeqCst);
    if !previous.is_null() {
        // SAFETY: the pointer came from CString::into_raw and is no longer shared.
        drop(unsafe { CString::from_raw(previous) });
    }
}

extern "C" fn remove_temporary_and_exit(signal: libc::c_int) {
    let path = PENDING_TEMPORARY.swap(std::ptr::null_mut(), Ordering::SeqCst);
    // SAFETY: unlink and _exit are async-signal-safe; the path is a valid C string.
    unsafe {
        if !path.is_null() {
            libc::unlink(path);
        }
        libc::_exit(128 + signal);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn commit_replaces_and_drop_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let destination = dir.path().join("nixos.wsl");
        fs::write(&destination, b"old").unwrap();

        let failed = AtomicOutput::create(&destination).unwrap();
        failed.file().write_all(b"partial").unwrap();
        drop(failed);
        assert_eq!(fs::read(&destination).unwrap(), b"old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);

        let output = AtomicOutput::create(&destination).unwrap();
        output.file().write_all(b"new").unwrap();
        assert_eq!(output.commit().unwrap(), 3);
        assert_eq!(fs::read(&destination).unwrap(), b"new");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn missing_directory_is_named() {
        let err = AtomicOutput::create(Path::new("/nonexistent-dir/x.wsl")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent-dir"), "{err}");
    }
}
