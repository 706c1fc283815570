//! Escaping text that came from an input before it reaches a terminal: the
//! crate's one way to print a name, path, link target or message that another
//! person wrote (a tarball member, a bundle, a manifest, a cache file name).
//!
//! The style is `ls --quoting-style=escape` without its escaped spaces:
//! backslash becomes `\\`, the C escapes `\a \b \t \n \v \f \r` stand for
//! themselves, other C0 controls, DEL and the C1 controls become `\ooo`
//! (octal, as `ls` writes them), bytes that are not UTF-8 become `\xNN`, and
//! the Unicode characters that reorder or hide text (bidirectional
//! overrides and isolates, zero-width joiners, the BOM, line and paragraph
//! separators) become `\u{NNNN}`. Everything else, non-ASCII letters
//! included, is kept. The escaping is unambiguous: different inputs never
//! print the same.
//!
//! JSON output is not escaped here: serde's string escaping keeps it exact.
//!
//! Where: the library's values and error messages hold the text raw (an
//! error quotes it as `"…"`, not with `{:?}`; only the tar reader quotes a
//! bad header or pax number already escaped, so its own errors stay
//! printable), so JSON and comparisons see the exact text, and it is
//! escaped once, where it is printed: the text
//! reports (`to_text`, the scan report's `render_human`) field by field,
//! the binary's events and summaries (`print.rs`), its error line (the whole
//! message, in `main.rs`), and the progress bar's file name.

use std::borrow::Cow;
use std::fmt::{self, Write as _};

/// `text`, escaped for a terminal; borrowed when nothing needed escaping.
pub fn escape_str(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        push_char(&mut out, c);
    }
    Cow::Owned(out)
}

/// `bytes` (which need not be UTF-8), escaped for a terminal.
pub fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 8);
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            push_char(&mut out, c);
        }
        for byte in chunk.invalid() {
            let _ = write!(out, "\\x{byte:02x}");
        }
    }
    out
}

/// A path (whose bytes need not be UTF-8), escaped for a terminal.
pub fn escape_path(path: &std::path::Path) -> String {
    escape_bytes(std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str()))
}

/// A value that prints its text escaped: `format!("{}", Escaped(name))`;
/// width and alignment (`{:<30}`) apply to the escaped text.
#[derive(Debug, Clone, Copy)]
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&escape_str(self.0))
    }
}

fn needs_escape(c: char) -> bool {
    c == '\\' || c.is_control() || is_invisible_format(c)
}

/// Characters that change how the text around them is shown without being
/// seen themselves (the "Trojan Source" characters and their kin).
fn is_invisible_format(c: char) -> bool {
    matches!(c,
        '\u{200b}'..='\u{200f}' // zero-width space, joiners, LRM, RLM
        | '\u{2028}' | '\u{2029}' // line and paragraph separators
        | '\u{202a}'..='\u{202e}' // bidirectional embeddings and overrides
        | '\u{2060}'..='\u{2064}' // word joiner and invisible operators
        | '\u{2066}'..='\u{2069}' // bidirectional isolates
        | '\u{feff}' // byte order mark, zero-width no-break space
    )
}

fn push_char(out: &mut String, c: char) {
    match c {
        '\\' => out.push_str("\\\\"),
        '\x07' => out.push_str("\\a"),
        '\x08' => out.push_str("\\b"),
        '\t' => out.push_str("\\t"),
        '\n' => out.push_str("\\n"),
        '\x0b' => out.push_str("\\v"),
        '\x0c' => out.push_str("\\f"),
        '\r' => out.push_str("\\r"),
        c if c.is_control() => {
            let _ = write!(out, "\\{:03o}", u32::from(c));
        }
        c if is_invisible_format(c) => {
            let _ = write!(out, "\\u{{{:04x}}}", u32::from(c));
        }
        c => out.push(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed_and_unchanged() {
        assert!(matches!(
            escape_str("/etc/nixos/configuration.nix"),
            Cow::Borrowed(_)
        ));
        assert_eq!(escape_str("Grüße, 日本"), "Grüße, 日本");
        assert_eq!(escape_str("a b"), "a b");
    }

    #[test]
    fn controls_become_escapes() {
        assert_eq!(escape_str("a\nb\tc\rd"), "a\\nb\\tc\\rd");
        assert_eq!(escape_str("\x1b[31mred"), "\\033[31mred");
        assert_eq!(escape_str("\x7f\u{9b}"), "\\177\\233");
        assert_eq!(escape_str("\x07\x08\x0b\x0c\0"), "\\a\\b\\v\\f\\000");
    }

    #[test]
    fn backslash_is_doubled_so_escaping_is_unambiguous() {
        assert_eq!(escape_str("a\\nb"), "a\\\\nb");
        assert_ne!(escape_str("a\\nb"), escape_str("a\nb"));
    }

    #[test]
    fn text_reordering_characters_are_escaped() {
        assert_eq!(
            escape_str("x\u{202e}gnp.exe\u{2066}"),
            "x\\u{202e}gnp.exe\\u{2066}"
        );
        assert_eq!(escape_str("\u{feff}\u{200b}"), "\\u{feff}\\u{200b}");
    }

    #[test]
    fn bytes_that_are_not_utf8_become_hex() {
        assert_eq!(escape_bytes(b"ok\xff\xfe\n"), "ok\\xff\\xfe\\n");
        assert_eq!(escape_bytes("é".as_bytes()), "é");
    }

    #[test]
    fn paths_are_escaped_byte_for_byte() {
        use std::os::unix::ffi::OsStrExt;
        let path = std::path::Path::new(std::ffi::OsStr::from_bytes(b"/tmp/a\x1b[2J\xff.wsl"));
        assert_eq!(escape_path(path), "/tmp/a\\033[2J\\xff.wsl");
    }

    #[test]
    fn escaped_displays_the_escaped_text() {
        assert_eq!(format!("[{}]", Escaped("a\x1bb")), "[a\\033b]");
        assert_eq!(format!("[{:<8}]", Escaped("a\x1bb")), "[a\\033b  ]");
    }
}
