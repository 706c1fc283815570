//! The NixOS module (nix/module.nix) evaluated with nixpkgs' `lib` and
//! NixOS-WSL's own modules through tests/module/eval.nix, its derivations
//! built with Debian's Nix, and the security-check replay script.
//!
//! nixpkgs' lib and NixOS-WSL are not in this repository and CI cannot fetch
//! them: the evaluation tests read checkouts from `WSL_TARBALL_NIXPKGS_LIB`
//! (a nixpkgs or nixpkgs.lib tree, holding `lib/`) and `WSL_TARBALL_NIXOS_WSL`
//! (a NixOS-WSL tree, holding `modules/`). Without them each such test prints
//! a loud SKIPPED notice and returns; `WSL_TARBALL_REQUIRE_EVAL_SOURCES=1`
//! makes that a failure. nixfmt is found as `$NIXFMT` or `nixfmt` on PATH,
//! in the same way.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::*;

const REQUIRE_VAR: &str = "WSL_TARBALL_REQUIRE_EVAL_SOURCES";

/// Says loudly that a test did not run, or fails when the sources are required.
fn skipped(test: &str, missing: &str) {
    let required = std::env::var(REQUIRE_VAR).is_ok_and(|v| v == "1");
    assert!(!required, "{test}: {missing} ({REQUIRE_VAR}=1)");
    // Straight to stderr: the test harness captures eprintln!.
    let _ = writeln!(
        std::io::stderr(),
        "\n*** SKIPPED {test}: {missing}. It needs what CI cannot fetch; see tests/module.rs. ***\n"
    );
}

/// The fetched nixpkgs lib and NixOS-WSL trees, if given.
fn eval_sources(test: &str) -> Option<(String, String)> {
    let find = |var: &str, marker: &str| {
        let dir = std::env::var(var).ok()?;
        Path::new(&dir).join(marker).is_file().then_some(dir)
    };
    let lib = find("WSL_TARBALL_NIXPKGS_LIB", "lib/default.nix");
    let wsl = find("WSL_TARBALL_NIXOS_WSL", "modules/default.nix");
    match (lib, wsl) {
        (Some(lib), Some(wsl)) => Some((lib, wsl)),
        _ => {
            skipped(
                test,
                "WSL_TARBALL_NIXPKGS_LIB (a tree with lib/default.nix) and WSL_TARBALL_NIXOS_WSL \
                 (a tree with modules/default.nix) are not both set",
            );
            None
        }
    }
}

/// `import tests/module/eval.nix { … }` with the sources, the binary under
/// test, extra arguments and the host's configuration module.
fn harness(sources: &(String, String), arguments: &str, configuration: &str) -> String {
    let binary = env!("CARGO_BIN_EXE_wsl-tarball");
    let hash = run_text(Command::new("sha256sum").arg(binary));
    format!(
        "(import {eval} {{ nixpkgsLib = {lib:?}; nixosWsl = {wsl:?}; binary = {binary:?}; \
         binaryHash = {hash:?}; {arguments} configuration = {configuration}; }})",
        eval = repo_root().join("tests/module/eval.nix").display(),
        lib = sources.0,
        wsl = sources.1,
        hash = &hash[..64],
    )
}

/// A configuration that the fake system can build: NixOS-WSL's default
/// /bin entries name nixpkgs packages, so they are replaced with the fake
/// system's shell.
fn buildable(extra: &str) -> String {
    format!(
        "{{ lib, fake, ... }}: {{ wsl.enable = true; \
         wsl.extraBin = lib.mkForce [ {{ src = \"${{fake.shell}}/bin/sh\"; name = \"sh\"; }} ]; {extra} }}"
    )
}

fn nix_eval(expression: &str) -> Output {
    nix_command("nix-instantiate")
        .args(["--eval", "--strict", "--json", "--read-write-mode", "-E"])
        .arg(expression)
        .stdin(Stdio::null())
        .output()
        .expect("run nix-instantiate")
}

fn eval_json(expression: &str) -> serde_json::Value {
    let output = nix_eval(expression);
    assert!(
        output.status.success(),
        "evaluating {expression} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn compression_levels_the_format_does_not_take_fail_evaluation() {
    let Some(sources) = eval_sources("compression_levels_the_format_does_not_take_fail_evaluation")
    else {
        return;
    };
    let config = |compression: &str, level: &str| {
        format!(
            "{{ wsl.enable = true; wsl.tarball.compression = \"{compression}\"; \
             wsl.tarball.compressionLevel = {level}; }}"
        )
    };
    for (compression, level, range) in [
        ("gzip", "12", "gzip takes a level from 1 to 9"),
        ("gzip", "0", "gzip takes a level from 1 to 9"),
        ("xz", "10", "xz takes a level from 0 to 9"),
        ("zstd", "0", "zstd takes a level from 1 to 19"),
        ("zstd", "22", "zstd takes a level from 1 to 19"),
        ("none", "3", "compression \"none\" takes no level"),
    ] {
        let expression = format!(
            "{}.assertions",
            harness(&sources, "", &config(compression, level))
        );
        let output = nix_eval(&expression);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{compression} {level} evaluated");
        let setting = format!(
            "wsl.tarball.compressionLevel = {level} with wsl.tarball.compression = \"{compression}\""
        );
        assert!(
            stderr.contains("Failed assertions:")
                && stderr.contains(&setting)
                && stderr.contains(range),
            "{compression} {level}: {stderr}"
        );
    }
    // Every level the CLI takes evaluates, and so does null for each format.
    let accepted: Vec<String> = [
        ("gzip", "1"),
        ("gzip", "9"),
        ("xz", "0"),
        ("xz", "9"),
        ("zstd", "1"),
        ("zstd", "19"),
        ("gzip", "null"),
        ("none", "null"),
    ]
    .iter()
    .map(|(compression, level)| {
        format!(
            "{}.assertions",
            harness(&sources, "", &config(compression, level))
        )
    })
    .collect();
    let all = eval_json(&format!("[ {} ]", accepted.join(" ")));
    assert_eq!(all, serde_json::Value::from(vec![true; 8]));
}

#[test]
fn disabled_module_keeps_upstreams_tarball_builder() {
    let Some(sources) = eval_sources("disabled_module_keeps_upstreams_tarball_builder") else {
        return;
    };
    let probe = |configuration: &str| {
        let e = harness(&sources, "", configuration);
        eval_json(&format!(
            "let e = {e}; b = e.config.system.build; in {{ enable = e.config.wsl.tarball.enable; \
             ours = builtins.filter (n: builtins.hasAttr n b) [ \"wslTarball\" \"tarballSecurityCheck\" \"wslTarballFacts\" ]; \
             builder = if b ? tarballBuilder then b.tarballBuilder.text else null; \
             assertions = e.assertions; }}"
        ))
    };

    // Upstream's root-only builder, and nothing of ours, not even the assertion.
    let disabled = probe(&buildable(
        "wsl.tarball.enable = false; wsl.tarball.compressionLevel = 12;",
    ));
    assert_eq!(disabled["enable"], false);
    assert_eq!(disabled["ours"], serde_json::json!([]));
    assert_eq!(disabled["assertions"], true);
    let upstream = disabled["builder"].as_str().unwrap();
    assert!(
        upstream.contains("This script must be run as root!") && upstream.contains("nixos-install"),
        "{upstream}"
    );
    assert!(!upstream.contains("wsl-tarball write"), "{upstream}");

    // The default follows wsl.enable, and replaces upstream's builder.
    let enabled = probe(&buildable(""));
    assert_eq!(enabled["enable"], true);
    assert_eq!(
        enabled["ours"],
        serde_json::json!(["wslTarball", "tarballSecurityCheck", "wslTarballFacts"])
    );
    let ours = enabled["builder"].as_str().unwrap();
    assert!(ours.contains("exec wsl-tarball write --closure"), "{ours}");
    assert!(!ours.contains("nixos-install"), "{ours}");

    // Without wsl.enable there is nothing to build.
    let off = probe("{ }");
    assert_eq!(off["enable"], false);
    assert_eq!(off["ours"], serde_json::json!([]));
    assert_eq!(off["builder"], serde_json::Value::Null);
}

#[test]
fn signing_key_file_is_a_string_outside_the_store_that_only_the_builder_reads() {
    let Some(sources) =
        eval_sources("signing_key_file_is_a_string_outside_the_store_that_only_the_builder_reads")
    else {
        return;
    };
    // A space makes every lib.escapeShellArg quote it (newer ones leave a
    // plain word bare).
    let key = "/run/secrets/team 1.sec";
    let e = harness(
        &sources,
        "",
        &buildable(&format!("wsl.tarball.signing.keyFile = \"{key}\";")),
    );
    let probe = eval_json(&format!(
        "let e = {e}; b = e.config.system.build; in {{ assertions = e.assertions; \
         builder = b.tarballBuilder.text; pure = b.wslTarball.drvPath; }}"
    ));
    assert_eq!(probe["assertions"], true);
    let builder = probe["builder"].as_str().unwrap();
    assert!(
        builder.contains(&format!(
            "flags+=(--manifest \"${{out%.wsl}}.manifest.json\" --sign-key '{key}')"
        )),
        "{builder}"
    );
    // The pure derivation knows nothing of the key.
    let drv = std::fs::read_to_string(probe["pure"].as_str().unwrap()).unwrap();
    assert!(!drv.contains(key), "{drv}");

    for bad in [
        "/nix/store/00000000000000000000000000000000-key",
        "team-1.sec",
    ] {
        let expression = format!(
            "{}.assertions",
            harness(
                &sources,
                "",
                &buildable(&format!("wsl.tarball.signing.keyFile = \"{bad}\";"))
            )
        );
        let output = nix_eval(&expression);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{bad} evaluated");
        assert!(
            stderr.contains(&format!("wsl.tarball.signing.keyFile = \"{bad}\"")),
            "{stderr}"
        );
    }
}

#[test]
fn package_comes_from_the_build_platform() {
    let Some(sources) = eval_sources("package_comes_from_the_build_platform") else {
        return;
    };
    let cross = "hostSystem = \"aarch64-linux\"; buildSystem = \"x86_64-linux\";";
    let e = harness(&sources, cross, &buildable(""));
    let result = eval_json(&format!(
        "let e = {e}; b = e.config.system.build; p = e.wslTarballPackages; in {{ \
         package = e.config.wsl.tarball.package.name; \
         tarball = [ (b.wslTarball.binPath == \"${{p.x86_64-linux}}/bin\") (b.wslTarball.binPath == \"${{p.aarch64-linux}}/bin\") ]; \
         check = b.tarballSecurityCheck.binPath == \"${{p.x86_64-linux}}/bin\"; \
         builder = map (p: p.name) b.tarballBuilder.runtimeInputs; }}"
    ));
    assert_eq!(
        result,
        serde_json::json!({
            "package": "wsl-tarball-x86_64-linux",
            "tarball": [true, false],
            "check": true,
            "builder": ["wsl-tarball-x86_64-linux"],
        })
    );

    // A build platform the flake has no package for names the option to set.
    let e = harness(
        &sources,
        "hostSystem = \"x86_64-linux\"; buildSystem = \"riscv64-linux\"; packageSystems = [ \"x86_64-linux\" ];",
        &buildable(""),
    );
    let output = nix_eval(&format!("{e}.config.wsl.tarball.package.name"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("no package for the build platform riscv64-linux")
            && stderr.contains("set wsl.tarball.package"),
        "{stderr}"
    );
}

#[test]
fn facts_evaluate_with_nixos_wsls_own_bin_entries() {
    // NixOS-WSL's wsl.extraBin names come from `baseNameOf src`, so they
    // carry a store path's context, which Nix refuses as an attribute name.
    let Some(sources) = eval_sources("facts_evaluate_with_nixos_wsls_own_bin_entries") else {
        return;
    };
    let e = harness(&sources, "", "{ wsl.enable = true; }");
    let facts = eval_json(&format!("{e}.config.system.build.wslTarballFacts.text"));
    let facts = facts.as_str().unwrap();
    for entry in [
        "\"wslpath\"",
        "\"/init\"",
        "\"login\"",
        "\"mount\"",
        "/bin/nixos-wsl-recovery\"",
    ] {
        assert!(facts.contains(entry), "{entry} missing from {facts}");
    }
}

/// The facts the distribution options produce, and the evaluation's
/// assertions (true, or the failure's message), for `configuration`.
fn distribution_facts(sources: &(String, String), extra: &str) -> (serde_json::Value, String) {
    let e = harness(sources, "", &buildable(extra));
    let facts = eval_json(&format!(
        "let f = builtins.fromJSON (builtins.unsafeDiscardStringContext {e}.config.system.build.wslTarballFacts.text); in \
         {{ inherit (f) defaultUid oobeCommand shortcutEnabled windowsTerminalEnabled; }}"
    ));
    let assertions = nix_eval(&format!("{e}.assertions"));
    let verdict = if assertions.status.success() {
        "true".to_owned()
    } else {
        String::from_utf8_lossy(&assertions.stderr).into_owned()
    };
    (facts, verdict)
}

#[test]
fn distribution_options_default_to_wsls_defaults() {
    let Some(sources) = eval_sources("distribution_options_default_to_wsls_defaults") else {
        return;
    };
    let (facts, assertions) = distribution_facts(&sources, "");
    assert_eq!(
        facts,
        serde_json::json!({"defaultUid": null, "oobeCommand": null,
                           "shortcutEnabled": true, "windowsTerminalEnabled": true})
    );
    assert_eq!(assertions, "true");
}

#[test]
fn oobe_default_uid_must_be_a_declared_users_unless_a_command_makes_it() {
    let Some(sources) =
        eval_sources("oobe_default_uid_must_be_a_declared_users_unless_a_command_makes_it")
    else {
        return;
    };
    // NixOS-WSL's default user has uid 1000.
    let (facts, assertions) = distribution_facts(&sources, "wsl.tarball.oobe.defaultUid = 1000;");
    assert_eq!(facts["defaultUid"], 1000);
    assert_eq!(assertions, "true");

    let (_, assertions) = distribution_facts(&sources, "wsl.tarball.oobe.defaultUid = 4242;");
    assert!(
        assertions.contains("Failed assertions:")
            && assertions.contains(
                "wsl.tarball.oobe.defaultUid = 4242: no user in users.users has this uid"
            ),
        "{assertions}"
    );
    // A command may create the user.
    let (facts, assertions) = distribution_facts(
        &sources,
        &format!(
            "wsl.tarball.oobe.defaultUid = 4242; wsl.tarball.oobe.command = {};",
            repo_root().join("nix/first-run.sh").display()
        ),
    );
    assert_eq!(facts["defaultUid"], 4242);
    assert_eq!(assertions, "true");

    // The type refuses what is no uid.
    let e = harness(
        &sources,
        "",
        &buildable("wsl.tarball.oobe.defaultUid = -1;"),
    );
    let output = nix_eval(&format!("{e}.config.system.build.wslTarballFacts.text"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("wsl.tarball.oobe.defaultUid") && stderr.contains("is not of type"),
        "{stderr}"
    );
}

#[test]
fn first_run_installs_the_shipped_script_as_the_oobe_command() {
    let Some(sources) = eval_sources("first_run_installs_the_shipped_script_as_the_oobe_command")
    else {
        return;
    };
    let (facts, assertions) = distribution_facts(&sources, "wsl.tarball.firstRun.enable = true;");
    assert_eq!(assertions, "true");
    let command = facts["oobeCommand"].as_str().unwrap();
    assert!(
        command.starts_with("/nix/store/") && command.ends_with("-first-run.sh"),
        "{command}"
    );
    assert_eq!(
        std::fs::read(command).unwrap(),
        std::fs::read(repo_root().join("nix/first-run.sh")).unwrap()
    );

    // An own command instead.
    let own = repo_root().join("tests/module/eval.nix");
    let (facts, _) = distribution_facts(
        &sources,
        &format!("wsl.tarball.oobe.command = {};", own.display()),
    );
    assert!(facts["oobeCommand"]
        .as_str()
        .unwrap()
        .ends_with("-eval.nix"));

    // Both: WSL runs one command.
    let (_, assertions) = distribution_facts(
        &sources,
        &format!(
            "wsl.tarball.firstRun.enable = true; wsl.tarball.oobe.command = {};",
            own.display()
        ),
    );
    assert!(
        assertions.contains(
            "wsl.tarball.firstRun.enable installs wsl-tarball's first-run script as oobe.command"
        ),
        "{assertions}"
    );
}

#[test]
fn shortcut_and_windows_terminal_can_be_turned_off() {
    let Some(sources) = eval_sources("shortcut_and_windows_terminal_can_be_turned_off") else {
        return;
    };
    let (facts, assertions) = distribution_facts(
        &sources,
        "wsl.tarball.shortcut.enable = false; wsl.tarball.windowsTerminal.enable = false;",
    );
    assert_eq!(assertions, "true");
    assert_eq!(facts["shortcutEnabled"], false);
    assert_eq!(facts["windowsTerminalEnabled"], false);
    let e = harness(
        &sources,
        "",
        &buildable("wsl.tarball.shortcut.enable = \"no\";"),
    );
    assert!(
        !nix_eval(&format!("{e}.config.system.build.wslTarballFacts.text"))
            .status
            .success()
    );
}

#[test]
fn module_tarball_with_every_distribution_option_verifies() {
    let Some(sources) = eval_sources("module_tarball_with_every_distribution_option_verifies")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let result = dir.path().join("result");
    let e = harness(
        &sources,
        "",
        &buildable(
            "wsl.tarball.firstRun.enable = true; wsl.tarball.oobe.defaultUid = 1000; \
             wsl.tarball.shortcut.enable = false; wsl.tarball.windowsTerminal.enable = false;",
        ),
    );
    run_ok(
        nix_command("nix-build")
            .arg("-o")
            .arg(&result)
            .arg("-E")
            .arg(format!("{e}.config.system.build.wslTarball")),
    );
    let tarball = result.join("nixos.wsl");
    let conf = run_text(
        Command::new("tar")
            .args(["-xzOf"])
            .arg(&tarball)
            .arg("./etc/wsl-distribution.conf"),
    );
    assert_eq!(
        conf,
        "[oobe]\ndefaultName=NixOS\ncommand=/usr/lib/wsl/first-run\ndefaultUid=1000\n\
         \n[shortcut]\nenabled=false\nicon=/usr/lib/wsl/nixos.ico\n\
         \n[windowsterminal]\nenabled=false\n"
    );
    let listing = run_text(
        Command::new("tar")
            .args(["-tvzf"])
            .arg(&tarball)
            .arg("./usr/lib/wsl/first-run"),
    );
    assert!(listing.starts_with("-rwxr-xr-x 0/0 "), "{listing}");
    let verify = run_wsl_tarball(&["verify", "--json", tarball.to_str().unwrap()]);
    let report: serde_json::Value = serde_json::from_slice(&verify.stdout).unwrap();
    assert!(verify.status.success(), "{report:#}");
    let check = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "wsl-format")
        .unwrap();
    let ours: Vec<&serde_json::Value> = check["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| {
            let w = w.as_str().unwrap();
            [
                "oobe",
                "icon",
                "/usr/lib/wsl",
                "shortcut",
                "windowsterminal",
                "profile",
            ]
            .iter()
            .any(|word| w.contains(word))
                && !w.contains("already has the default uid")
                && !w.contains("user.default")
        })
        .collect();
    assert!(ours.is_empty(), "{check:#}");
}

/// `nix-build -o DIR/result` of the module's tarballSecurityCheck.
fn build_security_check(sources: &(String, String), extra: &str, result: &Path) -> Output {
    let e = harness(sources, "", &buildable(extra));
    nix_command("nix-build")
        .arg("-o")
        .arg(result)
        .arg("-E")
        .arg(format!("{e}.config.system.build.tarballSecurityCheck"))
        .stdin(Stdio::null())
        .output()
        .expect("run nix-build")
}

#[test]
fn module_tarball_is_written_with_the_configured_compression() {
    let Some(sources) = eval_sources("module_tarball_is_written_with_the_configured_compression")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let result = dir.path().join("result");
    let e = harness(
        &sources,
        "",
        &buildable("wsl.tarball.compression = \"xz\"; wsl.tarball.compressionLevel = 0;"),
    );
    run_ok(
        nix_command("nix-build")
            .arg("-o")
            .arg(&result)
            .arg("-E")
            .arg(format!("{e}.config.system.build.wslTarball")),
    );
    let tarball = result.join("nixos.wsl");
    let bytes = std::fs::read(&tarball).unwrap();
    assert!(bytes.starts_with(b"\xfd7zXZ\0"), "not xz");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(result.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["settings"]["compression"], "xz");
    assert_eq!(manifest["settings"]["level"], 0);
    assert_eq!(manifest["securityChecks"]["status"], "passed");
    // The SBOM beside them, of this very file, as the reusable workflow
    // and `wsl-tarball publish` take it.
    let sbom: serde_json::Value =
        serde_json::from_slice(&std::fs::read(result.join("sbom.cdx.json")).unwrap()).unwrap();
    assert_eq!(sbom["bomFormat"], "CycloneDX");
    assert_eq!(sbom["metadata"]["component"]["name"], "nixos.wsl");
    assert_eq!(
        sbom["metadata"]["component"]["hashes"][0]["content"],
        manifest["tarball"]["sha256"]
    );
    let products =
        std::fs::read_to_string(result.join("nix-support/hydra-build-products")).unwrap();
    let products: Vec<&str> = products.lines().collect();
    let out = std::fs::canonicalize(&result).unwrap();
    let out = out.display();
    assert_eq!(
        products,
        [
            format!("file wsl-tarball {out}/nixos.wsl"),
            format!("file manifest {out}/manifest.json"),
            format!("file sbom {out}/sbom.cdx.json"),
        ]
    );
    let verify = run_wsl_tarball(&["verify", tarball.to_str().unwrap()]);
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}

/// A fake token, generated at run time.
fn fake_token() -> String {
    let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let seed = std::process::id() as usize;
    let body: String = (0..36)
        .map(|i| alphabet[(seed * 7 + i * 13) % alphabet.len()] as char)
        .collect();
    format!("ghp_{body}")
}

#[test]
fn failed_security_check_puts_the_findings_in_the_build_log() {
    let Some(sources) = eval_sources("failed_security_check_puts_the_findings_in_the_build_log")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    std::fs::create_dir(&config).unwrap();
    std::fs::write(config.join("configuration.nix"), "{ ... }: { }\n").unwrap();
    std::fs::write(config.join("token.txt"), format!("{}\n", fake_token())).unwrap();
    let result = dir.path().join("result");
    let output = build_security_check(
        &sources,
        &format!("wsl.tarball.configPath = {};", config.display()),
        &result,
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("error[github-token] /etc/nixos/token.txt (byte 0): ghp_")
            && stderr.contains("security checks: 1 error,")
            && stderr.contains("tarballSecurityCheck: wsl-tarball check failed (exit status 3)"),
        "{stderr}"
    );
    assert!(
        !stderr.contains(&fake_token()),
        "the secret itself is in the log"
    );
    assert!(std::fs::symlink_metadata(&result).is_err());
}

#[test]
fn security_check_output_replays_its_report() {
    let Some(sources) = eval_sources("security_check_output_replays_its_report") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let result = dir.path().join("result");
    let output = build_security_check(&sources, "", &result);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let report = std::fs::read_to_string(result.join("report.txt")).unwrap();
    assert!(report.starts_with("security checks: 0 errors,"), "{report}");
    let script = result.join("bin/wsl-tarball-security-check");
    let replay = Command::new(&script).arg("my-wsl").output().unwrap();
    let stdout = String::from_utf8_lossy(&replay.stdout);
    assert_eq!(replay.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.starts_with("security checks of my-wsl (")
            && stdout.contains("security checks: 0 errors,"),
        "{stdout}"
    );

    // Checks disabled in the configuration: skipped when built, and said so.
    let skipped_result = dir.path().join("skipped");
    let output = build_security_check(
        &sources,
        "wsl.tarball.checks.enable = false;",
        &skipped_result,
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let replay = Command::new(skipped_result.join("bin/wsl-tarball-security-check"))
        .output()
        .unwrap();
    assert_eq!(replay.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&replay.stdout).contains("security checks: skipped"));
    assert!(String::from_utf8_lossy(&replay.stderr).contains("WARNING: the checks were skipped"));
}

/// The output layout of tarballSecurityCheck, with report.txt from a real
/// `wsl-tarball check` of the fixture system plus EXTRA files.
fn replay_output(dir: &Path, extra: Option<&Path>) -> (PathBuf, Option<i32>) {
    let out = dir.join("out");
    std::fs::create_dir_all(out.join("bin")).unwrap();
    let script = out.join("bin/wsl-tarball-security-check");
    std::fs::copy(repo_root().join("nix/security-check.sh"), &script).unwrap();
    let system = fixture_system();
    let closure = write_path_info(system, dir);
    let mut command = wsl_tarball();
    command.args(["check", "--closure"]).arg(&closure);
    command.args([
        "--system",
        system,
        "--no-skeleton",
        "--mtime",
        "1",
        "--verbose",
    ]);
    if let Some(extra) = extra {
        command.arg("--extra-files").arg(extra);
    }
    let check = command.stdin(Stdio::null()).output().unwrap();
    std::fs::write(out.join("report.txt"), &check.stdout).unwrap();
    (script, check.status.code())
}

#[test]
fn security_check_script_exits_as_the_report_says() {
    let dir = tempfile::tempdir().unwrap();
    let extra = dir.path().join("extra/etc");
    std::fs::create_dir_all(&extra).unwrap();
    std::fs::write(extra.join("token"), format!("{}\n", fake_token())).unwrap();
    let dirty = dir.path().join("dirty");
    let (script, status) = replay_output(&dirty, Some(&dir.path().join("extra")));
    assert_eq!(status, Some(3), "the check itself finds the token");

    let run = |script: &Path, skip: Option<&str>| {
        let mut command = Command::new("bash");
        command.arg(script).arg("my-wsl");
        command.env_remove("WSL_TARBALL_SKIP_CHECKS");
        if let Some(value) = skip {
            command.env("WSL_TARBALL_SKIP_CHECKS", value);
        }
        command.stdin(Stdio::null()).output().unwrap()
    };
    let replay = run(&script, None);
    let stdout = String::from_utf8_lossy(&replay.stdout);
    let stderr = String::from_utf8_lossy(&replay.stderr);
    assert_eq!(replay.status.code(), Some(3), "{stdout}{stderr}");
    assert!(
        stdout.starts_with("security checks of my-wsl (")
            && stdout.contains("error[github-token] /etc/token (byte 0): ghp_")
            && stdout.contains("security checks: 1 error,"),
        "{stdout}"
    );
    assert!(stderr.contains("1 error-severity finding;"), "{stderr}");

    // WSL_TARBALL_SKIP_CHECKS=1 turns the failure into a loud success.
    for value in ["1", "TRUE", "yes"] {
        let replay = run(&script, Some(value));
        assert_eq!(replay.status.code(), Some(0), "{value}");
        assert!(String::from_utf8_lossy(&replay.stderr)
            .contains("WARNING: WSL_TARBALL_SKIP_CHECKS is set: 1 error-severity finding ignored"));
    }
    assert_eq!(run(&script, Some("0")).status.code(), Some(3));

    // A clean report: exit 0.
    let (clean, status) = replay_output(&dir.path().join("clean"), None);
    assert_eq!(status, Some(0));
    let replay = run(&clean, None);
    assert_eq!(replay.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&replay.stdout).contains("security checks: 0 errors,"));

    // A report without its summary line, or no report: exit 1, naming it.
    let report = dirty.join("out/report.txt");
    std::fs::write(&report, "error[github-token] /etc/token (byte 0): ghp_…\n").unwrap();
    let replay = run(&script, None);
    assert_eq!(replay.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&replay.stderr).contains("has no summary line"));
    std::fs::remove_file(&report).unwrap();
    let replay = run(&script, None);
    assert_eq!(replay.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&replay.stderr)
        .contains(&format!("no report at {}", report.display())));

    // Usage errors: exit 2.
    let usage = Command::new("bash")
        .arg(&script)
        .args(["a", "b"])
        .output()
        .unwrap();
    assert_eq!(usage.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&usage.stderr).contains("Usage:"));
}

/// nixfmt, as `$NIXFMT` or on PATH.
fn nixfmt(test: &str) -> Option<String> {
    // An absolute path: the flake check's derivation links to it.
    let candidate = std::env::var("NIXFMT").ok().or_else(|| {
        std::env::split_paths(&std::env::var_os("PATH")?)
            .map(|dir| dir.join("nixfmt"))
            .find(|path| path.is_file())
            .map(|path| path.display().to_string())
    });
    let runs = |path: &String| {
        Command::new(path)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    };
    let nixfmt = candidate.filter(runs);
    if nixfmt.is_none() {
        skipped(test, "no nixfmt (set NIXFMT, or put nixfmt on PATH)");
    }
    nixfmt
}

#[test]
fn nixfmt_flake_check_fails_on_an_unformatted_file() {
    let test = "nixfmt_flake_check_fails_on_an_unformatted_file";
    let Some(nixfmt) = nixfmt(test) else {
        return;
    };
    let Some(sources) = eval_sources(test) else {
        return;
    };
    // A tree shaped like the repository: nix/checks.nix checks `../.`.
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("nix")).unwrap();
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    std::fs::copy(
        repo_root().join("nix/checks.nix"),
        tree.join("nix/checks.nix"),
    )
    .unwrap();
    std::fs::write(tree.join("formatted.nix"), "{ a = 1; }\n").unwrap();
    std::fs::write(tree.join("sub/ugly.nix"), "{a=1;\n   b =2;}\n").unwrap();
    std::fs::write(tree.join("notes.txt"), "{a=1;}\n").unwrap();
    let build = || {
        let expression = format!(
            "let e = {}; lib = import \"${{{:?}}}/lib\"; \
             nixfmt = e.pkgs.runCommand \"nixfmt\" {{ }} \"mkdir -p $out/bin; ln -s {nixfmt} $out/bin/nixfmt\"; \
             in (import {:?} {{ inherit lib nixfmt; inherit (e.pkgs) runCommand; cargo = null; rustfmt = null; \
             clippy = null; wslTarballPackage = null; nixosConfiguration = null; }}).nixfmt",
            harness(&sources, "", "{ }"),
            sources.0,
            tree.join("nix/checks.nix").display().to_string(),
        );
        nix_command("nix-build")
            .args(["--no-out-link", "-E"])
            .arg(expression)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let failed = build();
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(!failed.status.success(), "{stderr}");
    assert!(stderr.contains("./sub/ugly.nix: not formatted"), "{stderr}");
    assert!(
        !stderr.contains("formatted.nix:") && !stderr.contains("checks.nix:"),
        "{stderr}"
    );
    run_ok(Command::new(&nixfmt).arg(tree.join("sub/ugly.nix")));
    let passed = build();
    assert!(
        passed.status.success(),
        "{}",
        String::from_utf8_lossy(&passed.stderr)
    );
}

#[test]
fn nix_files_are_formatted() {
    let Some(nixfmt) = nixfmt("nix_files_are_formatted") else {
        return;
    };
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
    files.sort();
    let output = Command::new(&nixfmt)
        .arg("--check")
        .args(&files)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "not formatted as `nix fmt` formats (run nixfmt on them):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
