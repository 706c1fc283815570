//! Bench-only: the ceiling for `write`'s gzip. Compresses an existing file
//! (the benchmark's cached tar) with nothing else to do: the same 1 MiB
//! libdeflate members as `write` ([`gzip_member`]), on `THREADS` workers,
//! no reading of the store, no tar encoding, no scan, no hashing. One thread
//! reads the pieces, the workers compress them, and the calling thread only
//! puts the members in order and writes them, as `write`'s ordering thread
//! does.
//!
//! `cargo run --release --example deflate_ceiling -- INPUT OUTPUT THREADS [LEVEL]`

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, Mutex};
use std::thread;

use anyhow::{bail, Context, Result};
use wsl_tarball::compress::{gzip_member, Compression, GZIP_MEMBER_SIZE};

/// A piece of the input: its index and up to 1 MiB of bytes.
type Piece = (usize, Vec<u8>);

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (input, output, threads, level) = match &args[..] {
        [input, output, threads] => (input, output, threads, None),
        [input, output, threads, level] => (input, output, threads, Some(level)),
        _ => bail!("usage: deflate_ceiling INPUT OUTPUT THREADS [LEVEL]"),
    };
    let threads: usize = threads.parse().context("THREADS")?;
    if threads == 0 {
        bail!("THREADS must be at least 1");
    }
    let level = match level {
        Some(l) => l.parse::<u32>().context("LEVEL")?,
        None => Compression::Gzip
            .default_level()
            .context("gzip's default level")?,
    };
    let mut reader = File::open(input).with_context(|| format!("opening {input}"))?;
    let mut sink = BufWriter::with_capacity(1 << 20, File::create(output)?);

    // Bounded queues: at most a few pieces per worker in flight.
    let (piece_tx, piece_rx) = sync_channel::<Piece>(threads * 2);
    let (member_tx, member_rx) = sync_channel::<(usize, io::Result<Vec<u8>>)>(threads * 2);
    let piece_rx: Arc<Mutex<Receiver<Piece>>> = Arc::new(Mutex::new(piece_rx));

    thread::scope(|scope| -> Result<()> {
        let read = scope.spawn(move || -> io::Result<()> {
            for index in 0.. {
                let mut piece = vec![0; GZIP_MEMBER_SIZE];
                let n = read_full(&mut reader, &mut piece)?;
                if n == 0 {
                    break;
                }
                piece.truncate(n);
                if piece_tx.send((index, piece)).is_err() {
                    break;
                }
            }
            Ok(())
        });
        for _ in 0..threads {
            let pieces = Arc::clone(&piece_rx);
            let members = member_tx.clone();
            scope.spawn(move || loop {
                let next = pieces.lock().map(|queue| queue.recv());
                let Ok(Ok((index, piece))) = next else { break };
                let member = gzip_member(&piece, level).map(|m| m.bytes);
                if members.send((index, member)).is_err() {
                    break;
                }
            });
        }
        drop(member_tx);
        // Order the members and write them.
        let mut waiting = BTreeMap::new();
        let mut next = 0;
        for (index, member) in member_rx {
            waiting.insert(index, member?);
            while let Some(bytes) = waiting.remove(&next) {
                sink.write_all(&bytes)?;
                next += 1;
            }
        }
        read.join().expect("the reader panicked")?;
        if !waiting.is_empty() {
            bail!("{} members were never written in order", waiting.len());
        }
        Ok(())
    })?;
    sink.flush()?;
    Ok(())
}

/// Reads until `buffer` is full or the file ends; the bytes read.
fn read_full(reader: &mut impl Read, buffer: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}
