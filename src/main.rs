//! The `wsl-tarball` command line: parses arguments ([`cli`]), hands them to
//! the library's request layer ([`wsl_tarball::app`]), prints what it hears
//! and returns the exit status the outcome carries ([`app::ExitStatus`]). A
//! failure's message names the flags, with any text from an input escaped
//! for the terminal ([`exit`]). The policy lives in the library.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use cli::{
    ApplyArgs, BuildArgs, CheckArgs, Cli, Command, DeltaArgs, DiffArgs, InspectArgs, PublishArgs,
    SignArgs, VerifyArgs, WriteArgs,
};
use exit::Failure;
use print::{conclude, print_bundle, print_summary, Printer};
use wsl_tarball::app::{self, BuildOutcome, ExitStatus};
use wsl_tarball::delta;

// print.rs defines the non-panicking print macros the other modules use.
#[macro_use]
mod print;
mod cli;
mod exit;
mod flags;

/// What a command returns: the exit status its outcome carries, or why it
/// failed.
type Run = Result<ExitStatus, Failure>;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let page = cli.command.man_page();
    let result = match cli.command {
        Command::Write(args) => run_write(args),
        Command::Build(args) => run_build(args),
        Command::Check(args) => run_check(args),
        Command::Inspect(args) => run_inspect(args),
        Command::Verify(args) => run_verify(args),
        Command::Diff(args) => run_diff(args),
        Command::Delta(args) => run_delta(args),
        Command::Apply(args) => run_apply(args),
        Command::Sign(args) => run_sign(args),
        Command::Publish(args) => run_publish(args),
        Command::Completions(args) => print::completions(args.shell),
        Command::Man(args) => print::man(args.command.as_deref()),
    };
    let status = result.unwrap_or_else(|failure| {
        failure.report(page);
        failure.status
    });
    ExitCode::from(print::finish(status).code())
}

fn run_publish(args: PublishArgs) -> Run {
    let published = app::publish(&args.request()?)?;
    print::print_published(&published);
    Ok(ExitStatus::Success)
}

fn run_inspect(args: InspectArgs) -> Run {
    let report = app::inspect(&args.file, args.top, args.manifest.as_deref())?;
    conclude(args.json, &report, report.to_text(), report.status())
}

fn run_verify(args: VerifyArgs) -> Run {
    let json = args.json;
    let report = app::verify(&args.request()?)?;
    conclude(json, &report, report.to_text(), report.status())
}

fn run_diff(args: DiffArgs) -> Run {
    args.check_stdin();
    let report = app::diff(&args.a, &args.b)?;
    conclude(args.json, &report, report.to_text(), report.status())
}

fn run_write(args: WriteArgs) -> Run {
    let closure = args.system.closure.as_deref().context("--closure")?;
    let mut printer = Printer {
        checks: &args.checks,
        quiet: args.quiet,
        report_to_stdout: false,
    };
    args.output.check_json(&args.checks)?;
    let outcome = app::write_rootfs(
        &args.system.request(closure),
        &args.content.request(&args.checks)?,
        &args.compression.request(),
        &args.output.request(),
        !args.quiet,
        &mut printer,
    )?;
    if !args.quiet {
        print_summary(&args.output.output, &outcome.summary);
    }
    Ok(ExitStatus::Success)
}

/// `check`: scan an existing tarball, or the rootfs `write` would make.
fn run_check(args: CheckArgs) -> Run {
    let mut printer = Printer {
        checks: &args.checks,
        quiet: args.quiet,
        report_to_stdout: true,
    };
    app::check(&args.request()?, &mut printer)?;
    Ok(ExitStatus::Success)
}

/// `build`: let Nix build the host, read its closure, write the tarball.
fn run_build(args: BuildArgs) -> Run {
    let mut printer = Printer {
        checks: &args.checks,
        quiet: args.quiet,
        report_to_stdout: false,
    };
    let (flake, host) = args.flake_and_host()?;
    args.output.check_json(&args.checks)?;
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
    match app::build(&request, &mut printer)? {
        BuildOutcome::Tarball(outcome) if !args.quiet => {
            print_summary(&args.output.output, &outcome.summary)
        }
        BuildOutcome::Bundle(outcome) if !args.quiet => print_bundle(&outcome),
        _ => {}
    }
    Ok(ExitStatus::Success)
}

/// `delta`: read OLD and the new closure, write the bundle.
fn run_delta(args: DeltaArgs) -> Run {
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
    let outcome = app::write_delta(&request, &mut printer)?;
    if !args.quiet {
        print_bundle(&outcome);
    }
    Ok(ExitStatus::Success)
}

/// `apply`: import a bundle into the running system and activate it.
fn run_apply(args: ApplyArgs) -> Run {
    let options = delta::ApplyOptions {
        root: args.root,
        switch: args.switch,
        dry_activate: args.dry_activate,
        allow_unsigned: args.allow_unsigned,
    };
    let outcome = delta::apply(&args.bundle, &options).map_err(flags::apply_failure)?;
    print::print_apply(&outcome);
    Ok(ExitStatus::Success)
}

/// `sign`: sign an image's manifest or a bundle after the fact.
fn run_sign(args: SignArgs) -> Run {
    let request = app::SignRequest {
        file: args.file,
        key: args.key,
        manifest: args.manifest,
        sbom: args.sbom,
        output: args.output,
    };
    let outcome = app::sign(&request).map_err(flags::sign_failure)?;
    print::print_signed(&outcome);
    Ok(ExitStatus::Success)
}
