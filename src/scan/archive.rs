//! Scanning an existing tarball (`wsl-tarball check FILE.wsl`): the
//! compression (gzip, xz, zstd or none) is recognised by its magic bytes,
//! the tar stream is read member by member, and each member goes through the
//! same [`Scanner`] as during `write`.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use super::Scanner;

/// Why an archive could not be scanned.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("cannot open {}: {error}", path.display())]
    Open { path: PathBuf, error: io::Error },
    #[error("reading {} failed: {error}", path.display())]
    Read { path: PathBuf, error: io::Error },
}

/// How an archive file is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveCompression {
    Gzip,
    Xz,
    Zstd,
    None,
}

impl ArchiveCompression {
    /// Recognises the format from the first bytes of the file.
    pub fn sniff(head: &[u8]) -> Self {
        if head.starts_with(&[0x1f, 0x8b]) {
            ArchiveCompression::Gzip
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            ArchiveCompression::Xz
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            ArchiveCompression::Zstd
        } else {
            ArchiveCompression::None
        }
    }
}

/// Bytes read from a member per call.
const READ_CHUNK: usize = 256 * 1024;

/// Scans every member of the tarball at `path` into `scanner`.
pub fn scan_archive_file(
    path: &Path,
    scanner: &mut Scanner,
) -> Result<ArchiveCompression, ArchiveError> {
    let read_error = |error| ArchiveError::Read {
        path: path.to_path_buf(),
        error,
    };
    let file = File::open(path).map_err(|error| ArchiveError::Open {
        path: path.to_path_buf(),
        error,
    })?;
    let mut buffered = BufReader::with_capacity(1 << 20, file);
    let compression = ArchiveCompression::sniff(buffered.fill_buf().map_err(read_error)?);
    let reader: Box<dyn Read> = match compression {
        ArchiveCompression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
        ArchiveCompression::Xz => Box::new(xz2::bufread::XzDecoder::new_multi_decoder(buffered)),
        ArchiveCompression::Zstd => {
            Box::new(zstd::stream::read::Decoder::with_buffer(buffered).map_err(read_error)?)
        }
        ArchiveCompression::None => Box::new(buffered),
    };
    scan_tar_stream(reader, scanner).map_err(read_error)?;
    Ok(compression)
}

/// Scans an uncompressed tar stream.
pub fn scan_tar_stream(reader: impl Read, scanner: &mut Scanner) -> io::Result<()> {
    let mut archive = tar::Archive::new(reader);
    let mut chunk = vec![0u8; READ_CHUNK];
    for entry in archive.entries()? {
        let mut entry = entry?;
        let raw_path = entry.path_bytes().into_owned();
        let path = member_path(&raw_path);
        let link_target = entry.link_name_bytes().map(|target| target.into_owned());
        let is_file = entry.header().entry_type().is_file();
        scanner.begin_member(path, link_target.as_deref());
        if is_file {
            loop {
                let got = match entry.read(&mut chunk) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    other => other?,
                };
                if got == 0 {
                    break;
                }
                scanner.content(&chunk[..got]);
            }
        }
        scanner.end_member();
    }
    Ok(())
}

/// `./nix/store/` ─► `nix/store`; `./` ─► the root (empty).
fn member_path(raw: &[u8]) -> &[u8] {
    let mut path = raw;
    while let Some(rest) = path.strip_prefix(b"./") {
        path = rest;
    }
    if path == b"." {
        return b"";
    }
    let path = path.strip_prefix(b"/").unwrap_or(path);
    path.strip_suffix(b"/").unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_paths_lose_dot_slash_and_trailing_slash() {
        assert_eq!(member_path(b"./"), b"");
        assert_eq!(member_path(b"."), b"");
        assert_eq!(member_path(b"./nix/store/"), b"nix/store");
        assert_eq!(member_path(b"etc/shadow"), b"etc/shadow");
    }

    #[test]
    fn compression_is_sniffed() {
        assert_eq!(
            ArchiveCompression::sniff(&[0x1f, 0x8b, 8]),
            ArchiveCompression::Gzip
        );
        assert_eq!(
            ArchiveCompression::sniff(b"\xfd7zXZ\0"),
            ArchiveCompression::Xz
        );
        assert_eq!(
            ArchiveCompression::sniff(&[0x28, 0xb5, 0x2f, 0xfd]),
            ArchiveCompression::Zstd
        );
        assert_eq!(
            ArchiveCompression::sniff(b"./\0\0"),
            ArchiveCompression::None
        );
    }
}
