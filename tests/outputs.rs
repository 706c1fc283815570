//! Outputs, transactions, signals, the cache's integrity, threads and pipes:
//! every failure leaves the disk as it was and says what went wrong.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

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
        let destination = Destination {
            tarball: dir.join("nixos.wsl"),
            manifest: dir.join("manifest.json"),
            dir,
        };
        destination.put_back_old_files();
        destination
    }

    /// Writes the old tarball and manifest (again).
    fn put_back_old_files(&self) {
        std::fs::write(&self.tarball, OLD_TARBALL).unwrap();
        std::fs::write(&self.manifest, OLD_MANIFEST).unwrap();
    }

    /// `write` of the fixture (closure file in `dir`) to both outputs here.
    fn write_both(&self, dir: &Path) -> Output {
        write_args(
            dir,
            &["-o", s(&self.tarball), "--manifest", s(&self.manifest)],
        )
    }

    /// Nothing but the tarball and the manifest is in the directory.
    fn assert_only_the_outputs(&self) {
        assert_eq!(dir_names(&self.dir), vec!["manifest.json", "nixos.wsl"]);
    }

    /// Both old files are intact and nothing else is in the directory
    /// (but a `fill` file a test made).
    fn assert_untouched(&self) {
        assert_eq!(std::fs::read(&self.tarball).unwrap(), OLD_TARBALL);
        assert_eq!(std::fs::read(&self.manifest).unwrap(), OLD_MANIFEST);
        let mut names = dir_names(&self.dir);
        names.retain(|name| name != "fill");
        assert_eq!(names, vec!["manifest.json", "nixos.wsl"]);
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
        "--no-skeleton",
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
        "--no-skeleton",
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
        "--no-skeleton",
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
        "--no-skeleton",
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

/// Runs `write` into `destination` with `args`, expecting `code` and the
/// needles, and that the old tarball and manifest are as they were.
fn assert_write_refused(dir: &Path, args: &[&str], code: i32, needles: &[&str]) {
    let result = write_args(dir, args);
    assert_exit(&result, code, needles);
}

#[test]
fn outputs_that_name_inputs_or_each_other_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let destination = Destination::new(dir.path());
    let closure = closure_file(dir.path());
    let closure_bytes = std::fs::read(&closure).unwrap();
    let tarball = s(&destination.tarball);
    let manifest = s(&destination.manifest);

    // The manifest on the tarball, by the same and by another spelling.
    let respelt = destination.dir.join("../out/./nixos.wsl");
    for other in [tarball, s(&respelt)] {
        assert_write_refused(
            dir.path(),
            &["-o", tarball, "--manifest", other],
            2,
            &[&format!(
                "-o {tarball} and --manifest {other} name the same file"
            )],
        );
        destination.assert_untouched();
    }
    // Neither exists yet: still the same file.
    let new = destination.dir.join("new.wsl");
    assert_write_refused(
        dir.path(),
        &["-o", s(&new), "--manifest", s(&new)],
        2,
        &["name the same file"],
    );
    destination.assert_untouched();

    // An output on the closure file, directly and through a symlink.
    let link = dir.path().join("closure-link");
    std::os::unix::fs::symlink(&closure, &link).unwrap();
    for (flag, output) in [("-o", s(&closure)), ("--manifest", s(&link))] {
        let mut args = vec!["-o", tarball, "--manifest", manifest];
        let slot = if flag == "-o" { 1 } else { 3 };
        args[slot] = output;
        assert_write_refused(
            dir.path(),
            &args,
            2,
            &[&format!(
                "{flag} {output} is the input --closure {}; it would be overwritten",
                closure.display()
            )],
        );
        assert_eq!(std::fs::read(&closure).unwrap(), closure_bytes);
        destination.assert_untouched();
    }

    // An output on the facts file (checked before the facts are read).
    let facts = dir.path().join("facts.json");
    std::fs::write(&facts, b"{}").unwrap();
    let result = run_wsl_tarball(&[
        "write",
        "--closure",
        s(&closure),
        "--facts",
        s(&facts),
        "-o",
        tarball,
        "--manifest",
        s(&facts),
    ]);
    assert_exit(&result, 2, &["--manifest", "is the input --facts"]);
    assert_eq!(std::fs::read(&facts).unwrap(), b"{}");
    destination.assert_untouched();

    // Outputs inside the --extra-files tree, existing or not, also when the
    // tree is named through a symlink.
    let extra = dir.path().join("extra");
    std::fs::create_dir_all(extra.join("etc")).unwrap();
    std::fs::write(extra.join("etc/old.wsl"), b"old").unwrap();
    let extra_link = dir.path().join("extra-link");
    std::os::unix::fs::symlink(&extra, &extra_link).unwrap();
    for (output, tree) in [
        (extra.join("etc/new.wsl"), &extra),
        (extra.join("etc/old.wsl"), &extra_link),
        (extra_link.join("nixos.wsl"), &extra),
    ] {
        assert_write_refused(
            dir.path(),
            &["-o", s(&output), "--extra-files", s(tree)],
            2,
            &[&format!(
                "-o {} is inside the --extra-files directory {}",
                output.display(),
                tree.display()
            )],
        );
    }
    assert_write_refused(
        dir.path(),
        &[
            "-o",
            tarball,
            "--manifest",
            s(&extra.join("m.json")),
            "--extra-files",
            s(&extra),
        ],
        2,
        &["--manifest", "is inside the --extra-files directory"],
    );
    assert_eq!(dir_names(&extra.join("etc")), vec!["old.wsl"]);
    assert_eq!(std::fs::read(extra.join("etc/old.wsl")).unwrap(), b"old");
    destination.assert_untouched();
}

#[test]
fn a_manifest_that_cannot_be_written_leaves_both_old_files() {
    let dir = tempfile::tempdir().unwrap();
    let destination = Destination::new(dir.path());
    let missing = destination.dir.join("missing/manifest.json");
    assert_write_refused(
        dir.path(),
        &["-o", s(&destination.tarball), "--manifest", s(&missing)],
        1,
        &[&format!(
            "output directory {} does not exist",
            destination.dir.join("missing").display()
        )],
    );
    destination.assert_untouched();

    let directory = destination.dir.join("a-directory");
    std::fs::create_dir(&directory).unwrap();
    assert_write_refused(
        dir.path(),
        &["-o", s(&destination.tarball), "--manifest", s(&directory)],
        1,
        &[&format!("{} is a directory", directory.display())],
    );
    std::fs::remove_dir(&directory).unwrap();
    destination.assert_untouched();
}

#[test]
fn tarball_and_manifest_are_replaced_together() {
    let dir = tempfile::tempdir().unwrap();
    let destination = Destination::new(dir.path());
    let result = destination.write_both(dir.path());
    assert_exit(&result, 0, &[]);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&destination.manifest).unwrap()).unwrap();
    let tarball = std::fs::read(&destination.tarball).unwrap();
    assert_eq!(manifest["tarball"]["size"], tarball.len() as u64);
    destination.assert_only_the_outputs();
    assert_verifies(&destination.tarball, Rootfs::Bare);
}

#[test]
fn fifos_and_devices_are_refused_and_symlinks_written_through() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo.wsl");
    run_ok(Command::new("mkfifo").arg(&fifo));
    let device = dir.path().join("null.wsl");
    run_ok(Command::new("mknod").arg(&device).args(["c", "1", "3"]));
    for (path, kind) in [(&fifo, "a fifo"), (&device, "a character device")] {
        let result = write_args(dir.path(), &["-o", s(path)]);
        assert_exit(
            &result,
            1,
            &[&format!(
                "{} is {kind}, not a regular file; refusing to replace it",
                path.display()
            )],
        );
    }
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());
    assert!(std::fs::symlink_metadata(&device)
        .unwrap()
        .file_type()
        .is_char_device());

    // A symlink: its target is replaced, in the target's directory, and
    // the link stays a link.
    let plain = write_fixture(dir.path(), "plain.wsl", &[]);
    let targets = dir.path().join("targets");
    std::fs::create_dir(&targets).unwrap();
    let target = targets.join("real.wsl");
    std::fs::write(&target, b"old").unwrap();
    let link = dir.path().join("link.wsl");
    std::os::unix::fs::symlink("targets/real.wsl", &link).unwrap();
    let result = write_args(dir.path(), &["-o", s(&link)]);
    assert_exit(&result, 0, &[]);
    assert_eq!(
        std::fs::read_link(&link).unwrap(),
        Path::new("targets/real.wsl")
    );
    assert!(std::fs::read(&target).unwrap() == std::fs::read(&plain).unwrap());
    assert_eq!(dir_names(&targets), vec!["real.wsl"]);

    // A dangling symlink is an error, as with GNU cp.
    let dangling = dir.path().join("dangling.wsl");
    std::os::unix::fs::symlink("targets/missing.wsl", &dangling).unwrap();
    let result = write_args(dir.path(), &["-o", s(&dangling)]);
    assert_exit(
        &result,
        1,
        &[&format!(
            "not writing through dangling symlink {} (it points to targets/missing.wsl)",
            dangling.display()
        )],
    );
    assert_eq!(dir_names(&targets), vec!["real.wsl"]);
    assert!(std::fs::symlink_metadata(&dangling)
        .unwrap()
        .file_type()
        .is_symlink());
}

/// A uid no account has: "another user" to the kernel.
const OTHER_UID: u32 = 4242;

#[test]
fn outputs_never_go_through_another_users_symlink_in_a_sticky_directory() {
    use std::os::unix::fs::{chown, lchown, symlink, PermissionsExt};
    if !running_as_root() {
        eprintln!("*** SKIPPED outputs_never_go_through_another_users_symlink_in_a_sticky_directory: it needs root to give files to another user ***");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let base = std::fs::canonicalize(tmp.path()).unwrap();
    // A sticky, world-writable directory like /tmp, and root's file
    // outside it.
    let sticky = base.join("sticky");
    std::fs::create_dir(&sticky).unwrap();
    std::fs::set_permissions(&sticky, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let precious = base.join("precious.wsl");
    std::fs::write(&precious, b"root's own file").unwrap();
    // Another user's links there: to the file, and to a directory.
    let planted = sticky.join("evil.wsl");
    symlink(&precious, &planted).unwrap();
    lchown(&planted, Some(OTHER_UID), None).unwrap();
    let real_dir = base.join("real-dir");
    std::fs::create_dir(&real_dir).unwrap();
    let planted_dir = sticky.join("evil-dir");
    symlink(&real_dir, &planted_dir).unwrap();
    lchown(&planted_dir, Some(OTHER_UID), None).unwrap();
    // Root's own link to the planted one: the chain passes through it.
    let chain = base.join("chain.wsl");
    symlink(&planted, &chain).unwrap();

    let refusal = |link: &Path| {
        [
            format!("not writing through symlink {}", link.display()),
            format!("owned by uid {OTHER_UID}"),
            format!("sticky world-writable directory {}", sticky.display()),
        ]
    };
    let ok = base.join("ok.wsl");
    for (args, link) in [
        (vec!["-o", s(&planted)], &planted),
        (vec!["-o", s(&ok), "--manifest", s(&planted)], &planted),
        (vec!["-o", s(&chain)], &planted),
        (vec!["-o", s(&planted_dir.join("new.wsl"))], &planted_dir),
    ] {
        let result = write_args(&base, &args);
        let needles = refusal(link);
        let needles: Vec<&str> = needles.iter().map(String::as_str).collect();
        assert_exit(&result, 1, &needles);
        assert_eq!(std::fs::read(&precious).unwrap(), b"root's own file");
        assert!(!ok.exists(), "{args:?} wrote the tarball");
        assert!(dir_names(&real_dir).is_empty(), "{args:?}");
        assert_eq!(dir_names(&sticky), vec!["evil-dir", "evil.wsl"]);
        assert!(std::fs::symlink_metadata(&planted)
            .unwrap()
            .file_type()
            .is_symlink());
    }

    // Links the kernel would follow are written through: the running
    // user's own in the sticky directory, and the directory owner's.
    let target = base.join("target.wsl");
    std::fs::write(&target, b"old").unwrap();
    let mine = sticky.join("mine.wsl");
    symlink(&target, &mine).unwrap();
    assert_exit(&write_args(&base, &["-o", s(&mine)]), 0, &[]);
    assert_verifies(&target, Rootfs::Bare);
    let owned = base.join("owned-sticky");
    std::fs::create_dir(&owned).unwrap();
    std::fs::set_permissions(&owned, std::fs::Permissions::from_mode(0o1777)).unwrap();
    chown(&owned, Some(OTHER_UID), None).unwrap();
    let owners_link = owned.join("owners.wsl");
    symlink(&precious, &owners_link).unwrap();
    lchown(&owners_link, Some(OTHER_UID), None).unwrap();
    assert_exit(&write_args(&base, &["-o", s(&owners_link)]), 0, &[]);
    assert_verifies(&precious, Rootfs::Bare);
}

/// `sha256sum FILE`'s hex digest.
fn sha256_of(file: &Path) -> String {
    let line = run_text(Command::new("sha256sum").arg(file));
    line.split_whitespace().next().unwrap().to_owned()
}

/// A traced run, killed with its tracer if the test fails while it is
/// stopped.
struct Traced {
    tracer: std::process::Child,
    /// Waited for: its process id may be another's now.
    reaped: bool,
}

impl Traced {
    /// The traced process's id, once the tracer has started it.
    fn tracee(&self) -> Option<u32> {
        let pid = self.tracer.id();
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .ok()?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }
}

impl Drop for Traced {
    fn drop(&mut self) {
        if self.reaped {
            return;
        }
        if let Some(pid) = self.tracee() {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        let _ = self.tracer.kill();
        let _ = self.tracer.wait();
    }
}

#[test]
fn concurrent_runs_never_pair_one_tarball_with_anothers_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let destination = Destination::new(dir.path());
    let closure = closure_file(dir.path());
    let args = |mtime: &str| {
        let mut args: Vec<String> = fixture_write_args(s(&closure))
            .iter()
            .map(|a| a.to_string())
            .collect();
        args.extend(
            [
                "--quiet",
                "--mtime",
                mtime,
                "-o",
                s(&destination.tarball),
                "--manifest",
                s(&destination.manifest),
            ]
            .map(String::from),
        );
        args
    };
    // Run A, stopped by strace right after its first rename (the tarball
    // replaced, the manifest not yet): the window two runs race in, held
    // open for as long as the test wants.
    let binary = wsl_tarball();
    let mut traced = Command::new("strace");
    traced
        .args(["-f", "-qq", "-o", "/dev/null"])
        .args(["-e", "trace=?rename,?renameat,?renameat2"])
        .args([
            "-e",
            "inject=?rename,?renameat,?renameat2:signal=SIGSTOP:when=1",
        ])
        .arg(binary.get_program())
        .args(args("1"))
        .stdin(Stdio::null())
        .stderr(Stdio::piped());
    for (key, value) in binary.get_envs() {
        match value {
            Some(value) => traced.env(key, value),
            None => traced.env_remove(key),
        };
    }
    let mut a = Traced {
        tracer: traced
            .spawn()
            .expect("strace (Debian package strace; .ci/run installs it)"),
        reaped: false,
    };
    // Once the tarball is replaced, A cannot return from that rename but
    // into the stop strace queued for it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while std::fs::read(&destination.tarball).unwrap() == OLD_TARBALL {
        assert!(
            a.tracer.try_wait().unwrap().is_none(),
            "run A ended before its first rename"
        );
        assert!(std::time::Instant::now() < deadline, "run A never renamed");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let a_pid = a.tracee().unwrap();
    assert_eq!(std::fs::read(&destination.manifest).unwrap(), OLD_MANIFEST);

    // Run B, same destinations, another tarball (another --mtime). It either
    // finishes, or says it waits for A's commit.
    let mut b = wsl_tarball()
        .args(args("5"))
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let b_stderr = b.stderr.take().unwrap();
    let (lines, waiting) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        let mut all = String::new();
        for line in std::io::BufReader::new(b_stderr).lines() {
            let line = line.unwrap();
            if line.contains("Blocking waiting for file lock") {
                let _ = lines.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    // Ok: B waits for A. Err: B's stderr closed, it ended without waiting.
    let b_waited = waiting.recv().is_ok();
    run_ok(Command::new("kill").args(["-CONT", &a_pid.to_string()]));
    let a_status = a.tracer.wait().unwrap();
    a.reaped = true;
    let mut a_stderr = String::new();
    std::io::Read::read_to_string(&mut a.tracer.stderr.take().unwrap(), &mut a_stderr).unwrap();
    assert!(a_status.success(), "run A: {a_stderr}");
    let b_status = b.wait().unwrap();
    let b_stderr = reader.join().unwrap();
    assert!(b_status.success(), "run B: {b_stderr}");

    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&destination.manifest).unwrap()).unwrap();
    assert_eq!(
        manifest["tarball"]["sha256"],
        sha256_of(&destination.tarball),
        "the manifest is not the tarball's: {}",
        if b_waited {
            "B waited, yet the pair is mixed"
        } else {
            "B did not wait for A's commit, and A's manifest went over B's"
        }
    );
    assert!(b_waited, "B ran while A was committing");
    assert_eq!(manifest["settings"]["mtime"], 5, "B committed last");
    destination.assert_only_the_outputs();
    assert_verifies(&destination.tarball, Rootfs::Bare);
}

/// A directory of extra files with 32 MiB of noise: long enough through
/// xz -9 on one thread that a test can interrupt the write.
fn slow_extra_files(dir: &Path) -> PathBuf {
    let extra = dir.join("extra");
    std::fs::create_dir_all(&extra).unwrap();
    run_ok(
        Command::new("head")
            .args(["-c", "33554432", "/dev/urandom"])
            .stdout(std::fs::File::create(extra.join("noise")).unwrap()),
    );
    extra
}

/// An unspawned `write` of CLOSURE plus EXTRA into DESTINATION, xz -9 on
/// one thread (slow enough to signal), run in DIR with stdin closed.
fn slow_write_into(closure: &Path, extra: &Path, destination: &Destination, dir: &Path) -> Command {
    let mut command = wsl_tarball();
    command
        .args(fixture_write_args(closure.to_str().unwrap()))
        .arg("--quiet")
        .args(["--compression", "xz", "--level", "9", "--threads", "1"])
        .arg("--extra-files")
        .arg(extra)
        .arg("-o")
        .arg(&destination.tarball)
        .arg("--manifest")
        .arg(&destination.manifest)
        .current_dir(dir)
        .stdin(Stdio::null());
    command
}

/// Sends SIG`signal` to CHILD and asserts that the signal ended it.
fn kill_with(child: &mut std::process::Child, signal: &str) {
    run_ok(
        Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string()),
    );
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert!(status.signal().is_some(), "SIG{signal}: {status:?}");
}

#[test]
fn no_signal_leaves_a_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let destination = Destination::new(dir.path());
    let closure = closure_file(dir.path());
    let extra = slow_extra_files(dir.path());
    for signal in ["KILL", "QUIT", "USR1", "INT", "TERM"] {
        // In DIR: no core file from SIGQUIT, wherever cores go.
        let mut child = slow_write_into(&closure, &extra, &destination, dir.path())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        wait_for_open_file_in(
            pid,
            &destination.dir,
            std::time::Duration::from_secs(60),
            || child.try_wait().unwrap().is_none(),
        );
        kill_with(&mut child, signal);
        destination.assert_untouched();
    }
}

#[test]
fn stale_temporaries_of_dead_runs_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let destination = Destination::new(dir.path());
    // What a run on a file system without O_TMPFILE leaves after SIGKILL;
    // process ids this large are never in use.
    let stale = destination.dir.join(".nixos.wsl.2147483646.tmp");
    std::fs::write(&stale, b"partial").unwrap();
    let result = write_args(dir.path(), &["-o", s(&destination.tarball)]);
    assert_exit(&result, 0, &[]);
    destination.assert_only_the_outputs();
}

#[test]
fn a_file_size_limit_is_a_named_write_error() {
    let dir = tempfile::tempdir().unwrap();
    let destination = Destination::new(dir.path());
    let closure = closure_file(dir.path());
    let extra = slow_extra_files(dir.path());
    for compression in ["gzip", "none"] {
        // No `trap '' XFSZ`: the binary ignores SIGXFSZ itself.
        let script = format!(
            "ulimit -f 64; exec {} write --no-skeleton --quiet --closure {} --system {} -o {} --manifest {} --compression {compression} --extra-files {}",
            env!("CARGO_BIN_EXE_wsl-tarball"),
            closure.display(),
            fixture_system(),
            destination.tarball.display(),
            destination.manifest.display(),
            extra.display(),
        );
        let result = Command::new("bash")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_exit(
            &result,
            1,
            &[&format!(
                "writing {}: File too large",
                destination.tarball.display()
            )],
        );
        destination.assert_untouched();
    }
}

/// A file system mounted on `dir` for one test, unmounted on drop.
struct Mount {
    dir: PathBuf,
}

impl Mount {
    /// Runs COMMAND with DIR (created first) appended; asserts it succeeded.
    fn run(mut command: Command, dir: PathBuf, cannot_start: &str, failed: &str) -> Self {
        std::fs::create_dir_all(&dir).unwrap();
        let status = command.arg(&dir).status().expect(cannot_start);
        assert!(status.success(), "{failed}");
        Mount { dir }
    }

    /// A 1 MiB tmpfs.
    fn small_tmpfs(dir: PathBuf) -> Self {
        let mut command = Command::new("mount");
        command.args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"]);
        Mount::run(
            command,
            dir,
            "mount",
            "mount a tmpfs (the tests run as root)",
        )
    }

    /// A bindfs (FUSE) view of SOURCE: a file system without `O_TMPFILE`,
    /// so outputs there take the named-temporary fallback.
    fn without_o_tmpfile(source: &Path, dir: PathBuf) -> Self {
        std::fs::create_dir_all(source).unwrap();
        let mut command = Command::new("bindfs");
        command.arg(source);
        Mount::run(
            command,
            dir,
            "bindfs (Debian package bindfs; .ci/run installs it)",
            "bindfs failed",
        )
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
    }
}

#[test]
fn a_full_disk_fails_at_once_for_every_compression() {
    let dir = tempfile::tempdir().unwrap();
    let extra = slow_extra_files(dir.path());
    let disk = Mount::small_tmpfs(dir.path().join("disk"));
    let destination = Destination::new(&disk.dir);
    // Fill the file system.
    let _ = Command::new("dd")
        .args(["if=/dev/zero", "bs=4096"])
        .arg(format!("of={}", disk.dir.join("fill").display()))
        .stderr(Stdio::null())
        .status();
    for compression in ["gzip", "xz", "zstd", "none"] {
        let started = std::time::Instant::now();
        let result = write_args(
            dir.path(),
            &[
                "-o",
                s(&destination.tarball),
                "--manifest",
                s(&destination.manifest),
                "--compression",
                compression,
                "--extra-files",
                s(&extra),
            ],
        );
        let elapsed = started.elapsed();
        assert_exit(
            &result,
            1,
            &[&format!(
                "writing {}: No space left on device",
                destination.tarball.display()
            )],
        );
        // Writing it all takes xz about a minute here; the error comes
        // with the first bytes.
        assert!(
            elapsed < std::time::Duration::from_secs(15),
            "{compression} took {elapsed:?} to notice the full disk"
        );
        destination.assert_untouched();
    }
}

/// Runs the binary with stdout and/or stderr a pipe whose reading end is
/// closed before the binary writes; returns its exit status.
fn run_with_closed_pipes(
    args: &[&str],
    close_stdout: bool,
    close_stderr: bool,
) -> std::process::ExitStatus {
    let mut command = wsl_tarball();
    command.args(args).stdin(Stdio::null());
    command.stdout(if close_stdout {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    command.stderr(if close_stderr {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = command.spawn().unwrap();
    drop(child.stdout.take());
    drop(child.stderr.take());
    child.wait().unwrap()
}

#[test]
fn closed_pipes_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let a = write_fixture(dir.path(), "a.wsl", &[]);
    let b = write_fixture(dir.path(), "b.wsl", &["--mtime", "5"]);
    let missing = dir.path().join("missing.wsl");
    let written = dir.path().join("written.wsl");
    let closure = closure_file(dir.path());
    let cases: Vec<Vec<&str>> = vec![
        vec!["verify", "--bare", "--json", s(&a)],
        vec!["verify", "--bare", s(&a)],
        vec!["inspect", "--json", s(&a)],
        vec!["diff", s(&a), s(&b)],
        vec!["diff", "--json", s(&a), s(&b)],
        vec!["verify", s(&missing)],
        vec![
            "write",
            "--no-skeleton",
            "--closure",
            s(&closure),
            "--system",
            fixture_system(),
            "--json",
            "-o",
            s(&written),
        ],
    ];
    for args in &cases {
        // The status the command has with its output read.
        let expected = run_wsl_tarball(args);
        assert_ne!(expected.status.code(), Some(101), "{args:?}");
        for (close_stdout, close_stderr) in [(true, false), (false, true), (true, true)] {
            let _ = std::fs::remove_file(&written);
            let status = run_with_closed_pipes(args, close_stdout, close_stderr);
            assert_eq!(
                status.code(),
                expected.status.code(),
                "{args:?} with stdout closed {close_stdout}, stderr closed {close_stderr}"
            );
        }
    }
    // The write still happened, whole.
    assert_verifies(&written, Rootfs::Bare);
    // A panic would say so on stderr; with the pipe read it is clean.
    let mut child = wsl_tarball()
        .args(["diff", s(&a), s(&b)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    assert_exit(&output, 1, &[]);
    assert!(output.stderr.is_empty(), "{}", stderr(&output));
}

#[test]
fn thread_counts_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let destination = Destination::new(dir.path());
    for threads in ["100000", "0"] {
        let started = std::time::Instant::now();
        let result = write_args(
            dir.path(),
            &["-o", s(&destination.tarball), "--threads", threads],
        );
        assert_exit(&result, 2, &[&format!("--threads {threads}")]);
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        destination.assert_untouched();
    }
    let cores = std::thread::available_parallelism().unwrap().get();
    let result = write_args(
        dir.path(),
        &[
            "-o",
            s(&destination.tarball),
            "--threads",
            &(4 * cores + 1).to_string(),
        ],
    );
    assert_exit(
        &result,
        2,
        &[&format!(
            "is more than the limit of {} (4 per available core)",
            4 * cores
        )],
    );
    destination.assert_untouched();

    // Within the bound: the same bytes for every count.
    let one = write_fixture(dir.path(), "one.wsl", &["--threads", "1"]);
    let many = write_fixture(
        dir.path(),
        "many.wsl",
        &["--threads", &cores.min(8).to_string()],
    );
    let most = write_fixture(
        dir.path(),
        "most.wsl",
        &["--threads", &(4 * cores).to_string()],
    );
    let bytes = std::fs::read(&one).unwrap();
    assert!(bytes == std::fs::read(&many).unwrap());
    assert!(bytes == std::fs::read(&most).unwrap());
}

#[test]
fn cache_with_another_compression_or_on_a_file_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let destination = Destination::new(dir.path());
    let cache = dir.path().join("cache");
    for compression in ["xz", "zstd", "none"] {
        let result = write_args(
            dir.path(),
            &[
                "-o",
                s(&destination.tarball),
                "--compression",
                compression,
                "--cache",
                s(&cache),
            ],
        );
        assert_exit(
            &result,
            2,
            &[&format!(
                "--cache works with gzip only (each store path is its own gzip segment), not {compression}"
            )],
        );
        assert!(!cache.exists(), "the cache directory was created");
        destination.assert_untouched();
    }
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"not a cache").unwrap();
    let result = write_args(
        dir.path(),
        &["-o", s(&destination.tarball), "--cache", s(&file)],
    );
    assert_exit(
        &result,
        2,
        &[&format!("--cache {} is not a directory", file.display())],
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"not a cache");
    destination.assert_untouched();
}

#[test]
fn a_damaged_cache_segment_is_reported_recompressed_and_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let cold = write_fixture(dir.path(), "cold.wsl", &[]);
    write_fixture(dir.path(), "filling.wsl", &["--cache", s(&cache)]);
    let mut segments: Vec<PathBuf> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    segments.sort();
    // The largest segment, so the flipped byte is in deflate data.
    let victim = segments
        .iter()
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap()
        .clone();
    let good = std::fs::read(&victim).unwrap();
    let mut bad = good.clone();
    let middle = bad.len() / 2;
    bad[middle] ^= 0x01;
    std::fs::write(&victim, &bad).unwrap();

    let warm = dir.path().join("warm.wsl");
    let result = write_args(dir.path(), &["-o", s(&warm), "--cache", s(&cache)]);
    assert_exit(
        &result,
        0,
        &[&format!(
            "warning: cache segment {} is damaged (checksum mismatch); compressed the store path again and replaced the entry",
            victim.display()
        )],
    );
    assert!(std::fs::read(&warm).unwrap() == std::fs::read(&cold).unwrap());
    run_ok(Command::new("gzip").arg("-t").arg(&warm));
    assert_verifies(&warm, Rootfs::Bare);
    assert_eq!(
        std::fs::read(&victim).unwrap(),
        good,
        "the entry was replaced"
    );
    let mut after: Vec<PathBuf> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    after.sort();
    assert_eq!(after, segments, "no stray files in the cache");

    // Repaired: the next run is clean.
    let again = write_args(dir.path(), &["-o", s(&warm), "--cache", s(&cache)]);
    assert_exit(&again, 0, &[]);
    assert!(!stderr(&again).contains("damaged"), "{}", stderr(&again));
}

#[test]
fn gzip_starts_no_threads_beyond_the_worker_pool() {
    let dir = tempfile::tempdir().unwrap();
    let closure = closure_file(dir.path());
    let extra = slow_extra_files(dir.path());
    let output = dir.path().join("threads.wsl");
    let mut child = wsl_tarball()
        .args(fixture_write_args(closure.to_str().unwrap()))
        .arg("--quiet")
        .args(["--compression", "gzip", "--threads", "4", "--extra-files"])
        .arg(&extra)
        .arg("-o")
        .arg(&output)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let status_file = format!("/proc/{}/status", child.id());
    let mut most = 0;
    while child.try_wait().unwrap().is_none() {
        if let Ok(status) = std::fs::read_to_string(&status_file) {
            let threads = status
                .lines()
                .find_map(|line| line.strip_prefix("Threads:"))
                .and_then(|n| n.trim().parse::<usize>().ok())
                .unwrap_or(0);
            most = most.max(threads);
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    assert!(child.wait().unwrap().success());
    // The 4 workers, the main thread, which only puts members in order,
    // and the output's writing thread.
    assert!(most >= 2, "never saw the process ({most} threads)");
    assert!(most <= 4 + 2, "{most} threads for --threads 4");
    assert_verifies(&output, Rootfs::Bare);
}

#[test]
fn a_stdout_that_cannot_be_written_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let a = write_fixture(dir.path(), "a.wsl", &[]);
    let output = wsl_tarball()
        .args(["verify", "--json", s(&a)])
        .stdout(
            std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .unwrap(),
        )
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_exit(
        &output,
        1,
        &["cannot write to standard output: No space left on device"],
    );
}

#[test]
fn without_o_tmpfile_signals_and_stale_files_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let closure = closure_file(dir.path());
    let extra = slow_extra_files(dir.path());
    let mount = Mount::without_o_tmpfile(&dir.path().join("real"), dir.path().join("fuse"));
    let destination = Destination::new(&mount.dir);
    let start = || {
        slow_write_into(&closure, &extra, &destination, dir.path())
            .spawn()
            .unwrap()
    };
    for signal in ["KILL", "QUIT", "USR1", "INT", "TERM"] {
        let mut child = start();
        let temporary = destination
            .dir
            .join(format!(".nixos.wsl.{}.tmp", child.id()));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !temporary.exists() {
            assert!(child.try_wait().unwrap().is_none(), "the run ended early");
            assert!(std::time::Instant::now() < deadline, "no temporary file");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        kill_with(&mut child, signal);
        if signal == "KILL" {
            // Nothing can catch SIGKILL: the named files stay until the
            // next run, which removes them because their process is gone.
            assert!(temporary.exists());
            let result = write_args(
                dir.path(),
                &["-o", s(&destination.tarball), "--threads", "x"],
            );
            assert_exit(&result, 2, &[]);
            assert!(temporary.exists(), "a usage error touches nothing");
            let plain = write_fixture(dir.path(), "plain.wsl", &[]);
            let again = destination.write_both(dir.path());
            assert_exit(&again, 0, &[]);
            destination.assert_only_the_outputs();
            assert!(std::fs::read(&destination.tarball).unwrap() == std::fs::read(plain).unwrap());
            destination.put_back_old_files();
        }
        destination.assert_untouched();
    }
}

/// `write` of the fixture (closure file in `dir`) run in `cwd` with `args`,
/// its stdout piped: the output, stdout holding what was streamed.
fn write_in(cwd: &Path, dir: &Path, args: &[&str]) -> Output {
    let closure = closure_file(dir);
    wsl_tarball()
        .current_dir(cwd)
        .args(["write", "--no-skeleton", "--quiet", "--system"])
        .arg(fixture_system())
        .arg("--closure")
        .arg(&closure)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    wsl_tarball::hex::encode(&sha2::Sha256::digest(bytes))
}

#[test]
fn dash_streams_the_tarball_to_stdout_and_never_makes_a_file_named_dash() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path().join("cwd");
    std::fs::create_dir(&cwd).unwrap();
    let file = dir.path().join("file.wsl");
    let written = write_in(&cwd, dir.path(), &["-o", s(&file)]);
    assert_exit(&written, 0, &[]);
    let expected = std::fs::read(&file).unwrap();

    let streamed = write_in(&cwd, dir.path(), &["-o", "-", "--manifest", "m.json"]);
    assert_exit(&streamed, 0, &[]);
    assert!(streamed.stdout == expected, "-o - differs from -o FILE");
    assert_eq!(dir_names(&cwd), ["m.json"], "no file named -");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cwd.join("m.json")).unwrap()).unwrap();
    assert_eq!(manifest["tarball"]["sha256"], sha256_hex(&expected));
    assert_eq!(manifest["tarball"]["size"], expected.len() as u64);

    // Straight into a reader, as `| tar -tzf -`.
    let closure = closure_file(dir.path());
    let mut writer = wsl_tarball()
        .current_dir(&cwd)
        .args(["write", "--no-skeleton", "--quiet", "--system"])
        .arg(fixture_system())
        .arg("--closure")
        .arg(&closure)
        .args(["-o", "-"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let listed = Command::new("tar")
        .args(["-tzf", "-"])
        .stdin(writer.stdout.take().unwrap())
        .output()
        .unwrap();
    assert!(writer.wait().unwrap().success());
    assert!(listed.status.success(), "{}", stderr(&listed));
    let names = String::from_utf8(listed.stdout).unwrap();
    assert!(
        names.contains(fixture_system().trim_start_matches('/')),
        "{names}"
    );

    // /dev/stdout is standard output too, a pipe included.
    let dev = write_in(&cwd, dir.path(), &["-o", "/dev/stdout"]);
    assert_exit(&dev, 0, &[]);
    assert!(
        dev.stdout == expected,
        "-o /dev/stdout differs from -o FILE"
    );
    assert_eq!(dir_names(&cwd), ["m.json"]);
}

#[test]
fn dash_to_a_terminal_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let closure = closure_file(dir.path());
    // A terminal for the child: script(1) runs it on a pty.
    let command = format!(
        "{} write --no-skeleton --quiet --system {} --closure {} -o - >/dev/tty",
        env!("CARGO_BIN_EXE_wsl-tarball"),
        fixture_system(),
        s(&closure)
    );
    let run = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .expect("script(1) is installed");
    let text = String::from_utf8_lossy(&run.stdout);
    assert_eq!(run.status.code(), Some(2), "{text}");
    assert!(text.contains("standard output is a terminal"), "{text}");
    assert!(
        text.len() < 2000,
        "compressed bytes on the terminal: {text}"
    );
    assert_eq!(dir_names(dir.path()), ["closure.json"]);
}

#[test]
fn the_suffix_chooses_the_compression_or_contradicts_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let magic = |name: &str, extra: &[&str]| {
        let path = dir.path().join(name);
        let output = write_args(dir.path(), &[&["-o", s(&path)], extra].concat());
        assert_exit(&output, 0, &[]);
        std::fs::read(&path).unwrap()[..6].to_vec()
    };
    assert_eq!(magic("a.tar.xz", &[]), b"\xfd7zXZ\0");
    assert_eq!(magic("a.txz", &[]), b"\xfd7zXZ\0");
    assert_eq!(magic("a.tar.zst", &[])[..4], *b"\x28\xb5\x2f\xfd");
    assert_eq!(magic("a.tzst", &[])[..4], *b"\x28\xb5\x2f\xfd");
    assert_eq!(magic("a.tar.gz", &[])[..2], *b"\x1f\x8b");
    // .wsl names no compression: the flag's or module's, else gzip.
    assert_eq!(magic("a.wsl", &[])[..2], *b"\x1f\x8b");
    assert_eq!(magic("b.wsl", &["--compression", "xz"]), b"\xfd7zXZ\0");
    assert_eq!(magic("a.other", &[])[..2], *b"\x1f\x8b");
    // An uncompressed tar: the first header's magic.
    let tar = dir.path().join("a.tar");
    assert_exit(&write_args(dir.path(), &["-o", s(&tar)]), 0, &[]);
    assert_eq!(std::fs::read(&tar).unwrap()[257..262], *b"ustar");
    // The flag and the suffix agreeing is fine; contradicting is not.
    assert_eq!(magic("b.tar.xz", &["--compression", "xz"]), b"\xfd7zXZ\0");
    let before = dir_names(dir.path());
    for (name, flag, needles) in [
        (
            "c.tar.xz",
            "gzip",
            &["--compression gzip", "c.tar.xz", "xz"][..],
        ),
        ("c.tar", "zstd", &["--compression zstd", "c.tar"]),
        ("c.tar.bz2", "gzip", &["c.tar.bz2", "bzip2"]),
    ] {
        let path = dir.path().join(name);
        let output = write_args(dir.path(), &["-o", s(&path), "--compression", flag]);
        assert_exit(&output, 2, needles);
        assert_eq!(dir_names(dir.path()), before, "{name}: something written");
    }
    // A compression the tool does not make is refused without the flag too.
    let output = write_args(dir.path(), &["-o", s(&dir.path().join("d.tar.bz2"))]);
    assert_exit(&output, 2, &["d.tar.bz2", "bzip2"]);
    assert_eq!(dir_names(dir.path()), before);
}

#[test]
fn a_failed_stream_exits_non_zero_says_so_and_writes_no_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let extra = dir.path().join("extra/etc/ssh");
    std::fs::create_dir_all(&extra).unwrap();
    std::fs::write(
        extra.join("ssh_host_ed25519_key"),
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n-----END OPENSSH PRIVATE KEY-----\n",
    )
    .unwrap();
    let cwd = dir.path().join("cwd");
    std::fs::create_dir(&cwd).unwrap();
    let extra_arg = dir.path().join("extra");
    let output = write_in(
        &cwd,
        dir.path(),
        &[
            "--extra-files",
            s(&extra_arg),
            "-o",
            "-",
            "--manifest",
            "m.json",
        ],
    );
    assert_exit(
        &output,
        3,
        &["standard output", "must not be used", "no manifest"],
    );
    assert_eq!(
        dir_names(&cwd),
        Vec::<String>::new(),
        "a manifest or a file named -"
    );
    // What was streamed is cut short: no reader takes it as whole.
    let mut gzip = Command::new("gzip")
        .arg("-t")
        .stdin(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::io::Write::write_all(gzip.stdin.as_mut().unwrap(), &output.stdout).unwrap();
    drop(gzip.stdin.take());
    assert!(
        !gzip.wait().unwrap().success(),
        "the failed stream is a whole gzip file"
    );
}

#[test]
fn what_cannot_go_to_stdout_is_a_usage_error_before_anything_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path().join("cwd");
    std::fs::create_dir(&cwd).unwrap();
    for (args, needles) in [
        (
            &["-o", "x.wsl", "--manifest", "-"][..],
            &["--manifest -", "standard output"][..],
        ),
        (&["-o", "-", "--json"], &["--json", "-o -"]),
        (
            &["-o", "-", "--allow-override", "/etc/hostname"],
            &["--allow-override", "-o FILE"],
        ),
    ] {
        let output = write_in(&cwd, dir.path(), args);
        assert_exit(&output, 2, needles);
        assert!(output.stdout.is_empty(), "{args:?}: bytes on stdout");
        assert_eq!(dir_names(&cwd), Vec::<String>::new(), "{args:?}");
    }
    // An update bundle is verified in its file: not streamed.
    let closure = closure_file(dir.path());
    let output = wsl_tarball()
        .current_dir(&cwd)
        .args(["delta", "--from", "/nonexistent.wsl", "--system"])
        .arg(fixture_system())
        .arg("--closure")
        .arg(&closure)
        .args(["-o", "-"])
        .output()
        .unwrap();
    assert_exit(&output, 2, &["-o -", "standard output", "bundle"]);
    assert_eq!(dir_names(&cwd), Vec::<String>::new());
    // So is `build --delta-from`'s, refused before Nix runs.
    let old = dir.path().join("old.json");
    std::fs::write(&old, "[]").unwrap();
    let output = wsl_tarball()
        .current_dir(&cwd)
        .args(["build", "fake", "--flake", "path:/nonexistent-flake"])
        .arg("--delta-from")
        .arg(&old)
        .args(["-o", "-"])
        .output()
        .unwrap();
    assert_exit(&output, 2, &["-o -", "standard output", "bundle"]);
    assert!(!stderr(&output).contains("nix"), "{}", stderr(&output));
    assert_eq!(dir_names(&cwd), Vec::<String>::new());
}

#[test]
fn dash_streams_with_a_cache_the_bytes_of_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path().join("cwd");
    std::fs::create_dir(&cwd).unwrap();
    let cache = dir.path().join("cache");
    let file = dir.path().join("file.wsl");
    let written = write_in(&cwd, dir.path(), &["-o", s(&file)]);
    assert_exit(&written, 0, &[]);
    let expected = std::fs::read(&file).unwrap();
    for run in ["cold", "warm"] {
        let streamed = write_in(&cwd, dir.path(), &["-o", "-", "--cache", s(&cache)]);
        assert_exit(&streamed, 0, &[]);
        assert!(streamed.stdout == expected, "{run} cache: -o - differs");
    }
    assert!(!dir_names(&cache).is_empty(), "the cache was filled");
    assert_eq!(dir_names(&cwd), Vec::<String>::new());
}

#[test]
fn a_stream_that_fails_its_nar_match_says_so_and_writes_no_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path().join("cwd");
    std::fs::create_dir(&cwd).unwrap();
    // The closure file, with every store path's narSize off by 8.
    let closure = closure_file(dir.path());
    let mut infos: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&closure).unwrap()).unwrap();
    for info in infos.as_array_mut().unwrap() {
        info["narSize"] = (info["narSize"].as_u64().unwrap() + 8).into();
    }
    let stale = dir.path().join("stale.json");
    std::fs::write(&stale, serde_json::to_vec(&infos).unwrap()).unwrap();
    let output = wsl_tarball()
        .current_dir(&cwd)
        .args(["write", "--no-skeleton", "--quiet", "--system"])
        .arg(fixture_system())
        .arg("--closure")
        .arg(&stale)
        .args(["-o", "-", "--manifest", "m.json"])
        .output()
        .unwrap();
    assert_exit(
        &output,
        1,
        &[
            "bytes",
            "standard output",
            "must not be used",
            "no manifest",
        ],
    );
    assert_eq!(dir_names(&cwd), Vec::<String>::new());
}
