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
//! [`HELD_BACK`](stream::HELD_BACK), sent only when the run has passed every
//! check.
//!
//! The parts: `atomic.rs` (the temporary file, commit, the transaction),
//! `destination.rs` (what a destination name resolves to, and what is
//! refused), `stream.rs` (standard output).

mod atomic;
mod destination;
mod stream;
#[cfg(test)]
mod tests;

use std::io;
use std::path::PathBuf;

pub use atomic::{commit_all, AtomicOutput};
use destination::{by_way_of, shown};
pub use stream::{check_stdout_not_terminal, is_stdout, Stream};

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
