//! Nix's database for a closure, so that `nix` works at first boot.
//!
//! Two renderings of the same facts (path, NAR hash and size, references,
//! deriver, signatures, content address):
//!
//! - [`render_sqlite_db`]: the bytes of `/nix/var/nix/db/db.sqlite`, with
//!   [`SCHEMA_FILE_CONTENTS`] for `/nix/var/nix/db/schema`. Nix opens it as it
//!   is, without a schema-version migration.
//! - [`render_registration`]: the text `nix-store --dump-db` prints and
//!   `nix-store --load-db` reads, for a system that registers its paths at
//!   first boot (`/nix-path-registration`).
//!
//! # What Nix expects
//!
//! The local store keeps schema version [`SCHEMA_VERSION`] (10) in
//! `db/schema`, written without a newline; every Nix from 2.0 to at least
//! 2.35 uses 10. The tables are those of Nix's `src/libstore/schema.sql`,
//! kept verbatim in `schema.sql` next to this file (the text of Nix 2.10 to
//! 2.34; 2.0 to 2.9 lack one SQL comment): `ValidPaths`, `Refs` with
//! `IndexReferrer` and `IndexReference`, the `DeleteSelfRefs` trigger, and
//! `DerivationOutputs` with `IndexDerivationOutputs`. Rows are written the
//! way `LocalStore::registerValidPaths` writes them: every path in basename
//! order (so ids 1..n follow that order), then the references of each path
//! in the same order, a self-reference being an `(n, n)` row. `hash` is
//! `sha256:<hex>`; `deriver`, `sigs` (space-separated, sorted), `ca` and a
//! zero `narSize` are NULL when absent, and `ultimate` is NULL because these
//! paths were not built on the target.
//!
//! Newer Nix adjusts such a store on first open, as it does any existing
//! store: 2.26 and later add a `SchemaMigrations` table, 2.35 and later drop
//! `IndexReferrer`, and with `use-sqlite-wal` (the default) every version
//! switches the journal to WAL. `DerivationOutputs` stays empty: Nix fills
//! it from the contents of `.drv` files, which a system closure normally
//! does not hold.
//!
//! # Determinism
//!
//! The database is built in memory (SQLite's `memdb` VFS) inside a single
//! transaction and copied out with `sqlite3_serialize`, so no file, temporary
//! directory, umask or locale is involved. The page size is fixed at
//! [`PAGE_SIZE`] and the journal mode is rollback (header bytes 18 and 19 are
//! 1), which every SQLite can open and Nix switches to WAL itself. The header
//! records the bundled SQLite's version number, so the bytes change only with
//! the `libsqlite3-sys` version.

use std::collections::HashMap;

use rusqlite::{params, Connection, OpenFlags, Transaction};

use crate::store::{Closure, PathInfo, StoreDir, StorePath};

#[cfg(test)]
mod tests;

/// The database schema version Nix keeps in `/nix/var/nix/db/schema`.
/// Documentation of [`SCHEMA_FILE_CONTENTS`], which spells it.
#[allow(dead_code)]
pub const SCHEMA_VERSION: u32 = 10;

/// Contents of `/nix/var/nix/db/schema`: the version without a newline,
/// exactly as `LocalStore` writes it.
pub const SCHEMA_FILE_CONTENTS: &str = "10";

/// Nix's `src/libstore/schema.sql`, which Nix runs to create a new store's
/// database.
pub const SCHEMA_SQL: &str = include_str!("schema.sql");

/// SQLite page size of the rendered database (SQLite's and Nix's default).
pub const PAGE_SIZE: u32 = 4096;

/// Why the database could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum NixDbError {
    #[error("rendering Nix's database: {step}: {source}")]
    Sqlite {
        step: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error("rendering Nix's database: registering {path}: {source}")]
    Register {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("rendering Nix's database: {path} has a NAR size of {nar_size} bytes, more than SQLite's integers hold")]
    NarSizeTooLarge { path: String, nar_size: u64 },
    #[error("rendering Nix's database: SQLite gave {path} the id {actual}, not {expected}")]
    UnexpectedId {
        path: String,
        expected: i64,
        actual: i64,
    },
    #[error(
        "rendering Nix's database: {referrer} references {reference}, which was not registered"
    )]
    UnregisteredReference { referrer: String, reference: String },
    #[error("rendering Nix's database: SQLite could not serialize the database: {0}")]
    Serialize(&'static str),
}

/// Bytes of `/nix/var/nix/db/db.sqlite` for the closure, every path
/// registered at `registration_time` (seconds since the epoch).
///
/// The same closure and time always give the same bytes.
pub fn render_sqlite_db(closure: &Closure, registration_time: i64) -> Result<Vec<u8>, NixDbError> {
    let mut db = open_memory_db()?;
    fill_db(&mut db, closure, registration_time)?;
    serialize_db(&mut db)
}

/// The closure in `nix-store --dump-db` format, which `nix-store --load-db`
/// reads: for each path in basename order, its absolute path, NAR hash in
/// hex, NAR size, deriver (or an empty line), number of references and the
/// references, each on its own line.
///
/// This is byte for byte what `nix-store --dump-db` prints for a store
/// holding exactly the closure.
pub fn render_registration(closure: &Closure) -> String {
    let store_dir = closure.store_dir();
    let mut text = String::new();
    for info in closure.iter() {
        let deriver = info
            .deriver
            .as_ref()
            .map(|deriver| deriver.to_absolute(store_dir))
            .unwrap_or_default();
        text.push_str(&format!(
            "{}\n{}\n{}\n{}\n{}\n",
            info.path.to_absolute(store_dir),
            info.nar_hash.to_hex(),
            info.nar_size,
            deriver,
            info.references.len()
        ));
        for reference in &info.references {
            text.push_str(&reference.to_absolute(store_dir));
            text.push('\n');
        }
    }
    text
}

fn sqlite_error(step: &'static str) -> impl FnOnce(rusqlite::Error) -> NixDbError {
    move |source| NixDbError::Sqlite { step, source }
}

/// A private in-memory database that behaves like a file: `memdb` keeps the
/// file change counter and the in-header size as a file would.
fn open_memory_db() -> Result<Connection, NixDbError> {
    let db = Connection::open_with_flags(
        "file:wsl-tarball-nixdb?vfs=memdb",
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sqlite_error("opening an in-memory database"))?;
    configure_db(&db)?;
    Ok(db)
}

/// Settings that shape the file, stated rather than left to compile-time
/// defaults. Must run before anything is written.
fn configure_db(db: &Connection) -> Result<(), NixDbError> {
    db.execute_batch(&format!(
        "pragma page_size = {PAGE_SIZE};
         pragma auto_vacuum = none;
         pragma encoding = 'UTF-8';
         pragma foreign_keys = on;"
    ))
    .map_err(sqlite_error(
        "setting the page size, auto-vacuum, encoding and foreign keys",
    ))?;
    Ok(())
}

/// Creates Nix's schema and registers the closure, in one transaction.
fn fill_db(
    db: &mut Connection,
    closure: &Closure,
    registration_time: i64,
) -> Result<(), NixDbError> {
    let transaction = db
        .transaction()
        .map_err(sqlite_error("beginning the transaction"))?;
    transaction
        .execute_batch(SCHEMA_SQL)
        .map_err(sqlite_error("creating Nix's schema"))?;
    let ids = insert_valid_paths(&transaction, closure, registration_time)?;
    insert_references(&transaction, closure, &ids)?;
    transaction
        .commit()
        .map_err(sqlite_error("committing the transaction"))
}

/// Inserts one `ValidPaths` row per path, in basename order, as
/// `LocalStore::addValidPath` does. Returns the id of each path.
fn insert_valid_paths<'c>(
    transaction: &Transaction<'_>,
    closure: &'c Closure,
    registration_time: i64,
) -> Result<HashMap<&'c StorePath, i64>, NixDbError> {
    let store_dir = closure.store_dir();
    let mut insert = transaction
        .prepare(
            "insert into ValidPaths (path, hash, registrationTime, deriver, narSize, ultimate, sigs, ca) \
             values (?1, ?2, ?3, ?4, ?5, NULL, ?6, ?7)",
        )
        .map_err(sqlite_error("preparing the ValidPaths insert"))?;
    let mut ids = HashMap::with_capacity(closure.len());
    for (expected, info) in (1..).zip(closure.iter()) {
        let path = info.path.to_absolute(store_dir);
        let row = ValidPathRow::new(info, store_dir)?;
        insert
            .execute(params![
                path,
                row.hash,
                registration_time,
                row.deriver,
                row.nar_size,
                row.sigs,
                row.ca
            ])
            .map_err(|source| NixDbError::Register {
                path: path.clone(),
                source,
            })?;
        let actual = transaction.last_insert_rowid();
        if actual != expected {
            return Err(NixDbError::UnexpectedId {
                path,
                expected,
                actual,
            });
        }
        ids.insert(&info.path, actual);
    }
    Ok(ids)
}

/// The nullable columns of a `ValidPaths` row, NULL where Nix writes NULL.
struct ValidPathRow {
    hash: String,
    deriver: Option<String>,
    nar_size: Option<i64>,
    sigs: Option<String>,
    ca: Option<String>,
}

impl ValidPathRow {
    fn new(info: &PathInfo, store_dir: &StoreDir) -> Result<Self, NixDbError> {
        let nar_size = i64::try_from(info.nar_size).map_err(|_| NixDbError::NarSizeTooLarge {
            path: info.path.to_absolute(store_dir),
            nar_size: info.nar_size,
        })?;
        // Nix keeps signatures in a sorted set and joins them with spaces.
        let mut signatures: Vec<&str> = info
            .signatures
            .iter()
            .map(String::as_str)
            .filter(|signature| !signature.is_empty())
            .collect();
        signatures.sort_unstable();
        signatures.dedup();
        Ok(ValidPathRow {
            hash: info.nar_hash.to_db_string(),
            deriver: info
                .deriver
                .as_ref()
                .map(|deriver| deriver.to_absolute(store_dir)),
            nar_size: (nar_size != 0).then_some(nar_size),
            sigs: (!signatures.is_empty()).then(|| signatures.join(" ")),
            ca: info.ca.clone().filter(|ca| !ca.is_empty()),
        })
    }
}

/// Inserts the `Refs` rows: per path in basename order, its references in
/// basename order, self-references included.
fn insert_references(
    transaction: &Transaction<'_>,
    closure: &Closure,
    ids: &HashMap<&StorePath, i64>,
) -> Result<(), NixDbError> {
    let store_dir = closure.store_dir();
    let mut insert = transaction
        .prepare("insert into Refs (referrer, reference) values (?1, ?2)")
        .map_err(sqlite_error("preparing the Refs insert"))?;
    for info in closure.iter() {
        let referrer_id = id_of(ids, &info.path, &info.path, store_dir)?;
        for reference in &info.references {
            let reference_id = id_of(ids, &info.path, reference, store_dir)?;
            insert
                .execute(params![referrer_id, reference_id])
                .map_err(|source| NixDbError::Register {
                    path: info.path.to_absolute(store_dir),
                    source,
                })?;
        }
    }
    Ok(())
}

fn id_of(
    ids: &HashMap<&StorePath, i64>,
    referrer: &StorePath,
    path: &StorePath,
    store_dir: &StoreDir,
) -> Result<i64, NixDbError> {
    ids.get(path)
        .copied()
        .ok_or_else(|| NixDbError::UnregisteredReference {
            referrer: referrer.to_absolute(store_dir),
            reference: path.to_absolute(store_dir),
        })
}

/// The database file's bytes.
fn serialize_db(db: &mut Connection) -> Result<Vec<u8>, NixDbError> {
    let bytes = db
        .serialize(rusqlite::MAIN_DB)
        .map_err(sqlite_error("serializing the database"))?
        .to_vec();
    if bytes.is_empty() || bytes.len() % PAGE_SIZE as usize != 0 {
        return Err(NixDbError::Serialize(
            "the serialized database is not a whole number of pages",
        ));
    }
    // Bytes 18 and 19 are the file format write and read versions: 1 is a
    // rollback journal, 2 would be WAL.
    if !bytes.starts_with(b"SQLite format 3\0") || bytes[18..20] != [1, 1] {
        return Err(NixDbError::Serialize(
            "the serialized database does not have a rollback-journal header",
        ));
    }
    Ok(bytes)
}
