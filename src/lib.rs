//! wsl-tarball: stream a NixOS closure into a byte-reproducible WSL rootfs
//! tarball (`nixos.wsl`) straight out of the Nix store, without root.
//!
//! `write` is one streaming pipeline:
//!
//! ```text
//! store (closure metadata as types) ─► plan (what goes in the rootfs, in
//!   order: walk for host trees, nixdb for Nix's database, the NixOS skeleton)
//!   ─► tar (GNU headers and contents) ─► compress (parallel gzip, xz, zstd;
//!   cache for reused segments) ─► output (unnamed temporary, fsync, rename)
//! ```
//!
//! [`write::write_tarball`] runs it. In the same pass [`scan`] checks every
//! member and byte for secrets and personal data, [`nar_match`] checks every
//! store path against the closure's NAR hash and size (with the [`nar`]
//! encoder), [`manifest`] hashes the compressed bytes and [`progress`]
//! reports how far it got; before the outputs are committed the tarball is
//! verified with [`inspect`]. [`overlap`] checks first that no output names
//! an input; [`input`] reads user files through a size limit; [`nix`] drives
//! the `nix` command for `build`.
//!
//! Reading back: [`archive`] reads tarballs through the header layout the
//! writer uses ([`tar::layout`]); [`inspect`] builds `inspect`, `verify` and
//! `diff` on it, with [`nar`] to recompute NAR hashes and [`nixdb`] for the
//! database inside. [`delta`] makes and applies update bundles: only the
//! store paths an earlier system lacks, in Nix's export format.
//!
//! Data flows one way: a module uses only modules of the layers before its
//! own, never one of its own layer or a later one.
//!
//! 1. leaves: [`hex`], [`escape`], [`count`], `os`, [`input`], [`entry`],
//!    [`progress`]
//! 2. [`store`], [`walk`], [`tar`], [`compress`], [`output`], [`direct_write`],
//!    [`sign`]
//! 3. [`nixdb`], [`nar`], [`archive`], [`overlap`], [`cache`]
//! 4. [`plan`], [`nar_match`], [`scan`], [`manifest`], [`sbom`], [`inspect`],
//!    `pipeline`
//! 5. [`write`](mod@write), [`delta`], [`nix`], `publish` (a channel's
//!    release directory)
//! 6. [`app`], the requests and outcomes the binary (`main.rs`) calls
//!
//! The public API is what the binary (`main.rs`, `cli/`, `exit.rs`,
//! `flags.rs`, `print.rs`), the integration tests, `bench/` and `examples/`
//! use, and nothing else: [`app`] (the commands, their requests, outcomes,
//! events and errors, with the types of lower modules they carry, such as
//! [`app::PlanError`] and [`app::WriteSummary`]), [`archive`], [`compress`],
//! [`count`], [`delta`] (its re-exports; its submodules are private),
//! [`escape`], [`hex`], [`inspect`], [`progress`], [`scan`], [`sign`],
//! [`store`] and [`tar`]. Every other module is `pub(crate)`.
//! `#![warn(missing_docs)]` holds for the whole crate: every public item,
//! re-exports of `pub(crate)` modules among them, is documented.

#![warn(missing_docs)]

pub mod app;
pub mod archive;
pub(crate) mod cache;
pub mod compress;
pub mod count;
pub mod delta;
pub(crate) mod direct_write;
pub(crate) mod entry;
pub mod escape;
pub mod hex;
pub(crate) mod input;
pub mod inspect;
pub(crate) mod manifest;
pub(crate) mod nar;
pub(crate) mod nar_match;
pub(crate) mod nix;
pub(crate) mod nixdb;
#[allow(unsafe_code)] // the crate's only unsafe code: safe wrappers of libc calls
mod os;
pub(crate) mod output;
pub(crate) mod overlap;
pub(crate) mod pipeline;
pub(crate) mod plan;
pub mod progress;
pub(crate) mod publish;
pub(crate) mod sbom;
pub mod scan;
pub mod sign;
pub mod store;
pub mod tar;
pub(crate) mod walk;
pub(crate) mod write;
