//! What goes into the rootfs, and in which order.
//!
//! A [`Plan`] holds the members the tool makes itself (the `/nix` skeleton,
//! Nix's database, the system profile, the `--extra-files` tree) in GNU tar
//! `--sort=name` order, plus the closure's store paths, which are walked from
//! the host store only when the archive is written. [`Plan::for_each_entry`]
//! yields every member in archive order, with `--chown` rules applied.

mod chown;
mod facts;
mod nixos;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use rayon::prelude::*;

pub use chown::{ChownRule, ChownRuleError};
pub use facts::{BinEntry, FactsError, FactsFile, GroupSpec, NixosFacts, UserSpec, UsersSpec};
pub use nixos::{is_nixos_toplevel, NixosInputs, MAX_ICON_BYTES};

use crate::entry::Entry;
use crate::nixdb;
use crate::store::{Closure, ClosureError, NarHash, StorePath};
use crate::walk::{walk_tree, WalkError};

/// How Nix's database of valid paths ships in the rootfs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NixDbMode {
    /// `/nix/var/nix/db/db.sqlite` and its schema file: `nix` works at once.
    #[default]
    Sqlite,
    /// `/nix-path-registration` in `nix-store --load-db` format, for a boot
    /// script to load.
    Registration,
}

/// Everything the plan is made from.
#[derive(Debug, Clone)]
pub struct PlanInputs<'a> {
    pub closure: &'a Closure,
    /// The NixOS system (toplevel) the `system` profile points at.
    pub system: StorePath,
    /// Host directory the store paths are read from (usually `/nix/store`).
    pub store_source: PathBuf,
    pub nix_db: NixDbMode,
    /// `registrationTime` of every path in the database; the archive mtime.
    pub registration_time: i64,
    /// A host directory whose contents are copied to the rootfs root.
    pub extra_files: Option<PathBuf>,
    /// Owner overrides, applied in order (later rules win).
    pub chown: Vec<ChownRule>,
    /// Make the NixOS skeleton (`/etc`, users, `/sbin/init`, …) from the
    /// system's own files.
    pub nixos: Option<NixosInputs>,
}

/// Why a plan could not be made or walked.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("--system {0}")]
    System(#[source] ClosureError),
    #[error("store path {path} is in the closure but missing from {}", dir.display())]
    MissingStorePath { path: String, dir: PathBuf },
    #[error("--extra-files {}: {source}", dir.display())]
    ExtraFiles { dir: PathBuf, source: WalkError },
    #[error("--extra-files {}: not a directory; give the directory whose contents go to the rootfs root", dir.display())]
    ExtraFilesNotADirectory { dir: PathBuf },
    #[error("--extra-files: /{path} would replace {what}")]
    ExtraFilesConflict { path: String, what: &'static str },
    #[error("store path {path}: {source}")]
    StorePath { path: String, source: WalkError },
    #[error("NixOS skeleton: {0}")]
    Nixos(String),
    #[error(transparent)]
    Facts(#[from] FactsError),
    #[error("rendering Nix's database: {0}")]
    NixDb(#[from] nixdb::NixDbError),
}

/// Component-wise key: ordering by it is the depth-first, name-sorted order
/// of GNU tar's `--sort=name`.
type TreeKey = Vec<Vec<u8>>;

/// The rootfs, ready to be written.
#[derive(Debug)]
pub struct Plan {
    /// Members the tool makes, by tree key.
    generated: BTreeMap<TreeKey, Entry>,
    store_dir_key: TreeKey,
    store_paths: Vec<StorePath>,
    nar_hashes: BTreeMap<StorePath, NarHash>,
    store_source: PathBuf,
    chown: Vec<ChownRule>,
}

/// Mode of a directory made by the tool.
const DIR_MODE: u32 = 0o755;
/// `/nix/store` as Nix creates it: group-writable with the sticky bit.
const STORE_DIR_MODE: u32 = 0o1775;

impl Plan {
    /// Lays out the rootfs for a closure.
    pub fn new(inputs: PlanInputs<'_>) -> Result<Self, PlanError> {
        let closure = inputs.closure;
        closure.require(&inputs.system).map_err(PlanError::System)?;
        let store_dir = closure
            .store_dir()
            .trim_start_matches('/')
            .as_bytes()
            .to_vec();
        let mut plan = Plan {
            generated: BTreeMap::new(),
            store_dir_key: tree_key(&store_dir),
            store_paths: closure.iter().map(|info| info.path.clone()).collect(),
            nar_hashes: closure
                .iter()
                .map(|info| (info.path.clone(), info.nar_hash))
                .collect(),
            store_source: inputs.store_source.clone(),
            chown: inputs.chown.clone(),
        };
        for path in &plan.store_paths {
            let host_path = plan.store_source.join(path.basename());
            if std::fs::symlink_metadata(&host_path).is_err() {
                return Err(PlanError::MissingStorePath {
                    path: path.to_absolute(closure.store_dir()),
                    dir: plan.store_source.clone(),
                });
            }
        }

        plan.add(Entry::directory(Vec::new(), DIR_MODE));
        plan.add_with_parents(Entry::directory(store_dir, STORE_DIR_MODE));
        plan.add_nix_state(&inputs)?;
        if let Some(nixos) = &inputs.nixos {
            let system_host_path = plan.store_source.join(inputs.system.basename());
            let system_store_path = inputs.system.to_absolute(closure.store_dir());
            for entry in nixos::nixos_skeleton(
                nixos,
                &system_host_path,
                &system_store_path,
                closure.store_dir(),
                &plan.store_source,
            )? {
                plan.add_with_parents(entry);
            }
        }
        if let Some(dir) = &inputs.extra_files {
            plan.add_extra_files(dir)?;
        }
        Ok(plan)
    }

    /// `/nix/var/nix` as Nix lays it out after `nix-env -p
    /// /nix/var/nix/profiles/system --set SYSTEM`, with the database.
    ///
    /// The database holds only what is the same wherever the closure was
    /// read (no derivers, no signatures), so `nix build` and `nix run` write
    /// the same bytes.
    fn add_nix_state(&mut self, inputs: &PlanInputs<'_>) -> Result<(), PlanError> {
        let closure = &inputs.closure.without_host_metadata();
        for dir in [
            "nix/var/nix/db",
            "nix/var/nix/gcroots/auto",
            "nix/var/nix/gcroots/per-user/root",
            "nix/var/nix/profiles/per-user/root",
            "nix/var/nix/temproots",
        ] {
            self.add_with_parents(Entry::directory(dir, DIR_MODE));
        }
        self.add(Entry::symlink(
            "nix/var/nix/gcroots/profiles",
            "/nix/var/nix/profiles",
        ));
        self.add(Entry::symlink(
            "nix/var/nix/profiles/system",
            "system-1-link",
        ));
        self.add(Entry::symlink(
            "nix/var/nix/profiles/system-1-link",
            inputs.system.to_absolute(closure.store_dir()),
        ));
        match inputs.nix_db {
            NixDbMode::Sqlite => {
                let db = nixdb::render_sqlite_db(closure, inputs.registration_time)?;
                self.add(Entry::inline_file("nix/var/nix/db/db.sqlite", db, 0o644));
                self.add(Entry::inline_file(
                    "nix/var/nix/db/schema",
                    nixdb::SCHEMA_FILE_CONTENTS.as_bytes().to_vec(),
                    0o644,
                ));
            }
            NixDbMode::Registration => {
                let registration = nixdb::render_registration(closure);
                self.add(Entry::inline_file(
                    "nix-path-registration",
                    registration.into_bytes(),
                    0o644,
                ));
            }
        }
        Ok(())
    }

    /// Merges a host tree into the root, as `cp -r DIR/. ROOT/` would:
    /// directories merge (an existing one keeps its mode), files and symlinks
    /// replace what the tool made. The store itself cannot be written into.
    fn add_extra_files(&mut self, dir: &Path) -> Result<(), PlanError> {
        if !dir.is_dir() {
            return Err(PlanError::ExtraFilesNotADirectory {
                dir: dir.to_path_buf(),
            });
        }
        let entries = walk_tree(dir, b"").map_err(|source| PlanError::ExtraFiles {
            dir: dir.to_path_buf(),
            source,
        })?;
        for entry in entries.into_iter().skip(1) {
            let key = tree_key(&entry.path);
            if key.len() > self.store_dir_key.len() && key.starts_with(&self.store_dir_key) {
                return Err(PlanError::ExtraFilesConflict {
                    path: String::from_utf8_lossy(&entry.path).into_owned(),
                    what: "the contents of the store, which only the closure fills",
                });
            }
            match self.generated.get(&key) {
                Some(existing) if existing.is_directory() && entry.is_directory() => {}
                Some(existing) if existing.is_directory() || entry.is_directory() => {
                    return Err(PlanError::ExtraFilesConflict {
                        path: String::from_utf8_lossy(&entry.path).into_owned(),
                        what: if existing.is_directory() {
                            "a directory with a file"
                        } else {
                            "a file with a directory"
                        },
                    });
                }
                _ => {
                    self.generated.insert(key, entry);
                }
            }
        }
        Ok(())
    }

    fn add(&mut self, entry: Entry) {
        self.generated.insert(tree_key(&entry.path), entry);
    }

    /// Adds `entry` and any missing parent directories (mode 0755).
    fn add_with_parents(&mut self, entry: Entry) {
        let key = tree_key(&entry.path);
        for depth in 1..key.len() {
            let parent = &key[..depth];
            if !self.generated.contains_key(parent) {
                self.add(Entry::directory(parent.join(&b'/'), DIR_MODE));
            }
        }
        self.add(entry);
    }

    /// The NAR hash of a store path of the plan.
    pub fn nar_hash(&self, path: &StorePath) -> Option<NarHash> {
        self.nar_hashes.get(path).copied()
    }

    /// The store directory as it appears in the archive (`nix/store`).
    pub fn store_dir_in_archive(&self) -> Vec<u8> {
        self.store_dir_key.join(&b'/')
    }

    /// Entries of one store path, owners applied.
    fn walk_store_path(&self, path: &StorePath) -> Result<Vec<Entry>, PlanError> {
        let mut archive_path = self.store_dir_in_archive();
        archive_path.push(b'/');
        archive_path.extend_from_slice(path.basename().as_bytes());
        let host_path = self.store_source.join(path.basename());
        let mut entries =
            walk_tree(&host_path, &archive_path).map_err(|source| PlanError::StorePath {
                path: host_path.display().to_string(),
                source,
            })?;
        for entry in &mut entries {
            for rule in &self.chown {
                rule.apply(entry);
            }
        }
        Ok(entries)
    }

    /// The store paths, in archive order.
    pub fn store_paths(&self) -> &[StorePath] {
        &self.store_paths
    }

    /// Calls `sink` with every member in archive order. Store paths are walked
    /// on a separate thread, in parallel batches, while `sink` runs.
    pub fn for_each_entry<E>(&self, mut sink: impl FnMut(&Entry) -> Result<(), E>) -> Result<(), E>
    where
        E: From<PlanError>,
    {
        self.for_each_item(|item| match item {
            PlanItem::Entry(entry) => sink(entry),
            _ => Ok(()),
        })
    }

    /// Like [`Plan::for_each_entry`], also marking where each store path's
    /// members start and end.
    pub fn for_each_item<E>(
        &self,
        mut sink: impl FnMut(PlanItem<'_>) -> Result<(), E>,
    ) -> Result<(), E>
    where
        E: From<PlanError>,
    {
        let emit = |entry: &mut Entry, sink: &mut dyn FnMut(PlanItem<'_>) -> Result<(), E>| {
            for rule in &self.chown {
                rule.apply(entry);
            }
            sink(PlanItem::Entry(entry))
        };
        std::thread::scope(|scope| {
            let (walked_tx, walked_rx) = mpsc::sync_channel(WALK_AHEAD);
            let mut walker = Some(move || self.walk_store_paths(walked_tx));
            for entry in self.generated.values() {
                let mut entry = entry.clone();
                emit(&mut entry, &mut sink)?;
                if tree_key(&entry.path) != self.store_dir_key {
                    continue;
                }
                if let Some(walker) = walker.take() {
                    scope.spawn(walker);
                }
                for (path, walked) in self.store_paths.iter().zip(walked_rx.iter()) {
                    sink(PlanItem::StorePathStart(path))?;
                    for entry in &walked? {
                        sink(PlanItem::Entry(entry))?;
                    }
                    sink(PlanItem::StorePathEnd(path))?;
                }
            }
            Ok(())
        })
    }

    /// Walks every store path, in parallel batches, sending each one's
    /// entries in order. Stops early if the receiver hangs up.
    fn walk_store_paths(&self, walked_tx: mpsc::SyncSender<Result<Vec<Entry>, PlanError>>) {
        for batch in self.store_paths.chunks(WALK_BATCH) {
            let walked: Vec<_> = batch
                .par_iter()
                .map(|path| self.walk_store_path(path))
                .collect();
            for result in walked {
                let failed = result.is_err();
                if walked_tx.send(result).is_err() || failed {
                    return;
                }
            }
        }
    }

    /// The owner rules, for keys of anything derived from entries.
    pub fn chown_rules(&self) -> &[ChownRule] {
        &self.chown
    }
}

/// One step of [`Plan::for_each_item`].
#[derive(Debug)]
pub enum PlanItem<'a> {
    /// A member, owners applied.
    Entry(&'a Entry),
    /// The members of this store path follow.
    StorePathStart(&'a StorePath),
    /// The members of this store path are complete.
    StorePathEnd(&'a StorePath),
}

/// Store paths walked per parallel batch.
const WALK_BATCH: usize = 16;
/// Walked store paths that may wait for the writer.
const WALK_AHEAD: usize = 64;

fn tree_key(path: &[u8]) -> TreeKey {
    if path.is_empty() {
        return Vec::new();
    }
    path.split(|&b| b == b'/').map(<[u8]>::to_vec).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{NarHash, PathInfo};

    const SYSTEM: &str = "7h7qgvs4kgzsn8a6rb273saxyqh4jxlz-nixos-system";
    const LIB: &str = "0h7qgvs4kgzsn8a6rb273saxyqh4jxlz-lib";

    fn info(basename: &str, references: &[&str]) -> PathInfo {
        PathInfo {
            path: StorePath::from_basename(basename).unwrap(),
            nar_hash: NarHash([7; 32]),
            nar_size: 1,
            references: references
                .iter()
                .map(|r| StorePath::from_basename(r).unwrap())
                .collect(),
            deriver: None,
            ca: None,
            signatures: Vec::new(),
        }
    }

    /// A fake host store with two paths, and a closure of them.
    fn fixture(store: &Path) -> Closure {
        std::fs::create_dir_all(store.join(SYSTEM)).unwrap();
        std::fs::write(store.join(SYSTEM).join("init"), b"#!").unwrap();
        std::fs::write(store.join(LIB), b"lib").unwrap();
        Closure::new("/nix/store", [info(SYSTEM, &[LIB]), info(LIB, &[])]).unwrap()
    }

    fn inputs<'a>(closure: &'a Closure, store: &Path, extra: Option<PathBuf>) -> PlanInputs<'a> {
        PlanInputs {
            closure,
            system: StorePath::from_basename(SYSTEM).unwrap(),
            store_source: store.to_path_buf(),
            nix_db: NixDbMode::Registration,
            registration_time: 1,
            extra_files: extra,
            chown: vec![ChownRule::parse("/home/nixos", "1000:100").unwrap()],
            nixos: None,
        }
    }

    fn collect(plan: &Plan) -> Vec<Entry> {
        let mut entries = Vec::new();
        plan.for_each_entry(|e| {
            entries.push(e.clone());
            Ok::<_, PlanError>(())
        })
        .unwrap();
        entries
    }

    #[test]
    fn entries_come_in_gnu_tar_sort_order_with_the_store_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        let closure = fixture(&store);
        let extra = dir.path().join("extra");
        // "a.b" sorts before "a/…" byte-wise, but a directory's children come
        // right after it in a depth-first walk.
        std::fs::create_dir_all(extra.join("a")).unwrap();
        std::fs::write(extra.join("a/b"), b"").unwrap();
        std::fs::write(extra.join("a.b"), b"").unwrap();
        std::fs::create_dir_all(extra.join("home/nixos")).unwrap();
        std::fs::write(extra.join("home/nixos/.profile"), b"").unwrap();
        let plan = Plan::new(inputs(&closure, &store, Some(extra))).unwrap();
        let entries = collect(&plan);
        let names: Vec<String> = entries
            .iter()
            .map(|e| String::from_utf8(e.path.clone()).unwrap())
            .collect();
        let expected = [
            "",
            "a",
            "a/b",
            "a.b",
            "home",
            "home/nixos",
            "home/nixos/.profile",
            "nix",
            "nix/store",
            &format!("nix/store/{LIB}"),
            &format!("nix/store/{SYSTEM}"),
            &format!("nix/store/{SYSTEM}/init"),
            "nix/var",
            "nix/var/nix",
        ];
        assert_eq!(&names[..expected.len()], &expected);
        let owner = |name: &str| {
            let e = entries.iter().find(|e| e.path == name.as_bytes()).unwrap();
            (e.uid, e.gid)
        };
        assert_eq!(owner("home/nixos/.profile"), (1000, 100));
        assert_eq!(owner("home"), (0, 0));
        assert!(names.contains(&"nix-path-registration".to_owned()));
    }

    #[test]
    fn extra_files_may_not_write_into_the_store_or_replace_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        let closure = fixture(&store);

        let into_store = dir.path().join("into-store");
        std::fs::create_dir_all(into_store.join("nix/store")).unwrap();
        std::fs::write(into_store.join("nix/store/intruder"), b"").unwrap();
        let err = Plan::new(inputs(&closure, &store, Some(into_store))).unwrap_err();
        assert!(err.to_string().contains("nix/store/intruder"), "{err}");

        let file_over_dir = dir.path().join("file-over-dir");
        std::fs::create_dir_all(&file_over_dir).unwrap();
        std::fs::write(file_over_dir.join("nix"), b"").unwrap();
        let err = Plan::new(inputs(&closure, &store, Some(file_over_dir))).unwrap_err();
        assert!(
            err.to_string().contains("/nix would replace a directory"),
            "{err}"
        );
    }

    #[test]
    fn a_store_path_missing_on_the_host_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        let closure = fixture(&store);
        std::fs::remove_file(store.join(LIB)).unwrap();
        let err = Plan::new(inputs(&closure, &store, None)).unwrap_err();
        assert!(err.to_string().contains(LIB), "{err}");
    }
}
