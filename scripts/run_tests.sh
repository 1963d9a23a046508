#!/usr/bin/env bash
# run_tests.sh — builds and runs the hakmem test suite (`make test`).
#
#   scripts/run_tests.sh [-v] [-l] [FILTER...]
#
#   FILTER   run only the tests whose name contains one of the words
#            (e.g. `api`, `.asan`, `real.`); default: all
#   -v       print the tail of each failed test's log and each test's time
#   -l       list the test names and exit
#
# The libraries come from build/ (or $BUILD, or build-debug with DEBUG=1,
# build-hardened with HARDENED=1), as built by `make`. Binaries and logs go to
# build-tests/ (logs in build-tests/logs/NAME.log). Each test is run with a
# timeout and prints one line, `PASS name` or `FAIL name (reason)`; the last
# line is `N passed, M failed`. Exit status: 0 only if something ran and
# nothing failed.
#
# The binaries are built by tests/tests.mk (make -k -j, log in
# build-tests/logs/make.log), incrementally: a rerun with nothing changed
# compiles nothing; an edited source or header rebuilds what includes it.
#
# Variants of each tests/test_*.c:
#   NAME.linked   linked with libhakmem.a (the standard names are hakmem's)
#   NAME.preload  not linked with hakmem, run under LD_PRELOAD=libhakmem.so
#   NAME.asan     the hak_* API only (macros in tests/hk_test.h), linked with
#                 the core built with -fsanitize=address,undefined
#                 (build-asan/libhakmem_core.a, built by tests/tests.mk)
#   NAME.debug.linked, NAME.debug.preload, NAME.hardened.linked,
#   NAME.hardened.preload   for the safety tests (doublefree, guard, purge): the same
#                 against the DEBUG=1 and HARDENED=1 libraries of build.*
# tests/test_*.cpp: NAME.linked and NAME.preload.
# tests/unit_*.c (unit tests of the internals, -Isrc -Iinclude):
#   NAME.core     linked with libhakmem_core.a
#   NAME.asan     linked with the sanitizer core
# tsan.NAME       the threaded tests (threads, fork, oversub, introspect, purge,
#                 unit_trim_race) in the hak_* API mode against the core built with
#                 -fsanitize=thread (build-tsan/), suppressions in
#                 tests/tsan.supp; any ThreadSanitizer report fails it
# build.*         the library in its other configurations (debug, hardened,
#                 clang), warnings as errors: a build mode that nothing
#                 compiles breaks unseen
# lint.layers     python3 scripts/check_layers.py: the layers of src/ include
#                 only the layers below them
# lint.bench      python3 scripts/bench.py --self-test: the benchmark's own
#                 checks of its statistics and report
# real.*          real programs under LD_PRELOAD, output compared with the run
#                 without hakmem (tests/real/NAME.py, inputs in tests/real/inputs/)
# py.*            tests/test_NAME.py LIB.so WORKDIR: checks written in Python
#                 (the hakmem command; the JSON and malloc_info as parsed by
#                 Python's json and xml.etree); they build what they need
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 2

VERBOSE=0
LIST=0
FILTERS=()
for a in "$@"; do
  case "$a" in
  -v) VERBOSE=1 ;;
  -l) LIST=1 ;;
  -h | --help)
    sed -n '2,/^set -u/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
    exit 0
    ;;
  *) FILTERS+=("$a") ;;
  esac
done

if [ -n "${BUILD:-}" ]; then
  LIBDIR=$BUILD
elif [ "${DEBUG:-}" = 1 ]; then
  LIBDIR=build-debug
elif [ "${HARDENED:-}" = 1 ]; then
  LIBDIR=build-hardened
else
  LIBDIR=build
fi
LIBDIR="$ROOT/$LIBDIR"
ASAN_DIR=build-asan
TSAN_DIR=build-tsan
OUT="$ROOT/build-tests" # tests/tests.mk gets it as build-tests, relative to $ROOT
LOGS="$OUT/logs"
CC=${CC:-cc}
CXX=${CXX:-c++}
JOBS=$(nproc 2>/dev/null || echo 2)
TIMEOUT=${HAKMEM_TEST_TIMEOUT:-120}  # per test, seconds
BUDGET=${HAKMEM_TEST_BUDGET:-1200}   # whole run: tests not started by then fail
export LC_ALL=C
unset LD_PRELOAD HAKMEM_ON_ERROR HAKMEM_STATS

export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:allocator_may_return_null=1:symbolize=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"

mkdir -p "$OUT" "$LOGS"

# ------------------------------------------------------------- the test list
# Each entry: name|kind|source ; kind tells how to build and run it.
TESTS=()
for src in tests/test_*.c; do
  [ -e "$src" ] || continue
  n=$(basename "$src" .c)
  n=${n#test_}
  TESTS+=("$n.linked|c-linked|$src" "$n.preload|c-preload|$src" "$n.asan|c-asan|$src")
done
# the safety tests again against the debug and hardened libraries
# (tests/tests.mk CFG_TESTS): NAME.CFG.linked, NAME.CFG.preload
for n in doublefree guard purge; do
  [ -e "tests/test_$n.c" ] || continue
  for cfg in debug hardened; do
    TESTS+=("$n.$cfg.linked|c-linked|$cfg" "$n.$cfg.preload|cfg-preload|$cfg")
  done
done
for src in tests/test_*.cpp; do
  [ -e "$src" ] || continue
  n=$(basename "$src" .cpp)
  n=${n#test_}
  TESTS+=("$n.linked|cxx-linked|$src" "$n.preload|cxx-preload|$src")
done
for src in tests/unit_*.c; do
  [ -e "$src" ] || continue
  n=$(basename "$src" .c)
  TESTS+=("$n.core|unit-core|$src" "$n.asan|unit-asan|$src")
done
# ThreadSanitizer (tests/tests.mk TSAN_C, TSAN_UNIT): source, then arguments
for t in "threads|tests/test_threads.c" "fork|tests/test_fork.c" "oversub|tests/test_oversub.c" \
  "introspect|tests/test_introspect.c" "purge|tests/test_purge.c" "unit_trim_race|tests/unit_trim_race.c 1"; do
  src=${t#*|}
  [ -e "${src%% *}" ] || continue
  TESTS+=("tsan.${t%%|*}|tsan|$src")
done
for cfg in debug hardened clang; do
  TESTS+=("build.$cfg|config|$cfg")
done
TESTS+=("lint.layers|lint|scripts/check_layers.py" "lint.bench|lint|scripts/bench.py --self-test")
for src in tests/test_*.py; do
  [ -e "$src" ] || continue
  n=$(basename "$src" .py)
  TESTS+=("py.${n#test_}|py|$src")
done
for p in stats python pytests sqlite git cc redis sort; do
  TESTS+=("real.$p|real|tests/real/$p.py")
done
TESTS+=("real.pytests-guard|real|tests/real/pytests.py --guard")

selected() {
  [ ${#FILTERS[@]} -eq 0 ] && return 0
  local f
  for f in "${FILTERS[@]}"; do
    case "$1" in *"$f"*) return 0 ;; esac
  done
  return 1
}

SEL=()
for t in "${TESTS[@]}"; do
  selected "${t%%|*}" && SEL+=("$t")
done
if [ $LIST = 1 ]; then
  for t in "${SEL[@]}"; do echo "${t%%|*}"; done
  exit 0
fi

PASSED=0
FAILED=0
pass() {
  echo "PASS $1"
  PASSED=$((PASSED + 1))
}
fail() {
  echo "FAIL $1 ($2)"
  FAILED=$((FAILED + 1))
  if [ $VERBOSE = 1 ] && [ -n "${3:-}" ] && [ -f "$3" ]; then tail -n 25 "$3" | sed 's/^/    | /'; fi
}
one_line() { tr -d '\r' | head -c 240 | tr '\n\t' '  '; }

# ------------------------------------------- one run at a time in a tree
# two runs in one tree would build the same objects at once and remove each
# other's status files and work directories: the second waits
if command -v flock >/dev/null 2>&1; then
  exec 9>"$OUT/.lock"
  if ! flock -n 9; then
    echo "run_tests: waiting for the other run_tests.sh in $ROOT to finish" >&2
    flock 9
  fi
fi
SECONDS=0

# ---------------------- packages of the real programs (and clang)
for t in "${SEL[@]}"; do
  case "$t" in
  *"|real|"* | "build.clang|"*)
    # installs what is missing when run as root with apt-get; otherwise says
    # what is missing, and those tests fail with the reason
    bash "$ROOT/scripts/install_test_deps.sh" || true
    SECONDS=0 # the time budget is for the tests, not for apt
    break
    ;;
  esac
done

# ---------------------------------------------------------- the libraries
for f in libhakmem.so libhakmem.a libhakmem_core.a; do
  if [ ! -f "$LIBDIR/$f" ]; then
    fail "build" "$LIBDIR/$f missing: run make first"
    echo "$PASSED passed, $FAILED failed"
    exit 1
  fi
done

# ------------------------------------------------------------- compiling
# one make for every binary, the sanitizer core and the configurations; a
# test whose build failed has no build-tests/status/NAME (tests/tests.mk)
TARGETS=()
need_asan=0
need_tsan=0
for t in "${SEL[@]}"; do
  IFS='|' read -r name kind src <<<"$t"
  case "$kind" in
  real | lint | py) ;;
  cfg-preload) TARGETS+=("build-tests/status/${name%%.*}.preload" "build-tests/status/build.$src") ;;
  *) TARGETS+=("build-tests/status/$name") ;;
  esac
  case "$kind" in c-asan | unit-asan) need_asan=1 ;; tsan) need_tsan=1 ;; esac
done
[ $need_asan = 1 ] && TARGETS+=(build-tests/status/asan-core)
[ $need_tsan = 1 ] && TARGETS+=(build-tests/status/tsan-core)
rm -rf "$OUT/status"
: >"$LOGS/build-asan.log"
: >"$LOGS/build-tsan.log"
if [ ${#TARGETS[@]} -gt 0 ]; then
  b0=$SECONDS
  make -C "$ROOT" -f tests/tests.mk -k -j"$JOBS" OUT=build-tests ASAN_DIR="$ASAN_DIR" TSAN_DIR="$TSAN_DIR" LIBDIR="$LIBDIR" \
    CC="$CC" CXX="$CXX" "${TARGETS[@]}" >"$LOGS/make.log" 2>&1
  [ $VERBOSE = 1 ] && echo "  (build: $((SECONDS - b0))s, $(grep -c '^  CC ' "$LOGS/make.log") compiled, $(grep -c '^  LD ' "$LOGS/make.log") linked)"
fi
built() { [ -f "$OUT/status/$1" ]; }
ASAN_OK=0
built asan-core && ASAN_OK=1
TSAN_OK=0
built tsan-core && TSAN_OK=1

# why NAME did not build: the first error of its build log, else what make said
build_error() {
  local name=$1 log="$LOGS/$1.build.log" r=""
  [ -f "$log" ] && r=$(grep -m1 -E 'error:|undefined reference|cannot find' "$log")
  [ -n "$r" ] || r=$(grep -m1 -E "No rule to make target|\\*\\*\\*.*$name" "$LOGS/make.log")
  [ -n "$r" ] || r="see $LOGS/make.log"
  printf '%s' "$r" | one_line
}

# --------------------------------------------------------------- running
reason_from_log() {
  # the most telling line of a failed test's log
  local log=$1 r
  r=$(grep -m1 -E '^REASON: ' "$log" | sed 's/^REASON: //')
  [ -n "$r" ] || r=$(grep -m1 -E 'CHECK FAILED' "$log" | sed 's/^CHECK FAILED //')
  [ -n "$r" ] || r=$(grep -m1 -E 'ERROR: AddressSanitizer|runtime error:|LeakSanitizer|^SUMMARY: ThreadSanitizer|FATAL: ThreadSanitizer' "$log")
  [ -n "$r" ] || r=$(grep -m1 -E '^hakmem: ' "$log")
  [ -n "$r" ] || r=$(grep -v '^\s*$' "$log" | tail -n 1)
  printf '%s' "$r" | one_line
}

signame() {
  local s
  s=$(kill -l "$1" 2>/dev/null) && echo "SIG$s" || echo "signal $1"
}

TIMES="$OUT/times.txt"
: >"$TIMES"
for t in "${SEL[@]}"; do
  IFS='|' read -r name kind src <<<"$t"
  log="$LOGS/$name.log"
  bin="$OUT/$name"
  if [ "$SECONDS" -gt "$BUDGET" ]; then
    fail "$name" "not run: the suite's time budget of ${BUDGET}s is used up (HAKMEM_TEST_BUDGET)"
    continue
  fi
  case "$kind" in
  real | lint | py)
    if ! command -v python3 >/dev/null 2>&1; then
      fail "$name" "python3 is not installed"
      continue
    fi
    if [ ! -f "$ROOT/${src%% *}" ]; then
      fail "$name" "${src%% *} is missing"
      continue
    fi
    ;;
  c-asan | unit-asan)
    if [ $ASAN_OK = 0 ]; then
      r=$(grep -m1 -iE 'error' "$LOGS/build-asan.log")
      [ -n "$r" ] || r=$(grep -m1 -E "No rule to make target|\*\*\*.*$ASAN_DIR" "$LOGS/make.log")
      fail "$name" "the sanitizer core did not build: $(printf '%s' "$r" | one_line) (see $LOGS/build-asan.log, $LOGS/make.log)" "$LOGS/build-asan.log"
      continue
    fi
    ;;
  tsan)
    if [ $TSAN_OK = 0 ]; then
      r=$(grep -m1 -iE 'error' "$LOGS/build-tsan.log")
      [ -n "$r" ] || r=$(grep -m1 -E "No rule to make target|\*\*\*.*$TSAN_DIR" "$LOGS/make.log")
      fail "$name" "the ThreadSanitizer core did not build: $(printf '%s' "$r" | one_line) (see $LOGS/build-tsan.log, $LOGS/make.log)" "$LOGS/build-tsan.log"
      continue
    fi
    ;;
  esac
  case "$kind" in
  real | lint | py) ;;
  cfg-preload)
    if ! built "${name%%.*}.preload" || ! built "build.$src"; then
      fail "$name" "compile error: $(build_error "${name%%.*}.preload") $(build_error "build.$src")"
      continue
    fi
    ;;
  *)
    if ! built "$name"; then
      fail "$name" "compile error: $(build_error "$name")" "$LOGS/$name.build.log"
      continue
    fi
    ;;
  esac
  t0=$(date +%s.%N)
  case "$kind" in
  config) # built above; the build log is the test's log
    cp "$LOGS/$name.build.log" "$log"
    true
    ;;
  c-linked | cxx-linked | unit-core)
    timeout -k 10 "$TIMEOUT" "$bin" >"$log" 2>&1
    ;;
  c-preload | cxx-preload)
    timeout -k 10 "$TIMEOUT" env LD_PRELOAD="$LIBDIR/libhakmem.so" "$bin" >"$log" 2>&1
    ;;
  cfg-preload) # src: the configuration
    timeout -k 10 "$TIMEOUT" env LD_PRELOAD="$OUT/cfg-$src/libhakmem.so" "$OUT/${name%%.*}.preload" >"$log" 2>&1
    ;;
  c-asan | unit-asan)
    timeout -k 10 "$TIMEOUT" env HK_TEST_SCALE="${HK_ASAN_SCALE:-50}" "$bin" >"$log" 2>&1
    ;;
  tsan) # src: the source, then the program's arguments
    # shellcheck disable=SC2086
    timeout -k 10 "$TIMEOUT" env HK_TEST_SCALE="${HK_TSAN_SCALE:-20}" \
      TSAN_OPTIONS="suppressions=$ROOT/tests/tsan.supp:halt_on_error=0:exitcode=66:die_after_fork=0:history_size=7${TSAN_OPTIONS:+:$TSAN_OPTIONS}" \
      "$bin" ${src#"${src%% *}"} >"$log" 2>&1
    ;;
  lint) # src: the script and its arguments
    # shellcheck disable=SC2086
    (cd "$ROOT" && timeout -k 10 "$TIMEOUT" python3 $src) >"$log" 2>&1
    ;;
  py)
    timeout -k 10 "$TIMEOUT" python3 "$ROOT/$src" "$LIBDIR/libhakmem.so" "$OUT/py/$name" >"$log" 2>&1
    ;;
  real)
    to=$TIMEOUT
    case "$name" in real.pytests*) to=$((TIMEOUT * 5)) ;; esac # CPython's tests: under 3 min on an idle 2-core machine
    # src: the script, then its options
    # shellcheck disable=SC2086
    timeout -k 10 "$to" python3 "$ROOT/${src%% *}" ${src#"${src%% *}"} "$LIBDIR/libhakmem.so" "$OUT/real" >"$log" 2>&1
    ;;
  esac
  rc=$?
  t1=$(date +%s.%N)
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
  echo "$name $secs" >>"$TIMES"
  [ $VERBOSE = 1 ] && echo "  ($name: ${secs}s)"
  if [ $rc = 0 ]; then
    if grep -qE 'ERROR: AddressSanitizer|runtime error:|WARNING: ThreadSanitizer' "$log"; then
      fail "$name" "sanitizer report: $(reason_from_log "$log")" "$log"
    else
      pass "$name"
    fi
  elif [ $rc = 124 ] || [ $rc = 137 ]; then
    fail "$name" "timed out; $(reason_from_log "$log")" "$log"
  elif [ $rc -gt 128 ]; then
    fail "$name" "killed by $(signame $((rc - 128))): $(reason_from_log "$log")" "$log"
  else
    fail "$name" "exit $rc: $(reason_from_log "$log")" "$log"
  fi
done
rm -rf "$OUT/real"

echo "$PASSED passed, $FAILED failed"
[ $FAILED -eq 0 ] && [ $PASSED -gt 0 ]
