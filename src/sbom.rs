//! The CycloneDX 1.5 JSON SBOM `write --sbom FILE` publishes beside a
//! tarball.
//!
//! One component per store path of the closure (bom-ref: the absolute store
//! path), named and versioned as Nix's `builtins.parseDrvName` splits the
//! store path's name, with the `nix:` properties of nixpkgs'
//! `doc/interoperability/cyclonedx.md`: `nix:store_path`,
//! `nix:narinfo:nar_hash` (`sha256:<nix32>`, as a narinfo writes it) and
//! `nix:narinfo:nar_size`. `dependencies` mirrors the references (a store
//! path's reference to itself left out); the image file is
//! `metadata.component`, with its SHA-256, and depends on the closure's
//! roots (the store paths no other one refers to).
//!
//! Byte-reproducible: no timestamp, nothing from the machine or the run,
//! and the serial number is derived from the content: the SHA-256 of the
//! SBOM written without it, made an RFC 9562 version-8 UUID.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::store::Closure;

/// The CycloneDX specification version written.
pub const SPEC_VERSION: &str = "1.5";

/// The whole SBOM, its fields in the order they are written.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Bom {
    bom_format: &'static str,
    spec_version: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    serial_number: Option<String>,
    version: u32,
    metadata: Metadata,
    components: Vec<Component>,
    dependencies: Vec<Dependency>,
}

#[derive(Debug, Serialize)]
struct Metadata {
    tools: Tools,
    component: Component,
}

#[derive(Debug, Serialize)]
struct Tools {
    components: Vec<Component>,
}

#[derive(Debug, Serialize)]
struct Component {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(rename = "bom-ref", skip_serializing_if = "Option::is_none")]
    bom_ref: Option<String>,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    hashes: Vec<Hash>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    properties: Vec<Property>,
}

#[derive(Debug, Serialize)]
struct Hash {
    alg: &'static str,
    content: String,
}

#[derive(Debug, Serialize)]
struct Property {
    name: &'static str,
    value: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Dependency {
    #[serde(rename = "ref")]
    reference: String,
    depends_on: Vec<String>,
}

/// A store path name split as Nix's `builtins.parseDrvName` splits it: the
/// version starts after the first `-` that is followed by a character that
/// is no ASCII letter (`hello-2.12` is `hello` and `2.12`, `foo-bar-1-x` is
/// `foo-bar` and `1-x`). `None` when there is no version, and when the name
/// part would be empty (`-1`): a component needs a name, so the whole name
/// is kept.
pub fn split_name(name: &str) -> (&str, Option<&str>) {
    let bytes = name.as_bytes();
    for i in 0..bytes.len() {
        if bytes[i] == b'-' && i + 1 < bytes.len() && !bytes[i + 1].is_ascii_alphabetic() {
            return match i {
                0 => (name, None),
                _ => (&name[..i], Some(&name[i + 1..])),
            };
        }
    }
    (name, None)
}

/// The SBOM of the image `file_name` (no directory), whose bytes have the
/// SHA-256 `sha256`, made of `closure`: pretty JSON with a final newline.
pub fn sbom_json(closure: &Closure, file_name: &str, sha256: &[u8; 32]) -> String {
    let store_dir = closure.store_dir();
    let components = closure
        .iter()
        .map(|info| {
            let (name, version) = split_name(info.path.name());
            Component {
                kind: "application",
                bom_ref: Some(info.path.to_absolute(store_dir)),
                name: name.to_owned(),
                version: version.map(str::to_owned),
                hashes: Vec::new(),
                properties: vec![
                    Property {
                        name: "nix:store_path",
                        value: info.path.to_absolute(store_dir),
                    },
                    Property {
                        name: "nix:narinfo:nar_hash",
                        value: info.nar_hash.to_nix32_string(),
                    },
                    Property {
                        name: "nix:narinfo:nar_size",
                        value: info.nar_size.to_string(),
                    },
                ],
            }
        })
        .collect();
    let mut referenced = std::collections::BTreeSet::new();
    let mut dependencies: Vec<Dependency> = closure
        .iter()
        .map(|info| {
            let mut references: Vec<_> = info
                .references
                .iter()
                .filter(|r| **r != info.path)
                .collect();
            references.sort();
            references.dedup();
            referenced.extend(references.iter().map(|r| (*r).clone()));
            Dependency {
                reference: info.path.to_absolute(store_dir),
                depends_on: references
                    .iter()
                    .map(|r| r.to_absolute(store_dir))
                    .collect(),
            }
        })
        .collect();
    let image_ref = image_ref(file_name);
    let mut roots: Vec<_> = closure
        .iter()
        .map(|info| &info.path)
        .filter(|path| !referenced.contains(*path))
        .collect();
    roots.sort();
    dependencies.insert(
        0,
        Dependency {
            reference: image_ref.clone(),
            depends_on: roots.iter().map(|r| r.to_absolute(store_dir)).collect(),
        },
    );
    let mut bom = Bom {
        bom_format: "CycloneDX",
        spec_version: SPEC_VERSION,
        serial_number: None,
        version: 1,
        metadata: Metadata {
            tools: Tools {
                components: vec![Component {
                    kind: "application",
                    bom_ref: None,
                    name: env!("CARGO_PKG_NAME").to_owned(),
                    version: Some(env!("CARGO_PKG_VERSION").to_owned()),
                    hashes: Vec::new(),
                    properties: Vec::new(),
                }],
            },
            component: Component {
                kind: "file",
                bom_ref: Some(image_ref),
                name: file_name.to_owned(),
                version: None,
                hashes: vec![Hash {
                    alg: "SHA-256",
                    content: crate::hex::encode(sha256),
                }],
                properties: Vec::new(),
            },
        },
        components,
        dependencies,
    };
    let unnumbered = to_json(&bom);
    bom.serial_number = Some(serial_number(unnumbered.as_bytes()));
    to_json(&bom)
}

/// The image's bom-ref: never a store path, which is absolute.
fn image_ref(file_name: &str) -> String {
    format!("image:{file_name}")
}

fn to_json(bom: &Bom) -> String {
    let mut text = serde_json::to_string_pretty(bom).expect("an SBOM serialises");
    text.push('\n');
    text
}

/// `urn:uuid:` and the first 16 bytes of the SHA-256 of `content`, with the
/// version (8) and variant (RFC 9562) bits set.
fn serial_number(content: &[u8]) -> String {
    let digest = Sha256::digest(content);
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = crate::hex::encode(&bytes);
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_as_parse_drv_name_splits_them() {
        // Each checked against `nix-instantiate --eval --strict -E
        // 'builtins.parseDrvName "…"'` (Nix 2.8).
        for (name, expected) in [
            ("hello-2.12", ("hello", Some("2.12"))),
            ("foo-bar-1-x", ("foo-bar", Some("1-x"))),
            ("perl5.36.0-JSON-4.10", ("perl5.36.0-JSON", Some("4.10"))),
            ("a-_b", ("a", Some("_b"))),
            ("x-.y", ("x", Some(".y"))),
            (
                "nixos-system-nixos-24.05",
                ("nixos-system-nixos", Some("24.05")),
            ),
            ("glibc-2.39-52-bin", ("glibc", Some("2.39-52-bin"))),
            ("abc", ("abc", None)),
            ("a-", ("a-", None)),
            ("etc-os-release", ("etc-os-release", None)),
            // parseDrvName gives an empty name; the whole name is kept.
            ("-1", ("-1", None)),
        ] {
            assert_eq!(split_name(name), expected, "{name}");
        }
    }

    #[test]
    fn the_serial_number_is_a_version_8_uuid_of_the_content() {
        let a = serial_number(b"a");
        assert_eq!(a, serial_number(b"a"));
        assert_ne!(a, serial_number(b"b"));
        let hex: String = a.trim_start_matches("urn:uuid:").replace('-', "");
        assert_eq!(hex.len(), 32);
        assert_eq!(&hex[12..13], "8", "{a}");
        assert!(matches!(&hex[16..17], "8" | "9" | "a" | "b"), "{a}");
        // SHA-256("a") = ca978112ca1bbdcafac231b39a23dc4d…
        assert_eq!(a, "urn:uuid:ca978112-ca1b-8dca-bac2-31b39a23dc4d");
    }
}
