//! `inspect`, `verify`, `diff` and `write --manifest` on tarballs of the
//! real fixture closure, and tarballs made wrong on purpose with GNU tar or
//! by editing ours.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;
use wsl_tarball::inspect::{ArchiveWalk, WalkOptions};
use wsl_tarball::store::NarHash;

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn run_tool(args: &[&str]) -> Output {
    run_wsl_tarball(args)
}

/// Extracts our plain tarball, lets `change` edit the tree, and packs it
/// again with GNU tar in name order (no owner override, hard links kept).
fn repack(tarball: &Path, dir: &Path, name: &str, change: impl FnOnce(&Path)) -> PathBuf {
    let root = dir.join(format!("root-{name}"));
    extract(tarball, &root);
    change(&root);
    let output = dir.join(name);
    run_ok(
        Command::new("tar")
            .args(["--format=gnu", "--sort=name", "--numeric-owner", "-c", "-f"])
            .arg(&output)
            .arg("-C")
            .arg(&root)
            .arg("."),
    );
    output
}

fn store_path_named(root: &Path, suffix: &str) -> PathBuf {
    std::fs::read_dir(root.join("nix/store"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(suffix))
        .unwrap_or_else(|| panic!("no store path ending in {suffix}"))
}

fn verify_fails_with(tarball: &Path, expected: &[&str]) {
    let output = run_tool(&["verify", "--bare", tarball.to_str().unwrap()]);
    let report = stdout(&output);
    assert!(!output.status.success(), "verify passed:\n{report}");
    for text in expected {
        assert!(report.contains(text), "no {text:?} in:\n{report}");
    }
}

#[test]
fn nar_hash_recomputed_from_the_archive_equals_nix_for_every_path() {
    let dir = tempfile::tempdir().unwrap();
    let tarball = write_fixture(dir.path(), "plain.tar", &["--compression", "none"]);
    let walk = ArchiveWalk::run(&tarball, &WalkOptions::default()).unwrap();
    let validity = path_info_validity(None, fixture_system());
    assert_eq!(walk.store_objects.len(), validity.len());
    for (path, (nar_hash, nar_size, _)) in &validity {
        let basename = path.rsplit('/').next().unwrap();
        let object = &walk.store_objects[basename];
        let ours = NarHash(object.nar_hash.expect("a NAR hash"));
        assert_eq!(ours, NarHash::parse(nar_hash).unwrap(), "{path}");
        assert_eq!(object.nar_size, *nar_size, "{path}");
        let dump = run_ok(nix_command("nix-store").args(["--dump", path]));
        assert_eq!(dump.len() as u64, *nar_size, "{path}");
        let nar_file = dir.path().join("dump.nar");
        std::fs::write(&nar_file, &dump).unwrap();
        let dumped_hash = run_text(Command::new("sha256sum").arg(&nar_file));
        assert_eq!(&dumped_hash[..64], ours.to_hex(), "{path}");
    }
}

#[test]
fn verify_passes_on_our_outputs_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    for (name, extra) in [
        ("gzip.wsl", &[][..]),
        ("xz.wsl", &["--compression", "xz"][..]),
        ("zstd.wsl", &["--compression", "zstd"][..]),
        ("plain.tar", &["--compression", "none"][..]),
        ("registration.wsl", &["--nix-db", "registration"][..]),
    ] {
        let tarball = write_fixture(dir.path(), name, extra);
        let output = run_tool(&["verify", "--bare", tarball.to_str().unwrap()]);
        let report = stdout(&output);
        assert!(output.status.success(), "{name}:\n{report}");
        assert!(
            report.contains("verified: 7 checks passed, 2 skipped"),
            "{name}:\n{report}"
        );
        assert!(report.contains("skip  WSL skeleton"), "{report}");
        assert!(report.contains("skip  WSL distribution format"), "{report}");
        assert!(report.contains("5 NAR hashes match"), "{report}");
    }
}

#[test]
fn verify_passes_with_the_nixos_skeleton() {
    let dir = tempfile::tempdir().unwrap();
    let tarball = dir.path().join("fake.wsl");
    let flake = format!("path:{}", repo_root().join("tests/nix").display());
    run_ok(
        wsl_tarball()
            .env("NIX_CONFIG", NIX_CONFIG)
            .args(["build", "fake", "--flake", &flake, "--quiet", "-o"])
            .arg(&tarball),
    );
    assert_verifies(&tarball, Rootfs::Skeleton);
    let output = run_tool(&["verify", "--json", tarball.to_str().unwrap()]);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(output.status.success(), "{report:#}");
    for check in report["checks"].as_array().unwrap() {
        assert_eq!(check["status"], "passed", "{check:#}");
    }
    let inspection: serde_json::Value = serde_json::from_slice(&run_ok(
        wsl_tarball().args(["inspect", "--json"]).arg(&tarball),
    ))
    .unwrap();
    for file in inspection["skeleton"].as_array().unwrap() {
        assert_eq!(file["present"], true, "{file}");
    }
    assert_eq!(inspection["skeleton"][0]["resolvesTo"], "file");
}

#[test]
fn verify_names_a_flipped_byte_in_a_store_file() {
    let dir = tempfile::tempdir().unwrap();
    let tarball = write_fixture(dir.path(), "plain.tar", &["--compression", "none"]);
    let mut bytes = std::fs::read(&tarball).unwrap();
    let at = bytes
        .windows(9)
        .position(|w| w == b"I live at")
        .expect("self-ref's file");
    bytes[at] ^= 1;
    let flipped = dir.path().join("flipped.tar");
    std::fs::write(&flipped, bytes).unwrap();
    verify_fails_with(
        &flipped,
        &[
            "FAIL  every store path's NAR hash",
            "-self-ref: NAR hash recomputed from the archive is",
        ],
    );
}

#[test]
fn verify_names_a_missing_store_path_and_the_references_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let tarball = write_fixture(dir.path(), "plain.tar", &["--compression", "none"]);
    let missing = repack(&tarball, dir.path(), "missing.tar", |root| {
        let note = store_path_named(root, "-note.txt");
        std::fs::remove_file(note).unwrap();
    });
    verify_fails_with(
        &missing,
        &[
            "-note.txt is registered in the Nix database but missing from the tarball",
            "-weird-names references /nix/store/",
        ],
    );
}

#[test]
fn verify_rejects_hard_links_made_by_gnu_tar() {
    let dir = tempfile::tempdir().unwrap();
    let tarball = write_fixture(dir.path(), "plain.tar", &["--compression", "none"]);
    let linked = repack(&tarball, dir.path(), "hardlink.tar", |root| {
        let share = store_path_named(root, "-weird-names").join("share");
        std::fs::remove_file(share.join("hardlink-b")).unwrap();
        std::fs::hard_link(share.join("hardlink-a"), share.join("hardlink-b")).unwrap();
    });
    verify_fails_with(
        &linked,
        &[
            "FAIL  no hard links",
            "share/hardlink-b is a hard link to /nix/store/",
        ],
    );
}

#[test]
fn verify_rejects_a_wrong_owner_in_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let tarball = write_fixture(dir.path(), "plain.tar", &["--compression", "none"]);
    let owned = repack(&tarball, dir.path(), "owner.tar", |root| {
        let file = store_path_named(root, "-self-ref").join("where");
        std::os::unix::fs::lchown(file, Some(1000), Some(100)).unwrap();
    });
    verify_fails_with(
        &owned,
        &[
            "FAIL  owners and modes",
            "-self-ref/where: owner 1000:100, expected 0:0",
        ],
    );
}

#[test]
fn diff_names_the_store_path_and_the_content_offset() {
    let dir = tempfile::tempdir().unwrap();
    let tarball = write_fixture(dir.path(), "a.tar", &["--compression", "none"]);
    let mut bytes = std::fs::read(&tarball).unwrap();
    let at = bytes.windows(9).position(|w| w == b"I live at").unwrap();
    bytes[at + 2] = b'L';
    let changed = dir.path().join("b.tar");
    std::fs::write(&changed, bytes).unwrap();
    let output = run_tool(&[
        "diff",
        "--json",
        tarball.to_str().unwrap(),
        changed.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["added"], serde_json::json!([]));
    assert_eq!(report["removed"], serde_json::json!([]));
    let changed_paths = report["changed"].as_array().unwrap();
    assert_eq!(changed_paths.len(), 1);
    assert!(changed_paths[0]["path"]
        .as_str()
        .unwrap()
        .ends_with("-self-ref"));
    let first = &report["firstDifference"];
    assert_eq!(first["field"], "content");
    assert!(
        first["member"]
            .as_str()
            .unwrap()
            .ends_with("-self-ref/where"),
        "{first}"
    );
    assert!(first["storePath"].as_str().unwrap().ends_with("-self-ref"));
    assert!(
        first["detail"]
            .as_str()
            .unwrap()
            .starts_with("first differing byte at offset 2 "),
        "{first}"
    );

    let same = run_tool(&["diff", tarball.to_str().unwrap(), tarball.to_str().unwrap()]);
    assert!(same.status.success());
    assert!(stdout(&same).ends_with("identical\n"));
}

#[test]
fn diff_names_a_header_field_and_added_and_removed_paths() {
    let dir = tempfile::tempdir().unwrap();
    let tarball = write_fixture(dir.path(), "a.tar", &["--compression", "none"]);
    let chmodded = repack(&tarball, dir.path(), "mode.tar", |root| {
        use std::os::unix::fs::PermissionsExt;
        let file = store_path_named(root, "-self-ref").join("where");
        std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o555)).unwrap();
    });
    let report = stdout(&run_tool(&[
        "diff",
        tarball.to_str().unwrap(),
        chmodded.to_str().unwrap(),
    ]));
    assert!(
        report.contains("store paths: 0 added, 0 removed, 1 changed"),
        "{report}"
    );
    assert!(report.contains("-self-ref/where (tar offset"), "{report}");
    assert!(
        report.contains("mode: mode 0444 in A, 0555 in B"),
        "{report}"
    );

    // A different closure: the salted fixture has other store paths.
    let other_system = build_fixture("other");
    let closure = write_path_info(&other_system, dir.path());
    let other = dir.path().join("other.tar");
    run_ok(wsl_tarball().args([
        "write",
        "--no-skeleton",
        "--closure",
        closure.to_str().unwrap(),
        "--system",
        &other_system,
        "--compression",
        "none",
        "-q",
        "-o",
        other.to_str().unwrap(),
    ]));
    assert_verifies(&other, Rootfs::Bare);
    let output = run_tool(&[
        "diff",
        "--json",
        tarball.to_str().unwrap(),
        other.to_str().unwrap(),
    ]);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let added: Vec<&str> = report["added"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(added.contains(&other_system.as_str()), "{report:#}");
    let removed: Vec<&str> = report["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(removed.contains(&fixture_system()), "{report:#}");
}

#[test]
fn inspect_json_describes_the_fixture_field_by_field() {
    let dir = tempfile::tempdir().unwrap();
    let tarball = write_fixture(dir.path(), "nixos.wsl", &[]);
    let output = run_ok(
        wsl_tarball()
            .args(["inspect", "--json", "--top", "2"])
            .arg(&tarball),
    );
    let json: serde_json::Value = serde_json::from_slice(&output).unwrap();
    let validity = path_info_validity(None, fixture_system());
    let bytes = std::fs::read(&tarball).unwrap();
    let sha256 = run_text(Command::new("sha256sum").arg(&tarball));

    // Counts from GNU tar's own listing.
    let plain = run_ok(Command::new("gzip").arg("-dc").arg(&tarball));
    let listing_file = dir.path().join("plain.tar");
    std::fs::write(&listing_file, &plain).unwrap();
    let listing = run_text(Command::new("tar").args(["-tvf"]).arg(&listing_file));
    let count = |kind: char| listing.lines().filter(|l| l.starts_with(kind)).count() as u64;

    assert_eq!(json["file"], tarball.to_str().unwrap());
    assert_eq!(json["compression"], "gzip");
    assert_eq!(json["tarFormat"], "gnu");
    assert_eq!(json["fileSize"], bytes.len() as u64);
    assert_eq!(json["fileSha256"], &sha256[..64]);
    assert_eq!(json["tarSize"], plain.len() as u64);
    assert_eq!(json["members"]["entries"], listing.lines().count() as u64);
    assert_eq!(json["members"]["directories"], count('d'));
    assert_eq!(json["members"]["files"], count('-'));
    assert_eq!(json["members"]["symlinks"], count('l'));
    assert_eq!(json["members"]["hardLinks"], 0);
    assert_eq!(json["members"]["other"], 0);
    assert_eq!(json["storePaths"], validity.len() as u64);
    let total: u64 = validity.values().map(|(_, size, _)| size).sum();
    assert_eq!(json["storeNarBytes"], total);
    assert_eq!(json["system"], fixture_system());
    assert_eq!(json["nixDatabase"], "sqlite");
    assert_eq!(json["securityChecks"], "unknown");
    let mut by_size: Vec<(&String, u64)> = validity.iter().map(|(p, (_, s, _))| (p, *s)).collect();
    by_size.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let top = json["topStorePaths"].as_array().unwrap();
    assert_eq!(top.len(), 2);
    for (entry, (path, size)) in top.iter().zip(&by_size) {
        assert_eq!(entry["path"], path.as_str());
        assert_eq!(entry["narSize"], *size);
    }
    // Written without a skeleton: none of its files.
    for file in json["skeleton"].as_array().unwrap() {
        assert_eq!(file["present"], false, "{file}");
    }
}

#[test]
fn manifest_records_the_tarball_and_every_store_path() {
    let dir = tempfile::tempdir().unwrap();
    let manifest_path = dir.path().join("nixos.manifest.json");
    let tarball = write_fixture(
        dir.path(),
        "nixos.wsl",
        &[
            "--manifest",
            manifest_path.to_str().unwrap(),
            "--compression",
            "xz",
        ],
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    let sha256 = run_text(Command::new("sha256sum").arg(&tarball));
    assert_eq!(manifest["tarball"]["sha256"], &sha256[..64]);
    assert_eq!(
        manifest["tarball"]["size"],
        std::fs::metadata(&tarball).unwrap().len()
    );
    assert_eq!(manifest["tarball"]["file"], "nixos.wsl");
    assert_eq!(manifest["tool"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(manifest["settings"]["compression"], "xz");
    assert_eq!(manifest["settings"]["level"], 6);
    assert_eq!(manifest["settings"]["mtime"], 1);
    assert_eq!(manifest["system"], fixture_system());
    // The security scan ran while the tarball was written, and passed.
    assert_eq!(manifest["securityChecks"]["status"], "passed");
    assert!(manifest["securityChecks"]["report"].is_object());
    let validity = path_info_validity(None, fixture_system());
    let listed = manifest["storePaths"].as_array().unwrap();
    assert_eq!(listed.len(), validity.len());
    for entry in listed {
        let (nar_hash, nar_size, references) = &validity[entry["path"].as_str().unwrap()];
        assert_eq!(entry["narHash"], nar_hash.as_str());
        assert_eq!(entry["narSize"], *nar_size);
        assert_eq!(&entry["references"], &serde_json::json!(references));
    }
    // inspect reads the outcome from it, after checking it is this tarball's.
    let inspected = run_text(
        wsl_tarball()
            .arg("inspect")
            .arg(&tarball)
            .arg("--manifest")
            .arg(&manifest_path),
    );
    assert!(inspected.contains("security     passed"), "{inspected}");
    let without = run_text(wsl_tarball().arg("inspect").arg(&tarball));
    assert!(without.contains("security     unknown"), "{without}");

    // With the checks skipped, the manifest says so.
    let skipped_manifest = dir.path().join("skipped.json");
    run_ok(
        wsl_tarball()
            .env("WSL_TARBALL_SKIP_CHECKS", "1")
            .args(["write", "--quiet", "--no-skeleton", "--closure"])
            .arg(write_path_info(fixture_system(), dir.path()))
            .args(["--system", fixture_system(), "-o"])
            .arg(dir.path().join("skipped.wsl"))
            .arg("--manifest")
            .arg(&skipped_manifest),
    );
    assert_verifies(&dir.path().join("skipped.wsl"), Rootfs::Bare);
    let skipped: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&skipped_manifest).unwrap()).unwrap();
    assert_eq!(skipped["securityChecks"]["status"], "skipped");
    assert!(
        inspected.contains(&format!("sha256       {}", &sha256[..64])),
        "{inspected}"
    );
}

#[test]
fn write_prints_nothing_on_stdout_and_nothing_at_all_when_quiet() {
    let dir = tempfile::tempdir().unwrap();
    let system = fixture_system();
    let closure = write_path_info(system, dir.path());
    let output_file = dir.path().join("nixos.wsl");
    let args = |quiet: bool| {
        let mut args = vec![
            "write".to_owned(),
            "--no-skeleton".to_owned(),
            "--closure".to_owned(),
            closure.display().to_string(),
            "--system".to_owned(),
            system.to_owned(),
            "-o".to_owned(),
            output_file.display().to_string(),
        ];
        if quiet {
            args.push("--quiet".to_owned());
        }
        args
    };
    let loud = wsl_tarball().args(args(false)).output().unwrap();
    assert!(loud.status.success());
    assert_verifies(&output_file, Rootfs::Bare);
    assert!(loud.stdout.is_empty());
    assert!(String::from_utf8_lossy(&loud.stderr).contains("wrote "));
    let quiet = wsl_tarball().args(args(true)).output().unwrap();
    assert!(quiet.status.success());
    assert_verifies(&output_file, Rootfs::Bare);
    assert!(
        quiet.stdout.is_empty() && quiet.stderr.is_empty(),
        "{quiet:?}"
    );
}

/// A GNU tar file DIR/NAME of [`hostile_tree`] with
/// [`hostile_nix_database`]; the tarball.
fn hostile_tarball(dir: &Path, name: &str) -> PathBuf {
    let root = dir.join("hostile-root");
    hostile_tree(&root);
    hostile_nix_database(&root);
    let tarball = dir.join(name);
    gnu_tar_file(&root, &tarball);
    tarball
}

#[test]
fn inspect_and_verify_print_hostile_names_escaped_and_json_keeps_them_exact() {
    let dir = tempfile::tempdir().unwrap();
    // The file's own name came from the colleague too.
    let tarball = hostile_tarball(dir.path(), &format!("{HOSTILE}.tar"));
    let path = tarball.to_str().unwrap();

    let inspected = run_tool(&["inspect", path]);
    assert_eq!(inspected.status.code(), Some(0));
    let text = assert_terminal_safe("inspect", &inspected);
    assert!(
        text.contains(&format!(
            "system       {}",
            hostile_store_path().replace(HOSTILE, HOSTILE_ESCAPED)
        )) && text.contains(&format!("{HOSTILE_ESCAPED}.tar")),
        "{text}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&run_ok(wsl_tarball().args(["inspect", "--json", path]))).unwrap();
    assert_eq!(json["system"], hostile_store_path().as_str());
    assert_eq!(
        json["topStorePaths"][0]["path"],
        hostile_store_path().as_str()
    );
    assert_eq!(json["file"], path);

    // A manifest's fields are shown escaped too, and in its error.
    let manifest = dir.path().join("manifest.json");
    let sha256 = json["fileSha256"].as_str().unwrap();
    for (recorded, status) in [(sha256, HOSTILE), (HOSTILE, "passed")] {
        let content = serde_json::json!({
            "tarball": { "sha256": recorded },
            "securityChecks": { "status": status },
        });
        std::fs::write(&manifest, content.to_string()).unwrap();
        let output = run_tool(&["inspect", "--manifest", manifest.to_str().unwrap(), path]);
        let text = assert_terminal_safe("inspect --manifest", &output);
        assert!(text.contains(HOSTILE_ESCAPED), "{text}");
    }

    for args in [vec!["verify"], vec!["verify", "--bare"]] {
        let output = run_tool(&[&args[..], &[path]].concat());
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let text = assert_terminal_safe("verify", &output);
        assert!(text.contains(HOSTILE_ESCAPED), "{text}");
    }
    let verified = run_tool(&["verify", "--json", path]);
    assert_eq!(verified.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&verified.stdout).unwrap();
    assert!(
        json["checks"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|c| c["failures"].as_array().unwrap())
            .any(|f| f.as_str().unwrap().contains(&hostile_store_path())),
        "{json}"
    );
}
