#!/usr/bin/env bash
# Installs the components the integration tests talk to: syslog-ng (the
# syslog tests' receiver), openssl (certificates for the TLS tests),
# PostgreSQL (the log store tests start a throwaway cluster of their own) and
# Chromium with its driver (the web view's tests), from Debian's packages. Runs apt-get only as root and only for what is missing;
# otherwise says what those tests will do (fail under CI=true, skip elsewhere).
set -euo pipefail
missing=()
command -v syslog-ng >/dev/null 2>&1 || [ -x /usr/sbin/syslog-ng ] || missing+=(syslog-ng-core)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v initdb >/dev/null 2>&1 || compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null \
  || missing+=(postgresql)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
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
