//! The command line as users meet it: help headings and summaries, the exit
//! status table, usage errors before any input is read, completions, the
//! man pages, `--version`, and the order of write's messages.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{fixture_system, run_write, run_wsl_tarball, write_fixture, write_path_info};

const COMMANDS: [&str; 12] = [
    "write",
    "build",
    "check",
    "inspect",
    "verify",
    "diff",
    "delta",
    "apply",
    "sign",
    "publish",
    "completions",
    "man",
];

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn help(args: &[&str]) -> String {
    let output = run_wsl_tarball(args);
    assert!(output.status.success(), "{args:?}: {}", stderr(&output));
    stdout(&output)
}

/// The long options under each heading of a help text, in order.
fn options_by_heading(text: &str) -> Vec<(String, Vec<String>)> {
    let mut sections: Vec<(String, Vec<String>)> = Vec::new();
    for line in text.lines() {
        let item = line.trim_start();
        let indent = line.len() - item.len();
        if indent == 0 && line.ends_with(':') {
            sections.push((line.trim_end_matches(':').to_owned(), Vec::new()));
        } else if let (Some((_, options)), true) = (sections.last_mut(), item.starts_with('-')) {
            // `  -o, --output <FILE>` or `      --manifest <FILE>`; the
            // descriptions below them are indented further.
            if indent <= 6 {
                let item = item.split_once(", ").map_or(item, |(_, long)| long);
                options.push(item.split(' ').next().unwrap().to_owned());
            }
        }
    }
    sections
}

#[test]
fn write_help_groups_its_options_under_headings() {
    let text = help(&["write", "--help"]);
    let sections = options_by_heading(&text);
    let expected: Vec<(&str, Vec<&str>)> = vec![
        ("Options", vec!["--quiet", "--help"]),
        (
            "Output",
            vec![
                "--output",
                "--manifest",
                "--sbom",
                "--cache",
                "--cache-limit",
                "--cache-check-contents",
                "--sign-key",
            ],
        ),
        ("Compression", vec!["--compression", "--level", "--threads"]),
        (
            "Rootfs",
            vec![
                "--nixos",
                "--no-skeleton",
                "--icon",
                "--mtime",
                "--extra-files",
                "--chown",
                "--allow-override",
            ],
        ),
        (
            "Nix",
            vec![
                "--closure",
                "--system",
                "--facts",
                "--nix-db",
                "--store-dir",
                "--store-root",
            ],
        ),
        (
            "Security",
            vec![
                "--strict",
                "--allow",
                "--pattern",
                "--identifier",
                "--json",
                "--verbose",
            ],
        ),
        ("Exit status", vec![]),
    ];
    let seen: Vec<(&str, Vec<&str>)> = sections
        .iter()
        // The long description's own paragraph ends in a colon too.
        .filter(|(heading, _)| heading != "Example")
        .map(|(h, o)| (h.as_str(), o.iter().map(String::as_str).collect()))
        .collect();
    assert_eq!(seen, expected, "{text}");
}

#[test]
fn command_summaries_are_one_line_and_end_alike() {
    let text = help(&["--help"]);
    let commands = text
        .split("Commands:\n")
        .nth(1)
        .and_then(|rest| rest.split("\n\n").next())
        .expect("a Commands section");
    let mut names = Vec::new();
    for line in commands.lines() {
        let (name, summary) = line
            .trim_start()
            .split_once("  ")
            .unwrap_or_else(|| panic!("a continued summary: {line:?}\n{text}"));
        let summary = summary.trim();
        assert!(!summary.ends_with('.'), "{name}: {summary:?}");
        assert!(
            summary.starts_with(|c: char| c.is_ascii_uppercase()),
            "{name}: {summary:?}"
        );
        names.push(name.to_owned());
    }
    let mut expected: Vec<String> = COMMANDS.iter().map(|c| c.to_string()).collect();
    expected.push("help".to_owned());
    assert_eq!(names, expected);
}

/// The exit statuses each command can end with.
const STATUSES: [(&str, &[&str]); 12] = [
    ("write", &["0", "1", "2", "3"]),
    ("build", &["0", "1", "2", "3"]),
    ("check", &["0", "2", "3"]),
    ("inspect", &["0", "2"]),
    ("verify", &["0", "1", "2"]),
    ("diff", &["0", "1", "2"]),
    ("delta", &["0", "1", "2", "3"]),
    ("apply", &["0", "1", "2"]),
    ("sign", &["0", "1", "2"]),
    ("publish", &["0", "1", "2"]),
    ("completions", &["0", "2"]),
    ("man", &["0", "2"]),
];

#[test]
fn every_help_ends_with_its_own_exit_statuses() {
    let top = help(&["--help"]);
    let table = &top[top.find("Exit status:").expect("a table in --help")..];
    for code in ["0  ", "1  ", "2  ", "3  "] {
        assert!(table.contains(code), "{table}");
    }
    // The README documents the whole table.
    let readme = std::fs::read_to_string(common::repo_root().join("README.md")).unwrap();
    assert!(
        readme.contains(table.trim_end()),
        "README lacks the exit status table:\n{table}"
    );
    assert_eq!(STATUSES.map(|(command, _)| command), COMMANDS);
    for (command, codes) in STATUSES {
        let text = help(&[command, "--help"]);
        let own = &text[text.rfind("\nExit status:\n").expect("a table") + 1..];
        // The table ends the help, one line per status (continuations
        // indented further), each about this command only.
        let listed: Vec<&str> = own
            .lines()
            .skip(1)
            .filter(|line| !line.starts_with("     "))
            .map(|line| line.trim_start().split("  ").next().unwrap())
            .collect();
        assert_eq!(listed, codes, "{command} --help:\n{own}");
        for other in COMMANDS.iter().filter(|other| **other != command) {
            assert!(
                !own.contains(&format!("({other}")) && !own.contains(&format!(" {other},")),
                "{command} --help names {other}:\n{own}"
            );
        }
    }
}

#[test]
fn diff_arguments_have_help() {
    let text = help(&["diff", "-h"]);
    let arguments = text.split("Arguments:\n").nth(1).unwrap();
    let a = arguments.lines().find(|l| l.contains("<A>")).unwrap();
    let b = arguments.lines().find(|l| l.contains("<B>")).unwrap();
    assert!(a.contains("The first tarball"), "{text}");
    assert!(b.contains("compared with A"), "{text}");
}

/// Runs with a deadline: a command that read /dev/zero would never end.
fn run_quickly(args: &[&str], dir: &Path) -> Output {
    run_quickly_with(args, dir, &[])
}

/// [`run_quickly`] with environment variables set.
fn run_quickly_with(args: &[&str], dir: &Path, env: &[(&str, &str)]) -> Output {
    let started = Instant::now();
    let child = common::wsl_tarball()
        .args(args)
        .envs(env.iter().copied())
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let id = child.id();
    let watchdog = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(20));
        // kill(1) of the child this test started, if it still runs.
        let _ = Command::new("kill")
            .args(["-9", &id.to_string()])
            .stderr(Stdio::null())
            .status();
    });
    let output = child.wait_with_output().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{args:?} took {:?}",
        started.elapsed()
    );
    drop(watchdog);
    output
}

#[test]
fn bad_flag_values_are_usage_errors_before_the_closure_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let system = "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-nixos-system-x";
    let write = ["write", "--closure", "/dev/zero", "--system", system];
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            [&write[..], &["--level", "12"]].concat(),
            "--level 12: gzip level 12 is out of range 1-9",
        ),
        (
            [&write[..], &["--compression", "xz", "--level", "10"]].concat(),
            "--level 10: xz level 10 is out of range 0-9",
        ),
        (
            [&write[..], &["--compression", "none", "--level", "3"]].concat(),
            "--level 3: compression none takes no level (got 3)",
        ),
        (
            [&write[..], &["--threads", "0"]].concat(),
            "--threads 0: threads must be at least 1",
        ),
        (
            vec![
                "check",
                "--closure",
                "/dev/zero",
                "--system",
                system,
                "--threads",
                "0",
            ],
            "--threads 0: threads must be at least 1",
        ),
        (
            vec![
                "delta",
                "--from",
                "/dev/zero",
                "--closure",
                "/dev/zero",
                "--system",
                system,
                "--level",
                "0",
            ],
            "--level 0: gzip level 0 is out of range 1-9",
        ),
        (
            vec!["build", "--flake", "/nonexistent", "--threads", "0"],
            "--threads 0: threads must be at least 1",
        ),
        // `verify` and `publish` parse their keys alike, where they enter.
        (
            vec!["verify", "--trusted-key", "team:x", "/dev/zero"],
            "--trusted-key: team:x (no such file): public key 1 is not NAME:BASE64 of 32 bytes: the part after the `:` is not valid base64",
        ),
        (
            vec![
                "publish",
                "--trusted-key",
                "team",
                "--flavour",
                "team",
                "--base-url",
                "https://example.org/",
                "--out",
                "release",
                "/dev/zero",
            ],
            "--trusted-key: team (no such file): public key 1 is not NAME:BASE64 of 32 bytes: it is not NAME:BASE64 (no `:`)",
        ),
    ];
    for (args, message) in cases {
        let output = run_quickly(&args, dir.path());
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        assert_eq!(
            stderr(&output).trim_end(),
            format!("wsl-tarball: error: {message}"),
            "{args:?}"
        );
        assert!(output.stdout.is_empty(), "{args:?}");
    }
    assert_eq!(common::dir_names(dir.path()), Vec::<String>::new());
}

#[test]
fn check_accepts_only_the_flags_it_uses() {
    let dir = tempfile::tempdir().unwrap();
    for flag in [
        &["-o", "x.wsl"][..],
        &["--compression", "xz"],
        &["--level", "3"],
        &["--manifest", "m.json"],
        &["--cache", "cache"],
    ] {
        let mut args = vec![
            "check",
            "--closure",
            "/dev/zero",
            "--system",
            "/nix/store/x",
        ];
        args.extend_from_slice(flag);
        let output = run_quickly(&args, dir.path());
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(
            stderr(&output).contains(&format!("unexpected argument '{}'", flag[0])),
            "{args:?}: {}",
            stderr(&output)
        );
    }
    assert_eq!(common::dir_names(dir.path()), Vec::<String>::new());
}

#[test]
fn exit_statuses_follow_diff_and_ripgrep() {
    let dir = tempfile::tempdir().unwrap();
    let a = write_fixture(dir.path(), "a.wsl", &[]);
    let b = write_fixture(dir.path(), "b.wsl", &["--mtime", "5"]);
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let missing = dir.path().join("missing.wsl");
    let missing = missing.to_str().unwrap();
    let planted = dir.path().join("planted");
    std::fs::create_dir(&planted).unwrap();
    std::fs::write(
        planted.join("key"),
        "token ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8\n",
    )
    .unwrap();
    let planted_tar = dir.path().join("planted.tar");
    let status = Command::new("tar")
        .arg("-cf")
        .arg(&planted_tar)
        .arg("-C")
        .arg(&planted)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    let planted_tar = planted_tar.to_str().unwrap();

    let cases: Vec<(Vec<&str>, i32)> = vec![
        (vec!["diff", a, a], 0),
        (vec!["diff", a, b], 1),
        (vec!["diff", a, missing], 2),
        (vec!["verify", "--bare", a], 0),
        // A bare tarball has no WSL skeleton: verification fails.
        (vec!["verify", a], 1),
        (vec!["verify", missing], 2),
        (vec!["inspect", a], 0),
        (vec!["inspect", missing], 2),
        (vec!["check", a], 0),
        (vec!["check", planted_tar], 3),
        (vec!["check", missing], 2),
        (vec!["inspect", "--no-such-flag", a], 2),
        (vec!["verify"], 2),
        (vec!["completions", "tcsh"], 2),
        (vec!["man", "nope"], 2),
    ];
    for (args, code) in cases {
        let output = run_wsl_tarball(&args);
        assert_eq!(
            output.status.code(),
            Some(code),
            "{args:?}: {}",
            stderr(&output)
        );
        if code == 2 && args.contains(&missing) {
            assert_eq!(
                stderr(&output).trim_end(),
                format!(
                    "wsl-tarball: error: {missing}: cannot open it: No such file or directory (os error 2)"
                ),
                "{args:?}"
            );
        }
    }
}

#[test]
fn write_says_what_it_read_before_the_security_report() {
    let dir = tempfile::tempdir().unwrap();
    let system = fixture_system();
    let closure = write_path_info(system, dir.path());
    let output = dir.path().join("nixos.wsl");
    let result = run_write(&closure, system, &output, &[]);
    assert!(result.status.success(), "{}", stderr(&result));
    let text = stderr(&result);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(
        lines[0],
        format!(
            "read {} (nix path-info --json list (Nix <= 2.18))",
            closure.display()
        )
    );
    assert!(lines[1].starts_with("security checks: 0 errors,"), "{text}");
    assert!(
        lines[2].starts_with(&format!("wrote {}: 5 store paths", output.display())),
        "{text}"
    );
}

#[test]
fn completions_parse_in_their_shells() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let output = run_wsl_tarball(&["completions", shell]);
        assert!(output.status.success(), "{shell}: {}", stderr(&output));
        let script = stdout(&output);
        // Every command and write's flags are offered.
        for word in COMMANDS.iter().chain(&["--extra-files", "--no-skeleton"]) {
            assert!(script.contains(word), "{shell} completion lacks {word}");
        }
        let checker = match shell {
            "bash" => Some(("bash", "-n")),
            "zsh" => Some(("zsh", "-n")),
            "fish" => Some(("fish", "--no-execute")),
            _ => None,
        };
        if let Some((program, flag)) = checker {
            let file = tempfile::NamedTempFile::new().unwrap();
            std::fs::write(file.path(), &script).unwrap();
            let checked = Command::new(program)
                .arg(flag)
                .arg(file.path())
                .output()
                .unwrap_or_else(|e| panic!("{program} (see .ci/run): {e}"));
            assert!(
                checked.status.success(),
                "{program} {flag}: {}",
                stderr(&checked)
            );
        }
    }
    // bash's completion really completes: `wsl-tarball wr<TAB>`.
    let output = run_wsl_tarball(&["completions", "bash"]);
    let script = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(script.path(), &output.stdout).unwrap();
    let completed = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {}; COMP_WORDS=(wsl-tarball wr); COMP_CWORD=1; COMP_LINE='wsl-tarball wr'; COMP_POINT=14; _wsl__tarball wsl-tarball wr wsl-tarball; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            script.path().display()
        ))
        .output()
        .unwrap();
    assert_eq!(stdout(&completed).trim(), "write", "{}", stderr(&completed));
}

#[test]
fn man_pages_render() {
    for page in [None, Some("write"), Some("diff")] {
        let mut args = vec!["man"];
        args.extend(page);
        let output = run_wsl_tarball(&args);
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), &output.stdout).unwrap();
        let rendered = Command::new("groff")
            .args(["-k", "-man", "-Tutf8", "-P-c", "-P-b", "-P-u", "-ww"])
            .arg(file.path())
            .output()
            .expect("groff (groff-base, see .ci/run)");
        assert!(rendered.status.success(), "{}", stderr(&rendered));
        assert!(
            rendered.stderr.is_empty(),
            "groff warns: {}",
            stderr(&rendered)
        );
        let text = stdout(&rendered);
        let title = match page {
            None => "wsl-tarball".to_owned(),
            Some(command) => format!("wsl-tarball-{command}"),
        };
        assert!(text.contains(&format!("{title}(1)")), "{text}");
        assert!(text.contains("NAME"), "{text}");
        assert!(text.contains("Exit status:"), "{text}");
        match page {
            None => assert!(text.contains("wsl-tarball-write(1)"), "{text}"),
            Some("write") => {
                assert!(text.contains("--extra-files"), "{text}");
                assert!(text.contains("wsl-tarball write"), "{text}");
            }
            Some(_) => assert!(text.contains("compared with A"), "{text}"),
        }
    }
}

#[test]
fn version_is_the_package_version_and_the_git_revision() {
    let output = run_wsl_tarball(&["--version"]);
    assert!(output.status.success());
    // The binary was built with the same environment as this test.
    let expected = match option_env!("WSL_TARBALL_GIT_REVISION") {
        Some(revision) if !revision.is_empty() => {
            format!(
                "wsl-tarball {} (git {revision})\n",
                env!("CARGO_PKG_VERSION")
            )
        }
        _ => format!("wsl-tarball {}\n", env!("CARGO_PKG_VERSION")),
    };
    assert_eq!(stdout(&output), expected);
}

#[test]
fn the_progress_bar_names_the_file_and_the_store_path_count() {
    let dir = tempfile::tempdir().unwrap();
    let system = fixture_system();
    let closure = write_path_info(system, dir.path());
    let output = dir.path().join("named.wsl");
    // script(1) gives the command a terminal, where the bar is drawn.
    let command = format!(
        "{} write --no-skeleton --closure {} --system {system} -o {}",
        env!("CARGO_BIN_EXE_wsl-tarball"),
        closure.display(),
        output.display()
    );
    let mut script = Command::new("script");
    // The same environment as common::wsl_tarball gives the binary.
    script.env_remove("SOURCE_DATE_EPOCH");
    for variable in wsl_tarball::scan::sensitive_variables(std::env::vars_os()) {
        script.env_remove(&variable.name);
    }
    script.env_remove(wsl_tarball::scan::SKIP_CHECKS_VAR);
    let result = script
        .args(["-qec", &command, "/dev/null"])
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(result.status.success(), "{}", stderr(&result));
    let text = stdout(&result);
    assert!(text.contains("named.wsl, 5 store paths 00:00:"), "{text:?}");
    assert!(text.contains(" KiB/"), "{text:?}");
    // Without a terminal there is no bar.
    let result = run_write(&closure, system, &output, &[]);
    assert!(
        !stderr(&result).contains("store paths 00:00:"),
        "{}",
        stderr(&result)
    );
}

#[test]
fn check_without_arguments_shows_its_two_forms() {
    let output = run_wsl_tarball(&["check"]);
    assert_eq!(output.status.code(), Some(2));
    let text = stderr(&output);
    assert!(
        text.contains("wsl-tarball check [OPTIONS] <FILE>"),
        "{text}"
    );
    assert!(
        text.contains("wsl-tarball check [OPTIONS] --closure <FILE>"),
        "{text}"
    );
    assert!(!text.contains("required"), "{text}");
}

#[test]
fn owners_systems_roots_and_the_epoch_are_checked_before_anything_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let system = "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-nixos-system-x";
    let write = ["write", "--closure", "/dev/zero", "--system", system];
    let check = ["check", "--closure", "/dev/zero", "--system", system];
    let names = ["--chown", "/home/alice", "alice:users"];
    let owner = "--chown owner \"alice:users\" must be numeric UID:GID";
    type Env<'a> = &'a [(&'a str, &'a str)];
    let cases: Vec<(Vec<&str>, Env, &str)> = vec![
        ([&write[..], &names].concat(), &[], owner),
        ([&check[..], &names].concat(), &[], owner),
        (
            [&["build", "--flake", "/nonexistent"][..], &names].concat(),
            &[],
            owner,
        ),
        (
            vec!["write", "--closure", "/dev/zero", "--system", ""],
            &[],
            "--system",
        ),
        (
            vec!["check", "--closure", "/dev/zero", "--system", ""],
            &[],
            "--system",
        ),
        (
            vec!["apply", "--root", "/nonexistent", "/dev/zero"],
            &[],
            "--dry-activate",
        ),
        (
            write.to_vec(),
            &[("SOURCE_DATE_EPOCH", "")],
            "SOURCE_DATE_EPOCH is set but empty",
        ),
        (
            vec![
                "delta",
                "--from",
                "/dev/zero",
                "--closure",
                "/dev/zero",
                "--system",
                system,
            ],
            &[("SOURCE_DATE_EPOCH", "")],
            "SOURCE_DATE_EPOCH is set but empty",
        ),
    ];
    for (args, env, message) in cases {
        let output = run_quickly_with(&args, dir.path(), env);
        let text = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?} {env:?}: {text}");
        assert!(text.contains(message), "{args:?} {env:?}: {text}");
        if !env.is_empty() {
            assert!(!text.contains("--mtime"), "{args:?} {env:?}: {text}");
        }
        assert!(output.stdout.is_empty(), "{args:?}");
    }
    assert_eq!(common::dir_names(dir.path()), Vec::<String>::new());
}

#[test]
fn findings_point_to_the_installed_man_page_not_the_readme() {
    let dir = tempfile::tempdir().unwrap();
    let planted = dir.path().join("planted");
    std::fs::create_dir(&planted).unwrap();
    std::fs::write(
        planted.join("token"),
        "token ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8\n",
    )
    .unwrap();
    let system = fixture_system();
    let closure = write_path_info(system, dir.path());
    let output = dir.path().join("nixos.wsl");
    let result = run_write(
        &closure,
        system,
        &output,
        &["--quiet", "--extra-files", planted.to_str().unwrap()],
    );
    let text = stderr(&result);
    assert_eq!(result.status.code(), Some(3), "{text}");
    assert!(
        text.contains("accept deliberate ones with --allow (see `man wsl-tarball-write`)"),
        "{text}"
    );
    assert!(!text.contains("README"), "{text}");
    // One finding, in the singular.
    assert!(
        text.contains("wsl-tarball: 1 error-severity finding: the tarball was not written"),
        "{text}"
    );
    assert!(!output.exists());
}

#[test]
fn counts_of_one_are_singular() {
    let dir = tempfile::tempdir().unwrap();
    // A closure of one store path holding one file.
    let one = common::run_text(common::nix_command("nix-build").args([
        "--no-out-link",
        "-E",
        r#"derivation { name = "one"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "echo one > $out" ]; }"#,
    ]));
    let one = one.trim();
    let closure = write_path_info(one, dir.path());
    let output = dir.path().join("one.wsl");
    let result = run_write(&closure, one, &output, &[]);
    let text = stderr(&result);
    assert!(result.status.success(), "{text}");
    assert!(
        text.contains(&format!("wrote {}: 1 store path, ", output.display())),
        "{text}"
    );
    assert!(
        text.contains("security checks: 0 errors, 0 warnings"),
        "{text}"
    );
    assert!(!text.contains("(s)"), "{text}");
}

#[test]
fn zstd_gets_one_warning_that_wsl_does_not_officially_import_it() {
    let dir = tempfile::tempdir().unwrap();
    let system = fixture_system();
    let closure = write_path_info(system, dir.path());
    let warning = "wsl-tarball: warning: WSL does not officially import zstd tarballs";
    let output = dir.path().join("nixos.wsl");
    let result = run_write(&closure, system, &output, &["--compression", "zstd"]);
    let text = stderr(&result);
    assert!(result.status.success(), "{text}");
    assert_eq!(text.matches(warning).count(), 1, "{text}");
    assert!(
        text.contains("distributions/validate-modern.py accepts only gzip and xz"),
        "{text}"
    );
    // gzip and xz get none; --quiet silences it.
    for extra in [
        &["--compression", "gzip"][..],
        &["--compression", "xz"],
        &["--compression", "zstd", "--quiet"],
    ] {
        let result = run_write(&closure, system, &output, extra);
        let text = stderr(&result);
        assert!(result.status.success(), "{text}");
        assert!(!text.contains("wsl-tarball: warning"), "{extra:?}: {text}");
    }
}
