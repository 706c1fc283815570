//! `write --sbom FILE`: a CycloneDX JSON SBOM of the real fixture closure,
//! checked against the closure as Nix reports it, against Nix's own
//! `builtins.parseDrvName`, against the tarball's bytes, against itself
//! across runs and thread counts, and against the CycloneDX JSON schema
//! (tests/validate_cyclonedx.py, with cyclonedx-python-lib; .ci/run installs
//! it and names its Python in WSL_TARBALL_CYCLONEDX_PYTHON).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use sha2::{Digest, Sha256};
use wsl_tarball::store::NarHash;

/// Writes SYSTEM into DIR/nixos.wsl with its SBOM DIR/sbom.json and
/// `extra` flags; returns (tarball, sbom).
fn write_with_sbom(system: &str, dir: &Path, extra: &[&str]) -> (PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    let closure = write_path_info(system, dir);
    let tarball = dir.join("nixos.wsl");
    let sbom = dir.join("sbom.json");
    let args = [&["--quiet", "--sbom", sbom.to_str().unwrap()], extra].concat();
    let result = run_write(&closure, system, &tarball, &args);
    assert!(
        result.status.success(),
        "write --sbom failed:\n{}",
        String::from_utf8_lossy(&result.stderr)
    );
    (tarball, sbom)
}

fn strings(value: &serde_json::Value) -> Vec<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

/// Nix's own split of each name: `builtins.parseDrvName`.
fn parse_drv_names(names: &[String]) -> Vec<(String, String)> {
    let list: Vec<String> = names
        .iter()
        .map(|name| serde_json::to_string(name).unwrap())
        .collect();
    let expr = format!(
        "map (n: let p = builtins.parseDrvName n; in [p.name p.version]) [{}]",
        list.join(" ")
    );
    let json = run_text(
        nix_command("nix-instantiate").args(["--eval", "--strict", "--json", "-E", &expr]),
    );
    let parsed: Vec<Vec<String>> = serde_json::from_str(&json).unwrap();
    parsed
        .into_iter()
        .map(|pair| (pair[0].clone(), pair[1].clone()))
        .collect()
}

#[test]
fn the_sbom_lists_the_closure_the_graph_and_the_image() {
    let dir = tempfile::tempdir().unwrap();
    // The fixture has a self-reference and odd names, v1 a versioned name.
    let mut splits = check_sbom(fixture_system(), &dir.path().join("fixture"));
    splits.extend(check_sbom(v1(), &dir.path().join("v1")));
    assert!(
        splits.iter().any(|(_, version)| !version.is_empty()),
        "no versioned name: {splits:?}"
    );
}

/// Writes SYSTEM's tarball and SBOM into DIR, three times, and checks the
/// SBOM; returns Nix's split of its store path names.
fn check_sbom(system: &str, dir: &Path) -> Vec<(String, String)> {
    let (tarball, sbom_file) = write_with_sbom(system, &dir.join("a"), &["--threads", "2"]);
    let text = std::fs::read_to_string(&sbom_file).unwrap();
    let sbom: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(sbom["bomFormat"], "CycloneDX");
    assert_eq!(sbom["specVersion"], "1.5");
    let serial = sbom["serialNumber"].as_str().unwrap();
    assert!(serial.starts_with("urn:uuid:"), "{serial}");
    assert!(sbom["metadata"].get("timestamp").is_none());

    // The image: its name and the SHA-256 of its bytes.
    let image = &sbom["metadata"]["component"];
    assert_eq!(image["type"], "file");
    assert_eq!(image["name"], "nixos.wsl");
    let sha256 = wsl_tarball::hex::encode(&Sha256::digest(std::fs::read(&tarball).unwrap()));
    assert_eq!(
        image["hashes"],
        serde_json::json!([{"alg": "SHA-256", "content": sha256}])
    );

    // One component per store path, as Nix knows them.
    let validity = path_info_validity(None, system);
    let components = sbom["components"].as_array().unwrap();
    let refs: Vec<String> = components
        .iter()
        .map(|c| c["bom-ref"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(refs, validity.keys().cloned().collect::<Vec<_>>());
    let names: Vec<String> = refs
        .iter()
        .map(|path| path.rsplit('/').next().unwrap()[33..].to_owned())
        .collect();
    let nix_split = parse_drv_names(&names);
    for ((component, (path, (nar_hash, nar_size, _))), (name, version)) in
        components.iter().zip(&validity).zip(&nix_split)
    {
        assert_eq!(component["name"], name.as_str(), "{component}");
        match version.as_str() {
            "" => assert!(component.get("version").is_none(), "{component}"),
            version => assert_eq!(component["version"], version, "{component}"),
        }
        let nix32 = NarHash::parse(nar_hash).unwrap().to_nix32_string();
        assert_eq!(
            component["properties"],
            serde_json::json!([
                {"name": "nix:store_path", "value": path},
                {"name": "nix:narinfo:nar_hash", "value": nix32},
                {"name": "nix:narinfo:nar_size", "value": nar_size.to_string()},
            ]),
        );
    }

    // The dependencies mirror the references (without self-references);
    // the image depends on the roots.
    let dependencies: BTreeMap<String, Vec<String>> = sbom["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["ref"].as_str().unwrap().to_owned(),
                strings(&d["dependsOn"]),
            )
        })
        .collect();
    let image_ref = image["bom-ref"].as_str().unwrap();
    assert_eq!(dependencies[image_ref], vec![system.to_owned()]);
    assert_eq!(dependencies.len(), validity.len() + 1);
    for (path, (_, _, references)) in &validity {
        let expected: Vec<String> = references.iter().filter(|r| *r != path).cloned().collect();
        assert_eq!(dependencies[path], expected, "{path}");
    }
    assert!(dependencies.values().any(|d| !d.is_empty()));

    // Byte-identical: another run, and one thread instead of two.
    let (_, again) = write_with_sbom(system, &dir.join("b"), &["--threads", "2"]);
    let (_, one_thread) = write_with_sbom(system, &dir.join("c"), &["--threads", "1"]);
    assert_eq!(std::fs::read_to_string(again).unwrap(), text);
    assert_eq!(std::fs::read_to_string(one_thread).unwrap(), text);

    validate(&sbom_file);
    nix_split
}

/// Runs tests/validate_cyclonedx.py; skips loudly when cyclonedx-python-lib
/// is not importable, except in CI (CI=true), where that fails.
fn validate(sbom: &Path) {
    let python =
        std::env::var_os("WSL_TARBALL_CYCLONEDX_PYTHON").unwrap_or_else(|| "python3".into());
    let output = Command::new(&python)
        .arg(repo_root().join("tests/validate_cyclonedx.py"))
        .arg(sbom)
        .output()
        .unwrap_or_else(|error| panic!("cannot run {python:?}: {error}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if output.status.code() == Some(3) {
        let reason = format!("{python:?} has no cyclonedx-python-lib[json-validation] ({}); .ci/run installs it and sets WSL_TARBALL_CYCLONEDX_PYTHON", stderr.trim());
        assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "{reason}");
        eprintln!("*** SKIPPED the_sbom_lists_the_closure_the_graph_and_the_image (schema validation): {reason} ***");
        return;
    }
    assert!(
        output.status.success(),
        "the SBOM is not valid CycloneDX:\n{stdout}{stderr}"
    );
    assert_eq!(stdout.trim(), "valid CycloneDX 1.5");
}

#[test]
fn an_sbom_destination_that_is_a_directory_is_refused_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let system = fixture_system();
    let closure = write_path_info(system, dir.path());
    let tarball = dir.path().join("nixos.wsl");
    let directory = dir.path().join("a-directory");
    std::fs::create_dir(&directory).unwrap();

    // -o naming a directory, for comparison.
    let as_output = run_write(&closure, system, &directory, &["--quiet"]);
    let result = run_write(
        &closure,
        system,
        &tarball,
        &["--quiet", "--sbom", directory.to_str().unwrap()],
    );
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(!result.status.success());
    assert_eq!(result.status.code(), as_output.status.code(), "{stderr}");
    assert!(
        stderr.contains(&format!("{} is a directory", directory.display())),
        "{stderr}"
    );
    assert_eq!(dir_names(dir.path()), vec!["a-directory", "closure.json"]);
    assert_eq!(dir_names(&directory), Vec::<String>::new());

    // The SBOM is one of the outputs: it names neither an input nor another
    // output.
    for (flags, message) in [
        (vec!["--sbom", closure.to_str().unwrap()], "--sbom"),
        (vec!["--sbom", tarball.to_str().unwrap()], "-o"),
    ] {
        let result = run_write(
            &closure,
            system,
            &tarball,
            &[&["--quiet"], &flags[..]].concat(),
        );
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert_eq!(result.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(message), "{stderr}");
        assert_eq!(dir_names(dir.path()), vec!["a-directory", "closure.json"]);
    }
    let manifest = dir.path().join("m.json");
    let result = run_write(
        &closure,
        system,
        &tarball,
        &[
            "--quiet",
            "--manifest",
            manifest.to_str().unwrap(),
            "--sbom",
            dir.path().join("./m.json").to_str().unwrap(),
        ],
    );
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("name the same file"), "{stderr}");
    assert_eq!(dir_names(dir.path()), vec!["a-directory", "closure.json"]);
}

#[test]
fn the_sbom_is_committed_with_the_tarball_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let system = v1();
    let closure = write_path_info(system, dir.path());
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let tarball = out.join("nixos.wsl");
    let sbom = out.join("nixos.cdx.json");
    std::fs::write(&tarball, "old tarball").unwrap();
    std::fs::write(&sbom, "old sbom").unwrap();
    // A private key in --extra-files: an error finding, found while the
    // tarball is written, fails the run after the SBOM's file was made.
    let extra = dir.path().join("extra");
    std::fs::create_dir_all(extra.join("etc")).unwrap();
    run_ok(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(extra.join("etc/key")),
    );
    let sbom_arg = ["--quiet", "--sbom", sbom.to_str().unwrap()];
    let failed = run_write(
        &closure,
        system,
        &tarball,
        &[&sbom_arg[..], &["--extra-files", extra.to_str().unwrap()]].concat(),
    );
    assert_eq!(
        failed.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&failed.stderr)
    );
    assert_eq!(std::fs::read_to_string(&tarball).unwrap(), "old tarball");
    assert_eq!(std::fs::read_to_string(&sbom).unwrap(), "old sbom");
    assert_eq!(dir_names(&out), vec!["nixos.cdx.json", "nixos.wsl"]);

    let written = run_write(&closure, system, &tarball, &sbom_arg);
    assert!(written.status.success(), "{written:?}");
    let value: serde_json::Value = serde_json::from_slice(&std::fs::read(&sbom).unwrap()).unwrap();
    let sha256 = wsl_tarball::hex::encode(&Sha256::digest(std::fs::read(&tarball).unwrap()));
    assert_eq!(
        value["metadata"]["component"]["hashes"][0]["content"],
        sha256
    );
    assert_eq!(dir_names(&out), vec!["nixos.cdx.json", "nixos.wsl"]);
}

#[test]
fn an_update_bundle_has_no_sbom() {
    let dir = tempfile::tempdir().unwrap();
    let run = wsl_tarball()
        .args(["build", "--delta-from", "old.wsl", "--sbom", "s.json"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--manifest, --sbom, --cache"), "{stderr}");
    assert_eq!(dir_names(dir.path()), Vec::<String>::new());
}

/// The manifest records the SBOM (file name and sha256), so its signature
/// covers the SBOM: signed after the fact with `sign`, a changed SBOM
/// fails `verify --trusted-key`, naming it. Without --sbom the manifest has
/// no `sbom` field.
#[test]
fn the_manifest_records_the_sbom_and_verify_checks_it() {
    let dir = tempfile::tempdir().unwrap();
    let system = fixture_system();
    let closure = write_path_info(system, dir.path());
    let tarball = dir.path().join("nixos.wsl");
    let manifest = dir.path().join("nixos.wsl.json");
    let sbom = dir.path().join("nixos.cdx.json");
    let arg = |p: &Path| p.to_str().unwrap().to_owned();
    let result = run_write(
        &closure,
        system,
        &tarball,
        &[
            "--quiet",
            "--manifest",
            &arg(&manifest),
            "--sbom",
            &arg(&sbom),
        ],
    );
    assert!(result.status.success(), "{result:?}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    let digest = run_text(std::process::Command::new("sha256sum").arg(&sbom));
    assert_eq!(json["sbom"]["file"], "nixos.cdx.json");
    assert_eq!(
        json["sbom"]["sha256"].as_str().unwrap(),
        digest.split_whitespace().next().unwrap()
    );

    let (secret, public) = nix_key_pair(dir.path(), "team-1");
    // `sign` checks the SBOM the manifest records before vouching for it.
    let original = std::fs::read(&sbom).unwrap();
    std::fs::write(&sbom, b"{}").unwrap();
    let output = run_wsl_tarball(&[
        "sign",
        &arg(&tarball),
        "--manifest",
        &arg(&manifest),
        "--key",
        &arg(&secret),
    ]);
    let text = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!("the SBOM {} has sha256", sbom.display())),
        "{text}"
    );
    std::fs::write(&sbom, &original).unwrap();
    run_ok(wsl_tarball().args([
        "sign",
        &arg(&tarball),
        "--manifest",
        &arg(&manifest),
        "--key",
        &arg(&secret),
    ]));
    let verify = || {
        run_wsl_tarball(&[
            "verify",
            "--bare",
            &arg(&tarball),
            "--manifest",
            &arg(&manifest),
            "--trusted-key",
            &arg(&public),
        ])
    };
    let output = verify();
    assert!(output.status.success(), "{output:?}");
    let mut bytes = std::fs::read(&sbom).unwrap();
    bytes[40] ^= 1;
    std::fs::write(&sbom, &bytes).unwrap();
    let output = verify();
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!("the SBOM {}: its sha256 is", sbom.display())),
        "{text}"
    );
    std::fs::remove_file(&sbom).unwrap();
    let output = verify();
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!(
            "the SBOM the manifest records (sbom.file \"nixos.cdx.json\") is not beside the manifest: {} does not exist; when it is elsewhere or renamed, --sbom FILE names it",
            sbom.display()
        )),
        "{text}"
    );

    // No SBOM, no field.
    let plain = dir.path().join("plain.wsl.json");
    let result = run_write(
        &closure,
        system,
        &dir.path().join("plain.wsl"),
        &["--quiet", "--manifest", &arg(&plain)],
    );
    assert!(result.status.success(), "{result:?}");
    assert!(!std::fs::read_to_string(&plain)
        .unwrap()
        .contains("\"sbom\""));
}

/// The workflow's release without a channel renames each host's files
/// (HOST.wsl, HOST.manifest.json, HOST.cdx.json): the manifest still
/// records `sbom.cdx.json`, so `verify` and `sign` take the SBOM with
/// `--sbom`, which must be the one the manifest records; without it the
/// failure names the file looked for.
#[test]
fn renamed_release_files_verify_and_sign_with_sbom() {
    let dir = tempfile::tempdir().unwrap();
    let system = fixture_system();
    let closure = write_path_info(system, dir.path());
    let dist = dir.path().join("dist");
    let release = dir.path().join("release");
    std::fs::create_dir(&dist).unwrap();
    std::fs::create_dir(&release).unwrap();
    let arg = |p: &Path| p.to_str().unwrap().to_owned();
    let result = run_write(
        &closure,
        system,
        &dist.join("nixos.wsl"),
        &[
            "--quiet",
            "--manifest",
            &arg(&dist.join("manifest.json")),
            "--sbom",
            &arg(&dist.join("sbom.cdx.json")),
        ],
    );
    assert!(result.status.success(), "{result:?}");
    for (from, to) in [
        ("nixos.wsl", "my-wsl.wsl"),
        ("manifest.json", "my-wsl.manifest.json"),
        ("sbom.cdx.json", "my-wsl.cdx.json"),
    ] {
        std::fs::copy(dist.join(from), release.join(to)).unwrap();
    }
    let tarball = release.join("my-wsl.wsl");
    let manifest = release.join("my-wsl.manifest.json");
    let sbom = release.join("my-wsl.cdx.json");
    let (secret, public) = nix_key_pair(dir.path(), "team-1");
    let (t, m, k) = (arg(&tarball), arg(&manifest), arg(&secret));
    let verify = |extra: &[&str]| {
        run_wsl_tarball(&[&["verify", "--bare", &t, "--manifest", &m][..], extra].concat())
    };
    let sign = |extra: &[&str]| {
        run_wsl_tarball(&[&["sign", &t, "--manifest", &m, "--key", &k][..], extra].concat())
    };
    let stdout =
        |output: &std::process::Output| String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr =
        |output: &std::process::Output| String::from_utf8_lossy(&output.stderr).into_owned();

    // Without --sbom: the recorded name beside the manifest, named.
    let looked_for = release.join("sbom.cdx.json");
    let output = verify(&[]);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    assert!(
        stdout(&output).contains(&format!(
            "{} does not exist; when it is elsewhere or renamed, --sbom FILE names it",
            looked_for.display()
        )),
        "{}",
        stdout(&output)
    );
    let before = std::fs::read(&manifest).unwrap();
    let output = sign(&[]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains(&format!(
            "{} does not exist; nothing was signed; when it is elsewhere or renamed, --sbom FILE names it",
            looked_for.display()
        )),
        "{}",
        stderr(&output)
    );
    assert_eq!(std::fs::read(&manifest).unwrap(), before);

    // With --sbom: the renamed files verify, sign, and verify signed.
    let given = ["--sbom".to_owned(), arg(&sbom)];
    let given: Vec<&str> = given.iter().map(String::as_str).collect();
    let output = verify(&given);
    assert!(output.status.success(), "{}", stdout(&output));
    let output = sign(&given);
    assert!(output.status.success(), "{}", stderr(&output));
    let public = arg(&public);
    let trusted = [&given[..], &["--trusted-key", &public]].concat();
    let output = verify(&trusted);
    assert!(output.status.success(), "{}", stdout(&output));

    // A flipped byte in the given SBOM fails both, naming it.
    let original = std::fs::read(&sbom).unwrap();
    let mut bytes = original.clone();
    bytes[40] ^= 1;
    std::fs::write(&sbom, &bytes).unwrap();
    let output = verify(&trusted);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    assert!(
        stdout(&output).contains(&format!("the SBOM {}: its sha256 is", sbom.display())),
        "{}",
        stdout(&output)
    );
    let output = sign(&given);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains(&format!("the SBOM {} has sha256", sbom.display())),
        "{}",
        stderr(&output)
    );
    std::fs::write(&sbom, &original).unwrap();

    // --sbom needs --manifest.
    let output = run_wsl_tarball(&["verify", "--bare", &arg(&tarball), "--sbom", &arg(&sbom)]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("--manifest"),
        "{}",
        stderr(&output)
    );
    // A manifest that records no SBOM: --sbom is refused.
    let plain = dir.path().join("plain.wsl");
    let plain_manifest = dir.path().join("plain.json");
    let result = run_write(
        &closure,
        system,
        &plain,
        &["--quiet", "--manifest", &arg(&plain_manifest)],
    );
    assert!(result.status.success(), "{result:?}");
    let output = run_wsl_tarball(&[
        "verify",
        "--bare",
        &arg(&plain),
        "--manifest",
        &arg(&plain_manifest),
        "--sbom",
        &arg(&sbom),
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    assert!(
        stdout(&output).contains(&format!(
            "the SBOM {} was given, but the manifest records no SBOM",
            sbom.display()
        )),
        "{}",
        stdout(&output)
    );
    let output = run_wsl_tarball(&[
        "sign",
        &arg(&plain),
        "--manifest",
        &arg(&plain_manifest),
        "--key",
        &arg(&secret),
        "--sbom",
        &arg(&sbom),
    ]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("but the manifest") && stderr(&output).contains("records none"),
        "{}",
        stderr(&output)
    );
}
