"""Summaries of a workload's runs and the number formats of the report."""
import statistics
from dataclasses import dataclass, field

DASH = "–"  # an empty cell: not measured


@dataclass
class Run:
    """One measured run (the rows of build-bench/results.tsv)."""
    workload: str
    alloc: str
    run: str  # round number, or 'trace' / 'callgrind'
    ok: bool
    ops_per_sec: float = None
    rss_kb: int = None
    owned: str = None  # 'k/n' from hak_owns
    stats_mallocs: int = None  # from the hakmem-stats line (stress-ng rows)
    extra: str = ""
    wall: float = None
    user: float = None
    sys: float = None
    why: str = ""
    ops: float = None  # operations the run completed (RESULT's ops, stress-ng's bogo ops)

    TSV_HEAD = ("workload alloc run status ops_per_sec maxrss_kb owned extra wall_seconds user_s sys_s stats_mallocs "
                "ops")

    def tsv(self):
        cells = [self.workload, self.alloc, self.run, "ok" if self.ok else "FAILED", self.ops_per_sec, self.rss_kb,
                 self.owned, self.extra, self.wall, self.user, self.sys, self.stats_mallocs, self.ops]
        return "\t".join("-" if c is None or c == "" else str(c) for c in cells)


def median(xs):
    return statistics.median(xs) if xs else None


@dataclass
class Summary:
    """All runs of one workload with one allocator."""
    ok: bool  # every run passed
    n_ok: int
    n: int
    median: float = None
    lo: float = None
    hi: float = None
    rss_kb: float = None
    minflt: float = None  # median minor faults per op (big_churn)
    user: float = None
    sys: float = None
    sys_per_kop: float = None  # median system time per 1,000 operations, in microseconds
    owned: list = field(default_factory=list)
    stats_mallocs: list = field(default_factory=list)
    extra: str = ""  # of the last run


def _medianof(runs, get):
    vals = [v for v in (get(r) for r in runs) if v is not None]
    return median(vals)


def _minflt(run):
    for item in run.extra.split(","):
        key, _, value = item.partition("=")
        if key == "minflt_per_op":
            try:
                return float(value)
            except ValueError:
                return None
    return None


def summarise(runs):
    """Summary of one (workload, allocator)'s runs: a single failed run fails the cell.

    Why all or nothing: a median over the runs that happened to pass would
    hide a crash that hits one run in seven.
    """
    good = [r for r in runs if r.ok]
    s = Summary(ok=bool(runs) and len(good) == len(runs), n_ok=len(good), n=len(runs),
                owned=[r.owned for r in runs if r.owned], stats_mallocs=[r.stats_mallocs for r in runs
                                                                          if r.stats_mallocs is not None],
                extra=runs[-1].extra if runs else "")
    if not s.ok:
        return s
    vals = [r.ops_per_sec for r in good]
    s.median, s.lo, s.hi = median(vals), min(vals), max(vals)
    s.rss_kb = _medianof(good, lambda r: r.rss_kb)
    s.minflt = _medianof(good, _minflt)
    s.user = _medianof(good, lambda r: r.user)
    s.sys = _medianof(good, lambda r: r.sys)
    s.sys_per_kop = _medianof(good, lambda r: r.sys * 1e9 / r.ops if r.sys is not None and r.ops else None)
    return s


def summarise_all(runs):
    """{(workload, alloc): Summary}, keys in the order the runs first appear."""
    groups = {}
    for r in runs:
        groups.setdefault((r.workload, r.alloc), []).append(r)
    return {key: summarise(rs) for key, rs in groups.items()}


# ---------------------------------------------------------------- formats

def fmt_ops(x):
    if x is None:
        return DASH
    if x >= 1e6:
        return f"{x / 1e6:.2f}M"
    if x >= 1e3:
        return f"{x / 1e3:.1f}k"
    return f"{x:.1f}"


def fmt_mib(kb):
    return DASH if kb is None else f"{kb / 1024:.1f}"


def fmt_sec(s):
    return DASH if s is None else f"{s:.2f}"


def fmt_us(us):
    """Microseconds: one decimal below 100, whole above."""
    return DASH if us is None else f"{us:.1f}" if us < 100 else f"{us:.0f}"


def ratio(x, y):
    if x is None or y is None or y == 0:
        return DASH
    return f"{x / y:.2f}x"


def gap_percent(a, b):
    """How far apart two medians are, in whole percent of the smaller one."""
    r = a / b if a > b else b / a
    return round((r - 1) * 100)
