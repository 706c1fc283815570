//! The `wsl-tarball` command lines of README.md and of the book
//! (`docs/src/**/*.md`) against the binary: every subcommand they use exists
//! and every flag they pass is one that subcommand takes (from its own
//! `--help`). The commands that need real inputs are run by the other tests
//! (and the book's output samples by tests/docs.rs); this keeps the
//! documents from naming flags that do not exist.

mod common;

use std::path::{Path, PathBuf};

use common::*;

/// README.md and every Markdown file under docs/src, at any depth, but
/// the generated CLI reference.
fn documents() -> Vec<PathBuf> {
    fn markdown_under(dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                markdown_under(&path, found);
            } else if path.extension().is_some_and(|e| e == "md") {
                found.push(path);
            }
        }
    }
    let mut files = Vec::new();
    markdown_under(&repo_root().join("docs/src"), &mut files);
    // cli.md is the binary's own --help (tests/docs.rs), prose included.
    files.retain(|file| !file.ends_with("docs/src/cli.md"));
    files.sort();
    files.insert(0, repo_root().join("README.md"));
    files
}

/// The `wsl-tarball …` command lines of a Markdown file's code blocks, with
/// `\` continuations joined and any `$ ` prompt removed.
fn commands_in(file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap();
    let mut commands = Vec::new();
    let mut in_block = false;
    let mut pending: Option<String> = None;
    for line in text.lines() {
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

/// The README's command lines.
fn readme_commands() -> Vec<String> {
    commands_in(&repo_root().join("README.md"))
}

/// The words of a command line up to a comment, a pipe or a redirection.
fn words(command: &str) -> Vec<&str> {
    command
        .split_whitespace()
        .take_while(|word| !matches!(*word, "#" | "|" | ">" | "<"))
        .collect()
}

#[test]
fn every_documented_command_uses_a_real_subcommand_and_real_flags() {
    let mut checked_commands = 0;
    let mut checked_flags = 0;
    let mut files_with_commands = 0;
    for file in documents() {
        let name = file
            .strip_prefix(repo_root())
            .unwrap()
            .display()
            .to_string();
        let commands = commands_in(&file);
        files_with_commands += usize::from(!commands.is_empty());
        for command in &commands {
            let words = words(command);
            let subcommand = words[1];
            let help = run_wsl_tarball(&[subcommand, "--help"]);
            assert!(
                help.status.success(),
                "{name}: `{command}`: `wsl-tarball {subcommand}` is not a subcommand"
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
                    "{name}: `{command}`: `{subcommand}` has no flag {flag}:\n{help}"
                );
                checked_flags += 1;
            }
            checked_commands += 1;
        }
    }
    assert!(readme_commands().len() >= 2, "{:?}", readme_commands());
    assert!(files_with_commands >= 5, "only {files_with_commands} files");
    assert!(checked_commands >= 18, "only {checked_commands} commands");
    assert!(checked_flags >= 25, "only {checked_flags} flags checked");
}

#[test]
fn the_command_line_example_writes_a_tarball_that_boots_and_verifies() {
    // The README's CLI example, with the fixture standing in for
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
