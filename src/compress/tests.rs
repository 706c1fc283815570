//! Tests of the compressors; several shell out to the real `gzip`, `pigz`,
//! `xz` and `zstd` tools.

use std::io::{self, Read, Write};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use super::*;

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;

/// Tiny deterministic PRNG (xorshift64*).
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const WORDS: &[&str] = &[
    "nix",
    "store",
    "lib",
    "share",
    "usr",
    "bin",
    "etc",
    "the",
    "of",
    "and",
    "systemd",
    "service",
    "unit",
    "wsl",
    "config",
    "-rw-r--r--",
    "root",
    "#include",
    "<stdio.h>",
    "int",
    "return",
    "0;",
    "{",
    "}",
    "error",
    "warning",
    "/nix/store/",
    "glibc-2.40",
    "lib.so.6",
];

fn text_like(rng: &mut XorShift, out: &mut Vec<u8>, len: usize) {
    let end = out.len() + len;
    while out.len() < end {
        let word = WORDS[rng.below(WORDS.len())];
        out.extend_from_slice(word.as_bytes());
        match rng.below(12) {
            0 => out.push(b'\n'),
            1 => out.extend_from_slice(format!("{}", rng.next() % 100_000).as_bytes()),
            _ => out.push(b' '),
        }
    }
    out.truncate(end);
}

/// Text-like input only.
fn text_input(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = XorShift(seed);
    let mut out = Vec::with_capacity(len);
    text_like(&mut rng, &mut out, len);
    out
}

/// Segments of text, random bytes, zeros and short repeats.
fn mixed_input(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = XorShift(seed);
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        let segment = (1 + rng.below(300 * KIB)).min(len - out.len());
        match rng.below(4) {
            0 => text_like(&mut rng, &mut out, segment),
            1 => (0..segment).for_each(|_| out.push(rng.next() as u8)),
            2 => out.resize(out.len() + segment, 0),
            _ => {
                let pattern: Vec<u8> = (0..1 + rng.below(40)).map(|_| rng.next() as u8).collect();
                out.extend(pattern.iter().cycle().take(segment));
            }
        }
    }
    out
}

fn options(compression: Compression, level: Option<u32>, threads: usize) -> CompressOptions {
    CompressOptions {
        compression,
        level,
        threads,
    }
}

/// Compresses `input` written in pieces of `chunk` bytes.
fn compress_chunked(input: &[u8], options: &CompressOptions, chunk: usize) -> Vec<u8> {
    let mut compressor = Compressor::new(Vec::new(), options).expect("valid options");
    for piece in input.chunks(chunk.max(1)) {
        compressor.write_all(piece).expect("write to a Vec");
    }
    assert_eq!(compressor.bytes_in(), input.len() as u64);
    compressor.finish().expect("finish into a Vec")
}

fn compress(input: &[u8], options: &CompressOptions) -> Vec<u8> {
    compress_chunked(input, options, input.len())
}

/// Runs `tool args file` on `data` stored in a temporary file; returns stdout.
fn run_tool(tool: &str, args: &[&str], data: &[u8]) -> Vec<u8> {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    file.write_all(data).expect("write temp file");
    let output = Command::new(tool)
        .args(args)
        .arg(file.path())
        .output()
        .unwrap_or_else(|e| panic!("running {tool}: {e}"));
    assert!(
        output.status.success(),
        "{tool} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

fn flate2_gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(data)
        .read_to_end(&mut out)
        .expect("flate2 decodes");
    out
}

/// The members of one of our gzip streams, found through the "WT" extra
/// subfield alone: (offset, total length, ISIZE) each. Panics unless every
/// header is ours and the lengths chain exactly to the end of the stream.
fn members(compressed: &[u8]) -> Vec<(usize, usize, usize)> {
    let mut found = Vec::new();
    let mut at = 0;
    while at < compressed.len() {
        let header = &compressed[at..at + GZIP_MEMBER_HEADER_LEN];
        assert_eq!(header[..4], [0x1f, 0x8b, 8, 4], "member at {at}");
        assert_eq!(header[4..8], [0, 0, 0, 0], "MTIME of member at {at}");
        assert_eq!(header[9], 3, "OS of member at {at}");
        assert_eq!(header[10..12], [8, 0], "XLEN of member at {at}");
        assert_eq!(header[12..14], GZIP_EXTRA_SUBFIELD_ID, "member at {at}");
        assert_eq!(header[14..16], [4, 0], "SLEN of member at {at}");
        let len = u32::from_le_bytes(header[16..20].try_into().unwrap()) as usize;
        assert!(at + len <= compressed.len(), "member at {at} overruns");
        let isize = u32::from_le_bytes(compressed[at + len - 4..at + len].try_into().unwrap());
        found.push((at, len, isize as usize));
        at += len;
    }
    found
}

/// Checks a gzip stream with `gzip -t`, `gzip -dc` and flate2, and that its
/// members chain through their length fields and cover at most 1 MiB each.
fn assert_gzip_decodes_to(compressed: &[u8], input: &[u8]) {
    let members = members(compressed);
    assert!(!members.is_empty());
    assert!(members
        .iter()
        .all(|&(_, _, isize)| isize <= GZIP_MEMBER_SIZE));
    assert_eq!(
        members.iter().map(|&(_, _, isize)| isize).sum::<usize>(),
        input.len()
    );
    run_tool("gzip", &["-t"], compressed);
    assert!(
        run_tool("gzip", &["-dc"], compressed) == input,
        "gzip -dc mismatch"
    );
    assert!(flate2_gunzip(compressed) == input, "flate2 mismatch");
}

#[test]
fn gzip_round_trips_edge_sizes() {
    let source = mixed_input(3 * GZIP_MEMBER_SIZE + 10, 1);
    for len in [
        0,
        1,
        32 * KIB,
        GZIP_MEMBER_SIZE - 1,
        GZIP_MEMBER_SIZE,
        GZIP_MEMBER_SIZE + 1,
        2 * GZIP_MEMBER_SIZE,
        3 * GZIP_MEMBER_SIZE + 10,
    ] {
        let input = &source[..len];
        let compressed = compress(input, &options(Compression::Gzip, None, 2));
        assert_gzip_decodes_to(&compressed, input);
        // Full members, then the rest: no empty member.
        let expected = len.div_ceil(GZIP_MEMBER_SIZE).max(1);
        assert_eq!(members(&compressed).len(), expected, "{len} bytes");
    }
}

#[test]
fn gzip_of_nothing_is_a_valid_empty_gzip() {
    let compressed = compress(b"", &options(Compression::Gzip, None, 1));
    assert_gzip_decodes_to(&compressed, b"");
    // One member: header, an empty final block, zero CRC and size.
    let members = members(&compressed);
    assert_eq!(members.len(), 1);
    assert_eq!(compressed[compressed.len() - 8..], [0; 8]);
}

#[test]
fn gzip_header_fields() {
    for (level, extra_flags) in [(1, 4), (2, 0), (6, 0), (9, 2)] {
        let input = text_input(2 * MIB + 200 * KIB, level.into());
        let compressed = compress(&input, &options(Compression::Gzip, Some(level), 2));
        let members = members(&compressed);
        assert_eq!(members.len(), 3, "level {level}");
        for (at, _, _) in members {
            assert_eq!(
                compressed[at..at + 16],
                [
                    0x1f,
                    0x8b,
                    8,
                    4,
                    0,
                    0,
                    0,
                    0,
                    extra_flags,
                    3,
                    8,
                    0,
                    b'W',
                    b'T',
                    4,
                    0
                ],
                "level {level}, member at {at}"
            );
        }
        assert_gzip_decodes_to(&compressed, &input);
    }
}

#[test]
fn gzip_all_levels_round_trip_incompressible_and_compressible_input() {
    let mut rng = XorShift(41);
    let mut input: Vec<u8> = (0..GZIP_MEMBER_SIZE + 5000)
        .map(|_| rng.next() as u8)
        .collect();
    input.extend(text_input(GZIP_MEMBER_SIZE, 43));
    for level in 1..=9 {
        let compressed = compress(&input, &options(Compression::Gzip, Some(level), 2));
        assert_gzip_decodes_to(&compressed, &input);
        assert!(compressed == compress(&input, &options(Compression::Gzip, Some(level), 1)));
    }
}

#[test]
fn gzip_identical_across_thread_counts_and_runs() {
    let input = mixed_input(6 * MIB + 12_345, 7);
    let reference = compress(&input, &options(Compression::Gzip, None, 1));
    assert_gzip_decodes_to(&reference, &input);
    for threads in [1, 2, 8] {
        for run in 0..2 {
            let compressed = compress(&input, &options(Compression::Gzip, None, threads));
            assert!(
                compressed == reference,
                "threads {threads} run {run} differs"
            );
        }
    }
}

#[test]
fn gzip_independent_of_write_chunking_and_flushes() {
    let input = mixed_input(MIB + 777, 3);
    let opts = options(Compression::Gzip, None, 2);
    let reference = compress(&input, &opts);
    for chunk in [1, 7, 4093, GZIP_MEMBER_SIZE, GZIP_MEMBER_SIZE + 3] {
        let input = if chunk == 1 {
            &input[..300 * KIB]
        } else {
            &input[..]
        };
        let expected = if chunk == 1 {
            compress(input, &opts)
        } else {
            reference.clone()
        };
        assert!(
            compress_chunked(input, &opts, chunk) == expected,
            "chunk {chunk}"
        );
    }
    // Irregular chunks with flushes in between.
    let mut rng = XorShift(99);
    let mut compressor = Compressor::new(Vec::new(), &opts).expect("valid options");
    let mut rest = &input[..];
    while !rest.is_empty() {
        let take = (1 + rng.below(200 * KIB)).min(rest.len());
        compressor.write_all(&rest[..take]).expect("write");
        compressor.flush().expect("flush");
        rest = &rest[take..];
    }
    assert!(compressor.finish().expect("finish") == reference);
}

/// Compresses with `restart_member` called before each of `restarts`
/// (offsets into `input`).
fn compress_with_restarts(input: &[u8], restarts: &[usize], threads: usize) -> Vec<u8> {
    let opts = options(Compression::Gzip, None, threads);
    let mut compressor = Compressor::new(Vec::new(), &opts).expect("valid options");
    let mut written = 0;
    for &at in restarts {
        compressor.write_all(&input[written..at]).expect("write");
        compressor.restart_member().expect("restart");
        written = at;
    }
    compressor.write_all(&input[written..]).expect("write");
    compressor.finish().expect("finish")
}

#[test]
fn gzip_restart_member_stays_valid_and_deterministic() {
    let input = mixed_input(3 * MIB, 11);
    let restart_sets: [&[usize]; 5] = [
        &[0],
        &[1000, 1000, 1001],
        &[500 * KIB, GZIP_MEMBER_SIZE, 2 * GZIP_MEMBER_SIZE + 5],
        &[10, 20 * KIB, 300 * KIB, MIB],
        &[3 * MIB],
    ];
    for restarts in restart_sets {
        let reference = compress_with_restarts(&input, restarts, 1);
        assert_gzip_decodes_to(&reference, &input);
        for threads in [2, 8] {
            assert!(compress_with_restarts(&input, restarts, threads) == reference);
        }
    }
    // Restarting at the very start or end changes nothing.
    let plain = compress(&input, &options(Compression::Gzip, None, 2));
    assert!(compress_with_restarts(&input, &[0], 2) == plain);
    assert!(compress_with_restarts(&input, &[3 * MIB], 2) == plain);
    assert!(compress_with_restarts(&input, &[MIB, 2 * MIB], 2) == plain);
    // A restart ends a member there: the next one starts at that byte.
    let restarted = compress_with_restarts(&input, &[500 * KIB], 2);
    let sizes: Vec<usize> = members(&restarted).iter().map(|m| m.2).collect();
    assert_eq!(sizes, [500 * KIB, MIB, MIB, 3 * MIB - 500 * KIB - 2 * MIB]);
}

#[test]
fn gzip_restart_member_makes_segment_bytes_independent_of_prefix() {
    let segment = mixed_input(MIB + 700 * KIB, 21);
    let alone = compress(&segment, &options(Compression::Gzip, None, 2));
    for prefix_len in [1, 50 * KIB, GZIP_MEMBER_SIZE, 1333 * KIB] {
        let mut input = mixed_input(prefix_len, prefix_len as u64);
        input.extend_from_slice(&segment);
        let compressed = compress_with_restarts(&input, &[prefix_len], 2);
        assert_gzip_decodes_to(&compressed, &input);
        assert!(compressed.ends_with(&alone), "prefix {prefix_len}");
    }
}

/// Real files: the first `len` bytes of the regular files in /usr/bin (which
/// every machine the tests run on has), in name order.
fn real_files_input(len: usize) -> Vec<u8> {
    let mut paths: Vec<_> = std::fs::read_dir("/usr/bin")
        .expect("read /usr/bin")
        .map(|entry| entry.expect("entry of /usr/bin").path())
        .filter(|path| path.symlink_metadata().is_ok_and(|m| m.is_file()))
        .collect();
    paths.sort();
    let mut out = Vec::with_capacity(len);
    for path in paths {
        if out.len() >= len {
            break;
        }
        out.extend(std::fs::read(&path).unwrap_or_default());
    }
    out.truncate(len);
    assert_eq!(out.len(), len, "/usr/bin holds less than {len} bytes");
    out
}

#[test]
fn gzip_not_larger_than_pigz_on_real_files() {
    let input = real_files_input(16 * MIB);
    for level in [1, 6, 9] {
        let ours = compress(&input, &options(Compression::Gzip, Some(level), 2));
        let pigz = run_tool("pigz", &[&format!("-{level}"), "-n", "-c"], &input);
        let ratio = ours.len() as f64 / pigz.len() as f64;
        println!(
            "/usr/bin {} bytes, level {level}: ours {} bytes, pigz {} bytes, ratio {ratio:.4}",
            input.len(),
            ours.len(),
            pigz.len()
        );
        assert!(ratio <= 1.0, "level {level}: ratio {ratio}");
    }
}

#[test]
fn xz_decodes_and_is_identical_across_thread_counts() {
    // Level 1 has 3 MiB blocks, so this input spans several blocks.
    let input = mixed_input(8 * MIB + 99, 13);
    let reference = compress(&input, &options(Compression::Xz, Some(1), 1));
    assert!(run_tool("xz", &["-dc"], &reference) == input);
    for threads in [2, 8] {
        assert!(compress(&input, &options(Compression::Xz, Some(1), threads)) == reference);
    }
    // Default level, small input, and empty input.
    for input in [&input[..100 * KIB], &[][..]] {
        let reference = compress(input, &options(Compression::Xz, None, 1));
        assert!(run_tool("xz", &["-dc"], &reference) == input);
        assert!(compress(input, &options(Compression::Xz, None, 8)) == reference);
    }
}

#[test]
fn xz_independent_of_write_chunking() {
    let input = mixed_input(4 * MIB, 17);
    let opts = options(Compression::Xz, Some(0), 2);
    let reference = compress(&input, &opts);
    assert!(compress_chunked(&input, &opts, 4093) == reference);
}

#[test]
fn zstd_decodes_and_is_identical_across_thread_counts() {
    // Level 3 jobs are 8 MiB (2^(windowLog + 2)), so this spans three jobs.
    let input = mixed_input(20 * MIB + 5, 19);
    let reference = compress(&input, &options(Compression::Zstd, None, 1));
    assert!(run_tool("zstd", &["-dc"], &reference) == input);
    // Frame header descriptor: content checksum flag (bit 2).
    assert_eq!(reference[..4], [0x28, 0xb5, 0x2f, 0xfd]);
    assert_ne!(reference[4] & 0b100, 0);
    for threads in [2, 8] {
        for _run in 0..2 {
            let compressed = compress(&input, &options(Compression::Zstd, None, threads));
            assert!(compressed == reference, "threads {threads}");
        }
    }
    let opts = options(Compression::Zstd, Some(19), 2);
    let small = &input[..3 * MIB];
    let level19 = compress(small, &opts);
    assert!(run_tool("zstd", &["-dc"], &level19) == small);
    assert!(compress_chunked(small, &opts, 4093) == level19);
    let empty = compress(b"", &options(Compression::Zstd, None, 2));
    assert!(run_tool("zstd", &["-dc"], &empty).is_empty());
}

#[test]
fn none_passes_through() {
    let input = mixed_input(300 * KIB, 23);
    assert!(compress_chunked(&input, &options(Compression::None, None, 1), 1000) == input);
}

#[test]
fn options_are_validated() {
    let check = |compression, level, threads| options(compression, level, threads).validate();
    assert_eq!(check(Compression::Gzip, None, 1).ok(), Some(6));
    assert_eq!(check(Compression::Xz, None, 1).ok(), Some(6));
    assert_eq!(check(Compression::Zstd, None, 1).ok(), Some(3));
    assert_eq!(check(Compression::Xz, Some(0), 1).ok(), Some(0));
    assert_eq!(check(Compression::Zstd, Some(19), 1).ok(), Some(19));
    let message = |result: Result<u32, CompressError>| result.map_err(|e| e.to_string()).err();
    assert_eq!(
        message(check(Compression::Gzip, Some(12), 1)).as_deref(),
        Some("gzip level 12 is out of range 1-9")
    );
    assert!(check(Compression::Gzip, Some(0), 1).is_err());
    assert!(check(Compression::Xz, Some(10), 1).is_err());
    assert!(check(Compression::Zstd, Some(0), 1).is_err());
    assert!(check(Compression::Zstd, Some(20), 1).is_err());
    assert!(check(Compression::None, Some(1), 1).is_err());
    assert_eq!(
        message(check(Compression::Gzip, None, 0)).as_deref(),
        Some("threads must be at least 1")
    );
    assert!(Compressor::new(Vec::new(), &options(Compression::Gzip, Some(10), 1)).is_err());
    for compression in Compression::ALL {
        assert_eq!(
            compression.to_string().parse::<Compression>().ok(),
            Some(compression)
        );
    }
    assert!("bzip2".parse::<Compression>().is_err());
    assert_eq!(Compression::default(), Compression::Gzip);
    assert!(CompressOptions::default().validate().is_ok());
}

/// A sink that fails once more than `limit` bytes have been written.
struct FailingSink {
    written: usize,
    limit: usize,
}

impl Write for FailingSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.written + buf.len() > self.limit {
            return Err(io::Error::other("disk full (test)"));
        }
        self.written += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn sink_errors_surface_without_hanging() {
    let input = mixed_input(6 * MIB, 29);
    for compression in Compression::ALL {
        for limit in [0, 5, 100 * KIB] {
            let sink = FailingSink { written: 0, limit };
            let level = compression.level_range().map(|r| *r.start());
            let mut compressor =
                Compressor::new(sink, &options(compression, level, 2)).expect("valid options");
            let write_result = input
                .chunks(64 * KIB)
                .try_for_each(|piece| compressor.write_all(piece));
            let failed = match write_result {
                Err(_) => {
                    // Later calls fail too (or at least do not hang).
                    let _ = compressor.write_all(b"more");
                    true
                }
                Ok(()) => compressor.finish().is_err(),
            };
            assert!(failed, "{compression} limit {limit}: no error");
        }
    }
}

#[test]
fn gzip_fails_for_good_after_a_sink_error() {
    // More members than can be in flight with 2 threads, so some are
    // written (and fail) before `finish`.
    let input = mixed_input(8 * GZIP_MEMBER_SIZE, 31);
    let sink = FailingSink {
        written: 0,
        limit: 1000,
    };
    let mut compressor =
        Compressor::new(sink, &options(Compression::Gzip, None, 2)).expect("valid options");
    assert!(input
        .chunks(64 * KIB)
        .try_for_each(|piece| compressor.write_all(piece))
        .is_err());
    assert!(compressor.write_all(b"x").is_err());
    assert!(compressor.flush().is_err());
    assert!(compressor.finish().is_err());
}

#[test]
fn dropping_without_finish_stops_threads() {
    let input = mixed_input(3 * MIB, 37);
    for compression in Compression::ALL {
        let mut compressor =
            Compressor::new(Vec::new(), &options(compression, None, 4)).expect("valid options");
        compressor.write_all(&input).expect("write");
        drop(compressor);
    }
}

fn human_rate(bytes: usize, seconds: f64) -> String {
    format!("{:.1} MB/s", bytes as f64 / 1e6 / seconds)
}

/// Throughput against pigz on a real file. Run in release mode with e.g.
/// `WSL_TARBALL_BENCH_INPUT=/tmp/usr-share.tar cargo test --release --lib
/// compress::tests::throughput -- --ignored --nocapture`.
#[test]
#[ignore]
fn throughput_vs_pigz() {
    let Ok(path) = std::env::var("WSL_TARBALL_BENCH_INPUT") else {
        println!("set WSL_TARBALL_BENCH_INPUT to a (large) file");
        return;
    };
    let input = std::fs::read(&path).expect("read bench input");
    println!("input {path}: {} bytes", input.len());
    for threads in [1, 2] {
        let start = Instant::now();
        let compressed =
            compress_chunked(&input, &options(Compression::Gzip, None, threads), 64 * KIB);
        let seconds = start.elapsed().as_secs_f64();
        println!(
            "ours  gzip -6 threads {threads}: {} bytes, {:.2} s, {}",
            compressed.len(),
            seconds,
            human_rate(input.len(), seconds)
        );
        let start = Instant::now();
        let output = Command::new("pigz")
            .args(["-6", "-n", "-c", "-p", &threads.to_string()])
            .arg(Path::new(&path))
            .output()
            .expect("run pigz");
        let seconds = start.elapsed().as_secs_f64();
        println!(
            "pigz  -6 -p {threads}:          {} bytes, {:.2} s, {}",
            output.stdout.len(),
            seconds,
            human_rate(input.len(), seconds)
        );
    }
    for (compression, threads) in [(Compression::Zstd, 2), (Compression::Xz, 2)] {
        let start = Instant::now();
        let compressed = compress_chunked(&input, &options(compression, None, threads), 64 * KIB);
        let seconds = start.elapsed().as_secs_f64();
        println!(
            "ours  {compression} default threads {threads}: {} bytes, {:.2} s, {}",
            compressed.len(),
            seconds,
            human_rate(input.len(), seconds)
        );
    }
}
