//! The bundle's `apply` script: what `wsl-tarball apply` does, in POSIX sh,
//! for a distribution without the tool. Run from the extracted bundle:
//!
//! ```text
//! tar -xf update.wsl-delta && sudo sh wsl-delta/apply [--switch] [--root DIR --dry-activate]
//! ```
//!
//! The only text from the manifest in the script is its store paths (each a
//! parsed [`crate::store::StorePath`]), NAR hashes (written here in nix32)
//! and the export's checked hex SHA-256, each single-quoted by [`sh_quote`]
//! all the same. The same manifest always makes the same script, byte for
//! byte, so `verify` can compare the bundle's `apply` with it. Every Nix
//! command gets `--` before the paths.
//!
//! sh cannot check the manifest's ed25519 signature (and Nix checks
//! signatures of store paths only, not of a bundle), so the script holds no
//! signature and refuses to run unless told to skip the check
//! (`--allow-unsigned` or WSL_TARBALL_ALLOW_UNSIGNED=1), pointing at
//! `wsl-tarball apply`, which checks it.

use super::manifest::{absolute, BundleManifest, STORE_DIR};

/// `text` as one single-quoted sh word.
pub fn sh_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// The script for `manifest`.
pub fn apply_script(manifest: &BundleManifest) -> String {
    let mut out = String::new();
    out.push_str(HEADER);
    let old_system = manifest.old_system_path().unwrap_or_default();
    for (name, value) in [
        ("old_system", old_system.as_str()),
        ("new_system", &manifest.new_system_path()),
        ("store_dir", STORE_DIR.as_str()),
        ("export_sha256", &manifest.export.sha256),
    ] {
        out.push_str(&format!("{name}={}\n", sh_quote(value)));
    }
    let mut required = String::from("\n");
    for path in &manifest.requires {
        required.push_str(&absolute(path));
        required.push('\n');
    }
    out.push_str("# What the bundle needs from the old system.\n");
    out.push_str(&format!("required={}\n", sh_quote(&required)));
    let mut shipped = String::from("\n");
    for path in &manifest.paths {
        let hash = path.nar_hash.to_nix32_string();
        shipped.push_str(&format!("{} {hash}\n", path.absolute()));
    }
    out.push_str("# The paths shipped, with the NAR hash nix-store -q --hash prints.\n");
    out.push_str(&format!("shipped={}\n", sh_quote(&shipped)));
    out.push_str(BODY);
    out
}

const HEADER: &str = r#"#!/bin/sh
# Applies a wsl-tarball update bundle: imports the store paths it ships,
# checks every NAR hash, points the system profile at the new system and
# runs its switch-to-configuration. Nothing is changed until every path is
# imported and checked; on failure the old system stays the current one.
#
# This script cannot check the bundle's signature: `wsl-tarball apply BUNDLE`
# does (against nix.conf's trusted-public-keys). It runs only when told to
# skip that check.
#
# Usage: sudo sh wsl-delta/apply --allow-unsigned [--switch] [--root DIR --dry-activate]
#   --allow-unsigned  apply without checking the signature (or WSL_TARBALL_ALLOW_UNSIGNED=1)
#   --switch          activate now (switch-to-configuration switch), not at the next start
#   --root DIR        work on the NixOS root at DIR (nix --store local?root=DIR)
#   --dry-activate    print the activation command instead of running it
set -eu
set -f
"#;

const BODY: &str = r#"
here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
action=boot
root=
dry=
unsigned=
[ "${WSL_TARBALL_ALLOW_UNSIGNED:-}" = 1 ] && unsigned=1
while [ $# -gt 0 ]; do
  case $1 in
    --allow-unsigned) unsigned=1 ;;
    --switch) action=switch ;;
    --root) [ $# -ge 2 ] || { echo "apply: --root needs a directory" >&2; exit 2; }; root=$2; shift ;;
    --dry-activate) dry=1 ;;
    *) echo "apply: unknown argument $1 (expected --allow-unsigned, --switch, --root DIR, --dry-activate)" >&2; exit 2 ;;
  esac
  shift
done
fail() { echo "apply: error: $*" >&2; exit 1; }
if [ -z "$unsigned" ]; then
  fail "this script cannot check the bundle's signature; run \`wsl-tarball apply BUNDLE\`, which checks it against Nix's trusted-public-keys, or pass --allow-unsigned (or set WSL_TARBALL_ALLOW_UNSIGNED=1) to apply it unchecked; nothing was changed"
fi
echo "apply: WARNING: the bundle's signature is NOT checked (--allow-unsigned): anyone who could change the bundle chooses what is applied" >&2
if [ -n "$root" ] && [ -z "$dry" ]; then
  fail "--root needs --dry-activate: the new system cannot be activated inside another root"
fi
case $root in
  '' | /*) ;;
  *) root=$(CDPATH= cd -- "$root" && pwd) || { echo "apply: --root: no directory $root" >&2; exit 2; } ;;
esac
case $root in
  *[?\&#%]*) echo "apply: --root $root: a directory whose name holds ? & # or % cannot be a Nix store URI" >&2; exit 2 ;;
esac
# Nix on the root's store (local?root=ROOT) or on the running system's.
nix_store() {
  if [ -n "$root" ]; then nix-store --store "local?root=$root" "$@"; else nix-store "$@"; fi
}
nix_env() {
  if [ -n "$root" ]; then nix-env --store "local?root=$root" "$@"; else nix-env "$@"; fi
}
profile=$root/nix/var/nix/profiles/system

# The store path the system profile leads to (absolute links inside the root).
current_system() {
  link=$profile
  i=0
  while [ "$i" -lt 16 ] && [ -L "$link" ]; do
    target=$(readlink -- "$link")
    case $target in
      "$store_dir"/*) rest=${target#"$store_dir"/}; echo "$store_dir/${rest%%/*}"; return 0 ;;
      /*) link=$root$target ;;
      *) link=$(dirname -- "$link")/$target ;;
    esac
    i=$((i + 1))
  done
  echo "(none)"
}

current=$(current_system)
if [ "$current" = "$new_system" ]; then
  echo "apply: $profile already points at $new_system; nothing to do"
  exit 0
fi
if [ -n "$old_system" ] && [ "$current" != "$old_system" ]; then
  fail "this bundle updates $old_system, but the system here is $current ($profile); nothing was changed"
fi
set -- $required
if [ $# -gt 0 ]; then
  invalid=$(nix_store --check-validity --print-invalid -- "$@") \
    || fail "nix-store --check-validity failed; nothing was changed"
  if [ -n "$invalid" ]; then
    count=$(printf '%s\n' "$invalid" | wc -l)
    first=$(printf '%s\n' "$invalid" | head -n 1)
    paths="store paths"
    if [ $((count)) -eq 1 ]; then paths="store path"; fi
    fail "the local store lacks $((count)) $paths the bundle needs from the old system, first $first; nothing was changed"
  fi
fi
[ -f "$here/nix-export" ] || fail "no $here/nix-export: extract the whole bundle; nothing was changed"
actual=$(sha256sum < "$here/nix-export" | cut -d' ' -f1)
[ "$actual" = "$export_sha256" ] || fail "$here/nix-export has sha256 $actual, the manifest says $export_sha256; nothing was changed"

# What the import adds: the shipped paths not valid before, removed again
# if the import fails.
set --
for word in $shipped; do
  case $word in "$store_dir"/*) set -- "$@" "$word" ;; esac
done
fresh=$(nix_store --check-validity --print-invalid -- "$@") \
  || fail "nix-store --check-validity failed; nothing was changed"
if ! nix_store --import < "$here/nix-export" > /dev/null; then
  set -- $fresh
  [ $# -eq 0 ] || nix_store --delete --ignore-liveness -- "$@" > /dev/null 2>&1 || true
  fail "nix-store --import failed; the system profile was not changed"
fi
set -- $shipped
while [ $# -ge 2 ]; do
  got=$(nix_store -q --hash -- "$1") \
    || fail "nix-store -q --hash $1 failed; the system profile was not changed"
  [ "$got" = "$2" ] || fail "after the import, $1 has NAR hash $got in the local store, not $2; the system profile was not changed"
  shift 2
done
echo "apply: imported and checked every store path of the bundle"

nix_env -p "$profile" --set -- "$new_system" \
  || fail "nix-env --set failed; the system profile was not changed"
echo "apply: $profile -> $new_system (was $current)"
if [ -n "$dry" ]; then
  echo "apply: would run: $new_system/bin/switch-to-configuration $action"
elif ! "$new_system/bin/switch-to-configuration" "$action"; then
  nix_env -p "$profile" --rollback > /dev/null 2>&1 || true
  fail "$new_system/bin/switch-to-configuration $action failed; the system profile was rolled back to $current"
fi
if [ "$action" = boot ]; then
  echo "apply: the new system starts with the distribution: from Windows, run wsl --terminate ${WSL_DISTRO_NAME:-NAME}, then start it again"
else
  echo "apply: switched; restart the distribution to be sure every service runs the new system: wsl --terminate ${WSL_DISTRO_NAME:-NAME}"
fi
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sh_quote_makes_one_word_of_anything() {
        assert_eq!(sh_quote("a b"), "'a b'");
        assert_eq!(sh_quote("x';cmd;#"), r"'x'\'';cmd;#'");
        let output = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("printf %s {}", sh_quote("x';$(id) `id`;#\n")))
            .output()
            .unwrap();
        assert_eq!(output.stdout, b"x';$(id) `id`;#\n");
    }
}
