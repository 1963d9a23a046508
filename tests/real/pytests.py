#!/usr/bin/env python3
"""real.pytests: CPython's own regression tests under hakmem.

The modules of inputs/pytests.list (or, with --full, the whole suite but
inputs/pytests-full.exclude, in two worker processes, which inherit
LD_PRELOAD: about ten minutes, not in make test) run once, under hakmem, with
PYTHONMALLOC=malloc so that every object is a malloc call, from hundreds of
threads, many freeing each other's objects. With --guard, the list runs
with HAKMEM_GUARD_SAMPLE=100 (every hundredth allocation of up to 64 KiB on
guarded pages): it must pass the same way, and the runner's statistics must
show the sampled blocks (guarded=). They check their own results;
every one must pass the first time (regrtest's -w reruns a failure verbosely,
for the log only: an intermittent failure is what heap corruption from a
race looks like). The runner's own process must report invalid_frees=0 and,
for the list, more than 10M mallocs. A failure's message says whether the
failed modules also fail without hakmem (with PYTHONMALLOC=malloc as well).

    tests/real/pytests.py [--full | --guard] LIB.so [WORKDIR]
"""
import os
import re
import shutil
import subprocess
import sys

sys.dont_write_bytecode = True
import realtest
from realtest import fail

FULL = "--full" in sys.argv[1:]
GUARD = "--guard" in sys.argv[1:]
NAME = "pytests-full" if FULL else "pytests-guard" if GUARD else "pytests"
# With --guard: the sample rate, and the fewest guarded blocks that show the
# sampled path served the run. Far fewer than one in 100 of its 100M+ mallocs
# are guarded: a sample is skipped while all 256 slots are live, and CPython
# keeps many of its objects alive, so the count varies a lot between runs.
GUARD_SAMPLE, MIN_GUARDED = 100, 100


def names(path):
    """the words of a list file, without its # comments"""
    with open(path) as f:
        return [w for l in f for w in l.split("#", 1)[0].split()]


def listed(what, text):
    """the test names regrtest lists, indented, under its first
    'N test(s) WHAT:' line"""
    out, on = [], False
    for l in text.splitlines():
        if not on:
            on = re.fullmatch(r"[0-9]+ tests? %s:" % re.escape(what), l) is not None
        elif l.startswith("    "):
            out += l.split()
        else:
            break
    return out


def test(t):
    py = realtest.python_bin()
    if subprocess.run([py, "-c", "import test.test_dict"], stdout=subprocess.DEVNULL,
                      stderr=subprocess.DEVNULL).returncode != 0:
        fail("CPython's test package is missing (Debian: libpython3.X-testsuite; "
             "scripts/install_test_deps.sh installs it)")
    if FULL:
        args = ["-j2", "--timeout", "900", "-x"] + names(t.input("pytests-full.exclude"))
        min_mallocs = 1
    else:
        args = names(t.input("pytests.list"))
        min_mallocs = 10000000
    with open(t.input("regrtest_main.py")) as f:
        runpy = f.read()
    d1 = os.path.join(t.work, "hak." + NAME)
    shutil.rmtree(d1, ignore_errors=True)
    os.makedirs(d1)
    # -w: a test that fails is run once more, verbosely, for the log. A pass on
    # that second run ("FAILURE then SUCCESS", exit 0) still fails here.
    extra = {"HAKMEM_GUARD_SAMPLE": str(GUARD_SAMPLE)} if GUARD else {}
    rc = t.run([py, "-c", runpy, "-w"] + args, d1 + ".out", d1 + ".err", cwd=d1, hakmem=True,
               PYTHONMALLOC="malloc", **extra)
    out, err = realtest.text_of(d1 + ".out"), realtest.text_of(d1 + ".err")
    summary = [l for l in out.splitlines() if re.search(r"^(== )?Tests result|tests? OK|failed", l)]
    print("\n".join(summary[:8]))
    if rc == 0 and "Tests result: FAILURE then SUCCESS" in out:
        bad = " ".join(listed("failed", out))
        fail("CPython's tests failed under hakmem and passed when rerun: %s (a flaky test, or an intermittent "
             "fault: see %s.out)" % (bad or "see %s.out" % d1, d1))
    if rc != 0:
        print("\n".join(realtest.without_stats(err)[:20]))
        bad = listed("failed again", out) or listed("failed", out)
        why = ""
        if bad:
            plain = os.path.join(t.work, "plain.%s.out" % NAME)
            prc = t.run([py, "-m", "test"] + bad, plain, cwd=d1, PYTHONMALLOC="malloc")
            why = ("; they pass without hakmem" if prc == 0 else
                   "; they fail without hakmem too (see %s)" % plain)
        fail("CPython's tests failed under hakmem (exit %d): %s%s"
             % (rc, " ".join(bad) or "see %s.out" % d1, why))
    lines = realtest.stats_lines(err)
    if not lines:
        fail("no 'hakmem-stats:' line from the test runner's process")
    line = lines[-1]
    m = re.search(r" mallocs=([0-9]+)", line)
    if not m or int(m.group(1)) < min_mallocs:
        fail("mallocs=%s: hakmem did not serve the test runner's objects" % (m.group(1) if m else "?"))
    if " invalid_frees=0" not in line:
        fail("invalid frees reported: %s" % line)
    if GUARD:
        g = re.search(r" guarded=([0-9]+)", line)
        if not g or int(g.group(1)) < MIN_GUARDED:
            fail("guarded=%s: fewer than %d blocks were sampled with HAKMEM_GUARD_SAMPLE=%d"
                 % (g.group(1) if g else "?", MIN_GUARDED, GUARD_SAMPLE))
    print("%s: hakmem served it: %s" % (NAME, " ".join(re.findall(r"(?:mallocs|remote_frees|invalid_frees|guarded)=[0-9]+", line))))


realtest.main(test, [a for a in sys.argv[1:] if a not in ("--full", "--guard")])
