//! Signatures with Nix's own ed25519 keys, on manifests.
//!
//! The key formats are Nix's (`nix key generate-secret`,
//! `nix key convert-secret-to-public`, `trusted-public-keys`):
//!
//! ```text
//! secret key  NAME:BASE64(seed[32] ‖ public key[32])
//! public key  NAME:BASE64(public key[32])
//! signature   NAME:BASE64(ed25519 signature[64])
//! ```
//!
//! What is signed is never the manifest file's bytes but a canonical byte
//! string of its JSON, so a signature made at write time and one added
//! later (`wsl-tarball sign`) are the same bytes:
//!
//! ```text
//! DOMAIN ‖ compact JSON of the manifest without its top-level "signatures"
//! ```
//!
//! where the JSON is the compact form of the parsed value: object keys
//! sorted by their bytes (at every level), no whitespace, strings and
//! numbers as serde_json writes them (only `"`, `\` and control characters
//! escaped). DOMAIN is [`Domain::prefix`]:
//! `wsl-tarball-manifest-v1\n` for an image's manifest and
//! `wsl-tarball-bundle-manifest-v1\n` for a bundle's, so a signature on one
//! kind of manifest cannot be replayed as the other. A channel's
//! `DistributionInfo.json` is signed as `wsl-tarball-channel-v1\n` followed
//! by its bytes as they are (it is written byte-reproducibly).
//!
//! Keys and signatures are parsed into [`SigningKey`], [`PublicKey`] and
//! [`Signature`] where they enter; errors say what is wrong (no name, bad
//! base64, wrong length) and never show a secret.

use std::fmt;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ed25519_dalek::{Signer as _, Verifier as _};
use serde_json::Value;

use crate::escape::escape_str;
use crate::input::{read_limited, InputError};

/// The top-level field a signed manifest records its signatures in.
pub const SIGNATURES_FIELD: &str = "signatures";

/// The largest key file read.
const MAX_KEY_FILE_BYTES: u64 = 64 << 10;

/// The kind of thing signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Domain {
    /// An image's `--manifest` JSON (which holds the image file's sha256).
    Image,
    /// A bundle's `wsl-delta/manifest.json` (which holds the export's sha256).
    Bundle,
    /// A channel's `DistributionInfo.json` (which holds its images'
    /// sha256), signed as its bytes are, not in canonical form
    /// (`DistributionInfo.json.sig`, see `crate::publish`).
    Channel,
}

impl Domain {
    /// The bytes the canonical manifest is prefixed with.
    pub fn prefix(self) -> &'static str {
        match self {
            Domain::Image => "wsl-tarball-manifest-v1\n",
            Domain::Bundle => "wsl-tarball-bundle-manifest-v1\n",
            Domain::Channel => "wsl-tarball-channel-v1\n",
        }
    }
}

/// What is wrong with a key or signature's text (never the text itself).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// No `:`.
    #[error("it is not NAME:BASE64 (no `:`)")]
    NoColon,
    #[error("its name (before the `:`) is empty")]
    /// Nothing before the `:`.
    NoName,
    #[error("its name holds white space or a control character")]
    /// White space or a control character in the name.
    BadName,
    #[error("the part after the `:` is not valid base64")]
    /// Not base64 after the `:`.
    BadBase64,
    #[error("the base64 decodes to {found} bytes, not the {expected} of {what}")]
    /// The wrong number of bytes.
    WrongLength {
        /// Bytes found.
        found: usize,
        /// Bytes expected.
        expected: usize,
        /// What was expected (`a public key`, ...).
        what: &'static str,
    },
    #[error("its public half is not the public key of its secret half (the key is damaged)")]
    /// A secret key whose halves do not belong together.
    Mismatch,
    #[error("the public key is not a valid ed25519 point")]
    /// A public key that is not a curve point.
    BadPoint,
}

/// Why keys could not be read.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file could not be read.
    #[error(transparent)]
    Read(#[from] InputError),
    #[error("{}: not a Nix secret key (as `nix key generate-secret` writes): {why}", path.display())]
    /// A secret key file that is not a Nix secret key.
    BadSecretKey {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: FormatError,
    },
    #[error("{}: not UTF-8 text", path.display())]
    /// A key file that is not UTF-8.
    NotText {
        /// The file.
        path: PathBuf,
    },
    #[error("{source_name}: public key {index} is not NAME:BASE64 of 32 bytes: {why}")]
    /// A public key that is not NAME:BASE64 of 32 bytes.
    BadPublicKey {
        /// Where the keys came from.
        source_name: String,
        /// Which key, counting from 1.
        index: usize,
        /// What is wrong.
        why: FormatError,
    },
    #[error("{source_name}: no public key in it")]
    /// No key at all.
    NoPublicKey {
        /// Where the keys came from.
        source_name: String,
    },
}

/// Splits `NAME:BASE64` and decodes the base64 into `N` bytes.
fn split<'t, const N: usize>(
    text: &'t str,
    what: &'static str,
) -> Result<(&'t str, [u8; N]), FormatError> {
    let (name, data) = text.split_once(':').ok_or(FormatError::NoColon)?;
    if name.is_empty() {
        return Err(FormatError::NoName);
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(FormatError::BadName);
    }
    let bytes = BASE64.decode(data).map_err(|_| FormatError::BadBase64)?;
    let found = bytes.len();
    let array: [u8; N] = bytes.try_into().map_err(|_| FormatError::WrongLength {
        found,
        expected: N,
        what,
    })?;
    Ok((name, array))
}

/// An ed25519 secret key with its Nix name.
pub struct SigningKey {
    name: String,
    key: ed25519_dalek::SigningKey,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({:?}, <secret>)", self.name)
    }
}

impl SigningKey {
    /// Parses Nix's secret key text (surrounding white space ignored).
    pub fn parse(text: &str) -> Result<SigningKey, FormatError> {
        let (name, mut bytes) = split::<64>(text.trim(), "a secret key (seed and public key)")?;
        let key = ed25519_dalek::SigningKey::from_keypair_bytes(&bytes);
        bytes.fill(0);
        Ok(SigningKey {
            name: name.to_owned(),
            key: key.map_err(|_| FormatError::Mismatch)?,
        })
    }

    /// Reads the secret key file at `path`.
    pub fn read_file(path: &Path) -> Result<SigningKey, KeyError> {
        let mut bytes = read_limited(path, MAX_KEY_FILE_BYTES, "a secret key file")?;
        let parsed = match std::str::from_utf8(&bytes) {
            Ok(text) => SigningKey::parse(text).map_err(|why| KeyError::BadSecretKey {
                path: path.to_path_buf(),
                why,
            }),
            Err(_) => Err(KeyError::NotText {
                path: path.to_path_buf(),
            }),
        };
        bytes.fill(0);
        parsed
    }

    /// The key's name (before the `:`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The public key, as `nix key convert-secret-to-public` derives it.
    pub fn public_key(&self) -> PublicKey {
        PublicKey {
            name: self.name.clone(),
            key: self.key.verifying_key(),
        }
    }

    /// Signs `message` as it is (no domain, no canonical form).
    pub fn sign_bytes(&self, message: &[u8]) -> Signature {
        Signature {
            name: self.name.clone(),
            signature: self.key.sign(message),
        }
    }

    /// Signs the canonical form of `manifest` in `domain`.
    pub fn sign_manifest(
        &self,
        domain: Domain,
        manifest: &Value,
    ) -> Result<Signature, NotAnObject> {
        Ok(self.sign_bytes(&canonical_bytes(domain, manifest)?))
    }
}

/// An ed25519 public key with its Nix name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    name: String,
    key: ed25519_dalek::VerifyingKey,
}

impl PublicKey {
    /// Parses one `NAME:BASE64` public key.
    pub fn parse(text: &str) -> Result<PublicKey, FormatError> {
        let (name, bytes) = split::<32>(text, "a public key")?;
        let key =
            ed25519_dalek::VerifyingKey::from_bytes(&bytes).map_err(|_| FormatError::BadPoint)?;
        Ok(PublicKey {
            name: name.to_owned(),
            key,
        })
    }

    /// Parses a `trusted-public-keys` value: keys separated by white space,
    /// optionally after `trusted-public-keys =` (or `extra-…`), as in
    /// nix.conf. `source_name` names the text in errors.
    pub fn parse_list(text: &str, source_name: &str) -> Result<Vec<PublicKey>, KeyError> {
        let mut words: Vec<&str> = text.split_whitespace().collect();
        if matches!(words.as_slice(), [setting, "=", ..] if matches!(*setting, "trusted-public-keys" | "extra-trusted-public-keys"))
        {
            words.drain(..2);
        }
        if words.is_empty() {
            return Err(KeyError::NoPublicKey {
                source_name: source_name.to_owned(),
            });
        }
        words
            .iter()
            .enumerate()
            .map(|(i, word)| {
                PublicKey::parse(word).map_err(|why| KeyError::BadPublicKey {
                    source_name: source_name.to_owned(),
                    index: i + 1,
                    why,
                })
            })
            .collect()
    }

    /// `--trusted-key ARG`: the keys in the file `ARG` when there is one,
    /// else `ARG` itself as a `trusted-public-keys` value.
    pub fn from_argument(argument: &str) -> Result<Vec<PublicKey>, KeyError> {
        let path = Path::new(argument);
        if path.is_file() {
            let bytes = read_limited(path, MAX_KEY_FILE_BYTES, "a public key file")?;
            let text = String::from_utf8(bytes).map_err(|_| KeyError::NotText {
                path: path.to_path_buf(),
            })?;
            return PublicKey::parse_list(&text, &path.display().to_string());
        }
        PublicKey::parse_list(
            argument,
            &format!("{} (no such file)", escape_str(argument)),
        )
    }

    /// The key's name (before the `:`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether `signature` is this key's, by name, and valid on `message`.
    pub fn verifies(&self, message: &[u8], signature: &Signature) -> bool {
        signature.name == self.name && self.key.verify(message, &signature.signature).is_ok()
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.name, BASE64.encode(self.key.as_bytes()))
    }
}

/// A signature with the name of its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    name: String,
    signature: ed25519_dalek::Signature,
}

impl Signature {
    /// Parses one `NAME:BASE64` signature.
    pub fn parse(text: &str) -> Result<Signature, FormatError> {
        let (name, bytes) = split::<64>(text, "a signature")?;
        Ok(Signature {
            name: name.to_owned(),
            signature: ed25519_dalek::Signature::from_bytes(&bytes),
        })
    }

    /// The key's name.
    /// The key's name (before the `:`).
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}",
            self.name,
            BASE64.encode(self.signature.to_bytes())
        )
    }
}

impl serde::Serialize for Signature {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Signature {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Signature::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A manifest whose JSON is not an object cannot be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the manifest is not a JSON object")]
pub struct NotAnObject;

/// The bytes signed for `manifest` in `domain`; see the module docs.
pub fn canonical_bytes(domain: Domain, manifest: &Value) -> Result<Vec<u8>, NotAnObject> {
    let Value::Object(fields) = manifest else {
        return Err(NotAnObject);
    };
    let mut bytes = domain.prefix().as_bytes().to_vec();
    let mut fields: Vec<(&String, &Value)> = fields
        .iter()
        .filter(|(key, _)| *key != SIGNATURES_FIELD)
        .collect();
    fields.sort_by(|a, b| a.0.cmp(b.0));
    write_object(&fields, &mut bytes);
    Ok(bytes)
}

/// Compact JSON of `value` with every object's keys sorted by their bytes,
/// whatever order serde_json's map keeps (its `preserve_order` feature).
fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut fields: Vec<(&String, &Value)> = map.iter().collect();
            fields.sort_by(|a, b| a.0.cmp(b.0));
            write_object(&fields, out);
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        scalar => serde_json::to_writer(out, scalar).expect("a JSON scalar serialises"),
    }
}

fn write_object(fields: &[(&String, &Value)], out: &mut Vec<u8>) {
    out.push(b'{');
    for (i, (key, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut *out, key).expect("a string serialises");
        out.push(b':');
        write_canonical(value, out);
    }
    out.push(b'}');
}

/// Why a manifest's signatures do not satisfy the trusted keys.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureProblem {
    /// No signature.
    #[error("it is not signed (no signatures)")]
    Missing,
    #[error("no signature is by a trusted key (signed by {}; trusted: {})", names(.signed), names(.trusted))]
    /// Signatures, none by a trusted key.
    UnknownKey {
        /// The names of the keys that signed.
        signed: Vec<String>,
        /// The names of the trusted keys.
        trusted: Vec<String>,
    },
    #[error("the signature by trusted key {} does not match the contents (changed after signing, or a forged signature)", escape_str(.key))]
    /// A trusted key's signature that does not verify.
    Bad {
        /// The key's name.
        key: String,
    },
    /// The signed text is not a JSON object.
    #[error(transparent)]
    NotAnObject(#[from] NotAnObject),
}

fn names(names: &[String]) -> String {
    if names.is_empty() {
        return "none".to_owned();
    }
    names
        .iter()
        .map(|n| escape_str(n).into_owned())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks that one of `signatures` is a valid signature of `manifest` in
/// `domain` by one of `trusted`, as Nix checks a path's signatures: a
/// signature counts only for the key of its name. Returns that key's name.
pub fn check_signatures(
    domain: Domain,
    manifest: &Value,
    signatures: &[Signature],
    trusted: &[PublicKey],
) -> Result<String, SignatureProblem> {
    if signatures.is_empty() {
        return Err(SignatureProblem::Missing);
    }
    let message = canonical_bytes(domain, manifest)?;
    let mut bad = None;
    for signature in signatures {
        for key in trusted.iter().filter(|k| k.name == signature.name) {
            if key.verifies(&message, signature) {
                return Ok(key.name.clone());
            }
            bad.get_or_insert_with(|| key.name.clone());
        }
    }
    Err(match bad {
        Some(key) => SignatureProblem::Bad { key },
        None => SignatureProblem::UnknownKey {
            signed: signatures.iter().map(|s| s.name.clone()).collect(),
            trusted: trusted.iter().map(|k| k.name.clone()).collect(),
        },
    })
}

/// `signatures` with `signature` added, replacing one by the same key name
/// (a key signs a manifest once), in key-name order.
pub fn add_signature(signatures: &[Signature], signature: Signature) -> Vec<Signature> {
    let mut all: Vec<Signature> = signatures
        .iter()
        .filter(|s| s.name != signature.name)
        .cloned()
        .collect();
    all.push(signature);
    all.sort_by(|a, b| a.name.cmp(&b.name));
    all
}

/// Parses the top-level `signatures` of a manifest: absent is none; each
/// must be a `NAME:BASE64` signature, or the error names `signatures[i]`.
pub fn manifest_signatures(manifest: &Value) -> Result<Vec<Signature>, String> {
    match manifest.get(SIGNATURES_FIELD) {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let text = item
                    .as_str()
                    .ok_or_else(|| format!("{SIGNATURES_FIELD}[{i}]: not a string"))?;
                Signature::parse(text).map_err(|why| format!("{SIGNATURES_FIELD}[{i}]: {why}"))
            })
            .collect(),
        Some(_) => Err(format!("{SIGNATURES_FIELD}: not an array")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A key of `nix key generate-secret --key-name team-1`'s format (seed
    // 0..32 and its public key).
    fn key(name: &str) -> SigningKey {
        let seed: [u8; 32] = std::array::from_fn(|i| i as u8);
        let public = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
        let mut bytes = seed.to_vec();
        bytes.extend_from_slice(public.as_bytes());
        SigningKey::parse(&format!("{name}:{}\n", BASE64.encode(bytes))).unwrap()
    }

    #[test]
    fn bad_key_texts_say_what_is_wrong_without_the_secret() {
        let secret = BASE64.encode([7u8; 64]);
        let cases = [
            (secret.clone(), FormatError::NoColon),
            (format!(":{secret}"), FormatError::NoName),
            (format!("a b:{secret}"), FormatError::BadName),
            ("team-1:*".to_owned(), FormatError::BadBase64),
            (
                format!("team-1:{}", BASE64.encode([7u8; 32])),
                FormatError::WrongLength {
                    found: 32,
                    expected: 64,
                    what: "a secret key (seed and public key)",
                },
            ),
            (format!("team-1:{secret}"), FormatError::Mismatch),
        ];
        for (text, expected) in cases {
            let error = SigningKey::parse(&text).unwrap_err();
            assert_eq!(error, expected, "{text}");
            assert!(!error.to_string().contains(&secret), "{error}");
        }
        assert_eq!(
            format!("{:?}", key("team-1")),
            "SigningKey(\"team-1\", <secret>)"
        );
    }

    #[test]
    fn a_signature_covers_the_canonical_manifest_in_its_domain_only() {
        let key = key("team-1");
        let trusted = [key.public_key()];
        let manifest: Value =
            serde_json::from_str(r#"{"b": 1, "a": {"y": [1, 2], "x": "é"}}"#).unwrap();
        assert_eq!(
            canonical_bytes(Domain::Image, &manifest).unwrap(),
            b"wsl-tarball-manifest-v1\n{\"a\":{\"x\":\"\xc3\xa9\",\"y\":[1,2]},\"b\":1}"
        );
        let signature = key.sign_manifest(Domain::Image, &manifest).unwrap();
        // Adding the signature, or reformatting, changes nothing signed.
        let mut signed = manifest.clone();
        signed[SIGNATURES_FIELD] = serde_json::json!([signature.to_string()]);
        let reformatted: Value =
            serde_json::from_str(&serde_json::to_string_pretty(&signed).unwrap()).unwrap();
        let parsed = manifest_signatures(&reformatted).unwrap();
        assert_eq!(parsed, std::slice::from_ref(&signature));
        assert_eq!(
            check_signatures(Domain::Image, &reformatted, &parsed, &trusted),
            Ok("team-1".to_owned())
        );
        // Another domain, a changed value, another key of the same name.
        assert_eq!(
            check_signatures(Domain::Bundle, &manifest, &parsed, &trusted),
            Err(SignatureProblem::Bad {
                key: "team-1".into()
            })
        );
        let mut changed = manifest.clone();
        changed["b"] = 2.into();
        assert!(check_signatures(Domain::Image, &changed, &parsed, &trusted).is_err());
        let other = SigningKey::parse(&format!("team-1:{}", {
            let k = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
            let mut b = k.to_bytes().to_vec();
            b.extend_from_slice(k.verifying_key().as_bytes());
            BASE64.encode(b)
        }))
        .unwrap();
        assert!(
            check_signatures(Domain::Image, &manifest, &parsed, &[other.public_key()]).is_err()
        );
        assert_eq!(
            check_signatures(Domain::Image, &manifest, &[], &trusted),
            Err(SignatureProblem::Missing)
        );
        assert_eq!(
            check_signatures(Domain::Image, &manifest, &parsed, &[key_named("team-2")]),
            Err(SignatureProblem::UnknownKey {
                signed: vec!["team-1".into()],
                trusted: vec!["team-2".into()]
            })
        );
    }

    fn key_named(name: &str) -> PublicKey {
        key(name).public_key()
    }

    #[test]
    fn a_trusted_public_keys_line_is_parsed_like_nix_conf() {
        let a = key_named("a").to_string();
        let b = key_named("b").to_string();
        let keys =
            PublicKey::parse_list(&format!("trusted-public-keys = {a}  {b}\n"), "x").unwrap();
        assert_eq!(
            keys.iter().map(|k| k.name()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        let error = PublicKey::parse_list(&format!("{a} b:AAAA"), "nix.conf").unwrap_err();
        assert_eq!(
            error.to_string(),
            "nix.conf: public key 2 is not NAME:BASE64 of 32 bytes: the base64 decodes to 3 bytes, not the 32 of a public key"
        );
    }
}
