//! `write`'s and `build`'s arguments: the commands that make a tarball.

use std::path::PathBuf;

use clap::Args;

use super::rootfs::{CompressionArgs, ContentArgs, OutputArgs, SystemArgs};
use super::CheckFlags;
use crate::exit::Failure;

#[derive(Args)]
pub struct BuildArgs {
    /// The host: a name under nixosConfigurations. Without one, the flake's
    /// only host, or its only host for this machine's system; otherwise the
    /// hosts are listed.
    #[arg(value_name = "HOST")]
    pub host: Option<String>,

    /// The flake to build it from; REF#HOST names the host as
    /// `nixos-rebuild --flake REF#HOST` does.
    #[arg(long, value_name = "REF", default_value = ".", help_heading = "Nix")]
    pub flake: String,

    /// Write an update bundle from OLD (an earlier tarball, its manifest or
    /// a closure file) instead of a tarball; -o defaults to update.wsl-delta.
    #[arg(long, value_name = "OLD", help_heading = "Output")]
    pub delta_from: Option<PathBuf>,

    #[command(flatten)]
    pub output: OutputArgs,

    /// Use no cache, not even the default $XDG_CACHE_HOME/wsl-tarball.
    #[arg(long, conflicts_with_all = ["cache", "cache_limit", "cache_check_contents"], help_heading = "Output")]
    pub no_cache: bool,

    #[command(flatten)]
    pub compression: CompressionArgs,

    #[command(flatten)]
    pub content: ContentArgs,

    #[command(flatten)]
    pub checks: CheckFlags,

    /// Print nothing but errors and error-severity security findings (no
    /// progress bar, no warnings, no summary).
    #[arg(short, long)]
    pub quiet: bool,
}

impl BuildArgs {
    /// The flake and the host: `--flake REF#HOST` names the host as
    /// nixos-rebuild takes it (after the last `#`; `REF#` names none). A
    /// host named both there and as HOST, differently, is bad usage.
    pub fn flake_and_host(&self) -> Result<(String, Option<String>), Failure> {
        let Some((flake, fragment)) = self.flake.rsplit_once('#') else {
            return Ok((self.flake.clone(), self.host.clone()));
        };
        let fragment = (!fragment.is_empty()).then(|| fragment.to_owned());
        match (&self.host, fragment) {
            (Some(host), Some(fragment)) if *host != fragment => {
                Err(Failure::trouble(anyhow::anyhow!(
                    "the host is named twice: HOST {host:?} and --flake {:?}; give it once",
                    self.flake
                )))
            }
            (host, fragment) => Ok((flake.to_owned(), fragment.or_else(|| host.clone()))),
        }
    }
}

#[derive(Args)]
pub struct WriteArgs {
    #[command(flatten)]
    pub output: OutputArgs,

    #[command(flatten)]
    pub compression: CompressionArgs,

    #[command(flatten)]
    pub system: SystemArgs,

    #[command(flatten)]
    pub content: ContentArgs,

    #[command(flatten)]
    pub checks: CheckFlags,

    /// Print nothing but errors and error-severity security findings (no
    /// progress bar, no warnings, no summary).
    #[arg(short, long)]
    pub quiet: bool,
}
