//! `wsl-tarball build` against the nixpkgs-free fake NixOS system in
//! tests/nix, driven the way `nix run` drives it, with the skeleton checked
//! against what WSL needs from a distribution.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use common::*;

fn test_flake() -> String {
    format!("path:{}", repo_root().join("tests/nix").display())
}

/// Builds HOST from the test flake into DIR/name and extracts it to DIR/root.
fn build_and_extract(dir: &Path, host: &str) -> (PathBuf, PathBuf) {
    let tarball = dir.join(format!("{host}.wsl"));
    run_ok(
        wsl_tarball()
            .env("NIX_CONFIG", NIX_CONFIG)
            .args(["build", host, "--flake", &test_flake(), "--quiet", "-o"])
            .arg(&tarball),
    );
    assert_verifies(&tarball, Rootfs::Skeleton);
    let plain = dir.join(format!("{host}.tar"));
    std::fs::write(
        &plain,
        run_ok(Command::new("gzip").arg("-dc").arg(&tarball)),
    )
    .unwrap();
    let root = dir.join(format!("root-{host}"));
    extract(&plain, &root);
    (plain, root)
}

/// Follows symlinks inside the rootfs: absolute targets are taken relative
/// to `root`, as WSL resolves them inside the distribution.
fn resolve_in_root(root: &Path, path: &str) -> PathBuf {
    let mut current = PathBuf::from(path.trim_start_matches('/'));
    for _ in 0..40 {
        let mut resolved = PathBuf::new();
        let mut changed = false;
        let components: Vec<_> = current.components().collect();
        for (i, component) in components.iter().enumerate() {
            resolved.push(component);
            let host = root.join(&resolved);
            if let Ok(target) = std::fs::read_link(&host) {
                let mut next = if target.is_absolute() {
                    PathBuf::from(target.strip_prefix("/").unwrap())
                } else {
                    resolved.parent().unwrap().join(target)
                };
                for rest in &components[i + 1..] {
                    next.push(rest);
                }
                current = next;
                changed = true;
                break;
            }
        }
        if !changed {
            return root.join(current);
        }
    }
    panic!("symlink loop resolving {path}");
}

fn is_elf(path: &Path) -> bool {
    std::fs::read(path).is_ok_and(|bytes| bytes.starts_with(b"\x7fELF"))
}

fn table(root: &Path, file: &str) -> BTreeMap<String, Vec<String>> {
    std::fs::read_to_string(root.join(file))
        .unwrap()
        .lines()
        .map(|line| {
            let fields: Vec<String> = line.split(':').map(str::to_owned).collect();
            (fields[0].clone(), fields)
        })
        .collect()
}

#[test]
fn built_skeleton_meets_what_wsl_needs() {
    let dir = tempfile::tempdir().unwrap();
    let (plain, root) = build_and_extract(dir.path(), "fake");

    // Users: root is uid 0; the default user exists with its home.
    let passwd = table(&root, "etc/passwd");
    assert_eq!(passwd["root"][2], "0");
    assert_eq!(passwd["nixos"][2..6], ["1000", "100", "", "/home/nixos"]);
    assert_eq!(
        passwd["messagebus"][2], "999",
        "missing uid allocated from 999 down"
    );
    let group = table(&root, "etc/group");
    assert_eq!(group["wheel"][3], "nixos");
    // No password hashes anywhere; shadow is 0640 root:shadow, as
    // update-users-groups.pl leaves it.
    let shadow = table(&root, "etc/shadow");
    assert!(shadow.values().all(|fields| fields[1] == "!"), "{shadow:?}");
    let shadow_meta = std::fs::metadata(root.join("etc/shadow")).unwrap();
    assert_eq!(
        (
            shadow_meta.mode() & 0o777,
            shadow_meta.uid(),
            shadow_meta.gid()
        ),
        (0o640, 0, 318)
    );
    // Each password option is left to first-boot activation: the shadow line
    // for hashedPassword, hashedPasswordFile and password; the whole user for
    // initialPassword and initialHashedPassword (applied to new users only).
    let names = |t: &BTreeMap<String, Vec<String>>| t.keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        names(&passwd),
        [
            "alice",
            "dave",
            "erin",
            "messagebus",
            "nixos",
            "noshell",
            "root"
        ]
    );
    assert_eq!(names(&shadow), ["messagebus", "nixos", "noshell", "root"]);
    // A null shell is what activation sets for a new user: nologin. A
    // disabled user is not written, nor its home made.
    assert_eq!(passwd["noshell"][6], "/run/current-system/sw/bin/nologin");
    assert!(!root.join("home/ghost").exists());
    assert!(!group["users"].join(":").contains("ghost"));
    let home = std::fs::metadata(root.join("home/nixos")).unwrap();
    assert_eq!(
        (home.uid(), home.gid(), home.mode() & 0o777),
        (1000, 100, 0o700)
    );

    // NixOS-WSL's native systemd module: /sbin -> /bin, /bin/init -> shim.
    assert_eq!(
        std::fs::read_link(root.join("sbin")).unwrap(),
        Path::new("/bin")
    );
    assert!(std::fs::read_link(root.join("bin/init"))
        .unwrap()
        .ends_with("bin/systemd-shim"));
    // wsl.extraBin: the last `sh` wins; `copy = true` is a file, not a link.
    let sh = std::fs::read_link(root.join("bin/sh")).unwrap();
    assert!(
        sh.to_string_lossy().ends_with("-fake-bash/bin/sh"),
        "{sh:?}"
    );
    let env = std::fs::symlink_metadata(root.join("bin/env")).unwrap();
    assert!(env.is_file() && is_elf(&root.join("bin/env")), "{env:?}");

    // Channels as upstream: nixos and nixos-wsl, in nix-channel's format.
    assert_eq!(
        std::fs::read_to_string(root.join("root/.nix-channels")).unwrap(),
        "https://nixos.org/channels/nixos-unstable nixos\n\
         https://github.com/nix-community/NixOS-WSL/archive/refs/heads/main.tar.gz nixos-wsl\n"
    );

    // A copied /etc file owned by names resolves them against the system's
    // own users and groups, as setup-etc's getpwnam does.
    let owned = std::fs::symlink_metadata(root.join("etc/owned-by-name")).unwrap();
    assert_eq!(
        (
            owned.is_file(),
            owned.mode() & 0o7777,
            owned.uid(),
            owned.gid()
        ),
        (true, 0o640, 1000, 1)
    );

    // Programs WSL starts resolve to ELF files inside the rootfs.
    for program in ["/bin/sh", "/bin/bash", "/sbin/init", "/usr/bin/env"] {
        let resolved = resolve_in_root(&root, program);
        assert!(
            is_elf(&resolved),
            "{program} resolves to {resolved:?}, not an ELF"
        );
    }

    // /etc as setup-etc makes it; wsl.conf present before boot.
    let wsl_conf = std::fs::read_to_string(resolve_in_root(&root, "/etc/wsl.conf")).unwrap();
    assert!(wsl_conf.contains("default=nixos"));
    assert_eq!(
        std::fs::read_link(root.join("etc/hostname")).unwrap(),
        Path::new("/etc/static/hostname")
    );
    assert_eq!(
        std::fs::read_link(root.join("etc/ssh/ssh_config")).unwrap(),
        Path::new("/etc/static/ssh/ssh_config")
    );
    let sudoers = std::fs::symlink_metadata(root.join("etc/sudoers")).unwrap();
    assert!(
        sudoers.is_file(),
        "a .mode companion means a copy, not a link"
    );
    assert_eq!(
        (sudoers.mode() & 0o7777, sudoers.uid(), sudoers.gid()),
        (0o440, 0, 1)
    );
    assert!(std::fs::read_link(root.join("etc/resolv.conf"))
        .unwrap()
        .starts_with("/nix/store"));
    assert_eq!(
        std::fs::read_to_string(root.join("etc/.clean")).unwrap(),
        "owned-by-name\nresolv.conf\nsudoers\n"
    );
    assert!(root.join("etc/NIXOS").is_file());
    assert!(std::fs::read_link(root.join("etc/static"))
        .unwrap()
        .starts_with("/nix/store"));

    // wsl-distribution.conf: root-owned 0644, assets under /usr/lib/wsl.
    let conf_meta = std::fs::metadata(root.join("etc/wsl-distribution.conf")).unwrap();
    assert_eq!(
        (conf_meta.uid(), conf_meta.gid(), conf_meta.mode() & 0o777),
        (0, 0, 0o644)
    );
    let conf = std::fs::read_to_string(root.join("etc/wsl-distribution.conf")).unwrap();
    assert!(conf.contains("[oobe]\ndefaultName=NixOS-Fake\n"), "{conf}");
    assert!(
        conf.contains("[shortcut]\nicon=/usr/lib/wsl/nixos.ico\n"),
        "{conf}"
    );
    assert!(
        conf.contains("[windowsterminal]\nprofileTemplate=/usr/lib/wsl/terminal-profile.json\n"),
        "{conf}"
    );
    let profile = std::fs::metadata(root.join("usr/lib/wsl/terminal-profile.json")).unwrap();
    assert_eq!(
        (profile.mode() & 0o777, profile.uid(), profile.gid()),
        (0o640, 0, 0)
    );
    let icon = std::fs::read(root.join("usr/lib/wsl/nixos.ico")).unwrap();
    assert!(icon.starts_with(&[0, 0, 1, 0]) && icon.len() <= 1 << 20);

    assert!(
        std::fs::read_to_string(root.join("etc/nixos/configuration.nix"))
            .unwrap()
            .contains("wsl.enable = true")
    );
    let profile = std::fs::read_link(root.join("nix/var/nix/profiles/system-1-link")).unwrap();
    assert!(profile
        .to_string_lossy()
        .contains("nixos-system-nixos-wsl-fake"));

    // No hard links in the archive.
    let listing = run_text(Command::new("tar").arg("-tvf").arg(&plain));
    assert!(
        !listing.lines().any(|l| l.starts_with('h')),
        "hard link entry found"
    );
}

#[test]
fn populate_bin_false_leaves_bin_to_another_module() {
    let dir = tempfile::tempdir().unwrap();
    let (plain, root) = build_and_extract(dir.path(), "nobin");
    run_ok(wsl_tarball().arg("verify").arg(&plain));
    // A real /sbin with the shim; /bin holds only nixpkgs' own /bin/sh.
    assert!(std::fs::symlink_metadata(root.join("sbin"))
        .unwrap()
        .is_dir());
    assert!(is_elf(&resolve_in_root(&root, "/sbin/init")));
    assert_eq!(dir_names(&root.join("bin")), ["sh"]);
    assert!(is_elf(&resolve_in_root(&root, "/bin/sh")));
}

#[test]
fn a_host_without_the_module_gets_the_default_skeleton() {
    let dir = tempfile::tempdir().unwrap();
    let (_, root) = build_and_extract(dir.path(), "bare");
    assert_eq!(table(&root, "etc/passwd")["root"][2], "0");
    for program in ["/bin/sh", "/bin/bash", "/sbin/init"] {
        assert!(is_elf(&resolve_in_root(&root, program)), "{program}");
    }
    let conf = std::fs::read_to_string(root.join("etc/wsl-distribution.conf")).unwrap();
    assert_eq!(conf, "[oobe]\ndefaultName=NixOS\n");
}

#[test]
fn build_reports_nix_errors_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("nixos.wsl");
    // A flake that is not there: Nix's error, then the command that failed.
    let missing = format!("path:{}", dir.path().join("no-flake-here").display());
    let result = wsl_tarball()
        .env("NIX_CONFIG", NIX_CONFIG)
        .args(["build", "fake", "--flake", &missing, "-o"])
        .arg(&output)
        .output()
        .unwrap();
    assert_eq!(result.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(
        stderr.contains("no-flake-here") && stderr.contains("Hint"),
        "{stderr}"
    );
    assert!(!output.exists());
}

#[test]
fn every_nix_file_parses() {
    let mut files = Vec::new();
    let mut stack = vec![repo_root()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() && !name.starts_with('.') && name != "target" {
                stack.push(path);
            } else if name.ends_with(".nix") {
                files.push(path);
            }
        }
    }
    assert!(files.len() >= 2, "found {files:?}");
    for file in files {
        run_ok(nix_command("nix-instantiate").arg("--parse").arg(&file));
    }
}

#[test]
fn the_pure_derivation_and_the_app_write_the_same_bytes() {
    // Inside a derivation the closure comes from exportReferencesGraph
    // (.attrs.json); `build` reads `nix path-info`. Both must give one tarball.
    let dir = tempfile::tempdir().unwrap();
    let binary = env!("CARGO_BIN_EXE_wsl-tarball");
    let binary_hash = run_text(Command::new("sha256sum").arg(binary));
    let expression = format!(
        "(builtins.getFlake \"{}\").lib.wslTarballWith \"{binary}\" \"{}\"",
        test_flake(),
        &binary_hash[..64]
    );
    let nix_build = |extra: &[&str]| -> serde_json::Value {
        let mut command = nix_command("nix");
        command.args(["build", "--no-link", "--json", "--impure"]);
        command.args(extra).arg("--expr").arg(&expression);
        serde_json::from_slice(&run_ok(&mut command)).unwrap()
    };
    nix_build(&[]);
    // Building it again must give the same bytes (the SBOM's too), or Nix refuses.
    let built = nix_build(&["--rebuild"]);
    let out = Path::new(built[0]["outputs"]["out"].as_str().unwrap());
    assert_eq!(
        dir_names(out),
        ["manifest.json", "nixos.wsl", "sbom.cdx.json"],
        "the module's wslTarball output"
    );
    assert_verifies(&out.join("nixos.wsl"), Rootfs::Skeleton);
    let from_derivation = std::fs::read(out.join("nixos.wsl")).unwrap();

    // The app writes the same name, so the SBOM's top component matches too.
    let from_app = dir.path().join("nixos.wsl");
    let sbom_from_app = dir.path().join("sbom.cdx.json");
    run_ok(
        wsl_tarball()
            .env("NIX_CONFIG", NIX_CONFIG)
            .args([
                "build",
                "fake",
                "--flake",
                &test_flake(),
                "--mtime",
                "1",
                "--quiet",
                "-o",
            ])
            .arg(&from_app)
            .arg("--sbom")
            .arg(&sbom_from_app),
    );
    assert_verifies(&from_app, Rootfs::Skeleton);
    assert!(
        std::fs::read(&from_app).unwrap() == from_derivation,
        "nix build and the app wrote different tarballs"
    );
    let sbom = std::fs::read(out.join("sbom.cdx.json")).unwrap();
    assert!(
        std::fs::read(&sbom_from_app).unwrap() == sbom,
        "nix build and the app wrote different SBOMs"
    );
    let sbom: serde_json::Value = serde_json::from_slice(&sbom).unwrap();
    let sha256 = wsl_tarball::hex::encode(&Sha256::digest(&from_derivation));
    assert_eq!(sbom["metadata"]["component"]["name"], "nixos.wsl");
    assert_eq!(
        sbom["metadata"]["component"]["hashes"][0]["content"],
        sha256
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["tarball"]["file"], "nixos.wsl");
    assert_eq!(manifest["tarball"]["sha256"], sha256);
}

#[test]
fn the_security_check_runs_as_a_derivation_on_the_closure() {
    let binary = env!("CARGO_BIN_EXE_wsl-tarball");
    let binary_hash = run_text(Command::new("sha256sum").arg(binary));
    let expression = format!(
        "(builtins.getFlake \"{}\").lib.securityCheckWith \"{binary}\" \"{}\"",
        test_flake(),
        &binary_hash[..64]
    );
    let built: serde_json::Value = serde_json::from_slice(&run_ok(
        nix_command("nix")
            .args(["build", "--no-link", "--json", "--impure", "--expr"])
            .arg(&expression),
    ))
    .unwrap();
    let out = built[0]["outputs"]["out"].as_str().unwrap();
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(format!("{out}/report.json")).unwrap()).unwrap();
    assert!(report.is_object(), "{report}");
    let text = report.to_string();
    assert!(
        !text.contains("\"severity\":\"error\""),
        "the fake system has no secrets: {text}"
    );
}

/// nixpkgs' `nixos/modules/config/update-users-groups.pl`, taken from
/// `$UPDATE_USERS_GROUPS_PL` or `target/nixpkgs/update-users-groups.pl`. It
/// is not committed (it is nixpkgs' code) and CI cannot fetch it.
fn update_users_groups_script() -> Option<PathBuf> {
    std::env::var_os("UPDATE_USERS_GROUPS_PL")
        .map(PathBuf::from)
        .or_else(|| Some(repo_root().join("target/nixpkgs/update-users-groups.pl")))
        .filter(|path| path.is_file())
}

/// nixpkgs' `nixos/modules/system/etc/setup-etc.pl`, found as
/// [`update_users_groups_script`] is (`$SETUP_ETC_PL`).
fn setup_etc_script() -> Option<PathBuf> {
    std::env::var_os("SETUP_ETC_PL")
        .map(PathBuf::from)
        .or_else(|| Some(repo_root().join("target/nixpkgs/setup-etc.pl")))
        .filter(|path| path.is_file())
}

/// Runs `perl SCRIPT ARG` with the extracted root's /etc, /var and /run
/// mounted over the host's in a private mount namespace (the store is the
/// host's, which holds the same paths).
fn perl_in_root(root: &Path, script: &Path, arg: &Path) {
    let mut command = Command::new("unshare");
    command.args(["-m", "sh", "-euc"]).arg(
        "mount --bind \"$1/etc\" /etc && mount --bind \"$1/var\" /var && \
         mount --bind \"$1/run\" /run && exec perl \"$2\" \"$3\"",
    );
    command.arg("first-boot").arg(root).arg(script).arg(arg);
    run_ok(&mut command);
}

/// Every entry below DIR: type, mode, owner, and link target or content.
fn tree_state(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut state = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let what = if meta.file_type().is_symlink() {
            format!("link {:?}", std::fs::read_link(&path).unwrap())
        } else if meta.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                stack.push(entry.unwrap().path());
            }
            "dir".to_owned()
        } else {
            format!("file {:?}", std::fs::read(&path).unwrap())
        };
        let key = path.strip_prefix(dir).unwrap().to_path_buf();
        let mode = meta.mode() & 0o7777;
        state.insert(
            key,
            format!("{what} {mode:o} {}:{}", meta.uid(), meta.gid()),
        );
    }
    state
}

/// The spec nixpkgs' users-groups.nix hands the script, from the facts.
fn users_groups_spec(facts: &serde_json::Value, mutable_users: bool) -> serde_json::Value {
    let users: Vec<serde_json::Value> = facts["users"]["users"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["enable"] != false)
        .map(|u| {
            let mut spec = u.clone();
            spec["isSystemUser"] = (u["isNormalUser"] != true).into();
            spec["passwordFile"] = u["hashedPasswordFile"].clone();
            spec
        })
        .collect();
    serde_json::json!({
        "mutableUsers": mutable_users,
        "users": users,
        "groups": facts["users"]["groups"],
    })
}

/// Runs `crypt(password, hash)` with Perl: whether the hash is the password's.
fn hash_matches(password: &str, hash: &str) -> bool {
    let out = run_text(
        Command::new("perl")
            .args(["-e", "print crypt($ARGV[0], $ARGV[1]) eq $ARGV[1] ? 1 : 0"])
            .args([password, hash]),
    );
    out == "1"
}

#[test]
fn first_boot_applies_each_password_option_and_lists_both_channels() {
    let dir = tempfile::tempdir().unwrap();
    let (plain, root) = build_and_extract(dir.path(), "fake");

    // nix-channel, as root at first boot, sees both channels.
    let channels = run_text(
        nix_command("nix-channel")
            .arg("--list")
            .env("HOME", root.join("root")),
    );
    assert_eq!(
        channels,
        "nixos https://nixos.org/channels/nixos-unstable\n\
         nixos-wsl https://github.com/nix-community/NixOS-WSL/archive/refs/heads/main.tar.gz\n"
    );

    let Some(script) = update_users_groups_script() else {
        eprintln!(
            "SKIPPED the users/groups step: nixpkgs' update-users-groups.pl is not here; \
             set UPDATE_USERS_GROUPS_PL or put it at target/nixpkgs/update-users-groups.pl"
        );
        return;
    };
    let flake_facts: serde_json::Value = {
        let built: serde_json::Value = serde_json::from_slice(&run_ok(
            nix_command("nix")
                .args(["build", "--no-link", "--json"])
                .arg(format!(
                    "{}#nixosConfigurations.fake.config.system.build.wslTarballFacts",
                    test_flake()
                )),
        ))
        .unwrap();
        let path = built[0]["outputs"]["out"].as_str().unwrap().to_owned();
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    };
    let dave_hash = "$6$davesalt$p8lVt4LtxfC.BpCxCkvDYtAFhDaoThmVxk6/R0EIXOt/9OJmPuObQHsNt6ETwY2HLsjBvA.cdfwp.R8lP9bSr1";
    for mutable_users in [true, false] {
        let root = dir.path().join(format!("boot-mutable-{mutable_users}"));
        extract(&plain, &root);
        std::fs::create_dir_all(root.join("run/secrets")).unwrap();
        std::fs::write(root.join("run/secrets/dave"), format!("{dave_hash}\n")).unwrap();
        let spec = dir.path().join(format!("spec-{mutable_users}.json"));
        std::fs::write(
            &spec,
            users_groups_spec(&flake_facts, mutable_users).to_string(),
        )
        .unwrap();
        // The real script against the extracted root.
        perl_in_root(&root, &script, &spec);

        let shadow = table(&root, "etc/shadow");
        let hash = |user: &str| shadow[user][1].clone();
        let alice = flake_facts["users"]["users"][2]["hashedPassword"]
            .as_str()
            .unwrap();
        let bob = flake_facts["users"]["users"][3]["initialHashedPassword"]
            .as_str()
            .unwrap();
        assert_eq!(hash("alice"), alice, "hashedPassword");
        assert_eq!(hash("bob"), bob, "initialHashedPassword");
        assert!(hash_matches("carol-pw", &hash("carol")), "initialPassword");
        assert_eq!(hash("dave"), dave_hash, "hashedPasswordFile");
        assert!(hash_matches("erin-pw", &hash("erin")), "password");
        assert_eq!((hash("nixos"), hash("root")), ("!".into(), "!".into()));
        assert!(!shadow.contains_key("ghost"));
        let meta = std::fs::metadata(root.join("etc/shadow")).unwrap();
        assert_eq!(
            (meta.mode() & 0o777, meta.uid(), meta.gid()),
            (0o640, 0, 318)
        );
        let passwd = table(&root, "etc/passwd");
        for user in ["bob", "carol"] {
            assert!(passwd.contains_key(user), "{user} created at first boot");
            assert!(root.join(format!("home/{user}")).is_dir());
        }
        assert_eq!(passwd["noshell"][6], "/run/current-system/sw/bin/nologin");
        // What first boot creates that the tarball leaves out.
        for made in ["var/lib/nixos/uid-map", "etc/subuid", "etc/subgid"] {
            assert!(root.join(made).exists(), "{made}");
        }

        // The etc step after the users step, as activation orders them:
        // setup-etc finds /etc as it leaves it, but for one thing. It reads
        // a `.uid`/`.gid` companion with File::Slurp's `chomp`, which only
        // chomps in list context, so a name keeps its newline, getpwnam
        // fails and the copy becomes root's (as in upstream's own tarball,
        // which ran the same script). The tarball carries the owner the
        // configuration names; first boot's setup-etc resets it to 0:0.
        match setup_etc_script() {
            Some(setup_etc) => {
                let before = tree_state(&root.join("etc"));
                let etc = std::fs::read_link(root.join("etc/static")).unwrap();
                perl_in_root(&root, &setup_etc, &etc);
                let after = tree_state(&root.join("etc"));
                let changed: Vec<_> = after
                    .iter()
                    .filter(|(path, state)| before.get(*path) != Some(state))
                    .map(|(path, state)| format!("{path:?}: {state}"))
                    .chain(
                        before
                            .keys()
                            .filter(|path| !after.contains_key(*path))
                            .map(|path| format!("{path:?} removed")),
                    )
                    .collect();
                assert_eq!(changed.len(), 1, "setup-etc changed /etc: {changed:#?}");
                assert!(
                    changed[0].starts_with("\"owned-by-name\": file ")
                        && changed[0].ends_with(" 640 0:0"),
                    "{changed:#?}"
                );
            }
            None => eprintln!(
                "SKIPPED the etc step: nixpkgs' setup-etc.pl is not here; \
                 set SETUP_ETC_PL or put it at target/nixpkgs/setup-etc.pl"
            ),
        }
    }
}

#[test]
fn a_nixos_toplevel_gets_the_skeleton_by_default_and_a_bare_store_must_say_so() {
    let dir = tempfile::tempdir().unwrap();
    // The fake toplevel (init, etc, sw) without --facts or --nixos.
    let built: serde_json::Value = serde_json::from_slice(&run_ok(
        nix_command("nix")
            .args(["build", "--no-link", "--json"])
            .arg(format!(
                "{}#nixosConfigurations.bare.config.system.build.toplevel",
                test_flake()
            )),
    ))
    .unwrap();
    let system = built[0]["outputs"]["out"].as_str().unwrap();
    let closure = write_path_info(system, dir.path());
    let output = dir.path().join("default.wsl");
    let write = |system: &str, output: &Path, extra: &[&str]| {
        wsl_tarball()
            .arg("write")
            .arg("--closure")
            .arg(&closure)
            .args(["--system", system, "--quiet"])
            .args(extra)
            .arg("-o")
            .arg(output)
            .output()
            .unwrap()
    };
    let result = write(system, &output, &[]);
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let listing = run_text(Command::new("tar").arg("-tzf").arg(&output));
    for member in ["./etc/passwd", "./bin/init", "./etc/wsl-distribution.conf"] {
        assert!(listing.lines().any(|l| l == member), "{member}:\n{listing}");
    }
    run_ok(wsl_tarball().arg("verify").arg(&output));

    // --no-skeleton: a bare store tarball, which verify fails unless --bare.
    let bare = dir.path().join("bare.wsl");
    let result = write(system, &bare, &["--no-skeleton"]);
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let verified = wsl_tarball().arg("verify").arg(&bare).output().unwrap();
    let report = String::from_utf8_lossy(&verified.stdout);
    assert_eq!(verified.status.code(), Some(1), "{report}");
    assert!(report.contains("WSL cannot boot this tarball"), "{report}");
    assert!(report.contains("--bare"), "{report}");
    run_ok(wsl_tarball().args(["verify", "--bare"]).arg(&bare));

    // A system that is not a toplevel gets no silent bare tarball.
    let fixture = fixture_system();
    let fixture_closure = dir.path().join("fixture");
    std::fs::create_dir_all(&fixture_closure).unwrap();
    let fixture_closure = write_path_info(fixture, &fixture_closure);
    let refused = dir.path().join("refused.wsl");
    let result = wsl_tarball()
        .arg("write")
        .arg("--closure")
        .arg(&fixture_closure)
        .args(["--system", fixture, "-o"])
        .arg(&refused)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("--system {fixture} is not a NixOS toplevel"))
            && stderr.contains("--no-skeleton"),
        "{stderr}"
    );
    assert!(!refused.exists());
}

/// Microsoft's checks for a modern WSL distribution (microsoft/WSL
/// `distributions/validate-modern.py`, `read_tar`), applied to the extracted
/// root: errors and warnings, each as the script words its cause.
fn microsoft_findings(root: &Path) -> (Vec<String>, Vec<String>) {
    #[derive(Default)]
    struct Findings {
        errors: Vec<String>,
        warnings: Vec<String>,
    }
    /// `validate_mode`: presence, mode, owner, size and ELF magic.
    fn validate(
        root: &Path,
        found: &mut Findings,
        path: &str,
        modes: &[u32],
        gid: Option<u32>,
        max_size: Option<u64>,
        elf: bool,
    ) -> bool {
        let resolved = resolve_in_root(root, path);
        let Ok(meta) = std::fs::metadata(&resolved) else {
            found.errors.push(format!("{path} not found"));
            return false;
        };
        if !modes.contains(&(meta.mode() & 0o7777)) {
            found
                .warnings
                .push(format!("{path} mode {:o}", meta.mode() & 0o7777));
        }
        if meta.uid() != 0 || gid.is_some_and(|gid| gid != meta.gid()) {
            found
                .warnings
                .push(format!("{path} owner {}:{}", meta.uid(), meta.gid()));
        }
        if max_size.is_some_and(|max| meta.len() > max) {
            found.errors.push(format!("{path} is too big"));
        }
        if elf && !is_elf(&resolved) {
            found.errors.push(format!("{path} is not an ELF"));
        }
        true
    }
    let mut found = Findings::default();
    // INI keys as configparser reads them: `section.key`, lowercase keys.
    let ini = |path: &str| -> BTreeMap<String, String> {
        let text = std::fs::read_to_string(resolve_in_root(root, path)).unwrap_or_default();
        let mut section = String::new();
        let mut keys = BTreeMap::new();
        for line in text.lines().map(str::trim) {
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = name.to_owned();
            } else if let Some((key, value)) = line.split_once('=') {
                if !line.starts_with('#') {
                    let key = format!("{section}.{}", key.trim().to_lowercase());
                    keys.insert(key, value.trim().to_owned());
                }
            }
        }
        keys
    };
    let conf = "/etc/wsl-distribution.conf";
    if validate(
        root,
        &mut found,
        conf,
        &[0o664, 0o644],
        Some(0),
        None,
        false,
    ) {
        let allowed = [
            "oobe.command",
            "oobe.defaultuid",
            "shortcut.icon",
            "oobe.defaultname",
            "windowsterminal.profiletemplate",
        ];
        let keys = ini(conf);
        for key in keys
            .keys()
            .filter(|k| !allowed.contains(&k.to_lowercase().as_str()))
        {
            found.errors.push(format!("unexpected key {key} in {conf}"));
        }
        match keys.get("shortcut.icon") {
            Some(icon) => {
                validate(
                    root,
                    &mut found,
                    icon,
                    &[0o664, 0o644],
                    Some(0),
                    Some(1 << 20),
                    false,
                );
                if !icon.starts_with("/usr/lib/wsl") && !icon.starts_with("/usr/share/wsl") {
                    found
                        .warnings
                        .push(format!("shortcut.icon {icon} not under /usr/lib/wsl"));
                }
            }
            None => found.warnings.push("no shortcut.icon".to_owned()),
        }
        if let Some(profile) = keys.get("windowsterminal.profiletemplate") {
            validate(
                root,
                &mut found,
                profile,
                &[0o660, 0o640],
                Some(0),
                Some(1 << 20),
                false,
            );
            if !profile.starts_with("/usr/lib/wsl") {
                found
                    .warnings
                    .push(format!("profileTemplate {profile} not under /usr/lib/wsl"));
            }
        }
    }
    if validate(
        root,
        &mut found,
        "/etc/wsl.conf",
        &[0o664, 0o644],
        Some(0),
        None,
        false,
    ) {
        let keys = ini("/etc/wsl.conf");
        for key in keys.keys().filter(|k| k.as_str() != "boot.systemd") {
            found
                .errors
                .push(format!("unexpected key {key} in /etc/wsl.conf"));
        }
        if keys.get("boot.systemd").is_some_and(|v| v == "true") {
            validate(
                root,
                &mut found,
                "/sbin/init",
                &[0o775, 0o755],
                Some(0),
                None,
                true,
            );
        }
    }
    if validate(
        root,
        &mut found,
        "/etc/passwd",
        &[0o664, 0o644],
        Some(0),
        None,
        false,
    ) {
        let mut uids = BTreeMap::new();
        for line in std::fs::read_to_string(root.join("etc/passwd"))
            .unwrap()
            .lines()
        {
            let fields: Vec<&str> = line.split(':').collect();
            match fields.get(2).map(|uid| uid.parse::<u32>()) {
                Some(Ok(uid)) if fields.len() == 7 => {
                    if uids.insert(uid, fields[0].to_owned()).is_some() {
                        found
                            .errors
                            .push(format!("duplicated uid {uid} in /etc/passwd"));
                    }
                }
                _ => found.errors.push(format!("invalid passwd entry {line}")),
            }
        }
        if uids.get(&0).map(String::as_str) != Some("root") {
            found
                .errors
                .push("no root (uid 0) in /etc/passwd".to_owned());
        }
    }
    validate(
        root,
        &mut found,
        "/etc/shadow",
        &[0o640, 0o600, 0],
        None,
        None,
        false,
    );
    for program in ["/bin/bash", "/bin/sh"] {
        validate(
            root,
            &mut found,
            program,
            &[0o755, 0o775],
            Some(0),
            None,
            true,
        );
    }
    (found.errors, found.warnings)
}

#[test]
fn the_tarball_meets_microsofts_distribution_checks_as_upstream_does() {
    let dir = tempfile::tempdir().unwrap();
    let (_, root) = build_and_extract(dir.path(), "fake");
    let (errors, warnings) = microsoft_findings(&root);
    eprintln!("Microsoft's checks: errors {errors:?}; warnings {warnings:?}");
    // What upstream's tarball gets too: the system's own /etc/wsl.conf has
    // keys besides boot.systemd (user.default among them) and is a 0444
    // store file; programs resolve into the store, whose files are 0555.
    let upstream_also = |finding: &String| {
        finding.starts_with("unexpected key ") && finding.ends_with(" in /etc/wsl.conf")
            || finding == "/etc/wsl.conf mode 444"
            || ["/sbin/init", "/bin/sh", "/bin/bash"]
                .iter()
                .any(|p| *finding == format!("{p} mode 555"))
    };
    assert!(
        errors.iter().all(upstream_also),
        "errors upstream does not get: {errors:?}"
    );
    assert!(errors.contains(&"unexpected key user.default in /etc/wsl.conf".to_owned()));
    assert!(
        warnings.iter().all(upstream_also),
        "warnings upstream does not get: {warnings:?}"
    );
    assert!(
        warnings.contains(&"/etc/wsl.conf mode 444".to_owned()),
        "{warnings:?}"
    );
}

#[test]
fn an_etc_file_owned_by_a_user_needs_the_facts_and_says_how_to_give_them() {
    let dir = tempfile::tempdir().unwrap();
    // The fake toplevel's /etc has a file owned by "nixos"; without the
    // module's facts the skeleton knows only root.
    let system = build_fake_host_output("toplevel");
    let closure = write_path_info(&system, dir.path());
    let output = dir.path().join("nixos.wsl");
    let result = wsl_tarball()
        .arg("write")
        .arg("--closure")
        .arg(&closure)
        .args(["--system", &system, "--quiet", "-o"])
        .arg(&output)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(1), "{stderr}");
    for needle in [
        "etc/owned-by-name.uid",
        "user \"nixos\"",
        "without --facts the skeleton knows only root",
        "`nix build .#nixosConfigurations.HOST.config.system.build.wslTarballFacts`, then --facts result",
    ] {
        assert!(stderr.contains(needle), "{needle}: {stderr}");
    }
    assert!(!stderr.contains("do not declare"), "{stderr}");
    assert!(!output.exists());
    // `check` reports the same input error with its own status for a
    // malformed input (2), as the exit status table says.
    let checked = wsl_tarball()
        .arg("check")
        .arg("--closure")
        .arg(&closure)
        .args(["--system", &system])
        .output()
        .unwrap();
    let check_stderr = String::from_utf8_lossy(&checked.stderr);
    assert_eq!(checked.status.code(), Some(2), "{check_stderr}");
    assert_eq!(check_stderr, stderr);
}
