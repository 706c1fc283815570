//! The build-environment check kept from the old script: variables whose
//! names say they hold a secret, and the git author identity.
//!
//! It looks at names only; values are never read into a report.

use std::ffi::OsStr;

use super::detect::Detector;
use super::report::{Finding, Part, Severity};

/// Names starting with one of these hold secrets (the old script's list).
const SECRET_PREFIXES: &[&str] = &[
    "TOKEN",
    "API_KEY",
    "SECRET",
    "PASSWORD",
    "PRIVATE_KEY",
    "AWS_",
    "GITHUB_TOKEN",
    "GITLAB_TOKEN",
    "NPM_TOKEN",
    "OPENAI",
    "ANTHROPIC",
];

/// `AWS_` names that hold credentials; other `AWS_` names (`AWS_REGION`,
/// `AWS_PROFILE`, `AWS_CA_BUNDLE`, …) are configuration and only warn.
const AWS_CREDENTIALS: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
];

/// Personal identity that may leak into what is built.
const IDENTITY_NAMES: &[&str] = &["GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL"];

/// Checks environment variable names (compared upper-cased): a secret-like
/// name (one of the old prefixes, `GH_TOKEN`, or anything ending in
/// `_TOKEN`) is an error; AWS configuration (an `AWS_` name that is not a
/// credential) and the git author identity are warnings. Variables
/// with empty values are ignored.
pub fn check_environment<K, V>(vars: impl IntoIterator<Item = (K, V)>) -> Vec<Finding>
where
    K: AsRef<OsStr>,
    V: AsRef<OsStr>,
{
    let mut findings = Vec::new();
    for (name, value) in vars {
        if value.as_ref().is_empty() {
            continue;
        }
        let name = name.as_ref().to_string_lossy();
        let upper = name.to_ascii_uppercase();
        let aws_configuration =
            upper.starts_with("AWS_") && !AWS_CREDENTIALS.contains(&upper.as_str());
        let (severity, reason) = if aws_configuration {
            (Severity::Warning, "AWS configuration variable")
        } else if SECRET_PREFIXES.iter().any(|p| upper.starts_with(p)) {
            (Severity::Error, "name of a secret-holding variable")
        } else if upper == "GH_TOKEN" || upper.ends_with("_TOKEN") {
            (Severity::Error, "name of a token variable")
        } else if IDENTITY_NAMES.contains(&upper.as_str()) {
            (Severity::Warning, "personal identity")
        } else {
            continue;
        };
        findings.push(Finding {
            severity,
            detector: Detector::Environment,
            path: format!("${name}"),
            part: Part::Variable,
            offset: 0,
            length: 0,
            excerpt: format!("{reason} (value not shown)"),
            user_controlled: true,
        });
    }
    findings.sort_by(|a, b| a.path.cmp(&b.path));
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names_fail_identity_warns_and_the_blind_spot_is_closed() {
        let vars = [
            ("GITHUB_TOKEN", "x"),
            ("GH_TOKEN", "x"),
            ("CI_JOB_TOKEN", "x"),
            ("AWS_SECRET_ACCESS_KEY", "x"),
            ("OPENAI_API_KEY", "x"),
            ("GIT_AUTHOR_EMAIL", "tim@example.com"),
            ("PATH", "/bin"),
            ("AWS_CA_BUNDLE", "/etc/ssl/ca.pem"),
            ("HOME", "/root"),
            ("TOKENIZERS_PARALLELISM", ""),
            ("LANG", "C"),
        ];
        let found: Vec<(String, Severity)> = check_environment(vars)
            .into_iter()
            .map(|f| (f.path, f.severity))
            .collect();
        assert_eq!(
            found,
            [
                ("$AWS_CA_BUNDLE".to_owned(), Severity::Warning),
                ("$AWS_SECRET_ACCESS_KEY".to_owned(), Severity::Error),
                ("$CI_JOB_TOKEN".to_owned(), Severity::Error),
                ("$GH_TOKEN".to_owned(), Severity::Error),
                ("$GITHUB_TOKEN".to_owned(), Severity::Error),
                ("$GIT_AUTHOR_EMAIL".to_owned(), Severity::Warning),
                ("$OPENAI_API_KEY".to_owned(), Severity::Error),
            ]
        );
        let report = check_environment([("GH_TOKEN", "ghp_secretvalue")]);
        assert!(!format!("{report:?}").contains("secretvalue"));
    }
}
