#!/usr/bin/env python3
"""real.sort: sort under hakmem on ~50 MB of lines (inputs/sort_input.awk),
in memory and then by numeric keys with a small buffer (temporary files and
merging); the same output as without.

    tests/real/sort.py LIB.so [WORKDIR]
"""
import os
import subprocess
import sys

sys.dont_write_bytecode = True
import realtest
from realtest import fail


def test(t):
    t.need("sort", "awk")
    data = os.path.join(t.work, "input.txt")
    if not os.path.isfile(data) or os.path.getsize(data) == 0:
        with open(data + ".tmp", "wb") as f:
            if subprocess.run(["awk", "-f", t.input("sort_input.awk")], stdout=f).returncode != 0:
                fail("awk could not write the input")
        os.replace(data + ".tmp", data)
    with open(data, "rb") as f:
        lines = sum(1 for _ in f)
    print("sort: input %d bytes, %d lines" % (os.path.getsize(data), lines))
    t.run_pair("sort", ["sort", data])
    # numeric key sort with a small buffer: temporary files and merging
    t.run_pair("sort-keys", ["sort", "-t,", "-k3,3nr", "-k2,2", "-S", "8M", "-T", ".", data])


realtest.main(test)
