//! The update bundle's commands' arguments: `delta` writes one, `apply`
//! applies it.

use std::path::PathBuf;

use camino::Utf8PathBuf;
use clap::Args;

use super::rootfs::{parse_system, CompressionArgs};
use super::CheckFlags;

#[derive(Args)]
pub struct DeltaArgs {
    /// What the colleague has: an earlier tarball, its `--manifest` JSON or
    /// a closure file.
    #[arg(long, value_name = "OLD")]
    pub from: PathBuf,

    /// The new system's closure, as for `write`.
    #[arg(long, value_name = "FILE")]
    pub closure: PathBuf,

    /// The new system (toplevel) store path, or a link to it such as
    /// `result`; must be in the closure.
    #[arg(long, value_name = "STORE_PATH", value_parser = parse_system)]
    pub system: Utf8PathBuf,

    /// Where to write the bundle (atomically, as for `write`).
    #[arg(short, long, value_name = "FILE", default_value = "update.wsl-delta")]
    pub output: PathBuf,

    #[command(flatten)]
    pub compression: CompressionArgs,

    /// Modification time of the bundle's members, in seconds since 1970.
    /// Default: $SOURCE_DATE_EPOCH when set, else 1.
    #[arg(long, value_name = "SECONDS")]
    pub mtime: Option<u64>,

    /// Read the store from DIR/nix/store, as with `nix --store local?root=DIR`.
    #[arg(long, value_name = "DIR")]
    pub store_root: Option<PathBuf>,

    /// Sign the bundle's manifest with this Nix secret key file (as
    /// `nix key generate-secret` writes it); only read, never copied.
    #[arg(long, value_name = "FILE")]
    pub sign_key: Option<PathBuf>,

    #[command(flatten)]
    pub checks: CheckFlags,

    /// Print nothing but errors and error-severity security findings.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Args)]
pub struct ApplyArgs {
    /// The bundle `wsl-tarball delta` wrote.
    #[arg(value_name = "BUNDLE")]
    pub bundle: PathBuf,

    /// Activate now (switch-to-configuration switch) instead of at the
    /// distribution's next start (boot).
    #[arg(long)]
    pub switch: bool,

    /// Work on the NixOS root at DIR (Nix runs with --store local?root=DIR
    /// and DIR's system profile); for tests and images. Needs --dry-activate.
    #[arg(long, value_name = "DIR", requires = "dry_activate")]
    pub root: Option<PathBuf>,

    /// Print the activation command instead of running it.
    #[arg(long)]
    pub dry_activate: bool,

    /// Apply a bundle that is not signed by a key in Nix's
    /// trusted-public-keys (unsigned, unknown key or a bad signature);
    /// says so loudly. The bundle's other checks still run.
    #[arg(long)]
    pub allow_unsigned: bool,
}
