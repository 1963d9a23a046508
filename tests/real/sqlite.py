#!/usr/bin/env python3
"""real.sqlite: sqlite3 running inputs/sqlite.sql (200000 rows inserted,
indexed, grouped, joined, updated and deleted in a transaction, a WAL
checkpoint, VACUUM and an integrity check) on a new database file, under
hakmem and without; same output.

    tests/real/sqlite.py LIB.so [WORKDIR]
"""
import sys

sys.dont_write_bytecode = True
import realtest


def test(t):
    t.need("sqlite3")
    # through sh, as a user would type it: the shell runs under hakmem too
    t.run_pair("sqlite", ["sh", "-c", 'sqlite3 work.db < "$1"', "sh", t.input("sqlite.sql")])


realtest.main(test)
