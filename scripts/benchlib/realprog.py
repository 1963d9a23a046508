"""The real programs of make bench: each row is one `hakmem compare` run.

The test suite's real programs (tests/real/) run under every allocator
through build/hakmem compare --check-output --json: rounds in shuffled
order, the same exit status and output from every allocator, and, from the
statistics each run writes, proof that hakmem served the hakmem row (every
round: processes that wrote hakmem statistics, with mallocs > 0) and none
of the others.
"""
import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from . import measure
from .stats import median


@dataclass
class RealCell:
    """One allocator's rounds of one real program."""
    ok: bool
    n: int = 0
    wall: float = None  # medians
    lo: float = None
    hi: float = None
    cpu: float = None
    rss_kb: float = None
    mallocs: float = None  # hakmem's, median per round
    procs: float = None


@dataclass
class RealRow:
    """A real program's result: cells by allocator, or why it was not run."""
    name: str
    rounds: int = 0
    cells: dict = field(default_factory=dict)
    skipped: str = ""  # not run (a program missing): the reason
    why: str = ""  # run and failed: the reason


def python_bin():
    """The interpreter the real tests use (tests/real/realtest.py): Debian's first."""
    if os.access("/usr/bin/python3", os.X_OK):
        return "/usr/bin/python3"
    return shutil.which("python3") or "python3"


def expand(ctx, text):
    return text.format(inputs=ctx.root / "tests/real/inputs", bench=ctx.root / "bench/real", root=ctx.root,
                       python=python_bin())


def real_allocs(ctx):
    """The allocators of the real rows: hakmem compare has no hakmem_prof."""
    return [a for a in ctx.allocs if a != measure.PROF]


def allocator_spec(ctx):
    """--allocators for hakmem compare: the harness's own libraries, by path."""
    out = []
    for a in real_allocs(ctx):
        out.append(f"{a}={measure.PEERS[a][0]}" if a in measure.PEERS else a)
    return ",".join(out)


def judge(obj, allocs):
    """hakmem compare's --json object -> ({alloc: RealCell}, why it failed or '').

    Pure: the self-test feeds it fixed objects. A row fails on a compare
    failure (exit status or output differing), an allocator without all its
    rounds, a nonzero exit status, a hakmem round without hakmem statistics
    or mallocs, or another allocator's round with hakmem statistics.
    """
    if obj.get("failures"):
        return {}, "hakmem compare: " + obj["failures"][0].split("\n")[0]
    by = {a["name"]: a for a in obj.get("allocators", [])}
    cells, why = {}, ""
    for a in allocs:
        runs = by.get(a, {}).get("runs", [])
        if len(runs) != obj.get("rounds") or not runs:
            why = why or f"{a}: {len(runs)} of {obj.get('rounds')} rounds"
            cells[a] = RealCell(ok=False, n=len(runs))
            continue
        bad = ""
        if any(r["exit"] != 0 for r in runs):
            bad = f"{a}: exit status {next(r['exit'] for r in runs if r['exit'] != 0)}"
        elif a == "hakmem" and not all(r["hakmem_processes"] > 0 and r["hakmem_mallocs"] > 0 for r in runs):
            bad = "hakmem: a round without hakmem statistics or with mallocs=0: hakmem did not serve the program"
        elif a != "hakmem" and any(r["hakmem_processes"] > 0 for r in runs):
            bad = f"{a}: its runs wrote hakmem statistics: hakmem was loaded in a peer's row"
        walls = [r["wall_s"] for r in runs]
        cells[a] = RealCell(ok=not bad, n=len(runs), wall=median(walls), lo=min(walls), hi=max(walls),
                            cpu=median([r["user_s"] + r["sys_s"] for r in runs]),
                            rss_kb=median([r["maxrss_kib"] for r in runs]),
                            mallocs=median([r["hakmem_mallocs"] for r in runs]),
                            procs=median([r["hakmem_processes"] for r in runs]))
        why = why or bad
    return cells, why


def hakmem_command(ctx):
    """build/hakmem and its launcher, made if missing; None if they cannot be."""
    cmd = ctx.root / "build/hakmem"
    if not (cmd.exists() and (ctx.root / "build/hakmem-exec").exists()):
        with open(ctx.out / "logs/hakmem-build.log", "a") as f:
            subprocess.run(["make", "-s", "build/hakmem", "build/hakmem-exec"], cwd=ctx.root, stdout=f, stderr=f)
    return cmd if cmd.exists() and (ctx.root / "build/hakmem-exec").exists() else None


def missing_tools(ctx, prog):
    """The commands of prog that are not on PATH after trying to install them."""
    missing = []
    for tool, pkg in prog.needs:
        if not shutil.which(tool) and not (measure.apt_install(ctx, pkg) and shutil.which(tool)):
            missing.append((tool, pkg))
    return missing


def run_row(ctx, prog, rounds, index):
    """One real program under every allocator -> RealRow; failures are listed in ctx."""
    row = RealRow(prog.name, rounds)
    missing = missing_tools(ctx, prog)
    if missing:
        pkgs = " ".join(sorted({p for _, p in missing}))
        row.skipped = (f"{', '.join(t for t, _ in missing)} not installed (Debian: {pkgs}"
                       + ("" if ctx.is_root and ctx.have_apt else f"; run as root or 'sudo apt-get install {pkgs}'")
                       + ")")
        msg = f"real program {prog.name} skipped: {row.skipped}"
        measure.say(f"WARNING: {msg}")
        ctx.notes.append(msg)
        return row
    work = ctx.out / "real" / prog.name
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    logs = ctx.out / "logs"
    env = measure.base_env(ctx)
    env["TMPDIR"] = str(ctx.out / "tmp")  # compare's scratch files (outputs, statistics)
    setup = (prog.setup or {}).get(ctx.mode)
    if setup:
        measure.say(f"real program {prog.name}: setup: {prog.setup_command(ctx.mode)}")
        rc, _ = measure.run_proc(["sh", "-c", expand(ctx, setup)], logs / f"{prog.name}.setup.out",
                                 logs / f"{prog.name}.setup.err", env, ctx.timeout, work)
        if rc != 0:
            return _failed(ctx, row, setup, f"its setup exited {rc} (logs: build-bench/logs/{prog.name}.setup.*)")
    argv = [expand(ctx, a) for a in prog.args[ctx.mode]]
    jf = work.parent / f"{prog.name}.json"
    jf.unlink(missing_ok=True)
    cmd = [str(ctx.compare), "compare", "--lib", str(ctx.hakmem_lib), "--rounds", str(rounds), "--check-output",
           "--seed", str(ctx.seed * 1000 + index), "--allocators", allocator_spec(ctx), "--json", str(jf), "--",
           *argv]
    measure.say(f"real program {prog.name}: {rounds} round(s) of {' '.join(real_allocs(ctx))}: {prog.command(ctx.mode)}")
    # the backstop for a program that hangs: its whole process group goes
    limit = ctx.timeout * rounds * len(real_allocs(ctx))
    rc, timed_out = measure.run_proc(cmd, logs / f"{prog.name}.compare.out", logs / f"{prog.name}.compare.err", env,
                                     limit, work)
    shown = f"build/hakmem compare --rounds {rounds} --check-output -- {prog.command(ctx.mode)}"
    err = (logs / f"{prog.name}.compare.err").read_text(errors="replace")
    for line in err.splitlines():
        if line.startswith("hakmem compare: round"):
            measure.say(f"   {line[len('hakmem compare: '):]}")
    if timed_out:
        return _failed(ctx, row, shown, f"timed out after {limit}s (logs: build-bench/logs/{prog.name}.compare.*)")
    try:
        obj = json.loads(jf.read_text())
    except (OSError, ValueError):
        last = err.strip().splitlines()[-1] if err.strip() else ""
        return _failed(ctx, row, shown, f"exit status {rc}, no --json written: {last[:200]}")
    row.cells, why = judge(obj, real_allocs(ctx))
    if not why and rc != 0:
        why = f"hakmem compare exited {rc}"
    if why:
        return _failed(ctx, row, shown, f"{why} (logs: build-bench/logs/{prog.name}.compare.*)")
    h = row.cells.get("hakmem")
    measure.say(f"   {prog.name}: " + ", ".join(f"{a} {c.wall:.2f}s" for a, c in row.cells.items())
                + (f"; hakmem served {int(h.mallocs)} mallocs in {int(h.procs)} process(es) per round" if h else ""))
    return row


def _failed(ctx, row, shown, why):
    row.why = why
    ctx.failures.append((row.name, "all", "compare", shown, why))
    measure.say(f"   FAILED: {row.name}: {why}")
    return row
