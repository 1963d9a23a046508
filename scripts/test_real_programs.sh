#!/usr/bin/env bash
# test_real_programs.sh — real programs under LD_PRELOAD=libhakmem.so.
#
#   scripts/test_real_programs.sh LIB.so NAME [WORKDIR]
#
# NAME is one of: stats python pytests sqlite git cc redis sort, or
# pytests-full (the whole CPython suite, about 10 minutes; not in make test)
# Each runs the same workload twice, once plainly and once with hakmem
# preloaded (and HAKMEM_STATS=1), and requires the same exit status and the
# same output (sha256), plus proof that hakmem served the run: a
# 'hakmem-stats:' line on stderr with mallocs > 0. pytests runs CPython's own
# regression tests once, under hakmem, and requires every one to pass the
# first time (they check their own results; the run without hakmem, also with
# PYTHONMALLOC=malloc, is made only to explain a failure).
# Exit status 0 on success; on failure the last line printed is
# 'REASON: ...' (scripts/run_tests.sh shows it).
set -u
LIB=${1:?usage: test_real_programs.sh LIB.so NAME [WORKDIR]}
NAME=${2:?usage: test_real_programs.sh LIB.so NAME [WORKDIR]}
WORK=${3:-$(mktemp -d /tmp/hakmem-real.XXXXXX)}
case "$LIB" in /*) ;; *) LIB="$(pwd)/$LIB" ;; esac
mkdir -p "$WORK"
export LC_ALL=C TZ=UTC
unset HAKMEM_STATS HAKMEM_ON_ERROR LD_PRELOAD

fail() {
  echo "REASON: $*"
  exit 1
}
need() { command -v "$1" >/dev/null 2>&1 || fail "$1 is not installed"; }
[ -f "$LIB" ] || fail "$LIB not found (run make first)"

# run_pair TAG CMD... : runs CMD in $WORK/plain.TAG and $WORK/hak.TAG (as
# cwd), stdout to out, stderr to err; compares.
run_pair() {
  local tag=$1
  shift
  local d0="$WORK/plain.$tag" d1="$WORK/hak.$tag"
  rm -rf "$d0" "$d1"
  mkdir -p "$d0" "$d1"
  (cd "$d0" && "$@" >"$d0.out" 2>"$d0.err")
  local rc0=$?
  (cd "$d1" && HAKMEM_STATS=1 LD_PRELOAD="$LIB" "$@" >"$d1.out" 2>"$d1.err")
  local rc1=$?
  local h0 h1
  h0=$(sha256sum <"$d0.out" | cut -c1-16)
  h1=$(sha256sum <"$d1.out" | cut -c1-16)
  echo "$tag: without hakmem: exit $rc0, output $(wc -c <"$d0.out") bytes sha256 $h0"
  echo "$tag: with hakmem:    exit $rc1, output $(wc -c <"$d1.out") bytes sha256 $h1"
  if [ "$rc1" -ge 128 ] || grep -q '^hakmem: ' "$d1.err"; then
    echo "--- stderr with hakmem (first 20 lines) ---"
    grep -v '^hakmem-stats' "$d1.err" | head -20
  fi
  [ "$rc0" = 0 ] || fail "$tag: the run without hakmem failed (exit $rc0): $(head -c 300 "$d0.err")"
  [ "$rc1" = "$rc0" ] || fail "$tag: exit status $rc1 with hakmem, $rc0 without; stderr: $(grep -v '^hakmem-stats' "$d1.err" | head -c 300)"
  if [ "$h0" != "$h1" ]; then
    diff "$d0.out" "$d1.out" | head -10
    fail "$tag: output differs with hakmem"
  fi
  local n
  n=$(grep -o '^hakmem-stats:.*' "$d1.err" | grep -o 'mallocs=[0-9]*' | cut -d= -f2 | sort -n | tail -1)
  [ -n "$n" ] || fail "$tag: no 'hakmem-stats:' line with mallocs= on stderr with HAKMEM_STATS=1 (hakmem not loaded, or its exit report lost, e.g. because the program closed stderr before exiting)"
  [ "$n" -gt 0 ] || fail "$tag: hakmem-stats reports mallocs=0: the program's allocations did not reach hakmem"
  echo "$tag: hakmem served it (largest mallocs=$n, $(grep -c '^hakmem-stats:' "$d1.err") stats report(s))"
}

python_bin() {
  if [ -x /usr/bin/python3 ]; then echo /usr/bin/python3; else command -v python3; fi
}

case "$NAME" in
stats)
  # the HAKMEM_STATS=1 exit report and its format (python exits through
  # exit() with stderr open; dash uses _exit and coreutils close stderr)
  PY=$(python_bin)
  [ -n "$PY" ] || fail "python3 is not installed"
  out=$(HAKMEM_STATS=1 PYTHONMALLOC=malloc LD_PRELOAD="$LIB" "$PY" -c 'print(len([str(i) for i in range(100000)]))' 2>"$WORK/stats.err")
  rc=$?
  head -40 "$WORK/stats.err"
  [ "$rc" = 0 ] || fail "python under hakmem exited $rc"
  [ "$out" = 100000 ] || fail "unexpected output '$out'"
  line=$(grep '^hakmem-stats:' "$WORK/stats.err" | head -1)
  [ -n "$line" ] || fail "no line starting with 'hakmem-stats:' on stderr with HAKMEM_STATS=1"
  [ "$(grep -c '^hakmem-stats:' "$WORK/stats.err")" = 1 ] || fail "more than one 'hakmem-stats:' line"
  for k in mallocs frees; do
    echo "$line" | grep -Eq "(^hakmem-stats:| )$k=[0-9]+( |$)" || fail "'hakmem-stats:' line lacks $k=N: $line"
  done
  bad=$(echo "${line#hakmem-stats:}" | tr ' ' '\n' | grep -v '^$' | grep -Ev '^[][A-Za-z0-9_.:/-]+=[^ ]*$' | head -3)
  [ -z "$bad" ] || fail "'hakmem-stats:' line has items that are not key=value: $bad"
  m=$(echo "$line" | grep -Eo '(^hakmem-stats:| )mallocs=[0-9]+' | grep -Eo '[0-9]+$')
  [ "$m" -ge 100000 ] || fail "mallocs=$m for a program that made at least 100000 allocations"
  # without HAKMEM_STATS there is no report
  LD_PRELOAD="$LIB" "$PY" -c 'print(1)' >/dev/null 2>"$WORK/nostats.err"
  if grep -q '^hakmem-stats:' "$WORK/nostats.err"; then fail "a stats report was printed without HAKMEM_STATS=1"; fi
  echo "stats: ok: $line" | cut -c1-300
  ;;

python)
  PY=$(python_bin)
  [ -n "$PY" ] || fail "python3 is not installed"
  cat >"$WORK/heavy.py" <<'EOF'
import hashlib, json, random, sys
r = random.Random(20251125)
h = hashlib.sha256()
# dicts of lists and strings, with deletions
d = {}
for i in range(60000):
    d["k%d_%s" % (i, "x" * (i % 40))] = [i, str(i * 7), {"a": i % 13, "b": list(range(i % 9))}]
for i in range(0, 60000, 3):
    del d["k%d_%s" % (i, "x" * (i % 40))]
h.update(json.dumps(d, sort_keys=True).encode())
# string building, splitting, sorting
parts = [("%08x" % r.getrandbits(32)) * (1 + i % 5) for i in range(60000)]
s = "|".join(parts)
h.update(s.encode())
words = s.split("|")
words.sort()
h.update("".join(words[::1000]).encode())
# many short-lived objects: sets, tuples, nested lists
acc = 0
for rnd in range(6):
    st = set()
    lst = []
    for i in range(20000):
        t = (rnd, i, str(i) * (i % 7))
        st.add(t)
        lst.append([t, {i: t}])
    acc += len(st) + sum(len(x[0][2]) for x in lst)
h.update(str(acc).encode())
# growing buffers
ba = bytearray()
for i in range(100000):
    ba += bytes([i % 256]) * (i % 50)
h.update(hashlib.sha256(ba).digest())
print(len(d), len(words), acc, len(ba))
print(h.hexdigest())
EOF
  # PYTHONMALLOC=malloc: every object goes through malloc, not pymalloc
  run_pair python env PYTHONMALLOC=malloc PYTHONHASHSEED=0 "$PY" "$WORK/heavy.py" || exit 1
  run_pair python-default env PYTHONHASHSEED=0 "$PY" -c 'import json; d={str(i): [i]*(i%20) for i in range(100000)}; print(len(json.dumps(d)))' || exit 1
  ;;

pytests | pytests-full)
  # CPython's regression tests for the object model, containers, text,
  # pickling, gc and weak references, threads, ctypes, mmap, os,
  # faulthandler (crashes chained through the handlers already installed) and
  # multiprocessing with fork (children forked while threads allocate), with
  # PYTHONMALLOC=malloc so that every object is a malloc call, from hundreds
  # of threads, many freeing each other's objects. Only the main process
  # prints hakmem's report (some tests compare child processes' stderr).
  PY=$(python_bin)
  [ -n "$PY" ] || fail "python3 is not installed"
  "$PY" -c 'import test.test_dict' 2>/dev/null ||
    fail "CPython's test package is missing (Debian: libpython3.X-testsuite; scripts/install_test_deps.sh installs it)"
  if [ "$NAME" = pytests ]; then
    PYT="test_dict test_set test_list test_tuple test_unicode test_bytes test_json test_re
         test_threading test_thread test_gc test_weakref test_deque test_heapq test_sort test_array
         test_struct test_pickle test_itertools test_collections test_functools test_decimal test_long
         test_mmap test_hashlib test_zlib test_ctypes test_os test_faulthandler test_multiprocessing_fork"
    MIN_MALLOCS=10000000
  else
    # every module, in two worker processes (which inherit LD_PRELOAD; the
    # runner's own report then counts only its own objects). Left out: modules
    # that need the network or a display, test_socket (hangs in vsock_accept
    # in sandboxes), and those that fail without hakmem too on Debian
    # (test_cmd_line, test_compileall, test_cppext, test_ensurepip).
    PYT="-j2 --timeout 900 -x test_socket test_ssl test_urllib2net test_urllibnet test_nntplib
         test_ftplib test_imaplib test_poplib test_smtpnet test_socketserver test_httplib
         test_docxmlrpc test_xmlrpc test_tix test_tk test_ttk_guionly test_idle test_venv
         test_peg_generator test_tools test_distutils test_lib2to3 test_gdb test_largefile
         test_zipfile64 test_cmd_line test_compileall test_cppext test_ensurepip"
    MIN_MALLOCS=1
  fi
  # listed WHAT FILE: the test names regrtest lists, indented, under its
  # first "N test(s) WHAT:" line
  listed() {
    awk -v w="$1" '$0 ~ ("^[0-9]+ tests? " w ":$") && !done { on = 1; next }
      on && /^    / { for (i = 1; i <= NF; i++) printf "%s ", $i; next }
      on { on = 0; done = 1 }' "$2"
  }
  RUNPY='import os, sys, runpy
os.environ.pop("HAKMEM_STATS", None)
sys.argv[0] = "test"
runpy.run_module("test", run_name="__main__", alter_sys=True)'
  d1="$WORK/hak.$NAME"
  rm -rf "$d1" && mkdir -p "$d1"
  # -w: a test that fails is run once more, verbosely, for the log. A pass on
  # that second run ("FAILURE then SUCCESS", exit 0) still fails here: an
  # intermittent failure is what heap corruption from a race looks like.
  (cd "$d1" && HAKMEM_STATS=1 PYTHONMALLOC=malloc LD_PRELOAD="$LIB" "$PY" -c "$RUNPY" -w $PYT >"$d1.out" 2>"$d1.err")
  rc=$?
  grep -E '^(== )?Tests result|tests? OK|failed' "$d1.out" | head -8
  if [ "$rc" = 0 ] && grep -q 'Tests result: FAILURE then SUCCESS' "$d1.out"; then
    bad=$(listed 'failed' "$d1.out")
    fail "CPython's tests failed under hakmem and passed when rerun: ${bad:-see $d1.out} (a flaky test, or an intermittent fault: see $d1.out)"
  fi
  if [ "$rc" != 0 ]; then
    grep -v '^hakmem-stats' "$d1.err" | head -20
    bad=$(listed 'failed again' "$d1.out")
    [ -n "$bad" ] || bad=$(listed 'failed' "$d1.out")
    why=""
    if [ -n "$bad" ]; then
      (cd "$d1" && PYTHONMALLOC=malloc "$PY" -m test $bad >"$WORK/plain.$NAME.out" 2>&1)
      if [ $? = 0 ]; then why="; they pass without hakmem"; else why="; they fail without hakmem too (see $WORK/plain.$NAME.out)"; fi
    fi
    fail "CPython's tests failed under hakmem (exit $rc): ${bad:-see $d1.out}$why"
  fi
  line=$(grep -o '^hakmem-stats:.*' "$d1.err" | tail -1)
  [ -n "$line" ] || fail "no 'hakmem-stats:' line from the test runner's process"
  m=$(echo "$line" | grep -Eo ' mallocs=[0-9]+' | grep -Eo '[0-9]+$')
  [ "${m:-0}" -ge "$MIN_MALLOCS" ] || fail "mallocs=${m:-?}: hakmem did not serve the test runner's objects"
  echo "$line" | grep -q ' invalid_frees=0' || fail "invalid frees reported: $line"
  echo "$NAME: hakmem served it: $(echo "$line" | grep -Eo '(mallocs|remote_frees|invalid_frees)=[0-9]+' | tr '\n' ' ')"
  ;;

sqlite)
  need sqlite3
  cat >"$WORK/work.sql" <<'EOF'
PRAGMA cache_size = -65536;
PRAGMA journal_mode = WAL;
PRAGMA synchronous = OFF;
CREATE TABLE t(id INTEGER PRIMARY KEY, a INTEGER, b TEXT, c REAL, d BLOB);
WITH RECURSIVE cnt(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM cnt WHERE x < 200000)
INSERT INTO t SELECT x, (x * 2654435761) % 1000003,
  printf('name-%d-%s', x % 5003, substr('abcdefghijklmnopqrstuvwxyz', 1 + x % 26, 1 + x % 17)),
  (x % 1000) / 7.0, zeroblob(x % 200) FROM cnt;
CREATE INDEX ta ON t(a);
CREATE INDEX tb ON t(b, c);
SELECT count(*), sum(a), min(b), max(b), round(avg(c), 6), sum(length(d)) FROM t;
SELECT b, count(*), sum(a) FROM t GROUP BY b ORDER BY 2 DESC, 1 LIMIT 20;
SELECT count(*) FROM t WHERE a BETWEEN 1000 AND 200000;
SELECT t1.id, t2.id FROM t AS t1 JOIN t AS t2 ON t1.a = t2.a AND t1.id < t2.id ORDER BY 1, 2 LIMIT 10;
SELECT x.b, y.n FROM (SELECT DISTINCT b FROM t WHERE id < 2000) AS x
  JOIN (SELECT b, count(*) AS n FROM t GROUP BY b) AS y USING (b) ORDER BY y.n DESC, x.b LIMIT 10;
BEGIN;
UPDATE t SET b = b || '-updated-' || id WHERE id % 3 = 0;
DELETE FROM t WHERE id % 7 = 0;
COMMIT;
SELECT count(*), sum(length(b)), max(length(b)) FROM t;
SELECT length(group_concat(b, ',')) FROM (SELECT b FROM t ORDER BY a, id LIMIT 20000);
SELECT a % 100 AS k, count(*), min(id), max(id) FROM t GROUP BY k ORDER BY k LIMIT 5;
CREATE TABLE u AS SELECT id, upper(b) AS ub, a * 3 AS a3 FROM t WHERE id % 2 = 0;
SELECT count(*), sum(a3), min(ub) FROM u;
DROP TABLE u;
PRAGMA wal_checkpoint(TRUNCATE);
PRAGMA journal_mode = DELETE;
VACUUM;
PRAGMA integrity_check;
SELECT count(*) FROM t;
EOF
  run_pair sqlite sh -c "sqlite3 work.db < '$WORK/work.sql'" || exit 1
  ;;

git)
  need git
  cat >"$WORK/git.sh" <<'EOF'
set -e
export HOME="$PWD/home" GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export GIT_AUTHOR_NAME=Test GIT_AUTHOR_EMAIL=test@example.com GIT_COMMITTER_NAME=Test GIT_COMMITTER_EMAIL=test@example.com
export GIT_AUTHOR_DATE='2024-01-01T00:00:00 +0000' GIT_COMMITTER_DATE='2024-01-01T00:00:00 +0000'
mkdir -p home repo
cd repo
git init -q -b main .
# ~400 files in 20 directories, deterministic contents
awk 'BEGIN {
  for (d = 0; d < 20; d++) {
    system("mkdir -p dir" d);
    for (f = 0; f < 20; f++) {
      fn = "dir" d "/file" f ".txt";
      for (l = 0; l < 40 + (d * 7 + f) % 60; l++)
        printf "line %d of file %d in dir %d: %x %s\n", l, f, d, (l * 2654435761 + f * 40503 + d) % 4294967296, substr("the quick brown fox jumps over the lazy dog", 1 + l % 20) > fn;
      close(fn);
    }
  }
}'
git add -A
git commit -q -m "initial import"
for c in 1 2 3 4 5; do
  for d in 0 3 7 11 19; do
    f="dir$d/file$((c * 3 % 20)).txt"
    sed -i "s/line $c /line $c changed in commit $c /" "$f"
    echo "appended by commit $c" >> "dir$d/file$c.txt"
  done
  mkdir -p "new$c" && seq 1 $((c * 200)) > "new$c/numbers.txt"
  git add -A
  git commit -q -m "commit $c: edit and add files"
done
git mv dir0 renamed0
git rm -q -r dir19
git commit -q -m "rename and remove"
git branch side HEAD~2
git checkout -q side
echo "side change" > side.txt
git add side.txt
git commit -q -m "side branch"
git checkout -q main
git merge -q --no-edit side
git log --stat --format='%H %an %s' 
git rev-parse HEAD HEAD~1 HEAD~3
git diff --stat HEAD~4 HEAD
git grep -c 'quick' | tail -5
git gc -q --aggressive
git fsck --full --no-progress
git count-objects -v | grep -E '^(count|in-pack|packs|garbage)'
git log --oneline | wc -l
git show HEAD~2:new2/numbers.txt | tail -3
git archive --format=tar HEAD | sha256sum
git blame -s dir3/file3.txt | head -5
EOF
  run_pair git sh "$WORK/git.sh" || exit 1
  ;;

cc)
  # the compilers (cc1, cc1plus: obstacks, GC'd trees, many small nodes)
  # compiling hakmem's own sources and its C++ test to assembly on stdout
  need gcc
  need g++
  ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  cat >"$WORK/cc.sh" <<EOF
set -e
for f in "$ROOT"/src/*.c; do gcc -std=c11 -D_GNU_SOURCE -O2 -I"$ROOT/include" -I"$ROOT/src" -S -o - "\$f"; done
g++ -std=c++17 -O2 -I"$ROOT/include" -S -o - "$ROOT/tests/test_cxx.cpp"
EOF
  run_pair cc sh "$WORK/cc.sh" || exit 1
  ;;

redis)
  # a server: IO threads, every data type, a fork (BGSAVE) under load, and a
  # restart that loads the saved file; the dataset digest must match the run
  # without hakmem at each step
  need redis-server
  need redis-cli
  need redis-benchmark
  rv=$(redis-server --version | grep -o 'v=[0-9]*' | cut -d= -f2)
  [ "${rv:-0}" -ge 7 ] || fail "redis-server ${rv:-?}.x: version 7 or later is needed (--enable-debug-command)"
  cat >"$WORK/redis.sh" <<'EOF'
set -e
sock="$PWD/redis.sock"
start() {
  redis-server --port 0 --unixsocket "$sock" --dir "$PWD" --dbfilename dump.rdb --save '' \
    --appendonly no --io-threads 2 --io-threads-do-reads yes --enable-debug-command yes \
    --logfile "$PWD/server.log" &
  pid=$!
  # ready means PONG: while it loads the saved file it answers LOADING, exit 0
  for i in $(seq 300); do [ "$(redis-cli -s "$sock" ping 2>/dev/null)" = PONG ] && return; sleep 0.1; done
  echo "redis-server did not start" >&2
  exit 1
}
cli() { redis-cli -s "$sock" "$@"; }
trap 'kill $pid 2>/dev/null || true' EXIT
start
cli debug populate 100000 key 100
awk 'BEGIN { for (i = 0; i < 30000; i++) {
  printf "RPUSH list:%d %s\n", i % 300, substr("abcdefghijklmnopqrstuvwxyz0123456789", 1 + i % 30) i
  printf "HSET hash:%d f%d %s\n", i % 500, i, sprintf("%0" (1 + i % 200) "d", i)
  printf "SADD set:%d m%d\n", i % 200, i * 7 % 10007
  printf "ZADD zset:%d %d z%d\n", i % 100, i * 31 % 997, i
  printf "APPEND grow:%d %s\n", i % 50, sprintf("%0" (1 + i % 300) "d", i)
  if (i % 3 == 0) printf "DEL key:%d\n", i * 3
  if (i % 5 == 0) printf "LPOP list:%d\n", (i / 5) % 300
} }' | cli >/dev/null
redis-benchmark -s "$sock" -q -c 20 -n 20000 -t set,get,incr,lpush,rpush,lpop,rpop,sadd,hset,lrange_100,mset >/dev/null
cli dbsize
cli debug digest
cli bgsave >/dev/null
# more writes while the child saves: copy-on-write in both processes
redis-benchmark -s "$sock" -q -c 20 -n 20000 -t set,lpush,hset >/dev/null
for i in $(seq 600); do
  cli info persistence | grep -q '^rdb_bgsave_in_progress:0' && break
  sleep 0.1
done
cli info persistence | grep -o '^rdb_last_bgsave_status:[a-z]*'
cli debug digest
cli shutdown nosave >/dev/null 2>&1 || true
wait $pid || true
start
cli dbsize
cli debug digest
cli shutdown nosave >/dev/null 2>&1 || true
wait $pid || true
EOF
  run_pair redis sh "$WORK/redis.sh" || exit 1
  ;;

sort)
  need sort
  need awk
  # ~50 MB of lines, deterministic
  if [ ! -s "$WORK/input.txt" ]; then
    awk 'BEGIN { x = 12345; for (i = 0; i < 1200000; i++) {
      x = (x * 1103515245 + 12345) % 2147483648;
      printf "%010d,%s,%d,%s\n", x, substr("zyxwvutsrqponmlkjihgfedcba", 1 + x % 26), i, substr("ABCDEFGHIJ0123456789abcdefghij", 1 + x % 30) }}' >"$WORK/input.txt"
  fi
  echo "sort: input $(wc -c <"$WORK/input.txt") bytes, $(wc -l <"$WORK/input.txt") lines"
  run_pair sort sort "$WORK/input.txt" || exit 1
  # numeric key sort with a small buffer: temporary files and merging
  run_pair sort-keys sort -t, -k3,3nr -k2,2 -S 8M -T . "$WORK/input.txt" || exit 1
  ;;

*)
  fail "unknown program '$NAME' (stats python sqlite git sort)"
  ;;
esac
exit 0
