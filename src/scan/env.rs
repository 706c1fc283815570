//! The build-environment check: the *values* of sensitive variables, looked
//! for in what ships.
//!
//! A variable's name in the environment of a build is not a leak: CI runners
//! and developer shells almost always have a `GITHUB_TOKEN`. What would leak
//! is its value inside the tarball. [`sensitive_variables`] picks the
//! variables whose names say they hold a secret or a personal identity (the
//! old script's name rules) and whose values are long enough to search for;
//! the scanner then looks for each value, as a literal, in every member's
//! name, link target and content, through the same automaton as every other
//! anchor. A value that is found is an error whatever its format; the report
//! names the variable and the member, never the value.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

/// Names starting with one of these hold secrets (the old script's list).
const SECRET_PREFIXES: &[&str] = &[
    "TOKEN",
    "API_KEY",
    "SECRET",
    "PASSWORD",
    "PRIVATE_KEY",
    "GITHUB_TOKEN",
    "GITLAB_TOKEN",
    "NPM_TOKEN",
    "OPENAI",
    "ANTHROPIC",
];

/// `AWS_` names that hold credentials; other `AWS_` names (`AWS_REGION`,
/// `AWS_PROFILE`, `AWS_CA_BUNDLE`, …) are configuration and are not looked at.
const AWS_CREDENTIALS: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
];

/// Personal identity that may leak into what is built.
const IDENTITY_NAMES: &[&str] = &["GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL"];

/// Shorter values are not searched for: they would match by chance.
pub const MIN_VALUE_BYTES: usize = 8;

/// A variable whose value must not ship.
#[derive(Clone, PartialEq, Eq)]
pub struct SensitiveVariable {
    /// The variable's name.
    pub name: String,
    /// Its value, searched for in the rootfs.
    pub value: Vec<u8>,
}

impl std::fmt::Debug for SensitiveVariable {
    /// Never prints the value.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SensitiveVariable(${}, {} bytes)",
            self.name,
            self.value.len()
        )
    }
}

/// True if a variable of this name holds a secret or a personal identity
/// (names compared upper-cased): one of the old prefixes, an AWS credential,
/// `GH_TOKEN` or anything ending in `_TOKEN`, or the git author identity.
pub fn is_sensitive_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    if upper.starts_with("AWS_") {
        return AWS_CREDENTIALS.contains(&upper.as_str());
    }
    SECRET_PREFIXES.iter().any(|p| upper.starts_with(p))
        || upper == "GH_TOKEN"
        || upper.ends_with("_TOKEN")
        || IDENTITY_NAMES.contains(&upper.as_str())
}

/// The sensitive variables of an environment whose values are at least
/// [`MIN_VALUE_BYTES`] long, sorted by name.
pub fn sensitive_variables<K, V>(vars: impl IntoIterator<Item = (K, V)>) -> Vec<SensitiveVariable>
where
    K: AsRef<OsStr>,
    V: AsRef<OsStr>,
{
    let mut found: Vec<SensitiveVariable> = vars
        .into_iter()
        .filter_map(|(name, value)| {
            let name = name.as_ref().to_string_lossy().into_owned();
            let value = value.as_ref().as_bytes();
            (value.len() >= MIN_VALUE_BYTES && is_sensitive_name(&name)).then(|| {
                SensitiveVariable {
                    name,
                    value: value.to_vec(),
                }
            })
        })
        .collect();
    found.sort_by(|a, b| a.name.cmp(&b.name));
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_and_identity_names_are_picked_configuration_and_short_values_are_not() {
        let vars = [
            ("GITHUB_TOKEN", "ghs_0123456789"),
            ("GH_TOKEN", "abcdefgh"),
            ("CI_JOB_TOKEN", "1234567"),
            ("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG"),
            ("OPENAI_API_KEY", "sk-something-long"),
            ("GIT_AUTHOR_EMAIL", "tim@example.com"),
            ("PATH", "/usr/local/bin:/usr/bin"),
            ("AWS_CA_BUNDLE", "/etc/ssl/certs/ca.pem"),
            ("AWS_REGION", "eu-west-1-long"),
            ("HOME", "/root/somewhere"),
            ("TOKENIZERS_PARALLELISM", ""),
        ];
        let names: Vec<String> = sensitive_variables(vars)
            .into_iter()
            .map(|v| v.name)
            .collect();
        assert_eq!(
            names,
            [
                "AWS_SECRET_ACCESS_KEY",
                "GH_TOKEN",
                "GITHUB_TOKEN",
                "GIT_AUTHOR_EMAIL",
                "OPENAI_API_KEY"
            ]
        );
    }

    #[test]
    fn debug_never_shows_the_value() {
        let variable = sensitive_variables([("GH_TOKEN", "ghp_secretvalue")]);
        let shown = format!("{variable:?}");
        assert!(
            shown.contains("$GH_TOKEN") && !shown.contains("secretvalue"),
            "{shown}"
        );
    }
}
