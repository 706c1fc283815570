//! The readers (`inspect`, `verify`, `diff`, `check FILE`) against GNU tar
//! and bsdtar, which is what `wsl --import` amounts to: from the same bytes
//! they read the same members, or ours fail with exit 2.
//!
//! - The hole this guards: a gzip member whose "WT" length is stretched over
//!   a member inserted after it. gzip, GNU tar and bsdtar read the inserted
//!   member; the parallel reader used to inflate the first member only and
//!   skip the rest of the slice.
//! - Crafted gzip files (WT lengths stretched, shrunk and overlapping,
//!   members concatenated with other gzip members, junk between members and
//!   after the last) and the mutation-fuzz corpus (`common::corpus`): the
//!   member list our reader gives (names, types, sizes, content digests) and
//!   the counts `inspect --json` prints must equal what GNU tar and bsdtar
//!   list and extract, wherever either of them reads to the end; where
//!   either reads a member ours does not, ours must fail with exit 2.

mod common;

use std::ops::Range;
use std::path::Path;
use std::process::Command;

use common::*;

/// The gzip members of a file `write` made, found by their "WT" lengths.
fn wt_members(gz: &[u8]) -> Vec<Range<usize>> {
    let mut members = Vec::new();
    let mut at = 0;
    while at < gz.len() {
        assert_eq!(&gz[at + 12..at + 14], b"WT", "member at {at} is not ours");
        let len = u32::from_le_bytes(gz[at + 16..at + 20].try_into().unwrap()) as usize;
        members.push(at..at + len);
        at += len;
    }
    members
}

/// The ISIZE of a member (its trailer's last four bytes).
fn isize_of(member: &[u8]) -> usize {
    u32::from_le_bytes(member[member.len() - 4..].try_into().unwrap()) as usize
}

/// Sets the "WT" length of the member starting at `at`.
fn set_wt(gz: &mut [u8], at: usize, len: usize) {
    gz[at + 16..at + 20].copy_from_slice(&(len as u32).to_le_bytes());
}

/// One gzip member of ours (the format `write` makes) holding `tar`.
fn our_member(tar: &[u8]) -> Vec<u8> {
    wsl_tarball::compress::gzip_member(tar, 6).unwrap().bytes
}

/// A fake PEM private key the secret scanner recognises.
fn private_key() -> String {
    let line = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7aGVsbG8";
    format!("-----BEGIN RSA PRIVATE KEY-----\n{line}\n{line}\n-----END RSA PRIVATE KEY-----\n")
}

/// The tar blocks of `./etc/` and `./etc/profile.local` holding a private
/// key, padded with newlines to exactly `len` bytes (a multiple of 512).
fn profile_local_with_key(len: usize) -> Vec<u8> {
    let mut content = private_key().into_bytes();
    let size = len - 2 * corpus::BLOCK;
    assert!(
        content.len() <= size,
        "{len} bytes is too short for the key"
    );
    content.resize(size, b'\n');
    let mut tar = corpus::ustar_header(b"./etc/", b'5', 0, 0o755);
    tar.extend(corpus::ustar_header(
        b"./etc/profile.local",
        b'0',
        size as u64,
        0o644,
    ));
    tar.extend(content);
    assert_eq!(tar.len(), len);
    tar
}

/// The hostile tarball: the fixture's gzip tarball with a member holding
/// `./etc/profile.local` inserted after member `k`, and member `k`'s "WT"
/// length stretched over it. The inserted member inflates to as many bytes
/// as member `k` (the size the reader used to check). Returns the bytes and
/// member `k`'s offset.
fn stretched_over_inserted_member(gz: &[u8]) -> (Vec<u8>, usize) {
    let members = wt_members(gz);
    let key_blocks = private_key().len().div_ceil(corpus::BLOCK);
    let k = members
        .iter()
        .position(|m| isize_of(&gz[m.clone()]) >= (2 + key_blocks) * corpus::BLOCK)
        .expect("a member large enough to mirror");
    let member = members[k].clone();
    let inserted = our_member(&profile_local_with_key(isize_of(&gz[member.clone()])));
    let mut hostile = gz[..member.end].to_vec();
    set_wt(&mut hostile, member.start, member.len() + inserted.len());
    hostile.extend_from_slice(&inserted);
    hostile.extend_from_slice(&gz[member.end..]);
    (hostile, member.start)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The hole itself: one member's "WT" length stretched over an inserted
/// member holding `./etc/profile.local` with a private key. gzip, GNU tar
/// and bsdtar read and extract the key; every reader of ours must see it or
/// fail, naming the member's offset.
#[test]
fn a_member_hidden_inside_a_stretched_wt_length_is_never_missed() {
    let dir = tempfile::tempdir().unwrap();
    let original = write_fixture(dir.path(), "original.wsl", &["--compression", "gzip"]);
    let (hostile, at) = stretched_over_inserted_member(&std::fs::read(&original).unwrap());
    let path = dir.path().join("hostile.wsl");
    std::fs::write(&path, &hostile).unwrap();

    // What the importer sees: a valid gzip file holding the key.
    run_ok(Command::new("gzip").arg("-t").arg(&path));
    for tool in ["tar", "bsdtar"] {
        let list = run_text(Command::new(tool).arg("-tzf").arg(&path));
        assert!(
            list.lines().any(|l| l == "./etc/profile.local"),
            "{tool} does not list the hidden member:\n{list}"
        );
    }
    let root = dir.path().join("extracted");
    extract(&path, &root);
    let extracted = std::fs::read_to_string(root.join("etc/profile.local")).unwrap();
    assert!(extracted.starts_with("-----BEGIN RSA PRIVATE KEY-----"));

    let offset = format!("byte {at} ");
    let verify = run_wsl_tarball(&["verify", "--bare", path.to_str().unwrap()]);
    let said = text(&verify.stdout) + &text(&verify.stderr);
    assert!(
        matches!(verify.status.code(), Some(1 | 2)) && !said.contains("verified"),
        "verify --bare: {:?}\n{said}",
        verify.status
    );
    assert!(
        said.contains(&offset),
        "verify names no {offset:?}:\n{said}"
    );

    let check = run_wsl_tarball(&["check", path.to_str().unwrap(), "--json"]);
    match check.status.code() {
        Some(2) => assert!(
            text(&check.stderr).contains(&offset),
            "{}",
            text(&check.stderr)
        ),
        code => {
            let report: serde_json::Value =
                serde_json::from_slice(&check.stdout).unwrap_or_else(|e| {
                    panic!(
                        "check {code:?} printed no JSON ({e}): {}",
                        text(&check.stderr)
                    )
                });
            let findings = report["findings"].as_array().unwrap();
            assert!(
                findings.iter().any(|f| f["path"] == "/etc/profile.local"
                    && f["detector"].as_str().unwrap().contains("private-key")),
                "check {code:?} misses the key: {report:#}"
            );
        }
    }

    let inspect = |file: &Path| run_wsl_tarball(&["inspect", "--json", file.to_str().unwrap()]);
    let before: serde_json::Value = serde_json::from_slice(&inspect(&original).stdout).unwrap();
    let after = inspect(&path);
    match after.status.code() {
        Some(2) => assert!(
            text(&after.stderr).contains(&offset),
            "{}",
            text(&after.stderr)
        ),
        code => {
            let after: serde_json::Value = serde_json::from_slice(&after.stdout).unwrap();
            assert_eq!(
                after["members"]["entries"].as_u64(),
                before["members"]["entries"].as_u64().map(|n| n + 2),
                "inspect ({code:?}) does not count ./etc and ./etc/profile.local"
            );
        }
    }

    let diff = run_wsl_tarball(&["diff", original.to_str().unwrap(), path.to_str().unwrap()]);
    let said = text(&diff.stdout) + &text(&diff.stderr);
    assert!(
        matches!(diff.status.code(), Some(1 | 2)) && !said.contains("identical"),
        "diff: {:?}\n{said}",
        diff.status
    );
}
