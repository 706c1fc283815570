//! `publish`: a team channel's release directory from real images of a
//! NixOS-shaped test system (tests/fixtures/channel-system.nix) built with
//! real Nix, for x86_64 and for aarch64 (a crafted aarch64 ELF header as
//! /bin/sh), checked with a port of Microsoft's validator
//! (tests/validate_distribution_info.py); each refusal names the entry,
//! exits non-zero and creates nothing.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

/// The channel test system of VERSION for ARCH (`x86_64`, `aarch64`).
fn channel_system(version: &str, arch: &str) -> String {
    let file = repo_root().join("tests/fixtures/channel-system.nix");
    run_text(
        nix_command("nix-build")
            .arg("--no-out-link")
            .arg(&file)
            .args(["--argstr", "version", version, "--argstr", "arch", arch]),
    )
    .trim()
    .to_owned()
}

fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Writes the system of VERSION for ARCH into DIR/VERSION-ARCH/ as
/// nixos.wsl (or `output`), its manifest nixos.wsl.json and its SBOM
/// nixos-ARCH.cdx.json; returns the manifest.
fn image(dir: &Path, version: &str, arch: &str, output: &str, extra: &[&str]) -> PathBuf {
    let system = channel_system(version, arch);
    let dir = dir.join(format!("{version}-{arch}"));
    std::fs::create_dir_all(&dir).unwrap();
    let closure = write_path_info(&system, &dir);
    let manifest = dir.join("nixos.wsl.json");
    let sbom = dir.join(format!("nixos-{arch}.cdx.json"));
    let tarball = dir.join(output);
    let args = [
        &[
            "write",
            "--quiet",
            "--nixos",
            "--closure",
            arg(&closure),
            "--system",
            &system,
            "-o",
            arg(&tarball),
            "--manifest",
            arg(&manifest),
            "--sbom",
            arg(&sbom),
        ],
        extra,
    ]
    .concat();
    let result = run_wsl_tarball(&args);
    assert!(
        result.status.success(),
        "write failed:\n{}",
        String::from_utf8_lossy(&result.stderr)
    );
    manifest
}

fn publish(args: &[&str]) -> Output {
    run_wsl_tarball(&[&["publish"], args].concat())
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A file URL of a directory.
fn file_url(dir: &Path) -> String {
    format!("file://{}/", dir.display())
}

/// The refusal's message, after checking the exit status and that `out`
/// was not created (nor any hidden staging directory beside it).
fn refused(output: &Output, out: &Path) -> String {
    let text = stderr(output);
    assert!(!output.status.success(), "publish succeeded: {text}");
    assert!(!out.exists(), "{} was created: {text}", out.display());
    let parent = out.parent().unwrap();
    let leftovers: Vec<String> = dir_names(parent)
        .into_iter()
        .filter(|name| name.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    text
}

fn validate(manifest: &Path) -> String {
    let output = Command::new("python3")
        .arg(repo_root().join("tests/validate_distribution_info.py"))
        .arg(manifest)
        .output()
        .expect("python3");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{text}");
    text
}

/// JSON as Python's `json.dumps(indent=4)` and a newline writes it (for
/// ASCII text).
fn info_to_python_json(value: &serde_json::Value) -> String {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    serde::Serialize::serialize(value, &mut serializer).unwrap();
    String::from_utf8(out).unwrap() + "\n"
}

fn flip_byte(file: &Path, offset: usize) {
    let mut bytes = std::fs::read(file).unwrap();
    bytes[offset] ^= 0x20;
    std::fs::write(file, bytes).unwrap();
}

#[test]
fn two_versions_for_two_architectures_pass_microsofts_manifest_rules() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let (secret, public) = nix_key_pair(dir, "team-1");
    let manifests = |version: &str| {
        ["x86_64", "aarch64"].map(|arch| {
            image(
                dir,
                version,
                arch,
                "nixos.wsl",
                &["--sign-key", arg(&secret)],
            )
        })
    };
    let first = manifests("24.05.1");
    let r1 = dir.join("r1");
    let output = publish(&[
        "--flavour",
        "team",
        "--base-url",
        &file_url(&r1),
        "--out",
        arg(&r1),
        "--trusted-key",
        arg(&public),
        arg(&first[0]),
        arg(&first[1]),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));

    let second = manifests("24.05.2");
    let r2 = dir.join("r2");
    std::fs::create_dir(&r2).unwrap(); // an empty DIR is taken
    let previous = r1.join("DistributionInfo.json");
    let output = publish(&[
        "--flavour",
        "team",
        "--base-url",
        &file_url(&r2),
        "--out",
        arg(&r2),
        "--previous",
        arg(&previous),
        "--sign-key",
        arg(&secret),
        "--trusted-key",
        arg(&public),
        arg(&second[1]),
        arg(&second[0]),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("1 earlier version kept for rollback"),
        "{}",
        stderr(&output)
    );

    // Microsoft's manifest rules: both versions, both architectures, the
    // images' hashes and ELF machines, one Default, the new one first.
    let manifest = r2.join("DistributionInfo.json");
    assert_eq!(
        validate(&manifest),
        "team: team-24.05.2 default Amd64Url Arm64Url\nteam: team-24.05.1 Amd64Url Arm64Url\n"
    );
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    // The port can fail: the architectures' URLs swapped (reformatted as
    // Python writes it) break its ELF rule, and nothing else.
    let mut swapped = info.clone();
    let entry = &mut swapped["ModernDistributions"]["team"][0];
    let amd64 = entry["Amd64Url"].take();
    entry["Amd64Url"] = entry["Arm64Url"].take();
    entry["Arm64Url"] = amd64;
    let swapped_file = dir.join("swapped.json");
    std::fs::write(&swapped_file, info_to_python_json(&swapped)).unwrap();
    let output = Command::new("python3")
        .arg(repo_root().join("tests/validate_distribution_info.py"))
        .arg(&swapped_file)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert_eq!(text.lines().count(), 4, "{text}");
    assert!(
        text.contains("/bin/sh in")
            && text.contains("is not an ELF for Amd64Url (e_machine 183, expected 62)"),
        "{text}"
    );
    let new = &info["ModernDistributions"]["team"][0];
    assert_eq!(new["FriendlyName"], "team 24.05.2");
    assert_eq!(
        new["Arm64Url"]["Url"],
        format!("{}team-24.05.2.aarch64.wsl", file_url(&r2))
    );
    assert!(new["Amd64Url"]["Sha256"]
        .as_str()
        .unwrap()
        .starts_with("0x"));

    assert_eq!(
        dir_names(&r2),
        [
            "DistributionInfo.json",
            "DistributionInfo.json.sig",
            "SHA256SUMS",
            "install-channel.ps1",
            "nixos-aarch64.cdx.json",
            "nixos-x86_64.cdx.json",
            "team-24.05.2.aarch64.manifest.json",
            "team-24.05.2.aarch64.wsl",
            "team-24.05.2.x86_64.manifest.json",
            "team-24.05.2.x86_64.wsl",
        ]
    );
    // SHA256SUMS: every other file, sorted, as sha256sum checks them.
    let sums = std::fs::read_to_string(r2.join("SHA256SUMS")).unwrap();
    assert_eq!(sums.lines().count(), 9, "{sums}");
    run_ok(
        Command::new("sha256sum")
            .arg("-c")
            .arg("SHA256SUMS")
            .current_dir(&r2),
    );
    // The script registers the manifest's URL.
    let script = std::fs::read_to_string(r2.join("install-channel.ps1")).unwrap();
    assert!(
        script.contains(&format!(
            "\n$ManifestUrl = '{}DistributionInfo.json'\n",
            file_url(&r2)
        )),
        "{script}"
    );

    // The channel, its images, their manifests and SBOMs verify with the key.
    let verify = run_wsl_tarball(&["verify", "--trusted-key", arg(&public), arg(&manifest)]);
    let text = String::from_utf8_lossy(&verify.stdout).into_owned();
    assert!(verify.status.success(), "{text}");
    // Version 1's images are in r1, where its URLs lead.
    assert!(
        text.contains("ok    images (2 beside it hashed, 2 not here)"),
        "{text}"
    );
    assert!(text.contains("ok    signature (by team-1)"), "{text}");
    let verify = run_wsl_tarball(&[
        "verify",
        "--json",
        "--trusted-key",
        arg(&public),
        arg(&manifest),
    ]);
    let json: serde_json::Value = serde_json::from_slice(&verify.stdout).unwrap();
    assert_eq!(json["version"], 1);
    assert_eq!(json["kind"], "channel");
    let statuses: Vec<(&str, &str)> = json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["check"].as_str().unwrap(), c["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        statuses,
        [
            ("rules", "passed"),
            ("images", "passed"),
            ("signature", "passed")
        ]
    );
    for arch in ["x86_64", "aarch64"] {
        let verify = run_wsl_tarball(&[
            "verify",
            "--trusted-key",
            arg(&public),
            "--manifest",
            arg(&r2.join(format!("team-24.05.2.{arch}.manifest.json"))),
            arg(&r2.join(format!("team-24.05.2.{arch}.wsl"))),
        ]);
        assert!(
            verify.status.success(),
            "{}",
            String::from_utf8_lossy(&verify.stdout)
        );
    }

    // Byte-reproducible: the same inputs, the same DistributionInfo.json.
    let r3 = dir.join("r3");
    let output = publish(&[
        "--flavour",
        "team",
        "--base-url",
        &file_url(&r2),
        "--out",
        arg(&r3),
        "--previous",
        arg(&previous),
        "--sign-key",
        arg(&secret),
        arg(&second[0]),
        arg(&second[1]),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    for file in [
        "DistributionInfo.json",
        "DistributionInfo.json.sig",
        "SHA256SUMS",
    ] {
        assert_eq!(
            std::fs::read(r2.join(file)).unwrap(),
            std::fs::read(r3.join(file)).unwrap(),
            "{file}"
        );
    }
    // The input images were only read (hard links at most).
    let input = second[0].with_file_name("nixos.wsl");
    assert_eq!(
        std::fs::read(&input).unwrap(),
        std::fs::read(r2.join("team-24.05.2.x86_64.wsl")).unwrap()
    );
}

#[test]
fn a_flipped_byte_in_a_published_image_manifest_sbom_or_channel_fails_verify() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let (secret, public) = nix_key_pair(dir, "team-1");
    let manifest = image(dir, "24.05.1", "x86_64", "nixos.wsl", &[]);
    let release = dir.join("release");
    let output = publish(&[
        "--flavour",
        "team",
        "--base-url",
        "https://example.com/team/",
        "--out",
        arg(&release),
        "--sign-key",
        arg(&secret),
        arg(&manifest),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let verify_image = || {
        run_wsl_tarball(&[
            "verify",
            "--trusted-key",
            arg(&public),
            "--manifest",
            arg(&release.join("team-24.05.1.x86_64.manifest.json")),
            arg(&release.join("team-24.05.1.x86_64.wsl")),
        ])
    };
    let verify_channel = || {
        run_wsl_tarball(&[
            "verify",
            "--trusted-key",
            arg(&public),
            arg(&release.join("DistributionInfo.json")),
        ])
    };
    let out = |o: &Output| String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(verify_image().status.success(), "{}", out(&verify_image()));
    assert!(
        verify_channel().status.success(),
        "{}",
        out(&verify_channel())
    );

    // The SBOM: the signed manifest records its sha256.
    let sbom = release.join("nixos-x86_64.cdx.json");
    let original = std::fs::read(&sbom).unwrap();
    flip_byte(&sbom, 100);
    let result = verify_image();
    assert_eq!(result.status.code(), Some(1), "{}", out(&result));
    assert!(
        out(&result).contains(&format!("the SBOM {}: its sha256 is", sbom.display())),
        "{}",
        out(&result)
    );
    std::fs::write(&sbom, &original).unwrap();

    // The manifest: its signature no longer matches.
    let manifest_copy = release.join("team-24.05.1.x86_64.manifest.json");
    let original = std::fs::read(&manifest_copy).unwrap();
    let text = String::from_utf8(original.clone()).unwrap();
    flip_byte(&manifest_copy, text.find("nixos-system-team").unwrap());
    let result = verify_image();
    assert_eq!(result.status.code(), Some(1), "{}", out(&result));
    assert!(out(&result).contains("FAIL  signature"), "{}", out(&result));
    std::fs::write(&manifest_copy, &original).unwrap();

    // The channel manifest: its detached signature.
    let channel = release.join("DistributionInfo.json");
    let original = std::fs::read(&channel).unwrap();
    let text = String::from_utf8(original.clone()).unwrap();
    flip_byte(&channel, text.find("team 24.05.1").unwrap());
    let result = verify_channel();
    assert_eq!(result.status.code(), Some(1), "{}", out(&result));
    assert!(out(&result).contains("FAIL  signature"), "{}", out(&result));
    std::fs::write(&channel, &original).unwrap();
    std::fs::remove_file(release.join("DistributionInfo.json.sig")).unwrap();
    let result = verify_channel();
    assert_eq!(result.status.code(), Some(1), "{}", out(&result));
    assert!(
        out(&result).contains("it is not signed"),
        "{}",
        out(&result)
    );

    // The image (the gzip header's modification time: the same tar
    // inside, another file): its manifest's sha256 and the channel's.
    let wsl = release.join("team-24.05.1.x86_64.wsl");
    flip_byte(&wsl, 5);
    let result = verify_image();
    assert_eq!(result.status.code(), Some(1), "{}", out(&result));
    assert!(
        out(&result).contains("the file's sha256 is"),
        "{}",
        out(&result)
    );
    let result = verify_channel();
    assert!(
        out(&result).contains("FAIL  images")
            && out(&result).contains("team-24.05.1/Amd64Url: team-24.05.1.x86_64.wsl's sha256 is"),
        "{}",
        out(&result)
    );
}

/// One image of version 24.05.1 for x86_64, written as `output` with
/// `extra`; returns (the scratch directory, its manifest, where DIR goes).
fn one_image(output: &str, extra: &[&str]) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let manifest = image(dir.path(), "24.05.1", "x86_64", output, extra);
    let out = dir.path().join("release");
    (dir, manifest, out)
}

fn publish_one(manifest: &Path, out: &Path, extra: &[&str]) -> Output {
    let args = [
        &[
            "--flavour",
            "team",
            "--base-url",
            "https://example.com/team/",
            "--out",
            arg(out),
        ],
        extra,
        &[arg(manifest)],
    ]
    .concat();
    publish(&args)
}

#[test]
fn two_images_of_one_architecture_are_refused() {
    let (_dir, manifest, out) = one_image("nixos.wsl", &[]);
    let output = publish(&[
        "--flavour",
        "team",
        "--base-url",
        "https://example.com/team/",
        "--out",
        arg(&out),
        arg(&manifest),
        arg(&manifest),
    ]);
    let text = refused(&output, &out);
    let image = manifest.with_file_name("nixos.wsl");
    assert!(
        text.contains(&format!(
            "{} and {} are both x86_64 images",
            image.display(),
            image.display()
        )),
        "{text}"
    );
}

#[test]
fn a_zstd_image_is_refused_naming_it() {
    let (_dir, manifest, out) = one_image("nixos.tar.zst", &["--compression", "zstd"]);
    let text = refused(&publish_one(&manifest, &out, &[]), &out);
    assert!(
        text.contains("nixos.tar.zst is zstd-compressed: WSL installs gzip or xz images only"),
        "{text}"
    );
}

#[test]
fn an_uncompressed_image_is_refused_naming_it() {
    let (_dir, manifest, out) = one_image("nixos.tar", &[]);
    let text = refused(&publish_one(&manifest, &out, &[]), &out);
    assert!(
        text.contains("nixos.tar is not compressed: WSL installs gzip or xz images only"),
        "{text}"
    );
}

#[test]
fn a_name_outside_the_flavour_is_refused_naming_it() {
    let (_dir, manifest, out) = one_image("nixos.wsl", &[]);
    let output = publish_one(&manifest, &out, &["--name", "other-1"]);
    let text = refused(&output, &out);
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert!(
        text.contains("the version name \"other-1\" does not start with the flavour \"team\""),
        "{text}"
    );
}

#[test]
fn two_defaults_in_the_previous_manifest_are_refused_naming_them() {
    let (dir, manifest, out) = one_image("nixos.wsl", &[]);
    let url = |name: &str| serde_json::json!({"Url": format!("https://example.com/{name}.wsl"), "Sha256": format!("0x{}", "ab".repeat(32))});
    let previous = dir.path().join("previous.json");
    let info = serde_json::json!({"ModernDistributions": {"team": [
        {"Name": "team-a", "FriendlyName": "A", "Default": true, "Amd64Url": url("a")},
        {"Name": "team-b", "FriendlyName": "B", "Default": true, "Amd64Url": url("b")},
    ]}});
    std::fs::write(&previous, serde_json::to_string_pretty(&info).unwrap()).unwrap();
    let text = refused(
        &publish_one(&manifest, &out, &["--previous", arg(&previous)]),
        &out,
    );
    assert!(
        text.contains(&format!(
            "previous manifest {}: flavour \"team\": \"team-a\" and \"team-b\" are both Default",
            previous.display()
        )),
        "{text}"
    );

    // Unknown keys in a version, and a version of the same Name.
    let mut info = info;
    info["ModernDistributions"]["team"][1]["Default"] = false.into();
    info["ModernDistributions"]["team"][1]["Url"] = "x".into();
    std::fs::write(&previous, serde_json::to_string(&info).unwrap()).unwrap();
    let text = refused(
        &publish_one(&manifest, &out, &["--previous", arg(&previous)]),
        &out,
    );
    assert!(text.contains("unknown field `Url`"), "{text}");
    info["ModernDistributions"]["team"][1] = serde_json::json!({"Name": "team-24.05.1", "FriendlyName": "B", "Default": false, "Amd64Url": url("b")});
    std::fs::write(&previous, serde_json::to_string(&info).unwrap()).unwrap();
    let text = refused(
        &publish_one(&manifest, &out, &["--previous", arg(&previous)]),
        &out,
    );
    assert!(
        text.contains("it already lists a version \"team-24.05.1\" of \"team\""),
        "{text}"
    );
}

#[test]
fn an_image_that_does_not_match_its_manifest_is_refused_naming_it() {
    let (_dir, manifest, out) = one_image("nixos.wsl", &[]);
    let image = manifest.with_file_name("nixos.wsl");
    let length = std::fs::metadata(&image).unwrap().len() as usize;
    flip_byte(&image, length / 2);
    let text = refused(&publish_one(&manifest, &out, &[]), &out);
    assert!(
        text.contains(&format!(
            "{} is not the image manifest {} describes: its sha256 is",
            image.display(),
            manifest.display()
        )),
        "{text}"
    );
}

#[test]
fn an_unsafe_tarball_file_name_in_a_manifest_is_refused() {
    let (_dir, manifest, out) = one_image("nixos.wsl", &[]);
    let original = std::fs::read_to_string(&manifest).unwrap();
    for name in ["../nixos.wsl", "/etc/passwd", ".."] {
        let changed = original.replace(
            "\"file\": \"nixos.wsl\"",
            &format!("\"file\": {}", serde_json::to_string(name).unwrap()),
        );
        assert_ne!(changed, original);
        std::fs::write(&manifest, changed).unwrap();
        let text = refused(&publish_one(&manifest, &out, &[]), &out);
        assert!(
            text.contains(&format!(
                "manifest {}: tarball.file {:?} is not a plain file name",
                manifest.display(),
                name
            )),
            "{text}"
        );
    }
}

#[test]
fn a_hostile_base_url_is_refused_and_a_quote_is_doubled() {
    let (_dir, manifest, out) = one_image("nixos.wsl", &[]);
    for (url, why) in [
        ("https://example.com/'; Remove-Item C:\\ #/", "white space"),
        ("https://example.com/\"$(evil)\"/", "would need quoting"),
        (
            "http://example.com/",
            "does not start with https:// or file://",
        ),
        ("https://example.com/a\u{2019}b/", "not ASCII"),
    ] {
        let output = publish(&[
            "--flavour",
            "team",
            "--base-url",
            url,
            "--out",
            arg(&out),
            arg(&manifest),
        ]);
        let text = refused(&output, &out);
        assert_eq!(output.status.code(), Some(2), "{text}");
        assert!(text.contains("the base URL"), "{text}");
        assert!(text.contains(why), "{url}: {text}");
    }
    // A quote is legal in a URL: the script's literal doubles it.
    let output = publish(&[
        "--flavour",
        "team",
        "--base-url",
        "https://example.com/team's",
        "--out",
        arg(&out),
        arg(&manifest),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let script = std::fs::read_to_string(out.join("install-channel.ps1")).unwrap();
    assert!(
        script.contains("\n$ManifestUrl = 'https://example.com/team''s/DistributionInfo.json'\n"),
        "{script}"
    );
    // A DIR that is not empty is refused, and left as it was.
    let output = publish_one(&manifest, &out, &[]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("exists and is not an empty directory"));
    assert_eq!(dir_names(&out).len(), 6, "{:?}", dir_names(&out));
}

#[test]
fn the_script_registers_the_given_manifest_url_not_the_base_urls() {
    let (_dir, manifest, out) = one_image("nixos.wsl", &[]);
    let pages = "https://team.github.io/wsl/team/DistributionInfo.json";
    let output = publish_one(&manifest, &out, &["--manifest-url", pages]);
    let text = stderr(&output);
    assert!(output.status.success(), "{text}");
    let script = std::fs::read_to_string(out.join("install-channel.ps1")).unwrap();
    assert!(
        script.contains(&format!("\n$ManifestUrl = '{pages}'\n")),
        "{script}"
    );
    assert!(!script.contains("example.com"), "{script}");
    // The images stay at BASE_URL; the output names both URLs.
    let info = std::fs::read_to_string(out.join("DistributionInfo.json")).unwrap();
    assert!(
        info.contains("\"Url\": \"https://example.com/team/team-24.05.1.x86_64.wsl\""),
        "{info}"
    );
    assert!(!info.contains("github.io"), "{info}");
    assert!(
        text.contains("publish its files at https://example.com/team/;")
            && text.contains(&format!("registers the manifest URL {pages};")),
        "{text}"
    );
    // Without it, the script registers BASE_URL's DistributionInfo.json.
    let default_out = out.with_file_name("default");
    let output = publish_one(&manifest, &default_out, &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let script = std::fs::read_to_string(default_out.join("install-channel.ps1")).unwrap();
    assert!(
        script.contains("\n$ManifestUrl = 'https://example.com/team/DistributionInfo.json'\n"),
        "{script}"
    );
}

#[test]
fn a_hostile_manifest_url_is_refused_naming_it() {
    let (_dir, manifest, out) = one_image("nixos.wsl", &[]);
    for (url, why) in [
        (
            "https://example.com/'; Remove-Item C:\\ #/DistributionInfo.json",
            "white space",
        ),
        (
            "https://example.com/\"$(evil)\"/DistributionInfo.json",
            "would need quoting",
        ),
        (
            "http://example.com/DistributionInfo.json",
            "does not start with https:// or file://",
        ),
        (
            "https://example.com/DistributionInfo.json?x=1",
            "query or fragment",
        ),
        ("https://example.com/a\u{2019}b.json", "not ASCII"),
    ] {
        let output = publish_one(&manifest, &out, &["--manifest-url", url]);
        let text = refused(&output, &out);
        assert_eq!(output.status.code(), Some(2), "{text}");
        // Named, escaped: its own scheme and host are shown.
        let head = url.split_once("example.com").unwrap().0;
        assert!(
            text.contains(&format!("the manifest URL \"{head}example.com/")),
            "{text}"
        );
        assert!(text.contains(why), "{url}: {text}");
    }
}

/// publish copies each SBOM from beside its manifest: a missing one is
/// refused naming the file looked for (and no `verify` flag).
#[test]
fn a_missing_sbom_is_refused_naming_the_file_looked_for() {
    let (dir, manifest, out) = one_image("nixos.wsl", &[]);
    let sbom = dir.path().join("24.05.1-x86_64/nixos-x86_64.cdx.json");
    std::fs::remove_file(&sbom).unwrap();
    let output = publish_one(&manifest, &out, &[]);
    let text = refused(&output, &out);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!(
            "its SBOM (sbom.file \"nixos-x86_64.cdx.json\") is not beside it: {} does not exist",
            sbom.display()
        )),
        "{text}"
    );
    assert!(!text.contains("--sbom"), "{text}");
}
