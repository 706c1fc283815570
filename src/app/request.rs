//! The requests of `write` and `check --closure`: which system, what goes in
//! the rootfs, how it is compressed and where it and its manifest go, each
//! checked before anything is read or written.

use std::path::{Path, PathBuf};

use super::{default_threads, AppError, CheckSettings};
use crate::compress::{check_threads, CompressOptions, Compression};

use crate::output::{check_stdout_not_terminal, is_stdout};
use crate::overlap::{check_outputs, Named, Role};
use crate::plan::{ChownRule, NixDbMode, NixosFacts};
use crate::store::StoreDir;

/// Which skeleton the rootfs gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Skeleton {
    /// The facts' when given; defaults for a NixOS toplevel; otherwise an
    /// error.
    #[default]
    Auto,
    /// The NixOS skeleton, with defaults when there are no facts.
    Nixos,
    /// A bare store tarball.
    None,
}

/// The system a rootfs is made of: where its closure and facts are.
#[derive(Debug, Clone)]
pub struct SystemRequest {
    /// The closure file (any format `store::read_closure` detects).
    pub closure: PathBuf,
    /// The system (toplevel) store path; from the facts when `None`.
    pub system: Option<String>,
    /// A facts file from the NixOS module.
    pub facts: Option<PathBuf>,
    /// An icon for a skeleton of defaults (the facts name their own).
    pub icon: Option<PathBuf>,
    /// Which skeleton (the WSL files of the rootfs) it gets.
    pub skeleton: Skeleton,
}

/// What goes into the rootfs besides the closure, and how it is read.
#[derive(Debug, Clone)]
pub struct ContentRequest {
    /// Modification time of every entry, in seconds since 1970.
    pub mtime: u64,
    /// A directory whose tree is copied into the rootfs at `/`, if any.
    pub extra_files: Option<PathBuf>,
    /// (rootfs path, UID:GID) pairs; later ones win.
    pub chown: Vec<(String, String)>,
    /// Rootfs paths of files the tool makes (the skeleton's) that the extra files may replace.
    pub allow_override: Vec<String>,
    /// Whether the rootfs gets Nix's database, and how it is made.
    pub nix_db: NixDbMode,
    /// The logical store directory.
    pub store_dir: StoreDir,
    /// Read the store from ROOT/<store_dir>.
    pub store_root: Option<PathBuf>,
    /// The security checks the rootfs goes through.
    pub checks: CheckSettings,
}

impl ContentRequest {
    /// The `chown` rules parsed: bad ones are bad usage, found before
    /// anything is read.
    pub(super) fn chown_rules(&self) -> Result<Vec<ChownRule>, AppError> {
        Ok(self
            .chown
            .iter()
            .map(|(path, owner)| ChownRule::parse(path, owner))
            .collect::<Result<Vec<_>, _>>()?)
    }

    /// Where the store paths are read from.
    pub(super) fn store_source(&self) -> PathBuf {
        self.store_dir.source(self.store_root.as_deref())
    }
}

/// The compression flags; `None` defers to the NixOS module, then gzip.
#[derive(Debug, Clone, Copy, Default)]
pub struct CompressionRequest {
    /// The format; `None`: the NixOS module's, else gzip.
    pub compression: Option<Compression>,
    /// The format's level; `None`: its default.
    pub level: Option<u32>,
    /// Worker threads; `None`: one per core.
    pub threads: Option<usize>,
}

impl CompressionRequest {
    /// Checks what can be checked before the NixOS module's settings are
    /// known: the thread count, and the level when the format is given.
    pub(super) fn check_early(&self) -> Result<(), AppError> {
        let threads = self.threads.unwrap_or_else(default_threads);
        check_threads(threads).map_err(|source| AppError::Threads { threads, source })?;
        if let Some(compression) = self.compression {
            let options = CompressOptions {
                compression,
                level: self.level,
                threads,
            };
            options.validate().map_err(AppError::CompressOptions)?;
        }
        Ok(())
    }

    /// The options a run uses: a flag wins over the module's setting, which
    /// wins over gzip at its default level. Checked, so that bad values
    /// stop the run before anything is read.
    pub(super) fn options(&self, nixos: Option<&NixosFacts>) -> Result<CompressOptions, AppError> {
        let threads = self.threads.unwrap_or_else(default_threads);
        check_threads(threads).map_err(|source| AppError::Threads { threads, source })?;
        let compression = match (
            self.compression,
            nixos.and_then(|f| f.compression.as_deref()),
        ) {
            (Some(flag), _) => flag,
            (None, Some(from_module)) => {
                from_module
                    .parse()
                    .map_err(|source| AppError::FactsCompression {
                        value: from_module.to_owned(),
                        source,
                    })?
            }
            (None, None) => Compression::Gzip,
        };
        let options = CompressOptions {
            compression,
            level: self.level.or(nixos.and_then(|f| f.level)),
            threads,
        };
        options.validate().map_err(AppError::CompressOptions)?;
        Ok(options)
    }

    /// [`Self::options`] for a tarball written to `output`, whose suffix
    /// (see [`suffix_compression`]) chooses the compression when the flag
    /// does not, over the module's setting (whose level then applies only
    /// if it is for the same compression); a flag that contradicts the
    /// suffix, or a suffix of a compression not made here, is bad usage.
    pub(super) fn options_for(
        &self,
        nixos: Option<&NixosFacts>,
        output: &Path,
    ) -> Result<CompressOptions, AppError> {
        let by_suffix = match suffix_compression(output) {
            Suffix::Silent => return self.options(nixos),
            Suffix::Unsupported(compression) => {
                return Err(AppError::UnsupportedSuffix {
                    output: output.to_path_buf(),
                    compression,
                })
            }
            Suffix::Names(compression) => compression,
        };
        match self.compression {
            Some(flag) if flag != by_suffix => Err(AppError::SuffixContradicts {
                output: output.to_path_buf(),
                compression: flag.name(),
                suffix: by_suffix.name(),
            }),
            Some(_) => self.options(nixos),
            None => {
                let module = nixos.and_then(|f| f.compression.as_deref());
                if module.and_then(|m| m.parse().ok()) == Some(by_suffix) {
                    return self.options(nixos);
                }
                let request = CompressionRequest {
                    compression: Some(by_suffix),
                    ..*self
                };
                request.options(None)
            }
        }
    }
}

/// What an output's name says of its compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Suffix {
    /// Nothing (`.wsl`, any other name, standard output).
    Silent,
    Names(Compression),
    /// A compression not made here.
    Unsupported(&'static str),
}

/// The compression `output`'s last suffix names, as GNU tar's
/// `--auto-compress` reads it: `.tar.gz`/`.tgz`/`.gz` gzip, `.tar.xz`/`.txz`
/// xz, `.tar.zst`/`.tzst` zstd, `.tar` none. `.wsl` names none: WSL takes
/// any compression the module chose.
pub(super) fn suffix_compression(output: &Path) -> Suffix {
    let Some(extension) = output.extension().and_then(|e| e.to_str()) else {
        return Suffix::Silent;
    };
    match extension.to_ascii_lowercase().as_str() {
        "gz" | "tgz" | "taz" => Suffix::Names(Compression::Gzip),
        "xz" | "txz" => Suffix::Names(Compression::Xz),
        "zst" | "tzst" | "zstd" => Suffix::Names(Compression::Zstd),
        "tar" => Suffix::Names(Compression::None),
        "bz2" | "tbz" | "tbz2" | "tb2" => Suffix::Unsupported("bzip2"),
        "lz" => Suffix::Unsupported("lzip"),
        "lzma" | "tlz" => Suffix::Unsupported("lzma"),
        "lzo" | "tzo" => Suffix::Unsupported("lzop"),
        "lz4" => Suffix::Unsupported("lz4"),
        "z" => Suffix::Unsupported("compress"),
        _ => Suffix::Silent,
    }
}

/// Where a written rootfs goes.
#[derive(Debug, Clone)]
pub struct OutputRequest {
    /// The tarball, replaced atomically.
    pub output: PathBuf,
    /// The JSON manifest, committed with the tarball.
    pub manifest: Option<PathBuf>,
    /// The CycloneDX JSON SBOM (see [`crate::sbom`]), committed with the
    /// tarball.
    pub sbom: Option<PathBuf>,
    /// The segment cache directory (gzip only).
    pub cache: Option<PathBuf>,
    /// The cache's size limit, kept after each run; the default
    /// ([`crate::cache::DEFAULT_LIMIT_BYTES`]) when `None`.
    pub cache_limit: Option<u64>,
    /// Check every cache hit's contents before it is used (a cache that
    /// crossed a trust boundary; see [`crate::cache`]).
    pub cache_check_contents: bool,
    /// A Nix secret key file to sign the manifest with (see [`crate::sign`]);
    /// read, never copied anywhere.
    pub sign_key: Option<PathBuf>,
}

impl OutputRequest {
    /// Whether the tarball goes to standard output (`-o -`).
    pub fn to_stdout(&self) -> bool {
        is_stdout(&self.output)
    }

    /// Bad usage unless the destinations can be what they are: a manifest
    /// is a file; a tarball streamed to standard output goes to no
    /// terminal, and has no replaced files to verify before commit.
    pub(super) fn check_destinations(&self, allow_override: &[String]) -> Result<(), AppError> {
        if let Some(manifest) = self.manifest.as_deref().filter(|m| is_stdout(m)) {
            return Err(AppError::NotToStdout {
                file: super::NotStdout::Manifest,
                path: manifest.to_path_buf(),
            });
        }
        if self.to_stdout() {
            check_stdout_not_terminal().map_err(AppError::Destination)?;
            if !allow_override.is_empty() {
                return Err(AppError::OverrideToStream);
            }
        }
        Ok(())
    }

    /// Bad usage unless the outputs, `inputs` and the extra files are all
    /// different files (see [`crate::overlap`]).
    pub(super) fn check_distinct(
        &self,
        inputs: &[Named<'_>],
        extra_files: Option<&Path>,
    ) -> Result<(), AppError> {
        let mut outputs = vec![Named {
            role: Role::Output,
            path: &self.output,
        }];
        let mut inputs = inputs.to_vec();
        if let Some(key) = &self.sign_key {
            inputs.push(Named {
                role: Role::SigningKey,
                path: key,
            });
        }
        if let Some(manifest) = &self.manifest {
            outputs.push(Named {
                role: Role::Manifest,
                path: manifest,
            });
        }
        if let Some(sbom) = &self.sbom {
            outputs.push(Named {
                role: Role::Sbom,
                path: sbom,
            });
        }
        let trees: Vec<Named<'_>> = extra_files
            .iter()
            .map(|path| Named {
                role: Role::ExtraFiles,
                path,
            })
            .collect();
        Ok(check_outputs(&outputs, &inputs, &trees)?)
    }

    /// A signature goes into the manifest: bad usage to ask for one without.
    pub(super) fn check_signing(&self) -> Result<(), AppError> {
        match self.sign_key.is_some() && self.manifest.is_none() {
            true => Err(AppError::SignKeyWithoutManifest),
            false => Ok(()),
        }
    }
}
