//! Tests of the database and registration renderers: synthetic closures for
//! the exact rows and bytes, and a closure built by the real Nix (`nix`,
//! `nix-build`, `nix-store` on PATH) for what Nix makes of them.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use super::*;
use crate::store::NarHash;

const STORE_DIR: &StoreDir = &StoreDir::NIX;

fn store_path(basename: &str) -> StorePath {
    StorePath::from_basename(basename).expect("test store path")
}

fn hash_of_byte(byte: u8) -> NarHash {
    NarHash([byte; 32])
}

/// Three paths: `a`, `b` referencing `a`, and `self` referencing itself and
/// `b`, with a deriver, signatures (unsorted) and a content address.
fn synthetic_closure() -> Closure {
    let a = store_path("0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a-a");
    let b = store_path("1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b-b");
    let me = store_path("2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c-self");
    let infos = vec![
        PathInfo {
            path: me.clone(),
            nar_hash: hash_of_byte(0xcc),
            nar_size: 576,
            references: vec![me.clone(), b.clone()],
            deriver: Some(store_path("3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d-self.drv")),
            ca: None,
            signatures: vec!["z-key:c2ln".to_owned(), "a-key:c2ln".to_owned()],
        },
        PathInfo {
            path: a.clone(),
            nar_hash: hash_of_byte(0xaa),
            nar_size: 120,
            references: vec![],
            deriver: None,
            ca: Some("text:sha256:0n4pcrf5b67b697i4dqlr6bxgw6wn4qvkhpn0vvib8s9gs4dd7iq".to_owned()),
            signatures: vec![],
        },
        PathInfo {
            path: b,
            nar_hash: hash_of_byte(0xbb),
            nar_size: 336,
            references: vec![a],
            deriver: None,
            ca: None,
            signatures: vec![],
        },
    ];
    Closure::new(STORE_DIR, infos).expect("closed")
}

/// Writes database bytes to a file and opens it.
fn open_bytes(bytes: &[u8], dir: &Path) -> Connection {
    let file = dir.join("db.sqlite");
    std::fs::write(&file, bytes).expect("write db");
    Connection::open(&file).expect("open db")
}

type ValidPathRows = Vec<(
    i64,
    String,
    String,
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<String>,
)>;

/// `ValidPaths` without `registrationTime`, by id.
fn valid_path_rows(db: &Connection) -> ValidPathRows {
    let mut query = db
        .prepare(
            "select id, path, hash, deriver, narSize, ultimate, sigs, ca from ValidPaths order by id",
        )
        .expect("prepare");
    let rows = query
        .query_map([], |row| {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
                row.get(5)?,
                row.get(6)?,
                row.get(7)?,
            ))
        })
        .expect("query");
    rows.collect::<Result<_, _>>().expect("rows")
}

/// `Refs` in storage (primary key) order.
fn ref_rows(db: &Connection) -> Vec<(i64, i64)> {
    let mut query = db
        .prepare("select referrer, reference from Refs")
        .expect("prepare");
    let rows = query
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .expect("query");
    rows.collect::<Result<_, _>>().expect("rows")
}

/// `sqlite_master` (and `sqlite_sequence`), comparable between databases.
fn schema_rows(db: &Connection) -> Vec<(String, String, String, i64, Option<String>)> {
    let mut query = db
        .prepare("select type, name, tbl_name, rootpage, sql from sqlite_master")
        .expect("prepare");
    let rows = query
        .query_map([], |row| {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
            ))
        })
        .expect("query");
    rows.collect::<Result<_, _>>().expect("rows")
}

fn be_u32(bytes: &[u8], offset: usize) -> u32 {
    u32::from_be_bytes(bytes[offset..offset + 4].try_into().expect("4 bytes"))
}

#[test]
fn rows_are_written_as_nix_writes_them() {
    let closure = synthetic_closure();
    let bytes = render_sqlite_db(&closure, 1_700_000_000).expect("render");
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open_bytes(&bytes, dir.path());

    let hex = |byte: u8| format!("sha256:{}", format!("{byte:02x}").repeat(32));
    assert_eq!(
        valid_path_rows(&db),
        vec![
            (
                1,
                "/nix/store/0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a-a".to_owned(),
                hex(0xaa),
                None,
                Some(120),
                None,
                None,
                Some("text:sha256:0n4pcrf5b67b697i4dqlr6bxgw6wn4qvkhpn0vvib8s9gs4dd7iq".to_owned()),
            ),
            (
                2,
                "/nix/store/1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b-b".to_owned(),
                hex(0xbb),
                None,
                Some(336),
                None,
                None,
                None,
            ),
            (
                3,
                "/nix/store/2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c-self".to_owned(),
                hex(0xcc),
                Some("/nix/store/3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d-self.drv".to_owned()),
                Some(576),
                None,
                Some("a-key:c2ln z-key:c2ln".to_owned()),
                None,
            ),
        ]
    );
    // b -> a, self -> b, self -> self.
    assert_eq!(ref_rows(&db), vec![(2, 1), (3, 2), (3, 3)]);
    let times: Vec<i64> = db
        .prepare("select registrationTime from ValidPaths")
        .expect("prepare")
        .query_map([], |row| row.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(times, vec![1_700_000_000; 3]);
    let sequence: i64 = db
        .query_row(
            "select seq from sqlite_sequence where name = 'ValidPaths'",
            [],
            |row| row.get(0),
        )
        .expect("sqlite_sequence");
    assert_eq!(sequence, 3);
    let count: i64 = db
        .query_row("select count(*) from DerivationOutputs", [], |row| {
            row.get(0)
        })
        .expect("count");
    assert_eq!(count, 0);
    let check: String = db
        .query_row("pragma integrity_check", [], |row| row.get(0))
        .expect("integrity_check");
    assert_eq!(check, "ok");
}

#[test]
fn header_is_a_plain_rollback_journal_database() {
    let bytes = render_sqlite_db(&synthetic_closure(), 1).expect("render");
    assert_eq!(&bytes[..16], b"SQLite format 3\0");
    assert_eq!(&bytes[16..18], &[0x10, 0x00], "page size 4096");
    assert_eq!(&bytes[18..20], &[1, 1], "rollback journal, not WAL");
    let pages = bytes.len() / PAGE_SIZE as usize;
    assert_eq!(bytes.len() % PAGE_SIZE as usize, 0);
    assert_eq!(be_u32(&bytes, 28) as usize, pages, "in-header size");
    assert_eq!(
        be_u32(&bytes, 24),
        be_u32(&bytes, 92),
        "change counter and version-valid-for agree, so the size is trusted"
    );
    assert_eq!(be_u32(&bytes, 32), 0, "no freelist");
    assert_eq!(be_u32(&bytes, 36), 0, "no free pages");
    assert_eq!(be_u32(&bytes, 44), 4, "schema format 4");
    assert_eq!(be_u32(&bytes, 52), 0, "no auto-vacuum");
    assert_eq!(be_u32(&bytes, 56), 1, "UTF-8");
    assert_eq!(be_u32(&bytes, 60), 0, "user_version");
    assert_eq!(be_u32(&bytes, 68), 0, "application_id");
    assert_eq!(
        be_u32(&bytes, 96),
        rusqlite::ffi::SQLITE_VERSION_NUMBER as u32,
        "written by the bundled SQLite"
    );
}

#[test]
fn rendering_is_deterministic() {
    let closure = synthetic_closure();
    let first = render_sqlite_db(&closure, 42).expect("render");
    assert_eq!(render_sqlite_db(&closure, 42).expect("render"), first);
    let from_threads: Vec<Vec<u8>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| render_sqlite_db(&closure, 42).expect("render")))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    assert!(from_threads.iter().all(|bytes| *bytes == first));
    assert_ne!(render_sqlite_db(&closure, 43).expect("render"), first);
    assert_eq!(render_registration(&closure), render_registration(&closure));
}

/// The in-memory database holds the bytes SQLite writes to a file for the
/// same steps, header included.
#[test]
fn in_memory_bytes_equal_a_file_database() {
    let closure = synthetic_closure();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("file.sqlite");
    {
        let mut db = Connection::open(&file).expect("open");
        configure_db(&db).expect("configure");
        fill_db(&mut db, &closure, 7).expect("fill");
    }
    let from_file = std::fs::read(&file).expect("read");
    assert_eq!(render_sqlite_db(&closure, 7).expect("render"), from_file);
}

/// Pins the bytes across runs and hosts. The SQLite version number (header
/// bytes 96..100) is masked, so only a change in how SQLite lays out the
/// file (or in what we write) moves the digest: then check the other tests
/// and update it.
#[test]
fn bytes_are_pinned() {
    use sha2::{Digest, Sha256};
    let mut bytes = render_sqlite_db(&synthetic_closure(), 1_700_000_000).expect("render");
    bytes[96..100].fill(0);
    let digest: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        (bytes.len(), digest.as_str()),
        (PINNED_LEN, PINNED_SHA256),
        "the rendered database changed"
    );
}

const PINNED_LEN: usize = 45056;
const PINNED_SHA256: &str = "5b8c15f7e19f194513f2f995abe105c94063201b02250d9435a080cf5cd72c8e";

#[test]
fn empty_closure_gives_the_bare_schema() {
    let closure = Closure::new(STORE_DIR, Vec::new()).expect("empty closure");
    let bytes = render_sqlite_db(&closure, 0).expect("render");
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open_bytes(&bytes, dir.path());
    assert!(valid_path_rows(&db).is_empty());
    let names: Vec<String> = schema_rows(&db).into_iter().map(|row| row.1).collect();
    for name in [
        "ValidPaths",
        "Refs",
        "IndexReferrer",
        "IndexReference",
        "DeleteSelfRefs",
        "DerivationOutputs",
        "IndexDerivationOutputs",
    ] {
        assert!(names.iter().any(|n| n == name), "{name} missing: {names:?}");
    }
    assert_eq!(render_registration(&closure), "");
}

#[test]
fn registration_lists_paths_in_dump_db_format() {
    let expected = format!(
        "/nix/store/0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a-a\n{a}\n120\n\n0\n\
         /nix/store/1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b-b\n{b}\n336\n\n1\n\
         /nix/store/0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a-a\n\
         /nix/store/2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c-self\n{c}\n576\n\
         /nix/store/3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d-self.drv\n2\n\
         /nix/store/1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b-b\n\
         /nix/store/2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c-self\n",
        a = "aa".repeat(32),
        b = "bb".repeat(32),
        c = "cc".repeat(32),
    );
    assert_eq!(render_registration(&synthetic_closure()), expected);
}

#[test]
fn oversized_nar_is_an_error_naming_the_path() {
    let mut infos: Vec<PathInfo> = synthetic_closure().iter().cloned().collect();
    infos[0].nar_size = u64::MAX;
    let closure = Closure::new(STORE_DIR, infos).expect("closed");
    let err = render_sqlite_db(&closure, 0).expect_err("too large");
    assert!(matches!(err, NixDbError::NarSizeTooLarge { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a-a"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------
// Against the real Nix.

const NIX_CONFIG: &str = "substituters =\nexperimental-features = nix-command flakes\n";

/// `a`, `b` referencing `a`, `self` holding its own path and `b`, a
/// fixed-output path, a `builtins.toFile` text path, and `top` over them.
const FIXTURE_EXPR: &str = r#"
let
  mk = name: script: derivation {
    inherit name;
    system = builtins.currentSystem;
    builder = "/bin/sh";
    args = [ "-c" script ];
    PATH = "/usr/bin:/bin";
    salt = "wsl-tarball nixdb tests";
  };
  a = mk "nixdb-a" "mkdir $out; echo hi > $out/f";
  b = mk "nixdb-b" "mkdir $out; echo ${a} > $out/ref";
  self = mk "nixdb-self" "mkdir $out; echo $out > $out/me; echo ${b} > $out/b";
  fixed = derivation {
    name = "nixdb-fixed";
    system = builtins.currentSystem;
    builder = "/bin/sh";
    args = [ "-c" "echo fixed > $out" ];
    outputHashMode = "flat";
    outputHashAlgo = "sha256";
    outputHash = "0c3071418e6356e614898c84ed064ca95e88551bc0811b534bdf1952ecdae534";
  };
  note = builtins.toFile "nixdb-note.txt" "a note\n";
in mk "nixdb-top" "mkdir $out; echo ${self} ${fixed} ${note} > $out/all"
"#;

fn nix_command(program: &str) -> Command {
    let mut command = Command::new(program);
    command.env("NIX_CONFIG", NIX_CONFIG);
    command
}

/// Runs a command with `stdin`, panicking with its stderr unless it succeeds.
fn run_with_input(command: &mut Command, stdin: &[u8]) -> (Vec<u8>, String) {
    use std::io::Write;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run {command:?}: {e} (these tests need Nix: nix, nix-build, nix-store)")
        });
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin).expect("write stdin");
    drop(input);
    let output = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "{command:?} failed: {}\n{stderr}",
        output.status
    );
    (output.stdout, stderr)
}

fn run(command: &mut Command) -> Vec<u8> {
    run_with_input(command, b"").0
}

/// Parses `nix path-info --json` of Nix 2.8 (a list of objects).
fn path_infos_from_json(json: &[u8]) -> Vec<PathInfo> {
    let value: serde_json::Value = serde_json::from_slice(json).expect("JSON");
    let parse_path = |value: &serde_json::Value| {
        let text = value.as_str().expect("a path is a string");
        StorePath::from_absolute(text, STORE_DIR).expect("store path")
    };
    value
        .as_array()
        .expect("Nix 2.8 prints a list")
        .iter()
        .map(|info| {
            assert_ne!(info["valid"], false, "{info} is not valid");
            let mut signatures: Vec<String> = info["signatures"]
                .as_array()
                .map(|sigs| {
                    sigs.iter()
                        .map(|s| s.as_str().expect("string").to_owned())
                        .collect()
                })
                .unwrap_or_default();
            signatures.sort();
            PathInfo {
                path: parse_path(&info["path"]),
                nar_hash: NarHash::parse(info["narHash"].as_str().expect("narHash")).expect("hash"),
                nar_size: info["narSize"].as_u64().expect("narSize"),
                references: info["references"]
                    .as_array()
                    .expect("references")
                    .iter()
                    .map(parse_path)
                    .collect(),
                deriver: info.get("deriver").map(parse_path),
                ca: info["ca"].as_str().map(str::to_owned),
                signatures,
            }
        })
        .collect()
}

/// The fixture built in the host store: its top path and closure.
fn fixture() -> &'static (String, Closure) {
    static FIXTURE: OnceLock<(String, Closure)> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let out = run(nix_command("nix-build")
            .args(["--no-out-link", "--expr"])
            .arg(FIXTURE_EXPR));
        let top = String::from_utf8(out).expect("UTF-8").trim().to_owned();
        let json = run(nix_command("nix").args(["path-info", "--json", "-r", &top]));
        let closure = Closure::new(STORE_DIR, path_infos_from_json(&json)).expect("closed");
        assert_eq!(closure.len(), 6, "the fixture has six paths");
        (top, closure)
    })
}

fn local_store(root: &Path) -> String {
    format!("local?root={}", root.display())
}

/// Copies the closure's paths into `root/nix/store`.
fn copy_store_paths(closure: &Closure, root: &Path) {
    let store = root.join("nix/store");
    std::fs::create_dir_all(&store).expect("mkdir store");
    let mut cp = Command::new("cp");
    cp.arg("-a");
    for info in closure.iter() {
        cp.arg(info.path.to_absolute(STORE_DIR));
    }
    run(cp.arg(&store));
}

/// Lets the test's temporary directory be removed (store paths are read-only).
fn make_writable(root: &Path) {
    run(Command::new("chmod").arg("-R").arg("u+w").arg(root));
}

fn path_infos_in(root: &Path, top: &str) -> BTreeMap<StorePath, PathInfo> {
    let json = run(nix_command("nix").args([
        "path-info",
        "--json",
        "-r",
        "--store",
        &local_store(root),
        top,
    ]));
    path_infos_from_json(&json)
        .into_iter()
        .map(|info| (info.path.clone(), info))
        .collect()
}

#[test]
fn nix_reads_the_rendered_database() {
    let (top, closure) = fixture();
    // A signature, so that `sigs` is exercised too.
    let signature = "wsl-tarball-test-1:c2lnbmF0dXJl".to_owned();
    let signed = Closure::new(
        STORE_DIR,
        closure.iter().cloned().map(|mut info| {
            if info.path.name() == "nixdb-b" {
                info.signatures.push(signature.clone());
            }
            info
        }),
    )
    .expect("closed");
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    copy_store_paths(&signed, &root);
    let db_dir = root.join("nix/var/nix/db");
    std::fs::create_dir_all(&db_dir).expect("mkdir db");
    let bytes = render_sqlite_db(&signed, 1_700_000_000).expect("render");
    std::fs::write(db_dir.join("db.sqlite"), &bytes).expect("write db");
    std::fs::write(db_dir.join("schema"), SCHEMA_FILE_CONTENTS).expect("write schema");

    let imported = path_infos_in(&root, top);
    let expected: BTreeMap<StorePath, PathInfo> = signed
        .iter()
        .map(|info| (info.path.clone(), info.clone()))
        .collect();
    assert_eq!(imported, expected);
    assert!(imported
        .values()
        .any(|info| info.references.contains(&info.path)));

    let (_, stderr) = run_with_input(
        nix_command("nix-store").args([
            "--verify",
            "--check-contents",
            "--store",
            &local_store(&root),
        ]),
        b"",
    );
    let stderr_lower = stderr.to_lowercase();
    for bad in [
        "error", "warning", "modified", "corrupt", "invalid", "missing",
    ] {
        assert!(!stderr_lower.contains(bad), "nix-store --verify: {stderr}");
    }
    // Nix opened it without migrating: same schema version, same rows.
    assert_eq!(
        std::fs::read_to_string(db_dir.join("schema")).expect("schema"),
        SCHEMA_FILE_CONTENTS
    );

    // Deleting the self-referencing path goes through the DeleteSelfRefs
    // trigger and the foreign keys.
    let self_referencing = signed
        .iter()
        .find(|info| info.references.contains(&info.path))
        .expect("a self-reference")
        .path
        .to_absolute(STORE_DIR);
    run(nix_command("nix-store").args([
        "--delete",
        "--store",
        &local_store(&root),
        top,
        &self_referencing,
    ]));
    let remaining =
        run(nix_command("nix-store").args(["--dump-db", "--store", &local_store(&root)]));
    let remaining = String::from_utf8(remaining).expect("UTF-8");
    assert!(!remaining.contains(&self_referencing), "{remaining}");
    assert!(!remaining.contains(top.as_str()), "{remaining}");
    assert!(remaining.contains("-nixdb-b\n"), "{remaining}");
    make_writable(&root);
}

/// Our database has the tables, indexes and trigger of a database Nix creates
/// itself, on the same pages.
#[test]
fn schema_matches_a_database_nix_creates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("fresh");
    run(nix_command("nix-store").args(["--init", "--store", &local_store(&root)]));
    let db_dir = root.join("nix/var/nix/db");
    assert_eq!(
        std::fs::read_to_string(db_dir.join("schema")).expect("schema"),
        SCHEMA_FILE_CONTENTS,
        "Nix writes the schema version without a newline"
    );
    let from_nix = Connection::open(db_dir.join("db.sqlite")).expect("open Nix's db");
    let nix_page_size: u32 = from_nix
        .query_row("pragma page_size", [], |row| row.get(0))
        .expect("page_size");
    assert_eq!(nix_page_size, PAGE_SIZE);

    let closure = Closure::new(STORE_DIR, Vec::new()).expect("empty closure");
    let ours_dir = dir.path().join("ours");
    std::fs::create_dir(&ours_dir).expect("mkdir");
    let ours = open_bytes(&render_sqlite_db(&closure, 0).expect("render"), &ours_dir);
    // Nix 2.10 added a comment to ValidPaths.hash; older Nix lacks it.
    let without_comment = |rows: Vec<(String, String, String, i64, Option<String>)>| {
        rows.into_iter()
            .map(|mut row| {
                row.4 = row
                    .4
                    .map(|sql| sql.replace(" -- base16 representation", ""));
                row
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        without_comment(schema_rows(&ours)),
        without_comment(schema_rows(&from_nix))
    );
}

/// `render_registration` is what `nix-store --dump-db` prints, and a store
/// that Nix fills with `--load-db` holds the rows we render.
#[test]
fn registration_round_trips_through_nix() {
    let (_, closure) = fixture();
    let registration = render_registration(closure);

    // The host store prints the same text for these paths, in basename order.
    let paths: Vec<String> = closure
        .iter()
        .map(|info| info.path.to_absolute(STORE_DIR))
        .collect();
    let host_dump = run(nix_command("nix-store").arg("--dump-db").args(&paths));
    assert_eq!(String::from_utf8(host_dump).expect("UTF-8"), registration);

    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    copy_store_paths(closure, &root);
    let store = local_store(&root);
    run_with_input(
        nix_command("nix-store").args(["--load-db", "--store", &store]),
        registration.as_bytes(),
    );
    let dumped = run(nix_command("nix-store").args(["--dump-db", "--store", &store]));
    assert_eq!(String::from_utf8(dumped).expect("UTF-8"), registration);

    // Nix registered the paths with the ids and references we render. The
    // registration format has no content addresses, so leave them out.
    let loaded = Connection::open(root.join("nix/var/nix/db/db.sqlite")).expect("open");
    let without_ca = Closure::new(
        STORE_DIR,
        closure
            .iter()
            .cloned()
            .map(|info| PathInfo { ca: None, ..info }),
    )
    .expect("closed");
    let ours_dir = dir.path().join("ours");
    std::fs::create_dir(&ours_dir).expect("mkdir");
    let ours = open_bytes(
        &render_sqlite_db(&without_ca, 0).expect("render"),
        &ours_dir,
    );
    assert_eq!(valid_path_rows(&ours), valid_path_rows(&loaded));
    assert_eq!(ref_rows(&ours), ref_rows(&loaded));
    make_writable(&root);
}
