//! `sign`: an image's manifest or an update bundle signed after the fact
//! (in CI, where the key lives in a secret), as `--sign-key` signs at write
//! time, with the same signature (see [`crate::sign`]).
//!
//! An image is signed through its manifest, which records the file's sha256
//! and size (and its SBOM's): they are checked against the files first,
//! and the manifest must be one this version writes (signing what it
//! re-writes must cover all it read). A bundle is checked as `verify` checks it, then rewritten with
//! its manifest signed ([`crate::delta::sign::sign_bundle`]). The output
//! (by default the manifest or bundle itself) is replaced atomically; the
//! key file is only read.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{AppError, SignError};
use crate::delta;
use crate::input::read_limited;
use crate::manifest::Manifest;
use crate::output::AtomicOutput;
use crate::overlap::{check_outputs, Named, Role};
use crate::sign::{Signature, SigningKey};

/// The largest image manifest read.
const MAX_MANIFEST_BYTES: u64 = 64 << 20;

/// What to sign.
#[derive(Debug, Clone)]
pub struct SignRequest {
    /// An image or a bundle.
    pub file: PathBuf,
    /// The Nix secret key file.
    pub key: PathBuf,
    /// An image's manifest.
    pub manifest: Option<PathBuf>,
    /// The SBOM the manifest records, when not beside it under its
    /// recorded name.
    pub sbom: Option<PathBuf>,
    /// Where the signed manifest or bundle goes; the manifest or bundle
    /// itself when `None`.
    pub output: Option<PathBuf>,
}

/// What was signed.
#[derive(Debug)]
pub struct SignOutcome {
    /// `image` or `update bundle`.
    pub kind: &'static str,
    /// The signed manifest or bundle.
    pub output: PathBuf,
    /// The signature made, as the manifest now records it.
    pub signature: Signature,
}

/// Signs; see the module docs.
pub fn sign(request: &SignRequest) -> Result<SignOutcome, AppError> {
    let bundle = delta::is_bundle(&request.file);
    let target = match (bundle, &request.manifest) {
        (true, None) => &request.file,
        (false, Some(manifest)) => manifest,
        (true, Some(_)) => {
            return Err(SignError::BundleWithManifest {
                file: request.file.clone(),
            }
            .into())
        }
        (false, None) => {
            return Err(SignError::NoManifest {
                file: request.file.clone(),
            }
            .into())
        }
    };
    let output = request.output.clone().unwrap_or_else(|| target.clone());
    let mut inputs = vec![Named {
        role: Role::SigningKey,
        path: &request.key,
    }];
    if !bundle {
        // The image is read, never written; the manifest may be replaced.
        inputs.push(Named {
            role: Role::Image,
            path: &request.file,
        });
        if let Some(sbom) = &request.sbom {
            inputs.push(Named {
                role: Role::Sbom,
                path: sbom,
            });
        }
    }
    check_outputs(
        &[Named {
            role: Role::Output,
            path: &output,
        }],
        &inputs,
        &[],
    )?;
    let key = read_signing_key(
        &request.key,
        None,
        Path::new(crate::store::DEFAULT_STORE_DIR),
    )?;
    if bundle {
        let (manifest, _) = delta::sign::sign_bundle(&request.file, &key, &output)?;
        let signature = own_signature(&manifest.signatures, &key);
        return Ok(SignOutcome {
            kind: "update bundle",
            output,
            signature,
        });
    }
    let manifest = sign_image_manifest(&request.file, target, request.sbom.as_deref(), &key)?;
    let file = AtomicOutput::create(&output)?;
    let write_error = |source| SignError::Write {
        path: output.clone(),
        source,
    };
    file.try_clone_file()
        .and_then(|mut f| std::io::Write::write_all(&mut f, manifest.to_json().as_bytes()))
        .map_err(write_error)?;
    file.commit()?;
    Ok(SignOutcome {
        kind: "image",
        output,
        signature: own_signature(&manifest.signatures, &key),
    })
}

/// Reads the secret key at `key`, refused when it is inside `extra_files`
/// (which go into the tarball) or inside `store` (the store read, readable
/// by every user).
pub(super) fn read_signing_key(
    key: &Path,
    extra_files: Option<&Path>,
    store: &Path,
) -> Result<SigningKey, AppError> {
    if let Ok(location) = std::fs::canonicalize(key) {
        if let Ok(store_location) = std::fs::canonicalize(store) {
            if location.starts_with(&store_location) {
                return Err(SignError::KeyInStore {
                    key: key.to_path_buf(),
                    store: store.to_path_buf(),
                }
                .into());
            }
        }
        if let Some(tree) = extra_files {
            if std::fs::canonicalize(tree).is_ok_and(|tree| location.starts_with(tree)) {
                return Err(SignError::KeyInExtraFiles {
                    key: key.to_path_buf(),
                    tree: tree.to_path_buf(),
                }
                .into());
            }
        }
    }
    Ok(SigningKey::read_file(key)?)
}

fn own_signature(signatures: &[Signature], key: &SigningKey) -> Signature {
    signatures
        .iter()
        .find(|s| s.name() == key.name())
        .cloned()
        .expect("the manifest was just signed with the key")
}

/// The manifest at `manifest_path`, checked against the image and its SBOM
/// (`sbom`, else the recorded file beside the manifest) and signed.
fn sign_image_manifest(
    image: &Path,
    manifest_path: &Path,
    sbom: Option<&Path>,
    key: &SigningKey,
) -> Result<Manifest, AppError> {
    let bad = |message: String| SignError::BadManifest {
        manifest: manifest_path.to_path_buf(),
        message,
    };
    let bytes = read_limited(manifest_path, MAX_MANIFEST_BYTES, "a manifest")?;
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| bad(format!("not JSON: {e}")))?;
    let mut manifest = Manifest::from_json(&value).map_err(|e| bad(e.to_string()))?;
    let (sha256, size) = hash_file(image)?;
    let not_this = |what: String| SignError::NotThisImage {
        file: image.to_path_buf(),
        manifest: manifest_path.to_path_buf(),
        what,
    };
    if sha256 != manifest.tarball.sha256 {
        return Err(not_this(format!(
            "its sha256 is {sha256}, the manifest records {}",
            crate::escape::escape_str(&manifest.tarball.sha256)
        ))
        .into());
    }
    if size != manifest.tarball.size {
        return Err(not_this(format!(
            "it is {size} bytes, the manifest records {}",
            manifest.tarball.size
        ))
        .into());
    }
    // The SBOM the manifest records, given or beside it: a signature
    // vouches for it.
    if let (None, Some(given)) = (&manifest.sbom, sbom) {
        return Err(SignError::NoSbomRecorded {
            sbom: given.to_path_buf(),
            manifest: manifest_path.to_path_buf(),
        }
        .into());
    }
    if let Some(record) = &manifest.sbom {
        let sbom = match sbom {
            Some(given) => given.to_path_buf(),
            None => {
                let name = crate::input::plain_file_name(&record.file).map_err(|why| {
                    bad(format!(
                        "its sbom.file {:?} {why}",
                        crate::escape::escape_str(&record.file)
                    ))
                })?;
                let beside = manifest_path.parent().unwrap_or(Path::new("")).join(name);
                if !beside.exists() {
                    return Err(SignError::SbomNotBeside {
                        manifest: manifest_path.to_path_buf(),
                        file: record.file.clone(),
                        looked_for: beside,
                    }
                    .into());
                }
                beside
            }
        };
        let (sha256, _) = hash_file(&sbom)?;
        if sha256 != record.sha256 {
            return Err(bad(format!(
                "the SBOM {} has sha256 {sha256}, the manifest records {}",
                sbom.display(),
                crate::escape::escape_str(&record.sha256)
            ))
            .into());
        }
    }
    manifest.sign(key);
    Ok(manifest)
}

/// Lowercase hex SHA-256 and size of the file at `path`.
fn hash_file(path: &Path) -> Result<(String, u64), SignError> {
    let read_error = |source| SignError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(read_error)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buffer).map_err(read_error)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        size += n as u64;
    }
    let digest: [u8; 32] = hasher.finalize().into();
    Ok((crate::hex::encode(&digest), size))
}
