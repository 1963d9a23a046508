#!/usr/bin/env python3
"""py.command: the hakmem command (tools/hakmem.py, build/hakmem).

    tests/test_command.py LIB.so WORKDIR

Uses the hakmem command next to LIB.so (make builds both into build/):
  - --help; an unknown command fails;
  - run: the report of a shell and its child (two processes, allocations
    per tier, errors caught), the program's exit status passed on, --json
    with per-process objects whose sum is the total, a double free under
    HAKMEM_ON_ERROR=warn counted as one error caught;
  - compare --allocators glibc,hakmem --rounds 1 on /bin/true: a table with
    both; a program whose exit status or (--check-output) output differs
    between allocators fails with exit status 1 and says why; a missing
    allocator is named and left out;
  - compare's proof of service: every run writes hakmem's statistics, the
    report says hakmem served its row and not glibc's (--json: every run's
    figures and hakmem's mallocs), and flags a hakmem row that a static
    program, which ignores LD_PRELOAD, never let hakmem serve;
  - make install PREFIX=WORKDIR/inst (when LIB is ROOT/build's): the
    installed hakmem finds its library and launcher, run and compare work
    from another directory with no HAKMEM_LIB;
  - options: the table, and docs/CONFIG.md's option reference (between its
    OPTIONS markers) is what `hakmem options --markdown` prints.
No timing is asserted.
"""
import json
import os
import re
import shutil
import subprocess
import sys
from hkcheck import check, env_for, failures

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def hk(cmd, *args, extra_env=None, **kw):
    e = env_for()
    if extra_env:
        e.update(extra_env)
    r = subprocess.run([cmd] + list(args), env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
    return r.returncode, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    lib, work = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    os.makedirs(work, exist_ok=True)
    cmd = os.path.join(os.path.dirname(lib), "hakmem")
    if not os.access(cmd, os.X_OK):
        print("REASON: %s missing: run make" % cmd)
        return 1
    rc, out, err = hk(cmd, "--help")
    check(rc == 0 and "usage:" in out and "hakmem compare" in out, "--help: rc %d" % rc)
    rc, out, err = hk(cmd, "frobnicate")
    check(rc == 2 and "unknown command" in err, "an unknown command: rc %d, %r" % (rc, err))
    rc, out, err = hk(cmd, "run")
    check(rc == 2 and "no PROGRAM" in err, "run without a program: rc %d, %r" % (rc, err))

    # run: a shell and its child, the exit status passed on
    rc, out, err = hk(cmd, "run", "--lib", lib, "--", "sh", "-c", "ls / >/dev/null; ls / | wc -l; exit 3")
    print(err)
    check(rc == 3, "hakmem run passes the exit status on: %d" % rc)
    check("hakmem run: sh -c" in err and "(exit 3)" in err, "the report's first line")
    m = re.search(r"processes with hakmem: (\d+)", err)
    check(m and int(m.group(1)) >= 2, "a shell with a child is at least two processes: %r" % (m and m.group(0)))
    check(re.search(r"allocations: tiny [\d,]+  mid [\d,]+  large [\d,]+  big [\d,]+", err) is not None,
          "allocations per tier")
    check(re.search(r"wall [\d.]+ s, CPU [\d.]+ s user \+ [\d.]+ s system, peak RSS [\d.]+ (KiB|MiB)", err),
          "wall, CPU and peak RSS")
    check("errors caught: 0" in err and "returned to the OS:" in err, "memory returned and errors caught")
    check(out.strip().isdigit(), "the program's own stdout is untouched: %r" % out)

    # --json: per-process objects and their sum
    jf = os.path.join(work, "run.json")
    rc, out, err = hk(cmd, "run", "--lib", lib, "--stats", "--json", jf, "--", "sh", "-c", "ls / >/dev/null; ls / | wc -l >/dev/null")
    check(rc == 0, "run --json rc %d" % rc)
    check("size classes used" in err and "per process:" in err, "--stats adds the details")
    with open(jf) as f:
        j = json.load(f)
    procs = j["processes"]
    check(len(procs) >= 2, "--json: %d processes" % len(procs))
    check(j["total"]["mallocs"] == sum(p["mallocs"] for p in procs), "the total is the sum of the processes")
    check(j["total"]["tier"]["tiny"]["mallocs"] == sum(p["tier"]["tiny"]["mallocs"] for p in procs),
          "the per-tier total is the sum")
    check(j["maxrss_kib"] > 0 and j["exit"] == 0, "maxrss and exit in --json")
    check(len({p["pid"] for p in procs}) == len(procs), "one object per pid")

    # errors caught: a double free with HAKMEM_ON_ERROR=warn
    src = os.path.join(work, "dfree.c")
    with open(src, "w") as f:
        f.write("#include <stdlib.h>\nint main(void){char *volatile p=malloc(40);free(p);free(p);return 0;}\n")
    exe = os.path.join(work, "dfree")
    subprocess.run([os.environ.get("CC", "cc"), "-O0", "-fno-builtin", "-w", src, "-o", exe], check=True)
    rc, out, err = hk(cmd, "run", "--lib", lib, "--", exe, extra_env={"HAKMEM_ON_ERROR": "warn"})
    check(rc == 0 and "errors caught: 1" in err, "a double free under warn is one error caught: rc %d, %r" % (rc, err[-300:]))

    # compare
    rc, out, err = hk(cmd, "compare", "--lib", lib, "--allocators", "glibc,hakmem", "--rounds", "1", "--", "true")
    print(out + err)
    check(rc == 0, "compare glibc,hakmem on true: rc %d, %r" % (rc, err[-300:]))
    check(re.search(r"^\| glibc \| [\d.]+ \([\d.]+x\) \|", out, re.M) and re.search(r"^\| hakmem \|", out, re.M),
          "the table has a row per allocator")
    check("round 1/1" in err, "progress on stderr")
    rc, out, err = hk(cmd, "compare", "--lib", lib, "--allocators", "glibc,hakmem", "--rounds", "1", "--",
                      "sh", "-c", 'test -n "$LD_PRELOAD" && exit 5; exit 0')
    check(rc == 1 and "exit status differs" in err and "glibc exited 0" in err and "exited 5" in err,
          "an exit status that differs fails loudly: rc %d, %r" % (rc, err[-300:]))
    rc, out, err = hk(cmd, "compare", "--lib", lib, "--allocators", "glibc,hakmem", "--rounds", "1", "--check-output",
                      "--", "sh", "-c", "echo $LD_PRELOAD")
    check(rc == 1 and "stdout differs" in err, "an output that differs fails with --check-output: rc %d" % rc)
    rc, out, err = hk(cmd, "compare", "--lib", lib, "--allocators", "glibc,hakmem", "--rounds", "2", "--check-output",
                      "--", "sh", "-c", "echo same")
    check(rc == 0, "the same output passes --check-output: rc %d, %r" % (rc, err[-200:]))
    rc, out, err = hk(cmd, "compare", "--lib", lib, "--allocators", "glibc,hakmem,ghost=/nonexistent/libghost.so",
                      "--rounds", "1", "--", "true")
    check(rc == 0 and "ghost is missing" in err and "not measured (missing): ghost" in out,
          "a missing allocator is named and left out: rc %d" % rc)
    rc, out, err = hk(cmd, "compare", "--rounds", "0", "--", "true")
    check(rc == 2 and "--rounds" in err, "--rounds 0 is refused")
    rc, out, err = hk(cmd, "compare", "--seed", "x", "--", "true")
    check(rc == 2 and "--seed" in err, "--seed x is refused")

    # proof of service: which rows hakmem served, from the statistics of every run
    jf = os.path.join(work, "compare.json")
    rc, out, err = hk(cmd, "compare", "--lib", lib, "--allocators", "glibc,hakmem", "--rounds", "2", "--seed", "7",
                      "--json", jf, "--", "sh", "-c", "ls / >/dev/null")
    check(rc == 0 and re.search(r"^  hakmem: hakmem served every round \([\d,]+ mallocs in [\d,]+ process", out, re.M)
          and re.search(r"^  glibc: no hakmem statistics \(not hakmem\)", out, re.M),
          "compare says hakmem served its rows and not glibc's: rc %d, %r" % (rc, out[-400:]))
    with open(jf) as f:
        j = json.load(f)
    by = {a["name"]: a for a in j["allocators"]}
    check(set(by) == {"glibc", "hakmem"} and all(len(a["runs"]) == 2 for a in by.values()), "--json: 2 runs each")
    check(all(r["hakmem_mallocs"] > 0 and r["hakmem_processes"] >= 1 and r["exit"] == 0 for r in by["hakmem"]["runs"]),
          "--json: hakmem's runs made mallocs through hakmem: %r" % by["hakmem"]["runs"])
    check(all(r["hakmem_processes"] == 0 for r in by["glibc"]["runs"]), "--json: glibc's runs had no hakmem")
    check(by["hakmem"]["median"]["wall_s"] > 0 and by["hakmem"]["median"]["maxrss_mib"] > 0 and j["failures"] == [],
          "--json medians")
    rc, out, err = hk(cmd, "compare", "--lib", lib, "--allocators", "glibc,hakmem", "--rounds", "1", "--json", jf,
                      "--", "sh", "-c", 'test -n "$LD_PRELOAD" && exit 5; exit 0')
    with open(jf) as f:
        j = json.load(f)
    check(rc == 1 and len(j["failures"]) == 1 and "exit status differs" in j["failures"][0],
          "--json holds the failure too: %r" % j["failures"])
    # a program that ignores LD_PRELOAD: the hakmem row is not hakmem's, and compare says so
    src, exe = os.path.join(work, "static.c"), os.path.join(work, "static")
    with open(src, "w") as f:
        f.write("#include <stdlib.h>\nint main(void){char *volatile p=malloc(40);free(p);return 0;}\n")
    if subprocess.run([os.environ.get("CC", "cc"), "-static", "-O0", src, "-o", exe], stderr=subprocess.DEVNULL).returncode:
        print("no static libc: the check of a program that ignores LD_PRELOAD is skipped")
    else:
        rc, out, err = hk(cmd, "compare", "--lib", lib, "--allocators", "glibc,hakmem", "--rounds", "1", "--", exe)
        check(rc == 0 and "hakmem: WARNING: in 1 of 1 rounds no process wrote hakmem statistics" in out,
              "a static program: the hakmem row is flagged: %r" % out[-400:])
    if shutil.which("gnuplot"):
        png = os.path.join(work, "c.png")
        rc, out, err = hk(cmd, "compare", "--lib", lib, "--allocators", "glibc,hakmem", "--rounds", "1",
                          "--chart", png, "--", "true")
        check(rc == 0 and os.path.getsize(png) > 1000, "--chart wrote a PNG")

    # the installed command: its library and launcher from PREFIX, nothing from the tree
    if os.path.realpath(lib) == os.path.realpath(os.path.join(ROOT, "build", "libhakmem.so")):
        prefix = os.path.join(work, "inst")
        shutil.rmtree(prefix, ignore_errors=True)
        r = subprocess.run(["make", "-s", "-C", ROOT, "install", "PREFIX=" + prefix], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        if check(r.returncode == 0, "make install PREFIX=%s: %s" % (prefix, r.stdout.decode()[-300:])):
            inst = os.path.join(prefix, "bin", "hakmem")
            rc, out, err = hk(inst, "run", "--", "sh", "-c", "ls / >/dev/null", cwd="/")
            check(rc == 0 and "processes with hakmem: " in err and "hakmem-exec not found" not in err,
                  "installed hakmem run: rc %d, %r" % (rc, err[-300:]))
            ij = os.path.join(work, "inst.json")
            rc, out, err = hk(inst, "compare", "--allocators", "glibc,hakmem", "--rounds", "1", "--json", ij, "--",
                              "sh", "-c", "ls / >/dev/null", cwd="/")
            check(rc == 0 and "hakmem: hakmem served every round" in out, "installed hakmem compare: rc %d, %r"
                  % (rc, out[-300:]))
            with open(ij) as f:
                libs = {a["name"]: a["library"] for a in json.load(f)["allocators"]}
            check(libs.get("hakmem") == os.path.realpath(os.path.join(prefix, "lib", "libhakmem.so")),
                  "installed hakmem compare uses the installed library: %r" % libs)
    else:
        print("LIB is not ROOT/build's: the make install check is skipped")

    # options, and the reference in docs/CONFIG.md
    rc, out, err = hk(cmd, "options", "--lib", lib)
    check(rc == 0 and "HAKMEM_EMPTY_BUDGET=16m" in out, "hakmem options: rc %d" % rc)
    rc, md, err = hk(cmd, "options", "--markdown", "--lib", lib)
    with open(os.path.join(ROOT, "docs", "CONFIG.md")) as f:
        doc = f.read()
    m = re.search(r"<!-- OPTIONS:BEGIN[^>]*-->\n(.*?)<!-- OPTIONS:END -->", doc, re.S)
    if check(m is not None, "docs/CONFIG.md has no OPTIONS:BEGIN/END block"):
        check(m.group(1).strip() == md.strip(),
              "docs/CONFIG.md's option reference is not what `build/hakmem options --markdown` prints "
              "(regenerate it)")

    if failures:
        print("REASON: " + failures[0])
        print("command.py: %d check(s) failed" % len(failures))
        return 1
    print("command.py: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
