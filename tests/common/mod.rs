//! Shared helpers for the integration tests: real Nix, real GNU tar, and the
//! `wsl-tarball` binary under test.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

pub mod corpus;

/// Nix settings for every call: no binary cache can be reached here.
pub const NIX_CONFIG: &str = "substituters =\nexperimental-features = nix-command flakes\n";

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A command for a Nix tool with the test settings.
pub fn nix_command(program: &str) -> Command {
    let mut command = Command::new(program);
    command.env("NIX_CONFIG", NIX_CONFIG);
    command
}

/// Runs a command, panicking with its stderr if it fails.
pub fn run_ok(command: &mut Command) -> Vec<u8> {
    let output = command.stdin(Stdio::null()).output().unwrap_or_else(|e| {
        panic!("cannot run {command:?}: {e} (is it installed? .ci/run installs it)")
    });
    assert!(
        output.status.success(),
        "{command:?} failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

pub fn run_text(command: &mut Command) -> String {
    String::from_utf8(run_ok(command)).expect("UTF-8 output")
}

/// The fixture closure from tests/fixtures/closure.nix, built once per test
/// binary. Returns the system (toplevel) store path.
pub fn fixture_system() -> &'static str {
    static SYSTEM: OnceLock<String> = OnceLock::new();
    SYSTEM.get_or_init(|| build_fixture(""))
}

/// Builds the fixture with a salt, giving a different closure of the same shape.
pub fn build_fixture(salt: &str) -> String {
    let file = repo_root().join("tests/fixtures/closure.nix");
    run_text(
        nix_command("nix-build")
            .arg("--no-out-link")
            .arg(&file)
            .args(["--argstr", "salt", salt]),
    )
    .trim()
    .to_owned()
}

/// A version of the delta fixture system (tests/fixtures/delta-system.nix;
/// versions differ in `hello` and /etc/motd): its toplevel.
pub fn delta_system(version: &str) -> String {
    let file = repo_root().join("tests/fixtures/delta-system.nix");
    run_text(
        nix_command("nix-build")
            .arg("--no-out-link")
            .arg(&file)
            .args(["--argstr", "version", version]),
    )
    .trim()
    .to_owned()
}

/// `nix path-info --json -r` of a path in the host store, as written to a file.
pub fn write_path_info(system: &str, dir: &Path) -> PathBuf {
    let json = run_ok(nix_command("nix").args(["path-info", "--json", "-r", system]));
    let file = dir.join("closure.json");
    std::fs::write(&file, json).unwrap();
    file
}

/// narHash, narSize and references of every path, from `nix path-info --json`.
pub type Validity = BTreeMap<String, (String, u64, Vec<String>)>;

pub fn path_info_validity(store: Option<&str>, system: &str) -> Validity {
    let mut command = nix_command("nix");
    command.args(["path-info", "--json", "-r"]);
    if let Some(store) = store {
        command.args(["--store", store]);
    }
    let json: serde_json::Value = serde_json::from_slice(&run_ok(command.arg(system))).unwrap();
    json.as_array()
        .expect("Nix 2.8 prints a list")
        .iter()
        .map(|info| {
            assert_ne!(info["valid"], false, "{info} is not valid");
            let mut refs: Vec<String> = info["references"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap().to_owned())
                .collect();
            refs.sort();
            (
                info["path"].as_str().unwrap().to_owned(),
                (
                    info["narHash"].as_str().unwrap().to_owned(),
                    info["narSize"].as_u64().unwrap(),
                    refs,
                ),
            )
        })
        .collect()
}

/// The binary under test.
pub fn wsl_tarball() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wsl-tarball"));
    command.env_remove("SOURCE_DATE_EPOCH");
    // Sensitive variables of the machine running the tests are not the
    // tests' business: the tests that need one set it.
    for variable in wsl_tarball::scan::sensitive_variables(std::env::vars_os()) {
        command.env_remove(&variable.name);
    }
    command.env_remove(wsl_tarball::scan::SKIP_CHECKS_VAR);
    // `build` caches by default; every command gets a cache of its own (in
    // target/, not the runner's home), so no test sees another's segments.
    static COMMANDS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = COMMANDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    command.env(
        "XDG_CACHE_HOME",
        Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("test-cache")
            .join(format!("{}-{n}", std::process::id())),
    );
    command
}

/// Runs the binary, returning its output whatever the status.
pub fn run_wsl_tarball(args: &[&str]) -> Output {
    wsl_tarball()
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run wsl-tarball")
}

/// `write` of the fixture closure with extra arguments; panics on failure.
pub fn write_fixture(dir: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let system = fixture_system();
    let closure = write_path_info(system, dir);
    let output = dir.join(name);
    let args = [&["--quiet"], extra].concat();
    let result = run_write(&closure, system, &output, &args);
    assert!(
        result.status.success(),
        "wsl-tarball write {args:?} failed:\n{}",
        String::from_utf8_lossy(&result.stderr)
    );
    assert_verifies(&output, Rootfs::Bare);
    output
}

/// Extracts a tarball with GNU tar, keeping owners and modes (CI runs as root).
pub fn extract(tarball: &Path, root: &Path) {
    std::fs::create_dir_all(root).unwrap();
    run_ok(
        Command::new("tar")
            .args(["-x", "-p", "--same-owner", "--numeric-owner", "-f"])
            .arg(tarball)
            .arg("-C")
            .arg(root),
    );
}

/// What upstream's tarball builder runs, on a tree: the reference we must match.
pub fn gnu_tar_reference(root: &Path) -> Vec<u8> {
    run_ok(
        Command::new("tar")
            .args([
                "--format=gnu",
                "--sort=name",
                "--mtime=@1",
                "--owner=0",
                "--group=0",
                "--numeric-owner",
                "--hard-dereference",
                "-c",
                "-f",
                "-",
                "-C",
            ])
            .arg(root)
            .arg("."),
    )
}

/// Names in a directory other than the expected ones (temporary files left behind).
pub fn dir_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// What a tarball `write` or `build` made holds, as `verify` judges it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rootfs {
    /// The store and Nix's state only (`write --no-skeleton`), verified with
    /// `verify --bare`.
    Bare,
    /// With the NixOS skeleton (`--nixos`, `--facts`, `build`).
    Skeleton,
}

/// `wsl-tarball verify TARBALL` passes (exit 0, no failed check), and the
/// skeleton check ran exactly when the tarball has one.
pub fn assert_verifies(tarball: &Path, kind: Rootfs) {
    let mut verify = wsl_tarball();
    verify.args(["verify", "--json"]);
    if kind == Rootfs::Bare {
        verify.arg("--bare");
    }
    let output = verify
        .arg(tarball)
        .stdin(Stdio::null())
        .output()
        .expect("run wsl-tarball verify");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "verify {} printed no JSON ({e}): {}",
            tarball.display(),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    assert!(
        output.status.success(),
        "verify rejects {}, which write made:\n{report:#}",
        tarball.display()
    );
    let skeleton = report["checks"]
        .as_array()
        .and_then(|checks| checks.iter().find(|c| c["check"] == "skeleton"))
        .unwrap_or_else(|| panic!("no skeleton check in {report:#}"));
    let expected = match kind {
        Rootfs::Bare => "skipped",
        Rootfs::Skeleton => "passed",
    };
    assert_eq!(
        skeleton["status"],
        expected,
        "{}: {skeleton:#}",
        tarball.display()
    );
}

/// Waits until process `pid` has a file open in `dir` (an unnamed
/// `O_TMPFILE` output shows there as `DIR/#INODE (deleted)` in /proc), so a
/// test can interrupt it mid-write. Panics after `timeout` or if `alive`
/// says the process ended.
pub fn wait_for_open_file_in(
    pid: u32,
    dir: &Path,
    timeout: std::time::Duration,
    mut alive: impl FnMut() -> bool,
) {
    let dir = std::fs::canonicalize(dir).unwrap();
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let open = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|fd| std::fs::read_link(fd.path()).ok())
            .any(|target| target.parent() == Some(dir.as_path()));
        if open {
            return;
        }
        assert!(alive(), "the run ended before it was interrupted");
        assert!(
            std::time::Instant::now() < deadline,
            "no file was opened in {}",
            dir.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// The chroot with a current Nix that .ci/run makes with
/// ../shared/newer-nix/setup (`WSL_TARBALL_NEWER_NIX=DIR`), if it is set.
pub fn newer_nix_chroot() -> Option<PathBuf> {
    let dir = PathBuf::from(std::env::var_os("WSL_TARBALL_NEWER_NIX")?);
    assert!(
        dir.join("usr/bin/nix").exists(),
        "WSL_TARBALL_NEWER_NIX={} has no usr/bin/nix; make it with ../shared/newer-nix/setup sid DIR",
        dir.display()
    );
    Some(dir)
}

/// [`gnu_tar_reference`] of `tree`, written to `tarball`: a tarball with the
/// same bytes on every machine, for fixtures.
pub fn gnu_tar_file(tree: &Path, tarball: &Path) {
    std::fs::write(tarball, gnu_tar_reference(tree)).unwrap();
}

/// Builds `config.system.build.OUTPUT` of the test flake's `fake` host and
/// returns its store path.
pub fn build_fake_host_output(output: &str) -> String {
    let attribute = format!(
        "path:{}#nixosConfigurations.fake.config.system.build.{output}",
        repo_root().join("tests/nix").display()
    );
    let built: serde_json::Value = serde_json::from_slice(&run_ok(nix_command("nix").args([
        "build",
        "--no-link",
        "--json",
        &attribute,
    ])))
    .unwrap();
    built[0]["outputs"]["out"].as_str().unwrap().to_owned()
}

/// Runs `write --no-skeleton --closure CLOSURE --system SYSTEM -o OUTPUT`
/// and then EXTRA, returning its output whatever the status.
pub fn run_write(closure: &Path, system: &str, output: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "write",
        "--no-skeleton",
        "--closure",
        closure.to_str().unwrap(),
        "--system",
        system,
        "-o",
        output.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run_wsl_tarball(&args)
}

/// An unrun `write --quiet --no-skeleton` of SYSTEM to DIR/NAME, its closure
/// file in DIR/closure-NAME: the command and the output's path.
pub fn quiet_write_command(dir: &Path, system: &str, name: &str) -> (Command, PathBuf) {
    let closure_dir = dir.join(format!("closure-{name}"));
    std::fs::create_dir_all(&closure_dir).unwrap();
    let closure = write_path_info(system, &closure_dir);
    let output = dir.join(name);
    let mut command = wsl_tarball();
    command
        .args(["write", "--quiet", "--no-skeleton", "--system", system])
        .arg("--closure")
        .arg(&closure)
        .arg("-o")
        .arg(&output);
    (command, output)
}

/// `write --no-skeleton` of the fixture system from CLOSURE: the arguments
/// before the output and any flags.
pub fn fixture_write_args(closure: &str) -> [&str; 6] {
    [
        "write",
        "--no-skeleton",
        "--closure",
        closure,
        "--system",
        fixture_system(),
    ]
}

/// A system user made with `useradd` for one test (a second owner for
/// files: the tests run as root), removed with `userdel` when dropped.
pub struct TestUser {
    pub name: String,
    pub uid: u32,
}

impl TestUser {
    /// A new user named `wt` TAG PID (`useradd` waits for other tests
    /// holding the lock on /etc/passwd).
    pub fn new(tag: &str) -> Self {
        let name = format!("wt{tag}{}", std::process::id());
        // Left over from a run that was killed.
        let _ = Command::new("userdel").arg(&name).output();
        let mut attempts = 0;
        loop {
            let run = Command::new("useradd")
                .args([
                    "--system",
                    "--no-create-home",
                    "--shell",
                    "/usr/sbin/nologin",
                ])
                .arg(&name)
                .output()
                .expect("run useradd");
            if run.status.success() {
                break;
            }
            attempts += 1;
            assert!(
                attempts < 100,
                "useradd {name}: {}",
                String::from_utf8_lossy(&run.stderr)
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let uid = run_text(Command::new("id").args(["-u", &name]))
            .trim()
            .parse()
            .unwrap();
        TestUser { name, uid }
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        for _ in 0..100 {
            let run = Command::new("userdel").arg(&self.name).output();
            if run.is_ok_and(|run| run.status.success()) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

/// Whether the tests run as root (CI does): the effective uid from
/// /proc/self/status.
pub fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1).map(|euid| euid == "0"))
        .unwrap_or(false)
}

/// Text that would drive a terminal if printed as it came in a colleague's
/// input: an OSC title change ended by BEL, a screen clear, CR and LF, a C1
/// CSI, DEL and a right-to-left override.
pub const HOSTILE: &str = "x\x1b]0;pwned\x07\x1b[2J\r\n\u{9b}31m\x7f\u{202e}lmth.sh";

/// [`HOSTILE`] as wsl-tarball prints it on a terminal (src/escape.rs, the
/// style of `ls --quoting-style=escape`).
pub const HOSTILE_ESCAPED: &str = r"x\033]0;pwned\a\033[2J\r\n\23331m\177\u{202e}lmth.sh";

/// The store path `/nix/store/HASH-HOSTILE` that [`hostile_tree`] makes.
pub fn hostile_store_path() -> String {
    format!("/nix/store/7h7qgvs4kgzsn8a6rb273saxyqh4jxlz-{HOSTILE}")
}

/// Makes a rootfs tree at ROOT whose names and link targets hold
/// [`HOSTILE`]: the store path [`hostile_store_path`] with a file named
/// HOSTILE in it, the system profile leading there, and `/etc/HOSTILE`, a
/// symlink to `/HOSTILE`.
pub fn hostile_tree(root: &Path) {
    use std::os::unix::fs::symlink;
    let store_path = root.join(hostile_store_path().trim_start_matches('/'));
    std::fs::create_dir_all(&store_path).unwrap();
    std::fs::write(store_path.join(HOSTILE), "hello\n").unwrap();
    let profiles = root.join("nix/var/nix/profiles");
    std::fs::create_dir_all(&profiles).unwrap();
    symlink(hostile_store_path(), profiles.join("system")).unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    symlink(format!("/{HOSTILE}"), root.join("etc").join(HOSTILE)).unwrap();
}

/// Makes ROOT/nix/var/nix/db/db.sqlite with the real schema (made by the
/// sqlite3 tool) and one row naming [`hostile_store_path`] with a hash
/// that is [`HOSTILE`] text.
pub fn hostile_nix_database(root: &Path) {
    let db = root.join("nix/var/nix/db");
    std::fs::create_dir_all(&db).unwrap();
    let schema = std::fs::read_to_string(repo_root().join("src/nixdb/schema.sql")).unwrap();
    let sql = format!(
        "{schema}\ninsert into ValidPaths (path, hash, registrationTime, narSize) \
         values ('{}', 'sha256:{HOSTILE}', 1, 1);\n",
        hostile_store_path()
    );
    let mut sqlite = Command::new("sqlite3")
        .arg(db.join("db.sqlite"))
        .stdin(Stdio::piped())
        .spawn()
        .expect("run sqlite3");
    std::io::Write::write_all(&mut sqlite.stdin.take().unwrap(), sql.as_bytes()).unwrap();
    assert!(sqlite.wait().unwrap().success());
}

/// Asserts that nothing a command printed can drive a terminal: both
/// streams are UTF-8 without a C0 control but the report's own line breaks,
/// DEL, a C1 control, or a character that reorders or hides text. Returns
/// stdout and stderr together, as text.
pub fn assert_terminal_safe(what: &str, output: &Output) -> String {
    let mut both = String::new();
    for (stream, bytes) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
        let text = std::str::from_utf8(bytes).unwrap_or_else(|e| {
            panic!(
                "{what}: {stream} is not UTF-8 ({e}): {:?}",
                String::from_utf8_lossy(bytes)
            )
        });
        let unsafe_char = |c: char| {
            (c.is_control() && c != '\n')
                || matches!(c,
                    '\u{200b}'..='\u{200f}' | '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}'
                    | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
        };
        let chars: Vec<char> = text.chars().collect();
        if let Some(at) = chars.iter().position(|&c| unsafe_char(c)) {
            let context: String = chars[at.saturating_sub(60)..(at + 60).min(chars.len())]
                .iter()
                .collect();
            panic!("{what}: a terminal control reaches {stream} at character {at}: …{context:?}…");
        }
        both.push_str(text);
    }
    both
}

// ---------------------------------------------------------------------------
// Delta updates (tests/delta.rs, tests/sign.rs): two versions of the
// NixOS-shaped system of tests/fixtures/delta-system.nix.

// (`delta_system` itself is above, beside the other fixture builders.)

/// Version 1 of the delta fixture system.
pub fn v1() -> &'static str {
    static SYSTEM: OnceLock<String> = OnceLock::new();
    SYSTEM.get_or_init(|| delta_system("1"))
}

/// Version 2: another hello and motd.
pub fn v2() -> &'static str {
    static SYSTEM: OnceLock<String> = OnceLock::new();
    SYSTEM.get_or_init(|| delta_system("2"))
}

/// `nix path-info --json -r SYSTEM` into DIR/NAME.
pub fn closure_file(system: &str, dir: &Path, name: &str) -> PathBuf {
    let file = write_path_info(system, dir);
    let named = dir.join(name);
    std::fs::rename(&file, &named).unwrap();
    named
}

/// A tarball of SYSTEM (with its manifest) and its closure file, in DIR.
pub fn write_system(system: &str, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
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

/// A root made by extracting a tarball, as `wsl --import` would.
pub fn root_from(tarball: &Path, dir: &Path, name: &str) -> PathBuf {
    let plain = dir.join(format!("{name}.tar"));
    std::fs::write(&plain, run_ok(Command::new("gzip").arg("-dc").arg(tarball))).unwrap();
    let root = dir.join(name);
    extract(&plain, &root);
    root
}

/// Nix's store URI for a root.
pub fn store_of(root: &Path) -> String {
    format!("local?root={}", root.display())
}

/// Where R's system profile leads: follows the links inside R.
pub fn profile_system(root: &Path) -> String {
    let profiles = root.join("nix/var/nix/profiles");
    let generation = std::fs::read_link(profiles.join("system")).unwrap();
    std::fs::read_link(profiles.join(generation))
        .unwrap()
        .display()
        .to_string()
}

/// A key pair made by Nix itself: `nix key generate-secret --key-name NAME`
/// into DIR/NAME.sec and `nix key convert-secret-to-public` of it into
/// DIR/NAME.pub (each as Nix prints it).
pub fn nix_key_pair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let secret = run_ok(nix_command("nix").args(["key", "generate-secret", "--key-name", name]));
    let secret_file = dir.join(format!("{name}.sec"));
    std::fs::write(&secret_file, &secret).unwrap();
    // `run_ok` gives no standard input; this reads the secret from it.
    let public = nix_command("nix")
        .args(["key", "convert-secret-to-public"])
        .stdin(std::fs::File::open(&secret_file).unwrap())
        .output()
        .unwrap();
    assert!(public.status.success(), "{public:?}");
    let public = public.stdout;
    let public_file = dir.join(format!("{name}.pub"));
    std::fs::write(&public_file, public).unwrap();
    (secret_file, public_file)
}
