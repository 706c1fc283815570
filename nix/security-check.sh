#!/usr/bin/env bash
# bin/wsl-tarball-security-check [HOST] in the output of the module's
# system.build.tarballSecurityCheck: prints the report that the check wrote
# (report.txt beside bin/) and exits as the check did: 3 when the report has
# error-severity findings, 0 otherwise. WSL_TARBALL_SKIP_CHECKS=1 turns the 3
# into 0, loudly. HOST only names the system in the heading.
#
# The derivation replaces the first line with a store path's shell.
set -euo pipefail

if [ $# -gt 1 ] || [ "${1:-}" = -h ] || [ "${1:-}" = --help ]; then
  echo "Usage: $0 [HOST]" >&2
  exit 2
fi
out=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
report="$out/report.txt"
if ! [ -f "$report" ]; then
  echo "wsl-tarball-security-check: no report at $report" >&2
  exit 1
fi

echo "security checks of ${1:-this system} ($out):"
cat "$report"
if [ -e "$out/skipped" ]; then
  echo "wsl-tarball-security-check: WARNING: the checks were skipped when this was built (wsl.tarball.checks.enable = false): nothing was checked" >&2
  exit 0
fi

# The summary line the check prints last: "security checks: N errors, …".
summary=$(grep '^security checks: ' "$report" | tail -n 1 || true)
errors=${summary#security checks: }
errors=${errors%% *}
if ! [[ $errors =~ ^[0-9]+$ ]]; then
  echo "wsl-tarball-security-check: $report has no summary line \"security checks: N errors, …\"" >&2
  exit 1
fi
if [ "$errors" -gt 0 ]; then
  findings="$errors error-severity findings"
  if [ "$errors" -eq 1 ]; then findings="1 error-severity finding"; fi
  skip=${WSL_TARBALL_SKIP_CHECKS:-}
  case ${skip,,} in
  1 | true | yes)
    echo "wsl-tarball-security-check: WARNING: WSL_TARBALL_SKIP_CHECKS is set: $findings ignored" >&2
    exit 0
    ;;
  esac
  echo "wsl-tarball-security-check: $findings; accept deliberate ones with wsl.tarball.checks.allow" >&2
  exit 3
fi
