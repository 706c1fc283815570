//! Why `publish` refused, naming the image, manifest, previous release or
//! value and what is wrong with it.

use std::path::{Path, PathBuf};

use super::channel::{NameError, RuleError, UrlError};
use crate::compress::Compression;
use crate::escape::escape_str;
use crate::input::FileNameError;
use crate::inspect::InspectError;

/// Why `publish` refused; DIR was not created.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The flavour is not a name WSL accepts.
    #[error("the flavour {:?}: {why}", escape_str(.flavour))]
    Flavour {
        /// The flavour given.
        flavour: String,
        /// What is wrong with it.
        why: NameError,
    },
    /// The version name is not a name WSL accepts.
    #[error("the version name {:?}: {why}", escape_str(.name))]
    Name {
        /// The name given or made.
        name: String,
        /// What is wrong with it.
        why: NameError,
    },
    /// The version name does not start with the flavour, as WSL requires.
    #[error("the version name {:?} does not start with the flavour {:?} (WSL requires it)", escape_str(.name), escape_str(.flavour))]
    NameOutsideFlavour {
        /// The version name.
        name: String,
        /// The flavour.
        flavour: String,
    },
    /// The friendly name is empty, over 200 characters, or holds a control character.
    #[error("the friendly name is empty, longer than 200 characters or holds a control character")]
    FriendlyName,
    /// The base URL is not an `https://` or `file://` URL WSL can fetch.
    #[error("the base URL {:?}: {why}", escape_str(.url))]
    BaseUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        why: UrlError,
    },
    /// The manifest URL is not an `https://` or `file://` URL WSL can fetch.
    #[error("the manifest URL {:?}: {why}", escape_str(.url))]
    ManifestUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        why: UrlError,
    },
    /// No name was given and the system's name holds no version to make one of.
    #[error("{}: its system {:?} is not a NixOS toplevel named nixos-system-HOST-VERSION, so the version cannot be named from it: give a name", manifest.display(), escape_str(.system))]
    NoVersion {
        /// The image's manifest.
        manifest: PathBuf,
        /// The system it records.
        system: String,
    },
    /// Two images' systems are of different versions.
    #[error("{} and {} are systems of different versions ({:?}, {:?}): publish one version at a time, or give a name", first.display(), second.display(), escape_str(.first_version), escape_str(.second_version))]
    VersionsDiffer {
        /// The first image's manifest.
        first: PathBuf,
        /// The second image's manifest.
        second: PathBuf,
        /// The first system's version.
        first_version: String,
        /// The second system's version.
        second_version: String,
    },
    /// The release directory exists and is not empty.
    #[error("{} exists and is not an empty directory; publish into a new directory", dir.display())]
    NotEmpty {
        /// The release directory given.
        dir: PathBuf,
    },
    /// An image's manifest does not parse.
    #[error("manifest {}: {message}", manifest.display())]
    Manifest {
        /// The manifest.
        manifest: PathBuf,
        /// What is wrong in it.
        message: String,
    },
    /// A file name the manifest records could escape the release directory or is not plain.
    #[error("manifest {}: {field} {:?} {why}", manifest.display(), escape_str(.file))]
    UnsafeFileName {
        /// The manifest.
        manifest: PathBuf,
        /// The field that records it (`tarball.file`, `sbom.file`).
        field: &'static str,
        /// The file name as recorded (unescaped: from the file).
        file: String,
        /// What is wrong with it.
        why: FileNameError,
    },
    /// An image is compressed with a format WSL does not install.
    #[error("{} is {}: WSL installs gzip or xz images only (write it with gzip or xz compression)", image.display(), compressed(*.compression))]
    Compression {
        /// The image.
        image: PathBuf,
        /// Its compression.
        compression: Compression,
    },
    /// An image does not match what its manifest records.
    #[error("{} is not the image manifest {} describes: {what}", image.display(), manifest.display())]
    NotThisImage {
        /// The image.
        image: PathBuf,
        /// Its manifest.
        manifest: PathBuf,
        /// What differs (its size or its SHA-256).
        what: String,
    },
    /// An image fails `verify` against its manifest.
    #[error("{} does not verify against its manifest {} (verify with the manifest shows the whole report): {}", image.display(), manifest.display(), failures.join("; "))]
    Verify {
        /// The image.
        image: PathBuf,
        /// Its manifest.
        manifest: PathBuf,
        /// The failed checks, one line each.
        failures: Vec<String>,
    },
    /// An image's architecture cannot be told from its ELF files.
    #[error("{}: its architecture cannot be told (none of /bin/sh, /bin/bash, /sbin/init is an x86-64 or aarch64 ELF)", image.display())]
    NoArchitecture {
        /// The image.
        image: PathBuf,
    },
    /// Two images are of one architecture.
    #[error("{} and {} are both {arch} images: give at most one per architecture", first.display(), second.display())]
    TwoImagesForArch {
        /// The architecture (`x86_64`, `aarch64`).
        arch: &'static str,
        /// The first image.
        first: PathBuf,
        /// The second image.
        second: PathBuf,
    },
    /// Two images' SBOMs have one file name, so both cannot go in the directory.
    #[error("the SBOMs of {} and {} have the same file name {:?}: write them under different names", first.display(), second.display(), escape_str(.file))]
    SbomClash {
        /// The first image's manifest.
        first: PathBuf,
        /// The second image's manifest.
        second: PathBuf,
        /// The SBOM file name both record.
        file: String,
    },
    /// An SBOM's SHA-256 differs from the one its manifest records.
    #[error("{}: its sha256 is {actual}, the manifest {} records {:?}", sbom.display(), manifest.display(), escape_str(.recorded))]
    SbomMismatch {
        /// The SBOM.
        sbom: PathBuf,
        /// Its manifest.
        manifest: PathBuf,
        /// The SBOM's SHA-256, lowercase hex.
        actual: String,
        /// The SHA-256 the manifest records (unescaped: from the file).
        recorded: String,
    },
    /// The previous release's `DistributionInfo.json` cannot be read or does not parse.
    #[error("previous manifest {}: {message}", path.display())]
    Previous {
        /// The previous `DistributionInfo.json`.
        path: PathBuf,
        /// What is wrong in it.
        message: String,
    },
    /// The previous release's `DistributionInfo.json` breaks one of WSL's rules.
    #[error("previous manifest {}: {rule}", path.display())]
    PreviousRule {
        /// The previous `DistributionInfo.json`.
        path: PathBuf,
        /// The rule it breaks.
        rule: RuleError,
    },
    /// The previous release already lists a version of this name.
    #[error("previous manifest {}: it already lists a version {:?} of {:?}; give the new one another name", path.display(), escape_str(.name), escape_str(.flavour))]
    SameName {
        /// The previous `DistributionInfo.json`.
        path: PathBuf,
        /// The flavour.
        flavour: String,
        /// The version name.
        name: String,
    },
    /// The new `DistributionInfo.json` would break one of WSL's rules; holds which.
    #[error("the new DistributionInfo.json: {0}")]
    Rule(RuleError),
    /// An image cannot be read.
    #[error(transparent)]
    Inspect(#[from] InspectError),
    /// A manifest, SBOM or previous release file cannot be read within its size limit.
    #[error(transparent)]
    Input(#[from] crate::input::InputError),
    /// A file of the release directory cannot be read, written or synced.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
}

impl PublishError {
    /// Bad usage (a value given on the command line) rather than a
    /// refused input. Every variant is named, so a new one must be placed.
    pub fn is_usage(&self) -> bool {
        match self {
            PublishError::Flavour { .. }
            | PublishError::Name { .. }
            | PublishError::NameOutsideFlavour { .. }
            | PublishError::FriendlyName
            | PublishError::BaseUrl { .. }
            | PublishError::ManifestUrl { .. }
            | PublishError::NotEmpty { .. } => true,
            PublishError::NoVersion { .. }
            | PublishError::VersionsDiffer { .. }
            | PublishError::Manifest { .. }
            | PublishError::UnsafeFileName { .. }
            | PublishError::Compression { .. }
            | PublishError::NotThisImage { .. }
            | PublishError::Verify { .. }
            | PublishError::NoArchitecture { .. }
            | PublishError::TwoImagesForArch { .. }
            | PublishError::SbomClash { .. }
            | PublishError::SbomMismatch { .. }
            | PublishError::Previous { .. }
            | PublishError::PreviousRule { .. }
            | PublishError::SameName { .. }
            | PublishError::Rule { .. }
            | PublishError::Inspect { .. }
            | PublishError::Input { .. }
            | PublishError::Io { .. } => false,
        }
    }
}

pub(super) fn compressed(compression: Compression) -> String {
    match compression {
        Compression::None => "not compressed".to_owned(),
        other => format!("{}-compressed", other.name()),
    }
}

pub(super) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PublishError + '_ {
    move |source| PublishError::Io {
        path: path.to_path_buf(),
        source,
    }
}
