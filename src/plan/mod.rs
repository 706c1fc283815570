//! What goes into the rootfs, and in which order.
//!
//! A [`Plan`] holds the members the tool makes itself (the `/nix` skeleton,
//! Nix's database, the system profile, the `--extra-files` tree) in GNU tar
//! `--sort=name` order, plus the closure's store paths, which are walked from
//! the host store only when the archive is written. [`Plan::segments`] cuts
//! the archive into independent [`Segment`]s (each store path, and the runs of
//! members between them), with `--chown` rules applied.
//!
//! Every member the plan makes passes one check (`checked_key`): its path
//! is a clean rootfs path (no empty, `.` or `..` component, not absolute, no
//! NUL), and an `--extra-files` member may not replace what must stay as the
//! tool made it: the store's contents, Nix's database and the profiles never,
//! any other file the tool made only with `--allow-override PATH`.

mod chown;
mod facts;
mod nixos;

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

pub use chown::{ChownRule, ChownRuleError};
pub use facts::{FactsError, NixosFacts};
pub use nixos::{is_nixos_toplevel, NixosInputs};

use crate::entry::{Content, Entry, EntryKind};
use crate::nixdb;
use crate::store::{Closure, ClosureError, NarHash, StorePath};
use crate::walk::{walk_tree, TreeWalkError};

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
    /// Rootfs paths (leading slash optional) of files the tool makes that
    /// `--extra-files` may replace (`--allow-override PATH`).
    pub allow_override: Vec<String>,
    /// Make the NixOS skeleton (`/etc`, users, `/sbin/init`, …) from the
    /// system's own files.
    pub nixos: Option<NixosInputs>,
}

/// Why a plan could not be made or walked.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The system is not in the closure (the message names it).
    #[error("the system {0}")]
    System(#[source] ClosureError),
    /// A store path of the closure is missing from the host store.
    #[error("store path {path} is in the closure but missing from {}", dir.display())]
    MissingStorePath {
        /// The store path's base name.
        path: String,
        /// The host directory it was looked for in.
        dir: PathBuf,
    },
    /// The extra-files tree cannot be walked.
    #[error("extra files {}: {source}", dir.display())]
    ExtraFiles {
        /// The extra-files directory.
        dir: PathBuf,
        /// What in its tree cannot be read or tarred.
        source: TreeWalkError,
    },
    /// The extra-files path is not a directory.
    #[error("extra files {}: not a directory; give the directory whose contents go to the rootfs root", dir.display())]
    ExtraFilesNotADirectory {
        /// The path given.
        dir: PathBuf,
    },
    /// An extra file would go where it may not.
    #[error("extra files: /{path} ({}) {conflict}", host.display())]
    ExtraFilesConflict {
        /// Its rootfs path, without the leading slash.
        path: String,
        /// The file on the host.
        host: PathBuf,
        /// What it would clash with.
        conflict: Conflict,
    },
    /// A path allowed to be overridden is not a rootfs path the tool makes.
    #[error("override of \"{path}\": {why}")]
    AllowOverride {
        /// The path as given.
        path: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A rootfs path (of an extra file or a skeleton file) is not one a tar member may have.
    #[error("rootfs path \"{path}\" from {origin}: {why}")]
    BadRootfsPath {
        /// The path, escaped for the message.
        path: String,
        /// Where the entry comes from.
        origin: EntryOrigin,
        /// What is wrong with the path.
        why: &'static str,
    },
    /// An owner override does not apply.
    #[error(transparent)]
    Chown(#[from] ChownRuleError),
    /// A store path's tree cannot be walked.
    #[error("store path {path}: {source}")]
    StorePath {
        /// The store path's base name.
        path: String,
        /// What in its tree cannot be read or tarred.
        source: TreeWalkError,
    },
    /// The NixOS skeleton cannot be made; holds what is wrong.
    #[error("NixOS skeleton: {0}")]
    Nixos(String),
    /// An /etc file owned by a name, in a skeleton of defaults (no facts
    /// from the module), which knows only root.
    #[error("NixOS skeleton: {file} names {kind} {name:?}, but without the NixOS module's facts (system.build.wslTarballFacts) the skeleton knows only root")]
    OwnerWithoutFacts {
        /// The /etc file that names the owner.
        file: String,
        /// `user` or `group`.
        kind: &'static str,
        /// The name, as the file has it.
        name: String,
    },
    /// The facts file does not fit the system.
    #[error(transparent)]
    Facts(#[from] FactsError),
    /// The icon cannot be read within its size limit.
    #[error("icon: {0}")]
    Icon(#[source] crate::input::InputError),
    /// The icon is not an .ico file; holds its path.
    #[error("icon {}: not an .ico file (no ICONDIR header 00 00 01 00)", .0.display())]
    NotAnIcon(PathBuf),
    /// Nix's database cannot be rendered.
    #[error("rendering Nix's database: {0}")]
    NixDb(#[from] nixdb::NixDbError),
}

/// Why an `--extra-files` member may not go where it would go.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Conflict {
    /// An extra file would go into the store.
    #[error("would write into the store, which only the closure fills")]
    StoreContents,
    /// An extra file would go into Nix's database directory.
    #[error("would replace or add to Nix's database, which must list exactly the store paths in the tarball")]
    NixDatabase,
    /// An extra file would go into /nix/var/nix/profiles.
    #[error("would replace or add to /nix/var/nix/profiles, which must lead to the system")]
    Profiles,
    /// An extra file would replace a directory of the rootfs.
    #[error("would replace a directory with a file")]
    DirectoryWithFile,
    /// An extra directory would replace a file of the rootfs.
    #[error("would replace a file with a directory")]
    FileWithDirectory,
    /// An extra file would replace one the tool makes, and overriding it was not allowed.
    #[error("would replace what {made_by} makes there; allow overriding /{path} if you mean it")]
    ToolFile {
        /// What makes the file.
        made_by: EntryOrigin,
        /// Its rootfs path, without the leading slash.
        path: String,
    },
}

/// What made a member of the plan, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryOrigin {
    /// `/nix`, the store directory (`--store-dir`) and Nix's state.
    NixLayout,
    /// The NixOS skeleton (`--facts` or `--nixos`).
    Skeleton,
    /// A file, directory or symlink of the `--extra-files` tree, on the host.
    ExtraFile(PathBuf),
}

impl std::fmt::Display for EntryOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EntryOrigin::NixLayout => write!(f, "the /nix layout"),
            EntryOrigin::Skeleton => write!(f, "the NixOS skeleton"),
            EntryOrigin::ExtraFile(host) => write!(f, "the extra file {}", host.display()),
        }
    }
}

/// A member the tool makes, and what made it.
#[derive(Debug)]
struct Planned {
    entry: Entry,
    origin: EntryOrigin,
}

/// Component-wise key: ordering by it is the depth-first, name-sorted order
/// of GNU tar's `--sort=name`.
type TreeKey = Vec<Vec<u8>>;

/// The rootfs, ready to be written.
#[derive(Debug)]
pub struct Plan {
    /// Members the tool makes, by tree key.
    generated: BTreeMap<TreeKey, Planned>,
    store_dir_key: TreeKey,
    store_paths: Vec<StorePath>,
    /// NAR hash and size of every store path, as the closure states them.
    nar_infos: BTreeMap<StorePath, (NarHash, u64)>,
    store_source: PathBuf,
    chown: Vec<ChownRule>,
    /// Rootfs paths (`/etc/passwd`) where `--allow-override` let an
    /// `--extra-files` member replace what the tool made.
    overridden: Vec<String>,
    /// The rootfs has the NixOS skeleton (it is not a bare store).
    has_skeleton: bool,
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
        let store_dir = closure.store_dir().relative().as_bytes().to_vec();
        let mut plan = Plan {
            generated: BTreeMap::new(),
            store_dir_key: tree_key(&store_dir),
            store_paths: closure.iter().map(|info| info.path.clone()).collect(),
            nar_infos: closure
                .iter()
                .map(|info| (info.path.clone(), (info.nar_hash, info.nar_size)))
                .collect(),
            store_source: inputs.store_source.clone(),
            chown: inputs.chown.clone(),
            overridden: Vec::new(),
            has_skeleton: inputs.nixos.is_some(),
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

        // The root is the one member without a name; everything else is placed.
        plan.generated.insert(
            Vec::new(),
            Planned {
                entry: Entry::directory(Vec::new(), DIR_MODE),
                origin: EntryOrigin::NixLayout,
            },
        );
        plan.place(
            Entry::directory(store_dir, STORE_DIR_MODE),
            EntryOrigin::NixLayout,
        )?;
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
                plan.place(entry, EntryOrigin::Skeleton)?;
            }
        }
        if let Some(dir) = &inputs.extra_files {
            plan.add_extra_files(dir, &inputs.allow_override)?;
        } else if let Some(path) = inputs.allow_override.first() {
            return Err(PlanError::AllowOverride {
                path: path.clone(),
                why: "there is no tree of extra files to replace anything",
            });
        }
        plan.check_chown_rules()?;
        Ok(plan)
    }

    /// Every `--chown` rule names a path in the rootfs and reaches neither
    /// the store nor Nix's database.
    fn check_chown_rules(&self) -> Result<(), PlanError> {
        let store_dir = self.store_dir_in_archive();
        for rule in &self.chown {
            let reached = if rule.reaches(&store_dir) {
                Some("the store")
            } else {
                ROOT_OWNED
                    .iter()
                    .find(|(path, _)| {
                        rule.reaches(path) && self.generated.contains_key(&tree_key(path))
                    })
                    .map(|(_, what)| *what)
            };
            if let Some(what) = reached {
                return Err(ChownRuleError::Protected {
                    rule: rule.to_string(),
                    what,
                }
                .into());
            }
            if !self.generated.contains_key(&tree_key(rule.path())) {
                return Err(ChownRuleError::NotInRootfs {
                    rule: rule.to_string(),
                    path: String::from_utf8_lossy(rule.path()).into_owned(),
                }
                .into());
            }
        }
        Ok(())
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
            self.place(Entry::directory(dir, DIR_MODE), EntryOrigin::NixLayout)?;
        }
        let mut entries = vec![
            Entry::symlink("nix/var/nix/gcroots/profiles", "/nix/var/nix/profiles"),
            Entry::symlink("nix/var/nix/profiles/system", "system-1-link"),
            Entry::symlink(
                "nix/var/nix/profiles/system-1-link",
                inputs.system.to_absolute(closure.store_dir()),
            ),
        ];
        match inputs.nix_db {
            NixDbMode::Sqlite => {
                let db = nixdb::render_sqlite_db(closure, inputs.registration_time)?;
                entries.push(Entry::inline_file("nix/var/nix/db/db.sqlite", db, 0o644));
                entries.push(Entry::inline_file(
                    "nix/var/nix/db/schema",
                    nixdb::SCHEMA_FILE_CONTENTS.as_bytes().to_vec(),
                    0o644,
                ));
            }
            NixDbMode::Registration => {
                let registration = nixdb::render_registration(closure);
                entries.push(Entry::inline_file(
                    "nix-path-registration",
                    registration.into_bytes(),
                    0o644,
                ));
            }
        }
        for entry in entries {
            self.place(entry, EntryOrigin::NixLayout)?;
        }
        Ok(())
    }

    /// Merges a host tree into the root, as `cp -r DIR/. ROOT/` would: a
    /// symlink given as DIR is followed, symlinks inside it stay symlinks.
    /// Directories merge (an existing one keeps its mode); see
    /// [`Plan::place`] for what a file or symlink may replace.
    fn add_extra_files(&mut self, dir: &Path, allow_override: &[String]) -> Result<(), PlanError> {
        if !dir.is_dir() {
            return Err(PlanError::ExtraFilesNotADirectory {
                dir: dir.to_path_buf(),
            });
        }
        let walk_error = |source| PlanError::ExtraFiles {
            dir: dir.to_path_buf(),
            source,
        };
        let root = if dir.is_symlink() {
            std::fs::canonicalize(dir).map_err(|source| {
                walk_error(TreeWalkError::Io {
                    path: dir.to_path_buf(),
                    source,
                })
            })?
        } else {
            dir.to_path_buf()
        };
        let mut overrides = BTreeMap::new();
        for path in allow_override {
            let relative = path.trim_start_matches('/').trim_end_matches('/');
            if let Err(why) = check_rootfs_path(relative.as_bytes()) {
                return Err(PlanError::AllowOverride {
                    path: path.clone(),
                    why,
                });
            }
            overrides.insert(tree_key(relative.as_bytes()), (path.clone(), false));
        }
        let entries = walk_tree(&root, b"").map_err(walk_error)?;
        for entry in entries.into_iter().skip(1) {
            let host = match &entry.kind {
                EntryKind::File {
                    content: Content::Disk(host),
                    ..
                } => host.clone(),
                _ => root.join(std::ffi::OsStr::from_bytes(&entry.path)),
            };
            let key = tree_key(&entry.path);
            let allowed = overrides.get_mut(&key).map(|(_, used)| used);
            self.place_extra(entry, host, allowed)?;
        }
        if let Some((path, _)) = overrides.into_values().find(|(_, used)| !used) {
            return Err(PlanError::AllowOverride {
                path,
                why: "no extra file replaces a file the tool makes there",
            });
        }
        Ok(())
    }

    /// Places one `--extra-files` member. `allowed` is the matching
    /// `--allow-override`, marked used when it lets the member replace a
    /// file the tool made.
    fn place_extra(
        &mut self,
        entry: Entry,
        host: PathBuf,
        allowed: Option<&mut bool>,
    ) -> Result<(), PlanError> {
        let origin = EntryOrigin::ExtraFile(host.clone());
        let key = checked_key(&entry, &origin)?;
        let conflict = |conflict| PlanError::ExtraFilesConflict {
            path: String::from_utf8_lossy(&entry.path).into_owned(),
            host: host.clone(),
            conflict,
        };
        let existing = self.generated.get(&key);
        if existing.is_some_and(|e| e.entry.is_directory()) && entry.is_directory() {
            // Directories merge; the tool's mode and owner stay.
            return Ok(());
        }
        if let Some(area) = self.never_replaced(&key) {
            return Err(conflict(area));
        }
        match existing {
            Some(existing) if existing.entry.is_directory() => {
                Err(conflict(Conflict::DirectoryWithFile))
            }
            Some(_) if entry.is_directory() => Err(conflict(Conflict::FileWithDirectory)),
            Some(existing) => match allowed {
                Some(used) => {
                    *used = true;
                    self.overridden.push(entry.display_path());
                    self.place(entry, origin)
                }
                None => Err(conflict(Conflict::ToolFile {
                    made_by: existing.origin.clone(),
                    path: String::from_utf8_lossy(&entry.path).into_owned(),
                })),
            },
            None => self.place(entry, origin),
        }
    }

    /// The part of the rootfs at `key` that nothing but the tool may fill:
    /// verify would reject the tarball otherwise.
    fn never_replaced(&self, key: &TreeKey) -> Option<Conflict> {
        let below = |area: &[u8]| {
            let area = tree_key(area);
            key.len() > area.len() && key.starts_with(&area)
        };
        if key.len() > self.store_dir_key.len() && key.starts_with(&self.store_dir_key) {
            Some(Conflict::StoreContents)
        } else if below(NIX_DB_DIR) || *key == tree_key(REGISTRATION_FILE) {
            Some(Conflict::NixDatabase)
        } else if below(PROFILES_DIR) {
            Some(Conflict::Profiles)
        } else {
            None
        }
    }

    /// The way every member but the root enters the plan: its path is
    /// checked ([`checked_key`]), then it is added with any missing parent directories (mode 0755), replacing
    /// what was there.
    fn place(&mut self, entry: Entry, origin: EntryOrigin) -> Result<(), PlanError> {
        let key = checked_key(&entry, &origin)?;
        for depth in 1..key.len() {
            let parent = &key[..depth];
            if !self.generated.contains_key(parent) {
                let planned = Planned {
                    entry: Entry::directory(parent.join(&b'/'), DIR_MODE),
                    origin: origin.clone(),
                };
                self.generated.insert(parent.to_vec(), planned);
            }
        }
        self.generated.insert(key, Planned { entry, origin });
        Ok(())
    }

    /// The NAR hash of a store path of the plan.
    pub fn nar_hash(&self, path: &StorePath) -> Option<NarHash> {
        self.nar_infos.get(path).map(|(hash, _)| *hash)
    }

    /// The NAR hash and size the closure states for a store path of the plan.
    pub fn nar_info(&self, path: &StorePath) -> Option<(NarHash, u64)> {
        self.nar_infos.get(path).copied()
    }

    /// A store path's member name in the archive (`nix/store/…-name`).
    pub fn store_path_in_archive(&self, path: &StorePath) -> Vec<u8> {
        let mut archive_path = self.store_dir_in_archive();
        archive_path.push(b'/');
        archive_path.extend_from_slice(path.basename().as_bytes());
        archive_path
    }

    /// A store path as the tarball names it (`/nix/store/…-name`).
    pub fn store_path_display(&self, path: &StorePath) -> String {
        format!(
            "/{}",
            String::from_utf8_lossy(&self.store_path_in_archive(path))
        )
    }

    /// Where a store path is read from on the host.
    pub fn host_path(&self, path: &StorePath) -> PathBuf {
        self.store_source.join(path.basename())
    }

    /// The store directory as it appears in the archive (`nix/store`).
    pub fn store_dir_in_archive(&self) -> Vec<u8> {
        self.store_dir_key.join(&b'/')
    }

    /// Entries of one store path, owned by root: no `--chown` rule reaches
    /// the store.
    fn walk_store_path(&self, path: &StorePath) -> Result<Vec<Entry>, PlanError> {
        let archive_path = self.store_path_in_archive(path);
        let host_path = self.host_path(path);
        walk_tree(&host_path, &archive_path).map_err(|source| PlanError::StorePath {
            path: host_path.display().to_string(),
            source,
        })
    }

    /// The store paths, in archive order.
    pub fn store_paths(&self) -> &[StorePath] {
        &self.store_paths
    }

    /// The archive cut into [`Segment`]s, in archive order: the members the
    /// tool makes before the store's contents (owners applied), each store
    /// path, then the members after it. Writers encode the segments
    /// independently and put them back in this order.
    pub fn segments(&self) -> Vec<Segment<'_>> {
        let mut segments = Vec::with_capacity(self.store_paths.len() + 2);
        let mut members = Vec::new();
        for planned in self.generated.values() {
            let mut entry = planned.entry.clone();
            for rule in &self.chown {
                rule.apply(&mut entry);
            }
            let is_store_dir = tree_key(&entry.path) == self.store_dir_key;
            members.push(entry);
            if is_store_dir {
                segments.push(Segment::Members(std::mem::take(&mut members)));
                segments.extend(self.store_paths.iter().map(Segment::StorePath));
            }
        }
        if !members.is_empty() {
            segments.push(Segment::Members(members));
        }
        segments
    }

    /// The members of a store path, in archive order, walked from the host
    /// store now. They are owned by root: no `--chown` rule reaches the store.
    pub fn store_path_entries(&self, path: &StorePath) -> Result<Vec<Entry>, PlanError> {
        self.walk_store_path(path)
    }

    /// Calls `sink` with every member in archive order, walking each store
    /// path when it comes (the tests' view of the whole archive).
    #[cfg(test)]
    pub fn for_each_entry<E>(&self, mut sink: impl FnMut(&Entry) -> Result<(), E>) -> Result<(), E>
    where
        E: From<PlanError>,
    {
        for segment in self.segments() {
            match segment {
                Segment::Members(entries) => entries.iter().try_for_each(&mut sink)?,
                Segment::StorePath(path) => self
                    .store_path_entries(path)?
                    .iter()
                    .try_for_each(&mut sink)?,
            }
        }
        Ok(())
    }

    /// Where `--allow-override` let `--extra-files` replace a file the tool
    /// made; the written tarball is verified before it is committed.
    pub fn overridden(&self) -> &[String] {
        &self.overridden
    }

    /// Whether the rootfs has the NixOS skeleton (otherwise it is a bare
    /// store, which `verify` checks with `bare`).
    pub fn has_skeleton(&self) -> bool {
        self.has_skeleton
    }

    /// The owner rules, for keys of anything derived from entries.
    pub fn chown_rules(&self) -> &[ChownRule] {
        &self.chown
    }
}

/// A run of consecutive members of the archive that is encoded as one
/// unit; see [`Plan::segments`].
#[derive(Debug)]
pub enum Segment<'a> {
    /// Members the tool makes, owners applied.
    Members(Vec<Entry>),
    /// A store path, walked when it is encoded
    /// ([`Plan::store_path_entries`]).
    StorePath(&'a StorePath),
}

/// Besides the store, what no `--chown` rule may reach where it exists:
/// Nix's database, and the user tables WSL reads as root (verify checks
/// their owners).
const ROOT_OWNED: [(&[u8], &str); 3] = [
    (NIX_DB_DIR, "Nix's database (/nix/var/nix/db)"),
    (b"etc/passwd", "/etc/passwd"),
    (b"etc/shadow", "/etc/shadow"),
];
/// Nix's database directory in the rootfs.
const NIX_DB_DIR: &[u8] = b"nix/var/nix/db";
/// The registration file `--nix-db registration` writes.
const REGISTRATION_FILE: &[u8] = b"nix-path-registration";
/// The profiles directory, with `system` in it.
const PROFILES_DIR: &[u8] = b"nix/var/nix/profiles";

/// The check every member the plan makes passes before a byte is written:
/// its path is a clean rootfs path. Hands back its tree key.
fn checked_key(entry: &Entry, origin: &EntryOrigin) -> Result<TreeKey, PlanError> {
    check_rootfs_path(&entry.path).map_err(|why| PlanError::BadRootfsPath {
        path: entry.display_path(),
        origin: origin.clone(),
        why,
    })?;
    Ok(tree_key(&entry.path))
}

/// Why `path` (rootfs-relative) is not a clean rootfs path: not empty, every
/// component non-empty, not `.` or `..`, no NUL, so that the path is
/// relative and names exactly one member below the root.
fn check_rootfs_path(path: &[u8]) -> Result<(), &'static str> {
    if path.is_empty() {
        return Err("the name is empty (only the root itself has no name)");
    }
    if path.contains(&0) {
        return Err("it contains a NUL byte");
    }
    if path.starts_with(b"/") {
        return Err("it is absolute after joining to the rootfs root");
    }
    for component in path.split(|&b| b == b'/') {
        match component {
            b"" => return Err("it has an empty component ('//' or a trailing '/')"),
            b"." | b".." => return Err("it has a '.' or '..' component"),
            _ => {}
        }
    }
    Ok(())
}

fn tree_key(path: &[u8]) -> TreeKey {
    if path.is_empty() {
        return Vec::new();
    }
    path.split(|&b| b == b'/').map(<[u8]>::to_vec).collect()
}

#[cfg(test)]
mod tests;
