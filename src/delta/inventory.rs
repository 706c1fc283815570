//! What a system description lists: the store paths, with NAR hash, size
//! and references, of an earlier tarball (read from the Nix database inside
//! it), of a `write --manifest` JSON, or of a closure file. `delta --from`
//! reads the colleague's system this way, and `diff` compares two of them.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::path::Path;

use serde::Serialize;

use super::InventoryError;
use crate::archive::{detect_compression, open_tarball};
use crate::compress::Compression;
use crate::escape::Escaped;
use crate::input::{read_limited, MAX_CLOSURE_BYTES};
use crate::inspect::{
    read_database, store_path_changes_text, ChangedStorePath, Database, DatabaseError,
    DatabaseVisitor, RegisteredPath, TemporaryError,
};
use crate::store::{read_closure, NarHash, StoreDir, StorePath};
use crate::tar::MemberKind;

/// The largest Nix database read out of a tarball.
const MAX_DATABASE_BYTES: u64 = 256 << 20;
/// Where the system profile lives inside a rootfs.
const PROFILE: &[u8] = b"nix/var/nix/profiles/system";
const PROFILES_DIR: &[u8] = b"nix/var/nix/profiles/";

/// Which kind of file described the system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InventoryKind {
    /// A rootfs tarball: its store paths are read from its Nix database.
    Tarball,
    /// The manifest `write` wrote beside a tarball.
    Manifest,
    /// A closure file (`exportReferencesGraph` or `nix path-info --json`).
    Closure,
}

impl InventoryKind {
    /// The kind's name as reports and manifests spell it: `tarball`, `manifest`, `closure`.
    pub fn name(self) -> &'static str {
        match self {
            InventoryKind::Tarball => "tarball",
            InventoryKind::Manifest => "manifest",
            InventoryKind::Closure => "closure",
        }
    }
}

/// One store path of a system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryPath {
    pub nar_hash: NarHash,
    pub nar_size: u64,
    /// Sorted.
    pub references: Vec<StorePath>,
}

/// The store paths a system description lists, each parsed where it is
/// read, in the store directory the description was read with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inventory {
    /// Which kind of file described the system.
    pub kind: InventoryKind,
    /// The system toplevel, when the description names one (a tarball's
    /// `/nix/var/nix/profiles/system`, a manifest's `system`).
    pub system: Option<StorePath>,
    /// Every store path the description lists, with its NAR hash, size and references.
    pub paths: BTreeMap<StorePath, InventoryPath>,
    /// The store directory the paths are in (`/nix/store`).
    pub store_dir: StoreDir,
}

/// Whether `path` starts like a system description rather than an archive:
/// JSON (a `--manifest` or `nix path-info` output) or registration text (a
/// store path).
pub fn is_system_description(path: &Path) -> bool {
    let mut head = [0u8; 512];
    let Ok(got) = std::fs::File::open(path).and_then(|mut f| read_up_to(&mut f, &mut head)) else {
        return false;
    };
    let first = head[..got].iter().find(|b| !b.is_ascii_whitespace());
    matches!(first, Some(b'{' | b'[' | b'/')) && !looks_like_tarball(&head[..got])
}

fn looks_like_tarball(head: &[u8]) -> bool {
    let is_tar = crate::tar::layout::has_tar_magic(head);
    detect_compression(head) != Compression::None || is_tar
}

/// Reads a tarball, a `--manifest` JSON or a closure file (detected from
/// the bytes). Anything else is [`InventoryError::NotASystem`] naming the file.
pub fn read_inventory(path: &Path, store_dir: &StoreDir) -> Result<Inventory, InventoryError> {
    let not_a_system = |message: String| InventoryError::NotASystem {
        path: path.to_path_buf(),
        message,
    };
    let mut head = [0u8; 512];
    let got = std::fs::File::open(path)
        .and_then(|mut file| read_up_to(&mut file, &mut head))
        .map_err(|e| not_a_system(format!("cannot read it: {e}")))?;
    if looks_like_tarball(&head[..got]) {
        if super::read::is_bundle(path) {
            return Err(not_a_system(
                "it is an update bundle, which holds only what changed".into(),
            ));
        }
        return read_tarball(path, store_dir);
    }
    let bytes = read_limited(path, MAX_CLOSURE_BYTES, "a system description")
        .map_err(|e| not_a_system(e.to_string()))?;
    if let Ok(serde_json::Value::Object(object)) = serde_json::from_slice(&bytes) {
        if object.contains_key("manifestVersion") {
            return read_manifest(path, &object, store_dir);
        }
        if object.contains_key("bundleVersion") {
            return Err(not_a_system(
                "it is an update bundle's manifest, which lists only what changed".into(),
            ));
        }
    }
    let source_name = path.display().to_string();
    let (closure, _) = read_closure(&bytes, &source_name, store_dir).map_err(|e| {
        not_a_system(format!(
            "it is not a tarball (no gzip, xz, zstd or tar magic) and, read as a closure: {e}"
        ))
    })?;
    let paths = closure
        .iter()
        .map(|info| {
            (
                info.path.clone(),
                InventoryPath {
                    nar_hash: info.nar_hash,
                    nar_size: info.nar_size,
                    references: info.references.clone(),
                },
            )
        })
        .collect();
    Ok(Inventory {
        kind: InventoryKind::Closure,
        system: None,
        paths,
        store_dir: store_dir.clone(),
    })
}

fn read_up_to(reader: &mut impl Read, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// An earlier tarball: its Nix database and its system profile.
fn read_tarball(path: &Path, store_dir: &StoreDir) -> Result<Inventory, InventoryError> {
    let bad = |message: String| InventoryError::BadInventory {
        path: path.to_path_buf(),
        message,
    };
    let mut reader = open_tarball(path).map_err(|e| bad(e.to_string()))?;
    let mut sqlite = None;
    let mut registration = None;
    let mut profile_links: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
    while let Some(member) = reader.next_member().map_err(|e| bad(e.to_string()))? {
        let keep = match member.path.as_slice() {
            b"nix/var/nix/db/db.sqlite" => Some(&mut sqlite),
            b"nix-path-registration" => Some(&mut registration),
            _ => None,
        };
        if member.kind == MemberKind::Symlink && member.path.starts_with(PROFILES_DIR) {
            profile_links.insert(member.path.clone(), member.link_target.clone());
        }
        let Some(slot) = keep.filter(|_| member.kind == MemberKind::Regular) else {
            continue;
        };
        if member.size > MAX_DATABASE_BYTES {
            return Err(bad(format!(
                "{} is {} bytes, more than the {MAX_DATABASE_BYTES} read",
                member.display_path(),
                member.size
            )));
        }
        // Spilled to an unnamed temporary file, as `verify` reads it. The
        // temporary file's trouble is this machine's, not OLD's.
        let shown = member.display_path();
        let temporary =
            |e| TemporaryError::new(format!("cannot spill {shown} of {}", path.display()), e);
        let mut spill = tempfile::tempfile().map_err(temporary)?;
        let mut content = reader.content();
        let mut buffer = vec![0; 64 << 10];
        loop {
            let n = match content.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(bad(format!("reading {shown}: {e}"))),
            };
            spill.write_all(&buffer[..n]).map_err(temporary)?;
        }
        *slot = Some(spill);
    }
    let database = match (&sqlite, &registration) {
        (Some(file), _) => Database::Sqlite(file),
        (None, Some(file)) => Database::Registration(file),
        (None, None) => {
            return Err(bad(
                "no Nix database (/nix/var/nix/db/db.sqlite or /nix-path-registration)".into(),
            ))
        }
    };
    let mut collected = CollectPaths {
        paths: BTreeMap::new(),
    };
    read_database(database, store_dir, &mut collected).map_err(|error| match error {
        DatabaseError::Temporary(error) => InventoryError::Temporary(error),
        error => bad(format!("its Nix database: {error}")),
    })?;
    let mut paths = collected.paths;
    for info in paths.values_mut() {
        info.references.sort();
    }
    let system = profile_system(&profile_links, store_dir).map_err(bad)?;
    Ok(Inventory {
        kind: InventoryKind::Tarball,
        system,
        paths,
        store_dir: store_dir.clone(),
    })
}

/// The database's paths and references, gathered row by row.
struct CollectPaths {
    paths: BTreeMap<StorePath, InventoryPath>,
}

impl DatabaseVisitor for CollectPaths {
    fn path(&mut self, row: RegisteredPath) {
        self.paths.insert(
            row.path,
            InventoryPath {
                nar_hash: row.nar_hash,
                nar_size: row.nar_size.unwrap_or(0),
                references: Vec::new(),
            },
        );
    }

    fn reference(&mut self, referrer: &StorePath, reference: &StorePath) {
        if let Some(info) = self.paths.get_mut(referrer) {
            info.references.push(reference.clone());
        }
    }
}

/// Follows `nix/var/nix/profiles/system` through the profile links to the
/// store path it names: `None` when the links lead nowhere, an error naming
/// the link when one leads into the store but not to a store path.
fn profile_system(
    links: &HashMap<Vec<u8>, Vec<u8>>,
    store_dir: &StoreDir,
) -> Result<Option<StorePath>, String> {
    let store_prefix = format!("{store_dir}/");
    let mut current = PROFILE.to_vec();
    for _ in 0..16 {
        let Some(target) = links.get(&current) else {
            return Ok(None);
        };
        if target.starts_with(store_prefix.as_bytes()) {
            let not_a_store_path = |why: String| {
                format!(
                    "{}: its target {} is not a store path: {why}",
                    String::from_utf8_lossy(&current),
                    String::from_utf8_lossy(target)
                )
            };
            let text = std::str::from_utf8(target)
                .map_err(|_| not_a_store_path("it is not UTF-8".into()))?;
            // A profile generation is a link to a store path itself.
            return StorePath::from_absolute(text, store_dir)
                .map(Some)
                .map_err(|e| not_a_store_path(e.to_string()));
        }
        if target.starts_with(b"/") {
            current = target[1..].to_vec();
        } else {
            current = PROFILES_DIR.to_vec();
            current.extend_from_slice(target);
        }
    }
    Ok(None)
}

/// A `write --manifest` JSON: its `system` and `storePaths`.
fn read_manifest(
    path: &Path,
    manifest: &serde_json::Map<String, serde_json::Value>,
    store_dir: &StoreDir,
) -> Result<Inventory, InventoryError> {
    let bad = |message: String| InventoryError::BadInventory {
        path: path.to_path_buf(),
        message,
    };
    let system = match manifest.get("system") {
        Some(serde_json::Value::String(system)) => Some(
            StorePath::from_absolute(system, store_dir).map_err(|e| bad(format!("system: {e}")))?,
        ),
        _ => return Err(bad("system: missing or not a string".into())),
    };
    let entries = manifest
        .get("storePaths")
        .and_then(|v| v.as_array())
        .ok_or_else(|| bad("storePaths: missing or not a list".into()))?;
    let mut paths = BTreeMap::new();
    for (i, entry) in entries.iter().enumerate() {
        let field = |name: &str| entry.get(name);
        let store_path = field("path")
            .and_then(|v| v.as_str())
            .ok_or_else(|| bad(format!("storePaths[{i}].path: missing or not a string")))?;
        let store_path = StorePath::from_absolute(store_path, store_dir)
            .map_err(|e| bad(format!("storePaths[{i}].path: {e}")))?;
        let nar_hash = field("narHash")
            .and_then(|v| v.as_str())
            .ok_or_else(|| bad(format!("storePaths[{i}].narHash: missing or not a string")))
            .and_then(|text| {
                NarHash::parse(text).map_err(|e| bad(format!("storePaths[{i}].narHash: {e}")))
            })?;
        let nar_size = field("narSize")
            .and_then(|v| v.as_u64())
            .ok_or_else(|| bad(format!("storePaths[{i}].narSize: missing or not a number")))?;
        let mut references = Vec::new();
        for (j, reference) in field("references")
            .and_then(|v| v.as_array())
            .ok_or_else(|| bad(format!("storePaths[{i}].references: missing or not a list")))?
            .iter()
            .enumerate()
        {
            let text = reference.as_str().ok_or_else(|| {
                bad(format!(
                    "storePaths[{i}].references[{j}]: {reference} is not a string"
                ))
            })?;
            references.push(
                StorePath::from_absolute(text, store_dir)
                    .map_err(|e| bad(format!("storePaths[{i}].references[{j}]: {e}")))?,
            );
        }
        references.sort();
        paths.insert(
            store_path,
            InventoryPath {
                nar_hash,
                nar_size,
                references,
            },
        );
    }
    if let Some(system) = system.as_ref().filter(|s| !paths.contains_key(*s)) {
        return Err(bad(format!(
            "system {} is not in storePaths",
            system.to_absolute(store_dir)
        )));
    }
    Ok(Inventory {
        kind: InventoryKind::Manifest,
        system,
        paths,
        store_dir: store_dir.clone(),
    })
}

/// `diff` of two system descriptions: store paths added, removed, changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InventoryDifference {
    /// The schema's version, [`crate::inspect::JSON_VERSION`].
    pub version: u32,
    /// The first description's path, as given.
    pub a: String,
    /// The second description's path, as given.
    pub b: String,
    /// What kind of file the first is.
    pub kind_a: InventoryKind,
    /// What kind of file the second is.
    pub kind_b: InventoryKind,
    /// The first's system toplevel (absolute), if it names one.
    pub system_a: Option<String>,
    /// The second's system toplevel (absolute), if it names one.
    pub system_b: Option<String>,
    /// Store paths (absolute) only the second lists, sorted.
    pub added: Vec<String>,
    /// Store paths (absolute) only the first lists, sorted.
    pub removed: Vec<String>,
    /// Store paths both list with different NAR hashes or sizes.
    pub changed: Vec<ChangedStorePath>,
    /// Same store paths with the same NAR hashes and sizes.
    pub identical: bool,
}

/// Compares two systems' store paths (in path order).
pub fn compare(a: &Inventory, a_name: &str, b: &Inventory, b_name: &str) -> InventoryDifference {
    let removed: Vec<String> = a
        .paths
        .keys()
        .filter(|p| !b.paths.contains_key(*p))
        .map(|p| p.to_absolute(&a.store_dir))
        .collect();
    let added: Vec<String> = b
        .paths
        .keys()
        .filter(|p| !a.paths.contains_key(*p))
        .map(|p| p.to_absolute(&b.store_dir))
        .collect();
    let changed: Vec<ChangedStorePath> = a
        .paths
        .iter()
        .filter_map(|(path, x)| {
            let y = b.paths.get(path)?;
            (x.nar_hash != y.nar_hash || x.nar_size != y.nar_size).then(|| ChangedStorePath {
                path: path.to_absolute(&a.store_dir),
                nar_hash_a: Some(x.nar_hash.to_sri()),
                nar_hash_b: Some(y.nar_hash.to_sri()),
                nar_size_a: x.nar_size,
                nar_size_b: y.nar_size,
            })
        })
        .collect();
    InventoryDifference {
        version: crate::inspect::JSON_VERSION,
        a: a_name.to_owned(),
        b: b_name.to_owned(),
        kind_a: a.kind,
        kind_b: b.kind,
        system_a: a.system.as_ref().map(|s| s.to_absolute(&a.store_dir)),
        system_b: b.system.as_ref().map(|s| s.to_absolute(&b.store_dir)),
        identical: added.is_empty() && removed.is_empty() && changed.is_empty(),
        added,
        removed,
        changed,
    }
}

impl InventoryDifference {
    /// The report for people: the bundle's table of contents.
    pub fn to_text(&self) -> String {
        let system =
            |s: &Option<String>| Escaped(s.as_deref().unwrap_or("(no system named)")).to_string();
        let mut out = format!(
            "A {} ({}, system {})\nB {} ({}, system {})\n",
            Escaped(&self.a),
            self.kind_a.name(),
            system(&self.system_a),
            Escaped(&self.b),
            self.kind_b.name(),
            system(&self.system_b)
        );
        if self.identical {
            out.push_str("identical store paths\n");
            return out;
        }
        out.push_str(&store_path_changes_text(
            &self.added,
            &self.removed,
            &self.changed,
        ));
        out
    }
}
