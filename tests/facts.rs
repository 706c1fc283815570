//! Facts are validated where they enter: a value that would inject a line
//! into /etc/passwd or /etc/wsl-distribution.conf, or reach outside its
//! place in the rootfs, and an endless file the facts name, each fail
//! `write` with the field and the value named, and leave the destination
//! as it was.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::*;

/// The test flake's fake NixOS toplevel, built once.
fn fake_system() -> &'static str {
    static SYSTEM: OnceLock<String> = OnceLock::new();
    SYSTEM.get_or_init(|| {
        let flake = format!("path:{}", repo_root().join("tests/nix").display());
        let built: serde_json::Value = serde_json::from_slice(&run_ok(
            nix_command("nix")
                .args(["build", "--no-link", "--json"])
                .arg(format!(
                    "{flake}#nixosConfigurations.fake.config.system.build.toplevel"
                )),
        ))
        .unwrap();
        built[0]["outputs"]["out"].as_str().unwrap().to_owned()
    })
}

/// Facts for the fake system with one normal user; `change` edits the JSON.
fn facts_file(dir: &Path, change: impl FnOnce(&mut serde_json::Value)) -> PathBuf {
    let mut facts = serde_json::json!({
        "system": fake_system(),
        "users": {
            "users": [
                {"name": "root", "uid": 0, "group": "root", "description": "System administrator",
                 "home": "/root", "shell": "/run/current-system/sw/bin/bash"},
                {"name": "nixos", "uid": 1000, "group": "users", "description": "",
                 "home": "/home/nixos", "shell": "/run/current-system/sw/bin/bash",
                 "createHome": true, "isNormalUser": true},
            ],
            "groups": [{"name": "root", "gid": 0}, {"name": "wheel", "gid": 1}, {"name": "users", "gid": 100}],
        },
        "defaultName": "NixOS",
    });
    change(&mut facts);
    let path = dir.join("facts.json");
    std::fs::write(&path, facts.to_string()).unwrap();
    path
}

const PREVIOUS: &[u8] = b"previous good tarball";

/// `write --facts FACTS` must fail naming each needle, leaving the output
/// directory with only its old `nixos.wsl`, unchanged.
fn assert_write_fails(dir: &Path, facts: &Path, needles: &[&str]) {
    let closure = write_path_info(fake_system(), dir);
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let existing = out.join("nixos.wsl");
    std::fs::write(&existing, PREVIOUS).unwrap();
    let result = wsl_tarball()
        .arg("write")
        .arg("--closure")
        .arg(&closure)
        .arg("--facts")
        .arg(facts)
        .arg("-o")
        .arg(&existing)
        .arg("--quiet")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(1), "{stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "lacks {needle:?}:\n{stderr}");
    }
    assert_eq!(std::fs::read(&existing).unwrap(), PREVIOUS);
    assert_eq!(dir_names(&out), vec!["nixos.wsl"]);
}

fn set_user_field(facts: &mut serde_json::Value, key: &str, value: serde_json::Value) {
    facts["users"]["users"][1][key] = value;
}

#[test]
fn a_newline_or_colon_in_a_user_field_is_refused() {
    for (key, value) in [
        ("name", "evil:x:0:0::/:/bin/sh"),
        ("name", "nixos\nevil"),
        ("description", "x\nevil:x:0:0::/:/bin/sh"),
        ("description", "a:b"),
        ("home", "/home/x\nevil:x:0:0::/:/bin/sh"),
        ("shell", "/bin/sh\nevil:x:0:0::/:/bin/sh"),
        ("group", "users:0"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let facts = facts_file(dir.path(), |f| set_user_field(f, key, value.into()));
        let quoted = format!("{value:?}");
        assert_write_fails(
            dir.path(),
            &facts,
            &[&format!("facts users.users[1].{key} {quoted}: ")],
        );
    }
}

#[test]
fn homes_outside_their_place_are_refused() {
    for home in [
        "/../../etc/x",
        "/",
        "/etc",
        "/nix/store",
        "/nix/store/abc-x",
        "home/x",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let facts = facts_file(dir.path(), |f| set_user_field(f, "home", home.into()));
        assert_write_fails(
            dir.path(),
            &facts,
            &[&format!("facts users.users[1].home {home:?}: ")],
        );
    }
}

#[test]
fn a_bin_name_that_is_not_a_file_name_is_refused() {
    for name in ["..", ".", "a/b"] {
        let dir = tempfile::tempdir().unwrap();
        let facts = facts_file(dir.path(), |f| {
            f["bin"] = serde_json::json!([{"name": name, "src": "/nix/store/x-sh/bin/sh"}]);
        });
        assert_write_fails(
            dir.path(),
            &facts,
            &[&format!("facts bin[0].name {name:?}: "), "one file name"],
        );
    }
}

#[test]
fn a_default_name_that_breaks_the_ini_is_refused() {
    for name in ["NixOS\nicon=/etc/shadow", "[shortcut]", "a=b", ""] {
        let dir = tempfile::tempdir().unwrap();
        let facts = facts_file(dir.path(), |f| f["defaultName"] = name.into());
        assert_write_fails(
            dir.path(),
            &facts,
            &[
                &format!("facts defaultName {name:?}: "),
                "wsl.tarball.defaultName",
            ],
        );
    }
}

#[test]
fn init_and_link_targets_must_be_absolute_paths() {
    for (key, value) in [("init", "systemd-shim"), ("usrBinEnv", "/nix/store/x\n/y")] {
        let dir = tempfile::tempdir().unwrap();
        let facts = facts_file(dir.path(), |f| f[key] = value.into());
        assert_write_fails(dir.path(), &facts, &[&format!("facts {key} {value:?}: ")]);
    }
}

#[test]
fn an_endless_facts_file_stops_at_its_limit() {
    let dir = tempfile::tempdir().unwrap();
    assert_write_fails(
        dir.path(),
        Path::new("/dev/zero"),
        &["/dev/zero is larger than the limit of 67108864 bytes for a facts file"],
    );
}

#[test]
fn endless_files_named_by_the_facts_stop_at_their_limits() {
    for (key, option, limit) in [
        ("icon", "wsl.tarball.icon", 1 << 20),
        (
            "terminalProfile",
            "wsl.tarball.terminalProfileTemplate",
            1 << 20,
        ),
        ("nixosConfig", "wsl.tarball.configPath", 16 << 20),
        ("oobeCommand", "wsl.tarball.oobe.command", 16 << 20),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let facts = facts_file(dir.path(), |f| f[key] = "/dev/zero".into());
        assert_write_fails(
            dir.path(),
            &facts,
            &[
                &format!("facts field `{key}` ({option}): "),
                &format!("/dev/zero is larger than the limit of {limit} bytes"),
            ],
        );
    }
}

#[test]
fn a_user_whose_group_is_not_declared_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let facts = facts_file(dir.path(), |f| set_user_field(f, "group", "nosuch".into()));
    assert_write_fails(
        dir.path(),
        &facts,
        &["facts users.users[1].group (user \"nixos\"): group \"nosuch\" is not declared"],
    );
}

#[test]
fn valid_facts_write_a_tarball_that_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let facts = facts_file(dir.path(), |_| {});
    let closure = write_path_info(fake_system(), dir.path());
    let output = dir.path().join("ok.wsl");
    run_ok(
        wsl_tarball()
            .arg("write")
            .arg("--closure")
            .arg(&closure)
            .arg("--facts")
            .arg(&facts)
            .arg("-o")
            .arg(&output)
            .arg("--quiet"),
    );
    run_ok(wsl_tarball().arg("verify").arg(&output));
    let listing = run_text(Command::new("tar").arg("-tzf").arg(&output));
    assert!(listing.lines().any(|l| l == "./home/nixos/"), "{listing}");
}

#[test]
fn an_oobe_command_that_is_no_program_and_uid_minus_one_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "echo hello\n").unwrap();
    let facts = facts_file(dir.path(), |f| {
        f["oobeCommand"] = text.to_str().unwrap().into()
    });
    assert_write_fails(
        dir.path(),
        &facts,
        &[&format!(
            "facts field `oobeCommand` (wsl.tarball.oobe.command): {} is neither a #! script nor an ELF program",
            text.display()
        )],
    );
    let facts = facts_file(dir.path(), |f| f["defaultUid"] = 4294967295u32.into());
    assert_write_fails(
        dir.path(),
        &facts,
        &["facts defaultUid \"4294967295\": uid 4294967295 is (uid_t)-1"],
    );
}

/// A small .ico: an ICONDIR for one 1x1 32-bit image and its bitmap.
fn ico() -> Vec<u8> {
    let mut bytes = vec![0, 0, 1, 0, 1, 0, 1, 1, 0, 0, 1, 0, 32, 0];
    bytes.extend_from_slice(&48u32.to_le_bytes());
    bytes.extend_from_slice(&22u32.to_le_bytes());
    bytes.extend_from_slice(&40u32.to_le_bytes());
    bytes.extend_from_slice(&1u32.to_le_bytes());
    bytes.extend_from_slice(&2u32.to_le_bytes());
    bytes.extend_from_slice(&[1, 0, 32, 0]);
    bytes.extend_from_slice(&[0; 24]);
    bytes.extend_from_slice(&[0x7e, 0xba, 0xe4, 0xff, 0, 0, 0, 0]);
    bytes
}

#[test]
fn every_distribution_option_reaches_the_rootfs_and_verify_warns_of_none() {
    let dir = tempfile::tempdir().unwrap();
    let icon = dir.path().join("team.ico");
    std::fs::write(&icon, ico()).unwrap();
    let profile = dir.path().join("profile.json");
    std::fs::write(&profile, br#"{"colorScheme": "Campbell"}"#).unwrap();
    let first_run = repo_root().join("nix/first-run.sh");
    let facts = facts_file(dir.path(), |f| {
        f["icon"] = icon.to_str().unwrap().into();
        f["terminalProfile"] = profile.to_str().unwrap().into();
        f["oobeCommand"] = first_run.to_str().unwrap().into();
        f["defaultUid"] = 1000.into();
        f["shortcutEnabled"] = false.into();
        f["windowsTerminalEnabled"] = false.into();
    });
    let closure = write_path_info(fake_system(), dir.path());
    let output = dir.path().join("all.wsl");
    run_ok(
        wsl_tarball()
            .arg("write")
            .arg("--closure")
            .arg(&closure)
            .arg("--facts")
            .arg(&facts)
            .arg("-o")
            .arg(&output)
            .arg("--quiet"),
    );
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    run_ok(
        Command::new("tar")
            .args(["--numeric-owner", "-xzpf"])
            .arg(&output)
            .arg("-C")
            .arg(&root),
    );
    assert_eq!(
        std::fs::read_to_string(root.join("etc/wsl-distribution.conf")).unwrap(),
        "[oobe]\ndefaultName=NixOS\ncommand=/usr/lib/wsl/first-run\ndefaultUid=1000\n\
         \n[shortcut]\nenabled=false\nicon=/usr/lib/wsl/nixos.ico\n\
         \n[windowsterminal]\nenabled=false\nprofileTemplate=/usr/lib/wsl/terminal-profile.json\n"
    );
    use std::os::unix::fs::MetadataExt;
    let placed = |path: &str| {
        let meta = std::fs::symlink_metadata(root.join(path)).unwrap();
        assert!(meta.is_file(), "{path}");
        (meta.mode() & 0o7777, meta.uid(), meta.gid())
    };
    assert_eq!(placed("usr/lib/wsl/first-run"), (0o755, 0, 0));
    assert_eq!(
        std::fs::read(root.join("usr/lib/wsl/first-run")).unwrap(),
        std::fs::read(&first_run).unwrap()
    );
    assert_eq!(placed("usr/lib/wsl/nixos.ico"), (0o644, 0, 0));
    assert_eq!(placed("usr/lib/wsl/terminal-profile.json"), (0o640, 0, 0));

    let report = wsl_tarball()
        .args(["verify", "--json"])
        .arg(&output)
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
    assert!(report.status.success(), "{json:#}");
    let check = json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "wsl-format")
        .unwrap();
    assert_eq!(check["status"], "passed", "{check:#}");
    // None of the options draws a warning; what is left, Microsoft's
    // validator says of every NixOS-WSL image: its /etc/wsl.conf is a link
    // to a read-only store file naming user.default, and the default user
    // NixOS declares already holds oobe.defaultUid.
    assert_eq!(
        check["warnings"],
        serde_json::json!([
            "/etc/wsl.conf has mode 0444, expected 0644 or 0664",
            "/etc/wsl.conf: discouraged key user.default=nixos (oobe.defaultUid in /etc/wsl-distribution.conf replaces it)",
            "/etc/passwd already has the default uid (oobe.defaultUid): nixos"
        ]),
        "{check:#}"
    );
}
