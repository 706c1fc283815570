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
//! [`app`] turns the commands (`write`, `check`, `build`, `delta`) into
//! requests and outcomes on top of it, so that the CLI only parses and
//! prints. [`write::write_tarball`] runs that pipeline; [`nixdb`] renders Nix's
//! database for the closure so that `nix` works at first boot.
//! [`scan`] checks every member and byte for secrets and personal data in
//! the same pass. [`archive`] reads tarballs back; [`inspect`] builds
//! `inspect`, `verify` and `diff` on it, with [`nar`] to recompute NAR hashes;
//! [`nar_check`] uses the same encoder to check every store path `write`
//! streams against the closure's NAR hash and size. [`delta`] makes and
//! applies update bundles: only the store paths an earlier system lacks, in
//! Nix's export format.

pub mod app;
pub mod archive;
pub(crate) mod cache;
pub mod compress;
pub mod delta;
pub(crate) mod entry;
pub(crate) mod hex;
pub(crate) mod input;
pub mod inspect;
pub(crate) mod manifest;
pub(crate) mod nar;
pub(crate) mod nar_check;
pub(crate) mod nix;
pub(crate) mod nixdb;
mod os;
pub(crate) mod output;
pub(crate) mod overlap;
pub mod plan;
pub(crate) mod progress;
pub mod scan;
pub mod store;
pub mod tar;
pub(crate) mod walk;
pub mod write;
