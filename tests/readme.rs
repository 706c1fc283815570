//! The README's `wsl-tarball` command lines against the binary: every
//! subcommand they use exists and every flag they pass is one that
//! subcommand takes (from its own `--help`). The commands that need real
//! inputs are run by the other tests; this keeps the document from naming
//! flags that do not exist.

mod common;

use common::*;

/// The `wsl-tarball …` command lines of the README's code blocks, with
/// `\` continuations joined and any `$ ` prompt removed.
fn readme_commands() -> Vec<String> {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let mut commands = Vec::new();
    let mut in_block = false;
    let mut pending: Option<String> = None;
    for line in readme.lines() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if !in_block {
            continue;
        }
        let text = line.trim().trim_start_matches("$ ");
        let command = match pending.take() {
            Some(mut so_far) => {
                so_far.push(' ');
                so_far.push_str(text);
                so_far
            }
            None if text.starts_with("wsl-tarball ") => text.to_owned(),
            None => continue,
        };
        match command.strip_suffix('\\') {
            Some(open) => pending = Some(open.trim_end().to_owned()),
            None => commands.push(command),
        }
    }
    commands
}

/// The words of a command line up to a comment, a pipe or a redirection.
fn words(command: &str) -> Vec<&str> {
    command
        .split_whitespace()
        .take_while(|word| !matches!(*word, "#" | "|" | ">" | "<"))
        .collect()
}

#[test]
fn every_readme_command_uses_a_real_subcommand_and_real_flags() {
    let commands = readme_commands();
    assert!(commands.len() >= 15, "found only {commands:?}");
    let mut checked_flags = 0;
    for command in &commands {
        let words = words(command);
        let subcommand = words[1];
        let help = run_wsl_tarball(&[subcommand, "--help"]);
        assert!(
            help.status.success(),
            "README: `{command}`: `wsl-tarball {subcommand}` is not a subcommand"
        );
        let help = String::from_utf8_lossy(&help.stdout).into_owned();
        for word in &words[2..] {
            // `[-o FILE]` in a synopsis is a flag too.
            let flag = word.trim_start_matches('[').trim_end_matches(']');
            let flag = flag.split('=').next().unwrap();
            if !flag.starts_with('-') || flag == "-" {
                continue;
            }
            let listed = help
                .split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == '=')
                .any(|token| token == flag);
            assert!(
                listed,
                "README: `{command}`: `{subcommand}` has no flag {flag}:\n{help}"
            );
            checked_flags += 1;
        }
    }
    assert!(checked_flags >= 20, "only {checked_flags} flags checked");
}

#[test]
fn the_command_line_example_writes_a_tarball_that_boots_and_verifies() {
    // "Using the CLI directly", with the fixture standing in for
    // /run/current-system: the README's own flags, in its order.
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let example = readme_commands()
        .into_iter()
        .find(|c| c.starts_with("wsl-tarball write --closure closure.json"))
        .expect("the README shows `wsl-tarball write --closure closure.json …`");
    assert!(
        readme.contains("nix path-info --json -r /run/current-system > closure.json"),
        "the example's closure comes from nix path-info"
    );
    let dir = tempfile::tempdir().unwrap();
    // A NixOS-shaped system (init, etc, sw) from the test flake.
    let flake = format!("path:{}", repo_root().join("tests/nix").display());
    let built: serde_json::Value = serde_json::from_slice(&run_ok(
        nix_command("nix")
            .args(["build", "--no-link", "--json"])
            .arg(format!(
                "{flake}#nixosConfigurations.bare.config.system.build.toplevel"
            )),
    ))
    .unwrap();
    let system = built[0]["outputs"]["out"].as_str().unwrap().to_owned();
    let closure = write_path_info(&system, dir.path());
    assert!(
        example.contains("--system") && example.contains("-o nixos.wsl"),
        "{example}"
    );
    let output = dir.path().join("nixos.wsl");
    let result = run_wsl_tarball(&[
        "write",
        "--closure",
        closure.to_str().unwrap(),
        "--system",
        &system,
        "-o",
        output.to_str().unwrap(),
    ]);
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    // It gets the skeleton by default, so verify (without --bare) passes.
    assert_verifies(&output, Rootfs::Skeleton);
}
