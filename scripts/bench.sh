#!/usr/bin/env bash
# bench.sh — hakmem's side-by-side allocator comparison (`make bench`).
#
# Builds the benchmark programs of bench/ into build-bench/, runs every
# workload with glibc, hakmem, mimalloc, jemalloc and tcmalloc through
# LD_PRELOAD, interleaved (every round in a new, seeded order), several runs each,
# hakmem twice per round as an A/A noise control, plus one
# run per allocator of most workloads under callgrind (instructions per
# operation, which the machine's noise barely moves), plus one
# short run per allocator under `strace -f -c` (hakmem's also with
# HAKMEM_STATS=1), and writes docs/BENCHMARKS.md, docs/bench_table.md and
# docs/bench.png. Every benchmark checks its own results; a run that fails its
# check, crashes or times out shows as FAILED, never as a number. hakmem runs
# must prove, through hak_owns, that hakmem served their blocks.
#
# usage: scripts/bench.sh [--quick] [--runs N] [--workloads a,b,c]
#                         [--allocators a,b,c] [--no-strace] [--no-callgrind] [--readme|--no-readme]
#                         [--build-only] [--help]
# environment: CC (default cc), HAKMEM_LIB (default build/libhakmem.so),
#              BENCH_TIMEOUT (seconds per run, default 120),
#              BENCH_SEED (the order of the runs within each round, default 1)
set -u
export LC_ALL=C

cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
OUT=$ROOT/build-bench
DOCS=$ROOT/docs
LIBDIR=/usr/lib/x86_64-linux-gnu
CC=${CC:-cc}
TIMEOUT=${BENCH_TIMEOUT:-120}
SEED=${BENCH_SEED:-1}
case $SEED in ''|*[!0-9]*) echo "bench.sh: BENCH_SEED must be a number" >&2; exit 2 ;; esac
HAKMEM_LIB=${HAKMEM_LIB:-$ROOT/build/libhakmem.so}

ALL_WORKLOADS="random_mixed mid_large_mt larson xthread cache_scratch realloc_grow big_churn thread_scale_1 thread_scale_2 thread_scale_4 thread_scale_8"
ALL_ALLOCATORS="glibc hakmem mimalloc jemalloc tcmalloc"
REF=mimalloc # ratios are relative to this one (glibc if it is missing)

QUICK=0
RUNS=
WORKLOADS=$ALL_WORKLOADS
ALLOCATORS=$ALL_ALLOCATORS
DO_STRACE=1
DO_CALLGRIND=1
README_MODE=auto
BUILD_ONLY=0

usage() {
  sed -n '2,/^set -u/p' "$0" | sed -e '/^set -u/d' -e 's/^# \{0,1\}//'
  echo "workloads:  $ALL_WORKLOADS (thread_scale = all four thread counts)"
  echo "allocators: $ALL_ALLOCATORS"
}

die() { echo "bench.sh: $*" >&2; exit 2; }
say() { echo "[bench] $*" >&2; }

while [ $# -gt 0 ]; do
  case $1 in
    --quick) QUICK=1 ;;
    --runs) [ $# -ge 2 ] || die "--runs needs a number"; RUNS=$2; shift ;;
    --runs=*) RUNS=${1#--runs=} ;;
    --workloads) [ $# -ge 2 ] || die "--workloads needs a list"; WORKLOADS=$2; shift ;;
    --workloads=*) WORKLOADS=${1#--workloads=} ;;
    --allocators) [ $# -ge 2 ] || die "--allocators needs a list"; ALLOCATORS=$2; shift ;;
    --allocators=*) ALLOCATORS=${1#--allocators=} ;;
    --no-strace) DO_STRACE=0 ;;
    --no-callgrind) DO_CALLGRIND=0 ;;
    --readme) README_MODE=yes ;;
    --no-readme) README_MODE=no ;;
    --build-only) BUILD_ONLY=1 ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
  shift
done

if [ -z "$RUNS" ]; then
  if [ $QUICK = 1 ]; then RUNS=2; else RUNS=7; fi
fi
case $RUNS in ''|*[!0-9]*|0) die "--runs must be a positive integer" ;; esac

# normalise and check the lists
WORKLOADS=$(echo "$WORKLOADS" | tr ',' ' ')
wl_list=
for w in $WORKLOADS; do
  if [ "$w" = thread_scale ]; then w="thread_scale_1 thread_scale_2 thread_scale_4 thread_scale_8"; fi
  for x in $w; do
    case " $ALL_WORKLOADS " in *" $x "*) wl_list="$wl_list $x" ;; *) die "unknown workload '$x' (known: $ALL_WORKLOADS)" ;; esac
  done
done
WORKLOADS=${wl_list# }
ALLOCATORS=$(echo "$ALLOCATORS" | tr ',' ' ')
for a in $ALLOCATORS; do
  case " $ALL_ALLOCATORS " in *" $a "*) ;; *) die "unknown allocator '$a' (known: $ALL_ALLOCATORS)" ;; esac
done

# ---------------------------------------------------------------- workloads
# wl_cmd NAME MODE -> "binary args..." ; MODE: full | quick | trace (the strace run)
wl_cmd() {
  local w=$1 m=$2
  case $w in
    random_mixed)
      case $m in full) echo "random_mixed 40000000 4096 1234567" ;; quick) echo "random_mixed 3000000 4096 1234567" ;; trace) echo "random_mixed 2000000 4096 1234567" ;; esac ;;
    random_mixed_floor)
      wl_cmd random_mixed "$m" | sed 's/^random_mixed/random_mixed_floor/' ;;
    mid_large_mt)
      case $m in full) echo "mid_large_mt 2 3500000 2048 8192 32768 1234567" ;; quick) echo "mid_large_mt 2 300000 2048 8192 32768 1234567" ;; trace) echo "mid_large_mt 2 200000 2048 8192 32768 1234567" ;; esac ;;
    larson)
      case $m in full) echo "larson 1.5 8 1000 1000 100 4141 2" ;; quick) echo "larson 0.3 8 1000 1000 100 4141 2" ;; trace) echo "larson 0.3 8 1000 1000 100 4141 2" ;; esac ;;
    xthread)
      case $m in full) echo "xthread 2 2 2000000 16 2048 1234567" ;; quick) echo "xthread 2 2 200000 16 2048 1234567" ;; trace) echo "xthread 2 2 100000 16 2048 1234567" ;; esac ;;
    cache_scratch)
      case $m in full) echo "cache_scratch 2 5000 8 20000 1234567" ;; quick) echo "cache_scratch 2 500 8 20000 1234567" ;; trace) echo "cache_scratch 2 200 8 20000 1234567" ;; esac ;;
    realloc_grow)
      case $m in full) echo "realloc_grow 60000 1048576 1234567" ;; quick) echo "realloc_grow 5000 1048576 1234567" ;; trace) echo "realloc_grow 3000 1048576 1234567" ;; esac ;;
    big_churn)
      case $m in full) echo "big_churn 800 4 1234567" ;; quick) echo "big_churn 40 4 1234567" ;; trace) echo "big_churn 40 4 1234567" ;; esac ;;
    thread_scale_*)
      local t=${w#thread_scale_}
      case $m in full) echo "thread_scale $t 40000000 4096 1234567" ;; quick) echo "thread_scale $t 3000000 4096 1234567" ;; trace) echo "thread_scale $t 2000000 4096 1234567" ;; esac ;;
  esac
}

wl_desc() {
  case $1 in
    random_mixed) echo "1 thread, 4096 slots, random alloc/free of 16–1040 B" ;;
    mid_large_mt) echo "2 threads, 2048 slots each, random alloc/free of 8–32 KiB, every page touched" ;;
    larson) echo "Larson–Krishnan server simulation, 8–1000 B, 2 threads handing their blocks to new threads (time-based)" ;;
    xthread) echo "2 producer threads allocate 16–2048 B, 2 consumer threads free (all frees remote)" ;;
    cache_scratch) echo "false-sharing check: 2 threads write 8-byte objects (first one allocated by the main thread)" ;;
    realloc_grow) echo "strings growing by 1–32 B steps and vectors doubling up to 1 MiB, through realloc" ;;
    big_churn) echo "1–64 MiB blocks, 4 slots, every page touched" ;;
    thread_scale_*) echo "random_mixed on ${1#thread_scale_} thread(s), same total work (2 cores: oversubscribed above 2)" ;;
  esac
}

wl_ops_meaning() {
  case $1 in
    larson|xthread|realloc_grow|mid_large_mt|random_mixed|thread_scale_*|big_churn) echo "malloc/realloc/free calls" ;;
    cache_scratch) echo "object write passes" ;;
  esac
}

# ---------------------------------------------------------------- build
BENCH_PROGS="random_mixed mid_large_mt larson xthread cache_scratch realloc_grow big_churn thread_scale"
mkdir -p "$OUT" "$OUT/logs" "$OUT/strace" "$OUT/tmp"
CFLAGS_BENCH="-std=c11 -O2 -Wall -Wextra -pthread"
build_prog() { # name src extra-flags...
  local name=$1 src=$2; shift 2
  if [ ! -x "$OUT/$name" ] || [ "$src" -nt "$OUT/$name" ] || [ bench/bench_common.h -nt "$OUT/$name" ] ||
     [ bench/slots_core.h -nt "$OUT/$name" ] || [ "$0" -nt "$OUT/$name" ]; then
    $CC $CFLAGS_BENCH "$@" "$src" -o "$OUT/$name" -ldl || die "building $name failed ($CC $CFLAGS_BENCH $* $src)"
  fi
}
say "building benchmarks into build-bench/ with $CC"
for p in $BENCH_PROGS; do build_prog "$p" "bench/$p.c"; done
build_prog random_mixed_floor bench/random_mixed.c -DFLOOR_ALLOC
build_prog runwrap bench/runwrap.c
if [ $BUILD_ONLY = 1 ]; then say "build only: done"; exit 0; fi

# ---------------------------------------------------------------- tools and peers
IS_ROOT=0; [ "$(id -u)" = 0 ] && IS_ROOT=1
HAVE_APT=0; command -v apt-get >/dev/null 2>&1 && HAVE_APT=1
APT_UPDATED=0
apt_install() { # package...
  [ $IS_ROOT = 1 ] && [ $HAVE_APT = 1 ] || return 1
  say "installing $* with apt-get"
  if DEBIAN_FRONTEND=noninteractive apt-get install -y "$@" >"$OUT/logs/apt.log" 2>&1; then return 0; fi
  if [ $APT_UPDATED = 0 ]; then
    APT_UPDATED=1
    apt-get update >>"$OUT/logs/apt.log" 2>&1
    DEBIAN_FRONTEND=noninteractive apt-get install -y "$@" >>"$OUT/logs/apt.log" 2>&1 && return 0
  fi
  return 1
}

peer_path() {
  case $1 in
    glibc) echo "-" ;;
    hakmem | hakmem_aa) echo "$HAKMEM_LIB" ;;
    mimalloc) echo "$LIBDIR/libmimalloc.so.2" ;;
    jemalloc) echo "$LIBDIR/libjemalloc.so.2" ;;
    tcmalloc) echo "$LIBDIR/libtcmalloc_minimal.so.4" ;;
  esac
}
peer_pkg() {
  case $1 in
    glibc) echo libc6 ;; mimalloc) echo libmimalloc2.0 ;; jemalloc) echo libjemalloc2 ;;
    tcmalloc) echo libtcmalloc-minimal4 ;; hakmem) echo "" ;;
  esac
}

MISSING_NOTES=()
active=
for a in $ALLOCATORS; do
  p=$(peer_path "$a")
  if [ "$a" = glibc ]; then active="$active $a"; continue; fi
  if [ "$a" = hakmem ] && [ ! -f "$p" ] && [ "$p" = "$ROOT/build/libhakmem.so" ] && [ -f Makefile ]; then
    say "build/libhakmem.so not found: running 'make lib'"
    make -s lib >"$OUT/logs/hakmem-build.log" 2>&1 || say "hakmem build failed (see build-bench/logs/hakmem-build.log)"
  fi
  if [ ! -f "$p" ] && [ "$a" != hakmem ]; then
    pkg=$(peer_pkg "$a")
    apt_install "$pkg" || true
  fi
  if [ -f "$p" ]; then
    active="$active $a"
  else
    if [ "$a" = hakmem ]; then
      msg="hakmem is missing: ${p#$ROOT/} does not exist (build it with 'make'); continuing without it"
    else
      msg="peer $a is missing: $p not found (Debian package $(peer_pkg "$a")"
      if [ $IS_ROOT = 1 ] && [ $HAVE_APT = 1 ]; then msg="$msg; apt-get install failed, see build-bench/logs/apt.log"
      else msg="$msg; run as root or 'sudo apt-get install $(peer_pkg "$a")'"; fi
      msg="$msg); continuing without it"
    fi
    say "WARNING: $msg"
    MISSING_NOTES+=("$msg")
  fi
done
ALLOCS=${active# }
[ -n "$ALLOCS" ] || die "no allocator left to measure"
case " $ALLOCS " in *" $REF "*) ;; *) REF=$(echo "$ALLOCS" | awk '{print $1}') ;; esac

if [ $DO_STRACE = 1 ] && ! command -v strace >/dev/null 2>&1; then
  apt_install strace || true
  if ! command -v strace >/dev/null 2>&1; then
    say "WARNING: strace is missing: no syscall table"; MISSING_NOTES+=("strace is missing: no syscall table"); DO_STRACE=0
  fi
fi
if [ $DO_CALLGRIND = 1 ] && ! command -v valgrind >/dev/null 2>&1; then
  apt_install valgrind || true
  if ! command -v valgrind >/dev/null 2>&1; then
    say "WARNING: valgrind is missing: no instruction counts"; MISSING_NOTES+=("valgrind is missing: no instruction counts"); DO_CALLGRIND=0
  fi
fi
HAVE_GNUPLOT=1
if ! command -v gnuplot >/dev/null 2>&1; then
  apt_install gnuplot-nox || true
  command -v gnuplot >/dev/null 2>&1 || { HAVE_GNUPLOT=0; say "WARNING: gnuplot is missing: no docs/bench.png"; MISSING_NOTES+=("gnuplot is missing: docs/bench.png not drawn"); }
fi

MODE=full; [ $QUICK = 1 ] && MODE=quick

# ---------------------------------------------------------------- running
RES=$OUT/results.tsv     # workload alloc run status ops_per_sec maxrss_kb owned extra wall_seconds
: >"$RES"
FAILS=$OUT/failures.txt
: >"$FAILS"

# run_one WORKLOAD ALLOC K N CMD... : one measured run, appends to $RES
run_one() {
  local w=$1 a=$2 k=$3 n=$4; shift 4
  local pre; pre=$(peer_path "$a")
  [ "$a" = floor ] && pre=-
  local base="$OUT/tmp/run"
  rm -f "$base.info"
  "$OUT/runwrap" "$TIMEOUT" "$base.info" "$pre" "$OUT/$1" "${@:2}" >"$base.out" 2>"$base.err" </dev/null
  local rc=$?
  local line; line=$(grep '^RESULT ' "$base.out" | tail -n 1)
  local info; info=$(cat "$base.info" 2>/dev/null)
  local rss; rss=$(echo "$info" | sed -n 's/.*maxrss_kb=\([0-9]*\).*/\1/p')
  local st; st=$(echo "$info" | sed -n 's/.*status=\([^ ]*\).*/\1/p')
  local ops; ops=$(echo "$line" | sed -n 's/.* ops_per_sec=\([0-9.]*\).*/\1/p')
  local check; check=$(echo "$line" | sed -n 's/.* check=\([^ ]*\).*/\1/p')
  local owned; owned=$(echo "$line" | sed -n 's/.* hakmem_owned=\([0-9]*\/[0-9]*\).*/\1/p')
  local extra; extra=$(echo "$line" | sed -n 's/.* extra=\([^ ]*\).*/\1/p')
  local wall; wall=$(echo "$info" | sed -n 's/.*wall=\([0-9.]*\).*/\1/p')
  local status=ok why=
  if [ $rc -ne 0 ]; then
    status=FAILED
    case $st in
      TIMEOUT) why="timed out after ${TIMEOUT}s" ;;
      SIG*) why="killed by $st" ;;
      3) why="content check failed: $(grep -m1 'CHECK FAILED' "$base.err" | cut -c1-200)" ;;
      *) why="exit status $rc: $(tail -n 1 "$base.err" | cut -c1-200)" ;;
    esac
  elif [ -z "$line" ] || [ "$check" != ok ] || [ -z "$ops" ]; then
    status=FAILED; why="no valid RESULT line"
  elif grep -q 'ERROR: ld.so' "$base.err"; then
    status=FAILED; why="LD_PRELOAD of $pre failed: $(grep -m1 'ERROR: ld.so' "$base.err" | cut -c1-200)"
  elif [ "$a" = hakmem ] || [ "$a" = hakmem_aa ]; then
    if [ -z "$owned" ]; then
      status=FAILED; why="hak_owns not found through dlsym: cannot prove hakmem served the run"
    elif [ "${owned%/*}" != "${owned#*/}" ]; then
      status=FAILED; why="only $owned sampled blocks are hakmem's: the run was not served by hakmem"
    fi
  fi
  if [ $status = FAILED ]; then
    local tag="$w.$a.$k"
    cp "$base.out" "$OUT/logs/$tag.out"; cp "$base.err" "$OUT/logs/$tag.err"
    local envs=""; [ "$pre" != - ] && envs="LD_PRELOAD=$pre "
    printf '%s\t%s\t%s\t%s%s\t%s\n' "$w" "$a" "$k" "$envs" "build-bench/$*" "$why (logs: build-bench/logs/$tag.{out,err})" >>"$FAILS"
    say "   FAILED: ${envs}build-bench/$* -> $why"
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$w" "$a" "$k" "$status" "${ops:--}" "${rss:--}" "${owned:--}" "${extra:--}" "${wall:--}" >>"$RES"
  if [ $status = ok ]; then
    printf '[bench] %-15s %-9s run %d/%d  %s ops/s  peak RSS %s KiB%s\n' "$w" "$a" "$k" "$n" \
      "$(awk -v x="$ops" 'BEGIN{ if (x>=1e6) printf "%.2fM", x/1e6; else if (x>=1e3) printf "%.1fk", x/1e3; else printf "%.1f", x }')" \
      "$rss" "${owned:+  owned $owned}" >&2
  fi
}

# One round: every allocator once, and hakmem a second time as "hakmem_aa":
# the same library measured twice in the same run shows how large a
# difference this machine's noise makes on its own (the report's A/A table).
read -r -a ROUND <<<"$ALLOCS"
case " $ALLOCS " in *" hakmem "*) ROUND+=(hakmem_aa) ;; esac
# round_order WORKLOAD_INDEX ROUND -> the round's allocators, shuffled by SEED
round_order() {
  printf '%s\n' "${ROUND[@]}" |
    awk -v seed="$((SEED * 1000003 + $1 * 1009 + $2))" 'BEGIN { srand(seed) } { printf "%.9f\t%s\n", rand(), $0 }' |
    sort -k1,1 | cut -f2
}

nwl=$(echo "$WORKLOADS" | wc -w)
say "mode=$MODE runs=$RUNS allocators: $ALLOCS; workloads ($nwl): $WORKLOADS"
T_START=$(date +%s)
i=0
for w in $WORKLOADS; do
  i=$((i + 1))
  cmd=$(wl_cmd "$w" "$MODE")
  say "workload $i/$nwl: $w — $cmd"
  for k in $(seq 1 "$RUNS"); do
    # A new order every round (seeded shuffle), so that no allocator always
    # runs first, last or after the same neighbour.
    for a in $(round_order "$i" "$k"); do
      # shellcheck disable=SC2086
      run_one "$w" "$a" "$k" "$RUNS" $cmd
    done
    if [ "$w" = random_mixed ]; then
      # shellcheck disable=SC2086
      run_one random_mixed_floor floor "$k" "$RUNS" $(wl_cmd random_mixed_floor "$MODE")
    fi
  done
done

# ---------------------------------------------------------------- strace / HAKMEM_STATS pass
SYS=$OUT/syscalls.tsv    # workload alloc mmap munmap madvise futex total status
: >"$SYS"
STATS=$OUT/hakmem_stats.tsv  # workload line
: >"$STATS"
for w in $WORKLOADS; do
  cmd=$(wl_cmd "$w" trace)
  for a in $ALLOCS; do
    pre=$(peer_path "$a")
    envargs=()
    [ "$pre" != - ] && envargs+=(-E "LD_PRELOAD=$pre")
    [ "$a" = hakmem ] && envargs+=(-E HAKMEM_STATS=1)
    [ $DO_STRACE = 1 ] || [ "$a" = hakmem ] || continue
    say "syscall/stat run: $w $a"
    f="$OUT/strace/$w.$a"
    set -- $cmd
    if [ $DO_STRACE = 1 ]; then
      timeout "$TIMEOUT" strace -f -c -o "$f.strace" "${envargs[@]}" "$OUT/$1" "${@:2}" >"$f.out" 2>"$f.err" </dev/null
    else
      ( [ "$pre" != - ] && export LD_PRELOAD="$pre"; export HAKMEM_STATS=1; exec timeout "$TIMEOUT" "$OUT/$1" "${@:2}" ) >"$f.out" 2>"$f.err" </dev/null
    fi
    rc=$?
    why="exit status $rc"
    [ $rc -gt 128 ] && why="$why ($(kill -l $((rc - 128)) 2>/dev/null | sed 's/^/SIG/'))"
    [ $rc -eq 124 ] && why="timed out after ${TIMEOUT}s"
    st=ok
    grep -q '^RESULT .* check=ok' "$f.out" || st=FAILED
    [ $rc -eq 0 ] || st=FAILED
    if [ $st = FAILED ]; then
      envs=""; [ "$pre" != - ] && envs="LD_PRELOAD=$pre "; [ "$a" = hakmem ] && envs="${envs}HAKMEM_STATS=1 "
      printf '%s\t%s\t%s\t%s%s\t%s\n' "$w" "$a" trace "$envs" "build-bench/$cmd" "$why under strace: $(grep -m1 -E 'CHECK FAILED|ERROR' "$f.err" | cut -c1-200) (logs: build-bench/strace/$w.$a.{out,err,strace})" >>"$FAILS"
      say "   FAILED (strace run): ${envs}build-bench/$cmd -> $why"
    fi
    if [ $DO_STRACE = 1 ] && [ -f "$f.strace" ]; then
      awk -v w="$w" -v a="$a" -v st="$st" '
        $NF ~ /^[a-z_0-9]+$/ && $4 ~ /^[0-9]+$/ && $NF != "total" { c[$NF] += $4; tot += $4 }
        END { printf "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\n", w, a, c["mmap"], c["munmap"], c["madvise"], c["futex"], tot, st }' \
        "$f.strace" >>"$SYS"
    fi
    if [ "$a" = hakmem ]; then
      line=$(grep '^hakmem-stats:' "$f.err" | head -n 3 | tr '\n' ' ' | sed 's/ *$//')
      [ -n "$line" ] || line="(no hakmem-stats line on stderr with HAKMEM_STATS=1)"
      printf '%s\t%s\n' "$w" "$line" >>"$STATS"
    fi
  done
done

# ---------------------------------------------------------------- instruction counts
# One run per allocator under callgrind (same size as the strace run): total
# instructions of the process, repeatable to a fraction of a percent for the
# fixed-work workloads. larson runs for a fixed time, so only its count per
# operation compares.
CG_WORKLOADS="random_mixed mid_large_mt larson xthread realloc_grow thread_scale_4 thread_scale_8"
IRS=$OUT/instructions.tsv # workload alloc instructions ops status
: >"$IRS"
if [ $DO_CALLGRIND = 1 ]; then
  mkdir -p "$OUT/callgrind"
  for w in $CG_WORKLOADS; do
    case " $WORKLOADS " in *" $w "*) ;; *) continue ;; esac
    list=$ALLOCS; [ "$w" = random_mixed ] && list="$list floor"
    for a in $list; do
      if [ "$a" = floor ]; then cmd=$(wl_cmd random_mixed_floor trace); pre=-; else cmd=$(wl_cmd "$w" trace); pre=$(peer_path "$a"); fi
      say "callgrind run: $w $a"
      f="$OUT/callgrind/$w.$a"
      set -- $cmd
      ( [ "$pre" != - ] && export LD_PRELOAD="$pre"
        exec timeout "$((TIMEOUT * 4))" valgrind --tool=callgrind --callgrind-out-file=/dev/null "$OUT/$1" "${@:2}" ) >"$f.out" 2>"$f.err" </dev/null
      ir=$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$f.err" | tail -n 1)
      ops=$(sed -n 's/^RESULT .* ops=\([0-9]*\).*/\1/p' "$f.out" | head -n 1)
      st=ok
      { [ -n "$ir" ] && grep -q '^RESULT .* check=ok' "$f.out"; } || st=FAILED
      if [ "$a" = hakmem ] && [ $st = ok ]; then
        own=$(sed -n 's/^RESULT .* hakmem_owned=\([0-9]*\/[0-9]*\).*/\1/p' "$f.out")
        [ -n "$own" ] && [ "${own%/*}" = "${own#*/}" ] || st=FAILED
      fi
      if [ $st = FAILED ]; then
        envs=""; [ "$pre" != - ] && envs="LD_PRELOAD=$pre "
        printf '%s\t%s\t%s\t%s%s\t%s\n' "$w" "$a" callgrind "$envs" "valgrind --tool=callgrind build-bench/$cmd" "no instruction total, a failed check or blocks hakmem does not own (logs: build-bench/callgrind/$w.$a.{out,err})" >>"$FAILS"
        say "   FAILED (callgrind run): ${envs}build-bench/$cmd"
      fi
      printf '%s\t%s\t%s\t%s\t%s\n' "$w" "$a" "${ir:-0}" "${ops:-0}" "$st" >>"$IRS"
    done
  done
fi
T_END=$(date +%s)

# ---------------------------------------------------------------- aggregate
AGG=$OUT/summary.tsv # workload alloc status n_ok n median min max rss_med_kb minflt_med owned_all extra_last
awk -F'\t' '
  function isort(arr, n,   i, j, t) { for (i = 2; i <= n; i++) { t = arr[i]; j = i - 1; while (j >= 1 && arr[j] > t) { arr[j + 1] = arr[j]; j-- } arr[j + 1] = t } }
  function median(arr, n) { isort(arr, n); if (n % 2) return arr[(n + 1) / 2]; return (arr[n / 2] + arr[n / 2 + 1]) / 2 }
  {
    key = $1 SUBSEP $2
    if (!(key in seen)) { seen[key] = 1; order[++nk] = key }
    total[key]++
    if ($4 != "ok") { failed[key]++; next }
    nok[key]++; vals[key, nok[key]] = $5 + 0; rss[key, nok[key]] = $6 + 0
    if ($8 ~ /minflt_per_op=/) { m = $8; sub(/.*minflt_per_op=/, "", m); sub(/,.*/, "", m); mf[key, nok[key]] = m + 0; hasmf[key] = 1 }
    extra[key] = $8; if ($7 != "-") owned[key] = owned[key] (owned[key] == "" ? "" : " ") $7
  }
  END {
    for (i = 1; i <= nk; i++) {
      key = order[i]; split(key, kk, SUBSEP)
      if (failed[key] > 0 || nok[key] == 0) { printf "%s\t%s\tFAILED\t%d\t%d\t-\t-\t-\t-\t-\t%s\t%s\n", kk[1], kk[2], nok[key], total[key], (owned[key] == "" ? "-" : owned[key]), extra[key]; continue }
      n = nok[key]; mn = 1e300; mx = 0
      for (j = 1; j <= n; j++) { v[j] = vals[key, j]; r[j] = rss[key, j]; if (v[j] < mn) mn = v[j]; if (v[j] > mx) mx = v[j]; if (hasmf[key]) f[j] = mf[key, j] }
      med = median(v, n); rm = median(r, n); fm = hasmf[key] ? sprintf("%.1f", median(f, n)) : "-"
      printf "%s\t%s\tok\t%d\t%d\t%.1f\t%.1f\t%.1f\t%.0f\t%s\t%s\t%s\n", kk[1], kk[2], n, total[key], med, mn, mx, rm, fm, (owned[key] == "" ? "-" : owned[key]), extra[key]
    }
  }' "$RES" >"$AGG"

# value lookups in the summary
sumfield() { awk -F'\t' -v w="$1" -v a="$2" -v c="$3" '$1 == w && $2 == a { print $c; exit }' "$AGG"; }
fmt_ops() { awk -v x="$1" 'BEGIN{ if (x == "" || x == "-") { print "–"; exit } if (x>=1e6) printf "%.2fM", x/1e6; else if (x>=1e3) printf "%.1fk", x/1e3; else printf "%.1f", x }'; }
fmt_mib() { awk -v x="$1" 'BEGIN{ if (x == "" || x == "-") { print "–"; exit } printf "%.1f", x/1024 }'; }
ratio() { awk -v x="$1" -v y="$2" 'BEGIN{ if (x == "" || y == "" || x == "-" || y == "-" || y + 0 == 0) { print "–"; exit } printf "%.2fx", x/y }'; }

# ---------------------------------------------------------------- hakmem verification verdict
HAK_VERDICT=
case " $ALLOCS " in
  *" hakmem "*)
    hruns=$(awk -F'\t' '$2 ~ /^hakmem/' "$RES" | wc -l)
    hbad=$(awk -F'\t' '$2 ~ /^hakmem/ && ($7 == "-" || $4 != "ok")' "$RES" | wc -l)
    hown=$(awk -F'\t' '$2 ~ /^hakmem/ && $7 != "-" { split($7, p, "/"); if (p[1] != p[2]) bad++ } END { print bad + 0 }' "$RES")
    if [ "$hruns" -gt 0 ] && [ "$hbad" -eq 0 ] && [ "$hown" -eq 0 ]; then
      HAK_VERDICT="hakmem served its runs: verified by hak_owns (every one of the $hruns hakmem runs found all of its sampled live and fresh blocks inside hakmem)."
    else
      HAK_VERDICT="**hakmem verification FAILED**: of $hruns hakmem runs, $hbad failed or could not be checked and $hown found blocks hakmem does not own (see Failures below)."
    fi ;;
  *) HAK_VERDICT="hakmem was not measured in this run (${HAKMEM_LIB#$ROOT/} missing or not selected)." ;;
esac

# ---------------------------------------------------------------- report
mkdir -p "$DOCS"
TABLE=$DOCS/bench_table.md
REPORT=$DOCS/BENCHMARKS.md
cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -n 1)
ncpu=$(nproc 2>/dev/null)
mem=$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo 2>/dev/null)
kern=$(uname -sr)
os=$(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")
commit=$(git rev-parse --short HEAD 2>/dev/null || echo "no-commit")
[ -n "$(git status --porcelain 2>/dev/null)" ] && commit="$commit-dirty"
when=$(date -u '+%Y-%m-%d %H:%M UTC')
ccver=$($CC --version 2>/dev/null | head -n 1)
pkgver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo "?"; }
hakver=$(sed -n 's/^#define HAK_VERSION "\(.*\)"/\1/p' include/hakmem.h 2>/dev/null)
allocver() {
  case $1 in
    glibc) echo "glibc $(pkgver libc6) (no preload)" ;;
    hakmem) echo "hakmem ${hakver:-?} at $commit (${HAKMEM_LIB#$ROOT/})" ;;
    mimalloc) echo "mimalloc $(pkgver libmimalloc2.0) ($(peer_path mimalloc))" ;;
    jemalloc) echo "jemalloc $(pkgver libjemalloc2) ($(peer_path jemalloc))" ;;
    tcmalloc) echo "tcmalloc (gperftools) $(pkgver libtcmalloc-minimal4) ($(peer_path tcmalloc))" ;;
  esac
}

# summary table (also the README block)
{
  echo "Median ops/s over $RUNS run(s) ($MODE mode) and, in brackets, the ratio to $REF (higher is better)."
  echo "Machine: ${cpu:-?}, $ncpu CPUs; commit $commit; $when. Full report: [docs/BENCHMARKS.md](docs/BENCHMARKS.md)."
  echo
  printf '| workload |'; for a in $ALLOCS; do printf ' %s |' "$a"; done; echo
  printf '|---|'; for a in $ALLOCS; do printf -- '---:|'; done; echo
  for w in $WORKLOADS; do
    printf '| %s |' "$w"
    refm=$(sumfield "$w" "$REF" 6)
    for a in $ALLOCS; do
      s=$(sumfield "$w" "$a" 3)
      if [ "$s" = ok ]; then m=$(sumfield "$w" "$a" 6); printf ' %s (%s) |' "$(fmt_ops "$m")" "$(ratio "$m" "$refm")"
      elif [ "$s" = FAILED ]; then printf ' **FAILED** |'
      else printf ' – |'; fi
    done
    echo
  done
  echo
  echo "Peak RSS in MiB (median of the runs' peaks; lower is better):"
  echo
  printf '| workload |'; for a in $ALLOCS; do printf ' %s |' "$a"; done; echo
  printf '|---|'; for a in $ALLOCS; do printf -- '---:|'; done; echo
  for w in $WORKLOADS; do
    printf '| %s |' "$w"
    for a in $ALLOCS; do
      s=$(sumfield "$w" "$a" 3)
      if [ "$s" = ok ]; then printf ' %s |' "$(fmt_mib "$(sumfield "$w" "$a" 9)")"
      elif [ "$s" = FAILED ]; then printf ' **FAILED** |'
      else printf ' – |'; fi
    done
    echo
  done
  fs=$(sumfield random_mixed_floor floor 3)
  if [ "$fs" = ok ]; then
    echo
    echo "Loop-only floor (random_mixed on a trivial free-list allocator inside the benchmark): $(fmt_ops "$(sumfield random_mixed_floor floor 6)") ops/s."
  fi
  echo
  echo "$HAK_VERDICT"
} >"$TABLE"

{
  echo "# hakmem benchmarks"
  echo
  echo "Generated by \`scripts/bench.sh\` ($MODE mode: \`make bench\` runs the full comparison, \`make bench-quick\` a two-minute pass). Do not edit by hand: every number below comes from the harness."
  echo
  echo "## Setup"
  echo
  echo "- date: $when; commit: \`$commit\`; wall time of this run: $((T_END - T_START)) s"
  echo "- machine: ${cpu:-?}, $ncpu CPUs, $mem RAM; ${os:-?}; kernel $kern"
  echo "- compiler for the benchmarks: $ccver, \`$CFLAGS_BENCH\`"
  echo "- allocators (through \`LD_PRELOAD\`; one benchmark binary serves all):"
  for a in $ALLOCS; do echo "  - $(allocver "$a")"; done
  for m in "${MISSING_NOTES[@]+"${MISSING_NOTES[@]}"}"; do echo "  - **not measured**: $m"; done
  echo "- method: every workload runs $RUNS time(s) per allocator, interleaved: each round runs ${ROUND[*]} once, in an order shuffled anew every round (\`BENCH_SEED=$SEED\`), so that the machine's drift hits all alike and no allocator always runs first or after the same neighbour; the table gives the median, min and max ops/s, the ratio of the medians to $REF, and the median of the runs' peak RSS (\`ru_maxrss\` of the benchmark process, from \`build-bench/runwrap\`). Each benchmark checks the contents of every block it frees and a checksum at the end; a run that fails its check, crashes or times out (${TIMEOUT}s) shows as **FAILED**."
  echo "- syscalls: one separate, shorter run per workload and allocator under \`strace -f -c\` (hakmem's with \`HAKMEM_STATS=1\`)."
  [ -s "$IRS" ] && echo "- instructions: one run per allocator of the workloads that do not depend on timing, at the strace run's size, under \`valgrind --tool=callgrind\`: the process's total instruction count, which this machine's noise does not move."
  echo "- $HAK_VERDICT"
  echo
  echo "## Summary"
  echo
  sed 's/ Full report: .*$//' "$TABLE"
  echo
  if [ "$HAVE_GNUPLOT" = 1 ]; then
    echo "![ops/s relative to $REF and peak RSS per workload](bench.png)"
    echo
  fi
  if [[ " ${ROUND[*]} " == *" hakmem_aa "* ]]; then
    echo "## Noise: hakmem against itself (A/A)"
    echo
    echo "Every round also runs hakmem a second time (\"hakmem again\"), at its own place in the round's shuffled order: the same library, the same command, in the same run. The gap between the two medians is what this machine's noise does on its own; a difference between allocators smaller than the largest gap here is not established by this run. The instruction counts below do not have this noise."
    echo
    echo "| workload | hakmem | hakmem again | ratio | hakmem min–max | again min–max |"
    echo "|---|---:|---:|---:|---:|---:|"
    worst=0; worst_w=
    for w in $WORKLOADS; do
      [ "$(sumfield "$w" hakmem 3)" = ok ] && [ "$(sumfield "$w" hakmem_aa 3)" = ok ] || continue
      m1=$(sumfield "$w" hakmem 6); m2=$(sumfield "$w" hakmem_aa 6)
      echo "| $w | $(fmt_ops "$m1") | $(fmt_ops "$m2") | $(ratio "$m2" "$m1") | $(fmt_ops "$(sumfield "$w" hakmem 7)")–$(fmt_ops "$(sumfield "$w" hakmem 8)") | $(fmt_ops "$(sumfield "$w" hakmem_aa 7)")–$(fmt_ops "$(sumfield "$w" hakmem_aa 8)") |"
      gap=$(awk -v a="$m1" -v b="$m2" 'BEGIN { r = a > b ? a / b : b / a; printf "%.0f", (r - 1) * 100 }')
      if [ "$gap" -gt "$worst" ]; then worst=$gap; worst_w=$w; fi
    done
    echo
    [ -n "$worst_w" ] && echo "Largest A/A gap in this run: ${worst} % (${worst_w})." && echo
  fi
  if [ -s "$IRS" ]; then
    echo "## Instructions (callgrind)"
    echo
    echo "Instructions per operation of one run (the whole process: the benchmark's loop and checks, the allocator and start-up, divided by the run's operations), the run's total, and in brackets the ratio to $REF per operation (lower is better). larson runs for a fixed time, so its operation count differs between allocators; the other workloads do the same work with every allocator."
    echo
    hdr="| workload | command |"; sep="|---|---|"
    for a in $ALLOCS; do hdr="$hdr $a |"; sep="$sep---:|"; done
    echo "$hdr"; echo "$sep"
    for w in $CG_WORKLOADS; do
      grep -q "^$w	" "$IRS" || continue
      refir=$(awk -F'\t' -v w="$w" -v a="$REF" '$1 == w && $2 == a && $5 == "ok" && $4 > 0 { print $3 / $4 }' "$IRS")
      row="| $w | \`$(wl_cmd "$w" trace)\` |"
      for a in $ALLOCS; do
        row="$row $(awk -F'\t' -v w="$w" -v a="$a" -v r="$refir" '$1 == w && $2 == a { if ($5 != "ok" || $4 + 0 == 0) { printf "**FAILED**"; exit } printf "%.1f, %.2fM", $3 / $4, $3 / 1e6; if (r + 0 > 0) printf " (%.2fx)", $3 / $4 / r }' "$IRS") |"
      done
      echo "$row"
    done
    fl=$(awk -F'\t' '$1 == "random_mixed" && $2 == "floor" && $5 == "ok" { print $3 " " $4 }' "$IRS")
    if [ -n "$fl" ]; then
      echo
      echo "random_mixed on the in-binary floor allocator: $(echo "$fl" | awk '{ printf "%.2fM", $1 / 1e6 }') instructions. What each allocator adds per operation (total minus the floor's, divided by the operations):"
      echo
      hdr="|"; sep="|"
      for a in $ALLOCS; do hdr="$hdr $a |"; sep="$sep---:|"; done
      echo "$hdr"; echo "$sep"
      row="|"
      for a in $ALLOCS; do
        row="$row $(awk -F'\t' -v a="$a" -v fl="$fl" '$1 == "random_mixed" && $2 == a { split(fl, f, " "); if ($5 != "ok" || f[2] + 0 == 0) { printf "–"; exit } printf "%.1f", ($3 - f[1]) / f[2] }' "$IRS") |"
      done
      echo "$row"
    fi
    echo
  fi
  echo "## Workloads"
  for w in $WORKLOADS; do
    echo
    echo "### $w"
    echo
    echo "$(wl_desc "$w"). Command: \`$(wl_cmd "$w" "$MODE")\`; ops = $(wl_ops_meaning "$w")."
    echo
    isbig=0; [ "$w" = big_churn ] && isbig=1
    isrm=0; [ "$w" = random_mixed ] && [ "$(sumfield random_mixed_floor floor 3)" = ok ] && isrm=1
    hdr="| allocator | median ops/s | min | max | vs $REF | peak RSS MiB |"; sep="|---|---:|---:|---:|---:|---:|"
    [ $isbig = 1 ] && { hdr="$hdr minor faults/op |"; sep="$sep---:|"; }
    [ $isrm = 1 ] && { hdr="$hdr ns/op above floor | allocator share of run |"; sep="$sep---:|---:|"; }
    hdr="$hdr runs ok | details of the last run |"; sep="$sep---:|---|"
    echo "$hdr"; echo "$sep"
    refm=$(sumfield "$w" "$REF" 6)
    floorm=$(sumfield random_mixed_floor floor 6)
    for a in $ALLOCS; do
      s=$(sumfield "$w" "$a" 3)
      [ -n "$s" ] || continue
      if [ "$s" = ok ]; then
        m=$(sumfield "$w" "$a" 6)
        row="| $a | $(fmt_ops "$m") | $(fmt_ops "$(sumfield "$w" "$a" 7)") | $(fmt_ops "$(sumfield "$w" "$a" 8)") | $(ratio "$m" "$refm") | $(fmt_mib "$(sumfield "$w" "$a" 9)") |"
        [ $isbig = 1 ] && row="$row $(sumfield "$w" "$a" 10) |"
        [ $isrm = 1 ] && row="$row $(awk -v a="$m" -v f="$floorm" 'BEGIN{ printf "%.1f | %.0f%%", 1e9/a - 1e9/f, 100 * (1 - a/f) }') |"
      else
        row="| $a | **FAILED** | | | | |"
        [ $isbig = 1 ] && row="$row |"
        [ $isrm = 1 ] && row="$row | |"
      fi
      row="$row $(sumfield "$w" "$a" 4)/$(sumfield "$w" "$a" 5) | $(sumfield "$w" "$a" 12 | tr ',' ' ')"
      own=$(sumfield "$w" "$a" 11); [ "$a" = hakmem ] && [ "$own" != - ] && row="$row; hak_owns: $(echo "$own" | awk '{print $NF}')"
      echo "$row |"
    done
    if [ $isrm = 1 ]; then
      echo "| *floor* (in-binary free lists) | $(fmt_ops "$floorm") | $(fmt_ops "$(sumfield random_mixed_floor floor 7)") | $(fmt_ops "$(sumfield random_mixed_floor floor 8)") | $(ratio "$floorm" "$refm") | $(fmt_mib "$(sumfield random_mixed_floor floor 9)") | 0 | 0% | $(sumfield random_mixed_floor floor 4)/$(sumfield random_mixed_floor floor 5) | \`$(wl_cmd random_mixed_floor "$MODE")\`, no preload |"
      echo
      echo "The floor is the same loop (random numbers, tagging and checking every block) driving a trivial per-class free-list allocator compiled into the benchmark: \"ns/op above floor\" is what each allocator adds per operation, \"allocator share\" the part of the run spent beyond the loop itself."
    fi
    if [ -s "$SYS" ] && grep -q "^$w	" "$SYS"; then
      echo
      echo "Syscalls of one run of \`$(wl_cmd "$w" trace)\` under \`strace -f -c\`:"
      echo
      echo "| allocator | mmap | munmap | madvise | futex | all syscalls |"
      echo "|---|---:|---:|---:|---:|---:|"
      awk -F'\t' -v w="$w" '$1 == w { printf "| %s | %d | %d | %d | %d | %d%s |\n", $2, $3, $4, $5, $6, $7, ($8 == "ok" ? "" : " (run FAILED)") }' "$SYS"
    fi
    if grep -q "^$w	" "$STATS"; then
      echo
      echo "hakmem's \`HAKMEM_STATS=1\` report for that run:"
      echo
      echo '```'
      awk -F'\t' -v w="$w" '$1 == w { print $2 }' "$STATS"
      echo '```'
    fi
  done
  echo
  echo "## Failures"
  echo
  if [ -s "$FAILS" ]; then
    echo "| workload | allocator | run | command | symptom |"
    echo "|---|---|---|---|---|"
    awk -F'\t' '{ gsub(/\|/, "\\|"); printf "| %s | %s | %s | `%s` | %s |\n", $1, $2, $3, $4, $5 }' "$FAILS"
  else
    echo "None: every run of every allocator passed its own content and checksum checks."
  fi
  echo
  echo "## Reproduce"
  echo
  echo '```sh'
  echo "make bench                      # full comparison, 7 runs per allocator and workload"
  echo "make bench-quick                # ~2 min"
  echo "./scripts/bench.sh --workloads random_mixed,larson --allocators hakmem,mimalloc --runs 9"
  echo '```'
  echo
  echo "Raw per-run results: \`build-bench/results.tsv\`; failing runs keep their output in \`build-bench/logs/\`."
} >"$REPORT"
say "wrote ${REPORT#$ROOT/} and ${TABLE#$ROOT/}"

# ---------------------------------------------------------------- chart
if [ "$HAVE_GNUPLOT" = 1 ]; then
  {
    printf 'workload'; for a in $ALLOCS; do printf ' %s' "$a"; done; echo
    for w in $WORKLOADS; do
      printf '%s' "$w"
      refm=$(sumfield "$w" "$REF" 6)
      for a in $ALLOCS; do
        if [ "$(sumfield "$w" "$a" 3)" = ok ] && [ -n "$refm" ] && [ "$refm" != - ]; then
          awk -v x="$(sumfield "$w" "$a" 6)" -v y="$refm" 'BEGIN{ printf " %.4f", x/y }'
        else printf ' ?'; fi
      done
      echo
    done
  } >"$OUT/plot_ratio.dat"
  {
    printf 'workload'; for a in $ALLOCS; do printf ' %s' "$a"; done; echo
    for w in $WORKLOADS; do
      printf '%s' "$w"
      for a in $ALLOCS; do
        if [ "$(sumfield "$w" "$a" 3)" = ok ]; then awk -v x="$(sumfield "$w" "$a" 9)" 'BEGIN{ printf " %.2f", x/1024 }'
        else printf ' ?'; fi
      done
      echo
    done
  } >"$OUT/plot_rss.dat"
  ncol=$(($(echo "$ALLOCS" | wc -w) + 1))
  if gnuplot -e "ratiofile='$OUT/plot_ratio.dat'; rssfile='$OUT/plot_rss.dat'; outfile='$DOCS/bench.png'; ncols=$ncol; nrows=$(echo "$WORKLOADS" | wc -w); cols='$ALLOCS'; ref='$REF'; ttl='hakmem vs peers — $MODE run, $RUNS run(s) each, commit $commit, ${cpu:-?} x$ncpu'" \
       scripts/bench_plot.gp 2>"$OUT/logs/gnuplot.log"; then
    say "wrote docs/bench.png"
  else
    say "WARNING: gnuplot failed (see build-bench/logs/gnuplot.log)"
  fi
fi

# ---------------------------------------------------------------- README block
if [ -f README.md ] && grep -q '<!-- BENCH:BEGIN -->' README.md && grep -q '<!-- BENCH:END -->' README.md; then
  upd=0
  case $README_MODE in yes) upd=1 ;; no) upd=0 ;; auto) [ $QUICK = 0 ] && upd=1 ;; esac
  if [ $upd = 1 ]; then
    awk -v tf="$TABLE" -v img="$HAVE_GNUPLOT" '
      /<!-- BENCH:BEGIN -->/ { print; print ""; if (img == 1) { print "![benchmark chart](docs/bench.png)"; print "" }
                               while ((getline l < tf) > 0) print l; print ""; skip = 1; next }
      /<!-- BENCH:END -->/ { skip = 0 }
      !skip { print }' README.md >"$OUT/README.new" && mv "$OUT/README.new" README.md
    say "updated the benchmark block of README.md"
  else
    say "README.md left alone (quick run; pass --readme to update it)"
  fi
fi

# ---------------------------------------------------------------- verdict
cat "$TABLE" >&2
nfail=$(wc -l <"$FAILS")
if [ "$nfail" -gt 0 ]; then
  say "FAILED: $nfail run(s) failed — see the Failures section of docs/BENCHMARKS.md"
  exit 1
fi
say "all runs passed their checks ($((T_END - T_START)) s)"
exit 0
