//! Registration text: what `nix-store --dump-db` writes, `--load-db` reads
//! and nixpkgs' `closureInfo` puts in `registration`.

use super::Reader;
use crate::store::{ClosureError, NarHash, PathInfo, StoreDir, StorePath};

/// The most references one registration record may list: far more than
/// any real store path has, and it keeps one record's memory bounded.
pub const MAX_REFERENCES: usize = 100_000;

/// Where registration text comes from, one line at a time.
pub trait RegistrationLines {
    /// The next line without its newline, `None` at the end, or why it
    /// cannot be read.
    fn next_line(&mut self) -> Result<Option<&str>, String>;
}

impl RegistrationLines for std::str::Lines<'_> {
    fn next_line(&mut self) -> Result<Option<&str>, String> {
        Ok(self.next())
    }
}

/// Registration records, parsed one at a time: the one parser of the
/// format, for closure inputs held in memory and for the
/// `/nix-path-registration` that `verify` streams out of a tarball.
pub struct RegistrationRecords<'a, L> {
    reader: Reader<'a>,
    lines: L,
    /// 1-based number of the line last read.
    line_number: usize,
}

/// Reads registration text from `lines`; `source_name` goes in every error,
/// `store_dir` is the store directory the paths must be in.
pub fn registration_records<'a, L: RegistrationLines>(
    lines: L,
    source_name: &'a str,
    store_dir: &'a StoreDir,
) -> RegistrationRecords<'a, L> {
    RegistrationRecords {
        reader: Reader {
            source_name,
            store_dir,
        },
        lines,
        line_number: 0,
    }
}

impl Reader<'_> {
    pub(super) fn read_registration(&self, bytes: &[u8]) -> Result<Vec<PathInfo>, ClosureError> {
        let text = std::str::from_utf8(bytes)
            .map_err(|e| self.malformed(format!("registration text is not UTF-8: {e}")))?;
        let mut records = registration_records(text.lines(), self.source_name, self.store_dir);
        let mut infos = Vec::new();
        while let Some(info) = records.next_record()? {
            infos.push(info);
        }
        Ok(infos)
    }
}

impl<L: RegistrationLines> RegistrationRecords<'_, L> {
    /// The next line, owned; `None` at the end.
    fn line(&mut self) -> Result<Option<String>, ClosureError> {
        self.line_number += 1;
        match self.lines.next_line() {
            Ok(line) => Ok(line.map(str::to_owned)),
            Err(why) => Err(self
                .reader
                .malformed(format!("line {}: {why}", self.line_number))),
        }
    }

    /// The next line, which holds the `what` of `path`.
    fn expect(&mut self, what: &str, path: &str) -> Result<String, ClosureError> {
        self.line()?.ok_or_else(|| {
            self.reader.malformed(format!(
                "line {}: {path}: the input ends where its {what} was expected",
                self.line_number
            ))
        })
    }

    fn expect_number<N: std::str::FromStr>(
        &mut self,
        what: &str,
        path: &str,
    ) -> Result<N, ClosureError> {
        let line = self.expect(what, path)?;
        line.parse().map_err(|_| {
            self.reader.malformed(format!(
                "line {}: {path}: {what} \"{line}\" is not a non-negative integer",
                self.line_number
            ))
        })
    }

    /// The next record, or `None` at the end of the text.
    pub fn next_record(&mut self) -> Result<Option<PathInfo>, ClosureError> {
        let Some(path_line) = self.line()? else {
            return Ok(None);
        };
        if path_line.is_empty() {
            // `nix-store --load-db` stops at an empty line where a path
            // would start; allow that only at the very end.
            let empty_at = self.line_number;
            while let Some(line) = self.line()? {
                if !line.trim().is_empty() {
                    return Err(self.reader.malformed(format!(
                        "line {empty_at}: empty line where a store path was expected"
                    )));
                }
            }
            return Ok(None);
        }
        let reader = self.reader;
        let path = StorePath::from_absolute(&path_line, reader.store_dir).map_err(|source| {
            ClosureError::BadStorePath {
                source_name: reader.source_name.to_owned(),
                path: path_line.clone(),
                source,
            }
        })?;

        let hash_line = self.expect("narHash", &path_line)?;
        if hash_line.is_empty() || hash_line.starts_with('/') {
            return Err(reader.malformed(format!(
                "line {}: {path_line} has no NAR hash; registration text without \
                 hashes (for `nix-store --register-validity` without `--hash-given`) \
                 cannot describe a closure",
                self.line_number
            )));
        }
        let nar_hash = NarHash::parse(&hash_line).map_err(|source| ClosureError::BadHash {
            source_name: reader.source_name.to_owned(),
            path: path_line.clone(),
            source,
        })?;

        let nar_size = self.expect_number("narSize", &path_line)?;

        let deriver = match self.expect("deriver", &path_line)?.as_str() {
            "" => None,
            text => Some(reader.store_path(text)?),
        };

        let count: usize = self.expect_number("number of references", &path_line)?;
        if count > MAX_REFERENCES {
            return Err(reader.malformed(format!(
                "line {}: {path_line}: {count} references, more than the {MAX_REFERENCES} wsl-tarball reads",
                self.line_number
            )));
        }
        let mut references = Vec::with_capacity(count.min(1024));
        for _ in 0..count {
            let reference = self.expect("reference", &path_line)?;
            references.push(reader.store_path(&reference)?);
        }
        references.sort();
        references.dedup();

        Ok(Some(PathInfo {
            path,
            nar_hash,
            nar_size,
            references,
            deriver,
            ca: None,
            signatures: Vec::new(),
        }))
    }
}
