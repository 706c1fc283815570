//! The facts file: what the NixOS module (or `build`) tells the tool about a
//! system, its schema, and its validation where it enters.
//!
//! Every field that ends up in a line of `/etc/passwd`, `/etc/group`,
//! `/etc/shadow` or `/etc/wsl-distribution.conf`, or in a rootfs path, is
//! checked by [`NixosFacts::parse`] before anything is planned, so a value
//! can neither inject a line nor reach outside the place it belongs to. An
//! error names the facts field (`users.users[2].home`) and its value.
//!
//! The schema (all keys camelCase; an unknown key at any level is an error):
//!
//! ```json
//! {"system": "/nix/store/…-nixos-system-nixos-wsl-25.11",
//!  "users": {"users": [{"name": "nixos", "uid": 1000, "group": "users",
//!                       "description": "", "home": "/home/nixos",
//!                       "shell": "/run/current-system/sw/bin/bash",
//!                       "createHome": true, "homeMode": "700",
//!                       "isNormalUser": true, "enable": true,
//!                       "hashedPassword": null, "hashedPasswordFile": null,
//!                       "initialPassword": null, "initialHashedPassword": null,
//!                       "password": null}],
//!            "groups": [{"name": "users", "gid": 100, "members": ["nixos"]}]},
//!  "init": "/nix/store/…-utils/bin/systemd-shim",
//!  "populateBin": true,
//!  "bin": [{"name": "sh", "src": "/nix/store/…-sh/bin/sh", "copy": false}],
//!  "usrBinEnv": "/nix/store/…-coreutils/bin/env",
//!  "channels": {"nixos": "https://nixos.org/channels/nixos-25.11",
//!               "nixos-wsl": "https://github.com/nix-community/NixOS-WSL/archive/refs/heads/main.tar.gz"},
//!  "defaultName": "NixOS", "icon": "/nix/store/…-NixOS-WSL.ico",
//!  "terminalProfile": null, "nixosConfig": "/nix/store/…-configuration.nix",
//!  "defaultUid": 1000, "oobeCommand": "/nix/store/…-first-run.sh",
//!  "shortcutEnabled": true, "windowsTerminalEnabled": true,
//!  "compression": "gzip", "level": null}
//! ```
//!
//! `users.users` entries mirror nixpkgs' `users.users.<name>` options (and
//! the spec `update-users-groups.pl` reads); `shell` may be null, as NixOS
//! allows. `bin` mirrors NixOS-WSL's `wsl.extraBin` in its order (the last
//! of duplicate names wins, as `ln -sf` in order does); `populateBin =
//! false` means no `/bin` entries at all. `channels` is
//! `/root/.nix-channels`, name to URL.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use crate::input::InputError;
use crate::store::StoreDir;

/// Why the facts (or a file they name) cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum FactsError {
    #[error("facts file {source_name}: {source}")]
    Parse {
        source_name: String,
        source: serde_json::Error,
    },
    #[error("facts {field} \"{value}\": {problem}")]
    Field {
        field: String,
        value: String,
        problem: &'static str,
    },
    #[error("facts {field} (user \"{user}\"): group \"{group}\" is not declared in users.groups")]
    UnknownGroup {
        field: String,
        user: String,
        group: String,
    },
    #[error("facts field `{}` ({}): {source}", .file.field(), .file.option())]
    Read { file: FactsFile, source: InputError },
    #[error("facts field `{}` ({}): {} {problem}", .file.field(), .file.option(), .path.display())]
    Content {
        file: FactsFile,
        path: PathBuf,
        problem: String,
    },
}

/// The facts fields that name a file the tool reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactsFile {
    Icon,
    TerminalProfile,
    NixosConfig,
    OobeCommand,
}

impl FactsFile {
    /// The key in the facts file.
    pub fn field(self) -> &'static str {
        match self {
            FactsFile::Icon => "icon",
            FactsFile::TerminalProfile => "terminalProfile",
            FactsFile::NixosConfig => "nixosConfig",
            FactsFile::OobeCommand => "oobeCommand",
        }
    }

    /// The module option that sets it.
    pub fn option(self) -> &'static str {
        match self {
            FactsFile::Icon => "wsl.tarball.icon",
            FactsFile::TerminalProfile => "wsl.tarball.terminalProfileTemplate",
            FactsFile::NixosConfig => "wsl.tarball.configPath",
            FactsFile::OobeCommand => "wsl.tarball.oobe.command",
        }
    }

    /// The most bytes read from one such file: WSL's 1 MiB for the icon and
    /// the terminal profile; 16 MiB for each file of the configuration and
    /// the first-run command.
    pub fn limit(self) -> u64 {
        match self {
            FactsFile::Icon | FactsFile::TerminalProfile => 1 << 20,
            FactsFile::OobeCommand => 16 << 20,
            FactsFile::NixosConfig => 16 << 20,
        }
    }

    /// What the file is, for the size-limit message.
    pub fn what(self) -> &'static str {
        match self {
            FactsFile::Icon => "an icon (WSL's limit)",
            FactsFile::TerminalProfile => "a terminal profile (WSL's limit)",
            FactsFile::NixosConfig => "a file of /etc/nixos",
            FactsFile::OobeCommand => "a first-run command",
        }
    }
}

/// Everything about a NixOS system that the module gathers for the tool, as
/// one JSON file (`system.build.wslTarballFacts`); see the module doc for
/// the schema. Store paths it names are read from the host store; only
/// `system` and its closure go into `/nix/store`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NixosFacts {
    pub system: String,
    #[serde(default)]
    pub users: Option<UsersSpec>,
    #[serde(default)]
    pub init: Option<String>,
    /// `wsl.populateBin`: false leaves `/bin` to another module (envfs).
    #[serde(default = "yes")]
    pub populate_bin: bool,
    /// `wsl.extraBin`, in order; empty means `sh` and `bash` from the system.
    #[serde(default)]
    pub bin: Vec<BinEntry>,
    #[serde(default)]
    pub usr_bin_env: Option<String>,
    /// `/root/.nix-channels`: channel name to URL.
    #[serde(default)]
    pub channels: BTreeMap<String, String>,
    #[serde(default)]
    pub default_name: Option<String>,
    #[serde(default)]
    pub icon: Option<PathBuf>,
    #[serde(default)]
    pub terminal_profile: Option<PathBuf>,
    #[serde(default)]
    pub nixos_config: Option<PathBuf>,
    /// `oobe.defaultUid`: the user WSL starts as once `oobe.command` is done.
    #[serde(default)]
    pub default_uid: Option<u32>,
    /// A program WSL runs as root on the first interactive shell
    /// (`oobe.command`), copied to `/usr/lib/wsl`.
    #[serde(default)]
    pub oobe_command: Option<PathBuf>,
    /// `shortcut.enabled` (WSL's default: true).
    #[serde(default = "yes")]
    pub shortcut_enabled: bool,
    /// `windowsterminal.enabled` (WSL's default: true).
    #[serde(default = "yes")]
    pub windows_terminal_enabled: bool,
    /// The module's `wsl.tarball.compression`, used when no flag overrides it.
    #[serde(default)]
    pub compression: Option<String>,
    #[serde(default)]
    pub level: Option<u32>,
    /// Whether `icon` came with the request (`write`'s icon) rather than
    /// the facts file: its errors then name the file, not a facts field.
    #[serde(skip)]
    pub icon_given: bool,
}

/// One `wsl.extraBin` entry: `/bin/NAME`, a link to `src` or a copy of it.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BinEntry {
    pub name: String,
    pub src: String,
    #[serde(default)]
    pub copy: bool,
}

/// Users and groups, as nixpkgs' `users.users` and `users.groups`. The
/// skeleton is the same for `users.mutableUsers` true and false: a password
/// is left to first boot either way (see the skeleton module).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UsersSpec {
    #[serde(default)]
    pub users: Vec<UserSpec>,
    #[serde(default)]
    pub groups: Vec<GroupSpec>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserSpec {
    pub name: String,
    pub uid: Option<u32>,
    pub group: String,
    #[serde(default)]
    pub description: String,
    pub home: String,
    /// Null as nixpkgs allows: activation keeps a previous shell or sets
    /// nologin.
    #[serde(default)]
    pub shell: Option<String>,
    #[serde(default)]
    pub create_home: bool,
    #[serde(default = "default_home_mode")]
    pub home_mode: String,
    #[serde(default)]
    pub is_normal_user: bool,
    /// `enable = false` users are not created (nixpkgs filters them).
    #[serde(default = "yes")]
    pub enable: bool,
    #[serde(default)]
    pub hashed_password: Option<String>,
    #[serde(default)]
    pub hashed_password_file: Option<String>,
    #[serde(default)]
    pub initial_password: Option<String>,
    #[serde(default)]
    pub initial_hashed_password: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct GroupSpec {
    pub name: String,
    pub gid: Option<u32>,
    #[serde(default)]
    pub members: Vec<String>,
}

fn yes() -> bool {
    true
}

pub(super) fn default_home_mode() -> String {
    "700".to_owned()
}

/// `/` and the system's own directories, which no created home may be.
const SYSTEM_DIRS: &[&str] = &[
    "/", "/bin", "/boot", "/dev", "/etc", "/home", "/mnt", "/nix", "/proc", "/run", "/sbin",
    "/sys", "/tmp", "/usr", "/var",
];
/// Trees that no created home may be inside.
const SYSTEM_TREES: &[&str] = &["/dev", "/etc", "/nix", "/proc", "/sys"];

impl NixosFacts {
    /// Parses and validates a facts file; errors name the file or the field.
    pub fn parse(bytes: &[u8], source_name: &str) -> Result<Self, FactsError> {
        let facts: NixosFacts =
            serde_json::from_slice(bytes).map_err(|source| FactsError::Parse {
                source_name: source_name.to_owned(),
                source,
            })?;
        facts.validate()?;
        Ok(facts)
    }

    /// Facts for a system built without the module: defaults everywhere.
    pub fn defaults(system: &str) -> Self {
        NixosFacts {
            system: system.to_owned(),
            users: None,
            init: None,
            populate_bin: true,
            bin: Vec::new(),
            usr_bin_env: None,
            channels: BTreeMap::new(),
            default_name: None,
            icon: None,
            terminal_profile: None,
            nixos_config: None,
            default_uid: None,
            oobe_command: None,
            shortcut_enabled: true,
            windows_terminal_enabled: true,
            compression: None,
            level: None,
            icon_given: false,
        }
    }

    /// Checks every field that reaches a line or a path of the rootfs.
    pub fn validate(&self) -> Result<(), FactsError> {
        if let Some(users) = &self.users {
            users.validate()?;
        }
        if let Some(init) = &self.init {
            absolute_path("init", init)?;
        }
        if let Some(env) = &self.usr_bin_env {
            absolute_path("usrBinEnv", env)?;
        }
        for (i, entry) in self.bin.iter().enumerate() {
            file_name(&format!("bin[{i}].name"), &entry.name)?;
            absolute_path(&format!("bin[{i}].src"), &entry.src)?;
        }
        for (name, url) in &self.channels {
            if name.is_empty() || name.contains(|c: char| c.is_whitespace() || c.is_control()) {
                return Err(field("channels", name, "a channel name is one word"));
            }
            if url.is_empty() || url.contains(|c: char| c.is_whitespace() || c.is_control()) {
                return Err(field(
                    &format!("channels.{name}"),
                    url,
                    "a channel URL has no spaces or control characters",
                ));
            }
        }
        if let Some(name) = &self.default_name {
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            {
                return Err(field(
                    "defaultName",
                    name,
                    "a WSL distribution name has only letters, digits, '.', '_' and '-' (wsl.tarball.defaultName)",
                ));
            }
        }
        if self.default_uid == Some(u32::MAX) {
            return Err(field(
                "defaultUid",
                &u32::MAX.to_string(),
                "uid 4294967295 is (uid_t)-1, no user (wsl.tarball.oobe.defaultUid)",
            ));
        }
        Ok(())
    }
}

impl UsersSpec {
    fn validate(&self) -> Result<(), FactsError> {
        for (i, user) in self.users.iter().enumerate() {
            let at = |name: &str| format!("users.users[{i}].{name}");
            account_name(&at("name"), &user.name)?;
            account_name(&at("group"), &user.group)?;
            passwd_field(&at("description"), &user.description)?;
            home(
                &at("home"),
                &user.home,
                user.create_home || user.is_normal_user,
            )?;
            if let Some(shell) = &user.shell {
                passwd_field(&at("shell"), shell)?;
                absolute_path(&at("shell"), shell)?;
            }
            if u32::from_str_radix(&user.home_mode, 8).map_or(true, |mode| mode > 0o7777) {
                return Err(field(&at("homeMode"), &user.home_mode, "not an octal mode"));
            }
            for (name, value) in [
                ("hashedPassword", &user.hashed_password),
                ("initialHashedPassword", &user.initial_hashed_password),
                ("hashedPasswordFile", &user.hashed_password_file),
            ] {
                if let Some(value) = value {
                    passwd_field(&at(name), value)?;
                }
            }
        }
        for (i, group) in self.groups.iter().enumerate() {
            account_name(&format!("users.groups[{i}].name"), &group.name)?;
            for (j, member) in group.members.iter().enumerate() {
                account_name(&format!("users.groups[{i}].members[{j}]"), member)?;
            }
        }
        Ok(())
    }
}

fn field(name: &str, value: &str, problem: &'static str) -> FactsError {
    FactsError::Field {
        field: name.to_owned(),
        value: value.to_owned(),
        problem,
    }
}

/// A user or group name: one passwd field, and one item of a group's
/// comma-separated member list.
fn account_name(name: &str, value: &str) -> Result<(), FactsError> {
    if value.is_empty()
        || value == "."
        || value == ".."
        || value.starts_with('-')
        || value
            .contains(|c: char| c.is_control() || c.is_whitespace() || matches!(c, ':' | ',' | '/'))
    {
        return Err(field(
            name,
            value,
            "a user or group name is one word without ':', ',', '/' or control characters",
        ));
    }
    Ok(())
}

/// Text in one field of a passwd, group or shadow line (nixpkgs' `passwdEntry`).
fn passwd_field(name: &str, value: &str) -> Result<(), FactsError> {
    if value.contains(|c: char| c == ':' || c.is_control()) {
        return Err(field(
            name,
            value,
            "a passwd field may not contain ':', a newline or other control characters",
        ));
    }
    Ok(())
}

/// An absolute path without `.`, `..` or empty components.
fn absolute_path(name: &str, value: &str) -> Result<(), FactsError> {
    if !value.starts_with('/') {
        return Err(field(name, value, "not an absolute path"));
    }
    if value.contains(|c: char| c.is_control()) {
        return Err(field(
            name,
            value,
            "a path may not contain control characters",
        ));
    }
    let inner = value.trim_start_matches('/').trim_end_matches('/');
    if !inner.is_empty()
        && inner
            .split('/')
            .any(|component| matches!(component, "" | "." | ".."))
    {
        return Err(field(
            name,
            value,
            "a path may not have empty, '.' or '..' components",
        ));
    }
    Ok(())
}

/// A home directory; one the skeleton creates may not be a system directory.
fn home(name: &str, value: &str, created: bool) -> Result<(), FactsError> {
    passwd_field(name, value)?;
    absolute_path(name, value)?;
    if created {
        let normal = format!("/{}", value.trim_matches('/'));
        if SYSTEM_DIRS.contains(&normal.as_str())
            || SYSTEM_TREES
                .iter()
                .any(|tree| normal.starts_with(&format!("{tree}/")))
        {
            return Err(field(
                name,
                value,
                "a created home may not be /, a system directory or inside /etc, /nix, /dev, /proc or /sys",
            ));
        }
    }
    Ok(())
}

/// A name in `/bin`: one path component.
fn file_name(name: &str, value: &str) -> Result<(), FactsError> {
    if value.is_empty()
        || value == "."
        || value == ".."
        || value.contains(|c: char| c == '/' || c.is_control())
    {
        return Err(field(
            name,
            value,
            "a /bin name is one file name (not '.', '..', and without '/')",
        ));
    }
    Ok(())
}

/// A home inside the configured store directory (when it is not /nix/store,
/// which the checks above already cover).
pub(super) fn home_outside_store(
    field_name: &str,
    value: &str,
    store_dir: &StoreDir,
) -> Result<(), FactsError> {
    let normal = format!("/{}", value.trim_matches('/'));
    if store_dir.contains(&normal) {
        return Err(field(
            field_name,
            value,
            "a created home may not be inside the store",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts_with(extra: serde_json::Value) -> Result<NixosFacts, FactsError> {
        let mut json = serde_json::json!({ "system": "/nix/store/x-system" });
        json.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        NixosFacts::parse(json.to_string().as_bytes(), "test")
    }

    fn user(overrides: serde_json::Value) -> serde_json::Value {
        let mut user = serde_json::json!({
            "name": "alice", "uid": 1000, "group": "users", "description": "",
            "home": "/home/alice", "shell": "/bin/sh", "createHome": true,
            "homeMode": "700", "isNormalUser": true
        });
        user.as_object_mut()
            .unwrap()
            .extend(overrides.as_object().unwrap().clone());
        serde_json::json!({ "users": { "users": [user], "groups": [] } })
    }

    #[test]
    fn a_colon_or_newline_in_a_passwd_field_is_refused_by_name() {
        for (key, value) in [
            ("name", "evil:x:0:0::/:/bin/sh"),
            ("description", "x\nevil:x:0:0::/:/bin/sh"),
            ("shell", "/bin/sh\nevil"),
            ("hashedPassword", "x:0"),
        ] {
            let error = facts_with(user(serde_json::json!({ key: value }))).unwrap_err();
            let message = error.to_string();
            assert!(
                message.starts_with(&format!("facts users.users[0].{key} ")),
                "{message}"
            );
            assert!(message.contains(&format!("\"{value}\"")), "{message}");
        }
    }

    #[test]
    fn homes_outside_their_place_are_refused() {
        for home in [
            "/../../etc/x",
            "/",
            "/etc",
            "/nix/store",
            "/nix/store/x",
            "home/a",
            "/home/./a",
        ] {
            let error = facts_with(user(serde_json::json!({ "home": home }))).unwrap_err();
            assert!(
                error
                    .to_string()
                    .starts_with(&format!("facts users.users[0].home \"{home}\": ")),
                "{error}"
            );
        }
        // A system user's home that is not created may be a system directory.
        facts_with(user(serde_json::json!({
            "home": "/", "createHome": false, "isNormalUser": false
        })))
        .unwrap();
        assert!(
            home_outside_store("h", "/gnu/store/x", &StoreDir::new("/gnu/store").unwrap()).is_err()
        );
        assert!(home_outside_store("h", "/home/x", &StoreDir::new("/gnu/store").unwrap()).is_ok());
    }

    #[test]
    fn bin_names_and_distribution_names_are_checked() {
        let error = facts_with(serde_json::json!({
            "bin": [{ "name": "..", "src": "/nix/store/x/bin/sh" }]
        }))
        .unwrap_err();
        assert!(
            error.to_string().starts_with("facts bin[0].name \"..\": "),
            "{error}"
        );
        let error = facts_with(serde_json::json!({ "defaultName": "NixOS\nicon=/etc/shadow" }))
            .unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("facts defaultName \"NixOS\nicon=/etc/shadow\": "),
            "{error}"
        );
        facts_with(serde_json::json!({ "defaultName": "NixOS-25.11_x" })).unwrap();
    }

    #[test]
    fn an_unknown_user_field_is_named() {
        let error = facts_with(user(serde_json::json!({ "hashedPasword": "x" }))).unwrap_err();
        let message = error.to_string();
        assert!(
            message.starts_with("facts file test: unknown field `hashedPasword`"),
            "{message}"
        );
    }

    #[test]
    fn a_null_shell_and_disabled_users_parse() {
        let facts =
            facts_with(user(serde_json::json!({ "shell": null, "enable": false }))).unwrap();
        let user = &facts.users.unwrap().users[0];
        assert_eq!((user.shell.as_deref(), user.enable), (None, false));
    }
}
