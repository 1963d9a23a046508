#!/usr/bin/env python3
"""real.stats: the HAKMEM_STATS=1 exit report and its format.

python (its own allocations through malloc: PYTHONMALLOC=malloc) runs
inputs/many_strings.py under hakmem with HAKMEM_STATS=1; python exits through
exit() with stderr open (dash uses _exit, and coreutils close stderr). Its
stderr must hold exactly one 'hakmem-stats:' line, of key=value items only,
with mallocs=N and frees=N, and N >= 100000 mallocs for a program that makes
at least that many allocations. Without HAKMEM_STATS there is no report.

    tests/real/stats.py LIB.so [WORKDIR]
"""
import os
import re
import subprocess
import sys

sys.dont_write_bytecode = True
import realtest
from realtest import fail


def test(t):
    py = realtest.python_bin()
    prog = t.input("many_strings.py")
    err = os.path.join(t.work, "stats.err")
    with open(err, "wb") as e:
        p = subprocess.run([py, prog], stdout=subprocess.PIPE, stderr=e,
                           env=t.env(hakmem=True, PYTHONMALLOC="malloc"))
    rc = realtest.status(p.returncode)
    text = realtest.text_of(err)
    print("\n".join(text.splitlines()[:40]))
    out = p.stdout.decode("utf-8", "replace").rstrip("\n")
    if rc != 0:
        fail("python under hakmem exited %d" % rc)
    if out != "100000":
        fail("unexpected output '%s'" % out)
    lines = realtest.stats_lines(text)
    if not lines:
        fail("no line starting with 'hakmem-stats:' on stderr with HAKMEM_STATS=1")
    if len(lines) != 1:
        fail("more than one 'hakmem-stats:' line")
    line = lines[0]
    for k in ("mallocs", "frees"):
        if not re.search(r"(?:^hakmem-stats:| )%s=[0-9]+(?: |$)" % k, line):
            fail("'hakmem-stats:' line lacks %s=N: %s" % (k, line))
    items = [i for i in line[len("hakmem-stats:"):].split(" ") if i]
    bad = [i for i in items if not re.fullmatch(r"[][A-Za-z0-9_.:/-]+=[^ ]*", i)][:3]
    if bad:
        fail("'hakmem-stats:' line has items that are not key=value: %s" % " ".join(bad))
    m = int(realtest.MALLOCS.search(line).group(1))
    if m < 100000:
        fail("mallocs=%d for a program that made at least 100000 allocations" % m)
    # without HAKMEM_STATS there is no report
    nostats = os.path.join(t.work, "nostats.err")
    with open(nostats, "wb") as e:
        subprocess.run([py, prog], stdout=subprocess.DEVNULL, stderr=e,
                       env=dict(t.env(), LD_PRELOAD=t.lib))
    if realtest.stats_lines(realtest.text_of(nostats)):
        fail("a stats report was printed without HAKMEM_STATS=1")
    print(("stats: ok: %s" % line)[:300])


realtest.main(test)
