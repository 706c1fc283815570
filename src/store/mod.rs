//! The Nix store as data: store paths, NAR hashes, path infos and closures.
//!
//! This is our own small counterpart of snix's `nix-compat` (which is GPL-3
//! and not published on crates.io): store paths are types, text is parsed at
//! the edge, and a [`Closure`] is only ever built validated: every path is
//! well formed and every reference points inside the closure.

mod dir;
pub(crate) mod hash;
pub(crate) mod nixbase32;
mod path;
mod read;

use std::collections::BTreeMap;

pub use dir::{StoreDir, StoreDirError, DEFAULT_STORE_DIR};
pub use hash::{HashError, NarHash};
pub use path::{parse_drv_name, StorePath, StorePathError, HASH_PART_LEN, MAX_NAME_LEN};
pub use read::{
    read_closure, registration_records, ClosureFormat, RegistrationLines, RegistrationRecords,
    MAX_REFERENCES,
};

/// What Nix knows about one valid store object; modelled on nix-compat's
/// `ExportedPathInfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathInfo {
    /// The store path.
    pub path: StorePath,
    /// SHA-256 of its NAR serialisation.
    pub nar_hash: NarHash,
    /// Bytes of its NAR serialisation.
    pub nar_size: u64,
    /// Sorted, and may include `path` itself (a self-reference).
    pub references: Vec<StorePath>,
    /// The derivation that built it, when known.
    pub deriver: Option<StorePath>,
    /// Content address assertion in Nix's text form (`fixed:r:sha256:…`,
    /// `text:sha256:…`), if the path is content-addressed.
    pub ca: Option<String>,
    /// Signatures as `<key name>:<base64>`.
    pub signatures: Vec<String>,
}

/// Why a set of path infos is not a usable closure.
#[derive(Debug, thiserror::Error)]
pub enum ClosureError {
    /// The input is not one of the closure formats, or breaks its rules.
    #[error("closure input {source_name}: {message}")]
    Malformed {
        /// The input (usually its file name).
        source_name: String,
        /// What is wrong.
        message: String,
    },
    #[error("closure input {source_name}: {path}: {source}")]
    /// A store path that is not one.
    BadStorePath {
        /// The input.
        source_name: String,
        /// The path as given.
        path: String,
        /// What is wrong with it.
        source: StorePathError,
    },
    #[error("closure input {source_name}: {path}: narHash: {source}")]
    /// A NAR hash that is not one.
    BadHash {
        /// The input.
        source_name: String,
        /// The store path it is for.
        path: String,
        /// What is wrong with it.
        source: HashError,
    },
    #[error(
        "closure input {source_name}: {path} is listed but not valid in the store it was read from"
    )]
    /// A path the store it was read from does not hold.
    InvalidPath {
        /// The input.
        source_name: String,
        /// The store path.
        path: String,
    },
    #[error("closure input {source_name}: {path} is listed twice with different metadata")]
    /// A path listed twice, differently.
    Conflicting {
        /// The input.
        source_name: String,
        /// The store path.
        path: String,
    },
    #[error(
        "closure is not closed: {referrer} references {reference}, which is not in the closure"
    )]
    /// A reference to a path outside the closure.
    DanglingReference {
        /// The path that references it.
        referrer: String,
        /// The path referenced.
        reference: String,
    },
    #[error("{path} is not in the closure")]
    /// A path asked for that the closure lacks.
    NotInClosure {
        /// The store path.
        path: String,
    },
    #[error("closure input {source_name} lists no store paths")]
    /// No store path at all.
    Empty {
        /// The input.
        source_name: String,
    },
}

/// A validated, self-contained set of store paths, sorted by basename.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closure {
    store_dir: StoreDir,
    paths: BTreeMap<StorePath, PathInfo>,
}

impl Closure {
    /// Builds a closure, checking that every reference is inside it.
    pub fn new(
        store_dir: &StoreDir,
        infos: impl IntoIterator<Item = PathInfo>,
    ) -> Result<Self, ClosureError> {
        let mut paths = BTreeMap::new();
        for mut info in infos {
            info.references.sort();
            info.references.dedup();
            paths.insert(info.path.clone(), info);
        }
        for info in paths.values() {
            if let Some(missing) = info.references.iter().find(|r| !paths.contains_key(*r)) {
                return Err(ClosureError::DanglingReference {
                    referrer: info.path.to_absolute(store_dir),
                    reference: missing.to_absolute(store_dir),
                });
            }
        }
        Ok(Closure {
            store_dir: store_dir.clone(),
            paths,
        })
    }

    /// The logical store directory.
    pub fn store_dir(&self) -> &StoreDir {
        &self.store_dir
    }

    /// Path infos in basename order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &PathInfo> {
        self.paths.values()
    }

    /// How many store paths.
    pub fn len(&self) -> usize {
        self.paths.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    /// The path info of `path`, if the closure has it.
    pub fn get(&self, path: &StorePath) -> Option<&PathInfo> {
        self.paths.get(path)
    }

    /// Whether the closure has `path`.
    pub fn contains(&self, path: &StorePath) -> bool {
        self.paths.contains_key(path)
    }

    /// Sum of the NAR sizes: the bytes of file content and structure to read.
    pub fn total_nar_size(&self) -> u64 {
        self.paths.values().map(|p| p.nar_size).sum()
    }

    /// The closure without what depends on the machine it was read from:
    /// derivers (absent from `exportReferencesGraph`, present in
    /// `nix path-info`) and signatures (present only for substituted paths).
    /// What is left (paths, NAR hashes and sizes, references, content
    /// addresses) is the same wherever the closure is read.
    pub fn without_host_metadata(&self) -> Closure {
        let paths = self
            .paths
            .iter()
            .map(|(path, info)| {
                let info = PathInfo {
                    deriver: None,
                    signatures: Vec::new(),
                    ..info.clone()
                };
                (path.clone(), info)
            })
            .collect();
        Closure {
            store_dir: self.store_dir.clone(),
            paths,
        }
    }

    /// Fails with an error naming `path` unless it is in the closure.
    pub fn require(&self, path: &StorePath) -> Result<&PathInfo, ClosureError> {
        self.get(path).ok_or_else(|| ClosureError::NotInClosure {
            path: path.to_absolute(&self.store_dir),
        })
    }
}
