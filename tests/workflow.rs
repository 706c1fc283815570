//! The reusable workflow `build-wsl-tarball.yml` as teams call it: the
//! template's `uses:` line is pinned to a commit that holds this very
//! workflow (and `.ci/pin-template` keeps it so), every job asks for no more
//! than it needs and every caller grants exactly what the jobs ask for, no
//! `${{ }}` expression is pasted into a script, and every bash script parses;
//! the channel's URL step, the release-files step and the publish step run
//! here as GitHub runs them (the publish step with a `nix` that records what
//! it is asked to run). What GitHub itself runs (attestations, Pages, the
//! download of the previous manifest) runs in CI on GitHub.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use yaml_rust2::{Yaml, YamlLoader};

const REUSABLE_WORKFLOW: &str = ".github/workflows/build-wsl-tarball.yml";
const TEMPLATE_WORKFLOW: &str = "templates/default/.github/workflows/wsl-tarball.yml";
const PIN_PREFIX: &str = "uses: wsl-tarball/wsl-tarball/.github/workflows/build-wsl-tarball.yml@";

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

/// A job's `permissions:` as scope → level.
fn permissions(job: &Yaml, what: &str) -> BTreeMap<String, String> {
    let hash = job["permissions"]
        .as_hash()
        .unwrap_or_else(|| panic!("{what}: no `permissions:` map"));
    hash.iter()
        .map(|(scope, level)| {
            (
                scope.as_str().expect("a scope").to_owned(),
                level.as_str().expect("a level").to_owned(),
            )
        })
        .collect()
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The pinned line of the template: (commit, version comment).
fn template_pin() -> (String, String) {
    let text = read(TEMPLATE_WORKFLOW);
    let lines: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("wsl-tarball/wsl-tarball/.github/workflows/"))
        .filter(|line| !line.trim_start().starts_with('#'))
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "{TEMPLATE_WORKFLOW}: one uses: line for the workflow"
    );
    let reference = lines[0]
        .trim_start()
        .strip_prefix(PIN_PREFIX)
        .unwrap_or_else(|| panic!("{TEMPLATE_WORKFLOW}: `{}` is not {PIN_PREFIX}…", lines[0]));
    let (commit, comment) = reference.split_once(" # ").unwrap_or_else(|| {
        panic!("{TEMPLATE_WORKFLOW}: `{reference}` has no `# vVERSION` comment")
    });
    (commit.to_owned(), comment.to_owned())
}

fn is_full_commit(commit: &str) -> bool {
    commit.len() == 40
        && commit
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `git` (or the pin script, which runs it) on the repository at DIR alone:
/// not one a hook's GIT_DIR names, nor one a directory above DIR's parent holds.
fn git_at(program: &str, dir: &Path) -> Command {
    let mut command = Command::new(program);
    for var in [
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_OBJECT_DIRECTORY",
    ] {
        command.env_remove(var);
    }
    command
        .env("GIT_CEILING_DIRECTORIES", dir.parent().unwrap())
        .stdin(Stdio::null());
    command
}

fn git(dir: &Path, args: &[&str]) -> Output {
    git_at("git", dir)
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run git {args:?}: {e}"))
}

/// The version in a Cargo.toml's `[package]` (its first `version = "…"` line).
fn cargo_version(cargo_toml: &str) -> String {
    cargo_toml
        .lines()
        .find_map(|line| line.strip_prefix("version = \""))
        .and_then(|rest| rest.strip_suffix('"'))
        .expect("Cargo.toml has a version line")
        .to_owned()
}

/// The pinned commit cannot be looked at: says so loudly, and fails under
/// CI=true, where `.ci/run` runs on a full clone.
fn pin_unchecked(reason: &str) {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    assert!(
        !ci,
        "{reason}; with CI=true the clone must hold the pinned commit (a full clone: fetch-depth: 0)"
    );
    let _ = writeln!(
        std::io::stderr(),
        "\n*** NOT CHECKED: the template's pinned commit: {reason}. A full clone checks that \
         {REUSABLE_WORKFLOW} at that commit is this file. ***\n"
    );
}

#[test]
fn the_template_pins_the_workflow_to_a_commit_that_holds_this_very_file() {
    let (commit, comment) = template_pin();
    assert!(
        is_full_commit(&commit),
        "{TEMPLATE_WORKFLOW}: the workflow is not pinned to a full commit: {commit} \
         (commit the workflow, then run .ci/pin-template)"
    );
    assert!(
        comment.starts_with('v') && comment[1..].starts_with(|c: char| c.is_ascii_digit()),
        "{TEMPLATE_WORKFLOW}: the pin's comment is not a version: {comment}"
    );

    if let Err(reason) = check_pin(&repo_root(), &commit, &comment) {
        pin_unchecked(&reason);
    }
}

/// Checks, in the clone at ROOT, that COMMIT holds ROOT's reusable workflow
/// byte for byte and that COMMENT is `v` and the version at COMMIT; panics
/// when not. `Err` says why the clone cannot tell: it is not a git checkout,
/// or it is shallow and lacks the commit.
fn check_pin(root: &Path, commit: &str, comment: &str) -> Result<(), String> {
    let inside = git(root, &["rev-parse", "--is-inside-work-tree"]);
    if !inside.status.success() || inside.stdout != b"true\n" {
        return Err(format!("{} is not a git checkout", root.display()));
    }
    let object = format!("{commit}^{{commit}}");
    if !git(root, &["cat-file", "-e", &object]).status.success() {
        // A full clone holds every commit of the history: the pin is wrong.
        let shallow = git(root, &["rev-parse", "--is-shallow-repository"]);
        assert!(
            shallow.stdout == b"true\n",
            "{TEMPLATE_WORKFLOW} pins {commit}, which is not in the history of this full \
             clone: run .ci/pin-template and commit the template"
        );
        return Err(format!("commit {commit} is not in this shallow clone"));
    }
    let pinned = git(root, &["show", &format!("{commit}:{REUSABLE_WORKFLOW}")]);
    assert!(
        pinned.status.success(),
        "commit {commit} has no {REUSABLE_WORKFLOW}: {}",
        String::from_utf8_lossy(&pinned.stderr)
    );
    let current = std::fs::read(root.join(REUSABLE_WORKFLOW)).unwrap();
    assert!(
        pinned.stdout == current,
        "{REUSABLE_WORKFLOW} differs from the one at the commit {TEMPLATE_WORKFLOW} pins \
         ({commit}): commit the workflow, then run .ci/pin-template and commit the template"
    );
    let cargo = git(root, &["show", &format!("{commit}:Cargo.toml")]);
    assert!(cargo.status.success(), "commit {commit} has no Cargo.toml");
    let version = cargo_version(&String::from_utf8_lossy(&cargo.stdout));
    assert_eq!(
        comment,
        format!("v{version}"),
        "the pin's comment is not the version at {commit}"
    );
    Ok(())
}

fn panics(check: impl FnOnce() -> Result<(), String> + std::panic::UnwindSafe) -> String {
    let error = std::panic::catch_unwind(check).expect_err("the check passed");
    error.downcast_ref::<String>().cloned().unwrap_or_default()
}

#[test]
fn the_pin_check_fails_a_wrong_pin_and_cannot_tell_only_in_a_shallow_clone() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("full");
    scratch_repository(&dir);
    let workflow = dir.join(REUSABLE_WORKFLOW);
    std::fs::write(&workflow, "name: one\n").unwrap();
    std::fs::write(dir.join("Cargo.toml"), "version = \"1.0.0\"\n").unwrap();
    let first = commit_all(&dir, "one");
    std::fs::write(&workflow, "name: two\n").unwrap();
    std::fs::write(dir.join("Cargo.toml"), "version = \"1.1.0\"\n").unwrap();
    let second = commit_all(&dir, "two");

    assert_eq!(check_pin(&dir, &second, "v1.1.0"), Ok(()));
    let stale = panics(|| check_pin(&dir, &first, "v1.0.0"));
    assert!(
        stale.contains("differs from the one at the commit"),
        "{stale}"
    );
    let version = panics(|| check_pin(&dir, &second, "v1.0.0"));
    assert!(version.contains("not the version at"), "{version}");
    let absent = "f".repeat(40);
    let missing = panics(|| check_pin(&dir, &absent, "v1.1.0"));
    assert!(
        missing.contains("not in the history of this full clone"),
        "{missing}"
    );

    // A shallow clone lacks the first commit and cannot tell; it still
    // checks the commit it has.
    let shallow = scratch.path().join("shallow");
    run_ok(
        git_at("git", &shallow)
            .args(["clone", "-q", "--depth", "1"])
            .arg(format!("file://{}", dir.display()))
            .arg(&shallow),
    );
    let reason = check_pin(&shallow, &first, "v1.0.0").unwrap_err();
    assert!(reason.contains("shallow clone"), "{reason}");
    assert_eq!(check_pin(&shallow, &second, "v1.1.0"), Ok(()));

    // Nor can a source tree without git.
    let plain = scratch.path().join("plain");
    std::fs::create_dir(&plain).unwrap();
    let reason = check_pin(&plain, &second, "v1.1.0").unwrap_err();
    assert!(reason.contains("not a git checkout"), "{reason}");
}

/// DIR as a copy of the pin script and the template, for a workflow and
/// later a Cargo.toml, in a fresh git repository (nothing committed yet).
fn scratch_repository(dir: &Path) {
    std::fs::create_dir_all(dir.join(".ci")).unwrap();
    std::fs::create_dir_all(dir.join(".github/workflows")).unwrap();
    std::fs::create_dir_all(dir.join("templates/default/.github/workflows")).unwrap();
    std::fs::copy(
        repo_root().join(".ci/pin-template"),
        dir.join(".ci/pin-template"),
    )
    .unwrap();
    std::fs::copy(
        repo_root().join(TEMPLATE_WORKFLOW),
        dir.join(TEMPLATE_WORKFLOW),
    )
    .unwrap();
    run_ok(git_at("git", dir).arg("init").arg("-q").arg(dir));
}

fn commit_all(dir: &Path, message: &str) -> String {
    run_ok(git_at("git", dir).arg("-C").arg(dir).args(["add", "-A"]));
    run_ok(
        git_at("git", dir)
            .arg("-C")
            .arg(dir)
            .args(["-c", "user.name=t", "-c", "user.email=t@example.org"])
            .args(["-c", "commit.gpgsign=false", "commit", "-q", "-m", message]),
    );
    let head = git(dir, &["rev-parse", "HEAD"]);
    String::from_utf8(head.stdout).unwrap().trim().to_owned()
}

fn pin_template(dir: &Path) -> Output {
    git_at("bash", dir)
        .arg(dir.join(".ci/pin-template"))
        .output()
        .unwrap()
}

#[test]
fn pin_template_pins_the_last_commit_that_changed_the_workflow() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path();
    scratch_repository(dir);
    let workflow = dir.join(REUSABLE_WORKFLOW);
    let cargo = dir.join("Cargo.toml");
    std::fs::write(&workflow, "name: one\n").unwrap();
    std::fs::write(&cargo, "[package]\nname = \"x\"\nversion = \"1.2.3\"\n").unwrap();
    commit_all(dir, "one");
    std::fs::write(&workflow, "name: two\n").unwrap();
    std::fs::write(&cargo, "[package]\nname = \"x\"\nversion = \"1.2.4\"\n").unwrap();
    let changed = commit_all(dir, "two");
    // A later commit that leaves the workflow alone is not the pin.
    std::fs::write(&cargo, "[package]\nname = \"x\"\nversion = \"1.3.0\"\n").unwrap();
    commit_all(dir, "three");

    let original = read(TEMPLATE_WORKFLOW);
    let output = pin_template(dir);
    assert!(output.status.success(), "{output:?}");
    let pinned = std::fs::read_to_string(dir.join(TEMPLATE_WORKFLOW)).unwrap();
    let line = format!("{PIN_PREFIX}{changed} # v1.2.4");
    assert_eq!(
        pinned.lines().filter(|l| l.trim_start() == line).count(),
        1,
        "{pinned}"
    );
    // Every other line is as it was.
    let others = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| !l.contains(PIN_PREFIX))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(others(&pinned), others(&original));
    assert_eq!(pinned.lines().count(), original.lines().count());
    // Again: nothing to change.
    assert!(pin_template(dir).status.success());
    assert_eq!(
        std::fs::read_to_string(dir.join(TEMPLATE_WORKFLOW)).unwrap(),
        pinned
    );

    // An uncommitted change to the workflow is refused, and the template kept.
    std::fs::write(&workflow, "name: three\n").unwrap();
    let refused = pin_template(dir);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(REUSABLE_WORKFLOW) && stderr.contains("commit it first"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join(TEMPLATE_WORKFLOW)).unwrap(),
        pinned
    );
    assert_eq!(
        dir_names(&dir.join("templates/default/.github/workflows")),
        ["wsl-tarball.yml"]
    );
}

#[test]
fn pin_template_refuses_a_template_without_exactly_one_pin() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path();
    scratch_repository(dir);
    std::fs::write(dir.join(REUSABLE_WORKFLOW), "name: one\n").unwrap();
    std::fs::write(dir.join("Cargo.toml"), "[package]\nversion = \"1.0.0\"\n").unwrap();
    let template = dir.join(TEMPLATE_WORKFLOW);
    let original = read(TEMPLATE_WORKFLOW);
    let pin_line = original.lines().find(|l| l.contains(PIN_PREFIX)).unwrap();
    let twice = format!("{original}{pin_line}\n");
    std::fs::write(&template, &twice).unwrap();
    commit_all(dir, "one");
    let output = pin_template(dir);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(TEMPLATE_WORKFLOW) && stderr.contains("2 lines"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&template).unwrap(), twice);
}

#[test]
fn each_job_gets_only_its_own_permissions_and_callers_grant_exactly_their_union() {
    let workflow = yaml(REUSABLE_WORKFLOW);
    let jobs = workflow["jobs"].as_hash().unwrap();
    let expected = [
        ("plan", map(&[])),
        ("build", map(&[("contents", "read")])),
        ("import-test", map(&[])),
        (
            "attest",
            map(&[("attestations", "write"), ("id-token", "write")]),
        ),
        ("release", map(&[("contents", "write")])),
        ("pages", map(&[("id-token", "write"), ("pages", "write")])),
    ];
    let names: Vec<&str> = jobs.keys().map(|k| k.as_str().unwrap()).collect();
    assert_eq!(
        names,
        expected.iter().map(|(name, _)| *name).collect::<Vec<_>>()
    );
    let mut union: BTreeMap<String, String> = BTreeMap::new();
    for (name, wanted) in &expected {
        let job = &workflow["jobs"][*name];
        let granted = permissions(job, &format!("{REUSABLE_WORKFLOW}: job {name}"));
        assert_eq!(&granted, wanted, "{REUSABLE_WORKFLOW}: job {name}");
        for (scope, level) in granted {
            let entry = union.entry(scope).or_insert_with(|| level.clone());
            if level == "write" {
                *entry = level;
            }
        }
    }
    // GitHub checks a caller's grant against every job, skipped or not.
    for (file, target) in [
        (
            ".github/workflows/ci.yml",
            "./.github/workflows/build-wsl-tarball.yml",
        ),
        (
            TEMPLATE_WORKFLOW,
            "wsl-tarball/wsl-tarball/.github/workflows/build-wsl-tarball.yml@",
        ),
    ] {
        let caller = yaml(file);
        let job = caller["jobs"]
            .as_hash()
            .unwrap()
            .values()
            .find(|job| job["uses"].as_str().is_some_and(|u| u.starts_with(target)))
            .unwrap_or_else(|| panic!("{file}: no job calls {target}"));
        assert_eq!(permissions(job, file), union, "{file}: the calling job");
    }
}

#[test]
fn the_channel_is_off_by_default_and_its_steps_run_only_with_a_channel() {
    let workflow = yaml(REUSABLE_WORKFLOW);
    let inputs = &workflow["on"]["workflow_call"]["inputs"];
    for input in [
        "channel",
        "channel-name",
        "channel-friendly-name",
        "pages-url",
    ] {
        assert_eq!(inputs[input]["type"].as_str(), Some("string"), "{input}");
        assert_eq!(inputs[input]["default"].as_str(), Some(""), "{input}");
    }
    assert_eq!(
        workflow["jobs"]["pages"]["if"].as_str(),
        Some("inputs.publish && inputs.channel != ''")
    );
    // The release job: the publish steps and the Pages upload need a
    // channel; the files named after each host are the release without one.
    let steps = workflow["jobs"]["release"]["steps"].as_vec().unwrap();
    let step = |name: &str| -> &Yaml {
        steps
            .iter()
            .find(|step| step["name"].as_str() == Some(name))
            .unwrap_or_else(|| panic!("release: no step {name:?}"))
    };
    for name in [
        "The channel's URLs",
        "The previous DistributionInfo.json",
        "wsl-tarball publish",
        "The installer registers the manifest URL",
        "Upload the Pages site",
    ] {
        let condition = step(name)["if"].as_str().unwrap_or_default();
        assert!(
            condition.starts_with("inputs.channel != ''"),
            "release: step {name:?} runs without a channel: if {condition:?}"
        );
    }
    assert_eq!(
        step("The release files, named after each host")["if"].as_str(),
        Some("inputs.channel == ''")
    );
    let publish = step("wsl-tarball publish")["run"].as_str().unwrap();
    for flag in [
        "--flavour \"$CHANNEL\"",
        "--base-url \"$BASE_URL\"",
        "--manifest-url \"$MANIFEST_URL\"",
        "--previous \"$workspace/previous.json\"",
        "--sign-key \"$key\"",
    ] {
        assert!(publish.contains(flag), "publish lacks {flag}: {publish}");
    }
}

/// Every `run:` of every workflow, with where it is and its shell.
fn scripts() -> Vec<(String, String, String)> {
    let mut found = Vec::new();
    for file in [
        ".github/workflows/ci.yml",
        REUSABLE_WORKFLOW,
        TEMPLATE_WORKFLOW,
    ] {
        let workflow = yaml(file);
        for (name, job) in workflow["jobs"].as_hash().unwrap() {
            let name = name.as_str().unwrap();
            for (index, step) in job["steps"].as_vec().into_iter().flatten().enumerate() {
                if let Some(run) = step["run"].as_str() {
                    let shell = step["shell"].as_str().unwrap_or("bash").to_owned();
                    let at = format!("{file}: job {name}, step {}", index + 1);
                    found.push((at, shell, run.to_owned()));
                }
            }
        }
    }
    found
}

#[test]
fn no_expression_is_pasted_into_a_script_and_every_bash_script_parses() {
    let scripts = scripts();
    assert!(scripts.len() >= 15, "{} scripts", scripts.len());
    let mut bash = 0;
    for (at, shell, run) in &scripts {
        // Inputs, secrets, matrix values and event fields reach a script
        // through `env:`, where the shell cannot mistake them for code.
        assert!(
            !run.contains("${{"),
            "{at}: an expression inside `run:`; pass it through env:\n{run}"
        );
        if shell == "bash" {
            let output = Command::new("bash")
                .args(["-n", "-e", "-o", "pipefail", "-c", run])
                .stdin(Stdio::null())
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "{at}: bash -n: {}\n{run}",
                String::from_utf8_lossy(&output.stderr)
            );
            bash += 1;
        }
    }
    assert!(bash >= 12, "{bash} bash scripts");
}

#[test]
fn the_attestations_cover_the_image_manifest_and_sbom_with_pinned_actions() {
    let workflow = yaml(REUSABLE_WORKFLOW);
    let steps = workflow["jobs"]["attest"]["steps"].as_vec().unwrap();
    let uses = |action: &str| -> &Yaml {
        let found: Vec<&Yaml> = steps
            .iter()
            .filter(|step| {
                step["uses"]
                    .as_str()
                    .is_some_and(|u| u.starts_with(&format!("{action}@")))
            })
            .collect();
        assert_eq!(found.len(), 1, "attest: one step uses {action}");
        found[0]
    };
    let provenance = uses("actions/attest-build-provenance");
    let subjects: Vec<&str> = provenance["with"]["subject-path"]
        .as_str()
        .unwrap()
        .lines()
        .collect();
    assert_eq!(
        subjects,
        [
            "dist/${{ matrix.host }}/nixos.wsl",
            "dist/${{ matrix.host }}/manifest.json",
            "dist/${{ matrix.host }}/sbom.cdx.json",
        ]
    );
    let sbom = uses("actions/attest-sbom");
    assert_eq!(
        sbom["with"]["subject-path"].as_str(),
        Some("dist/${{ matrix.host }}/nixos.wsl")
    );
    assert_eq!(
        sbom["with"]["sbom-path"].as_str(),
        Some("dist/${{ matrix.host }}/sbom.cdx.json")
    );
    // The commits of the releases named in the comments (the actions'
    // repositories' tags v4.1.0).
    let text = read(REUSABLE_WORKFLOW);
    for pin in [
        "actions/attest-build-provenance@a2bbfa25375fe432b6a289bc6b6cd05ecd0c4c32 # v4.1.0",
        "actions/attest-sbom@c604332985a26aa8cf1bdc465b92731239ec6b9e # v4.1.0",
        "actions/upload-pages-artifact@fc324d3547104276b827a68afc52ff2a11cc49c9 # v5.0.0",
        "actions/deploy-pages@cd2ce8fcbc39b97be8ca5fce6e763baed58fa128 # v5.0.0",
    ] {
        assert!(text.contains(&format!("uses: {pin}\n")), "{pin}");
    }
}

/// Runs a bash step of the reusable workflow's JOB in DIR as GitHub runs it
/// (`bash -e -o pipefail`), with ENV.
fn run_step(job: &str, name: &str, dir: &Path, env: &[(&str, &str)]) -> Output {
    let workflow = yaml(REUSABLE_WORKFLOW);
    let steps = workflow["jobs"][job]["steps"].as_vec().unwrap();
    let step = steps
        .iter()
        .find(|step| step["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("{job}: no step {name:?}"));
    let script = step["run"].as_str().unwrap();
    Command::new("bash")
        .args([
            "--noprofile",
            "--norc",
            "-e",
            "-o",
            "pipefail",
            "-c",
            script,
        ])
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// A step's environment.
type Env<'a> = &'a [(&'a str, &'a str)];

/// The step's `$GITHUB_OUTPUT` as name → value.
fn step_outputs(dir: &Path, env: &[(&str, &str)]) -> (Output, BTreeMap<String, String>) {
    let file = dir.join("github-output");
    std::fs::write(&file, "").unwrap();
    let mut env = env.to_vec();
    let file_str = file.to_str().unwrap().to_owned();
    env.push(("GITHUB_OUTPUT", &file_str));
    env.push(("GITHUB_SERVER_URL", "https://github.com"));
    let output = run_step("release", "The channel's URLs", dir, &env);
    let outputs = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    (output, outputs)
}

#[test]
fn the_channel_urls_are_pages_for_the_manifest_and_the_release_for_the_images() {
    let dir = tempfile::tempdir().unwrap();
    let repo = |owner: &'static str, name: &'static str| {
        [
            ("GITHUB_REPOSITORY_OWNER", owner),
            ("GITHUB_REPOSITORY", name),
        ]
    };
    let cases: [(Env, [&str; 2]); 4] = [
        (
            &[
                repo("OurTeam", "OurTeam/Wsl"),
                [("TAG", "v1.0"), ("PAGES_URL", "")],
            ]
            .concat(),
            [
                "https://ourteam.github.io/Wsl/",
                "https://github.com/OurTeam/Wsl/releases/download/v1.0/",
            ],
        ),
        (
            &[
                repo("OurTeam", "OurTeam/OurTeam.github.io"),
                [("TAG", "v2"), ("PAGES_URL", "")],
            ]
            .concat(),
            [
                "https://ourteam.github.io/",
                "https://github.com/OurTeam/OurTeam.github.io/releases/download/v2/",
            ],
        ),
        (
            &[
                repo("o", "o/r"),
                [("TAG", "v3"), ("PAGES_URL", "https://wsl.example.org/team")],
            ]
            .concat(),
            [
                "https://wsl.example.org/team/",
                "https://github.com/o/r/releases/download/v3/",
            ],
        ),
        // A tag is a path segment of the image URLs, percent-encoded.
        (
            &[
                repo("o", "o/r"),
                [
                    ("TAG", "release/2026 1"),
                    ("PAGES_URL", "https://o.github.io/r/"),
                ],
            ]
            .concat(),
            [
                "https://o.github.io/r/",
                "https://github.com/o/r/releases/download/release%2F2026%201/",
            ],
        ),
    ];
    for (env, [pages, base]) in cases {
        let (output, outputs) = step_outputs(dir.path(), env);
        assert!(output.status.success(), "{env:?}: {output:?}");
        assert_eq!(
            outputs,
            map(&[
                ("base-url", base),
                ("manifest-url", &format!("{pages}DistributionInfo.json")),
                ("pages-url", pages),
            ]),
            "{env:?}"
        );
    }

    let refused: [(Env, &str); 2] = [
        (
            &[
                repo("o", "o/r"),
                [("TAG", "v1"), ("PAGES_URL", "http://o.github.io/r/")],
            ]
            .concat(),
            "pages-url must be an https:// URL",
        ),
        (
            &[repo("o", "o/r"), [("TAG", ""), ("PAGES_URL", "")]].concat(),
            "a channel needs the release's tag",
        ),
    ];
    for (env, message) in refused {
        let (output, outputs) = step_outputs(dir.path(), env);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.code(), Some(1), "{env:?}: {output:?}");
        assert!(stdout.contains(message), "{env:?}: {stdout}");
        assert!(outputs.is_empty(), "{env:?}: {outputs:?}");
    }
}

#[test]
fn without_a_channel_the_release_files_are_named_after_each_host() {
    let dir = tempfile::tempdir().unwrap();
    for (host, bytes) in [("my-wsl", "x86_64 image"), ("my-wsl-arm", "aarch64 image")] {
        let host_dir = dir.path().join("dist").join(host);
        std::fs::create_dir_all(&host_dir).unwrap();
        std::fs::write(host_dir.join("nixos.wsl"), bytes).unwrap();
        std::fs::write(
            host_dir.join("manifest.json"),
            format!("{{\"m\": \"{host}\"}}"),
        )
        .unwrap();
        std::fs::write(
            host_dir.join("sbom.cdx.json"),
            format!("{{\"s\": \"{host}\"}}"),
        )
        .unwrap();
        std::fs::write(
            host_dir.join("nixos.wsl.sha256"),
            format!("{}  nixos.wsl\n", "ab".repeat(32)),
        )
        .unwrap();
    }
    let output = run_step(
        "release",
        "The release files, named after each host",
        dir.path(),
        &[],
    );
    assert!(output.status.success(), "{output:?}");
    let release = dir.path().join("release");
    assert_eq!(
        dir_names(&release),
        [
            "my-wsl-arm.cdx.json",
            "my-wsl-arm.manifest.json",
            "my-wsl-arm.wsl",
            "my-wsl-arm.wsl.sha256",
            "my-wsl.cdx.json",
            "my-wsl.manifest.json",
            "my-wsl.wsl",
            "my-wsl.wsl.sha256",
        ]
    );
    let read = |name: &str| std::fs::read_to_string(release.join(name)).unwrap();
    assert_eq!(read("my-wsl.wsl"), "x86_64 image");
    assert_eq!(read("my-wsl-arm.wsl"), "aarch64 image");
    assert_eq!(read("my-wsl.manifest.json"), "{\"m\": \"my-wsl\"}");
    assert_eq!(read("my-wsl-arm.cdx.json"), "{\"s\": \"my-wsl-arm\"}");
    assert_eq!(
        read("my-wsl.wsl.sha256"),
        format!("{}  my-wsl.wsl\n", "ab".repeat(32))
    );
}

/// Without a channel the release notes give, per host, the `verify`
/// command for the renamed files, whose SBOM is not under the name its
/// manifest records (tests/sbom.rs runs that command on such files).
#[test]
fn without_a_channel_the_release_notes_verify_each_host_with_its_sbom() {
    let dir = tempfile::tempdir().unwrap();
    let release = dir.path().join("release");
    std::fs::create_dir(&release).unwrap();
    for host in ["my-wsl", "my-wsl-arm"] {
        std::fs::write(release.join(format!("{host}.wsl")), host).unwrap();
    }
    let output = run_step(
        "release",
        "Checksums in the release notes",
        dir.path(),
        &[("CHANNEL", "")],
    );
    assert!(output.status.success(), "{output:?}");
    let notes = std::fs::read_to_string(dir.path().join("release-notes.md")).unwrap();
    for host in ["my-wsl", "my-wsl-arm"] {
        assert!(
            notes.contains(&format!(
                "\n    wsl-tarball verify {host}.wsl --manifest {host}.manifest.json --sbom {host}.cdx.json\n"
            )),
            "{notes}"
        );
    }
    assert!(!notes.contains("install-channel.ps1"), "{notes}");
}

/// A `nix` for the publish step: `nix run INSTALLABLE -- ARGS` records where
/// it ran, what and with which arguments (and the key file's mode and
/// bytes) in LOG, and makes the --out directory; `nix key …` is the real Nix.
fn publish_shim(dir: &Path, log: &Path) -> PathBuf {
    let shim = dir.join("shim");
    std::fs::create_dir_all(&shim).unwrap();
    std::fs::create_dir_all(log).unwrap();
    let real_nix = String::from_utf8(run_ok(Command::new("sh").args(["-c", "command -v nix"])))
        .unwrap()
        .trim()
        .to_owned();
    std::fs::write(
        shim.join("nix"),
        format!(
            r#"#!/bin/sh
if [ "$1" = key ]; then exec {real_nix} "$@"; fi
[ "$1" = run ] && [ "$3" = -- ] || exit 99
pwd > {log}/cwd
printf '%s\n' "$2" > {log}/installable
shift 3
for a; do
  printf '%s\n' "$a" >> {log}/args
  if [ "$prev" = --sign-key ]; then stat -c %a "$a" > {log}/key-mode; cp "$a" {log}/key; fi
  if [ "$prev" = --out ]; then mkdir "$a"; fi
  prev=$a
done
"#,
            log = log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        shim.join("nix"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    shim
}

#[test]
fn the_publish_step_passes_the_previous_manifest_and_a_private_key_it_removes() {
    let scratch = tempfile::tempdir().unwrap();
    let (secret, public) = nix_key_pair(scratch.path(), "team-1");
    let secret_text = std::fs::read_to_string(&secret).unwrap();
    let public_text = std::fs::read_to_string(&public).unwrap();

    let run = |case: &str, previous: bool, names: bool, key: &str| -> (Output, PublishRun) {
        let workspace = scratch.path().join(case);
        for host in ["my-wsl", "my-wsl-arm"] {
            std::fs::create_dir_all(workspace.join("dist").join(host)).unwrap();
            std::fs::write(
                workspace.join("dist").join(host).join("manifest.json"),
                "{}",
            )
            .unwrap();
        }
        std::fs::create_dir(workspace.join("source")).unwrap();
        if previous {
            std::fs::write(workspace.join("previous.json"), "{}").unwrap();
        }
        let log = scratch.path().join(format!("{case}-log"));
        let shim = publish_shim(&scratch.path().join(format!("{case}-shim")), &log);
        let tmp = scratch.path().join(format!("{case}-tmp"));
        std::fs::create_dir(&tmp).unwrap();
        let path = format!("{}:{}", shim.display(), std::env::var("PATH").unwrap());
        let (name, friendly) = if names {
            ("our-nixos-1", "Our NixOS, release 1")
        } else {
            ("", "")
        };
        let output = run_step(
            "release",
            "wsl-tarball publish",
            &workspace,
            &[
                ("PATH", &path),
                ("TMPDIR", tmp.to_str().unwrap()),
                ("NIX_CONFIG", NIX_CONFIG),
                ("HOME", scratch.path().to_str().unwrap()),
                ("CHANNEL", "our-nixos"),
                ("FLAKE", "."),
                ("HOST", "my-wsl"),
                ("NAME", name),
                ("FRIENDLY_NAME", friendly),
                ("BASE_URL", "https://github.com/o/r/releases/download/v1/"),
                (
                    "MANIFEST_URL",
                    "https://o.github.io/r/DistributionInfo.json",
                ),
                ("SIGNING_KEY", key),
            ],
        );
        assert!(dir_names(&tmp).is_empty(), "{case}: {:?}", dir_names(&tmp));
        (output, PublishRun { workspace, log })
    };
    let args = |at: &PublishRun| -> Vec<String> {
        std::fs::read_to_string(at.log.join("args"))
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    };

    // The first release: no previous manifest, no names, no key.
    let (output, first) = run("first", false, false, "");
    assert!(output.status.success(), "{output:?}");
    let w = first.workspace.display().to_string();
    assert_eq!(
        args(&first),
        [
            "publish",
            "--flavour",
            "our-nixos",
            "--base-url",
            "https://github.com/o/r/releases/download/v1/",
            "--manifest-url",
            "https://o.github.io/r/DistributionInfo.json",
            "--out",
            &format!("{w}/release"),
            &format!("{w}/dist/my-wsl-arm/manifest.json"),
            &format!("{w}/dist/my-wsl/manifest.json"),
        ]
    );
    // FLAKE is relative to the checkout, as in the build job.
    assert_eq!(
        std::fs::read_to_string(first.log.join("cwd"))
            .unwrap()
            .trim(),
        format!("{w}/source")
    );
    assert_eq!(
        std::fs::read_to_string(first.log.join("installable")).unwrap(),
        ".#nixosConfigurations.my-wsl.config.wsl.tarball.package\n"
    );

    // A later, signed release with names.
    let (output, later) = run("later", true, true, &secret_text);
    assert!(output.status.success(), "{output:?}");
    let w = later.workspace.display().to_string();
    let given = args(&later);
    let key = given[given.iter().position(|a| a == "--sign-key").unwrap() + 1].clone();
    assert_eq!(
        given,
        [
            "publish",
            "--flavour",
            "our-nixos",
            "--base-url",
            "https://github.com/o/r/releases/download/v1/",
            "--manifest-url",
            "https://o.github.io/r/DistributionInfo.json",
            "--out",
            &format!("{w}/release"),
            "--previous",
            &format!("{w}/previous.json"),
            "--name",
            "our-nixos-1",
            "--friendly-name",
            "Our NixOS, release 1",
            "--sign-key",
            &key,
            "--trusted-key",
            &format!("{w}/public.key"),
            &format!("{w}/dist/my-wsl-arm/manifest.json"),
            &format!("{w}/dist/my-wsl/manifest.json"),
        ]
    );
    // The key: a 0600 file with the secret, removed when the step ended
    // (the run checked its TMPDIR is empty), never printed; the public key
    // is the secret's.
    assert_eq!(
        std::fs::read_to_string(later.log.join("key-mode"))
            .unwrap()
            .trim(),
        "600"
    );
    assert_eq!(
        std::fs::read_to_string(later.log.join("key"))
            .unwrap()
            .trim(),
        secret_text.trim()
    );
    assert!(!Path::new(&key).exists());
    assert_eq!(
        std::fs::read_to_string(later.workspace.join("public.key")).unwrap(),
        public_text
    );
    let (_, base64) = secret_text.split_once(':').unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!printed.contains(&base64[..16]), "{printed}");
}

#[test]
fn the_installer_check_fails_a_script_that_registers_another_url() {
    let pages = "https://o.github.io/r/DistributionInfo.json";
    let release = "https://github.com/o/r/releases/download/v1/DistributionInfo.json";
    let check = |registered: &str| -> Output {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("release")).unwrap();
        std::fs::write(
            dir.path().join("release/install-channel.ps1"),
            format!("# {pages}\n$ManifestUrl = '{registered}'\n"),
        )
        .unwrap();
        run_step(
            "release",
            "The installer registers the manifest URL",
            dir.path(),
            &[("MANIFEST_URL", pages)],
        )
    };
    assert!(check(pages).status.success());
    // The Pages URL in a comment is not enough: the line setting it counts.
    let output = check(release);
    assert!(!output.status.success(), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stdout).contains(&format!(
            "does not register the channel's manifest URL {pages}"
        )),
        "{output:?}"
    );
}

/// Where a publish step ran and where its `nix` shim logged.
struct PublishRun {
    workspace: PathBuf,
    log: PathBuf,
}
