#!/usr/bin/env python3
"""real.redis: a server under hakmem (inputs/redis.sh): IO threads, every
data type (inputs/redis_load.awk), a fork (BGSAVE) under load, and a restart
that loads the saved file; the dataset's digest must match the run without
hakmem at each step.

    tests/real/redis.py LIB.so [WORKDIR]
"""
import re
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


realtest.main(test)
