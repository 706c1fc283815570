//! Nix's database for a closure (placeholder until the writer lands).
