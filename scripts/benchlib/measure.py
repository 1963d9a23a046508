"""Building the benchmarks, finding the allocators and tools, running them."""
import os
import random
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from . import parse
from .stats import Run, fmt_ops
from .workloads import BENCH, PROGRAMS, STRESS_NG

LIBDIR = "/usr/lib/x86_64-linux-gnu"
CFLAGS_BENCH = ["-std=c11", "-O2", "-Wall", "-Wextra", "-pthread"]
ALLOCATORS = ["glibc", "hakmem", "mimalloc", "jemalloc", "tcmalloc"]
PEERS = {  # name -> (library, Debian package)
    "mimalloc": (f"{LIBDIR}/libmimalloc.so.2", "libmimalloc2.0"),
    "jemalloc": (f"{LIBDIR}/libjemalloc.so.2", "libjemalloc2"),
    "tcmalloc": (f"{LIBDIR}/libtcmalloc_minimal.so.4", "libtcmalloc-minimal4"),
}
AA = "hakmem_aa"  # hakmem's second run of each round (the A/A control)
PROF = "hakmem_prof"  # hakmem with HAKMEM_PROF=1 (the heap profiler's cost): --allocators only
HAKMEMS = ("hakmem", AA, PROF)
FLOOR = "floor"  # the in-binary allocator of random_mixed_floor


def say(msg):
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


@dataclass
class Ctx:
    """What every run needs to know."""
    root: Path
    out: Path  # build-bench/
    cc: str
    timeout: int
    seed: int
    hakmem_lib: Path
    max_rss_kb: int
    mode: str = "full"
    allocs: list = field(default_factory=list)  # the ones that are present
    notes: list = field(default_factory=list)  # what could not be measured, and why
    failures: list = field(default_factory=list)  # (workload, alloc, run, command, symptom)
    is_root: bool = False
    have_apt: bool = False
    apt_updated: bool = False
    compare: Path = None  # build/hakmem, for the real programs

    def rel(self, path):
        """A path as the report shows it: relative to the repository."""
        try:
            return str(Path(path).relative_to(self.root))
        except ValueError:
            return str(path)


def preload(ctx, alloc):
    """The library to LD_PRELOAD for an allocator, or None (glibc, the floor)."""
    if alloc in HAKMEMS:
        return str(ctx.hakmem_lib)
    if alloc in PEERS:
        return PEERS[alloc][0]
    return None


# ---------------------------------------------------------------- build

def _stale(target, sources):
    if not target.exists():
        return True
    t = target.stat().st_mtime
    return any(s.exists() and s.stat().st_mtime > t for s in sources)


def build(ctx):
    """Compile what is out of date into build-bench/; False (and a message) on error."""
    for sub in ("logs", "strace", "tmp", "callgrind"):
        (ctx.out / sub).mkdir(parents=True, exist_ok=True)
    # A different compiler or flags must rebuild everything, not only newer sources.
    stamp = ctx.out / ".cflags"
    flags_id = " ".join([ctx.cc, *CFLAGS_BENCH])
    force = not stamp.exists() or stamp.read_text() != flags_id
    common = [ctx.root / "bench/bench_common.h", ctx.root / "bench/slots_core.h"]
    say(f"building benchmarks into build-bench/ with {ctx.cc}")
    for name, (src, extra) in PROGRAMS.items():
        target = ctx.out / name
        if not force and not _stale(target, [ctx.root / src, *common]):
            continue
        cmd = [ctx.cc, *CFLAGS_BENCH, *extra, str(ctx.root / src), "-o", str(target), "-ldl"]
        if subprocess.run(cmd, cwd=ctx.root).returncode != 0:
            say(f"building {name} failed ({' '.join(cmd)})")
            return False
    stamp.write_text(flags_id)
    return True


# ---------------------------------------------------------------- tools and peers

def apt_install(ctx, *pkgs):
    """Install Debian packages when we are root and have apt; True on success."""
    if not (ctx.is_root and ctx.have_apt):
        return False
    say(f"installing {' '.join(pkgs)} with apt-get")
    log = ctx.out / "logs/apt.log"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    # Wait for another apt-get (a concurrent install) instead of failing at once.
    cmd = ["apt-get", "-o", "DPkg::Lock::Timeout=300", "install", "-y", *pkgs]
    with open(log, "a") as f:
        if subprocess.run(cmd, stdout=f, stderr=f, env=env, stdin=subprocess.DEVNULL).returncode == 0:
            return True
        if not ctx.apt_updated:  # a stale package list is the usual cause
            ctx.apt_updated = True
            subprocess.run(["apt-get", "-o", "DPkg::Lock::Timeout=300", "update"], stdout=f, stderr=f, env=env,
                           stdin=subprocess.DEVNULL)
            return subprocess.run(cmd, stdout=f, stderr=f, env=env, stdin=subprocess.DEVNULL).returncode == 0
    return False


def ensure_tool(ctx, tool, pkg, what):
    """Is `tool` on PATH (installing `pkg` if need be)? Otherwise note what is lost."""
    if shutil.which(tool) or (apt_install(ctx, pkg) and shutil.which(tool)):
        return True
    msg = f"{tool} is missing: {what}"
    if not (ctx.is_root and ctx.have_apt):
        msg += f" (run as root or 'sudo apt-get install {pkg}')"
    say(f"WARNING: {msg}")
    ctx.notes.append(msg)
    return False


def _missing_peer_note(ctx, alloc):
    lib, pkg = PEERS[alloc]
    msg = f"peer {alloc} is missing: {lib} not found (Debian package {pkg}"
    if ctx.is_root and ctx.have_apt:
        msg += "; apt-get install failed, see build-bench/logs/apt.log"
    else:
        msg += f"; run as root or 'sudo apt-get install {pkg}'"
    return msg + "); continuing without it"


def find_allocators(ctx, wanted):
    """The allocators of `wanted` that can run, installing peers as needed."""
    present = []
    for alloc in wanted:
        if alloc == "glibc":
            present.append(alloc)
            continue
        if alloc in ("hakmem", PROF):
            lib = ctx.hakmem_lib
            if not lib.exists() and lib == ctx.root / "build/libhakmem.so" and (ctx.root / "Makefile").exists():
                say("build/libhakmem.so not found: running 'make lib'")
                with open(ctx.out / "logs/hakmem-build.log", "w") as f:
                    if subprocess.run(["make", "-s", "lib"], cwd=ctx.root, stdout=f, stderr=f).returncode:
                        say("hakmem build failed (see build-bench/logs/hakmem-build.log)")
            if lib.exists():
                present.append(alloc)
            else:
                msg = f"hakmem is missing: {ctx.rel(lib)} does not exist (build it with 'make'); continuing without it"
                say(f"WARNING: {msg}")
                ctx.notes.append(msg)
            continue
        lib, pkg = PEERS[alloc]
        if not Path(lib).exists():
            apt_install(ctx, pkg)
        if Path(lib).exists():
            present.append(alloc)
        else:
            msg = _missing_peer_note(ctx, alloc)
            say(f"WARNING: {msg}")
            ctx.notes.append(msg)
    return present


# ---------------------------------------------------------------- the round

def round_members(allocs):
    """Every allocator once and, with hakmem, hakmem again: the A/A control.

    The same library measured twice in the same run shows how large a
    difference the machine's noise makes on its own.
    """
    return list(allocs) + ([AA] if "hakmem" in allocs else [])


def round_order(members, seed, wl_index, k):
    """The round's members in a seeded shuffle, new for every workload and round.

    So no allocator always runs first, last or after the same neighbour, and
    the same BENCH_SEED gives the same order again.
    """
    order = list(members)
    random.Random(seed * 1000003 + wl_index * 1009 + k).shuffle(order)
    return order


# ---------------------------------------------------------------- running a process

def run_proc(cmd, out_path, err_path, env, timeout, cwd, own_group=True):
    """Run cmd with stdout/stderr to files; (exit status, timed out?).

    own_group: the command gets its own process group, which a timeout or
    Ctrl-C kills whole (strace and valgrind with their tracees). runwrap does
    that for its child itself and stays in ours, so Ctrl-C reaches it.
    """
    with open(out_path, "w") as out, open(err_path, "w") as err:
        p = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env, cwd=cwd,
                             start_new_session=own_group)
        try:
            return p.wait(timeout=timeout), False
        except (subprocess.TimeoutExpired, KeyboardInterrupt) as e:
            if own_group:
                os.killpg(p.pid, signal.SIGKILL)
            else:
                p.terminate()  # runwrap kills its child's group, then exits
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            if isinstance(e, KeyboardInterrupt):
                raise
            return 124, True


def base_env(ctx):
    """The environment of every run: the caller's, minus a preload of its own."""
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "HAKMEM_STATS")}
    env["LC_ALL"] = "C"
    return env


PROF_ENV = ("HAKMEM_PROF", "HAKMEM_PROF_PREFIX")


def alloc_env(ctx, alloc):
    """base_env, and for hakmem_prof the profiler on at its default rate.

    Its profiles (one per process at exit, counted in its time) go to
    build-bench/tmp/prof/, emptied before each run so that they do not pile up.
    """
    env = base_env(ctx)
    if alloc == PROF:
        d = ctx.out / "tmp/prof"
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        env.update(HAKMEM_PROF="1", HAKMEM_PROF_PREFIX=str(d / "p"))
    return env


def program_path(ctx, wl):
    """Absolute path of a workload's program: build-bench/ or PATH."""
    if wl.kind == STRESS_NG:
        return shutil.which(wl.binary) or wl.binary
    return str(ctx.out / wl.binary)


def shown_command(ctx, wl, mode, alloc, stats=False):
    """The command as the report's Failures table shows it, environment included."""
    env = ""
    lib = preload(ctx, alloc)
    if lib:
        env += f"LD_PRELOAD={lib} "
    if stats:
        env += "HAKMEM_STATS=1 "
    if alloc == PROF:
        env += "HAKMEM_PROF=1 "
    prog = wl.command(mode) if wl.kind == STRESS_NG else "build-bench/" + wl.command(mode)
    return env + prog


def _why_exit(ctx, info, rc, err):
    st = info["status"]
    if st == "TIMEOUT":
        return f"timed out after {ctx.timeout}s"
    if st == "RSSLIMIT":
        return f"resident set over {ctx.max_rss_kb // 1024} MiB (BENCH_MAX_RSS_MIB): killed"
    if st.startswith("SIG"):
        hint = " (the OOM killer?)" if st == "SIGKILL" else ""
        return f"killed by {st}{hint}"
    if st == "3":
        first = next((ln for ln in err.splitlines() if "CHECK FAILED" in ln), "")
        return f"content check failed: {first[:200]}"
    last = err.rstrip().splitlines()[-1] if err.strip() else ""
    return f"exit status {rc}: {last[:200]}"


def _preload_error(err):
    return next((ln for ln in err.splitlines() if "ERROR: ld.so" in ln), None)


def judge_bench(ctx, alloc, rc, info, out, err):
    """A benchmark program's run -> (fields for Run, why it failed or '')."""
    res = parse.parse_result(out)
    got = {"rss_kb": info["maxrss_kb"], "wall": info["wall"], "user": info["user"], "sys": info["sys"]}
    if res is not None:
        got.update(ops_per_sec=res.get("ops_per_sec"), owned=res.get("hakmem_owned"), extra=res.get("extra", ""),
                   ops=res.get("ops"))
    if rc != 0:
        return got, _why_exit(ctx, info, rc, err)
    if not parse.result_ok(res):
        return got, "no valid RESULT line"
    bad = _preload_error(err)
    if bad:
        return got, f"LD_PRELOAD of {preload(ctx, alloc)} failed: {bad[:200]}"
    if alloc in HAKMEMS:
        owned = parse.parse_owned(got.get("owned"))
        if owned is None:
            return got, "hak_owns not found through dlsym: cannot prove hakmem served the run"
        if owned[0] != owned[1]:
            return got, f"only {got['owned']} sampled blocks are hakmem's: the run was not served by hakmem"
    return got, ""


def judge_stress_ng(ctx, alloc, rc, info, out, err):
    """A stress-ng run -> (fields for Run, why it failed or '').

    stress-ng cannot call hak_owns, so hakmem's proof is its HAKMEM_STATS=1
    exit report: a 'hakmem-stats:' line with mallocs > 0. Only stress-ng's
    main process prints one (its workers end with _exit), but the workers are
    forks of that process and so run on the same malloc.
    """
    m = parse.parse_stress_ng(out + "\n" + err)
    got = {"rss_kb": info["maxrss_kb"], "wall": info["wall"], "user": info["user"], "sys": info["sys"]}
    if m:
        got.update(ops_per_sec=m["ops_per_sec"], ops=m["bogo_ops"],
                   extra=f"bogo_ops={m['bogo_ops']},real_s={m['real_s']},usr_s={m['usr_s']},sys_s={m['sys_s']}")
    if rc != 0:
        return got, _why_exit(ctx, info, rc, err)
    if not m:
        return got, "no 'malloc' row in stress-ng's --metrics-brief output"
    bad = _preload_error(err)
    if bad:
        return got, f"LD_PRELOAD of {preload(ctx, alloc)} failed: {bad[:200]}"
    if alloc in HAKMEMS:
        got["stats_mallocs"] = parse.stats_mallocs(err)
        if got["stats_mallocs"] is None:
            return got, "no 'hakmem-stats:' line on stderr with HAKMEM_STATS=1: hakmem not loaded"
        if got["stats_mallocs"] == 0:
            return got, "hakmem-stats reports mallocs=0: the allocations did not reach hakmem"
    return got, ""


def _progress(wl_name, alloc, k, n, run, rusage):
    msg = f"{wl_name:<15} {alloc:<9} run {k}/{n}  {fmt_ops(run.ops_per_sec)} ops/s  peak RSS {run.rss_kb} KiB"
    if rusage:
        msg += f"  user {run.user:.2f} s  sys {run.sys:.2f} s"
    if run.owned:
        msg += f"  owned {run.owned}"
    if run.stats_mallocs is not None:
        msg += f"  hakmem-stats mallocs={run.stats_mallocs}"
    say(msg)


def run_one(ctx, wl, alloc, k, n):
    """One measured run through runwrap -> Run; a failure is logged and listed."""
    tmp = ctx.out / "tmp/run"
    info_path = Path(f"{tmp}.info")
    info_path.unlink(missing_ok=True)
    stats = wl.kind == STRESS_NG and alloc in HAKMEMS
    env = alloc_env(ctx, alloc)
    env["RUNWRAP_MAX_RSS_KB"] = str(ctx.max_rss_kb)
    if stats:
        env["HAKMEM_STATS"] = "1"
    lib = preload(ctx, alloc) or "-"
    cmd = [str(ctx.out / "runwrap"), str(ctx.timeout), str(info_path), lib, program_path(ctx, wl),
           *wl.args[ctx.mode]]
    # runwrap enforces the timeout; ours is the backstop should runwrap itself hang.
    rc, _ = run_proc(cmd, f"{tmp}.out", f"{tmp}.err", env, ctx.timeout + 60, ctx.out / "tmp", own_group=False)
    out = Path(f"{tmp}.out").read_text(errors="replace")
    err = Path(f"{tmp}.err").read_text(errors="replace")
    info = parse.parse_info(info_path.read_text() if info_path.exists() else "status=TIMEOUT")
    judge = judge_stress_ng if wl.kind == STRESS_NG else judge_bench
    got, why = judge(ctx, alloc, rc, info, out, err)
    run = Run(wl.name, alloc, str(k), not why, why=why, **got)
    if why:
        tag = f"{wl.name}.{alloc}.{k}"
        shutil.copy(f"{tmp}.out", ctx.out / f"logs/{tag}.out")
        shutil.copy(f"{tmp}.err", ctx.out / f"logs/{tag}.err")
        shown = shown_command(ctx, wl, ctx.mode, alloc, stats)
        ctx.failures.append((wl.name, alloc, str(k), shown, f"{why} (logs: build-bench/logs/{tag}.{{out,err}})"))
        say(f"   FAILED: {shown} -> {why}")
    else:
        _progress(wl.name, alloc, k, n, run, wl.rusage)
    return run


# ---------------------------------------------------------------- strace and HAKMEM_STATS

# mprotect: glibc grows its thread arenas with it; futex and sched_yield: lock waits.
STRACE_COLS = ["mmap", "munmap", "mremap", "mprotect", "madvise", "brk", "futex", "sched_yield"]


def _exit_why(ctx, rc, timed_out):
    if timed_out:
        return f"timed out after {ctx.timeout}s"
    if rc < 0:
        try:
            return f"exit status {128 - rc} ({signal.Signals(-rc).name})"
        except ValueError:
            return f"killed by signal {-rc}"
    return f"exit status {rc}"


def trace_run(ctx, wl, alloc, use_strace):
    """One shorter run under `strace -f -c` (hakmem's with HAKMEM_STATS=1).

    -> (syscall counts or None, 'ok'/'FAILED', hakmem-stats lines)
    """
    lib = preload(ctx, alloc)
    stats = alloc == "hakmem"
    f = ctx.out / f"strace/{wl.name}.{alloc}"
    env = alloc_env(ctx, alloc)
    prog = [program_path(ctx, wl), *wl.args["trace"]]
    if use_strace:
        # -E: the preload is the tracee's only, strace itself runs on glibc
        cmd = ["strace", "-f", "-c", "-o", f"{f}.strace"]
        if lib:
            cmd += ["-E", f"LD_PRELOAD={lib}"]
        if stats:
            cmd += ["-E", "HAKMEM_STATS=1"]
        if alloc == PROF:
            for k in PROF_ENV:
                cmd += ["-E", f"{k}={env[k]}"]
        cmd += prog
    else:
        cmd = prog
        if lib:
            env["LD_PRELOAD"] = lib
        if stats:
            env["HAKMEM_STATS"] = "1"
    say(f"syscall/stat run: {wl.name} {alloc}")
    rc, timed_out = run_proc(cmd, f"{f}.out", f"{f}.err", env, ctx.timeout, ctx.out / "tmp")
    out = Path(f"{f}.out").read_text(errors="replace")
    err = Path(f"{f}.err").read_text(errors="replace")
    passed = parse.result_ok(parse.parse_result(out)) if wl.kind == BENCH else parse.parse_stress_ng(err) is not None
    status = "ok" if rc == 0 and passed else "FAILED"
    if status == "FAILED":
        first = next((ln for ln in err.splitlines() if "CHECK FAILED" in ln or "ERROR" in ln), "")
        shown = shown_command(ctx, wl, "trace", alloc, stats)
        where = " under strace" if use_strace else ""
        ctx.failures.append((wl.name, alloc, "trace", shown,
                             f"{_exit_why(ctx, rc, timed_out)}{where}: {first[:200]} "
                             f"(logs: build-bench/strace/{wl.name}.{alloc}.{{out,err,strace}})"))
        say(f"   FAILED (strace run): {shown}")
    counts = None
    if use_strace and Path(f"{f}.strace").exists():
        counts = parse.parse_strace(Path(f"{f}.strace").read_text(errors="replace"))
    lines = parse.stats_lines(err) if stats else []
    if stats and not lines:
        lines = ["(no hakmem-stats line on stderr with HAKMEM_STATS=1)"]
    return counts, status, lines


# ---------------------------------------------------------------- callgrind

def callgrind_run(ctx, wl, alloc):
    """One run under callgrind at the trace size -> (instructions, ops, ok?)."""
    lib = preload(ctx, alloc)
    f = ctx.out / f"callgrind/{wl.name}.{alloc}"
    env = alloc_env(ctx, alloc)
    if lib:
        env["LD_PRELOAD"] = lib
    say(f"callgrind run: {wl.name} {alloc}")
    cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", program_path(ctx, wl),
           *wl.args["trace"]]
    rc, _ = run_proc(cmd, f"{f}.out", f"{f}.err", env, ctx.timeout * 4, ctx.out / "tmp")
    out = Path(f"{f}.out").read_text(errors="replace")
    ir = parse.callgrind_total(Path(f"{f}.err").read_text(errors="replace"))
    res = parse.parse_result(out)
    ok = ir is not None and parse.result_ok(res)
    if ok and alloc in HAKMEMS:
        owned = parse.parse_owned(res.get("hakmem_owned"))
        ok = owned is not None and owned[0] == owned[1]
    if not ok:
        shown = "valgrind --tool=callgrind " + shown_command(ctx, wl, "trace", alloc)
        ctx.failures.append((wl.name, alloc, "callgrind", shown,
                             "no instruction total, a failed check or blocks hakmem does not own "
                             f"(logs: build-bench/callgrind/{wl.name}.{alloc}.{{out,err}})"))
        say(f"   FAILED (callgrind run): {shown}")
    return ir, int(res["ops"]) if res and isinstance(res.get("ops"), float) else 0, ok
