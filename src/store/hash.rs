//! NAR hashes and the spellings Nix writes them in.
//!
//! The same SHA-256 digest reaches us three ways: `exportReferencesGraph`
//! writes `sha256:<nix32>`, `nix path-info --json` writes SRI
//! (`sha256-<base64>`), and `nix-store --dump-db` writes bare hex. Nix's
//! database stores `sha256:<hex>`. [`NarHash::parse`] reads them all.
//!
//! Newer `nix path-info` JSON also carries hashes of other algorithms (a
//! content address may be `sha1`, `sha512`, …), as SRI text or, briefly, as
//! `{"algorithm", "format", "hash"}` objects: [`sri_hash`] and
//! [`structured_hash`] read those.

use std::fmt;

use base64::Engine as _;
use serde_json::{Map, Value};

use super::nixbase32;

/// Why a string is not a SHA-256 NAR hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("\"{text}\" is not a SHA-256 hash in any spelling Nix uses (sha256:<nix32>, sha256:<hex>, sha256-<base64>, bare hex): {why}")]
pub struct HashError {
    /// The text as given.
    pub text: String,
    /// What is wrong with it.
    pub why: &'static str,
}

/// A SHA-256 digest of a store object's NAR serialisation.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NarHash(pub [u8; 32]);

impl NarHash {
    /// Reads any spelling Nix uses for a SHA-256 digest.
    ///
    /// ```
    /// use wsl_tarball::store::NarHash;
    ///
    /// let nix32 = NarHash::parse("sha256:0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73")?;
    /// let sri = NarHash::parse("sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=")?;
    /// let hex = NarHash::parse("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")?;
    /// assert!(nix32 == sri && sri == hex);
    /// assert_eq!(hex.to_sri(), "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
    /// assert!(NarHash::parse("md5:abc").is_err());
    /// # Ok::<(), wsl_tarball::store::HashError>(())
    /// ```
    pub fn parse(text: &str) -> Result<Self, HashError> {
        let error = |why| HashError {
            text: text.to_owned(),
            why,
        };
        let digest = if let Some(rest) = text.strip_prefix("sha256-") {
            decode_base64(rest)
        } else {
            let rest = match text.split_once(':') {
                Some(("sha256", rest)) => rest,
                Some(_) => return Err(error("only sha256 is supported")),
                None => text,
            };
            match rest.len() {
                64 => decode_hex(rest),
                52 => nixbase32::decode::<32>(rest),
                44 => decode_base64(rest),
                _ => return Err(error("the digest has the wrong length")),
            }
        };
        digest
            .map(NarHash)
            .ok_or_else(|| error("the digest has characters outside its alphabet"))
    }

    /// Lowercase hex, as `nix-store --dump-db` writes it.
    pub fn to_hex(&self) -> String {
        crate::hex::encode(&self.0)
    }

    /// `sha256:<hex>`, as Nix stores it in `ValidPaths.hash`.
    pub fn to_db_string(&self) -> String {
        format!("sha256:{}", self.to_hex())
    }

    /// `sha256:<nix32>`, as `exportReferencesGraph` writes it.
    pub fn to_nix32_string(&self) -> String {
        format!("sha256:{}", nixbase32::encode(&self.0))
    }

    /// `sha256-<base64>`, as `nix path-info --json` writes it.
    pub fn to_sri(&self) -> String {
        format!(
            "sha256-{}",
            base64::engine::general_purpose::STANDARD.encode(self.0)
        )
    }
}

fn decode_hex(text: &str) -> Option<[u8; 32]> {
    crate::hex::decode(text)?.try_into().ok()
}

fn decode_base64(text: &str) -> Option<[u8; 32]> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()?;
    bytes.try_into().ok()
}

/// The hash algorithms Nix knows, with their digest lengths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HashAlgorithm {
    Md5,
    Sha1,
    Sha256,
    Sha512,
    Blake3,
}

impl HashAlgorithm {
    pub(crate) fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "md5" => HashAlgorithm::Md5,
            "sha1" => HashAlgorithm::Sha1,
            "sha256" => HashAlgorithm::Sha256,
            "sha512" => HashAlgorithm::Sha512,
            "blake3" => HashAlgorithm::Blake3,
            _ => return None,
        })
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            HashAlgorithm::Md5 => "md5",
            HashAlgorithm::Sha1 => "sha1",
            HashAlgorithm::Sha256 => "sha256",
            HashAlgorithm::Sha512 => "sha512",
            HashAlgorithm::Blake3 => "blake3",
        }
    }

    pub(crate) fn digest_len(self) -> usize {
        match self {
            HashAlgorithm::Md5 => 16,
            HashAlgorithm::Sha1 => 20,
            HashAlgorithm::Sha256 | HashAlgorithm::Blake3 => 32,
            HashAlgorithm::Sha512 => 64,
        }
    }
}

/// Reads an SRI hash (`sha256-<base64>`), as Nix's JSON writes a `Hash`.
pub(crate) fn sri_hash(text: &str) -> Result<(HashAlgorithm, Vec<u8>), &'static str> {
    let (name, base64) = text
        .split_once('-')
        .ok_or("not an SRI hash <algorithm>-<base64>")?;
    let algorithm = HashAlgorithm::parse(name).ok_or("unknown hash algorithm")?;
    let digest = decode_digest(algorithm, "base64", base64)?;
    Ok((algorithm, digest))
}

/// Reads a hash object `{"algorithm", "format", "hash"}`, the shape
/// unreleased Nix between 2.32 and 2.33 wrote.
pub(crate) fn structured_hash(
    fields: &Map<String, Value>,
) -> Result<(HashAlgorithm, Vec<u8>), &'static str> {
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
        "base16" => crate::hex::decode(text),
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

fn decode_nix32(text: &str, len: usize) -> Option<Vec<u8>> {
    match len {
        16 => nixbase32::decode::<16>(text).map(Vec::from),
        20 => nixbase32::decode::<20>(text).map(Vec::from),
        32 => nixbase32::decode::<32>(text).map(Vec::from),
        64 => nixbase32::decode::<64>(text).map(Vec::from),
        _ => None,
    }
}

impl fmt::Display for NarHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_sri())
    }
}

impl fmt::Debug for NarHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NarHash({})", self.to_sri())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The sha256 of the empty string, in each spelling (checked with `nix hash`).
    const HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const NIX32: &str = "0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73";
    const B64: &str = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";

    #[test]
    fn every_spelling_parses_to_the_same_digest() {
        let from_hex = NarHash::parse(HEX).unwrap();
        for text in [
            format!("sha256:{NIX32}"),
            format!("sha256:{HEX}"),
            format!("sha256-{B64}"),
            NIX32.to_owned(),
        ] {
            assert_eq!(NarHash::parse(&text).unwrap(), from_hex, "{text}");
        }
        assert_eq!(from_hex.to_hex(), HEX);
        assert_eq!(from_hex.to_nix32_string(), format!("sha256:{NIX32}"));
        assert_eq!(from_hex.to_sri(), format!("sha256-{B64}"));
        assert_eq!(from_hex.to_db_string(), format!("sha256:{HEX}"));
    }

    #[test]
    fn rejects_other_algorithms_and_garbage() {
        assert!(NarHash::parse("md5:d41d8cd98f00b204e9800998ecf8427e").is_err());
        assert!(NarHash::parse("sha256:xyz").is_err());
        let err = NarHash::parse(&format!("sha256:{}", "g".repeat(64))).unwrap_err();
        assert!(err.to_string().contains("gggg"));
    }
}
