//! Nix's base-32 spelling of hashes ("nix32").
//!
//! Nix writes digests in a base-32 alphabet that leaves out `e`, `o`, `u` and
//! `t`, and it reads the bytes from the end: the first character encodes the
//! high bits of the last byte. Store path hash parts (20 bytes, 32 characters)
//! and `sha256:<nix32>` NAR hashes (32 bytes, 52 characters) both use it.
//!
//! (The module's tests show a worked example: `the_sha256_of_nothing_round_trips_as_nix_prints_it`.)

/// The 32 characters Nix uses, in value order.
pub const ALPHABET: &[u8; 32] = b"0123456789abcdfghijklmnpqrsvwxyz";

/// Length of the nix32 spelling of `byte_len` bytes.
pub const fn encoded_len(byte_len: usize) -> usize {
    if byte_len == 0 {
        0
    } else {
        (byte_len * 8 - 1) / 5 + 1
    }
}

/// Whether `c` is one of the 32 characters of the alphabet.
pub fn is_nix32_char(c: u8) -> bool {
    ALPHABET.contains(&c)
}

/// Encodes bytes the way Nix prints them.
pub fn encode(bytes: &[u8]) -> String {
    let len = encoded_len(bytes.len());
    let mut out = String::with_capacity(len);
    for n in (0..len).rev() {
        let b = n * 5;
        let i = b / 8;
        let j = b % 8;
        let low = bytes[i] >> j;
        let high = if i + 1 < bytes.len() {
            ((bytes[i + 1] as u16) << (8 - j)) as u8
        } else {
            0
        };
        out.push(ALPHABET[((low | high) & 0x1f) as usize] as char);
    }
    out
}

/// Decodes a nix32 string into exactly `N` bytes; `None` if it has the wrong
/// length, a character outside the alphabet, or bits set beyond `N` bytes.
pub fn decode<const N: usize>(text: &str) -> Option<[u8; N]> {
    let text = text.as_bytes();
    if text.len() != encoded_len(N) {
        return None;
    }
    let mut out = [0u8; N];
    for (n, &c) in text.iter().rev().enumerate() {
        let digit = ALPHABET.iter().position(|&a| a == c)? as u16;
        let b = n * 5;
        let i = b / 8;
        let j = b % 8;
        let shifted = digit << j;
        out[i] |= shifted as u8;
        let carry = (shifted >> 8) as u8;
        if i + 1 < N {
            out[i + 1] |= carry;
        } else if carry != 0 {
            return None;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_matches_nix() {
        // `nix hash to-base32 sha256:…` of the empty string's sha256.
        let hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let bytes: Vec<u8> = (0..32)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        let text = encode(&bytes);
        assert_eq!(text, "0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73");
        assert_eq!(decode::<32>(&text).unwrap().to_vec(), bytes);
    }

    #[test]
    fn rejects_bad_text() {
        assert!(decode::<20>("e0000000000000000000000000000000").is_none());
        assert!(decode::<20>("0000").is_none());
        // 52 characters carry 260 bits: only the lowest bit of the first may be set.
        let overflowing = format!("2{}", "0".repeat(51));
        assert!(decode::<32>(&overflowing).is_none());
        let fitting = format!("1{}", "0".repeat(51));
        assert!(decode::<32>(&fitting).is_some());
    }
}

#[cfg(test)]
mod example {
    #[test]
    fn the_sha256_of_nothing_round_trips_as_nix_prints_it() {
        use crate::store::nixbase32;

        // SHA-256 of nothing, as `nix-hash --type sha256 --to-base32` prints it.
        let digest: [u8; 32] = [
            0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f,
            0xb9, 0x24, 0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b,
            0x78, 0x52, 0xb8, 0x55,
        ];
        let text = nixbase32::encode(&digest);
        assert_eq!(text, "0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73");
        assert_eq!(nixbase32::decode::<32>(&text), Some(digest));
        // `e` is not in the alphabet.
        assert_eq!(nixbase32::decode::<32>(&text.replace('0', "e")), None);
    }
}
