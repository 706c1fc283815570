//! Registration text: what `nix-store --dump-db` writes, `--load-db` reads
//! and nixpkgs' `closureInfo` puts in `registration`.

use super::Reader;
use crate::store::{ClosureError, NarHash, PathInfo, StorePath};

impl Reader<'_> {
    pub(super) fn read_registration(&self, bytes: &[u8]) -> Result<Vec<PathInfo>, ClosureError> {
        let text = std::str::from_utf8(bytes)
            .map_err(|e| self.malformed(format!("registration text is not UTF-8: {e}")))?;
        let mut lines = RegistrationLines {
            reader: self,
            lines: text.lines(),
            line_number: 0,
        };
        let mut infos = Vec::new();
        while let Some(path_line) = lines.lines.next() {
            lines.line_number += 1;
            if path_line.is_empty() {
                // `nix-store --load-db` stops at an empty line where a path
                // would start; allow that only at the very end.
                if lines.lines.all(|line| line.trim().is_empty()) {
                    break;
                }
                return Err(self.malformed(format!(
                    "line {}: empty line where a store path was expected",
                    lines.line_number
                )));
            }
            let path = StorePath::from_absolute(path_line, self.store_dir).map_err(|source| {
                ClosureError::BadStorePath {
                    source_name: self.source_name.to_owned(),
                    path: path_line.to_owned(),
                    source,
                }
            })?;

            let hash_line = lines.expect("narHash", path_line)?;
            if hash_line.is_empty() || hash_line.starts_with('/') {
                return Err(self.malformed(format!(
                    "line {}: {path_line} has no NAR hash; registration text without \
                     hashes (for `nix-store --register-validity` without `--hash-given`) \
                     cannot describe a closure",
                    lines.line_number
                )));
            }
            let nar_hash = NarHash::parse(hash_line).map_err(|source| ClosureError::BadHash {
                source_name: self.source_name.to_owned(),
                path: path_line.to_owned(),
                source,
            })?;

            let nar_size = lines.expect_number("narSize", path_line)?;

            let deriver = match lines.expect("deriver", path_line)? {
                "" => None,
                text => Some(self.store_path(text)?),
            };

            let count: usize = lines.expect_number("number of references", path_line)?;
            let mut references = Vec::new();
            for _ in 0..count {
                let reference = lines.expect("reference", path_line)?;
                references.push(self.store_path(reference)?);
            }
            references.sort();
            references.dedup();

            infos.push(PathInfo {
                path,
                nar_hash,
                nar_size,
                references,
                deriver,
                ca: None,
                signatures: Vec::new(),
            });
        }
        Ok(infos)
    }
}

/// Line-by-line access to registration text.
struct RegistrationLines<'a> {
    reader: &'a Reader<'a>,
    lines: std::str::Lines<'a>,
    /// 1-based number of the line last returned.
    line_number: usize,
}

impl<'a> RegistrationLines<'a> {
    /// The next line, which holds the `what` of `path`.
    fn expect(&mut self, what: &str, path: &str) -> Result<&'a str, ClosureError> {
        self.line_number += 1;
        self.lines.next().ok_or_else(|| {
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
                "line {}: {path}: {what} {line:?} is not a non-negative integer",
                self.line_number
            ))
        })
    }
}
