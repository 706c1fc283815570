//! The command line's grammar: clap's argument structs, their help, and
//! their translation into the library's requests ([`wsl_tarball::app`]).
//! Bin-only; main.rs dispatches on it.

use std::path::{Path, PathBuf};

use camino::Utf8PathBuf;
use clap::{Args, Parser, Subcommand, ValueEnum};

use wsl_tarball::app::{
    CheckSettings, CompressionRequest, ContentRequest, NixDbMode, OutputRequest, Skeleton,
    SystemRequest,
};
use wsl_tarball::compress::Compression;
use wsl_tarball::store::DEFAULT_STORE_DIR;

use crate::exit::Trouble;

mod publish;
pub use publish::PublishArgs;

/// The exit statuses of every command, shown after the top-level help
/// (each command's help shows its own).
pub const EXIT_STATUS: &str = "\
Exit status:
  0  success; the tarballs are identical (diff)
  1  the tarballs differ (diff); verification failed (verify); write,
     build, delta, apply or sign failed
  2  trouble: bad usage, an unreadable or malformed input (inspect,
     verify, diff, check; bad flag values for every command)
  3  error-severity security findings (write, build, delta, check)";

/// `write`'s exit statuses, after its help.
const WRITE_STATUS: &str = "\
Exit status:
  0  the tarball was written
  1  an input is wrong or unreadable, or writing failed; nothing was
     replaced
  2  bad usage (a bad flag value), found before anything is read
  3  error-severity security findings; the tarball was not written";

const BUILD_STATUS: &str = "\
Exit status:
  0  the tarball (or the update bundle) was written
  1  Nix failed, the flake lacks the host, an input is wrong, or writing
     failed; nothing was replaced
  2  bad usage (a bad flag value), found before Nix runs
  3  error-severity security findings; nothing was written";

const CHECK_STATUS: &str = "\
Exit status:
  0  no error-severity finding (warnings are printed)
  2  trouble: bad usage, or an input that cannot be read or is malformed
  3  error-severity security findings";

const INSPECT_STATUS: &str = "\
Exit status:
  0  the summary was printed
  2  trouble: bad usage, or a file that cannot be read or is malformed";

const VERIFY_STATUS: &str = "\
Exit status:
  0  every check passed
  1  verification failed; the failures are listed
  2  trouble: bad usage, or a file that cannot be read or is malformed";

const DIFF_STATUS: &str = "\
Exit status:
  0  A and B are identical
  1  A and B differ
  2  trouble: bad usage, or a file that cannot be read or is malformed";

const DELTA_STATUS: &str = "\
Exit status:
  0  the update bundle was written
  1  an input is wrong or unreadable, or writing failed; nothing was
     replaced
  2  bad usage (a bad flag value), found before anything is read
  3  error-severity security findings; the bundle was not written";

const APPLY_STATUS: &str = "\
Exit status:
  0  the bundle was applied, or the system already runs it
  1  the bundle does not fit this system, or importing or activating
     it failed
  2  bad usage (a bad flag value), found before the bundle is read";

const SIGN_STATUS: &str = "\
Exit status:
  0  the file was signed
  1  the file does not match its manifest, a bundle fails its checks,
     or writing failed; nothing was replaced
  2  bad usage (a bad flag value or key file), found before the file is
     read";

const PUBLISH_STATUS: &str = "\
Exit status:
  0  the release directory was written
  1  an image, manifest, SBOM or the previous DistributionInfo.json was
     refused (named in the message), or writing failed; DIR was not created
  2  bad usage: a bad flavour, name, friendly name, URL or key file, or DIR
     exists and is not empty";

const PRINT_STATUS: &str = "\
Exit status:
  0  it was printed
  2  bad usage";

/// Stream a NixOS closure into a byte-reproducible WSL rootfs tarball.
///
/// wsl-tarball reads a system closure from Nix's own metadata and writes the
/// `nixos.wsl` file that `wsl --import` (or a double-click) installs. It reads
/// straight out of /nix/store: no root, no staging copy, all cores, and the
/// same bytes on every run.
#[derive(Parser)]
#[command(
    name = "wsl-tarball",
    version = crate::version(),
    max_term_width = 100,
    after_help = EXIT_STATUS
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Write a tarball from a closure file and a system path.
    #[command(verbatim_doc_comment, after_help = WRITE_STATUS,
        about = "Write a tarball from a closure file and a system path")]
    ///
    /// The closure file may be any of: the JSON that `exportReferencesGraph`
    /// writes (the whole .attrs.json or its array), the output of
    /// `nix path-info --json -r` in any Nix version's shape, or closureInfo's
    /// `registration` file. The format is detected.
    ///
    /// A NixOS toplevel gets the WSL skeleton with defaults (root only); for
    /// the system's users, /bin links and distribution settings give the
    /// module's facts (--facts). A bare store tarball needs --no-skeleton.
    ///
    /// Example:
    ///   nix path-info --json -r /run/current-system > closure.json
    ///   wsl-tarball write --closure closure.json --system /run/current-system -o nixos.wsl
    Write(WriteArgs),

    /// Build a NixOS configuration from a flake and write its tarball.
    ///
    /// Runs, as the calling user (no sudo):
    ///   nix eval REF#nixosConfigurations (which hosts, when HOST is not given)
    ///   nix eval REF#nixosConfigurations (has HOST wslTarballFacts? else which hosts)
    ///   nix build --no-link --json REF#nixosConfigurations.HOST.config.system.build.wslTarballFacts
    ///   nix path-info --json [--json-format 1] -r SYSTEM (the flag where Nix has it)
    /// then writes the tarball with the NixOS skeleton, like `write --facts`.
    /// Hosts without the wsl-tarball module fall back to
    /// config.system.build.toplevel and a skeleton of defaults.
    #[command(verbatim_doc_comment, after_help = BUILD_STATUS,
        about = "Build a NixOS configuration from a flake and write its tarball")]
    Build(BuildArgs),

    /// Run the security checks without writing a tarball.
    ///
    /// Either on an existing tarball (gzip, xz, zstd or plain tar):
    ///   wsl-tarball check nixos.wsl
    /// or on what `write` would produce, with write's rootfs flags:
    ///   wsl-tarball check --closure closure.json --system /nix/store/…-nixos-system-…
    #[command(
        verbatim_doc_comment,
        after_help = CHECK_STATUS,
        about = "Run the security checks on a tarball, or on what write would write",
        override_usage = "wsl-tarball check [OPTIONS] <FILE>\n       \
            wsl-tarball check [OPTIONS] --closure <FILE> (--system <STORE_PATH> | --facts <FILE>)",
        arg_required_else_help = true,
        mut_arg("closure", |arg| arg.required(false).required_unless_present("tarball")),
        mut_arg("system", |arg| arg.required_unless_present_any(["facts", "tarball"]))
    )]
    Check(CheckArgs),

    /// Summarise a tarball or an update bundle.
    ///
    /// For a tarball: compression, counts, the largest store paths, the
    /// system, the skeleton files, whether the security checks ran.
    #[command(after_help = INSPECT_STATUS)]
    Inspect(InspectArgs),

    /// Check a tarball or an update bundle offline, without Nix.
    ///
    /// For a tarball: tar structure, no hard links,
    /// owners and modes, every store path's NAR hash against the Nix
    /// database inside it, references, the system profile and the WSL
    /// skeleton's files (a tarball without one fails unless --bare), and
    /// what Microsoft's validator for WSL distributions checks (its errors
    /// fail, its warnings are listed). Exits 1 with the list of failures.
    ///
    /// For a channel's DistributionInfo.json (as `publish` writes it): WSL's
    /// manifest rules, the SHA-256 of each image it lists that is beside
    /// it, and with --trusted-key its signature (DistributionInfo.json.sig).
    #[command(after_help = VERIFY_STATUS)]
    Verify(VerifyArgs),

    /// Explain why two tarballs, manifests or closures differ.
    ///
    /// For two tarballs: store paths added, removed and changed; every member
    /// added, removed and changed, grouped by store path, with the fields
    /// that differ and unified diffs of small text files (the text is
    /// capped, --json has everything); then the first differing member.
    /// Exits 0 when identical, 1 when they differ.
    /// With a `--manifest` JSON or a closure file on either side, lists the
    /// store paths added, removed and changed.
    #[command(after_help = DIFF_STATUS)]
    Diff(DiffArgs),

    /// Write an update bundle: only the store paths of the new closure that
    /// OLD lacks, for a colleague whose distribution was imported from OLD.
    ///
    /// OLD is an earlier tarball, its `--manifest` JSON, or a closure file.
    /// The bundle holds the paths in `nix-store --export` format, a manifest
    /// and an `apply` script. Example:
    ///   wsl-tarball delta --from old.wsl --closure closure.json \
    ///       --system result -o update.wsl-delta
    #[command(verbatim_doc_comment, after_help = DELTA_STATUS,
        about = "Write an update bundle of the store paths an earlier system lacks")]
    Delta(DeltaArgs),

    /// Apply an update bundle inside the distribution.
    ///
    /// Checks that it fits the running system, imports and checks every
    /// path, sets the system profile and runs switch-to-configuration boot
    /// (or switch).
    #[command(after_help = APPLY_STATUS)]
    Apply(ApplyArgs),

    /// Sign an image's manifest or an update bundle after the fact.
    ///
    /// With a Nix secret key (`nix key generate-secret --key-name team-1`),
    /// as `--sign-key` signs at write time, with the same signature:
    ///   wsl-tarball sign nixos.wsl --manifest nixos.wsl.json --key team-1.sec
    ///   wsl-tarball sign update.wsl-delta --key team-1.sec
    /// The file is checked first (the image against its manifest; a bundle
    /// as `verify` checks it). The output is replaced atomically.
    #[command(verbatim_doc_comment, after_help = SIGN_STATUS,
        about = "Sign an image's manifest or an update bundle after the fact")]
    Sign(SignArgs),

    /// Write the release directory of a team's WSL install channel.
    ///
    /// From images `write --manifest` wrote (gzip or xz, at most one per
    /// architecture, each passing `verify`): DIR gets the images as
    /// NAME.ARCH.wsl, their manifests and SBOMs, DistributionInfo.json (the
    /// manifest `wsl --install` reads; with --previous, earlier versions
    /// stay listed for rollback), SHA256SUMS and install-channel.ps1, which
    /// registers BASE_URL/DistributionInfo.json with WSL. Example:
    ///   wsl-tarball publish --flavour myteam-nixos \
    ///       --base-url https://example.com/channel/ --out release \
    ///       x86_64/nixos.wsl.json aarch64/nixos.wsl.json
    #[command(verbatim_doc_comment, after_help = PUBLISH_STATUS,
        about = "Write the release directory of a team's WSL install channel")]
    Publish(PublishArgs),

    /// Print a shell's completion script on stdout.
    ///
    /// For example, for bash:
    ///   wsl-tarball completions bash > ~/.local/share/bash-completion/completions/wsl-tarball
    #[command(
        verbatim_doc_comment,
        about = "Print a shell's completion script",
        after_help = PRINT_STATUS
    )]
    Completions(CompletionsArgs),

    /// Print a manual page.
    ///
    /// In roff, on stdout: `wsl-tarball man | man -l -` for wsl-tarball(1),
    /// `wsl-tarball man write` for wsl-tarball-write(1).
    #[command(after_help = PRINT_STATUS)]
    Man(ManArgs),
}

#[derive(Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

#[derive(Args)]
pub struct ManArgs {
    /// The command whose page to print; without one, wsl-tarball(1).
    #[arg(value_name = "COMMAND")]
    pub command: Option<String>,
}

#[derive(Args)]
pub struct DeltaArgs {
    /// What the colleague has: an earlier tarball, its `--manifest` JSON or
    /// a closure file.
    #[arg(long, value_name = "OLD")]
    pub from: PathBuf,

    /// The new system's closure, as for `write`.
    #[arg(long, value_name = "FILE")]
    pub closure: PathBuf,

    /// The new system (toplevel) store path, or a link to it such as
    /// `result`; must be in the closure.
    #[arg(long, value_name = "STORE_PATH", value_parser = parse_system)]
    pub system: Utf8PathBuf,

    /// Where to write the bundle (atomically, as for `write`).
    #[arg(short, long, value_name = "FILE", default_value = "update.wsl-delta")]
    pub output: PathBuf,

    #[command(flatten)]
    pub compression: CompressionArgs,

    /// Modification time of the bundle's members, in seconds since 1970.
    /// Default: $SOURCE_DATE_EPOCH when set, else 1.
    #[arg(long, value_name = "SECONDS")]
    pub mtime: Option<u64>,

    /// Read the store from DIR/nix/store, as with `nix --store local?root=DIR`.
    #[arg(long, value_name = "DIR")]
    pub store_root: Option<PathBuf>,

    /// Sign the bundle's manifest with this Nix secret key file (as
    /// `nix key generate-secret` writes it); only read, never copied.
    #[arg(long, value_name = "FILE")]
    pub sign_key: Option<PathBuf>,

    #[command(flatten)]
    pub checks: CheckFlags,

    /// Print nothing but errors and error-severity security findings.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Args)]
pub struct ApplyArgs {
    /// The bundle `wsl-tarball delta` wrote.
    #[arg(value_name = "BUNDLE")]
    pub bundle: PathBuf,

    /// Activate now (switch-to-configuration switch) instead of at the
    /// distribution's next start (boot).
    #[arg(long)]
    pub switch: bool,

    /// Work on the NixOS root at DIR (Nix runs with --store local?root=DIR
    /// and DIR's system profile); for tests and images. Needs --dry-activate.
    #[arg(long, value_name = "DIR", requires = "dry_activate")]
    pub root: Option<PathBuf>,

    /// Print the activation command instead of running it.
    #[arg(long)]
    pub dry_activate: bool,

    /// Apply a bundle that is not signed by a key in Nix's
    /// trusted-public-keys (unsigned, unknown key or a bad signature);
    /// says so loudly. The bundle's other checks still run.
    #[arg(long)]
    pub allow_unsigned: bool,
}

#[derive(Args)]
pub struct SignArgs {
    /// An image (with --manifest, the manifest `write --manifest` wrote for
    /// it) or an update bundle.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// The Nix secret key file, as `nix key generate-secret` writes it;
    /// only read.
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,

    /// For an image: its manifest, which is signed (the file's sha256 and
    /// size must be the ones it records).
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,

    /// For an image: the SBOM its manifest records, when it is not beside
    /// the manifest under its recorded name; its sha256 must be the
    /// manifest's sbom.sha256.
    #[arg(long, value_name = "FILE", requires = "manifest")]
    pub sbom: Option<PathBuf>,

    /// Where to write the signed manifest (image) or bundle; by default the
    /// manifest or bundle is replaced, atomically.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Args)]
pub struct InspectArgs {
    /// The tarball (gzip, xz, zstd or plain tar; detected); `-` or a pipe
    /// is read as it streams.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,

    /// How many of the largest store paths to list.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub top: usize,

    /// The manifest `write --manifest` wrote for this tarball; its security
    /// check outcome is reported (otherwise "unknown").
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,
}

#[derive(Args)]
pub struct VerifyArgs {
    /// The tarball (gzip, xz, zstd or plain tar; detected); `-` or a pipe
    /// is read as it streams.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,

    /// Accept a bare store tarball (written with --no-skeleton); without it
    /// a tarball with no WSL skeleton fails, since WSL cannot boot it.
    #[arg(long)]
    pub bare: bool,

    /// The manifest `write --manifest` wrote for the tarball: the file's
    /// sha256 and size must be the ones it records.
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,

    /// The SBOM the manifest records, when it is not beside the manifest
    /// under its recorded name (a release renamed it): its sha256 must be
    /// the manifest's sbom.sha256.
    #[arg(long, value_name = "FILE", requires = "manifest")]
    pub sbom: Option<PathBuf>,

    /// Require a signature by one of these keys: a public key NAME:BASE64
    /// (as `nix key convert-secret-to-public` prints), a nix.conf-style
    /// `trusted-public-keys` value of several, or a file holding either.
    /// Repeatable. A tarball's signature is in its --manifest.
    #[arg(long, value_name = "PUB")]
    pub trusted_key: Vec<String>,
}

#[derive(Args)]
pub struct DiffArgs {
    /// The first tarball (`-` for standard input), or a `--manifest` JSON
    /// or closure file describing a system.
    #[arg(value_name = "A")]
    pub a: PathBuf,

    /// The second tarball, manifest or closure file, compared with A.
    #[arg(value_name = "B")]
    pub b: PathBuf,

    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct CheckArgs {
    /// An existing tarball to check.
    #[arg(
        value_name = "FILE",
        conflicts_with_all = ["closure", "system", "facts", "nixos", "no_skeleton"]
    )]
    pub tarball: Option<PathBuf>,

    #[command(flatten)]
    pub system: SystemArgs,

    #[command(flatten)]
    pub content: ContentArgs,

    #[command(flatten)]
    pub checks: CheckFlags,

    /// Worker threads for walking the rootfs, 1 to 4 × the number of cores.
    /// The findings are the same for every value. Defaults to the number of
    /// cores.
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,

    /// Print nothing but errors and error-severity security findings.
    #[arg(short, long)]
    pub quiet: bool,
}

/// The security checks' settings (see docs/src/security.md).
#[derive(Args)]
pub struct CheckFlags {
    /// Make every finding an error, including those in store paths that are
    /// not the system's configuration (normally warnings).
    #[arg(long, help_heading = "Security")]
    pub strict: bool,

    /// Accept findings: DETECTOR (everywhere), DETECTOR:GLOB or /GLOB (any
    /// detector). Globs match paths in the tarball (`*`, `**`, `?`).
    /// Repeatable. Example:
    /// --allow 'openssh-private-key:/etc/ssh/ssh_host_*_key'
    #[arg(long, value_name = "RULE", help_heading = "Security")]
    pub allow: Vec<String>,

    /// Also report this literal text wherever it occurs. Repeatable.
    #[arg(long, value_name = "TEXT", help_heading = "Security")]
    pub pattern: Vec<String>,

    /// A personal identifier (name, e-mail, host name) to report, matched
    /// case-insensitively as a whole word. Repeatable.
    #[arg(long, value_name = "TEXT", help_heading = "Security")]
    pub identifier: Vec<String>,

    /// Print the security report as JSON on stdout.
    #[arg(long, help_heading = "Security")]
    pub json: bool,

    /// List every finding; by default warnings (findings in store paths
    /// outside the system's configuration) are one line with a count per
    /// store path.
    #[arg(short, long, help_heading = "Security")]
    pub verbose: bool,
}

impl CheckFlags {
    pub fn settings(&self) -> CheckSettings {
        CheckSettings {
            strict: self.strict,
            allow: self.allow.clone(),
            patterns: self.pattern.clone(),
            identifiers: self.identifier.clone(),
        }
    }
}

#[derive(Args)]
pub struct BuildArgs {
    /// The host: a name under nixosConfigurations. Without one, the flake's
    /// only host, or its only host for this machine's system; otherwise the
    /// hosts are listed.
    #[arg(value_name = "HOST")]
    pub host: Option<String>,

    /// The flake to build it from; REF#HOST names the host as
    /// `nixos-rebuild --flake REF#HOST` does.
    #[arg(long, value_name = "REF", default_value = ".", help_heading = "Nix")]
    pub flake: String,

    /// Write an update bundle from OLD (an earlier tarball, its manifest or
    /// a closure file) instead of a tarball; -o defaults to update.wsl-delta.
    #[arg(long, value_name = "OLD", help_heading = "Output")]
    pub delta_from: Option<PathBuf>,

    #[command(flatten)]
    pub output: OutputArgs,

    /// Use no cache, not even the default $XDG_CACHE_HOME/wsl-tarball.
    #[arg(long, conflicts_with_all = ["cache", "cache_limit", "cache_check_contents"], help_heading = "Output")]
    pub no_cache: bool,

    #[command(flatten)]
    pub compression: CompressionArgs,

    #[command(flatten)]
    pub content: ContentArgs,

    #[command(flatten)]
    pub checks: CheckFlags,

    /// Print nothing but errors and error-severity security findings (no
    /// progress bar, no warnings, no summary).
    #[arg(short, long)]
    pub quiet: bool,
}

impl BuildArgs {
    /// The flake and the host: `--flake REF#HOST` names the host as
    /// nixos-rebuild takes it (after the last `#`; `REF#` names none). A
    /// host named both there and as HOST, differently, is bad usage.
    pub fn flake_and_host(&self) -> anyhow::Result<(String, Option<String>)> {
        let Some((flake, fragment)) = self.flake.rsplit_once('#') else {
            return Ok((self.flake.clone(), self.host.clone()));
        };
        let fragment = (!fragment.is_empty()).then(|| fragment.to_owned());
        match (&self.host, fragment) {
            (Some(host), Some(fragment)) if *host != fragment => Err(Trouble(anyhow::anyhow!(
                "the host is named twice: HOST {host:?} and --flake {:?}; give it once",
                self.flake
            ))
            .into()),
            (host, fragment) => Ok((flake.to_owned(), fragment.or_else(|| host.clone()))),
        }
    }
}

#[derive(Args)]
pub struct WriteArgs {
    #[command(flatten)]
    pub output: OutputArgs,

    #[command(flatten)]
    pub compression: CompressionArgs,

    #[command(flatten)]
    pub system: SystemArgs,

    #[command(flatten)]
    pub content: ContentArgs,

    #[command(flatten)]
    pub checks: CheckFlags,

    /// Print nothing but errors and error-severity security findings (no
    /// progress bar, no warnings, no summary).
    #[arg(short, long)]
    pub quiet: bool,
}

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
fn parse_system(text: &str) -> Result<Utf8PathBuf, &'static str> {
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
pub fn mtime(flag: Option<u64>) -> anyhow::Result<u64> {
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
    Err(Trouble(anyhow::anyhow!(
        "{SOURCE_DATE_EPOCH} {problem}; unset it, or set it to the seconds since 1970 that every entry's modification time should be"
    ))
    .into())
}

fn parse_cache_limit(text: &str) -> Result<u64, wsl_tarball::app::BadSize> {
    wsl_tarball::app::parse_size(text)
}

impl OutputArgs {
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
    pub store_dir: Utf8PathBuf,

    /// Read the store from DIR/<store-dir> instead of <store-dir>, as with
    /// `nix --store local?root=DIR`. The paths inside the tarball do not change.
    #[arg(long, value_name = "DIR", help_heading = "Nix")]
    pub store_root: Option<PathBuf>,
}

impl ContentArgs {
    /// The request; an unusable SOURCE_DATE_EPOCH is bad usage.
    pub fn request(&self, checks: &CheckFlags) -> anyhow::Result<ContentRequest> {
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
            store_dir: self.store_dir.to_string(),
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
