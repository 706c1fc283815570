//! The tarball never lies: what `--chown`, `--extra-files` and the skeleton
//! may put into the rootfs, and every store path checked against the
//! closure's NAR hash and size while it is written. Each refusal exits 1,
//! names the culprit and leaves the destination directory as it was.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// An output directory holding a good `nixos.wsl` that a failed run must
/// leave exactly as it was.
struct Guarded {
    dir: PathBuf,
    existing: PathBuf,
}

const PREVIOUS: &[u8] = b"previous good tarball";

impl Guarded {
    fn new(parent: &Path) -> Self {
        let dir = parent.join("out");
        std::fs::create_dir_all(&dir).unwrap();
        let existing = dir.join("nixos.wsl");
        std::fs::write(&existing, PREVIOUS).unwrap();
        Guarded { dir, existing }
    }

    /// Runs wsl-tarball with `args` plus `-o` this directory's file; it must
    /// exit 1 with every needle in its message, and leave the directory as
    /// it was (the old file intact, no temporary file).
    fn assert_fails(&self, command: &mut Command, args: &[&str], needles: &[&str]) -> String {
        self.assert_exits(1, command, args, needles)
    }

    /// [`Guarded::assert_fails`] with exit status `code`.
    fn assert_exits(
        &self,
        code: i32,
        command: &mut Command,
        args: &[&str],
        needles: &[&str],
    ) -> String {
        let result = command
            .args(args)
            .arg("-o")
            .arg(&self.existing)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&result.stderr).into_owned();
        assert_eq!(result.status.code(), Some(code), "{args:?}: {stderr}");
        for needle in needles {
            assert!(
                stderr.contains(needle),
                "{args:?}: no {needle:?} in\n{stderr}"
            );
        }
        assert_eq!(std::fs::read(&self.existing).unwrap(), PREVIOUS);
        assert_eq!(dir_names(&self.dir), vec!["nixos.wsl"]);
        stderr
    }
}

fn closure_file(dir: &Path) -> String {
    write_path_info(fixture_system(), dir)
        .to_str()
        .unwrap()
        .to_owned()
}

/// `write` of the fixture closure (the rest of the arguments follow).
fn write_command(closure: &str) -> Command {
    let mut command = wsl_tarball();
    command.args(fixture_write_args(closure));
    command
}

/// `build fake` from the test flake: the NixOS skeleton.
fn build_command() -> Command {
    let mut command = wsl_tarball();
    command.env("NIX_CONFIG", NIX_CONFIG).args([
        "build",
        "fake",
        "--flake",
        &format!("path:{}", repo_root().join("tests/nix").display()),
        "--quiet",
    ]);
    command
}

/// A fixture store path by the end of its name.
fn fixture_path(suffix: &str) -> String {
    path_info_validity(None, fixture_system())
        .into_keys()
        .find(|p| p.ends_with(suffix))
        .unwrap()
}

/// An `--extra-files` tree with `content` at rootfs path `path`.
fn extra_tree(dir: &Path, name: &str, path: &str, content: &[u8]) -> PathBuf {
    let root = dir.join(name);
    let file = root.join(path.trim_start_matches('/'));
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, content).unwrap();
    root
}

#[test]
fn chown_may_not_name_nothing_the_root_the_store_or_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let closure = closure_file(dir.path());
    let guarded = Guarded::new(dir.path());
    let self_ref = fixture_path("-self-ref");
    // A rule that cannot be one is bad usage, found before anything is read.
    for (path, needles) in [
        ("", &["--chown path is empty"][..]),
        ("/", &["--chown \"/\"", "whole rootfs", "/nix/store"]),
    ] {
        guarded.assert_exits(
            2,
            &mut write_command(&closure),
            &["--chown", path, "1000:100"],
            needles,
        );
    }
    // One the rootfs rules out fails the run.
    let cases: [(&str, &[&str]); 4] = [
        ("/nix/store", &["--chown /nix/store 1000:100", "the store"]),
        (&self_ref, &[&self_ref, "the store", "root:root"]),
        (
            "/nix/var/nix/db",
            &["--chown /nix/var/nix/db 1000:100", "Nix's database"],
        ),
        (
            "/home/nobody",
            &["--chown /home/nobody 1000:100", "not in the rootfs"],
        ),
    ];
    for (path, needles) in cases {
        guarded.assert_fails(
            &mut write_command(&closure),
            &["--chown", path, "1000:100"],
            needles,
        );
    }
}

#[test]
fn chown_may_not_reach_the_skeletons_user_tables() {
    let dir = tempfile::tempdir().unwrap();
    let guarded = Guarded::new(dir.path());
    guarded.assert_fails(
        &mut build_command(),
        &["--chown", "/etc", "1000:100"],
        &["--chown /etc 1000:100", "/etc/passwd", "root"],
    );
    // A home directory the skeleton makes may be chowned.
    let tarball = dir.path().join("home.wsl");
    run_ok(
        build_command()
            .args(["--chown", "/home/nixos", "1000:100", "-o"])
            .arg(&tarball),
    );
    assert_verifies(&tarball, Rootfs::Skeleton);
}

#[test]
fn extra_files_given_through_a_symlink_land_and_inner_symlinks_stay() {
    let dir = tempfile::tempdir().unwrap();
    let real = extra_tree(dir.path(), "real-extra", "etc/motd", b"welcome\n");
    std::os::unix::fs::symlink("motd", real.join("etc/motd-link")).unwrap();
    let link = dir.path().join("link-to-extra");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let tarball = write_fixture(
        dir.path(),
        "linked.tar",
        &[
            "--compression",
            "none",
            "--extra-files",
            link.to_str().unwrap(),
        ],
    );
    let root = dir.path().join("root");
    extract(&tarball, &root);
    assert_eq!(std::fs::read(root.join("etc/motd")).unwrap(), b"welcome\n");
    assert_eq!(
        std::fs::read_link(root.join("etc/motd-link")).unwrap(),
        Path::new("motd")
    );
}

#[test]
fn skeleton_files_are_replaced_only_with_allow_override() {
    let dir = tempfile::tempdir().unwrap();
    let guarded = Guarded::new(dir.path());
    // `/sbin` links to `/bin` (as upstream's native systemd module makes it),
    // so NixOS-WSL's shim is `/bin/init`.
    for path in ["/bin/init", "/bin/sh", "/etc/passwd"] {
        let extra = extra_tree(dir.path(), &path.replace('/', "_"), path, b"mine\n");
        guarded.assert_fails(
            &mut build_command(),
            &["--extra-files", extra.to_str().unwrap()],
            &[
                &format!("--extra-files: {path} ("),
                "the NixOS skeleton",
                &format!("--allow-override {path}"),
            ],
        );
    }

    // Said on purpose: the replacement lands, and verify still passes.
    let passwd = b"root:x:0:0:System administrator:/root:/run/current-system/sw/bin/bash\n";
    let extra = extra_tree(dir.path(), "own-passwd", "etc/passwd", passwd);
    let tarball = dir.path().join("own-passwd.wsl");
    run_ok(
        build_command()
            .args(["--allow-override", "/etc/passwd", "--extra-files"])
            .arg(&extra)
            .arg("-o")
            .arg(&tarball),
    );
    assert_verifies(&tarball, Rootfs::Skeleton);
    let listed = run_ok(
        Command::new("tar")
            .args(["-xzOf"])
            .arg(&tarball)
            .arg("./etc/passwd"),
    );
    assert_eq!(listed, passwd);

    // A replacement verify would reject is not written: /sbin/init (through
    // the /sbin link, /bin/init) must be executable. An executable one is
    // taken.
    use std::os::unix::fs::PermissionsExt;
    let init = extra_tree(
        dir.path(),
        "own-init",
        "bin/init",
        b"#!/bin/sh\nexec true\n",
    );
    let init_file = init.join("bin/init");
    std::fs::set_permissions(&init_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let override_init = [
        "--allow-override",
        "/bin/init",
        "--extra-files",
        init.to_str().unwrap(),
    ];
    guarded.assert_fails(
        &mut build_command(),
        &override_init,
        &[
            "--allow-override /bin/init",
            "fails verify",
            "/sbin/init resolves to",
            "not an executable file",
        ],
    );
    std::fs::set_permissions(&init_file, std::fs::Permissions::from_mode(0o755)).unwrap();
    let tarball = dir.path().join("own-init.wsl");
    run_ok(build_command().args(override_init).arg("-o").arg(&tarball));
    assert_verifies(&tarball, Rootfs::Skeleton);

    // An override that replaces nothing is named.
    guarded.assert_fails(
        &mut build_command(),
        &[
            "--allow-override",
            "/etc/shadow",
            "--extra-files",
            extra_tree(dir.path(), "motd", "etc/motd", b"hi\n")
                .to_str()
                .unwrap(),
        ],
        &["--allow-override \"/etc/shadow\"", "replaces"],
    );
}

#[test]
fn the_database_the_profiles_and_the_store_can_never_be_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let closure = closure_file(dir.path());
    let guarded = Guarded::new(dir.path());
    let self_ref = fixture_path("-self-ref");
    let store_file = format!("{self_ref}/intruder");
    // (extra file, --nix-db, the member named, what it would replace)
    let cases: [(&str, &str, &str, &str); 5] = [
        (
            "/nix/var/nix/db/db.sqlite",
            "sqlite",
            "/nix/var/nix/db/db.sqlite",
            "Nix's database",
        ),
        (
            "/nix/var/nix/db/db.sqlite-wal",
            "sqlite",
            "/nix/var/nix/db/db.sqlite-wal",
            "Nix's database",
        ),
        (
            "/nix-path-registration",
            "registration",
            "/nix-path-registration",
            "Nix's database",
        ),
        (
            "/nix/var/nix/profiles/system",
            "sqlite",
            "/nix/var/nix/profiles/system",
            "/nix/var/nix/profiles",
        ),
        // The first member below the store is the store path's directory.
        (&store_file, "sqlite", &self_ref, "the store"),
    ];
    for (path, nix_db, named, area) in cases {
        let extra = extra_tree(dir.path(), &path.replace('/', "_"), path, b"forged\n");
        guarded.assert_fails(
            &mut write_command(&closure),
            &[
                "--nix-db",
                nix_db,
                "--extra-files",
                extra.to_str().unwrap(),
                "--allow-override",
                path,
            ],
            &[&format!("--extra-files: {named} ("), area],
        );
    }
}

/// The fake system's facts file, with `change` applied to its JSON.
fn changed_facts(dir: &Path, name: &str, change: impl FnOnce(&mut serde_json::Value)) -> PathBuf {
    let path = build_fake_host_output("wslTarballFacts");
    let mut facts: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    change(&mut facts);
    let file = dir.join(name);
    std::fs::write(&file, serde_json::to_vec(&facts).unwrap()).unwrap();
    file
}

#[test]
fn a_skeleton_path_that_leaves_its_place_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let guarded = Guarded::new(dir.path());
    let escaping_home = changed_facts(dir.path(), "home.json", |facts| {
        facts["users"]["users"][1]["home"] = "/../../etc/x".into();
    });
    let dot_dot_bin = changed_facts(dir.path(), "bin.json", |facts| {
        let sh = facts["bin"][0].clone();
        let mut dot_dot = sh.clone();
        dot_dot["name"] = "..".into();
        facts["bin"].as_array_mut().unwrap().push(dot_dot);
    });
    let system = changed_facts(dir.path(), "plain.json", |_| {});
    let facts: serde_json::Value = serde_json::from_slice(&std::fs::read(system).unwrap()).unwrap();
    let closure_dir = dir.path().join("closure");
    std::fs::create_dir_all(&closure_dir).unwrap();
    let closure = write_path_info(facts["system"].as_str().unwrap(), &closure_dir);
    for (file, needles) in [
        (&escaping_home, &["/.."][..]),
        (&dot_dot_bin, &["..", "bin"][..]),
    ] {
        guarded.assert_fails(
            wsl_tarball()
                .args(["write", "--closure"])
                .arg(&closure)
                .arg("--facts")
                .arg(file),
            &[],
            needles,
        );
    }
}

/// The closure file with `change` applied to the entry of the store path
/// ending in `suffix`.
fn changed_closure(
    dir: &Path,
    suffix: &str,
    change: impl FnOnce(&mut serde_json::Value),
) -> String {
    let closure = closure_file(dir);
    let mut infos: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&closure).unwrap()).unwrap();
    let entry = infos
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|info| info["path"].as_str().unwrap().ends_with(suffix))
        .unwrap();
    change(entry);
    std::fs::write(&closure, serde_json::to_vec(&infos).unwrap()).unwrap();
    closure
}

#[test]
fn a_stale_nar_hash_or_size_in_the_closure_is_named_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let guarded = Guarded::new(dir.path());
    let validity = path_info_validity(None, fixture_system());
    let self_ref = fixture_path("-self-ref");
    let (real_hash, real_size, _) = validity[&self_ref].clone();
    let (other_hash, _, _) = validity[&fixture_path("-weird-names")].clone();

    let stale_hash = changed_closure(dir.path(), "-self-ref", |entry| {
        entry["narHash"] = other_hash.clone().into();
    });
    let stderr = guarded.assert_fails(
        &mut write_command(&stale_hash),
        &[],
        &[&self_ref, &real_hash, &other_hash, "the closure says"],
    );
    assert!(
        stderr.find(&real_hash) < stderr.find(&other_hash),
        "the hash read comes first, the stated one second: {stderr}"
    );

    let stale_size = changed_closure(dir.path(), "-self-ref", |entry| {
        entry["narSize"] = (real_size + 8).into();
    });
    guarded.assert_fails(
        &mut write_command(&stale_size),
        &["--compression", "xz"],
        &[
            &self_ref,
            &format!("({real_size} bytes)"),
            &format!("({} bytes)", real_size + 8),
        ],
    );
}

#[test]
fn a_store_path_changed_under_store_root_is_named_and_a_cache_hit_ships_the_stated_nar() {
    let dir = tempfile::tempdir().unwrap();
    let closure = closure_file(dir.path());
    let original = write_fixture(dir.path(), "first.tar", &["--compression", "none"]);
    let root = dir.path().join("root");
    extract(&original, &root);

    // Fill a cache from the intact copy.
    let cache = dir.path().join("cache");
    let filled = dir.path().join("filled.wsl");
    let write_cached = |output: &Path| {
        run_ok(
            write_command(&closure)
                .arg("--quiet")
                .arg("--store-root")
                .arg(&root)
                .arg("--cache")
                .arg(&cache)
                .arg("-o")
                .arg(output),
        )
    };
    write_cached(&filled);
    assert_verifies(&filled, Rootfs::Bare);

    // Same length, other bytes: only the NAR hash can tell.
    let self_ref = fixture_path("-self-ref");
    let file = root.join(format!("{}/where", self_ref.trim_start_matches('/')));
    let before = std::fs::read(&file).unwrap();
    let mut after = before.clone();
    after[0] ^= 0x01;
    run_ok(Command::new("chmod").arg("u+w").arg(&file));
    std::fs::write(&file, &after).unwrap();

    let (real_hash, _, _) = path_info_validity(None, fixture_system())[&self_ref].clone();
    let guarded = Guarded::new(dir.path());
    let root_arg = root.to_str().unwrap().to_owned();
    let stderr = guarded.assert_fails(
        &mut write_command(&closure),
        &["--store-root", root_arg.as_str()],
        &[&self_ref, &root_arg, &real_hash, "NAR hash is sha256-"],
    );
    let stated = format!("the closure says {real_hash}");
    assert!(stderr.contains(&stated), "{stderr}");

    // A cache hit reads nothing of the store path: the segment stored when
    // its NAR hash was proven ships, so the tarball is still exactly the
    // closure's NAR (the same bytes as before the change), never the
    // changed file.
    let from_cache = dir.path().join("from-cache.wsl");
    write_cached(&from_cache);
    assert_eq!(
        std::fs::read(&from_cache).unwrap(),
        std::fs::read(&filled).unwrap()
    );
    assert_verifies(&from_cache, Rootfs::Bare);
}

#[test]
fn with_every_store_path_stale_the_first_in_archive_order_is_named_for_every_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let guarded = Guarded::new(dir.path());
    let closure = closure_file(dir.path());
    let mut infos: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&closure).unwrap()).unwrap();
    let mut paths = Vec::new();
    for info in infos.as_array_mut().unwrap() {
        paths.push(info["path"].as_str().unwrap().to_owned());
        let size = info["narSize"].as_u64().unwrap();
        info["narSize"] = (size + 8).into();
    }
    std::fs::write(&closure, serde_json::to_vec(&infos).unwrap()).unwrap();
    // Archive order is store-path order (the base names, sorted).
    paths.sort();
    let (first, rest) = paths.split_first().unwrap();
    let mut messages = Vec::new();
    for threads in ["1", "2", "3", "8"] {
        let stderr = guarded.assert_fails(
            &mut write_command(&closure),
            &["--threads", threads],
            &[first, "is not what the closure says"],
        );
        for later in rest {
            assert!(!stderr.contains(later.as_str()), "{threads}: {stderr}");
        }
        messages.push(stderr);
    }
    assert!(
        messages.windows(2).all(|pair| pair[0] == pair[1]),
        "{messages:#?}"
    );
}
