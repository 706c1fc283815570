//! `verify DistributionInfo.json`: a channel manifest checked as `publish`
//! writes it: WSL's rules ([`super::channel`]), the SHA-256 of every image
//! it lists that is beside it (by its URL's file name), and with trusted
//! keys its detached signature `DistributionInfo.json.sig` (one
//! `NAME:BASE64` ed25519 signature a line, of `wsl-tarball-channel-v1\n`
//! followed by the file's bytes).

use std::path::Path;

use serde::Serialize;

use super::channel::DistributionInfo;
use super::{channel_message, sha256_file, PublishError, MAX_JSON_BYTES};
use crate::escape::Escaped;
use crate::input::{plain_file_name, read_limited};
use crate::sign::{PublicKey, Signature};

/// How one check of a channel manifest went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChannelCheck {
    /// `rules`, `images` or `signature`.
    pub check: &'static str,
    /// `passed`, `failed` or `skipped`.
    pub status: &'static str,
    /// What the check adds when it passed or was skipped (`by KEY`, why no signature was checked), if anything.
    pub note: Option<String>,
    /// What failed, one line each; empty unless it failed.
    pub failures: Vec<String>,
}

/// What `verify` found in a channel manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelVerification {
    /// The schema's version, [`crate::inspect::JSON_VERSION`].
    pub version: u32,
    /// The channel manifest's path, as given.
    pub file: String,
    /// `channel`.
    pub kind: &'static str,
    /// Each check, in the order it ran.
    pub checks: Vec<ChannelCheck>,
}

impl ChannelVerification {
    /// Whether no check failed (a skipped one does not fail).
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.status != "failed")
    }

    /// The report for people, text from the file escaped.
    pub fn to_text(&self) -> String {
        let mut out = format!("verifying channel manifest {}\n", Escaped(&self.file));
        for check in &self.checks {
            let tag = match check.status {
                "passed" => "ok  ",
                "failed" => "FAIL",
                _ => "skip",
            };
            out.push_str(&format!("{tag}  {}", check.check));
            if let Some(note) = &check.note {
                out.push_str(&format!(" ({})", Escaped(note)));
            }
            out.push('\n');
            for failure in &check.failures {
                out.push_str(&format!("      - {}\n", Escaped(failure)));
            }
        }
        out.push_str(if self.passed() {
            "verified\n"
        } else {
            "NOT verified\n"
        });
        out
    }
}

fn outcome(check: &'static str, failures: Vec<String>, note: Option<String>) -> ChannelCheck {
    ChannelCheck {
        check,
        status: if failures.is_empty() {
            "passed"
        } else {
            "failed"
        },
        note,
        failures,
    }
}

/// Whether `path` is a JSON file whose top level has `ModernDistributions`
/// (a channel manifest, not a tarball). Only a file whose first
/// non-blank byte is `{` is read whole.
pub(crate) fn is_channel_manifest(path: &Path) -> bool {
    if !path.is_file() {
        return false;
    }
    let mut head = [0u8; 512];
    let n = std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
        .unwrap_or(0);
    if head[..n].iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return false;
    }
    let Ok(bytes) = read_limited(path, MAX_JSON_BYTES, "a DistributionInfo.json") else {
        return false;
    };
    serde_json::from_slice::<serde_json::Value>(&bytes)
        .is_ok_and(|value| value.get("ModernDistributions").is_some())
}

/// Checks the channel manifest at `path`; see the module docs.
pub(crate) fn verify_channel(
    path: &Path,
    trusted: &[PublicKey],
) -> Result<ChannelVerification, PublishError> {
    let bytes = read_limited(path, MAX_JSON_BYTES, "a DistributionInfo.json")?;
    let dir = path.parent().unwrap_or(Path::new(""));
    let mut checks = Vec::new();
    let info = DistributionInfo::from_json(&bytes);
    let rules = match &info {
        Err(e) => vec![format!(
            "not a DistributionInfo.json of modern distributions: {e}"
        )],
        Ok(info) => info
            .check(true)
            .err()
            .map(|e| e.to_string())
            .into_iter()
            .collect(),
    };
    checks.push(outcome("rules", rules, None));
    let mut failures = Vec::new();
    let (mut hashed, mut absent) = (0, 0);
    for version in info.iter().flat_map(|i| i.flavours.values().flatten()) {
        for (field, url) in version.urls() {
            let file = url.url.rsplit('/').next().unwrap_or_default();
            let Ok(file) = plain_file_name(file) else {
                absent += 1;
                continue;
            };
            let image = dir.join(file);
            if !image.is_file() {
                absent += 1;
                continue;
            }
            hashed += 1;
            let actual = sha256_file(&image)?;
            if url.sha256_hex().as_deref() != Some(actual.as_str()) {
                failures.push(format!(
                    "{}/{field}: {file}'s sha256 is {actual}, the manifest records {}",
                    version.name, url.sha256
                ));
            }
        }
    }
    checks.push(outcome(
        "images",
        failures,
        Some(format!("{hashed} beside it hashed, {absent} not here")),
    ));
    checks.push(signature_check(path, &bytes, trusted)?);
    Ok(ChannelVerification {
        version: crate::inspect::JSON_VERSION,
        file: path.display().to_string(),
        kind: "channel",
        checks,
    })
}

fn signature_check(
    path: &Path,
    bytes: &[u8],
    trusted: &[PublicKey],
) -> Result<ChannelCheck, PublishError> {
    if trusted.is_empty() {
        return Ok(ChannelCheck {
            check: "signature",
            status: "skipped",
            note: Some("no trusted key given".to_owned()),
            failures: Vec::new(),
        });
    }
    let mut sig_path = path.as_os_str().to_owned();
    sig_path.push(".sig");
    let sig_path = Path::new(&sig_path);
    if !sig_path.is_file() {
        return Ok(outcome(
            "signature",
            vec![format!(
                "{} is missing: it is not signed",
                sig_path.display()
            )],
            None,
        ));
    }
    let text = read_limited(sig_path, 64 << 10, "a signature file")?;
    let text = String::from_utf8_lossy(&text);
    let mut signatures = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        match Signature::parse(line.trim()) {
            Ok(signature) => signatures.push(signature),
            Err(why) => {
                return Ok(outcome(
                    "signature",
                    vec![format!("{} line {}: {why}", sig_path.display(), i + 1)],
                    None,
                ))
            }
        }
    }
    let message = channel_message(bytes);
    let good = signatures.iter().find_map(|signature| {
        trusted
            .iter()
            .find(|key| key.verifies(&message, signature))
            .map(|key| key.name().to_owned())
    });
    Ok(match good {
        Some(key) => outcome("signature", Vec::new(), Some(format!("by {key}"))),
        None if signatures.is_empty() => outcome(
            "signature",
            vec![format!("{} holds no signature", sig_path.display())],
            None,
        ),
        None => outcome(
            "signature",
            vec![format!(
                "no signature in {} is a valid one by a trusted key (signed by {}); the manifest changed after signing, or the key is not trusted",
                sig_path.display(),
                signatures
                    .iter()
                    .map(|s| s.name().to_owned())
                    .collect::<Vec<_>>()
                    .join(", ")
            )],
            None,
        ),
    })
}
