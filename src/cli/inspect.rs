//! The reading commands' arguments: `inspect`, `verify` and `diff`.

use std::path::PathBuf;

use clap::Args;

#[derive(Args)]
pub struct InspectArgs {
    /// The tarball (gzip, xz, zstd or plain tar; detected); `-` or a pipe
    /// is read as it streams.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,

    /// How many of the largest store paths to list.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub top: usize,

    /// The manifest `write --manifest` wrote for this tarball; its security
    /// check outcome is reported (otherwise "unknown").
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,
}

#[derive(Args)]
pub struct VerifyArgs {
    /// The tarball (gzip, xz, zstd or plain tar; detected); `-` or a pipe
    /// is read as it streams.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,

    /// Accept a bare store tarball (written with --no-skeleton); without it
    /// a tarball with no WSL skeleton fails, since WSL cannot boot it.
    #[arg(long)]
    pub bare: bool,

    /// The manifest `write --manifest` wrote for the tarball: the file's
    /// sha256 and size must be the ones it records.
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,

    /// The SBOM the manifest records, when it is not beside the manifest
    /// under its recorded name (a release renamed it): its sha256 must be
    /// the manifest's sbom.sha256.
    #[arg(long, value_name = "FILE", requires = "manifest")]
    pub sbom: Option<PathBuf>,

    /// Require a signature by one of these keys: a public key NAME:BASE64
    /// (as `nix key convert-secret-to-public` prints), a nix.conf-style
    /// `trusted-public-keys` value of several, or a file holding either.
    /// Repeatable. A tarball's signature is in its --manifest.
    #[arg(long, value_name = "PUB")]
    pub trusted_key: Vec<String>,
}

impl VerifyArgs {
    /// The request, the trusted keys parsed.
    pub fn request(self) -> Result<wsl_tarball::app::VerifyRequest, crate::exit::Failure> {
        Ok(wsl_tarball::app::VerifyRequest {
            trusted_keys: super::trusted_keys(&self.trusted_key)?,
            file: self.file,
            bare: self.bare,
            manifest: self.manifest,
            sbom: self.sbom,
        })
    }
}

#[derive(Args)]
pub struct DiffArgs {
    /// The first tarball (`-` for standard input), or a `--manifest` JSON
    /// or closure file describing a system.
    #[arg(value_name = "A")]
    pub a: PathBuf,

    /// The second tarball, manifest or closure file, compared with A.
    #[arg(value_name = "B")]
    pub b: PathBuf,

    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

impl DiffArgs {
    /// `diff - -` is bad usage: standard input can be only one side. Exits
    /// as clap does for a conflict.
    pub fn check_stdin(&self) {
        if wsl_tarball::archive::is_stdin(&self.a) && wsl_tarball::archive::is_stdin(&self.b) {
            <super::Cli as clap::CommandFactory>::command()
                .error(
                    clap::error::ErrorKind::ArgumentConflict,
                    "`diff - -`: standard input can be only one of the two tarballs",
                )
                .exit();
        }
    }
}
