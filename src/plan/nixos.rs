//! The NixOS skeleton: the files upstream gets from running activation in a
//! chroot as root, made statically from the system's own files.
//!
//! Facts matched (not code): nixpkgs' `setup-etc.pl` makes `/etc/static`
//! point at the system's etc tree, symlinks every entry of it as
//! `/etc/NAME -> /etc/static/NAME`, copies entries that have a `NAME.mode`
//! companion with that mode and owner (or links them straight into the store
//! for `direct-symlink`), records the copies in `/etc/.clean` and creates
//! `/etc/NIXOS`. `update-users-groups.pl` writes `/etc/passwd` and
//! `/etc/group` sorted by id, allocating missing ids (normal users from 1000
//! up, system users and groups from 999 down). NixOS-WSL links `/sbin/init` to
//! its systemd shim, `/bin/sh` to its shell wrapper and `/usr/bin/env` to
//! coreutils. Full activation still runs at first boot, through that shim.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::PlanError;
use crate::entry::Entry;
use crate::walk::walk_tree;

/// Facts about the NixOS system that the module (or the `build` command)
/// gathers and hands over.
#[derive(Debug, Clone, Default)]
pub struct NixosInputs {
    /// Users and groups; root alone when absent.
    pub users: Option<UsersSpec>,
    /// `/sbin/init` target; default `<system>/init`.
    pub init: Option<String>,
    /// Extra `/bin` links, `NAME -> TARGET` (`/bin/sh` among them); default
    /// `sh` and `bash` from `<system>/sw/bin`.
    pub bin: Vec<(String, String)>,
    /// `/usr/bin/env` target; default `<system>/sw/bin/env`.
    pub usr_bin_env: Option<String>,
    /// `oobe.defaultName` of `/etc/wsl-distribution.conf`.
    pub default_name: String,
    /// An `.ico` for the Start menu shortcut, at most 1 MiB.
    pub icon: Option<PathBuf>,
    /// A Windows Terminal profile template (JSON).
    pub terminal_profile: Option<PathBuf>,
    /// `/etc/nixos`: a `configuration.nix` file or a directory copied whole.
    pub nixos_config: Option<PathBuf>,
}

/// Users and groups, as the NixOS module writes them from `users.users` and
/// `users.groups`:
///
/// ```json
/// {"users": [{"name": "nixos", "uid": 1000, "group": "users", "description": "",
///             "home": "/home/nixos", "shell": "/run/current-system/sw/bin/bash",
///             "createHome": true, "homeMode": "700", "isNormalUser": true}],
///  "groups": [{"name": "users", "gid": 100, "members": ["nixos"]}]}
/// ```
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct UsersSpec {
    #[serde(default)]
    pub users: Vec<UserSpec>,
    #[serde(default)]
    pub groups: Vec<GroupSpec>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct UserSpec {
    pub name: String,
    pub uid: Option<u32>,
    pub group: String,
    #[serde(default)]
    pub description: String,
    pub home: String,
    pub shell: String,
    #[serde(default)]
    pub create_home: bool,
    #[serde(default = "default_home_mode")]
    pub home_mode: String,
    #[serde(default)]
    pub is_normal_user: bool,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct GroupSpec {
    pub name: String,
    pub gid: Option<u32>,
    #[serde(default)]
    pub members: Vec<String>,
}

/// Everything about a NixOS system that the module gathers for the tool, as
/// one JSON file (`system.build.wslTarballFacts`). Store paths it names are
/// read from the host store; only `system` and its closure go into
/// `/nix/store`.
///
/// ```json
/// {"system": "/nix/store/…-nixos-system-nixos-wsl-25.11",
///  "users": {"users": […], "groups": […]},
///  "init": "/nix/store/…-utils/bin/systemd-shim",
///  "bin": {"sh": "/nix/store/…-sh/bin/sh"},
///  "usrBinEnv": "/nix/store/…-coreutils/bin/env",
///  "defaultName": "NixOS", "icon": "/nix/store/…-NixOS-WSL.ico",
///  "terminalProfile": null, "nixosConfig": "/nix/store/…-configuration.nix",
///  "compression": "gzip", "level": null}
/// ```
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NixosFacts {
    pub system: String,
    #[serde(default)]
    pub users: Option<UsersSpec>,
    #[serde(default)]
    pub init: Option<String>,
    #[serde(default)]
    pub bin: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub usr_bin_env: Option<String>,
    #[serde(default)]
    pub default_name: Option<String>,
    #[serde(default)]
    pub icon: Option<PathBuf>,
    #[serde(default)]
    pub terminal_profile: Option<PathBuf>,
    #[serde(default)]
    pub nixos_config: Option<PathBuf>,
    /// The module's `wsl.tarball.compression`, used when no flag overrides it.
    #[serde(default)]
    pub compression: Option<String>,
    #[serde(default)]
    pub level: Option<u32>,
}

impl NixosFacts {
    /// Parses a facts file; the error names it.
    pub fn parse(bytes: &[u8], source_name: &str) -> Result<Self, PlanError> {
        serde_json::from_slice(bytes)
            .map_err(|e| PlanError::Nixos(format!("facts file {source_name}: {e}")))
    }

    /// The skeleton inputs these facts describe.
    pub fn nixos_inputs(&self) -> NixosInputs {
        NixosInputs {
            users: self.users.clone(),
            init: self.init.clone(),
            bin: self.bin.clone().into_iter().collect(),
            usr_bin_env: self.usr_bin_env.clone(),
            default_name: self
                .default_name
                .clone()
                .unwrap_or_else(|| "NixOS".to_owned()),
            icon: self.icon.clone(),
            terminal_profile: self.terminal_profile.clone(),
            nixos_config: self.nixos_config.clone(),
        }
    }
}

fn default_home_mode() -> String {
    "700".to_owned()
}

/// Largest icon WSL accepts for `shortcut.icon`.
pub const MAX_ICON_BYTES: u64 = 1 << 20;
/// Where Microsoft's guidance puts distribution assets.
const WSL_SHARE: &str = "usr/share/wsl";

/// The skeleton's entries (unsorted; the plan orders them).
pub fn nixos_skeleton(
    inputs: &NixosInputs,
    system_host_path: &Path,
    system_store_path: &str,
    store_dir: &str,
    store_source: &Path,
) -> Result<Vec<Entry>, PlanError> {
    let mut entries = Vec::new();
    for (dir, mode) in [
        ("bin", 0o755),
        ("dev", 0o755),
        ("etc", 0o755),
        ("home", 0o755),
        ("mnt", 0o755),
        ("proc", 0o555),
        ("root", 0o700),
        ("run", 0o755),
        ("sbin", 0o755),
        ("sys", 0o555),
        ("tmp", 0o1777),
        ("usr", 0o755),
        ("usr/bin", 0o755),
        ("var", 0o755),
    ] {
        entries.push(Entry::directory(dir, mode));
    }
    let sw_bin = |name: &str| format!("{system_store_path}/sw/bin/{name}");
    entries.push(Entry::symlink(
        "sbin/init",
        inputs
            .init
            .clone()
            .unwrap_or_else(|| format!("{system_store_path}/init")),
    ));
    let bin_links = if inputs.bin.is_empty() {
        vec![
            ("sh".to_owned(), sw_bin("sh")),
            ("bash".to_owned(), sw_bin("bash")),
        ]
    } else {
        inputs.bin.clone()
    };
    for (name, target) in bin_links {
        if name.is_empty() || name.contains('/') {
            return Err(PlanError::Nixos(format!(
                "--bin name {name:?} must be a plain file name"
            )));
        }
        entries.push(Entry::symlink(format!("bin/{name}"), target));
    }
    entries.push(Entry::symlink(
        "usr/bin/env",
        inputs.usr_bin_env.clone().unwrap_or_else(|| sw_bin("env")),
    ));

    add_etc(&mut entries, system_host_path, store_dir, store_source)?;
    let no_users = UsersSpec {
        users: Vec::new(),
        groups: Vec::new(),
    };
    add_users(&mut entries, inputs.users.as_ref().unwrap_or(&no_users))?;
    add_distribution_conf(&mut entries, inputs)?;
    if let Some(config) = &inputs.nixos_config {
        add_nixos_config(&mut entries, config)?;
    }
    Ok(entries)
}

/// `/etc/static`, the links and copies of setup-etc, `/etc/.clean`, `/etc/NIXOS`.
fn add_etc(
    entries: &mut Vec<Entry>,
    system_host_path: &Path,
    store_dir: &str,
    store_source: &Path,
) -> Result<(), PlanError> {
    let etc_link = system_host_path.join("etc");
    let etc_target = fs::read_link(&etc_link).map_err(|e| {
        PlanError::Nixos(format!(
            "{}: the system has no etc link: {e}",
            etc_link.display()
        ))
    })?;
    let etc_target_text = etc_target.to_string_lossy().into_owned();
    let relative = etc_target_text
        .strip_prefix(store_dir)
        .and_then(|r| r.strip_prefix('/'))
        .ok_or_else(|| {
            PlanError::Nixos(format!(
                "{} points at {etc_target_text}, outside {store_dir}",
                etc_link.display()
            ))
        })?;
    let etc_host = store_source.join(relative);
    entries.push(Entry::symlink("etc/static", etc_target_text.as_bytes()));
    entries.push(Entry::inline_file("etc/NIXOS", Vec::new(), 0o644));

    let walked = walk_tree(&etc_host, b"").map_err(|source| PlanError::StorePath {
        path: etc_host.display().to_string(),
        source,
    })?;
    let mut copied = Vec::new();
    let names: BTreeSet<Vec<u8>> = walked.iter().map(|e| e.path.clone()).collect();
    for walked_entry in walked.iter().skip(1) {
        let name = &walked_entry.path;
        let mut target = b"etc/".to_vec();
        target.extend_from_slice(name);
        let companion = |suffix: &str| {
            let mut companion = name.clone();
            companion.extend_from_slice(suffix.as_bytes());
            companion
        };
        let host = etc_host.join(std::ffi::OsStr::from_bytes(name));
        if names.contains(&companion(".mode")) {
            let read_companion = |suffix: &str| -> Result<String, PlanError> {
                let path = etc_host.join(std::ffi::OsStr::from_bytes(&companion(suffix)));
                fs::read_to_string(&path)
                    .map(|text| text.trim().to_owned())
                    .map_err(|e| PlanError::Nixos(format!("{}: {e}", path.display())))
            };
            let mode = read_companion(".mode")?;
            if mode == "direct-symlink" {
                let store_target = fs::read_link(&host)
                    .map_err(|e| PlanError::Nixos(format!("{}: {e}", host.display())))?;
                entries.push(Entry::symlink(target, store_target.as_os_str().as_bytes()));
            } else {
                let bits = u32::from_str_radix(&mode, 8).map_err(|_| {
                    PlanError::Nixos(format!(
                        "{}.mode holds {mode:?}, not an octal mode",
                        host.display()
                    ))
                })?;
                let bytes = fs::read(&host)
                    .map_err(|e| PlanError::Nixos(format!("{}: {e}", host.display())))?;
                let mut entry = Entry::inline_file(target, bytes, bits);
                entry.uid = numeric_owner(&read_companion(".uid")?)?;
                entry.gid = numeric_owner(&read_companion(".gid")?)?;
                entries.push(entry);
            }
            copied.push(String::from_utf8_lossy(name).into_owned());
        } else if matches!(walked_entry.kind, crate::entry::EntryKind::Symlink { .. }) {
            let mut static_target = b"/etc/static/".to_vec();
            static_target.extend_from_slice(name);
            entries.push(Entry::symlink(target, static_target));
        }
        // Parents of every created entry are directories in /etc.
        let mut parent = b"etc".to_vec();
        for component in name
            .split(|&b| b == b'/')
            .collect::<Vec<_>>()
            .split_last()
            .map_or(&[][..], |(_, p)| p)
        {
            parent.push(b'/');
            parent.extend_from_slice(component);
            entries.push(Entry::directory(parent.clone(), 0o755));
        }
    }
    copied.sort();
    let clean: String = copied.iter().map(|name| format!("{name}\n")).collect();
    entries.push(Entry::inline_file("etc/.clean", clean.into_bytes(), 0o644));
    Ok(())
}

/// setup-etc reads `+N` as a numeric id; names need the passwd database,
/// which the rootfs only has after activation, so only root's is known.
fn numeric_owner(text: &str) -> Result<u32, PlanError> {
    match text.strip_prefix('+') {
        Some(number) => number
            .parse()
            .map_err(|_| PlanError::Nixos(format!("owner {text:?} is not +NUMBER"))),
        None if text == "root" => Ok(0),
        None => Err(PlanError::Nixos(format!(
            "owner {text:?} of a copied /etc file must be numeric (+N) or root"
        ))),
    }
}

/// `/etc/passwd`, `/etc/group`, `/etc/shadow` (no hashes) and home directories.
fn add_users(entries: &mut Vec<Entry>, spec: &UsersSpec) -> Result<(), PlanError> {
    let mut users = spec.users.clone();
    if !users.iter().any(|u| u.name == "root") {
        users.push(UserSpec {
            name: "root".into(),
            uid: Some(0),
            group: "root".into(),
            description: "System administrator".into(),
            home: "/root".into(),
            shell: "/run/current-system/sw/bin/bash".into(),
            create_home: false,
            home_mode: default_home_mode(),
            is_normal_user: false,
        });
    }
    let mut groups = spec.groups.clone();
    if !groups.iter().any(|g| g.name == "root") {
        groups.push(GroupSpec {
            name: "root".into(),
            gid: Some(0),
            members: Vec::new(),
        });
    }
    allocate_ids(users.iter_mut().map(|u| (&mut u.uid, u.is_normal_user)));
    allocate_ids(groups.iter_mut().map(|g| (&mut g.gid, false)));
    users.sort_by_key(|u| (u.uid, u.name.clone()));
    groups.sort_by_key(|g| (g.gid, g.name.clone()));

    let gid_of = |group: &str, user: &str| {
        groups
            .iter()
            .find(|g| g.name == group)
            .and_then(|g| g.gid)
            .ok_or_else(|| {
                PlanError::Nixos(format!("user {user}: group {group:?} is not declared"))
            })
    };
    let mut passwd = String::new();
    let mut shadow = String::new();
    for user in &users {
        let uid = user.uid.unwrap_or_default();
        let gid = gid_of(&user.group, &user.name)?;
        passwd.push_str(&format!(
            "{}:x:{uid}:{gid}:{}:{}:{}\n",
            user.name, user.description, user.home, user.shell
        ));
        shadow.push_str(&format!("{}:!:1::::::\n", user.name));
        if (user.create_home || user.is_normal_user)
            && user.home.starts_with('/')
            && user.home != "/var/empty"
        {
            let mode = u32::from_str_radix(&user.home_mode, 8).map_err(|_| {
                PlanError::Nixos(format!(
                    "user {}: homeMode {:?} is not octal",
                    user.name, user.home_mode
                ))
            })?;
            let path = user.home.trim_start_matches('/').trim_end_matches('/');
            let mut parent = String::new();
            for component in path
                .split('/')
                .collect::<Vec<_>>()
                .split_last()
                .map_or(&[][..], |(_, p)| p)
            {
                if !parent.is_empty() {
                    parent.push('/');
                }
                parent.push_str(component);
                entries.push(Entry::directory(parent.clone(), 0o755));
            }
            let mut home = Entry::directory(path, mode);
            home.uid = uid;
            home.gid = gid;
            entries.push(home);
        }
    }
    let group_text: String = groups
        .iter()
        .map(|g| {
            format!(
                "{}:x:{}:{}\n",
                g.name,
                g.gid.unwrap_or_default(),
                g.members.join(",")
            )
        })
        .collect();
    entries.push(Entry::inline_file("etc/passwd", passwd.into_bytes(), 0o644));
    entries.push(Entry::inline_file(
        "etc/group",
        group_text.into_bytes(),
        0o644,
    ));
    entries.push(Entry::inline_file("etc/shadow", shadow.into_bytes(), 0o600));
    Ok(())
}

/// Fills missing ids the way update-users-groups does: normal users from 1000
/// up, everything else from 999 down, skipping ids already taken.
fn allocate_ids<'a>(ids: impl Iterator<Item = (&'a mut Option<u32>, bool)>) {
    let ids: Vec<_> = ids.collect();
    let mut taken: BTreeSet<u32> = ids.iter().filter_map(|(id, _)| **id).collect();
    let mut next_normal = 1000;
    let mut next_system = 999;
    for (id, normal) in ids {
        if id.is_some() {
            continue;
        }
        let next = if normal {
            &mut next_normal
        } else {
            &mut next_system
        };
        while taken.contains(next) {
            if normal {
                *next += 1;
            } else {
                *next -= 1;
            }
        }
        *id = Some(*next);
        taken.insert(*next);
    }
}

/// `/etc/wsl-distribution.conf` and the assets it names under /usr/share/wsl.
fn add_distribution_conf(entries: &mut Vec<Entry>, inputs: &NixosInputs) -> Result<(), PlanError> {
    let mut conf = format!("[oobe]\ndefaultName={}\n", inputs.default_name);
    entries.push(Entry::directory("usr/share", 0o755));
    entries.push(Entry::directory(WSL_SHARE, 0o755));
    if let Some(icon) = &inputs.icon {
        let bytes = fs::read(icon)
            .map_err(|e| PlanError::Nixos(format!("--icon {}: {e}", icon.display())))?;
        if bytes.len() as u64 > MAX_ICON_BYTES {
            return Err(PlanError::Nixos(format!(
                "--icon {} is {} bytes; WSL accepts at most 1 MiB",
                icon.display(),
                bytes.len()
            )));
        }
        if !bytes.starts_with(&[0, 0, 1, 0]) {
            return Err(PlanError::Nixos(format!(
                "--icon {} is not an .ico file",
                icon.display()
            )));
        }
        entries.push(Entry::inline_file(
            format!("{WSL_SHARE}/nixos.ico"),
            bytes,
            0o644,
        ));
        conf.push_str(&format!("\n[shortcut]\nicon=/{WSL_SHARE}/nixos.ico\n"));
    }
    if let Some(profile) = &inputs.terminal_profile {
        let bytes = fs::read(profile).map_err(|e| {
            PlanError::Nixos(format!("--terminal-profile {}: {e}", profile.display()))
        })?;
        serde_json::from_slice::<serde_json::Value>(&bytes).map_err(|e| {
            PlanError::Nixos(format!(
                "--terminal-profile {} is not JSON: {e}",
                profile.display()
            ))
        })?;
        entries.push(Entry::inline_file(
            format!("{WSL_SHARE}/terminal-profile.json"),
            bytes,
            0o644,
        ));
        conf.push_str(&format!(
            "\n[windowsterminal]\nprofileTemplate=/{WSL_SHARE}/terminal-profile.json\n"
        ));
    }
    entries.push(Entry::inline_file(
        "etc/wsl-distribution.conf",
        conf.into_bytes(),
        0o644,
    ));
    Ok(())
}

/// `/etc/nixos`: a single configuration.nix, or a directory copied with
/// writable modes (as upstream's `cp -R … && chmod -R u+w`).
fn add_nixos_config(entries: &mut Vec<Entry>, config: &Path) -> Result<(), PlanError> {
    entries.push(Entry::directory("etc/nixos", 0o755));
    if config.is_dir() {
        let walked = walk_tree(config, b"etc/nixos").map_err(|source| PlanError::StorePath {
            path: config.display().to_string(),
            source,
        })?;
        for mut entry in walked.into_iter().skip(1) {
            entry.mode |= 0o200;
            entries.push(entry);
        }
    } else {
        let bytes = fs::read(config)
            .map_err(|e| PlanError::Nixos(format!("--nixos-config {}: {e}", config.display())))?;
        entries.push(Entry::inline_file(
            "etc/nixos/configuration.nix",
            bytes,
            0o644,
        ));
    }
    Ok(())
}
