"""The workload table: one row per workload, in report order.

A row names its program, its arguments for each mode (full: `make bench`;
quick: `make bench-quick`; trace: the shorter run under strace and
callgrind), what the report says about it, and how the harness treats it.
"""
from dataclasses import dataclass

MODES = ("full", "quick", "trace")

# kind "bench": a program of bench/, built into build-bench/, that prints a
# RESULT line and, under hakmem, proves through hak_owns that hakmem served it.
# kind "stress-ng": Debian's stress-ng, found on PATH; its metric is
# bogo-ops/s (real time) and hakmem's proof is its HAKMEM_STATS=1 report.
BENCH = "bench"
STRESS_NG = "stress-ng"


@dataclass(frozen=True)
class Workload:
    name: str
    binary: str
    args: dict  # mode -> tuple of arguments
    desc: str
    ops: str  # what one operation is
    kind: str = BENCH
    callgrind: bool = False  # fixed work: its instruction count compares
    rusage: bool = False  # the report shows user and system time
    big: bool = False  # the report shows minor faults per operation

    def argv(self, mode):
        return [self.binary, *self.args[mode]]

    def command(self, mode):
        return " ".join(self.argv(mode))


def _modes(full, quick, trace):
    return {"full": tuple(full.split()), "quick": tuple(quick.split()), "trace": tuple(trace.split())}


MALLOC_CALLS = "malloc/realloc/free calls"
LH_OPS = "malloc/calloc/realloc/free calls"
SNG_OPS = "stress-ng bogo ops (its malloc stressor's loop iterations), per second of real time"


def _thread_scale(t):
    return Workload(
        f"thread_scale_{t}", "thread_scale",
        _modes(f"{t} 40000000 4096 1234567", f"{t} 3000000 4096 1234567", f"{t} 2000000 4096 1234567"),
        f"random_mixed on {t} thread(s), same total work (2 cores: oversubscribed above 2)",
        MALLOC_CALLS, callgrind=t >= 4)


TABLE = [
    Workload("random_mixed", "random_mixed",
             _modes("40000000 4096 1234567", "3000000 4096 1234567", "2000000 4096 1234567"),
             "1 thread, 4096 slots, random alloc/free of 16–1040 B", MALLOC_CALLS, callgrind=True),
    Workload("mid_large_mt", "mid_large_mt",
             _modes("2 3500000 2048 8192 32768 1234567", "2 300000 2048 8192 32768 1234567",
                    "2 200000 2048 8192 32768 1234567"),
             "2 threads, 2048 slots each, random alloc/free of 8–32 KiB, every page touched",
             MALLOC_CALLS, callgrind=True),
    Workload("larson", "larson",
             _modes("1.5 8 1000 1000 100 4141 2", "0.3 8 1000 1000 100 4141 2", "0.3 8 1000 1000 100 4141 2"),
             "Larson–Krishnan server simulation, 8–1000 B, 2 threads handing their blocks to new threads "
             "(time-based)", MALLOC_CALLS, callgrind=True),
    Workload("xthread", "xthread",
             _modes("2 2 2000000 16 2048 1234567", "2 2 200000 16 2048 1234567", "2 2 100000 16 2048 1234567"),
             "2 producer threads allocate 16–2048 B, 2 consumer threads free (all frees remote)",
             MALLOC_CALLS, callgrind=True),
    Workload("cache_scratch", "cache_scratch",
             _modes("2 5000 8 20000 1234567", "2 500 8 20000 1234567", "2 200 8 20000 1234567"),
             "false-sharing check: 2 threads write 8-byte objects (first one allocated by the main thread)",
             "object write passes"),
    Workload("realloc_grow", "realloc_grow",
             _modes("60000 1048576 1234567", "5000 1048576 1234567", "3000 1048576 1234567"),
             "strings growing by 1–32 B steps and vectors doubling up to 1 MiB, through realloc",
             MALLOC_CALLS, callgrind=True),
    Workload("big_churn", "big_churn", _modes("800 4 1234567", "40 4 1234567", "40 4 1234567"),
             "1–64 MiB blocks, 4 slots, every page touched", MALLOC_CALLS, big=True),
    *[_thread_scale(t) for t in (1, 2, 4, 8)],
    # Server-shaped heaps: more threads than cores, gigabytes live in full mode.
    Workload("large_heap", "large_heap",
             _modes("8 40000 300000 1234567 1 65536", "8 4000 100000 1234567 1 65536",
                    "8 1000 15000 1234567 1 65536"),
             "8 threads (2 cores: oversubscribed), each with a slot array (the second argument), about 62 % "
             "live: random malloc, calloc, realloc to a new size and free of 1 B–64 KiB (log-uniform), every "
             "page touched; about 1.9 GB live in full mode, a tenth in quick mode", LH_OPS, callgrind=True,
             rusage=True),
    Workload("large_heap_1m", "large_heap",
             _modes("8 3000 50000 1234567 1 1048576", "8 300 25000 1234567 1 1048576",
                    "8 200 10000 1234567 1 1048576"),
             "large_heap with sizes up to 1 MiB: 8 threads, fewer slots (the same bytes in bigger blocks), "
             "about 2 GB live in full mode, a tenth in quick mode",
             # no callgrind: its instructions are calloc's and realloc's copies of
             # big blocks (and 3 minutes under valgrind); its cost is in the kernel
             LH_OPS, rusage=True),
    Workload("stress_ng_threads", "stress-ng",
             _modes("--malloc 1 --malloc-pthreads 4 -t 4 --metrics-brief",
                    "--malloc 1 --malloc-pthreads 4 -t 1 --metrics-brief",
                    "--malloc 1 --malloc-pthreads 4 -t 1 --metrics-brief"),
             "stress-ng's malloc stressor: 1 worker process with 4 pthreads (2 cores: oversubscribed), "
             "time-based", SNG_OPS, kind=STRESS_NG, rusage=True),
    Workload("stress_ng_procs", "stress-ng",
             _modes("--malloc 2 -t 4 --metrics-brief", "--malloc 2 -t 1 --metrics-brief",
                    "--malloc 2 -t 1 --metrics-brief"),
             "stress-ng's malloc stressor: 2 worker processes (forked from stress-ng, so the preload is "
             "theirs too), time-based", SNG_OPS, kind=STRESS_NG, rusage=True),
]

BY_NAME = {w.name: w for w in TABLE}
ALL_NAMES = [w.name for w in TABLE]

# Names that stand for several rows.
ALIASES = {
    "thread_scale": [f"thread_scale_{t}" for t in (1, 2, 4, 8)],
    "stress_ng": ["stress_ng_threads", "stress_ng_procs"],
}

# random_mixed's loop on a trivial allocator compiled into the program: what
# the loop itself costs. Run once per round after random_mixed, no preload.
FLOOR = Workload("random_mixed_floor", "random_mixed_floor", BY_NAME["random_mixed"].args,
                 "random_mixed on in-binary free lists", MALLOC_CALLS, callgrind=True)

# The programs of bench/ the harness builds: name -> (source, extra flags).
PROGRAMS = {
    **{p: (f"bench/{p}.c", ()) for p in ("random_mixed", "mid_large_mt", "larson", "xthread", "cache_scratch",
                                          "realloc_grow", "big_churn", "thread_scale", "large_heap")},
    "random_mixed_floor": ("bench/random_mixed.c", ("-DFLOOR_ALLOC",)),
    "runwrap": ("bench/runwrap.c", ()),
}


def expand(spec):
    """'a,b thread_scale' -> the rows, in the order given; ValueError on an unknown name."""
    names = []
    for item in spec.replace(",", " ").split():
        for name in ALIASES.get(item, [item]):
            if name not in BY_NAME:
                raise ValueError(f"unknown workload '{name}' (known: {' '.join(ALL_NAMES)})")
            if name not in names:
                names.append(name)
    return names
