//! `wsl-tarball write` against a real closure built by Nix, judged by real
//! Nix and real GNU tar.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use common::*;

/// The `--store` argument for the Nix store extracted into ROOT.
fn store_in(root: &Path) -> String {
    format!("local?root={}", root.display())
}

/// `nix-store --verify --check-contents` of the store extracted into ROOT.
fn nix_verify(root: &Path) -> std::process::Output {
    nix_command("nix-store")
        .args(["--verify", "--check-contents", "--store", &store_in(root)])
        .output()
        .unwrap()
}

/// An unrun uncompressed `write` of SYSTEM's CLOSURE to OUTPUT.
fn uncompressed_write(system: &str, closure: &Path, output: &Path) -> Command {
    let mut command = wsl_tarball();
    command
        .args([
            "write",
            "--compression",
            "none",
            "--quiet",
            "--no-skeleton",
            "--system",
            system,
        ])
        .arg("--closure")
        .arg(closure)
        .arg("-o")
        .arg(output);
    command
}

/// Each member of the plain tar file TARBALL: its path (long names
/// resolved) and its header.
fn members(tarball: &Path) -> Vec<(Vec<u8>, tar::Header)> {
    let bytes = std::fs::read(tarball).unwrap();
    let mut archive = tar::Archive::new(bytes.as_slice());
    archive
        .entries()
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            (entry.path_bytes().into_owned(), entry.header().clone())
        })
        .collect()
}

#[test]
fn extracted_tarball_is_a_valid_nix_store_with_the_same_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let tarball = write_fixture(dir.path(), "nixos.wsl", &[]);
    run_ok(Command::new("gzip").arg("-t").arg(&tarball));
    let plain = dir.path().join("plain.tar");
    std::fs::write(
        &plain,
        run_ok(Command::new("gzip").arg("-dc").arg(&tarball)),
    )
    .unwrap();

    let root = dir.path().join("root");
    extract(&plain, &root);
    let store = store_in(&root);
    let verify = nix_verify(&root);
    assert!(verify.status.success(), "{verify:?}");
    assert!(
        verify.stderr.is_empty() || !String::from_utf8_lossy(&verify.stderr).contains("error"),
        "nix-store --verify complained: {}",
        String::from_utf8_lossy(&verify.stderr)
    );

    let system = fixture_system();
    let source = path_info_validity(None, system);
    let imported = path_info_validity(Some(&store), system);
    assert_eq!(imported, source);
    assert!(
        source.len() >= 5,
        "the fixture closure has {} paths",
        source.len()
    );

    let profile = root.join("nix/var/nix/profiles/system");
    assert_eq!(
        std::fs::read_link(&profile).unwrap(),
        Path::new("system-1-link")
    );
    assert_eq!(
        std::fs::read_link(root.join("nix/var/nix/profiles/system-1-link")).unwrap(),
        Path::new(system)
    );
    assert_eq!(
        std::fs::read_to_string(root.join("nix/var/nix/db/schema"))
            .unwrap()
            .trim(),
        "10"
    );
    let store_mode = std::fs::metadata(root.join("nix/store")).unwrap().mode() & 0o7777;
    assert_eq!(store_mode, 0o1775);
}

#[test]
fn uncompressed_stream_is_byte_identical_to_gnu_tar_of_the_same_tree() {
    let dir = tempfile::tempdir().unwrap();
    let tarball = write_fixture(dir.path(), "plain.tar", &["--compression", "none"]);
    let root = dir.path().join("root");
    extract(&tarball, &root);
    let ours = std::fs::read(&tarball).unwrap();
    let reference = gnu_tar_reference(&root);
    assert_eq!(ours.len(), reference.len(), "archive sizes differ");
    if let Some(offset) = ours.iter().zip(&reference).position(|(a, b)| a != b) {
        let block = offset / 512 * 512;
        panic!(
            "first difference at byte {offset}; our block: {:?}\nGNU tar's block: {:?}",
            String::from_utf8_lossy(&ours[block..block + 512]),
            String::from_utf8_lossy(&reference[block..block + 512])
        );
    }
}

#[test]
fn archive_has_no_hard_links_and_every_directory_is_an_entry() {
    let dir = tempfile::tempdir().unwrap();
    let tarball = write_fixture(dir.path(), "plain.tar", &["--compression", "none"]);
    let mut names = Vec::new();
    for (name, header) in members(&tarball) {
        assert_ne!(
            header.entry_type(),
            tar::EntryType::Link,
            "hard link in the archive"
        );
        assert_eq!(header.mtime().unwrap(), 1);
        assert_eq!(header.username_bytes(), Some(&b""[..]));
        names.push(name);
    }
    for name in &names {
        let trimmed = name.strip_suffix(b"/").unwrap_or(name);
        if let Some(slash) = trimmed.iter().rposition(|&b| b == b'/') {
            let mut parent = trimmed[..=slash].to_vec();
            if parent == b"./" {
                parent = b"./".to_vec();
            }
            assert!(
                names.contains(&parent),
                "no entry for the parent of {:?}",
                String::from_utf8_lossy(name)
            );
        }
    }
    // Both names of the hard-linked pair are written whole.
    let whole = names
        .iter()
        .filter(|n| n.ends_with(b"share/hardlink-a") || n.ends_with(b"share/hardlink-b"))
        .count();
    assert_eq!(whole, 2);
    assert!(names.iter().any(|n| n.ends_with(b"\xff\xfe-raw")));
}

#[test]
fn same_bytes_across_runs_threads_and_environment() {
    let dir = tempfile::tempdir().unwrap();
    let first = std::fs::read(write_fixture(dir.path(), "t1.wsl", &["--threads", "1"])).unwrap();
    for threads in ["2", "8"] {
        let name = format!("t{threads}.wsl");
        let again =
            std::fs::read(write_fixture(dir.path(), &name, &["--threads", threads])).unwrap();
        assert!(again == first, "--threads {threads} changed the bytes");
    }

    // Another umask, TMPDIR and locale must not change a byte either.
    let system = fixture_system();
    let closure = write_path_info(system, dir.path());
    let other_tmp = dir.path().join("other-tmp");
    std::fs::create_dir(&other_tmp).unwrap();
    let output = dir.path().join("env.wsl");
    let script = format!(
        "umask 077; exec {} write --no-skeleton --closure {} --system {} -o {} --quiet",
        env!("CARGO_BIN_EXE_wsl-tarball"),
        closure.display(),
        system,
        output.display()
    );
    run_ok(
        Command::new("sh")
            .args(["-c", &script])
            .env("TMPDIR", &other_tmp)
            .env("LC_ALL", "C.UTF-8")
            .env("TZ", "Pacific/Kiritimati")
            .env_remove("SOURCE_DATE_EPOCH"),
    );
    assert_verifies(&output, Rootfs::Bare);
    assert!(
        std::fs::read(&output).unwrap() == first,
        "umask/TMPDIR/locale changed the bytes"
    );
}

#[test]
fn mtime_comes_from_source_date_epoch_or_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let system = fixture_system();
    let closure = write_path_info(system, dir.path());
    let output = dir.path().join("epoch.tar");
    run_ok(uncompressed_write(system, &closure, &output).env("SOURCE_DATE_EPOCH", "1700000000"));
    assert_verifies(&output, Rootfs::Bare);
    for (_, header) in members(&output) {
        assert_eq!(header.mtime().unwrap(), 1_700_000_000);
    }
}

#[test]
fn extra_files_and_chown_land_in_the_rootfs() {
    let dir = tempfile::tempdir().unwrap();
    let extra = dir.path().join("extra");
    std::fs::create_dir_all(extra.join("home/nixos/.config")).unwrap();
    std::fs::write(extra.join("home/nixos/.config/settings"), b"x=1\n").unwrap();
    std::fs::create_dir_all(extra.join("etc")).unwrap();
    std::fs::write(extra.join("etc/motd"), b"welcome\n").unwrap();
    let tarball = write_fixture(
        dir.path(),
        "extra.tar",
        &[
            "--compression",
            "none",
            "--extra-files",
            extra.to_str().unwrap(),
            "--chown",
            "/home/nixos",
            "1000:100",
        ],
    );
    let mut seen = std::collections::BTreeMap::new();
    for (name, header) in members(&tarball) {
        seen.insert(
            String::from_utf8_lossy(&name).into_owned(),
            (header.uid().unwrap(), header.gid().unwrap()),
        );
    }
    assert_eq!(seen["./home/nixos/"], (1000, 100));
    assert_eq!(seen["./home/nixos/.config/settings"], (1000, 100));
    assert_eq!(seen["./home/"], (0, 0));
    assert_eq!(seen["./etc/motd"], (0, 0));
}

#[test]
fn registration_mode_writes_a_loadable_registration_file() {
    let dir = tempfile::tempdir().unwrap();
    let tarball = write_fixture(
        dir.path(),
        "reg.tar",
        &["--compression", "none", "--nix-db", "registration"],
    );
    let root = dir.path().join("root");
    extract(&tarball, &root);
    assert!(!root.join("nix/var/nix/db/db.sqlite").exists());
    let registration = std::fs::read(root.join("nix-path-registration")).unwrap();
    let store = store_in(&root);
    let mut load = nix_command("nix-store");
    load.args(["--load-db", "--store", &store]);
    let mut child = load.stdin(std::process::Stdio::piped()).spawn().unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&registration)
        .unwrap();
    assert!(child.wait().unwrap().success());
    let system = fixture_system();
    assert_eq!(
        path_info_validity(Some(&store), system),
        path_info_validity(None, system)
    );
}

#[test]
fn store_root_reads_an_extracted_store_and_gives_the_same_tarball() {
    // Extract our tarball, then write again reading the store from the
    // extracted root (as for `--store local?root=DIR`): the same bytes.
    let dir = tempfile::tempdir().unwrap();
    let original = write_fixture(dir.path(), "first.tar", &["--compression", "none"]);
    let root = dir.path().join("root");
    extract(&original, &root);
    let system = fixture_system();
    let store = store_in(&root);
    let closure = dir.path().join("from-root.json");
    std::fs::write(
        &closure,
        run_ok(nix_command("nix").args(["path-info", "--json", "-r", "--store", &store, system])),
    )
    .unwrap();
    let again = dir.path().join("again.tar");
    run_ok(
        uncompressed_write(system, &closure, &again)
            .arg("--store-root")
            .arg(&root),
    );
    assert_verifies(&again, Rootfs::Bare);
    assert!(std::fs::read(&again).unwrap() == std::fs::read(&original).unwrap());
}

#[test]
fn bsdtar_reads_every_member_gnu_tar_reads() {
    let dir = tempfile::tempdir().unwrap();
    let tarball = write_fixture(dir.path(), "nixos.wsl", &[]);
    let gnu = run_text(Command::new("tar").arg("-tzf").arg(&tarball));
    let bsd = run_text(Command::new("bsdtar").arg("-tzf").arg(&tarball));
    assert_eq!(bsd.lines().count(), gnu.lines().count());
    let root = dir.path().join("bsd-root");
    std::fs::create_dir(&root).unwrap();
    run_ok(
        Command::new("bsdtar")
            .arg("-xpf")
            .arg(&tarball)
            .arg("-C")
            .arg(&root),
    );
    let verify = nix_verify(&root);
    assert!(verify.status.success(), "{verify:?}");
}
