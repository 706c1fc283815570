//! Extension members: what a GNU long name or link and a pax header say
//! about the member after them ([`Overrides`]), and the pax global
//! records that GNU tar and bsdtar would apply differently.

/// A pax or GNU long-name override for the next member.
#[derive(Default)]
pub(super) struct Overrides {
    /// From a GNU `L` and `K` header.
    pub(super) path: Option<Vec<u8>>,
    pub(super) link_target: Option<Vec<u8>>,
    /// From a pax `path` and `linkpath` record.
    pub(super) pax_path: Option<Vec<u8>>,
    pub(super) pax_link_target: Option<Vec<u8>>,
    /// A pax header came.
    pub(super) pax: bool,
    pub(super) size: Option<u64>,
    pub(super) uid: Option<u64>,
    pub(super) gid: Option<u64>,
    pub(super) mtime: Option<u64>,
    /// Names of pax `SCHILY.xattr.` records.
    pub(super) xattrs: Vec<Vec<u8>>,
}

/// A pax record's key and value.
type PaxRecord<'a> = (&'a [u8], &'a [u8]);

/// The records of a pax extended header (`LEN KEY=VALUE\n`).
fn pax_records(data: &[u8]) -> Result<Vec<PaxRecord<'_>>, String> {
    let mut records = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let space = rest
            .iter()
            .position(|&b| b == b' ')
            .ok_or("a record without a length")?;
        let len: usize = std::str::from_utf8(&rest[..space])
            .ok()
            .and_then(|t| t.parse().ok())
            .ok_or("a record length that is not a number")?;
        if len <= space + 1 || len > rest.len() || rest[len - 1] != b'\n' {
            return Err("a record length that does not match the record".into());
        }
        let record = &rest[space + 1..len - 1];
        let equals = record
            .iter()
            .position(|&b| b == b'=')
            .ok_or("a record without '='")?;
        records.push((&record[..equals], &record[equals + 1..]));
        rest = &rest[len..];
    }
    Ok(records)
}

/// GNU tar reads a file with `GNU.sparse.*` records as a sparse file, under
/// another name and with other content than its bytes; bsdtar too.
const SPARSE_PREFIX: &[u8] = b"GNU.sparse.";
/// pax records of extended attributes (GNU tar and bsdtar write them).
const XATTR_PREFIX: &[u8] = b"SCHILY.xattr.";

/// Applies the records of a pax extended header (`LEN KEY=VALUE\n`).
pub(super) fn apply_pax(data: &[u8], overrides: &mut Overrides) -> Result<(), String> {
    for (key, value) in pax_records(data)? {
        let number = || -> Result<u64, String> {
            let text = std::str::from_utf8(value).map_err(|_| "a non-UTF-8 number")?;
            let whole = text.split('.').next().unwrap_or(text);
            whole
                .parse()
                // Quoted as Debug does: the readers' own errors stay
                // printable (tests/fuzz.rs), before main.rs escapes them.
                .map_err(|_| format!("{text:?} is not a number"))
        };
        match key {
            b"path" => overrides.pax_path = Some(value.to_vec()),
            b"linkpath" => overrides.pax_link_target = Some(value.to_vec()),
            b"size" => overrides.size = Some(number()?),
            b"uid" => overrides.uid = Some(number()?),
            b"gid" => overrides.gid = Some(number()?),
            b"mtime" => overrides.mtime = Some(number()?),
            _ if key.starts_with(XATTR_PREFIX) => {
                overrides.xattrs.push(key[XATTR_PREFIX.len()..].to_vec())
            }
            _ if key.starts_with(SPARSE_PREFIX) => {
                return Err(format!(
                    "a {} record: GNU tar and bsdtar read the file as a sparse file, with \
                     another name and content, so it is refused",
                    crate::escape::escape_bytes(key)
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

/// Keys of a pax global header that GNU tar applies to every member after
/// it and bsdtar ignores: a name, a size or an owner the two read apart.
const GLOBAL_KEYS_READ_APART: [&[u8]; 7] = [
    b"path",
    b"linkpath",
    b"size",
    b"uid",
    b"gid",
    b"uname",
    b"gname",
];

/// Why a pax global header is refused, if it is.
pub(super) fn global_pax_conflict(data: &[u8]) -> Result<(), String> {
    for (key, _) in pax_records(data)? {
        if GLOBAL_KEYS_READ_APART.contains(&key) || key.starts_with(SPARSE_PREFIX) {
            return Err(format!(
                "a '{}' record: GNU tar applies it to every member after it, bsdtar \
                 ignores it, so it is refused",
                crate::escape::escape_bytes(key)
            ));
        }
    }
    Ok(())
}
