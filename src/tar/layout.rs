//! The tar header block layout, written down once: every field's offset and
//! length, the magic strings, and the checksum rule.
//!
//! The writer (`tar::header`), the reader (`archive::header`) and `inspect`'s
//! header-format count all address a header block through these constants, as
//! tar-rs's builder and reader share one header type. The offsets are those of
//! POSIX ustar and GNU tar (GNU tar's `tar.h`); GNU tar reuses the ustar
//! `prefix` field for access and change times, hence that field's name.
//!
//! (The module's tests show a worked example: `a_gnu_magic_block_is_recognised_and_fields_are_named`.)

use std::ops::Range;

/// Size of a tar block.
pub const BLOCK_SIZE: usize = 512;

/// One field of a header block, with the name GNU tar's documentation gives
/// it (used in messages that say which field differs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// The field's name in GNU tar's documentation.
    pub name: &'static str,
    /// Where it starts in the block.
    pub offset: usize,
    /// Its length in bytes.
    pub len: usize,
}

impl Field {
    const fn new(name: &'static str, offset: usize, len: usize) -> Self {
        Field { name, offset, len }
    }

    /// The field's byte range within a block.
    pub const fn range(self) -> Range<usize> {
        self.offset..self.offset + self.len
    }

    /// The field's bytes in `block`.
    pub fn of(self, block: &[u8; BLOCK_SIZE]) -> &[u8] {
        &block[self.range()]
    }

    /// The field's bytes in `block`, to write.
    pub fn of_mut(self, block: &mut [u8; BLOCK_SIZE]) -> &mut [u8] {
        &mut block[self.range()]
    }
}

/// The member name (or its last 100 bytes' worth; see the long names).
pub const NAME: Field = Field::new("name", 0, 100);
/// Permission bits, octal.
pub const MODE: Field = Field::new("mode", 100, 8);
/// Owner's user id, octal or base-256.
pub const UID: Field = Field::new("uid", 108, 8);
/// Owner's group id, octal or base-256.
pub const GID: Field = Field::new("gid", 116, 8);
/// Content size in bytes, octal or base-256.
pub const SIZE: Field = Field::new("size", 124, 12);
/// Modification time, octal or base-256.
pub const MTIME: Field = Field::new("mtime", 136, 12);
/// The header checksum ([`checksum`]).
pub const CHKSUM: Field = Field::new("chksum", 148, 8);
/// The type flag ([`crate::tar::MemberKind`]).
pub const TYPEFLAG: Field = Field::new("typeflag", 156, 1);
/// The link target.
pub const LINKNAME: Field = Field::new("linkname", 157, 100);
/// `ustar` and a space (GNU) or NUL (POSIX).
pub const MAGIC: Field = Field::new("magic", 257, 6);
/// The version after the magic (GNU: a space and NUL).
pub const VERSION: Field = Field::new("version", 263, 2);
/// Owner's user name.
pub const UNAME: Field = Field::new("uname", 265, 32);
/// Owner's group name.
pub const GNAME: Field = Field::new("gname", 297, 32);
/// Device major number.
pub const DEVMAJOR: Field = Field::new("devmajor", 329, 8);
/// Device minor number.
pub const DEVMINOR: Field = Field::new("devminor", 337, 8);
/// ustar's name prefix; GNU tar keeps access and change times here.
pub const PREFIX: Field = Field::new("prefix/atime/ctime", 345, 155);
/// The unused end of the block.
pub const PADDING: Field = Field::new("padding", 500, 12);

/// Every field, in block order; together they cover the block.
pub const FIELDS: [Field; 17] = [
    NAME, MODE, UID, GID, SIZE, MTIME, CHKSUM, TYPEFLAG, LINKNAME, MAGIC, VERSION, UNAME, GNAME,
    DEVMAJOR, DEVMINOR, PREFIX, PADDING,
];

/// The `magic` and `version` fields together, where GNU tar's magic spans.
pub const MAGIC_VERSION: Field = Field::new("magic/version", MAGIC.offset, 8);
/// GNU tar's magic and version (`ustar  \0`), over [`MAGIC_VERSION`].
pub const GNU_MAGIC: &[u8; 8] = b"ustar  \0";
/// POSIX ustar's magic (`ustar\0`, followed by version `00`), over [`MAGIC`].
pub const USTAR_MAGIC: &[u8; 6] = b"ustar\0";

/// The name of the header field that holds byte `offset` of a header block.
pub fn header_field_at(offset: usize) -> &'static str {
    FIELDS
        .iter()
        .find(|field| field.range().contains(&offset))
        .map_or("beyond the header", |field| field.name)
}

/// Whether `head` (a header block, or the start of a file) carries GNU tar's
/// magic.
pub fn has_gnu_magic(head: &[u8]) -> bool {
    head.get(MAGIC_VERSION.range()) == Some(&GNU_MAGIC[..])
}

/// Whether `head` carries POSIX ustar's magic.
pub fn has_ustar_magic(head: &[u8]) -> bool {
    head.get(MAGIC.range()) == Some(&USTAR_MAGIC[..])
}

/// Whether `head` carries either tar magic (both begin with `ustar`).
pub fn has_tar_magic(head: &[u8]) -> bool {
    head.get(MAGIC.offset..MAGIC.offset + 5) == Some(&b"ustar"[..])
}

/// The header checksum: the sum of the block's bytes as unsigned numbers,
/// with the checksum field itself counted as eight spaces.
pub fn checksum(block: &[u8; BLOCK_SIZE]) -> u32 {
    // Eight bytes at a time: this runs for every header read and written.
    let mut sum: u32 = 0;
    for chunk in block.chunks_exact(8) {
        let word = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
        let pairs = (word & 0x00ff_00ff_00ff_00ff) + ((word >> 8) & 0x00ff_00ff_00ff_00ff);
        let quads = (pairs & 0x0000_ffff_0000_ffff) + ((pairs >> 16) & 0x0000_ffff_0000_ffff);
        sum += ((quads & 0xffff_ffff) + (quads >> 32)) as u32;
    }
    let field: u32 = CHKSUM.of(block).iter().map(|&b| u32::from(b)).sum();
    sum - field + CHKSUM.len as u32 * u32::from(b' ')
}

/// The checksum old tars wrote: the same sum over signed bytes.
pub fn signed_checksum(block: &[u8; BLOCK_SIZE]) -> i64 {
    block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if CHKSUM.range().contains(&i) {
                i64::from(b' ')
            } else {
                i64::from(b as i8)
            }
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_tile_the_block_in_order() {
        let mut next = 0;
        for field in FIELDS {
            assert_eq!(field.offset, next, "{}", field.name);
            next = field.offset + field.len;
        }
        assert_eq!(next, BLOCK_SIZE);
    }

    #[test]
    fn checksum_is_the_plain_byte_sum_with_the_field_as_spaces() {
        let mut block = [0u8; BLOCK_SIZE];
        for (i, byte) in block.iter_mut().enumerate() {
            *byte = (i * 37 % 256) as u8;
        }
        let mut spaced = block;
        CHKSUM.of_mut(&mut spaced).fill(b' ');
        let plain: u32 = spaced.iter().map(|&b| u32::from(b)).sum();
        assert_eq!(checksum(&block), plain);
        let signed: i64 = spaced.iter().map(|&b| i64::from(b as i8)).sum();
        assert_eq!(signed_checksum(&block), signed);
        assert_ne!(i64::from(checksum(&block)), signed_checksum(&block));
    }

    #[test]
    fn field_names_by_offset() {
        assert_eq!(header_field_at(0), "name");
        assert_eq!(header_field_at(101), "mode");
        assert_eq!(header_field_at(140), "mtime");
        assert_eq!(header_field_at(156), "typeflag");
        assert_eq!(header_field_at(270), "uname");
        assert_eq!(header_field_at(511), "padding");
        assert_eq!(header_field_at(512), "beyond the header");
    }

    #[test]
    fn magic_checks_tolerate_short_input() {
        assert!(!has_tar_magic(b"ustar"));
        assert!(!has_gnu_magic(&[0; 300]));
        let mut posix = [0u8; BLOCK_SIZE];
        MAGIC.of_mut(&mut posix).copy_from_slice(USTAR_MAGIC);
        VERSION.of_mut(&mut posix).copy_from_slice(b"00");
        assert!(has_ustar_magic(&posix) && !has_gnu_magic(&posix) && has_tar_magic(&posix));
    }
}

#[cfg(test)]
mod example {
    #[test]
    fn a_gnu_magic_block_is_recognised_and_fields_are_named() {
        use crate::tar::layout::{self, BLOCK_SIZE};

        let mut block = [0u8; BLOCK_SIZE];
        layout::MAGIC_VERSION
            .of_mut(&mut block)
            .copy_from_slice(layout::GNU_MAGIC);
        assert!(layout::has_gnu_magic(&block));
        assert!(!layout::has_ustar_magic(&block));
        assert!(layout::has_tar_magic(&block));
        assert_eq!(layout::header_field_at(124), "size");
    }
}
