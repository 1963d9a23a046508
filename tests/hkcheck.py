"""The checks and environments of the Python tests (test_*.py): CHECK-style
failures that are counted and printed, and a child environment with hakmem
preloaded and no HAKMEM_* variable of the caller's leaking in."""
import os

failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print("CHECK FAILED " + msg, flush=True)
    return cond


def env_for(lib=None, **extra):
    """lib None: no preload (for the hakmem command, which sets its own)."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("HAKMEM_") and k != "LD_PRELOAD"}
    if lib:
        e["LD_PRELOAD"] = lib
    e.update(extra)
    return e
