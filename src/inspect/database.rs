//! Nix's database as shipped inside a tarball, read back for `verify`.

use std::collections::BTreeMap;

use rusqlite::{Connection, OpenFlags};

/// One `ValidPaths` row with its references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredPath {
    /// Absolute store path.
    pub path: String,
    /// As stored: `sha256:<hex>` in the database, hex in registration text.
    pub nar_hash: String,
    pub nar_size: Option<u64>,
    /// Absolute store paths.
    pub references: Vec<String>,
}

/// Reads the registered paths of `/nix/var/nix/db/db.sqlite` (given its
/// bytes) or, if `sqlite` is `None`, of `/nix-path-registration` text.
pub fn read_registered_paths(
    sqlite: Option<&[u8]>,
    registration: Option<&[u8]>,
) -> Result<BTreeMap<String, RegisteredPath>, String> {
    match (sqlite, registration) {
        (Some(bytes), _) => read_sqlite(bytes).map_err(|e| format!("db.sqlite: {e}")),
        (None, Some(text)) => read_registration(text),
        (None, None) => {
            Err("no Nix database (/nix/var/nix/db/db.sqlite or /nix-path-registration)".into())
        }
    }
}

fn read_sqlite(bytes: &[u8]) -> Result<BTreeMap<String, RegisteredPath>, rusqlite::Error> {
    let mut db = Connection::open_with_flags(
        ":memory:",
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    db.deserialize_read_exact(rusqlite::MAIN_DB, bytes, bytes.len(), true)?;
    let mut paths = BTreeMap::new();
    {
        let mut rows = db.prepare("select id, path, hash, narSize from ValidPaths order by id")?;
        let mut by_id = BTreeMap::new();
        let mut query = rows.query([])?;
        while let Some(row) = query.next()? {
            let id: i64 = row.get(0)?;
            let path: String = row.get(1)?;
            let nar_size: Option<i64> = row.get(3)?;
            by_id.insert(id, path.clone());
            paths.insert(
                path.clone(),
                RegisteredPath {
                    path,
                    nar_hash: row.get(2)?,
                    nar_size: nar_size.and_then(|n| u64::try_from(n).ok()),
                    references: Vec::new(),
                },
            );
        }
        let mut refs = db.prepare("select referrer, reference from Refs")?;
        let mut query = refs.query([])?;
        while let Some(row) = query.next()? {
            let referrer: i64 = row.get(0)?;
            let reference: i64 = row.get(1)?;
            let (Some(from), Some(to)) = (by_id.get(&referrer), by_id.get(&reference)) else {
                continue;
            };
            if let Some(entry) = paths.get_mut(from) {
                entry.references.push(to.clone());
            }
        }
    }
    for entry in paths.values_mut() {
        entry.references.sort();
    }
    Ok(paths)
}

/// `nix-store --dump-db` text: path, hash, size, deriver, count, references.
fn read_registration(text: &[u8]) -> Result<BTreeMap<String, RegisteredPath>, String> {
    let text = std::str::from_utf8(text).map_err(|_| "/nix-path-registration is not UTF-8")?;
    let mut lines = text.lines();
    let mut paths = BTreeMap::new();
    let bad = |what: &str| format!("/nix-path-registration: {what}");
    while let Some(path) = lines.next() {
        if path.is_empty() {
            continue;
        }
        let nar_hash = lines.next().ok_or_else(|| bad("missing hash"))?.to_owned();
        let nar_size = lines
            .next()
            .ok_or_else(|| bad("missing NAR size"))?
            .parse()
            .map_err(|_| bad("NAR size is not a number"))?;
        let _deriver = lines.next().ok_or_else(|| bad("missing deriver line"))?;
        let count: usize = lines
            .next()
            .ok_or_else(|| bad("missing reference count"))?
            .parse()
            .map_err(|_| bad("reference count is not a number"))?;
        let mut references = Vec::with_capacity(count);
        for _ in 0..count {
            references.push(
                lines
                    .next()
                    .ok_or_else(|| bad("missing reference"))?
                    .to_owned(),
            );
        }
        references.sort();
        paths.insert(
            path.to_owned(),
            RegisteredPath {
                path: path.to_owned(),
                nar_hash,
                nar_size: Some(nar_size),
                references,
            },
        );
    }
    Ok(paths)
}
