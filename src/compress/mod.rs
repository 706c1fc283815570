//! INTERIM: replaced by the parallel compressor.
use std::io::{self, Write};
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    #[default]
    Gzip,
    Xz,
    Zstd,
    None,
}
#[derive(Debug, Clone)]
pub struct CompressOptions {
    pub compression: Compression,
    pub level: Option<u32>,
    pub threads: usize,
}
#[derive(Debug, thiserror::Error)]
#[error("bad")]
pub struct CompressError;
pub enum Compressor<W: Write + Send + 'static> {
    Gz(flate2::write::GzEncoder<W>),
    Plain(W),
}
impl<W: Write + Send + 'static> Compressor<W> {
    pub fn new(inner: W, o: &CompressOptions) -> Result<Self, CompressError> {
        Ok(if o.compression == Compression::None {
            Self::Plain(inner)
        } else {
            Self::Gz(flate2::write::GzEncoder::new(
                inner,
                flate2::Compression::default(),
            ))
        })
    }
    pub fn finish(self) -> io::Result<W> {
        match self {
            Self::Gz(g) => g.finish(),
            Self::Plain(w) => Ok(w),
        }
    }
}
impl<W: Write + Send + 'static> Write for Compressor<W> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        match self {
            Self::Gz(g) => g.write(b),
            Self::Plain(w) => w.write(b),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
