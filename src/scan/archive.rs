//! Scanning an existing tarball (`wsl-tarball check FILE.wsl`): the shared
//! reader in [`crate::archive`] recognises the compression and yields the
//! members, and each member goes through the same [`Scanner`] as during
//! `write`.

use std::io::{self, Read};
use std::path::Path;

use super::Scanner;
use crate::archive::{open_tarball, ArchiveError, ReadError};
use crate::tar::MemberKind;

/// Bytes read from a member per call.
const READ_CHUNK: usize = 256 * 1024;

/// Scans every member of the tarball at `path` (`-` for standard input)
/// into `scanner`. Trailing data after the end of the archive is an error.
pub fn scan_archive_file(path: &Path, scanner: &mut Scanner) -> Result<(), ReadError> {
    scan(path, scanner).map_err(|source| ReadError::new(path, source))
}

fn scan(path: &Path, scanner: &mut Scanner) -> Result<(), ArchiveError> {
    let mut reader = open_tarball(path)?;
    // The scan reports no digest of the file.
    reader.skip_file_sha256();
    let mut chunk = vec![0u8; READ_CHUNK];
    while let Some(member) = reader.next_member()? {
        let link_target = (!member.link_target.is_empty()).then_some(&member.link_target[..]);
        scanner.begin_member(&member.path, link_target);
        if member.kind == MemberKind::Regular {
            let mut content = reader.content();
            let mut read = 0u64;
            loop {
                let got = match content.read(&mut chunk) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(source) => {
                        return Err(ArchiveError::from_content(
                            member.content_offset + read,
                            source,
                        ))
                    }
                    Ok(got) => got,
                };
                if got == 0 {
                    break;
                }
                read += got as u64;
                scanner.content(&chunk[..got]);
            }
        }
        scanner.end_member();
    }
    if let Some(offset) = reader.end().and_then(|end| end.trailing_data) {
        return Err(ArchiveError::TrailingData { offset });
    }
    Ok(())
}
