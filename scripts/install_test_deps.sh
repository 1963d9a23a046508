#!/usr/bin/env bash
# install_test_deps.sh — the Debian packages the test suite's real programs
# need (tests/real/*.py, the real.* tests), clang for the build.clang test,
# google-pprof (google-perftools) for py.prof and libunwind8, the profiler's unwinder,
# installed with apt-get when missing.
#
#   scripts/install_test_deps.sh [--check]
#
# Installs only as root with apt-get; otherwise, and with --check, it lists
# what is missing and exits 1. Services that packages would start (redis) are
# not started: the tests run their own servers. Used by .ci/run and by
# scripts/run_tests.sh (`make test`).
set -u
export LC_ALL=C

CHECK=0
[ "${1:-}" = --check ] && CHECK=1

PKGS="gcc g++ clang make coreutils sqlite3 git python3 redis-server redis-tools google-perftools libunwind8"

missing() {
  local p out=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || out+=("$p"); done
  echo "${out[*]}"
}

# CPython's own test package (real.pytests) is versioned like the interpreter.
testsuite_pkg() {
  local v
  v=$(/usr/bin/python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) || return 1
  # Debian's stdlib package has test.support but not the tests themselves
  /usr/bin/python3 -c 'import test.test_dict' >/dev/null 2>&1 && return 1
  echo "libpython$v-testsuite"
}

command -v dpkg >/dev/null 2>&1 || {
  echo "install_test_deps: no dpkg: install by hand: $PKGS and CPython's test package" >&2
  exit 1
}

can_install=0
[ $CHECK = 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && can_install=1

updated=0
guard=0
cleanup() { if [ $guard = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi; }
trap cleanup EXIT
apt_install() {
  [ $can_install = 1 ] || return 1
  echo "install_test_deps: installing $*"
  # no service start during installation (redis-server's would): the tests
  # start their own servers
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    guard=1
  fi
  if [ $updated = 0 ]; then
    updated=1
    apt-get update -qq >/dev/null 2>&1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

need=$(missing $PKGS)
[ -n "$need" ] && { apt_install $need || true; }
ts=$(testsuite_pkg) && { apt_install "$ts" || true; }

left="$(missing $PKGS) $(testsuite_pkg)"
left=$(echo $left)
if [ -n "$left" ]; then
  echo "install_test_deps: missing: $left (run as root, or: sudo apt-get install $left)" >&2
  exit 1
fi
exit 0
