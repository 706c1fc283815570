//! The command line's grammar: clap's argument structs, their help, and
//! their translation into the library's requests ([`wsl_tarball::app`]).
//! Bin-only; main.rs dispatches on it.

mod check;
mod delta;
mod inspect;
mod publish;
mod rootfs;
mod sign;
mod write;

use clap::{Args, Parser, Subcommand};

pub use check::{CheckArgs, CheckFlags};
pub use delta::{ApplyArgs, DeltaArgs};
pub use inspect::{DiffArgs, InspectArgs, VerifyArgs};
pub use publish::PublishArgs;
pub use rootfs::mtime;
pub use sign::SignArgs;
pub use write::{BuildArgs, WriteArgs};

/// The public keys of every `--trusted-key` value (`verify`, `publish`),
/// parsed where they enter.
fn trusted_keys(
    arguments: &[String],
) -> Result<Vec<wsl_tarball::sign::PublicKey>, crate::exit::Failure> {
    let mut keys = Vec::new();
    for argument in arguments {
        let parsed = wsl_tarball::sign::PublicKey::from_argument(argument);
        keys.extend(parsed.map_err(|e| {
            crate::exit::Failure::trouble(anyhow::anyhow!(e).context("--trusted-key"))
        })?);
    }
    Ok(keys)
}

/// The version `--version` shows: the package's, and the git revision the
/// flake builds from (WSL_TARBALL_GIT_REVISION at compile time) when known.
/// The manifest's tool.version stays the package version.
pub fn version() -> &'static str {
    match option_env!("WSL_TARBALL_GIT_REVISION") {
        Some(revision) if !revision.is_empty() => {
            Box::leak(format!("{} (git {revision})", env!("CARGO_PKG_VERSION")).into_boxed_str())
        }
        _ => env!("CARGO_PKG_VERSION"),
    }
}

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
    version = version(),
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

impl Command {
    /// The manual page that documents the command's --allow.
    pub fn man_page(&self) -> &'static str {
        match self {
            Command::Build(_) => "wsl-tarball-build",
            Command::Check(_) => "wsl-tarball-check",
            Command::Delta(_) => "wsl-tarball-delta",
            Command::Write(_) => "wsl-tarball-write",
            _ => "wsl-tarball",
        }
    }
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
