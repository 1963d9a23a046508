#!/usr/bin/env bash
# fuzz.sh — builds the libFuzzer target tests/fuzz_hakmem.c against a
# sanitizer build of the core and fuzzes it.
#
#   scripts/fuzz.sh [SECONDS] [-- LIBFUZZER_ARGS...]
#
#   SECONDS   how long to fuzz (default 60)
#
# Everything goes to build-fuzz/: the sanitizer core (libhakmem_core.a built
# with -fsanitize=fuzzer-no-link,address,undefined), the target fuzz_hakmem,
# the corpus (build-fuzz/corpus, kept between runs), crash inputs
# (build-fuzz/crashes/) and the log (build-fuzz/fuzz.log). Also builds
# build-fuzz/fuzz_hakmem_standalone (-DFUZZ_STANDALONE, no libFuzzer), which
# replays inputs: build-fuzz/fuzz_hakmem_standalone FILE|DIR...
#
# Environment: CC (default clang), FUZZ_CFLAGS (extra flags for the target,
# e.g. -DFUZZ_SELFTEST, which corrupts a block on purpose), FUZZ_JOBS (parallel fuzzing processes,
# default 1), FUZZ_DEBUG=1 (fuzz a DEBUG=1 core, with its assertions:
# build-fuzz/debug/, target build-fuzz/fuzz_hakmem_debug, log
# build-fuzz/fuzz_debug.log; same corpus), and any HAKMEM_* variable (passed
# through to the allocator; HAKMEM_ON_ERROR=warn also enables the target's
# invalid-pointer operations).
# Exit status: 0 if no crash was found, 1 if one was (its input is named in
# the report), 2 on a build or usage error.
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 2

SECONDS_TO_RUN=60
if [ $# -gt 0 ] && [ "$1" != "--" ]; then
  SECONDS_TO_RUN=$1
  shift
fi
[ $# -gt 0 ] && [ "$1" = "--" ] && shift
case "$SECONDS_TO_RUN" in
'' | *[!0-9]*)
  echo "usage: $0 [SECONDS] [-- LIBFUZZER_ARGS...]" >&2
  exit 2
  ;;
esac

CC=${CC:-clang}
JOBS=${FUZZ_JOBS:-1}
OUT=build-fuzz
SAN="-fsanitize=address,undefined -fno-omit-frame-pointer"
if [ "${FUZZ_DEBUG:-0}" = 1 ]; then
  CORE=$OUT/debug
  MAKEDEBUG=DEBUG=1
  SUFFIX=_debug
else
  CORE=$OUT
  MAKEDEBUG=DEBUG=0
  SUFFIX=
fi
BIN=$OUT/fuzz_hakmem$SUFFIX
LOG=$OUT/fuzz$SUFFIX.log

echo "== building the sanitizer core ($CORE/libhakmem_core.a)"
make -s $MAKEDEBUG BUILD=$CORE CC="$CC" \
  CFLAGS="-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer" \
  $CORE/libhakmem_core.a || exit 2

echo "== building $BIN"
TFLAGS="-std=gnu11 -g -O2 -Wall -Wextra -Iinclude ${FUZZ_CFLAGS:-}"
$CC $TFLAGS -fsanitize=fuzzer $SAN tests/fuzz_hakmem.c $CORE/libhakmem_core.a -pthread \
  -o $BIN || exit 2
$CC $TFLAGS -DFUZZ_STANDALONE $SAN tests/fuzz_hakmem.c $CORE/libhakmem_core.a -pthread \
  -o ${BIN}_standalone || exit 2

mkdir -p $OUT/corpus $OUT/crashes
# Seed the corpus with a few random inputs the first time.
if [ -z "$(ls -A $OUT/corpus)" ]; then
  for i in 1 2 3 4 5 6 7 8; do
    head -c $((i * 256)) /dev/urandom >$OUT/corpus/seed$i
  done
fi

export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:symbolize=1:allocator_may_return_null=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

before=$(ls $OUT/crashes | wc -l)
echo "== fuzzing for ${SECONDS_TO_RUN}s ($JOBS job(s)), log in $LOG"
ARGS=(-max_len=4096 -timeout=30 -rss_limit_mb=3072 -max_total_time="$SECONDS_TO_RUN"
  -print_final_stats=1 -artifact_prefix=$OUT/crashes/)
if [ "$JOBS" -gt 1 ]; then
  # -fork keeps going after a crash; each job gets its own log fuzz-N.log
  ARGS+=(-fork="$JOBS" -ignore_crashes=1)
fi
./$BIN "${ARGS[@]}" "$@" $OUT/corpus >$LOG 2>&1
rc=$?

after=$(ls $OUT/crashes | wc -l)
grep -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE)' $LOG | tail -1
grep -E 'stat::number_of_executed_units|stat::peak_rss_mb' $LOG
echo "corpus: $(ls $OUT/corpus | wc -l) inputs"
if [ "$rc" -ne 0 ] || [ "$after" -gt "$before" ]; then
  echo "== CRASH (libFuzzer exit status $rc); new inputs in $OUT/crashes:"
  ls -t $OUT/crashes | head -n $((after - before > 0 ? after - before : 5)) | sed "s|^|  $OUT/crashes/|"
  grep -E 'fuzz_hakmem: FAIL|hakmem: |ERROR: AddressSanitizer|runtime error|deadly signal|Test unit written' \
    $LOG | head -20
  echo "reproduce: ${BIN}_standalone <crash file>   (or $BIN <crash file>)"
  exit 1
fi
echo "== no crash"
exit 0
