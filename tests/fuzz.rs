//! Mutation fuzzing of the archive reader behind `inspect`, `verify`, `diff`
//! and `check FILE`, called through the library for speed.
//!
//! The inputs are real tarballs that `wsl-tarball write` made of the fixture
//! closure (gzip, xz, zstd and none), mutated with a fixed seed: flipped
//! bytes, truncation, splices, duplicated and dropped blocks, huge octal and
//! base-256 sizes, GNU long-name and pax records with huge or broken lengths,
//! odd type flags and names, trailing data; structural mutations are made on
//! the tar stream with the header checksum fixed, then compressed again, so
//! they reach past the checksum. Every case must end (bounded time), without
//! a panic, with memory bounded (a counting allocator: peak and largest
//! single allocation), and with error messages free of control characters.
//!
//! `cargo test --test fuzz` runs a bounded set; `cargo test --test fuzz --
//! --ignored` a longer one.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;
use wsl_tarball::archive::open_tarball;
use wsl_tarball::inspect;
use wsl_tarball::scan::{archive::scan_archive_file, ScanOptions, ScanRules, ScanScope, Scanner};
use wsl_tarball::tar::BLOCK_SIZE as BLOCK;

/// Counts live bytes, their peak, and the largest single allocation.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static LARGEST: AtomicUsize = AtomicUsize::new(0);

// A counting global allocator is unsafe by its trait; it only forwards to
// `System` (test-only exception to the crate's `unsafe_code = "deny"`).
#[allow(unsafe_code)]
// SAFETY: every method forwards to `System` with the caller's arguments.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds GlobalAlloc's contract, passed on as is.
        let pointer = unsafe { System.alloc(layout) };
        if !pointer.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
            LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        }
        pointer
    }
    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        // SAFETY: the caller upholds GlobalAlloc's contract, passed on as is.
        unsafe { System.dealloc(pointer, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller upholds GlobalAlloc's contract, passed on as is.
        let new = unsafe { System.realloc(pointer, layout, new_size) };
        if !new.is_null() {
            if new_size >= layout.size() {
                let grown = new_size - layout.size();
                let live = LIVE.fetch_add(grown, Ordering::Relaxed) + grown;
                PEAK.fetch_max(live, Ordering::Relaxed);
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
            LARGEST.fetch_max(new_size, Ordering::Relaxed);
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The most one case may allocate at once above what was live before it.
const MAX_CASE_MEMORY: usize = 256 << 20;
/// The largest single allocation a reader may make: nothing is sized by an
/// untrusted length without a cap (the largest capped one is a 4 MiB
/// skeleton table).
const MAX_ALLOCATION: usize = 8 << 20;
/// A case that takes longer has hung.
const CASE_TIMEOUT: Duration = Duration::from_secs(60);

/// xorshift64*: a fixed seed gives the same cases everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    None,
    Gzip,
    Xz,
    Zstd,
}

const FORMATS: [Format; 4] = [Format::None, Format::Gzip, Format::Xz, Format::Zstd];

fn compress(format: Format, tar: &[u8]) -> Vec<u8> {
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
struct Seed {
    format: Format,
    file: Vec<u8>,
    tar: Vec<u8>,
    /// Offsets of the header blocks in the tar stream.
    headers: Vec<usize>,
}

fn seeds(dir: &Path) -> Vec<Seed> {
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
fn fix_checksum(block: &mut [u8]) {
    block[148..156].fill(b' ');
    let sum: u32 = block[..BLOCK].iter().map(|&b| u32::from(b)).sum();
    let text = format!("{sum:06o}\0 ");
    block[148..156].copy_from_slice(text.as_bytes());
}

fn gnu_header(name: &[u8], type_flag: u8, size_field: &[u8; 12]) -> Vec<u8> {
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

fn octal_size(size: u64) -> [u8; 12] {
    let mut field = [0u8; 12];
    let text = format!("{:011o}\0", size.min(0o77777777777));
    field.copy_from_slice(text.as_bytes());
    field
}

fn base256_size(size: u64) -> [u8; 12] {
    let mut field = [0u8; 12];
    field[0] = 0x80;
    field[4..12].copy_from_slice(&size.to_be_bytes());
    field
}

/// What a case does to the seed.
#[derive(Debug, Clone)]
enum Mutation {
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

fn choose(rng: &mut Rng, seed: &Seed) -> Mutation {
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
fn apply(seed: &Seed, mutation: &Mutation) -> Vec<u8> {
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

/// An error message for people: no control characters, no raw bytes.
fn assert_printable(case: &str, message: &str) {
    assert!(
        !message.chars().any(|c| c.is_control()),
        "{case}: control characters in the message {message:?}"
    );
}

/// Every reader on the file; returns a line saying how each ended.
fn read_with_every_reader(case: &str, path: &Path, original: &Path) -> String {
    let mut outcome = String::new();
    match inspect::inspect(path, 5, None) {
        Ok(_) => outcome.push_str("inspect ok; "),
        Err(e) => {
            assert_printable(case, &e.to_string());
            outcome.push_str("inspect error; ");
        }
    }
    match inspect::verify(path, false) {
        Ok(v) => outcome.push_str(if v.passed() {
            "verify ok; "
        } else {
            "verify failed; "
        }),
        Err(e) => {
            assert_printable(case, &e.to_string());
            outcome.push_str("verify error; ");
        }
    }
    match inspect::diff(path, original) {
        Ok(d) => outcome.push_str(if d.identical {
            "diff same; "
        } else {
            "diff differs; "
        }),
        Err(e) => {
            assert_printable(case, &e.to_string());
            outcome.push_str("diff error; ");
        }
    }
    let rules = std::sync::Arc::new(ScanRules::new(&ScanOptions::default()).unwrap());
    let mut scanner = Scanner::new(rules, ScanScope::new("/nix/store"));
    match scan_archive_file(path, &mut scanner) {
        Ok(()) => {
            scanner.finish();
            outcome.push_str("check ok");
        }
        Err(e) => {
            assert_printable(case, &e.to_string());
            outcome.push_str("check error");
        }
    }
    outcome
}

/// Runs one case on its own thread: a panic or a hang names the case.
fn run_case(case: String, path: PathBuf, original: PathBuf) -> String {
    let (sender, receiver) = mpsc::channel();
    let label = case.clone();
    let live_before = LIVE.load(Ordering::Relaxed);
    PEAK.store(live_before, Ordering::Relaxed);
    LARGEST.store(0, Ordering::Relaxed);
    let worker = std::thread::spawn(move || {
        let outcome = read_with_every_reader(&label, &path, &original);
        let _ = sender.send(outcome);
    });
    let outcome = match receiver.recv_timeout(CASE_TIMEOUT) {
        Ok(outcome) => outcome,
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("{case}: still reading after {CASE_TIMEOUT:?}")
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            let _ = worker.join();
            panic!("{case}: a reader panicked (see above)");
        }
    };
    worker.join().unwrap();
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(live_before);
    let largest = LARGEST.load(Ordering::Relaxed);
    assert!(
        peak <= MAX_CASE_MEMORY,
        "{case}: {peak} bytes allocated at once"
    );
    assert!(
        largest <= MAX_ALLOCATION,
        "{case}: an allocation of {largest} bytes"
    );
    outcome
}

fn fuzz(cases: usize, seed_value: u64) {
    let dir = tempfile::tempdir().unwrap();
    let seeds = seeds(dir.path());
    let originals: Vec<PathBuf> = seeds
        .iter()
        .map(|seed| {
            let path = dir.path().join(format!("original-{:?}", seed.format));
            std::fs::write(&path, &seed.file).unwrap();
            path
        })
        .collect();
    let mut rng = Rng(seed_value);
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    for index in 0..cases {
        let which = rng.below(seeds.len());
        let seed = &seeds[which];
        let mutation = choose(&mut rng, seed);
        let bytes = apply(seed, &mutation);
        let path = dir.path().join("case");
        std::fs::write(&path, &bytes).unwrap();
        let mut shown = format!("{mutation:?}");
        shown.truncate(200);
        let case = format!(
            "case {index} (seed {seed_value:#x}, {:?}): {shown}",
            seed.format
        );
        let case_started = Instant::now();
        let outcome = run_case(case, path, originals[which].clone());
        slowest = slowest.max(case_started.elapsed());
        *outcomes.entry(outcome).or_default() += 1;
    }
    eprintln!(
        "{cases} cases in {:.1} s, slowest {:.2} s; outcomes:",
        started.elapsed().as_secs_f64(),
        slowest.as_secs_f64()
    );
    for (outcome, count) in &outcomes {
        eprintln!("  {count:5}  {outcome}");
    }
    // The mutations reach past the first checks: some cases are read to the
    // end and found wrong, not only rejected.
    assert!(
        outcomes.keys().any(|o| o.contains("verify failed")),
        "{outcomes:?}"
    );
    assert!(
        outcomes.keys().any(|o| o.contains("verify error")),
        "{outcomes:?}"
    );
}

#[test]
fn mutated_tarballs_never_panic_hang_or_balloon() {
    fuzz(500, 0x5eed_0001);
}

#[test]
#[ignore = "minutes: cargo test --test fuzz -- --ignored"]
fn mutated_tarballs_never_panic_hang_or_balloon_long_run() {
    fuzz(20_000, 0x5eed_0002);
}
