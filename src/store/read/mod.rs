//! Reading a closure file in any format Nix produces, into a validated
//! [`Closure`].
//!
//! [`read_closure`] looks at the bytes, picks the format and parses it. Every
//! format lists, per store path, its NAR hash and size, its references and
//! (some formats) its deriver, content address and signatures:
//!
//! * **`exportReferencesGraph` JSON** (`__structuredAttrs = true`): the whole
//!   `.attrs.json` or just the array Nix put under the attribute name. Each
//!   element is `{path, narHash: "sha256:<nix32>", narSize, references,
//!   closureSize, ca?}`; Nix ≥ 2.16 adds `"valid": true`. No deriver and no
//!   signatures (Nix writes the store object without its "impure" fields).
//! * **`nix path-info --json`**, which has had four shapes:
//!   - Nix ≤ 2.18: a list of `{path, narHash: SRI, narSize, references, ca?,
//!     deriver?, registrationTime?, ultimate?, signatures?, closureSize?}`;
//!     2.16–2.18 add `"valid": true`; a path that is not valid is listed as
//!     `{"path": …, "valid": false}`.
//!   - Nix 2.19–2.32: an object keyed by absolute store path; the value is
//!     the same object without `path` (from 2.23 on, absent optional fields
//!     are written as `null`), or `null` for a path that is not valid.
//!   - Nix ≥ 2.33, `--json-format 1` (what plain `--json` means there): the
//!     same object, each value also carrying `"version": 1` and `storeDir`.
//!   - `--json-format 2` (Nix ≥ 2.33) and `3` (Nix ≥ 2.35): `{"version",
//!     "storeDir", "info": {<basename>: {…} | null}}`; references and the
//!     deriver are basenames, and `ca` is structured,
//!     `{"method": "nar" | "flat" | "text" | "git", "hash": SRI}`. Version 3
//!     also structures signatures as `{"keyName", "sig"}`. Between 2.32 and
//!     2.33 unreleased Nix briefly wrote hashes as `{"algorithm", "format",
//!     "hash"}` objects; those are read too.
//!
//!   (Sources: `src/nix/path-info.cc`, `src/libstore/path-info.cc` and
//!   `store-api.cc` at the tags 2.8.0 to 2.35.0 of NixOS/nix, the test
//!   data under `src/libstore-tests/data/path-info/json-{1,2,3}/`, the JSON
//!   schemas `store-object-info-v3.yaml`, `content-address-v1.yaml`,
//!   `hash-v1.yaml`, `signature-v2.yaml`, and commits caa196e31d, bec3c5cfcd
//!   and 61de9222b0 for the short-lived structured hashes.)
//! * **Registration text**, as read by `nix-store --load-db` and
//!   `--register-validity --hash-given` and written by `nix-store --dump-db`
//!   and nixpkgs' `closureInfo`: per path the lines path, NAR hash (bare hex
//!   from `--dump-db`, `sha256:<nix32>` from `closureInfo`), NAR size,
//!   deriver (an empty line for none), the number of references, then one
//!   line per reference.
//!
//! Store paths are accepted absolute (under the expected store directory)
//! or, except for registration text's own path lines, as basenames; a file
//! that states its `storeDir` must state the expected one. Errors name the
//! input and the offending store path.

mod json;
mod registration;

pub use registration::{
    registration_records, RegistrationLines, RegistrationRecords, MAX_REFERENCES,
};
#[cfg(test)]
mod tests;

use std::collections::btree_map::{BTreeMap, Entry};
use std::fmt;

use serde_json::Value;

use super::{Closure, ClosureError, PathInfo, StoreDir, StorePath};

/// The file formats [`read_closure`] understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClosureFormat {
    /// `exportReferencesGraph` with `__structuredAttrs`: the `.attrs.json`
    /// file or the array of path infos taken out of it.
    ExportReferencesGraph,
    /// `nix path-info --json` of Nix 2.18 and older: a list of path infos.
    PathInfoList,
    /// `nix path-info --json` of Nix 2.19 to 2.32: an object keyed by
    /// absolute store path.
    PathInfoObject,
    /// `nix path-info --json --json-format 1` (Nix 2.33 and newer): keyed by
    /// absolute store path, each value carrying `version` and `storeDir`.
    PathInfoJsonV1,
    /// `nix path-info --json --json-format 2`: keyed by basename under
    /// `info`, with a structured content address.
    PathInfoJsonV2,
    /// `nix path-info --json --json-format 3`: like version 2, with
    /// structured signatures.
    PathInfoJsonV3,
    /// The `nix-store --dump-db` / `--load-db` text that nixpkgs'
    /// `closureInfo` writes to `registration`.
    Registration,
}

impl fmt::Display for ClosureFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ClosureFormat::ExportReferencesGraph => "exportReferencesGraph JSON",
            ClosureFormat::PathInfoList => "nix path-info --json list (Nix <= 2.18)",
            ClosureFormat::PathInfoObject => "nix path-info --json object (Nix 2.19-2.32)",
            ClosureFormat::PathInfoJsonV1 => "nix path-info --json-format 1",
            ClosureFormat::PathInfoJsonV2 => "nix path-info --json-format 2",
            ClosureFormat::PathInfoJsonV3 => "nix path-info --json-format 3",
            ClosureFormat::Registration => "registration (nix-store --dump-db) text",
        })
    }
}

/// Detects the format from the bytes and parses it. `source_name` (usually
/// the file path) goes in every error. `store_dir` is the logical store dir
/// (e.g. "/nix/store").
pub fn read_closure(
    bytes: &[u8],
    source_name: &str,
    store_dir: &StoreDir,
) -> Result<(Closure, ClosureFormat), ClosureError> {
    let reader = Reader {
        source_name,
        store_dir,
    };
    let first_byte = bytes.iter().find(|b| !b.is_ascii_whitespace());
    let (infos, format) = match first_byte {
        None => return Err(reader.empty()),
        Some(b'{' | b'[') => reader.read_json(bytes)?,
        Some(b'/') => (
            reader.read_registration(bytes)?,
            ClosureFormat::Registration,
        ),
        Some(_) => {
            return Err(reader.malformed(
                "neither JSON (exportReferencesGraph, nix path-info --json) \
                 nor registration text (which starts with a store path)",
            ))
        }
    };
    let infos = reader.merge_duplicates(infos)?;
    if infos.is_empty() {
        return Err(reader.empty());
    }
    Ok((Closure::new(store_dir, infos.into_values())?, format))
}

/// The context every error needs: which input, which store directory.
#[derive(Clone, Copy)]
struct Reader<'a> {
    source_name: &'a str,
    store_dir: &'a StoreDir,
}

impl Reader<'_> {
    fn malformed(&self, message: impl Into<String>) -> ClosureError {
        ClosureError::Malformed {
            source_name: self.source_name.to_owned(),
            message: message.into(),
        }
    }

    fn empty(&self) -> ClosureError {
        ClosureError::Empty {
            source_name: self.source_name.to_owned(),
        }
    }

    /// An absolute spelling of `path_text` for error messages.
    fn display_path(&self, path_text: &str) -> String {
        if path_text.starts_with('/') {
            path_text.to_owned()
        } else {
            format!("{}/{}", self.store_dir, path_text)
        }
    }

    fn invalid_path(&self, path_text: &str) -> ClosureError {
        ClosureError::InvalidPath {
            source_name: self.source_name.to_owned(),
            path: self.display_path(path_text),
        }
    }

    /// Parses an absolute path under the store directory, or a basename.
    fn store_path(&self, text: &str) -> Result<StorePath, ClosureError> {
        let parsed = if text.starts_with('/') {
            StorePath::from_absolute(text, self.store_dir)
        } else {
            StorePath::from_basename(text)
        };
        parsed.map_err(|source| ClosureError::BadStorePath {
            source_name: self.source_name.to_owned(),
            path: self.display_path(text),
            source,
        })
    }

    fn check_store_dir(&self, stated: &Value, context: &str) -> Result<(), ClosureError> {
        let stated = stated
            .as_str()
            .ok_or_else(|| self.malformed(format!("{context}: storeDir is not a string")))?;
        if StoreDir::new(stated).ok().as_ref() != Some(self.store_dir) {
            return Err(self.malformed(format!(
                "{context}: the file is for store directory \"{stated}\", \
                 but the store directory here is \"{}\"",
                self.store_dir
            )));
        }
        Ok(())
    }

    /// Keys infos by path; a path listed twice must have the same metadata.
    fn merge_duplicates(
        &self,
        infos: Vec<PathInfo>,
    ) -> Result<BTreeMap<StorePath, PathInfo>, ClosureError> {
        let mut merged = BTreeMap::new();
        for info in infos {
            match merged.entry(info.path.clone()) {
                Entry::Vacant(slot) => {
                    slot.insert(info);
                }
                Entry::Occupied(existing) if *existing.get() == info => {}
                Entry::Occupied(_) => {
                    return Err(ClosureError::Conflicting {
                        source_name: self.source_name.to_owned(),
                        path: info.path.to_absolute(self.store_dir),
                    })
                }
            }
        }
        Ok(merged)
    }
}
