//! `publish`'s arguments and the request they make.

use std::path::PathBuf;

use clap::Args;

#[derive(Args)]
pub struct PublishArgs {
    /// The manifests `write --manifest` wrote, each beside its image (its
    /// tarball.file) and SBOM.
    #[arg(value_name = "MANIFEST", required = true)]
    pub manifests: Vec<PathBuf>,

    /// The distribution's flavour (`wsl --install FLAVOUR`): ASCII letters,
    /// digits, `.`, `_` and `-`.
    #[arg(long, value_name = "FLAVOUR")]
    pub flavour: String,

    /// Where DIR will be published (https:// or file://, which needs WSL
    /// 2.4.4); image URLs are BASE_URL followed by their file names.
    #[arg(long, value_name = "URL")]
    pub base_url: String,

    /// The URL install-channel.ps1 registers, where DistributionInfo.json
    /// will be served (e.g. a stable URL while BASE_URL is one release's);
    /// by default BASE_URL followed by DistributionInfo.json. Checked as
    /// BASE_URL is.
    #[arg(long, value_name = "URL")]
    pub manifest_url: Option<String>,

    /// The release directory to create (absent or empty).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// The previous release's DistributionInfo.json: its versions of the
    /// flavour stay listed (not Default), other flavours as they are.
    #[arg(long, value_name = "FILE")]
    pub previous: Option<PathBuf>,

    /// The version's Name; by default FLAVOUR-VERSION, VERSION from the
    /// NixOS system's store path name (nixos-system-HOST-VERSION).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// The version's FriendlyName; by default "FLAVOUR VERSION".
    #[arg(long, value_name = "TEXT")]
    pub friendly_name: Option<String>,

    /// Sign the copied manifests and DistributionInfo.json (detached,
    /// DistributionInfo.json.sig) with this Nix secret key file.
    #[arg(long, value_name = "FILE")]
    pub sign_key: Option<PathBuf>,

    /// Require each manifest to be signed by one of these keys (as
    /// `verify --trusted-key`). Repeatable.
    #[arg(long, value_name = "PUB")]
    pub trusted_key: Vec<String>,
}

impl PublishArgs {
    /// The request, the trusted keys parsed.
    pub fn request(self) -> Result<wsl_tarball::app::PublishRequest, crate::exit::Failure> {
        let trusted = super::trusted_keys(&self.trusted_key)?;
        Ok(wsl_tarball::app::PublishRequest {
            flavour: self.flavour,
            base_url: self.base_url,
            manifest_url: self.manifest_url,
            out: self.out,
            previous: self.previous,
            name: self.name,
            friendly_name: self.friendly_name,
            sign_key: self.sign_key,
            trusted,
            manifests: self.manifests,
        })
    }
}
