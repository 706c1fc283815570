//! The tarball readers (`inspect`, `verify`, `diff`, `check FILE`) on hostile
//! and clumsy input: the end of the archive and what follows it, memory on
//! huge and many-member archives, standard input and pipes, files that are
//! not tarballs, and how errors name the file.

mod common;

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::*;
use wsl_tarball::tar::{append_header, HeaderFields, MemberKind, BLOCK_SIZE, RECORD_SIZE};

/// What a measured run of the binary gave.
struct Measured {
    status: ExitStatus,
    stdout: String,
    stderr: String,
    /// Peak resident memory (`VmHWM`), polled while it ran.
    max_rss_bytes: u64,
    elapsed: Duration,
}

/// The peak resident memory of a running process, if it still runs.
fn vm_hwm(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Runs wsl-tarball with `args` (stdin from `stdin`, or nothing) under
/// `prlimit --data=256MiB` (a hard limit on its heap and other private
/// memory), killing it after `timeout`; reports its exit, output and peak
/// resident memory.
fn run_measured(args: &[&str], stdin: Option<File>, dir: &Path, timeout: Duration) -> Measured {
    let out_path = dir.join(".stdout");
    let err_path = dir.join(".stderr");
    let started = Instant::now();
    let mut command = Command::new("prlimit");
    command
        .arg(format!("--data={MAX_RSS}"))
        .arg(env!("CARGO_BIN_EXE_wsl-tarball"))
        .args(args)
        .env_remove("SOURCE_DATE_EPOCH")
        .env_remove(wsl_tarball::scan::SKIP_CHECKS_VAR)
        .env("TMPDIR", dir);
    for variable in wsl_tarball::scan::sensitive_variables(std::env::vars_os()) {
        command.env_remove(&variable.name);
    }
    let mut child = command
        .stdin(stdin.map_or_else(Stdio::null, Stdio::from))
        .stdout(File::create(&out_path).unwrap())
        .stderr(File::create(&err_path).unwrap())
        .spawn()
        .expect("run prlimit wsl-tarball (prlimit is in util-linux)");
    let mut max_rss_bytes = 0;
    let status = loop {
        // prlimit execs wsl-tarball in the same process: after the exec
        // VmHWM is wsl-tarball's alone.
        if let Some(hwm) = vm_hwm(child.id()) {
            max_rss_bytes = max_rss_bytes.max(hwm);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() >= timeout {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("wsl-tarball {args:?} still ran after {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let measured = Measured {
        status,
        stdout: std::fs::read_to_string(&out_path).unwrap(),
        stderr: std::fs::read_to_string(&err_path).unwrap(),
        max_rss_bytes,
        elapsed: started.elapsed(),
    };
    std::fs::remove_file(out_path).unwrap();
    std::fs::remove_file(err_path).unwrap();
    measured
}

const MIB: u64 = 1 << 20;
/// The readers' promise.
const MAX_RSS: u64 = 256 * MIB;

fn header(name: &str, kind: MemberKind, size: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let mode = match kind {
        MemberKind::Directory if name == "./nix/store/" => 0o1775,
        MemberKind::Directory => 0o555,
        _ => 0o444,
    };
    append_header(
        &mut out,
        &HeaderFields {
            name: name.as_bytes(),
            kind,
            mode,
            uid: 0,
            gid: 0,
            size,
            mtime: 1,
            link_target: b"",
        },
    );
    out
}

fn directories(out: &mut impl Write, names: &[&str]) {
    for name in names {
        out.write_all(&header(name, MemberKind::Directory, 0))
            .unwrap();
    }
}

/// Two zero blocks and the padding to a record, as GNU tar ends an archive.
fn end_of_archive(out: &mut impl Write, written: u64) {
    let end = (written + 2 * BLOCK_SIZE as u64).div_ceil(RECORD_SIZE as u64) * RECORD_SIZE as u64;
    out.write_all(&vec![0u8; (end - written) as usize]).unwrap();
}

/// Counts what goes through.
struct Counting<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(bytes)?;
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn zstd_file(path: &Path) -> Counting<zstd::stream::write::AutoFinishEncoder<'static, File>> {
    let encoder = zstd::stream::write::Encoder::new(File::create(path).unwrap(), 1)
        .unwrap()
        .auto_finish();
    Counting {
        inner: encoder,
        bytes: 0,
    }
}

const STORE_PATH: &str = "./nix/store/0123456789abcdfghijklmnpqrsvwxyz-many/";

/// A zstd tarball of `count` zero-filled files of `size` bytes each, named
/// like the files the readers used to keep whole, and one in the store.
fn big_files_tarball(path: &Path, size: u64) -> u64 {
    let mut out = zstd_file(path);
    directories(
        &mut out,
        &[
            "./",
            "./etc/",
            "./nix/",
            "./nix/store/",
            STORE_PATH,
            "./nix/var/",
            "./nix/var/nix/",
            "./nix/var/nix/db/",
        ],
    );
    let zeros = vec![0u8; MIB as usize];
    let names = [
        "./etc/group",
        "./etc/passwd",
        "./etc/shadow",
        "./nix-path-registration",
        &format!("{STORE_PATH}zeros"),
        "./nix/var/nix/db/db.sqlite",
        "./nix/var/nix/db/schema",
    ];
    for name in names {
        out.write_all(&header(name, MemberKind::Regular, size))
            .unwrap();
        let mut left = size;
        while left > 0 {
            let n = left.min(MIB);
            out.write_all(&zeros[..n as usize]).unwrap();
            left -= n;
        }
    }
    let written = out.bytes;
    end_of_archive(&mut out, written);
    names.len() as u64
}

/// A zstd tarball of `count` empty files in one store path (headers only,
/// so it is cheap to make and small on disk).
fn many_members_tarball(path: &Path, count: u64) {
    let mut out = zstd_file(path);
    directories(&mut out, &["./", "./nix/", "./nix/store/", STORE_PATH]);
    for i in 0..count {
        let name = format!("{STORE_PATH}f{i:08}");
        out.write_all(&header(&name, MemberKind::Regular, 0))
            .unwrap();
    }
    let written = out.bytes;
    end_of_archive(&mut out, written);
}

fn assert_bounded(what: &str, run: &Measured) {
    assert!(
        run.max_rss_bytes <= MAX_RSS,
        "{what}: peak memory {} MiB, more than {} MiB\n{}{}",
        run.max_rss_bytes / MIB,
        MAX_RSS / MIB,
        run.stdout,
        run.stderr
    );
    eprintln!(
        "{what}: exit {:?}, peak memory {:.1} MiB, {:.2} s",
        run.status.code(),
        run.max_rss_bytes as f64 / MIB as f64,
        run.elapsed.as_secs_f64()
    );
}

#[test]
fn seven_256_mib_files_are_read_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let tarball = dir.path().join("big.tar.zst");
    let size = 256 * MIB;
    let files = big_files_tarball(&tarball, size);
    assert!(std::fs::metadata(&tarball).unwrap().len() < 4 * MIB);
    let name = tarball.to_str().unwrap();
    let timeout = Duration::from_secs(120);

    let inspect = run_measured(&["inspect", "--json", name], None, dir.path(), timeout);
    assert_bounded("inspect", &inspect);
    assert!(inspect.status.success(), "{}", inspect.stderr);
    let json: serde_json::Value = serde_json::from_str(&inspect.stdout).unwrap();
    assert_eq!(json["contentBytes"], files * size);
    assert_eq!(json["nixDatabase"], "sqlite");

    let verify = run_measured(&["verify", name], None, dir.path(), timeout);
    assert_bounded("verify", &verify);
    assert_eq!(verify.status.code(), Some(1), "{}", verify.stderr);
    for text in [
        "/etc/passwd is 268435456 bytes, more than the 4194304 bytes verify reads",
        "/nix/var/nix/db/db.sqlite: file is not a database",
        "ok    tar structure",
    ] {
        assert!(
            verify.stdout.contains(text),
            "no {text:?} in\n{}",
            verify.stdout
        );
    }

    let diff = run_measured(&["diff", name, name], None, dir.path(), timeout);
    assert_bounded("diff", &diff);
    assert!(diff.status.success(), "{}{}", diff.stdout, diff.stderr);
    assert!(diff.stdout.contains("identical"), "{}", diff.stdout);

    // The spilled database and its copy are gone.
    assert_eq!(dir_names(dir.path()), vec!["big.tar.zst"]);
}

/// inspect, verify and diff of a tarball with `count` empty files; the
/// peak memory of each.
fn many_members(count: u64) -> [u64; 3] {
    let dir = tempfile::tempdir().unwrap();
    let tarball = dir.path().join("many.tar.zst");
    many_members_tarball(&tarball, count);
    let name = tarball.to_str().unwrap();
    let timeout = Duration::from_secs(300);

    let inspect = run_measured(&["inspect", "--json", name], None, dir.path(), timeout);
    assert_bounded(&format!("inspect, {count} members"), &inspect);
    assert!(inspect.status.success(), "{}", inspect.stderr);
    let json: serde_json::Value = serde_json::from_str(&inspect.stdout).unwrap();
    assert_eq!(json["members"]["entries"], count + 4);
    assert_eq!(json["storePaths"], 1);

    let verify = run_measured(&["verify", name], None, dir.path(), timeout);
    assert_bounded(&format!("verify, {count} members"), &verify);
    // No Nix database: verify fails, but the structure is whole.
    assert_eq!(verify.status.code(), Some(1), "{}", verify.stderr);
    assert!(
        verify.stdout.contains("ok    tar structure"),
        "{}",
        verify.stdout
    );
    assert!(
        verify.stdout.contains("ok    owners and modes"),
        "{}",
        verify.stdout
    );

    let diff = run_measured(&["diff", name, name], None, dir.path(), timeout);
    assert_bounded(&format!("diff, {count} members"), &diff);
    assert!(diff.status.success(), "{}{}", diff.stdout, diff.stderr);
    assert_eq!(dir_names(dir.path()), vec!["many.tar.zst"]);
    [
        inspect.max_rss_bytes,
        verify.max_rss_bytes,
        diff.max_rss_bytes,
    ]
}

/// Memory per member, from a small and a larger archive: the readers used
/// to keep about 280 bytes per member (2M members: 563 MB).
#[test]
fn memory_per_member_is_small() {
    let small = many_members(1_000);
    let large_count = 100_000;
    let large = many_members(large_count);
    for (i, command) in ["inspect", "verify", "diff"].iter().enumerate() {
        let per_member = large[i].saturating_sub(small[i]) / (large_count - 1_000);
        eprintln!("{command}: {per_member} bytes per member");
        assert!(
            per_member <= 100,
            "{command}: {per_member} bytes per member ({} -> {} bytes)",
            small[i],
            large[i]
        );
    }
}

#[test]
#[ignore = "a minute or two: cargo test --test readers -- --ignored"]
fn two_million_members_are_read_in_bounded_memory() {
    many_members(2_000_000);
}

/// A plain tar of `blocks` blocks of content before the end, made by GNU tar.
fn gnu_tar_with_content_blocks(dir: &Path, name: &str, file_blocks: u64) -> PathBuf {
    let root = dir.join(format!("root-{name}"));
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("f"), vec![b'x'; (file_blocks * 512) as usize]).unwrap();
    let output = dir.join(name);
    run_ok(
        Command::new("tar")
            .args(["--format=gnu", "-b", "20", "-c", "-f"])
            .arg(&output)
            .arg("-C")
            .arg(&root)
            .arg("."),
    );
    output
}

fn tar_structure_status(tarball: &Path) -> (String, Vec<String>) {
    let output = run_wsl_tarball(&["verify", "--json", tarball.to_str().unwrap()]);
    let json: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stderr)));
    let check = &json["checks"][0];
    assert_eq!(check["check"], "tar-format");
    (
        check["status"].as_str().unwrap().to_owned(),
        check["failures"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap().to_owned())
            .collect(),
    )
}

#[test]
fn gnu_tar_and_bsdtar_record_padding_is_accepted_and_more_is_trailing_data() {
    let dir = tempfile::tempdir().unwrap();
    // "./" and "f" headers plus the content: 19 blocks leave the most
    // padding, 21 zero blocks up to the 40-block record end; 18 the least.
    for (file_blocks, zero_blocks) in [(17u64, 21u64), (16, 2), (0, 18)] {
        let tarball =
            gnu_tar_with_content_blocks(dir.path(), &format!("gnu-{file_blocks}.tar"), file_blocks);
        let len = std::fs::metadata(&tarball).unwrap().len();
        assert_eq!(len % RECORD_SIZE as u64, 0);
        assert_eq!(len / 512 - (2 + file_blocks), zero_blocks, "{tarball:?}");
        assert_eq!(
            tar_structure_status(&tarball),
            ("passed".to_owned(), vec![])
        );
        let inspect = run_wsl_tarball(&["inspect", tarball.to_str().unwrap()]);
        assert!(
            inspect.status.success(),
            "{}",
            String::from_utf8_lossy(&inspect.stderr)
        );
        let check = run_wsl_tarball(&["check", tarball.to_str().unwrap()]);
        assert!(
            check.status.success(),
            "{}",
            String::from_utf8_lossy(&check.stderr)
        );
    }

    // bsdtar, plain and compressed.
    let root = dir.path().join("root-gnu-17.tar");
    for (name, flag) in [
        ("bsd.tar", None),
        ("bsd.tar.gz", Some("-z")),
        ("bsd.tar.xz", Some("-J")),
    ] {
        let output = dir.path().join(name);
        let mut command = Command::new("bsdtar");
        command.arg("-c");
        if let Some(flag) = flag {
            command.arg(flag);
        }
        run_ok(command.arg("-f").arg(&output).arg("-C").arg(&root).arg("."));
        assert_eq!(
            tar_structure_status(&output),
            ("passed".to_owned(), vec![]),
            "{name}"
        );
        let inspect = run_wsl_tarball(&["inspect", output.to_str().unwrap()]);
        assert!(
            inspect.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&inspect.stderr)
        );
    }

    // One zero block beyond the record, and a non-zero byte in the padding.
    let original = std::fs::read(dir.path().join("gnu-17.tar")).unwrap();
    let mut longer = original.clone();
    longer.extend_from_slice(&[0u8; 512]);
    let longer_path = dir.path().join("longer.tar");
    std::fs::write(&longer_path, &longer).unwrap();
    let mut dirty = original.clone();
    let dirty_at = 19 * 512 + 2 * 512 + 5;
    dirty[dirty_at] = 1;
    let dirty_path = dir.path().join("dirty.tar");
    std::fs::write(&dirty_path, &dirty).unwrap();
    for (path, offset) in [(&longer_path, original.len()), (&dirty_path, dirty_at)] {
        let expected =
            format!("trailing data after the end-of-archive at offset {offset} of the tar stream");
        let (status, failures) = tar_structure_status(path);
        assert_eq!(status, "failed");
        assert!(
            failures.iter().any(|f| f.contains(&expected)),
            "{failures:?}"
        );
        for command in ["inspect", "check"] {
            let output = run_wsl_tarball(&[command, path.to_str().unwrap()]);
            let stderr = String::from_utf8_lossy(&output.stderr);
            // Trouble reading the input: exit status 2, as diff(1) does.
            assert_eq!(output.status.code(), Some(2), "{command}: {stderr}");
            assert!(stderr.contains(&expected), "{command}: {stderr}");
            assert!(
                stderr.contains(path.to_str().unwrap()),
                "{command}: {stderr}"
            );
        }
    }
    // Inputs untouched.
    assert_eq!(std::fs::read(&longer_path).unwrap(), longer);
}

#[test]
fn dev_zero_ends_at_once_in_every_reader() {
    let dir = tempfile::tempdir().unwrap();
    let valid = gnu_tar_with_content_blocks(dir.path(), "valid.tar", 1);
    let valid = valid.to_str().unwrap();
    let timeout = Duration::from_secs(20);
    let expected =
        "/dev/zero: trailing data after the end-of-archive at offset 10240 of the tar stream";
    for args in [
        vec!["inspect", "/dev/zero"],
        vec!["check", "/dev/zero"],
        vec!["diff", "/dev/zero", valid],
        vec!["diff", valid, "/dev/zero"],
    ] {
        let run = run_measured(&args, None, dir.path(), timeout);
        assert_eq!(run.status.code(), Some(2), "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(expected), "{args:?}: {}", run.stderr);
        assert!(run.elapsed < Duration::from_secs(10), "{args:?}");
    }
    // inspect --manifest /dev/zero: the manifest is read through a limit.
    let run = run_measured(
        &["inspect", valid, "--manifest", "/dev/zero"],
        None,
        dir.path(),
        timeout,
    );
    assert_eq!(run.status.code(), Some(2), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("manifest /dev/zero: larger than the limit of 67108864 bytes for a manifest"),
        "{}",
        run.stderr
    );
    let run = run_measured(&["verify", "/dev/zero"], None, dir.path(), timeout);
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    assert!(
        run.stdout
            .contains("trailing data after the end-of-archive at offset 10240"),
        "{}",
        run.stdout
    );
    // No temporary files left behind.
    let mut names = dir_names(dir.path());
    names.retain(|n| !n.starts_with("root-"));
    assert_eq!(names, vec!["valid.tar"]);
}

#[test]
fn standard_input_fifos_and_proc_pipes_are_read_in_one_pass() {
    let dir = tempfile::tempdir().unwrap();
    let tarball = write_fixture(dir.path(), "nixos.wsl", &[]);
    let name = tarball.to_str().unwrap();
    let timeout = Duration::from_secs(60);
    let reference = run_wsl_tarball(&["inspect", "--json", name]);
    assert!(reference.status.success());
    let reference: serde_json::Value = serde_json::from_slice(&reference.stdout).unwrap();

    // verify --bare - < nixos.wsl (the fixture is a bare store)
    let run = run_measured(
        &["verify", "--bare", "-"],
        Some(File::open(&tarball).unwrap()),
        dir.path(),
        timeout,
    );
    assert!(run.status.success(), "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .starts_with("verifying standard input (gzip compression"),
        "{}",
        run.stdout
    );

    // inspect - < nixos.wsl: the same sha256 as the file.
    let run = run_measured(
        &["inspect", "--json", "-"],
        Some(File::open(&tarball).unwrap()),
        dir.path(),
        timeout,
    );
    assert!(run.status.success(), "{}", run.stderr);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["fileSha256"], reference["fileSha256"]);
    assert_eq!(json["file"], "standard input");

    // A FIFO, written by another process (as `inspect <(cat nixos.wsl)`).
    let fifo = dir.path().join("fifo");
    run_ok(Command::new("mkfifo").arg(&fifo));
    for args in [vec!["inspect", "--json"], vec!["check"], vec!["diff", name]] {
        let mut writer = Command::new("sh")
            .arg("-c")
            .arg(format!("cat '{name}' > '{}'", fifo.display()))
            .spawn()
            .unwrap();
        let mut full = args.clone();
        full.push(fifo.to_str().unwrap());
        let run = run_measured(&full, None, dir.path(), timeout);
        assert!(writer.wait().unwrap().success());
        assert!(
            run.status.success(),
            "{full:?}: {}{}",
            run.stdout,
            run.stderr
        );
        if args[0] == "inspect" {
            let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
            assert_eq!(json["fileSha256"], reference["fileSha256"]);
        }
    }

    // diff - FILE reads standard input for A.
    let run = run_measured(
        &["diff", "-", name],
        Some(File::open(&tarball).unwrap()),
        dir.path(),
        timeout,
    );
    assert!(run.status.success(), "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("identical"), "{}", run.stdout);

    // diff - - is a usage error.
    let run = run_measured(
        &["diff", "-", "-"],
        Some(File::open(&tarball).unwrap()),
        dir.path(),
        timeout,
    );
    assert_eq!(run.status.code(), Some(2), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("standard input can be only one of the two tarballs"),
        "{}",
        run.stderr
    );

    let mut names = dir_names(dir.path());
    names.retain(|n| n != "closure.json");
    assert_eq!(names, vec!["fifo", "nixos.wsl"]);
}

/// Runs every file reader (inspect, verify, check, diff) on NAME, asserting
/// each exits 2 (trouble); each one's arguments and stderr.
fn every_reader_exits_2(name: &str) -> Vec<(Vec<&str>, String)> {
    [
        vec!["inspect", name],
        vec!["verify", name],
        vec!["check", name],
        vec!["diff", name, name],
    ]
    .into_iter()
    .map(|args| {
        let output = run_wsl_tarball(&args);
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        (args, stderr)
    })
    .collect()
}

/// Runs every file reader on `path`, expecting exit 2 (trouble) and
/// `expected` on stderr.
fn every_reader_fails_with(path: &Path, expected: &str) {
    let name = path.to_str().unwrap();
    let before = std::fs::read(path).unwrap();
    for (args, stderr) in every_reader_exits_2(name) {
        assert!(
            stderr.contains(expected),
            "{args:?}: no {expected:?} in {stderr}"
        );
        // Said once, and no raw bytes: one printable line.
        assert_eq!(stderr.matches(name).count(), 1, "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(
            stderr.trim_end().chars().all(|c| !c.is_control()),
            "{args:?}: {stderr:?}"
        );
    }
    assert_eq!(std::fs::read(path).unwrap(), before, "input changed");
}

#[test]
fn files_that_are_not_tarballs_are_named_for_what_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("d")).unwrap();
    std::fs::write(root.join("d/hello"), b"hello\n".repeat(200)).unwrap();

    let empty = dir.path().join("empty.wsl");
    File::create(&empty).unwrap();
    every_reader_fails_with(
        &empty,
        &format!("{} is empty; not a tar archive", empty.display()),
    );

    for (name, args, expected) in [
        ("a.zip", vec!["--format", "zip"], "not a tar archive; it starts like a zip file"),
        ("a.7z", vec!["--format", "7zip"], "not a tar archive; it starts like a 7z archive"),
        ("a.tar.bz2", vec!["-j"], "not a tar archive; it starts like bzip2-compressed data, which wsl-tarball does not read"),
    ] {
        let path = dir.path().join(name);
        run_ok(Command::new("bsdtar").arg("-c").args(&args).arg("-f").arg(&path).arg("-C").arg(&root).arg("."));
        every_reader_fails_with(&path, expected);
    }

    // A NAR from nix-store --dump.
    let nar = dir.path().join("a.nar");
    let dump = run_ok(nix_command("nix-store").arg("--dump").arg(&root));
    std::fs::write(&nar, dump).unwrap();
    every_reader_fails_with(&nar, "not a tar archive; it starts like a NAR file");

    // Magic bytes only: a PNG, a qcow2 image, a rar archive.
    for (name, magic, expected) in [
        (
            "a.png",
            &b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"[..],
            "it starts like a PNG image",
        ),
        (
            "disk.qcow2",
            &b"QFI\xfb\0\0\0\x03"[..],
            "it starts like a qcow2 disk image",
        ),
        (
            "a.rar",
            &b"Rar!\x1a\x07\x01\0"[..],
            "it starts like a rar archive",
        ),
    ] {
        let path = dir.path().join(name);
        let mut bytes = magic.to_vec();
        bytes.resize(4096, 0x55);
        std::fs::write(&path, bytes).unwrap();
        every_reader_fails_with(&path, expected);
    }

    // An ext4 file system image (mke2fs, e2fsprogs).
    let image = dir.path().join("disk.img");
    run_ok(
        Command::new("mke2fs")
            .args(["-q", "-F", "-t", "ext4", "-d"])
            .arg(&root)
            .arg(&image)
            .arg("4M"),
    );
    every_reader_fails_with(
        &image,
        "not a tar archive; it starts like an ext2/3/4 file system image",
    );

    // Text shorter than a header, and gzip of text.
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "hello\n").unwrap();
    every_reader_fails_with(
        &text,
        "not a tar archive: it is 6 bytes long, shorter than one tar header (512)",
    );
    let gz = dir.path().join("notes.txt.gz");
    std::fs::write(&gz, run_ok(Command::new("gzip").arg("-c").arg(&text))).unwrap();
    every_reader_fails_with(&gz, "its gzip-compressed content is not a tar archive");
}

#[test]
fn truncated_streams_and_bad_headers_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    // Incompressible content, so that half of the file is half of the data.
    let noise: Vec<u8> = (0..400_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(root.join("noise"), &noise).unwrap();
    let plain = dir.path().join("a.tar");
    run_ok(
        Command::new("tar")
            .args(["--format=gnu", "-c", "-f"])
            .arg(&plain)
            .arg("-C")
            .arg(&root)
            .arg("."),
    );
    for (program, suffix, word) in [
        ("gzip", "gz", "gzip"),
        ("xz", "xz", "xz"),
        ("zstd", "zst", "zstd"),
    ] {
        let compressed = run_ok(Command::new(program).arg("-c").arg(&plain));
        let path = dir.path().join(format!("half.tar.{suffix}"));
        std::fs::write(&path, &compressed[..compressed.len() / 2]).unwrap();
        every_reader_fails_with(&path, &format!("the {word} stream is truncated"));
    }
    // Streams that need more decoder memory than allowed.
    for (name, script, expected) in [
        (
            "dict.tar.xz",
            "xz -c --lzma2=dict=256MiB",
            "the xz stream needs more than 72 MiB of memory to decode",
        ),
        (
            "long.tar.zst",
            "zstd -q -c --long=27",
            "the zstd stream needs more than 64 MiB of memory to decode",
        ),
    ] {
        let path = dir.path().join(name);
        run_ok(Command::new("sh").arg("-c").arg(format!(
            "cat '{}' | {script} > '{}'",
            plain.display(),
            path.display()
        )));
        every_reader_fails_with(&path, expected);
    }

    let bytes = std::fs::read(&plain).unwrap();
    let half = dir.path().join("half.tar");
    std::fs::write(&half, &bytes[..bytes.len() / 2]).unwrap();
    every_reader_fails_with(
        &half,
        "the archive is truncated: it ends in the middle of a member's content",
    );

    // A header checksum error names its offset (the second header, at 512).
    let mut bad = bytes.clone();
    bad[512 + 3] ^= 0x20;
    let bad_path = dir.path().join("bad.tar");
    std::fs::write(&bad_path, &bad).unwrap();
    every_reader_fails_with(
        &bad_path,
        "bad tar header at byte 512 of the tar stream: header checksum is",
    );
}

#[test]
fn a_missing_file_is_named_once() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nonexist.wsl");
    let name = missing.to_str().unwrap();
    for (args, stderr) in every_reader_exits_2(name) {
        assert_eq!(
            stderr.trim_end(),
            format!("wsl-tarball: error: {name}: cannot open it: No such file or directory (os error 2)"),
            "{args:?}"
        );
    }
    assert!(!missing.exists());
    assert!(dir_names(dir.path()).is_empty());
}

#[test]
fn an_unusable_temporary_directory_is_trouble_not_a_verdict_on_the_tarball() {
    let dir = tempfile::tempdir().unwrap();
    let tarball = write_fixture(dir.path(), "good.wsl", &[]);
    let not_a_dir = dir.path().join("a-file");
    std::fs::write(&not_a_dir, b"").unwrap();
    let missing = dir.path().join("missing");
    for tmpdir in [&missing, &not_a_dir] {
        for json in [false, true] {
            let mut command = wsl_tarball();
            command.args(["verify", "--bare"]);
            if json {
                command.arg("--json");
            }
            let output = command
                .arg(&tarball)
                .env("TMPDIR", tmpdir)
                .stdin(Stdio::null())
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&output.stdout);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(
                output.status.code(),
                Some(2),
                "TMPDIR={}: stdout:\n{stdout}\nstderr:\n{stderr}",
                tmpdir.display()
            );
            // The cause, named; no verdict about the tarball.
            assert!(
                stderr.contains(&format!("temporary directory {}", tmpdir.display())),
                "{stderr}"
            );
            assert!(!stdout.contains("NOT verified"), "{stdout}");
            assert!(!stdout.contains("failed"), "{stdout}");
            assert!(!stderr.contains("no Nix database"), "{stderr}");
            assert_eq!(stderr.lines().count(), 1, "{stderr}");
        }
    }

    // `write` verifies a tarball with --allow-override replacements before
    // committing it: a temporary directory it cannot use fails the write
    // (exit 1, as a full disk does) naming it, and does not blame the
    // replacement.
    let facts = build_fake_host_output("wslTarballFacts");
    let system: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&facts).unwrap()).unwrap();
    let closure = write_path_info(system["system"].as_str().unwrap(), dir.path());
    let extra = dir.path().join("extra");
    std::fs::create_dir_all(extra.join("etc")).unwrap();
    std::fs::write(
        extra.join("etc/passwd"),
        b"root:x:0:0:System administrator:/root:/run/current-system/sw/bin/bash\n",
    )
    .unwrap();
    let output = dir.path().join("override.wsl");
    let result = wsl_tarball()
        .args(["write", "--quiet", "--allow-override", "/etc/passwd"])
        .arg("--closure")
        .arg(&closure)
        .arg("--facts")
        .arg(&facts)
        .arg("--extra-files")
        .arg(&extra)
        .arg("-o")
        .arg(&output)
        .env("TMPDIR", &missing)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("temporary directory {}", missing.display())),
        "{stderr}"
    );
    assert!(!stderr.contains("fails verify"), "{stderr}");
    assert!(!output.exists());
}
