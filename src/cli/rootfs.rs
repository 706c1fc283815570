//! The flag groups the making commands share: the closure and system, what
//! else goes into the rootfs, where the output goes and how it is
//! compressed; and their translation into the library's requests.

use std::path::{Path, PathBuf};

use camino::Utf8PathBuf;
use clap::{Args, ValueEnum};

use wsl_tarball::app::{
    CompressionRequest, ContentRequest, NixDbMode, OutputRequest, Skeleton, SystemRequest,
};
use wsl_tarball::compress::Compression;
use wsl_tarball::store::{StoreDir, DEFAULT_STORE_DIR};

use super::CheckFlags;
use crate::exit::Failure;

/// The closure and system a rootfs is made of (`write`, `check`).
#[derive(Args)]
pub struct SystemArgs {
    /// Add the NixOS skeleton (/etc from the system's etc tree, passwd, group,
    /// shadow without hashes, /sbin/init, /bin/sh, /usr/bin/env,
    /// /etc/wsl-distribution.conf) so the rootfs boots under WSL. The default
    /// when --system is a NixOS toplevel (it has init, etc and sw).
    #[arg(long, help_heading = "Rootfs")]
    pub nixos: bool,

    /// Write a bare store tarball: the closure and Nix's database, no
    /// skeleton. WSL cannot boot it; `verify --bare` accepts it.
    #[arg(long, conflicts_with_all = ["facts", "nixos"], help_heading = "Rootfs")]
    pub no_skeleton: bool,

    /// Closure metadata: exportReferencesGraph JSON, `nix path-info --json -r`
    /// output, or a closureInfo `registration` file.
    #[arg(long, value_name = "FILE", required = true, help_heading = "Nix")]
    pub closure: Option<PathBuf>,

    /// The NixOS system (toplevel) store path, or a link to it such as
    /// `result` (followed as Nix follows it); the `system` profile points at
    /// it. It must be in the closure. Taken from --facts when not given.
    #[arg(
        long,
        value_name = "STORE_PATH",
        value_parser = parse_system,
        required_unless_present = "facts",
        help_heading = "Nix"
    )]
    pub system: Option<Utf8PathBuf>,

    /// A facts file from the NixOS module (system.build.wslTarballFacts): the
    /// system, its users, /sbin/init, /bin links and wsl-distribution.conf
    /// settings. Implies --nixos.
    #[arg(long, value_name = "FILE", help_heading = "Nix")]
    pub facts: Option<PathBuf>,

    /// An .ico file (at most 1 MiB, WSL's limit) for the Start menu
    /// shortcut of a skeleton of defaults: placed at /usr/lib/wsl/nixos.ico
    /// (0644 root) and named by shortcut.icon in /etc/wsl-distribution.conf.
    /// With the module, set wsl.tarball.icon instead.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with_all = ["facts", "no_skeleton"],
        help_heading = "Rootfs"
    )]
    pub icon: Option<PathBuf>,
}

impl SystemArgs {
    /// The request, for a closure that clap made sure is given.
    pub fn request(&self, closure: &Path) -> SystemRequest {
        SystemRequest {
            closure: closure.to_path_buf(),
            system: self.system.as_ref().map(|s| s.to_string()),
            facts: self.facts.clone(),
            icon: self.icon.clone(),
            skeleton: if self.no_skeleton {
                Skeleton::None
            } else if self.nixos {
                Skeleton::Nixos
            } else {
                Skeleton::Auto
            },
        }
    }
}

/// Where a written tarball goes (`write`, `build`).
#[derive(Args)]
pub struct OutputArgs {
    /// Where to write the tarball. Written to a temporary file beside it and
    /// renamed on success; an existing file is replaced only then. A symlink
    /// is written through (its target is replaced); a fifo, device or
    /// dangling symlink is refused.
    ///
    /// `-` (or /dev/stdout) streams it to standard output, which must not be
    /// a terminal; its last bytes are sent only once every check passed, so
    /// a failed run leaves a stream cut short, exits non-zero and writes no
    /// --manifest.
    ///
    /// Unless --compression is given, the suffix chooses the compression:
    /// .tar.gz/.tgz gzip, .tar.xz/.txz xz, .tar.zst/.tzst zstd, .tar none;
    /// .wsl and other names the NixOS module's setting, else gzip. A
    /// --compression that contradicts the suffix, or a suffix of another
    /// compression (.tar.bz2), is a usage error.
    #[arg(
        short,
        long,
        value_name = "FILE",
        default_value = "nixos.wsl",
        help_heading = "Output"
    )]
    pub output: PathBuf,

    /// Also write a JSON manifest to FILE: tool version, settings, system,
    /// every store path with its narHash and narSize, the tarball's sha256
    /// and size, and the security-check outcome.
    #[arg(long, value_name = "FILE", help_heading = "Output")]
    pub manifest: Option<PathBuf>,

    /// Also write a CycloneDX 1.5 JSON SBOM to FILE: a component per store
    /// path (name, version, nix:store_path and NAR hash and size), the
    /// dependencies from the references, and the tarball with its sha256.
    /// Byte-reproducible; committed together with the tarball.
    #[arg(long, value_name = "FILE", help_heading = "Output")]
    pub sbom: Option<PathBuf>,

    /// Keep each store path's compressed bytes and scan findings in DIR
    /// (gzip only) and reuse them: a rebuild after a few store paths changed
    /// reads, scans and compresses only those, and the output is identical
    /// to a build without the cache. `build` uses $XDG_CACHE_HOME/wsl-tarball
    /// (else ~/.cache/wsl-tarball) by default.
    #[arg(long, value_name = "DIR", help_heading = "Output")]
    pub cache: Option<PathBuf>,

    /// After the tarball is written, remove the least recently used cache
    /// segments until the cache holds at most SIZE: bytes, or K, M, G, T
    /// (powers of 1024), such as 500M. Default 10G.
    #[arg(
        long,
        value_name = "SIZE",
        value_parser = parse_cache_limit,
        help_heading = "Output"
    )]
    pub cache_limit: Option<u64>,

    /// Trust no hit of the cache without checking it (for a cache restored
    /// from elsewhere, such as a CI cache): inflate it, compare it with the
    /// store path's files and modes, recompute its NAR hash against the
    /// closure's and scan it again, as `nix-store --verify --check-contents`
    /// rehashes the store. A hit that fails is compressed afresh and
    /// replaced. Costs inflating, hashing and scanning every hit.
    #[arg(long, help_heading = "Output")]
    pub cache_check_contents: bool,

    /// Sign the manifest (needs --manifest; for a bundle, its manifest) with
    /// this Nix secret key file, as `nix key generate-secret` writes it. The
    /// file is only read, never copied into the store or the output.
    #[arg(long, value_name = "FILE", help_heading = "Output")]
    pub sign_key: Option<PathBuf>,
}

/// `--system`: a path, not an empty word.
pub(super) fn parse_system(text: &str) -> Result<Utf8PathBuf, &'static str> {
    if text.is_empty() {
        return Err("it is empty (an unset shell variable?); give the system's store path, or a link to it such as result");
    }
    Ok(Utf8PathBuf::from(text))
}

/// The environment variable that sets the default modification time.
const SOURCE_DATE_EPOCH: &str = "SOURCE_DATE_EPOCH";

/// `--mtime` when given; else SOURCE_DATE_EPOCH when set, else 1. A set
/// variable that is no number of seconds is bad usage, named as the
/// variable (exit status 2), as the reproducible-builds specification asks.
pub fn mtime(flag: Option<u64>) -> Result<u64, Failure> {
    if let Some(seconds) = flag {
        return Ok(seconds);
    }
    let Some(value) = std::env::var_os(SOURCE_DATE_EPOCH) else {
        return Ok(1);
    };
    let problem = if value.is_empty() {
        "is set but empty".to_owned()
    } else {
        match value.to_str().map(str::parse::<u64>) {
            Some(Ok(seconds)) => return Ok(seconds),
            _ => format!(
                "is \"{}\", not a whole number of seconds since 1970",
                wsl_tarball::escape::escape_bytes(value.as_encoded_bytes())
            ),
        }
    };
    Err(Failure::trouble(anyhow::anyhow!(
        "{SOURCE_DATE_EPOCH} {problem}; unset it, or set it to the seconds since 1970 that every entry's modification time should be"
    )))
}

fn parse_cache_limit(text: &str) -> Result<u64, wsl_tarball::app::BadSize> {
    wsl_tarball::app::parse_size(text)
}

impl OutputArgs {
    /// Bad usage: `--json` prints the report on stdout, where `-o -`
    /// streams the tarball.
    pub fn check_json(&self, checks: &CheckFlags) -> Result<(), Failure> {
        if checks.json && self.request().to_stdout() {
            return Err(Failure::trouble(anyhow::anyhow!(
                "--json prints the security report on standard output, where -o {} streams the tarball: leave out one of them",
                self.output.display()
            )));
        }
        Ok(())
    }

    pub fn request(&self) -> OutputRequest {
        OutputRequest {
            output: self.output.clone(),
            manifest: self.manifest.clone(),
            sbom: self.sbom.clone(),
            cache: self.cache.clone(),
            cache_limit: self.cache_limit,
            cache_check_contents: self.cache_check_contents,
            sign_key: self.sign_key.clone(),
        }
    }
}

/// What goes into the rootfs besides the closure (`write`, `check`, `build`).
#[derive(Args)]
pub struct ContentArgs {
    /// Modification time of every entry, in seconds since 1970. Default:
    /// $SOURCE_DATE_EPOCH when set, else 1.
    #[arg(long, value_name = "SECONDS", help_heading = "Rootfs")]
    pub mtime: Option<u64>,

    /// Copy the contents of this directory to the root of the rootfs, as
    /// upstream's tarballBuilder does.
    #[arg(long, value_name = "DIR", help_heading = "Rootfs")]
    pub extra_files: Option<PathBuf>,

    /// Give PATH (a rootfs path such as /home/nixos; the leading slash is optional) and everything below it
    /// the numeric owner UID:GID. May be repeated; later ones win.
    #[arg(
        long,
        num_args = 2,
        value_names = ["PATH", "UID:GID"],
        action = clap::ArgAction::Append,
        help_heading = "Rootfs"
    )]
    pub chown: Vec<String>,

    /// Let --extra-files replace the file the tool makes at PATH (a rootfs
    /// path such as /etc/wsl.conf or /bin/init). Repeatable. The store, Nix's
    /// database and /nix/var/nix/profiles can never be replaced.
    #[arg(long, value_name = "PATH", help_heading = "Rootfs")]
    pub allow_override: Vec<String>,

    /// How Nix's database ships: `sqlite` writes /nix/var/nix/db/db.sqlite so
    /// `nix` works at first boot; `registration` writes /nix-path-registration
    /// for `nix-store --load-db` instead.
    #[arg(long, value_enum, default_value_t = NixDbArg::Sqlite, help_heading = "Nix")]
    pub nix_db: NixDbArg,

    /// The logical store directory the closure's paths live in.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_STORE_DIR, help_heading = "Nix")]
    pub store_dir: StoreDir,

    /// Read the store from DIR/<store-dir> instead of <store-dir>, as with
    /// `nix --store local?root=DIR`. The paths inside the tarball do not change.
    #[arg(long, value_name = "DIR", help_heading = "Nix")]
    pub store_root: Option<PathBuf>,
}

impl ContentArgs {
    /// The request; an unusable SOURCE_DATE_EPOCH is bad usage.
    pub fn request(&self, checks: &CheckFlags) -> Result<ContentRequest, Failure> {
        Ok(ContentRequest {
            mtime: mtime(self.mtime)?,
            extra_files: self.extra_files.clone(),
            chown: self
                .chown
                .chunks(2)
                .map(|pair| (pair[0].clone(), pair[1].clone()))
                .collect(),
            allow_override: self.allow_override.clone(),
            nix_db: match self.nix_db {
                NixDbArg::Sqlite => NixDbMode::Sqlite,
                NixDbArg::Registration => NixDbMode::Registration,
            },
            store_dir: self.store_dir.clone(),
            store_root: self.store_root.clone(),
            checks: checks.settings(),
        })
    }
}

#[derive(Args)]
pub struct CompressionArgs {
    /// Compression of the tarball. gzip is the only format WSL officially
    /// supports, and the default; xz works with `wsl --import`; zstd is NOT
    /// officially supported by WSL; none writes a plain tar.
    #[arg(long, value_enum, help_heading = "Compression")]
    pub compression: Option<CompressionArg>,

    /// Compression level (gzip 1-9, default 6; xz 0-9, default 6; zstd 1-19,
    /// default 3).
    #[arg(long, value_name = "N", help_heading = "Compression")]
    pub level: Option<u32>,

    /// Threads that walk, read, scan, hash and compress, 1 to 4 × the number
    /// of cores; the main thread and one output thread only write. The
    /// output is the same for every value. Defaults to the number of cores.
    #[arg(long, value_name = "N", help_heading = "Compression")]
    pub threads: Option<usize>,
}

impl CompressionArgs {
    pub fn request(&self) -> CompressionRequest {
        CompressionRequest {
            compression: self.compression.map(|c| match c {
                CompressionArg::Gzip => Compression::Gzip,
                CompressionArg::Xz => Compression::Xz,
                CompressionArg::Zstd => Compression::Zstd,
                CompressionArg::None => Compression::None,
            }),
            level: self.level,
            threads: self.threads,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum CompressionArg {
    Gzip,
    Xz,
    Zstd,
    None,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum NixDbArg {
    Sqlite,
    Registration,
}
