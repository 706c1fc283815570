//! `check`'s arguments, and the security checks' flags every command that
//! scans shares.

use std::path::PathBuf;

use clap::Args;

use wsl_tarball::app::{CheckRequest, CheckSettings};

use crate::exit::Failure;

use super::rootfs::{ContentArgs, SystemArgs};

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

impl CheckArgs {
    /// The request: an existing tarball, or the rootfs `write` would make.
    pub fn request(&self) -> Result<CheckRequest, Failure> {
        let content = self.content.request(&self.checks)?;
        Ok(match (&self.tarball, &self.system.closure) {
            (Some(tarball), _) => CheckRequest::Tarball {
                tarball: tarball.clone(),
                content,
            },
            (None, Some(closure)) => CheckRequest::Rootfs {
                system: self.system.request(closure),
                content,
                threads: self.threads,
            },
            (None, None) => {
                return Err(Failure::trouble(anyhow::anyhow!(
                    "give a tarball or --closure"
                )))
            }
        })
    }
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
