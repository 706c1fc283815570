//! GNU tar header blocks, byte for byte as GNU tar writes them.
//!
//! The layout matches `tar --format=gnu --numeric-owner`: the `ustar  \0`
//! magic, octal numbers padded with zeros and ended by a NUL, base-256 for
//! numbers that do not fit in octal (files of 8 GiB and more), empty user and
//! group names, zero device numbers, and a `././@LongLink` entry (type `L` for
//! names, `K` for link targets) before any entry whose name or target is 100
//! bytes or longer. Field offsets, the magic and the checksum rule are those
//! of [`super::layout`], which the reader shares.

use super::kind::MemberKind;
use super::layout::{
    self, BLOCK_SIZE, CHKSUM, GID, GNU_MAGIC, LINKNAME, MAGIC_VERSION, MODE, MTIME, NAME, SIZE,
    TYPEFLAG, UID,
};

/// GNU tar's default record size (blocking factor 20): archives are padded to
/// a multiple of it.
pub const RECORD_SIZE: usize = 20 * BLOCK_SIZE;
/// Names and link targets of this many bytes or more need a LongLink entry.
const NAME_FIELD_SIZE: usize = NAME.len;

/// The fields of one archive member's header.
#[derive(Debug, Clone, Copy)]
pub struct HeaderFields<'a> {
    /// The member name as it appears in the archive (directories end in `/`).
    pub name: &'a [u8],
    /// The type flag.
    pub kind: MemberKind,
    /// Permission bits; only `0o7777` is written.
    pub mode: u32,
    /// Owner's user id.
    pub uid: u64,
    /// Owner's group id.
    pub gid: u64,
    /// Bytes of content that follow the header.
    pub size: u64,
    /// Modification time, seconds since the epoch.
    pub mtime: u64,
    /// Target of a symlink; empty otherwise.
    pub link_target: &'a [u8],
}

/// Appends the header blocks of one member to `out`: any LongLink entries,
/// then the member's own header. The caller appends the content and padding.
pub fn append_header(out: &mut Vec<u8>, fields: &HeaderFields<'_>) {
    if fields.link_target.len() >= NAME_FIELD_SIZE {
        append_long_link(out, MemberKind::GnuLongLink, fields.link_target);
    }
    if fields.name.len() >= NAME_FIELD_SIZE {
        append_long_link(out, MemberKind::GnuLongName, fields.name);
    }
    let mut block = [0u8; BLOCK_SIZE];
    write_truncated(NAME.of_mut(&mut block), fields.name);
    write_number(MODE.of_mut(&mut block), u64::from(fields.mode & 0o7777));
    write_number(UID.of_mut(&mut block), fields.uid);
    write_number(GID.of_mut(&mut block), fields.gid);
    write_number(SIZE.of_mut(&mut block), fields.size);
    write_number(MTIME.of_mut(&mut block), fields.mtime);
    TYPEFLAG.of_mut(&mut block)[0] = fields.kind.flag();
    write_truncated(LINKNAME.of_mut(&mut block), fields.link_target);
    finish_block(&mut block);
    out.extend_from_slice(&block);
}

/// Number of zero bytes that pad `len` bytes of content to a whole block.
pub fn padding_len(len: u64) -> usize {
    ((BLOCK_SIZE as u64 - len % BLOCK_SIZE as u64) % BLOCK_SIZE as u64) as usize
}

/// A `././@LongLink` member carrying a long name (`L`) or link target (`K`),
/// NUL-terminated, as GNU tar writes it: mode 0644, owner 0, mtime 0.
fn append_long_link(out: &mut Vec<u8>, kind: MemberKind, long: &[u8]) {
    let mut block = [0u8; BLOCK_SIZE];
    write_truncated(NAME.of_mut(&mut block), b"././@LongLink");
    write_number(MODE.of_mut(&mut block), 0o644);
    write_number(UID.of_mut(&mut block), 0);
    write_number(GID.of_mut(&mut block), 0);
    write_number(SIZE.of_mut(&mut block), long.len() as u64 + 1);
    write_number(MTIME.of_mut(&mut block), 0);
    TYPEFLAG.of_mut(&mut block)[0] = kind.flag();
    finish_block(&mut block);
    out.extend_from_slice(&block);
    out.extend_from_slice(long);
    out.push(0);
    out.resize(out.len() + padding_len(long.len() as u64 + 1), 0);
}

/// Writes the GNU magic and the checksum into an otherwise complete header.
fn finish_block(block: &mut [u8; BLOCK_SIZE]) {
    MAGIC_VERSION.of_mut(block).copy_from_slice(GNU_MAGIC);
    let text = format!("{:06o}\0 ", layout::checksum(block));
    CHKSUM.of_mut(block).copy_from_slice(text.as_bytes());
}

fn write_truncated(field: &mut [u8], bytes: &[u8]) {
    let len = bytes.len().min(field.len());
    field[..len].copy_from_slice(&bytes[..len]);
}

/// Octal, zero-padded and NUL-terminated, or GNU base-256 when the value does
/// not fit in `field.len() - 1` octal digits.
fn write_number(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    if digits * 3 >= 64 || value < (1u64 << (digits * 3)) {
        let text = format!("{value:0digits$o}");
        field[..digits].copy_from_slice(text.as_bytes());
        field[digits] = 0;
    } else {
        field.fill(0);
        let bytes = value.to_be_bytes();
        let start = field.len() - bytes.len();
        field[start..].copy_from_slice(&bytes);
        field[0] |= 0x80;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &[u8], size: u64) -> Vec<u8> {
        let mut out = Vec::new();
        append_header(
            &mut out,
            &HeaderFields {
                name,
                kind: MemberKind::Regular,
                mode: 0o100444,
                uid: 0,
                gid: 0,
                size,
                mtime: 1,
                link_target: b"",
            },
        );
        out
    }

    #[test]
    fn short_name_is_one_block_with_octal_fields() {
        let block = header(b"./f", 5);
        assert_eq!(block.len(), 512);
        assert_eq!(&block[100..108], b"0000444\0");
        assert_eq!(&block[124..136], b"00000000005\0");
        assert_eq!(&block[257..265], b"ustar  \0");
        assert!(block[329..345].iter().all(|&b| b == 0));
    }

    #[test]
    fn names_of_100_bytes_get_a_long_link() {
        assert_eq!(header(&[b'a'; 99], 0).len(), 512);
        let long = header(&[b'a'; 100], 0);
        assert_eq!(long.len(), 3 * 512);
        assert_eq!(long[156], b'L');
        assert_eq!(&long[124..136], b"00000000145\0");
    }

    #[test]
    fn sizes_past_8_gib_use_base_256() {
        let size = 9 * (1u64 << 30);
        let block = header(b"./big", size);
        assert_eq!(block[124], 0x80);
        assert_eq!(&block[128..136], &size.to_be_bytes());
        let fits = header(b"./fits", (1 << 33) - 1);
        assert_eq!(&fits[124..136], b"77777777777\0");
    }

    #[test]
    fn checksum_counts_the_field_as_spaces() {
        let block = header(b"./f", 0);
        let mut copy = block.clone();
        copy[148..156].fill(b' ');
        let sum: u32 = copy.iter().map(|&b| u32::from(b)).sum();
        let text = std::str::from_utf8(&block[148..154]).unwrap();
        assert_eq!(u32::from_str_radix(text, 8).unwrap(), sum);
    }
}
