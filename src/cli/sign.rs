//! `sign`'s arguments: sign an image's manifest or a bundle after the fact.

use std::path::PathBuf;

use clap::Args;

#[derive(Args)]
pub struct SignArgs {
    /// An image (with --manifest, the manifest `write --manifest` wrote for
    /// it) or an update bundle.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// The Nix secret key file, as `nix key generate-secret` writes it;
    /// only read.
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,

    /// For an image: its manifest, which is signed (the file's sha256 and
    /// size must be the ones it records).
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,

    /// Where to write the signed manifest (image) or bundle; by default the
    /// manifest or bundle is replaced, atomically.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}
