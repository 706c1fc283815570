//! The JSON closure formats: `exportReferencesGraph`'s `.attrs.json` and
//! every shape of `nix path-info --json` (see the parent module's docs).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::{ClosureFormat, Reader};
use crate::store::hash::{sri_hash, structured_hash, HashAlgorithm};
use crate::store::{nixbase32, ClosureError, HashError, NarHash, PathInfo, StorePath};

/// One store object's JSON, together with the path it describes.
struct JsonEntry<'a> {
    /// The path as the file spells it (absolute or basename).
    path_text: &'a str,
    fields: &'a Map<String, Value>,
}

impl Reader<'_> {
    pub(super) fn read_json(
        &self,
        bytes: &[u8],
    ) -> Result<(Vec<PathInfo>, ClosureFormat), ClosureError> {
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
                return Err(self.field_error(entry, "path", &format!("is \"{stated}\"")));
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
}

/// Converts a structured content address `{"method", "hash"}` to Nix's text
/// form, as `renderContentAddress` writes it: `text:sha256:<nix32>`,
/// `fixed:sha256:…` (flat), `fixed:r:sha256:…` (NAR), `fixed:git:sha1:…`.
pub(super) fn content_address_text(fields: &Map<String, Value>) -> Result<String, String> {
    let method = fields
        .get("method")
        .and_then(Value::as_str)
        .ok_or("has no string `method`")?;
    let prefix = match method {
        "text" => "text:",
        "flat" => "fixed:",
        "nar" => "fixed:r:",
        "git" => "fixed:git:",
        other => return Err(format!("has unknown method \"{other}\"")),
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
