//! Compression of the tar stream (placeholder until the compressor lands).
