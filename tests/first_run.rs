//! nix/first-run.sh, the optional first-run command
//! (`wsl.tarball.firstRun.enable`), run with dash and with bash against a
//! rootfs in a temporary directory (`WSL_TARBALL_ROOT`) and a fake Windows
//! home (`WSL_TARBALL_WINDOWS_HOME`): the files it writes, its refusals of
//! a hostile first-run.conf (nothing written, exit 1, the line named), and
//! that hostile values land literally where they are accepted.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

const SHELLS: [&str; 2] = ["dash", "bash"];

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    windows: PathBuf,
}

/// A rootfs whose /etc/passwd and CA bundle are links inside it (as
/// NixOS's are, into /etc/static), and a Windows home with
/// `.wsl-tarball/first-run.conf` holding `conf`.
fn make(conf: &[u8]) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let windows = dir.path().join("Users/ada");
    for path in [
        "etc/static/ssl/certs",
        "etc/ssl/certs",
        "home/nixos",
        "root",
    ] {
        std::fs::create_dir_all(root.join(path)).unwrap();
    }
    std::fs::write(
        root.join("etc/static/passwd"),
        "root:x:0:0:System administrator:/root:/bin/sh\n\
         nixos:x:1000:100::/home/nixos:/bin/sh\n\
         alan:x:1001:100::/home/alan:/bin/sh\n",
    )
    .unwrap();
    std::os::unix::fs::symlink("/etc/static/passwd", root.join("etc/passwd")).unwrap();
    std::fs::write(
        root.join("etc/static/ssl/certs/ca-certificates.crt"),
        "-----BEGIN CERTIFICATE-----\nU1lTVEVN\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    std::os::unix::fs::symlink(
        "../../static/ssl/certs/ca-certificates.crt",
        root.join("etc/ssl/certs/ca-certificates.crt"),
    )
    .unwrap();
    std::fs::create_dir_all(windows.join(".wsl-tarball")).unwrap();
    std::fs::write(windows.join(".wsl-tarball/first-run.conf"), conf).unwrap();
    Fixture {
        _dir: dir,
        root,
        windows,
    }
}

fn run(shell: &str, fixture: &Fixture) -> Output {
    Command::new(shell)
        .arg(repo_root().join("nix/first-run.sh"))
        .env("WSL_TARBALL_ROOT", &fixture.root)
        .env("WSL_TARBALL_WINDOWS_HOME", &fixture.windows)
        .current_dir(fixture.root.parent().unwrap())
        .output()
        .unwrap()
}

fn git_config(file: &Path, key: &str) -> String {
    let out = run_ok(
        Command::new("git")
            .args(["config", "--file"])
            .arg(file)
            .arg(key),
    );
    String::from_utf8(out)
        .unwrap()
        .trim_end_matches('\n')
        .to_owned()
}

/// Every file under `root`, with its bytes (links as their targets).
fn tree(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                pending.push(path);
            } else if meta.is_symlink() {
                let target = std::fs::read_link(&path).unwrap();
                files.push((path, target.into_os_string().into_encoded_bytes()));
            } else {
                files.push((path.clone(), std::fs::read(&path).unwrap()));
            }
        }
    }
    files.sort();
    files
}

const CA: &str = "-----BEGIN CERTIFICATE-----\r\nQ09SUA==\r\n-----END CERTIFICATE-----\r\n";

#[test]
fn it_sets_git_identity_ca_and_proxy_from_the_windows_side() {
    for shell in SHELLS {
        // A file saved by Notepad: a byte-order mark and CRLF line ends.
        let fixture = make(
            b"\xef\xbb\xbf# Ada's settings\r\n\r\n\
              git.name=Ada Lovelace\r\n\
              git.email=ada@example.com\r\n\
              ca.certificate=corp-root.pem\r\n\
              proxy.http=http://proxy.corp.example:3128\r\n\
              proxy.https=http://proxy.corp.example:3128\r\n\
              proxy.no=localhost,127.0.0.1,.corp.example\r\n",
        );
        std::fs::write(fixture.windows.join(".wsl-tarball/corp-root.pem"), CA).unwrap();
        let output = run(shell, &fixture);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{shell}: {stderr}");

        let gitconfig = fixture.root.join("home/nixos/.gitconfig");
        assert_eq!(git_config(&gitconfig, "user.name"), "Ada Lovelace");
        assert_eq!(git_config(&gitconfig, "user.email"), "ada@example.com");
        let meta = std::fs::metadata(&gitconfig).unwrap();
        assert_eq!(
            (meta.uid(), meta.gid(), meta.mode() & 0o777),
            (1000, 100, 0o644)
        );

        let etc = fixture.root.join("etc");
        assert_eq!(
            std::fs::read_to_string(etc.join("wsl-tarball/ca-bundle.crt")).unwrap(),
            "-----BEGIN CERTIFICATE-----\nU1lTVEVN\n-----END CERTIFICATE-----\n\
             -----BEGIN CERTIFICATE-----\nQ09SUA==\n-----END CERTIFICATE-----\n",
            "{shell}: the system's bundle, read through links inside the root, then the CA"
        );
        let environment = std::fs::read_to_string(etc.join("wsl-tarball/environment")).unwrap();
        for line in [
            "export SSL_CERT_FILE=/etc/wsl-tarball/ca-bundle.crt\n",
            "export NIX_SSL_CERT_FILE=/etc/wsl-tarball/ca-bundle.crt\n",
            "export http_proxy='http://proxy.corp.example:3128' HTTP_PROXY='http://proxy.corp.example:3128'\n",
            "export https_proxy='http://proxy.corp.example:3128' HTTPS_PROXY='http://proxy.corp.example:3128'\n",
            "export no_proxy='localhost,127.0.0.1,.corp.example' NO_PROXY='localhost,127.0.0.1,.corp.example'\n",
        ] {
            assert!(environment.contains(line), "{shell}: no {line:?} in {environment}");
        }
        // The environment as a login shell gets it.
        let profile = std::fs::read_to_string(etc.join("profile.local")).unwrap();
        assert_eq!(
            profile,
            "if [ -r /etc/wsl-tarball/environment ]; then . /etc/wsl-tarball/environment; fi\n"
        );
        let sourced = run_ok(
            Command::new(shell)
                .arg("-c")
                .arg(
                    ". \"$1\"; printf '%s|%s|%s' \"$https_proxy\" \"$NO_PROXY\" \"$SSL_CERT_FILE\"",
                )
                .arg("sh")
                .arg(etc.join("wsl-tarball/environment")),
        );
        assert_eq!(
            String::from_utf8(sourced).unwrap(),
            "http://proxy.corp.example:3128|localhost,127.0.0.1,.corp.example|/etc/wsl-tarball/ca-bundle.crt"
        );

        // Run again (WSL runs it until it succeeds once; a user may too):
        // profile.local keeps one line, the .gitconfig is not replaced.
        std::fs::write(&gitconfig, "[user]\n\tname = Mine\n").unwrap();
        let again = run(shell, &fixture);
        assert!(again.status.success());
        assert!(String::from_utf8_lossy(&again.stderr)
            .contains("/home/nixos/.gitconfig exists; left as it is"));
        assert_eq!(git_config(&gitconfig, "user.name"), "Mine");
        assert_eq!(
            std::fs::read_to_string(etc.join("profile.local")).unwrap(),
            profile
        );
    }
}

#[test]
fn the_default_user_comes_from_oobe_default_uid_then_wsl_conf() {
    for shell in SHELLS {
        let fixture = make(b"git.email=alan@example.com\n");
        std::fs::create_dir_all(fixture.root.join("home/alan")).unwrap();
        std::fs::write(
            fixture.root.join("etc/wsl.conf"),
            "[boot]\nsystemd=true\n[user]\ndefault=alan\n",
        )
        .unwrap();
        let output = run(shell, &fixture);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let alan = fixture.root.join("home/alan/.gitconfig");
        assert_eq!(git_config(&alan, "user.email"), "alan@example.com");
        assert!(!fixture.root.join("home/nixos/.gitconfig").exists());

        std::fs::remove_file(&alan).unwrap();
        std::fs::write(
            fixture.root.join("etc/wsl-distribution.conf"),
            "[oobe]\ndefaultName=NixOS\ndefaultUid=1000\n",
        )
        .unwrap();
        assert!(run(shell, &fixture).status.success());
        assert!(fixture.root.join("home/nixos/.gitconfig").is_file());
        assert!(!alan.exists(), "{shell}: oobe.defaultUid comes first");
    }
}

#[test]
fn hostile_values_land_literally_or_are_refused_with_nothing_written() {
    for shell in SHELLS {
        // Accepted values are data: git reads them back byte for byte, and
        // nothing they spell runs.
        let name = r#"Ada "$(touch pwned)" `touch pwned2` \n ; rm -rf / #"#;
        let fixture = make(format!("git.name={name}\ngit.email=ada@example.com\n").as_bytes());
        let output = run(shell, &fixture);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let gitconfig = fixture.root.join("home/nixos/.gitconfig");
        assert_eq!(git_config(&gitconfig, "user.name"), name, "{shell}");
        let parent = fixture.root.parent().unwrap();
        assert!(!parent.join("pwned").exists() && !parent.join("pwned2").exists());

        // Refused: each leaves the root exactly as it was and names the line.
        for (conf, needle) in [
            (
                "git.name=Ada\nproxy.http=http://proxy:3128/$(touch pwned)\n".as_bytes(),
                "first-run.conf line 2: proxy.http has a character outside a URL's letters",
            ),
            (
                b"proxy.https=http://proxy'; touch pwned; '\n",
                "line 1: proxy.https has a character outside",
            ),
            (
                b"proxy.http=ftp://proxy\n",
                "line 1: proxy.http is not an http://",
            ),
            (
                b"proxy.no=localhost $(id)\n",
                "line 1: proxy.no is a comma-separated list",
            ),
            (b"git.name=Ada\tLovelace\n", "line 1: a control character"),
            (b"git.name=Ada\rLovelace\n", "line 1: a control character"),
            (b"git.name=Ada\x1b[31mred\n", "line 1: a control character"),
            (
                b"git.name=Ada <ada@evil>\n",
                "line 1: git.name has '<' or '>'",
            ),
            (
                b"git.email=ada@example.com\ngit.email=eve@example.com\n",
                "line 2: git.email given twice",
            ),
            (
                b"git.email=ada example.com\n",
                "line 1: git.email is not an address",
            ),
            (b"git.name=\n", "line 1: git.name has an empty value"),
            (
                b"user.shell=/bin/evil\n",
                "line 1: unknown key \"user.shell\"",
            ),
            (b"$(touch pwned)=1\n", "line 1: an unknown key (keys:"),
            (b"git.name Ada\n", "line 1: not key=value"),
            (
                b"ca.certificate=../../etc/shadow\n",
                "line 1: ca.certificate names a file beside first-run.conf",
            ),
            (
                b"ca.certificate=missing.pem\n",
                "missing.pem: no such file (named by ca.certificate)",
            ),
        ] {
            let fixture = make(conf);
            let before = tree(&fixture.root);
            let output = run(shell, &fixture);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(1), "{shell} {conf:?}: {stderr}");
            assert!(
                stderr.contains(needle),
                "{shell} {conf:?}: lacks {needle:?}: {stderr}"
            );
            assert_eq!(
                tree(&fixture.root),
                before,
                "{shell} {conf:?} wrote something"
            );
            let parent = fixture.root.parent().unwrap();
            assert!(
                !parent.join("pwned").exists(),
                "{shell} {conf:?} ran a command"
            );
        }

        // A CA file that is not a PEM certificate.
        let fixture = make(b"ca.certificate=corp.pem\n");
        std::fs::write(
            fixture.windows.join(".wsl-tarball/corp.pem"),
            b"\x00\x01binary",
        )
        .unwrap();
        let output = run(shell, &fixture);
        assert_eq!(output.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&output.stderr).contains("corp.pem: not a PEM file"));
        assert!(!fixture.root.join("etc/wsl-tarball").exists());
    }
}

#[test]
fn no_file_or_no_windows_home_is_nothing_to_do() {
    for shell in SHELLS {
        let fixture = make(b"");
        std::fs::remove_file(fixture.windows.join(".wsl-tarball/first-run.conf")).unwrap();
        let before = tree(&fixture.root);
        let output = run(shell, &fixture);
        assert!(output.status.success());
        assert!(String::from_utf8_lossy(&output.stderr).contains("nothing to do"));
        assert_eq!(tree(&fixture.root), before);

        let output = Command::new(shell)
            .arg(repo_root().join("nix/first-run.sh"))
            .env("WSL_TARBALL_ROOT", &fixture.root)
            .env(
                "WSL_TARBALL_WINDOWS_HOME",
                fixture.root.join("no/such/home"),
            )
            .output()
            .unwrap();
        assert!(output.status.success());
        assert!(String::from_utf8_lossy(&output.stderr).contains("no Windows home found"));
        assert_eq!(tree(&fixture.root), before);
    }
}

#[test]
fn the_shipped_script_is_executable_posix_sh() {
    let script = repo_root().join("nix/first-run.sh");
    let mode = std::fs::metadata(&script).unwrap().permissions().mode();
    assert_eq!(mode & 0o111, 0o111, "nix/first-run.sh is executable");
    assert!(std::fs::read(&script).unwrap().starts_with(b"#!/bin/sh\n"));
    run_ok(Command::new("dash").arg("-n").arg(&script));
}
