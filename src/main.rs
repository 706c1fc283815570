//! The `wsl-tarball` command line: parses arguments, calls the library and
//! turns errors into messages and exit codes. No decisions live here.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use camino::Utf8PathBuf;
use clap::{Args, Parser, Subcommand, ValueEnum};

use wsl_tarball::cache::SegmentCache;
use wsl_tarball::compress::{check_threads, CompressOptions, Compression};
use wsl_tarball::input::{read_limited, MAX_CLOSURE_BYTES, MAX_FACTS_BYTES};
use wsl_tarball::inspect::{self, human_bytes};
use wsl_tarball::manifest::{
    manifest_store_paths, Manifest, ManifestSettings, ManifestTarball, SecurityChecks, Tool,
    MANIFEST_VERSION,
};
use wsl_tarball::nix::{quote_attribute, Nix};
use wsl_tarball::output::AtomicOutput;
use wsl_tarball::overlap::{check_outputs, Named};
use wsl_tarball::plan::{is_nixos_toplevel, ChownRule, NixDbMode, NixosFacts, Plan, PlanInputs};
use wsl_tarball::progress::Progress;
use wsl_tarball::scan::archive::scan_archive_file;
use wsl_tarball::scan::{
    checks_skipped_by, sensitive_variables, AllowRule, Detail, ScanOptions, ScanReport, ScanRules,
    ScanScope, Scanner, FINDINGS_EXIT_CODE, SKIP_CHECKS_VAR,
};
use wsl_tarball::store::{read_closure, StorePath, DEFAULT_STORE_DIR};
use wsl_tarball::write::{check_plan, write_tarball, WriteSummary};

// Printing never panics, unlike std's macros, which these shadow in this
// file: a closed pipe on stdout (`verify --json | head -1`) drops the rest of
// the output and the command ends with the status it would have had (as
// ripgrep does); a closed or broken stderr drops messages. Any other stdout
// error (a full disk under `> report.json`) is reported at exit.
macro_rules! print {
    ($($arg:tt)*) => { write_stdout(format_args!($($arg)*)) };
}
macro_rules! println {
    ($($arg:tt)*) => { write_stdout(format_args!("{}\n", format_args!($($arg)*))) };
}
macro_rules! eprint {
    ($($arg:tt)*) => {{
        let _ = std::io::Write::write_fmt(&mut std::io::stderr(), format_args!($($arg)*));
    }};
}
macro_rules! eprintln {
    ($($arg:tt)*) => { eprint!("{}\n", format_args!($($arg)*)) };
}

/// The first stdout error other than a closed pipe, reported at exit.
static STDOUT_ERROR: std::sync::OnceLock<std::io::Error> = std::sync::OnceLock::new();

fn write_stdout(text: std::fmt::Arguments<'_>) {
    use std::io::Write;
    if let Err(error) = std::io::stdout().lock().write_fmt(text) {
        if error.kind() != std::io::ErrorKind::BrokenPipe {
            let _ = STDOUT_ERROR.set(error);
        }
    }
}

/// Stream a NixOS closure into a byte-reproducible WSL rootfs tarball.
///
/// wsl-tarball reads a system closure from Nix's own metadata and writes the
/// `nixos.wsl` file that `wsl --import` (or a double-click) installs. It reads
/// straight out of /nix/store: no root, no staging copy, all cores, and the
/// same bytes on every run.
#[derive(Parser)]
#[command(name = "wsl-tarball", version, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a tarball from a closure file and a system path.
    #[command(verbatim_doc_comment)]
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
    ///   wsl-tarball write --closure closure.json \
    ///       --system "$(readlink -f /run/current-system)" -o nixos.wsl
    Write(WriteArgs),

    /// Build a NixOS configuration from a flake and write its tarball.
    ///
    /// Runs, as the calling user (no sudo):
    ///   nix eval REF#nixosConfigurations (which hosts, when HOST is not given)
    ///   nix eval REF#nixosConfigurations.HOST.config.system.build (has it wslTarballFacts?)
    ///   nix build --no-link --json REF#nixosConfigurations.HOST.config.system.build.wslTarballFacts
    ///   nix path-info --json [--json-format 1] -r SYSTEM (the flag where Nix has it)
    /// then writes the tarball with the NixOS skeleton, like `write --facts`.
    /// Hosts without the wsl-tarball module fall back to
    /// config.system.build.toplevel and a skeleton of defaults.
    #[command(verbatim_doc_comment)]
    Build(BuildArgs),

    /// Run the security checks without writing a tarball.
    ///
    /// Either on an existing tarball (gzip, xz, zstd or plain tar):
    ///   wsl-tarball check nixos.wsl
    /// or on what `write` would produce, with the same flags as `write`
    /// (-o and the compression flags are ignored):
    ///   wsl-tarball check --closure closure.json --system /nix/store/…-nixos-system-…
    ///
    /// Exit status: 0 clean (warnings allowed), 3 error-severity findings,
    /// 1 operational error.
    #[command(verbatim_doc_comment)]
    Check(CheckArgs),

    /// Summarise a tarball: compression, counts, the largest store paths,
    /// the system, the skeleton files, whether the security checks ran.
    Inspect(InspectArgs),

    /// Check a tarball offline, without Nix: tar structure, no hard links,
    /// owners and modes, every store path's NAR hash against the Nix
    /// database inside it, references, the system profile and the WSL
    /// skeleton's files (a tarball without one fails unless --bare). Exits 1
    /// with the list of failures.
    Verify(VerifyArgs),

    /// Explain why two tarballs differ: store paths added, removed and
    /// changed, then the first differing member and which header field or
    /// content byte differs. Exits 0 when identical, 1 when they differ.
    Diff(DiffArgs),
}

#[derive(Args)]
struct InspectArgs {
    /// The tarball (gzip, xz, zstd or plain tar; detected).
    #[arg(value_name = "FILE")]
    file: PathBuf,

    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,

    /// How many of the largest store paths to list.
    #[arg(long, value_name = "N", default_value_t = 10)]
    top: usize,

    /// The manifest `write --manifest` wrote for this tarball; its security
    /// check outcome is reported (otherwise "unknown").
    #[arg(long, value_name = "FILE")]
    manifest: Option<PathBuf>,
}

#[derive(Args)]
struct VerifyArgs {
    /// The tarball (gzip, xz, zstd or plain tar; detected).
    #[arg(value_name = "FILE")]
    file: PathBuf,

    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,

    /// Accept a bare store tarball (written with --no-skeleton); without it
    /// a tarball with no WSL skeleton fails, since WSL cannot boot it.
    #[arg(long)]
    bare: bool,
}

#[derive(Args)]
struct DiffArgs {
    #[arg(value_name = "A")]
    a: PathBuf,
    #[arg(value_name = "B")]
    b: PathBuf,

    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct CheckArgs {
    /// An existing tarball to check.
    #[arg(
        value_name = "FILE",
        conflicts_with_all = ["closure", "system", "facts", "nixos", "no_skeleton"],
        required_unless_present_any = ["closure", "facts"]
    )]
    tarball: Option<PathBuf>,

    /// Closure metadata, as for `write`.
    #[arg(long, value_name = "FILE")]
    closure: Option<PathBuf>,

    /// The NixOS system (toplevel) store path, as for `write`.
    #[arg(long, value_name = "STORE_PATH")]
    system: Option<Utf8PathBuf>,

    /// A facts file from the NixOS module, as for `write`.
    #[arg(long, value_name = "FILE")]
    facts: Option<PathBuf>,

    /// Add the NixOS skeleton, as for `write`.
    #[arg(long)]
    nixos: bool,

    /// A bare store tarball, as for `write`.
    #[arg(long, conflicts_with_all = ["facts", "nixos"])]
    no_skeleton: bool,

    #[command(flatten)]
    rootfs: RootfsArgs,
}

/// The security checks' settings (see README, "Security checks").
#[derive(Args)]
struct CheckFlags {
    /// Make every finding an error, including those in store paths that are
    /// not the system's configuration (normally warnings).
    #[arg(long)]
    strict: bool,

    /// Accept findings: DETECTOR (everywhere), DETECTOR:GLOB or /GLOB (any
    /// detector). Globs match paths in the tarball (`*`, `**`, `?`).
    /// Repeatable. Example:
    /// --allow 'openssh-private-key:/etc/ssh/ssh_host_*_key'
    #[arg(long, value_name = "RULE")]
    allow: Vec<String>,

    /// Also report this literal text wherever it occurs. Repeatable.
    #[arg(long, value_name = "TEXT")]
    pattern: Vec<String>,

    /// A personal identifier (name, e-mail, host name) to report, matched
    /// case-insensitively as a whole word. Repeatable.
    #[arg(long, value_name = "TEXT")]
    identifier: Vec<String>,

    /// Print the security report as JSON on stdout.
    #[arg(long)]
    json: bool,

    /// List every finding; by default warnings (findings in store paths
    /// outside the system's configuration) are one line with a count per
    /// store path.
    #[arg(short, long)]
    verbose: bool,
}

/// Error-severity findings stopped the run (exit status 3).
#[derive(Debug, thiserror::Error)]
#[error("{errors} error-severity finding(s){what}; accept deliberate ones with --allow, see README \"Security checks\"")]
struct FindingsFound {
    errors: usize,
    what: &'static str,
}

#[derive(Args)]
struct BuildArgs {
    /// The host: a name under nixosConfigurations. Without one, the flake's
    /// only host, or its only host for this machine's system; otherwise the
    /// hosts are listed.
    #[arg(value_name = "HOST")]
    host: Option<String>,

    /// The flake to build it from.
    #[arg(long, value_name = "REF", default_value = ".")]
    flake: String,

    #[command(flatten)]
    rootfs: RootfsArgs,
}

#[derive(Args)]
struct WriteArgs {
    /// Closure metadata: exportReferencesGraph JSON, `nix path-info --json -r`
    /// output, or a closureInfo `registration` file.
    #[arg(long, value_name = "FILE")]
    closure: PathBuf,

    /// The NixOS system (toplevel) store path; the `system` profile points at
    /// it. It must be in the closure. Taken from --facts when not given.
    #[arg(long, value_name = "STORE_PATH", required_unless_present = "facts")]
    system: Option<Utf8PathBuf>,

    /// A facts file from the NixOS module (system.build.wslTarballFacts): the
    /// system, its users, /sbin/init, /bin links and wsl-distribution.conf
    /// settings. Implies --nixos.
    #[arg(long, value_name = "FILE")]
    facts: Option<PathBuf>,

    /// Add the NixOS skeleton (/etc from the system's etc tree, passwd, group,
    /// shadow without hashes, /sbin/init, /bin/sh, /usr/bin/env,
    /// /etc/wsl-distribution.conf) so the rootfs boots under WSL. The default
    /// when --system is a NixOS toplevel (it has init, etc and sw).
    #[arg(long)]
    nixos: bool,

    /// Write a bare store tarball: the closure and Nix's database, no
    /// skeleton. WSL cannot boot it; `verify --bare` accepts it.
    #[arg(long, conflicts_with_all = ["facts", "nixos"])]
    no_skeleton: bool,

    #[command(flatten)]
    rootfs: RootfsArgs,
}

#[derive(Args)]
struct RootfsArgs {
    /// Where to write the tarball. Written to a temporary file beside it and
    /// renamed on success; an existing file is replaced only then. A symlink
    /// is written through (its target is replaced); a fifo, device or
    /// dangling symlink is refused.
    #[arg(short, long, value_name = "FILE", default_value = "nixos.wsl")]
    output: PathBuf,

    #[command(flatten)]
    compression: CompressionArgs,

    /// Modification time of every entry, in seconds since 1970.
    #[arg(
        long,
        value_name = "SECONDS",
        env = "SOURCE_DATE_EPOCH",
        default_value_t = 1
    )]
    mtime: u64,

    /// Copy the contents of this directory to the root of the rootfs, as
    /// upstream's tarballBuilder does.
    #[arg(long, value_name = "DIR")]
    extra_files: Option<PathBuf>,

    /// Give PATH (a rootfs path such as /home/nixos; the leading slash is optional) and everything below it
    /// the numeric owner UID:GID. May be repeated; later ones win.
    #[arg(long, num_args = 2, value_names = ["PATH", "UID:GID"], action = clap::ArgAction::Append)]
    chown: Vec<String>,

    /// Let --extra-files replace the file the tool makes at PATH (a rootfs
    /// path such as /etc/wsl.conf or /bin/init). Repeatable. The store, Nix's
    /// database and /nix/var/nix/profiles can never be replaced.
    #[arg(long, value_name = "PATH")]
    allow_override: Vec<String>,

    /// How Nix's database ships: `sqlite` writes /nix/var/nix/db/db.sqlite so
    /// `nix` works at first boot; `registration` writes /nix-path-registration
    /// for `nix-store --load-db` instead.
    #[arg(long, value_enum, default_value_t = NixDbArg::Sqlite)]
    nix_db: NixDbArg,

    /// The logical store directory the closure's paths live in.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_STORE_DIR)]
    store_dir: Utf8PathBuf,

    /// Read the store from DIR/<store-dir> instead of <store-dir>, as with
    /// `nix --store local?root=DIR`. The paths inside the tarball do not change.
    #[arg(long, value_name = "DIR")]
    store_root: Option<PathBuf>,

    #[command(flatten)]
    checks: CheckFlags,

    /// Also write a JSON manifest to FILE: tool version, settings, system,
    /// every store path with its narHash and narSize, the tarball's sha256
    /// and size, and the security-check outcome.
    #[arg(long, value_name = "FILE")]
    manifest: Option<PathBuf>,

    /// Keep each store path's compressed bytes in DIR (gzip only) and reuse
    /// them: a rebuild after a few store paths changed compresses only those.
    /// Every byte is still read and scanned, and the output is identical to
    /// a build without the cache.
    #[arg(long, value_name = "DIR")]
    cache: Option<PathBuf>,

    /// Print nothing but errors and error-severity security findings (no
    /// progress bar, no warnings, no summary).
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Args)]
struct CompressionArgs {
    /// Compression of the tarball. gzip is the only format WSL officially
    /// supports, and the default; xz works with `wsl --import`; zstd is NOT
    /// officially supported by WSL; none writes a plain tar.
    #[arg(long, value_enum)]
    compression: Option<CompressionArg>,

    /// Compression level (gzip 1-9, default 6; xz 0-9, default 6; zstd 1-19,
    /// default 3).
    #[arg(long, value_name = "N")]
    level: Option<u32>,

    /// Worker threads for walking and compressing, 1 to 4 × the number of
    /// cores. The output is the same for every value. Defaults to the
    /// number of cores.
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
}

#[derive(Clone, Copy, ValueEnum)]
enum CompressionArg {
    Gzip,
    Xz,
    Zstd,
    None,
}

#[derive(Clone, Copy, ValueEnum)]
enum NixDbArg {
    Sqlite,
    Registration,
}

/// Bad usage, found before anything is read or written: exit status 2.
#[derive(Debug, thiserror::Error)]
#[error("{0:#}")]
struct Usage(anyhow::Error);

fn usage(error: impl Into<anyhow::Error>) -> anyhow::Error {
    Usage(error.into()).into()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Write(args) => run_write(args),
        Command::Build(args) => run_build(args),
        Command::Check(args) => run_check(args),
        Command::Inspect(args) => run_inspect(args),
        Command::Verify(args) => run_verify(args),
        Command::Diff(args) => run_diff(args),
    };
    let code = match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if error.is::<Unsuccessful>() => ExitCode::FAILURE,
        Err(error) if error.is::<Usage>() => {
            eprintln!("wsl-tarball: error: {}", error_message(&error));
            ExitCode::from(2)
        }
        Err(error) if error.is::<FindingsFound>() => {
            eprintln!("wsl-tarball: {error:#}");
            ExitCode::from(FINDINGS_EXIT_CODE)
        }
        Err(error) => {
            eprintln!("wsl-tarball: error: {}", error_message(&error));
            ExitCode::FAILURE
        }
    };
    if let Err(error) = std::io::Write::flush(&mut std::io::stdout()) {
        if error.kind() != std::io::ErrorKind::BrokenPipe {
            let _ = STDOUT_ERROR.set(error);
        }
    }
    match STDOUT_ERROR.get() {
        Some(error) => {
            eprintln!("wsl-tarball: error: cannot write to standard output: {error}");
            if code == ExitCode::SUCCESS {
                ExitCode::FAILURE
            } else {
                code
            }
        }
        None => code,
    }
}

/// A check that ran and said no; its report is already printed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Unsuccessful(&'static str);

fn print_json(value: &impl serde::Serialize) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

fn run_inspect(args: InspectArgs) -> Result<()> {
    let inspection = inspect::inspect(&args.file, args.top, args.manifest.as_deref())?;
    if args.json {
        print_json(&inspection)
    } else {
        print!("{}", inspection.to_text());
        Ok(())
    }
}

fn run_verify(args: VerifyArgs) -> Result<()> {
    let verification = inspect::verify(&args.file, args.bare)?;
    if args.json {
        print_json(&verification)?;
    } else {
        print!("{}", verification.to_text(20));
    }
    if verification.passed() {
        Ok(())
    } else {
        Err(Unsuccessful("verification failed").into())
    }
}

fn run_diff(args: DiffArgs) -> Result<()> {
    let difference = inspect::diff(&args.a, &args.b)?;
    if args.json {
        print_json(&difference)?;
    } else {
        print!("{}", difference.to_text());
    }
    if difference.identical {
        Ok(())
    } else {
        Err(Unsuccessful("the tarballs differ").into())
    }
}

fn run_write(args: WriteArgs) -> Result<()> {
    let mut inputs = vec![Named {
        flag: "--closure",
        path: &args.closure,
    }];
    if let Some(facts) = &args.facts {
        inputs.push(Named {
            flag: "--facts",
            path: facts,
        });
    }
    check_outputs_distinct(&args.rootfs, &inputs)?;
    let (system, nixos) = system_and_facts(args.system.as_ref(), args.facts.as_ref(), args.nixos)?;
    let nixos = skeleton_by_default(nixos, args.no_skeleton, &system, &args.rootfs)?;
    write_rootfs(
        &args.rootfs,
        || {
            let bytes = read_limited(&args.closure, MAX_CLOSURE_BYTES, "a closure file")?;
            Ok((bytes, args.closure.display().to_string()))
        },
        &system,
        nixos.as_ref(),
        Mode::Write,
    )
}

/// Usage error unless `-o`, `--manifest`, the inputs and `--extra-files`
/// are all different files (see `wsl_tarball::overlap`).
fn check_outputs_distinct(args: &RootfsArgs, inputs: &[Named<'_>]) -> Result<()> {
    let mut outputs = vec![Named {
        flag: "-o",
        path: &args.output,
    }];
    if let Some(manifest) = &args.manifest {
        outputs.push(Named {
            flag: "--manifest",
            path: manifest,
        });
    }
    let trees: Vec<Named<'_>> = args
        .extra_files
        .iter()
        .map(|path| Named {
            flag: "--extra-files",
            path,
        })
        .collect();
    check_outputs(&outputs, inputs, &trees).map_err(usage)
}

/// The system store path and NixOS facts from `--system`, `--facts`, `--nixos`.
fn system_and_facts(
    system: Option<&Utf8PathBuf>,
    facts: Option<&PathBuf>,
    nixos: bool,
) -> Result<(String, Option<NixosFacts>)> {
    let facts = match facts {
        Some(path) => {
            let bytes = read_limited(path, MAX_FACTS_BYTES, "a facts file")?;
            Some(NixosFacts::parse(&bytes, &path.display().to_string())?)
        }
        None => None,
    };
    let system = match (system, &facts) {
        (Some(system), _) => system.to_string(),
        (None, Some(facts)) => facts.system.clone(),
        (None, None) => bail!("give --system or --facts"),
    };
    let nixos = match facts {
        Some(facts) => Some(facts),
        None if nixos => Some(NixosFacts::defaults(&system)),
        None => None,
    };
    Ok((system, nixos))
}

/// The skeleton a run gets: the facts', else defaults for a NixOS toplevel;
/// anything else must say `--no-skeleton`.
fn skeleton_by_default(
    nixos: Option<NixosFacts>,
    no_skeleton: bool,
    system: &str,
    rootfs: &RootfsArgs,
) -> Result<Option<NixosFacts>> {
    if nixos.is_some() || no_skeleton {
        return Ok(nixos);
    }
    let store_dir = rootfs.store_dir.as_str().trim_end_matches('/');
    // An invalid --system is reported, with its reason, by the plan.
    let Ok(path) = StorePath::from_absolute(system, store_dir) else {
        return Ok(None);
    };
    if is_nixos_toplevel(&store_source(rootfs).join(path.basename())) {
        return Ok(Some(NixosFacts::defaults(&path.to_absolute(store_dir))));
    }
    bail!(
        "--system {system} is not a NixOS toplevel (it lacks init, etc or sw), so it gets no WSL skeleton and cannot boot: give --facts, or --no-skeleton for a bare store tarball"
    )
}

/// Where the store paths are read from: `--store-root`/`--store-dir`.
fn store_source(rootfs: &RootfsArgs) -> PathBuf {
    let store_dir = rootfs.store_dir.as_str().trim_end_matches('/');
    match &rootfs.store_root {
        Some(root) => root.join(store_dir.trim_start_matches('/')),
        None => PathBuf::from(store_dir),
    }
}

/// `check`: scan an existing tarball, or the rootfs `write` would make.
fn run_check(args: CheckArgs) -> Result<()> {
    let Some(tarball) = &args.tarball else {
        let closure = args
            .closure
            .as_ref()
            .context("give a tarball or --closure")?;
        let (system, nixos) =
            system_and_facts(args.system.as_ref(), args.facts.as_ref(), args.nixos)?;
        let nixos = skeleton_by_default(nixos, args.no_skeleton, &system, &args.rootfs)?;
        return write_rootfs(
            &args.rootfs,
            || {
                let bytes = read_limited(closure, MAX_CLOSURE_BYTES, "a closure file")?;
                Ok((bytes, closure.display().to_string()))
            },
            &system,
            nixos.as_ref(),
            Mode::CheckOnly,
        );
    };
    let store_dir = args.rootfs.store_dir.as_str().trim_end_matches('/');
    // The environment of `check FILE` did not make the file: not checked.
    let Some(mut scanner) = security_scanner(&args.rootfs.checks, store_dir, None, false)? else {
        return Ok(());
    };
    scan_archive_file(tarball, &mut scanner)?;
    let report = scanner.finish();
    print_report(&report, &args.rootfs.checks, true, args.rootfs.quiet);
    if report.has_errors() {
        return Err(FindingsFound {
            errors: report.errors(),
            what: "",
        }
        .into());
    }
    Ok(())
}

/// Whether `write_rootfs` writes the tarball or only scans it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Write,
    CheckOnly,
}

/// The scanner for a run, or `None` (after a loud notice) when
/// WSL_TARBALL_SKIP_CHECKS skips the checks. `system` is a store path's
/// base name; `environment` adds the build-environment check.
fn security_scanner(
    flags: &CheckFlags,
    store_dir: &str,
    system: Option<&StorePath>,
    environment: bool,
) -> Result<Option<Scanner>> {
    if checks_skipped_by(std::env::var_os(SKIP_CHECKS_VAR).as_deref()) {
        eprintln!(
            "wsl-tarball: WARNING: {SKIP_CHECKS_VAR} is set: the security checks are SKIPPED. \
             Nothing in this tarball was checked for private keys, tokens, password hashes or personal data."
        );
        return Ok(None);
    }
    let options = ScanOptions {
        patterns: flags.pattern.clone(),
        identifiers: flags.identifier.clone(),
        allow: flags
            .allow
            .iter()
            .map(|rule| AllowRule::parse(rule))
            .collect::<Result<_, _>>()?,
        strict: flags.strict,
        environment: if environment {
            sensitive_variables(std::env::vars_os())
        } else {
            Vec::new()
        },
    };
    let mut scope = ScanScope::new(store_dir);
    scope.system = system.map(|path| path.basename().to_owned());
    Ok(Some(Scanner::new(
        Arc::new(ScanRules::new(&options)?),
        scope,
    )))
}

/// Prints the report: JSON on stdout with --json; otherwise text on stdout
/// (`check`) or stderr (`write`): only error findings when quiet, every
/// finding with --verbose.
fn print_report(report: &ScanReport, flags: &CheckFlags, to_stdout: bool, quiet: bool) {
    if flags.json {
        println!("{}", report.to_json());
        return;
    }
    let detail = if quiet {
        Detail::Quiet
    } else if flags.verbose {
        Detail::Verbose
    } else {
        Detail::Normal
    };
    let text = report.render_human(detail);
    if to_stdout {
        print!("{text}");
    } else {
        eprint!("{text}");
    }
}

/// `build`: let Nix build the host, read its closure, write the tarball.
fn run_build(args: BuildArgs) -> Result<()> {
    check_outputs_distinct(&args.rootfs, &[])?;
    let nix = Nix::detect()?;
    let host = nix.select_host(&args.flake, args.host.as_deref())?;
    if let (Some(reason), false) = (&host.reason, args.rootfs.quiet) {
        eprintln!("wsl-tarball: building {}, {reason}", host.name);
    }
    let attribute = format!(
        "{}#nixosConfigurations.{}.config.system.build",
        args.flake,
        quote_attribute(&host.name)
    );
    let facts = if nix.has_attribute(&attribute, "wslTarballFacts")? {
        let path = nix.build_out(&format!("{attribute}.wslTarballFacts"))?;
        let bytes = read_limited(Path::new(&path), MAX_FACTS_BYTES, "a facts file")?;
        NixosFacts::parse(&bytes, &path)?
    } else {
        if !args.rootfs.quiet {
            eprintln!(
                "wsl-tarball: {} has no wslTarballFacts (the wsl-tarball module is not imported); using its toplevel and a default skeleton",
                host.name
            );
        }
        NixosFacts::defaults(&nix.build_out(&format!("{attribute}.toplevel"))?)
    };
    write_rootfs(
        &args.rootfs,
        || Ok(nix.closure_json(&facts.system)?),
        &facts.system.clone(),
        Some(&facts),
        Mode::Write,
    )
}

/// The shared tail of `write` and `build`: check the flags, read the
/// closure (`closure` returns its bytes and their name), plan, stream, report.
fn write_rootfs(
    args: &RootfsArgs,
    closure: impl FnOnce() -> Result<(Vec<u8>, String)>,
    system: &str,
    nixos: Option<&NixosFacts>,
    mode: Mode,
) -> Result<()> {
    let threads = args.compression.threads.unwrap_or_else(default_threads);
    check_threads(threads)
        .with_context(|| format!("--threads {threads}"))
        .map_err(usage)?;
    let compression = match (
        args.compression.compression,
        nixos.and_then(|f| f.compression.as_deref()),
    ) {
        (Some(flag), _) => flag,
        (None, Some(from_module)) => CompressionArg::from_str(from_module, true)
            .map_err(|e| anyhow::anyhow!("compression {from_module:?} from the facts file: {e}"))?,
        (None, None) => CompressionArg::Gzip,
    };
    let compress_options = CompressOptions {
        compression: match compression {
            CompressionArg::Gzip => Compression::Gzip,
            CompressionArg::Xz => Compression::Xz,
            CompressionArg::Zstd => Compression::Zstd,
            CompressionArg::None => Compression::None,
        },
        level: args.compression.level.or(nixos.and_then(|f| f.level)),
        threads,
    };
    if mode == Mode::Write {
        compress_options.validate().map_err(usage)?;
        if let Some(dir) = &args.cache {
            SegmentCache::check_usable(dir, compress_options.compression).map_err(usage)?;
        }
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .context("starting the worker threads")?;

    let (closure_bytes, source_name) = closure()?;
    let source_name = source_name.as_str();
    let store_dir = args.store_dir.as_str().trim_end_matches('/');
    let (closure, format) = read_closure(&closure_bytes, source_name, store_dir)?;
    let system_path = StorePath::from_absolute(system, store_dir)
        .with_context(|| format!("--system {system}"))?;
    let chown = args
        .chown
        .chunks(2)
        .map(|pair| ChownRule::parse(&pair[0], &pair[1]))
        .collect::<Result<Vec<_>, _>>()?;
    let store_source = store_source(args);
    let registration_time = i64::try_from(args.mtime).context("--mtime is too large")?;
    let scanner = security_scanner(&args.checks, store_dir, Some(&system_path), true)?;
    let plan = Plan::new(PlanInputs {
        closure: &closure,
        system: system_path,
        store_source,
        nix_db: match args.nix_db {
            NixDbArg::Sqlite => NixDbMode::Sqlite,
            NixDbArg::Registration => NixDbMode::Registration,
        },
        registration_time,
        extra_files: args.extra_files.clone(),
        chown,
        allow_override: args.allow_override.clone(),
        nixos: nixos.map(NixosFacts::nixos_inputs),
    })?;

    if mode == Mode::CheckOnly {
        let Some(scanner) = scanner else {
            return Ok(());
        };
        let report = check_plan(&plan, args.mtime, scanner)?;
        print_report(&report, &args.checks, true, args.quiet);
        if report.has_errors() {
            return Err(FindingsFound {
                errors: report.errors(),
                what: "",
            }
            .into());
        }
        return Ok(());
    }
    let cache = args.cache.as_deref().map(SegmentCache::open).transpose()?;
    // Created before the long write, so that a manifest that cannot be
    // written fails the run before it starts.
    let mut manifest_output = args
        .manifest
        .as_deref()
        .map(AtomicOutput::create)
        .transpose()?;
    let mut progress = ProgressReport::new(args.quiet, closure.total_nar_size());
    let pending = write_tarball(
        &plan,
        &args.output,
        args.mtime,
        &compress_options,
        cache.as_ref(),
        scanner,
        &mut progress,
    )?;
    progress.finish();
    for damaged in pending.damaged_cache_segments() {
        eprintln!("wsl-tarball: warning: {damaged}; compressed the store path again and replaced the entry");
    }
    if let Some(report) = pending.scan_report() {
        print_report(report, &args.checks, false, args.quiet);
        if report.has_errors() {
            // Dropping the pending tarball removes its temporary file.
            return Err(FindingsFound {
                errors: report.errors(),
                what: ": the tarball was not written",
            }
            .into());
        }
    }
    let security_checks = match pending.scan_report() {
        Some(report) => SecurityChecks {
            status: "passed".to_owned(),
            report: Some(report.to_json_value()),
        },
        None => SecurityChecks {
            status: "skipped".to_owned(),
            report: None,
        },
    };
    let summary = *pending.summary();
    if let Some(output) = &mut manifest_output {
        let manifest = Manifest {
            manifest_version: MANIFEST_VERSION,
            tool: Tool {
                name: env!("CARGO_PKG_NAME").to_owned(),
                version: env!("CARGO_PKG_VERSION").to_owned(),
            },
            settings: ManifestSettings {
                compression: compress_options.compression.name().to_owned(),
                level: match compress_options.compression {
                    Compression::None => None,
                    _ => Some(compress_options.validate()?),
                },
                mtime: args.mtime,
                nix_db: match args.nix_db {
                    NixDbArg::Sqlite => "sqlite",
                    NixDbArg::Registration => "registration",
                }
                .to_owned(),
                store_dir: store_dir.to_owned(),
                skeleton: if nixos.is_some() { "nixos" } else { "none" }.to_owned(),
                extra_files: args.extra_files.as_ref().map(|p| p.display().to_string()),
                chown: args.chown.chunks(2).map(|pair| pair.join(" ")).collect(),
            },
            system: system.to_owned(),
            store_paths: manifest_store_paths(&closure),
            tarball: ManifestTarball {
                file: args
                    .output
                    .file_name()
                    .map(|name| name.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                sha256: inspect::hex(&summary.output_sha256),
                size: summary.output_bytes,
                uncompressed_size: summary.tar.archive_bytes,
                entries: summary.tar.files + summary.tar.directories + summary.tar.symlinks,
            },
            security_checks,
        };
        output.write_all(manifest.to_json().as_bytes())?;
    }
    // The tarball and its manifest replace their destinations together.
    let summary = pending.commit_with(manifest_output.into_iter().collect())?;
    if !args.quiet {
        eprintln!("read {source_name} ({format})");
        print_summary(&args.output, &summary);
    }
    Ok(())
}

/// Progress of a write on stderr: a bar when stderr is a terminal, a line
/// every ten seconds otherwise, nothing with --quiet. Never on stdout.
enum ProgressReport {
    Quiet,
    Bar(indicatif::ProgressBar),
    Lines {
        total: u64,
        started: Instant,
        last_line: Instant,
    },
}

impl ProgressReport {
    fn new(quiet: bool, total_nar_bytes: u64) -> Self {
        if quiet {
            return ProgressReport::Quiet;
        }
        if !std::io::stderr().is_terminal() {
            let now = Instant::now();
            return ProgressReport::Lines {
                total: total_nar_bytes,
                started: now,
                last_line: now,
            };
        }
        let colour = std::env::var_os("NO_COLOR").map_or(true, |v| v.is_empty());
        let bar_style = if colour {
            "{wide_bar:.cyan/blue}"
        } else {
            "{wide_bar}"
        };
        let template = format!(
            "{{elapsed_precise}} {bar_style} {{binary_bytes}}/{{binary_total_bytes}} {{binary_bytes_per_sec}} ETA {{eta}}"
        );
        let style = indicatif::ProgressStyle::with_template(&template)
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(total_nar_bytes),
            indicatif::ProgressDrawTarget::stderr(),
        )
        .with_style(style);
        ProgressReport::Bar(bar)
    }

    fn finish(&self) {
        if let ProgressReport::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}

impl Progress for ProgressReport {
    fn advance(&mut self, archive_bytes: u64) {
        match self {
            ProgressReport::Quiet => {}
            ProgressReport::Bar(bar) => {
                // Tar headers and padding make the stream a little longer
                // than the NAR total.
                if bar.length().is_some_and(|total| archive_bytes > total) {
                    bar.set_length(archive_bytes);
                }
                bar.set_position(archive_bytes);
            }
            ProgressReport::Lines {
                total,
                started,
                last_line,
            } => {
                if last_line.elapsed() >= Duration::from_secs(10) {
                    *last_line = Instant::now();
                    let rate = archive_bytes as f64 / started.elapsed().as_secs_f64().max(1e-6);
                    eprintln!(
                        "wsl-tarball: {} of about {} written ({}/s)",
                        human_bytes(archive_bytes),
                        human_bytes(*total),
                        human_bytes(rate as u64)
                    );
                }
            }
        }
    }
}

/// The error and its causes joined by ": ", leaving out a cause whose text
/// the message already holds (the library's errors name their cause).
fn error_message(error: &anyhow::Error) -> String {
    let mut message = error.to_string();
    for cause in error.chain().skip(1) {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
    }
    message
}

fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn print_summary(output: &Path, summary: &WriteSummary) {
    let tar = &summary.tar;
    let ratio = if tar.archive_bytes == 0 {
        0.0
    } else {
        100.0 * summary.output_bytes as f64 / tar.archive_bytes as f64
    };
    let seconds = summary.elapsed.as_secs_f64();
    eprintln!(
        "wrote {}: {} store paths, {} files, {} directories, {} symlinks; {} in, {} out ({ratio:.1}%), {seconds:.1} s ({}/s)",
        output.display(),
        summary.store_paths,
        tar.files,
        tar.directories,
        tar.symlinks,
        human_bytes(tar.archive_bytes),
        human_bytes(summary.output_bytes),
        human_bytes((tar.archive_bytes as f64 / seconds.max(1e-6)) as u64),
    );
}
