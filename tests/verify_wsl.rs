//! `verify`'s `wsl-format` check: what Microsoft's validator for modern WSL
//! distributions (microsoft/WSL `distributions/validate-modern.py`) checks,
//! each rule on a rootfs broken on purpose (a tarball `write --nixos` made,
//! extracted, changed and repacked with GNU tar), and the tarball as written
//! passing with warnings only.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;

/// A rootfs extracted from a `write --nixos` tarball of the fixture system.
fn nixos_root(dir: &Path) -> PathBuf {
    let (tarball, _) = write_system(v1(), dir, "image");
    root_from(&tarball, dir, "root")
}

/// What the `wsl-format` check said about `root` repacked (gzip, unless
/// `plain`): exit status, failures, warnings.
struct Verdict {
    status: i32,
    failures: Vec<String>,
    warnings: Vec<String>,
    text: String,
}

fn verdict_of(dir: &Path, root: &Path, plain: bool) -> Verdict {
    let tar = dir.join("repacked.tar");
    gnu_tar_file(root, &tar);
    let tarball = if plain {
        tar
    } else {
        let gz = dir.join("repacked.wsl");
        std::fs::write(&gz, run_ok(Command::new("gzip").arg("-nc").arg(&tar))).unwrap();
        gz
    };
    let run = |json: bool| {
        let mut command = wsl_tarball();
        command.arg("verify");
        if json {
            command.arg("--json");
        }
        command.arg(&tarball).stdin(Stdio::null()).output().unwrap()
    };
    let output = run(true);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("no JSON ({e}): {}", String::from_utf8_lossy(&output.stderr)));
    let check = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "wsl-format")
        .unwrap_or_else(|| panic!("no wsl-format check: {report:#}"))
        .clone();
    let list = |key: &str| -> Vec<String> {
        check[key]
            .as_array()
            .unwrap_or_else(|| panic!("no {key}: {check:#}"))
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    let text = String::from_utf8(run(false).stdout).unwrap();
    Verdict {
        status: output.status.code().unwrap(),
        failures: list("failures"),
        warnings: list("warnings"),
        text,
    }
}

fn verdict(dir: &Path, root: &Path) -> Verdict {
    verdict_of(dir, root, false)
}

/// Replaces whatever is at `root/path` (a symlink into the store, say) by
/// a file with `content` and `mode`.
fn put(root: &Path, path: &str, content: &[u8], mode: u32) {
    let file = root.join(path);
    let _ = std::fs::remove_file(&file);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, content).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn assert_fails_with(verdict: &Verdict, needle: &str) {
    assert_eq!(verdict.status, 1, "{}", verdict.text);
    assert!(
        verdict.failures.iter().any(|f| f.contains(needle)),
        "no failure with {needle:?}: {:#?}\n{}",
        verdict.failures,
        verdict.text
    );
    assert!(verdict.text.contains(needle), "{}", verdict.text);
}

fn assert_warns_with(verdict: &Verdict, needle: &str) {
    assert!(
        verdict.warnings.iter().any(|w| w.contains(needle)),
        "no warning with {needle:?}: {:#?}\n{}",
        verdict.warnings,
        verdict.text
    );
    assert!(
        verdict.text.contains(&format!("warning: {needle}"))
            || verdict
                .text
                .lines()
                .any(|l| l.contains("warning:") && l.contains(needle)),
        "{}",
        verdict.text
    );
}

/// What the `wsl-format` check said about `root` packed by GNU tar keeping
/// the owners the files have (`gnu_tar_file` makes everything 0:0), and
/// the extra `args`.
fn verdict_keeping_owners(dir: &Path, root: &Path, args: &[&str]) -> Verdict {
    let tar = dir.join("owned.tar");
    run_ok(
        Command::new("tar")
            .args(["--sort=name", "--numeric-owner", "-c", "-f"])
            .arg(&tar)
            .args(args)
            .arg("-C")
            .arg(root)
            .arg("."),
    );
    let output = wsl_tarball()
        .args(["verify", "--json"])
        .arg(&tar)
        .output()
        .unwrap();
    let text = String::from_utf8(
        wsl_tarball()
            .arg("verify")
            .arg(&tar)
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let check = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "wsl-format")
        .unwrap()
        .clone();
    let list = |key: &str| -> Vec<String> {
        check[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    Verdict {
        status: output.status.code().unwrap(),
        failures: list("failures"),
        warnings: list("warnings"),
        text,
    }
}

/// The ELF header's first 20 bytes: 64-bit little-endian, for `machine`.
fn elf(machine: u16) -> Vec<u8> {
    let mut head = b"\x7fELF\x02\x01\x01\x00".to_vec();
    head.resize(16, 0);
    head.extend_from_slice(&2u16.to_le_bytes());
    head.extend_from_slice(&machine.to_le_bytes());
    head.resize(64, 0);
    head
}

#[test]
fn a_nixos_tarball_passes_with_upstreams_warnings_only() {
    let dir = tempfile::tempdir().unwrap();
    let (tarball, _) = write_system(v1(), dir.path(), "image");
    let output = wsl_tarball()
        .args(["verify", "--json"])
        .arg(&tarball)
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(output.status.success(), "{report:#}");
    let check = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "wsl-format")
        .unwrap();
    assert_eq!(check["status"], "passed", "{check:#}");
    assert_eq!(check["failures"], serde_json::json!([]), "{check:#}");
    let warnings = check["warnings"].as_array().unwrap();
    // NixOS makes /etc/wsl.conf a link to a read-only store file.
    assert!(
        warnings
            .iter()
            .any(|w| w == "/etc/wsl.conf has mode 0444, expected 0644 or 0664"),
        "{check:#}"
    );
    // Repacked as is, the same: the fixtures below start from a good rootfs.
    let root = root_from(&tarball, dir.path(), "root");
    let repacked = verdict(dir.path(), &root);
    assert_eq!(repacked.status, 0, "{}", repacked.text);
    assert!(repacked.failures.is_empty(), "{}", repacked.text);
}

#[test]
fn distribution_conf_missing_fails() {
    let dir = tempfile::tempdir().unwrap();
    let root = nixos_root(dir.path());
    std::fs::remove_file(root.join("etc/wsl-distribution.conf")).unwrap();
    assert_fails_with(
        &verdict(dir.path(), &root),
        "/etc/wsl-distribution.conf is missing",
    );
}

#[test]
fn distribution_conf_with_an_unknown_key_fails_and_a_bad_mode_warns() {
    let dir = tempfile::tempdir().unwrap();
    let root = nixos_root(dir.path());
    put(
        &root,
        "etc/wsl-distribution.conf",
        b"[oobe]\ndefaultName=NixOS\n[shortcut]\nenabled=false\n[oobe]\ncolour=blue\n",
        0o600,
    );
    let verdict = verdict(dir.path(), &root);
    assert_fails_with(
        &verdict,
        "/etc/wsl-distribution.conf: unknown key oobe.colour",
    );
    assert!(
        !verdict
            .failures
            .iter()
            .any(|f| f.contains("shortcut.enabled")),
        "{:#?}",
        verdict.failures
    );
    assert_warns_with(
        &verdict,
        "/etc/wsl-distribution.conf has mode 0600, expected 0644 or 0664",
    );
}

#[test]
fn an_icon_over_a_mib_fails_and_one_outside_usr_lib_wsl_warns() {
    let dir = tempfile::tempdir().unwrap();
    let root = nixos_root(dir.path());
    put(
        &root,
        "etc/wsl-distribution.conf",
        b"[oobe]\ndefaultName=NixOS\n[shortcut]\nicon=/usr/lib/wsl/big.ico\n",
        0o644,
    );
    put(&root, "usr/lib/wsl/big.ico", &vec![0; (1 << 20) + 1], 0o644);
    assert_fails_with(
        &verdict(dir.path(), &root),
        "shortcut.icon: /usr/lib/wsl/big.ico is 1048577 bytes, more than WSL's limit of 1048576",
    );

    put(
        &root,
        "etc/wsl-distribution.conf",
        b"[shortcut]\nicon=/opt/nixos.ico\n",
        0o644,
    );
    let missing = verdict(dir.path(), &root);
    assert_fails_with(
        &missing,
        "shortcut.icon: /opt/nixos.ico is not in the tarball",
    );
    assert_warns_with(
        &missing,
        "shortcut.icon \"/opt/nixos.ico\" is not under /usr/lib/wsl or /usr/share/wsl",
    );
}

#[test]
fn oobe_command_missing_fails_and_a_profile_mode_warns() {
    let dir = tempfile::tempdir().unwrap();
    let root = nixos_root(dir.path());
    put(
        &root,
        "etc/wsl-distribution.conf",
        b"[oobe]\ncommand=/usr/lib/wsl/oobe.sh\n[windowsterminal]\nprofileTemplate=/usr/lib/wsl/profile.json\n",
        0o644,
    );
    put(&root, "usr/lib/wsl/profile.json", b"{}", 0o644);
    let verdict = verdict(dir.path(), &root);
    assert_fails_with(
        &verdict,
        "oobe.command: /usr/lib/wsl/oobe.sh is not in the tarball",
    );
    assert_warns_with(
        &verdict,
        "/usr/lib/wsl/profile.json has mode 0644, expected 0640 or 0660",
    );
}

#[test]
fn wsl_conf_keys_the_validator_knows_pass_user_default_warns_and_an_unknown_one_fails() {
    let dir = tempfile::tempdir().unwrap();
    let root = nixos_root(dir.path());
    put(
        &root,
        "etc/wsl.conf",
        b"[boot]\nsystemd=true\n[automount]\ncgroups=v2\n[gpu]\nappendLibPath=false\n",
        0o644,
    );
    let known = verdict(dir.path(), &root);
    assert_eq!(known.status, 0, "{}", known.text);
    assert!(
        !known.warnings.iter().any(|w| w.contains("/etc/wsl.conf")),
        "{}",
        known.text
    );
    put(
        &root,
        "etc/wsl.conf",
        b"[boot]\nsystemd=true\n[user]\ndefault=nixos\n[boot]\nsystemdd=true\n",
        0o644,
    );
    let verdict = verdict(dir.path(), &root);
    assert_fails_with(&verdict, "/etc/wsl.conf: unknown key boot.systemdd");
    assert_warns_with(
        &verdict,
        "/etc/wsl.conf: discouraged key user.default=nixos",
    );
}

#[test]
fn programs_must_be_elf_for_the_images_architecture_or_resolving_scripts() {
    let dir = tempfile::tempdir().unwrap();
    let root = nixos_root(dir.path());
    // /bin/sh and /bin/bash are x86-64 (or aarch64) on this machine: an ELF
    // for RISC-V (243) as /bin/bash does not run there.
    put(&root, "bin/bash", &elf(243), 0o755);
    assert_fails_with(
        &verdict(dir.path(), &root),
        "/bin/bash resolves to /bin/bash, an ELF for machine 243, not x86-64 or aarch64",
    );

    put(&root, "bin/bash", &elf(62), 0o755);
    put(&root, "bin/sh", &elf(183), 0o755);
    assert_fails_with(
        &verdict(dir.path(), &root),
        "/bin/bash resolves to /bin/bash, an ELF for x86-64, but the image's programs are aarch64",
    );

    put(&root, "bin/sh", &elf(62), 0o755);
    put(
        &root,
        "bin/init",
        b"#!/usr/bin/python3 -u\nprint()\n",
        0o755,
    );
    assert_fails_with(
        &verdict(dir.path(), &root),
        "/sbin/init resolves to /bin/init, a script whose interpreter /usr/bin/python3 is not an executable file inside the rootfs",
    );

    put(&root, "bin/init", b"#! /bin/sh\nexec true\n", 0o755);
    let fine = verdict(dir.path(), &root);
    assert_eq!(fine.status, 0, "{}", fine.text);
}

#[test]
fn passwd_lines_must_be_well_formed_with_unique_uids_and_root_as_uid_0() {
    let dir = tempfile::tempdir().unwrap();
    let root = nixos_root(dir.path());
    put(
        &root,
        "etc/passwd",
        b"root:x:0:0:System administrator:/root:/bin/sh\nnixos:x:1000:100::/home/nixos:/bin/sh\ntwin:x:1000:100::/home/twin:/bin/sh\nbroken:x:12\n",
        0o644,
    );
    let verdict = verdict(dir.path(), &root);
    assert_fails_with(
        &verdict,
        "/etc/passwd line 3: uid 1000 of twin is nixos's too",
    );
    assert_fails_with(
        &verdict,
        "/etc/passwd line 4: not name:password:uid:gid:gecos:home:shell with a numeric uid: \"broken:x:12\"",
    );

    put(
        &root,
        "etc/passwd",
        b"root:x:0:0::/root:/bin/sh\nadmin:x:0:0::/root:/bin/sh\n",
        0o644,
    );
    assert_fails_with(
        &verdict_of(dir.path(), &root, false),
        "/etc/passwd line 2: uid 0 of admin is root's too",
    );
    put(&root, "etc/passwd", b"toor:x:0:0::/root:/bin/sh\n", 0o644);
    // The skeleton check fails it too (no user named root).
    assert_fails_with(
        &verdict_of(dir.path(), &root, false),
        "/etc/passwd: uid 0 is toor, not root",
    );
}

#[test]
fn shadow_readable_by_others_warns() {
    let dir = tempfile::tempdir().unwrap();
    let root = nixos_root(dir.path());
    std::fs::set_permissions(
        root.join("etc/shadow"),
        std::fs::Permissions::from_mode(0o604),
    )
    .unwrap();
    // (The skeleton check fails it: others may read it.)
    assert_warns_with(
        &verdict(dir.path(), &root),
        "/etc/shadow has mode 0604, expected 0640 or 0600 or 0000",
    );
}

#[test]
fn a_discouraged_unit_enabled_warns_and_a_masked_one_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let root = nixos_root(dir.path());
    let wants = root.join("etc/systemd/system/multi-user.target.wants");
    std::fs::create_dir_all(&wants).unwrap();
    std::os::unix::fs::symlink(
        "/usr/lib/systemd/system/systemd-networkd.service",
        wants.join("systemd-networkd.service"),
    )
    .unwrap();
    let enabled = verdict(dir.path(), &root);
    assert_eq!(enabled.status, 0, "{}", enabled.text);
    assert_warns_with(
        &enabled,
        "discouraged unit enabled: /etc/systemd/system/multi-user.target.wants/systemd-networkd.service",
    );

    std::os::unix::fs::symlink(
        "/dev/null",
        root.join("etc/systemd/system/systemd-networkd.service"),
    )
    .unwrap();
    let masked = verdict(dir.path(), &root);
    assert!(
        !masked.warnings.iter().any(|w| w.contains("discouraged")),
        "{}",
        masked.text
    );
}

#[test]
fn compression_other_than_gzip_or_xz_warns() {
    let dir = tempfile::tempdir().unwrap();
    let root = nixos_root(dir.path());
    let plain = verdict_of(dir.path(), &root, true);
    assert_eq!(plain.status, 0, "{}", plain.text);
    assert_warns_with(
        &plain,
        "none compression: Microsoft's distribution channel takes gzip or xz only",
    );
}

#[test]
fn a_distribution_conf_not_owned_by_root_warns_and_section_case_does_not_matter() {
    let dir = tempfile::tempdir().unwrap();
    let root = nixos_root(dir.path());
    put(
        &root,
        "etc/wsl-distribution.conf",
        b"[OOBE]\nDefaultName=NixOS\n[Shortcut]\nEnabled=false\n",
        0o644,
    );
    std::os::unix::fs::chown(
        root.join("etc/wsl-distribution.conf"),
        Some(1000),
        Some(100),
    )
    .unwrap();
    // GNU tar keeping the owners (gnu_tar_file makes everything 0:0).
    let tar = dir.path().join("owned.tar");
    run_ok(
        Command::new("tar")
            .args(["--format=gnu", "--sort=name", "--numeric-owner", "-c", "-f"])
            .arg(&tar)
            .arg("-C")
            .arg(&root)
            .arg("."),
    );
    let output = wsl_tarball()
        .args(["verify", "--json"])
        .arg(&tar)
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let check = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "wsl-format")
        .unwrap();
    assert_eq!(check["failures"], serde_json::json!([]), "{check:#}");
    assert!(
        check["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w == "/etc/wsl-distribution.conf is owned by 1000:100, expected 0:0"),
        "{check:#}"
    );
}

#[test]
fn no_bin_bash_warns_and_no_bin_sh_fails() {
    let dir = tempfile::tempdir().unwrap();
    let root = nixos_root(dir.path());
    std::fs::remove_file(root.join("bin/bash")).unwrap();
    let no_bash = verdict(dir.path(), &root);
    assert_eq!(no_bash.status, 0, "{}", no_bash.text);
    assert_warns_with(
        &no_bash,
        "/bin/bash is missing or does not resolve inside the rootfs",
    );
    std::fs::remove_file(root.join("bin/sh")).unwrap();
    assert_fails_with(
        &verdict(dir.path(), &root),
        "/bin/sh is missing or does not resolve inside the rootfs",
    );
}

/// A zstd tarball of `count` executable scripts, each a 255-byte `#!` line.
fn many_scripts_tarball(path: &Path, count: u64) {
    use std::io::Write;
    use wsl_tarball::tar::{append_header, HeaderFields, MemberKind, BLOCK_SIZE};
    let file = std::fs::File::create(path).unwrap();
    let mut out = zstd::stream::write::Encoder::new(file, 1)
        .unwrap()
        .auto_finish();
    let block = |name: &str, kind: MemberKind, mode: u32, size: u64| {
        let mut header = Vec::new();
        append_header(
            &mut header,
            &HeaderFields {
                name: name.as_bytes(),
                kind,
                mode,
                uid: 0,
                gid: 0,
                size,
                mtime: 1,
                link_target: b"",
            },
        );
        header
    };
    out.write_all(&block("./", MemberKind::Directory, 0o755, 0))
        .unwrap();
    out.write_all(&block("./bin/", MemberKind::Directory, 0o755, 0))
        .unwrap();
    let mut script = format!("#!/bin/{}", "x".repeat(246)).into_bytes();
    script.push(b'\n');
    script.resize(BLOCK_SIZE, 0);
    for i in 0..count {
        out.write_all(&block(
            &format!("./bin/s{i:08}"),
            MemberKind::Regular,
            0o755,
            256,
        ))
        .unwrap();
        out.write_all(&script).unwrap();
    }
    out.write_all(&vec![0; 20 * BLOCK_SIZE]).unwrap();
}

/// The first bytes verify keeps of executables are capped: a tarball of
/// many scripts costs no more than the member table.
#[test]
fn executable_heads_are_kept_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let tarball = dir.path().join("scripts.tar.zst");
    let count = 400_000;
    many_scripts_tarball(&tarball, count);
    let output = Command::new("/usr/bin/time")
        .args(["-f", "%M"])
        .arg(env!("CARGO_BIN_EXE_wsl-tarball"))
        .args(["verify", "--bare"])
        .arg(&tarball)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let peak_kib: u64 = stderr
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak from /usr/bin/time: {stderr}"));
    eprintln!("verify of {count} scripts: peak {} MiB", peak_kib / 1024);
    // No Nix database: verify fails, but it read the archive through.
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        peak_kib < 64 * 1024,
        "peak memory {} MiB for {count} scripts",
        peak_kib / 1024
    );
}

#[test]
fn a_default_uid_other_than_1000_or_already_in_passwd_warns() {
    let dir = tempfile::tempdir().unwrap();
    let root = nixos_root(dir.path());
    put(
        &root,
        "etc/wsl-distribution.conf",
        b"[oobe]\ndefaultUid=1001\ndefaultName=NixOS\n",
        0o644,
    );
    put(
        &root,
        "etc/passwd",
        b"root:x:0:0::/root:/bin/sh\nalice:x:1001:100::/home/alice:/bin/sh\n",
        0o644,
    );
    let verdict = verdict(dir.path(), &root);
    assert_eq!(verdict.status, 0, "{}", verdict.text);
    assert_warns_with(&verdict, "oobe.defaultUid is 1001, not 1000");
    assert_warns_with(
        &verdict,
        "/etc/passwd already has the default uid (oobe.defaultUid): alice",
    );
}

#[test]
fn programs_with_mode_0555_pass_and_other_modes_or_owners_warn() {
    let dir = tempfile::tempdir().unwrap();
    let root = nixos_root(dir.path());
    put(&root, "bin/sh", &elf(62), 0o555);
    let fine = verdict(dir.path(), &root);
    assert_eq!(fine.status, 0, "{}", fine.text);
    assert!(
        !fine.warnings.iter().any(|w| w.contains("/bin/sh")),
        "{}",
        fine.text
    );
    put(&root, "bin/sh", &elf(62), 0o700);
    assert_warns_with(
        &verdict(dir.path(), &root),
        "/bin/sh (resolving to /bin/sh) has mode 0700, expected 0755, 0775 or 0555",
    );
    put(&root, "bin/sh", &elf(62), 0o755);
    std::os::unix::fs::chown(root.join("bin/sh"), Some(1000), Some(100)).unwrap();
    let owned = verdict_keeping_owners(dir.path(), &root, &["--format=gnu"]);
    assert_warns_with(
        &owned,
        "/bin/sh resolves to /bin/sh, which is not owned by 0:0",
    );
}

#[test]
fn a_wsl_conf_not_owned_by_root_warns_through_its_link() {
    let dir = tempfile::tempdir().unwrap();
    let root = nixos_root(dir.path());
    put(
        &root,
        "usr/share/conf/wsl.conf",
        b"[boot]\nsystemd=true\n",
        0o644,
    );
    std::os::unix::fs::chown(root.join("usr/share/conf/wsl.conf"), Some(1000), Some(100)).unwrap();
    let _ = std::fs::remove_file(root.join("etc/wsl.conf"));
    std::os::unix::fs::symlink("../usr/share/conf/wsl.conf", root.join("etc/wsl.conf")).unwrap();
    let verdict = verdict_keeping_owners(dir.path(), &root, &["--format=gnu"]);
    assert_warns_with(
        &verdict,
        "/etc/wsl.conf resolves to /usr/share/conf/wsl.conf, which is not owned by 0:0",
    );
}

#[test]
fn discouraged_units_of_upstreams_whole_list_warn_in_any_target_through_linked_unit_dirs() {
    let dir = tempfile::tempdir().unwrap();
    let root = nixos_root(dir.path());
    // NixOS links /etc/systemd/system into the store; here, elsewhere.
    let units = root.join("usr/share/units");
    let wants = units.join("getty.target.wants");
    std::fs::create_dir_all(&wants).unwrap();
    std::fs::write(units.join("console-getty.service"), b"[Unit]\n").unwrap();
    std::os::unix::fs::symlink(
        "../console-getty.service",
        wants.join("console-getty.service"),
    )
    .unwrap();
    std::fs::write(units.join("hypervkvpd.service"), b"[Unit]\n").unwrap();
    std::os::unix::fs::symlink("/dev/null", wants.join("hypervkvpd.service")).unwrap();
    let _ = std::fs::remove_dir_all(root.join("etc/systemd/system"));
    std::fs::create_dir_all(root.join("etc/systemd")).unwrap();
    std::os::unix::fs::symlink("/usr/share/units", root.join("etc/systemd/system")).unwrap();
    let enabled = verdict(dir.path(), &root);
    assert_eq!(enabled.status, 0, "{}", enabled.text);
    assert_warns_with(
        &enabled,
        "discouraged unit enabled: /etc/systemd/system/getty.target.wants/console-getty.service",
    );
    assert!(
        !enabled.warnings.iter().any(|w| w.contains("hypervkvpd")),
        "a link to /dev/null is not enabled: {}",
        enabled.text
    );
    // Masked in /etc/systemd/system (here the linked directory).
    std::fs::remove_file(units.join("console-getty.service")).unwrap();
    std::os::unix::fs::symlink("/dev/null", units.join("console-getty.service")).unwrap();
    let masked = verdict(dir.path(), &root);
    assert!(
        !masked.warnings.iter().any(|w| w.contains("discouraged")),
        "{}",
        masked.text
    );
}

#[test]
fn extended_attributes_wsl1_does_not_support_warn() {
    let dir = tempfile::tempdir().unwrap();
    let (tarball, _) = write_system(v1(), dir.path(), "image");
    // Python's tarfile (what the validator reads with) rewrites the
    // tarball, with a pax SCHILY.xattr record on /etc/passwd only.
    let labelled = dir.path().join("labelled.tar");
    run_ok(Command::new("python3").args([
        "-c",
        "import sys, tarfile\n\
         src = tarfile.open(sys.argv[1])\n\
         out = tarfile.open(sys.argv[2], 'w', format=tarfile.PAX_FORMAT)\n\
         for m in src:\n\
         \x20   if m.name.lstrip('./') == 'etc/passwd':\n\
         \x20       m.pax_headers = {'SCHILY.xattr.security.selinux': 'system_u:object_r:etc_t:s0'}\n\
         \x20   out.addfile(m, src.extractfile(m) if m.isreg() else None)\n\
         out.close()\n",
    ]).arg(&tarball).arg(&labelled));
    let output = wsl_tarball()
        .args(["verify", "--json"])
        .arg(&labelled)
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let check = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "wsl-format")
        .unwrap();
    assert_eq!(check["failures"], serde_json::json!([]), "{check:#}");
    assert!(
        check["warnings"].as_array().unwrap().iter().any(|w| w
            == "extended attribute security.selinux (first on /etc/passwd): WSL1 does not support it"),
        "{check:#}"
    );
}

/// A small .ico: an ICONDIR for one 1x1 32-bit image and its bitmap.
fn ico() -> Vec<u8> {
    let mut bytes = vec![0, 0, 1, 0, 1, 0];
    // ICONDIRENTRY: 1x1, no palette, 1 plane, 32 bpp, size, offset 22.
    bytes.extend_from_slice(&[1, 1, 0, 0, 1, 0, 32, 0]);
    let image: Vec<u8> = [
        &40u32.to_le_bytes()[..],
        &1u32.to_le_bytes(),
        &2u32.to_le_bytes(),
        &1u16.to_le_bytes(),
        &32u16.to_le_bytes(),
        &[0; 24],
        &[0x7e, 0xba, 0xe4, 0xff],
        &[0; 4],
    ]
    .concat();
    bytes.extend_from_slice(&(image.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&22u32.to_le_bytes());
    bytes.extend_from_slice(&image);
    bytes
}

/// `write --nixos` (a skeleton of defaults, no facts) with `extra` args.
fn write_defaults(dir: &Path, name: &str, extra: &[&std::ffi::OsStr]) -> std::process::Output {
    let closure = closure_file(v1(), dir, &format!("{name}.json"));
    wsl_tarball()
        .args(["write", "--nixos", "--quiet", "--system", v1(), "--closure"])
        .arg(&closure)
        .arg("-o")
        .arg(dir.join(format!("{name}.wsl")))
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn write_icon_gives_a_skeleton_of_defaults_an_icon_verify_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let icon = dir.path().join("team.ico");
    std::fs::write(&icon, ico()).unwrap();
    for name in ["a", "b"] {
        let output = write_defaults(dir.path(), name, &["--icon".as_ref(), icon.as_os_str()]);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let a = std::fs::read(dir.path().join("a.wsl")).unwrap();
    assert_eq!(
        a,
        std::fs::read(dir.path().join("b.wsl")).unwrap(),
        "same bytes"
    );
    let root = root_from(&dir.path().join("a.wsl"), dir.path(), "root");
    assert_eq!(
        std::fs::read(root.join("usr/lib/wsl/nixos.ico")).unwrap(),
        ico()
    );
    let listing = run_ok(
        Command::new("tar")
            .args(["-tvzf"])
            .arg(dir.path().join("a.wsl"))
            .arg("./usr/lib/wsl/nixos.ico"),
    );
    assert!(
        String::from_utf8_lossy(&listing).starts_with("-rw-r--r-- 0/0 "),
        "{}",
        String::from_utf8_lossy(&listing)
    );
    let conf = std::fs::read_to_string(root.join("etc/wsl-distribution.conf")).unwrap();
    assert!(
        conf.contains("\n[shortcut]\nicon=/usr/lib/wsl/nixos.ico\n"),
        "{conf}"
    );
    let verdict = verdict(dir.path(), &root);
    assert_eq!(verdict.status, 0, "{}", verdict.text);
    assert!(
        !verdict.warnings.iter().any(|w| w.contains("icon")),
        "{}",
        verdict.text
    );
}

#[test]
fn write_icon_refuses_what_is_not_a_small_ico_and_a_bare_tarball() {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("logo.png");
    std::fs::write(&png, b"\x89PNG\r\n\x1a\n").unwrap();
    let output = write_defaults(dir.path(), "png", &["--icon".as_ref(), png.as_os_str()]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("icon {}: not an .ico file", png.display())),
        "{stderr}"
    );
    assert!(!dir.path().join("png.wsl").exists());

    let big = dir.path().join("big.ico");
    let mut bytes = ico();
    bytes.resize((1 << 20) + 1, 0);
    std::fs::write(&big, bytes).unwrap();
    let output = write_defaults(dir.path(), "big", &["--icon".as_ref(), big.as_os_str()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "{} is larger than the limit of 1048576 bytes for an icon (WSL's limit)",
            big.display()
        )),
        "{stderr}"
    );
    // An endless input stops at the limit.
    let output = write_defaults(
        dir.path(),
        "zero",
        &["--icon".as_ref(), "/dev/zero".as_ref()],
    );
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("/dev/zero is larger than the limit"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let closure = closure_file(v1(), dir.path(), "bare.json");
    let bare = wsl_tarball()
        .args(["write", "--no-skeleton", "--system", v1(), "--icon"])
        .arg(&big)
        .arg("--closure")
        .arg(&closure)
        .arg("-o")
        .arg(dir.path().join("bare.wsl"))
        .output()
        .unwrap();
    assert_eq!(bare.status.code(), Some(2), "usage error");
    assert!(
        String::from_utf8_lossy(&bare.stderr).contains("--icon"),
        "{}",
        String::from_utf8_lossy(&bare.stderr)
    );
}

#[test]
fn an_oobe_command_whose_interpreter_is_not_in_the_rootfs_warns() {
    let dir = tempfile::tempdir().unwrap();
    let root = nixos_root(dir.path());
    put(
        &root,
        "etc/wsl-distribution.conf",
        b"[oobe]\ncommand=/usr/lib/wsl/first-run\n",
        0o644,
    );
    put(
        &root,
        "usr/lib/wsl/first-run",
        b"#!/usr/bin/python3 -u\n",
        0o755,
    );
    let verdict_python = verdict(dir.path(), &root);
    assert_eq!(verdict_python.status, 0, "{}", verdict_python.text);
    assert_warns_with(
        &verdict_python,
        "oobe.command /usr/lib/wsl/first-run: its interpreter \"/usr/bin/python3\" is not an executable file inside the rootfs",
    );
    put(
        &root,
        "usr/lib/wsl/first-run",
        b"#!/bin/sh\nexit 0\n",
        0o755,
    );
    let fine = verdict(dir.path(), &root);
    assert!(
        !fine.warnings.iter().any(|w| w.contains("oobe.command")),
        "{}",
        fine.text
    );
}
