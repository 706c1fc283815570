//! The allow-list: findings a user has accepted, by detector and path glob.
//!
//! A rule is written (e.g. `--allow RULE`) as one of:
//!
//! | rule | allows |
//! | --- | --- |
//! | `/GLOB` | every detector at paths matching the glob |
//! | `DETECTOR` | that detector everywhere |
//! | `DETECTOR:GLOB` | that detector at paths matching the glob |
//!
//! Globs match the `/`-rooted path inside the tarball: `*` is any run of characters except `/`,
//! `**` any run including `/`, `?` one character except `/`; everything
//! else is literal. Example: `openssh-private-key:/etc/ssh/ssh_host_*_key`.

use super::detect::Detector;
use super::report::Finding;

/// Why an allow rule could not be read. The messages name the rule, not the
/// flag or option it came from (`--allow`, `wsl.tarball.checks.allow`).
#[derive(Debug, thiserror::Error)]
pub enum AllowRuleError {
    #[error("allow rule \"{rule}\": unknown detector \"{name}\"; known: {known}")]
    /// A detector name that is none of ours.
    UnknownDetector {
        /// The rule as given.
        rule: String,
        /// The name in it.
        name: String,
        /// The names there are.
        known: String,
    },
    #[error("allow rule \"{rule}\": the glob must start with / (a path in the tarball)")]
    /// A glob that is not a `/`-rooted path.
    RelativeGlob {
        /// The rule as given.
        rule: String,
    },
    #[error("an allow rule is empty; write DETECTOR, /GLOB or DETECTOR:/GLOB")]
    /// An empty rule.
    Empty,
}

/// One accepted kind of finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowRule {
    /// `None`: any detector.
    pub detector: Option<Detector>,
    /// `None`: any path.
    pub glob: Option<String>,
}

impl AllowRule {
    /// Parses `DETECTOR`, `/GLOB` or `DETECTOR:/GLOB`.
    pub fn parse(rule: &str) -> Result<Self, AllowRuleError> {
        if rule.is_empty() {
            return Err(AllowRuleError::Empty);
        }
        if rule.starts_with('/') {
            return Ok(AllowRule {
                detector: None,
                glob: Some(rule.to_owned()),
            });
        }
        let (name, glob) = match rule.split_once(':') {
            Some((name, glob)) => (name, Some(glob)),
            None => (rule, None),
        };
        let detector =
            Detector::from_name(name).ok_or_else(|| AllowRuleError::UnknownDetector {
                rule: rule.to_owned(),
                name: name.to_owned(),
                known: Detector::ALL.map(Detector::name).join(", "),
            })?;
        if let Some(glob) = glob {
            if !glob.starts_with('/') {
                return Err(AllowRuleError::RelativeGlob {
                    rule: rule.to_owned(),
                });
            }
        }
        Ok(AllowRule {
            detector: Some(detector),
            glob: glob.map(str::to_owned),
        })
    }

    /// Whether the rule allows `finding`.
    pub fn allows(&self, finding: &Finding) -> bool {
        self.detector.map_or(true, |d| d == finding.detector)
            && self.glob.as_deref().map_or(true, |g| {
                glob_matches(g.as_bytes(), finding.path.as_bytes())
            })
    }
}

/// Matches `text` against a glob of `*`, `**` and `?` (see the module docs).
pub fn glob_matches(glob: &[u8], text: &[u8]) -> bool {
    match glob {
        [] => text.is_empty(),
        [b'*', b'*', rest @ ..] => (0..=text.len()).any(|i| glob_matches(rest, &text[i..])),
        [b'*', rest @ ..] => {
            let segment = text.iter().position(|&b| b == b'/').unwrap_or(text.len());
            (0..=segment).any(|i| glob_matches(rest, &text[i..]))
        }
        [b'?', rest @ ..] => {
            matches!(text.first(), Some(&b) if b != b'/') && glob_matches(rest, &text[1..])
        }
        [literal, rest @ ..] => text.first() == Some(literal) && glob_matches(rest, &text[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::report::{Part, Severity};

    #[test]
    fn bad_rules_are_named_in_the_words_of_the_allow_list() {
        let message = |rule: &str| AllowRule::parse(rule).unwrap_err().to_string();
        let unknown = message("no-such-detector:/etc/*");
        assert!(
            unknown.starts_with(
                "allow rule \"no-such-detector:/etc/*\": unknown detector \"no-such-detector\"; known: "
            ) && unknown.contains(Detector::ALL[0].name()),
            "{unknown}"
        );
        let relative = format!("{}:etc/*", Detector::ALL[0].name());
        assert_eq!(
            message(&relative),
            format!(
                "allow rule \"{relative}\": the glob must start with / (a path in the tarball)"
            )
        );
        assert_eq!(
            message(""),
            "an allow rule is empty; write DETECTOR, /GLOB or DETECTOR:/GLOB"
        );
        for message in [unknown, message(&relative), message("")] {
            assert!(!message.contains("--"), "{message}");
        }
    }

    #[test]
    fn globs_match_like_shell_globs_with_double_star() {
        assert!(glob_matches(
            b"/etc/ssh/ssh_host_*_key",
            b"/etc/ssh/ssh_host_ed25519_key"
        ));
        assert!(!glob_matches(
            b"/etc/ssh/ssh_host_*_key",
            b"/etc/ssh/ssh_host_ed25519_key.pub"
        ));
        assert!(!glob_matches(b"/etc/*", b"/etc/ssh/x"));
        assert!(glob_matches(b"/etc/**", b"/etc/ssh/x"));
        assert!(glob_matches(
            b"/nix/store/*-python3-*/**/test/*.pem",
            b"/nix/store/abc-python3-3.12/lib/python3.12/test/keycert.pem"
        ));
        assert!(glob_matches(b"/home/?im", b"/home/tim"));
        assert!(!glob_matches(b"/home/?im", b"/home//im"));
    }

    #[test]
    fn rules_parse_and_apply() {
        let finding = Finding {
            severity: Severity::Error,
            detector: Detector::OpensshPrivateKey,
            path: "/etc/ssh/ssh_host_ed25519_key".into(),
            store_path: None,
            part: Part::Content,
            offset: 0,
            length: 1,
            excerpt: String::new(),
            user_controlled: true,
        };
        for (rule, allows) in [
            ("openssh-private-key:/etc/ssh/ssh_host_*_key", true),
            ("pem-private-key:/etc/ssh/ssh_host_*_key", false),
            ("openssh-private-key", true),
            ("/etc/ssh/**", true),
            ("/etc/*", false),
        ] {
            assert_eq!(
                AllowRule::parse(rule).unwrap().allows(&finding),
                allows,
                "{rule}"
            );
        }
        assert!(AllowRule::parse("ssh-host-key:/etc")
            .unwrap_err()
            .to_string()
            .contains("openssh-private-key"));
        assert!(AllowRule::parse("github-token:etc/x").is_err());
        assert!(AllowRule::parse("").is_err());
    }
}
