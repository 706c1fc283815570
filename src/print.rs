//! What the commands print: the events of a run, summaries, reports.
//! Text and JSON go to stdout, messages to stderr, through the
//! non-panicking print macros defined here. Names, paths and messages that
//! came from an input are escaped for the terminal
//! ([`wsl_tarball::escape`]); the reports' own `to_text` escape theirs, and
//! JSON stays exact.

use std::path::Path;

use anyhow::Context;

use crate::cli::CheckFlags;
use crate::exit::Failure;
use wsl_tarball::app::{DeltaOutcome, Event, Events, ExitStatus, SignOutcome, WriteSummary};
use wsl_tarball::count::count;
use wsl_tarball::delta::{ApplyOutcome, SignatureOutcome};
use wsl_tarball::escape::{escape_path, Escaped};
use wsl_tarball::inspect::human_bytes;
use wsl_tarball::scan::{Detail, SKIP_CHECKS_VAR};

// Printing never panics, unlike std's macros, which these shadow in the
// binary (main.rs declares this module first, with #[macro_use]): a closed
// pipe on stdout (`verify --json | head -1`) drops the rest of the output
// and the command ends with the status it would have had (as ripgrep
// does); a closed or broken stderr drops messages. Any other stdout error
// (a full disk under `> report.json`) is reported at exit ([`finish`]).
macro_rules! print {
    ($($arg:tt)*) => { $crate::print::write_stdout(format_args!($($arg)*)) };
}
macro_rules! println {
    ($($arg:tt)*) => { $crate::print::write_stdout(format_args!("{}\n", format_args!($($arg)*))) };
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

pub fn write_stdout(text: std::fmt::Arguments<'_>) {
    use std::io::Write;
    if let Err(error) = std::io::stdout().lock().write_fmt(text) {
        if error.kind() != std::io::ErrorKind::BrokenPipe {
            let _ = STDOUT_ERROR.set(error);
        }
    }
}

/// Flushes stdout; a run whose output could not be written (other than to
/// a closed pipe) fails, if it had not already.
pub fn finish(status: ExitStatus) -> ExitStatus {
    if let Err(error) = std::io::Write::flush(&mut std::io::stdout()) {
        if error.kind() != std::io::ErrorKind::BrokenPipe {
            let _ = STDOUT_ERROR.set(error);
        }
    }
    match STDOUT_ERROR.get() {
        Some(error) => {
            eprintln!("wsl-tarball: error: cannot write to standard output: {error}");
            if status == ExitStatus::Success {
                ExitStatus::Failure
            } else {
                status
            }
        }
        None => status,
    }
}

/// Prints a run's events on stderr (the security report on stdout with
/// `check` or --json).
pub struct Printer<'a> {
    pub checks: &'a CheckFlags,
    pub quiet: bool,
    pub report_to_stdout: bool,
}

impl Events for Printer<'_> {
    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::ChecksSkipped => eprintln!(
                "wsl-tarball: WARNING: {SKIP_CHECKS_VAR} is set: the security checks are SKIPPED. \
                 Nothing in this tarball was checked for private keys, tokens, password hashes or personal data."
            ),
            Event::HostChosen { .. }
            | Event::NoFacts { .. }
            | Event::ClosureRead { .. }
            | Event::UnofficialCompression { .. }
                if self.quiet => {}
            Event::UnofficialCompression { compression } => eprintln!(
                "wsl-tarball: warning: WSL does not officially import {compression} tarballs: \
                 Microsoft's distributions/validate-modern.py accepts only gzip and xz; \
                 use gzip (the default) for a tarball others will import"
            ),
            Event::HostChosen { host, reason } => {
                eprintln!("wsl-tarball: building {}, {}", Escaped(host), Escaped(reason))
            }
            Event::NoFacts { host } => eprintln!(
                "wsl-tarball: {} has no wslTarballFacts (the wsl-tarball module is not imported); using its toplevel and a default skeleton",
                Escaped(host)
            ),
            Event::ClosureRead {
                source_name,
                format,
            } => eprintln!("read {} ({format})", Escaped(source_name)),
            Event::WaitingForCommitLock { dir } => eprintln!(
                "wsl-tarball: Blocking waiting for file lock on {} (another run is committing its outputs there)",
                escape_path(dir)
            ),
            Event::DamagedCacheSegment(damaged) => eprintln!(
                "wsl-tarball: warning: {}; compressed the store path again and replaced the entry",
                Escaped(&damaged.to_string())
            ),
            Event::CacheStoreFailed(error) => eprintln!(
                "wsl-tarball: warning: the cache stopped taking new segments ({}); the tarball is complete",
                Escaped(&error.to_string())
            ),
            Event::DefaultCacheUnusable { .. }
            | Event::CacheEvicted { .. }
            | Event::CacheEvictionFailed(_)
                if self.quiet => {}
            Event::DefaultCacheUnusable { dir, error } => eprintln!(
                "wsl-tarball: warning: not using the default cache {}: {}; writing without a cache (--no-cache skips it)",
                escape_path(dir),
                Escaped(&error.to_string())
            ),
            Event::CacheEvicted {
                dir,
                limit,
                eviction,
            } => {
                let removed = match eviction.removed {
                    0 => String::new(),
                    n => format!(
                        "; removed {n} least recently used ({})",
                        human_bytes(eviction.removed_bytes)
                    ),
                };
                eprintln!(
                    "cache {}: {} of segments, limit {}{removed}",
                    escape_path(dir),
                    human_bytes(eviction.kept_bytes),
                    human_bytes(limit)
                )
            }
            Event::CacheEvictionFailed(error) => eprintln!(
                "wsl-tarball: warning: cannot trim the cache: {}; the tarball is written",
                Escaped(&error.to_string())
            ),
            Event::ScanReport(report) => {
                if self.checks.json {
                    println!("{}", report.to_json());
                    return;
                }
                let detail = if self.quiet {
                    Detail::Quiet
                } else if self.checks.verbose {
                    Detail::Verbose
                } else {
                    Detail::Normal
                };
                let text = report.render_human(detail);
                if self.report_to_stdout {
                    print!("{text}");
                } else {
                    eprint!("{text}");
                }
            }
        }
    }
}

/// Prints a reading command's report, `text` or `value`'s JSON; the run
/// ends with the report's `status`.
pub fn conclude(
    json: bool,
    value: &impl serde::Serialize,
    text: String,
    status: ExitStatus,
) -> Result<ExitStatus, Failure> {
    if json {
        let json = serde_json::to_string_pretty(value).context("the report as JSON");
        println!("{}", json.map_err(Failure::trouble)?);
    } else {
        print!("{text}");
    }
    Ok(status)
}

pub fn print_summary(output: &Path, summary: &WriteSummary) {
    let tar = &summary.tar;
    let ratio = if tar.archive_bytes == 0 {
        0.0
    } else {
        100.0 * summary.output_bytes as f64 / tar.archive_bytes as f64
    };
    let seconds = summary.elapsed.as_secs_f64();
    eprintln!(
        "wrote {}: {}, {}, {}, {}; {} in, {} out ({ratio:.1}%), {seconds:.1} s ({}/s)",
        escape_path(output),
        count(summary.store_paths, "store path"),
        count(tar.files, "file"),
        count(tar.directories, "directory"),
        count(tar.symlinks, "symlink"),
        human_bytes(tar.archive_bytes),
        human_bytes(summary.output_bytes),
        human_bytes((tar.archive_bytes as f64 / seconds.max(1e-6)) as u64),
    );
}

pub fn print_bundle(outcome: &DeltaOutcome) {
    let (manifest, summary) = (&outcome.manifest, &outcome.summary);
    eprintln!(
        "wrote {}: {} of the new closure's {} ({} NAR), {} ({} uncompressed)",
        escape_path(&outcome.output),
        manifest.paths.len(),
        count(outcome.closure_paths, "store path"),
        human_bytes(manifest.nar_bytes()),
        human_bytes(summary.output_bytes),
        human_bytes(summary.tar_bytes),
    );
    eprintln!(
        "it updates {} to {}; inside the distribution: wsl-tarball apply {} (or tar -xf it and sudo sh wsl-delta/apply)",
        Escaped(
            manifest
                .old_system_path()
                .as_deref()
                .unwrap_or("the system OLD describes")
        ),
        Escaped(&manifest.new_system_path()),
        escape_path(&outcome.output)
    );
}

/// What `publish` wrote, and the colleague's next step.
pub fn print_published(published: &wsl_tarball::app::Published) {
    let images: Vec<String> = published
        .images
        .iter()
        .map(|(arch, file)| format!("{} ({arch})", Escaped(file)))
        .collect();
    eprintln!(
        "wrote {}: version {} with {}; {} earlier {} kept for rollback; {} files",
        escape_path(&published.dir),
        Escaped(&published.name),
        images.join(", "),
        published.kept_versions,
        if published.kept_versions == 1 {
            "version"
        } else {
            "versions"
        },
        published.files.len()
    );
    eprintln!(
        "publish its files at {}; install-channel.ps1 registers the manifest URL {}; colleagues run it once, as administrator, then `wsl --install {}`",
        Escaped(&published.base_url),
        Escaped(&published.manifest_url),
        Escaped(&published.flavour)
    );
}

/// What `apply` did, and how to restart into it.
pub fn print_apply(outcome: &ApplyOutcome) {
    match &outcome.signature {
        SignatureOutcome::Trusted { key } => eprintln!(
            "the bundle is signed by trusted key {}",
            wsl_tarball::escape::escape_str(key)
        ),
        SignatureOutcome::Skipped { why } => eprintln!(
            "WARNING: --allow-unsigned: the bundle's signature was NOT checked against a trusted key ({why}); anyone who could change the bundle chose what was applied"
        ),
    }
    let restart = format!(
        "wsl --terminate {}",
        Escaped(&std::env::var("WSL_DISTRO_NAME").unwrap_or_else(|_| "NAME".to_owned()))
    );
    if outcome.already_applied {
        eprintln!(
            "{} already points at {}; nothing to do (restart with `{restart}` if it is not running yet)",
            escape_path(&outcome.profile),
            Escaped(&outcome.new_system)
        );
        return;
    }
    eprintln!(
        "imported and checked {}",
        count(outcome.imported, "store path")
    );
    eprintln!(
        "{} -> {} (was {})",
        escape_path(&outcome.profile),
        Escaped(&outcome.new_system),
        Escaped(&outcome.old_system)
    );
    let command = Escaped(&outcome.activation.join(" "));
    let verb = if outcome.activated {
        "ran"
    } else {
        "would run:"
    };
    eprintln!("{verb} {command}");
    eprintln!(
        "restart the distribution to run the new system: from Windows, `{restart}`, then start it again"
    );
}

/// What `sign` signed.
pub fn print_signed(outcome: &SignOutcome) {
    eprintln!(
        "signed the {} with key {}: {}",
        outcome.kind,
        wsl_tarball::escape::escape_str(outcome.signature.name()),
        wsl_tarball::escape::escape_str(&outcome.output.display().to_string())
    );
}

/// `completions SHELL`: the shell's completion script on stdout.
pub fn completions(shell: clap_complete::Shell) -> Result<ExitStatus, Failure> {
    let mut script = Vec::new();
    let mut command = <crate::cli::Cli as clap::CommandFactory>::command();
    clap_complete::generate(shell, &mut command, "wsl-tarball", &mut script);
    print!(
        "{}",
        String::from_utf8(script).context("the completion script")?
    );
    Ok(ExitStatus::Success)
}

/// `man [COMMAND]`: wsl-tarball(1) or wsl-tarball-COMMAND(1), in roff.
pub fn man(name: Option<&str>) -> Result<ExitStatus, Failure> {
    let mut command = <crate::cli::Cli as clap::CommandFactory>::command();
    command.build();
    let page = match name {
        None => clap_mangen::Man::new(command),
        Some(name) => {
            let sub = command
                .find_subcommand(name)
                .filter(|sub| sub.get_name() != "help")
                .ok_or_else(|| Failure::trouble(anyhow::anyhow!("man {name}: no such command")))?;
            let title = format!("wsl-tarball-{name}");
            let title: &'static str = Box::leak(title.into_boxed_str());
            clap_mangen::Man::new(
                sub.clone()
                    .name(title)
                    .display_name(title)
                    .version(crate::cli::version()),
            )
        }
    };
    let mut roff = Vec::new();
    page.render(&mut roff)
        .context("rendering the manual page")?;
    print!("{}", String::from_utf8(roff).context("the manual page")?);
    Ok(ExitStatus::Success)
}
