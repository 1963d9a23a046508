#!/usr/bin/env python3
"""hakmem - run a program under the hakmem allocator, or compare allocators on it.

usage:
  hakmem run [--stats] [--json FILE] [--prof] [--lib LIB] [--] PROGRAM [ARGS...]
  hakmem compare [--rounds N] [--check-output] [--allocators LIST] [--chart FILE.png]
                 [--json FILE] [--seed N] [--lib LIB] [--] PROGRAM [ARGS...]
  hakmem options [--markdown] [--lib LIB]
  hakmem --help | --version

run       runs PROGRAM with LD_PRELOAD=libhakmem.so (its child processes
          inherit it) and, when it exits, prints on stderr a short report:
          wall time, CPU time (user and system, from wait4), peak RSS (the
          largest ru_maxrss of the program and the children it waited for),
          allocations per tier, memory returned to the OS and errors caught,
          summed over every process that loaded hakmem (each writes its
          statistics as JSON at exit: HAKMEM_STATS=json with
          HAKMEM_STATS_FILE=DIR/stats.%p.json). Exits with PROGRAM's status.
          --stats adds the per-process figures and the size classes in use;
          --json FILE writes {"processes": [...], "total": {...}} to FILE.
          --prof turns the heap profiler on (HAKMEM_PROF=1, HAKMEM_PROF_LEAKS=1):
          each process prints the top stacks of its live heap at exit, with
          symbol names, and writes a heap profile (HAKMEM_PROF_PREFIX, default
          ./hakmem-prof.PID.SEQ.heap) that `google-pprof --text PROGRAM FILE`
          reads; the report names the files.
compare   runs PROGRAM under each allocator of --allocators (default
          glibc,hakmem,mimalloc,jemalloc,tcmalloc; an entry NAME=PATH.so adds
          any other) for --rounds rounds (default 3), each round in a new
          shuffled order, and prints the median wall time, CPU time and peak
          RSS with their ratios to the best. PROGRAM's stdout is discarded,
          or compared between allocators with --check-output. A difference in
          exit status (or output) is an error: exit status 1. Every run
          writes hakmem's statistics (HAKMEM_STATS=json), and the report says
          which rows hakmem served, with a warning if the hakmem row's runs
          made no malloc through it. --chart writes a PNG with gnuplot;
          --json FILE writes every run (wall, CPU, peak RSS, exit status,
          hakmem's processes and mallocs) and the medians; --seed N fixes the
          shuffled orders. Peers missing from the machine are named, with the
          Debian package that provides them, and left out.
options   prints hakmem's options (HAKMEM_* variables) with their defaults.

The library is found with --lib, then $HAKMEM_LIB, then next to this script
(build/libhakmem.so), then in ../lib (an installed PREFIX/bin/hakmem), then
in the directory make install baked in.
"""
import glob
import hashlib
import json
import os
import random
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

VERSION = "0.1.0"
LIBDIR = None  # make install writes the install's LIBDIR here

PEERS = {
    "mimalloc": ("/usr/lib/x86_64-linux-gnu/libmimalloc.so.2", "libmimalloc2.0"),
    "jemalloc": ("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2", "libjemalloc2"),
    "tcmalloc": ("/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4", "libtcmalloc-minimal4"),
}
DEFAULT_ALLOCATORS = "glibc,hakmem,mimalloc,jemalloc,tcmalloc"
TIERS = ("tiny", "mid", "large", "big")


class UsageError(Exception):
    pass


def die(msg, status=2):
    print("hakmem: " + msg, file=sys.stderr)
    sys.exit(status)


def find_lib(explicit=None):
    here = os.path.dirname(os.path.realpath(__file__))
    cands = []
    if explicit:
        cands.append(explicit)
    elif os.environ.get("HAKMEM_LIB"):
        cands.append(os.environ["HAKMEM_LIB"])
    else:
        cands += [os.path.join(here, "libhakmem.so"), os.path.join(here, "..", "lib", "libhakmem.so")]
        if LIBDIR:
            cands.append(os.path.join(LIBDIR, "libhakmem.so"))
        cands.append(os.path.join(here, "..", "build", "libhakmem.so"))
    for c in cands:
        if os.path.isfile(c):
            return os.path.realpath(c)
    die("libhakmem.so not found (looked at %s); build it with make, or give --lib" % ", ".join(cands))


def base_env():
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    return env


class Run:
    def __init__(self, code, wall, user, sys_, maxrss_kib):
        self.code, self.wall, self.user, self.sys, self.maxrss_kib = code, wall, user, sys_, maxrss_kib


def find_exec():
    """The launcher (tools/hakmem-exec.c): next to this script in build/, in
    LIBDIR/hakmem/ once installed. None: Python forks the program itself, and
    the peak RSS then includes the interpreter's (see hakmem-exec.c)."""
    here = os.path.dirname(os.path.realpath(__file__))
    cands = [os.path.join(here, "hakmem-exec"), os.path.join(here, "..", "lib", "hakmem", "hakmem-exec")]
    if LIBDIR:
        cands.append(os.path.join(LIBDIR, "hakmem", "hakmem-exec"))
    for c in cands:
        if os.access(c, os.X_OK):
            return c
    return None


_warned_exec = False


def spawn(argv, env, preload=None, stdin=None, stdout=None, stderr=None):
    """Runs argv to its end with preload (a library or None) in LD_PRELOAD for
    it alone. The status is the exit code, or 128 + the signal number."""
    global _warned_exec
    env = dict(env)
    env.pop("LD_PRELOAD", None)
    user_preload = os.environ.get("LD_PRELOAD")
    helper = find_exec()
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)  # the program gets ^C; we report
    try:
        if helper:
            if user_preload:
                env["LD_PRELOAD"] = user_preload
            r, w = os.pipe()
            try:
                p = subprocess.Popen([helper, str(w), preload or "-"] + list(argv), env=env, stdin=stdin,
                                     stdout=stdout, stderr=stderr, pass_fds=(w,))
            except OSError as e:
                die("cannot run %s: %s" % (helper, e.strerror), 127)
            finally:
                os.close(w)
            with os.fdopen(r) as f:
                line = f.read()
            p.wait()
            info = dict(kv.split("=", 1) for kv in line.split())
            if "status" not in info:
                die("%s reported nothing (exit %d)" % (helper, p.returncode), 125)
            return Run(int(info["status"]), float(info["wall"]), float(info["user"]), float(info["sys"]),
                       int(info["maxrss_kib"]))
        if not _warned_exec:
            print("hakmem: hakmem-exec not found: peak RSS includes Python's own", file=sys.stderr)
            _warned_exec = True
        if preload:
            env["LD_PRELOAD"] = preload + (":" + user_preload if user_preload else "")
        t0 = time.monotonic()
        try:
            p = subprocess.Popen(argv, env=env, stdin=stdin, stdout=stdout, stderr=stderr)
        except OSError as e:
            die("cannot run %s: %s" % (argv[0], e.strerror), 127)
        while True:
            try:
                _, st, ru = os.wait4(p.pid, 0)
                break
            except InterruptedError:
                continue
        wall = time.monotonic() - t0
        p.returncode = os.waitstatus_to_exitcode(st)
        code = p.returncode if p.returncode >= 0 else 128 - p.returncode
        return Run(code, wall, ru.ru_utime, ru.ru_stime, ru.ru_maxrss)
    finally:
        signal.signal(signal.SIGINT, old)


def split_command(args):
    if args and args[0] == "--":
        args = args[1:]
    if not args:
        raise UsageError("no PROGRAM given")
    return args


def human_bytes(n):
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return ("%d %s" % (n, unit)) if unit == "B" else ("%.1f %s" % (n, unit))
        n /= 1024


def group(n):
    return "{:,}".format(int(n))


# ----------------------------------------------------------------- hakmem run


def sum_stats(objs):
    """Numbers summed over processes; *_peak and resident by their maximum."""

    def merge(a, b, key=""):
        if isinstance(a, dict) and isinstance(b, dict):
            out = dict(a)
            for k, v in b.items():
                out[k] = merge(a[k], v, k) if k in a else v
            return out
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
            if key.endswith("_peak") or key in ("resident", "schema"):
                return max(a, b)
            return a + b
        return a

    total = {}
    for o in objs:
        total = merge(total, o) if total else json.loads(json.dumps(o))
    total.pop("pid", None)
    return total


def read_stats(d):
    out = []
    for name in sorted(os.listdir(d)):
        if not name.endswith(".json"):
            continue
        try:
            with open(os.path.join(d, name)) as f:
                out.append(json.load(f))
        except (OSError, ValueError) as e:
            print("hakmem run: ignoring %s: %s" % (name, e), file=sys.stderr)
    return out


def run_report(argv, run, procs, total, detail):
    w = sys.stderr.write
    w("hakmem run: %s (exit %d)\n" % (" ".join(shlex.quote(a) for a in argv), run.code))
    w("  wall %.3f s, CPU %.3f s user + %.3f s system, peak RSS %s\n"
      % (run.wall, run.user, run.sys, human_bytes(run.maxrss_kib * 1024)))
    if not procs:
        w("  no process wrote hakmem statistics: hakmem was not loaded (a statically linked or\n"
          "  set-user-ID program ignores LD_PRELOAD), or every process ended without exit()\n"
          "  (killed, _exit, exec)\n")
        return
    pids = ", ".join(str(p.get("pid")) for p in procs[:8]) + (", ..." if len(procs) > 8 else "")
    w("  processes with hakmem: %d (pid %s)\n" % (len(procs), pids))
    t = total.get("tier", {})
    per = "  ".join("%s %s" % (k, group(t.get(k, {}).get("mallocs", 0))) for k in TIERS)
    w("  allocations: %s (total %s, frees %s)\n" % (per, group(total.get("mallocs", 0)), group(total.get("frees", 0))))
    peak = max(p.get("committed_peak", 0) for p in procs)
    w("  memory: peak committed %s (largest process); at exit %s committed, %s in live blocks\n"
      % (human_bytes(peak), human_bytes(total.get("committed", 0)), human_bytes(total.get("allocated", 0))))
    os_ = total.get("os", {})
    dec = total.get("decay", {})
    pur = total.get("purge", {})
    w("  returned to the OS: %s decommitted (time-based: %s returns, %s; free pages of slabs in use: %s);"
      " %s of address space unmapped\n"
      % (human_bytes(os_.get("madvise", {}).get("bytes", 0)), group(dec.get("returns", 0)),
         human_bytes(dec.get("bytes", 0)), human_bytes(pur.get("bytes", 0)),
         human_bytes(os_.get("munmap", {}).get("bytes", 0))))
    w("  errors caught: %s\n" % group(total.get("errors", 0)))
    if not detail:
        return
    w("  per process:\n")
    for p in procs:
        w("    pid %-8s mallocs %-12s peak committed %-10s allocated at exit %s\n"
          % (p.get("pid"), group(p.get("mallocs", 0)), human_bytes(p.get("committed_peak", 0)),
             human_bytes(p.get("allocated", 0))))
    w("  size classes used (summed):\n    %-8s %-6s %14s %14s %12s\n" % ("size", "tier", "mallocs", "frees", "live"))
    classes = total.get("class", {})
    for size in sorted(classes, key=int):
        c = classes[size]
        if c.get("mallocs", 0) or c.get("frees", 0):
            w("    %-8s %-6s %14s %14s %12s\n" % (size, c.get("tier", ""), group(c.get("mallocs", 0)),
                                               group(c.get("frees", 0)), group(c.get("live", 0))))
    b = t.get("big", {})
    if b.get("mallocs", 0):
        w("    %-8s %-6s %14s %14s %12s\n" % (">large", "big", group(b["mallocs"]), group(b.get("frees", 0)),
                                           group(b.get("live", 0))))


def cmd_run(args):
    detail, json_out, lib, prof = False, None, None, False
    while args and args[0].startswith("-") and args[0] != "--":
        a = args.pop(0)
        if a == "--stats":
            detail = True
        elif a == "--prof":
            prof = True
        elif a == "--json":
            if not args:
                raise UsageError("--json needs a FILE")
            json_out = args.pop(0)
        elif a == "--lib":
            if not args:
                raise UsageError("--lib needs a path")
            lib = args.pop(0)
        else:
            raise UsageError("run: unknown option %s" % a)
    argv = split_command(args)
    lib = find_lib(lib)
    tmp = tempfile.mkdtemp(prefix="hakmem-run.")
    try:
        env = base_env()
        env["HAKMEM_STATS"] = "json"
        env["HAKMEM_STATS_FILE"] = os.path.join(tmp, "stats.%p.json")
        if prof:
            env["HAKMEM_PROF"] = "1"
            env["HAKMEM_PROF_LEAKS"] = "1"
            env.setdefault("HAKMEM_PROF_PREFIX", "hakmem-prof")
        run = spawn(argv, env, lib)
        procs = read_stats(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    total = sum_stats(procs) if procs else {}
    if json_out:
        with open(json_out, "w") as f:
            json.dump({"command": argv, "exit": run.code, "wall_s": run.wall, "user_s": run.user,
                       "sys_s": run.sys, "maxrss_kib": run.maxrss_kib, "processes": procs,
                       "total": total}, f, indent=1)
            f.write("\n")
    run_report(argv, run, procs, total, detail)
    if prof:
        prof_report(argv, env["HAKMEM_PROF_PREFIX"], procs)
    return run.code


def prof_report(argv, prefix, procs):
    """Names each process's last profile (the one written at exit) and how to read it."""
    w = sys.stderr.write
    files = []
    for p in procs:
        pid = p.get("pid")
        mine = sorted(glob.glob("%s.%s.*.heap" % (prefix, pid)))
        if mine:
            files.append(mine[-1])
    if not files:
        w("  heap profiles: none written\n")
        return
    w("  heap profiles (at exit): %s\n" % ", ".join(files))
    prog = shutil.which(argv[0]) or argv[0]
    w("  read one with: google-pprof --text %s %s\n" % (shlex.quote(prog), shlex.quote(files[0])))


# -------------------------------------------------------------- hakmem compare


def parse_allocators(spec, lib):
    chosen, missing = [], []
    for item in [s.strip() for s in spec.split(",") if s.strip()]:
        if "=" in item:
            name, path = item.split("=", 1)
            if not os.path.isfile(path):
                missing.append((name, path, None))
            else:
                chosen.append((name, os.path.realpath(path)))
        elif item == "glibc":
            chosen.append(("glibc", None))
        elif item == "hakmem":
            chosen.append(("hakmem", lib))
        elif item in PEERS:
            path, pkg = PEERS[item]
            if os.path.isfile(path):
                chosen.append((item, path))
            else:
                missing.append((item, path, pkg))
        else:
            raise UsageError("compare: unknown allocator %r (glibc, hakmem, %s, or NAME=PATH.so)"
                             % (item, ", ".join(PEERS)))
    names = [n for n, _ in chosen]
    if len(set(names)) != len(names):
        raise UsageError("compare: an allocator is named twice")
    return chosen, missing


def tail(path, n=8):
    try:
        with open(path, "rb") as f:
            lines = f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return ""
    return "\n".join("    | " + ln for ln in lines[-n:])


def chart(path, names, med, best):
    gp = shutil.which("gnuplot")
    data = tempfile.NamedTemporaryFile("w", suffix=".dat", delete=False)
    script = tempfile.NamedTemporaryFile("w", suffix=".gp", delete=False)
    try:
        for n in names:
            data.write("%s %s\n" % (n, " ".join("%.4f" % (med[n][i] / best[i] if best[i] > 0 else 1.0)
                                             for i in range(3))))
        data.close()
        script.write(
            'set terminal pngcairo size 900,480 noenhanced\nset output "%s"\n'
            'set title "hakmem compare: median over the rounds, relative to the best (lower is better)"\n'
            "set style data histograms\nset style histogram clustered gap 1\n"
            "set style fill solid 0.8 border -1\nset boxwidth 0.9\nset yrange [0:*]\n"
            'set ylabel "x best"\nset grid ytics\nset key top left\n'
            'plot "%s" using 2:xtic(1) title "wall", "" using 3 title "CPU", "" using 4 title "peak RSS"\n'
            % (path, data.name))
        script.close()
        r = subprocess.run([gp, script.name], stderr=subprocess.PIPE)
        if r.returncode != 0:
            die("gnuplot failed: %s" % r.stderr.decode("utf-8", "replace").strip(), 1)
    finally:
        for f in (data.name, script.name):
            try:
                os.unlink(f)
            except OSError:
                pass


def hakmem_served(stats_dir):
    """(processes that wrote hakmem statistics, their mallocs summed) of one run."""
    procs = read_stats(stats_dir)
    return len(procs), sum(int(p.get("mallocs", 0)) for p in procs)


def output_digest(path):
    """sha256 and size of a run's stdout; the file is removed (a program's output
    may be large, and only whether it matches matters)."""
    h, n = hashlib.sha256(), 0
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
            n += len(block)
    os.unlink(path)
    return h.hexdigest(), n


def cmd_compare(args):
    rounds, check, spec, chart_path, lib, seed, json_out = 3, False, DEFAULT_ALLOCATORS, None, None, None, None
    while args and args[0].startswith("-") and args[0] != "--":
        a = args.pop(0)
        if a in ("--rounds", "--allocators", "--chart", "--lib", "--seed", "--json"):
            if not args:
                raise UsageError("%s needs a value" % a)
            v = args.pop(0)
            if a in ("--rounds", "--seed"):
                try:
                    n = int(v)
                except ValueError:
                    n = -1
                if n < (1 if a == "--rounds" else 0):
                    raise UsageError("%s wants a whole number%s, not %r" % (a, " of at least 1" if a == "--rounds"
                                                                            else "", v))
                if a == "--rounds":
                    rounds = n
                else:
                    seed = n
            elif a == "--allocators":
                spec = v
            elif a == "--chart":
                chart_path = v
            elif a == "--json":
                json_out = v
            else:
                lib = v
        elif a == "--check-output":
            check = True
        else:
            raise UsageError("compare: unknown option %s" % a)
    argv = split_command(args)
    needs_hakmem = any(s.strip() == "hakmem" for s in spec.split(","))
    lib = find_lib(lib) if needs_hakmem else None
    chosen, missing = parse_allocators(spec, lib)
    for name, path, pkg in missing:
        how = ("apt-get install %s" % pkg) if pkg else "check the path"
        print("hakmem compare: %s is missing (%s): %s; left out" % (name, path, how), file=sys.stderr)
    if not chosen:
        die("compare: no allocator left to run", 2)
    if chart_path and not shutil.which("gnuplot"):
        die("compare: --chart needs gnuplot (Debian: apt-get install gnuplot-nox)", 2)
    names = [n for n, _ in chosen]
    rng = random.Random(seed)
    runs = {n: [] for n in names}
    base = base_env()
    tmp = tempfile.mkdtemp(prefix="hakmem-compare.")
    cmdline = " ".join(shlex.quote(a) for a in argv)
    ref = None  # (allocator, status, output digest) of the first run
    failures = []
    try:
        for r in range(rounds):
            order = list(chosen)
            rng.shuffle(order)
            progress = []
            for name, path in order:
                out_path = os.path.join(tmp, "%s.%d.out" % (name, r))
                err_path = os.path.join(tmp, "%s.%d.err" % (name, r))
                # Every run, whatever its allocator, writes hakmem's statistics
                # if hakmem is in it: the proof that hakmem served its own
                # rows, and that it was in none of the others.
                stats_dir = os.path.join(tmp, "stats.%s.%d" % (name, r))
                os.mkdir(stats_dir)
                env = dict(base, HAKMEM_STATS="json", HAKMEM_STATS_FILE=os.path.join(stats_dir, "%p.json"))
                env.pop("HAKMEM_STATS_SIGNAL", None)
                with open(err_path, "wb") as err, open(os.devnull, "rb") as nul:
                    out = open(out_path, "wb") if check else subprocess.DEVNULL
                    try:
                        run = spawn(argv, env, path, stdin=nul, stdout=out, stderr=err)
                    finally:
                        if check:
                            out.close()
                output = output_digest(out_path) if check else None
                nproc, mallocs = hakmem_served(stats_dir)
                shutil.rmtree(stats_dir, ignore_errors=True)
                code = run.code
                runs[name].append({"round": r + 1, "wall_s": run.wall, "user_s": run.user, "sys_s": run.sys,
                                   "maxrss_kib": run.maxrss_kib, "exit": code, "hakmem_processes": nproc,
                                   "hakmem_mallocs": mallocs})
                progress.append("%s %.2fs" % (name, run.wall))
                if ref is None:
                    ref = (name, code, output, err_path)
                else:
                    if code != ref[1]:
                        t = tail(err_path)
                        failures.append("exit status differs: %s exited %d, %s exited %d (round %d)%s"
                                        % (ref[0], ref[1], name, code, r + 1,
                                           ("; %s's stderr ends:\n%s" % (name, t)) if t else ""))
                    if check and output[0] != ref[2][0]:
                        failures.append("stdout differs: %s wrote %d bytes, %s wrote %d bytes (round %d)"
                                        % (ref[0], ref[2][1], name, output[1], r + 1))
            print("hakmem compare: round %d/%d: %s" % (r + 1, rounds, ", ".join(progress)), file=sys.stderr)
            if failures:
                break
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    def med(n, key):
        return statistics.median(x[key] for x in runs[n])

    medians = {n: (med(n, "wall_s"), statistics.median(x["user_s"] + x["sys_s"] for x in runs[n]),
                   med(n, "maxrss_kib") / 1024.0) for n in names}
    if json_out:
        with open(json_out, "w") as f:
            json.dump({"command": argv, "rounds": rounds, "check_output": check, "seed": seed,
                       "allocators": [{"name": n, "library": p, "runs": runs[n],
                                       "median": dict(zip(("wall_s", "cpu_s", "maxrss_mib"), medians[n]))}
                                      for n, p in chosen],
                       "missing": [{"name": n, "library": p, "package": k} for n, p, k in missing],
                       "failures": failures}, f, indent=1)
            f.write("\n")
    if failures:
        for f in failures:
            print("hakmem compare: FAILED: " + f, file=sys.stderr)
        print("hakmem compare: the allocators do not agree on %s; no timings reported" % cmdline, file=sys.stderr)
        return 1
    best = tuple(min(medians[n][i] for n in names) for i in range(3))

    def ratio(x, b):
        return "%.2fx" % (x / b) if b > 0 else ("1.00x" if x == 0 else "n/a")

    status = runs[names[0]][0]["exit"]
    print("hakmem compare: %s (exit %d)" % (cmdline, status))
    print("median of %d round%s, each in a new shuffled order; ratio to the best in brackets (lower is better)"
          % (rounds, "" if rounds == 1 else "s"))
    print()
    print("| allocator | wall s | CPU s | peak RSS MiB |")
    print("|---|---:|---:|---:|")
    for n in names:
        w, c, m = medians[n]
        print("| %s | %.3f (%s) | %.3f (%s) | %.1f (%s) |"
              % (n, w, ratio(w, best[0]), c, ratio(c, best[1]), m, ratio(m, best[2])))
    print()
    print(served_summary(names, runs))
    if missing:
        print()
        print("not measured (missing): " + ", ".join(n for n, _, _ in missing))
    if chart_path:
        chart(chart_path, names, {n: medians[n] for n in names}, best)
        print()
        print("chart: %s" % chart_path)
    return 0


def served_summary(names, runs):
    """Which rows hakmem served, from the statistics every run wrote: a row
    named hakmem without them was not hakmem's, a row of another name with
    them was."""
    lines, others = [], []
    for n in names:
        served = [x for x in runs[n] if x["hakmem_processes"] and x["hakmem_mallocs"]]
        if n == "hakmem" and len(served) < len(runs[n]):
            lines.append("hakmem: WARNING: in %d of %d rounds no process wrote hakmem statistics with a malloc: "
                         "hakmem was not loaded (a statically linked or set-user-ID program ignores LD_PRELOAD) "
                         "or every process ended without exit(), so this row may not be hakmem's"
                         % (len(runs[n]) - len(served), len(runs[n])))
        elif served:
            lines.append("%s: hakmem served %s (%s mallocs in %s process(es), median per round)%s"
                         % (n, "every round" if len(served) == len(runs[n]) else
                            "%d of %d rounds" % (len(served), len(runs[n])),
                            group(statistics.median(x["hakmem_mallocs"] for x in runs[n])),
                            group(statistics.median(x["hakmem_processes"] for x in runs[n])),
                            "" if n == "hakmem" else ": a hakmem library, or the program loads hakmem itself"))
        else:
            others.append(n)
    if others:
        lines.append("%s: no hakmem statistics (not hakmem)" % ", ".join(others))
    return "hakmem's statistics (HAKMEM_STATS=json in every run):\n" + "\n".join("  " + ln for ln in lines)


# -------------------------------------------------------------- hakmem options


def cmd_options(args):
    fmt, lib = "1", None
    while args:
        a = args.pop(0)
        if a == "--markdown":
            fmt = "markdown"
        elif a == "--lib" and args:
            lib = args.pop(0)
        else:
            raise UsageError("options: unknown argument %s" % a)
    lib = find_lib(lib)
    true = shutil.which("true") or "/bin/true"
    env = {k: v for k, v in base_env().items() if not k.startswith("HAKMEM_")}
    env.update(LD_PRELOAD=lib, HAKMEM_HELP=fmt)
    r = subprocess.run([true], env=env, stderr=subprocess.PIPE)
    text = r.stderr.decode("utf-8", "replace")
    if not text.strip():
        die("options: %s printed nothing under HAKMEM_HELP (is it hakmem's library?)" % lib, 1)
    sys.stdout.write(text)
    return 0


def main(argv):
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(__doc__.strip())
        return 0 if argv else 2
    if argv[0] == "--version":
        print("hakmem " + VERSION)
        return 0
    cmds = {"run": cmd_run, "compare": cmd_compare, "options": cmd_options}
    if argv[0] not in cmds:
        print("hakmem: unknown command %r (run, compare, options; --help)" % argv[0], file=sys.stderr)
        return 2
    try:
        return cmds[argv[0]](list(argv[1:]))
    except UsageError as e:
        print("hakmem: %s (hakmem --help)" % e, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
