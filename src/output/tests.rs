use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;

use super::atomic::{hidden_name, Temporary};
use super::destination::resolve_destination;
use super::*;
use crate::os;

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn commit_replaces_and_drop_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let destination = dir.path().join("nixos.wsl");
    fs::write(&destination, b"old").unwrap();

    let mut failed = AtomicOutput::create(&destination).unwrap();
    failed.write_all(b"partial").unwrap();
    assert_eq!(names(dir.path()), ["nixos.wsl"], "the temporary is unnamed");
    drop(failed);
    assert_eq!(fs::read(&destination).unwrap(), b"old");
    assert_eq!(names(dir.path()), ["nixos.wsl"]);

    let mut output = AtomicOutput::create(&destination).unwrap();
    output.write_all(b"new").unwrap();
    assert_eq!(output.commit().unwrap(), 3);
    assert_eq!(fs::read(&destination).unwrap(), b"new");
    assert_eq!(names(dir.path()), ["nixos.wsl"]);
}

#[test]
fn the_named_fallback_commits_and_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let destination = dir.path().join("nixos.wsl");
    fs::write(&destination, b"old").unwrap();
    // What a file system without O_TMPFILE gets.
    let named = |destination: &Path| {
        let path = hidden_name(destination);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .unwrap();
        AtomicOutput {
            destination: destination.to_path_buf(),
            target: destination.to_path_buf(),
            file,
            temporary: Some(Temporary::Named {
                _on_signal: os::remove_on_signal(&path),
                path,
            }),
            durable: true,
        }
    };
    let mut dropped = named(&destination);
    dropped.write_all(b"partial").unwrap();
    assert_eq!(names(dir.path()).len(), 2);
    drop(dropped);
    assert_eq!(names(dir.path()), ["nixos.wsl"]);
    let mut output = named(&destination);
    output.write_all(b"new").unwrap();
    output.commit().unwrap();
    assert_eq!(fs::read(&destination).unwrap(), b"new");
    assert_eq!(names(dir.path()), ["nixos.wsl"]);
}

#[test]
fn stale_temporaries_of_dead_processes_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let destination = dir.path().join("nixos.wsl");
    // Process ids above the kernel's pid_max are never alive.
    let dead = dir.path().join(".nixos.wsl.2147483646.tmp");
    let live = dir.path().join(format!(
        ".nixos.wsl.{}.tmp",
        std::os::unix::process::parent_id()
    ));
    let other = dir.path().join(".other.wsl.2147483646.tmp");
    for path in [&dead, &live, &other] {
        fs::write(path, b"x").unwrap();
    }
    AtomicOutput::create(&destination).unwrap();
    assert!(!dead.exists());
    assert!(live.exists(), "a live process's file is kept");
    assert!(other.exists(), "another destination's file is kept");
}

#[test]
fn a_stream_holds_back_its_last_bytes_until_complete() {
    use std::io::{Read, Seek};
    let mut held = Vec::new();
    let mut sent = Vec::new();
    // Pieces shorter and longer than what is held back, in every order.
    for split in [0, 1, 7, 8, 9, 20, 29] {
        let bytes: Vec<u8> = (0..30).collect();
        let (a, b) = bytes.split_at(split);
        let mut stream = Stream {
            out: io::BufWriter::new(tempfile::tempfile().unwrap()),
            held: Vec::new(),
        };
        for piece in [a, &[][..], b] {
            stream.write_all(piece).unwrap();
        }
        stream.flush().unwrap();
        held.push(stream.held.clone());
        let mut file = stream.out.into_inner().unwrap();
        file.rewind().unwrap();
        let mut out = Vec::new();
        file.read_to_end(&mut out).unwrap();
        sent.push(out);
    }
    for (held, sent) in held.iter().zip(&sent) {
        assert_eq!(held.as_slice(), &(22..30).collect::<Vec<u8>>()[..]);
        assert_eq!(sent.as_slice(), &(0..22).collect::<Vec<u8>>()[..]);
    }
}

#[test]
fn standard_output_is_no_file_to_replace() {
    for name in ["-", "/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"] {
        assert!(is_stdout(Path::new(name)), "{name}");
        let err = AtomicOutput::create(Path::new(name)).unwrap_err();
        assert!(err.to_string().contains("standard output"), "{err}");
    }
    for name in ["./-", "-x", "/dev/stderr"] {
        assert!(!is_stdout(Path::new(name)), "{name}");
    }
}

#[test]
fn missing_directory_is_named() {
    let err = AtomicOutput::create(Path::new("/nonexistent-dir/x.wsl")).unwrap_err();
    assert!(err.to_string().contains("/nonexistent-dir"), "{err}");
}

#[test]
fn non_regular_destinations_are_refused() {
    let err = AtomicOutput::create(Path::new("/dev/null")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "/dev/null is a character device, not a regular file; refusing to replace it"
    );
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink("missing", &link).unwrap();
    let err = AtomicOutput::create(&link).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("not writing through dangling symlink"),
        "{err}"
    );
}

#[test]
fn destinations_resolve_name_by_name_as_the_kernel_does() {
    use std::os::unix::fs::symlink;
    let tmp = tempfile::tempdir().unwrap();
    let dir = fs::canonicalize(tmp.path()).unwrap();
    fs::create_dir_all(dir.join("a/b")).unwrap();
    fs::write(dir.join("a/file"), b"x").unwrap();
    // `..` after a directory link leaves the link's target, not the link.
    symlink("a/b", dir.join("to-b")).unwrap();
    symlink("../file", dir.join("a/b/up")).unwrap();
    symlink("to-b/up", dir.join("chain")).unwrap();
    assert_eq!(
        resolve_destination(&dir.join("to-b/../file")).unwrap(),
        dir.join("a/file")
    );
    assert_eq!(
        resolve_destination(&dir.join("chain")).unwrap(),
        dir.join("a/file")
    );
    assert_eq!(
        resolve_destination(&dir.join("to-b/new.wsl")).unwrap(),
        dir.join("a/b/new.wsl")
    );
    // A loop ends as the kernel's does.
    symlink("loop2", dir.join("loop1")).unwrap();
    symlink("loop1", dir.join("loop2")).unwrap();
    let err = resolve_destination(&dir.join("loop1")).unwrap_err();
    assert!(err.to_string().contains("symbolic links"), "{err}");
    // A file used as a directory.
    let err = resolve_destination(&dir.join("a/file/x")).unwrap_err();
    assert!(err.to_string().contains("Not a directory"), "{err}");
}

#[test]
fn a_transaction_waits_for_a_locked_directory_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let mut first = AtomicOutput::create(&a).unwrap();
    first.write_all(b"a").unwrap();
    let mut second = AtomicOutput::create(&b).unwrap();
    second.write_all(b"b").unwrap();
    // Another run's lock on the directory.
    let held = File::open(dir.path()).unwrap();
    os::lock_exclusive(&held).unwrap();
    let (told, waiting) = std::sync::mpsc::channel();
    let committing = std::thread::spawn(move || {
        commit_all(vec![first, second], &mut |dir| {
            told.send(dir.to_path_buf()).unwrap()
        })
    });
    let waited_for = waiting.recv().unwrap();
    assert_eq!(waited_for, fs::canonicalize(dir.path()).unwrap());
    assert_eq!(names(dir.path()), Vec::<String>::new(), "nothing renamed");
    drop(held);
    assert_eq!(committing.join().unwrap().unwrap(), [1, 1]);
    assert_eq!(names(dir.path()), ["a", "b"]);
}

#[test]
fn a_transaction_fails_whole_before_renaming() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    fs::write(&a, b"old a").unwrap();
    fs::write(&b, b"old b").unwrap();
    let mut first = AtomicOutput::create(&a).unwrap();
    first.write_all(b"new a").unwrap();
    let mut second = AtomicOutput::create(&b).unwrap();
    second.write_all(b"new b").unwrap();
    // The third output's hidden name is taken by a directory: its
    // staging fails, after the first two are staged but before any rename.
    let sub = dir.path().join("sub");
    fs::create_dir(&sub).unwrap();
    let mut third = AtomicOutput::create(&sub.join("c")).unwrap();
    third.write_all(b"c").unwrap();
    fs::create_dir(hidden_name(&third.target)).unwrap();
    let err = commit_all(vec![first, second, third], &mut |_| {}).unwrap_err();
    assert!(err.to_string().contains("sub/c"), "{err}");
    assert_eq!(fs::read(&a).unwrap(), b"old a");
    assert_eq!(fs::read(&b).unwrap(), b"old b");
    assert_eq!(names(dir.path()), ["a", "b", "sub"]);
    assert_eq!(names(&sub).len(), 1, "only the directory in the way");
}
