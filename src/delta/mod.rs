//! Delta updates: ship a colleague only the store paths their distribution
//! lacks, and apply them inside it with Nix itself.
//!
//! A bundle (`update.wsl-delta`) is a tar, compressed like tarballs, of
//!
//! ```text
//! wsl-delta/manifest.json   old and new system, each path's narHash/narSize/references,
//!                           what it needs from the old system, the export's sha256
//! wsl-delta/apply           a POSIX sh script doing what `wsl-tarball apply` does
//! wsl-delta/nix-export      the new paths in `nix-store --export` format, in dependency order
//! ```
//!
//! - `error`: why each operation failed: [`InventoryError`] (reading a
//!   system description), [`MakeError`] (`delta`, and re-signing a bundle),
//!   [`BundleError`] (reading a bundle), [`ApplyError`] (`apply`).
//! - [`inventory`]: what a system description lists (an earlier tarball's
//!   Nix database, a `--manifest` JSON, a closure file), and `diff` of two.
//! - [`export`]: Nix's export framing around each NAR, written and read back.
//! - [`manifest`]: the layout and the manifest, every store path in it
//!   parsed where it is read.
//! - [`bundle`]: the writer (one pass over the new paths, on the one
//!   pipeline: NAR, check, scan and compress on every core).
//! - `prefix`: the members around the export stream, the manifest's planned
//!   before the pass so that the records go straight to their place.
//! - [`script`]: the `apply` script.
//! - [`read`]: opening a bundle, `inspect` and `verify` of one.
//! - [`apply`](mod@apply): `wsl-tarball apply`: read the bundle once into a
//!   private copy checking everything `verify` checks, then import that
//!   copy, check, set the profile, activate.

mod apply;
mod bundle;
mod error;
mod export;
pub(crate) mod inventory;
mod manifest;
mod prefix;
mod read;
mod script;
pub(crate) mod sign;

pub use apply::{apply, ApplyOptions, ApplyOutcome, SignatureOutcome};
pub use bundle::{write_bundle, BundleInputs, BundleSummary, PendingBundle};
pub use error::{ApplyError, BundleError, InventoryError, MakeError};
pub use inventory::{compare, read_inventory, Inventory, InventoryDifference, InventoryKind};
pub use manifest::{BundleManifest, BundlePath};
pub use read::{
    inspect_bundle, is_bundle, verify_bundle, verify_signed_bundle, BundleInspection,
    BundleVerification,
};
