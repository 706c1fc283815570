//! The `wsl-format` check: what Microsoft's validator for modern WSL
//! distributions checks (microsoft/WSL `distributions/validate-modern.py`
//! at 3e27a6a50), on what one archive walk kept. Its errors are failures,
//! its warnings are warnings, with three departures, each explained where
//! it is made: no `/bin/bash` warns (NixOS with `wsl.populateBin = false`
//! has none); the programs may be scripts whose interpreter resolves inside
//! the rootfs; and a compression other than gzip or xz, the validator's
//! error for a distribution channel's URL, warns (`wsl --import` takes
//! it). Symlinks are followed inside the rootfs, never on the host.

use super::walk::{ArchiveWalk, KeptFile, Owner, MAX_WSL_CONF};
use crate::archive::display_path;
use crate::compress::Compression;
use crate::tar::MemberKind;

/// Failures and warnings of the check.
#[derive(Debug, Default)]
pub struct Findings {
    pub failures: Vec<String>,
    pub warnings: Vec<String>,
    /// The image's architecture: the ELF machine of the first of `/bin/sh`,
    /// `/bin/bash` and `/sbin/init` that is an ELF (`x86-64` or `aarch64`).
    pub arch: Option<&'static str>,
}

impl Findings {
    fn fail(&mut self, message: String) {
        self.failures.push(message);
    }
    /// Each warning once, at most [`MAX_WARNINGS`] of them.
    fn warn(&mut self, message: String) {
        if self.warnings.len() < MAX_WARNINGS && !self.warnings.contains(&message) {
            self.warnings.push(message);
        }
    }
}

/// Warnings kept (they come from a fixed set of rules, each once).
const MAX_WARNINGS: usize = 100;

const USR_LIB_WSL: &str = "/usr/lib/wsl";
const USR_LIBEXEC_WSL: &str = "/usr/libexec/wsl";
const USR_SHARE_WSL: &str = "/usr/share/wsl";
/// WSL's limit for the icon and the terminal profile template.
const MAX_ASSET: u64 = 1 << 20;

/// `wsl-distribution.conf` keys WSL reads (lowercase, as compared).
const DISTRIBUTION_KEYS: [&str; 7] = [
    "oobe.command",
    "oobe.defaultuid",
    "oobe.defaultname",
    "shortcut.enabled",
    "shortcut.icon",
    "windowsterminal.enabled",
    "windowsterminal.profiletemplate",
];
/// The `/etc/wsl.conf` keys the validator knows (lowercase); any other is
/// an error.
const WSL_CONF_KEYS: [&str; 21] = [
    "automount.cgroups",
    "automount.enabled",
    "automount.ldconfig",
    "automount.mountfstab",
    "automount.options",
    "automount.root",
    "boot.command",
    "boot.protectbinfmt",
    "boot.systemd",
    "fileserver.enabled",
    "filesystem.umask",
    "general.hostname",
    "gpu.appendlibpath",
    "gpu.enabled",
    "interop.appendwindowspath",
    "interop.enabled",
    "network.generatehosts",
    "network.generateresolvconf",
    "network.hostname",
    "time.usewindowstimezone",
    "user.default",
];
/// The known `/etc/wsl.conf` key the validator discourages (a warning):
/// `oobe.defaultUid` and the first-run command replace it.
const WSL_CONF_DISCOURAGED: &str = "user.default";
/// Units the validator discourages when enabled.
const DISCOURAGED_UNITS: [&str; 14] = [
    "systemd-resolved.service",
    "systemd-networkd.service",
    "systemd-networkd-wait-online.service",
    "systemd-tmpfiles-setup.service",
    "systemd-tmpfiles-clean.service",
    "systemd-tmpfiles-setup-dev-early.service",
    "systemd-tmpfiles-setup-dev.service",
    "systemd-vconsole-setup.service",
    "tmp.mount",
    "NetworkManager.service",
    "NetworkManager-wait-online.service",
    "console-getty.service",
    "networking.service",
    "hypervkvpd.service",
];
/// Extended attributes WSL1 does not support (a warning).
const WSL1_UNSUPPORTED_XATTRS: [&str; 3] = ["security.selinux", "security.ima", "security.evm"];
/// The modes the validator accepts for `/bin/sh`, `/bin/bash` and
/// `/sbin/init`.
const PROGRAM_MODES: [u32; 3] = [0o755, 0o775, 0o555];
const UNIT_DIRS: [&str; 3] = [
    "usr/local/lib/systemd/system",
    "usr/lib/systemd/system",
    "etc/systemd/system",
];
/// ELF `e_machine` of the architectures WSL runs.
const EM_X86_64: u16 = 62;
const EM_AARCH64: u16 = 183;

/// Runs the rules on a walk whose tarball has a skeleton.
pub fn check(walk: &ArchiveWalk) -> Findings {
    let mut found = Findings::default();
    match walk.compression {
        Compression::Gzip | Compression::Xz => {}
        // The validator's error for a distribution channel's URL; WSL
        // imports the others (`wsl --import`), so ours warns.
        other => found.warn(format!(
            "{} compression: Microsoft's distribution channel takes gzip or xz only",
            other.name()
        )),
    }
    let default_uid = distribution_conf(walk, &mut found);
    let systemd = wsl_conf(walk, &mut found);
    passwd(walk, default_uid, &mut found);
    if let Some(owner) = walk.owners.get(&b"etc/shadow"[..]) {
        modes(&mut found, "/etc/shadow", owner.mode, &[0o640, 0o600, 0]);
        if owner.uid != 0 {
            found.warn(format!("/etc/shadow has uid {}, expected 0", owner.uid));
        }
    } else {
        found.fail("/etc/shadow is missing".to_owned());
    }
    let mut arch = None;
    for program in ["/bin/sh", "/bin/bash", "/sbin/init"] {
        executable(walk, program, &mut arch, &mut found);
        let (target, node) = match walk.resolve(&program.as_bytes()[1..]) {
            Some(resolved) => resolved,
            None => continue,
        };
        // The validator checks /sbin/init's mode and owner only with
        // boot.systemd.
        if program == "/sbin/init" && !systemd {
            continue;
        }
        if !PROGRAM_MODES.contains(&(node.mode & 0o7777)) {
            found.warn(format!(
                "{program} (resolving to {}) has mode {:04o}, expected 0755, 0775 or 0555",
                display_path(&target),
                node.mode & 0o7777
            ));
        }
        root_owned(walk, program, &mut found);
    }
    for (name, first) in &walk.wsl.xattrs {
        let name = String::from_utf8_lossy(name);
        if WSL1_UNSUPPORTED_XATTRS.iter().any(|x| name.starts_with(x)) {
            found.warn(format!(
                "extended attribute {name} (first on {}): WSL1 does not support it",
                display_path(first)
            ));
        }
    }
    units(walk, &mut found);
    found.arch = arch;
    found
}

/// The file's mode is one of `expected` (a warning otherwise).
fn modes(found: &mut Findings, path: &str, mode: u32, expected: &[u32]) {
    if !expected.contains(&(mode & 0o7777)) {
        let list: Vec<String> = expected.iter().map(|m| format!("{m:04o}")).collect();
        found.warn(format!(
            "{path} has mode {:04o}, expected {}",
            mode & 0o7777,
            list.join(" or ")
        ));
    }
}

/// Owner (uid, and gid 0 when `gid`) and mode, as the validator warns.
fn owner_and_mode(found: &mut Findings, path: &str, owner: &Owner, expected: &[u32]) {
    modes(found, path, owner.mode, expected);
    if owner.uid != 0 || owner.gid != 0 {
        found.warn(format!(
            "{path} is owned by {}:{}, expected 0:0",
            owner.uid, owner.gid
        ));
    }
}

/// The text of a kept configuration file `path` leads to (through
/// symlinks); a failure if it is missing, too large or was not kept.
fn conf_text(walk: &ArchiveWalk, path: &str, found: &mut Findings) -> Option<(Vec<u8>, u32)> {
    let (target, node) = walk.resolve(&path.as_bytes()[1..])?;
    if node.kind != MemberKind::Regular {
        found.fail(format!(
            "{path} resolves to {} ({}), not a file",
            display_path(&target),
            node.kind.describe()
        ));
        return None;
    }
    match walk.kept_files.get(&target) {
        Some(KeptFile::Bytes(bytes)) => Some((bytes.clone(), node.mode)),
        Some(KeptFile::TooLarge { size, .. }) => {
            found.fail(format!(
                "{path} is {size} bytes, more than the {MAX_WSL_CONF} WSL reads"
            ));
            None
        }
        _ => {
            found.fail(format!(
                "{path} resolves to {}, which verify did not read (it reads files named wsl.conf or wsl-distribution.conf, up to 16 of them)",
                display_path(&target)
            ));
            None
        }
    }
}

/// A line quoted in a message: its first 120 characters.
fn clip(line: &str) -> String {
    match line.char_indices().nth(120) {
        Some((end, _)) => format!("{}…", &line[..end]),
        None => line.to_owned(),
    }
}

/// `section.key` (lowercase key) and value pairs, as Python's configparser
/// reads an INI file; lines it would reject are failures.
fn ini(path: &str, text: &[u8], found: &mut Findings) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(text);
    let mut section: Option<String> = None;
    let mut keys = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if let Some(name) = trimmed.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = Some(name.to_owned());
            continue;
        }
        let split = trimmed.split_once('=').or_else(|| trimmed.split_once(':'));
        match (split, &section) {
            // Compared without case, as the validator does.
            (Some((key, value)), Some(section)) => keys.push((
                format!("{section}.{}", key.trim()).to_lowercase(),
                value.trim().to_owned(),
            )),
            (Some(_), None) => {
                found.fail(format!("{path} line {}: a key before any [section]", n + 1))
            }
            (None, _) => found.fail(format!(
                "{path} line {}: not a [section] or key=value: \"{}\"",
                n + 1,
                clip(trimmed)
            )),
        }
    }
    keys
}

/// `/etc/wsl-distribution.conf` and the files it names; returns
/// `oobe.defaultUid`.
fn distribution_conf(walk: &ArchiveWalk, found: &mut Findings) -> Option<u64> {
    let path = "/etc/wsl-distribution.conf";
    let Some((text, mode)) = conf_text(walk, path, found) else {
        if walk.resolve(&path.as_bytes()[1..]).is_none() {
            found.fail(format!("{path} is missing"));
        }
        return None;
    };
    modes(found, path, mode, &[0o644, 0o664]);
    root_owned(walk, path, found);
    let keys = ini(path, &text, found);
    for (key, _) in &keys {
        if !DISTRIBUTION_KEYS.contains(&key.as_str()) {
            found.fail(format!("{path}: unknown key {key}"));
        }
    }
    let get = |name: &str| {
        keys.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if let Some(command) = get("oobe.command") {
        asset(walk, found, "oobe.command", command, &[0o755, 0o775], None);
        oobe_interpreter(walk, command, found);
        if !command.starts_with(USR_LIB_WSL) && !command.starts_with(USR_LIBEXEC_WSL) {
            found.warn(format!(
                "oobe.command \"{command}\" is not under {USR_LIB_WSL} or {USR_LIBEXEC_WSL}"
            ));
        }
    }
    let mut default_uid = None;
    if let Some(uid) = get("oobe.defaultuid") {
        if uid != "1000" {
            found.warn(format!("oobe.defaultUid is {uid}, not 1000"));
        }
        match uid.parse::<u64>() {
            Ok(uid) => default_uid = Some(uid),
            Err(_) => found.fail(format!("oobe.defaultUid \"{uid}\" is not a number")),
        }
    }
    match get("shortcut.icon") {
        Some(icon) => {
            asset(
                walk,
                found,
                "shortcut.icon",
                icon,
                &[0o644, 0o664],
                Some(MAX_ASSET),
            );
            if !icon.starts_with(USR_LIB_WSL) && !icon.starts_with(USR_SHARE_WSL) {
                found.warn(format!(
                    "shortcut.icon \"{icon}\" is not under {USR_LIB_WSL} or {USR_SHARE_WSL}"
                ));
            }
        }
        None => found.warn(format!("{path} names no shortcut.icon")),
    }
    if let Some(profile) = get("windowsterminal.profiletemplate") {
        asset(
            walk,
            found,
            "windowsterminal.profileTemplate",
            profile,
            &[0o640, 0o660],
            Some(MAX_ASSET),
        );
        if !profile.starts_with(USR_LIB_WSL) {
            found.warn(format!(
                "windowsterminal.profileTemplate \"{profile}\" is not under {USR_LIB_WSL}"
            ));
        }
    }
    default_uid
}

/// A file `wsl-distribution.conf` names: present (as a member of that name,
/// as the validator looks), mode, root owner, size.
fn asset(
    walk: &ArchiveWalk,
    found: &mut Findings,
    key: &str,
    path: &str,
    expected: &[u32],
    max_size: Option<u64>,
) {
    let relative = path.trim_start_matches('/').as_bytes();
    let Some(node) = walk.members.get(relative) else {
        found.fail(format!("{key}: {path} is not in the tarball"));
        return;
    };
    match walk.owners.get(relative) {
        Some(owner) => {
            owner_and_mode(found, path, owner, expected);
            if let Some(max) = max_size {
                if owner.size > max {
                    found.fail(format!(
                        "{key}: {path} is {} bytes, more than WSL's limit of {max}",
                        owner.size
                    ));
                }
            }
        }
        None => {
            modes(found, path, node.mode, expected);
            if !node.root_owned {
                found.warn(format!("{path} is not owned by 0:0"));
            }
            if max_size.is_some() {
                found.warn(format!(
                    "{key}: verify records sizes only under {USR_LIB_WSL}, {USR_LIBEXEC_WSL} and {USR_SHARE_WSL}; {path}'s was not checked"
                ));
            }
        }
    }
}

/// A `#!` script as `oobe.command` whose interpreter does not resolve
/// inside the rootfs warns (beyond the validator): WSL cannot run it,
/// unless the interpreter appears at run time (envfs's `/bin`).
fn oobe_interpreter(walk: &ArchiveWalk, command: &str, found: &mut Findings) {
    let relative = command.trim_start_matches('/').as_bytes();
    let Some(head) = walk.members.get(relative).and_then(|_| walk.head(relative)) else {
        return;
    };
    let Some(line) = head.strip_prefix(b"#!") else {
        return;
    };
    let line = String::from_utf8_lossy(line);
    let interpreter = line.split_whitespace().next().unwrap_or("");
    let runs = interpreter.starts_with('/')
        && walk
            .resolve(&interpreter.as_bytes()[1..])
            .is_some_and(|(_, node)| node.kind == MemberKind::Regular && node.mode & 0o111 != 0);
    if !runs {
        found.warn(format!(
            "oobe.command {command}: its interpreter \"{}\" is not an executable file inside the rootfs",
            clip(interpreter)
        ));
    }
}

/// `/etc/wsl.conf` (optional): mode, owner and keys; returns
/// `boot.systemd`.
fn wsl_conf(walk: &ArchiveWalk, found: &mut Findings) -> bool {
    let path = "/etc/wsl.conf";
    if walk.resolve(b"etc/wsl.conf").is_none() {
        return false;
    }
    let Some((text, mode)) = conf_text(walk, path, found) else {
        return false;
    };
    modes(found, path, mode, &[0o644, 0o664]);
    root_owned(walk, path, found);
    let keys = ini(path, &text, found);
    for (key, value) in &keys {
        if !WSL_CONF_KEYS.contains(&key.as_str()) {
            found.fail(format!("{path}: unknown key {key}"));
        } else if key == WSL_CONF_DISCOURAGED {
            found.warn(format!(
                "{path}: discouraged key {key}={value} (oobe.defaultUid in /etc/wsl-distribution.conf replaces it)",
                value = clip(value)
            ));
        }
    }
    keys.iter()
        .rev()
        .find(|(k, _)| k == "boot.systemd")
        .is_some_and(|(_, v)| v.eq_ignore_ascii_case("true"))
}

/// The file `path` resolves to is owned by 0:0 (a warning otherwise), as
/// the validator checks the files it follows links to.
fn root_owned(walk: &ArchiveWalk, path: &str, found: &mut Findings) {
    let relative = &path.as_bytes()[1..];
    let Some((target, node)) = walk.resolve(relative) else {
        return;
    };
    match walk.owners.get(&target) {
        Some(owner) if owner.uid != 0 || owner.gid != 0 => found.warn(format!(
            "{path} is owned by {}:{}, expected 0:0",
            owner.uid, owner.gid
        )),
        Some(_) => {}
        None if !node.root_owned => found.warn(format!(
            "{path} resolves to {}, which is not owned by 0:0",
            display_path(&target)
        )),
        None => {}
    }
}

/// `/etc/passwd`: mode, owner, every line `name:pw:uid:gid:gecos:home:shell`
/// with a numeric uid, no uid twice, uid 0 is root.
fn passwd(walk: &ArchiveWalk, default_uid: Option<u64>, found: &mut Findings) {
    let path = "/etc/passwd";
    if let Some(owner) = walk.owners.get(&b"etc/passwd"[..]) {
        owner_and_mode(found, path, owner, &[0o644, 0o664]);
    }
    // Missing or too large: the skeleton check says so.
    let Some(KeptFile::Bytes(bytes)) = walk.kept_files.get(&b"etc/passwd"[..]) else {
        return;
    };
    let text = String::from_utf8_lossy(bytes);
    let mut names: std::collections::BTreeMap<u64, String> = Default::default();
    for (n, line) in text.split_terminator('\n').enumerate() {
        let fields: Vec<&str> = line.split(':').collect();
        let uid = fields.get(2).and_then(|uid| uid.parse::<u64>().ok());
        let Some(uid) = uid.filter(|_| fields.len() == 7) else {
            found.fail(format!(
                "{path} line {}: not name:password:uid:gid:gecos:home:shell with a numeric uid: \"{}\"",
                n + 1,
                clip(line)
            ));
            continue;
        };
        if let Some(first) = names.get(&uid) {
            found.fail(format!(
                "{path} line {}: uid {uid} of {} is {first}'s too",
                n + 1,
                fields[0]
            ));
        } else {
            names.insert(uid, fields[0].to_owned());
        }
    }
    match names.get(&0) {
        None => found.fail(format!("{path} has no uid 0")),
        Some(name) if name != "root" => found.fail(format!("{path}: uid 0 is {name}, not root")),
        Some(_) => {}
    }
    if let Some(name) = default_uid.and_then(|uid| names.get(&uid)) {
        found.warn(format!(
            "{path} already has the default uid (oobe.defaultUid): {name}"
        ));
    }
}

/// The ELF architecture of a header's first 20 bytes, if it is a 64-bit
/// little-endian ELF for x86-64 or aarch64 (what WSL runs).
fn elf_machine(head: &[u8]) -> Result<&'static str, String> {
    if head.len() < 20 {
        return Err("a truncated ELF header".to_owned());
    }
    if head[4] != 2 || head[5] != 1 || head[6] != 1 {
        return Err("not a 64-bit little-endian ELF version 1".to_owned());
    }
    match u16::from_le_bytes([head[18], head[19]]) {
        EM_X86_64 => Ok("x86-64"),
        EM_AARCH64 => Ok("aarch64"),
        other => Err(format!("an ELF for machine {other}, not x86-64 or aarch64")),
    }
}

/// `program` resolves to an ELF for the image's architecture (the first
/// one found sets it), or a script whose interpreter resolves to an
/// executable inside the rootfs.
fn executable(
    walk: &ArchiveWalk,
    program: &str,
    arch: &mut Option<&'static str>,
    found: &mut Findings,
) {
    let Some((target, node)) = walk.resolve(&program.as_bytes()[1..]) else {
        let message = format!("{program} is missing or does not resolve inside the rootfs");
        // WSL boots without /bin/bash (a NixOS host with
        // wsl.populateBin = false has none): the validator's error is our
        // warning.
        if program == "/bin/bash" && walk.members.get(b"bin/bash").is_none() {
            found.warn(message);
        } else {
            found.fail(message);
        }
        return;
    };
    let shown = display_path(&target);
    if node.kind != MemberKind::Regular || node.mode & 0o111 == 0 {
        found.fail(format!(
            "{program} resolves to {shown}, not an executable file"
        ));
        return;
    }
    let Some(head) = walk.head(&target) else {
        found.fail(if walk.heads_dropped > 0 {
            format!("{program} resolves to {shown}, whose first bytes verify did not keep (too many executables)")
        } else {
            format!("{program} resolves to {shown}, which is neither an ELF nor a #! script")
        });
        return;
    };
    if head.starts_with(b"\x7fELF") {
        match elf_machine(head) {
            Ok(machine) => match arch {
                Some(image) if *image != machine => found.fail(format!(
                    "{program} resolves to {shown}, an ELF for {machine}, but the image's programs are {image}"
                )),
                Some(_) => {}
                None => *arch = Some(machine),
            },
            Err(what) => found.fail(format!("{program} resolves to {shown}, {what}")),
        }
        return;
    }
    let line = String::from_utf8_lossy(&head[2..]);
    let interpreter = line.split_whitespace().next().unwrap_or("");
    if !interpreter.starts_with('/') {
        found.fail(format!(
            "{program} resolves to {shown}, a script whose interpreter \"{interpreter}\" is not an absolute path"
        ));
        return;
    }
    match walk.resolve(&interpreter.as_bytes()[1..]) {
        Some((_, node)) if node.kind == MemberKind::Regular && node.mode & 0o111 != 0 => {}
        _ => found.fail(format!(
            "{program} resolves to {shown}, a script whose interpreter {interpreter} is not an executable file inside the rootfs"
        )),
    }
}

/// Discouraged units enabled: linked from a `*.target.wants` directory
/// of a unit directory (followed through symlinks inside the rootfs, as
/// NixOS links `/etc/systemd/system` into the store), not linked to
/// `/dev/null` and not masked in `/etc/systemd/system`.
fn units(walk: &ArchiveWalk, found: &mut Findings) {
    let to_null = |node: &crate::inspect::member_table::NodeInfo| {
        node.kind == MemberKind::Symlink && node.link_target == b"/dev/null"
    };
    let masked = |unit: &[u8]| {
        walk.resolve(b"etc/systemd/system")
            .and_then(|(dir, _)| walk.members.get(&[dir.as_slice(), b"/", unit].concat()))
            .is_some_and(|node| to_null(&node))
    };
    for member in &walk.wsl.wants {
        let slash = member.iter().rposition(|&b| b == b'/').unwrap_or(0);
        let (dir, unit) = (&member[..slash], &member[slash + 1..]);
        if !DISCOURAGED_UNITS.iter().any(|u| u.as_bytes() == unit) {
            continue;
        }
        let wants = &dir[dir.iter().rposition(|&b| b == b'/').map_or(0, |s| s + 1)..];
        let Some(node) = walk.members.get(member) else {
            continue;
        };
        if to_null(&node) || masked(unit) {
            continue;
        }
        for unit_dir in UNIT_DIRS {
            let mut linked = unit_dir.as_bytes().to_vec();
            linked.push(b'/');
            linked.extend_from_slice(wants);
            if walk.resolve(&linked).is_some_and(|(real, _)| real == dir) {
                found.warn(format!(
                    "discouraged unit enabled: {}",
                    display_path(&[linked.as_slice(), b"/", unit].concat())
                ));
            }
        }
    }
    if walk.wsl.wants_dropped > 0 {
        found.warn(format!(
            "{} members of .target.wants directories were not checked for discouraged units (too many)",
            walk.wsl.wants_dropped
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(class: u8, machine: u16) -> Vec<u8> {
        let mut head = vec![0x7f, b'E', b'L', b'F', class, 1, 1];
        head.resize(18, 0);
        head.extend_from_slice(&machine.to_le_bytes());
        head
    }

    #[test]
    fn elf_machines() {
        assert_eq!(elf_machine(&header(2, 62)), Ok("x86-64"));
        assert_eq!(elf_machine(&header(2, 183)), Ok("aarch64"));
        assert!(elf_machine(&header(1, 3)).unwrap_err().contains("64-bit"));
        assert!(elf_machine(&header(2, 243)).unwrap_err().contains("243"));
        assert!(elf_machine(&header(2, 62)[..19]).is_err());
    }

    #[test]
    fn ini_keys_as_configparser_reads_them() {
        let mut found = Findings::default();
        let keys = ini(
            "/etc/x.conf",
            b"# comment\n; also\n[Boot]\nSystemd = true\n\n[user]\ndefault: nixos\n",
            &mut found,
        );
        assert_eq!(
            keys,
            [
                ("boot.systemd".to_owned(), "true".to_owned()),
                ("user.default".to_owned(), "nixos".to_owned())
            ]
        );
        assert!(found.failures.is_empty());
        ini("/etc/x.conf", b"key=1\n[s]\njunk\n", &mut found);
        assert_eq!(
            found.failures,
            [
                "/etc/x.conf line 1: a key before any [section]",
                "/etc/x.conf line 3: not a [section] or key=value: \"junk\""
            ]
        );
    }
}
