//! The bundle's `apply` script: what `wsl-tarball apply` does, in POSIX sh,
//! for a distribution without the tool. Run from the extracted bundle:
//!
//! ```text
//! tar -xf update.wsl-delta && sudo sh wsl-delta/apply [--switch] [--root DIR --dry-activate]
//! ```
//!
//! The paths and hashes are written into the script (store paths and
//! hashes contain no shell metacharacters: they are validated when read).

use super::bundle::BundleManifest;
use crate::store::NarHash;

/// The script for `manifest`.
pub fn apply_script(manifest: &BundleManifest) -> String {
    let mut out = String::new();
    out.push_str(HEADER);
    out.push_str(&format!(
        "old_system='{}'\nnew_system='{}'\nstore_dir='{}'\nexport_sha256='{}'\n",
        manifest.old_system.as_deref().unwrap_or(""),
        manifest.new_system,
        manifest.store_dir,
        manifest.export.sha256
    ));
    out.push_str("# What the bundle needs from the old system.\nrequired='\n");
    for path in &manifest.requires {
        out.push_str(path);
        out.push('\n');
    }
    out.push_str(
        "'\n# The paths shipped, with the NAR hash nix-store -q --hash prints.\nshipped='\n",
    );
    for path in &manifest.paths {
        let hash = NarHash::parse(&path.nar_hash)
            .map(|h| h.to_nix32_string())
            .unwrap_or_default();
        out.push_str(&format!("{} {hash}\n", path.path));
    }
    out.push_str("'\n");
    out.push_str(BODY);
    out
}

const HEADER: &str = r#"#!/bin/sh
# Applies a wsl-tarball update bundle: imports the store paths it ships,
# checks every NAR hash, points the system profile at the new system and
# runs its switch-to-configuration. Nothing is changed until every path is
# imported and checked; on failure the old system stays the current one.
#
# Usage: sudo sh wsl-delta/apply [--switch] [--root DIR --dry-activate]
#   --switch        activate now (switch-to-configuration switch), not at the next start
#   --root DIR      work on the NixOS root at DIR (nix --store local?root=DIR)
#   --dry-activate  print the activation command instead of running it
set -eu
set -f
"#;

const BODY: &str = r#"
here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
action=boot
root=
dry=
while [ $# -gt 0 ]; do
  case $1 in
    --switch) action=switch ;;
    --root) [ $# -ge 2 ] || { echo "apply: --root needs a directory" >&2; exit 2; }; root=$2; shift ;;
    --dry-activate) dry=1 ;;
    *) echo "apply: unknown argument $1 (expected --switch, --root DIR, --dry-activate)" >&2; exit 2 ;;
  esac
  shift
done
fail() { echo "apply: error: $*" >&2; exit 1; }
if [ -n "$root" ] && [ -z "$dry" ]; then
  fail "--root needs --dry-activate: the new system cannot be activated inside another root"
fi
store_args=
[ -z "$root" ] || store_args="--store local?root=$root"
profile=$root/nix/var/nix/profiles/system

# The store path the system profile leads to (absolute links inside the root).
current_system() {
  link=$profile
  i=0
  while [ "$i" -lt 16 ] && [ -L "$link" ]; do
    target=$(readlink "$link")
    case $target in
      "$store_dir"/*) rest=${target#"$store_dir"/}; echo "$store_dir/${rest%%/*}"; return 0 ;;
      /*) link=$root$target ;;
      *) link=$(dirname "$link")/$target ;;
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
  invalid=$(nix-store $store_args --check-validity --print-invalid "$@") \
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

nix-store $store_args --import < "$here/nix-export" > /dev/null \
  || fail "nix-store --import failed; the system profile was not changed"
set -- $shipped
while [ $# -ge 2 ]; do
  got=$(nix-store $store_args -q --hash "$1") \
    || fail "nix-store -q --hash $1 failed; the system profile was not changed"
  [ "$got" = "$2" ] || fail "after the import, $1 has NAR hash $got in the local store, not $2; the system profile was not changed"
  shift 2
done
echo "apply: imported and checked every store path of the bundle"

nix-env $store_args -p "$profile" --set "$new_system" \
  || fail "nix-env --set failed; the system profile was not changed"
echo "apply: $profile -> $new_system (was $current)"
activate="$new_system/bin/switch-to-configuration $action"
if [ -n "$dry" ]; then
  echo "apply: would run: $activate"
elif ! $activate; then
  nix-env $store_args -p "$profile" --rollback > /dev/null 2>&1 || true
  fail "$activate failed; the system profile was rolled back to $current"
fi
if [ "$action" = boot ]; then
  echo "apply: the new system starts with the distribution: from Windows, run wsl --terminate ${WSL_DISTRO_NAME:-NAME}, then start it again"
else
  echo "apply: switched; restart the distribution to be sure every service runs the new system: wsl --terminate ${WSL_DISTRO_NAME:-NAME}"
fi
"#;
