//! The commands `write`, `check`, `build`, `delta`, `sign`, `publish`,
//! `inspect`, `verify` and `diff` as requests and outcomes: the policy and
//! orchestration the CLI used to carry.
//!
//! A request holds what the command line (or any other caller) decided; the
//! layer reads the inputs, chooses the skeleton, the compression (a flag
//! wins over the NixOS module's setting, which wins over gzip) and the
//! security checks (the build environment's sensitive values are searched
//! for in what is written, never in an existing tarball), plans, streams,
//! writes the manifest and commits the outputs together. It never prints:
//! what the user should hear along the way goes to an [`Events`] observer,
//! in the order it happens, and the result is an outcome or an
//! [`AppError`]. Every outcome and error carries the command's exit status
//! as a value ([`ExitStatus`]: a report's verdict, [`AppError::status`],
//! [`ReadingError::status`] for the reading commands `inspect`, `verify`,
//! `diff` and `check`); the CLI maps it to the process's exit code and
//! adds flag names to the errors.
//!
//! ```text
//! request ─► rootfs (system, skeleton, plan) ─► write::write_tarball
//!         ─► manifest ─► output::commit_all ─► cache eviction ─► outcome
//! ```

mod build;
mod delta;
mod error;
mod publish;
mod report;
mod request;
mod rootfs;
mod security;
mod sign;

pub use build::{build, BuildOutcome, BuildRequest};
pub use delta::{write_delta, DeltaOutcome, DeltaRequest};
pub use error::{AppError, ExitStatus, FindingsStage, NotStdout, SignError, STREAM_ABANDONED};
pub use publish::{publish, PublishRequest};
pub use report::{
    check, diff, inspect, verify, CheckRequest, DiffReport, InspectReport, ReadingError,
    VerifyReport, VerifyRequest,
};
pub use request::{CompressionRequest, ContentRequest, OutputRequest, Skeleton, SystemRequest};
pub use rootfs::{check_rootfs, write_rootfs, WriteOutcome};
pub use security::{check_tarball, CheckSettings};
pub use sign::{sign, SignOutcome, SignRequest};
// What requests and outcomes are made of, from modules the crate keeps to
// itself.
pub use crate::cache::CacheError;
pub use crate::cache::{parse_size, BadSize, Eviction, DEFAULT_LIMIT_BYTES as DEFAULT_CACHE_LIMIT};
pub use crate::overlap::{OverlapError, Role};
pub use crate::plan::{ChownRuleError, Conflict, EntryOrigin, NixDbMode, PlanError};
pub use crate::publish::{ChannelCheck, ChannelVerification, PublishError, Published};
pub use crate::write::WriteError;
pub use crate::write::WriteSummary;

use std::path::Path;

use crate::cache::DamagedSegment;
use crate::scan::ScanReport;

/// Something the user should hear about while a command runs.
#[derive(Debug)]
pub enum Event<'a> {
    /// WSL_TARBALL_SKIP_CHECKS is set: nothing is checked.
    ChecksSkipped,
    /// `build` chose the host itself, for this reason.
    HostChosen {
        /// The host's name in the flake's `nixosConfigurations`.
        host: &'a str,
        /// Why that one (the only one, or the machine's host name).
        reason: &'a str,
    },
    /// `build`'s host lacks the wsl-tarball module: its toplevel and a
    /// default skeleton are used.
    NoFacts {
        /// The host's name in the flake's `nixosConfigurations`.
        host: &'a str,
    },
    /// The tarball is compressed with a format WSL does not officially
    /// import (zstd): Microsoft's validator accepts only gzip and xz.
    UnofficialCompression {
        /// The compression's name (`zstd`).
        compression: &'a str,
    },
    /// The closure was read and its format detected.
    ClosureRead {
        /// Where the closure was read from (a file's path, or `nix path-info`).
        source_name: &'a str,
        /// The format detected (`exportReferencesGraph`, `path-info JSON`, ...).
        format: &'a str,
    },
    /// The security checks' report, before anything is committed.
    ScanReport(&'a ScanReport),
    /// A segment of the cache was damaged; the store path was compressed
    /// again and the entry replaced.
    DamagedCacheSegment(&'a DamagedSegment),
    /// The cache could not take a new segment (a full disk, say): the
    /// tarball is complete, later builds miss those segments.
    CacheStoreFailed(&'a CacheError),
    /// `build`'s default cache directory cannot be used: the tarball is
    /// written without a cache.
    DefaultCacheUnusable {
        /// The default cache directory.
        dir: &'a Path,
        /// Why it cannot be used.
        error: &'a CacheError,
    },
    /// After the tarball was committed, the cache was trimmed to its limit
    /// (least recently used segments first).
    CacheEvicted {
        /// The cache directory.
        dir: &'a Path,
        /// Its size limit in bytes.
        limit: u64,
        /// What was removed, and what is left.
        eviction: &'a Eviction,
    },
    /// Trimming the cache failed; the tarball is committed all the same.
    CacheEvictionFailed(&'a CacheError),
    /// Another run is committing into this output directory: this one
    /// waits for it (see [`crate::output::commit_all`]).
    WaitingForCommitLock {
        /// The output directory.
        dir: &'a Path,
    },
}

/// Sees the [`Event`]s of a run.
pub trait Events {
    /// Hears one event, as it happens.
    fn event(&mut self, event: Event<'_>);
}

/// Ignores every event.
impl Events for () {
    fn event(&mut self, _event: Event<'_>) {}
}

/// Number of worker threads when none is asked for: the number of cores.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
