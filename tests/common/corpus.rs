//! The mutation-fuzz corpus shared by tests/fuzz.rs (which checks that the
//! readers never panic, hang or balloon) and tests/differential.rs (which
//! checks that they read what GNU tar and bsdtar read): real tarballs
//! `wsl-tarball write` made of the fixture closure (gzip, xz, zstd and none),
//! mutated with a fixed seed: flipped bytes, truncation, splices, duplicated
//! and dropped blocks, huge octal and base-256 sizes, GNU long-name and pax
//! records with huge or broken lengths, odd type flags and names, trailing
//! data. Structural mutations are made on the tar stream with the header
//! checksum fixed, then compressed again, so they reach past the checksum.

use std::io::Write;
use std::path::Path;

use super::write_fixture;
use wsl_tarball::archive::open_tarball;
pub use wsl_tarball::tar::BLOCK_SIZE as BLOCK;

/// xorshift64*: a fixed seed gives the same cases everywhere.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    None,
    Gzip,
    Xz,
    Zstd,
}

pub const FORMATS: [Format; 4] = [Format::None, Format::Gzip, Format::Xz, Format::Zstd];

pub fn compress(format: Format, tar: &[u8]) -> Vec<u8> {
    match format {
        Format::None => tar.to_vec(),
        Format::Gzip => {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            encoder.write_all(tar).unwrap();
            encoder.finish().unwrap()
        }
        Format::Xz => {
            let mut encoder = liblzma::write::XzEncoder::new(Vec::new(), 0);
            encoder.write_all(tar).unwrap();
            encoder.finish().unwrap()
        }
        Format::Zstd => zstd::stream::encode_all(tar, 1).unwrap(),
    }
}

/// One seed tarball: the file `write` made and its tar stream.
pub struct Seed {
    pub format: Format,
    pub file: Vec<u8>,
    pub tar: Vec<u8>,
    /// Offsets of the header blocks in the tar stream.
    pub headers: Vec<usize>,
}

pub fn seeds(dir: &Path) -> Vec<Seed> {
    let plain = write_fixture(dir, "seed.tar", &["--compression", "none"]);
    let tar = std::fs::read(&plain).unwrap();
    let mut headers = Vec::new();
    let mut reader = open_tarball(&plain).unwrap();
    while let Some(member) = reader.next_member().unwrap() {
        headers.push(member.offset as usize);
        // The member's own header after long-name blocks.
        if member.content_offset as usize >= BLOCK {
            headers.push(member.content_offset as usize - BLOCK);
        }
    }
    headers.sort_unstable();
    headers.dedup();
    FORMATS
        .iter()
        .map(|&format| {
            let name = match format {
                Format::None => "none",
                Format::Gzip => "gzip",
                Format::Xz => "xz",
                Format::Zstd => "zstd",
            };
            let file = if format == Format::None {
                tar.clone()
            } else {
                std::fs::read(write_fixture(
                    dir,
                    &format!("seed.{name}"),
                    &["--compression", name],
                ))
                .unwrap()
            };
            Seed {
                format,
                file,
                tar: tar.clone(),
                headers: headers.clone(),
            }
        })
        .collect()
}

/// Recomputes a header block's checksum, so a mutated header is read on.
pub fn fix_checksum(block: &mut [u8]) {
    block[148..156].fill(b' ');
    let sum: u32 = block[..BLOCK].iter().map(|&b| u32::from(b)).sum();
    let text = format!("{sum:06o}\0 ");
    block[148..156].copy_from_slice(text.as_bytes());
}

pub fn gnu_header(name: &[u8], type_flag: u8, size_field: &[u8; 12]) -> Vec<u8> {
    let mut block = vec![0u8; BLOCK];
    block[..name.len().min(100)].copy_from_slice(&name[..name.len().min(100)]);
    block[100..108].copy_from_slice(b"0000644\0");
    block[108..116].copy_from_slice(b"0000000\0");
    block[116..124].copy_from_slice(b"0000000\0");
    block[124..136].copy_from_slice(size_field);
    block[136..148].copy_from_slice(b"00000000001\0");
    block[156] = type_flag;
    block[257..265].copy_from_slice(b"ustar  \0");
    fix_checksum(&mut block);
    block
}

pub fn octal_size(size: u64) -> [u8; 12] {
    let mut field = [0u8; 12];
    let text = format!("{:011o}\0", size.min(0o77777777777));
    field.copy_from_slice(text.as_bytes());
    field
}

pub fn base256_size(size: u64) -> [u8; 12] {
    let mut field = [0u8; 12];
    field[0] = 0x80;
    field[4..12].copy_from_slice(&size.to_be_bytes());
    field
}

/// What a case does to the seed.
#[derive(Debug, Clone)]
pub enum Mutation {
    FlipFileBytes(Vec<(usize, u8)>),
    TruncateFile(usize),
    FlipTarBytes(Vec<(usize, u8)>),
    HeaderByte {
        header: usize,
        at: usize,
        value: u8,
    },
    HugeOctalSize {
        header: usize,
        size: u64,
    },
    Base256Size {
        header: usize,
        size: u64,
    },
    LongName {
        before: usize,
        flag: u8,
        size: u64,
        data: usize,
    },
    Pax {
        before: usize,
        records: Vec<u8>,
    },
    TypeFlag {
        header: usize,
        flag: u8,
    },
    Name {
        header: usize,
        name: Vec<u8>,
    },
    Splice {
        from: usize,
        to: usize,
        len: usize,
    },
    DuplicateBlocks {
        at: usize,
        count: usize,
    },
    DropBlocks {
        at: usize,
        count: usize,
    },
    TruncateTar(usize),
    Trailing(Vec<u8>),
}

pub fn choose(rng: &mut Rng, seed: &Seed) -> Mutation {
    let header = *rng.pick(&seed.headers);
    let tar_len = seed.tar.len();
    let blocks = tar_len / BLOCK;
    let huge = *rng.pick(&[
        1u64 << 33,
        u64::MAX,
        u64::MAX - 511,
        (1 << 63) + 7,
        1 << 40,
        0o77777777777,
        (tar_len as u64) * 4,
    ]);
    match rng.below(15) {
        0 => {
            let n = 1 + rng.below(8);
            let flips = (0..n)
                .map(|_| (rng.below(seed.file.len()), 1 + rng.below(255) as u8))
                .collect();
            Mutation::FlipFileBytes(flips)
        }
        1 => Mutation::TruncateFile(rng.below(seed.file.len())),
        2 => {
            let n = 1 + rng.below(16);
            let flips = (0..n)
                .map(|_| (rng.below(tar_len), 1 + rng.below(255) as u8))
                .collect();
            Mutation::FlipTarBytes(flips)
        }
        3 => Mutation::HeaderByte {
            header,
            at: rng.below(BLOCK),
            value: rng.next() as u8,
        },
        4 => Mutation::HugeOctalSize { header, size: huge },
        5 => Mutation::Base256Size { header, size: huge },
        6 => Mutation::LongName {
            before: header,
            flag: *rng.pick(b"LK"),
            size: *rng.pick(&[huge, 1 << 20, (1 << 20) + 1, 0, 100, 4096]),
            data: rng.below(3 * BLOCK),
        },
        7 => {
            let records = rng
                .pick(&[
                    &b"999999999999 path=x\n"[..],
                    b"30 size=18446744073709551615\n",
                    b"12 size=-1\n",
                    b"5 x\n",
                    b"0 path=\n",
                    b"13 linkpath=\n",
                    b"17 mtime=1.5e99\n",
                    b"100000000000000000000 path=a\n",
                    b"",
                ])
                .to_vec();
            Mutation::Pax {
                before: header,
                records,
            }
        }
        8 => Mutation::TypeFlag {
            header,
            flag: *rng.pick(b"0123456789LKxgAZSV\0"),
        },
        9 => Mutation::Name {
            header,
            name: rng
                .pick(&[
                    &b"../../etc/passwd"[..],
                    b"/etc/shadow",
                    b"",
                    b".",
                    b"./nix/store/./.",
                    b"./nix/store/x/../../..",
                    b"./\xff\xfe\x01\x1b[31m",
                    b"./nix/var/nix/db/db.sqlite",
                    b"./etc/passwd",
                ])
                .to_vec(),
        },
        10 => Mutation::Splice {
            from: rng.below(tar_len),
            to: rng.below(tar_len),
            len: rng.below(8 * BLOCK),
        },
        11 => Mutation::DuplicateBlocks {
            at: rng.below(blocks),
            count: 1 + rng.below(40),
        },
        12 => Mutation::DropBlocks {
            at: rng.below(blocks),
            count: 1 + rng.below(8),
        },
        13 => Mutation::TruncateTar(rng.below(tar_len)),
        _ => {
            let n = rng.below(30_000);
            let byte = *rng.pick(&[0u8, 0, 1, 0xff]);
            Mutation::Trailing(vec![byte; n])
        }
    }
}

/// The file a case reads: the compressed file mutated, or the tar stream
/// mutated and compressed again.
pub fn apply(seed: &Seed, mutation: &Mutation) -> Vec<u8> {
    let mut tar = seed.tar.clone();
    let header_block = |tar: &mut Vec<u8>, at: usize, change: &dyn Fn(&mut [u8])| {
        if at + BLOCK <= tar.len() {
            let block = &mut tar[at..at + BLOCK];
            change(block);
            fix_checksum(block);
        }
    };
    match mutation {
        Mutation::FlipFileBytes(flips) => {
            let mut file = seed.file.clone();
            for &(at, mask) in flips {
                file[at] ^= mask;
            }
            return file;
        }
        Mutation::TruncateFile(len) => return seed.file[..*len].to_vec(),
        Mutation::FlipTarBytes(flips) => {
            for &(at, mask) in flips {
                tar[at] ^= mask;
            }
        }
        Mutation::HeaderByte { header, at, value } => {
            header_block(&mut tar, *header, &|b| b[*at] = *value)
        }
        Mutation::HugeOctalSize { header, size } => header_block(&mut tar, *header, &|b| {
            b[124..136].copy_from_slice(&octal_size(*size))
        }),
        Mutation::Base256Size { header, size } => header_block(&mut tar, *header, &|b| {
            b[124..136].copy_from_slice(&base256_size(*size))
        }),
        Mutation::LongName {
            before,
            flag,
            size,
            data,
        } => {
            let size_field = if *size > 0o77777777777 {
                base256_size(*size)
            } else {
                octal_size(*size)
            };
            let mut inserted = gnu_header(b"././@LongLink", *flag, &size_field);
            inserted.extend_from_slice(&vec![b'n'; *data]);
            let padded = inserted.len().div_ceil(BLOCK) * BLOCK;
            inserted.resize(padded, 0);
            tar.splice(*before..*before, inserted);
        }
        Mutation::Pax { before, records } => {
            let mut inserted =
                gnu_header(b"./PaxHeaders/x", b'x', &octal_size(records.len() as u64));
            inserted[257..265].copy_from_slice(b"ustar\x0000");
            fix_checksum(&mut inserted);
            inserted.extend_from_slice(records);
            let padded = inserted.len().div_ceil(BLOCK) * BLOCK;
            inserted.resize(padded, 0);
            tar.splice(*before..*before, inserted);
        }
        Mutation::TypeFlag { header, flag } => header_block(&mut tar, *header, &|b| b[156] = *flag),
        Mutation::Name { header, name } => header_block(&mut tar, *header, &|b| {
            b[..100].fill(0);
            b[..name.len()].copy_from_slice(name);
        }),
        Mutation::Splice { from, to, len } => {
            let len = (*len).min(tar.len() - from).min(tar.len() - to);
            let piece = tar[*from..from + len].to_vec();
            tar[*to..to + len].copy_from_slice(&piece);
        }
        Mutation::DuplicateBlocks { at, count } => {
            let start = at * BLOCK;
            let end = (start + count * BLOCK).min(tar.len());
            let piece = tar[start..end].to_vec();
            tar.splice(start..start, piece);
        }
        Mutation::DropBlocks { at, count } => {
            let start = at * BLOCK;
            let end = (start + count * BLOCK).min(tar.len());
            tar.drain(start..end);
        }
        Mutation::TruncateTar(len) => tar.truncate(*len),
        Mutation::Trailing(bytes) => tar.extend_from_slice(bytes),
    }
    compress(seed.format, &tar)
}

/// A POSIX ustar header block for NAME (at most 100 bytes), owned by 0:0.
pub fn ustar_header(name: &[u8], type_flag: u8, size: u64, mode: u32) -> Vec<u8> {
    let mut block = gnu_header(name, type_flag, &octal_size(size));
    block[100..108].copy_from_slice(format!("{mode:07o}\0").as_bytes());
    block[257..265].copy_from_slice(b"ustar\x0000");
    fix_checksum(&mut block);
    block
}
