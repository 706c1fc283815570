//! Writing rootfs entries as a GNU tar stream.
//!
//! [`TarWriter`] turns [`Entry`] values into the bytes GNU tar would write for
//! the same tree with `--format=gnu --sort=name --mtime=@MTIME --owner=0
//! --group=0 --numeric-owner --hard-dereference`: members are named `./…`,
//! directories end in `/`, every file is written whole (never as a hard link,
//! which WSL's importer rejects), and the archive ends with two zero blocks
//! padded to a 10 KiB record.

mod header;
mod kind;
pub(crate) mod layout;

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::PathBuf;

pub use header::{append_header, padding_len, HeaderFields, RECORD_SIZE};
pub use kind::MemberKind;
pub use layout::BLOCK_SIZE;

use crate::entry::{Content, Entry, EntryKind};

/// Why an entry could not be written.
#[derive(Debug, thiserror::Error)]
pub enum TarError {
    #[error("cannot read {}: {source}", path.display())]
    /// A file's content could not be read.
    Read {
        /// The file on the host.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    #[error("{} changed size while it was archived: it was {expected} bytes when walked, {actual} when read", path.display())]
    /// A file's size is not the one it had when it was walked.
    SizeChanged {
        /// The file on the host.
        path: PathBuf,
        /// Its size when walked.
        expected: u64,
        /// What reading found (a size, or "more").
        actual: String,
    },
    #[error("writing the archive stream failed: {0}")]
    /// The archive stream could not be written.
    Write(#[source] io::Error),
}

/// Counts of what went into the archive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TarStats {
    /// Directories written.
    pub directories: u64,
    /// Regular files written.
    pub files: u64,
    /// Symlinks written.
    pub symlinks: u64,
    /// Bytes of regular-file content.
    pub content_bytes: u64,
    /// Bytes of the whole uncompressed archive.
    pub archive_bytes: u64,
}

impl TarStats {
    /// Adds the counts of a later part of the same archive.
    pub fn add(&mut self, later: &TarStats) {
        self.directories += later.directories;
        self.files += later.files;
        self.symlinks += later.symlinks;
        self.content_bytes += later.content_bytes;
        self.archive_bytes += later.archive_bytes;
    }
}

/// Sees every member and every byte of content that goes into the archive,
/// in the same pass that writes it (the security scan hooks in here).
pub trait ContentObserver {
    /// A member starts; its name and link target are in `entry`.
    fn begin_entry(&mut self, entry: &Entry);
    /// The next chunk of the current member's content, in order.
    fn content(&mut self, chunk: &[u8]);
    /// The current member is complete.
    fn end_entry(&mut self);
}

/// The observer that looks at nothing.
impl ContentObserver for () {
    fn begin_entry(&mut self, _entry: &Entry) {}
    fn content(&mut self, _chunk: &[u8]) {}
    fn end_entry(&mut self) {}
}

/// An observer that may not be there.
impl<O: ContentObserver> ContentObserver for Option<O> {
    fn begin_entry(&mut self, entry: &Entry) {
        if let Some(observer) = self {
            observer.begin_entry(entry);
        }
    }
    fn content(&mut self, chunk: &[u8]) {
        if let Some(observer) = self {
            observer.content(chunk);
        }
    }
    fn end_entry(&mut self) {
        if let Some(observer) = self {
            observer.end_entry();
        }
    }
}

/// Two observers see the same members and bytes, the first one first.
impl<A: ContentObserver, B: ContentObserver> ContentObserver for (A, B) {
    fn begin_entry(&mut self, entry: &Entry) {
        self.0.begin_entry(entry);
        self.1.begin_entry(entry);
    }
    fn content(&mut self, chunk: &[u8]) {
        self.0.content(chunk);
        self.1.content(chunk);
    }
    fn end_entry(&mut self) {
        self.0.end_entry();
        self.1.end_entry();
    }
}

/// Streams entries into `inner` as a GNU tar archive, showing each to an
/// observer `O`.
pub struct TarWriter<W: Write, O: ContentObserver = ()> {
    inner: W,
    observer: O,
    discarding: bool,
    mtime: u64,
    header_buffer: Vec<u8>,
    read_buffer: Vec<u8>,
    stats: TarStats,
}

const READ_CHUNK: usize = 256 * 1024;

impl<W: Write> TarWriter<W> {
    /// A writer that stamps every member with `mtime` (seconds since 1970).
    pub fn new(inner: W, mtime: u64) -> Self {
        TarWriter::with_observer(inner, mtime, ())
    }
}

impl<W: Write, O: ContentObserver> TarWriter<W, O> {
    /// A writer that also shows every member and its content to `observer`.
    pub fn with_observer(inner: W, mtime: u64, observer: O) -> Self {
        TarWriter {
            inner,
            observer,
            discarding: false,
            mtime,
            header_buffer: Vec::with_capacity(4 * BLOCK_SIZE),
            read_buffer: vec![0; READ_CHUNK],
            stats: TarStats::default(),
        }
    }

    /// What has been written so far.
    pub fn stats(&self) -> TarStats {
        self.stats
    }

    /// The observer, to tell it about what the members belong to.
    pub fn observer_mut(&mut self) -> &mut O {
        &mut self.observer
    }

    /// The stream the archive is written into, for splicing in bytes made
    /// elsewhere (see [`TarWriter::set_discarding`]).
    pub fn inner_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// While set, members are read, observed and counted as usual, but their
    /// bytes are not written: the caller splices the same bytes, made
    /// earlier, into the inner stream instead.
    pub fn set_discarding(&mut self, discarding: bool) {
        self.discarding = discarding;
    }

    /// Appends one member: its headers, then its content and padding.
    pub fn append(&mut self, entry: &Entry) -> Result<(), TarError> {
        let mut name = Vec::with_capacity(entry.path.len() + 3);
        name.extend_from_slice(b"./");
        name.extend_from_slice(&entry.path);
        let (kind, size, link_target): (_, u64, &[u8]) = match &entry.kind {
            EntryKind::Directory => {
                if !entry.path.is_empty() {
                    name.push(b'/');
                }
                self.stats.directories += 1;
                (MemberKind::Directory, 0, b"")
            }
            EntryKind::Symlink { target } => {
                self.stats.symlinks += 1;
                (MemberKind::Symlink, 0, target)
            }
            EntryKind::File { size, .. } => {
                self.stats.files += 1;
                (MemberKind::Regular, *size, b"")
            }
        };
        self.observer.begin_entry(entry);
        self.header_buffer.clear();
        append_header(
            &mut self.header_buffer,
            &HeaderFields {
                name: &name,
                kind,
                mode: entry.mode,
                uid: u64::from(entry.uid),
                gid: u64::from(entry.gid),
                size,
                mtime: self.mtime,
                link_target,
            },
        );
        emit(&mut self.inner, self.discarding, &self.header_buffer)?;
        self.stats.archive_bytes += self.header_buffer.len() as u64;
        if let EntryKind::File { size, content } = &entry.kind {
            match content {
                Content::Inline(bytes) => {
                    self.observer.content(bytes);
                    emit(&mut self.inner, self.discarding, bytes)?;
                }
                Content::Disk(path) => self.copy_file(path, *size)?,
            }
            let padding = padding_len(*size);
            emit(
                &mut self.inner,
                self.discarding,
                &[0u8; BLOCK_SIZE][..padding],
            )?;
            self.stats.content_bytes += size;
            self.stats.archive_bytes += size + padding as u64;
        }
        self.observer.end_entry();
        Ok(())
    }

    /// Appends a root-owned regular file of `size` bytes at `path` whose
    /// content `fill` streams into the archive (a member too large to hold
    /// in memory and not on disk). The observer sees the member and its
    /// content. `fill` must write exactly `size` bytes; otherwise the
    /// archive is wrong and this fails naming the member.
    pub fn append_streamed<E: From<TarError>>(
        &mut self,
        path: &[u8],
        mode: u32,
        size: u64,
        fill: impl FnOnce(&mut dyn Write) -> Result<(), E>,
    ) -> Result<(), E> {
        // What the observer is shown: the member, its content comes below.
        let entry = Entry {
            path: path.to_vec(),
            kind: EntryKind::File {
                size,
                content: Content::Inline(Vec::new().into()),
            },
            mode,
            uid: 0,
            gid: 0,
        };
        let mut name = Vec::with_capacity(path.len() + 2);
        name.extend_from_slice(b"./");
        name.extend_from_slice(path);
        self.observer.begin_entry(&entry);
        self.header_buffer.clear();
        append_header(
            &mut self.header_buffer,
            &HeaderFields {
                name: &name,
                kind: MemberKind::Regular,
                mode,
                uid: 0,
                gid: 0,
                size,
                mtime: self.mtime,
                link_target: b"",
            },
        );
        emit(&mut self.inner, self.discarding, &self.header_buffer)?;
        self.stats.archive_bytes += self.header_buffer.len() as u64;
        let mut content = StreamedContent {
            inner: &mut self.inner,
            observer: &mut self.observer,
            discarding: self.discarding,
            written: 0,
        };
        fill(&mut content)?;
        let written = content.written;
        if written != size {
            return Err(TarError::SizeChanged {
                path: PathBuf::from(String::from_utf8_lossy(path).into_owned()),
                expected: size,
                actual: written.to_string(),
            }
            .into());
        }
        let padding = padding_len(size);
        emit(
            &mut self.inner,
            self.discarding,
            &[0u8; BLOCK_SIZE][..padding],
        )?;
        self.stats.files += 1;
        self.stats.content_bytes += size;
        self.stats.archive_bytes += size + padding as u64;
        self.observer.end_entry();
        Ok(())
    }

    /// Copies exactly `expected` bytes of `path`, failing if the file is now
    /// shorter or longer than when it was walked.
    fn copy_file(&mut self, path: &PathBuf, expected: u64) -> Result<(), TarError> {
        let read_error = |source| TarError::Read {
            path: path.clone(),
            source,
        };
        let mut file = File::open(path).map_err(read_error)?;
        let mut remaining = expected;
        while remaining > 0 {
            let want = remaining.min(READ_CHUNK as u64) as usize;
            let got = read_some(&mut file, &mut self.read_buffer[..want]).map_err(read_error)?;
            if got == 0 {
                return Err(TarError::SizeChanged {
                    path: path.clone(),
                    expected,
                    actual: (expected - remaining).to_string(),
                });
            }
            self.observer.content(&self.read_buffer[..got]);
            emit(&mut self.inner, self.discarding, &self.read_buffer[..got])?;
            remaining -= got as u64;
        }
        let mut probe = [0u8; 1];
        if read_some(&mut file, &mut probe).map_err(read_error)? != 0 {
            return Err(TarError::SizeChanged {
                path: path.clone(),
                expected,
                actual: "more".to_owned(),
            });
        }
        Ok(())
    }

    /// Ends the archive with two zero blocks padded to a whole record, and
    /// hands back the inner writer with the final counts.
    pub fn finish(self) -> Result<(W, TarStats), TarError> {
        let (inner, _observer, stats) = self.finish_observed()?;
        Ok((inner, stats))
    }

    /// Like [`TarWriter::finish`], also handing back the observer.
    pub fn finish_observed(mut self) -> Result<(W, O, TarStats), TarError> {
        let zeros = vec![0u8; end_of_archive_len(self.stats.archive_bytes)];
        self.inner.write_all(&zeros).map_err(TarError::Write)?;
        self.stats.archive_bytes += zeros.len() as u64;
        Ok((self.inner, self.observer, self.stats))
    }

    /// Hands back the inner writer, the observer and the counts without
    /// ending the archive: the members written are one segment of an archive
    /// that is put together elsewhere (which ends it with
    /// [`end_of_archive_len`] zero bytes).
    pub fn into_segment(self) -> (W, O, TarStats) {
        (self.inner, self.observer, self.stats)
    }
}

/// How many zero bytes end an archive of `archive_bytes` bytes of members:
/// two zero blocks, padded to a whole record.
pub fn end_of_archive_len(archive_bytes: u64) -> usize {
    let end_blocks = 2 * BLOCK_SIZE as u64;
    let record = RECORD_SIZE as u64;
    ((archive_bytes + end_blocks).div_ceil(record) * record - archive_bytes) as usize
}

/// The content of a streamed member on its way into the archive.
struct StreamedContent<'a, W: Write, O: ContentObserver> {
    inner: &'a mut W,
    observer: &'a mut O,
    discarding: bool,
    written: u64,
}

impl<W: Write, O: ContentObserver> Write for StreamedContent<'_, W, O> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.observer.content(bytes);
        if !self.discarding {
            self.inner.write_all(bytes)?;
        }
        self.written += bytes.len() as u64;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes archive bytes to `inner` unless discarding.
fn emit<W: Write>(inner: &mut W, discarding: bool, bytes: &[u8]) -> Result<(), TarError> {
    if discarding {
        return Ok(());
    }
    inner.write_all(bytes).map_err(TarError::Write)
}

fn read_some(file: &mut File, buffer: &mut [u8]) -> io::Result<usize> {
    loop {
        match file.read(buffer) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_is_padded_to_whole_records_and_reads_back() {
        let mut writer = TarWriter::new(Vec::new(), 1);
        writer
            .append(&Entry::directory(b"".to_vec(), 0o755))
            .unwrap();
        writer
            .append(&Entry::inline_file(
                b"etc/hostname".to_vec(),
                b"nixos\n".to_vec(),
                0o644,
            ))
            .unwrap();
        writer
            .append(&Entry::symlink(
                b"bin".to_vec(),
                b"/run/current-system/sw/bin".to_vec(),
            ))
            .unwrap();
        let (bytes, stats) = writer.finish().unwrap();
        assert_eq!(bytes.len() % RECORD_SIZE, 0);
        assert_eq!(stats.archive_bytes, bytes.len() as u64);
        let mut archive = tar::Archive::new(bytes.as_slice());
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["./", "./etc/hostname", "./bin"]);
    }

    #[test]
    fn a_file_that_grew_or_shrank_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("moving");
        std::fs::write(&path, b"12345").unwrap();
        for walked_size in [3u64, 9] {
            let entry = Entry {
                path: b"moving".to_vec(),
                kind: EntryKind::File {
                    size: walked_size,
                    content: Content::Disk(path.clone()),
                },
                mode: 0o444,
                uid: 0,
                gid: 0,
            };
            let err = TarWriter::new(Vec::new(), 1).append(&entry).unwrap_err();
            assert!(matches!(err, TarError::SizeChanged { .. }), "{err}");
            assert!(err.to_string().contains("moving"), "{err}");
        }
    }

    #[derive(Default)]
    struct Recorder {
        seen: Vec<(Vec<u8>, Vec<u8>)>,
    }

    impl ContentObserver for Recorder {
        fn begin_entry(&mut self, entry: &Entry) {
            self.seen.push((entry.path.clone(), Vec::new()));
        }
        fn content(&mut self, chunk: &[u8]) {
            self.seen.last_mut().unwrap().1.extend_from_slice(chunk);
        }
        fn end_entry(&mut self) {}
    }

    #[test]
    fn the_observer_sees_every_member_and_every_content_byte() {
        let dir = tempfile::tempdir().unwrap();
        let big: Vec<u8> = (0..READ_CHUNK * 2 + 17).map(|i| (i % 251) as u8).collect();
        std::fs::write(dir.path().join("big"), &big).unwrap();
        let mut writer = TarWriter::with_observer(Vec::new(), 1, Recorder::default());
        writer
            .append(&Entry::directory(b"d".to_vec(), 0o755))
            .unwrap();
        let disk = Entry {
            path: b"d/big".to_vec(),
            kind: EntryKind::File {
                size: big.len() as u64,
                content: Content::Disk(dir.path().join("big")),
            },
            mode: 0o444,
            uid: 0,
            gid: 0,
        };
        writer.append(&disk).unwrap();
        writer
            .append(&Entry::inline_file(
                b"d/small".to_vec(),
                b"tiny".to_vec(),
                0o644,
            ))
            .unwrap();
        let (_, recorder, _) = writer.finish_observed().unwrap();
        assert_eq!(
            recorder.seen,
            vec![
                (b"d".to_vec(), Vec::new()),
                (b"d/big".to_vec(), big),
                (b"d/small".to_vec(), b"tiny".to_vec()),
            ]
        );
    }
}
