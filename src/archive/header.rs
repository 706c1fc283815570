//! Decoding tar header blocks: the reading counterpart of `src/tar/header.rs`.
//!
//! Reads what GNU tar and POSIX ustar write: octal numbers (space or NUL
//! terminated), GNU base-256 numbers, the header checksum (unsigned, or the
//! signed sum old tars wrote), the ustar `prefix` field, and the type flags.

use crate::tar::BLOCK_SIZE;

/// Byte ranges of the fields of a tar header block, with the names GNU tar's
/// documentation gives them, for messages that say which field differs.
pub const HEADER_FIELDS: [(&str, usize, usize); 17] = [
    ("name", 0, 100),
    ("mode", 100, 108),
    ("uid", 108, 116),
    ("gid", 116, 124),
    ("size", 124, 136),
    ("mtime", 136, 148),
    ("chksum", 148, 156),
    ("typeflag", 156, 157),
    ("linkname", 157, 257),
    ("magic", 257, 263),
    ("version", 263, 265),
    ("uname", 265, 297),
    ("gname", 297, 329),
    ("devmajor", 329, 337),
    ("devminor", 337, 345),
    ("prefix/atime/ctime", 345, 500),
    ("padding", 500, 512),
];

/// The name of the header field that holds byte `offset` of a header block.
pub fn header_field_at(offset: usize) -> &'static str {
    HEADER_FIELDS
        .iter()
        .find(|(_, start, end)| (*start..*end).contains(&offset))
        .map_or("beyond the header", |(name, _, _)| name)
}

/// Why a header block cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("{}", checksum_message(*.stored, *.computed))]
    Checksum {
        /// The checksum field's value, `None` when it is not octal.
        stored: Option<u64>,
        computed: u32,
    },
    /// `text` is the field with non-printable bytes escaped.
    #[error("header field {field} is not a number: \"{text}\"")]
    BadNumber { field: &'static str, text: String },
    #[error("header field {field} is a negative base-256 number")]
    NegativeNumber { field: &'static str },
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
    let gnu_magic = &block[257..265] == b"ustar  \0";
    let ustar_magic = &block[257..263] == b"ustar\0";
    let mut name = until_nul(&block[0..100]).to_vec();
    if ustar_magic {
        let prefix = until_nul(&block[345..500]);
        if !prefix.is_empty() {
            let mut joined = prefix.to_vec();
            joined.push(b'/');
            joined.extend_from_slice(&name);
            name = joined;
        }
    }
    let mode = read_number(&block[100..108], "mode")?;
    Ok(RawHeader {
        name,
        mode: u32::try_from(mode & 0o7777).unwrap_or(0),
        uid: read_number(&block[108..116], "uid")?,
        gid: read_number(&block[116..124], "gid")?,
        size: read_number(&block[124..136], "size")?,
        mtime: read_number(&block[136..148], "mtime")?,
        type_flag: block[156],
        link_name: until_nul(&block[157..257]).to_vec(),
        gnu_magic,
        ustar_magic,
        user_name: until_nul(&block[265..297]).to_vec(),
        group_name: until_nul(&block[297..329]).to_vec(),
    })
}

fn verify_checksum(block: &[u8; BLOCK_SIZE]) -> Result<(), HeaderError> {
    let stored = parse_octal(&block[148..156]);
    let unsigned = unsigned_sum(block);
    if stored == Some(u64::from(unsigned)) {
        return Ok(());
    }
    // Old tars summed signed bytes.
    let signed = || -> i64 {
        let mut sum: i64 = 0;
        for (i, &b) in block.iter().enumerate() {
            sum += if (148..156).contains(&i) {
                i64::from(b' ')
            } else {
                i64::from(b as i8)
            };
        }
        sum
    };
    match stored {
        Some(stored) if i64::try_from(stored).ok() == Some(signed()) => Ok(()),
        stored => Err(HeaderError::Checksum {
            stored,
            computed: unsigned,
        }),
    }
}

/// The sum of the block's bytes with the checksum field taken as spaces.
fn unsigned_sum(block: &[u8; BLOCK_SIZE]) -> u32 {
    // Eight bytes at a time: this runs for every header.
    let mut sum: u32 = 0;
    for chunk in block.chunks_exact(8) {
        let word = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
        let pairs = (word & 0x00ff_00ff_00ff_00ff) + ((word >> 8) & 0x00ff_00ff_00ff_00ff);
        let quads = (pairs & 0x0000_ffff_0000_ffff) + ((pairs >> 16) & 0x0000_ffff_0000_ffff);
        sum += ((quads & 0xffff_ffff) + (quads >> 32)) as u32;
    }
    let field: u32 = block[148..156].iter().map(|&b| u32::from(b)).sum();
    sum - field + 8 * u32::from(b' ')
}

/// Bytes up to the first NUL.
pub fn until_nul(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    &field[..end]
}

/// An octal number, or GNU base-256 when the first byte has its high bit set.
fn read_number(field: &[u8], name: &'static str) -> Result<u64, HeaderError> {
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
    use crate::tar::{append_header, EntryType, HeaderFields};

    fn written(name: &[u8], size: u64, target: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        append_header(
            &mut out,
            &HeaderFields {
                name,
                entry_type: if target.is_empty() {
                    EntryType::Regular
                } else {
                    EntryType::Symlink
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

    #[test]
    fn field_names_by_offset() {
        assert_eq!(header_field_at(0), "name");
        assert_eq!(header_field_at(101), "mode");
        assert_eq!(header_field_at(140), "mtime");
        assert_eq!(header_field_at(156), "typeflag");
        assert_eq!(header_field_at(270), "uname");
    }
}
