//! `publish`: the release directory of a team's WSL channel, from images
//! `write --manifest` wrote.
//!
//! ```text
//! DIR/NAME.x86_64.wsl, NAME.aarch64.wsl     the images (hard links, or copies)
//!     NAME.ARCH.manifest.json               their manifests (signed with a key)
//!     SBOM files, as each manifest names them
//!     DistributionInfo.json (+ .sig)        the channel manifest WSL reads
//!     install-channel.ps1                   registers the manifest URL (by
//!                                           default BASE_URL/DistributionInfo.json)
//!     SHA256SUMS                            every other file, sorted
//! ```
//!
//! Every input is hostile until checked: a manifest's `tarball.file` must
//! be a plain file name beside it, the image must be gzip or xz (what WSL
//! installs), pass every check `verify` makes (with the manifest's sha256,
//! size and SBOM, and its signature when trusted keys are given), and its
//! architecture is read from it (the `wsl-format` check's ELF machine of
//! `/bin/sh`, `/bin/bash` and `/sbin/init`, which must agree), one image
//! per architecture. The previous
//! release's `DistributionInfo.json` is parsed into types
//! ([`channel::DistributionInfo`]); its versions of the flavour stay listed
//! (no longer Default) for rollback, the new version first and Default,
//! other flavours as they were.
//!
//! DIR is made in a hidden sibling directory and renamed into place when
//! complete (over nothing, or over an empty directory); a failed run
//! removes it and leaves DIR as it was. Inputs are only read.

pub(crate) mod channel;
mod error;
pub(crate) mod ps1;
mod verify;

use error::io;
pub use error::PublishError;
pub(crate) use verify::{is_channel_manifest, verify_channel};
pub use verify::{ChannelCheck, ChannelVerification};

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::archive::detect_compression;
use crate::compress::Compression;
use crate::escape::escape_str;
use crate::input::{plain_file_name, read_limited};
use crate::inspect::verify_image;
use crate::manifest::Manifest;
use crate::sign::{Domain, PublicKey, SigningKey};
use channel::{check_name, BaseUrl, CheckedUrl, DistributionInfo, ImageUrl, Version};
use ps1::MANIFEST_FILE;

/// The detached signature file of `DistributionInfo.json`.
pub const SIGNATURE_FILE: &str = "DistributionInfo.json.sig";
/// The checksum file.
pub const SUMS_FILE: &str = "SHA256SUMS";
/// The registration script.
pub const SCRIPT_FILE: &str = "install-channel.ps1";

/// The largest manifest or previous `DistributionInfo.json` read.
const MAX_JSON_BYTES: u64 = 64 << 20;
/// The largest SBOM copied.
const MAX_SBOM_BYTES: u64 = 256 << 20;

/// What to publish.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Release<'a> {
    pub(crate) flavour: &'a str,
    pub(crate) base_url: &'a str,
    /// The URL `install-channel.ps1` registers; by default `base_url`
    /// followed by `DistributionInfo.json`.
    pub(crate) manifest_url: Option<&'a str>,
    pub(crate) out: &'a Path,
    pub(crate) previous: Option<&'a Path>,
    pub(crate) name: Option<&'a str>,
    pub(crate) friendly_name: Option<&'a str>,
    pub(crate) sign_key: Option<&'a SigningKey>,
    pub(crate) trusted: &'a [PublicKey],
    pub(crate) manifests: &'a [PathBuf],
}

/// What was published.
#[derive(Debug, Clone)]
pub struct Published {
    /// The release directory made.
    pub dir: PathBuf,
    /// The flavour published (`DistributionInfo.json`'s key for its versions).
    pub flavour: String,
    /// The new version's Name.
    pub name: String,
    /// Architecture (`x86_64`, `aarch64`) and image file, per image.
    pub images: Vec<(&'static str, String)>,
    /// Every file in the directory.
    pub files: Vec<String>,
    /// Earlier versions of the flavour kept listed.
    pub kept_versions: usize,
    /// Where the release directory's files are published.
    pub base_url: String,
    /// The manifest's URL, which `install-channel.ps1` registers.
    pub manifest_url: String,
}

/// One image, read and checked.
struct Image {
    manifest_path: PathBuf,
    manifest_bytes: Vec<u8>,
    manifest: Manifest,
    image: PathBuf,
    sbom: Option<PathBuf>,
}

/// The version a NixOS toplevel's store path names:
/// `HASH-nixos-system-HOST-VERSION`, where VERSION starts at the first `-`
/// followed by `YY.MM` (a NixOS release; host names hold no `.`).
pub(crate) fn system_version(system: &str) -> Option<&str> {
    let base = system.rsplit('/').next()?;
    let name = base.split_once('-')?.1.strip_prefix("nixos-system-")?;
    let bytes = name.as_bytes();
    (0..bytes.len())
        .filter(|&i| bytes[i] == b'-')
        .map(|i| &name[i + 1..])
        .find(|rest| {
            let b = rest.as_bytes();
            b.len() >= 5
                && b[..2].iter().all(u8::is_ascii_digit)
                && b[2] == b'.'
                && b[3..5].iter().all(u8::is_ascii_digit)
        })
}

/// Publishes; see the module docs.
pub(crate) fn publish(release: &Release<'_>) -> Result<Published, PublishError> {
    let flavour = release.flavour;
    check_name(flavour).map_err(|why| PublishError::Flavour {
        flavour: flavour.to_owned(),
        why,
    })?;
    let base = BaseUrl::parse(release.base_url).map_err(|why| PublishError::BaseUrl {
        url: release.base_url.to_owned(),
        why,
    })?;
    let manifest_url = match release.manifest_url {
        Some(url) => CheckedUrl::parse(url).map_err(|why| PublishError::ManifestUrl {
            url: url.to_owned(),
            why,
        })?,
        None => base.join(MANIFEST_FILE),
    };
    check_destination(release.out)?;
    if let Some(name) = release.name {
        check_given_name(name, flavour)?;
    }
    let images = release
        .manifests
        .iter()
        .map(|path| read_image(path))
        .collect::<Result<Vec<_>, _>>()?;
    let (name, friendly_name) = names(release, &images)?;
    let previous = release.previous.map(read_previous).transpose()?;
    let mut info = previous.unwrap_or_default();
    let earlier = info.flavours.remove(flavour).unwrap_or_default();
    if earlier.iter().any(|v| v.name == name) {
        return Err(PublishError::SameName {
            path: release.previous.unwrap_or(Path::new("")).to_path_buf(),
            flavour: flavour.to_owned(),
            name,
        });
    }

    let mut staging = Staging::create(release.out)?;
    let mut version = Version {
        name: name.clone(),
        friendly_name,
        default: true,
        amd64: None,
        arm64: None,
    };
    let mut published = Vec::new();
    let mut sboms: Vec<(String, PathBuf)> = Vec::new();
    let mut arches: Vec<(&'static str, PathBuf)> = Vec::new();
    for (i, image) in images.iter().enumerate() {
        let staged = staging.dir.join(format!(".image-{i}"));
        link_or_copy(&image.image, &staged)?;
        let (verification, machine) = verify_image(
            &staged,
            false,
            Some(&image.manifest_path),
            image.sbom.as_deref(),
            release.trusted,
            &mut (),
        )?;
        if !verification.passed() {
            return Err(PublishError::Verify {
                image: image.image.clone(),
                manifest: image.manifest_path.clone(),
                failures: verification
                    .failures()
                    .take(5)
                    .map(|(check, failure)| format!("{}: {failure}", check.description()))
                    .collect(),
            });
        }
        let arch = match machine {
            Some("x86-64") => "x86_64",
            Some("aarch64") => "aarch64",
            _ => {
                return Err(PublishError::NoArchitecture {
                    image: image.image.clone(),
                })
            }
        };
        if let Some((_, first)) = arches.iter().find(|(a, _)| *a == arch) {
            return Err(PublishError::TwoImagesForArch {
                arch,
                first: first.clone(),
                second: image.image.clone(),
            });
        }
        arches.push((arch, image.image.clone()));
        let file = format!("{name}.{arch}.wsl");
        // `verify` found the staged bytes to have the manifest's sha256.
        staging.place(&staged, &file, image.manifest.tarball.sha256.clone())?;
        let url = ImageUrl {
            url: base.join(&file).to_string(),
            sha256: format!("0x{}", image.manifest.tarball.sha256),
        };
        match arch {
            "x86_64" => version.amd64 = Some(url),
            _ => version.arm64 = Some(url),
        }
        published.push((arch, file));
        let manifest_file = format!("{name}.{arch}.manifest.json");
        let manifest_bytes = match release.sign_key {
            Some(key) => {
                let mut manifest = image.manifest.clone();
                manifest.sign(key);
                manifest.to_json().into_bytes()
            }
            None => image.manifest_bytes.clone(),
        };
        staging.write(&manifest_file, &manifest_bytes)?;
        if let (Some(sbom), Some(record)) = (&image.sbom, &image.manifest.sbom) {
            if let Some((_, first)) = sboms.iter().find(|(f, _)| *f == record.file) {
                return Err(PublishError::SbomClash {
                    first: first.clone(),
                    second: image.manifest_path.clone(),
                    file: record.file.clone(),
                });
            }
            sboms.push((record.file.clone(), image.manifest_path.clone()));
            let bytes = read_limited(sbom, MAX_SBOM_BYTES, "an SBOM")?;
            let actual = crate::hex::encode(&Sha256::digest(&bytes));
            if actual != record.sha256 {
                return Err(PublishError::SbomMismatch {
                    sbom: sbom.clone(),
                    manifest: image.manifest_path.clone(),
                    actual,
                    recorded: record.sha256.clone(),
                });
            }
            staging.write(&record.file, &bytes)?;
        }
    }

    let kept_versions = earlier.len();
    let mut versions = vec![version];
    versions.extend(earlier.into_iter().map(|v| Version {
        default: false,
        ..v
    }));
    info.flavours.insert(flavour.to_owned(), versions);
    info.check(false).map_err(PublishError::Rule)?;
    let json = info.to_json();
    staging.write(MANIFEST_FILE, json.as_bytes())?;
    if let Some(key) = release.sign_key {
        let signature = key.sign_bytes(&channel_message(json.as_bytes()));
        staging.write(SIGNATURE_FILE, format!("{signature}\n").as_bytes())?;
    }
    staging.write(
        SCRIPT_FILE,
        ps1::install_channel_script(&manifest_url).as_bytes(),
    )?;
    let sums: String = staging
        .sums
        .iter()
        .map(|(file, sha256)| format!("{sha256}  {file}\n"))
        .collect();
    staging.write(SUMS_FILE, sums.as_bytes())?;
    let files: Vec<String> = staging.sums.keys().cloned().collect();
    staging.commit(release.out)?;
    Ok(Published {
        dir: release.out.to_path_buf(),
        flavour: flavour.to_owned(),
        name,
        images: published,
        files,
        kept_versions,
        base_url: base.to_string(),
        manifest_url: manifest_url.to_string(),
    })
}

/// The bytes a `DistributionInfo.json.sig` signature signs: the
/// [`Domain::Channel`] prefix and the file's bytes as they are.
pub(crate) fn channel_message(json: &[u8]) -> Vec<u8> {
    let mut message = Domain::Channel.prefix().as_bytes().to_vec();
    message.extend_from_slice(json);
    message
}

/// DIR must not exist, or be an empty directory.
fn check_destination(out: &Path) -> Result<(), PublishError> {
    match fs::symlink_metadata(out) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(out)(e)),
        Ok(meta) if meta.is_dir() => match fs::read_dir(out).map_err(io(out))?.next() {
            None => Ok(()),
            Some(_) => Err(PublishError::NotEmpty {
                dir: out.to_path_buf(),
            }),
        },
        Ok(_) => Err(PublishError::NotEmpty {
            dir: out.to_path_buf(),
        }),
    }
}

/// A manifest, its image (gzip or xz) and its SBOM, by their names.
fn read_image(manifest_path: &Path) -> Result<Image, PublishError> {
    let bad = |message: String| PublishError::Manifest {
        manifest: manifest_path.to_path_buf(),
        message,
    };
    let manifest_bytes = read_limited(manifest_path, MAX_JSON_BYTES, "a manifest")?;
    let value: serde_json::Value =
        serde_json::from_slice(&manifest_bytes).map_err(|e| bad(format!("not JSON: {e}")))?;
    let manifest = Manifest::from_json(&value).map_err(|e| bad(e.to_string()))?;
    let dir = manifest_path.parent().unwrap_or(Path::new(""));
    let unsafe_name = |field, file: &str, why| PublishError::UnsafeFileName {
        manifest: manifest_path.to_path_buf(),
        field,
        file: file.to_owned(),
        why,
    };
    let file = &manifest.tarball.file;
    let image =
        dir.join(plain_file_name(file).map_err(|why| unsafe_name("tarball.file", file, why))?);
    let mut magic = [0u8; 6];
    let mut reader = File::open(&image).map_err(io(&image))?;
    let n = read_up_to(&mut reader, &mut magic).map_err(io(&image))?;
    let compression = detect_compression(&magic[..n]);
    if !matches!(compression, Compression::Gzip | Compression::Xz) {
        return Err(PublishError::Compression { image, compression });
    }
    let size = reader.metadata().map_err(io(&image))?.len();
    if size != manifest.tarball.size {
        return Err(PublishError::NotThisImage {
            image,
            manifest: manifest_path.to_path_buf(),
            what: format!(
                "it is {size} bytes, the manifest records {}",
                manifest.tarball.size
            ),
        });
    }
    // Before anything is staged, so the error names the image given.
    let actual = sha256_file(&image)?;
    if actual != manifest.tarball.sha256 {
        return Err(PublishError::NotThisImage {
            image,
            manifest: manifest_path.to_path_buf(),
            what: format!(
                "its sha256 is {actual}, the manifest records {:?}",
                escape_str(&manifest.tarball.sha256)
            ),
        });
    }
    let sbom = match &manifest.sbom {
        Some(record) => Some(
            dir.join(
                plain_file_name(&record.file)
                    .map_err(|why| unsafe_name("sbom.file", &record.file, why))?,
            ),
        ),
        None => None,
    };
    if let (Some(sbom), Some(record)) = (&sbom, &manifest.sbom) {
        if !sbom.exists() {
            return Err(bad(format!(
                "its SBOM (sbom.file {:?}) is not beside it: {} does not exist, and publish copies it from there",
                escape_str(&record.file),
                sbom.display()
            )));
        }
    }
    Ok(Image {
        manifest_path: manifest_path.to_path_buf(),
        manifest_bytes,
        manifest,
        image,
        sbom,
    })
}

fn read_up_to(reader: &mut File, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// The version's Name and FriendlyName: given, or from the systems'
/// version (which all images must share).
fn names(release: &Release<'_>, images: &[Image]) -> Result<(String, String), PublishError> {
    let flavour = release.flavour;
    let mut version: Option<(&Path, &str)> = None;
    if release.name.is_none() || release.friendly_name.is_none() {
        for image in images {
            let Some(found) = system_version(&image.manifest.system) else {
                if release.name.is_some() {
                    continue;
                }
                return Err(PublishError::NoVersion {
                    manifest: image.manifest_path.clone(),
                    system: image.manifest.system.clone(),
                });
            };
            match version {
                Some((first, seen)) if seen != found && release.name.is_none() => {
                    return Err(PublishError::VersionsDiffer {
                        first: first.to_path_buf(),
                        second: image.manifest_path.clone(),
                        first_version: seen.to_owned(),
                        second_version: found.to_owned(),
                    })
                }
                Some(_) => {}
                None => version = Some((&image.manifest_path, found)),
            }
        }
    }
    let name = match (release.name, version) {
        (Some(name), _) => name.to_owned(),
        (None, Some((_, version))) => format!("{flavour}-{version}"),
        (None, None) => unreachable!("no images: the CLI asks for one at least"),
    };
    check_given_name(&name, flavour)?;
    let friendly_name = match (release.friendly_name, version) {
        (Some(text), _) => text.to_owned(),
        (None, Some((_, version))) => format!("{flavour} {version}"),
        (None, None) => name.clone(),
    };
    if friendly_name.trim().is_empty()
        || friendly_name.chars().count() > 200
        || friendly_name.chars().any(char::is_control)
    {
        return Err(PublishError::FriendlyName);
    }
    Ok((name, friendly_name))
}

/// `name` is a WSL name that starts with `flavour`.
fn check_given_name(name: &str, flavour: &str) -> Result<(), PublishError> {
    check_name(name).map_err(|why| PublishError::Name {
        name: name.to_owned(),
        why,
    })?;
    if !name.starts_with(flavour) {
        return Err(PublishError::NameOutsideFlavour {
            name: name.to_owned(),
            flavour: flavour.to_owned(),
        });
    }
    Ok(())
}

/// The previous release's manifest, parsed and checked (at most one
/// Default per flavour).
fn read_previous(path: &Path) -> Result<DistributionInfo, PublishError> {
    let bytes = read_limited(path, MAX_JSON_BYTES, "a DistributionInfo.json")?;
    let info = DistributionInfo::from_json(&bytes).map_err(|e| PublishError::Previous {
        path: path.to_path_buf(),
        message: format!("not a DistributionInfo.json of modern distributions: {e}"),
    })?;
    info.check(false)
        .map_err(|rule| PublishError::PreviousRule {
            path: path.to_path_buf(),
            rule,
        })?;
    Ok(info)
}

/// Lowercase hex SHA-256 of a file.
fn sha256_file(path: &Path) -> Result<String, PublishError> {
    let mut file = File::open(path).map_err(io(path))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 1 << 20];
    loop {
        let n = file.read(&mut buffer).map_err(io(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(crate::hex::encode(&hasher.finalize()))
}

/// A hard link to `from` at `to` where the file system allows, else a copy.
fn link_or_copy(from: &Path, to: &Path) -> Result<(), PublishError> {
    if fs::hard_link(from, to).is_ok() {
        return Ok(());
    }
    fs::copy(from, to).map_err(io(from))?;
    File::open(to).and_then(|f| f.sync_all()).map_err(io(to))
}

/// The hidden sibling directory DIR is built in; removed unless committed.
struct Staging {
    dir: PathBuf,
    /// Every file put in it, by name (so sorted by their bytes), with its
    /// lowercase hex SHA-256 for SHA256SUMS: of the bytes it wrote, or an
    /// image's, checked by `verify`.
    sums: BTreeMap<String, String>,
    committed: bool,
}

impl Staging {
    fn create(out: &Path) -> Result<Staging, PublishError> {
        let name = out.file_name().ok_or_else(|| PublishError::NotEmpty {
            dir: out.to_path_buf(),
        })?;
        let parent = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let dir = parent.join(format!(
            ".{}.{}.tmp",
            name.to_string_lossy(),
            std::process::id()
        ));
        // A leftover of a run of this process id that was killed.
        if dir.exists() {
            fs::remove_dir_all(&dir).map_err(io(&dir))?;
        }
        fs::create_dir(&dir).map_err(io(&dir))?;
        Ok(Staging {
            dir,
            sums: BTreeMap::new(),
            committed: false,
        })
    }

    fn write(&mut self, file: &str, bytes: &[u8]) -> Result<(), PublishError> {
        self.sums
            .insert(file.to_owned(), crate::hex::encode(&Sha256::digest(bytes)));
        let path = self.dir.join(file);
        let mut out = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io(&path))?;
        out.write_all(bytes)
            .and_then(|()| out.sync_all())
            .map_err(io(&path))
    }

    /// Moves the staged image at `from` to `file` in the directory, with
    /// the sha256 `verify` found it to have.
    fn place(&mut self, from: &Path, file: &str, sha256: String) -> Result<(), PublishError> {
        fs::rename(from, self.dir.join(file)).map_err(io(from))?;
        self.sums.insert(file.to_owned(), sha256);
        Ok(())
    }

    /// Renames the directory to `out` (over an empty directory, if any)
    /// and syncs the parent.
    fn commit(mut self, out: &Path) -> Result<(), PublishError> {
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io(&self.dir))?;
        fs::rename(&self.dir, out).map_err(io(out))?;
        self.committed = true;
        let parent = self.dir.parent().unwrap_or(Path::new("."));
        File::open(parent)
            .and_then(|d| d.sync_all())
            .map_err(io(parent))
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_is_read_from_a_nixos_toplevel() {
        let hash = "/nix/store/0123456789abcdfghijklmnpqrsvwxyz";
        let cases = [
            (
                "nixos-system-team-24.05.20240101.abcdef0",
                Some("24.05.20240101.abcdef0"),
            ),
            ("nixos-system-my-host-2-24.11pre-git", Some("24.11pre-git")),
            ("nixos-system-delta", None),
            ("hello-2.12", None),
            ("nixos-system-host-1.2", None),
        ];
        for (name, version) in cases {
            assert_eq!(system_version(&format!("{hash}-{name}")), version, "{name}");
        }
    }
}
