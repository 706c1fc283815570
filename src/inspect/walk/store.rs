//! Store paths as the walk meets them: the members of each fed to its NAR
//! (hashed, or only sized), and the [`StoreObject`] recorded when it ends.

use super::*;

pub(super) enum NarSink {
    Hash(NarHasher),
    Size(NarSizer),
}

impl Write for NarSink {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match self {
            NarSink::Hash(h) => h.write(bytes),
            NarSink::Size(s) => s.write(bytes),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

pub(super) struct CurrentObject {
    basename: String,
    encoder: Option<NarEncoder<NarSink>>,
    members: u64,
    problem: Option<String>,
}

impl ArchiveWalk {
    /// `(basename, path below it)` for a member inside the store.
    pub(super) fn store_relative<'p>(&self, path: &'p [u8]) -> Option<(&'p [u8], &'p [u8])> {
        let rest = path
            .strip_prefix(self.store_prefix.as_slice())?
            .strip_prefix(b"/")?;
        Some(match rest.iter().position(|&b| b == b'/') {
            Some(slash) => (&rest[..slash], &rest[slash + 1..]),
            None => (rest, &b""[..]),
        })
    }

    /// Feeds a member inside the store to its store path's NAR.
    pub(super) fn store_member(&mut self, member: &Member) -> Result<(), WalkLimit> {
        let Some((basename, relative)) = self.store_relative(&member.path) else {
            self.close_object();
            return Ok(());
        };
        let basename = String::from_utf8_lossy(basename).into_owned();
        let relative = relative.to_vec();
        if self.current.as_ref().map(|c| c.basename.as_str()) != Some(basename.as_str()) {
            self.close_object();
            let mut problem = None;
            if let Err(error) = StorePath::from_basename(&basename) {
                problem = Some(format!("not a store path: {error}"));
            }
            if self.store_objects.len() >= MAX_STORE_PATHS {
                return Err(WalkLimit {
                    what: "store paths",
                    limit: MAX_STORE_PATHS as u64,
                });
            }
            if self.store_objects.contains_key(&basename) {
                problem = Some(format!(
                    "its members are not together: {} comes after another store path's",
                    member.display_path()
                ));
            }
            let sink = if self.options.hash_nar {
                NarSink::Hash(NarHasher::new())
            } else {
                NarSink::Size(NarSizer::default())
            };
            self.current = Some(CurrentObject {
                basename,
                encoder: Some(NarEncoder::new(sink)),
                members: 0,
                problem,
            });
        }
        let Some(current) = &mut self.current else {
            return Ok(());
        };
        current.members += 1;
        let node = match member.kind {
            MemberKind::Directory => Some(NarNode::Directory),
            MemberKind::Symlink => Some(NarNode::Symlink {
                target: &member.link_target,
            }),
            MemberKind::Regular => Some(NarNode::Regular {
                executable: member.mode & 0o100 != 0,
                size: member.size,
            }),
            _ => None,
        };
        let Some(encoder) = &mut current.encoder else {
            return Ok(());
        };
        let result = match node {
            Some(node) => encoder.add(&relative, node).map_err(|e| e.to_string()),
            None => Err(format!(
                "{} is a {}, which has no NAR form (hashing stopped there)",
                member.display_path(),
                member.kind.describe()
            )),
        };
        if let Err(problem) = result {
            current.problem.get_or_insert(problem);
            current.encoder = None;
        }
        Ok(())
    }

    pub(super) fn close_object(&mut self) {
        let Some(mut current) = self.current.take() else {
            return;
        };
        let (nar_hash, nar_size) = match current.encoder.take().map(NarEncoder::finish) {
            Some(Ok(NarSink::Hash(hasher))) => {
                let (hash, size) = hasher.finish();
                (Some(hash), size)
            }
            Some(Ok(NarSink::Size(sizer))) => (None, sizer.size),
            Some(Err(error)) => {
                current.problem.get_or_insert(error.to_string());
                (None, 0)
            }
            None => (None, 0),
        };
        let path = format!(
            "/{}/{}",
            String::from_utf8_lossy(&self.store_prefix),
            current.basename
        );
        if let Some(problem) = &current.problem {
            self.problem(Check::StoreContents, format!("{path}: {problem}"));
        }
        // A store path whose members are not together keeps its first part.
        self.store_objects
            .entry(current.basename)
            .or_insert(StoreObject {
                path,
                nar_hash,
                nar_size,
                members: current.members,
                problem: current.problem,
            });
    }

    /// The next chunk of content, for the current store path's NAR.
    pub(super) fn store_content(&mut self, chunk: &[u8]) {
        if let Some(current) = &mut self.current {
            if let Some(encoder) = &mut current.encoder {
                if let Err(error) = encoder.content(chunk) {
                    current.problem = Some(error.to_string());
                    current.encoder = None;
                }
            }
        }
    }
}
