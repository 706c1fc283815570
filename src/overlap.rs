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

/// A file or directory a request names, with its role.
#[derive(Debug, Clone, Copy)]
pub struct Named<'a> {
    pub role: Role,
    pub path: &'a Path,
}

/// What a named file is to the request (the CLI names it by its flag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The tarball, bundle or signed file written.
    Output,
    /// A manifest: the one written beside the tarball, or the one `sign` signs.
    Manifest,
    /// The SBOM written beside the tarball.
    Sbom,
    /// The Nix secret key file signed with.
    SigningKey,
    /// The closure file read.
    Closure,
    /// The NixOS module's facts file read.
    Facts,
    /// The extra-files directory copied into the rootfs.
    ExtraFiles,
    /// The image `sign` signs through its manifest.
    Image,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Output => "output",
            Role::Manifest => "manifest",
            Role::Sbom => "SBOM",
            Role::SigningKey => "signing key",
            Role::Closure => "closure",
            Role::Facts => "facts file",
            Role::ExtraFiles => "extra files",
            Role::Image => "image",
        })
    }
}

/// Two names for one file, or an output inside an input tree.
#[derive(Debug, thiserror::Error)]
pub enum OverlapError {
    /// Two of the files name one file (after following links).
    #[error("{first_role} {} and {second_role} {} name the same file", first.display(), second.display())]
    SameFile {
        /// What the first is to the request.
        first_role: Role,
        /// The first path, as given.
        first: PathBuf,
        /// What the second is to the request.
        second_role: Role,
        /// The second path, as given.
        second: PathBuf,
    },
    /// An output names an input file: writing it would overwrite the input.
    #[error("{output_role} {} is the input {input_role} {}; it would be overwritten", output.display(), input.display())]
    OutputIsInput {
        /// What the output is to the request.
        output_role: Role,
        /// The output path, as given.
        output: PathBuf,
        /// What the input is to the request.
        input_role: Role,
        /// The input path, as given.
        input: PathBuf,
    },
    /// An output lies inside an input tree, so later runs would copy it into their tarballs.
    #[error("{output_role} {} is inside the {tree_role} directory {}; it would be copied into later tarballs", output.display(), tree.display())]
    InsideTree {
        /// What the output is to the request.
        output_role: Role,
        /// The output path, as given.
        output: PathBuf,
        /// What the tree is to the request.
        tree_role: Role,
        /// The tree's directory, as given.
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
                    first_role: first.role,
                    first: first.path.to_path_buf(),
                    second_role: second.role,
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
                output_role: outputs[index].role,
                output: outputs[index].path.to_path_buf(),
                input_role: input.role,
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
                    output_role: output.role,
                    output: output.path.to_path_buf(),
                    tree_role: tree.role,
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

    fn named<'a>(role: Role, path: &'a Path) -> Named<'a> {
        Named { role, path }
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
            let err = check_outputs(
                &[named(Role::Output, output)],
                &[named(Role::Closure, &closure)],
                &[],
            )
            .unwrap_err();
            assert!(matches!(err, OverlapError::OutputIsInput { .. }), "{err}");
        }
        // Two outputs that do not exist yet, spelt differently.
        let a = dir.path().join("new.wsl");
        let b = dir.path().join("sub/../new.wsl");
        fs::create_dir(dir.path().join("sub")).unwrap();
        let err = check_outputs(
            &[named(Role::Output, &a), named(Role::Manifest, &b)],
            &[],
            &[],
        )
        .unwrap_err();
        assert!(err.to_string().ends_with("name the same file"), "{err}");
        assert!(check_outputs(
            &[
                named(Role::Output, &a),
                named(Role::Manifest, &dir.path().join("m.json"))
            ],
            &[named(Role::Closure, &closure)],
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
                &[named(Role::Output, &output)],
                &[],
                &[named(Role::ExtraFiles, &tree)],
            )
            .unwrap_err();
            assert!(matches!(err, OverlapError::InsideTree { .. }), "{err}");
        }
        assert!(check_outputs(
            &[named(Role::Output, &dir.path().join("extra.wsl"))],
            &[],
            &[named(Role::ExtraFiles, &link)],
        )
        .is_ok());
    }
}
