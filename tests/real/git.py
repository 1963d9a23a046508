#!/usr/bin/env python3
"""real.git: git under hakmem (inputs/git.sh: init, ~400 files, commits,
rename, remove, a branch and a merge, log/diff/grep/blame, gc --aggressive,
fsck, archive), output compared with the run without.

    tests/real/git.py LIB.so [WORKDIR]
"""
import sys

sys.dont_write_bytecode = True
import realtest


def test(t):
    t.need("git")
    t.run_pair("git", ["sh", t.input("git.sh")])


realtest.main(test)
