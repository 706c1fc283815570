//! Mutation fuzzing of the archive reader behind `inspect`, `verify`, `diff`
//! and `check FILE`, called through the library for speed.
//!
//! The inputs are the corpus of `common::corpus`: real tarballs that
//! `wsl-tarball write` made, mutated with a fixed seed (tests/differential.rs
//! reads the same cases with GNU tar and bsdtar). Every case must end (bounded time), without
//! a panic, with memory bounded (a counting allocator: peak and largest
//! single allocation), and with error messages free of control characters.
//!
//! `cargo test --test fuzz` runs a bounded set; `cargo test --test fuzz --
//! --ignored` a longer one.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::corpus::*;
use wsl_tarball::inspect;
use wsl_tarball::scan::{archive::scan_archive_file, ScanOptions, ScanRules, ScanScope, Scanner};
use wsl_tarball::store::StoreDir;

/// Counts live bytes, their peak, and the largest single allocation.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static LARGEST: AtomicUsize = AtomicUsize::new(0);

// A counting global allocator is unsafe by its trait; it only forwards to
// `System` (test-only exception to the crate's `unsafe_code = "deny"`).
#[allow(unsafe_code)]
// SAFETY: every method forwards to `System` with the caller's arguments.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds GlobalAlloc's contract, passed on as is.
        let pointer = unsafe { System.alloc(layout) };
        if !pointer.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
            LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        }
        pointer
    }
    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        // SAFETY: the caller upholds GlobalAlloc's contract, passed on as is.
        unsafe { System.dealloc(pointer, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller upholds GlobalAlloc's contract, passed on as is.
        let new = unsafe { System.realloc(pointer, layout, new_size) };
        if !new.is_null() {
            if new_size >= layout.size() {
                let grown = new_size - layout.size();
                let live = LIVE.fetch_add(grown, Ordering::Relaxed) + grown;
                PEAK.fetch_max(live, Ordering::Relaxed);
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
            LARGEST.fetch_max(new_size, Ordering::Relaxed);
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The most one case may allocate at once above what was live before it.
const MAX_CASE_MEMORY: usize = 256 << 20;
/// The largest single allocation a reader may make: nothing is sized by an
/// untrusted length without a cap (the largest capped one is a 4 MiB
/// skeleton table).
const MAX_ALLOCATION: usize = 8 << 20;
/// A case that takes longer has hung.
const CASE_TIMEOUT: Duration = Duration::from_secs(60);

/// An error message for people: no control characters, no raw bytes.
fn assert_printable(case: &str, message: &str) {
    assert!(
        !message.chars().any(|c| c.is_control()),
        "{case}: control characters in the message {message:?}"
    );
}

/// Every reader on the file; returns a line saying how each ended.
fn read_with_every_reader(case: &str, path: &Path, original: &Path) -> String {
    let mut outcome = String::new();
    match inspect::inspect(path, 5, None) {
        Ok(_) => outcome.push_str("inspect ok; "),
        Err(e) => {
            assert_printable(case, &e.to_string());
            outcome.push_str("inspect error; ");
        }
    }
    match inspect::verify(path, false) {
        Ok(v) => outcome.push_str(if v.passed() {
            "verify ok; "
        } else {
            "verify failed; "
        }),
        Err(e) => {
            assert_printable(case, &e.to_string());
            outcome.push_str("verify error; ");
        }
    }
    match inspect::diff(path, original) {
        Ok(d) => outcome.push_str(if d.identical {
            "diff same; "
        } else {
            "diff differs; "
        }),
        Err(e) => {
            assert_printable(case, &e.to_string());
            outcome.push_str("diff error; ");
        }
    }
    let rules = std::sync::Arc::new(ScanRules::new(&ScanOptions::default()).unwrap());
    let mut scanner = Scanner::new(rules, ScanScope::new(&StoreDir::NIX));
    match scan_archive_file(path, &mut scanner) {
        Ok(()) => {
            scanner.finish();
            outcome.push_str("check ok");
        }
        Err(e) => {
            assert_printable(case, &e.to_string());
            outcome.push_str("check error");
        }
    }
    outcome
}

/// Runs one case on its own thread: a panic or a hang names the case.
fn run_case(case: String, path: PathBuf, original: PathBuf) -> String {
    let (sender, receiver) = mpsc::channel();
    let label = case.clone();
    let live_before = LIVE.load(Ordering::Relaxed);
    PEAK.store(live_before, Ordering::Relaxed);
    LARGEST.store(0, Ordering::Relaxed);
    let worker = std::thread::spawn(move || {
        let outcome = read_with_every_reader(&label, &path, &original);
        let _ = sender.send(outcome);
    });
    let outcome = match receiver.recv_timeout(CASE_TIMEOUT) {
        Ok(outcome) => outcome,
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("{case}: still reading after {CASE_TIMEOUT:?}")
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            let _ = worker.join();
            panic!("{case}: a reader panicked (see above)");
        }
    };
    worker.join().unwrap();
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(live_before);
    let largest = LARGEST.load(Ordering::Relaxed);
    assert!(
        peak <= MAX_CASE_MEMORY,
        "{case}: {peak} bytes allocated at once"
    );
    assert!(
        largest <= MAX_ALLOCATION,
        "{case}: an allocation of {largest} bytes"
    );
    outcome
}

fn fuzz(cases: usize, seed_value: u64) {
    let dir = tempfile::tempdir().unwrap();
    let seeds = seeds(dir.path());
    let originals: Vec<PathBuf> = seeds
        .iter()
        .map(|seed| {
            let path = dir.path().join(format!("original-{:?}", seed.format));
            std::fs::write(&path, &seed.file).unwrap();
            path
        })
        .collect();
    let mut rng = Rng(seed_value);
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    for index in 0..cases {
        let which = rng.below(seeds.len());
        let seed = &seeds[which];
        let mutation = choose(&mut rng, seed);
        let bytes = apply(seed, &mutation);
        let path = dir.path().join("case");
        std::fs::write(&path, &bytes).unwrap();
        let mut shown = format!("{mutation:?}");
        shown.truncate(200);
        let case = format!(
            "case {index} (seed {seed_value:#x}, {:?}): {shown}",
            seed.format
        );
        let case_started = Instant::now();
        let outcome = run_case(case, path, originals[which].clone());
        slowest = slowest.max(case_started.elapsed());
        *outcomes.entry(outcome).or_default() += 1;
    }
    eprintln!(
        "{cases} cases in {:.1} s, slowest {:.2} s; outcomes:",
        started.elapsed().as_secs_f64(),
        slowest.as_secs_f64()
    );
    for (outcome, count) in &outcomes {
        eprintln!("  {count:5}  {outcome}");
    }
    // The mutations reach past the first checks: some cases are read to the
    // end and found wrong, not only rejected.
    assert!(
        outcomes.keys().any(|o| o.contains("verify failed")),
        "{outcomes:?}"
    );
    assert!(
        outcomes.keys().any(|o| o.contains("verify error")),
        "{outcomes:?}"
    );
}

#[test]
fn mutated_tarballs_never_panic_hang_or_balloon() {
    fuzz(500, 0x5eed_0001);
}

#[test]
#[ignore = "minutes: cargo test --test fuzz -- --ignored"]
fn mutated_tarballs_never_panic_hang_or_balloon_long_run() {
    fuzz(20_000, 0x5eed_0002);
}
