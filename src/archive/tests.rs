use std::io::{BufRead, Read};

use sha2::{Digest, Sha256};

use super::pax::{apply_pax, Overrides};
use super::*;
use crate::entry::Entry;
use crate::tar::TarWriter;
use crate::tar::{MemberKind, BLOCK_SIZE};

fn write_archive(entries: &[Entry]) -> Vec<u8> {
    let mut writer = TarWriter::new(Vec::new(), 1);
    for entry in entries {
        writer.append(entry).unwrap();
    }
    writer.finish().unwrap().0
}

fn read_all(bytes: &[u8]) -> Result<Vec<(Member, Vec<u8>)>, ArchiveError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.tar");
    std::fs::write(&path, bytes).unwrap();
    let mut reader = open_tarball(&path)?;
    let mut members = Vec::new();
    while let Some(member) = reader.next_member()? {
        let mut content = Vec::new();
        reader
            .content()
            .read_to_end(&mut content)
            .map_err(|source| ArchiveError::Read {
                offset: member.content_offset,
                source,
            })?;
        members.push((member, content));
    }
    Ok(members)
}

#[test]
fn reads_back_what_the_writer_wrote_with_long_names() {
    let long_name = [b'n'; 150];
    let long_target = [b't'; 120];
    let mut path = b"d/".to_vec();
    path.extend_from_slice(&long_name);
    let bytes = write_archive(&[
        Entry::directory(b"".to_vec(), 0o755),
        Entry::directory(b"d".to_vec(), 0o555),
        Entry::inline_file(path.clone(), b"hello".to_vec(), 0o444),
        Entry::symlink(b"d/l".to_vec(), long_target.to_vec()),
        Entry::inline_file(b"d/\xff\xfe-raw".to_vec(), b"".to_vec(), 0o555),
    ]);
    let members = read_all(&bytes).unwrap();
    let paths: Vec<&[u8]> = members.iter().map(|(m, _)| m.path.as_slice()).collect();
    assert_eq!(
        paths,
        vec![&b""[..], b"d", &path, b"d/l", b"d/\xff\xfe-raw"]
    );
    assert_eq!(members[0].0.raw_name, b"./");
    assert_eq!(members[2].0.kind, MemberKind::Regular);
    assert_eq!(members[2].1, b"hello");
    assert_eq!(members[3].0.kind, MemberKind::Symlink);
    assert_eq!(members[3].0.link_target, long_target);
    assert_eq!(members[1].0.mode, 0o555);
}

#[test]
fn skipping_content_and_reading_it_give_the_same_members() {
    let bytes = write_archive(&[
        Entry::inline_file(b"a".to_vec(), vec![7u8; 1000], 0o444),
        Entry::inline_file(b"b".to_vec(), b"x".to_vec(), 0o444),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.tar");
    std::fs::write(&path, &bytes).unwrap();
    let mut reader = open_tarball(&path).unwrap();
    let mut names = Vec::new();
    while let Some(member) = reader.next_member().unwrap() {
        names.push(member.path);
    }
    assert_eq!(names, vec![b"a".to_vec(), b"b".to_vec()]);
    let end = reader.end().unwrap();
    assert_eq!(end.zero_blocks, 2);
    assert_eq!(end.trailing_data, None);
    assert_eq!(end.tar_bytes, bytes.len() as u64);
    assert_eq!(reader.file_size().unwrap(), bytes.len() as u64);
}

#[test]
fn a_truncated_archive_is_an_error() {
    let bytes = write_archive(&[Entry::inline_file(b"a".to_vec(), vec![1u8; 2000], 0o444)]);
    let err = read_all(&bytes[..1024]).unwrap_err();
    assert!(err.to_string().contains("ends in the middle"), "{err}");
}

#[test]
fn a_corrupt_header_names_its_offset() {
    let mut bytes = write_archive(&[
        Entry::inline_file(b"a".to_vec(), b"1".to_vec(), 0o444),
        Entry::inline_file(b"b".to_vec(), b"2".to_vec(), 0o444),
    ]);
    bytes[1024 + 10] ^= 0x40;
    let err = read_all(&bytes).unwrap_err();
    assert!(err.to_string().contains("byte 1024"), "{err}");
}

#[test]
fn compression_is_detected_by_magic() {
    assert_eq!(detect_compression(&[0x1f, 0x8b, 8]), Compression::Gzip);
    assert_eq!(detect_compression(b"\xfd7zXZ\0"), Compression::Xz);
    assert_eq!(
        detect_compression(&[0x28, 0xb5, 0x2f, 0xfd]),
        Compression::Zstd
    );
    assert_eq!(detect_compression(b"./\0\0"), Compression::None);
}

#[test]
fn pax_records_override_the_header() {
    let mut overrides = Overrides::default();
    apply_pax(b"16 path=a/b/cde\n11 size=42\n", &mut overrides).unwrap();
    assert_eq!(overrides.pax_path.as_deref(), Some(&b"a/b/cde"[..]));
    assert_eq!(overrides.size, Some(42));
    assert!(apply_pax(b"99 path=x\n", &mut overrides).is_err());
}

#[test]
fn paths_are_normalised() {
    assert_eq!(normalize_path(b"./"), b"");
    assert_eq!(normalize_path(b"."), b"");
    assert_eq!(normalize_path(b"./nix/store/"), b"nix/store");
    assert_eq!(normalize_path(b"/etc/passwd"), b"etc/passwd");
}

/// `tar` compressed by our gzip encoder (1 MiB members).
fn our_gzip(tar: &[u8]) -> Vec<u8> {
    use crate::compress::{CompressOptions, Compressor};
    use std::io::Write;
    let options = CompressOptions {
        compression: Compression::Gzip,
        level: Some(1),
        threads: 2,
    };
    let mut compressor = Compressor::new(Vec::new(), &options).unwrap();
    compressor.write_all(tar).unwrap();
    compressor.finish().unwrap()
}

/// `tar` compressed by flate2 as one plain gzip member (no extra field).
fn plain_gzip(tar: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(tar).unwrap();
    encoder.finish().unwrap()
}

/// An archive of several MiB: several of our members.
fn big_archive() -> (Vec<u8>, Vec<u8>) {
    let content: Vec<u8> = (0..3_500_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8 & 0x3f)
        .collect();
    let tar = write_archive(&[
        Entry::inline_file(b"big".to_vec(), content.clone(), 0o444),
        Entry::inline_file(b"small".to_vec(), b"x".to_vec(), 0o444),
    ]);
    (tar, content)
}

#[test]
fn our_members_other_gzip_and_a_mix_read_alike() {
    let (tar, content) = big_archive();
    let ours = our_gzip(&tar);
    let plain = plain_gzip(&tar);
    // Ours then someone else's member: the rest is read sequentially.
    let half = tar.len() / 2 / 512 * 512;
    let mixed = [our_gzip(&tar[..half]), plain_gzip(&tar[half..])].concat();
    // Someone else's first, then ours.
    let mixed_other_way = [plain_gzip(&tar[..half]), our_gzip(&tar[half..])].concat();
    for (what, gz) in [
        ("ours", ours),
        ("plain", plain),
        ("mixed", mixed),
        ("other way", mixed_other_way),
    ] {
        let members = read_all(&gz).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(members.len(), 2, "{what}");
        assert!(members[0].1 == content, "{what}: content differs");
        assert_eq!(members[1].1, b"x", "{what}");
    }
}

#[test]
fn a_damaged_or_truncated_member_names_its_offset() {
    let (tar, _) = big_archive();
    let ours = our_gzip(&tar);
    let second = u32::from_le_bytes(ours[16..20].try_into().unwrap()) as usize;
    let mut damaged = ours.clone();
    damaged[second + 1000] ^= 0x10;
    let err = read_all(&damaged).unwrap_err().to_string();
    assert!(
        err.contains(&format!(
            "gzip member at byte {second} of the file is damaged"
        )),
        "{err}"
    );
    let err = read_all(&ours[..second + 500]).unwrap_err().to_string();
    assert!(
        err.contains(&format!(
            "gzip member at byte {second} of the file is truncated"
        )),
        "{err}"
    );
}

/// Reads every member's content through `BufRead` (the walk's way), in
/// chunks of at most `step` bytes.
fn read_all_buffered(bytes: &[u8], step: usize) -> Result<Vec<Vec<u8>>, ArchiveError> {
    let mut reader = read_tarball_bytes(bytes.to_vec())?;
    let mut contents = Vec::new();
    while let Some(member) = reader.next_member()? {
        let mut content = reader.content();
        let mut bytes = Vec::new();
        loop {
            let chunk = content
                .fill_buf()
                .map_err(|e| ArchiveError::from_content(member.content_offset, e))?;
            if chunk.is_empty() {
                break;
            }
            let n = chunk.len().min(step);
            bytes.extend_from_slice(&chunk[..n]);
            content.consume(n);
        }
        contents.push(bytes);
    }
    Ok(contents)
}

/// Offsets of our members in `gz`, read from their "WT" length fields.
fn member_offsets(gz: &[u8]) -> Vec<usize> {
    let mut offsets = Vec::new();
    let mut at = 0;
    while at < gz.len() {
        offsets.push(at);
        at += u32::from_le_bytes(gz[at + 16..at + 20].try_into().unwrap()) as usize;
    }
    offsets
}

#[test]
fn members_of_every_size_read_alike_through_reused_buffers() {
    // Many more members than are in flight, long and short ones mixed, so
    // every buffer is reused, for a shorter member after a longer one too.
    let contents: Vec<Vec<u8>> = (0..24u32)
        .map(|i| {
            let size = [1_600_000, 3_000, 700_000, 1, 1_048_576][i as usize % 5];
            (0..size as u32)
                .map(|j| ((j ^ i).wrapping_mul(2_654_435_761) >> 25) as u8)
                .collect()
        })
        .collect();
    let files: Vec<Entry> = contents
        .iter()
        .enumerate()
        .map(|(i, content)| {
            Entry::inline_file(format!("f{i:02}").into_bytes(), content.clone(), 0o444)
        })
        .collect();
    let tar = write_archive(&files);
    // Each piece's last member is short: cut at varying block boundaries.
    let mut gz = Vec::new();
    let mut start = 0;
    for cut in [3_000_000, 512, 1_200_128, 40_960, 2_097_152]
        .iter()
        .cycle()
    {
        let end = (start + cut).min(tar.len());
        gz.extend(our_gzip(&tar[start..end]));
        start = end;
        if start == tar.len() {
            break;
        }
    }
    assert!(
        member_offsets(&gz).len() > 20,
        "too few members to reuse buffers"
    );
    let read = read_all(&gz).unwrap();
    assert_eq!(read.len(), files.len());
    for (i, (member, content)) in read.iter().enumerate() {
        assert_eq!(member.path, files[i].path, "names differ");
        assert!(*content == contents[i], "f{i:02} differs");
    }
    for step in [4096, usize::MAX] {
        let buffered = read_all_buffered(&gz, step).unwrap();
        assert!(buffered == contents, "BufRead in steps of {step} differs");
    }
}

/// Our gzip of `big_archive`, with the ISIZE trailer of its member at
/// `member` (an index) replaced by what `isize` makes of the true one.
fn with_isize(member: usize, isize: impl Fn(u32) -> u32) -> (Vec<u8>, usize) {
    let (tar, _) = big_archive();
    let mut gz = our_gzip(&tar);
    let offsets = member_offsets(&gz);
    let at = offsets[member];
    let end = offsets.get(member + 1).copied().unwrap_or(gz.len());
    let real = u32::from_le_bytes(gz[end - 4..end].try_into().unwrap());
    gz[end - 4..end].copy_from_slice(&isize(real).to_le_bytes());
    (gz, at)
}

#[test]
fn a_member_whose_isize_lies_is_an_error_naming_its_offset() {
    // Far more than a member holds: refused before any buffer is sized.
    let (gz, at) = with_isize(1, |_| u32::MAX);
    let err = read_all(&gz).unwrap_err().to_string();
    assert!(
        err.contains(&format!(
            "the gzip member at byte {at} of the file is damaged: the ISIZE at the end of its"
        )),
        "{err}"
    );
    assert!(
        err.contains("claims 4294967295 bytes, more than a member holds"),
        "{err}"
    );
    // Fewer bytes than it inflates to.
    let (gz, at) = with_isize(1, |real| real - 1);
    let err = read_all(&gz).unwrap_err().to_string();
    assert!(
        err.contains(&format!(
            "the gzip member at byte {at} of the file is damaged: it inflates to more than the"
        )),
        "{err}"
    );
    // More bytes than it inflates to (the last member is short).
    let last = member_offsets(&with_isize(0, |real| real).0).len() - 1;
    let (gz, at) = with_isize(last, |real| real + 1);
    let err = read_all(&gz).unwrap_err().to_string();
    assert!(
        err.contains(&format!(
            "the gzip member at byte {at} of the file is damaged: bad deflate data, a CRC-32 or ISIZE that does not match"
        )),
        "{err}"
    );
    // The same through BufRead, the walk's way in.
    let err = read_all_buffered(&gz, usize::MAX).unwrap_err().to_string();
    assert!(
        err.contains(&format!(
            "the gzip member at byte {at} of the file is damaged"
        )),
        "{err}"
    );
}

/// Our gzip of `big_archive` with `change` applied to it, given the
/// members' offsets (the end of the file last).
fn changed_gzip(change: impl Fn(&mut Vec<u8>, &[usize])) -> Vec<u8> {
    let (tar, _) = big_archive();
    let mut gz = our_gzip(&tar);
    let mut offsets = member_offsets(&gz);
    offsets.push(gz.len());
    assert!(offsets.len() >= 4, "{offsets:?}");
    change(&mut gz, &offsets);
    gz
}

fn set_wt(gz: &mut [u8], at: usize, len: usize) {
    gz[at + 16..at + 20].copy_from_slice(&(len as u32).to_le_bytes());
}

#[test]
fn a_wt_length_that_is_not_the_members_is_an_error_naming_its_offset() {
    let (tar, _) = big_archive();
    let ours = our_gzip(&tar);
    let second = member_offsets(&ours)[1];
    // Stretched over a member inserted after it (ISIZE copied, so the
    // trailer at the end of the stretched length looks right): gzip reads
    // the inserted member, so this reader must not skip it.
    let stretched = changed_gzip(|gz, at| {
        let isize = u32::from_le_bytes(gz[at[2] - 4..at[2]].try_into().unwrap());
        let mut inserted = crate::compress::gzip_member(&vec![0; isize as usize], 6)
            .unwrap()
            .bytes;
        assert_eq!(inserted[inserted.len() - 4..], isize.to_le_bytes());
        set_wt(gz, at[1], at[2] - at[1] + inserted.len());
        let tail = gz.split_off(at[2]);
        gz.append(&mut inserted);
        gz.extend(tail);
    });
    let err = read_all(&stretched).unwrap_err().to_string();
    assert!(
        err.contains(&format!(
            "the gzip member at byte {second} of the file is damaged: its WT length says"
        )) && err.contains("gzip and tar would read the"),
        "{err}"
    );
    // Overlapping the next member.
    let overlapping = changed_gzip(|gz, at| set_wt(gz, at[1], at[2] - at[1] + 100));
    // Shrunk inside the member.
    let shrunk = changed_gzip(|gz, at| set_wt(gz, at[1], at[2] - at[1] - 100));
    for (what, gz) in [("overlapping", overlapping), ("shrunk", shrunk)] {
        let err = read_all(&gz).unwrap_err().to_string();
        assert!(
            err.contains(&format!(
                "the gzip member at byte {second} of the file is damaged"
            )),
            "{what}: {err}"
        );
    }
}

#[test]
fn bytes_after_one_of_our_members_that_are_no_gzip_member_are_an_error() {
    let (tar, _) = big_archive();
    let ours = our_gzip(&tar);
    let third = member_offsets(&ours)[2];
    for junk in [&b"junk!"[..], &[0; 30], &[0x1f]] {
        // Between members, and after the last one.
        for at in [third, ours.len()] {
            let gz = [&ours[..at], junk, &ours[at..]].concat();
            let err = read_all(&gz).unwrap_err().to_string();
            assert!(
                err.contains(&format!(
                    "at byte {at} of the file, after the last gzip member, are bytes that are not a gzip member"
                )),
                "{junk:?} at {at}: {err}"
            );
        }
    }
    // Two files of ours one after the other are read as gzip reads them.
    let half = tar.len() / 2 / 512 * 512;
    let concatenated = [our_gzip(&tar[..half]), our_gzip(&tar[half..])].concat();
    assert_eq!(read_all(&concatenated).unwrap(), read_all(&ours).unwrap());
}

#[test]
fn the_file_digest_is_none_when_skipped_and_right_otherwise() {
    let (tar, _) = big_archive();
    let gz = our_gzip(&tar);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.tar.gz");
    std::fs::write(&path, &gz).unwrap();
    let mut reader = open_tarball(&path).unwrap();
    let expected: [u8; 32] = Sha256::digest(&gz).into();
    assert_eq!(reader.file_sha256().unwrap(), Some(expected));
    assert_eq!(reader.file_size().unwrap(), gz.len() as u64);
    let mut reader = open_tarball(&path).unwrap();
    reader.skip_file_sha256();
    assert_eq!(reader.file_sha256().unwrap(), None);
    assert_eq!(reader.file_size().unwrap(), gz.len() as u64);
    // A plain tar's content is lent straight from the file's buffer: bytes
    // consumed through BufRead are hashed once, as bytes read are.
    let mut reader = read_tarball_bytes(tar.clone()).unwrap();
    while reader.next_member().unwrap().is_some() {
        let mut content = reader.content();
        loop {
            let n = content.fill_buf().unwrap().len().min(1000);
            if n == 0 {
                break;
            }
            content.consume(n);
        }
    }
    let expected: [u8; 32] = Sha256::digest(&tar).into();
    assert_eq!(reader.file_sha256().unwrap(), Some(expected));
    assert_eq!(reader.file_size().unwrap(), tar.len() as u64);
}

/// An archive of a file `a`, a symlink `s` and a file `b`, with `change`
/// made to the symlink's header (at byte 1024) and its checksum fixed.
fn with_changed_symlink(change: impl Fn(&mut [u8; BLOCK_SIZE])) -> Vec<u8> {
    let mut bytes = write_archive(&[
        Entry::inline_file(b"a".to_vec(), b"1".to_vec(), 0o444),
        Entry::symlink(b"s".to_vec(), b"a".to_vec()),
        Entry::inline_file(b"b".to_vec(), b"2".to_vec(), 0o444),
    ]);
    let block: &mut [u8; BLOCK_SIZE] = (&mut bytes[1024..1024 + BLOCK_SIZE]).try_into().unwrap();
    change(block);
    block[148..156].copy_from_slice(b"        ");
    let sum = crate::tar::layout::checksum(block);
    block[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    bytes
}

#[test]
fn members_gnu_tar_and_bsdtar_read_differently_are_refused() {
    assert_eq!(read_all(&with_changed_symlink(|_| {})).unwrap().len(), 3);
    let sized = |flag: u8| {
        move |block: &mut [u8; BLOCK_SIZE]| {
            block[156] = flag;
            block[124..136].copy_from_slice(b"00000001000\0");
        }
    };
    // GNU tar skips the 512 bytes after a sized link, device or fifo;
    // bsdtar reads them as the next header (or a hard link's content).
    for (flag, kind) in [
        (b'2', "symlink"),
        (b'1', "hard link"),
        (b'3', "character device"),
        (b'4', "block device"),
        (b'6', "fifo"),
    ] {
        let err = read_all(&with_changed_symlink(sized(flag)))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!(
                "bad tar header at byte 1024 of the tar stream: a {kind} with a size of 512 bytes; \
                 GNU tar and bsdtar disagree on whether the bytes after it are content or the next \
                 header, so it is refused"
            )
        );
    }
    // A directory's size is ignored by both: it is read as it was.
    let members = read_all(&with_changed_symlink(sized(b'5'))).unwrap();
    assert_eq!(members[1].0.kind, MemberKind::Directory);
    // GNU tar extracts unknown types as files, bsdtar reads some as ACLs,
    // pax records, volume labels or sparse files.
    for flag in [b'8', b'A', b'S', b'V', b'X', 0x1b] {
        let err = read_all(&with_changed_symlink(|block| block[156] = flag))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("bad tar header at byte 1024 of the tar stream: type flag '")
                && err.contains("is not a plain tar type (0 to 7)")
                && !err.contains('\x1b'),
            "{err}"
        );
    }
    // A hard link to nothing.
    let err = read_all(&with_changed_symlink(|block| {
        block[156] = b'1';
        block[157..257].fill(0);
    }))
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("a hard link with an empty target; GNU tar links it to '.'"),
        "{err}"
    );
    // A file named `s/`: a directory to bsdtar.
    let err = read_all(&with_changed_symlink(|block| {
        block[156] = b'0';
        block[..3].copy_from_slice(b"s/\0");
    }))
    .unwrap_err();
    assert!(
        err.to_string().contains("a file whose name ends in '/'"),
        "{err}"
    );
}

/// A header block for `name` of `flag` with `data` after it, padded.
fn raw_member(name: &[u8], flag: u8, data: &[u8]) -> Vec<u8> {
    let mut block = [0u8; BLOCK_SIZE];
    block[..name.len()].copy_from_slice(name);
    block[100..108].copy_from_slice(b"0000644\0");
    block[124..136].copy_from_slice(format!("{:011o}\0", data.len()).as_bytes());
    block[156] = flag;
    block[257..265].copy_from_slice(b"ustar\x0000");
    let sum = crate::tar::layout::checksum(&block);
    block[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let mut bytes = block.to_vec();
    bytes.extend_from_slice(data);
    bytes.resize(bytes.len().div_ceil(BLOCK_SIZE) * BLOCK_SIZE, 0);
    bytes
}

#[test]
fn pax_and_long_names_gnu_tar_and_bsdtar_read_apart_are_refused() {
    let file = raw_member(b"./f", b'0', b"data");
    let long = raw_member(b"././@LongLink", b'L', b"./long\0");
    let pax = |records: &[u8]| raw_member(b"./PaxHeaders/f", b'x', records);
    let global = |records: &[u8]| raw_member(b"./PaxHeaders/g", b'g', records);
    let read = |parts: &[&[u8]]| {
        let mut tar = parts.concat();
        tar.extend_from_slice(&[0; 2 * BLOCK_SIZE]);
        read_all(&tar).map(|m| m[0].0.path.clone())
    };
    // Alone, each names the member; a global comment is harmless.
    assert_eq!(read(&[&long, &file]).unwrap(), b"long");
    assert_eq!(read(&[&pax(b"14 path=./pax\n"), &file]).unwrap(), b"pax");
    assert_eq!(read(&[&global(b"16 comment=abcd\n"), &file]).unwrap(), b"f");
    // Two long names: the last one, as in GNU tar and bsdtar.
    let other = raw_member(b"././@LongLink", b'L', b"./other\0");
    assert_eq!(read(&[&other, &long, &file]).unwrap(), b"long");
    // A long link name for a symlink whose own link name is empty: bsdtar
    // ignores it.
    let symlink = raw_member(b"./s", b'2', b"");
    let long_link = raw_member(b"././@LongLink", b'K', b"./target\0");
    let err = read(&[&long_link, &symlink]).unwrap_err().to_string();
    assert!(err.contains("its own link name field is empty"), "{err}");
    let err = read(&[&pax(b"21 linkpath=./target\n"), &symlink])
        .unwrap_err()
        .to_string();
    assert!(err.contains("its own link name field is empty"), "{err}");
    for (what, parts, expected) in [
        (
            "long name, then pax",
            vec![&long[..], &pax(b"14 path=./pax\n"), &file],
            "a pax name for the same member as well",
        ),
        (
            "pax, then long name",
            vec![&pax(b"14 path=./pax\n")[..], &long, &file],
            "a pax name for the same member as well",
        ),
        (
            "two pax headers",
            vec![&pax(b"14 path=./pax\n")[..], &pax(b"11 mtime=5\n"), &file],
            "a second one for the same member",
        ),
        (
            "a sparse file",
            vec![&pax(b"22 GNU.sparse.major=1\n")[..], &file],
            "a GNU.sparse.major record",
        ),
        (
            "a global size",
            vec![&global(b"12 size=512\n")[..], &file],
            "a 'size' record: GNU tar applies it to every member after it",
        ),
        (
            "a global name",
            vec![&global(b"14 path=./etc\n")[..], &file],
            "a 'path' record",
        ),
    ] {
        let parts: Vec<&[u8]> = parts.iter().map(|p| &p[..]).collect();
        let err = read(&parts).unwrap_err().to_string();
        assert!(err.contains(expected), "{what}: {err}");
    }
}
