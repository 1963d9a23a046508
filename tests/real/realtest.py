"""realtest.py — the shared part of the real-program tests (tests/real/*.py).

Each test is a script, run as

    tests/real/NAME.py LIB.so [WORKDIR]

(scripts/run_tests.sh runs it as the test real.NAME). It runs a program on
inputs from tests/real/inputs/ twice with run_pair(): once plainly and once
with LD_PRELOAD=LIB.so and HAKMEM_STATS=1, and requires the same exit status
(0), the same output (sha256) and proof that hakmem served the run: a
'hakmem-stats:' line on stderr with mallocs > 0. Exit status 0 on success; on
failure the last line printed is 'REASON: ...' (run_tests.sh shows it).

A script is written as

    import realtest
    def test(t):                      # t: a realtest.Test
        t.need("sqlite3")
        t.run_pair("sqlite", ["sqlite3", ...])
    realtest.main(test)
"""
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
INPUTS = os.path.join(HERE, "inputs")
ROOT = os.path.dirname(os.path.dirname(HERE))

STATS_LINE = re.compile(r"^hakmem-stats:.*", re.M)
MALLOCS = re.compile(r"(?:^hakmem-stats:| )mallocs=([0-9]+)")


class Failed(Exception):
    """the test failed; the message is its REASON line"""


def fail(msg):
    raise Failed(msg)


def status(rc):
    """a shell's exit status: 128 + N for a death by signal N"""
    return 128 - rc if rc < 0 else rc


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def text_of(path):
    with open(path, "rb") as f:
        return f.read().decode("utf-8", "replace")


def without_stats(text):
    """the lines of text that are not hakmem's report"""
    return [l for l in text.splitlines() if not l.startswith("hakmem-stats")]


def stats_lines(text):
    return STATS_LINE.findall(text)


def python_bin():
    """the interpreter under test: Debian's, else the first python3 on PATH"""
    if os.access("/usr/bin/python3", os.X_OK):
        return "/usr/bin/python3"
    p = shutil.which("python3")
    if not p:
        fail("python3 is not installed")
    return p


class Test:
    def __init__(self, lib, work):
        self.lib = lib
        self.work = work

    def input(self, name):
        """the path of an input file (tests/real/inputs/NAME)"""
        return os.path.join(INPUTS, name)

    def need(self, *cmds):
        for c in cmds:
            if not shutil.which(c):
                fail("%s is not installed" % c)

    def env(self, hakmem=False, **extra):
        """the environment of a run: extra on top of ours, hakmem's
        LD_PRELOAD and HAKMEM_STATS=1 if hakmem"""
        env = dict(os.environ)
        env.update(extra)
        if hakmem:
            env.update(HAKMEM_STATS="1", LD_PRELOAD=self.lib)
        return env

    def run(self, argv, out, err=None, cwd=None, hakmem=False, **env):
        """runs argv in cwd (default WORK), stdout to the file out, stderr to
        the file err (None: to out as well), with env on top of ours (and
        hakmem's variables if hakmem); returns its exit status as a shell
        gives it"""
        with open(out, "wb") as o, open(err or os.devnull, "wb") as e:
            p = subprocess.run(argv, cwd=cwd or self.work, stdin=subprocess.DEVNULL, stdout=o,
                               stderr=e if err else subprocess.STDOUT, env=self.env(hakmem, **env))
        return status(p.returncode)

    def run_pair(self, tag, argv, **env):
        """runs argv in WORK/plain.TAG and in WORK/hak.TAG (as its working
        directory), without and with hakmem, stdout to plain.TAG.out /
        hak.TAG.out, stderr to .err, and compares"""
        d0 = os.path.join(self.work, "plain." + tag)
        d1 = os.path.join(self.work, "hak." + tag)
        for d in (d0, d1):
            shutil.rmtree(d, ignore_errors=True)
            os.makedirs(d)
        rc0 = self.run(argv, d0 + ".out", d0 + ".err", cwd=d0, **env)
        rc1 = self.run(argv, d1 + ".out", d1 + ".err", cwd=d1, hakmem=True, **env)
        h0, h1 = sha256_of(d0 + ".out"), sha256_of(d1 + ".out")
        print("%s: without hakmem: exit %d, output %d bytes sha256 %s" % (tag, rc0, os.path.getsize(d0 + ".out"), h0[:16]))
        print("%s: with hakmem:    exit %d, output %d bytes sha256 %s" % (tag, rc1, os.path.getsize(d1 + ".out"), h1[:16]))
        err0, err1 = text_of(d0 + ".err"), text_of(d1 + ".err")
        if rc1 >= 128 or re.search(r"^hakmem: ", err1, re.M):
            print("--- stderr with hakmem (first 20 lines) ---")
            print("\n".join(without_stats(err1)[:20]))
        if rc0 != 0:
            fail("%s: the run without hakmem failed (exit %d): %s" % (tag, rc0, err0[:300]))
        if rc1 != rc0:
            fail("%s: exit status %d with hakmem, %d without; stderr: %s"
                 % (tag, rc1, rc0, "\n".join(without_stats(err1))[:300]))
        if h0 != h1:
            d = subprocess.run(["diff", d0 + ".out", d1 + ".out"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            print("\n".join(d.stdout.decode("utf-8", "replace").splitlines()[:10]))
            fail("%s: output differs with hakmem" % tag)
        lines = stats_lines(err1)
        counts = [int(m.group(1)) for l in lines for m in [MALLOCS.search(l)] if m]
        if not counts:
            fail("%s: no 'hakmem-stats:' line with mallocs= on stderr with HAKMEM_STATS=1 (hakmem not loaded, "
                 "or its exit report lost, e.g. because the program closed stderr before exiting)" % tag)
        n = max(counts)
        if n <= 0:
            fail("%s: hakmem-stats reports mallocs=0: the program's allocations did not reach hakmem" % tag)
        print("%s: hakmem served it (largest mallocs=%d, %d stats report(s))" % (tag, n, len(lines)))


def main(test, argv=None):
    """runs test(Test) with the command line's LIB.so [WORKDIR]; exits 0, or
    1 after the REASON line"""
    argv = sys.argv[1:] if argv is None else argv
    name = os.path.splitext(os.path.basename(sys.argv[0]))[0]
    if len(argv) not in (1, 2) or argv[0].startswith("-"):
        print("usage: tests/real/%s.py LIB.so [WORKDIR]" % name, file=sys.stderr)
        sys.exit(2)
    sys.stdout.reconfigure(line_buffering=True)
    os.environ.update(LC_ALL="C", TZ="UTC")
    for v in ("HAKMEM_STATS", "HAKMEM_ON_ERROR", "LD_PRELOAD"):
        os.environ.pop(v, None)
    lib = os.path.abspath(argv[0])
    work = os.path.abspath(argv[1]) if len(argv) > 1 else tempfile.mkdtemp(prefix="hakmem-real.")
    os.makedirs(work, exist_ok=True)
    try:
        if not os.path.isfile(lib):
            fail("%s not found (run make first)" % lib)
        test(Test(lib, work))
    except Failed as e:
        print("REASON: %s" % e)
        sys.exit(1)
    except Exception as e:  # a fault of the test itself, said as its reason
        traceback.print_exc(file=sys.stdout)
        print("REASON: the test script failed: %s: %s" % (type(e).__name__, e))
        sys.exit(1)
    sys.exit(0)
