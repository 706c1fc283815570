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

use std::collections::btree_map::{BTreeMap, Entry};
use std::fmt;

use base64::Engine as _;
use serde_json::{Map, Value};

use super::{nixbase32, Closure, ClosureError, HashError, NarHash, PathInfo, StorePath};

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
    store_dir: &str,
) -> Result<(Closure, ClosureFormat), ClosureError> {
    let reader = Reader {
        source_name,
        store_dir: store_dir.trim_end_matches('/'),
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
struct Reader<'a> {
    source_name: &'a str,
    /// Without a trailing slash.
    store_dir: &'a str,
}

/// One store object's JSON, together with the path it describes.
struct JsonEntry<'a> {
    /// The path as the file spells it (absolute or basename).
    path_text: &'a str,
    fields: &'a Map<String, Value>,
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
        if stated.trim_end_matches('/') != self.store_dir {
            return Err(self.malformed(format!(
                "{context}: the file is for store directory {stated:?}, \
                 but the store directory here is {:?}",
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

    // ----- JSON -----------------------------------------------------------

    fn read_json(&self, bytes: &[u8]) -> Result<(Vec<PathInfo>, ClosureFormat), ClosureError> {
        let document: Value = serde_json::from_slice(bytes)
            .map_err(|e| self.malformed(format!("not valid JSON: {e}")))?;
        match &document {
            Value::Array(items) => self.read_path_info_array(items, "the top-level array"),
            Value::Object(object) => self.read_json_object(object),
            _ => Err(self.malformed("the JSON is neither an object nor an array")),
        }
    }

    fn read_json_object(
        &self,
        object: &Map<String, Value>,
    ) -> Result<(Vec<PathInfo>, ClosureFormat), ClosureError> {
        if object.is_empty() {
            return Err(self.empty());
        }
        if let (Some(version), Some(Value::Object(info))) =
            (object.get("version"), object.get("info"))
        {
            return self.read_versioned_path_infos(object, version, info);
        }
        if object.keys().all(|key| key.starts_with('/')) {
            return self.read_path_info_object(object);
        }
        self.read_structured_attrs(object)
    }

    /// A list of objects that each carry their `path`: exportReferencesGraph
    /// output or `nix path-info --json` of Nix 2.18 and older.
    fn read_path_info_array(
        &self,
        items: &[Value],
        context: &str,
    ) -> Result<(Vec<PathInfo>, ClosureFormat), ClosureError> {
        let mut infos = Vec::with_capacity(items.len());
        let mut all_export_shaped = true;
        for (index, item) in items.iter().enumerate() {
            let fields = item
                .as_object()
                .ok_or_else(|| self.malformed(format!("{context}[{index}] is not an object")))?;
            let path_text = fields.get("path").and_then(Value::as_str).ok_or_else(|| {
                self.malformed(format!("{context}[{index}] has no string field `path`"))
            })?;
            let entry = JsonEntry { path_text, fields };
            if let Some(valid) = fields.get("valid") {
                match valid.as_bool() {
                    Some(true) => {}
                    Some(false) => return Err(self.invalid_path(path_text)),
                    None => return Err(self.field_error(&entry, "valid", "is not a boolean")),
                }
            }
            // exportReferencesGraph always writes closureSize and never the
            // "impure" fields that `nix path-info` writes for a local store.
            all_export_shaped &= fields.contains_key("closureSize")
                && !fields.contains_key("registrationTime")
                && !fields.contains_key("deriver");
            infos.push(self.path_info(&entry)?);
        }
        let format = if all_export_shaped {
            ClosureFormat::ExportReferencesGraph
        } else {
            ClosureFormat::PathInfoList
        };
        Ok((infos, format))
    }

    /// `nix path-info --json` of Nix 2.19 to 2.32, or `--json-format 1`:
    /// an object keyed by absolute path.
    fn read_path_info_object(
        &self,
        object: &Map<String, Value>,
    ) -> Result<(Vec<PathInfo>, ClosureFormat), ClosureError> {
        let mut format = ClosureFormat::PathInfoObject;
        let mut infos = Vec::with_capacity(object.len());
        for (path_text, value) in object {
            let fields = match value {
                Value::Null => return Err(self.invalid_path(path_text)),
                Value::Object(fields) => fields,
                _ => {
                    return Err(self.malformed(format!(
                        "{path_text}: the value is neither an object nor null"
                    )))
                }
            };
            let entry = JsonEntry { path_text, fields };
            match fields.get("version") {
                None => {}
                Some(version) if version.as_u64() == Some(1) => {
                    format = ClosureFormat::PathInfoJsonV1;
                }
                Some(version) => {
                    return Err(self.field_error(
                        &entry,
                        "version",
                        &format!(
                            "is {version}, but a store object keyed by absolute path is version 1"
                        ),
                    ))
                }
            }
            infos.push(self.path_info(&entry)?);
        }
        Ok((infos, format))
    }

    /// `nix path-info --json --json-format 2` or `3`.
    fn read_versioned_path_infos(
        &self,
        object: &Map<String, Value>,
        version: &Value,
        info: &Map<String, Value>,
    ) -> Result<(Vec<PathInfo>, ClosureFormat), ClosureError> {
        let format = match version.as_u64() {
            Some(2) => ClosureFormat::PathInfoJsonV2,
            Some(3) => ClosureFormat::PathInfoJsonV3,
            _ => {
                return Err(self.malformed(format!(
                    "nix path-info JSON version {version} is not supported (only 2 and 3 have an `info` object)"
                )))
            }
        };
        if let Some(stated) = object.get("storeDir") {
            self.check_store_dir(stated, "the top level")?;
        }
        let mut infos = Vec::with_capacity(info.len());
        for (path_text, value) in info {
            let fields = match value {
                Value::Null => return Err(self.invalid_path(path_text)),
                Value::Object(fields) => fields,
                _ => {
                    return Err(self.malformed(format!(
                        "info.{path_text}: the value is neither an object nor null"
                    )))
                }
            };
            infos.push(self.path_info(&JsonEntry { path_text, fields })?);
        }
        Ok((infos, format))
    }

    /// A whole `.attrs.json`: finds the attribute(s) exportReferencesGraph
    /// filled in.
    fn read_structured_attrs(
        &self,
        object: &Map<String, Value>,
    ) -> Result<(Vec<PathInfo>, ClosureFormat), ClosureError> {
        // `exportReferencesGraph` itself stays in `.attrs.json` and names the
        // attributes; without it, look for arrays of path infos.
        let keys: Vec<&String> = match object.get("exportReferencesGraph") {
            Some(Value::Object(graph)) => graph.keys().collect(),
            _ => object
                .iter()
                .filter(|(_, value)| is_path_info_array(value))
                .map(|(key, _)| key)
                .collect(),
        };
        let mut closures: Vec<(&String, BTreeMap<StorePath, PathInfo>)> = Vec::new();
        for key in keys {
            let Some(Value::Array(items)) = object.get(key) else {
                return Err(self.malformed(format!(
                    "exportReferencesGraph names attribute `{key}`, but it does not hold an array"
                )));
            };
            let (infos, _) = self.read_path_info_array(items, &format!("`{key}`"))?;
            closures.push((key, self.merge_duplicates(infos)?));
        }
        let Some((first_key, first)) = closures.first() else {
            return Err(self.malformed(
                "a JSON object that is not a closure: it has no array of \
                 {path, narHash, ...} objects (exportReferencesGraph), its keys \
                 are not store paths (nix path-info --json), and it has no \
                 `version` and `info` (nix path-info --json-format 2)",
            ));
        };
        if let Some((other_key, _)) = closures.iter().find(|(_, other)| other != first) {
            return Err(self.malformed(format!(
                "attributes `{first_key}` and `{other_key}` hold different closures; \
                 extract one of them (e.g. `jq .{first_key}`)"
            )));
        }
        let infos = first.values().cloned().collect();
        Ok((infos, ClosureFormat::ExportReferencesGraph))
    }

    fn field_error(&self, entry: &JsonEntry, field: &str, problem: &str) -> ClosureError {
        self.malformed(format!(
            "{}: `{field}` {problem}",
            self.display_path(entry.path_text)
        ))
    }

    /// The fields every JSON shape shares, read leniently: strings or
    /// structured values, absolute paths or basenames, absent or `null`.
    fn path_info(&self, entry: &JsonEntry) -> Result<PathInfo, ClosureError> {
        let fields = entry.fields;
        let present = |name: &str| fields.get(name).filter(|value| !value.is_null());

        // Before the path, whose parse would fail with a vaguer message.
        if let Some(stated) = present("storeDir") {
            self.check_store_dir(stated, &self.display_path(entry.path_text))?;
        }
        let path = self.store_path(entry.path_text)?;
        if let Some(stated) = present("path").and_then(Value::as_str) {
            if self.store_path(stated)? != path {
                return Err(self.field_error(entry, "path", &format!("is {stated:?}")));
            }
        }

        let nar_hash_value = fields
            .get("narHash")
            .ok_or_else(|| self.field_error(entry, "narHash", "is missing"))?;
        let nar_hash = self.nar_hash(entry, nar_hash_value)?;

        let nar_size = fields
            .get("narSize")
            .ok_or_else(|| self.field_error(entry, "narSize", "is missing"))?
            .as_u64()
            .ok_or_else(|| self.field_error(entry, "narSize", "is not a non-negative integer"))?;

        let reference_values = fields
            .get("references")
            .ok_or_else(|| self.field_error(entry, "references", "is missing"))?
            .as_array()
            .ok_or_else(|| self.field_error(entry, "references", "is not an array"))?;
        let mut references = Vec::with_capacity(reference_values.len());
        for value in reference_values {
            let text = value
                .as_str()
                .ok_or_else(|| self.field_error(entry, "references", "holds a non-string"))?;
            references.push(self.store_path(text)?);
        }
        references.sort();
        references.dedup();

        let deriver = match present("deriver") {
            None => None,
            Some(value) => {
                let text = value
                    .as_str()
                    .ok_or_else(|| self.field_error(entry, "deriver", "is not a string"))?;
                Some(self.store_path(text)?)
            }
        };

        let ca = match present("ca") {
            None => None,
            Some(Value::String(text)) => Some(text.clone()),
            Some(Value::Object(structured)) => Some(
                content_address_text(structured)
                    .map_err(|why| self.field_error(entry, "ca", &why))?,
            ),
            Some(_) => {
                return Err(self.field_error(entry, "ca", "is neither a string nor an object"))
            }
        };

        let mut signatures = Vec::new();
        if let Some(value) = present("signatures") {
            let values = value
                .as_array()
                .ok_or_else(|| self.field_error(entry, "signatures", "is not an array"))?;
            for value in values {
                signatures.push(signature_text(value).ok_or_else(|| {
                    self.field_error(
                        entry,
                        "signatures",
                        "holds something that is neither \"<key>:<sig>\" nor {keyName, sig}",
                    )
                })?);
            }
        }
        // Nix keeps signatures as a set.
        signatures.sort();
        signatures.dedup();

        Ok(PathInfo {
            path,
            nar_hash,
            nar_size,
            references,
            deriver,
            ca,
            signatures,
        })
    }

    fn nar_hash(&self, entry: &JsonEntry, value: &Value) -> Result<NarHash, ClosureError> {
        let bad_hash = |source: HashError| ClosureError::BadHash {
            source_name: self.source_name.to_owned(),
            path: self.display_path(entry.path_text),
            source,
        };
        match value {
            Value::String(text) => NarHash::parse(text).map_err(bad_hash),
            Value::Object(structured) => {
                let (algorithm, digest) = structured_hash(structured).map_err(|why| {
                    bad_hash(HashError {
                        text: value.to_string(),
                        why,
                    })
                })?;
                let digest: [u8; 32] = match (algorithm, <[u8; 32]>::try_from(digest)) {
                    (HashAlgorithm::Sha256, Ok(digest)) => digest,
                    _ => {
                        return Err(bad_hash(HashError {
                            text: value.to_string(),
                            why: "only sha256 is supported",
                        }))
                    }
                };
                Ok(NarHash(digest))
            }
            _ => Err(self.field_error(entry, "narHash", "is neither a string nor an object")),
        }
    }

    // ----- registration text ----------------------------------------------

    fn read_registration(&self, bytes: &[u8]) -> Result<Vec<PathInfo>, ClosureError> {
        let text = std::str::from_utf8(bytes)
            .map_err(|e| self.malformed(format!("registration text is not UTF-8: {e}")))?;
        let mut lines = RegistrationLines {
            reader: self,
            lines: text.lines(),
            line_number: 0,
        };
        let mut infos = Vec::new();
        while let Some(path_line) = lines.lines.next() {
            lines.line_number += 1;
            if path_line.is_empty() {
                // `nix-store --load-db` stops at an empty line where a path
                // would start; allow that only at the very end.
                if lines.lines.all(|line| line.trim().is_empty()) {
                    break;
                }
                return Err(self.malformed(format!(
                    "line {}: empty line where a store path was expected",
                    lines.line_number
                )));
            }
            let path = StorePath::from_absolute(path_line, self.store_dir).map_err(|source| {
                ClosureError::BadStorePath {
                    source_name: self.source_name.to_owned(),
                    path: path_line.to_owned(),
                    source,
                }
            })?;

            let hash_line = lines.expect("narHash", path_line)?;
            if hash_line.is_empty() || hash_line.starts_with('/') {
                return Err(self.malformed(format!(
                    "line {}: {path_line} has no NAR hash; registration text without \
                     hashes (for `nix-store --register-validity` without `--hash-given`) \
                     cannot describe a closure",
                    lines.line_number
                )));
            }
            let nar_hash = NarHash::parse(hash_line).map_err(|source| ClosureError::BadHash {
                source_name: self.source_name.to_owned(),
                path: path_line.to_owned(),
                source,
            })?;

            let nar_size = lines.expect_number("narSize", path_line)?;

            let deriver = match lines.expect("deriver", path_line)? {
                "" => None,
                text => Some(self.store_path(text)?),
            };

            let count: usize = lines.expect_number("number of references", path_line)?;
            let mut references = Vec::new();
            for _ in 0..count {
                let reference = lines.expect("reference", path_line)?;
                references.push(self.store_path(reference)?);
            }
            references.sort();
            references.dedup();

            infos.push(PathInfo {
                path,
                nar_hash,
                nar_size,
                references,
                deriver,
                ca: None,
                signatures: Vec::new(),
            });
        }
        Ok(infos)
    }
}

/// Line-by-line access to registration text.
struct RegistrationLines<'a> {
    reader: &'a Reader<'a>,
    lines: std::str::Lines<'a>,
    /// 1-based number of the line last returned.
    line_number: usize,
}

impl<'a> RegistrationLines<'a> {
    /// The next line, which holds the `what` of `path`.
    fn expect(&mut self, what: &str, path: &str) -> Result<&'a str, ClosureError> {
        self.line_number += 1;
        self.lines.next().ok_or_else(|| {
            self.reader.malformed(format!(
                "line {}: {path}: the input ends where its {what} was expected",
                self.line_number
            ))
        })
    }

    fn expect_number<N: std::str::FromStr>(
        &mut self,
        what: &str,
        path: &str,
    ) -> Result<N, ClosureError> {
        let line = self.expect(what, path)?;
        line.parse().map_err(|_| {
            self.reader.malformed(format!(
                "line {}: {path}: {what} {line:?} is not a non-negative integer",
                self.line_number
            ))
        })
    }
}

// ----- structured JSON values --------------------------------------------

/// The hash algorithms Nix knows, with their digest lengths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HashAlgorithm {
    Md5,
    Sha1,
    Sha256,
    Sha512,
    Blake3,
}

impl HashAlgorithm {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "md5" => HashAlgorithm::Md5,
            "sha1" => HashAlgorithm::Sha1,
            "sha256" => HashAlgorithm::Sha256,
            "sha512" => HashAlgorithm::Sha512,
            "blake3" => HashAlgorithm::Blake3,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            HashAlgorithm::Md5 => "md5",
            HashAlgorithm::Sha1 => "sha1",
            HashAlgorithm::Sha256 => "sha256",
            HashAlgorithm::Sha512 => "sha512",
            HashAlgorithm::Blake3 => "blake3",
        }
    }

    fn digest_len(self) -> usize {
        match self {
            HashAlgorithm::Md5 => 16,
            HashAlgorithm::Sha1 => 20,
            HashAlgorithm::Sha256 | HashAlgorithm::Blake3 => 32,
            HashAlgorithm::Sha512 => 64,
        }
    }
}

/// Reads an SRI hash (`sha256-<base64>`), as Nix's JSON writes a `Hash`.
fn sri_hash(text: &str) -> Result<(HashAlgorithm, Vec<u8>), &'static str> {
    let (name, base64) = text
        .split_once('-')
        .ok_or("not an SRI hash <algorithm>-<base64>")?;
    let algorithm = HashAlgorithm::parse(name).ok_or("unknown hash algorithm")?;
    let digest = decode_digest(algorithm, "base64", base64)?;
    Ok((algorithm, digest))
}

/// Reads a hash object `{"algorithm", "format", "hash"}`, the shape
/// unreleased Nix between 2.32 and 2.33 wrote.
fn structured_hash(fields: &Map<String, Value>) -> Result<(HashAlgorithm, Vec<u8>), &'static str> {
    let text = |name| fields.get(name).and_then(Value::as_str);
    let algorithm = text("algorithm")
        .and_then(HashAlgorithm::parse)
        .ok_or("no known `algorithm`")?;
    let format = text("format").ok_or("no `format`")?;
    let hash = text("hash").ok_or("no `hash`")?;
    let digest = decode_digest(algorithm, format, hash)?;
    Ok((algorithm, digest))
}

fn decode_digest(
    algorithm: HashAlgorithm,
    format: &str,
    text: &str,
) -> Result<Vec<u8>, &'static str> {
    let len = algorithm.digest_len();
    let digest = match format {
        "base16" => decode_hex(text),
        "nix32" | "base32" => decode_nix32(text, len),
        "base64" => base64::engine::general_purpose::STANDARD.decode(text).ok(),
        "sri" => {
            let digest_text = text
                .strip_prefix(algorithm.name())
                .and_then(|t| t.strip_prefix('-'));
            let digest_text = digest_text.unwrap_or(text);
            base64::engine::general_purpose::STANDARD
                .decode(digest_text)
                .ok()
        }
        _ => return Err("unknown hash `format`"),
    };
    digest
        .filter(|digest| digest.len() == len)
        .ok_or("the digest is not valid for its algorithm and format")
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

fn decode_nix32(text: &str, len: usize) -> Option<Vec<u8>> {
    match len {
        16 => nixbase32::decode::<16>(text).map(Vec::from),
        20 => nixbase32::decode::<20>(text).map(Vec::from),
        32 => nixbase32::decode::<32>(text).map(Vec::from),
        64 => nixbase32::decode::<64>(text).map(Vec::from),
        _ => None,
    }
}

/// Converts a structured content address `{"method", "hash"}` to Nix's text
/// form, as `renderContentAddress` writes it: `text:sha256:<nix32>`,
/// `fixed:sha256:…` (flat), `fixed:r:sha256:…` (NAR), `fixed:git:sha1:…`.
fn content_address_text(fields: &Map<String, Value>) -> Result<String, String> {
    let method = fields
        .get("method")
        .and_then(Value::as_str)
        .ok_or("has no string `method`")?;
    let prefix = match method {
        "text" => "text:",
        "flat" => "fixed:",
        "nar" => "fixed:r:",
        "git" => "fixed:git:",
        other => return Err(format!("has unknown method {other:?}")),
    };
    let (algorithm, digest) = match fields.get("hash") {
        Some(Value::String(sri)) => sri_hash(sri),
        Some(Value::Object(structured)) => structured_hash(structured),
        _ => Err("no `hash`"),
    }
    .map_err(|why| format!("has a bad hash: {why}"))?;
    Ok(format!(
        "{prefix}{}:{}",
        algorithm.name(),
        nixbase32::encode(&digest)
    ))
}

/// A signature as `<key name>:<base64>`, from that string or from
/// `{"keyName", "sig"}` (format version 3).
fn signature_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Object(fields) => {
            let key_name = fields.get("keyName")?.as_str()?;
            let sig = fields.get("sig")?.as_str()?;
            Some(format!("{key_name}:{sig}"))
        }
        _ => None,
    }
}

/// Whether a `.attrs.json` value looks like what exportReferencesGraph
/// writes: a non-empty array of objects with `path` and `narHash`.
fn is_path_info_array(value: &Value) -> bool {
    matches!(value, Value::Array(items) if !items.is_empty()
    && items.iter().all(|item| {
        item.get("path").is_some_and(Value::is_string) && item.get("narHash").is_some()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Fixtures. The first five are real output of Nix 2.8 for one closure
    // (JSON reformatted with `jq .`): `top` references `self-ref` and
    // `added-file`; `self-ref` references itself, `greeting` and `fod-flat`.
    // `greeting` is `builtins.toFile` (ca `text:`), `fod-flat` a flat
    // fixed-output derivation (`fixed:`), `added-file` a `builtins.path`
    // (`fixed:r:`). `top` and `self-ref` are signed with a test key.

    /// `.attrs.json` of a `__structuredAttrs` derivation with
    /// `exportReferencesGraph.closure = [ top ]`.
    const ATTRS_JSON: &str = r#"{
  "builder": "/bin/bash",
  "closure": [
    {
      "ca": "text:sha256:0y2i89ifj068yr42qwm95nw5i7m1ab14wxffdwa81s02z4250pyi",
      "closureSize": 144,
      "narHash": "sha256:1n6yxrfa102vp3sch9qx8xrqpd40bja6kdpcsczd7cwph07a8sqb",
      "narSize": 144,
      "path": "/nix/store/1jk14awh1ikhpn63isz3qhr45gnci589-greeting",
      "references": []
    },
    {
      "ca": "fixed:sha256:0d75vbn546fz9d9ip0f03daqhpm99h3fv14ci4afcmk3ir0p2c0c",
      "closureSize": 120,
      "narHash": "sha256:07y32ljqjzpgw56dgrwfs7f0illrfg8bgkfq0d89p01m677grk1p",
      "narSize": 120,
      "path": "/nix/store/3qxhcxqpk7pzy92qrip3v5m74vzxjwv5-fod-flat",
      "references": []
    },
    {
      "closureSize": 1240,
      "narHash": "sha256:1jbm8g66gsh04lvjm5dik62b03fzfh4izbmn8ffsrjiyyi45bzs2",
      "narSize": 224,
      "path": "/nix/store/phh6bj29y3b16y61m70ddckmxmqa50ng-top",
      "references": [
        "/nix/store/xcbmgb2r29nifswqzyvakcww51f7vcnw-added-file",
        "/nix/store/zwby0s3g0p3fmr4q2y3rvnf6zrlxqhqk-self-ref"
      ]
    },
    {
      "ca": "fixed:r:sha256:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw",
      "closureSize": 120,
      "narHash": "sha256:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw",
      "narSize": 120,
      "path": "/nix/store/xcbmgb2r29nifswqzyvakcww51f7vcnw-added-file",
      "references": []
    },
    {
      "closureSize": 896,
      "narHash": "sha256:1cn0xpv46cbfy867zpxkw2l66zcbn3ab14avmfz2zs231isfnnqm",
      "narSize": 632,
      "path": "/nix/store/zwby0s3g0p3fmr4q2y3rvnf6zrlxqhqk-self-ref",
      "references": [
        "/nix/store/1jk14awh1ikhpn63isz3qhr45gnci589-greeting",
        "/nix/store/3qxhcxqpk7pzy92qrip3v5m74vzxjwv5-fod-flat",
        "/nix/store/zwby0s3g0p3fmr4q2y3rvnf6zrlxqhqk-self-ref"
      ]
    }
  ],
  "exportReferencesGraph": {
    "closure": [
      "/nix/store/phh6bj29y3b16y61m70ddckmxmqa50ng-top"
    ]
  },
  "name": "graph",
  "outputs": {
    "out": "/nix/store/xajxm9bq8g3kxzlaggbrkx69fl2vls94-graph"
  },
  "system": "x86_64-linux"
}
"#;

    /// `nix path-info --json -r top`.
    const PATH_INFO_LIST: &str = r#"[
  {
    "path": "/nix/store/1jk14awh1ikhpn63isz3qhr45gnci589-greeting",
    "narHash": "sha256-C2ukDoCXs9M+0+y2aZRcgLSLc0cdJ8j0uFuAoFzu3tg=",
    "narSize": 144,
    "references": [],
    "ca": "text:sha256:0y2i89ifj068yr42qwm95nw5i7m1ab14wxffdwa81s02z4250pyi",
    "registrationTime": 1795537333
  },
  {
    "path": "/nix/store/3qxhcxqpk7pzy92qrip3v5m74vzxjwv5-fod-flat",
    "narHash": "sha256-N8z8zjE1gJtQA9jNt9BzmdII3NGO59dM4e9+iSUVwx8=",
    "narSize": 120,
    "references": [],
    "ca": "fixed:sha256:0d75vbn546fz9d9ip0f03daqhpm99h3fv14ci4afcmk3ir0p2c0c",
    "deriver": "/nix/store/z6j5lhpzsl81g17vispq6xklbplyakbs-fod-flat.drv",
    "registrationTime": 1795537333,
    "ultimate": true
  },
  {
    "path": "/nix/store/phh6bj29y3b16y61m70ddckmxmqa50ng-top",
    "narHash": "sha256-Qv9VSPQ+yqydQ7auHwl03w2whJmxlSo3JQDqZ8xDdck=",
    "narSize": 224,
    "references": [
      "/nix/store/xcbmgb2r29nifswqzyvakcww51f7vcnw-added-file",
      "/nix/store/zwby0s3g0p3fmr4q2y3rvnf6zrlxqhqk-self-ref"
    ],
    "deriver": "/nix/store/l93y1q47i3mld14vnix4gq8jlj8dgjg8-top.drv",
    "registrationTime": 1795537333,
    "ultimate": true,
    "signatures": [
      "test-key-1:GDdkQMUC9l7VHspEimrclou5fUzMaknAQnEqKX0txiwxSL4dXdt7qO2zwQDILNnh3tazED0PO/RGgNPC+hcACw=="
    ]
  },
  {
    "path": "/nix/store/xcbmgb2r29nifswqzyvakcww51f7vcnw-added-file",
    "narHash": "sha256-HDfQGvQL4ugGkd48w99EN3ppmvuxfGjwgJZLL9Bx/BM=",
    "narSize": 120,
    "references": [],
    "ca": "fixed:r:sha256:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw",
    "registrationTime": 1795537333
  },
  {
    "path": "/nix/store/zwby0s3g0p3fmr4q2y3rvnf6zrlxqhqk-self-ref",
    "narHash": "sha256-FVvrdAxD6C++q1uRsNSwi31jqOCz338M8m4xQ/btwLI=",
    "narSize": 632,
    "references": [
      "/nix/store/1jk14awh1ikhpn63isz3qhr45gnci589-greeting",
      "/nix/store/3qxhcxqpk7pzy92qrip3v5m74vzxjwv5-fod-flat",
      "/nix/store/zwby0s3g0p3fmr4q2y3rvnf6zrlxqhqk-self-ref"
    ],
    "deriver": "/nix/store/4hrvcfxmfgw0k0wn85xwf98q35g6dsp4-self-ref.drv",
    "registrationTime": 1795537333,
    "ultimate": true,
    "signatures": [
      "test-key-1:ueIgvkt8CB+wyzFNXuD8SCllGIteF4cp6KPn74KH1id8R3DdKB+wDeZMWHxKqxoTSS9TzQ4Ejqi0y4OQv5dBCw=="
    ]
  }
]
"#;

    /// `nix path-info --json /nix/store/000…-missing top`.
    const PATH_INFO_LIST_WITH_INVALID: &str = r#"[{"path":"/nix/store/00000000000000000000000000000000-missing","valid":false},{"path":"/nix/store/phh6bj29y3b16y61m70ddckmxmqa50ng-top","narHash":"sha256-Qv9VSPQ+yqydQ7auHwl03w2whJmxlSo3JQDqZ8xDdck=","narSize":224,"references":["/nix/store/xcbmgb2r29nifswqzyvakcww51f7vcnw-added-file","/nix/store/zwby0s3g0p3fmr4q2y3rvnf6zrlxqhqk-self-ref"],"deriver":"/nix/store/l93y1q47i3mld14vnix4gq8jlj8dgjg8-top.drv","registrationTime":1795537333,"ultimate":true,"signatures":["test-key-1:GDdkQMUC9l7VHspEimrclou5fUzMaknAQnEqKX0txiwxSL4dXdt7qO2zwQDILNnh3tazED0PO/RGgNPC+hcACw=="]}]"#;

    /// `nix-store --dump-db $(nix-store -qR top)`.
    const DUMP_DB: &str = "/nix/store/1jk14awh1ikhpn63isz3qhr45gnci589-greeting
0b6ba40e8097b3d33ed3ecb669945c80b48b73471d27c8f4b85b80a05ceeded8
144

0
/nix/store/3qxhcxqpk7pzy92qrip3v5m74vzxjwv5-fod-flat
37ccfcce3135809b5003d8cdb7d07399d208dcd18ee7d74ce1ef7e892515c31f
120
/nix/store/z6j5lhpzsl81g17vispq6xklbplyakbs-fod-flat.drv
0
/nix/store/xcbmgb2r29nifswqzyvakcww51f7vcnw-added-file
1c37d01af40be2e80691de3cc3df44377a699afbb17c68f080964b2fd071fc13
120

0
/nix/store/zwby0s3g0p3fmr4q2y3rvnf6zrlxqhqk-self-ref
155beb740c43e82fbeab5b91b0d4b08b7d63a8e0b3df7f0cf26e3143f6edc0b2
632
/nix/store/4hrvcfxmfgw0k0wn85xwf98q35g6dsp4-self-ref.drv
3
/nix/store/1jk14awh1ikhpn63isz3qhr45gnci589-greeting
/nix/store/3qxhcxqpk7pzy92qrip3v5m74vzxjwv5-fod-flat
/nix/store/zwby0s3g0p3fmr4q2y3rvnf6zrlxqhqk-self-ref
/nix/store/phh6bj29y3b16y61m70ddckmxmqa50ng-top
42ff5548f43ecaac9d43b6ae1f0974df0db08499b1952a372500ea67cc4375c9
224
/nix/store/l93y1q47i3mld14vnix4gq8jlj8dgjg8-top.drv
2
/nix/store/xcbmgb2r29nifswqzyvakcww51f7vcnw-added-file
/nix/store/zwby0s3g0p3fmr4q2y3rvnf6zrlxqhqk-self-ref
";

    /// `registration` as nixpkgs' closureInfo builds it from ATTRS_JSON with
    /// `jq -r '.closure | map([.path, .narHash, .narSize, "", (.references |
    /// length)] + .references) | add | map("\(.)\n") | add' | head -n -1`.
    const CLOSURE_INFO_REGISTRATION: &str = "/nix/store/1jk14awh1ikhpn63isz3qhr45gnci589-greeting
sha256:1n6yxrfa102vp3sch9qx8xrqpd40bja6kdpcsczd7cwph07a8sqb
144

0
/nix/store/3qxhcxqpk7pzy92qrip3v5m74vzxjwv5-fod-flat
sha256:07y32ljqjzpgw56dgrwfs7f0illrfg8bgkfq0d89p01m677grk1p
120

0
/nix/store/phh6bj29y3b16y61m70ddckmxmqa50ng-top
sha256:1jbm8g66gsh04lvjm5dik62b03fzfh4izbmn8ffsrjiyyi45bzs2
224

2
/nix/store/xcbmgb2r29nifswqzyvakcww51f7vcnw-added-file
/nix/store/zwby0s3g0p3fmr4q2y3rvnf6zrlxqhqk-self-ref
/nix/store/xcbmgb2r29nifswqzyvakcww51f7vcnw-added-file
sha256:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw
120

0
/nix/store/zwby0s3g0p3fmr4q2y3rvnf6zrlxqhqk-self-ref
sha256:1cn0xpv46cbfy867zpxkw2l66zcbn3ab14avmfz2zs231isfnnqm
632

3
/nix/store/1jk14awh1ikhpn63isz3qhr45gnci589-greeting
/nix/store/3qxhcxqpk7pzy92qrip3v5m74vzxjwv5-fod-flat
/nix/store/zwby0s3g0p3fmr4q2y3rvnf6zrlxqhqk-self-ref
";

    // Hand-written in the newer shapes (see the module documentation for the
    // sources), holding the same data as PATH_INFO_LIST for the closed
    // subset greeting, fod-flat, added-file, self-ref.

    /// Nix 2.23–2.32 `nix path-info --json`: keyed by absolute path, absent
    /// values as `null`.
    const PATH_INFO_OBJECT: &str = r#"{
  "/nix/store/1jk14awh1ikhpn63isz3qhr45gnci589-greeting": {"ca":"text:sha256:0y2i89ifj068yr42qwm95nw5i7m1ab14wxffdwa81s02z4250pyi","deriver":null,"narHash":"sha256-C2ukDoCXs9M+0+y2aZRcgLSLc0cdJ8j0uFuAoFzu3tg=","narSize":144,"references":[],"registrationTime":1795537333,"signatures":[],"ultimate":false},
  "/nix/store/3qxhcxqpk7pzy92qrip3v5m74vzxjwv5-fod-flat": {"ca":"fixed:sha256:0d75vbn546fz9d9ip0f03daqhpm99h3fv14ci4afcmk3ir0p2c0c","deriver":"/nix/store/z6j5lhpzsl81g17vispq6xklbplyakbs-fod-flat.drv","narHash":"sha256-N8z8zjE1gJtQA9jNt9BzmdII3NGO59dM4e9+iSUVwx8=","narSize":120,"references":[],"registrationTime":1795537333,"signatures":[],"ultimate":true},
  "/nix/store/xcbmgb2r29nifswqzyvakcww51f7vcnw-added-file": {"ca":"fixed:r:sha256:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw","deriver":null,"narHash":"sha256-HDfQGvQL4ugGkd48w99EN3ppmvuxfGjwgJZLL9Bx/BM=","narSize":120,"references":[],"registrationTime":1795537333,"signatures":[],"ultimate":false},
  "/nix/store/zwby0s3g0p3fmr4q2y3rvnf6zrlxqhqk-self-ref": {"ca":null,"deriver":"/nix/store/4hrvcfxmfgw0k0wn85xwf98q35g6dsp4-self-ref.drv","narHash":"sha256-FVvrdAxD6C++q1uRsNSwi31jqOCz338M8m4xQ/btwLI=","narSize":632,"references":["/nix/store/1jk14awh1ikhpn63isz3qhr45gnci589-greeting","/nix/store/3qxhcxqpk7pzy92qrip3v5m74vzxjwv5-fod-flat","/nix/store/zwby0s3g0p3fmr4q2y3rvnf6zrlxqhqk-self-ref"],"registrationTime":1795537333,"signatures":["test-key-1:ueIgvkt8CB+wyzFNXuD8SCllGIteF4cp6KPn74KH1id8R3DdKB+wDeZMWHxKqxoTSS9TzQ4Ejqi0y4OQv5dBCw=="],"ultimate":true}
}"#;

    /// Nix ≥ 2.33 `nix path-info --json --json-format 1`.
    const PATH_INFO_V1: &str = r#"{
  "/nix/store/1jk14awh1ikhpn63isz3qhr45gnci589-greeting": {"ca":"text:sha256:0y2i89ifj068yr42qwm95nw5i7m1ab14wxffdwa81s02z4250pyi","deriver":null,"narHash":"sha256-C2ukDoCXs9M+0+y2aZRcgLSLc0cdJ8j0uFuAoFzu3tg=","narSize":144,"references":[],"registrationTime":1795537333,"signatures":[],"storeDir":"/nix/store","ultimate":false,"version":1},
  "/nix/store/3qxhcxqpk7pzy92qrip3v5m74vzxjwv5-fod-flat": {"ca":"fixed:sha256:0d75vbn546fz9d9ip0f03daqhpm99h3fv14ci4afcmk3ir0p2c0c","deriver":"/nix/store/z6j5lhpzsl81g17vispq6xklbplyakbs-fod-flat.drv","narHash":"sha256-N8z8zjE1gJtQA9jNt9BzmdII3NGO59dM4e9+iSUVwx8=","narSize":120,"references":[],"registrationTime":1795537333,"signatures":[],"storeDir":"/nix/store","ultimate":true,"version":1},
  "/nix/store/xcbmgb2r29nifswqzyvakcww51f7vcnw-added-file": {"ca":"fixed:r:sha256:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw","deriver":null,"narHash":"sha256-HDfQGvQL4ugGkd48w99EN3ppmvuxfGjwgJZLL9Bx/BM=","narSize":120,"references":[],"registrationTime":1795537333,"signatures":[],"storeDir":"/nix/store","ultimate":false,"version":1},
  "/nix/store/zwby0s3g0p3fmr4q2y3rvnf6zrlxqhqk-self-ref": {"ca":null,"deriver":"/nix/store/4hrvcfxmfgw0k0wn85xwf98q35g6dsp4-self-ref.drv","narHash":"sha256-FVvrdAxD6C++q1uRsNSwi31jqOCz338M8m4xQ/btwLI=","narSize":632,"references":["/nix/store/1jk14awh1ikhpn63isz3qhr45gnci589-greeting","/nix/store/3qxhcxqpk7pzy92qrip3v5m74vzxjwv5-fod-flat","/nix/store/zwby0s3g0p3fmr4q2y3rvnf6zrlxqhqk-self-ref"],"registrationTime":1795537333,"signatures":["test-key-1:ueIgvkt8CB+wyzFNXuD8SCllGIteF4cp6KPn74KH1id8R3DdKB+wDeZMWHxKqxoTSS9TzQ4Ejqi0y4OQv5dBCw=="],"storeDir":"/nix/store","ultimate":true,"version":1}
}"#;

    /// Nix ≥ 2.33 `nix path-info --json --json-format 2`.
    const PATH_INFO_V2: &str = r#"{
  "info": {
    "1jk14awh1ikhpn63isz3qhr45gnci589-greeting": {
      "ca": {
        "hash": "sha256-0V9QBPkC6IAUb851TsJSoZ5YuC2pcixI9sgA6WJCUXg=",
        "method": "text"
      },
      "deriver": null,
      "narHash": "sha256-C2ukDoCXs9M+0+y2aZRcgLSLc0cdJ8j0uFuAoFzu3tg=",
      "narSize": 144,
      "references": [],
      "registrationTime": 1795537333,
      "signatures": [],
      "storeDir": "/nix/store",
      "ultimate": false,
      "version": 2
    },
    "3qxhcxqpk7pzy92qrip3v5m74vzxjwv5-fod-flat": {
      "ca": {
        "hash": "sha256-DDBxQY5jVuYUiYyE7QZMqV6IVRvAgRtTS98ZUuza5TQ=",
        "method": "flat"
      },
      "deriver": "z6j5lhpzsl81g17vispq6xklbplyakbs-fod-flat.drv",
      "narHash": "sha256-N8z8zjE1gJtQA9jNt9BzmdII3NGO59dM4e9+iSUVwx8=",
      "narSize": 120,
      "references": [],
      "registrationTime": 1795537333,
      "signatures": [],
      "storeDir": "/nix/store",
      "ultimate": true,
      "version": 2
    },
    "xcbmgb2r29nifswqzyvakcww51f7vcnw-added-file": {
      "ca": {
        "hash": "sha256-HDfQGvQL4ugGkd48w99EN3ppmvuxfGjwgJZLL9Bx/BM=",
        "method": "nar"
      },
      "deriver": null,
      "narHash": "sha256-HDfQGvQL4ugGkd48w99EN3ppmvuxfGjwgJZLL9Bx/BM=",
      "narSize": 120,
      "references": [],
      "registrationTime": 1795537333,
      "signatures": [],
      "storeDir": "/nix/store",
      "ultimate": false,
      "version": 2
    },
    "zwby0s3g0p3fmr4q2y3rvnf6zrlxqhqk-self-ref": {
      "ca": null,
      "deriver": "4hrvcfxmfgw0k0wn85xwf98q35g6dsp4-self-ref.drv",
      "narHash": "sha256-FVvrdAxD6C++q1uRsNSwi31jqOCz338M8m4xQ/btwLI=",
      "narSize": 632,
      "references": [
        "1jk14awh1ikhpn63isz3qhr45gnci589-greeting",
        "3qxhcxqpk7pzy92qrip3v5m74vzxjwv5-fod-flat",
        "zwby0s3g0p3fmr4q2y3rvnf6zrlxqhqk-self-ref"
      ],
      "registrationTime": 1795537333,
      "signatures": [
        "test-key-1:ueIgvkt8CB+wyzFNXuD8SCllGIteF4cp6KPn74KH1id8R3DdKB+wDeZMWHxKqxoTSS9TzQ4Ejqi0y4OQv5dBCw=="
      ],
      "storeDir": "/nix/store",
      "ultimate": true,
      "version": 2
    }
  },
  "storeDir": "/nix/store",
  "version": 2
}
"#;

    /// Nix ≥ 2.35 `nix path-info --json --json-format 3`.
    const PATH_INFO_V3: &str = r#"{"version":3,"storeDir":"/nix/store","info":{
  "1jk14awh1ikhpn63isz3qhr45gnci589-greeting": {"ca":{"hash":"sha256-0V9QBPkC6IAUb851TsJSoZ5YuC2pcixI9sgA6WJCUXg=","method":"text"},"deriver":null,"narHash":"sha256-C2ukDoCXs9M+0+y2aZRcgLSLc0cdJ8j0uFuAoFzu3tg=","narSize":144,"references":[],"registrationTime":1795537333,"signatures":[],"storeDir":"/nix/store","ultimate":false,"version":3},
  "3qxhcxqpk7pzy92qrip3v5m74vzxjwv5-fod-flat": {"ca":{"hash":"sha256-DDBxQY5jVuYUiYyE7QZMqV6IVRvAgRtTS98ZUuza5TQ=","method":"flat"},"deriver":"z6j5lhpzsl81g17vispq6xklbplyakbs-fod-flat.drv","narHash":"sha256-N8z8zjE1gJtQA9jNt9BzmdII3NGO59dM4e9+iSUVwx8=","narSize":120,"references":[],"registrationTime":1795537333,"signatures":[],"storeDir":"/nix/store","ultimate":true,"version":3},
  "xcbmgb2r29nifswqzyvakcww51f7vcnw-added-file": {"ca":{"hash":"sha256-HDfQGvQL4ugGkd48w99EN3ppmvuxfGjwgJZLL9Bx/BM=","method":"nar"},"deriver":null,"narHash":"sha256-HDfQGvQL4ugGkd48w99EN3ppmvuxfGjwgJZLL9Bx/BM=","narSize":120,"references":[],"registrationTime":1795537333,"signatures":[],"storeDir":"/nix/store","ultimate":false,"version":3},
  "zwby0s3g0p3fmr4q2y3rvnf6zrlxqhqk-self-ref": {"ca":null,"deriver":"4hrvcfxmfgw0k0wn85xwf98q35g6dsp4-self-ref.drv","narHash":"sha256-FVvrdAxD6C++q1uRsNSwi31jqOCz338M8m4xQ/btwLI=","narSize":632,"references":["1jk14awh1ikhpn63isz3qhr45gnci589-greeting","3qxhcxqpk7pzy92qrip3v5m74vzxjwv5-fod-flat","zwby0s3g0p3fmr4q2y3rvnf6zrlxqhqk-self-ref"],"registrationTime":1795537333,"signatures":[{"keyName":"test-key-1","sig":"ueIgvkt8CB+wyzFNXuD8SCllGIteF4cp6KPn74KH1id8R3DdKB+wDeZMWHxKqxoTSS9TzQ4Ejqi0y4OQv5dBCw=="}],"storeDir":"/nix/store","ultimate":true,"version":3}
}}"#;

    /// Unreleased Nix between 2.32 and 2.33 (commits bec3c5cfcd,
    /// caa196e31d): hashes as `{algorithm, format, hash}` objects.
    const STRUCTURED_HASHES: &str = r#"{"version":2,"storeDir":"/nix/store","info":{
  "1jk14awh1ikhpn63isz3qhr45gnci589-greeting": {
    "ca":{"method":"text","hash":{"algorithm":"sha256","format":"base64","hash":"0V9QBPkC6IAUb851TsJSoZ5YuC2pcixI9sgA6WJCUXg="}},
    "narHash":{"algorithm":"sha256","format":"base16","hash":"0b6ba40e8097b3d33ed3ecb669945c80b48b73471d27c8f4b85b80a05ceeded8"},
    "narSize":144,"references":[],"storeDir":"/nix/store","version":2
  }
}}"#;

    const STORE: &str = "/nix/store";
    const GREETING: &str = "1jk14awh1ikhpn63isz3qhr45gnci589-greeting";
    const FOD_FLAT: &str = "3qxhcxqpk7pzy92qrip3v5m74vzxjwv5-fod-flat";
    const ADDED_FILE: &str = "xcbmgb2r29nifswqzyvakcww51f7vcnw-added-file";
    const SELF_REF: &str = "zwby0s3g0p3fmr4q2y3rvnf6zrlxqhqk-self-ref";
    const TOP: &str = "phh6bj29y3b16y61m70ddckmxmqa50ng-top";

    fn read(text: &str) -> (Closure, ClosureFormat) {
        read_closure(text.as_bytes(), "fixture", STORE).unwrap_or_else(|e| panic!("{e}"))
    }

    fn read_err(text: &str) -> ClosureError {
        match read_closure(text.as_bytes(), "fixture", STORE) {
            Ok((_, format)) => panic!("read as {format}, expected an error"),
            Err(e) => e,
        }
    }

    fn path(basename: &str) -> StorePath {
        StorePath::from_basename(basename).unwrap()
    }

    fn info<'a>(closure: &'a Closure, basename: &str) -> &'a PathInfo {
        closure.require(&path(basename)).unwrap()
    }

    /// What every format carries: path, NAR hash and size, references.
    fn core(closure: &Closure) -> Vec<(StorePath, NarHash, u64, Vec<StorePath>)> {
        closure
            .iter()
            .map(|i| (i.path.clone(), i.nar_hash, i.nar_size, i.references.clone()))
            .collect()
    }

    /// PATH_INFO_LIST without `top`: what the hand-written fixtures hold.
    fn list_subset() -> Closure {
        let (full, _) = read(PATH_INFO_LIST);
        let subset = full.iter().filter(|i| i.path.basename() != TOP).cloned();
        Closure::new(STORE, subset).unwrap()
    }

    #[test]
    fn reads_structured_attrs_json() {
        let (closure, format) = read(ATTRS_JSON);
        assert_eq!(format, ClosureFormat::ExportReferencesGraph);
        assert_eq!(closure.len(), 5);
        assert_eq!(closure.store_dir(), STORE);
        let self_ref = info(&closure, SELF_REF);
        assert_eq!(
            self_ref.references,
            [path(GREETING), path(FOD_FLAT), path(SELF_REF)]
        );
        assert_eq!(self_ref.nar_size, 632);
        assert_eq!(
            self_ref.nar_hash.to_nix32_string(),
            "sha256:1cn0xpv46cbfy867zpxkw2l66zcbn3ab14avmfz2zs231isfnnqm"
        );
        assert_eq!(self_ref.deriver, None);
        assert_eq!(
            info(&closure, GREETING).ca.as_deref(),
            Some("text:sha256:0y2i89ifj068yr42qwm95nw5i7m1ab14wxffdwa81s02z4250pyi")
        );
        assert_eq!(
            info(&closure, FOD_FLAT).ca.as_deref(),
            Some("fixed:sha256:0d75vbn546fz9d9ip0f03daqhpm99h3fv14ci4afcmk3ir0p2c0c")
        );
        assert_eq!(
            info(&closure, ADDED_FILE).ca.as_deref(),
            Some("fixed:r:sha256:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw")
        );
        assert_eq!(info(&closure, TOP).ca, None);
        assert_eq!(closure.total_nar_size(), 144 + 120 + 224 + 120 + 632);
    }

    #[test]
    fn reads_the_bare_export_array() {
        let attrs: Value = serde_json::from_str(ATTRS_JSON).unwrap();
        let bare = attrs["closure"].to_string();
        let (closure, format) = read(&bare);
        assert_eq!(format, ClosureFormat::ExportReferencesGraph);
        assert_eq!(closure, read(ATTRS_JSON).0);

        // Newer Nix adds `"valid": true` to each element.
        let with_valid = bare.replace("\"path\":", "\"valid\":true,\"path\":");
        assert_eq!(read(&with_valid), (closure, format));
    }

    #[test]
    fn reads_the_nix_2_8_path_info_list() {
        let (closure, format) = read(PATH_INFO_LIST);
        assert_eq!(format, ClosureFormat::PathInfoList);
        assert_eq!(closure.len(), 5);
        let top = info(&closure, TOP);
        assert_eq!(
            top.deriver,
            Some(path("l93y1q47i3mld14vnix4gq8jlj8dgjg8-top.drv"))
        );
        assert_eq!(
            top.signatures,
            ["test-key-1:GDdkQMUC9l7VHspEimrclou5fUzMaknAQnEqKX0txiwxSL4dXdt7qO2zwQDILNnh3tazED0PO/RGgNPC+hcACw=="]
        );
        assert_eq!(top.references, [path(ADDED_FILE), path(SELF_REF)]);
        assert!(info(&closure, SELF_REF)
            .references
            .contains(&path(SELF_REF)));
        assert_eq!(info(&closure, GREETING).deriver, None);
    }

    #[test]
    fn reads_dump_db_and_closure_info_registrations() {
        let (dumped, format) = read(DUMP_DB);
        assert_eq!(format, ClosureFormat::Registration);
        assert_eq!(dumped.len(), 5);
        assert_eq!(
            info(&dumped, FOD_FLAT).deriver,
            Some(path("z6j5lhpzsl81g17vispq6xklbplyakbs-fod-flat.drv"))
        );
        assert!(info(&dumped, SELF_REF).references.contains(&path(SELF_REF)));

        let (registration, format) = read(CLOSURE_INFO_REGISTRATION);
        assert_eq!(format, ClosureFormat::Registration);
        assert_eq!(core(&registration), core(&dumped));

        // Without the trailing newline, and with one extra blank line.
        let trimmed = CLOSURE_INFO_REGISTRATION.trim_end();
        assert_eq!(read(trimmed).0, registration);
        assert_eq!(read(&format!("{trimmed}\n\n")).0, registration);
    }

    #[test]
    fn real_formats_agree_on_the_same_closure() {
        let (graph, _) = read(ATTRS_JSON);
        let (list, _) = read(PATH_INFO_LIST);
        let (dumped, _) = read(DUMP_DB);
        let (registration, _) = read(CLOSURE_INFO_REGISTRATION);
        assert_eq!(core(&graph), core(&list));
        assert_eq!(core(&graph), core(&dumped));
        // closureInfo's registration is exportReferencesGraph data minus ca.
        let graph_without_ca = graph.iter().cloned().map(|i| PathInfo { ca: None, ..i });
        assert_eq!(registration, Closure::new(STORE, graph_without_ca).unwrap());
        // Content addresses: exportReferencesGraph and path-info.
        let cas = |c: &Closure| c.iter().map(|i| i.ca.clone()).collect::<Vec<_>>();
        assert_eq!(cas(&graph), cas(&list));
        // Derivers: path-info and --dump-db.
        let derivers = |c: &Closure| c.iter().map(|i| i.deriver.clone()).collect::<Vec<_>>();
        assert_eq!(derivers(&list), derivers(&dumped));
    }

    #[test]
    fn reads_the_newer_path_info_shapes() {
        let expected = list_subset();
        for (text, format) in [
            (PATH_INFO_OBJECT, ClosureFormat::PathInfoObject),
            (PATH_INFO_V1, ClosureFormat::PathInfoJsonV1),
            (PATH_INFO_V2, ClosureFormat::PathInfoJsonV2),
            (PATH_INFO_V3, ClosureFormat::PathInfoJsonV3),
        ] {
            let (closure, read_format) = read(text);
            assert_eq!(read_format, format);
            assert_eq!(closure, expected, "{format}");
        }
    }

    #[test]
    fn reads_the_2_19_object_without_nulls() {
        // 2.19–2.22 leave absent fields out instead of writing null.
        let object: Value = serde_json::from_str(PATH_INFO_OBJECT).unwrap();
        let mut object = object.as_object().unwrap().clone();
        for value in object.values_mut() {
            value.as_object_mut().unwrap().retain(|_, v| !v.is_null());
        }
        let text = Value::Object(object).to_string();
        assert_eq!(read(&text), (list_subset(), ClosureFormat::PathInfoObject));
    }

    #[test]
    fn converts_structured_hashes_and_content_addresses() {
        let (closure, format) = read(STRUCTURED_HASHES);
        assert_eq!(format, ClosureFormat::PathInfoJsonV2);
        let expected = info(&list_subset(), GREETING).clone();
        assert_eq!(info(&closure, GREETING), &expected);

        let ca = |json: &str| content_address_text(&serde_json::from_str(json).unwrap());
        // sha1("test"); the nix32 spelling is from `nix hash to-base32`.
        assert_eq!(
            ca(r#"{"method":"git","hash":"sha1-qUqP5cyxm6YcTAhz05Hph5uPu9M="}"#).unwrap(),
            "fixed:git:sha1:sfxqz6w7x68x6wq89hfad6xirkjqyjm9"
        );
        let base16_object = r#"{"method":"flat","hash":{"algorithm":"sha1","format":"base16",
            "hash":"a94a8fe5ccb19ba61c4c0873d391e9879b8fbbd3"}}"#;
        assert_eq!(
            ca(base16_object).unwrap(),
            "fixed:sha1:sfxqz6w7x68x6wq89hfad6xirkjqyjm9"
        );
        let nix32_object = r#"{"method":"nar","hash":{"algorithm":"sha256","format":"nix32",
            "hash":"04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw"}}"#;
        assert_eq!(
            ca(nix32_object).unwrap(),
            "fixed:r:sha256:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw"
        );
        assert!(ca(r#"{"method":"zip","hash":"sha1-qUqP5cyxm6YcTAhz05Hph5uPu9M="}"#).is_err());
        assert!(ca(r#"{"method":"nar","hash":"sha256-qUqP5cyxm6YcTAhz05Hph5uPu9M="}"#).is_err());
    }

    #[test]
    fn accepts_a_different_store_dir_when_asked_for_it() {
        let moved = PATH_INFO_V1.replace("/nix/store", "/gnu/store");
        let (closure, _) = read_closure(moved.as_bytes(), "fixture", "/gnu/store/").unwrap();
        assert_eq!(closure.store_dir(), "/gnu/store");
        assert_eq!(closure.len(), 4);
    }

    #[test]
    fn invalid_paths_are_errors_naming_the_path() {
        let missing = "/nix/store/00000000000000000000000000000000-missing";
        let v2_null = format!(
            r#"{{"version":2,"storeDir":"/nix/store","info":{{"{}":null}}}}"#,
            &missing[11..]
        );
        let export_invalid = format!(r#"[{{"path":"{missing}","valid":false}}]"#);
        for text in [
            PATH_INFO_LIST_WITH_INVALID.to_owned(),
            format!(r#"{{"{missing}":null}}"#),
            v2_null,
            export_invalid,
        ] {
            let err = read_err(&text);
            assert!(matches!(err, ClosureError::InvalidPath { .. }), "{err}");
            assert!(err.to_string().contains(missing), "{err}");
            assert!(err.to_string().contains("fixture"), "{err}");
        }
    }

    #[test]
    fn malformed_store_paths_are_named() {
        // `e` is not a nix32 character.
        let bad = "/nix/store/1jk14awh1ikhpn63isz3qhr45gnci58e-greeting";
        let as_path = PATH_INFO_LIST.replacen(&format!("/nix/store/{GREETING}"), bad, 1);
        let err = read_err(&as_path);
        assert!(matches!(err, ClosureError::BadStorePath { .. }), "{err}");
        assert!(err.to_string().contains(bad), "{err}");

        let as_reference = PATH_INFO_LIST.replace(
            &format!("\"/nix/store/{SELF_REF}\"\n    ]"),
            &format!("\"{bad}\"\n    ]"),
        );
        let err = read_err(&as_reference);
        assert!(matches!(err, ClosureError::BadStorePath { .. }), "{err}");
        assert!(err.to_string().contains(bad), "{err}");

        let outside = DUMP_DB.replace(&format!("/nix/store/{TOP}"), &format!("/gnu/store/{TOP}"));
        let err = read_err(&outside);
        assert!(matches!(err, ClosureError::BadStorePath { .. }), "{err}");
        assert!(
            err.to_string().contains(&format!("/gnu/store/{TOP}")),
            "{err}"
        );
    }

    #[test]
    fn bad_hashes_are_named() {
        let json = PATH_INFO_LIST.replace(
            "sha256-C2ukDoCXs9M+0+y2aZRcgLSLc0cdJ8j0uFuAoFzu3tg=",
            "md5-C2ukDoCXs9M+0+y2aZRcgA==",
        );
        let registration = DUMP_DB.replace(
            "0b6ba40e8097b3d33ed3ecb669945c80b48b73471d27c8f4b85b80a05ceeded8",
            "0b6ba40e8097b3d33ed3ecb669945c80b48b73471d27c8f4b85b80a05ceeded",
        );
        let structured = STRUCTURED_HASHES.replace("\"base16\"", "\"base17\"");
        for text in [json, registration, structured] {
            let err = read_err(&text);
            assert!(matches!(err, ClosureError::BadHash { .. }), "{err}");
            assert!(err.to_string().contains(GREETING), "{err}");
        }
    }

    #[test]
    fn empty_inputs_are_errors() {
        let empty_attrs = r#"{"exportReferencesGraph":{"closure":[]},"closure":[]}"#;
        for text in [
            "",
            " \n",
            "[]",
            "{}",
            empty_attrs,
            r#"{"version":2,"info":{}}"#,
        ] {
            let err = read_err(text);
            assert!(matches!(err, ClosureError::Empty { .. }), "{text:?}: {err}");
        }
    }

    #[test]
    fn duplicates_must_agree() {
        let list: Value = serde_json::from_str(PATH_INFO_LIST).unwrap();
        let mut items = list.as_array().unwrap().clone();
        items.push(items[0].clone());
        let (closure, _) = read(&Value::Array(items.clone()).to_string());
        assert_eq!(closure, read(PATH_INFO_LIST).0);

        let last = items.len() - 1;
        items[last]["narSize"] = 145.into();
        let err = read_err(&Value::Array(items).to_string());
        assert!(matches!(err, ClosureError::Conflicting { .. }), "{err}");
        assert!(err.to_string().contains(GREETING), "{err}");
    }

    #[test]
    fn references_must_stay_inside_the_closure() {
        let list: Value = serde_json::from_str(PATH_INFO_LIST).unwrap();
        let without_greeting: Vec<Value> = list
            .as_array()
            .unwrap()
            .iter()
            .filter(|item| !item["path"].as_str().unwrap().ends_with(GREETING))
            .cloned()
            .collect();
        let err = read_err(&Value::Array(without_greeting).to_string());
        assert!(
            matches!(err, ClosureError::DanglingReference { .. }),
            "{err}"
        );
        assert!(err.to_string().contains(GREETING), "{err}");
    }

    #[test]
    fn broken_json_reports_line_and_column() {
        let broken = PATH_INFO_LIST.replacen("\"narSize\": 144,", "\"narSize\": 144", 1);
        let err = read_err(&broken);
        assert!(matches!(err, ClosureError::Malformed { .. }), "{err}");
        assert!(err.to_string().contains("line 6 column"), "{err}");
    }

    #[test]
    fn a_foreign_store_dir_is_rejected() {
        for text in [PATH_INFO_V1, PATH_INFO_V2] {
            let err = read_closure(text.as_bytes(), "fixture", "/gnu/store").unwrap_err();
            assert!(matches!(err, ClosureError::Malformed { .. }), "{err}");
            let message = err.to_string();
            assert!(message.contains("\"/nix/store\"") && message.contains("\"/gnu/store\""));
        }
    }

    #[test]
    fn attrs_with_different_closures_are_ambiguous() {
        let mut attrs: Value = serde_json::from_str(ATTRS_JSON).unwrap();
        let closure = attrs["closure"].clone();
        attrs["exportReferencesGraph"]["again"] = Value::Array(vec![]);
        attrs["again"] = closure.clone();
        assert_eq!(read(&attrs.to_string()).0, read(ATTRS_JSON).0);

        let only_greeting: Vec<Value> = closure
            .as_array()
            .unwrap()
            .iter()
            .filter(|item| item["path"].as_str().unwrap().ends_with(GREETING))
            .cloned()
            .collect();
        attrs["again"] = Value::Array(only_greeting);
        let err = read_err(&attrs.to_string());
        assert!(matches!(err, ClosureError::Malformed { .. }), "{err}");
        let message = err.to_string();
        assert!(
            message.contains("`closure`") && message.contains("`again`"),
            "{err}"
        );

        // Without the `exportReferencesGraph` attribute, the arrays are found
        // by their shape.
        attrs
            .as_object_mut()
            .unwrap()
            .remove("exportReferencesGraph");
        let err = read_err(&attrs.to_string());
        assert!(err.to_string().contains("`again`"), "{err}");
    }

    #[test]
    fn other_malformed_inputs() {
        let truncated = DUMP_DB.lines().take(8).collect::<Vec<_>>().join("\n");
        let not_a_number = DUMP_DB.replacen("144", "1x4", 1);
        // disko's closureInfo variant: path, deriver, count, references.
        let hashless = format!("/nix/store/{GREETING}\n\n0\n");
        let cases = [
            ("hello", "neither JSON"),
            (r#"{"name":"x","system":"y"}"#, "not a closure"),
            (
                r#"{"version":4,"storeDir":"/nix/store","info":{}}"#,
                "version 4",
            ),
            (&truncated, "ends where its deriver"),
            (&not_a_number, "line 3"),
            (&hashless, "has no NAR hash"),
            (r#"[{"narHash":"x"}]"#, "no string field `path`"),
            ("[1]", "array[0] is not an object"),
            (r#"{"/nix/store/x": 1}"#, "neither an object nor null"),
        ];
        for (text, expected) in cases {
            let err = read_err(text);
            assert!(matches!(err, ClosureError::Malformed { .. }), "{err}");
            assert!(err.to_string().contains(expected), "{text}: {err}");
        }
        let missing_size = PATH_INFO_LIST.replacen("\"narSize\": 144,", "", 1);
        let err = read_err(&missing_size);
        assert!(err.to_string().contains(GREETING) && err.to_string().contains("narSize"));
    }

    #[test]
    fn formats_have_distinct_names() {
        let names: std::collections::BTreeSet<String> = [
            ClosureFormat::ExportReferencesGraph,
            ClosureFormat::PathInfoList,
            ClosureFormat::PathInfoObject,
            ClosureFormat::PathInfoJsonV1,
            ClosureFormat::PathInfoJsonV2,
            ClosureFormat::PathInfoJsonV3,
            ClosureFormat::Registration,
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        assert_eq!(names.len(), 7);
    }
}
