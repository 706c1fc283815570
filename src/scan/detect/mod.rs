//! The detectors: which literal anchors start a candidate, and the validator
//! that decides, from the bytes around the anchor, whether it is a finding.
//!
//! A validator sees at most [`LOOKBEHIND`] bytes before the anchor and at most
//! [`LOOKAHEAD`] bytes from the anchor on. It answers [`Verdict::NeedMore`]
//! only while fewer than `LOOKAHEAD` bytes are available and the member has
//! not ended, so its answer never depends on how the content was chunked.

use serde::{Deserialize, Serialize};

/// Bytes before an anchor a validator may look at (a shadow line's user name).
pub const LOOKBEHIND: usize = 64;
/// Bytes from an anchor's start a validator may look at.
pub const LOOKAHEAD: usize = 512;

/// What a finding is; its `name` is what reports print and `--allow` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Detector {
    /// A PEM private key block.
    PemPrivateKey,
    /// An OpenSSH private key.
    OpensshPrivateKey,
    /// A PGP private key block.
    PgpPrivateKey,
    /// An AWS access key id.
    AwsAccessKeyId,
    /// A GitHub token.
    GithubToken,
    /// A GitLab token.
    GitlabToken,
    /// A Slack token.
    SlackToken,
    /// An OpenAI API key.
    OpenaiApiKey,
    /// An Anthropic API key.
    AnthropicApiKey,
    /// An npm token.
    NpmToken,
    /// A password hash in a shadow-style file.
    PasswordHash,
    /// An SSH `authorized_keys` entry.
    AuthorizedKeys,
    /// A literal given with `--pattern`.
    Pattern,
    /// A personal identifier given with `--identifier`.
    Identifier,
    /// A build-environment variable (see [`super::env`]).
    Environment,
}

impl Detector {
    /// Every detector, in report order.
    pub const ALL: [Detector; 15] = [
        Detector::PemPrivateKey,
        Detector::OpensshPrivateKey,
        Detector::PgpPrivateKey,
        Detector::AwsAccessKeyId,
        Detector::GithubToken,
        Detector::GitlabToken,
        Detector::SlackToken,
        Detector::OpenaiApiKey,
        Detector::AnthropicApiKey,
        Detector::NpmToken,
        Detector::PasswordHash,
        Detector::AuthorizedKeys,
        Detector::Pattern,
        Detector::Identifier,
        Detector::Environment,
    ];

    /// The name reports print and allow rules take (`github-token`).
    pub fn name(self) -> &'static str {
        match self {
            Detector::PemPrivateKey => "pem-private-key",
            Detector::OpensshPrivateKey => "openssh-private-key",
            Detector::PgpPrivateKey => "pgp-private-key",
            Detector::AwsAccessKeyId => "aws-access-key-id",
            Detector::GithubToken => "github-token",
            Detector::GitlabToken => "gitlab-token",
            Detector::SlackToken => "slack-token",
            Detector::OpenaiApiKey => "openai-api-key",
            Detector::AnthropicApiKey => "anthropic-api-key",
            Detector::NpmToken => "npm-token",
            Detector::PasswordHash => "password-hash",
            Detector::AuthorizedKeys => "authorized-keys",
            Detector::Pattern => "pattern",
            Detector::Identifier => "identifier",
            Detector::Environment => "environment",
        }
    }

    /// The detector a name names.
    pub fn from_name(name: &str) -> Option<Detector> {
        Detector::ALL.into_iter().find(|d| d.name() == name)
    }
}

impl std::fmt::Display for Detector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A family of built-in anchors sharing one validator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    BeginBlock,
    Aws,
    GithubClassic,
    GithubPat,
    Gitlab,
    Slack,
    SkKey,
    Npm,
    CryptHash,
    SshPublicKey,
}

/// The built-in anchors. None contains another, and each is rare in
/// ordinary files, so candidates are few.
pub const BUILTIN_ANCHORS: &[(&str, Family)] = &[
    ("-----BEGIN ", Family::BeginBlock),
    ("AKIA", Family::Aws),
    ("ASIA", Family::Aws),
    ("ghp_", Family::GithubClassic),
    ("gho_", Family::GithubClassic),
    ("ghs_", Family::GithubClassic),
    ("ghu_", Family::GithubClassic),
    ("ghr_", Family::GithubClassic),
    ("github_pat_", Family::GithubPat),
    ("glpat-", Family::Gitlab),
    ("xoxa-", Family::Slack),
    ("xoxb-", Family::Slack),
    ("xoxp-", Family::Slack),
    ("xoxr-", Family::Slack),
    ("xoxs-", Family::Slack),
    ("sk-", Family::SkKey),
    ("npm_", Family::Npm),
    ("$1$", Family::CryptHash),
    ("$2a$", Family::CryptHash),
    ("$2b$", Family::CryptHash),
    ("$2y$", Family::CryptHash),
    ("$5$", Family::CryptHash),
    ("$6$", Family::CryptHash),
    ("$7$", Family::CryptHash),
    ("$y$", Family::CryptHash),
    ("$gy$", Family::CryptHash),
    ("ssh-ed25519 ", Family::SshPublicKey),
    ("ssh-rsa ", Family::SshPublicKey),
    ("ssh-dss ", Family::SshPublicKey),
    ("ecdsa-sha2-nistp", Family::SshPublicKey),
    ("sk-ssh-ed25519@openssh.com ", Family::SshPublicKey),
    ("sk-ecdsa-sha2-nistp256@openssh.com ", Family::SshPublicKey),
];

/// What a validator decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A finding of `len` bytes from the anchor's start.
    Found {
        detector: Detector,
        len: usize,
    },
    NotFound,
    /// Undecidable until more of the member arrives.
    NeedMore,
}

/// What a validator knows about where the bytes are.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context {
    /// The bytes are a regular file's content (not a name or link target).
    pub is_content: bool,
    /// The file is named `authorized_keys*` or lives in `authorized_keys.d/`.
    pub authorized_keys_file: bool,
}

/// The bytes around one anchor.
#[derive(Debug, Clone, Copy)]
pub struct Around<'a> {
    /// Up to [`LOOKBEHIND`] bytes before the anchor; fewer only at the start
    /// of the member.
    pub before: &'a [u8],
    /// From the anchor's first byte on, up to [`LOOKAHEAD`] bytes.
    pub after: &'a [u8],
    /// `after` reaches the end of the member.
    pub at_end: bool,
}

impl Around<'_> {
    /// True if more bytes could still arrive beyond `after`.
    fn open(&self) -> bool {
        !self.at_end && self.after.len() < LOOKAHEAD
    }

    /// Length of the run of `class` bytes at `from`, counting at most `max`;
    /// `None` if the run reaches the available end and more may follow.
    fn run(&self, from: usize, max: usize, class: fn(u8) -> bool) -> Option<usize> {
        let rest = self.after.get(from..).unwrap_or_default();
        let n = rest.iter().take(max).take_while(|&&b| class(b)).count();
        if n == rest.len() && n < max && self.open() {
            None
        } else {
            Some(n)
        }
    }

    /// The byte at `index` of `after`: `Ok(None)` past the member's end,
    /// `Err(())` if it has not arrived yet.
    fn byte(&self, index: usize) -> Result<Option<u8>, ()> {
        match self.after.get(index) {
            Some(&b) => Ok(Some(b)),
            None if self.open() => Err(()),
            None => Ok(None),
        }
    }

    /// The anchor starts a word: the byte before it is not in `class`.
    fn starts_word(&self, class: fn(u8) -> bool) -> bool {
        self.before.last().map_or(true, |&b| !class(b))
    }
}

pub fn is_alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

fn is_upper_alnum(b: u8) -> bool {
    b.is_ascii_uppercase() || b.is_ascii_digit()
}

fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// Word characters for identifier boundaries: letters, digits, `_`, and
/// every non-ASCII byte (so `tim` does not match inside `timé`).
pub fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

fn is_base64(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'='
}

fn is_crypt_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'/' | b'$' | b'=' | b',')
}

fn is_user_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'$')
}

fn found(detector: Detector, len: usize) -> Verdict {
    Verdict::Found { detector, len }
}

/// Runs the validator of a built-in family on the bytes around its anchor
/// (`anchor_len` bytes long).
pub fn validate(
    family: Family,
    anchor_len: usize,
    around: &Around<'_>,
    context: Context,
) -> Verdict {
    match family {
        Family::BeginBlock => validate_begin_block(around),
        Family::Aws => {
            if !around.starts_word(is_alnum) {
                return Verdict::NotFound;
            }
            // AKIA/ASIA and 16 more: exactly 20 upper-case letters and digits.
            let Some(n) = around.run(anchor_len, 17, is_upper_alnum) else {
                return Verdict::NeedMore;
            };
            let whole = anchor_len + n;
            let followed_by_alnum = match around.byte(whole) {
                Err(()) => return Verdict::NeedMore,
                Ok(next) => next.is_some_and(is_alnum),
            };
            // AWS documents AKIAIOSFODNN7EXAMPLE; its examples end so.
            if n == 16 && !followed_by_alnum && !around.after[..whole].ends_with(b"EXAMPLE") {
                found(Detector::AwsAccessKeyId, whole)
            } else {
                Verdict::NotFound
            }
        }
        Family::GithubClassic => exact_run(around, anchor_len, 36, Detector::GithubToken),
        Family::GithubPat => {
            if !around.starts_word(is_alnum) {
                return Verdict::NotFound;
            }
            // github_pat_ + 22 alnum + _ + 59 alnum.
            let Some(first) = around.run(anchor_len, 23, is_alnum) else {
                return Verdict::NeedMore;
            };
            if first != 22 {
                return Verdict::NotFound;
            }
            match around.byte(anchor_len + 22) {
                Err(()) => return Verdict::NeedMore,
                Ok(Some(b'_')) => {}
                Ok(_) => return Verdict::NotFound,
            }
            let Some(second) = around.run(anchor_len + 23, 60, is_alnum) else {
                return Verdict::NeedMore;
            };
            if second == 59 {
                found(Detector::GithubToken, anchor_len + 23 + 59)
            } else {
                Verdict::NotFound
            }
        }
        Family::Gitlab => min_run(around, anchor_len, 20, is_token_char, Detector::GitlabToken),
        Family::Slack => {
            if !around.starts_word(is_alnum) {
                return Verdict::NotFound;
            }
            let Some(n) = around.run(anchor_len, 200, is_token_char) else {
                return Verdict::NeedMore;
            };
            let body = &around.after[anchor_len..anchor_len + n];
            let shaped = n >= 20 && body[0].is_ascii_digit() && body.contains(&b'-');
            if shaped {
                found(Detector::SlackToken, anchor_len + n)
            } else {
                Verdict::NotFound
            }
        }
        Family::SkKey => validate_sk_key(around, anchor_len),
        Family::Npm => exact_run(around, anchor_len, 36, Detector::NpmToken),
        Family::CryptHash => validate_crypt_hash(around, anchor_len, context),
        Family::SshPublicKey => {
            if !context.is_content || !context.authorized_keys_file {
                return Verdict::NotFound;
            }
            let mut start = anchor_len;
            if around.after.starts_with(b"ecdsa-sha2-nistp") {
                // nistp256 / nistp384 / nistp521, then a space.
                let Some(n) = around.run(start, 4, |b| b.is_ascii_digit()) else {
                    return Verdict::NeedMore;
                };
                match around.byte(start + n) {
                    Err(()) => return Verdict::NeedMore,
                    Ok(Some(b' ')) if n == 3 => start += n + 1,
                    Ok(_) => return Verdict::NotFound,
                }
            }
            let Some(n) = around.run(start, 60, is_base64) else {
                return Verdict::NeedMore;
            };
            if n == 60 && around.after[start..].starts_with(b"AAAA") {
                found(Detector::AuthorizedKeys, start + n)
            } else {
                Verdict::NotFound
            }
        }
    }
}

/// The anchor starts a word and is followed by exactly `len` letters and
/// digits.
fn exact_run(around: &Around<'_>, anchor_len: usize, len: usize, detector: Detector) -> Verdict {
    if !around.starts_word(is_alnum) {
        return Verdict::NotFound;
    }
    match around.run(anchor_len, len + 1, is_alnum) {
        None => Verdict::NeedMore,
        Some(n) if n == len => found(detector, anchor_len + len),
        Some(_) => Verdict::NotFound,
    }
}

/// The anchor starts a word and is followed by at least `min` bytes of
/// `class` (the finding covers the whole run, up to 200 bytes).
fn min_run(
    around: &Around<'_>,
    anchor_len: usize,
    min: usize,
    class: fn(u8) -> bool,
    detector: Detector,
) -> Verdict {
    if !around.starts_word(is_alnum) {
        return Verdict::NotFound;
    }
    match around.run(anchor_len, 200, class) {
        None => Verdict::NeedMore,
        Some(n) if n >= min => found(detector, anchor_len + n),
        Some(_) => Verdict::NotFound,
    }
}

/// `sk-proj-…`, `sk-svcacct-…`, `sk-admin-…` and the legacy `sk-` + 48 are
/// OpenAI's; `sk-ant-…` is Anthropic's.
fn validate_sk_key(around: &Around<'_>, anchor_len: usize) -> Verdict {
    if !around.starts_word(is_token_char) {
        return Verdict::NotFound;
    }
    let rest = &around.after[anchor_len..];
    for (prefix, detector) in [
        (&b"ant-"[..], Detector::AnthropicApiKey),
        (b"proj-", Detector::OpenaiApiKey),
        (b"svcacct-", Detector::OpenaiApiKey),
        (b"admin-", Detector::OpenaiApiKey),
    ] {
        if rest.starts_with(prefix) {
            let start = anchor_len + prefix.len();
            return match around.run(start, 300, is_token_char) {
                None => Verdict::NeedMore,
                Some(n) if n >= 40 => found(detector, start + n),
                Some(_) => Verdict::NotFound,
            };
        }
        if rest.len() < prefix.len() && prefix.starts_with(rest) && around.open() {
            return Verdict::NeedMore;
        }
    }
    match around.run(anchor_len, 49, is_alnum) {
        None => Verdict::NeedMore,
        Some(48) => match around.byte(anchor_len + 48) {
            Err(()) => Verdict::NeedMore,
            Ok(Some(next)) if is_token_char(next) => Verdict::NotFound,
            Ok(_) => found(Detector::OpenaiApiKey, anchor_len + 48),
        },
        Some(_) => Verdict::NotFound,
    }
}

/// A shadow-like line: `name:$id$salt$hash` followed by `:` or the line end.
fn validate_crypt_hash(around: &Around<'_>, anchor_len: usize, context: Context) -> Verdict {
    if !context.is_content {
        return Verdict::NotFound;
    }
    let Some((&b':', name_and_before)) = around.before.split_last() else {
        return Verdict::NotFound;
    };
    let name_len = name_and_before
        .iter()
        .rev()
        .take_while(|&&b| is_user_name_char(b))
        .count();
    let line_start = name_and_before.len() - name_len;
    let at_line_start = line_start == 0 && around.before.len() < LOOKBEHIND
        || line_start > 0 && name_and_before[line_start - 1] == b'\n';
    if name_len == 0 || name_len > 32 || !at_line_start {
        return Verdict::NotFound;
    }
    let Some(n) = around.run(anchor_len, 300, is_crypt_char) else {
        return Verdict::NeedMore;
    };
    let ends_field = match around.byte(anchor_len + n) {
        Err(()) => return Verdict::NeedMore,
        Ok(next) => matches!(next, None | Some(b':' | b'\n' | b'\r')),
    };
    if n >= 20 && ends_field {
        found(Detector::PasswordHash, anchor_len + n)
    } else {
        Verdict::NotFound
    }
}

/// `-----BEGIN … PRIVATE KEY-----` (or `PGP PRIVATE KEY BLOCK`) followed, after
/// optional header lines, by a line of base64: a key, not the bare marker.
fn validate_begin_block(around: &Around<'_>) -> Verdict {
    const BEGIN: usize = "-----BEGIN ".len();
    let after = around.after;
    let Some(label_len) = around.run(BEGIN, 41, |b| {
        b.is_ascii_uppercase() || b.is_ascii_digit() || b == b' '
    }) else {
        return Verdict::NeedMore;
    };
    let label = &after[BEGIN..BEGIN + label_len];
    let detector = if label == b"OPENSSH PRIVATE KEY" {
        Detector::OpensshPrivateKey
    } else if label == b"PGP PRIVATE KEY BLOCK" {
        Detector::PgpPrivateKey
    } else if label.ends_with(b"PRIVATE KEY") {
        Detector::PemPrivateKey
    } else {
        return Verdict::NotFound;
    };
    let mut pos = BEGIN + label_len;
    let dashes = b"-----";
    let available = &after[pos.min(after.len())..];
    if !available.starts_with(dashes) {
        let could_follow = available.len() < dashes.len() && dashes.starts_with(available);
        return if could_follow && around.open() {
            Verdict::NeedMore
        } else {
            Verdict::NotFound
        };
    }
    pos += dashes.len();
    let header_end = pos;
    // Up to six lines: headers (`Key: value`) and blank lines, then base64.
    for _ in 0..6 {
        let line_rest = &after[pos.min(after.len())..];
        let Some(line_len) = memchr::memchr(b'\n', line_rest) else {
            return if around.open() {
                Verdict::NeedMore
            } else {
                Verdict::NotFound
            };
        };
        let line = line_rest[..line_len]
            .strip_suffix(b"\r")
            .unwrap_or(&line_rest[..line_len]);
        if pos > header_end {
            let base64 = line.iter().take_while(|&&b| is_base64(b)).count();
            if base64 >= 40 {
                return found(detector, pos + base64);
            }
            if !line.is_empty() && !line.contains(&b':') {
                return Verdict::NotFound;
            }
        } else if !line.is_empty() {
            // Text after the closing dashes on the BEGIN line.
            return Verdict::NotFound;
        }
        pos += line_len + 1;
    }
    Verdict::NotFound
}

#[cfg(test)]
mod tests;
