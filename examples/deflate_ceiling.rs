//! Bench-only: the ceiling for `write`'s gzip. Compresses an existing file
//! (the benchmark's cached tar) with nothing else to do: the same 1 MiB
//! libdeflate members as `write`, on `THREADS` workers, no reading of the
//! store, no tar encoding, no scan, no hashing.
//!
//! `cargo run --release --example deflate_ceiling -- INPUT OUTPUT THREADS [LEVEL]`

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};

use anyhow::{bail, Context, Result};
use wsl_tarball::compress::{CompressOptions, Compression, Compressor};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (input, output, threads, level) = match &args[..] {
        [input, output, threads] => (input, output, threads, None),
        [input, output, threads, level] => (input, output, threads, Some(level)),
        _ => bail!("usage: deflate_ceiling INPUT OUTPUT THREADS [LEVEL]"),
    };
    let threads: usize = threads.parse().context("THREADS")?;
    let level = level
        .map(|l| l.parse::<u32>())
        .transpose()
        .context("LEVEL")?;
    // Like `write`: the compressor's workers are rayon's global pool, and
    // the calling thread only reads, orders and writes.
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()?;
    let options = CompressOptions {
        compression: Compression::Gzip,
        level,
        threads,
    };
    let mut reader = File::open(input).with_context(|| format!("opening {input}"))?;
    let sink = BufWriter::with_capacity(1 << 20, File::create(output)?);
    let mut compressor = Compressor::new(sink, &options)?;
    let mut buffer = vec![0; 1 << 20];
    loop {
        let n = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).with_context(|| format!("reading {input}")),
        };
        compressor.write_all(&buffer[..n])?;
    }
    compressor.finish()?.flush()?;
    Ok(())
}
