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
