//! `diff` explains a whole difference: every member added, removed and
//! changed, inside and outside the store, grouped by store path, the fields
//! that differ, unified diffs of small text files, a capped text report and
//! a complete JSON one. Also the progress bar that `inspect`, `verify` and
//! `diff` draw on a terminal, and only there.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

fn text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn diff_json(a: &Path, b: &Path) -> serde_json::Value {
    let output = run_wsl_tarball(&["diff", "--json", a.to_str().unwrap(), b.to_str().unwrap()]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// `diff A B` in text, asserted to exit 1 (they differ); its stdout.
fn diff_text(a: &Path, b: &Path) -> String {
    let output = run_wsl_tarball(&["diff", a.to_str().unwrap(), b.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    text(&output)
}

/// GNU tar files DIR/a.tar of TREE_A and DIR/b.tar of TREE_B.
fn gnu_tars(dir: &Path, tree_a: &Path, tree_b: &Path) -> (PathBuf, PathBuf) {
    let (a, b) = (dir.join("a.tar"), dir.join("b.tar"));
    gnu_tar_file(tree_a, &a);
    gnu_tar_file(tree_b, &b);
    (a, b)
}

fn write_file(root: &Path, path: &str, content: &str) {
    let file = root.join(path);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(file, content).unwrap();
}

/// Every member change in the JSON report, as (member, change).
fn member_changes(report: &serde_json::Value) -> Vec<(String, String)> {
    report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|group| group["members"].as_array().unwrap())
        .map(|m| {
            (
                m["member"].as_str().unwrap().to_owned(),
                m["change"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

#[test]
fn an_added_extra_files_directory_names_every_added_file() {
    let dir = tempfile::tempdir().unwrap();
    let a = write_fixture(dir.path(), "a.tar", &["--compression", "none"]);
    let extra = dir.path().join("extra");
    write_file(&extra, "etc/motd", "welcome\n");
    write_file(&extra, "opt/tools/run.sh", "#!/bin/sh\necho run\n");
    write_file(&extra, "opt/tools/share/data.txt", "data\n");
    let b = write_fixture(
        dir.path(),
        "b.tar",
        &[
            "--compression",
            "none",
            "--extra-files",
            extra.to_str().unwrap(),
        ],
    );
    let before = files_in(dir.path());
    let before_bytes = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());

    let report = diff_text(&a, &b);
    assert!(
        report.contains("store paths: 0 added, 0 removed, 0 changed"),
        "{report}"
    );
    assert!(!report.contains("A has /nix where B has /etc"), "{report}");
    assert!(report.contains("outside the store\n"), "{report}");
    for added in [
        "  + /etc/motd (file, 8 bytes)",
        "  + /opt/tools/run.sh (file, 19 bytes)",
        "  + /opt/tools/share/data.txt (file, 5 bytes)",
        "  + /opt/tools (directory, 0 bytes)",
    ] {
        assert!(report.contains(added), "no {added:?} in:\n{report}");
    }
    assert!(
        report.contains("only in B: A has no member of that name"),
        "{report}"
    );

    let json = diff_json(&a, &b);
    let changes = member_changes(&json);
    // Every added member and nothing else (the store is the same; A, made
    // without a skeleton, has no /etc).
    let mut listed: Vec<&str> = changes.iter().map(|(m, _)| m.as_str()).collect();
    listed.sort();
    let expected = [
        "/etc",
        "/etc/motd",
        "/opt",
        "/opt/tools",
        "/opt/tools/run.sh",
        "/opt/tools/share",
        "/opt/tools/share/data.txt",
    ];
    assert_eq!(listed, expected, "{json:#}");
    assert!(
        changes.iter().all(|(_, change)| change == "added"),
        "{json:#}"
    );
    assert_eq!(json["members"]["added"], expected.len());
    assert_eq!(json["members"]["removed"], 0);
    assert_eq!(json["members"]["changed"], 0);
    assert_eq!(json["groups"].as_array().unwrap().len(), 1);
    assert_eq!(json["groups"][0]["storePath"], serde_json::Value::Null);

    // diff reads only: the inputs are as they were, and nothing was added.
    assert_eq!(files_in(dir.path()), before);
    assert_eq!(
        (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap()),
        before_bytes
    );
}

#[test]
fn a_changed_text_file_shows_a_unified_diff_and_a_mode_change_names_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let (tree_a, tree_b) = (dir.path().join("a"), dir.path().join("b"));
    let lines: Vec<String> = (1..=20).map(|i| format!("line {i}\n")).collect();
    let old = lines.concat();
    let new = old.replace("line 10\n", "LINE 10\n");
    for (tree, config) in [(&tree_a, &old), (&tree_b, &new)] {
        write_file(tree, "etc/app.conf", config);
        write_file(tree, "etc/same.txt", "unchanged\n");
        write_file(tree, "bin/tool", "#!/bin/sh\n");
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        tree_a.join("bin/tool"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    std::fs::set_permissions(
        tree_b.join("bin/tool"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let (a, b) = gnu_tars(dir.path(), &tree_a, &tree_b);

    let report = diff_text(&a, &b);
    assert!(
        report.contains("members: 0 added, 0 removed, 2 changed"),
        "{report}"
    );
    assert!(
        report.contains("  ~ /bin/tool: mode 0644 -> 0755\n"),
        "{report}"
    );
    assert!(
        report.contains("  ~ /etc/app.conf: content: first differing byte at offset 63 of 151 (0x6c in A, 0x4c in B)\n"),
        "{report}"
    );
    for line in [
        "    --- A/etc/app.conf",
        "    +++ B/etc/app.conf",
        "    @@ -7,7 +7,7 @@",
        "    -line 10",
        "    +LINE 10",
        "     line 13",
    ] {
        assert!(report.contains(line), "no {line:?} in:\n{report}");
    }
    assert!(!report.contains("same.txt"), "{report}");
    // The first difference in archive order: /bin/tool comes first.
    assert!(
        report.contains("first difference: /bin/tool (tar offset")
            && report.contains("  mode: mode 0644 in A, 0755 in B\n"),
        "{report}"
    );

    let json = diff_json(&a, &b);
    let members = json["groups"][0]["members"].as_array().unwrap();
    assert_eq!(members.len(), 2, "{json:#}");
    assert_eq!(members[0]["member"], "/bin/tool");
    assert_eq!(
        members[0]["fields"],
        serde_json::json!([{"field": "mode", "a": "0644", "b": "0755"}])
    );
    assert_eq!(members[0]["content"], serde_json::Value::Null);
    assert_eq!(members[1]["member"], "/etc/app.conf");
    assert_eq!(members[1]["fields"], serde_json::json!([]));
    let unified = members[1]["unifiedDiff"].as_str().unwrap();
    assert!(
        unified.starts_with("--- A/etc/app.conf\n+++ B/etc/app.conf\n@@ -7,7 +7,7 @@\n"),
        "{unified}"
    );
    assert!(unified.contains("\n-line 10\n+LINE 10\n"), "{unified}");
}

#[test]
fn binary_content_and_removed_members_are_named_without_a_text_diff() {
    let dir = tempfile::tempdir().unwrap();
    let (tree_a, tree_b) = (dir.path().join("a"), dir.path().join("b"));
    for tree in [&tree_a, &tree_b] {
        std::fs::create_dir_all(tree.join("lib")).unwrap();
    }
    std::fs::write(tree_a.join("lib/blob"), [0u8, 1, 2, 3, 4]).unwrap();
    std::fs::write(tree_b.join("lib/blob"), [0u8, 1, 9, 3, 4, 5]).unwrap();
    write_file(&tree_a, "lib/gone", "old\n");
    std::os::unix::fs::symlink("blob", tree_a.join("lib/link")).unwrap();
    std::os::unix::fs::symlink("gone", tree_b.join("lib/link")).unwrap();
    let (a, b) = gnu_tars(dir.path(), &tree_a, &tree_b);

    let json = diff_json(&a, &b);
    let members = json["groups"][0]["members"].as_array().unwrap();
    let names: Vec<&str> = members
        .iter()
        .map(|m| m["member"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["/lib/blob", "/lib/gone", "/lib/link"], "{json:#}");
    let blob = &members[0];
    assert_eq!(
        blob["fields"],
        serde_json::json!([{"field": "size", "a": "5", "b": "6"}])
    );
    assert_eq!(
        blob["content"],
        "first differing byte at offset 2 of 5 (0x02 in A, 0x09 in B)"
    );
    assert_eq!(blob["unifiedDiff"], serde_json::Value::Null);
    assert_eq!(members[1]["change"], "removed");
    assert_eq!(members[1]["kind"], "file");
    assert_eq!(
        members[2]["fields"],
        serde_json::json!([{"field": "linkname", "a": "\"blob\"", "b": "\"gone\""}])
    );
    assert_eq!(json["members"]["removed"], 1);
    assert_eq!(json["members"]["changed"], 2);
}

#[test]
fn the_text_report_is_capped_and_says_so_while_json_lists_everything() {
    let dir = tempfile::tempdir().unwrap();
    let (tree_a, tree_b) = (dir.path().join("a"), dir.path().join("b"));
    write_file(&tree_a, "etc/keep", "k\n");
    write_file(&tree_b, "etc/keep", "k\n");
    for i in 0..120 {
        write_file(&tree_b, &format!("srv/f{i:03}"), "x\n");
    }
    let (a, b) = gnu_tars(dir.path(), &tree_a, &tree_b);

    let report = diff_text(&a, &b);
    // 121 added: /srv and its 120 files; 50 are shown.
    assert!(
        report.contains("members: 121 added, 0 removed, 0 changed"),
        "{report}"
    );
    assert_eq!(report.matches("\n  + /srv").count(), 50, "{report}");
    assert!(
        report.contains("  … and 71 more members here\n"),
        "{report}"
    );
    assert!(
        report.contains("left out: 71 members and 0 unified diffs"),
        "{report}"
    );

    let json = diff_json(&a, &b);
    let changes = member_changes(&json);
    assert_eq!(changes.len(), 121);
    assert_eq!(changes[0].0, "/srv");
    assert_eq!(changes[120].0, "/srv/f119");
    assert_eq!(json["members"]["notListed"], 0);
}

#[test]
fn the_same_tar_stream_still_says_only_the_compression_differs() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    write_file(&tree, "etc/hostname", "nixos\n");
    let tar = dir.path().join("a.tar");
    gnu_tar_file(&tree, &tar);
    run_ok(Command::new("gzip").args(["-k", "-n"]).arg(&tar));
    run_ok(Command::new("zstd").args(["-q", "-k"]).arg(&tar));
    let (gz, zst) = (dir.path().join("a.tar.gz"), dir.path().join("a.tar.zst"));
    let output = run_wsl_tarball(&["diff", gz.to_str().unwrap(), zst.to_str().unwrap()]);
    let report = text(&output);
    assert_eq!(output.status.code(), Some(1), "{report}");
    assert!(
        report.contains("the tar streams are identical: only the compression differs"),
        "{report}"
    );
}

/// A 40 MB plain tarball: large enough for a progress bar.
fn large_tarball(dir: &Path) -> PathBuf {
    let tree = dir.join("large");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("zeros"), vec![0u8; 40 << 20]).unwrap();
    let tarball = dir.join("large.tar");
    gnu_tar_file(&tree, &tarball);
    tarball
}

#[test]
fn progress_is_drawn_on_a_terminal_only_and_without_colour_under_no_color() {
    let dir = tempfile::tempdir().unwrap();
    let tarball = large_tarball(dir.path());
    let name = tarball.to_str().unwrap();
    let commands: [Vec<&str>; 3] = [
        vec!["inspect", name],
        vec!["verify", "--bare", name],
        vec!["diff", name, name],
    ];
    // Not a terminal: stderr stays empty.
    for args in &commands {
        let output = run_wsl_tarball(args);
        assert!(
            output.stderr.is_empty(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    // A terminal (script(1) gives the command a pty; stdout goes to
    // /dev/null, so what it records is stderr's bar).
    let binary = env!("CARGO_BIN_EXE_wsl-tarball");
    for no_color in [false, true] {
        for args in &commands {
            // verify fails here (no Nix database): only the bar matters.
            let shell = format!("{binary} {} >/dev/null; true", args.join(" "));
            let mut command = Command::new("script");
            command.args(["-qec", &shell, "/dev/null"]);
            command.env_remove("NO_COLOR");
            if no_color {
                command.env("NO_COLOR", "1");
            }
            let recorded = String::from_utf8_lossy(&run_ok(&mut command)).into_owned();
            assert!(recorded.contains(" MiB/"), "{args:?}: {recorded:?}");
            assert_eq!(
                recorded.contains("\x1b[36m"),
                !no_color,
                "{args:?} NO_COLOR={no_color}: {recorded:?}"
            );
        }
    }
}

/// A plain tarball of the directory `srv` and `count` empty files
/// `srv/PREFIX<n>`, written with the tar crate (headers only: cheap).
fn many_files_tarball(path: &Path, prefix: &str, count: u32) {
    let mut builder = tar::Builder::new(std::io::BufWriter::new(
        std::fs::File::create(path).unwrap(),
    ));
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Directory);
    header.set_mode(0o755);
    header.set_size(0);
    builder
        .append_data(&mut header, "srv/", std::io::empty())
        .unwrap();
    for i in 0..count {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(0o644);
        header.set_size(0);
        builder
            .append_data(&mut header, format!("srv/{prefix}{i:07}"), std::io::empty())
            .unwrap();
    }
    builder.into_inner().unwrap();
}

#[test]
fn hundreds_of_thousands_of_differences_stay_in_bounded_memory_and_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.tar"), dir.path().join("b.tar"));
    many_files_tarball(&a, "a", 150_000);
    many_files_tarball(&b, "b", 150_000);
    // prlimit makes 256 MiB of heap a hard limit: more would fail the run.
    let output = Command::new("prlimit")
        .arg("--data=268435456")
        .arg(env!("CARGO_BIN_EXE_wsl-tarball"))
        .args(["diff", "--json"])
        .arg(&a)
        .arg(&b)
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["members"]["removed"], 150_000);
    assert_eq!(json["members"]["added"], 150_000);
    assert_eq!(json["members"]["notListed"], 200_000);
    let changes = member_changes(&json);
    assert_eq!(changes.len(), 100_000);
    // Merge order: every a… (removed) sorts before every b… (added).
    assert_eq!(
        changes[0],
        ("/srv/a0000000".to_owned(), "removed".to_owned())
    );
    assert_eq!(changes[99_999].0, "/srv/a0099999");

    let text = text(&run_wsl_tarball(&[
        "diff",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
    ]));
    assert!(
        text.contains("members: 150000 added, 150000 removed, 0 changed"),
        "{text}"
    );
    assert!(
        text.contains("  … and 99950 more members here\n")
            && text.contains("left out: 299950 members and 0 unified diffs"),
        "{text}"
    );
}

#[test]
fn hostile_member_names_link_targets_and_contents_are_printed_escaped_and_json_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    let (tree_a, tree_b) = (dir.path().join("a"), dir.path().join("b"));
    write_file(&tree_a, "etc/motd", "hello\n");
    std::os::unix::fs::symlink("/a", tree_a.join("etc").join(HOSTILE)).unwrap();
    hostile_tree(&tree_b);
    write_file(&tree_b, "etc/motd", &format!("hello\n{HOSTILE}\n"));
    let (a, b) = gnu_tars(dir.path(), &tree_a, &tree_b);

    let output = run_wsl_tarball(&["diff", a.to_str().unwrap(), b.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let text = assert_terminal_safe("diff", &output);
    let link = format!("/etc/{HOSTILE_ESCAPED}");
    assert!(
        text.contains(&format!(
            "  ~ {link}: linkname \"/a\" -> \"/{HOSTILE_ESCAPED}\""
        )) && text.contains(&format!(
            "{}/{HOSTILE_ESCAPED}",
            hostile_store_path().replace(HOSTILE, HOSTILE_ESCAPED)
        )) && text.contains(r"    +x\033]0;pwned\a\033[2J\r"),
        "{text}"
    );

    let json = diff_json(&a, &b);
    let changes = member_changes(&json);
    assert!(
        changes.contains(&(format!("/etc/{HOSTILE}"), "changed".to_owned()))
            && changes.contains(&(
                format!("{}/{HOSTILE}", hostile_store_path()),
                "added".to_owned()
            )),
        "{changes:?}"
    );
    let link_change = json["groups"][0]["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["member"] == format!("/etc/{HOSTILE}").as_str())
        .unwrap();
    assert_eq!(
        link_change["fields"],
        serde_json::json!([{"field": "linkname", "a": "\"/a\"", "b": format!("\"/{HOSTILE}\"")}])
    );
}

/// A `write --nixos` tarball of a version of the delta fixture system in
/// DIR/NAME.wsl.
fn delta_release(dir: &Path, version: &str) -> (String, PathBuf) {
    let system = delta_system(version);
    let closure_dir = dir.join(format!("closure-{version}"));
    std::fs::create_dir_all(&closure_dir).unwrap();
    let closure = write_path_info(&system, &closure_dir);
    let tarball = dir.join(format!("v{version}.wsl"));
    let output = run_wsl_tarball(&[
        "write",
        "--closure",
        closure.to_str().unwrap(),
        "--system",
        &system,
        "--nixos",
        "--quiet",
        "-o",
        tarball.to_str().unwrap(),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    (system, tarball)
}

#[test]
fn two_releases_lead_with_the_new_package_version_and_the_changed_etc_line() {
    let dir = tempfile::tempdir().unwrap();
    let (v1, a) = delta_release(dir.path(), "1");
    let (v2, b) = delta_release(dir.path(), "2");

    let report = diff_text(&a, &b);
    let head: Vec<&str> = report.lines().take(20).collect();
    let head = head.join("\n");
    assert!(head.contains("\n  hello 1 → 2, "), "{report}");
    assert!(
        head.contains("\n    -Welcome to version 1\n    +Welcome to version 2"),
        "{report}"
    );
    assert!(head.contains("  ~ /etc/motd: content: "), "{report}");
    // Symlinks into paired store paths are not content changes.
    assert!(
        report.contains("symlinks whose targets moved only with a store hash:\n"),
        "{report}"
    );
    assert!(!report.contains("(symlink, 0 bytes)"), "{report}");

    // The JSON pairs: names, versions and NAR sizes as Nix has them.
    let json = diff_json(&a, &b);
    let nar_size = |system: &str, name: &str| -> u64 {
        let (_, (_, size, _)) = path_info_validity(None, system)
            .into_iter()
            .find(|(path, _)| path.ends_with(name))
            .unwrap();
        size
    };
    let hello = json["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|pair| pair["name"] == "hello")
        .unwrap_or_else(|| panic!("{json:#}"));
    assert_eq!(hello["versionA"], "1");
    assert_eq!(hello["versionB"], "2");
    assert_eq!(hello["narSizeA"], nar_size(&v1, "-hello-1"));
    assert_eq!(hello["narSizeB"], nar_size(&v2, "-hello-2"));
    let mut names: Vec<&str> = json["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| pair["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["etc", "hello", "motd", "nixos-system-delta"]);
    // Members the same in both halves of a pair are not listed: hello's
    // program is the same, its version file is not.
    let changes = member_changes(&json);
    assert!(
        changes
            .iter()
            .any(|(m, c)| m.ends_with("-hello-2/share/version") && c == "changed")
            && !changes
                .iter()
                .any(|(m, _)| m.ends_with("-hello-2/bin/hello")),
        "{changes:?}"
    );
}

#[test]
fn symlinks_show_targets_and_a_target_moved_only_with_a_store_hash_is_labelled() {
    let dir = tempfile::tempdir().unwrap();
    let (tree_a, tree_b) = (dir.path().join("a"), dir.path().join("b"));
    let foo_a = format!("/nix/store/{}-foo-1.0", "a".repeat(32));
    let foo_b = format!("/nix/store/{}-foo-1.0", "b".repeat(32));
    for (tree, foo, other) in [
        (
            &tree_a,
            &foo_a,
            format!("/nix/store/{}-baz-1", "c".repeat(32)),
        ),
        (
            &tree_b,
            &foo_b,
            format!("/nix/store/{}-qux-1", "d".repeat(32)),
        ),
    ] {
        write_file(
            tree,
            format!("{foo}/share/x").trim_start_matches('/'),
            "same\n",
        );
        write_file(
            tree,
            format!("{foo}/share/y").trim_start_matches('/'),
            "same\n",
        );
        write_file(tree, other.trim_start_matches('/'), "other\n");
        let etc = tree.join("etc");
        std::fs::create_dir_all(&etc).unwrap();
        std::os::unix::fs::symlink(format!("{foo}/share/x"), etc.join("moved")).unwrap();
        std::os::unix::fs::symlink(&other, etc.join("other")).unwrap();
    }
    // A real target change, into the paired store path.
    std::os::unix::fs::symlink(format!("{foo_a}/share/x"), tree_a.join("etc/retargeted")).unwrap();
    std::os::unix::fs::symlink(format!("{foo_b}/share/y"), tree_b.join("etc/retargeted")).unwrap();
    std::os::unix::fs::symlink(
        "share/x",
        tree_b.join(foo_b.trim_start_matches('/')).join("new"),
    )
    .unwrap();
    let (a, b) = gnu_tars(dir.path(), &tree_a, &tree_b);

    let report = diff_text(&a, &b);
    assert!(
        report.contains("  rebuilt, same version: foo 1.0\n"),
        "{report}"
    );
    assert!(
        report.contains(&format!(
            "  ~ /etc/retargeted: linkname \"{foo_a}/share/x\" -> \"{foo_b}/share/y\"\n"
        )) && report.contains(&format!(
            "  ~ /etc/other: linkname \"/nix/store/{}-baz-1\"",
            "c".repeat(32)
        )),
        "{report}"
    );
    let (changed, labelled) = report
        .split_once("symlinks whose targets moved only with a store hash:\n")
        .unwrap_or_else(|| panic!("{report}"));
    assert!(!changed.contains("/etc/moved"), "{report}");
    assert!(
        labelled.contains(&format!("  = /etc/moved -> {foo_b}/share/x\n")),
        "{report}"
    );
    assert!(
        changed.contains(&format!("  + {foo_b}/new -> share/x (symlink)\n")),
        "{report}"
    );
    assert!(
        report.contains(", 1 symlinks moved only with a store hash\n"),
        "{report}"
    );

    let json = diff_json(&a, &b);
    let members: Vec<&serde_json::Value> = json["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|group| group["members"].as_array().unwrap())
        .collect();
    let member = |name: &str| {
        members
            .iter()
            .find(|m| m["member"] == name)
            .unwrap_or_else(|| panic!("no {name} in {json:#}"))
    };
    assert_eq!(member("/etc/moved")["storeHashOnly"], true);
    assert_eq!(
        member("/etc/moved")["linkTarget"],
        format!("{foo_b}/share/x")
    );
    assert_eq!(member("/etc/retargeted")["storeHashOnly"], false);
    assert_eq!(member("/etc/other")["storeHashOnly"], false);
    assert_eq!(member(&format!("{foo_b}/new"))["change"], "added");
    // The files the same in both halves of the pair are not listed.
    assert!(!members
        .iter()
        .any(|m| m["member"].as_str().unwrap().contains("/share/")));
    assert_eq!(json["members"]["storeHashOnly"], 1);
    assert_eq!(json["members"]["changed"], 2);
    assert_eq!(json["pairs"][0]["name"], "foo");
    assert_eq!(json["pairs"][0]["pathA"], foo_a.as_str());
    assert_eq!(json["pairs"][0]["pathB"], foo_b.as_str());
}

#[test]
fn large_files_on_both_sides_are_compared_to_the_byte_in_bounded_memory() {
    use std::io::{Seek, SeekFrom, Write};
    let dir = tempfile::tempdir().unwrap();
    let (tree_a, tree_b) = (dir.path().join("a"), dir.path().join("b"));
    const SIZE: u64 = 200 << 20;
    for (tree, last) in [(&tree_a, b"1"), (&tree_b, b"2")] {
        std::fs::create_dir_all(tree.join("srv")).unwrap();
        let mut file = std::fs::File::create(tree.join("srv/big")).unwrap();
        file.set_len(SIZE).unwrap();
        file.seek(SeekFrom::Start(SIZE - 1)).unwrap();
        file.write_all(last).unwrap();
    }
    let (a, b) = gnu_tars(dir.path(), &tree_a, &tree_b);
    std::fs::remove_dir_all(&tree_a).unwrap();
    std::fs::remove_dir_all(&tree_b).unwrap();
    // Both sides are read at once; 96 MiB of heap is a hard limit.
    let output = Command::new("prlimit")
        .arg("--data=100663296")
        .arg(env!("CARGO_BIN_EXE_wsl-tarball"))
        .arg("diff")
        .arg(&a)
        .arg(&b)
        .output()
        .unwrap();
    let report = text(&output);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{report}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        report.contains(&format!(
            "  ~ /srv/big: content: first differing byte at offset {} of {SIZE} (0x31 in A, 0x32 in B)\n",
            SIZE - 1
        )),
        "{report}"
    );
}
