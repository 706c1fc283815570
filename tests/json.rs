//! The JSON outputs against golden files: each has a top-level `version`,
//! camelCase keys, and the schema the README documents. A deliberate schema
//! change updates the golden file (`WSL_TARBALL_BLESS=1 cargo test --test json`)
//! and bumps `version` when a consumer would break.

mod common;

use std::path::Path;
use std::process::Command;

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
    run_ok(
        Command::new("tar")
            .args([
                "--format=gnu",
                "--sort=name",
                "--mtime=@1",
                "--owner=0",
                "--group=0",
                "--numeric-owner",
                "-cf",
            ])
            .arg(&tarball)
            .arg("-C")
            .arg(&tree)
            .arg("."),
    );
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
