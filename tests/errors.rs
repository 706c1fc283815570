//! Bad input gives a clear error naming the culprit, a non-zero exit, and
//! leaves the destination directory exactly as it was.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// An output directory holding a good `nixos.wsl` that a failed run must
/// leave exactly as it was.
struct GuardedOutput {
    dir: PathBuf,
    existing: PathBuf,
}

const PREVIOUS: &[u8] = b"previous good tarball";

impl GuardedOutput {
    fn new(parent: &Path) -> Self {
        let dir = parent.join("out");
        std::fs::create_dir_all(&dir).unwrap();
        let existing = dir.join("nixos.wsl");
        std::fs::write(&existing, PREVIOUS).unwrap();
        GuardedOutput { dir, existing }
    }

    /// The old tarball is intact and nothing else (no temporary file) is there.
    fn assert_untouched(&self) {
        assert_eq!(std::fs::read(&self.existing).unwrap(), PREVIOUS);
        assert_eq!(dir_names(&self.dir), vec!["nixos.wsl"]);
    }
}

/// Runs `write` expecting failure; checks the message and that the output
/// directory holds only what it held before (an existing `nixos.wsl`).
fn assert_fails(dir: &Path, args: &[&str], needles: &[&str]) {
    let output = GuardedOutput::new(dir);
    let mut full = vec![
        "write",
        "--no-skeleton",
        "-o",
        output.existing.to_str().unwrap(),
    ];
    full.extend_from_slice(args);
    let result = run_wsl_tarball(&full);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(!result.status.success(), "{full:?} succeeded");
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "error for {full:?} lacks {needle:?}:\n{stderr}"
        );
    }
    // The message names each cause once.
    let parts: Vec<&str> = stderr.trim().split(": ").filter(|p| p.len() > 20).collect();
    for (i, part) in parts.iter().enumerate() {
        assert!(
            !parts[i + 1..].contains(part),
            "the error repeats itself:\n{stderr}"
        );
    }
    output.assert_untouched();
}

fn fixture_closure_file(dir: &Path) -> String {
    write_path_info(fixture_system(), dir)
        .to_str()
        .unwrap()
        .to_owned()
}

#[test]
fn malformed_json_names_the_file_and_position() {
    let dir = tempfile::tempdir().unwrap();
    let closure = dir.path().join("broken.json");
    std::fs::write(&closure, b"[{\"path\": \"/nix/store/x\",").unwrap();
    assert_fails(
        dir.path(),
        &[
            "--closure",
            closure.to_str().unwrap(),
            "--system",
            fixture_system(),
        ],
        &["broken.json"],
    );
}

#[test]
fn a_reference_outside_the_closure_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let closure = fixture_closure_file(dir.path());
    let mut infos: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&closure).unwrap()).unwrap();
    let list = infos.as_array_mut().unwrap();
    let index = list
        .iter()
        .position(|i| i["path"].as_str().unwrap().ends_with("-self-ref"))
        .unwrap();
    let dropped = list.remove(index)["path"].as_str().unwrap().to_owned();
    std::fs::write(&closure, serde_json::to_vec(&infos).unwrap()).unwrap();
    assert_fails(
        dir.path(),
        &["--closure", &closure, "--system", fixture_system()],
        &[&dropped, "not in the closure"],
    );
}

#[test]
fn a_system_outside_the_closure_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let closure = fixture_closure_file(dir.path());
    let other = "/nix/store/00000000000000000000000000000000-not-here";
    assert_fails(
        dir.path(),
        &["--closure", &closure, "--system", other],
        &[other],
    );
}

#[test]
fn an_unusable_store_dir_is_named_before_anything_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let closure = fixture_closure_file(dir.path());
    for (store_dir, why) in [
        ("nix/store", "absolute"),
        ("/nix/../store", "`..`"),
        ("/", "root"),
    ] {
        assert_fails(
            dir.path(),
            &["--closure", &closure, "--store-dir", store_dir],
            &[&format!("{store_dir:?}"), why],
        );
    }
}

#[test]
fn a_malformed_store_path_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let closure = fixture_closure_file(dir.path());
    let text = std::fs::read_to_string(&closure).unwrap();
    let system = fixture_system();
    let broken = system.replacen("/nix/store/", "/nix/store/E", 1);
    std::fs::write(&closure, text.replace(system, &broken)).unwrap();
    assert_fails(
        dir.path(),
        &["--closure", &closure, "--system", system],
        &[broken.trim_start_matches("/nix/store/")],
    );
}

#[test]
fn a_store_path_missing_from_the_store_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let closure = fixture_closure_file(dir.path());
    let empty_root = dir.path().join("empty-root");
    std::fs::create_dir_all(empty_root.join("nix/store")).unwrap();
    assert_fails(
        dir.path(),
        &[
            "--closure",
            &closure,
            "--system",
            fixture_system(),
            "--store-root",
            empty_root.to_str().unwrap(),
        ],
        &[
            "/nix/store/",
            "is in the closure but missing from",
            "empty-root/nix/store",
        ],
    );
}

#[test]
fn an_unreadable_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let closure = fixture_closure_file(dir.path());
    // A copy of the store that the unprivileged user can list but not read.
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("nix")).unwrap();
    let output = GuardedOutput::new(dir.path());
    let mut copy = Command::new("cp");
    copy.arg("-a");
    for path in path_info_validity(None, fixture_system()).keys() {
        copy.arg(path);
    }
    std::fs::create_dir_all(root.join("nix/store")).unwrap();
    run_ok(copy.arg(root.join("nix/store")));
    let weird = path_info_validity(None, fixture_system())
        .into_keys()
        .find(|p| p.ends_with("-weird-names"))
        .unwrap();
    let secret = root.join(format!(
        "{}/share/doc/README",
        weird.trim_start_matches('/')
    ));
    run_ok(Command::new("chmod").args(["-R", "a+rX,u+w", dir.path().to_str().unwrap()]));
    run_ok(Command::new("chmod").arg("000").arg(&secret));
    run_ok(Command::new("chmod").arg("777").arg(&output.dir));

    let result = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_wsl-tarball"))
        .args(fixture_write_args(&closure))
        .arg("--store-root")
        .arg(&root)
        .arg("-o")
        .arg(&output.existing)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(!result.status.success());
    assert!(
        stderr.contains("share/doc/README") && stderr.contains("ermission denied"),
        "{stderr}"
    );
    output.assert_untouched();
}

#[test]
fn a_missing_output_directory_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let closure = fixture_closure_file(dir.path());
    let output = dir.path().join("no-such-dir/nixos.wsl");
    let mut args = fixture_write_args(&closure).to_vec();
    args.extend(["-o", output.to_str().unwrap()]);
    let result = run_wsl_tarball(&args);
    assert!(!result.status.success());
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(
        stderr.contains("no-such-dir") && stderr.contains("does not exist"),
        "{stderr}"
    );
}

#[test]
fn a_full_disk_fails_cleanly() {
    // RLIMIT_FSIZE makes writes past 64 KiB fail with EFBIG, as a full disk
    // fails them with ENOSPC: the write path is the same.
    let dir = tempfile::tempdir().unwrap();
    let closure = fixture_closure_file(dir.path());
    let output = GuardedOutput::new(dir.path());
    let script = format!(
        "trap '' XFSZ; ulimit -f 64; exec {} write --no-skeleton --closure {} --system {} -o {} --compression none",
        env!("CARGO_BIN_EXE_wsl-tarball"),
        closure,
        fixture_system(),
        output.existing.display()
    );
    let result = Command::new("bash").args(["-c", &script]).output().unwrap();
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(!result.status.success(), "{stderr}");
    assert!(
        stderr.contains("File too large") && stderr.contains("nixos.wsl"),
        "{stderr}"
    );
    output.assert_untouched();
}

#[test]
#[allow(unsafe_code)] // kill(2) to interrupt the child under test
fn an_interrupted_run_leaves_no_partial_file() {
    let dir = tempfile::tempdir().unwrap();
    let closure = fixture_closure_file(dir.path());
    let output = GuardedOutput::new(dir.path());
    // 32 MiB of noise through xz -9 on one thread takes many seconds: long
    // enough to interrupt the run once its temporary file exists.
    let extra = dir.path().join("extra");
    std::fs::create_dir_all(&extra).unwrap();
    run_ok(
        Command::new("head")
            .args(["-c", "33554432", "/dev/urandom"])
            .stdout(std::fs::File::create(extra.join("noise")).unwrap()),
    );
    let mut child = wsl_tarball()
        .args(fixture_write_args(&closure))
        .args(["--compression", "xz", "--level", "9", "--threads", "1"])
        .arg("--extra-files")
        .arg(&extra)
        .arg("-o")
        .arg(&output.existing)
        .spawn()
        .unwrap();
    // The temporary file is unnamed: wait until the run has it open.
    wait_for_open_file_in(
        child.id(),
        &output.dir,
        std::time::Duration::from_secs(30),
        || child.try_wait().unwrap().is_none(),
    );
    // SAFETY: plain kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    assert!(!status.success());
    output.assert_untouched();
}

#[test]
fn a_result_link_is_followed_into_the_store_as_nix_follows_it() {
    let dir = tempfile::tempdir().unwrap();
    let closure = fixture_closure_file(dir.path());
    let system = fixture_system();
    // `nix build`'s `result`, and a link to it, relative to the working
    // directory, with and without a trailing slash.
    std::os::unix::fs::symlink(system, dir.path().join("result")).unwrap();
    std::os::unix::fs::symlink("result", dir.path().join("again")).unwrap();
    for (given, name) in [
        ("result", "a.wsl"),
        ("result/", "b.wsl"),
        ("./again", "c.wsl"),
    ] {
        let run = wsl_tarball()
            .current_dir(dir.path())
            .args(["write", "--quiet", "--no-skeleton", "--closure", &closure])
            .args(["--system", given, "-o", name])
            .output()
            .unwrap();
        assert!(
            run.status.success(),
            "--system {given}: {}",
            String::from_utf8_lossy(&run.stderr)
        );
    }
    assert_eq!(
        std::fs::read(dir.path().join("a.wsl")).unwrap(),
        std::fs::read(dir.path().join("c.wsl")).unwrap()
    );

    // A link to a path below a store path: the error names the store path.
    let inside = std::fs::read_dir(system)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let below = dir.path().join("below");
    std::os::unix::fs::symlink(&inside, &below).unwrap();
    assert_fails(
        dir.path(),
        &["--closure", &closure, "--system", below.to_str().unwrap()],
        &["--system", &format!("inside store path {system}")],
    );
    // A link that leads out of the store is named.
    let outside = dir.path().join("outside");
    std::os::unix::fs::symlink("/tmp", &outside).unwrap();
    assert_fails(
        dir.path(),
        &["--closure", &closure, "--system", outside.to_str().unwrap()],
        &[outside.to_str().unwrap(), "not inside the store directory"],
    );
}
