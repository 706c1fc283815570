//! Outputs never name inputs: before anything is read or written, every
//! output file is checked against the other outputs, the input files and
//! the input trees, by what the names resolve to rather than how they are
//! spelt.
//!
//! Two names are the same file when both exist with the same device and
//! inode (so hard links, symlinks and `./x` versus `x` are caught), or when
//! neither exists and their canonical parent directories and file names are
//! equal. An output is inside an input tree when its canonical location
//! (through symlinks, as [`crate::output`] writes through them) is below the
//! tree's canonical path.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// A file or directory named on the command line, with the flag naming it.
#[derive(Debug, Clone, Copy)]
pub struct Named<'a> {
    /// How the user named it: `-o`, `--manifest`, `--closure`…
    pub flag: &'static str,
    pub path: &'a Path,
}

/// Two names for one file, or an output inside an input tree.
#[derive(Debug, thiserror::Error)]
pub enum OverlapError {
    #[error("{first_flag} {} and {second_flag} {} name the same file", first.display(), second.display())]
    SameFile {
        first_flag: &'static str,
        first: PathBuf,
        second_flag: &'static str,
        second: PathBuf,
    },
    #[error("{output_flag} {} is the input {input_flag} {}; it would be overwritten", output.display(), input.display())]
    OutputIsInput {
        output_flag: &'static str,
        output: PathBuf,
        input_flag: &'static str,
        input: PathBuf,
    },
    #[error("{output_flag} {} is inside the {tree_flag} directory {}; it would be copied into later tarballs", output.display(), tree.display())]
    InsideTree {
        output_flag: &'static str,
        output: PathBuf,
        tree_flag: &'static str,
        tree: PathBuf,
    },
}

/// What a name resolves to.
#[derive(Debug, PartialEq, Eq)]
enum Identity {
    /// An existing file: device and inode.
    Inode(u64, u64),
    /// A name not (yet) there: its canonical location.
    Location(PathBuf),
}

fn identity(path: &Path) -> Identity {
    match fs::metadata(path) {
        Ok(metadata) => Identity::Inode(metadata.dev(), metadata.ino()),
        Err(_) => Identity::Location(location(path)),
    }
}

/// Where `path` is, with every symlink resolved: the canonical path if it
/// exists, otherwise its canonical parent joined with its name (or the
/// absolute path as spelt when the parent does not exist either).
fn location(path: &Path) -> PathBuf {
    if let Ok(canonical) = fs::canonicalize(path) {
        return canonical;
    }
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    match (absolute.parent(), absolute.file_name()) {
        (Some(parent), Some(name)) => match fs::canonicalize(parent) {
            Ok(parent) => parent.join(name),
            Err(_) => absolute,
        },
        _ => absolute,
    }
}

/// Checks that no two `outputs` are one file, that no output is one of
/// `inputs`, and that no output is inside one of `trees` (input
/// directories). Inputs that do not exist are skipped (reading them fails
/// later with its own message).
pub fn check_outputs(
    outputs: &[Named<'_>],
    inputs: &[Named<'_>],
    trees: &[Named<'_>],
) -> Result<(), OverlapError> {
    let output_ids: Vec<Identity> = outputs.iter().map(|o| identity(o.path)).collect();
    for (i, first) in outputs.iter().enumerate() {
        for (j, second) in outputs.iter().enumerate().skip(i + 1) {
            if output_ids[i] == output_ids[j] {
                return Err(OverlapError::SameFile {
                    first_flag: first.flag,
                    first: first.path.to_path_buf(),
                    second_flag: second.flag,
                    second: second.path.to_path_buf(),
                });
            }
        }
    }
    for input in inputs {
        let Ok(metadata) = fs::metadata(input.path) else {
            continue;
        };
        let input_id = Identity::Inode(metadata.dev(), metadata.ino());
        if let Some(index) = output_ids.iter().position(|id| *id == input_id) {
            return Err(OverlapError::OutputIsInput {
                output_flag: outputs[index].flag,
                output: outputs[index].path.to_path_buf(),
                input_flag: input.flag,
                input: input.path.to_path_buf(),
            });
        }
    }
    for tree in trees {
        let tree_location = match fs::canonicalize(tree.path) {
            Ok(location) => location,
            Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
            Err(_) => continue,
        };
        for output in outputs {
            if location(output.path).starts_with(&tree_location) {
                return Err(OverlapError::InsideTree {
                    output_flag: output.flag,
                    output: output.path.to_path_buf(),
                    tree_flag: tree.flag,
                    tree: tree.path.to_path_buf(),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named<'a>(flag: &'static str, path: &'a Path) -> Named<'a> {
        Named { flag, path }
    }

    #[test]
    fn the_same_file_by_another_name_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        let closure = dir.path().join("closure.json");
        fs::write(&closure, b"[]").unwrap();
        let hard_link = dir.path().join("hard");
        fs::hard_link(&closure, &hard_link).unwrap();
        let symlink = dir.path().join("sym");
        std::os::unix::fs::symlink("closure.json", &symlink).unwrap();
        for output in [&closure, &hard_link, &symlink] {
            let err = check_outputs(&[named("-o", output)], &[named("--closure", &closure)], &[])
                .unwrap_err();
            assert!(matches!(err, OverlapError::OutputIsInput { .. }), "{err}");
        }
        // Two outputs that do not exist yet, spelt differently.
        let a = dir.path().join("new.wsl");
        let b = dir.path().join("sub/../new.wsl");
        fs::create_dir(dir.path().join("sub")).unwrap();
        let err = check_outputs(&[named("-o", &a), named("--manifest", &b)], &[], &[]).unwrap_err();
        assert!(err.to_string().ends_with("name the same file"), "{err}");
        assert!(check_outputs(
            &[
                named("-o", &a),
                named("--manifest", &dir.path().join("m.json"))
            ],
            &[named("--closure", &closure)],
            &[],
        )
        .is_ok());
    }

    #[test]
    fn an_output_inside_an_input_tree_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("extra");
        fs::create_dir_all(tree.join("etc")).unwrap();
        let link = dir.path().join("extra-link");
        std::os::unix::fs::symlink("extra", &link).unwrap();
        for output in [tree.join("etc/nixos.wsl"), link.join("x.wsl")] {
            let err = check_outputs(
                &[named("-o", &output)],
                &[],
                &[named("--extra-files", &tree)],
            )
            .unwrap_err();
            assert!(matches!(err, OverlapError::InsideTree { .. }), "{err}");
        }
        assert!(check_outputs(
            &[named("-o", &dir.path().join("extra.wsl"))],
            &[],
            &[named("--extra-files", &link)],
        )
        .is_ok());
    }
}
