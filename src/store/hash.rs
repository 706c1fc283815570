//! NAR hashes and the spellings Nix writes them in.
//!
//! The same SHA-256 digest reaches us three ways: `exportReferencesGraph`
//! writes `sha256:<nix32>`, `nix path-info --json` writes SRI
//! (`sha256-<base64>`), and `nix-store --dump-db` writes bare hex. Nix's
//! database stores `sha256:<hex>`. [`NarHash::parse`] reads them all.

use std::fmt;

use base64::Engine as _;

use super::nixbase32;

/// Why a string is not a SHA-256 NAR hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a SHA-256 hash in any spelling Nix uses (sha256:<nix32>, sha256:<hex>, sha256-<base64>, bare hex): {why}")]
pub struct HashError {
    pub text: String,
    pub why: &'static str,
}

/// A SHA-256 digest of a store object's NAR serialisation.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NarHash(pub [u8; 32]);

impl NarHash {
    /// Reads any spelling Nix uses for a SHA-256 digest.
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
        self.0.iter().map(|b| format!("{b:02x}")).collect()
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
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        let pair = text.get(2 * i..2 * i + 2)?;
        *byte = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(out)
}

fn decode_base64(text: &str) -> Option<[u8; 32]> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()?;
    bytes.try_into().ok()
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
