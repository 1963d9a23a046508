#!/usr/bin/env python3
"""real.cc: the compilers under hakmem (cc1 and cc1plus: obstacks, GC'd
trees, many small nodes), gcc compiling hakmem's own sources and g++ its C++
test to assembly on stdout (inputs/cc.sh); the same assembly as without.

    tests/real/cc.py LIB.so [WORKDIR]
"""
import sys

sys.dont_write_bytecode = True
import realtest


def test(t):
    t.need("gcc", "g++")
    t.run_pair("cc", ["sh", t.input("cc.sh"), realtest.ROOT])


realtest.main(test)
