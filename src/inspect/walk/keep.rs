//! What the walk keeps of a member's content: the small text files `verify`
//! reads, the Nix database (spilled to an unnamed temporary file), `wsl.conf`,
//! and the first bytes of executables, all within their limits.

use super::*;

/// A kept file being read.
pub(super) enum Keeping {
    Bytes(Vec<u8>),
    Spill(std::fs::File),
}

impl ArchiveWalk {
    /// The next chunk of content, for the head and the kept file.
    pub(super) fn keep_content(&mut self, chunk: &[u8]) {
        if let Some((_, head)) = &mut self.head {
            let want = SCRIPT_HEAD.saturating_sub(head.len()).min(chunk.len());
            head.extend_from_slice(&chunk[..want]);
        }
        match &mut self.kept {
            Some((_, Keeping::Bytes(bytes))) => bytes.extend_from_slice(chunk),
            Some((path, Keeping::Spill(file))) => {
                if let Err(error) = file.write_all(chunk) {
                    self.spill_error = Some(crate::inspect::TemporaryError::new(
                        format!("cannot write {} to a temporary file", display_path(path)),
                        error,
                    ));
                    self.kept = None;
                }
            }
            None => {}
        }
    }

    /// Starts keeping the content of a database or skeleton file.
    pub(super) fn start_keeping(&mut self, member: &Member) {
        let path = member.path.as_slice();
        let name = path.rsplit(|&b| b == b'/').next().unwrap_or(path);
        let wsl_conf = WSL_CONF_NAMES.iter().any(|n| {
            name == *n || (name.ends_with(n) && name[..name.len() - n.len()].ends_with(b"-"))
        });
        let limit = if KEPT_TEXT_FILES.contains(&path) {
            MAX_KEPT_TEXT
        } else if DATABASE_FILES.contains(&path) {
            MAX_DATABASE_BYTES
        } else if wsl_conf && self.wsl_confs < MAX_WSL_CONFS {
            self.wsl_confs += 1;
            MAX_WSL_CONF
        } else {
            return;
        };
        if member.size > limit {
            self.kept_files.insert(
                path.to_vec(),
                KeptFile::TooLarge {
                    size: member.size,
                    limit,
                },
            );
            return;
        }
        let keeping = if limit != MAX_DATABASE_BYTES {
            Keeping::Bytes(Vec::with_capacity(member.size as usize))
        } else {
            match tempfile::tempfile() {
                Ok(file) => Keeping::Spill(file),
                Err(error) => {
                    self.spill_error = Some(crate::inspect::TemporaryError::new(
                        format!("cannot make a temporary file for {}", member.display_path()),
                        error,
                    ));
                    return;
                }
            }
        };
        self.kept = Some((path.to_vec(), keeping));
    }

    /// The current member is complete.
    pub fn end_member(&mut self) {
        if let Some((key, mut head)) = self.head.take() {
            if head.starts_with(b"\x7fELF") {
                head.truncate(ELF_HEAD);
            } else if head.starts_with(b"#!") {
                let line = head.iter().position(|&b| b == b'\n').unwrap_or(head.len());
                head.truncate(line);
            } else {
                head.clear();
            }
            if !head.is_empty() {
                if self.heads.len() < MAX_HEADS
                    && self.head_bytes + head.len() <= MAX_SCRIPT_HEAD_BYTES
                {
                    self.head_bytes += head.len();
                    head.shrink_to_fit();
                    self.heads.insert(key, head);
                } else {
                    self.heads_dropped += 1;
                }
            }
        }
        match self.kept.take() {
            Some((path, Keeping::Bytes(bytes))) => {
                self.kept_files.insert(path, KeptFile::Bytes(bytes));
            }
            Some((path, Keeping::Spill(file))) => {
                self.kept_files.insert(path, KeptFile::Spilled(file));
            }
            None => {}
        }
    }

    pub(super) fn head_key(&self, path: &[u8]) -> u64 {
        use std::hash::BuildHasher;
        self.heads_hasher.hash_one(path)
    }

    /// The first bytes of the executable regular file `path` (a member's
    /// name): its ELF header's first 20 bytes or its `#!` line; `None` if it
    /// is neither, or was not kept ([`ArchiveWalk::heads_dropped`]).
    pub fn head(&self, path: &[u8]) -> Option<&[u8]> {
        self.heads.get(&self.head_key(path)).map(Vec::as_slice)
    }

    /// Why a database file could not be spilled to a temporary file: the
    /// machine's trouble, which says nothing about the tarball.
    pub fn take_spill_error(&mut self) -> Option<crate::inspect::TemporaryError> {
        self.spill_error.take()
    }
}
