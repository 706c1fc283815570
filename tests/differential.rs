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

/// Whether a `check --json` report has the key in `/etc/profile.local`.
fn finds_the_key(report: &serde_json::Value) -> bool {
    report["findings"].as_array().is_some_and(|findings| {
        findings
            .iter()
            .any(|f| f["path"] == "/etc/profile.local" && f["detector"] == "pem-private-key")
    })
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The same member inserted honestly, between two of ours with a WT
/// length of its own or as a plain gzip member (no WT field): every reader
/// sees it, and `check FILE` finds the key.
#[test]
fn a_member_inserted_between_ours_is_seen_and_scanned() {
    let dir = tempfile::tempdir().unwrap();
    let original = write_fixture(dir.path(), "original.wsl", &["--compression", "gzip"]);
    let gz = std::fs::read(&original).unwrap();
    let after = wt_members(&gz)[0].end;
    let tar = profile_local_with_key(10240);
    for (what, inserted) in [("ours", our_member(&tar)), ("plain", plain_member(&tar))] {
        let path = dir.path().join(format!("{what}.wsl"));
        std::fs::write(&path, [&gz[..after], &inserted, &gz[after..]].concat()).unwrap();
        let check = run_wsl_tarball(&["check", path.to_str().unwrap(), "--json"]);
        let report: serde_json::Value = serde_json::from_slice(&check.stdout)
            .unwrap_or_else(|e| panic!("{what}: no JSON ({e}): {}", text(&check.stderr)));
        assert_eq!(check.status.code(), Some(3), "{what}: {report:#}");
        assert!(finds_the_key(&report), "{what}: {report:#}");
        let inspect = run_wsl_tarball(&["inspect", "--json", path.to_str().unwrap()]);
        assert!(
            inspect.status.success(),
            "{what}: {}",
            text(&inspect.stderr)
        );
        let diff = run_wsl_tarball(&[
            "diff",
            "--json",
            original.to_str().unwrap(),
            path.to_str().unwrap(),
        ]);
        assert_eq!(
            diff.status.code(),
            Some(1),
            "{what}: {}",
            text(&diff.stderr)
        );
        assert!(
            text(&diff.stdout).contains("etc/profile.local"),
            "{what}: diff does not name the inserted file: {}",
            text(&diff.stdout)
        );
    }
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
            assert!(
                finds_the_key(&report),
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

/// What a member is, as the three readers can all say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    Directory,
    Symlink,
    HardLink,
    CharDevice,
    BlockDevice,
    Fifo,
    /// Anything else, by the reader's own letter or type flag.
    Other(u8),
}

/// One member as a reader lists it.
#[derive(Clone, PartialEq, Eq)]
struct Listed {
    /// Normalised as the readers do (`./`, leading and trailing `/` off).
    name: Vec<u8>,
    kind: Kind,
    /// Bytes of content (files only; 0 for the rest).
    size: u64,
    /// Symlink or hard-link target (a hard link's normalised).
    target: Vec<u8>,
    /// SHA-256 of the content, where the reader gave it.
    sha256: Option<[u8; 32]>,
}

impl std::fmt::Debug for Listed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {:?} {} bytes",
            wsl_tarball::escape::escape_bytes(&self.name),
            self.kind,
            self.size
        )?;
        if !self.target.is_empty() {
            write!(f, " -> {}", wsl_tarball::escape::escape_bytes(&self.target))?;
        }
        if let Some(digest) = self.sha256 {
            write!(f, " sha256 {}", &wsl_tarball::hex::encode(&digest)[..12])?;
        }
        Ok(())
    }
}

/// A reader's whole list, and whether it read to the end without error.
#[derive(Debug)]
struct Listing {
    members: Vec<Listed>,
    ok: bool,
    said: String,
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

fn normalize(name: &[u8]) -> Vec<u8> {
    wsl_tarball::archive::normalize_path(name)
}

/// The shared reader behind `inspect`, `verify`, `diff` and `check FILE`.
fn ours(path: &Path) -> Listing {
    use std::io::Read;
    use wsl_tarball::archive::open_tarball;
    use wsl_tarball::tar::MemberKind;
    let mut members = Vec::new();
    let mut read = || -> Result<(), String> {
        let mut reader = open_tarball(path).map_err(|e| e.to_string())?;
        while let Some(member) = reader.next_member().map_err(|e| e.to_string())? {
            let kind = match member.kind {
                MemberKind::Regular => Kind::File,
                MemberKind::Directory => Kind::Directory,
                MemberKind::Symlink => Kind::Symlink,
                MemberKind::HardLink => Kind::HardLink,
                MemberKind::CharDevice => Kind::CharDevice,
                MemberKind::BlockDevice => Kind::BlockDevice,
                MemberKind::Fifo => Kind::Fifo,
                other => Kind::Other(other.flag()),
            };
            let mut content = Vec::new();
            reader
                .content()
                .read_to_end(&mut content)
                .map_err(|e| e.to_string())?;
            let target = match kind {
                Kind::HardLink => normalize(&member.link_target),
                Kind::Symlink => member.link_target.clone(),
                _ => Vec::new(),
            };
            members.push(Listed {
                name: member.path.clone(),
                kind,
                size: member.size,
                target,
                sha256: (member.size > 0 || kind == Kind::File).then(|| sha256(&content)),
            });
        }
        Ok(())
    };
    let result = read();
    Listing {
        members,
        ok: result.is_ok(),
        said: result.err().unwrap_or_default(),
    }
}

/// Undoes GNU tar's `--quoting-style=c`: the quoted string at the start of
/// `text` and what follows it.
fn c_unquote(text: &[u8]) -> Option<(Vec<u8>, &[u8])> {
    let mut rest = text.strip_prefix(b"\"")?;
    let mut out = Vec::new();
    loop {
        match *rest.first()? {
            b'"' => return Some((out, &rest[1..])),
            b'\\' => {
                let c = *rest.get(1)?;
                rest = &rest[2..];
                match c {
                    b'0'..=b'7' => {
                        let mut value = u32::from(c - b'0');
                        for _ in 0..2 {
                            match rest.first() {
                                Some(d @ b'0'..=b'7') => {
                                    value = value * 8 + u32::from(d - b'0');
                                    rest = &rest[1..];
                                }
                                _ => break,
                            }
                        }
                        out.push(value as u8);
                    }
                    b'a' => out.push(7),
                    b'b' => out.push(8),
                    b'f' => out.push(12),
                    b'n' => out.push(b'\n'),
                    b'r' => out.push(b'\r'),
                    b't' => out.push(b'\t'),
                    b'v' => out.push(11),
                    other => out.push(other),
                }
            }
            c => {
                out.push(c);
                rest = &rest[1..];
            }
        }
    }
}

/// GNU tar's list (`-tv`) and, from `-xO`, the files' contents.
fn gnu_tar(path: &Path) -> Listing {
    let tar = |args: &[&str]| {
        Command::new("tar")
            .args(["-P", "--quoting-style=c", "--numeric-owner", "--utc"])
            .args(args)
            .arg(path)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run GNU tar")
    };
    let list = tar(&["-tvf"]);
    let mut members = Vec::new();
    let mut parsed = true;
    for line in list.stdout.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let Some(quote) = line.iter().position(|&b| b == b'"') else {
            parsed = false;
            continue;
        };
        let fields: Vec<&[u8]> = line[..quote]
            .split(|&b| b == b' ')
            .filter(|f| !f.is_empty())
            .collect();
        let Some((name, rest)) = c_unquote(&line[quote..]) else {
            parsed = false;
            continue;
        };
        let kind = match fields[0][0] {
            // `C`: a contiguous file (type 7), which is a file.
            b'-' | b'C' => Kind::File,
            b'd' => Kind::Directory,
            b'l' => Kind::Symlink,
            b'h' => Kind::HardLink,
            b'c' => Kind::CharDevice,
            b'b' => Kind::BlockDevice,
            b'p' => Kind::Fifo,
            other => Kind::Other(other),
        };
        let size = std::str::from_utf8(fields[2])
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let target = [&b" -> "[..], b" link to "]
            .iter()
            .find_map(|arrow| c_unquote(rest.strip_prefix(*arrow)?))
            .map(|(t, _)| {
                if kind == Kind::HardLink {
                    normalize(&t)
                } else {
                    t
                }
            })
            .unwrap_or_default();
        members.push(Listed {
            name: normalize(&name),
            kind,
            size: if kind == Kind::File { size } else { 0 },
            target,
            sha256: None,
        });
    }
    // -xO writes the files' contents one after the other: cut them apart
    // by the sizes listed, if they add up.
    let extracted = tar(&["-xOf"]);
    let files: u64 = members
        .iter()
        .filter(|m| m.kind == Kind::File)
        .map(|m| m.size)
        .sum();
    if files == extracted.stdout.len() as u64 {
        let mut at = 0;
        for member in members.iter_mut().filter(|m| m.kind == Kind::File) {
            let end = at + member.size as usize;
            member.sha256 = Some(sha256(&extracted.stdout[at..end]));
            at = end;
        }
    }
    Listing {
        members,
        ok: parsed && list.status.success() && extracted.status.success(),
        said: text(&list.stderr) + &text(&extracted.stderr),
    }
}

/// bsdtar's reading, written out again by bsdtar as a GNU tar
/// (`bsdtar -cf - @FILE`) and listed with the `tar` crate.
fn bsdtar(path: &Path, scratch: &Path) -> Listing {
    use std::io::Read;
    let out = scratch.join("bsdtar-copy.tar");
    let copy = Command::new("bsdtar")
        .args(["-P", "--format=gnutar", "-cf"])
        .arg(&out)
        .arg(format!("@{}", path.display()))
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run bsdtar");
    let bytes = std::fs::read(&out).unwrap_or_default();
    let _ = std::fs::remove_file(&out);
    let mut members = Vec::new();
    let mut archive = tar::Archive::new(&bytes[..]);
    let mut parsed = true;
    match archive.entries() {
        Ok(entries) => {
            for entry in entries {
                let Ok(mut entry) = entry else {
                    parsed = false;
                    break;
                };
                let kind = match entry.header().entry_type() {
                    tar::EntryType::Regular | tar::EntryType::Continuous => Kind::File,
                    tar::EntryType::Directory => Kind::Directory,
                    tar::EntryType::Symlink => Kind::Symlink,
                    tar::EntryType::Link => Kind::HardLink,
                    tar::EntryType::Char => Kind::CharDevice,
                    tar::EntryType::Block => Kind::BlockDevice,
                    tar::EntryType::Fifo => Kind::Fifo,
                    other => Kind::Other(other.as_byte()),
                };
                let name = normalize(&entry.path_bytes());
                let target = entry
                    .link_name_bytes()
                    .filter(|_| matches!(kind, Kind::Symlink | Kind::HardLink))
                    .map(|t| {
                        if kind == Kind::HardLink {
                            normalize(&t)
                        } else {
                            t.into_owned()
                        }
                    })
                    .unwrap_or_default();
                let mut content = Vec::new();
                if entry.read_to_end(&mut content).is_err() {
                    parsed = false;
                }
                members.push(Listed {
                    name,
                    kind,
                    size: if kind == Kind::File {
                        content.len() as u64
                    } else {
                        0
                    },
                    target,
                    sha256: (kind == Kind::File).then(|| sha256(&content)),
                });
            }
        }
        Err(_) => parsed = false,
    }
    Listing {
        members,
        ok: parsed && copy.status.success(),
        said: text(&copy.stderr),
    }
}

/// `inspect --json`: its exit code and, on success, its report.
fn inspect_json(path: &Path) -> (Option<i32>, Option<serde_json::Value>, String) {
    let output = run_wsl_tarball(&["inspect", "--json", path.to_str().unwrap()]);
    let report = serde_json::from_slice(&output.stdout).ok();
    (output.status.code(), report, text(&output.stderr))
}

/// Whether two lists say the same; digests are compared where both have one.
fn same_members(a: &[Listed], b: &[Listed]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.name == y.name
                && x.kind == y.kind
                && x.size == y.size
                && x.target == y.target
                && match (x.sha256, y.sha256) {
                    (Some(p), Some(q)) => p == q,
                    _ => true,
                }
        })
}

/// Where two lists part, for the failure message.
fn first_difference(tool: &str, ours: &[Listed], theirs: &[Listed]) -> String {
    let at = ours
        .iter()
        .zip(theirs)
        .position(|(o, t)| !same_members(std::slice::from_ref(o), std::slice::from_ref(t)))
        .unwrap_or(ours.len().min(theirs.len()));
    format!(
        "{tool} lists other members than ours ({} and {}), from member {at} on:\n  ours {:#?}\n  {tool} {:#?}",
        ours.len(),
        theirs.len(),
        &ours[at..(at + 3).min(ours.len())],
        &theirs[at..(at + 3).min(theirs.len())]
    )
}

/// How one case ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    /// Ours and both tools read to the end, and all lists are equal.
    AllAgree,
    /// Ours read to the end and equals every tool that did; a tool that
    /// failed read nothing ours did not.
    OursAgreesToolFailed,
    /// Ours failed with exit 2 and so did a tool.
    AllFailed,
    /// Ours failed with exit 2 where both tools read to the end: careful,
    /// not wrong.
    OursRefused,
}

thread_local! {
    /// Why ours refused cases both tools read, by reason: for the figures
    /// of the test running on this thread.
    static REFUSALS: std::cell::RefCell<std::collections::BTreeMap<String, usize>> =
        Default::default();
}

/// An error message without the file's name and numbers, for counting.
fn reason(stderr: &str) -> String {
    let message = stderr.lines().next().unwrap_or_default();
    let message = message.split_once(".wsl: ").map_or(message, |(_, m)| m);
    let mut out = String::new();
    for c in message.chars() {
        if !(c.is_ascii_digit() && out.ends_with('N')) {
            out.push(if c.is_ascii_digit() { 'N' } else { c });
        }
    }
    out.chars().take(100).collect()
}

/// The verdict on one case: how it ended, or what is wrong.
fn judge(path: &Path, scratch: &Path) -> Result<Outcome, String> {
    let our_list = ours(path);
    let (code, report, stderr) = inspect_json(path);
    let tools = [
        ("GNU tar", gnu_tar(path)),
        ("bsdtar", bsdtar(path, scratch)),
    ];
    let tools_ok = tools.iter().all(|(_, t)| t.ok);
    match code {
        Some(0) => {}
        Some(2) if !stderr.is_empty() => {
            if tools_ok {
                REFUSALS.with(|r| *r.borrow_mut().entry(reason(&stderr)).or_default() += 1);
                return Ok(Outcome::OursRefused);
            }
            return Ok(Outcome::AllFailed);
        }
        _ => return Err(format!("inspect exited {code:?}: {stderr}")),
    }
    if !our_list.ok {
        return Err(format!(
            "inspect succeeded where the reader failed: {}",
            our_list.said
        ));
    }
    let report = report.ok_or("inspect --json printed no JSON")?;
    let count = |kind: Kind| our_list.members.iter().filter(|m| m.kind == kind).count() as u64;
    let counts = &report["members"];
    let expected = [
        ("entries", our_list.members.len() as u64),
        ("directories", count(Kind::Directory)),
        ("files", count(Kind::File)),
        ("symlinks", count(Kind::Symlink)),
        ("hardLinks", count(Kind::HardLink)),
    ];
    for (field, value) in expected {
        if counts[field].as_u64() != Some(value) {
            return Err(format!(
                "inspect counts {field} {}, the reader {value}",
                counts[field]
            ));
        }
    }
    let content: u64 = our_list.members.iter().map(|m| m.size).sum();
    if report["contentBytes"].as_u64() != Some(content) {
        return Err(format!(
            "inspect's contentBytes {} is not {content}",
            report["contentBytes"]
        ));
    }
    for (tool, listing) in &tools {
        if listing.ok {
            if !same_members(&our_list.members, &listing.members) {
                return Err(first_difference(tool, &our_list.members, &listing.members));
            }
        } else {
            // What a failing tool did read, ours must have read too, in
            // the same order (GNU tar skips a header it cannot read and
            // goes on; its last member may be cut short).
            let theirs = &listing.members;
            let mut ours_left = our_list.members.iter();
            let missing = theirs.iter().find(|t| {
                !ours_left
                    .by_ref()
                    .any(|o| o.name == t.name && o.kind == t.kind)
            });
            if let Some(missing) = missing {
                return Err(format!(
                    "{tool} (failing: {}) read {missing:?}, which ours did not:\n  ours {:#?}\n  {tool} {:#?}",
                    listing.said.trim(),
                    our_list.members,
                    theirs
                ));
            }
        }
    }
    Ok(if tools_ok {
        Outcome::AllAgree
    } else {
        Outcome::OursAgreesToolFailed
    })
}

/// Runs `judge` on `cases` (a name and the file's bytes), then fails with
/// every case that went wrong; returns how many ended each way.
fn judge_all(
    dir: &Path,
    cases: impl Iterator<Item = (String, Vec<u8>)>,
) -> std::collections::BTreeMap<Outcome, Vec<String>> {
    let started = std::time::Instant::now();
    let path = dir.join("case.wsl");
    let mut outcomes = std::collections::BTreeMap::<Outcome, Vec<String>>::new();
    let mut wrong = Vec::new();
    let mut count = 0;
    for (name, bytes) in cases {
        count += 1;
        std::fs::write(&path, &bytes).unwrap();
        match judge(&path, dir) {
            Ok(outcome) => outcomes.entry(outcome).or_default().push(name),
            Err(why) => wrong.push(format!("{name}: {why}")),
        }
    }
    eprintln!(
        "{count} cases in {:.1} s; {} wrong",
        started.elapsed().as_secs_f64(),
        wrong.len()
    );
    for (outcome, names) in &outcomes {
        eprintln!("  {:5}  {outcome:?}", names.len());
    }
    let mut reasons: Vec<(String, usize)> = REFUSALS.with(|r| r.take()).into_iter().collect();
    reasons.sort_by_key(|(_, count)| std::cmp::Reverse(*count));
    eprintln!("ours refused, where both tools read to the end, because:");
    for (why, count) in reasons.iter().take(12) {
        eprintln!("  {count:5}  {why}");
    }
    assert!(
        wrong.is_empty(),
        "{} of {count} cases read otherwise than GNU tar or bsdtar:\n{}",
        wrong.len(),
        wrong.join("\n\n")
    );
    outcomes
}

/// A plain gzip member (flate2, no "WT" field) holding `bytes`.
fn plain_member(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::GzBuilder::new()
        .filename("plain")
        .write(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn inflate(member: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(member)
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// Gzip files made from `gz` (a gzip tarball `write` made) by changing its
/// members: WT lengths stretched over inserted and following members,
/// overlapping the next, shrunk; members inserted (ours and others),
/// replaced by other gzip, concatenated; junk between members and after
/// the last; a bad CRC. With what each must give, where that is certain.
fn crafted(gz: &[u8]) -> Vec<(String, Vec<u8>, Option<Outcome>)> {
    let members = wt_members(gz);
    let mut cases = Vec::new();
    let splice = |at: usize, bytes: &[u8]| [&gz[..at], bytes, &gz[at..]].concat();
    // A whole tar record, so the archive still ends on a record boundary.
    let inserted_tar = profile_local_with_key(10240);
    for (k, member) in members.iter().enumerate() {
        let (start, end) = (member.start, member.end);
        let len = member.len();
        let isize = isize_of(&gz[member.clone()]);
        let mut case = |what: &str, bytes: Vec<u8>, expect: Option<Outcome>| {
            cases.push((format!("member {k} at byte {start}: {what}"), bytes, expect))
        };
        let key_blocks = private_key().len().div_ceil(corpus::BLOCK);
        if isize >= (2 + key_blocks) * corpus::BLOCK {
            let inserted = our_member(&profile_local_with_key(isize));
            let mut bytes = splice(end, &inserted);
            set_wt(&mut bytes, start, len + inserted.len());
            case("WT stretched over an inserted member", bytes, None);
        }
        if let Some(next) = members.get(k + 1) {
            let mut bytes = gz.to_vec();
            set_wt(&mut bytes, start, len + next.len());
            case("WT stretched over the next member", bytes, None);
        }
        for by in [1, 100] {
            let mut bytes = gz.to_vec();
            set_wt(&mut bytes, start, len + by);
            case(&format!("WT {by} bytes too long"), bytes, None);
            if len > by + 28 {
                let mut bytes = gz.to_vec();
                set_wt(&mut bytes, start, len - by);
                case(&format!("WT {by} bytes too short"), bytes, None);
            }
        }
        let mut bytes = gz.to_vec();
        bytes[end - 8] ^= 1;
        case("a bad CRC-32", bytes, None);
        // After the last member it would follow the end of the archive.
        let mid_archive = (k + 1 < members.len()).then_some(Outcome::AllAgree);
        case(
            "a member of ours inserted after it",
            splice(end, &our_member(&inserted_tar)),
            mid_archive,
        );
        case(
            "a plain gzip member inserted after it",
            splice(end, &plain_member(&inserted_tar)),
            mid_archive,
        );
        let replaced = [
            &gz[..start],
            &plain_member(&inflate(&gz[start..end])),
            &gz[end..],
        ]
        .concat();
        case(
            "replaced by a plain gzip member",
            replaced,
            Some(Outcome::AllAgree),
        );
        let tar_from_here = inflate_all(&gz[start..]);
        case(
            "it and the rest as one plain gzip member",
            [&gz[..start], &plain_member(&tar_from_here)[..]].concat(),
            Some(Outcome::AllAgree),
        );
        if end < gz.len() {
            case("junk after it", splice(end, b"junk!"), None);
            case("zeros after it", splice(end, &[0; 16]), None);
        }
    }
    let mut case = |what: &str, bytes: Vec<u8>, expect: Option<Outcome>| {
        cases.push((what.to_owned(), bytes, expect))
    };
    case("unchanged", gz.to_vec(), Some(Outcome::AllAgree));
    // xz and zstd files are series of streams and frames too: the tar cut
    // in two at a member boundary, each half compressed on its own, then
    // with junk between them.
    let whole = inflate_all(gz);
    let middle = whole.len() / 2 / corpus::BLOCK * corpus::BLOCK;
    for format in [corpus::Format::Xz, corpus::Format::Zstd] {
        let halves = [
            corpus::compress(format, &whole[..middle]),
            corpus::compress(format, &whole[middle..]),
        ];
        case(
            &format!("two {format:?} streams"),
            halves.concat(),
            Some(Outcome::AllAgree),
        );
        case(
            &format!("two {format:?} streams with junk between"),
            [&halves[0][..], b"junk!", &halves[1]].concat(),
            None,
        );
    }
    case("trailing junk", [gz, b"junk!"].concat(), None);
    case("trailing zeros", [gz, &[0; 1024]].concat(), None);
    case("concatenated with itself", [gz, gz].concat(), None);
    case(
        "one plain gzip member",
        plain_member(&whole),
        Some(Outcome::AllAgree),
    );
    cases
}

/// All members of a gzip file inflated, as gzip -d does.
fn inflate_all(gz: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(gz)
        .read_to_end(&mut out)
        .unwrap();
    out
}

#[test]
fn crafted_gzip_members_are_read_as_gnu_tar_and_bsdtar_read_them() {
    let dir = tempfile::tempdir().unwrap();
    let original = write_fixture(dir.path(), "original.wsl", &["--compression", "gzip"]);
    let gz = std::fs::read(&original).unwrap();
    assert!(wt_members(&gz).len() >= 5, "too few members to craft with");
    let cases = crafted(&gz);
    let expected: Vec<(String, Outcome)> = cases
        .iter()
        .filter_map(|(name, _, expect)| Some((name.clone(), (*expect)?)))
        .collect();
    let outcomes = judge_all(
        dir.path(),
        cases.into_iter().map(|(name, bytes, _)| (name, bytes)),
    );
    for (name, expect) in expected {
        assert!(
            outcomes[&expect].contains(&name),
            "{name}: not {expect:?}: {outcomes:#?}"
        );
    }
}

/// The fuzz corpus (`common::corpus`, the cases tests/fuzz.rs reads, with
/// another seed) through `judge`.
fn corpus_cases(cases: usize, seed_value: u64) {
    let dir = tempfile::tempdir().unwrap();
    let seeds = corpus::seeds(dir.path());
    let mut rng = corpus::Rng(seed_value);
    let generated = (0..cases).map(|index| {
        let seed = &seeds[rng.below(seeds.len())];
        let mutation = corpus::choose(&mut rng, seed);
        let bytes = corpus::apply(seed, &mutation);
        let mut shown = format!("{mutation:?}");
        shown.truncate(200);
        (
            format!(
                "case {index} (seed {seed_value:#x}, {:?}): {shown}",
                seed.format
            ),
            bytes,
        )
    });
    let outcomes = judge_all(dir.path(), generated);
    // The corpus reaches every way a case can end but a careful refusal.
    assert!(outcomes.contains_key(&Outcome::AllAgree), "{outcomes:?}");
    assert!(outcomes.contains_key(&Outcome::AllFailed), "{outcomes:?}");
}

#[test]
fn the_fuzz_corpus_is_read_as_gnu_tar_and_bsdtar_read_it() {
    corpus_cases(300, 0x5eed_d1ff);
}

#[test]
#[ignore = "minutes: cargo test --test differential -- --ignored"]
fn the_fuzz_corpus_is_read_as_gnu_tar_and_bsdtar_read_it_long_run() {
    corpus_cases(5_000, 0x5eed_d1f2);
}

/// A pax record `LEN KEY=VALUE\n`.
fn pax_record(key: &str, value: &str) -> Vec<u8> {
    let body = format!(" {key}={value}\n");
    let mut len = body.len() + 1;
    while len.to_string().len() + body.len() != len {
        len += 1;
    }
    format!("{len}{body}").into_bytes()
}

/// An extension (or any) header of `flag` with `data` after it, padded.
fn extension(name: &[u8], flag: u8, data: &[u8]) -> Vec<u8> {
    let mut bytes = corpus::ustar_header(name, flag, data.len() as u64, 0o644);
    bytes.extend_from_slice(data);
    bytes.resize(bytes.len().div_ceil(corpus::BLOCK) * corpus::BLOCK, 0);
    bytes
}

/// The members of a tar stream (up to its end-of-archive blocks) with
/// `inserted` before the member at `at`, ended as GNU tar ends an archive.
fn tar_with(body: &[u8], at: usize, inserted: &[u8]) -> Vec<u8> {
    let mut tar = [&body[..at], inserted, &body[at..]].concat();
    tar.extend_from_slice(&[0; 2 * corpus::BLOCK]);
    tar.resize(tar.len().div_ceil(10240) * 10240, 0);
    tar
}

/// Tar members GNU tar and bsdtar read differently from each other (or
/// from what this reader used to), each inserted before a file in the
/// middle of the fixture's archive: a hidden member behind a sized link or
/// device, behind a file named like a directory and inside a global size;
/// a global name; a GNU long name and a pax name for one member; two pax
/// headers; a sparse file; a hard link to nothing; a long link name for a
/// link with an empty link name; unknown type flags. And what all read
/// alike: a sized directory, a pax name, a GNU long name, two of them.
#[test]
fn crafted_tar_members_are_read_as_gnu_tar_and_bsdtar_read_them() {
    use wsl_tarball::archive::open_tarball;
    use wsl_tarball::tar::MemberKind;
    let dir = tempfile::tempdir().unwrap();
    let plain = write_fixture(dir.path(), "original.tar", &["--compression", "none"]);
    let original = std::fs::read(&plain).unwrap();
    let (mut at, mut end) = (None, 0);
    let mut reader = open_tarball(&plain).unwrap();
    while let Some(member) = reader.next_member().unwrap() {
        let next = member.content_offset + member.size.div_ceil(512) * 512;
        if member.kind == MemberKind::Regular && member.path.starts_with(b"nix/store/") {
            at = at.or(Some(member.offset as usize));
        }
        end = next as usize;
    }
    let (at, body) = (at.unwrap(), &original[..end]);
    let hidden = extension(b"./etc/profile.local", b'0', private_key().as_bytes());
    let sized = |flag: u8, name: &[u8]| {
        let mut bytes = corpus::ustar_header(name, flag, hidden.len() as u64, 0o644);
        if flag == b'1' || flag == b'2' {
            bytes[157..162].copy_from_slice(b"./nix");
            corpus::fix_checksum(&mut bytes);
        }
        [bytes, hidden.clone()].concat()
    };
    let pax = |records: &[(&str, &str)]| {
        let data: Vec<u8> = records.iter().flat_map(|(k, v)| pax_record(k, v)).collect();
        extension(b"./PaxHeaders/x", b'x', &data)
    };
    let global =
        |key: &str, value: &str| extension(b"./PaxHeaders/g", b'g', &pax_record(key, value));
    let long_name = extension(b"././@LongLink", b'L', b"./nix/store/from-a-long-name\0");
    let mut cases: Vec<(String, Vec<u8>, Option<Outcome>)> = vec![
        (
            "unchanged".into(),
            tar_with(body, at, &[]),
            Some(Outcome::AllAgree),
        ),
        (
            "a sized directory".into(),
            tar_with(body, at, &sized(b'5', b"./etc/")),
            Some(Outcome::AllAgree),
        ),
        (
            "a pax name".into(),
            tar_with(body, at, &pax(&[("path", "./nix/store/from-pax")])),
            Some(Outcome::AllAgree),
        ),
        (
            "a GNU long name".into(),
            tar_with(body, at, &long_name),
            Some(Outcome::AllAgree),
        ),
    ];
    for (flag, what) in [
        (b'1', "hard link"),
        (b'2', "symlink"),
        (b'3', "character device"),
        (b'4', "block device"),
        (b'6', "fifo"),
    ] {
        cases.push((
            format!("a member hidden behind a sized {what}"),
            tar_with(body, at, &sized(flag, b"./etc/x")),
            None,
        ));
    }
    cases.push((
        "a member hidden in a file named like a directory".into(),
        tar_with(body, at, &sized(b'0', b"./etc/x/")),
        None,
    ));
    cases.push((
        "a member hidden by a global size".into(),
        tar_with(
            body,
            at,
            &[
                global("size", &hidden.len().to_string()),
                corpus::ustar_header(b"./etc/x", b'0', 0, 0o644),
                hidden.clone(),
            ]
            .concat(),
        ),
        None,
    ));
    cases.push((
        "a global name".into(),
        tar_with(body, at, &global("path", "./etc/profile.local")),
        None,
    ));
    cases.push((
        "a global owner".into(),
        tar_with(body, at, &global("uid", "1000")),
        None,
    ));
    cases.push((
        "a GNU long name, then a pax name".into(),
        tar_with(
            body,
            at,
            &[long_name.clone(), pax(&[("path", "./etc/profile.local")])].concat(),
        ),
        None,
    ));
    cases.push((
        "a pax name, then a GNU long name".into(),
        tar_with(
            body,
            at,
            &[pax(&[("path", "./etc/profile.local")]), long_name.clone()].concat(),
        ),
        None,
    ));
    cases.push((
        "two pax headers".into(),
        tar_with(
            body,
            at,
            &[
                pax(&[("path", "./etc/profile.local")]),
                pax(&[("mtime", "5")]),
            ]
            .concat(),
        ),
        None,
    ));
    cases.push((
        "a sparse file".into(),
        tar_with(
            body,
            at,
            &[
                pax(&[
                    ("GNU.sparse.major", "1"),
                    ("GNU.sparse.minor", "0"),
                    ("GNU.sparse.name", "./etc/profile.local"),
                    ("GNU.sparse.realsize", &private_key().len().to_string()),
                ]),
                extension(
                    b"./GNUSparseFile.0/x",
                    b'0',
                    &[
                        &format!("1\n0\n{}\n", private_key().len())
                            .as_bytes()
                            .iter()
                            .copied()
                            .chain(std::iter::repeat(0))
                            .take(512)
                            .collect::<Vec<u8>>()[..],
                        private_key().as_bytes(),
                    ]
                    .concat(),
                ),
            ]
            .concat(),
        ),
        None,
    ));
    cases.push((
        "two GNU long names".into(),
        tar_with(
            body,
            at,
            &[
                extension(b"././@LongLink", b'L', b"./etc/profile.local\0"),
                long_name.clone(),
            ]
            .concat(),
        ),
        Some(Outcome::AllAgree),
    ));
    let long_link = extension(b"././@LongLink", b'K', b"./etc/profile.local\0");
    let bare_symlink = corpus::ustar_header(b"./etc/x", b'2', 0, 0o777);
    cases.push((
        "a long link name for a symlink without one of its own".into(),
        tar_with(body, at, &[long_link, bare_symlink.clone()].concat()),
        None,
    ));
    cases.push((
        "a pax link name for a symlink without one of its own".into(),
        tar_with(
            body,
            at,
            &[pax(&[("linkpath", "./etc/profile.local")]), bare_symlink].concat(),
        ),
        None,
    ));
    let mut empty_link = corpus::ustar_header(b"./etc/x", b'1', 0, 0o644);
    empty_link[157..257].fill(0);
    corpus::fix_checksum(&mut empty_link);
    cases.push((
        "a hard link to nothing".into(),
        tar_with(body, at, &empty_link),
        None,
    ));
    for flag in *b"89ADEIMNSVXZ" {
        cases.push((
            format!("type flag {}", char::from(flag)),
            tar_with(
                body,
                at,
                &extension(b"./etc/profile.local", flag, private_key().as_bytes()),
            ),
            None,
        ));
    }
    let expected: Vec<(String, Outcome)> = cases
        .iter()
        .filter_map(|(name, _, expect)| Some((name.clone(), (*expect)?)))
        .collect();
    let outcomes = judge_all(
        dir.path(),
        cases.into_iter().map(|(name, bytes, _)| (name, bytes)),
    );
    for (name, expect) in expected {
        assert!(
            outcomes[&expect].contains(&name),
            "{name}: not {expect:?}: {outcomes:#?}"
        );
    }
}
