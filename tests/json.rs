//! The JSON outputs against golden files: each has a top-level `version`,
//! camelCase keys, and the schema the README documents. A deliberate schema
//! change updates the golden file (`WSL_TARBALL_BLESS=1 cargo test --test json`)
//! and bumps `version` when a consumer would break.

mod common;

use std::path::Path;

use common::*;

/// A small tarball made by GNU tar from a fixed tree: the same bytes on
/// every machine.
fn planted_tarball(dir: &Path) -> std::path::PathBuf {
    let tree = dir.join("tree");
    std::fs::create_dir_all(tree.join("etc")).unwrap();
    std::fs::create_dir_all(tree.join("home/tim")).unwrap();
    std::fs::write(
        tree.join("etc/deploy.conf"),
        "token = ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8\n",
    )
    .unwrap();
    std::fs::write(tree.join("home/tim/notes"), "Tim was here\n").unwrap();
    let tarball = dir.join("planted.tar");
    gnu_tar_file(&tree, &tarball);
    tarball
}

/// Compares `actual` with tests/golden/NAME, or rewrites it when blessing.
fn assert_golden(name: &str, actual: &serde_json::Value) {
    let path = repo_root().join("tests/golden").join(name);
    let text = serde_json::to_string_pretty(actual).unwrap() + "\n";
    if std::env::var_os("WSL_TARBALL_BLESS").is_some() {
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; bless with WSL_TARBALL_BLESS=1", path.display()));
    assert_eq!(text, expected, "{name} differs from its golden file");
}

/// Every object key in the document is camelCase.
fn assert_camel_case(value: &serde_json::Value, at: &str) {
    match value {
        serde_json::Value::Object(fields) => {
            for (key, field) in fields {
                assert!(
                    key.chars().all(|c| c.is_ascii_alphanumeric())
                        && key.starts_with(|c: char| c.is_ascii_lowercase()),
                    "{at}.{key} is not camelCase"
                );
                assert_camel_case(field, &format!("{at}.{key}"));
            }
        }
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                assert_camel_case(item, &format!("{at}[{i}]"));
            }
        }
        _ => {}
    }
}

#[test]
fn check_json_matches_its_golden_file() {
    let dir = tempfile::tempdir().unwrap();
    let tarball = planted_tarball(dir.path());
    let output = run_wsl_tarball(&[
        "check",
        tarball.to_str().unwrap(),
        "--identifier",
        "tim",
        "--json",
    ]);
    assert_eq!(output.status.code(), Some(3));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["version"], 1);
    assert_camel_case(&json, "check");
    assert_golden("check.json", &json);
}

/// Runs the binary in `dir` (so the file names in the reports are the
/// relative names given, the same on every machine) and parses its JSON.
fn json_in(dir: &Path, args: &[&str], status: i32) -> serde_json::Value {
    let output = wsl_tarball()
        .current_dir(dir)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(status),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["version"], 1, "{args:?}");
    assert_camel_case(&json, args[0]);
    json
}

/// A second fixed tree: /etc/deploy.conf edited, /home/tim/notes made
/// executable, /srv added.
fn changed_tarball(dir: &Path) -> std::path::PathBuf {
    let tree = dir.join("tree2");
    std::fs::create_dir_all(tree.join("etc")).unwrap();
    std::fs::create_dir_all(tree.join("home/tim")).unwrap();
    std::fs::create_dir_all(tree.join("srv")).unwrap();
    std::fs::write(
        tree.join("etc/deploy.conf"),
        "token = (moved to a secret)\n",
    )
    .unwrap();
    std::fs::write(tree.join("home/tim/notes"), "Tim was here\n").unwrap();
    std::fs::write(tree.join("srv/index.html"), "<p>hi</p>\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    for (path, mode) in [
        ("", 0o755),
        ("etc", 0o755),
        ("home", 0o755),
        ("home/tim", 0o755),
        ("srv", 0o755),
        ("etc/deploy.conf", 0o644),
        ("home/tim/notes", 0o755),
        ("srv/index.html", 0o644),
    ] {
        std::fs::set_permissions(tree.join(path), std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let tarball = dir.join("changed.tar");
    gnu_tar_file(&tree, &tarball);
    tarball
}

/// The planted tree with fixed modes (the umask would otherwise decide).
fn fixed_planted_tarball(dir: &Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let tree = dir.join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    let _ = planted_tarball(dir);
    for (path, mode) in [
        ("", 0o755),
        ("etc", 0o755),
        ("home", 0o755),
        ("home/tim", 0o755),
        ("etc/deploy.conf", 0o644),
        ("home/tim/notes", 0o644),
    ] {
        std::fs::set_permissions(tree.join(path), std::fs::Permissions::from_mode(mode)).unwrap();
    }
    std::fs::remove_file(dir.join("planted.tar")).unwrap();
    planted_tarball(dir)
}

#[test]
fn inspect_json_matches_its_golden_file() {
    let dir = tempfile::tempdir().unwrap();
    fixed_planted_tarball(dir.path());
    let json = json_in(dir.path(), &["inspect", "--json", "planted.tar"], 0);
    assert_golden("inspect.json", &json);
}

#[test]
fn verify_json_matches_its_golden_file() {
    let dir = tempfile::tempdir().unwrap();
    fixed_planted_tarball(dir.path());
    // No Nix database and no system: it fails, and says why, check by check.
    let json = json_in(
        dir.path(),
        &["verify", "--json", "--bare", "planted.tar"],
        1,
    );
    assert_golden("verify.json", &json);
}

#[test]
fn diff_json_matches_its_golden_file() {
    let dir = tempfile::tempdir().unwrap();
    fixed_planted_tarball(dir.path());
    changed_tarball(dir.path());
    let json = json_in(
        dir.path(),
        &["diff", "--json", "planted.tar", "changed.tar"],
        1,
    );
    assert_golden("diff.json", &json);
}

#[test]
fn system_description_diff_json_matches_its_golden_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str, hash: &str, size: u64| {
        format!(
            r#"{{"path":"/nix/store/{name}","narHash":"sha256-{hash}=","narSize":{size},"references":[]}}"#
        )
    };
    let greeting = "1jk14awh1ikhpn63isz3qhr45gnci589-greeting";
    let a = [
        path(greeting, "C2ukDoCXs9M+0+y2aZRcgLSLc0cdJ8j0uFuAoFzu3tg", 144),
        path(
            "3qxhcxqpk7pzy92qrip3v5m74vzxjwv5-fod-flat",
            "N8z8zjE1gJtQA9jNt9BzmdII3NGO59dM4e9+iSUVwx8",
            120,
        ),
    ];
    let b = [
        path(greeting, "HDfQGvQL4ugGkd48w99EN3ppmvuxfGjwgJZLL9Bx/BM", 120),
        path(
            "xcbmgb2r29nifswqzyvakcww51f7vcnw-added-file",
            "HDfQGvQL4ugGkd48w99EN3ppmvuxfGjwgJZLL9Bx/BM",
            120,
        ),
    ];
    std::fs::write(dir.path().join("a.json"), format!("[{}]", a.join(","))).unwrap();
    std::fs::write(dir.path().join("b.json"), format!("[{}]", b.join(","))).unwrap();
    let json = json_in(dir.path(), &["diff", "--json", "a.json", "b.json"], 1);
    assert_golden("diff-closures.json", &json);
}

/// The shape of a JSON document: every leaf replaced by its type, every
/// array by the shape of its first item. Store paths and hashes of a Nix
/// fixture differ between machines (the system, the Nix version); the
/// schema does not.
fn shape(value: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Null => "null".into(),
        Value::Bool(_) => "boolean".into(),
        Value::Number(_) => "number".into(),
        Value::String(_) => "string".into(),
        Value::Array(items) => Value::Array(items.first().map(shape).into_iter().collect()),
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(key, field)| (key.clone(), shape(field)))
                .collect(),
        ),
    }
}

#[test]
fn bundle_inspect_and_verify_json_match_their_golden_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = repo_root().join("tests/fixtures/delta-system.nix");
    let system = |version: &str| {
        run_text(
            nix_command("nix-build")
                .arg("--no-out-link")
                .arg(&fixture)
                .args(["--argstr", "version", version]),
        )
        .trim()
        .to_owned()
    };
    let (v1, v2) = (system("1"), system("2"));
    let closure = |system: &str, name: &str| {
        let file = write_path_info(system, dir.path());
        let named = dir.path().join(name);
        std::fs::rename(file, &named).unwrap();
        named
    };
    let old_closure = closure(&v1, "old.json");
    let new_closure = closure(&v2, "new.json");
    let old = dir.path().join("old.wsl");
    run_ok(wsl_tarball().args([
        "write",
        "--closure",
        old_closure.to_str().unwrap(),
        "--system",
        &v1,
        "--nixos",
        "--quiet",
        "-o",
        old.to_str().unwrap(),
    ]));
    let bundle = dir.path().join("update.wsl-delta");
    run_ok(wsl_tarball().args([
        "delta",
        "--from",
        old.to_str().unwrap(),
        "--closure",
        new_closure.to_str().unwrap(),
        "--system",
        &v2,
        "--quiet",
        "-o",
        bundle.to_str().unwrap(),
    ]));
    let inspected = json_in(dir.path(), &["inspect", "--json", "update.wsl-delta"], 0);
    assert_eq!(inspected["file"], "update.wsl-delta");
    assert_eq!(inspected["newSystem"], v2.as_str());
    assert_golden("bundle-inspect.shape.json", &shape(&inspected));
    let verified = json_in(dir.path(), &["verify", "--json", "update.wsl-delta"], 0);
    assert!(
        verified["checks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|check| check["passed"] == true),
        "{verified:#}"
    );
    assert_golden("bundle-verify.shape.json", &shape(&verified));
}
