//! `wsl-tarball sign BUNDLE`: a bundle signed after the fact.
//!
//! The bundle is read once and checked as `verify` checks it (a damaged
//! bundle is never signed), its export stream copied into an unnamed
//! temporary file on the way; then the same members, with the manifest
//! signed ([`BundleManifest::sign`]), are written to the destination
//! atomically, the export's records read from that copy on the one
//! pipeline as `delta` writes them (`bundle.rs`), with the bundle's compression at its default level and its
//! members' modification time. The `apply` script holds no signature, so it
//! does not change. Signing at `delta` time gives the same signature
//! (ed25519 is deterministic, and what is signed is the canonical manifest).

use std::path::Path;

use super::apply::checked_copy;
use super::bundle::{assemble_bundle, RecordSource};
use super::manifest::ExportDigest;
use super::prefix::PrefixMembers;
use super::read::open_bundle;
use super::{BundleError, BundleManifest, BundleSummary, MakeError};
use crate::archive::open_tarball;
use crate::compress::CompressOptions;
use crate::sign::SigningKey;

/// Signs the bundle at `bundle` with `key` into `destination` (which may be
/// `bundle` itself: it is replaced only when the new one is complete).
pub fn sign_bundle(
    bundle: &Path,
    key: &SigningKey,
    destination: &Path,
) -> Result<(BundleManifest, BundleSummary), MakeError> {
    let not_a_bundle = |message: String| BundleError::NotABundle {
        path: bundle.to_path_buf(),
        message,
    };
    // The members' modification time, from the first member.
    let mtime = open_tarball(bundle)
        .and_then(|mut reader| reader.next_member())
        .map_err(|e| not_a_bundle(e.to_string()))?
        .map_or(1, |member| member.mtime);
    let open = open_bundle(bundle)?;
    let compression = open.reader.compression();
    let as_read = open.manifest.clone();
    let signed = |export: &ExportDigest| {
        let mut manifest = as_read.clone();
        manifest.export = export.clone();
        manifest.sign(key);
        manifest
    };
    let manifest = signed(&as_read.export);
    let export = checked_copy(bundle, open)?;
    let options = CompressOptions {
        compression,
        ..CompressOptions::default()
    };
    let source = RecordSource::Export(&export);
    // The members are made from the digest as `delta` makes them, so the
    // bundle is the one `delta --sign-key` writes.
    let written = assemble_bundle(
        destination,
        mtime,
        &options,
        &manifest.paths,
        source,
        None,
        |export| PrefixMembers::of(&signed(export)),
    )?;
    // Checked when it was copied; the same stream, read again.
    if written.export != manifest.export {
        return Err(MakeError::Bundle(BundleError::DamagedBundle {
            path: bundle.to_path_buf(),
            message: "the export stream changed while it was signed".to_owned(),
        }));
    }
    written.output.commit()?;
    Ok((manifest, written.summary))
}
