//! The library's structure: no module imports in a circle
//! (.ci/module-cycles.py, run on the crate's own src/ and on a small crate
//! with a cycle the script must report, so the check cannot pass by finding
//! nothing), and no library error message names a command-line flag (the
//! binary's flags.rs adds them).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn module_cycles(src: &Path) -> Output {
    Command::new("python3")
        .arg(repo_root().join(".ci/module-cycles.py"))
        .arg(src)
        .output()
        .expect("python3 runs .ci/module-cycles.py")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn the_library_has_no_module_cycle() {
    let output = module_cycles(&repo_root().join("src"));
    let text = text(&output);
    assert!(output.status.success(), "{text}");
    assert!(text.starts_with("no module cycles among "), "{text}");
}

/// A crate where `a::x` and `a::y` use each other (one through a parent's
/// re-export, one through a `crate::` path in code), and `b` uses `a`: the
/// script names the cycle under `a` and both edges; `a` -> `b` alone, or a
/// child using its parent's error type, is no cycle.
#[test]
fn a_cycle_between_siblings_is_reported() {
    let dir = std::env::temp_dir().join(format!("wsl-tarball-cycles-{}", std::process::id()));
    let files = [
        ("lib.rs", "pub mod a;\npub mod b;\n"),
        (
            "a/mod.rs",
            "mod x;\nmod y;\npub use x::X;\npub struct AError;\n#[cfg(test)]\nmod tests {\n    use crate::b::B;\n}\n",
        ),
        ("a/x.rs", "use super::AError;\npub struct X;\nfn f() { let _ = crate::a::y::Y; }\n"),
        ("a/y.rs", "// use crate::b::B; is a comment\nuse super::X;\npub struct Y;\n"),
        ("b.rs", "use crate::a::{AError, X};\npub struct B;\n"),
    ];
    for (name, content) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    let output = module_cycles(&dir);
    let text = text(&output);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("module cycle under a: x, y"), "{text}");
    assert!(text.contains("x -> y: a::x uses crate::a::y::Y"), "{text}");
    assert!(text.contains("y -> x: a::y uses super::X"), "{text}");
    assert!(!text.contains("under crate"), "{text}");
}

/// The binary's own files, which name flags by design.
fn is_binary_file(relative: &Path) -> bool {
    relative.starts_with("cli")
        || ["main.rs", "exit.rs", "print.rs", "flags.rs"]
            .iter()
            .any(|file| relative == Path::new(file))
}

/// A flag in `text`: `--word`, or `-o ` as a word of its own.
fn names_a_flag(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes
        .windows(3)
        .any(|w| w[0] == b'-' && w[1] == b'-' && w[2].is_ascii_lowercase())
        || text.contains(" -o ")
        || text.contains("\"-o ")
}

/// Every `.rs` file under src/ but the test files (`tests.rs`), with its
/// path relative to src/.
fn source_files() -> Vec<(PathBuf, PathBuf)> {
    let src = repo_root().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files
        .into_iter()
        .map(|file| (file.strip_prefix(&src).unwrap().to_path_buf(), file))
        .filter(|(relative, _)| !relative.ends_with("tests.rs"))
        .collect()
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

#[test]
fn library_error_messages_name_no_flag() {
    let mut flagged = Vec::new();
    for (relative, file) in source_files() {
        if is_binary_file(&relative) {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        // Test modules come last in a file: only the code before them.
        let code = text.split("#[cfg(test)]\nmod tests").next().unwrap();
        for (start, _) in code.match_indices("#[error(") {
            let attribute = &code[start..];
            let attribute = &attribute[..attribute.find(")]\n").unwrap_or(attribute.len())];
            if names_a_flag(attribute) {
                flagged.push(format!("{}: {attribute}", relative.display()));
            }
        }
    }
    assert!(flagged.is_empty(), "{}", flagged.join("\n"));
    // The check sees a flag where there is one.
    assert!(names_a_flag("#[error(\"--cache {} is not a directory\")"));
    assert!(names_a_flag("#[error(\"-o {}: its suffix\")"));
    assert!(!names_a_flag("#[error(\"cache {} is not a directory\")"));
}

/// Issue 25's bound on file size: no source file but a test file is over
/// 800 lines (a module that long does more than one job), and `main.rs`,
/// which only parses, dispatches and prints, is at most 300.
#[test]
fn no_source_file_is_over_800_lines_and_main_over_300() {
    let files = source_files();
    let mut long = Vec::new();
    for (relative, file) in &files {
        let lines = std::fs::read_to_string(file).unwrap().lines().count();
        let limit = if relative == Path::new("main.rs") {
            300
        } else {
            800
        };
        if lines > limit {
            long.push(format!(
                "{}: {lines} lines (at most {limit})",
                relative.display()
            ));
        }
    }
    assert!(files.len() > 100, "{} files", files.len());
    assert!(long.is_empty(), "{}", long.join("\n"));
}
