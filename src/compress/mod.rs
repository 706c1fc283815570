//! Compression of the tar stream: gzip, xz, zstd or none, in parallel and
//! deterministically.
//!
//! The tar stream (possibly many GB) is produced sequentially and written
//! into a [`Compressor`], which compresses it into an inner sink with bounded
//! memory. For every format the compressed bytes are a function of the input,
//! the format and the level only — never of the thread count, of how the
//! caller chunks its writes, or of `flush` calls:
//!
//! - **gzip** is a series of gzip members (details in `gzip.rs`), each
//!   covering at most 1 MiB of input and compressed by libdeflate (on the
//!   caller's thread here; the writers compress their members on the one
//!   worker pool of `crate::pipeline` with [`gzip_member`]); every member's header carries its total length in a "WT" extra
//!   subfield (like BGZF's "BC"), so readers can find member boundaries
//!   without inflating. Header: no name, MTIME 0, OS Unix.
//! - **xz** uses liblzma's multithreaded encoder with a block size fixed by
//!   the level (3 × dictionary size, like xz), which makes the output
//!   independent of the thread count.
//! - **zstd** always runs libzstd in multithreaded mode (`nbWorkers` ≥ 1),
//!   whose output does not depend on the number of workers (unlike
//!   `nbWorkers = 0`, which gives different bytes), with content checksum.
//! - **none** passes bytes through.

mod gzip;
mod xz;

pub use gzip::{gzip_member, GzipMember};

#[cfg(test)]
mod tests;

use std::fmt;
use std::io::{self, Write};
use std::ops::RangeInclusive;
use std::str::FromStr;

pub use gzip::{
    EXTRA_SUBFIELD_ID as GZIP_EXTRA_SUBFIELD_ID, MEMBER_HEADER_LEN as GZIP_MEMBER_HEADER_LEN,
    MEMBER_SIZE as GZIP_MEMBER_SIZE,
};

/// libzstd's limit on worker threads (more would be rejected; the output does
/// not depend on the count anyway).
const ZSTD_MAX_WORKERS: usize = 200;

/// Compression format of the output tarball.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// gzip (`.tar.gz`): 1 MiB members compressed by libdeflate in
    /// parallel. What `wsl --import` reads out of the box.
    #[default]
    Gzip,
    /// xz (`.tar.xz`), liblzma multithreaded with fixed block size.
    Xz,
    /// zstd (`.tar.zst`), libzstd multithreaded, with content checksum.
    Zstd,
    /// No compression: the plain tar stream.
    None,
}

impl Compression {
    /// Every format, in the order shown to users.
    pub const ALL: [Compression; 4] = [
        Compression::Gzip,
        Compression::Xz,
        Compression::Zstd,
        Compression::None,
    ];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Xz => "xz",
            Compression::Zstd => "zstd",
            Compression::None => "none",
        }
    }

    /// The accepted levels: gzip 1–9 (no 0, like gzip(1): storing is
    /// pointless here), xz 0–9, zstd 1–19 (the "ultra" levels 20–22 need huge
    /// windows); `None` for no compression, which takes no level.
    pub fn level_range(self) -> Option<RangeInclusive<u32>> {
        match self {
            Compression::Gzip => Some(1..=9),
            Compression::Xz => Some(0..=9),
            Compression::Zstd => Some(1..=19),
            Compression::None => None,
        }
    }

    /// The level used when none is given: gzip 6, xz 6, zstd 3 (the tools'
    /// own defaults).
    pub fn default_level(self) -> Option<u32> {
        match self {
            Compression::Gzip | Compression::Xz => Some(6),
            Compression::Zstd => Some(3),
            Compression::None => None,
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Compression {
    type Err = CompressError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Compression::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| CompressError::UnknownCompression(s.to_owned()))
    }
}

/// How to compress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompressOptions {
    /// The format.
    pub compression: Compression,
    /// `None` means the format's default level.
    pub level: Option<u32>,
    /// Worker threads (at least 1). Does not affect the output bytes.
    pub threads: usize,
}

impl Default for CompressOptions {
    /// gzip at its default level, one thread per available CPU.
    fn default() -> Self {
        CompressOptions {
            compression: Compression::default(),
            level: None,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

impl CompressOptions {
    /// Checks the options; returns the effective level (0 for `None`).
    pub fn validate(&self) -> Result<u32, CompressError> {
        if self.threads == 0 {
            return Err(CompressError::NoThreads);
        }
        let compression = self.compression;
        match (compression.level_range(), self.level) {
            (None, Some(level)) => Err(CompressError::LevelNotAccepted { compression, level }),
            (None, None) => Ok(0),
            (Some(range), Some(level)) if !range.contains(&level) => {
                Err(CompressError::LevelOutOfRange {
                    compression,
                    level,
                    min: *range.start(),
                    max: *range.end(),
                })
            }
            (Some(_), level) => Ok(level.or(compression.default_level()).unwrap_or(0)),
        }
    }
}

/// Worker threads allowed per available core: more only adds contention
/// (and an unbounded count once starved the machine).
pub const THREADS_PER_CORE: usize = 4;

/// The most worker threads accepted: [`THREADS_PER_CORE`] × the available
/// cores.
pub fn max_threads() -> usize {
    THREADS_PER_CORE * std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Checks a worker-thread count: at least 1, at most [`max_threads`].
pub fn check_threads(threads: usize) -> Result<(), CompressError> {
    let max = max_threads();
    match threads {
        0 => Err(CompressError::NoThreads),
        n if n > max => Err(CompressError::TooManyThreads { threads, max }),
        _ => Ok(()),
    }
}

/// Invalid compression options, or an encoder that could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum CompressError {
    /// A compression name that is none of ours (the name as given).
    #[error("unknown compression \"{0}\" (expected gzip, xz, zstd or none)")]
    UnknownCompression(String),
    /// A level outside the format's range.
    #[error("{compression} level {level} is out of range {min}-{max}")]
    LevelOutOfRange {
        /// The format.
        compression: Compression,
        /// The level asked for.
        level: u32,
        /// The format's lowest level.
        min: u32,
        /// The format's highest level.
        max: u32,
    },
    /// A level for a format that has none (`none`).
    #[error("compression {compression} takes no level (got {level})")]
    LevelNotAccepted {
        /// The format.
        compression: Compression,
        /// The level asked for.
        level: u32,
    },
    /// Zero threads.
    #[error("threads must be at least 1")]
    NoThreads,
    /// More threads than the machine's cores allow.
    #[error(
        "{threads} threads is more than the limit of {max} ({THREADS_PER_CORE} per available core)"
    )]
    TooManyThreads {
        /// The thread count asked for.
        threads: usize,
        /// The most allowed here.
        max: usize,
    },
    /// The encoder refused its settings.
    #[error("could not set up the {compression} encoder")]
    Setup {
        /// The format.
        compression: Compression,
        /// What the encoder said.
        #[source]
        source: io::Error,
    },
}

/// The encoder behind a [`Compressor`].
enum Encoder<W: Write> {
    Gzip(gzip::GzipEncoder<W>),
    Xz(xz::XzEncoder<W>),
    Zstd(Box<zstd::stream::write::Encoder<'static, W>>),
    None(W),
}

/// A `Write` sink that compresses everything written to it into `inner`.
///
/// Call [`finish`](Self::finish) to complete the stream and get `inner`
/// back; a `Compressor` dropped without it leaves `inner` holding an
/// incomplete stream, and stops its threads. After any error (from a worker
/// or from `inner`) every later call fails.
///
/// [`flush`](Write::flush) only pushes out what is already compressed and
/// flushes `inner`; it never changes the compressed bytes.
pub struct Compressor<W: Write> {
    encoder: Encoder<W>,
    bytes_in: u64,
}

impl<W: Write> Compressor<W> {
    /// Validates `options` and starts the encoder (and its worker threads).
    /// Nothing is written to `inner` until data is compressed or `finish`.
    pub fn new(inner: W, options: &CompressOptions) -> Result<Self, CompressError> {
        let level = options.validate()?;
        let compression = options.compression;
        let setup_error = |source| CompressError::Setup {
            compression,
            source,
        };
        let encoder = match compression {
            Compression::Gzip => {
                Encoder::Gzip(gzip::GzipEncoder::new(inner, level).map_err(setup_error)?)
            }
            Compression::Xz => {
                Encoder::Xz(xz::XzEncoder::new(inner, level, options.threads).map_err(setup_error)?)
            }
            Compression::Zstd => Encoder::Zstd(Box::new(
                zstd_encoder(inner, level, options.threads).map_err(setup_error)?,
            )),
            Compression::None => Encoder::None(inner),
        };
        Ok(Compressor {
            encoder,
            bytes_in: 0,
        })
    }

    /// Completes the compressed stream, flushes `inner` and returns it.
    pub fn finish(self) -> io::Result<W> {
        match self.encoder {
            Encoder::Gzip(encoder) => encoder.finish(),
            Encoder::Xz(encoder) => encoder.finish(),
            Encoder::Zstd(encoder) => encoder.finish(),
            Encoder::None(mut inner) => {
                inner.flush()?;
                Ok(inner)
            }
        }
    }

    /// Number of uncompressed bytes written so far.
    pub fn bytes_in(&self) -> u64 {
        self.bytes_in
    }

    /// gzip only: ends the current member before the next byte, so the
    /// compressed bytes of what follows depend only on the input that
    /// follows (not on anything before this call). Costs a little ratio;
    /// calling it repeatedly, or before any input, is harmless. No effect for
    /// other formats.
    pub fn restart_member(&mut self) -> io::Result<()> {
        match &mut self.encoder {
            Encoder::Gzip(encoder) => encoder.restart_member(),
            _ => Ok(()),
        }
    }

    /// The sink, for flushing or inspection; writing to it directly would
    /// corrupt the stream.
    fn sink(&mut self) -> &mut W {
        match &mut self.encoder {
            Encoder::Gzip(encoder) => encoder.get_mut(),
            Encoder::Xz(encoder) => encoder.get_mut(),
            Encoder::Zstd(encoder) => encoder.get_mut(),
            Encoder::None(inner) => inner,
        }
    }
}

impl<W: Write> Write for Compressor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = match &mut self.encoder {
            Encoder::Gzip(encoder) => encoder.write(buf)?,
            Encoder::Xz(encoder) => encoder.write(buf)?,
            Encoder::Zstd(encoder) => encoder.write(buf)?,
            Encoder::None(inner) => inner.write(buf)?,
        };
        self.bytes_in += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.encoder {
            Encoder::Gzip(encoder) => encoder.flush(),
            // The xz encoder's own flush is sink-only too; zstd's would end a
            // block (changing the output), so only the sink is flushed.
            Encoder::Xz(encoder) => encoder.flush(),
            Encoder::Zstd(_) | Encoder::None(_) => self.sink().flush(),
        }
    }
}

/// A libzstd encoder in multithreaded mode (always, so that the output does
/// not depend on `threads`), with content checksum.
fn zstd_encoder<W: Write>(
    inner: W,
    level: u32,
    threads: usize,
) -> io::Result<zstd::stream::write::Encoder<'static, W>> {
    let level = i32::try_from(level).map_err(io::Error::other)?;
    let workers = u32::try_from(threads.clamp(1, ZSTD_MAX_WORKERS)).map_err(io::Error::other)?;
    let mut encoder = zstd::stream::write::Encoder::new(inner, level)?;
    encoder.include_checksum(true)?;
    encoder.multithread(workers)?;
    Ok(encoder)
}
