//! The gzip output as a series of members (libdeflate, at most 1 MiB of tar
//! bytes each, never spanning a store-path boundary, each header carrying
//! its length in the "WT" extra subfield): every reader we know accepts it.

mod common;

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use common::*;

const MIB: usize = 1024 * 1024;

/// A closure with a store path of several MiB (split into several members)
/// beside small ones, built once per test binary. Returns the toplevel.
fn big_fixture() -> &'static str {
    static SYSTEM: OnceLock<String> = OnceLock::new();
    SYSTEM.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("big.nix");
        std::fs::write(
            &file,
            r#"{ system ? builtins.currentSystem }:
let
  mk = name: script: derivation {
    inherit name system;
    builder = "/bin/sh";
    args = [ "-c" script ];
    PATH = "/usr/bin:/bin";
  };
  big = mk "gzip-members-big" ''
    mkdir -p $out/share
    seq 1 700000 > $out/share/numbers
    head -c 1500000 /dev/zero > $out/share/zeros
    printf 'small\n' > $out/share/small
  '';
  small = mk "gzip-members-small" ''
    mkdir -p $out
    printf 'tiny\n' > $out/tiny
  '';
in
mk "gzip-members-top" ''
  mkdir -p $out
  echo ${big} ${small} > $out/deps
''
"#,
        )
        .unwrap();
        run_text(nix_command("nix-build").arg("--no-out-link").arg(&file))
            .trim()
            .to_owned()
    })
}

/// `write` of the big fixture into `dir/name` with extra arguments.
fn write_big_command(dir: &Path, name: &str, extra: &[&str]) -> (Command, PathBuf) {
    let (mut command, output) = quiet_write_command(dir, big_fixture(), name);
    command.args(extra).stdin(Stdio::null());
    (command, output)
}

/// [`write_big_command`], run; panics on failure.
fn write_big(dir: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let (mut command, output) = write_big_command(dir, name, extra);
    run_ok(&mut command);
    output
}

/// One gzip member as its header describes it.
#[derive(Debug)]
struct Member {
    offset: usize,
    len: usize,
    extra_flags: u8,
}

/// The members of `gz`, found through the "WT" subfield alone (no
/// inflating). Panics unless every header is ours and the lengths chain
/// exactly to the end.
fn members(gz: &[u8]) -> Vec<Member> {
    let mut found = Vec::new();
    let mut at = 0;
    while at < gz.len() {
        let h = &gz[at..at + 20];
        assert_eq!(h[..4], [0x1f, 0x8b, 8, 4], "header of the member at {at}");
        assert_eq!(h[4..8], [0; 4], "MTIME of the member at {at}");
        assert_eq!(h[9], 3, "OS of the member at {at}");
        assert_eq!(
            h[10..16],
            [8, 0, b'W', b'T', 4, 0],
            "extra field of the member at {at}"
        );
        let len = u32::from_le_bytes(h[16..20].try_into().unwrap()) as usize;
        assert!(
            at + len <= gz.len(),
            "member at {at} of {len} bytes overruns"
        );
        found.push(Member {
            offset: at,
            len,
            extra_flags: h[8],
        });
        at += len;
    }
    found
}

/// Inflates one member on its own.
fn inflate(member: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut decoder = flate2::read::GzDecoder::new(member);
    decoder.read_to_end(&mut out).unwrap();
    out
}

fn stdout_of(command: &mut Command) -> Vec<u8> {
    run_ok(command.stdin(Stdio::null()))
}

fn lines(bytes: Vec<u8>) -> Vec<String> {
    String::from_utf8_lossy(&bytes)
        .lines()
        .map(|line| {
            line.trim_start_matches("./")
                .trim_end_matches('/')
                .to_owned()
        })
        .filter(|line| !line.is_empty() && line != ".")
        .collect()
}

#[test]
fn every_reader_accepts_the_members() {
    let dir = tempfile::tempdir().unwrap();
    let tarball = write_big(dir.path(), "nixos.wsl", &[]);
    let gz = std::fs::read(&tarball).unwrap();
    let members = members(&gz);
    assert!(members.len() >= 5, "{} members", members.len());

    let tar = stdout_of(Command::new("gzip").arg("-dc").arg(&tarball));
    run_ok(Command::new("gzip").arg("-t").arg(&tarball));
    run_ok(Command::new("pigz").arg("-t").arg(&tarball));
    let libdeflate = stdout_of(Command::new("libdeflate-gzip").arg("-dc").arg(&tarball));
    assert!(libdeflate == tar, "libdeflate-gzip -d gives other bytes");
    let pigz = stdout_of(Command::new("pigz").arg("-dc").arg(&tarball));
    assert!(pigz == tar, "pigz -d gives other bytes");
    // Member by member, each inflated alone, gives the same tar.
    let joined: Vec<u8> = members
        .iter()
        .flat_map(|m| inflate(&gz[m.offset..m.offset + m.len]))
        .collect();
    assert!(joined == tar, "the members inflated one by one differ");

    let gnu = lines(stdout_of(Command::new("tar").arg("-tzf").arg(&tarball)));
    assert!(
        gnu.iter().any(|name| name.ends_with("share/numbers")),
        "{gnu:?}"
    );
    let bsdtar = lines(stdout_of(Command::new("bsdtar").arg("-tzf").arg(&tarball)));
    assert_eq!(bsdtar, gnu, "bsdtar lists other members than GNU tar");
    let python = lines(stdout_of(
        Command::new("python3")
            .arg("-c")
            .arg(
                "import sys, tarfile\n\
                 with tarfile.open(sys.argv[1], 'r:gz') as t:\n\
                 \x20   for m in t:\n\
                 \x20       sys.stdout.buffer.write(m.name.encode('utf-8', 'surrogateescape') + b'\\n')\n",
            )
            .arg(&tarball),
    ));
    assert_eq!(python, gnu, "Python's tarfile lists other members");

    assert_verifies(&tarball, Rootfs::Bare);
    let inspect = stdout_of(wsl_tarball().args(["inspect", "--json"]).arg(&tarball));
    let inspect: serde_json::Value = serde_json::from_slice(&inspect).unwrap();
    assert_eq!(inspect["compression"], "gzip", "{inspect:#}");
    let check = wsl_tarball()
        .arg("check")
        .arg(&tarball)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "check FILE rejects our tarball: {}",
        String::from_utf8_lossy(&check.stderr)
    );
}

/// The store path (`nix/store/NAME`) a tar member belongs to, if any.
fn store_path_of(name: &[u8]) -> Option<String> {
    let name = String::from_utf8_lossy(name);
    let name = name.trim_start_matches("./").trim_start_matches('/');
    let rest = name.strip_prefix("nix/store/")?;
    let base = rest.split('/').next().filter(|b| !b.is_empty())?;
    Some(base.to_owned())
}

#[test]
fn members_cover_at_most_1_mib_and_never_span_a_store_path_boundary() {
    let dir = tempfile::tempdir().unwrap();
    let tarball = write_big(dir.path(), "nixos.wsl", &[]);
    let gz = std::fs::read(&tarball).unwrap();
    // Where each member starts in the tar stream.
    let mut starts = BTreeSet::new();
    let mut tar = Vec::new();
    for member in members(&gz) {
        starts.insert(tar.len() as u64);
        let bytes = inflate(&gz[member.offset..member.offset + member.len]);
        assert!(
            !bytes.is_empty() && bytes.len() <= MIB,
            "member at {} covers {} bytes",
            member.offset,
            bytes.len()
        );
        tar.extend(bytes);
    }
    // Every change of store path between consecutive tar members (into,
    // out of, or between store paths) falls on a gzip member boundary.
    let mut archive = tar::Archive::new(&tar[..]);
    let mut previous: Option<Option<String>> = None;
    // Where the big store path's tar bytes begin and end.
    let mut big_range = (None, None);
    let mut boundaries = 0;
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        let position = entry.raw_header_position();
        let path = store_path_of(&entry.path_bytes());
        if previous.as_ref().is_some_and(|p| *p != path) {
            boundaries += 1;
            assert!(
                starts.contains(&position),
                "{path:?} starts at tar byte {position}, inside a gzip member (member starts: {starts:?})"
            );
            if big_range.0.is_some() && big_range.1.is_none() {
                big_range.1 = Some(position);
            }
        }
        let is_big = path
            .as_deref()
            .is_some_and(|p| p.ends_with("-gzip-members-big"));
        if is_big && big_range.0.is_none() {
            big_range.0 = Some(position);
        }
        previous = Some(path);
    }
    assert!(boundaries >= 4, "{boundaries} store-path boundaries");
    let (Some(begin), Some(end)) = big_range else {
        panic!("the big store path was not found between others: {big_range:?}");
    };
    let big_members = starts.range(begin..end).count();
    assert!(
        big_members >= 5,
        "the big store path ({} tar bytes) spans {big_members} members",
        end - begin
    );
}

#[test]
fn levels_and_thread_counts_give_the_same_members() {
    let dir = tempfile::tempdir().unwrap();
    for (level, extra_flags) in [("1", 4), ("6", 0), ("9", 2)] {
        let one = write_big(
            dir.path(),
            &format!("l{level}-t1.wsl"),
            &["--level", level, "--threads", "1"],
        );
        let two = write_big(
            dir.path(),
            &format!("l{level}-t2.wsl"),
            &["--level", level, "--threads", "2"],
        );
        let one = std::fs::read(one).unwrap();
        assert!(
            one == std::fs::read(two).unwrap(),
            "level {level}: 1 and 2 threads differ"
        );
        for member in members(&one) {
            assert_eq!(
                member.extra_flags, extra_flags,
                "XFL of the member at {} at level {level}",
                member.offset
            );
        }
    }
    let (mut command, output) = write_big_command(dir.path(), "l10.wsl", &["--level", "10"]);
    let out_of_range = command.output().unwrap();
    assert_eq!(out_of_range.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out_of_range.stderr);
    assert!(
        stderr.contains("gzip level 10 is out of range 1-9"),
        "{stderr}"
    );
    assert!(
        !output.exists(),
        "a rejected level left {}",
        output.display()
    );
}

#[test]
fn every_format_gives_the_same_bytes_for_every_thread_count() {
    // The big store path is several pieces: with more threads they are
    // compressed (or fed to the stream encoder) in another order and on
    // other threads, never into other bytes.
    let dir = tempfile::tempdir().unwrap();
    for compression in ["gzip", "xz", "zstd", "none"] {
        let outputs: Vec<Vec<u8>> = ["1", "2", "3", "8"]
            .into_iter()
            .map(|threads| {
                let name = format!("{compression}-t{threads}.wsl");
                let path = write_big(
                    dir.path(),
                    &name,
                    &["--compression", compression, "--threads", threads],
                );
                assert_verifies(&path, Rootfs::Bare);
                std::fs::read(path).unwrap()
            })
            .collect();
        assert!(
            outputs.windows(2).all(|pair| pair[0] == pair[1]),
            "{compression}: thread counts differ"
        );
    }
}
