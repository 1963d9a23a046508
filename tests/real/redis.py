#!/usr/bin/env python3
"""real.redis: a server under hakmem (inputs/redis.sh): IO threads, every
data type (inputs/redis_load.awk), a fork (BGSAVE) under load, and a restart
that loads the saved file; the dataset's digest must match the run without
hakmem at each step. Then (inputs/redis_jemalloc.sh) Redis's calls into
jemalloc's API must reach hakmem: INFO memory's allocator figures are
hakmem's and follow the data, MEMORY MALLOC-STATS prints hakmem's report,
and jemalloc starts no background thread of its own.

    tests/real/redis.py LIB.so [WORKDIR]
"""
import os
import re
import shutil
import subprocess
import sys

sys.dont_write_bytecode = True
import realtest
from realtest import fail


def test(t):
    t.need("redis-server", "redis-cli", "redis-benchmark")
    v = subprocess.run(["redis-server", "--version"], stdout=subprocess.PIPE).stdout.decode("utf-8", "replace")
    m = re.search(r"v=([0-9]+)", v)
    if not m or int(m.group(1)) < 7:
        fail("redis-server %s.x: version 7 or later is needed (--enable-debug-command)" % (m.group(1) if m else "?"))
    t.run_pair("redis", ["sh", t.input("redis.sh")])
    jemalloc_api(t)


def jemalloc_api(t):
    out, err = os.path.join(t.work, "hak.jemalloc.out"), os.path.join(t.work, "hak.jemalloc.err")
    d = os.path.join(t.work, "hak.jemalloc")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    rc = t.run(["sh", t.input("redis_jemalloc.sh")], out, err, cwd=d, hakmem=True)
    text = open(out, encoding="utf-8", errors="replace").read()
    if rc != 0:
        fail("redis_jemalloc.sh: exit %d: %s" % (rc, open(err, errors="replace").read()[:300]))
    threads = re.findall(r"^thread: (.*)$", text, re.M)
    if not threads or "jemalloc_bg_thd" in threads:
        fail("redis under hakmem: threads %s (jemalloc's background thread must not start)" % threads)
    val = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+ \w+):(\d+)$", text, re.M)}
    used, alloc = val.get("loaded used_memory", 0), val.get("loaded allocator_allocated", 0)
    if not used or not alloc or not used / 2 <= alloc <= used * 2:
        fail("INFO memory after the load: used_memory %d, allocator_allocated %d (not hakmem's figures?)" % (used, alloc))
    flushed = val.get("flushed allocator_allocated", 0)
    if not flushed or flushed * 4 > alloc:
        fail("INFO memory after FLUSHALL: allocator_allocated %d of %d before" % (flushed, alloc))
    if not re.search(r"^malloc-stats: hakmem ", text, re.M):
        fail("MEMORY MALLOC-STATS did not print hakmem's report")
    print("redis jemalloc API: allocator_allocated %d (used_memory %d), %d after FLUSHALL, threads %s"
          % (alloc, used, flushed, ", ".join(threads)))


realtest.main(test)
