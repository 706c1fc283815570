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

    /// For an image: the SBOM its manifest records, when it is not beside
    /// the manifest under its recorded name; its sha256 must be the
    /// manifest's sbom.sha256.
    #[arg(long, value_name = "FILE", requires = "manifest")]
    pub sbom: Option<PathBuf>,

    /// Where to write the signed manifest (image) or bundle; by default the
    /// manifest or bundle is replaced, atomically.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}
