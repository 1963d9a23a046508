#!/usr/bin/env python3
"""py.introspect: hakmem's statistics as other programs read them.

    tests/test_introspect.py LIB.so WORKDIR

Builds tests/test_introspect.c (preload mode) and runs it under LIB.so in its
dump mode, which holds a known live pattern (10,000 x 1000 B, 100 x 100 KiB,
3 x 5 MiB) and writes hak_stats_json's object, malloc_info's XML and the
pattern's figures. Python's json and xml.etree parse them; then:
  - 'allocated' moved by the pattern's usable bytes, within 1 %;
  - malloc_info's totals agree with the JSON within one slab (64 KiB), its
    sizes add up to its fast and rest totals, mallinfo2 agrees with both;
  - HAKMEM_STATS=json writes one JSON object at exit, on stderr or to
    HAKMEM_STATS_FILE, one file per process with %p;
  - HAKMEM_STATS_SIGNAL=USR2 writes it while the program runs;
  - a malformed value or an unknown HAKMEM_* name prints one line and the
    default stays; the variables hakmem's own tests, benchmarks and docs use
    print nothing.
"""
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from hkcheck import check, env_for, failures

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SLAB = 64 * 1024


def build(work):
    exe = os.path.join(work, "introspect.preload")
    cc = os.environ.get("CC", "cc")
    cmd = [cc, "-std=gnu11", "-O1", "-g", "-D_GNU_SOURCE", "-fno-builtin", "-DHK_MODE_PRELOAD",
           "-I" + os.path.join(ROOT, "include"), "-I" + os.path.join(ROOT, "tests"),
           os.path.join(ROOT, "tests", "test_introspect.c"), "-o", exe, "-pthread", "-ldl"]
    r = subprocess.run(cmd, stderr=subprocess.PIPE)
    if r.returncode != 0:
        print("REASON: cannot build test_introspect.c: " + r.stderr.decode()[:300])
        sys.exit(1)
    return exe


def xml_num(el, attr):
    return int(el.get(attr))


def test_dump(lib, exe, work):
    d = os.path.join(work, "dump")
    os.makedirs(d, exist_ok=True)
    # no time-based return between the snapshots
    r = subprocess.run([exe, "dump", d], env=env_for(lib, HAKMEM_BACKGROUND="0", HAKMEM_DECAY_MS="3600000"),
                       stderr=subprocess.PIPE)
    if not check(r.returncode == 0, "introspect dump exited %d: %s" % (r.returncode, r.stderr.decode()[-300:])):
        return
    with open(os.path.join(d, "stats.json")) as f:
        js = json.load(f)
    with open(os.path.join(d, "expect.json")) as f:
        ex = json.load(f)
    root = ET.parse(os.path.join(d, "info.xml")).getroot()
    # allocated against the pattern
    moved = js["allocated"] - ex["baseline_allocated"]
    print("allocated moved by %d bytes; usable %d, requested %d" % (moved, ex["usable"], ex["requested"]))
    check(abs(moved - ex["usable"]) * 100 <= ex["usable"],
          "allocated moved by %d, not within 1 %% of the pattern's %d usable bytes" % (moved, ex["usable"]))
    check(js["tier"]["tiny"]["live"] >= ex["n_small"], "tier.tiny.live %d" % js["tier"]["tiny"]["live"])
    check(js["tier"]["large"]["live"] >= ex["n_large"], "tier.large.live %d" % js["tier"]["large"]["live"])
    check(js["tier"]["big"]["live"] == ex["big_live"], "tier.big.live %d != %d" % (js["tier"]["big"]["live"], ex["big_live"]))
    check(js["class"]["1024"]["live"] >= ex["n_small"], "class 1024 live %d" % js["class"]["1024"]["live"])
    check(sum(t["live_bytes"] for t in js["tier"].values()) == js["allocated"], "allocated != the tiers' live bytes")
    check(js["pid"] > 0 and js["schema"] == 1 and js["hakmem"], "pid, schema, version")
    for k in ("allocated", "active", "resident", "mapped", "retained", "committed"):
        check(isinstance(js[k], int) and js[k] >= 0, "%s is not a count: %r" % (k, js[k]))
    check(js["retained"] == js["mapped"] - js["committed"], "retained != mapped - committed")
    check(js["active"] + SLAB >= js["allocated"], "active below allocated")
    for path in ("heaps.live", "heaps.abandoned", "os.mmap.calls", "os.mmap.bytes", "os.munmap.calls",
                 "os.madvise.bytes", "os.mremap.calls", "decay.returns", "decay.bytes", "errors"):
        o = js
        for p in path.split("."):
            o = o.get(p) if isinstance(o, dict) else None
        check(isinstance(o, int), "the JSON has no number at %s" % path)
    # malloc_info: glibc's shape
    check(root.tag == "malloc" and root.get("version") == "1", "root is <%s version=%s>" % (root.tag, root.get("version")))
    heaps = root.findall("heap")
    check(len(heaps) == 1 and heaps[0].get("nr") == "0", "one <heap nr=0>")
    heap = heaps[0]
    sizes = heap.find("sizes")
    check(sizes is not None, "<sizes> in the heap")
    ht = {t.get("type"): t for t in heap.findall("total")}
    top = {t.get("type"): t for t in root.findall("total")}
    sysm = {s.get("type"): s for s in root.findall("system")}
    asp = {s.get("type"): s for s in root.findall("aspace")}
    hsys = {s.get("type"): s for s in heap.findall("system")}
    check(set(ht) == {"fast", "rest"} and set(top) == {"fast", "rest", "mmap"}, "the <total> types")
    check(set(sysm) == {"current", "max"} and set(asp) == {"total", "mprotect"}, "<system> and <aspace> types")
    in_sizes = sum(xml_num(s, "total") for s in sizes)
    check(in_sizes == xml_num(ht["fast"], "size") + xml_num(ht["rest"], "size"),
          "the heap's sizes add up to %d, its fast + rest to %d"
          % (in_sizes, xml_num(ht["fast"], "size") + xml_num(ht["rest"], "size")))
    for s in sizes:
        check(int(s.get("from")) <= int(s.get("to")) and int(s.get("count")) > 0, "a <size> element: %r" % s.attrib)
    # totals vs hak_stat's JSON: within one slab
    pairs = [
        ("<total type=mmap> count", xml_num(top["mmap"], "count"), js["big"]["live"]),
        ("<total type=mmap> size", xml_num(top["mmap"], "size"), js["big"]["live_bytes"]),
        ("<total type=fast> size", xml_num(top["fast"], "size"), js["thread_cache"]["bytes"]),
        ("<system type=current>", xml_num(sysm["current"], "size"), js["committed"]),
        ("<system type=max>", xml_num(sysm["max"], "size"), js["committed_peak"]),
        ("<aspace type=total>", xml_num(asp["total"], "size"), js["mapped"]),
        ("<total type=rest> size", xml_num(top["rest"], "size"),
         js["free_in_slabs"]["bytes"] + js["shared_pool"]["empty_bytes"] + js["big"]["cached_bytes"]),
    ]
    for what, x, j in pairs:
        check(abs(x - j) <= SLAB, "malloc_info %s = %d, the JSON says %d" % (what, x, j))
    # mallinfo2, read right after both
    mi = ex["mallinfo2"]
    check(mi["hblks"] == xml_num(top["mmap"], "count") and mi["hblkhd"] == xml_num(top["mmap"], "size"),
          "mallinfo2 hblks/hblkhd vs malloc_info mmap")
    check(abs(mi["arena"] - xml_num(hsys["current"], "size")) <= SLAB, "mallinfo2 arena vs the heap's <system current>")
    check(abs(mi["uordblks"] + js["tier"]["big"]["live_bytes"] - js["allocated"]) <= SLAB,
          "mallinfo2 uordblks + Big != allocated")
    check(mi["fsmblks"] == xml_num(ht["fast"], "size"), "mallinfo2 fsmblks vs <total type=fast>")
    check(abs(mi["keepcost"] - js["shared_pool"]["empty_bytes"] - js["big"]["cached_bytes"]) <= SLAB,
          "mallinfo2 keepcost vs EMPTY + BigCache")
    print("dump: allocated %d, committed %d, mapped %d, malloc_info sizes %d entries" %
          (js["allocated"], js["committed"], js["mapped"], len(list(sizes))))


def json_objects(text):
    """Every top-level JSON object in text (the exit JSON among other lines)."""
    out, dec, i = [], json.JSONDecoder(), 0
    while True:
        i = text.find("{", i)
        if i < 0:
            return out
        try:
            o, end = dec.raw_decode(text, i)
            out.append(o)
            i = end
        except ValueError:
            i += 1


def test_exit_json(lib, work):
    # on stderr (ls closes its stderr before exit: the copy taken at start-up serves)
    r = subprocess.run(["ls", "-l", "/"], env=env_for(lib, HAKMEM_STATS="json"), stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)
    objs = json_objects(r.stderr.decode())
    check(r.returncode == 0 and len(objs) == 1, "HAKMEM_STATS=json: %d JSON objects on stderr" % len(objs))
    if objs:
        check(objs[0]["mallocs"] > 0, "ls made no malloc?")
    # one file per process with %p
    d = os.path.join(work, "files")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    r = subprocess.run(["sh", "-c", "ls / >/dev/null; ls / >/dev/null"],
                       env=env_for(lib, HAKMEM_STATS="json", HAKMEM_STATS_FILE=os.path.join(d, "s.%p.json")),
                       stderr=subprocess.PIPE)
    files = sorted(glob.glob(os.path.join(d, "s.*.json")))
    check(r.returncode == 0 and len(files) >= 2, "a shell and its child: %d files (%s)" % (len(files), r.stderr.decode()[:200]))
    for f in files:
        with open(f) as fh:
            o = json.load(fh)
        pid = int(re.search(r"s\.(\d+)\.json$", f).group(1))
        check(o["pid"] == pid, "%s holds pid %d" % (f, o["pid"]))
    # the text report still goes where it went
    r = subprocess.run(["ls", "/"], env=env_for(lib, HAKMEM_STATS="1"), stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)
    check(sum(1 for ln in r.stderr.decode().splitlines() if ln.startswith("hakmem-stats:")) == 1,
          "HAKMEM_STATS=1 prints one hakmem-stats: line")


def test_signal(lib, work):
    f = os.path.join(work, "sig.%p.json")
    p = subprocess.Popen(["sleep", "30"], env=env_for(lib, HAKMEM_STATS_SIGNAL="USR2", HAKMEM_STATS_FILE=f),
                         stderr=subprocess.PIPE)
    path = f.replace("%p", str(p.pid))
    try:
        # wait for the library to be up (its constructor installs the handler)
        deadline = time.monotonic() + 20
        got = None
        while time.monotonic() < deadline and got is None:
            time.sleep(0.2)
            with open("/proc/%d/status" % p.pid) as st:
                caught = [ln for ln in st if ln.startswith("SigCgt:")]
            if caught and int(caught[0].split()[1], 16) & (1 << (signal.SIGUSR2 - 1)):
                os.kill(p.pid, signal.SIGUSR2)
                for _ in range(50):
                    time.sleep(0.1)
                    try:
                        with open(path) as fh:
                            got = json.load(fh)
                        break
                    except (OSError, ValueError):
                        continue
        check(got is not None and got.get("pid") == p.pid, "HAKMEM_STATS_SIGNAL=USR2 wrote no JSON to %s" % path)
        check(p.poll() is None, "the program did not survive the signal")
    finally:
        p.kill()
        p.wait()


def help_values(lib):
    r = subprocess.run(["true"], env=env_for(lib, HAKMEM_HELP="1"), stderr=subprocess.PIPE)
    vals = {}
    for m in re.finditer(r"^  \*?(HAKMEM_[A-Z_]+)=(\S*) \(default", r.stderr.decode(), re.M):
        vals[m.group(1)] = m.group(2)
    return vals


def one_run(lib, **kw):
    r = subprocess.run(["true"], env=env_for(lib, **kw), stderr=subprocess.PIPE)
    return r.stderr.decode()


def test_bad_options(lib):
    out = one_run(lib, HAKMEM_EMPTY_BUDGET="64MiB")
    lines = out.splitlines()
    check(len(lines) == 1, "HAKMEM_EMPTY_BUDGET=64MiB printed %d lines: %r" % (len(lines), out))
    check("HAKMEM_EMPTY_BUDGET=64MiB" in out and "expected a byte count" in out and "keeping the default, 16m" in out,
          "the warning names the variable, value, what it accepts and the default: %r" % out)
    out = one_run(lib, HAKMEM_FAST_CAP="lots", HAKMEM_HELP="1")
    check("HAKMEM_FAST_CAP=lots: expected a whole number from 1 to 65536; keeping the default, 256" in out,
          "FAST_CAP=lots warning: %r" % out[:300])
    check(re.search(r"^  HAKMEM_FAST_CAP=256 ", out, re.M) is not None, "FAST_CAP kept 256 after the bad value")
    out = one_run(lib, HAKMEM_FASTCAP="1")
    check(len(out.splitlines()) == 1 and "HAKMEM_FASTCAP=1: no such variable (did you mean HAKMEM_FAST_CAP?)" in out,
          "unknown name warning: %r" % out)
    vals = help_values(lib)
    check(len(vals) >= 20 and vals.get("HAKMEM_EMPTY_BUDGET") == "16m", "HAKMEM_HELP=1 lists the options: %r" % vals)
    # every HAKMEM_ name of the test suite's, the benchmark's and the docs' scripts and pages
    names = set()
    for pat in ("tests/**/*.py", "tests/*.mk", "tests/*.md", "scripts/**/*", "bench/**/*.py", "docs/*.md",
                "README.md", "Makefile", ".ci/*"):
        for f in glob.glob(os.path.join(ROOT, pat), recursive=True):
            if os.path.isfile(f) and os.path.basename(f) not in ("test_introspect.py", "test_command.py"):
                try:
                    text = open(f, errors="replace").read()
                except OSError:
                    continue
                for line in text.splitlines():
                    if "no such variable" not in line:  # the docs' example of the warning itself
                        names |= set(re.findall(r"\bHAKMEM_[A-Z0-9_]*[A-Z0-9]\b", line))
    names -= {"HAKMEM_H", "HAKMEM_HARDENED"}  # C macros, not variables
    env = {}
    for n in sorted(names):
        env[n] = vals.get(n, "1")
    env.pop("HAKMEM_HELP", None)
    env.pop("HAKMEM_STATS", None)
    env.pop("HAKMEM_STATS_SIGNAL", None)
    out = one_run(lib, **env)
    check(out == "", "the variables hakmem's own scripts and docs use warned: %r" % out[:400])
    print("bad options: ok; %d variables of the tree set without a warning" % len(env))


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    lib, work = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    os.makedirs(work, exist_ok=True)
    exe = build(work)
    test_dump(lib, exe, work)
    test_exit_json(lib, work)
    test_signal(lib, work)
    test_bad_options(lib)
    if failures:
        print("REASON: " + failures[0])
        print("introspect.py: %d check(s) failed" % len(failures))
        return 1
    print("introspect.py: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
