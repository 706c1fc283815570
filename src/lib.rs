//! wsl-tarball: stream a NixOS closure into a byte-reproducible WSL rootfs
//! tarball (`nixos.wsl`) straight out of the Nix store, without root.
//!
//! Data flows one way through the modules:
//!
//! ```text
//! store (closure metadata) ─► plan (what goes in the rootfs) ─► tar (entries,
//! GNU headers) ─► compress (gzip/xz/zstd) ─► output (temp file, fsync, rename)
//! ```
//!
//! [`nixdb`] renders Nix's database for the closure so that `nix` works in the
//! imported distribution at first boot.

pub mod compress;
pub mod nixdb;
pub mod store;
