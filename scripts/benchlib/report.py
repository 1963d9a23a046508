"""docs/BENCHMARKS.md, the summary table (also the README block) and the chart data.

Every function here turns measured data into text; none runs anything, so
the report can be checked (and regenerated) without the machine's noise.
"""
from dataclasses import dataclass, field

from .measure import AA, FLOOR, HAKMEMS, STRACE_COLS
from .stats import DASH, fmt_mib, fmt_ops, fmt_sec, fmt_us, gap_percent, ratio
from .workloads import STRESS_NG

FAILED = "**FAILED**"


@dataclass
class Data:
    """Everything the report is written from."""
    workloads: list  # Workload rows, in order
    allocs: list  # measured allocators
    ref: str  # ratios are relative to this one
    runs_per: int
    mode: str
    seed: int
    timeout: int
    max_rss_mib: int
    summary: dict  # (workload, alloc) -> Summary
    members: list  # one round's allocators (with hakmem_aa)
    syscalls: dict = field(default_factory=dict)  # (workload, alloc) -> ({syscall: calls}, status)
    hakstats: dict = field(default_factory=dict)  # workload -> [hakmem-stats lines]
    instructions: dict = field(default_factory=dict)  # (workload, alloc) -> (ir, ops, ok)
    failures: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    setup: dict = field(default_factory=dict)  # machine, commit, versions...
    verdict: str = ""
    chart: bool = False
    wall_s: int = 0
    floor_cmd: str = ""
    real: list = field(default_factory=list)  # RealRow per real program (realprog.py)
    real_progs: list = field(default_factory=list)  # their RealProgram rows

    def cell(self, w, a):
        return self.summary.get((w, a))


def md_table(header, align, rows):
    """A Markdown table; align: one 'l' or 'r' per column."""
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" if c == "l" else "---:" for c in align) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return out


def _ops_cell(d, w, a, with_ratio=True):
    s = d.cell(w, a)
    if s is None:
        return DASH
    if not s.ok:
        return FAILED
    ref = d.cell(w, d.ref)
    refm = ref.median if ref and ref.ok else None
    return f"{fmt_ops(s.median)} ({ratio(s.median, refm)})" if with_ratio else fmt_ops(s.median)


def _cell(d, w, a, fmt):
    s = d.cell(w, a)
    if s is None:
        return DASH
    return fmt(s) if s.ok else FAILED


def verdict(runs, allocs, hakmem_rel, real=()):
    """The sentence that says whether hakmem's runs were proved to be hakmem's."""
    if "hakmem" not in allocs:
        return f"hakmem was not measured in this run ({hakmem_rel} missing or not selected)."
    mine = [r for r in runs if r.alloc in HAKMEMS]
    owned = [r for r in mine if r.owned is not None or r.stats_mallocs is None]
    stats = [r for r in mine if r.owned is None and r.stats_mallocs is not None]
    bad = [r for r in mine if not r.ok]
    ran = [r for r in real if not r.skipped]
    real_ok = [r for r in ran if "hakmem" in r.cells and r.cells["hakmem"].ok]
    if (mine or ran) and not bad and len(real_ok) == len(ran):
        parts = []
        if owned:
            parts.append(f"by hak_owns (every one of the {len(owned)} hakmem runs of the benchmark programs found "
                         "all of its sampled live and fresh blocks inside hakmem)")
        if stats:
            parts.append(f"by its `HAKMEM_STATS=1` exit report (each of the {len(stats)} hakmem runs of stress-ng "
                         "printed a 'hakmem-stats:' line with mallocs > 0)")
        if ran:
            n = sum(r.cells["hakmem"].n for r in real_ok)
            parts.append(f"by the statistics every run of `hakmem compare` writes (each of the {n} hakmem runs of "
                         f"the {len(ran)} real programs had processes that wrote hakmem statistics with mallocs > 0, "
                         "and no run of another allocator had any)")
        return "hakmem served its runs: verified " + " and ".join(parts) + "."
    nbad = len(bad) + len(ran) - len(real_ok)
    return (f"**hakmem verification FAILED**: of {len(mine)} hakmem runs and {len(ran)} real programs, {nbad} "
            "failed, could not be checked or were not served by hakmem (see Failures below).")


def _real_cell(d, row, a, value):
    """'1.52 (0.98x)': a real program's median and its ratio to the reference."""
    if row.skipped:
        return DASH
    c = row.cells.get(a)
    if c is None or not c.ok:
        return FAILED
    ref = row.cells.get(d.ref)
    v, r = value(c), value(ref) if ref and ref.ok else None
    return f"{v:.2f} ({ratio(v, r)})" if v is not None else DASH


def real_summary(d):
    """The real programs' lines of the summary (and of README's block)."""
    if not d.real:
        return []
    cols = d.allocs
    rounds = max((r.rounds for r in d.real), default=0)
    out = ["", f"Real programs of the test suite, each through `hakmem compare` ({rounds} round(s), every round in a "
           f"new shuffled order, the same output from every allocator): median wall time in seconds and, in "
           f"brackets, the ratio to {d.ref} (lower is better):", ""]
    shown = [r for r in d.real if not r.skipped]
    out += md_table(["program", *cols], "l" + "r" * len(cols),
                    [[r.name, *[_real_cell(d, r, a, lambda c: c.wall) for a in cols]] for r in shown])
    out += ["", "Their peak RSS in MiB (median of the rounds' peaks, the largest process of each run) and the ratio "
            f"to {d.ref} (lower is better):", ""]
    out += md_table(["program", *cols], "l" + "r" * len(cols),
                    [[r.name, *[_real_cell(d, r, a, lambda c: c.rss_kb / 1024) for a in cols]] for r in shown])
    skipped = [r for r in d.real if r.skipped]
    if skipped:
        out += ["", "Not run: " + "; ".join(f"{r.name} ({r.skipped})" for r in skipped) + "."]
    return out


def summary_table(d):
    """The summary: ops/s, peak RSS, CPU time of the heavy rows; also README's block."""
    cols = d.allocs
    names = [w.name for w in d.workloads]
    sng = "; stress-ng rows: bogo-ops/s (real time)" if any(w.kind == STRESS_NG for w in d.workloads) else ""
    machine = (f"Machine: {d.setup.get('cpu', '?')}, {d.setup.get('ncpu', '?')} CPUs; commit "
               f"{d.setup.get('commit')}; {d.setup.get('when')}. Full report: [docs/BENCHMARKS.md](docs/BENCHMARKS.md).")
    if not names:  # the real programs alone
        return [f"{d.mode.capitalize()} mode.", machine] + real_summary(d)[0:] + ["", d.verdict]
    out = [f"Median ops/s over {d.runs_per} run(s) ({d.mode} mode) and, in brackets, the ratio to {d.ref} "
           f"(higher is better){sng}.", machine, ""]
    out += md_table(["workload", *cols], "l" + "r" * len(cols),
                    [[w, *[_ops_cell(d, w, a) for a in cols]] for w in names])
    out += ["", "Peak RSS in MiB (median of the runs' peaks; lower is better):", ""]
    out += md_table(["workload", *cols], "l" + "r" * len(cols),
                    [[w, *[_cell(d, w, a, lambda s: fmt_mib(s.rss_kb)) for a in cols]] for w in names])
    heavy = [w.name for w in d.workloads if w.rusage]
    if heavy:
        out += ["", "CPU time of the large-heap and stress-ng rows: user / system seconds (median; all threads "
                "and processes of a run, so it can exceed its wall time; system time is page faults, "
                "mmap/munmap/madvise and futex waits; lower is better):", ""]
        out += md_table(["workload", *cols], "l" + "r" * len(cols),
                        [[w, *[_cell(d, w, a, lambda s: f"{fmt_sec(s.user)} / {fmt_sec(s.sys)}") for a in cols]]
                         for w in heavy])
        out += ["", "The same system time per 1,000 operations, in microseconds (median of the runs' ratios; the "
                "stress-ng rows run for a fixed time, so their totals above grow with the operations an allocator "
                "completes, and this is the rate to compare; lower is better):", ""]
        out += md_table(["workload", *cols], "l" + "r" * len(cols),
                        [[w, *[_cell(d, w, a, lambda s: fmt_us(s.sys_per_kop)) for a in cols]] for w in heavy])
    fl = d.cell("random_mixed_floor", FLOOR)
    if fl and fl.ok:
        out += ["", "Loop-only floor (random_mixed on a trivial free-list allocator inside the benchmark): "
                f"{fmt_ops(fl.median)} ops/s."]
    out += real_summary(d)
    out += ["", d.verdict]
    return out


def _setup(d):
    s = d.setup
    out = ["## Setup", "",
           f"- date: {s['when']}; commit: `{s['commit']}`; wall time of this run: {d.wall_s} s",
           f"- machine: {s['cpu']}, {s['ncpu']} CPUs, {s['mem']} RAM; {s['os']}; kernel {s['kernel']}",
           f"- compiler for the benchmarks: {s['ccver']}, `{s['cflags']}`",
           "- allocators (through `LD_PRELOAD`; one benchmark binary serves all):"]
    out += [f"  - {s['versions'][a]}" for a in d.allocs]
    out += [f"  - **not measured**: {n}" for n in d.notes]
    if s.get("hakenv"):
        out.append(f"- hakmem settings from the environment (every run): `{s['hakenv']}`")
    if s.get("stress_ng"):
        out.append(f"- stress-ng: {s['stress_ng']}")
    out.append(
        f"- method: every workload runs {d.runs_per} time(s) per allocator, interleaved: each round runs "
        f"{' '.join(d.members)} once, in an order shuffled anew every round (`BENCH_SEED={d.seed}`), so that the "
        "machine's drift hits all alike and no allocator always runs first or after the same neighbour; the table "
        f"gives the median, min and max ops/s, the ratio of the medians to {d.ref}, and the median of the runs' "
        "peak RSS (`ru_maxrss` of the benchmark process, from `build-bench/runwrap`; for stress-ng the largest of "
        "its processes) and of their user and system CPU time. Each benchmark checks the contents of every block "
        "it frees and a checksum at the end; a run that fails its check, crashes, times out "
        f"({d.timeout}s) or grows its resident set past {d.max_rss_mib} MiB shows as **FAILED**.")
    out.append("- syscalls: one separate, shorter run per workload and allocator under `strace -f -c` (hakmem's "
               "with `HAKMEM_STATS=1`).")
    if d.instructions:
        out.append("- instructions: one run per allocator of the workloads that do not depend on timing, at the "
                   "strace run's size, under `valgrind --tool=callgrind`: the process's total instruction count, "
                   "which this machine's noise does not move.")
    out.append(f"- {d.verdict}")
    return out


def _aa(d):
    if AA not in d.members or not d.workloads:
        return []
    out = ["## Noise: hakmem against itself (A/A)", "",
           "Every round also runs hakmem a second time (\"hakmem again\"), at its own place in the round's "
           "shuffled order: the same library, the same command, in the same run. The gap between the two medians "
           "is what this machine's noise does on its own; a difference between allocators smaller than the "
           "largest gap here is not established by this run. The instruction counts below do not have this noise.",
           ""]
    rows, worst, worst_w = [], 0, None
    for w in d.workloads:
        h, g = d.cell(w.name, "hakmem"), d.cell(w.name, AA)
        if not (h and g and h.ok and g.ok):
            continue
        rows.append([w.name, fmt_ops(h.median), fmt_ops(g.median), ratio(g.median, h.median),
                     f"{fmt_ops(h.lo)}–{fmt_ops(h.hi)}", f"{fmt_ops(g.lo)}–{fmt_ops(g.hi)}"])
        gap = gap_percent(h.median, g.median)
        if gap > worst:
            worst, worst_w = gap, w.name
    out += md_table(["workload", "hakmem", "hakmem again", "ratio", "hakmem min–max", "again min–max"], "lrrrrr",
                    rows)
    out.append("")
    if worst_w:
        out += [f"Largest A/A gap in this run: {worst} % ({worst_w}).", ""]
    return out


def _instructions(d):
    if not d.instructions:
        return []
    out = ["## Instructions (callgrind)", "",
           "Instructions per operation of one run (the whole process: the benchmark's loop and checks, the "
           "allocator and start-up, divided by the run's operations), the run's total, and in brackets the ratio "
           f"to {d.ref} per operation (lower is better). larson runs for a fixed time, so its operation count "
           "differs between allocators; the other workloads do the same work with every allocator.", ""]
    rows = []
    for w in d.workloads:
        if not any(k[0] == w.name for k in d.instructions):
            continue
        ref = d.instructions.get((w.name, d.ref))
        refper = ref[0] / ref[1] if ref and ref[2] and ref[1] else None
        row = [w.name, f"`{w.command('trace')}`"]
        for a in d.allocs:
            ir, ops, ok = d.instructions.get((w.name, a), (None, 0, False))
            if not ok or not ops:
                row.append(FAILED)
                continue
            per = ir / ops
            row.append(f"{per:.1f}, {ir / 1e6:.2f}M" + (f" ({per / refper:.2f}x)" if refper else ""))
        rows.append(row)
    out += md_table(["workload", "command", *d.allocs], "ll" + "r" * len(d.allocs), rows)
    fl = d.instructions.get(("random_mixed", FLOOR))
    if fl and fl[2] and fl[1]:
        out += ["", f"random_mixed on the in-binary floor allocator: {fl[0] / 1e6:.2f}M instructions. What each "
                "allocator adds per operation (total minus the floor's, divided by the operations):", ""]
        cells = []
        for a in d.allocs:
            ir, ops, ok = d.instructions.get(("random_mixed", a), (None, 0, False))
            cells.append(f"{(ir - fl[0]) / fl[1]:.1f}" if ok else DASH)
        out += md_table(d.allocs, "r" * len(d.allocs), [cells])
    out.append("")
    return out


def _details(w, a, s):
    text = s.extra.replace(",", " ") if s.extra else ""
    if a == "hakmem" and s.owned:
        text += f"; hak_owns: {s.owned[-1]}"
    if a == "hakmem" and s.stats_mallocs:
        text += f"; hakmem-stats: mallocs={s.stats_mallocs[-1]} (stress-ng's main process)"
    return text


def _floor_ok(d):
    fl = d.cell("random_mixed_floor", FLOOR)
    return fl is not None and fl.ok


def _workload_table(d, w):
    isbig, isrm = w.big, w.name == "random_mixed" and _floor_ok(d)
    metric = "median bogo-ops/s" if w.kind == STRESS_NG else "median ops/s"
    head = ["allocator", metric, "min", "max", f"vs {d.ref}", "peak RSS MiB"]
    if w.rusage:
        head += ["user s", "sys s"]
    if isbig:
        head.append("minor faults/op")
    if isrm:
        head += ["ns/op above floor", "allocator share of run"]
    head += ["runs ok", "details of the last run"]
    ref = d.cell(w.name, d.ref)
    refm = ref.median if ref and ref.ok else None
    floor = d.cell("random_mixed_floor", FLOOR)
    rows = []
    for a in d.allocs:
        s = d.cell(w.name, a)
        if s is None:
            continue
        if s.ok:
            row = [a, fmt_ops(s.median), fmt_ops(s.lo), fmt_ops(s.hi), ratio(s.median, refm), fmt_mib(s.rss_kb)]
            if w.rusage:
                row += [fmt_sec(s.user), fmt_sec(s.sys)]
            if isbig:
                row.append(DASH if s.minflt is None else f"{s.minflt:.1f}")
            if isrm:
                row += [f"{1e9 / s.median - 1e9 / floor.median:.1f}", f"{100 * (1 - s.median / floor.median):.0f}%"]
        else:
            row = [a, FAILED, "", "", "", ""] + [""] * ((2 if w.rusage else 0) + isbig + (2 if isrm else 0))
        rows.append(row + [f"{s.n_ok}/{s.n}", _details(w, a, s)])
    if isrm:
        row = ["*floor* (in-binary free lists)", fmt_ops(floor.median), fmt_ops(floor.lo), fmt_ops(floor.hi),
               ratio(floor.median, refm), fmt_mib(floor.rss_kb), "0", "0%", f"{floor.n_ok}/{floor.n}",
               f"`{d.floor_cmd}`, no preload"]
        rows.append(row)
    return md_table(head, "l" + "r" * (len(head) - 2) + "l", rows)


def _syscalls(d, w):
    rows = []
    for a in d.allocs:
        got = d.syscalls.get((w.name, a))
        if got is None or got[0] is None:
            continue
        counts, status = got
        rows.append([a, *[counts.get(c, 0) for c in STRACE_COLS],
                     f"{sum(counts.values())}" + ("" if status == "ok" else " (run FAILED)")])
    if not rows:
        return []
    return ["", f"Syscalls of one run of `{w.command('trace')}` under `strace -f -c` (all threads and processes):",
            ""] + md_table(["allocator", *STRACE_COLS, "all syscalls"], "l" + "r" * (len(STRACE_COLS) + 1), rows)


def _workloads(d):
    out = ["## Workloads"]
    for w in d.workloads:
        out += ["", f"### {w.name}", "", f"{w.desc}. Command: `{w.command(d.mode)}`; ops = {w.ops}.", ""]
        out += _workload_table(d, w)
        if w.name == "random_mixed" and _floor_ok(d):
            out += ["", "The floor is the same loop (random numbers, tagging and checking every block) driving a "
                    "trivial per-class free-list allocator compiled into the benchmark: \"ns/op above floor\" is "
                    "what each allocator adds per operation, \"allocator share\" the part of the run spent beyond "
                    "the loop itself."]
        if w.kind == STRESS_NG:
            out += ["", "hakmem's proof of service here is its `HAKMEM_STATS=1` exit report (stress-ng cannot call "
                    "hak_owns): stress-ng's main process prints it; the workers, forks of that process that end "
                    "with `_exit`, run on the same malloc but print none."]
        out += _syscalls(d, w)
        if d.hakstats.get(w.name):
            out += ["", "hakmem's `HAKMEM_STATS=1` report for that run:", "", "```", *d.hakstats[w.name], "```"]
    return out


def _real_section(d):
    """## Real programs: method, and per program its command and every allocator's figures."""
    if not d.real:
        return []
    progs = {p.name: p for p in d.real_progs}
    out = ["## Real programs", "",
           "The programs the test suite's real-program tests run (tests/real/), each measured by one `hakmem "
           "compare --check-output --json` (build/hakmem): every round runs the program once under each allocator, "
           "in a new shuffled order (`--seed` from `BENCH_SEED`), in a directory of its own under "
           "`build-bench/real/`; every allocator must give the same exit status (0) and the same output, or the row "
           "fails. Wall time and CPU time (user + system, the program and the children it waited for) are "
           "`wait4`'s, peak RSS is the largest `ru_maxrss` of the run's processes. hakmem's proof of service is "
           "the statistics every run writes (`HAKMEM_STATS=json`, one file per process that exits through "
           "`exit`): each hakmem round must have such processes, with mallocs > 0, and no round of another "
           "allocator any. There is no A/A control here (a second hakmem would add a fifth to the time): the min "
           "and max of the rounds show the noise. A setup step (the input files) runs once, without any preload, "
           "and is not measured. Raw figures: `build-bench/real/NAME.json`.", ""]
    for r in d.real:
        p = progs.get(r.name)
        out += [f"### {r.name}", ""]
        if p:
            out += [f"{p.desc}. Command (in its own directory): `{p.command(d.mode)}`"
                    + (f"; setup: `{p.setup_command(d.mode)}`" if p.setup_command(d.mode) else "") + ".", ""]
        if r.skipped:
            out += [f"Not run: {r.skipped}.", ""]
            continue
        if not r.cells:
            out += [f"**FAILED**: {r.why}", ""]
            continue
        ref = r.cells.get(d.ref)
        rows = []
        for a in d.allocs:
            c = r.cells.get(a)
            if c is None:
                continue
            if c.wall is None:
                rows.append([a, FAILED] + [""] * 7 + [f"{c.n}/{r.rounds}"])
                continue
            okref = ref and ref.ok and ref.wall is not None
            served = (f"{int(c.mallocs):,} in {int(c.procs)}" if a == "hakmem" or c.procs else "none")
            rows.append([a if c.ok else f"{a} (**FAILED**)", f"{c.wall:.3f}", f"{c.lo:.3f}", f"{c.hi:.3f}",
                         ratio(c.wall, ref.wall) if okref else DASH, f"{c.cpu:.2f}", fmt_mib(c.rss_kb),
                         ratio(c.rss_kb, ref.rss_kb) if okref else DASH, served, f"{c.n}/{r.rounds}"])
        out += md_table(["allocator", "median wall s", "min", "max", f"vs {d.ref}", "CPU s", "peak RSS MiB",
                         f"RSS vs {d.ref}", "hakmem mallocs in processes (median per round)", "rounds"],
                        "l" + "r" * 9, rows)
        if r.why:
            out += ["", f"**FAILED**: {r.why}"]
        out.append("")
    return out


def _failures(d):
    out = ["## Failures", ""]
    if not d.failures:
        return out + ["None: every run of every allocator passed its own content and checksum checks."]
    rows = [[c.replace("|", "\\|") for c in (w, a, k, f"`{cmd}`", why)] for w, a, k, cmd, why in d.failures]
    return out + md_table(["workload", "allocator", "run", "command", "symptom"], "lllll", rows)


def benchmarks_md(d, table):
    """The whole of docs/BENCHMARKS.md; table: the lines of summary_table(d)."""
    out = ["# hakmem benchmarks", "",
           f"Generated by `scripts/bench.py` ({d.mode} mode: `make bench` runs the full comparison, "
           "`make bench-quick` a short pass). Do not edit by hand: every number below comes from the harness.", ""]
    out += _setup(d) + ["", "## Summary", ""]
    out += [ln.split(" Full report: ")[0] if ln.startswith("Machine: ") else ln for ln in table]
    out.append("")
    if d.chart:
        out += [f"![ops/s relative to {d.ref} and peak RSS per workload](bench.png)", ""]
    out += _aa(d) + _instructions(d) + (_workloads(d) if d.workloads else []) + [""] + _real_section(d)
    out += _failures(d)
    out += ["", "## Reproduce", "", "```sh",
            "make bench                      # full comparison, 7 runs per allocator and workload",
            "make bench-quick                # the short pass",
            "python3 scripts/bench.py --workloads random_mixed,larson --allocators hakmem,mimalloc --runs 9",
            "python3 scripts/bench.py --quick --workloads large_heap,stress_ng --no-callgrind",
            "python3 scripts/bench.py --quick --workloads real   # the real programs only (real_git, real_sort...)",
            "```", "",
            "Raw per-run results: `build-bench/results.tsv`; failing runs keep their output in `build-bench/logs/`."]
    return "\n".join(out) + "\n"


def chart_data(d, value):
    """A gnuplot data file: header 'workload alloc...', one line per workload, '?' where missing."""
    lines = ["workload " + " ".join(d.allocs)]
    for w in d.workloads:
        cells = []
        for a in d.allocs:
            v = value(w.name, a)
            cells.append("?" if v is None else v)
        lines.append(" ".join([w.name, *cells]))
    return "\n".join(lines) + "\n"


def ratio_value(d):
    def value(w, a):
        s, ref = d.cell(w, a), d.cell(w, d.ref)
        if s and s.ok and ref and ref.ok and ref.median:
            return f"{s.median / ref.median:.4f}"
        return None
    return value


def ratio_floor(d):
    """The chart's lower end: a power of two below the smallest ratio, 1/8 at most, 1/1024 at least."""
    value = ratio_value(d)
    vals = [float(v) for w in d.workloads for a in d.allocs for v in [value(w.name, a)] if v is not None]
    low = 0.125
    while vals and low > 2 ** -10 and low > min(vals) * 0.99:
        low /= 2
    return low


def rss_value(d):
    def value(w, a):
        s = d.cell(w, a)
        return f"{s.rss_kb / 1024:.2f}" if s and s.ok and s.rss_kb is not None else None
    return value


def readme_block(readme, table, chart):
    """README text with the lines between the BENCH markers replaced; None without both markers."""
    begin, end = "<!-- BENCH:BEGIN -->", "<!-- BENCH:END -->"
    lines = readme.split("\n")
    try:
        i = next(n for n, ln in enumerate(lines) if begin in ln)
        j = next(n for n, ln in enumerate(lines) if end in ln and n > i)
    except StopIteration:
        return None
    block = [""] + (["![benchmark chart](docs/bench.png)", ""] if chart else []) + table + [""]
    return "\n".join(lines[:i + 1] + block + lines[j:])
