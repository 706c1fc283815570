//! `--cache DIR`: store paths compressed once and spliced in later, with
//! output byte-identical to a build without the cache; the size limit and
//! its least-recently-used eviction; `build`'s default cache.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

fn write_with(dir: &Path, system: &str, name: &str, cache: Option<&Path>) -> Vec<u8> {
    let (mut command, output) = quiet_write_command(dir, system, name);
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

/// The files of a directory and their bytes.
fn contents(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    dir_names(dir)
        .into_iter()
        .map(|name| {
            let bytes = std::fs::read(dir.join(&name)).unwrap();
            (name, bytes)
        })
        .collect()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `write --no-skeleton` of `system` (not quiet), with `extra` arguments.
fn write_command(dir: &Path, system: &str, output: &Path, extra: &[&str]) -> Output {
    let closure_dir = tempfile::tempdir_in(dir).unwrap();
    let closure = write_path_info(system, closure_dir.path());
    wsl_tarball()
        .args(["write", "--no-skeleton", "--system", system, "--closure"])
        .arg(&closure)
        .arg("-o")
        .arg(output)
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn the_limit_evicts_the_least_recently_used_segments_after_the_write() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let cache_arg = cache.to_str().unwrap();
    write_with(dir.path(), fixture_system(), "first.wsl", Some(&cache));
    let first = dir_names(&cache);
    // The segments of the changed closure alone, and their size.
    let changed = build_fixture("changed");
    let alone = dir.path().join("alone");
    let changed_cold = write_with(dir.path(), &changed, "alone.wsl", Some(&alone));
    let second = dir_names(&alone);
    let second_bytes: u64 = contents(&alone).values().map(|b| b.len() as u64).sum();
    let shared = first.iter().filter(|name| second.contains(name)).count();
    assert_eq!(
        shared, 2,
        "the two content-addressed paths: {first:?} {second:?}"
    );

    // The changed closure uses the shared segments (a hit marks them used)
    // and stores its own; the first run's others are the least recently
    // used, and exactly they go.
    let output = dir.path().join("changed.wsl");
    let limit = second_bytes.to_string();
    let run = write_command(
        dir.path(),
        &changed,
        &output,
        &["--cache", cache_arg, "--cache-limit", &limit],
    );
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(std::fs::read(&output).unwrap() == changed_cold);
    assert_eq!(dir_names(&cache), second);
    assert_eq!(contents(&cache), contents(&alone));
    let removed = first.len() - shared;
    assert!(
        stderr(&run).contains(&format!(
            "cache {cache_arg}: {} of segments, limit {}; removed {removed} least recently used (",
            wsl_tarball::progress::human_bytes(second_bytes),
            wsl_tarball::progress::human_bytes(second_bytes),
        )),
        "{}",
        stderr(&run)
    );

    // --quiet says nothing of it; a limit of 0 empties the cache.
    let run = write_command(
        dir.path(),
        &changed,
        &output,
        &["--quiet", "--cache", cache_arg, "--cache-limit", "0"],
    );
    assert!(run.status.success(), "{}", stderr(&run));
    assert_eq!(stderr(&run), "");
    assert!(std::fs::read(&output).unwrap() == changed_cold);
    assert_eq!(dir_names(&cache), Vec::<String>::new());
}

#[test]
fn a_failed_write_leaves_the_cache_as_it_was_but_for_valid_new_segments() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let cache_arg = cache.to_str().unwrap();
    let changed = build_fixture("changed");
    write_with(dir.path(), &changed, "changed.wsl", Some(&cache));
    std::fs::write(cache.join("notes.txt"), b"not a segment").unwrap();
    let before = contents(&cache);

    // An error-severity finding in the shared note: nothing is committed,
    // and the limit of 0 is never applied.
    let output = dir.path().join("failed.wsl");
    let failed = write_command(
        dir.path(),
        fixture_system(),
        &output,
        &[
            "--cache",
            cache_arg,
            "--cache-limit",
            "0",
            "--strict",
            "--pattern",
            "a text file made by builtins.toFile",
        ],
    );
    assert_eq!(failed.status.code(), Some(3), "{}", stderr(&failed));
    assert!(!output.exists());
    assert!(!stderr(&failed).contains("cache "), "{}", stderr(&failed));
    let after = contents(&cache);
    for (name, bytes) in &before {
        assert!(after.get(name) == Some(bytes), "{name} changed or went");
    }
    let new: Vec<&String> = after.keys().filter(|n| !before.contains_key(*n)).collect();
    let paths = path_info_validity(None, fixture_system()).len();
    // The pattern is part of the scan rules, which every key includes: no
    // segment of the first write is reused, and every path gets its own.
    assert_eq!(new.len(), paths, "one new segment per path: {new:?}");
    assert!(new
        .iter()
        .all(|name| !name.starts_with('.') && name.ends_with(".seg")));

    // The new segments are whole: a write from them (the same rules, the
    // finding now a warning without --strict) reports no damage, stores
    // nothing, and makes the cold build's bytes.
    let cold = write_with(dir.path(), fixture_system(), "cold.wsl", None);
    let output = dir.path().join("warm.wsl");
    let warm = write_command(
        dir.path(),
        fixture_system(),
        &output,
        &[
            "--cache",
            cache_arg,
            "--pattern",
            "a text file made by builtins.toFile",
        ],
    );
    assert!(warm.status.success(), "{}", stderr(&warm));
    assert!(!stderr(&warm).contains("damaged"), "{}", stderr(&warm));
    assert!(std::fs::read(&output).unwrap() == cold);
    assert_eq!(contents(&cache), after);
}

#[test]
fn cache_limit_values_are_checked_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let output = dir.path().join("x.wsl");
    for (value, why) in [
        ("10X", "not a size: give bytes, or a whole number followed by K, M, G or T (powers of 1024), such as 500M or 10G"),
        ("1.5G", "not a size"),
        ("", "not a size"),
        ("-1", "not a size"),
        ("16777216T", "more than 2^64 bytes"),
    ] {
        let write = ["write", "--closure", "/dev/zero", "--system", "/nix/store/x"];
        for command in [&write[..], &["build"]] {
            let run = wsl_tarball()
                .args(command)
                .arg("--cache")
                .arg(&cache)
                .arg("-o")
                .arg(&output)
                .arg(format!("--cache-limit={value}"))
                .current_dir(dir.path())
                .output()
                .unwrap();
            let stderr = stderr(&run);
            assert_eq!(run.status.code(), Some(2), "{command:?} {value}: {stderr}");
            assert!(
                stderr.contains(&format!("invalid value '{value}' for '--cache-limit <SIZE>': {why}")),
                "{command:?} {value:?}: {stderr}"
            );
        }
    }
    // `write` has no cache of its own to limit.
    let run = wsl_tarball()
        .args([
            "write",
            "--closure",
            "/dev/zero",
            "--system",
            "/nix/store/x",
        ])
        .arg("-o")
        .arg(&output)
        .args(["--cache-limit", "1G"])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2), "{}", stderr(&run));
    assert_eq!(
        stderr(&run).trim_end(),
        "wsl-tarball: error: --cache-limit applies to a cache, and `write` has none unless --cache DIR is given"
    );
    // An update bundle has no cache.
    let run = wsl_tarball()
        .args(["build", "--delta-from", "old.wsl", "--cache-limit", "1G"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1), "{}", stderr(&run));
    assert!(
        stderr(&run).contains("--cache and --cache-limit do not apply to it"),
        "{}",
        stderr(&run)
    );
    // --no-cache excludes both.
    for flag in [["--cache", "cache"], ["--cache-limit", "1G"]] {
        let run = wsl_tarball()
            .args(["build", "--no-cache"])
            .args(flag)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert_eq!(run.status.code(), Some(2), "{}", stderr(&run));
        assert!(
            stderr(&run).contains(&format!(
                "the argument '--no-cache' cannot be used with '{}",
                flag[0]
            )),
            "{}",
            stderr(&run)
        );
    }
    assert_eq!(dir_names(dir.path()), Vec::<String>::new());
}

/// `build fake` from the test flake into `output`, with HOME set to
/// `home` and XDG_CACHE_HOME to `xdg` (unset when `None`).
fn build_fake(home: &Path, xdg: Option<&Path>, output: &Path, extra: &[&str]) -> Output {
    let mut command = wsl_tarball();
    command
        .env("NIX_CONFIG", NIX_CONFIG)
        .env("HOME", home)
        .env_remove("XDG_CACHE_HOME")
        .args(["build", "fake", "--flake"])
        .arg(format!("path:{}", repo_root().join("tests/nix").display()))
        .arg("-o")
        .arg(output)
        .args(extra);
    if let Some(xdg) = xdg {
        command.env("XDG_CACHE_HOME", xdg);
    }
    command.output().unwrap()
}

/// The store paths of the fake host's closure.
fn fake_closure_len() -> usize {
    path_info_validity(None, &build_fake_host_output("toplevel")).len()
}

fn segments_in(dir: &Path) -> Vec<String> {
    dir_names(dir)
        .into_iter()
        .filter(|name| name.ends_with(".seg"))
        .collect()
}

#[test]
fn build_caches_in_xdg_cache_home_by_default_and_no_cache_opts_out() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let paths = fake_closure_len();
    let at = |name: &str| -> PathBuf { dir.path().join(name) };

    // $XDG_CACHE_HOME/wsl-tarball, not ~/.cache.
    let xdg = at("xdg");
    let cache = xdg.join("wsl-tarball");
    let run = build_fake(&home, Some(&xdg), &at("cold.wsl"), &[]);
    assert!(run.status.success(), "{}", stderr(&run));
    let cold = std::fs::read(at("cold.wsl")).unwrap();
    assert_eq!(
        segments_in(&cache).len(),
        paths,
        "one segment per store path"
    );
    assert_eq!(segments_in(&cache), dir_names(&cache));
    assert!(!home.join(".cache/wsl-tarball").exists());
    assert!(
        stderr(&run).contains(&format!("cache {}: ", cache.display())),
        "{}",
        stderr(&run)
    );
    assert!(
        stderr(&run).contains(", limit 10.0 GiB\n"),
        "{}",
        stderr(&run)
    );
    let filled = contents(&cache);
    let run = build_fake(&home, Some(&xdg), &at("warm.wsl"), &["--quiet"]);
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(std::fs::read(at("warm.wsl")).unwrap() == cold);
    assert_eq!(contents(&cache), filled);

    // Without XDG_CACHE_HOME: ~/.cache/wsl-tarball.
    let run = build_fake(&home, None, &at("home.wsl"), &["--quiet"]);
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(std::fs::read(at("home.wsl")).unwrap() == cold);
    assert_eq!(contents(&home.join(".cache/wsl-tarball")), filled);

    // --no-cache, xz and --delta-from use none; an explicit --cache wins.
    let fresh = at("fresh");
    for (name, extra) in [
        ("opted-out.wsl", vec!["--no-cache"]),
        ("xz.wsl", vec!["--compression", "xz", "--quiet"]),
        (
            "bundle.wsl-delta",
            vec!["--delta-from", at("cold.wsl").to_str().unwrap(), "--quiet"],
        ),
    ] {
        let run = build_fake(&home, Some(&fresh), &at(name), &extra);
        assert!(run.status.success(), "{extra:?}: {}", stderr(&run));
        assert!(!fresh.join("wsl-tarball").exists(), "{extra:?}");
        assert!(
            !stderr(&run).contains("cache"),
            "{extra:?}: {}",
            stderr(&run)
        );
    }
    assert!(std::fs::read(at("opted-out.wsl")).unwrap() == cold);
    let explicit = at("explicit");
    let run = build_fake(
        &home,
        Some(&fresh),
        &at("explicit.wsl"),
        &["--quiet", "--cache", explicit.to_str().unwrap()],
    );
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(!fresh.join("wsl-tarball").exists());
    assert_eq!(contents(&explicit), filled);

    // An explicit --cache with xz stays an error; a default one that
    // cannot be used is a warning, and the build goes on without it.
    let run = build_fake(
        &home,
        Some(&fresh),
        &at("xz-cache.wsl"),
        &["--compression", "xz", "--cache", explicit.to_str().unwrap()],
    );
    assert_eq!(run.status.code(), Some(2), "{}", stderr(&run));
    assert!(
        stderr(&run).contains("--cache works with gzip only"),
        "{}",
        stderr(&run)
    );
    assert!(!at("xz-cache.wsl").exists());
    let blocked = at("blocked");
    std::fs::create_dir(&blocked).unwrap();
    std::fs::write(blocked.join("wsl-tarball"), b"a file").unwrap();
    let run = build_fake(&home, Some(&blocked), &at("blocked.wsl"), &[]);
    assert!(run.status.success(), "{}", stderr(&run));
    let default = blocked.join("wsl-tarball");
    assert!(
        stderr(&run).contains(&format!(
            "wsl-tarball: warning: not using the default cache {0}: cache directory {0}: Not a directory (os error 20); writing without a cache",
            default.display()
        )),
        "{}",
        stderr(&run)
    );
    assert!(std::fs::read(at("blocked.wsl")).unwrap() == cold);
    assert_eq!(std::fs::read(&default).unwrap(), b"a file");
}

#[test]
fn a_cache_hit_reads_nothing_of_its_store_path_and_replays_its_findings() {
    let dir = tempfile::tempdir().unwrap();
    let plain = write_fixture(dir.path(), "plain.tar", &["--compression", "none"]);
    let root = dir.path().join("root");
    extract(&plain, &root);
    let root_arg = root.to_str().unwrap();
    let cache = dir.path().join("cache");
    let cache_arg = cache.to_str().unwrap();
    // A pattern that ships in a store path: a warning in the report.
    let args = [
        "--store-root",
        root_arg,
        "--cache",
        cache_arg,
        "--json",
        "--pattern",
        "a text file made by builtins.toFile",
    ];
    let cold_output = dir.path().join("cold.wsl");
    let cold = write_command(dir.path(), fixture_system(), &cold_output, &args);
    assert!(cold.status.success(), "{}", stderr(&cold));
    let cold_report: serde_json::Value = serde_json::from_slice(&cold.stdout).unwrap();
    assert!(
        !cold_report["findings"].as_array().unwrap().is_empty(),
        "{cold_report}"
    );

    // Every file of every store path changes (same length, other bytes):
    // a write that read any of them would fail its NAR hash, or scan other
    // bytes.
    let mut changed = 0;
    for file in walk_files(&root.join("nix/store")) {
        let mut bytes = std::fs::read(&file).unwrap();
        if let Some(first) = bytes.first_mut() {
            *first ^= 0x20;
            std::fs::write(&file, &bytes).unwrap();
            changed += 1;
        }
    }
    assert!(changed > 0);
    let uncached = write_command(
        dir.path(),
        fixture_system(),
        &dir.path().join("uncached.wsl"),
        &["--store-root", root_arg],
    );
    assert_eq!(uncached.status.code(), Some(1), "{}", stderr(&uncached));
    assert!(stderr(&uncached).contains("is not what the closure says"));

    let warm_output = dir.path().join("warm.wsl");
    let warm = write_command(dir.path(), fixture_system(), &warm_output, &args);
    assert!(warm.status.success(), "{}", stderr(&warm));
    let warm_report: serde_json::Value = serde_json::from_slice(&warm.stdout).unwrap();
    assert_eq!(warm_report, cold_report);
    assert!(std::fs::read(&warm_output).unwrap() == std::fs::read(&cold_output).unwrap());
    assert_verifies(&warm_output, Rootfs::Bare);
}

/// Every regular file below `dir`.
fn walk_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let kind = std::fs::symlink_metadata(&path).unwrap().file_type();
        if kind.is_dir() {
            files.extend(walk_files(&path));
        } else if kind.is_file() {
            files.push(path);
        }
    }
    files
}
