//! Nix's database as shipped inside a tarball, read back for `verify`.
//!
//! The database is read row by row from the temporary file the walk spilled
//! it to, and handed to the caller one path or reference at a time, so its
//! size does not matter to memory. Registration text is parsed by
//! [`crate::store::registration_records`], the crate's one parser of it.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};

use rusqlite::{Connection, OpenFlags};

use crate::store::{registration_records, ClosureError, NarHash, RegistrationLines, StorePath};

/// Where the registered paths are.
#[derive(Debug, Clone, Copy)]
pub enum Database<'a> {
    /// `/nix/var/nix/db/db.sqlite`.
    Sqlite(&'a File),
    /// `/nix-path-registration` (`nix-store --dump-db` text).
    Registration(&'a File),
}

/// One registered path: a `ValidPaths` row or a registration record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredPath {
    pub path: StorePath,
    pub nar_hash: NarHash,
    /// Null in a database row that has none.
    pub nar_size: Option<u64>,
}

/// What the database says, one row at a time.
pub trait DatabaseVisitor {
    fn path(&mut self, path: RegisteredPath);
    /// `referrer` references `reference`.
    fn reference(&mut self, referrer: &StorePath, reference: &StorePath);
}

/// Reads every registered path, then every reference, into `visitor`.
/// Paths must be in `store_dir`; a row that is not a store path or whose
/// hash is not a SHA-256 stops the reading, and the message names it.
pub fn read_database(
    database: Database<'_>,
    store_dir: &str,
    visitor: &mut impl DatabaseVisitor,
) -> Result<(), String> {
    match database {
        Database::Sqlite(file) => read_sqlite(file, store_dir, visitor)
            .map_err(|e| format!("/nix/var/nix/db/db.sqlite: {e}")),
        Database::Registration(file) => read_registration(file, store_dir, visitor)
            .map_err(|e| format!("/nix-path-registration: {e}")),
    }
}

fn read_sqlite(
    file: &File,
    store_dir: &str,
    visitor: &mut impl DatabaseVisitor,
) -> Result<(), String> {
    let db = open_sqlite_copy(file)?;
    read_sqlite_rows(&db, store_dir, visitor)
}

/// SQLite opens files by name (and resolves `/proc/self/fd` links to the
/// deleted name), so the unnamed spill is copied to a file in a private
/// temporary directory, opened read-only, and the name removed at once: the
/// open descriptor is all SQLite needs for an immutable database.
fn open_sqlite_copy(file: &File) -> Result<Connection, String> {
    let dir = tempfile::Builder::new()
        .prefix(".wsl-tarball-db")
        .tempdir()
        .map_err(|e| format!("cannot make a temporary directory: {e}"))?;
    let path = dir.path().join("db.sqlite");
    let mut source = file;
    source
        .seek(SeekFrom::Start(0))
        .map_err(|e| format!("cannot read the spilled database back: {e}"))?;
    let mut copy = File::create(&path).map_err(|e| format!("cannot copy it: {e}"))?;
    io::copy(&mut source, &mut copy).map_err(|e| format!("cannot copy it: {e}"))?;
    drop(copy);
    let db = Connection::open_with_flags(
        format!("file:{}?immutable=1", path.display()),
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| e.to_string())?;
    // Reads the schema, so the file is open before its name goes.
    db.query_row("select count(*) from sqlite_master", [], |_| Ok(()))
        .map_err(|e| e.to_string())?;
    drop(dir);
    Ok(db)
}

fn read_sqlite_rows(
    db: &Connection,
    store_dir: &str,
    visitor: &mut impl DatabaseVisitor,
) -> Result<(), String> {
    let sql = |e: rusqlite::Error| e.to_string();
    let store_path = |text: &str| {
        StorePath::from_absolute(text, store_dir.trim_end_matches('/'))
            .map_err(|e| format!("{text}: {e}"))
    };
    let mut rows = db
        .prepare("select path, hash, narSize from ValidPaths order by id")
        .map_err(sql)?;
    let mut query = rows.query([]).map_err(sql)?;
    while let Some(row) = query.next().map_err(sql)? {
        let path: String = row.get(0).map_err(sql)?;
        let nar_hash: String = row.get(1).map_err(sql)?;
        let nar_size: Option<i64> = row.get(2).map_err(sql)?;
        visitor.path(RegisteredPath {
            path: store_path(&path)?,
            nar_hash: NarHash::parse(&nar_hash).map_err(|e| format!("{path}: hash: {e}"))?,
            nar_size: nar_size.and_then(|n| u64::try_from(n).ok()),
        });
    }
    let mut refs = db
        .prepare(
            "select a.path, b.path from Refs join ValidPaths a on a.id = referrer \
             join ValidPaths b on b.id = reference order by a.path, b.path",
        )
        .map_err(sql)?;
    let mut query = refs.query([]).map_err(sql)?;
    while let Some(row) = query.next().map_err(sql)? {
        let referrer: String = row.get(0).map_err(sql)?;
        let reference: String = row.get(1).map_err(sql)?;
        visitor.reference(&store_path(&referrer)?, &store_path(&reference)?);
    }
    Ok(())
}

/// The longest line read from `/nix-path-registration` (a store path or a
/// hash is far shorter).
const MAX_LINE: u64 = 64 << 10;

/// `nix-store --dump-db` text, record by record.
fn read_registration(
    file: &File,
    store_dir: &str,
    visitor: &mut impl DatabaseVisitor,
) -> Result<(), String> {
    let mut file = file;
    file.seek(SeekFrom::Start(0))
        .map_err(|e| format!("cannot read it back: {e}"))?;
    let lines = Lines {
        reader: BufReader::new(file),
        line: Vec::new(),
    };
    let mut records = registration_records(lines, "/nix-path-registration", store_dir);
    while let Some(info) = records.next_record().map_err(registration_error)? {
        visitor.path(RegisteredPath {
            path: info.path.clone(),
            nar_hash: info.nar_hash,
            nar_size: Some(info.nar_size),
        });
        for reference in &info.references {
            visitor.reference(&info.path, reference);
        }
    }
    Ok(())
}

/// The parser's error without the "closure input" framing: the caller
/// names the file.
fn registration_error(error: ClosureError) -> String {
    match error {
        ClosureError::Malformed { message, .. } => message,
        ClosureError::BadStorePath { path, source, .. } => format!("{path}: {source}"),
        ClosureError::BadHash { path, source, .. } => format!("{path}: narHash: {source}"),
        other => other.to_string(),
    }
}

/// Lines of UTF-8 text, each at most [`MAX_LINE`] bytes.
struct Lines<R> {
    reader: R,
    line: Vec<u8>,
}

impl<R: BufRead> RegistrationLines for Lines<R> {
    fn next_line(&mut self) -> Result<Option<&str>, String> {
        self.line.clear();
        let n = (&mut self.reader)
            .take(MAX_LINE + 1)
            .read_until(b'\n', &mut self.line)
            .map_err(|e: io::Error| e.to_string())?;
        if n == 0 {
            return Ok(None);
        }
        if self.line.last() == Some(&b'\n') {
            self.line.pop();
        } else if n as u64 > MAX_LINE {
            return Err(format!("a line longer than {MAX_LINE} bytes"));
        }
        std::str::from_utf8(&self.line)
            .map(Some)
            .map_err(|_| "not UTF-8".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::{read_database, Database, DatabaseVisitor, RegisteredPath};
    use crate::store::{NarHash, StorePath};

    #[derive(Default)]
    struct Rows {
        paths: Vec<RegisteredPath>,
        references: Vec<(String, String)>,
    }

    impl DatabaseVisitor for Rows {
        fn path(&mut self, path: RegisteredPath) {
            self.paths.push(path);
        }
        fn reference(&mut self, referrer: &StorePath, reference: &StorePath) {
            self.references
                .push((referrer.name().to_owned(), reference.name().to_owned()));
        }
    }

    const HELLO: &str = "/nix/store/7h7qgvs4kgzsn8a6rb273saxyqh4jxlz-hello";
    const GLIBC: &str = "/nix/store/1jk14awh1ikhpn63isz3qhr45gnci589-glibc";
    const HASH: &str = "1b8f1a9b1b3a0b5e0e2c6e0b0f9b8e5c2a4d6f8e0a1c3e5f7a9b1d3f5e7a9c1d";

    fn read(text: &str) -> Result<Rows, String> {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(text.as_bytes()).unwrap();
        let mut rows = Rows::default();
        read_database(Database::Registration(&file), "/nix/store", &mut rows)?;
        Ok(rows)
    }

    #[test]
    fn registration_text_is_read_with_the_store_parser_into_typed_rows() {
        let text =
            format!("{HELLO}\n{HASH}\n120\n\n2\n{GLIBC}\n{HELLO}\n{GLIBC}\n{HASH}\n64\n\n0\n");
        let rows = read(&text).unwrap();
        let expected = NarHash::parse(HASH).unwrap();
        assert_eq!(rows.paths.len(), 2);
        assert_eq!(rows.paths[0].path.name(), "hello");
        assert_eq!(rows.paths[0].nar_hash, expected);
        assert_eq!(rows.paths[0].nar_size, Some(120));
        assert_eq!(rows.paths[1].path.name(), "glibc");
        // References come sorted by basename, as the parser gives them.
        assert_eq!(
            rows.references,
            [
                ("hello".to_owned(), "glibc".to_owned()),
                ("hello".to_owned(), "hello".to_owned())
            ]
        );
    }

    #[test]
    fn a_bad_registration_record_is_named_by_file_line_and_path() {
        let error = read(&format!("{HELLO}\nnot-a-hash\n120\n\n0\n"))
            .err()
            .unwrap();
        assert!(
            error.starts_with(&format!("/nix-path-registration: {HELLO}: narHash: ")),
            "{error}"
        );
        let error = read(&format!("{HELLO}\n{HASH}\n120\n\nmany\n"))
            .err()
            .unwrap();
        assert_eq!(
            error,
            format!(
                "/nix-path-registration: line 5: {HELLO}: number of references \"many\" is not a non-negative integer"
            )
        );
        let error = read(&format!("{HELLO}\n{HASH}\n120\n\n1\n")).err().unwrap();
        assert_eq!(
            error,
            format!(
                "/nix-path-registration: line 6: {HELLO}: the input ends where its reference was expected"
            )
        );
        let error = read("/elsewhere/7h7qgvs4kgzsn8a6rb273saxyqh4jxlz-hello\n")
            .err()
            .unwrap();
        assert!(
            error.starts_with(
                "/nix-path-registration: /elsewhere/7h7qgvs4kgzsn8a6rb273saxyqh4jxlz-hello: "
            ),
            "{error}"
        );
    }
}
