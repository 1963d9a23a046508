#!/usr/bin/env python3
"""bench.py — hakmem's side-by-side allocator comparison (`make bench`).

Builds the benchmark programs of bench/ into build-bench/, runs every
workload with glibc, hakmem, mimalloc, jemalloc and tcmalloc through
LD_PRELOAD, interleaved (every round in a new, seeded order), several runs
each, hakmem twice per round as an A/A noise control, plus one run per
allocator of most workloads under callgrind (instructions per operation,
which the machine's noise barely moves), plus one short run per allocator
under `strace -f -c` (hakmem's also with HAKMEM_STATS=1), then the test
suite's real programs (Python, sqlite3, redis, g++, git, sort; rows real_*)
through `build/hakmem compare`, min(runs, 3) rounds each, and writes
docs/BENCHMARKS.md, docs/bench_table.md and docs/bench.png. Every benchmark
checks its own results; a run that fails its check, crashes, times out or
outgrows the memory limit shows as FAILED, never as a number. hakmem runs
must prove, through hak_owns, that hakmem served their blocks (stress-ng
runs: through a 'hakmem-stats:' line with mallocs > 0; real programs: through
the statistics every compare run writes, with mallocs > 0 in every hakmem
round and none in the peers'). A real program that is missing (and cannot be
installed) is skipped, and the report says so. `--allocators
hakmem,hakmem_prof` measures the heap profiler's cost: hakmem_prof is hakmem
with HAKMEM_PROF=1 at its default rate, writing its profiles into
build-bench/tmp/prof/ (the real rows run without it).

usage: scripts/bench.py [--quick] [--runs N] [--workloads a,b,c]
                        [--allocators a,b,c] [--no-strace] [--no-callgrind] [--readme|--no-readme]
                        [--build-only] [--self-test] [--help]
environment: CC (default cc), HAKMEM_LIB (default build/libhakmem.so),
             BENCH_TIMEOUT (seconds per run, default 120),
             BENCH_SEED (the order of the runs within each round, default 1),
             BENCH_MAX_RSS_MIB (a run's resident-set limit, default half the RAM);
             HAKMEM_* settings (e.g. HAKMEM_THP=0) reach every run, and the report says so
"""
import argparse
import datetime
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import measure, realprog, report, workloads  # noqa: E402
from benchlib.measure import AA, FLOOR, Ctx, say  # noqa: E402
from benchlib import parse, stats  # noqa: E402
from benchlib.stats import Run, summarise_all  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
REF = "mimalloc"  # ratios are relative to this one (the first allocator if it is missing)


def fail_usage(msg):
    print(f"bench.py: {msg}", file=sys.stderr)
    sys.exit(2)


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="scripts/bench.py", usage=argparse.SUPPRESS, add_help=False,
        formatter_class=argparse.RawDescriptionHelpFormatter, description=__doc__.split("\n", 2)[2].rstrip(),
        epilog=f"workloads:  {' '.join(workloads.ALL_NAMES)} (thread_scale = all four thread counts, "
               f"stress_ng = both stress-ng rows, real = the real programs, synthetic = all but them)\n"
               f"allocators: {' '.join(measure.ALLOCATORS)} (and {measure.PROF}: hakmem with HAKMEM_PROF=1)")
    p.add_argument("--quick", action="store_true", help="short runs (make bench-quick), 2 runs unless --runs")
    p.add_argument("--runs", type=int, help="runs per allocator and workload (default 7, quick 2)")
    p.add_argument("--workloads", default=" ".join(workloads.ALL_NAMES), help="comma-separated list")
    p.add_argument("--allocators", default=" ".join(measure.ALLOCATORS), help="comma-separated list")
    p.add_argument("--no-strace", dest="strace", action="store_false", help="no syscall tables")
    p.add_argument("--no-callgrind", dest="callgrind", action="store_false", help="no instruction counts")
    p.add_argument("--readme", dest="readme", action="store_const", const="yes", default="auto",
                   help="update README's block (default: after full runs only)")
    p.add_argument("--no-readme", dest="readme", action="store_const", const="no", help="leave README alone")
    p.add_argument("--build-only", action="store_true", help="build the programs and stop")
    p.add_argument("--self-test", action="store_true", help="check the harness's own functions and stop")
    p.add_argument("-h", "--help", action="help", help="this text")
    args = p.parse_args(argv)
    if args.runs is None:
        args.runs = 2 if args.quick else 7
    if args.runs < 1:
        fail_usage("--runs must be a positive integer")
    try:
        args.workloads = workloads.expand(args.workloads)
    except ValueError as e:
        fail_usage(str(e))
    args.allocators = args.allocators.replace(",", " ").split()
    for a in args.allocators:
        if a not in measure.ALLOCATORS + [measure.PROF]:
            fail_usage(f"unknown allocator '{a}' (known: {' '.join(measure.ALLOCATORS + [measure.PROF])})")
    return args


def env_int(name, default):
    value = os.environ.get(name, "")
    if value == "":
        return default
    if not value.isdigit():
        fail_usage(f"{name} must be a number")
    return int(value)


def mem_total_kb():
    try:
        m = re.search(r"^MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text(), re.M)
        return int(m.group(1)) if m else None
    except OSError:
        return None


def make_ctx(args):
    lib = Path(os.environ.get("HAKMEM_LIB") or ROOT / "build/libhakmem.so")
    total = mem_total_kb() or 8 << 20
    # Half the RAM by default: a run past it would soon have the OOM killer
    # choose a victim, maybe not the benchmark.
    max_rss_mib = env_int("BENCH_MAX_RSS_MIB", total // 2 // 1024)
    return Ctx(root=ROOT, out=ROOT / "build-bench", cc=os.environ.get("CC") or "cc",
               timeout=env_int("BENCH_TIMEOUT", 120), seed=env_int("BENCH_SEED", 1),
               hakmem_lib=lib if lib.is_absolute() else ROOT / lib, max_rss_kb=max_rss_mib * 1024,
               mode="quick" if args.quick else "full", is_root=os.geteuid() == 0,
               have_apt=shutil.which("apt-get") is not None)


def check_tools(ctx, args, wls):
    """Install or give up the optional tools; -> (workloads kept, strace?, callgrind?, gnuplot?)."""
    sng = [w for w in wls if w.kind == workloads.STRESS_NG]
    if sng and not measure.ensure_tool(ctx, "stress-ng", "stress-ng",
                                       f"rows {', '.join(w.name for w in sng)} not run"):
        wls = [w for w in wls if w.kind != workloads.STRESS_NG]
    do_strace = args.strace and measure.ensure_tool(ctx, "strace", "strace", "no syscall table")
    do_cg = args.callgrind and measure.ensure_tool(ctx, "valgrind", "valgrind", "no instruction counts")
    chart = measure.ensure_tool(ctx, "gnuplot", "gnuplot-nox", "docs/bench.png not drawn")
    return wls, do_strace, do_cg, chart


# ---------------------------------------------------------------- the passes

def measured_runs(ctx, wls, runs):
    members = measure.round_members(ctx.allocs)
    results = []
    say(f"mode={ctx.mode} runs={runs} allocators: {' '.join(ctx.allocs)}; workloads ({len(wls)}): "
        f"{' '.join(w.name for w in wls)}")
    for i, w in enumerate(wls, 1):
        say(f"workload {i}/{len(wls)}: {w.name} — {w.command(ctx.mode)}")
        for k in range(1, runs + 1):
            for a in measure.round_order(members, ctx.seed, i, k):
                results.append(measure.run_one(ctx, w, a, k, runs))
            if w.name == "random_mixed":
                results.append(measure.run_one(ctx, workloads.FLOOR, FLOOR, k, runs))
    return results


def real_pass(ctx, reals, runs):
    """The real programs, each through one hakmem compare -> [RealRow]."""
    if not reals:
        return []
    ctx.compare = realprog.hakmem_command(ctx)
    if ctx.compare is None:
        msg = "build/hakmem is missing and 'make build/hakmem build/hakmem-exec' failed: real programs not run"
        say(f"WARNING: {msg}")
        ctx.notes.append(msg)
        return [realprog.RealRow(r.name, skipped="build/hakmem missing") for r in reals]
    rounds = min(runs, workloads.REAL_ROUNDS)
    return [realprog.run_row(ctx, r, rounds, i) for i, r in enumerate(reals, 1)]


def trace_pass(ctx, wls, do_strace):
    syscalls, hakstats = {}, {}
    for w in wls:
        for a in ctx.allocs:
            if not do_strace and a != "hakmem":
                continue
            counts, status, lines = measure.trace_run(ctx, w, a, do_strace)
            if counts is not None:
                syscalls[(w.name, a)] = (counts, status)
            if lines:
                hakstats[w.name] = lines
    return syscalls, hakstats


def callgrind_pass(ctx, wls):
    instructions = {}
    for w in wls:
        if not w.callgrind:
            continue
        for a in ctx.allocs + ([FLOOR] if w.name == "random_mixed" else []):
            wl = workloads.FLOOR if a == FLOOR else w
            instructions[(w.name, a)] = measure.callgrind_run(ctx, wl, a)
    return instructions


# ---------------------------------------------------------------- setup facts

def _cmd_out(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT).stdout.strip()
    except OSError:
        return ""


def pkgver(pkg):
    return _cmd_out(["dpkg-query", "-W", "-f=${Version}", pkg]) or "?"


def setup_facts(ctx):
    cpu = re.search(r"^Model name:\s*(.*)$", _cmd_out(["lscpu"]), re.M)
    osname = re.search(r'^PRETTY_NAME="?([^"\n]*)"?', Path("/etc/os-release").read_text(), re.M) \
        if Path("/etc/os-release").exists() else None
    commit = _cmd_out(["git", "rev-parse", "--short", "HEAD"]) or "no-commit"
    if _cmd_out(["git", "status", "--porcelain"]):
        commit += "-dirty"
    hakver = re.search(r'^#define HAK_VERSION "(.*)"', (ROOT / "include/hakmem.h").read_text(), re.M) \
        if (ROOT / "include/hakmem.h").exists() else None
    hakver = hakver.group(1) if hakver else "?"
    versions = {
        "glibc": f"glibc {pkgver('libc6')} (no preload)",
        "hakmem": f"hakmem {hakver} at {commit} ({ctx.rel(ctx.hakmem_lib)})",
        "mimalloc": f"mimalloc {pkgver('libmimalloc2.0')} ({measure.PEERS['mimalloc'][0]})",
        "jemalloc": f"jemalloc {pkgver('libjemalloc2')} ({measure.PEERS['jemalloc'][0]})",
        "tcmalloc": f"tcmalloc (gperftools) {pkgver('libtcmalloc-minimal4')} ({measure.PEERS['tcmalloc'][0]})",
    }
    versions[measure.PROF] = versions["hakmem"] + " with HAKMEM_PROF=1"
    total = mem_total_kb()
    return {
        "cpu": cpu.group(1).strip() if cpu else "?", "ncpu": os.cpu_count(),
        "mem": f"{total / 1048576:.1f} GiB" if total else "?", "kernel": f"{platform.system()} {platform.release()}",
        "os": osname.group(1) if osname else "?", "commit": commit,
        "when": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "ccver": _cmd_out([ctx.cc, "--version"]).split("\n")[0], "cflags": " ".join(measure.CFLAGS_BENCH),
        "versions": versions,
        # they change what hakmem does, so a report made with them must say so
        "hakenv": " ".join(f"{k}={v}" for k, v in sorted(os.environ.items())
                           if k.startswith("HAKMEM_") and k not in ("HAKMEM_LIB", "HAKMEM_STATS")),
    }


# ---------------------------------------------------------------- self-test
# The pure functions, on fixed inputs (make test runs this): no build, no
# allocator, no timing.

def _st_stats(check):
    check(stats.median([3, 1, 2]) == 2 and stats.median([4, 1, 3, 2]) == 2.5, "median of odd and even counts")
    check(stats.median([]) is None, "median of nothing")
    runs = [Run("w", "a", str(k), True, ops_per_sec=v, rss_kb=r, user=1.0, sys=0.5)
            for k, (v, r) in enumerate([(10.0, 100), (30.0, 300), (20.0, 200)], 1)]
    s = stats.summarise(runs)
    check((s.ok, s.median, s.lo, s.hi, s.rss_kb, s.n_ok, s.n) == (True, 20.0, 10.0, 30.0, 200, 3, 3),
          f"summary median/min/max/rss: {s}")
    check(s.sys_per_kop is None, "no operation count: no system time per operation")
    per = stats.summarise([Run("w", "a", str(k), True, ops_per_sec=1.0, sys=t, ops=n)
                           for k, (t, n) in enumerate([(0.5, 1e6), (0.9, 3e6), (0.2, 1e6)], 1)])
    check(per.sys_per_kop == 300.0, f"median of the runs' system time per 1,000 operations: {per.sys_per_kop}")
    bad = stats.summarise(runs + [Run("w", "a", "4", False, why="crash")])
    check(not bad.ok and bad.median is None and (bad.n_ok, bad.n) == (3, 4), "one failed run fails the cell")
    check(stats.fmt_us(48.93) == "48.9" and stats.fmt_us(250.4) == "250" and stats.fmt_us(None) == stats.DASH,
          "fmt_us")
    check(stats.fmt_ops(53_410_000) == "53.41M" and stats.fmt_ops(4012) == "4.0k" and stats.fmt_ops(179.46) ==
          "179.5" and stats.fmt_ops(None) == stats.DASH, "fmt_ops")
    check(stats.ratio(3, 2) == "1.50x" and stats.ratio(1, 0) == stats.DASH, "ratio")
    check(stats.gap_percent(100, 128) == 28 and stats.gap_percent(128, 100) == 28, "A/A gap")


def _st_shuffle(check):
    members = measure.round_members(["glibc", "hakmem", "mimalloc"])
    check(members == ["glibc", "hakmem", "mimalloc", AA], "hakmem's round has its A/A twin")
    ctx = Ctx(root=ROOT, out=Path(tempfile.mkdtemp()), cc="cc", timeout=1, seed=1, hakmem_lib=Path("x.so"),
              max_rss_kb=1, allocs=["hakmem", measure.PROF, "glibc"])
    e = measure.alloc_env(ctx, measure.PROF)
    check(e.get("HAKMEM_PROF") == "1" and (ctx.out / "tmp/prof").is_dir() and "HAKMEM_PROF" not in
          measure.alloc_env(ctx, "hakmem") and measure.preload(ctx, measure.PROF) == "x.so", "hakmem_prof's run")
    check(realprog.real_allocs(ctx) == ["hakmem", "glibc"], "the real rows run without hakmem_prof")
    shutil.rmtree(ctx.out)
    check(measure.round_members(["glibc"]) == ["glibc"], "no twin without hakmem")
    a = measure.round_order(members, 1, 1, 1)
    check(a == measure.round_order(members, 1, 1, 1), "same seed, same order")
    check(sorted(a) == sorted(members), "the order is a permutation of the round")
    orders = {tuple(measure.round_order(members, 1, 1, k)) for k in range(1, 8)}
    check(len(orders) > 1, "the order changes from round to round")
    check({tuple(measure.round_order(members, s, 1, 1)) for s in range(1, 8)} != {tuple(a)}, "the seed matters")


def _st_parse(check):
    out = ("noise\nRESULT workload=random_mixed ops=3000000 seconds=0.100000 ops_per_sec=30000000.0 check=ok "
           "hakmem_owned=104/104 extra=threads=1,mallocs=1501024\n")
    r = parse.parse_result(out)
    check(r and r["ops_per_sec"] == 3e7 and r["ops"] == 3e6 and r["hakmem_owned"] == "104/104" and
          r["extra_kv"] == {"threads": "1", "mallocs": "1501024"} and parse.result_ok(r), f"RESULT line: {r}")
    check(parse.parse_result("nothing\n") is None, "no RESULT line")
    check(not parse.result_ok(parse.parse_result("RESULT workload=x check=FAIL\n")), "check=FAIL is no result")
    check(not parse.result_ok(parse.parse_result("RESULT workload=x ops_per_sec=nan? check=ok\n")),
          "a malformed rate is no result")
    check(parse.parse_owned("18/18") == (18, 18) and parse.parse_owned("x") is None, "hakmem_owned")
    i = parse.parse_info("maxrss_kb=2896 status=0 wall=1.007 user=0.50 sys=0.25\n")
    check(i == {"status": "0", "maxrss_kb": 2896, "wall": 1.007, "user": 0.5, "sys": 0.25}, f"runwrap info: {i}")
    check(parse.parse_info("")["maxrss_kb"] is None, "empty runwrap info")
    strace = ("% time     seconds  usecs/call     calls    errors syscall\n"
              "------ ----------- ----------- --------- --------- ----------------\n"
              " 40.00    0.000040           2        16           mmap\n"
              " 10.00    0.000010           1         3         1 munmap\n"
              " 10.00    0.000010           1         7           futex\n"
              "------ ----------- ----------- --------- --------- ----------------\n"
              "100.00    0.000100           1        26         1 total\n")
    check(parse.parse_strace(strace) == {"mmap": 16, "munmap": 3, "futex": 7}, "strace -c table")
    sng = ("stress-ng: info:  [7845] dispatching hogs: 1 malloc\n"
           "stress-ng: metrc: [7845] stressor       bogo ops real time  usr time  sys time   bogo ops/s     bogo ops/s\n"
           "stress-ng: metrc: [7845] malloc           117537      2.04      0.63      2.85     57532.40       33787.67\n")
    m = parse.parse_stress_ng(sng)
    check(m == {"bogo_ops": 117537, "real_s": 2.04, "usr_s": 0.63, "sys_s": 2.85, "ops_per_sec": 57532.40},
          f"stress-ng metrics: {m}")
    check(parse.parse_stress_ng("stress-ng: info: [1] successful run completed\n") is None, "no metrics row")
    err = "x\nhakmem-stats: mallocs=248 frees=86\nhakmem-stats: mallocs=1000 frees=2\n"
    check(parse.stats_mallocs(err) == 1000 and parse.stats_mallocs("none\n") is None, "hakmem-stats mallocs")
    check(parse.callgrind_total("==1== Collected : 161201234\n") == 161201234, "callgrind total")


def _st_workloads(check):
    check(workloads.expand("random_mixed,thread_scale") ==
          ["random_mixed", "thread_scale_1", "thread_scale_2", "thread_scale_4", "thread_scale_8"], "aliases")
    check(workloads.expand("stress_ng large_heap") == ["stress_ng_threads", "stress_ng_procs", "large_heap"],
          "stress_ng alias")
    try:
        workloads.expand("nope")
        check(False, "an unknown workload is refused")
    except ValueError:
        pass
    for w in workloads.TABLE:
        check(set(w.args) == set(workloads.MODES), f"{w.name} has every mode")
        check(w.kind == workloads.STRESS_NG or w.binary in workloads.PROGRAMS, f"{w.name}'s program is built")
    reals = [r.name for r in workloads.REAL]
    check(workloads.expand("real") == reals and len(reals) == 6, "the real alias")
    check(not set(workloads.expand("synthetic")) & set(reals), "synthetic has no real program")
    check(set(workloads.expand("random_mixed real_git")) == {"random_mixed", "real_git"}, "one of each kind")
    for r in workloads.REAL:
        check(set(r.args) == {"full", "quick"} and all(len(n) == 2 for n in r.needs), f"{r.name}'s modes and needs")
        check("{" not in r.command("full") + r.setup_command("quick"), f"{r.name}'s shown command has no placeholder")


def _compare_json(hak_mallocs=(500, 600, 700), peer_procs=0, failures=()):
    runs = lambda m, p: [{"round": k, "wall_s": w, "user_s": 0.5, "sys_s": 0.25, "maxrss_kib": 2048 * k, "exit": 0,
                          "hakmem_processes": p, "hakmem_mallocs": mm} for k, (w, mm) in
                         enumerate(zip((1.0, 3.0, 2.0), m), 1)]
    return {"rounds": 3, "failures": list(failures), "allocators": [
        {"name": "glibc", "runs": runs((0, 0, 0), peer_procs)},
        {"name": "hakmem", "runs": runs(hak_mallocs, 2)}]}


def _st_real(check):
    cells, why = realprog.judge(_compare_json(), ["glibc", "hakmem"])
    h = cells.get("hakmem")
    check(why == "" and h and h.ok and (h.wall, h.lo, h.hi, h.cpu, h.rss_kb, h.mallocs, h.procs, h.n) ==
          (2.0, 1.0, 3.0, 0.75, 4096, 600, 2, 3), f"a good compare: {why} {h}")
    cells, why = realprog.judge(_compare_json(hak_mallocs=(500, 0, 700)), ["glibc", "hakmem"])
    check("hakmem did not serve" in why and not cells["hakmem"].ok and cells["glibc"].ok, f"mallocs=0: {why}")
    cells, why = realprog.judge(_compare_json(peer_procs=1), ["glibc", "hakmem"])
    check("glibc" in why and not cells["glibc"].ok, f"a peer with hakmem in it: {why}")
    cells, why = realprog.judge(_compare_json(failures=["stdout differs: x"]), ["glibc", "hakmem"])
    check(cells == {} and "stdout differs" in why, f"compare's failure: {why}")
    cells, why = realprog.judge(_compare_json(), ["glibc", "hakmem", "mimalloc"])
    check("mimalloc: 0 of 3 rounds" in why, f"an allocator without its rounds: {why}")
    bad = _compare_json()
    bad["allocators"][0]["runs"][1]["exit"] = 139
    check("exit status 139" in realprog.judge(bad, ["glibc", "hakmem"])[1], "a crash in one round")


def _st_report(check):
    check(report.md_table(["a", "b"], "lr", [[1, "x"]]) == ["| a | b |", "|---|---:|", "| 1 | x |"], "md_table")
    wl = [workloads.BY_NAME["random_mixed"], workloads.BY_NAME["large_heap"]]
    runs = [Run("random_mixed", "glibc", "1", True, ops_per_sec=2e7, rss_kb=2048, user=1, sys=0),
            Run("random_mixed", "mimalloc", "1", True, ops_per_sec=4e7, rss_kb=4096, user=1, sys=0),
            Run("large_heap", "glibc", "1", False, ops_per_sec=5e6, why="killed by SIGKILL"),
            Run("large_heap", "mimalloc", "1", True, ops_per_sec=1e6, rss_kb=2 << 20, user=2.5, sys=1.25,
                ops=5e6)]
    d = report.Data(workloads=wl, allocs=["glibc", "mimalloc"], ref="mimalloc", runs_per=1, mode="quick", seed=1,
                    timeout=120, max_rss_mib=1000, summary=summarise_all(runs), members=["glibc", "mimalloc"],
                    setup={"cpu": "cpu", "ncpu": 2, "commit": "abc", "when": "now"}, verdict="v")
    t = "\n".join(report.summary_table(d))
    check("| random_mixed | 20.00M (0.50x) | 40.00M (1.00x) |" in t, "summary row with ratios")
    check("| large_heap | **FAILED** | 1.00M (1.00x) |" in t and "5.00M" not in t, "a failed run shows FAILED")
    check("| large_heap | **FAILED** | 2.50 / 1.25 |" in t, "user / sys row of the heavy workloads")
    check("| large_heap | **FAILED** | 250 |" in t, "system time per 1,000 operations: 1.25 s over 5M operations")
    check("| random_mixed | 2.0 | 4.0 |" in t, "peak RSS row")
    readme = "top\n<!-- BENCH:BEGIN -->\nold\n<!-- BENCH:END -->\nend"
    check(report.readme_block(readme, ["T"], False) == "top\n<!-- BENCH:BEGIN -->\n\nT\n\n<!-- BENCH:END -->\nend",
          "README block")
    check(report.readme_block("no markers", ["T"], False) is None, "README without markers")
    # the real programs' tables: wall and RSS with ratios, FAILED, skipped
    good = realprog.judge(_compare_json(), ["glibc", "hakmem"])[0]
    rows = [realprog.RealRow("real_sqlite", 3, good),
            realprog.RealRow("real_git", 3, {"glibc": good["glibc"]}, why="hakmem: x"),
            realprog.RealRow("real_redis", skipped="redis-server not installed")]
    rows[1].cells["hakmem"] = realprog.RealCell(ok=False)
    d.ref, d.allocs, d.real, d.real_progs = "glibc", ["glibc", "hakmem"], rows, workloads.REAL
    t = "\n".join(report.summary_table(d))
    check("| real_sqlite | 2.00 (1.00x) | 2.00 (1.00x) |" in t and "| real_sqlite | 4.00 (1.00x) | 4.00 (1.00x) |"
          in t, f"real rows: wall and RSS with ratios: {t}")
    check("| real_git | 2.00 (1.00x) | **FAILED** |" in t, "a failed real cell")
    check("Not run: real_redis (redis-server not installed)." in t and "| real_redis |" not in t, "a skipped row")
    v = report.verdict([], ["glibc", "hakmem"], "build/libhakmem.so", rows)
    check(v.startswith("**hakmem verification FAILED**"), f"a real row hakmem did not serve fails the verdict: {v}")
    v = report.verdict([], ["glibc", "hakmem"], "build/libhakmem.so", rows[:1])
    check(v.startswith("hakmem served its runs: verified by the statistics") and "each of the 3 hakmem runs" in v,
          f"the real programs' verdict: {v}")
    d.setup.update(mem="1 GiB", os="os", kernel="k", ccver="cc", cflags="-O2", versions={a: a for a in d.allocs})
    md = report.benchmarks_md(d, report.summary_table(d))
    check("## Real programs" in md and "### real_sqlite" in md and "| hakmem | 2.000 | 1.000 | 3.000 | 1.00x |"
          in md and "Not run: redis-server not installed." in md, "the Real programs section")


def self_test():
    failed = []

    def check(cond, what):
        if not cond:
            failed.append(what)
            print(f"self-test FAILED: {what}", file=sys.stderr)

    for part in (_st_stats, _st_shuffle, _st_parse, _st_workloads, _st_real, _st_report):
        part(check)
    print(f"bench.py self-test: {'FAILED' if failed else 'ok'} ({len(failed)} failure(s))", file=sys.stderr)
    return 1 if failed else 0


# ---------------------------------------------------------------- outputs

def draw_chart(ctx, d):
    (ctx.out / "plot_ratio.dat").write_text(report.chart_data(d, report.ratio_value(d)))
    (ctx.out / "plot_rss.dat").write_text(report.chart_data(d, report.rss_value(d)))
    # gnuplot strings are single-quoted here: keep quotes out of the title
    ttl = (f"hakmem vs peers — {d.mode} run, {d.runs_per} run(s) each, commit {d.setup['commit']}, "
           f"{d.setup['cpu']} x{d.setup['ncpu']}").replace("'", "")
    expr = (f"ratiofile='{ctx.out}/plot_ratio.dat'; rssfile='{ctx.out}/plot_rss.dat'; "
            f"outfile='{ROOT}/docs/bench.png'; ncols={len(d.allocs) + 1}; nrows={len(d.workloads)}; "
            f"cols='{' '.join(d.allocs)}'; ref='{d.ref}'; ttl='{ttl}'; ymin={report.ratio_floor(d)}")
    with open(ctx.out / "logs/gnuplot.log", "w") as log:
        rc = subprocess.run(["gnuplot", "-e", expr, str(ROOT / "scripts/bench_plot.gp")], stderr=log).returncode
    say("wrote docs/bench.png" if rc == 0 else "WARNING: gnuplot failed (see build-bench/logs/gnuplot.log)")


def update_readme(mode, quick, table, chart):
    readme = ROOT / "README.md"
    if not readme.exists():
        return
    new = report.readme_block(readme.read_text(), table, chart)
    if new is None:
        return
    if mode == "yes" or (mode == "auto" and not quick):
        readme.write_text(new)
        say("updated the benchmark block of README.md")
    else:
        say("README.md left alone (quick run; pass --readme to update it)")


def main(argv):
    args = parse_args(argv)
    if args.self_test:
        return self_test()
    ctx = make_ctx(args)
    if not measure.build(ctx):
        return 2
    if args.build_only:
        say("build only: done")
        return 0
    ctx.allocs = measure.find_allocators(ctx, args.allocators)
    if not ctx.allocs:
        fail_usage("no allocator left to measure")
    ref = REF if REF in ctx.allocs else ctx.allocs[0]
    wls = [workloads.BY_NAME[n] for n in args.workloads if n in workloads.BY_NAME]
    reals = [workloads.REAL_BY_NAME[n] for n in args.workloads if n in workloads.REAL_BY_NAME]
    wls, do_strace, do_cg, chart = check_tools(ctx, args, wls)
    if not wls and not reals:
        fail_usage("no workload left to run")
    chart = chart and bool(wls)  # the chart is the synthetic rows'

    t0 = datetime.datetime.now()
    runs = measured_runs(ctx, wls, args.runs) if wls else []
    t1 = datetime.datetime.now()
    syscalls, hakstats = trace_pass(ctx, wls, do_strace)
    t2 = datetime.datetime.now()
    instructions = callgrind_pass(ctx, wls) if do_cg else {}
    t3 = datetime.datetime.now()
    real = real_pass(ctx, reals, args.runs)
    t4 = datetime.datetime.now()
    wall = int((t4 - t0).total_seconds())
    say(f"time: measured runs {(t1 - t0).seconds} s, strace/stats runs {(t2 - t1).seconds} s, "
        f"callgrind {(t3 - t2).seconds} s, real programs {(t4 - t3).seconds} s")

    (ctx.out / "results.tsv").write_text("\n".join(["\t".join(Run.TSV_HEAD.split())] + [r.tsv() for r in runs]) + "\n")
    setup = setup_facts(ctx)
    if any(w.kind == workloads.STRESS_NG for w in wls):
        setup["stress_ng"] = _cmd_out(["stress-ng", "--version"]) or "?"
    d = report.Data(workloads=wls, allocs=ctx.allocs, ref=ref, runs_per=args.runs, mode=ctx.mode, seed=ctx.seed,
                    timeout=ctx.timeout, max_rss_mib=ctx.max_rss_kb // 1024, summary=summarise_all(runs),
                    members=measure.round_members(ctx.allocs), syscalls=syscalls, hakstats=hakstats,
                    instructions=instructions, failures=ctx.failures, notes=ctx.notes, setup=setup,
                    verdict=report.verdict(runs, ctx.allocs, ctx.rel(ctx.hakmem_lib), real), chart=chart,
                    wall_s=wall, floor_cmd=workloads.FLOOR.command(ctx.mode), real=real, real_progs=reals)
    table = report.summary_table(d)
    (ROOT / "docs").mkdir(exist_ok=True)
    (ROOT / "docs/bench_table.md").write_text("\n".join(table) + "\n")
    (ROOT / "docs/BENCHMARKS.md").write_text(report.benchmarks_md(d, table))
    say("wrote docs/BENCHMARKS.md and docs/bench_table.md")
    if chart:
        draw_chart(ctx, d)
    update_readme(args.readme, args.quick, table, chart)

    print("\n".join(table), file=sys.stderr)
    if ctx.failures:
        say(f"FAILED: {len(ctx.failures)} run(s) failed — see the Failures section of docs/BENCHMARKS.md")
        return 1
    say(f"all runs passed their checks ({wall} s)")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        say("interrupted")
        sys.exit(130)
