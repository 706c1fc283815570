//! `wsl-tarball build` against the nixpkgs-free fake NixOS system in
//! tests/nix, driven the way `nix run` drives it, with the skeleton checked
//! against what WSL needs from a distribution.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

fn test_flake() -> String {
    format!("path:{}", repo_root().join("tests/nix").display())
}

/// Builds HOST from the test flake into DIR/name and extracts it to DIR/root.
fn build_and_extract(dir: &Path, host: &str) -> (PathBuf, PathBuf) {
    let tarball = dir.join(format!("{host}.wsl"));
    run_ok(
        wsl_tarball()
            .env("NIX_CONFIG", NIX_CONFIG)
            .args(["build", host, "--flake", &test_flake(), "--quiet", "-o"])
            .arg(&tarball),
    );
    assert_verifies(&tarball, Rootfs::Skeleton);
    let plain = dir.join(format!("{host}.tar"));
    std::fs::write(
        &plain,
        run_ok(Command::new("gzip").arg("-dc").arg(&tarball)),
    )
    .unwrap();
    let root = dir.join(format!("root-{host}"));
    extract(&plain, &root);
    (plain, root)
}

/// Follows symlinks inside the rootfs: absolute targets are taken relative
/// to `root`, as WSL resolves them inside the distribution.
fn resolve_in_root(root: &Path, path: &str) -> PathBuf {
    let mut current = PathBuf::from(path.trim_start_matches('/'));
    for _ in 0..40 {
        let mut resolved = PathBuf::new();
        let mut changed = false;
        let components: Vec<_> = current.components().collect();
        for (i, component) in components.iter().enumerate() {
            resolved.push(component);
            let host = root.join(&resolved);
            if let Ok(target) = std::fs::read_link(&host) {
                let mut next = if target.is_absolute() {
                    PathBuf::from(target.strip_prefix("/").unwrap())
                } else {
                    resolved.parent().unwrap().join(target)
                };
                for rest in &components[i + 1..] {
                    next.push(rest);
                }
                current = next;
                changed = true;
                break;
            }
        }
        if !changed {
            return root.join(current);
        }
    }
    panic!("symlink loop resolving {path}");
}

fn is_elf(path: &Path) -> bool {
    std::fs::read(path).is_ok_and(|bytes| bytes.starts_with(b"\x7fELF"))
}

fn table(root: &Path, file: &str) -> BTreeMap<String, Vec<String>> {
    std::fs::read_to_string(root.join(file))
        .unwrap()
        .lines()
        .map(|line| {
            let fields: Vec<String> = line.split(':').map(str::to_owned).collect();
            (fields[0].clone(), fields)
        })
        .collect()
}

#[test]
fn built_skeleton_meets_what_wsl_needs() {
    let dir = tempfile::tempdir().unwrap();
    let (plain, root) = build_and_extract(dir.path(), "fake");

    // Users: root is uid 0; the default user exists with its home.
    let passwd = table(&root, "etc/passwd");
    assert_eq!(passwd["root"][2], "0");
    assert_eq!(passwd["nixos"][2..6], ["1000", "100", "", "/home/nixos"]);
    assert_eq!(
        passwd["messagebus"][2], "999",
        "missing uid allocated from 999 down"
    );
    let group = table(&root, "etc/group");
    assert_eq!(group["wheel"][3], "nixos");
    // No password hashes anywhere, and shadow is private.
    let shadow = table(&root, "etc/shadow");
    assert!(shadow.values().all(|fields| fields[1] == "!"), "{shadow:?}");
    let shadow_meta = std::fs::metadata(root.join("etc/shadow")).unwrap();
    assert!(matches!(shadow_meta.mode() & 0o777, 0o600 | 0o640));
    let home = std::fs::metadata(root.join("home/nixos")).unwrap();
    assert_eq!(
        (home.uid(), home.gid(), home.mode() & 0o777),
        (1000, 100, 0o700)
    );

    // Programs WSL starts resolve to ELF files inside the rootfs.
    for program in ["/bin/sh", "/bin/bash", "/sbin/init", "/usr/bin/env"] {
        let resolved = resolve_in_root(&root, program);
        assert!(
            is_elf(&resolved),
            "{program} resolves to {resolved:?}, not an ELF"
        );
    }

    // /etc as setup-etc makes it; wsl.conf present before boot.
    let wsl_conf = std::fs::read_to_string(resolve_in_root(&root, "/etc/wsl.conf")).unwrap();
    assert!(wsl_conf.contains("default=nixos"));
    assert_eq!(
        std::fs::read_link(root.join("etc/hostname")).unwrap(),
        Path::new("/etc/static/hostname")
    );
    assert_eq!(
        std::fs::read_link(root.join("etc/ssh/ssh_config")).unwrap(),
        Path::new("/etc/static/ssh/ssh_config")
    );
    let sudoers = std::fs::symlink_metadata(root.join("etc/sudoers")).unwrap();
    assert!(
        sudoers.is_file(),
        "a .mode companion means a copy, not a link"
    );
    assert_eq!(
        (sudoers.mode() & 0o7777, sudoers.uid(), sudoers.gid()),
        (0o440, 0, 1)
    );
    assert!(std::fs::read_link(root.join("etc/resolv.conf"))
        .unwrap()
        .starts_with("/nix/store"));
    assert_eq!(
        std::fs::read_to_string(root.join("etc/.clean")).unwrap(),
        "resolv.conf\nsudoers\n"
    );
    assert!(root.join("etc/NIXOS").is_file());
    assert!(std::fs::read_link(root.join("etc/static"))
        .unwrap()
        .starts_with("/nix/store"));

    // wsl-distribution.conf: root-owned 0644, icon under /usr/share/wsl.
    let conf_meta = std::fs::metadata(root.join("etc/wsl-distribution.conf")).unwrap();
    assert_eq!(
        (conf_meta.uid(), conf_meta.gid(), conf_meta.mode() & 0o777),
        (0, 0, 0o644)
    );
    let conf = std::fs::read_to_string(root.join("etc/wsl-distribution.conf")).unwrap();
    assert!(conf.contains("[oobe]\ndefaultName=NixOS-Fake\n"), "{conf}");
    assert!(
        conf.contains("[shortcut]\nicon=/usr/share/wsl/nixos.ico\n"),
        "{conf}"
    );
    let icon = std::fs::read(root.join("usr/share/wsl/nixos.ico")).unwrap();
    assert!(icon.starts_with(&[0, 0, 1, 0]) && icon.len() <= 1 << 20);

    assert!(
        std::fs::read_to_string(root.join("etc/nixos/configuration.nix"))
            .unwrap()
            .contains("wsl.enable = true")
    );
    let profile = std::fs::read_link(root.join("nix/var/nix/profiles/system-1-link")).unwrap();
    assert!(profile
        .to_string_lossy()
        .contains("nixos-system-nixos-wsl-fake"));

    // No hard links in the archive.
    let listing = run_text(Command::new("tar").arg("-tvf").arg(&plain));
    assert!(
        !listing.lines().any(|l| l.starts_with('h')),
        "hard link entry found"
    );
}

#[test]
fn a_host_without_the_module_gets_the_default_skeleton() {
    let dir = tempfile::tempdir().unwrap();
    let (_, root) = build_and_extract(dir.path(), "bare");
    assert_eq!(table(&root, "etc/passwd")["root"][2], "0");
    for program in ["/bin/sh", "/bin/bash", "/sbin/init"] {
        assert!(is_elf(&resolve_in_root(&root, program)), "{program}");
    }
    let conf = std::fs::read_to_string(root.join("etc/wsl-distribution.conf")).unwrap();
    assert_eq!(conf, "[oobe]\ndefaultName=NixOS\n");
}

#[test]
fn build_reports_nix_errors_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("nixos.wsl");
    let result = wsl_tarball()
        .env("NIX_CONFIG", NIX_CONFIG)
        .args(["build", "no-such-host", "--flake", &test_flake(), "-o"])
        .arg(&output)
        .output()
        .unwrap();
    assert!(!result.status.success());
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(
        stderr.contains("no-such-host") && stderr.contains("Hint"),
        "{stderr}"
    );
    assert!(!output.exists());
}

#[test]
fn every_nix_file_parses() {
    let mut files = Vec::new();
    let mut stack = vec![repo_root()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() && !name.starts_with('.') && name != "target" {
                stack.push(path);
            } else if name.ends_with(".nix") {
                files.push(path);
            }
        }
    }
    assert!(files.len() >= 2, "found {files:?}");
    for file in files {
        run_ok(nix_command("nix-instantiate").arg("--parse").arg(&file));
    }
}

#[test]
fn the_pure_derivation_and_the_app_write_the_same_bytes() {
    // Inside a derivation the closure comes from exportReferencesGraph
    // (.attrs.json); `build` reads `nix path-info`. Both must give one tarball.
    let dir = tempfile::tempdir().unwrap();
    let binary = env!("CARGO_BIN_EXE_wsl-tarball");
    let binary_hash = run_text(Command::new("sha256sum").arg(binary));
    let expression = format!(
        "(builtins.getFlake \"{}\").lib.wslTarballWith \"{binary}\" \"{}\"",
        test_flake(),
        &binary_hash[..64]
    );
    let nix_build = |extra: &[&str]| -> serde_json::Value {
        let mut command = nix_command("nix");
        command.args(["build", "--no-link", "--json", "--impure"]);
        command.args(extra).arg("--expr").arg(&expression);
        serde_json::from_slice(&run_ok(&mut command)).unwrap()
    };
    nix_build(&[]);
    // Building it again must give the same bytes, or Nix refuses.
    let built = nix_build(&["--rebuild"]);
    let out = built[0]["outputs"]["out"].as_str().unwrap();
    assert_verifies(Path::new(&format!("{out}/nixos.wsl")), Rootfs::Skeleton);
    let from_derivation = std::fs::read(format!("{out}/nixos.wsl")).unwrap();

    let from_app = dir.path().join("app.wsl");
    run_ok(
        wsl_tarball()
            .env("NIX_CONFIG", NIX_CONFIG)
            .args([
                "build",
                "fake",
                "--flake",
                &test_flake(),
                "--mtime",
                "1",
                "--quiet",
                "-o",
            ])
            .arg(&from_app),
    );
    assert_verifies(&from_app, Rootfs::Skeleton);
    assert!(
        std::fs::read(&from_app).unwrap() == from_derivation,
        "nix build and the app wrote different tarballs"
    );
}

#[test]
fn the_security_check_runs_as_a_derivation_on_the_closure() {
    let binary = env!("CARGO_BIN_EXE_wsl-tarball");
    let binary_hash = run_text(Command::new("sha256sum").arg(binary));
    let expression = format!(
        "(builtins.getFlake \"{}\").lib.securityCheckWith \"{binary}\" \"{}\"",
        test_flake(),
        &binary_hash[..64]
    );
    let built: serde_json::Value = serde_json::from_slice(&run_ok(
        nix_command("nix")
            .args(["build", "--no-link", "--json", "--impure", "--expr"])
            .arg(&expression),
    ))
    .unwrap();
    let out = built[0]["outputs"]["out"].as_str().unwrap();
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(format!("{out}/report.json")).unwrap()).unwrap();
    assert!(report.is_object(), "{report}");
    let text = report.to_string();
    assert!(
        !text.contains("\"severity\":\"error\""),
        "the fake system has no secrets: {text}"
    );
}
