#!/usr/bin/env bash
# Runs the record-contract tests under every CPython 3.11 or newer on this
# machine besides the one of .venv, so that a difference between stdlib
# versions (Python 3.13 keeps logging's clock in nanoseconds) fails `make test`.
#
# Each version gets its own small venv, .venv-3.X, with structflow and only
# what those tests need; it is reused until pyproject.toml changes. A
# python3.X on PATH that does not run (a pyenv shim of a version that is not
# selected) is looked for among pyenv's installed versions before the version
# is counted as absent. Absent versions are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

TESTS=(tests/test_record_contract.py tests/test_records.py)
PACKAGES=(pytest pytest-timeout hypothesis)
main=$(.venv/bin/python -c 'import sys; print("%d.%d" % sys.version_info[:2])')

works() {
  "$1" -c 'import sys, venv; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1
}

# The interpreter of Python $1 (e.g. 3.12), or nothing.
find_python() {
  local version=$1 candidate root
  candidate=$(command -v "python$version" 2>/dev/null || true)
  if [ -n "$candidate" ] && works "$candidate"; then
    echo "$candidate"
    return
  fi
  if command -v pyenv >/dev/null 2>&1 && root=$(pyenv root 2>/dev/null); then
    for candidate in $(ls -d "$root/versions/$version".*/bin/"python$version" 2>/dev/null | sort -V -r); do
      if works "$candidate"; then
        echo "$candidate"
        return
      fi
    done
  fi
}

ran=()
for minor in $(seq 11 20); do
  version=3.$minor
  [ "$version" = "$main" ] && continue
  python=$(find_python "$version")
  [ -n "$python" ] || continue
  venv=.venv-$version
  if [ ! -f "$venv/.installed" ] || [ pyproject.toml -nt "$venv/.installed" ]; then
    echo "record contract: preparing $venv from $python"
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e . "${PACKAGES[@]}"
    touch "$venv/.installed"
  fi
  echo "record contract: Python $version"
  "$venv/bin/python" -m pytest -q -p no:cacheprovider "${TESTS[@]}"
  ran+=("$version")
done
echo "record contract: passed under ${ran[*]:-no other Python} besides $main (.venv)"
