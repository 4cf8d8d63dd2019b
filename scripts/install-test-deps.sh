#!/usr/bin/env bash
# Installs the components the integration tests talk to: syslog-ng (the
# syslog tests' receiver), openssl (certificates for the TLS tests),
# PostgreSQL (the log store tests start a throwaway cluster of their own) and
# Chromium with its driver (the web view's tests), from Debian's packages; and
# rsyslog, which cannot be installed beside syslog-ng
# (the packages conflict), unpacked from Debian's package into .cache/rsyslog
# with the libraries it needs that the system lacks. Runs apt-get install only
# as root and only for what is missing; otherwise says what those tests will
# do (fail under CI=true, skip elsewhere).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v syslog-ng >/dev/null 2>&1 || [ -x /usr/sbin/syslog-ng ] || missing+=(syslog-ng-core)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v initdb >/dev/null 2>&1 || compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null \
  || missing+=(postgresql)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing ${missing[*]} for the integration tests"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # The packages' services must not start here: the tests run their own instances.
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d.structflow
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      cp /usr/sbin/policy-rc.d.structflow /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
      trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    rm -f /usr/sbin/policy-rc.d.structflow
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "${missing[*]} missing and this is not root: their tests will skip (and fail under CI=true)" >&2
  fi
fi

# rsyslog: the system's if installed, else Debian's package unpacked (no
# service, nothing outside the repository) with the libraries it needs.
cache=.cache/rsyslog
if [ -x /usr/sbin/rsyslogd ] || [ -x "$cache/usr/sbin/rsyslogd" ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg >/dev/null 2>&1; then
  echo "rsyslog missing and apt-get/dpkg unavailable: its tests will skip (and fail under CI=true)" >&2
  exit 0
fi
echo "unpacking Debian's rsyslog into $cache for the integration tests"
download=$(mktemp -d)
trap 'rm -rf "$download"' EXIT
mkdir -p "$cache"
fetch() {
  # apt-get download needs package lists; refresh them once if it cannot find a package.
  (cd "$download" && apt-get download "$@" >/dev/null 2>&1) ||
    { [ "$(id -u)" = "0" ] && apt-get update -qq && (cd "$download" && apt-get download "$@" >/dev/null); }
}
if ! fetch rsyslog; then
  echo "could not download rsyslog: its tests will skip (and fail under CI=true)" >&2
  rm -rf "$cache"
  exit 0
fi
# The libraries rsyslog depends on that this system does not have.
needed=()
for dep in $(apt-cache depends --no-recommends --no-suggests rsyslog | awk '/^ *Depends:/ {print $2}'); do
  case "$dep" in "<"*) continue ;; esac
  dpkg-query -W -f='${Status}' "$dep" 2>/dev/null | grep -q "install ok installed" || needed+=("$dep")
done
if [ ${#needed[@]} -gt 0 ]; then
  fetch "${needed[@]}"
fi
for deb in "$download"/*.deb; do
  dpkg -x "$deb" "$cache"
done
libdir=$(dirname "$(ls -d "$cache"/usr/lib/*/rsyslog)")
if LD_LIBRARY_PATH="$libdir" ldd "$cache/usr/sbin/rsyslogd" | grep -q "not found"; then
  echo "rsyslogd in $cache still lacks libraries:" >&2
  LD_LIBRARY_PATH="$libdir" ldd "$cache/usr/sbin/rsyslogd" | grep "not found" >&2
fi
