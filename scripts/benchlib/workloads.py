"""The workload table: one row per workload, in report order.

A row names its program, its arguments for each mode (full: `make bench`;
quick: `make bench-quick`; trace: the shorter run under strace and
callgrind), what the report says about it, and how the harness treats it.
"""
import shlex
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
    # Buffers reserved up front and never used: what each costs is the
    # allocator's own memory (peak RSS) and its mappings (extra maps=).
    Workload("untouched_1m", "untouched",
             _modes("131072 1048576 1", "8192 1048576 1", "8192 1048576 1"),
             "131,072 blocks of 1 MiB (128 GiB; 8,192 in quick mode) allocated and never touched, then freed: "
             "the peak RSS is the allocator's memory per block; extra maps= is the most lines of "
             "/proc/self/maps (Linux's default limit is 65,530)", MALLOC_CALLS, rusage=True),
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



@dataclass(frozen=True)
class RealProgram:
    """A real program of the test suite's (tests/real/), measured through
    `hakmem compare` (scripts/benchlib/realprog.py). In args and setup,
    {inputs} is tests/real/inputs, {bench} bench/real, {root} the
    repository and {python} the interpreter the real tests use."""
    name: str
    needs: tuple  # (command, Debian package): missing ones skip the row
    args: dict  # mode -> argv, run by hakmem compare in the row's own directory
    desc: str
    setup: dict = None  # mode -> shell command, run once before, without preload, not measured

    kind = "real"

    def command(self, mode):
        """The command as the report shows it: paths relative to the repository."""
        return " ".join(shlex.quote(a.format(**_SHOWN)) for a in self.args[mode])

    def setup_command(self, mode):
        return (self.setup or {}).get(mode, "").format(**_SHOWN)


_SHOWN = {"inputs": "tests/real/inputs", "bench": "bench/real", "root": ".", "python": "python3"}


def _real_modes(full, quick):
    return {"full": tuple(full), "quick": tuple(quick)}


# Each row runs min(runs, 3) rounds of glibc, hakmem and the peers: about
# two and a half minutes in full mode, half a minute in quick mode.
REAL = [
    RealProgram("real_python", (("python3", "python3"),),
                _real_modes(["env", "PYTHONMALLOC=malloc", "PYTHONHASHSEED=0", "{python}", "{inputs}/heavy.py"],
                            ["env", "PYTHONMALLOC=malloc", "PYTHONHASHSEED=0", "{python}", "{inputs}/json_dict.py"]),
                "CPython with PYTHONMALLOC=malloc, so that every object is a malloc: tests/real/inputs/heavy.py "
                "(dicts, strings, sorting, sets, tuples; full mode) or json_dict.py (a dict of lists through json; "
                "quick mode)"),
    RealProgram("real_sqlite", (("sqlite3", "sqlite3"),),
                _real_modes(["sh", "-c", "rm -f work.db*; exec sqlite3 work.db < rows.sql"],
                            ["sh", "-c", "rm -f work.db*; exec sqlite3 work.db < rows.sql"]),
                "sqlite3 running tests/real/inputs/sqlite.sql (inserts, two indexes, group by, joins, an update and "
                "delete in a transaction, a WAL checkpoint, VACUUM, an integrity check) on a new database file, "
                "with 100,000 rows in full mode and 30,000 in quick mode instead of its 200,000",
                setup={"full": "sed 's/WHERE x < 200000)/WHERE x < 100000)/' {inputs}/sqlite.sql > rows.sql",
                       "quick": "sed 's/WHERE x < 200000)/WHERE x < 30000)/' {inputs}/sqlite.sql > rows.sql"}),
    RealProgram("real_redis", (("redis-server", "redis-server"), ("redis-cli", "redis-tools"),
                               ("redis-benchmark", "redis-tools")),
                _real_modes(["sh", "{bench}/redis.sh", "100000", "6000"], ["sh", "{bench}/redis.sh", "30000", "3000"]),
                "redis-server on a unix socket, filled with 100,000 keys (30,000 in quick mode) by DEBUG POPULATE, "
                "then redis-benchmark (20 clients, 13 commands, 6,000 requests each; 3,000 in quick mode) against "
                "it, both under the allocator measured; prints the dataset's size and digest (bench/real/redis.sh)"),
    RealProgram("real_cc", (("g++", "g++"), ("gcc", "gcc")),
                _real_modes(["g++", "-std=c++17", "-O2", "-I{root}/include", "-S", "-o", "-", "{root}/tests/test_cxx.cpp"],
                            ["gcc", "-std=c11", "-D_GNU_SOURCE", "-O2", "-S", "-o", "-", "{root}/bench/larson.c"]),
                "the compilers: g++ -O2 compiling tests/test_cxx.cpp (full mode) or gcc -O2 compiling "
                "bench/larson.c (quick mode) to assembly on stdout"),
    RealProgram("real_git", (("git", "git"),),
                # git.sh leaves GIT_CONFIG_COUNT alone: git reads the window from it
                _real_modes(["env", "GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=gc.aggressiveWindow", "GIT_CONFIG_VALUE_0=50",
                             "sh", "-c", "rm -rf run && mkdir run && cd run && exec sh {inputs}/git.sh"],
                            ["env", "GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=gc.aggressiveWindow", "GIT_CONFIG_VALUE_0=10",
                             "sh", "-c", "rm -rf run && mkdir run && cd run && exec sh {inputs}/git.sh"]),
                "tests/real/inputs/git.sh: a repository of ~400 files built, committed, renamed, merged, "
                "gc --aggressive'd, fsck'd and archived, about 100 git processes; gc.aggressiveWindow 50 (10 in "
                "quick mode) instead of 250, which alone would take three quarters of the time"),
    RealProgram("real_sort", (("sort", "coreutils"), ("awk", "mawk")),
                _real_modes(["sort", "input.txt"], ["sort", "input.txt"]),
                "GNU sort on the lines of tests/real/inputs/sort_input.awk (1.2 million lines, 60 MB, in full "
                "mode; the first 300,000 in quick mode), in memory: a few large buffers, so this row shows what an allocator "
                "costs a program that hardly calls it",
                setup={"full": "awk -f {inputs}/sort_input.awk > input.txt",
                       "quick": "awk -f {inputs}/sort_input.awk | head -n 300000 > input.txt"}),
]
REAL_BY_NAME = {r.name: r for r in REAL}
REAL_ROUNDS = 3  # at most: a real program takes seconds, not milliseconds

BY_NAME = {w.name: w for w in TABLE}
ALL_NAMES = [w.name for w in TABLE] + [r.name for r in REAL]

# Names that stand for several rows.
ALIASES = {
    "thread_scale": [f"thread_scale_{t}" for t in (1, 2, 4, 8)],
    "stress_ng": ["stress_ng_threads", "stress_ng_procs"],
    "real": [r.name for r in REAL],
    "synthetic": [w.name for w in TABLE],
}

# random_mixed's loop on a trivial allocator compiled into the program: what
# the loop itself costs. Run once per round after random_mixed, no preload.
FLOOR = Workload("random_mixed_floor", "random_mixed_floor", BY_NAME["random_mixed"].args,
                 "random_mixed on in-binary free lists", MALLOC_CALLS, callgrind=True)

# The programs of bench/ the harness builds: name -> (source, extra flags).
PROGRAMS = {
    **{p: (f"bench/{p}.c", ()) for p in ("random_mixed", "mid_large_mt", "larson", "xthread", "cache_scratch",
                                          "realloc_grow", "big_churn", "thread_scale", "large_heap",
                                          "untouched")},
    "random_mixed_floor": ("bench/random_mixed.c", ("-DFLOOR_ALLOC",)),
    "runwrap": ("bench/runwrap.c", ()),
}


def expand(spec):
    """'a,b thread_scale' -> the rows, in the order given; ValueError on an unknown name."""
    names = []
    for item in spec.replace(",", " ").split():
        for name in ALIASES.get(item, [item]):
            if name not in BY_NAME and name not in REAL_BY_NAME:
                raise ValueError(f"unknown workload '{name}' (known: {' '.join(ALL_NAMES)})")
            if name not in names:
                names.append(name)
    return names
