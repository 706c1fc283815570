//! wsl-tarball: stream a NixOS closure into a byte-reproducible WSL rootfs
//! tarball (`nixos.wsl`) straight out of the Nix store, without root.
//!
//! Data flows one way through the modules:
//!
//! ```text
//! store (closure metadata) ─► plan (what goes in the rootfs, in order)
//!   ─► walk (store paths and extra files into entries)
//!   ─► tar (GNU headers and contents) ─► compress (parallel gzip, xz, zstd)
//!   ─► output (temporary file, fsync, rename)
//! ```
//!
//! [`write::write_tarball`] runs that pipeline; [`nixdb`] renders Nix's
//! database for the closure so that `nix` works at first boot.
//! [`scan`] checks every member and byte for secrets and personal data in
//! the same pass. [`archive`] reads tarballs back; [`inspect`] builds
//! `inspect`, `verify` and `diff` on it, with [`nar`] to recompute NAR hashes;
//! [`nar_check`] uses the same encoder to check every store path `write`
//! streams against the closure's NAR hash and size.

pub mod archive;
pub mod cache;
pub mod compress;
pub mod entry;
pub(crate) mod hex;
pub mod input;
pub mod inspect;
pub mod manifest;
pub mod nar;
pub mod nar_check;
pub mod nix;
pub mod nixdb;
mod os;
pub mod output;
pub mod overlap;
pub mod plan;
pub mod progress;
pub mod scan;
pub mod store;
pub mod tar;
pub mod walk;
pub mod write;
