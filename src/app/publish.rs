//! `publish`: a team channel's release directory (see [`crate::publish`]),
//! and `verify` of the `DistributionInfo.json` it writes.
//!
//! The request holds what the command line decided; the secret key is
//! read here (refused inside the Nix store, as for `write --sign-key`),
//! the public keys were parsed by the caller.

use std::path::{Path, PathBuf};

use super::sign::read_signing_key;
use super::AppError;
use crate::publish::{self, ChannelVerification, Published, Release};
use crate::sign::PublicKey;

/// What to publish.
#[derive(Debug, Clone)]
pub struct PublishRequest {
    /// The distribution's flavour in `DistributionInfo.json` (`nixos`, say): the key its versions are listed under.
    pub flavour: String,
    /// Where the directory will be served from (`https://` or `file://`).
    pub base_url: String,
    /// The URL `install-channel.ps1` registers, else BASE_URL followed by
    /// `DistributionInfo.json`.
    pub manifest_url: Option<String>,
    /// The release directory to create.
    pub out: PathBuf,
    /// The previous release's `DistributionInfo.json`.
    pub previous: Option<PathBuf>,
    /// The version's Name, else FLAVOUR-VERSION from the system.
    pub name: Option<String>,
    /// The version's FriendlyName as WSL shows it, else one made from the name.
    pub friendly_name: Option<String>,
    /// A Nix secret key file to sign the manifests and the channel with.
    pub sign_key: Option<PathBuf>,
    /// Keys one of which must have signed each image's manifest.
    pub trusted: Vec<PublicKey>,
    /// The image manifests `write --manifest` wrote.
    pub manifests: Vec<PathBuf>,
}

/// Publishes; nothing is created when it fails.
pub fn publish(request: &PublishRequest) -> Result<Published, AppError> {
    // DIR is absent or empty, so no input is inside it; inputs are only
    // read.
    let key = request
        .sign_key
        .as_deref()
        .map(|key| read_signing_key(key, None, Path::new(crate::store::DEFAULT_STORE_DIR)))
        .transpose()?;
    Ok(publish::publish(&Release {
        flavour: &request.flavour,
        base_url: &request.base_url,
        manifest_url: request.manifest_url.as_deref(),
        out: &request.out,
        previous: request.previous.as_deref(),
        name: request.name.as_deref(),
        friendly_name: request.friendly_name.as_deref(),
        sign_key: key.as_ref(),
        trusted: &request.trusted,
        manifests: &request.manifests,
    })?)
}

/// `verify` of a channel manifest, when `path` is one (a JSON file with
/// `ModernDistributions`); `None` for anything else.
pub fn verify_channel(
    path: &Path,
    trusted: &[PublicKey],
) -> Result<Option<ChannelVerification>, AppError> {
    if !publish::is_channel_manifest(path) {
        return Ok(None);
    }
    Ok(Some(publish::verify_channel(path, trusted)?))
}
