//! `DistributionInfo.json`, the manifest modern WSL installs from
//! (microsoft/WSL `distributions/DistributionInfo.json`), as types, with
//! the rules WSL and Microsoft's validator (`validate-modern.py`) apply.
//!
//! ```text
//! {"ModernDistributions": {FLAVOUR: [{"Name", "FriendlyName", "Default",
//!                                     "Amd64Url"?, "Arm64Url"?}, …]}}
//! URL: {"Url": "https://…/X.wsl", "Sha256": "0x<64 hex>"}
//! ```
//!
//! A manifest read (an earlier release's, hostile input) is parsed into
//! [`DistributionInfo`]: unknown keys, a missing key, a flavour given twice
//! are refused. Names ([`check_name`]) are what WSL accepts as a
//! distribution name: ASCII letters, digits, `.`, `_` and `-`, starting
//! with a letter or digit. [`DistributionInfo::to_json`] writes the form
//! Microsoft's `validate.py` demands: Python's `json.dumps(indent=4)` plus a
//! newline (4-space indent, `": "`, non-ASCII as `\uXXXX`), flavours in
//! byte order, so the same releases give the same bytes.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::escape::escape_str;

/// The whole manifest.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DistributionInfo {
    #[serde(
        rename = "ModernDistributions",
        deserialize_with = "flavours_once::deserialize"
    )]
    pub(crate) flavours: BTreeMap<String, Vec<Version>>,
}

/// One installable version of a flavour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Version {
    #[serde(rename = "Name")]
    pub(crate) name: String,
    #[serde(rename = "FriendlyName")]
    pub(crate) friendly_name: String,
    #[serde(rename = "Default")]
    pub(crate) default: bool,
    #[serde(rename = "Amd64Url", default, skip_serializing_if = "Option::is_none")]
    pub(crate) amd64: Option<ImageUrl>,
    #[serde(rename = "Arm64Url", default, skip_serializing_if = "Option::is_none")]
    pub(crate) arm64: Option<ImageUrl>,
}

impl Version {
    /// The architecture field names and URLs this version has.
    pub(crate) fn urls(&self) -> impl Iterator<Item = (&'static str, &ImageUrl)> {
        [("Amd64Url", &self.amd64), ("Arm64Url", &self.arm64)]
            .into_iter()
            .filter_map(|(field, url)| url.as_ref().map(|url| (field, url)))
    }
}

/// Where an image is and its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ImageUrl {
    #[serde(rename = "Url")]
    pub(crate) url: String,
    /// `0x` and 64 hex digits (or the 64 digits alone, as some of
    /// Microsoft's entries have them).
    #[serde(rename = "Sha256")]
    pub(crate) sha256: String,
}

impl ImageUrl {
    /// The SHA-256 as lowercase hex, if it is one.
    pub(crate) fn sha256_hex(&self) -> Option<String> {
        let hex = self.sha256.strip_prefix("0x").unwrap_or(&self.sha256);
        (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| hex.to_ascii_lowercase())
    }
}

/// Deserializes the flavour map, refusing a flavour given twice (a plain
/// map would keep the last and drop the other silently).
mod flavours_once {
    use super::{BTreeMap, Version};
    use serde::de::{Deserializer, Error, MapAccess, Visitor};

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<BTreeMap<String, Vec<Version>>, D::Error> {
        struct Once;
        impl<'de> Visitor<'de> for Once {
            type Value = BTreeMap<String, Vec<Version>>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of flavours, each a list of versions")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut flavours = BTreeMap::new();
                while let Some((flavour, versions)) = map.next_entry::<String, Vec<Version>>()? {
                    if flavours.contains_key(&flavour) {
                        return Err(M::Error::custom(format!(
                            "flavour {:?} is given twice",
                            crate::escape::escape_str(&flavour)
                        )));
                    }
                    flavours.insert(flavour, versions);
                }
                Ok(flavours)
            }
        }
        deserializer.deserialize_map(Once)
    }
}

/// A URL from the command line that ends up in `DistributionInfo.json`
/// and `install-channel.ps1`: `https://` or `file://` (which WSL 2.4.4 and
/// later read), ASCII without white space, control characters, `"`, `` ` ``
/// or other characters that need quoting (PowerShell also takes the
/// typographic quotes U+2018 to U+201B for `'`, hence ASCII only); no query
/// or fragment. Kept as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CheckedUrl(String);

/// What is wrong with a URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("it does not start with https:// or file://")]
    Scheme,
    #[error("it holds white space or a control character")]
    Control,
    #[error("it holds a character that would need quoting ({0:?}); percent-encode it")]
    Unquoted(char),
    #[error("it holds a character that is not ASCII; percent-encode it")]
    NotAscii,
    #[error("it has nothing after the scheme")]
    Empty,
    #[error("it holds a query or fragment (`?`, `#`): file names are appended to it")]
    Query,
}

impl CheckedUrl {
    pub(crate) fn parse(text: &str) -> Result<CheckedUrl, UrlError> {
        let rest = text
            .strip_prefix("https://")
            .or_else(|| text.strip_prefix("file://"))
            .ok_or(UrlError::Scheme)?;
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(UrlError::Control);
        }
        if !text.is_ascii() {
            return Err(UrlError::NotAscii);
        }
        if let Some(c) = text
            .chars()
            .find(|c| matches!(c, '"' | '`' | '<' | '>' | '\\' | '{' | '}' | '|' | '^'))
        {
            return Err(UrlError::Unquoted(c));
        }
        if text.contains(['?', '#']) {
            return Err(UrlError::Query);
        }
        if rest.trim_matches('/').is_empty() {
            return Err(UrlError::Empty);
        }
        Ok(CheckedUrl(text.to_owned()))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CheckedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A base URL the release directory is published at: a [`CheckedUrl`]
/// always ending in `/`, so that a file name appended to it names a file
/// in the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BaseUrl(CheckedUrl);

impl BaseUrl {
    pub(crate) fn parse(text: &str) -> Result<BaseUrl, UrlError> {
        let CheckedUrl(mut url) = CheckedUrl::parse(text)?;
        if !url.ends_with('/') {
            url.push('/');
        }
        Ok(BaseUrl(CheckedUrl(url)))
    }

    /// The URL of `file` (a plain file name) in the release directory; the
    /// rules hold for it as `file` is a plain name.
    pub(crate) fn join(&self, file: &str) -> CheckedUrl {
        CheckedUrl(format!("{}{file}", self.0))
    }
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What is wrong with a name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("it is empty")]
    Empty,
    #[error("it is longer than {MAX_NAME} characters")]
    TooLong,
    #[error("it starts with {0:?}: a name starts with an ASCII letter or digit")]
    Start(char),
    #[error("it holds {0:?}: WSL names take ASCII letters, digits, `.`, `_` and `-`")]
    Character(char),
}

/// The longest name taken (it also names files in the release directory).
const MAX_NAME: usize = 100;

/// `name` is a name WSL takes for a distribution.
pub(crate) fn check_name(name: &str) -> Result<(), NameError> {
    let first = name.chars().next().ok_or(NameError::Empty)?;
    if name.len() > MAX_NAME {
        return Err(NameError::TooLong);
    }
    if !first.is_ascii_alphanumeric() {
        return Err(NameError::Start(first));
    }
    match name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        Some(c) => Err(NameError::Character(c)),
        None => Ok(()),
    }
}

/// A rule of the manifest broken, naming the entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("flavour {}: the name {}", shown(.flavour), .why)]
    BadFlavour { flavour: String, why: NameError },
    #[error("{}: Name {}", entry(.flavour, .name), .why)]
    BadName {
        flavour: String,
        name: String,
        why: NameError,
    },
    #[error("{}: Name does not start with the flavour {}", entry(.flavour, .name), shown(.flavour))]
    OutsideFlavour { flavour: String, name: String },
    #[error("{}: FriendlyName is empty, longer than 200 characters or holds a control character", entry(.flavour, .name))]
    BadFriendlyName { flavour: String, name: String },
    #[error("{}: a version of that Name is already listed", entry(.flavour, .name))]
    DuplicateName { flavour: String, name: String },
    #[error("flavour {}: {} and {} are both Default (a flavour has exactly one)", shown(.flavour), shown(.first), shown(.second))]
    TwoDefaults {
        flavour: String,
        first: String,
        second: String,
    },
    #[error("flavour {}: no version is Default (a flavour has exactly one)", shown(.flavour))]
    NoDefault { flavour: String },
    #[error("{}: no Amd64Url or Arm64Url", entry(.flavour, .name))]
    NoUrl { flavour: String, name: String },
    #[error("{}: {field}.Sha256 {} is not 0x and 64 hex digits", entry(.flavour, .name), shown(.sha256))]
    BadSha256 {
        flavour: String,
        name: String,
        field: &'static str,
        sha256: String,
    },
    #[error("{}: {field}.Url {} does not end in .wsl", entry(.flavour, .name), shown(.url))]
    NotWsl {
        flavour: String,
        name: String,
        field: &'static str,
        url: String,
    },
    #[error("{}: {field}.Url {} {why}", entry(.flavour, .name), shown(.url))]
    BadUrl {
        flavour: String,
        name: String,
        field: &'static str,
        url: String,
        why: UrlError,
    },
}

fn shown(text: &str) -> String {
    format!("{:?}", escape_str(text))
}

fn entry(flavour: &str, name: &str) -> String {
    format!("{}/{}", escape_str(flavour), escape_str(name))
}

impl DistributionInfo {
    /// Parses a manifest's JSON; the error says where it does not fit.
    pub(crate) fn from_json(bytes: &[u8]) -> Result<DistributionInfo, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// The bytes `validate.py` accepts: `json.dumps(indent=4)` and a newline.
    pub(crate) fn to_json(&self) -> String {
        let mut out = Vec::new();
        let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
        let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
        self.serialize(&mut serializer)
            .expect("a DistributionInfo serialises");
        let text = String::from_utf8(out).expect("serde_json writes UTF-8");
        // Python's ensure_ascii: non-ASCII (only ever inside strings) as
        // \uXXXX, UTF-16 surrogate pairs beyond the BMP.
        let mut ascii = String::with_capacity(text.len());
        for c in text.chars() {
            if c.is_ascii() {
                ascii.push(c);
            } else {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    ascii.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
        ascii.push('\n');
        ascii
    }

    /// Checks every flavour: its name, and each version's Name (a WSL
    /// name starting with the flavour, once per flavour), FriendlyName, at
    /// least one URL, each URL a `.wsl` one with a well-formed SHA-256; at
    /// most one Default per flavour, or exactly one with `one_default`.
    pub(crate) fn check(&self, one_default: bool) -> Result<(), RuleError> {
        for (flavour, versions) in &self.flavours {
            check_flavour(flavour, versions, one_default)?;
        }
        Ok(())
    }
}

fn check_flavour(flavour: &str, versions: &[Version], one_default: bool) -> Result<(), RuleError> {
    check_name(flavour).map_err(|why| RuleError::BadFlavour {
        flavour: flavour.to_owned(),
        why,
    })?;
    let mut default: Option<&str> = None;
    let mut names = std::collections::BTreeSet::new();
    for version in versions {
        let (f, name) = (flavour.to_owned(), version.name.clone());
        check_name(&version.name).map_err(|why| RuleError::BadName {
            flavour: f.clone(),
            name: name.clone(),
            why,
        })?;
        if !version.name.starts_with(flavour) {
            return Err(RuleError::OutsideFlavour { flavour: f, name });
        }
        if !names.insert(version.name.as_str()) {
            return Err(RuleError::DuplicateName { flavour: f, name });
        }
        let friendly = &version.friendly_name;
        if friendly.trim().is_empty()
            || friendly.chars().count() > 200
            || friendly.chars().any(char::is_control)
        {
            return Err(RuleError::BadFriendlyName { flavour: f, name });
        }
        if version.amd64.is_none() && version.arm64.is_none() {
            return Err(RuleError::NoUrl { flavour: f, name });
        }
        for (field, url) in version.urls() {
            if url.sha256_hex().is_none() {
                return Err(RuleError::BadSha256 {
                    flavour: f,
                    name,
                    field,
                    sha256: url.sha256.clone(),
                });
            }
            if let Err(why) = CheckedUrl::parse(&url.url) {
                return Err(RuleError::BadUrl {
                    flavour: f,
                    name,
                    field,
                    url: url.url.clone(),
                    why,
                });
            }
            if !url.url.ends_with(".wsl") {
                return Err(RuleError::NotWsl {
                    flavour: f,
                    name,
                    field,
                    url: url.url.clone(),
                });
            }
        }
        if version.default {
            if let Some(first) = default {
                return Err(RuleError::TwoDefaults {
                    flavour: f,
                    first: first.to_owned(),
                    second: name,
                });
            }
            default = Some(&version.name);
        }
    }
    if one_default && default.is_none() {
        return Err(RuleError::NoDefault {
            flavour: flavour.to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(name: &str, default: bool) -> Version {
        Version {
            name: name.into(),
            friendly_name: format!("Team {name} é"),
            default,
            amd64: Some(ImageUrl {
                url: format!("https://example.com/r/{name}.x86_64.wsl"),
                sha256: format!("0x{}", "ab".repeat(32)),
            }),
            arm64: None,
        }
    }

    #[test]
    fn json_is_what_python_json_dumps_writes() {
        let mut info = DistributionInfo::default();
        info.flavours
            .insert("team".into(), vec![version("team-1", true)]);
        let text = info.to_json();
        assert!(text.starts_with("{\n    \"ModernDistributions\": {\n        \"team\": [\n            {\n                \"Name\": \"team-1\",\n"), "{text}");
        assert!(
            text.contains("\"FriendlyName\": \"Team team-1 \\u00e9\","),
            "{text}"
        );
        assert!(text.ends_with("}\n"));
        assert!(!text.contains("Arm64Url"));
        assert_eq!(DistributionInfo::from_json(text.as_bytes()).unwrap(), info);
    }

    #[test]
    fn hostile_manifests_are_refused_where_they_do_not_fit() {
        let unknown = br#"{"ModernDistributions": {"t": [{"Name": "t", "FriendlyName": "t", "Default": true, "Extra": 1}]}}"#;
        let error = DistributionInfo::from_json(unknown)
            .unwrap_err()
            .to_string();
        assert!(error.contains("unknown field `Extra`"), "{error}");
        let twice = br#"{"ModernDistributions": {"t": [], "t": []}}"#;
        let error = DistributionInfo::from_json(twice).unwrap_err().to_string();
        assert!(error.contains("flavour \"t\" is given twice"), "{error}");
        let top = br#"{"ModernDistributions": {}, "Distributions": []}"#;
        assert!(DistributionInfo::from_json(top).is_err());
    }

    #[test]
    fn rules_name_the_entry() {
        let mut info = DistributionInfo::default();
        info.flavours.insert(
            "team".into(),
            vec![version("team-2", true), version("team-1", true)],
        );
        assert_eq!(
            info.check(true).unwrap_err().to_string(),
            "flavour \"team\": \"team-2\" and \"team-1\" are both Default (a flavour has exactly one)"
        );
        info.flavours
            .insert("team".into(), vec![version("other-1", true)]);
        assert_eq!(
            info.check(true).unwrap_err().to_string(),
            "team/other-1: Name does not start with the flavour \"team\""
        );
        info.flavours
            .insert("team".into(), vec![version("team-1", false)]);
        assert!(info.check(false).is_ok());
        assert!(matches!(info.check(true), Err(RuleError::NoDefault { .. })));
        let mut bad = version("team-1", true);
        bad.amd64.as_mut().unwrap().url = "http://example.com/a.wsl".into();
        info.flavours.insert("team".into(), vec![bad]);
        assert!(matches!(info.check(true), Err(RuleError::BadUrl { .. })));
    }

    #[test]
    fn names_and_urls() {
        assert!(check_name("team-24.05_1").is_ok());
        assert_eq!(check_name("-x"), Err(NameError::Start('-')));
        assert_eq!(check_name("a b"), Err(NameError::Character(' ')));
        assert_eq!(check_name("a/b"), Err(NameError::Character('/')));
        assert_eq!(
            BaseUrl::parse("https://h/r")
                .unwrap()
                .join("x.wsl")
                .as_str(),
            "https://h/r/x.wsl"
        );
        // A full URL is kept as given: no `/` appended.
        assert_eq!(
            CheckedUrl::parse("https://h/r/DistributionInfo.json")
                .unwrap()
                .as_str(),
            "https://h/r/DistributionInfo.json"
        );
        assert_eq!(CheckedUrl::parse("https://h/r?x"), Err(UrlError::Query));
        assert_eq!(
            BaseUrl::parse("file:///C:/r/").unwrap().to_string(),
            "file:///C:/r/"
        );
        assert_eq!(BaseUrl::parse("http://h/"), Err(UrlError::Scheme));
        assert_eq!(BaseUrl::parse("https://h/\n"), Err(UrlError::Control));
        assert_eq!(BaseUrl::parse("https://h/a b"), Err(UrlError::Control));
        assert_eq!(BaseUrl::parse("https:///"), Err(UrlError::Empty));
        assert_eq!(BaseUrl::parse("https://h/?a"), Err(UrlError::Query));
        // A quote is kept (the script doubles it); `"` and `` ` `` are not.
        assert!(BaseUrl::parse("https://h/it's/").is_ok());
        assert_eq!(
            BaseUrl::parse("https://h/\"/"),
            Err(UrlError::Unquoted('"'))
        );
        assert_eq!(
            BaseUrl::parse("https://h/\u{2019}/"),
            Err(UrlError::NotAscii)
        );
    }
}
