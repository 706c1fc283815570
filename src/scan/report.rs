//! Findings, their severity, and the report: human text and JSON.
//!
//! A secret is never printed whole: [`redact`] keeps the public prefix of a
//! token (or the marker line of a key block) and a few characters at most.

use crate::count::count;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::detect::Detector;
use crate::escape::Escaped;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// In a store path that is not user-controlled: reported, does not fail.
    Warning,
    /// In user-controlled content (or any finding with `--strict`): fails.
    Error,
}

/// Which part of a member matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Part {
    /// The member's own name (the last component of its path).
    Name,
    /// A symlink's target.
    LinkTarget,
    /// A regular file's content.
    Content,
}

/// One thing that should not ship.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// How much it matters where it was found.
    pub severity: Severity,
    /// What it is.
    pub detector: Detector,
    /// `/`-rooted path inside the tarball.
    pub path: String,
    /// The store path the member belongs to (`/nix/store/HASH-NAME`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_path: Option<String>,
    /// Where in the member: its name, content or link target.
    pub part: Part,
    /// Byte offset in the part (in the path, for a name).
    pub offset: u64,
    /// Length of the match in bytes.
    pub length: u64,
    /// The match with all but its public prefix hidden.
    pub excerpt: String,
    /// The path is user-controlled (outside the store, or a store path of
    /// the system's configuration).
    pub user_controlled: bool,
}

impl Finding {
    /// The order reports use: by path, then position, then detector.
    fn sort_key(&self) -> (&str, Part, u64, Detector) {
        (&self.path, self.part, self.offset, self.detector)
    }
}

/// Sorts findings into report order; thread counts and chunking never change it.
pub fn sort_findings(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        a.sort_key()
            .cmp(&b.sort_key())
            .then_with(|| a.excerpt.cmp(&b.excerpt))
    });
}

/// The outcome of the checks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScanReport {
    /// Findings not covered by an allow rule, in report order.
    pub findings: Vec<Finding>,
    /// Findings an allow rule covered.
    pub allowed: usize,
    /// Members whose names and contents were scanned.
    pub members: u64,
    /// Content bytes scanned.
    pub bytes: u64,
    /// Sensitive build-environment variables whose values were searched for
    /// and not found (names only).
    pub environment_not_found: Vec<String>,
}

/// The version of the report's JSON schema (docs/src/json.md).
pub const JSON_VERSION: u32 = 1;

/// How much of a report the human form shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Detail {
    /// Error findings only; nothing at all when there is none.
    Quiet,
    /// Errors in full; warnings as one line with a count per store path; the
    /// summary.
    #[default]
    Normal,
    /// Every finding in full, and the summary.
    Verbose,
}

/// The excerpt of a sensitive variable's value found in the tarball.
pub fn environment_excerpt(name: &str) -> String {
    format!("the value of ${name} (not shown)")
}

impl ScanReport {
    /// Findings of error severity.
    pub fn errors(&self) -> usize {
        self.count(Severity::Error)
    }

    /// Findings of warning severity.
    pub fn warnings(&self) -> usize {
        self.count(Severity::Warning)
    }

    fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }

    /// At least one finding fails the build.
    pub fn has_errors(&self) -> bool {
        self.errors() > 0
    }

    /// The report as text, at the given [`Detail`]: a line per finding
    /// shown, then (unless quiet) a line for the sensitive variables not
    /// found and the summary line. Paths are escaped for a terminal; the
    /// excerpts are printable already ([`redact`]).
    pub fn render_human(&self, detail: Detail) -> String {
        let mut text = String::new();
        let shown = |f: &&Finding| f.severity == Severity::Error || detail == Detail::Verbose;
        for f in self.findings.iter().filter(shown) {
            let severity = match f.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            let place = match f.part {
                Part::Content => format!("byte {}", f.offset),
                Part::Name => format!("name, byte {}", f.offset),
                Part::LinkTarget => format!("link target, byte {}", f.offset),
            };
            let _ = writeln!(
                text,
                "{severity}[{}] {} ({place}): {}",
                f.detector,
                Escaped(&f.path),
                f.excerpt
            );
        }
        if detail == Detail::Quiet {
            return text;
        }
        if detail == Detail::Normal && self.warnings() > 0 {
            let _ = writeln!(text, "{}", self.warning_summary());
        }
        if !self.environment_not_found.is_empty() {
            let names: Vec<String> = self
                .environment_not_found
                .iter()
                .map(|name| format!("${}", Escaped(name)))
                .collect();
            let _ = writeln!(
                text,
                "note: the values of {} were searched for and are not in the tarball",
                names.join(", ")
            );
        }
        let _ = writeln!(
            text,
            "security checks: {}, {}, {} allowed; {}, {} scanned",
            count(self.errors(), "error"),
            count(self.warnings(), "warning"),
            self.allowed,
            count(self.members, "member"),
            count(self.bytes, "content byte")
        );
        text
    }

    /// One line for every warning: how many in each store path, largest
    /// count first.
    fn warning_summary(&self) -> String {
        let mut per_store_path: std::collections::BTreeMap<&str, usize> = Default::default();
        for f in self
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Warning)
        {
            *per_store_path
                .entry(f.store_path.as_deref().unwrap_or(&f.path))
                .or_default() += 1;
        }
        let mut counts: Vec<(&str, usize)> = per_store_path.into_iter().collect();
        counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let places: Vec<String> = counts
            .iter()
            .map(|(path, count)| format!("{count} in {}", Escaped(path)))
            .collect();
        format!(
            "warning: {} in store paths outside the system's configuration \
             (packages' own test keys, usually): {}; --verbose or --json lists them",
            count(self.warnings(), "finding"),
            places.join(", ")
        )
    }

    /// The report as JSON: `version` (of this schema), then every field in
    /// camelCase, with the `errors` and `warnings` counts.
    pub fn to_json_value(&self) -> serde_json::Value {
        let mut object = serde_json::Map::new();
        object.insert("version".into(), JSON_VERSION.into());
        if let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(self) {
            object.extend(fields);
        }
        object.insert("errors".into(), self.errors().into());
        object.insert("warnings".into(), self.warnings().into());
        serde_json::Value::Object(object)
    }

    /// The report as pretty-printed JSON (`--json`).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(&self.to_json_value()).unwrap_or_default()
    }
}

/// The visible form of a match: its anchor (public: `ghp_`, `AKIA`, the
/// `-----BEGIN … PRIVATE KEY-----` line) and a few more characters, never
/// more than an eighth of the secret part, then `…` and the length.
/// Identifiers, which the user gave, are shown as matched.
pub fn redact(detector: Detector, anchor_len: usize, matched: &[u8]) -> String {
    let visible = match detector {
        Detector::Identifier => matched.len(),
        Detector::Pattern => 2.min(matched.len() / 4),
        Detector::PemPrivateKey | Detector::OpensshPrivateKey | Detector::PgpPrivateKey => {
            let line = memchr::memchr(b'\n', matched).unwrap_or(matched.len());
            line - usize::from(line > 0 && matched[line - 1] == b'\r')
        }
        _ => {
            let secret = matched.len().saturating_sub(anchor_len);
            (anchor_len + (secret / 8).min(4)).min(matched.len())
        }
    };
    let mut text = String::new();
    for &b in &matched[..visible] {
        if b.is_ascii_graphic() || b == b' ' {
            text.push(b as char);
        } else {
            let _ = write!(text, "\\x{b:02x}");
        }
    }
    if visible < matched.len() {
        format!("{text}… ({} bytes)", matched.len())
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_keeps_the_prefix_and_hides_the_secret() {
        let token = b"ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8";
        let shown = redact(Detector::GithubToken, 4, token);
        assert_eq!(shown, "ghp_a1B2… (40 bytes)");
        let key = b"-----BEGIN OPENSSH PRIVATE KEY-----\r\nb3BlbnNzaC1rZXktdjEAAAAA";
        assert_eq!(
            redact(Detector::OpensshPrivateKey, 11, key),
            "-----BEGIN OPENSSH PRIVATE KEY-----… (61 bytes)"
        );
        assert_eq!(redact(Detector::Pattern, 8, b"hunter22"), "hu… (8 bytes)");
        assert_eq!(redact(Detector::Identifier, 3, b"Tim"), "Tim");
    }
}
