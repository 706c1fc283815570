//! Security checks: no secret or personal data ships inside a tarball.
//!
//! The scan looks at what actually ships: every member's name, every symlink
//! target and every content byte, in the same pass that writes the archive
//! (a [`ContentObserver`] on the tar writer), or, for `check FILE.wsl`, while
//! reading an existing archive ([`archive`]). Nothing is read twice.
//!
//! - [`detect`]: the built-in detectors (private-key blocks, cloud and forge
//!   tokens, shadow password hashes, `authorized_keys` lines), each an anchor
//!   plus a validator on the bytes around it, so that a bare prefix such as
//!   `ghp_` is not a finding. Users add literal `--pattern`s and personal
//!   `--identifier`s (case-insensitive, at word boundaries).
//! - [`stream`]: Aho-Corasick search over chunked content with a bounded
//!   carry, so a match straddling two read chunks is found and findings do
//!   not depend on chunk sizes.
//! - Scope: a finding in user-controlled content (outside the store, or in
//!   the system's toplevel, its `etc` tree, or a store path that tree links
//!   to as a whole) is an [`Severity::Error`]; elsewhere in the store it is a
//!   [`Severity::Warning`], since packages ship test keys. `strict` makes
//!   every finding an error. Severity is decided when the scan ends, so the
//!   system may be discovered from the archive itself.
//! - [`allow`]: accepted findings by detector and path glob.
//! - [`env`](mod@env): the build-environment check: the values of sensitive
//!   variables, searched for like any other anchor.
//! - [`report`]: findings in a fixed order, human text, JSON, redaction.
//!
//! The [`Scanner`] runs inline, on the thread that tars the bytes, as a
//! [`ContentObserver`]: it sees the very buffers that are written, with no
//! copy. `write` scans the archive's segments on several threads at once:
//! each gets a [`Scanner::fresh`] copy, and [`Scanner::judge`] makes one
//! report of their [`SegmentScan`]s, the same as one pass would. A
//! [`SegmentScan`] is a pure function of the segment and
//! [`ScanRules::fingerprint`], so `--cache` stores and replays it.

mod allow;
pub mod archive;
mod detect;
mod env;
mod report;
mod stream;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use allow::{AllowRule, AllowRuleError};
pub use detect::Detector;
pub use env::{sensitive_variables, SensitiveVariable};
pub use report::{Detail, Finding, Part, ScanReport, Severity};

use crate::entry::{Entry, EntryKind};
use crate::store::StoreDir;
use crate::tar::ContentObserver;
use detect::{Context, BUILTIN_ANCHORS};
use stream::{AnchorKind, Hit, Searcher, Stream};

/// The environment variable that skips every check (with a loud notice).
pub const SKIP_CHECKS_VAR: &str = "WSL_TARBALL_SKIP_CHECKS";

/// Exit status of the CLI when error-severity findings stop a run.
pub const FINDINGS_EXIT_CODE: u8 = 3;

/// True if `WSL_TARBALL_SKIP_CHECKS` asks to skip the checks (`1`, `true`,
/// `yes`).
pub fn checks_skipped_by(value: Option<&std::ffi::OsStr>) -> bool {
    value
        .and_then(|v| v.to_str())
        .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
}

/// What the user configures.
#[derive(Debug, Clone, Default)]
pub struct ScanOptions {
    /// Literals reported wherever they occur (case-sensitive).
    pub patterns: Vec<String>,
    /// Names, e-mail addresses, host names: case-insensitive, whole words.
    pub identifiers: Vec<String>,
    /// Findings these rules accept: counted as allowed, not reported.
    pub allow: Vec<AllowRule>,
    /// Every finding is an error.
    pub strict: bool,
    /// Sensitive build-environment variables whose values must not ship.
    pub environment: Vec<SensitiveVariable>,
}

/// Why the checks could not be set up. The messages speak of patterns and
/// identifiers, not of the flags or options that gave them.
#[derive(Debug, thiserror::Error)]
pub enum ScanConfigError {
    #[error("a pattern to report is empty (it would match everywhere)")]
    /// An empty `--pattern`.
    EmptyPattern,
    #[error("a personal identifier to report is empty or only spaces (it would match everywhere)")]
    /// An empty `--identifier`.
    EmptyIdentifier,
    #[error("building the pattern automaton: {0}")]
    /// The search automaton could not be built.
    Automaton(#[from] aho_corasick::BuildError),
}

/// Compiled options, shared by every scanner.
#[derive(Debug)]
pub struct ScanRules {
    searchers: Vec<Searcher>,
    /// Names of the sensitive variables whose values are searched for.
    environment: Vec<String>,
    allow: Vec<AllowRule>,
    strict: bool,
    /// See [`ScanRules::fingerprint`].
    fingerprint: [u8; 32],
}

impl ScanRules {
    /// The rules for `options`: the built-in detectors plus its patterns and
    /// identifiers.
    pub fn new(options: &ScanOptions) -> Result<Self, ScanConfigError> {
        let mut anchors: Vec<(Vec<u8>, AnchorKind)> = BUILTIN_ANCHORS
            .iter()
            .map(|(anchor, family)| (anchor.as_bytes().to_vec(), AnchorKind::Builtin(*family)))
            .collect();
        for pattern in &options.patterns {
            if pattern.is_empty() {
                return Err(ScanConfigError::EmptyPattern);
            }
            anchors.push((pattern.as_bytes().to_vec(), AnchorKind::Pattern));
        }
        let mut environment = Vec::new();
        for variable in &options.environment {
            let name: Arc<str> = variable.name.as_str().into();
            anchors.push((variable.value.clone(), AnchorKind::EnvironmentValue(name)));
            environment.push(variable.name.clone());
        }
        let mut fingerprint = Sha256::new();
        fingerprint.update(concat!(
            "wsl-tarball ",
            env!("CARGO_PKG_VERSION"),
            " scan rules\n"
        ));
        let mut add_anchors = |anchors: &[(Vec<u8>, AnchorKind)], words: bool| {
            fingerprint.update([u8::from(words)]);
            for (anchor, kind) in anchors {
                let kind = format!("{kind:?}");
                for part in [anchor.as_slice(), kind.as_bytes()] {
                    fingerprint.update((part.len() as u64).to_le_bytes());
                    fingerprint.update(part);
                }
            }
        };
        add_anchors(&anchors, false);
        let mut searchers = Vec::new();
        if !options.identifiers.is_empty() {
            let mut identifiers = Vec::new();
            for identifier in &options.identifiers {
                if identifier.trim().is_empty() {
                    return Err(ScanConfigError::EmptyIdentifier);
                }
                identifiers.push((identifier.as_bytes().to_vec(), AnchorKind::Identifier));
            }
            add_anchors(&identifiers, true);
            searchers.push(Searcher::new(identifiers, true)?);
        }
        searchers.insert(0, Searcher::new(anchors, false)?);
        Ok(ScanRules {
            searchers,
            environment,
            allow: options.allow.clone(),
            strict: options.strict,
            fingerprint: fingerprint.finalize().into(),
        })
    }

    /// SHA-256 of everything that decides what a [`SegmentScan`] holds: the
    /// tool's version (its detectors), the patterns, the identifiers and the
    /// sensitive values (hashed, never stored). The allow-list and `strict`
    /// apply later, in [`Scanner::judge`], and are not part of it.
    pub fn fingerprint(&self) -> [u8; 32] {
        self.fingerprint
    }

    /// Applies `--strict` and the allow-list, and sorts: the final report.
    pub fn judge(&self, findings: Vec<Finding>, members: u64, bytes: u64) -> ScanReport {
        let mut report = ScanReport {
            members,
            bytes,
            environment_not_found: self.environment.clone(),
            ..ScanReport::default()
        };
        let found_excerpts: BTreeSet<String> = findings
            .iter()
            .filter(|f| f.detector == Detector::Environment)
            .map(|f| f.excerpt.clone())
            .collect();
        for mut finding in findings {
            if self.allow.iter().any(|rule| rule.allows(&finding)) {
                report.allowed += 1;
                continue;
            }
            if self.strict {
                finding.severity = Severity::Error;
            }
            report.findings.push(finding);
        }
        report.environment_not_found.retain(|name| {
            let excerpt = report::environment_excerpt(name);
            !found_excerpts.contains(&excerpt)
        });
        report::sort_findings(&mut report.findings);
        report
    }
}

/// Which store paths count as user-controlled.
#[derive(Debug, Clone)]
pub struct ScanScope {
    /// The logical store directory, `/nix/store`.
    pub store_dir: StoreDir,
    /// Base name of the NixOS toplevel; if unknown, it is read from the
    /// archive's `/nix/var/nix/profiles/system-1-link`.
    pub system: Option<String>,
    /// Further store path base names to treat as user-controlled.
    pub user_store_paths: BTreeSet<String>,
}

impl ScanScope {
    /// The scope of a rootfs whose store is `store_dir`, with no system and
    /// no user store paths known yet.
    pub fn new(store_dir: &StoreDir) -> Self {
        ScanScope {
            store_dir: store_dir.clone(),
            system: None,
            user_store_paths: BTreeSet::new(),
        }
    }
}

/// Learns, from the members going by, which store paths are the system's
/// configuration: the toplevel, the target of its `etc` link, and the store
/// paths that `etc` tree links to as a whole (`environment.etc.*.text`).
/// What it learns is kept as [`ScopeLinks`], per segment.
#[derive(Debug)]
struct ScopeTracker {
    /// `nix/store/`: member paths below it are in the store.
    member_prefix: Vec<u8>,
    /// `/nix/store/`: link targets below it point into the store.
    target_prefix: Vec<u8>,
    links: ScopeLinks,
}

/// The symlinks of one segment that decide the scope (see [`ScopeTracker`]).
/// Merged in archive order, they give what one pass over the whole archive
/// would have learnt.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ScopeLinks {
    /// The target of `/nix/var/nix/profiles/system-1-link`, if seen.
    system: Option<String>,
    /// Store path ─► the store path its top-level `etc` symlink points into.
    etc_links: BTreeMap<String, String>,
    /// Store path ─► store paths it links to as a whole.
    whole_links: BTreeMap<String, BTreeSet<String>>,
}

impl ScopeLinks {
    /// Adds what a later segment learnt.
    fn merge(&mut self, later: ScopeLinks) {
        if self.system.is_none() {
            self.system = later.system;
        }
        self.etc_links.extend(later.etc_links);
        for (owner, targets) in later.whole_links {
            self.whole_links.entry(owner).or_default().extend(targets);
        }
    }

    /// The user-controlled store paths (base names) under `scope`.
    fn user_controlled(&self, scope: &ScanScope) -> BTreeSet<String> {
        let mut set = scope.user_store_paths.clone();
        if let Some(system) = scope.system.as_ref().or(self.system.as_ref()) {
            set.insert(system.clone());
            if let Some(etc) = self.etc_links.get(system) {
                set.insert(etc.clone());
                set.extend(self.whole_links.get(etc).into_iter().flatten().cloned());
            }
        }
        set
    }
}

impl ScopeTracker {
    fn new(scope: &ScanScope) -> Self {
        let relative = scope.store_dir.relative();
        ScopeTracker {
            member_prefix: format!("{relative}/").into_bytes(),
            target_prefix: format!("/{relative}/").into_bytes(),
            links: ScopeLinks::default(),
        }
    }

    /// The store path a member belongs to, and the rest of its path.
    fn store_path_of<'p>(&self, path: &'p [u8]) -> Option<(String, &'p [u8])> {
        split_store_path(path.strip_prefix(self.member_prefix.as_slice())?)
    }

    fn observe(&mut self, path: &[u8], link_target: Option<&[u8]>) {
        let Some(target) = link_target else { return };
        let target_in_store = target
            .strip_prefix(self.target_prefix.as_slice())
            .and_then(split_store_path);
        let Some((target_path, target_rest)) = target_in_store else {
            return;
        };
        if path == b"nix/var/nix/profiles/system-1-link" {
            self.links.system.get_or_insert(target_path);
            return;
        }
        let Some((owner, rest)) = self.store_path_of(path) else {
            return;
        };
        if rest == b"etc" {
            self.links
                .etc_links
                .insert(owner.clone(), target_path.clone());
        }
        if target_rest.is_empty() {
            self.links
                .whole_links
                .entry(owner)
                .or_default()
                .insert(target_path);
        }
    }
}

/// `HASH-NAME/rest…` ─► (`HASH-NAME`, `rest…`).
fn split_store_path(path: &[u8]) -> Option<(String, &[u8])> {
    let (base, rest) = match memchr::memchr(b'/', path) {
        Some(slash) => (&path[..slash], &path[slash + 1..]),
        None => (path, &b""[..]),
    };
    if base.is_empty() {
        return None;
    }
    Some((String::from_utf8_lossy(base).into_owned(), rest))
}

/// A finding whose severity waits for the scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PendingFinding {
    finding: Finding,
    /// `None`: outside the store.
    store_path: Option<String>,
}

/// The archive member being scanned: where its findings belong.
#[derive(Debug)]
struct ScannedMember {
    display_path: Arc<str>,
    store_path: Option<String>,
    context: Context,
}

/// What scanning one segment of an archive (a store path, or the members
/// the tool makes) found, before severities are decided: a pure function of
/// the segment's members and the rules' [`ScanRules::fingerprint`], so it
/// can be cached and replayed. [`Scanner::judge`] turns the segments of an
/// archive, in order, into its report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentScan {
    found: Vec<PendingFinding>,
    links: ScopeLinks,
    members: u64,
    bytes: u64,
}

/// Scans members and their content; see the module docs.
///
/// One scanner sees one stream of members. To scan the segments of an
/// archive on several threads, each segment gets a [`Scanner::fresh`] copy,
/// ends with [`Scanner::finish_segment`], and [`Scanner::judge`] makes the
/// report from all of them.
#[derive(Debug)]
pub struct Scanner {
    rules: Arc<ScanRules>,
    scope: ScanScope,
    tracker: ScopeTracker,
    current: Option<ScannedMember>,
    stream: Stream,
    hits: Vec<Hit>,
    found: Vec<PendingFinding>,
    members: u64,
    bytes: u64,
}

impl Scanner {
    /// A scanner with `rules` over a stream of members in `scope`.
    pub fn new(rules: Arc<ScanRules>, scope: ScanScope) -> Self {
        Scanner {
            rules,
            tracker: ScopeTracker::new(&scope),
            scope,
            current: None,
            stream: Stream::new(),
            hits: Vec::new(),
            found: Vec::new(),
            members: 0,
            bytes: 0,
        }
    }

    /// A scanner with the same rules and scope that has seen nothing.
    pub fn fresh(&self) -> Self {
        Scanner::new(Arc::clone(&self.rules), self.scope.clone())
    }

    /// The rules this scanner applies.
    pub fn rules(&self) -> &ScanRules {
        &self.rules
    }

    /// A member starts: `path` below the root (no `./`, no trailing `/`).
    pub fn begin_member(&mut self, path: &[u8], link_target: Option<&[u8]>) {
        if self.current.is_some() {
            self.end_member();
        }
        self.members += 1;
        self.tracker.observe(path, link_target);
        let store_path = self.tracker.store_path_of(path).map(|(base, _)| base);
        let display_path: Arc<str> = format!("/{}", String::from_utf8_lossy(path)).into();
        let name_start = memchr::memrchr(b'/', path).map_or(0, |slash| slash + 1);
        let name = &path[name_start..];
        let in_keys_dir = path[..name_start.saturating_sub(1)].ends_with(b"authorized_keys.d");
        let member = ScannedMember {
            display_path,
            store_path,
            context: Context {
                is_content: true,
                authorized_keys_file: name.starts_with(b"authorized_keys") || in_keys_dir,
            },
        };
        let rules = Arc::clone(&self.rules);
        let searchers = &rules.searchers;
        let mut hits = std::mem::take(&mut self.hits);
        Stream::scan_all(searchers, name, Context::default(), &mut hits);
        self.record(&member, Part::Name, name_start as u64, &mut hits);
        if let Some(target) = link_target {
            Stream::scan_all(searchers, target, Context::default(), &mut hits);
            self.record(&member, Part::LinkTarget, 0, &mut hits);
        }
        self.hits = hits;
        self.current = Some(member);
    }

    /// The next chunk of the current member's content.
    pub fn content(&mut self, chunk: &[u8]) {
        let Some(member) = &self.current else { return };
        self.bytes += chunk.len() as u64;
        self.stream
            .feed(&self.rules.searchers, chunk, member.context, &mut self.hits);
    }

    /// The current member is complete.
    pub fn end_member(&mut self) {
        let Some(member) = self.current.take() else {
            return;
        };
        self.stream
            .finish(&self.rules.searchers, member.context, &mut self.hits);
        let mut hits = std::mem::take(&mut self.hits);
        self.record(&member, Part::Content, 0, &mut hits);
        self.hits = hits;
    }

    fn record(
        &mut self,
        member: &ScannedMember,
        part: Part,
        base_offset: u64,
        hits: &mut Vec<Hit>,
    ) {
        for hit in hits.drain(..) {
            self.found.push(PendingFinding {
                finding: Finding {
                    severity: Severity::Warning,
                    detector: hit.detector,
                    path: member.display_path.to_string(),
                    store_path: member
                        .store_path
                        .as_ref()
                        .map(|base| format!("{}/{base}", self.scope.store_dir)),
                    part,
                    offset: base_offset + hit.offset,
                    length: hit.len,
                    excerpt: hit.excerpt,
                    user_controlled: false,
                },
                store_path: member.store_path.clone(),
            });
        }
    }

    /// What this scanner found, as one segment of an archive.
    pub fn finish_segment(mut self) -> SegmentScan {
        self.end_member();
        SegmentScan {
            found: self.found,
            links: self.tracker.links,
            members: self.members,
            bytes: self.bytes,
        }
    }

    /// The report for the members this scanner saw.
    pub fn finish(self) -> ScanReport {
        let rules = Arc::clone(&self.rules);
        let scope = self.scope.clone();
        judge_segments(&rules, &scope, [self.finish_segment()])
    }

    /// The report for an archive whose segments, in archive order, were
    /// scanned by [`Scanner::fresh`] copies of this scanner: decides
    /// severities, applies the allow-list and `strict`, and sorts. The same
    /// as one scanner seeing the whole archive.
    pub fn judge(&self, segments: impl IntoIterator<Item = SegmentScan>) -> ScanReport {
        judge_segments(&self.rules, &self.scope, segments)
    }
}

/// See [`Scanner::judge`].
fn judge_segments(
    rules: &ScanRules,
    scope: &ScanScope,
    segments: impl IntoIterator<Item = SegmentScan>,
) -> ScanReport {
    let mut links = ScopeLinks::default();
    let mut found = Vec::new();
    let (mut members, mut bytes) = (0, 0);
    for segment in segments {
        links.merge(segment.links);
        found.extend(segment.found);
        members += segment.members;
        bytes += segment.bytes;
    }
    let user_controlled = links.user_controlled(scope);
    let mut findings = Vec::with_capacity(found.len());
    for pending in found {
        let mut finding = pending.finding;
        finding.user_controlled = pending
            .store_path
            .as_ref()
            .map_or(true, |p| user_controlled.contains(p));
        // A sensitive variable's value is a leak wherever it is.
        finding.severity = if finding.user_controlled || finding.detector == Detector::Environment {
            Severity::Error
        } else {
            Severity::Warning
        };
        findings.push(finding);
    }
    rules.judge(findings, members, bytes)
}

impl ContentObserver for Scanner {
    fn begin_entry(&mut self, entry: &Entry) {
        let target = match &entry.kind {
            EntryKind::Symlink { target } => Some(target.as_slice()),
            _ => None,
        };
        self.begin_member(&entry.path, target);
    }

    fn content(&mut self, chunk: &[u8]) {
        Scanner::content(self, chunk);
    }

    fn end_entry(&mut self) {
        self.end_member();
    }
}

#[cfg(test)]
mod tests;
