//! Lowercase hexadecimal, the crate's one codec for it: NAR hashes in
//! `nix-store --dump-db` form and in Nix's database, cache keys, and digests
//! in reports.

use std::fmt::Write as _;

/// Lowercase hex of `bytes`.
pub fn encode(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(text, "{byte:02x}");
    }
    text
}

/// The bytes of hex text (either case), or `None` if it is not hex.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    // `from_str_radix` alone would take a sign (`+1`).
    if text.len() % 2 != 0 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trips_and_rejects_what_is_not_hex() {
        let bytes = [0x00, 0x7f, 0xab, 0xff];
        assert_eq!(super::encode(&bytes), "007fabff");
        assert_eq!(super::decode("007FABff").unwrap(), bytes);
        for bad in ["0", "zz", "+1", "é0"] {
            assert_eq!(super::decode(bad), None, "{bad}");
        }
    }
}
