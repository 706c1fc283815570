//! The `wsl-tarball` command line: parses arguments, calls the library and
//! turns errors into messages and exit codes. No decisions live here.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use camino::Utf8PathBuf;
use clap::{Args, Parser, Subcommand, ValueEnum};

use wsl_tarball::compress::{CompressOptions, Compression};
use wsl_tarball::plan::{ChownRule, NixDbMode, NixosFacts, Plan, PlanInputs};
use wsl_tarball::store::{read_closure, StorePath, DEFAULT_STORE_DIR};
use wsl_tarball::write::{write_tarball, WriteSummary};

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
    /// Example:
    ///   nix path-info --json -r /run/current-system > closure.json
    ///   wsl-tarball write --closure closure.json \
    ///       --system "$(readlink -f /run/current-system)" -o nixos.wsl
    Write(WriteArgs),

    /// Build a NixOS configuration from a flake and write its tarball.
    ///
    /// Runs, as the calling user (no sudo):
    ///   nix eval REF#nixosConfigurations.HOST.config.system.build (has it wslTarballFacts?)
    ///   nix build --no-link --json REF#nixosConfigurations.HOST.config.system.build.wslTarballFacts
    ///   nix path-info --json -r SYSTEM
    /// then writes the tarball with the NixOS skeleton, like `write --facts`.
    /// Hosts without the wsl-tarball module fall back to
    /// config.system.build.toplevel and a skeleton of defaults.
    #[command(verbatim_doc_comment)]
    Build(BuildArgs),
}

#[derive(Args)]
struct BuildArgs {
    /// The host: a name under nixosConfigurations.
    #[arg(value_name = "HOST", default_value = "nixos-wsl-minimal")]
    host: String,

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
    /// /etc/wsl-distribution.conf) so the rootfs boots under WSL.
    #[arg(long)]
    nixos: bool,

    #[command(flatten)]
    rootfs: RootfsArgs,
}

#[derive(Args)]
struct RootfsArgs {
    /// Where to write the tarball. Written to a temporary file beside it and
    /// renamed on success; an existing file is replaced only then.
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

    /// Print nothing but errors.
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

    /// Worker threads for walking and compressing. The output is the same for
    /// every value. Defaults to the number of cores.
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Write(args) => run_write(args),
        Command::Build(args) => run_build(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("wsl-tarball: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_write(args: WriteArgs) -> Result<()> {
    let facts = match &args.facts {
        Some(path) => {
            let bytes = std::fs::read(path)
                .with_context(|| format!("cannot read facts file {}", path.display()))?;
            Some(NixosFacts::parse(&bytes, &path.display().to_string())?)
        }
        None => None,
    };
    let system = match (&args.system, &facts) {
        (Some(system), _) => system.to_string(),
        (None, Some(facts)) => facts.system.clone(),
        (None, None) => bail!("give --system or --facts"),
    };
    let nixos = match facts {
        Some(facts) => Some(facts),
        None if args.nixos => Some(default_facts(&system)),
        None => None,
    };
    let closure_bytes = std::fs::read(&args.closure)
        .with_context(|| format!("cannot read closure file {}", args.closure.display()))?;
    let source_name = args.closure.display().to_string();
    write_rootfs(
        &args.rootfs,
        &closure_bytes,
        &source_name,
        &system,
        nixos.as_ref(),
    )
}

/// `build`: let Nix build the host, read its closure, write the tarball.
fn run_build(args: BuildArgs) -> Result<()> {
    let attribute = format!(
        "{}#nixosConfigurations.{}.config.system.build",
        args.flake, args.host
    );
    let has_facts = run_nix(&[
        "eval",
        "--json",
        &attribute,
        "--apply",
        "build: build ? wslTarballFacts",
    ])?;
    let facts = if has_facts.trim_ascii() == b"true" {
        let path = nix_build_out(&format!("{attribute}.wslTarballFacts"))?;
        let bytes = std::fs::read(&path).with_context(|| format!("cannot read {path}"))?;
        NixosFacts::parse(&bytes, &path)?
    } else {
        if !args.rootfs.quiet {
            eprintln!(
                "wsl-tarball: {} has no wslTarballFacts (the wsl-tarball module is not imported); using its toplevel and a default skeleton",
                args.host
            );
        }
        default_facts(&nix_build_out(&format!("{attribute}.toplevel"))?)
    };
    let closure_json = run_nix(&["path-info", "--json", "-r", &facts.system])?;
    let source_name = format!("nix path-info --json -r {}", facts.system);
    write_rootfs(
        &args.rootfs,
        &closure_json,
        &source_name,
        &facts.system.clone(),
        Some(&facts),
    )
}

/// Facts for a system built without the module: defaults everywhere.
fn default_facts(system: &str) -> NixosFacts {
    NixosFacts::parse(
        serde_json::json!({ "system": system })
            .to_string()
            .as_bytes(),
        "defaults",
    )
    .expect("a facts object with only a system parses")
}

/// `nix build --no-link --json INSTALLABLE`, returning the `out` path.
fn nix_build_out(installable: &str) -> Result<String> {
    let json = run_nix(&["build", "--no-link", "--json", installable])?;
    let built: serde_json::Value = serde_json::from_slice(&json)
        .context("nix build printed JSON that is not a build result")?;
    built[0]["outputs"]["out"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("nix build {installable} printed no out path: {built}"))
}

/// Runs `nix` with flakes enabled; its stderr reaches the user as it is.
fn run_nix(args: &[&str]) -> Result<Vec<u8>> {
    let mut command = std::process::Command::new("nix");
    command
        .args(["--extra-experimental-features", "nix-command flakes"])
        .args(args)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit());
    let output = command
        .output()
        .context("cannot run `nix`: is Nix installed and on PATH?")?;
    if !output.status.success() {
        bail!(
            "`nix {}` failed ({}); its messages are above. Hint: check the flake reference and host name, or run the same command yourself",
            args.join(" "),
            output.status
        );
    }
    Ok(output.stdout)
}

/// The shared tail of `write` and `build`: plan, stream, report.
fn write_rootfs(
    args: &RootfsArgs,
    closure_bytes: &[u8],
    source_name: &str,
    system: &str,
    nixos: Option<&NixosFacts>,
) -> Result<()> {
    let threads = args.compression.threads.unwrap_or_else(default_threads);
    if threads == 0 {
        bail!("--threads must be at least 1");
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .context("starting the worker threads")?;

    let store_dir = args.store_dir.as_str().trim_end_matches('/');
    let (closure, format) = read_closure(closure_bytes, source_name, store_dir)?;
    let system_path = StorePath::from_absolute(system, store_dir)
        .with_context(|| format!("--system {system}"))?;
    let chown = args
        .chown
        .chunks(2)
        .map(|pair| ChownRule::parse(&pair[0], &pair[1]))
        .collect::<Result<Vec<_>, _>>()?;
    let store_source = match &args.store_root {
        Some(root) => root.join(store_dir.trim_start_matches('/')),
        None => PathBuf::from(store_dir),
    };
    let registration_time = i64::try_from(args.mtime).context("--mtime is too large")?;
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
        nixos: nixos.map(NixosFacts::nixos_inputs),
    })?;

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
    let summary = write_tarball(&plan, &args.output, args.mtime, &compress_options)?;
    if !args.quiet {
        eprintln!("read {source_name} ({format})");
        print_summary(&args.output, &summary);
    }
    Ok(())
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

fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
