use super::*;
use crate::store::{NarHash, PathInfo, StoreDir};

const SYSTEM: &str = "7h7qgvs4kgzsn8a6rb273saxyqh4jxlz-nixos-system";
const LIB: &str = "0h7qgvs4kgzsn8a6rb273saxyqh4jxlz-lib";

fn info(basename: &str, references: &[&str]) -> PathInfo {
    PathInfo {
        path: StorePath::from_basename(basename).unwrap(),
        nar_hash: NarHash([7; 32]),
        nar_size: 1,
        references: references
            .iter()
            .map(|r| StorePath::from_basename(r).unwrap())
            .collect(),
        deriver: None,
        ca: None,
        signatures: Vec::new(),
    }
}

/// A fake host store with two paths, and a closure of them.
fn fixture(store: &Path) -> Closure {
    std::fs::create_dir_all(store.join(SYSTEM)).unwrap();
    std::fs::write(store.join(SYSTEM).join("init"), b"#!").unwrap();
    std::fs::write(store.join(LIB), b"lib").unwrap();
    Closure::new(&StoreDir::NIX, [info(SYSTEM, &[LIB]), info(LIB, &[])]).unwrap()
}

fn inputs<'a>(closure: &'a Closure, store: &Path, extra: Option<PathBuf>) -> PlanInputs<'a> {
    PlanInputs {
        closure,
        system: StorePath::from_basename(SYSTEM).unwrap(),
        store_source: store.to_path_buf(),
        nix_db: NixDbMode::Registration,
        registration_time: 1,
        extra_files: extra,
        chown: Vec::new(),
        allow_override: Vec::new(),
        nixos: None,
    }
}

/// An `--extra-files` tree with one file at `path` (rootfs-relative).
fn extra_with(dir: &Path, name: &str, path: &str) -> PathBuf {
    let extra = dir.join(name);
    let file = extra.join(path);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, b"mine").unwrap();
    extra
}

#[test]
fn a_system_outside_the_closure_is_named_as_the_system() {
    let dir = tempfile::tempdir().unwrap();
    let closure = fixture(dir.path());
    let mut inputs = inputs(&closure, dir.path(), None);
    inputs.system = StorePath::from_basename("00000000000000000000000000000000-elsewhere").unwrap();
    let err = Plan::new(inputs).err().unwrap();
    assert_eq!(
        err.to_string(),
        "the system /nix/store/00000000000000000000000000000000-elsewhere is not in the closure"
    );
}

fn collect(plan: &Plan) -> Vec<Entry> {
    let mut entries = Vec::new();
    plan.for_each_entry(|e| {
        entries.push(e.clone());
        Ok::<_, PlanError>(())
    })
    .unwrap();
    entries
}

#[test]
fn entries_come_in_gnu_tar_sort_order_with_the_store_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let closure = fixture(&store);
    let extra = dir.path().join("extra");
    // "a.b" sorts before "a/…" byte-wise, but a directory's children come
    // right after it in a depth-first walk.
    std::fs::create_dir_all(extra.join("a")).unwrap();
    std::fs::write(extra.join("a/b"), b"").unwrap();
    std::fs::write(extra.join("a.b"), b"").unwrap();
    std::fs::create_dir_all(extra.join("home/nixos")).unwrap();
    std::fs::write(extra.join("home/nixos/.profile"), b"").unwrap();
    let mut with_chown = inputs(&closure, &store, Some(extra));
    with_chown.chown = vec![ChownRule::parse("/home/nixos", "1000:100").unwrap()];
    let plan = Plan::new(with_chown).unwrap();
    let entries = collect(&plan);
    let names: Vec<String> = entries
        .iter()
        .map(|e| String::from_utf8(e.path.clone()).unwrap())
        .collect();
    let expected = [
        "",
        "a",
        "a/b",
        "a.b",
        "home",
        "home/nixos",
        "home/nixos/.profile",
        "nix",
        "nix/store",
        &format!("nix/store/{LIB}"),
        &format!("nix/store/{SYSTEM}"),
        &format!("nix/store/{SYSTEM}/init"),
        "nix/var",
        "nix/var/nix",
    ];
    assert_eq!(&names[..expected.len()], &expected);
    let owner = |name: &str| {
        let e = entries.iter().find(|e| e.path == name.as_bytes()).unwrap();
        (e.uid, e.gid)
    };
    assert_eq!(owner("home/nixos/.profile"), (1000, 100));
    assert_eq!(owner("home"), (0, 0));
    assert!(names.contains(&"nix-path-registration".to_owned()));
}

#[test]
fn extra_files_may_not_write_into_the_store_or_replace_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let closure = fixture(&store);

    let into_store = dir.path().join("into-store");
    std::fs::create_dir_all(into_store.join("nix/store")).unwrap();
    std::fs::write(into_store.join("nix/store/intruder"), b"").unwrap();
    let err = Plan::new(inputs(&closure, &store, Some(into_store))).unwrap_err();
    assert!(err.to_string().contains("nix/store/intruder"), "{err}");

    let file_over_dir = dir.path().join("file-over-dir");
    std::fs::create_dir_all(&file_over_dir).unwrap();
    std::fs::write(file_over_dir.join("nix"), b"").unwrap();
    let err = Plan::new(inputs(&closure, &store, Some(file_over_dir))).unwrap_err();
    assert!(
        err.to_string().contains("/nix (")
            && err
                .to_string()
                .contains("would replace a directory with a file"),
        "{err}"
    );
}

#[test]
fn extra_files_never_replace_the_database_or_the_profiles() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let closure = fixture(&store);
    for (path, needle) in [
        ("nix-path-registration", "Nix's database"),
        ("nix/var/nix/db/db.sqlite", "Nix's database"),
        ("nix/var/nix/db/new-file", "Nix's database"),
        ("nix/var/nix/profiles/system", "/nix/var/nix/profiles"),
        ("nix/var/nix/profiles/per-user/x", "/nix/var/nix/profiles"),
    ] {
        let extra = extra_with(dir.path(), &path.replace('/', "_"), path);
        let mut with_override = inputs(&closure, &store, Some(extra));
        with_override.allow_override = vec![format!("/{path}")];
        let err = Plan::new(with_override).unwrap_err().to_string();
        assert!(
            err.contains(&format!("/{path} (")) && err.contains(needle),
            "{path}: {err}"
        );
    }
}

#[test]
fn replacing_a_file_the_tool_makes_needs_allow_override_for_that_path() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let closure = fixture(&store);
    let path = "nix/var/nix/gcroots/profiles";
    let extra = extra_with(dir.path(), "gcroots", path);
    let err = Plan::new(inputs(&closure, &store, Some(extra.clone())))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("the /nix layout") && err.contains(&format!("allow overriding /{path}")),
        "{err}"
    );
    let mut allowed = inputs(&closure, &store, Some(extra.clone()));
    allowed.allow_override = vec![format!("/{path}")];
    let plan = Plan::new(allowed).unwrap();
    let replaced = collect(&plan)
        .into_iter()
        .find(|e| e.path == path.as_bytes())
        .unwrap();
    assert!(matches!(replaced.kind, EntryKind::File { size: 4, .. }));

    // An override that replaces nothing is a mistake worth naming.
    let unrelated = extra_with(dir.path(), "unrelated", "etc/motd");
    let mut unused = inputs(&closure, &store, Some(unrelated));
    unused.allow_override = vec!["/etc/wsl.conf".to_owned()];
    let err = Plan::new(unused).unwrap_err().to_string();
    assert!(
        err.contains("\"/etc/wsl.conf\"") && err.contains("replaces"),
        "{err}"
    );
    let mut no_tree = inputs(&closure, &store, None);
    no_tree.allow_override = vec!["/etc/wsl.conf".to_owned()];
    let err = Plan::new(no_tree).unwrap_err().to_string();
    assert!(err.contains("no tree of extra files"), "{err}");
    let mut dotted = inputs(&closure, &store, Some(dir.path().join("gcroots")));
    dotted.allow_override = vec!["/etc/../etc/passwd".to_owned()];
    let err = Plan::new(dotted).unwrap_err().to_string();
    assert!(
        err.contains("\"/etc/../etc/passwd\"") && err.contains("'..'"),
        "{err}"
    );
}

#[test]
fn extra_files_given_through_a_symlink_are_followed_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let closure = fixture(&store);
    let extra = extra_with(dir.path(), "real", "etc/motd");
    std::os::unix::fs::symlink("motd", extra.join("etc/motd-link")).unwrap();
    let link = dir.path().join("link-to-extra");
    std::os::unix::fs::symlink(&extra, &link).unwrap();
    let entries = collect(&Plan::new(inputs(&closure, &store, Some(link))).unwrap());
    let kind = |path: &str| {
        entries
            .iter()
            .find(|e| e.path == path.as_bytes())
            .map(|e| e.kind.clone())
    };
    assert!(matches!(
        kind("etc/motd"),
        Some(EntryKind::File { size: 4, .. })
    ));
    assert_eq!(
        kind("etc/motd-link"),
        Some(EntryKind::Symlink {
            target: b"motd".to_vec()
        })
    );
}

#[test]
fn chown_rules_may_not_reach_the_store_or_the_database_and_must_name_a_path() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let closure = fixture(&store);
    for (path, needle) in [
        ("/nix/store", "the store"),
        ("/nix", "the store"),
        (&format!("/nix/store/{LIB}"), "the store"),
        ("/nix/var/nix/db/db.sqlite", "Nix's database"),
        ("/nix/var", "Nix's database"),
        ("/home/nobody", "not in the rootfs"),
    ] {
        let mut rules = inputs(&closure, &store, None);
        rules.chown = vec![ChownRule::parse(path, "1000:100").unwrap()];
        let err = Plan::new(rules).unwrap_err().to_string();
        assert!(
            err.contains(&format!("owner override {path} 1000:100")) && err.contains(needle),
            "{path}: {err}"
        );
    }
    let mut fine = inputs(&closure, &store, None);
    fine.chown = vec![ChownRule::parse("/nix/var/nix/profiles", "1:1").unwrap()];
    Plan::new(fine).unwrap();

    // The user tables stay root's where they exist.
    let tables = extra_with(dir.path(), "tables", "etc/passwd");
    let mut rules = inputs(&closure, &store, Some(tables));
    rules.chown = vec![ChownRule::parse("/etc", "1000:100").unwrap()];
    let err = Plan::new(rules).unwrap_err().to_string();
    assert!(
        err.contains("owner override /etc 1000:100: it reaches /etc/passwd"),
        "{err}"
    );
    let motd = extra_with(dir.path(), "motd", "etc/motd");
    let mut rules = inputs(&closure, &store, Some(motd));
    rules.chown = vec![ChownRule::parse("/etc", "1000:100").unwrap()];
    Plan::new(rules).unwrap();
}

#[test]
fn every_placed_path_is_checked_and_named_with_its_origin() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let closure = fixture(&store);
    let mut plan = Plan::new(inputs(&closure, &store, None)).unwrap();
    for (path, why) in [
        (&b"home/../../etc/x"[..], "'..'"),
        (b"home/./x", "'.'"),
        (b"", "empty"),
        (b"/etc/x", "absolute"),
        (b"home//x", "empty component"),
        (b"home/x\0y", "NUL"),
    ] {
        let err = plan
            .place(Entry::directory(path, 0o700), EntryOrigin::Skeleton)
            .unwrap_err()
            .to_string();
        let shown = format!("\"/{}\"", String::from_utf8_lossy(path));
        assert!(
            err.contains(&shown) && err.contains("NixOS skeleton") && err.contains(why),
            "{err}"
        );
    }
    // Nothing was placed by the failed calls.
    assert!(!plan
        .generated
        .keys()
        .any(|k| k.first().is_some_and(|c| c == b"home")));
}

#[test]
fn a_store_path_missing_on_the_host_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let closure = fixture(&store);
    std::fs::remove_file(store.join(LIB)).unwrap();
    let err = Plan::new(inputs(&closure, &store, None)).unwrap_err();
    assert!(err.to_string().contains(LIB), "{err}");
}
