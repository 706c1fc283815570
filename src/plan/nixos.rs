//! The NixOS skeleton: the files upstream gets from running activation in a
//! chroot as root, made statically from the system's own files and the
//! validated facts (see [`super::facts`]).
//!
//! Facts matched (not code): nixpkgs' `setup-etc.pl` makes `/etc/static`
//! point at the system's etc tree, symlinks every entry of it as
//! `/etc/NAME -> /etc/static/NAME`, copies entries that have a `NAME.mode`
//! companion with that mode and owner (`+N` or a user/group name, resolved
//! against the system's own users and groups; or links them straight into
//! the store for `direct-symlink`), records the copies in `/etc/.clean` and
//! creates `/etc/NIXOS`. `update-users-groups.pl` writes `/etc/passwd` and
//! `/etc/group` sorted by id, allocating missing ids (normal users from 1000
//! up, system users and groups from 999 down), and `/etc/shadow` 0640
//! root:shadow. A password option only reaches `/etc/shadow` through that
//! script, at first boot: a user whose password comes from
//! `hashedPassword`, `hashedPasswordFile` or `password` gets no shadow line
//! (the script adds it), one whose password comes from `initialPassword` or
//! `initialHashedPassword` gets no passwd line either (the script applies
//! those only to users it creates). No hash is chosen, salted or written at
//! build time. NixOS-WSL links `/sbin -> /bin` and `/bin/init` to its
//! systemd shim (a real `/sbin` with `/sbin/init` when `populateBin` is
//! off), fills `/bin` from `wsl.extraBin`, `/usr/bin/env` to coreutils, and
//! adds the `nixos-wsl` channel next to `nixos` in `/root/.nix-channels`.
//! Full activation still runs at first boot, through that shim.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::facts::{self, BinEntry, FactsError, FactsFile, GroupSpec, NixosFacts, UserSpec};
use super::PlanError;
use crate::entry::{Content, Entry, EntryKind};
use crate::input::read_limited;
use crate::store::StoreDir;
use crate::walk::walk_tree;

/// What the skeleton is made from: validated facts, with defaults filled in.
#[derive(Debug, Clone)]
pub struct NixosInputs {
    /// Whether the users and groups come from the module (false for a
    /// skeleton of defaults, which knows only root).
    pub users_known: bool,
    /// Users and groups (enabled ones; root added when absent).
    pub users: Vec<UserSpec>,
    pub groups: Vec<GroupSpec>,
    /// `/sbin/init` target; default `<system>/init`.
    pub init: Option<String>,
    /// Whether `/bin` is filled (NixOS-WSL's `wsl.populateBin`).
    pub populate_bin: bool,
    /// `/bin` entries in `wsl.extraBin` order; default `sh` and `bash` from
    /// `<system>/sw/bin`.
    pub bin: Vec<BinEntry>,
    /// `/usr/bin/env` target; default `<system>/sw/bin/env`.
    pub usr_bin_env: Option<String>,
    /// `/root/.nix-channels`, name to URL.
    pub channels: BTreeMap<String, String>,
    /// `oobe.defaultName` of `/etc/wsl-distribution.conf`.
    pub default_name: String,
    /// An `.ico` for the Start menu shortcut, at most 1 MiB.
    pub icon: Option<PathBuf>,
    /// The icon came with the request, not the facts (see
    /// [`NixosFacts::icon_given`]).
    pub icon_given: bool,
    /// A Windows Terminal profile template (JSON), at most 1 MiB.
    pub terminal_profile: Option<PathBuf>,
    /// `/etc/nixos`: a `configuration.nix` file or a directory copied whole.
    pub nixos_config: Option<PathBuf>,
    /// `oobe.defaultUid`.
    pub default_uid: Option<u32>,
    /// The program `oobe.command` names, copied to [`OOBE_COMMAND`].
    pub oobe_command: Option<PathBuf>,
    /// `shortcut.enabled` and `windowsterminal.enabled` (written when false).
    pub shortcut_enabled: bool,
    pub windows_terminal_enabled: bool,
}

impl NixosFacts {
    /// The skeleton inputs these facts describe; users with `enable =
    /// false` are left out, as nixpkgs' users-groups.nix filters them.
    pub fn nixos_inputs(&self) -> NixosInputs {
        let (users, groups) = match &self.users {
            Some(spec) => (
                spec.users.iter().filter(|u| u.enable).cloned().collect(),
                spec.groups.clone(),
            ),
            None => (Vec::new(), Vec::new()),
        };
        NixosInputs {
            users_known: self.users.is_some(),
            users,
            groups,
            init: self.init.clone(),
            populate_bin: self.populate_bin,
            bin: self.bin.clone(),
            usr_bin_env: self.usr_bin_env.clone(),
            channels: self.channels.clone(),
            default_name: self
                .default_name
                .clone()
                .unwrap_or_else(|| "NixOS".to_owned()),
            icon: self.icon.clone(),
            icon_given: self.icon_given,
            terminal_profile: self.terminal_profile.clone(),
            nixos_config: self.nixos_config.clone(),
            default_uid: self.default_uid,
            oobe_command: self.oobe_command.clone(),
            shortcut_enabled: self.shortcut_enabled,
            windows_terminal_enabled: self.windows_terminal_enabled,
        }
    }
}

/// Where Microsoft's guidance puts distribution assets.
const WSL_LIB: &str = "usr/lib/wsl";
/// Where the first-run program goes (0755 root), named by `oobe.command`.
pub const OOBE_COMMAND: &str = "usr/lib/wsl/first-run";
/// Where activation sets a user's shell when none is declared.
const NOLOGIN: &str = "/run/current-system/sw/bin/nologin";

/// Whether the system at `host_path` is a NixOS toplevel (it has `init`,
/// `etc` and `sw`), which `write` gives the skeleton by default.
pub fn is_nixos_toplevel(host_path: &Path) -> bool {
    ["init", "etc", "sw"]
        .iter()
        .all(|name| fs::symlink_metadata(host_path.join(name)).is_ok())
}

/// The skeleton's entries (unsorted; the plan orders them).
pub fn nixos_skeleton(
    inputs: &NixosInputs,
    system_host_path: &Path,
    system_store_path: &str,
    store_dir: &StoreDir,
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
        ("sys", 0o555),
        ("tmp", 0o1777),
        ("usr", 0o755),
        ("usr/bin", 0o755),
        ("var", 0o755),
    ] {
        entries.push(Entry::directory(dir, mode));
    }
    let sw_bin = |name: &str| format!("{system_store_path}/sw/bin/{name}");
    let init = inputs
        .init
        .clone()
        .unwrap_or_else(|| format!("{system_store_path}/init"));
    if inputs.populate_bin {
        // createSbin and shimSystemd: /sbin -> /bin, so the shim is /bin/init.
        entries.push(Entry::symlink("sbin", "/bin"));
        entries.push(Entry::symlink("bin/init", init));
        let defaults =
            [("sh", sw_bin("sh")), ("bash", sw_bin("bash"))].map(|(name, src)| BinEntry {
                name: name.to_owned(),
                src,
                copy: false,
            });
        let listed = if inputs.bin.is_empty() {
            &defaults[..]
        } else {
            &inputs.bin[..]
        };
        // `ln -sf`/`cp -f` in order: the last of a name wins.
        let mut bin: BTreeMap<&str, &BinEntry> = BTreeMap::new();
        for entry in listed {
            bin.insert(&entry.name, entry);
        }
        // shimSystemd runs after populateBin: /bin/init stays the shim.
        bin.remove("init");
        for entry in bin.values() {
            let path = format!("bin/{}", entry.name);
            if entry.copy {
                let index = listed.iter().rposition(|e| e.name == entry.name);
                entries.push(copied_file(
                    path,
                    &entry.src,
                    store_dir,
                    store_source,
                    index.unwrap_or_default(),
                )?);
            } else {
                entries.push(Entry::symlink(path, entry.src.as_bytes()));
            }
        }
    } else {
        // /bin is another module's (envfs); nixpkgs' binsh still makes /bin/sh.
        entries.push(Entry::directory("sbin", 0o755));
        entries.push(Entry::symlink("sbin/init", init));
        entries.push(Entry::symlink("bin/sh", sw_bin("sh")));
    }
    entries.push(Entry::symlink(
        "usr/bin/env",
        inputs.usr_bin_env.clone().unwrap_or_else(|| sw_bin("env")),
    ));

    let accounts = Accounts::new(inputs, store_dir)?;
    add_etc(
        &mut entries,
        system_host_path,
        store_dir,
        store_source,
        &accounts,
    )?;
    accounts.add_entries(&mut entries);
    add_channels(&mut entries, &inputs.channels);
    add_distribution_conf(&mut entries, inputs)?;
    if let Some(config) = &inputs.nixos_config {
        add_nixos_config(&mut entries, config)?;
    }
    Ok(entries)
}

/// A `copy = true` entry of `wsl.extraBin`: the file `src` (followed, as
/// `cp -f` does) read from the host store.
fn copied_file(
    path: String,
    src: &str,
    store_dir: &StoreDir,
    store_source: &Path,
    index: usize,
) -> Result<Entry, PlanError> {
    let bad = |problem: &'static str| {
        PlanError::Facts(FactsError::Field {
            field: format!("bin[{index}].src"),
            value: src.to_owned(),
            problem,
        })
    };
    let relative = src
        .strip_prefix(store_dir.as_str())
        .and_then(|r| r.strip_prefix('/'))
        .ok_or_else(|| bad("copy = true needs a file in the store"))?;
    let host = store_source.join(relative);
    let metadata = fs::metadata(&host).map_err(|_| bad("copy = true: cannot read this file"))?;
    if !metadata.is_file() {
        return Err(bad("copy = true: not a regular file"));
    }
    Ok(Entry {
        path: path.into_bytes(),
        kind: EntryKind::File {
            size: metadata.len(),
            content: Content::Disk(host),
        },
        mode: metadata.mode() & 0o777,
        uid: 0,
        gid: 0,
    })
}

/// `/etc/static`, the links and copies of setup-etc, `/etc/.clean`, `/etc/NIXOS`.
fn add_etc(
    entries: &mut Vec<Entry>,
    system_host_path: &Path,
    store_dir: &StoreDir,
    store_source: &Path,
    accounts: &Accounts,
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
        .strip_prefix(store_dir.as_str())
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
                        "{}.mode holds \"{mode}\", not an octal mode",
                        host.display()
                    ))
                })?;
                let bytes = fs::read(&host)
                    .map_err(|e| PlanError::Nixos(format!("{}: {e}", host.display())))?;
                let mut entry = Entry::inline_file(target, bytes, bits);
                let owner_of = |suffix: &str, kind: OwnerKind| -> Result<u32, PlanError> {
                    let text = read_companion(suffix)?;
                    accounts.owner(&text, kind).ok_or_else(|| {
                        let file = format!("{}{suffix}", host.display());
                        if accounts.known {
                            PlanError::Nixos(format!(
                                "{file} names {} \"{text}\", which the system's users.{} do not declare",
                                kind.noun(),
                                kind.option()
                            ))
                        } else {
                            PlanError::OwnerWithoutFacts {
                                file,
                                kind: kind.noun(),
                                name: text,
                            }
                        }
                    })
                };
                entry.uid = owner_of(".uid", OwnerKind::User)?;
                entry.gid = owner_of(".gid", OwnerKind::Group)?;
                entries.push(entry);
            }
            copied.push(String::from_utf8_lossy(name).into_owned());
        } else if matches!(walked_entry.kind, EntryKind::Symlink { .. }) {
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

#[derive(Clone, Copy)]
enum OwnerKind {
    User,
    Group,
}

impl OwnerKind {
    fn noun(self) -> &'static str {
        match self {
            OwnerKind::User => "user",
            OwnerKind::Group => "group",
        }
    }
    fn option(self) -> &'static str {
        match self {
            OwnerKind::User => "users",
            OwnerKind::Group => "groups",
        }
    }
}

/// How much of a user first-boot activation has to create for its password
/// option to take effect (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FirstBoot {
    /// Nothing: the configuration asks for no password (`!`).
    Nothing,
    /// The `/etc/shadow` line: `hashedPassword`, `hashedPasswordFile`, `password`.
    ShadowLine,
    /// The user: `initialPassword`, `initialHashedPassword` apply to new users only.
    User,
}

impl FirstBoot {
    /// What update-users-groups.pl does for a user new to `/etc/passwd`.
    fn of(user: &UserSpec) -> Self {
        let locked = |hash: &str| hash == "!";
        if user.hashed_password_file.is_some() || user.password.is_some() {
            return FirstBoot::ShadowLine;
        }
        match (
            &user.hashed_password,
            &user.initial_password,
            &user.initial_hashed_password,
        ) {
            (Some(hash), _, _) if locked(hash) => FirstBoot::Nothing,
            (Some(_), _, _) => FirstBoot::ShadowLine,
            (None, Some(_), _) => FirstBoot::User,
            (None, None, Some(hash)) if !locked(hash) => FirstBoot::User,
            _ => FirstBoot::Nothing,
        }
    }
}

/// The system's users and groups with their ids allocated.
struct Accounts {
    /// Declared by the module; otherwise only root (a skeleton of defaults).
    known: bool,
    users: Vec<UserSpec>,
    groups: Vec<GroupSpec>,
}

impl Accounts {
    fn new(inputs: &NixosInputs, store_dir: &StoreDir) -> Result<Self, PlanError> {
        let mut users = inputs.users.clone();
        if !users.iter().any(|u| u.name == "root") {
            users.push(UserSpec {
                name: "root".into(),
                uid: Some(0),
                group: "root".into(),
                description: "System administrator".into(),
                home: "/root".into(),
                shell: Some("/run/current-system/sw/bin/bash".into()),
                create_home: false,
                home_mode: facts::default_home_mode(),
                is_normal_user: false,
                enable: true,
                hashed_password: None,
                hashed_password_file: None,
                initial_password: None,
                initial_hashed_password: None,
                password: None,
            });
        }
        let mut groups = inputs.groups.clone();
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
        let accounts = Accounts {
            known: inputs.users_known,
            users,
            groups,
        };
        for (i, user) in accounts.users.iter().enumerate() {
            if accounts.gid(&user.group).is_none() {
                return Err(PlanError::Facts(FactsError::UnknownGroup {
                    field: format!("users.users[{i}].group"),
                    user: user.name.clone(),
                    group: user.group.clone(),
                }));
            }
            if user.creates_home() {
                facts::home_outside_store(&format!("users.users[{i}].home"), &user.home, store_dir)
                    .map_err(PlanError::Facts)?;
            }
        }
        Ok(accounts)
    }

    fn gid(&self, group: &str) -> Option<u32> {
        self.groups
            .iter()
            .find(|g| g.name == group)
            .and_then(|g| g.gid)
    }

    /// An owner as setup-etc reads it: `+N`, or a name (getpwnam/getgrnam).
    /// A user first boot creates resolves to the id allocated here; setup-etc
    /// sets the owner again at every activation, after the users step.
    fn owner(&self, text: &str, kind: OwnerKind) -> Option<u32> {
        if let Some(number) = text.strip_prefix('+') {
            return number.parse().ok();
        }
        match kind {
            OwnerKind::User => self
                .users
                .iter()
                .find(|u| u.name == text)
                .and_then(|u| u.uid),
            OwnerKind::Group => self.gid(text),
        }
    }

    /// `/etc/passwd`, `/etc/group`, `/etc/shadow` (no hashes) and home directories.
    fn add_entries(&self, entries: &mut Vec<Entry>) {
        let mut passwd = String::new();
        let mut shadow = String::new();
        for user in &self.users {
            let uid = user.uid.unwrap_or_default();
            let gid = self.gid(&user.group).unwrap_or_default();
            let first_boot = FirstBoot::of(user);
            if first_boot != FirstBoot::User {
                passwd.push_str(&format!(
                    "{}:x:{uid}:{gid}:{}:{}:{}\n",
                    user.name,
                    user.description,
                    user.home,
                    user.shell.as_deref().unwrap_or(NOLOGIN)
                ));
            }
            if first_boot == FirstBoot::Nothing {
                shadow.push_str(&format!("{}:!:1::::::\n", user.name));
            }
            if user.creates_home() {
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
                // Validated as octal by the facts.
                let mode = u32::from_str_radix(&user.home_mode, 8).unwrap_or(0o700);
                let mut home = Entry::directory(path, mode);
                home.uid = uid;
                home.gid = gid;
                entries.push(home);
            }
        }
        let group_text: String = self
            .groups
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
        let mut shadow_entry = Entry::inline_file("etc/shadow", shadow.into_bytes(), 0o640);
        shadow_entry.gid = self.gid("shadow").unwrap_or(0);
        entries.push(shadow_entry);
    }
}

impl UserSpec {
    fn creates_home(&self) -> bool {
        (self.create_home || self.is_normal_user)
            && self.home.starts_with('/')
            && self.home != "/var/empty"
    }
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

/// `/root/.nix-channels` as nix-channel writes it: `URL NAME` lines by name.
fn add_channels(entries: &mut Vec<Entry>, channels: &BTreeMap<String, String>) {
    if channels.is_empty() {
        return;
    }
    let text: String = channels
        .iter()
        .map(|(name, url)| format!("{url} {name}\n"))
        .collect();
    entries.push(Entry::inline_file(
        "root/.nix-channels",
        text.into_bytes(),
        0o644,
    ));
}

/// Reads a file the facts name, through its limit; errors name the field.
fn read_facts_file(file: FactsFile, path: &Path) -> Result<Vec<u8>, PlanError> {
    read_limited(path, file.limit(), file.what())
        .map_err(|source| PlanError::Facts(FactsError::Read { file, source }))
}

/// `/etc/wsl-distribution.conf` and the assets it names under /usr/lib/wsl.
fn add_distribution_conf(entries: &mut Vec<Entry>, inputs: &NixosInputs) -> Result<(), PlanError> {
    let mut conf = format!("[oobe]\ndefaultName={}\n", inputs.default_name);
    entries.push(Entry::directory("usr/lib", 0o755));
    entries.push(Entry::directory(WSL_LIB, 0o755));
    if let Some(command) = &inputs.oobe_command {
        let bytes = read_facts_file(FactsFile::OobeCommand, command)?;
        if !bytes.starts_with(b"#!") && !bytes.starts_with(b"\x7fELF") {
            return Err(PlanError::Facts(FactsError::Content {
                file: FactsFile::OobeCommand,
                path: command.clone(),
                problem: "is neither a #! script nor an ELF program".to_owned(),
            }));
        }
        entries.push(Entry::inline_file(OOBE_COMMAND, bytes, 0o755));
        conf.push_str(&format!("command=/{OOBE_COMMAND}\n"));
    }
    if let Some(uid) = inputs.default_uid {
        conf.push_str(&format!("defaultUid={uid}\n"));
    }
    let mut shortcut = String::new();
    if !inputs.shortcut_enabled {
        shortcut.push_str("enabled=false\n");
    }
    if let Some(icon) = &inputs.icon {
        let bytes = if inputs.icon_given {
            read_limited(icon, FactsFile::Icon.limit(), FactsFile::Icon.what())
                .map_err(PlanError::Icon)?
        } else {
            read_facts_file(FactsFile::Icon, icon)?
        };
        // An ICONDIR header: reserved 0, type 1 (icon).
        if !bytes.starts_with(&[0, 0, 1, 0]) {
            let problem = "is not an .ico file (no ICONDIR header 00 00 01 00)".to_owned();
            return Err(if inputs.icon_given {
                PlanError::NotAnIcon(icon.clone())
            } else {
                PlanError::Facts(FactsError::Content {
                    file: FactsFile::Icon,
                    path: icon.clone(),
                    problem,
                })
            });
        }
        entries.push(Entry::inline_file(
            format!("{WSL_LIB}/nixos.ico"),
            bytes,
            0o644,
        ));
        shortcut.push_str(&format!("icon=/{WSL_LIB}/nixos.ico\n"));
    }
    if !shortcut.is_empty() {
        conf.push_str(&format!("\n[shortcut]\n{shortcut}"));
    }
    let mut terminal = String::new();
    if !inputs.windows_terminal_enabled {
        terminal.push_str("enabled=false\n");
    }
    if let Some(profile) = &inputs.terminal_profile {
        let bytes = read_facts_file(FactsFile::TerminalProfile, profile)?;
        serde_json::from_slice::<serde_json::Value>(&bytes).map_err(|e| {
            PlanError::Facts(FactsError::Content {
                file: FactsFile::TerminalProfile,
                path: profile.clone(),
                problem: format!("is not JSON: {e}"),
            })
        })?;
        // Microsoft's guidance: mode 0640 or 0660, so users cannot edit it.
        entries.push(Entry::inline_file(
            format!("{WSL_LIB}/terminal-profile.json"),
            bytes,
            0o640,
        ));
        terminal.push_str(&format!(
            "profileTemplate=/{WSL_LIB}/terminal-profile.json\n"
        ));
    }
    if !terminal.is_empty() {
        conf.push_str(&format!("\n[windowsterminal]\n{terminal}"));
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
    let too_large = |entry: &Entry| match &entry.kind {
        EntryKind::File { size, .. } if *size > FactsFile::NixosConfig.limit() => {
            Some(PlanError::Facts(FactsError::Content {
                file: FactsFile::NixosConfig,
                path: config.join(std::ffi::OsStr::from_bytes(
                    entry
                        .path
                        .strip_prefix(b"etc/nixos/")
                        .unwrap_or(&entry.path),
                )),
                problem: format!(
                    "is larger than the limit of {} bytes for {}",
                    FactsFile::NixosConfig.limit(),
                    FactsFile::NixosConfig.what()
                ),
            }))
        }
        _ => None,
    };
    if config.is_dir() {
        let walked = walk_tree(config, b"etc/nixos").map_err(|source| PlanError::StorePath {
            path: config.display().to_string(),
            source,
        })?;
        for mut entry in walked.into_iter().skip(1) {
            if let Some(error) = too_large(&entry) {
                return Err(error);
            }
            entry.mode |= 0o200;
            entries.push(entry);
        }
    } else {
        let bytes = read_facts_file(FactsFile::NixosConfig, config)?;
        entries.push(Entry::inline_file(
            "etc/nixos/configuration.nix",
            bytes,
            0o644,
        ));
    }
    Ok(())
}
