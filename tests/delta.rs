//! Delta updates with real Nix: two versions of a NixOS-shaped system
//! (tests/fixtures/delta-system.nix) that differ in one package and /etc;
//! a tarball of the old one extracted into a root; the bundle applied to it
//! with `nix-store --import` through `--store local?root=R`.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use common::*;

fn v1() -> &'static str {
    static SYSTEM: OnceLock<String> = OnceLock::new();
    SYSTEM.get_or_init(|| delta_system("1"))
}

fn v2() -> &'static str {
    static SYSTEM: OnceLock<String> = OnceLock::new();
    SYSTEM.get_or_init(|| delta_system("2"))
}

/// `nix path-info --json -r SYSTEM` into DIR/NAME.
fn closure_file(system: &str, dir: &Path, name: &str) -> PathBuf {
    let file = write_path_info(system, dir);
    let named = dir.join(name);
    std::fs::rename(&file, &named).unwrap();
    named
}

/// The store paths of a system's closure in the host store.
fn closure_paths(system: &str) -> BTreeSet<String> {
    path_info_validity(None, system).into_keys().collect()
}

/// A tarball of SYSTEM (with its manifest) and its closure file, in DIR.
fn write_system(system: &str, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let closure = closure_file(system, dir, &format!("{name}.json"));
    let tarball = dir.join(format!("{name}.wsl"));
    let manifest = dir.join(format!("{name}.manifest.json"));
    run_ok(wsl_tarball().args([
        "write",
        "--closure",
        closure.to_str().unwrap(),
        "--system",
        system,
        "--nixos",
        "--quiet",
        "-o",
        tarball.to_str().unwrap(),
        "--manifest",
        manifest.to_str().unwrap(),
    ]));
    (tarball, closure)
}

/// `delta --from OLD` to NEW's closure, with extra flags.
fn delta(
    old: &Path,
    new_closure: &Path,
    new_system: &str,
    output: &Path,
    extra: &[&str],
) -> Output {
    let mut args = vec![
        "delta",
        "--from",
        old.to_str().unwrap(),
        "--closure",
        new_closure.to_str().unwrap(),
        "--system",
        new_system,
        "-o",
        output.to_str().unwrap(),
        "--quiet",
    ];
    args.extend_from_slice(extra);
    run_wsl_tarball(&args)
}

fn assert_ok(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A root made by extracting a tarball, as `wsl --import` would.
fn root_from(tarball: &Path, dir: &Path, name: &str) -> PathBuf {
    let plain = dir.join(format!("{name}.tar"));
    std::fs::write(&plain, run_ok(Command::new("gzip").arg("-dc").arg(tarball))).unwrap();
    let root = dir.join(name);
    extract(&plain, &root);
    root
}

fn store_of(root: &Path) -> String {
    format!("local?root={}", root.display())
}

/// Where R's system profile leads: follows the links inside R.
fn profile_system(root: &Path) -> String {
    let profiles = root.join("nix/var/nix/profiles");
    let generation = std::fs::read_link(profiles.join("system")).unwrap();
    std::fs::read_link(profiles.join(generation))
        .unwrap()
        .display()
        .to_string()
}

/// The paths of `paths` that R's store does not hold as valid.
fn invalid_in(root: &Path, paths: &[&str]) -> Vec<String> {
    let text = run_text(
        nix_command("nix-store")
            .args([
                "--store",
                &store_of(root),
                "--check-validity",
                "--print-invalid",
            ])
            .args(paths),
    );
    text.lines().map(str::to_owned).collect()
}

fn bundle_manifest(bundle: &Path) -> serde_json::Value {
    let inspected = run_ok(wsl_tarball().args(["inspect", "--json"]).arg(bundle));
    serde_json::from_slice(&inspected).unwrap()
}

/// After an apply: R's store checks out and holds NEW's closure exactly as
/// the host does (narHash, narSize, references, path by path).
fn assert_applied(root: &Path, new_system: &str) {
    run_ok(nix_command("nix-store").args([
        "--verify",
        "--check-contents",
        "--store",
        &store_of(root),
    ]));
    assert_eq!(
        path_info_validity(Some(&store_of(root)), new_system),
        path_info_validity(None, new_system)
    );
    assert_eq!(profile_system(root), new_system);
}

/// The v1 tarball DIR/old.wsl (with its manifest) and v2's closure file
/// DIR/new.json.
fn old_tarball_and_new_closure(dir: &Path) -> (PathBuf, PathBuf) {
    let (old, _) = write_system(v1(), dir, "old");
    (old, closure_file(v2(), dir, "new.json"))
}

/// A bundle from the v1 tarball to v2's closure in DIR/update.wsl-delta,
/// asserted written with EXTRA flags: (old tarball, new closure, bundle).
fn v1_to_v2_bundle(dir: &Path, extra: &[&str]) -> (PathBuf, PathBuf, PathBuf) {
    let (old, new_closure) = old_tarball_and_new_closure(dir);
    let bundle = dir.join("update.wsl-delta");
    assert_ok(&delta(&old, &new_closure, v2(), &bundle, extra), "delta");
    (old, new_closure, bundle)
}

/// `apply BUNDLE --root ROOT --dry-activate`.
fn apply_dry(bundle: &Path, root: &Path) -> Output {
    run_wsl_tarball(&[
        "apply",
        bundle.to_str().unwrap(),
        "--root",
        root.to_str().unwrap(),
        "--dry-activate",
    ])
}

/// Asserts OUTPUT exited with CODE (showing its stderr if not); its stderr.
fn assert_exit(output: &Output, code: i32) -> String {
    assert_eq!(output.status.code(), Some(code), "{}", stderr(output));
    stderr(output)
}

/// Runs `delta` expecting exit CODE and DIR's listing unchanged; its stderr.
fn delta_refused(
    dir: &Path,
    old: &Path,
    new_closure: &Path,
    bundle: &Path,
    extra: &[&str],
    code: i32,
) -> String {
    let before = dir_names(dir);
    let text = assert_exit(&delta(old, new_closure, v2(), bundle, extra), code);
    assert_eq!(dir_names(dir), before);
    text
}

/// Asserts an apply was refused: exit 1, stderr holding every one of
/// NEEDLES, R's profile still PROFILE and every one of MISSING not valid in R.
fn assert_apply_refused(
    output: &Output,
    needles: &[&str],
    root: &Path,
    profile: &str,
    missing: &[&str],
) {
    let text = assert_exit(output, 1);
    for needle in needles {
        assert!(text.contains(needle), "{text}");
    }
    assert_eq!(profile_system(root), profile);
    assert_eq!(invalid_in(root, missing), missing.to_vec());
}

/// The store path of hello-VERSION in SYSTEM's closure.
fn hello_in(system: &str, version: &str) -> String {
    closure_paths(system)
        .into_iter()
        .find(|p| p.ends_with(&format!("-hello-{version}")))
        .unwrap()
}

#[test]
fn bundle_holds_exactly_what_old_lacks_and_applies_with_real_nix() {
    let dir = tempfile::tempdir().unwrap();
    let (old, _, bundle) = v1_to_v2_bundle(dir.path(), &[]);

    let manifest = bundle_manifest(&bundle);
    let shipped: BTreeSet<String> = manifest["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap().to_owned())
        .collect();
    let expected: BTreeSet<String> = closure_paths(v2())
        .difference(&closure_paths(v1()))
        .cloned()
        .collect();
    assert_eq!(shipped, expected);
    assert_eq!(
        shipped.len(),
        4,
        "hello, motd, etc and the toplevel: {shipped:?}"
    );
    assert_eq!(manifest["oldSystem"], v1());
    assert_eq!(manifest["newSystem"], v2());
    // The toplevel references everything: it is imported last.
    assert_eq!(
        manifest["paths"].as_array().unwrap().last().unwrap()["path"],
        v2()
    );

    let root = root_from(&old, dir.path(), "R");
    let applied = apply_dry(&bundle, &root);
    assert_ok(&applied, "apply");
    let text = stderr(&applied);
    assert!(
        text.contains(&format!(
            "would run: {}/bin/switch-to-configuration boot",
            v2()
        )),
        "{text}"
    );
    assert!(text.contains("wsl --terminate"), "{text}");
    assert!(
        text.contains("imported and checked 4 store paths"),
        "{text}"
    );
    assert_applied(&root, v2());

    // Byte for byte what Nix itself exports for the imported paths (which
    // now have no deriver, as the bundle ships none), in the bundle's order.
    let unpacked = unpack_bundle(&bundle, dir.path());
    let mut by_nix = Vec::new();
    for path in manifest["paths"].as_array().unwrap() {
        let one = run_ok(nix_command("nix-store").args([
            "--store",
            &store_of(&root),
            "--export",
            path["path"].as_str().unwrap(),
        ]));
        assert_eq!(&one[one.len() - 8..], &[0u8; 8]);
        by_nix.extend_from_slice(&one[..one.len() - 8]);
    }
    by_nix.extend_from_slice(&[0u8; 8]);
    assert!(std::fs::read(unpacked.join("wsl-delta/nix-export")).unwrap() == by_nix);

    // A second run finds the new system in place and changes nothing.
    let again = apply_dry(&bundle, &root);
    assert_ok(&again, "apply again");
    assert!(
        stderr(&again).contains("nothing to do"),
        "{}",
        stderr(&again)
    );
}

#[test]
fn bundled_apply_script_does_the_same_with_switch() {
    let dir = tempfile::tempdir().unwrap();
    let (old, _, bundle) = v1_to_v2_bundle(dir.path(), &[]);
    let unpacked = unpack_bundle(&bundle, dir.path());

    let root = root_from(&old, dir.path(), "R");
    let output = run_bundled_script(&unpacked, &root, &["--switch"]);
    assert_ok(&output, "sh wsl-delta/apply");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains(&format!(
            "would run: {}/bin/switch-to-configuration switch",
            v2()
        )),
        "{text}"
    );
    assert!(text.contains("wsl --terminate"), "{text}");
    assert_applied(&root, v2());
}

/// The script and the tool work from directories whose paths have spaces,
/// with a relative `--root` (resolved before anything runs).
#[test]
fn script_and_apply_take_paths_with_spaces_and_a_relative_root() {
    let top = tempfile::tempdir().unwrap();
    let dir = top.path().join("a b");
    std::fs::create_dir(&dir).unwrap();
    let (old, _, bundle) = v1_to_v2_bundle(&dir, &[]);
    let unpacked = unpack_bundle(&bundle, &dir);
    let script_root = root_from(&old, &dir, "script root");
    let tool_root = root_from(&old, &dir, "tool root");

    let output = nix_command("sh")
        .arg(unpacked.join("wsl-delta/apply"))
        .args(["--dry-activate", "--root", "script root"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert_ok(&output, "sh wsl-delta/apply");
    assert_applied(&script_root, v2());

    let output = wsl_tarball()
        .arg("apply")
        .arg(&bundle)
        .args(["--root", "tool root", "--dry-activate"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert_ok(&output, "apply");
    assert!(
        stderr(&output).contains(&format!(
            "{}/nix/var/nix/profiles/system",
            tool_root.display()
        )),
        "{}",
        stderr(&output)
    );
    assert_applied(&tool_root, v2());
}

#[test]
fn bundle_bytes_are_the_same_for_every_thread_count_and_from_a_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new_closure) = old_tarball_and_new_closure(dir.path());
    let one = dir.path().join("one.wsl-delta");
    let four = dir.path().join("four.wsl-delta");
    let xz = dir.path().join("xz.wsl-delta");
    assert_ok(
        &delta(&old, &new_closure, v2(), &one, &["--threads", "1"]),
        "delta 1",
    );
    assert_ok(
        &delta(&old, &new_closure, v2(), &four, &["--threads", "4"]),
        "delta 4",
    );
    assert_eq!(std::fs::read(&one).unwrap(), std::fs::read(&four).unwrap());
    assert_ok(
        &delta(
            &old,
            &new_closure,
            v2(),
            &xz,
            &["--compression", "xz", "--threads", "3"],
        ),
        "delta xz",
    );
    let from_manifest = dir.path().join("manifest.wsl-delta");
    let old_manifest = dir.path().join("old.manifest.json");
    assert_ok(
        &delta(&old_manifest, &new_closure, v2(), &from_manifest, &[]),
        "delta from manifest",
    );
    let (a, b, c) = (
        bundle_manifest(&one),
        bundle_manifest(&xz),
        bundle_manifest(&from_manifest),
    );
    assert_eq!(a["paths"], b["paths"]);
    assert_eq!(a["paths"], c["paths"]);
    assert_eq!(c["oldSystem"], v1());
    run_ok(wsl_tarball().arg("verify").arg(&xz));
}

/// `bytes` through the tool's own compressor, as a bundle's bytes go.
fn compressed_size(bytes: &[u8], compression: wsl_tarball::compress::Compression) -> u64 {
    use std::io::Write;
    let options = wsl_tarball::compress::CompressOptions {
        compression,
        level: None,
        threads: 2,
    };
    let mut compressor = wsl_tarball::compress::Compressor::new(Vec::new(), &options).unwrap();
    compressor.write_all(bytes).unwrap();
    compressor.finish().unwrap().len() as u64
}

#[test]
fn bundle_is_no_larger_than_the_changed_package_compressed_plus_one_percent() {
    use wsl_tarball::compress::Compression;
    let dir = tempfile::tempdir().unwrap();
    let (old, new_closure) = old_tarball_and_new_closure(dir.path());
    let hello = hello_in(v2(), "2");
    let nar = run_ok(nix_command("nix-store").args(["--dump", &hello]));
    let tarball_size = std::fs::metadata(&old).unwrap().len();
    for (name, compression) in [
        ("gzip", Compression::Gzip),
        ("xz", Compression::Xz),
        ("zstd", Compression::Zstd),
    ] {
        let bundle = dir.path().join(format!("update-{name}.wsl-delta"));
        assert_ok(
            &delta(&old, &new_closure, v2(), &bundle, &["--compression", name]),
            "delta",
        );
        let package = compressed_size(&nar, compression);
        let bundle_size = std::fs::metadata(&bundle).unwrap().len();
        eprintln!(
            "{name}: hello-2 NAR {} bytes, compressed {package} bytes; bundle {bundle_size} bytes ({:+.2}%); old full tarball (gzip) {tarball_size} bytes",
            nar.len(),
            100.0 * (bundle_size as f64 / package as f64 - 1.0)
        );
        assert!(
            bundle_size * 100 <= package * 101,
            "{name}: bundle {bundle_size} bytes > 101% of the package's {package}"
        );
    }
}

#[test]
fn old_that_is_no_system_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let new_closure = closure_file(v2(), dir.path(), "new.json");
    let old = dir.path().join("notes.txt");
    std::fs::write(&old, "these are not store paths\n").unwrap();
    let bundle = dir.path().join("update.wsl-delta");
    let text = delta_refused(dir.path(), &old, &new_closure, &bundle, &[], 1);
    assert!(
        text.contains(&old.display().to_string())
            && text.contains("not a tarball, a `--manifest` JSON or a closure file"),
        "{text}"
    );

    // A gzip file that is no tarball, and a JSON object that is neither.
    let gz = dir.path().join("old.wsl");
    std::fs::write(&gz, run_ok(Command::new("gzip").arg("-c").arg(&old))).unwrap();
    let json = dir.path().join("old.json");
    std::fs::write(&json, "{\"hello\": 1}").unwrap();
    for bad in [&gz, &json] {
        let text = delta_refused(dir.path(), bad, &new_closure, &bundle, &[], 1);
        assert!(text.contains(&bad.display().to_string()), "{text}");
    }
}

#[test]
fn new_closure_that_is_not_closed_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (old, _) = write_system(v1(), dir.path(), "old");
    // Without -r: the toplevel alone, its references missing.
    let partial = dir.path().join("partial.json");
    std::fs::write(
        &partial,
        run_ok(nix_command("nix").args(["path-info", "--json", v2()])),
    )
    .unwrap();
    let bundle = dir.path().join("update.wsl-delta");
    let text = delta_refused(dir.path(), &old, &partial, &bundle, &[], 1);
    assert!(
        text.contains("closure is not closed") && text.contains(&format!("{} references", v2())),
        "{text}"
    );
}

#[test]
fn bundle_for_another_system_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, bundle) = v1_to_v2_bundle(dir.path(), &[]);
    let v3 = delta_system("3");
    let (other, _) = write_system(&v3, dir.path(), "other");
    let root = root_from(&other, dir.path(), "R");
    let hello2 = hello_in(v2(), "2");

    let updates = format!("this bundle updates {}", v1());
    assert_apply_refused(
        &apply_dry(&bundle, &root),
        &[
            &updates,
            &format!("the system here is {v3}"),
            "nothing was changed",
        ],
        &root,
        &v3,
        &[&hello2, v2()],
    );

    // The script refuses the same way.
    let unpacked = unpack_bundle(&bundle, dir.path());
    assert_apply_refused(
        &run_bundled_script(&unpacked, &root, &[]),
        &[&updates],
        &root,
        &v3,
        &[&hello2],
    );
}

#[test]
fn bundle_from_a_closure_file_needs_its_references_in_the_local_store() {
    let dir = tempfile::tempdir().unwrap();
    let old_closure = closure_file(v1(), dir.path(), "old.json");
    let new_closure = closure_file(v2(), dir.path(), "new.json");
    let bundle = dir.path().join("update.wsl-delta");
    assert_ok(
        &delta(&old_closure, &new_closure, v2(), &bundle, &[]),
        "delta",
    );
    assert_eq!(
        bundle_manifest(&bundle)["oldSystem"],
        serde_json::Value::Null
    );
    // A root with another system altogether: delta-bash is not there.
    let other = write_fixture(dir.path(), "fixture.wsl", &[]);
    let root = root_from(&other, dir.path(), "R");
    let before = profile_system(&root);
    let lacks = "the local store lacks 3 store path(s) the bundle needs from the old system";
    assert_apply_refused(
        &apply_dry(&bundle, &root),
        &[lacks, "nothing was changed"],
        &root,
        &before,
        &[v2()],
    );

    // The script refuses the same way.
    let unpacked = unpack_bundle(&bundle, dir.path());
    assert_apply_refused(
        &run_bundled_script(&unpacked, &root, &[]),
        &[lacks],
        &root,
        &before,
        &[v2()],
    );
}

#[test]
fn a_finding_in_the_new_etc_exits_3_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new_closure) = old_tarball_and_new_closure(dir.path());
    let bundle = dir.path().join("update.wsl-delta");
    let text = delta_refused(
        dir.path(),
        &old,
        &new_closure,
        &bundle,
        &["--pattern", "Welcome to version 2"],
        3,
    );
    assert!(
        text.contains("-motd") && text.contains("the bundle was not written"),
        "{text}"
    );
}

#[test]
fn a_damaged_bundle_fails_verify_and_apply_leaves_the_old_system() {
    let dir = tempfile::tempdir().unwrap();
    let (old, _, bundle) = v1_to_v2_bundle(dir.path(), &["--compression", "none"]);
    run_ok(wsl_tarball().arg("verify").arg(&bundle));
    let mut bytes = std::fs::read(&bundle).unwrap();
    let at = bytes
        .windows(15)
        .position(|w| w == b"hello version 2")
        .unwrap();
    bytes[at + 14] = b'3';
    std::fs::write(&bundle, &bytes).unwrap();

    let verified = run_wsl_tarball(&["verify", bundle.to_str().unwrap()]);
    assert_eq!(verified.status.code(), Some(1));
    let report = String::from_utf8_lossy(&verified.stdout);
    assert!(
        report.contains("FAIL  nix-export") && report.contains("-hello-2: NAR hash"),
        "{report}"
    );

    let root = root_from(&old, dir.path(), "R");
    assert_apply_refused(
        &apply_dry(&bundle, &root),
        &["the bundle is damaged", "-hello-2: NAR hash"],
        &root,
        v1(),
        &[v2()],
    );
}

#[test]
fn inspect_and_diff_list_what_changed() {
    let dir = tempfile::tempdir().unwrap();
    let (old, _) = write_system(v1(), dir.path(), "old");
    let (_, new_closure) = write_system(v2(), dir.path(), "new");
    let bundle = dir.path().join("update.wsl-delta");
    assert_ok(&delta(&old, &new_closure, v2(), &bundle, &[]), "delta");
    let inspected = run_text(wsl_tarball().arg("inspect").arg(&bundle));
    assert!(
        inspected.contains(&format!("old system   {}", v1()))
            && inspected.contains(&format!("new system   {}", v2()))
            && inspected.contains("ships        4 store paths")
            && inspected.contains("needs        3 store paths from the old system")
            && inspected.contains("-delta-bash"),
        "{inspected}"
    );

    let hello = |version: &str| hello_in(if version == "1" { v1() } else { v2() }, version);
    let old_manifest = dir.path().join("old.manifest.json");
    let new_manifest = dir.path().join("new.manifest.json");
    for (a, b) in [(&old_manifest, &new_manifest), (&old, &new_closure)] {
        let output = run_wsl_tarball(&["diff", a.to_str().unwrap(), b.to_str().unwrap()]);
        assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(
            text.contains("store paths: 4 added, 4 removed, 0 changed")
                && text.contains(&format!("  + {}", hello("2")))
                && text.contains(&format!("  - {}", hello("1"))),
            "{text}"
        );
    }
    let same = run_wsl_tarball(&[
        "diff",
        old_manifest.to_str().unwrap(),
        old.to_str().unwrap(),
    ]);
    assert_eq!(
        same.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&same.stdout)
    );
}

#[test]
fn build_with_delta_from_writes_a_bundle_that_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let old = closure_file(fixture_system(), dir.path(), "fixture.json");
    let bundle = dir.path().join("fake.wsl-delta");
    let flake = format!("path:{}", repo_root().join("tests/nix").display());
    run_ok(
        wsl_tarball()
            .env("NIX_CONFIG", NIX_CONFIG)
            .args([
                "build",
                "fake",
                "--flake",
                &flake,
                "--quiet",
                "--delta-from",
            ])
            .arg(&old)
            .arg("-o")
            .arg(&bundle),
    );
    run_ok(wsl_tarball().arg("verify").arg(&bundle));
    let manifest = bundle_manifest(&bundle);
    assert!(
        manifest["newSystem"]
            .as_str()
            .unwrap()
            .ends_with("-nixos-system-nixos-wsl-fake"),
        "{manifest}"
    );
    // Nothing of the fixture closure is in the fake system: all of it ships.
    let shipped = manifest["paths"].as_array().unwrap().len();
    let closure = closure_paths(manifest["newSystem"].as_str().unwrap()).len();
    assert_eq!(shipped, closure);
    assert_eq!(manifest["requires"], serde_json::json!([]));
}

/// Runs a command inside the chroot.
fn in_chroot(chroot: &Path, args: &[&str]) -> Output {
    Command::new("chroot")
        .arg(chroot)
        .args([
            "env",
            "NIX_CONFIG=substituters =\nexperimental-features = nix-command flakes\n",
        ])
        .args(args)
        .output()
        .unwrap()
}

/// narHash (as a digest), narSize and references of every path, from any
/// Nix version's `nix path-info --json -r`.
fn validity_any_version(json: &[u8]) -> BTreeSet<(String, String, u64, Vec<String>)> {
    let value: serde_json::Value = serde_json::from_slice(json).unwrap();
    let entries: Vec<(String, serde_json::Value)> = match value {
        serde_json::Value::Array(list) => list
            .into_iter()
            .map(|info| (info["path"].as_str().unwrap().to_owned(), info))
            .collect(),
        serde_json::Value::Object(map) => map.into_iter().collect(),
        other => panic!("unexpected path-info JSON {other}"),
    };
    entries
        .into_iter()
        .map(|(path, info)| {
            let hash = wsl_tarball::store::NarHash::parse(info["narHash"].as_str().unwrap())
                .unwrap()
                .to_sri();
            let mut references: Vec<String> = info["references"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    let r = r.as_str().unwrap();
                    if r.starts_with('/') {
                        r.to_owned()
                    } else {
                        format!("/nix/store/{r}")
                    }
                })
                .collect();
            references.sort();
            let path = if path.starts_with('/') {
                path
            } else {
                format!("/nix/store/{path}")
            };
            (path, hash, info["narSize"].as_u64().unwrap(), references)
        })
        .collect()
}

/// The same import with a current Nix (2.34 in the chroot .ci/run makes):
/// the bundled script and `wsl-tarball apply`, each on its own root.
#[test]
fn a_current_nix_imports_the_bundle() {
    let Some(chroot) = newer_nix_chroot() else {
        eprintln!("SKIPPED: set WSL_TARBALL_NEWER_NIX to a chroot from ../shared/newer-nix/setup sid DIR (.ci/run does)");
        return;
    };
    let version = in_chroot(&chroot, &["nix", "--version"]);
    assert_ok(&version, "nix --version in the chroot");
    eprintln!(
        "chroot: {}",
        String::from_utf8_lossy(&version.stdout).trim()
    );
    let dir = tempfile::tempdir().unwrap();
    let (old, _, bundle) = v1_to_v2_bundle(dir.path(), &[]);
    let host_validity = validity_any_version(&run_ok(nix_command("nix").args([
        "path-info",
        "--json",
        "-r",
        v2(),
    ])));

    // A work directory inside the chroot, removed at the end.
    let work = tempfile::Builder::new()
        .prefix("wsl-tarball-delta-")
        .tempdir_in(chroot.join("tmp"))
        .unwrap();
    let inside = |path: &Path| format!("/{}", path.strip_prefix(&chroot).unwrap().display());
    std::fs::copy(
        env!("CARGO_BIN_EXE_wsl-tarball"),
        work.path().join("wsl-tarball"),
    )
    .unwrap();
    std::fs::copy(&bundle, work.path().join("update.wsl-delta")).unwrap();
    run_ok(
        Command::new("tar")
            .arg("-xf")
            .arg(&bundle)
            .arg("-C")
            .arg(work.path()),
    );
    let script_root = root_from(&old, work.path(), "script-root");
    let tool_root = root_from(&old, work.path(), "tool-root");
    let runs = [
        (
            &script_root,
            vec![
                "sh".to_owned(),
                inside(&work.path().join("wsl-delta/apply")),
            ],
        ),
        (
            &tool_root,
            vec![
                inside(&work.path().join("wsl-tarball")),
                "apply".to_owned(),
                inside(&work.path().join("update.wsl-delta")),
            ],
        ),
    ];
    for (root, command) in runs {
        let mut args: Vec<&str> = command.iter().map(String::as_str).collect();
        let root_inside = inside(root);
        args.extend(["--root", &root_inside, "--dry-activate"]);
        let output = in_chroot(&chroot, &args);
        assert_ok(&output, &format!("{args:?} in the chroot"));
        let store = format!("local?root={root_inside}");
        assert_ok(
            &in_chroot(
                &chroot,
                &[
                    "nix-store",
                    "--verify",
                    "--check-contents",
                    "--store",
                    &store,
                ],
            ),
            "nix-store --verify in the chroot",
        );
        let info = in_chroot(
            &chroot,
            &["nix", "path-info", "--json", "-r", "--store", &store, v2()],
        );
        assert_ok(&info, "nix path-info in the chroot");
        assert_eq!(validity_any_version(&info.stdout), host_validity);
        assert_eq!(profile_system(root), v2());
    }
}

#[test]
fn build_with_delta_from_refuses_rootfs_only_flags_before_building() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old.json");
    std::fs::write(&old, "[]").unwrap();
    let before = dir_names(dir.path());
    let output = run_wsl_tarball(&[
        "build",
        "fake",
        "--flake",
        "path:/nonexistent-flake",
        "--delta-from",
        old.to_str().unwrap(),
        "--chown",
        "/home/nixos",
        "1000:100",
        "-o",
        dir.path().join("x.wsl-delta").to_str().unwrap(),
    ]);
    let text = assert_exit(&output, 1);
    assert!(
        text.contains("--delta-from writes an update bundle") && !text.contains("nix eval"),
        "{text}"
    );
    assert_eq!(dir_names(dir.path()), before);
}

#[test]
fn a_closure_whose_hash_the_store_contradicts_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new_closure) = old_tarball_and_new_closure(dir.path());
    let hello = hello_in(v2(), "2");
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&new_closure).unwrap()).unwrap();
    for info in json.as_array_mut().unwrap() {
        if info["path"] == hello.as_str() {
            info["narHash"] = "sha256-N8z8zjE1gJtQA9jNt9BzmdII3NGO59dM4e9+iSUVwx8=".into();
        }
    }
    std::fs::write(&new_closure, serde_json::to_vec(&json).unwrap()).unwrap();
    let bundle = dir.path().join("update.wsl-delta");
    let text = delta_refused(dir.path(), &old, &new_closure, &bundle, &[], 1);
    assert!(
        text.contains(&format!(
            "{hello}: the host store holds other contents than the closure says"
        )) && text.contains("the closure says sha256-N8z8zjE1gJtQA9jNt9BzmdII3NGO59dM4e9+iSUVwx8="),
        "{text}"
    );
}

#[test]
fn apply_refuses_a_file_that_is_no_bundle_and_root_without_dry_activate() {
    let dir = tempfile::tempdir().unwrap();
    let tarball = write_fixture(dir.path(), "fixture.wsl", &[]);
    let root = dir.path().join("R");
    std::fs::create_dir(&root).unwrap();
    let text = assert_exit(&apply_dry(&tarball, &root), 1);
    assert!(
        text.contains(&format!(
            "{}: not an update bundle: its first member is /, not the wsl-delta/ directory",
            tarball.display()
        )),
        "{text}"
    );
    let output = run_wsl_tarball(&[
        "apply",
        tarball.to_str().unwrap(),
        "--root",
        root.to_str().unwrap(),
    ]);
    let text = assert_exit(&output, 1);
    assert!(text.contains("--root needs --dry-activate"), "{text}");
    assert!(dir_names(&root).is_empty());
}

/// Extracts a bundle into DIR/unpacked, as a colleague would with `tar -xf`.
fn unpack_bundle(bundle: &Path, dir: &Path) -> PathBuf {
    let unpacked = dir.join("unpacked");
    std::fs::create_dir(&unpacked).unwrap();
    run_ok(
        Command::new("tar")
            .arg("-xf")
            .arg(bundle)
            .arg("-C")
            .arg(&unpacked),
    );
    unpacked
}

/// `sh wsl-delta/apply FLAGS --dry-activate --root ROOT` from an unpacked
/// bundle, with the test Nix settings.
fn run_bundled_script(unpacked: &Path, root: &Path, flags: &[&str]) -> Output {
    nix_command("sh")
        .arg(unpacked.join("wsl-delta/apply"))
        .args(flags)
        .args(["--dry-activate", "--root"])
        .arg(root)
        .output()
        .unwrap()
}

// ---------------------------------------------------------------------------
// What a colleague sends is hostile: an old tarball, a manifest, a bundle.

/// The entries of the store directory inside R (store paths, `.lock`
/// files, anything Nix leaves there) but `.links`, which Nix makes whenever
/// it opens the store (the test's own `nix-store --check-validity` does).
fn store_listing(root: &Path) -> Vec<String> {
    let mut names = dir_names(&root.join("nix/store"));
    names.retain(|name| name != ".links");
    names
}

/// Edits DIR/wsl-delta/manifest.json (an unpacked bundle) as JSON.
fn edit_unpacked_manifest(unpacked: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let file = unpacked.join("wsl-delta/manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    edit(&mut manifest);
    let mut text = serde_json::to_string_pretty(&manifest).unwrap();
    text.push('\n');
    std::fs::write(&file, text).unwrap();
}

/// Packs an unpacked bundle back into an uncompressed BUNDLE with GNU tar,
/// members in the bundle's order (the directory, manifest, apply, export).
fn repack_bundle(unpacked: &Path, bundle: &Path) {
    run_ok(
        Command::new("tar")
            .arg("-cf")
            .arg(bundle)
            .arg("-C")
            .arg(unpacked)
            .args([
                "--no-recursion",
                "wsl-delta",
                "wsl-delta/manifest.json",
                "wsl-delta/apply",
                "wsl-delta/nix-export",
            ]),
    );
}

/// `verify BUNDLE`, expecting exit CODE and DIR's listing unchanged; its
/// stdout and stderr.
fn verify_refused(dir: &Path, bundle: &Path, code: i32) -> String {
    let before = dir_names(dir);
    let output = run_wsl_tarball(&["verify", bundle.to_str().unwrap()]);
    let text = assert_exit(&output, code);
    assert_eq!(dir_names(dir), before);
    format!("{}{text}", String::from_utf8_lossy(&output.stdout))
}

/// A refused apply that left R exactly as it was: exit 1, stderr holding
/// NEEDLES, R's profile still PROFILE, R's store directory listing
/// unchanged (no path, directory or `.lock` added) and none of MISSING valid.
fn assert_apply_left_no_trace(
    output: &Output,
    needles: &[&str],
    root: &Path,
    profile: &str,
    store_before: &[String],
    missing: &[&str],
) {
    // The disk first: on a failure the report shows what was left behind.
    assert_eq!(
        store_listing(root),
        store_before,
        "the store changed: {}",
        stderr(output)
    );
    assert_apply_refused(output, needles, root, profile, missing);
}

/// Hole 2: a profile link in OLD whose target is shell text, not a store
/// path, is refused where it is read; nothing is written, so no `apply`
/// script ever holds it.
#[test]
fn an_old_tarball_whose_profile_link_is_no_store_path_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new_closure) = old_tarball_and_new_closure(dir.path());
    let tree = root_from(&old, dir.path(), "tree");
    let link = tree.join("nix/var/nix/profiles/system-1-link");
    let hostile = "/nix/store/x';touch pwned;#";
    std::fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink(hostile, &link).unwrap();
    let evil = dir.path().join("evil.tar");
    gnu_tar_file(&tree, &evil);
    std::fs::remove_dir_all(&tree).unwrap();

    let bundle = dir.path().join("update.wsl-delta");
    let text = delta_refused(dir.path(), &evil, &new_closure, &bundle, &[], 1);
    assert!(
        text.contains(&evil.display().to_string())
            && text.contains("nix/var/nix/profiles/system-1-link")
            && text.contains("x';touch pwned;#")
            && text.contains("not a store path"),
        "{text}"
    );
    assert!(!dir.path().join("pwned").exists());
}

/// Hole 3: `apply` reads the bundle once. A FIFO that serves a bundle with
/// an unlisted store path first and the genuine one afterwards cannot get
/// the unlisted path checked against one copy and imported from another.
#[test]
fn apply_reads_the_bundle_once_so_a_fifo_cannot_swap_it() {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    use std::sync::Arc;

    let dir = tempfile::tempdir().unwrap();
    let (old, _, good) = v1_to_v2_bundle(dir.path(), &["--compression", "none"]);
    let manifest = bundle_manifest(&good);
    // A store path the bundle does not list, and not in the old system.
    let note = dir.path().join("unlisted.txt");
    std::fs::write(&note, "wsl-tarball test: a store path no bundle lists\n").unwrap();
    let unlisted = run_text(nix_command("nix-store").arg("--add").arg(&note))
        .trim()
        .to_owned();
    // The genuine export stream with one more record before its end.
    let unpacked = unpack_bundle(&good, dir.path());
    let export = unpacked.join("wsl-delta/nix-export");
    let mut stream = std::fs::read(&export).unwrap();
    stream.truncate(stream.len() - 8);
    let extra = run_ok(nix_command("nix-store").args(["--export", &unlisted]));
    stream.extend_from_slice(&extra);
    std::fs::write(&export, &stream).unwrap();
    let evil = dir.path().join("evil.wsl-delta");
    repack_bundle(&unpacked, &evil);
    let (good_bytes, evil_bytes) = (std::fs::read(&good).unwrap(), std::fs::read(&evil).unwrap());

    // Every time `apply` opens the FIFO it gets the evil bundle, except the
    // second time. A writer end opened without blocking exists only while a
    // reader has the FIFO open: once one is served, the server waits until
    // `apply` no longer has the FIFO open before it serves the next.
    let fifo = dir.path().join("update.fifo");
    run_ok(Command::new("mkfifo").arg(&fifo));
    let stop = Arc::new(AtomicBool::new(false));
    let reader_pid = Arc::new(AtomicU32::new(0));
    let server = {
        let (fifo, stop, reader_pid) = (fifo.clone(), stop.clone(), reader_pid.clone());
        std::thread::spawn(move || {
            let pause = || std::thread::sleep(std::time::Duration::from_millis(1));
            let holds_fifo = |pid: u32| {
                std::fs::read_dir(format!("/proc/{pid}/fd"))
                    .into_iter()
                    .flatten()
                    .flatten()
                    .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|t| t == fifo))
            };
            let mut opens = 0;
            while !stop.load(Ordering::Relaxed) {
                let Ok(mut writer) = std::fs::OpenOptions::new()
                    .write(true)
                    .custom_flags(libc::O_NONBLOCK)
                    .open(&fifo)
                else {
                    pause();
                    continue;
                };
                opens += 1;
                let mut bytes: &[u8] = if opens == 2 { &good_bytes } else { &evil_bytes };
                while !bytes.is_empty() {
                    match writer.write(bytes) {
                        Ok(n) => bytes = &bytes[n..],
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => pause(),
                        // The reader closed its end early.
                        Err(_) => break,
                    }
                }
                drop(writer);
                while reader_pid.load(Ordering::Relaxed) == 0 {
                    pause();
                }
                while !stop.load(Ordering::Relaxed)
                    && holds_fifo(reader_pid.load(Ordering::Relaxed))
                {
                    pause();
                }
            }
            opens
        })
    };

    let root = root_from(&old, dir.path(), "R");
    let store_before = store_listing(&root);
    let child = wsl_tarball()
        .args([
            "apply",
            fifo.to_str().unwrap(),
            "--root",
            root.to_str().unwrap(),
            "--dry-activate",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    reader_pid.store(child.id(), Ordering::Relaxed);
    let output = child.wait_with_output().unwrap();
    stop.store(true, Ordering::Relaxed);
    let opens = server.join().unwrap();
    let shipped: Vec<String> = manifest["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        invalid_in(&root, &[&unlisted]),
        std::slice::from_ref(&unlisted),
        "the unlisted path was imported: {}",
        stderr(&output)
    );
    let mut missing: Vec<&str> = shipped.iter().map(String::as_str).collect();
    missing.push(&unlisted);
    assert_apply_left_no_trace(
        &output,
        &[
            &format!("{}: the bundle is damaged", fifo.display()),
            "a record the manifest does not list",
            "nothing was changed",
        ],
        &root,
        v1(),
        &store_before,
        &missing,
    );
    assert_eq!(opens, 1, "apply opened the bundle {opens} times");
}

/// Hole 4: manifest entries that are no store paths (here Nix options) are
/// refused by `verify` and by `apply` before Nix runs: no store is made
/// outside the root.
#[test]
fn manifest_entries_that_are_no_store_paths_are_refused_before_nix_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (old, _, good) = v1_to_v2_bundle(dir.path(), &["--compression", "none"]);
    let root = root_from(&old, dir.path(), "R");
    let store_before = store_listing(&root);
    let elsewhere = dir.path().join("elsewhere");
    let store_option = format!("local?root={}", elsewhere.display());
    let cases: [(&str, serde_json::Value); 3] = [
        (
            "requires[0]",
            serde_json::json!(["--store", store_option.clone()]),
        ),
        ("oldSystem", "/nix/store/x';touch pwned;#".into()),
        ("newSystem", "--help".into()),
    ];
    for (field, value) in cases {
        let unpacked = unpack_bundle(&good, dir.path());
        edit_unpacked_manifest(&unpacked, |manifest| {
            let key = field.split('[').next().unwrap();
            if key == "requires" {
                let mut list = value.as_array().unwrap().clone();
                list.extend(manifest["requires"].as_array().unwrap().iter().cloned());
                manifest[key] = list.into();
            } else {
                manifest[key] = value.clone();
            }
        });
        let hostile = dir.path().join("hostile.wsl-delta");
        repack_bundle(&unpacked, &hostile);
        std::fs::remove_dir_all(&unpacked).unwrap();

        let applied = apply_dry(&hostile, &root);
        assert!(
            !elsewhere.exists(),
            "{field}: Nix made a store at {store_option}: {}",
            stderr(&applied)
        );
        assert_apply_left_no_trace(
            &applied,
            &[&hostile.display().to_string(), &format!("{field}: ")],
            &root,
            v1(),
            &store_before,
            &[v2()],
        );
        let report = verify_refused(dir.path(), &hostile, 1);
        assert!(
            report.contains(&format!("{field}: ")) && report.contains("NOT verified"),
            "{field}: {report}"
        );
        assert!(!dir.path().join("pwned").exists());
        std::fs::remove_file(&hostile).unwrap();
    }
}

/// Hole 7: `verify` vouches for the script people run: an edited
/// `wsl-delta/apply`, or one that is a symlink, fails it, and `apply`
/// refuses the bundle too.
#[test]
fn verify_covers_the_apply_script() {
    let dir = tempfile::tempdir().unwrap();
    let (old, _, good) = v1_to_v2_bundle(dir.path(), &["--compression", "none"]);
    let root = root_from(&old, dir.path(), "R");
    let store_before = store_listing(&root);
    type Edit = fn(&Path);
    let edits: [(&str, Edit, &str); 2] = [
        (
            "edited",
            |script| {
                let mut text = std::fs::read_to_string(script).unwrap();
                text = text.replacen("set -eu\n", "set -eu\ntouch pwned\n", 1);
                std::fs::write(script, text).unwrap();
            },
            "is not the script this tool makes from the manifest",
        ),
        (
            "a symlink",
            |script| {
                std::fs::remove_file(script).unwrap();
                std::os::unix::fs::symlink("/tmp/wsl-tarball-evil-apply", script).unwrap();
            },
            "wsl-delta/apply is a symlink, not a regular file",
        ),
    ];
    for (what, edit, needle) in edits {
        let unpacked = unpack_bundle(&good, dir.path());
        edit(&unpacked.join("wsl-delta/apply"));
        let hostile = dir.path().join("hostile.wsl-delta");
        repack_bundle(&unpacked, &hostile);
        std::fs::remove_dir_all(&unpacked).unwrap();

        let report = verify_refused(dir.path(), &hostile, 1);
        assert!(
            report.contains("FAIL  layout") && report.contains(needle),
            "{what}: {report}"
        );
        assert_apply_left_no_trace(
            &apply_dry(&hostile, &root),
            &[&hostile.display().to_string(), needle],
            &root,
            v1(),
            &store_before,
            &[v2()],
        );
        std::fs::remove_file(&hostile).unwrap();
    }
}

/// Hole 10: `apply` checks what `verify` checks before Nix sees anything.
/// A bundle that is not closed (its `requires` emptied, the script made to
/// match) would make Nix fail part-way and leave imported paths behind.
#[test]
fn apply_refuses_a_bundle_that_is_not_closed_and_leaves_the_store_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let old_closure = closure_file(v1(), dir.path(), "old.json");
    let new_closure = closure_file(v2(), dir.path(), "new.json");
    let good = dir.path().join("update.wsl-delta");
    assert_ok(
        &delta(
            &old_closure,
            &new_closure,
            v2(),
            &good,
            &["--compression", "none"],
        ),
        "delta",
    );
    let unpacked = unpack_bundle(&good, dir.path());
    let mut requires = Vec::new();
    edit_unpacked_manifest(&unpacked, |manifest| {
        requires = manifest["requires"].as_array().unwrap().clone();
        manifest["requires"] = serde_json::json!([]);
    });
    assert_eq!(requires.len(), 3);
    // The script lists what the bundle needs one path a line: drop those.
    let script = unpacked.join("wsl-delta/apply");
    let text = std::fs::read_to_string(&script).unwrap();
    let kept: String = text
        .split_inclusive('\n')
        .filter(|line| {
            !requires
                .iter()
                .any(|r| line.trim_end() == r.as_str().unwrap())
        })
        .collect();
    assert_ne!(kept, text);
    std::fs::write(&script, kept).unwrap();
    let hostile = dir.path().join("open.wsl-delta");
    repack_bundle(&unpacked, &hostile);

    // A root with another system altogether: delta-bash is not there.
    let other = write_fixture(dir.path(), "fixture.wsl", &[]);
    let root = root_from(&other, dir.path(), "R");
    let before = profile_system(&root);
    let store_before = store_listing(&root);
    let report = verify_refused(dir.path(), &hostile, 1);
    assert!(
        report.contains("FAIL  closed") && report.contains("neither shipped nor listed"),
        "{report}"
    );
    let shipped = closure_paths(v2())
        .difference(&closure_paths(v1()))
        .cloned()
        .collect::<Vec<_>>();
    let shipped: Vec<&str> = shipped.iter().map(String::as_str).collect();
    assert_apply_left_no_trace(
        &apply_dry(&hostile, &root),
        &[
            &hostile.display().to_string(),
            "which is neither shipped nor listed as needed from the old system",
            "nothing was changed",
        ],
        &root,
        &before,
        &store_before,
        &shipped,
    );
}

/// Hole 10, the rest: when Nix fails part-way through a checked bundle
/// (here the toplevel's lock file cannot be made: a directory is in its
/// place), `apply` deletes the paths the import added: the store is as it
/// was.
#[test]
fn a_failed_import_is_undone() {
    let dir = tempfile::tempdir().unwrap();
    let (old, _, bundle) = v1_to_v2_bundle(dir.path(), &[]);
    // The toplevel is imported last, after the other shipped paths.
    let name = Path::new(v2()).file_name().unwrap().to_str().unwrap();
    let blocked_root = |name_of_root: &str| {
        let root = root_from(&old, dir.path(), name_of_root);
        std::fs::create_dir(root.join(format!("nix/store/{name}.lock"))).unwrap();
        root
    };
    let root = blocked_root("R");
    let store_before = store_listing(&root);
    let shipped: Vec<String> = closure_paths(v2())
        .difference(&closure_paths(v1()))
        .cloned()
        .collect();
    let shipped: Vec<&str> = shipped.iter().map(String::as_str).collect();
    assert_apply_left_no_trace(
        &apply_dry(&bundle, &root),
        &[
            "nix-store --store",
            "--import` failed",
            "the store is as it was",
        ],
        &root,
        v1(),
        &store_before,
        &shipped,
    );

    // The script deletes what it imported the same way.
    let unpacked = unpack_bundle(&bundle, dir.path());
    let root = blocked_root("S");
    assert_apply_left_no_trace(
        &run_bundled_script(&unpacked, &root, &[]),
        &["nix-store --import failed"],
        &root,
        v1(),
        &store_before,
        &shipped,
    );
}

/// A bundle DIR/NAME made with GNU tar in the bundle's member order, whose
/// manifest is well formed but for FIELD, which holds HOSTILE text (in a
/// store path where the field is one).
fn hostile_bundle(dir: &Path, name: &str, field: &str) -> PathBuf {
    let unpacked = dir.join(format!("{name}.unpacked"));
    let delta_dir = unpacked.join("wsl-delta");
    std::fs::create_dir_all(&delta_dir).unwrap();
    let store_path = "/nix/store/7h7qgvs4kgzsn8a6rb273saxyqh4jxlz-hello";
    let mut manifest = serde_json::json!({
        "bundleVersion": 1,
        "tool": { "name": "wsl-tarball", "version": "0" },
        "storeDir": "/nix/store",
        "oldSystem": "/nix/store/3h7qgvs4kgzsn8a6rb273saxyqh4jxlz-old",
        "newSystem": store_path,
        "baseline": "tarball",
        "paths": [{
            "path": store_path,
            "narHash": format!("sha256:{}", "0".repeat(52)),
            "narSize": 1,
            "references": [],
        }],
        "requires": [],
        "export": { "sha256": "0".repeat(64), "size": 0 },
        "securityChecks": "passed",
    });
    manifest[field] = match field {
        "requires" => serde_json::json!([hostile_store_path()]),
        "oldSystem" | "newSystem" => serde_json::json!(hostile_store_path()),
        _ => serde_json::json!(HOSTILE),
    };
    std::fs::write(delta_dir.join("manifest.json"), manifest.to_string()).unwrap();
    std::fs::write(delta_dir.join("apply"), "#!/bin/sh\nexit 1\n").unwrap();
    std::fs::set_permissions(
        delta_dir.join("apply"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    std::fs::write(delta_dir.join("nix-export"), "").unwrap();
    let bundle = dir.join(name);
    run_ok(
        Command::new("tar")
            .args(["--format=gnu", "--no-recursion", "-c", "-f"])
            .arg(&bundle)
            .arg("-C")
            .arg(&unpacked)
            .args([
                "wsl-delta",
                "wsl-delta/manifest.json",
                "wsl-delta/apply",
                "wsl-delta/nix-export",
            ]),
    );
    bundle
}

#[test]
fn hostile_manifest_fields_are_printed_escaped_by_inspect_verify_and_apply() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("R");
    std::fs::create_dir(&root).unwrap();
    for field in [
        "oldSystem",
        "newSystem",
        "requires",
        "baseline",
        "securityChecks",
    ] {
        let bundle = hostile_bundle(dir.path(), &format!("{field}.wsl-delta"), field);
        let path = bundle.to_str().unwrap();
        for command in ["inspect", "verify"] {
            let output = run_wsl_tarball(&[command, path]);
            assert_ne!(output.status.code(), Some(0), "{command} {field}");
            let text = assert_terminal_safe(&format!("{command} {field}"), &output);
            assert!(
                text.contains(field) && text.contains(HOSTILE_ESCAPED),
                "{command} {field}: {text}"
            );
        }
        let applied = apply_dry(&bundle, &root);
        assert_exit(&applied, 1);
        let text = assert_terminal_safe(&format!("apply {field}"), &applied);
        assert!(text.contains(HOSTILE_ESCAPED), "apply {field}: {text}");
    }
}

#[test]
fn delta_from_an_old_with_a_hostile_system_link_or_database_is_refused_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("old-root");
    hostile_tree(&root);
    // Nix's database of a rootfs that has nothing registered yet.
    std::fs::write(root.join("nix-path-registration"), "").unwrap();
    let old = dir.path().join("old.tar");
    gnu_tar_file(&root, &old);
    let new_closure = closure_file(v2(), dir.path(), "new.json");
    let bundle = dir.path().join("update.wsl-delta");
    let output = run_wsl_tarball(&[
        "delta",
        "--from",
        old.to_str().unwrap(),
        "--closure",
        new_closure.to_str().unwrap(),
        "--system",
        v2(),
        "-o",
        bundle.to_str().unwrap(),
    ]);
    assert_exit(&output, 1);
    let text = assert_terminal_safe("delta", &output);
    assert!(
        text.contains("nix/var/nix/profiles/system")
            && text.contains(&hostile_store_path().replace(HOSTILE, HOSTILE_ESCAPED)),
        "{text}"
    );
    assert!(!bundle.exists());

    // An OLD whose Nix database names a hostile store path: the error
    // quotes it escaped, and nothing is written.
    std::fs::remove_file(root.join("nix-path-registration")).unwrap();
    hostile_nix_database(&root);
    gnu_tar_file(&root, &old);
    let refused = dir.path().join("refused.wsl-delta");
    let output = delta(&old, &new_closure, v2(), &refused, &[]);
    assert_exit(&output, 1);
    let text = assert_terminal_safe("delta from a hostile database", &output);
    // (The sqlite3 tool keeps no CR: compare up to it.)
    assert!(text.contains(r"x\033]0;pwned\a\033[2J"), "{text}");
    assert!(!refused.exists());
}
