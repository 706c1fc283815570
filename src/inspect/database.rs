//! Nix's database as shipped inside a tarball, read back for `verify`.
//!
//! The database is read row by row from the temporary file the walk spilled
//! it to, and handed to the caller one path or reference at a time, so its
//! size does not matter to memory. Registration text is parsed by
//! [`crate::store::registration_records`], the crate's one parser of it.

use std::cell::RefCell;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use super::TemporaryError;
use crate::store::{
    registration_records, ClosureError, NarHash, RegistrationLines, StoreDir, StorePath,
};

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
    /// The store path.
    pub path: StorePath,
    /// Its NAR hash.
    pub nar_hash: NarHash,
    /// Null in a database row that has none.
    pub nar_size: Option<u64>,
}

/// What the database says, one row at a time.
pub trait DatabaseVisitor {
    /// One registered path.
    fn path(&mut self, path: RegisteredPath);
    /// `referrer` references `reference`.
    fn reference(&mut self, referrer: &StorePath, reference: &StorePath);
}

/// Why the database could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    /// The database itself is wrong (or missing): a verdict on the tarball.
    #[error("{0}")]
    Content(String),
    /// This machine could not read it back: nothing about the tarball.
    #[error(transparent)]
    Temporary(#[from] TemporaryError),
}

/// Reads every registered path, then every reference, into `visitor`.
/// Paths must be in `store_dir`; a row that is not a store path or whose
/// hash is not a SHA-256 stops the reading, and the message names it. A
/// temporary file that cannot be made or read is
/// [`DatabaseError::Temporary`], never a verdict on the database.
pub fn read_database(
    database: Database<'_>,
    store_dir: &StoreDir,
    visitor: &mut impl DatabaseVisitor,
) -> Result<(), DatabaseError> {
    let in_file = |file: &str| {
        let file = file.to_owned();
        move |error| match error {
            DatabaseError::Content(message) => DatabaseError::Content(format!("{file}: {message}")),
            temporary => temporary,
        }
    };
    match database {
        Database::Sqlite(file) => read_sqlite(file, store_dir, visitor, &std::env::temp_dir())
            .map_err(in_file("/nix/var/nix/db/db.sqlite")),
        Database::Registration(file) => {
            read_registration(file, store_dir, visitor).map_err(in_file("/nix-path-registration"))
        }
    }
}

fn read_sqlite(
    file: &File,
    store_dir: &StoreDir,
    visitor: &mut impl DatabaseVisitor,
    temporary_dir: &Path,
) -> Result<(), DatabaseError> {
    let db = open_sqlite_copy(file, temporary_dir)?;
    read_sqlite_rows(&db, store_dir, visitor, temporary_dir)
}

/// A temporary-file failure of the database at `/nix/var/nix/db/db.sqlite`.
fn temporary(dir: &Path, what: &str) -> impl Fn(io::Error) -> DatabaseError {
    let dir = dir.to_path_buf();
    let what = format!("{what} /nix/var/nix/db/db.sqlite");
    move |source| {
        DatabaseError::Temporary(TemporaryError {
            what: what.clone(),
            dir: dir.clone(),
            source,
        })
    }
}

/// An SQLite error: trouble of this machine (a file it cannot open or read,
/// a full disk, no memory) or, for everything else, what the database holds.
fn sqlite_error(dir: &Path) -> impl Fn(rusqlite::Error) -> DatabaseError + '_ {
    move |error| {
        use rusqlite::ErrorCode::*;
        match error.sqlite_error_code() {
            Some(CannotOpen | SystemIoFailure | DiskFull | OutOfMemory | PermissionDenied) => {
                temporary(dir, "SQLite cannot read its copy of")(io::Error::other(error))
            }
            _ => DatabaseError::Content(error.to_string()),
        }
    }
}

/// SQLite opens files by name (and resolves `/proc/self/fd` links to the
/// deleted name), so the unnamed spill is copied to a file in a private
/// temporary directory in `temporary_dir`, opened read-only, and the name
/// removed at once: the open descriptor is all SQLite needs for an
/// immutable database.
fn open_sqlite_copy(file: &File, temporary_dir: &Path) -> Result<Connection, DatabaseError> {
    let dir = tempfile::Builder::new()
        .prefix(".wsl-tarball-db")
        .tempdir_in(temporary_dir)
        .map_err(temporary(
            temporary_dir,
            "cannot make a directory for a copy of",
        ))?;
    let path = dir.path().join("db.sqlite");
    let mut source = file;
    source
        .seek(SeekFrom::Start(0))
        .map_err(temporary(temporary_dir, "cannot read back the spilled"))?;
    let copy_error = temporary(temporary_dir, "cannot copy");
    let mut copy = File::create(&path).map_err(&copy_error)?;
    io::copy(&mut source, &mut copy).map_err(&copy_error)?;
    drop(copy);
    let db = Connection::open_with_flags(
        format!("file:{}?immutable=1", path.display()),
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sqlite_error(temporary_dir))?;
    // Reads the schema, so the file is open before its name goes.
    db.query_row("select count(*) from sqlite_master", [], |_| Ok(()))
        .map_err(sqlite_error(temporary_dir))?;
    drop(dir);
    Ok(db)
}

fn read_sqlite_rows(
    db: &Connection,
    store_dir: &StoreDir,
    visitor: &mut impl DatabaseVisitor,
    temporary_dir: &Path,
) -> Result<(), DatabaseError> {
    let sql = &sqlite_error(temporary_dir);
    let store_path = |text: &str| {
        StorePath::from_absolute(text, store_dir)
            .map_err(|e| DatabaseError::Content(format!("{text}: {e}")))
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
            nar_hash: NarHash::parse(&nar_hash)
                .map_err(|e| DatabaseError::Content(format!("{path}: hash: {e}")))?,
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
    store_dir: &StoreDir,
    visitor: &mut impl DatabaseVisitor,
) -> Result<(), DatabaseError> {
    let temporary = |what: &str| {
        let what = format!("{what} /nix-path-registration");
        move |source| DatabaseError::Temporary(TemporaryError::new(what, source))
    };
    let mut file = file;
    file.seek(SeekFrom::Start(0))
        .map_err(temporary("cannot read back the spilled"))?;
    let read_error = RefCell::new(None);
    let lines = Lines {
        reader: BufReader::new(file),
        line: Vec::new(),
        read_error: &read_error,
    };
    let mut records = registration_records(lines, "/nix-path-registration", store_dir);
    loop {
        let record = records.next_record();
        if let Some(error) = read_error.borrow_mut().take() {
            return Err(temporary("cannot read back the spilled")(error));
        }
        let Some(info) = record.map_err(registration_error)? else {
            break;
        };
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
fn registration_error(error: ClosureError) -> DatabaseError {
    DatabaseError::Content(match error {
        ClosureError::Malformed { message, .. } => message,
        ClosureError::BadStorePath { path, source, .. } => format!("{path}: {source}"),
        ClosureError::BadHash { path, source, .. } => format!("{path}: narHash: {source}"),
        other => other.to_string(),
    })
}

/// Lines of UTF-8 text, each at most [`MAX_LINE`] bytes.
/// A read error (of the temporary file, so the machine's) is also kept in
/// `read_error`, for the caller to tell it from what the text says.
struct Lines<'e, R> {
    reader: R,
    line: Vec<u8>,
    read_error: &'e RefCell<Option<io::Error>>,
}

impl<R: BufRead> RegistrationLines for Lines<'_, R> {
    fn next_line(&mut self) -> Result<Option<&str>, String> {
        self.line.clear();
        let n = match (&mut self.reader)
            .take(MAX_LINE + 1)
            .read_until(b'\n', &mut self.line)
        {
            Ok(n) => n,
            Err(error) => {
                let message = error.to_string();
                *self.read_error.borrow_mut() = Some(error);
                return Err(message);
            }
        };
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

    use super::{
        read_database, read_sqlite, Database, DatabaseError, DatabaseVisitor, RegisteredPath,
    };
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
        read_database(
            Database::Registration(&file),
            &crate::store::StoreDir::NIX,
            &mut rows,
        )
        .map_err(|error| match error {
            DatabaseError::Content(message) => message,
            other => panic!("not about the text: {other}"),
        })?;
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

    #[test]
    fn trouble_with_temporary_files_is_not_a_verdict_on_the_database() {
        let dir = tempfile::tempdir().unwrap();
        // The SQLite copy cannot be made: the temporary directory is missing.
        let mut garbage = tempfile::tempfile().unwrap();
        garbage.write_all(&[0x55; 4096]).unwrap();
        let missing = dir.path().join("missing");
        let error = read_sqlite(
            &garbage,
            &crate::store::StoreDir::NIX,
            &mut Rows::default(),
            &missing,
        )
        .err()
        .unwrap();
        assert!(matches!(error, DatabaseError::Temporary(_)), "{error:?}");
        assert!(
            error
                .to_string()
                .contains(&format!("in the temporary directory {}", missing.display())),
            "{error}"
        );
        // In a usable directory, the same bytes are what is wrong.
        let error = read_sqlite(
            &garbage,
            &crate::store::StoreDir::NIX,
            &mut Rows::default(),
            dir.path(),
        )
        .err()
        .unwrap();
        assert!(
            matches!(&error, DatabaseError::Content(m) if m.contains("not a database")),
            "{error:?}"
        );
        // The spilled registration cannot be read back.
        let unreadable = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.path().join("write-only"))
            .unwrap();
        let error = read_database(
            Database::Registration(&unreadable),
            &crate::store::StoreDir::NIX,
            &mut Rows::default(),
        )
        .err()
        .unwrap();
        assert!(matches!(error, DatabaseError::Temporary(_)), "{error:?}");
        assert!(
            error
                .to_string()
                .starts_with("cannot read back the spilled /nix-path-registration"),
            "{error}"
        );
    }
}
