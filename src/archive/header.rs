//! Decoding tar header blocks: the reading counterpart of `src/tar/header.rs`.
//!
//! Reads what GNU tar and POSIX ustar write: octal numbers (space or NUL
//! terminated), GNU base-256 numbers, the header checksum (unsigned, or the
//! signed sum old tars wrote), the ustar `prefix` field, and the type flags.
//! The block layout is [`crate::tar::layout`], shared with the writer.

use crate::tar::layout::{
    self, Field, BLOCK_SIZE, CHKSUM, GID, GNAME, LINKNAME, MODE, MTIME, NAME, PREFIX, SIZE,
    TYPEFLAG, UID, UNAME,
};

/// Why a header block cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("{}", checksum_message(*.stored, *.computed))]
    /// The checksum field does not match the block.
    Checksum {
        /// The checksum field's value, `None` when it is not octal.
        stored: Option<u64>,
        /// The block's own checksum.
        computed: u32,
    },
    /// `text` is the field with non-printable bytes escaped.
    #[error("header field {field} is not a number: \"{text}\"")]
    BadNumber {
        /// The field's name.
        field: &'static str,
        /// Its text, escaped.
        text: String,
    },
    /// A base-256 number with the sign bit set.
    #[error("header field {field} is a negative base-256 number")]
    NegativeNumber {
        /// The field's name.
        field: &'static str,
    },
    /// A type flag outside plain tar's `0`–`7` (and the extension headers
    /// `L`, `K`, `x`, `g`): GNU tar extracts most such members as files,
    /// bsdtar reads several as something else (`A` Solaris ACLs, `X` pax
    /// records, `V` volume labels, `S` sparse files), so no reading can
    /// agree with both.
    #[error("type flag '{}' is not a plain tar type (0 to 7); GNU tar and bsdtar read such members differently, so it is refused", crate::escape::escape_bytes(&[*.flag]))]
    UnsupportedType {
        /// The type flag byte.
        flag: u8,
    },
    /// A member that is not a file with a non-zero size: GNU tar skips that
    /// many bytes after a link, device or fifo, bsdtar reads them as a hard
    /// link's content or as the next header.
    #[error("a {kind} with a size of {size} bytes; GNU tar and bsdtar disagree on whether the bytes after it are content or the next header, so it is refused")]
    SizedNonFile {
        /// The member's kind, in words.
        kind: String,
        /// The size its header gives.
        size: u64,
    },
    /// A file whose name ends in `/`: bsdtar reads it as a directory (and
    /// its content as the next header), GNU tar as a file.
    #[error("a file whose name ends in '/'; bsdtar reads it as a directory and the bytes after it as the next header, GNU tar as a file's content, so it is refused")]
    FileNamedAsDirectory,
    /// A hard link to nothing: GNU tar links it to `.`, bsdtar reads an
    /// entry of no type.
    #[error("a hard link with an empty target; GNU tar links it to '.', bsdtar reads an entry of no type, so it is refused")]
    EmptyHardLinkTarget,
    /// A link whose target comes from a GNU long link name or a pax
    /// `linkpath` while its own link name field is empty: GNU tar takes the
    /// long one, bsdtar none.
    #[error("a link whose target comes from a long link name while its own link name field is empty; GNU tar takes the long one, bsdtar none, so it is refused")]
    LongLinkWithoutLinkName,
}

fn checksum_message(stored: Option<u64>, computed: u32) -> String {
    match stored {
        Some(stored) => {
            format!("header checksum is {stored:o} but the block sums to {computed:o} (both octal)")
        }
        None => format!(
            "the header checksum field is not an octal number (the block sums to {computed:o})"
        ),
    }
}

/// The fields of a decoded header, before long names and pax records apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawHeader {
    /// `prefix/name` for ustar headers, `name` otherwise, up to the first NUL.
    pub name: Vec<u8>,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub size: u64,
    pub mtime: u64,
    pub type_flag: u8,
    pub link_name: Vec<u8>,
    /// `ustar  \0` (GNU) as opposed to `ustar\0` + `00` (POSIX).
    pub gnu_magic: bool,
    pub ustar_magic: bool,
    pub user_name: Vec<u8>,
    pub group_name: Vec<u8>,
}

/// True if every byte of the block is zero (an end-of-archive block).
pub fn is_zero_block(block: &[u8; BLOCK_SIZE]) -> bool {
    block.iter().all(|&b| b == 0)
}

/// Decodes one header block, checking its checksum.
pub fn decode_header(block: &[u8; BLOCK_SIZE]) -> Result<RawHeader, HeaderError> {
    verify_checksum(block)?;
    let gnu_magic = layout::has_gnu_magic(block);
    let ustar_magic = layout::has_ustar_magic(block);
    let mut name = until_nul(NAME.of(block)).to_vec();
    if ustar_magic {
        let prefix = until_nul(PREFIX.of(block));
        if !prefix.is_empty() {
            let mut joined = prefix.to_vec();
            joined.push(b'/');
            joined.extend_from_slice(&name);
            name = joined;
        }
    }
    let mode = read_number(block, MODE)?;
    Ok(RawHeader {
        name,
        mode: u32::try_from(mode & 0o7777).unwrap_or(0),
        uid: read_number(block, UID)?,
        gid: read_number(block, GID)?,
        size: read_number(block, SIZE)?,
        mtime: read_number(block, MTIME)?,
        type_flag: TYPEFLAG.of(block)[0],
        link_name: until_nul(LINKNAME.of(block)).to_vec(),
        gnu_magic,
        ustar_magic,
        user_name: until_nul(UNAME.of(block)).to_vec(),
        group_name: until_nul(GNAME.of(block)).to_vec(),
    })
}

fn verify_checksum(block: &[u8; BLOCK_SIZE]) -> Result<(), HeaderError> {
    let stored = parse_octal(CHKSUM.of(block));
    let unsigned = layout::checksum(block);
    if stored == Some(u64::from(unsigned)) {
        return Ok(());
    }
    // Old tars summed signed bytes.
    match stored {
        Some(stored) if i64::try_from(stored).ok() == Some(layout::signed_checksum(block)) => {
            Ok(())
        }
        stored => Err(HeaderError::Checksum {
            stored,
            computed: unsigned,
        }),
    }
}

/// Bytes up to the first NUL.
pub fn until_nul(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    &field[..end]
}

/// An octal number, or GNU base-256 when the first byte has its high bit set.
fn read_number(block: &[u8; BLOCK_SIZE], field: Field) -> Result<u64, HeaderError> {
    let name = field.name;
    let field = field.of(block);
    if let Some(&first) = field.first() {
        if first & 0x80 != 0 {
            if first == 0xff {
                return Err(HeaderError::NegativeNumber { field: name });
            }
            let mut value: u64 = u64::from(first & 0x7f);
            for &byte in &field[1..] {
                value = value
                    .checked_mul(256)
                    .and_then(|v| v.checked_add(u64::from(byte)))
                    .ok_or(HeaderError::BadNumber {
                        field: name,
                        text: "base-256 overflow".to_owned(),
                    })?;
            }
            return Ok(value);
        }
    }
    parse_octal(field).ok_or_else(|| HeaderError::BadNumber {
        field: name,
        text: field.escape_ascii().to_string(),
    })
}

/// Octal digits with optional leading spaces, ended by a space, a NUL or the
/// end of the field. An all-blank field is zero.
fn parse_octal(field: &[u8]) -> Option<u64> {
    let trimmed = field
        .iter()
        .skip_while(|&&b| b == b' ')
        .take_while(|&&b| b != 0 && b != b' ');
    let mut value: u64 = 0;
    for &digit in trimmed {
        if !(b'0'..=b'7').contains(&digit) {
            return None;
        }
        value = value.checked_mul(8)?.checked_add(u64::from(digit - b'0'))?;
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tar::{append_header, HeaderFields, MemberKind};

    fn written(name: &[u8], size: u64, target: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        append_header(
            &mut out,
            &HeaderFields {
                name,
                kind: if target.is_empty() {
                    MemberKind::Regular
                } else {
                    MemberKind::Symlink
                },
                mode: 0o555,
                uid: 1000,
                gid: 100,
                size,
                mtime: 1,
                link_target: target,
            },
        );
        out
    }

    fn block(bytes: &[u8]) -> [u8; BLOCK_SIZE] {
        bytes[..BLOCK_SIZE].try_into().unwrap()
    }

    #[test]
    fn decodes_what_our_writer_writes() {
        let bytes = written(b"./nix/store/x", 5, b"");
        let header = decode_header(&block(&bytes)).unwrap();
        assert_eq!(header.name, b"./nix/store/x");
        assert_eq!(
            (
                header.mode,
                header.uid,
                header.gid,
                header.size,
                header.mtime
            ),
            (0o555, 1000, 100, 5, 1)
        );
        assert_eq!(header.type_flag, b'0');
        assert!(header.gnu_magic);
    }

    #[test]
    fn base_256_sizes_decode() {
        let size = 9 * (1u64 << 30);
        let header = decode_header(&block(&written(b"./big", size, b""))).unwrap();
        assert_eq!(header.size, size);
    }

    #[test]
    fn a_flipped_byte_fails_the_checksum() {
        let mut bytes = block(&written(b"./f", 0, b""));
        bytes[3] ^= 1;
        assert!(matches!(
            decode_header(&bytes),
            Err(HeaderError::Checksum { .. })
        ));
    }
}
