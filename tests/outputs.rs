//! Outputs, transactions, signals, the cache's integrity, threads and pipes:
//! every failure leaves the disk as it was and says what went wrong.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;

/// Bytes of the previous good files a failed run must leave alone.
const OLD_TARBALL: &[u8] = b"previous good tarball";
const OLD_MANIFEST: &[u8] = b"{\"previous\": \"manifest\"}";

/// A directory holding an old `nixos.wsl` and `manifest.json`.
struct Destination {
    dir: PathBuf,
    tarball: PathBuf,
    manifest: PathBuf,
}

impl Destination {
    fn new(parent: &Path) -> Self {
        let dir = parent.join("out");
        std::fs::create_dir_all(&dir).unwrap();
        let tarball = dir.join("nixos.wsl");
        let manifest = dir.join("manifest.json");
        std::fs::write(&tarball, OLD_TARBALL).unwrap();
        std::fs::write(&manifest, OLD_MANIFEST).unwrap();
        Destination {
            dir,
            tarball,
            manifest,
        }
    }

    /// Both old files are intact and nothing else is in the directory.
    fn assert_untouched(&self) {
        assert_eq!(std::fs::read(&self.tarball).unwrap(), OLD_TARBALL);
        assert_eq!(std::fs::read(&self.manifest).unwrap(), OLD_MANIFEST);
        assert_eq!(dir_names(&self.dir), vec!["manifest.json", "nixos.wsl"]);
    }
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// The fixture's closure file in `dir`.
fn closure_file(dir: &Path) -> PathBuf {
    write_path_info(fixture_system(), dir)
}

/// `write` of the fixture closure (closure file in `dir`) with `args`.
fn write_args(dir: &Path, args: &[&str]) -> Output {
    let closure = closure_file(dir);
    let mut full = vec![
        "write",
        "--quiet",
        "--closure",
        s(&closure),
        "--system",
        fixture_system(),
    ];
    full.extend_from_slice(args);
    run_wsl_tarball(&full)
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts the exit code and that stderr holds every needle.
fn assert_exit(output: &Output, code: i32, needles: &[&str]) {
    let text = stderr(output);
    assert_eq!(output.status.code(), Some(code), "stderr:\n{text}");
    for needle in needles {
        assert!(text.contains(needle), "stderr lacks {needle:?}:\n{text}");
    }
    assert!(!text.contains("panicked"), "a panic:\n{text}");
}

#[test]
fn system_with_a_trailing_slash_is_the_store_path_itself() {
    let dir = tempfile::tempdir().unwrap();
    let plain = write_fixture(dir.path(), "plain.wsl", &[]);
    let slashed = dir.path().join("slashed.wsl");
    let system = format!("{}/", fixture_system());
    let closure = closure_file(dir.path());
    let result = run_wsl_tarball(&[
        "write",
        "--quiet",
        "--closure",
        s(&closure),
        "--system",
        &system,
        "-o",
        s(&slashed),
    ]);
    assert_exit(&result, 0, &[]);
    assert!(std::fs::read(&plain).unwrap() == std::fs::read(&slashed).unwrap());
}

#[test]
fn system_below_a_store_path_names_the_store_path() {
    let dir = tempfile::tempdir().unwrap();
    let destination = Destination::new(dir.path());
    let closure = closure_file(dir.path());
    let init = format!("{}/init", fixture_system());
    let result = run_wsl_tarball(&[
        "write",
        "--closure",
        s(&closure),
        "--system",
        &init,
        "-o",
        s(&destination.tarball),
    ]);
    let expected = format!(
        "is inside store path {}; give the store path itself",
        fixture_system()
    );
    assert_exit(&result, 1, &[&init, &expected]);
    destination.assert_untouched();
}

#[test]
fn an_endless_closure_file_fails_fast_naming_it_and_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let destination = Destination::new(dir.path());
    let started = std::time::Instant::now();
    let result = run_wsl_tarball(&[
        "write",
        "--closure",
        "/dev/zero",
        "--system",
        fixture_system(),
        "-o",
        s(&destination.tarball),
    ]);
    assert_exit(
        &result,
        1,
        &["/dev/zero is larger than the limit of 268435456 bytes for a closure file"],
    );
    assert!(started.elapsed().as_secs() < 20, "{:?}", started.elapsed());
    destination.assert_untouched();
}
