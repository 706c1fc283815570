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
pub struct Compressor<W: Write + Send + 'static> {
    inner: flate2::write::GzEncoder<W>,
}
impl<W: Write + Send + 'static> Compressor<W> {
    pub fn new(inner: W, _o: &CompressOptions) -> Result<Self, CompressError> {
        Ok(Self {
            inner: flate2::write::GzEncoder::new(inner, flate2::Compression::default()),
        })
    }
    pub fn finish(self) -> io::Result<W> {
        self.inner.finish()
    }
}
impl<W: Write + Send + 'static> Write for Compressor<W> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.inner.write(b)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
