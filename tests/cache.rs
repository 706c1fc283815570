//! `--cache DIR`: store paths compressed once and spliced in later, with
//! output byte-identical to a build without the cache.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

fn write_with(dir: &Path, system: &str, name: &str, cache: Option<&Path>) -> Vec<u8> {
    let closure_dir = dir.join(format!("closure-{name}"));
    std::fs::create_dir_all(&closure_dir).unwrap();
    let closure = write_path_info(system, &closure_dir);
    let output = dir.join(name);
    let mut command = wsl_tarball();
    command
        .args([
            "write",
            "--quiet",
            "--no-skeleton",
            "--system",
            system,
            "--closure",
        ])
        .arg(&closure)
        .arg("-o")
        .arg(&output);
    if let Some(cache) = cache {
        command.arg("--cache").arg(cache);
    }
    run_ok(&mut command);
    run_ok(Command::new("gzip").arg("-t").arg(&output));
    assert_verifies(&output, Rootfs::Bare);
    std::fs::read(&output).unwrap()
}

fn segment_files(cache: &Path) -> usize {
    std::fs::read_dir(cache)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "seg")
        })
        .count()
}

#[test]
fn cached_rebuilds_are_byte_identical_to_cold_builds() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let system = fixture_system();
    let paths = path_info_validity(None, system).len();

    let cold = write_with(dir.path(), system, "cold.wsl", None);
    let filling = write_with(dir.path(), system, "filling.wsl", Some(&cache));
    assert!(
        filling == cold,
        "a build that fills the cache differs from a cold one"
    );
    assert_eq!(segment_files(&cache), paths, "one segment per store path");
    let warm = write_with(dir.path(), system, "warm.wsl", Some(&cache));
    assert!(
        warm == cold,
        "a build from the cache differs from a cold one"
    );

    // A changed closure: the salt changes every path but the two
    // content-addressed ones, which come from the cache.
    let changed = build_fixture("changed");
    let changed_paths = path_info_validity(None, &changed).len();
    let changed_cold = write_with(dir.path(), &changed, "changed-cold.wsl", None);
    let changed_warm = write_with(dir.path(), &changed, "changed-warm.wsl", Some(&cache));
    assert!(changed_warm == changed_cold);
    assert_eq!(segment_files(&cache), paths + changed_paths - 2);
}

#[test]
fn a_damaged_cache_entry_is_a_miss() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let system = fixture_system();
    let cold = write_with(dir.path(), system, "cold.wsl", Some(&cache));
    for entry in std::fs::read_dir(&cache).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len().min(12)]).unwrap();
    }
    let again = write_with(dir.path(), system, "again.wsl", Some(&cache));
    assert!(again == cold);
}
