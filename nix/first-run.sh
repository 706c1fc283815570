#!/bin/sh
# wsl-tarball's optional first-run command (wsl.tarball.firstRun.enable),
# installed as /usr/lib/wsl/first-run and named by `oobe.command`: WSL runs it
# as root on the first interactive shell of a distribution installed from the
# tarball (`wsl --install --from-file`, or a double-click; not `wsl --import`).
#
# In the spirit of cloud-init's WSL datasource, it reads a per-colleague file
# from the Windows side, %USERPROFILE%\.wsl-tarball\first-run.conf, and sets
# what differs between colleagues:
#
#   git.name=Ada Lovelace          user.name in the default user's ~/.gitconfig
#   git.email=ada@example.com      user.email there
#   ca.certificate=corp-root.pem   a PEM file beside first-run.conf: a bundle of
#                                  the system's CAs and it, exported from
#                                  /etc/profile.local (SSL_CERT_FILE, ...)
#   proxy.http=http://proxy:3128   http_proxy/HTTP_PROXY in /etc/profile.local
#   proxy.https=http://proxy:3128  https_proxy/HTTPS_PROXY there
#   proxy.no=localhost,.corp       no_proxy/NO_PROXY there
#
# That file comes from another person: it is parsed, never sourced or
# evaluated. Each line is `key=value` (no spaces around `=`), `#` comments or
# blank; an unknown key, a key given twice, a control character or a value
# outside its key's syntax refuses the whole file, writes nothing and exits 1
# (WSL then runs the command again at the next launch). No file, or no
# Windows home (not under WSL), is nothing to do.
#
# Test hooks: WSL_TARBALL_ROOT is the root it works in (default /), and
# WSL_TARBALL_WINDOWS_HOME the Windows home (default: %USERPROFILE% asked of
# cmd.exe, through wslpath). Symlinks in the root are resolved inside it.

set -eu
umask 022
export LC_ALL=C

root=${WSL_TARBALL_ROOT:-}
root=${root%/}
me=first-run
max_bytes=1048576

say() { printf '%s: %s\n' "$me" "$*" >&2; }
fail() {
  say "$*"
  exit 1
}

# The host path of PATH inside the root, every symlink on the way followed
# inside the root (absolute targets from the root), at most 40 of them.
resolve() {
  rest=${1#/}
  done_=
  hops=0
  while [ -n "$rest" ]; do
    part=${rest%%/*}
    case $rest in */*) rest=${rest#*/} ;; *) rest= ;; esac
    case $part in
      '' | .) continue ;;
      ..)
        done_=${done_%/*}
        continue
        ;;
    esac
    if [ -L "$root$done_/$part" ]; then
      hops=$((hops + 1))
      [ "$hops" -le 40 ] || return 1
      target=$(readlink "$root$done_/$part")
      case $target in /*) done_= ;; esac
      rest=${target#/}${rest:+/$rest}
    else
      done_=$done_/$part
    fi
  done
  printf '%s\n' "$root${done_:-/}"
}

# The Windows home: the test hook, else %USERPROFILE% through cmd.exe.
windows_home() {
  if [ -n "${WSL_TARBALL_WINDOWS_HOME:-}" ]; then
    printf '%s\n' "$WSL_TARBALL_WINDOWS_HOME"
    return
  fi
  cmd=
  if command -v cmd.exe >/dev/null 2>&1; then
    cmd=cmd.exe
  elif [ -x /mnt/c/Windows/System32/cmd.exe ]; then
    cmd=/mnt/c/Windows/System32/cmd.exe
  else
    return 0
  fi
  profile=$(cd / && "$cmd" /d /c 'echo %USERPROFILE%' 2>/dev/null | tr -d '\r') || return 0
  case $profile in [A-Za-z]:\\*) ;; *) return 0 ;; esac
  if command -v wslpath >/dev/null 2>&1; then
    wslpath -u "$profile" 2>/dev/null || true
  else
    # C:\Users\ada -> /mnt/c/Users/ada (WSL's default automount root).
    drive=$(printf '%s' "$profile" | cut -c1 | tr 'A-Z' 'a-z')
    printf '/mnt/%s/%s\n' "$drive" "$(printf '%s' "${profile#?:\\}" | tr '\\' /)"
  fi
}

home=$(windows_home)
if [ -z "$home" ] || [ ! -d "$home" ]; then
  say "no Windows home found (not under WSL?); nothing to do"
  exit 0
fi
dir=$home/.wsl-tarball
conf=$dir/first-run.conf
if [ ! -e "$conf" ]; then
  say "no $conf; nothing to do"
  exit 0
fi
[ -f "$conf" ] || fail "$conf: not a regular file"
size=$(wc -c <"$conf")
[ "$size" -le "$max_bytes" ] || fail "$conf: larger than $max_bytes bytes"

git_name= git_email= ca_file= proxy_http= proxy_https= proxy_no=
seen=' '
cr=$(printf '\r')
bom=$(printf '\357\273\277')
n=0
while IFS= read -r line || [ -n "$line" ]; do
  n=$((n + 1))
  at="$conf line $n"
  line=${line%"$cr"}
  [ "$n" -ne 1 ] || line=${line#"$bom"}
  case $line in
    '' | '#'*) continue ;;
    *[[:cntrl:]]*) fail "$at: a control character (a tab, an escape, a lone carriage return); refused" ;;
    *=*) ;;
    *) fail "$at: not key=value" ;;
  esac
  key=${line%%=*}
  value=${line#*=}
  case $key in
    git.name | git.email | ca.certificate | proxy.http | proxy.https | proxy.no) ;;
    *[!A-Za-z0-9._-]* | '') fail "$at: an unknown key (keys: git.name, git.email, ca.certificate, proxy.http, proxy.https, proxy.no)" ;;
    *) fail "$at: unknown key \"$key\" (keys: git.name, git.email, ca.certificate, proxy.http, proxy.https, proxy.no)" ;;
  esac
  case $seen in *" $key "*) fail "$at: $key given twice" ;; esac
  seen="$seen$key "
  [ -n "$value" ] || fail "$at: $key has an empty value"
  case $key in
    git.name)
      case $value in *[\<\>]*) fail "$at: git.name has '<' or '>', which git refuses in a name" ;; esac
      git_name=$value
      ;;
    git.email)
      case $value in
        *@*@* | *[!A-Za-z0-9.+_@-]*) fail "$at: git.email is not an address (local@domain, with letters, digits and .+_-)" ;;
        ?*@?*) ;;
        *) fail "$at: git.email is not an address (local@domain, with letters, digits and .+_-)" ;;
      esac
      git_email=$value
      ;;
    ca.certificate)
      case $value in
        .* | *[!A-Za-z0-9._-]*) fail "$at: ca.certificate names a file beside first-run.conf (letters, digits, '.', '_', '-'; not starting with '.')" ;;
      esac
      ca_file=$dir/$value
      ;;
    proxy.http | proxy.https)
      case $value in
        http://?* | https://?* | socks5://?* | socks5h://?*) ;;
        *) fail "$at: $key is not an http://, https://, socks5:// or socks5h:// URL" ;;
      esac
      case $value in
        *[!A-Za-z0-9._~:/@%+-]*) fail "$at: $key has a character outside a URL's letters, digits and ._~:/@%+-" ;;
      esac
      if [ "$key" = proxy.http ]; then proxy_http=$value; else proxy_https=$value; fi
      ;;
    proxy.no)
      case $value in
        *[!A-Za-z0-9._,:*/-]*) fail "$at: proxy.no is a comma-separated list of hosts, domains and networks (letters, digits and ._,:*/-)" ;;
      esac
      proxy_no=$value
      ;;
  esac
done <"$conf"

# Everything checked before anything is written.
if [ -n "$ca_file" ]; then
  [ -f "$ca_file" ] || fail "$ca_file: no such file (named by ca.certificate)"
  [ "$(wc -c <"$ca_file")" -le "$max_bytes" ] || fail "$ca_file: larger than $max_bytes bytes"
  ca_pem=$(tr -d '\r' <"$ca_file")
  if printf '%s\n' "$ca_pem" | grep -q '[^ -~]'; then
    fail "$ca_file: not a PEM file (a byte that is not printable ASCII)"
  fi
  case $ca_pem in
    *'-----BEGIN CERTIFICATE-----'*'-----END CERTIFICATE-----'*) ;;
    *) fail "$ca_file: not a PEM certificate (no BEGIN/END CERTIFICATE lines)" ;;
  esac
fi

# The default user: oobe.defaultUid, else wsl.conf's [user] default, else uid 1000.
user_line=
if [ -n "$git_name$git_email" ]; then
  passwd=$(resolve /etc/passwd) || fail "/etc/passwd: too many symlinks"
  uid=
  distconf=$(resolve /etc/wsl-distribution.conf) || distconf=
  if [ -n "$distconf" ] && [ -f "$distconf" ]; then
    uid=$(sed -n 's/^defaultUid=\([0-9][0-9]*\)$/\1/p' "$distconf" | tail -n 1)
  fi
  name=
  if [ -z "$uid" ]; then
    wslconf=$(resolve /etc/wsl.conf) || wslconf=
    if [ -n "$wslconf" ] && [ -f "$wslconf" ]; then
      name=$(awk '/^\[/ { user = ($0 == "[user]") } user && /^default=[a-z_][a-z0-9_-]*$/ { sub(/^default=/, ""); n = $0 } END { print n }' "$wslconf")
    fi
  fi
  [ -n "$uid$name" ] || uid=1000
  if [ -n "$uid" ]; then
    user_line=$(awk -F: -v uid="$uid" 'NF == 7 && $3 == uid { print; exit }' "$passwd")
  else
    user_line=$(awk -F: -v name="$name" 'NF == 7 && $1 == name { print; exit }' "$passwd")
  fi
  [ -n "$user_line" ] || fail "git.name/git.email: the default user (${uid:+uid $uid}${name:+$name}) is not in /etc/passwd"
fi

# Writes STDIN to PATH (a host path) atomically with MODE.
put() {
  tmp=$1.first-run.$$
  cat >"$tmp"
  chmod "$2" "$tmp"
  mv -f "$tmp" "$1"
}

# A git config value: in double quotes, with \ and " escaped.
git_quoted() {
  printf '"%s"' "$(printf '%s' "$1" | sed 's/[\\"]/\\&/g')"
}

if [ -n "$user_line" ]; then
  user_uid=$(printf '%s\n' "$user_line" | cut -d: -f3)
  user_gid=$(printf '%s\n' "$user_line" | cut -d: -f4)
  user_home=$(printf '%s\n' "$user_line" | cut -d: -f6)
  case $user_home in /*) ;; *) fail "/etc/passwd: the default user's home is not an absolute path" ;; esac
  home_dir=$(resolve "$user_home") || fail "$user_home: too many symlinks"
  [ -d "$home_dir" ] || fail "$user_home: the default user's home does not exist"
  gitconfig=$home_dir/.gitconfig
  if [ -e "$gitconfig" ] || [ -L "$gitconfig" ]; then
    say "$user_home/.gitconfig exists; left as it is (git.name and git.email not applied)"
  else
    {
      printf '[user]\n'
      [ -z "$git_name" ] || printf '\tname = %s\n' "$(git_quoted "$git_name")"
      [ -z "$git_email" ] || printf '\temail = %s\n' "$(git_quoted "$git_email")"
    } | put "$gitconfig" 0644
    chown "$user_uid:$user_gid" "$gitconfig"
    say "wrote $user_home/.gitconfig"
  fi
fi

if [ -n "$ca_file$proxy_http$proxy_https$proxy_no" ]; then
  state=$(resolve /etc/wsl-tarball) || fail "/etc/wsl-tarball: too many symlinks"
  mkdir -p "$state"
  exports=
  if [ -n "$ca_file" ]; then
    system_bundle=$(resolve /etc/ssl/certs/ca-certificates.crt) || system_bundle=
    {
      if [ -n "$system_bundle" ] && [ -f "$system_bundle" ]; then
        cat "$system_bundle"
      else
        say "no /etc/ssl/certs/ca-certificates.crt; the bundle holds the given certificate only"
      fi
      printf '%s\n' "$ca_pem"
    } | put "$state/ca-bundle.crt" 0644
    for variable in SSL_CERT_FILE NIX_SSL_CERT_FILE CURL_CA_BUNDLE GIT_SSL_CAINFO REQUESTS_CA_BUNDLE NODE_EXTRA_CA_CERTS; do
      exports="${exports}export $variable=/etc/wsl-tarball/ca-bundle.crt
"
    done
  fi
  # Values are single-quoted and cannot hold a quote (checked above).
  for pair in "http_proxy:$proxy_http" "https_proxy:$proxy_https" "no_proxy:$proxy_no"; do
    variable=${pair%%:*}
    value=${pair#*:}
    [ -n "$value" ] || continue
    upper=$(printf '%s' "$variable" | tr 'a-z' 'A-Z')
    exports="${exports}export $variable='$value' $upper='$value'
"
  done
  {
    printf '# Written by wsl-tarball'"'"'s first-run command from %s.\n' 'first-run.conf'
    printf '%s' "$exports"
  } | put "$state/environment" 0644
  profile=$(resolve /etc/profile.local) || fail "/etc/profile.local: too many symlinks"
  line='if [ -r /etc/wsl-tarball/environment ]; then . /etc/wsl-tarball/environment; fi'
  if [ ! -e "$profile" ] || ! grep -qxF "$line" "$profile"; then
    { [ ! -e "$profile" ] || cat "$profile"; printf '%s\n' "$line"; } | put "$profile" 0644
  fi
  say "wrote /etc/wsl-tarball/environment, read by /etc/profile.local"
fi
exit 0
