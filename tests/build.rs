//! `wsl-tarball build` and the Nix it drives: which host it builds when none
//! is named, how a failing Nix command is reported, and that it works with
//! the Nix NixOS users run today (2.34) as well as Debian's 2.8.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

fn test_flake() -> String {
    format!("path:{}", repo_root().join("tests/nix").display())
}

/// A flake with exactly one host, whose toplevel is made of host programs.
fn one_host_flake(dir: &Path) -> String {
    let flake = dir.join("one-host");
    std::fs::create_dir_all(&flake).unwrap();
    std::fs::write(
        flake.join("flake.nix"),
        r#"{
  outputs = { self }: let
    mk = name: script: derivation {
      inherit name;
      system = "x86_64-linux";
      builder = "/bin/sh";
      PATH = "/usr/bin:/bin";
      args = [ "-c" script ];
    };
    # As NixOS makes it: every entry of the etc tree is a symlink.
    wslConf = mk "wsl.conf" "printf '[boot]\\nsystemd=true\\n' > $out";
    etc = mk "etc" ''
      mkdir -p $out/etc
      ln -s ${wslConf} $out/etc/wsl.conf
    '';
  in {
    nixosConfigurations.only.config.system.build.toplevel = mk "nixos-system-only" ''
      mkdir -p $out/sw/bin
      cp /bin/bash $out/sw/bin/bash
      ln -s bash $out/sw/bin/sh
      cp /usr/bin/env $out/sw/bin/env
      cp /bin/true $out/init
      ln -s ${etc}/etc $out/etc
    '';
  };
}
"#,
    )
    .unwrap();
    format!("path:{}", flake.display())
}

fn build(args: &[&str]) -> std::process::Output {
    wsl_tarball()
        .env("NIX_CONFIG", NIX_CONFIG)
        .arg("build")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn without_a_host_the_only_one_is_built_and_several_are_listed() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("only.wsl");
    let built = build(&[
        "--flake",
        &one_host_flake(dir.path()),
        "-o",
        output.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&built.stderr);
    assert!(built.status.success(), "{stderr}");
    assert!(
        stderr.contains("wsl-tarball: building only, the only nixosConfiguration of path:"),
        "{stderr}"
    );
    // Quiet by default: not the `nix path-info` command it read.
    assert!(!stderr.contains("path-info"), "{stderr}");
    assert_verifies_with_skeleton(&output);

    // The test flake has three hosts and none names a system: all listed,
    // nothing written.
    let output = dir.path().join("several.wsl");
    let several = build(&["--flake", &test_flake(), "-o", output.to_str().unwrap()]);
    assert_eq!(several.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&several.stderr);
    let hosts = test_flake_hosts();
    assert!(hosts.len() > 1, "{hosts:?}");
    assert!(
        stderr.contains(&format!(
            "has {} nixosConfigurations; name the one to build: {}",
            hosts.len(),
            hosts.join(", ")
        )),
        "{stderr}"
    );
    assert!(!output.exists());
    assert_eq!(dir_names(dir.path()), ["one-host", "only.wsl"]);
}

/// A flake whose only host fails to evaluate.
fn broken_host_flake(dir: &Path) -> String {
    let flake = dir.join("broken-host");
    std::fs::create_dir_all(&flake).unwrap();
    std::fs::write(
        flake.join("flake.nix"),
        "{ outputs = { self }: { nixosConfigurations.broken = throw \"this host does not evaluate\"; }; }\n",
    )
    .unwrap();
    format!("path:{}", flake.display())
}

#[test]
fn a_failing_nix_command_is_printed_so_it_can_be_pasted() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("nixos.wsl");
    let flake = broken_host_flake(dir.path());
    let failed = build(&["broken", "--flake", &flake, "-o", output.to_str().unwrap()]);
    assert_eq!(failed.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&failed.stderr);
    let quoted = stderr
        .lines()
        .find_map(|line| line.split('`').nth(1))
        .unwrap_or_else(|| panic!("no quoted command in {stderr}"));
    assert!(
        quoted.starts_with(
            "nix --extra-experimental-features 'nix-command flakes' eval --json --apply "
        ) && quoted.ends_with(&format!(" -- {flake}#nixosConfigurations")),
        "{stderr}"
    );
    // Pasted into a shell, it fails the same way (Nix's own message).
    let pasted = Command::new("sh")
        .args(["-c", quoted])
        .env("NIX_CONFIG", NIX_CONFIG)
        .output()
        .unwrap();
    assert!(!pasted.status.success());
    assert!(String::from_utf8_lossy(&pasted.stderr).contains("this host does not evaluate"));
    assert!(!output.exists());
}

/// The test flake's hosts, as `nix eval` lists them.
fn test_flake_hosts() -> Vec<String> {
    serde_json::from_slice(&run_ok(
        nix_command("nix")
            .args(["eval", "--json"])
            .arg(format!("{}#nixosConfigurations", test_flake()))
            .args(["--apply", "builtins.attrNames"]),
    ))
    .unwrap()
}

#[test]
fn a_host_in_the_flake_reference_is_built_as_nixos_rebuild_takes_it() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("fake.wsl");
    // `nixos-rebuild --flake .#fake`: the host after the `#`.
    let built = build(&[
        "--flake",
        &format!("{}#fake", test_flake()),
        "-o",
        output.to_str().unwrap(),
        "--quiet",
    ]);
    let stderr = String::from_utf8_lossy(&built.stderr);
    assert!(built.status.success(), "{stderr}");
    assert_verifies_with_skeleton(&output);

    // The host twice, differently: a usage error, nothing built.
    let output = dir.path().join("twice.wsl");
    let twice = build(&[
        "bare",
        "--flake",
        &format!("{}#fake", test_flake()),
        "-o",
        output.to_str().unwrap(),
    ]);
    assert_eq!(twice.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&twice.stderr);
    assert!(
        stderr.contains("bare") && stderr.contains("#fake"),
        "{stderr}"
    );
    assert!(!output.exists());
}

#[test]
fn a_host_that_is_not_there_gets_the_list_of_hosts() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("nixos.wsl");
    let failed = build(&[
        "no-such-host",
        "--flake",
        &test_flake(),
        "-o",
        output.to_str().unwrap(),
    ]);
    assert_eq!(failed.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        stderr.contains(&format!(
            "{} has no nixosConfiguration no-such-host; its nixosConfigurations: {}",
            test_flake(),
            test_flake_hosts().join(", ")
        )),
        "{stderr}"
    );
    // Not Nix's long attribute error.
    assert!(!stderr.contains("does not provide attribute"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(!output.exists());
}

/// `verify` of a tarball with a NixOS skeleton passes.
fn assert_verifies_with_skeleton(tarball: &Path) {
    let verified = run_wsl_tarball(&["verify", tarball.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&verified.stdout);
    assert!(verified.status.success(), "{stdout}");
    assert!(stdout.contains("ok    WSL skeleton"), "{stdout}");
}

#[test]
fn build_works_with_a_current_nix_without_its_deprecation_warning() {
    let Some(chroot) = newer_nix_chroot() else {
        eprintln!("SKIPPED: set WSL_TARBALL_NEWER_NIX to a chroot from ../shared/newer-nix/setup sid DIR (.ci/run does)");
        return;
    };
    let version = run_text(
        Command::new("chroot")
            .arg(&chroot)
            .args(["nix", "--version"]),
    );
    assert!(version.contains("2.3"), "a current Nix: {version}");
    // The binary and the test flake go into the chroot; Nix there builds the
    // fake system into its own store.
    let work = tempfile::Builder::new()
        .prefix("wsl-tarball-build-")
        .tempdir_in(chroot.join("tmp"))
        .unwrap();
    let inside = Path::new("/tmp").join(work.path().file_name().unwrap());
    std::fs::copy(
        env!("CARGO_BIN_EXE_wsl-tarball"),
        work.path().join("wsl-tarball"),
    )
    .unwrap();
    run_ok(
        Command::new("cp")
            .arg("-r")
            .arg(repo_root().join("tests/nix"))
            .arg(work.path().join("flake")),
    );
    let built = Command::new("chroot")
        .arg(&chroot)
        .arg(inside.join("wsl-tarball"))
        .args(["build", "fake", "--flake"])
        .arg(format!("path:{}", inside.join("flake").display()))
        .arg("-o")
        .arg(inside.join("fake.wsl"))
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("HOME", "/root")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&built.stderr);
    assert!(built.status.success(), "{stderr}");
    assert!(!stderr.contains("will become an error"), "{stderr}");
    assert_verifies_with_skeleton(&work.path().join("fake.wsl"));
    // Not because this Nix is silent: without the flag it warns.
    let in_chroot = |args: &[&str]| {
        Command::new("chroot")
            .arg(&chroot)
            .args(["nix", "--extra-experimental-features", "nix-command flakes"])
            .args(args)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("HOME", "/root")
            .output()
            .unwrap()
    };
    let toplevel = in_chroot(&[
        "build",
        "--no-link",
        "--print-out-paths",
        &format!(
            "path:{}#nixosConfigurations.fake.config.system.build.toplevel",
            inside.join("flake").display()
        ),
    ]);
    assert!(toplevel.status.success());
    let toplevel = String::from_utf8(toplevel.stdout).unwrap();
    let unflagged = in_chroot(&["path-info", "--json", "-r", toplevel.trim()]);
    assert!(
        String::from_utf8_lossy(&unflagged.stderr).contains("will become an error"),
        "{}",
        String::from_utf8_lossy(&unflagged.stderr)
    );
}
