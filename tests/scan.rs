//! The security checks against real closures built by Nix: planted fake
//! secrets are found with the right path and severity, allow rules let the
//! same bytes pass, real Debian files raise nothing, and findings do not
//! depend on threads, compression or read-chunk boundaries.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use common::*;

/// Fake secrets, generated for this test run; none is real.
struct Fakes {
    private_key: String,
    tokens: String,
    straddle: String,
}

/// A deterministic stream of letters and digits (not a secret generator:
/// the shapes matter, not the randomness).
fn alnum(seed: u64, len: usize, upper_only: bool) -> String {
    const ALL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let set = if upper_only { UPPER } else { ALL };
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            set[(state >> 33) as usize % set.len()] as char
        })
        .collect()
}

fn fakes() -> &'static Fakes {
    static FAKES: OnceLock<Fakes> = OnceLock::new();
    FAKES.get_or_init(|| {
        let tokens = [
            format!("aws_access_key_id = AKIA{}", alnum(1, 16, true)),
            format!("github = ghp_{}", alnum(2, 36, false)),
            format!(
                "github_fine = github_pat_{}_{}",
                alnum(3, 22, false),
                alnum(4, 59, false)
            ),
            format!("gitlab = glpat-{}", alnum(5, 20, false)),
            format!(
                "slack = xoxb-1234567890-1234567890123-{}",
                alnum(6, 24, false)
            ),
            format!("openai = sk-proj-{}", alnum(7, 48, false)),
            format!("openai_legacy = sk-{}", alnum(8, 48, false)),
            format!("anthropic = sk-ant-api03-{}", alnum(9, 60, false)),
            format!("npm = npm_{}", alnum(10, 36, false)),
        ]
        .join("\n");
        let body: Vec<String> = (0..6).map(|i| alnum(20 + i, 64, false)).collect();
        Fakes {
            private_key: format!(
                "-----BEGIN RSA PRIVATE KEY-----\n{}\n-----END RSA PRIVATE KEY-----",
                body.join("\n")
            ),
            tokens,
            straddle: format!("ghp_{}", alnum(11, 36, false)),
        }
    })
}

const TOKEN_DETECTORS: [&str; 9] = [
    "aws-access-key-id",
    "github-token",
    "github-token",
    "gitlab-token",
    "slack-token",
    "openai-api-key",
    "openai-api-key",
    "anthropic-api-key",
    "npm-token",
];

fn build_secrets(attribute: &str) -> String {
    let fakes = fakes();
    let file = repo_root().join("tests/fixtures/secrets.nix");
    run_text(
        nix_command("nix-build")
            .arg("--no-out-link")
            .arg(&file)
            .args(["-A", attribute])
            .args(["--argstr", "privateKey", &fakes.private_key])
            .args(["--argstr", "tokens", &fakes.tokens])
            .args(["--argstr", "straddle", &fakes.straddle]),
    )
    .trim()
    .to_owned()
}

fn dirty_system() -> &'static str {
    static SYSTEM: OnceLock<String> = OnceLock::new();
    SYSTEM.get_or_init(|| build_secrets("dirty"))
}

/// Extra files with a fake SSH host key, a shadow hash, authorized_keys,
/// every kind of token and an identifier.
fn planted_extra_files(dir: &Path) -> PathBuf {
    let extra = dir.join("extra");
    std::fs::create_dir_all(extra.join("etc/ssh")).unwrap();
    std::fs::create_dir_all(extra.join("home/tim/.ssh")).unwrap();
    run_ok(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "fake-host-key", "-f"])
            .arg(extra.join("etc/ssh/ssh_host_ed25519_key")),
    );
    let public = std::fs::read_to_string(extra.join("etc/ssh/ssh_host_ed25519_key.pub")).unwrap();
    std::fs::write(extra.join("home/tim/.ssh/authorized_keys"), public).unwrap();
    let hash = format!(
        "$6${}${}",
        alnum(30, 8, false),
        alnum(31, 86, false).replace('0', ".")
    );
    std::fs::write(
        extra.join("etc/shadow"),
        format!("root:!:1::::::\ntim:{hash}:19000:0:99999:7:::\n"),
    )
    .unwrap();
    std::fs::write(
        extra.join("home/tim/notes"),
        format!("{}\nsigned, Tim\n", fakes().tokens),
    )
    .unwrap();
    let mut straddle = vec![b' '; 262_140];
    straddle.extend_from_slice(fakes().straddle.as_bytes());
    std::fs::write(extra.join("home/tim/straddle"), straddle).unwrap();
    extra
}

/// Runs wsl-tarball with a closure file for `system`.
fn run_with_closure(dir: &Path, command: &str, system: &str, extra: &[&str]) -> Output {
    let closure = write_path_info(system, dir);
    let mut args = vec![
        command,
        "--no-skeleton",
        "--closure",
        closure.to_str().unwrap(),
        "--system",
        system,
    ];
    args.extend_from_slice(extra);
    run_wsl_tarball(&args)
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Seen {
    path: String,
    detector: String,
    severity: String,
    offset: u64,
}

fn findings(output: &Output) -> Vec<Seen> {
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}): {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| Seen {
            path: f["path"].as_str().unwrap().to_owned(),
            detector: f["detector"].as_str().unwrap().to_owned(),
            severity: f["severity"].as_str().unwrap().to_owned(),
            offset: f["offset"].as_u64().unwrap(),
        })
        .collect()
}

fn detectors_at(seen: &[Seen], path: &str) -> Vec<(String, String)> {
    let mut found: Vec<_> = seen
        .iter()
        .filter(|s| s.path == path)
        .map(|s| (s.detector.clone(), s.severity.clone()))
        .collect();
    found.sort();
    found
}

fn expected(detectors: &[&str], severity: &str) -> Vec<(String, String)> {
    let mut expected: Vec<_> = detectors
        .iter()
        .map(|d| (d.to_string(), severity.to_owned()))
        .collect();
    expected.sort();
    expected
}

fn status(output: &Output) -> i32 {
    output.status.code().unwrap_or(-1)
}

/// Asserts OUTPUT's exit status is CODE, showing its stderr if not.
fn assert_status(output: &Output, code: i32) {
    assert_eq!(
        status(output),
        code,
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

const ALLOW_PLANTED: [&str; 12] = [
    "--allow",
    "openssh-private-key:/etc/ssh/ssh_host_*_key",
    "--allow",
    "password-hash:/etc/shadow",
    "--allow",
    "/home/tim/**",
    "--allow",
    "/nix/store/*-etc-gh-hosts.yml",
    "--allow",
    "identifier:/home/tim",
    "--allow",
    "identifier:/etc/shadow",
];

#[test]
fn planted_secrets_are_found_in_place_with_severity_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let extra = planted_extra_files(dir.path());
    let system = dirty_system();
    let output_file = dir.path().join("nixos.wsl");
    let output = run_with_closure(
        dir.path(),
        "write",
        system,
        &[
            "--extra-files",
            extra.to_str().unwrap(),
            "-o",
            output_file.to_str().unwrap(),
            "--identifier",
            "tim",
            "--json",
        ],
    );
    assert_status(&output, 3);
    assert!(!output_file.exists(), "a tarball with findings was written");
    assert_eq!(dir_names(dir.path()), ["closure.json", "extra"]);
    let seen = findings(&output);

    assert_eq!(
        detectors_at(&seen, "/etc/ssh/ssh_host_ed25519_key"),
        expected(&["openssh-private-key"], "error")
    );
    assert_eq!(
        detectors_at(&seen, "/etc/shadow"),
        expected(&["password-hash", "identifier"], "error")
    );
    assert_eq!(
        detectors_at(&seen, "/home/tim/.ssh/authorized_keys"),
        expected(&["authorized-keys"], "error")
    );
    let mut notes: Vec<&str> = TOKEN_DETECTORS.to_vec();
    notes.push("identifier");
    assert_eq!(
        detectors_at(&seen, "/home/tim/notes"),
        expected(&notes, "error")
    );
    assert_eq!(
        detectors_at(&seen, "/home/tim"),
        expected(&["identifier"], "error")
    );
    let straddle: Vec<_> = seen
        .iter()
        .filter(|s| s.path == "/home/tim/straddle")
        .collect();
    assert_eq!(straddle.len(), 1, "{seen:#?}");
    assert_eq!(straddle[0].offset, 262_140);

    // The system's etc tree links to a store file: user-controlled, errors.
    let etc_file: Vec<_> = seen
        .iter()
        .filter(|s| s.path.ends_with("-etc-gh-hosts.yml"))
        .collect();
    assert_eq!(etc_file.len(), TOKEN_DETECTORS.len(), "{seen:#?}");
    assert!(etc_file.iter().all(|s| s.severity == "error"));

    // A package's vendored keys: warnings.
    let store_test = |name: &str| {
        let suffix = format!("-vendored-test-keys/share/test/{name}");
        let mut found: Vec<_> = seen
            .iter()
            .filter(|s| s.path.ends_with(&suffix))
            .map(|s| (s.detector.clone(), s.severity.clone()))
            .collect();
        found.sort();
        found
    };
    assert_eq!(
        store_test("keycert.pem"),
        expected(&["pem-private-key"], "warning")
    );
    assert_eq!(
        store_test("tokens.txt"),
        expected(&TOKEN_DETECTORS, "warning")
    );
    assert_eq!(
        store_test("straddle"),
        expected(&["github-token"], "warning")
    );

    // Never a whole secret in the report.
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    for secret in [
        &fakes().straddle[..],
        &fakes().tokens.lines().nth(1).unwrap()[9..],
    ] {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "{secret} printed"
        );
    }
}

#[test]
fn the_same_bytes_pass_behind_allow_rules_and_strict_fails_on_store_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let extra = planted_extra_files(dir.path());
    let system = dirty_system();
    let output_file = dir.path().join("nixos.wsl");
    let mut args = vec![
        "--extra-files",
        extra.to_str().unwrap(),
        "-o",
        output_file.to_str().unwrap(),
        "--identifier",
        "tim",
    ];
    args.extend_from_slice(&ALLOW_PLANTED);
    let output = run_with_closure(dir.path(), "write", system, &args);
    assert_status(&output, 0);
    assert!(output_file.exists());
    assert_verifies(&output_file, Rootfs::Bare);
    // Warnings in packages' store paths: one line with the count per store
    // path by default, every finding with --verbose.
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("warning[pem-private-key]"), "{stderr}");
    assert!(
        stderr.contains("warning: 11 findings in store paths outside the system's configuration")
            && stderr.contains("-vendored-test-keys; --verbose or --json lists them"),
        "{stderr}"
    );
    let mut verbose_args = args.clone();
    verbose_args.push("--verbose");
    let verbose = run_with_closure(dir.path(), "write", system, &verbose_args);
    assert_eq!(status(&verbose), 0);
    let stderr = String::from_utf8_lossy(&verbose.stderr);
    assert!(stderr.contains("warning[pem-private-key]"), "{stderr}");
    assert_eq!(
        stderr.matches("\nwarning[").count() + usize::from(stderr.starts_with("warning[")),
        11,
        "{stderr}"
    );
    // Quiet: errors only, and there are none.
    let mut quiet_args = args.clone();
    quiet_args.push("--quiet");
    let quiet = run_with_closure(dir.path(), "write", system, &quiet_args);
    assert_eq!(status(&quiet), 0);
    assert!(
        quiet.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&quiet.stderr)
    );

    // `check FILE` reads the tarball back: the same verdict.
    let mut check_args = vec![
        "check",
        output_file.to_str().unwrap(),
        "--identifier",
        "tim",
        "--json",
    ];
    check_args.extend_from_slice(&ALLOW_PLANTED);
    let checked = run_wsl_tarball(&check_args);
    assert_status(&checked, 0);
    assert!(findings(&checked).iter().all(|s| s.severity == "warning"));

    args.push("--strict");
    std::fs::remove_file(&output_file).unwrap();
    let strict = run_with_closure(dir.path(), "write", system, &args);
    assert_eq!(status(&strict), 3);
    assert!(!output_file.exists());
}

#[test]
fn findings_do_not_depend_on_threads_compression_or_chunking() {
    let dir = tempfile::tempdir().unwrap();
    let extra = planted_extra_files(dir.path());
    let system = dirty_system();
    let extra_arg = extra.to_str().unwrap();
    let mut reference: Option<Vec<Seen>> = None;
    for threads in ["1", "2", "8"] {
        let output = run_with_closure(
            dir.path(),
            "check",
            system,
            &["--extra-files", extra_arg, "--threads", threads, "--json"],
        );
        assert_status(&output, 3);
        let seen = findings(&output);
        match &reference {
            None => reference = Some(seen),
            Some(reference) => assert_eq!(&seen, reference, "--threads {threads}"),
        }
    }
    let reference = reference.unwrap();
    for compression in ["none", "gzip", "xz", "zstd"] {
        let file = dir.path().join(format!("out-{compression}.wsl"));
        let mut args = vec![
            "--extra-files",
            extra_arg,
            "--compression",
            compression,
            "-o",
            file.to_str().unwrap(),
            "-q",
        ];
        args.extend_from_slice(&ALLOW_PLANTED);
        let written = run_with_closure(dir.path(), "write", system, &args);
        assert_status(&written, 0);
        assert_verifies(&file, Rootfs::Bare);
        let checked = run_wsl_tarball(&["check", file.to_str().unwrap(), "--json"]);
        assert_eq!(status(&checked), 3);
        assert_eq!(
            findings(&checked),
            reference,
            "check of a {compression} tarball"
        );
    }
}

#[test]
fn real_debian_files_raise_no_finding() {
    let dir = tempfile::tempdir().unwrap();
    let system = build_secrets("clean");
    let output = run_with_closure(dir.path(), "check", &system, &["--json", "--strict"]);
    let seen = findings(&output);
    // Expected and accepted: none so far. List any that appear here.
    let expected: BTreeSet<(String, String)> = BTreeSet::new();
    let unexpected: Vec<_> = seen
        .iter()
        .filter(|s| !expected.contains(&(s.detector.clone(), s.path.clone())))
        .collect();
    assert!(unexpected.is_empty(), "{unexpected:#?}");
    assert_status(&output, 0);
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(
        json["bytes"].as_u64().unwrap() > 1_000_000,
        "the Debian files were scanned"
    );
}

#[test]
fn environment_values_that_ship_fail_names_alone_do_not_and_the_bypass_is_loud() {
    let dir = tempfile::tempdir().unwrap();
    let system = fixture_system();
    let closure = write_path_info(system, dir.path());
    let output_file = dir.path().join("nixos.wsl");
    // A value no detector recognises, planted in an extra file.
    let value = "opaque-deploy-credential-5f3a9c";
    let extra = dir.path().join("extra");
    std::fs::create_dir_all(extra.join("etc")).unwrap();
    std::fs::write(
        extra.join("etc/deploy.conf"),
        format!("credential={value}\n"),
    )
    .unwrap();
    let args = |with_extra: bool| {
        let mut args = vec![
            "write".to_owned(),
            "--no-skeleton".to_owned(),
            "--closure".to_owned(),
            closure.to_str().unwrap().to_owned(),
            "--system".to_owned(),
            system.to_owned(),
            "-o".to_owned(),
            output_file.to_str().unwrap().to_owned(),
        ];
        if with_extra {
            args.extend([
                "--extra-files".to_owned(),
                extra.to_str().unwrap().to_owned(),
            ]);
        }
        args
    };

    // The variable is set and its value ships: exit 3, the variable and the
    // member are named, the value never printed, nothing written.
    let planted = wsl_tarball()
        .args(args(true))
        .env("DEPLOY_TOKEN", value)
        .output()
        .unwrap();
    assert_eq!(status(&planted), 3);
    let stderr = String::from_utf8_lossy(&planted.stderr);
    assert!(
        stderr.contains(
            "error[environment] /etc/deploy.conf (byte 11): the value of $DEPLOY_TOKEN (not shown)"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains(value), "{stderr}");
    assert!(!output_file.exists());

    // The same variables set, nothing planted: a CI runner's token is not a
    // leak. One note names the variables; AWS configuration says nothing.
    let clean = wsl_tarball()
        .args(args(false))
        .env("DEPLOY_TOKEN", value)
        .env("GITHUB_TOKEN", "ghs_runner_token_value")
        .env("AWS_CA_BUNDLE", "/etc/ssl/certs/ca-bundle.crt")
        .output()
        .unwrap();
    assert_status(&clean, 0);
    let stderr = String::from_utf8_lossy(&clean.stderr);
    assert_eq!(
        stderr
            .matches("note: the values of $DEPLOY_TOKEN, $GITHUB_TOKEN were searched for")
            .count(),
        1,
        "{stderr}"
    );
    assert!(
        !stderr.contains("AWS_CA_BUNDLE") && !stderr.contains(value),
        "{stderr}"
    );
    assert!(output_file.exists());
    std::fs::remove_file(&output_file).unwrap();

    let skipped = wsl_tarball()
        .args(args(true))
        .env("DEPLOY_TOKEN", value)
        .env("WSL_TARBALL_SKIP_CHECKS", "1")
        .output()
        .unwrap();
    assert_eq!(status(&skipped), 0);
    assert!(String::from_utf8_lossy(&skipped.stderr).contains("SKIPPED"));
    assert!(output_file.exists());
    assert_verifies(&output_file, Rootfs::Bare);
}

#[test]
fn check_of_a_tarball_prints_hostile_member_names_escaped_and_json_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    hostile_tree(&root);
    let key =
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n";
    let home = root.join("home/nixos").join(HOSTILE);
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(home.join("id_rsa"), key).unwrap();
    let store_path = root.join(hostile_store_path().trim_start_matches('/'));
    std::fs::write(store_path.join("test-key.pem"), key).unwrap();
    let tarball = dir.path().join("colleague.tar");
    gnu_tar_file(&root, &tarball);
    let tarball = tarball.to_str().unwrap();

    let in_home = format!("/home/nixos/{HOSTILE}/id_rsa");
    for flags in [&[][..], &["--verbose"]] {
        let output = run_wsl_tarball(&[&["check"], flags, &[tarball]].concat());
        assert_status(&output, 3);
        let text = assert_terminal_safe("check", &output);
        assert!(
            text.contains(&in_home.replace(HOSTILE, HOSTILE_ESCAPED))
                && text.contains(&hostile_store_path().replace(HOSTILE, HOSTILE_ESCAPED)),
            "{text}"
        );
    }
    let output = run_wsl_tarball(&["check", "--json", tarball]);
    assert_status(&output, 3);
    let seen = findings(&output);
    assert_eq!(
        detectors_at(&seen, &in_home),
        expected(&["pem-private-key"], "error"),
        "{seen:?}"
    );
}
