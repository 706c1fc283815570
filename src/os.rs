//! The few operating-system calls the standard library does not offer, as
//! safe functions. Every `unsafe` block of the crate is in this module.
//!
//! - [`link_unnamed_file`]: give an `O_TMPFILE` file a name (`linkat` of
//!   `/proc/self/fd/N` with `AT_SYMLINK_FOLLOW`, which needs no privilege).
//! - [`ignore_file_size_signal`]: a file-size limit (`ulimit -f`) becomes an
//!   ordinary `EFBIG` write error instead of killing the process.
//! - [`process_is_alive`]: whether a process id is in use (`kill(pid, 0)`).
//! - [`effective_uid`]: the user the kernel checks file access for.
//! - [`try_lock_exclusive`] and [`lock_exclusive`]: `flock(2)` (std's
//!   `File::lock` needs Rust 1.89; the crate supports 1.80).
//! - [`set_direct_io`] and [`AlignedBuffer`]: `O_DIRECT` writes, which
//!   bypass the page cache, from a buffer aligned as they require.
//! - [`GzipInflater`]: libdeflate's `gzip_decompress_ex`, which says how
//!   many input bytes a gzip member took (the `libdeflater` crate offers
//!   only the call that does not).
//! - [`remove_on_signal`]: named temporary files that a terminating signal
//!   (SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2) removes before the
//!   process dies of it. SIGKILL cannot be caught: that is why outputs are
//!   unnamed files wherever the file system allows (see `crate::output`).
//!
//! The signal clean-up uses `signal(2)` directly rather than `signal-hook`:
//! its `register` is `unsafe` as well (the action must be async-signal-safe),
//! and neither it nor its safe iterator thread keeps a signal the caller
//! ignores (`nohup`) ignored, which this module does.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a path holds a NUL byte"))
}

/// The alignment `O_DIRECT` transfers get here: buffer address, length and
/// file offset (4 KiB covers 512-byte and 4 KiB logical blocks).
pub const DIRECT_IO_ALIGN: usize = 4096;

/// Turns `O_DIRECT` on or off for `file`'s open file description (every
/// duplicate of the descriptor shares it).
pub fn set_direct_io(file: &File, on: bool) -> io::Result<()> {
    let fd = file.as_raw_fd();
    // SAFETY: fcntl with F_GETFL/F_SETFL takes an open descriptor we hold
    // and integer arguments; it touches no memory of ours.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    let wanted = if on {
        flags | libc::O_DIRECT
    } else {
        flags & !libc::O_DIRECT
    };
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, wanted) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// One aligned block of an [`AlignedBuffer`].
#[derive(Clone, Copy)]
#[repr(C, align(4096))]
struct AlignedBlock([u8; DIRECT_IO_ALIGN]);

/// A zeroed byte buffer whose start and length are multiples of
/// [`DIRECT_IO_ALIGN`], as `O_DIRECT` writes need.
pub struct AlignedBuffer {
    blocks: Vec<AlignedBlock>,
}

impl AlignedBuffer {
    /// A buffer of `blocks` × [`DIRECT_IO_ALIGN`] bytes.
    pub fn new(blocks: usize) -> Self {
        AlignedBuffer {
            blocks: vec![AlignedBlock([0; DIRECT_IO_ALIGN]); blocks],
        }
    }

    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: the blocks are plain bytes laid out back to back
        // (`repr(C)`, size a multiple of the alignment), initialised, and
        // borrowed for the slice's lifetime.
        unsafe {
            std::slice::from_raw_parts(
                self.blocks.as_ptr().cast::<u8>(),
                self.blocks.len() * DIRECT_IO_ALIGN,
            )
        }
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`, borrowed mutably and exclusively.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.blocks.as_mut_ptr().cast::<u8>(),
                self.blocks.len() * DIRECT_IO_ALIGN,
            )
        }
    }
}

/// Links the unnamed file `file` (opened with `O_TMPFILE`) at `name`.
pub fn link_unnamed_file(file: &File, name: &Path) -> io::Result<()> {
    let proc_path = c_path(Path::new(&format!("/proc/self/fd/{}", file.as_raw_fd())))?;
    let name = c_path(name)?;
    // SAFETY: both arguments are valid NUL-terminated strings that outlive
    // the call; linkat does not keep them.
    let result = unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            proc_path.as_ptr(),
            libc::AT_FDCWD,
            name.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Ignores SIGXFSZ, so that writing past `RLIMIT_FSIZE` fails with `EFBIG`
/// (a named write error) instead of killing the process without a word.
pub fn ignore_file_size_signal() {
    // SAFETY: setting a signal's disposition to SIG_IGN has no memory effects.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}

/// Whether a process with this id exists (it may belong to another user).
pub fn process_is_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks that the process exists.
    let result = unsafe { libc::kill(pid, 0) };
    result == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// The process's effective user id: whose files it may trust, and (nothing
/// here calls `setfsuid`) also its file-system user id.
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid takes no arguments, touches no memory of ours and
    // cannot fail.
    unsafe { libc::geteuid() }
}

/// `flock(fd, operation)`, retried when a signal interrupts it.
fn flock(file: &File, operation: libc::c_int) -> io::Result<()> {
    loop {
        // SAFETY: flock takes an open descriptor we hold and an integer; it
        // touches no memory of ours. The lock is released when the last
        // descriptor of the open file description is closed.
        if unsafe { libc::flock(file.as_raw_fd(), operation) } == 0 {
            return Ok(());
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

/// Takes an exclusive `flock` on `file` if no other open file holds one:
/// `Ok(false)` when another does. Held until `file` is closed.
pub fn try_lock_exclusive(file: &File) -> io::Result<bool> {
    match flock(file, libc::LOCK_EX | libc::LOCK_NB) {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == io::ErrorKind::WouldBlock => Ok(false),
        Err(error) => Err(error),
    }
}

/// Takes an exclusive `flock` on `file`, waiting for as long as another
/// open file holds one. Held until `file` is closed.
pub fn lock_exclusive(file: &File) -> io::Result<()> {
    flock(file, libc::LOCK_EX)
}

/// The signals whose default action ends the process and that a handler
/// can catch; [`remove_on_signal`] removes its files on each.
const TERMINATING_SIGNALS: [libc::c_int; 6] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
];

/// How many named temporary files can be registered at once (a run has at
/// most the tarball and the manifest pending).
const SLOTS: usize = 8;

/// Registered files, as leaked C strings; null is a free slot.
static PENDING: [AtomicPtr<libc::c_char>; SLOTS] =
    [const { AtomicPtr::new(std::ptr::null_mut()) }; SLOTS];
static HANDLERS_INSTALLED: AtomicBool = AtomicBool::new(false);

/// A file removed if the process gets a terminating signal, until dropped.
#[derive(Debug)]
pub struct RemoveOnSignal {
    slot: Option<usize>,
}

/// Registers `path` for removal on a terminating signal. Registering more
/// files than there are slots leaves the extra ones to the next run's
/// clean-up of stale temporary files.
pub fn remove_on_signal(path: &Path) -> RemoveOnSignal {
    install_handlers();
    let Ok(c_path) = c_path(path) else {
        return RemoveOnSignal { slot: None };
    };
    let raw = c_path.into_raw();
    for (index, slot) in PENDING.iter().enumerate() {
        if slot
            .compare_exchange(
                std::ptr::null_mut(),
                raw,
                Ordering::SeqCst,
                Ordering::SeqCst,
            )
            .is_ok()
        {
            return RemoveOnSignal { slot: Some(index) };
        }
    }
    // SAFETY: `raw` came from CString::into_raw and was never shared.
    drop(unsafe { CString::from_raw(raw) });
    RemoveOnSignal { slot: None }
}

impl Drop for RemoveOnSignal {
    fn drop(&mut self) {
        if let Some(index) = self.slot {
            let previous = PENDING[index].swap(std::ptr::null_mut(), Ordering::SeqCst);
            if !previous.is_null() {
                // SAFETY: the pointer came from CString::into_raw; the slot
                // no longer holds it, so the handler cannot see it.
                drop(unsafe { CString::from_raw(previous) });
            }
        }
    }
}

fn install_handlers() {
    if HANDLERS_INSTALLED.swap(true, Ordering::SeqCst) {
        return;
    }
    for signal in TERMINATING_SIGNALS {
        // SAFETY: the handler only calls async-signal-safe functions
        // (unlink, signal, raise). A signal the caller ignores (nohup) stays
        // ignored.
        unsafe {
            let previous = libc::signal(
                signal,
                remove_pending_and_die as *const () as libc::sighandler_t,
            );
            if previous == libc::SIG_IGN {
                libc::signal(signal, libc::SIG_IGN);
            }
        }
    }
}

extern "C" fn remove_pending_and_die(signal: libc::c_int) {
    for slot in &PENDING {
        let path = slot.swap(std::ptr::null_mut(), Ordering::SeqCst);
        if !path.is_null() {
            // SAFETY: a registered path is a valid C string (leaked on
            // purpose: the process is ending).
            unsafe {
                libc::unlink(path);
            }
        }
    }
    // SAFETY: restoring the default action and raising the signal again ends
    // the process the way the signal would have, so the parent sees it.
    unsafe {
        libc::signal(signal, libc::SIG_DFL);
        libc::raise(signal);
    }
}

/// Why libdeflate could not inflate a gzip member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InflateError {
    /// Bad deflate data, a bad header, a CRC-32 or ISIZE that does not
    /// match, or input that ends before the trailer.
    BadData,
    /// The member inflates to more than the output buffer holds.
    InsufficientSpace,
}

/// A libdeflate decompressor (a few KiB), freed on drop.
pub struct GzipInflater(std::ptr::NonNull<libdeflate_sys::libdeflate_decompressor>);

impl GzipInflater {
    pub fn new() -> Self {
        // SAFETY: allocates a decompressor; takes no arguments.
        let raw = unsafe { libdeflate_sys::libdeflate_alloc_decompressor() };
        GzipInflater(
            std::ptr::NonNull::new(raw).expect("libdeflate_alloc_decompressor: out of memory"),
        )
    }

    /// Inflates the gzip member at the start of `input` into `output`,
    /// checking its CRC-32 and ISIZE; returns how many bytes of `input` the
    /// member took (header to trailer) and how many it inflated to. Bytes of
    /// `input` after the member are not looked at.
    pub fn gzip_decompress_ex(
        &mut self,
        input: &[u8],
        output: &mut [u8],
    ) -> Result<(usize, usize), InflateError> {
        let (mut taken, mut inflated) = (0usize, 0usize);
        // SAFETY: the decompressor is ours and not shared (`&mut self`);
        // the pointers and lengths are those of live slices, `output`
        // borrowed exclusively; libdeflate writes only within `output` and
        // the two `usize`s, and keeps no pointer after returning.
        let result = unsafe {
            libdeflate_sys::libdeflate_gzip_decompress_ex(
                self.0.as_ptr(),
                input.as_ptr().cast(),
                input.len(),
                output.as_mut_ptr().cast(),
                output.len(),
                &mut taken,
                &mut inflated,
            )
        };
        match result {
            libdeflate_sys::libdeflate_result_LIBDEFLATE_SUCCESS => Ok((taken, inflated)),
            libdeflate_sys::libdeflate_result_LIBDEFLATE_INSUFFICIENT_SPACE => {
                Err(InflateError::InsufficientSpace)
            }
            _ => Err(InflateError::BadData),
        }
    }
}

impl Default for GzipInflater {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for GzipInflater {
    fn drop(&mut self) {
        // SAFETY: the decompressor came from libdeflate_alloc_decompressor
        // and is freed once, here.
        unsafe { libdeflate_sys::libdeflate_free_decompressor(self.0.as_ptr()) }
    }
}
