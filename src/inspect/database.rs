//! Nix's database as shipped inside a tarball, read back for `verify`.
//!
//! The database is read row by row from the temporary file the walk spilled
//! it to, and handed to the caller one path or reference at a time, so its
//! size does not matter to memory.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};

use rusqlite::{Connection, OpenFlags};

/// Where the registered paths are.
#[derive(Debug, Clone, Copy)]
pub enum Database<'a> {
    /// `/nix/var/nix/db/db.sqlite`.
    Sqlite(&'a File),
    /// `/nix-path-registration` (`nix-store --dump-db` text).
    Registration(&'a File),
}

/// One `ValidPaths` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredPath<'a> {
    /// Absolute store path.
    pub path: &'a str,
    /// As stored: `sha256:<hex>` in the database, hex in registration text.
    pub nar_hash: &'a str,
    pub nar_size: Option<u64>,
}

/// What the database says, one row at a time.
pub trait DatabaseVisitor {
    fn path(&mut self, path: RegisteredPath<'_>);
    /// `referrer` references `reference` (both absolute store paths).
    fn reference(&mut self, referrer: &str, reference: &str);
}

/// Reads every registered path, then every reference, into `visitor`.
pub fn read_database(
    database: Database<'_>,
    visitor: &mut impl DatabaseVisitor,
) -> Result<(), String> {
    match database {
        Database::Sqlite(file) => {
            read_sqlite(file, visitor).map_err(|e| format!("/nix/var/nix/db/db.sqlite: {e}"))
        }
        Database::Registration(file) => read_registration(file, visitor),
    }
}

fn read_sqlite(file: &File, visitor: &mut impl DatabaseVisitor) -> Result<(), String> {
    let db = open_sqlite_copy(file)?;
    read_sqlite_rows(&db, visitor).map_err(|e| e.to_string())
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
    visitor: &mut impl DatabaseVisitor,
) -> Result<(), rusqlite::Error> {
    let mut rows = db.prepare("select path, hash, narSize from ValidPaths order by id")?;
    let mut query = rows.query([])?;
    while let Some(row) = query.next()? {
        let path: String = row.get(0)?;
        let nar_hash: String = row.get(1)?;
        let nar_size: Option<i64> = row.get(2)?;
        visitor.path(RegisteredPath {
            path: &path,
            nar_hash: &nar_hash,
            nar_size: nar_size.and_then(|n| u64::try_from(n).ok()),
        });
    }
    let mut refs = db.prepare(
        "select a.path, b.path from Refs join ValidPaths a on a.id = referrer \
         join ValidPaths b on b.id = reference order by a.path, b.path",
    )?;
    let mut query = refs.query([])?;
    while let Some(row) = query.next()? {
        let referrer: String = row.get(0)?;
        let reference: String = row.get(1)?;
        visitor.reference(&referrer, &reference);
    }
    Ok(())
}

/// The longest line read from `/nix-path-registration` (a store path or a
/// hash is far shorter).
const MAX_LINE: u64 = 64 << 10;

/// `nix-store --dump-db` text: path, hash, size, deriver, count, references.
fn read_registration(file: &File, visitor: &mut impl DatabaseVisitor) -> Result<(), String> {
    let bad = |what: &str| format!("/nix-path-registration: {what}");
    let mut file = file;
    file.seek(SeekFrom::Start(0))
        .map_err(|e| bad(&format!("cannot read it back: {e}")))?;
    let mut lines = Lines {
        reader: BufReader::new(file),
        line: Vec::new(),
    };
    loop {
        let Some(path) = lines.next().map_err(|e| bad(&e))? else {
            return Ok(());
        };
        if path.is_empty() {
            continue;
        }
        let path = path.to_owned();
        let mut field = |what: &str| -> Result<String, String> {
            lines
                .next()
                .map_err(|e| bad(&e))?
                .map(str::to_owned)
                .ok_or_else(|| bad(&format!("{path}: missing {what}")))
        };
        let nar_hash = field("hash")?;
        let nar_size = field("NAR size")?
            .parse()
            .map_err(|_| bad(&format!("{path}: NAR size is not a number")))?;
        let _deriver = field("deriver line")?;
        let count: u64 = field("reference count")?
            .parse()
            .map_err(|_| bad(&format!("{path}: reference count is not a number")))?;
        visitor.path(RegisteredPath {
            path: &path,
            nar_hash: &nar_hash,
            nar_size: Some(nar_size),
        });
        for _ in 0..count {
            let reference = field("reference")?;
            visitor.reference(&path, &reference);
        }
    }
}

/// Lines of UTF-8 text, each at most [`MAX_LINE`] bytes.
struct Lines<R> {
    reader: R,
    line: Vec<u8>,
}

impl<R: BufRead> Lines<R> {
    fn next(&mut self) -> Result<Option<&str>, String> {
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
