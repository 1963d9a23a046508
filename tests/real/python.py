#!/usr/bin/env python3
"""real.python: python under hakmem, output compared with the run without.

inputs/heavy.py (dicts, strings, sorting, sets, tuples, growing buffers;
prints a digest of everything) with PYTHONMALLOC=malloc, so that every object
goes through malloc and not pymalloc, and inputs/json_dict.py with Python's
own allocator (pymalloc over malloc's arenas).

    tests/real/python.py LIB.so [WORKDIR]
"""
import sys

sys.dont_write_bytecode = True
import realtest


def test(t):
    py = realtest.python_bin()
    t.run_pair("python", ["env", "PYTHONMALLOC=malloc", "PYTHONHASHSEED=0", py, t.input("heavy.py")])
    t.run_pair("python-default", ["env", "PYTHONHASHSEED=0", py, t.input("json_dict.py")])


realtest.main(test)
