//! The `wsl-tarball` command line: parses arguments ([`cli`]), hands them to
//! the library's request layer ([`wsl_tarball::app`]), prints what it hears
//! and returns, and turns errors into messages (naming the flags, with any
//! text from an input escaped for the terminal) and exit statuses. The policy lives in the library.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{anyhow, Context, Result};
use clap::Parser;

use cli::{
    ApplyArgs, BuildArgs, CheckArgs, Cli, Command, DeltaArgs, DiffArgs, InspectArgs, SignArgs,
    VerifyArgs, WriteArgs,
};
use exit::{error_message, findings, trouble, with_flags, Trouble, Unsuccessful};
use print::{conclude, print_bundle, print_summary, Printer};
use wsl_tarball::app::{self, BuildOutcome};
use wsl_tarball::delta;
use wsl_tarball::escape::Escaped;
use wsl_tarball::inspect;
use wsl_tarball::progress::ProgressReport;
use wsl_tarball::scan::FINDINGS_EXIT_CODE;
use wsl_tarball::store::DEFAULT_STORE_DIR;

// Printing never panics, unlike std's macros, which these shadow in this
// file: a closed pipe on stdout (`verify --json | head -1`) drops the rest of
// the output and the command ends with the status it would have had (as
// ripgrep does); a closed or broken stderr drops messages. Any other stdout
// error (a full disk under `> report.json`) is reported at exit.
macro_rules! print {
    ($($arg:tt)*) => { $crate::write_stdout(format_args!($($arg)*)) };
}
macro_rules! println {
    ($($arg:tt)*) => { $crate::write_stdout(format_args!("{}\n", format_args!($($arg)*))) };
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

// The modules use the macros above.
mod cli;
mod exit;
mod print;

/// The version `--version` shows: the package's, and the git revision the
/// flake builds from (WSL_TARBALL_GIT_REVISION at compile time) when known.
/// The manifest's tool.version stays the package version.
fn version() -> &'static str {
    match option_env!("WSL_TARBALL_GIT_REVISION") {
        Some(revision) if !revision.is_empty() => {
            Box::leak(format!("{} (git {revision})", env!("CARGO_PKG_VERSION")).into_boxed_str())
        }
        _ => env!("CARGO_PKG_VERSION"),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The man page that documents the command's --allow.
    let page = match &cli.command {
        Command::Build(_) => "wsl-tarball-build",
        Command::Check(_) => "wsl-tarball-check",
        Command::Delta(_) => "wsl-tarball-delta",
        Command::Write(_) => "wsl-tarball-write",
        _ => "wsl-tarball",
    };
    let result = match cli.command {
        Command::Write(args) => run_write(args),
        Command::Build(args) => run_build(args),
        Command::Check(args) => run_check(args).map_err(trouble),
        Command::Inspect(args) => run_inspect(args).map_err(trouble),
        Command::Verify(args) => run_verify(args).map_err(trouble),
        Command::Diff(args) => run_diff(args).map_err(trouble),
        Command::Delta(args) => run_delta(args),
        Command::Apply(args) => run_apply(args),
        Command::Sign(args) => run_sign(args),
        Command::Publish(args) => (args.request())
            .and_then(|request| app::publish(&request).map_err(with_flags))
            .map(|published| print::print_published(&published)),
        Command::Completions(args) => print::completions(args.shell),
        Command::Man(args) => print::man(args.command.as_deref()),
    };
    let code = match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if error.is::<Unsuccessful>() => ExitCode::FAILURE,
        Err(error) if findings(&error) => {
            let message = format!("{error:#}");
            eprintln!(
                "wsl-tarball: {}; accept deliberate ones with --allow (see `man {page}`)",
                Escaped(&message)
            );
            ExitCode::from(FINDINGS_EXIT_CODE)
        }
        Err(error) if error.is::<Trouble>() => {
            eprintln!("wsl-tarball: error: {}", Escaped(&error_message(&error)));
            ExitCode::from(2)
        }
        Err(error) => {
            eprintln!("wsl-tarball: error: {}", Escaped(&error_message(&error)));
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

fn run_inspect(args: InspectArgs) -> Result<()> {
    if delta::is_bundle(&args.file) {
        let inspection = delta::inspect_bundle(&args.file)?;
        return conclude(args.json, &inspection, inspection.to_text(), true, "");
    }
    let mut bar = ProgressReport::reading(&[&args.file]);
    let inspection =
        inspect::inspect_with_progress(&args.file, args.top, args.manifest.as_deref(), &mut bar);
    bar.finish();
    let inspection = inspection?;
    conclude(args.json, &inspection, inspection.to_text(), true, "")
}

fn run_verify(args: VerifyArgs) -> Result<()> {
    const FAILED: &str = "verification failed";
    let mut trusted = Vec::new();
    for argument in &args.trusted_key {
        trusted.extend(
            wsl_tarball::sign::PublicKey::from_argument(argument).context("--trusted-key")?,
        );
    }
    if let Some(v) = app::verify_channel(&args.file, &trusted).map_err(with_flags)? {
        return conclude(args.json, &v, v.to_text(), v.passed(), FAILED);
    }
    if delta::is_bundle(&args.file) {
        if args.manifest.is_some() {
            return Err(anyhow!(
                "--manifest: an update bundle holds its own manifest"
            ));
        }
        let v = delta::verify_signed_bundle(&args.file, &trusted)?;
        return conclude(args.json, &v, v.to_text(20), v.passed(), FAILED);
    }
    if !trusted.is_empty() && args.manifest.is_none() {
        return Err(anyhow!(
            "--trusted-key needs --manifest FILE for a tarball: its signature is in the manifest `write --manifest` wrote"
        ));
    }
    let mut bar = ProgressReport::reading(&[&args.file]);
    let v = inspect::verify_signed(
        &args.file,
        args.bare,
        args.manifest.as_deref(),
        args.sbom.as_deref(),
        &trusted,
        &mut bar,
    );
    bar.finish();
    let v = v?;
    conclude(args.json, &v, v.to_text(20), v.passed(), FAILED)
}

fn run_diff(args: DiffArgs) -> Result<()> {
    if wsl_tarball::archive::is_stdin(&args.a) && wsl_tarball::archive::is_stdin(&args.b) {
        <Cli as clap::CommandFactory>::command()
            .error(
                clap::error::ErrorKind::ArgumentConflict,
                "`diff - -`: standard input can be only one of the two tarballs",
            )
            .exit();
    }
    // A readable file that is no tarball: a manifest or a closure file.
    let description = |path: &Path| path.is_file() && delta::inventory::is_system_description(path);
    if description(&args.a) || description(&args.b) {
        let a = delta::read_inventory(&args.a, DEFAULT_STORE_DIR)?;
        let b = delta::read_inventory(&args.b, DEFAULT_STORE_DIR)?;
        let (a_name, b_name) = (args.a.display().to_string(), args.b.display().to_string());
        let d = delta::compare(&a, &a_name, &b, &b_name);
        return conclude(
            args.json,
            &d,
            d.to_text(),
            d.identical,
            "the systems differ",
        );
    }
    let mut bar = ProgressReport::reading(&[&args.a, &args.b]);
    let d = inspect::diff_with_progress(&args.a, &args.b, &mut bar);
    bar.finish();
    let d = d?;
    conclude(
        args.json,
        &d,
        d.to_text(),
        d.identical,
        "the tarballs differ",
    )
}

fn run_write(args: WriteArgs) -> Result<()> {
    let closure = args.system.closure.as_deref().context("--closure")?;
    let mut printer = Printer {
        checks: &args.checks,
        quiet: args.quiet,
        report_to_stdout: false,
    };
    json_beside_stream(&args.checks, &args.output)?;
    let outcome = app::write_rootfs(
        &args.system.request(closure),
        &args.content.request(&args.checks)?,
        &args.compression.request(),
        &args.output.request(),
        !args.quiet,
        &mut printer,
    )
    .map_err(with_flags)?;
    if !args.quiet {
        print_summary(&args.output.output, &outcome.summary);
    }
    Ok(())
}

/// `check`: scan an existing tarball, or the rootfs `write` would make.
fn run_check(args: CheckArgs) -> Result<()> {
    let mut printer = Printer {
        checks: &args.checks,
        quiet: args.quiet,
        report_to_stdout: true,
    };
    let content = args.content.request(&args.checks)?;
    match (&args.tarball, &args.system.closure) {
        (Some(tarball), _) => {
            // The environment of `check FILE` did not make the file: not checked.
            let store_dir = content.store_dir.trim_end_matches('/');
            app::check_tarball(tarball, &content.checks, store_dir, &mut printer)
        }
        (None, Some(closure)) => {
            let system = args.system.request(closure);
            app::check_rootfs(&system, &content, args.threads, &mut printer)
        }
        (None, None) => return Err(anyhow!("give a tarball or --closure")),
    }
    .map_err(with_flags)?;
    Ok(())
}

/// Bad usage: `--json` prints the report on stdout, where `-o -` streams
/// the tarball.
fn json_beside_stream(checks: &cli::CheckFlags, output: &cli::OutputArgs) -> Result<()> {
    if checks.json && output.request().to_stdout() {
        return Err(Trouble(anyhow::anyhow!(
            "--json prints the security report on standard output, where -o {} streams the tarball: leave out one of them",
            output.output.display()
        ))
        .into());
    }
    Ok(())
}

/// `build`: let Nix build the host, read its closure, write the tarball.
fn run_build(args: BuildArgs) -> Result<()> {
    let mut printer = Printer {
        checks: &args.checks,
        quiet: args.quiet,
        report_to_stdout: false,
    };
    let (flake, host) = args.flake_and_host()?;
    json_beside_stream(&args.checks, &args.output)?;
    let request = app::BuildRequest {
        host,
        flake,
        delta_from: args.delta_from.clone(),
        content: args.content.request(&args.checks)?,
        compression: args.compression.request(),
        output: args.output.request(),
        default_output: args.output.output == Path::new("nixos.wsl"),
        no_cache: args.no_cache,
        progress: !args.quiet,
    };
    match app::build(&request, &mut printer).map_err(with_flags)? {
        BuildOutcome::Tarball(outcome) if !args.quiet => {
            print_summary(&args.output.output, &outcome.summary)
        }
        BuildOutcome::Bundle(outcome) if !args.quiet => print_bundle(&outcome),
        _ => {}
    }
    Ok(())
}

/// `delta`: read OLD and the new closure, write the bundle.
fn run_delta(args: DeltaArgs) -> Result<()> {
    let mut printer = Printer {
        checks: &args.checks,
        quiet: args.quiet,
        report_to_stdout: false,
    };
    let request = app::DeltaRequest {
        from: args.from.clone(),
        closure: args.closure.clone(),
        system: args.system.to_string(),
        output: args.output.clone(),
        compression: args.compression.request(),
        mtime: cli::mtime(args.mtime)?,
        store_root: args.store_root.clone(),
        checks: args.checks.settings(),
        sign_key: args.sign_key.clone(),
    };
    let outcome = app::write_delta(&request, &mut printer).map_err(with_flags)?;
    if !args.quiet {
        print_bundle(&outcome);
    }
    Ok(())
}

/// `apply`: import a bundle into the running system and activate it.
fn run_apply(args: ApplyArgs) -> Result<()> {
    let options = delta::ApplyOptions {
        root: args.root,
        switch: args.switch,
        dry_activate: args.dry_activate,
        allow_unsigned: args.allow_unsigned,
    };
    let outcome = delta::apply(&args.bundle, &options).map_err(|error| match error {
        delta::DeltaError::Unsigned { .. } => anyhow!(
            "{error}. Sign it with a trusted key (`wsl-tarball sign`), or pass --allow-unsigned to apply it unchecked"
        ),
        delta::DeltaError::TrustedKeys { .. } => anyhow!(
            "{error}; nothing was changed (--allow-unsigned applies the bundle without its signature checked)"
        ),
        error => error.into(),
    })?;
    print::print_apply(&outcome);
    Ok(())
}

/// `sign`: sign an image's manifest or a bundle after the fact.
fn run_sign(args: SignArgs) -> Result<()> {
    let request = app::SignRequest {
        file: args.file,
        key: args.key,
        manifest: args.manifest,
        sbom: args.sbom,
        output: args.output,
    };
    let outcome = app::sign(&request).map_err(|error| match error {
        // `sign` names its key --key, not --sign-key.
        app::AppError::Sign(app::SignError::KeyInStore { .. }) => {
            Trouble(anyhow!("--key: {error}")).into()
        }
        error => with_flags(error),
    })?;
    eprintln!(
        "signed the {} with key {}: {}",
        outcome.kind,
        wsl_tarball::escape::escape_str(outcome.signature.name()),
        wsl_tarball::escape::escape_str(&outcome.output.display().to_string())
    );
    Ok(())
}
