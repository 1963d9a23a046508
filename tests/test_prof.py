#!/usr/bin/env python3
"""py.prof: the heap profiler (HAKMEM_PROF), read back with google-pprof.

    tests/test_prof.py LIB.so WORKDIR

  - tests/prof_prog.c, built plainly and run under LD_PRELOAD: 90 MB through
    alloc_ninety and 10 MB through alloc_ten (in four threads: with the main
    thread, five of the profiler's shards), half of each freed by the main
    thread, a profile
    written by hak_prof_dump. `google-pprof --text` must attribute the live
    bytes to the two functions by name within 10 % of what the program
    counted with malloc_usable_size (at HAKMEM_PROF_SAMPLE=4k, so that the
    sampling error is a few per cent); the file has the `heap profile:`
    header and the MAPPED_LIBRARIES section. The leak report at exit
    (HAKMEM_PROF_LEAKS=1) must put leak_some first, by name, and estimate
    its 4000 blocks within 20 %.
  - HAKMEM_PROF_INTERVAL=8m writes numbered files PREFIX.PID.0001.heap, ...
    as the live heap grows.
  - /usr/bin/python3 (not rebuilt) keeping a growing list of bytearrays that
    it leaks: the leak report names CPython's allocation functions and
    estimates the 40 MB within 20 %; a forked child writes its own profile
    (its pid in the name); HAKMEM_PROF_SIGNAL=USR1 writes one on the signal.
  - The threads, fork and random tests (build-tests/*.preload) pass with
    HAKMEM_PROF=1 at a high rate (HAKMEM_PROF_SAMPLE=8k: many samples), and
    bench/large_heap.c (realloc across classes, calloc, remote frees) at the
    default rate.
No timing is asserted.
"""
import glob
import os
import re
import shutil
import subprocess
import sys
from hkcheck import check, env_for as env, failures

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CPY_ALLOC = ("PyByteArray_Resize", "PyObject_Malloc", "PyObject_Realloc", "PyMem_Malloc", "PyMem_Realloc",
             "PyMem_RawMalloc", "PyMem_RawRealloc", "_PyObject_GC_New", "PyList_New", "PyList_Append")


def run(argv, e, cwd, timeout=120):
    r = subprocess.run(argv, env=e, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    return r.returncode, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")


def pprof_text(prog, prof, cwd):
    r = subprocess.run(["google-pprof", "--text", prog, prof], cwd=cwd, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=120)
    out = r.stdout.decode("utf-8", "replace")
    flat = {}
    for line in out.splitlines():
        m = re.match(r"\s*([\d.]+)\s+[\d.]+%\s+[\d.]+%\s+[\d.]+\s+[\d.]+%\s+(\S+)", line)
        if m:
            flat[m.group(2)] = float(m.group(1)) * 1048576  # pprof's MB are MiB
    return r.returncode, out, flat


def leak_stacks(err):
    """The last leak report's stacks: [(estimated bytes, blocks, [frames])]."""
    stacks = []
    reports = err.split("hakmem: leak report:")
    for line in reports[-1].splitlines() if len(reports) > 1 else []:
        m = re.match(r"#\d+ (\d+) (B|KiB|MiB) in about (\d+) blocks", line)
        if m:
            mult = {"B": 1, "KiB": 1024, "MiB": 1048576}[m.group(2)]
            stacks.append((int(m.group(1)) * mult, int(m.group(3)), []))
        elif line.startswith("    ") and stacks:
            stacks[-1][2].append(line.strip())
    return stacks


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    lib, work = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    if not shutil.which("google-pprof"):
        print("REASON: google-pprof missing (Debian package google-perftools; scripts/install_test_deps.sh)")
        return 1
    prog = os.path.join(work, "prof_prog")
    cc = os.environ.get("CC", "cc")
    r = subprocess.run([cc, "-O2", "-g", "-pthread", os.path.join(ROOT, "tests/prof_prog.c"), "-o", prog, "-ldl"])
    if r.returncode:
        print("REASON: building prof_prog failed")
        return 1

    # the 90/10 program: pprof by name, the leak report
    rc, out, err = run([prog, "live.heap"], env(lib, HAKMEM_PROF="1", HAKMEM_PROF_SAMPLE="4k",
                                                HAKMEM_PROF_LEAKS="1", HAKMEM_PROF_PREFIX="exit"), work)
    print(out + err)
    check(rc == 0, "prof_prog exit status %d" % rc)
    m = re.search(r"live alloc_ninety (\d+) alloc_ten (\d+)", out)
    live = os.path.join(work, "live.heap")
    if check(m and os.path.exists(live), "prof_prog wrote no profile or no truth line"):
        text = open(live).read()
        check(text.startswith("heap profile: ") and "@ heap_v2/4096" in text.splitlines()[0],
              "profile header: %r" % text.splitlines()[0])
        check("\nMAPPED_LIBRARIES:\n" in text and "prof_prog" in text.split("MAPPED_LIBRARIES:")[1],
              "no MAPPED_LIBRARIES section naming the program")
        prc, ptext, flat = pprof_text(prog, live, work)
        print(ptext)
        check(prc == 0, "google-pprof exit status %d" % prc)
        for fn, truth in (("alloc_ninety", int(m.group(1))), ("alloc_ten", int(m.group(2)))):
            got = flat.get(fn)
            check(got is not None and abs(got - truth) <= 0.10 * truth,
                  "pprof gives %s %s bytes live, the program counted %d" % (fn, got, truth))
    m = re.search(r"prof\.dumps (\d+) prof\.dropped (\d+)", out)
    # prof.dropped is read but not pinned: a thread's first unwind may
    # allocate (libunwind's per-thread cache), and a sample due inside it
    # is dropped, by design
    check(m and int(m.group(1)) == 1,
          "statistics after one hak_prof_dump: %s (want prof.dumps 1)" % (m.group(0) if m else "none"))
    stacks = leak_stacks(err)
    if check(stacks, "no leak report"):
        est, blocks, frames = stacks[0]
        check(frames and frames[0].startswith("leak_some+"), "leak report's first stack: %s" % frames[:3])
        check(abs(blocks - 4000) <= 800, "leak report: %d blocks estimated for 4000 leaked" % blocks)
    exits = glob.glob(os.path.join(work, "exit.*.0001.heap"))
    check(len(exits) == 1, "exit profile files: %s" % exits)

    # interval dumps: numbered files as the live heap grows
    idir = os.path.join(work, "interval")
    os.makedirs(idir)
    rc, out, err = run([prog], env(lib, HAKMEM_PROF="1", HAKMEM_PROF_INTERVAL="8m",
                                   HAKMEM_PROF_PREFIX=os.path.join(idir, "p")), work)
    files = sorted(os.path.basename(f) for f in glob.glob(os.path.join(idir, "p.*.heap")))
    check(rc == 0 and len(files) >= 6, "HAKMEM_PROF_INTERVAL=8m on a 100 MB heap: files %s" % files)
    check(all(re.match(r"p\.\d+\.\d{4}\.heap$", f) for f in files) and
          [int(f.split(".")[2]) for f in files] == list(range(1, len(files) + 1)), "sequence: %s" % files)

    # CPython, not rebuilt: a growing list that is leaked; fork; the signal.
    # The child inherits the list: its report comes first, the parent's last.
    py = "/usr/bin/python3"
    if check(os.access(py, os.X_OK), "no /usr/bin/python3"):
        script = os.path.join(work, "grow.py")
        with open(script, "w") as f:
            f.write("import ctypes, os, signal, sys, time\n"
                    "keep = []\n"
                    "for i in range(20000):\n"
                    "    keep.append(bytearray(2000))\n"
                    "ctypes.pythonapi.Py_IncRef(ctypes.py_object(keep))  # leaked: it outlives Py_Finalize\n"
                    "os.kill(os.getpid(), signal.SIGUSR1)\n"
                    "time.sleep(0.3)\n"
                    "pid = os.fork()\n"
                    "if pid == 0:\n"
                    "    junk = [bytearray(3000) for i in range(1000)]\n"
                    "    sys.exit(0)  # exit(), so that hakmem's destructor writes the child's profile\n"
                    "else:\n"
                    "    os.waitpid(pid, 0)\n"
                    "print(os.getpid(), pid)\n")
        pdir = os.path.join(work, "py")
        os.makedirs(pdir)
        rc, out, err = run([py, script], env(lib, HAKMEM_PROF="1", HAKMEM_PROF_SAMPLE="64k", HAKMEM_PROF_LEAKS="1",
                                             HAKMEM_PROF_SIGNAL="USR1", HAKMEM_PROF_PREFIX=os.path.join(pdir, "py")),
                           work)
        print(out + err)
        check(rc == 0, "python3 exit status %d" % rc)
        pids = out.split()
        stacks = leak_stacks(err)
        if check(len(pids) == 2 and stacks, "python3: no pids or no leak report"):
            top = [s for s in stacks if s[0] >= 20 << 20]
            check(top and any(fr.split("+")[0] in CPY_ALLOC for fr in top[0][2]),
                  "leak report's biggest stack names none of CPython's allocation functions: %s"
                  % (top[0][2][:6] if top else stacks[:2]))
            total = sum(s[0] for s in stacks)
            check(0.8 * 40e6 <= total <= 1.25 * 41e6, "leak report: %d bytes estimated for 40 MB" % total)
            parent = sorted(glob.glob(os.path.join(pdir, "py.%s.*.heap" % pids[0])))
            child = glob.glob(os.path.join(pdir, "py.%s.*.heap" % pids[1]))
            check(len(parent) == 2, "parent's profiles (signal, exit): %s" % parent)
            check(len(child) == 1, "forked child's profile: %s" % child)
            if parent:
                prc, ptext, flat = pprof_text(py, parent[-1], work)
                print(ptext[:1500])
                check(prc == 0 and sum(flat.values()) > 30e6, "google-pprof on python3's profile")

    # the threaded, fork and random tests with profiling on, sampling often
    bt = os.path.join(ROOT, "build-tests")
    subprocess.run(["make", "-s", "-f", "tests/tests.mk"] + ["build-tests/%s.preload" % t for t in ("threads", "fork", "random")],
                   cwd=ROOT, stdout=subprocess.DEVNULL)
    # threads with 24 threads: more than the profiler's 16 shards, so that
    # threads share them
    for t, args in (("threads", ["24"]), ("fork", []), ("random", [])):
        exe = os.path.join(bt, t + ".preload")
        if not check(os.access(exe, os.X_OK), "%s missing (built by scripts/run_tests.sh)" % exe):
            continue
        tdir = os.path.join(work, t)
        os.makedirs(tdir)
        rc, out, err = run([exe] + args, env(lib, HAKMEM_PROF="1", HAKMEM_PROF_SAMPLE="8k", HK_TEST_SCALE="30",
                                              HAKMEM_PROF_PREFIX=os.path.join(tdir, "p")), tdir, timeout=300)
        check(rc == 0, "%s.preload with HAKMEM_PROF=1: exit status %d: %s" % (t, rc, (out + err)[-600:]))
        check(glob.glob(os.path.join(tdir, "p.*.heap")), "%s.preload wrote no profile" % t)

    # bench/large_heap's shape (realloc across classes, calloc, frees from
    # another thread) at the default rate: a sampled block once handed out
    # memory that held an earlier owner's free key, realloc copied it into an
    # ordinary block of that heap, and its remote free aborted as a double free
    lh = os.path.join(work, "large_heap")
    r = subprocess.run([cc, "-O2", "-pthread", "-I", os.path.join(ROOT, "bench"), os.path.join(ROOT, "bench/large_heap.c"),
                        "-o", lh, "-ldl"])
    if check(r.returncode == 0, "building bench/large_heap.c failed"):
        ldir = os.path.join(work, "lh")
        os.makedirs(ldir)
        for args in (["1", "4000", "100000", "1234567", "1", "65536"], ["4", "2000", "50000", "7", "1", "1048576"]):
            rc, out, err = run([lh] + args, env(lib, HAKMEM_PROF="1", HAKMEM_PROF_PREFIX=os.path.join(ldir, "p")), ldir,
                               timeout=300)
            check(rc == 0 and "check=ok" in out and "invalid" not in err,
                  "large_heap %s with HAKMEM_PROF=1: exit status %d: %s" % (" ".join(args), rc, (out + err)[-400:]))

    if failures:
        print("REASON: %s" % failures[0])
        return 1
    print("py.prof: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
