//! Progress of a write or a read, reported to an observer the caller passes
//! in.
//!
//! [`write_tarball`](crate::write::write_tarball) counts the bytes of the tar
//! stream as they go into the compressor and tells a [`Progress`] now and
//! then; `inspect`, `verify` and `diff` count the bytes of the file(s) they
//! read; `()` ignores it. [`ProgressReport`] is the one observer that draws:
//! on stderr, never stdout, a bar on a terminal and a line every ten seconds
//! otherwise; the file name on the bar is escaped for the terminal.

use crate::count::count;
use std::io::{self, IsTerminal, Write};
use std::path::Path;
use std::time::{Duration, Instant};

/// Sees how far a write or a read has got.
pub trait Progress {
    /// `archive_bytes` bytes of the uncompressed tar stream are written, or,
    /// for a read, bytes of the (compressed) input file(s) are read.
    /// Called at most every [`REPORT_EVERY`] bytes, and once at the end.
    fn advance(&mut self, archive_bytes: u64);
}

/// No progress reporting.
impl Progress for () {
    fn advance(&mut self, _archive_bytes: u64) {}
}

/// How many bytes pass between two reports.
pub const REPORT_EVERY: u64 = 4 << 20;

/// A writer that counts what passes through it and reports to a [`Progress`].
pub struct ProgressWriter<'p, W: Write> {
    inner: W,
    progress: &'p mut dyn Progress,
    written: u64,
    reported: u64,
}

impl<'p, W: Write> ProgressWriter<'p, W> {
    /// Counts what is written to `inner`, reporting it to `progress`.
    pub fn new(inner: W, progress: &'p mut dyn Progress) -> Self {
        ProgressWriter {
            inner,
            progress,
            written: 0,
            reported: 0,
        }
    }

    /// The inner writer, for bytes that reach it another way (see
    /// [`ProgressWriter::count`]).
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// Counts archive bytes that reached the inner writer without passing
    /// through this one (spliced from the segment cache).
    pub fn count(&mut self, archive_bytes: u64) {
        self.written += archive_bytes;
    }

    /// Reports the final count and hands back the inner writer.
    pub fn finish(self) -> W {
        self.progress.advance(self.written);
        self.inner
    }
}

impl<W: Write> Write for ProgressWriter<'_, W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(bytes)?;
        self.written += n as u64;
        if self.written - self.reported >= REPORT_EVERY {
            self.reported = self.written;
            self.progress.advance(self.written);
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Progress of a write on stderr: a bar naming the file and the store path
/// count when stderr is a terminal, a line every ten seconds otherwise,
/// nothing when quiet.
pub enum ProgressReport {
    /// Nothing is shown.
    Quiet,
    /// A bar on the terminal.
    Bar(indicatif::ProgressBar),
    /// A line every ten seconds.
    Lines {
        /// Bytes expected in all.
        total: u64,
        /// When the write started.
        started: Instant,
        /// When the last line was printed.
        last_line: Instant,
    },
}

impl ProgressReport {
    /// A report of writing `store_paths` store paths (`total_nar_bytes` in
    /// all) to `output`.
    pub fn new(quiet: bool, total_nar_bytes: u64, output: &Path, store_paths: usize) -> Self {
        if quiet {
            return ProgressReport::Quiet;
        }
        if !io::stderr().is_terminal() {
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
            "{{prefix}} {{elapsed_precise}} {bar_style} {{binary_bytes}}/{{binary_total_bytes}} {{binary_bytes_per_sec}} ETA {{eta}}"
        );
        let style = indicatif::ProgressStyle::with_template(&template)
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
        let name = bar_name(output);
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(total_nar_bytes),
            indicatif::ProgressDrawTarget::stderr(),
        )
        .with_style(style)
        .with_prefix(format!("{name}, {}", count(store_paths, "store path")));
        ProgressReport::Bar(bar)
    }

    /// A report of reading `files` (`inspect`, `verify`, `diff`): a bar on
    /// stderr when it is a terminal and the regular files among them hold at
    /// least 16 MiB; nothing otherwise (no log lines: a read is quick).
    pub fn reading(files: &[&Path]) -> Self {
        let total: u64 = files
            .iter()
            .filter_map(|file| std::fs::metadata(file).ok())
            .filter(|metadata| metadata.is_file())
            .map(|metadata| metadata.len())
            .sum();
        if !io::stderr().is_terminal() || total < 16 << 20 {
            return ProgressReport::Quiet;
        }
        let first = files.first().map_or(Path::new(""), |file| file.as_ref());
        match ProgressReport::new(false, total, first, 0) {
            ProgressReport::Bar(bar) => {
                bar.set_prefix(format!("reading {}", bar_name(first)));
                ProgressReport::Bar(bar)
            }
            other => other,
        }
    }

    /// Clears the bar.
    pub fn finish(&self) {
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
                    let _ = writeln!(
                        io::stderr(),
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

/// The name a bar shows for `path`: its last component (the whole path
/// without one), escaped for the terminal.
fn bar_name(path: &Path) -> String {
    crate::escape::escape_path(path.file_name().map_or(path, Path::new))
}

/// `1.5 MiB`-style sizes for people.
pub fn human_bytes(bytes: u64) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    struct Seen(Vec<u64>);

    impl Progress for Seen {
        fn advance(&mut self, archive_bytes: u64) {
            self.0.push(archive_bytes);
        }
    }

    #[test]
    fn the_bar_shows_the_file_name_escaped() {
        assert_eq!(bar_name(Path::new("/tmp/nixos.wsl")), "nixos.wsl");
        assert_eq!(
            bar_name(Path::new("/tmp/a\x1b]0;pwned\x07\n.wsl")),
            "a\\033]0;pwned\\a\\n.wsl"
        );
        assert_eq!(bar_name(Path::new("/")), "/");
    }

    #[test]
    fn reports_every_few_megabytes_and_at_the_end() {
        let mut seen = Seen(Vec::new());
        let mut writer = ProgressWriter::new(Vec::new(), &mut seen);
        let chunk = vec![0u8; 1 << 20];
        for _ in 0..9 {
            writer.write_all(&chunk).unwrap();
        }
        let bytes = writer.finish();
        assert_eq!(bytes.len(), 9 << 20);
        assert_eq!(seen.0, vec![4 << 20, 8 << 20, 9 << 20]);
    }
}
